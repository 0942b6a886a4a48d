//! The resolved plan of one dump: what to connect to, what to dump, how to keep it consistent,
//! which statements to write and where to.
//!
//! A `Plan` is produced by `options` (from the command line, option files and environment)
//! before any connection opens; everything downstream reads it and never looks at raw flags.
//! It is not for: parsing flags (see `options`), or anything that needs a server.

use std::path::PathBuf;

use crate::client::options::ConnectionOptions;
use crate::format::encode::tab::TabFormat;
use crate::format::shape::{CoordinateStyle, GtidPurged, Shape};

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Help,
    Version,
    /// `--print-defaults`: the arguments the option files give, then the command line's,
    /// as one line, passwords masked.
    PrintDefaults(String),
    Dump(Box<Plan>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub connection: ConnectionOptions,
    pub selection: Selection,
    pub shape: Shape,
    pub consistency: ConsistencyPlan,
    pub output: Output,
    /// `-f/--force`: continue after an SQL error on one object; the exit code still says so.
    pub force: bool,
    /// `-v/--verbose`: progress messages on stderr.
    pub verbose: bool,
    /// `--zstd[=LEVEL]`: compress every output file in-process.
    pub zstd: Option<i32>,
    /// `--progress`: bars on stderr (directory mode).
    pub progress: Progress,
    /// `--quiet`: no summary line.
    pub quiet: bool,
    /// The single stream's readers (`--threads`, `--chunk-size` without `--dir`).
    pub stream: StreamOptions,
}

/// Several connections feeding the one ordered stream of a mysqldump-compatible dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOptions {
    /// Reader connections: `--threads`, else `DEFAULT_STREAM_THREADS`; 1 reads exactly as
    /// mysqldump does. Several share the dump's view with `--single-transaction` or
    /// `--lock-all-tables`.
    pub threads: usize,
    /// `--threads` was given: falling back to one reader (no RELOAD privilege for the
    /// shared snapshot's brief lock) is then worth a warning.
    pub threads_given: bool,
    /// Rows per chunk a reader takes at a time: `--chunk-size`, else sized per table by
    /// `chunk_rows_for`.
    pub chunk_rows: Option<u64>,
}

/// Bytes of a table's rows (by the server's average row size) a single-stream chunk
/// covers when `--chunk-size` is not given. The stream writes one chunk at a time while
/// the other readers read ahead into `pool`'s bounded buffers: a chunk that fits in them
/// lets a reader finish its chunk and take the next instead of waiting for the writer.
pub const STREAM_CHUNK_BYTES: u64 = 2 * 1024 * 1024;

impl StreamOptions {
    /// Rows per chunk for a table whose rows average `avg_row_bytes` (0: unknown).
    pub fn chunk_rows_for(&self, avg_row_bytes: u64) -> u64 {
        self.chunk_rows
            .unwrap_or_else(|| (STREAM_CHUNK_BYTES / avg_row_bytes.max(1)).clamp(100, 100_000))
    }
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            threads: 1,
            threads_given: false,
            chunk_rows: None,
        }
    }
}

/// Reader connections of a single-stream dump when `--threads` is not given, as for
/// `--dir` (and mydumper's default): four server threads send rows while the client
/// encodes, and when one waits for the client another has rows ready. The server's cores,
/// not the client's, decide what pays; more than 4 rarely does on a production server.
/// Measured on the 2-core VM (sysbench 8x1M, 3 runs each): 2 readers 3.05-4.08 s,
/// 3 readers 2.71-3.46 s, 4 readers 2.83-3.42 s.
pub const DEFAULT_STREAM_THREADS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Progress {
    /// Only when stderr is a terminal.
    #[default]
    Auto,
    Always,
    Never,
}

/// Data file format of a directory dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DirFormat {
    #[default]
    Sql,
    Csv,
}

/// How the threads of a directory dump get one consistent view (`--consistency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DirConsistency {
    /// The lightest global lock the server has: MariaDB BACKUP STAGE, else FTWRL.
    #[default]
    Auto,
    /// FLUSH TABLES WITH READ LOCK while the snapshots start.
    Flush,
    /// MariaDB BACKUP STAGE BLOCK_COMMIT / MySQL LOCK INSTANCE FOR BACKUP.
    BackupLock,
    /// LOCK TABLES ... READ on the dumped tables while the snapshots start.
    Lock,
    /// Snapshots without a lock: consistent per thread only.
    SnapshotOnly,
    /// No snapshot, no lock.
    None,
}

/// `--dir`: a directory of files per table chunk, written by several threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirOptions {
    pub dir: PathBuf,
    /// `--threads`: worker connections (default 4).
    pub threads: usize,
    /// `--chunk-size`: rows per chunk.
    pub chunk_rows: u64,
    pub format: DirFormat,
    pub consistency: DirConsistency,
}

