//! Reading the log: filters, full-text search (brought up to date before a
//! search runs), pages, counts per day and streaming for exports.

use super::*;

/// Adds the rows not yet in the full-text index to it, in one transaction.
/// Any connection, in any process, may run it: it takes the database's write
/// lock, so two never index the same rows.
pub fn index_pending(conn: &Connection) -> Result<usize> {
    // A plain read first: most searches find nothing to index and need not
    // queue for the write lock behind the gateway's commits.
    let (from, to): (i64, i64) = conn.query_row(
        "SELECT (SELECT indexed_up_to FROM activity_fts_state WHERE id = 1), \
                (SELECT coalesce(max(id), 0) FROM activity)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if to <= from {
        return Ok(0);
    }
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let from: i64 = tx.query_row(
        "SELECT indexed_up_to FROM activity_fts_state WHERE id = 1",
        [],
        |r| r.get(0),
    )?;
    let to: i64 = tx.query_row("SELECT coalesce(max(id), 0) FROM activity", [], |r| {
        r.get(0)
    })?;
    if to <= from {
        return Ok(0);
    }
    let n = tx.execute(
        "INSERT INTO activity_fts (rowid, kind, agent, server, tool, arguments, detail) \
         SELECT id, kind, agent, server, tool, arguments, detail FROM activity WHERE id > ?1 AND id <= ?2",
        params![from, to],
    )?;
    tx.execute(
        "UPDATE activity_fts_state SET indexed_up_to = ?1 WHERE id = 1",
        [to],
    )?;
    tx.commit()?;
    Ok(n)
}

/// Before a search: every row must be findable.
pub(super) fn index_for(conn: &Connection, filter: &ActivityFilter) {
    if filter
        .search
        .as_deref()
        .is_some_and(|s| !s.trim().is_empty())
        && let Err(e) = index_pending(conn)
    {
        // A read-only copy, say: the search still runs on what is indexed.
        tracing::warn!(error = %e, "could not bring the search index up to date");
    }
}

/// Filters for [`ActivityLog::query`]; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct ActivityFilter {
    /// Only what this person did or had done for them.
    pub person: Option<String>,
    pub agent: Option<String>,
    pub server: Option<String>,
    pub tool: Option<String>,
    pub kind: Option<String>,
    pub decision: Option<String>,
    pub risk: Option<String>,
    /// Time range, microseconds since the epoch (from inclusive, until exclusive).
    pub since_us: Option<i64>,
    pub until_us: Option<i64>,
    /// Full-text search over kinds, names, tools and redacted arguments.
    pub search: Option<String>,
    /// Only rows with an id below this one (keyset pagination, newest first).
    pub before_id: Option<i64>,
    pub limit: usize,
}

impl ActivityFilter {
    /// The WHERE clause (starting with " WHERE") and its arguments.
    fn clause(&self) -> (String, Vec<rusqlite::types::Value>) {
        let mut sql = String::from(" WHERE 1=1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut add = |clause: &str, v: rusqlite::types::Value| {
            sql.push_str(clause);
            args.push(v);
        };
        // A person's activity: rows naming them as the one acted for (their
        // agents' calls) or as the one who acted (their own changes). Every
        // row an agent writes names its owner, so this one indexed column is
        // enough.
        if let Some(p) = &self.person {
            add(" AND on_behalf_of = ?", p.clone().into());
        }
        for (column, value) in [
            ("agent", &self.agent),
            ("server", &self.server),
            ("tool", &self.tool),
            ("kind", &self.kind),
            ("decision", &self.decision),
            ("risk", &self.risk),
        ] {
            if let Some(v) = value {
                add(&format!(" AND {column} = ?"), v.clone().into());
            }
        }
        if let Some(t) = self.since_us {
            add(" AND time_us >= ?", t.into());
        }
        if let Some(t) = self.until_us {
            add(" AND time_us < ?", t.into());
        }
        if let Some(q) = self
            .search
            .as_deref()
            .map(fts_query)
            .filter(|q| !q.is_empty())
        {
            add(
                " AND id IN (SELECT rowid FROM activity_fts WHERE activity_fts MATCH ?)",
                q.into(),
            );
        }
        if let Some(b) = self.before_id {
            add(" AND id < ?", b.into());
        }
        (sql, args)
    }
}

