use super::*;

impl Gateway {
    /// Waits for a person's answer to a call that needs one. `Ok` when
    /// approved, after the decision is committed to the activity log;
    /// otherwise what the agent is told and the call's outcome.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn await_approval(
        &self,
        up: &Upstream,
        r: ApprovalRequest,
        call_id: &str,
        cancel: &CancellationToken,
        out_tx: &mpsc::UnboundedSender<(bool, String, Option<i64>)>,
        client_token: Option<&str>,
        exposed: &str,
        vetted_hash: Option<&str>,
        method: &str,
    ) -> std::result::Result<(String, Choice), (String, &'static str)> {
        let timeout = Duration::from_secs(self.inner.config.read().approvals.timeout_secs);
        let person = r.person.clone().unwrap_or_else(|| "an admin".into());
        let deadline = Instant::now() + timeout;
        let ask = self.inner.broker.ask(r.clone(), timeout, cancel);
        tokio::pin!(ask);
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        let mut step = 0u64;
        let mut gone = false;
        let outcome = loop {
            tokio::select! {
                o = &mut ask => break o,
                _ = tick.tick(), if client_token.is_some() && !gone => {
                    // Progress keeps a client with a short timeout waiting.
                    step += 1;
                    let left = deadline.saturating_duration_since(Instant::now()).as_secs();
                    let message = format!(
                        "Waiting for {person} to approve {exposed} (denied in {left} s if nobody answers)"
                    );
                    let params = serde_json::json!({
                        "progressToken": serde_json::from_str::<serde_json::Value>(client_token.unwrap_or("null")).unwrap_or_default(),
                        "progress": step,
                        "message": message,
                    });
                    let note = jsonrpc::notification("notifications/progress", Some(&jsonrpc::to_raw(&params)));
                    if out_tx.send((false, note, None)).is_err() {
                        gone = true;
                        cancel.cancel();
                    }
                }
                _ = out_tx.closed(), if !gone => {
                    // The client went away: the request is withdrawn.
                    gone = true;
                    cancel.cancel();
                }
            }
        };
        let (decision, approver, result, detail) = match &outcome {
            Outcome::Approved {
                by,
                choice,
                step_up,
            } => (
                "allow",
                Some(by.clone()),
                "approved",
                serde_json::json!({"approval": r.id, "choice": choice.as_str(), "step_up": step_up}),
            ),
            Outcome::Denied { by, reason } => (
                "deny",
                Some(by.clone()),
                "denied",
                serde_json::json!({"approval": r.id, "reason": reason}),
            ),
            Outcome::TimedOut => (
                "deny",
                None,
                "timed_out",
                serde_json::json!({"approval": r.id, "timeout_secs": timeout.as_secs()}),
            ),
            Outcome::Withdrawn => (
                "deny",
                None,
                "withdrawn",
                serde_json::json!({"approval": r.id}),
            ),
        };
        let event = NewEvent {
            kind: "approval.decided".into(),
            call_id: Some(call_id.to_string()),
            agent: Some(r.agent.clone()),
            on_behalf_of: r.person.clone(),
            chain: r.chain.as_ref().and_then(|c| serde_json::to_string(c).ok()),
            server: Some(r.server.clone()),
            tool: Some(r.tool.clone()),
            arguments_hash: Some(r.arguments_hash.clone()),
            risk: Some(r.risk.as_str().into()),
            decision: Some(decision.into()),
            approver: approver.clone(),
            outcome: Some(result.into()),
            detail: Some(detail.to_string()),
            ..Default::default()
        };
        let logged = self.inner.store.activity().append(event).await;
        let why = match outcome {
            Outcome::Approved { choice, by, .. } => {
                if let Err(e) = logged {
                    tracing::error!(error = %e, "refusing an approved call whose approval could not be logged");
                    return Err((
                        "Warden could not record the approval in its activity log, so the call was not sent. Check that the disk has space, then try again.".into(),
                        "failed",
                    ));
                }
                self.recheck(up, &r, method, exposed, vetted_hash).await?;
                if choice == Choice::Always {
                    self.add_standing(&r, &by).await;
                }
                return Ok((by, choice));
            }
            Outcome::Denied { by, reason } => format!(
                "Warden: {by} denied {exposed} for agent {:?}.{} Do not retry it; tell the person what was denied.",
                r.agent,
                reason.map(|x| format!(" Reason: {x}.")).unwrap_or_default()
            ),
            Outcome::TimedOut => format!(
                "Warden denied {exposed}: nobody approved it within {} seconds (the request went to {person}). Ask {person} to watch for Warden's approval prompt, then try again.",
                timeout.as_secs()
            ),
            Outcome::Withdrawn => {
                format!("The call to {exposed} was withdrawn before anyone answered.")
            }
        };
        if let Err(e) = logged {
            tracing::error!(error = %e, "could not record a denied approval");
        }
        Err((why, result))
    }

    /// Checks again, just before a message leaves after a wait (a person's
    /// answer, an input_required round): the agent may still make the call,
    /// and a tool is still the one decided on, usable, at no higher risk.
    pub(super) async fn recheck(
        &self,
        up: &Upstream,
        r: &ApprovalRequest,
        method: &str,
        exposed: &str,
        vetted_hash: Option<&str>,
    ) -> std::result::Result<(), (String, &'static str)> {
        // The agent must still be allowed to ask: not revoked, its grants
        // not turned to deny, its delegation not ended.
        if let Err(why) = self.still_allowed(r, method) {
            return Err((format!("Warden blocked {exposed}: {why}"), "denied"));
        }
        // A tool must still be the one that was approved.
        if method == "tools/call" {
            let current = self
                .index(up)
                .await
                .ok()
                .and_then(|ix| ix.tools.get(&r.tool).cloned());
            match current {
                // Raised while the person was deciding (an admin set
                // it critical): what they approved was less.
                Some(t) if t.risk > r.risk => {
                    return Err((
                        format!(
                            "Warden blocked {exposed}: an admin raised the tool's risk to {} while the call was waiting, so what was decided no longer applies. Ask again.",
                            t.risk.as_str()
                        ),
                        "denied",
                    ));
                }
                Some(t) if t.state.usable() && Some(t.definition_hash.as_str()) == vetted_hash => {
                    if t.state == warden_store::tools::PinState::Seen {
                        self.pin(&r.server, &r.tool, &t.definition_hash)
                            .await
                            .map_err(|w| (w, "failed"))?;
                    }
                }
                _ => {
                    return Err((
                        format!(
                            "Warden blocked {exposed}: the server changed the tool while the call was waiting, so what was decided no longer applies. Ask again."
                        ),
                        "denied",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether the agent behind an approved request may still make it.
    pub(super) fn still_allowed(
        &self,
        r: &ApprovalRequest,
        method: &str,
    ) -> std::result::Result<(), String> {
        let access = self
            .inner
            .agents
            .read()
            .values()
            .find(|a| a.id == r.agent_id)
            .map(|a| a.access.clone())
            .ok_or("the agent's credential was revoked or suspended while the call was waiting")?;
        if r.chain.is_some()
            && !self
                .inner
                .delegations
                .read()
                .values()
                .any(|d| d.agent.id == r.agent_id)
        {
            return Err(
                "the delegation this agent acted under ended while the call was waiting".into(),
            );
        }
        let target = super::decide::target_of(method, &r.tool);
        if access.decide_at(&r.server, target, r.risk) == Effect::Deny {
            return Err("the agent's access changed while the call was waiting".into());
        }
        Ok(())
    }

    pub(super) async fn add_standing(&self, r: &ApprovalRequest, by: &str) {
        let store = self.inner.store.clone();
        let r = r.clone();
        let by = by.to_string();
        let added = tokio::task::spawn_blocking(move || {
            let conn = store.connect()?;
            let arguments = r.arguments.as_ref().map(|a| a.to_string());
            warden_store::tools::add_standing(
                &conn,
                &warden_store::tools::NewStanding {
                    agent_id: r.agent_id,
                    server: &r.server,
                    tool: &r.tool,
                    arguments_hash: &r.arguments_hash,
                    definition_hash: &r.definition_hash,
                    arguments: arguments.as_deref(),
                    created_by: &by,
                },
            )
        })
        .await;
        match added {
            Ok(Ok(_)) => {
                if let Err(e) = self.reload_standing() {
                    tracing::error!(error = %e, "could not reload standing approvals");
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "could not save a standing approval"),
            Err(e) => tracing::error!(error = %e, "could not save a standing approval"),
        }
    }

    /// Pins the definition a tool is first allowed with. Fails closed.
    pub(super) async fn pin(
        &self,
        server: &str,
        tool: &str,
        hash: &str,
    ) -> std::result::Result<(), String> {
        let store = self.inner.store.clone();
        let (s, t, h) = (server.to_string(), tool.to_string(), hash.to_string());
        let pinned = tokio::task::spawn_blocking(move || {
            warden_store::tools::pin_first_use(&store.connect()?, &s, &t, &h)
        })
        .await;
        match pinned {
            Ok(Ok(_)) => {
                self.inner.vetting.write().remove(server);
                Ok(())
            }
            Ok(Err(e)) => {
                tracing::error!(%server, %tool, error = %e, "could not pin a tool's definition");
                Err("Warden could not record this tool's definition, so the call was not sent. Check that the disk has space and the data folder is writable, then try again.".into())
            }
            Err(e) => Err(format!(
                "Warden could not record this tool's definition: {e}"
            )),
        }
    }
}

/// How often a waiting call's client hears progress.
pub(super) const PROGRESS_EVERY: Duration = Duration::from_secs(5);
