//! The model: the rules written down once more, by hand, from DESIGN.md, and
//! the operations a case is made of.

use crate::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Effect {
    Deny,
    Ask,
    Allow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Risk {
    Low,
    High,
}

pub const PATTERNS: [&str; 8] = [
    "*",
    "read_notes",
    "delete_note",
    "*_notes",
    "*note*",
    "delete_*",
    // A bare pattern names tools; a resource is named with its prefix (or
    // by `*` alone).
    "resource:*://A",
    "confirm_*",
];

/// Whether a grant's pattern reaches `name`, a tool or (`resource`) a URI.
fn reaches(pattern: &str, resource: bool, name: &str) -> bool {
    match (pattern, pattern.strip_prefix("resource:")) {
        ("*", _) => true,
        (_, Some(uri)) => resource && warden_policy::glob(uri, name),
        (tool, None) => !resource && warden_policy::glob(tool, name),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Once,
    Session,
    Always,
    Deny,
    Nobody,
}

impl Answer {
    pub fn choice(self) -> Option<&'static str> {
        match self {
            Answer::Once => Some("once"),
            Answer::Session => Some("session"),
            Answer::Always => Some("always"),
            Answer::Deny => Some("deny"),
            Answer::Nobody => None,
        }
    }
}

/// What happens to a call while its approval is pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meanwhile {
    Nothing,
    /// The agent's role now denies the tool.
    DenyTool,
    /// The server changes the tool's definition.
    ChangeTool,
    /// The agent's credential is revoked.
    RevokeAgent,
}

/// The case's servers: the 2025-06-18 one with [`TOOLS`], and the
/// 2026-07-28 one with [`CONFIRM`].
pub const NOTES_SERVER: usize = 0;
pub const CONFIRM_SERVER: usize = 1;
/// [`CONFIRM`]'s index where the model keys approvals by tool.
pub const CONFIRM_TOOL: usize = 3;

#[derive(Debug, Clone)]
pub enum Op {
    Grant {
        role: usize,
        server: usize,
        pattern: usize,
        effect: Effect,
        explicit: bool,
    },
    RevokeGrant {
        role: usize,
        server: usize,
        pattern: usize,
    },
    Call {
        agent: usize,
        tool: usize,
        note: usize,
        answer: Answer,
        meanwhile: Meanwhile,
    },
    ChangeTool {
        tool: usize,
    },
    Review {
        tool: usize,
        accept: bool,
    },
    SetRisk {
        tool: usize,
        risk: Option<Risk>,
    },
    RevokeStanding {
        pick: usize,
    },
    NewSession {
        agent: usize,
    },
    RevokeAgent {
        agent: usize,
    },
    /// `logging/setLevel`, with more in its params than the level.
    SetLevel {
        agent: usize,
        level: usize,
    },
    /// `notifications/roots/list_changed`.
    RootsChanged {
        agent: usize,
    },
    /// `resources/subscribe` (or `unsubscribe`) to one note.
    Subscribe {
        agent: usize,
        note: usize,
        on: bool,
    },
    /// A call of [`CONFIRM`]: the server answers `input_required`, Warden
    /// asks the agent, and retries with its answer; `first` answers the
    /// approval of the call, `again` the approval of the retry.
    Confirm {
        agent: usize,
        note: usize,
        first: Answer,
        again: Answer,
    },
}

fn answer() -> impl Strategy<Value = Answer> + Clone {
    prop_oneof![
        4 => Just(Answer::Once),
        3 => Just(Answer::Session),
        3 => Just(Answer::Always),
        2 => Just(Answer::Deny),
        1 => Just(Answer::Nobody),
    ]
}

/// The messages an agent sends outside a tools/call, and calls with retries.
fn side_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..2usize, 0..LEVELS.len()).prop_map(|(agent, level)| Op::SetLevel { agent, level }),
        1 => (0..2usize).prop_map(|agent| Op::RootsChanged { agent }),
        3 => (
            0..2usize,
            0..NOTES.len(),
            prop_oneof![3 => Just(true), 1 => Just(false)]
        )
            .prop_map(|(agent, note, on)| Op::Subscribe { agent, note, on }),
        4 => (0..2usize, 0..NOTES.len(), answer(), answer()).prop_map(|(agent, note, first, again)| {
            Op::Confirm {
                agent,
                note,
                first,
                again,
            }
        }),
    ]
}

