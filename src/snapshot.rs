//! Consistency: how the dump sees one consistent state of the server, and the binlog
//! coordinates of exactly that state.
//!
//! Each strategy is a small type behind `ConsistencyStrategy` (set up, per-database hooks,
//! tear down); `strategy_for` picks one from the plan and the server's dialect. The dumper
//! never branches on the mode itself. Not for: writing coordinates into the output (see
//! `dump`), which only reads the `Coordinates` returned here.

use futures::future::BoxFuture;

use crate::client::conn::{Session, cell_by_name, cell_string};
use crate::error::{Error, Result};
use crate::format::coordinates::{Coordinates, SourceCoordinates};
use crate::format::objects::TableInfo;
use crate::format::shape::GtidPurged;
use crate::group::{GroupStrategy, group_strategy, start_snapshots};
use crate::plan::{Consistency, ConsistencyPlan, DirConsistency};
use crate::pool::ReaderPool;
use crate::sql::dialect::Dialect;
use crate::sql::quote::{ident, qualified};

/// What the dump needs to know besides the data.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wants {
    pub binlog: bool,
    pub gtid: bool,
    pub source: bool,
    pub flush_logs: bool,
}

impl Wants {
    pub fn from_plan(c: &ConsistencyPlan, dialect: &Dialect) -> Wants {
        // MySQL's --set-gtid-purged (AUTO by default) writes gtid_executed into every dump.
        let mysql_gtid_purged = !dialect.is_mariadb() && c.set_gtid_purged != GtidPurged::Off;
        Wants {
            binlog: c.master_data.is_some(),
            gtid: c.gtid || c.master_data.is_some() || mysql_gtid_purged,
            source: c.dump_slave.is_some(),
            flush_logs: c.flush_logs,
        }
    }
}

/// One consistency policy.
pub trait ConsistencyStrategy: Send {
    /// Runs before anything is read; returns the coordinates of the state the dump will see.
    fn setup<'a>(&'a mut self, s: &'a mut Session) -> BoxFuture<'a, Result<Coordinates>>;
    /// Runs before the tables of one database are read.
    fn before_database<'a>(
        &'a mut self,
        _s: &'a mut Session,
        _db: &'a str,
        _tables: &'a [TableInfo],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
    /// Runs after the tables of one database were read.
    fn after_database<'a>(&'a mut self, _s: &'a mut Session) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
    /// Releases locks and the snapshot; runs after everything was read.
    fn teardown<'a>(&'a mut self, s: &'a mut Session) -> BoxFuture<'a, Result<()>>;
    /// For the dump's header comment and the verbose log.
    fn describe(&self) -> &'static str;
    /// Reader connections that see the same state as the dump (after `setup`), if any.
    fn readers(&mut self) -> Option<ReaderPool> {
        None
    }
}

/// `--single-transaction` read by several connections: a brief commit-blocking lock (MariaDB
/// BACKUP STAGE or FTWRL, see `group`) while every reader starts its snapshot and the
/// coordinates are read. Without the RELOAD privilege that lock needs, it falls back to one
/// connection, as mysqldump reads (with a warning when `--threads` was given).
pub struct SharedSnapshot {
    group: Box<dyn GroupStrategy>,
    readers: Vec<Session>,
    /// Takes the lock, so the dump's own session can start its snapshot under it too:
    /// MariaDB's BACKUP STAGE END ends the transaction of the session that runs it.
    locker: Option<Session>,
    fallback: Option<Snapshot>,
    wants: Wants,
    warn_on_fallback: bool,
}

impl SharedSnapshot {
    pub fn new(
        plan: &ConsistencyPlan,
        dialect: &Dialect,
        readers: Vec<Session>,
        locker: Session,
        warn_on_fallback: bool,
    ) -> Result<SharedSnapshot> {
        let wants = Wants::from_plan(plan, dialect);
        Ok(SharedSnapshot {
            group: group_strategy(DirConsistency::Auto, dialect, wants)?,
            readers,
            locker: Some(locker),
            fallback: None,
            wants,
            warn_on_fallback,
        })
    }
}

