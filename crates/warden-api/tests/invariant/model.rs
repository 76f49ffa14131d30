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

pub const PATTERNS: [&str; 6] = [
    "*",
    "read_notes",
    "delete_note",
    "*_notes",
    "*note*",
    "delete_*",
];

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

#[derive(Debug, Clone)]
pub enum Op {
    Grant {
        role: usize,
        pattern: usize,
        effect: Effect,
        explicit: bool,
    },
    RevokeGrant {
        role: usize,
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
}

pub fn op_strategy() -> impl Strategy<Value = Op> {
    // Deny wins, so deny grants are kept rarer than the others, and
    // revoking an agent (which ends its part of the case) rarer still.
    let effect = prop_oneof![
        3 => Just(Effect::Allow),
        3 => Just(Effect::Ask),
        1 => Just(Effect::Deny),
    ];
    let answer = prop_oneof![
        4 => Just(Answer::Once),
        3 => Just(Answer::Session),
        3 => Just(Answer::Always),
        2 => Just(Answer::Deny),
        1 => Just(Answer::Nobody),
    ];
    let meanwhile = prop_oneof![
        12 => Just(Meanwhile::Nothing),
        2 => Just(Meanwhile::DenyTool),
        2 => Just(Meanwhile::ChangeTool),
        1 => Just(Meanwhile::RevokeAgent),
    ];
    prop_oneof![
        12 => (0..2usize, 0..PATTERNS.len(), effect, any::<bool>()).prop_map(
            |(role, pattern, effect, explicit)| Op::Grant {
                role,
                pattern,
                effect,
                // Only an allow can be explicit.
                explicit: explicit && effect == Effect::Allow,
            }
        ),
        4 => (0..2usize, 0..PATTERNS.len())
            .prop_map(|(role, pattern)| Op::RevokeGrant { role, pattern }),
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
    ]
}

#[derive(Debug, Default)]
pub struct Model {
    /// (role, pattern) → (effect, explicit).
    pub grants: BTreeMap<(usize, usize), (Effect, bool)>,
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
        let name = TOOLS[tool];
        let mut best: Option<Effect> = None;
        let mut explicit_allow = false;
        for (&(r, p), &(effect, explicit)) in &self.grants {
            if r != role || !warden_policy::glob(PATTERNS[p], name) {
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
        match (best.unwrap_or(Effect::Deny), self.risk(tool)) {
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

    pub fn forwarded(&mut self, tool: usize) {
        if self.pinned[tool].is_none() {
            self.pinned[tool] = Some(self.revision[tool]);
        }
    }
}
