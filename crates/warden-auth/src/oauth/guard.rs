//! Which URLs the OAuth client may fetch, and the HTTP client that fetches
//! them. Remote servers and their authorization servers must use https
//! (loopback exempt). A discovery, metadata or token URL whose host
//! resolves to a private, link-local, shared or cloud-metadata address is
//! refused unless the admin configured the server itself on such a
//! network; one on this computer (loopback) is refused unless the server
//! itself is on this computer, so a public server's 401 or metadata cannot
//! point Warden's sign-in at a local service. Resolution is injectable, so tests can point a name at
//! 169.254.169.254 without a packet leaving loopback.
//!
//! [`Guard::send`] is the only way the OAuth and OpenID code reaches the
//! network (the `oauth2` and `openidconnect` crates call it as their async
//! HTTP client): it checks the URL, then connects to exactly the addresses
//! the check approved, so a name that resolves differently the second time
//! (DNS rebinding) cannot move the request elsewhere. Redirects are not
//! followed and answers are capped in size. Behind a proxy configured in
//! the environment (`HTTPS_PROXY`), the proxy makes the connection and
//! resolves the name itself; the check of the name still applies.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::{OAuthError, Result};

/// Resolves a host name to addresses.
pub type Resolver = Arc<dyn Fn(&str, u16) -> std::io::Result<Vec<IpAddr>> + Send + Sync>;

pub fn system_resolver() -> Resolver {
    Arc::new(|host: &str, port: u16| {
        use std::net::ToSocketAddrs;
        Ok((host, port).to_socket_addrs()?.map(|a| a.ip()).collect())
    })
}

#[derive(Clone)]
pub struct Guard {
    resolver: Resolver,
    /// The admin configured the server on a private network: its
    /// authorization URLs may be private too (never link-local/metadata).
    allow_private: bool,
    /// The server is on this computer: its authorization URLs may be too.
    allow_loopback: bool,
}

fn is_loopback(ip: &IpAddr) -> bool {
    ip.is_loopback()
}

/// Link-local (incl. 169.254.169.254 and fd00:ec2::254 style metadata),
/// unspecified, broadcast, multicast: never fetched.
fn is_forbidden(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || *v4 == Ipv4Addr::new(100, 100, 100, 200)
        }
        IpAddr::V6(v6) => {
            v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || *v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|m| is_forbidden(&IpAddr::V4(m)))
        }
    }
}

/// Private networks: RFC 1918, carrier-grade NAT, unique local IPv6.
fn is_private(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private() || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xfe00) == 0xfc00
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|m| is_private(&IpAddr::V4(m)))
        }
    }
}

impl Guard {
    pub fn new(resolver: Resolver, allow_private: bool, allow_loopback: bool) -> Guard {
        Guard {
            resolver,
            allow_private,
            allow_loopback,
        }
    }

    /// A guard for a server at `server_url`: private addresses are allowed
    /// when the server itself resolves to one (the admin put it there), and
    /// loopback ones only when the server itself is on this computer.
    pub fn for_server(resolver: Resolver, server_url: &Url) -> Guard {
        let ips = server_url
            .host_str()
            .and_then(|h| {
                let h = h.trim_matches(['[', ']']);
                match h.parse::<IpAddr>() {
                    Ok(ip) => Some(vec![ip]),
                    Err(_) => (resolver)(h, server_url.port_or_known_default()?).ok(),
                }
            })
            .unwrap_or_default();
        let private = ips.iter().any(is_private);
        let loopback = !ips.is_empty() && ips.iter().all(is_loopback);
        Guard::new(resolver, private, loopback)
    }

    /// Checks a URL before it is fetched. `what` names it in the error.
    pub fn check(&self, raw: &str, what: &str) -> Result<Url> {
        self.resolve(raw, what).map(|(url, _)| url)
    }

