//! The activity log: one append-only table, written by a single thread that
//! groups concurrent appends into one transaction and chains every row to the
//! one before it (`hash = sha256(prev_hash ‖ row)`).
//!
//! `append` returns only once the row is committed; callers that must not act
//! before the record exists (the gateway, before forwarding a call) await it.
//! When the database cannot be written, every caller in that group gets an
//! error and the in-memory chain head is reloaded, so the next group starts
//! from what is really on disk.

use std::sync::Arc;
use std::thread;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::{Error, Result, now_us};

/// The hash that the first row chains to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Largest number of appends grouped into one transaction.
const MAX_GROUP: usize = 1024;

/// One event to record. Arguments must already be redacted by the caller.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ts_rs::TS)]
pub struct NewEvent {
    pub kind: String,
    pub call_id: Option<String>,
    pub agent: Option<String>,
    pub on_behalf_of: Option<String>,
    pub chain: Option<String>,
    pub server: Option<String>,
    pub tool: Option<String>,
    pub arguments: Option<String>,
    pub arguments_hash: Option<String>,
    pub risk: Option<String>,
    pub decision: Option<String>,
    pub approver: Option<String>,
    pub outcome: Option<String>,
    pub latency_us: Option<i64>,
    pub detail: Option<String>,
}

/// A stored row, as queries return it.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct ActivityRow {
    pub id: i64,
    pub time_us: i64,
    #[serde(flatten)]
    pub event: NewEvent,
    pub prev_hash: String,
    pub hash: String,
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

enum Msg {
    Append(Box<NewEvent>, oneshot::Sender<Result<i64>>),
    Touch { agent_id: i64, at_us: i64 },
    SetSigner(Arc<CheckpointSigner>),
    Checkpoint(oneshot::Sender<Result<Option<crate::audit::Checkpoint>>>),
}

/// Signs checkpoints and keeps the newest one outside the database.
pub struct CheckpointSigner {
    pub sign: Box<crate::audit::Signer>,
    /// Called with each new checkpoint (e.g. to keep it in the keychain).
    pub keep: Box<dyn Fn(&crate::audit::Checkpoint) + Send + Sync>,
    /// A checkpoint every this many rows.
    pub every: i64,
}

fn checkpoint_now(
    conn: &Connection,
    signer: &CheckpointSigner,
) -> Result<Option<crate::audit::Checkpoint>> {
    let cp = crate::audit::checkpoint(conn, &*signer.sign)?;
    if let Some(c) = &cp {
        (signer.keep)(c);
    }
    Ok(cp)
}

/// Handle on the writer thread. Cloning shares the thread.
#[derive(Clone)]
pub struct ActivityLog {
    tx: mpsc::UnboundedSender<Msg>,
}

impl ActivityLog {
    pub(crate) fn start(conn: Connection) -> Result<ActivityLog> {
        let head = chain_head(&conn)?;
        let (tx, rx) = mpsc::unbounded_channel();
        thread::Builder::new()
            .name("warden-activity".into())
            .spawn(move || writer(conn, head, rx))
            .map_err(|e| Error::LogUnavailable(format!("could not start the log writer: {e}")))?;
        Ok(ActivityLog { tx })
    }

