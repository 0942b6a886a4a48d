//! The config file (`/etc/rbackup.toml`, or `--config PATH`): what a scheduled unit needs
//! so that its command line carries nothing but the subcommand (and no secret ever).
//!
//! Owns: the file's schema, parsing it (TOML, unknown keys refused with the key and line),
//! and the safety checks on the file itself. Not for: merging it with the command line (a
//! flag given wins; the command does that), reading the files it names, or connecting.
//!
//! The file holds no secret itself: only where secrets are (`defaults_file` with the
//! connection options and password, `identity_file`, `passphrase_file`; S3 credentials come
//! from the environment, e.g. a systemd `EnvironmentFile=`). So it may be world-readable
//! (0644). It must not be writable by anyone else: whoever can change it can send the
//! backups to their own repository or point `defaults_file` at their own server. Like sshd's
//! StrictModes, loading refuses a file writable by group or others, or owned by someone
//! other than root or the user running rbackup. Paths in it must be absolute (a timer runs
//! in `/`, so a relative path would mean something else there than in a shell).
//!
//! ```toml
//! repository = "s3://backups/db1"          # or a path, or file:///...
//! defaults_file = "/etc/rbackup/client.cnf"  # [client]/[rbackup] option groups, mode 0600
//! identity_file = "/etc/rbackup/identity"    # to read backups (verify, drill, copy, prune)
//! writer_key_file = "/etc/rbackup/writer.key" # to add backups (backup, the archiver)
//! metrics_file = "/var/lib/prometheus/node-exporter/rbackup.prom"
//! log_format = "json"
//! copy_to = "/mnt/offsite/rbackup"           # destination of `rbackup copy`
//! copy_to_writer_key_file = "/etc/rbackup/offsite-writer.key"
//!
//! [backup]
//! databases = ["shop", "crm"]                # default: all databases and the accounts
//! threads = 4
//!
//! [retention]                                # `rbackup prune` with no --keep-* flag
//! keep_daily = 7
//! keep_weekly = 5
//! keep_monthly = 12
//! keep_yearly = "unlimited"
//! keep_within = "2d"
//!
//! [check]                                    # `rbackup check` with no --max-* flag
//! max_age = "26h"
//! max_binlog_lag = "15min"
//! max_drill_age = "8d"
//! ```

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, de};

use super::check::Limits;
use super::duration::CalendarDuration;
use super::log::LogFormat;
use super::retention::{Count, Policy};

/// Where rbackup looks when no `--config` is given.
pub const DEFAULT_PATH: &str = "/etc/rbackup.toml";

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `--repo`: a path, `file:///...` or `s3://bucket/prefix`.
    pub repository: Option<String>,
    /// An option file with the connection options (`[client]`, `[rbackup]` groups), as
    /// `--defaults-file`.
    pub defaults_file: Option<PathBuf>,
    pub identity_file: Option<PathBuf>,
    pub passphrase_file: Option<PathBuf>,
    /// The writer key `backup` (and the archiver) use on a database host.
    pub writer_key_file: Option<PathBuf>,
    pub recipients_file: Option<PathBuf>,
    pub metrics_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "log_format")]
    pub log_format: Option<LogFormat>,
    /// The repository `rbackup copy` copies to when no `--to` is given.
    pub copy_to: Option<String>,
    /// The destination's writer key for `rbackup copy` (`--to-writer-key-file`).
    pub copy_to_writer_key_file: Option<PathBuf>,
    /// A reader identity of the destination (`--to-identity-file`), instead of its writer
    /// key.
    pub copy_to_identity_file: Option<PathBuf>,
    #[serde(default)]
    pub backup: BackupSection,
    #[serde(default)]
    pub retention: RetentionSection,
    #[serde(default)]
    pub check: CheckSection,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSection {
    /// Empty: every database (and the accounts).
    #[serde(default)]
    pub databases: Vec<String>,
    pub threads: Option<u32>,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    #[serde(default, deserialize_with = "count")]
    pub keep_last: Count,
    #[serde(default, deserialize_with = "count")]
    pub keep_hourly: Count,
    #[serde(default, deserialize_with = "count")]
    pub keep_daily: Count,
    #[serde(default, deserialize_with = "count")]
    pub keep_weekly: Count,
    #[serde(default, deserialize_with = "count")]
    pub keep_monthly: Count,
    #[serde(default, deserialize_with = "count")]
    pub keep_yearly: Count,
    #[serde(default, deserialize_with = "duration")]
    pub keep_within: Option<CalendarDuration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSection {
    #[serde(default, deserialize_with = "duration")]
    pub max_age: Option<CalendarDuration>,
    #[serde(default, deserialize_with = "duration")]
    pub max_binlog_lag: Option<CalendarDuration>,
    #[serde(default, deserialize_with = "duration")]
    pub max_drill_age: Option<CalendarDuration>,
}

impl Config {
    /// The `[retention]` section as a policy (empty when the section is absent).
    pub fn retention_policy(&self) -> Policy {
        let r = &self.retention;
        Policy {
            last: r.keep_last,
            hourly: r.keep_hourly,
            daily: r.keep_daily,
            weekly: r.keep_weekly,
            monthly: r.keep_monthly,
            yearly: r.keep_yearly,
            within: r.keep_within,
        }
    }

    /// The `[check]` section as limits.
    pub fn check_limits(&self) -> Limits {
        Limits {
            max_age: self.check.max_age,
            max_binlog_lag: self.check.max_binlog_lag,
            max_drill_age: self.check.max_drill_age,
        }
    }
}

/// Why a config file was refused; `Display` names the file (and, for a parse error, the
/// line, column and key).
#[derive(Debug)]
pub struct ConfigError {
    pub path: PathBuf,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config file {}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Loads `--config PATH`: the file must exist.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let err = |message: String| ConfigError {
        path: path.to_path_buf(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    check_ownership(&meta).map_err(err)?;
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    parse(&text).map_err(err)
}

/// Loads `/etc/rbackup.toml` if it exists: `Ok(None)` when it does not.
pub fn load_default() -> Result<Option<Config>, ConfigError> {
    let path = Path::new(DEFAULT_PATH);
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        _ => load(path).map(Some),
    }
}

fn check_ownership(meta: &std::fs::Metadata) -> Result<(), String> {
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "refusing a config file writable by {} (mode {mode:04o}): whoever can change it can redirect the \
             backups; run chmod go-w on it",
            if mode & 0o002 != 0 {
                "everyone"
            } else {
                "its group"
            }
        ));
    }
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != 0 && meta.uid() != me {
        return Err(format!(
            "refusing a config file owned by uid {} (neither root nor the user running rbackup, uid {me})",
            meta.uid()
        ));
    }
    Ok(())
}

