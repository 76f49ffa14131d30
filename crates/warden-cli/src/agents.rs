//! `warden agent …`: the agents (the identities MCP clients use) and their
//! credentials: creating, listing, rotating and revoking them.

use anyhow::{Result, bail};
use clap::Subcommand;
use warden_api::{Request, Response};

use crate::{Paths, call};

#[derive(Subcommand)]
pub enum AgentCommand {
    /// Create an agent and print its credential (shown once).
    Add {
        name: String,
        /// A role the agent holds (repeat for several). Without one it can use nothing.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// The person it acts for (admins only; default: you).
        #[arg(long)]
        owner: Option<String>,
        /// Days until its credential expires (default 30).
        #[arg(long = "expires")]
        expires_days: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Revoke {
        name: String,
    },
    /// Give an agent a new credential; the old one keeps working for an hour.
    Rotate {
        name: String,
        /// Days until the new credential expires (default 30).
        #[arg(long = "expires")]
        expires_days: Option<u32>,
        #[arg(long)]
        json: bool,
    },
}

pub async fn agent(paths: &Paths, cmd: AgentCommand) -> Result<()> {
    match cmd {
        AgentCommand::Add {
            name,
            roles,
            owner,
            expires_days,
            json,
        } => {
            let no_roles = roles.is_empty();
            let req = Request::AgentAdd {
                name,
                roles,
                owner,
                expires_days,
            };
            let Response::AgentCreated(created) = call(paths, req).await? else {
                bail!("unexpected answer")
            };
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "agent": created.agent,
                        "credential": created.credential,
                        "keychain": created.keychain.as_ref().err(),
                    }))?
                );
            } else {
                println!("Created agent {}.", created.agent.name);
                println!(
                    "Its credential (shown once; only a hash is stored):\n\n  {}\n",
                    created.credential
                );
                if no_roles {
                    eprintln!(
                        "note: the agent holds no role, so it can use no tool yet; give it one with --role."
                    );
                }
                match &created.keychain {
                    Ok(()) => println!(
                        "It is also saved in the OS keychain, so `warden connect {}` works on this machine.",
                        created.agent.name
                    ),
                    Err(e) => eprintln!(
                        "warning: the credential was not saved in the keychain ({e}); `warden connect` will not find it."
                    ),
                }
            }
            Ok(())
        }
        AgentCommand::List { json } => {
            let Response::Agents(agents) = call(paths, Request::AgentList).await? else {
                bail!("unexpected answer")
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&agents)?);
            } else {
                for a in agents {
                    let now_us = warden_store::now_us();
                    let expires = a
                        .expires_at_us
                        .and_then(|e| {
                            let date = time::OffsetDateTime::from_unix_timestamp(e / 1_000_000).ok()?.date();
                            let days = (e - now_us) / 86_400_000_000;
                            Some(match days {
                                _ if e <= now_us => format!("EXPIRED {date}: rotate with `warden agent rotate {}`", a.name),
                                0..=7 => format!("expires {date}, in {days} days: rotate with `warden agent rotate {}`", a.name),
                                _ => format!("expires {date}"),
                            })
                        })
                        .unwrap_or_default();
                    println!(
                        "{:<24} {:<10} {expires}",
                        a.name,
                        format!("{:?}", a.status).to_lowercase()
                    );
                }
            }
            Ok(())
        }
        AgentCommand::Rotate {
            name,
            expires_days,
            json,
        } => {
            let req = Request::AgentRotate {
                name: name.clone(),
                expires_days,
            };
            let Response::AgentCreated(created) = call(paths, req).await? else {
                bail!("unexpected answer")
            };
            if json {
                let out =
                    serde_json::json!({"agent": created.agent, "credential": created.credential});
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!(
                    "New credential for agent {name} (shown once; the old one works for one more hour):\n\n  {}\n",
                    created.credential
                );
            }
            Ok(())
        }
        AgentCommand::Revoke { name } => {
            call(paths, Request::AgentRevoke { name: name.clone() }).await?;
            println!("Revoked agent {name}. Its credential stops working on its next request.");
            Ok(())
        }
    }
}
