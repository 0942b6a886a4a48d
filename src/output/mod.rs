//! Where a dump's bytes go: stdout, a result file, a directory's chunk files, or a backup
//! repository's logical files (`destination`); written
//! whole or not at all (a temporary name renamed into place by `Sink::commit`), optionally
//! zstd-compressed, checksummed for the manifest, and kept out of the page cache (`direct`,
//! `sink::PageCacheDrop`).
//!
//! Not for: what the bytes say (see `format`) or which files a dump has (see `dump`).

pub mod destination;
pub mod direct;
pub mod dumpdir;
pub mod sink;
