//! `warden approvals` (answer agents' calls that wait for a person) and
//! `warden tool` (risk overrides and quarantine reviews).

use std::collections::HashSet;
use std::io::{BufRead, Write};

use anyhow::{Result, bail};
use clap::Subcommand;
use warden_api::{Request, Response};
use warden_gateway::approvals::ApprovalRequest;

use crate::text::{safe, safe_lines};
use crate::{Paths, call};

#[derive(Subcommand)]
pub enum ApprovalsCommand {
    /// The calls waiting for you (admins: everyone's).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Approve a waiting call: once (default), for the agent's session, or always for these exact arguments.
    Approve {
        id: String,
        /// Allow this tool for the rest of the agent's session.
        #[arg(long, conflicts_with = "always")]
        session: bool,
        /// Always allow this agent these exact arguments (a standing approval you can revoke).
        #[arg(long)]
        always: bool,
        /// Asks for a fresh code from your authenticator app (needed for critical tools). Takes no
        /// value: a code on the command line is readable by every program.
        #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "")]
        totp: Option<String>,
        /// For a critical tool: sign in again at your identity provider instead of a code.
        #[arg(long, conflicts_with = "totp")]
        sso: bool,
    },
    /// Deny a waiting call; the agent is told, with your reason if you give one.
    Deny {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Standing approvals ("always allow these arguments").
    Standing {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a standing approval.
    RevokeStanding { id: i64 },
}

#[derive(Subcommand)]
pub enum ToolCommand {
    /// Set a tool's risk (low, high, critical) with the reason people see; `auto` goes back to Warden's own judgement.
    Risk {
        server: String,
        tool: String,
        risk: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Tools that are quarantined (their definition changed, or they are new) or rejected.
    Quarantined {
        #[arg(long)]
        json: bool,
    },
    /// Show what changed in a quarantined tool.
    Review {
        server: String,
        tool: String,
        #[arg(long)]
        json: bool,
    },
    /// Accept the definition a quarantined tool presents now (after showing it).
    Accept {
        server: String,
        tool: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Reject it: the tool stays hidden and refused until the server changes it again.
    Reject { server: String, tool: String },
}

fn when(us: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn describe(r: &ApprovalRequest) -> String {
    let now = warden_store::now_us();
    let left = ((r.expires_at_us - now) / 1_000_000).max(0);
    let chain = r
        .chain
        .as_ref()
        .map(|c| format!("\n  via:       {}", safe(&c.join(" → "))))
        .unwrap_or_default();
    // What the call really sends when this person may approve it; the
    // log's form (secrets masked) otherwise.
    let args = r
        .sent
        .as_ref()
        .or(r.arguments.as_ref())
        .and_then(|a| serde_json::to_string_pretty(a).ok())
        .unwrap_or_else(|| "(none)".into());
    let args = safe_lines(&args).replace('\n', "\n             ");
    format!(
        "Approval {id}\n  agent:     {agent} (for {person}){chain}\n  wants:     {tool} on {server}\n  risk:      {risk} — {why}\n  arguments: {args}\n  denied in: {left} s unless answered{step}",
        id = r.id,
        agent = safe(&r.agent),
        person = safe(r.person.as_deref().unwrap_or("no owner")),
        tool = safe(&r.tool),
        server = safe(&r.server),
        risk = r.risk.as_str(),
        why = safe(&r.why.join("; ")),
        step = if r.needs_step_up() {
            "\n  critical:  approving needs a fresh authenticator code"
        } else {
            ""
        }
    )
}

async fn decide(
    paths: &Paths,
    id: String,
    choice: &str,
    reason: Option<String>,
    totp: Option<String>,
) -> Result<()> {
    call(
        paths,
        Request::ApprovalDecide {
            id,
            choice: choice.into(),
            reason,
            totp,
        },
    )
    .await?;
    Ok(())
}

/// Reads one line from the terminal without blocking the runtime.
async fn read_line() -> Result<Option<String>> {
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let n = std::io::stdin().lock().read_line(&mut line)?;
        Ok::<_, std::io::Error>((n > 0).then(|| line.trim().to_string()))
    })
    .await?
    .map_err(Into::into)
}

/// `warden approvals` with no subcommand: shows each request as it arrives
/// and asks what to do. Pressing Enter alone skips it: nothing is ever
/// approved by default.
pub async fn interactive(paths: &Paths) -> Result<()> {
    let mut seen_ids: HashSet<String> = HashSet::new();
    let mut version = u64::MAX;
    println!("Waiting for approval requests (Ctrl-C to stop)…");
    loop {
        let req = if version == u64::MAX {
            Request::Approvals
        } else {
            Request::ApprovalsWait {
                seen: version,
                wait_secs: 20,
            }
        };
        let Response::Approvals(p) = call(paths, req).await? else {
            bail!("unexpected answer")
        };
        version = p.version;
        for r in p.requests {
            if !seen_ids.insert(r.id.clone()) {
                continue;
            }
            println!("\n{}", describe(&r));
            let choices = if r.needs_step_up() {
                "[o]nce, [d]eny, Enter to skip"
            } else if !r.session_choice {
                "[o]nce, [a]lways these arguments, [d]eny, Enter to skip"
            } else {
                "[o]nce, [s]ession, [a]lways these arguments, [d]eny, Enter to skip"
            };
            print!("Allow? {choices}: ");
            std::io::stdout().flush()?;
            let Some(answer) = read_line().await? else {
                return Ok(());
            };
            let choice = match answer.to_lowercase().as_str() {
                "o" | "once" => "once",
                "s" | "session" if !r.needs_step_up() && r.session_choice => "session",
                "a" | "always" if !r.needs_step_up() => "always",
                "d" | "deny" => "deny",
                _ => {
                    println!(
                        "Skipped; it stays pending until answered elsewhere or the timeout denies it."
                    );
                    continue;
                }
            };
            let (mut reason, mut code) = (None, None);
            if choice == "deny" {
                print!("Reason the agent sees (optional): ");
                std::io::stdout().flush()?;
                reason = read_line().await?.filter(|s| !s.is_empty());
            } else if r.needs_step_up() {
                code = Some(
                    tokio::task::spawn_blocking(|| {
                        crate::codes::read_code("Current code from your authenticator app: ")
                    })
                    .await??,
                );
            }
            match decide(paths, r.id.clone(), choice, reason, code).await {
                Ok(()) => println!("Done: {choice}."),
                Err(e) => println!("Could not answer: {e}"),
            }
        }
    }
}

pub async fn run(paths: &Paths, cmd: Option<ApprovalsCommand>) -> Result<()> {
    let Some(cmd) = cmd else {
        return interactive(paths).await;
    };
    match cmd {
        ApprovalsCommand::List { json } => {
            let Response::Approvals(p) = call(paths, Request::Approvals).await? else {
                bail!("unexpected answer")
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&p.requests)?);
            } else if p.requests.is_empty() {
                println!("No calls are waiting for approval.");
            } else {
                for r in &p.requests {
                    println!("{}\n", describe(r));
                }
            }
            Ok(())
        }
        ApprovalsCommand::Approve {
            id,
            session,
            always,
            totp,
            sso,
        } => {
            crate::codes::refuse_on_command_line("--totp", totp.as_deref())?;
            let totp = match totp {
                Some(_) => Some(crate::codes::read_code(
                    "Current code from your authenticator app: ",
                )?),
                None => None,
            };
            if sso {
                let stored = crate::people::stored_session(paths).await?;
                let flow = crate::sso::sso_round_trip(
                    paths,
                    Request::SsoStepUpStart,
                    false,
                    stored.as_ref(),
                )
                .await?;
                call(paths, Request::SsoStepUpFinish { flow }).await?;
            }
            let choice = if session {
                "session"
            } else if always {
                "always"
            } else {
                "once"
            };
            decide(paths, id.clone(), choice, None, totp).await?;
            println!("Approved {id} ({choice}).");
            Ok(())
        }
        ApprovalsCommand::Deny { id, reason } => {
            decide(paths, id.clone(), "deny", reason, None).await?;
            println!("Denied {id}.");
            Ok(())
        }
        ApprovalsCommand::Standing { json } => {
            let Response::Standing(rows) = call(paths, Request::StandingList).await? else {
                bail!("unexpected answer")
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if rows.is_empty() {
                println!("No standing approvals.");
            } else {
                for s in rows {
                    println!(
                        "{:>4}  agent {} may run {} on {} with {} (by {}, {})",
                        s.id,
                        s.agent,
                        s.tool,
                        s.server,
                        s.arguments.as_deref().unwrap_or("{}"),
                        s.created_by,
                        when(s.created_at_us)
                    );
                }
            }
            Ok(())
        }
        ApprovalsCommand::RevokeStanding { id } => {
            call(paths, Request::StandingRevoke { id }).await?;
            println!("Revoked standing approval {id}.");
            Ok(())
        }
    }
}

pub async fn tool(paths: &Paths, cmd: ToolCommand) -> Result<()> {
    match cmd {
        ToolCommand::Risk {
            server,
            tool,
            risk,
            reason,
        } => {
            let set = (risk != "auto").then(|| risk.clone());
            call(
                paths,
                Request::ToolRisk {
                    server: server.clone(),
                    tool: tool.clone(),
                    risk: set,
                    reason,
                },
            )
            .await?;
            if risk == "auto" {
                println!("{tool} on {server} is back to Warden's own risk judgement.");
            } else {
                println!("{tool} on {server} is now {risk} risk.");
            }
            Ok(())
        }
        ToolCommand::Quarantined { json } => {
            let Response::Pins(pins) = call(paths, Request::Quarantined).await? else {
                bail!("unexpected answer")
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&pins)?);
            } else if pins.is_empty() {
                println!("No tool is quarantined.");
            } else {
                for p in pins {
                    println!(
                        "{:<20} {:<32} {} ({}) since {}",
                        safe(&p.server),
                        safe(&p.tool),
                        p.state.as_str(),
                        safe(p.reason.as_deref().unwrap_or("-")),
                        when(p.updated_at_us)
                    );
                }
            }
            Ok(())
        }
        ToolCommand::Review { server, tool, json } => {
            let Response::ToolReview(r) = call(paths, Request::ToolReview { server, tool }).await?
            else {
                bail!("unexpected answer")
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print_review(&r);
            }
            Ok(())
        }
        ToolCommand::Accept { server, tool, yes } => {
            let Response::ToolReview(r) = call(
                paths,
                Request::ToolReview {
                    server: server.clone(),
                    tool: tool.clone(),
                },
            )
            .await?
            else {
                bail!("unexpected answer")
            };
            print_review(&r);
            if !yes {
                print!("Accept this definition of {tool}? [y/N] ");
                std::io::stdout().flush()?;
                let answer = read_line().await?.unwrap_or_default();
                if !matches!(answer.to_lowercase().as_str(), "y" | "yes") {
                    println!("Not accepted; {tool} stays quarantined.");
                    return Ok(());
                }
            }
            call(
                paths,
                Request::ToolDecide {
                    server: server.clone(),
                    tool: tool.clone(),
                    hash: r.pin.seen_hash.clone(),
                    accept: true,
                },
            )
            .await?;
            println!("Accepted: agents with access can see and call {tool} on {server} again.");
            Ok(())
        }
        ToolCommand::Reject { server, tool } => {
            let Response::ToolReview(r) = call(
                paths,
                Request::ToolReview {
                    server: server.clone(),
                    tool: tool.clone(),
                },
            )
            .await?
            else {
                bail!("unexpected answer")
            };
            call(
                paths,
                Request::ToolDecide {
                    server: server.clone(),
                    tool: tool.clone(),
                    hash: r.pin.seen_hash.clone(),
                    accept: false,
                },
            )
            .await?;
            println!(
                "Rejected: {tool} on {server} stays hidden and refused until the server changes it again."
            );
            Ok(())
        }
    }
}

fn print_review(r: &warden_api::ToolReview) {
    let p = &r.pin;
    let why = match (p.state.as_str(), p.reason.as_deref()) {
        ("rejected", _) => "an admin rejected this definition",
        (_, Some("new")) => "it is new on a server whose new tools an admin reviews",
        (_, Some("changed")) => "its definition changed since it was approved",
        _ => "it is not quarantined",
    };
    println!(
        "{} on {}: {} ({})",
        safe(&p.tool),
        safe(&p.server),
        p.state.as_str(),
        why
    );
    println!("--- approved definition\n+++ definition the server presents now");
    print!("{}", safe_lines(&r.diff));
}
