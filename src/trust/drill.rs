//! The restore drill (`rbackup verify --drill`, issue 14): restore a backup into a
//! scratch server (a throwaway one of `scratch`, or a target the user gives), read the
//! restored tables back through the dump's own path into a fingerprinting destination
//! (`output::destination::Destination::Fingerprints`: the same `SELECT`s and session, no
//! encoding, no bytes kept), and compare table by table with the fingerprints the backup
//! recorded while it was taken (`format::fingerprint`, in the chunk files' catalog
//! entries), plus the counts of views, routines, triggers and events per database (the
//! snapshot's `meta.objects`). The result is written to the repository as a drill record
//! (`backup::drill`).
//!
//! Steps: the snapshot's catalog is read (recorded fingerprints, which file holds which
//! table); the scratch server starts while the backup is staged file by file into a
//! private temporary directory (every file is read even after a damaged one, so that every
//! damaged table is named; a damaged backup is not loaded); rload's loader loads it; the
//! restored server is fingerprinted; the two sides are compared. The `mysql` schema is
//! neither loaded nor compared (the scratch server's own accounts and statistics live
//! there, and the server rewrites its statistics tables by itself). A backup without
//! fingerprints (made before they were recorded) is compared by row counts from its
//! manifest. Then, when the repository archives binlogs (`rbackup binlog`) from the
//! backup's coordinates on, the archive is replayed into the restored server up to the
//! end of the backup's window: its latest complete transaction, or the last one before a
//! gap or a missing segment (`binlog::replay::plan` with `Target::EndOfWindow`,
//! `binlog::apply::apply`), after the comparison (which is against the backup's own
//! state). The record's `binlog_replay` says whether it was done, why not (no archive,
//! no coordinates, the backup not covered, a backup of part of a database: "no replay:
//! the backup holds part of a database ..."), how many transactions and events, the stop
//! point, the gap that ended the window (`gap`: recorded, not a failure: the drill proves
//! what can be restored, `check` reports the gap), or the error; a transaction that fails
//! to replay fails the drill (exit 6, naming it).
//!
//! Verdicts: `passed`; `failed`: the backup did not restore as recorded (a damaged or
//! missing object, a load that failed, a table whose rows or fingerprint differ, a count
//! of objects that differs); `error`: the drill could not run to its end (the scratch
//! server or the target failed, the restored server could not be read, the replay
//! tools could not run).
//!
//! Not for: the command line and printing (`bin/rbackup/drill.rs`), the record's format
//! (`backup::drill`), the server process (`scratch`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::backup::drill::{DrillRecord, ObjectsResult, TableResult};
use crate::backup::error::BackupError;
use crate::backup::lock::{self, LockKind};
use crate::backup::reader::Restored;
use crate::backup::segments::{RepositorySegments, backup_point};
use crate::backup::{FileEntry, Repository, RepositoryReader, Snapshot};
use crate::binlog::apply::{self, ApplyError, Tools};
use crate::binlog::replay::{self, PlanError, Target as ReplayTarget};
use crate::binlog::segment::SegmentSource;
use crate::binlog::window::{self, SpanEnd};
use crate::client::conn::Session;
use crate::client::options::ConnectionOptions;
use crate::format::fingerprint::{self, Fingerprint, ObjectCounts, TableFingerprints};
use crate::load::LoadOptions;
use crate::output::destination::Destination;
use crate::output::sink::MetaCollector;
use crate::trust::scratch::{ScratchOptions, ScratchServer};

/// Where the backup is restored.
pub enum Target {
    /// A throwaway server started for the drill and removed after.
    Scratch(ScratchOptions),
    /// A server the user gives, with rload's options (`dir` is replaced by the staging
    /// directory; `databases`, when empty, by the backup's). The restored data stays.
    Server(Box<LoadOptions>),
}

pub struct DrillOptions {
    /// The backup: an ID, a unique prefix, or `latest`.
    pub snapshot: String,
    pub target: Target,
    /// Connections for the load and the fingerprinting dump.
    pub threads: usize,
}

/// How the drill ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// The backup did not restore as recorded; `damage`: objects of the repository are
    /// damaged or missing.
    Failed {
        damage: bool,
    },
    /// The drill could not run to its end.
    Error,
}

pub struct Drilled {
    pub outcome: Outcome,
    pub record: DrillRecord,
    /// The record's object name, or why it could not be written.
    pub stored: Result<String, BackupError>,
}

