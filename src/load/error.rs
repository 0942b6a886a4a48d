//! Errors of a load, each with the exit code `rload` ends with.
//!
//! Exit codes follow rdump's (`crate::error::exit`) where the meaning is the same:
//! 1 usage, or a load refused before any change (objects already exist, an interrupted load
//! without `--resume`, a dump that cannot seed a replica); 2 a server error (including
//! replication errors, with the server's message); 3 data not loaded as dumped (a chunk's
//! row count differs from the manifest, or the server warned about a value); 5 the dump's
//! files (manifest missing, incomplete or of an unknown version, a file missing, of the wrong
//! size or checksum, a damaged zstd frame); 128+N killed by signal N.
//!
//! No variant holds a password: server errors carry the address and what was being done,
//! never the statement text of a CHANGE MASTER.

use std::path::PathBuf;

use crate::error::{Error, exit};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Errors shared with rdump: connecting, server errors, usage.
    #[error(transparent)]
    Rdump(#[from] Error),

    /// The dump directory is not a loadable dump, or one of its files is damaged.
    #[error("{}: {message}", .path.display())]
    Dump { path: PathBuf, message: String },

    /// The load was refused before anything changed on the target.
    #[error("{0}")]
    Refused(String),

    /// Rows did not load as dumped (row count or server warnings).
    #[error("{server}: {context}: {message}")]
    Data {
        server: String,
        context: String,
        message: String,
    },

    /// Replication could not be set up or stopped with an error.
    #[error("{server}: replication: {message}")]
    Replication { server: String, message: String },

    /// A signal stopped the load.
    #[error("interrupted by {name}")]
    Interrupted { name: &'static str, signal: i32 },
}

impl LoadError {
    pub fn exit_code(&self) -> i32 {
        match self {
            LoadError::Rdump(e) => e.exit_code(),
            LoadError::Dump { .. } => exit::WRITE_ERROR,
            LoadError::Refused(_) => exit::USAGE,
            LoadError::Data { .. } => exit::CONSISTENCY,
            LoadError::Replication { .. } => exit::MYSQL_ERROR,
            LoadError::Interrupted { signal, .. } => 128 + signal,
        }
    }

    pub fn dump(path: impl Into<PathBuf>, message: impl Into<String>) -> LoadError {
        LoadError::Dump {
            path: path.into(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = LoadError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(LoadError::dump("/d/x", "gone").exit_code(), 5);
        assert_eq!(LoadError::Refused("x".into()).exit_code(), 1);
        assert_eq!(
            LoadError::Rdump(Error::Usage("u".into())).exit_code(),
            exit::USAGE
        );
        assert_eq!(
            LoadError::Interrupted {
                name: "SIGTERM",
                signal: 15
            }
            .exit_code(),
            143
        );
        assert_eq!(LoadError::dump("/d/x", "gone").to_string(), "/d/x: gone");
    }
}
