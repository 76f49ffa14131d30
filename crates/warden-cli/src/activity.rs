//! `warden log` and `warden audit …`: the activity log: reading it (the
//! filters `log` and `audit export` share), exporting and pruning it, and
//! verifying its integrity.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use warden_api::{Request, Response};

use crate::{Paths, call, people, text};

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

// Parsed once per run; boxing the filter would only complicate clap.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum AuditCommand {
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

pub async fn audit(paths: &Paths, cmd: AuditCommand) -> Result<()> {
    match cmd {
        AuditCommand::Export {
            format,
            filter,
            output,
        } => {
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
            let session = people::stored_session(paths).await?;
            let api = paths.open_api(None)?;
            // The export reads the files itself (streaming them through the
            // control socket would only copy them twice): it unlocks them
            // with your password, running Warden or not.
            if let Some(token) = &session {
                people::unlock_here(&api, token).await?;
            }
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
        AuditCommand::Prune {
            older_than_days,
            keep_rows,
        } => {
            let Response::Pruned(n) = call(
                paths,
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
        AuditCommand::Verify { json } => {
            let Response::Verification(v) = call(paths, Request::AuditVerify).await? else {
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
    }
}

pub async fn log(
    paths: &Paths,
    filter: LogArgs,
    before: Option<i64>,
    limit: usize,
    json: bool,
) -> Result<()> {
    let filter = filter.filter(before)?;
    let Response::Log(rows) = call(paths, Request::Log { filter, limit }).await? else {
        bail!("unexpected answer")
    };
    if json {
        for r in &rows {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        for r in rows.iter().rev() {
            let e = &r.event;
            let when =
                time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.time_us) * 1000)
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
