//! Secrets in the OS keychain under the service name "warden".
//!
//! Calls block (the platform stores are synchronous); async code runs them
//! under `spawn_blocking`. Accounts are namespaced, e.g. `agent:<name>`.

use crate::{Error, Result, Sensitive};

pub const SERVICE: &str = "warden";

#[derive(Debug, Clone)]
pub struct Keychain {
    service: String,
}

impl Default for Keychain {
    fn default() -> Self {
        Keychain {
            service: SERVICE.to_string(),
        }
    }
}

fn map_err(e: keyring::Error) -> Error {
    match e {
        keyring::Error::NoStorageAccess(inner) => Error::KeychainUnavailable(inner.to_string()),
        keyring::Error::PlatformFailure(inner) => Error::KeychainUnavailable(inner.to_string()),
        other => Error::Keychain(other.to_string()),
    }
}

impl Keychain {
    /// A keychain under another service name, so that tests and several
    /// installs on one machine do not share secrets.
    pub fn with_service(service: impl Into<String>) -> Self {
        Keychain {
            service: service.into(),
        }
    }

    fn entry(&self, account: &str) -> Result<keyring::Entry> {
        keyring::Entry::new(&self.service, account).map_err(map_err)
    }

    pub fn set(&self, account: &str, secret: &Sensitive<String>) -> Result<()> {
        self.entry(account)?
            .set_password(secret.expose())
            .map_err(map_err)
    }

    pub fn get(&self, account: &str) -> Result<Option<Sensitive<String>>> {
        match self.entry(account)?.get_password() {
            Ok(s) => Ok(Some(Sensitive::new(s))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_err(e)),
        }
    }

    pub fn delete(&self, account: &str) -> Result<()> {
        match self.entry(account)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }
}
