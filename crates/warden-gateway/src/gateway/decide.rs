//! Decide: what policy says about one call, before anything is recorded or
//! sent. This is the file that decides a denial.

use super::*;

/// Policy's answer about one call, and what its rows name.
pub(super) struct Decision {
    /// The row kind's stem: `tool_call`, `resource_read`, `prompt_get` or
    /// `request` (a method Warden passes through).
    pub kind: &'static str,
    /// The tool, prompt or resource (or the method) the rows name.
    pub tool: String,
    /// The name the agent knows it by.
    pub exposed: String,
    pub vetted: Option<Arc<ToolInfo>>,
    pub quarantined: bool,
    pub risk: Risk,
    /// `Ask` only while `request` waits for a person.
    pub effect: Effect,
    /// Who or what allowed it when nobody is asked now (a standing or
    /// session approval).
    pub approver: Option<String>,
    /// What a person must answer before the call goes out.
    pub request: Option<ApprovalRequest>,
    /// The call needed a person's approval (now, or earlier and standing):
    /// a retry with other inputs asks again.
    pub asked: bool,
    /// For a delegated caller refused by a link further up its chain: the
    /// name of that link (the agent or person whose access lacks it).
    pub refused_by: Option<String>,
    /// The log's redacted form of what is sent, and its keyed hash.
    pub arguments: Option<String>,
    pub arguments_hash: Option<String>,
    /// For a tool or prompt: what else the request sends beside its name and
    /// arguments (input responses, request state, a task), redacted, with
    /// its keyed hash.
    pub also_sent: Option<(String, String)>,
}

impl Gateway {
    /// Decides one call to `server`. `Err` is the answer when the tool could
    /// not be vetted.
    pub(super) async fn decide(
        &self,
        caller: &Caller,
        up: &Upstream,
        method: &str,
        params: &Params,
        target: &str,
    ) -> std::result::Result<Decision, String> {
        let server = up.name.as_str();
        let kind = match method {
            "tools/call" => "tool_call",
            "resources/read" => "resource_read",
            "prompts/get" => "prompt_get",
            _ => "request",
        };
        // Tools and prompts carry arguments; anything else is recorded by
        // its whole params.
        let names_arguments = matches!(method, "tools/call" | "prompts/get");
        let (arguments, arguments_hash) = if names_arguments {
            let args = params.0.get("arguments").map(|a| a.get());
            self.inner.redactor.arguments(args)
        } else {
            self.inner.redactor.arguments(Some(&bound_params(params)))
        };
        // What else a tool or prompt sends (input responses, request state,
        // a task) is rare: nothing is copied unless it is there.
        let beside = |k: &String| !matches!(k.as_str(), "_meta" | "name" | "arguments");
        let also_sent = if names_arguments && params.0.keys().any(beside) {
            let rest: indexmap::IndexMap<_, _> =
                params.0.iter().filter(|(k, _)| beside(k)).collect();
            let raw = serde_json::to_string(&rest).unwrap_or_default();
            match self.inner.redactor.arguments(Some(&raw)) {
                (Some(text), Some(hash)) => Some((text, hash)),
                _ => None,
            }
        } else {
            None
        };
        let tool = if target.is_empty() {
            method.to_string()
        } else {
            target.to_string()
        };
        let exposed = if caller.scope.is_some() {
            tool.clone()
        } else {
            crate::names::expose(server, &tool)
        };
        // A tool's risk and pin state come from the server's vetted list.
        let vetted: Option<Arc<ToolInfo>> = if method == "tools/call" {
            match self.index(up).await {
                Ok(ix) => ix.tools.get(target).cloned(),
                Err(e) => {
                    tracing::error!(%server, error = %e, "refusing a call whose tool could not be vetted");
                    return Err("Warden could not check this tool against its records, so the call was not sent. Check that the disk has space and the data folder is writable, then try again.".into());
                }
            }
        } else {
            None
        };
        let quarantined =
            method == "tools/call" && !vetted.as_ref().is_some_and(|t| t.state.usable());
        // Prompts and resources are read; tools carry their own risk.
        let risk = vetted.as_ref().map_or(Risk::Low, |t| t.risk);
        let access = &caller.agent.access;
        let mut effect = match method {
            "tools/call" if quarantined => Effect::Deny,
            "tools/call" | "prompts/get" | "resources/read" => {
                access.decide_at(server, target_of(method, target), risk)
            }
            // Checked by the caller against the prompt or resource it names.
            "completion/complete" => Effect::Allow,
            // Methods Warden does not interpret may do anything: a person
            // is asked unless a grant names the method.
            _ => access.decide_at(server, target_of(method, target), Risk::High),
        };
        let refused_by = match &caller.agent.chain {
            Some(chain) if effect == Effect::Deny && !quarantined => access
                .denied_at(server, target_of(method, target), risk)
                .filter(|depth| *depth > 0)
                .and_then(|depth| chain.len().checked_sub(1 + depth))
                .and_then(|i| chain.get(i).cloned()),
            _ => None,
        };
        let asked = effect == Effect::Ask;
        let mut approver = None;
        let mut request = None;
        if asked {
            let r = self.approval_request(
                caller,
                method,
                server,
                &tool,
                risk,
                vetted.as_deref(),
                params,
            );
            match self.already_approved(&r) {
                Some(by) => {
                    effect = Effect::Allow;
                    approver = Some(by);
                }
                None => request = Some(r),
            }
        }
        Ok(Decision {
            kind,
            tool,
            exposed,
            vetted,
            quarantined,
            risk,
            effect,
            approver,
            request,
            asked,
            refused_by,
            arguments,
            arguments_hash,
            also_sent,
        })
    }

