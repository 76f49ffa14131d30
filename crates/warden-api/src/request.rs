//! What a caller asks ([`Request`]) and what it gets back ([`Response`]):
//! the one vocabulary of the CLI, the desktop app and the control socket.

use serde::{Deserialize, Serialize};
use warden_auth::Sensitive;
use warden_gateway::ServerInfo;
use warden_gateway::config::ServerSpec;
use warden_store::users::User;
use warden_store::{ActivityRow, Agent};

use crate::{
    AppStatus, ClientApp, ClientConnected, Enrollment, ExportFormat, Exported, Invitation,
    LogFilter, LoginStarted, ProbeReport, Review, ServerPreset, SignedIn, SsoConfig, SsoStarted,
    approvals,
};

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
    /// Unlocks a Warden that started since anyone signed in to it, with the
    /// password of the session's person (the session is checked after).
    Unlock {
        #[ts(type = "string")]
        password: Sensitive<String>,
    },
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
    /// The signed-in person sets up their authenticator again; their
    /// password seals the new secret.
    TotpReenrol {
        #[ts(type = "string")]
        password: Sensitive<String>,
    },
    /// The signed-in person gets ten new recovery codes; the old ones stop
    /// working. Their password proves it is them.
    RecoveryRenew {
        #[ts(type = "string")]
        password: Sensitive<String>,
    },
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
        /// The person's Warden password with that code, for a Warden that
        /// has not seen it since it started: it opens the sealed secret.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(type = "string | null", optional)]
        password: Option<Sensitive<String>>,
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
        /// The person's password, for a Warden that has not seen it since
        /// it started (the CLI on the data folder): it opens the sealed
        /// authenticator secret.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(type = "string | null", optional)]
        password: Option<Sensitive<String>>,
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
    /// Without `hash`: the settings of config.toml that are looser than an
    /// admin approved, and wait. With the hash shown and a fresh code:
    /// approves the file's settings exactly as shown.
    SettingsApprove {
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
    /// New recovery codes, shown once.
    RecoveryCodes(#[ts(type = "Array<string>")] Vec<Sensitive<String>>),
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
    Settings(crate::settings::SettingsReview),
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
