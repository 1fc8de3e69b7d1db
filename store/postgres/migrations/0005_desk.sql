-- The desk shared by the nodes of a cluster: agents (on the node whose
-- console they use) and the queue of calls waiting for a human (held by the
-- node that has the call's audio). Offers are made with SELECT ... FOR
-- UPDATE SKIP LOCKED, so each call is offered to one agent at a time and
-- taken by exactly one.
CREATE TABLE desk_agents (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    skills     text[] NOT NULL DEFAULT '{}',
    state      text NOT NULL,
    since      timestamptz NOT NULL,
    idle_since timestamptz NOT NULL,
    call_id    text NOT NULL DEFAULT '',
    handled    integer NOT NULL DEFAULT 0,
    node       text NOT NULL DEFAULT '',
    leaving    boolean NOT NULL DEFAULT false
);

CREATE TABLE desk_queue (
    call_id        text PRIMARY KEY,
    node           text NOT NULL DEFAULT '',
    from_number    text NOT NULL DEFAULT '',
    skill          text NOT NULL DEFAULT '',
    priority       boolean NOT NULL DEFAULT false,
    reasons        jsonb NOT NULL DEFAULT '[]',
    queued_at      timestamptz NOT NULL,
    skill_deadline timestamptz,
    offered_to     text NOT NULL DEFAULT '',
    offered_at     timestamptz,
    declined       text[] NOT NULL DEFAULT '{}'
);

-- The moving mean of human handle times (one row), for wait estimates.
CREATE TABLE desk_stats (
    id          integer PRIMARY KEY CHECK (id = 1),
    handle_n    integer NOT NULL DEFAULT 0,
    handle_mean bigint NOT NULL DEFAULT 0 -- nanoseconds
);
INSERT INTO desk_stats (id) VALUES (1);

-- Bodies of cluster messages too big for a NOTIFY payload; the
-- notification carries the row id. Rows older than a few minutes are
-- deleted.
CREATE TABLE bus_messages (
    id         bigserial PRIMARY KEY,
    body       bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
