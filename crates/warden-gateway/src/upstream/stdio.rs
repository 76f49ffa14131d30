//! Local servers: a child process in its own process group, speaking
//! newline-delimited JSON-RPC on stdin/stdout. stderr goes to the log.
//!
//! The child gets a clean environment (PATH, HOME, LANG, TMPDIR, USER and what
//! the configuration gives it), never Warden's own wholesale. Shutdown closes
//! stdin, waits, then signals the whole group: TERM, then KILL. If Warden
//! itself dies, the kernel sends the child SIGKILL (PR_SET_PDEATHSIG).

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, LinesCodec};

use super::PeerError;
use super::mux::Mux;
use crate::jsonrpc::Envelope;

/// The largest line accepted from a server (one JSON-RPC message).
const MAX_LINE: usize = 64 * 1024 * 1024;

const INHERITED: &[&str] = &["PATH", "HOME", "LANG", "TMPDIR", "USER"];

pub struct StdioLink {
    tx: mpsc::Sender<String>,
}

impl StdioLink {
    pub async fn send(&self, line: String) -> Result<(), PeerError> {
        self.tx
            .send(line)
            .await
            .map_err(|_| PeerError::Closed("the server's input is closed".into()))
    }
}

/// The running child. Dropping it kills the process group.
pub struct Process {
    child: Child,
    pgid: Option<Pid>,
    pub reader_done: tokio::sync::oneshot::Receiver<String>,
}

pub fn spawn(
    server: &str,
    command: &str,
    args: &[String],
    cwd: Option<&std::path::Path>,
    env: &BTreeMap<String, String>,
    mux: Arc<Mux>,
) -> Result<(StdioLink, Process), PeerError> {
    let mut cmd = Command::new(command);
    cmd.args(args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for key in INHERITED {
        if let Ok(v) = std::env::var(key) {
            cmd.env(key, v);
        }
    }
    cmd.envs(env);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    set_parent_death_signal(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| {
        PeerError::Start(match e.kind() {
            std::io::ErrorKind::NotFound => format!(
                "the command {command:?} was not found; check that it is installed and on PATH, or give its full path"
            ),
            std::io::ErrorKind::PermissionDenied => {
                format!("the command {command:?} is not executable (permission denied)")
            }
            _ => format!("could not start {command:?}: {e}"),
        })
    })?;
    let pgid = child.id().map(|id| Pid::from_raw(id as i32));
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(PeerError::Start(
            "the child's pipes were not available".into(),
        ));
    };

    let (tx, mut rx) = mpsc::channel::<String>(1024);
    tokio::spawn(async move {
        let mut stdin = tokio::io::BufWriter::new(stdin);
        while let Some(first) = rx.recv().await {
            let mut line = first;
            loop {
                line.push('\n');
                if stdin.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
                match rx.try_recv() {
                    Ok(next) => line = next,
                    Err(_) => break,
                }
            }
            if stdin.flush().await.is_err() {
                return;
            }
        }
        // Sender dropped: closing stdin asks the server to exit.
        let _ = stdin.shutdown().await;
    });

    let (done_tx, reader_done) = tokio::sync::oneshot::channel();
    let name = server.to_string();
    tokio::spawn(async move {
        let mut lines = FramedRead::new(stdout, LinesCodec::new_with_max_length(MAX_LINE));
        let reason = loop {
            match lines.next().await {
                Some(Ok(line)) => {
                    if line.trim().is_empty() {
                        continue;
                    }
                    match Envelope::parse(line.as_bytes()) {
                        Ok(env) => mux.dispatch(env, None),
                        Err(e) => {
                            tracing::warn!(server = %name, error = %e, "server wrote a line that is not JSON-RPC; ignored")
                        }
                    }
                }
                Some(Err(e)) => break format!("the server's output could not be read: {e}"),
                None => break "the server closed its output".to_string(),
            }
        };
        mux.close();
        let _ = done_tx.send(reason);
    });

    let name = server.to_string();
    tokio::spawn(async move {
        let mut lines = FramedRead::new(stderr, LinesCodec::new_with_max_length(64 * 1024));
        while let Some(line) = lines.next().await {
            match line {
                Ok(l) => tracing::info!(target: "warden::upstream::stderr", server = %name, "{l}"),
                Err(_) => continue,
            }
        }
    });

    Ok((
        StdioLink { tx },
        Process {
            child,
            pgid,
            reader_done,
        },
    ))
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set_parent_death_signal(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only makes
    // the prctl system call, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn set_parent_death_signal(_cmd: &mut Command) {}

impl Process {
    /// Waits for the child to exit on its own; the exit status in words.
    /// Waits until the server exits or closes its output; why, in words.
    pub async fn wait(&mut self) -> String {
        let status = tokio::select! {
            s = self.child.wait() => s,
            why = &mut self.reader_done => {
                return why.unwrap_or_else(|_| "the server stopped".into());
            }
        };
        match status {
            Ok(status) => match status.code() {
                Some(code) => format!("the server exited with status {code}"),
                None => "the server was killed by a signal".to_string(),
            },
            Err(e) => format!("the server could not be waited for: {e}"),
        }
    }

    /// Clean shutdown: stdin is already closed by dropping the link; wait, then
    /// TERM the group, wait, then KILL it.
    pub async fn stop(mut self, grace: Duration) {
        if tokio::time::timeout(grace, self.child.wait()).await.is_ok() {
            self.kill_group(Signal::SIGKILL);
            self.pgid = None;
            return;
        }
        self.kill_group(Signal::SIGTERM);
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            self.kill_group(Signal::SIGKILL);
            let _ = self.child.wait().await;
        } else {
            // Helpers the server left in its group go too.
            self.kill_group(Signal::SIGKILL);
        }
        self.pgid = None;
    }

    fn kill_group(&self, sig: Signal) {
        if let Some(pgid) = self.pgid {
            let _ = killpg(pgid, sig);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill_group(Signal::SIGKILL);
    }
}
