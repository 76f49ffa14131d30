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

mod connect;
mod peer;

pub use connect::list_all;
use connect::{connect, fetch_catalog};
use peer::Link;
pub use peer::{Era, Peer};

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
