//! Warden's desktop app. The shell is thin: it starts the gateway in-process
//! (the same startup as `warden serve`), keeps the signed-in person's session
//! so no web code ever holds a token, forwards every UI call to warden-api
//! through one `rpc` command, and owns what only a desktop has: the tray, the
//! always-on-top approval window, notifications' clicks, single instance,
//! window state and start at login.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod input;
mod state;
mod tray;
mod watch;
mod windows;

use std::path::PathBuf;

use tauri::Manager;
use warden_api::runtime::{Paths, Running};

use crate::state::Shell;

/// `--data-dir DIR` (or `WARDEN_DATA_DIR`): where this install keeps its data;
/// otherwise the platform's folders.
fn data_dir_arg() -> Option<PathBuf> {
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        if a == "--data-dir" {
            return args.next().map(PathBuf::from);
        }
    }
    std::env::var_os("WARDEN_DATA_DIR").map(PathBuf::from)
}

/// SIGTERM or SIGINT (a logout, a service manager, Ctrl-C) quits the way the
/// tray's Quit does: servers stopped, the activity log's closing checkpoint
/// signed.
fn quit_on_signal(app: tauri::AppHandle) {
    #[cfg(unix)]
    tauri::async_runtime::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            app.exit(0);
        }
    });
    #[cfg(not(unix))]
    let _ = app;
}

/// Warden's windows only ever show Warden's own pages: any other address
/// (a link, a redirect, injected script) is refused.
fn navigation_guard() -> tauri::plugin::TauriPlugin<tauri::Wry> {
    tauri::plugin::Builder::new("navigation-guard")
        .on_navigation(|_webview, url| {
            let own = url.scheme() == "tauri" || url.host_str() == Some("tauri.localhost");
            if !own {
                tracing::warn!(%url, "refused to leave Warden's own pages");
            }
            own
        })
        .build()
}

fn main() {
    // Before anything secret is read: no other process of this user may
    // trace this one or read its memory.
    if let Err(e) = warden_auth::process::harden() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    let paths = match Paths::resolve(data_dir_arg()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {}", e.message);
            std::process::exit(1);
        }
    };
    let level = warden_gateway::config::Config::load(&paths.config)
        .ok()
        .and_then(|c| c.log.level);
    let _log_guard = warden_api::logging::init(&paths.data_dir, level.as_deref());

    // WebKit's remote control (what tauri-driver drives the tests with)
    // would let any process of this user click through the windows; a
    // release build never allows it.
    #[cfg(not(debug_assertions))]
    if std::env::var_os("TAURI_WEBVIEW_AUTOMATION").is_some() {
        eprintln!(
            "warning: TAURI_WEBVIEW_AUTOMATION is ignored: Warden's windows cannot be remote-controlled"
        );
        // SAFETY: no other thread runs yet.
        unsafe { std::env::remove_var("TAURI_WEBVIEW_AUTOMATION") };
    }
    let inputs = std::sync::Arc::new(input::Inputs::default());
    let app = tauri::Builder::default()
        .manage(inputs.clone())
        .plugin(inputs.plugin())
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            windows::show_main(app);
        }))
        .plugin(
            tauri_plugin_window_state::Builder::default()
                .with_denylist(&[windows::PROMPT])
                .build(),
        )
        .plugin(navigation_guard())
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            None,
        ))
        .invoke_handler(tauri::generate_handler![
            commands::rpc,
            commands::prompt_close,
            commands::autostart_get,
            commands::autostart_set,
        ])
        .setup(move |app| {
            // The gateway runs in the app's own runtime. When it cannot start
            // (no keychain, the port taken), the window still opens and says why.
            let started = tauri::async_runtime::block_on(Running::start(&paths, None));
            if let Err(e) = &started {
                tracing::error!(error = %e.message, "the gateway did not start");
            }
            let shell = Shell::new(started.map_err(|e| e.message));
            app.manage(shell);
            tray::build(app.handle())?;
            quit_on_signal(app.handle().clone());
            watch::spawn(app.handle().clone());
            if let Some(gw) = app.state::<Shell>().gateway() {
                let handle = app.handle().clone();
                gw.on_notification_open(std::sync::Arc::new(move |_id: &str| {
                    windows::show_prompt(&handle);
                }));
            }
            // A notice that leads somewhere (a server to sign in to again)
            // opens that page in the window.
            let handle = app.handle().clone();
            warden_gateway::notify::on_notice_open(std::sync::Arc::new(move |route: &str| {
                if route.starts_with('/') {
                    windows::navigate(&handle, route);
                }
            }));
            Ok(())
        })
        .on_window_event(|window, event| {
            // Closing the main window keeps Warden running in the tray.
            if let tauri::WindowEvent::CloseRequested { api, .. } = event
                && window.label() == windows::MAIN
            {
                api.prevent_close();
                let _ = window.hide();
            }
        })
        .build(tauri::generate_context!("../tauri.conf.json"));
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: Warden's window could not start: {e}");
            std::process::exit(1);
        }
    };
    app.run(|handle, event| {
        if let tauri::RunEvent::ExitRequested { api, code, .. } = &event {
            // Windows closing is not quitting: only the tray's Quit ends Warden.
            if code.is_none() {
                api.prevent_exit();
            }
        }
        if let tauri::RunEvent::Exit = event
            && let Some(running) = handle.state::<Shell>().take_running()
        {
            tauri::async_runtime::block_on(running.shutdown());
        }
    });
}
