//! Sealed rows: the rows that say who is a person (people, their sessions,
//! recovery codes and enrolments) carry an HMAC-SHA256 under the vault key,
//! so that a process of the same OS user that writes the database file
//! cannot make a row Warden takes for its own.
//!
//! The vault key is 32 random bytes made at `warden init`. The files keep it
//! only sealed: under each person's password (`users.vault`) and under each
//! waiting enrolment code (`enrolments.vault`), with `warden-auth`'s
//! `seal.rs`. A process holds it in memory once a person unlocked it with
//! their password ([`Vault::open`]); until then nothing here can make or
//! check a seal, and what needs one answers [`crate::Error::Locked`].
//!
//! The seal is computed in SQL by `warden_row_mac(table, columns…)`, a
//! function registered on Warden's own connections only, flagged
//! `SQLITE_DIRECTONLY`: SQLite refuses it inside any trigger or view stored
//! in the file, so an object a same-user process plants in the database
//! cannot seal a row while Warden's connection runs it. Every write of a
//! sealed table runs in [`write`]: an IMMEDIATE transaction (no other
//! writer, schema included, until it ends) that first refuses to go on if
//! any trigger sits on a sealed table (Warden makes none, and one that
//! rewrote a row after Warden's statement would have the row sealed as the
//! trigger left it), and then reseals exactly the rows it wrote.
//!
//! The HMAC is RustCrypto's `hmac` + `sha2`; the input is each column's
//! SQLite type and value, length-prefixed, after the table's name, so no two
//! rows of different content or tables encode alike.

use std::sync::{Arc, RwLock};

use hmac::{Hmac, Mac};
use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use sha2::Sha256;

use crate::{Error, Result};

/// Bytes in the vault key.
pub const KEY_LEN: usize = 32;

/// A sealed table and the columns its seal covers (all but `seal` and the
/// counters in [`UNSEALED`]).
pub(crate) struct Sealed {
    pub table: &'static str,
    pub columns: &'static [&'static str],
}

pub(crate) const USERS: Sealed = Sealed {
    table: "users",
    columns: &[
        "id",
        "name",
        "role",
        "status",
        "password_hash",
        "totp_enrolled",
        "created_at_us",
        "sso_subject",
        "sso_suspended",
        "vault",
    ],
};
pub(crate) const SESSIONS: Sealed = Sealed {
    table: "sessions",
    columns: &[
        "token_hash",
        "user_id",
        "created_s",
        "expires_s",
        "mfa_at_s",
        "sso_next_refresh_s",
    ],
};
pub(crate) const RECOVERY_CODES: Sealed = Sealed {
    table: "recovery_codes",
    columns: &["user_id", "code_hash", "used_at_us"],
};
pub(crate) const ENROLMENTS: Sealed = Sealed {
    table: "enrolments",
    columns: &["user_id", "code_hash", "expires_s", "vault"],
};

const TABLES: [&Sealed; 4] = [&USERS, &SESSIONS, &RECOVERY_CODES, &ENROLMENTS];

/// Columns the seal leaves out on purpose: what Warden writes before anyone
/// unlocked it (counting a failed attempt, the last code step used, when a
/// session was last seen). Resetting the counters gains a same-user process
/// nothing a running Warden does not also count in memory; setting
/// `last_seen_s` keeps a session it holds the token of from going idle
/// (its absolute end is sealed), and `last_login_us` is only shown (README).
#[cfg(test)]
const UNSEALED: &[(&str, &[&str])] = &[
    (
        "users",
        &[
            "totp_last_step",
            "failed_attempts",
            "locked_until_s",
            "last_login_us",
        ],
    ),
    ("sessions", &["last_seen_s"]),
];

/// The key, while a person has unlocked this process.
#[derive(Default)]
pub struct Vault {
    key: RwLock<Option<Box<[u8; KEY_LEN]>>>,
}

/// Another key is held already (what unlocked it is not what this
/// person's record opens to: one of them was changed outside Warden).
#[derive(Debug, PartialEq, Eq)]
pub struct OtherKey;

/// What [`Vault::open`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    /// The key is now held.
    Now,
    /// This very key was held already.
    Already,
}

impl Vault {
    pub fn is_open(&self) -> bool {
        self.read().is_some()
    }

    /// Holds `key`; `Err` when another key is held already.
    pub fn open(&self, key: &[u8; KEY_LEN]) -> std::result::Result<Opened, OtherKey> {
        let mut held = self.key.write().unwrap_or_else(|e| e.into_inner());
        match held.as_deref() {
            Some(k) if subtle_eq(k, key) => Ok(Opened::Already),
            Some(_) => Err(OtherKey),
            None => {
                *held = Some(Box::new(*key));
                Ok(Opened::Now)
            }
        }
    }

    /// Forgets the key (an unlock whose records did not check out).
    pub fn close(&self) {
        let mut held = self.key.write().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = held.as_deref_mut() {
            k.fill(0);
        }
        *held = None;
    }

