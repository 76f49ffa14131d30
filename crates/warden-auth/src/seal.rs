//! Secrets sealed under a person's password, so that a process that can
//! read every file and keychain item of this OS user still cannot use them.
//!
//! A sealed value is `warden-sealed-1$<salt>$<nonce>$<ciphertext>` (base64,
//! no padding). The key is argon2id of the password and a fresh 16-byte salt
//! (the same cost as password hashes: m=19 MiB, t=2, p=1); the cipher is
//! XChaCha20-Poly1305 with a fresh 24-byte nonce, and the associated data
//! names what the value is for (`context`), so a sealed value moved to
//! another person or another purpose does not open. The crates are
//! RustCrypto's `argon2` and `chacha20poly1305`: nothing cryptographic is
//! written here but the framing.
//!
//! What it does not stop: someone who learns the password (a keylogger on
//! X11, a password used elsewhere), or a guess at it, each guess costing one
//! argon2id. Nor does sealing say *whose* sealed value it is: a process that
//! replaces a person's sealed value and password hash with its own has made
//! a new person, not unsealed the old one (see the README's threat model).

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::Sensitive;

const PREFIX: &str = "warden-sealed-1$";

/// Whether `text` is a sealed value (rather than a secret kept in the
/// clear by an older Warden).
pub fn is_sealed(text: &str) -> bool {
    text.starts_with(PREFIX)
}

fn key(password: &Sensitive<String>, salt: &[u8]) -> Result<Sensitive<[u8; 32]>, String> {
    let params = Params::new(19 * 1024, 2, 1, Some(32)).map_err(|e| e.to_string())?;
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password.expose().as_bytes(), salt, &mut out)
        .map_err(|e| e.to_string())?;
    Ok(Sensitive::new(out))
}

/// Seals `secret` under `password` for `context`. Slow on purpose (one
/// argon2id): call it off the async threads.
pub fn seal(
    password: &Sensitive<String>,
    context: &str,
    secret: &[u8],
) -> Result<Sensitive<String>, String> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 24];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut nonce);
    let key = key(password, &salt)?;
    let cipher = XChaCha20Poly1305::new(key.expose().into());
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: secret,
                aad: context.as_bytes(),
            },
        )
        .map_err(|_| "could not seal the secret".to_string())?;
    Ok(Sensitive::new(format!(
        "{PREFIX}{}${}${}",
        B64.encode(salt),
        B64.encode(nonce),
        B64.encode(sealed)
    )))
}

/// Opens a value [`seal`] made. `None` for a wrong password, another
/// context, or a value that was altered or is not sealed at all: the
/// caller cannot tell these apart, and need not.
pub fn open(
    password: &Sensitive<String>,
    context: &str,
    sealed: &str,
) -> Option<Sensitive<Vec<u8>>> {
    let rest = sealed.strip_prefix(PREFIX)?;
    let mut parts = rest.split('$');
    let salt = B64.decode(parts.next()?).ok()?;
    let nonce = B64.decode(parts.next()?).ok()?;
    let body = B64.decode(parts.next()?).ok()?;
    if parts.next().is_some() || salt.len() != 16 || nonce.len() != 24 {
        return None;
    }
    let key = key(password, &salt).ok()?;
    let cipher = XChaCha20Poly1305::new(key.expose().into());
    cipher
        .decrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &body,
                aad: context.as_bytes(),
            },
        )
        .ok()
        .map(Sensitive::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Sensitive<String> {
        Sensitive::new(s.to_string())
    }

    #[test]
    fn only_the_password_and_the_context_open_it() {
        let sealed =
            seal(&pw("correct horse battery"), "totp/1", b"JBSWY3DPEHPK3PXP").expect("seal");
        assert!(is_sealed(sealed.expose()));
        assert!(
            !sealed.expose().contains("JBSWY3DP"),
            "the secret is not in the sealed text"
        );
        let opened = open(&pw("correct horse battery"), "totp/1", sealed.expose()).expect("open");
        assert_eq!(opened.expose().as_slice(), b"JBSWY3DPEHPK3PXP");
        assert!(open(&pw("correct horse batterY"), "totp/1", sealed.expose()).is_none());
        assert!(
            open(&pw("correct horse battery"), "totp/2", sealed.expose()).is_none(),
            "another person's or purpose's context does not open it"
        );
        let again =
            seal(&pw("correct horse battery"), "totp/1", b"JBSWY3DPEHPK3PXP").expect("seal");
        assert_ne!(
            again.expose(),
            sealed.expose(),
            "fresh salt and nonce each time"
        );
    }

    #[test]
    fn an_altered_or_foreign_value_does_not_open() {
        let sealed = seal(&pw("correct horse battery"), "totp/1", b"secret").expect("seal");
        let text = sealed.expose().clone();
        let last = text.len() - 2;
        let mut flipped = text.clone().into_bytes();
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        assert!(open(&pw("correct horse battery"), "totp/1", &flipped).is_none());
        for bad in [
            "JBSWY3DPEHPK3PXP",
            "warden-sealed-1$",
            "warden-sealed-1$AAAA$AAAA$AAAA",
            &format!("{text}$extra"),
        ] {
            assert!(
                open(&pw("correct horse battery"), "totp/1", bad).is_none(),
                "{bad}"
            );
        }
    }
}
