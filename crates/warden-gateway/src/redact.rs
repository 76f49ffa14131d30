//! What of a call's arguments may be stored. Values under keys that look
//! secret, values that look like tokens or keys, and values equal to a secret
//! Warden keeps are replaced by `[redacted:<mac>]`, where `<mac>` is the
//! start of an HMAC-SHA256 under a per-install key from the keychain: the same
//! secret shows the same mark, so an admin can see that two calls carried the
//! same value without the value being stored. Long strings are cut. The full
//! arguments are kept only as a hash.

use std::collections::HashSet;

use hmac::{Hmac, Mac};
use parking_lot::RwLock;
use serde_json::Value;
use sha2::Sha256;
use warden_auth::Sensitive;

const MAX_STRING: usize = 1024;

fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    if matches!(k.as_str(), "key" | "pwd" | "jwt" | "pin" | "otp")
        || k.ends_with("_key")
        || k.ends_with("-key")
    {
        return true;
    }
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

/// Prefixes that start a token wherever they appear in a string.
const TOKEN_PREFIXES: &[&str] = &[
    "ghp_",
    "gho_",
    "ghs_",
    "github_pat_",
    "sk-",
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "xoxb-",
    "xoxp-",
    "AKIA",
    "AIza",
    "eyJ",
    "wdn_",
    "wdd_",
    "glpat-",
];

