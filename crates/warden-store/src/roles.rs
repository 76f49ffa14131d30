//! Roles, their grants, and which agents hold them.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::{Error, Result, now_us};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct GrantRow {
    pub server: String,
    pub pattern: String,
    /// "allow", "ask" or "deny".
    pub effect: String,
    /// An allow that covers high-risk tools too, without asking a person.
    #[serde(default)]
    pub explicit: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct Role {
    pub name: String,
    pub description: String,
    pub grants: Vec<GrantRow>,
}

fn role_id(conn: &Connection, name: &str) -> Result<i64> {
    conn.query_row("SELECT id FROM roles WHERE name = ?1", [name], |r| r.get(0))
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("role {name:?}")))
}

pub fn add(conn: &Connection, name: &str, description: &str) -> Result<()> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM roles WHERE name = ?1)",
        [name],
        |r| r.get(0),
    )?;
    if exists {
        return Err(Error::Exists(format!("a role named {name:?}")));
    }
    conn.execute(
        "INSERT INTO roles (name, description, created_at_us) VALUES (?1, ?2, ?3)",
        params![name, description, now_us()],
    )?;
    Ok(())
}

pub fn remove(conn: &Connection, name: &str) -> Result<()> {
    let id = role_id(conn, name)?;
    conn.execute("DELETE FROM roles WHERE id = ?1", [id])?;
    Ok(())
}

pub fn get(conn: &Connection, name: &str) -> Result<Role> {
    let id = role_id(conn, name)?;
    let description: String =
        conn.query_row("SELECT description FROM roles WHERE id = ?1", [id], |r| {
            r.get(0)
        })?;
    Ok(Role {
        name: name.to_string(),
        description,
        grants: grants_of(conn, id)?,
    })
}

