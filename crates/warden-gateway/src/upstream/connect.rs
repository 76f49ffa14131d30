//! Connecting to a server: starting its transport, detecting its protocol
//! era (`server/discover`, else `initialize`), and fetching its catalog.

use super::*;

pub(super) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
pub(super) const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn connect(
    name: &str,
    spec: &ServerSpec,
    secrets: &SecretResolver,
    mux: Arc<Mux>,
) -> Result<(Peer, Option<stdio::Process>), PeerError> {
    if let Some(command) = &spec.command {
        let env: BTreeMap<String, String> = resolve_all(secrets, &spec.env).await?;
        let spawn =
            |mux: Arc<Mux>| stdio::spawn(name, command, &spec.args, spec.cwd.as_deref(), &env, mux);
        let (link, process) = spawn(mux.clone())?;
        let mut peer = Peer {
            server: name.to_string(),
            mux: mux.clone(),
            link: Link::Stdio(link),
            era: Era::Modern(MODERN_VERSION.into()),
            info: serde_json::Value::Null,
        };
        match discover(&peer, PROBE_TIMEOUT).await {
            Probe::Modern(version, info) => {
                peer.era = Era::Modern(version);
                peer.info = info;
                Ok((peer, Some(process)))
            }
            Probe::Legacy => {
                initialize(&mut peer).await?;
                Ok((peer, Some(process)))
            }
            Probe::Silent => {
                // No answer at all: the server may be in an undefined state
                // after the unknown method. Start it afresh for the handshake.
                process.stop(Duration::from_millis(500)).await;
                let (link, process) = spawn(mux.clone())?;
                peer.link = Link::Stdio(link);
                initialize(&mut peer).await?;
                Ok((peer, Some(process)))
            }
            Probe::Failed(e) => {
                process.stop(Duration::from_millis(500)).await;
                Err(e)
            }
        }
    } else if let Some(raw_url) = &spec.url {
        let url =
            crate::config::validate_url(raw_url).map_err(|e| PeerError::Start(e.to_string()))?;
        let headers: Vec<(String, String)> = resolve_all(secrets, &spec.headers)
            .await?
            .into_iter()
            .collect();
        let link = Arc::new(
            http::HttpLink::new(url.clone(), http::header_map(&headers)?, mux.clone())?
                .with_auth(name, secrets.tokens.clone()),
        );
        link.set_version(MODERN_VERSION);
        let mut peer = Peer {
            server: name.to_string(),
            mux,
            link: Link::Http(link.clone()),
            era: Era::Modern(MODERN_VERSION.into()),
            info: serde_json::Value::Null,
        };
        match discover(&peer, HANDSHAKE_TIMEOUT).await {
            Probe::Modern(version, info) => {
                link.set_version(&version);
                peer.era = Era::Modern(version);
                peer.info = info;
            }
            Probe::Legacy | Probe::Silent => {
                link.clear_version();
                match initialize(&mut peer).await {
                    Ok(()) => {}
                    // A server that refuses POSTs may speak the deprecated
                    // HTTP+SSE transport: the spec says to try a GET next.
                    Err(PeerError::Http { status, .. })
                        if (400..500).contains(&status) && status != 401 && status != 403 =>
                    {
                        let sse = sse_legacy::SseLink::connect(
                            url.clone(),
                            http::header_map(&headers)?,
                            peer.mux.clone(),
                        )
                        .await?;
                        peer.link = Link::Sse(sse);
                        initialize(&mut peer).await?;
                    }
                    Err(e) => return Err(e),
                }
            }
            Probe::Failed(e) => return Err(e),
        }
        Ok((peer, None))
    } else {
        Err(PeerError::Start(
            "the server has neither a command nor a url".into(),
        ))
    }
}

