//! The activity log: one append-only table whose every row is chained to
//! the one before it (`hash = sha256(prev_hash ‖ row)`).
//!
//! `append` returns only once the row is committed; callers that must not act
//! before the record exists (the gateway, before forwarding a call) await it.
//! Appends are committed in groups, by whoever finds the writer free: a
//! caller that arrives when nobody is writing commits its row (and whatever
//! else is queued) itself, on its own thread, so a call pays no hand-off
//! between threads; callers that arrive while a group is being committed
//! queue their rows for the next group. A caller never keeps writing other
//! callers' rows: what is left when its own row is in is handed to the log's
//! flusher thread.
//!
//! The full-text index is brought up to date in batches: by the flusher about
//! once a second ([`INDEX_EVERY`]), and by every search before it runs, so a
//! search always sees every row. The flusher also copies the write-ahead log
//! back into the database then, so no call's commit pays for it.
//!
//! `record` is for rows nothing waits on (a call's outcome, after its answer
//! went out): such a row is held for at most [`DEFER`], so that it shares the
//! commit of the next awaited row instead of costing one of its own; the
//! flusher commits it if no such row comes.
//!
//! When the database cannot be written, every caller in that group gets an
//! error and the in-memory chain head is reloaded, so the next group starts
//! from what is really on disk.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use crate::{Error, Result, now_us};

/// The hash that the first row chains to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Longest a row nothing waits on is held before it is committed.
pub const DEFER: Duration = Duration::from_millis(2);

/// How often the flusher adds new rows to the full-text index.
pub const INDEX_EVERY: Duration = Duration::from_secs(1);

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
fn index_for(conn: &Connection, filter: &ActivityFilter) {
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

type Pending = (Box<NewEvent>, Option<oneshot::Sender<Result<i64>>>);

/// What waits to be committed.
#[derive(Default)]
struct Queue {
    rows: Vec<Pending>,
    touches: Vec<(i64, i64)>,
    /// When the oldest row nothing waits on was queued.
    deferred_since: Option<Instant>,
    /// A caller left awaited rows behind for the flusher, or a checkpoint
    /// is due: the flusher signs them (the signer may block, so never on a
    /// caller's async thread).
    urgent: bool,
    /// Waiting for a checkpoint of everything written before they asked.
    checkpoints: Vec<oneshot::Sender<Result<Option<crate::audit::Checkpoint>>>>,
    /// The flusher is asleep, waiting for work.
    flusher_idle: bool,
}

/// The writing side: the connection and the head of the chain.
struct Writer {
    conn: Connection,
    signer: Option<Arc<CheckpointSigner>>,
    since_checkpoint: i64,
    /// When a checkpoint was last kept outside the database.
    kept_at: Option<Instant>,
}

struct Shared {
    writer: Mutex<Writer>,
    queue: Mutex<Queue>,
    /// Wakes the flusher.
    work: Condvar,
    closed: AtomicBool,
    /// Rows were committed since the full-text index was last brought up to
    /// date.
    unindexed: AtomicBool,
    /// The flusher thread runs (it clears this if it ever stops, even by a
    /// panic): callers hand rows over to it only while it does.
    flusher_alive: AtomicBool,
}

/// Clears `flusher_alive` when the flusher's loop ends, however it ends.
struct Alive<'a>(&'a AtomicBool);

impl Drop for Alive<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Signs checkpoints and keeps the newest one outside the database.
pub struct CheckpointSigner {
    pub sign: Box<crate::audit::Signer>,
    /// Called with each new checkpoint (e.g. to keep it in the keychain).
    pub keep: Box<dyn Fn(&crate::audit::Checkpoint) + Send + Sync>,
    /// A checkpoint every this many rows.
    pub every: i64,
}

/// Shortest time between two copies of the newest checkpoint kept outside
/// the database (a keychain write is slow): under load, the copy trails by at
/// most this, or [`CheckpointSigner::every`] rows, whichever is more. An
/// explicit checkpoint (at shutdown) is always kept.
pub const KEEP_EVERY: Duration = Duration::from_secs(5);

/// A checkpoint just signed, and the signer to keep its copy with (after the
/// writer is unlocked: the keychain may be slow) when one is due.
struct Signed {
    checkpoint: Option<crate::audit::Checkpoint>,
    keep_with: Option<Arc<CheckpointSigner>>,
}

