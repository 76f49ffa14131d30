//! Warden's MCP authorization client as the MCP conformance suite's client
//! under test: `conformance client --command "warden-oauth-conformance"
//! --suite auth` appends the server URL. It signs in with Warden's own
//! discovery, registration, PKCE and token code (warden-auth), following
//! the authorization server's redirect itself as a browser would, then
//! lists the server's tools and calls one, stepping up scopes on 403.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use warden_auth::oauth::discovery::{self, Challenge};
use warden_auth::oauth::flow::{self, Loopback};
use warden_auth::oauth::guard::{Guard, system_resolver};
use warden_auth::oauth::{ClientRegistration, TokenSet};

struct Session {
    http: reqwest::Client,
    guard: Guard,
    url: url::Url,
    token: Option<TokenSet>,
    client: Option<ClientRegistration>,
    scopes: Option<String>,
    modern: bool,
    session_id: Option<String>,
    pre: Option<ClientRegistration>,
}

/// Follows the authorization server's redirect to the loopback listener,
/// as the system browser would.
async fn browse(url: &str) -> Result<()> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut next = url.to_string();
    for _ in 0..10 {
        let r = http.get(&next).send().await?;
        if !r.status().is_redirection() {
            return Ok(());
        }
        let Some(loc) = r.headers().get("location").and_then(|l| l.to_str().ok()) else {
            return Ok(());
        };
        next = url::Url::parse(&next)?.join(loc)?.to_string();
        if next.starts_with("http://127.0.0.1:") && next.contains("/callback") {
            let _ = http.get(&next).send().await;
            return Ok(());
        }
    }
    Ok(())
}

fn union(a: Option<&str>, b: Option<&str>) -> Option<String> {
    let mut out: Vec<String> = Vec::new();
    for s in [a, b].into_iter().flatten() {
        for w in s.split_whitespace() {
            if !out.iter().any(|x| x == w) {
                out.push(w.to_string());
            }
        }
    }
    (!out.is_empty()).then(|| out.join(" "))
}

impl Session {
    async fn sign_in(&mut self, challenge: Option<&Challenge>) -> Result<()> {
        let d = discovery::discover(&self.guard, &self.url, challenge).await?;
        let scopes = match challenge.and_then(|c| c.scope.as_deref()) {
            Some(s) => union(self.scopes.as_deref(), Some(s)),
            None => d.scopes.clone(),
        };
        let loopback = Loopback::bind(None).await?;
        let client = flow::register(
            &self.guard,
            &d.auth_server,
            &loopback.redirect_uri,
            self.pre.clone(),
            std::env::var("WARDEN_CLIENT_METADATA_URL").ok().as_deref(),
            scopes.as_deref(),
        )
        .await?;
        let a = flow::authorize(
            &d.auth_server,
            &client,
            &d.resource,
            scopes.as_deref(),
            &loopback.redirect_uri,
            &self.guard,
        )?;
        let wait = flow::wait_for_code(loopback, &a, Duration::from_secs(30));
        let (code, _) = tokio::join!(wait, browse(&a.url));
        let tokens = flow::exchange(&self.guard, &a, &code?).await?;
        self.scopes = scopes;
        self.client = Some(client);
        self.token = Some(tokens);
        Ok(())
    }

