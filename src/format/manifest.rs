//! The manifest of a directory dump, `DIR/rdump.json`: what was dumped, from which server,
//! how consistently, at which coordinates, and every file with its size and checksum.
//!
//! It is written last and atomically: a directory without a complete manifest is not a
//! dump. `rload` reads it to check the files before it changes anything. Not for: writing
//! data files (see `dump::dir`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::objects::{TableInfo, TableKind};
use crate::output::destination::Place;
use crate::output::sink::Written;

pub const FILE_NAME: &str = "rdump.json";
pub const FORMAT: &str = "rdump-dir";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub rdump_version: String,
    /// True only in a manifest written after every file was committed.
    pub complete: bool,
    pub server: ServerEntry,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub options: OptionsEntry,
    pub consistency: ConsistencyEntry,
    pub coordinates: CoordinatesEntry,
    /// For CSV dumps: the dialect of the data files (separators, escaping, NULL, binary).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub csv: Option<BTreeMap<String, String>>,
    pub databases: Vec<DatabaseEntry>,
    /// `--system=users`: the accounts (users, roles, their grants and default roles) as a
    /// JSON list of `format::objects::Account` in `accounts.json`; rload creates them
    /// after everything else (see `load::accounts`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub accounts_file: Option<FileEntry>,
}

/// The file of `Manifest::accounts_file`.
pub const ACCOUNTS_FILE: &str = "accounts.json";

/// The privilege tables of `mysql` that `--system=users` leaves out of a dump of that
/// database (as mariadb-dump does): the accounts come as statements instead.
pub const PRIVILEGE_TABLES: &[&str] = &[
    "db",
    "global_priv",
    "tables_priv",
    "columns_priv",
    "procs_priv",
    "user",
    "host",
    "proxies_priv",
    "roles_mapping",
    "role_edges",
    "default_roles",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerEntry {
    pub flavor: String,
    pub version: String,
    pub host: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptionsEntry {
    pub threads: usize,
    pub chunk_rows: u64,
    /// "sql" or "csv".
    pub format: String,
    pub zstd_level: Option<i32>,
    pub where_clause: Option<String>,
    /// The character set the data files are in.
    pub character_set: String,
    /// TIMESTAMP values are in UTC (`--tz-utc`).
    pub tz_utc: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsistencyEntry {
    /// flush, backup-lock, lock, snapshot-only or none.
    pub method: String,
    /// How long commits were blocked, in milliseconds.
    pub lock_ms: u64,
    /// Every thread saw the same state.
    pub consistent: bool,
    /// Non-transactional (MyISAM, Aria) tables were read while writes were stopped.
    pub non_transactional_consistent: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CoordinatesEntry {
    pub binlog_file: Option<String>,
    pub binlog_position: Option<u64>,
    /// MariaDB gtid_binlog_pos / MySQL gtid_executed of the dumped state.
    pub gtid: Option<String>,
    /// `--dump-slave`: where this replica's source stood, for seeding a sibling replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceEntry {
    pub host: String,
    pub port: u16,
    pub binlog_file: String,
    pub binlog_position: u64,
    pub gtid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the dump directory.
    pub file: String,
    pub bytes: u64,
    /// XXH3-128 of the file's bytes, 32 hex digits.
    pub checksum: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkEntry {
    pub index: usize,
    pub file: String,
    pub rows: u64,
    pub bytes: u64,
    pub checksum: String,
    /// The key range read, as an SQL condition (None: the whole table).
    pub range: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEntry {
    pub name: String,
    /// "table", "view" or "sequence".
    pub kind: String,
    pub engine: Option<String>,
    pub schema_file: Option<FileEntry>,
    pub triggers_file: Option<FileEntry>,
    /// The columns of the data files, in file order (generated columns are not stored).
    #[serde(default)]
    pub columns: Vec<ColumnEntry>,
    pub rows: u64,
    pub chunks: Vec<ChunkEntry>,
    #[serde(skip)]
    pub db: String,
    #[serde(skip)]
    pub estimated_rows: u64,
}

impl TableEntry {
    pub fn new(db: &str, t: &TableInfo) -> TableEntry {
        TableEntry {
            name: t.name.clone(),
            kind: match t.kind {
                TableKind::Base => "table",
                TableKind::View => "view",
                TableKind::Sequence => "sequence",
            }
            .into(),
            engine: t.engine.clone(),
            schema_file: None,
            triggers_file: None,
            columns: Vec::new(),
            rows: 0,
            chunks: Vec::new(),
            db: db.to_string(),
            estimated_rows: t.estimated_rows,
        }
    }

    /// The table's files: schema, triggers and chunks, with their sizes.
    pub fn files(&self) -> impl Iterator<Item = (u64, &str)> {
        self.schema_file
            .iter()
            .chain(self.triggers_file.iter())
            .map(|f| (f.bytes, f.file.as_str()))
            .chain(self.chunks.iter().map(|c| (c.bytes, c.file.as_str())))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnEntry {
    pub name: String,
    /// number, float, bit, binary, text or enum (`catalog::ColumnKind::name`): how the
    /// values are written, and so how a loader reads them back.
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseEntry {
    pub name: String,
    pub database_file: Option<FileEntry>,
    pub views_file: Option<FileEntry>,
    pub routines_file: Option<FileEntry>,
    pub events_file: Option<FileEntry>,
    pub tables: Vec<TableEntry>,
}

impl DatabaseEntry {
    pub fn new(name: &str) -> DatabaseEntry {
        DatabaseEntry {
            name: name.to_string(),
            database_file: None,
            views_file: None,
            routines_file: None,
            events_file: None,
            tables: Vec::new(),
        }
    }

    /// The database's own files (not its tables').
    pub fn files(&self) -> impl Iterator<Item = &FileEntry> {
        self.database_file
            .iter()
            .chain(self.views_file.iter())
            .chain(self.routines_file.iter())
            .chain(self.events_file.iter())
    }
}

/// Writes `DIR/rdump.json` atomically (temp file, fsync, link), never replacing a manifest
/// that is there already (see `output::dumpdir`).
pub fn write(dir: &Place, manifest: &Manifest) -> Result<Written> {
    let text = serde_json::to_vec_pretty(manifest)
        .map_err(|e| Error::Usage(format!("could not encode the manifest: {e}")))?;
    let mut sink = dir.sink(FILE_NAME, None, None)?;
    sink.write_all(&text)?;
    sink.write_all(b"\n")?;
    sink.commit()
}

/// Reads and checks a manifest: it must be complete and of a format version we know.
pub fn read(dir: &Path) -> std::result::Result<Manifest, String> {
    let path = dir.join(FILE_NAME);
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let m: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{}: not a valid rdump manifest: {e}", path.display()))?;
    if m.format != FORMAT || m.format_version != FORMAT_VERSION {
        return Err(format!(
            "{}: unknown format {} version {} (this rdump reads {FORMAT} version {FORMAT_VERSION})",
            path.display(),
            m.format,
            m.format_version
        ));
    }
    if !m.complete {
        return Err(format!("{}: the dump is incomplete", path.display()));
    }
    Ok(m)
}
