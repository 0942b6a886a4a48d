//! The directory dump (`rdump --dir DIR --threads N`): several connections read tables in
//! key-range chunks inside one consistent view and write one file per chunk, plus schema
//! files, then a manifest (`rdump.json`) written last.
//!
//! It orchestrates only: `group` gives the workers one snapshot and its coordinates,
//! `chunk` plans key ranges, `read` builds each chunk's SELECT, `encode` turns rows into
//! SQL or CSV, `sink` writes each file atomically, `manifest` describes the result,
//! `output::dumpdir` claims and locks the directory (created by rdump, or an empty or
//! unfinished one of the user's that no one else can write) and creates every file in it.
//! Not for: the mysqldump-compatible single stream (see `stream`).
//!
//! Layout, with every name passed through `format::names::dir_file_name` (cut and hashed
//! when its encoded form would not fit in a file name; the manifest has the real names):
//! `DIR/rdump.json`, `DIR/<db>/database.sql`, `DIR/<db>/<t>.schema.sql`,
//! `DIR/<db>/<t>.<NNNNN>.sql|csv[.zst]`, `DIR/<db>/<t>.triggers.sql`, `DIR/<db>/views.sql`,
//! `DIR/<db>/routines.sql`, `DIR/<db>/events.sql`. A table's own files always carry two
//! suffixes, so they never collide with the per-database ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;

use crate::client::conn::{Session, open_sessions};
use crate::dump::catalog;
use crate::dump::chunk;
use crate::dump::consistency::Wants;
use crate::dump::group::{self, GroupStart};
use crate::dump::read::TableRead;
use crate::dump::selection::{
    DDL_RETRIES, changing, prepare_session, resolve_selection, tables_of,
};
use crate::error::{Error, Result};
use crate::format::charset::TextCharset;
use crate::format::encode::csv::CsvEncoder;
use crate::format::encode::sql::{InsertStyle, SqlEncoder};
use crate::format::fingerprint::{Fingerprint, ObjectCounts};
use crate::format::manifest::{
    self, ChunkEntry, ConsistencyEntry, CoordinatesEntry, DatabaseEntry, FileEntry, Manifest,
    OptionsEntry, ServerEntry, SourceEntry, TableEntry,
};
use crate::format::names::dir_file_name as file_name;
use crate::format::objects::{TableInfo, TableKind};
use crate::format::script;
use crate::output::destination::{Destination, Place};
use crate::output::dumpdir::DumpDir;
use crate::output::sink::{Sealed, ZstdContext};
use crate::plan::{DirFormat, DirOptions, Plan};
use crate::process::progress::{Board, Display, elapsed, mb, per_second, thousands};
use crate::sql::dialect::Flavor;
use crate::sql::quote::{ident, qualified};

/// Encoded rows go to the file in pieces of about this size: the bound on a worker's memory.
const FLUSH_AT: usize = 256 * 1024;

/// One chunk to read and write.
struct Job {
    db: String,
    table: String,
    /// Index of the table in the manifest's list, to file the result under it.
    slot: usize,
    chunk: chunk::Chunk,
    /// How many chunks the table has (for "chunk 3 of 12").
    of: usize,
    read: Arc<TableRead>,
    /// The database's directory in the dump, and the file's name there.
    dir: Place,
    name: String,
    /// Path relative to the dump directory, for the manifest.
    relative: String,
}

/// What the dump reports at the end.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DirSummary {
    pub databases: usize,
    pub tables: usize,
    pub rows: u64,
    pub files: usize,
    pub bytes: u64,
    pub lock_ms: u64,
    pub method: &'static str,
    /// The dumped databases' names and the data's coordinates (`file`, `position`,
    /// `gtid`), as the manifest records them: what a backup's snapshot says of it.
    pub database_names: Vec<String>,
    pub coordinates: serde_json::Value,
    /// Views, routines, triggers and events per database (what a drill compares).
    pub objects: std::collections::BTreeMap<String, ObjectCounts>,
}

pub async fn run(plan: &Plan, opts: &DirOptions) -> Result<DirSummary> {
    // Claimed (and locked) before connecting: an unusable directory fails at once.
    let dump_dir = DumpDir::claim(&opts.dir, manifest::FILE_NAME)?;
    run_to(plan, opts, Destination::Dir(dump_dir)).await
}

