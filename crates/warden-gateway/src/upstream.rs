//! Upstream servers: one supervised connection each, shared by every client.
//!
//! A supervisor task per server connects (spawning a child or reaching a
//! URL), detects the server's protocol era, fetches its catalog, and then
//! watches the connection. When the server dies it is marked failed with the
//! reason in plain words and restarted with exponential backoff; other servers
//! never notice. See README.md beside this file for the protocol decisions.

pub mod http;
pub mod mux;
pub mod sse_legacy;
pub mod stdio;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::ServerSpec;
use crate::gateway::Receipt;
use crate::jsonrpc::{self, Params};
use mux::{Incoming, Mux, Reply, Sink};

/// The method name a receipt for an answer to a server's request carries.
pub const RESPONSE: &str = "response";

pub const MODERN_VERSION: &str = "2026-07-28";
pub const LEGACY_VERSION: &str = "2025-11-25";
/// Legacy revisions Warden speaks, newest first.
pub const LEGACY_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPS: &str = "io.modelcontextprotocol/clientCapabilities";
const META_INFO: &str = "io.modelcontextprotocol/clientInfo";

#[derive(Debug, thiserror::Error, Clone)]
pub enum PeerError {
    #[error("{0}")]
    Start(String),
    #[error("{0}")]
    Closed(String),
    #[error("the server did not answer within {0} seconds")]
    Timeout(u64),
    #[error("the request was cancelled")]
    Cancelled,
    #[error("{0}")]
    Transport(String),
    /// `detail` is empty or starts with ": ".
    #[error("the server answered HTTP {status}{detail}")]
    Http { status: u16, detail: String },
    #[error("{0}")]
    Protocol(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(tag = "era", content = "version", rename_all = "snake_case")]
pub enum Era {
    Modern(String),
    Legacy(String),
}

enum Link {
    Stdio(stdio::StdioLink),
    Http(Arc<http::HttpLink>),
    /// The deprecated HTTP+SSE transport of 2024-11-05.
    Sse(Arc<sse_legacy::SseLink>),
}

/// Why a message may go to a server. Nothing else opens [`Peer::call`],
/// [`Peer::notify`] or [`Peer::respond`]:
/// - [`Own`]: Warden's own protocol traffic (handshake, discovery, listing,
///   cancellation, the subscription set), made only inside this module;
/// - a [`Receipt`]: proof that the row recording what an agent sends was
///   committed. Only the gateway's activity writer makes one (see
///   `gateway/record.rs`), for one message to one server.
pub enum Permit {
    Own(Own),
    Recorded(Receipt),
}

/// Warden's own traffic. The private field keeps it inside this module.
pub struct Own(());

fn own() -> Permit {
    Permit::Own(Own(()))
}

impl Permit {
    /// Refuses a receipt made for another server or another message.
    fn check(&self, server: &str, method: &str) -> Result<(), PeerError> {
        match self {
            Permit::Own(_) => Ok(()),
            Permit::Recorded(r) if r.server() == server && r.method() == method => Ok(()),
            Permit::Recorded(r) => Err(PeerError::Protocol(format!(
                "refused to send {method} to {server}: its record was made for {} to {}",
                r.method(),
                r.server()
            ))),
        }
    }
}

/// One live connection to an upstream server.
pub struct Peer {
    pub server: String,
    mux: Arc<Mux>,
    link: Link,
    pub era: Era,
    /// The server's answer to `server/discover` or `initialize`.
    pub info: serde_json::Value,
}

impl Peer {
    async fn send(
        &self,
        body: String,
        id: Option<u64>,
        method: &str,
        name: Option<&str>,
    ) -> Result<(), PeerError> {
        match &self.link {
            Link::Stdio(l) => l.send(body).await,
            Link::Http(l) => l.send(body, http::Route { id, method, name }).await,
            Link::Sse(l) => l.send(body).await,
        }
    }