/// Which databases and tables, from the positional arguments and `-B`/`-A`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// `db [tables...]`: one database, all of its tables when `tables` is empty. No
    /// `CREATE DATABASE`/`USE` is written, as mysqldump does.
    Database { db: String, tables: Vec<String> },
    /// `-B db1 db2 ...`, or `--tables`-less `-B`: whole databases with `CREATE DATABASE` and `USE`.
    Databases(Vec<String>),
    /// `-A`: every database but information_schema, performance_schema and sys.
    AllDatabases,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub scope: Scope,
    /// `--ignore-table=db.t`, repeatable: (db, table).
    pub ignore_tables: Vec<(String, String)>,
    /// `--ignore-table-data=db.t`, repeatable: (db, table) whose structure is dumped but
    /// not its rows.
    pub ignore_table_data: Vec<(String, String)>,
    /// `--ignore-database=db`, repeatable: databases skipped by `-A`; ignored without it, as in
    /// mariadb-dump.
    pub ignore_databases: Vec<String>,
    /// `-w/--where`: applied to every table's SELECT.
    pub where_clause: Option<String>,
    /// `-d/--no-data`.
    pub no_data: bool,
    /// `-t/--no-create-info`.
    pub no_create_info: bool,
    /// `-n/--no-create-db`.
    pub no_create_db: bool,
    /// `-R/--routines`.
    pub routines: bool,
    /// `-E/--events`.
    pub events: bool,
    /// `--triggers` (on by default) / `--skip-triggers`.
    pub triggers: bool,
    /// `--system=users`: accounts and grants as CREATE USER and GRANT.
    pub system_users: bool,
    /// `--system=plugins`: INSTALL PLUGIN for each active plugin loaded from a library.
    pub system_plugins: bool,
    /// `--system=udfs`: CREATE FUNCTION ... SONAME for each loadable function.
    pub system_udfs: bool,
    /// `--system=servers`: CREATE SERVER for each `mysql.servers` row.
    pub system_servers: bool,
    /// Which row versions of system-versioned tables are dumped.
    pub history: History,
}

/// `--dump-history` / `--as-of`: the rows of MariaDB's system-versioned tables.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum History {
    /// The current rows (mariadb-dump's default).
    #[default]
    Current,
    /// `--dump-history`: every row version, with its ROW_START and ROW_END, restored under
    /// `system_versioning_insert_history=1`.
    All,
    /// `--as-of=TS`: the rows as they were at TS (a timestamp literal, read in the dump's
    /// time zone: UTC under `--tz-utc`).
    AsOf(String),
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            scope: Scope::AllDatabases,
            ignore_tables: Vec::new(),
            ignore_table_data: Vec::new(),
            ignore_databases: Vec::new(),
            where_clause: None,
            no_data: false,
            no_create_info: false,
            no_create_db: false,
            routines: false,
            events: false,
            triggers: true,
            system_users: false,
            system_plugins: false,
            system_udfs: false,
            system_servers: false,
            history: History::Current,
        }
    }
}

impl Selection {
    /// Whether the rows of `db`.`table` are dumped (`--no-data`, `--ignore-table-data`).
    pub fn wants_rows(&self, db: &str, table: &str) -> bool {
        !self.no_data
            && !self
                .ignore_table_data
                .iter()
                .any(|(d, t)| d == db && t == table)
    }
}

/// How the dump keeps one consistent view of the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// `--single-transaction`: one REPEATABLE READ snapshot, no table locks kept.
    SingleTransaction,
    /// `-x/--lock-all-tables`: FLUSH TABLES WITH READ LOCK for the whole dump.
    LockAllTables,
    /// `-l/--lock-tables` (on with `--opt`): LOCK TABLES ... READ per database.
    #[default]
    LockTables,
    /// Neither: no locks, no snapshot.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsistencyPlan {
    pub mode: Consistency,
    /// `-F/--flush-logs`.
    pub flush_logs: bool,
    /// `--master-data`/`--source-data`.
    pub master_data: Option<CoordinateStyle>,
    /// `--dump-slave`/`--dump-replica`.
    pub dump_slave: Option<CoordinateStyle>,
    /// `--gtid` (MariaDB): write GTID positions with the coordinates.
    pub gtid: bool,
    /// `--set-gtid-purged` (MySQL).
    pub set_gtid_purged: GtidPurged,
    /// `--include-master-host-port`: add MASTER_HOST/MASTER_PORT to --dump-slave output.
    pub include_master_host_port: bool,
    /// `--apply-slave-statements`: STOP SLAVE before and START SLAVE after, with --dump-slave.
    pub apply_slave_statements: bool,
    /// `--delete-master-logs`: once the dump is complete and committed, purge the binary
    /// logs before the dump's position (`PURGE BINARY LOGS TO`). Turns on `--flush-logs` and,
    /// unless given, `--master-data=2`, as mariadb-dump.
    pub delete_master_logs: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Output {
    #[default]
    Stdout,
    /// `-r/--result-file`: written under a temporary name, renamed when complete.
    ResultFile(PathBuf),
    /// `-T/--tab=DIR`: `t.sql` (schema) and `t.txt` (data) per table, written by the client.
    Tab { dir: PathBuf, format: TabFormat },
    /// `--dir=DIR`: a parallel, chunked directory dump with a manifest.
    Dir(DirOptions),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_chunks_cover_about_two_mib_of_rows_unless_chunk_size_is_given() {
        let default = StreamOptions::default();
        assert_eq!(default.chunk_rows_for(200), STREAM_CHUNK_BYTES / 200);
        assert_eq!(default.chunk_rows_for(0), 100_000);
        assert_eq!(default.chunk_rows_for(1), 100_000);
        assert_eq!(default.chunk_rows_for(1 << 30), 100);
        let given = StreamOptions {
            chunk_rows: Some(5_000),
            ..default
        };
        assert_eq!(given.chunk_rows_for(200), 5_000);
    }
}
