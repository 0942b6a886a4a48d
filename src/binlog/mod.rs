//! Binlog archiving, the core of point-in-time recovery: the server's binary log streamed
//! over the replication protocol and kept, byte for byte, in segments.
//!
//! ```text
//! conn::open_replication ─► stream::open (session variables, COM_REGISTER_SLAVE,
//!   COM_BINLOG_DUMP)  ─► wire::next_binlog_packet ─► stream::Framer (length, CRC32,
//!   position continuity, artificial events dropped, GTIDs and transactions followed)
//!   ─► segment::SegmentBuilder (cut at the flush interval, a size limit, the end of a
//!   file) ─► segment::SegmentStore::commit (the repository, or local::LocalDirStore)
//! ```
//!
//! `archive::archive` runs it: resumes exactly after the last committed event, reconnects
//! after a lost connection, stops at the server's starting position with `once`.
//!
//! Invariants: an event is archived exactly as the server sent it, or the run fails (a
//! truncated event, a CRC mismatch, a position that does not continue the previous event
//! are errors, never repaired); a segment is committed whole or not at all; the archive of
//! a file is contiguous from its first segment to its last, across restarts of the
//! archiver and of the server; a binlog purged before it was archived is
//! `ArchiveError::Purged`, never skipped silently.
//!
//! Not for: the repository's storage (`backup`), the `rbackup` command line, restoring.

pub mod apply;
pub mod archive;
pub mod event;
pub mod filter;
pub mod local;
pub mod replay;
pub mod segment;
pub mod source;
pub mod stream;
pub mod window;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use archive::{ArchiveOptions, ArchiveReport, archive, mark_gap};
pub use segment::{
    CutPolicy, Gap, GtidRange, Record, ResumePoint, Segment, SegmentSource, SegmentStore,
    StoreError,
};
pub use stream::DEFAULT_SERVER_ID;

/// A place in the binlog: a file and a byte offset in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    pub file: String,
    pub pos: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

/// Why an archiving run stopped. Every variant names the server; none holds a password.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// ERR 1236: the server no longer has the binlog the archive continues from (purged
    /// while the archiver was down, or never there). The archive has a gap from
    /// `position`; `mark_gap` records it and archiving can go on from the oldest binlog.
    #[error(
        "{server}: GAP IN THE BINLOG ARCHIVE: the server no longer has the binlog needed \
         from {}: {message}. Nothing can be restored across this gap: take a new backup",
        position.as_ref().map_or("the start".to_string(), |p| p.to_string())
    )]
    Purged {
        server: String,
        position: Option<Position>,
        message: String,
    },

    /// An event failed a check (truncated, CRC32 mismatch, a position that does not
    /// continue the previous event). The events before it are archived; it is not.
    #[error("{server}: binlog {file} at {pos}: {problem}")]
    Corrupt {
        server: String,
        file: String,
        pos: u64,
        problem: String,
    },

    /// The server refused something (privileges, binary logging off, a bad position).
    #[error("{server}: {context}: {message}")]
    Server {
        server: String,
        context: String,
        message: String,
    },

    /// The connection was lost or could not be made (retried until `reconnect_for`).
    #[error("{server}: connection lost: {message}")]
    Connection { server: String, message: String },

    /// The store failed.
    #[error("binlog archive: {context}: {message}")]
    Store { context: String, message: String },

    /// A setting that cannot work (a clashing server id, an unreadable GTID set).
    #[error("{0}")]
    Config(String),
}
