//! Consistency: how the dump sees one consistent state of the server, and the binlog
//! coordinates of exactly that state.
//!
//! Each strategy is a small type behind `ConsistencyStrategy` (set up, per-database hooks,
//! tear down); `strategy_for` picks one from the plan and the server's dialect. The dumper
//! never branches on the mode itself; the steps are in `consistency`. Not for: writing
//! coordinates into the output (see `stream`), which only reads the `Coordinates` returned here.

use futures::future::BoxFuture;

use crate::client::conn::Session;
use crate::dump::consistency::{
    DdlGuard, Wants, consistency_error, global_read_lock, lock_for_reading,
    read_current_coordinates, restart_replica_sql_thread, snapshot_coordinates, start_snapshot,
    stop_replica_sql_thread, take_global_read_lock,
};
use crate::dump::group::{
    GroupStrategy, group_strategy, hold_tables, set_lock_wait, start_snapshots, try_hold_tables,
};
use crate::dump::pool::ReaderPool;
use crate::dump::selection::{
    Catalog, DDL_RETRIES, catalog_changing, catalog_tables, list_catalog,
};
use crate::error::{Error, Result};
use crate::format::coordinates::Coordinates;
use crate::format::objects::TableInfo;
use crate::plan::{Consistency, ConsistencyPlan, DirConsistency, Plan};
use crate::sql::dialect::Dialect;
use crate::sql::quote::ident;

/// What the dump's own session lists under the lock: the plan, and the databases with
/// the tables of each.
type CatalogOf = (Plan, Vec<(String, Vec<String>)>);

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
    /// The tables listed while DDL was held off, after `setup`, when the strategy did so:
    /// what the dump reads instead of listing them again.
    fn catalog(&mut self) -> Option<Catalog> {
        None
    }
    /// One snapshot started without any lock (MariaDB's `--single-transaction`): nothing
    /// holds DDL off while it starts (see `consistency::DdlGuard`).
    fn lockless_snapshot(&self) -> bool {
        false
    }
}

/// `--single-transaction` read by several connections: a brief commit-blocking lock while
/// every reader starts its snapshot and the coordinates are read. On MariaDB (10.4+) that
/// is FTWRL on the dump's own session, with DDL held off around it by a `DdlGuard` on
/// the locker while the tables are listed and opened (`guarded_attempt`); elsewhere the
/// group's lock (BACKUP STAGE or FTWRL, see `group`) over all of it (`group_attempt`). Without the RELOAD privilege that lock needs, it falls back to one
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
    /// The tables the readers may read: every session of the snapshot opens them under
    /// the lock (`group::hold_tables`).
    held: Vec<(String, String)>,
    /// What to list under the lock: the dump's own session lists the tables of these
    /// databases there and opens them all in its snapshot (see `catalog`).
    catalog_of: Option<CatalogOf>,
    catalog: Option<Catalog>,
    /// MariaDB with BACKUP STAGE and a `catalog_of`: DDL is held off on a connection of
    /// its own (`DdlGuard`) while the tables are listed and opened, and commits stop (FTWRL
    /// on `locker`) only while the snapshots start and the coordinates are read
    /// (`guarded_attempt`). Else everything happens under the group's lock.
    guarded: bool,
}

impl SharedSnapshot {
    pub fn new(
        plan: &ConsistencyPlan,
        dialect: &Dialect,
        readers: Vec<Session>,
        locker: Session,
        warn_on_fallback: bool,
        held: Vec<(String, String)>,
        catalog_of: Option<CatalogOf>,
    ) -> Result<SharedSnapshot> {
        let wants = Wants::from_plan(plan, dialect);
        let guarded =
            catalog_of.is_some() && dialect.is_mariadb() && dialect.backup_lock_sql().is_some();
        Ok(SharedSnapshot {
            group: group_strategy(DirConsistency::Auto, dialect, wants)?,
            readers,
            locker: Some(locker),
            fallback: None,
            wants,
            warn_on_fallback,
            held,
            catalog_of,
            catalog: None,
            guarded,
        })
    }

    /// One try under the group's lock (MySQL; a stream without a catalog): the readers'
    /// snapshots, the dump's own session's listing and every session's opening of its
    /// tables all while commits are stopped. Returns as `guarded_attempt`.
    async fn group_attempt(
        &mut self,
        s: &mut Session,
        locker: &mut Session,
    ) -> Result<std::result::Result<Coordinates, Vec<String>>> {
        let start = self.group.lock(locker, &mut self.readers, &[]).await?;
        let joined = self.join_and_hold(s).await;
        let released = self.group.release(locker).await;
        let busy = joined?;
        released?;
        Ok(if busy.is_empty() {
            Ok(start.coordinates)
        } else {
            Err(busy)
        })
    }

