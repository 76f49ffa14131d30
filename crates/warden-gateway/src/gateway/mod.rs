//! The gateway: the set of upstream servers, the agents allowed to call them,
//! the client sessions, and the path of one request from a client to a server.
//! README.md beside this file draws that path and names the file of each
//! stage.

mod agents;
mod approve;
mod decide;
mod events;
mod handle;
mod record;
mod relay;
mod route;
mod send;

pub use handle::FORBIDDEN;
pub use record::Receipt;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use warden_store::{NewEvent, Store};

use warden_policy::{Access, Effect, Grant, Risk, Target};

use crate::approvals::{ApprovalRequest, Broker, Choice, Outcome};
use crate::config::{Config, ServerSpec};
use crate::jsonrpc::{self, Envelope, Kind, Params};
use crate::outbox::{Inbox, Offer, Outbox, outbox};
use crate::upstream::mux::{Incoming, Reply};
use crate::upstream::{self, Event, ListKind, SecretResolver, Status, Upstream};
use crate::vetting::{ServerIndex, ToolInfo};
use crate::{Error, Result, redact};

/// Who is calling: the agent behind the credential.
#[derive(Debug, Clone)]
pub struct AgentRef {
    pub id: i64,
    pub name: String,
    /// What it may do, from its roles' grants.
    pub access: Arc<Access>,
    /// The person it acts for.
    pub owner: Option<String>,
    /// When the credential used stops working (microseconds).
    pub expires_at_us: Option<i64>,
    /// For a delegated credential (RFC 8693 token exchange): the person and
    /// every agent it passed through, this one last.
    pub chain: Option<Vec<String>>,
}

impl AgentRef {
    fn chain_json(&self) -> Option<String> {
        self.chain
            .as_ref()
            .and_then(|c| serde_json::to_string(c).ok())
    }
}

/// A short-lived credential made by token exchange: `agent` acting for the
/// subject, with at most what both may do.
#[derive(Clone)]
struct Delegation {
    agent: AgentRef,
    /// The agents it depends on; revoking or suspending any ends it.
    depends_on: Vec<i64>,
}

/// How long a delegated credential lives, at most.
pub const DELEGATION_LIFETIME_US: i64 = 15 * 60 * 1_000_000;

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The request, or a token in it, is not acceptable (RFC 8693 2.2.2
    /// answers both with `invalid_request`).
    #[error("{0}")]
    InvalidRequest(String),
    /// The delegation could not be recorded, so no token was made.
    #[error("{0}")]
    Unavailable(String),
}

/// A legacy (initialize-based) client session.
pub struct Session {
    pub id: String,
    pub agent: AgentRef,
    pub scope: Option<String>,
    pub version: String,
    capabilities: serde_json::Value,
    stream: Mutex<Option<Outbox>>,
    /// Requests we sent the client: our id → where its answer goes.
    relayed: Mutex<HashMap<String, Relayed>>,
    /// The level set with logging/setLevel, passed to 2026-07-28 servers in
    /// `_meta` (they have no such method).
    log_level: Mutex<Option<String>>,
    /// Resources this session subscribed to: (server, uri).
    subscriptions: Mutex<std::collections::BTreeSet<(String, String)>>,
    /// Requests in flight from this client: its id → cancel.
    in_flight: Mutex<HashMap<String, CancellationToken>>,
}

impl Session {
    fn can(&self, capability: &str) -> bool {
        self.capabilities.get(capability).is_some()
    }

    pub fn attach_stream(&self, out: Outbox) {
        *self.stream.lock() = Some(out);
    }

    /// Sends a notification on the session's GET stream, if one is open. A
    /// client far behind on it misses some (see [`crate::outbox`]).
    fn push(&self, message: String) {
        let mut stream = self.stream.lock();
        if let Some(out) = stream.as_ref()
            && out.offer(message) == Offer::Gone
        {
            *stream = None;
        }
    }
}

/// Where a client's answer to a request we sent it goes.
enum Relayed {
    /// Back to the server that asked (a legacy server's own request):
    /// (server, the server's request id, the method it asked).
    Upstream(String, Box<RawValue>, String),
    /// To the gateway, which gathers a 2026-07-28 server's input requests.
    Local(tokio::sync::oneshot::Sender<Reply>),
}

