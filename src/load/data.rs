//! The data phase: every chunk file loaded over `--threads` connections, biggest tables
//! first (by bytes), each table's chunks in file (key) order on one connection at a time
//! while other tables wait (see `Sched`), each table's deferred indexes added by the
//! connection that finishes its last chunk, while the others go on with other tables.
//! `--verbose` prints each table's load and index times, and where the connections' time
//! went (loading, adding indexes, idle).
//!
//! * SQL chunks: the file's statements (the splitter runs on a blocking thread, one
//!   statement ahead of the server), each run on its own; the INSERTs' affected rows must
//!   equal the manifest's row count (fewer: rows rejected; more: rows the dump did not have).
//! * CSV chunks: `LOAD DATA LOCAL INFILE` (`encode::csv::load_data_sql`) fed from the file,
//!   decompressed on a blocking thread; the loaded row count must equal the manifest's (LOCAL
//!   turns duplicate keys and bad values into warnings, so this is where they show).
//!
//! Any warning other than 1265 on an ENUM column (the ENUM error value, index 0, which a
//! faithful dump carries) stops the load: the value did not load as dumped. On a
//! transactional table a chunk is one transaction with its journal row; on others it is
//! bracketed by `started`/`done` journal rows (see `journal`). Each file is hashed again as
//! it loads (`chunkfile`): bytes that differ from the manifest's checksum (a file changed
//! after verification), or a read or decompression error, fail the chunk like a server
//! error, before its journal row: rolled back, or left `started` for `--resume` to clean.
//!
//! Not for: creating tables (see `schema`).

use std::collections::VecDeque;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::{Notify, mpsc};

use super::chunkfile::ChunkFile;
use super::conn::LoadConn;
use super::error::{LoadError, Result};
use super::journal::{self, Journal};
use super::plan::LoadPlan;
use super::schema::{self, TableTarget};
use super::script::{self, Splitter};
use super::{LoadOptions, prepare_session};
use crate::client::options::ConnectionOptions;
use crate::format::encode::csv::load_data_sql;
use crate::format::manifest::ChunkEntry;
use crate::format::objects::ColumnKind;
use crate::plan::Progress;
use crate::process::progress::{Board, mb};
use crate::sql::quote::{ident, qualified};

const BLOCK: usize = 256 * 1024;

/// What the data phase did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataSummary {
    pub rows: u64,
    pub chunks: usize,
    /// Chunks the journal had as loaded (`--resume`).
    pub skipped: usize,
    pub bytes: u64,
    /// Tables that got deferred indexes.
    pub indexed_tables: usize,
}

enum Job {
    Chunk {
        table: usize,
        target: Arc<TableTarget>,
        chunk: ChunkEntry,
    },
    Indexes {
        target: Arc<TableTarget>,
    },
}

/// What a connection does next.
enum Next {
    Job(Job),
    /// Nothing now; a chunk finishing or a table being created may give it work.
    Wait,
    /// Nothing it could do is left.
    Done,
}

/// Which chunk a connection loads next. Tables come in as the schema phase creates them.
/// A table's chunks go to one connection at a time, in file (key) order, while another
/// table has chunks waiting: two loads into one InnoDB table mostly wait for each other
/// (`LOAD DATA` holds the table's AUTO-INC lock to its end, unless
/// innodb_autoinc_lock_mode=2; on MariaDB 10.6+ a first insert into an empty table with
/// `unique_checks=0` is a bulk insert that locks the whole table until it commits), and a
/// table filled in key order by one connection gets its next chunk's pages warm. A connection with no free table helps with one being loaded when
/// that does not just wait for a lock: the table allows it (`shareable`) and its first
/// chunk is in.
#[derive(Default)]
struct Sched {
    tables: Vec<Arc<TableTarget>>,
    /// Tables with chunks to load, biggest first (by bytes).
    order: Vec<usize>,
    /// Chunks of each table not yet handed out, in file order.
    pending: Vec<VecDeque<ChunkEntry>>,
    /// Chunks of each table being loaded now.
    loading: Vec<usize>,
    /// Chunks of each table in (this run's and, on `--resume`, earlier ones).
    loaded: Vec<usize>,
    /// Tables whose chunks were all loaded by an earlier run (`--resume`) but not indexed.
    index_jobs: VecDeque<usize>,
    /// When each table's first chunk was handed out, for `--verbose`.
    began: Vec<Option<Instant>>,
    /// Every table has come in.
    complete: bool,
}

