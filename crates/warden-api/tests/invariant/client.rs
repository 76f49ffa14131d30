//! An agent, speaking MCP (2025-06-18) to Warden over HTTP, answering the
//! server requests Warden passes it in the middle of a call.

use crate::*;

/// What one POST brought: its status, the session it named, the answer to
/// the message sent, and the server requests that came before the answer
/// (each already answered with what [`answer_to`] says).
pub struct Exchange {
    pub status: StatusCode,
    pub session: Option<String>,
    pub answer: Option<Value>,
    pub asked: Vec<(Value, Value)>,
}

/// The agent's answer to a server request: a root or a confirmation that
/// names `nonce`, so the test can tell it arrived unchanged.
pub fn answer_to(request: &Value, nonce: &str) -> Value {
    match request["method"].as_str() {
        Some("roots/list") => {
            json!({"roots": [{"uri": format!("file:///work/{nonce}"), "name": "work"}]})
        }
        Some("elicitation/create") => {
            json!({"action": "accept", "content": {"ok": true, "by": nonce}})
        }
        _ => json!({}),
    }
}

fn request(
    fx: &'static Fixture,
    credential: &str,
    session: Option<&str>,
    body: &Value,
) -> reqwest::RequestBuilder {
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
    req
}

pub async fn post(
    fx: &'static Fixture,
    credential: &str,
    session: Option<&str>,
    body: Value,
) -> (StatusCode, Option<String>, Option<Value>) {
    let e = exchange(fx, credential, session, body, "-").await;
    (e.status, e.session, e.answer)
}

/// Sends `body` and reads the answer, as JSON or as a stream of events; a
/// server request in the stream is answered (a POST of its own) as it comes.
pub async fn exchange(
    fx: &'static Fixture,
    credential: &str,
    session: Option<&str>,
    body: Value,
    nonce: &str,
) -> Exchange {
    let mut resp = request(fx, credential, session, &body)
        .send()
        .await
        .expect("Warden answers");
    let status = StatusCode::from_u16(resp.status().as_u16()).expect("status");
    let named = resp
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let sse = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/event-stream"));
    let mut done = Exchange {
        status,
        session: named,
        answer: None,
        asked: Vec::new(),
    };
    if !sse {
        let text = resp.text().await.expect("body");
        done.answer = serde_json::from_str(&text).ok();
        return done;
    }
    // Events, until the one that answers our message (progress and server
    // requests may come before it).
    let mut buffer = String::new();
    while let Some(chunk) = resp.chunk().await.expect("the stream reads") {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let Some(msg) = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .find_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            else {
                continue;
            };
            match (msg.get("id"), msg.get("method")) {
                (Some(id), None) if Some(id) == body.get("id") => {
                    done.answer = Some(msg);
                    return done;
                }
                (Some(id), Some(_)) => {
                    let result = answer_to(&msg, nonce);
                    let reply = json!({"jsonrpc": "2.0", "id": id, "result": result});
                    let r = request(fx, credential, session, &reply)
                        .send()
                        .await
                        .expect("Warden takes the answer");
                    assert!(
                        r.status().is_success(),
                        "Warden refused the agent's answer to {msg}: {}",
                        r.status()
                    );
                    done.asked.push((msg, result));
                }
                _ => {}
            }
        }
    }
    done
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

/// A tools/call; with it, the server requests the agent answered meanwhile.
pub async fn call_tool(
    fx: &'static Fixture,
    credential: String,
    session: Option<String>,
    name: String,
    note: &'static str,
    nonce: String,
) -> (Told, Vec<(Value, Value)>) {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": name,
        "arguments": {"note": note},
    }});
    let e = exchange(fx, &credential, session.as_deref(), body, &nonce).await;
    if e.status == StatusCode::UNAUTHORIZED {
        return (Told::Unauthenticated, e.asked);
    }
    let answer = e
        .answer
        .unwrap_or_else(|| panic!("no answer to the call ({})", e.status));
    if let Some(err) = answer.get("error") {
        return (Told::Refused(err.to_string()), e.asked);
    }
    let result = &answer["result"];
    if result["isError"] == true {
        (Told::Refused(result["content"].to_string()), e.asked)
    } else {
        (Told::Done, e.asked)
    }
}
