//! `rload`: loads an `rdump --dir` dump into a server, in parallel, resumably, and can make
//! the target a replica of the dumped server's source.
//!
//! Data flows one way, as in rdump:
//!
//! ```text
//! options (options::rload) ──► plan (manifest + filters) ──► trust (owners and modes)
//!   ──► verify (every file, before any change) ──► journal (open / resume) ──► schema (databases, sequences, tables without deferred indexes)
//!   ──► data (chunks over --threads connections; indexes added per table when its last chunk is in)
//!   ──► post (routines, views, triggers, events) ──► accounts ──► replica (--seed-replica) ──► summary
//! ```
//!
//! Schema and data overlap: the schema phase (one connection) hands each table to the data
//! phase as soon as it is created, biggest first within a database, and the data
//! connections start on it while the next tables are created.
//!
//! | module | owns |
//! |---|---|
//! | `plan` | reading the manifest, filters and renaming, the load id |
//! | `trust` | that no one but the user and root can change the dump (owners, modes, no symlinks) |
//! | `verify` | sizes, checksums and zstd frames of every file the plan reads |
//! | `chunkfile` | a chunk file read while it loads, hashed again against the manifest |
//! | `journal` | the `rdump_load` journal in the target: exactly-once chunks, resume |
//! | `indexes` | which index definitions of a CREATE TABLE are deferred |
//! | `schema` | existing objects, databases/tables/sequences, deferred ALTERs |
//! | `data` | chunk loading (SQL statements, CSV through LOAD DATA LOCAL), retries after a deadlock, progress |
//! | `post` | routines, views, triggers, events |
//! | `accounts` | the dump's accounts (`--system=users`), last, never the loading account's own |
//! | `replica` | CHANGE MASTER / GTID position, waiting for replication, stopping it on failure |
//! | `script`, `exec` | splitting and running the dump's SQL files |
//! | `conn` | the loader's connections |
//! | `fast` | `--fast-unsafe`: relaxed durability globals (and statistics recalculation) for the load, put back after; the tables analyzed after the data |
//!
//! Every session of the load runs with `foreign_key_checks=0`, `unique_checks=0`,
//! `sql_mode='NO_AUTO_VALUE_ON_ZERO'`, `time_zone='+00:00'` (the session the files were
//! written for: see `format::script::chunk_preamble` and `format::encode::csv`), the dump's character set,
//! and `sql_log_bin=0` unless `--enable-binlog`. Nothing on the target changes before the
//! dump was found safe from others' changes (unless `--skip-permission-check`), the
//! manifest and every file were checked and the target was found free of the dump's objects
//! (or `--drop-existing`, or `--resume` of a journal for this very dump).
//!
//! One rload at a time loads a dump into a server: the run holds `journal::Claim` (a named
//! lock on a connection of its own) from before it reads the journal to its end, and a
//! second run is refused, unchanged, saying that another load holds the dump.
//!
//! Exit codes: see `error`.

pub mod accounts;
pub mod chunkfile;
pub mod conn;
pub mod data;
pub mod error;
pub mod exec;
pub mod fast;
pub mod indexes;
pub mod journal;
pub mod plan;
pub mod post;
pub mod replica;
pub mod schema;
pub mod script;
pub mod trust;
pub mod verify;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use self::conn::LoadConn;
use self::error::{LoadError, Result};
use self::journal::Journal;
use self::plan::LoadPlan;
use crate::client::options::{ConnectionOptions, Password};
use crate::plan::Progress;
use crate::process::progress::{mb, thousands};

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadCommand {
    Help,
    Version,
    Load(Box<LoadOptions>),
}

/// rload's resolved options (see `options::rload` for their spelling).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    pub connection: ConnectionOptions,
    /// The dump directory (holds `rdump.json`).
    pub dir: PathBuf,
    /// `--threads`: connections loading chunks (default 4).
    pub threads: usize,
    /// `--defer-indexes` (default on).
    pub defer_indexes: bool,
    /// `--databases`: only these databases of the dump.
    pub databases: Vec<String>,
    /// `--tables`: only these tables (`db.t` or `t`).
    pub tables: Vec<String>,
    /// `--target-database`: the one selected database's name on the target.
    pub target_database: Option<String>,
    pub drop_existing: bool,
    pub resume: bool,
    pub enable_binlog: bool,
    /// `--fast-unsafe`: relax the target's durability settings for the load (see `fast`).
    pub fast_unsafe: bool,
    /// `--permission-check` (default on): refuse a dump others could change (see `trust`).
    pub permission_check: bool,
    /// `--seed-replica` with its `--source-*` options.
    pub replica: Option<SourceOptions>,
    pub progress: Progress,
    pub quiet: bool,
    pub verbose: bool,
    /// Create the dump's accounts (`accounts.json`, see `accounts`): rload does when no
    /// `--databases`, `--tables` or `--target-database` narrows the load.
    pub accounts: bool,
}