pub fn op_strategy() -> impl Strategy<Value = Op> {
    // Deny wins, so deny grants are kept rarer than the others, and
    // revoking an agent (which ends its part of the case) rarer still.
    let effect = prop_oneof![
        3 => Just(Effect::Allow),
        3 => Just(Effect::Ask),
        1 => Just(Effect::Deny),
    ];
    let answer = answer();
    // A grant's server and pattern: on the confirm server, mostly patterns
    // that reach its one tool.
    let target = prop_oneof![
        3 => (Just(NOTES_SERVER), 0..PATTERNS.len()),
        // The two that reach a resource, more often.
        2 => (Just(NOTES_SERVER), prop_oneof![Just(0usize), Just(6)]),
        2 => (Just(CONFIRM_SERVER), prop_oneof![Just(0usize), Just(4), Just(7), Just(1)]),
    ];
    let meanwhile = prop_oneof![
        12 => Just(Meanwhile::Nothing),
        2 => Just(Meanwhile::DenyTool),
        2 => Just(Meanwhile::ChangeTool),
        1 => Just(Meanwhile::RevokeAgent),
    ];
    prop_oneof![
        16 => (0..2usize, target.clone(), effect, any::<bool>()).prop_map(
            |(role, (server, pattern), effect, explicit)| Op::Grant {
                role,
                server,
                pattern,
                effect,
                // Only an allow can be explicit.
                explicit: explicit && effect == Effect::Allow,
            }
        ),
        4 => (0..2usize, target)
            .prop_map(|(role, (server, pattern))| Op::RevokeGrant { role, server, pattern }),
        28 => (0..2usize, 0..TOOLS.len(), 0..NOTES.len(), answer, meanwhile).prop_map(
            |(agent, tool, note, answer, meanwhile)| Op::Call { agent, tool, note, answer, meanwhile }
        ),
        4 => (0..TOOLS.len()).prop_map(|tool| Op::ChangeTool { tool }),
        4 => (0..TOOLS.len(), any::<bool>()).prop_map(|(tool, accept)| Op::Review { tool, accept }),
        2 => (0..TOOLS.len(), prop_oneof![Just(None), Just(Some(Risk::Low)), Just(Some(Risk::High))])
            .prop_map(|(tool, risk)| Op::SetRisk { tool, risk }),
        2 => (0..8usize).prop_map(|pick| Op::RevokeStanding { pick }),
        2 => (0..2usize).prop_map(|agent| Op::NewSession { agent }),
        1 => (0..2usize).prop_map(|agent| Op::RevokeAgent { agent }),
        16 => side_op(),
    ]
}

#[derive(Debug, Default)]
pub struct Model {
    /// (role, server, pattern) → (effect, explicit).
    pub grants: BTreeMap<(usize, usize, usize), (Effect, bool)>,
    pub revoked: [bool; 2],
    pub revision: [u32; 3],
    /// The revision a tool was pinned at (first allowed use, an admin's
    /// risk decision or an accepted review); `None` while only seen.
    pub pinned: [Option<u32>; 3],
    pub risk_override: [Option<Risk>; 3],
    /// The agent's current client session, by generation.
    pub session: [u32; 2],
    /// (agent, session, tool, revision) approved for the session.
    pub session_approvals: BTreeSet<(usize, u32, usize, u32)>,
    /// (agent, tool, note, revision) approved for good.
    pub standing: BTreeSet<(usize, usize, usize, u32)>,
    /// Notes some agent subscribed to in this case.
    pub subscribed: BTreeSet<usize>,
}

pub const BASE_RISK: [Risk; 3] = [Risk::Low, Risk::Low, Risk::High];

