//! What an agent sends a server outside a tools/call (`logging/setLevel`,
//! `notifications/roots/list_changed`, resource subscriptions), and a call
//! Warden retries for the agent (a 2026-07-28 server's `input_required`):
//! each reaches a server only when the agent may use it, only as the rules
//! say, and only after its row is committed.

use crate::*;

const SET_LEVEL: &str = "logging/setLevel";
const ROOTS_CHANGED: &str = "notifications/roots/list_changed";

/// Waits (bounded) until `up` has received `want` messages of `method`.
async fn arrivals(up: &Upstream, method: &str, want: usize) -> Vec<Received> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while up.count(method) < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    up.received_since(0, method)
}

async fn message_rows_now(db: &Path, server: &str, method: &str, uri: Option<&str>) -> i64 {
    let (db, server, method) = (db.to_path_buf(), server.to_string(), method.to_string());
    let uri = uri.map(String::from);
    tokio::task::spawn_blocking(move || message_rows(&db, &server, &method, uri.as_deref()))
        .await
        .expect("rows")
}

async fn rows_now(db: &Path, kind: &str, server: &str, tool: &str) -> i64 {
    let (db, kind, server, tool) = (
        db.to_path_buf(),
        kind.to_string(),
        server.to_string(),
        tool.to_string(),
    );
    tokio::task::spawn_blocking(move || rows_of(&db, &kind, &server, Some(&tool)))
        .await
        .expect("rows")
}

