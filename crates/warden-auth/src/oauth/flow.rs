//! Signing in: client registration, the authorization request with PKCE
//! S256 and a single-use `state`, the loopback redirect on 127.0.0.1, the
//! `iss` check, the code exchange, refresh and revocation.
//!
//! The OAuth exchanges themselves (the authorization URL, PKCE, the token,
//! refresh and revocation requests, client authentication and the token
//! answer's parsing) are the `oauth2` crate's; every request it makes goes
//! through [`Guard::send`]. Warden adds what MCP asks on top: the `resource`
//! indicator (RFC 8707) on every request, the `iss` check of the answer
//! (RFC 9207), dynamic registration (RFC 7591), which the crate does not do,
//! and the one-time redirect listener.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, RevocationUrl, Scope, StandardRevocableToken, StandardTokenResponse,
    TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use url::Url;

use super::discovery::AuthServer;
use super::guard::Guard;
use super::{ClientRegistration, OAuthError, Result, TokenSet};
use crate::Sensitive;

/// The redirect listener: 127.0.0.1 on an ephemeral port (RFC 8252 §7.3).
pub struct Loopback {
    listener: TcpListener,
    pub redirect_uri: String,
}

impl Loopback {
    /// Binds `port` when given and free (to reuse a registered redirect
    /// URI), else any free port.
    pub async fn bind(port: Option<u16>) -> Result<Loopback> {
        let listener = match port {
            Some(p) => match TcpListener::bind(("127.0.0.1", p)).await {
                Ok(l) => l,
                Err(_) => TcpListener::bind(("127.0.0.1", 0)).await.map_err(io)?,
            },
            None => TcpListener::bind(("127.0.0.1", 0)).await.map_err(io)?,
        };
        let port = listener.local_addr().map_err(io)?.port();
        Ok(Loopback {
            listener,
            redirect_uri: format!("http://127.0.0.1:{port}/callback"),
        })
    }
}

fn io(e: std::io::Error) -> OAuthError {
    OAuthError::Network(format!(
        "could not open the sign-in listener on 127.0.0.1: {e}"
    ))
}

/// Obtains a client registration in the specification's order: one an
/// admin entered, a client ID metadata document (when Warden has one at an
/// https URL and the server supports them), dynamic registration, else the
/// person is asked for a client ID.
pub async fn register(
    guard: &Guard,
    m: &AuthServer,
    redirect_uri: &str,
    pre: Option<ClientRegistration>,
    metadata_document: Option<&str>,
    scopes: Option<&str>,
) -> Result<ClientRegistration> {
    if let Some(mut c) = pre {
        if c.client_secret.is_some() && c.auth_method == "none" {
            let methods = m
                .token_endpoint_auth_methods_supported
                .clone()
                .unwrap_or_default();
            c.auth_method =
                if methods.iter().any(|x| x == "client_secret_basic") || methods.is_empty() {
                    "client_secret_basic".into()
                } else {
                    "client_secret_post".into()
                };
        }
        return Ok(c);
    }
    if let Some(doc) = metadata_document
        && m.client_id_metadata_document_supported
    {
        return Ok(ClientRegistration {
            client_id: doc.to_string(),
            client_secret: None,
            auth_method: "none".into(),
            kind: "metadata-document".into(),
            redirect_uri: None,
        });
    }
    let Some(endpoint) = &m.registration_endpoint else {
        return Err(OAuthError::Refused(format!(
            "the authorization server {} does not let apps register themselves; ask the server's admin for a client ID for Warden and enter it (warden server login NAME --client-id ID)",
            m.issuer
        )));
    };
    let mut body = serde_json::json!({
        "client_name": "Warden",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
    });
    if let Some(s) = scopes {
        body["scope"] = serde_json::json!(s);
    }
    let endpoint = Url::parse(endpoint).map_err(bad_url("registration endpoint"))?;
    let request = http::Request::post(endpoint.as_str())
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(body.to_string().into_bytes())
        .map_err(|e| {
            OAuthError::Refused(format!("the registration endpoint is not usable: {e}"))
        })?;
    let answer = guard.send(request, "registration endpoint").await?;
    let status = answer.status();
    let text = String::from_utf8_lossy(answer.body());
    if !status.is_success() {
        return Err(OAuthError::Refused(format!(
            "the authorization server refused to register Warden ({status}): {}",
            short(&text)
        )));
    }
    #[derive(Deserialize)]
    struct Registered {
        client_id: String,
        client_secret: Option<String>,
        token_endpoint_auth_method: Option<String>,
    }
    let reg: Registered = serde_json::from_str(&text)
        .map_err(|e| OAuthError::Refused(format!("the registration answer is not valid: {e}")))?;
    let auth_method = match (
        &reg.client_secret,
        reg.token_endpoint_auth_method.as_deref(),
    ) {
        (None, _) => "none".to_string(),
        (Some(_), Some(m)) => m.to_string(),
        (Some(_), None) => "client_secret_basic".to_string(),
    };
    Ok(ClientRegistration {
        client_id: reg.client_id,
        client_secret: reg.client_secret.map(Sensitive::new),
        auth_method,
        kind: "dynamic".into(),
        redirect_uri: Some(redirect_uri.to_string()),
    })
}

