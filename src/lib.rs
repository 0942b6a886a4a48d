//! rdump: a drop-in, faster `mysqldump` for MySQL and MariaDB, and `rload`, which loads its
//! directory dumps back in parallel. The binaries in `src/bin/` are thin; this library
//! holds the rest, one folder per part, each depending only on the ones listed before it:
//!
//! - `error`, `process`: the crate's error type and exit codes; the running process (argv
//!   masking, signals).
//! - `sql`: SQL text with no I/O: quoting, and the MariaDB/MySQL dialects.
//! - `client`: talking to a server (connections, TLS, rows streamed in place).
//! - `format`: what a dump says (objects, coordinates, statement shape, row encodings,
//!   scripts, the manifest, file names), shared by dump and load.
//! - `output`: where a dump's bytes go (files written atomically, zstd, page cache kept).
//! - `plan`, `options`: what the user asked for, resolved once before any connection.
//! - `dump`: the dump itself (catalog, consistency, chunks, readers, the two orchestrators).
//! - `load`: `rload`.
//! - `trust`: what makes backups trustworthy without a repository (retention policy,
//!   health verdicts, metrics, logs, the config file); a sibling of `backup`, which holds
//!   no policy.
//! - `backup`: the `rbackup` repository (REPOSITORY.md): chunks, packs, index, snapshots,
//!   locks on a local path or S3; no SQL (the dump feeds it through its sink).
//! - `binlog`: binlog archiving for point-in-time recovery (a replication client on
//!   `client`, segments handed to a store); nothing before it depends on it.
//!
//! Data flows one way: options -> plan -> dump (snapshot -> read) -> format (encode) ->
//! output (sink) -> manifest. See ARCHITECTURE.md for the map and the invariants.

pub mod backup;
pub mod binlog;
pub mod client;
pub mod dump;
pub mod error;
pub mod format;
pub mod load;
pub mod options;
pub mod output;
pub mod plan;
pub mod process;
pub mod sql;
pub mod trust;
