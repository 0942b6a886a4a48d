//! Where the files of a directory dump go: the local dump directory (`rdump --dir`), or a
//! backup repository (`rbackup backup`), through the same `Sink` either way. A file of the
//! dump is named by its path relative to the dump directory (`db/t.00001.csv`,
//! `rdump.json`); in a repository that name is the logical file's name, so `rbackup
//! restore --to-dir` gives back the directory `rdump --dir` would have written.
//!
//! A repository file is fed to `backup::FileWriter` as the dump writes it (chunked,
//! deduplicated, packed and uploaded on the way), never written locally first; it is
//! closed into the backup's catalog by `Sealed::commit`, as a local file is published.
//! Committing the backup (its snapshot) is the caller's, after the dump returned.
//!
//! A third destination keeps no bytes at all (`Fingerprints`): a restore drill dumps the
//! restored server through the same path to get its row fingerprints
//! (`format::fingerprint`), which reach it as the files' `meta` in a `MetaCollector`.
//! Chunk files of a backup and of this destination carry their fingerprints; the dump
//! skips encoding rows for it.
//!
//! Not for: what the files hold (see `dump::dir`), the repository's format (`backup`).

use std::sync::Arc;

use crate::backup::BackupWriter;
use crate::error::Result;
use crate::output::dumpdir::{Dir, DumpDir};
use crate::output::sink::{MetaCollector, Sink, ZstdContext};

/// The whole destination of one directory dump.
pub enum Destination {
    /// A claimed local dump directory.
    Dir(DumpDir),
    /// A backup being written.
    Repository(Arc<BackupWriter>),
    /// Nowhere: each file's name and meta (its fingerprint) go to the collector.
    Fingerprints(Arc<MetaCollector>),
}

/// A folder of the destination: the top, or a database's.
#[derive(Clone)]
pub enum Place {
    Dir(Dir),
    Repository {
        writer: Arc<BackupWriter>,
        /// "" or "db/".
        prefix: String,
    },
    Fingerprints {
        collector: Arc<MetaCollector>,
        prefix: String,
    },
}

impl Destination {
    /// The top (where the manifest goes).
    pub fn root(&self) -> Place {
        match self {
            Destination::Dir(d) => Place::Dir(d.root().clone()),
            Destination::Repository(w) => Place::Repository {
                writer: Arc::clone(w),
                prefix: String::new(),
            },
            Destination::Fingerprints(c) => Place::Fingerprints {
                collector: Arc::clone(c),
                prefix: String::new(),
            },
        }
    }

    /// The folder `name` (one level: a database's).
    pub fn subdir(&self, name: &str) -> Result<Place> {
        Ok(match self {
            Destination::Dir(d) => Place::Dir(d.subdir(name)?),
            Destination::Repository(w) => Place::Repository {
                writer: Arc::clone(w),
                prefix: format!("{name}/"),
            },
            Destination::Fingerprints(c) => Place::Fingerprints {
                collector: Arc::clone(c),
                prefix: format!("{name}/"),
            },
        })
    }

    /// The dump is complete (the manifest was written last): a local directory drops its
    /// journal; a repository's backup is committed by whoever started it.
    pub fn finish(self) {
        match self {
            Destination::Dir(d) => d.finish(),
            Destination::Repository(_) | Destination::Fingerprints(_) => {}
        }
    }
}

impl Place {
    /// True when chunk files here record their rows' fingerprints (a backup, a drill).
    pub fn fingerprints(&self) -> bool {
        !matches!(self, Place::Dir(_))
    }

    /// A new file `name` here, complete only once committed. A repository file is never
    /// zstd-compressed by the sink (the repository compresses each blob).
    pub fn sink(
        &self,
        name: &str,
        zstd_level: Option<i32>,
        context: Option<ZstdContext>,
    ) -> Result<Sink> {
        match self {
            Place::Dir(d) => Sink::in_dir(d, name, zstd_level, context),
            Place::Repository { writer, prefix } => {
                Ok(Sink::in_repository(writer, &format!("{prefix}{name}")))
            }
            Place::Fingerprints { collector, prefix } => {
                Ok(Sink::discarding(collector, &format!("{prefix}{name}")))
            }
        }
    }
}
