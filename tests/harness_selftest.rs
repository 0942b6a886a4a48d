//! Self-test of the real-server harness (`tests/common`) and of the fidelity fixture:
//! servers start, authenticate, run in parallel and clean up; the fixture loads
//! into a fresh server; snapshots are stable and detect changes; and the system's
//! `mariadb-dump` is measured against the fixture (its differences are printed and
//! written to `target/fidelity-mariadb-dump.txt`, not asserted away).

mod common;

use common::{Server, ServerOptions, Snapshot, assert_same, check_same, diff, snapshot_of};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const FIXTURE_DBS: &[&str] = &["fidelity", "fid elity-2"];

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fidelity.sql")
}

/// `"`db` table `t`"` (a snapshot key prefix) -> ("db", "t").
fn split_table_key(key: &str) -> (String, String) {
    let (db, table) = key.split_once(" table ").expect("table key");
    let unquote = |s: &str| s[1..s.len() - 1].replace("``", "`");
    (unquote(db), unquote(table))
}

/// Start `n` servers concurrently.
fn start_parallel(n: usize) -> Vec<Server> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                s.spawn(move || {
                    Server::start(ServerOptions {
                        server_id: 100 + i as u32,
                        ..Default::default()
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn fixture_round_trip_through_system_mariadb_dump() {
    let t = Instant::now();
    let servers = start_parallel(2);
    eprintln!(
        "[timing] 2 servers in parallel: {:.2?} (each: {:.2?}, {:.2?})",
        t.elapsed(),
        servers[0].start_time(),
        servers[1].start_time()
    );
    let (a, b) = (&servers[0], &servers[1]);

    let t = Instant::now();
    a.load_file(fixture());
    eprintln!("[timing] fixture load: {:.2?}", t.elapsed());

    // The machinery is deterministic: two snapshots of an unchanged server agree.
    let t = Instant::now();
    let snap_a = snapshot_of(a, FIXTURE_DBS);
    eprintln!(
        "[timing] snapshot: {:.2?} ({} entries)",
        t.elapsed(),
        snap_a.entries.len()
    );
    assert_same(&snap_a, &snapshot_of(a, FIXTURE_DBS));
    let dump_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fidelity-snapshot.txt");
    let text: String = snap_a
        .entries
        .iter()
        .map(|(k, v)| format!("== {k}\n{v}\n"))
        .collect();
    let _ = std::fs::write(dump_path, text);
    assert!(snap_a.entries.len() > 100, "snapshot suspiciously small");
    for must in [
        "`fidelity` table `floats`: CHECKSUM TABLE EXTENDED",
        "`fidelity` view `v_a_on_view`: SHOW CREATE VIEW",
        "`fidelity` trigger `trg_bi`: SHOW CREATE TRIGGER",
        "`fidelity` procedure `proc_oracle`: SHOW CREATE PROCEDURE",
        "`fidelity` function `fn_det`: SHOW CREATE FUNCTION",
        "`fidelity` event `ev_every`: SHOW CREATE EVENT",
        "`fidelity` sequence `zz_seq`: state (SELECT * FROM seq)",
        "`fid elity-2` table `t-1`: row count",
    ] {
        assert!(snap_a.entries.contains_key(must), "snapshot lacks {must}");
    }

    // The system's mariadb-dump, restored with the plain client.
    let t = Instant::now();
    let mut args = vec![
        "--databases",
        "--routines",
        "--events",
        "--triggers",
        "--single-transaction",
    ];
    args.extend_from_slice(FIXTURE_DBS);
    let dump = a.system_dump(&args).expect("mariadb-dump");
    let _ = std::fs::write(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fidelity-mariadb-dump.sql"),
        &dump,
    );
    eprintln!(
        "[timing] mariadb-dump: {:.2?} ({} bytes)",
        t.elapsed(),
        dump.len()
    );
    let t = Instant::now();
    // Plain client, as a user would restore (it strips `#` / `-- ` comments from
    // routine and trigger bodies: those differences are the client's, not the dump's).
    let restore_errors = match b.restore(&dump) {
        Ok(()) => String::new(),
        Err(first) => {
            // Known: mariadb-dump 10.11 cannot restore a table whose DEFAULT uses
            // NEXTVAL(seq). Record the errors, then restore again with --force
            // (into dropped databases) so the rest can still be compared.
            for db in FIXTURE_DBS {
                b.sql(&format!(
                    "DROP DATABASE IF EXISTS {}",
                    common::quote_ident(db)
                ));
            }
            let mut cmd = b.client_command();
            cmd.arg("--force");
            let out = common::run_with_stdin(cmd, &dump).unwrap();
            format!(
                "restore failed: {first}\nall errors with --force:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        }
    };
    eprintln!("[timing] restore: {:.2?}", t.elapsed());
    let snap_b = snapshot_of(b, FIXTURE_DBS);
    let diffs = diff(&snap_a, &snap_b);
    let mut report = format!(
        "mariadb-dump fidelity on fixtures/fidelity.sql: {} of {} entries differ\n{restore_errors}\n",
        diffs.len(),
        snap_a.entries.len()
    );
    for d in &diffs {
        report.push_str(&format!("- {d}\n"));
        // For a table whose data differs, show which rows.
        if let Some(rest) = d.key.strip_suffix(": CHECKSUM TABLE EXTENDED") {
            let (db, table) = split_table_key(rest);
            for line in common::row_diff(a, b, &db, &table, 12).lines() {
                report.push_str(&format!("    {line}\n"));
            }
        }
    }
    eprintln!("{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fidelity-mariadb-dump.txt");
    let _ = std::fs::write(&out, &report);
    // Restoring kept every object (differences are in content only).
    let keys = |s: &Snapshot| s.entries.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&snap_a), keys(&snap_b), "objects lost by mariadb-dump");

    // A deliberate one-byte change in a 3 MiB blob is detected, and only there.
    a.sql("UPDATE fidelity.binaries SET lb = INSERT(lb, 1000000, 1, 'X') WHERE id = 3");
    let changed = snapshot_of(a, FIXTURE_DBS);
    let d = diff(&snap_a, &changed);
    assert_eq!(
        d.iter().map(|d| d.key.as_str()).collect::<Vec<_>>(),
        ["`fidelity` table `binaries`: CHECKSUM TABLE EXTENDED"],
        "unexpected diff: {d:#?}"
    );
    // ... and so are a changed FLOAT bit pattern, a changed routine and a lost event.
    a.sql(
        "UPDATE fidelity.floats SET f = 1.2345679e0 WHERE id = 1;\n\
         DROP EVENT fidelity.`ev at once`;\n\
         ALTER FUNCTION fidelity.fn_det COMMENT 'changed';",
    );
    let changed2 = snapshot_of(a, FIXTURE_DBS);
    let keys2: Vec<String> = diff(&changed, &changed2)
        .into_iter()
        .map(|d| d.key)
        .collect();
    assert_eq!(
        keys2,
        [
            "`fidelity` event `ev at once`: SHOW CREATE EVENT",
            "`fidelity` function `fn_det`: SHOW CREATE FUNCTION",
            "`fidelity` table `floats`: CHECKSUM TABLE EXTENDED",
        ]
    );
    let msg = check_same(&changed, &changed2).expect_err("check_same must see differences");
    assert!(
        msg.contains("first: `fidelity` event `ev at once`: SHOW CREATE EVENT: only in A"),
        "{msg}"
    );
}

#[test]
fn servers_authenticate_over_tcp_and_socket() {
    let s = Server::start_default();
    eprintln!("[timing] one server: {:.2?}", s.start_time());
    assert!(s.socket().as_os_str().len() < 108);
    assert!(s.datadir().join("mysql").is_dir());
    // Password user over TCP.
    let tcp = Command::new(common::client_bin())
        .args(["--no-defaults", "-h127.0.0.1", "--protocol=TCP"])
        .arg(format!("-P{}", s.port()))
        .arg(format!("-u{}", s.user()))
        .arg(format!("-p{}", s.password()))
        .args([
            "--batch",
            "--skip-column-names",
            "-e",
            "SELECT CURRENT_USER()",
        ])
        .output()
        .unwrap();
    assert!(
        tcp.status.success(),
        "{}",
        String::from_utf8_lossy(&tcp.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&tcp.stdout).trim(),
        "rdump@127.0.0.1"
    );
    // Wrong password is refused.
    let bad = Command::new(common::client_bin())
        .args(["--no-defaults", "-h127.0.0.1", "--protocol=TCP"])
        .arg(format!("-P{}", s.port()))
        .args(["-urdump", "-pwrong", "-e", "SELECT 1"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Access denied"));
    // Password user over the socket.
    let sock = Command::new(common::client_bin())
        .arg("--no-defaults")
        .arg(format!("--socket={}", s.socket().display()))
        .arg(format!("-u{}", s.user()))
        .arg(format!("-p{}", s.password()))
        .args([
            "--batch",
            "--skip-column-names",
            "-e",
            "SELECT CURRENT_USER()",
        ])
        .output()
        .unwrap();
    assert!(
        sock.status.success(),
        "{}",
        String::from_utf8_lossy(&sock.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&sock.stdout).trim(),
        "rdump@localhost"
    );
    // Server settings the harness promises.
    assert_eq!(
        s.sql_rows(
            "SELECT @@character_set_server, @@system_time_zone IN ('CET', 'CEST'), \
             @@log_bin, @@server_id"
        ),
        [["utf8mb4", "1", "0", "1"]]
    );
    // sql_rows un-escapes what --batch escapes.
    assert_eq!(
        s.sql_value("SELECT CONCAT('a', CHAR(9), 'b', CHAR(10), 'c\\\\d', CHAR(0))"),
        "a\tb\nc\\d\0"
    );
    assert!(s.sql_result("SELEC 1").unwrap_err().contains("ERROR 1064"));
}

#[test]
fn binlog_server_and_cleanup() {
    let s = Server::start(ServerOptions {
        binlog: true,
        server_id: 7,
        extra_args: vec!["--max-connections=50".into()],
        ..Default::default()
    });
    assert_eq!(
        s.sql_rows("SELECT @@log_bin, @@binlog_format, @@server_id, @@max_connections"),
        [["1", "ROW", "7", "50"]]
    );
    s.sql("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY); INSERT INTO d.t VALUES (1)");
    assert!(!s.sql("SHOW BINARY LOGS").is_empty());
    assert!(
        s.binlog_basename()
            .unwrap()
            .with_extension("000001")
            .exists()
    );
    let (dir, pid) = (s.dir().to_path_buf(), s.pid().unwrap());
    drop(s);
    assert!(!dir.exists(), "server dir not removed");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "mariadbd still running"
    );
}

#[test]
fn server_outlives_the_thread_that_started_it() {
    // PR_SET_PDEATHSIG is per forking thread: the harness forks from a
    // process-lifetime thread, so this server must survive its starter thread.
    let s = std::thread::spawn(Server::start_default).join().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(s.sql("SELECT 42").trim(), "42");
}

#[test]
fn fixture_loads_twice_with_compiled_in_server_defaults() {
    // A server as `mariadbd --no-defaults` would be: latin1, system time zone
    // inherited. The fixture must not depend on the harness's utf8mb4 / Berlin.
    let s = Server::start(ServerOptions {
        extra_args: vec![
            "--character-set-server=latin1".into(),
            "--collation-server=latin1_swedish_ci".into(),
        ],
        system_time_zone: None,
        ..Default::default()
    });
    s.load_file(fixture());
    let first = snapshot_of(&s, FIXTURE_DBS);
    s.load_file(fixture());
    let second = snapshot_of(&s, FIXTURE_DBS);
    // Reloading recreates everything; only the sequences' and the events'
    // creation-dependent parts could move, and they must not.
    assert_same(&first, &second);
    assert_eq!(
        s.sql_value("SELECT COUNT(*) FROM fidelity.many_rows"),
        "30000"
    );
}
