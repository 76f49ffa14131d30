//! Servers: adding and removing them in `config.toml` (through the running
//! gateway when there is one), listing them, and asking one for its tools.

use std::time::Duration;

use warden_gateway::ServerInfo;
use warden_gateway::config::{Config, ServerSpec};
use warden_gateway::upstream::{Event, Status, Upstream};
use warden_store::users::User;

use crate::{
    Api, ApiError, ApiResult, ErrorCode, OAuthTokens, Response, blocking, secret_resolver,
};

impl Api {
    pub(crate) fn load_config(&self) -> ApiResult<Config> {
        Ok(Config::load(&self.config_path)?)
    }

    pub(crate) async fn server_add(&self, name: &str, spec: ServerSpec) -> ApiResult<Response> {
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
        // The admin adding a server consents to its exact command (or its
        // address and headers).
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

    pub(crate) async fn server_remove(&self, name: &str) -> ApiResult<Response> {
        match &self.gateway {
            Some(gw) => gw.remove_server(name).await?,
            None => {
                let (path, n) = (self.config_path.clone(), name.to_string());
                blocking(move || Ok(Config::remove_server_from(&path, &n)?)).await?
            }
        }
        // What an admin approved for it goes with it: the same entry put
        // back into config.toml by hand waits for an admin again.
        let store = self.store.clone();
        let n = name.to_string();
        blocking(move || Ok(warden_store::tools::forget_server(&store.connect()?, &n)?)).await?;
        self.record("server.removed", Some(name), None, None)
            .await?;
        Ok(Response::Done)
    }

    pub(crate) fn server_list(&self) -> ApiResult<Vec<ServerInfo>> {
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

    /// Refuses to run, call, probe or sign in to a server whose entry an
    /// admin has not approved in its current form.
    pub(crate) async fn require_consent(&self, name: &str, spec: &ServerSpec) -> ApiResult<()> {
        let Some(hash) = spec.consent_hash() else {
            return Ok(());
        };
        let store = self.store.clone();
        let n = name.to_string();
        let policy =
            blocking(move || Ok(warden_store::tools::server_policy(&store.connect()?, &n)?))
                .await?;
        if policy.consent_hash.as_deref() == Some(hash.as_str()) {
            return Ok(());
        }
        Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "server {name:?} has not been approved by an admin in its current form (its command, or its address and headers); review and approve it with: warden server consent {name}"
            ),
        ))
    }

    pub(crate) async fn server_tools(&self, name: &str) -> ApiResult<Vec<serde_json::Value>> {
        if let Some(gw) = &self.gateway {
            gw.settle(Duration::from_secs(30)).await;
            return Ok(gw.server_tools(name).await?);
        }
        // No gateway running: start this one server just long enough to ask.
        let config = self.load_config()?;
        let spec = config.servers.get(name).cloned().ok_or_else(|| {
            ApiError::new(ErrorCode::NotFound, format!("no server is named {name:?}"))
        })?;
        self.require_consent(name, &spec).await?;
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

    /// The servers as `actor` may see them: commands and URLs may carry
    /// secrets, so members see names and status only.
    pub(crate) fn server_list_for(&self, actor: &User) -> ApiResult<Response> {
        let mut servers = self.server_list()?;
        if actor.role != "admin" {
            servers.iter_mut().for_each(|s| s.target.clear());
        }
        Ok(Response::Servers(servers))
    }
}
