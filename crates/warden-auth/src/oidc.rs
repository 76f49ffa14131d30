//! Sign-in with an OpenID provider (SSO) as a native app (RFC 8252). The
//! `openidconnect` crate does the protocol: the provider's discovery
//! document and keys, and the ID token's full validation (signature
//! against the provider's published keys with an allowlist of algorithms,
//! issuer, audience, expiry, nonce, authentication age). Warden adds its
//! policy on top: `azp` when there are several audiences, the proof of MFA
//! from `amr` / `acr`, and the claims it maps (name, groups). The
//! authorization request and the code and refresh exchanges are
//! [`crate::oauth::flow`]'s, on the `oauth2` crate that `openidconnect`
//! is built on. Every fetch goes through the SSRF guard.

use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGenderClaim,
    CoreGrantType, CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType,
    CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalClaims, AdditionalProviderMetadata, ClaimsVerificationError, ClientId,
    DiscoveryError, IdToken, IdTokenVerifier, IssuerUrl, JsonWebKeySetUrl, Nonce,
    SignatureVerificationError,
};
use serde::{Deserialize, Serialize};

use crate::oauth::guard::Guard;
use crate::oauth::{OAuthError, Result};

/// What Warden needs of the provider's discovery document, and the keys
/// published at its `jwks_uri` when it was read.
#[derive(Debug, Clone)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub authorization_response_iss_parameter_supported: bool,
    pub revocation_endpoint: Option<String>,
    pub keys: Keys,
}

/// The provider's signing keys.
pub type Keys = CoreJsonWebKeySet;

/// Fields of RFC 8414 and RFC 9207 that OpenID discovery does not define.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Rfc8414 {
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    revocation_endpoint: Option<String>,
}
impl AdditionalProviderMetadata for Rfc8414 {}

type Discovered = openidconnect::ProviderMetadata<
    Rfc8414,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

fn discovery_error(e: DiscoveryError<OAuthError>, what: &str) -> OAuthError {
    match e {
        DiscoveryError::Request(e) => e,
        other => OAuthError::Refused(format!("the {what} is not usable: {other}")),
    }
}

/// Reads `<issuer>/.well-known/openid-configuration` and the keys it names;
/// the document's issuer must be the configured one, and it must offer
/// PKCE with S256.
pub async fn discover(guard: &Guard, issuer: &str) -> Result<ProviderMetadata> {
    guard.check(issuer, "identity provider")?;
    // The document must name the issuer exactly; an admin may have typed it
    // with or without the trailing slash the provider uses (Auth0 and
    // Entra ID use one), so the other spelling is tried too.
    let mut found = read_configuration(guard, issuer).await;
    if matches!(found, Err(DiscoveryError::Validation(_))) {
        let other = match issuer.strip_suffix('/') {
            Some(bare) => bare.to_string(),
            None => format!("{issuer}/"),
        };
        found = read_configuration(guard, &other).await;
    }
    let m = found.map_err(|e| match e {
            DiscoveryError::Request(e) => e,
            DiscoveryError::Validation(why) => OAuthError::Refused(format!(
                "the identity provider at {issuer} does not describe itself as {issuer}: {why}; check the issuer URL"
            )),
            other => OAuthError::Refused(format!(
                "the identity provider at {issuer} has no usable OpenID configuration ({other}); check the issuer URL"
            )),
        })?;
    let extra = m.additional_metadata();
    if !extra
        .code_challenge_methods_supported
        .as_ref()
        .is_some_and(|v| v.iter().any(|x| x == "S256"))
    {
        return Err(OAuthError::Refused(
            "the identity provider does not support PKCE with S256; Warden will not sign in with it".into(),
        ));
    }
    let token_endpoint = m.token_endpoint().ok_or_else(|| {
        OAuthError::Refused("the identity provider publishes no token endpoint".into())
    })?;
    Ok(ProviderMetadata {
        issuer: m.issuer().to_string(),
        authorization_endpoint: m.authorization_endpoint().to_string(),
        token_endpoint: token_endpoint.to_string(),
        jwks_uri: m.jwks_uri().to_string(),
        authorization_response_iss_parameter_supported: extra
            .authorization_response_iss_parameter_supported,
        revocation_endpoint: extra.revocation_endpoint.clone(),
        keys: m.jwks().clone(),
    })
}

