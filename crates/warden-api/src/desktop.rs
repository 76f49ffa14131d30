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

/// Writes `entry` under `key` in the JSON file at `path`, keeping a copy of
/// what was there. A file that is not JSON is left alone.
fn write_client_config(
    path: &Path,
    key: &str,
    entry: serde_json::Value,
    now_s: i64,
) -> ApiResult<Option<PathBuf>> {
    let io = |what: &str, e: std::io::Error| {
        ApiError::new(
            ErrorCode::Unavailable,
            format!(
                "could not {what} {}: {e}; check the folder's permissions, or paste the snippet into the app yourself",
                path.display()
            ),
        )
    };
    let (mut doc, backup) = match std::fs::read(path) {
        Ok(bytes) => {
            let doc: serde_json::Value = if bytes.iter().all(u8::is_ascii_whitespace) {
                serde_json::json!({})
            } else {
                serde_json::from_slice(&bytes).map_err(|e| {
                    ApiError::new(
                        ErrorCode::InvalidInput,
                        format!(
                            "{} is not valid JSON ({e}), so Warden left it unchanged; fix it or paste the snippet into the app yourself",
                            path.display()
                        ),
                    )
                })?
            };
            let backup = path.with_file_name(format!(
                "{}.warden-backup-{now_s}",
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ));
            std::fs::write(&backup, &bytes).map_err(|e| io("keep a copy of", e))?;
            (doc, Some(backup))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (serde_json::json!({}), None),
        Err(e) => return Err(io("read", e)),
    };
    let Some(obj) = doc.as_object_mut() else {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!(
                "{} does not hold a JSON object, so Warden left it unchanged; paste the snippet into the app yourself",
                path.display()
            ),
        ));
    };
    let servers = obj.entry(key).or_insert_with(|| serde_json::json!({}));
    let Some(servers) = servers.as_object_mut() else {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!(
                "\"{key}\" in {} is not an object, so Warden left the file unchanged; paste the snippet into the app yourself",
                path.display()
            ),
        ));
    };
    servers.insert(ENTRY_NAME.into(), entry);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io("create the folder of", e))?;
    }
    let text = serde_json::to_string_pretty(&doc)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    let tmp = path.with_extension("warden-tmp");
    std::fs::write(&tmp, text + "\n").map_err(|e| io("write", e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("write", e))?;
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
        Ok(Response::Status(AppStatus {
            initialized,
            user,
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
        let path = app.config_path();
        let mut backup = None;
        if write {
            let p = path.clone().ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unavailable,
                    "could not find this user's home folder; paste the snippet into the app yourself",
                )
            })?;
            let now = self.clock.now();
            backup = blocking(move || write_client_config(&p, key, entry, now)).await?;
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
        std::fs::create_dir_all(&folder).map_err(crate::export::io_error)?;
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
        let path = folder.join(format!("warden-activity-{stamp}.{ext}"));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(crate::export::io_error)?;
        let rows = self
            .export(
                Some(token),
                filter,
                format,
                Box::new(file),
                Box::new(|_, _| {}),
            )
            .await?;
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
