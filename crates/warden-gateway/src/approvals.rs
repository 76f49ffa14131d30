//! The approvals broker: calls that need a person wait here until the
//! agent's owner answers from any prompt surface (desktop notification,
//! approval window, terminal), the client withdraws the call, or the
//! timeout denies it. The first answer wins; every surface is then told to
//! withdraw its prompt.
//!
//! An answer can only come in through [`Broker::decide`] with an
//! [`Approver`], which warden-api builds from a signed-in person's session;
//! nothing an agent sends over MCP reaches it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;
use warden_policy::Risk;

/// What a person is asked to decide: everything they need to judge it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct ApprovalRequest {
    pub id: String,
    pub agent_id: i64,
    pub agent: String,
    /// The person the agent acts for, who is asked.
    pub person: Option<String>,
    /// For a delegated credential: the person and every agent it passed through.
    pub chain: Option<Vec<String>>,
    pub server: String,
    pub tool: String,
    pub risk: Risk,
    pub why: Vec<String>,
    /// The arguments as the activity log keeps them: secrets redacted, long
    /// strings cut.
    pub arguments: Option<serde_json::Value>,
    /// What the call will send, unredacted and whole. Only the person who
    /// may approve it is shown this (the API clears it for anyone else); it
    /// is never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub sent: Option<serde_json::Value>,
    pub arguments_hash: String,
    pub definition_hash: String,
    /// What the call is (`tools/call`, `prompts/get`, ...): part of every
    /// key an answer is remembered by, so a prompt's approval never covers
    /// a tool of the same name.
    #[serde(default)]
    pub method: String,
    /// The client session an "allow for this session" answer covers.
    pub session: String,
    /// Whether "allow for this session" may be chosen: the client keeps a
    /// session with Warden. A stateless (2026-07-28) client has none, and a
    /// session answer would cover every later call of the agent.
    #[serde(default)]
    pub session_choice: bool,
    pub requested_at_us: i64,
    pub expires_at_us: i64,
}

impl ApprovalRequest {
    /// Critical tools need a fresh second factor to approve.
    pub fn needs_step_up(&self) -> bool {
        self.risk == Risk::Critical
    }
}

/// How far an approval reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    /// This one call.
    Once,
    /// This tool, for the rest of the agent's client session (at most
    /// [`SESSION_APPROVAL_LIFETIME`]).
    Session,
    /// Calls with exactly these arguments, from now on (a standing approval
    /// the person can see and revoke).
    Always,
    Deny,
}

impl Choice {
    pub fn parse(s: &str) -> Option<Choice> {
        match s {
            "once" => Some(Choice::Once),
            "session" => Some(Choice::Session),
            "always" => Some(Choice::Always),
            "deny" => Some(Choice::Deny),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Choice::Once => "once",
            Choice::Session => "session",
            Choice::Always => "always",
            Choice::Deny => "deny",
        }
    }
}

/// A signed-in person answering. warden-api is the only place that builds
/// one, from a person's session.
#[derive(Debug, Clone)]
pub struct Approver {
    pub person: String,
    pub admin: bool,
    /// Whether they proved a second factor just now (step-up).
    pub fresh_mfa: bool,
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Approved {
        by: String,
        choice: Choice,
        step_up: bool,
    },
    Denied {
        by: String,
        reason: Option<String>,
    },
    /// Nobody answered in time: denied.
    TimedOut,
    /// The client cancelled the call or went away.
    Withdrawn,
}

impl Outcome {
    pub fn approved(&self) -> bool {
        matches!(self, Outcome::Approved { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    #[error("there is no pending approval {0}: it was already answered, withdrawn, or timed out")]
    NotFound(String),
    #[error(
        "this request is for {owner}'s agent; only {owner} can approve it (an admin can deny it)"
    )]
    NotYours { owner: String },
    #[error(
        "this tool is critical: approving needs a fresh authenticator code (step-up). Enter the current code and try again"
    )]
    StepUpRequired,
    #[error(
        "a critical tool is approved one call at a time; \"this session\" and \"always allow\" are not offered for it"
    )]
    OnceOnlyForCritical,
    #[error(
        "this agent acts for someone else through a delegation: its calls are approved one at a time"
    )]
    OnceOnlyForDelegated,
    #[error(
        "this agent's client keeps no session with Warden, so \"this session\" would cover every call the agent makes; approve once, or always for these exact arguments"
    )]
    NoSession,
}

/// A surface that shows prompts: the desktop notification, the app's
/// approval window. Calls must not block: a surface that cannot show a
/// prompt logs it and returns.
pub trait Surface: Send + Sync {
    fn offer(&self, request: &ApprovalRequest);
    fn withdraw(&self, request: &ApprovalRequest, outcome: &Outcome);
}

