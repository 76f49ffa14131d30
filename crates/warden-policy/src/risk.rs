//! How risky a tool is. A server's annotations are hints it gives about its
//! own tools: they may raise a tool's risk, but only a server an admin
//! trusts may lower it. A tool without annotations counts as destructive and
//! reaching the open world, as the MCP specification says. Names and
//! descriptions that speak of deleting, exporting, paying or sending raise
//! the risk whatever the annotations claim. An admin's override decides.

use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ts_rs::TS,
)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// Reads only.
    Low,
    /// Writes, deletes, exports, sends, or reaches the open world.
    High,
    /// Marked by an admin: every call needs a person's approval with a fresh
    /// second factor.
    Critical,
}

impl Risk {
    pub fn parse(s: &str) -> Option<Risk> {
        match s {
            "low" => Some(Risk::Low),
            "high" => Some(Risk::High),
            "critical" => Some(Risk::Critical),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::High => "high",
            Risk::Critical => "critical",
        }
    }
}

/// The MCP tool annotations (all optional hints).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Annotations {
    pub read_only_hint: Option<bool>,
    pub destructive_hint: Option<bool>,
    pub idempotent_hint: Option<bool>,
    pub open_world_hint: Option<bool>,
}

/// What Warden knows about a tool when it classifies it.
#[derive(Debug, Clone, Copy)]
pub struct ToolFacts<'a> {
    pub name: &'a str,
    pub title: Option<&'a str>,
    pub description: Option<&'a str>,
    /// `None` when the server sent no annotations at all.
    pub annotations: Option<Annotations>,
    /// Whether an admin marked the server trusted: only then may its
    /// annotations lower a tool's risk.
    pub server_trusted: bool,
}

/// An admin's decision about one tool, with the reason shown to people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub risk: Risk,
    pub reason: String,
    pub by: String,
}

/// A tool's risk and why, in words a person can read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    pub risk: Risk,
    pub why: Vec<String>,
}

/// Words that mean an action cannot be taken back, leaves the machine or
/// moves money, and whether they count in descriptions too. Words that
/// descriptions use loosely ("error messages", "a shared folder") count
/// only in a tool's name.
const SIGNALS: &[(&str, &str, bool)] = &[
    ("delete", "deletes", true),
    ("remove", "deletes", false),
    ("destroy", "deletes", true),
    ("drop", "deletes", false),
    ("erase", "deletes", true),
    ("purge", "deletes", true),
    ("wipe", "deletes", true),
    ("truncate", "deletes", false),
    ("overwrite", "writes", true),
    ("export", "exports", true),
    ("download", "exports", false),
    ("upload", "sends", true),
    ("send", "sends", true),
    ("email", "sends", true),
    ("mail", "sends", false),
    ("message", "sends", false),
    ("post", "sends", false),
    ("publish", "sends", true),
    ("share", "sends", false),
    ("transfer", "pays", false),
    ("pay", "pays", false),
    ("payment", "pays", true),
    ("purchase", "pays", true),
    ("charge", "pays", false),
    ("refund", "pays", true),
    ("invoice", "pays", false),
    ("wire", "pays", false),
];

