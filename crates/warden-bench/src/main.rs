//! `warden-load`: measures tools/call latency (p50, p99) and throughput
//! against MCP endpoints, in one run, alternating targets round by round so
//! that both see the same machine conditions.
//!
//! ```text
//! warden-load --target direct=http://127.0.0.1:3001/mcp \
//!             --target warden=http://127.0.0.1:7411/mcp@TOKEN \
//!             --tool echo=ev__echo --calls 2000 --concurrency 1,16
//! ```
//! Each target speaks the legacy session protocol (initialize, then calls
//! with Mcp-Session-Id), which every peer understands. The first target is the
//! baseline; the others are printed as ratios to it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// NAME=URL[@BEARER]; the first is the baseline.
    #[arg(long = "target", required = true)]
    targets: Vec<String>,
    /// Tool name per target, NAME=TOOL (default "echo").
    #[arg(long = "tool")]
    tools: Vec<String>,
    #[arg(long, default_value_t = 2000)]
    calls: usize,
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    concurrency: Vec<usize>,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

struct Target {
    name: String,
    url: String,
    bearer: Option<String>,
    tool: String,
}

struct Session {
    client: reqwest::Client,
    target: Arc<Target>,
    session: Option<String>,
}

impl Session {
    async fn open(target: Arc<Target>) -> Result<Session> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()?;
        let mut s = Session {
            client,
            target,
            session: None,
        };
        let init = serde_json::json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"warden-load","version":"1"}}});
        let resp = s.post(init.to_string()).await?;
        s.session = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        read_answer(resp).await?;
        let note = serde_json::json!({"jsonrpc":"2.0","method":"notifications/initialized"});
        s.post(note.to_string()).await?;
        Ok(s)
    }

    async fn post(&self, body: String) -> Result<reqwest::Response> {
        let mut req = self
            .client
            .post(&self.target.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25");
        if let Some(b) = &self.target.bearer {
            req = req.header("authorization", format!("Bearer {b}"));
        }
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        Ok(req.body(body).send().await?)
    }

    async fn call(&self, id: usize) -> Result<Duration> {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{}","arguments":{{"message":"load {id}"}}}}}}"#,
            self.target.tool
        );
        let start = Instant::now();
        let resp = self.post(body).await?;
        let text = read_answer(resp).await?;
        let took = start.elapsed();
        if !text.contains("Echo: load") {
            bail!(
                "{}: unexpected answer: {}",
                self.target.name,
                &text[..text.len().min(200)]
            );
        }
        Ok(took)
    }
}

async fn read_answer(resp: reqwest::Response) -> Result<String> {
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        bail!("HTTP {status}: {text}");
    }
    Ok(text)
}

struct Figures {
    p50: Duration,
    p99: Duration,
    per_sec: f64,
}

async fn run(target: Arc<Target>, calls: usize, concurrency: usize) -> Result<Figures> {
    let mut sessions = Vec::new();
    for _ in 0..concurrency {
        sessions.push(Arc::new(Session::open(target.clone()).await?));
    }
    // Warm up connections and caches.
    for s in &sessions {
        s.call(0).await?;
    }
    let per = calls.div_ceil(concurrency);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (w, s) in sessions.iter().enumerate() {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per);
            for i in 0..per {
                lat.push(s.call(w * per + i + 1).await?);
            }
            anyhow::Ok(lat)
        }));
    }
    let mut all = Vec::with_capacity(calls);
    for t in tasks {
        all.extend(t.await??);
    }
    let wall = start.elapsed();
    all.sort();
    let pick = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    Ok(Figures {
        p50: pick(0.50),
        p99: pick(0.99),
        per_sec: all.len() as f64 / wall.as_secs_f64(),
    })
}

fn parse_targets(args: &Args) -> Result<Vec<Arc<Target>>> {
    args.targets
        .iter()
        .map(|t| {
            let (name, rest) = t
                .split_once('=')
                .context("--target must be NAME=URL[@BEARER]")?;
            let (url, bearer) = match rest.rsplit_once('@') {
                Some((u, b)) if !b.contains('/') => (u.to_string(), Some(b.to_string())),
                _ => (rest.to_string(), None),
            };
            let tool = args
                .tools
                .iter()
                .find_map(|x| x.strip_prefix(&format!("{name}=")).map(String::from))
                .unwrap_or_else(|| "echo".into());
            Ok(Arc::new(Target {
                name: name.into(),
                url,
                bearer,
                tool,
            }))
        })
        .collect()
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let targets = parse_targets(&args)?;
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "warden-load: {} calls per run, {} rounds, {cpus} CPUs",
        args.calls, args.rounds
    );
    for &c in &args.concurrency {
        let mut best: Vec<Option<Figures>> = targets.iter().map(|_| None).collect();
        for _ in 0..args.rounds {
            for (i, t) in targets.iter().enumerate() {
                let f = run(t.clone(), args.calls, c).await?;
                // Keep each target's best round: the least disturbed one.
                if best[i].as_ref().is_none_or(|b| f.p50 < b.p50) {
                    best[i] = Some(f);
                }
            }
        }
        println!("\nconcurrency {c}");
        println!(
            "{:<10} {:>10} {:>10} {:>12} {:>10} {:>10}",
            "target", "p50 µs", "p99 µs", "calls/s", "p50 ×", "calls/s ×"
        );
        let base = best[0].as_ref().context("no baseline")?;
        let (b50, bps) = (base.p50.as_secs_f64(), base.per_sec);
        for (t, f) in targets.iter().zip(&best) {
            let f = f.as_ref().context("no figures")?;
            println!(
                "{:<10} {:>10.0} {:>10.0} {:>12.0} {:>10.2} {:>10.2}",
                t.name,
                f.p50.as_secs_f64() * 1e6,
                f.p99.as_secs_f64() * 1e6,
                f.per_sec,
                f.p50.as_secs_f64() / b50,
                f.per_sec / bps
            );
        }
    }
    Ok(())
}