    /// Checks a URL and returns the addresses that passed, the only ones a
    /// request to it may connect to.
    fn resolve(&self, raw: &str, what: &str) -> Result<(Url, Vec<IpAddr>)> {
        let url = Url::parse(raw)
            .map_err(|e| OAuthError::Refused(format!("the {what} {raw:?} is not a URL: {e}")))?;
        let host = url
            .host_str()
            .ok_or_else(|| OAuthError::Refused(format!("the {what} has no host")))?
            .trim_matches(['[', ']'])
            .to_string();
        let port = url.port_or_known_default().unwrap_or(443);
        let ips = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => (self.resolver)(&host, port).map_err(|e| {
                OAuthError::Network(format!("could not look up {host} (the {what}): {e}"))
            })?,
        };
        if ips.is_empty() {
            return Err(OAuthError::Network(format!(
                "{host} (the {what}) has no address"
            )));
        }
        let loopback = ips.iter().all(is_loopback);
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => {
                return Err(OAuthError::Refused(format!(
                    "the {what} {url} does not use https; Warden only signs in over https (plain http is allowed on this machine only)"
                )));
            }
        }
        if let Some(bad) = ips.iter().find(|ip| is_forbidden(ip)) {
            return Err(OAuthError::Refused(format!(
                "the {what} {url} points at {bad}, a link-local or cloud metadata address; Warden does not fetch those"
            )));
        }
        if !self.allow_loopback && ips.iter().any(is_loopback) {
            return Err(OAuthError::Refused(format!(
                "the {what} {url} points at this computer while the server is elsewhere; Warden refuses that, so a server cannot aim its sign-in at a service running here"
            )));
        }
        if !self.allow_private && !loopback && ips.iter().any(is_private) {
            return Err(OAuthError::Refused(format!(
                "the {what} {url} points at a private network address while the server is public; Warden refuses that to protect your network"
            )));
        }
        Ok((url, ips))
    }

    /// Sends `request` if its URL passes the check, to the addresses the
    /// check approved and no others. `what` names the URL in errors.
    pub async fn send(
        &self,
        request: http::Request<Vec<u8>>,
        what: &str,
    ) -> Result<http::Response<Vec<u8>>> {
        let (url, ips) = self.resolve(&request.uri().to_string(), what)?;
        let mut builder = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(domain) = url.domain() {
            let port = url.port_or_known_default().unwrap_or(443);
            let pinned: Vec<SocketAddr> = ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect();
            builder = builder.resolve_to_addrs(domain, &pinned);
        }
        let client = builder.build().map_err(|e| {
            OAuthError::Network(format!("could not start a request to the {what}: {e}"))
        })?;
        let (parts, body) = request.into_parts();
        let mut answer = client
            .request(parts.method, url.clone())
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                OAuthError::Network(format!("could not reach the {what} at {url}: {e}"))
            })?;
        let mut response = http::Response::builder().status(answer.status());
        if let Some(headers) = response.headers_mut() {
            *headers = std::mem::take(answer.headers_mut());
        }
        let mut body = Vec::new();
        while let Some(chunk) = answer
            .chunk()
            .await
            .map_err(|e| OAuthError::Network(format!("could not read the {what}: {e}")))?
        {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(OAuthError::Refused(format!(
                    "the {what} at {url} sent more than {} KiB; Warden stopped reading",
                    MAX_ANSWER / 1024
                )));
            }
            body.extend_from_slice(&chunk);
        }
        response
            .body(body)
            .map_err(|e| OAuthError::Network(format!("the {what} sent an unusable answer: {e}")))
    }

    /// GETs a JSON document; `None` when the answer is not a success.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        what: &str,
    ) -> Result<Option<T>> {
        let parsed = Url::parse(url)
            .map_err(|e| OAuthError::Refused(format!("the {what} {url:?} is not a URL: {e}")))?;
        let request = http::Request::get(parsed.as_str())
            .header("accept", "application/json")
            .header("mcp-protocol-version", "2025-11-25")
            .body(Vec::new())
            .map_err(|e| OAuthError::Refused(format!("the {what} {url:?} is not a URL: {e}")))?;
        let answer = self.send(request, what).await?;
        if !answer.status().is_success() {
            return Ok(None);
        }
        serde_json::from_slice(answer.body())
            .map(Some)
            .map_err(|e| OAuthError::Refused(format!("the {what} at {url} is not valid: {e}")))
    }
}

/// The guard as the `oauth2` and `openidconnect` crates' async HTTP client
/// (the two share the trait); `what` names the endpoint in errors.
pub struct Client {
    guard: Guard,
    what: &'static str,
}

impl Guard {
    pub fn client(&self, what: &'static str) -> Client {
        Client {
            guard: self.clone(),
            what,
        }
    }
}

type Answer<'c> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<http::Response<Vec<u8>>>> + Send + 'c>,
>;

