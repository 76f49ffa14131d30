//! `warden sso …` and `warden login --sso`: single sign-on with the
//! company's identity provider: its settings, linking your account to the
//! provider's, and the browser round trip (which `warden approvals approve
//! --sso` uses too).

use anyhow::{Context, Result, bail};
use warden_api::{Request, Response};
use warden_auth::{Keychain, Sensitive};

use crate::people::{read_password, session_account, stored_session};
use crate::{Paths, call, call_as};

/// Runs one browser round trip with the identity provider: prints the
/// address (and opens the browser unless told not to), then waits.
pub async fn sso_round_trip(
    paths: &Paths,
    start: Request,
    no_browser: bool,
    session: Option<&Sensitive<String>>,
) -> Result<String> {
    let Response::SsoStarted(started) = call_as(paths, session, start).await? else {
        bail!("unexpected answer")
    };
    let opened = !no_browser && warden_auth::oauth::flow::open_browser(&started.url);
    if opened {
        println!(
            "Your browser opened at {}; sign in there. If it did not, open:",
            started.issuer
        );
    } else {
        println!(
            "Open this address in your browser to sign in at {}:",
            started.issuer
        );
    }
    println!("{}", started.url);
    println!("Waiting for the sign-in to finish…");
    Ok(started.flow)
}

pub async fn login_sso(
    paths: &Paths,
    no_browser: bool,
    totp: Option<String>,
    password_stdin: bool,
) -> Result<()> {
    // A Warden code stands in for the provider's MFA. Its secret is sealed
    // with your Warden password: a running Warden opened it when you last
    // signed in to it; this process on its own needs the password.
    crate::codes::refuse_on_command_line("--totp", totp.as_deref())?;
    let running = warden_api::ControlClient::connect(&paths.data_dir)
        .await
        .is_some();
    let password = match &totp {
        Some(_) if password_stdin || !running => Some(crate::people::read_password(
            password_stdin,
            "Your Warden password (it unlocks your authenticator): ",
        )?),
        _ => None,
    };
    let flow = sso_round_trip(paths, Request::SsoLoginStart, no_browser, None).await?;
    // Asked after the browser, so the code is fresh.
    let totp = match totp {
        Some(_) => Some(crate::codes::read_code(
            "Code from your Warden authenticator app: ",
        )?),
        None => None,
    };
    let finish = Request::SsoLoginFinish {
        flow,
        totp,
        password,
    };
    let Response::SignedIn(signed) = call_as(paths, None, finish).await? else {
        bail!("unexpected answer")
    };
    let account = session_account(paths)?;
    let token = signed.token.clone();
    tokio::task::spawn_blocking(move || Keychain::default().set(&account, &token))
        .await?
        .map_err(|e| anyhow::anyhow!("signed in, but the session could not be kept: {e}"))?;
    println!("Signed in as {} ({}).", signed.user.name, signed.user.role);
    Ok(())
}

