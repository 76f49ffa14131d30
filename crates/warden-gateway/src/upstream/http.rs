//! Remote servers over Streamable HTTP, both eras: every message is a POST;
//! the answer is one JSON message or an SSE stream scoped to the request. A
//! legacy session carries `Mcp-Session-Id` and may open a GET stream for
//! messages the server sends unasked; that stream resumes with
//! `Last-Event-ID` when it drops.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use parking_lot::RwLock;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tokio_util::sync::CancellationToken;

use super::PeerError;
use super::mux::Mux;
use crate::jsonrpc::Envelope;
use crate::sse;

const MAX_EVENT: usize = 64 * 1024 * 1024;

pub struct HttpLink {
    client: reqwest::Client,
    url: url::Url,
    headers: HeaderMap,
    session: RwLock<Option<HeaderValue>>,
    version: RwLock<Option<HeaderValue>>,
    mux: Arc<Mux>,
    /// Cancelled when the session is gone (404 on a session, stream errors).
    pub closed: CancellationToken,
    /// Sign-in tokens for this server, if a person signed in to it.
    auth: Option<Arc<dyn super::TokenSource>>,
    server: String,
}

/// What one message is, for the routing headers of the modern era.
pub struct Route<'a> {
    pub id: Option<u64>,
    pub method: &'a str,
    pub name: Option<&'a str>,
}

