-- Roles hold grants of (server, tool pattern) → allow | ask | deny.
CREATE TABLE roles (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    description   TEXT NOT NULL DEFAULT '',
    created_at_us INTEGER NOT NULL
);

CREATE TABLE grants (
    id       INTEGER PRIMARY KEY,
    role_id  INTEGER NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    server   TEXT NOT NULL,
    pattern  TEXT NOT NULL,
    effect   TEXT NOT NULL CHECK (effect IN ('allow', 'ask', 'deny')),
    UNIQUE (role_id, server, pattern)
);

CREATE TABLE agent_roles (
    agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    role_id  INTEGER NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (agent_id, role_id)
);