    /// Appends one event and waits until it is committed. Returns its row id.
    pub async fn append(&self, event: NewEvent) -> Result<i64> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Msg::Append(Box::new(event), done))
            .map_err(|_| Error::LogUnavailable("the log writer has stopped".into()))?;
        wait.await
            .map_err(|_| Error::LogUnavailable("the log writer has stopped".into()))?
    }

    /// Appends from blocking code (CLI commands): the same commit guarantee.
    pub fn append_blocking(&self, event: NewEvent) -> Result<i64> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Msg::Append(Box::new(event), done))
            .map_err(|_| Error::LogUnavailable("the log writer has stopped".into()))?;
        wait.blocking_recv()
            .map_err(|_| Error::LogUnavailable("the log writer has stopped".into()))?
    }

    /// From now on, sign a checkpoint every `signer.every` rows.
    pub fn set_signer(&self, signer: CheckpointSigner) {
        let _ = self.tx.send(Msg::SetSigner(Arc::new(signer)));
    }

    /// Signs a checkpoint of everything written so far (at shutdown).
    pub async fn checkpoint(&self) -> Result<Option<crate::audit::Checkpoint>> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Msg::Checkpoint(done))
            .map_err(|_| Error::LogUnavailable("the log writer has stopped".into()))?;
        wait.await
            .map_err(|_| Error::LogUnavailable("the log writer has stopped".into()))?
    }

    /// Records that an agent was seen, without waiting. Coalesced per group.
    pub fn touch_agent(&self, agent_id: i64) {
        let _ = self.tx.send(Msg::Touch {
            agent_id,
            at_us: now_us(),
        });
    }

    /// Newest-first page of rows matching `filter`.
    pub fn query(conn: &Connection, filter: &ActivityFilter) -> Result<Vec<ActivityRow>> {
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
        let (clause, args) = filter.clause();
        let sql = format!("SELECT count(*) FROM activity{clause}");
        Ok(conn.query_row(&sql, rusqlite::params_from_iter(args), |r| r.get(0))?)
    }

    /// Tool calls per day and decision among the rows matching `filter`.
    pub fn calls_per_day(conn: &Connection, filter: &ActivityFilter) -> Result<Vec<DayCount>> {
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

/// The hash of a row: SHA-256 over the previous hash and every field, each
/// length-prefixed so that no two different rows serialise alike.
pub fn row_hash(prev_hash: &str, time_us: i64, e: &NewEvent) -> String {
    let mut h = Sha256::new();
    let mut field = |v: Option<&str>| match v {
        None => h.update(b"-"),
        Some(s) => {
            h.update((s.len() as u64).to_be_bytes());
            h.update(s.as_bytes());
        }
    };
    field(Some(prev_hash));
    field(Some(&time_us.to_string()));
    field(Some(&e.kind));
    for v in [
        &e.call_id,
        &e.agent,
        &e.on_behalf_of,
        &e.chain,
        &e.server,
        &e.tool,
        &e.arguments,
        &e.arguments_hash,
        &e.risk,
        &e.decision,
        &e.approver,
        &e.outcome,
    ] {
        field(v.as_deref());
    }
    field(e.latency_us.map(|l| l.to_string()).as_deref());
    field(e.detail.as_deref());
    hex::encode(h.finalize())
}

fn chain_head(conn: &Connection) -> Result<(String, i64)> {
    let last: Option<(String, i64)> = conn
        .query_row(
            "SELECT hash, time_us FROM activity ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(last.unwrap_or_else(|| (GENESIS.to_string(), 0)))
}

fn writer(mut conn: Connection, head: (String, i64), mut rx: mpsc::UnboundedReceiver<Msg>) {
    let (mut prev_hash, mut last_time) = head;
    let mut batch: Vec<(Box<NewEvent>, oneshot::Sender<Result<i64>>)> = Vec::new();
    let mut touches: Vec<(i64, i64)> = Vec::new();
    let mut signer: Option<Arc<CheckpointSigner>> = None;
    let mut since_checkpoint: i64 = 0;
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Append(e, done) => batch.push((e, done)),
                Msg::Touch { agent_id, at_us } => touches.push((agent_id, at_us)),
                Msg::SetSigner(s) => signer = Some(s),
                Msg::Checkpoint(done) => {
                    let result = match &signer {
                        Some(s) => checkpoint_now(&conn, s),
                        None => Ok(None),
                    };
                    since_checkpoint = 0;
                    let _ = done.send(result);
                }
            }
            if batch.len() < MAX_GROUP {
                next = rx.try_recv().ok();
            }
        }
        let result = write_group(&mut conn, &mut prev_hash, &mut last_time, &batch, &touches);
        touches.clear();
        match result {
            Ok(ids) => {
                since_checkpoint += ids.len() as i64;
                for ((_, done), id) in batch.drain(..).zip(ids) {
                    let _ = done.send(Ok(id));
                }
                if let Some(s) = signer.as_ref().filter(|s| since_checkpoint >= s.every) {
                    match checkpoint_now(&conn, s) {
                        Ok(_) => since_checkpoint = 0,
                        Err(e) => tracing::error!(error = %e, "could not sign a checkpoint"),
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "activity log write failed; calls are refused until it recovers");
                let message = e.to_string();
                for (_, done) in batch.drain(..) {
                    let _ = done.send(Err(Error::LogUnavailable(message.clone())));
                }
                match chain_head(&conn) {
                    Ok((h, t)) => {
                        prev_hash = h;
                        last_time = t;
                    }
                    Err(e) => tracing::error!(error = %e, "could not reload the chain head"),
                }
            }
        }
    }
}

