//! The steps every consistency strategy is built of, on one session: a global read lock or
//! table locks taken with backoff, a consistent snapshot started, the replica's SQL thread
//! stopped and restarted (`--dump-slave`), and the binlog coordinates read, either as of now
//! (under a lock) or of the snapshot itself.
//!
//! Below both strategy families: `snapshot` (one session, mysqldump's modes) and `group`
//! (several sessions sharing one view). Not for: choosing a strategy.

use crate::client::conn::{Session, cell_by_name, cell_string};
use crate::error::{Error, Result};
use crate::format::coordinates::{Coordinates, SourceCoordinates};
use crate::format::objects::TableInfo;
use crate::format::shape::GtidPurged;
use crate::plan::ConsistencyPlan;
use crate::sql::dialect::Dialect;
use crate::sql::quote::qualified;

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

pub(crate) fn consistency_error(s: &Session, message: impl Into<String>) -> Error {
    Error::Consistency {
        server: s.server.clone(),
        message: message.into(),
    }
}

pub(crate) fn binlog_off(s: &Session) -> Error {
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
        c.source = read_source_coordinates(s).await?;
    }
    Ok(c)
}

pub(crate) fn binlog_from_row(
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

/// Where this replica's source stands. `None` on a server that is not a replica: the dump
/// goes on without a CHANGE MASTER, as mariadb-dump's, with a warning on stderr.
pub(crate) async fn read_source_coordinates(s: &mut Session) -> Result<Option<SourceCoordinates>> {
    let sql = s.dialect.replica_status_sql();
    let rows = s.rows(sql, "reading replica status").await?;
    let Some(row) = rows.first() else {
        eprintln!(
            "Warning: {} is not a replica: --dump-slave writes no replication position",
            s.server
        );
        return Ok(None);
    };
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
    Ok(Some(SourceCoordinates {
        file,
        pos,
        host,
        port,
        gtid,
    }))
}

/// Sets `s`'s lock wait bound to `seconds`; returns the bound it had.
pub async fn set_lock_wait(s: &mut Session, seconds: &str) -> Result<String> {
    let old = s
        .first_value(
            "SELECT @@SESSION.lock_wait_timeout",
            "reading lock_wait_timeout",
        )
        .await?
        .unwrap_or_else(|| "31536000".into());
    s.exec(
        &format!("SET SESSION lock_wait_timeout = {}", seconds.trim()),
        "setting lock_wait_timeout",
    )
    .await?;
    Ok(old)
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
    let old = set_lock_wait(s, "1").await?;
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

pub(crate) async fn global_read_lock(s: &mut Session, flush_logs: bool) -> Result<()> {
    take_global_read_lock(s).await?;
    if flush_logs {
        s.exec("FLUSH LOGS", "flushing logs").await?;
    }
    Ok(())
}

pub(crate) async fn start_snapshot(s: &mut Session) -> Result<()> {
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
pub(crate) async fn stop_replica_sql_thread(s: &mut Session) -> Result<bool> {
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
pub(crate) async fn restart_replica_sql_thread(s: &mut Session) -> Result<()> {
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
                if wants.gtid
                    && let Some(sql) = s.dialect.gtid_at_binlog_pos_sql(&f, p)
                {
                    c.gtid = s
                        .first_value(&sql, "reading the snapshot's GTID position")
                        .await?
                        .filter(|g| !g.is_empty());
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

/// DDL held off on a connection of its own (MariaDB 10.4+: `BACKUP STAGE START`, then
/// `BLOCK_DDL`; `BACKUP STAGE END` would end the transaction of a session that ran it)
/// while a lone snapshot starts (or the several of a shared one start under a brief FTWRL
/// on another connection, which BLOCK_DDL lets through; BACKUP STAGE itself is one per
/// server), reads its coordinates and opens every table it will read
/// (`group::hold_tables`): each table the dump lists then exists with the definition it
/// had at the coordinates, and keeps it until the dump ends. Commits and InnoDB writes go
/// on; DDL and writes to non-transactional tables wait until `release`.
pub struct DdlGuard {
    locker: Session,
}

impl DdlGuard {
    pub async fn take(mut locker: Session) -> Result<DdlGuard> {
        locker
            .exec("BACKUP STAGE START", "holding DDL off (BACKUP STAGE START)")
            .await?;
        // BLOCK_DDL waits for running DDL, and blocks other statements meanwhile: backed off.
        if let Err(e) = lock_with_backoff(
            &mut locker,
            "BACKUP STAGE BLOCK_DDL",
            "holding DDL off (BACKUP STAGE BLOCK_DDL)",
        )
        .await
        {
            let _ = locker
                .exec("BACKUP STAGE END", "releasing the backup stage")
                .await;
            locker.close().await;
            return Err(e);
        }
        Ok(DdlGuard { locker })
    }

    /// Lets DDL go on and gives the connection back (for another guard).
    pub async fn end(mut self) -> Result<Session> {
        self.locker
            .exec("BACKUP STAGE END", "letting DDL go on (BACKUP STAGE END)")
            .await?;
        Ok(self.locker)
    }

    pub async fn release(mut self) -> Result<()> {
        let r = self
            .locker
            .exec("BACKUP STAGE END", "letting DDL go on (BACKUP STAGE END)")
            .await;
        self.locker.close().await;
        r
    }
}