/// Parses the file's text (the checks of `load` on the file itself excepted).
pub fn parse(text: &str) -> Result<Config, String> {
    let config: Config = toml::from_str(text).map_err(|e| describe(text, &e))?;
    let paths = [
        ("defaults_file", &config.defaults_file),
        ("identity_file", &config.identity_file),
        ("passphrase_file", &config.passphrase_file),
        ("writer_key_file", &config.writer_key_file),
        ("copy_to_writer_key_file", &config.copy_to_writer_key_file),
        ("copy_to_identity_file", &config.copy_to_identity_file),
        ("recipients_file", &config.recipients_file),
        ("metrics_file", &config.metrics_file),
    ];
    for (key, path) in paths {
        if let Some(p) = path
            && !p.is_absolute()
        {
            return Err(format!(
                "{key} = {:?}: must be an absolute path",
                p.display().to_string()
            ));
        }
    }
    for (key, repo) in [
        ("repository", &config.repository),
        ("copy_to", &config.copy_to),
    ] {
        if let Some(r) = repo
            && !r.contains("://")
            && !Path::new(r).is_absolute()
        {
            return Err(format!(
                "{key} = {r:?}: must be an absolute path or a URL (file://, s3://)"
            ));
        }
    }
    if config.backup.threads == Some(0) {
        return Err("[backup] threads = 0: must be at least 1".into());
    }
    Ok(config)
}

/// toml's message with its position as "line L, column C", on one line.
fn describe(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_string(),
    }
}

fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Count, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        N(i64),
        S(String),
    }
    match Raw::deserialize(d)? {
        Raw::N(n) if n >= 0 && n <= u32::MAX as i64 => Ok(if n == 0 {
            Count::Off
        } else {
            Count::N(n as u32)
        }),
        Raw::N(n) => Err(de::Error::custom(format!(
            "invalid count {n}: expected 0 or more, or \"unlimited\""
        ))),
        Raw::S(s) => s.parse().map_err(de::Error::custom),
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<CalendarDuration>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map(Some).map_err(de::Error::custom)
}