/// Runs a drill and records it. An `Err` is a drill that could not start (no such
/// backup, wrong key, storage unreachable, locked); anything after the backup was found
/// is in the record.
pub async fn run(repo: Repository, options: DrillOptions) -> Result<Drilled, BackupError> {
    let guard = lock::acquire(&repo.store, LockKind::Shared, "drill").await?;
    let reader = RepositoryReader::open(repo.clone()).await?;
    let (id, snapshot) = reader.snapshot(&options.snapshot).await?;
    let started = Instant::now();
    let mut record = DrillRecord {
        version: crate::backup::drill::VERSION,
        time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        snapshot: id,
        snapshot_time: snapshot.time.clone(),
        host: hostname(),
        program: format!("rbackup {}", env!("CARGO_PKG_VERSION")),
        target: String::new(),
        seconds: 0.0,
        verdict: String::new(),
        message: String::new(),
        tables_compared: 0,
        rows_compared: 0,
        tables: Vec::new(),
        objects: Vec::new(),
        phases: BTreeMap::new(),
        binlog_replay: serde_json::Value::Null,
        mac: String::new(),
    };
    let mut live = None;
    let mut outcome = drill(&reader, &snapshot, &options, &mut record, &mut live).await;
    record.binlog_replay = match (&outcome, &live) {
        (Outcome::Passed, Some(live)) => {
            let phase = Instant::now();
            let (note, failed) = replay(&repo, &record.snapshot, &snapshot, live).await;
            record.phases.insert("binlog_replay".into(), secs(phase));
            if let Some((o, message)) = failed {
                outcome = o;
                record.message = message;
            }
            note
        }
        _ => binlog_note(&repo, "the backup did not restore as recorded").await,
    };
    drop(live);
    record.seconds = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    record.verdict = match outcome {
        Outcome::Passed => "passed",
        Outcome::Failed { .. } => "failed",
        Outcome::Error => "error",
    }
    .into();
    // Tables that are not ok first.
    record.tables.sort_by_key(|t| t.result == "ok");
    let stored = crate::backup::drill::write(&repo, &record).await;
    let _ = guard.release().await;
    Ok(Drilled {
        outcome,
        record,
        stored,
    })
}

fn secs(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 10.0).round() / 10.0
}

fn hostname() -> String {
    lock::hostname()
}

/// The record's `binlog_replay` when the replay was not tried (`why`).
async fn binlog_note(repo: &Repository, why: &str) -> serde_json::Value {
    match RepositorySegments::sources(repo).await {
        Ok(l) if l.is_empty() => not_done("the repository has no binlog archive"),
        Ok(_) => not_done(&format!("not done: {why}")),
        Err(e) => not_done(&format!("the binlog archive could not be listed: {e}")),
    }
}

fn not_done(reason: &str) -> serde_json::Value {
    serde_json::json!({"done": false, "reason": reason})
}

/// The restored server, kept (a scratch one running) until the binlog replay is done.
struct Live {
    _scratch: Option<ScratchServer>,
    connection: ConnectionOptions,
    log_bin: bool,
}

