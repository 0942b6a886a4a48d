//! Errors of the repository layer. Each names the object (`data/ab/ab12…`, `index/…`,
//! `snapshots/…`, `config`, `locks/…`) and, when known, the logical file being read, so
//! that a damaged repository says exactly what is lost.
//!
//! Not for: printing or exit codes (the `rbackup` binary maps these: damaged or missing
//! objects exit as rload's damaged dump, 5).

use std::fmt;

pub type Result<T, E = BackupError> = std::result::Result<T, E>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum BackupError {
    /// The storage failed (unreachable, refused, I/O error) on this object.
    #[error("{object}: storage error: {message}")]
    Storage { object: String, message: String },

    /// An object that should exist does not.
    #[error("{object}: missing{}", InFile(.file))]
    Missing {
        object: String,
        file: Option<String>,
    },

    /// An object exists but its bytes are not what its name, MAC or hash says.
    #[error("{object}: damaged: {detail}{}", InFile(.file))]
    Damaged {
        object: String,
        detail: String,
        file: Option<String>,
    },

    /// The keys given do not open this repository (wrong identity or passphrase), or
    /// the operation needs a reader key and only a writer key was given.
    #[error("{0}")]
    Key(String),

    /// Another operation holds a lock that this one needs.
    #[error("{0}")]
    Locked(String),

    /// The repository or an object has a format or version this program does not read,
    /// or the request is invalid (bad URL, repository already exists).
    #[error("{0}")]
    Usage(String),
}

/// ` (needed by <file>)` when a logical file is known.
struct InFile<'a>(&'a Option<String>);

impl fmt::Display for InFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(file) => write!(f, " (needed by {file})"),
            None => Ok(()),
        }
    }
}

impl BackupError {
    pub fn damaged(object: impl Into<String>, detail: impl fmt::Display) -> Self {
        BackupError::Damaged {
            object: object.into(),
            detail: detail.to_string(),
            file: None,
        }
    }

    /// The same error, saying which logical file needed the object.
    pub fn in_file(self, name: &str) -> Self {
        match self {
            BackupError::Missing { object, file: None } => BackupError::Missing {
                object,
                file: Some(name.to_string()),
            },
            BackupError::Damaged {
                object,
                detail,
                file: None,
            } => BackupError::Damaged {
                object,
                detail,
                file: Some(name.to_string()),
            },
            other => other,
        }
    }

    /// True for a damaged or missing object (restore exits as for a damaged dump).
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            BackupError::Missing { .. } | BackupError::Damaged { .. }
        )
    }
}
