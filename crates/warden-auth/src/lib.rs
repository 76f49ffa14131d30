//! Proving who someone is: passwords and TOTP, agent credentials (generated,
//! shown once, stored only as a keyed hash), OAuth sign-ins to remote
//! servers, single sign-on, and the OS keychain that holds every secret
//! Warden keeps. There is no plaintext fallback: with no keychain, secret
//! operations fail with an error that says how to get one. `README.md`
//! says which crates do the protocols and cryptography, and what is
//! written here.

mod credential;
mod keychain;
pub mod oauth;
pub mod oidc;
pub mod password;
pub mod process;
pub mod seal;
mod sensitive;
pub mod totp;

pub use credential::{CREDENTIAL_PREFIX, generate_credential, hash_credential};
pub use keychain::{Keychain, SERVICE};
pub use sensitive::Sensitive;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "the OS keychain is not available ({0}). On Linux, start a Secret Service provider such as gnome-keyring and unlock it, then try again"
    )]
    KeychainUnavailable(String),
    #[error("the keychain refused the operation: {0}")]
    Keychain(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The time, injected so that expiry, lockout and TOTP can be tested without
/// sleeping.
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now(&self) -> i64;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// Failed sign-ins allowed before delays start.
pub const FREE_ATTEMPTS: i64 = 3;
/// The longest delay after failed sign-ins, in seconds.
pub const MAX_LOCKOUT_S: i64 = 15 * 60;

/// Until when sign-in is refused after `failures` consecutive failures:
/// nothing for the first three, then 1, 2, 4, … seconds, at most 15 minutes.
pub fn lockout_until(failures: i64, now: i64) -> Option<i64> {
    if failures < FREE_ATTEMPTS {
        return None;
    }
    let exp = (failures - FREE_ATTEMPTS).min(20) as u32;
    Some(now + (1i64 << exp).min(MAX_LOCKOUT_S))
}

/// A random token of 256 bits (sessions, recovery codes use their own form).
pub fn random_token() -> Sensitive<String> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    Sensitive::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Ten recovery codes of 10 base32 characters (50 bits) each, shown once.
pub fn recovery_codes() -> Vec<Sensitive<String>> {
    (0..10)
        .map(|_| {
            let mut b = [0u8; 7];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
            let s = data_encoding::BASE32_NOPAD.encode(&b).to_ascii_lowercase();
            Sensitive::new(format!("{}-{}", &s[..5], &s[5..10]))
        })
        .collect()
}

/// A one-time enrolment code: 20 base32 characters (100 bits) in groups of
/// five, easy to read out or type.
pub fn enrolment_code() -> Sensitive<String> {
    let mut b = [0u8; 13];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
    let s = data_encoding::BASE32_NOPAD.encode(&b).to_ascii_lowercase();
    Sensitive::new(format!(
        "{}-{}-{}-{}",
        &s[..5],
        &s[5..10],
        &s[10..15],
        &s[15..20]
    ))
}

/// The stored form of a session token or recovery code (high-entropy
/// values: a plain hash with a purpose label is enough).
pub fn hash_token(purpose: &str, token: &str) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(purpose.as_bytes());
    h.update([0]);
    h.update(token.as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod lockout_tests {
    use super::*;

    struct Fixed(i64);
    impl Clock for Fixed {
        fn now(&self) -> i64 {
            self.0
        }
    }

    #[test]
    fn delays_grow_after_three_failures_and_are_capped() {
        let clock = Fixed(1_000);
        let now = clock.now();
        assert_eq!(lockout_until(1, now), None);
        assert_eq!(lockout_until(2, now), None);
        assert_eq!(lockout_until(3, now), Some(now + 1));
        assert_eq!(lockout_until(4, now), Some(now + 2));
        assert_eq!(lockout_until(8, now), Some(now + 32));
        assert_eq!(lockout_until(40, now), Some(now + MAX_LOCKOUT_S));
    }
}
