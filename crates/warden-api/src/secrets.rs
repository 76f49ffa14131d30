//! Secrets a server's configuration names as `keychain:NAME`: kept in the
//! OS keychain, never in the store; the store keeps only their names so the
//! gateway can learn the values and redact them.

use std::sync::Arc;

use warden_auth::{Keychain, Sensitive};

use crate::{Api, ApiError, ApiResult, ErrorCode, Response, validate_name};

impl Api {
    /// Keeps the names (never the values) of the secrets set, so the
    /// gateway can learn their values at start and redact them from logs.
    fn remember_secret_name(&self, name: &str, present: bool) -> ApiResult<()> {
        let conn = self.store.connect()?;
        let mut names: std::collections::BTreeSet<String> = self
            .store
            .setting("secret_names")?
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default();
        if present {
            names.insert(name.to_string());
        } else {
            names.remove(name);
        }
        let text = serde_json::to_string(&names).unwrap_or_else(|_| "[]".into());
        conn.execute(
            "INSERT INTO settings (key, value) VALUES ('secret_names', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [text],
        )
        .map_err(warden_store::Error::from)?;
        Ok(())
    }

    /// Teaches the running gateway every kept secret, so none of them is
    /// ever stored in an activity row.
    pub async fn teach_gateway_secrets(&self) -> ApiResult<()> {
        let Some(gw) = &self.gateway else {
            return Ok(());
        };
        let names: Vec<String> = self
            .store
            .setting("secret_names")?
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default();
        for name in names {
            let kc = self.keychain.clone();
            let account = format!("secret/{name}");
            let value = tokio::task::spawn_blocking(move || kc.get(&account))
                .await
                .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
                .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?;
            if let Some(v) = value {
                gw.learn_secret(v.expose());
            }
        }
        Ok(())
    }

    pub(crate) async fn secret_set(
        &self,
        name: String,
        value: Sensitive<String>,
    ) -> ApiResult<Response> {
        validate_secret_name(&name)?;
        let kc = self.keychain.clone();
        let account = format!("secret/{name}");
        let value_for_gateway = value.clone();
        tokio::task::spawn_blocking(move || kc.set(&account, &value))
            .await
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
            .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?;
        self.remember_secret_name(&name, true)?;
        if let Some(gw) = &self.gateway {
            gw.learn_secret(value_for_gateway.expose());
        }
        self.record("secret.set", None, None, Some(name)).await?;
        Ok(Response::Done)
    }

    pub(crate) async fn secret_remove(&self, name: String) -> ApiResult<Response> {
        validate_secret_name(&name)?;
        let kc = self.keychain.clone();
        let account = format!("secret/{name}");
        tokio::task::spawn_blocking(move || kc.delete(&account))
            .await
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
            .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?;
        self.remember_secret_name(&name, false)?;
        self.record("secret.removed", None, None, Some(name))
            .await?;
        Ok(Response::Done)
    }
}

/// Resolves `keychain:NAME` configuration values from the OS keychain.
pub fn secret_resolver(keychain: Keychain) -> warden_gateway::upstream::SecretResolver {
    warden_gateway::upstream::SecretResolver::new(Arc::new(move |value: &str| {
        match value.strip_prefix("keychain:") {
            None => Ok(value.to_string()),
            Some(account) => match keychain.get(&format!("secret/{account}")) {
                Ok(Some(s)) => Ok(s.into_inner()),
                Ok(None) => Err(format!(
                    "the secret {account:?} is not in the keychain; add it with `warden secret set {account}`"
                )),
                Err(e) => Err(e.to_string()),
            },
        }
    }))
}

fn validate_secret_name(name: &str) -> ApiResult<()> {
    validate_name("secret", name, &['.'])
}
