//! `warden server …`: the upstream MCP servers: adding and removing them,
//! their tools, trusting their annotations and consenting to a local
//! server's command. Warden's own sign-in to remote servers is in
//! `server_auth.rs`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use warden_api::{Request, Response};
use warden_gateway::config::ServerSpec;

use crate::{Paths, call, server_auth, text};

#[derive(Subcommand)]
pub enum ServerCommand {
    /// Add a server: `server add NAME -- CMD [ARGS...]` or `server add NAME --url URL`.
    Add {
        name: String,
        #[arg(long, conflicts_with = "command")]
        url: Option<String>,
        /// Environment for a local server, KEY=VALUE (VALUE may be keychain:NAME).
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Header for a remote server, NAME=VALUE (VALUE may be keychain:NAME).
        #[arg(long = "header", value_name = "NAME=VALUE")]
        headers: Vec<String>,
        /// Working directory for a local server.
        #[arg(long)]
        cwd: Option<PathBuf>,
        #[arg(last = true)]
        command: Vec<String>,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Tools {
        name: String,
        #[arg(long)]
        json: bool,
    },
    Remove {
        name: String,
    },
    /// Trust a server's own annotations (a read-only tool may then be low risk). Tools any server
    /// adds later wait for an admin's review; with --auto-trust-new-tools this one's do not.
    Trust {
        name: String,
        #[arg(long)]
        auto_trust_new_tools: bool,
    },
    /// Stop trusting a server's annotations: its tools count as high risk unless an admin says otherwise.
    Distrust {
        name: String,
    },
    /// Sign Warden in to a remote server (OAuth in your browser); tokens stay in the OS keychain.
    Login {
        name: String,
        /// A client ID the server's admin gave you (when the server does not let apps register).
        #[arg(long)]
        client_id: Option<String>,
        /// Read that client's secret from standard input.
        #[arg(long, requires = "client_id")]
        client_secret_stdin: bool,
        /// Scopes to ask for (default: what the server asks for).
        #[arg(long)]
        scopes: Option<String>,
        /// Do not open a browser; print the address to open instead.
        #[arg(long)]
        no_browser: bool,
    },
    /// Sign out of a remote server: revoke its tokens where it can, and forget them.
    Logout {
        name: String,
    },
    /// Every server sign-in: issuer, client, scopes, expiry, last refresh.
    Auth {
        #[arg(long)]
        json: bool,
    },
    /// Check that a remote server refuses requests without a valid token.
    Probe {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Review and approve the exact command of a local server, or a remote server's address and headers (needed after either changed).
    Consent {
        name: String,
        /// Takes no value: the code is asked for (from the terminal, or stdin's next line).
        #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "")]
        totp: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

fn pairs(items: &[String], what: &str) -> Result<std::collections::BTreeMap<String, String>> {
    items
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("{what} {kv:?} must look like NAME=VALUE"))
        })
        .collect()
}

pub async fn server(paths: &Paths, cmd: ServerCommand) -> Result<()> {
    match cmd {
        ServerCommand::Add {
            name,
            url,
            env,
            headers,
            cwd,
            command,
        } => {
            let spec = match (url, command.split_first()) {
                (Some(url), None) => ServerSpec {
                    url: Some(url),
                    headers: pairs(&headers, "header")?,
                    ..Default::default()
                },
                (None, Some((cmd, args))) => ServerSpec {
                    command: Some(cmd.clone()),
                    args: args.to_vec(),
                    env: pairs(&env, "env")?,
                    cwd,
                    ..Default::default()
                },
                (Some(_), Some(_)) => bail!("give either --url or a command after --, not both"),
                (None, None) => bail!(
                    "give the server's command after -- (e.g. `warden server add files -- npx @modelcontextprotocol/server-filesystem ~/Documents`) or --url URL"
                ),
            };
            call(
                paths,
                Request::ServerAdd {
                    name: name.clone(),
                    spec,
                },
            )
            .await?;
            println!("Added server {name}.");
            Ok(())
        }
        ServerCommand::List { json } => {
            let Response::Servers(servers) = call(paths, Request::ServerList).await? else {
                bail!("unexpected answer")
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&servers)?);
            } else if servers.is_empty() {
                println!(
                    "No servers yet. Add one with `warden server add NAME -- COMMAND` or `--url URL`."
                );
            } else {
                for s in servers {
                    println!(
                        "{:<20} {:<6} {:<40} {} ({} tools){}",
                        s.name,
                        s.transport,
                        s.status.to_string(),
                        s.target,
                        s.tools,
                        match s.probe.as_deref() {
                            Some("enforcing") => "  authorization: enforcing".to_string(),
                            Some(v) => format!("  WARNING authorization: {v}"),
                            None => String::new(),
                        }
                    );
                }
            }
            Ok(())
        }
        ServerCommand::Tools { name, json } => {
            let Response::Tools(tools) = call(paths, Request::ServerTools { name }).await? else {
                bail!("unexpected answer")
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&tools)?);
            } else {
                for t in tools {
                    let desc = t["description"]
                        .as_str()
                        .unwrap_or("")
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let w = &t["warden"];
                    let state = match w["state"].as_str() {
                        Some("quarantined") | Some("rejected") => {
                            format!(" [{}]", w["state"].as_str().unwrap_or_default())
                        }
                        _ => String::new(),
                    };
                    let why = w["why"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str())
                                .collect::<Vec<_>>()
                                .join("; ")
                        })
                        .unwrap_or_default();
                    println!(
                        "{:<32} {:<8}{state} {}\n{:<32} why: {}",
                        text::safe(t["name"].as_str().unwrap_or("?")),
                        w["risk"].as_str().unwrap_or("?"),
                        text::safe(&desc),
                        "",
                        text::safe(&why)
                    );
                }
            }
            Ok(())
        }
        ServerCommand::Remove { name } => {
            call(paths, Request::ServerRemove { name: name.clone() }).await?;
            println!("Removed server {name}.");
            Ok(())
        }
        ServerCommand::Login {
            name,
            client_id,
            client_secret_stdin,
            scopes,
            no_browser,
        } => {
            server_auth::login(
                paths,
                name,
                client_id,
                client_secret_stdin,
                scopes,
                no_browser,
            )
            .await
        }
        ServerCommand::Logout { name } => server_auth::logout(paths, name).await,
        ServerCommand::Auth { json } => server_auth::list(paths, json).await,
        ServerCommand::Probe { name, json } => server_auth::probe(paths, name, json).await,
        ServerCommand::Trust {
            name,
            auto_trust_new_tools,
        } => {
            call(
                paths,
                Request::ServerTrust {
                    name: name.clone(),
                    trusted: true,
                    auto_trust_new_tools,
                },
            )
            .await?;
            println!(
                "{name} is trusted: its read-only tools can be low risk.{}",
                if auto_trust_new_tools {
                    " Tools it adds later are trusted without review."
                } else {
                    " Tools it adds later wait for an admin's review."
                }
            );
            Ok(())
        }
        ServerCommand::Distrust { name } => {
            call(
                paths,
                Request::ServerTrust {
                    name: name.clone(),
                    trusted: false,
                    auto_trust_new_tools: false,
                },
            )
            .await?;
            println!(
                "{name} is no longer trusted: its tools count as high risk unless an admin sets otherwise."
            );
            Ok(())
        }
        ServerCommand::Consent { name, totp, yes } => {
            crate::codes::refuse_on_command_line("--totp", totp.as_deref())?;
            let Response::Consent(c) = call(
                paths,
                Request::ServerConsent {
                    name: name.clone(),
                    hash: None,
                    totp: None,
                },
            )
            .await?
            else {
                bail!("unexpected answer")
            };
            let (shown, what, ask) = if c.remote {
                (
                    format!("Server {name} is reached here, with these headers:"),
                    "this address and these headers",
                    "Allow Warden to send agents' calls there, with these headers?",
                )
            } else {
                (
                    format!("Server {name} runs this command:"),
                    "this command",
                    "Allow Warden to run it?",
                )
            };
            println!(
                "{shown}\n\n  {}\n",
                text::safe(&c.command_line).replace('\n', "\n  ")
            );
            if c.approved {
                println!(
                    "An admin ({}) already approved exactly {what}.",
                    c.approved_by.as_deref().unwrap_or("?")
                );
                return Ok(());
            }
            if !yes {
                print!("{ask} [y/N] ");
                std::io::Write::flush(&mut std::io::stdout())?;
                let mut answer = String::new();
                std::io::stdin().read_line(&mut answer)?;
                if !matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
                    println!("Not approved; {name} stays stopped.");
                    return Ok(());
                }
            }
            let totp = crate::codes::read_code("Current code from your authenticator app: ")?;
            call(
                paths,
                Request::ServerConsent {
                    name: name.clone(),
                    hash: Some(c.hash),
                    totp: Some(totp),
                },
            )
            .await?;
            println!("Approved; {name} starts now with {what}.");
            Ok(())
        }
    }
}
