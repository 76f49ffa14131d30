//! `warden server login`, `logout`, `auth` and `probe`: Warden's own sign-in
//! to remote servers (OAuth in the browser, tokens in the OS keychain), and
//! checking that a remote server enforces authorization.

use anyhow::{Result, bail};
use warden_api::{Request, Response};

use crate::{Paths, call};

pub async fn login(
    paths: &Paths,
    name: String,
    client_id: Option<String>,
    client_secret_stdin: bool,
    scopes: Option<String>,
    no_browser: bool,
) -> Result<()> {
    let client_secret = if client_secret_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Some(warden_auth::Sensitive::new(
            line.trim_end_matches(['\r', '\n']).to_string(),
        ))
    } else {
        None
    };
    println!("Looking up how to sign in to {name}…");
    let Response::LoginStarted(started) = call(
        paths,
        Request::ServerLoginStart {
            name: name.clone(),
            client_id,
            client_secret,
            scopes,
        },
    )
    .await?
    else {
        bail!("unexpected answer")
    };
    println!(
        "Signing in with {} (Warden is registered there: {}){}.",
        started.issuer,
        started.registration,
        started
            .scopes
            .as_deref()
            .map(|s| format!(", asking for: {s}"))
            .unwrap_or_default()
    );
    let opened = !no_browser && warden_auth::oauth::flow::open_browser(&started.url);
    if opened {
        println!("Your browser opened; finish signing in there. If it did not, open:");
    } else {
        println!("Open this address in your browser to sign in:");
    }
    println!("{}", started.url);
    println!("Waiting for the sign-in to finish…");
    let Response::SignedInTo(auth) =
        call(paths, Request::ServerLoginFinish { flow: started.flow }).await?
    else {
        bail!("unexpected answer")
    };
    println!(
        "Signed in to {name}. Granted: {}. {}",
        auth.scopes.as_deref().unwrap_or("(no scopes named)"),
        match auth.expires_at_s {
            Some(e) => format!(
                "The token is renewed automatically (next around {}).",
                time::OffsetDateTime::from_unix_timestamp(e)
                    .ok()
                    .and_then(|t| t
                        .format(&time::format_description::well_known::Rfc3339)
                        .ok())
                    .unwrap_or_default()
            ),
            None => String::new(),
        }
    );
    Ok(())
}

pub async fn logout(paths: &Paths, name: String) -> Result<()> {
    call(paths, Request::ServerLogout { name: name.clone() }).await?;
    println!("Signed out of {name}; its tokens are gone from the keychain.");
    Ok(())
}

pub async fn list(paths: &Paths, json: bool) -> Result<()> {
    let Response::ServerAuths(rows) = call(paths, Request::ServerAuthList).await? else {
        bail!("unexpected answer")
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if rows.is_empty() {
        println!("Warden is not signed in to any server.");
    } else {
        for r in rows {
            println!(
                "{:<16} issuer {}  client {} ({})  scopes {}  expires {}{}",
                r.server,
                r.issuer,
                r.client_id,
                r.client_kind,
                r.scopes.as_deref().unwrap_or("-"),
                r.expires_at_s
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "-".into()),
                r.last_error
                    .map(|e| format!("  PROBLEM: {e}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

pub async fn probe(paths: &Paths, name: String, json: bool) -> Result<()> {
    let Response::Probe(report) = call(paths, Request::ServerProbe { name: name.clone() }).await?
    else {
        bail!("unexpected answer")
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for c in &report.checks {
            println!(
                "{} {:<26} HTTP {}  {}",
                if c.passed { "ok  " } else { "FAIL" },
                c.check,
                c.status,
                c.note
            );
        }
        let improper = report
            .checks
            .iter()
            .filter(|c| c.passed && !c.proper)
            .count();
        if improper > 0 {
            println!(
                "Note: {improper} refusal(s) were not a 401 with a Bearer challenge, as the MCP specification asks."
            );
        }
        match report.verdict.as_str() {
            "enforcing" => {
                println!("{name} enforces authorization: every bad token was refused.")
            }
            "no authorization" => println!(
                "WARNING: {name} answers without any sign-in. Only Warden's own agent checks protect it."
            ),
            _ => println!(
                "WARNING: {name} accepted a request it should have refused. Do not trust its own authorization."
            ),
        }
    }
    Ok(())
}
