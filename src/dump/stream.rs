//! The single-stream dump: one script, shaped like mysqldump's, in the order a `mysql`
//! client can restore it.
//!
//! It only orchestrates: `catalog` says what exists, `snapshot` keeps it consistent,
//! `read` plans each table's SELECT, `encode` turns rows into bytes, `script` writes every
//! other line, and `sink` stores them. Not for: flag handling (done in `options`/`plan`).

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

use crate::dump::catalog;

use crate::client::conn::{Session, open_sessions};
use crate::dump::chunk;
use crate::dump::consistency::{DdlGuard, Wants};
use crate::dump::group;
use crate::dump::pool::{ChunkRead, ReaderPool};
use crate::dump::read::TableRead;
use crate::dump::selection::{
    Catalog, DDL_RETRIES, catalog_changing, catalog_tables, list_catalog, prepare_session,
    resolve_selection, tables_of,
};
use crate::dump::snapshot;
use crate::dump::snapshot::{GlobalReadLock, SharedSnapshot};
use crate::error::{Error, Result};
use crate::format::charset::TextCharset;
use crate::format::coordinates::Coordinates;
use crate::format::encode::sql::{InsertStyle, SqlEncoder, StatementJoiner};
use crate::format::encode::tab::TabEncoder;
use crate::format::encode::xml::{FOOTER, HEADER};
use crate::format::names::file_name;
use crate::format::objects::{TableInfo, TableKind};
use crate::format::script;
use crate::format::shape::{CoordinateStyle, GtidPurged};
use crate::output::sink::Sink;
use crate::plan::Consistency;
use crate::plan::{History, Output, Plan, Progress, Scope};
use crate::process::progress::{Board, Display, mb};
use crate::sql::quote::{qualified, string_literal};

mod xml;

/// `-r FILE` opened on a thread of its own: opening a fifo waits for its reader, and a wait
/// on the runtime's thread would keep the signal handler from running (SIGINT or SIGTERM
/// would not stop the dump). On a signal the thread is left waiting; the process exits.
async fn open_result_file(path: &Path, zstd: Option<i32>) -> Result<Sink> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let owned = path.to_path_buf();
    std::thread::Builder::new()
        .name("rdump-open".into())
        .spawn(move || {
            let _ = tx.send(Sink::file(&owned, zstd));
        })
        .map_err(|e| Error::write(path, e))?;
    rx.await.map_err(|_| {
        Error::write(
            path,
            std::io::Error::other("the thread opening the file ended without a result"),
        )
    })?
}

/// Encoded rows are handed to the sink in pieces of about this size.
const FLUSH_AT: usize = 256 * 1024;

/// What a finished dump reports.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub databases: usize,
    pub tables: usize,
    pub rows: u64,
    /// Errors skipped under `--force`; the dump is then not complete.
    pub errors: Vec<String>,
    /// The exit code of the first of `errors` (mysqldump exits with its first error's).
    pub first_error_code: Option<i32>,
}

impl Summary {
    fn record(&mut self, e: &Error) {
        self.first_error_code.get_or_insert(e.exit_code());
        self.errors.push(e.to_string());
    }

    /// This summary followed by `later`'s.
    fn then(mut self, later: Summary) -> Summary {
        self.databases += later.databases;
        self.tables += later.tables;
        self.rows += later.rows;
        self.errors.extend(later.errors);
        self.first_error_code = self.first_error_code.or(later.first_error_code);
        self
    }
}

