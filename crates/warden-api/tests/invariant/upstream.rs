//! The upstream MCP server the test controls: it records every message it
//! receives and, at that moment, counts the message's rows in the activity
//! log through a connection of its own.

use crate::*;

pub const TOOLS: [&str; 3] = ["read_notes", "list_notes", "delete_note"];
pub const NOTES: [&str; 2] = ["A", "B"];

#[derive(Debug, Clone)]
pub struct Received {
    pub tool: String,
    pub note: String,
    /// `tool_call.requested` rows for this server and tool committed when the
    /// call arrived.
    pub rows_at_receipt: i64,
}

pub struct Upstream {
    pub server: String,
    pub db: PathBuf,
    pub revisions: Mutex<[u32; 3]>,
    pub received: Mutex<Vec<Received>>,
    pub events: tokio::sync::broadcast::Sender<String>,
    pub listeners: AtomicUsize,
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

pub fn rows_for(db: &Path, server: &str, tool: &str) -> i64 {
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

pub fn rpc_result(id: &Value, result: Value) -> HttpResponse {
    let body = json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

pub async fn upstream_post(State(up): State<Arc<Upstream>>, body: Bytes) -> HttpResponse {
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
pub async fn upstream_get(State(up): State<Arc<Upstream>>) -> HttpResponse {
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

pub async fn start_upstream(server: &str, db: &Path) -> (Arc<Upstream>, String) {
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
