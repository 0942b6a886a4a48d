//! `rbackup backup` and `rbackup restore` into a server, end to end with real servers:
//! the fidelity fixture is backed up into a repository (a local directory, and S3 served
//! by moto_server), restored into a fresh server, and every table (CHECKSUM TABLE, SHOW
//! CREATE), view, trigger, routine, event and sequence compared; a second backup after a
//! small change stores little; a backup that fails leaves no snapshot.

mod common;

use common::rbackup::{rbackup, text};

use std::path::{Path, PathBuf};

use common::{Server, check_same, connection, snapshot_of};

const FIXTURE_DBS: &[&str] = &["fidelity", "fid elity-2"];

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fidelity.sql")
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

// ---------------------------------------------------------------------------
// Accounts, locks, concurrency and faults, through the binary.

/// `rbackup init --repo URL --passphrase-file F` (with `env`); returns the passphrase file.
fn init_repo(dir: &Path, repo: &str, env: &[(&str, String)]) -> String {
    let pass = dir.join("pass");
    std::fs::write(&pass, "a long passphrase\n").unwrap();
    let pass = pass.to_str().unwrap().to_string();
    let out = rbackup(&["init", "--repo", repo, "--passphrase-file", &pass], env);
    assert!(out.status.success(), "{}", text(&out));
    pass
}

/// `rbackup backup --json` arguments for `dbs` (none: everything) of `source`.
fn backup_args(repo: &str, pass: &str, source: &Server, dbs: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "backup",
        "--repo",
        repo,
        "--json",
        "--passphrase-file",
        pass,
    ]
    .map(String::from)
    .to_vec();
    a.extend(connection(source));
    a.push("--progress=never".into());
    if !dbs.is_empty() {
        a.push("--databases".into());
        a.extend(dbs.iter().map(|d| d.to_string()));
    }
    a
}