/// Replays the repository's binlog archive from the backup's coordinates to its latest
/// complete transaction into the restored server. Returns the record's `binlog_replay`,
/// and the drill's outcome and message when the replay failed.
async fn replay(
    repo: &Repository,
    id: &str,
    snapshot: &Snapshot,
    live: &Live,
) -> (serde_json::Value, Option<(Outcome, String)>) {
    let sources = match RepositorySegments::sources(repo).await {
        Ok(s) => s,
        Err(e) => {
            let m = format!("the binlog archive could not be listed: {e}");
            return (
                serde_json::json!({"done": false, "reason": m, "error": m}),
                Some((Outcome::Error, m)),
            );
        }
    };
    if sources.is_empty() {
        return (not_done("the repository has no binlog archive"), None);
    }
    let Some(point) = backup_point(id, snapshot) else {
        return (
            not_done("the backup has no binlog coordinates (its server had no binlog)"),
            None,
        );
    };
    // A backup of some tables or rows: nothing to replay from it, not a failure.
    if let Some(why) = &point.not_replayable {
        return (not_done(&format!("no replay: {why}")), None);
    }
    // The archive that covers the backup (one per source server).
    let mut refused = Vec::new();
    let mut found = None;
    for name in &sources {
        let segments = match RepositorySegments::open_reader(repo.clone(), name) {
            Ok(s) => s,
            Err(e) => {
                refused.push(format!("{name}: {e}"));
                continue;
            }
        };
        match replay::plan(
            &segments,
            std::slice::from_ref(&point),
            &ReplayTarget::EndOfWindow,
            &[],
        )
        .await
        {
            Ok(plan) => {
                found = Some((name.clone(), segments, plan));
                break;
            }
            Err(PlanError::Archive(m)) => {
                let m = format!("binlog archive {name}: {m}");
                return (
                    serde_json::json!({"done": false, "source": name, "reason": m, "error": m}),
                    Some((Outcome::Failed { damage: true }, m)),
                );
            }
            Err(e) => refused.push(if sources.len() > 1 {
                format!("{name}: {e}")
            } else {
                e.to_string()
            }),
        }
    }
    let Some((source, segments, plan)) = found else {
        return (not_done(&refused.join("; ")), None);
    };
    let mut note = serde_json::json!({
        "done": false,
        "source": source,
        "from": point.position.to_string(),
        "transactions": plan.transactions,
        "events": plan.events,
        "bytes": plan.bytes(),
        "first": plan.first.as_ref().map(ToString::to_string),
        "last": plan.last.as_ref().map(ToString::to_string),
        "stop": {"at": plan.stop.at.to_string(), "why": plan.stop.why},
    });
    if let Some(f) = &plan.backup.databases {
        // A partial backup's replay: only its databases' events.
        note["databases"] = f.describe().into();
        note["other_databases"] = serde_json::json!({
            "transactions_left_out": plan.other_databases.transactions,
            "statements_cut": plan.other_databases.statements,
        });
    }
    let failed = |mut note: serde_json::Value, outcome: Outcome, m: String| {
        note["reason"] = format!("failed: {m}").into();
        note["error"] = m.clone().into();
        (
            note,
            Some((outcome, format!("the binlog replay failed: {m}"))),
        )
    };
    // A gap (or a missing segment) that ends the backup's window before the end of the
    // archive: the replay goes up to it, and the record says so (not a failure: the drill
    // proves what can be restored; `check` and `list` report the gap itself).
    match segments
        .records()
        .await
        .map(|r| window::window(&window::spans(&r), &point.position).map(|w| (w.to, w.ends)))
    {
        Ok(Some((to, SpanEnd::Gap { gap }))) => {
            note["gap"] = serde_json::json!({
                "after": to.to_string(),
                "resume_at": gap.resume_at.to_string(),
                "message": gap.message,
            });
        }
        Ok(Some((to, SpanEnd::Discontinuity { next }))) => {
            note["gap"] = serde_json::json!({
                "after": to.to_string(),
                "resume_at": next.to_string(),
                "message": "segments missing from the archive",
            });
        }
        Ok(_) => {}
        Err(e) => {
            return failed(
                note,
                Outcome::Failed { damage: true },
                format!("binlog archive {source}: {e}"),
            );
        }
    }
    let mut session = match Session::connect(&live.connection).await {
        Ok(s) => s,
        Err(e) => return failed(note, Outcome::Error, e.to_string()),
    };
    let dialect = session.dialect.clone();
    let tools = match Tools::find(dialect.flavor) {
        Ok(t) => t,
        Err(e) => return failed(note, Outcome::Error, e.to_string()),
    };
    if let Some(first) = plan.pieces.first()
        && let Err(e) = apply::check_privileges(
            &mut session,
            &first.segment.format_description,
            live.log_bin,
        )
        .await
    {
        return failed(note, Outcome::Error, e.to_string());
    }
    session.close().await;
    let before = apply::before_replay_sql(&dialect, plan.backup.gtid.as_deref(), &plan.gtids);
    match apply::apply(
        &segments,
        &plan,
        &tools,
        &live.connection,
        live.log_bin,
        &before,
    )
    .await
    {
        Ok(done) => {
            note["done"] = true.into();
            note["files"] = done.files.into();
            note["reason"] = format!(
                "replayed {} transactions ({} events, {} bytes) of archive {source} from {}; \
                 stopped at {} ({})",
                plan.transactions,
                plan.events,
                done.bytes,
                point.position,
                plan.stop.at,
                plan.stop.why
            )
            .into();
            (note, None)
        }
        Err(e) => {
            let outcome = match e {
                ApplyError::Failed(_) => Outcome::Failed { damage: false },
                ApplyError::Archive(_) => Outcome::Failed { damage: true },
                _ => Outcome::Error,
            };
            failed(note, outcome, e.to_string())
        }
    }
}

