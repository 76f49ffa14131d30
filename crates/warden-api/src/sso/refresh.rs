//! Keeping provider sessions honest: refreshing them in the background,
//! checking each new ID token, and ending the session (and pausing the
//! person's agents) when the provider stops vouching for the person.

use std::sync::Arc;
use std::time::Duration;

use warden_auth::oauth::ClientRegistration;
use warden_auth::oauth::flow;
use warden_auth::oauth::guard::Guard;
use warden_auth::oidc::{self, Expect, ProviderMetadata};
use warden_auth::{Sensitive, oauth::OAuthError};
use warden_store::users::{self, User};

use super::{SsoConfig, guard_for};
use crate::{Api, ApiError, ApiResult, ErrorCode, blocking};

impl Api {
    /// Checks every session that follows the provider and is due: a
    /// refreshed token updates the person's roles from their groups; a
    /// refusal ends the session and pauses the person's agents until they
    /// sign in again. Network trouble is retried later.
    pub async fn sso_refresh_due(&self) -> ApiResult<usize> {
        let Some(cfg) = self.sso_config()? else {
            return Ok(0);
        };
        if !self.store.vault().is_open() {
            // No session is anyone's until a person unlocked Warden.
            return Ok(0);
        }
        let now = self.clock.now();
        let store = self.store.clone();
        let due = blocking(move || Ok(users::sso_sessions_due(&store.connect()?, now)?)).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let guard = guard_for(&cfg.issuer)?;
        let meta = match oidc::discover(&guard, &cfg.issuer).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "could not reach the identity provider; sessions are checked again later");
                return Ok(0);
            }
        };
        let client = self.client(&cfg).await?;
        let install = self.store.install_id()?;
        let mut ended = 0;
        for (hash, user_id) in due {
            // One person's trouble (a keychain or database error) must not
            // stop the others' sessions from being checked.
            match self
                .refresh_one(&cfg, &meta, &client, &guard, &install, hash, user_id, now)
                .await
            {
                Ok(true) => ended += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e.message, user_id, "could not check a provider session; it is checked again later")
                }
            }
        }
        Ok(ended)
    }

    /// One provider session that is due: refreshed and checked, or ended.
    /// Returns whether it ended.
    #[allow(clippy::too_many_arguments)]
    async fn refresh_one(
        &self,
        cfg: &SsoConfig,
        meta: &ProviderMetadata,
        client: &ClientRegistration,
        guard: &Guard,
        install: &str,
        hash: String,
        user_id: i64,
        now: i64,
    ) -> ApiResult<bool> {
        let acct = format!("{install}/sso/session/{hash}");
        let kc = self.keychain.clone();
        let a = acct.clone();
        let rt = tokio::task::spawn_blocking(move || kc.get(&a))
            .await
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
            .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?;
        let Some(user) = ({
            let store = self.store.clone();
            blocking(move || Ok(users::by_id(&store.connect()?, user_id)?)).await?
        }) else {
            return Ok(false);
        };
        let tokens = warden_auth::oauth::TokenSet {
            access_token: Sensitive::new(String::new()),
            refresh_token: rt,
            expires_at: None,
            scope: None,
            resource: String::new(),
            issuer: meta.issuer.clone(),
            id_token: None,
        };
        match flow::refresh(guard, &meta.token_endpoint, client, &tokens).await {
            Ok(fresh) => {
                // A rotated refresh token replaces the old one before
                // anything else: the provider may already refuse the old.
                if let Some(rt) = fresh.refresh_token.clone() {
                    let kc = self.keychain.clone();
                    let a = acct.clone();
                    let _ = tokio::task::spawn_blocking(move || kc.set(&a, &rt)).await;
                }
                let next = match self.check_refreshed(cfg, meta, &user, &fresh, now).await? {
                    Refreshed::Refused(why) => {
                        self.end_provider_session(hash, &user, acct, why).await?;
                        return Ok(true);
                    }
                    Refreshed::Checked => now + cfg.refresh_secs,
                    // Not checked yet: soon again, not a whole interval later.
                    Refreshed::Unchecked => now + cfg.refresh_secs.min(30),
                };
                let store = self.store.clone();
                let h = hash.clone();
                blocking(move || Ok(users::set_sso_refresh(&store.connect()?, &h, Some(next))?))
                    .await?;
            }
            Err(OAuthError::Network(e)) => {
                tracing::warn!(error = %e, person = %user.name, "could not reach the identity provider; trying again later");
            }
            Err(e) => {
                self.end_provider_session(hash, &user, acct, e.to_string())
                    .await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// A refresh's new ID token, when the provider sent one: it must pass
    /// the same checks as at sign-in and name the same person; then the
    /// person's roles follow their groups. Keys that cannot be fetched leave
    /// it unchecked, and the session is checked again soon.
    async fn check_refreshed(
        &self,
        cfg: &SsoConfig,
        meta: &oidc::ProviderMetadata,
        user: &User,
        fresh: &warden_auth::oauth::TokenSet,
        now: i64,
    ) -> ApiResult<Refreshed> {
        let Some(id) = &fresh.id_token else {
            return Ok(Refreshed::Checked);
        };
        let expect = Expect {
            issuer: &meta.issuer,
            client_id: &cfg.client_id,
            nonce: None,
            max_age: None,
            now,
        };
        let verdict = oidc::validate_with(&guard_for(&cfg.issuer)?, meta, id, &expect).await;
        let claims = match verdict {
            Err(e) => {
                tracing::warn!(error = %e, person = %user.name, "could not fetch the identity provider's keys; the session is checked again soon");
                return Ok(Refreshed::Unchecked);
            }
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                return Ok(Refreshed::Refused(format!(
                    "the provider's new ID token was refused: {e}"
                )));
            }
        };
        let store = self.store.clone();
        let uid = user.id;
        let bound = blocking(move || Ok(users::sso_subject_of(&store.connect()?, uid)?)).await?;
        if bound.as_deref() != Some(format!("{}|{}", claims.iss, claims.sub).as_str()) {
            return Ok(Refreshed::Refused(
                "the provider's new ID token names a different person".to_string(),
            ));
        }
        self.apply_groups(cfg, user, &claims).await?;
        Ok(Refreshed::Checked)
    }

    /// The provider refused a session (or answered for someone else): the
    /// session ends, the person's agents are suspended until they sign in
    /// again, and it is logged.
    async fn end_provider_session(
        &self,
        hash: String,
        user: &User,
        acct: String,
        why: String,
    ) -> ApiResult<()> {
        let store = self.store.clone();
        let id = user.id;
        let paused = blocking(move || {
            let conn = store.connect()?;
            users::end_session(&conn, &hash)?;
            users::set_sso_suspended(&conn, id, true)?;
            Ok(warden_store::agent::suspend_owned(&conn, id, false)?)
        })
        .await?;
        let kc = self.keychain.clone();
        let _ = tokio::task::spawn_blocking(move || kc.delete(&acct)).await;
        self.reload_gateway()?;
        self.record_for(
            &user.name,
            "auth.sso_refused",
            serde_json::json!({"why": why, "session_ended": true, "agents_suspended": paused}),
        )
        .await?;
        tracing::warn!(person = %user.name, "the identity provider refused a session; it ended and the person's agents are suspended");
        Ok(())
    }
}

/// What a refreshed session's new ID token came to.
enum Refreshed {
    /// Checked (or none was sent): the session goes on.
    Checked,
    /// The provider's keys could not be fetched: check again soon.
    Unchecked,
    /// It failed the checks: the session ends, with this reason.
    Refused(String),
}

/// Runs the background refresh: every few seconds, sessions that are due.
pub fn spawn_refresher(api: Api) {
    tokio::spawn(async move {
        let api = Arc::new(api);
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if let Err(e) = api.sso_refresh_due().await {
                tracing::warn!(error = %e.message, "checking SSO sessions failed");
            }
        }
    });
}