fn grants_of(conn: &Connection, role: i64) -> Result<Vec<GrantRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT server, pattern, effect, explicit FROM grants WHERE role_id = ?1 ORDER BY server, pattern",
    )?;
    let rows = stmt
        .query_map([role], |r| {
            Ok(GrantRow {
                server: r.get(0)?,
                pattern: r.get(1)?,
                effect: r.get(2)?,
                explicit: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn list(conn: &Connection) -> Result<Vec<Role>> {
    let names: Vec<String> = {
        let mut stmt = conn.prepare("SELECT name FROM roles ORDER BY name")?;
        stmt.query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    names.iter().map(|n| get(conn, n)).collect()
}

/// Sets a grant (replacing the effect of the same server and pattern).
/// Returns the effect it had before, if any.
pub fn grant(conn: &Connection, role: &str, g: &GrantRow) -> Result<Option<String>> {
    let id = role_id(conn, role)?;
    let before: Option<String> = conn
        .query_row(
            "SELECT effect FROM grants WHERE role_id = ?1 AND server = ?2 AND pattern = ?3",
            params![id, g.server, g.pattern],
            |r| r.get(0),
        )
        .optional()?;
    conn.execute(
        "INSERT INTO grants (role_id, server, pattern, effect, explicit) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (role_id, server, pattern) DO UPDATE SET effect = excluded.effect, explicit = excluded.explicit",
        params![id, g.server, g.pattern, g.effect, g.explicit],
    )?;
    Ok(before)
}

/// Removes a grant; returns the effect it had.
pub fn revoke_grant(conn: &Connection, role: &str, server: &str, pattern: &str) -> Result<String> {
    let id = role_id(conn, role)?;
    let before: Option<String> = conn
        .query_row(
            "SELECT effect FROM grants WHERE role_id = ?1 AND server = ?2 AND pattern = ?3",
            params![id, server, pattern],
            |r| r.get(0),
        )
        .optional()?;
    let before = before.ok_or_else(|| {
        Error::NotFound(format!("a grant of {server} {pattern} in role {role:?}"))
    })?;
    conn.execute(
        "DELETE FROM grants WHERE role_id = ?1 AND server = ?2 AND pattern = ?3",
        params![id, server, pattern],
    )?;
    Ok(before)
}

pub fn assign(conn: &Connection, agent_id: i64, role: &str) -> Result<()> {
    let id = role_id(conn, role)?;
    conn.execute(
        "INSERT OR IGNORE INTO agent_roles (agent_id, role_id) VALUES (?1, ?2)",
        params![agent_id, id],
    )?;
    Ok(())
}

pub fn roles_of_agent(conn: &Connection, agent_id: i64) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.name FROM roles r JOIN agent_roles ar ON ar.role_id = r.id WHERE ar.agent_id = ?1 ORDER BY r.name",
    )?;
    let rows = stmt
        .query_map([agent_id], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(rows)
}

/// Every grant an agent holds through its roles.
pub fn grants_of_agent(conn: &Connection, agent_id: i64) -> Result<Vec<GrantRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT g.server, g.pattern, g.effect, g.explicit FROM grants g
         JOIN agent_roles ar ON ar.role_id = g.role_id WHERE ar.agent_id = ?1",
    )?;
    let rows = stmt
        .query_map([agent_id], |r| {
            Ok(GrantRow {
                server: r.get(0)?,
                pattern: r.get(1)?,
                effect: r.get(2)?,
                explicit: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Lets a person give `role` to the agents they create.
pub fn allow_for_person(conn: &Connection, user_id: i64, role: &str) -> Result<()> {
    let id = role_id(conn, role)?;
    conn.execute(
        "INSERT OR IGNORE INTO user_agent_roles (user_id, role_id) VALUES (?1, ?2)",
        params![user_id, id],
    )?;
    Ok(())
}

/// What `apply_from_groups` changed: the person's role and their agents'
/// allowed roles before, and each (agent, role) taken away.
pub type GroupChange = (String, Vec<String>, Vec<(String, String)>);

/// A person's roles as their groups at the identity provider give them,
/// applied at once: their own role, the roles their agents may have, and
/// (unless they are an admin, who may give agents any role) the roles their
/// existing agents hold, trimmed to those. Returns the role and the agent
/// roles before, and the (agent, role) pairs removed.
pub fn apply_from_groups(
    conn: &mut Connection,
    user_id: i64,
    role: &str,
    agent_roles: &[String],
) -> Result<GroupChange> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let before = crate::users::by_id(&tx, user_id)?
        .map(|u| u.role)
        .unwrap_or_default();
    let mut before_agents = allowed_for_person(&tx, user_id)?;
    before_agents.sort();
    let lost = if role == "admin" {
        Vec::new()
    } else {
        keep_only_for_owned(&tx, user_id, agent_roles)?
    };
    crate::users::set_role(&tx, user_id, role)?;
    tx.execute("DELETE FROM user_agent_roles WHERE user_id = ?1", [user_id])?;
    for r in agent_roles {
        if let Ok(id) = role_id(&tx, r) {
            tx.execute(
                "INSERT OR IGNORE INTO user_agent_roles (user_id, role_id) VALUES (?1, ?2)",
                params![user_id, id],
            )?;
        }
    }
    tx.commit()?;
    Ok((before, before_agents, lost))
}

/// Takes from every agent `owner_id` owns each role not in `keep`. Returns
/// the (agent, role) pairs removed.
fn keep_only_for_owned(
    conn: &Connection,
    owner_id: i64,
    keep: &[String],
) -> Result<Vec<(String, String)>> {
    let held = {
        let mut find = conn.prepare_cached(
            "SELECT a.name, r.name, ar.agent_id, ar.role_id FROM agent_roles ar
             JOIN agents a ON a.id = ar.agent_id JOIN roles r ON r.id = ar.role_id
             WHERE a.owner_id = ?1 ORDER BY a.name, r.name",
        )?;
        find.query_map([owner_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?
    };
    let mut removed = Vec::new();
    for (agent, role, agent_id, role_id) in held {
        if keep.contains(&role) {
            continue;
        }
        conn.execute(
            "DELETE FROM agent_roles WHERE agent_id = ?1 AND role_id = ?2",
            params![agent_id, role_id],
        )?;
        removed.push((agent, role));
    }
    Ok(removed)
}

pub fn allowed_for_person(conn: &Connection, user_id: i64) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.name FROM roles r JOIN user_agent_roles u ON u.role_id = r.id WHERE u.user_id = ?1",
    )?;
    let rows = stmt
        .query_map([user_id], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_replace_and_revoke() {
        let mut c = Connection::open_in_memory().expect("db");
        crate::migrate::apply(&mut c).expect("migrate");
        add(&c, "reader", "reads files").expect("add role");
        assert!(matches!(add(&c, "reader", ""), Err(Error::Exists(_))));
        let g = GrantRow {
            server: "fs".into(),
            pattern: "read_*".into(),
            effect: "allow".into(),
            explicit: false,
        };
        assert_eq!(grant(&c, "reader", &g).expect("grant"), None);
        let g2 = GrantRow {
            effect: "deny".into(),
            ..g.clone()
        };
        assert_eq!(
            grant(&c, "reader", &g2).expect("regrant"),
            Some("allow".into())
        );
        assert_eq!(get(&c, "reader").expect("get").grants, vec![g2]);
        let agent = crate::agent::insert(&c, "bot", "h", 1).expect("agent");
        assign(&c, agent.id, "reader").expect("assign");
        assert_eq!(grants_of_agent(&c, agent.id).expect("grants").len(), 1);
        assert_eq!(
            revoke_grant(&c, "reader", "fs", "read_*").expect("revoke"),
            "deny"
        );
        assert!(grants_of_agent(&c, agent.id).expect("grants").is_empty());
        assert!(matches!(grant(&c, "nobody", &g), Err(Error::NotFound(_))));
    }

    #[test]
    fn roles_leave_only_the_owners_agents() {
        let mut c = Connection::open_in_memory().expect("db");
        crate::migrate::apply(&mut c).expect("migrate");
        let vault = std::sync::Arc::new(crate::vault::Vault::default());
        vault.open(&[1; crate::vault::KEY_LEN]).expect("open");
        crate::vault::register(&c, &vault).expect("functions");
        for r in ["dev", "ops", "prod"] {
            add(&c, r, "").expect("role");
        }
        let ben = crate::users::insert(&c, "ben", "member", "x").expect("ben");
        let ana = crate::users::insert(&c, "ana", "member", "x").expect("ana");
        allow_for_person(&c, ben.id, "dev").expect("allowed");
        allow_for_person(&c, ben.id, "ops").expect("allowed");
        let mut agents = Vec::new();
        for (name, owner, roles) in [
            ("ben-a", ben.id, &["dev", "ops"][..]),
            // Given while ben was an admin: never on his allowed list.
            ("ben-b", ben.id, &["dev", "prod"][..]),
            ("ana-a", ana.id, &["dev", "ops"][..]),
        ] {
            let a = crate::agent::insert(&c, name, name, 1).expect("agent");
            crate::agent::set_owner(&c, a.id, Some(owner)).expect("owner");
            for r in roles {
                assign(&c, a.id, r).expect("assign");
            }
            agents.push(a);
        }
        let (before, before_agents, lost) =
            apply_from_groups(&mut c, ben.id, "member", &["ops".into()]).expect("apply");
        assert_eq!(before, "member");
        assert_eq!(before_agents, ["dev", "ops"]);
        let pair = |a: &str, r: &str| (a.to_string(), r.to_string());
        assert_eq!(
            lost,
            vec![
                pair("ben-a", "dev"),
                pair("ben-b", "dev"),
                pair("ben-b", "prod")
            ]
        );
        assert_eq!(roles_of_agent(&c, agents[0].id).expect("roles"), ["ops"]);
        assert!(roles_of_agent(&c, agents[1].id).expect("roles").is_empty());
        assert_eq!(
            roles_of_agent(&c, agents[2].id).expect("roles"),
            ["dev", "ops"]
        );
        assert_eq!(allowed_for_person(&c, ben.id).expect("allowed"), ["ops"]);
        // Applying the same again changes nothing; an admin's agents keep theirs.
        let (_, _, lost) =
            apply_from_groups(&mut c, ben.id, "member", &["ops".into()]).expect("again");
        assert!(lost.is_empty());
        let (_, _, lost) = apply_from_groups(&mut c, ana.id, "admin", &[]).expect("admin");
        assert!(lost.is_empty());
        assert_eq!(
            crate::users::by_id(&c, ana.id)
                .expect("ana")
                .expect("ana")
                .role,
            "admin"
        );
    }
}
