//! Sign-in with an OpenID provider (SSO) as a native app (RFC 8252): the
//! provider's discovery document, the authorization request with PKCE S256,
//! `state` and `nonce`, and full validation of the ID token: signature
//! against the provider's keys (fetched again once when a key is unknown,
//! for rotation), issuer, audience, expiry, nonce and authentication age,
//! then proof of MFA from `amr` / `acr`.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::oauth::guard::Guard;
use crate::oauth::{OAuthError, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
}

/// Fetches `<issuer>/.well-known/openid-configuration`; the document's
/// issuer must be the configured one.
pub async fn discover(
    http: &reqwest::Client,
    guard: &Guard,
    issuer: &str,
) -> Result<ProviderMetadata> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let u = guard.check(&url, "identity provider's configuration")?;
    let r = http.get(u).send().await.map_err(|e| {
        OAuthError::Network(format!(
            "could not reach the identity provider at {issuer}: {e}"
        ))
    })?;
    if !r.status().is_success() {
        return Err(OAuthError::Refused(format!(
            "the identity provider at {issuer} has no OpenID configuration (HTTP {}); check the issuer URL",
            r.status()
        )));
    }
    let m: ProviderMetadata = r.json().await.map_err(|e| {
        OAuthError::Refused(format!(
            "the identity provider's configuration is not valid: {e}"
        ))
    })?;
    if m.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(OAuthError::Refused(format!(
            "the identity provider says its issuer is {:?}, not {issuer:?}; Warden stops here",
            m.issuer
        )));
    }
    if !m
        .code_challenge_methods_supported
        .as_ref()
        .is_some_and(|v| v.iter().any(|x| x == "S256"))
    {
        return Err(OAuthError::Refused(
            "the identity provider does not support PKCE with S256; Warden will not sign in with it".into(),
        ));
    }
    Ok(m)
}

pub async fn fetch_keys(http: &reqwest::Client, guard: &Guard, jwks_uri: &str) -> Result<JwkSet> {
    let u = guard.check(jwks_uri, "identity provider's keys")?;
    http.get(u)
        .send()
        .await
        .map_err(|e| {
            OAuthError::Network(format!("could not fetch the identity provider's keys: {e}"))
        })?
        .json()
        .await
        .map_err(|e| {
            OAuthError::Refused(format!("the identity provider's keys are not valid: {e}"))
        })
}

/// The claims Warden reads from an ID token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub exp: i64,
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub auth_time: Option<i64>,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub amr: Option<Vec<String>>,
    #[serde(default)]
    pub acr: Option<String>,
    #[serde(default)]
    pub azp: Option<String>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// What an ID token must match.
pub struct Expect<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// `None` on a refresh (the provider need not repeat the nonce).
    pub nonce: Option<&'a str>,
    /// Seconds: the sign-in must be at most this old (needs `auth_time`).
    pub max_age: Option<i64>,
    pub now: i64,
}

/// Why an ID token was refused, in words for the person and the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the ID token is signed with a key the identity provider does not publish")]
    UnknownKey,
    #[error("the ID token's signature is not valid")]
    BadSignature,
    #[error("the ID token was issued by {0:?}, not the configured identity provider")]
    WrongIssuer(String),
    #[error("the ID token was issued for another application")]
    WrongAudience,
    #[error("the ID token has expired")]
    Expired,
    #[error("the ID token does not answer this sign-in (nonce)")]
    WrongNonce,
    #[error("the sign-in at the identity provider is too old; sign in again")]
    TooOld,
    #[error("the ID token is not valid: {0}")]
    Invalid(String),
}