    /// Sends a request and waits for its answer. Messages the server sends
    /// about this request go to `sink`. Cancelling `cancel` withdraws it.
    pub async fn call(
        &self,
        permit: Permit,
        method: &str,
        mut params: Params,
        sink: Option<Sink>,
        timeout: Duration,
        cancel: Option<&CancellationToken>,
    ) -> Result<Reply, PeerError> {
        permit.check(&self.server, method)?;
        let id = self.mux.next_id();
        let mut meta = params.meta();
        match &self.era {
            Era::Modern(v) => {
                meta.set_str(META_VERSION, v);
                if !meta.0.contains_key(META_CAPS) {
                    meta.set_raw(
                        META_CAPS,
                        jsonrpc::to_raw(&crate::handshake::client_capabilities()),
                    );
                }
                meta.set_raw(META_INFO, jsonrpc::to_raw(&crate::handshake::client_info()));
            }
            Era::Legacy(_) => {
                meta.0
                    .retain(|k, _| !k.starts_with("io.modelcontextprotocol/"));
            }
        }
        let progress = meta.0.get("progressToken").map(|t| t.get().to_string());
        if let (Some(token), Some(sink)) = (&progress, &sink) {
            self.mux.register_progress(token.clone(), sink.clone());
        }
        params.set_meta(meta);
        let name = params.str("name").or_else(|| params.str("uri"));
        let body = if params.0.is_empty() && matches!(self.era, Era::Legacy(_)) {
            jsonrpc::request(&id.to_string(), method, None)
        } else {
            jsonrpc::request(&id.to_string(), method, Some(&params.to_raw()))
        };
        let rx = self.mux.register(id, sink);
        let cleanup = |mux: &Mux| {
            mux.forget(id);
            if let Some(t) = &progress {
                mux.forget_progress(t);
            }
        };
        if let Err(e) = self.send(body, Some(id), method, name.as_deref()).await {
            cleanup(&self.mux);
            return Err(e);
        }
        let never = CancellationToken::new();
        let cancel = cancel.unwrap_or(&never);
        let outcome = tokio::select! {
            r = rx => r.map_err(|_| PeerError::Closed("the server closed the connection before answering".into())),
            _ = tokio::time::sleep(timeout) => Err(PeerError::Timeout(timeout.as_secs())),
            _ = cancel.cancelled() => Err(PeerError::Cancelled),
        };
        if let Some(t) = &progress {
            self.mux.forget_progress(t);
        }
        if matches!(outcome, Err(PeerError::Timeout(_) | PeerError::Cancelled)) {
            self.mux.forget(id);
            let reason = if cancel.is_cancelled() {
                "the client cancelled"
            } else {
                "timed out at the gateway"
            };
            let params = serde_json::json!({"requestId": id, "reason": reason});
            let _ = self
                .notify(
                    own(),
                    "notifications/cancelled",
                    Some(jsonrpc::to_raw(&params)),
                )
                .await;
        }
        outcome
    }

    pub async fn notify(
        &self,
        permit: Permit,
        method: &str,
        params: Option<Box<RawValue>>,
    ) -> Result<(), PeerError> {
        permit.check(&self.server, method)?;
        let body = jsonrpc::notification(method, params.as_deref());
        self.send(body, None, method, None).await
    }

    /// Answers a request the server sent (sampling, elicitation, roots...).
    pub async fn respond(
        &self,
        permit: Permit,
        id: &RawValue,
        reply: Reply,
    ) -> Result<(), PeerError> {
        permit.check(&self.server, RESPONSE)?;
        let body = match &reply {
            Reply::Result(r) => jsonrpc::response(id, r),
            Reply::Error(e) => jsonrpc::error_response(Some(id), e),
        };
        self.send(body, None, RESPONSE, None).await
    }

    /// Answers a server's `ping`: Warden's own traffic.
    pub async fn pong(&self, id: &RawValue) -> Result<(), PeerError> {
        self.respond(own(), id, Reply::Result(jsonrpc::raw("{}")))
            .await
    }

    pub fn capabilities(&self) -> &serde_json::Value {
        &self.info["capabilities"]
    }

    async fn shutdown(&self) {
        if let Link::Http(l) = &self.link {
            l.end_session().await;
        }
    }
}

/// Lifecycle state of one server, as `server list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    Starting,
    Ready,
    Failed {
        error: String,
    },
    Stopped,
    /// Not started: an admin must approve its command first.
    Blocked {
        reason: String,
    },
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Starting => f.write_str("starting"),
            Status::Ready => f.write_str("ready"),
            Status::Failed { error } => write!(f, "failed: {error}"),
            Status::Stopped => f.write_str("stopped"),
            Status::Blocked { reason } => write!(f, "blocked: {reason}"),
        }
    }
}

