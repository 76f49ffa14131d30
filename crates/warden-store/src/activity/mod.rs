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

mod query;
#[cfg(test)]
mod query_tests;
#[cfg(test)]
mod tests;

pub use query::{ActivityFilter, DayCount, index_pending};
pub(crate) use query::{ROW_COLUMNS, read_row};

/// The hash that the first row chains to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Longest a row nothing waits on is held before it is committed.
pub const DEFER: Duration = Duration::from_millis(2);

/// How often the flusher adds new rows to the full-text index.
pub const INDEX_EVERY: Duration = Duration::from_secs(1);

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
