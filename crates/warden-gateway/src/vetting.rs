//! What Warden thinks of each tool a server offers: its risk and why, the
//! hash of its definition, and whether that definition is pinned, merely
//! seen, or quarantined. Built from a server's catalog, the admins' risk
//! overrides and trust, and the pins in the store; rebuilt whenever the
//! catalog changes (the check is a pointer comparison per call).

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use warden_policy::{Annotations, Assessment, Override, Risk, ToolFacts};
use warden_store::tools::{PinChange, PinState, Presented};

use crate::upstream::{Catalog, Item};

#[derive(Debug, Clone, Serialize)]
pub struct ToolInfo {
    pub risk: Risk,
    pub why: Vec<String>,
    pub definition_hash: String,
    pub state: PinState,
    /// Why it is quarantined: `changed` or `new`.
    pub quarantine: Option<String>,
}

/// One server's tools as vetted, for one catalog.
pub struct ServerIndex {
    pub catalog: Arc<Catalog>,
    pub tools: HashMap<String, Arc<ToolInfo>>,
}

impl ServerIndex {
    pub fn empty(catalog: Arc<Catalog>) -> ServerIndex {
        ServerIndex {
            catalog,
            tools: HashMap::new(),
        }
    }

    /// Whether a listed tool may be shown and called.
    pub fn usable(&self, tool: &str) -> bool {
        self.tools.get(tool).is_some_and(|t| t.state.usable())
    }
}

/// Sorts object keys all the way down, so the same definition always hashes
/// the same whatever order a server sends its fields in.
fn canonicalize(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonicalize(v)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.into_iter().map(canonicalize).collect()),
        other => other,
    }
}

/// A tool's complete definition as received (everything but `_meta`, which
/// carries transport details), canonical, with its SHA-256.
pub fn definition(item: &Item) -> (String, String, Value) {
    let mut v: Value = serde_json::from_str(item.raw.get()).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.shift_remove("_meta");
    }
    let v = canonicalize(v);
    let text = v.to_string();
    let hash = hex::encode(Sha256::digest(text.as_bytes()));
    (text, hash, v)
}

/// Canonical JSON of any arguments, for binding approvals to "these exact
/// arguments" whatever order the keys come in. Every scalar stays exactly
/// as sent, so numbers keep all their digits.
pub fn canonical_arguments(raw: Option<&str>) -> String {
    let mut out = String::new();
    match raw {
        Some(r) if write_canonical(r, &mut out) => out,
        Some(r) => r.to_string(),
        None => "{}".into(),
    }
}

fn write_canonical(raw: &str, out: &mut String) -> bool {
    let t = raw.trim();
    match t.as_bytes().first() {
        Some(b'{') => {
            let Ok(m) = serde_json::from_str::<
                std::collections::BTreeMap<String, &serde_json::value::RawValue>,
            >(t) else {
                return false;
            };
            out.push('{');
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if !write_canonical(v.get(), out) {
                    return false;
                }
            }
            out.push('}');
            true
        }
        Some(b'[') => {
            let Ok(a) = serde_json::from_str::<Vec<&serde_json::value::RawValue>>(t) else {
                return false;
            };
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if !write_canonical(v.get(), out) {
                    return false;
                }
            }
            out.push(']');
            true
        }
        Some(_) => {
            out.push_str(t);
            true
        }
        None => false,
    }
}

fn facts<'a>(name: &'a str, v: &'a Value, trusted: bool) -> ToolFacts<'a> {
    ToolFacts {
        name,
        title: v
            .get("title")
            .and_then(Value::as_str)
            .or_else(|| v.pointer("/annotations/title").and_then(Value::as_str)),
        description: v.get("description").and_then(Value::as_str),
        annotations: v
            .get("annotations")
            .filter(|a| a.is_object())
            .map(|a| serde_json::from_value::<Annotations>(a.clone()).unwrap_or_default()),
        server_trusted: trusted,
    }
}

/// What one reconciliation produced.
pub struct Built {
    pub index: ServerIndex,
    pub changes: Vec<PinChange>,
    /// Definitions by tool, for the record of a change.
    pub definitions: HashMap<String, String>,
}

