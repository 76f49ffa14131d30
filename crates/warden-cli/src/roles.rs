//! `warden role …`, `warden grant` and `warden revoke-grant`: roles (sets
//! of grants agents can hold) and the grants in them.

use anyhow::{Result, bail};
use clap::Subcommand;
use warden_api::{Request, Response};

use crate::{Paths, call};

#[derive(Subcommand)]
pub enum RoleCommand {
    Add {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Remove {
        name: String,
    },
}

pub async fn role(paths: &Paths, cmd: RoleCommand) -> Result<()> {
    match cmd {
        RoleCommand::Add { name, description } => {
            call(
                paths,
                Request::RoleAdd {
                    name: name.clone(),
                    description,
                },
            )
            .await?;
            println!(
                "Added role {name}. Give it access with `warden grant {name} SERVER PATTERN allow`."
            );
            Ok(())
        }
        RoleCommand::List { json } => {
            let Response::Roles(roles) = call(paths, Request::RoleList).await? else {
                bail!("unexpected answer")
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&roles)?);
            } else {
                for r in roles {
                    println!(
                        "{}{}",
                        r.name,
                        if r.description.is_empty() {
                            String::new()
                        } else {
                            format!(" — {}", r.description)
                        }
                    );
                    for g in r.grants {
                        println!("    {:<6} {:<16} {}", g.effect, g.server, g.pattern);
                    }
                }
            }
            Ok(())
        }
        RoleCommand::Remove { name } => {
            call(paths, Request::RoleRemove { name: name.clone() }).await?;
            println!("Removed role {name}.");
            Ok(())
        }
    }
}

pub async fn grant(
    paths: &Paths,
    role: String,
    server: String,
    pattern: String,
    effect: String,
    explicit: bool,
) -> Result<()> {
    call(
        paths,
        Request::Grant {
            role: role.clone(),
            server: server.clone(),
            pattern: pattern.clone(),
            effect: effect.clone(),
            explicit,
        },
    )
    .await?;
    println!("Role {role} now has {effect} for {pattern} on {server}.");
    Ok(())
}

pub async fn revoke_grant(
    paths: &Paths,
    role: String,
    server: String,
    pattern: String,
) -> Result<()> {
    call(
        paths,
        Request::RevokeGrant {
            role: role.clone(),
            server: server.clone(),
            pattern: pattern.clone(),
        },
    )
    .await?;
    println!("Removed the grant of {pattern} on {server} from role {role}.");
    Ok(())
}
