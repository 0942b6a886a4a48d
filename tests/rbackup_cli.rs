//! The `rbackup` binary's `init` and `list` against a local directory and a real S3 server
//! (moto_server): flags, environment, secret files, exit codes.

mod common;

use common::rbackup::{rbackup, text};

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use age::secrecy::ExposeSecret;
use rdump::backup::store::StoreOptions;
use rdump::backup::writer::SnapshotInfo;
use rdump::backup::{self, Access, BackupWriter, WriterOptions};
use serde_json::json;

fn identity_file(dir: &Path) -> (age::x25519::Identity, String) {
    let identity = age::x25519::Identity::generate();
    let path = dir.join("reader.key");
    std::fs::write(&path, format!("{}\n", identity.to_string().expose_secret())).unwrap();
    (identity, path.to_str().unwrap().to_string())
}

/// Adds one backup through the library with the writer key file, as a dump would.
async fn one_backup(url: &str, writer_key: &Path, options: &StoreOptions) -> String {
    let access = Access::writer_key_file(writer_key).unwrap();
    let repo = backup::open(url, &access, options).await.unwrap();
    let w = BackupWriter::start(repo, WriterOptions::default())
        .await
        .unwrap();
    let mut f = w.file("db/t.00000.sql");
    f.write(b"INSERT INTO t VALUES (1),(2),(3);\n").unwrap();
    w.close_file(f, json!(null)).unwrap();
    let meta = json!({"databases": ["db"], "coordinates": {"file": "binlog.000003", "position": 1234, "gtid": "0-1-42"}});
    let (id, _) = w
        .commit(SnapshotInfo {
            tags: vec!["nightly".into()],
            meta,
            ..Default::default()
        })
        .await
        .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_then_list_on_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let url = repo.to_str().unwrap().to_string();
    let (identity, id_file) = identity_file(dir.path());
    let recipients = dir.path().join("recipients.txt");
    std::fs::write(
        &recipients,
        format!("# the DBA\n{}\n", identity.to_public()),
    )
    .unwrap();
    let writer_key = dir.path().join("writer.key");

    let out = rbackup(
        &[
            "init",
            "--repo",
            &url,
            "--recipients-file",
            recipients.to_str().unwrap(),
            "--writer-key-file",
            writer_key.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("encrypted with age"), "{}", text(&out));
    let mode = std::fs::metadata(&writer_key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let key_text = std::fs::read_to_string(&writer_key).unwrap();
    // The secret never reaches the output.
    let secret = key_text
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap();
    assert!(!text(&out).contains(secret));

    // A second init refuses, and leaves the existing writer key alone.
    let out = rbackup(
        &[
            "init",
            "--repo",
            &url,
            "--recipient",
            &identity.to_public().to_string(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("a repository already exists here"),
        "{}",
        text(&out)
    );

    let id = one_backup(&url, &writer_key, &StoreOptions::default()).await;

    // The repository from the environment, the identity from a flag.
    let env = [("RBACKUP_REPO", url.clone())];
    let out = rbackup(&["list", "--identity-file", &id_file], &env);
    assert!(out.status.success(), "{}", text(&out));
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(listing.contains(&id[..8]), "{listing}");
    assert!(listing.contains("binlog.000003:1234 0-1-42"), "{listing}");
    assert!(listing.contains("nightly"), "{listing}");

    let out = rbackup(
        &["list", "--json"],
        &[
            ("RBACKUP_REPO", url.clone()),
            ("RBACKUP_IDENTITY_FILE", id_file.clone()),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["id"], json!(id));
    assert_eq!(list[0]["stats"]["logical_bytes"], json!(34));

    // No key, a stranger's key: refused with exit 1.
    let out = rbackup(&["list", "--repo", &url], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("the repository is encrypted"),
        "{}",
        text(&out)
    );
    let other = tempfile::tempdir().unwrap();
    let (_, stranger) = identity_file(other.path());
    let out = rbackup(&["list", "--repo", &url, "--identity-file", &stranger], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    // A damaged snapshot: exit 5, naming it.
    let snap = repo.join("snapshots").join(&id);
    let mut bytes = std::fs::read(&snap).unwrap();
    let n = bytes.len() - 3;
    bytes[n] ^= 0x40;
    std::fs::write(&snap, bytes).unwrap();
    let out = rbackup(&["list", "--repo", &url, "--identity-file", &id_file], &[]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("snapshots/{id}: damaged")),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_then_list_on_s3_from_the_aws_environment() {
    let moto = common::s3::MotoServer::start();
    moto.create_bucket("rbk");
    let dir = tempfile::tempdir().unwrap();
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "a long passphrase\n").unwrap();
    let url = "s3://rbk/db1";
    let env = moto.env();
    let out = rbackup(
        &[
            "init",
            "--repo",
            url,
            "--passphrase-file",
            pass.to_str().unwrap(),
        ],
        &env,
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = rbackup(
        &[
            "list",
            "--repo",
            url,
            "--passphrase-file",
            pass.to_str().unwrap(),
        ],
        &env,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        1,
        "{}",
        text(&out)
    );

    // Plain http to a non-loopback endpoint is refused before any request.
    let mut far = env.clone();
    far.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    far.push(("AWS_ENDPOINT_URL", "http://192.0.2.1:9000".into()));
    let out = rbackup(
        &[
            "list",
            "--repo",
            url,
            "--passphrase-file",
            pass.to_str().unwrap(),
        ],
        &far,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("plain http is allowed only for a loopback endpoint"),
        "{}",
        text(&out)
    );

    // The storage gone: exit 2, naming the object.
    let mut moto = moto;
    moto.stop();
    let out = rbackup(
        &[
            "list",
            "--repo",
            url,
            "--passphrase-file",
            pass.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("config: storage error"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_to_dir_writes_the_files_back_and_names_damage() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let url = repo.to_str().unwrap().to_string();
    let (identity, id_file) = identity_file(dir.path());
    let writer_key = dir.path().join("writer.key");
    let out = rbackup(
        &[
            "init",
            "--repo",
            &url,
            "--recipient",
            &identity.to_public().to_string(),
            "--writer-key-file",
            writer_key.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));

    // A dump-like backup: the manifest closed first here, restored last anyway.
    let mut files: Vec<(String, Vec<u8>)> = vec![("rdump.json".into(), b"{}\n".to_vec())];
    for t in 0..3 {
        let mut data = Vec::new();
        for i in 0..40_000 {
            data.extend_from_slice(
                format!("INSERT INTO t{t} VALUES ({i},'row {i} of {t}');\n").as_bytes(),
            );
        }
        files.push((format!("db/t{t}.00000.sql"), data));
    }
    let access = Access::writer_key_file(&writer_key).unwrap();
    let r = backup::open(&url, &access, &StoreOptions::default())
        .await
        .unwrap();
    let w = BackupWriter::start(
        r,
        WriterOptions {
            pack_size: 128 * 1024,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for (name, data) in &files {
        let mut f = w.file(name);
        f.write(data).unwrap();
        w.close_file(f, json!(null)).unwrap();
    }
    let (id, _) = w.commit(SnapshotInfo::default()).await.unwrap();

    let target = dir.path().join("restored");
    let t = target.to_str().unwrap();
    let out = rbackup(
        &[
            "restore",
            "--repo",
            &url,
            "--identity-file",
            &id_file,
            &id[..10],
            "--to-dir",
            t,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    for (name, data) in &files {
        let path = target.join(name);
        assert_eq!(&std::fs::read(&path).unwrap(), data, "{name}");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    // Into a directory that is not empty: refused.
    let out = rbackup(
        &[
            "restore",
            "--repo",
            &url,
            "--identity-file",
            &id_file,
            "--to-dir",
            t,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("not empty"), "{}", text(&out));

    // A flipped byte in a pack: exit 5, the pack and the file named, no partial file left.
    let packs: Vec<_> = walk(&repo.join("data"));
    let victim = packs.last().unwrap();
    let mut bytes = std::fs::read(victim).unwrap();
    let n = bytes.len() / 3;
    bytes[n] ^= 0x10;
    std::fs::write(victim, bytes).unwrap();
    let again = dir.path().join("again");
    let out = rbackup(
        &[
            "restore",
            "--repo",
            &url,
            "--identity-file",
            &id_file,
            "latest",
            "--to-dir",
            again.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let pack_id = victim.file_name().unwrap().to_str().unwrap();
    assert!(
        text(&out).contains(&format!("data/{}/{pack_id}: damaged", &pack_id[..2])),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("(needed by "), "{}", text(&out));
    assert!(!again.join("rdump.json").exists());
    assert!(
        walk(&again)
            .iter()
            .all(|p| !p.to_str().unwrap().ends_with(".rbackup-partial"))
    );

    // Into a server, the damage is found while staging, before any connection: exit 5,
    // the damaged object named (tests/rbackup_roundtrip.rs restores into real servers).
    let out = rbackup(
        &[
            "restore",
            "--repo",
            &url,
            "--identity-file",
            &id_file,
            "--no-defaults",
            "--socket=/nonexistent/rbackup-test.sock",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).contains("(needed by "), "{}", text(&out));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
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