/// The client-facing context of one request.
pub struct Caller {
    pub agent: AgentRef,
    /// Whether the client speaks 2026-07-28 (stateless) on this request.
    pub modern: bool,
    pub session: Option<Arc<Session>>,
    /// `Some(server)` on `/servers/<server>/mcp`.
    pub scope: Option<String>,
}

/// What a request produced.
pub enum Answer {
    /// One JSON-RPC message.
    Message(String),
    /// Messages to stream (SSE), the last being the answer.
    Stream(Inbox),
    /// A method this endpoint does not have (HTTP 404 on 2026-07-28).
    NotFound(String),
    /// An error about the request itself (HTTP 400 on 2026-07-28).
    BadRequest(String),
    /// Nothing to send back (a notification or response was accepted).
    Accepted,
    /// A new legacy session with its first answer.
    Session(Arc<Session>, String),
}

#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct ServerInfo {
    pub name: String,
    pub transport: String,
    pub target: String,
    #[serde(flatten)]
    pub status: Status,
    pub era: Option<upstream::Era>,
    pub tools: usize,
    pub restarts: u32,
    /// The newest authorization probe's verdict (remote servers).
    #[serde(default)]
    pub probe: Option<String>,
    /// Whether an admin trusts the server's own risk hints (filled in by
    /// the API from the store).
    #[serde(default)]
    pub trusted: bool,
    /// Whether tools it adds later are trusted without review.
    #[serde(default)]
    pub auto_trust_new_tools: bool,
}

/// A 2026-07-28 `subscriptions/listen` stream: what the client asked to hear.
struct Listen {
    agent_id: i64,
    /// What the listening agent may use: it hears only about those servers
    /// and resources.
    access: Arc<Access>,
    scope: Option<String>,
    tools: bool,
    prompts: bool,
    resources: bool,
    resource_uris: Vec<String>,
    tx: Outbox,
}

impl Listen {
    fn wants(&self, method: &str, params: Option<&Params>) -> bool {
        match method {
            "notifications/tools/list_changed" => self.tools,
            "notifications/prompts/list_changed" => self.prompts,
            "notifications/resources/list_changed" => self.resources,
            "notifications/resources/updated" => params
                .and_then(|p| p.str("uri"))
                .is_some_and(|u| self.resource_uris.contains(&u)),
            _ => false,
        }
    }
}

const META_SUBSCRIPTION: &str = "io.modelcontextprotocol/subscriptionId";

/// A notification tagged with the subscription it is delivered under.
fn tagged(method: &str, params: Option<&Params>, subscription: &str) -> String {
    let mut p = params.cloned().unwrap_or_default();
    let mut meta = p.meta();
    meta.set_str(META_SUBSCRIPTION, subscription);
    p.set_meta(meta);
    jsonrpc::notification(method, Some(&p.to_raw()))
}

/// (server, tool, arguments hash, definition hash) of a standing approval.
type StandingKey = (String, String, String, String);

struct Inner {
    store: Store,
    config_path: PathBuf,
    config: RwLock<Config>,
    /// Held while a change is written to `config_path`.
    config_changes: tokio::sync::Mutex<()>,
    upstreams: RwLock<BTreeMap<String, Arc<Upstream>>>,
    agents: RwLock<HashMap<String, AgentRef>>,
    delegations: RwLock<HashMap<String, Delegation>>,
    expired_seen: Mutex<std::collections::HashSet<i64>>,
    sessions: RwLock<HashMap<String, Arc<Session>>>,
    listens: RwLock<HashMap<String, Listen>>,
    secrets: SecretResolver,
    credential_key: warden_auth::Sensitive<Vec<u8>>,
    redactor: redact::Redactor,
    events: mpsc::UnboundedSender<Event>,
    next: AtomicU64,
    shutdown: CancellationToken,
    broker: Arc<Broker>,
    /// Each server's tools as vetted (risk, definition hash, pin state).
    vetting: RwLock<HashMap<String, Arc<ServerIndex>>>,
    vet_lock: tokio::sync::Mutex<()>,
    /// Bumped when admins change risk or trust: an index built from the
    /// settings before is not kept.
    vet_generation: AtomicU64,
    /// Standing approvals by agent: (server, tool, arguments hash,
    /// definition hash) → id.
    standing: RwLock<HashMap<i64, HashMap<StandingKey, i64>>>,
    /// A person paused every agent: nothing is forwarded until resumed.
    paused: std::sync::atomic::AtomicBool,
    /// What a click on an approval notification does (the app opens it).
    notification_open: Arc<RwLock<Option<crate::notify::OpenHandler>>>,
    /// Whether approval requests show as desktop notifications now.
    notifying: Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

const PAGE_SIZE: usize = 1000;

/// Runs blocking file work (a lock that may wait) off the async runtime.
async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Config(format!("the configuration change stopped: {e}")))?
}

