//! Sign-in with the company's identity provider (OpenID Connect), with MFA
//! proven by the provider's claims, groups mapped to Warden roles on every
//! sign-in and refresh, and sessions that end (and agents that pause) when
//! the provider stops vouching for the person.
//!
//! This file holds the configuration and the browser round trip (start,
//! finish, the checks on the ID token); `sign_in.rs` opens the session and
//! maps groups to roles, `refresh.rs` keeps sessions honest in the
//! background, `link.rs` binds people to provider accounts and finishes
//! step-ups.

mod link;
mod refresh;
mod sign_in;

pub use refresh::spawn_refresher;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use warden_auth::Sensitive;
use warden_auth::oauth::ClientRegistration;
use warden_auth::oauth::flow::{self, Authorization, Loopback};
use warden_auth::oauth::guard::{Guard, system_resolver};
use warden_auth::oidc::{self, Expect, IdClaims, ProviderMetadata};
use warden_store::users::{self};

use crate::oauth::oauth_error;
use crate::{Api, ApiError, ApiResult, ErrorCode, Response, blocking};

fn default_scopes() -> String {
    "openid profile email groups offline_access".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_username_claim() -> String {
    "preferred_username".into()
}
fn default_mfa_amr() -> Vec<String> {
    ["mfa", "otp", "hwk", "swk", "sc", "fpt", "face"]
        .into_iter()
        .map(String::from)
        .collect()
}
fn default_refresh_secs() -> i64 {
    300
}

/// How Warden uses the identity provider (an admin's settings; the optional
/// client secret is in the keychain).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct SsoConfig {
    pub issuer: String,
    pub client_id: String,
    #[serde(default = "default_scopes")]
    pub scopes: String,
    /// The ID token claim that lists the person's groups.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Provider group → Warden role: `admin` or `member` set the person's
    /// own role; any other role is one they may give their agents.
    #[serde(default)]
    pub group_roles: BTreeMap<String, String>,
    /// `amr` values that count as multi-factor authentication.
    #[serde(default = "default_mfa_amr")]
    pub mfa_amr: Vec<String>,
    /// `acr` values that count as multi-factor authentication (also asked
    /// for on a step-up).
    #[serde(default)]
    pub mfa_acr: Vec<String>,
    /// The sign-in at the provider may be at most this old (seconds).
    #[serde(default)]
    pub max_age_secs: Option<i64>,
    /// Create people on their first sign-in (as members); otherwise an
    /// admin adds them first.
    #[serde(default)]
    pub create_people: bool,
    /// The claim that names the person in Warden.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// How often a session checks back with the provider (seconds).
    #[serde(default = "default_refresh_secs")]
    pub refresh_secs: i64,
    #[serde(default)]
    pub has_client_secret: bool,
    /// When the provider's sign-in shows no MFA, accept Warden's own TOTP
    /// code as the second factor (for people who enrolled one).
    #[serde(default)]
    pub totp_fallback: bool,
}

struct PendingSso {
    loopback: Loopback,
    authorization: Authorization,
    nonce: String,
    meta: ProviderMetadata,
    purpose: Purpose,
}

/// What a provider sign-in is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Opening a Warden session.
    SignIn,
    /// A fresh sign-in with MFA for this session (hash) and person (id), to
    /// approve a critical call.
    StepUp(String, i64),
    /// Binding the signed-in person (session hash, id) to the provider
    /// account they sign in with now.
    Link(String, i64),
}

fn pending() -> &'static Mutex<HashMap<String, PendingSso>> {
    static P: OnceLock<Mutex<HashMap<String, PendingSso>>> = OnceLock::new();
    P.get_or_init(Default::default)
}

/// Sessions that just passed a provider step-up (session hash → when).
fn stepped_up() -> &'static Mutex<HashMap<String, i64>> {
    static S: OnceLock<Mutex<HashMap<String, i64>>> = OnceLock::new();
    S.get_or_init(Default::default)
}

/// Takes a step-up made in the last two minutes for this session.
pub(crate) fn take_step_up(session_hash: &str, now: i64) -> bool {
    stepped_up()
        .lock()
        .ok()
        .and_then(|mut m| m.remove(session_hash))
        .is_some_and(|t| now - t <= 120)
}