async fn read_configuration(
    guard: &Guard,
    issuer: &str,
) -> std::result::Result<Discovered, DiscoveryError<OAuthError>> {
    let issuer_url = IssuerUrl::new(issuer.to_string()).map_err(DiscoveryError::UrlParse)?;
    Discovered::discover_async(
        issuer_url,
        &guard.client("identity provider's configuration"),
    )
    .await
}

/// Fetches the provider's keys again (they rotate).
pub async fn fetch_keys(guard: &Guard, jwks_uri: &str) -> Result<Keys> {
    let url = JsonWebKeySetUrl::new(jwks_uri.to_string())
        .map_err(|e| OAuthError::Refused(format!("the key set address is not a URL: {e}")))?;
    Keys::fetch_async(&url, &guard.client("identity provider's keys"))
        .await
        .map_err(|e| discovery_error(e, "identity provider's key set"))
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
    /// Every claim of the token by name, for the configurable ones (the
    /// person's name, their groups).
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// Claims beyond the standard ones (groups, a custom name claim): kept
/// whole, since which ones matter is configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Other(serde_json::Map<String, serde_json::Value>);
impl AdditionalClaims for Other {}

type Token =
    IdToken<Other, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

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
    /// The issuer the refused token names (not verified: the issuer is
    /// checked before the signature).
    #[error("the ID token says it was issued by {0:?}, not the configured identity provider")]
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

const ALLOWED: &[CoreJwsSigningAlgorithm] = &[
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// A minute of leeway for clocks that differ.
const LEEWAY_SECS: i64 = 60;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

fn refused(e: ClaimsVerificationError) -> IdTokenError {
    use ClaimsVerificationError as C;
    match e {
        C::Expired(_) => IdTokenError::Expired,
        C::InvalidAudience(_) => IdTokenError::WrongAudience,
        C::InvalidIssuer(why) => IdTokenError::WrongIssuer(why),
        C::InvalidNonce(_) => IdTokenError::WrongNonce,
        C::InvalidAuthTime(_) => IdTokenError::TooOld,
        C::SignatureVerification(SignatureVerificationError::NoMatchingKey) => {
            IdTokenError::UnknownKey
        }
        C::SignatureVerification(SignatureVerificationError::CryptoError(_)) => {
            IdTokenError::BadSignature
        }
        C::SignatureVerification(other) => IdTokenError::Invalid(other.to_string()),
        other => IdTokenError::Invalid(other.to_string()),
    }
}

/// Who the token says issued it, unverified: only to say so when it is
/// refused for it.
fn claimed_issuer(id: &Token) -> String {
    let unverified = IdTokenVerifier::<CoreJsonWebKey>::new_insecure_without_verification();
    id.claims(&unverified, |_: Option<&Nonce>| Ok(()))
        .map(|c| c.issuer().to_string())
        .unwrap_or_default()
}

/// Validates an ID token against the provider's keys.
pub fn validate(
    token: &str,
    keys: &Keys,
    expect: &Expect<'_>,
) -> std::result::Result<IdClaims, IdTokenError> {
    let id: Token = token
        .parse()
        .map_err(|e: serde_json::Error| IdTokenError::Invalid(e.to_string()))?;
    let issuer = IssuerUrl::new(expect.issuer.to_string())
        .map_err(|e| IdTokenError::Invalid(e.to_string()))?;
    let (now, max_age) = (expect.now, expect.max_age);
    let verifier = IdTokenVerifier::new_public_client(
        ClientId::new(expect.client_id.to_string()),
        issuer,
        keys.clone(),
    )
    .set_allowed_algs(ALLOWED.iter().cloned())
    // Other audiences are allowed when `azp` names Warden (checked below).
    .set_other_audience_verifier_fn(|_| true)
    .set_time_fn(move || at(now - LEEWAY_SECS))
    .set_auth_time_verifier_fn(move |auth_time: Option<DateTime<Utc>>| match max_age {
        None => Ok(()),
        Some(max) => match auth_time {
            Some(t) if now - t.timestamp() <= max + LEEWAY_SECS => Ok(()),
            _ => Err("the sign-in is older than allowed".into()),
        },
    });
    let want = expect.nonce;
    let nonce_check = move |got: Option<&Nonce>| match want {
        None => Ok(()),
        Some(w) if got.is_some_and(|g| g.secret() == w) => Ok(()),
        Some(_) => Err("the nonce is not this sign-in's".to_string()),
    };
    let c = match id.claims(&verifier, nonce_check) {
        Ok(c) => c,
        Err(e) => {
            return Err(match refused(e) {
                IdTokenError::WrongIssuer(_) => IdTokenError::WrongIssuer(claimed_issuer(&id)),
                other => other,
            });
        }
    };
    let audiences = c.audiences();
    let azp = c.authorized_party().map(|a| a.as_str().to_string());
    if audiences.len() > 1 && azp.as_deref() != Some(expect.client_id) {
        return Err(IdTokenError::WrongAudience);
    }
    let other = match serde_json::to_value(c) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    Ok(IdClaims {
        iss: c.issuer().to_string(),
        sub: c.subject().to_string(),
        exp: c.expiration().timestamp(),
        iat: Some(c.issue_time().timestamp()),
        auth_time: c.auth_time().map(|t| t.timestamp()),
        nonce: c.nonce().map(|n| n.secret().clone()),
        amr: c
            .auth_method_refs()
            .map(|v| v.iter().map(|a| a.as_str().to_string()).collect()),
        acr: c.auth_context_ref().map(|a| a.as_str().to_string()),
        azp,
        other,
    })
}

/// Validates an ID token against the keys read with the provider's
/// discovery document, fetching them once more when the token names a key
/// they lack (the provider rotated its keys). `Err` only when the keys
/// could not be fetched; the token's own verdict is the inner result.
pub async fn validate_with(
    guard: &Guard,
    provider: &ProviderMetadata,
    token: &str,
    expect: &Expect<'_>,
) -> Result<std::result::Result<IdClaims, IdTokenError>> {
    let verdict = validate(token, &provider.keys, expect);
    if !matches!(verdict, Err(IdTokenError::UnknownKey)) {
        return Ok(verdict);
    }
    let keys = fetch_keys(guard, &provider.jwks_uri).await?;
    Ok(validate(token, &keys, expect))
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
        use base64::Engine;
        let p = Provider::new("k1");
        let e = expect(None, None);
        assert!(matches!(
            validate("not.a.token", &p.keys(), &e),
            Err(IdTokenError::Invalid(_))
        ));
        let unsigned = |alg: &str| {
            let header = serde_json::json!({"alg": alg, "kid": "k1"});
            format!(
                "{}.{}.{}",
                B64.encode(header.to_string()),
                B64.encode(good().to_string()),
                B64.encode(b"sig")
            )
        };
        // alg "none" is never accepted.
        let none = unsigned("none");
        assert!(validate(none.trim_end_matches("c2ln"), &p.keys(), &e).is_err());
        assert!(validate(&none, &p.keys(), &e).is_err());
        // Nor a shared-secret algorithm, which would let anyone who knows
        // the client ID sign.
        assert!(
            matches!(validate(&unsigned("HS256"), &p.keys(), &e), Err(IdTokenError::Invalid(m)) if m.contains("HS256"))
        );
    }

    /// A provider of the test's own: an Ed25519 key made for this run, its
    /// key set as a provider publishes it, and ID tokens it signs.
    struct Provider {
        key: ed25519_dalek::SigningKey,
        kid: &'static str,
    }

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

    impl Provider {
        fn new(kid: &'static str) -> Provider {
            let mut seed = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut seed);
            Provider {
                key: ed25519_dalek::SigningKey::from_bytes(&seed),
                kid,
            }
        }

        fn keys(&self) -> Keys {
            use base64::Engine;
            let x = B64.encode(self.key.verifying_key().as_bytes());
            serde_json::from_value(serde_json::json!({"keys": [
                {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.kid, "alg": "EdDSA", "use": "sig"}
            ]}))
            .expect("key set")
        }

        fn sign(&self, claims: serde_json::Value) -> String {
            use base64::Engine;
            use ed25519_dalek::Signer;
            let header = serde_json::json!({"alg": "EdDSA", "kid": self.kid, "typ": "JWT"});
            let input = format!(
                "{}.{}",
                B64.encode(header.to_string()),
                B64.encode(claims.to_string())
            );
            let sig = self.key.sign(input.as_bytes());
            format!("{input}.{}", B64.encode(sig.to_bytes()))
        }
    }

    const NOW: i64 = 1_800_000_000;

    fn good() -> serde_json::Value {
        serde_json::json!({
            "iss": "https://idp.example.com", "sub": "248289761001", "aud": "warden",
            "exp": NOW + 300, "iat": NOW, "auth_time": NOW - 10, "nonce": "n-1",
            "amr": ["pwd", "otp"], "acr": "urn:mfa", "preferred_username": "ada",
            "groups": ["warden-admins", "engineering"]
        })
    }

    fn expect(nonce: Option<&str>, max_age: Option<i64>) -> Expect<'_> {
        Expect {
            issuer: "https://idp.example.com",
            client_id: "warden",
            nonce,
            max_age,
            now: NOW,
        }
    }

    #[test]
    fn a_signed_token_from_the_provider_is_read_whole() {
        let p = Provider::new("k1");
        let c =
            validate(&p.sign(good()), &p.keys(), &expect(Some("n-1"), Some(60))).expect("valid");
        assert_eq!(c.iss, "https://idp.example.com");
        assert_eq!(c.sub, "248289761001");
        assert_eq!(c.exp, NOW + 300);
        assert_eq!(c.auth_time, Some(NOW - 10));
        assert_eq!(
            c.amr.as_deref(),
            Some(&["pwd".to_string(), "otp".to_string()][..])
        );
        assert_eq!(c.acr.as_deref(), Some("urn:mfa"));
        assert_eq!(
            c.other["preferred_username"], "ada",
            "standard claims by name"
        );
        assert_eq!(
            c.other["groups"][0], "warden-admins",
            "custom claims by name"
        );
        assert!(proves_mfa(&c, &["otp".into()], &[]));
    }

    #[test]
    fn each_failed_check_says_which() {
        let p = Provider::new("k1");
        let keys = p.keys();
        let with = |k: &str, v: serde_json::Value| {
            let mut c = good();
            c[k] = v;
            p.sign(c)
        };
        let e = expect(Some("n-1"), Some(60));
        assert_eq!(
            validate(&with("aud", "someone-else".into()), &keys, &e).err(),
            Some(IdTokenError::WrongAudience)
        );
        assert_eq!(
            validate(
                &with("aud", serde_json::json!(["warden", "other"])),
                &keys,
                &e
            )
            .err(),
            Some(IdTokenError::WrongAudience),
            "several audiences need azp naming Warden"
        );
        let mut both = good();
        both["aud"] = serde_json::json!(["warden", "other"]);
        both["azp"] = "warden".into();
        assert!(validate(&p.sign(both), &keys, &e).is_ok());
        assert!(matches!(
            validate(&with("iss", "https://evil.example.com".into()), &keys, &e),
            Err(IdTokenError::WrongIssuer(i)) if i == "https://evil.example.com"
        ));
        assert_eq!(
            validate(&with("exp", (NOW - 120).into()), &keys, &e).err(),
            Some(IdTokenError::Expired)
        );
        assert!(
            validate(&with("exp", (NOW - 30).into()), &keys, &e).is_ok(),
            "a minute of leeway for clocks"
        );
        assert_eq!(
            validate(&with("nonce", "n-2".into()), &keys, &e).err(),
            Some(IdTokenError::WrongNonce)
        );
        assert!(
            validate(&with("nonce", "n-2".into()), &keys, &expect(None, None)).is_ok(),
            "a refresh need not repeat the nonce"
        );
        assert_eq!(
            validate(&with("auth_time", (NOW - 600).into()), &keys, &e).err(),
            Some(IdTokenError::TooOld)
        );
        let mut no_auth_time = good();
        no_auth_time
            .as_object_mut()
            .expect("object")
            .remove("auth_time");
        assert_eq!(
            validate(&p.sign(no_auth_time), &keys, &e).err(),
            Some(IdTokenError::TooOld),
            "max_age needs auth_time"
        );
    }

    #[test]
    fn signatures_must_come_from_the_published_key() {
        let p = Provider::new("k1");
        let token = p.sign(good());
        let e = expect(Some("n-1"), None);
        let rotated = Provider::new("k2");
        assert_eq!(
            validate(&token, &rotated.keys(), &e).err(),
            Some(IdTokenError::UnknownKey),
            "a key the provider does not publish"
        );
        let impostor = Provider::new("k1");
        assert_eq!(
            validate(&impostor.sign(good()), &p.keys(), &e).err(),
            Some(IdTokenError::BadSignature),
            "the right key id, another key"
        );
        let mut tampered: Vec<&str> = token.split('.').collect();
        use base64::Engine;
        let mut claims = good();
        claims["sub"] = "someone-else".into();
        let forged = B64.encode(claims.to_string());
        tampered[1] = &forged;
        assert_eq!(
            validate(&tampered.join("."), &p.keys(), &e).err(),
            Some(IdTokenError::BadSignature)
        );
    }
}
