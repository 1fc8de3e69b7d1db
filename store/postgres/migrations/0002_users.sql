-- Console users and their login sessions. Only the SHA-256 of a session
-- token is stored; deleting a user ends their sessions.

CREATE TABLE users (
    id            text PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    role          text NOT NULL,
    skills        text[] NOT NULL DEFAULT '{}',
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL
);

CREATE TABLE sessions (
    token_hash text PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf       text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);