pub(crate) fn now_local() -> String {
    chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Runs a whole dump as the plan says.
pub async fn run(plan: &Plan) -> Result<Summary> {
    let mut s = Session::connect(&plan.connection).await?;
    if plan.verbose {
        eprintln!("-- Connected to {} ({})", s.server, s.client_name());
    }
    prepare_session(&mut s, plan).await?;
    // Under `--force`, as mysqldump, a missing database or table is reported and the dump
    // goes on without it (recorded in `write_dump`).
    let mut skipped = Vec::new();
    let selection = resolve_selection(&mut s, plan, plan.force.then_some(&mut skipped)).await?;
    let mut left_out = Summary::default();
    for e in skipped {
        tolerate(plan, &mut left_out, Err(e))?;
    }

    let mut out = match &plan.output {
        Output::ResultFile(path) => open_result_file(path, plan.zstd).await?,
        Output::Stdout | Output::Tab { .. } => Sink::stdout(plan.zstd)?,
        Output::Dir(_) => return Err(Error::Usage("--dir is handled by dir::run".into())),
    };

    let mut progress = StreamProgress::start(plan, &mut out);

    let (mut strategy, mut pool) = choose_strategy(&mut s, plan, &selection).await?;
    let mut purge_to = None;
    let set_up = set_up(&mut s, plan, &selection, strategy.as_mut()).await;
    let written = match set_up {
        Ok((coords, catalog)) => {
            let mut catalog = catalog.or_else(|| strategy.catalog());
            purge_to = coords.binlog.as_ref().map(|(file, _)| file.clone());
            if plan.verbose {
                eprintln!("-- Consistency: {}", strategy.describe());
            }
            pool = pool.or_else(|| strategy.readers());
            write_dump(
                &mut s,
                plan,
                &selection,
                &coords,
                strategy.as_mut(),
                &mut out,
                &mut pool,
                &mut catalog,
            )
            .await
        }
        Err(e) => Err(e),
    };
    if let Some(p) = pool {
        p.close().await;
    }
    let summary = match written {
        Ok(written) => {
            let mut summary = left_out.then(written);
            // Under `--force` too: a connection killed mid-rows fails it again here.
            let r = strategy.teardown(&mut s).await;
            tolerate(plan, &mut summary, r)?;
            summary
        }
        Err(e) => {
            // Best effort: release locks and restart a replica's SQL thread we stopped.
            let _ = strategy.teardown(&mut s).await;
            return Err(e);
        }
    };
    let completed = summary.errors.is_empty().then(now_local);
    // With `--tab` every object has a file of its own; stdout gets nothing (as mariadb-dump).
    // An XML document is closed only when complete (mariadb-dump closes it also after
    // errors `--force` went past): a dump with errors is not well-formed XML.
    if plan.shape.xml {
        if completed.is_some() {
            out.write_all(FOOTER.as_bytes())?;
        }
    } else if tab_dir(plan).is_none() {
        out.write_all(&script_text(
            plan,
            &script::footer(&plan.shape, completed.as_deref()),
        ))?;
    }
    out.commit()?;
    // --delete-master-logs: only once the dump is complete and in place.
    if let (true, true, Some(file)) = (
        plan.consistency.delete_master_logs,
        completed.is_some(),
        &purge_to,
    ) {
        let sql = format!("PURGE BINARY LOGS TO {}", string_literal(file));
        s.exec(&sql, "purging the binary logs (--delete-master-logs)")
            .await?;
    }
    s.close().await;
    progress.finish();
    Ok(summary)
}

/// The single stream's progress on stderr (see `process::progress`): elapsed time, data
/// written (before compression) and its rate; a bar on a terminal, unless the dump itself
/// goes to that terminal (stdout), plain lines with `--progress=always` elsewhere.
struct StreamProgress {
    board: Board,
    bar: ProgressBar,
}

impl StreamProgress {
    fn start(plan: &Plan, out: &mut Sink) -> StreamProgress {
        let dump_on_terminal =
            matches!(plan.output, Output::Stdout) && std::io::stdout().is_terminal();
        let mode = if dump_on_terminal {
            Progress::Never
        } else {
            plan.progress
        };
        let mut board = Board::new(mode);
        let bar = board.multi.add(ProgressBar::new_spinner());
        if board.display == Display::Hidden {
            return StreamProgress { board, bar };
        }
        let data = Arc::new(AtomicU64::new(0));
        out.meter(Arc::clone(&data));
        let status = {
            let data = Arc::clone(&data);
            move |secs: f64| {
                let bytes = data.load(Ordering::Relaxed);
                format!(
                    "{} of data written ({}/s)",
                    mb(bytes),
                    mb((bytes as f64 / secs.max(0.001)) as u64)
                )
            }
        };
        let shown = status.clone();
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} {spinner} {status}")
                .expect("progress template")
                .with_key(
                    "status",
                    move |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = w.write_str(&shown(state.elapsed().as_secs_f64()));
                    },
                ),
        );
        if board.display == Display::Bars {
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
        }
        let started = std::time::Instant::now();
        board.lines_every_few_seconds("rdump", move || status(started.elapsed().as_secs_f64()));
        StreamProgress { board, bar }
    }

    fn finish(&mut self) {
        self.bar.finish_and_clear();
        self.board.finish();
    }
}

/// The consistency strategy, with reader connections when the stream is read by several
/// (`plan.stream.threads`): they share the dump's snapshot (single transaction), start one
/// under its global lock (lock-all-tables), or read under its table locks. `--tab` and
/// `--dump-slave` read on one connection. Every session's lock waits are then bounded
/// (`group::bound_lock_waits`), and a snapshot's sessions hold the tables the readers may
/// read from its start (`group::hold_tables`).
async fn choose_strategy(
    s: &mut Session,
    plan: &Plan,
    selection: &[(String, Vec<String>)],
) -> Result<(Box<dyn snapshot::ConsistencyStrategy>, Option<ReaderPool>)> {
    let c = &plan.consistency;
    let parallel = plan.stream.threads > 1
        && !matches!(plan.output, Output::Tab { .. })
        && c.dump_slave.is_none()
        && !plan.selection.no_data;
    if !parallel {
        return Ok((snapshot::strategy_for(c, &s.dialect), None));
    }
    // A single transaction takes its lock on one more connection (see SharedSnapshot).
    let locker = usize::from(matches!(c.mode, Consistency::SingleTransaction));
    let (mut readers, refused) = open_sessions(
        &plan.connection,
        plan.stream.threads + locker,
        |mut r| async {
            prepare_session(&mut r, plan).await?;
            group::bound_lock_waits(&mut r).await?;
            Ok(r)
        },
    )
    .await;
    // An account or server that allows fewer connections (1226 max_user_connections, 1040
    // too many connections): read with those that opened, down to this one, as mysqldump.
    if let Some(e) = refused {
        let usable = readers.len().saturating_sub(locker);
        if usable == 0 {
            eprintln!(
                "rdump: warning: no reader connection could be opened ({e}); reading with one connection"
            );
            for r in readers {
                r.close().await;
            }
            return Ok((snapshot::strategy_for(c, &s.dialect), None));
        }
        eprintln!(
            "rdump: warning: {usable} of {} reader connections could be opened ({e}); reading with {usable}",
            plan.stream.threads
        );
    }
    group::bound_lock_waits(s).await?;
    Ok(match c.mode {
        Consistency::SingleTransaction => {
            let locker = readers.pop().expect("one connection more than the readers");
            let held = pooled_tables(s, plan, selection, Some(POOLED_UNDER_BRIEF_LOCK)).await;
            (
                Box::new(SharedSnapshot::new(
                    c,
                    &s.dialect,
                    readers,
                    locker,
                    plan.stream.threads_given,
                    held,
                    Some((plan.clone(), selection.to_vec())),
                )?),
                None,
            )
        }
        Consistency::LockAllTables => {
            let held = pooled_tables(s, plan, selection, None).await;
            (
                Box::new(GlobalReadLock::with_readers(c, &s.dialect, readers, held)),
                None,
            )
        }
        // Under --lock-tables the readers hold each database's tables while it is dumped.
        Consistency::LockTables => (
            snapshot::strategy_for(c, &s.dialect),
            Some(ReaderPool::per_database(readers)),
        ),
        Consistency::None => (
            snapshot::strategy_for(c, &s.dialect),
            Some(ReaderPool::new(readers)),
        ),
    })
}

