-- A person an admin added chooses their own password and enrols their own
-- second factor with a one-time code the admin hands over; only the code's
-- hash is kept, and it is gone once used.
CREATE TABLE enrolments (
    user_id    INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    expires_s  INTEGER NOT NULL
);