/// Where to send the person's browser.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct SsoStarted {
    pub flow: String,
    pub url: String,
    pub issuer: String,
}

fn guard_for(issuer: &str) -> ApiResult<Guard> {
    let u = url::Url::parse(issuer).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("{issuer:?} is not a URL: {e}"),
        )
    })?;
    Ok(Guard::for_server(system_resolver(), &u))
}

const SECRET_ACCOUNT: &str = "sso/client-secret";

impl Api {
    pub(crate) fn sso_config(&self) -> ApiResult<Option<SsoConfig>> {
        Ok(self
            .store
            .setting("sso")?
            .and_then(|v| serde_json::from_str(&v).ok()))
    }

    fn sso_required(&self) -> ApiResult<SsoConfig> {
        self.sso_config()?.ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidInput,
                "single sign-on is not set up here; sign in with your Warden account, or ask an admin to run `warden sso configure`",
            )
        })
    }

    async fn client(&self, cfg: &SsoConfig) -> ApiResult<ClientRegistration> {
        let secret = if cfg.has_client_secret {
            let kc = self.keychain.clone();
            let acct = format!("{}/{SECRET_ACCOUNT}", self.store.install_id()?);
            tokio::task::spawn_blocking(move || kc.get(&acct))
                .await
                .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
                .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?
        } else {
            None
        };
        Ok(ClientRegistration {
            client_id: cfg.client_id.clone(),
            auth_method: if secret.is_some() {
                "client_secret_basic"
            } else {
                "none"
            }
            .into(),
            client_secret: secret,
            kind: "pre-registered".into(),
            redirect_uri: None,
        })
    }

    /// An admin sets up SSO; the provider must answer its discovery.
    pub(crate) async fn sso_configure(
        &self,
        mut cfg: SsoConfig,
        client_secret: Option<Sensitive<String>>,
    ) -> ApiResult<Response> {
        let guard = guard_for(&cfg.issuer)?;
        oidc::discover(&guard, &cfg.issuer)
            .await
            .map_err(oauth_error)?;
        for role in cfg.group_roles.values() {
            if role != "admin" && role != "member" {
                let store = self.store.clone();
                let r = role.clone();
                blocking(move || Ok(warden_store::roles::get(&store.connect()?, &r)?))
                    .await
                    .map_err(|_| ApiError::new(ErrorCode::InvalidInput, format!("there is no role {role:?}; create it first or map the group to admin or member")))?;
            }
        }
        if let Some(secret) = client_secret {
            let kc = self.keychain.clone();
            let acct = format!("{}/{SECRET_ACCOUNT}", self.store.install_id()?);
            tokio::task::spawn_blocking(move || kc.set(&acct, &secret))
                .await
                .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
                .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?;
            cfg.has_client_secret = true;
        }
        let before = self.sso_config()?;
        let text = serde_json::to_string(&cfg)
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        let store = self.store.clone();
        blocking(move || {
            store
                .connect()?
                .execute(
                    "INSERT INTO settings (key, value) VALUES ('sso', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [text],
                )
                .map_err(warden_store::Error::from)?;
            Ok(())
        })
        .await?;
        self.record_change(
            "sso.configured",
            &cfg.issuer,
            before.and_then(|b| serde_json::to_value(b).ok()),
            serde_json::to_value(&cfg).ok(),
        )
        .await?;
        Ok(Response::Done)
    }

    /// Step one of a provider sign-in (for a session, a step-up or a link;
    /// see [`Purpose`]): the address to open.
    pub(crate) async fn sso_start(&self, purpose: Purpose) -> ApiResult<Response> {
        let cfg = self.sso_required()?;
        let guard = guard_for(&cfg.issuer)?;
        let meta = oidc::discover(&guard, &cfg.issuer)
            .await
            .map_err(oauth_error)?;
        let client = self.client(&cfg).await?;
        let loopback = Loopback::bind(None).await.map_err(oauth_error)?;
        let nonce = flow::nonce();
        let mut extra: Vec<(&str, String)> = Vec::new();
        if purpose != Purpose::SignIn {
            // Proof from now, by whoever is at the provider now.
            extra.push(("max_age", "0".into()));
            extra.push(("prompt", "login".into()));
            if !cfg.mfa_acr.is_empty() {
                extra.push(("acr_values", cfg.mfa_acr.join(" ")));
            }
        } else {
            if let Some(m) = cfg.max_age_secs {
                extra.push(("max_age", m.to_string()));
            }
            extra.push(("prompt", "consent".into()));
        }
        extra.push(("nonce", nonce.clone()));
        let authorization = flow::start(
            &guard,
            flow::Start {
                authorization_endpoint: &meta.authorization_endpoint,
                token_endpoint: &meta.token_endpoint,
                issuer: &meta.issuer,
                iss_supported: meta.authorization_response_iss_parameter_supported,
                reg: &client,
                redirect_uri: &loopback.redirect_uri,
                resource: "",
                scopes: Some(&cfg.scopes),
                extra: &extra,
            },
        )
        .map_err(oauth_error)?;
        let started = SsoStarted {
            flow: warden_auth::random_token().into_inner(),
            url: authorization.url.clone(),
            issuer: meta.issuer.clone(),
        };
        pending()
            .lock()
            .map_err(|_| ApiError::new(ErrorCode::Internal, "sign-in state lost"))?
            .insert(
                started.flow.clone(),
                PendingSso {
                    loopback,
                    authorization,
                    nonce,
                    meta,
                    purpose,
                },
            );
        Ok(Response::SsoStarted(started))
    }

    async fn refuse_sign_in(&self, who: &str, why: &str, message: String) -> ApiError {
        self.refuse_sign_in_detail(who, serde_json::json!({"how": "sso", "why": why}), message)
            .await
    }

    /// A refusal that also records the provider identity, so an admin who
    /// knows the person can link exactly that one.
    async fn refuse_sign_in_as(
        &self,
        who: &str,
        subject: &str,
        why: &str,
        message: String,
    ) -> ApiError {
        self.refuse_sign_in_detail(
            who,
            serde_json::json!({"how": "sso", "why": why, "subject": subject}),
            message,
        )
        .await
    }

    async fn refuse_sign_in_detail(
        &self,
        who: &str,
        detail: serde_json::Value,
        message: String,
    ) -> ApiError {
        let _ = self
            .store
            .activity()
            .append(warden_store::NewEvent {
                kind: "auth.sign_in_failed".into(),
                on_behalf_of: Some(who.to_string()),
                outcome: Some("refused".into()),
                detail: Some(detail.to_string()),
                ..Default::default()
            })
            .await;
        ApiError::new(ErrorCode::Unauthenticated, message)
    }

    /// Step two: the provider's answer, checked all the way.
    pub(crate) async fn sso_finish(
        &self,
        flow_id: &str,
        totp: Option<&str>,
        password: Option<&Sensitive<String>>,
    ) -> ApiResult<(SsoOutcome, Purpose)> {
        let p = pending()
            .lock()
            .map_err(|_| ApiError::new(ErrorCode::Internal, "sign-in state lost"))?
            .remove(flow_id)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::NotFound,
                    "this sign-in is no longer waiting; start it again",
                )
            })?;
        let cfg = self.sso_required()?;
        let guard = guard_for(&cfg.issuer)?;
        let code = flow::wait_for_code(p.loopback, &p.authorization, Duration::from_secs(300))
            .await
            .map_err(oauth_error)?;
        let tokens = flow::exchange(&guard, &p.authorization, &code)
            .await
            .map_err(oauth_error)?;
        let Some(id_token) = tokens.id_token.clone() else {
            return Err(self.refuse_sign_in("?", "no ID token", "the identity provider sent no ID token; check that the openid scope is configured".into()).await);
        };
        let now = self.clock.now();
        let max_age = if p.purpose != Purpose::SignIn {
            Some(0)
        } else {
            cfg.max_age_secs
        };
        let claims = self
            .validated(
                &guard,
                &p.meta,
                &id_token,
                &cfg,
                Some(&p.nonce),
                max_age,
                now,
            )
            .await?;
        let who = claims
            .other
            .get(&cfg.username_claim)
            .and_then(|v| v.as_str())
            .unwrap_or(&claims.sub)
            .to_string();
        // When the second factor was proved: at the provider's sign-in
        // (its auth_time, never later than now), or now, by Warden's own
        // code. Only that time counts as fresh for sensitive changes.
        let mfa_at = if oidc::proves_mfa(&claims, &cfg.mfa_amr, &cfg.mfa_acr) {
            Some(claims.auth_time.map_or(0, |t| t.min(now)))
        } else if cfg.totp_fallback
            && p.purpose == Purpose::SignIn
            && self.totp_second_step(&claims, &who, totp, password).await?
        {
            Some(now)
        } else {
            None
        };
        if mfa_at.is_none() {
            return Err(self
                .refuse_sign_in(
                    &who,
                    "no MFA",
                    if cfg.totp_fallback {
                        format!(
                            "your sign-in at {} did not use multi-factor authentication, which Warden requires. Sign in again with MFA, or add a code from your Warden authenticator app: warden login --sso --totp (it asks for the code)",
                            cfg.issuer
                        )
                    } else {
                        format!(
                            "your sign-in at {} did not use multi-factor authentication, which Warden requires. Sign in again with MFA (your authenticator app or security key)",
                            cfg.issuer
                        )
                    },
                )
                .await);
        }
        Ok((
            SsoOutcome {
                claims,
                who,
                refresh_token: tokens.refresh_token,
                mfa_at: mfa_at.unwrap_or(0),
            },
            p.purpose,
        ))
    }

    /// Warden's own TOTP as the second factor after a password-only
    /// provider sign-in (when configured): the person must already be bound
    /// to this identity and have enrolled a code.
    async fn totp_second_step(
        &self,
        claims: &IdClaims,
        who: &str,
        code: Option<&str>,
        password: Option<&Sensitive<String>>,
    ) -> ApiResult<bool> {
        let Some(code) = code.filter(|c| !c.trim().is_empty()) else {
            return Ok(false);
        };
        let subject = format!("{}|{}", claims.iss, claims.sub);
        let store = self.store.clone();
        // Only a person already bound to this identity: a name says nothing
        // about who signed in at the provider.
        let user =
            blocking(move || Ok(users::by_sso_subject(&store.connect()?, &subject)?)).await?;
        let Some(user) = user else {
            return Err(self
                .refuse_sign_in(
                    who,
                    "no MFA; TOTP fallback for a person never linked",
                    "a Warden code can stand in for MFA only once your Warden account is linked to this provider account: sign in with your Warden password and link it (warden sso link), or ask an admin to".into(),
                )
                .await);
        };
        self.step_up(
            &user,
            None,
            code.trim(),
            "sso sign-in",
            password.map_or(
                crate::people::Unseal::Unlocked,
                crate::people::Unseal::Password,
            ),
        )
        .await?;
        Ok(true)
    }

    #[allow(clippy::too_many_arguments)]
    async fn validated(
        &self,
        guard: &Guard,
        meta: &ProviderMetadata,
        id_token: &str,
        cfg: &SsoConfig,
        nonce: Option<&str>,
        max_age: Option<i64>,
        now: i64,
    ) -> ApiResult<IdClaims> {
        let expect = Expect {
            issuer: &meta.issuer,
            client_id: &cfg.client_id,
            nonce,
            max_age,
            now,
        };
        match oidc::validate_with(guard, meta, id_token, &expect)
            .await
            .map_err(oauth_error)?
        {
            Ok(c) => Ok(c),
            Err(e) => Err(self
                .refuse_sign_in("?", &e.to_string(), format!("Warden refused the sign-in: {e}. Try again; if it keeps happening, tell your admin"))
                .await),
        }
    }

    /// Finishes a provider sign-in that opens a Warden session.
    pub(crate) async fn sso_login_finish(
        &self,
        flow: &str,
        totp: Option<&str>,
        password: Option<&Sensitive<String>>,
    ) -> ApiResult<Response> {
        let (outcome, purpose) = self.sso_finish(flow, totp, password).await?;
        if purpose != Purpose::SignIn {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "that provider sign-in was not for opening a session; start the sign-in again",
            ));
        }
        Ok(Response::SignedIn(self.sso_sign_in(outcome).await?))
    }
}

/// A checked answer from the provider.
pub(crate) struct SsoOutcome {
    claims: IdClaims,
    who: String,
    refresh_token: Option<Sensitive<String>>,
    /// When the second factor was proved (seconds).
    mfa_at: i64,
}