/// One listed item (tool, resource, template or prompt) in both forms.
#[derive(Debug, Clone)]
pub struct Item {
    /// The name the server gave it.
    pub original: String,
    /// The name clients of the aggregated endpoint see.
    pub exposed: String,
    /// The item as the server sent it.
    pub raw: Box<RawValue>,
    /// The same with its name namespaced.
    pub exposed_raw: Box<RawValue>,
    pub uri: Option<String>,
    pub uri_template: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub tools: Vec<Item>,
    pub resources: Vec<Item>,
    pub templates: Vec<Item>,
    pub prompts: Vec<Item>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Tools,
    Resources,
    Templates,
    Prompts,
}

impl ListKind {
    /// The list a `*/list` method asks for.
    pub fn listed_by(method: &str) -> Option<ListKind> {
        [
            ListKind::Tools,
            ListKind::Resources,
            ListKind::Templates,
            ListKind::Prompts,
        ]
        .into_iter()
        .find(|k| k.method() == method)
    }

    pub fn method(self) -> &'static str {
        match self {
            ListKind::Tools => "tools/list",
            ListKind::Resources => "resources/list",
            ListKind::Templates => "resources/templates/list",
            ListKind::Prompts => "prompts/list",
        }
    }
    pub fn key(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Resources => "resources",
            ListKind::Templates => "resourceTemplates",
            ListKind::Prompts => "prompts",
        }
    }
    fn capability(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Resources | ListKind::Templates => "resources",
            ListKind::Prompts => "prompts",
        }
    }
    pub fn list_changed(self) -> &'static str {
        match self {
            ListKind::Tools => "notifications/tools/list_changed",
            ListKind::Resources | ListKind::Templates => "notifications/resources/list_changed",
            ListKind::Prompts => "notifications/prompts/list_changed",
        }
    }
}

/// What the gateway hears from its upstreams.
#[derive(Debug)]
pub enum Event {
    /// A server's catalog or status changed; clients may need list_changed.
    Changed {
        server: String,
        kinds: Vec<ListKind>,
    },
    /// A notification for every client of this server (logging, updates).
    Broadcast {
        server: String,
        env: jsonrpc::Envelope,
        /// Counts it as queued until it has been passed on.
        queued: Queued,
    },
    /// The server became ready, failed or stopped (for the activity log).
    Status { server: String, status: Status },
}

/// Notifications from one server waiting to be passed on to clients; more
/// than this and the newest are dropped, so a server that floods cannot make
/// Warden hold them all.
const MAX_QUEUED_BROADCASTS: usize = 4096;

/// One queued notification; the count goes down when it is dropped.
#[derive(Debug)]
pub struct Queued(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

pub struct Upstream {
    pub name: String,
    /// Notifications queued for clients, and how many were dropped.
    broadcasts: Arc<std::sync::atomic::AtomicUsize>,
    dropped: std::sync::atomic::AtomicU64,
    pub spec: ServerSpec,
    status: RwLock<Status>,
    peer: RwLock<Option<Arc<Peer>>>,
    catalog: RwLock<Arc<Catalog>>,
    stop: CancellationToken,
    pub restarts: AtomicU32,
    stopped: tokio::sync::Notify,
    events: mpsc::UnboundedSender<Event>,
    /// Resource URIs subscribed upstream, and for a modern server the
    /// `subscriptions/listen` call that carries them.
    subscribed: tokio::sync::Mutex<(
        std::collections::BTreeSet<String>,
        Option<CancellationToken>,
    )>,
}

/// Resolves `keychain:NAME` values to secrets; any other value is literal.
pub type ResolveFn = Arc<dyn Fn(&str) -> Result<String, String> + Send + Sync>;

/// Bearer tokens for servers a person signed in to (OAuth). `None` when the
/// server has no sign-in; an error says why calls to it cannot go through.
pub trait TokenSource: Send + Sync {
    fn bearer<'a>(
        &'a self,
        server: &'a str,
        url: &'a url::Url,
        refresh: bool,
    ) -> futures::future::BoxFuture<'a, Result<Option<String>, String>>;
}

/// Where a server's secrets come from: keychain values and sign-in tokens.
#[derive(Clone)]
pub struct SecretResolver {
    pub resolve: ResolveFn,
    pub tokens: Option<Arc<dyn TokenSource>>,
}