// Parsed once per run; boxing the settings would only complicate clap.
#[allow(clippy::large_enum_variant)]
#[derive(clap::Subcommand)]
pub enum SsoCommand {
    /// Set up sign-in with an OpenID provider (Okta, Entra ID, Google, Keycloak, …).
    Configure {
        /// The provider's issuer URL.
        #[arg(long)]
        issuer: String,
        /// Warden's client ID at the provider (a public client; see --client-secret-stdin).
        #[arg(long)]
        client_id: String,
        /// Read a client secret from standard input (kept in the OS keychain).
        #[arg(long)]
        client_secret_stdin: bool,
        #[arg(long)]
        scopes: Option<String>,
        /// The ID token claim that lists groups.
        #[arg(long)]
        groups_claim: Option<String>,
        /// GROUP=ROLE: members of GROUP get ROLE (admin, member, or a role for their agents). Repeatable.
        #[arg(long = "map", value_name = "GROUP=ROLE")]
        map: Vec<String>,
        /// amr values that count as MFA (comma separated).
        #[arg(long, value_delimiter = ',')]
        mfa_amr: Vec<String>,
        /// acr values that count as MFA (comma separated).
        #[arg(long, value_delimiter = ',')]
        mfa_acr: Vec<String>,
        /// The sign-in at the provider may be at most this many seconds old.
        #[arg(long)]
        max_age: Option<i64>,
        /// Create people on their first sign-in (as members).
        #[arg(long)]
        create_people: bool,
        /// The claim that names a person in Warden.
        #[arg(long)]
        username_claim: Option<String>,
        /// How often sessions check back with the provider, in seconds (default 300).
        #[arg(long)]
        refresh_secs: Option<i64>,
        /// Accept a Warden authenticator code when the provider's sign-in shows no MFA.
        #[arg(long)]
        totp_fallback: bool,
    },
    /// Show the SSO settings.
    Show,
    /// Link your Warden account to your account at the provider: sign in
    /// there once, and from then on `warden login --sso` signs you in.
    Link {
        #[arg(long)]
        no_browser: bool,
    },
}

pub async fn sso(paths: &Paths, cmd: SsoCommand) -> Result<()> {
    match cmd {
        SsoCommand::Link { no_browser } => {
            let session = stored_session(paths)
                .await?
                .context("sign in with your Warden password first: warden login NAME")?;
            let flow =
                sso_round_trip(paths, Request::SsoLinkStart, no_browser, Some(&session)).await?;
            let Response::Linked(who) =
                call_as(paths, Some(&session), Request::SsoLinkFinish { flow }).await?
            else {
                bail!("unexpected answer")
            };
            println!(
                "Linked to the provider account {}. From now on you can sign in with: warden login --sso\nIf that is not your account, ask an admin to unlink it now (warden user sso-link NAME --unlink).",
                crate::text::safe(&who)
            );
            Ok(())
        }
        SsoCommand::Show => {
            let Response::Sso(cfg) = call(paths, Request::SsoShow).await? else {
                bail!("unexpected answer")
            };
            match cfg {
                Some(c) => println!("{}", serde_json::to_string_pretty(&c)?),
                None => println!("Single sign-on is not set up."),
            }
            Ok(())
        }
        SsoCommand::Configure {
            issuer,
            client_id,
            client_secret_stdin,
            scopes,
            groups_claim,
            map,
            mfa_amr,
            mfa_acr,
            max_age,
            create_people,
            username_claim,
            refresh_secs,
            totp_fallback,
        } => {
            let mut group_roles = std::collections::BTreeMap::new();
            for m in map {
                let Some((g, r)) = m.split_once('=') else {
                    bail!("--map takes GROUP=ROLE, not {m:?}");
                };
                group_roles.insert(g.to_string(), r.to_string());
            }
            let client_secret = if client_secret_stdin {
                Some(read_password(true, "")?)
            } else {
                None
            };
            let mut config: warden_api::SsoConfig = serde_json::from_value(serde_json::json!({
                "issuer": issuer,
                "client_id": client_id,
            }))?;
            if let Some(s) = scopes {
                config.scopes = s;
            }
            if let Some(g) = groups_claim {
                config.groups_claim = g;
            }
            if let Some(u) = username_claim {
                config.username_claim = u;
            }
            if let Some(r) = refresh_secs {
                config.refresh_secs = r.max(1);
            }
            if !mfa_amr.is_empty() {
                config.mfa_amr = mfa_amr;
            }
            config.mfa_acr = mfa_acr;
            config.max_age_secs = max_age;
            config.create_people = create_people;
            config.totp_fallback = totp_fallback;
            config.group_roles = group_roles;
            call(
                paths,
                Request::SsoConfigure {
                    config,
                    client_secret,
                },
            )
            .await?;
            println!("Single sign-on is set up. People sign in with: warden login --sso");
            Ok(())
        }
    }
}