/// The most tables the readers of a `--single-transaction` stream hold (see
/// `pooled_tables`): every session opens them while the brief global lock stops every
/// commit on the server, about half a millisecond a table and session. With 3,000 small
/// tables and 4 readers commits stopped for 1.3 to 4.8 s (now 35 ms; mariadb-dump 38 ms).
/// On MariaDB they are now opened while only DDL is held off (`SharedSnapshot`), so the
/// cap bounds how long DDL waits there.
pub const POOLED_UNDER_BRIEF_LOCK: usize = 128;

/// The tables the reader pool may read (base tables of a transactional engine with their
/// data here), listed before the snapshot starts so that its sessions hold them from its
/// start. A table missing from it (created meanwhile; a listing that failed; beyond `most`,
/// the biggest by the server's estimate kept) is read by the dump's own session, which no
/// other session of the dump waits for.
async fn pooled_tables(
    s: &mut Session,
    plan: &Plan,
    selection: &[(String, Vec<String>)],
    most: Option<usize>,
) -> Vec<(String, String)> {
    let mut held = Vec::new();
    for (db, named) in selection {
        let mut missing = Vec::new();
        let Ok(tables) = tables_of(s, plan, db, named, Some(&mut missing)).await else {
            continue;
        };
        held.extend(
            tables
                .into_iter()
                .filter(|t| {
                    t.kind == TableKind::Base && t.is_transactional() && !t.data_lives_elsewhere()
                })
                .map(|t| {
                    let bytes = t.estimated_rows.saturating_mul(t.avg_row_bytes.max(1));
                    (bytes, db.clone(), t.name)
                }),
        );
    }
    if let Some(most) = most
        && held.len() > most
    {
        // The biggest tables are the ones worth reading in parallel.
        held.sort_by_key(|h| std::cmp::Reverse(h.0));
        held.truncate(most);
    }
    held.into_iter().map(|(_, db, t)| (db, t)).collect()
}

