//! What of a call's arguments may be stored: values under keys that look
//! secret, bearer tokens and credentials are replaced, long strings cut.
//! The full arguments are kept only as a hash.

use serde_json::Value;
use sha2::{Digest, Sha256};

const REDACTED: &str = "[redacted]";
const MAX_STRING: usize = 1024;

fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "pass",
        "secret",
        "token",
        "apikey",
        "api_key",
        "api-key",
        "auth",
        "cookie",
        "credential",
        "private",
        "session",
    ]
    .iter()
    .any(|p| k.contains(p))
}

fn secret_value(s: &str) -> bool {
    let t = s.trim_start();
    let lower = t.get(..7).map(str::to_ascii_lowercase).unwrap_or_default();
    lower.starts_with("bearer ")
        || t.starts_with(warden_auth::CREDENTIAL_PREFIX)
        || t.starts_with("-----BEGIN")
        || [
            "ghp_",
            "gho_",
            "github_pat_",
            "sk-",
            "xoxb-",
            "xoxp-",
            "AKIA",
        ]
        .iter()
        .any(|p| t.starts_with(p))
}

pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if secret_key(k) && !v.is_null() && !v.is_boolean() {
                    *v = Value::String(REDACTED.into());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::String(s) => {
            if secret_value(s) {
                *s = REDACTED.into();
            } else if s.len() > MAX_STRING {
                let mut cut = MAX_STRING;
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                s.truncate(cut);
                s.push_str("…[truncated]");
            }
        }
        _ => {}
    }
}

/// The redacted JSON text of raw arguments, and the SHA-256 of the raw bytes.
pub fn arguments(raw: Option<&str>) -> (Option<String>, Option<String>) {
    let Some(raw) = raw else { return (None, None) };
    let hash = hex::encode(Sha256::digest(raw.as_bytes()));
    let stored = match serde_json::from_str::<Value>(raw) {
        Ok(mut v) => {
            redact(&mut v);
            serde_json::to_string(&v).ok()
        }
        Err(_) => None,
    };
    (stored, Some(hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_and_plain_values_kept() {
        let raw = r#"{"path":"/tmp/a","apiKey":"abc","nested":{"Authorization":"x","list":["Bearer tok","ok"]},"token_count":3}"#;
        let (stored, hash) = arguments(Some(raw));
        let stored = stored.expect("valid JSON is stored");
        assert!(stored.contains("/tmp/a"));
        assert!(!stored.contains("abc"));
        assert!(!stored.contains("Bearer tok"));
        assert!(stored.contains("\"ok\""));
        assert_eq!(hash.expect("hash").len(), 64);
    }
}
