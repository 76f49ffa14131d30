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
/// approval window or with `warden approvals approve`.
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

fn body(r: &ApprovalRequest) -> String {
    let who = r.person.as_deref().unwrap_or("no owner");
    let args = r
        .arguments
        .as_ref()
        .map(|a| {
            let s = a.to_string();
            if s.chars().count() > 200 {
                format!("{}…", s.chars().take(200).collect::<String>())
            } else {
                s
            }
        })
        .unwrap_or_else(|| "(no arguments)".into());
    format!(
        "Agent {} (for {who}) wants to run {} on {}.\nRisk: {} — {}\nArguments: {args}\nApprove in Warden or with: warden approvals approve {}",
        r.agent,
        r.tool,
        r.server,
        r.risk.as_str(),
        r.why.join("; "),
        r.id
    )
}

impl Surface for DesktopNotifier {
    fn offer(&self, r: &ApprovalRequest) {
        if !self.enabled.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let summary = format!("Approve {} on {}?", r.tool, r.server);
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
