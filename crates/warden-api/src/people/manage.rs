//! Managing people: inviting them, resetting their sign-in, listing,
//! disabling, enabling and removing them, and the roles they may give.

use warden_store::users::User;

use crate::{Api, ApiError, ApiResult, ErrorCode, Response, blocking};

impl Api {
    pub(crate) async fn person(&self, name: &str) -> ApiResult<User> {
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
    pub(crate) async fn set_person_active(
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

    pub(crate) async fn user_add(
        &self,
        name: String,
        admin: bool,
        agent_roles: Vec<String>,
    ) -> ApiResult<Response> {
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

    pub(crate) async fn user_reset(&self, name: String) -> ApiResult<Response> {
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

    pub(crate) async fn user_list(&self) -> ApiResult<Response> {
        let store = self.store.clone();
        Ok(Response::Users(
            blocking(move || Ok(warden_store::users::list(&store.connect()?)?)).await?,
        ))
    }

    pub(crate) async fn user_remove(&self, actor: &User, name: String) -> ApiResult<Response> {
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

    pub(crate) async fn user_allow_role(&self, name: String, role: String) -> ApiResult<Response> {
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
}
