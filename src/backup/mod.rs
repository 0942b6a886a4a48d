//! The `rbackup` repository: deduplicated, compressed, encrypted backups in a local
//! directory or S3-compatible object storage. The format is written down in REPOSITORY.md
//! (read it first); this folder implements it.
//!
//! Map:
//!
//! | module | owns | does not |
//! |---|---|---|
//! | `store` | the object store behind a repository URL (`object_store`: local files or S3, ring TLS, its retries), every storage call with errors that name the object | formats |
//! | `keys` | the secrets: naming key, repository identity, key files, writer key, age encryption and decryption of whole objects | storage |
//! | `config` | the `config` object, its MAC, `init` | data |
//! | `chunker` | content-defined chunking (FastCDC 2020, seeded) of a byte stream fed in pieces of any size | naming or storing chunks |
//! | `pack` | a pack's plaintext (blobs + table) and the blob IDs (keyed BLAKE3) | uploading |
//! | `index` | index objects: plaintext presence, encrypted locations | deciding when to write them |
//! | `snapshot` | snapshot objects and the catalog's file entries | reading blobs |
//! | `lock` | lock objects: shared, exclusive, unique; refresh; stale takeover | what a lock protects |
//! | `writer` | `BackupWriter`: the sink of a backup; files in, packs, index, snapshot last | dumping (the dump feeds it) |
//! | `copy` | `copy`: backups and binlog segments missing at another repository, re-encrypted for it; copy markers | the command line |
//! | `health` | what `check` observes: newest backup, archiver's last event and gaps, last passing drill | the verdict (`trust::check`) |
//! | `segments` | `RepositorySegments`: binlog segments and gaps under `binlog/<source>/` (the archiver's `SegmentStore`, restore's `SegmentSource`), their MAC, the unique archiver lock | the replication stream, what to restore |
//! | `drill` | drill records (`drills/<snapshot>/<id>`): encoding with their MAC, writing, the newest per backup | running a drill (`trust::drill`) |
//! | `reader` | `RepositoryReader`: snapshots, catalogs, files streamed back with every blob verified | loading into a server |
//! | `verify` | `verify`: every object against its storage ID, references of snapshots, catalogs and files, with `read_data` every blob (rayon); damage named with the backups and files it breaks; `check_segments` for a binlog archive | repairing, drills |
//! | `prune` | `prune`: the retention policy applied (`trust::retention`), unused packs deleted and mostly unused ones repacked, new index before old objects are deleted, under the exclusive lock | the policy's rules |
//!
//! Invariants:
//! - **Packs, then index, then snapshot.** A snapshot names only blobs whose packs and
//!   index were uploaded before it; a failed or interrupted backup leaves no snapshot.
//! - **A writer never decrypts.** It needs the repository recipient and the naming key,
//!   and reads only the plaintext presence part of index objects.
//! - **Every byte read is checked**: a stored object against the BLAKE3 of its name, a
//!   blob against its keyed hash after decryption and decompression; an error names the
//!   object (and the logical file being restored).
//! - **Memory is bounded**: a file writer buffers at most two maximal chunks (2 x 128 KiB)
//!   and a zstd context; the writer holds the open pack, `writer::UPLOAD_QUEUE` full
//!   packs and the one being encrypted and uploaded (each 4 MiB by default, twice while
//!   encrypted); the reader one decrypted pack per file being read. What grows with the
//!   repository is the set of known blob IDs (32 bytes plus the hash set's overhead per
//!   blob), for a reader the index (48 bytes per blob, a sorted vector), for prune about
//!   85 bytes per blob (`prune`'s "Memory"), and, while a file is
//!   written, its list of blob IDs (32 bytes per 32 KiB on average).
//!
//! Not for: SQL, connections or dump formats. The dump pipeline feeds `BackupWriter`
//! through its sink; `rload` (or `restore --to-dir`) consumes `RepositoryReader`.

pub mod chunker;
pub mod config;
pub mod copy;
pub mod drill;
pub mod error;
pub mod health;
pub mod index;
pub mod keys;
pub mod lock;
pub mod pack;
pub mod prune;
pub mod reader;
pub mod segments;
pub mod snapshot;
pub mod store;
pub mod verify;
pub mod writer;

/// Makes glibc serve every allocation of 1 MiB or more (packs, their ciphertext) with its
/// own mmap, returned to the system when freed. Without it glibc raises its mmap threshold
/// after the first freed pack and keeps later packs in per-thread heaps: in
/// tests/backup_memory.rs the peak RSS grew from 41 to 52 MiB between a 48 and a 144 MiB
/// backup; with it, 35 then 39 MiB. Call once at the start of a program that writes or
/// reads a repository (the `rbackup` binary does).
pub fn limit_heap_growth() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

pub use config::{Config, InitOptions, Repository, init, open};
pub use error::{BackupError, Result};
pub use keys::{Access, BlobId};
pub use reader::{FileReader, RepositoryReader};
pub use snapshot::{FileEntry, Snapshot};
pub use writer::{BackupWriter, FileWriter, WriterOptions};
