-- KPIs (parley.Analytics). What the call path writes as events and turns
-- is copied onto the call's row when it is written (escalation, transfer,
-- queue state, survey score; at the end: first intent, understanding of
-- the caller turns); repeat contacts are found when a call is created.
-- Per-hour rollups of those columns are rebuilt, when a report is asked
-- for, for the hours whose calls changed since: a trigger notes the hour
-- of every call written in kpi_dirty. kpi_dirty has no key on purpose:
-- concurrent writers only append to it and never wait on each other.
-- Hours are whole hours since the Unix epoch.

ALTER TABLE calls
    ADD COLUMN intent        text NOT NULL DEFAULT '',
    ADD COLUMN escalated_at  timestamptz,
    ADD COLUMN connected_at  timestamptz,
    ADD COLUMN agent_id      text NOT NULL DEFAULT '',
    ADD COLUMN tth_ms        bigint,
    ADD COLUMN tth_bin       integer,
    ADD COLUMN queue_wait_ms bigint,
    ADD COLUMN queue_state   text NOT NULL DEFAULT '',
    ADD COLUMN csat          smallint CHECK (csat BETWEEN 1 AND 5),
    ADD COLUMN caller_turns  integer NOT NULL DEFAULT 0,
    ADD COLUMN low_turns     integer NOT NULL DEFAULT 0,
    ADD COLUMN repeat_of     text,
    ADD COLUMN repeat_intent text;

-- Why each escalated call went to a human.
CREATE TABLE escalation_reasons (
    call_id    text NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    started_at timestamptz NOT NULL,
    reason     text NOT NULL,
    PRIMARY KEY (call_id, reason)
);
CREATE INDEX escalation_reasons_started ON escalation_reasons (started_at);

-- Understanding of the caller turns of an ended call, by each turn's intent.
CREATE TABLE call_intents (
    call_id    text NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    started_at timestamptz NOT NULL,
    intent     text NOT NULL,
    turns      bigint NOT NULL,
    low_turns  bigint NOT NULL,
    nlu_sum    double precision NOT NULL,
    PRIMARY KEY (call_id, intent)
);
CREATE INDEX call_intents_started ON call_intents (started_at);

CREATE TABLE kpi_dirty (hour bigint NOT NULL);
CREATE INDEX kpi_dirty_hour ON kpi_dirty (hour);

CREATE FUNCTION kpi_hour_of(t timestamptz) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT floor(extract(epoch FROM t) / 3600)::bigint $$;

CREATE FUNCTION calls_kpi_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO kpi_dirty (hour) VALUES (kpi_hour_of(OLD.started_at));
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.started_at <> OLD.started_at) THEN
        INSERT INTO kpi_dirty (hour) VALUES (kpi_hour_of(NEW.started_at));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER calls_kpi_dirty AFTER INSERT OR UPDATE OR DELETE ON calls
    FOR EACH ROW EXECUTE FUNCTION calls_kpi_dirty();

-- The rollups: parley.KPICounts by hour, parley.IntentCounts by hour and
-- intent, escalated calls by hour and reason, time to human by hour and bin.
CREATE TABLE kpi_hour (
    hour               bigint PRIMARY KEY,
    calls              bigint NOT NULL,
    ended              bigint NOT NULL,
    contained          bigint NOT NULL,
    escalated          bigint NOT NULL,
    abandoned          bigint NOT NULL,
    abandoned_in_queue bigint NOT NULL,
    callbacks          bigint NOT NULL,
    voicemails         bigint NOT NULL,
    dropped            bigint NOT NULL,
    failed             bigint NOT NULL,
    ai_handle_n        bigint NOT NULL,
    ai_handle_ms       bigint NOT NULL,
    human_handle_n     bigint NOT NULL,
    human_handle_ms    bigint NOT NULL,
    ai_resolution_n    bigint NOT NULL,
    ai_resolution_ms   bigint NOT NULL,
    tth_n              bigint NOT NULL,
    tth_ms             bigint NOT NULL,
    queue_wait_n       bigint NOT NULL,
    queue_wait_ms      bigint NOT NULL,
    csat_n             bigint NOT NULL,
    csat_sum           bigint NOT NULL,
    csat_1             bigint NOT NULL,
    csat_2             bigint NOT NULL,
    csat_3             bigint NOT NULL,
    csat_4             bigint NOT NULL,
    csat_5             bigint NOT NULL,
    repeats            bigint NOT NULL
);

CREATE TABLE kpi_hour_intent (
    hour      bigint NOT NULL,
    intent    text NOT NULL,
    turns     bigint NOT NULL,
    low_turns bigint NOT NULL,
    nlu_sum   double precision NOT NULL,
    calls     bigint NOT NULL,
    escalated bigint NOT NULL,
    repeats   bigint NOT NULL,
    PRIMARY KEY (hour, intent)
);

CREATE TABLE kpi_hour_reason (
    hour   bigint NOT NULL,
    reason text NOT NULL,
    calls  bigint NOT NULL,
    PRIMARY KEY (hour, reason)
);

CREATE TABLE kpi_hour_tth (
    hour  bigint NOT NULL,
    bin   integer NOT NULL,
    calls bigint NOT NULL,
    PRIMARY KEY (hour, bin)
);

-- Calls to review, newest first.
CREATE INDEX calls_review ON calls (started_at DESC)
    WHERE csat <= 2 OR low_turns >= 2 OR queue_state = 'abandoned' OR outcome IN ('failed', 'dropped')
       OR (outcome = 'abandoned' AND escalated_at IS NOT NULL);

-- Existing calls: every hour is out of date.
INSERT INTO kpi_dirty (hour) SELECT DISTINCT kpi_hour_of(started_at) FROM calls;
