//! `--seed-replica`: after the load, make the target a replica of `--source-host` starting
//! exactly at the dumped state, start replication and wait until both threads run.
//!
//! Coordinates come from the manifest: those of the dumped server's own source when the dump
//! was taken with `--dump-slave` (a sibling replica), else the dumped server's. On MariaDB,
//! with a GTID position: `SET GLOBAL gtid_slave_pos` and `MASTER_USE_GTID=slave_pos`; without
//! one, `MASTER_LOG_FILE`/`MASTER_LOG_POS`. On MySQL (written from the dialect rules, not
//! tested here): `GTID_PURGED` plus `SOURCE_AUTO_POSITION=1`, else file and position;
//! `CHANGE REPLICATION SOURCE TO` from 8.0.23. Replication is stopped and reset (`RESET
//! SLAVE ALL`) first, so a resumed seed starts clean.
//!
//! Waiting: up to 60 s for `Slave_IO_Running` and `Slave_SQL_Running` both `Yes`, and still
//! so a second later; a thread error (`Last_IO_Error`, `Last_SQL_Error`) ends the wait with
//! the server's message, but for a network error of the IO thread, tried again each second
//! for 10 s. A failed wait stops replication, so nothing is applied unwatched; a resumed
//! seed is refused once the replica's position has moved past the dump's. The
//! load itself ran with `sql_log_bin=0` (`--enable-binlog` is refused with
//! `--seed-replica`), so the replica's binary log does not hold the loaded rows.
//!
//! The replication password goes into the CHANGE MASTER statement only; errors name what was
//! being done, never the statement.

use std::time::{Duration, Instant};

use super::SourceOptions;
use super::conn::LoadConn;
use super::error::{LoadError, Result};
use crate::client::conn::cell_by_name;
use crate::client::options::Password;
use crate::format::manifest::Manifest;
use crate::sql::dialect::{Flavor, Version};
use crate::sql::quote::string_literal;

const WAIT: Duration = Duration::from_secs(60);

/// How replication was started, and how far behind it was when both threads ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaReport {
    pub source: String,
    /// "GTID 0-1-42" or "binlog.000003:1234".
    pub start: String,
    /// `Seconds_Behind_Master` when both threads ran (`None` if the server did not say).
    pub lag: Option<u64>,
}

/// The statements that point the target at the source, in order (the password included).
pub fn statements(
    flavor: Flavor,
    version: Version,
    m: &Manifest,
    src: &SourceOptions,
) -> Result<(Vec<String>, String)> {
    let (file, pos, gtid) = start_coordinates(m);
    let gtid = gtid.filter(|g| !g.trim().is_empty());
    let mysql = flavor == Flavor::MySql;
    let new_syntax = mysql && version >= Version(8, 0, 23);
    let new_verbs = mysql && version >= Version(8, 0, 22);
    let (change, p) = if new_syntax {
        ("CHANGE REPLICATION SOURCE TO", "SOURCE")
    } else {
        ("CHANGE MASTER TO", "MASTER")
    };
    let (stop, reset, start) = if new_verbs {
        ("STOP REPLICA", "RESET REPLICA ALL", "START REPLICA")
    } else {
        ("STOP SLAVE", "RESET SLAVE ALL", "START SLAVE")
    };
    let mut change_sql = format!(
        "{change} {p}_HOST={}, {p}_PORT={}, {p}_USER={}, {p}_PASSWORD={}, {p}_SSL={}",
        string_literal(&src.host),
        src.port,
        string_literal(src.user.as_deref().unwrap_or("")),
        string_literal(match &src.password {
            Password::Given(s) => s.expose(),
            _ => "",
        }),
        u8::from(src.ssl)
    );
    let mut sql = vec![stop.to_string(), reset.to_string()];
    let start_at = match (&gtid, flavor) {
        (Some(g), Flavor::MariaDb) => {
            sql.push(format!("SET GLOBAL gtid_slave_pos = {}", string_literal(g)));
            change_sql.push_str(", MASTER_USE_GTID=slave_pos");
            format!("GTID {g}")
        }
        (Some(g), Flavor::MySql) => {
            sql.push(format!(
                "SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ {}",
                string_literal(g)
            ));
            change_sql.push_str(&format!(", {p}_AUTO_POSITION=1"));
            format!("GTID {g}")
        }
        (None, _) => {
            let (Some(file), Some(pos)) = (file, pos) else {
                return Err(LoadError::Refused(
                    "the manifest has neither a GTID position nor a binlog file and position to \
                     start replication from"
                        .into(),
                ));
            };
            change_sql.push_str(&format!(
                ", {p}_LOG_FILE={}, {p}_LOG_POS={pos}",
                string_literal(&file)
            ));
            if flavor == Flavor::MariaDb {
                change_sql.push_str(", MASTER_USE_GTID=no");
            }
            format!("{file}:{pos}")
        }
    };
    sql.push(change_sql);
    sql.push(start.to_string());
    Ok((sql, start_at))
}

