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
