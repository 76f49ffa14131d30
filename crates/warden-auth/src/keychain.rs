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

/// Whether a failure means the keychain service went away in the middle of
/// the call (it crashed or restarted) rather than refusing it. The Secret
/// Service is started again on demand by the session bus, so such a call is
/// worth one more try; every other failure is final.
fn is_transient(e: &keyring::Error) -> bool {
    let text = match e {
        keyring::Error::NoStorageAccess(inner) | keyring::Error::PlatformFailure(inner) => {
            inner.to_string()
        }
        _ => return false,
    };
    ["NoReply", "ServiceUnknown", "disconnected"]
        .iter()
        .any(|marker| text.contains(marker))
}

/// Runs one keychain operation, again after a short pause when the service
/// vanished mid-call. Every operation here is idempotent (set the same value,
/// read, delete-if-present), so a repeat cannot do anything twice.
fn with_retry<T>(mut op: impl FnMut() -> keyring::Result<T>) -> keyring::Result<T> {
    const PAUSES_MS: [u64; 2] = [150, 600];
    let mut attempt = 0;
    loop {
        match op() {
            Err(e) if attempt < PAUSES_MS.len() && is_transient(&e) => {
                tracing::warn!(error = %e, "the keychain service went away mid-call; trying again");
                std::thread::sleep(std::time::Duration::from_millis(PAUSES_MS[attempt]));
                attempt += 1;
            }
            other => return other,
        }
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
        let entry = self.entry(account)?;
        with_retry(|| entry.set_password(secret.expose())).map_err(map_err)
    }

    pub fn get(&self, account: &str) -> Result<Option<Sensitive<String>>> {
        let entry = self.entry(account)?;
        match with_retry(|| entry.get_password()) {
            Ok(s) => Ok(Some(Sensitive::new(s))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_err(e)),
        }
    }

    pub fn delete(&self, account: &str) -> Result<()> {
        let entry = self.entry(account)?;
        match with_retry(|| entry.delete_credential()) {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(text: &str) -> keyring::Error {
        keyring::Error::PlatformFailure(text.to_string().into())
    }

    #[test]
    fn a_vanished_service_is_tried_again_and_a_refusal_is_not() {
        assert!(is_transient(&platform(
            "zbus error: org.freedesktop.DBus.Error.NoReply: Message recipient disconnected"
        )));
        assert!(is_transient(&platform(
            "org.freedesktop.DBus.Error.ServiceUnknown: The name is not activatable"
        )));
        assert!(!is_transient(&platform(
            "Cannot create an item in a locked collection"
        )));
        assert!(!is_transient(&keyring::Error::NoEntry));

        let mut calls = 0;
        let out = with_retry(|| {
            calls += 1;
            if calls < 3 {
                Err(platform("org.freedesktop.DBus.Error.NoReply"))
            } else {
                Ok(calls)
            }
        });
        assert_eq!(out.expect("the third try works"), 3);

        let mut calls = 0;
        let out: keyring::Result<()> = with_retry(|| {
            calls += 1;
            Err(platform("org.freedesktop.DBus.Error.NoReply"))
        });
        assert!(out.is_err());
        assert_eq!(calls, 3, "two retries, then the error is final");

        let mut calls = 0;
        let out: keyring::Result<()> = with_retry(|| {
            calls += 1;
            Err(platform("locked collection"))
        });
        assert!(out.is_err());
        assert_eq!(calls, 1, "a refusal is never retried");
    }
}
