//! People with local accounts, their recovery codes and their sessions.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::vault::{self, ENROLMENTS, RECOVERY_CODES, SESSIONS, USERS};
use crate::{Error, Result, now_us};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct User {
    pub id: i64,
    pub name: String,
    /// "admin" or "member".
    pub role: String,
    /// "active" or "disabled".
    pub status: String,
    pub totp_enrolled: bool,
    pub created_at_us: i64,
    pub last_login_us: Option<i64>,
    /// Added by an admin and not enrolled yet: they have an enrolment code
    /// to choose a password and set up their authenticator with.
    pub invited: bool,
}

/// What sign-in needs beyond the public record.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
    pub totp_last_step: Option<i64>,
    pub failed_attempts: i64,
    pub locked_until_s: Option<i64>,
    /// The vault key sealed under the person's password (none before they
    /// enrolled, or for a person who signs in only through SSO).
    pub vault: Option<String>,
    /// Whether the row's seal checks: `None` while the vault is locked, so
    /// a sign-in reads this row before it can check it.
    pub sealed: Option<bool>,
}

impl Credentials {
    /// `Ok` once the row's seal checked.
    pub fn checked(&self) -> Result<()> {
        vault::checked(&USERS, self.sealed, &format!("person {}", self.user.name))
    }
}

fn columns() -> String {
    format!(
        "id, name, role, status, totp_enrolled, created_at_us, last_login_us, \
         EXISTS(SELECT 1 FROM enrolments e WHERE e.user_id = users.id), {}",
        vault::check_expr(&USERS)
    )
}

/// A person's row as read, with whether its seal checks.
fn row_checked(r: &rusqlite::Row<'_>) -> rusqlite::Result<(User, Option<bool>)> {
    Ok((row(r)?, r.get(8)?))
}

/// Only a row whose seal checks is a person.
fn trusted(found: Option<(User, Option<bool>)>) -> Result<Option<User>> {
    match found {
        None => Ok(None),
        Some((user, check)) => {
            vault::checked(&USERS, check, &format!("person {}", user.name))?;
            Ok(Some(user))
        }
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        name: r.get(1)?,
        role: r.get(2)?,
        status: r.get(3)?,
        totp_enrolled: r.get::<_, i64>(4)? != 0,
        created_at_us: r.get(5)?,
        last_login_us: r.get(6)?,
        invited: r.get(7)?,
    })
}

pub fn count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?)
}

pub fn insert(conn: &Connection, name: &str, role: &str, password_hash: &str) -> Result<User> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM users WHERE name = ?1)",
        [name],
        |r| r.get(0),
    )?;
    if exists {
        return Err(Error::Exists(format!("a person named {name:?}")));
    }
    vault::write(conn, |c| {
        c.execute(
            "INSERT INTO users (name, role, password_hash, created_at_us) VALUES (?1, ?2, ?3, ?4)",
            params![name, role, password_hash, now_us()],
        )?;
        vault::reseal(c, &USERS, "id = last_insert_rowid()", [])
    })?;
    get(conn, name)?.ok_or_else(|| Error::NotFound(format!("person {name:?}")))
}

/// Keeps the vault key sealed under the person's password.
pub fn set_vault(conn: &Connection, id: i64, sealed: &str) -> Result<()> {
    vault::write(conn, |c| {
        vault::must_check(c, &USERS, "id = ?1", [id])?;
        c.execute(
            "UPDATE users SET vault = ?1 WHERE id = ?2",
            params![sealed, id],
        )?;
        vault::reseal(c, &USERS, "id = ?1", [id])
    })
}

pub fn get(conn: &Connection, name: &str) -> Result<Option<User>> {
    trusted(
        conn.query_row(
            &format!("SELECT {} FROM users WHERE name = ?1", columns()),
            [name],
            row_checked,
        )
        .optional()?,
    )
}

pub fn by_id(conn: &Connection, id: i64) -> Result<Option<User>> {
    trusted(
        conn.query_row(
            &format!("SELECT {} FROM users WHERE id = ?1", columns()),
            [id],
            row_checked,
        )
        .optional()?,
    )
}

