//! DDL during a dump's start (issue 11.1): no waits-for cycle may pass through rdump.
//!
//! A dump is stopped (SIGSTOP time slicing, `common::stop_when`) at a checked moment of its
//! start: before it takes its lock, while it plans the chunks of table `a`, and while its
//! readers read `a`'s rows. An `ALTER TABLE` on `a` is then issued, and an application's
//! `SELECT count(*)` on `a` behind it, and the dump is let go. Whatever the moment, with
//! `--dir` and with the parallel single stream, the dump must end within seconds (it
//! finished, consistent: its output restores; or it failed with a clear error), and the
//! application's read must not wait longer than that. Before the fix the dump hung: the
//! planner's (or a reader's) query on `a` waited for the ALTER, the ALTER for the dump's
//! session that held `a` in its snapshot, and that session for the planner or the readers.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;

const RDUMP: &str = env!("CARGO_BIN_EXE_rdump");
const USER: &str = "ddl_dump";
const PASSWORD: &str = "ddl-dump-pw";
/// Rows of `a`: with a VARCHAR key and `--chunk-size=100` its planning is a walk of ~120
/// boundary queries, long enough to be caught in it.
const A_ROWS: u32 = 60_000;
/// How long the dump and the application's read may take once the dump is let go.
const BOUND: Duration = Duration::from_secs(25);

/// Statements of the dump's account in the server's general log (a table) whose text
/// matches `pattern` (SQL LIKE): what the dump has sent so far, also when it is stopped.
fn logged(server: &Server, pattern: &str) -> usize {
    server
        .sql_value(&format!(
            "SELECT COUNT(*) FROM mysql.general_log
              WHERE user_host LIKE '{USER}[%' AND argument LIKE '{pattern}'"
        ))
        .parse()
        .unwrap()
}

#[derive(Clone, Copy, Debug)]
enum Moment {
    /// The dump has connected, and sent at most a few statements.
    BeforeTheLock,
    /// A boundary query of `a`'s chunk plan is running.
    PlanningA,
    /// A chunk of `a` is being read.
    ReadingA,
}

fn reached(server: &Server, moment: Moment) -> bool {
    match moment {
        Moment::BeforeTheLock => logged(server, "%") >= 1,
        // A boundary of `a` asked for (its chunks may be read already by then: the plan
        // can end within one time slice).
        Moment::PlanningA => logged(server, "%FROM `many`.`a` FORCE INDEX%OFFSET%") > 0,
        Moment::ReadingA => logged(server, "SELECT%FROM `many`.`a` WHERE%") > 0,
    }
}

/// A client statement run in the background, timed.
struct Background {
    child: Child,
    started: Instant,
}

impl Background {
    fn spawn(server: &Server, sql: &str) -> Background {
        let child = server
            .client_command()
            .args(["-e", sql])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Background {
            child,
            started: Instant::now(),
        }
    }