#[derive(Debug, PartialEq, Eq)]
pub enum Expect {
    /// The credential is refused before any policy: no row.
    Unauthenticated,
    /// Refused by policy or quarantine: a `deny` row.
    Refused,
    /// Forwarded without asking: an `allow` row.
    Forwarded,
    /// A person is asked: an `ask` row.
    Asked,
}

impl Model {
    pub fn risk(&self, tool: usize) -> Risk {
        self.risk_override[tool].unwrap_or(BASE_RISK[tool])
    }

    pub fn usable(&self, tool: usize) -> bool {
        self.pinned[tool].is_none_or(|p| p == self.revision[tool])
    }

    /// The agent's role is its own index.
    pub fn decide(&self, role: usize, tool: usize) -> Effect {
        self.decide_on(role, NOTES_SERVER, TOOLS[tool], self.risk(tool))
    }

    /// The decision for the tool `name` on `server`.
    pub fn decide_on(&self, role: usize, server: usize, name: &str, risk: Risk) -> Effect {
        self.decide_kind(role, server, false, name, risk)
    }

    /// Whether the agent may read (so subscribe to) the resource `uri`.
    pub fn may_read(&self, role: usize, uri: &str) -> bool {
        self.decide_kind(role, NOTES_SERVER, true, uri, Risk::Low) == Effect::Allow
    }

    fn decide_kind(
        &self,
        role: usize,
        server: usize,
        resource: bool,
        name: &str,
        risk: Risk,
    ) -> Effect {
        let mut best: Option<Effect> = None;
        let mut explicit_allow = false;
        for (&(r, s, p), &(effect, explicit)) in &self.grants {
            if r != role || s != server || !reaches(PATTERNS[p], resource, name) {
                continue;
            }
            if effect == Effect::Deny {
                return Effect::Deny;
            }
            let wildcard = PATTERNS[p].contains('*');
            if effect == Effect::Allow && (explicit || !wildcard) {
                explicit_allow = true;
            }
            best = Some(best.map_or(effect, |b| b.min(effect)));
        }
        match (best.unwrap_or(Effect::Deny), risk) {
            (Effect::Allow, Risk::High) if !explicit_allow => Effect::Ask,
            (e, _) => e,
        }
    }

    pub fn expect(&self, agent: usize, tool: usize, note: usize) -> Expect {
        if self.revoked[agent] {
            return Expect::Unauthenticated;
        }
        if !self.usable(tool) {
            return Expect::Refused;
        }
        match self.decide(agent, tool) {
            Effect::Deny => Expect::Refused,
            Effect::Allow => Expect::Forwarded,
            Effect::Ask => {
                let rev = self.revision[tool];
                if self.standing.contains(&(agent, tool, note, rev))
                    || self
                        .session_approvals
                        .contains(&(agent, self.session[agent], tool, rev))
                {
                    Expect::Forwarded
                } else {
                    Expect::Asked
                }
            }
        }
    }

    /// Whether the agent may use anything on `server`, and so hears of
    /// (and is heard by) it outside calls.
    pub fn touches(&self, agent: usize, server: usize) -> bool {
        self.grants
            .iter()
            .any(|(&(r, s, _), &(effect, _))| r == agent && s == server && effect != Effect::Deny)
    }

    /// [`CONFIRM`]: high risk (it writes), never changed.
    pub fn expect_confirm(&self, agent: usize, note: usize) -> Expect {
        if self.revoked[agent] {
            return Expect::Unauthenticated;
        }
        match self.decide_on(agent, CONFIRM_SERVER, CONFIRM, Risk::High) {
            Effect::Deny => Expect::Refused,
            Effect::Allow => Expect::Forwarded,
            Effect::Ask => {
                if self.standing.contains(&(agent, CONFIRM_TOOL, note, 1))
                    || self.session_approvals.contains(&(
                        agent,
                        self.session[agent],
                        CONFIRM_TOOL,
                        1,
                    ))
                {
                    Expect::Forwarded
                } else {
                    Expect::Asked
                }
            }
        }
    }

    pub fn forwarded(&mut self, tool: usize) {
        if self.pinned[tool].is_none() {
            self.pinned[tool] = Some(self.revision[tool]);
        }
    }
}
