//! The application API: every CLI subcommand and every app command is one
//! [`Request`] answered by [`Api::call`]. The same types travel over the
//! control socket, so a CLI talking to a running gateway and a CLI working
//! on the data folder directly run the same code.
//!
//! [`Api::call`] (here) signs the caller in; `dispatch.rs` sends each request
//! to its area: `people/`, `agents.rs`, `roles.rs`, `servers.rs`,
//! `secrets.rs`, `oauth.rs` (servers' sign-ins), `sso/`, `approvals.rs`,
//! `activity.rs`, `audit.rs`, `review.rs`, `desktop.rs` (what only the app
//! asks). `record.rs` writes the rows for the API's own changes.

mod activity;
mod agents;
mod approvals;
mod audit;
mod control;
mod desktop;
mod dispatch;
mod error;
pub mod export;
pub mod logging;
mod oauth;
mod people;
mod presence;
mod record;
mod request;
mod review;
mod roles;
pub mod runtime;
mod secrets;
mod servers;
pub mod settings;
mod sso;
mod vault;

use std::path::PathBuf;
use std::sync::Arc;

use warden_auth::{Clock, Keychain, Sensitive, SystemClock};
use warden_gateway::Gateway;
use warden_store::Store;

pub use activity::{ExportFormat, LogFilter};
pub use approvals::{Consent, Pending, ToolReview};
pub use control::{ControlClient, serve_control, socket_path};
pub use desktop::{
    AppStatus, ApprovalsChanged, ClientApp, ClientConnected, EVENT_ACTIVITY, EVENT_APPROVALS,
    EVENT_NAVIGATE, EVENT_SERVERS, EVENT_SESSION, Exported, ServerPreset,
};
pub use dispatch::needs_presence;
pub use error::{ApiError, ApiResult, ErrorCode};
pub use oauth::{LoginStarted, OAuthTokens, ProbeCheck, ProbeReport};
pub use people::{Enrollment, Invitation, SignedIn};
pub use presence::{POLKIT_ACTION, Peer, Presence};
pub use request::{AgentCreated, Request, Response};
pub use review::{AgentReview, PersonReview, Review};
pub use secrets::secret_resolver;
pub use sso::{SsoConfig, SsoStarted, spawn_refresher};

/// How long an agent's old credential keeps working after a rotation.
pub const ROTATION_OVERLAP_US: i64 = 60 * 60 * 1_000_000;

/// An authenticator secret this process opened, with the sealed text it
/// was opened from (none for a clear secret from an older Warden).
type Unlocked = (Option<String>, Sensitive<Vec<u8>>);

/// What the API works on: the store, the configuration file, the keychain,
/// and the running gateway when there is one.
#[derive(Clone)]
pub struct Api {
    store: Store,
    config_path: PathBuf,
    keychain: Keychain,
    gateway: Option<Gateway>,
    clock: Arc<dyn Clock>,
    /// The person making the current call, for the record.
    actor: Option<String>,
    /// Sign-ins to remote servers waiting for the browser.
    logins: oauth::Logins,
    /// Where agents reach the running gateway.
    endpoint: Option<String>,
    data_dir: Option<PathBuf>,
    /// The data folder when it was chosen (`--data-dir`), which commands
    /// written for other programs must name.
    explicit_data_dir: Option<PathBuf>,
    /// Authenticator secrets this process opened with their owners'
    /// passwords, by person: only in this (non-dumpable) process's memory.
    unlocked: Arc<std::sync::Mutex<std::collections::HashMap<i64, Unlocked>>>,
    /// Set for a request that came over the control socket: who sent it and
    /// the proof of presence it brought ([`presence`]).
    remote: Option<presence::Remote>,
    /// Failed attempts and used code steps as this process counted them,
    /// beside the database's columns, which a same-user process can reset.
    attempts: Arc<std::sync::Mutex<std::collections::HashMap<i64, people::Attempts>>>,
}

impl Api {
    pub fn new(
        store: Store,
        config_path: PathBuf,
        keychain: Keychain,
        gateway: Option<Gateway>,
    ) -> Api {
        Api {
            store,
            config_path,
            keychain,
            gateway,
            clock: Arc::new(SystemClock),
            actor: None,
            logins: oauth::logins(),
            endpoint: None,
            data_dir: None,
            explicit_data_dir: None,
            unlocked: Arc::default(),
            remote: None,
            attempts: Arc::default(),
        }
    }

