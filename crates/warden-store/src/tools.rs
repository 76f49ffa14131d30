//! What Warden remembers about servers' tools: admins' risk overrides, trust
//! and consent per server, pinned definitions with their quarantine state,
//! and standing approvals of exact arguments.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::{Error, Result, now_us};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskOverride {
    pub server: String,
    pub tool: String,
    pub risk: String,
    pub reason: String,
    pub set_by: String,
    pub set_at_us: i64,
}

pub fn risk_overrides(conn: &Connection) -> Result<Vec<RiskOverride>> {
    let mut st = conn.prepare(
        "SELECT server, tool, risk, reason, set_by, set_at_us FROM tool_risk ORDER BY server, tool",
    )?;
    let rows = st
        .query_map([], |r| {
            Ok(RiskOverride {
                server: r.get(0)?,
                tool: r.get(1)?,
                risk: r.get(2)?,
                reason: r.get(3)?,
                set_by: r.get(4)?,
                set_at_us: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Sets (or with `None` clears) an override; returns the one it replaced.
pub fn set_risk(
    conn: &Connection,
    server: &str,
    tool: &str,
    set: Option<(&str, &str, &str)>,
) -> Result<Option<RiskOverride>> {
    let before = risk_overrides(conn)?
        .into_iter()
        .find(|o| o.server == server && o.tool == tool);
    match set {
        Some((risk, reason, by)) => {
            conn.execute(
                "INSERT INTO tool_risk (server, tool, risk, reason, set_by, set_at_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (server, tool) DO UPDATE SET risk = excluded.risk, reason = excluded.reason,
                   set_by = excluded.set_by, set_at_us = excluded.set_at_us",
                params![server, tool, risk, reason, by, now_us()],
            )?;
        }
        None => {
            if before.is_none() {
                return Err(Error::NotFound(format!(
                    "a risk override for {tool} on {server}"
                )));
            }
            conn.execute(
                "DELETE FROM tool_risk WHERE server = ?1 AND tool = ?2",
                params![server, tool],
            )?;
        }
    }
    Ok(before)
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerPolicy {
    pub server: String,
    pub trusted: bool,
    pub auto_trust_new: bool,
    pub consent_hash: Option<String>,
    pub consented_by: Option<String>,
    pub consented_at_us: Option<i64>,
    pub first_catalog_at_us: Option<i64>,
}

pub fn server_policies(conn: &Connection) -> Result<Vec<ServerPolicy>> {
    let mut st = conn.prepare(
        "SELECT server, trusted, auto_trust_new, consent_hash, consented_by, consented_at_us, first_catalog_at_us
         FROM server_policy ORDER BY server",
    )?;
    let rows = st
        .query_map([], |r| {
            Ok(ServerPolicy {
                server: r.get(0)?,
                trusted: r.get(1)?,
                auto_trust_new: r.get(2)?,
                consent_hash: r.get(3)?,
                consented_by: r.get(4)?,
                consented_at_us: r.get(5)?,
                first_catalog_at_us: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn server_policy(conn: &Connection, server: &str) -> Result<ServerPolicy> {
    Ok(server_policies(conn)?
        .into_iter()
        .find(|p| p.server == server)
        .unwrap_or_else(|| ServerPolicy {
            server: server.to_string(),
            ..Default::default()
        }))
}

fn ensure_policy(conn: &Connection, server: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO server_policy (server) VALUES (?1) ON CONFLICT (server) DO NOTHING",
        [server],
    )?;
    Ok(())
}

/// Sets trust; returns the policy as it was.
pub fn set_trust(
    conn: &Connection,
    server: &str,
    trusted: bool,
    auto_trust_new: bool,
) -> Result<ServerPolicy> {
    let before = server_policy(conn, server)?;
    ensure_policy(conn, server)?;
    conn.execute(
        "UPDATE server_policy SET trusted = ?2, auto_trust_new = ?3 WHERE server = ?1",
        params![server, trusted, auto_trust_new],
    )?;
    Ok(before)
}

/// Records an admin's consent to run a local server's exact command.
pub fn set_consent(conn: &Connection, server: &str, hash: &str, by: &str) -> Result<()> {
    ensure_policy(conn, server)?;
    conn.execute(
        "UPDATE server_policy SET consent_hash = ?2, consented_by = ?3, consented_at_us = ?4 WHERE server = ?1",
        params![server, hash, by, now_us()],
    )?;
    Ok(())
}

/// Forgets what Warden knew about a removed server: trust, consent, pins and
/// overrides. Standing approvals for it go too.
pub fn forget_server(conn: &Connection, server: &str) -> Result<()> {
    let tx = conn.unchecked_transaction()?;
    for table in [
        "server_policy",
        "tool_pins",
        "tool_risk",
        "standing_approvals",
        "server_auth",
        "server_probes",
    ] {
        tx.execute(&format!("DELETE FROM {table} WHERE server = ?1"), [server])?;
    }
    tx.commit()?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum PinState {
    /// Listed by the server, never allowed yet: nothing is pinned.
    Seen,
    /// Allowed at least once with this definition.
    Pinned,
    /// Hidden and refused until an admin reviews it.
    Quarantined,
    /// An admin rejected the definition the server presents.
    Rejected,
}

impl PinState {
    fn parse(s: &str) -> PinState {
        match s {
            "seen" => PinState::Seen,
            "pinned" => PinState::Pinned,
            "rejected" => PinState::Rejected,
            _ => PinState::Quarantined,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PinState::Seen => "seen",
            PinState::Pinned => "pinned",
            PinState::Quarantined => "quarantined",
            PinState::Rejected => "rejected",
        }
    }

    /// Whether calls to the tool may go through at all.
    pub fn usable(self) -> bool {
        matches!(self, PinState::Seen | PinState::Pinned)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Pin {
    pub server: String,
    pub tool: String,
    pub state: PinState,
    /// Why it is quarantined: `changed` or `new`.
    pub reason: Option<String>,
    pub pinned_hash: Option<String>,
    pub pinned_definition: Option<String>,
    pub seen_hash: String,
    pub seen_definition: String,
    pub updated_at_us: i64,
}

const PIN_COLUMNS: &str = "server, tool, state, reason, pinned_hash, pinned_definition, seen_hash, seen_definition, updated_at_us, rejected_hash";

fn pin_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Pin, Option<String>)> {
    let state: String = r.get(2)?;
    Ok((
        Pin {
            server: r.get(0)?,
            tool: r.get(1)?,
            state: PinState::parse(&state),
            reason: r.get(3)?,
            pinned_hash: r.get(4)?,
            pinned_definition: r.get(5)?,
            seen_hash: r.get(6)?,
            seen_definition: r.get(7)?,
            updated_at_us: r.get(8)?,
        },
        r.get(9)?,
    ))
}

pub fn pins(conn: &Connection, server: Option<&str>) -> Result<Vec<Pin>> {
    let mut st = conn.prepare(&format!(
        "SELECT {PIN_COLUMNS} FROM tool_pins WHERE ?1 IS NULL OR server = ?1 ORDER BY server, tool"
    ))?;
    let rows = st
        .query_map([server], pin_row)?
        .map(|r| r.map(|(p, _)| p))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// A tool definition as a server presented it: its name, the hash of the
/// canonical definition, and the canonical definition.
pub struct Presented<'a> {
    pub tool: &'a str,
    pub hash: &'a str,
    pub definition: &'a str,
}

/// What changed in a reconciliation, for the record and for admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinChange {
    pub tool: String,
    /// `quarantined`, `restored` (back to its pinned definition) or `removed`.
    pub change: String,
    pub reason: Option<String>,
}

/// Compares a server's current tool list with what was seen and pinned.
/// The first list a server ever presents is taken as it is; later, a pinned
/// tool with a different definition is quarantined, and so is a new tool
/// when `review_new` is set.
pub fn reconcile(
    conn: &Connection,
    server: &str,
    tools: &[Presented<'_>],
    review_new: bool,
) -> Result<Vec<PinChange>> {
    let tx = conn.unchecked_transaction()?;
    ensure_policy(&tx, server)?;
    let first: Option<i64> = tx.query_row(
        "SELECT first_catalog_at_us FROM server_policy WHERE server = ?1",
        [server],
        |r| r.get(0),
    )?;
    let now = now_us();
    let mut changes = Vec::new();
    for t in tools {
        let existing = tx
            .query_row(
                &format!("SELECT {PIN_COLUMNS} FROM tool_pins WHERE server = ?1 AND tool = ?2"),
                params![server, t.tool],
                pin_row,
            )
            .optional()?;
        match existing {
            None => {
                let quarantine = first.is_some() && review_new;
                tx.execute(
                    "INSERT INTO tool_pins (server, tool, state, reason, seen_hash, seen_definition, updated_at_us)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        server,
                        t.tool,
                        if quarantine { "quarantined" } else { "seen" },
                        quarantine.then_some("new"),
                        t.hash,
                        t.definition,
                        now
                    ],
                )?;
                if quarantine {
                    changes.push(PinChange {
                        tool: t.tool.to_string(),
                        change: "quarantined".into(),
                        reason: Some("new".into()),
                    });
                }
            }
            Some((pin, rejected_hash)) => {
                if pin.seen_hash == t.hash {
                    continue;
                }
                let (state, reason) = match pin.state {
                    // Nothing was trusted yet: the newest definition is what
                    // a first allow will pin.
                    PinState::Seen => (PinState::Seen, None),
                    PinState::Pinned | PinState::Quarantined | PinState::Rejected
                        if pin.pinned_hash.as_deref() == Some(t.hash) =>
                    {
                        (PinState::Pinned, None)
                    }
                    PinState::Rejected if rejected_hash.as_deref() == Some(t.hash) => {
                        (PinState::Rejected, pin.reason.clone())
                    }
                    PinState::Quarantined if pin.reason.as_deref() == Some("new") => {
                        (PinState::Quarantined, Some("new".to_string()))
                    }
                    _ => (PinState::Quarantined, Some("changed".to_string())),
                };
                tx.execute(
                    "UPDATE tool_pins SET state = ?3, reason = ?4, seen_hash = ?5, seen_definition = ?6, updated_at_us = ?7
                     WHERE server = ?1 AND tool = ?2",
                    params![server, t.tool, state.as_str(), reason, t.hash, t.definition, now],
                )?;
                if state != pin.state {
                    changes.push(PinChange {
                        tool: t.tool.to_string(),
                        change: if state == PinState::Pinned {
                            "restored".into()
                        } else {
                            state.as_str().into()
                        },
                        reason,
                    });
                }
            }
        }
    }
    if first.is_none() {
        tx.execute(
            "UPDATE server_policy SET first_catalog_at_us = ?2 WHERE server = ?1",
            params![server, now],
        )?;
    }
    tx.commit()?;
    Ok(changes)
}

/// Pins the definition a tool was first allowed with. Returns whether it
/// was pinned now (false when it already was, or the definition differs).
pub fn pin_first_use(conn: &Connection, server: &str, tool: &str, hash: &str) -> Result<bool> {
    let n = conn.execute(
        "UPDATE tool_pins SET state = 'pinned', pinned_hash = seen_hash, pinned_definition = seen_definition, updated_at_us = ?4
         WHERE server = ?1 AND tool = ?2 AND state = 'seen' AND seen_hash = ?3",
        params![server, tool, hash, now_us()],
    )?;
    Ok(n == 1)
}

/// Pins whatever definition a tool presents now, if nothing is pinned yet
/// (an admin's risk decision is about that definition).
pub fn pin_seen(conn: &Connection, server: &str, tool: &str) -> Result<()> {
    conn.execute(
        "UPDATE tool_pins SET state = 'pinned', pinned_hash = seen_hash, pinned_definition = seen_definition, updated_at_us = ?3
         WHERE server = ?1 AND tool = ?2 AND state = 'seen'",
        params![server, tool, now_us()],
    )?;
    Ok(())
}

/// An admin's review of a quarantined tool: accept pins the definition the
/// server presents now (which must be the one reviewed, `hash`); reject
/// keeps the tool refused until the server presents something else.
pub fn review(
    conn: &Connection,
    server: &str,
    tool: &str,
    hash: &str,
    accept: bool,
) -> Result<Pin> {
    let tx = conn.unchecked_transaction()?;
    let (pin, _) = tx
        .query_row(
            &format!("SELECT {PIN_COLUMNS} FROM tool_pins WHERE server = ?1 AND tool = ?2"),
            params![server, tool],
            pin_row,
        )
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("the tool {tool} on {server}")))?;
    if !matches!(pin.state, PinState::Quarantined | PinState::Rejected) {
        return Err(Error::Exists(format!(
            "{tool} on {server} is not waiting for review (it is {})",
            pin.state.as_str()
        )));
    }
    if pin.seen_hash != hash {
        return Err(Error::Exists(format!(
            "the definition of {tool} on {server} changed again while it was being reviewed; review it again"
        )));
    }
    if accept {
        tx.execute(
            "UPDATE tool_pins SET state = 'pinned', reason = NULL, pinned_hash = seen_hash, pinned_definition = seen_definition,
               rejected_hash = NULL, updated_at_us = ?3 WHERE server = ?1 AND tool = ?2",
            params![server, tool, now_us()],
        )?;
    } else {
        tx.execute(
            "UPDATE tool_pins SET state = 'rejected', rejected_hash = seen_hash, updated_at_us = ?3 WHERE server = ?1 AND tool = ?2",
            params![server, tool, now_us()],
        )?;
    }
    let (after, _) = tx.query_row(
        &format!("SELECT {PIN_COLUMNS} FROM tool_pins WHERE server = ?1 AND tool = ?2"),
        params![server, tool],
        pin_row,
    )?;
    tx.commit()?;
    Ok(after)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct StandingApproval {
    pub id: i64,
    pub agent_id: i64,
    pub agent: String,
    pub owner: Option<String>,
    pub server: String,
    pub tool: String,
    pub arguments_hash: String,
    pub definition_hash: String,
    /// The arguments, secrets redacted.
    pub arguments: Option<String>,
    pub created_by: String,
    pub created_at_us: i64,
}

pub struct NewStanding<'a> {
    pub agent_id: i64,
    pub server: &'a str,
    pub tool: &'a str,
    pub arguments_hash: &'a str,
    pub definition_hash: &'a str,
    pub arguments: Option<&'a str>,
    pub created_by: &'a str,
}

pub fn add_standing(conn: &Connection, s: &NewStanding<'_>) -> Result<i64> {
    conn.execute(
        "INSERT INTO standing_approvals (agent_id, server, tool, arguments_hash, definition_hash, arguments, created_by, created_at_us)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (agent_id, server, tool, arguments_hash, definition_hash) DO UPDATE SET created_by = excluded.created_by",
        params![
            s.agent_id,
            s.server,
            s.tool,
            s.arguments_hash,
            s.definition_hash,
            s.arguments,
            s.created_by,
            now_us()
        ],
    )?;
    Ok(conn.query_row(
        "SELECT id FROM standing_approvals WHERE agent_id = ?1 AND server = ?2 AND tool = ?3 AND arguments_hash = ?4 AND definition_hash = ?5",
        params![s.agent_id, s.server, s.tool, s.arguments_hash, s.definition_hash],
        |r| r.get(0),
    )?)
}

/// Standing approvals, all or those of agents owned by one person.
pub fn standing(conn: &Connection, owner: Option<&str>) -> Result<Vec<StandingApproval>> {
    let mut st = conn.prepare(
        "SELECT s.id, s.agent_id, a.name, u.name, s.server, s.tool, s.arguments_hash, s.definition_hash,
                s.arguments, s.created_by, s.created_at_us
         FROM standing_approvals s JOIN agents a ON a.id = s.agent_id LEFT JOIN users u ON u.id = a.owner_id
         WHERE ?1 IS NULL OR u.name = ?1 ORDER BY s.id",
    )?;
    let rows = st
        .query_map([owner], |r| {
            Ok(StandingApproval {
                id: r.get(0)?,
                agent_id: r.get(1)?,
                agent: r.get(2)?,
                owner: r.get(3)?,
                server: r.get(4)?,
                tool: r.get(5)?,
                arguments_hash: r.get(6)?,
                definition_hash: r.get(7)?,
                arguments: r.get(8)?,
                created_by: r.get(9)?,
                created_at_us: r.get(10)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn remove_standing(conn: &Connection, id: i64) -> Result<()> {
    if conn.execute("DELETE FROM standing_approvals WHERE id = ?1", [id])? == 0 {
        return Err(Error::NotFound(format!("standing approval {id}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().expect("db");
        crate::migrate::apply(&mut c).expect("migrate");
        c
    }

    fn p<'a>(tool: &'a str, hash: &'a str) -> Presented<'a> {
        Presented {
            tool,
            hash,
            definition: "{}",
        }
    }

    fn state(c: &Connection, tool: &str) -> PinState {
        pins(c, Some("s"))
            .expect("pins")
            .into_iter()
            .find(|x| x.tool == tool)
            .expect("pin")
            .state
    }

    #[test]
    fn a_changed_pinned_tool_is_quarantined_until_reviewed() {
        let c = db();
        assert!(
            reconcile(&c, "s", &[p("a", "h1"), p("b", "h1")], true)
                .expect("first")
                .is_empty()
        );
        // Before it is first allowed, a change is simply seen.
        assert!(
            reconcile(&c, "s", &[p("a", "h2"), p("b", "h1")], true)
                .expect("r")
                .is_empty()
        );
        assert!(pin_first_use(&c, "s", "a", "h2").expect("pin"));
        assert!(!pin_first_use(&c, "s", "a", "h2").expect("pin twice"));
        let ch = reconcile(&c, "s", &[p("a", "h3"), p("b", "h1")], true).expect("r");
        assert_eq!(ch.len(), 1);
        assert_eq!(
            (ch[0].change.as_str(), ch[0].reason.as_deref()),
            ("quarantined", Some("changed"))
        );
        assert_eq!(state(&c, "a"), PinState::Quarantined);
        // Reviewing the wrong definition is refused.
        assert!(review(&c, "s", "a", "h2", true).is_err());
        let rejected = review(&c, "s", "a", "h3", false).expect("reject");
        assert_eq!(rejected.state, PinState::Rejected);
        // The same definition again stays rejected; another is reviewed anew.
        reconcile(&c, "s", &[p("a", "h3")], true).expect("r");
        assert_eq!(state(&c, "a"), PinState::Rejected);
        reconcile(&c, "s", &[p("a", "h4")], true).expect("r");
        assert_eq!(state(&c, "a"), PinState::Quarantined);
        let accepted = review(&c, "s", "a", "h4", true).expect("accept");
        assert_eq!(
            (accepted.state, accepted.pinned_hash.as_deref()),
            (PinState::Pinned, Some("h4"))
        );
        // Going back to the pinned definition lifts a quarantine.
        reconcile(&c, "s", &[p("a", "h5")], true).expect("r");
        let ch = reconcile(&c, "s", &[p("a", "h4")], true).expect("r");
        assert_eq!(ch[0].change, "restored");
        assert_eq!(state(&c, "a"), PinState::Pinned);
    }

    #[test]
    fn new_tools_after_the_first_list_are_quarantined_when_asked() {
        let c = db();
        reconcile(&c, "s", &[p("a", "h")], true).expect("first");
        reconcile(&c, "s", &[p("a", "h"), p("n", "h")], true).expect("r");
        assert_eq!(state(&c, "n"), PinState::Quarantined);
        reconcile(&c, "s", &[p("a", "h"), p("m", "h")], false).expect("r");
        assert_eq!(state(&c, "m"), PinState::Seen, "auto-trusted new tool");
        // A new tool that changes while waiting stays a new tool to review.
        reconcile(&c, "s", &[p("n", "h2")], true).expect("r");
        let n = pins(&c, Some("s"))
            .expect("pins")
            .into_iter()
            .find(|x| x.tool == "n")
            .expect("n");
        assert_eq!(
            (n.state, n.reason.as_deref()),
            (PinState::Quarantined, Some("new"))
        );
    }
}
