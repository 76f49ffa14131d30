//! Agents: the identities MCP clients present to the gateway.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Active,
    Revoked,
    /// Its owner was disabled or removed; back to active when re-enabled.
    Suspended,
}

impl AgentStatus {
    fn parse(s: &str) -> Result<Self> {
        match s {
            "active" => Ok(Self::Active),
            "revoked" => Ok(Self::Revoked),
            "suspended" => Ok(Self::Suspended),
            other => Err(Error::Corrupt(format!("unknown agent status {other:?}"))),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct Agent {
    pub id: i64,
    pub name: String,
    pub status: AgentStatus,
    pub created_at_us: i64,
    pub last_used_at_us: Option<i64>,
    /// When its credential stops working (none for agents made before expiry existed).
    pub expires_at_us: Option<i64>,
    pub rotated_at_us: Option<i64>,
    pub owner_id: Option<i64>,
    /// Filled in where a view needs them (the agent list): the roles it
    /// holds and its owner's name.
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub owner: Option<String>,
}

/// What the gateway needs to authenticate a request: the credential hash and
/// the agent it belongs to.
#[derive(Debug, Clone)]
pub struct AgentKey {
    pub credential_hash: String,
    pub agent: Agent,
    /// The credential it had before its last rotation, while the overlap lasts.
    pub previous: Option<(String, i64)>,
}

const COLUMNS: &str =
    "id, name, status, created_at_us, last_used_at_us, expires_at_us, rotated_at_us, owner_id";

fn row_to_agent(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Agent, String)> {
    let status: String = r.get(2)?;
    Ok((
        Agent {
            id: r.get(0)?,
            name: r.get(1)?,
            status: AgentStatus::Active,
            created_at_us: r.get(3)?,
            last_used_at_us: r.get(4)?,
            expires_at_us: r.get(5)?,
            rotated_at_us: r.get(6)?,
            owner_id: r.get(7)?,
            roles: Vec::new(),
            owner: None,
        },
        status,
    ))
}

fn finish((mut agent, status): (Agent, String)) -> Result<Agent> {
    agent.status = AgentStatus::parse(&status)?;
    Ok(agent)
}

/// Adds an agent created at `created_at_us` (the caller's clock).
pub fn insert(
    conn: &Connection,
    name: &str,
    credential_hash: &str,
    created_at_us: i64,
) -> Result<Agent> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM agents WHERE name = ?1)",
        [name],
        |r| r.get(0),
    )?;
    if exists {
        return Err(Error::Exists(format!("an agent named {name:?}")));
    }
    conn.execute(
        "INSERT INTO agents (name, credential_hash, created_at_us) VALUES (?1, ?2, ?3)",
        params![name, credential_hash, created_at_us],
    )?;
    get(conn, name)?.ok_or_else(|| Error::NotFound(format!("agent {name:?}")))
}

pub fn get(conn: &Connection, name: &str) -> Result<Option<Agent>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM agents WHERE name = ?1"),
        [name],
        row_to_agent,
    )
    .optional()?
    .map(finish)
    .transpose()
}

pub fn list(conn: &Connection) -> Result<Vec<Agent>> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM agents ORDER BY name"))?;
    let rows = stmt
        .query_map([], row_to_agent)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(finish).collect()
}

/// All agents, or only those `owner` owns.
pub fn list_owned_by(conn: &Connection, owner: Option<i64>) -> Result<Vec<Agent>> {
    let Some(owner) = owner else {
        return list(conn);
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM agents WHERE owner_id = ?1 ORDER BY name"
    ))?;
    let rows = stmt
        .query_map([owner], row_to_agent)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(finish).collect()
}

