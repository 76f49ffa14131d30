//! The one invariant that matters, as a state machine: through any sequence
//! of grants, revocations, approvals, standing approvals, tool changes,
//! reviews, risk overrides, new client sessions and calls, a call reaches the
//! upstream server only when its caller is allowed to make it — low risk or
//! an explicit allow, or a valid approval bound to exactly that agent, tool,
//! arguments and definition — and the call's activity row is committed before
//! the server sees it.
//!
//! The gateway runs in-process (`Running::start`, as `warden serve` runs it)
//! and agents reach it over HTTP like any MCP client. The upstream is an MCP
//! server in this test that records every call it receives and, at that
//! moment, counts the call's rows in the activity log through a connection of
//! its own. A model written from the rules (DESIGN.md: deny wins, no grant is
//! deny, ask or high risk without an explicit allow asks the owner, approvals
//! bind to agent, tool, arguments and definition) predicts each call; the
//! test compares the prediction with what the upstream received, what the
//! agent was told, and the decision logged.
//!
//! Run inside a Secret Service session (.ci/with-keychain).

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing;
use parking_lot::Mutex;
use proptest::prelude::*;
use serde_json::{Value, json};
use warden_api::runtime::{Paths, Running};
use warden_api::{Api, Request, Response};
use warden_auth::{Clock, Keychain, Sensitive, totp};

// ---------------------------------------------------------------------------
// The upstream MCP server the test controls.

const TOOLS: [&str; 3] = ["read_notes", "list_notes", "delete_note"];
const NOTES: [&str; 2] = ["A", "B"];

#[derive(Debug, Clone)]
struct Received {
    tool: String,
    note: String,
    /// `tool_call.requested` rows for this server and tool committed when the
    /// call arrived.
    rows_at_receipt: i64,
}

struct Upstream {
    server: String,
    db: PathBuf,
    revisions: Mutex<[u32; 3]>,
    received: Mutex<Vec<Received>>,
    events: tokio::sync::broadcast::Sender<String>,
    listeners: AtomicUsize,
}

fn tool_definition(i: usize, revision: u32) -> Value {
    let (description, annotations) = match i {
        0 => (
            "Reads one note",
            json!({"readOnlyHint": true, "destructiveHint": false, "openWorldHint": false}),
        ),
        1 => (
            "Lists the notes",
            json!({"readOnlyHint": true, "destructiveHint": false, "openWorldHint": false}),
        ),
        _ => (
            "Deletes one note for good",
            json!({"readOnlyHint": false, "destructiveHint": true, "openWorldHint": false}),
        ),
    };
    json!({
        "name": TOOLS[i],
        "description": format!("{description} (revision {revision})"),
        "inputSchema": {"type": "object", "properties": {"note": {"type": "string"}}},
        "annotations": annotations,
    })
}

fn rows_for(db: &Path, server: &str, tool: &str) -> i64 {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("the upstream opens the activity log read-only");
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    conn.query_row(
        "SELECT count(*) FROM activity WHERE kind = 'tool_call.requested' AND server = ?1 AND tool = ?2",
        [server, tool],
        |r| r.get(0),
    )
    .expect("count the call's rows")
}

fn rpc_result(id: &Value, result: Value) -> HttpResponse {
    let body = json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn upstream_post(State(up): State<Arc<Upstream>>, body: Bytes) -> HttpResponse {
    let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let (Some(id), Some(method)) = (msg.get("id"), msg["method"].as_str()) else {
        // Notifications and answers to our (no) requests.
        return StatusCode::ACCEPTED.into_response();
    };
    match method {
        "initialize" => {
            let mut r = rpc_result(
                id,
                json!({
                    "protocolVersion": "2025-06-18",
                    "capabilities": {"tools": {"listChanged": true}},
                    "serverInfo": {"name": "notes", "version": "1"},
                }),
            );
            r.headers_mut().insert(
                "mcp-session-id",
                HeaderValue::from_static("notes-upstream-session"),
            );
            r
        }
        "ping" => rpc_result(id, json!({})),
        "tools/list" => {
            let revisions = *up.revisions.lock();
            let tools: Vec<Value> = (0..TOOLS.len())
                .map(|i| tool_definition(i, revisions[i]))
                .collect();
            rpc_result(id, json!({"tools": tools}))
        }
        "tools/call" => {
            let tool = msg["params"]["name"].as_str().unwrap_or("").to_string();
            let note = msg["params"]["arguments"]["note"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let (db, server, t) = (up.db.clone(), up.server.clone(), tool.clone());
            let rows_at_receipt = tokio::task::spawn_blocking(move || rows_for(&db, &server, &t))
                .await
                .expect("count rows");
            up.received.lock().push(Received {
                tool,
                note,
                rows_at_receipt,
            });
            rpc_result(
                id,
                json!({"content": [{"type": "text", "text": "done"}], "isError": false}),
            )
        }
        _ => {
            let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "method not found"}}).to_string();
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
    }
}