/// The staging directory and the scratch server, removed when dropped (also on error or
/// interruption: the drill's future is dropped).
async fn drill(
    reader: &RepositoryReader,
    snapshot: &Snapshot,
    options: &DrillOptions,
    record: &mut DrillRecord,
    live: &mut Option<Live>,
) -> Outcome {
    // What the backup recorded.
    let mut entries: Vec<FileEntry> = Vec::new();
    let mut catalog = reader.catalog(snapshot);
    loop {
        match catalog.next().await {
            Ok(Some(e)) => entries.push(e),
            Ok(None) => break,
            Err(e) => {
                record.message = format!("the backup's catalog could not be read: {e}");
                return if e.is_damage() {
                    Outcome::Failed { damage: true }
                } else {
                    Outcome::Error
                };
            }
        }
    }
    let recorded = fingerprint::aggregate(entries.iter().map(|e| &e.meta));
    let databases: Vec<String> = snapshot
        .meta
        .get("databases")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .filter(|d| *d != "mysql")
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();

    // The scratch server starts while the backup is staged.
    let staging = match tempfile::Builder::new()
        .prefix("rbackup-drill-stage-")
        .tempdir()
    {
        Ok(d) => d,
        Err(e) => {
            record.message = format!("could not create a temporary directory: {e}");
            return Outcome::Error;
        }
    };
    let scratch = match &options.target {
        Target::Scratch(o) => {
            let o = o.clone();
            Some(tokio::task::spawn_blocking(move || {
                let started = Instant::now();
                ScratchServer::start(&o).map(|s| (s, secs(started)))
            }))
        }
        Target::Server(_) => None,
    };
    let phase = Instant::now();
    let damaged = stage(reader, entries, staging.path(), options.threads).await;
    record.phases.insert("stage".into(), secs(phase));
    let damaged = match damaged {
        Ok(d) => d,
        Err(e) => {
            record.message = format!("staging the backup failed: {e}");
            return Outcome::Error;
        }
    };
    let scratch = match scratch {
        Some(task) => match task.await {
            Ok(Ok((s, took))) => {
                // Started alongside the staging.
                record.phases.insert("scratch_start".into(), took);
                Some(s)
            }
            Ok(Err(e)) => {
                record.target = "scratch server".into();
                record.message = format!("the scratch server could not start: {e}");
                return Outcome::Error;
            }
            Err(e) => {
                record.message = format!("the scratch server could not start: {e}");
                return Outcome::Error;
            }
        },
        None => None,
    };
    let connection: ConnectionOptions = match (&scratch, &options.target) {
        (Some(s), _) => {
            record.target = format!("scratch server ({})", s.version);
            s.connection()
        }
        (None, Target::Server(o)) => {
            record.target = crate::client::conn::server_label(&o.connection);
            o.connection.clone()
        }
        (None, Target::Scratch(_)) => unreachable!("a scratch target has a server"),
    };
    *live = Some(Live {
        _scratch: scratch,
        connection: connection.clone(),
        log_bin: match &options.target {
            Target::Server(o) => o.enable_binlog,
            Target::Scratch(_) => false,
        },
    });
    if !damaged.is_empty() {
        let mut names: Vec<String> = Vec::new();
        for (file, table, error) in damaged {
            let (db, table) = table.unwrap_or_else(|| (String::new(), file.clone()));
            let name = if db.is_empty() {
                table.clone()
            } else {
                format!("{db}.{table}")
            };
            if !names.contains(&name) {
                names.push(name);
            }
            record.tables.push(TableResult {
                db,
                table,
                result: "damaged".into(),
                expected_rows: None,
                restored_rows: None,
                expected_sum: None,
                restored_sum: None,
                detail: Some(error),
            });
        }
        record.message = format!(
            "the backup could not be read back: damaged or missing objects in the data of {}; not loaded",
            names.join(", ")
        );
        return Outcome::Failed { damage: true };
    }

    // Load it.
    let load = match load_options(options, &connection, staging.path(), &databases) {
        Ok(o) => o,
        Err(e) => {
            record.message = e;
            return Outcome::Error;
        }
    };
    if let Target::Server(_) = options.target
        && let Err(e) = crate::client::conn::Session::connect(&connection).await
    {
        record.message = format!("the target could not be reached: {e}");
        return Outcome::Error;
    }
    let changed = AtomicBool::new(false);
    let phase = Instant::now();
    if let Err(e) = crate::load::run(&load, &changed).await {
        record.message = format!("the backup did not load: {e}");
        return Outcome::Failed { damage: false };
    }
    record.phases.insert("load".into(), secs(phase));

    // Read the restored server back.
    if databases.is_empty() {
        record.message = "the backup holds no database besides mysql: nothing to compare".into();
        return Outcome::Passed;
    }
    let phase = Instant::now();
    let (restored, restored_objects) =
        match fingerprint_server(&connection, &databases, options.threads).await {
            Ok(r) => r,
            Err(e) => {
                record.message = format!("the restored server could not be read: {e}");
                return Outcome::Error;
            }
        };
    record.phases.insert("fingerprint".into(), secs(phase));

    // Compare.
    let wanted = |db: &str| databases.iter().any(|d| d == db);
    let (recorded, rows_only) = if recorded.is_empty() {
        (manifest_rows(&load.dir), true)
    } else {
        (recorded, false)
    };
    let mut bad: Vec<String> = Vec::new();
    for ((db, table), expected) in recorded.iter().filter(|((db, _), _)| wanted(db)) {
        let got = restored.get(&(db.clone(), table.clone()));
        let result = match got {
            None => "missing",
            Some(g) if g.rows == expected.rows && (rows_only || g.sum == expected.sum) => "ok",
            Some(_) => "differs",
        };
        if result != "ok" {
            bad.push(format!("{db}.{table} ({result})"));
        }
        record.tables_compared += 1;
        record.rows_compared += expected.rows;
        record.tables.push(TableResult {
            db: db.clone(),
            table: table.clone(),
            result: result.into(),
            expected_rows: Some(expected.rows),
            restored_rows: got.map(|g| g.rows),
            expected_sum: (!rows_only).then(|| expected.sum_hex()),
            restored_sum: got.filter(|_| !rows_only).map(Fingerprint::sum_hex),
            detail: None,
        });
    }
    for ((db, table), got) in &restored {
        if !recorded.contains_key(&(db.clone(), table.clone())) {
            record.tables.push(TableResult {
                db: db.clone(),
                table: table.clone(),
                result: "unrecorded".into(),
                expected_rows: None,
                restored_rows: Some(got.rows),
                expected_sum: None,
                restored_sum: Some(got.sum_hex()),
                detail: Some("on the restored server, not in the backup's fingerprints".into()),
            });
        }
    }
    let expected_objects: BTreeMap<String, ObjectCounts> = snapshot
        .meta
        .get("objects")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    for (db, expected) in expected_objects.iter().filter(|(db, _)| wanted(db)) {
        let got = restored_objects.get(db).copied().unwrap_or_default();
        for (kind, e, g) in [
            ("views", expected.views, got.views),
            ("routines", expected.routines, got.routines),
            ("triggers", expected.triggers, got.triggers),
            ("events", expected.events, got.events),
        ] {
            if e != g {
                bad.push(format!("{db}: {kind} {g} restored, {e} recorded"));
            }
            record.objects.push(ObjectsResult {
                db: db.clone(),
                kind: kind.into(),
                expected: e,
                restored: g,
            });
        }
    }
    if !bad.is_empty() {
        record.message = format!(
            "the restored data differs from the backup's: {}",
            bad.join(", ")
        );
        return Outcome::Failed { damage: false };
    }
    if rows_only {
        record.message = "the backup has no row fingerprints (made before rbackup recorded them): row counts from its manifest compared".into();
    }
    Outcome::Passed
}

