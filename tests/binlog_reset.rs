//! A source whose binlog restarts under the archiver, on a real MariaDB: `RESET MASTER`
//! (numbering back to `<base>.000001`) and a new `log_bin_basename`. The archive's
//! positions are (file, offset) pairs ordered by file number: the new files' positions
//! would be taken for the old ones'. So `rbackup binlog` refuses to go on (exit 2), naming
//! the server, where the archive ends, the server's binlog and what to do; it records no
//! gap (a gap "from binlog.000003 to binlog.000001" ordered nowhere sensible) and writes
//! nothing into the old archive; it never loops recording gaps. The old archive stays
//! whole: a restore to its end gives the state before the reset; a backup taken after
//! the reset under the old name is refused as a replay start. Archiving the server as a
//! new source, with backups naming it, then works. A new file that has already grown past
//! the archive's end under the same name is refused too when the archive's end falls
//! inside one of its events (ERR 1236, and a gap can only go forward).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::rbackup::{PassphraseRepo, rbackup, rbackup_on, text};
use common::{Server, ServerOptions, connection};

/// `rbackup binlog` of `source` into `repo` as source `name` (segments cut every second),
/// with `tail` after the connection options.
fn archiver(
    repo: &PassphraseRepo,
    source: &Server,
    name: &str,
    tail: &[&str],
) -> std::process::Command {
    let args = [
        "binlog",
        "--repo",
        &repo.url,
        "--passphrase-file",
        &repo.pass,
        "--flush-interval",
        "1s",
        "--source",
        name,
    ];
    common::rbackup::command_on(&args, source, tail)
}

/// `rbackup binlog --once` of `source` into `repo` as source `name`, killed (and the test
/// failed) if it runs for more than 120 s: its exit code and output.
fn archive_once(repo: &PassphraseRepo, source: &Server, name: &str) -> (Option<i32>, String) {
    let mut child = archiver(repo, source, name, &["--once"])
        .spawn()
        .expect("spawn rbackup binlog");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "rbackup binlog --once still runs after 120 s: {}",
                text(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    eprintln!("binlog --once ({name}): {}", text(&out));
    (out.status.code(), text(&out))
}

/// Every object under `binlog/` of the repository: its path relative to the repository.
fn archive_objects(repo: &PassphraseRepo) -> Vec<PathBuf> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let root = PathBuf::from(&repo.url);
    let mut out = Vec::new();
    walk(&root.join("binlog"), &root, &mut out);
    out.sort();
    out
}