/// The legacy GET stream: where `notifications/tools/list_changed` goes.
async fn upstream_get(State(up): State<Arc<Upstream>>) -> HttpResponse {
    let rx = up.events.subscribe();
    up.listeners.fetch_add(1, Ordering::SeqCst);
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(m) => {
                    let chunk = Bytes::from(format!("event: message\ndata: {m}\n\n"));
                    return Some((Ok::<_, Infallible>(chunk), rx));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(stream),
    )
        .into_response()
}

async fn start_upstream(server: &str, db: &Path) -> (Arc<Upstream>, String) {
    let up = Arc::new(Upstream {
        server: server.to_string(),
        db: db.to_path_buf(),
        revisions: Mutex::new([1; 3]),
        received: Mutex::new(Vec::new()),
        events: tokio::sync::broadcast::channel(16).0,
        listeners: AtomicUsize::new(0),
    });
    let app = Router::new()
        .route(
            "/mcp",
            routing::post(upstream_post)
                .get(upstream_get)
                .delete(|| async { StatusCode::OK }),
        )
        .with_state(up.clone());
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the upstream");
    let url = format!("http://{}/mcp", tcp.local_addr().expect("address"));
    tokio::spawn(async move {
        let _ = axum::serve(tcp, app).await;
    });
    (up, url)
}

// ---------------------------------------------------------------------------
// The gateway, once per test run; every case gets its own server, roles and
// agents so cases do not see each other.

struct FixedClock(AtomicI64);

impl Clock for FixedClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct Fixture {
    rt: tokio::runtime::Runtime,
    running: Running,
    /// An API on the same install whose clock stands still, so the admin's
    /// sign-in stays fresh enough for sensitive changes however long this runs.
    api: Api,
    token: Sensitive<String>,
    db: PathBuf,
    http: reqwest::Client,
    cases: AtomicUsize,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("config.toml"),
            "[gateway]\nlisten = \"127.0.0.1:0\"\n\n[approvals]\ntimeout_secs = 1\ndesktop_notifications = false\n",
        )
        .expect("config");
        let paths = Paths::resolve(Some(dir.path().to_path_buf())).expect("paths");
        let (running, api, token) = rt.block_on(async {
            let setup = paths.open_api(None).expect("api");
            let Response::Enrolled(e) = setup
                .call(
                    None,
                    Request::Init {
                        admin: "ada".into(),
                        password: Sensitive::new("correct horse battery".into()),
                    },
                )
                .await
                .expect("init works with a keychain (run inside .ci/with-keychain)")
            else {
                panic!("init answers with an enrollment")
            };
            let secret = totp::decode_secret(e.totp_secret.expose()).expect("secret");
            let running = Running::start(&paths, None).await.expect("gateway starts");
            let clock = Arc::new(FixedClock(AtomicI64::new(
                warden_store::now_us() / 1_000_000,
            )));
            let api = Api::new(
                running.api.store().clone(),
                paths.config.clone(),
                Keychain::default(),
                Some(running.gateway.clone()),
            )
            .with_clock(clock.clone());
            let signed_in = api
                .call(
                    None,
                    Request::Login {
                        name: "ada".into(),
                        password: Sensitive::new("correct horse battery".into()),
                        totp: Some(totp::code_at(&secret, clock.now())),
                        recovery: None,
                    },
                )
                .await
                .expect("sign in");
            let Response::SignedIn(s) = signed_in else {
                panic!("sign-in answers with a session")
            };
            (running, api, s.token)
        });
        Fixture {
            rt,
            running,
            api,
            token,
            db: paths.db.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
            cases: AtomicUsize::new(0),
            _dir: dir,
        }
    })
}

impl Fixture {
    async fn admin(&self, req: Request) -> Result<Response, warden_api::ApiError> {
        self.api.call(Some(&self.token), req).await
    }
}

// ---------------------------------------------------------------------------
// The model.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Effect {
    Deny,
    Ask,
    Allow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Risk {
    Low,
    High,
}

const PATTERNS: [&str; 6] = [
    "*",
    "read_notes",
    "delete_note",
    "*_notes",
    "*note*",
    "delete_*",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Once,
    Session,
    Always,
    Deny,
    Nobody,
}

impl Answer {
    fn choice(self) -> Option<&'static str> {
        match self {
            Answer::Once => Some("once"),
            Answer::Session => Some("session"),
            Answer::Always => Some("always"),
            Answer::Deny => Some("deny"),
            Answer::Nobody => None,
        }
    }
}