impl Signed {
    fn keep(&self) {
        if let (Some(c), Some(s)) = (&self.checkpoint, &self.keep_with) {
            (s.keep)(c);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves nothing half-done that matters
    // here (a failed group is rolled back by SQLite): carry on.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn push(&self, row: Pending) {
        let mut q = lock(&self.queue);
        if row.1.is_none() && q.deferred_since.is_none() {
            q.deferred_since = Some(Instant::now());
        }
        let wake = row.1.is_none() && q.flusher_idle;
        q.rows.push(row);
        drop(q);
        if wake {
            self.work.notify_one();
        }
    }

    /// Commits what is queued if nobody else is committing. With `hand_off`
    /// (a caller whose own row is in the first group), rows queued meanwhile
    /// are left to the flusher while it runs; without it (the flusher), it
    /// keeps going until the queue is empty, or for a few rounds before
    /// letting checkpoints and indexing have their turn.
    fn drive(&self, hand_off: bool) {
        for round in 0.. {
            let mut w = if hand_off {
                match self.writer.try_lock() {
                    Ok(w) => w,
                    Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
                    // Whoever holds it looks at the queue again when done.
                    Err(std::sync::TryLockError::WouldBlock) => return,
                }
            } else {
                // The flusher's own thread may wait for a caller's group.
                lock(&self.writer)
            };
            let (rows, touches) = {
                let mut q = lock(&self.queue);
                q.deferred_since = None;
                q.urgent = false;
                (std::mem::take(&mut q.rows), std::mem::take(&mut q.touches))
            };
            let mut newly_unindexed = false;
            if !rows.is_empty() || !touches.is_empty() {
                w.commit(rows, &touches);
                newly_unindexed = !self.unindexed.swap(true, Ordering::AcqRel);
            }
            let sign = w.sign_due();
            let signed = (sign && !hand_off).then(|| w.sign(false));
            drop(w);
            match signed {
                Some(Ok(s)) => s.keep(),
                Some(Err(e)) => tracing::error!(error = %e, "could not sign a checkpoint"),
                None => {}
            }
            // Rows queued while the writer was busy: their callers found it
            // taken and are waiting for whoever held it.
            let flusher = self.flusher_alive.load(Ordering::Acquire);
            let mut q = lock(&self.queue);
            let hand_over = hand_off && flusher && (!q.rows.is_empty() || sign);
            if hand_over || !hand_off && !q.rows.is_empty() && round >= 16 {
                q.urgent = true;
            }
            // The flusher sleeps without a timeout when nothing needs
            // indexing; rows committed here give it something to do.
            let wake = q.flusher_idle && (hand_over || newly_unindexed);
            // A caller with no flusher to hand to keeps going until the
            // queue is empty.
            let done = q.rows.is_empty() || hand_over || !hand_off && q.urgent;
            drop(q);
            if wake {
                self.work.notify_one();
            }
            if done {
                return;
            }
        }
    }

    /// The flusher: commits rows nothing waits on within [`DEFER`] and
    /// whatever callers handed over, signs checkpoints, and about once a
    /// second indexes new rows for search and copies the write-ahead log
    /// back. A panic in one round (a signer's closure, say) is logged and
    /// the next round goes on: callers depend on this thread.
    fn flusher(&self) {
        let _alive = Alive(&self.flusher_alive);
        let mut indexed_at = Instant::now();
        loop {
            let round = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.flusher_round(&mut indexed_at)
            }));
            match round {
                Ok(true) => return,
                Ok(false) => {}
                Err(_) => {
                    tracing::error!("the activity log's flusher failed a round; carrying on");
                    thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }

    /// One round of the flusher; `true` when the log is closed.
    fn flusher_round(&self, indexed_at: &mut Instant) -> bool {
        let mut q = lock(&self.queue);
        loop {
            if q.urgent
                || self.closed.load(Ordering::Acquire)
                || !q.rows.is_empty()
                || !q.touches.is_empty()
                || !q.checkpoints.is_empty()
            {
                break;
            }
            let index_due = (*indexed_at + INDEX_EVERY).saturating_duration_since(Instant::now());
            let unindexed = self.unindexed.load(Ordering::Acquire);
            if unindexed && index_due.is_zero() {
                break;
            }
            q.flusher_idle = true;
            q = if unindexed {
                self.work
                    .wait_timeout(q, index_due)
                    .map(|(q, _)| q)
                    .unwrap_or_else(|e| e.into_inner().0)
            } else {
                self.work.wait(q).unwrap_or_else(|e| e.into_inner())
            };
            q.flusher_idle = false;
        }
        let closed = self.closed.load(Ordering::Acquire);
        // Give the next awaited append the chance to take these rows along
        // in its own commit.
        let nothing_queued = q.rows.is_empty() && q.touches.is_empty();
        let checkpoints = std::mem::take(&mut q.checkpoints);
        let pause = match (q.urgent || closed || nothing_queued, q.deferred_since) {
            (true, _) => None,
            (false, Some(since)) => Some((since + DEFER).saturating_duration_since(Instant::now())),
            (false, None) => Some(DEFER),
        };
        drop(q);
        if let Some(p) = pause.filter(|p| !p.is_zero()) {
            thread::sleep(p);
        }
        self.drive(false);
        if !checkpoints.is_empty() {
            let signed = {
                let mut w = lock(&self.writer);
                let (rows, touches) = {
                    let mut q = lock(&self.queue);
                    (std::mem::take(&mut q.rows), std::mem::take(&mut q.touches))
                };
                if !rows.is_empty() || !touches.is_empty() {
                    w.commit(rows, &touches);
                    self.unindexed.store(true, Ordering::Release);
                }
                w.sign(true)
            };
            if let Ok(s) = &signed {
                s.keep();
            }
            for done in checkpoints {
                let _ = done.send(match &signed {
                    Ok(s) => Ok(s.checkpoint.clone()),
                    Err(e) => Err(Error::LogUnavailable(e.to_string())),
                });
            }
            self.drive(false);
        }
        if closed {
            return true;
        }
        if self.unindexed.load(Ordering::Acquire) && indexed_at.elapsed() >= INDEX_EVERY {
            *indexed_at = Instant::now();
            let w = lock(&self.writer);
            self.unindexed.store(false, Ordering::Release);
            if let Err(e) = index_pending(&w.conn) {
                // Tried again next time (a search also catches up first).
                self.unindexed.store(true, Ordering::Release);
                tracing::warn!(error = %e, "could not add new activity to the search index");
            }
            // PASSIVE: copies what no reader still needs, never waits.
            if let Err(e) = w
                .conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            {
                tracing::warn!(error = %e, "could not copy the write-ahead log into the database");
            }
            drop(w);
            // Appends that found the writer busy meanwhile.
            self.drive(false);
        }
        false
    }
}

impl Writer {
    fn sign_due(&self) -> bool {
        self.signer
            .as_ref()
            .is_some_and(|s| self.since_checkpoint >= s.every)
    }

