//! `warden init`, `enrol`, `passwd`, `reenrol`, `login`, `logout`, `whoami`,
//! `confirm` and `user …`. The CLI's session token lives in the OS keychain,
//! never in a file. Single sign-on is in `sso.rs`.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use warden_api::{Enrollment, Invitation, Request, Response};
use warden_auth::{Clock, Keychain, Sensitive};

use crate::{Paths, call, call_as};

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a person: prints a one-time enrolment code to hand them; they
    /// choose their own password and set up their own authenticator with it.
    Add {
        name: String,
        #[arg(long)]
        admin: bool,
        /// A role this person may give the agents they create (repeatable).
        #[arg(long = "agent-role")]
        agent_roles: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    /// Disable a person: their sessions end and all their agents are suspended.
    Disable {
        name: String,
    },
    /// A new enrolment code for someone who lost their authenticator or
    /// password: what they had stops working and their sessions end.
    Reset {
        name: String,
        #[arg(long)]
        json: bool,
    },
    Enable {
        name: String,
    },
    Remove {
        name: String,
    },
    /// Let a person give ROLE to the agents they create.
    AllowRole {
        name: String,
        role: String,
    },
    /// Link a person to one account at the identity provider (the subject a
    /// refused sign-in's log row shows), or unlink them.
    SsoLink {
        name: String,
        /// ISSUER|SUBJECT, or the subject alone for the configured provider.
        #[arg(long, required_unless_present = "unlink", conflicts_with = "unlink")]
        subject: Option<String>,
        #[arg(long)]
        unlink: bool,
    },
}

pub fn session_account(paths: &Paths) -> Result<String> {
    let store = warden_store::Store::open(&paths.db)?;
    Ok(format!("{}/cli-session", store.install_id()?))
}

pub async fn stored_session(paths: &Paths) -> Result<Option<Sensitive<String>>> {
    let account = session_account(paths)?;
    tokio::task::spawn_blocking(move || Keychain::default().get(&account))
        .await?
        .map_err(|e| anyhow::anyhow!("{e}"))
}

pub fn read_password(from_stdin: bool, prompt: &str) -> Result<Sensitive<String>> {
    let pw = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("could not read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        rpassword::prompt_password(prompt).context(
            "could not read the password (use --password-stdin when there is no terminal)",
        )?
    };
    Ok(Sensitive::new(pw))
}

fn print_enrollment(e: &Enrollment, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(e)?);
        return Ok(());
    }
    println!("{} ({}) is ready.\n", e.user.name, e.user.role);
    println!("Add this account to an authenticator app (shown once):");
    println!("  secret: {}", e.totp_secret.expose());
    println!("  or the link: {}\n", e.otpauth_uri.expose());
    println!("Recovery codes, each usable once if the app is lost (shown once; keep them safe):");
    for c in &e.recovery_codes {
        println!("  {}", c.expose());
    }
    println!("\nThen sign in: warden login {}", e.user.name);
    Ok(())
}

fn print_invitation(i: &Invitation, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(i)?);
        return Ok(());
    }
    let hours = (i.expires_s - warden_auth::SystemClock.now()).max(0) / 3600;
    println!(
        "{} ({}) can now set up their account. Give them this one-time code, in person or over a channel you trust (it works once, for {hours} hours):\n",
        i.user.name, i.user.role
    );
    println!("  {}\n", i.code.expose());
    println!(
        "They run `warden enrol {}` (or choose \"Set up my account\" in the app), pick their own password and add Warden to their authenticator app. You never see either.",
        i.user.name
    );
    Ok(())
}

pub async fn enrol(paths: &Paths, name: String, password_stdin: bool, json: bool) -> Result<()> {
    let code = if password_stdin {
        read_password(true, "")?
    } else {
        read_password(false, "Setup code from your admin: ")?
    };
    let password = if password_stdin {
        read_password(true, "")?
    } else {
        let first = read_password(false, "Choose a password: ")?;
        let again = read_password(false, "The same password again: ")?;
        if first.expose() != again.expose() {
            bail!("the two passwords differ; nothing was changed, run `warden enrol {name}` again");
        }
        first
    };
    let req = Request::Enrol {
        name,
        code,
        password,
    };
    let Response::Enrolled(e) = call_as(paths, None, req).await? else {
        bail!("unexpected answer")
    };
    print_enrollment(&e, json)
}

