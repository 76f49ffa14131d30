//! `warden serve`: the gateway in the foreground until SIGINT or SIGTERM.

use anyhow::{Context, Result, bail};
use warden_gateway::config::Config;
use warden_gateway::{Gateway, listener};

use crate::Paths;

pub async fn run(paths: &Paths, listen: Option<String>) -> Result<()> {
    let config = Config::load(&paths.config)?;
    let _log_guard = crate::logging::init(&paths.data_dir, config.log.level.as_deref());
    let mut config = config;
    if let Some(l) = listen {
        config.gateway.listen = l;
    }
    config.validate()?;
    let addr = config.listen_addr()?;
    if !addr.ip().is_loopback() {
        bail!("Warden only listens on this machine (127.0.0.1 or ::1), not {addr}");
    }
    let api_without_gateway = paths.open_api(None)?;
    let store = api_without_gateway.store().clone();
    let keychain = warden_auth::Keychain::default();
    // Agent credentials are checked under a key from the keychain: without
    // a keychain the gateway does not start (fails closed).
    let credential_key = api_without_gateway
        .credential_key()
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let gateway = Gateway::start(
        store.clone(),
        paths.config.clone(),
        config.clone(),
        warden_api::secret_resolver(keychain.clone()).with_tokens(warden_api::OAuthTokens::new(
            store.clone(),
            keychain.clone(),
        )),
        credential_key,
    )?;
    let api = warden_api::Api::new(
        store.clone(),
        paths.config.clone(),
        keychain,
        Some(gateway.clone()),
    );
    api.teach_gateway_secrets()
        .await
        .map_err(|e| anyhow::anyhow!("could not read the kept secrets: {}", e.message))?;
    warden_api::spawn_refresher(api.clone());
    api.start_checkpoints()
        .await
        .map_err(|e| anyhow::anyhow!("could not start signing the activity log: {}", e.message))?;
    let stop = gateway.shutdown_token();
    warden_api::serve_control(
        api.clone(),
        warden_api::socket_path(&paths.data_dir),
        stop.clone(),
    )
    .await
    .context("could not open the control socket")?;
    let tcp = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("could not listen on {addr} (is another program using that port?)")
    })?;
    let local = tcp.local_addr()?;
    // The first line on stdout is the endpoint, for scripts and tests; the
    // same is written to the data folder for `warden connect`.
    let endpoint = format!("http://{local}/mcp");
    println!("{endpoint}");
    std::fs::write(paths.data_dir.join("endpoint"), &endpoint)
        .context("could not write the endpoint file")?;
    tracing::info!(endpoint = %format!("http://{local}/mcp"), "Warden is listening");

    let server = tokio::spawn(listener::serve(gateway.clone(), tcp));
    if config.activity.retention_days.is_some() || config.activity.max_rows.is_some() {
        let (days, rows) = (config.activity.retention_days, config.activity.max_rows);
        let api = api.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                tokio::select! {
                    _ = every.tick() => {
                        if let Err(e) = api.prune(days, rows).await {
                            tracing::error!(error = %e.message, "could not apply activity retention");
                        }
                    }
                    _ = stop.cancelled() => break,
                }
            }
        });
    }
    wait_for_signal().await;
    tracing::info!("shutting down: stopping servers");
    gateway.shutdown().await;
    // A signed checkpoint covers everything written, so cutting rows off
    // the end shows.
    if let Err(e) = store.activity().checkpoint().await {
        tracing::error!(error = %e, "could not sign the closing checkpoint");
    }
    stop.cancel();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), server).await;
    let _ = std::fs::remove_file(warden_api::socket_path(&paths.data_dir));
    let _ = std::fs::remove_file(paths.data_dir.join("endpoint"));
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
