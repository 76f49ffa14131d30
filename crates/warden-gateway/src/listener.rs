//! The downstream endpoint: Streamable HTTP on loopback, both protocol eras.
//!
//! Every request passes, in order: the Host and Origin check (DNS
//! rebinding: anything but this machine's own names gets 403), the bearer
//! credential (401, no detail), the body limit (413), JSON-RPC framing (400
//! with -32700 or -32600), and then the gateway.

// Handlers return `Result<_, Response>`: the error is the HTTP answer itself.
#![allow(clippy::result_large_err)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::outbox::{Inbox, outbox};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use futures::StreamExt;

use crate::gateway::{Answer, Caller, Gateway};
use crate::jsonrpc::{self, Envelope};
use crate::upstream;

#[derive(Clone)]
struct Ctx {
    gw: Gateway,
    port: u16,
    max_body: usize,
}

/// Serves until the gateway's shutdown token is cancelled.
pub async fn serve(gw: Gateway, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    let max_body = gw.config().gateway.max_body_bytes;
    let ctx = Ctx {
        gw: gw.clone(),
        port: addr.port(),
        max_body,
    };
    let app = Router::new()
        .route("/mcp", post(post_all).get(get_all).delete(delete_all))
        .route("/token", post(token_exchange))
        .route(
            "/servers/{name}/mcp",
            post(post_one).get(get_one).delete(delete_one),
        )
        .with_state(ctx);
    serve_connections(listener, app, gw.shutdown_token()).await;
    Ok(())
}

/// How long a client may take to send a request's headers; a connection
/// that trickles them (slowloris) or sits idle between requests longer is
/// closed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections held at once; more wait in the kernel's accept queue.
const MAX_CONNECTIONS: usize = 8192;

/// The accept loop: every connection with a header-read timeout, at most
/// MAX_CONNECTIONS at once, all of them told to finish when Warden stops.
async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: Router,
    stop: tokio_util::sync::CancellationToken,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, for one: wait, then go on.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .keep_alive(true);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(3), conn).await;
                }
            }
            drop(permit);
        });
    }
}

async fn post_all(State(ctx): State<Ctx>, req: Request) -> Response {
    on_post(ctx, None, req).await
}
async fn post_one(State(ctx): State<Ctx>, Path(name): Path<String>, req: Request) -> Response {
    on_post(ctx, Some(name), req).await
}
async fn get_all(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    on_get(ctx, None, headers)
}
async fn get_one(State(ctx): State<Ctx>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    on_get(ctx, Some(name), headers)
}
async fn delete_all(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    on_delete(ctx, None, headers)
}
async fn delete_one(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    on_delete(ctx, Some(name), headers)
}

/// RFC 8693 token exchange: an agent gets a short-lived credential to act for
/// another (see `Gateway::exchange`). Errors follow RFC 6749 section 5.2.
async fn token_exchange(State(ctx): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    if !local_origin(&ctx, &headers) {
        return plain(
            StatusCode::FORBIDDEN,
            "forbidden: this endpoint only answers requests addressed to this machine",
        );
    }
    let oauth_error = |error: &str, description: &str| {
        let body = serde_json::json!({"error": error, "error_description": description});
        (
            StatusCode::BAD_REQUEST,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body.to_string(),
        )
            .into_response()
    };
    if body.len() > 16 * 1024 {
        return oauth_error("invalid_request", "the request is too large");
    }
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&body).into_owned().collect();
    const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:token-exchange")
    {
        return oauth_error(
            "unsupported_grant_type",
            "only token exchange (RFC 8693) is supported here",
        );
    }
    let (Some(subject), Some(actor)) = (form.get("subject_token"), form.get("actor_token")) else {
        return oauth_error(
            "invalid_request",
            "subject_token and actor_token are required",
        );
    };
    for k in ["subject_token_type", "actor_token_type"] {
        if form.get(k).map(String::as_str) != Some(ACCESS) {
            return oauth_error("invalid_request", &format!("{k} must be {ACCESS}"));
        }
    }
    match ctx.gw.exchange(subject, actor).await {
        Ok((token, expires_in)) => {
            let body = serde_json::json!({
                "access_token": token.expose(),
                "issued_token_type": ACCESS,
                "token_type": "Bearer",
                "expires_in": expires_in,
            });
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                body.to_string(),
            )
                .into_response()
        }
        Err(crate::gateway::ExchangeError::InvalidRequest(m)) => oauth_error("invalid_request", &m),
        Err(crate::gateway::ExchangeError::Unavailable(m)) => {
            let body =
                serde_json::json!({"error": "temporarily_unavailable", "error_description": m});
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                body.to_string(),
            )
                .into_response()
        }
    }
}

