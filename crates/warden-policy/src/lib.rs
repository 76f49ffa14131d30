//! Who may do what. A role holds grants of (server, tool pattern) → effect.
//! The rules, in order: a matching deny wins; else a matching ask; else a
//! matching allow; no matching grant means deny. A delegated caller gets the
//! intersection: the strictest of its own decision and its delegator's.
//!
//! Patterns match the server's own tool name with `*` (any run of
//! characters) and `?` (one character). Prompts and resources are matched as
//! `prompt:<name>` and `resource:<uri>`; a bare `*` covers everything on the
//! server.

use serde::{Deserialize, Serialize};

pub mod risk;
pub use risk::{Annotations, Assessment, Override, Risk, ToolFacts, classify};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    // Ordered from strictest to most permissive: `min` is the intersection.
    Deny,
    Ask,
    Allow,
}

impl Effect {
    pub fn parse(s: &str) -> Option<Effect> {
        match s {
            "allow" => Some(Effect::Allow),
            "ask" => Some(Effect::Ask),
            "deny" => Some(Effect::Deny),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Ask => "ask",
            Effect::Deny => "deny",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// A server name, or `*` for every server.
    pub server: String,
    pub pattern: String,
    pub effect: Effect,
    /// An `allow` that also covers high-risk tools without asking a person.
    /// A grant naming one tool exactly (no wildcard) is always explicit.
    #[serde(default)]
    pub explicit: bool,
}

impl Grant {
    fn names_exactly(&self) -> bool {
        self.explicit || !(self.pattern.contains('*') || self.pattern.contains('?'))
    }
}

/// What a caller may do, gathered from all of its roles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Access {
    pub grants: Vec<Grant>,
    /// For a delegated caller: the access of whoever delegated to it. The
    /// caller gets at most what both may do.
    pub delegator: Option<Box<Access>>,
}

/// What the thing being reached is.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Tool(&'a str),
    Prompt(&'a str),
    Resource(&'a str),
    /// A method Warden passes through without interpreting it.
    Method(&'a str),
}

/// The kinds a grant's pattern can name: `prompt:NAME`, `resource:URI`,
/// `method:NAME`, or a tool's bare name. `*` alone names every kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tool,
    Prompt,
    Resource,
    Method,
}

/// The prefixes that name a kind in a grant's pattern. A tool whose own
/// name starts with one is refused at listing (it could pose as another
/// kind in a grant written by hand).
pub const KIND_PREFIXES: [&str; 3] = ["prompt:", "resource:", "method:"];

/// (kind, name pattern) of a grant's pattern; `None` for `*` (any kind).
fn pattern_kind(pattern: &str) -> (Option<Kind>, &str) {
    if pattern == "*" {
        return (None, pattern);
    }
    for (prefix, kind) in [
        ("prompt:", Kind::Prompt),
        ("resource:", Kind::Resource),
        ("method:", Kind::Method),
    ] {
        if let Some(rest) = pattern.strip_prefix(prefix) {
            return (Some(kind), rest);
        }
    }
    (Some(Kind::Tool), pattern)
}

impl Access {
    pub fn new(grants: Vec<Grant>) -> Access {
        Access {
            grants,
            delegator: None,
        }
    }

    /// The decision for reaching `target` on `server`.
    pub fn decide(&self, server: &str, target: Target<'_>) -> Effect {
        self.decide_at(server, target, Risk::Low)
    }

    /// The decision for a target of the given risk: a high-risk target
    /// allowed only by a wildcard asks a person, and a critical one always
    /// asks.
    pub fn decide_at(&self, server: &str, target: Target<'_>, risk: Risk) -> Effect {
        let own = decide_grants(&self.grants, server, target, risk);
        match &self.delegator {
            Some(d) => own.min(d.decide_at(server, target, risk)),
            None => own,
        }
    }

    /// Which link of a delegation refuses a target: 0 is the caller's own
    /// grants, 1 its delegator's, and so on. `None` when none denies.
    pub fn denied_at(&self, server: &str, target: Target<'_>, risk: Risk) -> Option<usize> {
        if decide_grants(&self.grants, server, target, risk) == Effect::Deny {
            return Some(0);
        }
        self.delegator
            .as_ref()?
            .denied_at(server, target, risk)
            .map(|depth| depth + 1)
    }

    /// Whether the caller may use anything at all on `server` (so may hear
    /// its notifications).
    pub fn touches(&self, server: &str) -> bool {
        let own = self
            .grants
            .iter()
            .any(|g| (g.server == "*" || g.server == server) && g.effect != Effect::Deny);
        own && self.delegator.as_ref().is_none_or(|d| d.touches(server))
    }

    /// Whether a listing should show the item: anything not denied.
    pub fn visible(&self, server: &str, target: Target<'_>) -> bool {
        self.decide(server, target) != Effect::Deny
    }
}

fn decide_grants(grants: &[Grant], server: &str, target: Target<'_>, risk: Risk) -> Effect {
    // Grants match on (kind, name): a tool named `prompt:x` is a tool, and
    // a grant for the prompt `x` does not reach it.
    let (kind, name) = match target {
        Target::Tool(n) => (Kind::Tool, n),
        Target::Prompt(n) => (Kind::Prompt, n),
        Target::Resource(u) => (Kind::Resource, u),
        Target::Method(m) => (Kind::Method, m),
    };
    let mut best: Option<Effect> = None;
    let mut explicit_allow = false;
    for g in grants {
        if !(g.server == "*" || g.server == server) {
            continue;
        }
        let (grant_kind, pattern) = pattern_kind(&g.pattern);
        if grant_kind.is_some_and(|k| k != kind) || !(pattern == "*" || glob(pattern, name)) {
            continue;
        }
        if g.effect == Effect::Deny {
            return Effect::Deny;
        }
        if g.effect == Effect::Allow && g.names_exactly() {
            explicit_allow = true;
        }
        best = Some(best.map_or(g.effect, |b| b.min(g.effect)));
    }
    match (best.unwrap_or(Effect::Deny), risk) {
        (Effect::Allow, Risk::Critical) => Effect::Ask,
        (Effect::Allow, Risk::High) if !explicit_allow => Effect::Ask,
        (e, _) => e,
    }
}

/// `*` matches any run of characters (including none), `?` exactly one.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        // A `*` in the pattern is always a wildcard, even against a `*` in
        // the text (found by fuzzing: "x*" must match "x*y").
        if pi < p.len() && p[pi] != '*' && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Checks a grant pattern an admin typed: non-empty, printable, bounded.
pub fn validate_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() || pattern.len() > 256 || pattern.chars().any(char::is_control) {
        return Err(format!(
            "{pattern:?} is not a valid tool pattern: use a tool name, with * and ? as wildcards"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(server: &str, pattern: &str, effect: Effect) -> Grant {
        Grant {
            server: server.into(),
            pattern: pattern.into(),
            effect,
            explicit: false,
        }
    }

    #[test]
    fn high_risk_needs_an_explicit_allow_and_critical_always_asks() {
        let wildcard = Access::new(vec![g("fs", "*", Effect::Allow)]);
        let t = Target::Tool("write_file");
        assert_eq!(wildcard.decide_at("fs", t, Risk::Low), Effect::Allow);
        assert_eq!(wildcard.decide_at("fs", t, Risk::High), Effect::Ask);
        let named = Access::new(vec![
            g("fs", "*", Effect::Allow),
            g("fs", "write_file", Effect::Allow),
        ]);
        assert_eq!(named.decide_at("fs", t, Risk::High), Effect::Allow);
        assert_eq!(named.decide_at("fs", t, Risk::Critical), Effect::Ask);
        let mut flagged = g("fs", "write_*", Effect::Allow);
        flagged.explicit = true;
        let flagged = Access::new(vec![flagged]);
        assert_eq!(flagged.decide_at("fs", t, Risk::High), Effect::Allow);
        // An explicit allow never overrides a deny or an ask.
        let asked = Access::new(vec![
            g("fs", "write_file", Effect::Allow),
            g("fs", "write_*", Effect::Ask),
        ]);
        assert_eq!(asked.decide_at("fs", t, Risk::Low), Effect::Ask);
        let denied = Access::new(vec![
            g("fs", "write_file", Effect::Allow),
            g("*", "*", Effect::Deny),
        ]);
        assert_eq!(denied.decide_at("fs", t, Risk::High), Effect::Deny);
    }

    #[test]
    fn no_grant_means_deny() {
        let a = Access::new(vec![]);
        assert_eq!(a.decide("fs", Target::Tool("read_file")), Effect::Deny);
        let other = Access::new(vec![g("mem", "*", Effect::Allow)]);
        assert_eq!(
            other.decide("fs", Target::Tool("read_file")),
            Effect::Deny,
            "grants are per server"
        );
    }

    #[test]
    fn deny_wins_over_allow_and_ask_over_allow() {
        let a = Access::new(vec![
            g("fs", "*", Effect::Allow),
            g("fs", "write_*", Effect::Deny),
            g("fs", "move_file", Effect::Ask),
        ]);
        assert_eq!(a.decide("fs", Target::Tool("read_file")), Effect::Allow);
        assert_eq!(a.decide("fs", Target::Tool("write_file")), Effect::Deny);
        assert_eq!(a.decide("fs", Target::Tool("move_file")), Effect::Ask);
        // Order does not matter.
        let b = Access::new(vec![
            g("fs", "write_*", Effect::Deny),
            g("fs", "*", Effect::Allow),
        ]);
        assert_eq!(b.decide("fs", Target::Tool("write_file")), Effect::Deny);
        let c = Access::new(vec![g("*", "*", Effect::Allow), g("fs", "*", Effect::Deny)]);
        assert_eq!(c.decide("fs", Target::Tool("read_file")), Effect::Deny);
        assert_eq!(c.decide("mem", Target::Tool("read_graph")), Effect::Allow);
    }

    #[test]
    fn patterns() {
        assert!(glob("read_*", "read_file"));
        assert!(glob("read_*", "read_"));
        assert!(!glob("read_*", "xread_file"));
        assert!(glob("*_file", "read_file"));
        assert!(glob("r??d_file", "read_file"));
        assert!(!glob("r?d_file", "read_file"));
        assert!(glob("*a*b*", "xxaxxbxx"));
        assert!(!glob("*a*b", "xxaxxbxx"));
        assert!(glob("get_*_info", "get_file_info"));
        assert!(glob("*", ""));
        assert!(!glob("", "a"));
        assert!(glob("x*", "x*y"), "a * in the name is just a character");
        assert!(glob("*", "*\0read"));
        assert!(glob("a*c", "a*c") && glob("a*c", "a**c") && !glob("a*c", "a*b"));
    }

    #[test]
    fn prompts_and_resources_have_their_own_names() {
        let a = Access::new(vec![
            g("ev", "echo", Effect::Allow),
            g("ev", "prompt:simple*", Effect::Allow),
        ]);
        assert_eq!(
            a.decide("ev", Target::Prompt("simple-prompt")),
            Effect::Allow
        );
        assert_eq!(a.decide("ev", Target::Prompt("complex")), Effect::Deny);
        assert_eq!(a.decide("ev", Target::Resource("demo://x")), Effect::Deny);
        let all = Access::new(vec![g("ev", "*", Effect::Allow)]);
        assert_eq!(
            all.decide("ev", Target::Resource("demo://x")),
            Effect::Allow
        );
    }

    #[test]
    fn touches_only_servers_with_a_grant_that_is_not_deny() {
        let a = Access::new(vec![
            g("fs", "read_*", Effect::Allow),
            g("mem", "*", Effect::Deny),
        ]);
        assert!(a.touches("fs"));
        assert!(!a.touches("mem"));
        assert!(!a.touches("ev"));
        let mut d = Access::new(vec![g("*", "*", Effect::Allow)]);
        d.delegator = Some(Box::new(Access::new(vec![g("fs", "*", Effect::Allow)])));
        assert!(
            d.touches("fs") && !d.touches("ev"),
            "a delegated caller touches what both touch"
        );
    }

    #[test]
    fn grants_match_the_kind_as_well_as_the_name() {
        let a = Access::new(vec![g("files", "prompt:summarize", Effect::Allow)]);
        assert_eq!(
            a.decide("files", Target::Prompt("summarize")),
            Effect::Allow
        );
        assert_eq!(
            a.decide("files", Target::Tool("prompt:summarize")),
            Effect::Deny,
            "a tool that names itself like a prompt is still a tool"
        );
        let m = Access::new(vec![g("files", "method:ping_all", Effect::Allow)]);
        assert_eq!(
            m.decide("files", Target::Tool("method:ping_all")),
            Effect::Deny
        );
        assert_eq!(m.decide("files", Target::Method("ping_all")), Effect::Allow);
        let tools = Access::new(vec![g("files", "*summarize", Effect::Allow)]);
        assert_eq!(
            tools.decide("files", Target::Prompt("summarize")),
            Effect::Deny,
            "a bare pattern names tools only"
        );
        let every = Access::new(vec![g("files", "*", Effect::Allow)]);
        for t in [
            Target::Tool("x"),
            Target::Prompt("x"),
            Target::Resource("r://x"),
            Target::Method("x"),
        ] {
            assert_eq!(every.decide("files", t), Effect::Allow);
        }
    }

    #[test]
    fn a_refusal_names_the_link_of_the_chain_that_denies() {
        let own = Access::new(vec![g("files", "*", Effect::Allow)]);
        let mut delegated = own.clone();
        delegated.delegator = Some(Box::new(Access::new(vec![g(
            "files",
            "read_file",
            Effect::Allow,
        )])));
        let write = Target::Tool("write_file");
        assert_eq!(delegated.denied_at("files", write, Risk::Low), Some(1));
        assert_eq!(own.denied_at("files", write, Risk::Low), None);
        assert_eq!(delegated.denied_at("mail", write, Risk::Low), Some(0));
        assert_eq!(
            delegated.denied_at("files", Target::Tool("read_file"), Risk::Low),
            None
        );
    }

    #[test]
    fn delegation_gets_the_intersection() {
        let person_agent = Access::new(vec![
            g("fs", "*", Effect::Allow),
            g("fs", "delete_*", Effect::Ask),
        ]);
        let mut sub = Access::new(vec![
            g("fs", "read_*", Effect::Allow),
            g("fs", "delete_*", Effect::Allow),
            g("mem", "*", Effect::Allow),
        ]);
        sub.delegator = Some(Box::new(person_agent));
        assert_eq!(sub.decide("fs", Target::Tool("read_file")), Effect::Allow);
        assert_eq!(
            sub.decide("fs", Target::Tool("write_file")),
            Effect::Deny,
            "the sub-agent itself may not"
        );
        assert_eq!(
            sub.decide("fs", Target::Tool("delete_file")),
            Effect::Ask,
            "the stricter of the two"
        );
        assert_eq!(
            sub.decide("mem", Target::Tool("read_graph")),
            Effect::Deny,
            "the delegator may not"
        );
    }
}
