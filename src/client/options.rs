//! What to connect to: host, port, socket, protocol, TLS, account and password, as resolved
//! from a command line and option files (`options`) for any of the programs.
//!
//! Plain data: `Secret` never prints itself, not even in `Debug`. Not for: connecting (see
//! `conn`) or the rules that pick a transport from these fields (see `conn::open`).

use std::fmt;
use std::path::PathBuf;

/// A password that never prints itself, not even in `Debug`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Password {
    /// No password given anywhere.
    #[default]
    None,
    /// From `-pSECRET`, `--password=SECRET`, an option file or `MYSQL_PWD`.
    Given(Secret),
    /// A bare `-p`/`--password`: ask on the terminal before connecting.
    Prompt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Socket,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    Disabled,
    /// Use TLS when the server offers it (mysqldump's default).
    #[default]
    Preferred,
    Required,
    VerifyCa,
    VerifyIdentity,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SslOptions {
    pub mode: SslMode,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionOptions {
    /// `-h/--host`; `None` or `localhost` means the unix socket unless `--protocol=tcp`.
    pub host: Option<String>,
    /// `-P/--port`; 0 means the default 3306.
    pub port: u16,
    pub user: Option<String>,
    pub password: Password,
    pub socket: Option<PathBuf>,
    pub protocol: Option<Protocol>,
    pub ssl: SslOptions,
    /// `-C/--compress`: protocol compression.
    pub compress: bool,
    /// `--default-character-set`, `utf8mb4` unless given.
    pub character_set: String,
    /// `--init-command`: run on every connection after connecting.
    pub init_command: Option<String>,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            host: None,
            port: 0,
            user: None,
            password: Password::None,
            socket: None,
            protocol: None,
            ssl: SslOptions::default(),
            compress: false,
            character_set: "utf8mb4".into(),
            init_command: None,
        }
    }
}
