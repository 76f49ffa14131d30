//! The configuration file (`config.toml`): gateway settings and the servers
//! Warden connects to. Values that are secrets never live here: an env value
//! or header written as `keychain:NAME` is read from the OS keychain.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7411";
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub gateway: GatewaySettings,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub activity: ActivitySettings,
    #[serde(default)]
    pub approvals: ApprovalSettings,
    #[serde(default)]
    pub oauth: OAuthSettings,
    #[serde(default)]
    pub servers: BTreeMap<String, ServerSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    /// Where the downstream endpoint listens. Loopback only.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Largest request body accepted, in bytes (413 above it).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// How long a call may wait for an upstream answer, in seconds.
    #[serde(default = "default_call_timeout")]
    pub call_timeout_secs: u64,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            listen: default_listen(),
            max_body_bytes: default_max_body(),
            call_timeout_secs: default_call_timeout(),
        }
    }
}

fn default_listen() -> String {
    DEFAULT_LISTEN.into()
}
fn default_max_body() -> usize {
    DEFAULT_MAX_BODY_BYTES
}
fn default_call_timeout() -> u64 {
    300
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// A tracing filter such as "info" or "warden_gateway=debug".
    /// `RUST_LOG` takes precedence when set.
    pub level: Option<String>,
}

/// Retention of the activity log (applied hourly by the running gateway).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ActivitySettings {
    /// Remove rows older than this many days.
    pub retention_days: Option<u32>,
    /// Keep at most this many rows (the newest).
    pub max_rows: Option<i64>,
}

/// How Warden presents itself to authorization servers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OAuthSettings {
    /// An https URL where your organisation publishes Warden's client ID
    /// metadata document; used as the client ID with servers that accept
    /// such documents, before dynamic registration.
    pub client_metadata_url: Option<String>,
}

/// How calls that need a person wait.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSettings {
    /// Seconds a call waits for an answer before it is denied (default 120).
    #[serde(default = "default_approval_timeout")]
    pub timeout_secs: u64,
    /// Whether approval requests also show as desktop notifications.
    #[serde(default = "default_true")]
    pub desktop_notifications: bool,
}

impl Default for ApprovalSettings {
    fn default() -> Self {
        ApprovalSettings {
            timeout_secs: default_approval_timeout(),
            desktop_notifications: true,
        }
    }
}

fn default_approval_timeout() -> u64 {
    120
}
fn default_true() -> bool {
    true
}

/// One upstream server: a local command (stdio) or a remote URL.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    /// Environment for the child. It does not inherit Warden's environment,
    /// except PATH, HOME, LANG, TMPDIR and USER.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    pub url: Option<String>,
    /// Extra headers for a remote server; values may be `keychain:NAME`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