impl Gateway {
    /// Starts every configured server and loads the agents. Must run inside a
    /// tokio runtime.
    pub fn start(
        store: Store,
        config_path: PathBuf,
        config: Config,
        secrets: SecretResolver,
        credential_key: warden_auth::Sensitive<Vec<u8>>,
    ) -> Result<Gateway> {
        let (events, events_rx) = mpsc::unbounded_channel();
        let gw = Gateway {
            inner: Arc::new(Inner {
                store,
                config_path,
                config: RwLock::new(config.clone()),
                config_changes: tokio::sync::Mutex::new(()),
                upstreams: RwLock::new(BTreeMap::new()),
                agents: RwLock::new(HashMap::new()),
                delegations: RwLock::new(HashMap::new()),
                expired_seen: Mutex::new(Default::default()),
                sessions: RwLock::new(HashMap::new()),
                listens: RwLock::new(HashMap::new()),
                secrets,
                redactor: redact::Redactor::new(derive_key(
                    credential_key.expose(),
                    b"warden-redaction-v1",
                )),
                credential_key,
                events,
                next: AtomicU64::new(1),
                shutdown: CancellationToken::new(),
                broker: Arc::new(Broker::default()),
                vetting: RwLock::new(HashMap::new()),
                vet_lock: tokio::sync::Mutex::new(()),
                vet_generation: AtomicU64::new(0),
                standing: RwLock::new(HashMap::new()),
                paused: std::sync::atomic::AtomicBool::new(false),
                notification_open: Arc::default(),
                notifying: Arc::new(config.approvals.desktop_notifications.into()),
            }),
        };
        {
            let timeout = Duration::from_secs(config.approvals.timeout_secs);
            gw.inner.broker.add_surface(Arc::new(
                crate::notify::DesktopNotifier::new(&gw.inner.broker, timeout)
                    .while_enabled(gw.inner.notifying.clone())
                    .on_open(Arc::new({
                        let slot = gw.inner.notification_open.clone();
                        move |id: &str| {
                            if let Some(f) = slot.read().as_ref() {
                                f(id);
                            }
                        }
                    })),
            ));
        }
        gw.reload_agents()?;
        for (name, spec) in config.servers {
            gw.launch(name, spec);
        }
        tokio::spawn(gw.clone().relay_events(events_rx));
        Ok(gw)
    }

