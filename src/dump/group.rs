//! One consistent view shared by several connections, for directory dumps.
//!
//! A control connection takes a lock that stops commits (FTWRL, MariaDB BACKUP STAGE
//! BLOCK_COMMIT, LOCK TABLES), every worker starts `START TRANSACTION WITH CONSISTENT
//! SNAPSHOT` while it is held, the binlog coordinates are read under it, and then it is
//! released: all workers see exactly the state those coordinates describe. Each
//! `--consistency` policy is a small type behind `GroupStrategy`; `group_strategy` picks
//! one. Not for: the single-connection strategies of the mysqldump-compatible stream (see
//! `snapshot`), or reading data.
//!
//! It also owns the rule that keeps DDL from deadlocking with a dump of several sessions
//! (`hold_tables`, `bound_lock_waits`): every session that will read a table opens it in
//! its snapshot while the lock still holds DDL off, all in one order, so no session of the
//! dump ever asks for a table's metadata lock after a DDL statement may have queued for it
//! (the DDL waits for the dump instead, and the dump never waits for the DDL); and every
//! lock wait of those sessions is bounded, so a wait that could still close a cycle through
//! rdump (no lock to take: `--consistency=snapshot-only|none`, `--lock-tables`) fails the
//! dump within seconds instead of stalling the application's queries behind it.

use std::time::Instant;

use futures::future::{BoxFuture, join_all, try_join_all};

use crate::client::conn::Session;
use crate::dump::consistency::{
    Wants, lock_for_reading, read_current_coordinates, snapshot_coordinates, take_global_read_lock,
};
use crate::error::{Error, Result};
use crate::format::coordinates::Coordinates;
use crate::format::objects::TableInfo;
use crate::plan::DirConsistency;
use crate::sql::dialect::Dialect;
use crate::sql::quote::qualified;

/// What `lock` established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStart {
    pub coordinates: Coordinates,
    /// All workers see one state (false for snapshot-only with several threads, and none).
    pub consistent: bool,
    /// Writes to every table are stopped until `release`: non-transactional tables are
    /// consistent only if read before it.
    pub blocks_writes: bool,
    /// DDL on every table (and CREATE TABLE) is stopped until `release`: the catalog read
    /// before it is the catalog of the coordinates (FTWRL, BACKUP STAGE; not LOCK TABLES,
    /// which leaves other tables free to be created).
    pub blocks_ddl: bool,
}

/// One `--consistency` policy.
pub trait GroupStrategy: Send {
    /// Takes the lock (if any), starts a snapshot on every worker, reads the coordinates.
    fn lock<'a>(
        &'a mut self,
        control: &'a mut Session,
        workers: &'a mut [Session],
        tables: &'a [(String, TableInfo)],
    ) -> BoxFuture<'a, Result<GroupStart>>;
    /// Releases what `lock` took; the workers' snapshots stay.
    fn release<'a>(&'a mut self, control: &'a mut Session) -> BoxFuture<'a, Result<()>>;
    /// The method's name for the manifest.
    fn name(&self) -> &'static str;
}

/// Resolves `auto` and picks the policy's type. Errors when the server lacks the lock.
pub fn group_strategy(
    requested: DirConsistency,
    dialect: &Dialect,
    wants: Wants,
) -> Result<Box<dyn GroupStrategy>> {
    let backup_lock = dialect.backup_lock_sql();
    Ok(match requested {
        DirConsistency::Auto if backup_lock.is_some() && dialect.is_mariadb() => {
            Box::new(GlobalLock::backup_stage(dialect, wants))
        }
        DirConsistency::Auto | DirConsistency::Flush => Box::new(GlobalLock::flush(wants)),
        DirConsistency::BackupLock => match backup_lock {
            Some(_) if dialect.is_mariadb() => Box::new(GlobalLock::backup_stage(dialect, wants)),
            // MySQL: LOCK INSTANCE FOR BACKUP blocks DDL but not commits, so the snapshots
            // still start under a brief FTWRL; the instance lock is kept for the dump.
            Some((lock, _)) => Box::new(GlobalLock {
                lock,
                ftwrl: true,
                unlock: vec!["UNLOCK TABLES"],
                keep: vec!["UNLOCK INSTANCE"],
                name: "backup-lock",
                wants,
            }),
            None => {
                return Err(Error::Usage(format!(
                    "--consistency=backup-lock needs MariaDB 10.4 or MySQL 8.0; the server is {}",
                    dialect.version_string
                )));
            }
        },
        DirConsistency::Lock => Box::new(TableLock { wants }),
        DirConsistency::SnapshotOnly => Box::new(Unlocked {
            wants,
            snapshot: true,
        }),
        DirConsistency::None => Box::new(Unlocked {
            wants,
            snapshot: false,
        }),
    })
}

