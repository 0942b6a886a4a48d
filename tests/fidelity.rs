//! Fidelity: the fixture with every hard case (fixtures/fidelity.sql) is loaded into one
//! server, dumped by rdump, restored with the plain `mariadb` client into a second server,
//! and every table (CHECKSUM TABLE, SHOW CREATE TABLE), view, trigger, routine, event and
//! sequence is compared. This is also the README's end-to-end demo (`.ci/run demo`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{Server, check_same, snapshot_of};

const FIXTURE_DBS: &[&str] = &["fidelity", "fid elity-2"];

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fidelity.sql")
}

fn start_pair() -> (Server, Server) {
    common::start_two(common::options(1, true), common::options(2, false))
}

/// Runs rdump against `server` with `args`, writing to a result file; returns the dump.
fn rdump(server: &Server, args: &[&str]) -> Vec<u8> {
    rdump_with(server, args, Client::Default).0
}

/// Which client rdump reads with: its own text-protocol client where it can (the
/// default), or mysql_async everywhere (`RDUMP_WIRE=driver`).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Client {
    Default,
    Driver,
}

/// Runs rdump as [`rdump`] does; returns the dump and rdump's stderr.
fn rdump_with(server: &Server, args: &[&str], client: Client) -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dump.sql");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rdump"));
    cmd.arg("--no-defaults")
        .arg(format!("--socket={}", server.socket().display()))
        .arg("-uroot")
        .arg(format!("--result-file={}", out.display()))
        .args(args);
    if client == Client::Driver {
        cmd.env("RDUMP_WIRE", "driver");
    }
    let output = cmd.output().expect("run rdump");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "rdump {args:?} failed: {stderr}");
    (std::fs::read(&out).unwrap(), stderr)
}

/// rdump's own client and mysql_async give the same dump, byte for byte.
fn same_through_both_clients(a: &Server, label: &str, args: &[&str]) {
    same_through_both_clients_of(a, label, &["fidelity", "fid elity-2"], args)
}

fn same_through_both_clients_of(a: &Server, label: &str, dbs: &[&str], args: &[&str]) {
    let mut all = vec!["--databases"];
    all.extend_from_slice(dbs);
    all.extend_from_slice(&["--routines", "--events", "--skip-dump-date", "--verbose"]);
    all.extend_from_slice(args);
    let (lean, lean_log) = rdump_with(a, &all, Client::Default);
    let (driver, driver_log) = rdump_with(a, &all, Client::Driver);
    assert!(
        lean_log.contains("(rdump's text-protocol client)"),
        "[{label}] {lean_log}"
    );
    assert!(
        driver_log.contains("(mysql_async)"),
        "[{label}] {driver_log}"
    );
    if lean != driver {
        let at = lean
            .iter()
            .zip(&driver)
            .position(|(x, y)| x != y)
            .unwrap_or(lean.len().min(driver.len()));
        let from = at.saturating_sub(200);
        panic!(
            "[{label}] the two clients' dumps differ at byte {at} ({} vs {} bytes):\nrdump's client: {}\nmysql_async:    {}",
            lean.len(),
            driver.len(),
            String::from_utf8_lossy(&lean[from..(at + 200).min(lean.len())]),
            String::from_utf8_lossy(&driver[from..(at + 200).min(driver.len())]),
        );
    }
    eprintln!(
        "[{label}] {} bytes, identical through both clients",
        lean.len()
    );
}

fn drop_fixture_databases(server: &Server) {
    let drops: Vec<String> = FIXTURE_DBS
        .iter()
        .map(|db| format!("DROP DATABASE IF EXISTS {};", common::quote_ident(db)))
        .collect();
    server.sql(&format!("SET FOREIGN_KEY_CHECKS=0; {}", drops.join(" ")));
}