/// `--seed-replica`: the source the target replicates from.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceOptions {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    /// Never printed (`Secret`).
    pub password: Password,
    pub ssl: bool,
}

/// What a load did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub databases: usize,
    pub tables: usize,
    pub files_verified: usize,
    pub bytes_verified: u64,
    pub data: data::DataSummary,
    pub resumed: bool,
    pub replica: Option<replica::ReplicaReport>,
    pub seconds: f64,
}

impl Summary {
    /// The line printed at the end (unless `--quiet`).
    pub fn line(&self) -> String {
        let mut s = format!(
            "rload: {} databases, {} tables, {} rows in {} chunks, {} checked in {} files, {:.1} s",
            thousands(self.databases as u64),
            thousands(self.tables as u64),
            thousands(self.data.rows),
            thousands(self.data.chunks as u64),
            mb(self.bytes_verified),
            thousands(self.files_verified as u64),
            self.seconds
        );
        if self.data.indexed_tables > 0 {
            s.push_str(&format!(
                "; indexes added after the data on {} tables",
                thousands(self.data.indexed_tables as u64)
            ));
        }
        if self.resumed {
            s.push_str(&format!(
                "; resumed: {} chunks were already loaded",
                thousands(self.data.skipped as u64)
            ));
        }
        if let Some(r) = &self.replica {
            s.push_str(&format!(
                "\nrload: replicating from {} since {}; both threads running, {} behind the source",
                r.source,
                r.start,
                r.lag
                    .map(|l| format!("{l} s"))
                    .unwrap_or_else(|| "unknown time".into())
            ));
        }
        s
    }
}

/// The session every connection of the load uses (see the module doc).
pub async fn prepare_session(conn: &mut LoadConn, opts: &LoadOptions) -> Result<()> {
    let mut sql = Vec::new();
    if !opts.enable_binlog {
        sql.push("SET SESSION sql_log_bin = 0");
    }
    sql.extend([
        "SET SESSION foreign_key_checks = 0, unique_checks = 0",
        "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'",
        "SET SESSION time_zone = '+00:00'",
        "SET SESSION net_read_timeout = 3600, net_write_timeout = 3600",
    ]);
    if conn.dialect.is_mariadb() {
        sql.push("SET SESSION max_statement_time = 0");
    }
    for s in sql {
        conn.exec(s, "preparing the load session").await?;
    }
    Ok(())
}

fn say(opts: &LoadOptions, what: impl FnOnce() -> String) {
    if opts.verbose {
        eprintln!("rload: {}", what());
    }
}

