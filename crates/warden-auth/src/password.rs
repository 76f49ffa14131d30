//! Passwords: argon2id (OWASP's first choice), a minimum policy, and
//! verification that takes the same time whatever went wrong.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::Sensitive;

pub const MIN_LENGTH: usize = 12;

/// Why a new password is refused, in words a person can act on.
pub fn check_policy(password: &str, username: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_LENGTH {
        return Err(format!(
            "the password is too short: use at least {MIN_LENGTH} characters (a few words in a row work well)"
        ));
    }
    if chars > 1024 {
        return Err("the password is too long: use at most 1024 characters".into());
    }
    let lower = password.to_lowercase();
    if !username.is_empty() && lower.contains(&username.to_lowercase()) {
        return Err("the password must not contain the user name".into());
    }
    let mut distinct: Vec<char> = password.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 5 {
        return Err("the password repeats too few characters: mix in more different ones".into());
    }
    Ok(())
}

pub fn hash(password: &Sensitive<String>) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

pub fn verify(stored: &str, password: &Sensitive<String>) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the user does not exist, so that an unknown
/// name takes as long as a wrong password.
pub fn decoy_hash() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3eUu4J7B7iHjmtDt8XhT7d2cQ6cZq0cX5L3k9m2yQ5g"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_per_salt() {
        let pw = Sensitive::new("correct horse battery".to_string());
        let a = hash(&pw).expect("hash");
        let b = hash(&pw).expect("hash");
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify(&a, &pw));
        assert!(!verify(
            &a,
            &Sensitive::new("correct horse battery!".into())
        ));
        assert!(!verify(decoy_hash(), &pw));
        assert!(!verify("not a hash", &pw));
    }

    #[test]
    fn policy() {
        assert!(check_policy("short", "ada").is_err());
        assert!(check_policy("aaaaaaaaaaaaaaaa", "ada").is_err());
        assert!(check_policy("ada-lovelace-1815", "Ada").is_err());
        assert!(check_policy("correct horse battery", "ada").is_ok());
    }
}
