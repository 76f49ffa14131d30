//! What is known about sign-ins to remote servers, without the secrets.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::{Result, now_us};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct ServerAuth {
    pub server: String,
    pub issuer: String,
    pub resource: String,
    pub client_id: String,
    pub client_kind: String,
    pub redirect_uri: Option<String>,
    pub scopes: Option<String>,
    pub expires_at_s: Option<i64>,
    pub token_endpoint: String,
    pub revocation_endpoint: Option<String>,
    pub signed_in_at_us: i64,
    pub signed_in_by: Option<String>,
    pub last_refresh_at_us: Option<i64>,
    pub last_error: Option<String>,
}

const COLUMNS: &str = "server, issuer, resource, client_id, client_kind, redirect_uri, scopes, expires_at_s, token_endpoint, revocation_endpoint, signed_in_at_us, signed_in_by, last_refresh_at_us, last_error";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ServerAuth> {
    Ok(ServerAuth {
        server: r.get(0)?,
        issuer: r.get(1)?,
        resource: r.get(2)?,
        client_id: r.get(3)?,
        client_kind: r.get(4)?,
        redirect_uri: r.get(5)?,
        scopes: r.get(6)?,
        expires_at_s: r.get(7)?,
        token_endpoint: r.get(8)?,
        revocation_endpoint: r.get(9)?,
        signed_in_at_us: r.get(10)?,
        signed_in_by: r.get(11)?,
        last_refresh_at_us: r.get(12)?,
        last_error: r.get(13)?,
    })
}

pub fn list(conn: &Connection) -> Result<Vec<ServerAuth>> {
    let mut st = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM server_auth ORDER BY server"
    ))?;
    let rows = st
        .query_map([], row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn get(conn: &Connection, server: &str) -> Result<Option<ServerAuth>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM server_auth WHERE server = ?1"),
            [server],
            row,
        )
        .optional()?)
}

pub fn upsert(conn: &Connection, a: &ServerAuth) -> Result<()> {
    conn.execute(
        &format!(
            "INSERT OR REPLACE INTO server_auth ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        ),
        params![
            a.server,
            a.issuer,
            a.resource,
            a.client_id,
            a.client_kind,
            a.redirect_uri,
            a.scopes,
            a.expires_at_s,
            a.token_endpoint,
            a.revocation_endpoint,
            a.signed_in_at_us,
            a.signed_in_by,
            a.last_refresh_at_us,
            a.last_error
        ],
    )?;
    Ok(())
}

/// Records a refresh: its new expiry and scopes, or why it failed.
pub fn refreshed(
    conn: &Connection,
    server: &str,
    expires_at_s: Option<i64>,
    scopes: Option<&str>,
    error: Option<&str>,
) -> Result<()> {
    match error {
        None => conn.execute(
            "UPDATE server_auth SET expires_at_s = ?2, scopes = coalesce(?3, scopes), last_refresh_at_us = ?4, last_error = NULL WHERE server = ?1",
            params![server, expires_at_s, scopes, now_us()],
        )?,
        Some(e) => conn.execute(
            "UPDATE server_auth SET last_error = ?2 WHERE server = ?1",
            params![server, e],
        )?,
    };
    Ok(())
}

pub fn remove(conn: &Connection, server: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM server_auth WHERE server = ?1", [server])? == 1)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub server: String,
    pub verdict: String,
    pub checks: serde_json::Value,
    pub at_us: i64,
}

pub fn save_probe(
    conn: &Connection,
    server: &str,
    verdict: &str,
    checks: &serde_json::Value,
) -> Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO server_probes (server, verdict, checks, at_us) VALUES (?1, ?2, ?3, ?4)",
        params![server, verdict, checks.to_string(), now_us()],
    )?;
    Ok(())
}

pub fn probes(conn: &Connection) -> Result<Vec<Probe>> {
    let mut st =
        conn.prepare("SELECT server, verdict, checks, at_us FROM server_probes ORDER BY server")?;
    let rows = st
        .query_map([], |r| {
            let checks: String = r.get(2)?;
            Ok(Probe {
                server: r.get(0)?,
                verdict: r.get(1)?,
                checks: serde_json::from_str(&checks).unwrap_or_default(),
                at_us: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}
