//! `rbackup copy`, `check`, and the options every command takes (`--metrics-file`,
//! `--log-format`, `--config`), through the real binary against local directories and two
//! S3 servers (moto_server). The source backups are written through the library (as a
//! dump would, with the writer key), so no MariaDB server is needed here; the restore of a
//! copy is `restore --to-dir`, compared file by file with the source's.

mod common;

use common::rbackup::{KeyRepo, rbackup, text};

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdump::backup::store::StoreOptions;
use rdump::backup::writer::SnapshotInfo;
use rdump::backup::{self, Access, BackupWriter, WriterOptions};
use serde_json::json;

/// Deterministic incompressible bytes (xorshift), `n` of them from `seed`.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed * 2 + 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// The repository at `url` opened through the library with the writer key file.
async fn open_writer(url: &str, writer_key: &Path) -> backup::Repository {
    backup::open(
        url,
        &Access::writer_key_file(writer_key).unwrap(),
        &StoreOptions::default(),
    )
    .await
    .unwrap()
}

/// One backup of `files` written through the library with the writer key; its ID and the
/// bytes it stored.
async fn backup_files(url: &str, writer_key: &Path, files: &[(String, Vec<u8>)]) -> (String, u64) {
    backup_at(url, writer_key, files, ("mysql-bin.000001", 4), None).await
}

/// `backup_files` with the backup's binlog coordinates and time given.
async fn backup_at(
    url: &str,
    writer_key: &Path,
    files: &[(String, Vec<u8>)],
    at: (&str, u64),
    time: Option<&str>,
) -> (String, u64) {
    backup_of("s1", url, writer_key, files, at, time).await
}