/// What happens to a call while its approval is pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meanwhile {
    Nothing,
    /// The agent's role now denies the tool.
    DenyTool,
    /// The server changes the tool's definition.
    ChangeTool,
    /// The agent's credential is revoked.
    RevokeAgent,
}

#[derive(Debug, Clone)]
enum Op {
    Grant {
        role: usize,
        pattern: usize,
        effect: Effect,
        explicit: bool,
    },
    RevokeGrant {
        role: usize,
        pattern: usize,
    },
    Call {
        agent: usize,
        tool: usize,
        note: usize,
        answer: Answer,
        meanwhile: Meanwhile,
    },
    ChangeTool {
        tool: usize,
    },
    Review {
        tool: usize,
        accept: bool,
    },
    SetRisk {
        tool: usize,
        risk: Option<Risk>,
    },
    RevokeStanding {
        pick: usize,
    },
    NewSession {
        agent: usize,
    },
    RevokeAgent {
        agent: usize,
    },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    // Deny wins, so deny grants are kept rarer than the others, and
    // revoking an agent (which ends its part of the case) rarer still.
    let effect = prop_oneof![
        3 => Just(Effect::Allow),
        3 => Just(Effect::Ask),
        1 => Just(Effect::Deny),
    ];
    let answer = prop_oneof![
        4 => Just(Answer::Once),
        3 => Just(Answer::Session),
        3 => Just(Answer::Always),
        2 => Just(Answer::Deny),
        1 => Just(Answer::Nobody),
    ];
    let meanwhile = prop_oneof![
        12 => Just(Meanwhile::Nothing),
        2 => Just(Meanwhile::DenyTool),
        2 => Just(Meanwhile::ChangeTool),
        1 => Just(Meanwhile::RevokeAgent),
    ];
    prop_oneof![
        12 => (0..2usize, 0..PATTERNS.len(), effect, any::<bool>()).prop_map(
            |(role, pattern, effect, explicit)| Op::Grant {
                role,
                pattern,
                effect,
                // Only an allow can be explicit.
                explicit: explicit && effect == Effect::Allow,
            }
        ),
        4 => (0..2usize, 0..PATTERNS.len())
            .prop_map(|(role, pattern)| Op::RevokeGrant { role, pattern }),
        28 => (0..2usize, 0..TOOLS.len(), 0..NOTES.len(), answer, meanwhile).prop_map(
            |(agent, tool, note, answer, meanwhile)| Op::Call { agent, tool, note, answer, meanwhile }
        ),
        4 => (0..TOOLS.len()).prop_map(|tool| Op::ChangeTool { tool }),
        4 => (0..TOOLS.len(), any::<bool>()).prop_map(|(tool, accept)| Op::Review { tool, accept }),
        2 => (0..TOOLS.len(), prop_oneof![Just(None), Just(Some(Risk::Low)), Just(Some(Risk::High))])
            .prop_map(|(tool, risk)| Op::SetRisk { tool, risk }),
        2 => (0..8usize).prop_map(|pick| Op::RevokeStanding { pick }),
        2 => (0..2usize).prop_map(|agent| Op::NewSession { agent }),
        1 => (0..2usize).prop_map(|agent| Op::RevokeAgent { agent }),
    ]
}

#[derive(Debug, Default)]
struct Model {
    /// (role, pattern) → (effect, explicit).
    grants: BTreeMap<(usize, usize), (Effect, bool)>,
    revoked: [bool; 2],
    revision: [u32; 3],
    /// The revision a tool was pinned at (first allowed use, an admin's
    /// risk decision or an accepted review); `None` while only seen.
    pinned: [Option<u32>; 3],
    risk_override: [Option<Risk>; 3],
    /// The agent's current client session, by generation.
    session: [u32; 2],
    /// (agent, session, tool, revision) approved for the session.
    session_approvals: BTreeSet<(usize, u32, usize, u32)>,
    /// (agent, tool, note, revision) approved for good.
    standing: BTreeSet<(usize, usize, usize, u32)>,
}

const BASE_RISK: [Risk; 3] = [Risk::Low, Risk::Low, Risk::High];

#[derive(Debug, PartialEq, Eq)]
enum Expect {
    /// The credential is refused before any policy: no row.
    Unauthenticated,
    /// Refused by policy or quarantine: a `deny` row.
    Refused,
    /// Forwarded without asking: an `allow` row.
    Forwarded,
    /// A person is asked: an `ask` row.
    Asked,
}

impl Model {
    fn risk(&self, tool: usize) -> Risk {
        self.risk_override[tool].unwrap_or(BASE_RISK[tool])
    }

    fn usable(&self, tool: usize) -> bool {
        self.pinned[tool].is_none_or(|p| p == self.revision[tool])
    }