fn short(s: &str) -> String {
    let s: String = s.chars().take(300).collect();
    s.replace(['\n', '\r'], " ")
}

/// One sign-in in progress: what the callback and the exchange need.
pub struct Authorization {
    /// The URL to open in the system browser.
    pub url: String,
    state: CsrfToken,
    verifier: PkceCodeVerifier,
    pub redirect_uri: String,
    pub issuer: String,
    iss_supported: bool,
    pub resource: String,
    pub token_endpoint: String,
    pub client: ClientRegistration,
}

/// What a token endpoint may send beside the tokens: an OpenID provider's
/// ID token, which single sign-on checks with `openidconnect`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}
impl ExtraTokenFields for IdTokenField {}

type Tokens = StandardTokenResponse<IdTokenField, BasicTokenType>;

/// An `oauth2` client for one registration, with its token endpoint set;
/// `A` and `R` say whether the authorization and revocation URLs are.
type Client<A = EndpointNotSet, R = EndpointNotSet> = oauth2::Client<
    BasicErrorResponse,
    Tokens,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    A,
    EndpointNotSet,
    EndpointNotSet,
    R,
    EndpointSet,
>;

fn bad_url(what: &'static str) -> impl Fn(url::ParseError) -> OAuthError {
    move |e| OAuthError::Refused(format!("the {what} is not a URL: {e}"))
}

/// The client's authentication at the token and revocation endpoints:
/// HTTP Basic, the secret in the form, or just the client ID (public client).
fn client(reg: &ClientRegistration, token_endpoint: &str, guard: &Guard) -> Result<Client> {
    let token_url = guard.check(token_endpoint, "token endpoint")?;
    let mut c = oauth2::Client::new(ClientId::new(reg.client_id.clone()))
        .set_token_uri(TokenUrl::from_url(token_url));
    // The secret is sent only by the two methods that send one; any other
    // registration authenticates with its client ID alone.
    let auth = match reg.auth_method.as_str() {
        "client_secret_basic" => Some(AuthType::BasicAuth),
        "client_secret_post" => Some(AuthType::RequestBody),
        _ => None,
    };
    if let (Some(secret), Some(auth)) = (&reg.client_secret, auth) {
        c = c
            .set_client_secret(ClientSecret::new(secret.expose().clone()))
            .set_auth_type(auth);
    }
    Ok(c)
}

fn scopes(scopes: Option<&str>) -> impl Iterator<Item = Scope> + '_ {
    scopes
        .unwrap_or_default()
        .split_whitespace()
        .map(|s| Scope::new(s.to_string()))
}

/// Builds the authorization request: PKCE S256, a fresh `state`, the
/// `resource`, the scopes.
pub fn authorize(
    m: &AuthServer,
    reg: &ClientRegistration,
    resource: &str,
    scope: Option<&str>,
    redirect_uri: &str,
    guard: &Guard,
) -> Result<Authorization> {
    super::discovery::check_pkce(m)?;
    start(
        guard,
        Start {
            authorization_endpoint: &m.authorization_endpoint,
            token_endpoint: &m.token_endpoint,
            issuer: &m.issuer,
            iss_supported: m.authorization_response_iss_parameter_supported,
            reg,
            redirect_uri,
            resource,
            scopes: scope,
            extra: &[],
        },
    )
}

/// What an authorization request is made of, for MCP servers and for
/// single sign-on alike.
pub struct Start<'a> {
    pub authorization_endpoint: &'a str,
    pub token_endpoint: &'a str,
    pub issuer: &'a str,
    pub iss_supported: bool,
    pub reg: &'a ClientRegistration,
    pub redirect_uri: &'a str,
    /// The resource indicator; empty for single sign-on.
    pub resource: &'a str,
    pub scopes: Option<&'a str>,
    /// More parameters (`nonce`, `max_age`, `acr_values`, `prompt`).
    pub extra: &'a [(&'a str, String)],
}

