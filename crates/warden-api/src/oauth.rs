//! Signing in to remote servers (the guided OAuth flow), the tokens that
//! come out of it (OS keychain only), their refresh, the central list of
//! sign-ins, and the authorization probe.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use warden_auth::oauth::discovery::{self, Challenge};
use warden_auth::oauth::flow::{self, Authorization, Loopback};
use warden_auth::oauth::guard::{Guard, Resolver, system_resolver};
use warden_auth::oauth::{ClientRegistration, OAuthError, TokenSet};
use warden_auth::{Keychain, Sensitive};
use warden_gateway::upstream::TokenSource;
use warden_store::Store;
use warden_store::server_auth::{self, ServerAuth};

use crate::{Api, ApiError, ApiResult, ErrorCode, Response, blocking};

/// What the keychain holds for one server's sign-in.
#[derive(Serialize, Deserialize)]
struct Stored {
    tokens: TokenSet,
    client: ClientRegistration,
}

fn account(install_id: &str, server: &str, issuer: &str) -> String {
    let h = hex::encode(&Sha256::digest(issuer.as_bytes())[..8]);
    format!("{install_id}/oauth/{server}/{h}")
}

pub(crate) fn oauth_error(e: OAuthError) -> ApiError {
    let code = match &e {
        OAuthError::Refused(_) => ErrorCode::InvalidInput,
        OAuthError::Network(_) => ErrorCode::Unavailable,
        OAuthError::Denied(_) | OAuthError::TimedOut(_) => ErrorCode::Unauthenticated,
    };
    ApiError::new(code, e.to_string())
}

/// The sign-in tokens the gateway sends to remote servers: read from the
/// keychain, refreshed a minute before they expire, and only ever sent to
/// the resource they were issued for.
pub struct OAuthTokens {
    store: Store,
    keychain: Keychain,
    resolver: Resolver,
    refreshing: tokio::sync::Mutex<()>,
}