/// Seconds a session of a dump read by several connections waits for a metadata or table
/// lock before its statement fails (`lock_wait_timeout`; the server's default is a day).
pub const LOCK_WAIT_SECONDS: u32 = 10;

/// Bounds every lock wait of `s` to `LOCK_WAIT_SECONDS`: a dump of several sessions that
/// waits for a lock fails cleanly (error 1205) rather than keep a DDL statement, and the
/// application's queries queued behind it, waiting.
pub async fn bound_lock_waits(s: &mut Session) -> Result<()> {
    s.exec(
        &format!("SET SESSION lock_wait_timeout = {LOCK_WAIT_SECONDS}"),
        "bounding lock waits",
    )
    .await
}

/// Tables opened per statement batch by `hold_tables` (one round trip each).
const HOLD_BATCH: usize = 64;

/// Opens every table of `tables` (database, name) in the snapshot of every session, in one
/// order (by name), while the caller's lock holds DDL off: each session then keeps the
/// tables' metadata locks until its transaction ends, and never has to ask for one again.
/// A DDL statement on them issued later waits for the dump to end; without this, a session
/// asking for a table after such a statement queued would wait for it, while it waits for
/// a session of the dump that holds the table: a cycle the server cannot see.
pub async fn hold_tables(sessions: &mut [Session], tables: &[(String, String)]) -> Result<()> {
    let mut sorted: Vec<&(String, String)> = tables.iter().collect();
    sorted.sort();
    sorted.dedup();
    let batches: Vec<(String, String)> = sorted
        .chunks(HOLD_BATCH)
        .map(|batch| {
            let sql = batch
                .iter()
                .map(|(db, t)| format!("SELECT 1 FROM {} LIMIT 0", qualified(db, t)))
                .collect::<Vec<_>>()
                .join(";");
            let (first, last) = (batch[0], batch[batch.len() - 1]);
            let context = if batch.len() == 1 {
                format!("opening {} in the snapshot", qualified(&first.0, &first.1))
            } else {
                format!(
                    "opening the dumped tables {} to {} in the snapshot",
                    qualified(&first.0, &first.1),
                    qualified(&last.0, &last.1)
                )
            };
            (sql, context)
        })
        .collect();
    // Every session's statement runs to its end, also after another's failed: a session
    // left in the middle of a multi-statement result could not be used again (a pool that
    // holds one database at a time retries with the same sessions).
    let outcomes = join_all(sessions.iter_mut().map(|s| {
        let batches = &batches;
        async move {
            for (sql, context) in batches {
                s.exec(sql, context).await?;
            }
            Ok::<(), Error>(())
        }
    }))
    .await;
    outcomes.into_iter().collect()
}

pub use crate::dump::consistency::set_lock_wait;

/// `hold_tables` with every lock wait of the sessions bounded to a second meanwhile (their
/// own bound restored after). `Ok(false)` when a wait timed out: a DDL statement that was
/// already running when the caller's lock was granted holds a table, and waits for that
/// lock (BACKUP STAGE BLOCK_DDL lets such a statement go on until it must finish); the
/// caller lets go of its lock, so that the statement ends, and tries again.
pub async fn try_hold_tables(
    sessions: &mut [Session],
    tables: &[(String, String)],
) -> Result<bool> {
    let mut bounds = Vec::with_capacity(sessions.len());
    for s in sessions.iter_mut() {
        bounds.push(set_lock_wait(s, "1").await?);
    }
    let held = hold_tables(sessions, tables).await;
    for (s, old) in sessions.iter_mut().zip(bounds) {
        set_lock_wait(s, &old).await?;
    }
    match held {
        Ok(()) => Ok(true),
        Err(e) if e.sql_error_code() == Some(1205) => Ok(false),
        Err(e) => Err(e),
    }
}

pub async fn start_snapshots(workers: &mut [Session]) -> Result<()> {
    try_join_all(workers.iter_mut().map(|w| async move {
        w.exec(
            "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            "setting the isolation level",
        )
        .await?;
        w.exec(
            "START TRANSACTION /*!40100 WITH CONSISTENT SNAPSHOT */",
            "starting the consistent snapshot",
        )
        .await
    }))
    .await?;
    Ok(())
}

