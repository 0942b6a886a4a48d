//! `--dump-slave`: dumping a replica records where its source stands, and replication runs
//! again afterwards. A real primary and a real replica on loopback.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, ServerOptions};

fn start_pair() -> (Server, Server) {
    std::thread::scope(|s| {
        let p = s.spawn(|| {
            Server::start(ServerOptions {
                binlog: true,
                server_id: 11,
                ..Default::default()
            })
        });
        let r = s.spawn(|| {
            Server::start(ServerOptions {
                binlog: true,
                server_id: 12,
                ..Default::default()
            })
        });
        (p.join().unwrap(), r.join().unwrap())
    })
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
    let (primary, replica) = start_pair();
    primary.sql("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO app.t VALUES (1,'a'),(2,'b');");
    replica.sql(&format!(
        "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='{}', \
         MASTER_PASSWORD='{}', MASTER_USE_GTID=no; START SLAVE;",
        primary.port(),
        primary.user(),
        primary.password()
    ));
    wait_for("the replica to catch up", || {
        replica
            .sql_result("SELECT COUNT(*) FROM app.t")
            .map(|s| s.trim() == "2")
            .unwrap_or(false)
    });
    let exec_pos = replica_status(&replica, "Exec_Master_Log_Pos");
    let exec_file = replica_status(&replica, "Relay_Master_Log_File");

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
        replica_status(&replica, "Slave_SQL_Running") == "Yes"
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
        replica_status(&replica, "Slave_SQL_Running") == "Yes"
    });
    primary.sql("INSERT INTO app.t VALUES (3,'c')");
    wait_for("the replica to apply a new write", || {
        replica
            .sql_result("SELECT COUNT(*) FROM app.t")
            .map(|s| s.trim() == "3")
            .unwrap_or(false)
    });
}

#[test]
fn dump_slave_on_a_server_that_is_not_a_replica_fails_with_a_consistency_error() {
    let server = Server::start(ServerOptions {
        binlog: true,
        server_id: 13,
        ..Default::default()
    });
    server.sql("CREATE DATABASE app");
    let out = Command::new(env!("CARGO_BIN_EXE_rdump"))
        .arg("--no-defaults")
        .arg(format!("--socket={}", server.socket().display()))
        .args(["-uroot", "--dump-slave", "app"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a replica"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Dump completed"));
}