fn secret_value(s: &str) -> bool {
    let t = s.trim_start();
    let lower = t.get(..7).map(str::to_ascii_lowercase).unwrap_or_default();
    lower.starts_with("bearer ")
        || t.starts_with(warden_auth::CREDENTIAL_PREFIX)
        || t.starts_with("wdd_")
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

/// Redacts arguments for the activity log.
pub struct Redactor {
    key: Sensitive<Vec<u8>>,
    /// MACs of the secrets Warden keeps (server API keys and the like).
    known: RwLock<HashSet<String>>,
    /// The same secrets, to find them inside longer strings.
    known_values: RwLock<Vec<Sensitive<String>>>,
}

impl Redactor {
    pub fn new(key: Sensitive<Vec<u8>>) -> Redactor {
        Redactor {
            key,
            known: RwLock::new(HashSet::new()),
            known_values: RwLock::new(Vec::new()),
        }
    }

    fn mac(&self, value: &str) -> String {
        let Ok(mut m) = Hmac::<Sha256>::new_from_slice(self.key.expose()) else {
            return String::new();
        };
        m.update(value.as_bytes());
        hex::encode(&m.finalize().into_bytes()[..8])
    }

    /// From now on, this exact value is redacted wherever it appears.
    pub fn learn(&self, secret: &str) {
        if !secret.is_empty() {
            let mac = self.mac(secret);
            self.known.write().insert(mac);
            if secret.len() >= 6 {
                self.known_values
                    .write()
                    .push(Sensitive::new(secret.to_string()));
            }
        }
    }

    /// Replaces kept secrets and token-shaped runs inside a longer string.
    fn scrub(&self, s: &str) -> Option<String> {
        let mut out = s.to_string();
        let mut changed = false;
        for secret in self.known_values.read().iter() {
            if out.contains(secret.expose().as_str()) {
                let mark = format!("[redacted:{}]", self.mac(secret.expose()));
                out = out.replace(secret.expose().as_str(), &mark);
                changed = true;
            }
        }
        let token_end = |text: &str, from: usize| {
            text[from..]
                .find(|c: char| c.is_whitespace() || "\"'&,;)]}<>".contains(c))
                .map_or(text.len(), |e| from + e)
        };
        let mut cuts: Vec<(usize, usize)> = Vec::new();
        for p in TOKEN_PREFIXES {
            let mut at = 0;
            while let Some(i) = out[at..].find(p) {
                let start = at + i;
                let end = token_end(&out, start);
                // Only at the start of a word: "task-list" holds no token.
                let word_start = out[..start]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !c.is_ascii_alphanumeric());
                if word_start && end - start >= p.len() + 8 {
                    cuts.push((start, end));
                }
                at = end.max(start + p.len());
            }
        }
        let lower = out.to_ascii_lowercase();
        let mut at = 0;
        while let Some(i) = lower[at..].find("bearer ") {
            let start = at + i + "bearer ".len();
            let end = token_end(&out, start);
            if end > start {
                cuts.push((start, end));
            }
            at = end.max(start);
        }
        if cuts.is_empty() {
            return changed.then_some(out);
        }
        cuts.sort_unstable();
        let mut result = String::with_capacity(out.len());
        let mut last = 0;
        for (start, end) in cuts {
            if start < last {
                continue;
            }
            result.push_str(&out[last..start]);
            result.push_str(&format!("[redacted:{}]", self.mac(&out[start..end])));
            last = end;
        }
        result.push_str(&out[last..]);
        Some(result)
    }

    fn mark(&self, value: &str) -> Value {
        Value::String(format!("[redacted:{}]", self.mac(value)))
    }

    pub fn redact(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if secret_key(k) && !v.is_null() && !v.is_boolean() {
                        let text = match &*v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        *v = self.mark(&text);
                    } else {
                        self.redact(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.redact(i)),
            Value::String(s) => {
                let known =
                    !self.known.read().is_empty() && self.known.read().contains(&self.mac(s));
                if known || secret_value(s) {
                    *value = self.mark(s);
                } else if let Some(scrubbed) = self.scrub(s) {
                    *s = scrubbed;
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

    /// The redacted JSON text of raw arguments, and an HMAC-SHA256 of the raw
    /// bytes (equal arguments give equal hashes on this install only).
    pub fn arguments(&self, raw: Option<&str>) -> (Option<String>, Option<String>) {
        let Some(raw) = raw else { return (None, None) };
        // Keyed, so that a short secret cannot be found from the hash by guessing.
        let hash = {
            let Ok(mut m) = Hmac::<Sha256>::new_from_slice(self.key.expose()) else {
                return (None, None);
            };
            m.update(b"arguments\0");
            // Canonical, so the same arguments hash the same whatever order
            // a client sends the keys in.
            m.update(crate::vetting::canonical_arguments(Some(raw)).as_bytes());
            hex::encode(m.finalize().into_bytes())
        };
        let stored = match serde_json::from_str::<Value>(raw) {
            Ok(mut v) => {
                self.redact(&mut v);
                serde_json::to_string(&v).ok()
            }
            Err(_) => None,
        };
        (stored, Some(hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_inside_longer_strings_are_found() {
        let r = Redactor::new(Sensitive::new(vec![3u8; 32]));
        r.learn("kept-server-secret-42");
        let raw = r#"{"cmd":"curl -H 'Authorization: Bearer ghp_abcdefghijklmnop1234' https://x/?key=kept-server-secret-42&y=1","jwt":"x","note":"eyJhbGciOiJIUzI1NiJ9.payload.sig and AIzaSyA1234567890abcdef","pwd":"p"}"#;
        let (stored, _) = r.arguments(Some(raw));
        let stored = stored.expect("json");
        for secret in [
            "ghp_abcdefghijklmnop1234",
            "kept-server-secret-42",
            "eyJhbGciOiJIUzI1NiJ9",
            "AIzaSyA1234567890abcdef",
        ] {
            assert!(!stored.contains(secret), "{secret} leaked: {stored}");
        }
        assert!(
            stored.contains("curl -H") && stored.contains("&y=1"),
            "the rest stays readable: {stored}"
        );
        let (plain, _) = r.arguments(Some(
            r#"{"q":"a task-management-system and disk-usage-report"}"#,
        ));
        assert!(
            plain
                .expect("json")
                .contains("task-management-system and disk-usage-report"),
            "no false alarms mid-word"
        );
        let v: Value = serde_json::from_str(&stored).expect("json");
        assert!(
            v["jwt"]
                .as_str()
                .is_some_and(|s| s.starts_with("[redacted:"))
        );
        assert!(
            v["pwd"]
                .as_str()
                .is_some_and(|s| s.starts_with("[redacted:"))
        );
    }

    #[test]
    fn secrets_are_replaced_by_a_stable_mark_and_plain_values_kept() {
        let r = Redactor::new(Sensitive::new(vec![1u8; 32]));
        r.learn("plain-looking-server-key-123");
        let raw = r#"{"path":"/tmp/a","apiKey":"abc","nested":{"Authorization":"x","list":["Bearer tok","ok"]},"note":"plain-looking-server-key-123","again":{"apiKey":"abc"}}"#;
        let (stored, hash) = r.arguments(Some(raw));
        let stored = stored.expect("valid JSON is stored");
        assert!(stored.contains("/tmp/a") && stored.contains("\"ok\""));
        for secret in ["\"abc\"", "Bearer tok", "plain-looking-server-key-123"] {
            assert!(!stored.contains(secret), "{secret} leaked: {stored}");
        }
        let v: Value = serde_json::from_str(&stored).expect("json");
        assert_eq!(
            v["apiKey"], v["again"]["apiKey"],
            "the same secret gets the same mark"
        );
        assert_ne!(v["apiKey"], v["note"]);
        assert_eq!(hash.expect("hash").len(), 64);
        let other = Redactor::new(Sensitive::new(vec![2u8; 32]));
        let (o, _) = other.arguments(Some(raw));
        assert_ne!(
            o.expect("json"),
            stored,
            "marks depend on the install's key"
        );
    }
}