impl OAuthTokens {
    pub fn new(store: Store, keychain: Keychain) -> Arc<OAuthTokens> {
        Arc::new(OAuthTokens {
            store,
            keychain,
            resolver: system_resolver(),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    async fn load(&self, server: &str) -> Result<Option<(ServerAuth, Stored, String)>, String> {
        let store = self.store.clone();
        let kc = self.keychain.clone();
        let s = server.to_string();
        tokio::task::spawn_blocking(move || {
            let conn = store.connect().map_err(|e| e.to_string())?;
            let Some(row) = server_auth::get(&conn, &s).map_err(|e| e.to_string())? else {
                return Ok(None);
            };
            let acct = account(&store.install_id().map_err(|e| e.to_string())?, &s, &row.issuer);
            let Some(secret) = kc.get(&acct).map_err(|e| e.to_string())? else {
                return Err(format!(
                    "the sign-in to {s} is missing from the keychain; sign in again: warden server login {s}"
                ));
            };
            let stored: Stored = serde_json::from_str(secret.expose())
                .map_err(|_| format!("the saved sign-in to {s} is damaged; sign in again: warden server login {s}"))?;
            Ok(Some((row, stored, acct)))
        })
        .await
        .map_err(|e| e.to_string())?
    }

    async fn save(&self, acct: String, stored: &Stored) -> Result<(), String> {
        let kc = self.keychain.clone();
        let text = Sensitive::new(serde_json::to_string(stored).map_err(|e| e.to_string())?);
        tokio::task::spawn_blocking(move || kc.set(&acct, &text))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    async fn note(&self, server: &str, tokens: Option<&TokenSet>, error: Option<String>) {
        let store = self.store.clone();
        let s = server.to_string();
        let (exp, scope) = tokens.map_or((None, None), |t| (t.expires_at, t.scope.clone()));
        let _ = tokio::task::spawn_blocking(move || -> warden_store::Result<()> {
            server_auth::refreshed(
                &store.connect()?,
                &s,
                exp,
                scope.as_deref(),
                error.as_deref(),
            )
        })
        .await;
    }

    async fn bearer_for(
        &self,
        server: &str,
        url: &url::Url,
        refresh: bool,
    ) -> Result<Option<String>, String> {
        let Some((row, stored, acct)) = self.load(server).await? else {
            return Ok(None);
        };
        if !discovery::resource_matches(&stored.tokens.resource, url) {
            return Err(format!(
                "the saved sign-in to {server} was for {}, not {url}; sign in again: warden server login {server}",
                stored.tokens.resource
            ));
        }
        let now = warden_store::now_us() / 1_000_000;
        if !refresh && !stored.tokens.expiring(now, 60) {
            return Ok(Some(stored.tokens.access_token.expose().clone()));
        }
        let _one_at_a_time = self.refreshing.lock().await;
        let latest = self.load(server).await?;
        // A lapse already recorded (by a call that waited before this one)
        // was already notified.
        let lapsed_before = latest
            .as_ref()
            .is_some_and(|(r, _, _)| r.last_error.is_some());
        // Someone else may have refreshed while this waited.
        if let Some((_, fresh, _)) = &latest
            && fresh.tokens.access_token.expose() != stored.tokens.access_token.expose()
            && !fresh.tokens.expiring(now, 60)
        {
            return Ok(Some(fresh.tokens.access_token.expose().clone()));
        }
        let guard = Guard::for_server(self.resolver.clone(), url);
        match flow::refresh(&guard, &row.token_endpoint, &stored.client, &stored.tokens).await {
            Ok(tokens) => {
                let access = tokens.access_token.expose().clone();
                let stored = Stored {
                    tokens,
                    client: stored.client,
                };
                self.save(acct, &stored).await?;
                self.note(server, Some(&stored.tokens), None).await;
                tracing::info!(%server, "refreshed the sign-in token");
                Ok(Some(access))
            }
            Err(e) => {
                let why = format!(
                    "the sign-in to {server} ended and could not be renewed ({e}); sign in again: warden server login {server}"
                );
                self.note(server, None, Some(why.clone())).await;
                // Once per lapse, not once per call that finds it lapsed.
                if !lapsed_before {
                    warden_gateway::notify::notice_to(
                        format!("Sign in to {server} again"),
                        format!(
                            "Warden could not renew its sign-in to {server}, so its tools are unavailable until someone signs in to it again in Warden."
                        ),
                        Some((
                            format!("/servers?server={server}&signin=1"),
                            "Sign in again".to_string(),
                        )),
                    );
                }
                Err(why)
            }
        }
    }
}

impl TokenSource for OAuthTokens {
    fn bearer<'a>(
        &'a self,
        server: &'a str,
        url: &'a url::Url,
        refresh: bool,
    ) -> futures::future::BoxFuture<'a, Result<Option<String>, String>> {
        Box::pin(self.bearer_for(server, url, refresh))
    }
}

/// A sign-in waiting for the browser.
pub(crate) struct PendingLogin {
    server: String,
    loopback: Loopback,
    authorization: Authorization,
    revocation_endpoint: Option<String>,
    guard: Guard,
}

pub(crate) type Logins = Arc<Mutex<HashMap<String, PendingLogin>>>;

/// Sign-ins in progress in this process. Shared by every Api of the
/// process, so the two steps may come through different calls (the CLI
/// without a running gateway makes a fresh Api per call).
pub(crate) fn logins() -> Logins {
    static LOGINS: std::sync::OnceLock<Logins> = std::sync::OnceLock::new();
    LOGINS.get_or_init(Logins::default).clone()
}

/// The first step's answer: where to send the person.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct LoginStarted {
    pub flow: String,
    /// Open in the system browser.
    pub url: String,
    pub issuer: String,
    /// How Warden is registered: pre-registered, entered, dynamic or metadata-document.
    pub registration: String,
    pub scopes: Option<String>,
}

/// One server's answer to one probe check.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct ProbeCheck {
    pub check: String,
    pub status: u16,
    pub challenge: bool,
    /// The request was refused (not let in).
    pub passed: bool,
    /// Refused as the specification says: 401 (or 403) with a Bearer challenge.
    pub proper: bool,
    pub note: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct ProbeReport {
    pub server: String,
    /// `enforcing`, `not enforcing` or `no authorization`.
    pub verdict: String,
    pub checks: Vec<ProbeCheck>,
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"warden","version":"0"}}}"#;

