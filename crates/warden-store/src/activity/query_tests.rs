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