/// `backup_at` for the binlog source `source`.
async fn backup_of(
    source: &str,
    url: &str,
    writer_key: &Path,
    files: &[(String, Vec<u8>)],
    (file, position): (&str, u64),
    time: Option<&str>,
) -> (String, u64) {
    let repo = open_writer(url, writer_key).await;
    let w = BackupWriter::start(repo, WriterOptions::default())
        .await
        .unwrap();
    for (name, data) in files {
        let mut f = w.file(name);
        for piece in data.chunks(100_000) {
            f.write(piece).unwrap();
        }
        w.close_file(f, json!({ "file": name })).unwrap();
    }
    let (id, snap) = w
        .commit(SnapshotInfo {
            time: time.map(str::to_string),
            tags: vec!["nightly".into()],
            meta: json!({
                "databases": ["db"],
                "coordinates": {"file": file, "position": position},
                "binlog_source": source,
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    (id, snap.stats.new_stored_bytes)
}

/// Every file under `dir` (relative name -> bytes).
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let name = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
                out.insert(name, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// `restore --to-dir` of backup `id` into a new directory under `scratch`.
fn restore_tree(
    url: &str,
    identity: &str,
    id: &str,
    scratch: &Path,
    env: &[(&str, String)],
) -> BTreeMap<String, Vec<u8>> {
    let dir = tempfile::tempdir_in(scratch).unwrap();
    let target = dir.path().join("out");
    let out = rbackup(
        &[
            "restore",
            "--repo",
            url,
            "--identity-file",
            identity,
            id,
            "--to-dir",
            target.to_str().unwrap(),
        ],
        env,
    );
    assert!(out.status.success(), "{}", text(&out));
    tree(&target)
}

/// What a restore of a backup of `files` must give.
fn expected(files: &[(String, Vec<u8>)]) -> BTreeMap<String, Vec<u8>> {
    files.iter().cloned().collect()
}

/// Bytes of the files under `dir/sub`.
fn bytes_under(dir: &Path, sub: &str) -> u64 {
    fn walk(p: &Path) -> u64 {
        if !p.exists() {
            return 0;
        }
        if p.is_dir() {
            std::fs::read_dir(p)
                .unwrap()
                .map(|e| walk(&e.unwrap().path()))
                .sum()
        } else {
            std::fs::metadata(p).unwrap().len()
        }
    }
    walk(&dir.join(sub))
}

/// The backup IDs of a repository, oldest first (`list --json`).
fn ids(url: &str, identity: &str, env: &[(&str, String)]) -> Vec<(String, String)> {
    let out = rbackup(
        &["list", "--repo", url, "--identity-file", identity, "--json"],
        env,
    );
    assert!(out.status.success(), "{}", text(&out));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    list.iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["time"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Binlog events from `start` to `end` of a file, as a server writes them: each with its
/// header (size, and the position where it ends), a body of noise and its CRC32.
fn events(start: u64, end: u64) -> Vec<u8> {
    common::rbackup::binlog_events(start, end, noise)
}

/// A binlog segment committed as the archiver (`rbackup binlog`) commits it, with the
/// writer key: events from `start` to `end` (`events`), the last one dated `last_time`.
async fn put_segment(
    url: &str,
    writer_key: &Path,
    source: &str,
    file: &str,
    start: u64,
    end: u64,
    last_time: chrono::DateTime<chrono::Utc>,
) -> String {
    put_segment_bytes(
        url,
        writer_key,
        source,
        file,
        (start, end),
        last_time,
        events(start, end),
    )
    .await
}

/// `put_segment` with the events given (which may be damaged: the segment's CRC32 and
/// BLAKE3 are of these bytes, and its MAC is valid).
async fn put_segment_bytes(
    url: &str,
    writer_key: &Path,
    source: &str,
    file: &str,
    range: (u64, u64),
    last_time: chrono::DateTime<chrono::Utc>,
    bytes: Vec<u8>,
) -> String {
    put_segment_ending(url, writer_key, source, file, range, last_time, bytes, None).await
}

/// `put_segment_bytes` of a segment that ends its file with a ROTATE to `rotate_to`.
#[allow(clippy::too_many_arguments)]
async fn put_segment_ending(
    url: &str,
    writer_key: &Path,
    source: &str,
    file: &str,
    (start, end): (u64, u64),
    last_time: chrono::DateTime<chrono::Utc>,
    bytes: Vec<u8>,
    rotate_to: Option<&str>,
) -> String {
    use rdump::backup::segments::RepositorySegments;
    use rdump::binlog::segment::SegmentStore;
    let repo = open_writer(url, writer_key).await;
    // As an archiver records it (the server's identity).
    let segment = common::rbackup::segment(
        file,
        (start, end),
        last_time.timestamp() as u32,
        &bytes,
        &format!("server-of-{source}"),
        rotate_to,
    );
    let mut archive = RepositorySegments::open_archiver(repo.clone(), source)
        .await
        .unwrap();
    archive.commit(&segment, &bytes).await.unwrap();
    archive.release().await.unwrap();
    let prefix = format!("binlog/{source}/{file}/{start:020}-{end:020}.");
    repo.store
        .list("binlog")
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.name.starts_with(&prefix))
        .unwrap()
        .name
}

/// The binlog objects under `repo/binlog`, by relative name without the storage ID.
fn binlog_stems(repo: &Path) -> Vec<String> {
    let mut out: Vec<String> = tree(&repo.join("binlog"))
        .into_keys()
        .map(|k| k.rsplit_once('.').unwrap().0.to_string())
        .collect();
    out.sort();
    out
}

fn s3_env(server: &common::s3::MotoServer) -> Vec<(&'static str, String)> {
    server.env()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_to_a_path_and_to_a_second_s3_server_restores_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let src_repo = KeyRepo::init(dir.path(), "source");
    let dst_repo = KeyRepo::init(dir.path(), "offsite");
    let (_, src_url, src_id, src_wk) = src_repo.parts();
    let (dst, dst_url, dst_id, _) = dst_repo.parts();

    // The first backup: 2.5 MiB of tables and a small schema file; a binlog segment.
    // (Small: the tests run a debug build, where chunking, hashing and age are slow.)
    let mut files: Vec<(String, Vec<u8>)> = (0..4)
        .map(|i| (format!("db/t{i}.00001.csv"), noise(i, 640 << 10)))
        .collect();
    files.push((
        "db/t0-schema.sql".into(),
        b"CREATE TABLE t0 (a int);\n".to_vec(),
    ));
    files.push(("rdump.json".into(), b"{\"manifest\": 1}\n".to_vec()));
    backup_files(src_url, src_wk, &files).await;
    let segment = put_segment(
        src_url,
        src_wk,
        "s1",
        "mysql-bin.000001",
        4,
        5000,
        chrono::Utc::now(),
    )
    .await;

    let copy = |ids: &[&str]| {
        let mut args = src_repo.copy_to(&dst_repo);
        args.extend_from_slice(ids);
        let out = rbackup(&args, &[]);
        assert!(out.status.success(), "{}", text(&out));
        out
    };
    copy(&[]);
    let after_first = bytes_under(dst, "data");
    let copied = ids(dst_url, dst_id, &[]);
    assert_eq!(copied.len(), 1);
    assert_eq!(
        ids(src_url, src_id, &[])[0].1,
        copied[0].1,
        "the time is kept"
    );
    assert_eq!(
        restore_tree(dst_url, dst_id, &copied[0].0, dir.path(), &[]),
        expected(&files)
    );
    // The segment is there under the same positions, readable with the offsite key only.
    let stem = segment.rsplit_once('.').unwrap().0;
    let at_dst: Vec<_> = std::fs::read_dir(dst.join("binlog/s1/mysql-bin.000001"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(at_dst.len(), 1, "{at_dst:?}");
    assert!(
        format!("binlog/s1/mysql-bin.000001/{}", at_dst[0]).starts_with(stem),
        "{at_dst:?}"
    );
    let offsite = backup::open(
        dst_url,
        &Access::identity_file(Path::new(&dst_id)).unwrap(),
        &StoreOptions::default(),
    )
    .await
    .unwrap();
    let name = format!("binlog/s1/mysql-bin.000001/{}", at_dst[0]);
    let plain = offsite
        .keys
        .decrypt(&name, &offsite.store.get(&name).await.unwrap())
        .unwrap();
    let source_repo = backup::open(
        src_url,
        &Access::identity_file(Path::new(&src_id)).unwrap(),
        &StoreOptions::default(),
    )
    .await
    .unwrap();
    let source_plain = source_repo
        .keys
        .decrypt(&segment, &source_repo.store.get(&segment).await.unwrap())
        .unwrap();
    // The same header and events; only the MAC (under each repository's naming key)
    // differs.
    let header = |plain: &[u8]| -> (serde_json::Value, Vec<u8>) {
        let raw = zstd::stream::decode_all(plain).unwrap();
        let nl = raw.iter().position(|&b| b == b'\n').unwrap();
        let mut h: serde_json::Value = serde_json::from_slice(&raw[..nl]).unwrap();
        h["mac"] = json!("");
        (h, raw[nl + 1..].to_vec())
    };
    assert_eq!(header(&plain), header(&source_plain));
    // And the archive's own reader takes it (MAC and events checked).
    {
        use rdump::backup::segments::RepositorySegments;
        use rdump::binlog::segment::SegmentSource;
        let archive = RepositorySegments::open_reader(offsite.clone(), "s1").unwrap();
        assert_eq!(archive.records().await.unwrap().len(), 1);
    }

    // Copying again moves nothing.
    let out = copy(&[]);
    assert!(out.stdout.is_empty(), "{}", text(&out));
    assert_eq!(bytes_under(dst, "data"), after_first);

    // A second backup: one table changed in one place, one new small table. Its copy
    // moves about what the source stored for it, not the 6 MiB again.
    files[1].1[300_000..300_100].fill(7);
    files.push(("db/t9.00001.csv".into(), noise(99, 64 << 10)));
    let (second, source_new) = backup_files(src_url, src_wk, &files).await;
    copy(&[&second[..12]]);
    let moved = bytes_under(dst, "data") - after_first;
    eprintln!(
        "second backup: the source stored {source_new} bytes for it; its copy stored {moved} \
         at the destination (first copy: {after_first})"
    );
    assert!(
        moved < 2 * source_new + 64 * 1024 && moved < after_first / 4,
        "moved {moved}, source stored {source_new}, first copy {after_first}"
    );
    let copied = ids(dst_url, dst_id, &[]);
    assert_eq!(copied.len(), 2);
    let offsite_second = restore_tree(dst_url, dst_id, &copied[1].0, dir.path(), &[]);
    assert_eq!(offsite_second, expected(&files));

    // Path -> S3 (server A) -> S3 (server B): the destination's endpoint and credentials
    // are its own (--to-endpoint, RBACKUP_TO_AWS_*).
    let a = common::s3::MotoServer::start();
    let b = common::s3::MotoServer::start();
    a.create_bucket("onsite");
    b.create_bucket("offsite");
    let s3a = KeyRepo::init_at(dir.path(), "s3a", "s3://onsite/db1", &s3_env(&a));
    let s3b = KeyRepo::init_at(dir.path(), "s3b", "s3://offsite/db1", &s3_env(&b));
    let s3b_id = &s3b.identity;
    let latest = copied[1].0.clone();
    let mut args = dst_repo.copy_to(&s3a);
    args.extend(["--no-binlogs", &latest]);
    let out = rbackup(&args, &s3_env(&a));
    assert!(out.status.success(), "{}", text(&out));
    let mut env = s3_env(&a);
    env.push(("RBACKUP_TO_AWS_ENDPOINT_URL", b.endpoint()));
    env.push(("RBACKUP_TO_AWS_ACCESS_KEY_ID", "offsite-key".into()));
    env.push(("RBACKUP_TO_AWS_SECRET_ACCESS_KEY", "offsite-secret".into()));
    let out = rbackup(&s3a.copy_to_reader(&s3b), &env);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    let at_b = ids("s3://offsite/db1", s3b_id, &s3_env(&b));
    assert_eq!(at_b.len(), 1);
    assert_eq!(
        restore_tree(
            "s3://offsite/db1",
            s3b_id,
            &at_b[0].0,
            dir.path(),
            &s3_env(&b)
        ),
        offsite_second
    );
    // With a reader key at the destination the rerun recognises the copies too.
    let out = rbackup(&s3a.copy_to_reader(&s3b), &env);
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_killed_midway_completes_on_rerun_without_storing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let src_repo = KeyRepo::init(dir.path(), "source");
    let dst_repo = KeyRepo::init(dir.path(), "offsite");
    let (src, src_url, _, src_wk) = src_repo.parts();
    let (dst, dst_url, dst_id, _) = dst_repo.parts();
    // 10 MiB: three packs; the copy is killed once the first is stored and indexed.
    let files: Vec<(String, Vec<u8>)> = (0..2)
        .map(|i| (format!("db/t{i}.00001.csv"), noise(100 + i, 5 << 20)))
        .collect();
    backup_files(src_url, src_wk, &files).await;
    let source_packs = bytes_under(src, "data");

    let args = src_repo.copy_to(&dst_repo);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rbackup"))
        .args(&args)
        .env_remove("RBACKUP_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill -9 once an index object (a pack) is stored.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let indexed = std::fs::read_dir(dst.join("index"))
            .map(|d| d.count())
            .unwrap_or(0);
        if indexed >= 1 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the copy ended before it could be killed"
        );
        assert!(Instant::now() < deadline, "no pack stored in 300 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the copy was not killed: {status:?}");
    assert!(
        !dst.join("snapshots").exists()
            || std::fs::read_dir(dst.join("snapshots")).unwrap().count() == 0,
        "a killed copy left a snapshot"
    );
    let partial = bytes_under(dst, "data");

    let out = rbackup(&args, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let total = bytes_under(dst, "data");
    eprintln!(
        "source packs {source_packs} bytes; destination after the kill {partial}, after the rerun {total}"
    );
    // At most the pack in flight at the kill (4 MiB and a bit) is stored twice.
    assert!(
        total <= source_packs + (5 << 20),
        "stored {total} for a source of {source_packs}"
    );
    let copied = ids(dst_url, dst_id, &[]);
    assert_eq!(copied.len(), 1);
    assert_eq!(
        restore_tree(dst_url, dst_id, &copied[0].0, dir.path(), &[]),
        expected(&files)
    );
}

/// Runs `rbackup check` and returns (exit code, stdout line).
fn check(url: &str, key: &[&str], limits: &[&str], extra: &[&str]) -> (i32, String) {
    let mut args = vec!["check", "--repo", url];
    args.extend_from_slice(key);
    args.extend_from_slice(limits);
    args.extend_from_slice(extra);
    let out = rbackup(&args, &[]);
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(line.lines().count(), 1, "{}", text(&out));
    (out.status.code().unwrap(), line)
}

/// A drill record (`backup::drill::DrillRecord`), put with the writer key (which holds the
/// naming key its MAC needs); `forged`: MACed under another naming key, as whoever holds
/// only the repository's public recipient could make one. Returns its object name.
async fn put_drill(
    url: &str,
    writer_key: &Path,
    snapshot: &str,
    time: chrono::DateTime<chrono::Utc>,
    verdict: &str,
    forged: bool,
) -> String {
    use rdump::backup::drill::{DrillRecord, VERSION};
    use rdump::backup::keys::NamingKey;
    let repo = open_writer(url, writer_key).await;
    let record = DrillRecord {
        version: VERSION,
        time: time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        snapshot: snapshot.to_string(),
        snapshot_time: time.to_rfc3339(),
        host: "test".into(),
        program: "test".into(),
        target: "scratch".into(),
        seconds: 12.5,
        verdict: verdict.into(),
        message: String::new(),
        tables_compared: 0,
        rows_compared: 0,
        tables: vec![],
        objects: vec![],
        phases: Default::default(),
        binlog_replay: serde_json::Value::Null,
        mac: String::new(),
    };
    let mut keys = repo.keys.clone();
    if forged {
        keys.naming = NamingKey::generate();
    }
    let (name, sealed) = record.encode(&keys);
    repo.store.put(&name, Bytes::from(sealed)).await.unwrap();
    name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_exit_codes_for_each_condition() {
    let dir = tempfile::tempdir().unwrap();
    let keys = KeyRepo::init(dir.path(), "repo");
    let (repo, url, id_file, wk) = keys.parts();
    let reader = ["--identity-file", id_file];
    let metrics = dir.path().join("rbackup.prom");
    let metrics_arg = ["--metrics-file", metrics.to_str().unwrap()];

    // No limit at all: a check that checks nothing is not green.
    let (code, line) = check(url, &reader, &[], &[]);
    assert_eq!(code, 1, "{line}");
    // No backup yet.
    let (code, line) = check(url, &reader, &["--max-age", "26h"], &[]);
    assert_eq!((code, line.starts_with("CRITICAL")), (2, true), "{line}");
    assert!(line.contains("no backup"), "{line}");
    // A fresh backup; then too old for a 1 s limit.
    let (snapshot, _) = backup_files(url, wk, &[("db/t.csv".into(), b"1,2\n".to_vec())]).await;
    let (code, line) = check(url, &reader, &["--max-age", "26h"], &[]);
    assert_eq!(code, 0, "{line}");
    assert!(line.starts_with("OK"), "{line}");
    std::thread::sleep(Duration::from_millis(2100));
    let (code, line) = check(url, &reader, &["--max-age", "1s"], &[]);
    assert_eq!(code, 2, "{line}");
    assert!(line.contains("newest backup is"), "{line}");
    // A writer key (or no key) judges the backup by the time it was stored.
    let (code, line) = check(
        url,
        &["--writer-key-file", wk.to_str().unwrap()],
        &["--max-age", "26h"],
        &[],
    );
    assert_eq!(code, 0, "{line}");
    let (code, line) = check(url, &[], &["--max-age", "26h"], &[]);
    assert_eq!(code, 0, "{line}");

    // The binlog archive: none, then an archiver an hour behind, then caught up.
    let (code, line) = check(url, &reader, &["--max-binlog-lag", "15min"], &[]);
    assert_eq!(code, 2, "{line}");
    assert!(line.contains("no binlog archive"), "{line}");
    let now = chrono::Utc::now();
    put_segment(
        url,
        wk,
        "s1",
        "mysql-bin.000001",
        4,
        1000,
        now - chrono::Duration::hours(1),
    )
    .await;
    let (code, line) = check(url, &reader, &["--max-binlog-lag", "15min"], &metrics_arg);
    assert_eq!(code, 2, "{line}");
    assert!(line.contains("binlog archiver is 1h"), "{line}");
    put_segment(url, wk, "s1", "mysql-bin.000002", 4, 1000, now).await;
    let (code, line) = check(url, &reader, &["--max-binlog-lag", "15min"], &metrics_arg);
    assert_eq!(code, 0, "{line}");
    let text = std::fs::read_to_string(&metrics).unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let lag = scrape
        .samples
        .iter()
        .find(|s| s.metric == "rbackup_binlog_lag_seconds")
        .expect("lag metric");
    match lag.value {
        prometheus_parse::Value::Gauge(v) => assert!((0.0..600.0).contains(&v), "{v}"),
        ref v => panic!("{v:?}"),
    }
    // A gap in the window: bytes 1000 to 2000 of the second file never archived.
    put_segment(url, wk, "s1", "mysql-bin.000002", 2000, 3000, now).await;
    let (code, line) = check(url, &reader, &["--max-binlog-lag", "15min"], &[]);
    assert_eq!(code, 2, "{line}");
    assert!(
        line.contains("gap in the PITR window")
            && line.contains("mysql-bin.000002:1000 to mysql-bin.000002:2000"),
        "{line}"
    );
    put_segment(url, wk, "s1", "mysql-bin.000002", 1000, 2000, now).await;
    let (code, line) = check(url, &reader, &["--max-binlog-lag", "15min"], &[]);
    assert_eq!(code, 0, "{line}");
    // The rule restore follows (binlog::window): mysql-bin.000002 ends with a ROTATE to
    // mysql-bin.000003, whose first event follows its 3-byte FORMAT_DESCRIPTION (at 7).
    let lag = ["--max-binlog-lag", "15min"];
    let put = |file: &'static str, range: (u64, u64), rotate_to: Option<&'static str>| {
        let (url, wk) = (url.to_string(), wk.to_path_buf());
        async move {
            let bytes = events(range.0, range.1);
            put_segment_ending(&url, &wk, "s1", file, range, now, bytes, rotate_to).await
        }
    };
    let tail = put("mysql-bin.000002", (3000, 3500), Some("mysql-bin.000003")).await;
    put("mysql-bin.000003", (7, 500), None).await;
    let (code, line) = check(url, &reader, &lag, &[]);
    assert_eq!(code, 0, "{line}");
    // The tail segment carrying the file's ROTATE lost: no hole inside any file, but
    // restore stops at mysql-bin.000002:3000.
    let tail_bytes = std::fs::read(repo.join(&tail)).unwrap();
    std::fs::remove_file(repo.join(&tail)).unwrap();
    let (code, line) = check(url, &reader, &lag, &[]);
    assert_eq!(code, 2, "{line}");
    assert!(
        line.contains("gap in the PITR window")
            && line.contains("mysql-bin.000002:3000 to mysql-bin.000003:7"),
        "{line}"
    );
    // A damaged segment (a byte flipped): restore cannot read past it, a break, named.
    let mut flipped = tail_bytes.clone();
    let n = flipped.len() / 2;
    flipped[n] ^= 1;
    std::fs::write(repo.join(&tail), flipped).unwrap();
    let (code, line) = check(url, &reader, &lag, &[]);
    assert_eq!(code, 2, "{line}");
    assert!(
        line.contains("gap in the PITR window") && line.contains(&tail),
        "{line}"
    );
    std::fs::write(repo.join(&tail), tail_bytes).unwrap();
    // A whole file missing: mysql-bin.000003 rotates to mysql-bin.000004, the archive
    // goes on with mysql-bin.000005.
    put("mysql-bin.000003", (500, 900), Some("mysql-bin.000004")).await;
    let fifth = put("mysql-bin.000005", (7, 100), None).await;
    let (code, line) = check(url, &reader, &lag, &[]);
    assert_eq!(code, 2, "{line}");
    assert!(
        line.contains("mysql-bin.000003:900 to mysql-bin.000005:7"),
        "{line}"
    );
    // Without a reader key only the names are seen: the skipped file number too.
    let (code, line) = check(url, &[], &lag, &[]);
    assert_eq!(code, 2, "{line}");
    assert!(
        line.contains("between mysql-bin.000003 and mysql-bin.000005"),
        "{line}"
    );
    std::fs::remove_file(repo.join(&fifth)).unwrap();
    let (code, line) = check(url, &reader, &lag, &[]);
    assert_eq!(code, 0, "{line}");

    // Drills: none, one that failed, one passed 3 days ago, one passed now.
    let drill = ["--max-drill-age", "2d"];
    let (code, line) = check(url, &reader, &drill, &[]);
    assert_eq!(code, 1, "{line}");
    assert!(line.contains("no restore drill"), "{line}");
    put_drill(url, wk, &snapshot, now, "failed", false).await;
    let (code, line) = check(url, &reader, &drill, &[]);
    assert_eq!(code, 1, "{line}");
    put_drill(
        url,
        wk,
        &snapshot,
        now - chrono::Duration::days(3),
        "passed",
        false,
    )
    .await;
    let (code, line) = check(url, &reader, &drill, &[]);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains("last passing restore drill was 2d 23h"),
        "{line}"
    );
    // A passed drill forged by someone without the naming key (a valid age file, its
    // storage ID right, its MAC not): ignored, so the last passing drill is still the old
    // one, and said (WARNING).
    let forged = put_drill(url, wk, &snapshot, now, "passed", true).await;
    let (code, line) = check(url, &reader, &drill, &[]);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains("last passing restore drill was 2d 23h")
            && line.contains("drill record ignored (damaged or forged")
            && line.contains(&forged)
            && line.contains("MAC does not match"),
        "{line}"
    );
    // Even with no limit on drills it is said.
    let (code, line) = check(url, &reader, &["--max-age", "1d"], &[]);
    assert_eq!(code, 1, "{line}");
    assert!(line.contains(&forged), "{line}");
    std::fs::remove_file(repo.join(&forged)).unwrap();
    // A damaged record (a byte flipped: its storage ID no longer matches): the same.
    let damaged = put_drill(url, wk, &snapshot, now, "passed", false).await;
    let path = repo.join(&damaged);
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len() / 2;
    bytes[n] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let (code, line) = check(url, &reader, &drill, &[]);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains("last passing restore drill was 2d 23h") && line.contains(&damaged),
        "{line}"
    );
    std::fs::remove_file(&path).unwrap();
    put_drill(url, wk, &snapshot, now, "passed", false).await;
    let (code, line) = check(url, &reader, &drill, &metrics_arg);
    assert_eq!(code, 0, "{line}");
    // Drill verdicts are encrypted: a writer key cannot judge them.
    let (code, line) = check(
        url,
        &["--writer-key-file", wk.to_str().unwrap()],
        &drill,
        &[],
    );
    assert_eq!(code, 3, "{line}");
    // All three at once, healthy; and a repository that is not there is UNKNOWN.
    let (code, line) = check(
        url,
        &reader,
        &[
            "--max-age",
            "1d",
            "--max-binlog-lag",
            "15min",
            "--max-drill-age",
            "2d",
        ],
        &[],
    );
    assert_eq!(code, 0, "{line}");
    let missing = dir.path().join("nothing");
    let (code, line) = check(
        missing.to_str().unwrap(),
        &reader,
        &["--max-age", "1d"],
        &[],
    );
    assert_eq!(code, 3, "{line}");

    let text = std::fs::read_to_string(&metrics).unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let drill_ts = scrape
        .samples
        .iter()
        .find(|s| s.metric == "rbackup_drill_last_success_timestamp_seconds")
        .expect("drill metric");
    match drill_ts.value {
        prometheus_parse::Value::Gauge(v) => {
            assert!((v - now.timestamp() as f64).abs() < 60.0, "{v}")
        }
        ref v => panic!("{v:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_metrics_file_and_json_logs() {
    let dir = tempfile::tempdir().unwrap();
    let src_repo = KeyRepo::init(dir.path(), "source");
    let dst_repo = KeyRepo::init(dir.path(), "offsite");
    let (_, src_url, src_id, src_wk) = src_repo.parts();
    let (_, dst_url, _, dst_wk) = dst_repo.parts();
    backup_files(src_url, src_wk, &[("db/t.csv".into(), noise(5, 300_000))]).await;
    let metrics = dir.path().join("prom/rbackup.prom");
    std::fs::create_dir(dir.path().join("prom")).unwrap();
    // Metrics of another operation already in the file are kept.
    std::fs::write(
        &metrics,
        "rbackup_last_success_timestamp_seconds{operation=\"backup\"} 1700000000\n",
    )
    .unwrap();

    // Everything a scheduled unit needs is in the file; no secret is in it (paths only).
    let config = dir.path().join("rbackup.toml");
    std::fs::write(
        &config,
        format!(
            "repository = {src_url:?}\nidentity_file = {src_id:?}\nmetrics_file = {:?}\n\
             log_format = \"json\"\ncopy_to = {dst_url:?}\ncopy_to_writer_key_file = {:?}\n\
             [check]\nmax_age = \"26h\"\n",
            metrics.to_str().unwrap(),
            dst_wk.to_str().unwrap()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = config.to_str().unwrap();

    // --config after the subcommand, and before it.
    let out = rbackup(&["copy", "--config", cfg], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.trim().is_empty());
    for line in stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert_eq!(v["operation"], "copy", "{line}");
        assert!(v["time"].is_string() && v["level"].is_string() && v["message"].is_string());
    }
    assert!(stderr.contains("\"bytes_added\""), "{stderr}");
    let out = rbackup(&["--config", cfg, "check"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("OK: newest backup"));
    // $RBACKUP_CONFIG works too, and a flag wins over the file.
    let out = rbackup(
        &["list", "--log-format", "text"],
        &[("RBACKUP_CONFIG", cfg.to_string())],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("nightly"));

    let text_of = std::fs::read_to_string(&metrics).unwrap();
    let scrape =
        prometheus_parse::Scrape::parse(text_of.lines().map(|l| Ok(l.to_string()))).unwrap();
    let get = |name: &str, op: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && s.labels.get("operation") == Some(op))
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                ref v => panic!("{v:?}"),
            })
    };
    let now = chrono::Utc::now().timestamp() as f64;
    assert_eq!(
        get("rbackup_last_success_timestamp_seconds", "backup"),
        Some(1_700_000_000.0)
    );
    for op in ["copy", "check", "list"] {
        let t = get("rbackup_last_success_timestamp_seconds", op)
            .unwrap_or_else(|| panic!("{op}: {text_of}"));
        assert!((t - now).abs() < 120.0, "{op} {t}");
        assert!(get("rbackup_duration_seconds", op).is_some(), "{op}");
    }
    let added = get("rbackup_bytes_added", "copy").unwrap();
    assert!(added > 300_000.0 && added < 1_000_000.0, "{added}");
    assert!(get("rbackup_repository_bytes", "copy").unwrap() >= added);
    assert!(get("rbackup_dedup_ratio", "copy").is_some());

    // A failure: a JSON error line, and the operation's duration (its last success stays).
    let missing = dir.path().join("missing");
    let out = rbackup(
        &[
            "--log-format",
            "json",
            "list",
            "--repo",
            missing.to_str().unwrap(),
            "--metrics-file",
            metrics.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line: serde_json::Value = serde_json::from_str(stderr.trim()).unwrap();
    assert_eq!(line["level"], "error");
    assert!(
        line["message"].as_str().unwrap().contains("missing"),
        "{line}"
    );
    let text_of = std::fs::read_to_string(&metrics).unwrap();
    assert!(text_of.contains("rbackup_duration_seconds{operation=\"list\"}"));

    // A config file others can write is refused, naming the file.
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = rbackup(&["--config", cfg, "list"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rbackup.toml"));
}

/// Issue 14: copy brought back, on every run, the binlog segments the destination's prune
/// had removed. Now it leaves out what ends at or before the oldest coordinates of the
/// backups the destination holds: copy, prune the destination, copy again (with the
/// destination's writer key, then with its reader key): nothing pruned comes back, a new
/// segment still goes, and the destination verifies and restores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_after_the_destination_pruned_brings_nothing_back() {
    let dir = tempfile::tempdir().unwrap();
    let src_repo = KeyRepo::init(dir.path(), "source");
    let dst_repo = KeyRepo::init(dir.path(), "offsite");
    let (_, src_url, _, src_wk) = src_repo.parts();
    let (dst, dst_url, dst_id, _) = dst_repo.parts();
    let files = vec![("db/t.00001.csv".to_string(), noise(7, 300 << 10))];
    let t = chrono::Utc::now();
    backup_at(
        src_url,
        src_wk,
        &files,
        ("mysql-bin.000001", 4),
        Some("2026-01-01T00:00:00Z"),
    )
    .await;
    backup_at(
        src_url,
        src_wk,
        &files,
        ("mysql-bin.000001", 2000),
        Some("2026-01-02T00:00:00Z"),
    )
    .await;
    for (file, start, end) in [
        ("mysql-bin.000001", 4, 1000),
        ("mysql-bin.000001", 1000, 2000),
        ("mysql-bin.000001", 2000, 3000),
        ("mysql-bin.000001", 3000, 4000),
    ] {
        put_segment(src_url, src_wk, "s1", file, start, end, t).await;
    }
    let copy = |args: Vec<&str>| {
        let out = rbackup(&args, &[]);
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    };
    let writer = || src_repo.copy_to(&dst_repo);
    let reader = || src_repo.copy_to_reader(&dst_repo);
    copy(writer());
    assert_eq!(binlog_stems(dst).len(), 4, "{:?}", binlog_stems(dst));

    let out = dst_repo.run(&["prune", "--keep-last", "1"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    // The removed backup's copy marker stays: it is what keeps the copies below from
    // bringing that backup back.
    assert!(
        text(&out).contains("copy marker copies/")
            && text(&out)
                .contains(": kept, so that rbackup copy does not bring the removed backup back"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read_dir(dst.join("copies")).unwrap().count(), 2);
    let kept = vec![
        "s1/mysql-bin.000001/00000000000000002000-00000000000000003000".to_string(),
        "s1/mysql-bin.000001/00000000000000003000-00000000000000004000".to_string(),
    ];
    assert_eq!(binlog_stems(dst), kept, "{}", text(&out));

    // Copy again with the writer key (the destination's snapshots known through the
    // copy markers), a new segment archived meanwhile.
    put_segment(src_url, src_wk, "s1", "mysql-bin.000001", 4000, 5000, t).await;
    let said = copy(writer());
    assert!(said.contains("left out 2 binlog objects"), "{said}");
    let mut now_kept = kept.clone();
    now_kept.push("s1/mysql-bin.000001/00000000000000004000-00000000000000005000".to_string());
    assert_eq!(binlog_stems(dst), now_kept, "{said}");
    // And with a reader key (the destination's snapshots read).
    let said = copy(reader());
    assert!(said.contains("left out 2 binlog objects"), "{said}");
    assert_eq!(binlog_stems(dst), now_kept, "{said}");

    let out = dst_repo.run(&["verify"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let at_dst = ids(dst_url, dst_id, &[]);
    assert_eq!(at_dst.len(), 1);
    assert_eq!(
        restore_tree(dst_url, dst_id, &at_dst[0].0, dir.path(), &[]),
        expected(&files)
    );
}

/// Issue 14: prune and copy cut each binlog source's archive at the oldest backup of that
/// source (they used the oldest backup of any source): a repository of two servers whose
/// binlog files have the same names, and a third archive with no backup. The copy leaves
/// out of each archive what the destination's prune would remove, and no more: s1 before
/// its backup at 3000, s2 before its backup at 1000, nothing of s3; the destination's
/// prune then has nothing to cut, and the next copy brings nothing back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_and_prune_cut_each_binlog_source_at_its_own_backups() {
    let dir = tempfile::tempdir().unwrap();
    let src_repo = KeyRepo::init(dir.path(), "source");
    let dst_repo = KeyRepo::init(dir.path(), "offsite");
    let (_, src_url, _, src_wk) = src_repo.parts();
    let dst = &dst_repo.path;
    let files = vec![("db/t.00001.csv".to_string(), noise(9, 100 << 10))];
    let file = "mysql-bin.000001";
    backup_of(
        "s1",
        src_url,
        src_wk,
        &files,
        (file, 3000),
        Some("2026-01-01T00:00:00Z"),
    )
    .await;
    backup_of(
        "s2",
        src_url,
        src_wk,
        &files,
        (file, 1000),
        Some("2026-01-02T00:00:00Z"),
    )
    .await;
    let t = chrono::Utc::now();
    let bounds = [4u64, 1000, 2000, 3000, 4000];
    for source in ["s1", "s2", "s3"] {
        for w in bounds.windows(2) {
            put_segment(src_url, src_wk, source, file, w[0], w[1], t).await;
        }
    }
    let stems = |source: &str| -> Vec<String> {
        binlog_stems(dst)
            .into_iter()
            .filter(|s| s.starts_with(&format!("{source}/")))
            .map(|s| s.rsplit('/').next().unwrap().to_string())
            .map(|r| {
                let (a, b) = r.split_once('-').unwrap();
                format!(
                    "{}-{}",
                    a.parse::<u64>().unwrap(),
                    b.parse::<u64>().unwrap()
                )
            })
            .collect()
    };
    let all: Vec<String> = bounds
        .windows(2)
        .map(|w| format!("{}-{}", w[0], w[1]))
        .collect();
    let copy = || {
        let out = rbackup(&src_repo.copy_to(&dst_repo), &[]);
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    };
    let said = copy();
    // s1: 3 objects end at or before 3000; s2: 1 at or before 1000.
    assert!(said.contains("left out 4 binlog objects"), "{said}");
    assert_eq!(stems("s1"), all[3..], "{said}");
    assert_eq!(stems("s2"), all[1..], "{said}");
    assert_eq!(stems("s3"), all, "{said}");

    let out = dst_repo.run(&["prune", "--keep-last", "2"], &[]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("binlog source s3: kept whole"), "{t}");
    assert_eq!(stems("s1"), all[3..], "{t}");
    assert_eq!(stems("s2"), all[1..], "{t}");
    assert_eq!(stems("s3"), all, "{t}");
    let said = copy();
    assert!(
        !said.contains("copied") || !said.contains("binlog objects ("),
        "{said}"
    );
    assert_eq!(stems("s1"), all[3..], "{said}");
    let out = dst_repo.run(&["verify"], &[]);
    assert!(out.status.success(), "{}", text(&out));
}

/// Issue 14: copy gives every segment a MAC under the destination's naming key; it used to
/// check only the source MAC and the events' BLAKE3, so a segment whose events fail their
/// CRC32 (damaged before the archiver sealed it, or sealed by anyone holding the source's
/// writer key), or one renamed to other positions, came out valid at the destination.
/// Now each is refused, naming it, and nothing of it reaches the destination.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_refuses_a_segment_whose_events_or_name_do_not_match() {
    let dir = tempfile::tempdir().unwrap();
    let src_repo = KeyRepo::init(dir.path(), "source");
    let dst_repo = KeyRepo::init(dir.path(), "offsite");
    let (src, src_url, _, src_wk) = src_repo.parts();
    let dst = &dst_repo.path;
    let t = chrono::Utc::now();
    put_segment(src_url, src_wk, "s1", "mysql-bin.000001", 4, 3000, t).await;
    let args = src_repo.copy_to(&dst_repo);

    // Events whose CRC32 fails (one byte of the second event's body changed), in a
    // segment whose own CRC32, BLAKE3 and MAC are of these bytes.
    let mut bad = events(3000, 9000);
    bad[4096 + 100] ^= 1;
    let bad_name = put_segment_bytes(
        src_url,
        src_wk,
        "s1",
        "mysql-bin.000001",
        (3000, 9000),
        t,
        bad,
    )
    .await;
    let out = rbackup(&args, &[]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains(&bad_name) && said.contains("CRC32"), "{said}");
    assert!(
        !binlog_stems(dst)
            .iter()
            .any(|s| s.contains("-00000000000000009000")),
        "{:?}",
        binlog_stems(dst)
    );
    std::fs::remove_file(src.join(&bad_name)).unwrap();

    // A valid segment put under another name (its storage ID still matches its bytes).
    let good = put_segment(src_url, src_wk, "s1", "mysql-bin.000001", 3000, 9000, t).await;
    let id = good.rsplit_once('.').unwrap().1;
    let moved = format!("binlog/s1/mysql-bin.000002/{:020}-{:020}.{id}", 3000, 9000);
    std::fs::create_dir_all(src.join("binlog/s1/mysql-bin.000002")).unwrap();
    std::fs::copy(src.join(&good), src.join(&moved)).unwrap();
    let out = rbackup(&args, &[]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&moved) && said.contains("not what its name says"),
        "{said}"
    );
    assert!(
        !binlog_stems(dst)
            .iter()
            .any(|s| s.contains("mysql-bin.000002")),
        "{:?}",
        binlog_stems(dst)
    );
    std::fs::remove_file(src.join(&moved)).unwrap();

    // What is whole copies.
    let out = rbackup(&args, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        binlog_stems(dst),
        [
            "s1/mysql-bin.000001/00000000000000000004-00000000000000003000",
            "s1/mysql-bin.000001/00000000000000003000-00000000000000009000"
        ]
    );
}
