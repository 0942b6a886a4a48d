//! Opening many connections, and accounts that may open few (issues 11.6 and 10.5).
//!
//! * A server with a tiny `back_log` (its accept queue): `--threads` far above it, over the
//!   unix socket, for `rdump --dir`, the single stream and `rload`. Opening every
//!   connection at once used to fail with EAGAIN ("Resource temporarily unavailable"); they
//!   now open a few at a time and wait out a full queue.
//! * A backup account with `MAX_USER_CONNECTIONS` 1 or 2: the single stream reads with the
//!   connections that opened, down to one (the same dump as `--threads=1`), `--dir` dumps
//!   with the workers it got, each with a warning; `--dir` with no worker at all fails
//!   with the server's refusal.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Server, ServerOptions};

const RDUMP: &str = env!("CARGO_BIN_EXE_rdump");
const RLOAD: &str = env!("CARGO_BIN_EXE_rload");

fn data(server: &Server) {
    let mut sql = String::from("CREATE DATABASE app;");
    for i in 0..12 {
        sql.push_str(&format!(
            "CREATE TABLE app.t{i} (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB;
             INSERT INTO app.t{i} SELECT seq, CONCAT('v', seq) FROM app.seq_1_to_3000;"
        ));
    }
    server.sql(&sql);
}

fn run(program: &str, server: &Server, user: &str, args: &[&str]) -> Output {
    Command::new(program)
        .arg("--no-defaults")
        .arg(format!("--socket={}", server.socket().display()))
        .arg(format!("-u{user}"))
        .args(args)
        .output()
        .expect("run")
}

fn ok(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what}: {stderr}");
    stderr
}

#[test]
fn many_threads_over_a_socket_with_a_tiny_back_log_all_connect() {
    let (source, target) = common::start_two(
        ServerOptions {
            extra_args: vec!["--back-log=1".into(), "--max-connections=300".into()],
            ..Default::default()
        },
        ServerOptions {
            server_id: 2,
            extra_args: vec!["--back-log=1".into(), "--max-connections=300".into()],
            ..Default::default()
        },
    );
    data(&source);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let dir_arg = format!("--dir={}", dir.display());
    let out = run(
        RDUMP,
        &source,
        "root",
        &[
            &dir_arg,
            "--threads=100",
            "--chunk-size=100",
            "--progress=never",
            "app",
        ],
    );
    ok(&out, "rdump --dir --threads=100");
    let out = run(
        RDUMP,
        &source,
        "root",
        &[
            "--threads=100",
            "--chunk-size=100",
            "--single-transaction",
            "app",
        ],
    );
    ok(&out, "rdump --threads=100");
    assert!(String::from_utf8_lossy(&out.stdout).contains("-- Dump completed"));
    let dir_path: &Path = &dir;
    let out = run(
        RLOAD,
        &target,
        "root",
        &[
            "--threads=150",
            "--progress=never",
            dir_path.to_str().unwrap(),
        ],
    );
    ok(&out, "rload --threads=150");
    assert_eq!(
        target.sql_value("SELECT COUNT(*) FROM app.t11"),
        "3000",
        "rload loaded the rows"
    );
}

/// An account limited to `n` connections at a time.
fn limited(server: &Server, user: &str, n: u32) {
    server.sql(&format!(
        "CREATE USER '{user}'@'localhost' WITH MAX_USER_CONNECTIONS {n};
         GRANT ALL PRIVILEGES ON *.* TO '{user}'@'localhost';"
    ));
}

#[test]
fn an_account_with_few_connections_dumps_with_those_it_gets() {
    let server = Server::start_default();
    data(&server);
    limited(&server, "one", 1);
    limited(&server, "two", 2);
    let reference = run(
        RDUMP,
        &server,
        "root",
        &["--threads=1", "--skip-dump-date", "app"],
    );
    ok(&reference, "the one-connection reference dump");

    for (user, args) in [
        ("one", vec!["--skip-dump-date", "app"]),
        (
            "one",
            vec!["--skip-dump-date", "--single-transaction", "app"],
        ),
        ("two", vec!["--skip-dump-date", "app"]),
        (
            "two",
            vec![
                "--skip-dump-date",
                "--single-transaction",
                "--threads=4",
                "app",
            ],
        ),
        ("two", vec!["--skip-dump-date", "--lock-all-tables", "app"]),
    ] {
        let out = run(RDUMP, &server, user, &args);
        let stderr = ok(&out, &format!("{user} {args:?}"));
        assert!(
            stderr.contains("rdump: warning:") && stderr.contains("1226"),
            "{user} {args:?}: no warning naming the refusal: {stderr}"
        );
        assert!(
            out.stdout == reference.stdout,
            "{user} {args:?}: not the same dump as with one connection"
        );
        eprintln!("{user} {args:?}: {}", stderr.trim());
    }

    // --dir: the workers it got, at least one.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let dir_arg = format!("--dir={}", dir.display());
    let out = run(
        RDUMP,
        &server,
        "two",
        &[&dir_arg, "--threads=4", "--progress=never", "app"],
    );
    let stderr = ok(&out, "--dir as two");
    assert!(
        stderr.contains("rdump: warning: 1 of 4 worker connections") && stderr.contains("1226"),
        "{stderr}"
    );
    let m = rdump::format::manifest::read(&dir).unwrap();
    let rows: u64 = m
        .databases
        .iter()
        .flat_map(|d| &d.tables)
        .map(|t| t.rows)
        .sum();
    assert_eq!(rows, 12 * 3000);

    let dir = tmp.path().join("e");
    let dir_arg = format!("--dir={}", dir.display());
    let out = run(
        RDUMP,
        &server,
        "one",
        &[&dir_arg, "--threads=4", "--progress=never", "app"],
    );
    assert_eq!(out.status.code(), Some(2), "--dir as one");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1226"), "{stderr}");
    assert!(!dir.join("rdump.json").exists());
}
