//! `--log-format text|json`: rbackup's progress and error records, one per line, either for
//! a person (text) or for a log shipper (JSON: one object per line with `time`, `level`,
//! `operation`, `message` and `fields`).
//!
//! Owns: the record's shape, both renderings, and keeping secrets out of them. Not for:
//! deciding what to log (the commands do), log rotation or shipping (journald and the
//! shipper do), or rdump's/rload's own messages.
//!
//! Secrets: a field holding a `Secret` (from `crate::client::options`) becomes
//! `Value::Redacted` without ever reading the secret, and prints as `***`; a field whose name
//! says it holds one (`password`, `passphrase`, `secret`, `token`, `identity`) prints as
//! `***` whatever it holds, as a second line of defence (except names ending in `_file` or
//! `_path`: where a secret is kept is not secret, and says where to look). Messages are the caller's text and
//! must not carry secrets (none of ours do: errors name files and servers, never contents).

use std::fmt;
use std::io::{self, Write};
use std::path::Path;
use std::str::FromStr;
use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::client::options::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!(
                "invalid log format {s:?}: expected \"text\" or \"json\""
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// A field's value. `Redacted` holds nothing: a secret is dropped before the record exists.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    Redacted,
}

const REDACTED: &str = "***";

impl From<&Secret> for Value {
    fn from(_: &Secret) -> Value {
        Value::Redacted
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}
impl From<&Path> for Value {
    fn from(p: &Path) -> Value {
        Value::Str(p.display().to_string())
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(n)
    }
}
impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::UInt(n)
    }
}
impl From<usize> for Value {
    fn from(n: usize) -> Value {
        Value::UInt(n as u64)
    }
}
impl From<f64> for Value {
    fn from(n: f64) -> Value {
        Value::Float(n)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

fn secret_name(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    let names_a_file = k.ends_with("_file") || k.ends_with("_path");
    !names_a_file
        && ["password", "passphrase", "secret", "token", "identity"]
            .iter()
            .any(|s| k.contains(s))
}

impl Value {
    fn shown(&self, key: &str) -> &Value {
        if secret_name(key) {
            &Value::Redacted
        } else {
            self
        }
    }

    fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Str(s) => s.as_str().into(),
            Value::Int(n) => (*n).into(),
            Value::UInt(n) => (*n).into(),
            // JSON has no NaN or infinity: those become null.
            Value::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
            }
            Value::Bool(b) => (*b).into(),
            Value::Redacted => REDACTED.into(),
        }
    }
}

impl fmt::Display for Value {
    /// The text rendering: bare when it is one plain word, quoted (Rust escapes) otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => {
                let plain = !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_graphic() && c != '"' && c != '=');
                if plain {
                    f.write_str(s)
                } else {
                    write!(f, "{s:?}")
                }
            }
            Value::Int(n) => write!(f, "{n}"),
            Value::UInt(n) => write!(f, "{n}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Redacted => f.write_str(REDACTED),
        }
    }
}

/// One record as a line (with its newline), in `format`. Pure: the time is given.
pub fn render(
    format: LogFormat,
    time: DateTime<Utc>,
    level: Level,
    operation: &str,
    message: &str,
    fields: &[(&str, Value)],
) -> String {
    let time = time.to_rfc3339_opts(SecondsFormat::Millis, true);
    match format {
        LogFormat::Json => {
            let mut obj = serde_json::Map::new();
            obj.insert("time".into(), time.into());
            obj.insert("level".into(), level.as_str().into());
            obj.insert("operation".into(), operation.into());
            obj.insert("message".into(), message.into());
            let fields: serde_json::Map<String, serde_json::Value> = fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.shown(k).to_json()))
                .collect();
            obj.insert("fields".into(), fields.into());
            let mut line = serde_json::Value::Object(obj).to_string();
            line.push('\n');
            line
        }
        LogFormat::Text => {
            let message = message
                .replace('\\', "\\\\")
                .replace('\n', "\\n")
                .replace('\r', "\\r");
            let mut line = format!(
                "{time} {} {operation}: {message}",
                level.as_str().to_ascii_uppercase()
            );
            for (k, v) in fields {
                line.push_str(&format!(" {k}={}", v.shown(k)));
            }
            line.push('\n');
            line
        }
    }
}

/// Writes records for one operation to one writer (stderr in the commands), a whole line
/// per write so concurrent threads never interleave within a line.
pub struct Logger<W: Write> {
    format: LogFormat,
    operation: String,
    out: Mutex<W>,
}

impl Logger<io::Stderr> {
    pub fn stderr(format: LogFormat, operation: &str) -> Self {
        Logger::new(format, operation, io::stderr())
    }
}

