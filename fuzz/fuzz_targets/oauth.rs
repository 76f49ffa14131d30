//! What remote servers, authorization servers and browsers send Warden
//! before any trust exists, where Warden parses it itself: WWW-Authenticate
//! challenges, protected resource and authorization server metadata and
//! their checks, the redirect's query, and the SSRF guard's reading of
//! URLs. ID tokens and token answers are the openidconnect and oauth2
//! crates' to parse.
#![no_main]
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use warden_auth::oauth::discovery::{self, AuthServer, ProtectedResource};
use warden_auth::oauth::flow::{self, Expected};
use warden_auth::oauth::guard::Guard;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = discovery::parse_www_authenticate(s);
        if let Ok(u) = url::Url::parse("https://mcp.example.com/mcp") {
            let _ = discovery::resource_matches(s, &u);
        }
        let expected = Expected::new("state", "https://as.example.com", true);
        let _ = flow::check_callback(&expected, s);
        // Every name resolves to one public address: no lookup, no packet.
        let public = std::net::IpAddr::from([93, 184, 216, 34]);
        let guard = Guard::new(Arc::new(move |_: &str, _: u16| Ok(vec![public])), false, false);
        let _ = guard.check(s, "fuzzed URL");
    }
    if let Ok(m) = serde_json::from_slice::<AuthServer>(data) {
        let _ = discovery::check_pkce(&m);
        if let Ok(u) = url::Url::parse(&m.issuer) {
            let _ = discovery::metadata_urls(&u);
        }
    }
    let _ = serde_json::from_slice::<ProtectedResource>(data);
});
