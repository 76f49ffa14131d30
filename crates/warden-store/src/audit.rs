//! Tamper evidence for the activity log: walking the hash chain, and signed
//! checkpoints that also catch rows cut off the end.
//!
//! Each row's hash covers the previous row's hash and every field, so an
//! edited, deleted, inserted or reordered row breaks the chain at that row.
//! Truncation leaves a valid shorter chain, so checkpoints record the newest
//! row and the count so far, signed (ed25519) with a key kept outside the
//! database; the newest checkpoint is also kept outside it (the caller stores
//! it in the keychain), so deleting rows and checkpoints together still shows.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::activity::{GENESIS, row_hash};
use crate::{Result, now_us};

/// A checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: i64,
    pub row_id: i64,
    pub row_hash: String,
    pub row_count: i64,
    pub time_us: i64,
    pub public_key: String,
    pub signature: String,
}

impl Checkpoint {
    /// The bytes that are signed.
    pub fn message(seq: i64, row_id: i64, row_hash: &str, row_count: i64) -> Vec<u8> {
        format!("warden-checkpoint-v1|{seq}|{row_id}|{row_hash}|{row_count}").into_bytes()
    }
}

/// Where the kept part of a pruned log starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub first_row_id: i64,
    pub prev_hash: String,
    /// Rows pruned since the beginning.
    pub pruned_rows: i64,
    /// The last checkpoint removed with them.
    pub pruned_checkpoints_to: i64,
    pub public_key: String,
    pub signature: String,
}

impl Anchor {
    pub fn message(
        first_row_id: i64,
        prev_hash: &str,
        pruned_rows: i64,
        pruned_checkpoints_to: i64,
    ) -> Vec<u8> {
        format!("warden-anchor-v1|{first_row_id}|{prev_hash}|{pruned_rows}|{pruned_checkpoints_to}")
            .into_bytes()
    }
}

fn latest_anchor(conn: &Connection) -> Result<Option<Anchor>> {
    Ok(conn
        .query_row(
            "SELECT first_row_id, prev_hash, pruned_rows, pruned_checkpoints_to, public_key, signature FROM anchors ORDER BY id DESC LIMIT 1",
            [],
            |r| {
                Ok(Anchor {
                    first_row_id: r.get(0)?,
                    prev_hash: r.get(1)?,
                    pruned_rows: r.get(2)?,
                    pruned_checkpoints_to: r.get(3)?,
                    public_key: r.get(4)?,
                    signature: r.get(5)?,
                })
            },
        )
        .optional()?)
}