impl<W: Write> Logger<W> {
    pub fn new(format: LogFormat, operation: &str, out: W) -> Self {
        Logger {
            format,
            operation: operation.to_string(),
            out: Mutex::new(out),
        }
    }

    /// Writes one record stamped with the current time. A logger that cannot write returns
    /// the error; the command decides whether that matters.
    pub fn log(&self, level: Level, message: &str, fields: &[(&str, Value)]) -> io::Result<()> {
        self.log_at(Utc::now(), level, message, fields)
    }

    pub fn log_at(
        &self,
        time: DateTime<Utc>,
        level: Level,
        message: &str,
        fields: &[(&str, Value)],
    ) -> io::Result<()> {
        let line = render(self.format, time, level, &self.operation, message, fields);
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        out.write_all(line.as_bytes())?;
        out.flush()
    }

    pub fn info(&self, message: &str, fields: &[(&str, Value)]) -> io::Result<()> {
        self.log(Level::Info, message, fields)
    }
    pub fn warn(&self, message: &str, fields: &[(&str, Value)]) -> io::Result<()> {
        self.log(Level::Warn, message, fields)
    }
    pub fn error(&self, message: &str, fields: &[(&str, Value)]) -> io::Result<()> {
        self.log(Level::Error, message, fields)
    }

    pub fn into_inner(self) -> W {
        self.out.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> DateTime<Utc> {
        "2026-12-02T09:26:34.5Z".parse().unwrap()
    }

    #[test]
    fn json_is_one_object_per_line_with_the_five_keys() {
        let logger = Logger::new(LogFormat::Json, "backup", Vec::new());
        logger
            .log_at(
                t(),
                Level::Info,
                "backup finished\nwith \"quotes\"",
                &[
                    ("id", "3f2a".into()),
                    ("bytes_added", 123_u64.into()),
                    ("ratio", 2.5.into()),
                    ("ok", true.into()),
                ],
            )
            .unwrap();
        logger.log_at(t(), Level::Error, "second", &[]).unwrap();
        let out = String::from_utf8(logger.into_inner()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "time": "2026-12-02T09:26:34.500Z",
                "level": "info",
                "operation": "backup",
                "message": "backup finished\nwith \"quotes\"",
                "fields": {"id": "3f2a", "bytes_added": 123, "ratio": 2.5, "ok": true}
            })
        );
        let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["fields"], serde_json::json!({}));
    }

    #[test]
    fn text_is_one_line_for_a_person() {
        let line = render(
            LogFormat::Text,
            t(),
            Level::Warn,
            "prune",
            "removing 3 backups\nnow",
            &[
                ("repo", "s3://b/p".into()),
                ("reason", "daily backup".into()),
                ("empty", "".into()),
            ],
        );
        assert_eq!(
            line,
            "2026-12-02T09:26:34.500Z WARN prune: removing 3 backups\\nnow repo=s3://b/p reason=\"daily backup\" \
             empty=\"\"\n"
        );
    }

    #[test]
    fn secrets_never_print_in_either_format() {
        let secret = Secret::new("hunter2-very-secret");
        for format in [LogFormat::Text, LogFormat::Json] {
            let line = render(
                format,
                t(),
                Level::Info,
                "backup",
                "connecting",
                &[
                    ("user", "backup".into()),
                    ("auth", (&secret).into()),
                    // A secret passed by mistake as plain text under a telling name.
                    ("password", secret.expose().into()),
                    ("s3_session_token", "tok-123".into()),
                    ("passphrase_file", "/etc/rbackup/pass".into()),
                ],
            );
            assert!(!line.contains("hunter2"), "{line}");
            assert!(!line.contains("tok-123"), "{line}");
            assert_eq!(line.matches("***").count(), 3, "{line}");
            assert!(line.contains("/etc/rbackup/pass"), "{line}");
            assert!(line.contains("backup"), "{line}");
        }
        assert_eq!(format!("{:?}", Value::from(&secret)), "Redacted");
    }

    #[test]
    fn formats_parse_from_the_flag() {
        assert_eq!("json".parse(), Ok(LogFormat::Json));
        assert_eq!("text".parse(), Ok(LogFormat::Text));
        assert!(
            "yaml"
                .parse::<LogFormat>()
                .unwrap_err()
                .contains("\"yaml\"")
        );
    }

    #[test]
    fn non_finite_floats_are_null_in_json() {
        let line = render(
            LogFormat::Json,
            t(),
            Level::Info,
            "verify",
            "m",
            &[("ratio", f64::NAN.into())],
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(v["fields"]["ratio"].is_null());
    }
}