impl ConsistencyStrategy for SharedSnapshot {
    fn setup<'a>(&'a mut self, s: &'a mut Session) -> BoxFuture<'a, Result<Coordinates>> {
        Box::pin(async move {
            let Some(mut locker) = self.locker.take() else {
                return Err(Error::Usage("the shared snapshot was set up twice".into()));
            };
            let locked = match self.group.lock(&mut locker, &mut self.readers, &[]).await {
                Ok(start) => {
                    // The dump's own session joins the snapshot too, while commits are
                    // still stopped: it reads a table's rows itself when `--force` has
                    // left the pool without readers, and MyISAM tables.
                    let joined = start_snapshots(std::slice::from_mut(s)).await;
                    let released = self.group.release(&mut locker).await;
                    released.and(joined).map(|()| start)
                }
                Err(e) => Err(e),
            };
            locker.close().await;
            match locked {
                Ok(start) => Ok(start.coordinates),
                Err(Error::Server { message, .. }) if message.contains("RELOAD") => {
                    if self.warn_on_fallback {
                        eprintln!(
                            "rdump: warning: {}: no RELOAD privilege for a snapshot shared by {} connections; reading with one",
                            s.server,
                            self.readers.len()
                        );
                    }
                    for r in self.readers.drain(..) {
                        r.close().await;
                    }
                    let locked = self.wants.flush_logs;
                    let fallback = self.fallback.insert(Snapshot {
                        wants: self.wants,
                        locked,
                        stopped_sql_thread: false,
                    });
                    fallback.setup(s).await
                }
                Err(e) => Err(e),
            }
        })
    }

    fn teardown<'a>(&'a mut self, s: &'a mut Session) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match &mut self.fallback {
                Some(f) => f.teardown(s).await,
                None => s.exec("COMMIT", "ending the snapshot").await,
            }
        })
    }

    fn describe(&self) -> &'static str {
        match self.fallback {
            Some(_) => "single transaction (one connection: no RELOAD privilege)",
            None => "single transaction shared by several connections",
        }
    }

    fn readers(&mut self) -> Option<ReaderPool> {
        (!self.readers.is_empty()).then(|| ReaderPool::new(std::mem::take(&mut self.readers)))
    }
}

/// Picks the strategy the plan asks for on this server.
pub fn strategy_for(plan: &ConsistencyPlan, dialect: &Dialect) -> Box<dyn ConsistencyStrategy> {
    let wants = Wants::from_plan(plan, dialect);
    let needs_coordinates = wants.binlog || wants.gtid || wants.source;
    match plan.mode {
        Consistency::SingleTransaction => {
            // MariaDB reports the snapshot's own binlog position, so no global lock is
            // needed, unless logs must be flushed at exactly that point.
            // --flush-logs always takes FTWRL, so the new binlog starts exactly there.
            let lockless = !wants.flush_logs
                && (!needs_coordinates
                    || (dialect.snapshot_binlog_status_sql().is_some() && !wants.source));
            if lockless {
                Box::new(Snapshot {
                    wants,
                    locked: false,
                    stopped_sql_thread: false,
                })
            } else {
                Box::new(Snapshot {
                    wants,
                    locked: true,
                    stopped_sql_thread: false,
                })
            }
        }
        Consistency::LockAllTables => Box::new(GlobalReadLock {
            wants,
            readers: Vec::new(),
            stopped_sql_thread: false,
        }),
        Consistency::LockTables => Box::new(TableLocks { wants }),
        Consistency::None => Box::new(NoLocks { wants }),
    }
}

fn consistency_error(s: &Session, message: impl Into<String>) -> Error {
    Error::Consistency {
        server: s.server.clone(),
        message: message.into(),
    }
}

fn binlog_off(s: &Session) -> Error {
    Error::BinlogOff {
        server: s.server.clone(),
        option: "--master-data",
    }
}

