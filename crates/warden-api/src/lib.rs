//! The application API: every CLI subcommand (and, later, every app command)
//! is one [`Request`] answered by [`Api::call`]. The same types travel over
//! the control socket, so a CLI talking to a running gateway and a CLI working
//! on the data folder directly run the same code.

mod approvals;
pub use approvals::{Consent, Pending, ToolReview};
mod audit;
mod oauth;
mod sso;
pub use oauth::{LoginStarted, OAuthTokens, ProbeCheck, ProbeReport};
pub use sso::{SsoConfig, SsoStarted, spawn_refresher};
mod control;
mod desktop;
pub mod logging;
pub mod runtime;
pub use desktop::{
    AppStatus, ApprovalsChanged, ClientApp, ClientConnected, EVENT_ACTIVITY, EVENT_APPROVALS,
    EVENT_NAVIGATE, EVENT_SERVERS, EVENT_SESSION, Exported, ServerPreset,
};
pub mod export;
mod people;
mod review;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use warden_auth::{Keychain, Sensitive};
use warden_gateway::config::{Config, ServerSpec};
use warden_gateway::upstream::{Event, Status, Upstream};
use warden_gateway::{Gateway, ServerInfo};
use warden_store::{ActivityFilter, ActivityLog, ActivityRow, Agent, NewEvent, Store};

pub use control::{ControlClient, serve_control, socket_path};
pub use people::{Enrollment, Invitation, SignedIn};
pub use review::{AgentReview, PersonReview, Review};
use warden_auth::{Clock, SystemClock};
use warden_store::users::User;

#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Request {
    /// Creates the first admin of a new install (no session needed).
    Init {
        admin: String,
        #[ts(type = "string")]
        password: Sensitive<String>,
    },
    /// Signs in with a password and a TOTP or recovery code (no session needed).
    Login {
        name: String,
        #[ts(type = "string")]
        password: Sensitive<String>,
        totp: Option<String>,
        #[ts(type = "string | null")]
        recovery: Option<Sensitive<String>>,
    },
    Logout,
    Whoami,
    /// Walks the activity log's hash chain and signed checkpoints.
    AuditVerify,
    /// Applies retention now: rows older than the days given, or past the
    /// newest `keep_rows`, are removed behind a signed anchor.
    AuditPrune {
        older_than_days: Option<u32>,
        keep_rows: Option<i64>,
    },
    /// The access review; `record` marks it done.
    Review {
        #[serde(default)]
        record: bool,
    },
    /// Adds a person, who enrols themselves with the one-time code in the
    /// answer (`enrol`): the admin never sees their password or secrets.
    UserAdd {
        name: String,
        admin: bool,
        #[serde(default)]
        agent_roles: Vec<String>,
    },
    /// A new enrolment code for a person who lost their authenticator or
    /// password: what they had stops working, their sessions end.
    UserReset {
        name: String,
    },
    /// A person added by an admin chooses their password and gets their
    /// authenticator secret and recovery codes (no session needed).
    Enrol {
        name: String,
        #[ts(type = "string")]
        code: Sensitive<String>,
        #[ts(type = "string")]
        password: Sensitive<String>,
    },
    /// The signed-in person changes their password.
    PasswordChange {
        #[ts(type = "string")]
        current: Sensitive<String>,
        #[ts(type = "string")]
        new: Sensitive<String>,
    },
    /// The signed-in person sets up their authenticator again.
    TotpReenrol,
    UserList,
    UserDisable {
        name: String,
    },
    UserEnable {
        name: String,
    },
    UserRemove {
        name: String,
    },
    /// Lets a member give ROLE to the agents they create.
    UserAllowRole {
        name: String,
        role: String,
    },
    /// Links a person to one provider account (`ISSUER|SUBJECT`, or just
    /// the subject at the configured provider), or with `None` unlinks.
    UserSsoBind {
        name: String,
        #[serde(default)]
        subject: Option<String>,
    },
    ServerAdd {
        name: String,
        spec: ServerSpec,
    },
    ServerRemove {
        name: String,
    },
    ServerList,
    ServerTools {
        name: String,
    },
    AgentAdd {
        name: String,
        #[serde(default)]
        roles: Vec<String>,
        /// Days until the credential expires (default 30, at most the admin's maximum).
        #[serde(default)]
        expires_days: Option<u32>,
        /// The person it acts for (default: whoever creates it).
        #[serde(default)]
        owner: Option<String>,
    },
    AgentList,
    AgentRevoke {
        name: String,
    },
    /// A new credential for an agent; the old one works for one more hour.
    AgentRotate {
        name: String,
        #[serde(default)]
        expires_days: Option<u32>,
    },
    /// Stores a secret in the OS keychain, for `keychain:NAME` values in
    /// server environments and headers.
    SecretSet {
        name: String,
        #[ts(type = "string")]
        value: Sensitive<String>,
    },
    SecretRemove {
        name: String,
    },
    RoleAdd {
        name: String,
        #[serde(default)]
        description: String,
    },
    RoleList,
    RoleRemove {
        name: String,
    },
    Grant {
        role: String,
        server: String,
        pattern: String,
        effect: String,
        /// For `allow`: also covers high-risk tools without asking a person.
        #[serde(default)]
        explicit: bool,
    },
    RevokeGrant {
        role: String,
        server: String,
        pattern: String,
    },
    /// A page of activity, newest first.
    Log {
        #[serde(default)]
        filter: LogFilter,
        limit: usize,
    },
    /// Tool calls per day and decision, for charts.
    ActivityStats {
        #[serde(default)]
        filter: LogFilter,
    },
    /// Signing in to a remote server, step one: discovery and registration;
    /// answers with the address to open in the browser.
    ServerLoginStart {
        name: String,
        #[serde(default)]
        client_id: Option<String>,
        #[serde(default)]
        #[ts(type = "string | null")]
        client_secret: Option<Sensitive<String>>,
        #[serde(default)]
        scopes: Option<String>,
    },
    /// Step two: waits for the browser to come back, then keeps the tokens.
    ServerLoginFinish {
        flow: String,
    },
    /// Every server sign-in: issuer, client, scopes, expiry, last refresh.
    ServerAuthList,
    /// Revokes (where the server can) and forgets a server's sign-in.
    ServerLogout {
        name: String,
    },
    /// Checks that a remote server refuses missing and bad tokens.
    ServerProbe {
        name: String,
    },
    /// Sets up sign-in with the company's identity provider (admins).
    SsoConfigure {
        config: SsoConfig,
        #[serde(default)]
        #[ts(type = "string | null")]
        client_secret: Option<Sensitive<String>>,
    },
    SsoShow,
    /// SSO sign-in, step one (no session needed): the address to open.
    SsoLoginStart,
    /// Step two: waits for the provider's answer; answers with a session.
    SsoLoginFinish {
        flow: String,
        /// Warden's own code, when the provider's sign-in shows no MFA and
        /// the admin allowed that fallback.
        #[serde(default)]
        totp: Option<String>,
    },
    /// A fresh provider sign-in with MFA, to approve a critical call.
    SsoStepUpStart,
    SsoStepUpFinish {
        flow: String,
    },
    /// Links the signed-in person to the provider account they sign in
    /// with next (needs a fresh second factor in this session).
    SsoLinkStart,
    SsoLinkFinish {
        flow: String,
    },
    /// A fresh authenticator code: opens sensitive changes for 5 minutes.
    Confirm {
        totp: String,
    },
    /// Calls waiting for a person (a member sees their own agents').
    Approvals,
    /// Waits until the pending approvals differ from version `seen`.
    ApprovalsWait {
        seen: u64,
        #[serde(default)]
        wait_secs: u32,
    },
    /// Answers a pending approval: once, session, always or deny. Critical
    /// tools need `totp` (a fresh code) to approve.
    ApprovalDecide {
        id: String,
        choice: String,
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        totp: Option<String>,
    },
    /// Standing approvals ("always allow these exact arguments").
    StandingList,
    StandingRevoke {
        id: i64,
    },
    /// Sets a tool's risk (low, high, critical) with a reason, or clears
    /// the override with `risk: None`.
    ToolRisk {
        server: String,
        tool: String,
        risk: Option<String>,
        #[serde(default)]
        reason: String,
    },
    /// Tools that are quarantined or rejected.
    Quarantined,
    /// A tool's pinned and presented definitions, with a diff.
    ToolReview {
        server: String,
        tool: String,
    },
    /// Accepts or rejects the definition a quarantined tool presents now;
    /// `hash` is the definition reviewed.
    ToolDecide {
        server: String,
        tool: String,
        hash: String,
        accept: bool,
    },
    /// Whether a server's annotations may lower its tools' risk, and
    /// whether tools it adds later are trusted without review.
    ServerTrust {
        name: String,
        trusted: bool,
        #[serde(default)]
        auto_trust_new_tools: bool,
    },
    /// Without `hash`: shows a local server's command for consent. With the
    /// hash shown and a fresh code: approves exactly that command.
    ServerConsent {
        name: String,
        #[serde(default)]
        hash: Option<String>,
        #[serde(default)]
        totp: Option<String>,
    },
    /// The install's state for the app's first screen (no session needed).
    Status,
    /// Stops (or resumes) every agent's calls at once (admins).
    AgentsPause {
        paused: bool,
    },
    /// Well-known local servers, with the command that runs each here.
    ServerPresets,
    /// An agent for an AI app, access to `servers`, and (with `write`) the
    /// app's MCP configuration pointed at Warden.
    ClientConnect {
        app: ClientApp,
        agent: String,
        #[serde(default)]
        servers: Vec<String>,
        #[serde(default)]
        write: bool,
    },
    /// Activity to a new file in the Downloads folder.
    ActivityExport {
        #[serde(default)]
        filter: LogFilter,
        format: ExportFormat,
    },
}

