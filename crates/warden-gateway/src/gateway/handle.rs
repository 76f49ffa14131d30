use super::*;

impl Gateway {
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
        if let Some(kind) = ListKind::listed_by(&method) {
            return self.list(&caller, &id, &params, kind, modern).await;
        }
        match method.as_str() {
            "initialize" => self.initialize(caller, &id, &params),
            "server/discover" => ok(self.discover(caller.scope.as_deref())),
            "subscriptions/listen" if modern => self.listen(&caller, &params),
            "ping" => ok(serde_json::json!({})),
            "logging/setLevel" => self.set_level(&caller, &id, &params).await,
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
                let (Some(session), server) = (&caller.session, self.route_uri(&caller, &uri))
                else {
                    return Answer::Message(jsonrpc::error(
                        Some(&id),
                        jsonrpc::INVALID_REQUEST,
                        "subscriptions need a session: send initialize first",
                    ));
                };
                let server = match server {
                    Ok(s) => s,
                    Err(why) => {
                        return Answer::Message(jsonrpc::error(
                            Some(&id),
                            jsonrpc::INVALID_PARAMS,
                            &why,
                        ));
                    }
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
                if self.paused() && method == "resources/subscribe" {
                    return denial(&id, &method, PAUSED, modern);
                }
                // What the session's subscriptions send upstream is
                // recorded as each joins or leaves the set.
                let mut uri_only = Params::default();
                uri_only.set_str("uri", &uri);
                let mut event =
                    self.message_event(&caller, &server, &method, Some(uri_only.to_raw().get()));
                event.outcome = Some(method.trim_start_matches("resources/").to_string() + "d");
                if let Err(e) = self.inner.store.activity().append(event).await {
                    tracing::error!(error = %e, %server, "refusing a subscription that could not be logged");
                    return Answer::Message(jsonrpc::error(
                        Some(&id),
                        jsonrpc::INTERNAL_ERROR,
                        "Warden could not record this subscription in its activity log, so it was not made. Check that the disk has space and the data folder is writable, then try again.",
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
                    Ok(server) => {
                        self.forward(caller, id, &method, params, server, uri, "uri")
                            .await
                    }
                    Err(why) => {
                        Answer::Message(jsonrpc::error(Some(&id), jsonrpc::INVALID_PARAMS, &why))
                    }
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
                            .and_then(|u| self.route_uri(&caller, &u).ok())
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

    pub(super) fn initialize(&self, caller: Caller, id: &RawValue, params: &Params) -> Answer {
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

    pub(super) fn discover(&self, scope: Option<&str>) -> serde_json::Value {
        crate::handshake::discover_result(self.server_description(scope))
    }

    /// Capabilities, identity and instructions: Warden's own on the
    /// aggregated endpoint, the server's on a single server's endpoint.
    pub(super) fn server_description(&self, scope: Option<&str>) -> serde_json::Value {
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

    pub(super) async fn list(
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
}

/// A result as a 2026-07-28 client expects it: `resultType` always, and the
/// caching fields on cacheable methods. Results that have them pass as sent.
pub(super) fn modern_result(method: &str, raw: Box<RawValue>) -> Box<RawValue> {
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

/// The answer to a call that policy refused: for a tool, a tool error the
/// agent can read and relay (never a fake success); otherwise an error.
pub const FORBIDDEN: i64 = -32001;

pub(super) fn denial(id: &RawValue, method: &str, why: &str, modern: bool) -> Answer {
    Answer::Message(denial_message(id, method, why, modern))
}

pub(super) fn denial_message(id: &RawValue, method: &str, why: &str, modern: bool) -> String {
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