    pub fn config(&self) -> Config {
        self.inner.config.read().clone()
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    fn launch(&self, name: String, spec: ServerSpec) {
        self.inner.vetting.write().remove(&name);
        let up = match self.consent_problem(&name, &spec) {
            Some(reason) => {
                tracing::warn!(server = %name, %reason, "server not started");
                let _ = self.inner.events.send(Event::Status {
                    server: name.clone(),
                    status: Status::Blocked {
                        reason: reason.clone(),
                    },
                });
                Upstream::blocked(name.clone(), spec, reason, self.inner.events.clone())
            }
            None => Upstream::start(
                name.clone(),
                spec,
                self.inner.secrets.clone(),
                self.inner.events.clone(),
            ),
        };
        self.inner.upstreams.write().insert(name, up);
    }

    /// Why a server may not start: nobody consented to its exact command
    /// (for a remote server, its address and headers), or it changed since.
    /// `None` when it may start.
    fn consent_problem(&self, name: &str, spec: &ServerSpec) -> Option<String> {
        let hash = spec.consent_hash()?;
        let (what, changed) = if spec.command.is_some() {
            (
                "its command",
                "its command, arguments or environment changed",
            )
        } else {
            (
                "its address and headers",
                "its address or headers changed, so its calls (and any secret or sign-in) would go somewhere new",
            )
        };
        let policy = self
            .inner
            .store
            .connect()
            .and_then(|c| warden_store::tools::server_policy(&c, name));
        match policy {
            Err(e) => Some(format!(
                "Warden could not check the admin's approval of {what} ({e})"
            )),
            Ok(p) if p.consent_hash.as_deref() == Some(hash.as_str()) => None,
            Ok(p) if p.consent_hash.is_none() => Some(format!(
                "no admin has approved {what} yet; an admin can review and approve it with: warden server consent {name}"
            )),
            Ok(_) => Some(format!(
                "{changed}: an admin approved an earlier form of it, and can review and approve the change with: warden server consent {name}"
            )),
        }
    }

    /// Starts a server again after an admin's consent or a trust change,
    /// with its entry as the file has it now (what a consent was given to;
    /// the consent is checked again at launch).
    pub async fn restart_server(&self, name: &str) -> Result<()> {
        let path = self.inner.config_path.clone();
        let from_file = tokio::task::spawn_blocking(move || Config::load(&path))
            .await
            .map_err(|e| Error::Config(e.to_string()))??
            .servers
            .get(name)
            .cloned();
        let spec = match from_file {
            Some(spec) => {
                self.inner
                    .config
                    .write()
                    .servers
                    .insert(name.to_string(), spec.clone());
                spec
            }
            None => self
                .config()
                .servers
                .get(name)
                .cloned()
                .ok_or_else(|| Error::NotFound(format!("no server is named {name:?}")))?,
        };
        let old = self.inner.upstreams.write().remove(name);
        if let Some(up) = old {
            up.stop().await;
        }
        self.launch(name.to_string(), spec);
        Ok(())
    }

    pub fn broker(&self) -> &Arc<Broker> {
        &self.inner.broker
    }

    fn load_standing(&self, conn: &rusqlite::Connection) -> Result<()> {
        let mut map: HashMap<i64, HashMap<StandingKey, i64>> = HashMap::new();
        for s in warden_store::tools::standing(conn, None)? {
            map.entry(s.agent_id).or_default().insert(
                (s.server, s.tool, s.arguments_hash, s.definition_hash),
                s.id,
            );
        }
        *self.inner.standing.write() = map;
        Ok(())
    }

    /// Re-reads the standing approvals (after one is added or revoked).
    pub fn reload_standing(&self) -> Result<()> {
        let conn = self.inner.store.connect()?;
        self.load_standing(&conn)
    }

    /// Forgets the vetted view of one server's tools (or all), after an
    /// admin changed a risk, a trust setting or reviewed a tool; the next
    /// call or listing rebuilds it.
    pub fn invalidate_tools(&self, server: Option<&str>) {
        self.inner.vet_generation.fetch_add(1, Ordering::SeqCst);
        match server {
            Some(s) => {
                self.inner.vetting.write().remove(s);
            }
            None => self.inner.vetting.write().clear(),
        }
        for s in server
            .map(|s| vec![s.to_string()])
            .unwrap_or_else(|| self.inner.upstreams.read().keys().cloned().collect())
        {
            self.notify_changed(&s, &[ListKind::Tools]);
        }
    }

    fn fresh_index(
        &self,
        server: &str,
        catalog: &Arc<upstream::Catalog>,
    ) -> Option<Arc<ServerIndex>> {
        self.inner
            .vetting
            .read()
            .get(server)
            .filter(|ix| Arc::ptr_eq(&ix.catalog, catalog))
            .cloned()
    }

    /// The vetted view of a server's current tools; rebuilt (and the pins
    /// reconciled) whenever the server's catalog changed.
    async fn index(&self, up: &Upstream) -> std::result::Result<Arc<ServerIndex>, String> {
        let catalog = up.catalog();
        if let Some(ix) = self.fresh_index(&up.name, &catalog) {
            return Ok(ix);
        }
        if up.peer().is_none() {
            return Ok(Arc::new(ServerIndex::empty(catalog)));
        }
        let _guard = self.inner.vet_lock.lock().await;
        if let Some(ix) = self.fresh_index(&up.name, &catalog) {
            return Ok(ix);
        }
        let generation = self.inner.vet_generation.load(Ordering::SeqCst);
        let store = self.inner.store.clone();
        let server = up.name.clone();
        let cat = catalog.clone();
        let built = tokio::task::spawn_blocking(move || {
            let conn = store.connect()?;
            crate::vetting::build(&conn, &server, cat)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        let ix = Arc::new(built.index);
        {
            let mut vetting = self.inner.vetting.write();
            if self.inner.vet_generation.load(Ordering::SeqCst) == generation {
                vetting.insert(up.name.clone(), ix.clone());
            }
        }
        for change in built.changes {
            let definition = built.definitions.get(&change.tool).cloned();
            self.record_pin_change(&up.name, change, definition).await;
        }
        Ok(ix)
    }

    async fn record_pin_change(
        &self,
        server: &str,
        change: warden_store::tools::PinChange,
        definition: Option<String>,
    ) {
        let quarantined = change.change == "quarantined";
        if quarantined {
            let why = if change.reason.as_deref() == Some("new") {
                "it is new on a server whose new tools an admin reviews"
            } else {
                "its definition changed since it was approved"
            };
            tracing::warn!(%server, tool = %change.tool, "tool quarantined: {why}");
            if self.inner.config.read().approvals.desktop_notifications {
                crate::notify::notice(
                    format!("Warden quarantined {} on {server}", change.tool),
                    format!(
                        "Warden holds it because {why}. Agents cannot see or call it until an admin looks at it in Warden (Servers, then the tool)."
                    ),
                );
            }
        }
        let event = NewEvent {
            kind: format!("tool.{}", change.change),
            server: Some(server.to_string()),
            tool: Some(change.tool.clone()),
            outcome: Some(change.change.clone()),
            detail: Some(
                serde_json::json!({"reason": change.reason, "definition": definition}).to_string(),
            ),
            ..Default::default()
        };
        if let Err(e) = self.inner.store.activity().append(event).await {
            tracing::error!(error = %e, "could not record a tool's quarantine");
        }
    }

    /// The vetted facts about one tool as the server lists it now.
    pub async fn tool_info(&self, server: &str, tool: &str) -> Option<Arc<ToolInfo>> {
        let up = self.upstream(server)?;
        self.index(&up).await.ok()?.tools.get(tool).cloned()
    }

    /// What a click on an approval notification does; the desktop app
    /// opens its approval window.
    pub fn on_notification_open(&self, f: crate::notify::OpenHandler) {
        *self.inner.notification_open.write() = Some(f);
    }

    /// Pauses (or resumes) every agent: while paused, calls are refused
    /// with a message saying so and nothing reaches a server.
    pub fn set_paused(&self, paused: bool) {
        self.inner
            .paused
            .store(paused, std::sync::atomic::Ordering::SeqCst);
    }

    /// Puts settings an admin approved in force (they were held back when
    /// the file asked for them).
    pub fn apply_guarded(&self, g: &crate::config::Guarded) {
        let mut c = self.inner.config.write();
        c.approvals.timeout_secs = g.approval_timeout_secs;
        c.approvals.desktop_notifications = g.desktop_notifications;
        c.activity.retention_days = g.retention_days;
        c.activity.max_rows = g.max_rows;
        c.oauth.client_metadata_url = g.client_metadata_url.clone();
        self.inner
            .notifying
            .store(g.desktop_notifications, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn paused(&self) -> bool {
        self.inner.paused.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Redact this exact value from every call's stored arguments from now on
    /// (a secret Warden keeps, such as a server's API key).
    pub fn learn_secret(&self, value: &str) {
        self.inner.redactor.learn(value);
    }

    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        self.inner.sessions.read().get(id).cloned()
    }

    pub fn end_session(&self, id: &str) -> bool {
        let Some(session) = self.inner.sessions.write().remove(id) else {
            return false;
        };
        self.inner.broker.end_session(id);
        let servers: std::collections::BTreeSet<String> = session
            .subscriptions
            .lock()
            .iter()
            .map(|(s, _)| s.clone())
            .collect();
        let gw = self.clone();
        tokio::spawn(async move {
            for s in servers {
                gw.sync_subscriptions(&s).await;
            }
        });
        true
    }

    pub fn has_server(&self, name: &str) -> bool {
        self.inner.upstreams.read().contains_key(name)
    }

    /// Adds (or replaces) a server: saved to the configuration, started now.
    pub async fn add_server(&self, name: &str, spec: ServerSpec) -> Result<()> {
        spec.validate(name)?;
        // One change at a time, here and (through the file's lock) in any
        // other process: none is lost.
        let _one = self.inner.config_changes.lock().await;
        if self.inner.config.read().servers.contains_key(name) {
            return Err(crate::config::server_exists(name));
        }
        // The file's lock can wait on another process: off the runtime.
        let (path, n, s) = (
            self.inner.config_path.clone(),
            name.to_string(),
            spec.clone(),
        );
        run_blocking(move || Config::add_server_to(&path, &n, s)).await?;
        self.inner
            .config
            .write()
            .servers
            .insert(name.to_string(), spec.clone());
        self.launch(name.to_string(), spec);
        Ok(())
    }

    pub async fn remove_server(&self, name: &str) -> Result<()> {
        let _one = self.inner.config_changes.lock().await;
        if !self.inner.config.read().servers.contains_key(name) {
            return Err(Error::NotFound(format!("no server is named {name:?}")));
        }
        let (path, n) = (self.inner.config_path.clone(), name.to_string());
        run_blocking(move || Config::remove_server_from(&path, &n)).await?;
        self.inner.config.write().servers.remove(name);
        let up = self.inner.upstreams.write().remove(name);
        if let Some(up) = up {
            up.stop().await;
        }
        self.notify_changed(
            name,
            &[ListKind::Tools, ListKind::Resources, ListKind::Prompts],
        );
        Ok(())
    }

    pub fn servers(&self) -> Vec<ServerInfo> {
        self.inner
            .upstreams
            .read()
            .values()
            .map(|u| server_info(u))
            .collect()
    }

    /// The tools of one server as the server listed them.
    pub async fn server_tools(&self, name: &str) -> Result<Vec<serde_json::Value>> {
        let up = self
            .upstream(name)
            .ok_or_else(|| Error::NotFound(format!("no server is named {name:?}")))?;
        match up.status() {
            Status::Ready => {}
            other => {
                return Err(Error::Unavailable(format!("server {name:?} is {other}")));
            }
        }
        let ix = self.index(&up).await.map_err(Error::Unavailable)?;
        Ok(crate::vetting::describe(&ix))
    }

    fn upstream(&self, name: &str) -> Option<Arc<Upstream>> {
        self.inner.upstreams.read().get(name).cloned()
    }

    /// Waits until every server has left `starting`, up to `timeout`.
    pub async fn settle(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.servers().iter().all(|s| s.status != Status::Starting) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops every server and waits for their processes to go.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        let ups: Vec<_> = std::mem::take(&mut *self.inner.upstreams.write())
            .into_values()
            .collect();
        futures::future::join_all(ups.iter().map(|u| u.stop())).await;
    }

    fn ready_upstreams(&self, scope: Option<&str>) -> Vec<Arc<Upstream>> {
        self.inner
            .upstreams
            .read()
            .values()
            .filter(|u| scope.is_none_or(|s| s == u.name) && u.status() == Status::Ready)
            .cloned()
            .collect()
    }

    // ---- the request path -------------------------------------------------
}

/// What a call hears while every agent is paused.
const PAUSED: &str = "Warden has paused every agent, so this call was not sent. The person at this computer can resume agents from Warden's tray menu or its header.";

/// The server's name and version: top-level in a legacy `initialize` answer,
/// in `_meta` of a modern `server/discover` answer, or just its name.
fn server_identity(peer: &upstream::Peer) -> serde_json::Value {
    let info = &peer.info;
    if info["serverInfo"].is_object() {
        return info["serverInfo"].clone();
    }
    let meta = &info["_meta"]["io.modelcontextprotocol/serverInfo"];
    if meta.is_object() {
        return meta.clone();
    }
    serde_json::json!({"name": peer.server, "version": ""})
}

fn server_info(u: &Upstream) -> ServerInfo {
    let (transport, target) = match (&u.spec.command, &u.spec.url) {
        (Some(c), _) => (
            "stdio",
            std::iter::once(c.clone())
                .chain(u.spec.args.iter().cloned())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        (None, Some(url)) => ("http", url.clone()),
        _ => ("unknown", String::new()),
    };
    ServerInfo {
        name: u.name.clone(),
        transport: transport.into(),
        target,
        status: u.status(),
        era: u.peer().map(|p| p.era.clone()),
        tools: u.catalog().tools.len(),
        restarts: u.restarts.load(Ordering::Relaxed),
        probe: None,
        trusted: false,
        auto_trust_new_tools: false,
    }
}

/// A key for one purpose, derived from the install's credential key.
fn derive_key(key: &[u8], purpose: &[u8]) -> warden_auth::Sensitive<Vec<u8>> {
    use hmac::Mac;
    let Ok(mut m) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return warden_auth::Sensitive::new(purpose.to_vec());
    };
    m.update(purpose);
    warden_auth::Sensitive::new(m.finalize().into_bytes().to_vec())
}

pub fn random_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}
