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
