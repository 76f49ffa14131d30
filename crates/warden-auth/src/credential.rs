//! Agent credentials: 256 random bits, base64url, with a recognisable prefix
//! so secret scanners and people can tell what it is.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::Sensitive;

pub const CREDENTIAL_PREFIX: &str = "wdn_";

pub fn generate_credential() -> Sensitive<String> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    Sensitive::new(format!(
        "{CREDENTIAL_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// The stored form of a credential. A fast hash is enough here: credentials
/// carry 256 bits of entropy, so there is nothing to brute-force.
pub fn hash_credential(credential: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"warden-agent-credential-v1\0");
    h.update(credential.as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_long_distinct_and_hash_stably() {
        let a = generate_credential();
        let b = generate_credential();
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with(CREDENTIAL_PREFIX));
        assert_eq!(
            a.expose().len(),
            CREDENTIAL_PREFIX.len() + 43,
            "256 bits in base64url"
        );
        assert_eq!(hash_credential(a.expose()), hash_credential(a.expose()));
        assert_ne!(hash_credential(a.expose()), hash_credential(b.expose()));
        assert!(!hash_credential(a.expose()).contains(a.expose()));
    }
}
