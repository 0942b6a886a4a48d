//! The journal of a load, kept in the target server so it commits together with the data:
//! schema `rdump_load`, InnoDB tables
//!
//! * `rload_loads (load_id, dump_started_at, dump_dir, begun_at)`: one row per unfinished
//!   load of a dump (`plan::LoadPlan::load_id`) into this server;
//! * `rload_journal (load_id, item, state, rows_loaded, at)`: one row per finished step.
//!   Items are `database <db>`, `schema <schema file>`, `chunk <data file>`,
//!   `indexes <db>/<table>`, `post <file>` and `replica`; `state` is `done`, or `started`
//!   for a chunk of a non-transactional table that is being loaded;
//! * `rload_sessions (load_id, connection_id, server_boot)`: the connections of the run,
//!   so that `--resume` can stop what a killed run left running on the server.
//!
//! # Exactly once
//!
//! A chunk of a transactional table (InnoDB) is loaded inside one transaction that also
//! inserts its `done` row: after a crash, a kill or a lost connection the server rolls the
//! whole chunk back, or it committed with its row. A chunk of a non-transactional table
//! (MyISAM, Aria, MEMORY) cannot be rolled back: its `started` row is committed first, and
//! `--resume` deletes the chunk's key range (the manifest's `range`, or all rows for a
//! table read as one chunk) before loading it again; then `done` is written. Schema steps
//! not marked done are redone from scratch on resume (`DROP ... IF EXISTS` first: nothing
//! of that table was loaded yet). Index and post steps are idempotent: on resume, a table
//! created by the earlier run gets every index of its CREATE TABLE that it lacks (whatever
//! `--defer-indexes` and the filters were then), triggers of a table are dropped before its
//! trigger file runs again, and the other files drop what they create.
//!
//! Before resuming, the connections of the previous run that are still on the server (same
//! server boot: a thread id is only meaningful until a restart) are killed and waited for,
//! so that no statement of the old run can commit after the new run looked at the journal.
//!
//! The journal is written with the load's session (`sql_log_bin=0` unless
//! `--enable-binlog`). When the load completes, its rows are deleted, and the schema is
//! dropped when no other load is recorded in it.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::conn::LoadConn;
use super::error::{LoadError, Result};
use super::plan::LoadPlan;
use crate::client::conn::cell_string;
use crate::sql::quote::string_literal;

pub const SCHEMA: &str = "rdump_load";
const LOADS: &str = "`rdump_load`.`rload_loads`";
const JOURNAL: &str = "`rdump_load`.`rload_journal`";
const SESSIONS: &str = "`rdump_load`.`rload_sessions`";
/// How long `--resume` waits for the previous run's connections to end (their rollback).
const KILL_WAIT: Duration = Duration::from_secs(600);

/// The journal of one load, as read when the load started.
#[derive(Debug, Clone)]
pub struct Journal {
    pub load_id: String,
    done: HashSet<String>,
    started: HashSet<String>,
    /// This run continues an earlier one.
    pub resumed: bool,
}

/// How an earlier, unfinished load of the same dump was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Earlier {
    pub begun_at: String,
}

pub fn database_item(db: &str) -> String {
    format!("database {db}")
}
pub fn schema_item(file: &str) -> String {
    format!("schema {file}")
}
pub fn chunk_item(file: &str) -> String {
    format!("chunk {file}")
}
pub fn indexes_item(db: &str, table: &str) -> String {
    format!("indexes {db}/{table}")
}
pub fn post_item(file: &str) -> String {
    format!("post {file}")
}
pub const REPLICA_ITEM: &str = "replica";
/// The `ANALYZE TABLE` of the loaded tables after a `--fast-unsafe` load that turned
/// InnoDB's statistics recalculation off: started when such a load begins, done after.
pub const ANALYZE_ITEM: &str = "analyze";

/// An earlier, unfinished load of this dump, if the server has one. Reads only.
pub async fn earlier(conn: &mut LoadConn, load_id: &str) -> Result<Option<Earlier>> {
    let exists = conn
        .first_value(
            &format!(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} \
                 AND TABLE_NAME = 'rload_loads'",
                string_literal(SCHEMA)
            ),
            "looking for the load journal",
        )
        .await?;
    if exists.as_deref() != Some("1") {
        return Ok(None);
    }
    let begun = conn
        .first_value(
            &format!(
                "SELECT CAST(begun_at AS CHAR) FROM {LOADS} WHERE load_id = {}",
                string_literal(load_id)
            ),
            "reading the load journal",
        )
        .await?;
    Ok(begun.map(|begun_at| Earlier { begun_at }))
}

/// This run's hold on the load of one dump into one server: a named lock
/// (`GET_LOCK('rload <load_id>')`) on a connection of its own, kept until the load ends
/// (dropping the claim closes the connection, which releases the lock). Two rloads of one
/// dump into one server cannot both run: the second is refused before it reads the journal
/// or changes anything.
pub struct Claim {
    conn: LoadConn,
}