impl Sched {
    /// A table the schema phase created (or found created by an earlier run).
    fn add(&mut self, t: TableTarget, journal: &Journal) {
        let i = self.tables.len();
        let todo: VecDeque<ChunkEntry> = t
            .entry
            .chunks
            .iter()
            .filter(|c| !journal.is_done(&journal::chunk_item(&c.file)))
            .cloned()
            .collect();
        let indexes_done = journal.is_done(&journal::indexes_item(&t.db, &t.entry.name));
        if todo.is_empty() && !t.deferred.is_empty() && !indexes_done {
            self.index_jobs.push_back(i);
        }
        self.loaded.push(t.entry.chunks.len() - todo.len());
        self.loading.push(0);
        self.began.push(None);
        let bytes = |t: &TableTarget| t.entry.chunks.iter().map(|c| c.bytes).sum::<u64>();
        let at = self
            .order
            .partition_point(|&o| bytes(&self.tables[o]) >= bytes(&t));
        self.order.insert(at, i);
        self.pending.push(todo);
        self.tables.push(Arc::new(t));
    }

    fn next(&mut self, mine: Option<usize>, shareable: impl Fn(&TableTarget) -> bool) -> Next {
        if let Some(t) = self.index_jobs.pop_front() {
            return Next::Job(Job::Indexes {
                target: Arc::clone(&self.tables[t]),
            });
        }
        let has_chunks = |s: &Sched, t: usize| !s.pending[t].is_empty();
        let can_share = |s: &Sched, t: usize| shareable(&s.tables[t]);
        let table = mine
            .filter(|&t| has_chunks(self, t))
            .or_else(|| {
                self.order
                    .iter()
                    .copied()
                    .find(|&t| has_chunks(self, t) && self.loading[t] == 0)
            })
            .or_else(|| {
                self.order
                    .iter()
                    .copied()
                    .find(|&t| has_chunks(self, t) && self.loaded[t] > 0 && can_share(self, t))
            });
        let Some(table) = table else {
            // More tables to come, or one to help with once its first chunk is in?
            let later = !self.complete
                || self
                    .order
                    .iter()
                    .any(|&t| has_chunks(self, t) && self.loaded[t] == 0 && can_share(self, t));
            return if later { Next::Wait } else { Next::Done };
        };
        let Some(chunk) = self.pending[table].pop_front() else {
            return Next::Done;
        };
        self.loading[table] += 1;
        self.began[table].get_or_insert_with(Instant::now);
        Next::Job(Job::Chunk {
            table,
            target: Arc::clone(&self.tables[table]),
            chunk,
        })
    }

    /// A chunk of `table` is in; true when it was the table's last one.
    fn chunk_done(&mut self, table: usize) -> bool {
        self.loading[table] -= 1;
        self.loaded[table] += 1;
        self.loading[table] == 0 && self.pending[table].is_empty()
    }
}

struct Shared {
    plan: Arc<LoadPlan>,
    journal: Arc<Journal>,
    sched: Mutex<Sched>,
    /// Signalled when a chunk is in or a table comes in (`Next::Wait`).
    wake: Notify,
    rows: AtomicU64,
    chunks: AtomicUsize,
    indexed: AtomicUsize,
    verbose: bool,
    /// Loading chunks blocks others on a table with an AUTO_INCREMENT column (CSV, and the
    /// server's innodb_autoinc_lock_mode is not 2).
    autoinc_lock: bool,
    /// The whole load's bar (bytes of chunk files), and the tables getting their indexes.
    total: ProgressBar,
    indexing: Mutex<Vec<String>>,
}