/// Words a person typed, as an FTS5 query: each a quoted prefix, all required.
fn fts_query(text: &str) -> String {
    text.split_whitespace()
        .map(|w| format!("\"{}\"*", w.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Calls per day and decision, for charts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct DayCount {
    /// Days since the Unix epoch (UTC).
    pub day: i64,
    pub decision: Option<String>,
    pub calls: i64,
}

impl ActivityLog {
    /// Newest-first page of rows matching `filter`.
    pub fn query(conn: &Connection, filter: &ActivityFilter) -> Result<Vec<ActivityRow>> {
        index_for(conn, filter);
        let (clause, args) = filter.clause();
        let limit = if filter.limit == 0 { 100 } else { filter.limit };
        // Time never goes backwards along the log, so this is id order too,
        // and every (filter, time) index can serve it.
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM activity{clause} ORDER BY time_us DESC, id DESC LIMIT {limit}"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), read_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn count(conn: &Connection, filter: &ActivityFilter) -> Result<i64> {
        index_for(conn, filter);
        let (clause, args) = filter.clause();
        let sql = format!("SELECT count(*) FROM activity{clause}");
        Ok(conn.query_row(&sql, rusqlite::params_from_iter(args), |r| r.get(0))?)
    }

    /// Tool calls per day and decision among the rows matching `filter`.
    pub fn calls_per_day(conn: &Connection, filter: &ActivityFilter) -> Result<Vec<DayCount>> {
        index_for(conn, filter);
        let (clause, args) = filter.clause();
        let sql = format!(
            "SELECT time_us / 86400000000 AS day, decision, count(*) FROM activity{clause} \
             AND kind = 'tool_call.requested' GROUP BY day, decision ORDER BY day, decision"
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| {
                Ok(DayCount {
                    day: r.get(0)?,
                    decision: r.get(1)?,
                    calls: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Every matching row, oldest first, one at a time (for exports that
    /// must not load everything into memory). `each` returns false to stop.
    pub fn for_each(
        conn: &Connection,
        filter: &ActivityFilter,
        mut each: impl FnMut(ActivityRow) -> std::io::Result<bool>,
    ) -> Result<u64> {
        index_for(conn, filter);
        let (clause, args) = filter.clause();
        let sql = format!("SELECT {ROW_COLUMNS} FROM activity{clause} ORDER BY id");
        let mut stmt = conn.prepare(&sql)?;
        let mut cursor = stmt.query(rusqlite::params_from_iter(args))?;
        let mut n = 0u64;
        while let Some(r) = cursor.next()? {
            n += 1;
            match each(read_row(r)?) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    return Err(Error::LogUnavailable(format!(
                        "the export could not be written: {e}"
                    )));
                }
            }
        }
        Ok(n)
    }
}

pub(crate) const ROW_COLUMNS: &str = "id, time_us, kind, call_id, agent, on_behalf_of, chain, server, tool, \
     arguments, arguments_hash, risk, decision, approver, outcome, latency_us, detail, prev_hash, hash";

pub(crate) fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ActivityRow> {
    Ok(ActivityRow {
        id: r.get(0)?,
        time_us: r.get(1)?,
        event: NewEvent {
            kind: r.get(2)?,
            call_id: r.get(3)?,
            agent: r.get(4)?,
            on_behalf_of: r.get(5)?,
            chain: r.get(6)?,
            server: r.get(7)?,
            tool: r.get(8)?,
            arguments: r.get(9)?,
            arguments_hash: r.get(10)?,
            risk: r.get(11)?,
            decision: r.get(12)?,
            approver: r.get(13)?,
            outcome: r.get(14)?,
            latency_us: r.get(15)?,
            detail: r.get(16)?,
        },
        prev_hash: r.get(17)?,
        hash: r.get(18)?,
    })
}
