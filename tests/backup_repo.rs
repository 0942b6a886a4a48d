//! The rbackup repository layer (src/backup/) against a local directory and a real S3
//! server (moto_server on loopback): round trips, deduplication, damage named, keys
//! refused, locks, interrupted backups.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rdump::backup::error::BackupError;
use rdump::backup::lock::{self, LockKind};
use rdump::backup::store::{S3Settings, Store, StoreOptions};
use rdump::backup::writer::SnapshotInfo;
use rdump::backup::{
    self, Access, BackupWriter, FileEntry, InitOptions, RepositoryReader, WriterOptions,
};
use serde_json::json;

/// Row-like text, deterministic.
fn rows(n: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 64);
    let mut x = seed;
    let mut i = 0u64;
    while out.len() < n {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        i += 1;
        out.extend_from_slice(format!("({i},'{:016x}',{}),\n", x, x >> 50).as_bytes());
    }
    out.truncate(n);
    out
}

/// A repository under test: its URL, storage options, and the keys made at init.
struct Repo {
    url: String,
    options: StoreOptions,
    identity: age::x25519::Identity,
    writer: backup::keys::WriterKey,
    _dir: tempfile::TempDir,
    _moto: Option<common::s3::MotoServer>,
}

impl Repo {
    async fn local() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("repo").to_str().unwrap().to_string();
        Repo::init(url, StoreOptions::default(), dir, None).await
    }

    async fn s3() -> Repo {
        let moto = common::s3::MotoServer::start();
        moto.create_bucket("backups");
        let options = StoreOptions {
            s3: S3Settings {
                endpoint: Some(moto.endpoint()),
                region: Some(common::s3::REGION.into()),
                access_key_id: Some(common::s3::ACCESS_KEY_ID.into()),
                secret_access_key: Some(common::s3::SECRET_ACCESS_KEY.into()),
            },
            retry_timeout: Some(Duration::from_secs(3)),
            max_retries: Some(2),
            ..Default::default()
        };
        let dir = tempfile::tempdir().unwrap();
        Repo::init("s3://backups/nightly".into(), options, dir, Some(moto)).await
    }

    async fn init(
        url: String,
        options: StoreOptions,
        dir: tempfile::TempDir,
        moto: Option<common::s3::MotoServer>,
    ) -> Repo {
        let identity = age::x25519::Identity::generate();
        let init = InitOptions {
            recipients: vec![identity.to_public().to_string()],
            ..Default::default()
        };
        let (_, writer) = backup::init(&url, init, &options).await.unwrap();
        Repo {
            url,
            options,
            identity,
            writer: writer.expect("an encrypted repository has a writer key"),
            _dir: dir,
            _moto: moto,
        }
    }

    fn local_path(&self) -> PathBuf {
        PathBuf::from(&self.url)
    }

    async fn writer(&self, options: WriterOptions) -> backup::Result<BackupWriter> {
        let repo = backup::open(
            &self.url,
            &Access::Writer(self.writer.clone()),
            &self.options,
        )
        .await?;
        BackupWriter::start(repo, options).await
    }

    async fn reader(&self) -> RepositoryReader {
        let access = Access::Identities(vec![Box::new(self.identity.clone())]);
        let repo = backup::open(&self.url, &access, &self.options)
            .await
            .unwrap();
        RepositoryReader::open(repo).await.unwrap()
    }

    fn store(&self) -> Store {
        Store::open(&self.url, &self.options, false).unwrap()
    }
}

fn small_packs() -> WriterOptions {
    WriterOptions {
        pack_size: 256 * 1024,
        index_every: 2,
        ..Default::default()
    }
}

