//! The MCP authorization client: how Warden signs in to a remote MCP server
//! on a person's behalf (OAuth 2.1 with PKCE, as the MCP specification's
//! authorization chapter describes).
//!
//! - [`discovery`]: the 401 challenge, protected resource metadata (RFC 9728)
//!   and authorization server metadata (RFC 8414, OpenID discovery).
//! - [`flow`]: client registration, the authorization request with PKCE S256,
//!   `state` and `resource` (RFC 8707), the loopback redirect (RFC 8252), the
//!   `iss` check (RFC 9207), the code exchange, refresh and revocation.
//! - [`guard`]: which URLs Warden will fetch at all (https, no private or
//!   metadata addresses unless the server itself lives there), and the HTTP
//!   client that fetches them, for Warden and for the `oauth2` and
//!   `openidconnect` crates alike.
//!
//! The exchanges themselves are the `oauth2` crate's; `../README.md` says
//! what is written here and why.

pub mod discovery;
pub mod flow;
pub mod guard;

use serde::{Deserialize, Serialize};

use crate::Sensitive;

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The server or its authorization server is not set up the way the
    /// specification requires; the text says what is wrong.
    #[error("{0}")]
    Refused(String),
    /// A network request failed.
    #[error("{0}")]
    Network(String),
    /// The person or the authorization server stopped the sign-in.
    #[error("{0}")]
    Denied(String),
    /// No answer from the browser in time.
    #[error("the sign-in was not finished within {0} seconds; start it again")]
    TimedOut(u64),
}

pub type Result<T, E = OAuthError> = std::result::Result<T, E>;

/// Tokens for one server, as kept in the keychain (never in the database).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenSet {
    pub access_token: Sensitive<String>,
    #[serde(default)]
    pub refresh_token: Option<Sensitive<String>>,
    /// Seconds since the epoch; `None` when the server did not say.
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub scope: Option<String>,
    /// The resource (the server's URL) the token was issued for.
    pub resource: String,
    pub issuer: String,
    /// An OpenID provider's ID token from the last exchange; not kept.
    #[serde(skip)]
    pub id_token: Option<String>,
}

impl TokenSet {
    /// Whether the access token should be refreshed before use: it expires
    /// within `margin` seconds.
    pub fn expiring(&self, now: i64, margin: i64) -> bool {
        self.expires_at.is_some_and(|e| e - margin <= now)
    }
}

/// How Warden is known to an authorization server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientRegistration {
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<Sensitive<String>>,
    /// `none`, `client_secret_basic` or `client_secret_post`.
    pub auth_method: String,
    /// How it was obtained: `pre-registered`, `metadata-document`,
    /// `dynamic`, or `entered`.
    pub kind: String,
    /// The redirect URI registered with it (dynamic registration).
    #[serde(default)]
    pub redirect_uri: Option<String>,
}
