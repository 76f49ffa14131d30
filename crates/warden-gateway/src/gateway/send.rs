//! Send: the one road from a decided, recorded call to its server, and back.
//!
//! [`Gateway::forward`] runs the stages in order (see README.md): decide,
//! record, wait for a person if policy asks, then send. What goes out is
//! sent with the [`Receipt`] of its committed row; an `input_required`
//! retry is a new message, so it is decided (and asked about again when the
//! call needed a person) and recorded before it goes.

use super::decide::{Decision, bound_params};
use super::handle::{denial, denial_message, modern_result};
use super::relay::is_input_required;
use super::*;

/// Why a call ended without the server's answer.
enum Stopped {
    Peer(upstream::PeerError),
    /// Refused before a retry went out: (why, the row's outcome).
    Refused(String, &'static str),
}

/// (final, message, JSON-RPC error code) from a call's task to its client.
type Out = mpsc::UnboundedSender<(bool, String, Option<i64>)>;

/// A call on its way: what its task needs after the first row.
struct Call {
    id: Box<RawValue>,
    method: String,
    call_id: String,
    server: String,
    decision: Decision,
    agent: AgentRef,
    session: Option<Arc<Session>>,
    scope: Option<String>,
    modern: bool,
    up: Arc<Upstream>,
    peer: Arc<upstream::Peer>,
    client_token: Option<String>,
    wants_logs: bool,
    cancel: CancellationToken,
    timeout: Duration,
}

impl Call {
    /// A row about this call.
    fn event(&self, kind: &str) -> NewEvent {
        NewEvent {
            kind: format!("{}.{kind}", self.decision.kind),
            call_id: Some(self.call_id.clone()),
            agent: Some(self.agent.name.clone()),
            on_behalf_of: self.agent.owner.clone(),
            chain: self.agent.chain_json(),
            server: Some(self.server.clone()),
            tool: Some(self.decision.tool.clone()),
            ..Default::default()
        }
    }

