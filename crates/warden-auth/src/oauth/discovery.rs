//! Finding out how to sign in to a server: its 401 challenge, its protected
//! resource metadata (RFC 9728) and its authorization server's metadata
//! (RFC 8414 / OpenID discovery), in the order the MCP specification gives.

use serde::{Deserialize, Serialize};
use url::Url;

use super::guard::Guard;
use super::{OAuthError, Result};

/// The parameters of a `WWW-Authenticate: Bearer ...` challenge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub resource_metadata: Option<String>,
    pub scope: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// Parses the Bearer challenge of a `WWW-Authenticate` value (RFC 6750
/// §3, RFC 9110 auth-params: token or quoted-string values). Other schemes
/// in the same header are skipped. `None` when there is no Bearer challenge.
pub fn parse_www_authenticate(header: &str) -> Option<Challenge> {
    let mut rest = header;
    loop {
        let trimmed = rest.trim_start_matches([' ', ',', '\t']);
        let scheme_end = trimmed.find([' ', ',']).unwrap_or(trimmed.len());
        let scheme = &trimmed[..scheme_end];
        if scheme.is_empty() {
            return None;
        }
        let (params, next) = parse_params(&trimmed[scheme_end..]);
        if scheme.eq_ignore_ascii_case("bearer") {
            let mut c = Challenge::default();
            for (k, v) in params {
                match k.to_ascii_lowercase().as_str() {
                    "resource_metadata" => c.resource_metadata = Some(v),
                    "scope" => c.scope = Some(v),
                    "error" => c.error = Some(v),
                    "error_description" => c.error_description = Some(v),
                    _ => {}
                }
            }
            return Some(c);
        }
        rest = next?;
    }
}

/// Reads `k=v` pairs up to the next scheme; returns them and what follows.
fn parse_params(s: &str) -> (Vec<(String, String)>, Option<&str>) {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b',') {
            i += 1;
        }
        if i >= b.len() {
            return (out, None);
        }
        let key_start = i;
        while i < b.len() && !matches!(b[i], b'=' | b' ' | b'\t' | b',') {
            i += 1;
        }
        let key = &s[key_start..i];
        let mut j = i;
        while j < b.len() && matches!(b[j], b' ' | b'\t') {
            j += 1;
        }
        if j >= b.len() || b[j] != b'=' {
            // Not a parameter: the start of another challenge.
            return (out, Some(&s[key_start..]));
        }
        i = j + 1;
        while i < b.len() && matches!(b[i], b' ' | b'\t') {
            i += 1;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut chars = s[i..].char_indices();
            let mut end = s.len();
            let mut escaped = false;
            for (off, c) in chars.by_ref() {
                if escaped {
                    value.push(c);
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    end = i + off + 1;
                    break;
                } else {
                    value.push(c);
                }
            }
            i = end;
        } else {
            let start = i;
            while i < b.len() && !matches!(b[i], b',' | b' ' | b'\t') {
                i += 1;
            }
            value.push_str(&s[start..i]);
        }
        out.push((key.to_string(), value));
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProtectedResource {
    pub resource: String,
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthServer {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub registration_endpoint: Option<String>,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
}

impl AuthServer {
    /// The default endpoints of a 2025-03-26 server without metadata: the
    /// authorization server is the server's origin.
    pub fn at_origin(o: &str) -> AuthServer {
        AuthServer {
            issuer: o.to_string(),
            authorization_endpoint: format!("{o}/authorize"),
            token_endpoint: format!("{o}/token"),
            registration_endpoint: Some(format!("{o}/register")),
            revocation_endpoint: None,
            scopes_supported: None,
            code_challenge_methods_supported: Some(vec!["S256".into()]),
            token_endpoint_auth_methods_supported: None,
            authorization_response_iss_parameter_supported: false,
            client_id_metadata_document_supported: false,
        }
    }
}

/// Everything discovery found for one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Discovered {
    /// The resource indicator sent on every authorization, token and
    /// refresh request (RFC 8707).
    pub resource: String,
    pub auth_server: AuthServer,
    /// The scopes to ask for: the challenge's, else the server's
    /// `scopes_supported`, else none.
    pub scopes: Option<String>,
    pub resource_scopes: Option<Vec<String>>,
}

