//! `rbackup backup` and `rbackup restore` into a server, end to end with real servers:
//! the fidelity fixture is backed up into a repository (a local directory, and S3 served
//! by moto_server), restored into a fresh server, and every table (CHECKSUM TABLE, SHOW
//! CREATE), view, trigger, routine, event and sequence compared; a second backup after a
//! small change stores little; a backup that fails leaves no snapshot.

mod common;

use common::rbackup::{rbackup, text};

use std::path::{Path, PathBuf};

use common::{Server, check_same, snapshot_of};

const FIXTURE_DBS: &[&str] = &["fidelity", "fid elity-2"];

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fidelity.sql")
}

/// The server's connection options, as rdump and rload take them.
fn connection(s: &Server) -> Vec<String> {
    vec![
        "--no-defaults".into(),
        format!("--socket={}", s.socket().display()),
        format!("-u{}", s.user()),
        format!("-p{}", s.password()),
    ]
}

fn args<'a>(fixed: &[&'a str], more: &'a [String]) -> Vec<&'a str> {
    let mut v = fixed.to_vec();
    v.extend(more.iter().map(String::as_str));
    v
}

fn drop_databases(server: &Server) {
    let drops: Vec<String> = FIXTURE_DBS
        .iter()
        .map(|db| format!("DROP DATABASE IF EXISTS {};", common::quote_ident(db)))
        .collect();
    server.sql(&format!("SET FOREIGN_KEY_CHECKS=0; {}", drops.join(" ")));
}

/// `rbackup backup --json` of the fixture's databases; returns the summary.
fn backup(repo: &str, keys: &[&str], source: &Server, env: &[(&str, String)]) -> serde_json::Value {
    backup_with(repo, keys, source, env, &[])
}

