//! The app's windows: the main one (from tauri.conf.json) and the small,
//! always-on-top approval window opened when an agent's call waits.

use tauri::{AppHandle, Emitter, Manager, WebviewUrl, WebviewWindowBuilder};

pub const MAIN: &str = "main";
pub const PROMPT: &str = "prompt";

pub fn show_main(app: &AppHandle) {
    if let Some(w) = app.get_webview_window(MAIN) {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
    }
}

/// Shows the main window on one of its pages.
pub fn navigate(app: &AppHandle, route: &str) {
    show_main(app);
    let _ = app.emit_to(MAIN, warden_api::EVENT_NAVIGATE, route);
}

/// Opens (or brings forward) the approval window.
pub fn show_prompt(app: &AppHandle) {
    if let Some(w) = app.get_webview_window(PROMPT) {
        let _ = w.show();
        let _ = w.set_focus();
        return;
    }
    let built =
        WebviewWindowBuilder::new(app, PROMPT, WebviewUrl::App("index.html#/prompt".into()))
            .title("Warden — an agent is waiting for you")
            .inner_size(480.0, 640.0)
            .resizable(true)
            .always_on_top(true)
            .center()
            .focused(true)
            .build();
    if let Err(e) = built {
        // The notification and the main window's Approvals page still work.
        tracing::error!(error = %e, "could not open the approval window");
    }
}
