//! The upstream MCP servers the test controls: they record every message
//! they receive and, at that moment, count the message's rows in the
//! activity log through a connection of their own.
//!
//! Each case has two. `notes` speaks 2025-06-18 (a session, a GET stream
//! for list changes, logging, resource subscriptions); its `list_notes`
//! asks the client `roots/list` in the middle of the call, so every
//! forwarded `list_notes` carries a server request out and a client's
//! answer back. `confirm` speaks 2026-07-28 and has one tool whose first
//! call answers `input_required`, so Warden, in front of a 2025-06-18
//! client, asks the client itself and retries the call with the answers.

use crate::*;

pub const TOOLS: [&str; 3] = ["read_notes", "list_notes", "delete_note"];
pub const NOTES: [&str; 2] = ["A", "B"];
/// The one tool of the 2026-07-28 server.
pub const CONFIRM: &str = "confirm_note";
/// The levels a `logging/setLevel` of the test picks from.
pub const LEVELS: [&str; 3] = ["debug", "warning", "error"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    Legacy,
    Modern,
}

#[derive(Debug, Clone)]
pub struct Received {
    /// The method, or `response` for a client's answer to a server request.
    pub method: String,
    /// For a call, the tool; for a resource subscription, the URI.
    pub tool: String,
    pub note: String,
    /// The params as they arrived (a response's result).
    pub params: Value,
    /// The message's rows committed when it arrived: for a call, the
    /// `tool_call.requested` rows of this server and tool (`tool_call.retried`
    /// for a retry); for a message outside a call, the `message.sent` rows of
    /// this server and method (and URI); for an answer, the
    /// `server_request.answered` rows of this server.
    pub rows_at_receipt: i64,
}

pub struct Upstream {
    pub server: String,
    pub era: Era,
    pub db: PathBuf,
    pub revisions: Mutex<[u32; 3]>,
    pub received: Mutex<Vec<Received>>,
    pub events: tokio::sync::broadcast::Sender<String>,
    pub listeners: AtomicUsize,
    /// Server requests waiting for the client's answer, by id.
    pub waiting: Mutex<BTreeMap<String, tokio::sync::oneshot::Sender<Value>>>,
    pub asked: AtomicUsize,
}

impl Upstream {
    /// What arrived with `method` since the first `from` messages.
    pub fn received_since(&self, from: usize, method: &str) -> Vec<Received> {
        self.received.lock()[from..]
            .iter()
            .filter(|r| r.method == method)
            .cloned()
            .collect()
    }

    pub fn count(&self, method: &str) -> usize {
        self.received_since(0, method).len()
    }

    /// The resource URIs this server lists: its own, so no other case's
    /// server claims them.
    pub fn uri(&self, note: usize) -> String {
        format!("{}://{}", self.server, NOTES[note])
    }
}

