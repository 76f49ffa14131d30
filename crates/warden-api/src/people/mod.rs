//! People: enrollment (password + TOTP + recovery codes), sign-in with
//! growing delays after failures, sessions with an idle and an absolute
//! limit, and who may call what. `manage.rs` is what admins do to people.

mod manage;

use serde::{Deserialize, Serialize};
use warden_auth::{Sensitive, password, totp};
use warden_store::users::{self, User};

use crate::{Api, ApiError, ApiResult, ErrorCode, Request, blocking};

/// A session ends after this long without use…
pub const IDLE_S: i64 = 30 * 60;
/// …and in any case this long after sign-in.
pub const ABSOLUTE_S: i64 = 12 * 60 * 60;

/// Where a TOTP check finds the person's secret, which is sealed under
/// their password.
pub(crate) enum Unseal<'a> {
    /// Opened with the password that comes with the code (sign-in).
    Password(&'a Sensitive<String>),
    /// What this process opened at the person's last password sign-in
    /// through it (step-up); nothing if it never saw them sign in.
    Unlocked,
}

/// What this process counted for one person: failed attempts and the
/// lockout they earned, and the last code step used.
#[derive(Debug, Default)]
pub(crate) struct Attempts {
    failures: i64,
    locked_until: Option<i64>,
    last_step: Option<i64>,
}

/// What a new person needs once, to set up their authenticator.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct Enrollment {
    pub user: User,
    #[ts(type = "string")]
    pub totp_secret: Sensitive<String>,
    #[ts(type = "string")]
    pub otpauth_uri: Sensitive<String>,
    #[ts(type = "string | null")]
    pub qr_svg: Option<Sensitive<String>>,
    #[ts(type = "Array<string>")]
    pub recovery_codes: Vec<Sensitive<String>>,
}

/// A person an admin added, and the one-time code they enrol with. The
/// admin hands the code over; the person chooses their password and sets up
/// their own authenticator, which the admin never sees.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct Invitation {
    pub user: User,
    #[ts(type = "string")]
    pub code: Sensitive<String>,
    pub expires_s: i64,
}

/// How long an enrolment code stays good.
pub const ENROLMENT_S: i64 = 72 * 60 * 60;

const ENROLMENT_FAILED: &str = "that name and enrolment code do not match a waiting enrolment, or the code has expired; check them, or ask your admin for a new code";

#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct SignedIn {
    pub user: User,
    #[ts(type = "string")]
    pub token: Sensitive<String>,
    pub expires_s: i64,
}

const SIGN_IN_FAILED: &str = "the name, password or code is not right; check them and try again";

/// The answer while a lockout runs.
pub(crate) fn locked_out(until: i64, now: i64) -> ApiError {
    ApiError::new(
        ErrorCode::Unauthenticated,
        format!(
            "too many failed attempts: wait {} seconds, then try again",
            until - now
        ),
    )
}

/// A password's stored form (argon2id), off the async runtime.
async fn hash_password(pw: Sensitive<String>) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
        .map_err(|e| ApiError::new(ErrorCode::Internal, e))
}

fn recovery_hashes(codes: &[Sensitive<String>]) -> Vec<String> {
    codes
        .iter()
        .map(|c| warden_auth::hash_token("recovery", c.expose()))
        .collect()
}

/// An enrolment code as typed: case, spaces and dashes do not matter.
fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

fn normalize_recovery(code: &str) -> String {
    let c: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    if c.len() == 10 {
        format!("{}-{}", &c[..5], &c[5..])
    } else {
        c
    }
}

impl Api {
    fn totp_account(&self, user_id: i64) -> ApiResult<String> {
        Ok(format!("{}/totp/{user_id}", self.store.install_id()?))
    }

