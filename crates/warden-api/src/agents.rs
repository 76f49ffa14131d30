//! Agents: their identities, credentials (hashed under a per-install key
//! kept in the keychain), lifetimes, rotation and revocation.

use warden_auth::Sensitive;
use warden_store::users::User;

use crate::{
    AgentCreated, Api, ApiError, ApiResult, ErrorCode, ROTATION_OVERLAP_US, Response, blocking,
    validate_name,
};

impl Api {
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

    pub(crate) async fn agent_rotate(
        &self,
        name: String,
        days: Option<u32>,
    ) -> ApiResult<Response> {
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

    pub(crate) async fn agent_add(
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

    pub(crate) async fn agent_revoke(&self, name: String) -> ApiResult<Response> {
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

    /// The agents `actor` may see: an admin sees all, a member their own.
    pub(crate) async fn agent_list(&self, actor: &User) -> ApiResult<Response> {
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
}