/// A lone `--single-transaction` snapshot on MariaDB whose coordinates the dump records
/// (`--master-data`, `--gtid`): DDL is held off from before it starts until every table
/// it dumps is listed and open in it (`set_up`). Without that, a table
/// created after the snapshot would be dumped (its CREATE then replayed again from the
/// binlog) and an instant ALTER TABLE after it read with its new columns, silently; other
/// ALTERs fail the read with error 1412. Without the RELOAD privilege BACKUP STAGE needs,
/// the dump goes on unguarded, with a warning.
async fn ddl_guard(
    plan: &Plan,
    s: &Session,
    strategy: &dyn snapshot::ConsistencyStrategy,
) -> Result<Option<DdlGuard>> {
    let wants = Wants::from_plan(&plan.consistency, &s.dialect);
    if !strategy.lockless_snapshot()
        || !(wants.binlog || wants.gtid)
        || !s.dialect.is_mariadb()
        || s.dialect.backup_lock_sql().is_none()
    {
        return Ok(None);
    }
    let mut locker = Session::connect_more(&plan.connection).await?;
    group::bound_lock_waits(&mut locker).await?;
    match DdlGuard::take(locker).await {
        Ok(g) => Ok(Some(g)),
        Err(Error::Server { message, .. }) if message.contains("RELOAD") => {
            eprintln!(
                "rdump: warning: {}: no RELOAD privilege to hold DDL off while the snapshot starts: \
                 DDL during the dump may make it differ from its coordinates",
                s.server
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Sets the strategy up. Under a `DdlGuard` (see `ddl_guard`), with the snapshot
/// started: lists the tables of every selected database and opens them all in the
/// snapshot (those of a transactional engine; `selection::catalog_tables`), then lets DDL
/// go on. A table created later is not listed (its CREATE comes after the coordinates);
/// one listed cannot be altered or dropped until the dump ends. A DDL statement still
/// running under the guard (`selection::changing`) is let finish, and all begins again.
async fn set_up(
    s: &mut Session,
    plan: &Plan,
    selection: &[(String, Vec<String>)],
    strategy: &mut dyn snapshot::ConsistencyStrategy,
) -> Result<(Coordinates, Option<Catalog>)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let guard = ddl_guard(plan, s, strategy).await?;
        let coords = match strategy.setup(s).await {
            Ok(coords) => coords,
            Err(e) => {
                if let Some(guard) = guard {
                    let _ = guard.release().await;
                }
                return Err(e);
            }
        };
        let Some(guard) = guard else {
            return Ok((coords, None));
        };
        // Every lock wait bounded meanwhile: the listing too may wait behind a statement
        // that waits for the guard.
        let bound = group::set_lock_wait(s, "1").await?;
        let catalog = list_catalog(s, plan, selection).await;
        let mut busy = catalog_changing(&catalog);
        if busy.is_empty() {
            busy = match group::try_hold_tables(std::slice::from_mut(s), &catalog_tables(&catalog))
                .await
            {
                Ok(true) => Vec::new(),
                Ok(false) => vec!["a table the dump opens".into()],
                Err(e) => {
                    let _ = guard.release().await;
                    return Err(e);
                }
            };
        }
        group::set_lock_wait(s, &bound).await?;
        if busy.is_empty() {
            guard.release().await?;
            return Ok((coords, Some(catalog)));
        }
        guard.release().await?;
        s.exec("ROLLBACK", "ending the snapshot").await?;
        if attempt >= DDL_RETRIES {
            return Err(Error::Consistency {
                server: s.server.clone(),
                message: format!(
                    "{} still being changed by DDL statements after {attempt} tries to start \
                     the snapshot between them",
                    busy.join(", ")
                ),
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(20 * u64::from(attempt))).await;
    }
}

/// The tables of `db` to dump: as listed under the guard when there was one, else now.
async fn listed_tables(
    s: &mut Session,
    plan: &Plan,
    db: &str,
    named: &[String],
    catalog: &mut Option<Catalog>,
) -> (Result<Vec<TableInfo>>, Vec<Error>) {
    if let Some(found) = catalog.as_mut().and_then(|c| c.remove(db)) {
        return found;
    }
    let mut missing = Vec::new();
    let listed = tables_of(s, plan, db, named, plan.force.then_some(&mut missing)).await;
    (listed, missing)
}

/// Runs the strategy's step before a database (`--lock-tables`: LOCK TABLES on its
/// tables); then a pool whose readers work under those locks opens the database's tables
/// in a transaction of each reader (`ReaderPool::hold_database`), so that no reader asks
/// for a table's metadata lock while a DDL statement waits for this session's lock. When a
/// DDL statement got in between the two (a reader's wait times out), nothing of the
/// database has been read yet: the readers let go, the locks are released so the DDL ends,
/// and both are taken again.
async fn lock_database(
    strategy: &mut dyn snapshot::ConsistencyStrategy,
    s: &mut Session,
    db: &str,
    tables: &[TableInfo],
    pool: &mut Option<ReaderPool>,
) -> Result<()> {
    let mut attempt = 0u64;
    loop {
        attempt += 1;
        strategy.before_database(s, db, tables).await?;
        let Some(p) = pool.as_mut().filter(|p| p.holds_per_database()) else {
            return Ok(());
        };
        match p.hold_database(db, tables).await {
            Ok(()) => return Ok(()),
            Err(e) if e.sql_error_code() == Some(1205) && attempt < 10 => {
                p.release_database().await;
                strategy.after_database(s).await?;
                tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Everything between the header and the footer, inside the consistent view.
#[allow(clippy::too_many_arguments)]
async fn write_dump(
    s: &mut Session,
    plan: &Plan,
    selection: &[(String, Vec<String>)],
    coords: &Coordinates,
    strategy: &mut dyn snapshot::ConsistencyStrategy,
    out: &mut Sink,
    pool: &mut Option<ReaderPool>,
    catalog: &mut Option<Catalog>,
) -> Result<Summary> {
    let header_db = match &plan.selection.scope {
        Scope::Database { db, .. } => Some(db.as_str()),
        Scope::Databases(d) if d.len() == 1 => Some(d[0].as_str()),
        _ => None,
    };
    let charset = &plan.connection.character_set;
    if plan.shape.xml {
        // Coordinates, `--system` and the other SQL-only parts are refused with `--xml`.
        return write_xml_dump(s, plan, selection, strategy, out, pool, catalog).await;
    }
    if tab_dir(plan).is_none() {
        out.write_all(&script_text(
            plan,
            &script::header(&plan.shape, &s.dialect, &s.server, header_db, charset),
        ))?;
    }
    write_coordinates(out, plan, s, coords)?;
    let log_bin_off = write_mysql_gtid_purged(out, plan, s, coords)?;
    write_system(s, plan, out).await?;

    let mut summary = Summary::default();
    // Each dumped database with its views, whose definitions come after all tables.
    let mut dumped: Vec<(&str, Vec<String>)> = Vec::new();
    for (db, named) in selection {
        let (listed, missing) = listed_tables(s, plan, db, named, catalog).await;
        for e in missing {
            tolerate(plan, &mut summary, Err(e))?;
        }
        let listed = match listed {
            Ok(listed) => listed,
            Err(e) => {
                tolerate(plan, &mut summary, Err(e))?;
                continue;
            }
        };
        let (log_tables, tables): (Vec<TableInfo>, Vec<TableInfo>) =
            listed.into_iter().partition(|t| t.is_log_table);
        // As mysqldump's `--force`, also past LOCK TABLES and UNLOCK TABLES errors.
        let r = lock_database(strategy, s, db, &tables, pool).await;
        tolerate(plan, &mut summary, r)?;
        let views = dump_database(s, plan, db, &tables, out, &mut summary, pool).await?;
        dumped.push((db, views));
        if let Some(p) = pool.as_mut() {
            p.release_database().await;
        }
        let r = strategy.after_database(s).await;
        tolerate(plan, &mut summary, r)?;
        // The server refuses to lock log tables, and to read them while others are locked.
        if !plan.selection.no_create_info {
            for t in &log_tables {
                let r = dump_table(s, plan, db, t, out, &mut summary, &mut None).await;
                tolerate(plan, &mut summary, r)?;
            }
        }
        summary.databases += 1;
    }
    write_final_views(s, plan, &dumped, out, &mut summary).await?;

    // MariaDB: after a restored mysql.gtid_slave_pos table, so it is not overwritten.
    // Without --gtid it is there too, commented, as mariadb-dump writes it.
    if let (Some(style), Some(gtid), true) = (
        plan.consistency.master_data,
        &coords.gtid,
        s.dialect.is_mariadb(),
    ) {
        let style = match plan.consistency.gtid {
            true => style,
            false => CoordinateStyle::Commented,
        };
        out.write_all(&script_text(
            plan,
            &script::gtid_state(&plan.shape, &s.dialect, style, gtid),
        ))?;
    }
    if log_bin_off {
        out.write_all(&script_text(plan, script::mysql_restore_log_bin()))?;
    }
    if plan.consistency.apply_slave_statements {
        out.write_all(&script_text(
            plan,
            &script::start_replica(&plan.shape, &s.dialect),
        ))?;
    }
    if plan.shape.flush_privileges && selection.iter().any(|(db, _)| db == "mysql") {
        out.write_all(b"\n/*! FLUSH PRIVILEGES */;\n")?;
    }
    Ok(summary)
}

/// The `--xml` document between its header and footer: each database's element (see
/// `xml`), every database read as `write_dump` reads it (same locks and pool).
async fn write_xml_dump(
    s: &mut Session,
    plan: &Plan,
    selection: &[(String, Vec<String>)],
    strategy: &mut dyn snapshot::ConsistencyStrategy,
    out: &mut Sink,
    pool: &mut Option<ReaderPool>,
    catalog: &mut Option<Catalog>,
) -> Result<Summary> {
    out.write_all(HEADER.as_bytes())?;
    let mut summary = Summary::default();
    for (db, named) in selection {
        let (listed, missing) = listed_tables(s, plan, db, named, catalog).await;
        for e in missing {
            tolerate(plan, &mut summary, Err(e))?;
        }
        let listed = match listed {
            Ok(listed) => listed,
            Err(e) => {
                tolerate(plan, &mut summary, Err(e))?;
                continue;
            }
        };
        let (log_tables, tables): (Vec<TableInfo>, Vec<TableInfo>) =
            listed.into_iter().partition(|t| t.is_log_table);
        let r = lock_database(strategy, s, db, &tables, pool).await;
        tolerate(plan, &mut summary, r)?;
        let r =
            xml::dump_database(s, plan, db, &tables, &log_tables, out, &mut summary, pool).await;
        if let Some(p) = pool.as_mut() {
            p.release_database().await;
        }
        r?;
        let r = strategy.after_database(s).await;
        tolerate(plan, &mut summary, r)?;
        summary.databases += 1;
    }
    Ok(summary)
}

/// `--system`: accounts, plugins, loadable functions and servers, before the databases.
async fn write_system(s: &mut Session, plan: &Plan, out: &mut Sink) -> Result<()> {
    let (sel, shape) = (&plan.selection, &plan.shape);
    if sel.system_users {
        let (accounts, ignored) = catalog::accounts(s).await?;
        for name in ignored {
            eprintln!(
                "rdump: warning: account {name} is not dumped: the server ignores it \
                 (a host name under skip_name_resolve) and does not show it"
            );
        }
        out.write_all(&script_text(plan, &script::accounts(shape, &accounts)))?;
    }
    if sel.system_plugins {
        let plugins = catalog::plugins(s).await?;
        out.write_all(&script_text(plan, &script::plugins(shape, &plugins)))?;
    }
    if sel.system_udfs {
        let udfs = catalog::udfs(s).await?;
        out.write_all(&script_text(plan, &script::udfs(shape, &udfs)))?;
    }
    if sel.system_servers {
        let servers = catalog::servers(s).await?;
        out.write_all(&script_text(plan, &script::servers(shape, &servers)))?;
    }
    Ok(())
}

fn write_coordinates(out: &mut Sink, plan: &Plan, s: &Session, coords: &Coordinates) -> Result<()> {
    let c = &plan.consistency;
    if c.apply_slave_statements {
        out.write_all(&script_text(
            plan,
            &script::stop_replica(&plan.shape, &s.dialect),
        ))?;
    }
    if let Some(style) = c.master_data {
        out.write_all(&script_text(
            plan,
            &script::master_data(&plan.shape, &s.dialect, style, coords, c.gtid),
        ))?;
    }
    if let (Some(style), Some(source)) = (c.dump_slave, &coords.source) {
        let text = script::dump_slave(
            &plan.shape,
            &s.dialect,
            style,
            source,
            c.include_master_host_port,
            c.gtid,
        );
        out.write_all(text.as_bytes())?;
    }
    Ok(())
}

/// MySQL `--set-gtid-purged`; returns whether the restore session's binlog was turned off.
fn write_mysql_gtid_purged(
    out: &mut Sink,
    plan: &Plan,
    s: &Session,
    coords: &Coordinates,
) -> Result<bool> {
    let purged = plan.consistency.set_gtid_purged;
    if s.dialect.is_mariadb() {
        return Ok(false);
    }
    match (&coords.gtid, purged) {
        (None, GtidPurged::On) => Err(Error::Consistency {
            server: s.server.clone(),
            message: "--set-gtid-purged=ON, but the server has GTIDs disabled".into(),
        }),
        (Some(gtid), _) => match script::mysql_gtid_purged(&plan.shape, purged, gtid) {
            Some(text) => {
                out.write_all(text.as_bytes())?;
                Ok(matches!(purged, GtidPurged::On | GtidPurged::Auto))
            }
            None => Ok(false),
        },
        (None, _) => Ok(false),
    }
}

/// Runs `step`; under `--force` a server error, or an error while reading a table's rows,
/// is recorded and the dump goes on (as mysqldump's `--force`).
fn tolerate(plan: &Plan, summary: &mut Summary, r: Result<()>) -> Result<()> {
    match r {
        Err(
            e @ (Error::Server { .. }
            | Error::Rows { .. }
            | Error::NotFound { .. }
            | Error::IllegalTable { .. }),
        ) if plan.force => {
            eprintln!("rdump: {e}");
            summary.record(&e);
            Ok(())
        }
        other => other,
    }
}

/// The rows a table's read returned; `None` when its error (the SELECT refused, or rows
/// cut short) was recorded under `--force`: the dump goes on with the table's triggers.
fn rows_read(plan: &Plan, summary: &mut Summary, read: Result<u64>) -> Result<Option<u64>> {
    match read {
        Ok(n) => Ok(Some(n)),
        Err(e) => tolerate(plan, summary, Err(e)).map(|()| None),
    }
}

/// rdump's script text in the connection's character set (see `format::charset`).
fn script_text<'a>(plan: &Plan, text: &'a str) -> std::borrow::Cow<'a, [u8]> {
    TextCharset::of(&plan.connection.character_set).script(text)
}

/// The `--tab` directory, if the plan writes one.
fn tab_dir(plan: &Plan) -> Option<&Path> {
    match &plan.output {
        Output::Tab { dir, .. } => Some(dir),
        _ => None,
    }
}

/// Every view's real definition, after the tables, events and routines of all dumped
/// databases, as mariadb-dump writes them: a view may select from a table (or view) of a
/// database dumped later, which exists by then; until then a stand-in table stood for each
/// view. With several databases, once any view was seen, each database gets its `USE`
/// again, in dump order. With `--tab` each view goes to `DIR/<view>.sql` instead.
async fn write_final_views(
    s: &mut Session,
    plan: &Plan,
    dumped: &[(&str, Vec<String>)],
    out: &mut Sink,
    summary: &mut Summary,
) -> Result<()> {
    if dumped.iter().all(|(_, views)| views.is_empty()) {
        return Ok(());
    }
    let shape = &plan.shape;
    let several = !matches!(plan.selection.scope, Scope::Database { .. });
    for (db, views) in dumped {
        if several {
            out.write_all(&script_text(
                plan,
                &script::database(shape, db, None, false),
            ))?;
        }
        for v in views {
            let r = match catalog::show_create_view(s, db, v).await {
                Ok(d) => match tab_dir(plan) {
                    Some(dir) => write_tab_file(s, plan, dir, db, v, |f| {
                        f.write_all(&script_text(plan, &script::view_final(shape, &d)))
                    }),
                    None => out.write_all(&script_text(plan, &script::view_final(shape, &d))),
                },
                Err(e) => Err(e),
            };
            tolerate(plan, summary, r)?;
        }
    }
    Ok(())
}

/// Writes `DIR/<name>.sql` of `--tab` as mariadb-dump does: its session header (that of
/// `--tab`), what `body` writes, then the footer; committed only when all was written.
fn write_tab_file(
    s: &Session,
    plan: &Plan,
    dir: &Path,
    db: &str,
    name: &str,
    body: impl FnOnce(&mut Sink) -> Result<()>,
) -> Result<()> {
    let mut f = Sink::file(&dir.join(format!("{}.sql", file_name(name))), None)?;
    let charset = &plan.connection.character_set;
    f.write_all(&script_text(
        plan,
        &script::tab_file_header(&plan.shape, &s.dialect, &s.server, db, charset),
    ))?;
    body(&mut f)?;
    f.write_all(&script_text(
        plan,
        &script::tab_file_footer(&plan.shape, Some(&now_local())),
    ))?;
    f.commit()?;
    Ok(())
}

/// One database's tables, sequences, view stand-ins, events and routines; returns its
/// views, whose definitions `write_final_views` writes after all databases.
async fn dump_database(
    s: &mut Session,
    plan: &Plan,
    db: &str,
    tables: &[TableInfo],
    out: &mut Sink,
    summary: &mut Summary,
    pool: &mut Option<ReaderPool>,
) -> Result<Vec<String>> {
    let shape = &plan.shape;
    let sel = &plan.selection;
    // Each step below is one `tolerate`: under `--force` (also once the connection is
    // lost) the dump goes on with the next, and exits with its first error's code.
    if !matches!(sel.scope, Scope::Database { .. }) {
        let create = if sel.no_create_db {
            None
        } else {
            match catalog::show_create_database(s, db).await {
                Ok(c) => Some(c),
                Err(e) => {
                    tolerate(plan, summary, Err(e))?;
                    None
                }
            }
        };
        out.write_all(&script_text(
            plan,
            &script::database(shape, db, create.as_deref(), shape.add_drop_database),
        ))?;
    }
    // Sequences first: a table's DEFAULT may call NEXTVAL on one.
    let sequences_first = tables
        .iter()
        .filter(|t| t.kind == TableKind::Sequence)
        .chain(tables.iter().filter(|t| t.kind != TableKind::Sequence));
    let mut views = Vec::new();
    for t in sequences_first {
        let r = match t.kind {
            TableKind::Base => dump_table(s, plan, db, t, out, summary, pool).await,
            TableKind::Sequence => dump_sequence(s, plan, db, t, out).await,
            TableKind::View if sel.no_create_info => Ok(()),
            // `--tab` writes a view's file only with its real definition.
            TableKind::View if tab_dir(plan).is_some() => {
                views.push(t.name.clone());
                Ok(())
            }
            TableKind::View => {
                views.push(t.name.clone());
                catalog::view_columns(s, db, &t.name)
                    .await
                    .and_then(|cols| {
                        out.write_all(&script_text(
                            plan,
                            &script::view_placeholder(shape, &t.name, &cols),
                        ))
                    })
            }
        };
        tolerate(plan, summary, r)?;
    }
    if sel.events {
        out.write_all(&script_text(plan, &script::events_heading(shape, db)))?;
        let r = catalog::events(s, db).await.and_then(|events| {
            events
                .iter()
                .try_for_each(|e| out.write_all(&script_text(plan, &script::event(e))))
        });
        tolerate(plan, summary, r)?;
    }
    if sel.routines {
        out.write_all(&script_text(plan, &script::routines_heading(shape, db)))?;
        let r = catalog::routines(s, db).await.and_then(|routines| {
            routines
                .iter()
                .try_for_each(|(rt, d)| out.write_all(&script_text(plan, &script::routine(*rt, d))))
        });
        tolerate(plan, summary, r)?;
    }
    Ok(views)
}

async fn dump_sequence(
    s: &mut Session,
    plan: &Plan,
    db: &str,
    t: &TableInfo,
    out: &mut Sink,
) -> Result<()> {
    if plan.selection.no_create_info {
        return Ok(());
    }
    let create = catalog::show_create_table(s, db, t).await?;
    let next = if !plan.selection.wants_rows(db, &t.name) {
        None
    } else {
        Some(catalog::sequence_next_value(s, db, &t.name).await?)
    };
    out.write_all(&script_text(
        plan,
        &script::sequence_structure(&plan.shape, &t.name, &create, next.as_deref()),
    ))
}

/// A table's structure, rows and triggers; with `--tab` the structure and triggers go to
/// `DIR/t.sql` and the rows to `DIR/t.txt`.
async fn dump_table(
    s: &mut Session,
    plan: &Plan,
    db: &str,
    t: &TableInfo,
    main: &mut Sink,
    summary: &mut Summary,
    pool: &mut Option<ReaderPool>,
) -> Result<()> {
    let shape = &plan.shape;
    let sel = &plan.selection;
    let tab = match &plan.output {
        Output::Tab { dir, format } => Some((dir, format)),
        _ => None,
    };
    if plan.verbose {
        eprintln!("-- Dumping table {}", qualified(db, &t.name));
    }
    let mut schema_file = match tab {
        Some((dir, _)) => {
            let mut f = Sink::file(&dir.join(format!("{}.sql", file_name(&t.name))), None)?;
            let charset = &plan.connection.character_set;
            f.write_all(&script_text(
                plan,
                &script::tab_file_header(shape, &s.dialect, &s.server, db, charset),
            ))?;
            Some(f)
        }
        None => None,
    };
    let schema_out: &mut Sink = schema_file.as_mut().unwrap_or(main);
    if !sel.no_create_info {
        let mut create = catalog::show_create_table(s, db, t).await?;
        let mut log_shape;
        let shape = if t.is_log_table {
            // A log table may be in use on the target: keep it, create it if missing.
            create = create.replacen("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ", 1);
            log_shape = shape.clone();
            log_shape.add_drop_table = false;
            &log_shape
        } else {
            shape
        };
        schema_out.write_all(&script_text(
            plan,
            &script::table_structure(shape, &t.name, &create, &plan.connection.character_set),
        ))?;
    }

    if sel.wants_rows(db, &t.name) && !t.data_lives_elsewhere() {
        let columns = catalog::columns(s, db, &t.name).await?;
        let pk = if shape.order_by_primary {
            catalog::primary_key(s, db, &t.name).await?
        } else {
            Vec::new()
        };
        let read = TableRead::plan(
            &s.dialect,
            db,
            &t.name,
            &columns,
            sel.where_clause.as_deref(),
            &pk,
            shape.complete_insert,
        );
        let history = if t.system_versioned {
            &sel.history
        } else {
            &History::Current
        };
        let read = read.with_history(history);
        let sql = read.select_sql(None);
        let context = format!("dumping table {}", qualified(db, &t.name));
        let mut buf: Vec<u8> = Vec::with_capacity(FLUSH_AT + 64 * 1024);
        match tab {
            Some((dir, format)) => {
                let mut data = Sink::file(&dir.join(format!("{}.txt", file_name(&t.name))), None)?;
                let enc = TabEncoder::new(format.clone(), read.kinds.clone());
                if format.header {
                    enc.push_header(&read.columns, &mut buf);
                }
                let read = s
                    .stream(&sql, &context, |cells| {
                        enc.push_row(cells, &mut buf);
                        flush_if_full(&mut data, &mut buf)
                    })
                    .await;
                // A data file cut short by an error is not kept (dropping it deletes it);
                // under `--force` the table's .sql file and triggers still are.
                if let Some(n) = rows_read(plan, summary, read)? {
                    summary.rows += n;
                    data.write_all(&buf)?;
                    data.commit()?;
                }
            }
            None => {
                let out: &mut Sink = main;
                let mut shape = shape.clone();
                shape.add_locks &= !columns.iter().any(|c| c.default_uses_sequence);
                let shape = &shape;
                let style = InsertStyle {
                    mode: shape.insert_mode,
                    delayed: shape.delayed_insert && t.takes_insert_delayed(),
                    extended: shape.extended_insert,
                    hex_blob: shape.hex_blob,
                    net_buffer_length: shape.net_buffer_length,
                    charset: TextCharset::of(&plan.connection.character_set),
                };
                // A pool that lost its connections (failed chunks under `--force`) leaves
                // the reading to the dump's own session, in the same snapshot. So does a
                // table of a table-lock engine (MyISAM, Aria): under --lock-tables only this
                // session holds its READ LOCAL lock; readers would see rows inserted after
                // it, and their reads would queue behind a writer waiting for it (a hang).
                // Key ranges are planned on the current rows: other versions read whole. Nor
                // does a table the readers did not open at the snapshot's start (they would
                // ask for its metadata lock behind any DDL waiting for this session).
                let pool = pool.as_mut().filter(|p| {
                    !p.is_empty()
                        && t.is_transactional()
                        && *history == History::Current
                        && p.reads(db, &t.name)
                });
                // Planned before the data block opens: from `data_start` on, every outcome
                // (rows, or an error `--force` goes past) ends with `data_end`, so no LOCK
                // TABLES is left open in the output.
                let pooled = match pool {
                    Some(pool) => {
                        let rows = plan.stream.chunk_rows_for(t.avg_row_bytes);
                        Some((pool, chunk::plan_chunks(s, db, &t.name, rows).await?.chunks))
                    }
                    None => None,
                };
                if *history == History::All {
                    out.write_all(&script_text(plan, script::insert_history_start()))?;
                }
                out.write_all(&script_text(
                    plan,
                    &script::data_start(shape, &t.name, sel.where_clause.as_deref()),
                ))?;
                if let Some((pool, chunks)) = pooled {
                    // Key-range chunks read by the pool's connections, written in order.
                    let read = Arc::new(read);
                    let chunks = chunks
                        .into_iter()
                        .map(|c| ChunkRead {
                            read: Arc::clone(&read),
                            context: format!("{context} chunk {}", c.index),
                            range: c.range,
                            quoted_table: crate::sql::quote::ident(&t.name),
                            style,
                            xml: None,
                        })
                        .collect();
                    let joiner = StatementJoiner::new(
                        &crate::sql::quote::ident(&t.name),
                        read.insert_columns.as_deref(),
                        style,
                    );
                    let read = pool
                        .read_ordered(chunks, joiner, |bytes| out.write_all(bytes))
                        .await;
                    summary.rows += rows_read(plan, summary, read)?.unwrap_or(0);
                } else {
                    let mut enc = SqlEncoder::new(
                        &crate::sql::quote::ident(&t.name),
                        read.insert_columns.as_deref(),
                        read.kinds.clone(),
                        style,
                    );
                    let read = s
                        .stream(&sql, &context, |cells| {
                            enc.push_row(cells, &mut buf);
                            flush_if_full(out, &mut buf)
                        })
                        .await;
                    // Rows read before an error end with a closed statement (as
                    // mysqldump's), so a `--force` dump stays loadable. Without `--force`
                    // the error while reading is the one reported, also if this write
                    // fails too.
                    if matches!(read, Ok(_) | Err(Error::Rows { .. })) {
                        enc.finish(&mut buf);
                        if let Err(w) = out.write_all(&buf) {
                            return Err(match read {
                                Err(e) if !plan.force => e,
                                _ => w,
                            });
                        }
                    }
                    summary.rows += rows_read(plan, summary, read)?.unwrap_or(0);
                }
                out.write_all(&script_text(plan, &script::data_end(shape, &t.name)))?;
                if *history == History::All {
                    out.write_all(&script_text(plan, script::insert_history_end()))?;
                }
            }
        }
    }

    if sel.triggers && !sel.no_create_info {
        let schema_out: &mut Sink = schema_file.as_mut().unwrap_or(main);
        let r = catalog::triggers(s, db, &t.name)
            .await
            .and_then(|triggers| {
                triggers.iter().try_for_each(|trig| {
                    schema_out.write_all(&script_text(plan, &script::trigger(shape, trig)))
                })
            });
        // Under `--force`, `--tab` keeps the table's .sql file without them.
        tolerate(plan, summary, r)?;
    }
    if let Some(mut f) = schema_file {
        f.write_all(&script_text(
            plan,
            &script::tab_file_footer(shape, Some(&now_local())),
        ))?;
        f.commit()?;
    }
    summary.tables += 1;
    Ok(())
}

fn flush_if_full(out: &mut Sink, buf: &mut Vec<u8>) -> Result<()> {
    if buf.len() >= FLUSH_AT {
        out.write_all(buf)?;
        buf.clear();
    }
    Ok(())
}

/// Whether a path is a directory we can write into, for `--tab`.
pub fn check_tab_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "--tab directory {} does not exist",
            dir.display()
        )))
    }
}