/// Vets a server's current catalog against the store: records what it
/// presents (quarantining changed or new tools) and classifies each tool.
pub fn build(
    conn: &rusqlite::Connection,
    server: &str,
    catalog: Arc<Catalog>,
) -> warden_store::Result<Built> {
    let policy = warden_store::tools::server_policy(conn, server)?;
    let overrides: HashMap<String, Override> = warden_store::tools::risk_overrides(conn)?
        .into_iter()
        .filter(|o| o.server == server)
        .filter_map(|o| {
            Some((
                o.tool,
                Override {
                    risk: Risk::parse(&o.risk)?,
                    reason: o.reason,
                    by: o.set_by,
                },
            ))
        })
        .collect();
    let defs: Vec<(String, String, String, Value)> = catalog
        .tools
        .iter()
        .map(|i| {
            let (text, hash, v) = definition(i);
            (i.original.clone(), text, hash, v)
        })
        .collect();
    let presented: Vec<Presented<'_>> = defs
        .iter()
        .map(|(name, text, hash, _)| Presented {
            tool: name,
            hash,
            definition: text,
        })
        .collect();
    // A tool that appears after the first catalog (new, or an old one
    // renamed) waits for an admin on every server, unless the server is
    // set to trust new tools.
    let review_new = !policy.auto_trust_new;
    let changes = warden_store::tools::reconcile(conn, server, &presented, review_new)?;
    let pins: HashMap<String, warden_store::tools::Pin> =
        warden_store::tools::pins(conn, Some(server))?
            .into_iter()
            .map(|p| (p.tool.clone(), p))
            .collect();
    // A name listed twice could show one definition and run another: such
    // tools are never usable.
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (name, ..) in &defs {
        *counts.entry(name.as_str()).or_default() += 1;
    }
    let mut tools = HashMap::with_capacity(defs.len());
    let mut definitions = HashMap::new();
    for (name, text, hash, v) in &defs {
        if counts.get(name.as_str()).copied().unwrap_or(0) > 1 {
            tools.insert(
                name.clone(),
                Arc::new(ToolInfo {
                    risk: Risk::Critical,
                    why: vec!["the server lists two tools with this name".into()],
                    definition_hash: hash.clone(),
                    state: PinState::Quarantined,
                    quarantine: Some("changed".into()),
                }),
            );
            continue;
        }
        let assessment: Assessment =
            warden_policy::classify(&facts(name, v, policy.trusted), overrides.get(name));
        let pin = pins.get(name);
        tools.insert(
            name.clone(),
            Arc::new(ToolInfo {
                risk: assessment.risk,
                why: assessment.why,
                definition_hash: hash.clone(),
                // A definition other than the one recorded is never usable.
                state: pin
                    .filter(|p| p.seen_hash == *hash)
                    .map_or(PinState::Quarantined, |p| p.state),
                quarantine: pin.and_then(|p| p.reason.clone()),
            }),
        );
        definitions.insert(name.clone(), text.clone());
    }
    Ok(Built {
        index: ServerIndex { catalog, tools },
        changes,
        definitions,
    })
}

/// The tools of a server as an admin reviews them: each definition as the
/// server sent it, with Warden's view under `warden` (risk and why, pin
/// state, quarantine reason).
pub fn describe(ix: &ServerIndex) -> Vec<Value> {
    ix.catalog
        .tools
        .iter()
        .filter_map(|t| {
            let mut v: Value = serde_json::from_str(t.raw.get()).ok()?;
            if let (Value::Object(m), Some(info)) = (&mut v, ix.tools.get(&t.original)) {
                m.insert(
                    "warden".into(),
                    serde_json::to_value(&**info).unwrap_or_default(),
                );
            }
            Some(v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_arguments_sort_keys_and_keep_numbers_exact() {
        assert_eq!(
            canonical_arguments(Some(r#"{"b": [ {"y":1,"x":2} ], "a": "\u00e9"}"#)),
            r#"{"a":"\u00e9","b":[{"x":2,"y":1}]}"#
        );
        let a = canonical_arguments(Some(r#"{"amount": 10000000000000000001}"#));
        let b = canonical_arguments(Some(r#"{"amount": 10000000000000000000}"#));
        assert_ne!(a, b, "amounts beyond f64 precision stay apart");
    }
}
