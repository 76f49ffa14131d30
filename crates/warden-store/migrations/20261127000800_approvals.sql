-- Approvals, risk and tool pinning.

-- An allow that also covers high-risk tools without asking a person.
ALTER TABLE grants ADD COLUMN explicit INTEGER NOT NULL DEFAULT 0;

-- An admin's risk decision for one tool, with the reason people are shown.
CREATE TABLE tool_risk (
    server    TEXT NOT NULL,
    tool      TEXT NOT NULL,
    risk      TEXT NOT NULL CHECK (risk IN ('low', 'high', 'critical')),
    reason    TEXT NOT NULL,
    set_by    TEXT NOT NULL,
    set_at_us INTEGER NOT NULL,
    PRIMARY KEY (server, tool)
);

-- Per server: whether an admin trusts its annotations, whether tools it adds
-- later are trusted without review, and the admin's consent to its exact
-- local command.
CREATE TABLE server_policy (
    server              TEXT PRIMARY KEY,
    trusted             INTEGER NOT NULL DEFAULT 0,
    auto_trust_new      INTEGER NOT NULL DEFAULT 0,
    consent_hash        TEXT,
    consented_by        TEXT,
    consented_at_us     INTEGER,
    first_catalog_at_us INTEGER
);

-- The definitions of tools as servers presented them. A tool is pinned the
-- first time it is allowed; a different definition later is quarantined
-- until an admin accepts or rejects it.
CREATE TABLE tool_pins (
    server            TEXT NOT NULL,
    tool              TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('seen', 'pinned', 'quarantined', 'rejected')),
    reason            TEXT CHECK (reason IN ('changed', 'new')),
    pinned_hash       TEXT,
    pinned_definition TEXT,
    seen_hash         TEXT NOT NULL,
    seen_definition   TEXT NOT NULL,
    rejected_hash     TEXT,
    updated_at_us     INTEGER NOT NULL,
    PRIMARY KEY (server, tool)
);

-- "Always allow these exact arguments": one agent, one tool definition, one
-- arguments hash. Visible and revocable.
CREATE TABLE standing_approvals (
    id              INTEGER PRIMARY KEY,
    agent_id        INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    server          TEXT NOT NULL,
    tool            TEXT NOT NULL,
    arguments_hash  TEXT NOT NULL,
    definition_hash TEXT NOT NULL,
    arguments       TEXT,
    created_by      TEXT NOT NULL,
    created_at_us   INTEGER NOT NULL,
    UNIQUE (agent_id, server, tool, arguments_hash, definition_hash)
);

-- When a session's person last proved their second factor: sign-in or a
-- step-up. Sensitive changes need it to be recent.
ALTER TABLE sessions ADD COLUMN mfa_at_s INTEGER;
