//! What the desktop app asks beyond the CLI's calls: the install's status
//! before anyone signs in, presets for well-known local servers, connecting
//! an AI app (an agent of its own plus the app's MCP configuration), pausing
//! every agent, and exporting activity to a file.
//!
//! The AI apps' configuration files sit where each app reads them; the
//! `directories` crate gives the platform's folders, so the same code names
//! the right file on Linux, macOS and Windows.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use warden_auth::Sensitive;
use warden_store::Agent;
use warden_store::users::User;

use crate::{Api, ApiError, ApiResult, ErrorCode, ExportFormat, LogFilter, Response, blocking};

/// The install as the app's first screen needs it.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct AppStatus {
    /// Whether the first admin exists (otherwise the app shows first run).
    pub initialized: bool,
    /// Who the session belongs to, when there is a valid one.
    pub user: Option<User>,
    /// Whether single sign-on is set up (the sign-in screen offers it).
    pub sso: bool,
    /// Where agents reach the gateway, when it runs.
    pub endpoint: Option<String>,
    /// Whether an admin paused every agent.
    pub paused: bool,
    pub version: String,
    pub data_dir: Option<String>,
    /// For an admin: settings of config.toml looser than approved, which
    /// wait for their approval.
    pub held_settings: Vec<warden_gateway::config::HeldSetting>,
}

/// A well-known local server the "connect a server" wizard offers.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct ServerPreset {
    pub id: String,
    pub title: String,
    pub description: String,
    pub command: String,
    /// An argument `{folder}` stands for the folder the person picks.
    pub args: Vec<String>,
    pub needs_folder: bool,
}

/// The AI apps Warden can write a configuration for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum ClientApp {
    ClaudeDesktop,
    Cursor,
    Vscode,
}

impl ClientApp {
    fn title(self) -> &'static str {
        match self {
            ClientApp::ClaudeDesktop => "Claude Desktop",
            ClientApp::Cursor => "Cursor",
            ClientApp::Vscode => "VS Code",
        }
    }

    /// The file the app reads its MCP servers from.
    fn config_path(self) -> Option<PathBuf> {
        let base = directories::BaseDirs::new()?;
        Some(match self {
            ClientApp::ClaudeDesktop => base
                .config_dir()
                .join("Claude")
                .join("claude_desktop_config.json"),
            ClientApp::Cursor => base.home_dir().join(".cursor").join("mcp.json"),
            ClientApp::Vscode => base.config_dir().join("Code").join("User").join("mcp.json"),
        })
    }

    /// The key the app keeps its servers under, and one server's entry.
    fn entry(self, command: &str, args: &[String]) -> (&'static str, serde_json::Value) {
        match self {
            ClientApp::Vscode => (
                "servers",
                serde_json::json!({"type": "stdio", "command": command, "args": args}),
            ),
            _ => (
                "mcpServers",
                serde_json::json!({"command": command, "args": args}),
            ),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct ClientConnected {
    pub agent: Agent,
    pub app: ClientApp,
    /// The configuration file written (or to paste into).
    pub config_path: Option<String>,
    /// A copy of the file as it was before Warden changed it.
    pub backup_path: Option<String>,
    /// The part of the configuration that reaches Warden.
    pub snippet: String,
    pub written: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct Exported {
    pub path: String,
    pub rows: u64,
}

/// What the app's windows hear when the pending approvals change
/// (event `warden://approvals`).
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct ApprovalsChanged {
    pub version: u64,
    pub pending: u32,
}

/// The events the desktop shell sends its windows.
pub const EVENT_APPROVALS: &str = "warden://approvals";
pub const EVENT_SERVERS: &str = "warden://servers";
pub const EVENT_ACTIVITY: &str = "warden://activity";
pub const EVENT_SESSION: &str = "warden://session";
pub const EVENT_NAVIGATE: &str = "warden://navigate";

/// Whether an admin left every agent paused (read when the gateway starts).
pub(crate) fn paused_setting(store: &warden_store::Store) -> ApiResult<bool> {
    Ok(store.setting("agents_paused")?.as_deref() == Some("1"))
}

/// The name the app's configuration knows Warden by.
const ENTRY_NAME: &str = "warden";

/// Where a program is on PATH, if it is.
fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// A preset runs the server's own command when it is installed, else npx
/// fetches it.
fn preset(
    id: &str,
    title: &str,
    description: &str,
    program: &str,
    package: &str,
    args: &[&str],
) -> ServerPreset {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let (command, args) = match on_path(program) {
        Some(p) => (p.display().to_string(), args),
        None => (
            "npx".to_string(),
            ["-y".to_string(), package.to_string()]
                .into_iter()
                .chain(args)
                .collect(),
        ),
    };
    ServerPreset {
        id: id.into(),
        title: title.into(),
        description: description.into(),
        needs_folder: args.iter().any(|a| a == "{folder}"),
        command,
        args,
    }
}

pub fn presets() -> Vec<ServerPreset> {
    vec![
        preset(
            "filesystem",
            "Files in a folder",
            "Lets agents read and write the files in one folder you choose, and nothing outside it.",
            "mcp-server-filesystem",
            "@modelcontextprotocol/server-filesystem",
            &["{folder}"],
        ),
        preset(
            "memory",
            "Memory",
            "A small knowledge graph agents can remember facts in between conversations.",
            "mcp-server-memory",
            "@modelcontextprotocol/server-memory",
            &[],
        ),
        preset(
            "everything",
            "Test server",
            "The MCP project's test server: every kind of tool, prompt and resource, for trying Warden out.",
            "mcp-server-everything",
            "@modelcontextprotocol/server-everything",
            &["stdio"],
        ),
    ]
}

/// The `warden` command the AI app runs: the one beside this program.
fn cli_path() -> ApiResult<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| {
        ApiError::new(
            ErrorCode::Internal,
            format!("could not tell where Warden is installed: {e}"),
        )
    })?;
    let name = if cfg!(windows) {
        "warden.exe"
    } else {
        "warden"
    };
    if exe.file_name().is_some_and(|n| n == name) {
        return Ok(exe);
    }
    let beside = exe.with_file_name(name);
    if beside.is_file() {
        Ok(beside)
    } else {
        Err(ApiError::new(
            ErrorCode::Unavailable,
            format!(
                "the `warden` command was not found beside the app (looked for {}); reinstall Warden, then try again",
                beside.display()
            ),
        ))
    }
}

/// The file to change: where a symlinked configuration really lives (so
/// the link survives), or the path itself.
fn real_path(path: &Path) -> PathBuf {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    }
}