/// Reads the binlog coordinates and GTID state as of now (call under a lock).
pub async fn read_current_coordinates(s: &mut Session, wants: Wants) -> Result<Coordinates> {
    let mut c = Coordinates::default();
    if wants.binlog {
        let sql = s.dialect.binlog_status_sql();
        let rows = s.rows(sql, "reading binlog coordinates").await?;
        let row = rows.first().ok_or_else(|| binlog_off(s))?;
        c.binlog = Some(binlog_from_row(s, row, "File", "Position")?);
    }
    if wants.gtid {
        c.gtid = s
            .first_value(s.dialect.gtid_executed_sql(), "reading the GTID state")
            .await?
            .filter(|g| !g.is_empty());
    }
    if wants.source {
        c.source = Some(read_source_coordinates(s).await?);
    }
    Ok(c)
}

fn binlog_from_row(
    s: &Session,
    row: &mysql_async::Row,
    file: &str,
    pos: &str,
) -> Result<(String, u64)> {
    let f = cell_by_name(row, file);
    let p = cell_by_name(row, pos).and_then(|p| p.parse::<u64>().ok());
    match (f, p) {
        (Some(f), Some(p)) if !f.is_empty() => Ok((f, p)),
        _ => Err(consistency_error(
            s,
            "the server returned no binlog coordinates",
        )),
    }
}

async fn read_source_coordinates(s: &mut Session) -> Result<SourceCoordinates> {
    let sql = s.dialect.replica_status_sql();
    let rows = s.rows(sql, "reading replica status").await?;
    let row = rows.first().ok_or_else(|| {
        consistency_error(
            s,
            "this server is not a replica: --dump-slave needs replication",
        )
    })?;
    let cols = s.dialect.replica_status_columns();
    let (file, pos) = binlog_from_row(s, row, cols.exec_file, cols.exec_pos)?;
    let host = cell_by_name(row, cols.host).unwrap_or_default();
    let port = cell_by_name(row, cols.port)
        .and_then(|p| p.parse().ok())
        .unwrap_or(3306);
    let gtid = if s.dialect.is_mariadb() {
        s.first_value("SELECT @@GLOBAL.gtid_slave_pos", "reading gtid_slave_pos")
            .await?
            .filter(|g| !g.is_empty())
    } else {
        None
    };
    Ok(SourceCoordinates {
        file,
        pos,
        host,
        port,
        gtid,
    })
}

/// Runs a lock statement (FTWRL, LOCK TABLES) backing off instead of deadlocking.
///
/// While such a lock waits for running writes it already blocks new ones. When a running
/// write waits for a row held by a transaction whose next write the pending lock blocks,
/// nothing moves until InnoDB's lock wait timeout (50 s by default) kills the write: a
/// writer fails and the dump waits (seen in the consistency test under load; the server's
/// deadlock detector does not see row waits). So the lock is asked with a 1 s
/// lock_wait_timeout; on timeout the pending request is withdrawn (the blocked transaction
/// can commit and release its rows) and asked again, up to 60 times.
pub async fn lock_with_backoff(s: &mut Session, sql: &str, context: &str) -> Result<()> {
    let old = s
        .first_value(
            "SELECT @@SESSION.lock_wait_timeout",
            "reading lock_wait_timeout",
        )
        .await?
        .unwrap_or_else(|| "31536000".into());
    s.exec(
        "SET SESSION lock_wait_timeout = 1",
        "setting lock_wait_timeout",
    )
    .await?;
    let mut attempt = 0u64;
    let taken = loop {
        attempt += 1;
        match s.exec(sql, context).await {
            Err(e) if e.sql_error_code() == Some(1205) && attempt < 60 => {
                tokio::time::sleep(std::time::Duration::from_millis(20 * attempt.min(10))).await;
            }
            other => break other,
        }
    };
    s.exec(
        &format!("SET SESSION lock_wait_timeout = {}", old.trim()),
        "restoring lock_wait_timeout",
    )
    .await?;
    taken
}