impl Shared {
    /// Shows on the whole load's bar which tables are getting their indexes; once every
    /// chunk file is read, the bar says the data is in rather than "ETA 0s".
    fn indexing(&self, name: &str, on: bool) {
        let mut names = self.indexing.lock().expect("indexing lock");
        if on {
            names.push(name.to_string());
        } else {
            names.retain(|n| n != name);
        }
        let data_in = self
            .total
            .length()
            .is_some_and(|l| self.total.position() >= l);
        if data_in {
            self.total.set_style(index_style());
        }
        self.total.set_message(match names.as_slice() {
            [] => String::new(),
            [one] => format!("; adding indexes to {one}"),
            [one, rest @ ..] => {
                format!("; adding indexes to {one} and {} more table(s)", rest.len())
            }
        });
    }

    /// Whether a second connection may load chunks of `t` while one does, without just
    /// waiting for its lock: InnoDB only; CSV (`LOAD DATA`) into a table with an
    /// AUTO_INCREMENT column only when the server interleaves AUTO-INC values.
    fn shareable(&self, t: &TableTarget) -> bool {
        t.transactional && !(self.autoinc_lock && t.auto_increment)
    }
}

/// Time one connection of the data phase spent, for `--verbose`.
#[derive(Debug, Clone, Copy, Default)]
struct Busy {
    loading: Duration,
    indexing: Duration,
}

/// Loads every chunk the journal does not have, of the tables `tables` brings in as the
/// schema phase creates them (it ends when the schema phase closes it); adds deferred
/// indexes. The connections open at once, and start on the first table that comes in.
pub async fn load(
    opts: &LoadOptions,
    connection: &ConnectionOptions,
    plan: &Arc<LoadPlan>,
    journal: &Arc<Journal>,
    mut tables: mpsc::UnboundedReceiver<TableTarget>,
    autoinc_lock: bool,
) -> Result<DataSummary> {
    let mut summary = DataSummary::default();
    // What is to come, from the plan: the schema phase brings in its base tables.
    let mut jobs = 0;
    for t in plan
        .databases
        .iter()
        .flat_map(|d| &d.tables)
        .filter(|t| t.kind == "table")
    {
        for c in &t.chunks {
            if journal.is_done(&journal::chunk_item(&c.file)) {
                summary.skipped += 1;
            } else {
                summary.bytes += c.bytes;
                jobs += 1;
            }
        }
        // Its deferred indexes, if an earlier run loaded its data.
        jobs += 1;
    }
    if jobs == 0 {
        while tables.recv().await.is_some() {}
        return Ok(summary);
    }
    let threads = opts.threads.max(1).min(jobs);
    let mut bars = Bars::new(opts.progress, summary.bytes);
    let shared = Arc::new(Shared {
        plan: Arc::clone(plan),
        journal: Arc::clone(journal),
        sched: Mutex::new(Sched::default()),
        wake: Notify::new(),
        rows: AtomicU64::new(0),
        chunks: AtomicUsize::new(0),
        indexed: AtomicUsize::new(0),
        verbose: opts.verbose,
        autoinc_lock,
        total: bars.total.clone(),
        indexing: Mutex::new(Vec::new()),
    });
    let feed = async {
        while let Some(t) = tables.recv().await {
            shared.sched.lock().expect("sched lock").add(t, journal);
            shared.wake.notify_waiters();
        }
        shared.sched.lock().expect("sched lock").complete = true;
        shared.wake.notify_waiters();
        Ok::<(), LoadError>(())
    };
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    // A few connections open at a time: all at once overflow the server's accept queue.
    let opening = Arc::new(tokio::sync::Semaphore::new(
        crate::client::conn::CONNECTS_AT_ONCE,
    ));
    for n in 0..threads {
        let opening = Arc::clone(&opening);
        let shared = Arc::clone(&shared);
        let connection = connection.clone();
        let opts = opts.clone();
        let line = bars.worker(n);
        let total = bars.total.clone();
        set.spawn(async move {
            let permit = opening.acquire().await;
            let mut conn = LoadConn::connect_more(&connection).await?;
            drop(permit);
            prepare_session(&mut conn, &opts).await?;
            shared.journal.register(&mut conn).await?;
            let mut busy = Busy::default();
            let result = worker(&mut conn, &shared, &line, &total, &mut busy).await;
            line.finish_and_clear();
            if result.is_ok() {
                conn.close().await;
            }
            result.map(|()| busy)
        });
    }
    // The first error wins; dropping the set aborts the other workers (their connections
    // close and the server rolls their open transactions back).
    let run = async {
        let mut busy = Busy::default();
        while let Some(joined) = set.join_next().await {
            let b = joined
                .map_err(|e| LoadError::Refused(format!("a loader thread failed: {e}")))??;
            busy.loading += b.loading;
            busy.indexing += b.indexing;
        }
        Ok::<Busy, LoadError>(busy)
    };
    let ((), busy) = tokio::try_join!(feed, run)?;
    bars.finish();
    if opts.verbose {
        let wall = started.elapsed().as_secs_f64();
        let idle =
            (wall * threads as f64 - busy.loading.as_secs_f64() - busy.indexing.as_secs_f64())
                .max(0.0);
        eprintln!(
            "rload: data phase {wall:.2} s on {threads} connection{}: loading chunks {:.2} s, \
             adding indexes {:.2} s, idle {idle:.2} s (connection-seconds)",
            if threads == 1 { "" } else { "s" },
            busy.loading.as_secs_f64(),
            busy.indexing.as_secs_f64(),
        );
    }
    summary.rows = shared.rows.load(Ordering::Relaxed);
    summary.chunks = shared.chunks.load(Ordering::Relaxed);
    summary.indexed_tables = shared.indexed.load(Ordering::Relaxed);
    Ok(summary)
}

