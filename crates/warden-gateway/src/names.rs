//! The tool-name codec: upstream names become `<server>__<name>`, always inside
//! `^[a-zA-Z0-9_-]{1,64}$`. A name with other characters, or one that would
//! run long, gets a stable short form: the sanitised name cut to fit, then `_`
//! and eight hex digits of SHA-256 over (server, original name). The same
//! input always gives the same output, so clients can remember names.

use sha2::{Digest, Sha256};

pub const SEPARATOR: &str = "__";
pub const MAX_LEN: usize = 64;

fn valid_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

pub fn is_valid(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_LEN && name.chars().all(valid_char)
}

/// The namespaced form of `original` on `server`.
pub fn expose(server: &str, original: &str) -> String {
    let plain = format!("{server}{SEPARATOR}{original}");
    if is_valid(&plain) && !original.is_empty() {
        return plain;
    }
    short_form(server, original)
}

pub fn short_form(server: &str, original: &str) -> String {
    let mut h = Sha256::new();
    h.update(server.as_bytes());
    h.update([0]);
    h.update(original.as_bytes());
    let digest = hex::encode(&h.finalize()[..4]);
    let sanitised: String = original
        .chars()
        .map(|c| if valid_char(c) { c } else { '_' })
        .collect();
    // server + "__" + body + "_" + 8 hex digits must fit in 64.
    let room = MAX_LEN.saturating_sub(server.len() + SEPARATOR.len() + 1 + digest.len());
    let body: String = sanitised.chars().take(room).collect();
    format!("{server}{SEPARATOR}{body}_{digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_prefixed() {
        assert_eq!(expose("files", "read_file"), "files__read_file");
    }

    #[test]
    fn long_or_odd_names_get_a_stable_valid_short_form() {
        let long = "x".repeat(80);
        let a = expose("files", &long);
        assert!(is_valid(&a), "{a}");
        assert_eq!(a, expose("files", &long), "stable");
        let dotted = expose("files", "fs.read/all");
        assert!(is_valid(&dotted), "{dotted}");
        assert!(dotted.starts_with("files__fs_read_all_"));
        assert_ne!(
            expose("files", "a.b"),
            expose("files", "a/b"),
            "distinct inputs stay distinct"
        );
        let emptyish = expose("files", "");
        assert!(is_valid(&emptyish));
    }
}
