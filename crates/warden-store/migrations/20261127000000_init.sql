-- Agents: one identity per MCP client or automation. Only a hash of the
-- credential is kept; the credential itself is shown once and never stored.
CREATE TABLE agents (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    credential_hash TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL DEFAULT 'active',
    created_at_us   INTEGER NOT NULL,
    last_used_at_us INTEGER
);

-- The activity log: append-only. Each row chains the previous row's hash.
-- Times are microseconds since the Unix epoch (UTC), so ranges use the index.
CREATE TABLE activity (
    id              INTEGER PRIMARY KEY,
    time_us         INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    call_id         TEXT,
    agent           TEXT,
    on_behalf_of    TEXT,
    chain           TEXT,
    server          TEXT,
    tool            TEXT,
    arguments       TEXT,
    arguments_hash  TEXT,
    risk            TEXT,
    decision        TEXT,
    approver        TEXT,
    outcome         TEXT,
    latency_us      INTEGER,
    detail          TEXT,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL
);
CREATE INDEX activity_time ON activity (time_us);
CREATE INDEX activity_agent_time ON activity (agent, time_us);
CREATE INDEX activity_server_tool_time ON activity (server, tool, time_us);
CREATE INDEX activity_call ON activity (call_id);

CREATE TRIGGER activity_no_update BEFORE UPDATE ON activity
BEGIN SELECT RAISE(ABORT, 'the activity log is append-only'); END;
