-- Small facts about this install, such as its random id (which namespaces
-- this install's entries in the OS keychain).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO settings (key, value) VALUES ('install_id', lower(hex(randomblob(8))));
