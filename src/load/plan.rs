//! The load plan: what to load from the dump and under which names, from the manifest and
//! the `--databases`/`--tables`/`--target-database` filters. Decided before any connection
//! opens; everything downstream follows it.
//!
//! The manifest must exist, be an `rdump-dir` manifest of a version this rload reads, be
//! marked complete, and name only files inside the dump directory. Its format and version
//! are checked before the rest is parsed, so a newer manifest says "unknown version", not
//! "invalid". `load_id` identifies this load in the journal: XXH3-128 of the manifest's
//! bytes and the target database names, so the same dump loaded under two names on one
//! server keeps two journals.
//!
//! Filters: `--databases a,b` keeps those databases; `--tables` keeps the named tables
//! (`db.table`, or `table` in every selected database; a name containing a dot that is not a
//! database of the dump is taken as a whole as a table name) with their schema, data and
//! triggers; views, routines and events are loaded only without `--tables` (`views.sql`,
//! `routines.sql` and `events.sql` hold a whole database's). `--target-database` needs exactly
//! one selected database. The dump's accounts (`accounts.json`) are created when
//! `LoadOptions::accounts` says so (rload: with none of those filters).
//!
//! Not for: reading data files (see `verify`, `data`).

use std::path::{Component, Path, PathBuf};

use xxhash_rust::xxh3::xxh3_128;

use super::LoadOptions;
use super::chunkfile::ChunkFile;
use super::error::{LoadError, Result};
use crate::error::Error;
use crate::format::manifest::{self, ChunkEntry, FileEntry, Manifest, TableEntry};

/// One database to load.
#[derive(Debug, Clone)]
pub struct DbPlan {
    /// The name in the dump.
    pub source: String,
    /// The name on the target (`--target-database`, else the same).
    pub target: String,
    pub database_file: Option<FileEntry>,
    /// Selected base tables and sequences, in manifest order.
    pub tables: Vec<TableEntry>,
    /// Views of the database (names), when `views.sql` is loaded.
    pub views: Vec<String>,
    pub views_file: Option<FileEntry>,
    pub routines_file: Option<FileEntry>,
    pub events_file: Option<FileEntry>,
}

impl DbPlan {
    /// `Some((from, to))` when the database is loaded under another name.
    pub fn rename(&self) -> Option<(&str, &str)> {
        (self.source != self.target).then_some((self.source.as_str(), self.target.as_str()))
    }
}

/// A file the load reads, as the manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    pub relative: String,
    pub bytes: u64,
    pub checksum: String,
}

#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub load_id: String,
    /// Data files are CSV (`LOAD DATA`), else SQL.
    pub csv: bool,
    pub databases: Vec<DbPlan>,
    /// The dump's accounts (`accounts.json`), when they are to be created.
    pub accounts_file: Option<FileEntry>,
}

impl LoadPlan {
    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    /// A whole (small: schema, triggers, views, routines, events) file of the dump,
    /// decompressed, checked again against the manifest's checksum: `verify` checked it
    /// before the load, but the post objects run after the data, maybe hours later.
    pub fn read_file(&self, f: &FileEntry) -> Result<Vec<u8>> {
        let path = self.path(&f.file);
        let fail = |m: String| LoadError::dump(&path, m);
        let mut file = ChunkFile::open(&path, indicatif::ProgressBar::hidden())
            .map_err(|e| fail(e.to_string()))?;
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut text).map_err(|e| fail(e.to_string()))?;
        file.check(&f.checksum).map_err(fail)?;
        Ok(text)
    }

    /// Every file the load reads, each once, in manifest order.
    pub fn files(&self) -> Vec<FileRef> {
        let mut out = Vec::new();
        let mut add = |f: &FileEntry| {
            out.push(FileRef {
                relative: f.file.clone(),
                bytes: f.bytes,
                checksum: f.checksum.clone(),
            })
        };
        for d in &self.databases {
            d.database_file.iter().for_each(&mut add);
            for t in &d.tables {
                t.schema_file.iter().for_each(&mut add);
                t.triggers_file.iter().for_each(&mut add);
            }
            for f in [&d.views_file, &d.routines_file, &d.events_file]
                .into_iter()
                .flatten()
            {
                add(f);
            }
        }
        self.accounts_file.iter().for_each(&mut add);
        for d in &self.databases {
            for t in &d.tables {
                for c in &t.chunks {
                    out.push(FileRef {
                        relative: c.file.clone(),
                        bytes: c.bytes,
                        checksum: c.checksum.clone(),
                    });
                }
            }
        }
        out
    }

    pub fn chunks(&self) -> impl Iterator<Item = (&DbPlan, &TableEntry, &ChunkEntry)> {
        self.databases.iter().flat_map(|d| {
            d.tables
                .iter()
                .flat_map(move |t| t.chunks.iter().map(move |c| (d, t, c)))
        })
    }
}