/// Whether the body is declared as JSON (`application/json`, or a
/// `+json` type), parameters such as `charset` aside.
fn json_content(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|t| t.ends_with("+json"))
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Accepts only this machine's names for the port we listen on.
fn local_origin(ctx: &Ctx, headers: &HeaderMap) -> bool {
    let port = ctx.port;
    let allowed_host = |h: &str| {
        let h = h.to_ascii_lowercase();
        [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
        ]
        .contains(&h)
    };
    let host_ok = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(allowed_host);
    let origin_ok = match headers.get(header::ORIGIN) {
        None => true,
        Some(o) => o.to_str().ok().is_some_and(|o| {
            let o = o.to_ascii_lowercase();
            o.strip_prefix("http://").is_some_and(allowed_host)
        }),
    };
    host_ok && origin_ok
}

fn authenticate(ctx: &Ctx, headers: &HeaderMap) -> Result<crate::gateway::AgentRef, Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match token.and_then(|t| ctx.gw.authenticate(t)) {
        Some(agent) => Ok(agent),
        None => Err((
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"warden\"")],
            "unauthorized",
        )
            .into_response()),
    }
}

fn guard(
    ctx: &Ctx,
    scope: Option<&str>,
    headers: &HeaderMap,
) -> Result<crate::gateway::AgentRef, Response> {
    if !local_origin(ctx, headers) {
        return Err(plain(
            StatusCode::FORBIDDEN,
            "forbidden: this endpoint only answers requests addressed to this machine",
        ));
    }
    let agent = authenticate(ctx, headers)?;
    if let Some(s) = scope
        && !ctx.gw.has_server(s)
    {
        return Err(plain(StatusCode::NOT_FOUND, "no such server"));
    }
    Ok(agent)
}

/// UnsupportedProtocolVersionError (2026-07-28).
const UNSUPPORTED_VERSION: i64 = -32022;

