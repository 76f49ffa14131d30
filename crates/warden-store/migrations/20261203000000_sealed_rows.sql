-- The rows that say who is a person carry a seal: an HMAC under the vault
-- key, which only a process a person unlocked with their password holds
-- (vault.rs). `vault` is that key, sealed under the person's password (or,
-- for an enrolment, under the enrolment code).
ALTER TABLE users ADD COLUMN vault TEXT;
ALTER TABLE users ADD COLUMN seal BLOB;
ALTER TABLE sessions ADD COLUMN seal BLOB;
ALTER TABLE recovery_codes ADD COLUMN seal BLOB;
ALTER TABLE enrolments ADD COLUMN vault TEXT;
ALTER TABLE enrolments ADD COLUMN seal BLOB;
