//! Proof that the person is at the machine, for what arrives over the
//! control socket.
//!
//! Anything that can connect to the socket runs as the person's own OS
//! user, and so can an agent: a session token it found in the keychain, or a
//! session row it wrote into the database, looks exactly like the person's
//! own CLI. So an approval or a change of policy that arrives over the socket
//! does not count on the session's "second factor in the last 5 minutes" (a
//! column a same-user process can set): each one carries its own proof,
//! checked here, for that one request:
//!
//! - [`Presence::System`]: Warden asks the operating system to authenticate
//!   the person. On Linux that is polkit's `CheckAuthorization` for the
//!   action [`POLKIT_ACTION`] (`auth_self`, never kept), with the calling
//!   process as the subject; polkit's authentication agent (the desktop's
//!   password dialog, or `pkttyagent` in a terminal) asks for the person's
//!   OS password, which polkit's own setuid helper checks through PAM.
//!   Nothing a process of the user can read answers it.
//! - [`Presence::Code`]: a fresh code from the person's authenticator app,
//!   checked against the secret this process unsealed with the person's
//!   password ([`crate::people`]): a process that only reads files and the
//!   keychain can compute none (one that writes the database can swap in a
//!   secret of its own; the README's threat model says so).
//!
//! The app's own window does not come through here: it is this process.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use warden_auth::Sensitive;
use warden_store::users::User;

use crate::people::Unseal;
use crate::{Api, ApiError, ApiResult, ErrorCode};

/// The polkit action Warden asks for (`polkit/dev.warden.app.policy`, which
/// the package installs in `/usr/share/polkit-1/actions/`).
pub const POLKIT_ACTION: &str = "dev.warden.app.confirm";

/// Where the system bus listens (the address polkit's own helper uses).
#[cfg(target_os = "linux")]
const SYSTEM_BUS: &str = "unix:path=/run/dbus/system_bus_socket";

/// How long the person has to answer the system's prompt.
const SYSTEM_PROMPT_LIMIT: Duration = Duration::from_secs(120);

/// What a request over the socket brings to show the person is there.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Ask the operating system to authenticate the person.
    System,
    /// A fresh code from the person's authenticator app.
    Code(Sensitive<String>),
}

/// The process on the other end of the socket, as the kernel reports it.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    pub pid: u32,
    pub uid: u32,
}

/// A request that came over the socket: who sent it and what proof it
/// brought.
#[derive(Clone)]
pub(crate) struct Remote {
    pub peer: Option<Peer>,
    pub presence: Option<Presence>,
}

impl Api {
    /// For a request over the socket that needs the person (`what` says
    /// what it does): its own proof, checked now. Refusals are recorded.
    pub(crate) async fn require_presence(
        &self,
        remote: &Remote,
        actor: &User,
        token: &Sensitive<String>,
        req: &crate::Request,
        what: &str,
    ) -> ApiResult<()> {
        // Each refusal with the words its record keeps.
        let refused = match &remote.presence {
            None => (
                "no proof of presence",
                ApiError::new(
                    ErrorCode::MfaRequired,
                    format!(
                        "from the command line, Warden asks each time before it lets you {what}: run the command in a terminal so your system can ask for your password, or run it again as `warden --code …`, which asks for a code from your authenticator app"
                    ),
                ),
            ),
            // The code is counted and recorded by the step-up itself.
            Some(Presence::Code(code)) => {
                return self
                    .step_up(
                        actor,
                        Some(token),
                        code.expose().trim(),
                        what,
                        Unseal::Unlocked,
                    )
                    .await;
            }
            Some(Presence::System) => match remote.peer {
                Some(peer) => match system_confirms(peer).await {
                    Ok(()) => return Ok(()),
                    Err(e) => ("presence not confirmed", e),
                },
                None => (
                    "presence not confirmed",
                    ApiError::new(
                        ErrorCode::MfaRequired,
                        "Warden could not tell which program asked, so it cannot ask your system to confirm it is you: run it again as `warden --code …`, which asks for a code from your authenticator app",
                    ),
                ),
            },
        };
        let (why, error) = refused;
        self.record_refusal(req, why).await?;
        Err(error)
    }
}