async fn worker(
    conn: &mut LoadConn,
    shared: &Shared,
    line: &ProgressBar,
    total: &ProgressBar,
    busy: &mut Busy,
) -> Result<()> {
    let mut current_db: Option<String> = None;
    let mut mine: Option<usize> = None;
    loop {
        let wake = shared.wake.notified();
        tokio::pin!(wake);
        // Registered before looking, so that a chunk or table coming in meanwhile still
        // wakes it.
        wake.as_mut().enable();
        let next = shared
            .sched
            .lock()
            .expect("sched lock")
            .next(mine, |t| shared.shareable(t));
        let job = match next {
            Next::Job(job) => job,
            Next::Wait => {
                wake.await;
                continue;
            }
            Next::Done => return Ok(()),
        };
        let (t, loaded) = match job {
            Job::Chunk {
                table,
                target,
                chunk,
            } => {
                mine = Some(table);
                line.set_message(format!(
                    "{} chunk {} of {}",
                    qualified(&target.db, &target.entry.name),
                    chunk.index + 1,
                    target.entry.chunks.len()
                ));
                let begin = Instant::now();
                let rows =
                    load_chunk(conn, shared, &target, &chunk, &mut current_db, total).await?;
                busy.loading += begin.elapsed();
                shared.rows.fetch_add(rows, Ordering::Relaxed);
                shared.chunks.fetch_add(1, Ordering::Relaxed);
                let last = {
                    let mut sched = shared.sched.lock().expect("sched lock");
                    sched
                        .chunk_done(table)
                        .then(|| sched.began[table].map(|b| b.elapsed()))
                };
                shared.wake.notify_waiters();
                let Some(loaded) = last else { continue };
                (target, loaded)
            }
            Job::Indexes { target } => (target, None),
        };
        let name = qualified(&t.db, &t.entry.name);
        let item = journal::indexes_item(&t.db, &t.entry.name);
        let indexes = if t.deferred.is_empty() || shared.journal.is_done(&item) {
            None
        } else {
            line.set_message(format!("{name}: adding {} index(es)", t.deferred.len()));
            let begin = Instant::now();
            shared.indexing(&name, true);
            let added = schema::add_indexes(conn, &t).await;
            shared.indexing(&name, false);
            added?;
            shared.journal.mark_done(conn, &item, 0).await?;
            shared.indexed.fetch_add(1, Ordering::Relaxed);
            busy.indexing += begin.elapsed();
            Some(begin.elapsed())
        };
        if shared.verbose {
            let mut what = match loaded {
                Some(d) => format!(
                    "rload: {name}: {} rows in {} chunks loaded in {:.2} s",
                    t.entry.rows,
                    t.entry.chunks.len(),
                    d.as_secs_f64()
                ),
                None => format!("rload: {name}: data loaded by an earlier run"),
            };
            if let Some(d) = indexes {
                what.push_str(&format!(
                    "; {} deferred index(es) added in {:.2} s",
                    t.deferred.len(),
                    d.as_secs_f64()
                ));
            }
            line.suspend(|| eprintln!("{what}"));
        }
    }
}