fn origin(u: &Url) -> String {
    u.origin().ascii_serialization()
}

/// Whether metadata's `resource` names this server: same origin, and its
/// path the server's path or a parent of it.
pub fn resource_matches(resource: &str, server: &Url) -> bool {
    let Ok(r) = Url::parse(resource) else {
        return false;
    };
    if r.origin() != server.origin() {
        return false;
    }
    let rp = r.path().trim_end_matches('/');
    let sp = server.path().trim_end_matches('/');
    sp == rp || sp.starts_with(&format!("{rp}/"))
}

/// The protected resource metadata: from the challenge's
/// `resource_metadata`, else the path-aware then the root well-known URI.
/// `None` when the server publishes none (a 2025-03-26 server).
pub async fn protected_resource(
    guard: &Guard,
    server: &Url,
    challenge: Option<&Challenge>,
) -> Result<Option<ProtectedResource>> {
    let mut candidates = Vec::new();
    if let Some(u) = challenge.and_then(|c| c.resource_metadata.clone()) {
        candidates.push(u);
    } else {
        let path = server.path().trim_end_matches('/');
        if !path.is_empty() {
            candidates.push(format!(
                "{}/.well-known/oauth-protected-resource{path}",
                origin(server)
            ));
        }
        candidates.push(format!(
            "{}/.well-known/oauth-protected-resource",
            origin(server)
        ));
    }
    for c in candidates {
        if let Some(prm) = guard
            .get_json::<ProtectedResource>(&c, "protected resource metadata")
            .await?
        {
            if !resource_matches(&prm.resource, server) {
                return Err(OAuthError::Refused(format!(
                    "the server's metadata names the resource {:?}, which is not {server}; Warden stops here, since a token for it could be misused",
                    prm.resource
                )));
            }
            return Ok(Some(prm));
        }
    }
    Ok(None)
}

/// The well-known URIs for an issuer, in the specification's order.
pub fn metadata_urls(issuer: &Url) -> Vec<String> {
    let o = origin(issuer);
    let path = issuer.path().trim_end_matches('/');
    if path.is_empty() {
        vec![
            format!("{o}/.well-known/oauth-authorization-server"),
            format!("{o}/.well-known/openid-configuration"),
        ]
    } else {
        vec![
            format!("{o}/.well-known/oauth-authorization-server{path}"),
            format!("{o}/.well-known/openid-configuration{path}"),
            format!("{o}{path}/.well-known/openid-configuration"),
        ]
    }
}