/// Writes `files` as one backup (in pieces of 100,000 bytes) and commits it.
async fn backup_files(
    repo: &Repo,
    files: &[(&str, Vec<u8>)],
) -> (String, backup::snapshot::Snapshot) {
    let w = repo.writer(small_packs()).await.unwrap();
    for (name, data) in files {
        let mut f = w.file(name);
        for piece in data.chunks(100_000) {
            f.write(piece).unwrap();
        }
        w.close_file(f, json!({ "file": name })).unwrap();
    }
    w.commit(SnapshotInfo {
        tags: vec!["nightly".into()],
        meta: json!({ "databases": ["db"] }),
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn entries(reader: &RepositoryReader, id: &str) -> backup::Result<Vec<FileEntry>> {
    let (_, snap) = reader.snapshot(id).await?;
    let mut catalog = reader.catalog(&snap);
    let mut out = Vec::new();
    while let Some(e) = catalog.next().await? {
        out.push(e);
    }
    Ok(out)
}

async fn restore(reader: &RepositoryReader, entry: &FileEntry) -> backup::Result<Vec<u8>> {
    let mut out = Vec::new();
    reader.read_file(entry).copy_to(&mut out).await?;
    Ok(out)
}

async fn restore_all(
    reader: &RepositoryReader,
    id: &str,
) -> backup::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for e in entries(reader, id).await? {
        out.push((e.name.clone(), restore(reader, &e).await?));
    }
    Ok(out)
}

fn sample_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("db/t.00000.sql", rows(3_000_000, 1)),
        ("db/empty.sql", Vec::new()),
        ("db/small.sql", b"CREATE TABLE t (id int);\n".to_vec()),
        ("db/u.00000.sql", rows(700_000, 2)),
    ]
}

