-- Sign-in with an OpenID provider: the provider's subject a person is bound
-- to, whether the provider's refusal suspended their agents, and which
-- sessions follow the provider (refreshed in the background).
ALTER TABLE users ADD COLUMN sso_subject TEXT;
CREATE UNIQUE INDEX users_sso_subject ON users (sso_subject) WHERE sso_subject IS NOT NULL;
ALTER TABLE users ADD COLUMN sso_suspended INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN sso_next_refresh_s INTEGER;
