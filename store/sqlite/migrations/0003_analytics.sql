-- KPIs (parley.Analytics). What the call path writes as events and turns
-- is copied onto the call's row when it is written (escalation, transfer,
-- queue state, survey score; at the end: first intent, understanding of
-- the caller turns); repeat contacts are found when a call is created.
-- Per-hour rollups of those columns are rebuilt, when a report is asked
-- for, for the hours whose calls changed since: triggers note the hour of
-- every call written in kpi_dirty.

ALTER TABLE calls ADD COLUMN intent TEXT NOT NULL DEFAULT '';
ALTER TABLE calls ADD COLUMN escalated_at INTEGER;
ALTER TABLE calls ADD COLUMN connected_at INTEGER;
ALTER TABLE calls ADD COLUMN agent_id TEXT NOT NULL DEFAULT '';
ALTER TABLE calls ADD COLUMN tth_ms INTEGER;
ALTER TABLE calls ADD COLUMN tth_bin INTEGER;
ALTER TABLE calls ADD COLUMN queue_wait_ms INTEGER;
ALTER TABLE calls ADD COLUMN queue_state TEXT NOT NULL DEFAULT '';
ALTER TABLE calls ADD COLUMN csat INTEGER CHECK (csat IS NULL OR csat BETWEEN 1 AND 5);
ALTER TABLE calls ADD COLUMN caller_turns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN low_turns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN repeat_of TEXT;
ALTER TABLE calls ADD COLUMN repeat_intent TEXT;

-- Why each escalated call went to a human.
CREATE TABLE escalation_reasons (
    call_id    TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    started_at INTEGER NOT NULL,
    reason     TEXT NOT NULL,
    PRIMARY KEY (call_id, reason)
) STRICT, WITHOUT ROWID;
CREATE INDEX escalation_reasons_started ON escalation_reasons (started_at);

-- Understanding of the caller turns of an ended call, by each turn's intent.
CREATE TABLE call_intents (
    call_id    TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    started_at INTEGER NOT NULL,
    intent     TEXT NOT NULL,
    turns      INTEGER NOT NULL,
    low_turns  INTEGER NOT NULL,
    nlu_sum    REAL NOT NULL,
    PRIMARY KEY (call_id, intent)
) STRICT, WITHOUT ROWID;
CREATE INDEX call_intents_started ON call_intents (started_at);

-- Hours (since the epoch) whose rollups are out of date.
CREATE TABLE kpi_dirty (hour INTEGER PRIMARY KEY) STRICT;

CREATE TRIGGER calls_kpi_insert AFTER INSERT ON calls BEGIN
    INSERT OR IGNORE INTO kpi_dirty (hour) VALUES (new.started_at / 3600000);
END;
CREATE TRIGGER calls_kpi_update AFTER UPDATE ON calls BEGIN
    INSERT OR IGNORE INTO kpi_dirty (hour) VALUES (old.started_at / 3600000);
    INSERT OR IGNORE INTO kpi_dirty (hour) VALUES (new.started_at / 3600000);
END;
CREATE TRIGGER calls_kpi_delete AFTER DELETE ON calls BEGIN
    INSERT OR IGNORE INTO kpi_dirty (hour) VALUES (old.started_at / 3600000);
END;

-- The rollups: parley.KPICounts by hour, parley.IntentCounts by hour and
-- intent, escalated calls by hour and reason, time to human by hour and bin.
CREATE TABLE kpi_hour (
    hour               INTEGER PRIMARY KEY,
    calls              INTEGER NOT NULL,
    ended              INTEGER NOT NULL,
    contained          INTEGER NOT NULL,
    escalated          INTEGER NOT NULL,
    abandoned          INTEGER NOT NULL,
    abandoned_in_queue INTEGER NOT NULL,
    callbacks          INTEGER NOT NULL,
    voicemails         INTEGER NOT NULL,
    dropped            INTEGER NOT NULL,
    failed             INTEGER NOT NULL,
    ai_handle_n        INTEGER NOT NULL,
    ai_handle_ms       INTEGER NOT NULL,
    human_handle_n     INTEGER NOT NULL,
    human_handle_ms    INTEGER NOT NULL,
    ai_resolution_n    INTEGER NOT NULL,
    ai_resolution_ms   INTEGER NOT NULL,
    tth_n              INTEGER NOT NULL,
    tth_ms             INTEGER NOT NULL,
    queue_wait_n       INTEGER NOT NULL,
    queue_wait_ms      INTEGER NOT NULL,
    csat_n             INTEGER NOT NULL,
    csat_sum           INTEGER NOT NULL,
    csat_1             INTEGER NOT NULL,
    csat_2             INTEGER NOT NULL,
    csat_3             INTEGER NOT NULL,
    csat_4             INTEGER NOT NULL,
    csat_5             INTEGER NOT NULL,
    repeats            INTEGER NOT NULL
) STRICT;

CREATE TABLE kpi_hour_intent (
    hour      INTEGER NOT NULL,
    intent    TEXT NOT NULL,
    turns     INTEGER NOT NULL,
    low_turns INTEGER NOT NULL,
    nlu_sum   REAL NOT NULL,
    calls     INTEGER NOT NULL,
    escalated INTEGER NOT NULL,
    repeats   INTEGER NOT NULL,
    PRIMARY KEY (hour, intent)
) STRICT, WITHOUT ROWID;

CREATE TABLE kpi_hour_reason (
    hour   INTEGER NOT NULL,
    reason TEXT NOT NULL,
    calls  INTEGER NOT NULL,
    PRIMARY KEY (hour, reason)
) STRICT, WITHOUT ROWID;

CREATE TABLE kpi_hour_tth (
    hour  INTEGER NOT NULL,
    bin   INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    PRIMARY KEY (hour, bin)
) STRICT, WITHOUT ROWID;

-- Calls to review, newest first.
CREATE INDEX calls_review ON calls (started_at DESC)
    WHERE csat <= 2 OR low_turns >= 2 OR queue_state = 'abandoned' OR outcome IN ('failed', 'dropped')
       OR (outcome = 'abandoned' AND escalated_at IS NOT NULL);

-- Existing calls: every hour is out of date.
INSERT OR IGNORE INTO kpi_dirty (hour) SELECT DISTINCT started_at / 3600000 FROM calls;