fn config_error(path: &Path, what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::Unavailable,
        format!(
            "could not {what} {}: {e}; check the folder's permissions, or paste the snippet into the app yourself",
            path.display()
        ),
    )
}

/// The configuration as it is now (`{}` when there is none yet) and its
/// bytes. A file that is not a JSON object, or whose servers entry is not
/// one, is refused before anything changes.
fn read_client_config(path: &Path, key: &str) -> ApiResult<(serde_json::Value, Option<Vec<u8>>)> {
    let refuse = |why: String| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!(
                "{} {why}, so Warden left it unchanged; fix it or paste the snippet into the app yourself",
                path.display()
            ),
        )
    };
    let (doc, bytes) = match std::fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => {
            (serde_json::json!({}), Some(bytes))
        }
        Ok(bytes) => {
            let doc: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| refuse(format!("is not valid JSON ({e})")))?;
            (doc, Some(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (serde_json::json!({}), None),
        Err(e) => return Err(config_error(path, "read", e)),
    };
    let Some(obj) = doc.as_object() else {
        return Err(refuse("does not hold a JSON object".into()));
    };
    if obj.get(key).is_some_and(|v| !v.is_object()) {
        return Err(refuse(format!("has a \"{key}\" that is not an object")));
    }
    Ok((doc, bytes))
}

/// A new file only this user can read (or with the mode of the file it
/// stands for), never one that already exists.
fn create_private(path: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path)
}