/// Every person whose row checks (one that does not is no one's).
pub fn list(conn: &Connection) -> Result<Vec<User>> {
    let mut stmt = conn.prepare(&format!("SELECT {} FROM users ORDER BY name", columns()))?;
    let rows = stmt
        .query_map([], row_checked)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = Vec::new();
    for (user, check) in rows {
        match check {
            Some(true) => out.push(user),
            Some(false) => {}
            None => return Err(Error::Locked),
        }
    }
    Ok(out)
}

/// What a sign-in checks, read before the vault is open: the caller checks
/// the row ([`Credentials::checked`]) once it is.
pub fn credentials(conn: &Connection, name: &str) -> Result<Option<Credentials>> {
    Ok(conn
        .query_row(
            &format!("SELECT {}, password_hash, totp_last_step, failed_attempts, locked_until_s, vault FROM users WHERE name = ?1", columns()),
            [name],
            |r| {
                Ok(Credentials {
                    user: row(r)?,
                    sealed: r.get(8)?,
                    password_hash: r.get(9)?,
                    totp_last_step: r.get(10)?,
                    failed_attempts: r.get(11)?,
                    locked_until_s: r.get(12)?,
                    vault: r.get(13)?,
                })
            },
        )
        .optional()?)
}

/// Counts one attempt at a person's password or code before it is checked,
/// in one IMMEDIATE transaction: refused while a lockout runs (the answer is
/// its end), otherwise counted, with the lockout the new count earns set at
/// once. Concurrent attempts are serialised here, so no more of them are
/// checked than the count allows, and none of them is lost. `lockout` maps
/// a failure count to the end of its lockout; a success resets the count
/// ([`record_success`]).
pub fn begin_attempt(
    conn: &mut Connection,
    id: i64,
    now_s: i64,
    lockout: impl Fn(i64) -> Option<i64>,
) -> Result<std::result::Result<(), i64>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let (count, locked_until): (i64, Option<i64>) = tx.query_row(
        "SELECT failed_attempts, locked_until_s FROM users WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if let Some(until) = locked_until.filter(|u| *u > now_s) {
        return Ok(Err(until));
    }
    let count = count + 1;
    tx.execute(
        "UPDATE users SET failed_attempts = ?1, locked_until_s = ?2 WHERE id = ?3",
        params![count, lockout(count), id],
    )?;
    tx.commit()?;
    Ok(Ok(()))
}

/// Takes a TOTP step as used, only if it is later than the last one used;
/// `false` when it is not (the code was used already, perhaps at the same
/// moment by another request).
pub fn claim_totp_step(conn: &Connection, id: i64, step: i64) -> Result<bool> {
    let changed = conn.execute(
        "UPDATE users SET totp_last_step = ?1
         WHERE id = ?2 AND (totp_last_step IS NULL OR totp_last_step < ?1)",
        params![step, id],
    )?;
    Ok(changed == 1)
}

/// A successful sign-in or step-up: the failure count and any lockout are
/// cleared. The TOTP step was taken already ([`claim_totp_step`]).
pub fn record_success(conn: &Connection, id: i64) -> Result<()> {
    vault::write(conn, |c| {
        vault::must_check(c, &USERS, "id = ?1", [id])?;
        c.execute(
            "UPDATE users SET failed_attempts = 0, locked_until_s = NULL, totp_enrolled = 1,
             last_login_us = ?1 WHERE id = ?2",
            params![now_us(), id],
        )?;
        vault::reseal(c, &USERS, "id = ?1", [id])
    })
}

pub fn set_status(conn: &Connection, id: i64, status: &str) -> Result<()> {
    vault::write(conn, |c| {
        vault::must_check(c, &USERS, "id = ?1", [id])?;
        c.execute(
            "UPDATE users SET status = ?1 WHERE id = ?2",
            params![status, id],
        )?;
        vault::reseal(c, &USERS, "id = ?1", [id])
    })
}

pub fn remove(conn: &Connection, id: i64) -> Result<()> {
    conn.execute(
        "UPDATE agents SET owner_id = NULL WHERE owner_id = ?1",
        [id],
    )?;
    conn.execute("DELETE FROM users WHERE id = ?1", [id])?;
    Ok(())
}

pub fn add_recovery_codes(conn: &Connection, id: i64, hashes: &[String]) -> Result<()> {
    vault::write(conn, |c| {
        vault::must_check(c, &USERS, "id = ?1", [id])?;
        c.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [id])?;
        let mut stmt =
            c.prepare("INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)")?;
        for h in hashes {
            stmt.execute(params![id, h])?;
        }
        vault::reseal(c, &RECOVERY_CODES, "user_id = ?1", [id])
    })
}