/// The words of a name or description: lower case, split at anything that
/// is not a letter or digit and at camelCase humps.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if c.is_uppercase() && prev_lower && !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = c.is_lowercase();
            cur.extend(c.to_lowercase());
        } else {
            prev_lower = false;
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The signal a word carries, counting simple inflections ("deletes",
/// "deleting", "sent" is not needed: "send" covers the imperative names
/// tools have).
fn signal(word: &str, in_description: bool) -> Option<&'static str> {
    SIGNALS.iter().find_map(|(stem, what, loose)| {
        if in_description && !loose {
            return None;
        }
        let hit = word == *stem
            || word
                .strip_prefix(stem)
                .is_some_and(|rest| matches!(rest, "s" | "es" | "d" | "ed" | "ing" | "ion"));
        hit.then_some(*what)
    })
}

/// Classifies a tool. An override wins; otherwise the strictest of what the
/// annotations (as far as they may be believed) and the words say.
pub fn classify(facts: &ToolFacts<'_>, over: Option<&Override>) -> Assessment {
    if let Some(o) = over {
        return Assessment {
            risk: o.risk,
            why: vec![format!(
                "set to {} by {}: {}",
                o.risk.as_str(),
                o.by,
                o.reason
            )],
        };
    }
    let mut why = Vec::new();
    let mut risk = Risk::High;
    match facts.annotations {
        None => why.push(
            "the server does not describe this tool, so it counts as able to change or delete things and reach the internet"
                .to_string(),
        ),
        Some(a) => {
            let read_only = a.read_only_hint == Some(true);
            if read_only && facts.server_trusted {
                risk = Risk::Low;
                why.push("the server, which an admin trusts, says it only reads".to_string());
            } else if read_only {
                why.push(
                    "the server says it only reads, but no admin has marked this server trusted, so Warden does not take its word"
                        .to_string(),
                );
            } else {
                // Not read-only: destructive unless said otherwise, and open
                // world unless said otherwise (the specification's defaults).
                if a.destructive_hint != Some(false) {
                    why.push("it may change or delete things".to_string());
                } else {
                    why.push("it changes things".to_string());
                }
                if a.open_world_hint != Some(false) {
                    why.push("it may reach the internet or other systems".to_string());
                }
            }
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    let texts = [
        (Some(facts.name), false),
        (facts.title, false),
        (facts.description, true),
    ];
    for (text, description) in texts {
        let Some(text) = text else { continue };
        for w in words(text) {
            if let Some(s) = signal(&w, description)
                && !seen.contains(&s)
            {
                seen.push(s);
            }
        }
    }
    if !seen.is_empty() {
        if risk == Risk::Low {
            risk = Risk::High;
        }
        why.push(format!(
            "its name or description says it {}",
            seen.join(" / ")
        ));
    }
    Assessment { risk, why }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(
        name: &'a str,
        description: Option<&'a str>,
        annotations: Option<Annotations>,
        trusted: bool,
    ) -> ToolFacts<'a> {
        ToolFacts {
            name,
            title: None,
            description,
            annotations,
            server_trusted: trusted,
        }
    }

    fn read_only() -> Option<Annotations> {
        Some(Annotations {
            read_only_hint: Some(true),
            ..Default::default()
        })
    }

    #[test]
    fn unannotated_tools_are_high() {
        let a = classify(
            &facts("get_weather", Some("Current weather"), None, true),
            None,
        );
        assert_eq!(a.risk, Risk::High);
        assert!(a.why[0].contains("does not describe"), "{:?}", a.why);
    }

    #[test]
    fn read_only_annotation_lowers_only_on_a_trusted_server() {
        let trusted = classify(
            &facts("read_file", Some("Read a file"), read_only(), true),
            None,
        );
        assert_eq!(trusted.risk, Risk::Low);
        let untrusted = classify(
            &facts("read_file", Some("Read a file"), read_only(), false),
            None,
        );
        assert_eq!(
            untrusted.risk,
            Risk::High,
            "an untrusted server cannot lower its own tool's risk"
        );
        assert!(untrusted.why[0].contains("no admin has marked this server trusted"));
    }

    #[test]
    fn annotated_writers_are_high() {
        let a = Some(Annotations {
            read_only_hint: Some(false),
            destructive_hint: Some(false),
            open_world_hint: Some(false),
            ..Default::default()
        });
        let c = classify(&facts("write_note", None, a, true), None);
        assert_eq!(c.risk, Risk::High);
        assert_eq!(c.why, vec!["it changes things".to_string()]);
        // Hints left out take the specification's defaults.
        let partial = Some(Annotations {
            read_only_hint: Some(false),
            ..Default::default()
        });
        let c = classify(&facts("write_note", None, partial, true), None);
        assert_eq!(c.why.len(), 2, "{:?}", c.why);
    }

    #[test]
    fn words_of_deletion_export_payment_or_sending_raise_the_risk() {
        for (name, desc) in [
            ("delete_entities", None),
            ("list", Some("Lists and then deletes old entries")),
            ("exportReport", None),
            ("notify", Some("Sends an email to the team")),
            ("post_message", None),
            ("checkout", Some("Make a payment with the saved card")),
        ] {
            let c = classify(&facts(name, desc, read_only(), true), None);
            assert_eq!(c.risk, Risk::High, "{name} {desc:?}: {:?}", c.why);
            assert!(c.why.iter().any(|w| w.contains("name or description")));
        }
        // Words that merely contain a signal do not count.
        // Nor do loose words in a description.
        let c = classify(
            &facts(
                "read",
                Some("Reads a file from the shared folder; gives detailed error messages"),
                read_only(),
                true,
            ),
            None,
        );
        assert_eq!(c.risk, Risk::Low, "{:?}", c.why);
        for name in ["postal_codes", "sharepoint_listing", "wiretap_status"] {
            let c = classify(
                &facts(name, Some("Reads the list"), read_only(), true),
                None,
            );
            assert_eq!(c.risk, Risk::Low, "{name}: {:?}", c.why);
        }
    }

    #[test]
    fn an_override_decides_and_says_why() {
        let o = Override {
            risk: Risk::Critical,
            reason: "moves money".into(),
            by: "admin".into(),
        };
        let c = classify(&facts("read_balance", None, read_only(), true), Some(&o));
        assert_eq!(c.risk, Risk::Critical);
        assert_eq!(
            c.why,
            vec!["set to critical by admin: moves money".to_string()]
        );
        let low = Override {
            risk: Risk::Low,
            reason: "sandbox only".into(),
            by: "admin".into(),
        };
        let c = classify(&facts("delete_file", None, None, false), Some(&low));
        assert_eq!(c.risk, Risk::Low, "an admin may lower any tool");
    }
}