    /// Waits up to `limit`; `None` if it is still running then (it is killed).
    fn wait(mut self, limit: Duration) -> Option<(Duration, bool, String)> {
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                use std::io::Read;
                let _ = self.child.stderr.take().unwrap().read_to_string(&mut err);
                return Some((self.started.elapsed(), status.success(), err));
            }
            if self.started.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Waits until the ALTER waits for a metadata lock, or has finished.
fn wait_for_alter(server: &Server, alter: &mut Background) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if alter.child.try_wait().unwrap().is_some() {
            return;
        }
        let waiting = server
            .sql_rows(
                "SELECT ID FROM information_schema.PROCESSLIST
                  WHERE (INFO LIKE 'ALTER TABLE many.a %' OR INFO LIKE 'RENAME TABLE many.a %'
                         OR INFO LIKE 'DROP TABLE many.a') AND STATE LIKE 'Waiting for%'",
            )
            .len();
        if waiting > 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the ALTER neither finished nor waited for a lock");
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Dir,
    /// The single stream with these consistency options (4 readers by default).
    Stream(&'static str),
}

fn rdump(server: &Server, out: &Path, mode: Mode) -> Command {
    let mut cmd = Command::new(RDUMP);
    cmd.arg("--no-defaults")
        .arg(format!("--socket={}", server.socket().display()))
        .arg(format!("-u{USER}"))
        .arg(format!("-p{PASSWORD}"))
        .args(["--chunk-size=100", "--progress=never"]);
    match mode {
        Mode::Dir => {
            cmd.arg(format!("--dir={}", out.display()))
                .args(["--threads=4", "many"]);
        }
        Mode::Stream(consistency) => {
            cmd.arg(format!("-r{}", out.display()));
            if !consistency.is_empty() {
                cmd.arg(consistency);
            }
            cmd.args(["-B", "many"]);
        }
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The dump, stopped at `moment`, meets an ALTER of `a` and an application's read of `a`.
/// `ddl` is run on `a` at `moment`; with a RENAME or DROP, the application's read after it
/// fails (1146) once the DDL is through, which is then what it waited for.
fn ddl_at(server: &Server, target: &Server, moment: Moment, mode: Mode, ddl: &str) {
    let dir_mode = mode == Mode::Dir;
    let label = format!("[{mode:?} {moment:?} {ddl}]");
    server.sql("DROP DATABASE IF EXISTS many; DROP USER IF EXISTS 'ddl_dump'@'localhost';");
    let _ = target.sql_result("DROP DATABASE IF EXISTS many");
    server.sql(&format!(
        "CREATE USER '{USER}'@'localhost' IDENTIFIED BY '{PASSWORD}';
         GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'localhost';"
    ));
    reload(server);
    server.sql(
        "SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = 1; TRUNCATE mysql.general_log;",
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join(if dir_mode { "d" } else { "dump.sql" });
    let mut child = rdump(server, &out, mode).spawn().unwrap();
    common::stop_when(&mut child, &format!("{label} the moment"), || {
        reached(server, moment)
    });
    let mut alter = Background::spawn(server, ddl);
    wait_for_alter(server, &mut alter);
    let read = Background::spawn(server, "SELECT count(*) FROM many.a");
    std::thread::sleep(Duration::from_millis(50));
    let let_go = Instant::now();
    common::resume(&child);

    // The dump ends within the bound, whatever it did.
    let ended = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if let_go.elapsed() > BOUND {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if ended.is_none() {
        let list = server
            .sql("SELECT ID, USER, STATE, LEFT(INFO, 80) FROM information_schema.PROCESSLIST");
        let _ = child.kill();
        let _ = child.wait();
        panic!("{label} the dump did not end within {BOUND:?} after the ALTER:\n{list}");
    }
    let took = let_go.elapsed();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let read = read.wait(BOUND + Duration::from_secs(5));
    let (read_took, read_ok, read_err) =
        read.unwrap_or_else(|| panic!("{label} the application's read was blocked past {BOUND:?}"));
    assert!(
        read_ok || (!ddl.starts_with("ALTER") && read_err.contains("1146")),
        "{label} the application's read failed: {read_err}"
    );
    assert!(
        read_took <= BOUND + Duration::from_secs(1),
        "{label} the application's read waited {read_took:?}"
    );
    let alter = alter.wait(Duration::from_secs(10)).expect("the ALTER ends");
    assert!(alter.1, "{label} the ALTER failed: {}", alter.2);

    if output.status.success() {
        // Finished: consistent, i.e. its definitions and rows restore together.
        if dir_mode {
            let m = rdump::format::manifest::read(&out).unwrap();
            common::dirdump::restore_dir(target, &out, &m);
        } else {
            target.restore_file(&out).unwrap();
        }
        assert_eq!(
            target.sql_value("SELECT COUNT(*) FROM many.a"),
            A_ROWS.to_string(),
            "{label}"
        );
        eprintln!("{label} finished in {took:?}; the read waited {read_took:?}");
    } else {
        // Failed: cleanly, saying why, with nothing that looks complete.
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(
            lines.len() == 1 && lines[0].starts_with("rdump: "),
            "{label} expected one message: {stderr}"
        );
        assert!(
            !out.join("rdump.json").exists() && !out.is_file(),
            "{label} a failed dump left a complete-looking result"
        );
        eprintln!(
            "{label} failed in {took:?} ({}); the read waited {read_took:?}",
            lines[0]
        );
    }
}

fn reload(server: &Server) {
    let mut sql = format!(
        "CREATE DATABASE many;
         CREATE TABLE many.a (k VARCHAR(20) PRIMARY KEY, v VARCHAR(60)) ENGINE=InnoDB;
         INSERT INTO many.a SELECT CONCAT('k', LPAD(seq, 8, '0')), REPEAT('x', 50)
           FROM many.seq_1_to_{A_ROWS};"
    );
    for i in 0..30 {
        sql.push_str(&format!(
            "CREATE TABLE many.t{i:02} (id INT PRIMARY KEY, v INT) ENGINE=InnoDB;
             INSERT INTO many.t{i:02} SELECT seq, seq FROM many.seq_1_to_20;"
        ));
    }
    server.sql(&sql);
    server.sql("ANALYZE TABLE many.a");
}

const MOMENTS: [Moment; 3] = [Moment::BeforeTheLock, Moment::PlanningA, Moment::ReadingA];

/// An ALTER at every moment; a RENAME and a DROP while `a` is read (earlier, they may run
/// before the dump lists its tables, and then the dump rightly has no `a` to compare).
fn statements() -> Vec<(Moment, &'static str)> {
    let mut all: Vec<(Moment, &str)> = MOMENTS
        .into_iter()
        .map(|m| (m, "ALTER TABLE many.a ADD COLUMN extra INT"))
        .collect();
    all.push((Moment::ReadingA, "RENAME TABLE many.a TO many.a_renamed"));
    all.push((Moment::ReadingA, "DROP TABLE many.a"));
    all
}

#[test]
fn ddl_at_the_start_of_a_directory_dump_never_hangs_it_or_the_application() {
    let (server, target) =
        common::start_two(common::options(61, false), common::options(62, false));
    for (moment, ddl) in statements() {
        ddl_at(&server, &target, moment, Mode::Dir, ddl);
    }
}

#[test]
fn ddl_at_the_start_of_a_parallel_single_stream_never_hangs_it_or_the_application() {
    let (server, target) =
        common::start_two(common::options(63, false), common::options(64, false));
    // --single-transaction, and the default (--lock-tables), each read by 4 connections.
    for mode in [Mode::Stream("--single-transaction"), Mode::Stream("")] {
        for (moment, ddl) in statements() {
            ddl_at(&server, &target, moment, mode, ddl);
        }
    }
}

/// Opening every table in every session of a `--single-transaction` stream happens while
/// the brief global lock stops all commits on the server: with many tables that stop grew
/// to seconds (3,000 small tables, 4 readers: 1.3 to 4.8 s; mariadb-dump 38 ms). The readers hold
/// the biggest tables only (`POOLED_UNDER_BRIEF_LOCK`); the others are read by the dump's
/// own session, and the output stays that of one connection.
#[test]
fn a_single_transaction_stream_opens_few_tables_under_its_lock() {
    let server = common::Server::start(common::options(65, false));
    server.sql(&format!(
        "CREATE USER '{USER}'@'localhost' IDENTIFIED BY '{PASSWORD}';
         GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'localhost';"
    ));
    let mut sql = format!(
        "CREATE DATABASE many;
         CREATE TABLE many.a (k VARCHAR(20) PRIMARY KEY, v VARCHAR(60)) ENGINE=InnoDB;
         INSERT INTO many.a SELECT CONCAT('k', LPAD(seq, 8, '0')), REPEAT('x', 50)
           FROM many.seq_1_to_{A_ROWS};"
    );
    for i in 0..200 {
        sql.push_str(&format!(
            "CREATE TABLE many.t{i:03} (id INT PRIMARY KEY, v INT) ENGINE=InnoDB;
             INSERT INTO many.t{i:03} VALUES (1, {i}), (2, {i});"
        ));
    }
    server.sql(&sql);
    server.sql("ANALYZE TABLE many.a");
    server.sql(
        "SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = 1; TRUNCATE mysql.general_log;",
    );
    let tmp = tempfile::tempdir().unwrap();
    let parallel = tmp.path().join("parallel.sql");
    let out = rdump(&server, &parallel, Mode::Stream("--single-transaction"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let opened: usize = server
        .sql_value(&format!(
            "SELECT COALESCE(SUM((LENGTH(argument) - LENGTH(REPLACE(argument, 'LIMIT 0', ''))) / 7), 0)
               FROM mysql.general_log WHERE user_host LIKE '{USER}[%'"
        ))
        .parse::<f64>()
        .unwrap() as usize;
    // 4 readers, each at most 128 tables (201 before); the dump's session opens every
    // table, so that none it dumps can change definition after the coordinates (issue 13).
    assert!(
        opened <= 4 * 128 + 201,
        "{opened} tables opened under the lock"
    );
    assert!(
        logged(&server, "SELECT%FROM `many`.`a` WHERE%") > 1,
        "the readers read a's chunks"
    );
    server.sql("SET GLOBAL general_log = 0");
    let one = tmp.path().join("one.sql");
    let out = rdump(&server, &one, Mode::Stream("--single-transaction"))
        .arg("--threads=1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let strip = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("-- Dump completed"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        strip(&parallel) == strip(&one),
        "the output differs from one connection's"
    );
}