    /// The agent's role is its own index.
    fn decide(&self, role: usize, tool: usize) -> Effect {
        let name = TOOLS[tool];
        let mut best: Option<Effect> = None;
        let mut explicit_allow = false;
        for (&(r, p), &(effect, explicit)) in &self.grants {
            if r != role || !warden_policy::glob(PATTERNS[p], name) {
                continue;
            }
            if effect == Effect::Deny {
                return Effect::Deny;
            }
            let wildcard = PATTERNS[p].contains('*');
            if effect == Effect::Allow && (explicit || !wildcard) {
                explicit_allow = true;
            }
            best = Some(best.map_or(effect, |b| b.min(effect)));
        }
        match (best.unwrap_or(Effect::Deny), self.risk(tool)) {
            (Effect::Allow, Risk::High) if !explicit_allow => Effect::Ask,
            (e, _) => e,
        }
    }

    fn expect(&self, agent: usize, tool: usize, note: usize) -> Expect {
        if self.revoked[agent] {
            return Expect::Unauthenticated;
        }
        if !self.usable(tool) {
            return Expect::Refused;
        }
        match self.decide(agent, tool) {
            Effect::Deny => Expect::Refused,
            Effect::Allow => Expect::Forwarded,
            Effect::Ask => {
                let rev = self.revision[tool];
                if self.standing.contains(&(agent, tool, note, rev))
                    || self
                        .session_approvals
                        .contains(&(agent, self.session[agent], tool, rev))
                {
                    Expect::Forwarded
                } else {
                    Expect::Asked
                }
            }
        }
    }

    fn forwarded(&mut self, tool: usize) {
        if self.pinned[tool].is_none() {
            self.pinned[tool] = Some(self.revision[tool]);
        }
    }
}

// ---------------------------------------------------------------------------
// An agent, speaking MCP (2025-06-18) to Warden over HTTP.

async fn post(
    fx: &'static Fixture,
    credential: &str,
    session: Option<&str>,
    body: Value,
) -> (StatusCode, Option<String>, Option<Value>) {
    let mut req = fx
        .http
        .post(&fx.running.endpoint)
        .bearer_auth(credential)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(s) = session {
        req = req
            .header("mcp-session-id", s)
            .header("mcp-protocol-version", "2025-06-18");
    }
    let resp = req.send().await.expect("Warden answers");
    let status = StatusCode::from_u16(resp.status().as_u16()).expect("status");
    let session = resp
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let sse = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/event-stream"));
    let text = resp.text().await.expect("body");
    // The answer is the message with our id, whether sent as JSON or as an
    // event of a stream (progress may come before it).
    let answer = if sse {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|m| m.get("id") == body.get("id") && m.get("method").is_none())
    } else {
        serde_json::from_str(&text).ok()
    };
    (status, session, answer)
}

#[derive(Debug)]
enum Told {
    /// HTTP 401: the credential was refused.
    Unauthenticated,
    /// A result that is not an error: the call went through.
    Done,
    /// A tool error or JSON-RPC error, with its text.
    Refused(String),
}

async fn call_tool(
    fx: &'static Fixture,
    credential: String,
    session: Option<String>,
    name: String,
    note: &'static str,
) -> Told {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": name,
        "arguments": {"note": note},
    }});
    let (status, _, answer) = post(fx, &credential, session.as_deref(), body).await;
    if status == StatusCode::UNAUTHORIZED {
        return Told::Unauthenticated;
    }
    let answer = answer.unwrap_or_else(|| panic!("no answer to the call ({status})"));
    if let Some(e) = answer.get("error") {
        return Told::Refused(e.to_string());
    }
    let result = &answer["result"];
    if result["isError"] == true {
        Told::Refused(result["content"].to_string())
    } else {
        Told::Done
    }
}

// ---------------------------------------------------------------------------
// One case.

struct Agent {
    name: String,
    credential: String,
    session: Option<String>,
}

struct Case {
    n: usize,
    server: String,
    roles: [String; 2],
    agents: Vec<Agent>,
    upstream: Arc<Upstream>,
    model: Model,
    /// Every call forwarded so far, as (tool, note), in order.
    forwarded: Vec<(String, String)>,
    log: Vec<String>,
}