/// Server errors after which an InnoDB chunk is loaded again from its start, after its
/// transaction is rolled back (its rows and its journal row commit together, so a failed
/// attempt leaves nothing): a deadlock (1213) or a lock wait timeout (1205). Parallel
/// loaders of a partitioned table deadlock: from MariaDB 10.6 the first bulk insert into
/// an empty partition locks it exclusively while others hold intention locks on it.
const RETRIED_ERRORS: [u16; 2] = [1213, 1205];
/// Attempts of one chunk, a little longer apart each time.
const CHUNK_ATTEMPTS: u32 = 8;

/// Loads one chunk exactly once (see `journal`); returns its rows.
async fn load_chunk(
    conn: &mut LoadConn,
    shared: &Shared,
    t: &TableTarget,
    chunk: &ChunkEntry,
    current_db: &mut Option<String>,
    total: &ProgressBar,
) -> Result<u64> {
    let mut attempt = 1;
    loop {
        let e = match load_chunk_once(conn, shared, t, chunk, current_db, total).await {
            Ok(rows) => return Ok(rows),
            Err(e) => e,
        };
        let retried = match &e {
            LoadError::Rdump(e) => e.sql_error_code().filter(|c| RETRIED_ERRORS.contains(c)),
            _ => None,
        };
        if !t.transactional || retried.is_none() || attempt >= CHUNK_ATTEMPTS {
            return Err(e);
        }
        if shared.verbose {
            eprintln!(
                "rload: {e}; loading the chunk again (attempt {})",
                attempt + 1
            );
        }
        tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
        attempt += 1;
    }
}

/// One attempt at `load_chunk`. An InnoDB chunk is rolled back on any error. A chunk, not a
/// table, is one transaction: on MariaDB 10.11 a whole table in one transaction (all its
/// chunks one bulk insert) cost the server 40-50% more CPU (benches/README.md).
async fn load_chunk_once(
    conn: &mut LoadConn,
    shared: &Shared,
    t: &TableTarget,
    chunk: &ChunkEntry,
    current_db: &mut Option<String>,
    total: &ProgressBar,
) -> Result<u64> {
    let journal = &shared.journal;
    let item = journal::chunk_item(&chunk.file);
    let name = qualified(&t.db, &t.entry.name);
    let context = format!("loading {name} chunk {} ({})", chunk.index, chunk.file);
    if current_db.as_deref() != Some(t.db.as_str()) {
        conn.exec(&format!("USE {}", ident(&t.db)), &context)
            .await?;
        *current_db = Some(t.db.clone());
    }
    if t.transactional {
        conn.exec("START TRANSACTION", &context).await?;
        let r = load_and_record(conn, shared, t, chunk, &item, context, total).await;
        if r.is_err() {
            // Also after an error of the journal row or of COMMIT: a later attempt's START
            // TRANSACTION would otherwise commit what this one left.
            let _ = conn.exec("ROLLBACK", "rolling back the chunk").await;
        }
        return r;
    }
    if journal.was_started(&item) {
        // An interrupted load of this chunk left some of its rows: remove them.
        let filter = chunk
            .range
            .as_deref()
            .map(|r| format!(" WHERE {r}"))
            .unwrap_or_default();
        conn.exec(
            &format!("DELETE FROM {name}{filter}"),
            &format!(
                "removing the rows an interrupted load left in {name} chunk {}",
                chunk.index
            ),
        )
        .await?;
    }
    journal.mark_started(conn, &item).await?;
    load_and_record(conn, shared, t, chunk, &item, context, total).await
}