/// What the activity views filter on. A member's view is always limited to
/// their own activity and their agents'.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ts_rs::TS)]
pub struct LogFilter {
    pub person: Option<String>,
    pub agent: Option<String>,
    pub server: Option<String>,
    pub tool: Option<String>,
    pub kind: Option<String>,
    pub decision: Option<String>,
    pub risk: Option<String>,
    pub since_us: Option<i64>,
    pub until_us: Option<i64>,
    pub search: Option<String>,
    pub before_id: Option<i64>,
}

impl LogFilter {
    /// The store filter for `actor`: members see only their own.
    fn for_actor(self, actor: &User, limit: usize) -> ActivityFilter {
        let person = if actor.role == "admin" {
            self.person
        } else {
            Some(actor.name.clone())
        };
        ActivityFilter {
            person,
            agent: self.agent,
            server: self.server,
            tool: self.tool,
            kind: self.kind,
            decision: self.decision,
            risk: self.risk,
            since_us: self.since_us,
            until_us: self.until_us,
            search: self.search,
            before_id: self.before_id,
            limit,
        }
    }
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Response {
    Done,
    Servers(Vec<ServerInfo>),
    Tools(Vec<serde_json::Value>),
    AgentCreated(AgentCreated),
    Agents(Vec<Agent>),
    Roles(Vec<warden_store::roles::Role>),
    Enrolled(Box<Enrollment>),
    Invited(Box<Invitation>),
    /// The provider account a link bound: its name and `ISSUER|SUBJECT`.
    Linked(String),
    SignedIn(SignedIn),
    Me(User),
    Users(Vec<User>),
    Review(Box<Review>),
    Verification(warden_store::audit::Verification),
    DayCounts(Vec<warden_store::DayCount>),
    Pruned(i64),
    Log(Vec<ActivityRow>),
    Approvals(approvals::Pending),
    Standing(Vec<warden_store::tools::StandingApproval>),
    Pins(Vec<warden_store::tools::Pin>),
    ToolReview(Box<approvals::ToolReview>),
    Consent(approvals::Consent),
    LoginStarted(LoginStarted),
    SignedInTo(Box<warden_store::server_auth::ServerAuth>),
    ServerAuths(Vec<warden_store::server_auth::ServerAuth>),
    Probe(ProbeReport),
    SsoStarted(SsoStarted),
    Sso(Option<SsoConfig>),
    Status(AppStatus),
    Presets(Vec<ServerPreset>),
    ClientConnected(Box<ClientConnected>),
    Exported(Exported),
}

#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct AgentCreated {
    pub agent: Agent,
    /// Shown once; only its hash is stored.
    pub credential: String,
    /// Whether the credential was also saved in the OS keychain (for
    /// `warden connect`), and if not, why.
    pub keychain: Result<(), String>,
}

