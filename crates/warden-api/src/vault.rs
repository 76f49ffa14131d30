//! Unlocking Warden: the vault key that seals the rows saying who is a
//! person (`warden-store/src/vault.rs`) is kept only sealed under each
//! person's password and each waiting enrolment code. A process holds it
//! once someone proved one of those here: `warden init` makes it, a
//! password sign-in or `warden unlock` opens it, an enrolment opens it with
//! the code. What a same-user process can write to the files (a session
//! row, a person, a recovery code) is refused unless it was sealed by a
//! process that held the key.

use warden_auth::{Sensitive, seal};
use warden_store::users;
use warden_store::vault::{KEY_LEN, Opened};

use crate::{Api, ApiError, ApiResult, ErrorCode, blocking};

/// What the vault key is sealed for: one person's password…
fn person_context(user_id: i64) -> String {
    format!("warden vault key, person {user_id}")
}

/// …or one person's enrolment code.
fn enrolment_context(user_id: i64) -> String {
    format!("warden vault key, enrolment of person {user_id}")
}

const CHANGED: &str = "this account's record was changed outside Warden, so Warden does not trust it; ask an admin to reset your sign-in (`warden user reset NAME`)";

/// Tells apart the errors of a vault that another key opened.
fn mismatch() -> ApiError {
    ApiError::new(ErrorCode::Forbidden, CHANGED)
}

impl Api {
    /// A new vault key for a new install, held from now on.
    pub(crate) fn new_vault(&self) -> ApiResult<()> {
        let mut key = [0u8; KEY_LEN];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
        let opened = self.store.vault().open(&key);
        key.fill(0);
        match opened {
            Ok(_) => Ok(()),
            Err(_) => Err(ApiError::new(
                ErrorCode::Conflict,
                "this Warden is unlocked with another install's key already",
            )),
        }
    }

    /// The held key sealed under `secret` (a password, an enrolment code).
    async fn seal_key(&self, secret: &Sensitive<String>, context: String) -> ApiResult<String> {
        let key = self.store.vault().key().ok_or_else(locked)?;
        let secret = secret.clone();
        let sealed = blocking(move || {
            let key = Sensitive::new(key);
            seal::seal(&secret, &context, key.expose())
                .map_err(|e| ApiError::new(ErrorCode::Internal, e))
        })
        .await?;
        Ok(sealed.into_inner())
    }

    /// The held key sealed under a person's (new) password.
    pub(crate) async fn seal_for_person(
        &self,
        user_id: i64,
        pw: &Sensitive<String>,
    ) -> ApiResult<String> {
        self.seal_key(pw, person_context(user_id)).await
    }

    /// The held key sealed under a person's enrolment code.
    pub(crate) async fn seal_for_enrolment(
        &self,
        user_id: i64,
        code: &Sensitive<String>,
    ) -> ApiResult<String> {
        self.seal_key(code, enrolment_context(user_id)).await
    }

    /// Opens a sealed key with `secret` and holds it, or checks it against
    /// the one held. `Ok(false)` when `secret` does not open it (a wrong
    /// password or code: the caller counts and answers that as it does).
    async fn open_key(
        &self,
        sealed: Option<String>,
        secret: &Sensitive<String>,
        context: String,
    ) -> ApiResult<bool> {
        let secret = secret.clone();
        let Some(text) = sealed else {
            // Nothing sealed for them (an account from before the vault).
            return Ok(false);
        };
        let opened = blocking(move || Ok(seal::open(&secret, &context, &text))).await?;
        let Some(key) = opened else {
            return Ok(false);
        };
        let Ok(key) = <[u8; KEY_LEN]>::try_from(key.expose().as_slice()) else {
            return Err(mismatch());
        };
        match self.store.vault().open(&key) {
            Ok(Opened::Already) => Ok(true),
            Ok(Opened::Now) => {
                self.after_unlock().await;
                Ok(true)
            }
            Err(_) => Err(mismatch()),
        }
    }

    /// Opens the vault with a person's password; `Ok(false)` when it does
    /// not open. The person's row is read again once it is open, and must
    /// check. (A row a same-user process made whole, sealed under a key of
    /// its own, opens with its password and checks under that key: while
    /// Warden holds this install's key, that key is refused; a Warden it
    /// restarted holds none, which the README names.)
    pub(crate) async fn unlock_as(
        &self,
        creds: &users::Credentials,
        pw: &Sensitive<String>,
    ) -> ApiResult<Option<users::Credentials>> {
        let was_open = self.store.vault().is_open();
        if !self
            .open_key(creds.vault.clone(), pw, person_context(creds.user.id))
            .await?
        {
            return Ok(None);
        }
        let store = self.store.clone();
        let name = creds.user.name.clone();
        let fresh = blocking(move || Ok(users::credentials(&store.connect()?, &name)?)).await?;
        match fresh {
            Some(c) if c.checked().is_ok() => Ok(Some(c)),
            _ => {
                if !was_open {
                    self.store.vault().close();
                }
                Err(mismatch())
            }
        }
    }

