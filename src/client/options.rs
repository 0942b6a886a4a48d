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
    /// `--tls-version`: the TLS versions allowed, of 1.2 and 1.3 (`None`: both).
    pub tls_versions: Option<Vec<TlsVersion>>,
    /// `--ssl-cipher`: the cipher suites allowed, by their IANA names (OpenSSL names are
    /// translated when read); `None`: rustls's defaults.
    pub ciphers: Option<Vec<String>>,
}

impl SslOptions {
    /// Whether `--tls-version` or `--ssl-cipher` narrowed what TLS may use: only rdump's own
    /// client applies them (mysql_async, used with `--compress`, cannot).
    pub fn restricted(&self) -> bool {
        self.tls_versions.is_some() || self.ciphers.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    /// `TLSv1.2`/`TLSv1.3` as the mysql clients spell them (case-insensitive); `Ok(None)`
    /// for the versions rustls does not speak (TLSv1, TLSv1.1).
    pub fn parse(s: &str) -> Result<Option<TlsVersion>, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tlsv1.2" => Ok(Some(TlsVersion::Tls12)),
            "tlsv1.3" => Ok(Some(TlsVersion::Tls13)),
            "tlsv1" | "tlsv1.0" | "tlsv1.1" => Ok(None),
            _ => Err(()),
        }
    }
}

/// OpenSSL's names of the cipher suites rustls offers, with their IANA names (TLS 1.3
/// suites have one name).
pub const OPENSSL_CIPHER_NAMES: &[(&str, &str)] = &[
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
];

/// The IANA name of a cipher given as OpenSSL or IANA spells it.
pub fn iana_cipher_name(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    OPENSSL_CIPHER_NAMES
        .iter()
        .find(|(openssl, _)| *openssl == upper)
        .map(|(_, iana)| iana.to_string())
        .unwrap_or(upper)
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