fn log_format<'de, D: Deserializer<'de>>(d: D) -> Result<Option<LogFormat>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map(Some).map_err(de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const FULL: &str = r#"
repository = "s3://backups/db1"
defaults_file = "/etc/rbackup/client.cnf"
identity_file = "/etc/rbackup/identity"
metrics_file = "/var/lib/node-exporter/rbackup.prom"
log_format = "json"
copy_to = "/mnt/offsite/rbackup"

[backup]
databases = ["shop", "crm"]
threads = 4

[retention]
keep_daily = 7
keep_weekly = 5
keep_yearly = "unlimited"
keep_within = "2d"

[check]
max_age = "26h"
max_binlog_lag = "15min"
max_drill_age = "8d"
"#;

    #[test]
    fn a_full_file_parses_into_policy_and_limits() {
        let c = parse(FULL).unwrap();
        assert_eq!(c.repository.as_deref(), Some("s3://backups/db1"));
        assert_eq!(
            c.defaults_file,
            Some(PathBuf::from("/etc/rbackup/client.cnf"))
        );
        assert_eq!(c.log_format, Some(LogFormat::Json));
        assert_eq!(c.backup.databases, vec!["shop", "crm"]);
        assert_eq!(c.backup.threads, Some(4));
        let p = c.retention_policy();
        assert_eq!(
            (p.daily, p.weekly, p.monthly, p.yearly),
            (Count::N(7), Count::N(5), Count::Off, Count::Unlimited)
        );
        assert_eq!(p.within, Some("2d".parse().unwrap()));
        let l = c.check_limits();
        assert_eq!(l.max_binlog_lag, Some("15min".parse().unwrap()));
        assert_eq!(l.max_drill_age, Some("8d".parse().unwrap()));
    }

    #[test]
    fn an_empty_file_is_valid_and_its_policy_empty() {
        let c = parse("").unwrap();
        assert_eq!(c, Config::default());
        assert!(c.retention_policy().is_empty());
        assert_eq!(c.check_limits(), Limits::default());
    }

    #[test]
    fn unknown_keys_are_refused_naming_key_and_line() {
        let e = parse("repository = \"/srv/r\"\n\n[retention]\nkeep_daily = 7\nkeep_dayly = 3\n")
            .unwrap_err();
        assert!(e.starts_with("line 5, column 1: "), "{e}");
        assert!(e.contains("unknown field `keep_dayly`"), "{e}");
        let e = parse("repo = \"/srv/r\"\n").unwrap_err();
        assert!(e.starts_with("line 1,") && e.contains("`repo`"), "{e}");
        let e = parse("[retention]\n[retentoin]\n").unwrap_err();
        assert!(e.starts_with("line 2,") && e.contains("`retentoin`"), "{e}");
        // Secrets inline are not a thing: a password key is unknown.
        let e = parse("password = \"hunter2\"\n").unwrap_err();
        assert!(
            e.contains("unknown field `password`") && !e.contains("hunter2"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_are_refused_naming_the_line() {
        let e = parse("[check]\nmax_age = \"26 hours\"\n").unwrap_err();
        assert!(
            e.starts_with("line 2,") && e.contains("invalid duration \"26 hours\""),
            "{e}"
        );
        let e = parse("[retention]\nkeep_last = -1\n").unwrap_err();
        assert!(
            e.starts_with("line 2,") && e.contains("invalid count -1"),
            "{e}"
        );
        let e = parse("[retention]\nkeep_last = \"all\"\n").unwrap_err();
        assert!(e.contains("invalid count \"all\""), "{e}");
        let e = parse("log_format = \"xml\"\n").unwrap_err();
        assert!(e.starts_with("line 1,") && e.contains("\"xml\""), "{e}");
        let e = parse("metrics_file = \"rbackup.prom\"\n").unwrap_err();
        assert!(e.contains("metrics_file") && e.contains("absolute"), "{e}");
        let e = parse("repository = \"backups\"\n").unwrap_err();
        assert!(e.contains("repository") && e.contains("absolute"), "{e}");
        assert!(parse("repository = \"file:///srv/r\"\n").is_ok());
        assert!(
            parse("[backup]\nthreads = 0\n")
                .unwrap_err()
                .contains("threads")
        );
        assert!(
            parse("not toml at all [")
                .unwrap_err()
                .starts_with("line 1,")
        );
    }

    #[test]
    fn a_file_writable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rbackup.toml");
        std::fs::write(&path, FULL).unwrap();
        for (mode, ok) in [(0o600, true), (0o644, true), (0o664, false), (0o646, false)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            match load(&path) {
                Ok(c) => assert!(ok, "mode {mode:o} accepted: {c:?}"),
                Err(e) => {
                    assert!(!ok, "mode {mode:o} refused: {e}");
                    let e = e.to_string();
                    assert!(
                        e.contains(&path.display().to_string()) && e.contains("chmod go-w"),
                        "{e}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_missing_explicit_file_is_an_error_naming_it() {
        let e = load(Path::new("/nonexistent/rbackup.toml")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/rbackup.toml"), "{e}");
    }
}
