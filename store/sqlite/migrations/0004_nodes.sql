-- Nodes: which parley server answered each call, and the servers' heartbeats,
-- so calls left open by a server that stopped are ended with their transcripts.
ALTER TABLE calls ADD COLUMN node TEXT NOT NULL DEFAULT '';
CREATE INDEX calls_open_node ON calls (node) WHERE ended_at IS NULL;

CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    addr         TEXT NOT NULL DEFAULT '',
    heartbeat_at INTEGER NOT NULL
) STRICT;
