//! `--dump-slave`: dumping a replica records where its source stands, and replication runs
//! again afterwards. A real primary and a real replica on loopback.
//!
//! The pair is shared ([`pair`]: started on first use, `app.t` replicated) and used by one test
//! at a time, each starting from a running replica that has applied everything.

mod common;

use std::fs;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, Once, OnceLock};
use std::time::{Duration, Instant};

use common::{Server, ServerOptions};

fn start_pair() -> (Server, Server) {
    common::start_two(common::options(11, true), common::options(12, true))
}

static PAIR: OnceLock<(Server, Server)> = OnceLock::new();
static PAIR_LOCK: Mutex<()> = Mutex::new(());

/// The shared primary and replica, replicating `app` (`app.t` starts with 2 rows), with the
/// guard that keeps the other tests off them. The replica runs and has applied everything.
fn pair() -> (MutexGuard<'static, ()>, &'static Server, &'static Server) {
    let guard = PAIR_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (primary, replica) = PAIR.get_or_init(|| {
        register_cleanup();
        let (primary, replica) = start_pair();
        primary.sql("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO app.t VALUES (1,'a'),(2,'b');");
        replica.sql(&format!(
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='{}', \
             MASTER_PASSWORD='{}', MASTER_USE_GTID=no; START SLAVE;",
            primary.port(),
            primary.user(),
            primary.password()
        ));
        (primary, replica)
    });
    wait_for("the replica to run and catch up", || {
        let (file, pos) = {
            let rows = primary.sql_rows("SHOW MASTER STATUS");
            (rows[0][0].clone(), rows[0][1].clone())
        };
        replica_status(replica, "Slave_IO_Running") == "Yes"
            && replica_status(replica, "Slave_SQL_Running") == "Yes"
            && replica_status(replica, "Relay_Master_Log_File") == file
            && replica_status(replica, "Exec_Master_Log_Pos") == pos
    });
    (guard, primary, replica)
}

/// Statics are never dropped: stop the pair and remove its directories at exit.
fn register_cleanup() {
    static ONCE: Once = Once::new();
    extern "C" fn cleanup() {
        if let Some((primary, replica)) = PAIR.get() {
            for server in [primary, replica] {
                if let Some(pid) = server.pid() {
                    // SAFETY: kill/waitpid on the pid of a mariadbd child this process spawned.
                    unsafe {
                        libc::kill(pid as libc::pid_t, libc::SIGKILL);
                        libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0);
                    }
                }
                let _ = fs::remove_dir_all(server.dir());
            }
        }
    }
    ONCE.call_once(|| {
        // SAFETY: registering a plain extern "C" function.
        unsafe {
            libc::atexit(cleanup);
        }
    });
}