impl Case {
    async fn start(fx: &'static Fixture) -> Case {
        let n = fx.cases.fetch_add(1, Ordering::SeqCst);
        let server = format!("notes{n}");
        let (upstream, url) = start_upstream(&server, &fx.db).await;
        fx.admin(Request::ServerAdd {
            name: server.clone(),
            spec: warden_gateway::config::ServerSpec {
                url: Some(url),
                ..Default::default()
            },
        })
        .await
        .expect("add the case's server");
        fx.admin(Request::ServerTrust {
            name: server.clone(),
            trusted: true,
            auto_trust_new_tools: false,
        })
        .await
        .expect("trust its annotations");
        let roles = [format!("r{n}a"), format!("r{n}b")];
        let mut agents = Vec::new();
        for (i, role) in roles.iter().enumerate() {
            fx.admin(Request::RoleAdd {
                name: role.clone(),
                description: String::new(),
            })
            .await
            .expect("add role");
            let name = format!("agent{n}{}", ["x", "y"][i]);
            let Response::AgentCreated(c) = fx
                .admin(Request::AgentAdd {
                    name: name.clone(),
                    roles: vec![role.clone()],
                    expires_days: None,
                    owner: None,
                })
                .await
                .expect("add agent")
            else {
                panic!("an agent was created")
            };
            agents.push(Agent {
                name,
                credential: c.credential,
                session: None,
            });
        }
        let mut case = Case {
            n,
            server,
            roles,
            agents,
            upstream,
            model: Model {
                revision: [1; 3],
                ..Default::default()
            },
            forwarded: Vec::new(),
            log: Vec::new(),
        };
        // The server is up, its GET stream open, and its tools vetted as the
        // model assumes: the two readers low risk (a trusted server's
        // read-only hints count), the deleter high.
        let tools = case.wait_for_tools(fx, |_| true).await;
        for (i, t) in TOOLS.iter().enumerate() {
            let risk = tools[i]["warden"]["risk"].as_str().unwrap_or("");
            let want = match BASE_RISK[i] {
                Risk::Low => "low",
                Risk::High => "high",
            };
            assert_eq!(risk, want, "{t} is vetted as {want}: {}", tools[i]);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while case.upstream.listeners.load(Ordering::SeqCst) == 0 {
            assert!(
                Instant::now() < deadline,
                "Warden never opened the server's GET stream"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for a in 0..2 {
            case.new_session(fx, a).await;
        }
        case
    }

    /// The server's tools as Warden vets them, once `ready` holds.
    async fn wait_for_tools(
        &self,
        fx: &'static Fixture,
        ready: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        self.tools_when(fx, Duration::from_secs(10), &ready)
            .await
            .expect("the server's tools did not show as expected in Warden")
    }

    async fn tools_when(
        &self,
        fx: &'static Fixture,
        within: Duration,
        ready: &impl Fn(&[Value]) -> bool,
    ) -> Option<Vec<Value>> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Response::Tools(tools)) = fx
                .admin(Request::ServerTools {
                    name: self.server.clone(),
                })
                .await
            {
                let by_name: Vec<Value> = TOOLS
                    .iter()
                    .filter_map(|t| tools.iter().find(|v| v["name"] == *t).cloned())
                    .collect();
                if by_name.len() == TOOLS.len() && ready(&by_name) {
                    return Some(by_name);
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn new_session(&mut self, fx: &'static Fixture, agent: usize) {
        self.agents[agent].session = None;
        let credential = self.agents[agent].credential.clone();
        let (status, session, answer) = post(
            fx,
            &credential,
            None,
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "invariant-test", "version": "1"},
            }}),
        )
        .await;
        if self.model.revoked[agent] {
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "a revoked agent cannot start a session"
            );
            return;
        }
        assert!(status.is_success(), "initialize: {status} {answer:?}");
        self.agents[agent].session = Some(session.expect("a legacy session id"));
        let (status, _, _) = post(
            fx,
            &credential,
            self.agents[agent].session.as_deref(),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .await;
        assert!(status.is_success(), "initialized: {status}");
    }

    /// The call as agent `agent` would send it, owning what it needs.
    fn call(
        &self,
        fx: &'static Fixture,
        agent: usize,
        tool: usize,
        note: usize,
    ) -> impl std::future::Future<Output = Told> + use<> {
        let a = &self.agents[agent];
        call_tool(
            fx,
            a.credential.clone(),
            a.session.clone(),
            format!("{}__{}", self.server, TOOLS[tool]),
            NOTES[note],
        )
    }