/// Loads the chunk's rows, checks their count and writes its journal row (and, for an
/// InnoDB chunk, commits).
async fn load_and_record(
    conn: &mut LoadConn,
    shared: &Shared,
    t: &TableTarget,
    chunk: &ChunkEntry,
    item: &str,
    context: String,
    total: &ProgressBar,
) -> Result<u64> {
    let path = shared.plan.path(&chunk.file);
    let rows = if shared.plan.csv {
        load_csv(conn, t, &path, chunk, &context, total).await
    } else {
        load_sql(conn, t, &path, chunk, &context, total).await
    }?;
    if rows != chunk.rows {
        return Err(LoadError::Data {
            server: conn.server.clone(),
            context,
            message: format!(
                "{rows} rows loaded, the manifest says {} ({})",
                chunk.rows,
                if rows < chunk.rows {
                    "duplicate keys or rejected rows?"
                } else {
                    "the file holds more rows than were dumped"
                }
            ),
        });
    }
    conn.exec(
        &shared.journal.done_sql(item, chunk.rows, !t.transactional),
        "writing the load journal",
    )
    .await?;
    if t.transactional {
        conn.exec("COMMIT", "committing the chunk").await?;
    }
    Ok(chunk.rows)
}

fn read_error(path: &Path, e: &io::Error) -> String {
    if script::is_zstd(path) {
        format!("reading the file failed (damaged zstd data?): {e}")
    } else {
        format!("reading the file failed: {e}")
    }
}

/// Runs a SQL chunk's statements; returns the rows they inserted.
async fn load_sql(
    conn: &mut LoadConn,
    t: &TableTarget,
    path: &Path,
    chunk: &ChunkEntry,
    context: &str,
    total: &ProgressBar,
) -> Result<u64> {
    let (tx, mut rx) = mpsc::channel::<std::result::Result<Vec<u8>, String>>(2);
    let file: PathBuf = path.to_path_buf();
    let bar = total.clone();
    let checksum = chunk.checksum.clone();
    let reader = tokio::task::spawn_blocking(move || {
        let reader = match ChunkFile::open(&file, bar) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.blocking_send(Err(read_error(&file, &e)));
                return;
            }
        };
        let mut s = Splitter::new(reader);
        loop {
            let item = match s.next_statement() {
                Ok(Some(stmt)) => Ok(stmt),
                Ok(None) => break,
                Err(e) => Err(read_error(&file, &e)),
            };
            let stop = item.is_err();
            if tx.blocking_send(item).is_err() || stop {
                return;
            }
        }
        // Every statement was sent: the last item says whether they were the checked bytes.
        if let Err(e) = s.into_inner().check(&checksum) {
            let _ = tx.blocking_send(Err(e));
        }
    });
    let mut rows = 0u64;
    let mut result = Ok(());
    while let Some(item) = rx.recv().await {
        let stmt = match item {
            Ok(s) => s,
            Err(message) => {
                result = Err(LoadError::dump(path, message));
                break;
            }
        };
        match conn.exec_bytes(&stmt, context).await {
            Ok(o) => {
                rows += o.affected;
                if o.warnings > 0
                    && let Err(e) = check_warnings(conn, t, context).await
                {
                    result = Err(e);
                    break;
                }
            }
            Err(e) => {
                result = Err(e.into());
                break;
            }
        }
    }
    drop(rx);
    let _ = reader.await;
    result.map(|()| rows)
}

