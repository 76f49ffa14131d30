//! Agent credentials: 256 random bits, base64url, with a recognisable prefix
//! so secret scanners and people can tell what it is.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

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

/// The stored form of a credential: HMAC-SHA256 under a per-install key held
/// in the OS keychain, so a copy of the database alone cannot be used to
/// check guesses. (Credentials carry 256 bits of entropy; a fast MAC is enough.)
pub fn hash_credential(key: &[u8], credential: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(b"warden-agent-credential-v2\0");
    mac.update(credential.as_bytes());
    hex::encode(mac.finalize().into_bytes())
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
        let key = [7u8; 32];
        assert_eq!(
            hash_credential(&key, a.expose()),
            hash_credential(&key, a.expose())
        );
        assert_ne!(
            hash_credential(&key, a.expose()),
            hash_credential(&key, b.expose())
        );
        assert_ne!(
            hash_credential(&key, a.expose()),
            hash_credential(&[8u8; 32], a.expose()),
            "keyed"
        );
        assert_eq!(hash_credential(&key, a.expose()).len(), 64);
    }
}
