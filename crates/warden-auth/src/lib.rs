//! Proving who someone is. For now: agent credentials (generated, shown once,
//! stored only as a hash) and the OS keychain that holds every secret Warden
//! keeps. There is no plaintext fallback: with no keychain, secret operations
//! fail with an error that says how to get one.

mod credential;
mod keychain;
mod sensitive;

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
