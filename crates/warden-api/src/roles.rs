//! Roles and their grants: which tools of which servers an agent holding the
//! role may call, ask about, or never call.

use crate::{Api, ApiError, ApiResult, ErrorCode, Response, blocking, validate_name};

impl Api {
    pub(crate) async fn role_add(&self, name: String, description: String) -> ApiResult<Response> {
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

    pub(crate) async fn role_list(&self) -> ApiResult<Response> {
        let store = self.store.clone();
        let roles = blocking(move || Ok(warden_store::roles::list(&store.connect()?)?)).await?;
        Ok(Response::Roles(roles))
    }

    pub(crate) async fn role_remove(&self, name: String) -> ApiResult<Response> {
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

    /// Sets one grant of a role, replacing the grant of the same server and
    /// pattern; the row says what it replaced.
    pub(crate) async fn grant(
        &self,
        role: String,
        server: String,
        pattern: String,
        effect: String,
        explicit: bool,
    ) -> ApiResult<Response> {
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
            blocking(move || Ok(warden_store::roles::grant(&store.connect()?, &r, &g)?)).await?;
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

    pub(crate) async fn revoke_grant(
        &self,
        role: String,
        server: String,
        pattern: String,
    ) -> ApiResult<Response> {
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
        let detail = serde_json::json!({"server": server, "pattern": pattern, "effect": before});
        self.record_change("role.grant_removed", &role, Some(detail), None)
            .await?;
        Ok(Response::Done)
    }
}

fn validate_role_name(name: &str) -> ApiResult<()> {
    validate_name("role", name, &[])
}