fn write_group(
    conn: &mut Connection,
    prev_hash: &mut String,
    last_time: &mut i64,
    batch: &[(Box<NewEvent>, oneshot::Sender<Result<i64>>)],
    touches: &[(i64, i64)],
) -> Result<Vec<i64>> {
    let tx = conn.transaction()?;
    let mut ids = Vec::with_capacity(batch.len());
    let mut hash = prev_hash.clone();
    let mut time = *last_time;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO activity (time_us, kind, call_id, agent, on_behalf_of, chain, server, tool, \
             arguments, arguments_hash, risk, decision, approver, outcome, latency_us, detail, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
        )?;
        for (e, _) in batch {
            // Times never go backwards along the chain, even if the clock does.
            time = now_us().max(time);
            let new_hash = row_hash(&hash, time, e);
            stmt.execute(params![
                time,
                e.kind,
                e.call_id,
                e.agent,
                e.on_behalf_of,
                e.chain,
                e.server,
                e.tool,
                e.arguments,
                e.arguments_hash,
                e.risk,
                e.decision,
                e.approver,
                e.outcome,
                e.latency_us,
                e.detail,
                hash,
                new_hash,
            ])?;
            ids.push(tx.last_insert_rowid());
            hash = new_hash;
        }
        if !touches.is_empty() {
            let mut touch = tx.prepare_cached(
                "UPDATE agents SET last_used_at_us = max(coalesce(last_used_at_us, 0), ?1) WHERE id = ?2",
            )?;
            for (agent_id, at) in touches {
                touch.execute(params![at, agent_id])?;
            }
        }
    }
    tx.commit()?;
    *prev_hash = hash;
    *last_time = time;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_chain_each_row_to_the_previous_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = crate::Store::open(&dir.path().join("w.db")).expect("open store");
        let mut ids = Vec::new();
        for i in 0..5 {
            let ev = NewEvent {
                kind: "tool_call.requested".into(),
                tool: Some(format!("t{i}")),
                ..Default::default()
            };
            ids.push(store.activity().append(ev).await.expect("append"));
        }
        let conn = store.connect().expect("connect");
        let mut rows = ActivityLog::query(
            &conn,
            &ActivityFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .expect("query");
        rows.reverse();
        assert_eq!(rows.len(), 5);
        let mut prev = GENESIS.to_string();
        for r in &rows {
            assert_eq!(
                r.prev_hash, prev,
                "row {} must chain to its predecessor",
                r.id
            );
            assert_eq!(r.hash, row_hash(&r.prev_hash, r.time_us, &r.event));
            prev = r.hash.clone();
        }
        // Reopening continues the chain from the stored head.
        drop(store);
        let store = crate::Store::open(&dir.path().join("w.db")).expect("reopen");
        store
            .activity()
            .append(NewEvent {
                kind: "x".into(),
                ..Default::default()
            })
            .await
            .expect("append after reopen");
        let last = &ActivityLog::query(
            &store.connect().expect("connect"),
            &ActivityFilter {
                limit: 1,
                ..Default::default()
            },
        )
        .expect("query")[0];
        assert_eq!(last.prev_hash, prev);
    }

    #[tokio::test]
    async fn a_read_only_database_refuses_appends() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("w.db");
        let store = crate::Store::open(&path).expect("open store");
        // Make writes fail at the SQLite level, as a read-only or full disk would.
        let conn = store.connect().expect("connect");
        conn.execute_batch(
            "CREATE TRIGGER block BEFORE INSERT ON activity BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
        )
        .expect("install trigger");
        let err = store
            .activity()
            .append(NewEvent {
                kind: "x".into(),
                ..Default::default()
            })
            .await
            .expect_err("append must fail while writes fail");
        assert!(matches!(err, Error::LogUnavailable(_)));
        conn.execute_batch("DROP TRIGGER block")
            .expect("drop trigger");
        store
            .activity()
            .append(NewEvent {
                kind: "x".into(),
                ..Default::default()
            })
            .await
            .expect("the log recovers once writes succeed again");
    }
}

#[cfg(test)]
mod query_tests {
    use super::*;

    #[tokio::test]
    async fn filters_search_counts_and_streaming() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = crate::Store::open(&dir.path().join("w.db")).expect("store");
        for (i, (tool, decision, args)) in [
            ("read_file", "allow", r#"{"path":"/home/ada/notes.txt"}"#),
            ("write_file", "deny", r#"{"path":"/etc/passwd"}"#),
            ("read_file", "allow", r#"{"path":"/home/ada/plan.md"}"#),
        ]
        .into_iter()
        .enumerate()
        {
            let ev = NewEvent {
                kind: "tool_call.requested".into(),
                agent: Some(format!("a{}", i % 2)),
                server: Some("fs".into()),
                tool: Some(tool.into()),
                decision: Some(decision.into()),
                arguments: Some(args.into()),
                ..Default::default()
            };
            store.activity().append(ev).await.expect("append");
        }
        let conn = store.connect().expect("conn");
        let q = |f: ActivityFilter| ActivityLog::query(&conn, &f).expect("query");
        assert_eq!(
            q(ActivityFilter {
                decision: Some("deny".into()),
                ..Default::default()
            })
            .len(),
            1
        );
        let found = q(ActivityFilter {
            search: Some("notes".into()),
            ..Default::default()
        });
        assert_eq!(found.len(), 1, "full-text search finds words in arguments");
        assert_eq!(
            q(ActivityFilter {
                search: Some("read_fi".into()),
                ..Default::default()
            })
            .len(),
            2,
            "prefixes match"
        );
        assert_eq!(
            q(ActivityFilter {
                search: Some("\"; DROP".into()),
                ..Default::default()
            })
            .len(),
            0,
            "odd input is just text"
        );
        let page1 = q(ActivityFilter {
            limit: 2,
            ..Default::default()
        });
        let page2 = q(ActivityFilter {
            before_id: page1.last().map(|r| r.id),
            ..Default::default()
        });
        assert_eq!((page1.len(), page2.len()), (2, 1), "keyset pagination");
        let days = ActivityLog::calls_per_day(&conn, &ActivityFilter::default()).expect("counts");
        assert_eq!(days.iter().map(|d| d.calls).sum::<i64>(), 3);
        let mut seen = Vec::new();
        let n = ActivityLog::for_each(&conn, &ActivityFilter::default(), |r| {
            seen.push(r.id);
            Ok(true)
        })
        .expect("stream");
        assert_eq!(n, 3);
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "oldest first");
    }
}
