//! Proving and changing a password (the vault key and the authenticator
//! secret are sealed again under the new one).

use super::*;

impl Api {
    /// The signed-in person proves their password again (counted toward
    /// the account's lockout like a sign-in); a wrong one is logged.
    pub(super) async fn prove_password(
        &self,
        actor: &User,
        pw: &Sensitive<String>,
    ) -> ApiResult<()> {
        let now = self.clock.now();
        let store = self.store.clone();
        let n = actor.name.clone();
        let creds = blocking(move || Ok(users::credentials(&store.connect()?, &n)?))
            .await?
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "your account is gone"))?;
        // The hash checked against must be the one Warden sealed.
        creds.checked()?;
        if let Err(until) = self.begin_attempt(creds.user.id, now).await? {
            return Err(locked_out(until, now));
        }
        let stored = creds.password_hash.clone();
        let given = pw.clone();
        let ok = tokio::task::spawn_blocking(move || password::verify(&stored, &given))
            .await
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        if !ok {
            self.record("person.password_check_failed", None, None, None)
                .await?;
            return Err(ApiError::new(
                ErrorCode::Unauthenticated,
                "your current password is not right; check it and try again",
            ));
        }
        Ok(())
    }

    /// The signed-in person changes their password, proving the old one.
    /// Their authenticator secret is sealed again under the new one.
    pub(crate) async fn change_password(
        &self,
        actor: &User,
        session: &Sensitive<String>,
        current: Sensitive<String>,
        new: Sensitive<String>,
    ) -> ApiResult<()> {
        let keep = warden_auth::hash_token("session", session.expose());
        self.prove_password(actor, &current).await?;
        password::check_policy(new.expose(), &actor.name)
            .map_err(|m| ApiError::new(ErrorCode::InvalidInput, m))?;
        let before = self.stored_totp(actor.id).await?;
        let secret = self.open_totp(actor.id, &current).await?;
        if before.is_some() && secret.is_none() {
            // Changing the password now would leave the authenticator
            // sealed under the old one, for good.
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "your authenticator could not be unlocked with your current password, so your password was not changed: sign in again, or ask an admin to reset your sign-in",
            ));
        }
        // Everything that can fail before the keychain is written.
        let hash = hash_password(new.clone()).await?;
        let vault_sealed = self.seal_for_person(actor.id, &new).await?;
        if let Some((_, secret)) = secret {
            self.seal_totp(actor.id, &new, secret).await?;
        }
        let store = self.store.clone();
        let id = actor.id;
        let changed = blocking(move || {
            let conn = store.connect()?;
            users::set_password(&conn, id, &hash, &vault_sealed, &keep)?;
            users::record_success(&conn, id)?;
            Ok(())
        })
        .await;
        if let (Err(e), Some(before)) = (&changed, before) {
            // The old password stays; so must what it opens.
            let account = self.totp_account(actor.id)?;
            let kc = self.keychain.clone();
            let _ = tokio::task::spawn_blocking(move || kc.set(&account, &before)).await;
            self.forget_totp(actor.id);
            return Err(e.clone());
        }
        changed?;
        self.record("person.password_changed", None, None, None)
            .await
    }
}
