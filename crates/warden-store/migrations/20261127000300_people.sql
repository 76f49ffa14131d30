-- People: local accounts (argon2id password + TOTP). The TOTP secret lives in
-- the OS keychain; only hashes of recovery codes and session tokens are here.
CREATE TABLE users (
    id               INTEGER PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    role             TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    status           TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    password_hash    TEXT NOT NULL,
    totp_enrolled    INTEGER NOT NULL DEFAULT 0,
    totp_last_step   INTEGER,
    failed_attempts  INTEGER NOT NULL DEFAULT 0,
    locked_until_s   INTEGER,
    created_at_us    INTEGER NOT NULL,
    last_login_us    INTEGER
);

CREATE TABLE recovery_codes (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    used_at_us INTEGER,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_s   INTEGER NOT NULL,
    last_seen_s INTEGER NOT NULL,
    expires_s   INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Whose agent it is (its actions are attributed to that person).
ALTER TABLE agents ADD COLUMN owner_id INTEGER REFERENCES users(id);
CREATE INDEX agents_owner ON agents (owner_id);

-- Roles a member may give the agents they create for themselves.
CREATE TABLE user_agent_roles (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role_id INTEGER NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, role_id)
);