pub enum Transport<'a> {
    Stdio { command: &'a str },
    Http { url: &'a url::Url },
}

impl ServerSpec {
    /// The hash of what an admin consents to: for a local server exactly
    /// what runs (command, arguments, folder, environment); for a remote
    /// server its address and headers, so that an edit of the file cannot
    /// send calls, a keychain secret or a new sign-in somewhere else. A
    /// change to any of it needs fresh consent.
    pub fn consent_hash(&self) -> Option<String> {
        use sha2::Digest;
        let what = match (&self.command, &self.url) {
            (Some(command), _) => serde_json::json!({
                "command": command,
                "args": self.args,
                "cwd": self.cwd,
                "env": self.env,
            }),
            (None, Some(url)) => serde_json::json!({
                "url": url,
                "headers": self.headers,
            }),
            _ => return None,
        };
        Some(hex::encode(sha2::Sha256::digest(
            what.to_string().as_bytes(),
        )))
    }

    /// What an admin's consent covers, in words: the command line of a
    /// local server; for a remote server the host on a line of its own (a
    /// URL can hide where it goes), the whole address, and every header,
    /// secrets by their keychain name.
    pub fn consent_subject(&self) -> Option<String> {
        if self.command.is_some() {
            return self.command_line();
        }
        let raw = self.url.as_ref()?;
        let host = url::Url::parse(raw)
            .ok()
            .and_then(|u| {
                let host = u.host_str()?.to_string();
                Some(match u.port() {
                    Some(p) => format!("{host}:{p}"),
                    None => host,
                })
            })
            .unwrap_or_else(|| "?".into());
        let mut text = format!(
            "host: {host}
address: {raw}"
        );
        for (k, v) in &self.headers {
            match v.trim_start().strip_prefix("keychain:") {
                Some(name) => text.push_str(&format!(
                    "
header {k}: the secret {name}"
                )),
                None => text.push_str(&format!(
                    "
header {k}: {v}"
                )),
            }
        }
        Some(text)
    }

    /// The full command line as an admin reviews it.
    pub fn command_line(&self) -> Option<String> {
        let command = self.command.as_ref()?;
        let mut line = String::new();
        for (k, v) in &self.env {
            line.push_str(&format!("{k}={} ", shell_quote(v)));
        }
        line.push_str(&shell_quote(command));
        for a in &self.args {
            line.push(' ');
            line.push_str(&shell_quote(a));
        }
        if let Some(cwd) = &self.cwd {
            line.push_str(&format!("   (in {})", cwd.display()));
        }
        Some(line)
    }

    pub fn validate(&self, name: &str) -> Result<()> {
        validate_server_name(name)?;
        for header in self.headers.keys() {
            let h = header.to_ascii_lowercase();
            if h == "host" || h == "forwarded" || h.starts_with("x-forwarded-") {
                return Err(Error::Config(format!(
                    "server {name:?} sets the {header} header, which can send its requests to another site than its address says; remove it"
                )));
            }
        }
        match (&self.command, &self.url) {
            (Some(c), None) if !c.trim().is_empty() => Ok(()),
            (None, Some(u)) => validate_url(u).map(|_| ()),
            (Some(_), Some(_)) => Err(Error::Config(format!(
                "server {name:?} has both a command and a url; give one"
            ))),
            _ => Err(Error::Config(format!(
                "server {name:?} needs a command (local) or a url (remote)"
            ))),
        }
    }
}

/// Server names become tool-name prefixes: lowercase letters, digits and
/// single hyphens, at most 32 characters, so `<server>__<tool>` splits at the
/// first `__` without doubt.
pub fn validate_server_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "{name:?} is not a valid server name: use 1 to 32 lowercase letters, digits and single hyphens (for example \"files\" or \"github-work\")"
        )))
    }
}

/// Remote servers must use https; plain http is allowed only to loopback.
pub fn validate_url(raw: &str) -> Result<url::Url> {
    let url = url::Url::parse(raw)
        .map_err(|e| Error::Config(format!("{raw:?} is not a valid URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Config(format!(
            "{raw} has a user name before its host, which hides where it goes; give the address without it (a secret goes in a header: keychain:NAME)"
        )));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback_host(&url) => Ok(url),
        "http" => Err(Error::Config(format!(
            "{raw} uses plain http; remote servers must use https (http is allowed only for 127.0.0.1, ::1 and localhost)"
        ))),
        other => Err(Error::Config(format!(
            "{raw} uses {other}:, but only https (or http to this machine) is supported"
        ))),
    }
}

fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl Config {
    /// Reads the file; a missing file is the default configuration. Errors
    /// name the file, the line and the field.
    pub fn load(path: &Path) -> Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => {
                return Err(Error::Config(format!(
                    "could not read {}: {e}",
                    path.display()
                )));
            }
        };
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses configuration text; `origin` names it in errors (a file path).
    pub fn parse(text: &str, origin: &str) -> Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| {
                text.as_bytes()[..s.start.min(text.len())]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
                    + 1
            });
            Error::Config(format!(
                "{}{}: {}",
                origin,
                line.map(|l| format!(", line {l}")).unwrap_or_default(),
                e.message()
            ))
        })?;
        config.validate().map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("{origin}: {m}")),
            other => other,
        })?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<()> {
        let addr: SocketAddr = self.gateway.listen.parse().map_err(|_| {
            Error::Config(format!(
                "gateway.listen {:?} is not an address like 127.0.0.1:7411",
                self.gateway.listen
            ))
        })?;
        if !addr.ip().is_loopback() {
            return Err(Error::Config(format!(
                "gateway.listen {addr} is not a loopback address; Warden only listens on this machine (127.0.0.1 or ::1)"
            )));
        }
        if self.gateway.max_body_bytes < 1024 {
            return Err(Error::Config(
                "gateway.max_body_bytes must be at least 1024".into(),
            ));
        }
        for (name, spec) in &self.servers {
            spec.validate(name)?;
        }
        Ok(())
    }

    /// Changes the file at `path` under an exclusive lock that every Warden
    /// process takes to change it: reads it, applies `change`, writes it
    /// atomically. Changes from many processes at once all survive; `change`
    /// failing leaves the file as it was.
    pub fn update<T>(path: &Path, change: impl FnOnce(&mut Config) -> Result<T>) -> Result<T> {
        let lock_path = path.with_extension("toml.lock");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Config(format!("could not create {}: {e}", dir.display())))?;
        }
        let lock = warden_store::private::create_file(
            &lock_path,
            warden_store::private::Existing::Keep,
        )
        .map_err(|e| Error::Config(format!("could not open {}: {e}", lock_path.display())))?;
        lock.lock()
            .map_err(|e| Error::Config(format!("could not lock {}: {e}", lock_path.display())))?;
        let mut config = Config::load(path)?;
        let out = change(&mut config)?;
        config.save(path)?;
        // The lock ends with the file handle.
        drop(lock);
        Ok(out)
    }

    /// Adds a server to the file under its lock; a name taken there is a
    /// conflict. Blocking: call it off the async runtime.
    pub fn add_server_to(path: &Path, name: &str, spec: ServerSpec) -> Result<()> {
        Config::update(path, |file| {
            if file.servers.contains_key(name) {
                return Err(server_exists(name));
            }
            file.servers.insert(name.to_string(), spec);
            Ok(())
        })
    }

    /// Removes a server from the file under its lock. Blocking, like
    /// [`Config::add_server_to`].
    pub fn remove_server_from(path: &Path, name: &str) -> Result<()> {
        Config::update(path, |file| match file.servers.remove(name) {
            Some(_) => Ok(()),
            None => Err(Error::NotFound(format!("no server is named {name:?}"))),
        })
    }

    /// Writes atomically (temp file + rename) with mode 0600.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = toml::to_string_pretty(self)
            .map_err(|e| Error::Config(format!("could not write the configuration: {e}")))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Config(format!("could not create {}: {e}", dir.display())))?;
        // A temporary file of this write's own, created private: another
        // process saving at the same moment has its own.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let tmp: PathBuf = path.with_extension(format!("toml.{}-{nanos}.tmp", std::process::id()));
        let written =
            warden_store::private::create_file(&tmp, warden_store::private::Existing::Refuse)
                .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
                .map_err(|e| Error::Config(format!("could not write {}: {e}", tmp.display())))
                .and_then(|()| {
                    std::fs::rename(&tmp, path).map_err(|e| {
                        Error::Config(format!("could not replace {}: {e}", path.display()))
                    })
                });
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    pub fn listen_addr(&self) -> Result<SocketAddr> {
        self.gateway
            .listen
            .parse()
            .map_err(|_| Error::Config(format!("bad listen address {:?}", self.gateway.listen)))
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// A server name already in use.
pub fn server_exists(name: &str) -> Error {
    Error::Conflict(format!(
        "a server named {name:?} already exists; remove it first or pick another name"
    ))
}

/// The settings of `config.toml` an edit of the file could loosen: how
/// long a call waits for a person, whether approval requests show as
/// notifications, and how long the activity log is kept. A value from the
/// file applies at once when it is at least as strict as what an admin last
/// approved; a looser one waits for an admin's approval (`warden config
/// approve`), and the approved value stays in force meanwhile.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ts_rs::TS)]
pub struct Guarded {
    #[serde(default = "default_approval_timeout")]
    pub approval_timeout_secs: u64,
    #[serde(default = "default_true")]
    pub desktop_notifications: bool,
    /// `None`: kept for good.
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// `None`: no limit.
    #[serde(default)]
    pub max_rows: Option<i64>,
    /// Which client document Warden presents to authorization servers
    /// (`oauth.client_metadata_url`): any other one waits, since it decides
    /// where a provider sends the person's sign-in. `None`: Warden's own
    /// registration.
    #[serde(default)]
    pub client_metadata_url: Option<String>,
}

impl Default for Guarded {
    /// What holds before any admin approved anything: Warden's defaults.
    fn default() -> Self {
        Guarded::of(&Config::default())
    }
}

/// A looser value the file asks for, kept back until an admin approves it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ts_rs::TS)]
pub struct HeldSetting {
    /// The setting as the file names it, e.g. `approvals.timeout_secs`.
    pub setting: String,
    /// What the file asks for, in words.
    pub wanted: String,
    /// What stays in force meanwhile, in words.
    pub kept: String,
}

impl Guarded {
    pub fn of(config: &Config) -> Guarded {
        Guarded {
            approval_timeout_secs: config.approvals.timeout_secs,
            desktop_notifications: config.approvals.desktop_notifications,
            retention_days: config.activity.retention_days,
            max_rows: config.activity.max_rows,
            client_metadata_url: config.oauth.client_metadata_url.clone(),
        }
    }

    /// A hash of these values, so an approval covers exactly what was shown.
    pub fn hash(&self) -> String {
        use sha2::Digest;
        let text = serde_json::to_string(self).unwrap_or_default();
        hex::encode(sha2::Sha256::digest(text.as_bytes()))
    }
}

/// A limit where `None` is the strictest value (keep everything).
fn keep_looser(wanted: Option<i64>, approved: Option<i64>) -> bool {
    match (wanted, approved) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(w), Some(a)) => w < a,
    }
}