/// With commits stopped: every worker starts its snapshot, then the coordinates are read.
async fn snapshots_under_lock(
    control: &mut Session,
    workers: &mut [Session],
    wants: Wants,
    blocks_ddl: bool,
) -> Result<GroupStart> {
    start_snapshots(workers).await?;
    let coordinates = read_current_coordinates(control, wants).await?;
    Ok(GroupStart {
        coordinates,
        consistent: true,
        blocks_writes: true,
        blocks_ddl,
    })
}

async fn run_all(s: &mut Session, statements: &[&str], context: &str) -> Result<()> {
    for sql in statements {
        s.exec(sql, context).await?;
    }
    Ok(())
}

/// A global lock that stops every commit: FTWRL, or MariaDB's BACKUP STAGE up to
/// BLOCK_COMMIT (lighter: no table flush waits behind long queries).
struct GlobalLock {
    lock: Vec<&'static str>,
    /// Then FLUSH TABLES WITH READ LOCK (see `snapshot::take_global_read_lock`).
    ftwrl: bool,
    unlock: Vec<&'static str>,
    /// Statements run at the very end (MySQL: UNLOCK INSTANCE).
    keep: Vec<&'static str>,
    name: &'static str,
    wants: Wants,
}

impl GlobalLock {
    fn flush(wants: Wants) -> GlobalLock {
        GlobalLock {
            lock: Vec::new(),
            ftwrl: true,
            unlock: vec!["UNLOCK TABLES"],
            keep: Vec::new(),
            name: "flush",
            wants,
        }
    }

    fn backup_stage(_dialect: &Dialect, wants: Wants) -> GlobalLock {
        GlobalLock {
            // FLUSH closes unused non-transactional tables, BLOCK_DDL stops DDL, and
            // BLOCK_COMMIT stops commits and non-transactional writes.
            lock: vec![
                "BACKUP STAGE START",
                "BACKUP STAGE FLUSH",
                "BACKUP STAGE BLOCK_DDL",
                "BACKUP STAGE BLOCK_COMMIT",
            ],
            ftwrl: false,
            unlock: vec!["BACKUP STAGE END"],
            keep: Vec::new(),
            name: "backup-lock",
            wants,
        }
    }
}

impl GroupStrategy for GlobalLock {
    fn lock<'a>(
        &'a mut self,
        control: &'a mut Session,
        workers: &'a mut [Session],
        _tables: &'a [(String, TableInfo)],
    ) -> BoxFuture<'a, Result<GroupStart>> {
        Box::pin(async move {
            run_all(control, &self.lock, "taking the global lock").await?;
            if self.ftwrl {
                take_global_read_lock(control).await?;
            }
            if self.wants.flush_logs {
                control.exec("FLUSH LOGS", "flushing logs").await?;
            }
            snapshots_under_lock(control, workers, self.wants, true).await
        })
    }

    fn release<'a>(&'a mut self, control: &'a mut Session) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            run_all(control, &self.unlock, "releasing the global lock").await?;
            run_all(control, &self.keep, "releasing the instance lock").await
        })
    }

    fn name(&self) -> &'static str {
        self.name
    }
}

/// LOCK TABLES ... READ on the dumped tables: commits to other tables go on, so the
/// coordinates are exact for the dumped tables only.
struct TableLock {
    wants: Wants,
}

impl GroupStrategy for TableLock {
    fn lock<'a>(
        &'a mut self,
        control: &'a mut Session,
        workers: &'a mut [Session],
        tables: &'a [(String, TableInfo)],
    ) -> BoxFuture<'a, Result<GroupStart>> {
        Box::pin(async move {
            let locked = lock_for_reading(
                control,
                tables.iter().map(|(db, t)| (db.as_str(), t)),
                false,
                "locking the dumped tables",
            )
            .await;
            if let Err(e) = locked {
                // A listed table dropped (or renamed) before LOCK TABLES reached it: said as
                // the catalog check says a table created or dropped meanwhile.
                if e.sql_error_code() == Some(1146) {
                    return Err(Error::Consistency {
                        server: control.server.clone(),
                        message: format!(
                            "{} created or dropped while the dump took its locked view, which \
                             does not hold DDL off ({e}); run it again, or use \
                             --consistency=auto, flush or backup-lock",
                            missing_table(&e.to_string()).unwrap_or_else(|| "a table".into())
                        ),
                    });
                }
                return Err(e);
            }
            snapshots_under_lock(control, workers, self.wants, false).await
        })
    }

    fn release<'a>(&'a mut self, control: &'a mut Session) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { control.exec("UNLOCK TABLES", "releasing table locks").await })
    }

    fn name(&self) -> &'static str {
        "lock"
    }
}

