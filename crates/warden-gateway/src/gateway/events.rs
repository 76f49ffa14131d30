use super::*;

impl Gateway {
    pub(super) async fn relay_events(self, mut rx: mpsc::UnboundedReceiver<Event>) {
        while let Some(ev) = rx.recv().await {
            match ev {
                Event::Changed { server, kinds } => {
                    if kinds.contains(&ListKind::Tools) {
                        // Vet the new list now, so a changed tool is
                        // quarantined (and admins told) before anyone asks.
                        let gw = self.clone();
                        let s = server.clone();
                        tokio::spawn(async move {
                            if let Some(up) = gw.upstream(&s)
                                && let Err(e) = gw.index(&up).await
                            {
                                tracing::error!(server = %s, error = %e, "could not vet the server's tools");
                            }
                        });
                    }
                    self.notify_changed(&server, &kinds);
                    let gw = self.clone();
                    tokio::spawn(async move { gw.sync_subscriptions(&server).await });
                }
                Event::Status { server, status } => {
                    let (outcome, detail) = match &status {
                        Status::Failed { error } => (
                            "failed",
                            Some(serde_json::json!({"error": error}).to_string()),
                        ),
                        Status::Ready => ("ready", None),
                        Status::Stopped => ("stopped", None),
                        Status::Blocked { reason } => (
                            "blocked",
                            Some(serde_json::json!({"reason": reason}).to_string()),
                        ),
                        Status::Starting => ("starting", None),
                    };
                    let event = NewEvent {
                        kind: "server.status".into(),
                        server: Some(server),
                        outcome: Some(outcome.into()),
                        detail,
                        ..Default::default()
                    };
                    if let Err(e) = self.inner.store.activity().append(event).await {
                        tracing::error!(error = %e, "could not record a server's status");
                    }
                }
                Event::Broadcast {
                    server,
                    env,
                    queued: _queued,
                } => {
                    let method = env.method.clone().unwrap_or_default();
                    let params = env.params.as_deref();
                    let message = jsonrpc::notification(&method, params);
                    let parsed_uri = (method == "notifications/resources/updated")
                        .then(|| env.params_map().ok().and_then(|p| p.str("uri")))
                        .flatten();
                    for s in self.sessions_for(&server) {
                        // An update goes only to the sessions subscribed to it.
                        if let Some(uri) = &parsed_uri
                            && !s
                                .subscriptions
                                .lock()
                                .contains(&(server.clone(), uri.clone()))
                        {
                            continue;
                        }
                        s.push(message.clone());
                    }
                    let parsed = env.params_map().ok();
                    self.push_listens(&server, &method, parsed.as_ref());
                }
            }
        }
    }

    pub(super) fn sessions_for(&self, server: &str) -> Vec<Arc<Session>> {
        self.inner
            .sessions
            .read()
            .values()
            .filter(|s| s.scope.as_deref().is_none_or(|sc| sc == server))
            // Only agents that may use something on the server hear from it.
            .filter(|s| s.agent.access.touches(server))
            .cloned()
            .collect()
    }

    pub(super) fn notify_changed(&self, server: &str, kinds: &[ListKind]) {
        let mut methods: Vec<&str> = kinds.iter().map(|k| k.list_changed()).collect();
        methods.dedup();
        for s in self.sessions_for(server) {
            for m in &methods {
                s.push(jsonrpc::notification(m, None));
            }
        }
        for m in &methods {
            self.push_listens(server, m, None);
        }
    }

    /// Delivers a notification to the listen streams that asked for it;
    /// streams whose client went away are dropped.
    pub(super) fn push_listens(&self, server: &str, method: &str, params: Option<&Params>) {
        let mut gone = Vec::new();
        for (id, l) in self.inner.listens.read().iter() {
            if l.scope.as_deref().is_some_and(|s| s != server)
                || !l.wants(method, params)
                || !l.access.touches(server)
            {
                continue;
            }
            if method == "notifications/resources/updated"
                && let Some(uri) = params.and_then(|p| p.str("uri"))
                && !l.access.visible(server, Target::Resource(&uri))
            {
                continue;
            }
            if l.tx.offer(tagged(method, params, id)) == Offer::Gone {
                gone.push(id.clone());
            }
        }
        if !gone.is_empty() {
            let mut listens = self.inner.listens.write();
            for id in gone {
                listens.remove(&id);
            }
        }
    }

    /// `subscriptions/listen` (2026-07-28): a long-lived answer stream that
    /// starts with an acknowledgement and then carries what was asked for.
    pub(super) fn listen(&self, caller: &Caller, params: &Params) -> Answer {
        let filter = params
            .0
            .get("notifications")
            .and_then(|n| serde_json::from_str::<serde_json::Value>(n.get()).ok())
            .unwrap_or_default();
        let flag = |k: &str| filter[k].as_bool().unwrap_or(false);
        let uris = filter["resourceSubscriptions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let id = random_id();
        let (tx, rx) = outbox();
        let ack = tagged("notifications/subscriptions/acknowledged", None, &id);
        tx.send(ack);
        self.inner.listens.write().insert(
            id,
            Listen {
                agent_id: caller.agent.id,
                access: caller.agent.access.clone(),
                scope: caller.scope.clone(),
                tools: flag("toolsListChanged"),
                prompts: flag("promptsListChanged"),
                resources: flag("resourcesListChanged"),
                resource_uris: uris,
                tx,
            },
        );
        Answer::Stream(rx)
    }

    /// Brings a server's resource subscriptions in line with what the clients
    /// still want: one upstream subscription per URI, however many clients
    /// share it (a legacy server gets subscribe/unsubscribe, a 2026-07-28
    /// server one `subscriptions/listen` stream for the whole set).
    pub(super) async fn sync_subscriptions(&self, server: &str) {
        if self.paused() {
            return;
        }
        let Some(up) = self.upstream(server) else {
            return;
        };
        let wanted: std::collections::BTreeSet<String> = self
            .inner
            .sessions
            .read()
            .values()
            .flat_map(|s| {
                s.subscriptions
                    .lock()
                    .iter()
                    .filter(|(sv, _)| sv == server)
                    .map(|(_, u)| u.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        up.subscribe_to(wanted).await;
    }
}
