//! Where each request goes: the one table from a signed-in person's request
//! to the area that answers it, after the two checks every request passes
//! ([`crate::people::permitted`] in [`Api::call`], and a recent second factor
//! for the changes [`sensitive`] names).

use warden_auth::Sensitive;
use warden_store::users::User;

use crate::{Api, ApiError, ApiResult, ErrorCode, Request, Response, desktop, sso};

/// Changes that need a recent second factor in this session, in words:
/// every change that can grant power, so a process that finds a signed-in
/// session (or a person's stale one) cannot use it to widen anything.
fn sensitive(actor: Option<&User>, req: &Request) -> Option<&'static str> {
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
        Request::TotpReenrol { .. } => Some("set up your authenticator again"),
        Request::RecoveryRenew { .. } => Some("make new recovery codes"),
        Request::UserEnable { .. } => Some("enable a person"),
        Request::UserAllowRole { .. } => Some("let a person give a role"),
        Request::UserSsoBind { .. } => Some("link a person to a provider account"),
        Request::SsoLinkStart | Request::SsoLinkFinish { .. } => {
            Some("link your account to a provider account")
        }
        Request::AgentAdd { roles, owner, .. }
            if !roles.is_empty()
                || owner
                    .as_deref()
                    .is_some_and(|o| actor.is_none_or(|a| o != a.name)) =>
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

/// What `req` does, in words, when it needs the person's proof over the
/// control socket; the CLI asks so that it can start a password prompt
/// first. (An agent owned by someone needs it, whoever asks.)
pub fn needs_presence(req: &Request) -> Option<&'static str> {
    sensitive(None, req)
}

impl Api {
    pub(crate) async fn dispatch(
        &self,
        actor: &User,
        token: &Sensitive<String>,
        req: Request,
    ) -> ApiResult<Response> {
        if let Some(what) = sensitive(Some(actor), &req) {
            match &self.remote {
                // Over the socket, from a process that may be an agent's:
                // this request's own proof.
                Some(remote) => {
                    self.require_presence(remote, actor, token, &req, what)
                        .await?
                }
                None => {
                    if let Err(e) = self.require_recent_mfa(token, what).await {
                        self.record_refusal(&req, "no recent second factor").await?;
                        return Err(e);
                    }
                }
            }
        }
        match req {
            // Signing in and out.
            Request::Init { .. }
            | Request::Unlock { .. }
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
            Request::PasswordChange { current, new } => {
                self.change_password(actor, token, current, new).await?;
                Ok(Response::Done)
            }
            Request::TotpReenrol { password } => Ok(Response::Enrolled(Box::new(
                self.reenrol(actor, password).await?,
            ))),
            Request::RecoveryRenew { password } => Ok(Response::RecoveryCodes(
                self.renew_recovery_codes(actor, password).await?,
            )),
            Request::Confirm { totp, password } => {
                self.confirm(actor, token, &totp, password.as_ref()).await
            }

            // Single sign-on (sso/).
            Request::SsoConfigure {
                config,
                client_secret,
            } => self.sso_configure(config, client_secret).await,
            Request::SsoShow => Ok(Response::Sso(self.sso_config()?)),
            Request::SsoStepUpStart => {
                let hash = warden_auth::hash_token("session", token.expose());
                self.sso_start(sso::Purpose::StepUp(hash, actor.id)).await
            }
            Request::SsoStepUpFinish { flow } => self.sso_step_up_finish(actor, token, &flow).await,
            Request::SsoLinkStart => {
                let hash = warden_auth::hash_token("session", token.expose());
                self.sso_start(sso::Purpose::Link(hash, actor.id)).await
            }
            Request::SsoLinkFinish { flow } => self.sso_link_finish(actor, token, &flow).await,
            Request::UserSsoBind { name, subject } => {
                self.sso_bind(&name, subject).await?;
                Ok(Response::Done)
            }

            // People (people/manage.rs).
            Request::UserAdd {
                name,
                admin,
                agent_roles,
            } => self.user_add(name, admin, agent_roles).await,
            Request::UserReset { name } => self.user_reset(name).await,
            Request::UserList => self.user_list().await,
            Request::UserDisable { name } => self.set_person_active(&name, false, actor).await,
            Request::UserEnable { name } => self.set_person_active(&name, true, actor).await,
            Request::UserRemove { name } => self.user_remove(actor, name).await,
            Request::UserAllowRole { name, role } => self.user_allow_role(name, role).await,

            // Agents (agents.rs), roles and grants (roles.rs).
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
            Request::AgentList => self.agent_list(actor).await,
            Request::AgentRevoke { name } => self.agent_revoke(name).await,
            Request::AgentsPause { paused } => self.agents_pause(paused).await,
            Request::RoleAdd { name, description } => self.role_add(name, description).await,
            Request::RoleList => self.role_list().await,
            Request::RoleRemove { name } => self.role_remove(name).await,
            Request::Grant {
                role,
                server,
                pattern,
                effect,
                explicit,
            } => self.grant(role, server, pattern, effect, explicit).await,
            Request::RevokeGrant {
                role,
                server,
                pattern,
            } => self.revoke_grant(role, server, pattern).await,

            // Servers (servers.rs), their sign-ins (oauth.rs), secrets (secrets.rs).
            Request::ServerAdd { name, spec } => self.server_add(&name, spec).await,
            Request::ServerRemove { name } => self.server_remove(&name).await,
            Request::ServerList => self.server_list_for(actor),
            Request::ServerTools { name } => Ok(Response::Tools(self.server_tools(&name).await?)),
            Request::ServerPresets => Ok(Response::Presets(desktop::presets())),
            Request::ServerTrust {
                name,
                trusted,
                auto_trust_new_tools,
            } => self.server_trust(name, trusted, auto_trust_new_tools).await,
            Request::ServerConsent { name, hash, totp } => {
                self.server_consent(actor, token, name, hash, totp).await
            }
            Request::SettingsApprove { hash, totp } => {
                self.settings_approve(actor, token, hash, totp).await
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
            Request::SecretSet { name, value } => self.secret_set(name, value).await,
            Request::SecretRemove { name } => self.secret_remove(name).await,
            Request::ClientConnect {
                app,
                agent,
                servers,
                write,
            } => self.client_connect(actor, app, agent, servers, write).await,

            // Approvals and tool review (approvals.rs).
            Request::Approvals => self.approvals(actor),
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

            // Activity (activity.rs), the audit chain (audit.rs), reviews (review.rs).
            Request::Status => self.status(Some(token)).await,
            Request::Log { filter, limit } => self.log(actor, filter, limit).await,
            Request::ActivityStats { filter } => self.activity_stats(actor, filter).await,
            Request::ActivityExport { filter, format } => {
                self.export_to_downloads(token, filter, format).await
            }
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
        }
    }
}