/// Loads a CSV chunk with LOAD DATA LOCAL INFILE; returns the rows loaded.
async fn load_csv(
    conn: &mut LoadConn,
    t: &TableTarget,
    path: &Path,
    chunk: &ChunkEntry,
    context: &str,
    total: &ProgressBar,
) -> Result<u64> {
    let mut columns = Vec::with_capacity(t.entry.columns.len());
    for c in &t.entry.columns {
        let kind = ColumnKind::from_name(&c.kind).ok_or_else(|| {
            LoadError::dump(
                path,
                format!(
                    "the manifest gives column {:?} the unknown kind {:?}",
                    c.name, c.kind
                ),
            )
        })?;
        columns.push((c.name.clone(), kind));
    }
    let sql = load_data_sql(&chunk.file, &t.db, &t.entry.name, &columns, true);
    let (tx, rx) = mpsc::channel::<io::Result<Vec<u8>>>(4);
    let failure: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let file: PathBuf = path.to_path_buf();
    let bar = total.clone();
    let checksum = chunk.checksum.clone();
    let failed = Arc::clone(&failure);
    let reader = tokio::task::spawn_blocking(move || {
        let fail = |e: io::Error| {
            let msg = read_error(&file, &e);
            *failed.lock().expect("failure lock") = Some(msg.clone());
            let _ = tx.blocking_send(Err(io::Error::new(e.kind(), msg)));
        };
        let mut reader = match ChunkFile::open(&file, bar) {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        loop {
            let mut block = vec![0u8; BLOCK];
            match read_full(&mut reader, &mut block) {
                Ok(0) => break,
                Ok(n) => {
                    block.truncate(n);
                    if tx.blocking_send(Ok(block)).is_err() {
                        return;
                    }
                }
                Err(e) => return fail(e),
            }
        }
        // The stream ends with an error, not its end, unless these were the checked bytes.
        if let Err(message) = reader.check(&checksum) {
            *failed.lock().expect("failure lock") = Some(message.clone());
            let _ = tx.blocking_send(Err(io::Error::new(io::ErrorKind::InvalidData, message)));
        }
    });
    let data = async move {
        let stream: mysql_async::InfileData = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .map(|item: io::Result<Vec<u8>>| item.map(Into::into))
        .boxed();
        Ok(stream)
    };
    let outcome = conn.load_local(&sql, data, context).await;
    let _ = reader.await;
    if let Some(message) = failure.lock().expect("failure lock").take() {
        return Err(LoadError::dump(path, message));
    }
    let outcome = outcome?;
    if outcome.warnings > 0 {
        check_warnings(conn, t, context).await?;
    }
    Ok(outcome.affected)
}

/// Reads until `buf` is full or the end.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Fails on any warning but the ENUM error value's "Data truncated" (1265) on an ENUM column.
async fn check_warnings(conn: &mut LoadConn, t: &TableTarget, context: &str) -> Result<()> {
    let warnings = conn.warnings().await?;
    let bad: Vec<String> = warnings
        .iter()
        .filter(|(code, level, message)| {
            let enum_error_value = *code == 1265
                && t.enum_columns
                    .iter()
                    .any(|c| message.contains(&format!("column '{c}'")));
            !(enum_error_value || level.eq_ignore_ascii_case("Note"))
        })
        .map(|(code, level, message)| format!("{level} {code}: {message}"))
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    Err(LoadError::Data {
        server: conn.server.clone(),
        context: context.to_string(),
        message: format!(
            "a value did not load as dumped: {}{}",
            bad.iter().take(3).cloned().collect::<Vec<_>>().join("; "),
            if bad.len() > 3 { "; ..." } else { "" }
        ),
    })
}

/// Progress on stderr (see `process::progress`): bytes of chunk files for the whole load
/// (decimal MB, as the summary), one line per connection; a plain line every few seconds
/// with `--progress=always` when stderr is not a terminal.
struct Bars {
    board: Board,
    total: ProgressBar,
}

fn index_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {decimal_total_bytes} of chunk files loaded{msg}",
    )
    .expect("progress template")
    .progress_chars("=> ")
}