impl<'c> oauth2::AsyncHttpClient<'c> for Client {
    type Error = OAuthError;
    type Future = Answer<'c>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(self.guard.send(request, self.what))
    }
}

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read: metadata, keys and tokens are a few KiB.
const MAX_ANSWER: usize = 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(map: &'static [(&'static str, &'static str)]) -> Resolver {
        Arc::new(move |host: &str, _| {
            map.iter()
                .find(|(h, _)| *h == host)
                .map(|(_, ip)| vec![ip.parse().expect("ip")])
                .ok_or_else(|| std::io::Error::other("unknown host"))
        })
    }

    const HOSTS: &[(&str, &str)] = &[
        ("auth.example.com", "93.184.216.34"),
        ("metadata.example.com", "169.254.169.254"),
        ("intranet.example.com", "10.1.2.3"),
        ("localhost", "127.0.0.1"),
        ("v6meta.example.com", "fe80::1"),
    ];

    #[test]
    fn https_public_and_loopback_http_pass() {
        let g = Guard::new(resolver(HOSTS), false, true);
        assert!(
            g.check("https://auth.example.com/token", "token URL")
                .is_ok()
        );
        assert!(g.check("http://localhost:3001/token", "token URL").is_ok());
        let plain = g.check("http://auth.example.com/token", "token URL");
        assert!(matches!(plain, Err(OAuthError::Refused(m)) if m.contains("https")));
    }

    #[test]
    fn loopback_is_for_a_server_on_this_computer_only() {
        let public = Guard::for_server(
            resolver(HOSTS),
            &Url::parse("https://auth.example.com/mcp").expect("url"),
        );
        for url in [
            "http://localhost:3001/token",
            "http://127.0.0.1:3001/token",
            "https://[::1]/token",
        ] {
            let r = public.check(url, "token URL");
            assert!(
                matches!(&r, Err(OAuthError::Refused(m)) if m.contains("points at this computer")),
                "{url}: {r:?}"
            );
        }
        let local = Guard::for_server(
            resolver(HOSTS),
            &Url::parse("http://127.0.0.1:8080/mcp").expect("url"),
        );
        assert!(
            local
                .check("http://localhost:3001/token", "token URL")
                .is_ok()
        );
        assert!(
            local
                .check("https://auth.example.com/token", "token URL")
                .is_ok()
        );
    }

    /// A name that answers the check with one address and the connection
    /// with another (DNS rebinding) still reaches the one that was checked:
    /// the request is pinned to it, and the name is looked up once.
    #[tokio::test]
    async fn the_request_goes_to_the_address_that_was_checked() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let checked = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = checked.local_addr().expect("address").port();
        let elsewhere = tokio::net::TcpListener::bind(("127.0.0.2", port))
            .await
            .expect("bind a second loopback address on the same port");
        for (listener, name) in [(checked, "checked"), (elsewhere, "elsewhere")] {
            let app = axum::Router::new()
                .route("/token", axum::routing::get(move || async move { name }));
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
        }
        let lookups = Arc::new(AtomicUsize::new(0));
        let counted = lookups.clone();
        let rebinding: Resolver = Arc::new(move |host: &str, _| {
            assert_eq!(host, "rebind.test");
            let ip = if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                "127.0.0.1"
            } else {
                "127.0.0.2"
            };
            Ok(vec![ip.parse().expect("ip")])
        });
        let guard = Guard::new(rebinding, false, true);
        let request = http::Request::get(format!("http://rebind.test:{port}/token"))
            .body(Vec::new())
            .expect("request");
        let answer = guard.send(request, "token URL").await.expect("sent");
        assert_eq!(answer.body().as_slice(), b"checked");
        assert_eq!(
            lookups.load(Ordering::SeqCst),
            1,
            "the name is looked up once"
        );
    }

    #[test]
    fn metadata_link_local_and_private_addresses_are_refused() {
        let g = Guard::new(resolver(HOSTS), false, false);
        for url in [
            "https://metadata.example.com/.well-known/oauth-authorization-server",
            "https://v6meta.example.com/x",
            "https://169.254.169.254/latest",
        ] {
            let r = g.check(url, "metadata URL");
            assert!(
                matches!(&r, Err(OAuthError::Refused(m)) if m.contains("metadata")),
                "{url}: {r:?}"
            );
        }
        let private = g.check("https://intranet.example.com/token", "token URL");
        assert!(matches!(private, Err(OAuthError::Refused(m)) if m.contains("private")));
        // A server the admin put on the private network may use it; never
        // the metadata address.
        let inside = Guard::for_server(
            resolver(HOSTS),
            &Url::parse("https://intranet.example.com/mcp").expect("url"),
        );
        assert!(
            inside
                .check("https://intranet.example.com/token", "token URL")
                .is_ok()
        );
        assert!(
            inside
                .check("https://metadata.example.com/x", "token URL")
                .is_err()
        );
    }
}