/// Where replication starts: the dumped server's own source when the dump was taken with
/// `--dump-slave`, else the dumped server. (binlog file, position, GTID set)
fn start_coordinates(m: &Manifest) -> (Option<String>, Option<u64>, Option<String>) {
    let c = &m.coordinates;
    match &c.source {
        Some(s) => (
            Some(s.binlog_file.clone()),
            Some(s.binlog_position),
            s.gtid.clone(),
        ),
        None => (c.binlog_file.clone(), c.binlog_position, c.gtid.clone()),
    }
}

/// Points the target at the source, starts replication and waits until it runs.
/// `again`: an earlier run of this load got as far as starting replication (journal); it
/// is set up again only if the replica has applied nothing since the dump's position.
/// When the wait fails, replication is stopped, so nothing is applied unwatched and a
/// resumed seed can start from the dump's position again.
pub async fn seed(
    conn: &mut LoadConn,
    m: &Manifest,
    src: &SourceOptions,
    again: bool,
) -> Result<ReplicaReport> {
    let (sql, start) = statements(conn.dialect.flavor, conn.dialect.version, m, src)?;
    if again {
        refuse_if_applied(conn, m).await?;
    }
    let source = format!("{}:{}", src.host, src.port);
    for (i, s) in sql.iter().enumerate() {
        let context = match i {
            0 | 1 => "stopping and resetting replication".to_string(),
            _ if s.starts_with("SET") => format!("setting the replica's GTID position to {start}"),
            _ if s.starts_with("START") => "starting replication".to_string(),
            _ => format!("pointing the replica at {source} ({start})"),
        };
        conn.exec(s, &context).await?;
    }
    let waited = wait_running(conn, &source).await;
    if waited.is_err() {
        let _ = conn.exec(&sql[0], "stopping replication").await;
    }
    let lag = waited?;
    Ok(ReplicaReport { source, start, lag })
}

/// Client errors of the IO thread that a new attempt may not have (the source busy or
/// briefly unreachable): the IO thread is restarted each second rather than after its
/// `MASTER_CONNECT_RETRY` (60 s by default, as long as the whole wait), for up to
/// `TRANSIENT_FOR`; a source that stays unreachable (a wrong port) is then an error.
const TRANSIENT_IO_ERRORS: [&str; 4] = ["2003", "2006", "2013", "2002"];
const TRANSIENT_FOR: Duration = Duration::from_secs(10);

/// How long both threads must keep running, with no error, before the seed is taken as
/// working: an IO thread reports an unknown or purged start position (1236) only after it
/// has connected.
const SETTLE: Duration = Duration::from_secs(1);