/// `LOCK TABLES ... READ` (`READ LOCAL` with `local`, as mysqldump's --lock-tables) on the
/// given tables, log tables left out (the server refuses them), with `lock_with_backoff`.
/// Nothing to lock is not an error.
pub async fn lock_for_reading<'t>(
    s: &mut Session,
    tables: impl Iterator<Item = (&'t str, &'t TableInfo)>,
    local: bool,
    context: &str,
) -> Result<()> {
    let mode = if local {
        "READ /*!32311 LOCAL */"
    } else {
        "READ"
    };
    let list: Vec<String> = tables
        .filter(|(_, t)| !t.is_log_table)
        .map(|(db, t)| format!("{} {mode}", qualified(db, &t.name)))
        .collect();
    if list.is_empty() {
        return Ok(());
    }
    lock_with_backoff(s, &format!("LOCK TABLES {}", list.join(", ")), context).await
}

/// FLUSH TABLES WITH READ LOCK, after a plain FLUSH TABLES, with `lock_with_backoff`.
pub async fn take_global_read_lock(s: &mut Session) -> Result<()> {
    // A plain FLUSH TABLES first lets FTWRL wait less behind long queries.
    s.exec("FLUSH /*!40101 LOCAL */ TABLES", "flushing tables")
        .await?;
    lock_with_backoff(
        s,
        "FLUSH TABLES WITH READ LOCK",
        "taking the global read lock",
    )
    .await
}

async fn global_read_lock(s: &mut Session, flush_logs: bool) -> Result<()> {
    take_global_read_lock(s).await?;
    if flush_logs {
        s.exec("FLUSH LOGS", "flushing logs").await?;
    }
    Ok(())
}

async fn start_snapshot(s: &mut Session) -> Result<()> {
    s.exec(
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        "setting the isolation level",
    )
    .await?;
    s.exec(
        "START TRANSACTION /*!40100 WITH CONSISTENT SNAPSHOT */",
        "starting the consistent snapshot",
    )
    .await
}

/// `--dump-slave`: stops the replica's SQL thread if it runs; returns whether it did, so
/// that only a thread rdump stopped is started again (a replica the DBA stopped, delayed or
/// left broken stays as it was).
async fn stop_replica_sql_thread(s: &mut Session) -> Result<bool> {
    let rows = s
        .rows(s.dialect.replica_status_sql(), "reading the replica status")
        .await?;
    let column = s.dialect.replica_status_columns().sql_running;
    let running = rows
        .first()
        .is_some_and(|row| cell_by_name(row, column).is_some_and(|v| v == "Yes"));
    if running {
        let sql = s.dialect.stop_replica_sql();
        s.exec(sql, "stopping the replica SQL thread").await?;
    }
    Ok(running)
}

/// Starts the SQL thread `stop_replica_sql_thread` stopped.
async fn restart_replica_sql_thread(s: &mut Session) -> Result<()> {
    let sql = s.dialect.start_replica_sql_thread_sql();
    s.exec(sql, "restarting the replica SQL thread").await
}

/// The binlog position and GTID of the snapshot `s` has started (MariaDB's
/// `binlog_snapshot_file/position`): exact without any lock.
pub async fn snapshot_coordinates(s: &mut Session, wants: Wants) -> Result<Coordinates> {
    let mut c = Coordinates::default();
    if wants.binlog || wants.gtid {
        // MariaDB: binlog_snapshot_* report the position of this very snapshot.
        let sql = s.dialect.snapshot_binlog_status_sql().unwrap_or_default();
        let rows = s
            .rows(sql, "reading the snapshot's binlog position")
            .await?;
        let mut file = None;
        let mut pos = None;
        for r in &rows {
            match cell_string(r, 0).as_deref() {
                Some("Binlog_snapshot_file") => file = cell_string(r, 1),
                Some("Binlog_snapshot_position") => {
                    pos = cell_string(r, 1).and_then(|p| p.parse::<u64>().ok())
                }
                _ => {}
            }
        }
        match (file, pos) {
            (Some(f), Some(p)) if !f.is_empty() => {
                if wants.gtid {
                    if let Some(sql) = s.dialect.gtid_at_binlog_pos_sql(&f, p) {
                        c.gtid = s
                            .first_value(&sql, "reading the snapshot's GTID position")
                            .await?
                            .filter(|g| !g.is_empty());
                    }
                }
                if wants.binlog {
                    c.binlog = Some((f, p));
                }
            }
            _ if wants.binlog => return Err(binlog_off(s)),
            _ => {}
        }
    }
    Ok(c)
}

