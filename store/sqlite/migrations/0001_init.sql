-- parley schema, version 1. Times are unix milliseconds (UTC); NULL means
-- "not set". Tables are STRICT so a wrong type is an error, not a surprise.

CREATE TABLE calls (
    id          TEXT PRIMARY KEY,
    channel     TEXT NOT NULL,
    from_number TEXT NOT NULL DEFAULT '',
    to_number   TEXT NOT NULL DEFAULT '',
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER,
    outcome     TEXT NOT NULL DEFAULT '',
    reason      TEXT NOT NULL DEFAULT ''
) STRICT;

-- ListCalls: newest first, alone or after an equality filter.
CREATE INDEX calls_started ON calls (started_at DESC, id DESC);
CREATE INDEX calls_from ON calls (from_number, started_at DESC);
CREATE INDEX calls_to ON calls (to_number, started_at DESC);
CREATE INDEX calls_outcome ON calls (outcome, started_at DESC);

-- id is the rowid the full-text index points at.
CREATE TABLE turns (
    id            INTEGER PRIMARY KEY,
    call_id       TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    speaker       TEXT NOT NULL,
    text          TEXT NOT NULL DEFAULT '',
    intended      TEXT NOT NULL DEFAULT '',
    interrupted   INTEGER NOT NULL DEFAULT 0,
    dtmf          TEXT NOT NULL DEFAULT '',
    start_at      INTEGER,
    end_at        INTEGER,
    end_of_speech INTEGER,
    first_audio   INTEGER,
    signals       TEXT CHECK (signals IS NULL OR json_valid(signals)),
    UNIQUE (call_id, seq)
) STRICT;

-- Word search in what was said, kept in step with turns by the triggers
-- below (external content: the text is stored once, in turns).
CREATE VIRTUAL TABLE turns_fts USING fts5 (
    text,
    content = 'turns',
    content_rowid = 'id',
    tokenize = 'porter unicode61'
);

CREATE TRIGGER turns_fts_insert AFTER INSERT ON turns BEGIN
    INSERT INTO turns_fts (rowid, text) VALUES (new.id, new.text);
END;

CREATE TRIGGER turns_fts_delete AFTER DELETE ON turns BEGIN
    INSERT INTO turns_fts (turns_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;

CREATE TRIGGER turns_fts_update AFTER UPDATE OF text ON turns BEGIN
    INSERT INTO turns_fts (turns_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO turns_fts (rowid, text) VALUES (new.id, new.text);
END;

CREATE TABLE events (
    id      INTEGER PRIMARY KEY,
    call_id TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    at      INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    data    TEXT CHECK (data IS NULL OR json_valid(data))
) STRICT;

CREATE INDEX events_call_at ON events (call_id, at, id);
