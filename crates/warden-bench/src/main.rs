//! `warden-load`: measures tools/call latency (p50, p99) and throughput
//! against MCP endpoints, in one run, alternating targets round by round so
//! that both see the same machine conditions.
//!
//! ```text
//! warden-load --target direct=http://127.0.0.1:3001/mcp \
//!             --target warden=http://127.0.0.1:7411/mcp@TOKEN \
//!             --tool echo=ev__echo --calls 2000 --concurrency 1,16
//! ```
//! Each HTTP target speaks the legacy session protocol (initialize, then
//! calls with Mcp-Session-Id), which every peer understands. A target
//! `NAME=stdio:COMMAND ARGS...` is the floor: the driver speaks JSON-RPC
//! lines to the server's stdin itself, no HTTP at all (all workers share the
//! one pipe, as a proxy in front of it does). The first target is the
//! baseline; the others are printed as ratios to it. The driver's own CPU
//! use is printed, to show it is not the bottleneck.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

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
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
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
    /// For a stdio target: the shared pipe.
    stdio: Option<Arc<StdioConn>>,
}

impl Session {
    fn over_stdio(target: Arc<Target>, conn: Arc<StdioConn>) -> Session {
        Session {
            client: reqwest::Client::new(),
            target,
            session: None,
            stdio: Some(conn),
        }
    }

    async fn open(target: Arc<Target>) -> Result<Session> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()?;
        let mut s = Session {
            client,
            target,
            session: None,
            stdio: None,
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
        let text = match &self.stdio {
            Some(conn) => conn.request(id as u64, body).await?,
            None => read_answer(self.post(body).await?).await?,
        };
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

/// One server process spoken to over stdio: requests go down one pipe,
/// answers are matched to their callers by id.
struct StdioConn {
    stdin: tokio::sync::Mutex<tokio::process::ChildStdin>,
    pending: Arc<std::sync::Mutex<HashMap<u64, tokio::sync::oneshot::Sender<String>>>>,
    _child: tokio::process::Child,
}

impl StdioConn {
    async fn spawn(command: &str) -> Result<Arc<StdioConn>> {
        let mut parts = command.split_whitespace();
        let program = parts.next().context("stdio: needs a command")?;
        let mut child = tokio::process::Command::new(program)
            .args(parts)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("could not start {program}"))?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let pending: Arc<std::sync::Mutex<HashMap<u64, tokio::sync::oneshot::Sender<String>>>> =
            Arc::default();
        let p = pending.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let id = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v["id"].as_u64());
                if let Some(id) = id
                    && let Some(tx) = p.lock().ok().and_then(|mut m| m.remove(&id))
                {
                    let _ = tx.send(line);
                }
            }
        });
        let conn = Arc::new(StdioConn {
            stdin: tokio::sync::Mutex::new(stdin),
            pending,
            _child: child,
        });
        let init = r#"{"jsonrpc":"2.0","id":999999999,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"warden-load","version":"1"}}}"#;
        // A small id: JavaScript servers read JSON numbers as doubles.
        conn.request(999_999_999, init.to_string()).await?;
        conn.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_string())
            .await?;
        Ok(conn)
    }

    async fn send(&self, mut line: String) -> Result<()> {
        line.push('\n');
        self.stdin.lock().await.write_all(line.as_bytes()).await?;
        Ok(())
    }

    async fn request(&self, id: u64, body: String) -> Result<String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.pending
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .insert(id, tx);
        self.send(body).await?;
        Ok(rx.await?)
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
    p90: Duration,
    p99: Duration,
    per_sec: f64,
    /// The driver's own CPU use during the run (1.0 = one core busy).
    driver_cpu: f64,
}

fn cpu_seconds() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or(0.0)
}

async fn run(target: Arc<Target>, calls: usize, concurrency: usize) -> Result<Figures> {
    let mut sessions = Vec::new();
    if let Some(cmd) = target.url.strip_prefix("stdio:") {
        let conn = StdioConn::spawn(cmd).await?;
        for _ in 0..concurrency {
            sessions.push(Arc::new(Session::over_stdio(target.clone(), conn.clone())));
        }
    } else {
        for _ in 0..concurrency {
            sessions.push(Arc::new(Session::open(target.clone()).await?));
        }
    }
    // Warm up connections and caches.
    for s in &sessions {
        s.call(0).await?;
    }
    let per = calls.div_ceil(concurrency);
    let cpu_before = cpu_seconds();
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
    let driver_cpu = (cpu_seconds() - cpu_before) / wall.as_secs_f64();
    all.sort();
    let pick = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    Ok(Figures {
        p50: pick(0.50),
        p90: pick(0.90),
        p99: pick(0.99),
        per_sec: all.len() as f64 / wall.as_secs_f64(),
        driver_cpu,
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
                _ if rest.starts_with("stdio:") => (rest.to_string(), None),
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
            "{:<14} {:>9} {:>9} {:>9} {:>10} {:>8} {:>10} {:>11}",
            "target", "p50 µs", "p90 µs", "p99 µs", "calls/s", "p50 ×", "calls/s ×", "driver CPU"
        );
        let base = best[0].as_ref().context("no baseline")?;
        let (b50, bps) = (base.p50.as_secs_f64(), base.per_sec);
        for (t, f) in targets.iter().zip(&best) {
            let f = f.as_ref().context("no figures")?;
            println!(
                "{:<14} {:>9.0} {:>9.0} {:>9.0} {:>10.0} {:>8.2} {:>10.2} {:>10.0}%",
                t.name,
                f.p50.as_secs_f64() * 1e6,
                f.p90.as_secs_f64() * 1e6,
                f.p99.as_secs_f64() * 1e6,
                f.per_sec,
                f.p50.as_secs_f64() / b50,
                f.per_sec / bps,
                f.driver_cpu * 100.0
            );
        }
    }
    Ok(())
}
