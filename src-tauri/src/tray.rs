//! The tray icon: how many approvals wait, and a menu to open Warden, go to
//! the pending approvals, pause every agent, or quit.

use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Emitter, Manager, Wry};
use warden_api::Request;

use crate::state::Shell;

const TRAY: &str = "warden";

/// Menu items whose text or check changes.
pub struct TrayItems {
    pending: MenuItem<Wry>,
    pause: CheckMenuItem<Wry>,
}

pub fn build(app: &AppHandle) -> tauri::Result<()> {
    let open = MenuItem::with_id(app, "open", "Open Warden", true, None::<&str>)?;
    let pending = MenuItem::with_id(app, "pending", "No approvals waiting", true, None::<&str>)?;
    let paused = app.state::<Shell>().gateway().is_some_and(|g| g.paused());
    let pause =
        CheckMenuItem::with_id(app, "pause", "Pause all agents", true, paused, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit Warden", true, None::<&str>)?;
    let separator = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(app, &[&open, &pending, &pause, &separator, &quit])?;
    let mut tray = TrayIconBuilder::with_id(TRAY)
        .tooltip("Warden")
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| match event.id().as_ref() {
            "open" => crate::windows::show_main(app),
            "pending" => crate::windows::navigate(app, "/approvals"),
            "pause" => toggle_pause(app),
            "quit" => app.exit(0),
            _ => {}
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    app.manage(TrayItems { pending, pause });
    Ok(())
}

/// Shows how many approvals wait, on the icon and in the menu. Tray and
/// menu changes happen on the main (GTK) thread, queued from anywhere and
/// never waited for.
pub fn set_pending(app: &AppHandle, count: usize) {
    let handle = app.clone();
    let _ = app.run_on_main_thread(move || show_pending(&handle, count));
}

fn show_pending(app: &AppHandle, count: usize) {
    let (title, item) = match count {
        0 => (None, "No approvals waiting".to_string()),
        1 => (Some("1".to_string()), "1 approval waiting".to_string()),
        n => (Some(n.to_string()), format!("{n} approvals waiting")),
    };
    if let Some(tray) = app.tray_by_id(TRAY) {
        let _ = tray.set_title(title.as_deref());
        let tip = match count {
            0 => "Warden".to_string(),
            _ => format!("Warden — {item}"),
        };
        let _ = tray.set_tooltip(Some(tip));
    }
    if let Some(items) = app.try_state::<TrayItems>() {
        let _ = items.pending.set_text(item);
    }
}

pub fn set_paused(app: &AppHandle, paused: bool) {
    let handle = app.clone();
    let _ = app.run_on_main_thread(move || {
        if let Some(items) = handle.try_state::<TrayItems>() {
            let _ = items.pause.set_checked(paused);
        }
    });
}

/// Pausing needs an admin's session; without one, the app opens to say so.
/// Resuming is never done from here: any process of the session can click a
/// tray item over D-Bus (the menu is exported on the session bus), and
/// letting agents run again is a change of policy that needs the person. So
/// the menu opens Home, where "Resume agents" is a click in the window (with
/// its input check) or a code.
fn toggle_pause(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let shell = app.state::<Shell>();
        let want = !shell.gateway().is_some_and(|g| g.paused());
        if !want {
            set_paused(&app, true);
            crate::windows::show_main(&app);
            let _ = app.emit(
                "warden://notice",
                "Agents are still paused. To let them run again, choose Resume agents on Home.",
            );
            return;
        }
        let result = match shell.api() {
            Ok(api) => {
                api.call(
                    shell.session().as_ref(),
                    Request::AgentsPause { paused: want },
                )
                .await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(_) => {
                set_paused(&app, want);
                let _ = app.emit(warden_api::EVENT_SERVERS, ());
            }
            Err(e) => {
                set_paused(&app, !want);
                crate::windows::show_main(&app);
                let _ = app.emit(
                    "warden://notice",
                    format!("Agents were not paused: {}", e.message),
                );
            }
        }
    });
}