/// The table named by a 1146 message (`Table 'db.t' doesn't exist`), quoted; `None` when
/// the message is not that shape.
fn missing_table(message: &str) -> Option<String> {
    let rest = &message[message.find("Table '")? + "Table '".len()..];
    let name = &rest[..rest.find("' doesn't exist")?];
    let (db, t) = name.split_once('.')?;
    Some(qualified(db, t))
}

/// No lock: snapshots (each worker sees its own moment) or nothing at all.
struct Unlocked {
    wants: Wants,
    snapshot: bool,
}

impl GroupStrategy for Unlocked {
    fn lock<'a>(
        &'a mut self,
        control: &'a mut Session,
        workers: &'a mut [Session],
        _tables: &'a [(String, TableInfo)],
    ) -> BoxFuture<'a, Result<GroupStart>> {
        Box::pin(async move {
            if self.snapshot {
                start_snapshots(workers).await?;
            }
            let wanted = self.wants.binlog || self.wants.gtid || self.wants.source;
            let one = self.snapshot && workers.len() == 1;
            // One snapshot is consistent; its coordinates are exact only when they are the
            // snapshot's own (MariaDB), not the server's a moment later.
            let exact =
                one && !self.wants.source && control.dialect.snapshot_binlog_status_sql().is_some();
            let coordinates = if exact && wanted {
                snapshot_coordinates(&mut workers[0], self.wants).await?
            } else {
                read_current_coordinates(control, self.wants).await?
            };
            Ok(GroupStart {
                coordinates,
                consistent: one && (exact || !wanted),
                blocks_writes: false,
                blocks_ddl: false,
            })
        })
    }

    fn release<'a>(&'a mut self, _control: &'a mut Session) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn name(&self) -> &'static str {
        if self.snapshot {
            "snapshot-only"
        } else {
            "none"
        }
    }
}

/// Milliseconds since `since`, for the manifest's lock time.
pub fn millis_since(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wants() -> Wants {
        Wants::default()
    }

    #[test]
    fn a_table_missing_at_lock_tables_is_named() {
        assert_eq!(
            missing_table("Got error: 1146: \"Table 'ddl.t5' doesn't exist\" when locking"),
            Some("`ddl`.`t5`".into())
        );
        assert_eq!(missing_table("1100: table was not locked"), None);
    }

    #[test]
    fn auto_is_backup_stage_on_mariadb_and_ftwrl_on_mysql() {
        let maria = Dialect::from_version_string("10.11.6-MariaDB");
        let mysql = Dialect::from_version_string("8.0.36");
        let m = group_strategy(DirConsistency::Auto, &maria, wants()).unwrap();
        assert_eq!(m.name(), "backup-lock");
        let m = group_strategy(DirConsistency::Auto, &mysql, wants()).unwrap();
        assert_eq!(m.name(), "flush");
    }

    #[test]
    fn mariadb_backup_lock_goes_through_the_stages_to_block_commit() {
        let maria = Dialect::from_version_string("10.11.6-MariaDB");
        let g = GlobalLock::backup_stage(&maria, wants());
        assert_eq!(g.lock.last(), Some(&"BACKUP STAGE BLOCK_COMMIT"));
        assert_eq!(g.unlock, vec!["BACKUP STAGE END"]);
    }

    #[test]
    fn mysql_backup_lock_is_lock_instance_plus_a_brief_ftwrl() {
        let mysql = Dialect::from_version_string("8.0.36");
        let s = group_strategy(DirConsistency::BackupLock, &mysql, wants()).unwrap();
        assert_eq!(s.name(), "backup-lock");
        let old = Dialect::from_version_string("5.7.44");
        assert!(group_strategy(DirConsistency::BackupLock, &old, wants()).is_err());
    }

    #[test]
    fn every_policy_has_its_type() {
        let d = Dialect::from_version_string("10.11.6-MariaDB");
        for (c, name) in [
            (DirConsistency::Flush, "flush"),
            (DirConsistency::Lock, "lock"),
            (DirConsistency::SnapshotOnly, "snapshot-only"),
            (DirConsistency::None, "none"),
        ] {
            assert_eq!(group_strategy(c, &d, wants()).unwrap().name(), name);
        }
    }
}