/// Waits until both replication threads run (and keep running for `SETTLE`); returns
/// `Seconds_Behind_Master`. A thread error ends the wait with the server's message.
async fn wait_running(conn: &mut LoadConn, source: &str) -> Result<Option<u64>> {
    let status_sql = conn.dialect.replica_status_sql();
    let [stop_io, start_io] = conn.dialect.restart_io_thread_sql();
    let deadline = Instant::now() + WAIT;
    let mut running_since: Option<Instant> = None;
    let mut restarts = 0;
    let mut first_transient: Option<Instant> = None;
    let mut last_io_error = String::new();
    loop {
        let rows = conn.rows(status_sql, "reading the replica status").await?;
        let Some(row) = rows.first() else {
            return Err(LoadError::Replication {
                server: conn.server.clone(),
                message: "no replication is configured after CHANGE MASTER".into(),
            });
        };
        let get = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| cell_by_name(row, n))
                .unwrap_or_default()
        };
        let io = get(&["Slave_IO_Running", "Replica_IO_Running"]);
        let sql_running = get(&["Slave_SQL_Running", "Replica_SQL_Running"]);
        let io_errno = get(&["Last_IO_Errno"]);
        let sql_errno = get(&["Last_SQL_Errno"]);
        if !sql_errno.is_empty() && sql_errno != "0" {
            return Err(LoadError::Replication {
                server: conn.server.clone(),
                message: format!(
                    "the SQL thread stopped: error {sql_errno}: {}",
                    get(&["Last_SQL_Error"])
                ),
            });
        }
        if !io_errno.is_empty() && io_errno != "0" && io != "Yes" {
            last_io_error = format!("error {io_errno}: {}", get(&["Last_IO_Error"]));
            let transient = TRANSIENT_IO_ERRORS.contains(&io_errno.as_str())
                && first_transient.get_or_insert_with(Instant::now).elapsed() < TRANSIENT_FOR;
            if !transient {
                let mut message =
                    format!("the IO thread cannot replicate from {source}: {last_io_error}");
                if restarts > 0 {
                    message.push_str(&format!(" (after {restarts} new attempt(s))"));
                }
                return Err(LoadError::Replication {
                    server: conn.server.clone(),
                    message,
                });
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            conn.exec(stop_io, "restarting the replica's IO thread")
                .await?;
            conn.exec(start_io, "restarting the replica's IO thread")
                .await?;
            restarts += 1;
            running_since = None;
            continue;
        }
        if io == "Yes" && sql_running == "Yes" {
            let since = *running_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= SETTLE {
                return Ok(get(&["Seconds_Behind_Master", "Seconds_Behind_Source"])
                    .parse()
                    .ok());
            }
        } else {
            running_since = None;
        }
        if Instant::now() > deadline {
            let mut message = format!(
                "replication from {source} did not start within {} s (IO thread: {io}, SQL thread: {sql_running})",
                WAIT.as_secs()
            );
            if !last_io_error.is_empty() {
                message.push_str(&format!("; the IO thread's last error: {last_io_error}"));
            }
            return Err(LoadError::Replication {
                server: conn.server.clone(),
                message,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A seed that an earlier run started may have applied transactions since: resetting the
/// replica to the dump's position would apply them twice. Refused, then, for the DBA to
/// look at; nothing is applied twice.
async fn refuse_if_applied(conn: &mut LoadConn, m: &Manifest) -> Result<()> {
    let (file, pos, gtid) = start_coordinates(m);
    let now = match gtid.filter(|g| !g.trim().is_empty()) {
        Some(dumped) => {
            let now = conn
                .first_value(
                    conn.dialect.replica_gtid_position_sql(),
                    "reading the replica's GTID position",
                )
                .await?
                .unwrap_or_default();
            (!now.trim().is_empty() && gtid_set(&now) != gtid_set(&dumped))
                .then(|| format!("GTID {}, the dump's {dumped}", now.trim()))
        }
        None => {
            let cols = conn.dialect.replica_status_columns();
            let rows = conn
                .rows(
                    conn.dialect.replica_status_sql(),
                    "reading the replica status",
                )
                .await?;
            rows.first().and_then(|row| {
                let now_file = cell_by_name(row, cols.exec_file).unwrap_or_default();
                let now_pos = cell_by_name(row, cols.exec_pos).unwrap_or_default();
                let (file, pos) = (file.unwrap_or_default(), pos.unwrap_or(0).to_string());
                (!now_file.is_empty() && (now_file != file || now_pos != pos))
                    .then(|| format!("{now_file}:{now_pos}, the dump's {file}:{pos}"))
            })
        }
    };
    match now {
        None => Ok(()),
        Some(applied) => Err(LoadError::Refused(format!(
            "{}: the replication an earlier run of this load started has moved past the \
             dump's position ({applied}): it is not set up again, so nothing is applied twice. \
             Check SHOW SLAVE STATUS; if it runs, the replica is seeded, and the same command \
             with --resume but without --seed-replica finishes the load",
            conn.server
        ))),
    }
}

/// A GTID set's members, in a fixed order ("0-1-5,1-2-9" and "1-2-9, 0-1-5" are equal).
fn gtid_set(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .split(',')
        .map(|g| g.split_whitespace().collect::<String>())
        .filter(|g| !g.is_empty())
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::options::Secret;
    use crate::format::manifest::{CoordinatesEntry, SourceEntry};

    fn manifest(c: CoordinatesEntry) -> Manifest {
        let json = serde_json::json!({
            "format": "rdump-dir", "format_version": 1, "rdump_version": "0", "complete": true,
            "server": {"flavor": "MariaDB", "version": "10.11", "host": "h"},
            "started_at": "t", "finished_at": null,
            "options": {"threads": 1, "chunk_rows": 1, "format": "sql", "zstd_level": null,
                        "where_clause": null, "character_set": "utf8mb4", "tz_utc": true},
            "consistency": {"method": "flush", "lock_ms": 0, "consistent": true,
                            "non_transactional_consistent": true},
            "coordinates": c, "databases": []
        });
        serde_json::from_value(json).unwrap()
    }

    fn src() -> SourceOptions {
        SourceOptions {
            host: "p".into(),
            port: 3307,
            user: Some("repl".into()),
            password: Password::Given(Secret::new("pw")),
            ssl: true,
        }
    }

    #[test]
    fn mariadb_with_gtid_uses_slave_pos() {
        let m = manifest(CoordinatesEntry {
            binlog_file: Some("b.000001".into()),
            binlog_position: Some(42),
            gtid: Some("0-1-7".into()),
            source: None,
        });
        let (sql, start) = statements(Flavor::MariaDb, Version(10, 11, 6), &m, &src()).unwrap();
        assert_eq!(start, "GTID 0-1-7");
        assert_eq!(
            sql,
            vec![
                "STOP SLAVE",
                "RESET SLAVE ALL",
                "SET GLOBAL gtid_slave_pos = '0-1-7'",
                "CHANGE MASTER TO MASTER_HOST='p', MASTER_PORT=3307, MASTER_USER='repl', MASTER_PASSWORD='pw', MASTER_SSL=1, MASTER_USE_GTID=slave_pos",
                "START SLAVE"
            ]
        );
    }

    #[test]
    fn file_and_position_without_gtid_and_dump_slave_coordinates_first() {
        let m = manifest(CoordinatesEntry {
            binlog_file: Some("own.000001".into()),
            binlog_position: Some(1),
            gtid: Some(String::new()),
            source: Some(SourceEntry {
                host: "s".into(),
                port: 3306,
                binlog_file: "src.000009".into(),
                binlog_position: 99,
                gtid: None,
            }),
        });
        let (sql, start) = statements(Flavor::MariaDb, Version(10, 11, 6), &m, &src()).unwrap();
        assert_eq!(start, "src.000009:99");
        assert!(
            sql[2].ends_with("MASTER_LOG_FILE='src.000009', MASTER_LOG_POS=99, MASTER_USE_GTID=no")
        );
    }

    #[test]
    fn mysql_8_uses_the_new_syntax_and_auto_position() {
        let m = manifest(CoordinatesEntry {
            gtid: Some("u:1-9".into()),
            ..Default::default()
        });
        let (sql, _) = statements(Flavor::MySql, Version(8, 0, 36), &m, &src()).unwrap();
        assert_eq!(sql[0], "STOP REPLICA");
        assert_eq!(sql[2], "SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ 'u:1-9'");
        assert!(sql[3].starts_with("CHANGE REPLICATION SOURCE TO SOURCE_HOST='p'"));
        assert!(sql[3].ends_with("SOURCE_AUTO_POSITION=1"));
        assert_eq!(sql[4], "START REPLICA");
    }
}