impl Case {
    /// Sends one message as the agent, on its session; `None` when the agent
    /// is revoked (and so refused, which this checks).
    async fn send_as(
        &self,
        fx: &'static Fixture,
        agent: usize,
        body: Value,
    ) -> Option<(StatusCode, Option<Value>)> {
        let a = &self.agents[agent];
        let (status, _, answer) = post(fx, &a.credential, a.session.as_deref(), body).await;
        if self.model.revoked[agent] {
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "a revoked agent is refused"
            );
            return None;
        }
        Some((status, answer))
    }

    /// The confirm server is up and its tool vetted, high risk.
    pub async fn wait_for_confirm(&self, fx: &'static Fixture) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Response::Tools(tools)) = fx
                .admin(Request::ServerTools {
                    name: self.confirm_server.clone(),
                })
                .await
                && let Some(t) = tools.iter().find(|t| t["name"] == CONFIRM)
            {
                assert_eq!(t["warden"]["risk"], "high", "{CONFIRM} is vetted high: {t}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the 2026-07-28 server's tool never showed in Warden"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn side_context(&self, what: &str) -> String {
        format!(
            "case {} step {}: {what}\nsteps: {:#?}",
            self.n,
            self.log.len(),
            self.log
        )
    }

    /// `logging/setLevel` with something more in its params: a server the
    /// agent may use gets the level alone, after its row; others get nothing.
    pub async fn set_level(&mut self, fx: &'static Fixture, agent: usize, level: usize) {
        let before = self.upstream.count(SET_LEVEL);
        let rows_before = message_rows_now(&fx.db, &self.server, SET_LEVEL, None).await;
        let body = json!({"jsonrpc": "2.0", "id": 9, "method": SET_LEVEL, "params": {
            "level": LEVELS[level],
            "notes": "what the agent read, smuggled beside the level",
        }});
        let Some((status, answer)) = self.send_as(fx, agent, body).await else {
            return;
        };
        let context = self.side_context(&format!("{SET_LEVEL} by agent {agent}"));
        assert!(
            status.is_success() && answer.as_ref().is_some_and(|a| a.get("result").is_some()),
            "{SET_LEVEL} is answered: {status} {answer:?}: {context}"
        );
        if !self.model.touches(agent, NOTES_SERVER) {
            bump(&seen().messages_withheld);
            return;
        }
        *self.side_sent.entry(SET_LEVEL).or_default() += 1;
        let got = arrivals(&self.upstream, SET_LEVEL, before + 1).await;
        assert_eq!(
            got.len(),
            before + 1,
            "the level reaches the server once: {context}"
        );
        let last = &got[before];
        assert_eq!(
            last.params,
            json!({"level": LEVELS[level]}),
            "only the level is sent: {context}"
        );
        assert!(
            last.rows_at_receipt > rows_before,
            "the level's row was committed before the server saw it: {context}"
        );
        bump(&seen().messages_sent);
    }

    /// `notifications/roots/list_changed`: each server the agent may use
    /// hears it after its own row; the others do not.
    pub async fn roots_changed(&mut self, fx: &'static Fixture, agent: usize) {
        let servers = [
            (NOTES_SERVER, self.upstream.clone()),
            (CONFIRM_SERVER, self.confirm.clone()),
        ];
        let mut before = Vec::new();
        for (_, up) in &servers {
            let rows = message_rows_now(&fx.db, &up.server, ROOTS_CHANGED, None).await;
            before.push((up.count(ROOTS_CHANGED), rows));
        }
        let body = json!({"jsonrpc": "2.0", "method": ROOTS_CHANGED});
        let Some((status, _)) = self.send_as(fx, agent, body).await else {
            return;
        };
        let context = self.side_context(&format!("{ROOTS_CHANGED} by agent {agent}"));
        assert!(status.is_success(), "{ROOTS_CHANGED}: {status}: {context}");
        for ((s, up), (count, rows)) in servers.iter().zip(before) {
            if !self.model.touches(agent, *s) {
                bump(&seen().messages_withheld);
                continue;
            }
            *self
                .side_sent
                .entry(if *s == NOTES_SERVER {
                    "roots:notes"
                } else {
                    "roots:confirm"
                })
                .or_default() += 1;
            let got = arrivals(up, ROOTS_CHANGED, count + 1).await;
            assert_eq!(
                got.len(),
                count + 1,
                "{} hears it once: {context}",
                up.server
            );
            assert!(
                got[count].rows_at_receipt > rows,
                "the notification's row was committed before {} saw it: {context}",
                up.server
            );
            bump(&seen().messages_sent);
        }
    }

    /// A subscription is made only for an agent allowed to read the
    /// resource, after its row; the server is told when a note first joins.
    pub async fn subscribe(&mut self, fx: &'static Fixture, agent: usize, note: usize, on: bool) {
        let method = if on {
            "resources/subscribe"
        } else {
            "resources/unsubscribe"
        };
        let uri = self.upstream.uri(note);
        let rows_before = message_rows_now(&fx.db, &self.server, method, Some(&uri)).await;
        let arrived = |up: &Upstream| {
            up.received_since(0, method)
                .iter()
                .filter(|r| r.tool == uri)
                .count()
        };
        let before = arrived(&self.upstream);
        let body = json!({"jsonrpc": "2.0", "id": 11, "method": method, "params": {"uri": uri}});
        let Some((_, answer)) = self.send_as(fx, agent, body).await else {
            return;
        };
        let context = self.side_context(&format!("{method} {uri} by agent {agent}: {answer:?}"));
        let answer = answer.unwrap_or_else(|| panic!("no answer: {context}"));
        let rows_after = message_rows_now(&fx.db, &self.server, method, Some(&uri)).await;
        let allowed = self.model.may_read(agent, &uri);
        if !allowed {
            assert!(
                answer["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("Warden denied")),
                "an agent that may not read the note cannot subscribe to it: {context}"
            );
            assert_eq!(
                rows_after, rows_before,
                "a refused subscription writes no row: {context}"
            );
            assert_eq!(
                arrived(&self.upstream),
                before,
                "nothing reaches the server: {context}"
            );
            bump(&seen().subscriptions_refused);
            return;
        }
        assert!(answer.get("result").is_some(), "{context}");
        assert_eq!(
            rows_after,
            rows_before + 1,
            "one row for the change: {context}"
        );
        if on {
            bump(&seen().subscriptions_made);
        }
        if on && self.model.subscribed.insert(note) {
            // The first subscription to the note: the server is told, after
            // the row.
            let deadline = Instant::now() + Duration::from_secs(5);
            while arrived(&self.upstream) == before && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(
                arrived(&self.upstream),
                before + 1,
                "the server is told: {context}"
            );
        }
        self.check_subscriptions_covered();
    }

    /// Every subscription the server received is covered by a row of its own
    /// committed before it arrived.
    pub fn check_subscriptions_covered(&self) {
        let mut seen_per_uri: BTreeMap<String, i64> = BTreeMap::new();
        for r in self.upstream.received_since(0, "resources/subscribe") {
            let k = seen_per_uri.entry(r.tool.clone()).or_default();
            *k += 1;
            assert!(
                r.rows_at_receipt >= *k,
                "subscription {} of {} reached the server with only {} rows: {}",
                k,
                r.tool,
                r.rows_at_receipt,
                self.side_context("subscriptions")
            );
        }
    }

    /// A call of the 2026-07-28 server's tool from a 2025-06-18 client: the
    /// server answers `input_required`; Warden asks the agent, and retries
    /// with its answer. The retry is a message of its own: decided (a person
    /// who approved the call is asked again, as the retry sends more),
    /// recorded, and sent only then.
    pub async fn check_confirm(
        &mut self,
        fx: &'static Fixture,
        agent: usize,
        note: usize,
        first: Answer,
        again: Answer,
    ) {
        let expect = self.model.expect_confirm(agent, note);
        let server = self.confirm_server.clone();
        let received_before = self.confirm.received.lock().len();
        let requested_before = rows_now(&fx.db, "tool_call.requested", &server, CONFIRM).await;
        let retried_before = rows_now(&fx.db, "tool_call.retried", &server, CONFIRM).await;
        let nonce = self.nonce();
        let approves = |a: Answer| matches!(a, Answer::Once | Answer::Session | Answer::Always);
        // Whether the call goes out, whether its retry asks the person, and
        // whether the retry goes out.
        let session = (agent, self.model.session[agent], CONFIRM_TOOL, 1);
        let (sent, asks_again) = match expect {
            Expect::Unauthenticated | Expect::Refused => (false, false),
            // Forwarded by a standing approval, which binds the call's
            // params: the retry sends more, so it asks; a session approval
            // (or an allow) covers it.
            Expect::Forwarded => (
                true,
                self.model
                    .decide_on(agent, CONFIRM_SERVER, CONFIRM, Risk::High)
                    == Effect::Ask
                    && !self.model.session_approvals.contains(&session),
            ),
            Expect::Asked => (approves(first), approves(first) && first != Answer::Session),
        };
        let retried = sent && (!asks_again || approves(again));

        let call = self.call(fx, agent, &server, CONFIRM, note, nonce.clone());
        let decide = async {
            let mut id = None;
            if expect == Expect::Asked {
                let request = self
                    .pending_on(fx, agent, &server, CONFIRM, None)
                    .await
                    .expect("the person is asked to approve the call");
                let asked = request["id"].as_str().expect("request id").to_string();
                if let Some(choice) = first.choice() {
                    fx.admin(Request::ApprovalDecide {
                        id: asked.clone(),
                        choice: choice.into(),
                        reason: None,
                        totp: None,
                    })
                    .await
                    .expect("the owner answers");
                }
                id = Some(asked);
            }
            if !asks_again {
                return;
            }
            let retry = self
                .pending_on(fx, agent, &server, CONFIRM, id.as_deref())
                .await
                .expect("the retry sends more than was approved: the person is asked again");
            assert_eq!(
                retry["sent"]["also sent"]["inputResponses"]["q"]["content"]["by"], nonce,
                "the second prompt shows what the retry sends: {retry}"
            );
            if let Some(choice) = again.choice() {
                fx.admin(Request::ApprovalDecide {
                    id: retry["id"].as_str().expect("id").to_string(),
                    choice: choice.into(),
                    reason: None,
                    totp: None,
                })
                .await
                .expect("the owner answers the retry");
            }
        };
        let ((told, asked), ()) = tokio::join!(call, decide);

        let got = self.confirm.received_since(received_before, "tools/call");
        let context = self.side_context(&format!(
            "{CONFIRM} by agent {agent}: expected {expect:?} (sent {sent}, asked again {asks_again}, retried {retried}), told {told:?}, asked {asked:?}, server got {got:?}"
        ));
        let requested_after = rows_now(&fx.db, "tool_call.requested", &server, CONFIRM).await;
        if expect == Expect::Unauthenticated {
            assert!(matches!(told, Told::Unauthenticated), "{context}");
            assert_eq!(requested_after, requested_before, "{context}");
        } else {
            assert_eq!(
                requested_after,
                requested_before + 1,
                "one row for the call: {context}"
            );
        }
        if !sent {
            assert!(
                got.is_empty(),
                "the call must not reach the server: {context}"
            );
            assert!(asked.is_empty(), "nobody is asked for input: {context}");
            assert!(!matches!(told, Told::Done), "{context}");
            bump(&seen().retries_refused);
            return;
        }
        // The call went out, after its row; the server wanted input, and the
        // agent was asked for it.
        assert!(!got.is_empty(), "the call reaches the server: {context}");
        assert!(got[0].params.get("inputResponses").is_none(), "{context}");
        assert!(got[0].rows_at_receipt > requested_before, "{context}");
        assert_eq!(asked.len(), 1, "the agent is asked once: {context}");
        assert_eq!(asked[0].0["method"], "elicitation/create", "{context}");
        if expect == Expect::Forwarded
            && self
                .model
                .decide_on(agent, CONFIRM_SERVER, CONFIRM, Risk::High)
                == Effect::Ask
        {
            bump(&seen().by_standing_or_session);
        }
        if retried {
            assert_eq!(got.len(), 2, "the retry reaches the server once: {context}");
            let retry = &got[1];
            assert_eq!(
                retry.params["inputResponses"],
                json!({"q": asked[0].1}),
                "the retry carries the agent's answer, unchanged: {context}"
            );
            assert_eq!(retry.params["requestState"], "confirm-state", "{context}");
            assert_eq!(
                retry.params["arguments"],
                json!({"note": NOTES[note]}),
                "{context}"
            );
            assert!(
                retry.rows_at_receipt > retried_before,
                "the retry's row was committed before the server saw it: {context}"
            );
            assert!(matches!(told, Told::Done), "{context}");
            bump(if asks_again {
                &seen().retries_approved_again
            } else {
                &seen().retries_sent
            });
        } else {
            assert_eq!(
                got.len(),
                1,
                "the retry must not reach the server: {context}"
            );
            assert!(!matches!(told, Told::Done), "{context}");
            bump(&seen().retries_refused);
        }
        // What the person's answers leave behind.
        if expect == Expect::Asked {
            match first {
                Answer::Session => {
                    self.model.session_approvals.insert(session);
                }
                Answer::Always => {
                    self.model.standing.insert((agent, CONFIRM_TOOL, note, 1));
                }
                _ => {}
            }
            if asks_again && again == Answer::Session {
                self.model.session_approvals.insert(session);
            }
        }
    }

    /// At the end of a case: nothing sent outside calls arrived that the
    /// model did not expect, however late.
    pub async fn finish_side(&self) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let expected = |k: &str| self.side_sent.get(k).copied().unwrap_or(0);
        let context = self.side_context("end of the case");
        assert_eq!(
            self.upstream.count(SET_LEVEL),
            expected(SET_LEVEL),
            "{context}"
        );
        assert_eq!(
            self.upstream.count(ROOTS_CHANGED),
            expected("roots:notes"),
            "{context}"
        );
        assert_eq!(
            self.confirm.count(ROOTS_CHANGED),
            expected("roots:confirm"),
            "{context}"
        );
        self.check_subscriptions_covered();
    }
}