    fn caller(&self) -> Caller {
        Caller {
            agent: self.agent.clone(),
            modern: self.modern,
            session: self.session.clone(),
            scope: self.scope.clone(),
        }
    }
}

impl Gateway {
    /// Decides, records, forwards and records the outcome of one call to a
    /// server.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn forward(
        &self,
        caller: Caller,
        id: Box<RawValue>,
        method: &str,
        mut params: Params,
        server: String,
        target: String,
        rename: &str,
    ) -> Answer {
        if self.paused() {
            return denial(&id, method, PAUSED, caller.modern);
        }
        // Of the agent's `_meta`, only what the protocol defines goes on (a
        // progress token is swapped for Warden's own below). Anything else
        // would reach the server outside the row and what an approval binds.
        if params.0.contains_key("_meta") {
            params.set_meta(kept_meta(&params.meta()));
        }
        let Some(up) = self.upstream(&server) else {
            return Answer::Message(jsonrpc::error(
                Some(&id),
                jsonrpc::INVALID_PARAMS,
                &format!("no server is named {server:?}"),
            ));
        };
        let Some(peer) = up.peer() else {
            return Answer::Message(jsonrpc::error(
                Some(&id),
                jsonrpc::INTERNAL_ERROR,
                &format!(
                    "the server {server:?} is not available right now ({}); Warden restarts it automatically, try again shortly",
                    up.status()
                ),
            ));
        };
        if !rename.is_empty() {
            params.set_str(rename, &target);
        }
        // Decide.
        let decision = match self.decide(&caller, &up, method, &params, &target).await {
            Ok(d) => d,
            Err(why) => {
                return Answer::Message(jsonrpc::error(Some(&id), jsonrpc::INTERNAL_ERROR, &why));
            }
        };
        let call_id = random_id();
        // Record.
        let mut requested = NewEvent {
            kind: format!("{}.requested", decision.kind),
            call_id: Some(call_id.clone()),
            agent: Some(caller.agent.name.clone()),
            on_behalf_of: caller.agent.owner.clone(),
            chain: caller.agent.chain_json(),
            server: Some(server.clone()),
            tool: Some(decision.tool.clone()),
            arguments: decision.arguments.clone(),
            arguments_hash: decision.arguments_hash.clone(),
            risk: decision
                .vetted
                .as_ref()
                .map(|t| t.risk.as_str().to_string()),
            decision: Some(
                if decision.request.is_some() {
                    "ask"
                } else {
                    decision.effect.as_str()
                }
                .into(),
            ),
            approver: decision.approver.clone(),
            detail: decision.also_sent.as_ref().map(|(text, hash)| {
                serde_json::json!({
                    "also_sent": serde_json::from_str::<serde_json::Value>(text).unwrap_or_default(),
                    "also_sent_hash": hash,
                })
                .to_string()
            }),
            ..Default::default()
        };
        if decision.effect == Effect::Deny {
            let quarantined = decision.quarantined;
            requested.outcome = Some(
                if quarantined {
                    "quarantined"
                } else {
                    "refused"
                }
                .into(),
            );
            if let Some(who) = &decision.refused_by {
                let mut detail: serde_json::Value = requested
                    .detail
                    .as_deref()
                    .and_then(|d| serde_json::from_str(d).ok())
                    .unwrap_or_else(|| serde_json::json!({}));
                detail["refused_by"] = serde_json::json!(who);
                requested.detail = Some(detail.to_string());
            }
            if let Err(e) = self.inner.store.activity().append(requested).await {
                tracing::error!(error = %e, "could not record a refused call");
            }
            let (exposed, tool) = (&decision.exposed, &decision.tool);
            let why = if quarantined {
                let new = decision
                    .vetted
                    .as_ref()
                    .is_some_and(|t| t.quarantine.as_deref() == Some("new"));
                format!(
                    "Warden blocked {exposed}: {}, so it is quarantined until an admin reviews it. Ask an admin to run: warden tool review {server} {tool}",
                    if new {
                        "the tool is new on this server"
                    } else {
                        "the server changed this tool's definition after it was approved"
                    }
                )
            } else if let Some(who) = &decision.refused_by {
                format!(
                    "Warden denied {exposed}: agent {:?} acts for {who:?} through a delegation, and {who:?} may not use it. Ask an admin to grant {who:?} access if it needs it.",
                    caller.agent.name
                )
            } else {
                format!(
                    "Warden denied {exposed}: agent {:?} has no role that allows it. Ask an admin to grant access if it needs it.",
                    caller.agent.name
                )
            };
            return denial(&id, method, &why, caller.modern);
        }
        // Fail closed: nothing is forwarded unless its record is committed.
        let receipt = match self.commit(requested, method).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, %server, "refusing a call that could not be logged");
                return Answer::Message(jsonrpc::error(
                    Some(&id),
                    jsonrpc::INTERNAL_ERROR,
                    "Warden could not record this call in its activity log, so it was not sent. Check that the disk has space and the data folder is writable, then try again.",
                ));
            }
        };
        // The first allowed use pins the definition (an approved call is
        // pinned once approved).
        if decision.request.is_none()
            && let Some(t) = &decision.vetted
            && t.state == warden_store::tools::PinState::Seen
            && let Err(why) = self.pin(&server, &target, &t.definition_hash).await
        {
            return denial(&id, method, &why, caller.modern);
        }

        // `_meta` is read once: a 2026-07-28 client hears log messages only
        // when it asked for them, and a progress token is swapped for ours.
        let mut meta = params.meta();
        let wants_logs = !caller.modern || meta.0.contains_key(LOG_LEVEL_META);
        let client_token = meta.0.get("progressToken").map(|t| t.get().to_string());
        if client_token.is_some() {
            meta.set_str(
                "progressToken",
                &format!("w{}", self.inner.next.fetch_add(1, Ordering::Relaxed)),
            );
            params.set_meta(meta);
        }
        let cancel = CancellationToken::new();
        if let Some(s) = &caller.session {
            s.in_flight
                .lock()
                .insert(id.get().to_string(), cancel.clone());
        }
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<(bool, String, Option<i64>)>();
        let call = Call {
            id,
            method: method.to_string(),
            call_id,
            server,
            decision,
            agent: caller.agent.clone(),
            session: caller.session.clone(),
            scope: caller.scope.clone(),
            modern: caller.modern,
            up,
            peer,
            client_token,
            wants_logs,
            cancel,
            timeout: Duration::from_secs(self.inner.config.read().gateway.call_timeout_secs),
        };
        tokio::spawn(self.clone().run(call, params, receipt, out_tx));

        match out_rx.recv().await {
            Some((true, message, Some(code))) if caller.modern => match code {
                jsonrpc::METHOD_NOT_FOUND => Answer::NotFound(message),
                // Errors about the request itself are HTTP 400 on 2026-07-28.
                -32022..=-32020 => Answer::BadRequest(message),
                _ => Answer::Message(message),
            },
            Some((true, message, _)) => Answer::Message(message),
            Some((false, first, _)) => {
                let (tx, rx) = outbox();
                tx.send(first);
                tokio::spawn(async move {
                    while let Some((last, m, _)) = out_rx.recv().await {
                        if !tx.send(m) || last {
                            break;
                        }
                    }
                });
                Answer::Stream(rx)
            }
            None => Answer::Message(jsonrpc::error(
                None,
                jsonrpc::INTERNAL_ERROR,
                "the call ended without an answer",
            )),
        }
    }

    /// Waits for a person when asked, then sends: the call's task.
    async fn run(self, mut call: Call, params: Params, receipt: Receipt, out_tx: Out) {
        let approved = match call.decision.request.take() {
            Some(r) => self
                .approve(&call, r, &out_tx)
                .await
                .map(Some)
                .map_err(|(why, outcome)| Stopped::Refused(why, outcome)),
            None => Ok(None),
        };
        let started = Instant::now();
        let (reply, approved) = match approved {
            Ok(by) => (self.send(&call, params, receipt, &out_tx).await, by),
            Err(stopped) => (Err(stopped), None),
        };
        if let Some(s) = &call.session {
            s.in_flight.lock().remove(call.id.get());
        }
        let reply = match reply {
            Ok(r) => Ok(r),
            Err(Stopped::Peer(e)) => Err(e),
            Err(Stopped::Refused(why, outcome)) => {
                let message = denial_message(&call.id, &call.method, &why, call.modern);
                let _ = out_tx.send((true, message, None));
                let mut completed = call.event("completed");
                completed.outcome = Some(outcome.into());
                if let Err(e) = self.inner.store.activity().append(completed).await {
                    tracing::error!(error = %e, "could not record a call's outcome");
                }
                return;
            }
        };
        let latency = started.elapsed().as_micros() as i64;
        let error_code = match &reply {
            Ok(Reply::Error(e)) => serde_json::from_str::<serde_json::Value>(e.get())
                .ok()
                .and_then(|v| v["code"].as_i64()),
            _ => None,
        };
        let id = &call.id;
        let (message, outcome) = match reply {
            Ok(Reply::Result(r)) => {
                let tool_error = r.get().contains("\"isError\":true");
                let r = if call.modern {
                    modern_result(&call.method, r)
                } else {
                    r
                };
                (
                    jsonrpc::response(id, &r),
                    if tool_error { "tool_error" } else { "ok" }.to_string(),
                )
            }
            Ok(Reply::Error(e)) => (jsonrpc::error_response(Some(id), &e), "error".to_string()),
            Err(e) => {
                let text = format!(
                    "the server {:?} could not complete the request: {e}",
                    call.server
                );
                (
                    jsonrpc::error(Some(id), jsonrpc::INTERNAL_ERROR, &text),
                    format!("failed: {e}"),
                )
            }
        };
        let _ = out_tx.send((true, message, error_code));
        let mut completed = call.event("completed");
        completed.outcome = Some(outcome);
        completed.latency_us = Some(latency);
        // Who let it through, on the row a person reads first.
        if let Some((by, choice)) = approved {
            completed.decision = Some("allow".into());
            completed.approver = Some(by);
            completed.detail = Some(serde_json::json!({"choice": choice.as_str()}).to_string());
        } else if let Some(by) = &call.decision.approver {
            completed.decision = Some("allow".into());
            completed.approver = Some(by.clone());
        }
        // Nothing waits on the outcome: it shares the next commit.
        self.inner.store.activity().record(completed);
    }

    /// A person's answer, and the checks after it (paused meanwhile?).
    async fn approve(
        &self,
        call: &Call,
        r: ApprovalRequest,
        out_tx: &Out,
    ) -> std::result::Result<(String, Choice), (String, &'static str)> {
        let vetted_hash = call
            .decision
            .vetted
            .as_ref()
            .map(|t| t.definition_hash.as_str());
        let approved = self
            .await_approval(
                &call.up,
                r,
                &call.call_id,
                &call.cancel,
                out_tx,
                call.client_token.as_deref(),
                &call.decision.exposed,
                vetted_hash,
                &call.method,
            )
            .await?;
        // Paused while the person was being asked: nothing goes out.
        if self.paused() {
            return Err((PAUSED.to_string(), "refused"));
        }
        Ok(approved)
    }

    /// Sends the call, relays what the server says about it, and answers a
    /// 2026-07-28 server's `input_required` for a legacy client: each retry
    /// decided and recorded before it goes.
    async fn send(
        &self,
        call: &Call,
        mut params: Params,
        receipt: Receipt,
        out_tx: &Out,
    ) -> std::result::Result<Reply, Stopped> {
        let peer = &call.peer;
        let session = call.session.as_ref();
        let upstream_modern = matches!(peer.era, upstream::Era::Modern(_));
        if upstream_modern && let Some(level) = session.and_then(|s| s.log_level.lock().clone()) {
            let mut meta = params.meta();
            meta.set_str(LOG_LEVEL_META, &level);
            params.set_meta(meta);
        }
        // A legacy client cannot answer a 2026-07-28 server's
        // input_required result itself: the gateway asks it each input
        // request as a server request and retries with the answers.
        let retry_base = (!call.modern && upstream_modern).then(|| params.clone());
        let (sink_tx, mut sink_rx) = mpsc::unbounded_channel::<Incoming>();
        let mut next = Some((params, receipt));
        let mut rounds = 0;
        // A server that floods notifications during a call gets the first
        // few thousand through; the rest are dropped, so a slow client
        // cannot make Warden hold them all.
        let mut notes = NoteBudget::default();
        loop {
            let Some((p, receipt)) = next.take() else {
                return Err(Stopped::Peer(upstream::PeerError::Cancelled));
            };
            let sent = peer.call(
                receipt.permit(),
                &call.method,
                p,
                Some(sink_tx.clone()),
                call.timeout,
                Some(&call.cancel),
            );
            tokio::pin!(sent);
            let r = loop {
                tokio::select! {
                    // Messages about the call go first, so none is
                    // overtaken by the answer.
                    biased;
                    Some(msg) = sink_rx.recv() => {
                        if notes.admit(&msg, &peer.server)
                            && let Some(m) = self.relay_to_client(peer, session, msg, call.client_token.as_deref(), call.wants_logs).await
                        {
                            let _ = out_tx.send((false, m, None));
                        }
                    }
                    r = &mut sent => break r,
                }
            };
            // What the server sent just before its answer is delivered too.
            while let Ok(msg) = sink_rx.try_recv() {
                if notes.admit(&msg, &peer.server)
                    && let Some(m) = self
                        .relay_to_client(
                            peer,
                            session,
                            msg,
                            call.client_token.as_deref(),
                            call.wants_logs,
                        )
                        .await
                {
                    let _ = out_tx.send((false, m, None));
                }
            }
            match (&r, &retry_base) {
                (Ok(Reply::Result(res)), Some(base)) if rounds < 10 && is_input_required(res) => {
                    rounds += 1;
                    let retry = match self
                        .gather_inputs(&peer.server, session, res, out_tx, call.timeout)
                        .await
                    {
                        Ok(extra) => {
                            let mut p = base.clone();
                            for (k, v) in extra {
                                p.set_raw(k, v);
                            }
                            p
                        }
                        Err(why) => {
                            return Ok(Reply::Error(jsonrpc::error_object(
                                jsonrpc::INTERNAL_ERROR,
                                &why,
                            )));
                        }
                    };
                    let receipt = self.retry(call, &retry, rounds, out_tx).await?;
                    next = Some((retry, receipt));
                }
                _ => return r.map_err(Stopped::Peer),
            }
        }
    }

    /// A retry is a new message: a call that needed a person asks again
    /// (unless these exact params stand approved), and the retry's row is
    /// committed before it goes.
    async fn retry(
        &self,
        call: &Call,
        params: &Params,
        round: u32,
        out_tx: &Out,
    ) -> std::result::Result<Receipt, Stopped> {
        if self.paused() {
            return Err(Stopped::Refused(PAUSED.into(), "refused"));
        }
        if call.cancel.is_cancelled() {
            return Err(Stopped::Peer(upstream::PeerError::Cancelled));
        }
        let d = &call.decision;
        let caller = call.caller();
        let r = self.approval_request(
            &caller,
            &call.method,
            &call.server,
            &d.tool,
            d.risk,
            d.vetted.as_deref(),
            params,
        );
        // Asked again when a person had to approve the call, unless these
        // params stand approved (or the tool is approved for the session);
        // checked again in any case: access, the tool's definition and risk.
        let approver = match (d.asked, self.already_approved(&r)) {
            (true, None) => {
                let (by, _) = self
                    .approve(call, r, out_tx)
                    .await
                    .map_err(|(why, outcome)| Stopped::Refused(why, outcome))?;
                Some(by)
            }
            (asked, standing) => {
                let vetted_hash = d.vetted.as_ref().map(|t| t.definition_hash.as_str());
                self.recheck(&call.up, &r, &call.method, &d.exposed, vetted_hash)
                    .await
                    .map_err(|(why, outcome)| Stopped::Refused(why, outcome))?;
                if asked { standing } else { d.approver.clone() }
            }
        };
        let (arguments, arguments_hash) =
            self.inner.redactor.arguments(Some(&bound_params(params)));
        let mut event = call.event("retried");
        event.arguments = arguments;
        event.arguments_hash = arguments_hash;
        event.decision = Some("allow".into());
        event.approver = approver;
        event.detail = Some(serde_json::json!({"round": round}).to_string());
        self.commit(event, &call.method).await.map_err(|e| {
            tracing::error!(error = %e, server = %call.server, "refusing a retry that could not be logged");
            Stopped::Refused("Warden could not record the retried call in its activity log, so it was not sent. Check that the disk has space and the data folder is writable, then try again.".into(), "failed")
        })
    }
}