/// Changes that need a recent second factor in this session, in words:
/// every change that can grant power, so a process that finds a signed-in
/// session (or a person's stale one) cannot use it to widen anything.
fn sensitive(actor: &User, req: &Request) -> Option<&'static str> {
    match req {
        // With a code the request proves it itself.
        Request::ApprovalDecide { choice, totp, .. }
            if choice != "deny" && totp.as_deref().is_none_or(|t| t.trim().is_empty()) =>
        {
            Some("approve an agent's call")
        }
        Request::ToolDecide { accept: true, .. } => Some("accept a changed tool"),
        Request::ToolDecide { accept: false, .. } => Some("reject a changed tool"),
        Request::ToolRisk { .. } => Some("change a tool's risk"),
        Request::SsoConfigure { .. } => Some("set up single sign-on"),
        Request::Grant { explicit: true, .. } => Some("let high-risk tools run without asking"),
        // An allow or ask grant replaces a deny of the same pattern; only a
        // deny narrows for sure.
        Request::Grant { effect, .. } if effect != "deny" => Some("change a role's grants"),
        // A deny wins over any allow, so taking one away can open tools.
        Request::RevokeGrant { .. } => Some("remove a grant"),
        Request::RoleRemove { .. } => Some("remove a role"),
        Request::ServerAdd { spec, .. } if spec.command.is_some() => {
            Some("approve a local server's command")
        }
        Request::ServerAdd { .. } => Some("add a server"),
        Request::ServerTrust { .. } => Some("change whether a server is trusted"),
        Request::AgentsPause { paused: false } => Some("let paused agents run again"),
        Request::ServerRemove { .. } => Some("remove a server"),
        Request::UserAdd { .. } => Some("add a person"),
        Request::UserReset { .. } => Some("reset a person's sign-in"),
        Request::TotpReenrol => Some("set up your authenticator again"),
        Request::UserEnable { .. } => Some("enable a person"),
        Request::UserAllowRole { .. } => Some("let a person give a role"),
        Request::UserSsoBind { .. } => Some("link a person to a provider account"),
        Request::SsoLinkStart | Request::SsoLinkFinish { .. } => {
            Some("link your account to a provider account")
        }
        Request::AgentAdd { roles, owner, .. }
            if !roles.is_empty() || owner.as_deref().is_some_and(|o| o != actor.name) =>
        {
            Some("create an agent with roles")
        }
        Request::AgentRotate { .. } => Some("give an agent a new credential"),
        Request::AuditPrune { .. } => Some("remove old activity"),
        Request::SecretSet { .. } => Some("set a secret"),
        Request::SecretRemove { .. } => Some("remove a secret"),
        Request::ClientConnect { .. } => Some("connect an AI app"),
        _ => None,
    }
}

/// Machine-readable error codes, so callers never match on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidInput,
    NotFound,
    Conflict,
    Unavailable,
    Unauthenticated,
    Forbidden,
    /// The change needs a fresh second factor (`confirm`) first.
    MfaRequired,
    Internal,
}

#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize, ts_rs::TS)]
#[error("{message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