pub async fn passwd(paths: &Paths, password_stdin: bool) -> Result<()> {
    let (current, new) = if password_stdin {
        (read_password(true, "")?, read_password(true, "")?)
    } else {
        let current = read_password(false, "Current password: ")?;
        let new = read_password(false, "New password: ")?;
        let again = read_password(false, "The new password again: ")?;
        if new.expose() != again.expose() {
            bail!("the two new passwords differ; your password was not changed");
        }
        (current, new)
    };
    call(paths, Request::PasswordChange { current, new }).await?;
    println!("Your password is changed.");
    Ok(())
}

pub async fn reenrol(paths: &Paths, password_stdin: bool, json: bool) -> Result<()> {
    let password = read_password(password_stdin, "Your password: ")?;
    let Response::Enrolled(e) = call(paths, Request::TotpReenrol { password }).await? else {
        bail!("unexpected answer")
    };
    print_enrollment(&e, json)
}

pub async fn recovery_codes(paths: &Paths, password_stdin: bool, json: bool) -> Result<()> {
    let password = read_password(password_stdin, "Your password: ")?;
    let Response::RecoveryCodes(codes) = call(paths, Request::RecoveryRenew { password }).await?
    else {
        bail!("unexpected answer")
    };
    if json {
        let codes: Vec<&String> = codes.iter().map(|c| c.expose()).collect();
        println!("{}", serde_json::to_string_pretty(&codes)?);
        return Ok(());
    }
    println!(
        "New recovery codes, each usable once (shown once; keep them safe). The old ones no longer work:"
    );
    for c in &codes {
        println!("  {}", c.expose());
    }
    Ok(())
}

pub async fn init(paths: &Paths, admin: String, password_stdin: bool, json: bool) -> Result<()> {
    let password = read_password(password_stdin, "Password for the new admin: ")?;
    let Response::Enrolled(e) = call_as(paths, None, Request::Init { admin, password }).await?
    else {
        bail!("unexpected answer")
    };
    print_enrollment(&e, json)
}