/// Marks a recovery code used; false when it does not exist, was used, or
/// its row does not check (it was put there outside Warden).
pub fn use_recovery_code(conn: &Connection, id: i64, hash: &str) -> Result<bool> {
    vault::write(conn, |c| {
        let n = c.execute(
            &format!(
                "UPDATE recovery_codes SET used_at_us = ?1 WHERE user_id = ?2 AND code_hash = ?3 AND used_at_us IS NULL AND {} = 1",
                vault::check_expr(&RECOVERY_CODES)
            ),
            params![now_us(), id, hash],
        )?;
        if n == 1 {
            vault::reseal(
                c,
                &RECOVERY_CODES,
                "user_id = ?1 AND code_hash = ?2",
                params![id, hash],
            )?;
        }
        Ok(n == 1)
    })
}

pub fn create_session(
    conn: &Connection,
    token_hash: &str,
    user_id: i64,
    now_s: i64,
    expires_s: i64,
) -> Result<()> {
    vault::write(conn, |c| {
        c.execute(
            "INSERT INTO sessions (token_hash, user_id, created_s, last_seen_s, expires_s, mfa_at_s) VALUES (?1, ?2, ?3, ?3, ?4, ?3)",
            params![token_hash, user_id, now_s, expires_s],
        )?;
        vault::reseal(c, &SESSIONS, "token_hash = ?1", [token_hash])
    })
}

/// The session's user and when it was last seen, if the session exists;
/// an error for a session row that does not check.
pub fn session(conn: &Connection, token_hash: &str) -> Result<Option<(i64, i64, i64)>> {
    let found: Option<(i64, i64, i64, Option<bool>)> = conn
        .query_row(
            &format!(
                "SELECT user_id, last_seen_s, expires_s, {} FROM sessions WHERE token_hash = ?1",
                vault::check_expr(&SESSIONS)
            ),
            [token_hash],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    match found {
        None => Ok(None),
        Some((user, seen, expires, check)) => {
            vault::checked(&SESSIONS, check, "a session")?;
            Ok(Some((user, seen, expires)))
        }
    }
}

/// The person a session row names, read without checking it: only to ask
/// that person for the password that unlocks Warden, which then checks it.
pub fn session_person_unchecked(conn: &Connection, token_hash: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT u.name FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1",
            [token_hash],
            |r| r.get(0),
        )
        .optional()?)
}

pub fn touch_session(conn: &Connection, token_hash: &str, now_s: i64) -> Result<()> {
    conn.execute(
        "UPDATE sessions SET last_seen_s = ?1 WHERE token_hash = ?2",
        params![now_s, token_hash],
    )?;
    Ok(())
}

/// Records that the session's person just proved their second factor.
pub fn mark_mfa(conn: &Connection, token_hash: &str, now_s: i64) -> Result<()> {
    vault::write(conn, |c| {
        vault::must_check(c, &SESSIONS, "token_hash = ?1", [token_hash])?;
        c.execute(
            "UPDATE sessions SET mfa_at_s = ?1 WHERE token_hash = ?2",
            params![now_s, token_hash],
        )?;
        vault::reseal(c, &SESSIONS, "token_hash = ?1", [token_hash])
    })
}

/// When the session's person last proved their second factor (as the
/// sealed row says).
pub fn session_mfa_at(conn: &Connection, token_hash: &str) -> Result<Option<i64>> {
    let found: Option<(Option<i64>, Option<bool>)> = conn
        .query_row(
            &format!(
                "SELECT mfa_at_s, {} FROM sessions WHERE token_hash = ?1",
                vault::check_expr(&SESSIONS)
            ),
            [token_hash],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match found {
        None => Ok(None),
        Some((at, check)) => {
            vault::checked(&SESSIONS, check, "a session")?;
            Ok(at)
        }
    }
}

pub fn end_session(conn: &Connection, token_hash: &str) -> Result<()> {
    conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
    Ok(())
}

pub fn end_sessions_of(conn: &Connection, user_id: i64) -> Result<()> {
    conn.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])?;
    Ok(())
}

