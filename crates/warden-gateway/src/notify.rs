//! Native desktop notifications (notify-rust): an approval request, a
//! quarantined tool. Showing one never blocks a call and never decides
//! anything: when there is no notification server (or no session bus) the
//! failure is logged and the request waits for another surface.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::approvals::{ApprovalRequest, Broker, Outcome, Surface};

const APP_NAME: &str = "Warden";

/// Desktop notifications for approval requests. On Linux they carry a Deny
/// action; a click on the notification itself opens the request in the
/// app when there is one. There is deliberately no Approve action: a
/// notification's answer arrives as an `ActionInvoked` D-Bus signal, which
/// any process of the same user can emit (notify-rust does not check the
/// sender), so an agent could approve its own call. A forged Deny or Open
/// costs nothing. Approving needs a person's session, so it happens in the
/// approval window or with `warden approvals approve`; the notification's
/// words say what the call would do and never name a command.
pub struct DesktopNotifier {
    broker: Weak<Broker>,
    /// Approval id → notification id, to replace it when answered.
    shown: Arc<Mutex<HashMap<String, u32>>>,
    timeout_ms: u32,
    /// Called when a person clicks a notification (the app opens the request).
    on_open: Option<OpenHandler>,
    /// Whether notifications are on now (an admin's approval of the
    /// settings can turn them off while Warden runs).
    enabled: Arc<std::sync::atomic::AtomicBool>,
}

/// What a click on a notification does (the app opens the request).
pub type OpenHandler = Arc<dyn Fn(&str) + Send + Sync>;

impl DesktopNotifier {
    pub fn new(broker: &Arc<Broker>, timeout: std::time::Duration) -> DesktopNotifier {
        DesktopNotifier {
            broker: Arc::downgrade(broker),
            shown: Arc::default(),
            timeout_ms: timeout.as_millis().min(u32::MAX as u128) as u32,
            on_open: None,
            enabled: Arc::new(true.into()),
        }
    }

    /// Shows notifications only while `enabled` is set.
    pub fn while_enabled(mut self, enabled: Arc<std::sync::atomic::AtomicBool>) -> DesktopNotifier {
        self.enabled = enabled;
        self
    }

    pub fn on_open(mut self, f: OpenHandler) -> DesktopNotifier {
        self.on_open = Some(f);
        self
    }
}

/// A value as a person reads it: text as it is, on one line and cut at 60
/// characters (a path keeps its end, where the file's name is), anything
/// else as JSON.
fn value_words(v: &serde_json::Value) -> String {
    let text = match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let line: Vec<char> = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.len() <= 60 {
        return line.into_iter().collect();
    }
    let path = text.starts_with('/') || text.starts_with("~/") || text.contains(":\\");
    if path {
        format!("…{}", line[line.len() - 59..].iter().collect::<String>())
    } else {
        format!("{}…", line[..59].iter().collect::<String>())
    }
}

/// The notification's headline: who asks to do what, in words.
fn summary(r: &ApprovalRequest) -> String {
    format!("{} asks to use {} ({})", r.agent, r.tool, r.server)
}

/// The notification's text: what the call would do, why Warden asks, and
/// what happens without an answer. The arguments are the log's (secrets
/// masked: a notification can show on a locked screen), at most three.
fn body(r: &ApprovalRequest) -> String {
    let mut lines = Vec::new();
    match r.arguments.as_ref().and_then(|a| a.as_object()) {
        Some(args) if !args.is_empty() => {
            for (k, v) in args.iter().take(3) {
                lines.push(format!("{k}: {}", value_words(v)));
            }
            if args.len() > 3 {
                lines.push(format!("and {} more", args.len() - 3));
            }
        }
        _ => lines.push("It sends no details with the call.".into()),
    }
    if let Some(why) = r.why.first() {
        let mut why = why.clone();
        if let Some(first) = why.get(..1) {
            why.replace_range(..1, &first.to_uppercase());
        }
        if !why.ends_with('.') {
            why.push('.');
        }
        lines.push(format!("Why Warden asks: {why}"));
    }
    let secs = (r.expires_at_us - r.requested_at_us).max(0) / 1_000_000;
    let wait = if secs >= 120 && secs % 60 == 0 {
        format!("{} minutes", secs / 60)
    } else {
        format!("{secs} seconds")
    };
    let owner = match r.person.as_deref() {
        Some(p) => format!(" It acts for {p}."),
        None => String::new(),
    };
    lines.push(format!(
        "Open Warden to allow or deny it.{owner} With no answer in {wait}, it is denied."
    ));
    lines.join("\n")
}