impl SecretResolver {
    pub fn new(resolve: ResolveFn) -> SecretResolver {
        SecretResolver {
            resolve,
            tokens: None,
        }
    }

    pub fn with_tokens(mut self, tokens: Arc<dyn TokenSource>) -> SecretResolver {
        self.tokens = Some(tokens);
        self
    }
}

impl Upstream {
    pub fn status(&self) -> Status {
        self.status.read().clone()
    }

    pub fn peer(&self) -> Option<Arc<Peer>> {
        self.peer.read().clone()
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().clone()
    }

    /// Starts supervising a server. The returned handle is live at once, in
    /// state `starting`.
    pub fn start(
        name: String,
        spec: ServerSpec,
        secrets: SecretResolver,
        events: mpsc::UnboundedSender<Event>,
    ) -> Arc<Upstream> {
        let up = Arc::new(Upstream {
            name,
            spec,
            status: RwLock::new(Status::Starting),
            peer: RwLock::new(None),
            catalog: RwLock::new(Arc::new(Catalog::default())),
            stop: CancellationToken::new(),
            restarts: AtomicU32::new(0),
            stopped: tokio::sync::Notify::new(),
            events: events.clone(),
            subscribed: tokio::sync::Mutex::new(Default::default()),
            broadcasts: Arc::default(),
            dropped: Default::default(),
        });
        tokio::spawn(up.clone().supervise(secrets, events));
        up
    }

    /// A server that is not started, with the reason people are shown.
    pub fn blocked(
        name: String,
        spec: ServerSpec,
        reason: String,
        events: mpsc::UnboundedSender<Event>,
    ) -> Arc<Upstream> {
        let up = Arc::new(Upstream {
            name,
            spec,
            status: RwLock::new(Status::Blocked { reason }),
            peer: RwLock::new(None),
            catalog: RwLock::new(Arc::new(Catalog::default())),
            stop: CancellationToken::new(),
            restarts: AtomicU32::new(0),
            stopped: tokio::sync::Notify::new(),
            events,
            subscribed: tokio::sync::Mutex::new(Default::default()),
            broadcasts: Arc::default(),
            dropped: Default::default(),
        });
        up.stop.cancel();
        up
    }

    /// Subscribes upstream to exactly `wanted` (see the gateway's
    /// `sync_subscriptions`).
    pub async fn subscribe_to(&self, wanted: std::collections::BTreeSet<String>) {
        let Some(peer) = self.peer() else { return };
        let mut state = self.subscribed.lock().await;
        match &peer.era {
            Era::Legacy(_) => {
                if state.0 == wanted {
                    return;
                }
                let added: Vec<String> = wanted.difference(&state.0).cloned().collect();
                let dropped: Vec<String> = state.0.difference(&wanted).cloned().collect();
                for (method, uris) in [
                    ("resources/subscribe", added),
                    ("resources/unsubscribe", dropped),
                ] {
                    for uri in uris {
                        let mut p = Params::default();
                        p.set_str("uri", &uri);
                        if let Err(e) = peer
                            .call(own(), method, p, None, Duration::from_secs(30), None)
                            .await
                        {
                            tracing::warn!(server = %self.name, error = %e, "{method} failed");
                        }
                    }
                }
            }
            Era::Modern(_) => {
                if state.0 == wanted && state.1.is_some() {
                    return;
                }
                if let Some(old) = state.1.take() {
                    old.cancel();
                }
                // One listen stream carries the list changes the server
                // offers and the resources clients subscribed to. Its
                // notifications take the same path as any other from the
                // server (no sink), so lists are refreshed as usual.
                let caps = peer.capabilities();
                let changed = |cap: &str| caps[cap]["listChanged"].as_bool().unwrap_or(false);
                let filter = serde_json::json!({
                    "toolsListChanged": changed("tools"),
                    "promptsListChanged": changed("prompts"),
                    "resourcesListChanged": changed("resources"),
                    "resourceSubscriptions": wanted.iter().collect::<Vec<_>>(),
                });
                let wants_any = !wanted.is_empty()
                    || changed("tools")
                    || changed("prompts")
                    || changed("resources");
                if wants_any {
                    let token = CancellationToken::new();
                    state.1 = Some(token.clone());
                    let mut p = Params::default();
                    p.set_raw("notifications", jsonrpc::to_raw(&filter));
                    let name = self.name.clone();
                    tokio::spawn(async move {
                        let forever = Duration::from_secs(u64::from(u32::MAX));
                        if let Err(e) = peer
                            .call(
                                own(),
                                "subscriptions/listen",
                                p,
                                None,
                                forever,
                                Some(&token),
                            )
                            .await
                            && !matches!(e, PeerError::Cancelled)
                        {
                            tracing::warn!(server = %name, error = %e, "the server's notification stream ended");
                        }
                    });
                }
            }
        }
        state.0 = wanted;
    }

