//! `warden-activity-bench`: the activity log's costs, measured.
//!
//! 1. Appends: concurrent callers each awaiting their row's commit (the call
//!    path), with the hash chain; prints logged calls per second.
//! 2. With a million rows: a filtered page, a full-text search and a CSV
//!    export, each timed; prints the figures.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use warden_store::{ActivityFilter, ActivityLog, NewEvent, Store};

#[derive(Parser)]
struct Args {
    /// Rows appended by concurrent callers in the throughput test.
    #[arg(long, default_value_t = 100_000)]
    appends: usize,
    /// Concurrent callers.
    #[arg(long, default_value_t = 64)]
    callers: usize,
    /// Rows in the table for the query figures.
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
}

fn event(i: usize) -> NewEvent {
    let tools = [
        "read_file",
        "write_file",
        "list_directory",
        "search_files",
        "echo",
    ];
    NewEvent {
        kind: "tool_call.requested".into(),
        call_id: Some(format!("{i:016x}")),
        agent: Some(format!("agent-{}", i % 20)),
        on_behalf_of: Some(format!("person-{}", i % 5)),
        server: Some(if i.is_multiple_of(3) { "fs" } else { "ev" }.into()),
        tool: Some(tools[i % tools.len()].into()),
        arguments: Some(format!(
            r#"{{"path":"/home/p{}/doc{}.txt","note":"word{}"}}"#,
            i % 5,
            i,
            i % 1000
        )),
        arguments_hash: Some(format!("{i:064x}")),
        decision: Some(
            if i.is_multiple_of(10) {
                "deny"
            } else {
                "allow"
            }
            .into(),
        ),
        ..Default::default()
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("bench.db"))?;

    // 1. Appends from concurrent callers, each waiting for its commit.
    let started = Instant::now();
    let per = args.appends / args.callers;
    let mut tasks = Vec::new();
    for c in 0..args.callers {
        let log = store.activity().clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                log.append(event(c * per + i)).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let took = started.elapsed();
    let appended = per * args.callers;
    println!(
        "appends: {appended} rows by {} concurrent callers, each awaiting its commit: {:.0} logged calls/s ({:.2} s)",
        args.callers,
        appended as f64 / took.as_secs_f64(),
        took.as_secs_f64()
    );
    let conn = store.connect()?;
    let v = warden_store::audit::verify(&conn, &|_, _, _| true, None, None)?;
    println!(
        "chain after appends: {} rows, intact: {}",
        v.rows,
        v.problem.is_none()
    );

    // 2. Fill to the target size through the same writer, in big groups.
    let started = Instant::now();
    let log = Arc::new(store.activity().clone());
    let mut pending = Vec::new();
    for i in appended..args.rows {
        let log = log.clone();
        pending.push(tokio::spawn(async move { log.append(event(i)).await }));
        if pending.len() >= 4096 {
            for p in pending.drain(..) {
                p.await??;
            }
        }
    }
    for p in pending {
        p.await??;
    }
    let total = ActivityLog::count(&conn, &ActivityFilter::default())?;
    println!(
        "seeded to {total} rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let time = |label: &str, f: &mut dyn FnMut() -> Result<usize>| -> Result<()> {
        // Best of five, after one warm-up.
        f()?;
        let mut best = f64::MAX;
        let mut n = 0;
        for _ in 0..5 {
            let t = Instant::now();
            n = f()?;
            best = best.min(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!("{label}: {best:.2} ms ({n} rows)");
        Ok(())
    };
    time("filtered page (agent + decision, 50 newest)", &mut || {
        let f = ActivityFilter {
            agent: Some("agent-7".into()),
            decision: Some("allow".into()),
            limit: 50,
            ..Default::default()
        };
        Ok(ActivityLog::query(&conn, &f)?.len())
    })?;
    time(
        "filtered page (person + server + time range, 50 newest)",
        &mut || {
            let now = warden_store::now_us();
            let f = ActivityFilter {
                person: Some("person-3".into()),
                server: Some("fs".into()),
                since_us: Some(now - 3_600_000_000),
                limit: 50,
                ..Default::default()
            };
            Ok(ActivityLog::query(&conn, &f)?.len())
        },
    )?;
    time("full-text search (\"word42\", 50 newest)", &mut || {
        let f = ActivityFilter {
            search: Some("word42".into()),
            limit: 50,
            ..Default::default()
        };
        Ok(ActivityLog::query(&conn, &f)?.len())
    })?;
    time("calls per day and decision (all rows)", &mut || {
        Ok(ActivityLog::calls_per_day(&conn, &ActivityFilter::default())?.len())
    })?;
    let started = Instant::now();
    let out = std::io::BufWriter::new(std::fs::File::create(dir.path().join("export.csv"))?);
    let mut out = out;
    {
        use std::io::Write;
        writeln!(out, "{}", warden_api::export::CSV_HEADER)?;
    }
    // The same row writer `warden audit export --format csv` uses.
    let n = ActivityLog::for_each(&conn, &ActivityFilter::default(), |r| {
        warden_api::export::write_csv_row(&mut out, &r)?;
        Ok(true)
    })?;
    println!(
        "CSV export of {n} rows (streamed): {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
