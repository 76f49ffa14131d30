//! Starting and stopping the gateway with everything around it: the store,
//! the keychain-held keys, the control socket, the listener, SSO refresh,
//! signed checkpoints and retention. `warden serve` and the desktop app both
//! run the gateway through here, so they behave the same.

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use warden_gateway::config::Config;
use warden_gateway::{Gateway, listener};

use crate::{Api, ApiError, ApiResult, ErrorCode};

/// Where an install keeps its data and configuration.
#[derive(Debug, Clone)]
pub struct Paths {
    pub data_dir: PathBuf,
    pub config: PathBuf,
    pub db: PathBuf,
    /// Whether the data folder was chosen rather than the platform's default.
    pub explicit: bool,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::Unavailable, format!("{what}: {e}"))
}

impl Paths {
    /// The chosen data folder (which then also holds the configuration), or
    /// the platform's folders.
    pub fn resolve(data_dir: Option<PathBuf>) -> ApiResult<Paths> {
        let explicit = data_dir.is_some();
        let (data_dir, config_dir) = match data_dir {
            Some(d) => (d.clone(), d),
            None => {
                let dirs =
                    directories::ProjectDirs::from("dev", "warden", "warden").ok_or_else(|| {
                        ApiError::new(
                            ErrorCode::Unavailable,
                            "could not find this user's home folder; pass --data-dir",
                        )
                    })?;
                (
                    dirs.data_dir().to_path_buf(),
                    dirs.config_dir().to_path_buf(),
                )
            }
        };
        // This user's only (0700): other OS users get nothing inside it.
        warden_store::private::create_dir(&data_dir).map_err(|e| {
            unavailable(
                &format!("could not create the data folder {}", data_dir.display()),
                e,
            )
        })?;
        Ok(Paths {
            config: config_dir.join("config.toml"),
            db: data_dir.join("warden.db"),
            data_dir,
            explicit,
        })
    }

    /// The API on this install's store, without a running gateway.
    pub fn open_api(&self, gateway: Option<Gateway>) -> ApiResult<Api> {
        let store = warden_store::Store::open(&self.db)?;
        Ok(Api::new(
            store,
            self.config.clone(),
            warden_auth::Keychain::default(),
            gateway,
        )
        .with_data_dir(self.data_dir.clone(), self.explicit))
    }
}

/// A running gateway and the API bound to it.
pub struct Running {
    pub api: Api,
    pub gateway: Gateway,
    /// Where agents reach it: `http://127.0.0.1:PORT/mcp`.
    pub endpoint: String,
    paths: Paths,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Starts the gateway for `paths`; `listen` overrides the configured
    /// address. Must run inside a tokio runtime.
    pub async fn start(paths: &Paths, listen: Option<String>) -> ApiResult<Running> {
        let mut config = Config::load(&paths.config)?;
        if let Some(l) = listen {
            config.gateway.listen = l;
        }
        config.validate()?;
        let addr = config.listen_addr()?;
        if !addr.ip().is_loopback() {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!("Warden only listens on this machine (127.0.0.1 or ::1), not {addr}"),
            ));
        }
        let bare = paths.open_api(None)?;
        let store = bare.store().clone();
        // What an edit of the file loosens waits for an admin.
        let held = crate::settings::hold_loosened(&store, &mut config)?;
        let keychain = warden_auth::Keychain::default();
        // Agent credentials are checked under a key from the keychain:
        // without a keychain the gateway does not start (fails closed).
        let credential_key = bare.credential_key().await?;
        let gateway = Gateway::start(
            store.clone(),
            paths.config.clone(),
            config.clone(),
            crate::secret_resolver(keychain.clone())
                .with_tokens(crate::OAuthTokens::new(store.clone(), keychain.clone())),
            credential_key,
        )?;
        gateway.set_paused(crate::desktop::paused_setting(&store)?);
        let tcp = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            unavailable(
                &format!("could not listen on {addr} (is another program using that port?)"),
                e,
            )
        })?;
        let local = tcp
            .local_addr()
            .map_err(|e| unavailable("could not read the listening address", e))?;
        let endpoint = format!("http://{local}/mcp");
        let api = Api::new(
            store.clone(),
            paths.config.clone(),
            keychain,
            Some(gateway.clone()),
        )
        .with_data_dir(paths.data_dir.clone(), paths.explicit)
        .with_endpoint(endpoint.clone());
        api.record_held_settings(&held).await?;
        api.teach_gateway_secrets().await.map_err(|e| {
            ApiError::new(
                e.code,
                format!("could not read the kept secrets: {}", e.message),
            )
        })?;
        crate::spawn_refresher(api.clone());
        api.start_checkpoints().await.map_err(|e| {
            ApiError::new(
                e.code,
                format!("could not start signing the activity log: {}", e.message),
            )
        })?;
        let stop = gateway.shutdown_token();
        crate::serve_control(
            api.clone(),
            crate::socket_path(&paths.data_dir),
            stop.clone(),
        )
        .await
        .map_err(|e| unavailable("could not open the control socket", e))?;
        // `warden connect` finds the running gateway through this file.
        std::fs::write(paths.data_dir.join("endpoint"), &endpoint)
            .map_err(|e| unavailable("could not write the endpoint file", e))?;
        tracing::info!(endpoint = %endpoint, "Warden is listening");
        let server = tokio::spawn({
            let gateway = gateway.clone();
            async move {
                if let Err(e) = listener::serve(gateway, tcp).await {
                    tracing::error!(error = %e, "the listener stopped");
                }
            }
        });
        {
            // Retention as the gateway holds it now (an admin's approval of
            // looser settings changes it while Warden runs).
            let api = api.clone();
            let stop = stop.clone();
            let gateway = gateway.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(3600));
                loop {
                    tokio::select! {
                        _ = every.tick() => {
                            let a = gateway.config().activity;
                            if a.retention_days.is_none() && a.max_rows.is_none() {
                                continue;
                            }
                            if let Err(e) = api.prune(a.retention_days, a.max_rows).await {
                                tracing::error!(error = %e.message, "could not apply activity retention");
                            }
                        }
                        _ = stop.cancelled() => break,
                    }
                }
            });
        }
        Ok(Running {
            api,
            gateway,
            endpoint,
            paths: paths.clone(),
            stop,
            server,
        })
    }

    /// Stops the servers, signs a closing checkpoint and removes the socket
    /// and endpoint files.
    pub async fn shutdown(self) {
        tracing::info!("shutting down: stopping servers");
        self.gateway.shutdown().await;
        // A signed checkpoint covers everything written, so cutting rows off
        // the end shows.
        if let Err(e) = self.api.store().activity().checkpoint().await {
            tracing::error!(error = %e, "could not sign the closing checkpoint");
        }
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(3), self.server).await;
        let _ = std::fs::remove_file(crate::socket_path(&self.paths.data_dir));
        let _ = std::fs::remove_file(self.paths.data_dir.join("endpoint"));
        tracing::info!("stopped");
    }
}
