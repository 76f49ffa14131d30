-- Agent credentials expire and rotate: the current one, and during a short
-- overlap after rotation, the previous one. Only keyed hashes are kept.
ALTER TABLE agents ADD COLUMN expires_at_us INTEGER;
ALTER TABLE agents ADD COLUMN previous_hash TEXT;
ALTER TABLE agents ADD COLUMN previous_expires_at_us INTEGER;
ALTER TABLE agents ADD COLUMN rotated_at_us INTEGER;
INSERT OR IGNORE INTO settings (key, value) VALUES ('agent_max_days', '365');
INSERT OR IGNORE INTO settings (key, value) VALUES ('review_interval_days', '90');
