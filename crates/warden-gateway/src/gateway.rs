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

use crate::config::{Config, ServerSpec};
use crate::jsonrpc::{self, Envelope, Kind, Params};
use crate::upstream::mux::{Incoming, Reply};
use crate::upstream::{self, Event, ListKind, SecretResolver, Status, Upstream};
use crate::{Error, Result, redact};

/// Who is calling: the agent behind the credential.
#[derive(Debug, Clone)]
pub struct AgentRef {
    pub id: i64,
    pub name: String,
}

/// A legacy (initialize-based) client session.
pub struct Session {
    pub id: String,
    pub agent: AgentRef,
    pub scope: Option<String>,
    pub version: String,
    capabilities: serde_json::Value,
    stream: Mutex<Option<mpsc::UnboundedSender<String>>>,
    /// Requests we relayed to the client: our id → (server, server's id).
    relayed: Mutex<HashMap<String, (String, Box<RawValue>)>>,
    /// Requests in flight from this client: its id → cancel.
    in_flight: Mutex<HashMap<String, CancellationToken>>,
}

impl Session {
    fn can(&self, capability: &str) -> bool {
        self.capabilities.get(capability).is_some()
    }

    pub fn attach_stream(&self, tx: mpsc::UnboundedSender<String>) {
        *self.stream.lock() = Some(tx);
    }

