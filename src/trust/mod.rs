//! Trusting backups without watching them (issue 14): the parts that need no repository.
//!
//! Owns the pure, storage-independent pieces `rbackup` wires into its commands:
//! - `duration`: durations as users write them ("7d", "1y2m", "15min") and their calendar
//!   arithmetic;
//! - `retention`: the prune policy (restic's `forget` rules) over backup times, with reasons;
//! - `metrics`: the Prometheus textfile (`--metrics-file`), updated atomically;
//! - `check`: the `rbackup check` verdict (OK/WARNING/CRITICAL and its one line);
//! - `log`: `--log-format text|json` records, one per line, secrets shown as `***`;
//! - `config`: the config file (`/etc/rbackup.toml`, `--config`) scheduled units rely on;
//! - `scratch`: a throwaway server for restore drills, removed after;
//! - `drill`: the restore drill (restore a backup, fingerprint the restored server,
//!   compare with what the backup recorded, write the drill record).
//!
//! Not for: reading or changing a repository (listing backups, deleting blobs, locks),
//! copies (`drill` only composes the repository, dump and load layers). Those belong to the repository layer (`backup/`), which
//! gathers the inputs (backup times, archiver state, drill results) and calls these.

pub mod check;
pub mod config;
pub mod drill;
pub mod duration;
pub mod log;
pub mod metrics;
pub mod retention;
pub mod scratch;
