use super::*;

impl Gateway {
    /// Asks the client each input request of an input_required result and
    /// returns the params to retry with (inputResponses, requestState).
    pub(super) async fn gather_inputs(
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
                if self
                    .record_server_request(peer_server, method, Some(&session.agent), "relayed")
                    .await
                    .is_none()
                {
                    return Err("Warden could not record the server's question in its activity log, so it was not passed on".into());
                }
                let our_id = format!("\"w{}\"", self.inner.next.fetch_add(1, Ordering::Relaxed));
                let (tx, rx) = tokio::sync::oneshot::channel();
                session
                    .relayed
                    .lock()
                    .insert(our_id.clone(), Relayed::Local(tx));
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
    pub(super) async fn relay_to_client(
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
                if method == "ping" {
                    let _ = peer.pong(&upstream_id).await;
                    return None;
                }
                let session = match session {
                    Some(s) if !paused && capability.is_none_or(|c| s.can(c)) => s,
                    _ => {
                        let receipt = self
                            .record_server_request(
                                &peer.server,
                                &method,
                                session.map(|s| &s.agent),
                                "refused",
                            )
                            .await;
                        let reply = Reply::Error(jsonrpc::error_object(
                            jsonrpc::METHOD_NOT_FOUND,
                            &if paused {
                                format!(
                                    "Warden has paused every agent, so {method} was not passed on"
                                )
                            } else {
                                format!("the client does not support {method}")
                            },
                        ));
                        // Unrecorded, unanswered: the server's request times out.
                        if let Some(receipt) = receipt {
                            let _ = peer.respond(receipt.permit(), &upstream_id, reply).await;
                        }
                        return None;
                    }
                };
                // Unrecorded, not relayed: the server's request times out.
                self.record_server_request(&peer.server, &method, Some(&session.agent), "relayed")
                    .await?;
                let our_id = format!("\"w{}\"", self.inner.next.fetch_add(1, Ordering::Relaxed));
                session.relayed.lock().insert(
                    our_id.clone(),
                    Relayed::Upstream(peer.server.clone(), upstream_id, method.clone()),
                );
                Some(jsonrpc::request(&our_id, &method, env.params.as_deref()))
            }
            _ => None,
        }
    }

    pub(super) async fn on_client_response(&self, caller: &Caller, env: Envelope) {
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
            Relayed::Upstream(server, upstream_id, asked) => {
                let Some(peer) = self.upstream(&server).and_then(|u| u.peer()) else {
                    return;
                };
                // The answer is the agent's words to the server: recorded
                // (with its keyed hash) before it is sent.
                let (body, error) = match &reply {
                    Reply::Result(r) => (r.get(), false),
                    Reply::Error(e) => (e.get(), true),
                };
                let (_, hash) = self.inner.redactor.arguments(Some(body));
                let event = NewEvent {
                    kind: "server_request.answered".into(),
                    agent: Some(caller.agent.name.clone()),
                    on_behalf_of: caller.agent.owner.clone(),
                    chain: caller.agent.chain_json(),
                    server: Some(server.clone()),
                    tool: Some(asked),
                    arguments_hash: hash,
                    outcome: Some(if error { "error" } else { "answered" }.into()),
                    ..Default::default()
                };
                match self.commit(event, upstream::RESPONSE).await {
                    Ok(receipt) => {
                        let _ = peer.respond(receipt.permit(), &upstream_id, reply).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, %server, "not passing on a client's answer that could not be logged");
                    }
                }
            }
        }
    }

    pub(super) async fn on_client_notification(&self, caller: &Caller, env: &Envelope) {
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
                // Only servers this agent may use hear about its roots, and
                // each hears it after its row is committed.
                const METHOD: &str = "notifications/roots/list_changed";
                if self.paused() {
                    return;
                }
                for up in self.ready_upstreams(caller.scope.as_deref()) {
                    if !caller.agent.access.touches(&up.name) {
                        continue;
                    }
                    let Some(peer) = up.peer() else { continue };
                    match self
                        .commit(self.message_event(caller, &up.name, METHOD, None), METHOD)
                        .await
                    {
                        Ok(receipt) => {
                            let _ = peer.notify(receipt.permit(), METHOD, None).await;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, server = %up.name, "not passing on a notification that could not be logged");
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// The levels `logging/setLevel` takes (RFC 5424's, as MCP names them).
pub(super) const LOG_LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

impl Gateway {
    /// The row of a message an agent sends a server outside a call.
    pub(super) fn message_event(
        &self,
        caller: &Caller,
        server: &str,
        method: &str,
        params: Option<&str>,
    ) -> NewEvent {
        let (arguments, arguments_hash) = self.inner.redactor.arguments(params);
        NewEvent {
            kind: "message.sent".into(),
            agent: Some(caller.agent.name.clone()),
            on_behalf_of: caller.agent.owner.clone(),
            chain: caller.agent.chain_json(),
            server: Some(server.to_string()),
            tool: Some(method.to_string()),
            arguments,
            arguments_hash,
            decision: Some("allow".into()),
            outcome: Some("sent".into()),
            ..Default::default()
        }
    }

    /// `logging/setLevel`: the level alone (never the rest of the client's
    /// params) goes to each server the agent may use, each after its row.
    pub(super) async fn set_level(
        &self,
        caller: &Caller,
        id: &RawValue,
        params: &Params,
    ) -> Answer {
        const METHOD: &str = "logging/setLevel";
        let Some(level) = params
            .str("level")
            .filter(|l| LOG_LEVELS.contains(&l.as_str()))
        else {
            return Answer::Message(jsonrpc::error(
                Some(id),
                jsonrpc::INVALID_PARAMS,
                &format!("params.level must be one of {}", LOG_LEVELS.join(", ")),
            ));
        };
        if let Some(s) = &caller.session {
            *s.log_level.lock() = Some(level.clone());
        }
        let mut sent = Params::default();
        sent.set_str("level", &level);
        let raw = sent.to_raw();
        for up in self.ready_upstreams(caller.scope.as_deref()) {
            if !caller.agent.access.touches(&up.name) || self.paused() {
                continue;
            }
            let Some(peer) = up
                .peer()
                .filter(|p| p.capabilities().get("logging").is_some())
            else {
                continue;
            };
            let event = self.message_event(caller, &up.name, METHOD, Some(raw.get()));
            let receipt = match self.commit(event, METHOD).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, server = %up.name, "not sending a log level that could not be logged");
                    return Answer::Message(jsonrpc::error(
                        Some(id),
                        jsonrpc::INTERNAL_ERROR,
                        "Warden could not record this request in its activity log, so it was not sent. Check that the disk has space and the data folder is writable, then try again.",
                    ));
                }
            };
            let p = sent.clone();
            tokio::spawn(async move {
                let _ = peer
                    .call(
                        receipt.permit(),
                        METHOD,
                        p,
                        None,
                        Duration::from_secs(10),
                        None,
                    )
                    .await;
            });
        }
        Answer::Message(jsonrpc::response(id, &jsonrpc::raw("{}")))
    }
}

pub(super) fn is_input_required(result: &RawValue) -> bool {
    Params::parse(result.get())
        .is_ok_and(|p| p.str("resultType").as_deref() == Some("input_required"))
}