/// Reads the manifest: it must exist, be of a known format and version, and be complete.
/// Returns it with its bytes (for the load id).
pub fn read_manifest(dir: &Path) -> Result<(Manifest, Vec<u8>)> {
    let path = dir.join(manifest::FILE_NAME);
    if !dir.is_dir() {
        return Err(LoadError::dump(dir, "not a directory"));
    }
    let bytes = std::fs::read(&path).map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::NotFound {
            "no manifest: not an rdump directory dump, or the dump did not finish".to_string()
        } else {
            e.to_string()
        };
        LoadError::dump(&path, why)
    })?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| LoadError::dump(&path, format!("not a valid rdump manifest: {e}")))?;
    let format = value.get("format").and_then(|v| v.as_str()).unwrap_or("");
    let version = value.get("format_version").and_then(|v| v.as_u64());
    if format != manifest::FORMAT || version != Some(u64::from(manifest::FORMAT_VERSION)) {
        return Err(LoadError::dump(
            &path,
            format!(
                "unknown format {:?} version {} (this rload reads {} version {})",
                format,
                version.map_or("?".to_string(), |v| v.to_string()),
                manifest::FORMAT,
                manifest::FORMAT_VERSION
            ),
        ));
    }
    if value.get("complete").and_then(|v| v.as_bool()) != Some(true) {
        return Err(LoadError::dump(
            &path,
            "the dump is incomplete (rdump did not finish it)",
        ));
    }
    let m: Manifest = serde_json::from_value(value)
        .map_err(|e| LoadError::dump(&path, format!("not a valid rdump manifest: {e}")))?;
    Ok((m, bytes))
}

/// A file name from the manifest must stay inside the dump directory.
fn check_relative(dir: &Path, file: &str) -> Result<()> {
    let p = Path::new(file);
    let inside = !file.is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if inside {
        Ok(())
    } else {
        Err(LoadError::dump(
            dir.join(manifest::FILE_NAME),
            format!("names a file outside the dump directory: {file:?}"),
        ))
    }
}

fn usage(msg: String) -> LoadError {
    LoadError::Rdump(Error::Usage(msg))
}

/// Builds the plan from the manifest and the options.
pub fn build(opts: &LoadOptions) -> Result<LoadPlan> {
    let (manifest, bytes) = read_manifest(&opts.dir)?;
    plan_from(opts, manifest, &bytes)
}

