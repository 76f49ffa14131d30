//! People: sign-in, sessions with an idle and an absolute limit, and who
//! may call what. The stages around it have their own files:
//! `enrolment.rs` (setting up an account), `authenticator.rs` (the sealed
//! TOTP secret and one code's check), `attempts.rs` (lockouts and used
//! steps), `passwords.rs` (proving and changing a password), and
//! `manage.rs` (what admins do to people).

mod attempts;
mod authenticator;
mod enrolment;
mod manage;
mod passwords;

pub(crate) use attempts::Attempts;

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