impl HttpLink {
    pub fn new(url: url::Url, headers: HeaderMap, mux: Arc<Mux>) -> Result<HttpLink, PeerError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| PeerError::Start(format!("could not build the HTTP client: {e}")))?;
        Ok(HttpLink {
            client,
            url,
            headers,
            session: RwLock::new(None),
            version: RwLock::new(None),
            mux,
            closed: CancellationToken::new(),
            auth: None,
            server: String::new(),
        })
    }

    pub fn with_auth(
        mut self,
        server: &str,
        auth: Option<Arc<dyn super::TokenSource>>,
    ) -> HttpLink {
        self.server = server.to_string();
        self.auth = auth;
        self
    }

    /// Adds the server's sign-in token (refreshed first when `refresh`).
    async fn authorize(
        &self,
        req: reqwest::RequestBuilder,
        refresh: bool,
    ) -> Result<(reqwest::RequestBuilder, bool), PeerError> {
        let Some(auth) = &self.auth else {
            return Ok((req, false));
        };
        match auth.bearer(&self.server, &self.url, refresh).await {
            Ok(Some(token)) => Ok((req.bearer_auth(token), true)),
            Ok(None) => Ok((req, false)),
            Err(why) => Err(PeerError::Http {
                status: 401,
                detail: format!(": {why}"),
            }),
        }
    }

    pub fn set_version(&self, version: &str) {
        *self.version.write() = HeaderValue::from_str(version).ok();
    }

    pub fn clear_version(&self) {
        *self.version.write() = None;
    }

    pub fn has_session(&self) -> bool {
        self.session.read().is_some()
    }

    fn request(&self, method: reqwest::Method) -> reqwest::RequestBuilder {
        let mut req = self
            .client
            .request(method, self.url.clone())
            .headers(self.headers.clone());
        if let Some(s) = self.session.read().clone() {
            req = req.header("mcp-session-id", s);
        }
        if let Some(v) = self.version.read().clone() {
            req = req.header("mcp-protocol-version", v);
        }
        req
    }

    /// Sends one message. For a request, its answer (and anything the server
    /// streams with it) is dispatched through the mux, possibly after this
    /// returns when the server answers with a stream.
    pub async fn send(self: &Arc<Self>, body: String, route: Route<'_>) -> Result<(), PeerError> {
        let mut req = self
            .request(reqwest::Method::POST)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .header("mcp-method", route.method);
        if let Some(name) = route.name.and_then(|n| HeaderValue::from_str(n).ok()) {
            req = req.header("mcp-name", name);
        }
        let retry = req.try_clone().map(|r| (r, body.clone()));
        let (req, signed) = self.authorize(req, false).await?;
        let mut resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| PeerError::Transport(describe(&e)))?;
        // An expired or revoked token: refresh once and try again.
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED
            && signed
            && let Some((again, body)) = retry
        {
            let (again, _) = self.authorize(again, true).await?;
            resp = again
                .body(body)
                .send()
                .await
                .map_err(|e| PeerError::Transport(describe(&e)))?;
        }
        let status = resp.status();
        if let Some(sid) = resp.headers().get("mcp-session-id")
            && self.session.read().is_none()
        {
            *self.session.write() = Some(sid.clone());
        }
        if status == reqwest::StatusCode::NOT_FOUND && self.has_session() {
            self.closed.cancel();
            return Err(PeerError::Closed("the server ended the session".into()));
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            let signed_in = if signed {
                "its sign-in was refused; sign in again"
            } else {
                "it needs you to sign in"
            };
            return Err(PeerError::Http {
                status: 401,
                detail: format!(": {signed_in}: warden server login {}", self.server),
            });
        }
        if status == reqwest::StatusCode::FORBIDDEN
            && let Some(scope) = resp
                .headers()
                .get("www-authenticate")
                .and_then(|h| h.to_str().ok())
                .and_then(warden_auth::oauth::discovery::parse_www_authenticate)
                .filter(|c| c.error.as_deref() == Some("insufficient_scope"))
                .and_then(|c| c.scope)
        {
            // More access is needed: that takes the person, in the browser.
            return Err(PeerError::Http {
                status: 403,
                detail: format!(
                    ": it needs more access than was granted ({scope}); sign in again to grant it: warden server login {} --scopes \"{scope}\"",
                    self.server
                ),
            });
        }
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(PeerError::Http {
                status: status.as_u16(),
                detail: summarize(&text),
            });
        }
        if route.id.is_none() || status == reqwest::StatusCode::ACCEPTED {
            return Ok(());
        }
        let ctype = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if ctype.starts_with("text/event-stream") {
            let link = self.clone();
            let id = route.id;
            tokio::spawn(async move {
                link.read_stream(resp, id).await;
                if let Some(id) = id {
                    // The stream ended without the answer: the caller is told.
                    link.mux.forget(id);
                }
            });
            Ok(())
        } else {
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| PeerError::Transport(describe(&e)))?;
            let env = Envelope::parse(&bytes).map_err(|e| {
                PeerError::Protocol(format!("the server answered with invalid JSON-RPC: {e}"))
            })?;
            self.mux.dispatch(env, route.id);
            Ok(())
        }
    }

    async fn read_stream(&self, resp: reqwest::Response, related: Option<u64>) -> Option<String> {
        let mut events = sse::events(resp.bytes_stream(), MAX_EVENT);
        let mut last_id = None;
        while let Some(Ok(ev)) = events.next().await {
            if ev.id.is_some() {
                last_id = ev.id.clone();
            }
            if ev.data.trim().is_empty() {
                continue;
            }
            if let Ok(env) = Envelope::parse(ev.data.as_bytes()) {
                self.mux.dispatch(env, related);
            }
        }
        last_id
    }

    /// Holds the legacy GET stream open for as long as the session lives,
    /// resuming with Last-Event-ID. A server without one answers 405.
    pub async fn listen(self: Arc<Self>) {
        let mut last_id: Option<String> = None;
        let mut failures = 0u32;
        while !self.closed.is_cancelled() && failures < 5 {
            let mut req = self
                .request(reqwest::Method::GET)
                .header(ACCEPT, "text/event-stream");
            if let Some(id) = &last_id {
                req = req.header("last-event-id", id.as_str());
            }
            let Ok((req, _)) = self.authorize(req, false).await else {
                return;
            };
            let resp = tokio::select! {
                r = req.send() => r,
                _ = self.closed.cancelled() => return,
            };
            match resp {
                Ok(r) if r.status().is_success() => {
                    failures = 0;
                    let got = tokio::select! {
                        id = self.read_stream(r, None) => id,
                        _ = self.closed.cancelled() => return,
                    };
                    if got.is_some() {
                        last_id = got;
                    }
                }
                Ok(r) if r.status() == reqwest::StatusCode::METHOD_NOT_ALLOWED => return,
                Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => {
                    self.closed.cancel();
                    return;
                }
                _ => failures += 1,
            }
            tokio::time::sleep(Duration::from_millis(500 * u64::from(failures + 1))).await;
        }
    }

    /// Ends a legacy session politely (DELETE), best effort.
    pub async fn end_session(&self) {
        if self.has_session() {
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                self.request(reqwest::Method::DELETE).send(),
            )
            .await;
        }
        self.closed.cancel();
    }
}

pub fn header_map(pairs: &[(String, String)]) -> Result<HeaderMap, PeerError> {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| PeerError::Start(format!("{k:?} is not a valid header name")))?;
        let mut value = HeaderValue::from_str(v)
            .map_err(|_| PeerError::Start(format!("the value of header {k} is not valid")))?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Ok(map)
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "could not connect to the server; check the URL and that the server is running".into()
    } else if e.is_timeout() {
        "the server did not answer in time".into()
    } else {
        // reqwest errors name the URL (which may carry a key in its query),
        // never headers: the URL is left out.
        let mut text = e.to_string();
        if let Some(u) = e.url() {
            text = text.replace(u.as_str(), "the server's URL");
        }
        format!("the request failed: {text}")
    }
}

fn summarize(body: &str) -> String {
    let t: String = body.chars().take(200).collect();
    let t = t.replace(['\n', '\r'], " ");
    if t.trim().is_empty() {
        t
    } else {
        format!(": {t}")
    }
}
