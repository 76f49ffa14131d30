//! One live connection to a server, and the only way a message reaches it
//! (every send takes a [`Permit`]).

use super::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(tag = "era", content = "version", rename_all = "snake_case")]
pub enum Era {
    Modern(String),
    Legacy(String),
}

pub(super) enum Link {
    Stdio(stdio::StdioLink),
    Http(Arc<http::HttpLink>),
    /// The deprecated HTTP+SSE transport of 2024-11-05.
    Sse(Arc<sse_legacy::SseLink>),
}

/// One live connection to an upstream server.
pub struct Peer {
    pub server: String,
    pub(super) mux: Arc<Mux>,
    pub(super) link: Link,
    pub era: Era,
    /// The server's answer to `server/discover` or `initialize`.
    pub info: serde_json::Value,
}

impl Peer {
    pub(super) async fn send(
        &self,
        body: String,
        id: Option<u64>,
        method: &str,
        name: Option<&str>,
    ) -> Result<(), PeerError> {
        match &self.link {
            Link::Stdio(l) => l.send(body).await,
            Link::Http(l) => l.send(body, http::Route { id, method, name }).await,
            Link::Sse(l) => l.send(body).await,
        }
    }

    /// Sends a request and waits for its answer. Messages the server sends
    /// about this request go to `sink`. Cancelling `cancel` withdraws it.
    pub async fn call(
        &self,
        permit: Permit,
        method: &str,
        mut params: Params,
        sink: Option<Sink>,
        timeout: Duration,
        cancel: Option<&CancellationToken>,
    ) -> Result<Reply, PeerError> {
        permit.check(&self.server, method)?;
        let id = self.mux.next_id();
        let mut meta = params.meta();
        match &self.era {
            Era::Modern(v) => {
                meta.set_str(META_VERSION, v);
                if !meta.0.contains_key(META_CAPS) {
                    meta.set_raw(
                        META_CAPS,
                        jsonrpc::to_raw(&crate::handshake::client_capabilities()),
                    );
                }
                meta.set_raw(META_INFO, jsonrpc::to_raw(&crate::handshake::client_info()));
            }
            Era::Legacy(_) => {
                meta.0
                    .retain(|k, _| !k.starts_with("io.modelcontextprotocol/"));
            }
        }
        let progress = meta.0.get("progressToken").map(|t| t.get().to_string());
        if let (Some(token), Some(sink)) = (&progress, &sink) {
            self.mux.register_progress(token.clone(), sink.clone());
        }
        params.set_meta(meta);
        let name = params.str("name").or_else(|| params.str("uri"));
        let body = if params.0.is_empty() && matches!(self.era, Era::Legacy(_)) {
            jsonrpc::request(&id.to_string(), method, None)
        } else {
            jsonrpc::request(&id.to_string(), method, Some(&params.to_raw()))
        };
        let rx = self.mux.register(id, sink);
        let cleanup = |mux: &Mux| {
            mux.forget(id);
            if let Some(t) = &progress {
                mux.forget_progress(t);
            }
        };
        if let Err(e) = self.send(body, Some(id), method, name.as_deref()).await {
            cleanup(&self.mux);
            return Err(e);
        }
        let never = CancellationToken::new();
        let cancel = cancel.unwrap_or(&never);
        let outcome = tokio::select! {
            r = rx => r.map_err(|_| PeerError::Closed("the server closed the connection before answering".into())),
            _ = tokio::time::sleep(timeout) => Err(PeerError::Timeout(timeout.as_secs())),
            _ = cancel.cancelled() => Err(PeerError::Cancelled),
        };
        if let Some(t) = &progress {
            self.mux.forget_progress(t);
        }
        if matches!(outcome, Err(PeerError::Timeout(_) | PeerError::Cancelled)) {
            self.mux.forget(id);
            let reason = if cancel.is_cancelled() {
                "the client cancelled"
            } else {
                "timed out at the gateway"
            };
            let params = serde_json::json!({"requestId": id, "reason": reason});
            let _ = self
                .notify(
                    own(),
                    "notifications/cancelled",
                    Some(jsonrpc::to_raw(&params)),
                )
                .await;
        }
        outcome
    }

    pub async fn notify(
        &self,
        permit: Permit,
        method: &str,
        params: Option<Box<RawValue>>,
    ) -> Result<(), PeerError> {
        permit.check(&self.server, method)?;
        let body = jsonrpc::notification(method, params.as_deref());
        self.send(body, None, method, None).await
    }

    /// Answers a request the server sent (sampling, elicitation, roots...).
    pub async fn respond(
        &self,
        permit: Permit,
        id: &RawValue,
        reply: Reply,
    ) -> Result<(), PeerError> {
        permit.check(&self.server, RESPONSE)?;
        let body = match &reply {
            Reply::Result(r) => jsonrpc::response(id, r),
            Reply::Error(e) => jsonrpc::error_response(Some(id), e),
        };
        self.send(body, None, RESPONSE, None).await
    }

    /// Answers a server's `ping`: Warden's own traffic.
    pub async fn pong(&self, id: &RawValue) -> Result<(), PeerError> {
        self.respond(own(), id, Reply::Result(jsonrpc::raw("{}")))
            .await
    }

    pub fn capabilities(&self) -> &serde_json::Value {
        &self.info["capabilities"]
    }

    pub(super) async fn shutdown(&self) {
        if let Link::Http(l) = &self.link {
            l.end_session().await;
        }
    }
}