    fn push(&self, message: String) {
        let mut stream = self.stream.lock();
        if let Some(tx) = stream.as_ref()
            && tx.send(message).is_err()
        {
            *stream = None;
        }
    }
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
    Stream(mpsc::UnboundedReceiver<String>),
    /// Nothing to send back (a notification or response was accepted).
    Accepted,
    /// A new legacy session with its first answer.
    Session(Arc<Session>, String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerInfo {
    pub name: String,
    pub transport: String,
    pub target: String,
    #[serde(flatten)]
    pub status: Status,
    pub era: Option<upstream::Era>,
    pub tools: usize,
    pub restarts: u32,
}

struct Inner {
    store: Store,
    config_path: PathBuf,
    config: RwLock<Config>,
    upstreams: RwLock<BTreeMap<String, Arc<Upstream>>>,
    agents: RwLock<HashMap<String, AgentRef>>,
    sessions: RwLock<HashMap<String, Arc<Session>>>,
    secrets: SecretResolver,
    events: mpsc::UnboundedSender<Event>,
    next: AtomicU64,
    shutdown: CancellationToken,
}

#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

const PAGE_SIZE: usize = 1000;
const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");

impl Gateway {
    /// Starts every configured server and loads the agents. Must run inside a
    /// tokio runtime.
    pub fn start(
        store: Store,
        config_path: PathBuf,
        config: Config,
        secrets: SecretResolver,
    ) -> Result<Gateway> {
        let (events, events_rx) = mpsc::unbounded_channel();
        let gw = Gateway {
            inner: Arc::new(Inner {
                store,
                config_path,
                config: RwLock::new(config.clone()),
                upstreams: RwLock::new(BTreeMap::new()),
                agents: RwLock::new(HashMap::new()),
                sessions: RwLock::new(HashMap::new()),
                secrets,
                events,
                next: AtomicU64::new(1),
                shutdown: CancellationToken::new(),
            }),
        };
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
        let up = Upstream::start(
            name.clone(),
            spec,
            self.inner.secrets.clone(),
            self.inner.events.clone(),
        );
        self.inner.upstreams.write().insert(name, up);
    }

    /// Re-reads the agents that may authenticate. Called after any change.
    pub fn reload_agents(&self) -> Result<()> {
        let conn = self.inner.store.connect()?;
        let keys = warden_store::agent::active_keys(&conn)?;
        let map = keys
            .into_iter()
            .map(|k| {
                (
                    k.credential_hash,
                    AgentRef {
                        id: k.agent.id,
                        name: k.agent.name,
                    },
                )
            })
            .collect();
        *self.inner.agents.write() = map;
        // Sessions of agents that can no longer authenticate end now.
        let live: std::collections::HashSet<i64> =
            self.inner.agents.read().values().map(|a| a.id).collect();
        self.inner
            .sessions
            .write()
            .retain(|_, s| live.contains(&s.agent.id));
        Ok(())
    }

    pub fn authenticate(&self, bearer: &str) -> Option<AgentRef> {
        let hash = warden_auth::hash_credential(bearer);
        let agent = self.inner.agents.read().get(&hash).cloned()?;
        self.inner.store.activity().touch_agent(agent.id);
        Some(agent)
    }

    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        self.inner.sessions.read().get(id).cloned()
    }

    pub fn end_session(&self, id: &str) -> bool {
        self.inner.sessions.write().remove(id).is_some()
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
    pub fn server_tools(&self, name: &str) -> Result<Vec<serde_json::Value>> {
        let up = self
            .upstream(name)
            .ok_or_else(|| Error::NotFound(format!("no server is named {name:?}")))?;
        match up.status() {
            Status::Ready => {}
            other => {
                return Err(Error::Unavailable(format!("server {name:?} is {other}")));
            }
        }
        Ok(up
            .catalog()
            .tools
            .iter()
            .filter_map(|t| serde_json::from_str(t.raw.get()).ok())
            .collect())
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
                Event::Changed { server, kinds } => self.notify_changed(&server, &kinds),
                Event::Broadcast { server, env } => {
                    let method = env.method.clone().unwrap_or_default();
                    let params = env.params.as_deref();
                    let message = jsonrpc::notification(&method, params);
                    for s in self.sessions_for(&server) {
                        s.push(message.clone());
                    }
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
            "ping" => ok(serde_json::json!({})),
            "tools/list" => self.list(&caller, &id, &params, ListKind::Tools, modern),
            "resources/list" => self.list(&caller, &id, &params, ListKind::Resources, modern),
            "resources/templates/list" => {
                self.list(&caller, &id, &params, ListKind::Templates, modern)
            }
            "prompts/list" => self.list(&caller, &id, &params, ListKind::Prompts, modern),
            "logging/setLevel" => {
                for up in self.ready_upstreams(caller.scope.as_deref()) {
                    if let Some(peer) = up
                        .peer()
                        .filter(|p| p.capabilities().get("logging").is_some())
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
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
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
                    Answer::Message(jsonrpc::error(
                        Some(&id),
                        jsonrpc::METHOD_NOT_FOUND,
                        &format!("method not found: {other}"),
                    ))
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
        let mut result = self.server_description(scope);
        let mut versions = vec![upstream::MODERN_VERSION.to_string()];
        versions.extend(upstream::LEGACY_VERSIONS.iter().map(|v| v.to_string()));
        result["supportedVersions"] = serde_json::json!(versions);
        result["resultType"] = serde_json::json!("complete");
        result["ttlMs"] = serde_json::json!(0);
        result["cacheScope"] = serde_json::json!("private");
        result
    }

    /// Capabilities, identity and instructions: Warden's own on the
    /// aggregated endpoint, the server's on a single server's endpoint.
    fn server_description(&self, scope: Option<&str>) -> serde_json::Value {
        if let Some(peer) = scope.and_then(|s| self.upstream(s)).and_then(|u| u.peer()) {
            let mut d = serde_json::json!({
                "capabilities": peer.info["capabilities"].clone(),
                "serverInfo": peer.info["serverInfo"].clone(),
            });
            if let Some(i) = peer.info.get("instructions") {
                d["instructions"] = i.clone();
            }
            return d;
        }
        serde_json::json!({
            "capabilities": {
                "tools": {"listChanged": true},
                "resources": {"listChanged": true, "subscribe": true},
                "prompts": {"listChanged": true},
                "logging": {},
                "completions": {}
            },
            "serverInfo": {"name": "warden", "title": "Warden MCP gateway", "version": SERVER_VERSION},
            "instructions": "Tools, resources and prompts of several MCP servers, named <server>__<name>."
        })
    }

    fn list(
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
        let catalogs: Vec<_> = ups.iter().map(|u| u.catalog()).collect();
        for c in &catalogs {
            let items = match kind {
                ListKind::Tools => &c.tools,
                ListKind::Resources => &c.resources,
                ListKind::Templates => &c.templates,
                ListKind::Prompts => &c.prompts,
            };
            all.extend(
                items
                    .iter()
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
        let (arguments, arguments_hash) = redact::arguments(args);
        let tool = if target.is_empty() {
            method.to_string()
        } else {
            target.clone()
        };
        let requested = NewEvent {
            kind: format!("{kind}.requested"),
            call_id: Some(call_id.clone()),
            agent: Some(caller.agent.name.clone()),
            server: Some(server.clone()),
            tool: Some(tool.clone()),
            arguments,
            arguments_hash,
            decision: Some("allow".into()),
            ..Default::default()
        };
        // Fail closed: nothing is forwarded unless its record is committed.
        if let Err(e) = self.inner.store.activity().append(requested).await {
            tracing::error!(error = %e, %server, "refusing a call that could not be logged");
            return Answer::Message(jsonrpc::error(
                Some(&id),
                jsonrpc::INTERNAL_ERROR,
                "Warden could not record this call in its activity log, so it was not sent. Check that the disk has space and the data folder is writable, then try again.",
            ));
        }

        let (sink_tx, mut sink_rx) = mpsc::unbounded_channel::<Incoming>();
        let client_token = params
            .meta()
            .0
            .get("progressToken")
            .map(|t| t.get().to_string());
        if client_token.is_some() {
            let mut meta = params.meta();
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
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<(bool, String)>();
        let gw = self.clone();
        let method = method.to_string();
        let session = caller.session.clone();
        let agent = caller.agent.name.clone();
        let modern = caller.modern;
        tokio::spawn(async move {
            let started = Instant::now();
            let call = peer.call(&method, params, Some(sink_tx), timeout, Some(&cancel));
            tokio::pin!(call);
            let reply = loop {
                tokio::select! {
                    r = &mut call => break r,
                    Some(msg) = sink_rx.recv() => {
                        if let Some(m) = gw.relay_to_client(&peer, session.as_ref(), msg, client_token.as_deref()).await {
                            let _ = out_tx.send((false, m));
                        }
                    }
                }
            };
            if let Some(s) = &session {
                s.in_flight.lock().remove(id.get());
            }
            let latency = started.elapsed().as_micros() as i64;
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
            let _ = out_tx.send((true, message));
            let completed = NewEvent {
                kind: format!("{kind}.completed"),
                call_id: Some(call_id),
                agent: Some(agent),
                server: Some(server),
                tool: Some(tool),
                outcome: Some(outcome),
                latency_us: Some(latency),
                ..Default::default()
            };
            if let Err(e) = gw.inner.store.activity().append(completed).await {
                tracing::error!(error = %e, "could not record a call's outcome");
            }
        });

        match out_rx.recv().await {
            Some((true, message)) => Answer::Message(message),
            Some((false, first)) => {
                let (tx, rx) = mpsc::unbounded_channel();
                let _ = tx.send(first);
                tokio::spawn(async move {
                    while let Some((last, m)) = out_rx.recv().await {
                        if tx.send(m).is_err() || last {
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

    /// Turns a server message about a call into one for the client, or
    /// answers it here when the client cannot take it.
    async fn relay_to_client(
        &self,
        peer: &Arc<upstream::Peer>,
        session: Option<&Arc<Session>>,
        msg: Incoming,
        client_token: Option<&str>,
    ) -> Option<String> {
        let env = msg.env;
        let method = env.method.clone().unwrap_or_default();
        match env.kind() {
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
                let session = match session {
                    Some(s) if capability.is_none_or(|c| s.can(c)) => s,
                    _ => {
                        let reply = if method == "ping" {
                            Reply::Result(jsonrpc::raw("{}"))
                        } else {
                            Reply::Error(jsonrpc::error_object(
                                jsonrpc::METHOD_NOT_FOUND,
                                &format!("the client does not support {method}"),
                            ))
                        };
                        let _ = peer.respond(&upstream_id, reply).await;
                        return None;
                    }
                };
                let our_id = format!("\"w{}\"", self.inner.next.fetch_add(1, Ordering::Relaxed));
                session
                    .relayed
                    .lock()
                    .insert(our_id.clone(), (peer.server.clone(), upstream_id));
                Some(jsonrpc::request(&our_id, &method, env.params.as_deref()))
            }
            _ => None,
        }
    }

    async fn on_client_response(&self, caller: &Caller, env: Envelope) {
        let (Some(session), Some(id)) = (&caller.session, &env.id) else {
            return;
        };
        let Some((server, upstream_id)) = session.relayed.lock().remove(id.get()) else {
            return;
        };
        let Some(peer) = self.upstream(&server).and_then(|u| u.peer()) else {
            return;
        };
        let reply = match (env.result, env.error) {
            (Some(r), _) => Reply::Result(r),
            (None, Some(e)) => Reply::Error(e),
            _ => return,
        };
        let _ = peer.respond(&upstream_id, reply).await;
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
                for up in self.ready_upstreams(caller.scope.as_deref()) {
                    if let Some(peer) = up.peer() {
                        let _ = peer.notify("notifications/roots/list_changed", None).await;
                    }
                }
            }
            _ => {}
        }
    }
}

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
