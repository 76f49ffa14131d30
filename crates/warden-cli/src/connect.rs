//! `warden connect AGENT`: a stdio MCP server that relays every message to the
//! gateway over HTTP as AGENT, whose credential comes from the OS keychain.
//! For clients that can only launch stdio servers.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{Mutex, mpsc};
use warden_gateway::config::Config;
use warden_gateway::jsonrpc::{self, Envelope};

use crate::Paths;

pub async fn run(paths: &Paths, agent: &str) -> Result<()> {
    let api = paths.open_api(None)?;
    let credential = api
        .agent_credential(agent)
        .await
        .map_err(|e| anyhow!(e.message))?;
    let config = Config::load(&paths.config)?;
    // A running gateway writes its endpoint to the data folder; otherwise the
    // configured address is where it will be.
    let endpoint = std::fs::read_to_string(paths.data_dir.join("endpoint"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| format!("http://{}/mcp", config.gateway.listen));
    let client = reqwest::Client::builder()
        .build()
        .context("could not build the HTTP client")?;
    let relay = Arc::new(Relay {
        client,
        endpoint,
        bearer: format!("Bearer {}", credential.expose()),
        session: Mutex::new(None),
    });

    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(line) = out_rx.recv().await {
            if stdout.write_all(line.as_bytes()).await.is_err()
                || stdout.write_all(b"\n").await.is_err()
            {
                break;
            }
            let _ = stdout.flush().await;
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let relay = relay.clone();
        let out = out_tx.clone();
        let is_initialize = line.contains("\"initialize\"");
        let task = tokio::spawn(async move { relay.send(line, out).await });
        // initialize must finish first: it sets the session for what follows.
        if is_initialize {
            let _ = task.await;
        }
    }
    if let Some(sid) = relay.session.lock().await.clone() {
        let _ = relay
            .client
            .delete(&relay.endpoint)
            .header("authorization", &relay.bearer)
            .header("mcp-session-id", sid)
            .send()
            .await;
    }
    drop(out_tx);
    let _ = writer.await;
    Ok(())
}

struct Relay {
    client: reqwest::Client,
    endpoint: String,
    bearer: String,
    session: Mutex<Option<String>>,
}

impl Relay {
    async fn send(&self, line: String, out: mpsc::UnboundedSender<String>) {
        let env = Envelope::parse(line.as_bytes()).ok();
        let id = env.as_ref().and_then(|e| e.id.clone());
        let is_request = env
            .as_ref()
            .is_some_and(|e| e.method.is_some() && e.id.is_some());
        let fail = |msg: &str| {
            if is_request {
                let _ = out.send(jsonrpc::error(id.as_deref(), jsonrpc::INTERNAL_ERROR, msg));
            }
        };
        let mut req = self
            .client
            .post(&self.endpoint)
            .header("authorization", &self.bearer)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(sid) = self.session.lock().await.clone() {
            req = req.header("mcp-session-id", sid);
        }
        if let Some(env) = &env {
            for (name, value) in modern_headers(env) {
                req = req.header(name, value);
            }
        }
        let resp = match req.body(line).send().await {
            Ok(r) => r,
            Err(_) => {
                return fail(
                    "Warden is not running or cannot be reached; start it (warden serve or the Warden app) and try again",
                );
            }
        };
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
            return fail(
                "Warden refused this agent's credential (revoked or expired); ask an admin for a new one",
            );
        }
        if let Some(sid) = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        {
            let mut s = self.session.lock().await;
            if s.is_none() {
                *s = Some(sid.to_string());
                tokio::spawn(listen(
                    self.client.clone(),
                    self.endpoint.clone(),
                    self.bearer.clone(),
                    sid.to_string(),
                    out.clone(),
                ));
            }
        }
        let sse = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"));
        if sse {
            forward_events(resp, &out).await;
        } else if let Ok(body) = resp.text().await
            && !body.trim().is_empty()
        {
            let _ = out.send(body);
        }
    }
}

/// The routing headers a 2026-07-28 message carries on HTTP, taken from its
/// body (stdio has no headers, so the relay adds them).
fn modern_headers(env: &Envelope) -> Vec<(&'static str, String)> {
    let Ok(params) = env.params_map() else {
        return Vec::new();
    };
    let Some(version) = params.meta().str("io.modelcontextprotocol/protocolVersion") else {
        return Vec::new();
    };
    let mut out = vec![("mcp-protocol-version", version)];
    let Some(method) = env.method.clone() else {
        return out;
    };
    let name = match method.as_str() {
        "tools/call" | "prompts/get" => params.str("name"),
        "resources/read" => params.str("uri"),
        _ => None,
    };
    out.push(("mcp-method", method));
    if let Some(n) = name {
        let safe = n.bytes().all(|b| (0x20..0x7f).contains(&b)) && n.trim() == n;
        let value = if safe {
            n
        } else {
            use base64::Engine;
            format!(
                "=?base64?{}?=",
                base64::engine::general_purpose::STANDARD.encode(n)
            )
        };
        out.push(("mcp-name", value));
    }
    out
}

async fn forward_events(resp: reqwest::Response, out: &mpsc::UnboundedSender<String>) {
    let mut events = warden_gateway::sse::events(resp.bytes_stream(), 64 * 1024 * 1024);
    while let Some(Ok(ev)) = events.next().await {
        if !ev.data.trim().is_empty() {
            let _ = out.send(ev.data);
        }
    }
}

/// The session's GET stream: notifications the gateway sends unasked.
async fn listen(
    client: reqwest::Client,
    endpoint: String,
    bearer: String,
    session: String,
    out: mpsc::UnboundedSender<String>,
) {
    let resp = client
        .get(&endpoint)
        .header("authorization", bearer)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", session)
        .send()
        .await;
    if let Ok(r) = resp
        && r.status().is_success()
    {
        forward_events(r, &out).await;
    }
}