/// How long an "allow for this session" answer lasts at most.
pub const SESSION_APPROVAL_LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);

struct Pending {
    request: ApprovalRequest,
    answer: oneshot::Sender<Outcome>,
}

/// (agent, session, server, tool, definition hash) of a session approval.
/// (agent, client session, server, method, tool, definition hash).
type SessionKey = (i64, String, String, String, String, String);

pub struct Broker {
    pending: Mutex<HashMap<String, Pending>>,
    sessions: Mutex<HashMap<SessionKey, std::time::Instant>>,
    surfaces: Mutex<Vec<Arc<dyn Surface>>>,
    /// Bumped on every change, for long-polling prompt surfaces.
    version: watch::Sender<u64>,
}

impl Default for Broker {
    fn default() -> Self {
        Broker {
            pending: Mutex::default(),
            sessions: Mutex::default(),
            surfaces: Mutex::default(),
            version: watch::channel(0).0,
        }
    }
}

impl Broker {
    pub fn add_surface(&self, surface: Arc<dyn Surface>) {
        self.surfaces.lock().push(surface);
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// A receiver that changes whenever a request arrives or ends.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Pending requests, oldest first; `person` limits them to one owner's.
    pub fn pending(&self, person: Option<&str>) -> Vec<ApprovalRequest> {
        let mut out: Vec<ApprovalRequest> = self
            .pending
            .lock()
            .values()
            .map(|p| p.request.clone())
            .filter(|r| person.is_none_or(|p| r.person.as_deref() == Some(p)))
            .collect();
        out.sort_by_key(|r| (r.requested_at_us, r.id.clone()));
        out
    }

    pub fn get(&self, id: &str) -> Option<ApprovalRequest> {
        self.pending.lock().get(id).map(|p| p.request.clone())
    }

    /// Whether a session approval covers this call.
    pub fn session_allows(&self, r: &ApprovalRequest) -> bool {
        let key = session_key(r);
        let mut sessions = self.sessions.lock();
        match sessions.get(&key) {
            Some(at) if at.elapsed() < SESSION_APPROVAL_LIFETIME => true,
            Some(_) => {
                sessions.remove(&key);
                false
            }
            None => false,
        }
    }

    /// Ends every session approval of a client session (it closed).
    pub fn end_session(&self, session: &str) {
        self.sessions.lock().retain(|k, _| k.1 != session);
    }

    /// Waits for an answer to `request`, at most `timeout`, or until
    /// `cancel` fires (the client withdrew the call).
    pub async fn ask(
        &self,
        request: ApprovalRequest,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Outcome {
        let (tx, mut rx) = oneshot::channel();
        let id = request.id.clone();
        self.pending.lock().insert(
            id.clone(),
            Pending {
                request: request.clone(),
                answer: tx,
            },
        );
        self.bump();
        let surfaces = self.surfaces.lock().clone();
        for s in &surfaces {
            s.offer(&request);
        }
        let ended = tokio::select! {
            r = &mut rx => r.ok(),
            _ = tokio::time::sleep(timeout) => None,
            _ = cancel.cancelled() => None,
        };
        let outcome = match ended {
            Some(o) => o,
            None => {
                // Timed out or withdrawn, unless an answer won the race.
                if self.pending.lock().remove(&id).is_some() {
                    if cancel.is_cancelled() {
                        Outcome::Withdrawn
                    } else {
                        Outcome::TimedOut
                    }
                } else {
                    rx.await.unwrap_or(Outcome::Withdrawn)
                }
            }
        };
        if let Outcome::Approved {
            choice: Choice::Session,
            ..
        } = &outcome
        {
            self.sessions
                .lock()
                .insert(session_key(&request), std::time::Instant::now());
        }
        self.bump();
        for s in &surfaces {
            s.withdraw(&request, &outcome);
        }
        outcome
    }

    /// A person's answer. Only the agent's owner may approve (an admin when
    /// the agent has no owner); the owner or any admin may deny.
    pub fn decide(
        &self,
        id: &str,
        approver: &Approver,
        choice: Choice,
        reason: Option<String>,
    ) -> Result<ApprovalRequest, DecideError> {
        let mut pending = self.pending.lock();
        let p = pending
            .get(id)
            .ok_or_else(|| DecideError::NotFound(id.to_string()))?;
        let r = &p.request;
        let owns = match &r.person {
            Some(owner) => *owner == approver.person,
            None => approver.admin,
        };
        if choice == Choice::Deny {
            if !(owns || approver.admin) {
                return Err(DecideError::NotYours {
                    owner: r.person.clone().unwrap_or_else(|| "an admin".into()),
                });
            }
        } else {
            if !owns {
                return Err(DecideError::NotYours {
                    owner: r.person.clone().unwrap_or_else(|| "an admin".into()),
                });
            }
            if r.needs_step_up() && !approver.fresh_mfa {
                return Err(DecideError::StepUpRequired);
            }
            if r.needs_step_up() && choice != Choice::Once {
                return Err(DecideError::OnceOnlyForCritical);
            }
            if r.chain.is_some() && choice != Choice::Once {
                return Err(DecideError::OnceOnlyForDelegated);
            }
            if choice == Choice::Session && !r.session_choice {
                return Err(DecideError::NoSession);
            }
        }
        let Some(p) = pending.remove(id) else {
            return Err(DecideError::NotFound(id.to_string()));
        };
        let outcome = if choice == Choice::Deny {
            Outcome::Denied {
                by: approver.person.clone(),
                reason: reason.filter(|r| !r.trim().is_empty()),
            }
        } else {
            Outcome::Approved {
                by: approver.person.clone(),
                choice,
                step_up: approver.fresh_mfa,
            }
        };
        let request = p.request.clone();
        // The waiting call may have just timed out; then this answer is lost
        // and the call stays denied.
        let _ = p.answer.send(outcome);
        Ok(request)
    }

    /// Denies a request from a prompt that shows no identity (a desktop
    /// notification's Deny button): denying never needs proof.
    pub fn deny_from_prompt(&self, id: &str, surface: &str) -> bool {
        let Some(p) = self.pending.lock().remove(id) else {
            return false;
        };
        let _ = p.answer.send(Outcome::Denied {
            by: surface.to_string(),
            reason: None,
        });
        true
    }
}

fn session_key(r: &ApprovalRequest) -> SessionKey {
    (
        r.agent_id,
        r.session.clone(),
        r.server.clone(),
        r.method.clone(),
        r.tool.clone(),
        r.definition_hash.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: &str, risk: Risk) -> ApprovalRequest {
        ApprovalRequest {
            id: id.into(),
            agent_id: 7,
            agent: "writer".into(),
            person: Some("alice".into()),
            chain: None,
            server: "fs".into(),
            tool: "write_file".into(),
            risk,
            why: vec!["it may change or delete things".into()],
            arguments: Some(serde_json::json!({"path": "/tmp/x"})),
            arguments_hash: "a1".into(),
            definition_hash: "d1".into(),
            method: "tools/call".into(),
            sent: None,
            session: "s1".into(),
            session_choice: true,
            requested_at_us: 0,
            expires_at_us: 0,
        }
    }

    fn alice(fresh_mfa: bool) -> Approver {
        Approver {
            person: "alice".into(),
            admin: false,
            fresh_mfa,
        }
    }

    /// Starts a wait and returns its handle once the request is pending.
    async fn start(
        broker: &Arc<Broker>,
        r: ApprovalRequest,
        timeout: Duration,
    ) -> (tokio::task::JoinHandle<Outcome>, CancellationToken) {
        let cancel = CancellationToken::new();
        let (b, c, id) = (broker.clone(), cancel.clone(), r.id.clone());
        let h = tokio::spawn(async move { b.ask(r, timeout, &c).await });
        while broker.get(&id).is_none() {
            tokio::task::yield_now().await;
        }
        (h, cancel)
    }

    #[tokio::test]
    async fn each_choice_ends_the_wait_with_its_outcome() {
        let broker = Arc::new(Broker::default());
        for choice in [Choice::Once, Choice::Session, Choice::Always] {
            let (h, _) = start(&broker, request("r", Risk::High), Duration::from_secs(30)).await;
            broker
                .decide("r", &alice(false), choice, None)
                .expect("decide");
            assert_eq!(
                h.await.expect("join"),
                Outcome::Approved {
                    by: "alice".into(),
                    choice,
                    step_up: false
                }
            );
            assert!(broker.pending(None).is_empty());
        }
        let (h, _) = start(&broker, request("r", Risk::High), Duration::from_secs(30)).await;
        broker
            .decide("r", &alice(false), Choice::Deny, Some("not today".into()))
            .expect("deny");
        assert_eq!(
            h.await.expect("join"),
            Outcome::Denied {
                by: "alice".into(),
                reason: Some("not today".into())
            }
        );
        // The first answer wins: a second one finds nothing.
        assert!(matches!(
            broker.decide("r", &alice(false), Choice::Once, None),
            Err(DecideError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn no_answer_is_a_denial_and_a_cancel_withdraws() {
        let broker = Arc::new(Broker::default());
        let (h, _) = start(&broker, request("t", Risk::High), Duration::from_millis(50)).await;
        assert_eq!(h.await.expect("join"), Outcome::TimedOut);
        // After expiry the request cannot be approved any more.
        assert!(matches!(
            broker.decide("t", &alice(false), Choice::Once, None),
            Err(DecideError::NotFound(_))
        ));
        let (h, cancel) = start(&broker, request("c", Risk::High), Duration::from_secs(30)).await;
        cancel.cancel();
        assert_eq!(h.await.expect("join"), Outcome::Withdrawn);
        assert!(broker.pending(None).is_empty());
    }

    #[tokio::test]
    async fn only_the_owner_approves_and_critical_needs_step_up() {
        let broker = Arc::new(Broker::default());
        let (h, _) = start(
            &broker,
            request("r", Risk::Critical),
            Duration::from_secs(30),
        )
        .await;
        // The agent itself, another person, and an admin cannot approve.
        for who in ["writer", "bob"] {
            let a = Approver {
                person: who.into(),
                admin: false,
                fresh_mfa: true,
            };
            assert!(matches!(
                broker.decide("r", &a, Choice::Once, None),
                Err(DecideError::NotYours { .. })
            ));
        }
        let admin = Approver {
            person: "root".into(),
            admin: true,
            fresh_mfa: true,
        };
        assert!(matches!(
            broker.decide("r", &admin, Choice::Once, None),
            Err(DecideError::NotYours { .. })
        ));
        assert_eq!(
            broker.decide("r", &alice(false), Choice::Once, None),
            Err(DecideError::StepUpRequired)
        );
        for choice in [Choice::Always, Choice::Session] {
            assert_eq!(
                broker.decide("r", &alice(true), choice, None),
                Err(DecideError::OnceOnlyForCritical)
            );
        }
        assert_eq!(broker.pending(Some("alice")).len(), 1, "still waiting");
        broker
            .decide("r", &alice(true), Choice::Once, None)
            .expect("approve with step-up");
        assert!(h.await.expect("join").approved());
        // An admin may deny someone else's request.
        let (h, _) = start(&broker, request("d", Risk::High), Duration::from_secs(30)).await;
        broker
            .decide("d", &admin, Choice::Deny, None)
            .expect("deny");
        assert!(matches!(h.await.expect("join"), Outcome::Denied { by, .. } if by == "root"));
    }

    #[tokio::test]
    async fn a_session_approval_is_bound_to_agent_session_method_tool_and_definition() {
        let broker = Arc::new(Broker::default());
        let (h, _) = start(&broker, request("r", Risk::High), Duration::from_secs(30)).await;
        broker
            .decide("r", &alice(false), Choice::Session, None)
            .expect("decide");
        h.await.expect("join");
        let same = request("r2", Risk::High);
        assert!(broker.session_allows(&same));
        let mut other_args = request("r3", Risk::High);
        other_args.arguments_hash = "a2".into();
        assert!(
            broker.session_allows(&other_args),
            "a session approval covers the tool, whatever the arguments"
        );
        for change in 0..5 {
            let mut r = request("x", Risk::High);
            match change {
                0 => r.agent_id = 8,
                1 => r.session = "s2".into(),
                2 => r.tool = "move_file".into(),
                3 => r.method = "prompts/get".into(),
                _ => r.definition_hash = "d2".into(),
            }
            assert!(!broker.session_allows(&r), "change {change} must not match");
        }
        broker.end_session("s1");
        assert!(!broker.session_allows(&same));
        // A once approval leaves nothing behind.
        let (h, _) = start(&broker, request("o", Risk::High), Duration::from_secs(30)).await;
        broker
            .decide("o", &alice(false), Choice::Once, None)
            .expect("once");
        h.await.expect("join");
        assert!(!broker.session_allows(&request("o2", Risk::High)));
    }

    struct Recorder(Mutex<Vec<String>>);
    impl Surface for Recorder {
        fn offer(&self, r: &ApprovalRequest) {
            self.0.lock().push(format!("offer {}", r.id));
        }
        fn withdraw(&self, r: &ApprovalRequest, _: &Outcome) {
            self.0.lock().push(format!("withdraw {}", r.id));
        }
    }

    #[tokio::test]
    async fn every_surface_is_offered_the_request_and_told_when_it_ends() {
        let broker = Arc::new(Broker::default());
        let (a, b) = (
            Arc::new(Recorder(Mutex::default())),
            Arc::new(Recorder(Mutex::default())),
        );
        broker.add_surface(a.clone());
        broker.add_surface(b.clone());
        let mut version = broker.watch();
        let (h, _) = start(&broker, request("r", Risk::High), Duration::from_secs(30)).await;
        assert!(version.has_changed().expect("watch"));
        version.mark_unchanged();
        assert!(broker.deny_from_prompt("r", "desktop notification"));
        assert!(
            matches!(h.await.expect("join"), Outcome::Denied { by, .. } if by == "desktop notification")
        );
        assert!(version.has_changed().expect("watch"));
        for s in [a, b] {
            assert_eq!(*s.0.lock(), vec!["offer r", "withdraw r"]);
        }
    }
}