    /// Stops the server and waits until its process is gone.
    pub async fn stop(&self) {
        let done = self.stopped.notified();
        self.stop.cancel();
        if !matches!(self.status(), Status::Stopped | Status::Blocked { .. }) {
            let _ = tokio::time::timeout(Duration::from_secs(10), done).await;
        }
    }

    fn set_status(&self, s: Status) {
        match &s {
            Status::Failed { error } => {
                tracing::warn!(server = %self.name, %error, "server failed")
            }
            other => tracing::info!(server = %self.name, status = %other, "server status"),
        }
        if s != Status::Starting {
            let _ = self.events.send(Event::Status {
                server: self.name.clone(),
                status: s.clone(),
            });
        }
        *self.status.write() = s;
    }

    async fn supervise(
        self: Arc<Self>,
        secrets: SecretResolver,
        events: mpsc::UnboundedSender<Event>,
    ) {
        let mut attempt: u32 = 0;
        loop {
            self.set_status(Status::Starting);
            let started = tokio::time::Instant::now();
            let result = tokio::select! {
                r = self.run_once(&secrets, &events) => r,
                _ = self.stop.cancelled() => Ok(()),
            };
            *self.peer.write() = None;
            *self.catalog.write() = Arc::new(Catalog::default());
            let _ = events.send(Event::Changed {
                server: self.name.clone(),
                kinds: vec![ListKind::Tools, ListKind::Resources, ListKind::Prompts],
            });
            if self.stop.is_cancelled() {
                self.set_status(Status::Stopped);
                self.stopped.notify_waiters();
                return;
            }
            let error = match result {
                Ok(()) => "the server stopped".to_string(),
                Err(e) => e.to_string(),
            };
            self.set_status(Status::Failed { error });
            if started.elapsed() > Duration::from_secs(60) {
                attempt = 0;
            }
            let delay = Duration::from_millis(500u64.saturating_mul(1 << attempt.min(6)))
                .min(Duration::from_secs(30));
            attempt += 1;
            self.restarts.fetch_add(1, Ordering::Relaxed);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.stop.cancelled() => {
                    self.set_status(Status::Stopped);
                    self.stopped.notify_waiters();
                    return;
                }
            }
        }
    }

    /// One connection's life: connect, list, serve until it ends.
    async fn run_once(
        &self,
        secrets: &SecretResolver,
        events: &mpsc::UnboundedSender<Event>,
    ) -> Result<(), PeerError> {
        let (server_tx, mut server_rx) = mpsc::unbounded_channel::<Incoming>();
        let mux = Arc::new(Mux::new(server_tx));
        let queued = mux.queued();
        let (peer, mut process) = connect(&self.name, &self.spec, secrets, mux).await?;
        let peer = Arc::new(peer);
        let catalog = fetch_catalog(&peer, &self.name).await?;
        *self.catalog.write() = Arc::new(catalog);
        *self.peer.write() = Some(peer.clone());
        // A fresh connection has no subscriptions; the gateway re-applies them
        // when it hears the server is ready.
        *self.subscribed.lock().await = Default::default();
        self.set_status(Status::Ready);
        let _ = events.send(Event::Changed {
            server: self.name.clone(),
            kinds: vec![ListKind::Tools, ListKind::Resources, ListKind::Prompts],
        });

        let http_closed = match &peer.link {
            Link::Http(l) => {
                if l.has_session() {
                    tokio::spawn(l.clone().listen());
                }
                Some(l.closed.clone())
            }
            Link::Sse(l) => Some(l.closed.clone()),
            Link::Stdio(_) => None,
        };
        let result = {
            let ended = async {
                match (&mut process, &http_closed) {
                    (Some(p), _) => p.wait().await,
                    (None, Some(closed)) => {
                        closed.cancelled().await;
                        "the server ended the session".to_string()
                    }
                    (None, None) => std::future::pending().await,
                }
            };
            tokio::pin!(ended);
            loop {
                tokio::select! {
                    why = &mut ended => break Err(PeerError::Closed(why)),
                    msg = server_rx.recv() => {
                        let Some(msg) = msg else { break Err(PeerError::Closed("the connection closed".into())) };
                        queued.fetch_sub(1, Ordering::Relaxed);
                        self.on_server_message(&peer, msg, events).await;
                    }
                    _ = self.stop.cancelled() => break Ok(()),
                }
            }
        };
        peer.shutdown().await;
        let grace = Duration::from_secs(2);
        drop(peer);
        *self.peer.write() = None;
        if let Some(p) = process {
            p.stop(grace).await;
        }
        result
    }

    async fn on_server_message(
        &self,
        peer: &Arc<Peer>,
        msg: Incoming,
        events: &mpsc::UnboundedSender<Event>,
    ) {
        let env = msg.env;
        let method = env.method.clone().unwrap_or_default();
        if let Some(id) = env.id.as_ref().filter(|_| env.method.is_some()) {
            // A server request that no client call carries: answer it here.
            let reply = if method == "ping" {
                Reply::Result(jsonrpc::raw("{}"))
            } else {
                Reply::Error(jsonrpc::error_object(
                    jsonrpc::METHOD_NOT_FOUND,
                    "no client connected to Warden can answer this request right now",
                ))
            };
            let _ = peer.respond(own(), id, reply).await;
            return;
        }
        if method == "notifications/subscriptions/acknowledged" {
            return;
        }
        let kinds: Vec<ListKind> = match method.as_str() {
            "notifications/tools/list_changed" => vec![ListKind::Tools],
            "notifications/resources/list_changed" => {
                vec![ListKind::Resources, ListKind::Templates]
            }
            "notifications/prompts/list_changed" => vec![ListKind::Prompts],
            _ => {
                if let Err(before) =
                    crate::outbox::reserve(&self.broadcasts, MAX_QUEUED_BROADCASTS, &self.dropped)
                {
                    if before.is_multiple_of(10_000) {
                        tracing::warn!(server = %self.name, "the server sends notifications faster than clients take them; dropping some");
                    }
                    return;
                }
                let _ = events.send(Event::Broadcast {
                    server: self.name.clone(),
                    env,
                    queued: Queued(self.broadcasts.clone()),
                });
                return;
            }
        };
        let mut catalog = (*self.catalog()).clone();
        for kind in &kinds {
            match list_all(peer, &self.name, *kind).await {
                Ok(items) => match kind {
                    ListKind::Tools => catalog.tools = items,
                    ListKind::Resources => catalog.resources = items,
                    ListKind::Templates => catalog.templates = items,
                    ListKind::Prompts => catalog.prompts = items,
                },
                Err(e) => {
                    tracing::warn!(server = %self.name, error = %e, "could not refresh the list")
                }
            }
        }
        *self.catalog.write() = Arc::new(catalog);
        let _ = events.send(Event::Changed {
            server: self.name.clone(),
            kinds,
        });
    }
}

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