impl Surface for DesktopNotifier {
    fn offer(&self, r: &ApprovalRequest) {
        if !self.enabled.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let summary = summary(r);
        let body = body(r);
        let id = r.id.clone();
        let shown = self.shown.clone();
        let broker = self.broker.clone();
        let on_open = self.on_open.clone();
        let timeout = self.timeout_ms;
        // The D-Bus round trip and the wait for a click happen on a thread
        // of their own: a slow or missing notification server delays nothing.
        std::thread::spawn(move || {
            let mut n = notify_rust::Notification::new();
            n.appname(APP_NAME)
                .summary(&summary)
                .body(&body)
                .timeout(notify_rust::Timeout::Milliseconds(timeout));
            #[cfg(all(unix, not(target_os = "macos")))]
            {
                n.urgency(notify_rust::Urgency::Critical)
                    .action("default", "Open")
                    .action("deny", "Deny");
            }
            match n.show() {
                Ok(handle) => {
                    tracing::info!(approval = %id, "approval request shown as a desktop notification");
                    #[cfg(all(unix, not(target_os = "macos")))]
                    {
                        shown.lock().insert(id.clone(), handle.id());
                        handle.wait_for_action(|action| match action {
                            "deny" => {
                                if let Some(b) = broker.upgrade() {
                                    b.deny_from_prompt(&id, "desktop notification");
                                }
                            }
                            "default" => {
                                if let Some(f) = &on_open {
                                    f(&id);
                                }
                            }
                            _ => {}
                        });
                        shown.lock().remove(&id);
                    }
                    #[cfg(not(all(unix, not(target_os = "macos"))))]
                    {
                        let _ = (handle, &shown, &broker, &on_open);
                    }
                }
                Err(e) => tracing::warn!(
                    approval = %id,
                    error = %e,
                    "could not show a desktop notification for an approval request; it waits in `warden approvals` and the app"
                ),
            }
        });
    }

    fn withdraw(&self, r: &ApprovalRequest, outcome: &Outcome) {
        #[cfg(all(unix, not(target_os = "macos")))]
        {
            let Some(nid) = self.shown.lock().get(&r.id).copied() else {
                return;
            };
            let text = match outcome {
                Outcome::Approved { by, .. } => format!("Approved by {by}."),
                Outcome::Denied { by, .. } => format!("Denied by {by}."),
                Outcome::TimedOut => "Nobody answered in time, so it was denied.".into(),
                Outcome::Withdrawn => "The agent withdrew the request.".into(),
            };
            let summary = format!("{} on {}: answered", r.tool, r.server);
            std::thread::spawn(move || {
                // Replacing the notification ends the wait for its buttons.
                let shown = notify_rust::Notification::new()
                    .appname(APP_NAME)
                    .id(nid)
                    .summary(&summary)
                    .body(&text)
                    .timeout(notify_rust::Timeout::Milliseconds(4000))
                    .show();
                if let Err(e) = shown {
                    tracing::debug!(error = %e, "could not update a notification");
                }
            });
        }
        #[cfg(not(all(unix, not(target_os = "macos"))))]
        {
            let _ = (r, outcome);
        }
    }
}

/// A one-off notice for admins (a tool was quarantined). Never blocks.
pub fn notice(summary: String, body: String) {
    notice_to(summary, body, None);
}

/// Where a click on a notice takes the person: set by the app, which opens
/// the route in its window. Without the app, notices only inform.
static NOTICE_OPEN: std::sync::OnceLock<OpenHandler> = std::sync::OnceLock::new();

/// The app's handler for notices that lead somewhere (see `notice_to`).
pub fn on_notice_open(f: OpenHandler) {
    let _ = NOTICE_OPEN.set(f);
}

/// A notice with a way to act on it: when the app is running, the notice
/// carries a button `label`, and it or a click on the notice opens `route`
/// in the app. Any process of the same user can forge that click; at most
/// it opens the page and whatever the page starts (a server sign-in in the
/// browser, which the person still completes there). It decides nothing.
/// Never blocks.
pub fn notice_to(summary: String, body: String, link: Option<(String, String)>) {
    let open = NOTICE_OPEN.get().cloned();
    std::thread::spawn(move || {
        let mut n = notify_rust::Notification::new();
        n.appname(APP_NAME).summary(&summary).body(&body);
        #[cfg(all(unix, not(target_os = "macos")))]
        let link = match (&open, link) {
            (Some(_), Some((route, label))) => {
                n.action("default", &label).action("open", &label);
                Some(route)
            }
            _ => None,
        };
        match n.show() {
            Ok(handle) => {
                #[cfg(all(unix, not(target_os = "macos")))]
                if let (Some(route), Some(open)) = (link, open) {
                    handle.wait_for_action(|action| {
                        if action == "default" || action == "open" {
                            open(&route);
                        }
                    });
                }
                #[cfg(not(all(unix, not(target_os = "macos"))))]
                let _ = (handle, link, open);
            }
            Err(e) => tracing::warn!(error = %e, %summary, "could not show a desktop notification"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_says_what_the_call_does_and_names_no_command() {
        let r = ApprovalRequest {
            id: "0123abcd".into(),
            agent_id: 7,
            agent: "claude-desktop".into(),
            person: Some("ana".into()),
            chain: None,
            server: "files".into(),
            tool: "write_file".into(),
            risk: warden_policy::Risk::High,
            why: vec!["it may change or delete files".into()],
            arguments: Some(serde_json::json!({
                "path": "/home/ana/a folder with a long name/and another one/notes.txt",
                "content": "line one\nline two",
                "mode": 420,
                "backup": true,
            })),
            arguments_hash: "a".into(),
            definition_hash: "d".into(),
            method: "tools/call".into(),
            sent: None,
            session: "s".into(),
            session_choice: true,
            requested_at_us: 0,
            expires_at_us: 120_000_000,
        };
        assert_eq!(summary(&r), "claude-desktop asks to use write_file (files)");
        let text = body(&r);
        assert_eq!(
            text,
            "path: …ome/ana/a folder with a long name/and another one/notes.txt\ncontent: line one line two\nmode: 420\nand 1 more\n\
             Why Warden asks: It may change or delete files.\n\
             Open Warden to allow or deny it. It acts for ana. With no answer in 2 minutes, it is denied."
        );
        assert!(!text.contains("warden ") && !text.contains('{'), "{text}");
    }
}
