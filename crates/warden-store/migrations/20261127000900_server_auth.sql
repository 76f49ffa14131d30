-- Sign-ins to remote servers (OAuth): what people may see. The tokens and
-- any client secret are in the OS keychain, never here.
CREATE TABLE server_auth (
    server              TEXT PRIMARY KEY,
    issuer              TEXT NOT NULL,
    resource            TEXT NOT NULL,
    client_id           TEXT NOT NULL,
    client_kind         TEXT NOT NULL,
    redirect_uri        TEXT,
    scopes              TEXT,
    expires_at_s        INTEGER,
    token_endpoint      TEXT NOT NULL,
    revocation_endpoint TEXT,
    signed_in_at_us     INTEGER NOT NULL,
    signed_in_by        TEXT,
    last_refresh_at_us  INTEGER,
    last_error          TEXT
);

-- The newest authorization probe of each server: does it refuse bad tokens?
CREATE TABLE server_probes (
    server  TEXT PRIMARY KEY,
    verdict TEXT NOT NULL,
    checks  TEXT NOT NULL,
    at_us   INTEGER NOT NULL
);