    /// What a person is asked about a call with these params.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn approval_request(
        &self,
        caller: &Caller,
        method: &str,
        server: &str,
        tool: &str,
        risk: Risk,
        vetted: Option<&ToolInfo>,
        params: &Params,
    ) -> ApprovalRequest {
        let now = warden_store::now_us();
        let timeout = self.inner.config.read().approvals.timeout_secs;
        // The approval binds the method and everything the call sends but
        // `_meta` (arguments, input responses, request state, task).
        let bound_call = format!(
            "{{\"method\":{},\"params\":{}}}",
            serde_json::Value::from(method),
            bound_params(params)
        );
        let (_, binding) = self.inner.redactor.arguments(Some(&bound_call));
        let mut bound = params.0.clone();
        bound.shift_remove("_meta");
        let args = params.0.get("arguments").map(|a| a.get());
        let (arguments, _) = self.inner.redactor.arguments(args);
        let mut shown: Option<serde_json::Value> = arguments
            .as_deref()
            .and_then(|a| serde_json::from_str(a).ok());
        // The same, as sent: for the person deciding (the log keeps `shown`).
        let mut sent: Option<serde_json::Value> = args.and_then(|a| serde_json::from_str(a).ok());
        bound.shift_remove("arguments");
        bound.shift_remove("name");
        bound.shift_remove("uri");
        if !bound.is_empty() {
            let extra = serde_json::to_string(&bound).unwrap_or_default();
            let real: serde_json::Value = serde_json::from_str(&extra).unwrap_or_default();
            let (extra, _) = self.inner.redactor.arguments(Some(&extra));
            let extra: serde_json::Value = extra
                .and_then(|e| serde_json::from_str(&e).ok())
                .unwrap_or_default();
            shown = Some(serde_json::json!({"arguments": shown, "also sent": extra}));
            sent = Some(serde_json::json!({"arguments": sent, "also sent": real}));
        }
        ApprovalRequest {
            id: random_id(),
            agent_id: caller.agent.id,
            agent: caller.agent.name.clone(),
            person: caller.agent.owner.clone(),
            chain: caller.agent.chain.clone(),
            server: server.to_string(),
            tool: tool.to_string(),
            risk,
            why: vetted.map_or_else(
                || vec!["a role's grant says to ask".to_string()],
                |t| t.why.clone(),
            ),
            arguments: shown,
            sent,
            arguments_hash: binding.unwrap_or_default(),
            definition_hash: vetted
                .map(|t| t.definition_hash.clone())
                .unwrap_or_default(),
            session: caller.session.as_ref().map_or_else(
                || format!("stateless:{}", caller.agent.id),
                |s| s.id.clone(),
            ),
            method: method.to_string(),
            session_choice: caller.session.is_some(),
            requested_at_us: now,
            expires_at_us: now + (timeout as i64) * 1_000_000,
        }
    }

    /// Already approved: these exact params for good, or this tool for this
    /// session. Never for a critical tool (one call at a time) nor for a
    /// delegated caller (the person at the head of its chain is not the one
    /// who answered).
    pub(super) fn already_approved(&self, r: &ApprovalRequest) -> Option<String> {
        if r.risk == Risk::Critical || r.chain.is_some() {
            return None;
        }
        let standing = self.inner.standing.read().get(&r.agent_id).and_then(|m| {
            m.get(&(
                r.server.clone(),
                r.tool.clone(),
                r.arguments_hash.clone(),
                r.definition_hash.clone(),
            ))
            .copied()
        });
        if let Some(sid) = standing {
            Some(format!("standing approval {sid}"))
        } else if self.inner.broker.session_allows(r) {
            Some("session approval".into())
        } else {
            None
        }
    }
}

/// What a grant is matched against for a request: the tool, prompt or
/// resource it names, or the method itself when Warden passes it through.
pub(super) fn target_of<'a>(method: &'a str, name: &'a str) -> Target<'a> {
    match method {
        "tools/call" => Target::Tool(name),
        "prompts/get" => Target::Prompt(name),
        "resources/read" => Target::Resource(name),
        _ => Target::Method(method),
    }
}

/// Everything a request sends but `_meta`, as JSON: what an approval binds
/// and what a passed-through request's row hashes.
pub(super) fn bound_params(params: &Params) -> String {
    let mut bound = params.0.clone();
    bound.shift_remove("_meta");
    serde_json::to_string(&bound).unwrap_or_default()
}
