//! `--fast-unsafe`: relaxed durability on the target for the load's duration, for a restore
//! into a server that nothing else uses yet.
//!
//! Owns: which global variables are relaxed ([`SETTINGS`]), checking before anything changes
//! that each can be set (a required one that is read-only on this server, unknown, or that
//! the account may not set refuses the load, naming the variable; an optional one is left as
//! it is and said so), the warning printed up front (with the statement that puts the
//! original values back, for a run killed before it can), and restoring the original values
//! when the load ends (those still relaxed: one changed by someone else meanwhile is left
//! as they set it, and said so): after success, after a failure, and when the load is
//! dropped (Ctrl-C, SIGTERM, also while they are being put back: [`Relaxed`]'s `Drop`
//! restores them on a thread and connection of its own), then `FLUSH ENGINE LOGS` ([`FLUSH`]) so that a load reported complete is durable (run
//! once before anything changes too: an account without RELOAD is refused up front). A
//! variable is recorded as changed before its `SET GLOBAL` is sent, so one interrupted
//! mid-statement is put back too. The binary log (with `--enable-binlog`) is synced at the
//! server's next commit once `sync_binlog` is back. With InnoDB's automatic statistics
//! recalculation turned off for the load, the load's InnoDB tables are analyzed once their
//! data is in ([`analyze`]; `load::run` calls it, also in a later `--resume` of the load).
//!
//! The risk: with `innodb_flush_log_at_trx_commit=0` a crash of the *server* (not of rload)
//! loses up to about a second of committed transactions, among them chunks the journal
//! says are loaded; `sync_binlog=0` likewise for the binary log. Such a load must be started
//! over (`--drop-existing`), not resumed. Nothing changes for other sessions' correctness,
//! only for their durability: hence "a server nothing else uses yet".
//!
//! Not for: the session settings every load uses (`load::prepare_session`).

use super::conn::LoadConn;
use super::error::{LoadError, Result};
use super::plan::LoadPlan;
use crate::client::conn::cell_string;
use crate::client::options::ConnectionOptions;
use crate::sql::quote::qualified;

/// One global variable relaxed for the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub name: &'static str,
    /// The value during the load.
    pub relaxed: &'static str,
    /// Refuse the load when it cannot be set; otherwise leave it and say so.
    pub required: bool,
}

/// What `--fast-unsafe` changes, in order.
pub const SETTINGS: &[Setting] = &[
    // No redo log write and fsync at each commit; written and flushed about once a second.
    Setting {
        name: "innodb_flush_log_at_trx_commit",
        relaxed: "0",
        required: true,
    },
    // No fsync of the binary log at commit (with --enable-binlog or a log the server keeps).
    Setting {
        name: "sync_binlog",
        relaxed: "0",
        required: true,
    },
    // Pages written once rather than twice; dynamic only on some servers (MySQL 8.0.30+),
    // read-only on MariaDB 10.x: left as it is there.
    Setting {
        name: "innodb_doublewrite",
        relaxed: "OFF",
        required: false,
    },
    // No hash index kept up to date on pages that only receive inserts (OFF by default on
    // MariaDB 10.5+, ON on MySQL).
    Setting {
        name: "innodb_adaptive_hash_index",
        relaxed: "OFF",
        required: false,
    },
    // No statistics recalculated by InnoDB's background task as each table grows (on
    // MariaDB 10.11 it retries a table the first chunk's bulk insert holds: ~10% of the
    // server's CPU of a load, benches/README.md); the loaded tables are analyzed once at
    // the end instead ([`analyze`]).
    Setting {
        name: STATS_AUTO_RECALC,
        relaxed: "OFF",
        required: false,
    },
];

/// The statistics setting: when `--fast-unsafe` turned it off, the load ends with [`analyze`].
pub const STATS_AUTO_RECALC: &str = "innodb_stats_auto_recalc";

/// A global variable's value as a SET literal: numbers bare, anything else quoted.
fn literal(value: &str) -> String {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        value.to_string()
    } else {
        crate::sql::quote::string_literal(value)
    }
}