    async fn request(
        &mut self,
        method: &str,
        params: serde_json::Value,
        id: Option<u64>,
    ) -> Result<serde_json::Value> {
        let mut step_ups = 0;
        let mut auths = 0;
        loop {
            let mut body =
                serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params});
            if let Some(id) = id {
                body["id"] = id.into();
            }
            let mut req = self
                .http
                .post(self.url.clone())
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .json(&body);
            if self.modern {
                req = req
                    .header("mcp-protocol-version", "2026-07-28")
                    .header("mcp-method", method);
                if let Some(name) = params.get("name").and_then(|n| n.as_str()) {
                    req = req.header("mcp-name", name);
                }
            } else if method != "initialize" {
                req = req.header("mcp-protocol-version", "2025-11-25");
            }
            if let Some(s) = &self.session_id {
                req = req.header("mcp-session-id", s);
            }
            // A token goes only to the resource it was issued for.
            if let Some(t) = &self.token
                && discovery::resource_matches(&t.resource, &self.url)
            {
                req = req.bearer_auth(t.access_token.expose());
            }
            let r = req.send().await?;
            let status = r.status().as_u16();
            let challenge = r
                .headers()
                .get("www-authenticate")
                .and_then(|h| h.to_str().ok())
                .and_then(discovery::parse_www_authenticate);
            if let Some(s) = r
                .headers()
                .get("mcp-session-id")
                .and_then(|s| s.to_str().ok())
            {
                self.session_id = Some(s.to_string());
            }
            match status {
                401 if auths < 2 => {
                    auths += 1;
                    self.sign_in(challenge.as_ref()).await?;
                    continue;
                }
                403 if challenge.as_ref().and_then(|c| c.error.as_deref())
                    == Some("insufficient_scope")
                    && step_ups < 2 =>
                {
                    step_ups += 1;
                    self.sign_in(challenge.as_ref()).await?;
                    continue;
                }
                s if !(200..300).contains(&s) => bail!("{method}: HTTP {s}"),
                _ => {}
            }
            let ct = r
                .headers()
                .get("content-type")
                .and_then(|c| c.to_str().ok())
                .unwrap_or("")
                .to_string();
            let text = r.text().await?;
            if id.is_none() || text.trim().is_empty() {
                return Ok(serde_json::Value::Null);
            }
            if ct.starts_with("text/event-stream") {
                for line in text.lines() {
                    if let Some(d) = line.strip_prefix("data:")
                        && let Ok(v) = serde_json::from_str::<serde_json::Value>(d.trim())
                        && v.get("id").is_some()
                    {
                        return Ok(v);
                    }
                }
                bail!("{method}: no answer in the stream");
            }
            return Ok(serde_json::from_str(&text)?);
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let url = std::env::args()
        .nth(1)
        .context("usage: warden-oauth-conformance SERVER_URL")?;
    let version =
        std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION").unwrap_or_else(|_| "2025-11-25".into());
    let context: serde_json::Value = std::env::var("MCP_CONFORMANCE_CONTEXT")
        .ok()
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or_default();
    let pre = context
        .get("client_id")
        .and_then(|c| c.as_str())
        .map(|id| ClientRegistration {
            client_id: id.to_string(),
            client_secret: context
                .get("client_secret")
                .and_then(|s| s.as_str())
                .map(|s| warden_auth::Sensitive::new(s.to_string())),
            auth_method: "none".into(),
            kind: "pre-registered".into(),
            redirect_uri: None,
        });
    let server = url::Url::parse(&url)?;
    let mut s = Session {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        guard: Guard::for_server(system_resolver(), &server),
        url: server,
        token: None,
        client: None,
        scopes: None,
        modern: version == "2026-07-28",
        session_id: None,
        pre,
    };
    let meta = serde_json::json!({
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    if !s.modern {
        s.request(
            "initialize",
            serde_json::json!({"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "warden", "version": env!("CARGO_PKG_VERSION")}}),
            Some(1),
        )
        .await?;
        s.request("notifications/initialized", serde_json::json!({}), None)
            .await?;
    }
    let params = if s.modern {
        serde_json::json!({"_meta": meta})
    } else {
        serde_json::json!({})
    };
    let listed = s.request("tools/list", params, Some(2)).await?;
    if let Some(tool) = listed["result"]["tools"][0]["name"].as_str() {
        let mut p = serde_json::json!({"name": tool, "arguments": {}});
        if s.modern {
            p["_meta"] = meta.clone();
        }
        s.request("tools/call", p, Some(3)).await?;
    }
    Ok(())
}