impl Claim {
    /// Takes the lock, or says who holds it.
    pub async fn take(
        connection: &crate::client::options::ConnectionOptions,
        load_id: &str,
    ) -> Result<Claim> {
        let mut conn = LoadConn::connect(connection).await?;
        // Idle through the whole load: not ended by the server's wait_timeout.
        conn.exec(
            "SET SESSION wait_timeout = 31536000",
            "preparing the load's lock connection",
        )
        .await?;
        let name = string_literal(&format!("rload {load_id}"));
        let got = conn
            .first_value(&format!("SELECT GET_LOCK({name}, 0)"), "locking the load")
            .await?;
        if got.as_deref() == Some("1") {
            return Ok(Claim { conn });
        }
        let holder = conn
            .first_value(&format!("SELECT IS_USED_LOCK({name})"), "locking the load")
            .await?
            .unwrap_or_else(|| "?".into());
        Err(LoadError::Refused(format!(
            "{}: another rload is loading this dump into this server (its connection {holder} \
             holds the lock {name}); nothing was changed. Once it ends, the dump is loaded \
             (or, if that run fails, run with --resume to finish its load)",
            conn.server
        )))
    }

    /// Releases the lock (the load is finished).
    pub async fn release(self) {
        self.conn.close().await;
    }
}

impl Journal {
    /// Creates the journal tables if needed and starts (or, with `resume`, continues) the
    /// journal of this load. A fresh start clears whatever an earlier load of the same dump
    /// left (the caller has dropped or refused its objects).
    pub async fn open(conn: &mut LoadConn, plan: &LoadPlan, resume: bool) -> Result<Journal> {
        for sql in [
            format!("CREATE DATABASE IF NOT EXISTS `{SCHEMA}`"),
            format!(
                "CREATE TABLE IF NOT EXISTS {LOADS} (load_id CHAR(32) NOT NULL PRIMARY KEY, \
                 dump_started_at VARCHAR(64) NOT NULL, dump_dir VARBINARY(4096) NOT NULL, \
                 begun_at DATETIME NOT NULL) ENGINE=InnoDB"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {JOURNAL} (load_id CHAR(32) NOT NULL, \
                 item VARBINARY(1024) NOT NULL, state VARCHAR(8) NOT NULL, \
                 rows_loaded BIGINT UNSIGNED NOT NULL DEFAULT 0, at DATETIME NOT NULL, \
                 PRIMARY KEY (load_id, item)) ENGINE=InnoDB"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {SESSIONS} (load_id CHAR(32) NOT NULL, \
                 connection_id BIGINT UNSIGNED NOT NULL, server_boot BIGINT NOT NULL, \
                 PRIMARY KEY (load_id, connection_id)) ENGINE=InnoDB"
            ),
        ] {
            conn.exec(&sql, "creating the load journal").await?;
        }
        let id = string_literal(&plan.load_id);
        let mut journal = Journal {
            load_id: plan.load_id.clone(),
            done: HashSet::new(),
            started: HashSet::new(),
            resumed: false,
        };
        let existing = conn
            .first_value(
                &format!("SELECT COUNT(*) FROM {LOADS} WHERE load_id = {id}"),
                "reading the load journal",
            )
            .await?;
        if resume && existing.as_deref() == Some("1") {
            journal.resumed = true;
            stop_previous_run(conn, &plan.load_id).await?;
            let rows = conn
                .rows(
                    &format!("SELECT item, state FROM {JOURNAL} WHERE load_id = {id}"),
                    "reading the load journal",
                )
                .await?;
            for r in rows {
                let item = cell_string(&r, 0).unwrap_or_default();
                match cell_string(&r, 1).as_deref() {
                    Some("done") => journal.done.insert(item),
                    _ => journal.started.insert(item),
                };
            }
        } else {
            for table in [JOURNAL, SESSIONS, LOADS] {
                conn.exec(
                    &format!("DELETE FROM {table} WHERE load_id = {id}"),
                    "clearing the load journal",
                )
                .await?;
            }
            conn.exec(
                &format!(
                    "INSERT INTO {LOADS} VALUES ({id}, {}, {}, NOW())",
                    string_literal(&plan.manifest.started_at),
                    string_literal(&plan.dir.to_string_lossy())
                ),
                "starting the load journal",
            )
            .await?;
        }
        Ok(journal)
    }

    /// A journal that has `done` as done, for tests of the steps that read it.
    #[cfg(test)]
    pub fn with_done(done: &[&str]) -> Journal {
        Journal {
            load_id: "test".into(),
            done: done.iter().map(|d| d.to_string()).collect(),
            started: HashSet::new(),
            resumed: false,
        }
    }

    pub fn is_done(&self, item: &str) -> bool {
        self.done.contains(item)
    }

    /// A chunk of a non-transactional table whose load began but did not finish.
    pub fn was_started(&self, item: &str) -> bool {
        self.started.contains(item)
    }

    pub fn done_count(&self) -> usize {
        self.done.len()
    }

