-- parley schema, version 1. NULL times mean "not set"; parley writes times
-- truncated to the millisecond.

CREATE TABLE calls (
    id          text PRIMARY KEY,
    channel     text NOT NULL,
    from_number text NOT NULL DEFAULT '',
    to_number   text NOT NULL DEFAULT '',
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz,
    outcome     text NOT NULL DEFAULT '',
    reason      text NOT NULL DEFAULT ''
);

-- ListCalls: newest first, alone or after an equality filter; a number
-- filter is a BitmapOr of the from and to indexes.
CREATE INDEX calls_started ON calls (started_at DESC, id DESC);
CREATE INDEX calls_from ON calls (from_number, started_at DESC);
CREATE INDEX calls_to ON calls (to_number, started_at DESC);
CREATE INDEX calls_outcome ON calls (outcome, started_at DESC);

CREATE TABLE turns (
    call_id       text NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    seq           integer NOT NULL,
    speaker       text NOT NULL,
    text          text NOT NULL DEFAULT '',
    intended      text NOT NULL DEFAULT '',
    interrupted   boolean NOT NULL DEFAULT false,
    dtmf          text NOT NULL DEFAULT '',
    start_at      timestamptz,
    end_at        timestamptz,
    end_of_speech timestamptz,
    first_audio   timestamptz,
    signals       jsonb,
    -- Word search in what was said, English stemming and stop words.
    text_search   tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
    PRIMARY KEY (call_id, seq)
);

CREATE INDEX turns_text_search ON turns USING gin (text_search);

CREATE TABLE events (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id text NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    at      timestamptz NOT NULL,
    kind    text NOT NULL,
    data    jsonb
);

CREATE INDEX events_call_at ON events (call_id, at, id);