    /// One try of the guarded start (see `guarded`): `DdlGuard` on `locker`; the dump's
    /// own session lists the tables (DDL held off, commits going on), takes FTWRL
    /// (compatible with another connection's BACKUP STAGE BLOCK_DDL on MariaDB 10.11,
    /// checked by hand; BACKUP STAGE itself is one per server); every reader and the dump's
    /// own session start their snapshots, the coordinates are read, UNLOCK TABLES (which
    /// keeps the snapshot, as mysqldump's); then, DDL still held off, every session opens
    /// its tables (`group::hold_tables`) and the guard lets DDL go on. Commits stop only
    /// while the snapshots start, not while tables are listed and opened (about half a
    /// millisecond a table and session). Returns the locker for another try, with the
    /// coordinates or the tables DDL statements still running under the guard are
    /// changing (`selection::changing`; the caller rolls back and tries again).
    async fn guarded_attempt(
        &mut self,
        s: &mut Session,
        locker: Session,
    ) -> Result<(Session, std::result::Result<Coordinates, Vec<String>>)> {
        let guard = DdlGuard::take(locker).await?;
        let attempt = self.under_ddl_guard(s).await;
        let locker = guard.end().await;
        let attempt = attempt?;
        Ok((locker?, attempt))
    }

    async fn under_ddl_guard(
        &mut self,
        s: &mut Session,
    ) -> Result<std::result::Result<Coordinates, Vec<String>>> {
        let Some((plan, selection)) = &self.catalog_of else {
            return Err(Error::Usage("a guarded snapshot without a catalog".into()));
        };
        // The listing may wait behind a statement that waits for the guard: bounded.
        let bound = set_lock_wait(s, "1").await?;
        let catalog = list_catalog(s, plan, selection).await;
        set_lock_wait(s, &bound).await?;
        let busy = catalog_changing(&catalog);
        if !busy.is_empty() {
            return Ok(Err(busy));
        }
        let own = catalog_tables(&catalog);
        // A pooled table dropped before the guard is not held.
        self.held.retain(|h| own.contains(h));
        self.catalog = Some(catalog);
        // Commits stopped: only while the snapshots start and the coordinates are read.
        take_global_read_lock(s).await?;
        let started = async {
            if self.wants.flush_logs {
                s.exec("FLUSH LOGS", "flushing logs").await?;
            }
            let (a, b) = futures::join!(
                start_snapshots(&mut self.readers),
                start_snapshots(std::slice::from_mut(s))
            );
            a?;
            b?;
            read_current_coordinates(s, self.wants).await
        }
        .await;
        let unlocked = s
            .exec("UNLOCK TABLES", "releasing the global read lock")
            .await;
        let coordinates = started?;
        unlocked?;
        // DDL still held off: every session opens the tables it may read.
        let held = &self.held;
        let (a, b) = futures::join!(
            try_hold_tables(&mut self.readers, held),
            try_hold_tables(std::slice::from_mut(s), &own)
        );
        Ok(match (a?, b?) {
            (true, true) => Ok(coordinates),
            _ => Err(vec!["a table the dump opens".to_string()]),
        })
    }

    /// Under the lock, with the readers' snapshots started: the dump's own session joins
    /// the snapshot too, while commits are still stopped (it reads a table's rows itself
    /// when `--force` has left the pool without readers, and MyISAM tables). With
    /// `catalog_of` it lists the tables, while DDL is held off, and opens every one of a
    /// transactional engine: a table created after the coordinates is not dumped (its
    /// CREATE is replayed from the binlog), and none it dumps changes definition before it
    /// is read (commits stay stopped about half a millisecond a table and session; see
    /// `guarded_attempt`, which MariaDB takes instead).
    /// Then every session opens the tables the readers may read. Returns the tables DDL
    /// statements are changing (`selection::changing`): then nothing was opened.
    async fn join_and_hold(&mut self, s: &mut Session) -> Result<Vec<String>> {
        start_snapshots(std::slice::from_mut(s)).await?;
        let mut own = self.held.clone();
        if let Some((plan, selection)) = &self.catalog_of {
            // The listing may wait behind a statement that waits for the lock: bounded.
            let bound = set_lock_wait(s, "1").await?;
            let catalog = list_catalog(s, plan, selection).await;
            set_lock_wait(s, &bound).await?;
            let busy = catalog_changing(&catalog);
            if !busy.is_empty() {
                return Ok(busy);
            }
            own = catalog_tables(&catalog);
            // A pooled table dropped before the lock is not held.
            self.held.retain(|h| own.contains(h));
            self.catalog = Some(catalog);
        }
        let held = &self.held;
        let (a, b) = futures::join!(
            try_hold_tables(&mut self.readers, held),
            try_hold_tables(std::slice::from_mut(s), &own)
        );
        Ok(match (a?, b?) {
            (true, true) => Vec::new(),
            _ => vec!["a table the dump opens".to_string()],
        })
    }
}