    /// Signs a checkpoint of everything committed (flusher thread only);
    /// `always_keep` for one asked for (shutdown), otherwise it is kept
    /// outside the database at most every [`KEEP_EVERY`].
    fn sign(&mut self, always_keep: bool) -> Result<Signed> {
        let Some(signer) = self.signer.clone() else {
            return Ok(Signed {
                checkpoint: None,
                keep_with: None,
            });
        };
        let checkpoint = crate::audit::checkpoint(&self.conn, &*signer.sign)?;
        self.since_checkpoint = 0;
        let keep = always_keep || self.kept_at.is_none_or(|t| t.elapsed() >= KEEP_EVERY);
        if keep && checkpoint.is_some() {
            self.kept_at = Some(Instant::now());
        }
        Ok(Signed {
            checkpoint,
            keep_with: keep.then_some(signer),
        })
    }

    /// Commits one group and tells each waiting caller how it went.
    fn commit(&mut self, rows: Vec<Pending>, touches: &[(i64, i64)]) {
        let result = write_group(&mut self.conn, &rows, touches);
        match result {
            Ok(ids) => {
                self.since_checkpoint += ids.len() as i64;
                for ((_, done), id) in rows.into_iter().zip(ids) {
                    if let Some(done) = done {
                        let _ = done.send(Ok(id));
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "activity log write failed; calls are refused until it recovers");
                let message = e.to_string();
                for (_, done) in rows {
                    if let Some(done) = done {
                        let _ = done.send(Err(Error::LogUnavailable(message.clone())));
                    }
                }
            }
        }
    }
}

/// Stops the flusher when the last handle goes, and waits for its last
/// commit, so that nothing queued is lost and a log opened again afterwards
/// starts from the real end of the chain.
struct Closer(Arc<Shared>, Mutex<Option<thread::JoinHandle<()>>>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
        {
            let _q = lock(&self.0.queue);
            self.0.work.notify_one();
        }
        if let Some(flusher) = lock(&self.1).take() {
            let _ = flusher.join();
        }
    }
}

/// Handle on the log. Cloning shares it.
#[derive(Clone)]
pub struct ActivityLog {
    shared: Arc<Shared>,
    _closer: Arc<Closer>,
}

impl ActivityLog {
    pub(crate) fn start(conn: Connection) -> Result<ActivityLog> {
        // The writer touches the newest pages of the table and of each index
        // on every commit: a bigger page cache (grown only as used) keeps
        // them from being read back from the file each time.
        conn.pragma_update(None, "cache_size", -8192)?;
        // Copying the write-ahead log back into the database happens on the
        // flusher thread, about once a second, not in the commit of whichever
        // call happened to fill the log (see `Shared::flusher`).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let shared = Arc::new(Shared {
            writer: Mutex::new(Writer {
                conn,
                signer: None,
                since_checkpoint: 0,
                kept_at: None,
            }),
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            closed: AtomicBool::new(false),
            unindexed: AtomicBool::new(true),
            flusher_alive: AtomicBool::new(true),
        });
        let flusher = shared.clone();
        let handle = thread::Builder::new()
            .name("warden-activity".into())
            .spawn(move || flusher.flusher())
            .map_err(|e| Error::LogUnavailable(format!("could not start the log writer: {e}")))?;
        Ok(ActivityLog {
            _closer: Arc::new(Closer(shared.clone(), Mutex::new(Some(handle)))),
            shared,
        })
    }

    fn stopped() -> Error {
        Error::LogUnavailable("the log writer has stopped".into())
    }

    /// Appends one event and waits until it is committed. Returns its row id.
    pub async fn append(&self, event: NewEvent) -> Result<i64> {
        let (done, wait) = oneshot::channel();
        self.shared.push((Box::new(event), Some(done)));
        // Free writer: commit here, with no hand-off to another thread.
        self.shared.drive(true);
        wait.await.map_err(|_| Self::stopped())?
    }

    /// Appends one event without waiting: it is committed with the next
    /// awaited row, or within [`DEFER`]. A failure is logged, not returned,
    /// so use this only where nothing depends on the row existing.
    pub fn record(&self, event: NewEvent) {
        self.shared.push((Box::new(event), None));
    }

    /// Appends from blocking code (CLI commands): the same commit guarantee.
    pub fn append_blocking(&self, event: NewEvent) -> Result<i64> {
        let (done, wait) = oneshot::channel();
        self.shared.push((Box::new(event), Some(done)));
        self.shared.drive(true);
        wait.blocking_recv().map_err(|_| Self::stopped())?
    }

    /// From now on, sign a checkpoint every `signer.every` rows.
    pub fn set_signer(&self, signer: CheckpointSigner) {
        lock(&self.shared.writer).signer = Some(Arc::new(signer));
        self.shared.drive(true);
    }

    /// Signs a checkpoint of everything written so far (at shutdown).
    pub async fn checkpoint(&self) -> Result<Option<crate::audit::Checkpoint>> {
        if !self.shared.flusher_alive.load(Ordering::Acquire) {
            return Err(Self::stopped());
        }
        let (done, wait) = oneshot::channel();
        let wake = {
            let mut q = lock(&self.shared.queue);
            q.checkpoints.push(done);
            q.flusher_idle
        };
        if wake {
            self.shared.work.notify_one();
        }
        wait.await.map_err(|_| Self::stopped())?
    }

    /// Records that an agent was seen, without waiting. Coalesced per group.
    pub fn touch_agent(&self, agent_id: i64) {
        let mut q = lock(&self.shared.queue);
        if q.deferred_since.is_none() {
            q.deferred_since = Some(Instant::now());
        }
        q.touches.push((agent_id, now_us()));
        let wake = q.flusher_idle;
        drop(q);
        if wake {
            self.shared.work.notify_one();
        }
    }

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

