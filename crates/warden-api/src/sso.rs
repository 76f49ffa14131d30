//! Sign-in with the company's identity provider (OpenID Connect), with MFA
//! proven by the provider's claims, groups mapped to Warden roles on every
//! sign-in and refresh, and sessions that end (and agents that pause) when
//! the provider stops vouching for the person.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use warden_auth::oauth::ClientRegistration;
use warden_auth::oauth::flow::{self, Authorization, Loopback};
use warden_auth::oauth::guard::{Guard, system_resolver};
use warden_auth::oidc::{self, Expect, IdClaims, ProviderMetadata};
use warden_auth::{Sensitive, oauth::OAuthError};
use warden_store::users::{self, User};

use crate::oauth::oauth_error;
use crate::people::{ABSOLUTE_S, SignedIn};
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
            && self.totp_second_step(&claims, &who, totp).await?
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
                            "your sign-in at {} did not use multi-factor authentication, which Warden requires. Sign in again with MFA, or add the code from your Warden authenticator app: warden login --sso --totp CODE",
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
        self.step_up(&user, None, code.trim(), "sso sign-in")
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

    /// Binds the provider's person to a Warden person, applies their groups,
    /// and opens a session that follows the provider.
    pub(crate) async fn sso_sign_in(&self, o: SsoOutcome) -> ApiResult<SignedIn> {
        let cfg = self.sso_required()?;
        let subject = format!("{}|{}", o.claims.iss, o.claims.sub);
        let store = self.store.clone();
        let (s, name, create) = (subject.clone(), o.who.clone(), cfg.create_people);
        let found = blocking(move || {
            let conn = store.connect()?;
            if let Some(u) = users::by_sso_subject(&conn, &s)? {
                return Ok(Ok((u, false)));
            }
            // Only `iss`+`sub` say who signed in (OpenID Connect Core 5.7): a
            // provider account that merely carries a Warden person's name is
            // never attached to them.
            match users::get(&conn, &name)? {
                Some(_) => Ok(Err("not linked")),
                None if create => {
                    let u = users::insert(&conn, &name, "member", "!sso")?;
                    users::set_sso_subject(&conn, u.id, Some(&s))?;
                    Ok(Ok((u, true)))
                }
                None => Ok(Err("not added")),
            }
        })
        .await?;
        let (user, created) = match found {
            Ok(x) => x,
            Err("not added") => {
                return Err(self
                    .refuse_sign_in_as(&o.who, &subject, "not added", format!("{} is not a Warden user yet; ask an admin to add you and link your provider account", o.who))
                    .await);
            }
            Err(why) => {
                return Err(self
                    .refuse_sign_in_as(&o.who, &subject, why, format!("the Warden account {} is not linked to this provider account. Sign in to Warden with your password and run `warden sso link`, or ask an admin to link it", o.who))
                    .await);
            }
        };
        if user.status != "active" {
            return Err(self
                .refuse_sign_in(
                    &o.who,
                    "disabled",
                    "your Warden account is disabled; ask an admin".into(),
                )
                .await);
        }
        if created {
            let api = Api {
                actor: Some(user.name.clone()),
                ..self.clone()
            };
            api.record_change(
                "person.created",
                &user.name,
                None,
                Some(serde_json::json!({"role": "member", "by": "sso"})),
            )
            .await?;
        }
        self.apply_groups(&cfg, &user, &o.claims).await?;
        // A person whose agents paused when the provider refused them gets
        // them back by signing in again.
        let store = self.store.clone();
        let id = user.id;
        let resumed = blocking(move || {
            let conn = store.connect()?;
            Ok(if users::set_sso_suspended(&conn, id, false)? {
                warden_store::agent::suspend_owned(&conn, id, true)?
            } else {
                0
            })
        })
        .await?;
        if resumed > 0 {
            self.reload_gateway()?;
            self.record_for(
                &user.name,
                "agents.resumed",
                serde_json::json!({"agents": resumed, "why": "signed in again"}),
            )
            .await?;
        }
        let now = self.clock.now();
        let token = warden_auth::random_token();
        let hash = warden_auth::hash_token("session", token.expose());
        let store = self.store.clone();
        let (h, id, next, mfa_at) = (
            hash.clone(),
            user.id,
            o.refresh_token.as_ref().map(|_| now + cfg.refresh_secs),
            o.mfa_at,
        );
        blocking(move || {
            let conn = store.connect()?;
            users::record_success(&conn, id)?;
            users::create_session(&conn, &h, id, now, now + ABSOLUTE_S)?;
            users::mark_mfa(&conn, &h, mfa_at)?;
            users::set_sso_refresh(&conn, &h, next)?;
            Ok(())
        })
        .await?;
        if let Some(rt) = o.refresh_token {
            let kc = self.keychain.clone();
            let acct = format!("{}/sso/session/{hash}", self.store.install_id()?);
            tokio::task::spawn_blocking(move || kc.set(&acct, &rt))
                .await
                .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
                .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?;
        }
        self.record_for(
            &user.name,
            "auth.sign_in",
            serde_json::json!({"how": "sso", "amr": o.claims.amr, "acr": o.claims.acr}),
        )
        .await?;
        let store = self.store.clone();
        let n = user.name.clone();
        let user = blocking(move || Ok(users::get(&store.connect()?, &n)?))
            .await?
            .unwrap_or(user);
        Ok(SignedIn {
            user,
            token,
            expires_s: now + ABSOLUTE_S,
        })
    }

    async fn record_for(
        &self,
        person: &str,
        kind: &str,
        detail: serde_json::Value,
    ) -> ApiResult<()> {
        self.store
            .activity()
            .append(warden_store::NewEvent {
                kind: kind.into(),
                on_behalf_of: Some(person.to_string()),
                outcome: Some("ok".into()),
                detail: Some(detail.to_string()),
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// Groups → roles: the person's own role and the roles they may give
    /// their agents follow the provider on every sign-in and refresh.
    async fn apply_groups(&self, cfg: &SsoConfig, user: &User, claims: &IdClaims) -> ApiResult<()> {
        let groups: Vec<String> = claims
            .other
            .get(&cfg.groups_claim)
            .and_then(|g| g.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let mapped: Vec<String> = groups
            .iter()
            .filter_map(|g| cfg.group_roles.get(g).cloned())
            .collect();
        if cfg.group_roles.is_empty() {
            return Ok(());
        }
        let role = if mapped.iter().any(|r| r == "admin") {
            "admin"
        } else {
            "member"
        };
        let mut agent_roles: Vec<String> = mapped
            .into_iter()
            .filter(|r| r != "admin" && r != "member")
            .collect();
        agent_roles.sort();
        agent_roles.dedup();
        let store = self.store.clone();
        let (id, r, ar) = (user.id, role.to_string(), agent_roles.clone());
        let (before_role, before_agents, lost) = blocking(move || {
            // All at once: an agent made in between cannot keep a role.
            Ok(warden_store::roles::apply_from_groups(
                &mut store.connect()?,
                id,
                &r,
                &ar,
            )?)
        })
        .await?;
        if before_role != role || before_agents != agent_roles || !lost.is_empty() {
            // The running gateway learns first: a failure to log must not
            // leave it enforcing the old roles.
            self.reload_gateway()?;
            let lost: Vec<serde_json::Value> = lost
                .into_iter()
                .map(|(agent, role)| serde_json::json!({"agent": agent, "role": role}))
                .collect();
            self.record_for(
                &user.name,
                "person.roles_from_groups",
                serde_json::json!({"target": user.name, "groups": groups,
                    "before": {"role": before_role, "agent_roles": before_agents},
                    "after": {"role": role, "agent_roles": agent_roles},
                    "agents_lost": lost}),
            )
            .await?;
        }
        Ok(())
    }

    /// Checks every session that follows the provider and is due: a
    /// refreshed token updates the person's roles from their groups; a
    /// refusal ends the session and pauses the person's agents until they
    /// sign in again. Network trouble is retried later.
    pub async fn sso_refresh_due(&self) -> ApiResult<usize> {
        let Some(cfg) = self.sso_config()? else {
            return Ok(0);
        };
        let now = self.clock.now();
        let store = self.store.clone();
        let due = blocking(move || Ok(users::sso_sessions_due(&store.connect()?, now)?)).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let guard = guard_for(&cfg.issuer)?;
        let meta = match oidc::discover(&guard, &cfg.issuer).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "could not reach the identity provider; sessions are checked again later");
                return Ok(0);
            }
        };
        let client = self.client(&cfg).await?;
        let install = self.store.install_id()?;
        let mut ended = 0;
        for (hash, user_id) in due {
            // One person's trouble (a keychain or database error) must not
            // stop the others' sessions from being checked.
            match self
                .refresh_one(&cfg, &meta, &client, &guard, &install, hash, user_id, now)
                .await
            {
                Ok(true) => ended += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e.message, user_id, "could not check a provider session; it is checked again later")
                }
            }
        }
        Ok(ended)
    }

    /// One provider session that is due: refreshed and checked, or ended.
    /// Returns whether it ended.
    #[allow(clippy::too_many_arguments)]
    async fn refresh_one(
        &self,
        cfg: &SsoConfig,
        meta: &ProviderMetadata,
        client: &ClientRegistration,
        guard: &Guard,
        install: &str,
        hash: String,
        user_id: i64,
        now: i64,
    ) -> ApiResult<bool> {
        let acct = format!("{install}/sso/session/{hash}");
        let kc = self.keychain.clone();
        let a = acct.clone();
        let rt = tokio::task::spawn_blocking(move || kc.get(&a))
            .await
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
            .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?;
        let Some(user) = ({
            let store = self.store.clone();
            blocking(move || Ok(users::by_id(&store.connect()?, user_id)?)).await?
        }) else {
            return Ok(false);
        };
        let tokens = warden_auth::oauth::TokenSet {
            access_token: Sensitive::new(String::new()),
            refresh_token: rt,
            expires_at: None,
            scope: None,
            resource: String::new(),
            issuer: meta.issuer.clone(),
            id_token: None,
        };
        match flow::refresh(guard, &meta.token_endpoint, client, &tokens).await {
            Ok(fresh) => {
                // A rotated refresh token replaces the old one before
                // anything else: the provider may already refuse the old.
                if let Some(rt) = fresh.refresh_token.clone() {
                    let kc = self.keychain.clone();
                    let a = acct.clone();
                    let _ = tokio::task::spawn_blocking(move || kc.set(&a, &rt)).await;
                }
                let next = match self.check_refreshed(cfg, meta, &user, &fresh, now).await? {
                    Refreshed::Refused(why) => {
                        self.end_provider_session(hash, &user, acct, why).await?;
                        return Ok(true);
                    }
                    Refreshed::Checked => now + cfg.refresh_secs,
                    // Not checked yet: soon again, not a whole interval later.
                    Refreshed::Unchecked => now + cfg.refresh_secs.min(30),
                };
                let store = self.store.clone();
                let h = hash.clone();
                blocking(move || Ok(users::set_sso_refresh(&store.connect()?, &h, Some(next))?))
                    .await?;
            }
            Err(OAuthError::Network(e)) => {
                tracing::warn!(error = %e, person = %user.name, "could not reach the identity provider; trying again later");
            }
            Err(e) => {
                self.end_provider_session(hash, &user, acct, e.to_string())
                    .await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// A refresh's new ID token, when the provider sent one: it must pass
    /// the same checks as at sign-in and name the same person; then the
    /// person's roles follow their groups. Keys that cannot be fetched leave
    /// it unchecked, and the session is checked again soon.
    async fn check_refreshed(
        &self,
        cfg: &SsoConfig,
        meta: &oidc::ProviderMetadata,
        user: &User,
        fresh: &warden_auth::oauth::TokenSet,
        now: i64,
    ) -> ApiResult<Refreshed> {
        let Some(id) = &fresh.id_token else {
            return Ok(Refreshed::Checked);
        };
        let expect = Expect {
            issuer: &meta.issuer,
            client_id: &cfg.client_id,
            nonce: None,
            max_age: None,
            now,
        };
        let verdict = oidc::validate_with(&guard_for(&cfg.issuer)?, meta, id, &expect).await;
        let claims = match verdict {
            Err(e) => {
                tracing::warn!(error = %e, person = %user.name, "could not fetch the identity provider's keys; the session is checked again soon");
                return Ok(Refreshed::Unchecked);
            }
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                return Ok(Refreshed::Refused(format!(
                    "the provider's new ID token was refused: {e}"
                )));
            }
        };
        let store = self.store.clone();
        let uid = user.id;
        let bound = blocking(move || Ok(users::sso_subject_of(&store.connect()?, uid)?)).await?;
        if bound.as_deref() != Some(format!("{}|{}", claims.iss, claims.sub).as_str()) {
            return Ok(Refreshed::Refused(
                "the provider's new ID token names a different person".to_string(),
            ));
        }
        self.apply_groups(cfg, user, &claims).await?;
        Ok(Refreshed::Checked)
    }

    /// The provider refused a session (or answered for someone else): the
    /// session ends, the person's agents are suspended until they sign in
    /// again, and it is logged.
    async fn end_provider_session(
        &self,
        hash: String,
        user: &User,
        acct: String,
        why: String,
    ) -> ApiResult<()> {
        let store = self.store.clone();
        let id = user.id;
        let paused = blocking(move || {
            let conn = store.connect()?;
            users::end_session(&conn, &hash)?;
            users::set_sso_suspended(&conn, id, true)?;
            Ok(warden_store::agent::suspend_owned(&conn, id, false)?)
        })
        .await?;
        let kc = self.keychain.clone();
        let _ = tokio::task::spawn_blocking(move || kc.delete(&acct)).await;
        self.reload_gateway()?;
        self.record_for(
            &user.name,
            "auth.sso_refused",
            serde_json::json!({"why": why, "session_ended": true, "agents_suspended": paused}),
        )
        .await?;
        tracing::warn!(person = %user.name, "the identity provider refused a session; it ended and the person's agents are suspended");
        Ok(())
    }

    /// After an SSO step-up: the session may approve one critical call.
    pub(crate) async fn sso_step_up_done(
        &self,
        o: &SsoOutcome,
        session_hash: String,
        user_id: i64,
    ) -> ApiResult<()> {
        let store = self.store.clone();
        let bound =
            blocking(move || Ok(users::sso_subject_of(&store.connect()?, user_id)?)).await?;
        let subject = format!("{}|{}", o.claims.iss, o.claims.sub);
        if bound.as_deref() != Some(subject.as_str()) {
            return Err(ApiError::new(
                ErrorCode::Unauthenticated,
                "the step-up was done as a different person; sign in at the provider as yourself",
            ));
        }
        let now = self.clock.now();
        let store = self.store.clone();
        let h = session_hash.clone();
        blocking(move || Ok(users::mark_mfa(&store.connect()?, &h, now)?)).await?;
        stepped_up()
            .lock()
            .map_err(|_| ApiError::new(ErrorCode::Internal, "step-up state lost"))?
            .insert(session_hash, now);
        self.record_for(
            &o.who,
            "approval.step_up",
            serde_json::json!({"how": "sso", "result": "verified", "amr": o.claims.amr}),
        )
        .await
    }
}

impl Api {
    /// Links the signed-in person to the provider account they just signed
    /// in with. Neither may be linked already: changing a link takes an
    /// admin (`warden user sso-link NAME --unlink` first).
    pub(crate) async fn sso_link(&self, actor: &User, o: &SsoOutcome) -> ApiResult<String> {
        let subject = format!("{}|{}", o.claims.iss, o.claims.sub);
        self.bind_subject(actor, &subject, "self").await?;
        Ok(format!("{} ({subject})", o.who))
    }

    /// An admin links a person to one provider account, or unlinks them.
    pub(crate) async fn sso_bind(&self, name: &str, subject: Option<String>) -> ApiResult<()> {
        let person = self.person(name).await?;
        let Some(subject) = subject.map(|s| s.trim().to_string()) else {
            let store = self.store.clone();
            let id = person.id;
            let before = blocking(move || {
                let conn = store.connect()?;
                let before = users::sso_subject_of(&conn, id)?;
                users::set_sso_subject(&conn, id, None)?;
                Ok(before)
            })
            .await?;
            return self
                .record_change(
                    "person.sso_unlinked",
                    name,
                    Some(serde_json::json!({"subject": before})),
                    None,
                )
                .await;
        };
        let subject = if subject.contains('|') {
            subject
        } else {
            let cfg = self.sso_required()?;
            format!("{}|{subject}", cfg.issuer)
        };
        let (iss, sub) = subject.split_once('|').unwrap_or_default();
        if url::Url::parse(iss).is_err() || sub.is_empty() || sub.len() > 255 {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "a provider account is ISSUER|SUBJECT as the refused sign-in's log row shows it (or just the subject, for the configured provider)",
            ));
        }
        self.bind_subject(&person, &subject, "admin").await
    }

    async fn bind_subject(&self, person: &User, subject: &str, by: &str) -> ApiResult<()> {
        let store = self.store.clone();
        let (id, s) = (person.id, subject.to_string());
        let outcome = blocking(move || {
            let conn = store.connect()?;
            if let Some(other) = users::by_sso_subject(&conn, &s)? {
                return Ok(Err(if other.id == id {
                    "already linked to this provider account".to_string()
                } else {
                    format!(
                        "this provider account is already linked to the Warden account {}; an admin can unlink it first",
                        other.name
                    )
                }));
            }
            if users::sso_subject_of(&conn, id)?.is_some() {
                return Ok(Err(
                    "this Warden account is already linked to another provider account; an admin can unlink it first (warden user sso-link NAME --unlink)".to_string(),
                ));
            }
            users::set_sso_subject(&conn, id, Some(&s))?;
            Ok(Ok(()))
        })
        .await?;
        if let Err(why) = outcome {
            return Err(ApiError::new(ErrorCode::Conflict, why));
        }
        self.record_change(
            "person.sso_linked",
            &person.name,
            None,
            Some(serde_json::json!({"subject": subject, "by": by})),
        )
        .await
    }
}

/// What a refreshed session's new ID token came to.
enum Refreshed {
    /// Checked (or none was sent): the session goes on.
    Checked,
    /// The provider's keys could not be fetched: check again soon.
    Unchecked,
    /// It failed the checks: the session ends, with this reason.
    Refused(String),
}

/// A checked answer from the provider.
pub(crate) struct SsoOutcome {
    claims: IdClaims,
    who: String,
    refresh_token: Option<Sensitive<String>>,
    /// When the second factor was proved (seconds).
    mfa_at: i64,
}

/// Runs the background refresh: every few seconds, sessions that are due.
pub fn spawn_refresher(api: Api) {
    tokio::spawn(async move {
        let api = Arc::new(api);
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if let Err(e) = api.sso_refresh_due().await {
                tracing::warn!(error = %e.message, "checking SSO sessions failed");
            }
        }
    });
}
