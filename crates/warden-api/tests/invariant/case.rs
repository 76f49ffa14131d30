//! One case: two servers, two roles, two agents, and the operations run on
//! them. The calls of the notes server are checked here; `side.rs` checks
//! the messages outside calls and the retried calls of the confirm server.

use crate::*;

pub struct Agent {
    pub name: String,
    pub credential: String,
    pub session: Option<String>,
}

pub struct Case {
    pub n: usize,
    pub server: String,
    pub roles: [String; 2],
    pub agents: Vec<Agent>,
    pub upstream: Arc<Upstream>,
    /// The 2026-07-28 server and its name in Warden.
    pub confirm: Arc<Upstream>,
    pub confirm_server: String,
    pub model: Model,
    /// Every call forwarded so far, as (tool, note), in order.
    pub forwarded: Vec<(String, String)>,
    /// Messages outside calls the model expects servers to have received.
    pub side_sent: BTreeMap<&'static str, usize>,
    pub log: Vec<String>,
}

impl Case {
    pub async fn start(fx: &'static Fixture) -> Case {
        let n = fx.cases.fetch_add(1, Ordering::SeqCst);
        let server = format!("notes{n}");
        let (upstream, url) = start_upstream(&server, Era::Legacy, &fx.db).await;
        let confirm_server = format!("confirm{n}");
        let (confirm, confirm_url) = start_upstream(&confirm_server, Era::Modern, &fx.db).await;
        for (name, url) in [(&server, url), (&confirm_server, confirm_url)] {
            fx.admin(Request::ServerAdd {
                name: name.clone(),
                spec: warden_gateway::config::ServerSpec {
                    url: Some(url),
                    ..Default::default()
                },
            })
            .await
            .expect("add the case's server");
            fx.admin(Request::ServerTrust {
                name: name.clone(),
                trusted: true,
                auto_trust_new_tools: false,
            })
            .await
            .expect("trust its annotations");
        }
        let roles = [format!("r{n}a"), format!("r{n}b")];
        let mut agents = Vec::new();
        for (i, role) in roles.iter().enumerate() {
            fx.admin(Request::RoleAdd {
                name: role.clone(),
                description: String::new(),
            })
            .await
            .expect("add role");
            let name = format!("agent{n}{}", ["x", "y"][i]);
            let Response::AgentCreated(c) = fx
                .admin(Request::AgentAdd {
                    name: name.clone(),
                    roles: vec![role.clone()],
                    expires_days: None,
                    owner: None,
                })
                .await
                .expect("add agent")
            else {
                panic!("an agent was created")
            };
            agents.push(Agent {
                name,
                credential: c.credential,
                session: None,
            });
        }
        let mut case = Case {
            n,
            server,
            roles,
            agents,
            upstream,
            confirm,
            confirm_server,
            model: Model {
                revision: [1; 3],
                ..Default::default()
            },
            forwarded: Vec::new(),
            side_sent: BTreeMap::new(),
            log: Vec::new(),
        };
        // The server is up, its GET stream open, and its tools vetted as the
        // model assumes: the two readers low risk (a trusted server's
        // read-only hints count), the deleter high.
        let tools = case.wait_for_tools(fx, |_| true).await;
        for (i, t) in TOOLS.iter().enumerate() {
            let risk = tools[i]["warden"]["risk"].as_str().unwrap_or("");
            let want = match BASE_RISK[i] {
                Risk::Low => "low",
                Risk::High => "high",
            };
            assert_eq!(risk, want, "{t} is vetted as {want}: {}", tools[i]);
        }
        case.wait_for_confirm(fx).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while case.upstream.listeners.load(Ordering::SeqCst) == 0 {
            assert!(
                Instant::now() < deadline,
                "Warden never opened the server's GET stream"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for a in 0..2 {
            case.new_session(fx, a).await;
        }
        case
    }

    /// The server's tools as Warden vets them, once `ready` holds.
    pub async fn wait_for_tools(
        &self,
        fx: &'static Fixture,
        ready: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        self.tools_when(fx, Duration::from_secs(10), &ready)
            .await
            .expect("the server's tools did not show as expected in Warden")
    }

    pub async fn tools_when(
        &self,
        fx: &'static Fixture,
        within: Duration,
        ready: &impl Fn(&[Value]) -> bool,
    ) -> Option<Vec<Value>> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Response::Tools(tools)) = fx
                .admin(Request::ServerTools {
                    name: self.server.clone(),
                })
                .await
            {
                let by_name: Vec<Value> = TOOLS
                    .iter()
                    .filter_map(|t| tools.iter().find(|v| v["name"] == *t).cloned())
                    .collect();
                if by_name.len() == TOOLS.len() && ready(&by_name) {
                    return Some(by_name);
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn new_session(&mut self, fx: &'static Fixture, agent: usize) {
        self.agents[agent].session = None;
        let credential = self.agents[agent].credential.clone();
        let (status, session, answer) = post(
            fx,
            &credential,
            None,
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {"roots": {}, "elicitation": {}},
                "clientInfo": {"name": "invariant-test", "version": "1"},
            }}),
        )
        .await;
        if self.model.revoked[agent] {
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "a revoked agent cannot start a session"
            );
            return;
        }
        assert!(status.is_success(), "initialize: {status} {answer:?}");
        self.agents[agent].session = Some(session.expect("a legacy session id"));
        let (status, _, _) = post(
            fx,
            &credential,
            self.agents[agent].session.as_deref(),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .await;
        assert!(status.is_success(), "initialized: {status}");
    }

