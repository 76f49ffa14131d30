//! The audit side of the activity log: the checkpoint signing key (ed25519,
//! in the keychain), the newest checkpoint kept in the keychain too, and
//! `audit verify`.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use warden_auth::Sensitive;
use warden_store::CheckpointSigner;
use warden_store::audit::{Checkpoint, Verification};

use crate::{Api, ApiError, ApiResult, ErrorCode, blocking};

/// Rows between two signed checkpoints.
pub const CHECKPOINT_EVERY: i64 = 1000;

impl Api {
    fn audit_account(&self, what: &str) -> ApiResult<String> {
        Ok(format!("{}/audit-{what}", self.store.install_id()?))
    }

    /// The install's checkpoint key, made on first use.
    async fn audit_key(&self) -> ApiResult<SigningKey> {
        let account = self.audit_account("key")?;
        let kc = self.keychain.clone();
        tokio::task::spawn_blocking(move || -> ApiResult<SigningKey> {
            let unavailable =
                |e: warden_auth::Error| ApiError::new(ErrorCode::Unavailable, e.to_string());
            if let Some(k) = kc.get(&account).map_err(unavailable)? {
                let bytes: [u8; 32] = hex::decode(k.expose())
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| {
                        ApiError::new(
                            ErrorCode::Internal,
                            "the audit key in the keychain is damaged",
                        )
                    })?;
                return Ok(SigningKey::from_bytes(&bytes));
            }
            let mut seed = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut seed);
            kc.set(&account, &Sensitive::new(hex::encode(seed)))
                .map_err(unavailable)?;
            Ok(SigningKey::from_bytes(&seed))
        })
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
    }

    /// Starts signing checkpoints of the activity log (the running gateway
    /// calls this once).
    pub async fn start_checkpoints(&self) -> ApiResult<()> {
        let key = self.audit_key().await?;
        let head_account = self.audit_account("head")?;
        let kc = self.keychain.clone();
        let public = hex::encode(key.verifying_key().as_bytes());
        self.store.activity().set_signer(CheckpointSigner {
            sign: Box::new(move |msg: &[u8]| (public.clone(), hex::encode(key.sign(msg).to_bytes()))),
            keep: Box::new(move |cp: &Checkpoint| {
                let Ok(text) = serde_json::to_string(cp) else { return };
                if let Err(e) = kc.set(&head_account, &Sensitive::new(text)) {
                    tracing::error!(error = %e, "could not keep the newest checkpoint in the keychain");
                }
            }),
            every: CHECKPOINT_EVERY,
        });
        Ok(())
    }

    /// Signs a checkpoint of every row written so far and keeps it in the
    /// keychain. A CLI command that ran with no gateway calls this before it
    /// exits, so deleting the rows it wrote shows in `audit verify` as
    /// surely as deleting the gateway's.
    pub async fn checkpoint_now(&self) -> ApiResult<()> {
        self.start_checkpoints().await?;
        self.store.activity().checkpoint().await?;
        Ok(())
    }

    /// Prunes the activity log: rows older than `older_than_days`, and beyond
    /// that the oldest past `keep_rows`; a signed anchor keeps the rest
    /// verifiable. Returns how many rows went.
    pub async fn prune(
        &self,
        older_than_days: Option<u32>,
        keep_rows: Option<i64>,
    ) -> ApiResult<i64> {
        let key = self.audit_key().await?;
        let public = hex::encode(key.verifying_key().as_bytes());
        let before_us = older_than_days
            .map(|d| self.clock.now() * 1_000_000 - i64::from(d) * 86_400 * 1_000_000);
        let store = self.store.clone();
        let removed = blocking(move || {
            let mut conn = store.connect()?;
            let sign = move |msg: &[u8]| (public.clone(), hex::encode(key.sign(msg).to_bytes()));
            Ok(warden_store::audit::prune(
                &mut conn, &sign, before_us, keep_rows,
            )?)
        })
        .await?;
        if removed > 0 {
            self.record(
                "audit.pruned",
                None,
                None,
                Some(serde_json::json!({"rows": removed, "older_than_days": older_than_days, "keep_rows": keep_rows}).to_string()),
            )
            .await?;
        }
        Ok(removed)
    }

    /// Walks the chain and the signed checkpoints.
    pub(crate) async fn audit_verify(&self) -> ApiResult<Verification> {
        let key = self.audit_key().await?;
        let trusted = hex::encode(key.verifying_key().as_bytes());
        let account = self.audit_account("head")?;
        let kc = self.keychain.clone();
        let head: Option<Checkpoint> = tokio::task::spawn_blocking(move || kc.get(&account))
            .await
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
            .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?
            .and_then(|s| serde_json::from_str(s.expose()).ok());
        let store = self.store.clone();
        blocking(move || {
            let conn = store.connect()?;
            let check = |key: &str, msg: &[u8], sig: &str| -> bool {
                let key: Option<[u8; 32]> = hex::decode(key).ok().and_then(|b| b.try_into().ok());
                let sig: Option<[u8; 64]> = hex::decode(sig).ok().and_then(|b| b.try_into().ok());
                match (key.and_then(|k| VerifyingKey::from_bytes(&k).ok()), sig) {
                    (Some(k), Some(s)) => k.verify(msg, &Signature::from_bytes(&s)).is_ok(),
                    _ => false,
                }
            };
            Ok(warden_store::audit::verify(
                &conn,
                &check,
                Some(&trusted),
                head.as_ref(),
            )?)
        })
        .await
    }
}
