//! The gateway: the set of upstream servers, the agents allowed to call them,
//! the client sessions, and the path of one request from a client to a server.

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
    /// Back to the server that asked (a legacy server's own request).
    Upstream(String, Box<RawValue>),
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
}

#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

const PAGE_SIZE: usize = 1000;

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
            }),
        };
        if config.approvals.desktop_notifications {
            let timeout = Duration::from_secs(config.approvals.timeout_secs);
            gw.inner.broker.add_surface(Arc::new(
                crate::notify::DesktopNotifier::new(&gw.inner.broker, timeout).on_open(Arc::new({
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

    /// Why a local server may not start: nobody consented to its exact
    /// command, or it changed since. `None` when it may start.
    fn consent_problem(&self, name: &str, spec: &ServerSpec) -> Option<String> {
        let hash = spec.consent_hash()?;
        let policy = self
            .inner
            .store
            .connect()
            .and_then(|c| warden_store::tools::server_policy(&c, name));
        match policy {
            Err(e) => Some(format!(
                "Warden could not check the admin's approval of its command ({e})"
            )),
            Ok(p) if p.consent_hash.as_deref() == Some(hash.as_str()) => None,
            Ok(p) if p.consent_hash.is_none() => Some(format!(
                "no admin has approved its command yet; an admin can review and approve it with: warden server consent {name}"
            )),
            Ok(_) => Some(format!(
                "its command, arguments or environment changed since an admin approved them; an admin can review and approve the new command with: warden server consent {name}"
            )),
        }
    }

    /// Starts a server again after an admin's consent or a trust change.
    pub async fn restart_server(&self, name: &str) -> Result<()> {
        let spec = self
            .config()
            .servers
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("no server is named {name:?}")))?;
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
                        "{why}. Agents cannot see or call it until an admin reviews it: warden tool review {server} {}",
                        change.tool
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

    /// Re-reads the agents that may authenticate. Called after any change.
    pub fn reload_agents(&self) -> Result<()> {
        let conn = self.inner.store.connect()?;
        let keys = warden_store::agent::active_keys(&conn)?;
        let owners = warden_store::agent::owners(&conn)?;
        let mut map = HashMap::with_capacity(keys.len());
        for k in keys {
            let grants = warden_store::roles::grants_of_agent(&conn, k.agent.id)?
                .into_iter()
                .filter_map(|g| {
                    Some(Grant {
                        server: g.server,
                        pattern: g.pattern,
                        effect: Effect::parse(&g.effect)?,
                        explicit: g.explicit,
                    })
                })
                .collect();
            let current = AgentRef {
                owner: owners.get(&k.agent.id).cloned(),
                id: k.agent.id,
                name: k.agent.name,
                access: Arc::new(Access::new(grants)),
                expires_at_us: k.agent.expires_at_us,
                chain: None,
            };
            // During a rotation's overlap the previous credential works too,
            // until the overlap ends.
            if let Some((hash, until)) = k.previous {
                let previous = AgentRef {
                    expires_at_us: Some(until),
                    ..current.clone()
                };
                map.insert(hash, previous);
            }
            map.insert(k.credential_hash, current);
        }
        *self.inner.agents.write() = map;
        self.load_standing(&conn)?;
        // Sessions of agents that can no longer authenticate end now.
        let live: std::collections::HashSet<i64> =
            self.inner.agents.read().values().map(|a| a.id).collect();
        self.inner
            .sessions
            .write()
            .retain(|_, s| live.contains(&s.agent.id));
        self.inner
            .listens
            .write()
            .retain(|_, l| live.contains(&l.agent_id));
        // Delegated credentials carry the access of the moment they were
        // issued: any change to agents, roles or grants ends them.
        self.inner.delegations.write().clear();
        Ok(())
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

    pub fn paused(&self) -> bool {
        self.inner.paused.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn authenticate(&self, bearer: &str) -> Option<AgentRef> {
        let hash = warden_auth::hash_credential(self.inner.credential_key.expose(), bearer);
        let found = self.inner.agents.read().get(&hash).cloned();
        let agent = match found {
            Some(a) => a,
            None => self.delegated(&hash)?,
        };
        // Expiry takes effect on the next message, open sessions included.
        if agent
            .expires_at_us
            .is_some_and(|e| e <= warden_store::now_us())
        {
            // Recorded once per agent and run, the first time it shows.
            if agent.chain.is_none() && self.inner.expired_seen.lock().insert(agent.id) {
                let event = NewEvent {
                    kind: "agent.credential_expired".into(),
                    agent: Some(agent.name.clone()),
                    on_behalf_of: agent.owner.clone(),
                    outcome: Some("refused".into()),
                    ..Default::default()
                };
                let log = self.inner.store.activity().clone();
                tokio::spawn(async move {
                    let _ = log.append(event).await;
                });
            }
            return None;
        }
        self.inner.store.activity().touch_agent(agent.id);
        Some(agent)
    }

    /// A delegated credential, while it and every agent it depends on live.
    fn delegated(&self, hash: &str) -> Option<AgentRef> {
        let d = self.inner.delegations.read().get(hash).cloned()?;
        let live = {
            let agents = self.inner.agents.read();
            d.depends_on
                .iter()
                .all(|id| agents.values().any(|a| a.id == *id))
        };
        if !live
            || d.agent
                .expires_at_us
                .is_some_and(|e| e <= warden_store::now_us())
        {
            self.inner.delegations.write().remove(hash);
            return None;
        }
        Some(d.agent)
    }

    /// RFC 8693 token exchange: `actor` (an agent's own credential) gets a
    /// short-lived credential to act for `subject` (an agent credential, or a
    /// delegated one, so chains can grow). It may do only what both may, and
    /// everything it does names the whole chain.
    pub async fn exchange(
        &self,
        subject: &str,
        actor: &str,
    ) -> Result<(warden_auth::Sensitive<String>, i64), ExchangeError> {
        let key = self.inner.credential_key.expose();
        let subject_hash = warden_auth::hash_credential(key, subject);
        let (subject_ref, subject_deps) = match self.inner.agents.read().get(&subject_hash).cloned()
        {
            Some(a) => (a.clone(), vec![a.id]),
            None => {
                let d = self.inner.delegations.read().get(&subject_hash).cloned();
                match (d, self.delegated(&subject_hash)) {
                    (Some(d), Some(a)) => (a, d.depends_on),
                    _ => {
                        return Err(ExchangeError::InvalidRequest(
                            "the subject token is not valid".into(),
                        ));
                    }
                }
            }
        };
        let now = warden_store::now_us();
        if subject_ref.expires_at_us.is_some_and(|e| e <= now) {
            return Err(ExchangeError::InvalidRequest(
                "the subject token has expired".into(),
            ));
        }
        let actor_hash = warden_auth::hash_credential(key, actor);
        let Some(actor_ref) = self.inner.agents.read().get(&actor_hash).cloned() else {
            return Err(ExchangeError::InvalidRequest(
                "the actor token is not an agent's own valid credential".into(),
            ));
        };
        if actor_ref.expires_at_us.is_some_and(|e| e <= now) {
            return Err(ExchangeError::InvalidRequest(
                "the actor token has expired".into(),
            ));
        }
        if subject_deps.contains(&actor_ref.id) {
            return Err(ExchangeError::InvalidRequest(
                "an agent cannot delegate to itself or to an agent already in its chain".into(),
            ));
        }
        let mut chain = subject_ref.chain.clone().unwrap_or_else(|| {
            subject_ref
                .owner
                .iter()
                .cloned()
                .chain([subject_ref.name.clone()])
                .collect()
        });
        chain.push(actor_ref.name.clone());
        let expires = [
            Some(now + DELEGATION_LIFETIME_US),
            subject_ref.expires_at_us,
            actor_ref.expires_at_us,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now);
        let access = Access {
            grants: actor_ref.access.grants.clone(),
            delegator: Some(Box::new((*subject_ref.access).clone())),
        };
        let mut depends_on = subject_deps;
        depends_on.push(actor_ref.id);
        let delegated = AgentRef {
            id: actor_ref.id,
            name: actor_ref.name.clone(),
            access: Arc::new(access),
            // Attributed to the person at the root of the chain.
            owner: subject_ref.owner.clone(),
            expires_at_us: Some(expires),
            chain: Some(chain),
        };
        let delegated_chain_json = delegated.chain_json();
        let token =
            warden_auth::Sensitive::new(format!("wdd_{}", warden_auth::random_token().expose()));
        let hash = warden_auth::hash_credential(key, token.expose());
        let event = NewEvent {
            kind: "delegation.issued".into(),
            agent: Some(actor_ref.name.clone()),
            on_behalf_of: subject_ref.owner.clone(),
            chain: delegated_chain_json.clone(),
            outcome: Some(format!("expires in {} s", (expires - now) / 1_000_000)),
            ..Default::default()
        };
        // Committed before the token exists anywhere but here: a delegation
        // the log does not show is never handed out.
        if let Err(e) = self.inner.store.activity().append(event).await {
            tracing::error!(error = %e, "could not record a delegation; none was issued");
            return Err(ExchangeError::Unavailable(
                "Warden could not record this delegation in its activity log, so it issued none; try again shortly".into(),
            ));
        }
        let mut all = self.inner.delegations.write();
        all.retain(|_, d| d.agent.expires_at_us.is_none_or(|e| e > now));
        all.insert(
            hash,
            Delegation {
                agent: delegated,
                depends_on,
            },
        );
        Ok((token, (expires - now) / 1_000_000))
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

    /// Brings a server's resource subscriptions in line with what the clients
    /// still want: one upstream subscription per URI, however many clients
    /// share it (a legacy server gets subscribe/unsubscribe, a 2026-07-28
    /// server one `subscriptions/listen` stream for the whole set).
    async fn sync_subscriptions(&self, server: &str) {
        if self.paused() {
            return;
        }
        let Some(up) = self.upstream(server) else {
            return;
        };
        let wanted: std::collections::BTreeSet<String> = self
            .inner
            .sessions
            .read()
            .values()
            .flat_map(|s| {
                s.subscriptions
                    .lock()
                    .iter()
                    .filter(|(sv, _)| sv == server)
                    .map(|(_, u)| u.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        up.subscribe_to(wanted).await;
    }

    pub fn has_server(&self, name: &str) -> bool {
        self.inner.upstreams.read().contains_key(name)
    }

    /// Adds (or replaces) a server: saved to the configuration, started now.
    pub async fn add_server(&self, name: &str, spec: ServerSpec) -> Result<()> {
        spec.validate(name)?;
        let mut config = self.config();
        if config.servers.contains_key(name) {
            return Err(Error::Conflict(format!(
                "a server named {name:?} already exists; remove it first or pick another name"
            )));
        }
        config.servers.insert(name.to_string(), spec.clone());
        config.save(&self.inner.config_path)?;
        *self.inner.config.write() = config;
        self.launch(name.to_string(), spec);
        Ok(())
    }

    pub async fn remove_server(&self, name: &str) -> Result<()> {
        let mut config = self.config();
        if config.servers.remove(name).is_none() {
            return Err(Error::NotFound(format!("no server is named {name:?}")));
        }
        config.save(&self.inner.config_path)?;
        *self.inner.config.write() = config;
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

    async fn relay_events(self, mut rx: mpsc::UnboundedReceiver<Event>) {
        while let Some(ev) = rx.recv().await {
            match ev {
                Event::Changed { server, kinds } => {
                    if kinds.contains(&ListKind::Tools) {
                        // Vet the new list now, so a changed tool is
                        // quarantined (and admins told) before anyone asks.
                        let gw = self.clone();
                        let s = server.clone();
                        tokio::spawn(async move {
                            if let Some(up) = gw.upstream(&s)
                                && let Err(e) = gw.index(&up).await
                            {
                                tracing::error!(server = %s, error = %e, "could not vet the server's tools");
                            }
                        });
                    }
                    self.notify_changed(&server, &kinds);
                    let gw = self.clone();
                    tokio::spawn(async move { gw.sync_subscriptions(&server).await });
                }
                Event::Status { server, status } => {
                    let (outcome, detail) = match &status {
                        Status::Failed { error } => (
                            "failed",
                            Some(serde_json::json!({"error": error}).to_string()),
                        ),
                        Status::Ready => ("ready", None),
                        Status::Stopped => ("stopped", None),
                        Status::Blocked { reason } => (
                            "blocked",
                            Some(serde_json::json!({"reason": reason}).to_string()),
                        ),
                        Status::Starting => ("starting", None),
                    };
                    let event = NewEvent {
                        kind: "server.status".into(),
                        server: Some(server),
                        outcome: Some(outcome.into()),
                        detail,
                        ..Default::default()
                    };
                    if let Err(e) = self.inner.store.activity().append(event).await {
                        tracing::error!(error = %e, "could not record a server's status");
                    }
                }
                Event::Broadcast {
                    server,
                    env,
                    queued: _queued,
                } => {
                    let method = env.method.clone().unwrap_or_default();
                    let params = env.params.as_deref();
                    let message = jsonrpc::notification(&method, params);
                    let parsed_uri = (method == "notifications/resources/updated")
                        .then(|| env.params_map().ok().and_then(|p| p.str("uri")))
                        .flatten();
                    for s in self.sessions_for(&server) {
                        // An update goes only to the sessions subscribed to it.
                        if let Some(uri) = &parsed_uri
                            && !s
                                .subscriptions
                                .lock()
                                .contains(&(server.clone(), uri.clone()))
                        {
                            continue;
                        }
                        s.push(message.clone());
                    }
                    let parsed = env.params_map().ok();
                    self.push_listens(&server, &method, parsed.as_ref());
                }
            }
        }
    }

    fn sessions_for(&self, server: &str) -> Vec<Arc<Session>> {
        self.inner
            .sessions
            .read()
            .values()
            .filter(|s| s.scope.as_deref().is_none_or(|sc| sc == server))
            // Only agents that may use something on the server hear from it.
            .filter(|s| s.agent.access.touches(server))
            .cloned()
            .collect()
    }

    fn notify_changed(&self, server: &str, kinds: &[ListKind]) {
        let mut methods: Vec<&str> = kinds.iter().map(|k| k.list_changed()).collect();
        methods.dedup();
        for s in self.sessions_for(server) {
            for m in &methods {
                s.push(jsonrpc::notification(m, None));
            }
        }
        for m in &methods {
            self.push_listens(server, m, None);
        }
    }

    /// Delivers a notification to the listen streams that asked for it;
    /// streams whose client went away are dropped.
    fn push_listens(&self, server: &str, method: &str, params: Option<&Params>) {
        let mut gone = Vec::new();
        for (id, l) in self.inner.listens.read().iter() {
            if l.scope.as_deref().is_some_and(|s| s != server)
                || !l.wants(method, params)
                || !l.access.touches(server)
            {
                continue;
            }
            if method == "notifications/resources/updated"
                && let Some(uri) = params.and_then(|p| p.str("uri"))
                && !l.access.visible(server, Target::Resource(&uri))
            {
                continue;
            }
            if l.tx.offer(tagged(method, params, id)) == Offer::Gone {
                gone.push(id.clone());
            }
        }
        if !gone.is_empty() {
            let mut listens = self.inner.listens.write();
            for id in gone {
                listens.remove(&id);
            }
        }
    }

    /// `subscriptions/listen` (2026-07-28): a long-lived answer stream that
    /// starts with an acknowledgement and then carries what was asked for.
    fn listen(&self, caller: &Caller, params: &Params) -> Answer {
        let filter = params
            .0
            .get("notifications")
            .and_then(|n| serde_json::from_str::<serde_json::Value>(n.get()).ok())
            .unwrap_or_default();
        let flag = |k: &str| filter[k].as_bool().unwrap_or(false);
        let uris = filter["resourceSubscriptions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let id = random_id();
        let (tx, rx) = outbox();
        let ack = tagged("notifications/subscriptions/acknowledged", None, &id);
        tx.send(ack);
        self.inner.listens.write().insert(
            id,
            Listen {
                agent_id: caller.agent.id,
                access: caller.agent.access.clone(),
                scope: caller.scope.clone(),
                tools: flag("toolsListChanged"),
                prompts: flag("promptsListChanged"),
                resources: flag("resourcesListChanged"),
                resource_uris: uris,
                tx,
            },
        );
        Answer::Stream(rx)
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

    /// Handles one message from a client.
    pub async fn handle(&self, caller: Caller, env: Envelope) -> Answer {
        let modern = caller.modern;
        let id = env.id.clone();
        match env.kind() {
            Some(Kind::Request) => {}
            Some(Kind::Notification) => {
                self.on_client_notification(&caller, &env).await;
                return Answer::Accepted;
            }
            Some(Kind::Response) => {
                self.on_client_response(&caller, env).await;
                return Answer::Accepted;
            }
            None => {
                return Answer::Message(jsonrpc::error(
                    id.as_deref(),
                    jsonrpc::INVALID_REQUEST,
                    "not a valid JSON-RPC 2.0 request, notification or response",
                ));
            }
        }
        let Some(id) = id else {
            return Answer::Accepted;
        };
        let method = env.method.clone().unwrap_or_default();
        let params = match env.params_map() {
            Ok(p) => p,
            Err(e) => {
                return Answer::Message(jsonrpc::error(Some(&id), jsonrpc::INVALID_PARAMS, &e));
            }
        };
        if let Some(scope) = &caller.scope
            && self.upstream(scope).is_none()
        {
            return Answer::Message(jsonrpc::error(
                Some(&id),
                jsonrpc::INVALID_REQUEST,
                &format!("no server is named {scope:?}"),
            ));
        }
        // Methods 2026-07-28 removed are unknown to a modern client.
        if modern
            && matches!(
                method.as_str(),
                "initialize"
                    | "ping"
                    | "logging/setLevel"
                    | "resources/subscribe"
                    | "resources/unsubscribe"
            )
        {
            return Answer::NotFound(jsonrpc::error(
                Some(&id),
                jsonrpc::METHOD_NOT_FOUND,
                &format!("method not found: {method} (removed in 2026-07-28)"),
            ));
        }
        if !modern && caller.session.is_none() && method != "initialize" {
            return Answer::Message(jsonrpc::error(
                Some(&id),
                jsonrpc::INVALID_REQUEST,
                "send initialize first (or use protocol 2026-07-28 with _meta on every request)",
            ));
        }
        let ok =
            |v: serde_json::Value| Answer::Message(jsonrpc::response(&id, &jsonrpc::to_raw(&v)));
        match method.as_str() {
            "initialize" => self.initialize(caller, &id, &params),
            "server/discover" => ok(self.discover(caller.scope.as_deref())),
            "subscriptions/listen" if modern => self.listen(&caller, &params),
            "ping" => ok(serde_json::json!({})),
            "tools/list" => {
                self.list(&caller, &id, &params, ListKind::Tools, modern)
                    .await
            }
            "resources/list" => {
                self.list(&caller, &id, &params, ListKind::Resources, modern)
                    .await
            }
            "resources/templates/list" => {
                self.list(&caller, &id, &params, ListKind::Templates, modern)
                    .await
            }
            "prompts/list" => {
                self.list(&caller, &id, &params, ListKind::Prompts, modern)
                    .await
            }
            "logging/setLevel" => {
                if let Some(s) = &caller.session {
                    *s.log_level.lock() = params.str("level");
                }
                for up in self.ready_upstreams(caller.scope.as_deref()) {
                    if !caller.agent.access.touches(&up.name) {
                        continue;
                    }
                    if let Some(peer) = up
                        .peer()
                        .filter(|p| p.capabilities().get("logging").is_some())
                        .filter(|_| !self.paused())
                    {
                        let p = params.clone();
                        tokio::spawn(async move {
                            let _ = peer
                                .call("logging/setLevel", p, None, Duration::from_secs(10), None)
                                .await;
                        });
                    }
                }
                ok(serde_json::json!({}))
            }
            "tools/call" | "prompts/get" => {
                let Some(name) = params.str("name") else {
                    return Answer::Message(jsonrpc::error(
                        Some(&id),
                        jsonrpc::INVALID_PARAMS,
                        "params.name is required",
                    ));
                };
                let kind = if method == "tools/call" {
                    ListKind::Tools
                } else {
                    ListKind::Prompts
                };
                match self.route_name(&caller, kind, &name) {
                    Some((server, original)) => {
                        self.forward(caller, id, &method, params, server, original, "name")
                            .await
                    }
                    None => Answer::Message(jsonrpc::error(
                        Some(&id),
                        jsonrpc::INVALID_PARAMS,
                        &format!(
                            "unknown {}: {name}",
                            if kind == ListKind::Tools {
                                "tool"
                            } else {
                                "prompt"
                            }
                        ),
                    )),
                }
            }
            "resources/subscribe" | "resources/unsubscribe" => {
                let Some(uri) = params.str("uri") else {
                    return Answer::Message(jsonrpc::error(
                        Some(&id),
                        jsonrpc::INVALID_PARAMS,
                        "params.uri is required",
                    ));
                };
                let (Some(session), Some(server)) =
                    (&caller.session, self.route_uri(&caller, &uri))
                else {
                    return Answer::Message(jsonrpc::error(
                        Some(&id),
                        jsonrpc::INVALID_PARAMS,
                        &format!("no connected server offers the resource {uri}"),
                    ));
                };
                if caller.agent.access.decide(&server, Target::Resource(&uri)) != Effect::Allow {
                    return Answer::Message(jsonrpc::error(
                        Some(&id),
                        FORBIDDEN,
                        &format!(
                            "Warden denied the subscription: agent {:?} may not read {uri}",
                            caller.agent.name
                        ),
                    ));
                }
                let key = (server.clone(), uri);
                if method == "resources/subscribe" {
                    session.subscriptions.lock().insert(key);
                } else {
                    session.subscriptions.lock().remove(&key);
                }
                self.sync_subscriptions(&server).await;
                ok(serde_json::json!({}))
            }
            "resources/read" => {
                let Some(uri) = params.str("uri") else {
                    return Answer::Message(jsonrpc::error(
                        Some(&id),
                        jsonrpc::INVALID_PARAMS,
                        "params.uri is required",
                    ));
                };
                match self.route_uri(&caller, &uri) {
                    Some(server) => {
                        self.forward(caller, id, &method, params, server, uri, "uri")
                            .await
                    }
                    None => Answer::Message(jsonrpc::error(
                        Some(&id),
                        jsonrpc::INVALID_PARAMS,
                        &format!("no connected server offers the resource {uri}"),
                    )),
                }
            }
            "completion/complete" => {
                let reference = params
                    .0
                    .get("ref")
                    .and_then(|r| Params::parse(r.get()).ok());
                let target = reference
                    .as_ref()
                    .and_then(|r| match r.str("type").as_deref() {
                        Some("ref/prompt") => r
                            .str("name")
                            .and_then(|n| self.route_name(&caller, ListKind::Prompts, &n))
                            .map(|(s, o)| (s, Some(o))),
                        Some("ref/resource") => r
                            .str("uri")
                            .and_then(|u| self.route_uri(&caller, &u))
                            .map(|s| (s, None)),
                        _ => None,
                    });
                match (target, reference) {
                    (Some((server, original)), Some(mut r)) => {
                        let allowed = match (&original, r.str("uri")) {
                            (Some(name), _) => {
                                caller.agent.access.decide(&server, Target::Prompt(name))
                                    == Effect::Allow
                            }
                            (None, Some(uri)) => {
                                caller.agent.access.decide(&server, Target::Resource(&uri))
                                    == Effect::Allow
                            }
                            _ => false,
                        };
                        if !allowed {
                            return Answer::Message(jsonrpc::error(
                                Some(&id),
                                FORBIDDEN,
                                "Warden denied the completion: this agent may not use that prompt or resource",
                            ));
                        }
                        let mut params = params;
                        if let Some(o) = original {
                            r.set_str("name", &o);
                        }
                        params.set_raw("ref", r.to_raw());
                        self.forward(caller, id, &method, params, server, String::new(), "")
                            .await
                    }
                    _ => Answer::Message(jsonrpc::error(
                        Some(&id),
                        jsonrpc::INVALID_PARAMS,
                        "unknown completion reference",
                    )),
                }
            }
            other => {
                // On a single server's endpoint, methods the gateway does not
                // interpret pass through to that server under the same log.
                if let Some(scope) = caller.scope.clone() {
                    self.forward(caller, id, other, params, scope, String::new(), "")
                        .await
                } else {
                    let e = jsonrpc::error(
                        Some(&id),
                        jsonrpc::METHOD_NOT_FOUND,
                        &format!("method not found: {other}"),
                    );
                    if modern {
                        Answer::NotFound(e)
                    } else {
                        Answer::Message(e)
                    }
                }
            }
        }
    }

    fn initialize(&self, caller: Caller, id: &RawValue, params: &Params) -> Answer {
        let requested = params.str("protocolVersion").unwrap_or_default();
        let version = if upstream::LEGACY_VERSIONS.contains(&requested.as_str()) {
            requested
        } else {
            upstream::LEGACY_VERSION.to_string()
        };
        let capabilities: serde_json::Value = params
            .0
            .get("capabilities")
            .and_then(|c| serde_json::from_str(c.get()).ok())
            .unwrap_or_default();
        let session = Arc::new(Session {
            id: random_id(),
            agent: caller.agent.clone(),
            scope: caller.scope.clone(),
            version: version.clone(),
            capabilities,
            stream: Mutex::new(None),
            relayed: Mutex::new(HashMap::new()),
            log_level: Mutex::new(None),
            subscriptions: Mutex::new(Default::default()),
            in_flight: Mutex::new(HashMap::new()),
        });
        let mut result = self.server_description(caller.scope.as_deref());
        result["protocolVersion"] = serde_json::Value::String(version);
        self.inner
            .sessions
            .write()
            .insert(session.id.clone(), session.clone());
        Answer::Session(session, jsonrpc::response(id, &jsonrpc::to_raw(&result)))
    }

    fn discover(&self, scope: Option<&str>) -> serde_json::Value {
        crate::handshake::discover_result(self.server_description(scope))
    }

    /// Capabilities, identity and instructions: Warden's own on the
    /// aggregated endpoint, the server's on a single server's endpoint.
    fn server_description(&self, scope: Option<&str>) -> serde_json::Value {
        if let Some(peer) = scope.and_then(|s| self.upstream(s)).and_then(|u| u.peer()) {
            let mut d = serde_json::json!({
                "capabilities": peer.info["capabilities"].clone(),
                "serverInfo": server_identity(&peer),
            });
            if let Some(i) = peer.info.get("instructions") {
                d["instructions"] = i.clone();
            }
            return d;
        }
        crate::handshake::own_description()
    }

    async fn list(
        &self,
        caller: &Caller,
        id: &RawValue,
        params: &Params,
        kind: ListKind,
        modern: bool,
    ) -> Answer {
        let scoped = caller.scope.is_some();
        let ups = self.ready_upstreams(caller.scope.as_deref());
        let mut all: Vec<&RawValue> = Vec::new();
        let mut catalogs = Vec::with_capacity(ups.len());
        for u in &ups {
            if kind == ListKind::Tools {
                // Quarantined tools are hidden; a server whose tools cannot
                // be vetted shows none.
                match self.index(u).await {
                    Ok(ix) => catalogs.push((u.name.as_str(), ix.catalog.clone(), Some(ix))),
                    Err(e) => {
                        tracing::error!(server = %u.name, error = %e, "could not vet the server's tools; hiding them")
                    }
                }
            } else {
                catalogs.push((u.name.as_str(), u.catalog(), None));
            }
        }
        let access = &caller.agent.access;
        for (server, c, ix) in &catalogs {
            let items = match kind {
                ListKind::Tools => &c.tools,
                ListKind::Resources => &c.resources,
                ListKind::Templates => &c.templates,
                ListKind::Prompts => &c.prompts,
            };
            // A caller sees only what it may use.
            let visible = |i: &&upstream::Item| match kind {
                ListKind::Tools => {
                    ix.as_ref().is_some_and(|ix| ix.usable(&i.original))
                        && access.visible(server, Target::Tool(&i.original))
                }
                ListKind::Prompts => access.visible(server, Target::Prompt(&i.original)),
                ListKind::Resources => access.visible(
                    server,
                    Target::Resource(i.uri.as_deref().unwrap_or_default()),
                ),
                ListKind::Templates => access.visible(
                    server,
                    Target::Resource(i.uri_template.as_deref().unwrap_or_default()),
                ),
            };
            all.extend(
                items
                    .iter()
                    .filter(visible)
                    .map(|i| if scoped { &*i.raw } else { &*i.exposed_raw }),
            );
        }
        let start = match params.str("cursor") {
            None => 0,
            Some(c) => match c.parse::<usize>() {
                Ok(n) if n <= all.len() => n,
                _ => {
                    return Answer::Message(jsonrpc::error(
                        Some(id),
                        jsonrpc::INVALID_PARAMS,
                        "invalid cursor",
                    ));
                }
            },
        };
        let end = (start + PAGE_SIZE).min(all.len());
        let mut body = String::with_capacity(4096);
        body.push_str("{\"");
        body.push_str(kind.key());
        body.push_str("\":[");
        for (i, item) in all[start..end].iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(item.get());
        }
        body.push(']');
        if end < all.len() {
            body.push_str(&format!(",\"nextCursor\":\"{end}\""));
        }
        if modern {
            body.push_str(",\"resultType\":\"complete\",\"ttlMs\":0,\"cacheScope\":\"private\"");
        }
        body.push('}');
        Answer::Message(jsonrpc::response(id, &jsonrpc::raw(&body)))
    }

    /// (server, original name) for a name a client used.
    fn route_name(&self, caller: &Caller, kind: ListKind, name: &str) -> Option<(String, String)> {
        let ups = self.ready_upstreams(caller.scope.as_deref());
        for up in &ups {
            let c = up.catalog();
            let items = if kind == ListKind::Tools {
                &c.tools
            } else {
                &c.prompts
            };
            let hit = if caller.scope.is_some() {
                items.iter().find(|i| i.original == name)
            } else {
                items.iter().find(|i| i.exposed == name)
            };
            if let Some(i) = hit {
                return Some((up.name.clone(), i.original.clone()));
            }
        }
        // Only what a server listed can be called: an unknown name is refused
        // here and never reaches a server.
        None
    }

    fn route_uri(&self, caller: &Caller, uri: &str) -> Option<String> {
        let ups = self.ready_upstreams(caller.scope.as_deref());
        if let Some(scope) = &caller.scope {
            return Some(scope.clone());
        }
        if let Some(up) = ups.iter().find(|u| {
            u.catalog()
                .resources
                .iter()
                .any(|r| r.uri.as_deref() == Some(uri))
        }) {
            return Some(up.name.clone());
        }
        let matching: Vec<_> = ups
            .iter()
            .filter(|u| {
                u.catalog().templates.iter().any(|t| {
                    t.uri_template
                        .as_deref()
                        .is_some_and(|tpl| template_matches(tpl, uri))
                })
            })
            .collect();
        if matching.len() == 1 {
            return Some(matching[0].name.clone());
        }
        let with_resources: Vec<_> = ups
            .iter()
            .filter(|u| {
                u.peer()
                    .is_some_and(|p| p.capabilities().get("resources").is_some())
            })
            .collect();
        (with_resources.len() == 1).then(|| with_resources[0].name.clone())
    }

    /// Records, forwards and records the outcome of one call to a server.
    #[allow(clippy::too_many_arguments)]
    async fn forward(
        &self,
        caller: Caller,
        id: Box<RawValue>,
        method: &str,
        mut params: Params,
        server: String,
        target: String,
        rename: &str,
    ) -> Answer {
        if self.paused() {
            return denial(&id, method, PAUSED, caller.modern);
        }
        let Some(up) = self.upstream(&server) else {
            return Answer::Message(jsonrpc::error(
                Some(&id),
                jsonrpc::INVALID_PARAMS,
                &format!("no server is named {server:?}"),
            ));
        };
        let Some(peer) = up.peer() else {
            return Answer::Message(jsonrpc::error(
                Some(&id),
                jsonrpc::INTERNAL_ERROR,
                &format!(
                    "the server {server:?} is not available right now ({}); Warden restarts it automatically, try again shortly",
                    up.status()
                ),
            ));
        };
        if !rename.is_empty() {
            params.set_str(rename, &target);
        }
        let kind = match method {
            "tools/call" => "tool_call",
            "resources/read" => "resource_read",
            "prompts/get" => "prompt_get",
            _ => "request",
        };
        let call_id = random_id();
        let args = params.0.get("arguments").map(|a| a.get());
        let (arguments, arguments_hash) = self.inner.redactor.arguments(args);
        let tool = if target.is_empty() {
            method.to_string()
        } else {
            target.clone()
        };
        let passthrough = format!("method:{method}");
        let exposed = if caller.scope.is_some() {
            tool.clone()
        } else {
            crate::names::expose(&server, &tool)
        };
        // A tool's risk and pin state come from the server's vetted list.
        let vetted: Option<Arc<ToolInfo>> = if method == "tools/call" {
            match self.index(&up).await {
                Ok(ix) => ix.tools.get(&target).cloned(),
                Err(e) => {
                    tracing::error!(%server, error = %e, "refusing a call whose tool could not be vetted");
                    return Answer::Message(jsonrpc::error(
                        Some(&id),
                        jsonrpc::INTERNAL_ERROR,
                        "Warden could not check this tool against its records, so the call was not sent. Check that the disk has space and the data folder is writable, then try again.",
                    ));
                }
            }
        } else {
            None
        };
        let quarantined =
            method == "tools/call" && !vetted.as_ref().is_some_and(|t| t.state.usable());
        // Prompts and resources are read; tools carry their own risk.
        let risk = vetted.as_ref().map_or(Risk::Low, |t| t.risk);
        let access = &caller.agent.access;
        let mut effect = match method {
            "tools/call" if quarantined => Effect::Deny,
            "tools/call" => access.decide_at(&server, Target::Tool(&target), risk),
            "prompts/get" => access.decide(&server, Target::Prompt(&target)),
            "resources/read" => access.decide(&server, Target::Resource(&target)),
            // Checked by the caller against the prompt or resource it names.
            "completion/complete" => Effect::Allow,
            // Methods Warden does not interpret may do anything: a person
            // is asked unless a grant names the method.
            _ => access.decide_at(&server, Target::Tool(&passthrough), Risk::High),
        };
        let mut approver: Option<String> = None;
        let mut request: Option<ApprovalRequest> = None;
        if effect == Effect::Ask {
            let now = warden_store::now_us();
            let timeout = self.inner.config.read().approvals.timeout_secs;
            // The approval binds everything the call sends but `_meta`
            // (arguments, input responses, request state, task).
            let mut bound = params.0.clone();
            bound.shift_remove("_meta");
            let bound_raw = serde_json::to_string(&bound).unwrap_or_default();
            let (_, binding) = self.inner.redactor.arguments(Some(&bound_raw));
            let mut shown: Option<serde_json::Value> = arguments
                .as_deref()
                .and_then(|a| serde_json::from_str(a).ok());
            bound.shift_remove("arguments");
            bound.shift_remove("name");
            bound.shift_remove("uri");
            if !bound.is_empty() {
                let extra = serde_json::to_string(&bound).unwrap_or_default();
                let (extra, _) = self.inner.redactor.arguments(Some(&extra));
                let extra: serde_json::Value = extra
                    .and_then(|e| serde_json::from_str(&e).ok())
                    .unwrap_or_default();
                shown = Some(serde_json::json!({"arguments": shown, "also sent": extra}));
            }
            let r = ApprovalRequest {
                id: random_id(),
                agent_id: caller.agent.id,
                agent: caller.agent.name.clone(),
                person: caller.agent.owner.clone(),
                chain: caller.agent.chain.clone(),
                server: server.clone(),
                tool: tool.clone(),
                risk,
                why: vetted.as_ref().map_or_else(
                    || vec!["a role's grant says to ask".to_string()],
                    |t| t.why.clone(),
                ),
                arguments: shown,
                arguments_hash: binding.unwrap_or_default(),
                definition_hash: vetted
                    .as_ref()
                    .map(|t| t.definition_hash.clone())
                    .unwrap_or_default(),
                session: caller.session.as_ref().map_or_else(
                    || format!("stateless:{}", caller.agent.id),
                    |s| s.id.clone(),
                ),
                requested_at_us: now,
                expires_at_us: now + (timeout as i64) * 1_000_000,
            };
            // Already approved: these exact arguments for good, or this tool
            // for this session. Never for a critical tool (one call at a
            // time) nor for a delegated caller (the person at the head of
            // its chain is not the one who answered).
            let reusable = risk != Risk::Critical && caller.agent.chain.is_none();
            let standing = if reusable {
                self.inner.standing.read().get(&r.agent_id).and_then(|m| {
                    m.get(&(
                        r.server.clone(),
                        r.tool.clone(),
                        r.arguments_hash.clone(),
                        r.definition_hash.clone(),
                    ))
                    .copied()
                })
            } else {
                None
            };
            if let Some(sid) = standing {
                effect = Effect::Allow;
                approver = Some(format!("standing approval {sid}"));
            } else if reusable && self.inner.broker.session_allows(&r) {
                effect = Effect::Allow;
                approver = Some("session approval".into());
            } else {
                request = Some(r);
            }
        }
        let mut requested = NewEvent {
            kind: format!("{kind}.requested"),
            call_id: Some(call_id.clone()),
            agent: Some(caller.agent.name.clone()),
            on_behalf_of: caller.agent.owner.clone(),
            chain: caller.agent.chain_json(),
            server: Some(server.clone()),
            tool: Some(tool.clone()),
            arguments,
            arguments_hash,
            risk: vetted.as_ref().map(|t| t.risk.as_str().to_string()),
            decision: Some(
                if request.is_some() {
                    "ask"
                } else {
                    effect.as_str()
                }
                .into(),
            ),
            approver,
            ..Default::default()
        };
        if effect == Effect::Deny {
            requested.outcome = Some(
                if quarantined {
                    "quarantined"
                } else {
                    "refused"
                }
                .into(),
            );
            if let Err(e) = self.inner.store.activity().append(requested).await {
                tracing::error!(error = %e, "could not record a refused call");
            }
            let why = if quarantined {
                let new = vetted
                    .as_ref()
                    .is_some_and(|t| t.quarantine.as_deref() == Some("new"));
                format!(
                    "Warden blocked {exposed}: {}, so it is quarantined until an admin reviews it. Ask an admin to run: warden tool review {server} {tool}",
                    if new {
                        "the tool is new on this server"
                    } else {
                        "the server changed this tool's definition after it was approved"
                    }
                )
            } else {
                format!(
                    "Warden denied {exposed}: agent {:?} has no role that allows it. Ask an admin to grant access if it needs it.",
                    caller.agent.name
                )
            };
            return denial(&id, method, &why, caller.modern);
        }
        // Fail closed: nothing is forwarded unless its record is committed.
        if let Err(e) = self.inner.store.activity().append(requested).await {
            tracing::error!(error = %e, %server, "refusing a call that could not be logged");
            return Answer::Message(jsonrpc::error(
                Some(&id),
                jsonrpc::INTERNAL_ERROR,
                "Warden could not record this call in its activity log, so it was not sent. Check that the disk has space and the data folder is writable, then try again.",
            ));
        }
        // The first allowed use pins the definition (an approved call is
        // pinned once approved).
        let pin_now = request.is_none()
            && vetted
                .as_ref()
                .is_some_and(|t| t.state == warden_store::tools::PinState::Seen);
        if pin_now
            && let Some(t) = &vetted
            && let Err(why) = self.pin(&server, &target, &t.definition_hash).await
        {
            return denial(&id, method, &why, caller.modern);
        }

        let (sink_tx, mut sink_rx) = mpsc::unbounded_channel::<Incoming>();
        // `_meta` is read once: a 2026-07-28 client hears log messages only
        // when it asked for them, and a progress token is swapped for ours.
        let mut meta = params.meta();
        let wants_logs = !caller.modern || meta.0.contains_key("io.modelcontextprotocol/logLevel");
        let client_token = meta.0.get("progressToken").map(|t| t.get().to_string());
        if client_token.is_some() {
            meta.set_str(
                "progressToken",
                &format!("w{}", self.inner.next.fetch_add(1, Ordering::Relaxed)),
            );
            params.set_meta(meta);
        }
        let cancel = CancellationToken::new();
        if let Some(s) = &caller.session {
            s.in_flight
                .lock()
                .insert(id.get().to_string(), cancel.clone());
        }
        let timeout = Duration::from_secs(self.inner.config.read().gateway.call_timeout_secs);
        // (final, message, JSON-RPC error code) from the call's task.
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<(bool, String, Option<i64>)>();
        let gw = self.clone();
        let method = method.to_string();
        let session = caller.session.clone();
        let agent = caller.agent.name.clone();
        let owner = caller.agent.owner.clone();
        let chain = caller.agent.chain_json();
        let modern = caller.modern;
        let up = up.clone();
        let vetted_hash = vetted.as_ref().map(|t| t.definition_hash.clone());
        tokio::spawn(async move {
            if let Some(r) = request {
                let waited = gw
                    .await_approval(
                        &up,
                        r,
                        &call_id,
                        &cancel,
                        &out_tx,
                        client_token.as_deref(),
                        &exposed,
                        vetted_hash.as_deref(),
                        &method,
                    )
                    .await;
                // Paused while the person was being asked: nothing goes out.
                let waited = waited.and_then(|()| {
                    if gw.paused() {
                        Err((PAUSED.to_string(), "refused"))
                    } else {
                        Ok(())
                    }
                });
                if let Err((why, outcome)) = waited {
                    if let Some(s) = &session {
                        s.in_flight.lock().remove(id.get());
                    }
                    let _ = out_tx.send((true, denial_message(&id, &method, &why, modern), None));
                    let completed = NewEvent {
                        kind: format!("{kind}.completed"),
                        call_id: Some(call_id),
                        agent: Some(agent),
                        on_behalf_of: owner,
                        chain,
                        server: Some(server),
                        tool: Some(tool),
                        outcome: Some(outcome.into()),
                        ..Default::default()
                    };
                    if let Err(e) = gw.inner.store.activity().append(completed).await {
                        tracing::error!(error = %e, "could not record a call's outcome");
                    }
                    return;
                }
            }
            let started = Instant::now();
            // A legacy client cannot answer a 2026-07-28 server's
            // input_required result itself: the gateway asks it each input
            // request as a server request and retries with the answers.
            let upstream_modern = matches!(peer.era, upstream::Era::Modern(_));
            let mut params = params;
            if upstream_modern
                && let Some(level) = session.as_ref().and_then(|s| s.log_level.lock().clone())
            {
                let mut meta = params.meta();
                meta.set_str("io.modelcontextprotocol/logLevel", &level);
                params.set_meta(meta);
            }
            let retry_base = (!modern && upstream_modern).then(|| params.clone());
            let mut next = Some(params);
            let mut rounds = 0;
            // A server that floods notifications during a call gets the first
            // few thousand through; the rest are dropped, so a slow client
            // cannot make Warden hold them all.
            let mut notes = NoteBudget::default();
            let reply = loop {
                let Some(p) = next.take() else {
                    break Err(upstream::PeerError::Cancelled);
                };
                let call = peer.call(&method, p, Some(sink_tx.clone()), timeout, Some(&cancel));
                tokio::pin!(call);
                let r = loop {
                    tokio::select! {
                        // Messages about the call go first, so none is
                        // overtaken by the answer.
                        biased;
                        Some(msg) = sink_rx.recv() => {
                            if !notes.admit(&msg, &peer.server) {
                                continue;
                            }
                            if let Some(m) = gw.relay_to_client(&peer, session.as_ref(), msg, client_token.as_deref(), wants_logs).await {
                                let _ = out_tx.send((false, m, None));
                            }
                        }
                        r = &mut call => break r,
                    }
                };
                // What the server sent just before its answer is delivered too.
                while let Ok(msg) = sink_rx.try_recv() {
                    if !notes.admit(&msg, &peer.server) {
                        continue;
                    }
                    if let Some(m) = gw
                        .relay_to_client(
                            &peer,
                            session.as_ref(),
                            msg,
                            client_token.as_deref(),
                            wants_logs,
                        )
                        .await
                    {
                        let _ = out_tx.send((false, m, None));
                    }
                }
                match (&r, &retry_base) {
                    (Ok(Reply::Result(res)), Some(base))
                        if rounds < 10 && is_input_required(res) =>
                    {
                        rounds += 1;
                        match gw
                            .gather_inputs(&peer.server, session.as_ref(), res, &out_tx, timeout)
                            .await
                        {
                            Ok(extra) => {
                                let mut p = base.clone();
                                for (k, v) in extra {
                                    p.set_raw(k, v);
                                }
                                next = Some(p);
                            }
                            Err(why) => {
                                break Ok(Reply::Error(jsonrpc::error_object(
                                    jsonrpc::INTERNAL_ERROR,
                                    &why,
                                )));
                            }
                        }
                    }
                    _ => break r,
                }
            };
            if let Some(s) = &session {
                s.in_flight.lock().remove(id.get());
            }
            let latency = started.elapsed().as_micros() as i64;
            let error_code = match &reply {
                Ok(Reply::Error(e)) => serde_json::from_str::<serde_json::Value>(e.get())
                    .ok()
                    .and_then(|v| v["code"].as_i64()),
                _ => None,
            };
            let (message, outcome) = match reply {
                Ok(Reply::Result(r)) => {
                    let tool_error = r.get().contains("\"isError\":true");
                    let r = if modern { modern_result(&method, r) } else { r };
                    (
                        jsonrpc::response(&id, &r),
                        if tool_error { "tool_error" } else { "ok" }.to_string(),
                    )
                }
                Ok(Reply::Error(e)) => {
                    (jsonrpc::error_response(Some(&id), &e), "error".to_string())
                }
                Err(e) => {
                    let text = format!("the server {server:?} could not complete the request: {e}");
                    (
                        jsonrpc::error(Some(&id), jsonrpc::INTERNAL_ERROR, &text),
                        format!("failed: {e}"),
                    )
                }
            };
            let _ = out_tx.send((true, message, error_code));
            let completed = NewEvent {
                kind: format!("{kind}.completed"),
                call_id: Some(call_id),
                agent: Some(agent),
                on_behalf_of: owner,
                chain,
                server: Some(server),
                tool: Some(tool),
                outcome: Some(outcome),
                latency_us: Some(latency),
                ..Default::default()
            };
            // Nothing waits on the outcome: it shares the next commit.
            gw.inner.store.activity().record(completed);
        });

        match out_rx.recv().await {
            Some((true, message, Some(code))) if caller.modern => match code {
                jsonrpc::METHOD_NOT_FOUND => Answer::NotFound(message),
                // Errors about the request itself are HTTP 400 on 2026-07-28.
                -32022..=-32020 => Answer::BadRequest(message),
                _ => Answer::Message(message),
            },
            Some((true, message, _)) => Answer::Message(message),
            Some((false, first, _)) => {
                let (tx, rx) = outbox();
                tx.send(first);
                tokio::spawn(async move {
                    while let Some((last, m, _)) = out_rx.recv().await {
                        if !tx.send(m) || last {
                            break;
                        }
                    }
                });
                Answer::Stream(rx)
            }
            None => Answer::Message(jsonrpc::error(
                None,
                jsonrpc::INTERNAL_ERROR,
                "the call ended without an answer",
            )),
        }
    }

    /// Pins the definition a tool is first allowed with. Fails closed.
    async fn pin(&self, server: &str, tool: &str, hash: &str) -> std::result::Result<(), String> {
        let store = self.inner.store.clone();
        let (s, t, h) = (server.to_string(), tool.to_string(), hash.to_string());
        let pinned = tokio::task::spawn_blocking(move || {
            warden_store::tools::pin_first_use(&store.connect()?, &s, &t, &h)
        })
        .await;
        match pinned {
            Ok(Ok(_)) => {
                self.inner.vetting.write().remove(server);
                Ok(())
            }
            Ok(Err(e)) => {
                tracing::error!(%server, %tool, error = %e, "could not pin a tool's definition");
                Err("Warden could not record this tool's definition, so the call was not sent. Check that the disk has space and the data folder is writable, then try again.".into())
            }
            Err(e) => Err(format!(
                "Warden could not record this tool's definition: {e}"
            )),
        }
    }

    /// Waits for a person's answer to a call that needs one. `Ok` when
    /// approved, after the decision is committed to the activity log;
    /// otherwise what the agent is told and the call's outcome.
    #[allow(clippy::too_many_arguments)]
    async fn await_approval(
        &self,
        up: &Upstream,
        r: ApprovalRequest,
        call_id: &str,
        cancel: &CancellationToken,
        out_tx: &mpsc::UnboundedSender<(bool, String, Option<i64>)>,
        client_token: Option<&str>,
        exposed: &str,
        vetted_hash: Option<&str>,
        method: &str,
    ) -> std::result::Result<(), (String, &'static str)> {
        let timeout = Duration::from_secs(self.inner.config.read().approvals.timeout_secs);
        let person = r.person.clone().unwrap_or_else(|| "an admin".into());
        let deadline = Instant::now() + timeout;
        let ask = self.inner.broker.ask(r.clone(), timeout, cancel);
        tokio::pin!(ask);
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        let mut step = 0u64;
        let mut gone = false;
        let outcome = loop {
            tokio::select! {
                o = &mut ask => break o,
                _ = tick.tick(), if client_token.is_some() && !gone => {
                    // Progress keeps a client with a short timeout waiting.
                    step += 1;
                    let left = deadline.saturating_duration_since(Instant::now()).as_secs();
                    let message = format!(
                        "Waiting for {person} to approve {exposed} (denied in {left} s if nobody answers)"
                    );
                    let params = serde_json::json!({
                        "progressToken": serde_json::from_str::<serde_json::Value>(client_token.unwrap_or("null")).unwrap_or_default(),
                        "progress": step,
                        "message": message,
                    });
                    let note = jsonrpc::notification("notifications/progress", Some(&jsonrpc::to_raw(&params)));
                    if out_tx.send((false, note, None)).is_err() {
                        gone = true;
                        cancel.cancel();
                    }
                }
                _ = out_tx.closed(), if !gone => {
                    // The client went away: the request is withdrawn.
                    gone = true;
                    cancel.cancel();
                }
            }
        };
        let (decision, approver, result, detail) = match &outcome {
            Outcome::Approved {
                by,
                choice,
                step_up,
            } => (
                "allow",
                Some(by.clone()),
                "approved",
                serde_json::json!({"approval": r.id, "choice": choice.as_str(), "step_up": step_up}),
            ),
            Outcome::Denied { by, reason } => (
                "deny",
                Some(by.clone()),
                "denied",
                serde_json::json!({"approval": r.id, "reason": reason}),
            ),
            Outcome::TimedOut => (
                "deny",
                None,
                "timed_out",
                serde_json::json!({"approval": r.id, "timeout_secs": timeout.as_secs()}),
            ),
            Outcome::Withdrawn => (
                "deny",
                None,
                "withdrawn",
                serde_json::json!({"approval": r.id}),
            ),
        };
        let event = NewEvent {
            kind: "approval.decided".into(),
            call_id: Some(call_id.to_string()),
            agent: Some(r.agent.clone()),
            on_behalf_of: r.person.clone(),
            chain: r.chain.as_ref().and_then(|c| serde_json::to_string(c).ok()),
            server: Some(r.server.clone()),
            tool: Some(r.tool.clone()),
            arguments_hash: Some(r.arguments_hash.clone()),
            risk: Some(r.risk.as_str().into()),
            decision: Some(decision.into()),
            approver: approver.clone(),
            outcome: Some(result.into()),
            detail: Some(detail.to_string()),
            ..Default::default()
        };
        let logged = self.inner.store.activity().append(event).await;
        let why = match outcome {
            Outcome::Approved { choice, by, .. } => {
                if let Err(e) = logged {
                    tracing::error!(error = %e, "refusing an approved call whose approval could not be logged");
                    return Err((
                        "Warden could not record the approval in its activity log, so the call was not sent. Check that the disk has space, then try again.".into(),
                        "failed",
                    ));
                }
                // The agent must still be allowed to ask: not revoked, its
                // grants not turned to deny, its delegation not ended.
                if let Err(why) = self.still_allowed(&r, method) {
                    return Err((format!("Warden blocked {exposed}: {why}"), "denied"));
                }
                // A tool must still be the one that was approved.
                if method == "tools/call" {
                    let current = self
                        .index(up)
                        .await
                        .ok()
                        .and_then(|ix| ix.tools.get(&r.tool).cloned());
                    match current {
                        Some(t)
                            if t.state.usable()
                                && Some(t.definition_hash.as_str()) == vetted_hash =>
                        {
                            if t.state == warden_store::tools::PinState::Seen {
                                self.pin(&r.server, &r.tool, &t.definition_hash)
                                    .await
                                    .map_err(|w| (w, "failed"))?;
                            }
                        }
                        _ => {
                            return Err((
                                format!(
                                    "Warden blocked {exposed}: the server changed the tool while the approval was pending, so the approval no longer applies. Ask again."
                                ),
                                "denied",
                            ));
                        }
                    }
                }
                if choice == Choice::Always {
                    self.add_standing(&r, &by).await;
                }
                return Ok(());
            }
            Outcome::Denied { by, reason } => format!(
                "Warden: {by} denied {exposed} for agent {:?}.{} Do not retry it; tell the person what was denied.",
                r.agent,
                reason.map(|x| format!(" Reason: {x}.")).unwrap_or_default()
            ),
            Outcome::TimedOut => format!(
                "Warden denied {exposed}: nobody approved it within {} seconds (the request went to {person}). Ask {person} to watch for Warden's approval prompt, then try again.",
                timeout.as_secs()
            ),
            Outcome::Withdrawn => {
                format!("The call to {exposed} was withdrawn before anyone answered.")
            }
        };
        if let Err(e) = logged {
            tracing::error!(error = %e, "could not record a denied approval");
        }
        Err((why, result))
    }

    /// Whether the agent behind an approved request may still make it.
    fn still_allowed(&self, r: &ApprovalRequest, method: &str) -> std::result::Result<(), String> {
        let access = self
            .inner
            .agents
            .read()
            .values()
            .find(|a| a.id == r.agent_id)
            .map(|a| a.access.clone())
            .ok_or(
                "the agent's credential was revoked or suspended while the approval was pending",
            )?;
        if r.chain.is_some()
            && !self
                .inner
                .delegations
                .read()
                .values()
                .any(|d| d.agent.id == r.agent_id)
        {
            return Err(
                "the delegation this agent acted under ended while the approval was pending".into(),
            );
        }
        let passthrough = format!("method:{method}");
        let target = match method {
            "tools/call" => Target::Tool(&r.tool),
            "prompts/get" => Target::Prompt(&r.tool),
            "resources/read" => Target::Resource(&r.tool),
            _ => Target::Tool(&passthrough),
        };
        if access.decide_at(&r.server, target, r.risk) == Effect::Deny {
            return Err("the agent's access changed while the approval was pending".into());
        }
        Ok(())
    }

    async fn add_standing(&self, r: &ApprovalRequest, by: &str) {
        let store = self.inner.store.clone();
        let r = r.clone();
        let by = by.to_string();
        let added = tokio::task::spawn_blocking(move || {
            let conn = store.connect()?;
            let arguments = r.arguments.as_ref().map(|a| a.to_string());
            warden_store::tools::add_standing(
                &conn,
                &warden_store::tools::NewStanding {
                    agent_id: r.agent_id,
                    server: &r.server,
                    tool: &r.tool,
                    arguments_hash: &r.arguments_hash,
                    definition_hash: &r.definition_hash,
                    arguments: arguments.as_deref(),
                    created_by: &by,
                },
            )
        })
        .await;
        match added {
            Ok(Ok(_)) => {
                if let Err(e) = self.reload_standing() {
                    tracing::error!(error = %e, "could not reload standing approvals");
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "could not save a standing approval"),
            Err(e) => tracing::error!(error = %e, "could not save a standing approval"),
        }
    }

    /// Records a request a server made of a client (sampling, elicitation,
    /// roots), attributed like a tool call: the agent whose call it came
    /// with, and the person that agent acts for.
    async fn record_server_request(
        &self,
        server: &str,
        method: &str,
        agent: Option<&AgentRef>,
        outcome: &str,
    ) {
        let event = NewEvent {
            kind: "server_request".into(),
            server: Some(server.to_string()),
            tool: Some(method.to_string()),
            agent: agent.map(|a| a.name.clone()),
            on_behalf_of: agent.and_then(|a| a.owner.clone()),
            outcome: Some(outcome.into()),
            ..Default::default()
        };
        if let Err(e) = self.inner.store.activity().append(event).await {
            tracing::error!(error = %e, "could not record a server's request");
        }
    }

    /// Asks the client each input request of an input_required result and
    /// returns the params to retry with (inputResponses, requestState).
    async fn gather_inputs(
        &self,
        peer_server: &str,
        session: Option<&Arc<Session>>,
        result: &RawValue,
        out: &mpsc::UnboundedSender<(bool, String, Option<i64>)>,
        timeout: Duration,
    ) -> Result<Vec<(&'static str, Box<RawValue>)>, String> {
        let value: serde_json::Value =
            serde_json::from_str(result.get()).map_err(|e| e.to_string())?;
        let mut responses = serde_json::Map::new();
        if let Some(requests) = value["inputRequests"].as_object() {
            let session = session
                .ok_or("the server needs input that only a client with a session can give")?;
            let mut waits = Vec::new();
            for (key, request) in requests {
                let method = request["method"].as_str().unwrap_or_default();
                let capability = match method {
                    "sampling/createMessage" => "sampling",
                    "elicitation/create" => "elicitation",
                    "roots/list" => "roots",
                    other => {
                        return Err(format!(
                            "the server asked for {other}, which Warden cannot relay"
                        ));
                    }
                };
                if self.paused() {
                    return Err(
                        "Warden has paused every agent, so the server's question was not passed on"
                            .into(),
                    );
                }
                if !session.can(capability) {
                    return Err(format!(
                        "the server needs {capability}, which this client does not support"
                    ));
                }
                let our_id = format!("\"w{}\"", self.inner.next.fetch_add(1, Ordering::Relaxed));
                let (tx, rx) = tokio::sync::oneshot::channel();
                session
                    .relayed
                    .lock()
                    .insert(our_id.clone(), Relayed::Local(tx));
                self.record_server_request(peer_server, method, Some(&session.agent), "relayed")
                    .await;
                let params = jsonrpc::to_raw(&request["params"]);
                let _ = out.send((
                    false,
                    jsonrpc::request(&our_id, method, Some(&params)),
                    None,
                ));
                waits.push((key.clone(), rx));
            }
            for (key, rx) in waits {
                match tokio::time::timeout(timeout, rx).await {
                    Ok(Ok(Reply::Result(r))) => {
                        let v: serde_json::Value =
                            serde_json::from_str(r.get()).unwrap_or_default();
                        responses.insert(key, v);
                    }
                    Ok(Ok(Reply::Error(e))) => {
                        return Err(format!(
                            "the client declined the server's request: {}",
                            e.get()
                        ));
                    }
                    _ => return Err("the client did not answer the server's request".into()),
                }
            }
        }
        let mut extra = vec![("inputResponses", jsonrpc::to_raw(&responses))];
        if let Some(state) = value.get("requestState").filter(|s| !s.is_null()) {
            extra.push(("requestState", jsonrpc::to_raw(state)));
        }
        Ok(extra)
    }

    /// Turns a server message about a call into one for the client, or
    /// answers it here when the client cannot take it.
    async fn relay_to_client(
        &self,
        peer: &Arc<upstream::Peer>,
        session: Option<&Arc<Session>>,
        msg: Incoming,
        client_token: Option<&str>,
        wants_logs: bool,
    ) -> Option<String> {
        let env = msg.env;
        let method = env.method.clone().unwrap_or_default();
        match env.kind() {
            Some(Kind::Notification) if method == "notifications/message" && !wants_logs => None,
            Some(Kind::Notification) => {
                let mut params = env.params_map().ok()?;
                if method == "notifications/progress" {
                    params.set_raw("progressToken", jsonrpc::raw(client_token?));
                }
                Some(jsonrpc::notification(&method, Some(&params.to_raw())))
            }
            Some(Kind::Request) => {
                let upstream_id = env.id.clone()?;
                let capability = match method.as_str() {
                    "sampling/createMessage" => Some("sampling"),
                    "elicitation/create" => Some("elicitation"),
                    "roots/list" => Some("roots"),
                    "ping" => None,
                    _ => Some("-"),
                };
                // While every agent is paused, no server reaches one either.
                let paused = self.paused() && method != "ping";
                let session = match session {
                    Some(s) if !paused && capability.is_none_or(|c| s.can(c)) => s,
                    _ => {
                        if method != "ping" {
                            self.record_server_request(
                                &peer.server,
                                &method,
                                session.map(|s| &s.agent),
                                "refused",
                            )
                            .await;
                        }
                        let reply = if method == "ping" {
                            Reply::Result(jsonrpc::raw("{}"))
                        } else {
                            Reply::Error(jsonrpc::error_object(
                                jsonrpc::METHOD_NOT_FOUND,
                                &if paused {
                                    format!(
                                        "Warden has paused every agent, so {method} was not passed on"
                                    )
                                } else {
                                    format!("the client does not support {method}")
                                },
                            ))
                        };
                        let _ = peer.respond(&upstream_id, reply).await;
                        return None;
                    }
                };
                let our_id = format!("\"w{}\"", self.inner.next.fetch_add(1, Ordering::Relaxed));
                session.relayed.lock().insert(
                    our_id.clone(),
                    Relayed::Upstream(peer.server.clone(), upstream_id),
                );
                if method != "ping" {
                    self.record_server_request(
                        &peer.server,
                        &method,
                        Some(&session.agent),
                        "relayed",
                    )
                    .await;
                }
                Some(jsonrpc::request(&our_id, &method, env.params.as_deref()))
            }
            _ => None,
        }
    }

    async fn on_client_response(&self, caller: &Caller, env: Envelope) {
        let (Some(session), Some(id)) = (&caller.session, &env.id) else {
            return;
        };
        if self.paused() {
            // Nothing from an agent reaches a server while paused; the
            // server's request was already refused or will time out.
            session.relayed.lock().remove(id.get());
            return;
        }
        let Some(target) = session.relayed.lock().remove(id.get()) else {
            return;
        };
        let reply = match (env.result, env.error) {
            (Some(r), _) => Reply::Result(r),
            (None, Some(e)) => Reply::Error(e),
            _ => return,
        };
        match target {
            Relayed::Local(tx) => {
                let _ = tx.send(reply);
            }
            Relayed::Upstream(server, upstream_id) => {
                if let Some(peer) = self.upstream(&server).and_then(|u| u.peer()) {
                    let _ = peer.respond(&upstream_id, reply).await;
                }
            }
        }
    }

    async fn on_client_notification(&self, caller: &Caller, env: &Envelope) {
        match env.method.as_deref() {
            Some("notifications/cancelled") => {
                let Some(session) = &caller.session else {
                    return;
                };
                let Ok(params) = env.params_map() else { return };
                if let Some(rid) = params.0.get("requestId")
                    && let Some(token) = session.in_flight.lock().remove(rid.get())
                {
                    token.cancel();
                }
            }
            Some("notifications/roots/list_changed") => {
                // Only servers this agent may use hear about its roots.
                for up in self.ready_upstreams(caller.scope.as_deref()) {
                    if !caller.agent.access.touches(&up.name) {
                        continue;
                    }
                    if let Some(peer) = up.peer() {
                        let _ = peer.notify("notifications/roots/list_changed", None).await;
                    }
                }
            }
            _ => {}
        }
    }
}

fn is_input_required(result: &RawValue) -> bool {
    Params::parse(result.get())
        .is_ok_and(|p| p.str("resultType").as_deref() == Some("input_required"))
}

/// The answer to a call that policy refused: for a tool, a tool error the
/// agent can read and relay (never a fake success); otherwise an error.
pub const FORBIDDEN: i64 = -32001;

fn denial(id: &RawValue, method: &str, why: &str, modern: bool) -> Answer {
    Answer::Message(denial_message(id, method, why, modern))
}

fn denial_message(id: &RawValue, method: &str, why: &str, modern: bool) -> String {
    if method == "tools/call" {
        let mut result =
            serde_json::json!({"content": [{"type": "text", "text": why}], "isError": true});
        if modern {
            result["resultType"] = serde_json::json!("complete");
        }
        jsonrpc::response(id, &jsonrpc::to_raw(&result))
    } else {
        jsonrpc::error(Some(id), FORBIDDEN, why)
    }
}

/// How many notifications one call passes on to its client.
const NOTES_PER_CALL: usize = 2000;

/// Counts a call's notifications; requests and answers always pass.
#[derive(Default)]
struct NoteBudget {
    passed: usize,
    dropped: usize,
}

impl NoteBudget {
    fn admit(&mut self, msg: &Incoming, server: &str) -> bool {
        if msg.env.kind() != Some(jsonrpc::Kind::Notification) {
            return true;
        }
        if self.passed < NOTES_PER_CALL {
            self.passed += 1;
            return true;
        }
        if self.dropped == 0 {
            tracing::warn!(%server, limit = NOTES_PER_CALL, "a server sent more notifications during one call than Warden passes on; dropping the rest");
        }
        self.dropped += 1;
        false
    }
}

/// What a call hears while every agent is paused.
const PAUSED: &str = "Warden has paused every agent, so this call was not sent. The person at this computer can resume agents from Warden's tray menu or its header.";

/// How often a waiting call's client hears progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// A result as a 2026-07-28 client expects it: `resultType` always, and the
/// caching fields on cacheable methods. Results that have them pass as sent.
fn modern_result(method: &str, raw: Box<RawValue>) -> Box<RawValue> {
    let cacheable = method == "resources/read";
    let Ok(mut fields) = Params::parse(raw.get()) else {
        return raw;
    };
    let missing_type = !fields.0.contains_key("resultType");
    let missing_cache = cacheable && !fields.0.contains_key("ttlMs");
    if !missing_type && !missing_cache {
        return raw;
    }
    if missing_type {
        fields.set_str("resultType", "complete");
    }
    if missing_cache {
        fields.set_raw("ttlMs", jsonrpc::raw("0"));
        fields.set_str("cacheScope", "private");
    }
    fields.to_raw()
}

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

/// Whether `uri` fits an RFC 6570 level-1 template (each `{var}` matches a
/// non-empty run of characters).
fn template_matches(template: &str, uri: &str) -> bool {
    let mut parts = template.split('{');
    let Some(prefix) = parts.next() else {
        return false;
    };
    let Some(mut rest) = uri.strip_prefix(prefix) else {
        return false;
    };
    for part in parts {
        let Some((_, literal)) = part.split_once('}') else {
            return false;
        };
        if literal.is_empty() {
            return !rest.is_empty();
        }
        match rest.find(literal) {
            Some(i) if i > 0 => rest = &rest[i + literal.len()..],
            _ => return false,
        }
    }
    rest.is_empty()
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

#[cfg(test)]
mod tests {
    use super::template_matches;

    #[test]
    fn templates_match_their_uris_only() {
        assert!(template_matches(
            "demo://resource/{id}",
            "demo://resource/7"
        ));
        assert!(template_matches("file:///{path}.txt", "file:///a/b.txt"));
        assert!(!template_matches("demo://resource/{id}", "demo://other/7"));
        assert!(!template_matches(
            "demo://resource/{id}",
            "demo://resource/"
        ));
    }
}
