//! `warden secret …`: secrets (API keys, tokens) kept in the OS keychain
//! for servers to use as keychain:NAME.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use warden_api::Request;

use crate::{Paths, call};

#[derive(Subcommand)]
pub enum SecretCommand {
    /// Store a secret; the value is read from standard input, never from the command line.
    Set {
        name: String,
    },
    Remove {
        name: String,
    },
}

pub async fn secret(paths: &Paths, cmd: SecretCommand) -> Result<()> {
    match cmd {
        SecretCommand::Set { name } => {
            let mut value = String::new();
            std::io::stdin()
                .read_line(&mut value)
                .context("could not read the secret from standard input")?;
            let value = value.trim_end_matches(['\r', '\n']).to_string();
            if value.is_empty() {
                bail!(
                    "no secret was given on standard input (for example: printf %s \"$TOKEN\" | warden secret set {name})"
                );
            }
            let value = warden_auth::Sensitive::new(value);
            call(
                paths,
                Request::SecretSet {
                    name: name.clone(),
                    value,
                },
            )
            .await?;
            println!(
                "Stored secret {name} in the keychain. Use it as keychain:{name} in a server's --env or --header."
            );
            Ok(())
        }
        SecretCommand::Remove { name } => {
            call(paths, Request::SecretRemove { name: name.clone() }).await?;
            println!("Removed secret {name} from the keychain.");
            Ok(())
        }
    }
}
