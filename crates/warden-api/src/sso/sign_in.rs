//! Opening a Warden session from a checked provider sign-in, and mapping
//! the provider's groups to Warden roles on every sign-in.

use warden_auth::oidc::IdClaims;
use warden_store::users::{self, User};

use super::{SsoConfig, SsoOutcome};
use crate::people::{ABSOLUTE_S, SignedIn};
use crate::{Api, ApiError, ApiResult, ErrorCode, blocking};

impl Api {
    /// Binds the provider's person to a Warden person, applies their groups,
    /// and opens a session that follows the provider.
    pub(crate) async fn sso_sign_in(&self, o: SsoOutcome) -> ApiResult<SignedIn> {
        let cfg = self.sso_required()?;
        let subject = format!("{}|{}", o.claims.iss, o.claims.sub);
        let store = self.store.clone();
        let (s, name, create) = (subject.clone(), o.who.clone(), cfg.create_people);
        let found = blocking(move || {
            let conn = store.connect()?;
            if let Some(u) = users::by_sso_subject(&conn, &s)? {
                return Ok(Ok((u, false)));
            }
            // Only `iss`+`sub` say who signed in (OpenID Connect Core 5.7): a
            // provider account that merely carries a Warden person's name is
            // never attached to them.
            match users::get(&conn, &name)? {
                Some(_) => Ok(Err("not linked")),
                None if create => {
                    let u = users::insert(&conn, &name, "member", "!sso")?;
                    users::set_sso_subject(&conn, u.id, Some(&s))?;
                    Ok(Ok((u, true)))
                }
                None => Ok(Err("not added")),
            }
        })
        .await?;
        let (user, created) = match found {
            Ok(x) => x,
            Err("not added") => {
                return Err(self
                    .refuse_sign_in_as(&o.who, &subject, "not added", format!("{} is not a Warden user yet; ask an admin to add you and link your provider account", o.who))
                    .await);
            }
            Err(why) => {
                return Err(self
                    .refuse_sign_in_as(&o.who, &subject, why, format!("the Warden account {} is not linked to this provider account. Sign in to Warden with your password and run `warden sso link`, or ask an admin to link it", o.who))
                    .await);
            }
        };
        if user.status != "active" {
            return Err(self
                .refuse_sign_in(
                    &o.who,
                    "disabled",
                    "your Warden account is disabled; ask an admin".into(),
                )
                .await);
        }
        if created {
            let api = Api {
                actor: Some(user.name.clone()),
                ..self.clone()
            };
            api.record_change(
                "person.created",
                &user.name,
                None,
                Some(serde_json::json!({"role": "member", "by": "sso"})),
            )
            .await?;
        }
        self.apply_groups(&cfg, &user, &o.claims).await?;
        // A person whose agents paused when the provider refused them gets
        // them back by signing in again.
        let store = self.store.clone();
        let id = user.id;
        let resumed = blocking(move || {
            let conn = store.connect()?;
            Ok(if users::set_sso_suspended(&conn, id, false)? {
                warden_store::agent::suspend_owned(&conn, id, true)?
            } else {
                0
            })
        })
        .await?;
        if resumed > 0 {
            self.reload_gateway()?;
            self.record_for(
                &user.name,
                "agents.resumed",
                serde_json::json!({"agents": resumed, "why": "signed in again"}),
            )
            .await?;
        }
        let now = self.clock.now();
        let token = warden_auth::random_token();
        let hash = warden_auth::hash_token("session", token.expose());
        let store = self.store.clone();
        let (h, id, next, mfa_at) = (
            hash.clone(),
            user.id,
            o.refresh_token.as_ref().map(|_| now + cfg.refresh_secs),
            o.mfa_at,
        );
        blocking(move || {
            let conn = store.connect()?;
            users::record_success(&conn, id)?;
            users::create_session(&conn, &h, id, now, now + ABSOLUTE_S)?;
            users::mark_mfa(&conn, &h, mfa_at)?;
            users::set_sso_refresh(&conn, &h, next)?;
            Ok(())
        })
        .await?;
        if let Some(rt) = o.refresh_token {
            let kc = self.keychain.clone();
            let acct = format!("{}/sso/session/{hash}", self.store.install_id()?);
            tokio::task::spawn_blocking(move || kc.set(&acct, &rt))
                .await
                .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
                .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?;
        }
        self.record_for(
            &user.name,
            "auth.sign_in",
            serde_json::json!({"how": "sso", "amr": o.claims.amr, "acr": o.claims.acr}),
        )
        .await?;
        let store = self.store.clone();
        let n = user.name.clone();
        let user = blocking(move || Ok(users::get(&store.connect()?, &n)?))
            .await?
            .unwrap_or(user);
        Ok(SignedIn {
            user,
            token,
            expires_s: now + ABSOLUTE_S,
        })
    }

    pub(super) async fn record_for(
        &self,
        person: &str,
        kind: &str,
        detail: serde_json::Value,
    ) -> ApiResult<()> {
        self.store
            .activity()
            .append(warden_store::NewEvent {
                kind: kind.into(),
                on_behalf_of: Some(person.to_string()),
                outcome: Some("ok".into()),
                detail: Some(detail.to_string()),
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// Groups → roles: the person's own role and the roles they may give
    /// their agents follow the provider on every sign-in and refresh.
    pub(super) async fn apply_groups(
        &self,
        cfg: &SsoConfig,
        user: &User,
        claims: &IdClaims,
    ) -> ApiResult<()> {
        let groups: Vec<String> = claims
            .other
            .get(&cfg.groups_claim)
            .and_then(|g| g.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let mapped: Vec<String> = groups
            .iter()
            .filter_map(|g| cfg.group_roles.get(g).cloned())
            .collect();
        if cfg.group_roles.is_empty() {
            return Ok(());
        }
        let role = if mapped.iter().any(|r| r == "admin") {
            "admin"
        } else {
            "member"
        };
        let mut agent_roles: Vec<String> = mapped
            .into_iter()
            .filter(|r| r != "admin" && r != "member")
            .collect();
        agent_roles.sort();
        agent_roles.dedup();
        let store = self.store.clone();
        let (id, r, ar) = (user.id, role.to_string(), agent_roles.clone());
        let (before_role, before_agents, lost) = blocking(move || {
            // All at once: an agent made in between cannot keep a role.
            Ok(warden_store::roles::apply_from_groups(
                &mut store.connect()?,
                id,
                &r,
                &ar,
            )?)
        })
        .await?;
        if before_role != role || before_agents != agent_roles || !lost.is_empty() {
            // The running gateway learns first: a failure to log must not
            // leave it enforcing the old roles.
            self.reload_gateway()?;
            let lost: Vec<serde_json::Value> = lost
                .into_iter()
                .map(|(agent, role)| serde_json::json!({"agent": agent, "role": role}))
                .collect();
            self.record_for(
                &user.name,
                "person.roles_from_groups",
                serde_json::json!({"target": user.name, "groups": groups,
                    "before": {"role": before_role, "agent_roles": before_agents},
                    "after": {"role": role, "agent_roles": agent_roles},
                    "agents_lost": lost}),
            )
            .await?;
        }
        Ok(())
    }
}