    /// A copy of the key, to seal it under a new password or code.
    pub fn key(&self) -> Option<[u8; KEY_LEN]> {
        self.read().as_deref().copied()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Option<Box<[u8; KEY_LEN]>>> {
        self.key.read().unwrap_or_else(|e| e.into_inner())
    }

    fn mac(&self, values: &[ValueRef<'_>]) -> Option<Vec<u8>> {
        let held = self.read();
        let key = held.as_deref()?;
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).ok()?;
        m.update(b"warden sealed row 1\0");
        for v in values {
            let (tag, bytes): (u8, std::borrow::Cow<'_, [u8]>) = match v {
                ValueRef::Null => (0, (&[][..]).into()),
                ValueRef::Integer(i) => (1, i.to_be_bytes().to_vec().into()),
                ValueRef::Real(f) => (2, f.to_be_bytes().to_vec().into()),
                ValueRef::Text(t) => (3, (*t).into()),
                ValueRef::Blob(b) => (4, (*b).into()),
            };
            m.update(&[tag]);
            m.update(&(bytes.len() as u64).to_be_bytes());
            m.update(&bytes);
        }
        Some(m.finalize().into_bytes().to_vec())
    }
}

impl Drop for Vault {
    fn drop(&mut self) {
        self.close();
    }
}

fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The message every refusal for want of the key carries.
pub const LOCKED: &str = "Warden is locked";

/// Registers `warden_vault_open()` and `warden_row_mac(…)` on one of
/// Warden's connections.
pub(crate) fn register(conn: &Connection, vault: &Arc<Vault>) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DIRECTONLY;
    let v = vault.clone();
    conn.create_scalar_function("warden_vault_open", 0, flags, move |_| Ok(v.is_open()))?;
    let v = vault.clone();
    conn.create_scalar_function("warden_row_mac", -1, flags, move |ctx| {
        let values: Vec<ValueRef<'_>> = (0..ctx.len()).map(|i| ctx.get_raw(i)).collect();
        v.mac(&values)
            .ok_or_else(|| rusqlite::Error::UserFunctionError(LOCKED.into()))
    })?;
    Ok(())
}

/// `warden_row_mac('table', table.col…)`: the seal of a row as it stands.
fn mac_expr(t: &Sealed) -> String {
    let cols: Vec<String> = t
        .columns
        .iter()
        .map(|c| format!("{}.{c}", t.table))
        .collect();
    format!("warden_row_mac('{}', {})", t.table, cols.join(", "))
}

/// A column expression that is 1 for a row whose seal checks, 0 for one
/// whose seal does not, and NULL while the vault is locked.
pub(crate) fn check_expr(t: &Sealed) -> String {
    format!(
        "(CASE WHEN warden_vault_open() THEN ({}.seal IS {}) END)",
        t.table,
        mac_expr(t)
    )
}

/// What a read of a sealed row found: `Ok` for a row that checks.
pub(crate) fn checked(t: &Sealed, check: Option<bool>, what: &str) -> Result<()> {
    match check {
        Some(true) => Ok(()),
        Some(false) => Err(Error::Forged(format!(
            "{what} (table {}) was changed outside Warden",
            t.table
        ))),
        None => Err(Error::Locked),
    }
}

/// Seals the rows of `t` that `filter` (an SQL condition on the table, with
/// `params`) picks, as they stand now. Only inside [`write`].
pub(crate) fn reseal(
    conn: &Connection,
    t: &Sealed,
    filter: &str,
    params: impl rusqlite::Params,
) -> Result<()> {
    conn.execute(
        &format!(
            "UPDATE {} SET seal = {} WHERE {filter}",
            t.table,
            mac_expr(t)
        ),
        params,
    )
    .map_err(locked_or)?;
    Ok(())
}

/// Runs `f`, which writes sealed tables, in an IMMEDIATE transaction (or
/// in the caller's, which [`crate::Store::connect`] makes IMMEDIATE too)
/// after checking that the vault is open and that no trigger sits on a
/// sealed table.
pub(crate) fn write<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    let own = conn.is_autocommit();
    if own {
        conn.execute_batch("BEGIN IMMEDIATE")?;
    }
    let done = guard(conn).and_then(|()| f(conn));
    if own {
        match &done {
            Ok(_) => conn.execute_batch("COMMIT")?,
            Err(_) => {
                let _ = conn.execute_batch("ROLLBACK");
            }
        }
    }
    done
}

fn guard(conn: &Connection) -> Result<()> {
    let open: bool = conn
        .query_row("SELECT warden_vault_open()", [], |r| r.get(0))
        .map_err(locked_or)?;
    if !open {
        return Err(Error::Locked);
    }
    // Warden's own triggers all sit on the activity log, which no sealed
    // write touches. Any other (whatever the case of its table's name, as
    // SQLite keeps it as written) could rewrite a row inside this write.
    let planted: Option<String> = rusqlite::OptionalExtension::optional(conn.query_row(
        "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND lower(tbl_name) != 'activity' LIMIT 1",
        [],
        |r| r.get(0),
    ))?;
    if let Some(name) = planted {
        return Err(Error::Forged(format!(
            "the database has a trigger Warden did not make ({name:?})"
        )));
    }
    Ok(())
}

