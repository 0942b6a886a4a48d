//! Objects and output shape compared with `mariadb-dump` 10.11 (issue 10): INSERT
//! statements cut at the same rows whatever the number of readers, views that select from
//! later databases, definitions under every client character set, accounts and roles of
//! `--system=users`, and `--tab`'s view files and session header.
//!
//! Each test starts its own throwaway servers (dropped at its end) and runs the real
//! `rdump` binary, and `mariadb-dump` where the comparison is with it.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::Server;

/// `rdump --no-defaults -uroot --socket=<server> <args>`; panics with stderr on failure.
#[track_caller]
fn rdump(server: &Server, args: &[&str]) -> Vec<u8> {
    let out = rdump_run(server, args);
    assert!(
        out.status.success(),
        "rdump {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn rdump_run(server: &Server, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rdump"))
        .arg("--no-defaults")
        .arg("-uroot")
        .arg(format!("--socket={}", server.socket().display()))
        .args(args)
        .env_remove("MYSQL_PWD")
        .stdin(Stdio::null())
        .output()
        .expect("run rdump")
}

#[track_caller]
fn mariadb_dump(server: &Server, args: &[&str]) -> Vec<u8> {
    server
        .system_dump(args)
        .unwrap_or_else(|e| panic!("mariadb-dump {args:?} failed: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The lines of a dump's rows: INSERT statements and their continuation lines.
/// mariadb-dump 10.11 ends an extended INSERT's first line after `VALUES` (rdump keeps the
/// first row on it, as MySQL's mysqldump): the same length, so the same cuts; that line
/// break is joined here.
fn insert_lines(dump: &[u8]) -> Vec<String> {
    text(dump)
        .replace(" VALUES\n(", " VALUES (")
        .lines()
        .filter(|l| l.starts_with("INSERT INTO") || l.starts_with('('))
        .map(str::to_string)
        .collect()
}

fn restore(server: &Server, dump: &[u8]) {
    if let Err(e) = server.restore(dump) {
        panic!("restore failed: {e}");
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------
// Item 11: the output does not depend on the reader count.

/// Rows of varied lengths over many chunks (`--chunk-size=300`, 17 chunks) and a small
/// `--net-buffer-length`, so statements end inside chunks and span their boundaries: the
/// dump with 4 readers is the same bytes as with one, and its INSERT lines are
/// mariadb-dump's.
#[test]
fn insert_statements_end_at_the_same_rows_whatever_the_reader_count() {
    let s = Server::start_default();
    s.sql(
        "CREATE DATABASE rowsdb; USE rowsdb;
         CREATE TABLE rowsdb.t (id INT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB;
         INSERT INTO rowsdb.t SELECT seq, REPEAT(CHAR(97 + seq % 26), seq * 7919 % 150)
           FROM seq_1_to_5000;
         CREATE TABLE rowsdb.u (id BIGINT PRIMARY KEY, w TEXT) ENGINE=InnoDB;
         INSERT INTO rowsdb.u SELECT seq * 3, REPEAT('x', seq % 700) FROM seq_1_to_3000;",
    );
    let common = ["--net-buffer-length=4096", "--skip-dump-date", "rowsdb"];
    for mode in [None, Some("--single-transaction")] {
        let with = |threads: &str| {
            let mut args = vec![threads, "--chunk-size=300"];
            args.extend(mode);
            args.extend(common);
            rdump(&s, &args)
        };
        let one = with("--threads=1");
        let four = with("--threads=4");
        assert!(
            one == four,
            "{mode:?}: --threads=4 differs from --threads=1:\n{}",
            first_difference(&one, &four)
        );
        let reference = mariadb_dump(&s, &common);
        assert_eq!(
            insert_lines(&four),
            insert_lines(&reference),
            "{mode:?}: rdump's INSERT statements differ from mariadb-dump's"
        );
        assert!(insert_lines(&four).len() > 100);
    }
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    let (a, b) = (text(a), text(b));
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}:\n  {x:.120}\n  {y:.120}", i + 1);
        }
    }
    format!("lengths {} and {}", a.len(), b.len())
}