fn days_words(days: Option<u32>) -> String {
    match days {
        None => "kept for good".into(),
        Some(1) => "1 day".into(),
        Some(d) => format!("{d} days"),
    }
}

fn rows_words(rows: Option<i64>) -> String {
    match rows {
        None => "no limit".into(),
        Some(1) => "1 row".into(),
        Some(r) => format!("{r} rows"),
    }
}

impl Config {
    /// Puts the approved value in place of every guarded setting the file
    /// loosens, and says which ones it held back.
    pub fn hold_loosened(&mut self, approved: &Guarded) -> Vec<HeldSetting> {
        let mut held = Vec::new();
        let a = &mut self.approvals;
        if a.timeout_secs > approved.approval_timeout_secs {
            held.push(HeldSetting {
                setting: "approvals.timeout_secs".into(),
                wanted: format!("calls that wait up to {} s for a person", a.timeout_secs),
                kept: format!("{} s", approved.approval_timeout_secs),
            });
            a.timeout_secs = approved.approval_timeout_secs;
        }
        if !a.desktop_notifications && approved.desktop_notifications {
            held.push(HeldSetting {
                setting: "approvals.desktop_notifications".into(),
                wanted: "no notification when a call waits for a person".into(),
                kept: "notifications on".into(),
            });
            a.desktop_notifications = true;
        }
        let r = &mut self.activity;
        if keep_looser(
            r.retention_days.map(i64::from),
            approved.retention_days.map(i64::from),
        ) {
            held.push(HeldSetting {
                setting: "activity.retention_days".into(),
                wanted: format!("activity kept for only {}", days_words(r.retention_days)),
                kept: days_words(approved.retention_days),
            });
            r.retention_days = approved.retention_days;
        }
        if keep_looser(r.max_rows, approved.max_rows) {
            held.push(HeldSetting {
                setting: "activity.max_rows".into(),
                wanted: format!("only the newest {} of activity", rows_words(r.max_rows)),
                kept: rows_words(approved.max_rows),
            });
            r.max_rows = approved.max_rows;
        }
        let o = &mut self.oauth;
        if o.client_metadata_url.is_some() && o.client_metadata_url != approved.client_metadata_url
        {
            held.push(HeldSetting {
                setting: "oauth.client_metadata_url".into(),
                wanted: format!(
                    "sign-ins to servers as the client described at {}",
                    o.client_metadata_url.as_deref().unwrap_or_default()
                ),
                kept: approved
                    .client_metadata_url
                    .clone()
                    .unwrap_or_else(|| "Warden's own registration".into()),
            });
            o.client_metadata_url = approved.client_metadata_url.clone();
        }
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_looser_setting_waits_and_a_stricter_one_applies() {
        let approved = Guarded::default();
        let mut c = Config::default();
        c.approvals.timeout_secs = 3600;
        c.approvals.desktop_notifications = false;
        c.activity.retention_days = Some(1);
        c.activity.max_rows = Some(10);
        c.oauth.client_metadata_url = Some("https://attacker.example/client.json".into());
        let held = c.hold_loosened(&approved);
        let names: Vec<&str> = held.iter().map(|h| h.setting.as_str()).collect();
        assert_eq!(
            names,
            [
                "approvals.timeout_secs",
                "approvals.desktop_notifications",
                "activity.retention_days",
                "activity.max_rows",
                "oauth.client_metadata_url"
            ]
        );
        // An approval written before a setting was guarded reads with the
        // default for it.
        let old: Guarded = serde_json::from_str(r#"{"approval_timeout_secs":60}"#).expect("reads");
        assert_eq!(old.approval_timeout_secs, 60);
        assert!(old.desktop_notifications && old.client_metadata_url.is_none());
        assert_eq!(Guarded::of(&c), approved, "the approved values stay");

        // Stricter than approved: applies without anyone's approval.
        let mut c = Config::default();
        c.approvals.timeout_secs = 5;
        assert!(c.hold_loosened(&approved).is_empty());
        assert_eq!(c.approvals.timeout_secs, 5);

        // Once approved, the same values apply; a shorter keep than the
        // approved one waits again, a longer one does not.
        let mut wanted = Config::default();
        wanted.activity.retention_days = Some(30);
        let approved = Guarded::of(&wanted);
        let mut c = wanted.clone();
        assert!(c.hold_loosened(&approved).is_empty());
        c.activity.retention_days = Some(7);
        assert_eq!(c.hold_loosened(&approved).len(), 1);
        assert_eq!(c.activity.retention_days, Some(30));
        c.activity.retention_days = None;
        assert!(c.hold_loosened(&approved).is_empty());
    }

    #[test]
    fn a_remote_servers_consent_covers_its_address_and_every_header() {
        let mut spec = ServerSpec {
            url: Some("https://mcp.example.com/mcp".into()),
            ..Default::default()
        };
        let bare = spec.consent_hash().expect("a remote server needs consent");
        spec.headers
            .insert("Authorization".into(), "keychain:work-token".into());
        let with_secret = spec.consent_hash().expect("consent");
        assert_ne!(bare, with_secret);
        spec.headers.insert("X-Team".into(), "blue".into());
        assert_ne!(spec.consent_hash().as_deref(), Some(with_secret.as_str()));
        spec.url = Some("https://elsewhere.example:8443/mcp".into());
        let subject = spec.consent_subject().expect("words for the admin");
        assert!(
            subject.starts_with("host: elsewhere.example:8443\n"),
            "{subject}"
        );
        assert!(
            subject.contains("header Authorization: the secret work-token"),
            "{subject}"
        );
        assert!(subject.contains("header X-Team: blue"), "{subject}");

        spec.headers.insert("Host".into(), "evil.example".into());
        assert!(spec.validate("work").is_err(), "a Host header is refused");
        assert!(validate_url("https://good.example@evil.example/mcp").is_err());
    }

    #[test]
    fn errors_name_the_file_line_and_field() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[gateway]\nlisten = \"127.0.0.1:1\"\n\n[servers.files]\ncomand = \"x\"\n",
        )
        .expect("write config");
        let err = Config::load(&path)
            .expect_err("a misspelled field must be refused")
            .to_string();
        assert!(err.contains("config.toml"), "{err}");
        assert!(err.contains("line 5"), "{err}");
        assert!(err.contains("comand"), "{err}");
    }

    #[test]
    fn refuses_non_loopback_listen_and_plain_http_remotes() {
        let mut c = Config::default();
        c.gateway.listen = "0.0.0.0:7411".into();
        assert!(c.validate().is_err());
        assert!(validate_url("http://example.com/mcp").is_err());
        assert!(validate_url("http://127.0.0.1:9/mcp").is_ok());
        assert!(validate_url("https://example.com/mcp").is_ok());
        assert!(validate_url("file:///etc/passwd").is_err());
    }

    #[test]
    fn server_names_are_safe_prefixes() {
        for good in ["files", "a", "github-work", "s3"] {
            assert!(validate_server_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Files",
            "a__b",
            "a_b",
            "-a",
            "a-",
            "a--b",
            &"x".repeat(33),
        ] {
            assert!(validate_server_name(bad).is_err(), "{bad}");
        }
    }
}