    /// Where this install keeps its data; `explicit` when it was chosen
    /// rather than the platform's default.
    pub fn with_data_dir(mut self, dir: PathBuf, explicit: bool) -> Api {
        self.explicit_data_dir = explicit.then(|| dir.clone());
        self.data_dir = Some(dir);
        self
    }

    /// The running gateway's address, for the status call.
    pub fn with_endpoint(mut self, endpoint: String) -> Api {
        self.endpoint = Some(endpoint);
        self
    }

    /// The same API with another clock (tests of expiry and lockout).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Api {
        self.clock = clock;
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// One call that came over the control socket from `peer`, with the
    /// proof of presence it brought: approvals and changes of policy need
    /// that proof, for this request, instead of a session's recent code.
    pub async fn call_remote(
        &self,
        session: Option<&Sensitive<String>>,
        req: Request,
        peer: Option<Peer>,
        presence: Option<Presence>,
    ) -> ApiResult<Response> {
        let api = Api {
            remote: Some(presence::Remote { peer, presence }),
            ..self.clone()
        };
        api.call(session, req).await
    }

    /// Records that the shell refused `req` before it reached the API (an
    /// approval from a window whose input did not come from the person),
    /// under the session's person.
    pub async fn record_refused(
        &self,
        session: Option<&Sensitive<String>>,
        req: &Request,
        why: &str,
    ) -> ApiResult<()> {
        let actor = match session {
            Some(token) => Some(self.session_user(token).await?.name),
            None => None,
        };
        let api = Api {
            actor,
            ..self.clone()
        };
        api.record_refusal(req, why).await
    }

    /// One call. Every call but `init` and `login` needs a session; what the
    /// person may do is decided here, not by the UI or CLI.
    pub async fn call(
        &self,
        session: Option<&Sensitive<String>>,
        req: Request,
    ) -> ApiResult<Response> {
        match req {
            Request::Init { admin, password } => {
                let enrolled = self.enroll_first_admin(&admin, password).await?;
                let api = Api {
                    actor: Some(admin.clone()),
                    ..self.clone()
                };
                api.record_change(
                    "person.created",
                    &admin,
                    None,
                    Some(serde_json::json!({"role": "admin"})),
                )
                .await?;
                Ok(Response::Enrolled(Box::new(enrolled)))
            }
            Request::Enrol {
                name,
                code,
                password,
            } => Ok(Response::Enrolled(Box::new(
                self.enrol(&name, code.expose(), password).await?,
            ))),
            Request::Login {
                name,
                password,
                totp,
                recovery,
            } => Ok(Response::SignedIn(
                self.sign_in(&name, password, totp, recovery).await?,
            )),
            Request::Status => self.status(session).await,
            Request::Unlock { password } => {
                let token = session.ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::Unauthenticated,
                        "sign in instead: `warden login NAME` unlocks Warden too",
                    )
                })?;
                Ok(Response::Me(self.unlock(token, password, true).await?))
            }
            Request::SsoLoginStart => self.sso_start(sso::Purpose::SignIn).await,
            Request::SsoLoginFinish {
                flow,
                totp,
                password,
            } => {
                self.sso_login_finish(&flow, totp.as_deref(), password.as_ref())
                    .await
            }
            req => {
                let token = session.ok_or_else(|| {
                    ApiError::new(ErrorCode::Unauthenticated, "sign in first: `warden login NAME` (or `warden init --admin NAME` on a new install)")
                })?;
                let actor = self.session_user(token).await?;
                let api = Api {
                    actor: Some(actor.name.clone()),
                    ..self.clone()
                };
                if let Err(why) = people::permitted(&actor, &req) {
                    api.record_refusal(&req, &why).await?;
                    return Err(ApiError::new(ErrorCode::Forbidden, why));
                }
                api.dispatch(&actor, token, req).await
            }
        }
    }

    fn reload_gateway(&self) -> ApiResult<()> {
        if let Some(gw) = &self.gateway {
            gw.reload_agents()?;
        }
        Ok(())
    }
}

/// Names people type: 1 to 64 ASCII letters, digits, '-', '_' and `extra`.
pub(crate) fn validate_name(what: &str, name: &str, extra: &[char]) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || extra.contains(&c));
    if ok {
        return Ok(());
    }
    let mut allowed: Vec<String> = vec!["'-'".into(), "'_'".into()];
    allowed.extend(extra.iter().map(|c| format!("'{c}'")));
    Err(ApiError::new(
        ErrorCode::InvalidInput,
        format!(
            "{name:?} is not a valid {what} name: use 1 to 64 letters, digits, {}",
            allowed.join(", ")
        ),
    ))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
}