fn run_backup(
    repo: &str,
    pass: &str,
    source: &Server,
    dbs: &[&str],
    env: &[(&str, String)],
) -> serde_json::Value {
    let a = backup_args(repo, pass, source, dbs);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = rbackup(&a, env);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

fn spawn_backup(
    repo: &str,
    pass: &str,
    source: &Server,
    dbs: &[&str],
    env: &[(&str, String)],
) -> std::process::Child {
    let a = backup_args(repo, pass, source, dbs);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    common::rbackup::command(&a, env)
        .spawn()
        .expect("spawn rbackup")
}

fn finished(child: std::process::Child) -> serde_json::Value {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

fn restore_with(
    repo: &str,
    pass: &str,
    id: &str,
    target: &Server,
    extra: &[&str],
    env: &[(&str, String)],
) {
    let mut load = connection(target);
    load.extend(["--threads=2", "--progress=never"].map(String::from));
    load.extend(extra.iter().map(|s| s.to_string()));
    let a = args(
        &["restore", "--repo", repo, id, "--passphrase-file", pass],
        &load,
    );
    let out = rbackup(&a, env);
    assert!(out.status.success(), "{}", text(&out));
}

/// CHECKSUM TABLE of `db.t` (rows and content).
fn checksum(s: &Server, table: &str) -> String {
    s.sql(&format!("CHECKSUM TABLE {table}"))
}

#[test]
fn a_full_backup_restores_the_accounts_and_leaves_the_restoring_account_alone() {
    let (a, b) = common::start_two(common::options(63, true), common::options(64, false));
    a.sql(
        "CREATE DATABASE acc_db; CREATE TABLE acc_db.t (id INT PRIMARY KEY, v VARCHAR(20)); \
         INSERT INTO acc_db.t VALUES (1, 'one'), (2, 'two'); \
         CREATE USER 'bk_user'@'%' IDENTIFIED BY 'bk-user-pw'; \
         CREATE ROLE bk_role; \
         GRANT SELECT ON acc_db.* TO bk_role; \
         GRANT bk_role TO 'bk_user'@'%'; \
         GRANT INSERT ON acc_db.t TO 'bk_user'@'%'; \
         SET DEFAULT ROLE bk_role FOR 'bk_user'@'%'; \
         DELETE FROM mysql.global_priv WHERE Host = @@hostname; \
         DELETE FROM mysql.proxies_priv WHERE Host = @@hostname; FLUSH PRIVILEGES;",
    );
    // The source's own test account gets a different password: the restore must not
    // carry it over to the target, whose same-named account runs the restore.
    let grants_of = |s: &Server, who: &str| s.sql(&format!("SHOW GRANTS FOR {who}"));
    let target_self_before = grants_of(&b, &format!("'{}'@'localhost'", b.user()));
    let target_root_before = grants_of(&b, "'root'@'localhost'");
    a.sql(&format!(
        "ALTER USER '{}'@'localhost' IDENTIFIED BY 'another-source-pw'",
        a.user()
    ));
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let repo = repo.to_str().unwrap();
    let pass = init_repo(tmp.path(), repo, &[]);
    // The source account's password changed: connect with it.
    let mut dump = vec![
        "--no-defaults".to_string(),
        format!("--socket={}", a.socket().display()),
        format!("-u{}", a.user()),
        "-panother-source-pw".to_string(),
        "--progress=never".to_string(),
    ];
    let mut argv: Vec<String> = [
        "backup",
        "--repo",
        repo,
        "--json",
        "--passphrase-file",
        &pass,
    ]
    .map(String::from)
    .to_vec();
    argv.append(&mut dump);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = rbackup(&argv, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = summary["id"].as_str().unwrap().to_string();

    // The backup holds accounts.json, and `mysql` without its privilege tables.
    let dir = tmp.path().join("files");
    let out = rbackup(
        &[
            "restore",
            "--repo",
            repo,
            &id,
            "--passphrase-file",
            &pass,
            "--to-dir",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("rdump.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["accounts_file"]["file"], "accounts.json",
        "{manifest}"
    );
    let accounts = std::fs::read_to_string(dir.join("accounts.json")).unwrap();
    assert!(
        accounts.contains("bk_user") && accounts.contains("bk_role"),
        "{accounts}"
    );
    assert!(
        !accounts.contains("bk-user-pw"),
        "the password is stored hashed only"
    );
    let mysql = manifest["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "mysql")
        .expect("mysql is in the backup");
    for t in mysql["tables"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        assert!(
            ![
                "global_priv",
                "user",
                "db",
                "tables_priv",
                "roles_mapping",
                "proxies_priv"
            ]
            .contains(&name),
            "mysql.{name} is in the backup"
        );
    }

    // Into a fresh server: the databases and the accounts, SHOW GRANTS identical.
    restore_with(repo, &pass, &id, &b, &[], &[]);
    assert_eq!(checksum(&a, "acc_db.t"), checksum(&b, "acc_db.t"));
    for who in ["'bk_user'@'%'", "bk_role"] {
        assert_eq!(
            grants_of(&a, who),
            grants_of(&b, who),
            "SHOW GRANTS FOR {who}"
        );
    }
    assert!(grants_of(&b, "'bk_user'@'%'").contains("SET DEFAULT ROLE `bk_role`"));
    // The account that ran the restore, and root, are as they were on the target.
    assert_eq!(
        grants_of(&b, &format!("'{}'@'localhost'", b.user())),
        target_self_before
    );
    assert_eq!(grants_of(&b, "'root'@'localhost'"), target_root_before);
    // The restored user logs in with its password.
    let mut login = std::process::Command::new(common::client_bin());
    login.args([
        "--no-defaults",
        &format!("--socket={}", b.socket().display()),
        "-ubk_user",
        "-pbk-user-pw",
        "-e",
        "SELECT v FROM acc_db.t WHERE id = 2",
    ]);
    let out = login.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("two"));
}

/// `db` with `rows` rows of about 100 bytes.
fn make_db(s: &Server, db: &str, rows: u32) {
    s.sql(&format!(
        "CREATE DATABASE {db}; CREATE TABLE {db}.t (id INT PRIMARY KEY, a CHAR(64), b VARCHAR(40)); \
         INSERT INTO {db}.t SELECT seq, SHA2(CONCAT('{db}', seq), 256), CONCAT('row ', seq) FROM {db}.seq_1_to_{rows};"
    ));
}

#[test]
fn one_backup_per_source_at_a_time_and_other_sources_alongside() {
    let (a, b) = common::start_two(common::options(65, true), common::options(66, false));
    make_db(&a, "db1", 5_000);
    make_db(&a, "db2", 5_000);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    let repo = root.to_str().unwrap();
    let pass = init_repo(tmp.path(), repo, &[]);

    // Backup A of db1 is held still once it holds its lock.
    let mut first = spawn_backup(repo, &pass, &a, &["db1"], &[]);
    let unique_lock = || {
        std::fs::read_dir(root.join("locks"))
            .map(|d| {
                d.flatten().any(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("unique-backup-")
                })
            })
            .unwrap_or(false)
    };
    common::stop_when(&mut first, "backup A holds its lock", unique_lock);
    // A second backup of the same source refuses, naming the holder.
    let a_ = backup_args(repo, &pass, &a, &["db1"]);
    let a_: Vec<&str> = a_.iter().map(String::as_str).collect();
    let out = rbackup(&a_, &[]);
    common::resume(&first);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let message = text(&out);
    for part in [
        "locked by backup",
        &format!("pid {}", first.id()),
        "host ",
        "since ",
    ] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
    assert!(out.stdout.is_empty(), "{message}");
    // A backup of another source (db2) runs alongside A; both succeed.
    let other = spawn_backup(repo, &pass, &a, &["db2"], &[]);
    let first = finished(first);
    let other = finished(other);
    // And two started at once, of different databases, both succeed too.
    let (third, fourth) = (
        spawn_backup(repo, &pass, &a, &["db1"], &[]),
        spawn_backup(repo, &pass, &a, &["db2"], &[]),
    );
    let (third, fourth) = (finished(third), finished(fourth));
    let out = rbackup(
        &["list", "--repo", repo, "--json", "--passphrase-file", &pass],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.len(), 4, "{list:?}");

    // Each restores.
    restore_with(repo, &pass, first["id"].as_str().unwrap(), &b, &[], &[]);
    restore_with(repo, &pass, other["id"].as_str().unwrap(), &b, &[], &[]);
    for db in ["db1", "db2"] {
        assert_eq!(
            checksum(&a, &format!("{db}.t")),
            checksum(&b, &format!("{db}.t"))
        );
    }
    for s in [&third, &fourth] {
        restore_with(
            repo,
            &pass,
            s["id"].as_str().unwrap(),
            &b,
            &["--drop-existing"],
            &[],
        );
    }
    for db in ["db1", "db2"] {
        assert_eq!(
            checksum(&a, &format!("{db}.t")),
            checksum(&b, &format!("{db}.t"))
        );
    }
}

/// Storage settings that make an outage fail in seconds, and small packs indexed one by
/// one (so that what an interrupted backup uploaded is reused).
fn quick_failing_env() -> Vec<(&'static str, String)> {
    vec![
        ("RBACKUP_STORAGE_TIMEOUT", "1".into()),
        ("RBACKUP_STORAGE_RETRIES", "1".into()),
        ("RBACKUP_STORAGE_RETRY_TIMEOUT", "3".into()),
        ("RBACKUP_PACK_SIZE", (64 * 1024).to_string()),
        ("RBACKUP_INDEX_EVERY", "1".into()),
    ]
}

fn snapshots(repo: &str, pass: &str, env: &[(&str, String)]) -> usize {
    snapshot_count(repo, &["--passphrase-file", pass], env)
}

#[test]
fn an_s3_server_that_stops_mid_backup_fails_it_and_the_next_reuses_its_packs() {
    let a = Server::start(common::options(67, true));
    make_db(&a, "big", 20_000);
    let tmp = tempfile::tempdir().unwrap();
    let tuning = quick_failing_env();

    // How many packs the backup makes (a local repository with the same settings).
    let local = tmp.path().join("local");
    let local = local.to_str().unwrap();
    let lpass = init_repo(tmp.path(), local, &[]);
    run_backup(local, &lpass, &a, &["big"], &tuning);
    let packs = walk_count(&tmp.path().join("local/data"));
    assert!(packs >= 8, "{packs} packs");

    let moto = common::s3::MotoServer::start();
    moto.create_bucket("rbk");
    let mut env = moto.env();
    env.extend(tuning.iter().cloned());
    let repo = "s3://rbk/f";
    let sub = tmp.path().join("s3");
    std::fs::create_dir(&sub).unwrap();
    let pass = init_repo(&sub, repo, &env);

    let mut child = spawn_backup(repo, &pass, &a, &["big"], &env);
    let want = packs * 3 / 4;
    common::stop_when(&mut child, "3/4 of the packs indexed", || {
        moto.objects("rbk", "f/index/").len() >= want
    });
    let uploaded: u64 = moto.objects("rbk", "f/data/").iter().map(|(_, n)| n).sum();
    moto.pause();
    common::resume(&child);
    let out = child.wait_with_output().unwrap();
    moto.resume();
    let message = text(&out);
    eprintln!("the backup during the outage: {message}");
    assert!(!out.status.success(), "{message}");
    assert!(out.stdout.is_empty(), "{message}");
    assert!(
        ["data/", "index/", "snapshots/", "locks/"]
            .iter()
            .any(|p| message.contains(p)),
        "the error names no object: {message}"
    );
    assert_eq!(snapshots(repo, &pass, &env), 0, "{message}");

    // The server is back: the next backup completes, reusing what was uploaded.
    let second = run_backup(repo, &pass, &a, &["big"], &env);
    let logical = second["stats"]["logical_bytes"].as_u64().unwrap();
    let new = second["stats"]["new_bytes"].as_u64().unwrap();
    eprintln!(
        "uploaded before the outage: {uploaded} bytes stored; then {new} of {logical} logical bytes new"
    );
    assert!(new * 2 < logical, "{new} of {logical} bytes stored again");
    assert_eq!(snapshots(repo, &pass, &env), 1);
}

fn walk_count(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            n += walk_count(&e.path());
        } else {
            n += 1;
        }
    }
    n
}

/// A tmpfs mounted for a test, unmounted when dropped.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_fails_the_backup_and_the_older_backup_still_restores() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: mounting a small tmpfs (a full disk) needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    if !status.success() {
        eprintln!(
            "skipped: could not mount a tmpfs ({status}), e.g. in a container without CAP_SYS_ADMIN"
        );
        return;
    }
    let _mounted = Mounted(mnt.clone());
    let (a, b) = common::start_two(common::options(68, true), common::options(69, false));
    make_db(&a, "small", 500);
    // About 6 MB that does not compress (64-byte hashes as binary).
    let parts: Vec<String> = (0..16)
        .map(|i| format!("UNHEX(SHA2(CONCAT(seq, '-{i}'), 512))"))
        .collect();
    a.sql(&format!(
        "CREATE DATABASE big; CREATE TABLE big.t (id INT PRIMARY KEY, v BLOB); \
         INSERT INTO big.t SELECT seq, CONCAT({}) FROM big.seq_1_to_6000;",
        parts.join(", ")
    ));
    let repo = mnt.join("repo");
    let repo = repo.to_str().unwrap();
    let pass = init_repo(tmp.path(), repo, &[]);
    let older = run_backup(repo, &pass, &a, &["small"], &[]);

    let argv = backup_args(repo, &pass, &a, &["small", "big"]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = rbackup(&argv, &[]);
    let message = text(&out);
    eprintln!("the backup onto a full disk: {message}");
    assert!(!out.status.success(), "{message}");
    assert!(out.stdout.is_empty(), "{message}");
    assert!(
        message.contains("No space left on device") || message.contains("os error 28"),
        "{message}"
    );
    assert!(
        ["data/", "index/", "snapshots/"]
            .iter()
            .any(|p| message.contains(p)),
        "the error names no object: {message}"
    );
    assert_eq!(snapshots(repo, &pass, &[]), 1, "{message}");

    // The older backup restores from the full disk.
    restore_with(repo, &pass, older["id"].as_str().unwrap(), &b, &[], &[]);
    assert_eq!(checksum(&a, "small.t"), checksum(&b, "small.t"));
}

/// `rbackup verify ... --drill ARGS`, with its exit code and output.
fn drill(repo: &str, key: &str, more: &[&str]) -> std::process::Output {
    let mut a = vec!["verify", "--repo", repo, "--identity-file", key, "--drill"];
    a.extend_from_slice(more);
    rbackup(&a, &[])
}

fn last_drill(repo: &str, key: &str, id: &str) -> serde_json::Value {
    let out = rbackup(
        &["list", "--repo", repo, "--identity-file", key, "--json"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    list.into_iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no backup {id}"))["last_drill"]
        .clone()
}

/// A backup whose data is `lossy`'s but whose recorded fingerprints of `table`'s chunk
/// files are `good`'s: what a backup looks like whose writer lost a row after the dump
/// fingerprinted it (every pack valid, the manifest's checksums matching the files).
/// Made with the library as `rbackup backup` makes one: each file of `lossy` read back
/// and written again (deduplicated: nothing new is stored), the catalog entries' meta
/// of `table`'s chunk files taken from `good`, then committed.
fn forge(repo: &str, key: &str, lossy: &str, good: &str, table: &str) -> String {
    use rdump::backup::store::StoreOptions;
    use rdump::backup::writer::SnapshotInfo;
    use rdump::backup::{Access, BackupWriter, RepositoryReader, WriterOptions};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let access = Access::identity_file(Path::new(key)).unwrap();
        let repo = rdump::backup::open(repo, &access, &StoreOptions::default())
            .await
            .unwrap();
        let reader = RepositoryReader::open(repo.clone()).await.unwrap();
        let (_, good) = reader.snapshot(good).await.unwrap();
        let (_, lossy) = reader.snapshot(lossy).await.unwrap();
        let mut recorded = std::collections::HashMap::new();
        let mut catalog = reader.catalog(&good);
        while let Some(e) = catalog.next().await.unwrap() {
            recorded.insert(e.name.clone(), e.meta.clone());
        }
        let writer = BackupWriter::start(repo, WriterOptions::default())
            .await
            .unwrap();
        let mut catalog = reader.catalog(&lossy);
        let mut swapped = 0;
        while let Some(e) = catalog.next().await.unwrap() {
            let mut file = writer.file(&e.name);
            let mut data = reader.read_file(&e);
            while let Some(chunk) = data.next_chunk().await.unwrap() {
                file.write(&chunk).unwrap();
            }
            let meta = if e.name.starts_with(&format!("{table}.")) && e.name.ends_with(".csv") {
                swapped += 1;
                recorded[&e.name].clone()
            } else {
                e.meta.clone()
            };
            writer.close_file(file, meta).unwrap();
        }
        assert!(swapped > 0, "no chunk file of {table} in the backup");
        let info = SnapshotInfo {
            time: None,
            host: None,
            tags: vec!["forged".into()],
            meta: lossy.meta.clone(),
        };
        writer.commit(info).await.unwrap().0
    })
}

/// Restore drills: the fixture's backup passes a drill into a throwaway server (so the
/// fingerprints of every type the fixture holds read back equal); a small database's
/// backup passes a drill into a given target; a backup whose recorded fingerprints do not
/// match its data fails naming the table (exit 6); with the pack holding a table's rows
/// damaged, the drill fails naming the table (exit 5); `list` shows each backup's last
/// drill.
#[test]
fn restore_drills_pass_on_good_backups_and_name_the_table_otherwise() {
    let (a, b) = servers();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let repo = repo.to_str().unwrap();
    // An X25519 reader key: no scrypt on every command.
    let identity = age::x25519::Identity::generate();
    let key = tmp.path().join("reader.key");
    {
        use age::secrecy::ExposeSecret;
        std::fs::write(&key, format!("{}\n", identity.to_string().expose_secret())).unwrap();
    }
    let pass = key.to_str().unwrap();
    let recipient = identity.to_public().to_string();
    let out = rbackup(&["init", "--repo", repo, "--recipient", &recipient], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let keys = ["--identity-file", pass];
    let started = std::time::Instant::now();

    // The fidelity fixture, into a throwaway server (default chunks: few files, since
    // staging decrypts a whole pack per file).
    let mut dump = connection(&a);
    dump.extend(["--databases", "fidelity", "fid elity-2", "--progress=never"].map(String::from));
    let mut backup_args = vec!["backup", "--repo", repo, "--json"];
    backup_args.extend_from_slice(&keys);
    let out = rbackup(&args(&backup_args, &dump), &[]);
    assert!(out.status.success(), "{}", text(&out));
    let fixture: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fixture_id = fixture["id"].as_str().unwrap().to_string();
    assert!(fixture["meta"]["objects"]["fidelity"]["views"].as_u64() > Some(0));
    let out = drill(repo, pass, &[&fixture_id, "--threads=2"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("drill PASSED"), "{}", text(&out));
    assert_eq!(last_drill(repo, pass, &fixture_id)["verdict"], "passed");
    // The scratch server and the staging directory are gone.
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("rbackup-drill-")
        })
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    eprintln!("fixture backup and drill: {:?}", started.elapsed());

    // A small database: t's rows in packs of their own (first backup), then one more table.
    a.sql(
        "CREATE DATABASE drill; CREATE TABLE drill.t (id INT PRIMARY KEY, v VARCHAR(20)); \
         INSERT INTO drill.t SELECT seq, CONCAT('row ', seq) FROM drill.seq_1_to_40;",
    );
    let small = |extra: &[&str]| {
        let mut dump = connection(&a);
        dump.extend(["--databases", "drill", "--progress=never"].map(String::from));
        dump.extend(extra.iter().map(|s| s.to_string()));
        let mut args_ = vec!["backup", "--repo", repo, "--identity-file", pass];
        args_.extend(dump.iter().map(String::as_str));
        let out = rbackup(&args_, &[]);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let packs = || -> std::collections::BTreeSet<PathBuf> { walk(&Path::new(repo).join("data")) };
    let before = packs();
    let first = small(&[]);
    let first_packs: Vec<PathBuf> = packs().difference(&before).cloned().collect();
    a.sql("CREATE TABLE drill.u (id INT PRIMARY KEY); INSERT INTO drill.u VALUES (1),(2),(3);");
    let good = small(&[]);
    assert_ne!(first, good);

    // Into a given target (the data stays there).
    let target_conn = connection(&b);
    let mut drill_args = vec![good.as_str(), "--target"];
    drill_args.extend(target_conn.iter().map(String::as_str));
    drill_args.push("--threads=2");
    let out = drill(repo, pass, &drill_args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(b.sql("SELECT COUNT(*) FROM drill.t").trim(), "40");
    let last = last_drill(repo, pass, &good);
    assert_eq!(last["verdict"], "passed", "{last}");
    assert_eq!(last["tables_compared"], 2, "{last}");
    eprintln!("small backups and target drill: {:?}", started.elapsed());

    // A row lost between the dump's fingerprint and the stored data.
    a.sql("DELETE FROM drill.t WHERE id = 17");
    let lossy = small(&[]);
    let forged = forge(repo, pass, &lossy, &good, "drill/t");
    let out = drill(repo, pass, &[&forged]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("differs    drill.t: 39 rows restored, 40 recorded"),
        "{}",
        text(&out)
    );
    assert!(!stdout.contains("drill.u"), "{}", text(&out));
    assert_eq!(last_drill(repo, pass, &forged)["verdict"], "failed");

    // The packs holding t's rows damaged: the drill names the table and loads nothing.
    assert!(!first_packs.is_empty());
    for p in &first_packs {
        let mut bytes = std::fs::read(p).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        std::fs::write(p, bytes).unwrap();
    }
    let out = drill(repo, pass, &[&good]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("damaged    drill.t"),
        "{}",
        text(&out)
    );
    let last = last_drill(repo, pass, &good);
    assert_eq!(last["verdict"], "failed", "{last}");
}

fn walk(dir: &Path) -> std::collections::BTreeSet<PathBuf> {
    let mut out = std::collections::BTreeSet::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.insert(p);
            }
        }
    }
    out
}
