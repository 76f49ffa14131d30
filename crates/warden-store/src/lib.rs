//! Warden's durable state in SQLite: the agents that may call the gateway and
//! the append-only activity log.
//!
//! The database runs in WAL mode with `synchronous=NORMAL`: a committed
//! transaction survives a crash of the process (kill -9), which is what the
//! "committed before forwarded" rule of the activity log relies on. Activity
//! rows are written by one thread that groups the commits of concurrent
//! callers, so logging costs the call path one channel hop, not one fsync.

mod activity;
mod agents;
pub mod audit;
mod migrate;
pub mod private;
pub mod roles;
pub mod server_auth;
pub mod tools;
pub mod users;
pub mod vault;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;

pub use activity::{
    ActivityFilter, ActivityLog, ActivityRow, CheckpointSigner, DayCount, NewEvent,
};
pub use agents::{Agent, AgentKey, AgentStatus};
pub mod agent {
    pub use crate::agents::{
        active_keys, get, insert, list, list_owned_by, owners, rotate, set_expiry, set_owner,
        set_status, suspend_owned, touch,
    };
}

/// Errors from the store. Messages say what failed; they never carry secrets.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the database at {path} could not be opened: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the database at {path} could not be created: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the activity log could not be written: {0}")]
    LogUnavailable(String),
    #[error("{0} already exists")]
    Exists(String),
    #[error("{0} was not found")]
    NotFound(String),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// The vault key is not held: no person unlocked this process yet.
    #[error(
        "Warden is locked: it opens its records with your password once after it starts; sign in to the Warden app, or run `warden unlock`"
    )]
    Locked,
    /// A sealed row did not check: something other than Warden wrote it.
    #[error("{0}; Warden does not trust it")]
    Forged(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Microseconds since the Unix epoch, the time unit of every stored timestamp.
pub fn now_us() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1000) as i64
}

/// A handle on the database. Cheap to clone; the activity writer is shared.
#[derive(Clone)]
pub struct Store {
    path: Arc<PathBuf>,
    activity: ActivityLog,
    vault: Arc<vault::Vault>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and applies migrations.
    pub fn open(path: &Path) -> Result<Store> {
        // Created private before SQLite opens it; its write-ahead log and
        // shared-memory files take the database file's mode.
        private::create_file(path, private::Existing::Keep).map_err(|source| Error::Create {
            path: path.to_path_buf(),
            source,
        })?;
        #[cfg(unix)]
        for side in ["-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(side);
            let _ = private::narrow(Path::new(&p), 0o600);
        }
        let vault = Arc::new(vault::Vault::default());
        let mut conn = open_connection(path, &vault)?;
        migrate::apply(&mut conn)?;
        let activity = ActivityLog::start(open_connection(path, &vault)?)?;
        Ok(Store {
            path: Arc::new(path.to_path_buf()),
            activity,
            vault,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn activity(&self) -> &ActivityLog {
        &self.activity
    }

    /// The vault key this process holds once a person unlocked it.
    pub fn vault(&self) -> &vault::Vault {
        &self.vault
    }

    /// A fresh connection for short, blocking work (CLI commands, admin calls).
    /// Async callers run it under `spawn_blocking`.
    pub fn connect(&self) -> Result<Connection> {
        open_connection(&self.path, &self.vault)
    }

    /// A setting from the settings table.
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .connect()?
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// This install's random id, made by the first migration.
    pub fn install_id(&self) -> Result<String> {
        let conn = self.connect()?;
        Ok(conn.query_row(
            "SELECT value FROM settings WHERE key = 'install_id'",
            [],
            |r| r.get(0),
        )?)
    }
}

fn open_connection(path: &Path, vault: &Arc<vault::Vault>) -> Result<Connection> {
    let mut conn = Connection::open(path).map_err(|source| Error::Open {
        path: path.to_path_buf(),
        source,
    })?;
    conn.busy_timeout(Duration::from_secs(2))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Every transaction here reads before it writes. A deferred one that
    // another connection commits under cannot upgrade to a writer, and SQLite
    // answers "database is locked" at once instead of waiting out the busy
    // timeout; taking the write lock at BEGIN makes it wait its turn.
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    vault::register(&conn, vault)?;
    Ok(conn)
}