fn backup_with(
    repo: &str,
    keys: &[&str],
    source: &Server,
    env: &[(&str, String)],
    extra: &[&str],
) -> serde_json::Value {
    let mut dump = connection(source);
    dump.extend(extra.iter().map(|s| s.to_string()));
    dump.extend(
        [
            "--databases",
            "fidelity",
            "fid elity-2",
            "--threads=2",
            "--chunk-size=700",
            "--progress=never",
        ]
        .map(String::from),
    );
    let mut a = vec!["backup", "--repo", repo, "--json", "--tag", "nightly"];
    a.extend_from_slice(keys);
    let out = rbackup(&args(&a, &dump), env);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

fn restore(repo: &str, keys: &[&str], id: &str, target: &Server, env: &[(&str, String)]) {
    let mut load = connection(target);
    load.extend(["--threads=2", "--progress=never"].map(String::from));
    let mut a = vec!["restore", "--repo", repo, id];
    a.extend_from_slice(keys);
    let out = rbackup(&args(&a, &load), env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("restored backup"),
        "{}",
        text(&out)
    );
}

fn snapshot_count(repo: &str, keys: &[&str], env: &[(&str, String)]) -> usize {
    let mut a = vec!["list", "--repo", repo, "--json"];
    a.extend_from_slice(keys);
    let out = rbackup(&a, env);
    assert!(out.status.success(), "{}", text(&out));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    list.len()
}

/// Source with the fixture (and a binlog, so coordinates are recorded), empty target.
fn servers() -> (Server, Server) {
    let (a, b) = common::start_two(common::options(61, true), common::options(62, false));
    a.load_file(fixture());
    (a, b)
}

#[test]
fn backup_then_restore_into_a_server_through_a_local_repository() {
    let (a, b) = servers();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let repo = repo.to_str().unwrap();
    let pass = tmp.path().join("pass");
    std::fs::write(&pass, "a long passphrase\n").unwrap();
    let pass = pass.to_str().unwrap();
    let wk = tmp.path().join("writer.key");
    let wk = wk.to_str().unwrap();
    let out = rbackup(
        &[
            "init",
            "--repo",
            repo,
            "--passphrase-file",
            pass,
            "--writer-key-file",
            wk,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));

    // The database host holds only the writer key (here from the environment).
    let writer_env = [("RBACKUP_WRITER_KEY_FILE", wk.to_string())];
    let first = backup(repo, &[], &a, &writer_env);
    eprintln!("first backup: {}", first["stats"]);
    let id = first["id"].as_str().unwrap().to_string();
    assert_eq!(first["tags"], serde_json::json!(["nightly"]));
    assert_eq!(
        first["meta"]["databases"],
        serde_json::json!(["fidelity", "fid elity-2"])
    );
    assert!(
        first["meta"]["coordinates"]["file"].is_string(),
        "{}",
        first["meta"]
    );

    // Restored into a fresh server, every object is identical.
    restore(repo, &["--passphrase-file", pass], &id, &b, &[]);
    check_same(&snapshot_of(&a, FIXTURE_DBS), &snapshot_of(&b, FIXTURE_DBS))
        .unwrap_or_else(|e| panic!("restored server differs: {e}"));

    // A small change: the second backup stores little.
    a.sql("INSERT INTO fidelity.ints VALUES (6, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)");
    let second = backup(repo, &[], &a, &writer_env);
    let logical = first["stats"]["logical_bytes"].as_u64().unwrap();
    let new_first = first["stats"]["new_bytes"].as_u64().unwrap();
    let new_second = second["stats"]["new_bytes"].as_u64().unwrap();
    eprintln!(
        "logical bytes {logical}; newly stored: first backup {new_first}, second {new_second}"
    );
    assert!(
        new_second * 20 < new_first,
        "second backup stored {new_second} of {logical} bytes (first {new_first})"
    );

    // The latest backup restores the change.
    drop_databases(&b);
    restore(repo, &["--passphrase-file", pass], "latest", &b, &[]);
    check_same(&snapshot_of(&a, FIXTURE_DBS), &snapshot_of(&b, FIXTURE_DBS))
        .unwrap_or_else(|e| panic!("restored server differs after the change: {e}"));

    // A backup of a missing database fails, naming it, and leaves no snapshot.
    let mut dump = connection(&a);
    dump.extend(["--databases", "no_such_db", "--progress=never"].map(String::from));
    let out = rbackup(
        &args(&["backup", "--repo", repo, "--writer-key-file", wk], &dump),
        &[],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("no_such_db"), "{}", text(&out));
    assert!(out.stdout.is_empty(), "{}", text(&out));
    assert_eq!(snapshot_count(repo, &["--passphrase-file", pass], &[]), 2);

    // With no --databases, every database.
    let mut dump = connection(&a);
    dump.push("--progress=never".into());
    let out = rbackup(
        &args(
            &["backup", "--repo", repo, "--writer-key-file", wk, "--json"],
            &dump,
        ),
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names = all["meta"]["databases"].as_array().unwrap();
    for db in FIXTURE_DBS.iter().chain(&["mysql"]) {
        assert!(names.iter().any(|n| n == db), "{db} not in {names:?}");
    }

    // A scheduled unit's command line: `rbackup backup --config FILE` and nothing else;
    // the connection (password included) is in the option file the config names.
    let cnf = tmp.path().join("client.cnf");
    std::fs::write(
        &cnf,
        format!(
            "[client]\nsocket={}\nuser={}\npassword={}\n",
            a.socket().display(),
            a.user(),
            a.password()
        ),
    )
    .unwrap();
    let metrics = tmp.path().join("rbackup.prom");
    let config = tmp.path().join("rbackup.toml");
    std::fs::write(
        &config,
        format!(
            "repository = {repo:?}\nwriter_key_file = {wk:?}\ndefaults_file = {:?}\n\
             metrics_file = {:?}\n[backup]\ndatabases = [\"fidelity\"]\nthreads = 2\n\
             tags = [\"from-config\"]\n",
            cnf.to_str().unwrap(),
            metrics.to_str().unwrap()
        ),
    )
    .unwrap();
    let out = rbackup(
        &["backup", "--config", config.to_str().unwrap(), "--json"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let configured: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(configured["tags"], serde_json::json!(["from-config"]));
    assert_eq!(
        configured["meta"]["databases"],
        serde_json::json!(["fidelity"])
    );
    let prom = std::fs::read_to_string(&metrics).unwrap();
    let scrape = prometheus_parse::Scrape::parse(prom.lines().map(|l| Ok(l.to_string()))).unwrap();
    for name in [
        "rbackup_last_success_timestamp_seconds",
        "rbackup_duration_seconds",
        "rbackup_bytes_added",
        "rbackup_repository_bytes",
        "rbackup_dedup_ratio",
    ] {
        let s = scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .unwrap_or_else(|| panic!("{name} missing: {prom}"));
        assert_eq!(s.labels.get("operation"), Some("backup"), "{prom}");
    }
    let ratio = scrape
        .samples
        .iter()
        .find(|s| s.metric == "rbackup_dedup_ratio")
        .unwrap();
    match ratio.value {
        // The same tables were backed up just before: mostly deduplicated.
        prometheus_parse::Value::Gauge(v) => assert!(v > 0.5 && v <= 1.0, "{v}"),
        ref v => panic!("{v:?}"),
    }
}

#[test]
fn backup_then_restore_into_a_server_through_s3() {
    let (a, b) = servers();
    let moto = common::s3::MotoServer::start();
    moto.create_bucket("rbk");
    let env = moto.env();
    let tmp = tempfile::tempdir().unwrap();
    let pass = tmp.path().join("pass");
    std::fs::write(&pass, "a long passphrase\n").unwrap();
    let pass = pass.to_str().unwrap();
    let repo = "s3://rbk/nightly";
    let out = rbackup(&["init", "--repo", repo, "--passphrase-file", pass], &env);
    assert!(out.status.success(), "{}", text(&out));
    // A reader's passphrase also writes. --zstd is ignored (the repository compresses
    // each blob; the files keep their uncompressed names).
    let first = backup_with(repo, &["--passphrase-file", pass], &a, &env, &["--zstd"]);
    assert!(first["stats"]["new_stored_bytes"].as_u64() < first["stats"]["new_bytes"].as_u64());
    let id = first["id"].as_str().unwrap().to_string();
    restore(repo, &["--passphrase-file", pass], &id, &b, &env);
    check_same(&snapshot_of(&a, FIXTURE_DBS), &snapshot_of(&b, FIXTURE_DBS))
        .unwrap_or_else(|e| panic!("restored server differs: {e}"));
    assert_eq!(snapshot_count(repo, &["--passphrase-file", pass], &env), 1);
}
