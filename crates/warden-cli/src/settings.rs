//! `warden config`: the settings of config.toml that wait for an admin
//! because they are looser than approved (see warden-api's settings.rs).

use anyhow::{Result, bail};
use clap::Subcommand;
use warden_api::{Request, Response};

use crate::{Paths, call, text};

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Show the settings of config.toml that are looser than an admin approved, and wait.
    Review,
    /// Approve the settings config.toml asks for, exactly as shown (admins; asks for a code).
    Approve {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

async fn review(paths: &Paths) -> Result<warden_api::settings::SettingsReview> {
    let Response::Settings(r) = call(
        paths,
        Request::SettingsApprove {
            hash: None,
            totp: None,
        },
    )
    .await?
    else {
        bail!("unexpected answer")
    };
    if r.held.is_empty() {
        println!(
            "Every setting in config.toml is in force: none is looser than an admin approved."
        );
    } else {
        println!(
            "config.toml asks for settings looser than an admin approved; until one approves them, the approved value stays in force:\n"
        );
        for h in &r.held {
            println!(
                "  {}: the file asks for {} (in force: {})",
                text::safe(&h.setting),
                text::safe(&h.wanted),
                text::safe(&h.kept)
            );
        }
        println!();
    }
    Ok(r)
}

pub async fn config(paths: &Paths, cmd: ConfigCommand) -> Result<()> {
    match cmd {
        ConfigCommand::Review => {
            let r = review(paths).await?;
            if !r.held.is_empty() {
                println!("An admin can approve them with: warden config approve");
            }
            Ok(())
        }
        ConfigCommand::Approve { yes } => {
            let r = review(paths).await?;
            if r.held.is_empty() {
                return Ok(());
            }
            if !yes {
                print!("Put these settings in force? [y/N] ");
                std::io::Write::flush(&mut std::io::stdout())?;
                let mut answer = String::new();
                std::io::stdin().read_line(&mut answer)?;
                if !matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
                    println!("Not approved; the approved values stay in force.");
                    return Ok(());
                }
            }
            let code = crate::codes::read_code("Current code from your authenticator app: ")?;
            call(
                paths,
                Request::SettingsApprove {
                    hash: Some(r.hash),
                    totp: Some(code.trim().to_string()),
                },
            )
            .await?;
            println!("Approved: config.toml's settings are in force now.");
            Ok(())
        }
    }
}
