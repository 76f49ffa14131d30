//! Warden's MCP gateway: one endpoint on this machine in front of every MCP
//! server a person has set up. See `upstream/README.md` for the protocol
//! decisions.

pub mod approvals;
pub mod config;
pub mod gateway;
pub mod handshake;
pub mod jsonrpc;
pub mod listener;
pub mod names;
pub mod notify;
pub mod outbox;
pub mod redact;
pub mod sse;
pub mod upstream;
pub mod vetting;

pub use config::{Config, ServerSpec};
pub use gateway::{Gateway, ServerInfo};
pub use upstream::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] warden_store::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
