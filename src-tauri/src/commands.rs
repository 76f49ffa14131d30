//! The commands the UI may call. `rpc` is the one door into warden-api: the
//! UI sends a typed request, the shell adds the session it keeps, and the API
//! decides what this person may do.

use tauri::{AppHandle, Emitter, Manager, State};
use tauri_plugin_autostart::ManagerExt;
use warden_api::{ApiError, ErrorCode, Request, Response};
use warden_auth::Sensitive;

use crate::state::Shell;

/// What each window may ask. The approval window answers approvals and
/// nothing else; the main window may do what the UI offers, but not what
/// only the CLI does (pruning the activity log, changing kept secrets).
fn allowed(window: &str, request: &Request) -> bool {
    match window {
        crate::windows::PROMPT => matches!(
            request,
            Request::Status
                | Request::Whoami
                | Request::Approvals
                | Request::ApprovalsWait { .. }
                | Request::ApprovalDecide { .. }
                | Request::Confirm { .. }
                | Request::SsoStepUpStart
                | Request::SsoStepUpFinish { .. }
        ),
        crate::windows::MAIN => !matches!(
            request,
            Request::AuditPrune { .. } | Request::SecretSet { .. } | Request::SecretRemove { .. }
        ),
        _ => false,
    }
}

/// What the window says when a click may not have been the person's (the UI
/// shows the answers that start with these words in its code dialog).
const COULD_NOT_TELL: &str = "Warden could not tell that this click came from you (on this desktop, a program can click for you)";

#[tauri::command]
pub async fn rpc(
    app: AppHandle,
    webview: tauri::Webview,
    shell: State<'_, Shell>,
    inputs: State<'_, std::sync::Arc<crate::input::Inputs>>,
    request: Request,
) -> Result<Response, ApiError> {
    if !allowed(webview.label(), &request) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "this window cannot do that; use the main Warden window or the `warden` command",
        ));
    }
    let api = shell.api()?;
    let session = shell.session();
    // A program can click for the person on X11: an approval, or a change
    // of policy, counts as a click only after the person's own input in
    // that window. Otherwise their code is the proof: an approval carries
    // it, any other change runs on the code just confirmed there.
    let label = webview.label().to_string();
    if let Some(what) = warden_api::needs_presence(&request)
        && let Err(not) = inputs.was_the_person(&label)
    {
        let approval = matches!(request, Request::ApprovalDecide { .. });
        if approval || !inputs.take_confirmation(&label) {
            api.record_refused(session.as_ref(), &request, not.why())
                .await?;
            let message = if approval {
                format!(
                    "{COULD_NOT_TELL}. Type the 6-digit code from your authenticator app, then choose again"
                )
            } else {
                format!(
                    "{COULD_NOT_TELL}. To {what}, type the 6-digit code from your authenticator app"
                )
            };
            return Err(ApiError::new(ErrorCode::MfaRequired, message));
        }
    }
    let confirming = matches!(
        request,
        Request::Confirm { .. } | Request::SsoStepUpFinish { .. }
    );
    let signing_in = matches!(
        request,
        Request::Init { .. }
            | Request::Login { .. }
            | Request::SsoLoginStart
            | Request::SsoLoginFinish { .. }
            | Request::Status
    );
    let logout = matches!(request, Request::Logout);
    let pause = match &request {
        Request::AgentsPause { paused } => Some(*paused),
        _ => None,
    };
    let call = serde_json::to_value(&request)
        .ok()
        .and_then(|v| v["call"].as_str().map(String::from))
        .unwrap_or_default();
    let started = std::time::Instant::now();
    let answer = api.call(session.as_ref(), request).await;
    tracing::debug!(%call, ok = answer.is_ok(), elapsed_ms = started.elapsed().as_millis() as u64, "app call");
    match answer {
        Ok(Response::SignedIn(mut signed)) => {
            // A new sign-in replaces the old session, which ends for good.
            if let Some(old) = session.filter(|old| old.expose() != signed.token.expose()) {
                let _ = api.call(Some(&old), Request::Logout).await;
            }
            shell.signed_in(signed.token.clone(), signed.user.clone());
            // The session stays in the shell; the page never sees it.
            signed.token = Sensitive::new(String::new());
            let _ = app.emit(warden_api::EVENT_SESSION, ());
            crate::watch::refresh(&app);
            Ok(Response::SignedIn(signed))
        }
        Ok(Response::SsoStarted(started)) => {
            open_browser(started.url.clone());
            Ok(Response::SsoStarted(started))
        }
        Ok(Response::LoginStarted(started)) => {
            open_browser(started.url.clone());
            Ok(Response::LoginStarted(started))
        }
        Ok(r) => {
            if confirming {
                inputs.confirmed(&label);
            }
            if logout {
                sign_out(&app, &shell, session.as_ref());
            }
            if let Some(paused) = pause {
                crate::tray::set_paused(&app, paused);
            }
            Ok(r)
        }
        // Signing out always ends the app's session, whatever the API said.
        Err(e) if logout => {
            sign_out(&app, &shell, session.as_ref());
            Err(e)
        }
        Err(e) => {
            // A session that no longer works (expired, signed out elsewhere,
            // the person disabled) sends the app back to sign-in; a wrong
            // code in a working session does not.
            if e.code == ErrorCode::Unauthenticated
                && !signing_in
                && let Some(token) = &session
            {
                let still = api.call(Some(token), Request::Whoami).await;
                if still.is_err_and(|w| w.code == ErrorCode::Unauthenticated) {
                    sign_out(&app, &shell, Some(token));
                }
            }
            Err(e)
        }
    }
}

/// Ends the app's session, when it is still the one `token` names (a slow
/// failed call must not sign out a newer sign-in).
fn sign_out(app: &AppHandle, shell: &Shell, token: Option<&Sensitive<String>>) {
    if shell.signed_out_if(token) {
        let _ = app.emit(warden_api::EVENT_SESSION, ());
        crate::watch::refresh(app);
    }
}

/// Opens the system browser (never a webview) for a sign-in, off the
/// async runtime.
fn open_browser(url: String) {
    std::thread::spawn(move || {
        if !warden_auth::oauth::flow::open_browser(&url) {
            tracing::info!("no browser was opened; the app shows the address to open");
        }
    });
}

/// The approval window closes itself when nothing is waiting.
#[tauri::command]
pub fn prompt_close(app: AppHandle) {
    if let Some(w) = app.get_webview_window(crate::windows::PROMPT) {
        let _ = w.close();
    }
}

fn autostart_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::Unavailable,
        format!(
            "could not change whether Warden starts at login ({e}); try again, or change it in your system's startup settings"
        ),
    )
}

#[tauri::command]
pub fn autostart_get(app: AppHandle) -> Result<bool, ApiError> {
    app.autolaunch().is_enabled().map_err(autostart_error)
}

#[tauri::command]
pub fn autostart_set(app: AppHandle, enabled: bool) -> Result<bool, ApiError> {
    let launcher = app.autolaunch();
    if enabled {
        launcher.enable().map_err(autostart_error)?;
    } else {
        launcher.disable().map_err(autostart_error)?;
    }
    launcher.is_enabled().map_err(autostart_error)
}
