//! Keeps the windows and the tray current: pending approvals (from the
//! broker, as they change), and server states and new activity (checked
//! every two seconds, sent only when they changed).

use std::time::Duration;

use tauri::{AppHandle, Emitter, Manager};
use warden_api::ApprovalsChanged;

use crate::state::Shell;

/// The approvals the signed-in person may answer (all of them while no one
/// is signed in: the tray still says that something waits).
fn pending(app: &AppHandle) -> (u64, usize) {
    let shell = app.state::<Shell>();
    let Some(gw) = shell.gateway() else {
        return (0, 0);
    };
    let broker = gw.broker();
    let version = *broker.watch().borrow();
    let count = match shell.user() {
        None => broker.pending(None).len(),
        Some(u) if u.role == "admin" => broker
            .pending(None)
            .iter()
            .filter(|r| r.person.is_none() || r.person.as_deref() == Some(u.name.as_str()))
            .count(),
        Some(u) => broker.pending(Some(&u.name)).len(),
    };
    (version, count)
}

/// Tells the tray and the windows what waits now.
pub fn refresh(app: &AppHandle) -> usize {
    let (version, count) = pending(app);
    crate::tray::set_pending(app, count);
    let _ = app.emit(
        warden_api::EVENT_APPROVALS,
        ApprovalsChanged {
            version,
            pending: count as u32,
        },
    );
    count
}

pub fn spawn(app: AppHandle) {
    let Some(gw) = app.state::<Shell>().gateway() else {
        return;
    };
    let mut changes = gw.broker().watch();
    let a = app.clone();
    tauri::async_runtime::spawn(async move {
        let mut before = 0;
        loop {
            let now = refresh(&a);
            // A new request brings the approval window forward.
            if now > before {
                crate::windows::show_prompt(&a);
            }
            before = now;
            if changes.changed().await.is_err() {
                break;
            }
        }
    });
    tauri::async_runtime::spawn(async move {
        let mut servers = String::new();
        let mut last_row: Option<i64> = None;
        let mut every = tokio::time::interval(Duration::from_secs(2));
        loop {
            every.tick().await;
            let now = serde_json::to_string(&gw.servers()).unwrap_or_default();
            if now != servers {
                servers = now;
                let _ = app.emit(warden_api::EVENT_SERVERS, ());
            }
            let store = app.state::<Shell>().api().map(|api| api.store().clone());
            if let Ok(store) = store {
                let row = tokio::task::spawn_blocking(move || {
                    store.connect().ok().and_then(|c| {
                        c.query_row("SELECT MAX(id) FROM activity", [], |r| {
                            r.get::<_, Option<i64>>(0)
                        })
                        .ok()
                        .flatten()
                    })
                })
                .await
                .ok()
                .flatten();
                if row != last_row {
                    last_row = row;
                    let _ = app.emit(warden_api::EVENT_ACTIVITY, ());
                }
            }
        }
    });
}
