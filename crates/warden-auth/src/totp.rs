//! Time-based one-time passwords (RFC 6238): HMAC-SHA1, 30-second steps,
//! 6 digits, one step of clock drift either way. The codes, their
//! constant-time comparison and the `otpauth://` URI come from `totp-rs`;
//! Warden adds only replay protection: a code is accepted only for a step
//! later than the last one used, so it cannot be used twice, even within
//! its own 30 seconds.

use totp_rs::{Algorithm, Secret, TOTP};

use crate::Sensitive;

pub const STEP_SECONDS: i64 = 30;
pub const DIGITS: usize = 6;

/// A new 160-bit secret, as RFC 4226 recommends.
pub fn generate_secret() -> Sensitive<Vec<u8>> {
    let mut s = vec![0u8; 20];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut s);
    Sensitive::new(s)
}

/// The secret as authenticator apps take it (base32, no padding).
pub fn encode_secret(secret: &[u8]) -> Sensitive<String> {
    Sensitive::new(totp(secret, DIGITS, STEP_SECONDS as u64).get_secret_base32())
}

pub fn decode_secret(text: &str) -> Option<Vec<u8>> {
    Secret::Encoded(text.trim().to_ascii_uppercase())
        .to_bytes()
        .ok()
        .filter(|b| !b.is_empty())
}

/// A code generator for `secret`: no skew of its own, since [`verify`]
/// tries each allowed step itself to learn which one matched.
fn totp(secret: &[u8], digits: usize, step: u64) -> TOTP {
    TOTP::new_unchecked(
        Algorithm::SHA1,
        digits,
        0,
        step,
        secret.to_vec(),
        Some("Warden".into()),
        String::new(),
    )
}

pub fn step_at(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// The code for the step that holds `unix_seconds`.
pub fn code_at(secret: &[u8], unix_seconds: i64) -> String {
    totp(secret, DIGITS, STEP_SECONDS as u64).generate(unix_seconds.max(0) as u64)
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
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejected::Wrong);
    }
    let generator = totp(secret, DIGITS, STEP_SECONDS as u64);
    let now_step = step_at(now);
    for step in [now_step - 1, now_step, now_step + 1] {
        if step < 0 {
            continue;
        }
        if generator.check(code, (step * STEP_SECONDS) as u64) {
            if last_step.is_some_and(|last| step <= last) {
                return Err(Rejected::Replayed);
            }
            return Ok(step);
        }
    }
    Err(Rejected::Wrong)
}

/// The `otpauth://` URI authenticator apps scan.
pub fn otpauth_uri(secret: &[u8], account: &str, issuer: &str) -> Sensitive<String> {
    let mut t = totp(secret, DIGITS, STEP_SECONDS as u64);
    t.issuer = Some(issuer.to_string());
    // The URI's label is `issuer:account`; a colon in the name would split it.
    t.account_name = account.replace(':', " ");
    Sensitive::new(t.get_url())
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

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    /// RFC 6238 appendix B, SHA-1 rows (8 digits, ASCII secret "12345678901234567890").
    #[test]
    fn rfc6238_test_vectors() {
        let t = totp(RFC_SECRET, 8, 30);
        for (time, expected) in [
            (59u64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(t.generate(time), expected, "T = {time}");
        }
    }

    /// RFC 4226 appendix D: HOTP values for counters 0..9 (a step of one
    /// second makes the time the counter).
    #[test]
    fn rfc4226_test_vectors() {
        let t = totp(RFC_SECRET, 6, 1);
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(t.generate(counter as u64), *code, "counter {counter}");
        }
    }

    #[test]
    fn accepts_one_step_of_drift_and_refuses_replays() {
        let secret = RFC_SECRET;
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
        assert_eq!(s.expose().len(), 20, "160 bits");
        let text = encode_secret(s.expose());
        assert_eq!(
            decode_secret(text.expose()).as_deref(),
            Some(&s.expose()[..])
        );
        assert_eq!(
            decode_secret(&text.expose().to_ascii_lowercase()).as_deref(),
            Some(&s.expose()[..]),
            "typed in lower case"
        );
        assert_eq!(decode_secret("not base32!"), None);
        let uri = otpauth_uri(s.expose(), "ada lovelace", "Warden");
        assert!(
            uri.expose()
                .starts_with("otpauth://totp/Warden:ada%20lovelace?secret="),
            "{}",
            uri.expose()
        );
        assert!(uri.expose().contains("issuer=Warden"));
        assert!(qr_svg(&uri).is_some_and(|svg| svg.expose().contains("<svg")));
    }
}