/// Removes rows older than `before_us` and, beyond that, the oldest rows
/// past `keep_rows`; the newest row always stays. Leaves a signed anchor so
/// the rest still verifies. Returns how many rows went.
pub fn prune(
    conn: &mut Connection,
    sign: &Signer,
    before_us: Option<i64>,
    keep_rows: Option<i64>,
) -> Result<i64> {
    let tx = conn.transaction()?;
    let newest: Option<i64> = tx.query_row("SELECT max(id) FROM activity", [], |r| r.get(0))?;
    let Some(newest) = newest else { return Ok(0) };
    let mut cut: Option<i64> = None;
    if let Some(t) = before_us {
        cut = tx.query_row(
            "SELECT max(id) FROM activity WHERE time_us < ?1",
            [t],
            |r| r.get(0),
        )?;
    }
    if let Some(keep) = keep_rows.filter(|k| *k > 0) {
        let by_size: Option<i64> = tx
            .query_row(
                "SELECT id FROM activity ORDER BY id DESC LIMIT 1 OFFSET ?1",
                [keep],
                |r| r.get(0),
            )
            .optional()?;
        cut = cut.max(by_size);
    }
    let Some(cut) = cut.map(|c| c.min(newest - 1)).filter(|c| *c > 0) else {
        return Ok(0);
    };
    let (first_row_id, prev_hash): (i64, String) = tx.query_row(
        "SELECT id, prev_hash FROM activity WHERE id > ?1 ORDER BY id LIMIT 1",
        [cut],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let removed: i64 =
        tx.query_row("SELECT count(*) FROM activity WHERE id <= ?1", [cut], |r| {
            r.get(0)
        })?;
    let before = latest_anchor(&tx)?;
    let pruned_rows = before.as_ref().map_or(0, |a| a.pruned_rows) + removed;
    let last_cp: Option<i64> = tx.query_row(
        "SELECT max(seq) FROM checkpoints WHERE row_id <= ?1",
        [cut],
        |r| r.get(0),
    )?;
    let pruned_checkpoints_to = last_cp
        .or(before.as_ref().map(|a| a.pruned_checkpoints_to))
        .unwrap_or(0);
    let (public_key, signature) = sign(&Anchor::message(
        first_row_id,
        &prev_hash,
        pruned_rows,
        pruned_checkpoints_to,
    ));
    tx.execute("DELETE FROM checkpoints WHERE row_id <= ?1", [cut])?;
    tx.execute("DELETE FROM activity WHERE id <= ?1", [cut])?;
    tx.execute(
        "INSERT INTO anchors (first_row_id, prev_hash, pruned_rows, pruned_checkpoints_to, time_us, public_key, signature) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![first_row_id, prev_hash, pruned_rows, pruned_checkpoints_to, now_us(), public_key, signature],
    )?;
    tx.commit()?;
    Ok(removed)
}

/// Signs checkpoint messages; returns (public key hex, signature hex).
pub type Signer = dyn Fn(&[u8]) -> (String, String) + Send + Sync;
/// Checks a signature: (public key hex, message, signature hex).
pub type SignatureCheck = dyn Fn(&str, &[u8], &str) -> bool;

/// What `verify` found.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct Verification {
    pub rows: i64,
    pub checkpoints: i64,
    /// The first problem, if any: the row where it shows and what is wrong.
    pub problem: Option<Problem>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct Problem {
    pub row_id: Option<i64>,
    pub what: String,
}

/// Writes a checkpoint for the newest row, if there are rows past the last one.
pub fn checkpoint(conn: &Connection, sign: &Signer) -> Result<Option<Checkpoint>> {
    let head: Option<(i64, String)> = conn
        .query_row(
            "SELECT id, hash FROM activity ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((row_id, row_hash)) = head else {
        return Ok(None);
    };
    let last: Option<(i64, i64)> = conn
        .query_row(
            "SELECT seq, row_id FROM checkpoints ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if last.is_some_and(|(_, id)| id == row_id) {
        return Ok(None);
    }
    // After a prune took every checkpoint with it, numbering goes on from
    // the last one it removed, as `verify` expects.
    let pruned_to = latest_anchor(conn)?.map_or(0, |a| a.pruned_checkpoints_to);
    let seq = last.map_or(0, |(s, _)| s).max(pruned_to) + 1;
    let row_count: i64 = conn.query_row(
        "SELECT count(*) FROM activity WHERE id <= ?1",
        [row_id],
        |r| r.get(0),
    )?;
    // Counted from the very first row, pruned ones included.
    let row_count = row_count + latest_anchor(conn)?.map_or(0, |a| a.pruned_rows);
    let (public_key, signature) = sign(&Checkpoint::message(seq, row_id, &row_hash, row_count));
    let cp = Checkpoint {
        seq,
        row_id,
        row_hash,
        row_count,
        time_us: now_us(),
        public_key,
        signature,
    };
    conn.execute(
        "INSERT INTO checkpoints (seq, row_id, row_hash, row_count, time_us, public_key, signature) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![cp.seq, cp.row_id, cp.row_hash, cp.row_count, cp.time_us, cp.public_key, cp.signature],
    )?;
    Ok(Some(cp))
}

pub fn latest_checkpoint(conn: &Connection) -> Result<Option<Checkpoint>> {
    Ok(conn
        .query_row(
            "SELECT seq, row_id, row_hash, row_count, time_us, public_key, signature FROM checkpoints ORDER BY seq DESC LIMIT 1",
            [],
            |r| {
                Ok(Checkpoint {
                    seq: r.get(0)?,
                    row_id: r.get(1)?,
                    row_hash: r.get(2)?,
                    row_count: r.get(3)?,
                    time_us: r.get(4)?,
                    public_key: r.get(5)?,
                    signature: r.get(6)?,
                })
            },
        )
        .optional()?)
}

/// Walks the chain and the checkpoints. `trusted_key` is the public key the
/// checkpoints must be signed with; `trusted_head` the newest checkpoint as
/// kept outside the database.
pub fn verify(
    conn: &Connection,
    check: &SignatureCheck,
    trusted_key: Option<&str>,
    trusted_head: Option<&Checkpoint>,
) -> Result<Verification> {
    let problem = |row_id: Option<i64>, what: String| Some(Problem { row_id, what });
    // The chain, oldest first, in pages so that memory stays flat.
    let mut expected_prev = GENESIS.to_string();
    let mut rows = 0i64;
    let mut first_expected: Option<i64> = None;
    let mut last_seq_start = 0i64;
    // A pruned log starts at its newest signed anchor.
    if let Some(a) = latest_anchor(conn)? {
        let msg = Anchor::message(
            a.first_row_id,
            &a.prev_hash,
            a.pruned_rows,
            a.pruned_checkpoints_to,
        );
        if trusted_key.is_some_and(|k| k != a.public_key)
            || !check(&a.public_key, &msg, &a.signature)
        {
            return Ok(Verification {
                rows: 0,
                checkpoints: 0,
                problem: Some(Problem {
                    row_id: Some(a.first_row_id),
                    what: "the retention anchor is not signed by this install's key".into(),
                }),
            });
        }
        expected_prev = a.prev_hash.clone();
        rows = a.pruned_rows;
        first_expected = Some(a.first_row_id);
        last_seq_start = a.pruned_checkpoints_to;
    }
    let pruned_offset = rows;
    let mut hashes_at: std::collections::HashMap<i64, (String, i64)> =
        std::collections::HashMap::new();
    let checkpoint_rows: std::collections::HashSet<i64> = {
        let mut stmt = conn.prepare("SELECT row_id FROM checkpoints")?;
        stmt.query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    let mut found = None;
    {
        // One pass, oldest first; rows are read one at a time.
        let mut stmt = conn.prepare(&format!(
            "SELECT {} FROM activity ORDER BY id",
            crate::activity::ROW_COLUMNS
        ))?;
        let mut cursor = stmt.query([])?;
        while let Some(r) = cursor.next()? {
            let row = crate::activity::read_row(r)?;
            if let Some(first) = first_expected.take()
                && row.id != first
            {
                found = problem(
                    Some(row.id),
                    "rows after the retention anchor were deleted".into(),
                );
                break;
            }
            rows += 1;
            if row.prev_hash != expected_prev {
                found = problem(Some(row.id), "this row does not follow the one before it: a row before it was deleted, inserted or moved".into());
                break;
            }
            if row_hash(&row.prev_hash, row.time_us, &row.event) != row.hash {
                found = problem(
                    Some(row.id),
                    "this row was changed after it was written".into(),
                );
                break;
            }
            expected_prev = row.hash.clone();
            if checkpoint_rows.contains(&row.id) {
                hashes_at.insert(row.id, (row.hash, rows));
            }
        }
    }
    let mut checkpoints = 0i64;
    if found.is_none() {
        let mut stmt = conn.prepare("SELECT seq, row_id, row_hash, row_count, public_key, signature FROM checkpoints ORDER BY seq")?;
        let all: Vec<(i64, i64, String, i64, String, String)> = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut last_seq = last_seq_start;
        for (seq, row_id, hash, count, key, sig) in all {
            checkpoints += 1;
            if seq != last_seq + 1 {
                found = problem(
                    Some(row_id),
                    format!("checkpoint {} is missing", last_seq + 1),
                );
                break;
            }
            last_seq = seq;
            if trusted_key.is_some_and(|k| k != key)
                || !check(&key, &Checkpoint::message(seq, row_id, &hash, count), &sig)
            {
                found = problem(
                    Some(row_id),
                    format!("checkpoint {seq} is not signed by this install's key"),
                );
                break;
            }
            match hashes_at.get(&row_id) {
                Some((h, n)) if *h == hash && *n == count => {}
                Some(_) => {
                    found = problem(
                        Some(row_id),
                        format!("checkpoint {seq} does not match the row it covers"),
                    );
                    break;
                }
                None => {
                    found = problem(
                        Some(row_id),
                        format!("the row checkpoint {seq} covers is gone: the log was cut short"),
                    );
                    break;
                }
            }
        }
        if found.is_none()
            && let Some(head) = trusted_head
            && head.seq > last_seq
        {
            found = problem(
                Some(head.row_id),
                format!(
                    "checkpoints after {last_seq} (up to {}) and the rows they covered were removed: the log was cut short",
                    head.seq
                ),
            );
        }
    }
    Ok(Verification {
        rows: rows - pruned_offset,
        checkpoints,
        problem: found,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewEvent, Store};

    // A stand-in signature for the store's own tests (the real one is
    // ed25519, tested end to end): a hash of key and message.
    fn sign(msg: &[u8]) -> (String, String) {
        use sha2::{Digest, Sha256};
        (
            "k".into(),
            hex::encode(Sha256::digest([b"k".as_slice(), msg].concat())),
        )
    }

    fn check(key: &str, msg: &[u8], sig: &str) -> bool {
        key == "k" && sign(msg).1 == sig
    }

    async fn log_with_rows(n: usize) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("w.db")).expect("store");
        for i in 0..n {
            let ev = NewEvent {
                kind: "tool_call.requested".into(),
                tool: Some(format!("t{i}")),
                ..Default::default()
            };
            store.activity().append(ev).await.expect("append");
        }
        (dir, store)
    }

    fn verify_now(store: &Store, head: Option<&Checkpoint>) -> Verification {
        verify(&store.connect().expect("conn"), &check, Some("k"), head).expect("verify runs")
    }

    #[tokio::test]
    async fn an_untouched_log_verifies() {
        let (_d, store) = log_with_rows(10).await;
        let cp = checkpoint(&store.connect().expect("conn"), &sign)
            .expect("checkpoint")
            .expect("new");
        let v = verify_now(&store, Some(&cp));
        assert!(v.problem.is_none(), "{:?}", v.problem);
        assert_eq!((v.rows, v.checkpoints), (10, 1));
    }

    #[tokio::test]
    async fn edits_deletions_reorders_and_truncation_each_show() {
        // Edited.
        let (_d, store) = log_with_rows(10).await;
        let conn = store.connect().expect("conn");
        conn.execute_batch(
            "DROP TRIGGER activity_no_update; UPDATE activity SET tool = 'innocent' WHERE id = 4",
        )
        .expect("tamper");
        assert_eq!(
            verify_now(&store, None).problem.and_then(|p| p.row_id),
            Some(4)
        );

        // Deleted from the middle.
        let (_d, store) = log_with_rows(10).await;
        store
            .connect()
            .expect("conn")
            .execute("DELETE FROM activity WHERE id = 6", [])
            .expect("delete");
        assert_eq!(
            verify_now(&store, None).problem.and_then(|p| p.row_id),
            Some(7)
        );

        // Reordered (two rows swap places).
        let (_d, store) = log_with_rows(10).await;
        store
            .connect()
            .expect("conn")
            .execute_batch("DROP TRIGGER activity_no_update; UPDATE activity SET id = -1 WHERE id = 3; UPDATE activity SET id = 3 WHERE id = 5; UPDATE activity SET id = 5 WHERE id = -1;")
            .expect("swap");
        assert_eq!(
            verify_now(&store, None).problem.and_then(|p| p.row_id),
            Some(3)
        );

        // Truncated after a checkpoint: the checkpoint's row is gone.
        let (_d, store) = log_with_rows(10).await;
        let conn = store.connect().expect("conn");
        let cp = checkpoint(&conn, &sign).expect("checkpoint").expect("new");
        conn.execute("DELETE FROM activity WHERE id > 7", [])
            .expect("truncate");
        let p = verify_now(&store, Some(&cp))
            .problem
            .expect("truncation shows");
        assert!(p.what.contains("cut short"), "{}", p.what);

        // Truncated with its checkpoint: the kept head shows it.
        let (_d, store) = log_with_rows(10).await;
        let conn = store.connect().expect("conn");
        checkpoint(&conn, &sign).expect("first");
        store
            .activity()
            .append(NewEvent {
                kind: "x".into(),
                ..Default::default()
            })
            .await
            .expect("append");
        let head = checkpoint(&conn, &sign).expect("second").expect("new");
        conn.execute_batch(
            "DELETE FROM activity WHERE id > 10; DELETE FROM checkpoints WHERE seq = 2",
        )
        .expect("cut");
        let p = verify_now(&store, Some(&head))
            .problem
            .expect("truncation shows");
        assert!(p.what.contains("cut short"), "{}", p.what);

        // Pruned with a signed anchor: what is left still verifies, and
        // deleting right after the anchor shows.
        let (_d, store) = log_with_rows(10).await;
        let mut conn = store.connect().expect("conn");
        checkpoint(&conn, &sign).expect("first");
        for _ in 0..10 {
            store
                .activity()
                .append(NewEvent {
                    kind: "y".into(),
                    ..Default::default()
                })
                .await
                .expect("append");
        }
        let head = checkpoint(&conn, &sign).expect("second").expect("new");
        assert_eq!(prune(&mut conn, &sign, None, Some(5)).expect("prune"), 15);
        let v = verify_now(&store, Some(&head));
        assert!(v.problem.is_none(), "{:?}", v.problem);
        assert_eq!(v.rows, 5);
        conn.execute("DELETE FROM activity WHERE id = 16", [])
            .expect("delete");
        let p = verify_now(&store, Some(&head)).problem.expect("shows");
        assert!(p.what.contains("after the retention anchor"), "{}", p.what);
        conn.execute("UPDATE anchors SET pruned_rows = 1", [])
            .expect("forge anchor");
        let p = verify_now(&store, Some(&head)).problem.expect("shows");
        assert!(p.what.contains("anchor is not signed"), "{}", p.what);

        // A forged checkpoint signature shows.
        let (_d, store) = log_with_rows(3).await;
        let conn = store.connect().expect("conn");
        checkpoint(&conn, &sign).expect("checkpoint");
        conn.execute("UPDATE checkpoints SET signature = '00'", [])
            .expect("forge");
        let p = verify_now(&store, None).problem.expect("forgery shows");
        assert!(p.what.contains("not signed"), "{}", p.what);
    }
}
