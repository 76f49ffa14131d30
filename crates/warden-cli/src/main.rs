//! `warden`: the headless gateway and its command line. Each subcommand is
//! one call into warden-api, through the running gateway's control socket
//! when one runs for this data folder, or on the data folder directly.

mod activity;
mod agents;
mod approvals;
mod codes;
mod connect;
mod people;
mod presence;
mod review;
mod roles;
mod secrets;
mod serve;
mod server_auth;
mod servers;
mod settings;
mod sso;
mod text;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use warden_api::{ControlClient, Presence, Request, Response};

#[derive(Parser)]
#[command(
    name = "warden",
    version,
    about = "Warden: a gateway between AI agents and the MCP servers they call"
)]
struct Cli {
    /// Folder for the database, configuration and logs (default: the platform's data folder).
    #[arg(long, global = true, env = "WARDEN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// With a running Warden, approving and changing what agents may do ask
    /// your system to confirm it is you (your password, in the desktop's
    /// prompt or this terminal). With --code, give a code from your
    /// authenticator app instead; it is asked for in the terminal.
    #[arg(long, global = true)]
    code: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Set up a new install: create the first admin (prints the TOTP secret and recovery codes once).
    Init {
        #[arg(long)]
        admin: String,
        /// Read the password from standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        json: bool,
    },
    /// Set up your account with the one-time enrolment code your admin gave
    /// you: choose your password, then add the account to your authenticator
    /// app (the secret and recovery codes are shown to you once).
    Enrol {
        name: String,
        /// Read the setup code and then the password from standard input,
        /// one per line (never from the command line, where any process
        /// on the machine could read the code).
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        json: bool,
    },
    /// Unlock a Warden that started since you last signed in to it: it
    /// opens its records with your password (asked for, or one line of
    /// standard input with --password-stdin).
    Unlock {
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change your password (asks for the current one, then the new one;
    /// with --password-stdin, one per line).
    Passwd {
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set up your authenticator app again (a new phone): a new secret and new
    /// recovery codes; the old ones stop working.
    Reenrol {
        /// Read your password from stdin instead of prompting (it seals the new secret).
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        json: bool,
    },
    /// Make ten new recovery codes (the old ones stop working); asks for your password.
    RecoveryCodes {
        /// Read your password from stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        json: bool,
    },
    /// Sign in; the session is kept in the OS keychain.
    Login {
        /// Your Warden name (not needed with --sso).
        #[arg(required_unless_present = "sso")]
        name: Option<String>,
        /// Sign in with your company's identity provider (opens the browser).
        #[arg(long, conflicts_with = "recovery")]
        sso: bool,
        /// With --sso: print the address to open instead of opening a browser.
        #[arg(long, requires = "sso")]
        no_browser: bool,
        /// Read the password from stdin (and then the code, on the next line). With --sso and
        /// --totp: your Warden password, which unlocks the authenticator when no Warden is running.
        #[arg(long)]
        password_stdin: bool,
        /// Asks for the 6-digit code from your authenticator app (always asked without --sso;
        /// with --sso: use a Warden code when the provider's sign-in had no MFA). Takes no value:
        /// a code on the command line is readable by every program.
        #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "")]
        totp: Option<String>,
        /// Asks for one of your recovery codes instead, if you cannot use the app.
        #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "")]
        recovery: Option<String>,
    },
    /// Sign out and forget the session.
    Logout,
    /// Confirm it is you with a fresh authenticator code: changes that can give power (approving,
    /// adding people, allow grants, agents with roles, secrets, removing servers, pruning the log)
    /// need one from the last 5 minutes.
    Confirm {
        /// The code is always asked for (from the terminal, or stdin's next line); this flag
        /// takes no value.
        #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "")]
        totp: Option<String>,
        /// Read your password from stdin instead of prompting. It is asked only when no Warden is
        /// running: your authenticator secret is sealed with it.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Who is signed in.
    Whoami,
    /// The audit log's integrity.
    #[command(subcommand)]
    Audit(activity::AuditCommand),
    /// The access review: every person and agent, with what to look at.
    Review {
        /// Record that you reviewed it (the next one is due after the review interval).
        #[arg(long)]
        record: bool,
        #[arg(long)]
        json: bool,
    },
    /// Manage people (admins).
    #[command(subcommand)]
    User(people::UserCommand),
    /// Run the gateway in the foreground.
    Serve {
        /// Address to listen on (loopback only), e.g. 127.0.0.1:7411; port 0 picks a free one.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Manage upstream MCP servers.
    #[command(subcommand)]
    Server(servers::ServerCommand),
    /// Single sign-on with your company's identity provider (admins).
    #[command(subcommand)]
    Sso(sso::SsoCommand),
    /// Settings of config.toml that wait for an admin's approval because they loosen what agents get.
    #[command(subcommand)]
    Config(settings::ConfigCommand),
    /// Answer agents' calls that wait for a person. With no subcommand: show requests as they arrive and ask.
    Approvals {
        #[command(subcommand)]
        cmd: Option<approvals::ApprovalsCommand>,
    },
    /// Tools' risk and quarantine (admins).
    #[command(subcommand)]
    Tool(approvals::ToolCommand),
    /// Manage agents (the identities MCP clients use).
    #[command(subcommand)]
    Agent(agents::AgentCommand),
    /// Manage roles (sets of grants agents can hold).
    #[command(subcommand)]
    Role(roles::RoleCommand),
    /// Let ROLE use tools matching PATTERN on SERVER: allow, ask or deny.
    Grant {
        role: String,
        /// A server name, or * for every server.
        server: String,
        /// A tool name; * and ? are wildcards (prompt:NAME and resource:URI for prompts and resources).
        pattern: String,
        effect: String,
        /// With allow: high-risk tools matching a wildcard run without asking a person
        /// (a grant naming one tool exactly always does; critical tools always ask).
        #[arg(long)]
        explicit: bool,
    },
    /// Remove a grant from a role.
    RevokeGrant {
        role: String,
        server: String,
        pattern: String,
    },
    /// Keep secrets (API keys, tokens) in the OS keychain for servers to use as keychain:NAME.
    #[command(subcommand)]
    Secret(secrets::SecretCommand),
    /// Relay stdio to the gateway as AGENT, for clients that only launch stdio servers.
    Connect { agent: String },
    /// Show recent activity, newest first.
    Log {
        #[command(flatten)]
        filter: activity::LogArgs,
        /// Show rows older than this id (the next page).
        #[arg(long)]
        before: Option<i64>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
}

pub use warden_api::runtime::Paths;

fn main() {
    // Before anything secret is read: no other process of this user may
    // trace this one or read its memory.
    if let Err(e) = warden_auth::process::harden() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: could not start: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(async {
        match run(cli).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e:#}");
                1
            }
        }
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    std::process::exit(code);
}

async fn run(cli: Cli) -> Result<()> {
    let paths = Paths::resolve(cli.data_dir)?;
    presence::ask_for_code(cli.code);
    match cli.command {
        Command::Serve { listen } => serve::run(&paths, listen).await,
        Command::Connect { agent } => connect::run(&paths, &agent).await,
        Command::Server(cmd) => servers::server(&paths, cmd).await,
        Command::Approvals { cmd } => approvals::run(&paths, cmd).await,
        Command::Confirm {
            totp,
            password_stdin,
        } => people::confirm(&paths, totp, password_stdin).await,
        Command::Tool(cmd) => approvals::tool(&paths, cmd).await,
        Command::Agent(cmd) => agents::agent(&paths, cmd).await,
        Command::Init {
            admin,
            password_stdin,
            json,
        } => people::init(&paths, admin, password_stdin, json).await,
        Command::Login {
            sso: true,
            no_browser,
            totp,
            password_stdin,
            ..
        } => sso::login_sso(&paths, no_browser, totp, password_stdin).await,
        Command::Login {
            name,
            password_stdin,
            totp,
            recovery,
            ..
        } => {
            people::login(
                &paths,
                name.unwrap_or_default(),
                password_stdin,
                totp,
                recovery,
            )
            .await
        }
        Command::Enrol {
            name,
            password_stdin,
            json,
        } => people::enrol(&paths, name, password_stdin, json).await,
        Command::Passwd { password_stdin } => people::passwd(&paths, password_stdin).await,
        Command::Unlock { password_stdin } => people::unlock(&paths, password_stdin).await,
        Command::Reenrol {
            password_stdin,
            json,
        } => people::reenrol(&paths, password_stdin, json).await,
        Command::RecoveryCodes {
            password_stdin,
            json,
        } => people::recovery_codes(&paths, password_stdin, json).await,
        Command::Sso(cmd) => sso::sso(&paths, cmd).await,
        Command::Config(cmd) => settings::config(&paths, cmd).await,
        Command::Logout => people::logout(&paths).await,
        Command::Whoami => people::whoami(&paths).await,
        Command::Audit(cmd) => activity::audit(&paths, cmd).await,
        Command::Review { record, json } => review::run(&paths, record, json).await,
        Command::User(cmd) => people::user(&paths, cmd).await,
        Command::Role(cmd) => roles::role(&paths, cmd).await,
        Command::Grant {
            role,
            server,
            pattern,
            effect,
            explicit,
        } => roles::grant(&paths, role, server, pattern, effect, explicit).await,
        Command::RevokeGrant {
            role,
            server,
            pattern,
        } => roles::revoke_grant(&paths, role, server, pattern).await,
        Command::Secret(cmd) => secrets::secret(&paths, cmd).await,
        Command::Log {
            filter,
            before,
            limit,
            json,
        } => activity::log(&paths, filter, before, limit, json).await,
    }
}

/// One API call as the signed-in person: through the running gateway if
/// there is one, else on the data folder directly.
async fn call(paths: &Paths, req: Request) -> Result<Response> {
    let session = people::stored_session(paths).await?;
    call_as(paths, session.as_ref(), req).await
}

async fn call_as(
    paths: &Paths,
    session: Option<&warden_auth::Sensitive<String>>,
    req: Request,
) -> Result<Response> {
    let result = match ControlClient::connect(&paths.data_dir).await {
        Some(client) => {
            // The running Warden asks for proof of presence with approvals
            // and changes of policy; in a terminal, the system's password
            // prompt appears here.
            let proof = presence::for_request(&req)?;
            let _agent = match proof {
                Some(Presence::System) => presence::TextAgent::start(),
                _ => None,
            };
            client.call(session, req, proof).await
        }
        None => {
            let api = paths.open_api(None)?;
            // This process opens the records itself: it needs the vault
            // key, which only your password opens.
            // A provider's sign-in brings no password of ours: the person
            // signed in on this CLI unlocks the records for it.
            let stored = match (&req, session) {
                (Request::SsoLoginFinish { .. }, None) => people::stored_session(paths).await?,
                _ => None,
            };
            let unlock_as = session.or(stored.as_ref());
            if let Some(token) =
                unlock_as.filter(|_| people::needs_unlock(&req) && !api.store().vault().is_open())
            {
                people::unlock_here(&api, token).await?;
            }
            let answer = api.call(session, req).await;
            // What this run wrote (refusals included) is covered by a signed
            // checkpoint before the process ends.
            if let Err(e) = api.checkpoint_now().await {
                eprintln!(
                    "warning: the activity this command wrote could not be checkpointed ({}); `warden audit verify` cannot tell if it is later cut off",
                    e.message
                );
            }
            answer
        }
    };
    result.map_err(|e| anyhow::anyhow!(e.message))
}