    async fn pending(&self, fx: &'static Fixture, agent: usize, tool: usize) -> Option<Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Response::Approvals(p)) = fx.admin(Request::Approvals).await
                && let Some(r) = p.requests.into_iter().find(|r| {
                    r.agent == self.agents[agent].name
                        && r.server == self.server
                        && r.tool == TOOLS[tool]
                })
            {
                return serde_json::to_value(r).ok();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    async fn grant(
        &mut self,
        fx: &'static Fixture,
        role: usize,
        pattern: usize,
        effect: Effect,
        explicit: bool,
    ) {
        fx.admin(Request::Grant {
            role: self.roles[role].clone(),
            server: self.server.clone(),
            pattern: PATTERNS[pattern].into(),
            effect: match effect {
                Effect::Allow => "allow",
                Effect::Ask => "ask",
                Effect::Deny => "deny",
            }
            .into(),
            explicit,
        })
        .await
        .expect("grant");
        self.model
            .grants
            .insert((role, pattern), (effect, explicit));
    }

    async fn change_tool(&mut self, fx: &'static Fixture, tool: usize) {
        let revision = {
            let mut revs = self.upstream.revisions.lock();
            revs[tool] += 1;
            revs[tool]
        };
        let note = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
        let marker = format!("(revision {revision})");
        let shows_it = |tools: &[Value]| {
            tools[tool]["description"]
                .as_str()
                .is_some_and(|d| d.ends_with(&marker))
        };
        // Told again if Warden was between GET streams when it was sent.
        for _ in 0..10 {
            let _ = self.upstream.events.send(note.to_string());
            if self
                .tools_when(fx, Duration::from_secs(1), &shows_it)
                .await
                .is_some()
            {
                self.model.revision[tool] = revision;
                return;
            }
        }
        panic!("Warden never saw the server change {}", TOOLS[tool]);
    }

    async fn revoke_agent(&mut self, fx: &'static Fixture, agent: usize) {
        let r = fx
            .admin(Request::AgentRevoke {
                name: self.agents[agent].name.clone(),
            })
            .await;
        // Revoking twice is harmless.
        r.expect("revoke an agent");
        self.model.revoked[agent] = true;
    }

    async fn latest_decision(&self, fx: &'static Fixture, tool: usize) -> Option<String> {
        let conn = fx.running.api.store().connect().expect("db");
        conn.query_row(
            "SELECT decision FROM activity WHERE kind = 'tool_call.requested' AND server = ?1 AND tool = ?2 ORDER BY id DESC LIMIT 1",
            [self.server.as_str(), TOOLS[tool]],
            |r| r.get(0),
        )
        .ok()
    }

    async fn run(&mut self, fx: &'static Fixture, op: &Op) {
        self.log.push(format!("{op:?}"));
        match *op {
            Op::Grant {
                role,
                pattern,
                effect,
                explicit,
            } => self.grant(fx, role, pattern, effect, explicit).await,
            Op::RevokeGrant { role, pattern } => {
                let r = fx
                    .admin(Request::RevokeGrant {
                        role: self.roles[role].clone(),
                        server: self.server.clone(),
                        pattern: PATTERNS[pattern].into(),
                    })
                    .await;
                let had = self.model.grants.remove(&(role, pattern)).is_some();
                assert_eq!(r.is_ok(), had, "revoke grant: {r:?}");
            }
            Op::ChangeTool { tool } => self.change_tool(fx, tool).await,
            Op::Review { tool, accept } => {
                if self.model.usable(tool) {
                    return;
                }
                let tools = self.wait_for_tools(fx, |_| true).await;
                let hash = tools[tool]["warden"]["definition_hash"]
                    .as_str()
                    .expect("a definition hash")
                    .to_string();
                fx.admin(Request::ToolDecide {
                    server: self.server.clone(),
                    tool: TOOLS[tool].into(),
                    hash,
                    accept,
                })
                .await
                .expect("review a quarantined tool");
                if accept {
                    self.model.pinned[tool] = Some(self.model.revision[tool]);
                }
            }
            Op::SetRisk { tool, risk } => {
                if risk.is_none() && self.model.risk_override[tool].is_none() {
                    // Nothing to clear: refused, and nothing changes.
                    let r = fx
                        .admin(Request::ToolRisk {
                            server: self.server.clone(),
                            tool: TOOLS[tool].into(),
                            risk: None,
                            reason: String::new(),
                        })
                        .await;
                    assert!(r.is_err(), "clearing a risk that was never set is refused");
                    return;
                }
                fx.admin(Request::ToolRisk {
                    server: self.server.clone(),
                    tool: TOOLS[tool].into(),
                    risk: risk.map(|r| match r {
                        Risk::Low => "low".to_string(),
                        Risk::High => "high".to_string(),
                    }),
                    reason: "set by the invariant test".into(),
                })
                .await
                .expect("set a tool's risk");
                self.model.risk_override[tool] = risk;
                // An admin's risk decision is about the definition presented
                // now: it pins it.
                self.model.forwarded(tool);
            }
            Op::RevokeStanding { pick } => {
                let Some(&(agent, tool, note, _)) = self
                    .model
                    .standing
                    .iter()
                    .nth(pick % self.model.standing.len().max(1))
                else {
                    return;
                };
                let Response::Standing(list) = fx
                    .admin(Request::StandingList)
                    .await
                    .expect("standing list")
                else {
                    panic!("a list of standing approvals")
                };
                let mine: Vec<_> = list
                    .into_iter()
                    .filter(|s| {
                        s.agent == self.agents[agent].name
                            && s.server == self.server
                            && s.tool == TOOLS[tool]
                            && s.arguments.as_deref().is_some_and(|a| {
                                serde_json::from_str::<Value>(a).ok()
                                    == Some(json!({"note": NOTES[note]}))
                            })
                    })
                    .collect();
                assert!(
                    !mine.is_empty(),
                    "Warden lists the standing approval the model has"
                );
                for s in mine {
                    fx.admin(Request::StandingRevoke { id: s.id })
                        .await
                        .expect("revoke a standing approval");
                }
                self.model
                    .standing
                    .retain(|&(a, t, n, _)| !(a == agent && t == tool && n == note));
            }
            Op::NewSession { agent } => {
                self.new_session(fx, agent).await;
                self.model.session[agent] += 1;
            }
            Op::RevokeAgent { agent } => self.revoke_agent(fx, agent).await,
            Op::Call {
                agent,
                tool,
                note,
                answer,
                meanwhile,
            } => {
                self.check_call(fx, agent, tool, note, answer, meanwhile)
                    .await
            }
        }
    }

    async fn check_call(
        &mut self,
        fx: &'static Fixture,
        agent: usize,
        tool: usize,
        note: usize,
        answer: Answer,
        meanwhile: Meanwhile,
    ) {
        let expect = self.model.expect(agent, tool, note);
        let reused = expect == Expect::Forwarded && self.model.decide(agent, tool) == Effect::Ask;
        let rows_before = {
            let (db, server, t) = (fx.db.clone(), self.server.clone(), TOOLS[tool]);
            tokio::task::spawn_blocking(move || rows_for(&db, &server, t))
                .await
                .expect("rows")
        };
        let received_before = self.upstream.received.lock().len();

        let mut should_arrive = expect == Expect::Forwarded;
        let told = if expect == Expect::Asked {
            let call = self.call(fx, agent, tool, note);
            let decide = async {
                let request = self
                    .pending(fx, agent, tool)
                    .await
                    .expect("the person is asked to approve the call");
                assert_eq!(
                    request["arguments"],
                    json!({"note": NOTES[note]}),
                    "the prompt shows the call's arguments"
                );
                let id = request["id"].as_str().expect("request id").to_string();
                // Things change while the person looks at the prompt.
                let mut still_valid = true;
                match meanwhile {
                    Meanwhile::Nothing => {}
                    Meanwhile::DenyTool => {
                        let exact = PATTERNS.iter().position(|p| *p == TOOLS[tool]).unwrap_or(0);
                        self.grant(fx, agent, exact, Effect::Deny, false).await;
                        still_valid = false;
                    }
                    Meanwhile::ChangeTool => {
                        self.change_tool(fx, tool).await;
                        still_valid = false;
                    }
                    Meanwhile::RevokeAgent => {
                        self.revoke_agent(fx, agent).await;
                        still_valid = false;
                    }
                }
                if let Some(choice) = answer.choice() {
                    fx.admin(Request::ApprovalDecide {
                        id,
                        choice: choice.into(),
                        reason: None,
                        totp: None,
                    })
                    .await
                    .expect("the owner answers");
                }
                still_valid
            };
            let (told, still_valid) = tokio::join!(call, decide);
            let approved = matches!(answer, Answer::Once | Answer::Session | Answer::Always);
            should_arrive = approved && still_valid;
            if should_arrive {
                // Only what still holds when the call goes out is kept.
                let rev = self.model.revision[tool];
                match answer {
                    Answer::Session => {
                        self.model.session_approvals.insert((
                            agent,
                            self.model.session[agent],
                            tool,
                            rev,
                        ));
                    }
                    Answer::Always => {
                        self.model.standing.insert((agent, tool, note, rev));
                    }
                    _ => {}
                }
            } else if approved && answer == Answer::Session && meanwhile == Meanwhile::DenyTool {
                // A session approval is remembered at the click, before the
                // re-check refused this call; the deny grant still wins later.
                let rev = self.model.revision[tool];
                self.model
                    .session_approvals
                    .insert((agent, self.model.session[agent], tool, rev));
            }
            told
        } else {
            // Nothing waits, so nothing can change meanwhile.
            self.call(fx, agent, tool, note).await
        };

        // What the upstream received during this call.
        let received: Vec<Received> = self.upstream.received.lock()[received_before..].to_vec();
        let context = || {
            format!(
                "case {} step {}: expected {expect:?} (arrive: {should_arrive}), told {told:?}, upstream got {received:?}\nsteps: {:#?}",
                self.n,
                self.log.len(),
                self.log
            )
        };
        if should_arrive {
            assert_eq!(
                received.len(),
                1,
                "the call reaches the server once: {}",
                context()
            );
            assert_eq!(received[0].tool, TOOLS[tool], "{}", context());
            assert_eq!(received[0].note, NOTES[note], "{}", context());
            assert!(
                received[0].rows_at_receipt > rows_before,
                "the call's row was committed before the server saw it: {}",
                context()
            );
            assert!(matches!(told, Told::Done), "{}", context());
            self.forwarded
                .push((TOOLS[tool].to_string(), NOTES[note].to_string()));
            self.model.forwarded(tool);
        } else {
            assert!(
                received.is_empty(),
                "the call must not reach the server: {}",
                context()
            );
            assert!(
                !matches!(told, Told::Done),
                "a refused call is never a success: {}",
                context()
            );
            if let Told::Refused(why) = &told {
                assert!(
                    why.contains("Warden"),
                    "a refusal says who refused it and why: {}",
                    context()
                );
            }
        }
        bump(match expect {
            Expect::Unauthenticated => &seen().unauthenticated,
            Expect::Refused => &seen().refused,
            Expect::Forwarded if reused => &seen().by_standing_or_session,
            Expect::Forwarded => &seen().forwarded,
            Expect::Asked if should_arrive => &seen().approved,
            Expect::Asked
                if meanwhile != Meanwhile::Nothing
                    && answer.choice().is_some_and(|c| c != "deny") =>
            {
                &seen().changed_while_pending
            }
            Expect::Asked => &seen().approval_refused,
        });
        // The decision logged is the one the model predicts.
        let decision = self.latest_decision(fx, tool).await;
        let rows_after = rows_for(&fx.db, &self.server, TOOLS[tool]);
        match expect {
            Expect::Unauthenticated => {
                assert!(matches!(told, Told::Unauthenticated), "{}", context());
                assert_eq!(
                    rows_after,
                    rows_before,
                    "no row for a refused credential: {}",
                    context()
                );
            }
            Expect::Refused => {
                assert_eq!(decision.as_deref(), Some("deny"), "{}", context());
                assert_eq!(rows_after, rows_before + 1, "{}", context());
            }
            Expect::Forwarded => {
                assert_eq!(decision.as_deref(), Some("allow"), "{}", context());
                assert_eq!(rows_after, rows_before + 1, "{}", context());
            }
            Expect::Asked => {
                assert_eq!(decision.as_deref(), Some("ask"), "{}", context());
                assert_eq!(rows_after, rows_before + 1, "{}", context());
            }
        }
    }

    async fn finish(self, fx: &'static Fixture) {
        // Everything the server ever received is what the test forwarded.
        let got: Vec<(String, String)> = self
            .upstream
            .received
            .lock()
            .iter()
            .map(|r| (r.tool.clone(), r.note.clone()))
            .collect();
        assert_eq!(got, self.forwarded, "case {}", self.n);
        let _ = fx
            .admin(Request::ServerRemove {
                name: self.server.clone(),
            })
            .await;
    }
}

/// How often each path ran, over the whole run: a run that never asked a
/// person, or never forwarded, would prove nothing.
#[derive(Debug, Default)]
struct Seen {
    forwarded: AtomicUsize,
    approved: AtomicUsize,
    approval_refused: AtomicUsize,
    changed_while_pending: AtomicUsize,
    refused: AtomicUsize,
    unauthenticated: AtomicUsize,
    by_standing_or_session: AtomicUsize,
}

fn seen() -> &'static Seen {
    static SEEN: std::sync::OnceLock<Seen> = std::sync::OnceLock::new();
    SEEN.get_or_init(Seen::default)
}

fn bump(counter: &AtomicUsize) {
    counter.fetch_add(1, Ordering::Relaxed);
}

#[test]
fn a_call_reaches_the_server_only_when_allowed_and_logged_first() {
    let cases = std::env::var("WARDEN_INVARIANT_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        max_shrink_iters: 256,
        ..ProptestConfig::default()
    });
    let result = runner.run(&proptest::collection::vec(op_strategy(), 1..40), |ops| {
        let fx = fixture();
        fx.rt.block_on(async {
            let mut case = Case::start(fx).await;
            for op in &ops {
                case.run(fx, op).await;
            }
            case.finish(fx).await;
        });
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let s = seen();
    eprintln!("{cases} cases: {s:?}");
    for (what, n) in [
        ("forwarded without asking", &s.forwarded),
        ("forwarded after a person approved", &s.approved),
        ("denied or unanswered approvals", &s.approval_refused),
        (
            "approvals invalidated while pending",
            &s.changed_while_pending,
        ),
        ("refused by policy or quarantine", &s.refused),
        ("refused credentials", &s.unauthenticated),
        (
            "forwarded by a standing or session approval",
            &s.by_standing_or_session,
        ),
    ] {
        assert!(
            n.load(Ordering::Relaxed) > 0,
            "no call was {what} in {cases} cases: the run proves too little"
        );
    }
}