impl Bars {
    fn new(progress: Progress, bytes: u64) -> Bars {
        let mut board = Board::new(progress);
        let total = board.multi.add(ProgressBar::new(bytes.max(1)));
        total.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {decimal_bytes} of {decimal_total_bytes} of chunk \
                 files ({decimal_bytes_per_sec}, ETA {eta}){msg}",
            )
            .expect("progress template")
            .progress_chars("=> "),
        );
        let bar = total.clone();
        board.lines_every_few_seconds("rload", move || {
            let secs = bar.elapsed().as_secs_f64().max(0.001);
            format!(
                "{} of {} of chunk files ({}/s){}",
                mb(bar.position()),
                mb(bar.length().unwrap_or(0)),
                mb((bar.position() as f64 / secs) as u64),
                bar.message()
            )
        });
        Bars { board, total }
    }

    fn worker(&self, n: usize) -> ProgressBar {
        let line = self.board.multi.add(ProgressBar::new_spinner());
        line.set_style(
            ProgressStyle::with_template(&format!("  thread {n}: {{msg}}"))
                .expect("progress template"),
        );
        line
    }

    fn finish(&mut self) {
        self.total.finish_and_clear();
        self.board.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::manifest::TableEntry;

    fn chunk(index: usize) -> ChunkEntry {
        ChunkEntry {
            index,
            file: format!("t.{index:05}.csv"),
            rows: 1,
            bytes: 1,
            checksum: String::new(),
            range: None,
        }
    }

    fn table(name: &str, chunks: usize) -> TableTarget {
        TableTarget {
            db: "d".into(),
            entry: TableEntry {
                name: name.into(),
                kind: "table".into(),
                engine: None,
                schema_file: None,
                triggers_file: None,
                columns: Vec::new(),
                rows: chunks as u64,
                chunks: (0..chunks).map(chunk).collect(),
                db: "d".into(),
                estimated_rows: 0,
            },
            transactional: true,
            deferred: Vec::new(),
            enum_columns: Vec::new(),
            auto_increment: false,
        }
    }

    fn journal() -> Journal {
        Journal::with_done(&[])
    }

    fn sched(tables: &[usize]) -> Sched {
        let mut s = Sched::default();
        for (i, &n) in tables.iter().enumerate() {
            s.add(table(&format!("t{i}"), n), &journal());
        }
        s.complete = true;
        s
    }

    /// `Ok((table, chunk))`, or `Err(true)` to wait, `Err(false)` when done.
    fn take(s: &mut Sched, mine: Option<usize>, shareable: bool) -> Result<(usize, usize), bool> {
        match s.next(mine, |_| shareable) {
            Next::Job(Job::Chunk { table, chunk, .. }) => Ok((table, chunk.index)),
            Next::Job(Job::Indexes { .. }) => panic!("no index job expected"),
            Next::Wait => Err(true),
            Next::Done => Err(false),
        }
    }

    #[test]
    fn each_connection_keeps_to_its_table_in_chunk_order() {
        let mut s = sched(&[4, 2]);
        assert_eq!(take(&mut s, None, false), Ok((0, 0)));
        assert_eq!(take(&mut s, None, false), Ok((1, 0)));
        assert_eq!(take(&mut s, Some(1), false), Ok((1, 1)));
        assert!(!s.chunk_done(1));
        assert!(s.chunk_done(1), "table 1's last chunk");
        // Table 0 is being loaded: a connection stops rather than queue behind its lock...
        assert_eq!(take(&mut s, Some(1), false), Err(false));
        // ...and where loading it twice at once takes no lock, waits for its first chunk
        // (which may lock the empty table) to be in.
        assert_eq!(take(&mut s, Some(1), true), Err(true));
        assert!(!s.chunk_done(0));
        assert_eq!(take(&mut s, Some(0), false), Ok((0, 1)));
        assert_eq!(take(&mut s, Some(1), true), Ok((0, 2)));
        assert_eq!(take(&mut s, Some(0), false), Ok((0, 3)));
        assert!(!s.chunk_done(0));
        assert!(!s.chunk_done(0));
        assert!(s.chunk_done(0), "table 0's last chunk");
        assert_eq!(take(&mut s, Some(0), true), Err(false));
    }

    #[test]
    fn tables_come_in_while_connections_wait_and_the_biggest_goes_first() {
        let mut s = Sched::default();
        assert_eq!(
            take(&mut s, None, false),
            Err(true),
            "the schema phase is on"
        );
        s.add(table("small", 1), &journal());
        s.add(table("big", 3), &journal());
        assert_eq!(take(&mut s, None, false), Ok((1, 0)));
        assert_eq!(take(&mut s, None, false), Ok((0, 0)));
        assert_eq!(take(&mut s, Some(0), false), Err(true), "more may come");
        s.complete = true;
        assert_eq!(take(&mut s, Some(0), false), Err(false));
    }

    #[test]
    fn resumed_index_jobs_come_first() {
        let done = Journal::with_done(&[&journal::chunk_item("t.00000.csv")]);
        let mut s = Sched::default();
        let mut t = table("t", 1);
        t.deferred = vec![("k".into(), "KEY `k` (`k`)".into())];
        s.add(t, &done);
        s.add(table("u", 1), &journal());
        s.complete = true;
        assert!(matches!(
            s.next(None, |_| false),
            Next::Job(Job::Indexes { .. })
        ));
        assert_eq!(take(&mut s, None, false), Ok((1, 0)));
    }
}