/// `rdump --no-defaults -uroot --socket=<server> <args>`, which must succeed; the dump as text.
#[track_caller]
fn dump_ok(server: &Server, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rdump"))
        .arg("--no-defaults")
        .arg("-uroot")
        .arg(format!("--socket={}", server.socket().display()))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rdump {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn replica_status(replica: &Server, column: &str) -> String {
    let out = replica
        .client_command()
        .args(["--vertical", "-e", "SHOW SLAVE STATUS"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == column).then(|| v.trim().to_string())
        })
        .unwrap_or_default()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn dump_slave_records_the_sources_position_and_restarts_replication() {
    let (_guard, primary, replica) = pair();
    let exec_pos = replica_status(replica, "Exec_Master_Log_Pos");
    let exec_file = replica_status(replica, "Relay_Master_Log_File");

    let out = Command::new(env!("CARGO_BIN_EXE_rdump"))
        .arg("--no-defaults")
        .arg(format!("--socket={}", replica.socket().display()))
        .args([
            "-uroot",
            "--single-transaction",
            "--dump-slave=1",
            "--include-master-host-port",
            "app",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = String::from_utf8(out.stdout).unwrap();
    let expected = format!(
        "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_LOG_FILE='{exec_file}', MASTER_LOG_POS={exec_pos};",
        primary.port()
    );
    assert!(
        dump.contains(&expected),
        "expected {expected:?} in:\n{dump}"
    );

    // The SQL thread was stopped for the dump and must run again.
    wait_for("replication to run again", || {
        replica_status(replica, "Slave_SQL_Running") == "Yes"
    });

    // Also when the dump fails after stopping it (here: an unknown table, exit code 6).
    let failed = Command::new(env!("CARGO_BIN_EXE_rdump"))
        .arg("--no-defaults")
        .arg(format!("--socket={}", replica.socket().display()))
        .args([
            "-uroot",
            "--single-transaction",
            "--dump-slave=1",
            "app",
            "no_such_table",
        ])
        .output()
        .unwrap();
    assert_eq!(
        failed.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    wait_for("replication to run again after a failed dump", || {
        replica_status(replica, "Slave_SQL_Running") == "Yes"
    });
    primary.sql("INSERT INTO app.t VALUES (3,'c')");
    wait_for("the replica to apply a new write", || {
        replica
            .sql_result("SELECT v FROM app.t WHERE id = 3")
            .map(|s| s.trim() == "c")
            .unwrap_or(false)
    });

    // A SQL thread the DBA stopped stays stopped: rdump starts only what it stopped.
    replica.sql("STOP SLAVE SQL_THREAD");
    wait_for("the SQL thread to stop", || {
        replica_status(replica, "Slave_SQL_Running") == "No"
    });
    dump_ok(replica, &["--single-transaction", "--dump-slave=1", "app"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(replica_status(replica, "Slave_SQL_Running"), "No");
    assert_eq!(replica_status(replica, "Slave_IO_Running"), "Yes");
    replica.sql("START SLAVE SQL_THREAD");
    wait_for("replication to run again", || {
        replica_status(replica, "Slave_SQL_Running") == "Yes"
    });
}

#[test]
fn apply_slave_statements_stops_replication_before_change_master_and_starts_it_after_the_data() {
    let (_guard, _primary, replica) = pair();
    let is_stop = |l: &str| {
        matches!(
            l,
            "STOP SLAVE;" | "STOP REPLICA;" | "STOP ALL SLAVES;" | "STOP ALL REPLICAS;"
        )
    };
    let is_start = |l: &str| {
        matches!(
            l,
            "START SLAVE;" | "START REPLICA;" | "START ALL SLAVES;" | "START ALL REPLICAS;"
        )
    };
    // Control: --dump-slave alone writes neither.
    let plain = dump_ok(replica, &["--dump-slave=1", "app"]);
    assert!(!plain.lines().any(|l| is_stop(l) || is_start(l)), "{plain}");

    let out = dump_ok(
        replica,
        &["--dump-slave=1", "--apply-slave-statements", "app"],
    );
    let lines: Vec<&str> = out.lines().collect();
    let only = |what: &str, pred: &dyn Fn(&str) -> bool| {
        let found: Vec<usize> = (0..lines.len()).filter(|&i| pred(lines[i])).collect();
        assert_eq!(found.len(), 1, "expected one {what} line in:\n{out}");
        found[0]
    };
    let stop = only("STOP SLAVE", &is_stop);
    let change = only("CHANGE MASTER", &|l| l.starts_with("CHANGE MASTER TO "));
    let last_row = only("INSERT", &|l| l.starts_with("INSERT INTO `t`"));
    let start = only("START SLAVE", &is_start);
    assert!(
        stop < change && change < last_row && last_row < start,
        "expected STOP < CHANGE MASTER < rows < START in:\n{out}"
    );
    // The dump itself still restarts the SQL thread it stopped.
    wait_for("replication to run again", || {
        replica_status(replica, "Slave_SQL_Running") == "Yes"
    });
}

/// As mariadb-dump: `--dump-slave` on a server that is not a replica dumps without a
/// CHANGE MASTER and exits 0 (rdump warns on stderr); `--apply-slave-statements` still
/// writes its STOP/START ALL SLAVES around it. The single stream and `--dir` alike.
#[test]
fn dump_slave_on_a_server_that_is_not_a_replica_dumps_without_coordinates_like_mariadb_dump() {
    let server = Server::start(ServerOptions {
        binlog: true,
        server_id: 13,
        ..Default::default()
    });
    server.sql("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY); INSERT INTO app.t VALUES (1);");
    let rdump = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rdump"))
            .arg("--no-defaults")
            .arg(format!("--socket={}", server.socket().display()))
            .arg("-uroot")
            .args(args)
            .output()
            .unwrap()
    };
    for args in [
        &["--dump-slave", "app"][..],
        &["--dump-slave=2", "--single-transaction", "app"],
        &["--dump-slave", "--apply-slave-statements", "app"],
    ] {
        let out = rdump(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.contains("not a replica"), "{stderr}");
        let ours = String::from_utf8_lossy(&out.stdout);
        let theirs =
            String::from_utf8_lossy(&server.system_dump(args).expect("mariadb-dump")).into_owned();
        for text in [&*ours, &theirs] {
            assert!(text.contains("INSERT INTO `t` VALUES"), "{args:?}: {text}");
            assert!(text.contains("-- Dump completed"), "{args:?}: {text}");
            assert!(!text.contains("CHANGE MASTER"), "{args:?}: {text}");
        }
        let slaves = |text: &str| {
            text.lines()
                .filter(|l| l.ends_with("ALL SLAVES;"))
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(slaves(&ours), slaves(&theirs), "{args:?}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let out = rdump(&[
        "--dump-slave",
        "--progress=never",
        &format!("--dir={}", dir.display()),
        "app",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = rdump::format::manifest::read(&dir).unwrap();
    assert!(m.coordinates.source.is_none());
}

#[test]
fn directory_dump_of_a_replica_records_its_source_position_in_the_manifest() {
    let (_guard, primary, replica) = pair();
    let rows = primary.sql_rows("SHOW MASTER STATUS");
    let (file, pos) = (rows[0][0].clone(), rows[0][1].parse::<u64>().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let out = Command::new(env!("CARGO_BIN_EXE_rdump"))
        .arg("--no-defaults")
        .arg(format!("--socket={}", replica.socket().display()))
        .args(["-uroot", "--dump-slave", "--progress=never"])
        .arg(format!("--dir={}", dir.display()))
        .arg("app")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = rdump::format::manifest::read(&dir).unwrap();
    let source = m
        .coordinates
        .source
        .expect("no source coordinates in the manifest");
    assert_eq!(
        (source.binlog_file.as_str(), source.binlog_position),
        (file.as_str(), pos)
    );
    assert_eq!(source.port, primary.port());
    assert_eq!(replica_status(replica, "Slave_SQL_Running"), "Yes");
}