fn same_issuer(a: &str, b: &str) -> bool {
    a == b || a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// The authorization server's metadata. Its `issuer` must be the one asked
/// for, and it must support PKCE with S256.
pub async fn auth_server(guard: &Guard, issuer: &str) -> Result<Option<AuthServer>> {
    let issuer_url = guard.check(issuer, "authorization server")?;
    for u in metadata_urls(&issuer_url) {
        if let Some(m) = guard
            .get_json::<AuthServer>(&u, "authorization server metadata")
            .await?
        {
            if !same_issuer(&m.issuer, issuer) {
                return Err(OAuthError::Refused(format!(
                    "the authorization server's metadata says its issuer is {:?}, not {issuer:?}; Warden stops here",
                    m.issuer
                )));
            }
            check_pkce(&m)?;
            return Ok(Some(m));
        }
    }
    Ok(None)
}

pub fn check_pkce(m: &AuthServer) -> Result<()> {
    let s256 = m
        .code_challenge_methods_supported
        .as_ref()
        .is_some_and(|v| v.iter().any(|x| x == "S256"));
    if !s256 {
        return Err(OAuthError::Refused(format!(
            "the authorization server {} does not say it supports PKCE with S256, which MCP requires; Warden will not sign in to it",
            m.issuer
        )));
    }
    Ok(())
}

/// Runs discovery for a server whose request was answered 401 with
/// `challenge` (or `None` to start cold).
pub async fn discover(
    guard: &Guard,
    server: &Url,
    challenge: Option<&Challenge>,
) -> Result<Discovered> {
    let prm = protected_resource(guard, server, challenge).await?;
    let (resource, auth_server, resource_scopes) = match prm {
        Some(prm) => {
            let issuer = prm.authorization_servers.first().cloned().ok_or_else(|| {
                OAuthError::Refused("the server's metadata names no authorization server".into())
            })?;
            let m = auth_server(guard, &issuer).await?.ok_or_else(|| {
                OAuthError::Refused(format!(
                    "the authorization server {issuer} publishes no metadata"
                ))
            })?;
            (prm.resource.clone(), m, prm.scopes_supported.clone())
        }
        None => {
            // A server from before protected resource metadata
            // (2025-03-26): the authorization server is the server's
            // origin, with default endpoints when it has no metadata.
            let o = origin(server);
            let m = match auth_server(guard, &o).await? {
                Some(m) => m,
                None => AuthServer::at_origin(&o),
            };
            (server.to_string(), m, None)
        }
    };
    let scopes = challenge
        .and_then(|c| c.scope.clone())
        .or_else(|| resource_scopes.as_ref().map(|s| s.join(" ")))
        .filter(|s| !s.trim().is_empty());
    Ok(Discovered {
        resource,
        auth_server,
        scopes,
        resource_scopes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_parse_with_quotes_and_other_schemes() {
        let c = parse_www_authenticate(
            r#"Basic realm="x", Bearer resource_metadata="https://s.example/.well-known/oauth-protected-resource/mcp", scope="files:read files:write", error="insufficient_scope""#,
        )
        .expect("bearer");
        assert_eq!(
            c.resource_metadata.as_deref(),
            Some("https://s.example/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(c.scope.as_deref(), Some("files:read files:write"));
        assert_eq!(c.error.as_deref(), Some("insufficient_scope"));
        let plain = parse_www_authenticate(
            "Bearer error=invalid_token, error_description=\"a \\\"quoted\\\" word\"",
        )
        .expect("bearer");
        assert_eq!(plain.error.as_deref(), Some("invalid_token"));
        assert_eq!(
            plain.error_description.as_deref(),
            Some("a \"quoted\" word")
        );
        assert!(parse_www_authenticate("Bearer").is_some());
        assert!(parse_www_authenticate("Basic realm=\"x\"").is_none());
        assert!(parse_www_authenticate("").is_none());
        assert!(parse_www_authenticate("Bearer scope=\"unterminated").is_some());
    }

    #[test]
    fn metadata_urls_follow_the_specification_order() {
        let with_path = Url::parse("https://auth.example.com/tenant1").expect("url");
        assert_eq!(
            metadata_urls(&with_path),
            vec![
                "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
                "https://auth.example.com/.well-known/openid-configuration/tenant1",
                "https://auth.example.com/tenant1/.well-known/openid-configuration",
            ]
        );
        let root = Url::parse("https://auth.example.com").expect("url");
        assert_eq!(metadata_urls(&root).len(), 2);
    }

    #[test]
    fn a_resource_must_be_this_server_or_a_parent_path_on_its_origin() {
        let s = Url::parse("https://mcp.example.com/team/mcp").expect("url");
        assert!(resource_matches("https://mcp.example.com/team/mcp", &s));
        assert!(resource_matches("https://mcp.example.com/", &s));
        assert!(resource_matches("https://mcp.example.com/team", &s));
        assert!(!resource_matches("https://mcp.example.com/te", &s));
        assert!(!resource_matches("https://evil.example.com/team/mcp", &s));
        assert!(!resource_matches("http://mcp.example.com/team/mcp", &s));
        assert!(!resource_matches("not a url", &s));
    }
}