fn write_group(
    conn: &mut Connection,
    batch: &[Pending],
    touches: &[(i64, i64)],
) -> Result<Vec<i64>> {
    // The chain continues from the newest row on disk, read under the write
    // lock: another writer (a command run while the gateway is down, a log
    // opened twice) can never fork it.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let (mut hash, mut time) = chain_head(&tx)?;
    let mut ids = Vec::with_capacity(batch.len());
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
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(store: &crate::Store) -> usize {
        let conn = store.connect().expect("connect");
        ActivityLog::query(
            &conn,
            &ActivityFilter {
                limit: 100,
                ..Default::default()
            },
        )
        .expect("query")
        .len()
    }

    #[tokio::test]
    async fn search_sees_every_row_and_deleting_rows_keeps_the_index_sound() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = crate::Store::open(&dir.path().join("w.db")).expect("open store");
        let log = store.activity();
        let add = |tool: &str| NewEvent {
            kind: "tool_call.requested".into(),
            tool: Some(tool.into()),
            ..Default::default()
        };
        log.append(add("alpha_tool")).await.expect("append");
        let conn = store.connect().expect("connect");
        let search = |conn: &Connection, text: &str| {
            ActivityLog::count(
                conn,
                &ActivityFilter {
                    search: Some(text.into()),
                    ..Default::default()
                },
            )
            .expect("search")
        };
        // Found at once, though the flusher has not indexed it yet.
        assert_eq!(search(&conn, "alpha"), 1);
        log.append(add("beta_tool")).await.expect("append");
        // One row in the index, one not yet: deleting both (retention)
        // takes only the indexed one out of the index.
        conn.execute("DELETE FROM activity", []).expect("delete");
        conn.execute(
            "INSERT INTO activity_fts (activity_fts) VALUES ('integrity-check')",
            [],
        )
        .expect("the search index is sound after deleting rows");
        assert_eq!(search(&conn, "alpha"), 0);
        assert_eq!(search(&conn, "beta"), 0);
        log.append(add("gamma_tool")).await.expect("append");
        assert_eq!(search(&conn, "gamma"), 1);
        conn.execute(
            "INSERT INTO activity_fts (activity_fts) VALUES ('integrity-check')",
            [],
        )
        .expect("the search index is sound");
    }

    #[tokio::test]
    async fn two_writers_on_one_database_keep_one_chain() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("w.db");
        let a = crate::Store::open(&path).expect("open a");
        let b = crate::Store::open(&path).expect("open b");
        for i in 0..20 {
            let store = if i % 2 == 0 { &a } else { &b };
            store
                .activity()
                .append(NewEvent {
                    kind: format!("k{i}"),
                    ..Default::default()
                })
                .await
                .expect("append");
        }
        let conn = a.connect().expect("connect");
        let v = crate::audit::verify(&conn, &|_, _, _| true, None, None).expect("verify");
        assert_eq!(v.rows, 20);
        assert!(v.problem.is_none(), "{:?}", v.problem);
    }

    #[tokio::test]
    async fn recorded_rows_are_committed_soon_in_order_and_before_a_checkpoint() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = crate::Store::open(&dir.path().join("w.db")).expect("open store");
        let log = store.activity().clone();
        // Alone, a recorded row is committed within DEFER.
        log.record(NewEvent {
            kind: "tool_call.completed".into(),
            ..Default::default()
        });
        let start = Instant::now();
        while count(&store) < 1 {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "a recorded row was never committed"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Followed by an awaited row, it is committed with it, before it.
        log.record(NewEvent {
            kind: "first".into(),
            ..Default::default()
        });
        let id = log
            .append(NewEvent {
                kind: "second".into(),
                ..Default::default()
            })
            .await
            .expect("append");
        let conn = store.connect().expect("connect");
        let kinds: Vec<String> = ActivityLog::query(
            &conn,
            &ActivityFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .expect("query")
        .into_iter()
        .map(|r| r.event.kind)
        .collect();
        assert_eq!(kinds, ["second", "first", "tool_call.completed"]);
        assert_eq!(id, 3);
        // Dropping the log's last handle still commits what it holds.
        log.record(NewEvent {
            kind: "last".into(),
            ..Default::default()
        });
        drop(log);
        drop(store);
        let store = crate::Store::open(&dir.path().join("w.db")).expect("reopen");
        let start = Instant::now();
        while count(&store) < 4 {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "the row held at close was lost"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

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