    /// Opens the vault with an enrolment code; `Ok(false)` when it does not.
    pub(crate) async fn unlock_enrolment(
        &self,
        user_id: i64,
        enrolment: &users::Enrolment,
        code: &Sensitive<String>,
    ) -> ApiResult<bool> {
        let was_open = self.store.vault().is_open();
        if !self
            .open_key(enrolment.vault.clone(), code, enrolment_context(user_id))
            .await?
        {
            return Ok(false);
        }
        let store = self.store.clone();
        let fresh = blocking(move || Ok(users::enrolment(&store.connect()?, user_id)?)).await?;
        match fresh {
            Some(e) if e.checked().is_ok() => Ok(true),
            _ => {
                if !was_open {
                    self.store.vault().close();
                }
                Err(mismatch())
            }
        }
    }

    /// Unlocks this process with the password of the person a session
    /// names (the CLI with no Warden running, `warden unlock`). The session
    /// itself is checked once the vault is open.
    /// `record` writes an `auth.unlocked` row: for a running Warden, not
    /// for each command of a CLI that opens the files itself.
    pub async fn unlock(
        &self,
        session: &Sensitive<String>,
        pw: Sensitive<String>,
        record: bool,
    ) -> ApiResult<users::User> {
        let creds = self.session_credentials(session).await?;
        self.unlock_person(&creds.user.name, pw, record).await?;
        // The session must check now.
        self.session_user(session).await
    }

    async fn session_credentials(
        &self,
        session: &Sensitive<String>,
    ) -> ApiResult<users::Credentials> {
        let hash = warden_auth::hash_token("session", session.expose());
        let store = self.store.clone();
        blocking(move || {
            let conn = store.connect()?;
            let Some(name) = users::session_person_unchecked(&conn, &hash)? else {
                return Ok(None);
            };
            Ok(users::credentials(&conn, &name)?)
        })
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthenticated,
                "your session has ended: sign in again with `warden login NAME`",
            )
        })
    }

    /// Whether the session's person has a password that unlocks Warden
    /// (one who signs in only through the identity provider has not).
    pub async fn session_can_unlock(&self, session: &Sensitive<String>) -> ApiResult<bool> {
        Ok(self.session_credentials(session).await?.vault.is_some())
    }

    /// Unlocks this process with `name`'s password.
    pub async fn unlock_person(
        &self,
        name: &str,
        pw: Sensitive<String>,
        record: bool,
    ) -> ApiResult<users::User> {
        let store = self.store.clone();
        let n = name.to_string();
        let creds = blocking(move || Ok(users::credentials(&store.connect()?, &n)?))
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthenticated,
                    "that name and password do not unlock Warden; check them and try again",
                )
            })?;
        // Only a wrong password counts toward the lockout here: the password
        // alone proves nothing a second factor guards, and its hash is in
        // a file a same-user process reads and can guess against anyway.
        let now = self.clock.now();
        if let Some(until) = self.locked_until(creds.user.id, creds.locked_until_s, now) {
            return Err(crate::people::locked_out(until, now));
        }
        let stored = creds.password_hash.clone();
        let given = pw.clone();
        let pw_ok =
            tokio::task::spawn_blocking(move || warden_auth::password::verify(&stored, &given))
                .await
                .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        let unlocked = if pw_ok {
            self.unlock_as(&creds, &pw).await?
        } else {
            None
        };
        if unlocked.is_none() {
            if let Err(until) = self.begin_attempt(creds.user.id, now).await? {
                return Err(crate::people::locked_out(until, now));
            }
            let _ = self
                .record_attempt(
                    "auth.unlock_failed",
                    &creds.user.name,
                    false,
                    "wrong password",
                )
                .await;
            return Err(ApiError::new(
                ErrorCode::Unauthenticated,
                "that password is not right; check it and try again",
            ));
        }
        let user = creds.user;
        if record {
            self.record_attempt("auth.unlocked", &user.name, true, "password")
                .await?;
        }
        Ok(user)
    }

    /// Once a key is held: every row that does not check is written down,
    /// so a person sees what was refused.
    async fn after_unlock(&self) {
        let store = self.store.clone();
        let found = blocking(move || Ok(warden_store::vault::breaches(&store.connect()?)?)).await;
        match found {
            Ok(found) if found.is_empty() => {}
            Ok(found) => {
                let rows: Vec<String> = found.into_iter().map(|(_, what)| what).collect();
                tracing::warn!(rows = ?rows, "rows changed outside Warden are refused");
                self.record_row_refused(
                    serde_json::json!({"why": "changed outside Warden", "rows": rows}),
                )
                .await;
            }
            Err(e) => tracing::warn!(error = %e.message, "could not check the sealed rows"),
        }
    }
}

impl Api {
    /// A `store.row_refused` row: a sealed row did not check. Best effort:
    /// the refusal stands whether or not the row could be written.
    pub(crate) async fn record_row_refused(&self, detail: serde_json::Value) {
        let _ = self
            .store
            .activity()
            .append(warden_store::NewEvent {
                kind: "store.row_refused".into(),
                outcome: Some("refused".into()),
                detail: Some(detail.to_string()),
                ..Default::default()
            })
            .await;
    }
}

fn locked() -> ApiError {
    ApiError::from(warden_store::Error::Locked)
}
