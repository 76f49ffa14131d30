//! Embedded migrations, applied in name order and never edited once landed.
//!
//! Kept by hand rather than on `rusqlite_migration`: that crate counts
//! applied migrations in `PRAGMA user_version`, while every existing
//! database records them by name in `schema_migrations`; moving would need
//! a one-time translation that is more code than this runner.

use rusqlite::Connection;

use crate::{Error, Result};

const MIGRATIONS: &[(&str, &str)] = &[
    (
        "20261127000000_init",
        include_str!("../migrations/20261127000000_init.sql"),
    ),
    (
        "20261127000100_settings",
        include_str!("../migrations/20261127000100_settings.sql"),
    ),
    (
        "20261127000200_roles",
        include_str!("../migrations/20261127000200_roles.sql"),
    ),
    (
        "20261127000300_people",
        include_str!("../migrations/20261127000300_people.sql"),
    ),
    (
        "20261127000400_agent_lifetimes",
        include_str!("../migrations/20261127000400_agent_lifetimes.sql"),
    ),
    (
        "20261127000500_checkpoints",
        include_str!("../migrations/20261127000500_checkpoints.sql"),
    ),
    (
        "20261127000600_activity_search",
        include_str!("../migrations/20261127000600_activity_search.sql"),
    ),
    (
        "20261127000700_anchors",
        include_str!("../migrations/20261127000700_anchors.sql"),
    ),
    (
        "20261127000800_approvals",
        include_str!("../migrations/20261127000800_approvals.sql"),
    ),
    (
        "20261127000900_server_auth",
        include_str!("../migrations/20261127000900_server_auth.sql"),
    ),
    (
        "20261127001000_sso",
        include_str!("../migrations/20261127001000_sso.sql"),
    ),
    (
        "20261127001100_search_in_batches",
        include_str!("../migrations/20261127001100_search_in_batches.sql"),
    ),
    (
        "20261201000000_enrolments",
        include_str!("../migrations/20261201000000_enrolments.sql"),
    ),
    (
        "20261203000000_sealed_rows",
        include_str!("../migrations/20261203000000_sealed_rows.sql"),
    ),
];

pub(crate) fn apply(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at_us INTEGER NOT NULL)",
    )?;
    let tx = conn.transaction()?;
    for (name, sql) in MIGRATIONS {
        let done: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM schema_migrations WHERE name = ?1)",
            [name],
            |r| r.get(0),
        )?;
        if done {
            continue;
        }
        tx.execute_batch(sql)
            .map_err(|e| Error::Corrupt(format!("migration {name} failed: {e}")))?;
        tx.execute(
            "INSERT INTO schema_migrations (name, applied_at_us) VALUES (?1, ?2)",
            rusqlite::params![name, crate::now_us()],
        )?;
    }
    let known: Vec<String> = {
        let mut stmt = tx.prepare("SELECT name FROM schema_migrations")?;
        stmt.query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    if let Some(unknown) = known
        .iter()
        .find(|n| !MIGRATIONS.iter().any(|(m, _)| m == n))
    {
        return Err(Error::Corrupt(format!(
            "the database was written by a newer Warden (migration {unknown}); upgrade Warden"
        )));
    }
    tx.commit()?;
    Ok(())
}
