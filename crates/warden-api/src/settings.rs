//! The settings of `config.toml` that an edit of the file could loosen
//! ([`Guarded`]: the approval timeout, notifications, how long activity is
//! kept). Any process of the person's OS user can edit the file, so a
//! looser value takes effect only once an admin approved it with a fresh
//! code; until then the value an admin last approved (Warden's defaults at
//! first) stays in force, and each start that holds one back says so in the
//! log. A stricter value applies at once.

use serde::{Deserialize, Serialize};
use warden_auth::Sensitive;
use warden_gateway::config::{Config, Guarded, HeldSetting};
use warden_store::users::User;

use crate::people::Unseal;
use crate::{Api, ApiError, ApiResult, ErrorCode, Response, blocking};

const KEY: &str = "approved_settings";

/// The file's guarded settings against the approved ones.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct SettingsReview {
    /// What the file asks for that is looser than approved (empty: nothing
    /// waits).
    pub held: Vec<HeldSetting>,
    /// The hash of the file's guarded settings, to approve exactly them.
    pub hash: String,
    /// Who approved the settings in force, if anyone has.
    pub approved_by: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Approved {
    #[serde(flatten)]
    settings: Guarded,
    by: String,
    /// When, in Unix seconds.
    at_s: i64,
}

fn read_approved(store: &warden_store::Store) -> ApiResult<Option<Approved>> {
    match store.setting(KEY)? {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            // An unreadable approval approves nothing (fail closed): say so
            // rather than fall back to the file.
            ApiError::new(
                ErrorCode::Internal,
                format!("the approved settings in Warden's database cannot be read ({e}); an admin can approve the file's settings again with: warden config approve"),
            )
        }),
    }
}

/// The settings an admin last approved, or Warden's defaults.
pub(crate) fn approved_settings(store: &warden_store::Store) -> ApiResult<Guarded> {
    Ok(read_approved(store)?
        .map(|a| a.settings)
        .unwrap_or_default())
}

/// Holds back what `config` loosens, with one log line per start.
pub(crate) fn hold_loosened(
    store: &warden_store::Store,
    config: &mut Config,
) -> ApiResult<Vec<HeldSetting>> {
    let approved = match approved_settings(store) {
        Ok(a) => a,
        // Unreadable: Warden's defaults, the strictest starting point.
        Err(e) => {
            tracing::error!(error = %e.message, "using Warden's default settings");
            Guarded::default()
        }
    };
    let held = config.hold_loosened(&approved);
    for h in &held {
        tracing::warn!(
            setting = %h.setting,
            wanted = %h.wanted,
            kept = %h.kept,
            "a looser setting in config.toml waits for an admin's approval (warden config approve)"
        );
    }
    Ok(held)
}

impl Api {
    /// The configuration as it is in force: the running gateway's, or the
    /// file's with what it loosens held back.
    pub(crate) fn config_in_force(&self) -> ApiResult<Config> {
        if let Some(gw) = &self.gateway {
            return Ok(gw.config());
        }
        let mut config = self.load_config()?;
        hold_loosened(&self.store, &mut config)?;
        Ok(config)
    }

    /// Records, once at start, the settings the file asked for and did not get.
    pub(crate) async fn record_held_settings(&self, held: &[HeldSetting]) -> ApiResult<()> {
        if held.is_empty() {
            return Ok(());
        }
        self.record(
            "config.change_held",
            None,
            None,
            Some(serde_json::json!({"held": held}).to_string()),
        )
        .await
    }

    /// What the file asks for that waits for an admin (for admins only; an
    /// empty list for anyone else).
    pub(crate) async fn held_settings(&self, actor: &User) -> ApiResult<Vec<HeldSetting>> {
        if actor.role != "admin" {
            return Ok(Vec::new());
        }
        Ok(self.settings_review().await?.held)
    }

    async fn settings_review(&self) -> ApiResult<SettingsReview> {
        let mut config = self.load_config()?;
        let store = self.store.clone();
        // An unreadable approval approves nothing: the defaults hold, and an
        // admin's approval writes a good one in its place.
        let approved = blocking(move || Ok(read_approved(&store)))
            .await?
            .unwrap_or_else(|e| {
                tracing::error!(error = %e.message, "using Warden's default settings");
                None
            });
        let hash = Guarded::of(&config).hash();
        let held = config.hold_loosened(
            &approved
                .as_ref()
                .map(|a| a.settings.clone())
                .unwrap_or_default(),
        );
        Ok(SettingsReview {
            held,
            hash,
            approved_by: approved.map(|a| a.by),
        })
    }

    /// Without `hash`: what the file loosens. With the hash shown and a
    /// fresh code: approves the file's guarded settings exactly as shown,
    /// and the running gateway applies them.
    pub(crate) async fn settings_approve(
        &self,
        actor: &User,
        token: &Sensitive<String>,
        hash: Option<String>,
        code: Option<String>,
    ) -> ApiResult<Response> {
        let review = self.settings_review().await?;
        let Some(hash) = hash else {
            return Ok(Response::Settings(review));
        };
        if self.gateway.is_none() {
            // Codes are checked by the Warden the person signed in to.
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                "settings are approved in the running Warden: start it (the app, or `warden serve`), sign in, then try again",
            ));
        }
        if hash != review.hash {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "config.toml changed since its settings were shown to you; review them again",
            ));
        }
        let code = code.filter(|c| !c.trim().is_empty()).ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthenticated,
                "approving looser settings needs a fresh code from your authenticator app",
            )
        })?;
        self.step_up(
            actor,
            Some(token),
            code.trim(),
            "the settings in config.toml",
            Unseal::Unlocked,
        )
        .await?;
        let wanted = Guarded::of(&self.load_config()?);
        if wanted.hash() != hash {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "config.toml changed while you approved it; review its settings again",
            ));
        }
        let store = self.store.clone();
        let approved = Approved {
            settings: wanted.clone(),
            by: actor.name.clone(),
            at_s: self.clock.now(),
        };
        let text = serde_json::to_string(&approved)
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        let before = blocking(move || {
            let before = approved_settings(&store).unwrap_or_default();
            store.connect()?.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [KEY, text.as_str()],
            ).map_err(warden_store::Error::from)?;
            Ok(before)
        })
        .await?;
        if let Some(gw) = &self.gateway {
            gw.apply_guarded(&wanted);
        }
        self.record_change(
            "config.change_approved",
            "config.toml",
            serde_json::to_value(&before).ok(),
            serde_json::to_value(&wanted).ok(),
        )
        .await?;
        Ok(Response::Done)
    }
}