/// The person bound to an identity provider's subject (`issuer|sub`).
pub fn by_sso_subject(conn: &Connection, subject: &str) -> Result<Option<User>> {
    trusted(
        conn.query_row(
            &format!("SELECT {} FROM users WHERE sso_subject = ?1", columns()),
            [subject],
            row_checked,
        )
        .optional()?,
    )
}

/// The subject a person is bound to, if any.
pub fn sso_subject_of(conn: &Connection, id: i64) -> Result<Option<String>> {
    let (subject, check): (Option<String>, Option<bool>) = conn.query_row(
        &format!(
            "SELECT sso_subject, {} FROM users WHERE id = ?1",
            vault::check_expr(&USERS)
        ),
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    vault::checked(&USERS, check, &format!("person #{id}"))?;
    Ok(subject)
}

/// Binds a person to a provider identity (`iss|sub`), or with `None` unbinds.
pub fn set_sso_subject(conn: &Connection, id: i64, subject: Option<&str>) -> Result<()> {
    vault::write(conn, |c| {
        vault::must_check(c, &USERS, "id = ?1", [id])?;
        c.execute(
            "UPDATE users SET sso_subject = ?1 WHERE id = ?2",
            params![subject, id],
        )?;
        vault::reseal(c, &USERS, "id = ?1", [id])
    })
}

pub fn set_role(conn: &Connection, id: i64, role: &str) -> Result<()> {
    vault::write(conn, |c| {
        vault::must_check(c, &USERS, "id = ?1", [id])?;
        c.execute(
            "UPDATE users SET role = ?1 WHERE id = ?2",
            params![role, id],
        )?;
        vault::reseal(c, &USERS, "id = ?1", [id])
    })
}

/// Marks (or clears) that the provider's refusal suspended the person's
/// agents; returns what it was.
pub fn set_sso_suspended(conn: &Connection, id: i64, suspended: bool) -> Result<bool> {
    let was: bool = conn.query_row("SELECT sso_suspended FROM users WHERE id = ?1", [id], |r| {
        r.get(0)
    })?;
    vault::write(conn, |c| {
        vault::must_check(c, &USERS, "id = ?1", [id])?;
        c.execute(
            "UPDATE users SET sso_suspended = ?1 WHERE id = ?2",
            params![suspended, id],
        )?;
        vault::reseal(c, &USERS, "id = ?1", [id])
    })?;
    Ok(was)
}

/// Marks a session as following the identity provider.
pub fn set_sso_refresh(conn: &Connection, token_hash: &str, next_s: Option<i64>) -> Result<()> {
    vault::write(conn, |c| {
        vault::must_check(c, &SESSIONS, "token_hash = ?1", [token_hash])?;
        c.execute(
            "UPDATE sessions SET sso_next_refresh_s = ?1 WHERE token_hash = ?2",
            params![next_s, token_hash],
        )?;
        vault::reseal(c, &SESSIONS, "token_hash = ?1", [token_hash])
    })
}

/// Sessions that follow the identity provider and are due a refresh:
/// (token hash, person id).
pub fn sso_sessions_due(conn: &Connection, now_s: i64) -> Result<Vec<(String, i64)>> {
    let mut st = conn.prepare(
        &format!(
            "SELECT token_hash, user_id FROM sessions WHERE sso_next_refresh_s IS NOT NULL AND sso_next_refresh_s <= ?1 AND {} IS 1",
            vault::check_expr(&SESSIONS)
        ),
    )?;
    let rows = st
        .query_map([now_s], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The password hash of a person who has not chosen a password yet: no
/// password verifies against it.
pub const NO_PASSWORD: &str = "!enrol";

/// Gives a person a (new) enrolment code, valid until `expires_s`, with
/// the vault key sealed under it. Their password, recovery codes and
/// sessions go: they enrol afresh.
pub fn start_enrolment(
    conn: &mut Connection,
    id: i64,
    code_hash: &str,
    expires_s: i64,
    vault_sealed: &str,
) -> Result<()> {
    let tx = conn.transaction()?;
    vault::write(&tx, |c| {
        vault::must_check(c, &USERS, "id = ?1", [id])?;
        // The provider account they were linked to goes too: a reset leaves
        // nothing that signs in as them but the new code.
        c.execute(
            "UPDATE users SET password_hash = ?1, totp_enrolled = 0, totp_last_step = NULL, failed_attempts = 0, locked_until_s = NULL, sso_subject = NULL, vault = NULL WHERE id = ?2",
            params![NO_PASSWORD, id],
        )?;
        c.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [id])?;
        c.execute("DELETE FROM sessions WHERE user_id = ?1", [id])?;
        c.execute(
            "INSERT OR REPLACE INTO enrolments (user_id, code_hash, expires_s, vault) VALUES (?1, ?2, ?3, ?4)",
            params![id, code_hash, expires_s, vault_sealed],
        )?;
        vault::reseal(c, &USERS, "id = ?1", [id])?;
        vault::reseal(c, &ENROLMENTS, "user_id = ?1", [id])
    })?;
    tx.commit()?;
    Ok(())
}

/// A person's pending enrolment: the code's hash, when it expires, and
/// the vault key sealed under the code. Read before the vault is open (the
/// code opens it); `sealed` says whether the row checks, `None` while
/// locked.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub code_hash: String,
    pub expires_s: i64,
    pub vault: Option<String>,
    pub sealed: Option<bool>,
}

impl Enrolment {
    pub fn checked(&self) -> Result<()> {
        vault::checked(&ENROLMENTS, self.sealed, "an enrolment")
    }
}

pub fn enrolment(conn: &Connection, id: i64) -> Result<Option<Enrolment>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT code_hash, expires_s, vault, {} FROM enrolments WHERE user_id = ?1",
                vault::check_expr(&ENROLMENTS)
            ),
            [id],
            |r| {
                Ok(Enrolment {
                    code_hash: r.get(0)?,
                    expires_s: r.get(1)?,
                    vault: r.get(2)?,
                    sealed: r.get(3)?,
                })
            },
        )
        .optional()?)
}