/// Whether two spellings of a variable's value mean the same (`OFF`/`0`, `ON`/`1`).
fn same_value(a: &str, b: &str) -> bool {
    let norm = |v: &str| match v.to_ascii_uppercase().as_str() {
        "OFF" | "FALSE" => "0".to_string(),
        "ON" | "TRUE" => "1".to_string(),
        other => other.to_string(),
    };
    norm(a) == norm(b)
}

/// `SET GLOBAL a = 1, b = 'x'` for `(name, value)` pairs.
pub fn set_statement(values: &[(&'static str, String)]) -> String {
    let parts: Vec<String> = values
        .iter()
        .map(|(n, v)| format!("{n} = {}", literal(v)))
        .collect();
    format!("SET GLOBAL {}", parts.join(", "))
}

/// The relaxed settings of a running load; restores the original values on `restore`, or
/// on drop if the load was abandoned first.
pub struct Relaxed {
    connection: ConnectionOptions,
    server: String,
    /// The variables changed, with their values before.
    saved: Vec<(&'static str, String)>,
    /// Optional settings left as they were, with why.
    pub left: Vec<String>,
    restored: bool,
}

/// How one variable can be changed on this server.
enum Probe {
    /// Its current value, and whether it already has the relaxed one.
    Settable(String),
    /// It cannot be changed: why.
    Not(String),
}

async fn probe(conn: &mut LoadConn, s: &Setting) -> Result<Probe> {
    let read = conn
        .first_value(
            &format!("SELECT @@GLOBAL.{}", s.name),
            &format!("reading {}", s.name),
        )
        .await;
    let value = match read {
        Ok(Some(v)) => v,
        Ok(None) => return Ok(Probe::Not("it has no value on this server".into())),
        // 1193: unknown system variable.
        Err(e) if e.sql_error_code() == Some(1193) => {
            return Ok(Probe::Not("this server has no such variable".into()));
        }
        Err(e) => return Err(e.into()),
    };
    // Setting it to its own value changes nothing and tells whether it can be set: its
    // value as of the SET, not as read above (another rload may have put its own back
    // since; setting the value read would relax the server again, for good).
    let same = format!("SET GLOBAL {0} = @@GLOBAL.{0}", s.name);
    match conn.exec(&same, &format!("checking {}", s.name)).await {
        Ok(()) => Ok(Probe::Settable(value)),
        Err(e) => match e.sql_error_code() {
            // 1238: read-only (not dynamic).
            Some(1238) => Ok(Probe::Not(
                "it is not dynamic on this server (read-only; set only at startup)".into(),
            )),
            // 1227: access denied (SUPER / SYSTEM_VARIABLES_ADMIN); 1193 unknown.
            Some(1227) => Ok(Probe::Not(format!(
                "the account may not set it (SET GLOBAL needs SUPER or SYSTEM_VARIABLES_ADMIN): {e}"
            ))),
            Some(1193) => Ok(Probe::Not("this server has no such variable".into())),
            _ => Err(e.into()),
        },
    }
}

impl Relaxed {
    /// Checks every setting, then relaxes them, on `conn` (a connection of the load to
    /// `connection`). Refused, with nothing changed, when a required one cannot be set.
    pub async fn apply(conn: &mut LoadConn, connection: &ConnectionOptions) -> Result<Relaxed> {
        let mut settable = Vec::new();
        let mut left = Vec::new();
        for s in SETTINGS {
            match probe(conn, s).await? {
                Probe::Settable(v) => settable.push((s, v)),
                Probe::Not(why) if s.required => {
                    return Err(LoadError::Refused(format!(
                        "{}: --fast-unsafe needs to set {} for the load, but {why}; nothing was \
                         changed (load without --fast-unsafe)",
                        conn.server, s.name
                    )));
                }
                Probe::Not(why) => left.push(format!("{} ({why})", s.name)),
            }
        }
        // The load ends with FLUSH ENGINE LOGS (RELOAD privilege): found out now, before
        // anything changes, rather than after the load.
        if let Err(e) = conn.exec(FLUSH, "checking FLUSH ENGINE LOGS").await {
            return Err(LoadError::Refused(format!(
                "{}: --fast-unsafe ends with {FLUSH} (to make the load durable), which this \
                 account may not run ({e}; it needs RELOAD); nothing was changed (load \
                 without --fast-unsafe)",
                conn.server
            )));
        }
        let mut relaxed = Relaxed {
            connection: connection.clone(),
            server: conn.server.clone(),
            saved: Vec::new(),
            left,
            restored: false,
        };
        for (s, before) in settable {
            if same_value(&before, s.relaxed) {
                relaxed
                    .left
                    .push(format!("{} (already {})", s.name, before));
                continue;
            }
            // Saved before the SET is sent: if the load is dropped during the round trip
            // (SIGTERM), `Drop` puts it back (putting back an unchanged value is harmless).
            relaxed.saved.push((s.name, before));
            let set = set_statement(&[(s.name, s.relaxed.to_string())]);
            match conn.exec(&set, &format!("setting {}", s.name)).await {
                Ok(()) => {}
                Err(e) if !s.required => {
                    relaxed.saved.pop();
                    relaxed.left.push(format!("{} (refused: {e})", s.name));
                }
                Err(e) => {
                    // Put back what was changed before refusing.
                    let undo = relaxed.restore_on(conn).await;
                    relaxed.restored = true;
                    let mut msg = format!(
                        "{}: --fast-unsafe could not set {}: {e}",
                        relaxed.server, s.name
                    );
                    if let Err(u) = undo {
                        msg.push_str(&format!("; and {u}"));
                    }
                    return Err(LoadError::Refused(msg));
                }
            }
        }
        Ok(relaxed)
    }

    /// The server, for messages.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The variables changed, with the values they had.
    pub fn saved(&self) -> &[(&'static str, String)] {
        &self.saved
    }

    /// Whether InnoDB's automatic statistics recalculation is off for the load (then the
    /// loaded tables need [`analyze`]).
    pub fn stats_off(&self) -> bool {
        self.saved.iter().any(|(n, _)| *n == STATS_AUTO_RECALC)
    }

    /// The statement that puts the original values back (empty when nothing was changed).
    pub fn undo_statement(&self) -> Option<String> {
        (!self.saved.is_empty()).then(|| set_statement(&self.saved))
    }

    /// What is printed before the load starts.
    pub fn warning(&self) -> String {
        let changed: Vec<String> = self
            .saved
            .iter()
            .map(|(n, before)| {
                let relaxed = SETTINGS
                    .iter()
                    .find(|s| s.name == *n)
                    .map_or("?", |s| s.relaxed);
                format!("{n} {before} -> {relaxed}")
            })
            .collect();
        let mut s = format!(
            "rload: warning: --fast-unsafe: durability of {} relaxed for the load: {}",
            self.server,
            if changed.is_empty() {
                "nothing to change".to_string()
            } else {
                changed.join(", ")
            }
        );
        if !self.left.is_empty() {
            s.push_str(&format!("; left as they are: {}", self.left.join(", ")));
        }
        s.push_str(
            ".\nrload: a crash of the server during the load can lose the load (start it over \
             with --drop-existing); use only on a server nothing else uses yet.",
        );
        if let Some(undo) = self.undo_statement() {
            s.push_str(&format!(
                "\nrload: the settings are put back when rload ends; if it is killed first \
                 (kill -9), run: {undo};"
            ));
        }
        s
    }

    /// Puts every changed variable back through `conn`; all are tried, the failures named.
    /// One that no longer has the relaxed value was changed by someone else meanwhile (a
    /// DBA, another rload putting back its own): left as they set it, and said so.
    async fn restore_on(&self, conn: &mut LoadConn) -> Result<(), String> {
        let mut failed = Vec::new();
        for (name, before) in &self.saved {
            let relaxed = SETTINGS
                .iter()
                .find(|s| s.name == *name)
                .map_or("", |s| s.relaxed);
            let now = conn
                .first_value(
                    &format!("SELECT @@GLOBAL.{name}"),
                    &format!("reading {name}"),
                )
                .await;
            match now {
                Ok(Some(now)) if same_value(&now, before) => continue,
                Ok(Some(now)) if !same_value(&now, relaxed) => {
                    eprintln!(
                        "rload: warning: --fast-unsafe: {name} was changed to {now} during the \
                         load (not by this rload): left as it is ({before} before the load)"
                    );
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    failed.push(format!("{e}"));
                    continue;
                }
            }
            let set = set_statement(&[(name, before.clone())]);
            if let Err(e) = conn.exec(&set, &format!("restoring {name}")).await {
                failed.push(format!("{e}"));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the settings --fast-unsafe relaxed were not all put back ({}); run: {};",
                failed.join("; "),
                self.undo_statement().unwrap_or_default()
            ))
        }
    }

    /// Puts the original values back over a new connection (the load's may be gone).
    /// Marked restored only once tried to the end: interrupted midway (Ctrl-C while a slow
    /// server answers), `Drop` tries again.
    pub async fn restore(mut self) -> Result<(), String> {
        let result = if self.saved.is_empty() {
            Ok(())
        } else {
            restore_saved(&self.connection, &self.saved).await
        };
        self.restored = true;
        result
    }
}

async fn restore_saved(
    connection: &ConnectionOptions,
    saved: &[(&'static str, String)],
) -> Result<(), String> {
    let undo = set_statement(saved);
    let mut conn = match LoadConn::connect(connection).await {
        Ok(c) => c,
        Err(e) => {
            return Err(format!(
                "the settings --fast-unsafe relaxed were not put back ({e}); run: {undo};"
            ));
        }
    };
    let r = Relaxed {
        connection: connection.clone(),
        server: conn.server.clone(),
        saved: saved.to_vec(),
        left: Vec::new(),
        restored: true,
    };
    let mut result = r.restore_on(&mut conn).await;
    if result.is_ok() {
        result = flush_engine_logs(&mut conn).await;
    }
    conn.close().await;
    result
}

/// What makes the relaxed load durable once the settings are back: `FLUSH ENGINE LOGS`
/// writes and syncs InnoDB's redo log up to now (commits made under
/// `innodb_flush_log_at_trx_commit=0` are otherwise synced only by the server's next
/// once-a-second flush). It needs the RELOAD privilege. NO_WRITE_TO_BINLOG: a FLUSH is
/// otherwise written to the binary log, a transaction (GTID) of the target's own that the
/// load (without `--enable-binlog`) must not add, least of all to a replica it seeds.
pub const FLUSH: &str = "FLUSH NO_WRITE_TO_BINLOG ENGINE LOGS";

async fn flush_engine_logs(conn: &mut LoadConn) -> Result<(), String> {
    conn.exec(FLUSH, "syncing InnoDB's redo log")
        .await
        .map_err(|e| {
            format!(
                "the settings --fast-unsafe relaxed were put back, but {FLUSH} failed ({e}): \
                 the load's last commits are durable only once the server next flushes its \
                 redo log (about a second; run {FLUSH}; to be sure)"
            )
        })
}

/// `ANALYZE TABLE` of every InnoDB table of the plan that has rows, one at a time: their
/// statistics were not recalculated while they were loaded (`innodb_stats_auto_recalc` off),
/// and nothing would recalculate them after (InnoDB recalculates a table when its rows
/// change, and none will until the application starts). Tables loaded by an earlier run of
/// the load are analyzed too. Returns how many.
pub async fn analyze(conn: &mut LoadConn, plan: &LoadPlan) -> Result<usize> {
    let mut n = 0;
    for d in &plan.databases {
        for t in &d.tables {
            let innodb = t
                .engine
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case("InnoDB"));
            if t.kind != "table" || !innodb || t.rows == 0 {
                continue;
            }
            let name = qualified(&d.target, &t.name);
            let context = format!(
                "analyzing {name} (its statistics were not kept up to date during the \
                 --fast-unsafe load)"
            );
            // NO_WRITE_TO_BINLOG: statistics are the target's own, not the load's data.
            let rows = conn
                .rows(
                    &format!("ANALYZE NO_WRITE_TO_BINLOG TABLE {name}"),
                    &context,
                )
                .await?;
            // One row per table: (Table, Op, Msg_type, Msg_text); an error is a row too.
            for r in &rows {
                let kind = cell_string(r, 2).unwrap_or_default();
                if kind.eq_ignore_ascii_case("error") {
                    return Err(LoadError::Rdump(crate::error::Error::Server {
                        server: conn.server.clone(),
                        context,
                        message: cell_string(r, 3).unwrap_or_default(),
                    }));
                }
            }
            n += 1;
        }
    }
    Ok(n)
}

impl Drop for Relaxed {
    /// The load was abandoned (interrupted) before `restore`: put the values back on a
    /// thread with a runtime of its own (this may run inside the load's runtime).
    fn drop(&mut self) {
        if self.restored || self.saved.is_empty() {
            return;
        }
        let connection = self.connection.clone();
        let saved = std::mem::take(&mut self.saved);
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("could not start a runtime: {e}"))?;
            runtime.block_on(restore_saved(&connection, &saved))
        })
        .join();
        match outcome {
            Ok(Ok(())) => eprintln!("rload: --fast-unsafe: the relaxed settings were put back"),
            Ok(Err(e)) => eprintln!("rload: warning: {e}"),
            Err(_) => eprintln!(
                "rload: warning: the settings --fast-unsafe relaxed may not have been put back"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_statements_quote_only_what_is_not_a_number() {
        assert_eq!(
            set_statement(&[
                ("innodb_flush_log_at_trx_commit", "1".into()),
                ("innodb_doublewrite", "ON".into())
            ]),
            "SET GLOBAL innodb_flush_log_at_trx_commit = 1, innodb_doublewrite = 'ON'"
        );
        assert!(same_value("OFF", "0") && same_value("on", "1") && !same_value("2", "0"));
    }

    /// Ctrl-C while the settings are being put back (a slow or unreachable server) drops
    /// `restore`'s future: `Drop` must try again, not take them as put back.
    #[test]
    fn a_restore_interrupted_midway_is_tried_again_on_drop() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::time::{Duration, Instant};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let accepted = std::sync::Arc::new(AtomicUsize::new(0));
        let count = std::sync::Arc::clone(&accepted);
        // The first connection (restore's) gets no greeting, so the restore waits until
        // it is interrupted; later ones are closed at once (their restore fails).
        let server = std::thread::spawn(move || {
            let mut held = Vec::new();
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until && count.load(Ordering::SeqCst) < 2 {
                match listener.accept() {
                    Ok((c, _)) => {
                        if count.fetch_add(1, Ordering::SeqCst) == 0 {
                            held.push(c);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        let relaxed = Relaxed {
            connection: ConnectionOptions {
                socket: Some(path),
                ..ConnectionOptions::default()
            },
            server: "test".into(),
            saved: vec![("sync_binlog", "1".into())],
            left: Vec::new(),
            restored: false,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let interrupted = runtime.block_on(async {
            tokio::time::timeout(Duration::from_millis(500), relaxed.restore()).await
        });
        assert!(
            interrupted.is_err(),
            "the restore was waiting on the server"
        );
        server.join().unwrap();
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            2,
            "dropped midway, the settings were tried again"
        );
    }

    #[test]
    fn required_settings_are_the_durability_ones() {
        let required: Vec<&str> = SETTINGS
            .iter()
            .filter(|s| s.required)
            .map(|s| s.name)
            .collect();
        assert_eq!(required, ["innodb_flush_log_at_trx_commit", "sync_binlog"]);
    }
}