/// Dumps the fixture with `args`, restores into `b`, and compares.
fn round_trip(a: &Server, b: &Server, label: &str, args: &[&str]) {
    let t = Instant::now();
    let mut all = vec!["--databases", "fidelity", "fid elity-2"];
    all.extend_from_slice(args);
    let dump = rdump(a, &all);
    let dump_time = t.elapsed();
    let t = Instant::now();
    drop_fixture_databases(b);
    // --comments: the client otherwise strips `--` and `#` comments inside routine and
    // trigger bodies (a client behaviour, the dump holds them; mysqldump's dumps alike).
    b.restore_with_args(&["--comments"], &dump)
        .unwrap_or_else(|e| panic!("[{label}] restoring the dump failed: {e}"));
    eprintln!(
        "[{label}] dumped {} bytes in {dump_time:.2?}, restored in {:.2?}",
        dump.len(),
        t.elapsed()
    );
    let (before, after) = (snapshot_of(a, FIXTURE_DBS), snapshot_of(b, FIXTURE_DBS));
    if let Err(diff) = check_same(&before, &after) {
        panic!("[{label}] restored server differs from the source:\n{diff}");
    }
    eprintln!("[{label}] every table, view, trigger, routine, event and sequence is identical");
}

#[test]
fn fixture_round_trips_through_rdump_sql() {
    let (a, b) = start_pair();
    let t = Instant::now();
    a.load_file(fixture());
    eprintln!(
        "loaded fixtures/fidelity.sql into the source in {:.2?}",
        t.elapsed()
    );

    same_through_both_clients(&a, "both clients, one stream", &["--single-transaction"]);
    same_through_both_clients(
        &a,
        "both clients, 3 connections in small chunks, hex-blob",
        &[
            "--single-transaction",
            "--threads=3",
            "--chunk-size=700",
            "--hex-blob",
        ],
    );
    same_through_both_clients(
        &a,
        "both clients, one row per INSERT, tiny net_buffer_length",
        &["--skip-extended-insert", "--net-buffer-length=4096"],
    );
    // Rows longer than one 16 MiB packet arrive in several (row 5: exactly one full
    // packet and an empty one); cells that start with the
    // bytes that also mark EOF (0xFE) or NULL (0xFB).
    a.sql("SET GLOBAL max_allowed_packet = 64 * 1024 * 1024");
    a.sql(
        "CREATE DATABASE huge_rows;
         CREATE TABLE huge_rows.t (id INT PRIMARY KEY, b LONGBLOB, c VARCHAR(10));
         INSERT INTO huge_rows.t VALUES
           (1, REPEAT('a', 17 * 1024 * 1024), 'x'),
           (2, X'FEFB00', NULL),
           (3, REPEAT(X'FE', 16 * 1024 * 1024 - 10), 'y'),
           (4, '', ''),
           -- exactly 0xFFFFFF bytes of row (2 + 4 + 16777208 + 1): an empty packet follows
           (5, REPEAT('b', 16777208), '');",
    );
    same_through_both_clients_of(&a, "both clients, rows over 16 MiB", &["huge_rows"], &[]);
    same_through_both_clients_of(
        &a,
        "both clients, rows over 16 MiB, hex-blob, 2 connections",
        &["huge_rows"],
        &["--hex-blob", "--threads=2", "--chunk-size=1"],
    );
    a.sql("DROP DATABASE huge_rows");

    round_trip(
        &a,
        &b,
        "default options",
        &["--routines", "--events", "--single-transaction"],
    );
    round_trip(
        &a,
        &b,
        "one stream fed by 3 connections in small chunks",
        &[
            "--routines",
            "--events",
            "--single-transaction",
            "--threads=3",
            "--chunk-size=700",
        ],
    );
    round_trip(
        &a,
        &b,
        "one connection, exactly as mysqldump reads",
        &[
            "--routines",
            "--events",
            "--single-transaction",
            "--threads=1",
        ],
    );
    round_trip(
        &a,
        &b,
        "hex-blob, one row per INSERT, column names",
        &[
            "--routines",
            "--events",
            "--hex-blob",
            "--skip-extended-insert",
            "--complete-insert",
            "--lock-all-tables",
            "--order-by-primary",
        ],
    );
    round_trip(
        &a,
        &b,
        "tiny net_buffer_length, INSERT IGNORE, no locks or key toggles",
        &[
            "--routines",
            "--events",
            "--net-buffer-length=4096",
            "--insert-ignore",
            "--skip-add-locks",
            "--skip-disable-keys",
        ],
    );
}
