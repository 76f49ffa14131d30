//! The CLI's half of proving presence (`warden_api::Presence`): what a
//! request over the socket brings, and, in a terminal, a polkit text agent
//! so the system can ask for the person's password there.

use std::io::{IsTerminal, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use warden_api::{Presence, Request};
use warden_auth::Sensitive;

/// polkit's own text agent, where Debian, Fedora and Arch install it.
const PKTTYAGENT: &str = "/usr/bin/pkttyagent";

/// `--code`: prove presence with an authenticator code instead of the
/// system's password prompt.
static ASK_FOR_CODE: OnceLock<bool> = OnceLock::new();

pub fn ask_for_code(yes: bool) {
    let _ = ASK_FOR_CODE.set(yes);
}

/// The proof sent with `req` to a running Warden.
pub fn for_request(req: &Request) -> Result<Option<Presence>> {
    let Some(what) = warden_api::needs_presence(req) else {
        return Ok(None);
    };
    if *ASK_FOR_CODE.get().unwrap_or(&false) {
        // Read from the terminal, never the command line: another process
        // of yours sees a command line, and would spend the code first.
        if !std::io::stdin().is_terminal() {
            bail!("--code asks for the code in a terminal; run the command in one");
        }
        let code = rpassword::prompt_password(format!(
            "To {what}, confirm it is you. Current code from your authenticator app: "
        ))?;
        return Ok(Some(Presence::Code(Sensitive::new(
            code.trim().to_string(),
        ))));
    }
    if std::io::stdin().is_terminal() {
        eprintln!("To {what}, Warden asks your system to confirm it is you.");
    }
    Ok(Some(Presence::System))
}

/// A polkit text agent for this process while a request waits, so that in a
/// terminal the system asks for the password there. It answers for this
/// process only (polkit passes over a fallback agent for a process, so it is
/// registered as the process's own); where there is no terminal or no
/// `pkttyagent`, none starts, and the desktop's agent or nobody answers.
pub struct TextAgent(Child);

impl TextAgent {
    pub fn start() -> Option<TextAgent> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        let (ready_read, ready_write) = nix::unistd::pipe().ok()?;
        let notify_fd = ready_write.as_raw_fd();
        // By its full path: a `pkttyagent` earlier on the search path could be
        // anyone's program, shown the person's password.
        let mut cmd = Command::new(PKTTYAGENT);
        cmd.arg("--process")
            .arg(std::process::id().to_string())
            .arg("--notify-fd")
            .arg(notify_fd.to_string())
            .stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::null());
        let child = cmd.spawn().ok()?;
        // The agent closes its end once it is registered (or exits).
        drop(ready_write);
        wait_closed(ready_read, Duration::from_secs(5));
        Some(TextAgent(child))
    }
}

impl Drop for TextAgent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_closed(fd: OwnedFd, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut file = std::fs::File::from(fd);
    // A blocking read on a pipe returns 0 when the last writer closes; the
    // agent never writes. The deadline only guards a wedged agent.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1];
        let _ = file.read(&mut buf);
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
}
