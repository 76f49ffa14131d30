//! The control socket: a Unix socket (mode 0600) in the data folder through
//! which the CLI reaches a running gateway. One JSON line in, one JSON line
//! out, per connection.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use crate::{Api, ApiError, ApiResult, ErrorCode, Peer, Presence, Request, Response};

/// Largest control request accepted.
const MAX_REQUEST: usize = 1024 * 1024;

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("warden.sock")
}

/// One control call: the caller's session (if any), what it asks, and the
/// proof that the person is there, for the requests that need one.
#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope {
    session: Option<warden_auth::Sensitive<String>>,
    request: Request,
    #[serde(default)]
    presence: Option<Presence>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Reply {
    Ok(Response),
    Error(ApiError),
}

/// Binds the socket. Refuses when another gateway already answers on it.
pub async fn serve_control(
    api: Api,
    path: PathBuf,
    stop: CancellationToken,
) -> std::io::Result<()> {
    if UnixStream::connect(&path).await.is_ok() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!(
                "Warden is already running for this data folder ({})",
                path.display()
            ),
        ));
    }
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                conn = listener.accept() => {
                    let Ok((stream, _)) = conn else { continue };
                    let api = api.clone();
                    tokio::spawn(async move { let _ = answer(api, stream).await; });
                }
            }
        }
        let _ = std::fs::remove_file(&path);
    });
    Ok(())
}

async fn answer(api: Api, stream: UnixStream) -> std::io::Result<()> {
    // The kernel's word on who connected: the process polkit is asked about.
    let peer = stream.peer_cred().ok().and_then(|c| {
        Some(Peer {
            pid: u32::try_from(c.pid()?).ok()?,
            uid: c.uid(),
        })
    });
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_REQUEST as u64));
    reader.read_line(&mut line).await?;
    let reply = match serde_json::from_str::<Envelope>(&line) {
        Ok(env) => match api
            .call_remote(env.session.as_ref(), env.request, peer, env.presence)
            .await
        {
            Ok(r) => Reply::Ok(r),
            Err(e) => Reply::Error(e),
        },
        Err(e) => Reply::Error(ApiError::new(
            ErrorCode::InvalidInput,
            format!("bad control request: {e}"),
        )),
    };
    let mut out = serde_json::to_string(&reply).unwrap_or_default();
    out.push('\n');
    write.write_all(out.as_bytes()).await?;
    write.shutdown().await
}

/// The CLI's side of the socket.
pub struct ControlClient {
    path: PathBuf,
}

impl ControlClient {
    /// Connects when a gateway is running for `data_dir`; `None` otherwise.
    pub async fn connect(data_dir: &Path) -> Option<ControlClient> {
        let path = socket_path(data_dir);
        UnixStream::connect(&path)
            .await
            .ok()
            .map(|_| ControlClient { path })
    }

    pub async fn call(
        &self,
        session: Option<&warden_auth::Sensitive<String>>,
        req: Request,
        presence: Option<Presence>,
    ) -> ApiResult<Response> {
        let io = |e: std::io::Error| {
            ApiError::new(
                ErrorCode::Unavailable,
                format!("could not reach the running gateway: {e}"),
            )
        };
        let stream = UnixStream::connect(&self.path).await.map_err(io)?;
        let (read, mut write) = stream.into_split();
        let envelope = Envelope {
            session: session.cloned(),
            request: req,
            presence,
        };
        let mut body = serde_json::to_string(&envelope)
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        body.push('\n');
        write.write_all(body.as_bytes()).await.map_err(io)?;
        let mut line = String::new();
        BufReader::new(read)
            .read_line(&mut line)
            .await
            .map_err(io)?;
        match serde_json::from_str::<Reply>(&line) {
            Ok(Reply::Ok(r)) => Ok(r),
            Ok(Reply::Error(e)) => Err(e),
            Err(e) => Err(ApiError::new(
                ErrorCode::Internal,
                format!("the gateway sent an unreadable answer: {e}"),
            )),
        }
    }
}