async fn on_post(ctx: Ctx, scope: Option<String>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let agent = match guard(&ctx, scope.as_deref(), &headers) {
        Ok(a) => a,
        Err(r) => return r,
    };
    // The transport carries JSON. A page in a browser can send text/plain,
    // form or multipart bodies to any address without asking first; none of
    // those is served, whatever they contain.
    if !json_content(&headers) {
        return json(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            jsonrpc::error(
                None,
                jsonrpc::INVALID_REQUEST,
                "send MCP messages with Content-Type: application/json",
            ),
        );
    }
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        && len > ctx.max_body
    {
        return too_large(&ctx);
    }
    let bytes: Bytes = match axum::body::to_bytes(body, ctx.max_body).await {
        Ok(b) => b,
        Err(_) => return too_large(&ctx),
    };
    // Anything else wrong is said below, by the parse that reads it.
    if let Err(problem) = jsonrpc::check_unique_keys(&bytes)
        && let Some((code, message)) = problem.error()
    {
        return json(
            StatusCode::BAD_REQUEST,
            jsonrpc::error(None, code, &message),
        );
    }
    let env = match Envelope::parse(&bytes) {
        Ok(e) => e,
        Err(e) if e.starts_with("batches") => {
            return json(
                StatusCode::BAD_REQUEST,
                jsonrpc::error(
                    None,
                    jsonrpc::INVALID_REQUEST,
                    "JSON-RPC batches are not supported; send one message per request",
                ),
            );
        }
        Err(e) if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok() => {
            return json(
                StatusCode::BAD_REQUEST,
                jsonrpc::error(
                    None,
                    jsonrpc::INVALID_REQUEST,
                    &format!("invalid request: {e}"),
                ),
            );
        }
        Err(_) => {
            return json(
                StatusCode::BAD_REQUEST,
                jsonrpc::error(
                    None,
                    jsonrpc::PARSE_ERROR,
                    "parse error: the body is not valid JSON",
                ),
            );
        }
    };

    // Era: a request that names its version in _meta (or a header that is not
    // a legacy revision) is modern; everything else belongs to a session.
    let meta_version = env
        .params_map()
        .ok()
        .and_then(|p| p.meta().str("io.modelcontextprotocol/protocolVersion"));
    let header_version = headers
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let modern_version = meta_version.or_else(|| {
        header_version
            .clone()
            .filter(|v| !upstream::LEGACY_VERSIONS.contains(&v.as_str()))
    });
    let session_id = headers.get("mcp-session-id").and_then(|v| v.to_str().ok());
    let session = match session_id {
        Some(sid) => match ctx.gw.session(sid) {
            Some(s) if s.agent.id == agent.id && s.scope == scope => Some(s),
            _ => {
                return plain(
                    StatusCode::NOT_FOUND,
                    "session not found; initialize a new session",
                );
            }
        },
        None => None,
    };
    let modern = session.is_none() && modern_version.is_some();
    if modern && let Err(r) = check_modern(&env, &headers, header_version.as_deref()) {
        return r;
    }
    let caller = Caller {
        agent,
        modern,
        session,
        scope,
    };
    match ctx.gw.handle(caller, env).await {
        Answer::Message(m) => json(StatusCode::OK, m),
        Answer::NotFound(m) => json(StatusCode::NOT_FOUND, m),
        Answer::BadRequest(m) => json(StatusCode::BAD_REQUEST, m),
        Answer::Accepted => StatusCode::ACCEPTED.into_response(),
        Answer::Session(s, m) => {
            let mut r = json(StatusCode::OK, m);
            if let Ok(v) = HeaderValue::from_str(&s.id) {
                r.headers_mut().insert("mcp-session-id", v);
            }
            r
        }
        Answer::Stream(rx) => sse(rx),
    }
}

/// HeaderMismatchError (2026-07-28).
const HEADER_MISMATCH: i64 = -32020;