async fn connect(
    name: &str,
    spec: &ServerSpec,
    secrets: &SecretResolver,
    mux: Arc<Mux>,
) -> Result<(Peer, Option<stdio::Process>), PeerError> {
    if let Some(command) = &spec.command {
        let env: BTreeMap<String, String> = resolve_all(secrets, &spec.env).await?;
        let spawn =
            |mux: Arc<Mux>| stdio::spawn(name, command, &spec.args, spec.cwd.as_deref(), &env, mux);
        let (link, process) = spawn(mux.clone())?;
        let mut peer = Peer {
            server: name.to_string(),
            mux: mux.clone(),
            link: Link::Stdio(link),
            era: Era::Modern(MODERN_VERSION.into()),
            info: serde_json::Value::Null,
        };
        match discover(&peer, PROBE_TIMEOUT).await {
            Probe::Modern(version, info) => {
                peer.era = Era::Modern(version);
                peer.info = info;
                Ok((peer, Some(process)))
            }
            Probe::Legacy => {
                initialize(&mut peer).await?;
                Ok((peer, Some(process)))
            }
            Probe::Silent => {
                // No answer at all: the server may be in an undefined state
                // after the unknown method. Start it afresh for the handshake.
                process.stop(Duration::from_millis(500)).await;
                let (link, process) = spawn(mux.clone())?;
                peer.link = Link::Stdio(link);
                initialize(&mut peer).await?;
                Ok((peer, Some(process)))
            }
            Probe::Failed(e) => {
                process.stop(Duration::from_millis(500)).await;
                Err(e)
            }
        }
    } else if let Some(raw_url) = &spec.url {
        let url =
            crate::config::validate_url(raw_url).map_err(|e| PeerError::Start(e.to_string()))?;
        let headers: Vec<(String, String)> = resolve_all(secrets, &spec.headers)
            .await?
            .into_iter()
            .collect();
        let link = Arc::new(
            http::HttpLink::new(url.clone(), http::header_map(&headers)?, mux.clone())?
                .with_auth(name, secrets.tokens.clone()),
        );
        link.set_version(MODERN_VERSION);
        let mut peer = Peer {
            server: name.to_string(),
            mux,
            link: Link::Http(link.clone()),
            era: Era::Modern(MODERN_VERSION.into()),
            info: serde_json::Value::Null,
        };
        match discover(&peer, HANDSHAKE_TIMEOUT).await {
            Probe::Modern(version, info) => {
                link.set_version(&version);
                peer.era = Era::Modern(version);
                peer.info = info;
            }
            Probe::Legacy | Probe::Silent => {
                link.clear_version();
                match initialize(&mut peer).await {
                    Ok(()) => {}
                    // A server that refuses POSTs may speak the deprecated
                    // HTTP+SSE transport: the spec says to try a GET next.
                    Err(PeerError::Http { status, .. })
                        if (400..500).contains(&status) && status != 401 && status != 403 =>
                    {
                        let sse = sse_legacy::SseLink::connect(
                            url.clone(),
                            http::header_map(&headers)?,
                            peer.mux.clone(),
                        )
                        .await?;
                        peer.link = Link::Sse(sse);
                        initialize(&mut peer).await?;
                    }
                    Err(e) => return Err(e),
                }
            }
            Probe::Failed(e) => return Err(e),
        }
        Ok((peer, None))
    } else {
        Err(PeerError::Start(
            "the server has neither a command nor a url".into(),
        ))
    }
}

