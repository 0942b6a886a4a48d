//! Point-in-time restore end to end on real servers: a source with a binlog under a write
//! load (InnoDB and MyISAM tables, DDL, binlog rotations) archived throughout by `rbackup
//! binlog` into the repository,
//! a backup taken mid-load with `rbackup backup`; at T1 the writes pause and the time,
//! GTID, binlog position and every table's CHECKSUM TABLE are noted; the load goes on,
//! then a DROP TABLE. `rbackup restore --to-time T1`, `--to-gtid`, `--to-position` into a
//! fresh target give T1's checksums; `--to-latest` the final state; `--skip-gtid` of the
//! DROP the final state with the table. A gap in the archive is refused, as is a target
//! account without the replay privilege (before anything changes), and `--dry-run`
//! touches nothing. `rbackup verify --drill` of the backup replays the archive after it.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::rbackup::{rbackup, text};
use common::{Server, ServerOptions};
use rdump::backup::segments::RepositorySegments;
use rdump::binlog::{Gap, Position, SegmentStore};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The server's connection options as rdump and rload take them.
fn connection(s: &Server) -> Vec<String> {
    vec![
        "--no-defaults".into(),
        format!("--socket={}", s.socket().display()),
        format!("-u{}", s.user()),
        format!("-p{}", s.password()),
    ]
}

/// CHECKSUM TABLE of every table of `pitr`.
fn checksums(s: &Server) -> BTreeMap<String, String> {
    let tables: Vec<String> = s
        .sql_rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'pitr' \
             ORDER BY table_name",
        )
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    if tables.is_empty() {
        return BTreeMap::new();
    }
    let list: Vec<String> = tables.iter().map(|t| format!("pitr.`{t}`")).collect();
    s.sql_rows(&format!("CHECKSUM TABLE {}", list.join(", ")))
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

/// One batch of the write load: InnoDB inserts, updates, deletes, a MyISAM insert, and
/// every tenth batch some DDL (every batch while `busy`: CREATE TABLE, ALTER TABLE of an
/// InnoDB and, every third, of the MyISAM table, FLUSH BINARY LOGS every fifth).
fn batch(n: u64, busy: bool) -> String {
    let mut sql = format!(
        "INSERT INTO pitr.orders (customer, amount, note) VALUES ({c}, {n} * 1.5, 'o{n}'), \
         ({c} + 1, {n}, REPEAT('x', {n} % 50)); \
         UPDATE pitr.stock SET qty = qty - 1, touched = {n} WHERE id = {s}; \
         INSERT INTO pitr.audit (what) VALUES ('batch {n}'); \
         BEGIN; DELETE FROM pitr.orders WHERE id % 7 = {d} AND id < {n}; \
         UPDATE pitr.stock SET qty = qty + 2 WHERE id = {s2}; COMMIT;",
        c = n % 17,
        s = n % 20 + 1,
        s2 = (n * 3) % 20 + 1,
        d = n % 7,
    );
    if n % 30 == 15 || (busy && n % 5 == 0) {
        // Across binlog files.
        sql.push_str(" FLUSH BINARY LOGS;");
    }
    if busy && n % 3 == 0 {
        sql.push_str(&format!(
            " ALTER TABLE pitr.audit ADD COLUMN a{n} INT NOT NULL DEFAULT {n};"
        ));
    }
    if n % 10 == 5 || busy {
        sql.push_str(&format!(
            " ALTER TABLE pitr.stock ADD COLUMN c{n} INT NOT NULL DEFAULT {n};\
             CREATE TABLE pitr.made{n} (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB;\
             INSERT INTO pitr.made{n} VALUES (1, 'a'), (2, 'b');"
        ));
    }
    sql
}

/// Writes batches until `stop`; while `pause` is set it stops between batches and says
/// so in `paused`.
struct Load {
    stop: AtomicBool,
    pause: AtomicBool,
    paused: AtomicBool,
    batches: AtomicU64,
    /// DDL in every batch (while the backup runs).
    busy: AtomicBool,
}