/// `--single-transaction`: one REPEATABLE READ snapshot; `locked` takes FTWRL just long
/// enough to start it and read coordinates.
pub struct Snapshot {
    wants: Wants,
    locked: bool,
    /// `--dump-slave` stopped the replica's SQL thread: teardown starts it again.
    stopped_sql_thread: bool,
}

impl ConsistencyStrategy for Snapshot {
    fn setup<'a>(&'a mut self, s: &'a mut Session) -> BoxFuture<'a, Result<Coordinates>> {
        Box::pin(async move {
            if self.wants.source {
                self.stopped_sql_thread = stop_replica_sql_thread(s).await?;
            }
            if self.locked {
                global_read_lock(s, self.wants.flush_logs).await?;
                start_snapshot(s).await?;
                let c = read_current_coordinates(s, self.wants).await?;
                s.exec("UNLOCK TABLES", "releasing the global read lock")
                    .await?;
                return Ok(c);
            }
            start_snapshot(s).await?;
            snapshot_coordinates(s, self.wants).await
        })
    }

    fn teardown<'a>(&'a mut self, s: &'a mut Session) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            s.exec("COMMIT", "ending the snapshot").await?;
            if std::mem::take(&mut self.stopped_sql_thread) {
                restart_replica_sql_thread(s).await?;
            }
            Ok(())
        })
    }

    fn describe(&self) -> &'static str {
        if self.locked {
            "single transaction (global read lock while starting)"
        } else {
            "single transaction"
        }
    }
}

/// `--lock-all-tables`: FLUSH TABLES WITH READ LOCK for the whole dump.
pub struct GlobalReadLock {
    wants: Wants,
    /// Reader connections that start snapshots while the lock is held.
    readers: Vec<Session>,
    /// `--dump-slave` stopped the replica's SQL thread: teardown starts it again.
    stopped_sql_thread: bool,
}

impl GlobalReadLock {
    pub fn with_readers(plan: &ConsistencyPlan, dialect: &Dialect, readers: Vec<Session>) -> Self {
        GlobalReadLock {
            wants: Wants::from_plan(plan, dialect),
            readers,
            stopped_sql_thread: false,
        }
    }
}

impl ConsistencyStrategy for GlobalReadLock {
    fn setup<'a>(&'a mut self, s: &'a mut Session) -> BoxFuture<'a, Result<Coordinates>> {
        Box::pin(async move {
            if self.wants.source {
                self.stopped_sql_thread = stop_replica_sql_thread(s).await?;
            }
            global_read_lock(s, self.wants.flush_logs).await?;
            start_snapshots(&mut self.readers).await?;
            read_current_coordinates(s, self.wants).await
        })
    }

    fn readers(&mut self) -> Option<ReaderPool> {
        (!self.readers.is_empty()).then(|| ReaderPool::new(std::mem::take(&mut self.readers)))
    }

    fn teardown<'a>(&'a mut self, s: &'a mut Session) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            s.exec("UNLOCK TABLES", "releasing the global read lock")
                .await?;
            if std::mem::take(&mut self.stopped_sql_thread) {
                restart_replica_sql_thread(s).await?;
            }
            Ok(())
        })
    }

    fn describe(&self) -> &'static str {
        "global read lock"
    }
}

/// `--lock-tables`: LOCK TABLES ... READ LOCAL for one database at a time. Consistent within
/// a database only, as in mysqldump.
struct TableLocks {
    wants: Wants,
}

impl ConsistencyStrategy for TableLocks {
    fn setup<'a>(&'a mut self, s: &'a mut Session) -> BoxFuture<'a, Result<Coordinates>> {
        Box::pin(async move { read_current_coordinates(s, self.wants).await })
    }