pub fn plan_from(opts: &LoadOptions, manifest: Manifest, bytes: &[u8]) -> Result<LoadPlan> {
    let csv = match manifest.options.format.as_str() {
        "sql" => false,
        "csv" => true,
        other => {
            return Err(LoadError::dump(
                opts.dir.join(manifest::FILE_NAME),
                format!("unknown data format {other:?}"),
            ));
        }
    };
    for name in &opts.databases {
        if !manifest.databases.iter().any(|d| &d.name == name) {
            return Err(usage(format!("database {name:?} is not in the dump")));
        }
    }
    let selected_dbs: Vec<&manifest::DatabaseEntry> = manifest
        .databases
        .iter()
        .filter(|d| opts.databases.is_empty() || opts.databases.contains(&d.name))
        .collect();
    // --tables: (database or None for every selected one, table).
    let mut wanted: Vec<(Option<String>, String, bool)> = Vec::new();
    for spec in &opts.tables {
        let split = spec
            .split_once('.')
            .filter(|(db, _)| selected_dbs.iter().any(|d| d.name == *db));
        match split {
            Some((db, t)) => wanted.push((Some(db.to_string()), t.to_string(), false)),
            None => wanted.push((None, spec.clone(), false)),
        }
    }
    let mut databases = Vec::new();
    for d in selected_dbs {
        let mut tables = Vec::new();
        for t in d.tables.iter().filter(|t| t.kind != "view") {
            let mut keep = opts.tables.is_empty();
            for (db, name, hit) in wanted.iter_mut() {
                if db.as_deref().is_none_or(|db| db == d.name) && *name == t.name {
                    *hit = true;
                    keep = true;
                }
            }
            if keep {
                let mut t = t.clone();
                t.db = d.name.clone();
                tables.push(t);
            }
        }
        if !opts.tables.is_empty() && tables.is_empty() {
            continue;
        }
        let whole = opts.tables.is_empty();
        databases.push(DbPlan {
            source: d.name.clone(),
            target: d.name.clone(),
            database_file: d.database_file.clone(),
            tables,
            views: if whole {
                d.tables
                    .iter()
                    .filter(|t| t.kind == "view")
                    .map(|t| t.name.clone())
                    .collect()
            } else {
                Vec::new()
            },
            views_file: d.views_file.clone().filter(|_| whole),
            routines_file: d.routines_file.clone().filter(|_| whole),
            events_file: d.events_file.clone().filter(|_| whole),
        });
    }
    if let Some((db, t, _)) = wanted.iter().find(|(_, _, hit)| !hit) {
        return Err(usage(match db {
            Some(db) => format!("table {db:?}.{t:?} is not in the dump"),
            None => format!("table {t:?} is not in the dump (or is a view)"),
        }));
    }
    if databases.is_empty() {
        return Err(usage(
            "nothing to load: no database of the dump is selected".into(),
        ));
    }
    if let Some(target) = &opts.target_database {
        if databases.len() != 1 {
            return Err(usage(format!(
                "--target-database needs exactly one database to load; the selection has {} \
                 (choose one with --databases)",
                databases.len()
            )));
        }
        databases[0].target = target.clone();
    }
    if opts.replica.is_some() {
        check_seedable(opts, &manifest, &databases)?;
    }
    let plan = LoadPlan {
        dir: opts.dir.clone(),
        load_id: load_id(bytes, &databases),
        csv,
        databases,
        accounts_file: manifest.accounts_file.clone().filter(|_| opts.accounts),
        manifest,
    };
    for f in plan.files() {
        check_relative(&plan.dir, &f.relative)?;
    }
    Ok(plan)
}

/// A replica can only be seeded from a consistent dump with coordinates.
fn check_seedable(opts: &LoadOptions, m: &Manifest, dbs: &[DbPlan]) -> Result<()> {
    if dbs.iter().any(|d| d.rename().is_some()) {
        return Err(usage(
            "--target-database cannot be used with --seed-replica: replicated changes name the \
             source's databases"
                .into(),
        ));
    }
    if !m.consistency.consistent || !m.consistency.non_transactional_consistent {
        return Err(LoadError::Refused(format!(
            "the dump cannot seed a replica: it is not consistent (consistency {}, \
             non-transactional tables consistent: {}); dump again with the default --consistency",
            m.consistency.method, m.consistency.non_transactional_consistent
        )));
    }
    if let Some(w) = &m.options.where_clause {
        return Err(LoadError::Refused(format!(
            "the dump cannot seed a replica: it was taken with --where={w}, so the replica \
             would lack rows that replicated changes touch"
        )));
    }
    let c = &m.coordinates;
    let has = c.source.is_some()
        || (c.binlog_file.is_some() && c.binlog_position.is_some())
        || c.gtid.as_deref().is_some_and(|g| !g.is_empty());
    if !has {
        return Err(LoadError::Refused(
            "the dump cannot seed a replica: its manifest has no binlog coordinates (the dumped \
             server had no binary log)"
                .into(),
        ));
    }
    let _ = opts;
    Ok(())
}