/// The same dump into `dump_dir`: a claimed directory, or a backup being written
/// (`rbackup backup`; `opts.dir` is then unused and the caller commits the backup).
pub async fn run_to(plan: &Plan, opts: &DirOptions, dump_dir: Destination) -> Result<DirSummary> {
    // The data files say TIME_ZONE='+00:00': TIMESTAMPs are always read in UTC here.
    let mut utc = plan.clone();
    utc.shape.tz_utc = true;
    if utc.selection.system_users {
        // The accounts come as accounts.json, not as rows of mysql's privilege tables.
        for t in manifest::PRIVILEGE_TABLES {
            utc.selection
                .ignore_tables
                .push(("mysql".to_string(), t.to_string()));
        }
    }
    let plan = &utc;
    if opts.format == DirFormat::Csv
        && !plan
            .connection
            .character_set
            .eq_ignore_ascii_case("utf8mb4")
    {
        return Err(Error::Usage(format!(
            "--format=csv files are utf8mb4; --default-character-set={} is not supported with it",
            plan.connection.character_set
        )));
    }
    let started = Instant::now();
    let started_at = chrono::Local::now().to_rfc3339();

    let mut control = Session::connect(&plan.connection).await?;
    prepare_session(&mut control, plan).await?;
    group::bound_lock_waits(&mut control).await?;
    let selection = resolve_selection(&mut control, plan, None).await?;
    let mut tables: Vec<(String, TableInfo)> = Vec::new();
    for (db, named) in &selection {
        for t in tables_of(&mut control, plan, db, named, None).await? {
            tables.push((db.clone(), t));
        }
    }

    let threads = opts.threads.max(1);
    let (mut workers, refused) = open_sessions(&plan.connection, threads, |mut w| async {
        prepare_session(&mut w, plan).await?;
        group::bound_lock_waits(&mut w).await?;
        Ok(w)
    })
    .await;
    // An account or server that allows fewer connections (1226 max_user_connections, 1040
    // too many connections): dump with the workers that opened, at least one.
    if let Some(e) = refused {
        if workers.is_empty() {
            return Err(e);
        }
        eprintln!(
            "rdump: warning: {} of {threads} worker connections could be opened ({e}); dumping with {}",
            workers.len(),
            workers.len()
        );
    }
    let opts = &DirOptions {
        threads: workers.len(),
        ..opts.clone()
    };

    // The consistent view: lock, snapshots, coordinates; DDL held off; then release.
    let wants = Wants::from_plan(&plan.consistency, &control.dialect);
    // A directory dump always records the coordinates of its data when there is a binlog.
    let has_binlog = control_has_binlog(&mut control).await?;
    let wants = Wants {
        binlog: wants.binlog || has_binlog,
        gtid: wants.gtid || has_binlog,
        ..wants
    };
    let mut strategy = group::group_strategy(opts.consistency, &control.dialect, wants)?;
    // The catalog of the coordinates: what existed before the lock may have changed while
    // it was taken (a table created before the coordinates but listed too early would be
    // in neither the dump nor the binlog replayed after it). A DDL statement still running
    // under the lock (see `selection::changing`) is let finish, and the lock taken again.
    let mut attempt = 0;
    let (start, selection, tables, lock_started) = loop {
        attempt += 1;
        let lock_started = Instant::now();
        let start = strategy.lock(&mut control, &mut workers, &tables).await?;
        // The listing may wait behind a statement that waits for the lock: bounded.
        let bound = group::set_lock_wait(&mut control, "1").await?;
        let catalog = catalog_at_coordinates(
            &mut control,
            plan,
            &start,
            selection.clone(),
            tables.clone(),
        )
        .await;
        group::set_lock_wait(&mut control, &bound).await?;
        let (listed_selection, listed, mut busy) = match catalog {
            Ok((s, listed)) => {
                let busy = changing(listed.iter().map(|(db, t)| (db.as_str(), t)));
                (s, listed, busy)
            }
            Err(e) if e.sql_error_code() == Some(1205) => (
                selection.clone(),
                tables.clone(),
                vec!["a table being listed".to_string()],
            ),
            Err(e) => return Err(e),
        };
        if busy.is_empty() {
            let read = read_by_workers(plan, &start, &listed);
            if hold_off_ddl(&mut workers, &listed, &read).await? {
                break (start, listed_selection, listed, lock_started);
            }
            busy.push("a table the workers open".into());
        }
        strategy.release(&mut control).await?;
        for w in workers.iter_mut() {
            w.exec("ROLLBACK", "ending the snapshot").await?;
        }
        if attempt >= DDL_RETRIES {
            return Err(Error::Consistency {
                server: control.server.clone(),
                message: format!(
                    "{} still being changed by DDL statements after {attempt} tries to take the \
                     dump's lock between them",
                    busy.join(", ")
                ),
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(20 * u64::from(attempt))).await;
    };
    let non_transactional: Vec<usize> = tables
        .iter()
        .enumerate()
        .filter(|(_, (_, t))| {
            t.kind == TableKind::Base && !t.is_transactional() && !t.data_lives_elsewhere()
        })
        .map(|(i, _)| i)
        .collect();
    let read_by_workers = read_by_workers(plan, &start, &tables);
    let mut manifest = new_manifest(plan, opts, &control, &started_at, strategy.name(), &start);
    let mut entries = table_entries(&tables);
    if start.blocks_writes {
        // Non-transactional tables have no snapshot: read them while writes are stopped.
        let mut zstd = None;
        for &i in &non_transactional {
            let (db, t) = &tables[i];
            let dir = dump_dir.subdir(&file_name(db))?;
            let jobs = plan_table(&mut control, plan, opts, &dir, db, t, i, u64::MAX).await?;
            entries[i].columns = column_entries(&jobs);
            for job in jobs {
                let (sink, written) =
                    write_chunk(&mut control, plan, opts, &job, None, &mut zstd).await?;
                let chunk = written.commit(sink)?;
                entries[job.slot].rows += chunk.rows;
                entries[job.slot].chunks.push(chunk);
            }
        }
    }
    // The definitions of the tables the workers do not hold (MyISAM and Aria tables, read
    // under the lock), read before it is released: later, DDL could change them. Those
    // the workers hold cannot change until the dump ends; the schema files are written
    // after the release (writing them under the lock held commits for 1.4 to 2.8 s with
    // 200 tables, against 40 to 70 ms).
    let mut creates = std::collections::HashMap::new();
    // (LOCK TABLES holds DDL off the locked tables only, but those are the ones read here.)
    if start.blocks_ddl || start.blocks_writes {
        for &i in &non_transactional {
            let (db, t) = &tables[i];
            let create = catalog::show_create_table(&mut control, db, t).await?;
            creates.insert((db.clone(), t.name.clone()), create);
        }
    }
    strategy.release(&mut control).await?;
    let lock_ms = group::millis_since(lock_started);
    manifest.consistency.lock_ms = lock_ms;
    if !start.blocks_writes {
        manifest.consistency.non_transactional_consistent = non_transactional.is_empty();
    }
    let mut databases = Vec::new();
    let mut objects = std::collections::BTreeMap::new();
    for (db, _) in &selection {
        let (entry, counts) = write_database_files(
            &mut control,
            plan,
            &dump_dir,
            db,
            &tables,
            &mut entries,
            &creates,
        )
        .await?;
        databases.push(entry);
        objects.insert(db.clone(), counts);
    }

    // Then the chunk queue, biggest tables first.
    let mut order = read_by_workers;
    order.sort_by_key(|&i| std::cmp::Reverse(entries[i].estimated_rows));
    let mut progress = Progress_::new(plan, order.iter().map(|&i| entries[i].estimated_rows).sum());

    // Worker 0 plans the tables' chunks, biggest first, and then reads chunks too; the
    // others start on the first table's chunks at once. Planning may walk a key, which
    // reads the table: it runs in a worker's snapshot, which holds every table already
    // (`hold_off_ddl`), never on the control connection, whose query would queue behind a
    // DDL statement waiting for the workers while they wait for its chunks.
    let (queue, jobs) = tokio::sync::mpsc::unbounded_channel::<Job>();
    let jobs = Arc::new(tokio::sync::Mutex::new(jobs));
    let to_plan = order
        .iter()
        .map(|&i| {
            let (db, t) = &tables[i];
            Ok((i, db.clone(), t.clone(), dump_dir.subdir(&file_name(db))?))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut planning = Some((queue, to_plan));
    let mut set = tokio::task::JoinSet::new();
    for (n, mut w) in workers.into_iter().enumerate() {
        let jobs = Arc::clone(&jobs);
        let plan = plan.clone();
        let opts = opts.clone();
        let bar = progress.worker(n);
        let planning = planning.take();
        set.spawn(async move {
            let mut columns = Vec::new();
            if let Some((queue, to_plan)) = planning {
                for (slot, db, t, dir) in to_plan {
                    bar.set_message(format!("planning {}", qualified(&db, &t.name)));
                    let planned =
                        plan_table(&mut w, &plan, &opts, &dir, &db, &t, slot, opts.chunk_rows)
                            .await?;
                    columns.push((slot, column_entries(&planned)));
                    if planned.into_iter().any(|job| queue.send(job).is_err()) {
                        break;
                    }
                }
            }
            let mut done = Vec::new();
            // The previous chunk's file is fsynced and renamed on a blocking thread while
            // this worker reads the next one (at most one pending per worker). A pending
            // commit always runs to its end, also when the dump fails: the runtime waits
            // for blocking tasks, so no temporary file is left behind.
            let mut pending: Option<(usize, JoinHandle<Result<ChunkEntry>>)> = None;
            // One zstd context for all this worker's files.
            let mut zstd = None;
            loop {
                let job = jobs.lock().await.recv().await;
                let Some(job) = job else { break };
                bar.set_message(format!(
                    "{} chunk {} of {}",
                    qualified(&job.db, &job.table),
                    job.chunk.index + 1,
                    job.of
                ));
                let (sink, written) =
                    write_chunk(&mut w, &plan, &opts, &job, Some(&bar), &mut zstd).await?;
                if let Some((slot, commit)) = pending.take() {
                    done.push((slot, joined_commit(commit).await?));
                }
                let commit = tokio::task::spawn_blocking(move || written.commit(sink));
                pending = Some((job.slot, commit));
            }
            if let Some((slot, commit)) = pending.take() {
                done.push((slot, joined_commit(commit).await?));
            }
            bar.finish();
            let _ = w.exec("COMMIT", "ending the snapshot").await;
            w.close().await;
            Ok::<_, Error>((done, columns))
        });
    }
    drop(planning);
    // JoinSet aborts the other workers when dropped on the first error.
    while let Some(joined) = set.join_next().await {
        let (done, columns) =
            joined.map_err(|e| Error::Usage(format!("a worker failed: {e}")))??;
        for (slot, entry) in done {
            entries[slot].rows += entry.rows;
            entries[slot].chunks.push(entry);
        }
        for (slot, columns) in columns {
            entries[slot].columns = columns;
        }
    }
    progress.finish();

    for e in &mut entries {
        e.chunks.sort_by_key(|c| c.index);
    }
    let mut summary = finish_manifest(&mut manifest, databases, entries, lock_ms);
    if plan.selection.system_users {
        let f = write_accounts(&mut control, &dump_dir).await?;
        summary.files += 1;
        summary.bytes += f.bytes;
        manifest.accounts_file = Some(f);
    }
    control.close().await;
    let written = manifest::write(&dump_dir.root(), &manifest)?;
    dump_dir.finish();
    let c = &manifest.coordinates;
    let summary = DirSummary {
        method: strategy.name(),
        database_names: manifest.databases.iter().map(|d| d.name.clone()).collect(),
        coordinates: serde_json::json!({
            "file": c.binlog_file, "position": c.binlog_position, "gtid": c.gtid,
        }),
        files: summary.files + 1,
        bytes: summary.bytes + written.bytes,
        objects,
        ..summary
    };
    if !plan.quiet {
        let before_zstd = if plan.zstd.is_some() {
            format!(" ({} of data before zstd)", mb(progress.data_bytes()))
        } else {
            String::new()
        };
        eprintln!(
            "rdump: {} databases, {} tables, {} rows, {} files, {}{before_zstd} in {:.1} s; consistency {} (lock held {} ms)",
            thousands(summary.databases as u64),
            thousands(summary.tables as u64),
            thousands(summary.rows),
            thousands(summary.files as u64),
            mb(summary.bytes),
            started.elapsed().as_secs_f64(),
            summary.method,
            summary.lock_ms
        );
    }
    Ok(summary)
}

/// The selection and tables as of the coordinates `start` read. Under a lock that holds
/// DDL off, listed again (a table created or dropped, a database created, between the
/// first listing and the lock is then seen as it is at the coordinates). Under one that
/// does not (LOCK TABLES, a lone snapshot) but claims consistency, listed again too, and a
/// table created or dropped meanwhile fails the dump, naming it: whether that happened
/// before or after the coordinates cannot be told, and a guess would restore wrong.
async fn catalog_at_coordinates(
    control: &mut Session,
    plan: &Plan,
    start: &GroupStart,
    selection: Vec<(String, Vec<String>)>,
    tables: Vec<(String, TableInfo)>,
) -> Result<(Vec<(String, Vec<String>)>, Vec<(String, TableInfo)>)> {
    if !start.blocks_ddl && !start.consistent {
        return Ok((selection, tables));
    }
    let again = if start.blocks_ddl {
        resolve_selection(control, plan, None).await?
    } else {
        selection.clone()
    };
    let mut listed = Vec::new();
    for (db, named) in &again {
        for t in tables_of(control, plan, db, named, None).await? {
            listed.push((db.clone(), t));
        }
    }
    if start.blocks_ddl {
        return Ok((again, listed));
    }
    // Engines are left out: one listed while a DDL statement changed the table is none.
    let key = |(db, t): &(String, TableInfo)| (db.clone(), t.name.clone(), format!("{:?}", t.kind));
    let before: std::collections::BTreeSet<_> = tables.iter().map(key).collect();
    let after: std::collections::BTreeSet<_> = listed.iter().map(key).collect();
    let changed: Vec<String> = before
        .symmetric_difference(&after)
        .map(|(db, t, _)| qualified(db, t))
        .collect();
    if changed.is_empty() {
        return Ok((selection, listed));
    }
    Err(Error::Consistency {
        server: control.server.clone(),
        message: format!(
            "{} created or dropped while the dump took its {} view, which does \
             not hold DDL off: the dump cannot tell whether before or after its coordinates; \
             run it again, or use --consistency=auto, flush or backup-lock",
            changed.join(", "),
            if start.blocks_writes {
                "locked"
            } else {
                "snapshot"
            }
        ),
    })
}

/// Coordinates are always recorded in a directory dump when the server has a binlog.
async fn control_has_binlog(control: &mut Session) -> Result<bool> {
    let v = control
        .first_value("SELECT @@GLOBAL.log_bin", "checking for a binary log")
        .await?;
    Ok(matches!(v.as_deref(), Some("1") | Some("ON")))
}

/// Opens every table the workers read in every worker's snapshot, while the lock holds
/// DDL off (`group::hold_tables`): a DDL statement on them then waits until the dump ends,
/// definitions match the data, and no worker ever waits for a table's metadata lock behind
/// such a statement. Transactional tables always (their definitions must match the data
/// even with `--no-data`); MyISAM/Aria tables only when the workers read them (no lock
/// that stops writes): under the control connection's LOCK TABLES a SELECT on them takes a
/// table-level read lock, which queues behind a writer waiting for that lock while the
/// control connection waits for this step (a deadlock seen in the consistency test), so
/// they are read under the lock instead.
///
/// `Ok(false)` when a table could not be opened within a second (see
/// `group::try_hold_tables`).
async fn hold_off_ddl(
    workers: &mut [Session],
    tables: &[(String, TableInfo)],
    read_by_workers: &[usize],
) -> Result<bool> {
    let mut read = vec![false; tables.len()];
    for &i in read_by_workers {
        read[i] = true;
    }
    let held: Vec<(String, String)> = tables
        .iter()
        .enumerate()
        .filter(|(i, (_, t))| {
            t.kind == TableKind::Base && !t.is_log_table && (t.is_transactional() || read[*i])
        })
        .map(|(_, (db, t))| (db.clone(), t.name.clone()))
        .collect();
    group::try_hold_tables(workers, &held).await
}

/// The tables the workers read: each has its data here, and is not read under the lock.
fn read_by_workers(plan: &Plan, start: &GroupStart, tables: &[(String, TableInfo)]) -> Vec<usize> {
    (0..tables.len())
        .filter(|&i| {
            let (db, t) = &tables[i];
            t.kind == TableKind::Base
                && !t.data_lives_elsewhere()
                && plan.selection.wants_rows(db, &t.name)
                && (!start.blocks_writes || t.is_transactional())
        })
        .collect()
}

fn table_entries(tables: &[(String, TableInfo)]) -> Vec<TableEntry> {
    tables
        .iter()
        .map(|(db, t)| TableEntry::new(db, t))
        .collect()
}

/// The data files' columns and their kinds, for the manifest.
fn column_entries(jobs: &[Job]) -> Vec<manifest::ColumnEntry> {
    jobs.first()
        .map(|job| {
            job.read
                .columns
                .iter()
                .zip(&job.read.kinds)
                .map(|(name, kind)| manifest::ColumnEntry {
                    name: name.clone(),
                    kind: kind.name().to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn relative(db: &str, name: &str) -> String {
    format!("{}/{}", file_name(db), name)
}

/// Chunks of one table as jobs.
#[allow(clippy::too_many_arguments)]
async fn plan_table(
    control: &mut Session,
    plan: &Plan,
    opts: &DirOptions,
    dir: &Place,
    db: &str,
    t: &TableInfo,
    slot: usize,
    chunk_rows: u64,
) -> Result<Vec<Job>> {
    let columns = catalog::columns(control, db, &t.name).await?;
    let read = Arc::new(TableRead::plan(
        &control.dialect,
        db,
        &t.name,
        &columns,
        plan.selection.where_clause.as_deref(),
        &[],
        plan.shape.complete_insert,
    ));
    let chunks = if chunk_rows == u64::MAX {
        vec![chunk::Chunk {
            index: 0,
            range: None,
            estimated_rows: 0,
        }]
    } else {
        chunk::plan_chunks(control, db, &t.name, chunk_rows)
            .await?
            .chunks
    };
    let ext = match (opts.format, plan.zstd.is_some()) {
        (DirFormat::Sql, false) => "sql",
        (DirFormat::Sql, true) => "sql.zst",
        (DirFormat::Csv, false) => "csv",
        (DirFormat::Csv, true) => "csv.zst",
    };
    let of = chunks.len();
    Ok(chunks
        .into_iter()
        .map(|chunk| {
            let name = format!("{}.{:05}.{ext}", file_name(&t.name), chunk.index);
            Job {
                db: db.to_string(),
                table: t.name.clone(),
                slot,
                dir: dir.clone(),
                relative: relative(db, &name),
                name,
                read: Arc::clone(&read),
                chunk,
                of,
            }
        })
        .collect())
}

enum Encoder {
    Sql(SqlEncoder),
    Csv(CsvEncoder),
}

/// A chunk file written but not yet committed, and what its manifest entry will say.
struct Uncommitted {
    index: usize,
    file: String,
    rows: u64,
    range: Option<String>,
}

impl Uncommitted {
    /// Syncs and renames the file into place (blocking I/O) and returns the entry.
    fn commit(self, sink: Sealed) -> Result<ChunkEntry> {
        let written = sink.commit()?;
        Ok(ChunkEntry {
            index: self.index,
            file: self.file,
            rows: self.rows,
            bytes: written.bytes,
            checksum: written.checksum_hex(),
            range: self.range,
        })
    }
}

async fn joined_commit(commit: JoinHandle<Result<ChunkEntry>>) -> Result<ChunkEntry> {
    commit
        .await
        .map_err(|e| Error::Usage(format!("committing a chunk file failed: {e}")))?
}

/// Reads one chunk and writes its file, sealed (its zstd context back in `zstd` for the
/// next file, not held by the pending commit) but not yet committed (see
/// `Uncommitted::commit`).
async fn write_chunk(
    s: &mut Session,
    plan: &Plan,
    opts: &DirOptions,
    job: &Job,
    bar: Option<&WorkerProgress>,
    zstd: &mut Option<ZstdContext>,
) -> Result<(Sealed, Uncommitted)> {
    let sql = job.read.select_sql(job.chunk.range.as_deref());
    let context = format!(
        "dumping table {} chunk {}",
        qualified(&job.db, &job.table),
        job.chunk.index
    );
    let mut sink = job.dir.sink(&job.name, plan.zstd, zstd.take())?;
    let mut buf: Vec<u8> = Vec::with_capacity(FLUSH_AT + 64 * 1024);
    let mut encoder = match opts.format {
        DirFormat::Sql => {
            buf.extend_from_slice(
                script::chunk_preamble(&plan.connection.character_set).as_bytes(),
            );
            Encoder::Sql(SqlEncoder::new(
                &ident(&job.table),
                job.read.insert_columns.as_deref(),
                job.read.kinds.clone(),
                InsertStyle {
                    mode: plan.shape.insert_mode,
                    // INSERT DELAYED returns before the rows are in: not for rload.
                    delayed: false,
                    extended: plan.shape.extended_insert,
                    hex_blob: plan.shape.hex_blob,
                    net_buffer_length: plan.shape.net_buffer_length,
                    charset: TextCharset::of(&plan.connection.character_set),
                },
            ))
        }
        DirFormat::Csv => Encoder::Csv(CsvEncoder::new(job.read.kinds.clone())),
    };
    let mut unreported = 0u64;
    // A backup's chunk files record their rows' fingerprints (`format::fingerprint`); a
    // drill's fingerprint-only dump encodes nothing.
    let fingerprinting = job.dir.fingerprints();
    let encoding = !sink.discards();
    let mut fingerprint = Fingerprint::default();
    let mut scratch = Vec::new();
    let rows = s
        .stream(&sql, &context, |cells| {
            if fingerprinting {
                fingerprint.push_row(cells, &mut scratch);
            }
            if encoding {
                match &mut encoder {
                    Encoder::Sql(e) => e.push_row(cells, &mut buf),
                    Encoder::Csv(e) => e.push_row(cells, &mut buf),
                }
            }
            unreported += 1;
            if buf.len() >= FLUSH_AT {
                sink.write_all(&buf)?;
                if let Some(bar) = bar {
                    bar.inc(unreported, buf.len() as u64);
                }
                buf.clear();
                unreported = 0;
            }
            Ok(())
        })
        .await?;
    if let Encoder::Sql(e) = &mut encoder {
        e.finish(&mut buf);
    }
    sink.write_all(&buf)?;
    if let Some(bar) = bar {
        bar.inc(unreported, buf.len() as u64);
    }
    if fingerprinting {
        sink.set_meta(fingerprint.to_meta(&job.db, &job.table));
    }
    let (sealed, context) = sink.seal()?;
    *zstd = context;
    Ok((
        sealed,
        Uncommitted {
            index: job.chunk.index,
            file: job.relative.clone(),
            rows,
            range: job.chunk.range.clone(),
        },
    ))
}

/// `--system=users`: every account with its CREATE USER, grants and default role, as the
/// JSON list `accounts.json` (rload turns it into statements, leaving out accounts the
/// target has).
async fn write_accounts(control: &mut Session, dump_dir: &Destination) -> Result<FileEntry> {
    let (accounts, ignored) = catalog::accounts(control).await?;
    for name in ignored {
        eprintln!(
            "rdump: warning: account {name} is not dumped: the server ignores it \
             (a host name under skip_name_resolve) and does not show it"
        );
    }
    let text = serde_json::to_vec_pretty(&accounts).expect("accounts serialize");
    let mut sink = dump_dir.root().sink(manifest::ACCOUNTS_FILE, None, None)?;
    sink.write_all(&text)?;
    let w = sink.commit()?;
    Ok(FileEntry {
        file: manifest::ACCOUNTS_FILE.to_string(),
        bytes: w.bytes,
        checksum: w.checksum_hex(),
    })
}

/// Writes one schema file and returns its manifest entry.
fn schema_file(plan: &Plan, dir: &Place, db: &str, name: &str, text: &str) -> Result<FileEntry> {
    let mut sink = dir.sink(name, None, None)?;
    sink.write_all(script::schema_preamble(&plan.connection.character_set).as_bytes())?;
    sink.write_all(&TextCharset::of(&plan.connection.character_set).script(text))?;
    let w = sink.commit()?;
    Ok(FileEntry {
        file: relative(db, name),
        bytes: w.bytes,
        checksum: w.checksum_hex(),
    })
}

/// database.sql, per-table schema and trigger files, views.sql, routines.sql, events.sql.
async fn write_database_files(
    s: &mut Session,
    plan: &Plan,
    dump_dir: &Destination,
    db: &str,
    tables: &[(String, TableInfo)],
    entries: &mut [TableEntry],
    creates: &std::collections::HashMap<(String, String), String>,
) -> Result<(DatabaseEntry, ObjectCounts)> {
    let mut counts = ObjectCounts::default();
    let dir = dump_dir.subdir(&file_name(db))?;
    let shape = &plan.shape;
    let sel = &plan.selection;
    let mut entry = DatabaseEntry::new(db);
    let create = catalog::show_create_database(s, db).await?;
    entry.database_file = Some(schema_file(
        plan,
        &dir,
        db,
        "database.sql",
        &script::database(shape, db, Some(&create), false),
    )?);
    let mut views = String::new();
    let mut final_views = String::new();
    for (i, (tdb, t)) in tables.iter().enumerate().filter(|(_, (d, _))| d == db) {
        let base = file_name(&t.name);
        match t.kind {
            TableKind::Base => {
                let mut create = match creates.get(&(tdb.clone(), t.name.clone())) {
                    Some(create) => create.clone(),
                    None => catalog::show_create_table(s, tdb, t).await?,
                };
                if t.is_log_table {
                    create = create.replacen("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ", 1);
                }
                let text = script::table_structure(
                    shape,
                    &t.name,
                    &create,
                    &plan.connection.character_set,
                );
                entries[i].schema_file = Some(schema_file(
                    plan,
                    &dir,
                    db,
                    &format!("{base}.schema.sql"),
                    &text,
                )?);
                if sel.triggers {
                    let triggers = catalog::triggers(s, tdb, &t.name).await?;
                    counts.triggers += triggers.len() as u64;
                    if !triggers.is_empty() {
                        let text: String =
                            triggers.iter().map(|d| script::trigger(shape, d)).collect();
                        entries[i].triggers_file = Some(schema_file(
                            plan,
                            &dir,
                            db,
                            &format!("{base}.triggers.sql"),
                            &text,
                        )?);
                    }
                }
            }
            TableKind::Sequence => {
                let create = catalog::show_create_table(s, tdb, t).await?;
                let next = catalog::sequence_next_value(s, tdb, &t.name).await?;
                let text = script::sequence_structure(shape, &t.name, &create, Some(&next));
                entries[i].schema_file = Some(schema_file(
                    plan,
                    &dir,
                    db,
                    &format!("{base}.schema.sql"),
                    &text,
                )?);
            }
            TableKind::View => {
                counts.views += 1;
                let cols = catalog::view_columns(s, tdb, &t.name).await?;
                views.push_str(&script::view_placeholder(shape, &t.name, &cols));
                let d = catalog::show_create_view(s, tdb, &t.name).await?;
                final_views.push_str(&script::view_final(shape, &d));
            }
        }
    }
    if !views.is_empty() {
        views.push_str(&final_views);
        entry.views_file = Some(schema_file(plan, &dir, db, "views.sql", &views)?);
    }
    if sel.routines {
        let routines = catalog::routines(s, db).await?;
        counts.routines = routines.len() as u64;
        let text: String = routines
            .iter()
            .map(|(rt, d)| script::routine(*rt, d))
            .collect();
        entry.routines_file = Some(schema_file(plan, &dir, db, "routines.sql", &text)?);
    }
    if sel.events {
        let events = catalog::events(s, db).await?;
        counts.events = events.len() as u64;
        let text: String = events.iter().map(script::event).collect();
        entry.events_file = Some(schema_file(plan, &dir, db, "events.sql", &text)?);
    }
    Ok((entry, counts))
}

/// Progress on stderr (see `process::progress`): one bar for the whole dump, one line per
/// worker; a plain line every few seconds with `--progress=always` when stderr is not a
/// terminal.
struct Progress_ {
    board: Board,
    total: ProgressBar,
    /// Encoded bytes written by all workers (before compression: "of data").
    bytes: Arc<AtomicU64>,
}

/// A worker's line; rows it reports also advance the whole dump's bar.
pub struct WorkerProgress {
    line: ProgressBar,
    total: ProgressBar,
    bytes: Arc<AtomicU64>,
}

/// The whole dump's status: rows against the catalog's estimate (labelled as one), rates,
/// bytes of data (encoded, before any compression).
fn dump_status(total: &ProgressBar, bytes: u64) -> String {
    let secs = total.elapsed().as_secs_f64();
    let rows = total.position();
    let mut s = format!(
        "{} of about {} rows (estimate), {} rows/s, {} of data ({}/s)",
        thousands(rows),
        thousands(total.length().unwrap_or(0)),
        per_second(rows, secs),
        mb(bytes),
        mb((bytes as f64 / secs.max(0.001)) as u64),
    );
    if total.length().is_some_and(|l| rows < l) && rows > 0 {
        s.push_str(&format!(", ETA {}", elapsed(total.eta())));
    }
    s
}

impl WorkerProgress {
    fn set_message(&self, msg: String) {
        self.line.set_message(msg);
    }
    /// Rows and encoded bytes handed to the files since the last report.
    fn inc(&self, rows: u64, bytes: u64) {
        self.total.inc(rows);
        let total = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.total.set_message(dump_status(&self.total, total));
    }
    fn finish(&self) {
        self.line.finish_and_clear();
    }
}

impl Progress_ {
    fn new(plan: &Plan, rows: u64) -> Progress_ {
        let mut board = Board::new(plan.progress);
        let total = board.multi.add(ProgressBar::new(rows.max(1)));
        total.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}")
                .expect("progress template")
                .progress_chars("=> "),
        );
        if board.display == Display::Bars {
            total.enable_steady_tick(std::time::Duration::from_millis(200));
        }
        let bytes = Arc::new(AtomicU64::new(0));
        let (bar, counted) = (total.clone(), Arc::clone(&bytes));
        board.lines_every_few_seconds("rdump", move || {
            dump_status(&bar, counted.load(Ordering::Relaxed))
        });
        Progress_ {
            board,
            total,
            bytes,
        }
    }

    fn worker(&self, n: usize) -> WorkerProgress {
        let line = self.board.multi.add(ProgressBar::new_spinner());
        line.set_style(
            ProgressStyle::with_template(&format!("  thread {n}: {{msg}}"))
                .expect("progress template"),
        );
        WorkerProgress {
            line,
            total: self.total.clone(),
            bytes: Arc::clone(&self.bytes),
        }
    }

    /// Bytes of data written (before compression).
    fn data_bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn finish(&mut self) {
        self.total.finish_and_clear();
        self.board.finish();
    }
}

/// The manifest of a dump starting now: server, options, consistency and coordinates;
/// files are filed by `finish_manifest`.
fn new_manifest(
    plan: &Plan,
    opts: &DirOptions,
    control: &Session,
    started_at: &str,
    method: &str,
    start: &GroupStart,
) -> Manifest {
    let c = &start.coordinates;
    Manifest {
        format: manifest::FORMAT.into(),
        format_version: manifest::FORMAT_VERSION,
        rdump_version: env!("CARGO_PKG_VERSION").into(),
        complete: false,
        server: ServerEntry {
            flavor: match control.dialect.flavor {
                Flavor::MariaDb => "MariaDB",
                Flavor::MySql => "MySQL",
            }
            .into(),
            version: control.dialect.version_string.clone(),
            host: control.server.clone(),
        },
        started_at: started_at.to_string(),
        finished_at: None,
        options: OptionsEntry {
            threads: opts.threads,
            chunk_rows: opts.chunk_rows,
            format: match opts.format {
                DirFormat::Sql => "sql",
                DirFormat::Csv => "csv",
            }
            .into(),
            zstd_level: plan.zstd,
            where_clause: plan.selection.where_clause.clone(),
            character_set: plan.connection.character_set.clone(),
            tz_utc: plan.shape.tz_utc,
        },
        consistency: ConsistencyEntry {
            method: method.to_string(),
            lock_ms: 0,
            consistent: start.consistent,
            non_transactional_consistent: start.blocks_writes,
        },
        coordinates: CoordinatesEntry {
            binlog_file: c.binlog.as_ref().map(|(f, _)| f.clone()),
            binlog_position: c.binlog.as_ref().map(|(_, p)| *p),
            gtid: c.gtid.clone(),
            source: c.source.as_ref().map(|s| SourceEntry {
                host: s.host.clone(),
                port: s.port,
                binlog_file: s.file.clone(),
                binlog_position: s.pos,
                gtid: s.gtid.clone(),
            }),
        },
        csv: (opts.format == DirFormat::Csv).then(|| {
            crate::format::encode::csv::dialect_description()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        }),
        databases: Vec::new(),
        accounts_file: None,
    }
}

/// Files the tables under their databases, marks the manifest complete, and sums up.
fn finish_manifest(
    manifest: &mut Manifest,
    mut databases: Vec<DatabaseEntry>,
    tables: Vec<TableEntry>,
    lock_ms: u64,
) -> DirSummary {
    for t in tables {
        if let Some(d) = databases.iter_mut().find(|d| d.name == t.db) {
            d.tables.push(t);
        }
    }
    let mut summary = DirSummary {
        databases: databases.len(),
        lock_ms,
        ..Default::default()
    };
    for d in &databases {
        for f in d.files() {
            summary.files += 1;
            summary.bytes += f.bytes;
        }
        for t in &d.tables {
            if t.kind == "table" {
                summary.tables += 1;
            }
            summary.rows += t.rows;
            for (bytes, _) in t.files() {
                summary.files += 1;
                summary.bytes += bytes;
            }
        }
    }
    manifest.databases = databases;
    manifest.finished_at = Some(chrono::Local::now().to_rfc3339());
    manifest.complete = true;
    summary
}