/// Loads the dump as `opts` say. `changed` is set once the target has been changed (so a
/// failure after it leaves an incomplete, resumable load).
pub async fn run(opts: &LoadOptions, changed: &AtomicBool) -> Result<Summary> {
    let started = Instant::now();
    let plan = Arc::new(plan::build(opts)?);
    let m = &plan.manifest;
    if !m.options.tz_utc {
        eprintln!(
            "rload: warning: the dump was made with --skip-tz-utc; its files set time_zone \
             '+00:00', so TIMESTAMP values are read as UTC"
        );
    }
    say(opts, || {
        format!(
            "dump of {} {} taken {} ({} data, {} databases selected)",
            m.server.flavor,
            m.server.version,
            m.started_at,
            m.options.format,
            plan.databases.len()
        )
    });

    let files = plan.files();
    if opts.permission_check {
        trust::check(&plan.dir, &files)?;
    }
    let (dir, threads) = (plan.dir.clone(), opts.threads);
    let phase = Instant::now();
    let verified = tokio::task::spawn_blocking(move || verify::verify(&dir, &files, threads))
        .await
        .map_err(|e| LoadError::Refused(format!("verification failed: {e}")))??;
    say(opts, || {
        format!(
            "{} files ({:.1} MB) match the manifest (checked in {:.2} s)",
            verified.files,
            verified.bytes as f64 / 1e6,
            phase.elapsed().as_secs_f64()
        )
    });

    let connection = ConnectionOptions {
        character_set: m.options.character_set.clone(),
        ..opts.connection.clone()
    };
    let phase = Instant::now();
    let mut control = LoadConn::connect(&connection).await?;
    prepare_session(&mut control, opts).await?;
    preflight(&mut control, &plan).await?;
    // LOAD DATA into a table with an AUTO_INCREMENT column holds the table's AUTO-INC lock
    // to its end, unless the server interleaves (innodb_autoinc_lock_mode=2).
    let autoinc_lock = plan.csv
        && control
            .first_value(
                "SELECT @@GLOBAL.innodb_autoinc_lock_mode",
                "reading innodb_autoinc_lock_mode",
            )
            .await
            .ok()
            .flatten()
            .as_deref()
            != Some("2");

    // No other rload of this dump into this server from here to the end.
    let claim = journal::Claim::take(&connection, &plan.load_id).await?;
    let (resuming, conflicts) = admit(&mut control, &plan, opts).await?;
    let relaxed = if opts.fast_unsafe {
        let r = fast::Relaxed::apply(&mut control, &connection).await?;
        eprintln!("{}", r.warning());
        Some(r)
    } else {
        None
    };
    let admitted = Admitted {
        plan,
        connection,
        control,
        claim,
        resuming,
        conflicts,
        autoinc_lock,
        stats_off: relaxed.as_ref().is_some_and(|r| r.stats_off()),
        started,
        phase,
        verified,
    };
    let result = load_admitted(opts, changed, admitted).await;
    let Some(relaxed) = relaxed else {
        return result;
    };
    let server = relaxed.server().to_string();
    match (result, relaxed.restore().await) {
        (Ok(summary), Ok(())) => {
            say(opts, || {
                "--fast-unsafe: the relaxed settings were put back (and InnoDB's redo log \
                 synced: FLUSH ENGINE LOGS)"
                    .into()
            });
            Ok(summary)
        }
        (Ok(_), Err(message)) => Err(LoadError::Rdump(crate::error::Error::Server {
            server,
            context: "the load is complete, but".into(),
            message,
        })),
        (Err(e), Ok(())) => {
            eprintln!("rload: --fast-unsafe: the relaxed settings were put back");
            Err(e)
        }
        (Err(e), Err(message)) => {
            eprintln!("rload: warning: {message}");
            Err(e)
        }
    }
}

/// A load admitted to its target: what `run` hands to the part that changes it.
struct Admitted {
    plan: Arc<LoadPlan>,
    connection: ConnectionOptions,
    control: LoadConn,
    claim: journal::Claim,
    resuming: bool,
    conflicts: Vec<schema::Conflict>,
    autoinc_lock: bool,
    /// `--fast-unsafe` turned InnoDB's automatic statistics recalculation off: the tables
    /// are analyzed after the data (`fast::analyze`).
    stats_off: bool,
    started: Instant,
    /// When the schema phase's clock started (connecting to the target).
    phase: Instant,
    verified: verify::Verified,
}