impl ConsistencyStrategy for SharedSnapshot {
    fn setup<'a>(&'a mut self, s: &'a mut Session) -> BoxFuture<'a, Result<Coordinates>> {
        Box::pin(async move {
            let Some(conn) = self.locker.take() else {
                return Err(Error::Usage("the shared snapshot was set up twice".into()));
            };
            // Lost when an attempt fails (the loop ends then).
            let mut locker = Some(conn);
            // A DDL statement still running under the lock (`selection::changing`) is let
            // finish, and the lock taken again.
            let mut attempt = 0;
            let locked = loop {
                attempt += 1;
                let busy = if self.guarded {
                    let Some(conn) = locker.take() else {
                        break Err(Error::Usage("the shared snapshot lost its locker".into()));
                    };
                    match self.guarded_attempt(s, conn).await {
                        Ok((conn, Ok(coordinates))) => {
                            locker = Some(conn);
                            break Ok(coordinates);
                        }
                        Ok((conn, Err(busy))) => {
                            locker = Some(conn);
                            busy
                        }
                        Err(e) => break Err(e),
                    }
                } else {
                    let Some(conn) = locker.as_mut() else {
                        break Err(Error::Usage("the shared snapshot lost its locker".into()));
                    };
                    match self.group_attempt(s, conn).await {
                        Ok(Ok(coordinates)) => break Ok(coordinates),
                        Ok(Err(busy)) => busy,
                        Err(e) => break Err(e),
                    }
                };
                for r in self.readers.iter_mut() {
                    r.exec("ROLLBACK", "ending the snapshot").await?;
                }
                s.exec("ROLLBACK", "ending the snapshot").await?;
                if attempt >= DDL_RETRIES {
                    break Err(consistency_error(
                        s,
                        format!(
                            "{} still being changed by DDL statements after {attempt} \
                             tries to take the dump's lock between them",
                            busy.join(", ")
                        ),
                    ));
                }
                tokio::time::sleep(std::time::Duration::from_millis(20 * u64::from(attempt))).await;
            };
            if let Some(conn) = locker {
                conn.close().await;
            }
            match locked {
                Ok(coordinates) => Ok(coordinates),
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
        (!self.readers.is_empty()).then(|| {
            ReaderPool::holding(
                std::mem::take(&mut self.readers),
                std::mem::take(&mut self.held),
            )
        })
    }

    fn catalog(&mut self) -> Option<Catalog> {
        self.catalog.take()
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
            held: Vec::new(),
            stopped_sql_thread: false,
        }),
        Consistency::LockTables => Box::new(TableLocks { wants }),
        Consistency::None => Box::new(NoLocks { wants }),
    }
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

    fn lockless_snapshot(&self) -> bool {
        !self.locked
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
    /// The tables the readers may read, opened in their snapshots under the lock.
    held: Vec<(String, String)>,
    /// `--dump-slave` stopped the replica's SQL thread: teardown starts it again.
    stopped_sql_thread: bool,
}

impl GlobalReadLock {
    pub fn with_readers(
        plan: &ConsistencyPlan,
        dialect: &Dialect,
        readers: Vec<Session>,
        held: Vec<(String, String)>,
    ) -> Self {
        GlobalReadLock {
            wants: Wants::from_plan(plan, dialect),
            readers,
            held,
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
            hold_tables(&mut self.readers, &self.held).await?;
            read_current_coordinates(s, self.wants).await
        })
    }

    fn readers(&mut self) -> Option<ReaderPool> {
        (!self.readers.is_empty()).then(|| {
            ReaderPool::holding(
                std::mem::take(&mut self.readers),
                std::mem::take(&mut self.held),
            )
        })
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
    use crate::format::shape::{CoordinateStyle, GtidPurged};

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
