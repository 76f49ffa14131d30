//! The application API: every CLI subcommand (and, later, every app command)
//! is one [`Request`] answered by [`Api::call`]. The same types travel over
//! the control socket, so a CLI talking to a running gateway and a CLI working
//! on the data folder directly run the same code.

mod control;

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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Request {
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
    },
    AgentList,
    AgentRevoke {
        name: String,
    },
    /// Stores a secret in the OS keychain, for `keychain:NAME` values in
    /// server environments and headers.
    SecretSet {
        name: String,
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
    },
    RevokeGrant {
        role: String,
        server: String,
        pattern: String,
    },
    Log {
        agent: Option<String>,
        server: Option<String>,
        tool: Option<String>,
        limit: usize,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Response {
    Done,
    Servers(Vec<ServerInfo>),
    Tools(Vec<serde_json::Value>),
    AgentCreated(AgentCreated),
    Agents(Vec<Agent>),
    Roles(Vec<warden_store::roles::Role>),
    Log(Vec<ActivityRow>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentCreated {
    pub agent: Agent,
    /// Shown once; only its hash is stored.
    pub credential: String,
    /// Whether the credential was also saved in the OS keychain (for
    /// `warden connect`), and if not, why.
    pub keychain: Result<(), String>,
}

/// Machine-readable error codes, so callers never match on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidInput,
    NotFound,
    Conflict,
    Unavailable,
    Internal,
}

#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize)]
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

/// What the API works on: the store, the configuration file, the keychain,
/// and the running gateway when there is one.
#[derive(Clone)]
pub struct Api {
    store: Store,
    config_path: PathBuf,
    keychain: Keychain,
    gateway: Option<Gateway>,
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
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub async fn call(&self, req: Request) -> ApiResult<Response> {
        match req {
            Request::ServerAdd { name, spec } => self.server_add(&name, spec).await,
            Request::ServerRemove { name } => self.server_remove(&name).await,
            Request::ServerList => Ok(Response::Servers(self.server_list()?)),
            Request::ServerTools { name } => Ok(Response::Tools(self.server_tools(&name).await?)),
            Request::AgentAdd { name, roles } => self.agent_add(name, roles).await,
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
            } => {
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
                };
                let r = role.clone();
                let before =
                    blocking(move || Ok(warden_store::roles::grant(&store.connect()?, &r, &g)?))
                        .await?;
                self.reload_gateway()?;
                let grant = |e: Option<String>| {
                    e.map(
                        |e| serde_json::json!({"server": server, "pattern": pattern, "effect": e}),
                    )
                };
                self.record_change(
                    "role.grant_set",
                    &role,
                    grant(before),
                    grant(Some(effect.clone())),
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
                let agents =
                    blocking(move || Ok(warden_store::agent::list(&store.connect()?)?)).await?;
                Ok(Response::Agents(agents))
            }
            Request::AgentRevoke { name } => self.agent_revoke(name).await,
            Request::SecretSet { name, value } => {
                validate_secret_name(&name)?;
                let kc = self.keychain.clone();
                let account = format!("secret/{name}");
                tokio::task::spawn_blocking(move || kc.set(&account, &value))
                    .await
                    .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
                    .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?;
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
                self.record("secret.removed", None, None, Some(name))
                    .await?;
                Ok(Response::Done)
            }
            Request::Log {
                agent,
                server,
                tool,
                limit,
            } => {
                let store = self.store.clone();
                let filter = ActivityFilter {
                    agent,
                    server,
                    tool,
                    limit,
                    ..Default::default()
                };
                let rows =
                    blocking(move || Ok(ActivityLog::query(&store.connect()?, &filter)?)).await?;
                Ok(Response::Log(rows))
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
                detail,
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    async fn server_add(&self, name: &str, spec: ServerSpec) -> ApiResult<Response> {
        spec.validate(name).map_err(ApiError::from)?;
        let detail = serde_json::to_string(&spec).ok();
        match &self.gateway {
            Some(gw) => gw.add_server(name, spec).await?,
            None => {
                let mut config = self.load_config()?;
                if config.servers.contains_key(name) {
                    return Err(ApiError::new(
                        ErrorCode::Conflict,
                        format!(
                            "a server named {name:?} already exists; remove it first or pick another name"
                        ),
                    ));
                }
                config.servers.insert(name.to_string(), spec);
                config.save(&self.config_path)?;
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
                let mut config = self.load_config()?;
                if config.servers.remove(name).is_none() {
                    return Err(ApiError::new(
                        ErrorCode::NotFound,
                        format!("no server is named {name:?}"),
                    ));
                }
                config.save(&self.config_path)?;
            }
        }
        self.record("server.removed", Some(name), None, None)
            .await?;
        Ok(Response::Done)
    }

    fn server_list(&self) -> ApiResult<Vec<ServerInfo>> {
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
            })
            .collect())
    }

    async fn server_tools(&self, name: &str) -> ApiResult<Vec<serde_json::Value>> {
        if let Some(gw) = &self.gateway {
            gw.settle(Duration::from_secs(30)).await;
            return Ok(gw.server_tools(name)?);
        }
        // No gateway running: start this one server just long enough to ask.
        let config = self.load_config()?;
        let spec = config.servers.get(name).cloned().ok_or_else(|| {
            ApiError::new(ErrorCode::NotFound, format!("no server is named {name:?}"))
        })?;
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
        let up = Upstream::start(
            name.to_string(),
            spec,
            secret_resolver(self.keychain.clone()),
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
        let tools = up
            .catalog()
            .tools
            .iter()
            .filter_map(|t| serde_json::from_str(t.raw.get()).ok())
            .collect();
        up.stop().await;
        Ok(tools)
    }

    fn reload_gateway(&self) -> ApiResult<()> {
        if let Some(gw) = &self.gateway {
            gw.reload_agents()?;
        }
        Ok(())
    }

    /// Records a change to an identity or role, with what it was and became.
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

    async fn agent_add(&self, name: String, roles: Vec<String>) -> ApiResult<Response> {
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!(
                    "{name:?} is not a valid agent name: use 1 to 64 letters, digits, '-' or '_'"
                ),
            ));
        }
        let credential = warden_auth::generate_credential();
        let hash = warden_auth::hash_credential(credential.expose());
        let store = self.store.clone();
        let n = name.clone();
        let r = roles.clone();
        let agent = blocking(move || {
            let mut conn = store.connect()?;
            let tx = conn.transaction().map_err(warden_store::Error::from)?;
            let agent = warden_store::agent::insert(&tx, &n, &hash)?;
            for role in &r {
                warden_store::roles::assign(&tx, agent.id, role)?;
            }
            tx.commit().map_err(warden_store::Error::from)?;
            Ok(agent)
        })
        .await?;
        self.record("agent.created", None, Some(&name), None)
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
    Arc::new(move |value: &str| match value.strip_prefix("keychain:") {
        None => Ok(value.to_string()),
        Some(account) => match keychain.get(&format!("secret/{account}")) {
            Ok(Some(s)) => Ok(s.into_inner()),
            Ok(None) => Err(format!(
                "the secret {account:?} is not in the keychain; add it with `warden secret set {account}`"
            )),
            Err(e) => Err(e.to_string()),
        },
    })
}

fn validate_role_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("{name:?} is not a valid role name: use 1 to 64 letters, digits, '-' or '_'"),
        ))
    }
}

fn validate_secret_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!(
                "{name:?} is not a valid secret name: use 1 to 64 letters, digits, '.', '-' or '_'"
            ),
        ))
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
}
