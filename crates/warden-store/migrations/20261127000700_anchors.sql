-- Retention: pruning old rows leaves a signed anchor naming the first row
-- kept and the hash it chains to, so what remains still verifies.
CREATE TABLE anchors (
    id                    INTEGER PRIMARY KEY,
    first_row_id          INTEGER NOT NULL,
    prev_hash             TEXT NOT NULL,
    pruned_rows           INTEGER NOT NULL,
    pruned_checkpoints_to INTEGER NOT NULL,
    time_us               INTEGER NOT NULL,
    public_key            TEXT NOT NULL,
    signature             TEXT NOT NULL
);
