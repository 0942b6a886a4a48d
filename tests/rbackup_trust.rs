//! `rbackup verify` and `rbackup prune` (issue 14) on local repositories and a real S3
//! server (moto_server): damage named with the backups and files it breaks, a partial
//! `--read-data`, prune end to end with real backups of a server, prune refused under a
//! backup's lock, prune killed with SIGKILL after each of its steps, `--dry-run`, the
//! policy applied per group (source, scope).

mod common;

use common::rbackup::{rbackup, rbackup_on, text};

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use age::secrecy::ExposeSecret;
use rdump::backup::keys::WriterKey;
use rdump::backup::store::StoreOptions;
use rdump::backup::writer::SnapshotInfo;
use rdump::backup::{self, Access, BackupWriter, InitOptions, WriterOptions};
use serde_json::json;

/// A repository with a reader identity file; the writer key for library backups.
struct Repo {
    _dir: tempfile::TempDir,
    root: PathBuf,
    url: String,
    id_file: String,
    writer: WriterKey,
}

impl Repo {
    async fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        let url = root.to_str().unwrap().to_string();
        Repo::init(dir, root, url, &StoreOptions::default()).await
    }

    async fn init(
        dir: tempfile::TempDir,
        root: PathBuf,
        url: String,
        options: &StoreOptions,
    ) -> Repo {
        let identity = age::x25519::Identity::generate();
        let id_path = dir.path().join("reader.key");
        std::fs::write(
            &id_path,
            format!("{}\n", identity.to_string().expose_secret()),
        )
        .unwrap();
        let (_, writer) = backup::init(
            &url,
            InitOptions {
                recipients: vec![identity.to_public().to_string()],
                ..Default::default()
            },
            options,
        )
        .await
        .unwrap();
        Repo {
            id_file: id_path.to_str().unwrap().to_string(),
            _dir: dir,
            root,
            url,
            writer: writer.unwrap(),
        }
    }

    fn keys(&self) -> [&str; 2] {
        ["--identity-file", &self.id_file]
    }

    /// `rbackup ARGS --repo URL --identity-file F`.
    fn run(&self, args: &[&str], env: &[(&str, String)]) -> Output {
        let mut a = args.to_vec();
        a.extend(["--repo", &self.url]);
        a.extend(self.keys());
        rbackup(&a, env)
    }

    /// `rbackup ARGS --repo URL --identity-file F <server's connection options> TAIL`.
    fn run_on(&self, args: &[&str], server: &common::Server, tail: &[&str]) -> Output {
        let mut a = args.to_vec();
        a.extend(["--repo", &self.url]);
        a.extend(self.keys());
        rbackup_on(&a, server, tail)
    }

    /// The repository opened through the library with the writer key.
    async fn open_writer(&self, options: &StoreOptions) -> backup::Repository {
        backup::open(&self.url, &Access::Writer(self.writer.clone()), options)
            .await
            .unwrap()
    }

    /// One backup of `files` through the library with the writer key; small packs so
    /// that a repository of a few MiB has many.
    async fn backup(&self, files: &[(String, Vec<u8>)], options: &StoreOptions) -> String {
        let repo = self.open_writer(options).await;
        let w = BackupWriter::start(
            repo,
            WriterOptions {
                pack_size: 128 * 1024,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        for (name, data) in files {
            let mut f = w.file(name);
            f.write(data).unwrap();
            w.close_file(f, json!(null)).unwrap();
        }
        w.commit(SnapshotInfo::default()).await.unwrap().0
    }

    fn bytes(&self) -> u64 {
        walk(&self.root)
            .iter()
            .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum()
    }
}

/// Rows of text no other call makes (`tag` differs), `n` of them.
fn rows(tag: &str, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        let h = blake3::hash(format!("{tag}-{i}").as_bytes()).to_hex();
        out.extend_from_slice(format!("INSERT INTO t VALUES ({i},'{tag}','{h}');\n").as_bytes());
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn verify_json(repo: &Repo, extra: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let mut a = vec!["verify", "--json"];
    a.extend_from_slice(extra);
    let out = repo.run(&a, &[]);
    let v = serde_json::from_slice(&out.stdout).unwrap_or(json!(null));
    (out.status.code(), v, text(&out))
}

/// Restores backup `id` into a new directory and returns its files and contents.
fn restore_files(repo: &Repo, id: &str, env: &[(&str, String)]) -> BTreeMap<String, Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("r");
    let out = repo.run(&["restore", id, "--to-dir", target.to_str().unwrap()], env);
    assert!(out.status.success(), "{}", text(&out));
    walk(&target)
        .into_iter()
        .map(|p| {
            let name = p
                .strip_prefix(&target)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

fn list_ids(repo: &Repo, env: &[(&str, String)]) -> Vec<String> {
    let out = repo.run(&["list", "--json"], env);
    assert!(out.status.success(), "{}", text(&out));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    list.iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

fn flip_byte(path: &Path) -> Vec<u8> {
    let original = std::fs::read(path).unwrap();
    let mut bytes = original.clone();
    let n = bytes.len() / 2;
    bytes[n] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
    original
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_each_damaged_object_with_the_backups_and_files_it_breaks() {
    let repo = Repo::new().await;
    let files: Vec<(String, Vec<u8>)> = (0..4)
        .map(|t| (format!("db/t{t}.00000.sql"), rows(&format!("t{t}"), 12_000)))
        .chain([("rdump.json".to_string(), b"{}\n".to_vec())])
        .collect();
    let id = repo.backup(&files, &StoreOptions::default()).await;
    let short = &id[..10];

    // A good repository: every level passes.
    for extra in [&[][..], &["--read-data"][..], &["--read-data=50"][..]] {
        let (code, v, out) = verify_json(&repo, extra);
        assert_eq!(code, Some(0), "{extra:?}: {out}");
        assert_eq!(v["damage"], 0, "{out}");
        assert_eq!(v["snapshots"], 1, "{out}");
        assert!(v["packs"].as_u64().unwrap() >= 8, "{out}");
    }
    let (_, all, _) = verify_json(&repo, &["--read-data"]);
    assert_eq!(all["packs_read"], all["packs"]);
    assert!(all["blobs_read"].as_u64().unwrap() > 40, "{all}");
    // A random share of the packs: some, not all (about half of at least 8; the chance
    // of none or all of 8 is 1/128, so try a few seeds' worth of runs).
    let partial = (0..5)
        .map(|_| {
            verify_json(&repo, &["--read-data=50"]).1["packs_read"]
                .as_u64()
                .unwrap()
        })
        .collect::<Vec<_>>();
    let packs = all["packs"].as_u64().unwrap();
    assert!(
        partial.iter().any(|&n| n > 0 && n < packs),
        "{partial:?} of {packs}"
    );
    let out = repo.run(&["verify", "--read-data=0"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // Without a key: the storage hashes only, and it says what it did not check.
    let out = rbackup(&["verify", "--repo", &repo.url], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("not checked: without a reader key"),
        "{}",
        text(&out)
    );

    let packs: Vec<PathBuf> = walk(&repo.root.join("data"));
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let names_a_file = |out: &str| names.iter().any(|n| out.contains(n));

    // A flipped byte in a pack: named, with the backup and a file it breaks; the same
    // without a key (the pack only).
    let victim = &packs[packs.len() / 2];
    let original = flip_byte(victim);
    let pack_id = victim.file_name().unwrap().to_str().unwrap();
    let pack_name = format!("data/{}/{pack_id}", &pack_id[..2]);
    let out = repo.run(&["verify"], &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(5), "{t}");
    assert!(
        t.contains(&format!("DAMAGED {pack_name}: its content hashes to")),
        "{t}"
    );
    assert!(t.contains(&format!("breaks backup {short}")), "{t}");
    // The middle pack may hold the catalog's blobs (then the whole backup is named).
    assert!(names_a_file(&t) || t.contains("the whole backup"), "{t}");
    let out = rbackup(&["verify", "--repo", &repo.url], &[]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("DAMAGED {pack_name}")),
        "{}",
        text(&out)
    );
    std::fs::write(victim, &original).unwrap();

    // A deleted pack: missing, named, with what it breaks.
    std::fs::remove_file(victim).unwrap();
    let out = repo.run(&["verify"], &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(5), "{t}");
    assert!(
        t.contains(&format!("MISSING {pack_name}: listed by an index")),
        "{t}"
    );
    assert!(
        t.contains(&format!("breaks backup {short}"))
            && (names_a_file(&t) || t.contains("the whole backup")),
        "{t}"
    );
    std::fs::write(victim, &original).unwrap();
    let (code, _, t) = verify_json(&repo, &["--read-data"]);
    assert_eq!(code, Some(0), "{t}");

    // A deleted index: its packs are traced (their tables), named, with what breaks.
    let index = walk(&repo.root.join("index")).pop().unwrap();
    let index_bytes = std::fs::read(&index).unwrap();
    std::fs::remove_file(&index).unwrap();
    let out = repo.run(&["verify"], &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(5), "{t}");
    assert!(t.contains("UNINDEXED data/"), "{t}");
    assert!(t.contains("no index lists it"), "{t}");
    assert!(
        t.contains(&format!("breaks backup {short}")) && names_a_file(&t),
        "{t}"
    );
    std::fs::write(&index, &index_bytes).unwrap();
    // A damaged index: named.
    let original = flip_byte(&index);
    let out = repo.run(&["verify"], &[]);
    let index_name = format!("index/{}", index.file_name().unwrap().to_str().unwrap());
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("DAMAGED {index_name}")),
        "{}",
        text(&out)
    );
    std::fs::write(&index, &original).unwrap();

    // A damaged snapshot: the whole backup.
    let snap = walk(&repo.root.join("snapshots")).pop().unwrap();
    let original = flip_byte(&snap);
    let out = repo.run(&["verify"], &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(5), "{t}");
    assert!(t.contains(&format!("DAMAGED snapshots/{id}")), "{t}");
    assert!(
        t.contains(&format!("breaks backup {short}")) && t.contains("the whole backup"),
        "{t}"
    );
    std::fs::write(&snap, &original).unwrap();

    // Repaired: passes again (drills are tested in tests/rbackup_roundtrip.rs).
    let (code, _, t) = verify_json(&repo, &["--read-data"]);
    assert_eq!(code, Some(0), "{t}");
}

/// Four backups through the library: shared rows and rows of their own, packs mixing
/// both (so that removing the first ones leaves packs mostly unused: repacked).
async fn four_backups(repo: &Repo) -> Vec<(String, Vec<(String, Vec<u8>)>)> {
    let mut out = Vec::new();
    for b in 0..4 {
        let files = vec![
            (
                format!("db/own.0000{b}.sql"),
                rows(&format!("own{b}"), 9_000),
            ),
            ("db/shared.00000.sql".to_string(), rows("shared", 3_000)),
            (
                "rdump.json".to_string(),
                format!("{{\"backup\":{b}}}\n").into_bytes(),
            ),
        ];
        let id = repo.backup(&files, &StoreOptions::default()).await;
        out.push((id, files));
        // Distinct snapshot times (second resolution) keep the order plain.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    out
}

fn as_map(files: &[(String, Vec<u8>)]) -> BTreeMap<String, Vec<u8>> {
    files.iter().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_is_refused_under_a_backup_and_dry_run_and_empty_policies_remove_nothing() {
    let repo = Repo::new().await;
    let backups = four_backups(&repo).await;
    let before = repo.bytes();

    // A backup in progress holds its shared lock: prune refuses, naming it.
    let r = repo.open_writer(&StoreOptions::default()).await;
    let running = BackupWriter::start(r, WriterOptions::default())
        .await
        .unwrap();
    let out = repo.run(&["prune", "--keep-last", "1"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("in use by backup"), "{}", text(&out));
    running.abort().await;

    // --dry-run: says what would go and why, removes nothing.
    let out = repo.run(&["prune", "--keep-last", "2", "--dry-run"], &[]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for (id, _) in &backups[..2] {
        assert!(t.contains(&format!("remove {}", &id[..10])), "{t}");
    }
    for (id, _) in &backups[2..] {
        assert!(
            t.contains(&format!("keep   {}", &id[..10])) && t.contains("last backup"),
            "{t}"
        );
    }
    assert!(
        t.contains("would repack") && t.contains("would free"),
        "{t}"
    );
    assert_eq!(list_ids(&repo, &[]).len(), 4);
    assert_eq!(repo.bytes(), before);

    // No --keep-*: nothing at all.
    let out = repo.run(&["prune"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("nothing is removed"), "{}", text(&out));
    assert_eq!(list_ids(&repo, &[]).len(), 4);
    assert_eq!(repo.bytes(), before);
}

/// Runs prune paused after `step`, kills it with SIGKILL there.
fn prune_killed_after(repo: &Repo, step: &str) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rbackup"));
    cmd.args(["prune", "--keep-last", "2", "--repo", &repo.url])
        .args(repo.keys())
        .env("RBACKUP_TEST_PRUNE_PAUSE", step)
        .env_remove("RBACKUP_REPO")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut paused = false;
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if line.contains("paused after") {
            paused = true;
            break;
        }
        eprintln!("prune: {line}");
    }
    assert!(paused, "prune did not reach {step}: {:?}", child.wait());
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// A prune paused past its lock's ttl is invisible to backups (a stale exclusive lock
/// does not stop them), which may then deduplicate against packs the prune planned to
/// delete. Before each deleting step prune re-checks that nothing appeared: here a backup
/// (a snapshot object) appears while prune is paused after writing its new index; prune
/// stops, deleting nothing, and the repository still verifies with every backup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_that_appears_while_prune_is_paused_stops_it_before_any_delete() {
    let repo = Repo::new().await;
    let _backups = four_backups(&repo).await;
    let go = repo._dir.path().join("go-on");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rbackup"))
        .args(["prune", "--keep-last", "2", "--repo", &repo.url])
        .args(repo.keys())
        .env(
            "RBACKUP_TEST_PRUNE_PAUSE",
            format!("indexed:{}", go.display()),
        )
        .env_remove("RBACKUP_REPO")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut paused = false;
    for line in lines.by_ref() {
        if line.unwrap().contains("paused after") {
            paused = true;
            break;
        }
    }
    assert!(paused, "prune did not pause");
    // What a backup that went ahead would leave: a new snapshot object.
    let snaps = walk(&repo.root.join("snapshots"));
    let copy = snaps[0].with_file_name("f".repeat(64));
    std::fs::copy(&snaps[0], &copy).unwrap();
    std::fs::write(&go, b"").unwrap();
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "{rest:?}");
    assert!(
        rest.join("\n").contains("appeared while prune ran"),
        "{rest:?}"
    );
    std::fs::remove_file(&copy).unwrap();
    // Nothing was deleted: all four backups are still there and verify.
    assert_eq!(list_ids(&repo, &[]).len(), 4);
    let (code, _, t) = verify_json(&repo, &["--read-data"]);
    assert_eq!(code, Some(0), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_killed_after_any_step_leaves_a_repository_that_verifies_and_restores() {
    let template = Repo::new().await;
    let backups = four_backups(&template).await;
    for step in [
        "repacked",
        "indexed",
        "snapshots",
        "indexes-deleted",
        "first-pack-deleted",
    ] {
        // A fresh copy of the four backups for each step.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        let status = Command::new("cp")
            .args([
                "-a",
                template.root.to_str().unwrap(),
                root.to_str().unwrap(),
            ])
            .status()
            .unwrap();
        assert!(status.success());
        let repo = Repo {
            url: root.to_str().unwrap().to_string(),
            root,
            id_file: template.id_file.clone(),
            writer: template.writer.clone(),
            _dir: dir,
        };
        prune_killed_after(&repo, step);
        let (code, v, t) = verify_json(&repo, &["--read-data"]);
        assert_eq!(code, Some(0), "killed after {step}: {t}");
        assert_eq!(v["damage"], 0, "{t}");
        for (id, files) in &backups[2..] {
            assert_eq!(restore_files(&repo, id, &[]), as_map(files), "after {step}");
        }
        // The next prune finishes the work.
        let out = repo.run(&["prune", "--keep-last", "2"], &[]);
        assert!(out.status.success(), "after {step}: {}", text(&out));
        let (code, v, t) = verify_json(&repo, &["--read-data"]);
        assert_eq!(code, Some(0), "{t}");
        let notices = v["findings"].as_array().unwrap().len();
        assert_eq!(notices, 0, "nothing left over after the second prune: {t}");
        assert_eq!(v["snapshots"], 2, "{t}");
        for (id, files) in &backups[2..] {
            assert_eq!(restore_files(&repo, id, &[]), as_map(files), "after {step}");
        }
    }
}

#[test]
fn prune_keeps_the_last_two_of_four_real_backups_with_their_binlog_windows() {
    let server = common::Server::start(common::options(71, true));
    server.sql(
        "SET SESSION max_recursive_iterations = 100000; CREATE DATABASE shop; CREATE TABLE shop.stay (id INT PRIMARY KEY, v VARCHAR(64)); \
         CREATE TABLE shop.churn (id INT PRIMARY KEY, v VARCHAR(64));\
         INSERT INTO shop.stay WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM s WHERE n<5000) \
         SELECT n, SHA2(n, 256) FROM s;",
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let repo = rt.block_on(Repo::new());
    let archive = || {
        let out = repo.run_on(&["binlog", "--once"], &server, &[]);
        assert!(out.status.success(), "{}", text(&out));
    };
    let mut ids = Vec::new();
    for round in 0..4 {
        server.sql(&format!(
            "SET SESSION max_recursive_iterations = 100000; DELETE FROM shop.churn; INSERT INTO shop.churn WITH RECURSIVE s(n) AS \
             (SELECT 1 UNION ALL SELECT n+1 FROM s WHERE n<20000) \
             SELECT n, SHA2(CONCAT(n, '-{round}'), 256) FROM s; FLUSH BINARY LOGS;"
        ));
        archive();
        let out = repo.run_on(
            &["backup"],
            &server,
            &["--databases", "shop", "--threads=2", "--progress=never"],
        );
        assert!(out.status.success(), "{}", text(&out));
        ids.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    server
        .sql("INSERT INTO shop.stay VALUES (100001, 'after the last backup'); FLUSH BINARY LOGS;");
    archive();
    let kept_before: Vec<_> = ids[2..]
        .iter()
        .map(|id| restore_files(&repo, id, &[]))
        .collect();
    let windows_before = list_windows(&repo);
    let segments = |repo: &Repo| walk(&repo.root.join("binlog")).len();
    let segments_before = segments(&repo);
    let before = repo.bytes();

    // --dry-run names the binlog that would go, and removes nothing.
    let out = repo.run(&["prune", "--keep-last", "2", "--dry-run"], &[]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("binlog source") && t.contains("the oldest kept backup of this source"),
        "{t}"
    );
    assert_eq!(segments(&repo), segments_before);

    let out = repo.run(&["prune", "--keep-last", "2"], &[]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for id in &ids[..2] {
        assert!(t.contains(&format!("removed {}", &id[..10])), "{t}");
    }
    let mut left = list_ids(&repo, &[]);
    left.sort();
    let mut kept = ids[2..].to_vec();
    kept.sort();
    assert_eq!(left, kept);
    let after = repo.bytes();
    assert!(
        after < before * 3 / 4,
        "the repository shrinks: {before} -> {after} bytes"
    );
    // The binlog before the third backup is gone; the kept backups' windows are whole.
    assert!(segments(&repo) < segments_before, "{t}");
    let windows_after = list_windows(&repo);
    for id in &ids[2..] {
        assert!(windows_after[id]["from"].is_object(), "{windows_after:?}");
        assert_eq!(windows_after[id], windows_before[id], "backup {id}");
        assert_eq!(
            windows_after[id]["ends"]["kind"], "latest",
            "{windows_after:?}"
        );
    }
    for (id, files) in ids[2..].iter().zip(&kept_before) {
        assert_eq!(&restore_files(&repo, id, &[]), files, "backup {id}");
    }
    let out = repo.run(&["restore", &ids[0], "--to-dir", "/nonexistent/x"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("no backup"), "{}", text(&out));
    let (code, v, t) = verify_json(&repo, &["--read-data"]);
    assert_eq!(code, Some(0), "{t}");
    assert!(v["binlog_segments"].as_u64().unwrap() > 0, "{t}");

    // A damaged segment: named, with the point-in-time recovery it breaks.
    let victim = walk(&repo.root.join("binlog"))
        .into_iter()
        .rfind(|p| !p.to_str().unwrap().contains("/gaps/"))
        .unwrap();
    flip_byte(&victim);
    let out = repo.run(&["verify"], &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(5), "{t}");
    let name = victim.strip_prefix(&repo.root).unwrap().to_str().unwrap();
    assert!(t.contains(&format!("DAMAGED {name}")), "{t}");
    assert!(t.contains("point-in-time recovery past"), "{t}");
}

/// Each backup's restorable window, as `list --json` says it.
fn list_windows(repo: &Repo) -> BTreeMap<String, serde_json::Value> {
    let out = repo.run(&["list", "--json"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    list.iter()
        .map(|s| (s["id"].as_str().unwrap().to_string(), s["window"].clone()))
        .collect()
}

/// Binlog events from `start` to `end` of a file, as a server writes them: each with its
/// header (size, and the position where it ends), a body of noise and its CRC32.
fn events(start: u64, end: u64) -> Vec<u8> {
    common::rbackup::binlog_events(start, end, |pos, len| {
        rows(&format!("{start}-{pos}"), (len + 23) / 40 + 1)
            .into_iter()
            .take(len)
            .collect()
    })
}

/// Segments of `source` (server identity `server`) committed as the archiver commits
/// them, with the writer key: `file` from `bounds[0]` to `bounds[1]`, then on.
async fn archive_segments(repo: &Repo, source: &str, server: &str, file: &str, bounds: &[u64]) {
    use rdump::backup::segments::RepositorySegments;
    use rdump::binlog::segment::SegmentStore;
    let r = repo.open_writer(&StoreOptions::default()).await;
    let mut archive = RepositorySegments::open_archiver(r, source).await.unwrap();
    let t = chrono::Utc::now().timestamp() as u32;
    for w in bounds.windows(2) {
        let bytes = events(w[0], w[1]);
        let segment = common::rbackup::segment(file, (w[0], w[1]), t, &bytes, server, None);
        archive.commit(&segment, &bytes).await.unwrap();
    }
    archive.release().await.unwrap();
}

/// The segments under `binlog/<source>/`, as `<start>-<end>` of their names.
fn segment_ranges(repo: &Repo, source: &str) -> Vec<String> {
    walk(&repo.root.join("binlog").join(source))
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            let (start, end) = name.split_once('.').unwrap().0.split_once('-').unwrap();
            format!(
                "{}-{}",
                start.parse::<u64>().unwrap(),
                end.parse::<u64>().unwrap()
            )
        })
        .collect()
}

/// Issue 14: prune cut every binlog archive at the oldest kept backup of any source. In a
/// repository of three servers whose binlog files have the same names, each archive is
/// now cut at the oldest kept backup of its own source (B at its own b2, though A's and
/// C's older kept backups fall inside its archive), and the archive of D, a server no
/// longer backed up, is kept whole and said so though other servers' kept backups fall
/// inside it. The policy is applied per source (each source keeps its newest). The kept
/// backups' windows are unchanged and the repository verifies with --read-data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_cuts_each_binlog_source_at_its_own_oldest_kept_backup() {
    let repo = Repo::new().await;
    let file = "mysql-bin.000001";
    let bounds = [4, 1000, 2000, 3000, 4000, 5000];
    for (source, server) in [
        ("A", "srv-a"),
        ("B", "srv-b"),
        ("C", "srv-c"),
        ("D", "srv-d"),
    ] {
        archive_segments(&repo, source, server, file, &bounds).await;
    }
    // Oldest first: keep-last 1 keeps the newest of each source: c1, a2 and b2.
    let backups = [
        ("c1", "C", "srv-c", 2000),
        ("a1", "A", "srv-a", 1000),
        ("b1", "B", "srv-b", 1000),
        ("a2", "A", "srv-a", 3000),
        ("b2", "B", "srv-b", 4000),
    ];
    let mut ids = BTreeMap::new();
    for (n, (name, source, server, pos)) in backups.iter().enumerate() {
        let r = repo.open_writer(&StoreOptions::default()).await;
        let w = BackupWriter::start(r, WriterOptions::default())
            .await
            .unwrap();
        let mut f = w.file("db/t.00000.sql");
        f.write(&rows(name, 100)).unwrap();
        w.close_file(f, json!(null)).unwrap();
        let (id, _) = w
            .commit(SnapshotInfo {
                time: Some(format!("2026-11-0{}T00:00:00Z", n + 1)),
                meta: json!({
                    "coordinates": {"file": file, "position": pos},
                    "binlog_source": source,
                    "server_identity": server,
                }),
                ..Default::default()
            })
            .await
            .unwrap();
        ids.insert(*name, id);
    }
    let windows_before = list_windows(&repo);
    let all: Vec<String> = bounds
        .windows(2)
        .map(|w| format!("{}-{}", w[0], w[1]))
        .collect();

    let out = repo.run(&["prune", "--keep-last", "1", "--dry-run"], &[]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for source in ["A", "B"] {
        assert!(
            t.contains(&format!(
                "group: source {source}, scope (not recorded): 2 backups, 1 kept, 1 would remove"
            )),
            "{t}"
        );
    }
    assert!(
        t.contains("group: source C, scope (not recorded): 1 backups, 1 kept, 0 would remove"),
        "{t}"
    );
    assert!(
        t.contains("binlog source A: would remove 3 segments and gaps")
            && t.contains(&format!(
                "before {file}:3000, the coordinates of {}, the oldest kept backup of this source",
                &ids["a2"][..10]
            )),
        "{t}"
    );
    assert!(
        t.contains(&format!(
            "before {file}:4000, the coordinates of {}, the oldest kept backup of this source",
            &ids["b2"][..10]
        )),
        "{t}"
    );
    assert!(
        t.contains("binlog source D: kept whole (5 segments and gaps")
            && t.contains("no kept backup of this source has its coordinates in it"),
        "{t}"
    );
    for source in ["A", "B", "C", "D"] {
        assert_eq!(segment_ranges(&repo, source), all, "dry run: {t}");
    }

    let out = repo.run(&["prune", "--keep-last", "1"], &[]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("binlog source D: kept whole"), "{t}");
    // A: a2 at 3000 is its oldest kept backup (c1 at 2000 is C's, not A's).
    assert_eq!(segment_ranges(&repo, "A"), all[3..], "{t}");
    // B: b2 at 4000 (A's a2 and C's c1 are older, and not B's).
    assert_eq!(segment_ranges(&repo, "B"), all[4..], "{t}");
    // C: c1 at 2000.
    assert_eq!(segment_ranges(&repo, "C"), all[2..], "{t}");
    // D: no kept backup of its own; the others' coordinates in it do not cut it.
    assert_eq!(segment_ranges(&repo, "D"), all, "{t}");
    let windows_after = list_windows(&repo);
    assert_eq!(windows_after.len(), 3, "{windows_after:?}");
    for name in ["c1", "a2", "b2"] {
        let id = &ids[name];
        assert!(
            windows_after[id]["from"].is_object(),
            "{name}: {windows_after:?}"
        );
        assert_eq!(windows_after[id], windows_before[id], "backup {name}");
    }
    let (code, _, t) = verify_json(&repo, &["--read-data"]);
    assert_eq!(code, Some(0), "{t}");
    // A second prune has nothing more to cut.
    let out = repo.run(&["prune", "--keep-last", "1"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(segment_ranges(&repo, "A"), all[3..]);
    assert_eq!(segment_ranges(&repo, "D"), all);
}

/// Retention per group (source, scope), as restic groups by host and paths: one server
/// backed up whole, then only its database shop, twice each, then whole again under
/// another source name (`backup --source`, as for a second server). `--keep-last 1`
/// kept only the newest backup of the repository; it now keeps the newest of each group,
/// and a new database does not make a whole-server backup another group. The dry run
/// and the JSON log name each group; the kept backups restore and `verify --read-data`
/// passes.
#[test]
fn prune_applies_the_policy_to_each_source_and_scope_on_its_own() {
    let server = common::Server::start(common::options(73, true));
    server.sql(
        "CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(64)); \
         INSERT INTO shop.t VALUES (1, 'one'), (2, 'two');",
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let repo = rt.block_on(Repo::new());
    let backup = |more: &[&str], dump: &[&str]| -> String {
        let mut args = vec!["backup"];
        args.extend_from_slice(more);
        let mut tail = dump.to_vec();
        tail.extend(["--threads=2", "--progress=never"]);
        let out = repo.run_on(&args, &server, &tail);
        assert!(out.status.success(), "{}", text(&out));
        std::thread::sleep(std::time::Duration::from_millis(1100));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let whole1 = backup(&[], &[]);
    let shop1 = backup(&[], &["--databases", "shop"]);
    // A database created between two whole-server backups: the same scope.
    server.sql("CREATE DATABASE crm; CREATE TABLE crm.c (id INT PRIMARY KEY); INSERT INTO crm.c VALUES (7);");
    let whole2 = backup(&[], &[]);
    let shop2 = backup(&[], &["--databases", "shop"]);
    let other = backup(&["--source", "other-server"], &[]);
    let list = repo.run(&["list", "--json"], &[]);
    assert!(list.status.success(), "{}", text(&list));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    let scope_of = |id: &str| {
        list.iter()
            .find(|s| s["id"] == id)
            .map(|s| s["meta"]["scope"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(scope_of(&whole1), scope_of(&whole2));
    assert_eq!(scope_of(&whole1), scope_of(&other));
    assert_eq!(scope_of(&shop1), scope_of(&shop2));
    assert_ne!(scope_of(&whole1), scope_of(&shop1));
    assert!(
        scope_of(&shop1).starts_with("databases shop"),
        "{}",
        scope_of(&shop1)
    );
    let kept = [&whole2, &shop2, &other];
    let removed = [&whole1, &shop1];
    let restored_before: Vec<_> = kept
        .iter()
        .map(|id| restore_files(&repo, id, &[]))
        .collect();

    // --dry-run, JSON log lines: each backup's fate with its group.
    let out = repo.run(
        &[
            "prune",
            "--keep-last",
            "1",
            "--dry-run",
            "--log-format",
            "json",
        ],
        &[],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["fields"]["backup"].is_string())
        .collect();
    assert_eq!(lines.len(), 5, "{t}");
    for l in &lines {
        let id = l["fields"]["backup"].as_str().unwrap();
        assert_eq!(l["fields"]["scope"].as_str().unwrap(), scope_of(id), "{l}");
        let fate = l["fields"]["fate"].as_str().unwrap();
        let source = l["fields"]["source"].as_str().unwrap();
        if id == other {
            assert_eq!(source, "other-server", "{l}");
        } else {
            assert_ne!(source, "other-server", "{l}");
        }
        if kept.iter().any(|k| *k == id) {
            assert_eq!(fate, "keep", "{l}");
            assert_eq!(l["fields"]["reasons"], "last backup", "{l}");
        } else {
            assert_eq!(fate, "would remove", "{l}");
        }
    }
    assert!(
        t.contains("group: source other-server, scope ")
            && t.contains(&format!(
                "scope {}: 2 backups, 1 kept, 1 would remove",
                scope_of(&shop1)
            )),
        "{t}"
    );
    assert_eq!(list_ids(&repo, &[]).len(), 5);

    let out = repo.run(&["prune", "--keep-last", "1"], &[]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for id in removed {
        assert!(t.contains(&format!("removed {}", &id[..10])), "{t}");
    }
    let mut left = list_ids(&repo, &[]);
    left.sort();
    let mut want: Vec<String> = kept.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(left, want, "{t}");
    for (id, before) in kept.iter().zip(&restored_before) {
        assert_eq!(&restore_files(&repo, id, &[]), before, "backup {id}");
    }
    let (code, _, t) = verify_json(&repo, &["--read-data"]);
    assert_eq!(code, Some(0), "{t}");
    // Again: every group holds one backup, kept.
    let out = repo.run(&["prune", "--keep-last", "1"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(list_ids(&repo, &[]).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_prune_on_s3() {
    let moto = common::s3::MotoServer::start();
    moto.create_bucket("trust");
    let env = moto.env();
    let options = StoreOptions {
        s3: rdump::backup::store::S3Settings {
            endpoint: Some(moto.endpoint()),
            region: Some(common::s3::REGION.into()),
            access_key_id: Some(common::s3::ACCESS_KEY_ID.into()),
            secret_access_key: Some(common::s3::SECRET_ACCESS_KEY.into()),
        },
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("unused");
    let repo = Repo::init(dir, root, "s3://trust/db1".into(), &options).await;
    let mut ids = Vec::new();
    let mut contents = Vec::new();
    for b in 0..3 {
        let files = vec![(format!("db/t.0000{b}.sql"), rows(&format!("s3-{b}"), 5_000))];
        ids.push(repo.backup(&files, &options).await);
        contents.push(files);
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    let out = repo.run(&["verify", "--read-data"], &env);
    assert!(out.status.success(), "{}", text(&out));
    let out = repo.run(&["prune", "--keep-last", "1"], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(list_ids(&repo, &env), vec![ids[2].clone()]);
    let out = repo.run(&["verify", "--read-data"], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("no damage found"), "{}", text(&out));
    assert_eq!(restore_files(&repo, &ids[2], &env), as_map(&contents[2]));
}

/// `rbackup check --max-binlog-lag` of an idle source: the archiver (`--flush-interval
/// 1s`) stores no segment while nothing is written, but its heartbeat
/// (`heartbeats/<source>`) says it is caught up at the end of the newest segment, so after
/// 10 s of silence a 5 s limit passes (with a reader key, a writer key, or none). Once the
/// archiver is killed, the heartbeat ages and the check fails after the limit. A
/// heartbeat with a MAC that does not match (put by someone without the naming key) does
/// not count.
#[test]
fn an_idle_archiver_heartbeat_keeps_check_green_and_a_killed_one_goes_critical() {
    let server = common::Server::start(common::options(72, true));
    server.sql("CREATE DATABASE quiet; CREATE TABLE quiet.t (id INT PRIMARY KEY); INSERT INTO quiet.t VALUES (1);");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let repo = rt.block_on(Repo::new());
    let wk = repo._dir.path().join("writer.key");
    std::fs::write(&wk, repo.writer.to_text()).unwrap();
    std::fs::set_permissions(&wk, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut archiver = common::rbackup::command_on(
        &[
            "binlog",
            "--repo",
            &repo.url,
            "--writer-key-file",
            wk.to_str().unwrap(),
            "--flush-interval",
            "1s",
            "--source",
            "quiet",
        ],
        &server,
        &[],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let check = |key: &[&str]| {
        let mut a = vec!["check", "--repo", &repo.url, "--max-binlog-lag", "5s"];
        a.extend_from_slice(key);
        let out = rbackup(&a, &[]);
        let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.code(), line)
    };
    let wk_arg = ["--writer-key-file", wk.to_str().unwrap()];
    let heartbeat = repo.root.join("heartbeats/quiet");
    // The first segment, then the first heartbeat.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !heartbeat.exists() {
        assert!(std::time::Instant::now() < deadline, "no heartbeat");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(!walk(&repo.root.join("binlog")).is_empty());
    let segments = walk(&repo.root.join("binlog"));
    // Idle for 10 s: no new segment, the check stays green.
    std::thread::sleep(std::time::Duration::from_secs(10));
    assert_eq!(
        walk(&repo.root.join("binlog")),
        segments,
        "the server was idle"
    );
    for key in [&repo.keys()[..], &wk_arg[..], &[][..]] {
        let (code, line) = check(key);
        assert_eq!(code, Some(0), "{key:?}: {line}");
        assert!(line.contains("binlog archiver"), "{line}");
    }
    let h: serde_json::Value = serde_json::from_slice(&std::fs::read(&heartbeat).unwrap()).unwrap();
    assert_eq!(h["source"], "quiet", "{h}");
    let last = segments
        .last()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        last.contains(&format!("-{:020}.", h["pos"].as_u64().unwrap())),
        "the heartbeat is at the newest segment's end: {h} {last}"
    );
    // A write while the archiver runs: archived, and the heartbeat follows the new end.
    server.sql("INSERT INTO quiet.t VALUES (2)");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let h: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&heartbeat).unwrap()).unwrap();
        if walk(&repo.root.join("binlog")).len() > segments.len()
            && !last.contains(&format!("-{:020}.", h["pos"].as_u64().unwrap()))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "heartbeat did not move: {h}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Killed: no more heartbeats; past the limit the check is CRITICAL.
    archiver.kill().unwrap(); // SIGKILL
    archiver.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(7));
    for key in [&repo.keys()[..], &wk_arg[..], &[][..]] {
        let (code, line) = check(key);
        assert_eq!(code, Some(2), "{key:?}: {line}");
        assert!(
            line.contains("binlog archiver is") && line.contains("behind"),
            "{line}"
        );
    }
    // A fresh heartbeat forged without the naming key: ignored by whoever holds a key.
    let mut forged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&heartbeat).unwrap()).unwrap();
    forged["time"] = chrono::Utc::now().to_rfc3339().into();
    std::fs::write(&heartbeat, forged.to_string()).unwrap();
    for key in [&repo.keys()[..], &wk_arg[..]] {
        let (code, line) = check(key);
        assert_eq!(code, Some(2), "{key:?}: {line}");
    }
}