/// Writes `entry` under `key` in the JSON file at `path`, keeping a copy of
/// what was there. The copy and the new file keep the original's
/// permissions (only this user's when there was none: these files often
/// hold other apps' keys); the new file is complete on disk before it
/// replaces the old one.
fn write_client_config(
    path: &Path,
    key: &str,
    entry: serde_json::Value,
    now_ms: i64,
) -> ApiResult<Option<PathBuf>> {
    use std::io::Write;
    let path = real_path(path);
    let path = path.as_path();
    let (mut doc, original) = read_client_config(path, key)?;
    #[cfg(unix)]
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).map_or(0o600, |m| m.permissions().mode() & 0o777)
    };
    #[cfg(not(unix))]
    let mode = 0o600;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let backup = match &original {
        Some(bytes) => {
            let backup = path.with_file_name(format!("{name}.warden-backup-{now_ms}"));
            let mut f = create_private(&backup, mode)
                .map_err(|e| config_error(path, "keep a copy of", e))?;
            f.write_all(bytes)
                .and_then(|()| f.sync_all())
                .map_err(|e| config_error(path, "keep a copy of", e))?;
            Some(backup)
        }
        None => None,
    };
    if let Some(obj) = doc.as_object_mut() {
        let servers = obj.entry(key).or_insert_with(|| serde_json::json!({}));
        if let Some(servers) = servers.as_object_mut() {
            servers.insert(ENTRY_NAME.into(), entry);
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| config_error(path, "create the folder of", e))?;
    }
    let text = serde_json::to_string_pretty(&doc)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
        + "\n";
    let tmp = path.with_file_name(format!(
        ".{name}.warden-{}",
        hex::encode(rand::random::<[u8; 8]>())
    ));
    let written = create_private(&tmp, mode).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(config_error(path, "write", e));
    }
    Ok(backup)
}