fn load_id(manifest_bytes: &[u8], dbs: &[DbPlan]) -> String {
    let mut key = manifest_bytes.to_vec();
    for d in dbs {
        key.push(0);
        key.extend_from_slice(d.source.as_bytes());
        key.push(0);
        key.extend_from_slice(d.target.as_bytes());
    }
    format!("{:032x}", xxh3_128(&key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::manifest::{
        ConsistencyEntry, CoordinatesEntry, DatabaseEntry, OptionsEntry, ServerEntry,
    };

    fn file(name: &str) -> FileEntry {
        FileEntry {
            file: name.into(),
            bytes: 1,
            checksum: "0".repeat(32),
        }
    }

    fn table(db: &str, name: &str, kind: &str) -> TableEntry {
        TableEntry {
            name: name.into(),
            kind: kind.into(),
            engine: Some("InnoDB".into()),
            schema_file: (kind != "view").then(|| file(&format!("{db}/{name}.schema.sql"))),
            triggers_file: None,
            columns: vec![],
            rows: 1,
            chunks: if kind == "table" {
                vec![ChunkEntry {
                    index: 0,
                    file: format!("{db}/{name}.00000.sql"),
                    rows: 1,
                    bytes: 1,
                    checksum: "0".repeat(32),
                    range: None,
                }]
            } else {
                vec![]
            },
            db: String::new(),
            estimated_rows: 0,
        }
    }

    fn manifest() -> Manifest {
        let db = |name: &str, tables: Vec<TableEntry>| DatabaseEntry {
            name: name.into(),
            database_file: Some(file(&format!("{name}/database.sql"))),
            views_file: Some(file(&format!("{name}/views.sql"))),
            routines_file: None,
            events_file: None,
            tables,
        };
        Manifest {
            format: manifest::FORMAT.into(),
            format_version: manifest::FORMAT_VERSION,
            rdump_version: "0".into(),
            complete: true,
            server: ServerEntry {
                flavor: "MariaDB".into(),
                version: "10.11".into(),
                host: "h".into(),
            },
            started_at: "t".into(),
            finished_at: None,
            options: OptionsEntry {
                threads: 1,
                chunk_rows: 1,
                format: "sql".into(),
                zstd_level: None,
                where_clause: None,
                character_set: "utf8mb4".into(),
                tz_utc: true,
            },
            consistency: ConsistencyEntry {
                method: "flush".into(),
                lock_ms: 0,
                consistent: true,
                non_transactional_consistent: true,
            },
            coordinates: CoordinatesEntry::default(),
            csv: None,
            databases: vec![
                db(
                    "a",
                    vec![
                        table("a", "t1", "table"),
                        table("a", "v", "view"),
                        table("a", "x.y", "table"),
                    ],
                ),
                db(
                    "b",
                    vec![table("b", "t1", "table"), table("b", "s", "sequence")],
                ),
            ],
            accounts_file: None,
        }
    }

    fn opts() -> LoadOptions {
        LoadOptions {
            connection: Default::default(),
            dir: "/d".into(),
            threads: 2,
            defer_indexes: true,
            databases: vec![],
            tables: vec![],
            target_database: None,
            drop_existing: false,
            resume: false,
            enable_binlog: false,
            fast_unsafe: false,
            permission_check: true,
            replica: None,
            progress: Default::default(),
            quiet: false,
            verbose: false,
            accounts: true,
        }
    }

    fn names(p: &LoadPlan) -> Vec<String> {
        p.databases
            .iter()
            .flat_map(|d| {
                d.tables
                    .iter()
                    .map(move |t| format!("{}.{}", d.target, t.name))
            })
            .collect()
    }

    #[test]
    fn everything_by_default_views_with_their_file() {
        let p = plan_from(&opts(), manifest(), b"m").unwrap();
        assert_eq!(names(&p), vec!["a.t1", "a.x.y", "b.t1", "b.s"]);
        assert_eq!(p.databases[0].views, vec!["v"]);
        assert!(p.databases[0].views_file.is_some());
        assert_eq!(p.files().len(), 11);
    }

    #[test]
    fn the_accounts_file_is_loaded_and_checked_only_when_asked() {
        let mut m = manifest();
        m.accounts_file = Some(file("accounts.json"));
        let p = plan_from(&opts(), m.clone(), b"m").unwrap();
        assert_eq!(p.accounts_file, Some(file("accounts.json")));
        assert!(p.files().iter().any(|f| f.relative == "accounts.json"));
        let mut o = opts();
        o.accounts = false;
        let p = plan_from(&o, m.clone(), b"m").unwrap();
        assert!(p.accounts_file.is_none());
        assert!(!p.files().iter().any(|f| f.relative == "accounts.json"));
        m.accounts_file = Some(file("../accounts.json"));
        assert!(plan_from(&opts(), m, b"m").is_err());
    }

    #[test]
    fn filters_select_databases_and_tables() {
        let mut o = opts();
        o.databases = vec!["b".into()];
        assert_eq!(
            names(&plan_from(&o, manifest(), b"m").unwrap()),
            vec!["b.t1", "b.s"]
        );
        let mut o = opts();
        o.tables = vec!["t1".into()];
        let p = plan_from(&o, manifest(), b"m").unwrap();
        assert_eq!(names(&p), vec!["a.t1", "b.t1"]);
        assert!(p.databases[0].views_file.is_none());
        o.tables = vec!["a.x.y".into(), "x.y".into()];
        assert_eq!(
            names(&plan_from(&o, manifest(), b"m").unwrap()),
            vec!["a.x.y"]
        );
        o.tables = vec!["a.nope".into()];
        assert!(plan_from(&o, manifest(), b"m").is_err());
        o.tables = vec!["v".into()];
        assert!(plan_from(&o, manifest(), b"m").is_err());
    }

    #[test]
    fn target_database_needs_one_database_and_changes_the_load_id() {
        let mut o = opts();
        o.target_database = Some("n".into());
        assert!(plan_from(&o, manifest(), b"m").is_err());
        o.databases = vec!["a".into()];
        let renamed = plan_from(&o, manifest(), b"m").unwrap();
        assert_eq!(renamed.databases[0].rename(), Some(("a", "n")));
        o.target_database = None;
        let same = plan_from(&o, manifest(), b"m").unwrap();
        assert_ne!(renamed.load_id, same.load_id);
        assert_eq!(same.load_id.len(), 32);
    }

    #[test]
    fn files_outside_the_directory_are_refused() {
        let mut m = manifest();
        m.databases[0].tables[0].chunks[0].file = "../etc/passwd".into();
        let e = plan_from(&opts(), m, b"m").unwrap_err();
        assert_eq!(e.exit_code(), 5);
    }

    #[test]
    fn seeding_needs_coordinates_and_consistency() {
        let mut o = opts();
        o.replica = Some(super::super::SourceOptions {
            host: "p".into(),
            port: 3306,
            user: None,
            password: Default::default(),
            ssl: false,
        });
        assert!(matches!(
            plan_from(&o, manifest(), b"m"),
            Err(LoadError::Refused(_))
        ));
        let mut m = manifest();
        m.coordinates.gtid = Some("0-1-5".into());
        assert!(plan_from(&o, m.clone(), b"m").is_ok());
        let mut filtered = m.clone();
        filtered.options.where_clause = Some("id < 10".into());
        assert!(matches!(
            plan_from(&o, filtered, b"m"),
            Err(LoadError::Refused(e)) if e.contains("--where=id < 10")
        ));
        m.consistency.consistent = false;
        assert!(matches!(plan_from(&o, m, b"m"), Err(LoadError::Refused(_))));
    }
}