/// The 2026-07-28 rules for a stateless request: `_meta` carries the version
/// and the client's capabilities, the version is one Warden speaks, and the
/// routing headers (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`) agree
/// with the body, so that anything routing on headers sees the truth.
fn check_modern(
    env: &Envelope,
    headers: &HeaderMap,
    header_version: Option<&str>,
) -> Result<(), Response> {
    let id = env.id.as_deref();
    let bad = |code: i64, message: String| {
        Err(json(
            StatusCode::BAD_REQUEST,
            jsonrpc::error(id, code, &message),
        ))
    };
    let params = env.params_map().unwrap_or_default();
    let meta = params.meta();
    let is_request = env.id.is_some() && env.method.is_some();
    let meta_version = meta.str("io.modelcontextprotocol/protocolVersion");
    if let (Some(h), Some(m)) = (header_version, meta_version.as_deref())
        && h != m
    {
        return bad(
            HEADER_MISMATCH,
            format!("the MCP-Protocol-Version header ({h}) does not match _meta ({m})"),
        );
    }
    if is_request {
        if meta_version.is_none() {
            return bad(
                jsonrpc::INVALID_PARAMS,
                "invalid params: _meta must carry io.modelcontextprotocol/protocolVersion".into(),
            );
        }
        if !meta
            .0
            .contains_key("io.modelcontextprotocol/clientCapabilities")
        {
            return bad(
                jsonrpc::INVALID_PARAMS,
                "invalid params: _meta must carry io.modelcontextprotocol/clientCapabilities"
                    .into(),
            );
        }
    }
    let version = meta_version
        .as_deref()
        .or(header_version)
        .unwrap_or_default();
    if version != upstream::MODERN_VERSION {
        let data = serde_json::json!({
            "code": UNSUPPORTED_VERSION,
            "message": format!("unsupported protocol version {version}"),
            "data": {"supported": [upstream::MODERN_VERSION], "requested": version}
        });
        return Err(json(
            StatusCode::BAD_REQUEST,
            jsonrpc::error_response(id, &jsonrpc::to_raw(&data)),
        ));
    }
    let method = env.method.as_deref().unwrap_or_default();
    match headers
        .get("mcp-method")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    {
        Some(h) if h == method => {}
        Some(h) => {
            return bad(
                HEADER_MISMATCH,
                format!("the Mcp-Method header ({h}) does not match the body ({method})"),
            );
        }
        None if env.method.is_some() => {
            return bad(HEADER_MISMATCH, "the Mcp-Method header is required".into());
        }
        None => {}
    }
    let named = match method {
        "tools/call" | "prompts/get" => params.str("name"),
        "resources/read" => params.str("uri"),
        _ => None,
    };
    if let Some(expected) = named {
        let got = headers
            .get("mcp-name")
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        match got.map(decode_header_value) {
            Some(Ok(v)) if v == expected => {}
            Some(Ok(v)) => {
                return bad(
                    HEADER_MISMATCH,
                    format!("the Mcp-Name header ({v}) does not match the body ({expected})"),
                );
            }
            Some(Err(e)) => {
                return bad(
                    HEADER_MISMATCH,
                    format!("the Mcp-Name header is not valid: {e}"),
                );
            }
            None => {
                return bad(
                    HEADER_MISMATCH,
                    "the Mcp-Name header is required for this method".into(),
                );
            }
        }
    }
    Ok(())
}

/// A header value, literal or wrapped as `=?base64?...?=` (strict Base64).
fn decode_header_value(v: &str) -> Result<String, &'static str> {
    let Some(inner) = v
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    else {
        return Ok(v.to_string());
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(inner)
        .map_err(|_| "invalid Base64")?;
    String::from_utf8(bytes).map_err(|_| "Base64 that is not UTF-8")
}

fn too_large(ctx: &Ctx) -> Response {
    json(
        StatusCode::PAYLOAD_TOO_LARGE,
        jsonrpc::error(
            None,
            jsonrpc::INVALID_REQUEST,
            &format!(
                "the request is larger than the limit of {} bytes",
                ctx.max_body
            ),
        ),
    )
}

fn sse(inbox: Inbox) -> Response {
    let stream =
        inbox.map(|m| Ok::<_, Infallible>(Bytes::from(format!("event: message\ndata: {m}\n\n"))));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn on_get(ctx: Ctx, scope: Option<String>, headers: HeaderMap) -> Response {
    let agent = match guard(&ctx, scope.as_deref(), &headers) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(sid) = headers.get("mcp-session-id").and_then(|v| v.to_str().ok()) else {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "GET needs a session (protocol 2025-11-25 and earlier)",
        );
    };
    match ctx.gw.session(sid) {
        Some(s) if s.agent.id == agent.id && s.scope == scope => {
            let (out, inbox) = outbox();
            s.attach_stream(out);
            sse(inbox)
        }
        _ => plain(StatusCode::NOT_FOUND, "session not found"),
    }
}

fn on_delete(ctx: Ctx, scope: Option<String>, headers: HeaderMap) -> Response {
    let agent = match guard(&ctx, scope.as_deref(), &headers) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(sid) = headers.get("mcp-session-id").and_then(|v| v.to_str().ok()) else {
        return plain(StatusCode::BAD_REQUEST, "no session given");
    };
    match ctx.gw.session(sid) {
        // A session is ended on the endpoint it was opened on.
        Some(s) if s.agent.id == agent.id && s.scope == scope => {
            ctx.gw.end_session(sid);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => plain(StatusCode::NOT_FOUND, "session not found"),
    }
}
