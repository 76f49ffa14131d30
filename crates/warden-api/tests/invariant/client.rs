//! An agent, speaking MCP (2025-06-18) to Warden over HTTP.

use crate::*;

pub async fn post(
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
pub enum Told {
    /// HTTP 401: the credential was refused.
    Unauthenticated,
    /// A result that is not an error: the call went through.
    Done,
    /// A tool error or JSON-RPC error, with its text.
    Refused(String),
}

pub async fn call_tool(
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
