//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP): HMAC-SHA1,
//! 30-second steps, 6 digits, one step of clock drift either way. A code is
//! accepted only for a step later than the last one used, so it cannot be
//! replayed, even within its own 30 seconds.

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;

use crate::Sensitive;

pub const STEP_SECONDS: i64 = 30;
pub const DIGITS: u32 = 6;

/// A new 160-bit secret, as RFC 4226 recommends.
pub fn generate_secret() -> Sensitive<Vec<u8>> {
    let mut s = vec![0u8; 20];
    rand::rng().fill_bytes(&mut s);
    Sensitive::new(s)
}

/// The secret as authenticator apps take it (base32, no padding).
pub fn encode_secret(secret: &[u8]) -> Sensitive<String> {
    Sensitive::new(BASE32_NOPAD.encode(secret))
}

pub fn decode_secret(text: &str) -> Option<Vec<u8>> {
    BASE32_NOPAD
        .decode(text.trim().to_ascii_uppercase().as_bytes())
        .ok()
}

/// HOTP (RFC 4226) for one counter value.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> String {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = (digest[19] & 0x0f) as usize;
    let binary = (u32::from(digest[offset] & 0x7f) << 24)
        | (u32::from(digest[offset + 1]) << 16)
        | (u32::from(digest[offset + 2]) << 8)
        | u32::from(digest[offset + 3]);
    let code = u64::from(binary) % 10u64.pow(digits);
    format!("{code:0width$}", width = digits as usize)
}

pub fn step_at(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

pub fn code_at(secret: &[u8], unix_seconds: i64) -> String {
    hotp(secret, step_at(unix_seconds) as u64, DIGITS)
}

#[derive(Debug, PartialEq, Eq)]
pub enum Rejected {
    Wrong,
    Replayed,
}

/// Checks `code` at `now`; returns the step it matched, which the caller
/// stores as the last used step.
pub fn verify(
    secret: &[u8],
    code: &str,
    now: i64,
    last_step: Option<i64>,
) -> Result<i64, Rejected> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejected::Wrong);
    }
    let now_step = step_at(now);
    for step in [now_step - 1, now_step, now_step + 1] {
        if step < 0 {
            continue;
        }
        let expected = hotp(secret, step as u64, DIGITS);
        if constant_time_eq(expected.as_bytes(), code.as_bytes()) {
            if last_step.is_some_and(|last| step <= last) {
                return Err(Rejected::Replayed);
            }
            return Ok(step);
        }
    }
    Err(Rejected::Wrong)
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `otpauth://` URI authenticator apps scan.
pub fn otpauth_uri(secret: &[u8], account: &str, issuer: &str) -> Sensitive<String> {
    let enc = |s: &str| url_escape(s);
    Sensitive::new(format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        enc(issuer),
        enc(account),
        BASE32_NOPAD.encode(secret),
        enc(issuer)
    ))
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The URI as a QR code (SVG), for the app's enrollment screen.
pub fn qr_svg(uri: &Sensitive<String>) -> Option<Sensitive<String>> {
    let code = qrcode::QrCode::new(uri.expose().as_bytes()).ok()?;
    Some(Sensitive::new(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .build(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (8 digits, ASCII secret "12345678901234567890").
    #[test]
    fn rfc6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, expected) in [
            (59u64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(hotp(secret, time / 30, 8), expected, "T = {time}");
        }
    }

    /// RFC 4226 appendix D: HOTP values for counters 0..9.
    #[test]
    fn rfc4226_test_vectors() {
        let secret = b"12345678901234567890";
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp(secret, counter as u64, 6), *code);
        }
    }

    #[test]
    fn accepts_one_step_of_drift_and_refuses_replays() {
        let secret = b"12345678901234567890";
        let now = 1_700_000_000;
        let code = code_at(secret, now);
        let step = verify(secret, &code, now, None).expect("current code");
        assert_eq!(
            verify(secret, &code, now, Some(step)),
            Err(Rejected::Replayed),
            "same step twice"
        );
        assert_eq!(
            verify(secret, &code, now + 29, Some(step)),
            Err(Rejected::Replayed)
        );
        let previous = code_at(secret, now - 30);
        assert!(
            verify(secret, &previous, now, None).is_ok(),
            "one step late is fine"
        );
        let old = code_at(secret, now - 90);
        assert_eq!(
            verify(secret, &old, now, None),
            Err(Rejected::Wrong),
            "three steps late is not"
        );
        let next = code_at(secret, now + 30);
        assert!(
            verify(secret, &next, now, Some(step)).is_ok(),
            "a later step after a used one is fine"
        );
        assert_eq!(verify(secret, "12345", now, None), Err(Rejected::Wrong));
        assert_eq!(verify(secret, "abcdef", now, None), Err(Rejected::Wrong));
    }

    #[test]
    fn secrets_round_trip_and_uri_names_the_account() {
        let s = generate_secret();
        let text = encode_secret(s.expose());
        assert_eq!(
            decode_secret(text.expose()).as_deref(),
            Some(&s.expose()[..])
        );
        let uri = otpauth_uri(s.expose(), "ada lovelace", "Warden");
        assert!(
            uri.expose()
                .starts_with("otpauth://totp/Warden:ada%20lovelace?secret=")
        );
        assert!(qr_svg(&uri).is_some_and(|svg| svg.expose().contains("<svg")));
    }
}