/// Writes every file of the backup under `dir` (`threads` at a time, the manifest last).
/// Returns the files that could not be read for damage (file, its table if known, the
/// error); an `Err` is any other failure (storage, local disk).
async fn stage(
    reader: &RepositoryReader,
    entries: Vec<FileEntry>,
    dir: &Path,
    threads: usize,
) -> Result<Vec<(String, Option<(String, String)>, String)>, BackupError> {
    let tables: HashMap<String, (String, String)> = entries
        .iter()
        .filter_map(|e| Fingerprint::from_meta(&e.meta).map(|(k, _)| (e.name.clone(), k)))
        .collect();
    let (last, rest): (Vec<FileEntry>, Vec<FileEntry>) = entries
        .into_iter()
        .partition(|e| e.name == crate::format::manifest::FILE_NAME);
    let mut damaged = Vec::new();
    let mut set = tokio::task::JoinSet::new();
    let mut queue = rest.into_iter();
    let dir: Arc<PathBuf> = Arc::new(dir.to_path_buf());
    loop {
        while set.len() < threads.max(1) {
            let Some(entry) = queue.next() else { break };
            let reader = reader.clone();
            let dir = Arc::clone(&dir);
            set.spawn(async move {
                let mut done = Restored::default();
                let r = reader.stage_file(&entry, &dir, &mut done).await;
                (entry.name, r)
            });
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        let (name, result) =
            joined.map_err(|e| BackupError::Usage(format!("a staging task failed: {e}")))?;
        match result {
            Ok(()) => {}
            Err(e) if e.is_damage() => {
                damaged.push((name.clone(), tables.get(&name).cloned(), e.to_string()))
            }
            Err(e) => return Err(e),
        }
    }
    if damaged.is_empty() {
        for entry in last {
            let mut done = Restored::default();
            match reader.stage_file(&entry, &dir, &mut done).await {
                Ok(()) => {}
                Err(e) if e.is_damage() => damaged.push((entry.name, None, e.to_string())),
                Err(e) => return Err(e),
            }
        }
    }
    Ok(damaged)
}

/// rload's options for loading the staged backup into `connection`.
fn load_options(
    options: &DrillOptions,
    connection: &ConnectionOptions,
    staging: &Path,
    databases: &[String],
) -> Result<LoadOptions, String> {
    let mut load = match &options.target {
        Target::Server(o) => (**o).clone(),
        Target::Scratch(_) => {
            let argv: Vec<std::ffi::OsString> = vec![
                "--no-defaults".into(),
                format!("--threads={}", options.threads.max(1)).into(),
                "--quiet".into(),
                staging.into(),
            ];
            match crate::options::rload::parse(&argv, &quiet_env(), &[]) {
                Ok(crate::load::LoadCommand::Load(o)) => *o,
                Ok(_) => return Err("the drill's load options were not a load".into()),
                Err(e) => return Err(format!("the drill's load options: {e}")),
            }
        }
    };
    load.connection = connection.clone();
    load.dir = staging.to_path_buf();
    if load.databases.is_empty() {
        load.databases = databases.to_vec();
    }
    Ok(load)
}

/// No option files, no `MYSQL_PWD`: the scratch server's root has no password.
fn quiet_env() -> crate::options::Env {
    crate::options::Env {
        home: None,
        mysql_pwd: None,
        system_option_files: Vec::new(),
    }
}

/// The restored server's fingerprints and object counts: the directory dump of
/// `databases` into a destination that keeps only the chunk files' fingerprints.
async fn fingerprint_server(
    connection: &ConnectionOptions,
    databases: &[String],
    threads: usize,
) -> crate::error::Result<(TableFingerprints, BTreeMap<String, ObjectCounts>)> {
    let mut argv: Vec<std::ffi::OsString> = vec![
        "--no-defaults".into(),
        "--routines".into(),
        "--events".into(),
        "--format=csv".into(),
        format!("--threads={}", threads.max(1)).into(),
        "--progress=never".into(),
        "--dir=rbackup-drill-fingerprints".into(),
        "--databases".into(),
    ];
    argv.extend(databases.iter().map(Into::into));
    let mut plan = match crate::options::parse(&argv, &quiet_env(), &[]) {
        Ok(crate::plan::Command::Dump(p)) => *p,
        Ok(_) => return Err(crate::error::Error::Usage("not a dump".into())),
        Err(e) => return Err(crate::error::Error::Usage(e.to_string())),
    };
    plan.connection = connection.clone();
    plan.quiet = true;
    let crate::plan::Output::Dir(opts) = plan.output.clone() else {
        return Err(crate::error::Error::Usage("not a directory dump".into()));
    };
    let collector = Arc::new(MetaCollector::default());
    let summary =
        crate::dump::dir::run_to(&plan, &opts, Destination::Fingerprints(collector.clone()))
            .await?;
    let metas = collector.take();
    Ok((
        fingerprint::aggregate(metas.iter().map(|(_, m)| m)),
        summary.objects,
    ))
}

/// Row counts per table from a staged backup's manifest (for a backup without
/// fingerprints); sums are zero and not compared.
fn manifest_rows(dir: &Path) -> TableFingerprints {
    let mut out = TableFingerprints::new();
    if let Ok(m) = crate::format::manifest::read(dir) {
        for d in &m.databases {
            for t in d.tables.iter().filter(|t| t.kind == "table") {
                out.insert(
                    (d.name.clone(), t.name.clone()),
                    Fingerprint {
                        rows: t.rows,
                        sum: 0,
                    },
                );
            }
        }
    }
    out
}
