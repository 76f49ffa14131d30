//! `warden serve`: the gateway in the foreground until SIGINT or SIGTERM.

use anyhow::Result;
use warden_api::runtime::{Paths, Running};
use warden_gateway::config::Config;

pub async fn run(paths: &Paths, listen: Option<String>) -> Result<()> {
    let config = Config::load(&paths.config)?;
    let _log_guard = warden_api::logging::init(&paths.data_dir, config.log.level.as_deref());
    let running = Running::start(paths, listen).await?;
    // The first line on stdout is the endpoint, for scripts and tests.
    println!("{}", running.endpoint);
    wait_for_signal().await;
    running.shutdown().await;
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