pub async fn login(
    paths: &Paths,
    name: String,
    password_stdin: bool,
    totp: Option<String>,
    recovery: Option<String>,
) -> Result<()> {
    crate::codes::refuse_on_command_line("--totp", totp.as_deref())?;
    crate::codes::refuse_on_command_line("--recovery", recovery.as_deref())?;
    let password = read_password(password_stdin, "Password: ")?;
    let (totp, recovery) = if recovery.is_some() {
        (None, Some(crate::codes::read_code("Recovery code: ")?))
    } else {
        (
            Some(crate::codes::read_code(
                "Code from your authenticator app: ",
            )?),
            None,
        )
    };
    let req = Request::Login {
        name,
        password,
        totp,
        recovery: recovery.map(Sensitive::new),
    };
    let Response::SignedIn(signed) = call_as(paths, None, req).await? else {
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

pub async fn logout(paths: &Paths) -> Result<()> {
    if stored_session(paths).await?.is_some() {
        let _ = call(paths, Request::Logout).await;
    }
    let account = session_account(paths)?;
    tokio::task::spawn_blocking(move || Keychain::default().delete(&account))
        .await?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("Signed out.");
    Ok(())
}

/// Whether a request, run on the data folder by this process, needs the
/// vault key first (all but those that bring a password or code of their
/// own and open it themselves).
pub fn needs_unlock(req: &Request) -> bool {
    !matches!(
        req,
        Request::Init { .. }
            | Request::Login { .. }
            | Request::Enrol { .. }
            | Request::Unlock { .. }
            | Request::SsoLoginStart
    )
}

/// Unlocks the records this process opened itself: with the signed-in
/// person's password, asked for in a terminal, else the next line of
/// standard input. A person who signs in only through the identity
/// provider has no password that does it: then someone who has one (a
/// name, then their password) unlocks for them.
pub async fn unlock_here(api: &warden_api::Api, session: &Sensitive<String>) -> Result<()> {
    use std::io::IsTerminal;
    let tty = std::io::stdin().is_terminal();
    let own = api
        .session_can_unlock(session)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    // One command may open the records more than once (a sign-in at the
    // provider has two steps): what was typed is asked for once.
    let given = UNLOCKED_WITH
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let (name, pw) = match given {
        Some(g) => g,
        None if own => {
            if tty {
                eprintln!(
                    "This command opens Warden's records itself; your password unlocks them."
                );
            }
            (None, read_password(!tty, "Your password: ")?)
        }
        None => {
            if tty {
                eprintln!(
                    "This command opens Warden's records itself, and you sign in only through your provider: a person with a Warden password unlocks them."
                );
            }
            let name = read_line(tty, "Their name: ")?;
            (Some(name), read_password(!tty, "Their password: ")?)
        }
    };
    let done = match &name {
        None => api.unlock(session, pw.clone(), false).await.map(|_| ()),
        Some(n) => api.unlock_person(n, pw.clone(), false).await.map(|_| ()),
    };
    done.map_err(|e| anyhow::anyhow!(e.message))?;
    *UNLOCKED_WITH
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((name, pw));
    Ok(())
}

/// What unlocked the records in this process, for its next opening of them.
static UNLOCKED_WITH: std::sync::Mutex<Option<(Option<String>, Sensitive<String>)>> =
    std::sync::Mutex::new(None);

fn read_line(tty: bool, prompt: &str) -> Result<String> {
    if tty {
        eprint!("{prompt}");
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("could not read a name from standard input")?;
    Ok(line.trim().to_string())
}

pub async fn unlock(paths: &Paths, password_stdin: bool) -> Result<()> {
    let password = read_password(password_stdin, "Your password: ")?;
    let Response::Me(me) = call(paths, Request::Unlock { password }).await? else {
        bail!("unexpected answer")
    };
    println!("Warden is unlocked ({} signed in).", me.name);
    Ok(())
}

pub async fn whoami(paths: &Paths) -> Result<()> {
    let Response::Me(me) = call(paths, Request::Whoami).await? else {
        bail!("unexpected answer")
    };
    println!("{} ({})", me.name, me.role);
    Ok(())
}

pub async fn confirm(paths: &Paths, totp: Option<String>, password_stdin: bool) -> Result<()> {
    // A running Warden opened the authenticator secret when you signed in
    // through it; this process on its own has to open it with your password.
    let running = warden_api::ControlClient::connect(&paths.data_dir)
        .await
        .is_some();
    crate::codes::refuse_on_command_line("--totp", totp.as_deref())?;
    let password = if running && !password_stdin {
        None
    } else {
        Some(read_password(password_stdin, "Your password: ")?)
    };
    let totp = crate::codes::read_code("Current code from your authenticator app: ")?;
    call(paths, Request::Confirm { totp, password }).await?;
    println!("Confirmed for the next 5 minutes.");
    Ok(())
}

pub async fn user(paths: &Paths, cmd: UserCommand) -> Result<()> {
    match cmd {
        UserCommand::Add {
            name,
            admin,
            agent_roles,
            json,
        } => {
            let req = Request::UserAdd {
                name,
                admin,
                agent_roles,
            };
            let Response::Invited(i) = call(paths, req).await? else {
                bail!("unexpected answer")
            };
            print_invitation(&i, json)
        }
        UserCommand::Reset { name, json } => {
            let Response::Invited(i) = call(paths, Request::UserReset { name }).await? else {
                bail!("unexpected answer")
            };
            print_invitation(&i, json)
        }
        UserCommand::List { json } => {
            let Response::Users(users) = call(paths, Request::UserList).await? else {
                bail!("unexpected answer")
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                for u in users {
                    println!("{:<24} {:<7} {}", u.name, u.role, u.status);
                }
            }
            Ok(())
        }
        UserCommand::Disable { name } => {
            call(paths, Request::UserDisable { name: name.clone() }).await?;
            println!("Disabled {name}: their sessions ended and their agents are suspended.");
            Ok(())
        }
        UserCommand::Enable { name } => {
            call(paths, Request::UserEnable { name: name.clone() }).await?;
            println!("Enabled {name}; their suspended agents are active again.");
            Ok(())
        }
        UserCommand::Remove { name } => {
            call(paths, Request::UserRemove { name: name.clone() }).await?;
            println!("Removed {name}; their agents are suspended.");
            Ok(())
        }
        UserCommand::AllowRole { name, role } => {
            let req = Request::UserAllowRole {
                name: name.clone(),
                role: role.clone(),
            };
            call(paths, req).await?;
            println!("{name} may now give their agents the role {role}.");
            Ok(())
        }
        UserCommand::SsoLink {
            name,
            subject,
            unlink: _,
        } => {
            let linking = subject.is_some();
            let req = Request::UserSsoBind {
                name: name.clone(),
                subject,
            };
            call(paths, req).await?;
            if linking {
                println!("{name} now signs in with that provider account.");
            } else {
                println!("{name} is no longer linked to a provider account.");
            }
            Ok(())
        }
    }
}