/// Every active agent with its credential hash, for the gateway's in-memory
/// authentication table.
pub fn active_keys(conn: &Connection) -> Result<Vec<AgentKey>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS}, credential_hash, previous_hash, previous_expires_at_us FROM agents WHERE status = 'active'"
    ))?;
    type Row = ((Agent, String), String, Option<String>, Option<i64>);
    let rows = stmt
        .query_map([], |r| -> rusqlite::Result<Row> {
            Ok((row_to_agent(r)?, r.get(8)?, r.get(9)?, r.get(10)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(a, h, prev, prev_exp)| {
            Ok(AgentKey {
                credential_hash: h,
                agent: finish(a)?,
                previous: prev.zip(prev_exp),
            })
        })
        .collect()
}

pub fn set_status(conn: &Connection, name: &str, status: AgentStatus) -> Result<()> {
    let s = match status {
        AgentStatus::Active => "active",
        AgentStatus::Revoked => "revoked",
        AgentStatus::Suspended => "suspended",
    };
    let n = conn.execute(
        "UPDATE agents SET status = ?1 WHERE name = ?2",
        params![s, name],
    )?;
    if n == 0 {
        return Err(Error::NotFound(format!("agent {name:?}")));
    }
    Ok(())
}

pub fn set_expiry(conn: &Connection, agent_id: i64, expires_at_us: i64) -> Result<()> {
    conn.execute(
        "UPDATE agents SET expires_at_us = ?1 WHERE id = ?2",
        params![expires_at_us, agent_id],
    )?;
    Ok(())
}

/// Replaces an agent's credential. The old one keeps working until
/// `overlap_until_us` (never past its own expiry), so a client can switch.
pub fn rotate(
    conn: &Connection,
    name: &str,
    new_hash: &str,
    now_us: i64,
    overlap_until_us: i64,
    expires_at_us: i64,
) -> Result<()> {
    let n = conn.execute(
        "UPDATE agents SET previous_hash = credential_hash,
             previous_expires_at_us = min(?1, coalesce(expires_at_us, ?1)),
             credential_hash = ?2, expires_at_us = ?3, rotated_at_us = ?4
         WHERE name = ?5 AND status = 'active'",
        params![overlap_until_us, new_hash, expires_at_us, now_us, name],
    )?;
    if n == 0 {
        return Err(Error::NotFound(format!("an active agent named {name:?}")));
    }
    Ok(())
}

/// Suspends (or, with `active`, restores) every agent a person owns.
pub fn suspend_owned(conn: &Connection, owner_id: i64, active: bool) -> Result<usize> {
    let (from, to) = if active {
        ("suspended", "active")
    } else {
        ("active", "suspended")
    };
    Ok(conn.execute(
        "UPDATE agents SET status = ?1 WHERE owner_id = ?2 AND status = ?3",
        params![to, owner_id, from],
    )?)
}

pub fn set_owner(conn: &Connection, agent_id: i64, owner_id: Option<i64>) -> Result<()> {
    conn.execute(
        "UPDATE agents SET owner_id = ?1 WHERE id = ?2",
        params![owner_id, agent_id],
    )?;
    Ok(())
}

/// The owner's name of each agent, by agent id.
pub fn owners(conn: &Connection) -> Result<std::collections::HashMap<i64, String>> {
    let mut stmt =
        conn.prepare("SELECT a.id, u.name FROM agents a JOIN users u ON u.id = a.owner_id")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

pub fn touch(conn: &Connection, agent_id: i64, at_us: i64) -> Result<()> {
    conn.execute(
        "UPDATE agents SET last_used_at_us = ?1 WHERE id = ?2",
        params![at_us, agent_id],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().expect("in-memory db");
        crate::migrate::apply(&mut c).expect("migrations apply");
        c
    }

    #[test]
    fn agent_names_are_unique_and_revocation_hides_the_key() {
        let c = db();
        insert(&c, "claude", "h1", 1).expect("first insert");
        let dup = insert(&c, "claude", "h2", 1);
        assert!(
            matches!(dup, Err(Error::Exists(_))),
            "a second agent with the same name must be refused"
        );
        assert_eq!(active_keys(&c).expect("keys").len(), 1);
        set_status(&c, "claude", AgentStatus::Revoked).expect("revoke");
        assert!(
            active_keys(&c).expect("keys").is_empty(),
            "a revoked agent must not authenticate"
        );
        assert!(matches!(
            set_status(&c, "nobody", AgentStatus::Revoked),
            Err(Error::NotFound(_))
        ));
    }
}