/// Everything from the first change of the target to the end of the load.
async fn load_admitted(opts: &LoadOptions, changed: &AtomicBool, a: Admitted) -> Result<Summary> {
    let Admitted {
        plan,
        connection,
        mut control,
        claim,
        resuming,
        conflicts,
        autoinc_lock,
        stats_off,
        started,
        phase,
        verified,
    } = a;
    // From here on the target changes.
    changed.store(true, Ordering::Relaxed);
    let journal = Arc::new(Journal::open(&mut control, &plan, resuming).await?);
    journal.register(&mut control).await?;
    if resuming {
        say(opts, || {
            format!(
                "resuming: the journal has {} finished steps",
                journal.done_count()
            )
        });
    }
    // Recorded before any table loads, so that a later --resume (with or without
    // --fast-unsafe) still analyzes the tables this run loads without statistics.
    if stats_off && !journal.was_started(journal::ANALYZE_ITEM) {
        journal
            .mark_started(&mut control, journal::ANALYZE_ITEM)
            .await?;
    }
    let analyze = stats_off || journal.was_started(journal::ANALYZE_ITEM);
    schema::drop_conflicts(&mut control, &conflicts).await?;
    // The data phase starts on each table as soon as the schema phase has created it.
    let (ready, tables) = tokio::sync::mpsc::unbounded_channel();
    let schema_phase = async {
        let mut control = control;
        let created = schema::create(
            &mut control,
            &plan,
            &journal,
            opts.defer_indexes,
            opts.drop_existing,
            &ready,
        )
        .await?;
        drop(ready);
        say(opts, || {
            format!(
                "{} tables ready ({} with deferred indexes) in {:.2} s, their data loading \
                 since the first was",
                created.tables,
                created.deferred,
                phase.elapsed().as_secs_f64()
            )
        });
        // The control connection would idle through the data phase: a fresh one after it.
        control.close().await;
        Ok::<_, LoadError>(created)
    };
    let data_phase = data::load(opts, &connection, &plan, &journal, tables, autoinc_lock);
    let (created, data) = tokio::try_join!(schema_phase, data_phase)?;
    let table_count = created.tables;
    let phase = Instant::now();
    let mut control = LoadConn::connect(&connection).await?;
    prepare_session(&mut control, opts).await?;
    journal.register(&mut control).await?;
    if analyze && !journal.is_done(journal::ANALYZE_ITEM) {
        let begin = Instant::now();
        let n = fast::analyze(&mut control, &plan).await?;
        journal
            .mark_done(&mut control, journal::ANALYZE_ITEM, 0)
            .await?;
        say(opts, || {
            format!(
                "{n} InnoDB tables analyzed in {:.2} s (their statistics were not \
                 recalculated during the --fast-unsafe load)",
                begin.elapsed().as_secs_f64()
            )
        });
    }
    say(opts, || {
        format!(
            "{} rows in {} chunks loaded; creating routines, views, triggers, events",
            data.rows, data.chunks
        )
    });
    post::create(&mut control, &plan, &journal, opts.replica.is_some()).await?;
    let accounts = accounts::create(&mut control, &plan, &journal).await?;
    say(opts, || {
        format!(
            "accounts: {} created or updated; left as the target has them: {}",
            accounts.applied,
            if accounts.kept.is_empty() {
                "none".to_string()
            } else {
                accounts.kept.join(", ")
            }
        )
    });
    let replica = match &opts.replica {
        Some(src) if !journal.is_done(journal::REPLICA_ITEM) => {
            say(opts, || {
                format!("starting replication from {}:{}", src.host, src.port)
            });
            let again = journal.was_started(journal::REPLICA_ITEM);
            journal
                .mark_started(&mut control, journal::REPLICA_ITEM)
                .await?;
            let report = replica::seed(&mut control, &plan.manifest, src, again).await?;
            journal
                .mark_done(&mut control, journal::REPLICA_ITEM, 0)
                .await?;
            Some(report)
        }
        _ => None,
    };
    journal.finish(&mut control).await?;
    control.close().await;
    claim.release().await;
    say(opts, || {
        format!(
            "post objects and journal done in {:.2} s",
            phase.elapsed().as_secs_f64()
        )
    });
    Ok(Summary {
        databases: plan.databases.len(),
        tables: table_count,
        files_verified: verified.files,
        bytes_verified: verified.bytes,
        data,
        resumed: resuming,
        replica,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Whether the load may start on this target (reads only): `(resuming, objects to drop)`.
/// Refused when an interrupted load of the dump exists without `--resume` or
/// `--drop-existing`, or when objects of the dump exist without `--drop-existing`.
async fn admit(
    control: &mut LoadConn,
    plan: &LoadPlan,
    opts: &LoadOptions,
) -> Result<(bool, Vec<schema::Conflict>)> {
    let earlier = journal::earlier(control, &plan.load_id).await?;
    let resuming = opts.resume && earlier.is_some();
    if let (Some(e), false, false) = (&earlier, opts.resume, opts.drop_existing) {
        return Err(LoadError::Refused(format!(
            "an interrupted load of this dump into this server was begun at {} (journal in \
             `{}`); run rload with --resume to finish it, or with --drop-existing to start over",
            e.begun_at,
            journal::SCHEMA
        )));
    }
    if opts.resume && earlier.is_none() {
        say(opts, || {
            "no interrupted load of this dump on the target: loading from the start".into()
        });
    }
    let conflicts = if resuming {
        Vec::new()
    } else {
        schema::conflicts(control, plan).await?
    };
    if !conflicts.is_empty() && !opts.drop_existing {
        let names: Vec<String> = conflicts.iter().take(8).map(|c| c.to_string()).collect();
        return Err(LoadError::Refused(format!(
            "{} object(s) of the dump already exist on the target: {}{}; nothing was changed \
             (use --drop-existing to replace them)",
            conflicts.len(),
            names.join(", "),
            if conflicts.len() > 8 { ", ..." } else { "" }
        )));
    }

    Ok((resuming, conflicts))
}

/// What the target must allow before anything is changed.
async fn preflight(control: &mut LoadConn, plan: &LoadPlan) -> Result<()> {
    if plan.csv {
        let on = control
            .first_value("SELECT @@GLOBAL.local_infile", "reading local_infile")
            .await?;
        if !matches!(on.as_deref(), Some("1") | Some("ON")) {
            return Err(LoadError::Refused(format!(
                "{}: the dump's data files are CSV, loaded with LOAD DATA LOCAL INFILE, but the \
                 server has local_infile=OFF (SET GLOBAL local_infile=ON, or dump with --format=sql)",
                control.server
            )));
        }
    }
    Ok(())
}
