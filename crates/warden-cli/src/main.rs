//! `warden`: the headless gateway and its command line. Each subcommand is
//! one call into warden-api, through the running gateway's control socket
//! when one runs for this data folder, or on the data folder directly.

mod approvals;
mod connect;
mod people;
mod serve;
mod text;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use warden_api::{ControlClient, Request, Response};
use warden_gateway::config::ServerSpec;

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
    /// Change your password (asks for the current one, then the new one;
    /// with --password-stdin, one per line).
    Passwd {
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set up your authenticator app again (a new phone): a new secret and new
    /// recovery codes; the old ones stop working.
    Reenrol {
        #[arg(long)]
        json: bool,
    },
    /// Sign in; the session is kept in the OS keychain.
    Login {
        /// Your Warden name (not needed with --sso).
        #[arg(required_unless_present = "sso")]
        name: Option<String>,
        /// Sign in with your company's identity provider (opens the browser).
        #[arg(long, conflicts_with_all = ["password_stdin", "recovery"])]
        sso: bool,
        /// With --sso: print the address to open instead of opening a browser.
        #[arg(long, requires = "sso")]
        no_browser: bool,
        #[arg(long)]
        password_stdin: bool,
        /// The 6-digit code from your authenticator app.
        #[arg(long)]
        totp: Option<String>,
        /// One of your recovery codes, if you cannot use the app.
        #[arg(long)]
        recovery: Option<String>,
    },
    /// Sign out and forget the session.
    Logout,
    /// Confirm it is you with a fresh authenticator code: changes that can give power (approving,
    /// adding people, allow grants, agents with roles, secrets, removing servers, pruning the log)
    /// need one from the last 5 minutes.
    Confirm {
        #[arg(long)]
        totp: Option<String>,
    },
    /// Who is signed in.
    Whoami,
    /// The audit log's integrity.
    #[command(subcommand)]
    Audit(AuditCommand),
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
    Server(ServerCommand),
    /// Single sign-on with your company's identity provider (admins).
    #[command(subcommand)]
    Sso(people::SsoCommand),
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
    Agent(AgentCommand),
    /// Manage roles (sets of grants agents can hold).
    #[command(subcommand)]
    Role(RoleCommand),
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
    Secret(SecretCommand),
    /// Relay stdio to the gateway as AGENT, for clients that only launch stdio servers.
    Connect { agent: String },
    /// Show recent activity, newest first.
    Log {
        #[command(flatten)]
        filter: LogArgs,
        /// Show rows older than this id (the next page).
        #[arg(long)]
        before: Option<i64>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
}

/// Filters shared by `log` and `audit export`.
#[derive(clap::Args, Clone, Default)]
pub struct LogArgs {
    /// Only this person's activity and their agents' (admins).
    #[arg(long)]
    person: Option<String>,
    #[arg(long)]
    agent: Option<String>,
    #[arg(long)]
    server: Option<String>,
    #[arg(long)]
    tool: Option<String>,
    /// An event kind, e.g. tool_call.requested or agent.created.
    #[arg(long)]
    kind: Option<String>,
    /// allow, ask or deny.
    #[arg(long)]
    decision: Option<String>,
    #[arg(long)]
    risk: Option<String>,
    /// From this date or time (YYYY-MM-DD or RFC 3339, UTC).
    #[arg(long)]
    since: Option<String>,
    /// Until this date or time (exclusive).
    #[arg(long)]
    until: Option<String>,
    /// Words to find in tool names and arguments.
    #[arg(long)]
    search: Option<String>,
}

fn parse_when(text: &str) -> Result<i64> {
    use time::format_description::well_known::Rfc3339;
    let t = time::OffsetDateTime::parse(text, &Rfc3339).or_else(|_| {
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(text, &fmt).map(|d| d.midnight().assume_utc())
    });
    let t = t.map_err(|_| {
        anyhow::anyhow!(
            "{text:?} is not a date: use YYYY-MM-DD or a time like 2026-11-27T10:00:00Z"
        )
    })?;
    Ok((t.unix_timestamp_nanos() / 1000) as i64)
}

impl LogArgs {
    fn filter(self, before: Option<i64>) -> Result<warden_api::LogFilter> {
        Ok(warden_api::LogFilter {
            person: self.person,
            agent: self.agent,
            server: self.server,
            tool: self.tool,
            kind: self.kind,
            decision: self.decision,
            risk: self.risk,
            since_us: self.since.as_deref().map(parse_when).transpose()?,
            until_us: self.until.as_deref().map(parse_when).transpose()?,
            search: self.search,
            before_id: before,
        })
    }
}

#[derive(Subcommand)]
enum ServerCommand {
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
    /// Review and approve the exact command of a local server (needed after it changed).
    Consent {
        name: String,
        /// A fresh code from your authenticator app.
        #[arg(long)]
        totp: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

// Parsed once per run; boxing the filter would only complicate clap.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain and the signed checkpoints; name the first row where tampering shows.
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Remove old activity now, leaving a signed anchor so the rest verifies.
    Prune {
        /// Remove rows older than this many days.
        #[arg(long = "older-than")]
        older_than_days: Option<u32>,
        /// Keep only the newest N rows.
        #[arg(long)]
        keep_rows: Option<i64>,
    },
    /// Export activity (streamed, any size) as CSV or JSON Lines.
    Export {
        #[arg(long, value_parser = ["csv", "jsonl"])]
        format: String,
        #[command(flatten)]
        filter: LogArgs,
        /// The file to write.
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
    },
}

#[derive(Subcommand)]
enum RoleCommand {
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

#[derive(Subcommand)]
enum SecretCommand {
    /// Store a secret; the value is read from standard input, never from the command line.
    Set {
        name: String,
    },
    Remove {
        name: String,
    },
}

#[derive(Subcommand)]
enum AgentCommand {
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
    match cli.command {
        Command::Serve { listen } => serve::run(&paths, listen).await,
        Command::Connect { agent } => connect::run(&paths, &agent).await,
        Command::Server(cmd) => server(&paths, cmd).await,
        Command::Approvals { cmd } => approvals::run(&paths, cmd).await,
        Command::Confirm { totp } => {
            let totp = match totp {
                Some(t) => t,
                None => {
                    print!("Current code from your authenticator app: ");
                    std::io::Write::flush(&mut std::io::stdout())?;
                    let mut code = String::new();
                    std::io::stdin().read_line(&mut code)?;
                    code.trim().to_string()
                }
            };
            call(&paths, Request::Confirm { totp }).await?;
            println!("Confirmed for the next 5 minutes.");
            Ok(())
        }
        Command::Tool(cmd) => approvals::tool(&paths, cmd).await,
        Command::Agent(cmd) => agent(&paths, cmd).await,
        Command::Init {
            admin,
            password_stdin,
            json,
        } => people::init(&paths, admin, password_stdin, json).await,
        Command::Login {
            sso: true,
            no_browser,
            totp,
            ..
        } => people::login_sso(&paths, no_browser, totp).await,
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
        Command::Reenrol { json } => people::reenrol(&paths, json).await,
        Command::Sso(cmd) => people::sso(&paths, cmd).await,
        Command::Logout => people::logout(&paths).await,
        Command::Whoami => people::whoami(&paths).await,
        Command::Audit(AuditCommand::Export {
            format,
            filter,
            output,
        }) => {
            let format = if format == "csv" {
                warden_api::ExportFormat::Csv
            } else {
                warden_api::ExportFormat::Jsonl
            };
            let filter = filter.filter(None)?;
            // Everyone's activity, for an admin: readable by this user only.
            let file = warden_store::private::create_file(
                &output,
                warden_store::private::Existing::Replace,
            )
            .with_context(|| format!("could not create {}", output.display()))?;
            let session = people::stored_session(&paths).await?;
            let api = paths.open_api(None)?;
            let progress = Box::new(|done: u64, total: u64| {
                eprint!("\rexported {done} of {total} rows");
                if done == total {
                    eprintln!();
                }
            });
            let rows = api
                .export(session.as_ref(), filter, format, Box::new(file), progress)
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?;
            println!("Wrote {rows} rows to {}.", output.display());
            Ok(())
        }
        Command::Audit(AuditCommand::Prune {
            older_than_days,
            keep_rows,
        }) => {
            let Response::Pruned(n) = call(
                &paths,
                Request::AuditPrune {
                    older_than_days,
                    keep_rows,
                },
            )
            .await?
            else {
                bail!("unexpected answer")
            };
            println!("Removed {n} rows; a signed anchor keeps the rest verifiable.");
            Ok(())
        }
        Command::Audit(AuditCommand::Verify { json }) => {
            let Response::Verification(v) = call(&paths, Request::AuditVerify).await? else {
                bail!("unexpected answer")
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            }
            match &v.problem {
                None => {
                    if !json {
                        println!(
                            "The activity log is intact: {} rows, {} signed checkpoints.",
                            v.rows, v.checkpoints
                        );
                    }
                    Ok(())
                }
                Some(p) => bail!(
                    "the activity log was tampered with{}: {}",
                    p.row_id.map(|r| format!(" at row {r}")).unwrap_or_default(),
                    p.what
                ),
            }
        }
        Command::Review { record, json } => {
            let Response::Review(r) = call(&paths, Request::Review { record }).await? else {
                bail!("unexpected answer")
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
                return Ok(());
            }
            let date = |us: Option<i64>| {
                us.and_then(|u| time::OffsetDateTime::from_unix_timestamp(u / 1_000_000).ok())
                    .map(|t| t.date().to_string())
                    .unwrap_or_else(|| "never".into())
            };
            println!("People");
            for p in &r.people {
                println!(
                    "  {:<20} {:<7} {:<9} last sign-in {:<12} {} agents",
                    p.name,
                    p.role,
                    p.status,
                    date(p.last_login_us),
                    p.agents
                );
            }
            println!("Agents");
            for a in &r.agents {
                println!(
                    "  {:<20} owner {:<12} {:<10} roles {:<20} last used {:<12} expires {:<12} {}",
                    a.name,
                    a.owner.as_deref().unwrap_or("(none)"),
                    format!("{:?}", a.status).to_lowercase(),
                    a.roles.join(","),
                    date(a.last_used_us),
                    date(a.expires_at_us),
                    if a.flags.is_empty() {
                        String::new()
                    } else {
                        format!("⚑ {}", a.flags.join(", "))
                    }
                );
            }
            for n in &r.notes {
                println!("note: {n}");
            }
            if r.due {
                println!(
                    "\nA review is due (every {} days; last: {}). When done: warden review --record",
                    r.interval_days,
                    date(r.last_review_at_us)
                );
            } else {
                println!("\nLast review: {}.", date(r.last_review_at_us));
            }
            Ok(())
        }
        Command::User(cmd) => people::user(&paths, cmd).await,
        Command::Role(RoleCommand::Add { name, description }) => {
            call(
                &paths,
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
        Command::Role(RoleCommand::List { json }) => {
            let Response::Roles(roles) = call(&paths, Request::RoleList).await? else {
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
        Command::Role(RoleCommand::Remove { name }) => {
            call(&paths, Request::RoleRemove { name: name.clone() }).await?;
            println!("Removed role {name}.");
            Ok(())
        }
        Command::Grant {
            role,
            server,
            pattern,
            effect,
            explicit,
        } => {
            call(
                &paths,
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
        Command::RevokeGrant {
            role,
            server,
            pattern,
        } => {
            call(
                &paths,
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
        Command::Secret(SecretCommand::Set { name }) => {
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
                &paths,
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
        Command::Secret(SecretCommand::Remove { name }) => {
            call(&paths, Request::SecretRemove { name: name.clone() }).await?;
            println!("Removed secret {name} from the keychain.");
            Ok(())
        }
        Command::Log {
            filter,
            before,
            limit,
            json,
        } => {
            let filter = filter.filter(before)?;
            let Response::Log(rows) = call(&paths, Request::Log { filter, limit }).await? else {
                bail!("unexpected answer")
            };
            if json {
                for r in &rows {
                    println!("{}", serde_json::to_string(r)?);
                }
            } else {
                for r in rows.iter().rev() {
                    let e = &r.event;
                    let when = time::OffsetDateTime::from_unix_timestamp_nanos(
                        i128::from(r.time_us) * 1000,
                    )
                    .ok()
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_default();
                    println!(
                        "{when}  {:<22} agent={} server={} tool={} {}{}",
                        text::safe(&e.kind),
                        text::safe(e.agent.as_deref().unwrap_or("-")),
                        text::safe(e.server.as_deref().unwrap_or("-")),
                        text::safe(e.tool.as_deref().unwrap_or("-")),
                        e.outcome
                            .as_deref()
                            .map(|o| format!("outcome={} ", text::safe(o)))
                            .unwrap_or_default(),
                        e.latency_us
                            .map(|l| format!("{:.1}ms", l as f64 / 1000.0))
                            .unwrap_or_default(),
                    );
                }
            }
            Ok(())
        }
    }
}

/// One API call: through the running gateway if there is one, else locally.
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
        Some(client) => client.call(session, req).await,
        None => {
            let api = paths.open_api(None)?;
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

async fn server(paths: &Paths, cmd: ServerCommand) -> Result<()> {
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
        ServerCommand::Logout { name } => {
            call(paths, Request::ServerLogout { name: name.clone() }).await?;
            println!("Signed out of {name}; its tokens are gone from the keychain.");
            Ok(())
        }
        ServerCommand::Auth { json } => {
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
        ServerCommand::Probe { name, json } => {
            let Response::Probe(report) =
                call(paths, Request::ServerProbe { name: name.clone() }).await?
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
            println!("Server {name} runs this command:\n\n  {}\n", c.command_line);
            if c.approved {
                println!(
                    "An admin ({}) already approved exactly this command.",
                    c.approved_by.as_deref().unwrap_or("?")
                );
                return Ok(());
            }
            if !yes {
                print!("Allow Warden to run it? [y/N] ");
                std::io::Write::flush(&mut std::io::stdout())?;
                let mut answer = String::new();
                std::io::stdin().read_line(&mut answer)?;
                if !matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
                    println!("Not approved; {name} stays stopped.");
                    return Ok(());
                }
            }
            let totp = match totp {
                Some(t) => t,
                None => {
                    print!("Current code from your authenticator app: ");
                    std::io::Write::flush(&mut std::io::stdout())?;
                    let mut code = String::new();
                    std::io::stdin().read_line(&mut code)?;
                    code.trim().to_string()
                }
            };
            call(
                paths,
                Request::ServerConsent {
                    name: name.clone(),
                    hash: Some(c.hash),
                    totp: Some(totp),
                },
            )
            .await?;
            println!("Approved; {name} starts now with this command.");
            Ok(())
        }
    }
}

async fn agent(paths: &Paths, cmd: AgentCommand) -> Result<()> {
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