/// Backup, restore, a second backup that stores only what changed.
async fn round_trip(repo: &Repo) {
    let files = sample_files();
    let (id, snap) = backup_files(repo, &files).await;
    assert_eq!(snap.stats.files, 4);
    assert_eq!(snap.stats.logical_bytes, 3_700_025);
    assert_eq!(snap.tags, vec!["nightly".to_string()]);

    let reader = repo.reader().await;
    let (latest, _) = reader.snapshot("latest").await.unwrap();
    assert_eq!(latest, id);
    let restored = restore_all(&reader, &id).await.unwrap();
    let expected: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(n, d)| (n.to_string(), d.clone()))
        .collect();
    assert_eq!(restored, expected);

    // Night two: one row inserted in the middle of the big table, one appended.
    let mut changed = files.clone();
    let t = &mut changed[0].1;
    t.splice(
        1_500_000..1_500_000,
        b"(999999,'inserted',1),\n".iter().copied(),
    );
    t.extend_from_slice(b"(1000000,'appended',2),\n");
    let (id2, snap2) = backup_files(repo, &changed).await;
    assert_ne!(id2, id);
    let stats = &snap2.stats;
    assert!(
        stats.new_bytes * 20 < stats.logical_bytes,
        "night two stored {} of {} bytes again",
        stats.new_bytes,
        stats.logical_bytes
    );
    let reader = repo.reader().await;
    assert_eq!(reader.snapshots().await.unwrap().len(), 2);
    let restored = restore_all(&reader, &id2).await.unwrap();
    assert_eq!(restored[0].1, changed[0].1);
    // The first backup is untouched.
    assert_eq!(restore_all(&reader, &id).await.unwrap(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_round_trip_and_dedup() {
    let repo = Repo::local().await;
    round_trip(&repo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_round_trip_and_dedup() {
    let repo = Repo::s3().await;
    round_trip(&repo).await;
    // What is stored is ciphertext: no row text anywhere in the bucket.
    let store = repo.store();
    for listed in store.list("data").await.unwrap() {
        let bytes = store.get(&listed.name).await.unwrap();
        assert!(
            bytes.starts_with(b"age-encryption.org/v1\n"),
            "{}",
            listed.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_init_twice_refuses_and_locks_use_conditional_puts() {
    let repo = Repo::s3().await;
    let again = backup::init(
        &repo.url,
        InitOptions {
            recipients: vec![repo.identity.to_public().to_string()],
            ..Default::default()
        },
        &repo.options,
    )
    .await
    .unwrap_err();
    assert!(again.to_string().contains("already exists"), "{again}");
    let store = repo.store();
    let first = lock::acquire(&store, LockKind::Unique("backup-db1".into()), "backup")
        .await
        .unwrap();
    let second = lock::acquire(&store, LockKind::Unique("backup-db1".into()), "backup")
        .await
        .unwrap_err();
    assert!(matches!(second, BackupError::Locked(_)), "{second}");
    assert!(
        second.to_string().contains("locked by backup (host"),
        "{second}"
    );
    first.release().await.unwrap();
    lock::acquire(&store, LockKind::Unique("backup-db1".into()), "backup")
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
}

fn packs_on_disk(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(repo.join("data")).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            out.push(f.unwrap().path());
        }
    }
    out.sort();
    out
}

fn pack_object(path: &Path) -> String {
    let id = path.file_name().unwrap().to_str().unwrap();
    format!("data/{}/{id}", &id[..2])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_a_pack_fails_the_restore_naming_the_pack_and_file() {
    let repo = Repo::local().await;
    let (id, _) = backup_files(&repo, &sample_files()).await;
    let packs = packs_on_disk(&repo.local_path());
    assert!(packs.len() > 3, "{} packs", packs.len());
    let victim = &packs[packs.len() / 2];
    let mut bytes = std::fs::read(victim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(victim, bytes).unwrap();

    let reader = repo.reader().await;
    let e = restore_all(&reader, &id).await.unwrap_err();
    assert!(e.is_damage(), "{e}");
    let message = e.to_string();
    assert!(message.starts_with(&pack_object(victim)), "{message}");
    assert!(message.contains("damaged"), "{message}");
    assert!(message.contains("(needed by "), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_pack_fails_the_restore_naming_it() {
    let repo = Repo::s3().await;
    let (id, _) = backup_files(&repo, &sample_files()).await;
    let store = repo.store();
    let packs = store.list("data").await.unwrap();
    let victim = &packs[packs.len() / 2].name;
    store.delete(victim).await.unwrap();

    let reader = repo.reader().await;
    let e = restore_all(&reader, &id).await.unwrap_err();
    assert!(matches!(e, BackupError::Missing { .. }), "{e}");
    let message = e.to_string();
    assert!(
        // The file that needs it: a table's, or the catalog, whichever the pack held.
        message.starts_with(&format!("{victim}: missing (needed by ")),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_keys_are_refused_and_a_writer_cannot_read() {
    let repo = Repo::local().await;
    backup_files(&repo, &sample_files()[2..3]).await;

    let stranger = Access::Identities(vec![Box::new(age::x25519::Identity::generate())]);
    let e = backup::open(&repo.url, &stranger, &repo.options)
        .await
        .unwrap_err();
    assert!(matches!(e, BackupError::Key(_)), "{e}");
    assert!(
        e.to_string()
            .contains("none of the repository's key files opens"),
        "{e}"
    );

    let e = backup::open(&repo.url, &Access::None, &repo.options)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("the repository is encrypted"), "{e}");

    // The writer key opens the repository for writing only.
    let writer = backup::open(
        &repo.url,
        &Access::Writer(repo.writer.clone()),
        &repo.options,
    )
    .await
    .unwrap();
    let store = writer.store.clone();
    let e = RepositoryReader::open(writer.clone()).await.unwrap_err();
    assert!(e.to_string().contains("a writer key cannot decrypt"), "{e}");
    let snapshot = &store.list("snapshots").await.unwrap()[0].name;
    let bytes = store.get(snapshot).await.unwrap();
    let e = writer.keys.decrypt(snapshot, &bytes).unwrap_err();
    assert!(matches!(e, BackupError::Key(_)), "{e}");

    // Another repository's writer key is refused.
    let other = Repo::local().await;
    let e = backup::open(
        &repo.url,
        &Access::Writer(other.writer.clone()),
        &repo.options,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("not this repository's"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passphrase_opens_its_own_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("repo").to_str().unwrap().to_string();
    let options = StoreOptions::default();
    let pass = |p: &str| age::secrecy::SecretString::from(p.to_string());
    backup::init(
        &url,
        InitOptions {
            recipients: vec![age::x25519::Identity::generate().to_public().to_string()],
            passphrase: Some(pass("correct horse")),
            scrypt_log_n: Some(10),
            ..Default::default()
        },
        &options,
    )
    .await
    .unwrap();
    let repo = backup::open(&url, &Access::Passphrase(pass("correct horse")), &options)
        .await
        .unwrap();
    assert!(repo.keys.can_read());
    let e = backup::open(&url, &Access::Passphrase(pass("wrong")), &options)
        .await
        .unwrap_err();
    assert!(matches!(e, BackupError::Key(_)), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_backup_of_the_same_source_refuses_and_prune_waits_for_backups() {
    let repo = Repo::local().await;
    let unique = || WriterOptions {
        unique_lock: Some("backup-db1".into()),
        ..small_packs()
    };
    let first = repo.writer(unique()).await.unwrap();
    let e = repo.writer(unique()).await.unwrap_err();
    assert!(matches!(e, BackupError::Locked(_)), "{e}");
    assert!(
        e.to_string()
            .contains("backup backup-db1 is locked by backup"),
        "{e}"
    );
    // Backups of other sources go on side by side.
    let other = repo.writer(small_packs()).await.unwrap();
    // A prune (exclusive) refuses while backups run.
    let store = repo.store();
    let e = lock::acquire(&store, LockKind::Exclusive, "prune")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("in use by backup"), "{e}");

    let mut f = first.file("a");
    f.write(&rows(300_000, 5)).unwrap();
    first.close_file(f, json!(null)).unwrap();
    first.commit(SnapshotInfo::default()).await.unwrap();
    other.commit(SnapshotInfo::default()).await.unwrap();

    // Once they are done, prune gets the repository, and a backup then refuses.
    let prune = lock::acquire(&store, LockKind::Exclusive, "prune")
        .await
        .unwrap();
    let e = repo.writer(unique()).await.unwrap_err();
    assert!(e.to_string().contains("locked exclusively by prune"), "{e}");
    prune.release().await.unwrap();
    repo.writer(unique()).await.unwrap().abort().await;
    assert!(store.list("locks").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_backup_leaves_no_snapshot_and_the_next_reuses_its_packs() {
    let repo = Repo::local().await;
    let data = rows(3_000_000, 9);
    let store = repo.store();

    // Killed mid-file: dropped without commit or abort. Only the periodic indexes exist.
    let w = repo.writer(small_packs()).await.unwrap();
    let mut f = w.file("db/t.00000.sql");
    for piece in data[..2_000_000].chunks(100_000) {
        f.write(piece).unwrap();
    }
    // Killed once three packs are up (so the index of the first two is written).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while w.stats().packs < 3 {
        assert!(std::time::Instant::now() < deadline, "{:?}", w.stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(f);
    drop(w);
    assert!(store.list("snapshots").await.unwrap().is_empty());
    let packs_after_crash = store.list("data").await.unwrap().len();
    assert!(packs_after_crash >= 2, "{packs_after_crash} packs");
    assert!(!store.list("index").await.unwrap().is_empty());

    // Stopped by an error: abort indexes everything uploaded, still no snapshot.
    let w = repo.writer(small_packs()).await.unwrap();
    let mut f = w.file("db/t.00000.sql");
    for piece in data[..2_500_000].chunks(100_000) {
        f.write(piece).unwrap();
    }
    let stored_by_abort = w.stats().new_bytes;
    drop(f);
    w.abort().await;
    assert!(store.list("snapshots").await.unwrap().is_empty());
    assert!(
        stored_by_abort < 1_500_000,
        "the second attempt stored {stored_by_abort} bytes again"
    );

    // The next backup completes and stores only the last part.
    let (id, snap) = backup_files(&repo, &[("db/t.00000.sql", data.clone())]).await;
    assert!(
        snap.stats.new_bytes < 800_000,
        "stored {} of {} bytes again",
        snap.stats.new_bytes,
        data.len()
    );
    let reader = repo.reader().await;
    assert_eq!(restore_all(&reader, &id).await.unwrap()[0].1, data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_outage_fails_the_backup_with_an_error_naming_the_object() {
    let mut repo = Repo::s3().await;
    let w = repo.writer(small_packs()).await.unwrap();
    let mut f = w.file("db/t.00000.sql");
    f.write(&rows(500_000, 3)).unwrap();
    repo._moto.as_mut().unwrap().stop();
    let mut failed = None;
    for piece in rows(3_000_000, 4).chunks(100_000) {
        if let Err(e) = f.write(piece) {
            failed = Some(e);
            break;
        }
    }
    let e = failed.expect("writing with the server stopped fails");
    let message = e.to_string();
    assert!(
        message.starts_with("data/") || message.starts_with("index/"),
        "{message}"
    );
    assert!(message.contains("storage error"), "{message}");
    assert!(message.contains("s3://backups/nightly"), "{message}");
    drop(f);
    w.abort().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_written_from_many_tasks_at_once_round_trip() {
    // Small packs: the upload queue fills and writers wait for it (block_in_place).
    let repo = Repo::local().await;
    let w = std::sync::Arc::new(
        repo.writer(WriterOptions {
            pack_size: 64 * 1024,
            index_every: 3,
            ..Default::default()
        })
        .await
        .unwrap(),
    );
    let mut tasks = Vec::new();
    for t in 0..4u64 {
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            for c in 0..3u64 {
                let name = format!("db/t{t}.{c:05}.sql");
                let data = rows(400_000, t * 10 + c);
                let mut f = w.file(&name);
                for piece in data.chunks(50_000) {
                    f.write(piece).unwrap();
                    tokio::task::yield_now().await;
                }
                w.close_file(f, json!(null)).unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let w = std::sync::Arc::try_unwrap(w).unwrap();
    let (id, snap) = w.commit(SnapshotInfo::default()).await.unwrap();
    assert_eq!(snap.stats.files, 12);
    assert!(snap.stats.packs > 20, "{:?}", snap.stats);
    let reader = repo.reader().await;
    let mut restored = restore_all(&reader, &id).await.unwrap();
    restored.sort();
    let mut expected = Vec::new();
    for t in 0..4u64 {
        for c in 0..3u64 {
            expected.push((format!("db/t{t}.{c:05}.sql"), rows(400_000, t * 10 + c)));
        }
    }
    expected.sort();
    assert_eq!(restored, expected);
}

fn lock_body(pid: u32, host: &str, refreshed: chrono::DateTime<chrono::Utc>) -> bytes::Bytes {
    bytes::Bytes::from(
        serde_json::to_vec(&json!({
            "kind": "unique", "operation": "backup", "host": host, "pid": pid,
            "created": refreshed.to_rfc3339(), "refreshed": refreshed.to_rfc3339(),
            "ttl_secs": 900
        }))
        .unwrap(),
    )
}

/// A pid that is not running on this host.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

/// A lock left by a killed process of this host, or not refreshed for its ttl, is taken
/// over; a live one elsewhere is not.
async fn stale_locks_are_taken_over(repo: &Repo) {
    let store = repo.store();
    let name = "locks/unique-backup-db1";
    let unique = || LockKind::Unique("backup-db1".into());

    store
        .put(
            name,
            lock_body(dead_pid(), &this_host(), chrono::Utc::now()),
        )
        .await
        .unwrap();
    let taken = lock::acquire(&store, unique(), "backup").await.unwrap();
    taken.release().await.unwrap();

    let old = chrono::Utc::now() - chrono::Duration::hours(1);
    store
        .put(name, lock_body(1, "another-host", old))
        .await
        .unwrap();
    let taken = lock::acquire(&store, unique(), "backup").await.unwrap();
    taken.release().await.unwrap();

    store
        .put(name, lock_body(1, "another-host", chrono::Utc::now()))
        .await
        .unwrap();
    let e = lock::acquire(&store, unique(), "backup").await.unwrap_err();
    assert!(e.to_string().contains("host another-host, pid 1"), "{e}");
    store.delete(name).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_locks_are_taken_over_locally() {
    stale_locks_are_taken_over(&Repo::local().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_locks_are_taken_over_on_s3_by_conditional_overwrite() {
    stale_locks_are_taken_over(&Repo::s3().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_is_refreshed_and_never_goes_stale() {
    let repo = Repo::local().await;
    let store = repo.store();
    let ttl = Duration::from_secs(3);
    let unique = || LockKind::Unique("binlog-db1".into());
    let held = lock::acquire_with_ttl(&store, unique(), "binlog", ttl)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let e = lock::acquire_with_ttl(&store, unique(), "binlog", ttl)
        .await
        .unwrap_err();
    assert!(matches!(e, BackupError::Locked(_)), "{e}");
    held.check().unwrap();
    held.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_taken_over_is_lost_not_overwritten_by_the_old_holder() {
    // The holder looked stale (paused, partitioned) and another operation took the lock
    // over; when the old holder comes back its refresher must not overwrite the new
    // holder's lock (both would go on), and its release must not delete it.
    let repo = Repo::local().await;
    let store = repo.store();
    let name = "locks/unique-backup-db1";
    let ttl = Duration::from_secs(3);
    let held = lock::acquire_with_ttl(&store, LockKind::Unique("backup-db1".into()), "backup", ttl)
        .await
        .unwrap();
    let theirs = lock_body(1, "another-host", chrono::Utc::now());
    store.put(name, theirs.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        store.get(name).await.unwrap(),
        theirs,
        "the new holder's lock was overwritten"
    );
    let e = held.check().unwrap_err();
    assert!(matches!(e, BackupError::Locked(_)), "{e}");
    held.release().await.unwrap();
    assert_eq!(
        store.get(name).await.unwrap(),
        theirs,
        "the new holder's lock was deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_takers_of_a_stale_local_lock_never_both_win() {
    // A local directory has no conditional overwrite: a takeover by delete-then-create let
    // two takers that both read the stale lock both hold it (the second deleted the
    // first's new lock). Each round, several operations (each with its own store, as
    // separate processes would have) race for the same stale lock: exactly one wins.
    let repo = Repo::local().await;
    let name = "locks/unique-backup-race";
    for round in 0..25 {
        repo.store()
            .put(
                name,
                lock_body(dead_pid(), &this_host(), chrono::Utc::now()),
            )
            .await
            .unwrap();
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(6));
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let store = repo.store();
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                lock::acquire(&store, LockKind::Unique("backup-race".into()), "backup").await
            }));
        }
        let mut won = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(guard) => won.push(guard),
                Err(e) => assert!(matches!(e, BackupError::Locked(_)), "{e}"),
            }
        }
        assert_eq!(won.len(), 1, "round {round}: {} takers won", won.len());
        for g in won {
            g.release().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_to_dir_refuses_a_catalog_with_a_name_twice() {
    let repo = Repo::local().await;
    let w = repo.writer(small_packs()).await.unwrap();
    for data in [rows(1000, 1), rows(1000, 2)] {
        let mut f = w.file("db/t.00000.sql");
        f.write(&data).unwrap();
        w.close_file(f, json!({})).unwrap();
    }
    let (id, snap) = w.commit(SnapshotInfo::default()).await.unwrap();
    let reader = repo.reader().await;
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("restored");
    let e = reader
        .restore_to_dir(&snap, &dir, &["rdump.json"])
        .await
        .unwrap_err();
    assert!(matches!(e, BackupError::Damaged { .. }), "{e}");
    assert!(e.to_string().contains("db/t.00000.sql"), "{e}");
    assert!(
        e.to_string().contains(&id[..8]) || e.to_string().contains("twice"),
        "{e}"
    );
    // The first copy stays as it was: nothing was overwritten.
    assert_eq!(
        std::fs::read(dir.join("db/t.00000.sql")).unwrap(),
        rows(1000, 1)
    );
}