/// Refuses to go on unless every row of `t` that `filter` picks checks: a
/// write that reseals a row must start from a row Warden sealed, or it
/// would seal what a same-user process put there. Only inside [`write`],
/// whose IMMEDIATE transaction keeps the row as checked until it ends.
pub(crate) fn must_check(
    conn: &Connection,
    t: &Sealed,
    filter: &str,
    params: impl rusqlite::Params,
) -> Result<()> {
    let bad: i64 = conn
        .query_row(
            &format!(
                "SELECT count(*) FROM {} WHERE ({filter}) AND {} IS NOT 1",
                t.table,
                check_expr(t)
            ),
            params,
            |r| r.get(0),
        )
        .map_err(locked_or)?;
    if bad > 0 {
        return Err(Error::Forged(format!(
            "a row of table {} was changed outside Warden",
            t.table
        )));
    }
    Ok(())
}

fn locked_or(e: rusqlite::Error) -> Error {
    if e.to_string().contains(LOCKED) {
        Error::Locked
    } else {
        Error::Sqlite(e)
    }
}

/// Every row of the sealed tables whose seal does not check: (table, a
/// description). Empty while nothing was changed outside Warden. Needs the
/// vault open.
pub fn breaches(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for t in TABLES {
        let key = match t.table {
            "users" => "'person ' || users.name",
            "sessions" => "'a session of person #' || sessions.user_id",
            "recovery_codes" => "'a recovery code of person #' || recovery_codes.user_id",
            _ => "'the enrolment of person #' || enrolments.user_id",
        };
        let mut st = conn.prepare(&format!("SELECT {key}, {} FROM {}", check_expr(t), t.table))?;
        let rows = st.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<bool>>(1)?))
        })?;
        for row in rows {
            let (what, ok) = row.map_err(locked_or)?;
            match ok {
                Some(true) => {}
                Some(false) => out.push((t.table.to_string(), what)),
                None => return Err(Error::Locked),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_of_a_sealed_table_is_sealed_or_named_as_left_out() {
        let dir = tempfile::tempdir().expect("ok");
        let store = crate::Store::open(&dir.path().join("w.db")).expect("ok");
        let conn = store.connect().expect("ok");
        for t in TABLES {
            let mut st = conn
                .prepare(&format!(
                    "SELECT name FROM pragma_table_info('{}')",
                    t.table
                ))
                .expect("ok");
            let cols: Vec<String> = st
                .query_map([], |r| r.get(0))
                .expect("ok")
                .collect::<rusqlite::Result<_>>()
                .expect("ok");
            let left: &[&str] = UNSEALED
                .iter()
                .find(|(n, _)| *n == t.table)
                .map(|(_, c)| *c)
                .unwrap_or(&[]);
            for c in cols {
                assert!(
                    c == "seal" || t.columns.contains(&c.as_str()) || left.contains(&c.as_str()),
                    "{}.{c} is neither sealed nor named as left out",
                    t.table
                );
            }
        }
    }

    #[test]
    fn a_planted_trigger_cannot_seal_and_a_forged_row_is_found() {
        let dir = tempfile::tempdir().expect("ok");
        let store = crate::Store::open(&dir.path().join("w.db")).expect("ok");
        store.vault().open(&[7u8; KEY_LEN]).expect("ok");
        let conn = store.connect().expect("ok");
        crate::users::insert(&conn, "ada", "admin", "hash").expect("ok");
        assert!(breaches(&conn).expect("ok").is_empty());

        // A row written without the key is found.
        conn.execute("UPDATE users SET role = 'member' WHERE name = 'ada'", [])
            .expect("ok");
        assert_eq!(breaches(&conn).expect("ok").len(), 1);

        // A trigger stored in the file may not call the sealing function…
        let planted = conn.execute_batch(
            "CREATE TRIGGER t AFTER INSERT ON agents BEGIN
               UPDATE users SET seal = warden_row_mac('users', users.id) ; END;
             INSERT INTO agents (name, credential_hash, created_at_us) VALUES ('x', 'h', 1);",
        );
        assert!(planted.is_err(), "{planted:?}");
        conn.execute_batch("DROP TRIGGER IF EXISTS t").expect("ok");
        // …and a trigger on a sealed table stops Warden's writes.
        conn.execute_batch("CREATE TRIGGER u AFTER UPDATE ON users BEGIN SELECT 1; END;")
            .expect("ok");
        let err = crate::users::set_role(&conn, 1, "admin").expect_err("refused");
        assert!(matches!(err, Error::Forged(_)), "{err}");

        // Locked, nothing is sealed or checked.
        conn.execute_batch("DROP TRIGGER u").expect("ok");
        store.vault().close();
        assert!(matches!(breaches(&conn), Err(Error::Locked)));
        assert!(matches!(
            crate::users::set_role(&conn, 1, "admin"),
            Err(Error::Locked)
        ));
    }
}