impl Api {
    /// The status call: answers without a session; a valid one adds who.
    pub(crate) async fn status(&self, session: Option<&Sensitive<String>>) -> ApiResult<Response> {
        let store = self.store.clone();
        let initialized =
            blocking(move || Ok(warden_store::users::count(&store.connect()?)? > 0)).await?;
        let user = match session {
            Some(token) => self.session_user(token).await.ok(),
            None => None,
        };
        let held_settings = match &user {
            Some(u) => self.held_settings(u).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e.message, "could not compare the settings with the approved ones");
                Vec::new()
            }),
            None => Vec::new(),
        };
        Ok(Response::Status(AppStatus {
            initialized,
            user,
            held_settings,
            sso: self.sso_config()?.is_some(),
            endpoint: self.endpoint.clone(),
            paused: self.gateway.as_ref().is_some_and(|g| g.paused()),
            version: env!("CARGO_PKG_VERSION").into(),
            data_dir: self.data_dir.as_ref().map(|d| d.display().to_string()),
        }))
    }

    pub(crate) async fn agents_pause(&self, paused: bool) -> ApiResult<Response> {
        let gw = self.gateway.as_ref().ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unavailable,
                "the gateway is not running, so there is nothing to pause; start Warden first",
            )
        })?;
        if gw.paused() != paused {
            // Kept in the store, so a restart (or a login's autostart) does
            // not quietly resume agents.
            let store = self.store.clone();
            let value = if paused { "1" } else { "0" };
            blocking(move || {
                store
                    .connect()?
                    .execute(
                        "INSERT INTO settings (key, value) VALUES ('agents_paused', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        [value],
                    )
                    .map_err(warden_store::Error::from)?;
                Ok(())
            })
            .await?;
            gw.set_paused(paused);
            let kind = if paused {
                "agents.paused"
            } else {
                "agents.unpaused"
            };
            self.record(kind, None, None, None).await?;
        }
        Ok(Response::Done)
    }

    /// Creates an agent for an AI app and, with `write`, points the app's
    /// configuration at `warden connect AGENT` (the credential stays in the
    /// keychain, never in the app's file).
    pub(crate) async fn client_connect(
        &self,
        actor: &User,
        app: ClientApp,
        agent: String,
        servers: Vec<String>,
        write: bool,
    ) -> ApiResult<Response> {
        crate::validate_name("agent", &agent, &[])?;
        let config = self.load_config()?;
        if let Some(missing) = servers.iter().find(|s| !config.servers.contains_key(*s)) {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("there is no server named {missing:?}; connect it first"),
            ));
        }
        let store = self.store.clone();
        let a = agent.clone();
        let exists = blocking(move || {
            Ok(warden_store::agent::list(&store.connect()?)?
                .iter()
                .any(|x| x.name == a))
        })
        .await?;
        if exists {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!("there is already an agent named {agent:?}; pick another name"),
            ));
        }
        let command = cli_path()?;
        let path = app.config_path();
        if write {
            let p = path.clone().ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unavailable,
                    "could not find this user's home folder; paste the snippet into the app yourself",
                )
            })?;
            let (key, _) = app.entry("", &[]);
            blocking(move || read_client_config(&real_path(&p), key).map(|_| ())).await?;
        }
        // Access to the chosen servers comes from a role of the agent's own;
        // risky tools still ask its owner, as a wildcard allow does.
        let mut roles = Vec::new();
        if !servers.is_empty() {
            if actor.role != "admin" {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    "only an admin can give an agent access to servers; connect the app without servers and ask an admin for a role",
                ));
            }
            let role = format!("app-{agent}");
            let store = self.store.clone();
            let (r, list) = (role.clone(), servers.clone());
            let title = app.title();
            blocking(move || {
                let mut conn = store.connect()?;
                let tx = conn.transaction().map_err(warden_store::Error::from)?;
                warden_store::roles::add(&tx, &r, &format!("what {title} may use"))?;
                for s in &list {
                    warden_store::roles::grant(
                        &tx,
                        &r,
                        &warden_store::roles::GrantRow {
                            server: s.clone(),
                            pattern: "*".into(),
                            effect: "allow".into(),
                            explicit: false,
                        },
                    )?;
                }
                tx.commit().map_err(warden_store::Error::from)?;
                Ok(())
            })
            .await?;
            self.record_change(
                "role.created",
                &role,
                None,
                Some(serde_json::json!({"servers": servers, "effect": "allow"})),
            )
            .await?;
            roles.push(role);
        }
        let created = match self
            .agent_add(actor, agent.clone(), roles, None, None)
            .await?
        {
            Response::AgentCreated(c) => c,
            _ => {
                return Err(ApiError::new(
                    ErrorCode::Internal,
                    "the agent was not created",
                ));
            }
        };
        if let Err(why) = &created.keychain {
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                format!(
                    "the agent was created, but its credential could not be kept in the keychain ({why}); unlock the keychain, then rotate the agent's credential"
                ),
            ));
        }
        let mut args = Vec::new();
        if let Some(dir) = &self.explicit_data_dir {
            args.push("--data-dir".to_string());
            args.push(dir.display().to_string());
        }
        args.push("connect".into());
        args.push(agent.clone());
        let (key, entry) = app.entry(&command.display().to_string(), &args);
        let snippet = serde_json::to_string_pretty(
            &serde_json::json!({ key: { ENTRY_NAME: entry.clone() } }),
        )
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        let mut backup = None;
        if let (true, Some(p)) = (write, path.clone()) {
            let now_ms = warden_store::now_us() / 1000;
            match blocking(move || write_client_config(&p, key, entry, now_ms)).await {
                Ok(b) => backup = b,
                Err(e) => {
                    // Nothing half-done stays behind: no agent, no role.
                    self.undo_client(&agent).await;
                    return Err(e);
                }
            }
            self.record(
                "client.configured",
                None,
                Some(&agent),
                Some(serde_json::json!({"app": app, "file": path}).to_string()),
            )
            .await?;
        }
        Ok(Response::ClientConnected(Box::new(ClientConnected {
            agent: created.agent,
            app,
            config_path: path.map(|p| p.display().to_string()),
            backup_path: backup.map(|p| p.display().to_string()),
            snippet,
            written: write,
        })))
    }

    /// Takes back the agent (and its role) of a connection that failed.
    async fn undo_client(&self, agent: &str) {
        if let Err(e) = self.agent_revoke(agent.to_string()).await {
            tracing::error!(%agent, error = %e.message, "could not revoke the agent of a failed connection");
        }
        let store = self.store.clone();
        let role = format!("app-{agent}");
        let removed =
            blocking(move || Ok(warden_store::roles::remove(&store.connect()?, &role)?)).await;
        if removed.is_ok() {
            let _ = self.reload_gateway();
        }
    }

    /// Exports activity to a new file in the person's Downloads folder.
    pub(crate) async fn export_to_downloads(
        &self,
        token: &Sensitive<String>,
        filter: LogFilter,
        format: ExportFormat,
    ) -> ApiResult<Response> {
        let dirs = directories::UserDirs::new().ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unavailable,
                "could not find this user's home folder to save the export in",
            )
        })?;
        let folder = dirs
            .download_dir()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dirs.home_dir().join("Downloads"));
        let path = {
            let ext = match format {
                ExportFormat::Csv => "csv",
                ExportFormat::Jsonl => "jsonl",
            };
            let stamp = time::OffsetDateTime::from_unix_timestamp(self.clock.now())
                .ok()
                .and_then(|t| {
                    t.format(time::macros::format_description!(
                        "[year][month][day]-[hour][minute][second]"
                    ))
                    .ok()
                })
                .unwrap_or_default();
            folder.join(format!("warden-activity-{stamp}.{ext}"))
        };
        // Everyone's activity, for an admin: readable by this user only.
        let p = path.clone();
        let file = blocking(move || {
            std::fs::create_dir_all(&folder).map_err(crate::export::io_error)?;
            warden_store::private::create_file(&p, warden_store::private::Existing::Refuse)
                .map_err(crate::export::io_error)
        })
        .await?;
        let rows = match self
            .export(
                Some(token),
                filter,
                format,
                Box::new(file),
                Box::new(|_, _| {}),
            )
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                // No half-written export is left behind.
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        Ok(Response::Exported(Exported {
            path: path.display().to_string(),
            rows,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_config_keeps_its_servers_and_gets_a_backup() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("mcp.json");
        std::fs::write(
            &path,
            r#"{"mcpServers":{"other":{"command":"x"}},"theme":"dark"}"#,
        )
        .expect("seed");
        let (key, entry) = ClientApp::Cursor.entry("/bin/warden", &["connect".into(), "a".into()]);
        let backup = write_client_config(&path, key, entry, 7)
            .expect("written")
            .expect("a backup");
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        assert_eq!(doc["theme"], "dark", "unrelated settings survive");
        assert_eq!(
            doc["mcpServers"]["other"]["command"], "x",
            "other servers survive"
        );
        assert_eq!(doc["mcpServers"]["warden"]["args"][1], "a");
        let old = std::fs::read_to_string(backup).expect("backup");
        assert!(
            old.contains("\"other\"") && !old.contains("warden"),
            "the backup is the original"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_copy_and_the_new_file_keep_a_private_files_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("mcp.json");
        std::fs::write(&path, r#"{"mcpServers":{"k":{"env":{"API_KEY":"x"}}}}"#).expect("seed");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let (key, entry) = ClientApp::Cursor.entry("/bin/warden", &[]);
        let backup = write_client_config(&path, key, entry, 9)
            .expect("written")
            .expect("a backup");
        for p in [&path, &backup] {
            let mode = std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} is readable by others", p.display());
        }
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file is left: {names:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_config_stays_a_symlink() {
        let dir = tempfile::tempdir().expect("temp dir");
        let real = dir.path().join("dotfiles-mcp.json");
        std::fs::write(&real, "{}").expect("seed");
        let link = dir.path().join("mcp.json");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let (key, entry) = ClientApp::Cursor.entry("/bin/warden", &[]);
        write_client_config(&link, key, entry, 3).expect("written");
        assert!(
            std::fs::symlink_metadata(&link)
                .expect("stat")
                .file_type()
                .is_symlink()
        );
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&real).expect("read")).expect("json");
        assert_eq!(doc["mcpServers"]["warden"]["command"], "/bin/warden");
    }

    #[test]
    fn a_file_that_is_not_json_is_left_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("claude_desktop_config.json");
        std::fs::write(&path, "{ not json").expect("seed");
        let (key, entry) = ClientApp::ClaudeDesktop.entry("/bin/warden", &[]);
        let err = write_client_config(&path, key, entry, 1).expect_err("refused");
        assert_eq!(err.code, ErrorCode::InvalidInput);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "{ not json");
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("list").count(),
            1,
            "no backup, no temp file"
        );
    }

    #[test]
    fn vscode_gets_a_typed_stdio_entry_under_servers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("Code").join("User").join("mcp.json");
        let (key, entry) = ClientApp::Vscode.entry("/bin/warden", &["connect".into(), "vs".into()]);
        assert!(
            write_client_config(&path, key, entry, 1)
                .expect("written")
                .is_none(),
            "nothing to back up"
        );
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        assert_eq!(doc["servers"]["warden"]["type"], "stdio");
        assert_eq!(doc["servers"]["warden"]["command"], "/bin/warden");
    }
}
