//! Reading the activity log: the filters the views use (a member sees only
//! their own), day counts, and streaming exports.

use serde::{Deserialize, Serialize};
use warden_auth::Sensitive;
use warden_store::users::User;
use warden_store::{ActivityFilter, ActivityLog, NewEvent};

use crate::{Api, ApiError, ApiResult, ErrorCode, Response, blocking, export};

/// What the activity views filter on. A member's view is always limited to
/// their own activity and their agents'.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ts_rs::TS)]
pub struct LogFilter {
    pub person: Option<String>,
    pub agent: Option<String>,
    pub server: Option<String>,
    pub tool: Option<String>,
    pub kind: Option<String>,
    pub decision: Option<String>,
    pub risk: Option<String>,
    pub since_us: Option<i64>,
    pub until_us: Option<i64>,
    pub search: Option<String>,
    pub before_id: Option<i64>,
}

impl LogFilter {
    /// The store filter for `actor`: members see only their own.
    pub(crate) fn for_actor(self, actor: &User, limit: usize) -> ActivityFilter {
        let person = if actor.role == "admin" {
            self.person
        } else {
            Some(actor.name.clone())
        };
        ActivityFilter {
            person,
            agent: self.agent,
            server: self.server,
            tool: self.tool,
            kind: self.kind,
            decision: self.decision,
            risk: self.risk,
            since_us: self.since_us,
            until_us: self.until_us,
            search: self.search,
            before_id: self.before_id,
            limit,
        }
    }
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

impl Api {
    /// Writes every matching row to `out`, oldest first, streamed (nothing is
    /// loaded whole). `progress(done, total)` is called as it goes. Needs a
    /// session; a member exports only their own activity.
    pub async fn export(
        &self,
        session: Option<&Sensitive<String>>,
        filter: LogFilter,
        format: ExportFormat,
        out: Box<dyn std::io::Write + Send>,
        progress: Box<dyn Fn(u64, u64) + Send>,
    ) -> ApiResult<u64> {
        let token = session.ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthenticated,
                "sign in first: `warden login NAME`",
            )
        })?;
        let actor = self.session_user(token).await?;
        let filter = filter.for_actor(&actor, 0);
        let store = self.store.clone();
        let written = blocking(move || {
            let conn = store.connect()?;
            let total = ActivityLog::count(&conn, &filter)? as u64;
            let mut out = std::io::BufWriter::new(out);
            use std::io::Write;
            let mut done = 0u64;
            if format == ExportFormat::Csv {
                writeln!(out, "{}", export::CSV_HEADER).map_err(export::io_error)?;
            }
            let n = ActivityLog::for_each(&conn, &filter, |row| {
                match format {
                    ExportFormat::Csv => export::write_csv_row(&mut out, &row)?,
                    ExportFormat::Jsonl => {
                        serde_json::to_writer(&mut out, &row)?;
                        out.write_all(b"\n")?;
                    }
                }
                done += 1;
                if done.is_multiple_of(50_000) || done == total {
                    progress(done, total);
                }
                Ok(true)
            })?;
            out.flush().map_err(export::io_error)?;
            Ok(n)
        })
        .await?;
        self.store
            .activity()
            .append(NewEvent {
                kind: "audit.exported".into(),
                on_behalf_of: Some(actor.name.clone()),
                detail: Some(serde_json::json!({"rows": written, "format": format}).to_string()),
                ..Default::default()
            })
            .await?;
        Ok(written)
    }

    pub(crate) async fn log(
        &self,
        actor: &User,
        filter: LogFilter,
        limit: usize,
    ) -> ApiResult<Response> {
        let store = self.store.clone();
        let filter = filter.for_actor(actor, limit.min(10_000));
        let rows = blocking(move || Ok(ActivityLog::query(&store.connect()?, &filter)?)).await?;
        Ok(Response::Log(rows))
    }

    pub(crate) async fn activity_stats(
        &self,
        actor: &User,
        filter: LogFilter,
    ) -> ApiResult<Response> {
        let store = self.store.clone();
        let filter = filter.for_actor(actor, 0);
        let days =
            blocking(move || Ok(ActivityLog::calls_per_day(&store.connect()?, &filter)?)).await?;
        Ok(Response::DayCounts(days))
    }
}