/// Where a 2026-07-28 request carries the log level its client wants.
const LOG_LEVEL_META: &str = "io.modelcontextprotocol/logLevel";

/// What of an agent's `_meta` Warden passes to a server: a progress token,
/// the protocol's own keys (`io.modelcontextprotocol/…`: the version, the
/// client's capabilities and name, which a 2026-07-28 server checks), with a
/// log level only when it is one of the levels.
fn kept_meta(meta: &Params) -> Params {
    let mut kept = Params::default();
    for (key, value) in &meta.0 {
        let protocol = key.starts_with("io.modelcontextprotocol/") && key != LOG_LEVEL_META;
        if protocol || key == "progressToken" {
            kept.set_raw(key, value.clone());
        }
    }
    if let Some(level) = meta
        .str(LOG_LEVEL_META)
        .filter(|l| super::relay::LOG_LEVELS.contains(&l.as_str()))
    {
        kept.set_str(LOG_LEVEL_META, &level);
    }
    kept
}

/// How many notifications one call passes on to its client.
pub(super) const NOTES_PER_CALL: usize = 2000;

/// Counts a call's notifications; requests and answers always pass.
#[derive(Default)]
pub(super) struct NoteBudget {
    passed: usize,
    dropped: usize,
}

impl NoteBudget {
    pub(super) fn admit(&mut self, msg: &Incoming, server: &str) -> bool {
        if msg.env.kind() != Some(jsonrpc::Kind::Notification) {
            return true;
        }
        if self.passed < NOTES_PER_CALL {
            self.passed += 1;
            return true;
        }
        if self.dropped == 0 {
            tracing::warn!(%server, limit = NOTES_PER_CALL, "a server sent more notifications during one call than Warden passes on; dropping the rest");
        }
        self.dropped += 1;
        false
    }
}