    /// The statement recording `item` as done (inside the chunk's transaction: a duplicate
    /// fails it, so a chunk can never commit twice). `after_started` replaces a `started` row.
    pub fn done_sql(&self, item: &str, rows: u64, after_started: bool) -> String {
        let mut sql = format!(
            "INSERT INTO {JOURNAL} (load_id, item, state, rows_loaded, at) VALUES ({}, {}, 'done', {rows}, NOW())",
            string_literal(&self.load_id),
            string_literal(item)
        );
        if after_started {
            sql.push_str(" ON DUPLICATE KEY UPDATE state = 'done', rows_loaded = VALUES(rows_loaded), at = NOW()");
        }
        sql
    }

    /// Records `item` as done (autocommit).
    pub async fn mark_done(&self, conn: &mut LoadConn, item: &str, rows: u64) -> Result<()> {
        conn.exec(&self.done_sql(item, rows, true), "writing the load journal")
            .await?;
        Ok(())
    }

    /// Records that a non-transactional chunk is being loaded (autocommit, before it).
    pub async fn mark_started(&self, conn: &mut LoadConn, item: &str) -> Result<()> {
        conn.exec(
            &format!(
                "INSERT INTO {JOURNAL} (load_id, item, state, rows_loaded, at) VALUES ({}, {}, 'started', 0, NOW()) \
                 ON DUPLICATE KEY UPDATE state = 'started', at = NOW()",
                string_literal(&self.load_id),
                string_literal(item)
            ),
            "writing the load journal",
        )
        .await?;
        Ok(())
    }

    /// Records a connection of this run, for a later `--resume`.
    pub async fn register(&self, conn: &mut LoadConn) -> Result<()> {
        let boot = server_boot(conn).await?;
        let id = conn.id();
        conn.exec(
            &format!(
                "INSERT IGNORE INTO {SESSIONS} VALUES ({}, {id}, {boot})",
                string_literal(&self.load_id)
            ),
            "writing the load journal",
        )
        .await?;
        Ok(())
    }

    /// The load is complete: its journal rows go, and the schema if nothing else is in it.
    pub async fn finish(&self, conn: &mut LoadConn) -> Result<()> {
        let id = string_literal(&self.load_id);
        for table in [JOURNAL, SESSIONS, LOADS] {
            conn.exec(
                &format!("DELETE FROM {table} WHERE load_id = {id}"),
                "clearing the load journal",
            )
            .await?;
        }
        let others = conn
            .first_value(
                &format!("SELECT COUNT(*) FROM {LOADS}"),
                "reading the load journal",
            )
            .await?;
        if others.as_deref() == Some("0") {
            conn.exec(
                &format!("DROP DATABASE IF EXISTS `{SCHEMA}`"),
                "removing the load journal",
            )
            .await?;
        }
        Ok(())
    }
}

/// When the server started, in its own clock's seconds (to tell whether a recorded thread
/// id still means the same connection).
async fn server_boot(conn: &mut LoadConn) -> Result<i64> {
    let now: i64 = conn
        .first_value("SELECT UNIX_TIMESTAMP()", "reading the server clock")
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let rows = conn
        .rows(
            "SHOW GLOBAL STATUS LIKE 'Uptime'",
            "reading the server uptime",
        )
        .await?;
    let uptime: i64 = rows
        .first()
        .and_then(|r| cell_string(r, 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(now - uptime)
}

/// Kills the connections a previous run of this load left on the server and waits until
/// they are gone (their open transactions rolled back).
async fn stop_previous_run(conn: &mut LoadConn, load_id: &str) -> Result<()> {
    let id = string_literal(load_id);
    let boot = server_boot(conn).await?;
    let rows = conn
        .rows(
            &format!("SELECT connection_id, server_boot FROM {SESSIONS} WHERE load_id = {id}"),
            "reading the load journal",
        )
        .await?;
    let mine = u64::from(conn.id());
    for r in rows {
        let (Some(thread), Some(their_boot)) = (
            cell_string(&r, 0).and_then(|v| v.parse::<u64>().ok()),
            cell_string(&r, 1).and_then(|v| v.parse::<i64>().ok()),
        ) else {
            continue;
        };
        if (their_boot - boot).abs() > 2 || thread == mine {
            continue; // the server restarted since: that connection is gone
        }
        let alive =
            format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {thread}");
        if conn
            .first_value(&alive, "looking for the previous run")
            .await?
            .as_deref()
            != Some("1")
        {
            continue;
        }
        // It may end by itself meanwhile: "Unknown thread id" is fine.
        let _ = conn
            .exec(
                &format!("KILL CONNECTION {thread}"),
                "stopping the previous run",
            )
            .await;
        let deadline = Instant::now() + KILL_WAIT;
        while conn
            .first_value(&alive, "waiting for the previous run")
            .await?
            .as_deref()
            == Some("1")
        {
            if Instant::now() > deadline {
                return Err(LoadError::Refused(format!(
                    "connection {thread} of the interrupted load is still running on the server \
                     after {} s; wait for it to end and resume again",
                    KILL_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    conn.exec(
        &format!("DELETE FROM {SESSIONS} WHERE load_id = {id}"),
        "writing the load journal",
    )
    .await?;
    Ok(())
}