/// The authorization request with PKCE S256 and a fresh 192-bit `state`.
pub fn start(guard: &Guard, s: Start<'_>) -> Result<Authorization> {
    let auth_url = guard.check(s.authorization_endpoint, "authorization endpoint")?;
    let redirect = RedirectUrl::new(s.redirect_uri.to_string()).map_err(bad_url("redirect URI"))?;
    let c = client(s.reg, s.token_endpoint, guard)?
        .set_auth_uri(AuthUrl::from_url(auth_url))
        .set_redirect_uri(redirect);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = c
        .authorize_url(|| CsrfToken::new_random_len(24))
        .set_pkce_challenge(challenge)
        .add_scopes(scopes(s.scopes));
    if !s.resource.is_empty() {
        request = request.add_extra_param("resource", s.resource);
    }
    for (k, v) in s.extra {
        request = request.add_extra_param(*k, v.as_str());
    }
    let (url, state) = request.url();
    Ok(Authorization {
        url: url.to_string(),
        state,
        verifier,
        redirect_uri: s.redirect_uri.to_string(),
        issuer: s.issuer.to_string(),
        iss_supported: s.iss_supported,
        resource: s.resource.to_string(),
        token_endpoint: s.token_endpoint.to_string(),
        client: s.reg.clone(),
    })
}

/// A fresh random value (nonce) for a sign-in.
pub fn nonce() -> String {
    CsrfToken::new_random_len(24).into_secret()
}

const PAGE_OK: &str = "<!doctype html><meta charset=utf-8><title>Warden</title><p>Signed in. You can close this window and go back to Warden.</p>";
const PAGE_BAD: &str = "<!doctype html><meta charset=utf-8><title>Warden</title><p>This sign-in link is not the one Warden started, so it was ignored. Start the sign-in again from Warden.</p>";

/// What the callback checks an answer against.
pub struct Expected {
    state: String,
    issuer: String,
    iss_supported: bool,
}

impl Expected {
    pub fn new(state: &str, issuer: &str, iss_supported: bool) -> Expected {
        Expected {
            state: state.to_string(),
            issuer: issuer.to_string(),
            iss_supported,
        }
    }

    fn of(a: &Authorization) -> Expected {
        Expected {
            state: a.state.secret().clone(),
            issuer: a.issuer.clone(),
            iss_supported: a.iss_supported,
        }
    }
}

/// What the browser brought back, checked against the request: the code,
/// or why the sign-in failed. `None` for an answer to some other sign-in
/// (wrong or missing state), which is ignored.
pub fn check_callback(a: &Expected, query: &str) -> Option<Result<String>> {
    let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    // Anything without this sign-in's state is not an answer to it.
    match params.get("state") {
        Some(s) if bool::from(s.as_bytes().ct_eq(a.state.as_bytes())) => {}
        _ => return None,
    }
    match params.get("iss") {
        Some(iss) if iss != &a.issuer => {
            return Some(Err(OAuthError::Refused(format!(
                "the sign-in answer came from {iss:?}, not the authorization server Warden asked ({}); it was refused",
                a.issuer
            ))));
        }
        None if a.iss_supported => {
            return Some(Err(OAuthError::Refused(
                "the authorization server promised to say who answered (iss) and did not; the answer was refused".into(),
            )));
        }
        _ => {}
    }
    if let Some(e) = params.get("error") {
        let why = params
            .get("error_description")
            .cloned()
            .unwrap_or_else(|| e.clone());
        return Some(Err(OAuthError::Denied(format!(
            "the sign-in was not completed: {why}"
        ))));
    }
    match params.get("code") {
        Some(c) if !c.is_empty() => Some(Ok(c.clone())),
        _ => Some(Err(OAuthError::Refused(
            "the sign-in answer carried no authorization code".into(),
        ))),
    }
}

/// The listener's one route: the first answer with this sign-in's state
/// is handed over, and the listener closes.
#[derive(Clone)]
struct Callback {
    expected: Arc<Expected>,
    answer: Arc<Mutex<Option<oneshot::Sender<Result<String>>>>>,
}

fn page(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONNECTION, "close"),
        ],
        body,
    )
        .into_response()
}