const ALLOWED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Validates an ID token against the provider's keys.
pub fn validate(
    token: &str,
    keys: &JwkSet,
    expect: &Expect<'_>,
) -> std::result::Result<IdClaims, IdTokenError> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| IdTokenError::Invalid(e.to_string()))?;
    if !ALLOWED.contains(&header.alg) {
        return Err(IdTokenError::Invalid(format!(
            "{:?} signatures are not accepted",
            header.alg
        )));
    }
    let jwk = match &header.kid {
        Some(kid) => keys.find(kid),
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    }
    .ok_or(IdTokenError::UnknownKey)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| IdTokenError::Invalid(e.to_string()))?;
    let mut v = Validation::new(header.alg);
    // Checked below, to say which one failed.
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<IdClaims>(token, &key, &v).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::InvalidSignature => IdTokenError::BadSignature,
        _ => IdTokenError::Invalid(e.to_string()),
    })?;
    let c = data.claims;
    if c.iss != expect.issuer {
        return Err(IdTokenError::WrongIssuer(c.iss));
    }
    let aud: Vec<String> = match c.other.get("aud") {
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        _ => vec![],
    };
    if !aud.iter().any(|a| a == expect.client_id) {
        return Err(IdTokenError::WrongAudience);
    }
    if aud.len() > 1 && c.azp.as_deref() != Some(expect.client_id) {
        return Err(IdTokenError::WrongAudience);
    }
    // A minute of leeway for clocks that differ.
    if c.exp + 60 < expect.now {
        return Err(IdTokenError::Expired);
    }
    if let Some(n) = expect.nonce
        && c.nonce.as_deref() != Some(n)
    {
        return Err(IdTokenError::WrongNonce);
    }
    if let Some(max) = expect.max_age {
        match c.auth_time {
            Some(t) if expect.now - t <= max + 60 => {}
            _ => return Err(IdTokenError::TooOld),
        }
    }
    Ok(c)
}

/// Whether the token proves a second factor: one of the configured `amr`
/// values, or the configured `acr`.
pub fn proves_mfa(c: &IdClaims, amr_values: &[String], acr_values: &[String]) -> bool {
    let amr = c
        .amr
        .as_ref()
        .is_some_and(|a| a.iter().any(|x| amr_values.iter().any(|m| m == x)));
    let acr = c
        .acr
        .as_ref()
        .is_some_and(|a| acr_values.iter().any(|m| m == a));
    amr || acr
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(amr: Option<&[&str]>, acr: Option<&str>) -> IdClaims {
        IdClaims {
            iss: "i".into(),
            sub: "s".into(),
            exp: 0,
            iat: None,
            auth_time: None,
            nonce: None,
            amr: amr.map(|a| a.iter().map(|x| x.to_string()).collect()),
            acr: acr.map(String::from),
            azp: None,
            other: Default::default(),
        }
    }

    #[test]
    fn mfa_is_proven_by_a_configured_amr_or_acr_only() {
        let amr = vec!["otp".to_string(), "hwk".to_string()];
        let acr = vec!["urn:mfa".to_string()];
        assert!(proves_mfa(&claims(Some(&["pwd", "otp"]), None), &amr, &acr));
        assert!(!proves_mfa(&claims(Some(&["pwd"]), None), &amr, &acr));
        assert!(!proves_mfa(&claims(None, None), &amr, &acr));
        assert!(proves_mfa(
            &claims(Some(&["pwd"]), Some("urn:mfa")),
            &amr,
            &acr
        ));
        assert!(!proves_mfa(&claims(None, Some("urn:pwd")), &amr, &acr));
        assert!(
            !proves_mfa(&claims(Some(&["otp"]), None), &[], &[]),
            "nothing configured, nothing proven"
        );
    }

    #[test]
    fn tokens_that_are_not_jwts_or_use_no_key_are_refused() {
        let keys = JwkSet { keys: vec![] };
        let e = Expect {
            issuer: "i",
            client_id: "c",
            nonce: None,
            max_age: None,
            now: 0,
        };
        assert!(matches!(
            validate("not.a.token", &keys, &e),
            Err(IdTokenError::Invalid(_))
        ));
        // alg "none" is never accepted.
        let none = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
        assert!(validate(none, &keys, &e).is_err());
        let hs = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ4In0.c2ln";
        assert!(
            matches!(validate(hs, &keys, &e), Err(IdTokenError::Invalid(m)) if m.contains("HS256"))
        );
    }
}
