//! What remote servers and authorization servers send Warden before any
//! trust exists: WWW-Authenticate challenges, protected resource and
//! authorization server metadata, and ID tokens.
#![no_main]
use libfuzzer_sys::fuzz_target;
use warden_auth::oauth::discovery::{self, AuthServer, ProtectedResource};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = discovery::parse_www_authenticate(s);
        if let Ok(u) = url::Url::parse("https://mcp.example.com/mcp") {
            let _ = discovery::resource_matches(s, &u);
        }
        let keys = jsonwebtoken::jwk::JwkSet { keys: vec![] };
        let e = warden_auth::oidc::Expect { issuer: "i", client_id: "c", nonce: None, max_age: None, now: 0 };
        let _ = warden_auth::oidc::validate(s, &keys, &e);
    }
    if let Ok(m) = serde_json::from_slice::<AuthServer>(data) {
        let _ = discovery::check_pkce(&m);
        if let Ok(u) = url::Url::parse(&m.issuer) {
            let _ = discovery::metadata_urls(&u);
        }
    }
    let _ = serde_json::from_slice::<ProtectedResource>(data);
});