impl From<warden_gateway::Error> for ApiError {
    fn from(e: warden_gateway::Error) -> Self {
        use warden_gateway::Error as G;
        let code = match &e {
            G::Config(_) => ErrorCode::InvalidInput,
            G::NotFound(_) => ErrorCode::NotFound,
            G::Conflict(_) => ErrorCode::Conflict,
            G::Unavailable(_) => ErrorCode::Unavailable,
            G::Store(_) => ErrorCode::Internal,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<warden_store::Error> for ApiError {
    fn from(e: warden_store::Error) -> Self {
        let code = match &e {
            warden_store::Error::Exists(_) => ErrorCode::Conflict,
            warden_store::Error::NotFound(_) => ErrorCode::NotFound,
            warden_store::Error::LogUnavailable(_) => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        };
        ApiError::new(code, e.to_string())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// How long an agent's old credential keeps working after a rotation.
pub const ROTATION_OVERLAP_US: i64 = 60 * 60 * 1_000_000;

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

    /// One call. Every call but `init` and `login` needs a session; what the
    /// person may do is decided here, not by the UI or CLI.
    pub async fn call(
        &self,
        session: Option<&Sensitive<String>>,
        req: Request,
    ) -> ApiResult<Response> {
        match req {
            Request::Init { admin, password } => {
                let enrolled = self.enroll(&admin, "admin", password, true).await?;
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
            Request::SsoLoginStart => self.sso_start(sso::Purpose::SignIn).await,
            Request::SsoLoginFinish { flow, totp } => {
                let (outcome, purpose) = self.sso_finish(&flow, totp.as_deref()).await?;
                if purpose != sso::Purpose::SignIn {
                    return Err(ApiError::new(
                        ErrorCode::InvalidInput,
                        "that provider sign-in was not for opening a session; start the sign-in again",
                    ));
                }
                Ok(Response::SignedIn(self.sso_sign_in(outcome).await?))
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

    async fn dispatch(
        &self,
        actor: &User,
        token: &Sensitive<String>,
        req: Request,
    ) -> ApiResult<Response> {
        if let Some(what) = sensitive(actor, &req)
            && let Err(e) = self.require_recent_mfa(token, what).await
        {
            self.record_refusal(&req, "no recent second factor").await?;
            return Err(e);
        }
        match req {
            Request::Status => self.status(Some(token)).await,
            Request::AgentsPause { paused } => self.agents_pause(paused).await,
            Request::ServerPresets => Ok(Response::Presets(desktop::presets())),
            Request::ClientConnect {
                app,
                agent,
                servers,
                write,
            } => self.client_connect(actor, app, agent, servers, write).await,
            Request::ActivityExport { filter, format } => {
                self.export_to_downloads(token, filter, format).await
            }
            Request::Init { .. }
            | Request::Login { .. }
            | Request::Enrol { .. }
            | Request::SsoLoginStart
            | Request::SsoLoginFinish { .. } => {
                Err(ApiError::new(ErrorCode::InvalidInput, "already signed in"))
            }
            Request::Logout => {
                self.sign_out(token).await?;
                self.record("auth.sign_out", None, None, None).await?;
                Ok(Response::Done)
            }
            Request::Whoami => Ok(Response::Me(actor.clone())),
            Request::Review { record } => {
                Ok(Response::Review(Box::new(self.review(record).await?)))
            }
            Request::AuditVerify => Ok(Response::Verification(self.audit_verify().await?)),
            Request::AuditPrune {
                older_than_days,
                keep_rows,
            } => {
                if older_than_days.is_none() && keep_rows.is_none() {
                    return Err(ApiError::new(
                        ErrorCode::InvalidInput,
                        "say what to keep: --older-than DAYS and/or --keep-rows N",
                    ));
                }
                Ok(Response::Pruned(
                    self.prune(older_than_days, keep_rows).await?,
                ))
            }
            Request::UserAdd {
                name,
                admin,
                agent_roles,
            } => {
                let role = if admin { "admin" } else { "member" };
                let invited = self.invite(&name, role).await?;
                for r in &agent_roles {
                    self.allow_role(&name, r).await?;
                }
                self.record_change(
                    "person.created",
                    &name,
                    None,
                    Some(serde_json::json!({"role": role, "agent_roles": agent_roles, "enrols": "themselves"})),
                )
                .await?;
                Ok(Response::Invited(Box::new(invited)))
            }
            Request::UserReset { name } => {
                let user = self.person(&name).await?;
                let invited = self.new_enrolment(user).await?;
                self.reload_gateway()?;
                self.record_change(
                    "person.reset",
                    &name,
                    None,
                    Some(serde_json::json!({"enrols": "again"})),
                )
                .await?;
                Ok(Response::Invited(Box::new(invited)))
            }
            Request::PasswordChange { current, new } => {
                self.change_password(actor, token, current, new).await?;
                Ok(Response::Done)
            }
            Request::TotpReenrol => Ok(Response::Enrolled(Box::new(self.reenrol(actor).await?))),
            Request::UserList => {
                let store = self.store.clone();
                Ok(Response::Users(
                    blocking(move || Ok(warden_store::users::list(&store.connect()?)?)).await?,
                ))
            }
            Request::UserDisable { name } => self.set_person_active(&name, false, actor).await,
            Request::UserEnable { name } => self.set_person_active(&name, true, actor).await,
            Request::UserRemove { name } => {
                if name == actor.name {
                    return Err(ApiError::new(
                        ErrorCode::InvalidInput,
                        "you cannot remove yourself; ask another admin",
                    ));
                }
                let user = self.person(&name).await?;
                let store = self.store.clone();
                let id = user.id;
                blocking(move || {
                    let conn = store.connect()?;
                    warden_store::agent::suspend_owned(&conn, id, false)?;
                    warden_store::users::remove(&conn, id)?;
                    Ok(())
                })
                .await?;
                self.reload_gateway()?;
                self.record_change(
                    "person.removed",
                    &name,
                    serde_json::to_value(&user).ok(),
                    None,
                )
                .await?;
                Ok(Response::Done)
            }
            Request::UserAllowRole { name, role } => {
                self.allow_role(&name, &role).await?;
                self.record_change(
                    "person.agent_role_allowed",
                    &name,
                    None,
                    Some(serde_json::json!({"role": role})),
                )
                .await?;
                Ok(Response::Done)
            }
            req => self.dispatch_rest(actor, token, req).await,
        }
    }

    async fn person(&self, name: &str) -> ApiResult<User> {
        let store = self.store.clone();
        let n = name.to_string();
        blocking(move || Ok(warden_store::users::get(&store.connect()?, &n)?))
            .await?
            .ok_or_else(|| {
                ApiError::new(ErrorCode::NotFound, format!("no person is named {name:?}"))
            })
    }

    async fn allow_role(&self, name: &str, role: &str) -> ApiResult<()> {
        let user = self.person(name).await?;
        let store = self.store.clone();
        let r = role.to_string();
        blocking(move || {
            Ok(warden_store::roles::allow_for_person(
                &store.connect()?,
                user.id,
                &r,
            )?)
        })
        .await
    }

    /// Disabling a person ends their sessions and suspends all their agents
    /// at once; enabling them brings the suspended agents back.
    async fn set_person_active(
        &self,
        name: &str,
        active: bool,
        actor: &User,
    ) -> ApiResult<Response> {
        if !active && name == actor.name {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "you cannot disable yourself; ask another admin",
            ));
        }
        let user = self.person(name).await?;
        let store = self.store.clone();
        let id = user.id;
        let changed = blocking(move || {
            let conn = store.connect()?;
            warden_store::users::set_status(&conn, id, if active { "active" } else { "disabled" })?;
            if !active {
                warden_store::users::end_sessions_of(&conn, id)?;
            }
            Ok(warden_store::agent::suspend_owned(&conn, id, active)?)
        })
        .await?;
        self.reload_gateway()?;
        let kind = if active {
            "person.enabled"
        } else {
            "person.disabled"
        };
        self.record_change(kind, name, Some(serde_json::json!({"status": user.status})), Some(serde_json::json!({"status": if active { "active" } else { "disabled" }, "agents_changed": changed}))).await?;
        Ok(Response::Done)
    }

    async fn dispatch_rest(
        &self,
        actor: &User,
        token: &Sensitive<String>,
        req: Request,
    ) -> ApiResult<Response> {
        match req {
            Request::ServerAdd { name, spec } => self.server_add(&name, spec).await,
            Request::Approvals => self.approvals(actor),
            Request::SsoConfigure {
                config,
                client_secret,
            } => self.sso_configure(config, client_secret).await,
            Request::SsoShow => Ok(Response::Sso(self.sso_config()?)),
            Request::SsoStepUpStart => {
                let hash = warden_auth::hash_token("session", token.expose());
                self.sso_start(sso::Purpose::StepUp(hash, actor.id)).await
            }
            Request::SsoLinkStart => {
                let hash = warden_auth::hash_token("session", token.expose());
                self.sso_start(sso::Purpose::Link(hash, actor.id)).await
            }
            Request::SsoLinkFinish { flow } => {
                let hash = warden_auth::hash_token("session", token.expose());
                let (outcome, purpose) = self.sso_finish(&flow, None).await?;
                match purpose {
                    sso::Purpose::Link(h, id) if h == hash && id == actor.id => {
                        Ok(Response::Linked(self.sso_link(actor, &outcome).await?))
                    }
                    _ => Err(ApiError::new(
                        ErrorCode::InvalidInput,
                        "that provider sign-in was not a link for this session; start the link again",
                    )),
                }
            }
            Request::UserSsoBind { name, subject } => {
                self.sso_bind(&name, subject).await?;
                Ok(Response::Done)
            }
            Request::SsoStepUpFinish { flow } => {
                let hash = warden_auth::hash_token("session", token.expose());
                let (outcome, purpose) = self.sso_finish(&flow, None).await?;
                match purpose {
                    sso::Purpose::StepUp(h, id) if h == hash && id == actor.id => {
                        self.sso_step_up_done(&outcome, h, id).await?;
                        Ok(Response::Done)
                    }
                    _ => Err(ApiError::new(
                        ErrorCode::InvalidInput,
                        "that sign-in was not a step-up for this session",
                    )),
                }
            }
            Request::ServerLoginStart {
                name,
                client_id,
                client_secret,
                scopes,
            } => {
                self.login_start(name, client_id, client_secret, scopes)
                    .await
            }
            Request::ServerLoginFinish { flow } => self.login_finish(flow).await,
            Request::ServerAuthList => self.auth_list().await,
            Request::ServerLogout { name } => self.logout(name).await,
            Request::ServerProbe { name } => self.probe(name).await,
            Request::ApprovalsWait { seen, wait_secs } => {
                self.approvals_wait(actor, seen, wait_secs).await
            }
            Request::ApprovalDecide {
                id,
                choice,
                reason,
                totp,
            } => {
                self.approval_decide(actor, token, id, choice, reason, totp)
                    .await
            }
            Request::Confirm { totp } => self.confirm(actor, token, &totp).await,
            Request::StandingList => self.standing_list(actor).await,
            Request::StandingRevoke { id } => self.standing_revoke(actor, id).await,
            Request::ToolRisk {
                server,
                tool,
                risk,
                reason,
            } => self.tool_risk(actor, server, tool, risk, reason).await,
            Request::Quarantined => self.quarantined().await,
            Request::ToolReview { server, tool } => self.tool_review(server, tool).await,
            Request::ToolDecide {
                server,
                tool,
                hash,
                accept,
            } => self.tool_decide(server, tool, hash, accept).await,
            Request::ServerTrust {
                name,
                trusted,
                auto_trust_new_tools,
            } => self.server_trust(name, trusted, auto_trust_new_tools).await,
            Request::ServerConsent { name, hash, totp } => {
                self.server_consent(actor, token, name, hash, totp).await
            }
            Request::ServerRemove { name } => self.server_remove(&name).await,
            Request::ServerList => {
                let mut servers = self.server_list()?;
                // Commands and URLs may carry secrets: members see names and status.
                if actor.role != "admin" {
                    servers.iter_mut().for_each(|s| s.target.clear());
                }
                Ok(Response::Servers(servers))
            }
            Request::ServerTools { name } => Ok(Response::Tools(self.server_tools(&name).await?)),
            Request::AgentAdd {
                name,
                roles,
                owner,
                expires_days,
            } => {
                self.agent_add(actor, name, roles, owner, expires_days)
                    .await
            }
            Request::AgentRotate { name, expires_days } => {
                self.agent_rotate(name, expires_days).await
            }
            Request::RoleAdd { name, description } => {
                validate_role_name(&name)?;
                let store = self.store.clone();
                let (n, d) = (name.clone(), description.clone());
                blocking(move || Ok(warden_store::roles::add(&store.connect()?, &n, &d)?)).await?;
                self.record_change(
                    "role.created",
                    &name,
                    None,
                    Some(serde_json::json!({"description": description})),
                )
                .await?;
                Ok(Response::Done)
            }
            Request::RoleList => {
                let store = self.store.clone();
                let roles =
                    blocking(move || Ok(warden_store::roles::list(&store.connect()?)?)).await?;
                Ok(Response::Roles(roles))
            }
            Request::RoleRemove { name } => {
                let store = self.store.clone();
                let n = name.clone();
                let before = blocking(move || {
                    let conn = store.connect()?;
                    let role = warden_store::roles::get(&conn, &n)?;
                    warden_store::roles::remove(&conn, &n)?;
                    Ok(role)
                })
                .await?;
                self.reload_gateway()?;
                self.record_change(
                    "role.removed",
                    &name,
                    serde_json::to_value(&before).ok(),
                    None,
                )
                .await?;
                Ok(Response::Done)
            }
            Request::Grant {
                role,
                server,
                pattern,
                effect,
                explicit,
            } => {
                if explicit && effect != "allow" {
                    return Err(ApiError::new(
                        ErrorCode::InvalidInput,
                        "--explicit only applies to allow grants",
                    ));
                }
                if warden_policy::Effect::parse(&effect).is_none() {
                    return Err(ApiError::new(
                        ErrorCode::InvalidInput,
                        format!("{effect:?} is not an effect: use allow, ask or deny"),
                    ));
                }
                if server != "*" {
                    warden_gateway::config::validate_server_name(&server)?;
                }
                warden_policy::validate_pattern(&pattern)
                    .map_err(|m| ApiError::new(ErrorCode::InvalidInput, m))?;
                let store = self.store.clone();
                let g = warden_store::roles::GrantRow {
                    server: server.clone(),
                    pattern: pattern.clone(),
                    effect: effect.clone(),
                    explicit,
                };
                let r = role.clone();
                let before =
                    blocking(move || Ok(warden_store::roles::grant(&store.connect()?, &r, &g)?))
                        .await?;
                self.reload_gateway()?;
                let grant = |e: Option<String>, x: Option<bool>| {
                    e.map(|e| serde_json::json!({"server": server, "pattern": pattern, "effect": e, "explicit": x}))
                };
                self.record_change(
                    "role.grant_set",
                    &role,
                    grant(before, None),
                    grant(Some(effect.clone()), Some(explicit)),
                )
                .await?;
                Ok(Response::Done)
            }
            Request::RevokeGrant {
                role,
                server,
                pattern,
            } => {
                let store = self.store.clone();
                let (r, sv, p) = (role.clone(), server.clone(), pattern.clone());
                let before = blocking(move || {
                    Ok(warden_store::roles::revoke_grant(
                        &store.connect()?,
                        &r,
                        &sv,
                        &p,
                    )?)
                })
                .await?;
                self.reload_gateway()?;
                let detail =
                    serde_json::json!({"server": server, "pattern": pattern, "effect": before});
                self.record_change("role.grant_removed", &role, Some(detail), None)
                    .await?;
                Ok(Response::Done)
            }
            Request::AgentList => {
                let store = self.store.clone();
                let mine = (actor.role != "admin").then_some(actor.id);
                let agents = blocking(move || {
                    let conn = store.connect()?;
                    let people = warden_store::users::list(&conn)?;
                    let mut agents = warden_store::agent::list_owned_by(&conn, mine)?;
                    for a in &mut agents {
                        a.roles = warden_store::roles::roles_of_agent(&conn, a.id)?;
                        a.owner = a
                            .owner_id
                            .and_then(|id| people.iter().find(|p| p.id == id))
                            .map(|p| p.name.clone());
                    }
                    Ok(agents)
                })
                .await?;
                Ok(Response::Agents(agents))
            }
            Request::AgentRevoke { name } => self.agent_revoke(name).await,
            Request::SecretSet { name, value } => {
                validate_secret_name(&name)?;
                let kc = self.keychain.clone();
                let account = format!("secret/{name}");
                let value_for_gateway = value.clone();
                tokio::task::spawn_blocking(move || kc.set(&account, &value))
                    .await
                    .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
                    .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?;
                self.remember_secret_name(&name, true)?;
                if let Some(gw) = &self.gateway {
                    gw.learn_secret(value_for_gateway.expose());
                }
                self.record("secret.set", None, None, Some(name)).await?;
                Ok(Response::Done)
            }
            Request::SecretRemove { name } => {
                validate_secret_name(&name)?;
                let kc = self.keychain.clone();
                let account = format!("secret/{name}");
                tokio::task::spawn_blocking(move || kc.delete(&account))
                    .await
                    .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
                    .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?;
                self.remember_secret_name(&name, false)?;
                self.record("secret.removed", None, None, Some(name))
                    .await?;
                Ok(Response::Done)
            }
            Request::Log { filter, limit } => {
                let store = self.store.clone();
                let filter = filter.for_actor(actor, limit.min(10_000));
                let rows =
                    blocking(move || Ok(ActivityLog::query(&store.connect()?, &filter)?)).await?;
                Ok(Response::Log(rows))
            }
            Request::ActivityStats { filter } => {
                let store = self.store.clone();
                let filter = filter.for_actor(actor, 0);
                let days =
                    blocking(move || Ok(ActivityLog::calls_per_day(&store.connect()?, &filter)?))
                        .await?;
                Ok(Response::DayCounts(days))
            }
            Request::SsoLoginStart
            | Request::SsoLoginFinish { .. }
            | Request::Init { .. }
            | Request::Login { .. }
            | Request::Logout
            | Request::Whoami
            | Request::Review { .. }
            | Request::AuditVerify
            | Request::AuditPrune { .. }
            | Request::UserAdd { .. }
            | Request::UserReset { .. }
            | Request::Enrol { .. }
            | Request::PasswordChange { .. }
            | Request::TotpReenrol
            | Request::UserList
            | Request::UserDisable { .. }
            | Request::UserEnable { .. }
            | Request::UserRemove { .. }
            | Request::UserAllowRole { .. }
            | Request::Status
            | Request::AgentsPause { .. }
            | Request::ServerPresets
            | Request::ClientConnect { .. }
            | Request::ActivityExport { .. } => {
                Err(ApiError::new(ErrorCode::Internal, "misrouted request"))
            }
        }
    }

    fn load_config(&self) -> ApiResult<Config> {
        Ok(Config::load(&self.config_path)?)
    }

    async fn record(
        &self,
        kind: &str,
        server: Option<&str>,
        agent: Option<&str>,
        detail: Option<String>,
    ) -> ApiResult<()> {
        self.store
            .activity()
            .append(NewEvent {
                kind: kind.into(),
                server: server.map(String::from),
                agent: agent.map(String::from),
                // Who made the change.
                on_behalf_of: self.actor.clone(),
                detail,
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    async fn server_add(&self, name: &str, spec: ServerSpec) -> ApiResult<Response> {
        spec.validate(name).map_err(ApiError::from)?;
        // Values of env and headers may be secrets: only their names are kept.
        let detail = serde_json::json!({
            "command": spec.command,
            "args": spec.args.len(),
            "env": spec.env.keys().collect::<Vec<_>>(),
            "url": spec.url.as_deref().map(|u| u.split(['?', '#']).next().unwrap_or_default().to_string()),
            "headers": spec.headers.keys().collect::<Vec<_>>(),
        })
        .to_string();
        let detail = Some(detail);
        if self.load_config()?.servers.contains_key(name) {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "a server named {name:?} already exists; remove it first or pick another name"
                ),
            ));
        }
        // The admin adding a local server consents to its exact command.
        if let Some(hash) = spec.consent_hash() {
            let store = self.store.clone();
            let (n, by) = (name.to_string(), self.actor.clone().unwrap_or_default());
            blocking(move || {
                let conn = store.connect()?;
                // A new server under an old name starts afresh.
                warden_store::tools::forget_server(&conn, &n)?;
                Ok(warden_store::tools::set_consent(&conn, &n, &hash, &by)?)
            })
            .await?;
        } else {
            let store = self.store.clone();
            let n = name.to_string();
            blocking(move || Ok(warden_store::tools::forget_server(&store.connect()?, &n)?))
                .await?;
        }
        match &self.gateway {
            Some(gw) => gw.add_server(name, spec).await?,
            None => {
                let (path, n) = (self.config_path.clone(), name.to_string());
                blocking(move || Ok(Config::add_server_to(&path, &n, spec)?)).await?
            }
        }
        self.record("server.added", Some(name), None, detail)
            .await?;
        Ok(Response::Done)
    }

    async fn server_remove(&self, name: &str) -> ApiResult<Response> {
        match &self.gateway {
            Some(gw) => gw.remove_server(name).await?,
            None => {
                let (path, n) = (self.config_path.clone(), name.to_string());
                blocking(move || Ok(Config::remove_server_from(&path, &n)?)).await?
            }
        }
        self.record("server.removed", Some(name), None, None)
            .await?;
        Ok(Response::Done)
    }

    fn server_list(&self) -> ApiResult<Vec<ServerInfo>> {
        let mut servers = self.server_list_bare()?;
        let conn = self.store.connect()?;
        let probes = warden_store::server_auth::probes(&conn)?;
        let policies = warden_store::tools::server_policies(&conn)?;
        for s in &mut servers {
            s.probe = probes
                .iter()
                .find(|p| p.server == s.name)
                .map(|p| p.verdict.clone());
            if let Some(p) = policies.iter().find(|p| p.server == s.name) {
                s.trusted = p.trusted;
                s.auto_trust_new_tools = p.auto_trust_new;
            }
        }
        Ok(servers)
    }

    fn server_list_bare(&self) -> ApiResult<Vec<ServerInfo>> {
        if let Some(gw) = &self.gateway {
            return Ok(gw.servers());
        }
        let config = self.load_config()?;
        Ok(config
            .servers
            .iter()
            .map(|(name, spec)| ServerInfo {
                name: name.clone(),
                transport: if spec.url.is_some() { "http" } else { "stdio" }.into(),
                target: spec.url.clone().unwrap_or_else(|| {
                    std::iter::once(spec.command.clone().unwrap_or_default())
                        .chain(spec.args.iter().cloned())
                        .collect::<Vec<_>>()
                        .join(" ")
                }),
                status: Status::Stopped,
                era: None,
                tools: 0,
                restarts: 0,
                trusted: false,
                auto_trust_new_tools: false,
                probe: None,
            })
            .collect())
    }

    async fn server_tools(&self, name: &str) -> ApiResult<Vec<serde_json::Value>> {
        if let Some(gw) = &self.gateway {
            gw.settle(Duration::from_secs(30)).await;
            return Ok(gw.server_tools(name).await?);
        }
        // No gateway running: start this one server just long enough to ask.
        let config = self.load_config()?;
        let spec = config.servers.get(name).cloned().ok_or_else(|| {
            ApiError::new(ErrorCode::NotFound, format!("no server is named {name:?}"))
        })?;
        // A local command runs only as an admin approved it.
        if let Some(hash) = spec.consent_hash() {
            let store = self.store.clone();
            let n = name.to_string();
            let policy =
                blocking(move || Ok(warden_store::tools::server_policy(&store.connect()?, &n)?))
                    .await?;
            if policy.consent_hash.as_deref() != Some(hash.as_str()) {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    format!(
                        "the command of server {name:?} has not been approved by an admin in its current form; review and approve it with: warden server consent {name}"
                    ),
                ));
            }
        }
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
        let up = Upstream::start(
            name.to_string(),
            spec,
            secret_resolver(self.keychain.clone())
                .with_tokens(OAuthTokens::new(self.store.clone(), self.keychain.clone())),
            tx,
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match up.status() {
                Status::Ready => break,
                Status::Failed { error } => {
                    up.stop().await;
                    return Err(ApiError::new(
                        ErrorCode::Unavailable,
                        format!("server {name:?} failed: {error}"),
                    ));
                }
                _ if tokio::time::Instant::now() > deadline => {
                    up.stop().await;
                    return Err(ApiError::new(
                        ErrorCode::Unavailable,
                        format!("server {name:?} did not start within 30 seconds"),
                    ));
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        let store = self.store.clone();
        let (n, catalog) = (name.to_string(), up.catalog());
        let built = blocking(move || {
            Ok(warden_gateway::vetting::build(
                &store.connect()?,
                &n,
                catalog,
            )?)
        })
        .await;
        up.stop().await;
        Ok(warden_gateway::vetting::describe(&built?.index))
    }

    /// Keeps the names (never the values) of the secrets set, so the
    /// gateway can learn their values at start and redact them from logs.
    fn remember_secret_name(&self, name: &str, present: bool) -> ApiResult<()> {
        let conn = self.store.connect()?;
        let mut names: std::collections::BTreeSet<String> = self
            .store
            .setting("secret_names")?
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default();
        if present {
            names.insert(name.to_string());
        } else {
            names.remove(name);
        }
        let text = serde_json::to_string(&names).unwrap_or_else(|_| "[]".into());
        conn.execute(
            "INSERT INTO settings (key, value) VALUES ('secret_names', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [text],
        )
        .map_err(warden_store::Error::from)?;
        Ok(())
    }

    /// Teaches the running gateway every kept secret, so none of them is
    /// ever stored in an activity row.
    pub async fn teach_gateway_secrets(&self) -> ApiResult<()> {
        let Some(gw) = &self.gateway else {
            return Ok(());
        };
        let names: Vec<String> = self
            .store
            .setting("secret_names")?
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default();
        for name in names {
            let kc = self.keychain.clone();
            let account = format!("secret/{name}");
            let value = tokio::task::spawn_blocking(move || kc.get(&account))
                .await
                .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
                .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?;
            if let Some(v) = value {
                gw.learn_secret(v.expose());
            }
        }
        Ok(())
    }

    fn reload_gateway(&self) -> ApiResult<()> {
        if let Some(gw) = &self.gateway {
            gw.reload_agents()?;
        }
        Ok(())
    }

    /// Records a change to an identity or role, with what it was and became.
    /// A refused request: which call, and why.
    async fn record_refusal(&self, req: &Request, why: &str) -> ApiResult<()> {
        let call = serde_json::to_value(req)
            .ok()
            .and_then(|v| v["call"].as_str().map(String::from));
        self.record(
            "access.refused",
            None,
            None,
            Some(serde_json::json!({"call": call, "why": why}).to_string()),
        )
        .await
    }

    /// A change to one server's tool, with the server and tool in their
    /// own columns, so `warden log --server S --tool T` finds it.
    async fn record_tool_change(
        &self,
        kind: &str,
        server: &str,
        tool: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> ApiResult<()> {
        let detail = serde_json::json!({"target": format!("{server}/{tool}"), "before": before, "after": after});
        self.store
            .activity()
            .append(NewEvent {
                kind: kind.into(),
                server: Some(server.to_string()),
                tool: Some(tool.to_string()),
                on_behalf_of: self.actor.clone(),
                detail: Some(detail.to_string()),
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    async fn record_change(
        &self,
        kind: &str,
        target: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> ApiResult<()> {
        let detail = serde_json::json!({"target": target, "before": before, "after": after});
        self.record(kind, None, None, Some(detail.to_string()))
            .await
    }

    /// The per-install key agent credentials are hashed under, kept in the
    /// keychain; made on first use. No keychain, no agents: this fails closed.
    pub async fn credential_key(&self) -> ApiResult<Sensitive<Vec<u8>>> {
        use base64::Engine;
        let account = format!("{}/credential-key", self.store.install_id()?);
        let kc = self.keychain.clone();
        tokio::task::spawn_blocking(move || -> ApiResult<Sensitive<Vec<u8>>> {
            let unavailable =
                |e: warden_auth::Error| ApiError::new(ErrorCode::Unavailable, e.to_string());
            let engine = base64::engine::general_purpose::STANDARD;
            if let Some(k) = kc.get(&account).map_err(unavailable)? {
                let bytes = engine.decode(k.expose()).map_err(|_| {
                    ApiError::new(
                        ErrorCode::Internal,
                        "the credential key in the keychain is damaged",
                    )
                })?;
                return Ok(Sensitive::new(bytes));
            }
            let key = warden_auth::random_token();
            let bytes = key.expose().as_bytes().to_vec();
            kc.set(&account, &Sensitive::new(engine.encode(&bytes)))
                .map_err(unavailable)?;
            Ok(Sensitive::new(bytes))
        })
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
    }

    /// Days an agent credential lives: the asked-for number, 30 by default,
    /// never more than the admin's maximum.
    fn agent_lifetime_us(&self, days: Option<u32>) -> ApiResult<i64> {
        let max: u32 = self
            .store
            .setting("agent_max_days")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(365);
        let days = days.unwrap_or(30);
        if days == 0 || days > max {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!("an agent credential can live 1 to {max} days, not {days}"),
            ));
        }
        Ok(i64::from(days) * 86_400 * 1_000_000)
    }

    async fn agent_rotate(&self, name: String, days: Option<u32>) -> ApiResult<Response> {
        let lifetime = self.agent_lifetime_us(days)?;
        let key = self.credential_key().await?;
        let credential = warden_auth::generate_credential();
        let hash = warden_auth::hash_credential(key.expose(), credential.expose());
        let now = self.clock.now() * 1_000_000;
        let store = self.store.clone();
        let n = name.clone();
        let agent = blocking(move || {
            let conn = store.connect()?;
            warden_store::agent::rotate(
                &conn,
                &n,
                &hash,
                now,
                now + ROTATION_OVERLAP_US,
                now + lifetime,
            )?;
            warden_store::agent::get(&conn, &n)?
                .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "agent vanished"))
        })
        .await?;
        self.reload_gateway()?;
        self.record_change(
            "agent.rotated",
            &name,
            None,
            Some(serde_json::json!({"expires_at_us": agent.expires_at_us})),
        )
        .await?;
        let keychain = self.save_agent_credential(&name, credential.clone()).await;
        Ok(Response::AgentCreated(AgentCreated {
            agent,
            credential: credential.into_inner(),
            keychain,
        }))
    }

    async fn agent_add(
        &self,
        actor: &User,
        name: String,
        roles: Vec<String>,
        owner: Option<String>,
        days: Option<u32>,
    ) -> ApiResult<Response> {
        let lifetime = self.agent_lifetime_us(days)?;
        validate_name("agent", &name, &[])?;
        let owner = self.person(owner.as_deref().unwrap_or(&actor.name)).await?;
        let key = self.credential_key().await?;
        let credential = warden_auth::generate_credential();
        let hash = warden_auth::hash_credential(key.expose(), credential.expose());
        let store = self.store.clone();
        let n = name.clone();
        let r = roles.clone();
        let is_admin = actor.role == "admin";
        let created = self.clock.now() * 1_000_000;
        let expires = created + lifetime;
        let owner_id = owner.id;
        let agent = blocking(move || {
            let mut conn = store.connect()?;
            let tx = conn.transaction().map_err(warden_store::Error::from)?;
            if !is_admin {
                // A member may give their own agents only roles an admin allowed them.
                let allowed = warden_store::roles::allowed_for_person(&tx, owner_id)?;
                if let Some(bad) = r.iter().find(|role| !allowed.contains(role)) {
                    return Err(ApiError::new(
                        ErrorCode::Forbidden,
                        format!(
                            "you may not give agents the role {bad:?}; ask an admin to allow it"
                        ),
                    ));
                }
            }
            let agent = warden_store::agent::insert(&tx, &n, &hash, created)?;
            warden_store::agent::set_owner(&tx, agent.id, Some(owner_id))?;
            warden_store::agent::set_expiry(&tx, agent.id, expires)?;
            for role in &r {
                warden_store::roles::assign(&tx, agent.id, role)?;
            }
            tx.commit().map_err(warden_store::Error::from)?;
            Ok(agent)
        })
        .await;
        let agent = match agent {
            Err(e) if e.code == ErrorCode::Forbidden => {
                self.record(
                    "access.refused",
                    None,
                    None,
                    Some(serde_json::json!({"call": "agent_add", "agent": name, "roles": roles, "why": e.message}).to_string()),
                )
                .await?;
                return Err(e);
            }
            other => other?,
        };
        self.record_change(
            "agent.created",
            &name,
            None,
            Some(serde_json::json!({"owner": owner.name, "roles": roles})),
        )
        .await?;
        if let Some(gw) = &self.gateway {
            gw.reload_agents()?;
        }
        let keychain = self.save_agent_credential(&name, credential.clone()).await;
        Ok(Response::AgentCreated(AgentCreated {
            agent,
            credential: credential.into_inner(),
            keychain,
        }))
    }

    async fn agent_revoke(&self, name: String) -> ApiResult<Response> {
        let store = self.store.clone();
        let n = name.clone();
        blocking(move || {
            Ok(warden_store::agent::set_status(
                &store.connect()?,
                &n,
                warden_store::AgentStatus::Revoked,
            )?)
        })
        .await?;
        if let Some(gw) = &self.gateway {
            gw.reload_agents()?;
        }
        self.record("agent.revoked", None, Some(&name), None)
            .await?;
        if let Ok(account) = self.agent_account(&name) {
            let kc = self.keychain.clone();
            let _ = tokio::task::spawn_blocking(move || kc.delete(&account)).await;
        }
        Ok(Response::Done)
    }

    /// Writes every matching row to `out`, oldest first, streamed (nothing is
    /// loaded whole). `progress(done, total)` is called as it goes. Needs a
    /// session; a member exports only their own activity.
    pub async fn export(
        &self,
        session: Option<&Sensitive<String>>,
        filter: LogFilter,
        format: ExportFormat,
        out: Box<dyn std::io::Write + Send>,
        progress: Box<dyn Fn(u64, u64) + Send>,
    ) -> ApiResult<u64> {
        let token = session.ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthenticated,
                "sign in first: `warden login NAME`",
            )
        })?;
        let actor = self.session_user(token).await?;
        let filter = filter.for_actor(&actor, 0);
        let store = self.store.clone();
        let written = blocking(move || {
            let conn = store.connect()?;
            let total = ActivityLog::count(&conn, &filter)? as u64;
            let mut out = std::io::BufWriter::new(out);
            use std::io::Write;
            let mut done = 0u64;
            if format == ExportFormat::Csv {
                writeln!(out, "{}", export::CSV_HEADER).map_err(export::io_error)?;
            }
            let n = ActivityLog::for_each(&conn, &filter, |row| {
                match format {
                    ExportFormat::Csv => export::write_csv_row(&mut out, &row)?,
                    ExportFormat::Jsonl => {
                        serde_json::to_writer(&mut out, &row)?;
                        out.write_all(b"\n")?;
                    }
                }
                done += 1;
                if done.is_multiple_of(50_000) || done == total {
                    progress(done, total);
                }
                Ok(true)
            })?;
            out.flush().map_err(export::io_error)?;
            Ok(n)
        })
        .await?;
        self.store
            .activity()
            .append(NewEvent {
                kind: "audit.exported".into(),
                on_behalf_of: Some(actor.name.clone()),
                detail: Some(serde_json::json!({"rows": written, "format": format}).to_string()),
                ..Default::default()
            })
            .await?;
        Ok(written)
    }

    /// The keychain account that holds an agent's credential on this install.
    pub fn agent_account(&self, agent: &str) -> ApiResult<String> {
        Ok(format!("{}/agent/{agent}", self.store.install_id()?))
    }

    async fn save_agent_credential(
        &self,
        agent: &str,
        credential: Sensitive<String>,
    ) -> Result<(), String> {
        let account = self.agent_account(agent).map_err(|e| e.message)?;
        let kc = self.keychain.clone();
        tokio::task::spawn_blocking(move || kc.set(&account, &credential))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Reads an agent's credential from the keychain (for `warden connect`).
    pub async fn agent_credential(&self, agent: &str) -> ApiResult<Sensitive<String>> {
        let account = self.agent_account(agent)?;
        let kc = self.keychain.clone();
        let found = tokio::task::spawn_blocking(move || kc.get(&account))
            .await
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
            .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?;
        found.ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("no credential for agent {agent:?} is in the keychain on this machine; create the agent here with `warden agent add {agent}` (or rotate its credential)"),
            )
        })
    }
}

/// Resolves `keychain:NAME` configuration values from the OS keychain.
pub fn secret_resolver(keychain: Keychain) -> warden_gateway::upstream::SecretResolver {
    warden_gateway::upstream::SecretResolver::new(Arc::new(move |value: &str| {
        match value.strip_prefix("keychain:") {
            None => Ok(value.to_string()),
            Some(account) => match keychain.get(&format!("secret/{account}")) {
                Ok(Some(s)) => Ok(s.into_inner()),
                Ok(None) => Err(format!(
                    "the secret {account:?} is not in the keychain; add it with `warden secret set {account}`"
                )),
                Err(e) => Err(e.to_string()),
            },
        }
    }))
}

fn validate_role_name(name: &str) -> ApiResult<()> {
    validate_name("role", name, &[])
}

fn validate_secret_name(name: &str) -> ApiResult<()> {
    validate_name("secret", name, &['.'])
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