/// Resolves `keychain:` values off the async threads: the keychain blocks.
pub(super) async fn resolve_all(
    secrets: &SecretResolver,
    values: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, PeerError> {
    let resolve = secrets.resolve.clone();
    let values = values.clone();
    tokio::task::spawn_blocking(move || {
        values
            .into_iter()
            .map(|(k, v)| resolve(&v).map(|v| (k, v)))
            .collect::<Result<BTreeMap<_, _>, String>>()
    })
    .await
    .map_err(|e| PeerError::Start(e.to_string()))?
    .map_err(PeerError::Start)
}

pub(super) enum Probe {
    Modern(String, serde_json::Value),
    Legacy,
    Silent,
    Failed(PeerError),
}

pub(super) async fn discover(peer: &Peer, timeout: Duration) -> Probe {
    match peer
        .call(
            own(),
            "server/discover",
            Params::default(),
            None,
            timeout,
            None,
        )
        .await
    {
        Ok(Reply::Result(r)) => {
            let info: serde_json::Value = serde_json::from_str(r.get()).unwrap_or_default();
            let versions: Vec<String> = info["supportedVersions"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            if versions.iter().any(|v| v == MODERN_VERSION) || versions.is_empty() {
                Probe::Modern(MODERN_VERSION.into(), info)
            } else if versions
                .iter()
                .any(|v| LEGACY_VERSIONS.contains(&v.as_str()))
            {
                Probe::Legacy
            } else {
                Probe::Failed(PeerError::Protocol(format!(
                    "the server speaks only MCP versions Warden does not know ({})",
                    versions.join(", ")
                )))
            }
        }
        Ok(Reply::Error(_)) => Probe::Legacy,
        Err(PeerError::Timeout(_)) => Probe::Silent,
        Err(PeerError::Http { status, .. })
            if (400..500).contains(&status) && status != 401 && status != 403 =>
        {
            Probe::Legacy
        }
        Err(e) => Probe::Failed(e),
    }
}

pub(super) async fn initialize(peer: &mut Peer) -> Result<(), PeerError> {
    peer.era = Era::Legacy(LEGACY_VERSION.into());
    let mut params = Params::default();
    params.set_str("protocolVersion", LEGACY_VERSION);
    params.set_raw(
        "capabilities",
        jsonrpc::to_raw(&crate::handshake::client_capabilities()),
    );
    params.set_raw(
        "clientInfo",
        jsonrpc::to_raw(&crate::handshake::client_info()),
    );
    let reply = peer
        .call(own(), "initialize", params, None, HANDSHAKE_TIMEOUT, None)
        .await?;
    let info: serde_json::Value = match reply {
        Reply::Result(r) => serde_json::from_str(r.get()).map_err(|_| {
            PeerError::Protocol("the server's initialize answer is not valid JSON".into())
        })?,
        Reply::Error(e) => {
            return Err(PeerError::Protocol(format!(
                "the server refused to initialize: {}",
                e.get()
            )));
        }
    };
    let version = info["protocolVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !LEGACY_VERSIONS.contains(&version.as_str()) {
        return Err(PeerError::Protocol(format!(
            "the server wants MCP version {version:?}, which Warden does not speak"
        )));
    }
    if let Link::Http(l) = &peer.link {
        l.set_version(&version);
    }
    peer.era = Era::Legacy(version);
    peer.info = info;
    peer.notify(own(), "notifications/initialized", None)
        .await?;
    Ok(())
}

pub(super) async fn fetch_catalog(peer: &Peer, server: &str) -> Result<Catalog, PeerError> {
    let mut catalog = Catalog::default();
    for kind in [
        ListKind::Tools,
        ListKind::Resources,
        ListKind::Templates,
        ListKind::Prompts,
    ] {
        if peer.capabilities().get(kind.capability()).is_none() {
            continue;
        }
        let items = list_all(peer, server, kind).await?;
        match kind {
            ListKind::Tools => catalog.tools = items,
            ListKind::Resources => catalog.resources = items,
            ListKind::Templates => catalog.templates = items,
            ListKind::Prompts => catalog.prompts = items,
        }
    }
    Ok(catalog)
}

/// Every page of one list, with names namespaced.
pub async fn list_all(peer: &Peer, server: &str, kind: ListKind) -> Result<Vec<Item>, PeerError> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut params = Params::default();
        if let Some(c) = &cursor {
            params.set_str("cursor", c);
        }
        let reply = peer
            .call(own(), kind.method(), params, None, HANDSHAKE_TIMEOUT, None)
            .await?;
        let raw = match reply {
            Reply::Result(r) => r,
            Reply::Error(e) => {
                return Err(PeerError::Protocol(format!(
                    "{} failed: {}",
                    kind.method(),
                    e.get()
                )));
            }
        };
        let shape = |e: String| {
            PeerError::Protocol(format!(
                "{} returned an unexpected shape: {e}",
                kind.method()
            ))
        };
        let page = Params::parse(raw.get()).map_err(shape)?;
        let listed: Vec<Box<RawValue>> = match page.0.get(kind.key()) {
            Some(v) => serde_json::from_str(v.get()).map_err(|e| shape(e.to_string()))?,
            None => Vec::new(),
        };
        for raw in listed {
            let Ok(mut fields) = Params::parse(raw.get()) else {
                continue;
            };
            let original = fields.str("name").unwrap_or_default();
            // A tool named like another kind (`prompt:x`) could pose as it
            // in a grant: it is not offered.
            if kind == ListKind::Tools
                && warden_policy::KIND_PREFIXES
                    .iter()
                    .any(|p| original.starts_with(p))
            {
                tracing::warn!(%server, tool = %original, "not offering a tool whose name poses as a prompt, resource or method");
                continue;
            }
            let exposed = crate::names::expose(server, &original);
            fields.set_str("name", &exposed);
            items.push(Item {
                uri: fields.str("uri"),
                uri_template: fields.str("uriTemplate"),
                original,
                exposed,
                exposed_raw: fields.to_raw(),
                raw,
            });
        }
        match page.str("nextCursor").filter(|c| !c.is_empty()) {
            Some(c) => cursor = Some(c),
            None => return Ok(items),
        }
    }
    Err(PeerError::Protocol(format!(
        "{} never stopped paginating",
        kind.method()
    )))
}
