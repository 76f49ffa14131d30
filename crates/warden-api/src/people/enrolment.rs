//! Setting up an account: the first admin at `init`, an admin's invitation
//! with a one-time code, the person's own enrolment with it, a new
//! authenticator and new recovery codes later.

use super::*;

impl Api {
    /// Creates the first admin of a new install: a password, a fresh TOTP
    /// secret (sealed in the keychain), ten recovery codes (kept as hashes),
    /// and the install's vault key, sealed under the password.
    pub(crate) async fn enroll_first_admin(
        &self,
        name: &str,
        pw: Sensitive<String>,
    ) -> ApiResult<Enrollment> {
        let (role, first_admin) = ("admin", true);
        validate_person_name(name)?;
        password::check_policy(pw.expose(), name)
            .map_err(|m| ApiError::new(ErrorCode::InvalidInput, m))?;
        // A Warden that holds a key is an install already, whatever the
        // people table (which a same-user process can empty) says: a new
        // admin made here would have that key sealed under a password the
        // caller chose.
        if self.store.vault().is_open() {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "Warden already has an admin: sign in with `warden login NAME`",
            ));
        }
        let store = self.store.clone();
        if blocking(move || Ok(users::count(&store.connect()?)?)).await? > 0 {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "Warden already has an admin: sign in with `warden login NAME`",
            ));
        }
        self.new_vault()?;
        let hash = hash_password(pw.clone()).await?;
        let codes = warden_auth::recovery_codes();
        let hashes = recovery_hashes(&codes);
        let store = self.store.clone();
        let (n, r) = (name.to_string(), role.to_string());
        let user = blocking(move || {
            let mut conn = store.connect()?;
            let tx = conn.transaction().map_err(warden_store::Error::from)?;
            if first_admin && users::count(&tx)? > 0 {
                return Err(ApiError::new(
                    ErrorCode::Conflict,
                    "Warden already has an admin: sign in with `warden login NAME`",
                ));
            }
            let user = users::insert(&tx, &n, &r, &hash)?;
            users::add_recovery_codes(&tx, user.id, &hashes)?;
            tx.commit().map_err(warden_store::Error::from)?;
            Ok(user)
        })
        .await?;
        let sealed = match self.seal_for_person(user.id, &pw).await {
            Ok(s) => s,
            Err(e) => {
                let store = self.store.clone();
                let id = user.id;
                let _ = blocking(move || Ok(users::remove(&store.connect()?, id)?)).await;
                return Err(e);
            }
        };
        let store = self.store.clone();
        let id = user.id;
        blocking(move || Ok(users::set_vault(&store.connect()?, id, &sealed)?)).await?;
        match self.new_totp(&user, &pw).await {
            Ok(e) => Ok(Enrollment {
                recovery_codes: codes,
                ..e
            }),
            Err(e) => {
                // No keychain, no account: nothing half-made is left behind.
                let store = self.store.clone();
                let id = user.id;
                let _ = blocking(move || Ok(users::remove(&store.connect()?, id)?)).await;
                Err(e)
            }
        }
    }

    /// Adds a person who enrols themselves with the code this returns.
    pub(crate) async fn invite(&self, name: &str, role: &str) -> ApiResult<Invitation> {
        validate_person_name(name)?;
        let store = self.store.clone();
        let (n, r) = (name.to_string(), role.to_string());
        let user = blocking(move || {
            Ok(users::insert(
                &store.connect()?,
                &n,
                &r,
                users::NO_PASSWORD,
            )?)
        })
        .await?;
        self.new_enrolment(user).await
    }

    /// A new enrolment code for a person: their password, authenticator and
    /// recovery codes stop working, and their sessions end.
    pub(crate) async fn new_enrolment(&self, user: User) -> ApiResult<Invitation> {
        let code = warden_auth::enrolment_code();
        let normal = Sensitive::new(normalize_code(code.expose()));
        let hash = warden_auth::hash_token("enrolment", normal.expose());
        let sealed = self.seal_for_enrolment(user.id, &normal).await?;
        let expires_s = self.clock.now() + ENROLMENT_S;
        let store = self.store.clone();
        let id = user.id;
        blocking(move || {
            Ok(users::start_enrolment(
                &mut store.connect()?,
                id,
                &hash,
                expires_s,
                &sealed,
            )?)
        })
        .await?;
        self.forget_totp(user.id);
        self.forget_attempts(user.id);
        let account = self.totp_account(user.id)?;
        let kc = self.keychain.clone();
        let _ = tokio::task::spawn_blocking(move || kc.delete(&account)).await;
        let store = self.store.clone();
        let user = blocking(move || Ok(users::by_id(&store.connect()?, id)?))
            .await?
            .unwrap_or(user);
        Ok(Invitation {
            user,
            code,
            expires_s,
        })
    }

    /// A person enrols: the admin's one-time code, a password of their own
    /// choosing, and a fresh authenticator secret and recovery codes shown
    /// only to them. Wrong codes count toward the account's lockout.
    pub(crate) async fn enrol(
        &self,
        name: &str,
        code: &str,
        pw: Sensitive<String>,
    ) -> ApiResult<Enrollment> {
        let now = self.clock.now();
        let store = self.store.clone();
        let n = name.to_string();
        let found = blocking(move || {
            let conn = store.connect()?;
            let Some(creds) = users::credentials(&conn, &n)? else {
                return Ok(None);
            };
            Ok(users::enrolment(&conn, creds.user.id)?.map(|e| (creds, e)))
        })
        .await?;
        let refuse = |why: &'static str| async move {
            let _ = self.record_enrolment(name, false, why).await;
            ApiError::new(ErrorCode::Unauthenticated, ENROLMENT_FAILED)
        };
        let Some((creds, waiting)) = found else {
            return Err(refuse("no enrolment waiting").await);
        };
        let (stored_hash, expires_s) = (waiting.code_hash.clone(), waiting.expires_s);
        if let Err(until) = self.begin_attempt(creds.user.id, now).await? {
            let _ = self
                .record_enrolment(name, false, "locked after failed attempts")
                .await;
            return Err(locked_out(until, now));
        }
        let hash = warden_auth::hash_token("enrolment", &normalize_code(code));
        let matches: bool =
            subtle::ConstantTimeEq::ct_eq(hash.as_bytes(), stored_hash.as_bytes()).into();
        if !matches {
            return Err(refuse("wrong enrolment code").await);
        }
        if now > expires_s {
            return Err(refuse("enrolment code expired").await);
        }
        password::check_policy(pw.expose(), name)
            .map_err(|m| ApiError::new(ErrorCode::InvalidInput, m))?;
        // The code opens the vault key the admin sealed under it; a row a
        // same-user process wrote does not open, or does not check.
        let normal = Sensitive::new(normalize_code(code));
        if !self
            .unlock_enrolment(creds.user.id, &waiting, &normal)
            .await?
        {
            return Err(refuse("the enrolment's key did not open").await);
        }
        // Their own row too, now that it can be checked: a role or provider
        // link written into it while the code waited is not sealed here.
        let store = self.store.clone();
        let n = name.to_string();
        let fresh = blocking(move || Ok(users::credentials(&store.connect()?, &n)?)).await?;
        if fresh.as_ref().is_none_or(|c| c.checked().is_err()) {
            return Err(refuse("the person's record was changed outside Warden").await);
        }
        let vault_sealed = self.seal_for_person(creds.user.id, &pw).await?;
        let pw_hash = hash_password(pw.clone()).await?;
        let codes = warden_auth::recovery_codes();
        let hashes = recovery_hashes(&codes);
        let store = self.store.clone();
        let (id, h) = (creds.user.id, hash.clone());
        let taken = blocking(move || {
            Ok(users::finish_enrolment(
                &mut store.connect()?,
                id,
                &h,
                &pw_hash,
                &hashes,
                &vault_sealed,
            )?)
        })
        .await?;
        if !taken {
            // Another request with the same code got there first.
            return Err(refuse("enrolment code already used").await);
        }
        // A new password and authenticator: counted afresh, as the
        // database's columns are.
        self.forget_attempts(id);
        let enrollment = match self.new_totp(&creds.user, &pw).await {
            Ok(e) => e,
            Err(e) => {
                // No keychain: the code stays good for another try.
                let store = self.store.clone();
                let again = waiting.vault.clone().unwrap_or_default();
                let _ = blocking(move || {
                    Ok(users::start_enrolment(
                        &mut store.connect()?,
                        id,
                        &hash,
                        expires_s,
                        &again,
                    )?)
                })
                .await;
                return Err(e);
            }
        };
        self.record_enrolment(name, true, "password and authenticator set up")
            .await?;
        Ok(Enrollment {
            recovery_codes: codes,
            ..enrollment
        })
    }

    /// A fresh TOTP secret for `user`, sealed under their password in the
    /// keychain (recovery codes left empty for the caller to fill).
    pub(super) async fn new_totp(
        &self,
        user: &User,
        pw: &Sensitive<String>,
    ) -> ApiResult<Enrollment> {
        let secret = totp::generate_secret();
        self.seal_totp(user.id, pw, secret.clone()).await?;
        let uri = totp::otpauth_uri(secret.expose(), &user.name, "Warden");
        let store = self.store.clone();
        let id = user.id;
        let user = blocking(move || Ok(users::by_id(&store.connect()?, id)?))
            .await?
            .unwrap_or_else(|| user.clone());
        Ok(Enrollment {
            qr_svg: totp::qr_svg(&uri),
            totp_secret: totp::encode_secret(secret.expose()),
            otpauth_uri: uri,
            recovery_codes: Vec::new(),
            user,
        })
    }

    /// The signed-in person sets up their authenticator again (a new phone):
    /// a new secret and new recovery codes; the old ones stop working. Their
    /// password seals the new secret, so they prove it here.
    pub(crate) async fn reenrol(
        &self,
        actor: &User,
        pw: Sensitive<String>,
    ) -> ApiResult<Enrollment> {
        self.prove_password(actor, &pw).await?;
        let enrollment = self.new_totp(actor, &pw).await?;
        let codes = self.replace_recovery_codes(actor.id).await?;
        self.record_enrolment(&actor.name, true, "authenticator set up again")
            .await?;
        Ok(Enrollment {
            recovery_codes: codes,
            ..enrollment
        })
    }

    /// The signed-in person's ten new recovery codes (the old ones stop
    /// working), after their password proved it is them.
    pub(crate) async fn renew_recovery_codes(
        &self,
        actor: &User,
        pw: Sensitive<String>,
    ) -> ApiResult<Vec<Sensitive<String>>> {
        self.prove_password(actor, &pw).await?;
        let codes = self.replace_recovery_codes(actor.id).await?;
        self.record("person.recovery_codes_renewed", None, None, None)
            .await?;
        Ok(codes)
    }

    /// Ten new recovery codes for the person, kept as hashes in place of
    /// the old ones; the codes themselves are shown once, by the caller.
    pub(super) async fn replace_recovery_codes(
        &self,
        user_id: i64,
    ) -> ApiResult<Vec<Sensitive<String>>> {
        let codes = warden_auth::recovery_codes();
        let hashes = recovery_hashes(&codes);
        let store = self.store.clone();
        blocking(move || {
            Ok(users::replace_recovery_codes(
                &mut store.connect()?,
                user_id,
                &hashes,
            )?)
        })
        .await?;
        Ok(codes)
    }

    pub(super) async fn record_enrolment(&self, name: &str, ok: bool, how: &str) -> ApiResult<()> {
        let kind = if ok {
            "person.enrolled"
        } else {
            "person.enrolment_failed"
        };
        self.record_attempt(kind, name, ok, how).await
    }
}