/// `rbackup backup` of `source` (as binlog source `name`): its ID.
fn backup(repo: &PassphraseRepo, source: &Server, name: &str) -> String {
    let mut a: Vec<String> = [
        "backup",
        "--repo",
        &repo.url,
        "--passphrase-file",
        &repo.pass,
        "--source",
        name,
    ]
    .map(String::from)
    .to_vec();
    a.extend(connection(source));
    a.push("--progress=never".into());
    let args: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = rbackup(&args, &[]);
    assert!(out.status.success(), "backup: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn checksums(s: &Server) -> BTreeMap<String, String> {
    s.sql_rows("CHECKSUM TABLE shop.orders, shop.stock")
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

/// `rbackup restore ARGS` into `target` (database `shop` dropped first).
fn restore(repo: &PassphraseRepo, target: &Server, pitr: &[&str]) -> (Option<i32>, String) {
    target.sql("DROP DATABASE IF EXISTS shop");
    let mut args = vec![
        "restore",
        "--repo",
        repo.url.as_str(),
        "--passphrase-file",
        repo.pass.as_str(),
    ];
    args.extend_from_slice(pitr);
    let out = rbackup_on(&args, target, &["--threads=2", "--progress=never"]);
    eprintln!("restore {pitr:?}: {}", text(&out));
    (out.status.code(), text(&out))
}

fn write(source: &Server, round: u32, rows: u32) {
    source.sql(&format!(
        "INSERT INTO shop.orders (n, note) SELECT seq, 'r{round}' FROM shop.seq_1_to_{rows}; \
         UPDATE shop.stock SET qty = qty - {round} WHERE id % 3 = {m};",
        m = round % 3
    ));
}

/// The archiver refuses a restarted binlog, whether the archive ends in a file numbered
/// above the server's newest (rotations before `RESET MASTER`) or in `binlog.000001`
/// itself, past the end of the new, shorter `binlog.000001`; and a new base name.
#[test]
fn the_archiver_refuses_a_binlog_that_restarted_and_the_old_archive_stays_whole() {
    let (mut source, target) =
        common::start_two(common::options(1, true), ServerOptions::default());
    source.sql(
        "CREATE DATABASE shop; \
         CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, n INT, note VARCHAR(64)) \
           ENGINE=InnoDB; \
         CREATE TABLE shop.stock (id INT PRIMARY KEY, qty INT) ENGINE=InnoDB; \
         INSERT INTO shop.stock SELECT seq, 100 FROM shop.seq_1_to_50;",
    );

    // 1. The archive ends in binlog.000003; RESET MASTER; the server writes binlog.000001.
    let repo = PassphraseRepo::init();
    write(&source, 1, 2000);
    source.sql("FLUSH BINARY LOGS");
    let id = backup(&repo, &source, "src");
    write(&source, 2, 2000);
    source.sql("FLUSH BINARY LOGS");
    write(&source, 3, 2000);
    let (code, said) = archive_once(&repo, &source, "src");
    assert_eq!(code, Some(0), "{said}");
    let before_reset = checksums(&source);
    let end = source.sql_rows("SHOW MASTER STATUS")[0].clone();
    assert_eq!(end[0], "binlog.000003", "{end:?}");
    let objects = archive_objects(&repo);
    source.sql("RESET MASTER");
    write(&source, 4, 100);
    let (code, said) = archive_once(&repo, &source, "src");
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("RESET MASTER")
            && said.contains(&format!("binlog.000003:{}", end[1]))
            && said.contains("binlog.000001")
            && said.contains("--source"),
        "{said}"
    );
    assert!(!said.contains("GAP recorded"), "{said}");
    assert_eq!(archive_objects(&repo), objects, "the archive changed");
    // Again: the same refusal, nothing written.
    let (code, said) = archive_once(&repo, &source, "src");
    assert_eq!(code, Some(2), "{said}");
    assert_eq!(archive_objects(&repo), objects, "the archive changed");
    // The old archive restores to its end: the state before the reset.
    let (code, said) = restore(&repo, &target, &[&id, "--to-latest"]);
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(checksums(&target), before_reset, "{said}");
    // A backup taken after the reset under the old source's name (the archiver's advice
    // not followed): its coordinates, binlog.000001:N, are a position of the old archive's
    // binlog.000001 too. A restore from it never replays the old events after N onto it.
    let at_bad = checksums(&source);
    let bad = backup(&repo, &source, "src");
    let (code, said) = restore(&repo, &target, &[&bad, "--to-latest"]);
    eprintln!("post-reset backup, --to-latest: {code:?}");
    assert!(
        code != Some(0) || checksums(&target) == at_bad,
        "a post-reset backup replayed the old archive: {said}"
    );
    // Without an ID: the old backup to the old archive's end, or a refusal.
    let (code, said) = restore(&repo, &target, &["--to-latest"]);
    eprintln!("--to-latest: {code:?}");
    assert!(
        code != Some(0) || checksums(&target) == before_reset,
        "{said}"
    );
    // Prune keeping both: the old backup still restores to the old archive's end.
    let out = rbackup(
        &[
            "prune",
            "--repo",
            &repo.url,
            "--passphrase-file",
            &repo.pass,
            "--keep-last",
            "2",
        ],
        &[],
    );
    eprintln!("prune: {}", text(&out));
    assert!(out.status.success(), "{}", text(&out));
    let (code, said) = restore(&repo, &target, &[&id, "--to-latest"]);
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(checksums(&target), before_reset, "{said}");

    // The restarted server archived and backed up as a new source restores on its own.
    let (code, said) = archive_once(&repo, &source, "src-2");
    assert_eq!(code, Some(0), "{said}");
    let id2 = backup(&repo, &source, "src-2");
    write(&source, 5, 100);
    let (code, said) = archive_once(&repo, &source, "src-2");
    assert_eq!(code, Some(0), "{said}");
    let (code, said) = restore(&repo, &target, &[&id2, "--to-latest"]);
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(checksums(&target), checksums(&source), "{said}");

    // 2. The archive ends in binlog.000001, past the end of the new binlog.000001.
    let repo = PassphraseRepo::init();
    source.sql("RESET MASTER");
    write(&source, 6, 3000);
    let (code, said) = archive_once(&repo, &source, "src");
    assert_eq!(code, Some(0), "{said}");
    let end = source.sql_rows("SHOW MASTER STATUS")[0].clone();
    let objects = archive_objects(&repo);
    source.sql("RESET MASTER");
    write(&source, 7, 10);
    let (code, said) = archive_once(&repo, &source, "src");
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("RESET MASTER") && said.contains(&format!("binlog.000001:{}", end[1])),
        "{said}"
    );
    assert_eq!(archive_objects(&repo), objects, "the archive changed");

    // 3. A running archiver under RESET MASTER: it stops, refusing, and records no gap
    // (nor loops recording one after another).
    let repo = PassphraseRepo::init();
    source.sql("FLUSH BINARY LOGS");
    write(&source, 8, 100);
    let mut child = archiver(&repo, &source, "src", &[])
        .spawn()
        .expect("spawn rbackup binlog");
    let deadline = Instant::now() + Duration::from_secs(60);
    while archive_objects(&repo).is_empty() {
        assert!(Instant::now() < deadline, "nothing archived");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));
    source.sql("RESET MASTER");
    write(&source, 9, 10);
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("the archiver still runs after RESET MASTER: {}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let said = text(&out);
    eprintln!("running archiver: {said}");
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("RESET MASTER"), "{said}");
    let gaps: Vec<_> = archive_objects(&repo)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/gaps/"))
        .collect();
    assert!(gaps.is_empty(), "{gaps:?}\n{said}");

    // 4. A new log_bin_basename: the server writes renamed.* (binlog.* left on disk).
    let repo = PassphraseRepo::init();
    write(&source, 10, 100);
    let (code, said) = archive_once(&repo, &source, "src");
    assert_eq!(code, Some(0), "{said}");
    let objects = archive_objects(&repo);
    let renamed = source.dir().join("renamed");
    source.restart_with(&format!("--log-bin={}", renamed.to_str().unwrap()));
    write(&source, 11, 10);
    let (code, said) = archive_once(&repo, &source, "src");
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("log_bin_basename") && said.contains("renamed.000001"),
        "{said}"
    );
    assert_eq!(archive_objects(&repo), objects, "the archive changed");

    // 5. The new file already longer than the archive of the old one, same name: names and
    // sizes cannot tell, the position falls inside another history's event.
    let repo = PassphraseRepo::init();
    source.sql("RESET MASTER");
    write(&source, 12, 300);
    let (code, said) = archive_once(&repo, &source, "src");
    assert_eq!(code, Some(0), "{said}");
    let objects = archive_objects(&repo);
    source.sql("RESET MASTER");
    source.sql("CREATE TABLE shop.pad (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB");
    for i in 0..20 {
        source.sql(&format!(
            "INSERT INTO shop.pad VALUES ({i}, REPEAT('x', {}))",
            997 + i * 13
        ));
    }
    let (code, said) = archive_once(&repo, &source, "src");
    eprintln!("same name, longer: {code:?}");
    assert_ne!(code, Some(0), "{said}");
    assert_eq!(
        archive_objects(&repo),
        objects,
        "the archive changed: {said}"
    );
}
