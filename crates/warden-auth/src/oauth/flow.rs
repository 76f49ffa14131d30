//! Signing in: client registration, the authorization request with PKCE
//! S256 and a single-use `state`, the loopback redirect on 127.0.0.1, the
//! `iss` check, the code exchange, refresh and revocation.

use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

use super::discovery::AuthServer;
use super::guard::Guard;
use super::{ClientRegistration, OAuthError, Result, TokenSet};
use crate::Sensitive;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

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

fn net(what: &str) -> impl Fn(reqwest::Error) -> OAuthError + '_ {
    move |e| OAuthError::Network(format!("could not reach the {what}: {e}"))
}

/// Obtains a client registration in the specification's order: one an
/// admin entered, a client ID metadata document (when Warden has one at an
/// https URL and the server supports them), dynamic registration, else the
/// person is asked for a client ID.
pub async fn register(
    http: &reqwest::Client,
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
    let url = guard.check(endpoint, "registration endpoint")?;
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
    let r = http
        .post(url)
        .json(&body)
        .send()
        .await
        .map_err(net("registration endpoint"))?;
    let status = r.status();
    let text = r.text().await.map_err(net("registration endpoint"))?;
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
    state: Sensitive<String>,
    verifier: Sensitive<String>,
    pub redirect_uri: String,
    pub issuer: String,
    iss_supported: bool,
    pub resource: String,
    pub token_endpoint: String,
    pub client: ClientRegistration,
}

fn random(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
    B64.encode(b)
}

/// Builds the authorization request: PKCE S256, a fresh `state`, the
/// `resource`, the scopes.
pub fn authorize(
    m: &AuthServer,
    client: &ClientRegistration,
    resource: &str,
    scopes: Option<&str>,
    redirect_uri: &str,
    guard: &Guard,
) -> Result<Authorization> {
    super::discovery::check_pkce(m)?;
    let mut url = guard.check(&m.authorization_endpoint, "authorization endpoint")?;
    let verifier = random(32);
    let challenge = B64.encode(Sha256::digest(verifier.as_bytes()));
    let state = random(24);
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", &state)
            .append_pair("resource", resource);
        if let Some(s) = scopes {
            q.append_pair("scope", s);
        }
    }
    Ok(Authorization {
        url: url.to_string(),
        state: Sensitive::new(state),
        verifier: Sensitive::new(verifier),
        redirect_uri: redirect_uri.to_string(),
        issuer: m.issuer.clone(),
        iss_supported: m.authorization_response_iss_parameter_supported,
        resource: resource.to_string(),
        token_endpoint: m.token_endpoint.clone(),
        client: client.clone(),
    })
}

/// The authorization request of an OpenID sign-in: PKCE S256, `state`,
/// `nonce`, and any extra parameters (`max_age`, `acr_values`, `prompt`).
#[allow(clippy::too_many_arguments)]
pub fn authorize_oidc(
    m: &crate::oidc::ProviderMetadata,
    client: &ClientRegistration,
    redirect_uri: &str,
    scopes: &str,
    nonce: &str,
    extra: &[(&str, String)],
    guard: &Guard,
) -> Result<Authorization> {
    let mut url = guard.check(&m.authorization_endpoint, "authorization endpoint")?;
    let verifier = random(32);
    let challenge = B64.encode(Sha256::digest(verifier.as_bytes()));
    let state = random(24);
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", scopes)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", &state)
            .append_pair("nonce", nonce);
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    Ok(Authorization {
        url: url.to_string(),
        state: Sensitive::new(state),
        verifier: Sensitive::new(verifier),
        redirect_uri: redirect_uri.to_string(),
        issuer: m.issuer.clone(),
        iss_supported: m.authorization_response_iss_parameter_supported,
        resource: String::new(),
        token_endpoint: m.token_endpoint.clone(),
        client: client.clone(),
    })
}

/// A fresh random value (nonce) for a sign-in.
pub fn nonce() -> String {
    random(24)
}

fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

const PAGE_OK: &str = "<!doctype html><meta charset=utf-8><title>Warden</title><p>Signed in. You can close this window and go back to Warden.</p>";
const PAGE_BAD: &str = "<!doctype html><meta charset=utf-8><title>Warden</title><p>This sign-in link is not the one Warden started, so it was ignored. Start the sign-in again from Warden.</p>";

