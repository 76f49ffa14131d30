-- Signed checkpoints of the activity chain: every so many rows and at
-- shutdown, the newest row's id and hash and the number of rows so far,
-- signed with an ed25519 key held in the OS keychain.
CREATE TABLE checkpoints (
    seq        INTEGER PRIMARY KEY,
    row_id     INTEGER NOT NULL,
    row_hash   TEXT NOT NULL,
    row_count  INTEGER NOT NULL,
    time_us    INTEGER NOT NULL,
    public_key TEXT NOT NULL,
    signature  TEXT NOT NULL
);
