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
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dump.sql");
    let status = Command::new(env!("CARGO_BIN_EXE_rdump"))
        .arg("--no-defaults")
        .arg(format!("--socket={}", server.socket().display()))
        .arg("-uroot")
        .arg(format!("--result-file={}", out.display()))
        .args(args)
        .status()
        .expect("run rdump");
    assert!(status.success(), "rdump {args:?} failed: {status}");
    std::fs::read(&out).unwrap()
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