async fn respond(stream: &mut tokio::net::TcpStream, status: &str, body: &str) {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// What the browser brought back, checked against the request.
fn check_callback(a: &Authorization, query: &str) -> std::result::Result<Result<String>, ()> {
    let params: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
    // Anything without this sign-in's state is not an answer to it.
    match params.get("state") {
        Some(s) if constant_eq(s, a.state.expose()) => {}
        _ => return Err(()),
    }
    match params.get("iss") {
        Some(iss) if iss != &a.issuer => {
            return Ok(Err(OAuthError::Refused(format!(
                "the sign-in answer came from {iss:?}, not the authorization server Warden asked ({}); it was refused",
                a.issuer
            ))));
        }
        None if a.iss_supported => {
            return Ok(Err(OAuthError::Refused(
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
        return Ok(Err(OAuthError::Denied(format!(
            "the sign-in was not completed: {why}"
        ))));
    }
    match params.get("code") {
        Some(c) if !c.is_empty() => Ok(Ok(c.clone())),
        _ => Ok(Err(OAuthError::Refused(
            "the sign-in answer carried no authorization code".into(),
        ))),
    }
}

/// Waits for the browser to come back to the loopback listener with this
/// sign-in's answer. The state is single use: the listener closes after it.
pub async fn wait_for_code(
    loopback: Loopback,
    a: &Authorization,
    timeout: Duration,
) -> Result<String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let accepted = tokio::time::timeout_at(deadline, loopback.listener.accept())
            .await
            .map_err(|_| OAuthError::TimedOut(timeout.as_secs()))?;
        let Ok((mut stream, peer)) = accepted else {
            continue;
        };
        if !peer.ip().is_loopback() {
            continue;
        }
        let mut buf = vec![0u8; 8192];
        let mut len = 0;
        let read = tokio::time::timeout(Duration::from_secs(5), async {
            while len < buf.len() {
                let n = stream.read(&mut buf[len..]).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                len += n;
                if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        })
        .await;
        if read.is_err() {
            continue;
        }
        let head = String::from_utf8_lossy(&buf[..len]);
        let target = head
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("GET "))
            .and_then(|l| l.split(' ').next())
            .unwrap_or("");
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if path != "/callback" {
            respond(&mut stream, "404 Not Found", "").await;
            continue;
        }
        match check_callback(a, query) {
            Err(()) => {
                respond(&mut stream, "400 Bad Request", PAGE_BAD).await;
            }
            Ok(Ok(code)) => {
                respond(&mut stream, "200 OK", PAGE_OK).await;
                return Ok(code);
            }
            Ok(Err(e)) => {
                let page = format!(
                    "<!doctype html><meta charset=utf-8><title>Warden</title><p>The sign-in failed: {}</p>",
                    html_escape(&e.to_string())
                );
                respond(&mut stream, "400 Bad Request", &page).await;
                return Err(e);
            }
        }
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    expires_in: Option<i64>,
    refresh_token: Option<String>,
    scope: Option<String>,
    id_token: Option<String>,
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The client's authentication at the token and revocation endpoints:
/// HTTP Basic, the secret in the form, or just the client ID (public client).
fn authenticate(
    req: reqwest::RequestBuilder,
    client: &ClientRegistration,
    form: &mut Vec<(&str, String)>,
) -> reqwest::RequestBuilder {
    match (client.auth_method.as_str(), &client.client_secret) {
        ("client_secret_basic", Some(secret)) => {
            let pair = format!(
                "{}:{}",
                form_encode(&client.client_id),
                form_encode(secret.expose())
            );
            let basic = base64::engine::general_purpose::STANDARD.encode(pair);
            return req.header("authorization", format!("Basic {basic}"));
        }
        ("client_secret_post", Some(secret)) => {
            form.push(("client_id", client.client_id.clone()));
            form.push(("client_secret", secret.expose().clone()));
        }
        _ => form.push(("client_id", client.client_id.clone())),
    }
    req
}

async fn token_request(
    http: &reqwest::Client,
    guard: &Guard,
    token_endpoint: &str,
    client: &ClientRegistration,
    mut form: Vec<(&str, String)>,
) -> Result<TokenResponse> {
    let url = guard.check(token_endpoint, "token endpoint")?;
    let req = http.post(url).header("accept", "application/json");
    let req = authenticate(req, client, &mut form);
    let r = req
        .form(&form)
        .send()
        .await
        .map_err(net("token endpoint"))?;
    let status = r.status();
    let text = r.text().await.map_err(net("token endpoint"))?;
    if !status.is_success() {
        #[derive(Deserialize)]
        struct TokenError {
            error: String,
            error_description: Option<String>,
        }
        let why = serde_json::from_str::<TokenError>(&text)
            .map(|e| e.error_description.unwrap_or(e.error))
            .unwrap_or_else(|_| format!("HTTP {status}"));
        return Err(OAuthError::Denied(format!(
            "the authorization server refused to issue a token: {why}"
        )));
    }
    let t: TokenResponse = serde_json::from_str(&text)
        .map_err(|_| OAuthError::Refused("the token answer is not valid JSON".into()))?;
    if !t.token_type.eq_ignore_ascii_case("bearer") {
        return Err(OAuthError::Refused(format!(
            "the authorization server issued a {:?} token; Warden uses bearer tokens only",
            t.token_type
        )));
    }
    Ok(t)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Exchanges the authorization code for tokens.
pub async fn exchange(
    http: &reqwest::Client,
    guard: &Guard,
    a: &Authorization,
    code: &str,
) -> Result<TokenSet> {
    let t = token_request(
        http,
        guard,
        &a.token_endpoint,
        &a.client,
        vec![
            ("grant_type", "authorization_code".into()),
            ("code", code.to_string()),
            ("redirect_uri", a.redirect_uri.clone()),
            ("code_verifier", a.verifier.expose().clone()),
        ]
        .into_iter()
        .chain((!a.resource.is_empty()).then(|| ("resource", a.resource.clone())))
        .collect(),
    )
    .await?;
    Ok(TokenSet {
        access_token: Sensitive::new(t.access_token),
        refresh_token: t.refresh_token.map(Sensitive::new),
        expires_at: t.expires_in.map(|s| now() + s),
        scope: t.scope,
        resource: a.resource.clone(),
        issuer: a.issuer.clone(),
        id_token: t.id_token,
    })
}

/// Refreshes an access token; a rotated refresh token replaces the old one.
pub async fn refresh(
    http: &reqwest::Client,
    guard: &Guard,
    token_endpoint: &str,
    client: &ClientRegistration,
    tokens: &TokenSet,
) -> Result<TokenSet> {
    let Some(rt) = &tokens.refresh_token else {
        return Err(OAuthError::Denied(
            "the server gave no refresh token, so the sign-in cannot be renewed without you".into(),
        ));
    };
    let t = token_request(
        http,
        guard,
        token_endpoint,
        client,
        vec![
            ("grant_type", "refresh_token".into()),
            ("refresh_token", rt.expose().clone()),
        ]
        .into_iter()
        .chain((!tokens.resource.is_empty()).then(|| ("resource", tokens.resource.clone())))
        .collect(),
    )
    .await?;
    Ok(TokenSet {
        access_token: Sensitive::new(t.access_token),
        refresh_token: t
            .refresh_token
            .map(Sensitive::new)
            .or_else(|| tokens.refresh_token.clone()),
        expires_at: t.expires_in.map(|s| now() + s),
        scope: t.scope.or_else(|| tokens.scope.clone()),
        resource: tokens.resource.clone(),
        issuer: tokens.issuer.clone(),
        id_token: t.id_token,
    })
}

/// Revokes a token at the server (RFC 7009).
pub async fn revoke(
    http: &reqwest::Client,
    guard: &Guard,
    endpoint: &str,
    client: &ClientRegistration,
    token: &str,
    hint: &str,
) -> Result<()> {
    let url = guard.check(endpoint, "revocation endpoint")?;
    let mut form = vec![
        ("token", token.to_string()),
        ("token_type_hint", hint.to_string()),
    ];
    let req = http.post(url);
    let req = authenticate(req, client, &mut form);
    let r = req
        .form(&form)
        .send()
        .await
        .map_err(net("revocation endpoint"))?;
    if !r.status().is_success() {
        return Err(OAuthError::Denied(format!(
            "the server did not revoke the token (HTTP {})",
            r.status()
        )));
    }
    Ok(())
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
    use super::*;

    fn auth(iss_supported: bool) -> Authorization {
        Authorization {
            url: String::new(),
            state: Sensitive::new("s123".into()),
            verifier: Sensitive::new("v".into()),
            redirect_uri: "http://127.0.0.1:1/callback".into(),
            issuer: "https://as.example.com".into(),
            iss_supported,
            resource: "https://mcp.example.com/mcp".into(),
            token_endpoint: "https://as.example.com/token".into(),
            client: ClientRegistration {
                client_id: "c".into(),
                client_secret: None,
                auth_method: "none".into(),
                kind: "dynamic".into(),
                redirect_uri: None,
            },
        }
    }

    #[test]
    fn callbacks_are_checked_for_state_and_iss() {
        let a = auth(true);
        assert!(
            check_callback(&a, "code=x&state=wrong").is_err(),
            "another state is ignored"
        );
        assert!(check_callback(&a, "code=x").is_err());
        let ok = check_callback(&a, "code=abc&state=s123&iss=https%3A%2F%2Fas.example.com");
        assert!(matches!(ok, Ok(Ok(c)) if c == "abc"));
        let wrong = check_callback(&a, "code=abc&state=s123&iss=https%3A%2F%2Fevil.example.com");
        assert!(matches!(wrong, Ok(Err(OAuthError::Refused(_)))));
        let missing = check_callback(&a, "code=abc&state=s123");
        assert!(
            matches!(missing, Ok(Err(OAuthError::Refused(_)))),
            "promised iss missing"
        );
        let not_promised = check_callback(&auth(false), "code=abc&state=s123");
        assert!(matches!(not_promised, Ok(Ok(_))));
        let denied = check_callback(
            &a,
            "error=access_denied&state=s123&iss=https%3A%2F%2Fas.example.com",
        );
        assert!(matches!(denied, Ok(Err(OAuthError::Denied(_)))));
    }

    #[tokio::test]
    async fn the_loopback_takes_one_answer_with_its_state_then_closes() {
        let lb = Loopback::bind(None).await.expect("bind");
        let redirect = lb.redirect_uri.clone();
        let a = auth(false);
        let waiting =
            tokio::spawn(async move { wait_for_code(lb, &a, Duration::from_secs(10)).await });
        let http = reqwest::Client::new();
        let forged = http
            .get(format!("{redirect}?code=evil&state=guess"))
            .send()
            .await
            .expect("send");
        assert_eq!(forged.status(), 400, "another state is turned away");
        let ok = http
            .get(format!("{redirect}?code=good&state=s123"))
            .send()
            .await
            .expect("send");
        assert_eq!(ok.status(), 200);
        assert_eq!(waiting.await.expect("join").expect("code"), "good");
        let replay = http
            .get(format!("{redirect}?code=good&state=s123"))
            .send()
            .await;
        assert!(
            replay.is_err(),
            "the state is single use: the listener is gone"
        );
    }

    #[test]
    fn the_authorization_request_carries_pkce_state_and_resource() {
        let m = AuthServer {
            issuer: "https://as.example.com".into(),
            authorization_endpoint: "http://127.0.0.1:9/authorize".into(),
            token_endpoint: "http://127.0.0.1:9/token".into(),
            registration_endpoint: None,
            revocation_endpoint: None,
            scopes_supported: None,
            code_challenge_methods_supported: Some(vec!["S256".into()]),
            token_endpoint_auth_methods_supported: None,
            authorization_response_iss_parameter_supported: false,
            client_id_metadata_document_supported: false,
        };
        let guard = Guard::new(super::super::guard::system_resolver(), false);
        let a = authorize(
            &m,
            &auth(false).client,
            "https://mcp.example.com/mcp",
            Some("a b"),
            "http://127.0.0.1:5/callback",
            &guard,
        )
        .expect("authorize");
        let u = Url::parse(&a.url).expect("url");
        let q: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(
            q["code_challenge"],
            B64.encode(Sha256::digest(a.verifier.expose().as_bytes()))
        );
        assert_eq!(q["resource"], "https://mcp.example.com/mcp");
        assert_eq!(q["scope"], "a b");
        assert_eq!(q["state"].len(), 32);
        let mut plain = m.clone();
        plain.code_challenge_methods_supported = Some(vec!["plain".into()]);
        assert!(
            authorize(&plain, &auth(false).client, "r", None, "x", &guard).is_err(),
            "no S256, no sign-in"
        );
        plain.code_challenge_methods_supported = None;
        assert!(authorize(&plain, &auth(false).client, "r", None, "x", &guard).is_err());
    }
}