/// Resolves `keychain:` values off the async threads: the keychain blocks.
async fn resolve_all(
    secrets: &SecretResolver,
    values: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, PeerError> {
    let resolve = secrets.resolve.clone();
    let values = values.clone();
    tokio::task::spawn_blocking(move || {
        values
            .into_iter()
            .map(|(k, v)| resolve(&v).map(|v| (k, v)))
            .collect::<Result<BTreeMap<_, _>, String>>()
    })
    .await
    .map_err(|e| PeerError::Start(e.to_string()))?
    .map_err(PeerError::Start)
}

enum Probe {
    Modern(String, serde_json::Value),
    Legacy,
    Silent,
    Failed(PeerError),
}

async fn discover(peer: &Peer, timeout: Duration) -> Probe {
    match peer
        .call(
            own(),
            "server/discover",
            Params::default(),
            None,
            timeout,
            None,
        )
        .await
    {
        Ok(Reply::Result(r)) => {
            let info: serde_json::Value = serde_json::from_str(r.get()).unwrap_or_default();
            let versions: Vec<String> = info["supportedVersions"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            if versions.iter().any(|v| v == MODERN_VERSION) || versions.is_empty() {
                Probe::Modern(MODERN_VERSION.into(), info)
            } else if versions
                .iter()
                .any(|v| LEGACY_VERSIONS.contains(&v.as_str()))
            {
                Probe::Legacy
            } else {
                Probe::Failed(PeerError::Protocol(format!(
                    "the server speaks only MCP versions Warden does not know ({})",
                    versions.join(", ")
                )))
            }
        }
        Ok(Reply::Error(_)) => Probe::Legacy,
        Err(PeerError::Timeout(_)) => Probe::Silent,
        Err(PeerError::Http { status, .. })
            if (400..500).contains(&status) && status != 401 && status != 403 =>
        {
            Probe::Legacy
        }
        Err(e) => Probe::Failed(e),
    }
}

async fn initialize(peer: &mut Peer) -> Result<(), PeerError> {
    peer.era = Era::Legacy(LEGACY_VERSION.into());
    let mut params = Params::default();
    params.set_str("protocolVersion", LEGACY_VERSION);
    params.set_raw(
        "capabilities",
        jsonrpc::to_raw(&crate::handshake::client_capabilities()),
    );
    params.set_raw(
        "clientInfo",
        jsonrpc::to_raw(&crate::handshake::client_info()),
    );
    let reply = peer
        .call(own(), "initialize", params, None, HANDSHAKE_TIMEOUT, None)
        .await?;
    let info: serde_json::Value = match reply {
        Reply::Result(r) => serde_json::from_str(r.get()).map_err(|_| {
            PeerError::Protocol("the server's initialize answer is not valid JSON".into())
        })?,
        Reply::Error(e) => {
            return Err(PeerError::Protocol(format!(
                "the server refused to initialize: {}",
                e.get()
            )));
        }
    };
    let version = info["protocolVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !LEGACY_VERSIONS.contains(&version.as_str()) {
        return Err(PeerError::Protocol(format!(
            "the server wants MCP version {version:?}, which Warden does not speak"
        )));
    }
    if let Link::Http(l) = &peer.link {
        l.set_version(&version);
    }
    peer.era = Era::Legacy(version);
    peer.info = info;
    peer.notify(own(), "notifications/initialized", None)
        .await?;
    Ok(())
}

async fn fetch_catalog(peer: &Peer, server: &str) -> Result<Catalog, PeerError> {
    let mut catalog = Catalog::default();
    for kind in [
        ListKind::Tools,
        ListKind::Resources,
        ListKind::Templates,
        ListKind::Prompts,
    ] {
        if peer.capabilities().get(kind.capability()).is_none() {
            continue;
        }
        let items = list_all(peer, server, kind).await?;
        match kind {
            ListKind::Tools => catalog.tools = items,
            ListKind::Resources => catalog.resources = items,
            ListKind::Templates => catalog.templates = items,
            ListKind::Prompts => catalog.prompts = items,
        }
    }
    Ok(catalog)
}

/// Every page of one list, with names namespaced.
pub async fn list_all(peer: &Peer, server: &str, kind: ListKind) -> Result<Vec<Item>, PeerError> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut params = Params::default();
        if let Some(c) = &cursor {
            params.set_str("cursor", c);
        }
        let reply = peer
            .call(own(), kind.method(), params, None, HANDSHAKE_TIMEOUT, None)
            .await?;
        let raw = match reply {
            Reply::Result(r) => r,
            Reply::Error(e) => {
                return Err(PeerError::Protocol(format!(
                    "{} failed: {}",
                    kind.method(),
                    e.get()
                )));
            }
        };
        let shape = |e: String| {
            PeerError::Protocol(format!(
                "{} returned an unexpected shape: {e}",
                kind.method()
            ))
        };
        let page = Params::parse(raw.get()).map_err(shape)?;
        let listed: Vec<Box<RawValue>> = match page.0.get(kind.key()) {
            Some(v) => serde_json::from_str(v.get()).map_err(|e| shape(e.to_string()))?,
            None => Vec::new(),
        };
        for raw in listed {
            let Ok(mut fields) = Params::parse(raw.get()) else {
                continue;
            };
            let original = fields.str("name").unwrap_or_default();
            // A tool named like another kind (`prompt:x`) could pose as it
            // in a grant: it is not offered.
            if kind == ListKind::Tools
                && warden_policy::KIND_PREFIXES
                    .iter()
                    .any(|p| original.starts_with(p))
            {
                tracing::warn!(%server, tool = %original, "not offering a tool whose name poses as a prompt, resource or method");
                continue;
            }
            let exposed = crate::names::expose(server, &original);
            fields.set_str("name", &exposed);
            items.push(Item {
                uri: fields.str("uri"),
                uri_template: fields.str("uriTemplate"),
                original,
                exposed,
                exposed_raw: fields.to_raw(),
                raw,
            });
        }
        match page.str("nextCursor").filter(|c| !c.is_empty()) {
            Some(c) => cursor = Some(c),
            None => return Ok(items),
        }
    }
    Err(PeerError::Protocol(format!(
        "{} never stopped paginating",
        kind.method()
    )))
}