    fn before_database<'a>(
        &'a mut self,
        s: &'a mut Session,
        db: &'a str,
        tables: &'a [TableInfo],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            lock_for_reading(
                s,
                tables.iter().map(|t| (db, t)),
                true,
                &format!("locking the tables of {}", ident(db)),
            )
            .await?;
            // As mysqldump: without a global lock, the logs are flushed per database, once
            // its tables are locked (a failed flush under `--force` leaves them locked).
            if self.wants.flush_logs {
                s.exec("FLUSH LOGS", "flushing logs").await?;
            }
            Ok(())
        })
    }

    fn after_database<'a>(&'a mut self, s: &'a mut Session) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { s.exec("UNLOCK TABLES", "releasing table locks").await })
    }

    fn teardown<'a>(&'a mut self, _s: &'a mut Session) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn describe(&self) -> &'static str {
        "table locks per database"
    }
}

/// No locks and no snapshot: only for data nobody writes during the dump.
struct NoLocks {
    wants: Wants,
}

impl ConsistencyStrategy for NoLocks {
    fn setup<'a>(&'a mut self, s: &'a mut Session) -> BoxFuture<'a, Result<Coordinates>> {
        Box::pin(async move { read_current_coordinates(s, self.wants).await })
    }

    fn before_database<'a>(
        &'a mut self,
        s: &'a mut Session,
        _db: &'a str,
        _tables: &'a [TableInfo],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if self.wants.flush_logs {
                s.exec("FLUSH LOGS", "flushing logs").await?;
            }
            Ok(())
        })
    }

    fn teardown<'a>(&'a mut self, _s: &'a mut Session) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn describe(&self) -> &'static str {
        "no locks"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::shape::CoordinateStyle;

    fn plan(mode: Consistency, master_data: bool) -> ConsistencyPlan {
        ConsistencyPlan {
            mode,
            master_data: master_data.then_some(CoordinateStyle::Statement),
            ..Default::default()
        }
    }

    #[test]
    fn mariadb_single_transaction_reads_coordinates_without_a_global_lock() {
        let d = Dialect::from_version_string("10.11.6-MariaDB");
        let s = strategy_for(&plan(Consistency::SingleTransaction, true), &d);
        assert_eq!(s.describe(), "single transaction");
    }

    #[test]
    fn mysql_single_transaction_with_coordinates_locks_briefly() {
        let d = Dialect::from_version_string("8.0.36");
        let s = strategy_for(&plan(Consistency::SingleTransaction, true), &d);
        assert_eq!(
            s.describe(),
            "single transaction (global read lock while starting)"
        );
        // --set-gtid-purged=AUTO (the default) reads gtid_executed: also under the lock.
        let s = strategy_for(&plan(Consistency::SingleTransaction, false), &d);
        assert_eq!(
            s.describe(),
            "single transaction (global read lock while starting)"
        );
        let mut no_gtid = plan(Consistency::SingleTransaction, false);
        no_gtid.set_gtid_purged = GtidPurged::Off;
        let s = strategy_for(&no_gtid, &d);
        assert_eq!(s.describe(), "single transaction");
    }

    #[test]
    fn mariadb_without_coordinates_takes_no_lock() {
        let d = Dialect::from_version_string("10.11.6-MariaDB");
        let s = strategy_for(&plan(Consistency::SingleTransaction, false), &d);
        assert_eq!(s.describe(), "single transaction");
    }

    #[test]
    fn each_mode_has_its_strategy() {
        let d = Dialect::from_version_string("10.11.6-MariaDB");
        assert_eq!(
            strategy_for(&plan(Consistency::LockAllTables, false), &d).describe(),
            "global read lock"
        );
        assert_eq!(
            strategy_for(&plan(Consistency::LockTables, false), &d).describe(),
            "table locks per database"
        );
        assert_eq!(
            strategy_for(&plan(Consistency::None, false), &d).describe(),
            "no locks"
        );
    }
}