/// Asks the OS to authenticate the person for `peer`'s request.
#[cfg(target_os = "linux")]
async fn system_confirms(peer: Peer) -> ApiResult<()> {
    let unavailable = |detail: String| {
        ApiError::new(
            ErrorCode::MfaRequired,
            format!(
                "your system could not ask you to confirm it is you ({detail}), so nothing was changed: run it again as `warden --code …`, which asks for a code from your authenticator app, or ask your administrator to install Warden's polkit action"
            ),
        )
    };
    let start_time = process_start_time(peer.pid).ok_or_else(|| {
        ApiError::new(
            ErrorCode::MfaRequired,
            "the program that asked has already gone; nothing was changed",
        )
    })?;
    // The system bus at its fixed address, never DBUS_SYSTEM_BUS_ADDRESS:
    // an environment a process of the person's could have set for Warden's
    // start would name a bus where anything answers as polkit.
    let conn = async {
        zbus::connection::Builder::address(SYSTEM_BUS)?
            .build()
            .await
    }
    .await
    .map_err(|e| unavailable(format!("no system bus: {e}")))?;
    let subject_details: HashMap<&str, zbus::zvariant::Value<'_>> = HashMap::from([
        ("pid", zbus::zvariant::Value::from(peer.pid)),
        ("start-time", zbus::zvariant::Value::from(start_time)),
        ("uid", zbus::zvariant::Value::from(peer.uid as i32)),
    ]);
    let subject = ("unix-process", subject_details);
    // No details: polkit takes them only from root or the action's owner.
    let details: HashMap<&str, &str> = HashMap::new();
    let cancel_id = format!("warden-{}-{}", std::process::id(), rand::random::<u64>());
    // 1: the agent may ask the person.
    let allow_interaction: u32 = 1;
    let body = (
        subject,
        POLKIT_ACTION,
        details,
        allow_interaction,
        cancel_id.as_str(),
    );
    let call = conn.call_method(
        Some("org.freedesktop.PolicyKit1"),
        "/org/freedesktop/PolicyKit1/Authority",
        Some("org.freedesktop.PolicyKit1.Authority"),
        "CheckAuthorization",
        &body,
    );
    let reply = match tokio::time::timeout(SYSTEM_PROMPT_LIMIT, call).await {
        Ok(reply) => reply,
        Err(_) => {
            let _ = conn
                .call_method(
                    Some("org.freedesktop.PolicyKit1"),
                    "/org/freedesktop/PolicyKit1/Authority",
                    Some("org.freedesktop.PolicyKit1.Authority"),
                    "CancelCheckAuthorization",
                    &(cancel_id.as_str(),),
                )
                .await;
            return Err(ApiError::new(
                ErrorCode::MfaRequired,
                "nobody answered your system's password prompt in 2 minutes, so nothing was changed",
            ));
        }
    };
    let reply = reply.map_err(|e| match &e {
        zbus::Error::MethodError(name, msg, _)
            if name.as_str() == "org.freedesktop.PolicyKit1.Error.Failed"
                && msg.as_deref().is_some_and(|m| m.contains("not registered")) =>
        {
            unavailable(format!(
                "Warden's polkit action {POLKIT_ACTION} is not installed"
            ))
        }
        zbus::Error::MethodError(name, _, _)
            if name.as_str() == "org.freedesktop.DBus.Error.ServiceUnknown" =>
        {
            unavailable("polkit is not running".into())
        }
        _ => unavailable(e.to_string()),
    })?;
    let (authorized, _challenge, _details): (bool, bool, HashMap<String, String>) = reply
        .body()
        .deserialize()
        .map_err(|e| unavailable(format!("polkit sent an unreadable answer: {e}")))?;
    if authorized {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::MfaRequired,
        "your system did not confirm it is you (the password was wrong, the prompt was dismissed, or no password prompt could be shown), so nothing was changed. Run the command in a terminal or your desktop session, or run it again as `warden --code …`, which asks for a code from your authenticator app",
    ))
}

/// macOS (LocalAuthentication) and Windows (Windows Hello) are not wired
/// yet: there a request proves presence with a code.
#[cfg(not(target_os = "linux"))]
async fn system_confirms(_peer: Peer) -> ApiResult<()> {
    Err(ApiError::new(
        ErrorCode::MfaRequired,
        "Warden cannot yet ask this operating system to confirm it is you: run it again as `warden --code …`, which asks for a code from your authenticator app",
    ))
}

/// The start time of `pid` in clock ticks since boot (field 22 of
/// `/proc/PID/stat`), which polkit uses with the pid so that a reused pid is
/// not mistaken for the process that asked.
#[cfg(target_os = "linux")]
fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold anything,
    // spaces and parentheses included: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_start_time_of_this_process_is_read_past_its_name() {
        let mine = process_start_time(std::process::id()).expect("start time");
        assert!(mine > 0);
        // A child started later has a later (or equal) start time.
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep");
        let theirs = process_start_time(child.id()).expect("child start time");
        let _ = child.kill();
        let _ = child.wait();
        assert!(theirs >= mine);
        assert_eq!(process_start_time(u32::MAX), None);
    }
}