pub fn tool_definition(i: usize, revision: u32) -> Value {
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

fn confirm_definition() -> Value {
    json!({
        "name": CONFIRM,
        "description": "Marks one note as confirmed, after asking",
        "inputSchema": {"type": "object", "properties": {"note": {"type": "string"}}},
        "annotations": {"readOnlyHint": false, "destructiveHint": true, "openWorldHint": false},
    })
}

/// One count over the activity log, through the upstream's own read-only
/// connection.
fn count_rows(db: &Path, sql: &str, params: impl rusqlite::Params) -> i64 {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("the upstream opens the activity log read-only");
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    conn.query_row(sql, params, |r| r.get(0))
        .expect("count the message's rows")
}

/// Rows of `kind` for `server`, and `tool` when given, committed now.
pub fn rows_of(db: &Path, kind: &str, server: &str, tool: Option<&str>) -> i64 {
    count_rows(
        db,
        "SELECT count(*) FROM activity WHERE kind = ?1 AND server = ?2 AND (?3 IS NULL OR tool = ?3)",
        rusqlite::params![kind, server, tool],
    )
}

pub fn rows_for(db: &Path, server: &str, tool: &str) -> i64 {
    rows_of(db, "tool_call.requested", server, Some(tool))
}

/// `message.sent` rows for one method (and URI, for a subscription).
pub fn message_rows(db: &Path, server: &str, method: &str, uri: Option<&str>) -> i64 {
    count_rows(
        db,
        "SELECT count(*) FROM activity WHERE kind = 'message.sent' AND server = ?1 AND tool = ?2 AND (?3 IS NULL OR json_extract(arguments, '$.uri') = ?3)",
        rusqlite::params![server, method, uri],
    )
}

fn rpc_result(id: &Value, result: Value) -> HttpResponse {
    let body = json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn sse_event(msg: &Value) -> Result<Bytes, Infallible> {
    Ok(Bytes::from(format!("event: message\ndata: {msg}\n\n")))
}

async fn record(up: &Arc<Upstream>, method: &str, tool: String, params: Value) {
    let (db, server, m) = (up.db.clone(), up.server.clone(), method.to_string());
    let key = tool.clone();
    let retry = params.get("inputResponses").is_some();
    let rows_at_receipt = tokio::task::spawn_blocking(move || match m.as_str() {
        "tools/call" if retry => rows_of(&db, "tool_call.retried", &server, Some(&key)),
        "tools/call" => rows_for(&db, &server, &key),
        "response" => rows_of(&db, "server_request.answered", &server, None),
        "resources/subscribe" | "resources/unsubscribe" => {
            message_rows(&db, &server, &m, Some(&key))
        }
        _ => message_rows(&db, &server, &m, None),
    })
    .await
    .expect("count rows");
    let note = params["arguments"]["note"]
        .as_str()
        .unwrap_or("")
        .to_string();
    up.received.lock().push(Received {
        method: method.to_string(),
        tool,
        note,
        params,
        rows_at_receipt,
    });
}

async fn upstream_post(State(up): State<Arc<Upstream>>, body: Bytes) -> HttpResponse {
    let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let params = msg.get("params").cloned().unwrap_or(Value::Null);
    let (id, method) = match (msg.get("id"), msg["method"].as_str()) {
        (Some(id), Some(method)) => (id.clone(), method.to_string()),
        (Some(id), None) => {
            // A client's answer to one of our requests, passed on by Warden.
            let result = msg.get("result").cloned().unwrap_or(Value::Null);
            record(&up, "response", String::new(), result.clone()).await;
            if let Some(tx) = id.as_str().and_then(|id| up.waiting.lock().remove(id)) {
                let _ = tx.send(result);
            }
            return StatusCode::ACCEPTED.into_response();
        }
        (None, Some(method)) => {
            record(&up, method, String::new(), params).await;
            return StatusCode::ACCEPTED.into_response();
        }
        (None, None) => return StatusCode::BAD_REQUEST.into_response(),
    };
    let id = &id;
    match (up.era, method.as_str()) {
        (Era::Modern, "server/discover") => rpc_result(
            id,
            json!({
                "supportedVersions": ["2026-07-28"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "confirm", "version": "1"},
            }),
        ),
        (Era::Legacy, "initialize") => {
            let mut r = rpc_result(
                id,
                json!({
                    "protocolVersion": "2025-06-18",
                    "capabilities": {
                        "tools": {"listChanged": true},
                        "logging": {},
                        "resources": {"subscribe": true},
                    },
                    "serverInfo": {"name": "notes", "version": "1"},
                }),
            );
            r.headers_mut().insert(
                "mcp-session-id",
                HeaderValue::from_static("notes-upstream-session"),
            );
            r
        }
        (_, "ping") => rpc_result(id, json!({})),
        (Era::Modern, "tools/list") => rpc_result(id, json!({"tools": [confirm_definition()]})),
        (Era::Legacy, "tools/list") => {
            let revisions = *up.revisions.lock();
            let tools: Vec<Value> = (0..TOOLS.len())
                .map(|i| tool_definition(i, revisions[i]))
                .collect();
            rpc_result(id, json!({"tools": tools}))
        }
        (Era::Legacy, "resources/list") => {
            let resources: Vec<Value> = (0..NOTES.len())
                .map(|n| json!({"uri": up.uri(n), "name": NOTES[n]}))
                .collect();
            rpc_result(id, json!({"resources": resources}))
        }
        (Era::Legacy, "resources/templates/list") => {
            rpc_result(id, json!({"resourceTemplates": []}))
        }
        (Era::Legacy, "logging/setLevel") => {
            record(&up, &method, String::new(), params).await;
            rpc_result(id, json!({}))
        }
        (Era::Legacy, "resources/subscribe" | "resources/unsubscribe") => {
            let uri = params["uri"].as_str().unwrap_or("").to_string();
            record(&up, &method, uri, params).await;
            rpc_result(id, json!({}))
        }
        (_, "tools/call") => {
            let tool = params["name"].as_str().unwrap_or("").to_string();
            record(&up, &method, tool.clone(), params.clone()).await;
            match tool.as_str() {
                "list_notes" => ask_roots(&up, id.clone()),
                CONFIRM if params.get("inputResponses").is_none() => rpc_result(
                    id,
                    json!({
                        "resultType": "input_required",
                        "inputRequests": {"q": {"method": "elicitation/create", "params": {
                            "message": "Confirm this note?",
                            "requestedSchema": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
                        }}},
                        "requestState": "confirm-state",
                    }),
                ),
                _ => rpc_result(
                    id,
                    json!({"content": [{"type": "text", "text": "done"}], "isError": false}),
                ),
            }
        }
        _ => {
            let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "method not found"}}).to_string();
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
    }
}

/// `list_notes`: asks the client for its roots in the call's own stream,
/// and answers the call once the client's answer came back.
fn ask_roots(up: &Arc<Upstream>, id: Value) -> HttpResponse {
    let ask = format!("roots-{}", up.asked.fetch_add(1, Ordering::SeqCst));
    let (tx, rx) = tokio::sync::oneshot::channel();
    up.waiting.lock().insert(ask.clone(), tx);
    let request = json!({"jsonrpc": "2.0", "id": ask, "method": "roots/list"});
    let answer = async move {
        let roots = tokio::time::timeout(Duration::from_secs(10), rx).await;
        let text = match roots {
            Ok(Ok(v)) => format!("roots: {v}"),
            _ => "the client never answered".to_string(),
        };
        sse_event(&json!({"jsonrpc": "2.0", "id": id, "result": {
            "content": [{"type": "text", "text": text}], "isError": false,
        }}))
    };
    let stream = futures::StreamExt::chain(
        futures::stream::once(async move { sse_event(&request) }),
        futures::stream::once(answer),
    );
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// The legacy GET stream: where `notifications/tools/list_changed` goes.
async fn upstream_get(State(up): State<Arc<Upstream>>) -> HttpResponse {
    if up.era == Era::Modern {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
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

pub async fn start_upstream(server: &str, era: Era, db: &Path) -> (Arc<Upstream>, String) {
    let up = Arc::new(Upstream {
        server: server.to_string(),
        era,
        db: db.to_path_buf(),
        revisions: Mutex::new([1; 3]),
        received: Mutex::new(Vec::new()),
        events: tokio::sync::broadcast::channel(16).0,
        listeners: AtomicUsize::new(0),
        waiting: Mutex::new(BTreeMap::new()),
        asked: AtomicUsize::new(0),
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