impl Load {
    fn run(&self, server: &Server) {
        let mut n = 0;
        while !self.stop.load(Ordering::SeqCst) {
            if self.pause.load(Ordering::SeqCst) {
                self.paused.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            self.paused.store(false, Ordering::SeqCst);
            n += 1;
            server.sql(&batch(n, self.busy.load(Ordering::SeqCst)));
            self.batches.store(n, Ordering::SeqCst);
        }
        self.paused.store(true, Ordering::SeqCst);
    }

    fn pause(&self) {
        self.pause.store(true, Ordering::SeqCst);
        while !self.paused.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn wait_batches(&self, more: u64) {
        let until = self.batches.load(Ordering::SeqCst) + more;
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.batches.load(Ordering::SeqCst) < until {
            assert!(Instant::now() < deadline, "the load does not progress");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Sets its flag when dropped, also by a panic.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn restore(repo: &str, pass: &str, target: &Server, pitr: &[&str]) -> std::process::Output {
    target.sql("DROP DATABASE IF EXISTS pitr");
    let mut a: Vec<String> = ["restore", "--repo", repo, "--passphrase-file", pass]
        .map(String::from)
        .to_vec();
    a.extend(pitr.iter().map(|s| s.to_string()));
    a.extend(connection(target));
    a.extend(["--threads=2", "--progress=never"].map(String::from));
    let args: Vec<&str> = a.iter().map(String::as_str).collect();
    rbackup(&args, &[])
}

fn restored(what: &str, repo: &str, pass: &str, target: &Server, pitr: &[&str]) -> String {
    let out = restore(repo, pass, target, pitr);
    assert!(out.status.success(), "{what}: {}", text(&out));
    eprintln!("{what}:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The segment objects of binlog `file` in repository directory `repo`: (path, start,
/// end).
fn segment_objects(repo: &Path, file: &str) -> Vec<(std::path::PathBuf, u64, u64)> {
    let mut out = Vec::new();
    for source in std::fs::read_dir(repo.join("binlog")).unwrap() {
        let dir = source.unwrap().path().join(file);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let range = name.split('.').next().unwrap();
            let (a, b) = range.split_once('-').unwrap();
            out.push((path.clone(), a.parse().unwrap(), b.parse().unwrap()));
        }
    }
    out.sort_by_key(|o| o.1);
    out
}

/// Every segment object in repository directory `repo`, in archive order (file number,
/// then start): (path, file, start, end).
fn all_segment_objects(repo: &Path) -> Vec<(std::path::PathBuf, String, u64, u64)> {
    let mut out = Vec::new();
    for source in std::fs::read_dir(repo.join("binlog")).unwrap() {
        for dir in std::fs::read_dir(source.unwrap().path()).unwrap() {
            let dir = dir.unwrap().path();
            let file = dir.file_name().unwrap().to_string_lossy().to_string();
            if file == "gaps" {
                continue;
            }
            for (path, a, b) in segment_objects(repo, &file) {
                out.push((path, file.clone(), a, b));
            }
        }
    }
    let number = |f: &str| f.rsplit('.').next().unwrap().parse::<u64>().unwrap();
    out.sort_by_key(|o| (number(&o.1), o.2));
    out.dedup_by(|x, y| x.0 == y.0);
    out
}

/// `rbackup binlog` of `source` into `repo` (a segment every second), and what it says.
fn archiver(repo: &str, pass: &str, source: &Server, once: bool) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rbackup"));
    cmd.args(["binlog", "--repo", repo, "--passphrase-file", pass])
        .args(["--flush-interval", "1s", "--source", "src"])
        .args(connection(source));
    if once {
        cmd.arg("--once");
    }
    for var in [
        "RBACKUP_REPO",
        "RBACKUP_IDENTITY_FILE",
        "RBACKUP_PASSPHRASE_FILE",
        "RBACKUP_WRITER_KEY_FILE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// The GTID of the last `CREATE TABLE pitr.made...` in the source's binlog, after GTID
/// `after` ("0-1-N").
fn last_create_after(source: &Server, after: &str) -> String {
    let after: u64 = after.rsplit('-').next().unwrap().parse().unwrap();
    let mut found = None;
    for file in source.sql_rows("SHOW BINARY LOGS") {
        let mut gtid = None;
        for ev in source.sql_rows(&format!("SHOW BINLOG EVENTS IN '{}'", file[0])) {
            if ev[2] == "Gtid" {
                gtid = ev[5].split_whitespace().last().map(str::to_string);
            } else if ev[5].contains("CREATE TABLE pitr.made")
                && let Some(g) = &gtid
                && g.rsplit('-').next().unwrap().parse::<u64>().unwrap() > after
            {
                found = Some(g.clone());
            }
        }
    }
    found.expect("a CREATE TABLE after T1")
}

#[test]
fn restore_to_a_time_gtid_position_latest_and_skipping_the_drop() {
    let (source, target) = common::start_two(
        ServerOptions {
            binlog: true,
            ..Default::default()
        },
        ServerOptions::default(),
    );
    source.sql(
        "CREATE DATABASE pitr; \
         CREATE TABLE pitr.orders (id INT AUTO_INCREMENT PRIMARY KEY, customer INT, \
           amount DECIMAL(12,2), note VARCHAR(100)) ENGINE=InnoDB; \
         CREATE TABLE pitr.stock (id INT PRIMARY KEY, qty INT, touched INT) ENGINE=InnoDB; \
         INSERT INTO pitr.stock SELECT seq, 1000, 0 FROM pitr.seq_1_to_20; \
         CREATE TABLE pitr.audit (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(50)) \
           ENGINE=MyISAM;",
    );
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let repo = repo.to_str().unwrap();
    let pass = tmp.path().join("pass");
    std::fs::write(&pass, "a long passphrase\n").unwrap();
    let pass = pass.to_str().unwrap();
    let out = rbackup(&["init", "--repo", repo, "--passphrase-file", pass], &[]);
    assert!(out.status.success(), "{}", text(&out));

    // The archiver runs throughout, committing a segment every second.
    let running = archiver(repo, pass, &source, false)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start rbackup binlog");

    let load = Load {
        stop: AtomicBool::new(false),
        pause: AtomicBool::new(false),
        paused: AtomicBool::new(false),
        batches: AtomicU64::new(0),
        busy: AtomicBool::new(false),
    };
    let (t1, t1_gtid, t1_position, at_t1, before_drop, drop_gtid, last) =
        std::thread::scope(|scope| {
            scope.spawn(|| load.run(&source));
            // A failed assertion below stops the load too (else the scope waits for it).
            let _stop = StopOnDrop(&load.stop);
            load.wait_batches(20);
            // A backup mid-load.
            let mut a: Vec<String> = ["backup", "--repo", repo, "--passphrase-file", pass]
                .map(String::from)
                .to_vec();
            a.extend(connection(&source));
            a.extend(["--databases", "pitr", "--progress=never"].map(String::from));
            let args: Vec<&str> = a.iter().map(String::as_str).collect();
            // DDL in every batch while the backup runs: CREATE TABLE, ALTER TABLE (InnoDB
            // and MyISAM), FLUSH BINARY LOGS, before, during and after its lock.
            load.busy.store(true, Ordering::SeqCst);
            let out = rbackup(&args, &[]);
            load.busy.store(false, Ordering::SeqCst);
            assert!(out.status.success(), "backup: {}", text(&out));
            load.wait_batches(25);
            // T1: writes paused; time, GTID, position and checksums noted.
            load.pause();
            let at_t1 = checksums(&source);
            let t1_gtid = source.sql_value("SELECT @@gtid_binlog_pos");
            let r = &source.sql_rows("SHOW MASTER STATUS")[0];
            let t1_position = format!("{}:{}", r[0], r[1]);
            let now = chrono::Utc::now();
            let t1 = now.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
            // Later events must be stamped after T1: resume in the next second.
            let next_second = 1_000_000 - i64::from(now.timestamp_subsec_micros());
            std::thread::sleep(Duration::from_micros(next_second as u64 + 50_000));
            load.pause.store(false, Ordering::SeqCst);
            load.wait_batches(25);
            load.stop.store(true, Ordering::SeqCst);
            load.pause();
            let before_drop = checksums(&source);
            source.sql("DROP TABLE pitr.orders");
            let drop_gtid = source.sql_value("SELECT @@gtid_binlog_pos");
            // Writes after the DROP, to other tables.
            source.sql(
                "UPDATE pitr.stock SET qty = 0 WHERE id = 3; \
                 INSERT INTO pitr.audit (what) VALUES ('after the drop');",
            );
            let last = checksums(&source);
            (
                t1,
                t1_gtid,
                t1_position,
                at_t1,
                before_drop,
                drop_gtid,
                last,
            )
        });
    // Stop the archiver (SIGTERM commits what it has), then archive up to the server's
    // current position.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(running.id() as i32, libc::SIGTERM) };
    let stopped = running.wait_with_output().unwrap();
    assert!(
        stopped.status.success(),
        "rbackup binlog: {}",
        text(&stopped)
    );
    // A rotate after the last write: the segment holding T1 is never the archive's last
    // (when the load after T1 took less than the flush interval, the SIGTERM committed it
    // all in T1's segment; deleting that one then only shortened the archive, which
    // --to-latest rightly restores to its new end).
    source.sql("FLUSH BINARY LOGS");
    let out = archiver(repo, pass, &source, true).output().unwrap();
    assert!(
        out.status.success(),
        "rbackup binlog --once: {}",
        text(&out)
    );
    assert!(at_t1.len() >= 5, "DDL made tables before T1: {at_t1:?}");
    assert_ne!(at_t1, before_drop, "the load went on after T1");
    assert!(!last.contains_key("pitr.orders"));

    // --dry-run prints the plan and changes nothing.
    let out = restore(
        repo,
        pass,
        &target,
        &["--to-time", &t1, "--time-zone", "UTC", "--dry-run"],
    );
    let plan = text(&out);
    assert!(out.status.success(), "{plan}");
    for want in [
        "backup ",
        "segments: ",
        "first replayed: ",
        "last replayed: ",
        "stop point: ",
        "dry run",
    ] {
        assert!(plan.contains(want), "{want:?} missing: {plan}");
    }
    assert!(
        checksums(&target).is_empty(),
        "--dry-run touched the target"
    );

    let out = restored(
        "--to-time",
        repo,
        pass,
        &target,
        &["--to-time", &t1, "--time-zone", "UTC"],
    );
    assert!(out.contains("stop point: "), "{out}");
    let got = checksums(&target);
    let differ: Vec<&String> = at_t1
        .keys()
        .chain(got.keys())
        .filter(|t| at_t1.get(*t) != got.get(*t))
        .collect();
    for t in &differ {
        eprintln!(
            "DIFF {t}: at T1 {:?}, restored {:?}: {}",
            at_t1.get(*t),
            got.get(*t),
            target.sql(&format!("SELECT COUNT(*) FROM {t}"))
        );
    }
    assert!(
        differ.is_empty(),
        "--to-time {t1}: tables differ: {differ:?}\n{out}"
    );

    let out = restored("--to-gtid", repo, pass, &target, &["--to-gtid", &t1_gtid]);
    assert!(
        out.contains(&format!("transaction {t1_gtid}, the target, included")),
        "{out}"
    );
    assert_eq!(checksums(&target), at_t1, "--to-gtid {t1_gtid}: {out}");

    let out = restored(
        "--to-position",
        repo,
        pass,
        &target,
        &["--to-position", &t1_position],
    );
    assert_eq!(
        checksums(&target),
        at_t1,
        "--to-position {t1_position}: {out}"
    );

    let out = restored("--to-latest", repo, pass, &target, &["--to-latest"]);
    assert_eq!(checksums(&target), last, "--to-latest: {out}");

    // A drill of the backup replays the archive after it into its scratch server.
    let out = rbackup(
        &[
            "verify",
            "--repo",
            repo,
            "--passphrase-file",
            pass,
            "--drill",
            "latest",
            "--threads",
            "2",
            "--json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "drill: {}", text(&out));
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).expect("drill json");
    let replay = &record["binlog_replay"];
    assert_eq!(replay["done"], true, "drill: {record:#}");
    assert!(
        replay["transactions"].as_u64().unwrap_or(0) > 0,
        "drill: {record:#}"
    );
    assert!(replay["stop"]["at"].is_string(), "drill: {record:#}");
    eprintln!("drill binlog replay: {}", replay["reason"]);

    let out = restored(
        "--skip-gtid",
        repo,
        pass,
        &target,
        &["--to-latest", "--skip-gtid", &drop_gtid],
    );
    assert!(
        out.contains(&format!("skipped: transaction {drop_gtid}")),
        "{out}"
    );
    let mut kept = last.clone();
    kept.insert("pitr.orders".into(), before_drop["pitr.orders"].clone());
    assert_eq!(checksums(&target), kept, "--skip-gtid {drop_gtid}: {out}");

    // Skipping a CREATE TABLE made after T1: the next INSERT into it fails, and the
    // restore stops there, naming it.
    let create = last_create_after(&source, &t1_gtid);
    let out = restore(
        repo,
        pass,
        &target,
        &["--to-latest", "--skip-gtid", &create],
    );
    let said = text(&out);
    eprintln!("--skip-gtid {create}:\n{said}");
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("replaying transaction 0-1-") && said.contains("doesn't exist"),
        "{said}"
    );

    // A segment missing between the backup and the target, then a gap recorded there:
    // refused, naming it, nothing changed.
    let gapped = tmp.path().join("gapped");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(repo)
        .arg(&gapped)
        .status()
        .unwrap();
    assert!(status.success());
    let (t1_file, pos) = t1_position.rsplit_once(':').unwrap();
    let pos: u64 = pos.parse().unwrap();
    // The backup's coordinates, from the plan --dry-run printed.
    let b_at = plan
        .split("(binlog ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .expect("the plan names the backup's coordinates");
    let (b_file, b_pos) = b_at.rsplit_once(':').unwrap();
    let b_pos: u64 = b_pos.parse().unwrap();
    let all = all_segment_objects(Path::new(&gapped));
    let held = all
        .iter()
        .position(|(_, f, a, b)| f == t1_file && *a < pos && pos <= *b)
        .expect("a segment holds T1");
    // The one holding T1, unless it also holds the backup's coordinates (then the backup
    // is not archived, a different refusal): the next one, still between the backup and
    // the end of the archive.
    let (_, f, a, b) = &all[held];
    let lost_index = if f == b_file && *a <= b_pos && b_pos < *b {
        held + 1
    } else {
        held
    };
    let (lost, file, start, end) = all.get(lost_index).cloned().expect("a later segment");
    std::fs::remove_file(&lost).unwrap();
    let gapped = gapped.to_str().unwrap();
    let out = restore(gapped, pass, &target, &["--to-latest"]);
    let said = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a deleted segment ({}, {start}-{end}) was not refused: {said}",
        lost.display()
    );
    assert!(
        said.contains("not contiguous")
            && (said.contains(&format!("{start}")) || said.contains(&format!("{end}"))),
        "{said}"
    );
    if lost_index == held {
        // The target time is past the hole: refused too.
        let out = restore(
            gapped,
            pass,
            &target,
            &["--to-time", &t1, "--time-zone", "UTC"],
        );
        let said = text(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "--to-time across the hole: {said}"
        );
        assert!(said.contains("not contiguous"), "{said}");
    }
    assert!(
        checksums(&target).is_empty(),
        "a refused restore changed the target"
    );
    runtime().block_on(async {
        let access = rdump::backup::Access::passphrase_file(Path::new(pass)).unwrap();
        let repo = rdump::backup::open(gapped, &access, &Default::default())
            .await
            .unwrap();
        let mut segs = RepositorySegments::open_archiver(repo, "src")
            .await
            .unwrap();
        segs.record_gap(&Gap {
            after: Some(Position {
                file: file.clone(),
                pos: start,
            }),
            resume_at: Position {
                file: file.clone(),
                pos: end,
            },
            message: "purged while the archiver was down (test)".into(),
            recorded_at: 0,
        })
        .await
        .unwrap();
        segs.release().await.unwrap();
    });
    let out = restore(gapped, pass, &target, &["--to-latest"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("GAP IN THE BINLOG ARCHIVE"), "{said}");
    assert!(
        checksums(&target).is_empty(),
        "a refused restore changed the target"
    );

    // An account without the replay privilege is refused before anything changes.
    target.sql(
        "CREATE USER weak@localhost IDENTIFIED BY 'weak-pw'; \
         GRANT ALL ON pitr.* TO weak@localhost; GRANT RELOAD, PROCESS ON *.* TO weak@localhost;",
    );
    target.sql("DROP DATABASE IF EXISTS pitr");
    let mut a: Vec<String> = ["restore", "--repo", repo, "--passphrase-file", pass]
        .map(String::from)
        .to_vec();
    a.extend(["--to-latest", "--no-defaults", "-uweak", "-pweak-pw"].map(String::from));
    a.push(format!("--socket={}", target.socket().display()));
    let args: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = rbackup(&args, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("BINLOG REPLAY"), "{}", text(&out));
    assert!(
        checksums(&target).is_empty(),
        "a refused restore changed the target"
    );
}

/// Replay speed against `mariadb-binlog | mariadb` on the same binlog, for the README:
/// `cargo test --release --test pitr -- --ignored --nocapture replay_speed`. A sysbench
/// oltp_write_only run (2 threads, 20 s) after a backup, archived with `rbackup binlog
/// --once`; then `restore --to-latest` (its replay timed by rbackup) and, into the same
/// target after loading the same backup, the server's own binlog files from the
/// backup's coordinates through `mariadb-binlog | mariadb`.
#[test]
#[ignore]
fn replay_speed() {
    let (source, target) = common::start_two(
        ServerOptions {
            binlog: true,
            ..Default::default()
        },
        ServerOptions::default(),
    );
    source.sql("CREATE DATABASE sbtest");
    let sysbench = |cmd: &str, extra: &[&str]| {
        let out = std::process::Command::new("sysbench")
            .arg("oltp_write_only")
            .arg(format!("--mysql-socket={}", source.socket().display()))
            .args([
                "--mysql-user=root",
                "--mysql-db=sbtest",
                "--tables=4",
                "--table-size=20000",
            ])
            .args(extra)
            .arg(cmd)
            .output()
            .unwrap();
        assert!(out.status.success(), "sysbench {cmd}: {}", text(&out));
    };
    sysbench("prepare", &[]);
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let repo = repo.to_str().unwrap();
    let pass = tmp.path().join("pass");
    std::fs::write(&pass, "a long passphrase\n").unwrap();
    let pass = pass.to_str().unwrap();
    assert!(
        rbackup(&["init", "--repo", repo, "--passphrase-file", pass], &[])
            .status
            .success()
    );
    let mut a: Vec<String> = [
        "backup",
        "--repo",
        repo,
        "--passphrase-file",
        pass,
        "--json",
    ]
    .map(String::from)
    .to_vec();
    a.extend(connection(&source));
    a.extend(["--databases", "sbtest", "--progress=never"].map(String::from));
    let args: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = rbackup(&args, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let backup: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let file = backup["meta"]["coordinates"]["file"]
        .as_str()
        .unwrap()
        .to_string();
    let pos = backup["meta"]["coordinates"]["position"].as_u64().unwrap();
    sysbench("run", &["--threads=2", "--time=20"]);
    // A rotate after the last write: the segment holding T1 is never the archive's last
    // (when the load after T1 took less than the flush interval, the SIGTERM committed it
    // all in T1's segment; deleting that one then only shortened the archive, which
    // --to-latest rightly restores to its new end).
    source.sql("FLUSH BINARY LOGS");
    let out = archiver(repo, pass, &source, true).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));

    let out = restored("--to-latest", repo, pass, &target, &["--to-latest"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("replayed "))
        .unwrap()
        .to_string();
    let ours = checksums_of(&target, "sbtest");

    // The same backup, then the server's own files through mariadb-binlog | mariadb.
    target.sql("DROP DATABASE sbtest");
    let mut a: Vec<String> = [
        "restore",
        "--repo",
        repo,
        "--passphrase-file",
        pass,
        "latest",
    ]
    .map(String::from)
    .to_vec();
    a.extend(connection(&target));
    a.push("--progress=never".into());
    let args: Vec<&str> = a.iter().map(String::as_str).collect();
    assert!(rbackup(&args, &[]).status.success());
    let files: Vec<String> = source
        .sql_rows("SHOW BINARY LOGS")
        .into_iter()
        .map(|r| r[0].clone())
        .filter(|f| f.as_str() >= file.as_str())
        .collect();
    let paths: Vec<String> = files
        .iter()
        .map(|f| source.dir().join(f).display().to_string())
        .collect();
    let started = Instant::now();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "mariadb-binlog --no-defaults --disable-log-bin --start-position={pos} {} | \
             mariadb --no-defaults -uroot --socket={} --binary-mode --batch",
            paths.join(" "),
            target.socket().display()
        ))
        .status()
        .unwrap();
    let theirs_secs = started.elapsed().as_secs_f64();
    assert!(status.success());
    assert_eq!(
        checksums_of(&target, "sbtest"),
        ours,
        "same result both ways"
    );
    eprintln!("rbackup: {line}");
    eprintln!(
        "mariadb-binlog | mariadb: {theirs_secs:.1} s for {} files",
        files.len()
    );
}

fn checksums_of(s: &Server, db: &str) -> BTreeMap<String, String> {
    let tables: Vec<String> = s
        .sql_rows(&format!(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = '{db}'"
        ))
        .into_iter()
        .map(|r| format!("{db}.`{}`", r[0]))
        .collect();
    s.sql_rows(&format!("CHECKSUM TABLE {}", tables.join(", ")))
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}
