//! What the shell keeps between calls: the running gateway (or why it did
//! not start) and the signed-in person's session.

use parking_lot::Mutex;
use warden_api::runtime::Running;
use warden_api::{Api, ApiError, ErrorCode};
use warden_auth::Sensitive;
use warden_gateway::Gateway;
use warden_store::users::User;

pub struct Shell {
    running: Mutex<Option<Running>>,
    api: Result<Api, String>,
    gateway: Option<Gateway>,
    session: Mutex<Option<Sensitive<String>>>,
    user: Mutex<Option<User>>,
}

impl Shell {
    pub fn new(started: Result<Running, String>) -> Shell {
        let (api, gateway) = match &started {
            Ok(r) => (Ok(r.api.clone()), Some(r.gateway.clone())),
            Err(e) => (Err(e.clone()), None),
        };
        Shell {
            running: Mutex::new(started.ok()),
            api,
            gateway,
            session: Mutex::new(None),
            user: Mutex::new(None),
        }
    }

    pub fn api(&self) -> Result<Api, ApiError> {
        self.api.clone().map_err(|why| {
            ApiError::new(
                ErrorCode::Unavailable,
                format!("Warden could not start: {why}. Fix that, then quit Warden from the tray and open it again."),
            )
        })
    }

    pub fn gateway(&self) -> Option<Gateway> {
        self.gateway.clone()
    }

    pub fn session(&self) -> Option<Sensitive<String>> {
        self.session.lock().clone()
    }

    pub fn user(&self) -> Option<User> {
        self.user.lock().clone()
    }

    pub fn signed_in(&self, token: Sensitive<String>, user: User) {
        *self.session.lock() = Some(token);
        *self.user.lock() = Some(user);
    }

    /// Forgets the session if it is still `token` (or any, for `None`);
    /// says whether it did.
    pub fn signed_out_if(&self, token: Option<&Sensitive<String>>) -> bool {
        let mut session = self.session.lock();
        let same = match (session.as_ref(), token) {
            (Some(current), Some(t)) => current.expose() == t.expose(),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if same {
            *session = None;
            *self.user.lock() = None;
        }
        same
    }

    pub fn take_running(&self) -> Option<Running> {
        self.running.lock().take()
    }
}
