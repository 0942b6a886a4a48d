//! Errors of a dump, each carrying its context (server, object, what the server said) and
//! the exit code mysqldump uses for that kind of failure.
//!
//! Not for: printing. `main` prints `rdump: <error>` once and exits with `exit_code()`.
//! No variant ever holds a password: connection errors carry the address, never the options.

use std::io;
use std::path::PathBuf;

/// mysqldump's exit codes (client/mysqldump.c): scripts test for these.
pub mod exit {
    pub const OK: i32 = 0;
    pub const USAGE: i32 = 1;
    pub const MYSQL_ERROR: i32 = 2;
    pub const CONSISTENCY: i32 = 3;
    pub const OUT_OF_MEMORY: i32 = 4;
    pub const WRITE_ERROR: i32 = 5;
    pub const ILLEGAL_TABLE: i32 = 6;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),

    /// Connecting failed: wrong password, too many connections, TLS refused. Every error
    /// reads as mariadb-dump's `Got error: 1045: "Access denied ..." when ...`, with the
    /// server added.
    #[error("Got error: {message} when trying to connect to {server}")]
    Connect { server: String, message: String },

    /// Nothing answered the connection at all (no socket, refused, unknown host), worded
    /// as mysqldump's: `Got error: 2002: "Can't connect to local server through socket
    /// '/run/mysqld/mysqld.sock' (2)" when trying to connect`; the message names the
    /// server.
    #[error("Got error: {message} when trying to connect")]
    Unreachable { message: String },

    /// The server answered an SQL statement with an error.
    #[error("{server}: Got error: {message} when {context}")]
    Server {
        server: String,
        /// What we were doing, naming the object: "dumping table `db`.`t`".
        context: String,
        /// The server's error, with its code, as mariadb-dump shows it:
        /// `1146: "Table 'db.t' doesn't exist"` (see [`describe`]).
        message: String,
    },

    /// Reading rows failed after the SELECT started (lost connection, KILL): mysqldump
    /// reports these as consistency failures (exit 3), with the row reached.
    #[error("{server}: Got error: {message} when {context} at row: {row}")]
    Rows {
        server: String,
        context: String,
        message: String,
        row: u64,
    },

    /// Binary logging is off but coordinates were asked for (mysqldump exits 2).
    #[error("{server}: Error: Binlogging on server not active ({option} needs log_bin)")]
    BinlogOff {
        server: String,
        option: &'static str,
    },

    /// A database or table named on the command line does not exist.
    #[error("{server}: {message}")]
    NotFound { server: String, message: String },

    /// A table named on the command line does not exist (mysqldump's exit code 6).
    #[error("{server}: {message}")]
    IllegalTable { server: String, message: String },

    /// The dump could not be kept consistent (e.g. coordinates could not be read).
    #[error("{server}: {message}")]
    Consistency { server: String, message: String },

    /// `--force` went on past errors (each printed when it happened): the dump is not
    /// complete. Exits with the first error's code, as mysqldump.
    #[error("{server}: dump incomplete: {count} error(s) skipped under --force: {messages}")]
    Incomplete {
        server: String,
        count: usize,
        /// The errors, joined with "; ".
        messages: String,
        code: i32,
    },

    /// A signal (SIGINT, SIGTERM, SIGHUP) stopped the dump; exits 128 + the signal number,
    /// as a shell reports a killed command.
    #[error("interrupted by {name}; no complete dump was written")]
    Interrupted { name: &'static str, signal: i32 },

    /// Writing the output failed (disk full, permission, closed pipe).
    #[error("error writing {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::Connect { .. } | Error::Unreachable { .. } | Error::Server { .. } => {
                exit::MYSQL_ERROR
            }
            Error::NotFound { .. } => exit::MYSQL_ERROR,
            Error::IllegalTable { .. } => exit::ILLEGAL_TABLE,
            Error::Consistency { .. } | Error::Rows { .. } => exit::CONSISTENCY,
            Error::BinlogOff { .. } => exit::MYSQL_ERROR,
            Error::Write { .. } => exit::WRITE_ERROR,
            Error::Incomplete { code, .. } => *code,
            Error::Interrupted { signal, .. } => 128 + signal,
        }
    }

    /// The server's error code of an SQL statement's error (`Error::Server`), read from
    /// its message (`1213: "..."`, as `describe` and the wire client write it).
    pub fn sql_error_code(&self) -> Option<u16> {
        match self {
            Error::Server { message, .. } => server_code(message),
            _ => None,
        }
    }

    pub fn write(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Write {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A server's error as mariadb-dump shows it after `Got error: `: `1146: "Table 'db.t'
/// doesn't exist"`. The wire client's errors read the same.
pub fn server_error(code: u16, message: &str) -> String {
    format!("{code}: \"{message}\"")
}

/// The code of a message made by [`server_error`].
fn server_code(message: &str) -> Option<u16> {
    let (code, rest) = message.split_once(": \"")?;
    (!rest.is_empty()).then_some(())?;
    code.parse().ok()
}

/// Formats a mysql_async error the way an operator expects to read it: the server's code
/// and message ([`server_error`]), or the I/O or driver problem.
pub fn describe(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(s) => server_error(s.code, &s.message),
        mysql_async::Error::Io(io) => format!("Lost connection to server ({io})"),
        mysql_async::Error::Driver(d) => format!("client error: {d}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn sql_error_code_is_read_from_the_message() {
        let e = |message: &str| Error::Server {
            server: "s".into(),
            context: "c".into(),
            message: message.into(),
        };
        assert_eq!(
            e(&super::server_error(
                1213,
                "Deadlock found when trying to get lock"
            ))
            .sql_error_code(),
            Some(1213)
        );
        assert_eq!(e("Lost connection to server (eof)").sql_error_code(), None);
        assert_eq!(Error::Usage("1213: \"x\"".into()).sql_error_code(), None);
    }

    #[test]
    fn errors_read_as_mariadb_dumps_got_error() {
        let e = Error::Server {
            server: "localhost via /s.sock".into(),
            context: "flushing tables".into(),
            message: super::server_error(1227, "Access denied; you need the RELOAD privilege"),
        };
        assert_eq!(
            e.to_string(),
            "localhost via /s.sock: Got error: 1227: \"Access denied; you need the RELOAD \
             privilege\" when flushing tables"
        );
    }
}
