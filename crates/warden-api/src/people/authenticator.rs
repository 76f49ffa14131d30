//! The person's authenticator secret: sealed under their password in the
//! keychain, opened at a password sign-in and kept in this process's memory
//! for later codes, and the check of one code (each step once).

use super::*;

impl Api {
    pub(super) fn totp_account(&self, user_id: i64) -> ApiResult<String> {
        Ok(format!("{}/totp/{user_id}", self.store.install_id()?))
    }

    /// The person's TOTP secret, opened with their password, with the
    /// sealed text it came from (`None` for a secret an older Warden kept
    /// in the clear, which [`Api::seal_legacy_totp`] seals once a sign-in
    /// succeeded). Nothing is remembered here: a value that opens may be
    /// one a same-user process sealed under a password of its own, so it
    /// is kept only once the caller has checked the password against the
    /// person's hash and the code against the secret.
    pub(super) async fn open_totp(
        &self,
        user_id: i64,
        pw: &Sensitive<String>,
    ) -> ApiResult<Option<crate::Unlocked>> {
        let Some(stored) = self.stored_totp(user_id).await? else {
            return Ok(None);
        };
        if !warden_auth::seal::is_sealed(stored.expose()) {
            return Ok(totp::decode_secret(stored.expose()).map(|s| (None, Sensitive::new(s))));
        }
        let account = self.totp_account(user_id)?;
        let (pw, text) = (pw.clone(), stored.clone());
        let opened = tokio::task::spawn_blocking(move || {
            warden_auth::seal::open(&pw, &account, text.expose())
        })
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        Ok(opened.map(|secret| (Some(stored.into_inner()), secret)))
    }

    /// Keeps an opened secret in this process's memory, so that a running
    /// Warden checks later codes (step-up) without the password.
    pub(super) fn remember_totp(&self, user_id: i64, opened: crate::Unlocked) {
        if let (Some(from), secret) = opened {
            self.unlocked_lock().insert(user_id, (Some(from), secret));
        }
    }

    /// What the keychain holds for the person's authenticator: sealed, or
    /// in the clear from an older Warden.
    pub(super) async fn stored_totp(&self, user_id: i64) -> ApiResult<Option<Sensitive<String>>> {
        let account = self.totp_account(user_id)?;
        let kc = self.keychain.clone();
        tokio::task::spawn_blocking(move || kc.get(&account))
            .await
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
            .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))
    }

    pub(super) fn unlocked_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<i64, crate::Unlocked>> {
        self.unlocked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The secret this process opened at the person's last password
    /// sign-in through it, while the keychain still holds what it was
    /// opened from: a new authenticator set up through another process (or
    /// a reset) retires what this one remembers.
    pub(super) async fn unlocked_totp(
        &self,
        user_id: i64,
    ) -> ApiResult<Option<Sensitive<Vec<u8>>>> {
        let Some((Some(from), secret)) = self.unlocked_lock().get(&user_id).cloned() else {
            return Ok(None);
        };
        let now = self.stored_totp(user_id).await?;
        if now.as_ref().map(|s| s.expose()) == Some(&from) {
            Ok(Some(secret))
        } else {
            self.forget_totp(user_id);
            Ok(None)
        }
    }

    /// Whether this process can check the person's codes without their
    /// password.
    pub(crate) async fn has_unlocked_totp(&self, user_id: i64) -> ApiResult<bool> {
        Ok(self.unlocked_totp(user_id).await?.is_some())
    }

    /// Seals `secret` under the person's password and keeps it in the
    /// keychain (and in this process's memory).
    pub(super) async fn seal_totp(
        &self,
        user_id: i64,
        pw: &Sensitive<String>,
        secret: Sensitive<Vec<u8>>,
    ) -> ApiResult<()> {
        let account = self.totp_account(user_id)?;
        let kc = self.keychain.clone();
        let (pw, plain) = (pw.clone(), secret.clone());
        let sealed = tokio::task::spawn_blocking(move || {
            let sealed = warden_auth::seal::seal(&pw, &account, plain.expose())
                .map_err(|e| ApiError::new(ErrorCode::Internal, e))?;
            kc.set(&account, &sealed)
                .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?;
            Ok::<_, ApiError>(sealed)
        })
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))??;
        self.unlocked_lock()
            .insert(user_id, (Some(sealed.into_inner()), secret));
        Ok(())
    }

    /// After a successful sign-in: a secret an older Warden kept in the
    /// clear is sealed under the password that just proved itself.
    pub(super) async fn seal_legacy_totp(
        &self,
        user_id: i64,
        pw: &Sensitive<String>,
    ) -> ApiResult<()> {
        match self.stored_totp(user_id).await? {
            Some(s) if !warden_auth::seal::is_sealed(s.expose()) => {
                match totp::decode_secret(s.expose()) {
                    Some(plain) => self.seal_totp(user_id, pw, Sensitive::new(plain)).await,
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// Forgets what this process opened for the person (their sign-in was
    /// reset, or they set up a new authenticator).
    pub(super) fn forget_totp(&self, user_id: i64) {
        self.unlocked_lock().remove(&user_id);
        self.forget_last_step(user_id);
    }

    /// Checks a TOTP code against the person's secret and, when it is
    /// right and `take` says so, takes its step: once, however many
    /// requests carry the code. `None` when the person has no secret, or
    /// when it is sealed and `unseal` cannot open it (a wrong password, or
    /// a running Warden that has not seen the person's password).
    pub(crate) async fn check_totp(
        &self,
        creds: &users::Credentials,
        code: &str,
        now: i64,
        take: bool,
        unseal: Unseal<'_>,
    ) -> ApiResult<Option<Result<i64, totp::Rejected>>> {
        let opened = match unseal {
            Unseal::Password(pw) => self.open_totp(creds.user.id, pw).await?,
            Unseal::Unlocked => self.unlocked_totp(creds.user.id).await?.map(|s| (None, s)),
        };
        let Some(opened) = opened else {
            return Ok(None);
        };
        let last = self.last_step(creds.user.id, creds.totp_last_step);
        let verdict = totp::verify(opened.1.expose(), code, now, last);
        let Ok(step) = verdict else {
            return Ok(Some(verdict));
        };
        if !take {
            return Ok(Some(verdict));
        }
        let store = self.store.clone();
        let id = creds.user.id;
        let claimed = blocking(move || Ok(users::claim_totp_step(&store.connect()?, id, step)?))
            .await?
            && self.claim_step_here(id, step);
        Ok(Some(if claimed {
            // `take` means the caller proved the password (or the secret
            // came from memory already).
            self.remember_totp(id, opened);
            Ok(step)
        } else {
            Err(totp::Rejected::Replayed)
        }))
    }
}