    /// The person's TOTP secret, opened with their password, with the
    /// sealed text it came from (`None` for a secret an older Warden kept
    /// in the clear, which [`Api::seal_legacy_totp`] seals once a sign-in
    /// succeeded). Nothing is remembered here: a value that opens may be
    /// one a same-user process sealed under a password of its own, so it
    /// is kept only once the caller has checked the password against the
    /// person's hash and the code against the secret.
    async fn open_totp(
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
    fn remember_totp(&self, user_id: i64, opened: crate::Unlocked) {
        if let (Some(from), secret) = opened {
            self.unlocked_lock().insert(user_id, (Some(from), secret));
        }
    }

    /// What the keychain holds for the person's authenticator: sealed, or
    /// in the clear from an older Warden.
    async fn stored_totp(&self, user_id: i64) -> ApiResult<Option<Sensitive<String>>> {
        let account = self.totp_account(user_id)?;
        let kc = self.keychain.clone();
        tokio::task::spawn_blocking(move || kc.get(&account))
            .await
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
            .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))
    }

    fn unlocked_lock(
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
    async fn unlocked_totp(&self, user_id: i64) -> ApiResult<Option<Sensitive<Vec<u8>>>> {
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
    async fn seal_totp(
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
    async fn seal_legacy_totp(&self, user_id: i64, pw: &Sensitive<String>) -> ApiResult<()> {
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
    fn forget_totp(&self, user_id: i64) {
        self.unlocked_lock().remove(&user_id);
        // A new secret's codes start afresh, as the database's column does.
        if let Some(a) = self.attempts_lock().get_mut(&user_id) {
            a.last_step = None;
        }
    }

    fn attempts_lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<i64, Attempts>> {
        self.attempts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts an attempt at a person's password or code before it is
    /// checked, so concurrent attempts cannot all be checked before the
    /// first failure is written. `Err(until)` while a lockout runs. The
    /// count is kept twice: in the database (for every process), and in
    /// this process's memory, where a same-user process that resets the
    /// columns cannot reach. (Restarting Warden clears the memory, but also
    /// what it opened with the person's password: it then checks no code
    /// until the person signs in again.)
    pub(crate) async fn begin_attempt(&self, user_id: i64, now: i64) -> ApiResult<Result<(), i64>> {
        {
            let mut all = self.attempts_lock();
            let mine = all.entry(user_id).or_default();
            if let Some(until) = mine.locked_until.filter(|u| *u > now) {
                return Ok(Err(until));
            }
            mine.failures += 1;
            mine.locked_until = warden_auth::lockout_until(mine.failures, now);
        }
        let store = self.store.clone();
        blocking(move || {
            Ok(users::begin_attempt(
                &mut store.connect()?,
                user_id,
                now,
                |n| warden_auth::lockout_until(n, now),
            )?)
        })
        .await
    }

    /// The end of a lockout that runs now, by this process's count or the
    /// database's, without counting an attempt.
    pub(crate) fn locked_until(&self, user_id: i64, stored: Option<i64>, now: i64) -> Option<i64> {
        let here = self
            .attempts_lock()
            .get(&user_id)
            .and_then(|a| a.locked_until);
        here.max(stored).filter(|u| *u > now)
    }

    /// A sign-in with the password and a second factor, or a step-up with
    /// a code: this process's count starts again (the database's is reset
    /// beside it, [`users::record_success`]). Other proofs (a provider's
    /// sign-in, a password alone) leave it: a database writer could stand
    /// behind them.
    pub(crate) fn attempt_succeeded(&self, user_id: i64) {
        let mut all = self.attempts_lock();
        let mine = all.entry(user_id).or_default();
        mine.failures = 0;
        mine.locked_until = None;
    }

    /// An admin's reset or a new enrolment: what this process counted for
    /// the person no longer applies.
    fn forget_attempts(&self, user_id: i64) {
        self.attempts_lock().remove(&user_id);
    }

    /// Takes `step` as used in this process's memory: `false` when it or a
    /// later one was used here already, whatever the database says.
    fn claim_step_here(&self, user_id: i64, step: i64) -> bool {
        let mut all = self.attempts_lock();
        let mine = all.entry(user_id).or_default();
        if mine.last_step.is_some_and(|last| last >= step) {
            return false;
        }
        mine.last_step = Some(step);
        true
    }

    /// The latest step used, by the database's count or this process's.
    fn last_step(&self, user_id: i64, stored: Option<i64>) -> Option<i64> {
        let here = self.attempts_lock().get(&user_id).and_then(|a| a.last_step);
        stored.max(here)
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
    async fn new_totp(&self, user: &User, pw: &Sensitive<String>) -> ApiResult<Enrollment> {
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
    async fn replace_recovery_codes(&self, user_id: i64) -> ApiResult<Vec<Sensitive<String>>> {
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

    /// The signed-in person proves their password again (counted toward
    /// the account's lockout like a sign-in); a wrong one is logged.
    async fn prove_password(&self, actor: &User, pw: &Sensitive<String>) -> ApiResult<()> {
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

    async fn record_enrolment(&self, name: &str, ok: bool, how: &str) -> ApiResult<()> {
        let kind = if ok {
            "person.enrolled"
        } else {
            "person.enrolment_failed"
        };
        self.record_attempt(kind, name, ok, how).await
    }

    pub(crate) async fn sign_in(
        &self,
        name: &str,
        pw: Sensitive<String>,
        code: Option<String>,
        recovery: Option<Sensitive<String>>,
    ) -> ApiResult<SignedIn> {
        let now = self.clock.now();
        let store = self.store.clone();
        let n = name.to_string();
        let creds = blocking(move || Ok(users::credentials(&store.connect()?, &n)?)).await?;
        let fail = |why: &str| {
            let why = why.to_string();
            async move {
                let _ = self.record_sign_in(name, false, &why).await;
                ApiError::new(ErrorCode::Unauthenticated, SIGN_IN_FAILED)
            }
        };
        let Some(creds) = creds else {
            // Same work as a real check, so a missing name takes as long.
            let _ =
                tokio::task::spawn_blocking(move || password::verify(password::decoy_hash(), &pw))
                    .await;
            return Err(fail("unknown name").await);
        };
        if let Err(until) = self.begin_attempt(creds.user.id, now).await? {
            let _ = self
                .record_sign_in(name, false, "locked after failed attempts")
                .await;
            return Err(locked_out(until, now));
        }
        let stored = creds.password_hash.clone();
        let given = pw.clone();
        let pw_ok = tokio::task::spawn_blocking(move || password::verify(&stored, &given))
            .await
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        // The password opens the vault key (or matches the one held); the
        // row is then read again and must check.
        let creds = if pw_ok {
            match self.unlock_as(&creds, &pw).await {
                Ok(Some(fresh)) => fresh,
                Ok(None) => {
                    return Err(fail("the password did not open the vault key").await);
                }
                Err(e) => {
                    let _ = self
                        .record_sign_in(name, false, "account changed outside Warden")
                        .await;
                    return Err(e);
                }
            }
        } else {
            creds
        };
        let second_ok = match (&code, &recovery) {
            // Checked either way, so the time taken does not tell whether
            // the password was right; used up only with the right one.
            (Some(code), _) => {
                let verdict = self
                    .check_totp(&creds, code, now, pw_ok, Unseal::Password(&pw))
                    .await?;
                match verdict {
                    Some(Ok(_)) => true,
                    Some(Err(totp::Rejected::Replayed)) => {
                        let _ = self
                            .record_sign_in(name, false, "a TOTP code was used again")
                            .await;
                        false
                    }
                    _ => false,
                }
            }
            (None, Some(rc)) if pw_ok => {
                let store = self.store.clone();
                let hash = warden_auth::hash_token("recovery", &normalize_recovery(rc.expose()));
                let id = creds.user.id;
                blocking(move || Ok(users::use_recovery_code(&store.connect()?, id, &hash)?))
                    .await?
            }
            (None, Some(_)) => false,
            (None, None) => {
                return Err(ApiError::new(
                    ErrorCode::Unauthenticated,
                    "a code from your authenticator app is required, or one of your recovery codes (warden login NAME --recovery)",
                ));
            }
        };
        let disabled = creds.user.status != "active";
        if !pw_ok || !second_ok || disabled {
            // Already counted by begin_attempt.
            let why = if disabled {
                "the account is disabled"
            } else if !pw_ok {
                "wrong password"
            } else if !creds.user.totp_enrolled {
                // Setting up: the person types the first code of an
                // authenticator they just added. Not a failed sign-in.
                let _ = self
                    .record_attempt(
                        "auth.first_code_failed",
                        name,
                        false,
                        "the first code of a newly set up authenticator was not right",
                    )
                    .await;
                return Err(ApiError::new(ErrorCode::Unauthenticated, SIGN_IN_FAILED));
            } else {
                "wrong second factor"
            };
            return Err(fail(why).await);
        }
        self.seal_legacy_totp(creds.user.id, &pw).await?;
        let token = warden_auth::random_token();
        let hash = warden_auth::hash_token("session", token.expose());
        let store = self.store.clone();
        let id = creds.user.id;
        let expires_s = now + ABSOLUTE_S;
        blocking(move || {
            let conn = store.connect()?;
            users::record_success(&conn, id)?;
            users::create_session(&conn, &hash, id, now, expires_s)?;
            Ok(())
        })
        .await?;
        // The password and a second factor (a code or a recovery code).
        self.attempt_succeeded(id);
        self.record_sign_in(
            name,
            true,
            if recovery.is_some() {
                "password and recovery code"
            } else {
                "password and TOTP"
            },
        )
        .await?;
        Ok(SignedIn {
            user: creds.user,
            token,
            expires_s,
        })
    }

    async fn record_sign_in(&self, name: &str, ok: bool, how: &str) -> ApiResult<()> {
        let kind = if ok {
            "auth.sign_in"
        } else {
            "auth.sign_in_failed"
        };
        self.record_attempt(kind, name, ok, how).await
    }

    /// A row for one attempt by `name` (a sign-in, an enrolment): whether it
    /// worked, and how.
    pub(crate) async fn record_attempt(
        &self,
        kind: &str,
        name: &str,
        ok: bool,
        how: &str,
    ) -> ApiResult<()> {
        self.store
            .activity()
            .append(warden_store::NewEvent {
                kind: kind.into(),
                on_behalf_of: Some(name.to_string()),
                outcome: Some(if ok { "ok" } else { "refused" }.into()),
                detail: Some(serde_json::json!({"how": how}).to_string()),
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// The person behind a session token, if the session is still good.
    pub(crate) async fn session_user(&self, token: &Sensitive<String>) -> ApiResult<User> {
        let found = self.session_user_unlogged(token).await;
        if let Err(e) = &found
            && e.code == ErrorCode::Forbidden
        {
            // A session or person row that does not check: refused, and
            // written down.
            self.record_row_refused(serde_json::json!({"why": e.message}))
                .await;
        }
        found
    }

    async fn session_user_unlogged(&self, token: &Sensitive<String>) -> ApiResult<User> {
        let now = self.clock.now();
        let hash = warden_auth::hash_token("session", token.expose());
        let store = self.store.clone();
        blocking(move || {
            let conn = store.connect()?;
            let expired = || {
                ApiError::new(
                    ErrorCode::Unauthenticated,
                    "your session has ended: sign in again with `warden login NAME`",
                )
            };
            let Some((user_id, last_seen, expires)) = users::session(&conn, &hash)? else {
                return Err(expired());
            };
            if now > expires || now - last_seen > IDLE_S {
                users::end_session(&conn, &hash)?;
                return Err(expired());
            }
            let user = users::by_id(&conn, user_id)?.ok_or_else(expired)?;
            if user.status != "active" {
                users::end_session(&conn, &hash)?;
                return Err(expired());
            }
            users::touch_session(&conn, &hash, now)?;
            Ok(user)
        })
        .await
    }

    pub(crate) async fn sign_out(&self, token: &Sensitive<String>) -> ApiResult<()> {
        let hash = warden_auth::hash_token("session", token.expose());
        let store = self.store.clone();
        blocking(move || Ok(users::end_session(&store.connect()?, &hash)?)).await
    }
}

pub fn validate_person_name(name: &str) -> ApiResult<()> {
    crate::validate_name("person", name, &['.', '@'])
}

/// Whether `actor` may make `req`. Admins may do everything; members may
/// look at servers, create agents for themselves and read their own log.
pub fn permitted(actor: &User, req: &Request) -> Result<(), String> {
    if actor.role == "admin" {
        return Ok(());
    }
    match req {
        Request::ServerList
        | Request::ServerTools { .. }
        | Request::AgentList
        | Request::Log { .. }
        | Request::ActivityStats { .. }
        | Request::Whoami
        | Request::PasswordChange { .. }
        | Request::TotpReenrol { .. }
        | Request::RecoveryRenew { .. }
        | Request::Logout
        | Request::Confirm { .. }
        | Request::SsoStepUpStart
        | Request::SsoStepUpFinish { .. }
        | Request::SsoLinkStart
        | Request::SsoLinkFinish { .. }
        | Request::Approvals
        | Request::ApprovalsWait { .. }
        | Request::ApprovalDecide { .. }
        | Request::StandingList
        | Request::StandingRevoke { .. }
        | Request::Status
        | Request::ServerPresets
        | Request::ClientConnect { .. }
        | Request::ActivityExport { .. } => Ok(()),
        Request::AgentAdd { owner, .. } if owner.as_deref().is_none_or(|o| o == actor.name) => {
            Ok(())
        }
        other => Err(format!("only an admin can {}", describe(other))),
    }
}

fn describe(req: &Request) -> &'static str {
    match req {
        Request::ServerAdd { .. } => "add servers",
        Request::ServerRemove { .. } => "remove servers",
        Request::AgentAdd { .. } => "create agents for other people",
        Request::AgentRevoke { .. } => "revoke agents",
        Request::SecretSet { .. } | Request::SecretRemove { .. } => "change secrets",
        Request::RoleAdd { .. } | Request::RoleRemove { .. } | Request::RoleList => "manage roles",
        Request::Grant { .. } | Request::RevokeGrant { .. } => "change grants",
        Request::Review { .. } => "run access reviews",
        Request::ToolRisk { .. } => "set a tool's risk",
        Request::Quarantined | Request::ToolReview { .. } | Request::ToolDecide { .. } => {
            "review quarantined tools"
        }
        Request::ServerTrust { .. } => "change whether a server is trusted",
        Request::ServerConsent { .. } => "approve a server's command",
        Request::SettingsApprove { .. } => "approve Warden's settings",
        Request::ServerLoginStart { .. }
        | Request::ServerLoginFinish { .. }
        | Request::ServerLogout { .. }
        | Request::ServerAuthList => "sign Warden in to servers",
        Request::ServerProbe { .. } => "probe servers",
        Request::AgentsPause { .. } => "pause every agent",
        Request::SsoConfigure { .. } | Request::SsoShow => "set up single sign-on",
        Request::AuditVerify | Request::AuditPrune { .. } => "verify or prune the audit log",
        Request::UserAdd { .. }
        | Request::UserReset { .. }
        | Request::UserList
        | Request::UserDisable { .. }
        | Request::UserEnable { .. }
        | Request::UserRemove { .. }
        | Request::UserAllowRole { .. }
        | Request::UserSsoBind { .. } => "manage people",
        _ => "do that",
    }
}