/// Sends an initialize with `token` (or none) and returns the status and
/// the Bearer challenge, if any.
async fn knock(
    http: &reqwest::Client,
    url: &url::Url,
    token: Option<&str>,
) -> Result<(u16, Option<Challenge>), String> {
    let mut req = http
        .post(url.clone())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INITIALIZE);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let r = req
        .send()
        .await
        .map_err(|e| format!("could not reach {url}: {e}"))?;
    let challenge = r
        .headers()
        .get("www-authenticate")
        .and_then(|h| h.to_str().ok())
        .and_then(discovery::parse_www_authenticate);
    Ok((r.status().as_u16(), challenge))
}

fn fake_jwt(claims: serde_json::Value) -> String {
    use base64::Engine;
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut sig = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut sig);
    format!(
        "{}.{}.{}",
        b.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        b.encode(claims.to_string()),
        b.encode(sig)
    )
}

impl Api {
    /// A remote server's address, once an admin approved it as it is now
    /// (an edit of the file must not aim a new sign-in elsewhere).
    async fn remote_url(&self, name: &str) -> ApiResult<url::Url> {
        let spec = self
            .load_config()?
            .servers
            .get(name)
            .cloned()
            .ok_or_else(|| {
                ApiError::new(ErrorCode::NotFound, format!("no server is named {name:?}"))
            })?;
        self.require_consent(name, &spec).await?;
        let raw = spec.url.ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidInput,
                format!("{name:?} is a local server: there is nothing to sign in to"),
            )
        })?;
        url::Url::parse(&raw).map_err(|e| ApiError::new(ErrorCode::InvalidInput, e.to_string()))
    }

    /// Step one: discover, register, and build the authorization request.
    pub(crate) async fn login_start(
        &self,
        name: String,
        client_id: Option<String>,
        client_secret: Option<Sensitive<String>>,
        scopes: Option<String>,
    ) -> ApiResult<Response> {
        let url = self.remote_url(&name).await?;
        let guard = Guard::for_server(system_resolver(), &url);
        guard
            .check(url.as_str(), "server address")
            .map_err(oauth_error)?;
        let http = http_client();
        let (status, challenge) = knock(&http, &url, None)
            .await
            .map_err(|e| ApiError::new(ErrorCode::Unavailable, e))?;
        if status != 401 {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!(
                    "{name} answered without asking anyone to sign in (HTTP {status}), so it does not use OAuth. If it needs an API key, store it with `warden secret set` and add it as a header"
                ),
            ));
        }
        let found = discovery::discover(&guard, &url, challenge.as_ref())
            .await
            .map_err(oauth_error)?;
        let scopes = scopes.or(found.scopes.clone());
        // A registration from an earlier sign-in with the same issuer is
        // reused, on the same redirect port when it is free.
        let store = self.store.clone();
        let n = name.clone();
        let previous = blocking(move || Ok(server_auth::get(&store.connect()?, &n)?)).await?;
        let previous = previous.filter(|p| p.issuer == found.auth_server.issuer);
        let port = previous
            .as_ref()
            .and_then(|p| p.redirect_uri.as_deref())
            .and_then(|u| url::Url::parse(u).ok())
            .and_then(|u| u.port());
        let loopback = Loopback::bind(port).await.map_err(oauth_error)?;
        let pre = match client_id {
            Some(id) => Some(ClientRegistration {
                client_id: id,
                client_secret,
                auth_method: "none".into(),
                kind: "entered".into(),
                redirect_uri: None,
            }),
            None => match &previous {
                Some(p)
                    if p.client_kind != "dynamic"
                        || p.redirect_uri.as_deref() == Some(loopback.redirect_uri.as_str()) =>
                {
                    let tokens = OAuthTokens::new(self.store.clone(), self.keychain.clone());
                    tokens
                        .load(&name)
                        .await
                        .ok()
                        .flatten()
                        .map(|(_, s, _)| s.client)
                }
                _ => None,
            },
        };
        // As in force: an edit of the file waits for an admin (settings.rs).
        let metadata_url = self.config_in_force()?.oauth.client_metadata_url;
        let client = flow::register(
            &guard,
            &found.auth_server,
            &loopback.redirect_uri,
            pre,
            metadata_url.as_deref(),
            scopes.as_deref(),
        )
        .await
        .map_err(oauth_error)?;
        let authorization = flow::authorize(
            &found.auth_server,
            &client,
            &found.resource,
            scopes.as_deref(),
            &loopback.redirect_uri,
            &guard,
        )
        .map_err(oauth_error)?;
        let started = LoginStarted {
            flow: warden_auth::random_token().into_inner(),
            url: authorization.url.clone(),
            issuer: found.auth_server.issuer.clone(),
            registration: client.kind.clone(),
            scopes,
        };
        let mut logins = self
            .logins
            .lock()
            .map_err(|_| ApiError::new(ErrorCode::Internal, "sign-in state lost"))?;
        // A newer sign-in for the same server replaces an older one.
        logins.retain(|_, p| p.server != name);
        logins.insert(
            started.flow.clone(),
            PendingLogin {
                server: name,
                loopback,
                authorization,
                revocation_endpoint: found.auth_server.revocation_endpoint.clone(),
                guard,
            },
        );
        Ok(Response::LoginStarted(started))
    }

    /// Step two: wait for the browser, exchange the code, keep the tokens
    /// in the keychain, and start the server with them.
    pub(crate) async fn login_finish(&self, flow_id: String) -> ApiResult<Response> {
        let pending = self
            .logins
            .lock()
            .map_err(|_| ApiError::new(ErrorCode::Internal, "sign-in state lost"))?
            .remove(&flow_id)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::NotFound,
                    "this sign-in is no longer waiting (it finished, timed out, or a newer one replaced it); start it again",
                )
            })?;
        let PendingLogin {
            server,
            loopback,
            authorization,
            revocation_endpoint,
            guard,
        } = pending;
        let code = flow::wait_for_code(loopback, &authorization, Duration::from_secs(300))
            .await
            .map_err(oauth_error)?;
        let tokens = flow::exchange(&guard, &authorization, &code)
            .await
            .map_err(oauth_error)?;
        let row = ServerAuth {
            server: server.clone(),
            issuer: tokens.issuer.clone(),
            resource: tokens.resource.clone(),
            client_id: authorization.client.client_id.clone(),
            client_kind: authorization.client.kind.clone(),
            redirect_uri: Some(authorization.redirect_uri.clone()),
            scopes: tokens.scope.clone(),
            expires_at_s: tokens.expires_at,
            token_endpoint: authorization.token_endpoint.clone(),
            revocation_endpoint,
            signed_in_at_us: warden_store::now_us(),
            signed_in_by: self.actor.clone(),
            last_refresh_at_us: None,
            last_error: None,
        };
        let stored = Stored {
            tokens,
            client: authorization.client.clone(),
        };
        let acct = account(&self.store.install_id()?, &server, &row.issuer);
        let text = Sensitive::new(
            serde_json::to_string(&stored)
                .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?,
        );
        let kc = self.keychain.clone();
        tokio::task::spawn_blocking(move || kc.set(&acct, &text))
            .await
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
            .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?;
        let store = self.store.clone();
        let r = row.clone();
        blocking(move || Ok(server_auth::upsert(&store.connect()?, &r)?)).await?;
        self.record(
            "server.signed_in",
            Some(&server),
            None,
            Some(
                serde_json::json!({"issuer": row.issuer, "client": row.client_kind, "scopes": row.scopes, "expires_at_s": row.expires_at_s})
                    .to_string(),
            ),
        )
        .await?;
        if let Some(gw) = &self.gateway {
            gw.restart_server(&server).await?;
            gw.settle(Duration::from_secs(20)).await;
        }
        Ok(Response::SignedInTo(Box::new(row)))
    }

    pub(crate) async fn auth_list(&self) -> ApiResult<Response> {
        let store = self.store.clone();
        let rows = blocking(move || Ok(server_auth::list(&store.connect()?)?)).await?;
        Ok(Response::ServerAuths(rows))
    }

    /// Signs out of a server: revokes the tokens where the server offers
    /// revocation (RFC 7009), and forgets them.
    pub(crate) async fn logout(&self, name: String) -> ApiResult<Response> {
        let tokens = OAuthTokens::new(self.store.clone(), self.keychain.clone());
        let loaded = tokens
            .load(&name)
            .await
            .map_err(|e| ApiError::new(ErrorCode::Unavailable, e))?;
        let Some((row, stored, acct)) = loaded else {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("Warden is not signed in to {name}"),
            ));
        };
        // Revoked where the server can (RFC 7009); why not, when it cannot,
        // goes into the log row.
        let mut revoked = false;
        let mut not_revoked: Option<String> = None;
        if let Some(endpoint) = &row.revocation_endpoint
            && let Ok(u) = url::Url::parse(&row.resource)
        {
            let guard = Guard::for_server(system_resolver(), &u);
            let refresh = stored.tokens.refresh_token.as_ref();
            let tokens = refresh
                .map(|rt| (rt, flow::Revocable::Refresh))
                .into_iter()
                .chain([(&stored.tokens.access_token, flow::Revocable::Access)]);
            for (token, kind) in tokens {
                match flow::revoke(&guard, endpoint, &stored.client, token.expose(), kind).await {
                    Ok(()) => revoked = true,
                    Err(e) => not_revoked = Some(e.to_string()),
                }
            }
        } else {
            not_revoked = Some("the server publishes no revocation endpoint".into());
        }
        let kc = self.keychain.clone();
        tokio::task::spawn_blocking(move || kc.delete(&acct))
            .await
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
            .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?;
        let store = self.store.clone();
        let n = name.clone();
        blocking(move || Ok(server_auth::remove(&store.connect()?, &n)?)).await?;
        self.record(
            "server.signed_out",
            Some(&name),
            None,
            Some(serde_json::json!({"revoked": revoked, "not_revoked": not_revoked}).to_string()),
        )
        .await?;
        if let Some(gw) = &self.gateway {
            gw.restart_server(&name).await?;
        }
        Ok(Response::Done)
    }

    /// Tries the server with no token and with bad ones; every one must be
    /// refused with 401 (or 403) and a Bearer challenge.
    pub(crate) async fn probe(&self, name: String) -> ApiResult<Response> {
        let url = self.remote_url(&name).await?;
        let http = http_client();
        let other_aud = "https://another-server.invalid/mcp";
        let now = warden_store::now_us() / 1_000_000;
        let cases: Vec<(&str, Option<String>)> = vec![
            ("no token", None),
            ("malformed token", Some("not a token!".into())),
            (
                "random token",
                Some(warden_auth::random_token().into_inner()),
            ),
            (
                "expired token",
                Some(fake_jwt(
                    serde_json::json!({"aud": url.as_str(), "exp": now - 3600, "iat": now - 7200, "sub": "warden-probe"}),
                )),
            ),
            (
                "token for another server",
                Some(fake_jwt(
                    serde_json::json!({"aud": other_aud, "exp": now + 3600, "sub": "warden-probe"}),
                )),
            ),
            (
                "token without scopes",
                Some(fake_jwt(
                    serde_json::json!({"aud": url.as_str(), "exp": now + 3600, "scope": "", "sub": "warden-probe"}),
                )),
            ),
        ];
        let mut checks = Vec::new();
        for (check, token) in cases {
            let (status, challenge) = knock(&http, &url, token.as_deref())
                .await
                .map_err(|e| ApiError::new(ErrorCode::Unavailable, e))?;
            let accepted = (200..300).contains(&status);
            let proper = (status == 401 || status == 403) && challenge.is_some();
            let note = if accepted {
                format!("ACCEPTED (HTTP {status}): the server let this request in")
            } else if proper {
                "refused, with a Bearer challenge".to_string()
            } else if status == 401 || status == 403 {
                "refused, but without a WWW-Authenticate Bearer challenge".to_string()
            } else {
                format!("refused, but with HTTP {status} instead of 401 and a Bearer challenge")
            };
            checks.push(ProbeCheck {
                check: check.into(),
                status,
                challenge: challenge.is_some(),
                passed: !accepted,
                proper,
                note,
            });
        }
        let verdict = if !checks[0].passed {
            "no authorization"
        } else if checks.iter().all(|c| c.passed) {
            "enforcing"
        } else {
            "not enforcing"
        };
        let store = self.store.clone();
        let (n, v, c) = (
            name.clone(),
            verdict.to_string(),
            serde_json::to_value(&checks).unwrap_or_default(),
        );
        blocking(move || Ok(server_auth::save_probe(&store.connect()?, &n, &v, &c)?)).await?;
        self.record(
            "server.probed",
            Some(&name),
            None,
            Some(serde_json::json!({"verdict": verdict}).to_string()),
        )
        .await?;
        Ok(Response::Probe(ProbeReport {
            server: name,
            verdict: verdict.into(),
            checks,
        }))
    }
}