    /// The call as agent `agent` would send it, owning what it needs; what
    /// it answers a server request names `nonce`.
    pub fn call(
        &self,
        fx: &'static Fixture,
        agent: usize,
        server: &str,
        tool: &str,
        note: usize,
        nonce: String,
    ) -> impl std::future::Future<Output = (Told, Vec<(Value, Value)>)> + use<> {
        let a = &self.agents[agent];
        call_tool(
            fx,
            a.credential.clone(),
            a.session.clone(),
            format!("{server}__{tool}"),
            NOTES[note],
            nonce,
        )
    }

    /// A nonce no other call of the run uses.
    pub fn nonce(&self) -> String {
        format!("case{}-step{}", self.n, self.log.len())
    }

    pub async fn pending(&self, fx: &'static Fixture, agent: usize, tool: usize) -> Option<Value> {
        self.pending_on(fx, agent, &self.server, TOOLS[tool], None)
            .await
    }

    /// The approval the agent's call of `tool` on `server` waits for, other
    /// than `not` (an earlier one).
    pub async fn pending_on(
        &self,
        fx: &'static Fixture,
        agent: usize,
        server: &str,
        tool: &str,
        not: Option<&str>,
    ) -> Option<Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Response::Approvals(p)) = fx.admin(Request::Approvals).await
                && let Some(r) = p.requests.into_iter().find(|r| {
                    r.agent == self.agents[agent].name
                        && r.server == server
                        && r.tool == tool
                        && not.is_none_or(|id| r.id != id)
                })
            {
                return serde_json::to_value(r).ok();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    /// The server and name of the tool the model keys as `tool`.
    pub fn tool_at(&self, tool: usize) -> (String, &'static str) {
        match tool {
            CONFIRM_TOOL => (self.confirm_server.clone(), CONFIRM),
            t => (self.server.clone(), TOOLS[t]),
        }
    }

    pub fn server_name(&self, server: usize) -> String {
        match server {
            NOTES_SERVER => self.server.clone(),
            _ => self.confirm_server.clone(),
        }
    }

    pub async fn grant(
        &mut self,
        fx: &'static Fixture,
        role: usize,
        server: usize,
        pattern: usize,
        effect: Effect,
        explicit: bool,
    ) {
        fx.admin(Request::Grant {
            role: self.roles[role].clone(),
            server: self.server_name(server),
            pattern: PATTERNS[pattern].into(),
            effect: match effect {
                Effect::Allow => "allow",
                Effect::Ask => "ask",
                Effect::Deny => "deny",
            }
            .into(),
            explicit,
        })
        .await
        .expect("grant");
        self.model
            .grants
            .insert((role, server, pattern), (effect, explicit));
    }

    pub async fn change_tool(&mut self, fx: &'static Fixture, tool: usize) {
        let revision = {
            let mut revs = self.upstream.revisions.lock();
            revs[tool] += 1;
            revs[tool]
        };
        let note = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
        let marker = format!("(revision {revision})");
        let shows_it = |tools: &[Value]| {
            tools[tool]["description"]
                .as_str()
                .is_some_and(|d| d.ends_with(&marker))
        };
        // Told again if Warden was between GET streams when it was sent.
        for _ in 0..10 {
            let _ = self.upstream.events.send(note.to_string());
            if self
                .tools_when(fx, Duration::from_secs(1), &shows_it)
                .await
                .is_some()
            {
                self.model.revision[tool] = revision;
                return;
            }
        }
        panic!("Warden never saw the server change {}", TOOLS[tool]);
    }

    pub async fn revoke_agent(&mut self, fx: &'static Fixture, agent: usize) {
        let r = fx
            .admin(Request::AgentRevoke {
                name: self.agents[agent].name.clone(),
            })
            .await;
        // Revoking twice is harmless.
        r.expect("revoke an agent");
        self.model.revoked[agent] = true;
    }

    pub async fn latest_decision(&self, fx: &'static Fixture, tool: usize) -> Option<String> {
        let conn = fx.running.api.store().connect().expect("db");
        conn.query_row(
            "SELECT decision FROM activity WHERE kind = 'tool_call.requested' AND server = ?1 AND tool = ?2 ORDER BY id DESC LIMIT 1",
            [self.server.as_str(), TOOLS[tool]],
            |r| r.get(0),
        )
        .ok()
    }

    pub async fn run(&mut self, fx: &'static Fixture, op: &Op) {
        self.log.push(format!("{op:?}"));
        match *op {
            Op::Grant {
                role,
                server,
                pattern,
                effect,
                explicit,
            } => {
                self.grant(fx, role, server, pattern, effect, explicit)
                    .await
            }
            Op::RevokeGrant {
                role,
                server,
                pattern,
            } => {
                let r = fx
                    .admin(Request::RevokeGrant {
                        role: self.roles[role].clone(),
                        server: self.server_name(server),
                        pattern: PATTERNS[pattern].into(),
                    })
                    .await;
                let had = self.model.grants.remove(&(role, server, pattern)).is_some();
                assert_eq!(r.is_ok(), had, "revoke grant: {r:?}");
            }
            Op::ChangeTool { tool } => self.change_tool(fx, tool).await,
            Op::Review { tool, accept } => {
                if self.model.usable(tool) {
                    return;
                }
                let tools = self.wait_for_tools(fx, |_| true).await;
                let hash = tools[tool]["warden"]["definition_hash"]
                    .as_str()
                    .expect("a definition hash")
                    .to_string();
                fx.admin(Request::ToolDecide {
                    server: self.server.clone(),
                    tool: TOOLS[tool].into(),
                    hash,
                    accept,
                })
                .await
                .expect("review a quarantined tool");
                if accept {
                    self.model.pinned[tool] = Some(self.model.revision[tool]);
                }
            }
            Op::SetRisk { tool, risk } => {
                if risk.is_none() && self.model.risk_override[tool].is_none() {
                    // Nothing to clear: refused, and nothing changes.
                    let r = fx
                        .admin(Request::ToolRisk {
                            server: self.server.clone(),
                            tool: TOOLS[tool].into(),
                            risk: None,
                            reason: String::new(),
                        })
                        .await;
                    assert!(r.is_err(), "clearing a risk that was never set is refused");
                    return;
                }
                fx.admin(Request::ToolRisk {
                    server: self.server.clone(),
                    tool: TOOLS[tool].into(),
                    risk: risk.map(|r| match r {
                        Risk::Low => "low".to_string(),
                        Risk::High => "high".to_string(),
                    }),
                    reason: "set by the invariant test".into(),
                })
                .await
                .expect("set a tool's risk");
                self.model.risk_override[tool] = risk;
                // An admin's risk decision is about the definition presented
                // now: it pins it.
                self.model.forwarded(tool);
            }
            Op::RevokeStanding { pick } => {
                let Some(&(agent, tool, note, _)) = self
                    .model
                    .standing
                    .iter()
                    .nth(pick % self.model.standing.len().max(1))
                else {
                    return;
                };
                let Response::Standing(list) = fx
                    .admin(Request::StandingList)
                    .await
                    .expect("standing list")
                else {
                    panic!("a list of standing approvals")
                };
                let mine: Vec<_> = list
                    .into_iter()
                    .filter(|s| {
                        s.agent == self.agents[agent].name
                            && (s.server.clone(), s.tool.as_str()) == self.tool_at(tool)
                            && s.arguments.as_deref().is_some_and(|a| {
                                serde_json::from_str::<Value>(a).ok()
                                    == Some(json!({"note": NOTES[note]}))
                            })
                    })
                    .collect();
                assert!(
                    !mine.is_empty(),
                    "Warden lists the standing approval the model has"
                );
                for s in mine {
                    fx.admin(Request::StandingRevoke { id: s.id })
                        .await
                        .expect("revoke a standing approval");
                }
                self.model
                    .standing
                    .retain(|&(a, t, n, _)| !(a == agent && t == tool && n == note));
            }
            Op::NewSession { agent } => {
                self.new_session(fx, agent).await;
                self.model.session[agent] += 1;
            }
            Op::RevokeAgent { agent } => self.revoke_agent(fx, agent).await,
            Op::Call {
                agent,
                tool,
                note,
                answer,
                meanwhile,
            } => {
                self.check_call(fx, agent, tool, note, answer, meanwhile)
                    .await
            }
            Op::SetLevel { agent, level } => self.set_level(fx, agent, level).await,
            Op::RootsChanged { agent } => self.roots_changed(fx, agent).await,
            Op::Subscribe { agent, note, on } => self.subscribe(fx, agent, note, on).await,
            Op::Confirm {
                agent,
                note,
                first,
                again,
            } => self.check_confirm(fx, agent, note, first, again).await,
        }
    }

    pub async fn check_call(
        &mut self,
        fx: &'static Fixture,
        agent: usize,
        tool: usize,
        note: usize,
        answer: Answer,
        meanwhile: Meanwhile,
    ) {
        let expect = self.model.expect(agent, tool, note);
        let reused = expect == Expect::Forwarded && self.model.decide(agent, tool) == Effect::Ask;
        let rows_before = {
            let (db, server, t) = (fx.db.clone(), self.server.clone(), TOOLS[tool]);
            tokio::task::spawn_blocking(move || rows_for(&db, &server, t))
                .await
                .expect("rows")
        };
        let received_before = self.upstream.received.lock().len();
        let answered_before = {
            let (db, server) = (fx.db.clone(), self.server.clone());
            tokio::task::spawn_blocking(move || {
                rows_of(&db, "server_request.answered", &server, None)
            })
            .await
            .expect("rows")
        };
        let nonce = self.nonce();

        let mut should_arrive = expect == Expect::Forwarded;
        let (told, asked) = if expect == Expect::Asked {
            let call = self.call(fx, agent, &self.server, TOOLS[tool], note, nonce.clone());
            let decide = async {
                let request = self
                    .pending(fx, agent, tool)
                    .await
                    .expect("the person is asked to approve the call");
                assert_eq!(
                    request["arguments"],
                    json!({"note": NOTES[note]}),
                    "the prompt shows the call's arguments"
                );
                let id = request["id"].as_str().expect("request id").to_string();
                // Things change while the person looks at the prompt.
                let mut still_valid = true;
                match meanwhile {
                    Meanwhile::Nothing => {}
                    Meanwhile::DenyTool => {
                        let exact = PATTERNS.iter().position(|p| *p == TOOLS[tool]).unwrap_or(0);
                        self.grant(fx, agent, NOTES_SERVER, exact, Effect::Deny, false)
                            .await;
                        still_valid = false;
                    }
                    Meanwhile::ChangeTool => {
                        self.change_tool(fx, tool).await;
                        still_valid = false;
                    }
                    Meanwhile::RevokeAgent => {
                        self.revoke_agent(fx, agent).await;
                        still_valid = false;
                    }
                }
                if let Some(choice) = answer.choice() {
                    fx.admin(Request::ApprovalDecide {
                        id,
                        choice: choice.into(),
                        reason: None,
                        totp: None,
                    })
                    .await
                    .expect("the owner answers");
                }
                still_valid
            };
            let (told, still_valid) = tokio::join!(call, decide);
            let approved = matches!(answer, Answer::Once | Answer::Session | Answer::Always);
            should_arrive = approved && still_valid;
            if should_arrive {
                // Only what still holds when the call goes out is kept.
                let rev = self.model.revision[tool];
                match answer {
                    Answer::Session => {
                        self.model.session_approvals.insert((
                            agent,
                            self.model.session[agent],
                            tool,
                            rev,
                        ));
                    }
                    Answer::Always => {
                        self.model.standing.insert((agent, tool, note, rev));
                    }
                    _ => {}
                }
            } else if approved && answer == Answer::Session && meanwhile == Meanwhile::DenyTool {
                // A session approval is remembered at the click, before the
                // re-check refused this call; the deny grant still wins later.
                let rev = self.model.revision[tool];
                self.model
                    .session_approvals
                    .insert((agent, self.model.session[agent], tool, rev));
            }
            told
        } else {
            // Nothing waits, so nothing can change meanwhile.
            self.call(fx, agent, &self.server, TOOLS[tool], note, nonce.clone())
                .await
        };

        // What the upstream received during this call.
        let received = self.upstream.received_since(received_before, "tools/call");
        let answers = self.upstream.received_since(received_before, "response");
        let context = || {
            format!(
                "case {} step {}: expected {expect:?} (arrive: {should_arrive}), told {told:?}, upstream got {received:?}\nsteps: {:#?}",
                self.n,
                self.log.len(),
                self.log
            )
        };
        if should_arrive {
            assert_eq!(
                received.len(),
                1,
                "the call reaches the server once: {}",
                context()
            );
            assert_eq!(received[0].tool, TOOLS[tool], "{}", context());
            assert_eq!(received[0].note, NOTES[note], "{}", context());
            assert!(
                received[0].rows_at_receipt > rows_before,
                "the call's row was committed before the server saw it: {}",
                context()
            );
            assert!(matches!(told, Told::Done), "{}", context());
            if TOOLS[tool] == "list_notes" {
                // The server asked the agent for its roots in the middle of
                // the call; the agent's answer reached the server unchanged,
                // after its row.
                assert_eq!(asked.len(), 1, "one server request: {}", context());
                assert_eq!(asked[0].0["method"], "roots/list", "{}", context());
                assert_eq!(
                    answers.len(),
                    1,
                    "the answer reaches the server once: {}",
                    context()
                );
                assert_eq!(answers[0].params, asked[0].1, "{}", context());
                assert!(
                    answers[0].rows_at_receipt > answered_before,
                    "the agent's answer was logged before the server saw it: {}",
                    context()
                );
                bump(&seen().server_requests_answered);
            } else {
                assert!(asked.is_empty(), "{}", context());
            }
            self.forwarded
                .push((TOOLS[tool].to_string(), NOTES[note].to_string()));
            self.model.forwarded(tool);
        } else {
            assert!(
                received.is_empty(),
                "the call must not reach the server: {}",
                context()
            );
            assert!(
                asked.is_empty() && answers.is_empty(),
                "no server request comes of a call that never reached the server: {}",
                context()
            );
            assert!(
                !matches!(told, Told::Done),
                "a refused call is never a success: {}",
                context()
            );
            if let Told::Refused(why) = &told {
                assert!(
                    why.contains("Warden"),
                    "a refusal says who refused it and why: {}",
                    context()
                );
            }
        }
        bump(match expect {
            Expect::Unauthenticated => &seen().unauthenticated,
            Expect::Refused => &seen().refused,
            Expect::Forwarded if reused => &seen().by_standing_or_session,
            Expect::Forwarded => &seen().forwarded,
            Expect::Asked if should_arrive => &seen().approved,
            Expect::Asked
                if meanwhile != Meanwhile::Nothing
                    && answer.choice().is_some_and(|c| c != "deny") =>
            {
                &seen().changed_while_pending
            }
            Expect::Asked => &seen().approval_refused,
        });
        // The decision logged is the one the model predicts.
        let decision = self.latest_decision(fx, tool).await;
        let rows_after = rows_for(&fx.db, &self.server, TOOLS[tool]);
        match expect {
            Expect::Unauthenticated => {
                assert!(matches!(told, Told::Unauthenticated), "{}", context());
                assert_eq!(
                    rows_after,
                    rows_before,
                    "no row for a refused credential: {}",
                    context()
                );
            }
            Expect::Refused => {
                assert_eq!(decision.as_deref(), Some("deny"), "{}", context());
                assert_eq!(rows_after, rows_before + 1, "{}", context());
            }
            Expect::Forwarded => {
                assert_eq!(decision.as_deref(), Some("allow"), "{}", context());
                assert_eq!(rows_after, rows_before + 1, "{}", context());
            }
            Expect::Asked => {
                assert_eq!(decision.as_deref(), Some("ask"), "{}", context());
                assert_eq!(rows_after, rows_before + 1, "{}", context());
            }
        }
    }

    pub async fn finish(self, fx: &'static Fixture) {
        // Everything the server ever received is what the test forwarded.
        let got: Vec<(String, String)> = self
            .upstream
            .received_since(0, "tools/call")
            .iter()
            .map(|r| (r.tool.clone(), r.note.clone()))
            .collect();
        assert_eq!(got, self.forwarded, "case {}", self.n);
        self.finish_side().await;
        for name in [&self.server, &self.confirm_server] {
            let _ = fx.admin(Request::ServerRemove { name: name.clone() }).await;
        }
    }
}