async fn callback(State(cb): State<Callback>, RawQuery(query): RawQuery) -> Response {
    let Some(result) = check_callback(&cb.expected, query.as_deref().unwrap_or("")) else {
        return page(StatusCode::BAD_REQUEST, PAGE_BAD.into());
    };
    let Some(tx) = cb.answer.lock().ok().and_then(|mut a| a.take()) else {
        // A second answer with the right state: the first one won.
        return page(StatusCode::BAD_REQUEST, PAGE_BAD.into());
    };
    let reply = match &result {
        Ok(_) => page(StatusCode::OK, PAGE_OK.into()),
        Err(e) => page(
            StatusCode::BAD_REQUEST,
            format!(
                "<!doctype html><meta charset=utf-8><title>Warden</title><p>The sign-in failed: {}</p>",
                html_escape(&e.to_string())
            ),
        ),
    };
    let _ = tx.send(result);
    reply
}

/// Waits for the browser to come back to the loopback listener with this
/// sign-in's answer. The state is single use: the listener closes after it.
pub async fn wait_for_code(
    loopback: Loopback,
    a: &Authorization,
    timeout: Duration,
) -> Result<String> {
    let (tx, rx) = oneshot::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let app = axum::Router::new()
        .route("/callback", axum::routing::get(callback))
        .with_state(Callback {
            expected: Arc::new(Expected::of(a)),
            answer: Arc::new(Mutex::new(Some(tx))),
        });
    let server = tokio::spawn(
        axum::serve(loopback.listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .into_future(),
    );
    let answer = tokio::time::timeout(timeout, rx).await;
    let _ = stop.send(());
    // The listener is closed once the server has stopped; the answering
    // connection gets its page first.
    // A connection that never finishes its request must not keep it alive.
    let abort = server.abort_handle();
    if tokio::time::timeout(Duration::from_secs(2), server)
        .await
        .is_err()
    {
        abort.abort();
    }
    match answer {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(OAuthError::Network(
            "the sign-in listener stopped before the browser answered".into(),
        )),
        Err(_) => Err(OAuthError::TimedOut(timeout.as_secs())),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Words for a failed token or revocation request; `what` is what was asked.
fn refused<T: oauth2::ErrorResponse>(
    e: RequestTokenError<OAuthError, T>,
    what: &str,
) -> OAuthError {
    match e {
        RequestTokenError::Request(e) => e,
        RequestTokenError::ServerResponse(r) => {
            // The standard error answer's fields, without its Display's extras.
            let v = serde_json::to_value(&r).unwrap_or_default();
            let why = v["error_description"]
                .as_str()
                .or(v["error"].as_str())
                .unwrap_or("no reason given")
                .to_string();
            OAuthError::Denied(format!("the authorization server refused to {what}: {why}"))
        }
        // Only where it is wrong: serde's message can quote the value.
        RequestTokenError::Parse(e, _) => OAuthError::Refused(format!(
            "the authorization server's answer when asked to {what} is not valid (at {})",
            e.path()
        )),
        RequestTokenError::Other(why) => {
            OAuthError::Denied(format!("the authorization server refused to {what}: {why}"))
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The tokens of a token answer; only bearer tokens are used.
fn token_set(t: Tokens, resource: &str, issuer: &str, old: Option<&TokenSet>) -> Result<TokenSet> {
    if *t.token_type() != BasicTokenType::Bearer {
        return Err(OAuthError::Refused(format!(
            "the authorization server issued a {:?} token; Warden uses bearer tokens only",
            t.token_type().as_ref()
        )));
    }
    let scope = t
        .scopes()
        .map(|s| s.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(" "));
    Ok(TokenSet {
        access_token: Sensitive::new(t.access_token().secret().clone()),
        refresh_token: t
            .refresh_token()
            .map(|r| Sensitive::new(r.secret().clone()))
            .or_else(|| old.and_then(|o| o.refresh_token.clone())),
        expires_at: t
            .expires_in()
            .map(|d| now().saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))),
        scope: scope.or_else(|| old.and_then(|o| o.scope.clone())),
        resource: resource.to_string(),
        issuer: issuer.to_string(),
        id_token: t.extra_fields().id_token.clone(),
    })
}

/// Exchanges the authorization code for tokens.
pub async fn exchange(guard: &Guard, a: &Authorization, code: &str) -> Result<TokenSet> {
    let redirect = RedirectUrl::new(a.redirect_uri.clone()).map_err(bad_url("redirect URI"))?;
    let c = client(&a.client, &a.token_endpoint, guard)?.set_redirect_uri(redirect);
    let mut request = c
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .set_pkce_verifier(PkceCodeVerifier::new(a.verifier.secret().clone()));
    if !a.resource.is_empty() {
        request = request.add_extra_param("resource", a.resource.clone());
    }
    let t = request
        .request_async(&guard.client("token endpoint"))
        .await
        .map_err(|e| refused(e, "issue a token"))?;
    token_set(t, &a.resource, &a.issuer, None)
}

/// Refreshes an access token; a rotated refresh token replaces the old one.
pub async fn refresh(
    guard: &Guard,
    token_endpoint: &str,
    reg: &ClientRegistration,
    tokens: &TokenSet,
) -> Result<TokenSet> {
    let Some(rt) = &tokens.refresh_token else {
        return Err(OAuthError::Denied(
            "the server gave no refresh token, so the sign-in cannot be renewed without you".into(),
        ));
    };
    let c = client(reg, token_endpoint, guard)?;
    let rt = RefreshToken::new(rt.expose().clone());
    let mut request = c.exchange_refresh_token(&rt);
    if !tokens.resource.is_empty() {
        request = request.add_extra_param("resource", tokens.resource.clone());
    }
    let t = request
        .request_async(&guard.client("token endpoint"))
        .await
        .map_err(|e| refused(e, "issue a token"))?;
    token_set(t, &tokens.resource, &tokens.issuer, Some(tokens))
}

/// Which token [`revoke`] revokes.
#[derive(Debug, Clone, Copy)]
pub enum Revocable {
    Access,
    Refresh,
}

/// Revokes a token at the server (RFC 7009).
pub async fn revoke(
    guard: &Guard,
    endpoint: &str,
    reg: &ClientRegistration,
    token: &str,
    kind: Revocable,
) -> Result<()> {
    let url = guard.check(endpoint, "revocation endpoint")?;
    let token = match kind {
        Revocable::Access => {
            StandardRevocableToken::AccessToken(oauth2::AccessToken::new(token.to_string()))
        }
        Revocable::Refresh => {
            StandardRevocableToken::RefreshToken(RefreshToken::new(token.to_string()))
        }
    };
    // The token endpoint is not used here; any checked URL will do.
    let c: Client<EndpointNotSet, EndpointSet> =
        client(reg, endpoint, guard)?.set_revocation_url(RevocationUrl::from_url(url));
    // RFC 7009 §2: revocation only over https, which the crate enforces; the
    // guard allows plain http only for a server on this machine.
    c.revoke_token(token)
        .map_err(|_| {
            OAuthError::Refused(
                "the server's revocation endpoint uses plain http, and tokens are revoked over https only (RFC 7009); Warden forgot them here"
                    .into(),
            )
        })?
        .request_async(&guard.client("revocation endpoint"))
        .await
        .map_err(|e| refused(e, "revoke the token"))
}

/// Opens `url` in the system browser: never a webview, never through a
/// shell, only http(s). Returns false when no browser could be started
/// (the caller then shows the URL).
pub fn open_browser(url: &str) -> bool {
    let Ok(u) = Url::parse(url) else { return false };
    if !matches!(u.scheme(), "http" | "https") {
        return false;
    }
    if std::env::var("WARDEN_BROWSER").is_ok_and(|v| v == "none") {
        return false;
    }
    #[cfg(target_os = "macos")]
    let cmd = ("open", vec![u.as_str()]);
    #[cfg(target_os = "windows")]
    let cmd = ("rundll32", vec!["url.dll,FileProtocolHandler", u.as_str()]);
    #[cfg(all(unix, not(target_os = "macos")))]
    let cmd = ("xdg-open", vec![u.as_str()]);
    std::process::Command::new(cmd.0)
        .args(cmd.1)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use sha2::{Digest, Sha256};

    use super::*;

    fn expected(iss_supported: bool) -> Expected {
        Expected {
            state: "s123".into(),
            issuer: "https://as.example.com".into(),
            iss_supported,
        }
    }

    fn registration() -> ClientRegistration {
        ClientRegistration {
            client_id: "c".into(),
            client_secret: None,
            auth_method: "none".into(),
            kind: "dynamic".into(),
            redirect_uri: None,
        }
    }

    #[test]
    fn callbacks_are_checked_for_state_and_iss() {
        let a = expected(true);
        assert!(
            check_callback(&a, "code=x&state=wrong").is_none(),
            "another state is ignored"
        );
        assert!(check_callback(&a, "code=x").is_none());
        let ok = check_callback(&a, "code=abc&state=s123&iss=https%3A%2F%2Fas.example.com");
        assert!(matches!(ok, Some(Ok(c)) if c == "abc"));
        let wrong = check_callback(&a, "code=abc&state=s123&iss=https%3A%2F%2Fevil.example.com");
        assert!(matches!(wrong, Some(Err(OAuthError::Refused(_)))));
        let missing = check_callback(&a, "code=abc&state=s123");
        assert!(
            matches!(missing, Some(Err(OAuthError::Refused(_)))),
            "promised iss missing"
        );
        let not_promised = check_callback(&expected(false), "code=abc&state=s123");
        assert!(matches!(not_promised, Some(Ok(_))));
        let denied = check_callback(
            &a,
            "error=access_denied&state=s123&iss=https%3A%2F%2Fas.example.com",
        );
        assert!(matches!(denied, Some(Err(OAuthError::Denied(_)))));
    }

    fn server() -> AuthServer {
        AuthServer {
            issuer: "https://as.example.com".into(),
            ..AuthServer::at_origin("http://127.0.0.1:9")
        }
    }

    #[tokio::test]
    async fn the_loopback_takes_one_answer_with_its_state_then_closes() {
        let lb = Loopback::bind(None).await.expect("bind");
        let redirect = lb.redirect_uri.clone();
        let guard = Guard::new(super::super::guard::system_resolver(), false, true);
        let a =
            authorize(&server(), &registration(), "r", None, &redirect, &guard).expect("authorize");
        let state = a.state.secret().clone();
        let waiting =
            tokio::spawn(async move { wait_for_code(lb, &a, Duration::from_secs(10)).await });
        let http = reqwest::Client::new();
        let forged = http
            .get(format!("{redirect}?code=evil&state=guess"))
            .send()
            .await
            .expect("send");
        assert_eq!(forged.status(), 400, "another state is turned away");
        let elsewhere = http
            .get(redirect.replace("/callback", "/other"))
            .send()
            .await
            .expect("send");
        assert_eq!(elsewhere.status(), 404, "one route only");
        let ok = http
            .get(format!("{redirect}?code=good&state={state}"))
            .send()
            .await
            .expect("send");
        assert_eq!(ok.status(), 200);
        assert_eq!(waiting.await.expect("join").expect("code"), "good");
        let replay = http
            .get(format!("{redirect}?code=good&state={state}"))
            .send()
            .await;
        assert!(
            replay.is_err(),
            "the state is single use: the listener is gone"
        );
    }

    #[tokio::test]
    async fn nobody_answering_times_out() {
        let lb = Loopback::bind(None).await.expect("bind");
        let guard = Guard::new(super::super::guard::system_resolver(), false, true);
        let redirect = lb.redirect_uri.clone();
        let a =
            authorize(&server(), &registration(), "r", None, &redirect, &guard).expect("authorize");
        let r = wait_for_code(lb, &a, Duration::from_millis(200)).await;
        assert!(matches!(r, Err(OAuthError::TimedOut(_))), "{r:?}");
    }

    #[test]
    fn the_authorization_request_carries_pkce_state_and_resource() {
        let m = server();
        let guard = Guard::new(super::super::guard::system_resolver(), false, true);
        let a = authorize(
            &m,
            &registration(),
            "https://mcp.example.com/mcp",
            Some("a b"),
            "http://127.0.0.1:5/callback",
            &guard,
        )
        .expect("authorize");
        let u = Url::parse(&a.url).expect("url");
        let q: HashMap<_, _> = u.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "c");
        assert_eq!(q["redirect_uri"], "http://127.0.0.1:5/callback");
        assert_eq!(q["code_challenge_method"], "S256");
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        assert_eq!(
            q["code_challenge"],
            b64.encode(Sha256::digest(a.verifier.secret().as_bytes()))
        );
        assert_eq!(q["resource"], "https://mcp.example.com/mcp");
        assert_eq!(q["scope"], "a b");
        assert_eq!(q["state"].len(), 32, "192 bits of state");
        assert_eq!(&q["state"], a.state.secret());
        let mut plain = m.clone();
        plain.code_challenge_methods_supported = Some(vec!["plain".into()]);
        assert!(
            authorize(&plain, &registration(), "r", None, "x", &guard).is_err(),
            "no S256, no sign-in"
        );
        plain.code_challenge_methods_supported = None;
        assert!(authorize(&plain, &registration(), "r", None, "x", &guard).is_err());
    }
}