/// Uses an enrolment code: only the request that removes it sets the
/// password and recovery codes, however many carry the same code.
pub fn finish_enrolment(
    conn: &mut Connection,
    id: i64,
    code_hash: &str,
    password_hash: &str,
    recovery_hashes: &[String],
    vault_sealed: &str,
) -> Result<bool> {
    let tx = conn.transaction()?;
    let taken = vault::write(&tx, |c| {
        vault::must_check(c, &USERS, "id = ?1", [id])?;
        vault::must_check(c, &ENROLMENTS, "user_id = ?1", [id])?;
        let taken = c.execute(
            "DELETE FROM enrolments WHERE user_id = ?1 AND code_hash = ?2",
            params![id, code_hash],
        )?;
        if taken != 1 {
            return Ok(false);
        }
        c.execute(
            "UPDATE users SET password_hash = ?1, vault = ?2, failed_attempts = 0, locked_until_s = NULL WHERE id = ?3",
            params![password_hash, vault_sealed, id],
        )?;
        vault::reseal(c, &USERS, "id = ?1", [id])?;
        add_recovery_codes(c, id, recovery_hashes)?;
        Ok(true)
    })?;
    if taken {
        tx.commit()?;
    }
    Ok(taken)
}

/// Sets a person's password (after they proved the old one), with the
/// vault key sealed under it, and ends every session of theirs but `keep`.
pub fn set_password(
    conn: &Connection,
    id: i64,
    password_hash: &str,
    vault_sealed: &str,
    keep: &str,
) -> Result<()> {
    vault::write(conn, |c| {
        vault::must_check(c, &USERS, "id = ?1", [id])?;
        c.execute(
            "UPDATE users SET password_hash = ?1, vault = ?2 WHERE id = ?3",
            params![password_hash, vault_sealed, id],
        )?;
        vault::reseal(c, &USERS, "id = ?1", [id])?;
        c.execute(
            "DELETE FROM sessions WHERE user_id = ?1 AND token_hash != ?2",
            params![id, keep],
        )?;
        Ok(())
    })
}

/// Replaces a person's recovery codes.
pub fn replace_recovery_codes(conn: &mut Connection, id: i64, hashes: &[String]) -> Result<()> {
    let tx = conn.transaction()?;
    add_recovery_codes(&tx, id, hashes)?;
    tx.execute("UPDATE users SET totp_last_step = NULL WHERE id = ?1", [id])?;
    tx.commit()?;
    Ok(())
}
