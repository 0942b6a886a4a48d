//! Point-in-time restore end to end on real servers: a source with a binlog under a write
//! load (InnoDB and MyISAM tables, DDL, binlog rotations) archived throughout by `rbackup
//! binlog` into the repository (killed with -9 and restarted, and its connection cut by
//! the server twice, while the load runs; the source restarted under it at the end), a backup taken mid-load with `rbackup backup`; at T1 the writes pause and the time,
//! GTID, binlog position and every table's CHECKSUM TABLE are noted; the load goes on,
//! then a DROP TABLE. `rbackup restore --to-time T1`, `--to-gtid`, `--to-position` into a
//! fresh target give T1's checksums; `--to-latest` the final state; `--skip-gtid` of the
//! DROP the final state with the table. A gap in the archive is refused, as is a target
//! account without the replay privilege (before anything changes), and `--dry-run`
//! touches nothing. `rbackup verify --drill` of the backup replays the archive after it.
//!
//! Also: a drill whose replay fails (a row written with `sql_log_bin=0`, then updated)
//! fails naming the transaction, and one across a gap replays up to it and passes; prune
//! with real backups and binlogs, then every kept backup restored to the end of its
//! window with the source's checksums at that moment. A partial backup's replay keeps or
//! leaves out both halves of an XA transaction (prepared, then committed or rolled back).
//! A partial backup of `--databases Shop` on a server with lower_case_table_names=1
//! replays `shop`'s events (the binlog names it so).
//! `--skip-gtid` of a prepared XA half leaves out its XA COMMIT; an XA transaction
//! prepared before a backup and committed after it is replayed whole (its prepared half
//! from the archive), or, that part of the archive lost, refused before the target
//! changes, naming its XID.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::rbackup::{PassphraseRepo, rbackup, rbackup_on, text};
use common::{Server, ServerOptions, connection};
use rdump::backup::segments::RepositorySegments;
use rdump::binlog::{Gap, Position, SegmentStore};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
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
    if n % 30 == 15 || (busy && n.is_multiple_of(5)) {
        // Across binlog files.
        sql.push_str(" FLUSH BINARY LOGS;");
    }
    if busy && n.is_multiple_of(3) {
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

/// `restore_into` after dropping database `pitr` of `target`.
fn restore(repo: &str, pass: &str, target: &Server, pitr: &[&str]) -> std::process::Output {
    target.sql("DROP DATABASE IF EXISTS pitr");
    restore_into(repo, pass, target, pitr)
}

/// `rbackup restore PITR` into `target` (two threads), as it is.
fn restore_into(repo: &str, pass: &str, target: &Server, pitr: &[&str]) -> std::process::Output {
    let mut args = vec!["restore", "--repo", repo, "--passphrase-file", pass];
    args.extend_from_slice(pitr);
    rbackup_on(&args, target, &["--threads=2", "--progress=never"])
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
    archiver_named(repo, pass, source, once, "src")
}

/// The same, archiving as source `name`.
fn archiver_named(
    repo: &str,
    pass: &str,
    source: &Server,
    once: bool,
    name: &str,
) -> std::process::Command {
    let args = [
        "binlog",
        "--repo",
        repo,
        "--passphrase-file",
        pass,
        "--flush-interval",
        "1s",
        "--source",
        name,
    ];
    let once: &[&str] = if once { &["--once"] } else { &[] };
    common::rbackup::command_on(&args, source, once)
}

/// `rbackup binlog --once` of `source` into `repo` (as source `src`), which must exit with
/// `code`.
fn archive_once(repo: &str, pass: &str, source: &Server, code: i32) {
    let out = archiver(repo, pass, source, true).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "binlog --once: {}",
        text(&out)
    );
}

/// The GTID of the last `CREATE TABLE pitr.made...` in the source's binlog, after GTID
/// `after` ("0-1-N").
fn last_create_after(source: &Server, after: &str) -> String {
    let number = |g: &str| g.rsplit('-').next().unwrap().parse::<u64>().unwrap();
    let after = number(after);
    last_gtid_where(source, |ev, g| {
        ev[5].contains("CREATE TABLE pitr.made") && number(g) > after
    })
    .expect("a CREATE TABLE after T1")
}

/// The GTID of the last transaction in the source's binlog with an event (a row of `SHOW
/// BINLOG EVENTS`) for which `wanted(event, its transaction's GTID)` holds.
fn last_gtid_where(source: &Server, wanted: impl Fn(&[String], &str) -> bool) -> Option<String> {
    let mut found = None;
    for file in source.sql_rows("SHOW BINARY LOGS") {
        let mut gtid = None;
        for ev in source.sql_rows(&format!("SHOW BINLOG EVENTS IN '{}'", file[0])) {
            if ev[2] == "Gtid" {
                gtid = ev[5].split_whitespace().last().map(str::to_string);
            } else if let Some(g) = &gtid
                && wanted(&ev, g)
            {
                found = Some(g.clone());
            }
        }
    }
    found
}

/// `rbackup verify --drill ID --threads 2 --json` and more: its output and the drill
/// record it printed (`Null` when it printed none).
fn drill(
    repo: &str,
    pass: &str,
    id: &str,
    more: &[&str],
) -> (std::process::Output, serde_json::Value) {
    let mut args = vec![
        "verify",
        "--repo",
        repo,
        "--passphrase-file",
        pass,
        "--drill",
        id,
        "--threads",
        "2",
        "--json",
    ];
    args.extend_from_slice(more);
    let out = rbackup(&args, &[]);
    let record = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out, record)
}

/// Waits until the running archiver is connected to `source` (its `Binlog Dump` thread).
fn wait_for_the_archiver(source: &Server) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while source.sql_value(
        "SELECT COUNT(*) FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%'",
    ) == "0"
    {
        assert!(Instant::now() < deadline, "the archiver does not connect");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills the connection of the running archiver (its `Binlog Dump` thread) on `source`,
/// waiting first until it is connected.
fn cut_the_archivers_connection(source: &Server) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let id = source.sql_value(
            "SELECT COALESCE(MAX(id), 0) FROM information_schema.processlist \
             WHERE command LIKE 'Binlog Dump%'",
        );
        if id != "0" {
            source.sql(&format!("KILL {id}"));
            return;
        }
        assert!(Instant::now() < deadline, "the archiver does not connect");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn restore_to_a_time_gtid_position_latest_and_skipping_the_drop() {
    let (mut source, target) =
        common::start_two(common::options(1, true), ServerOptions::default());
    source.sql(
        "CREATE DATABASE pitr; \
         CREATE TABLE pitr.orders (id INT AUTO_INCREMENT PRIMARY KEY, customer INT, \
           amount DECIMAL(12,2), note VARCHAR(100)) ENGINE=InnoDB; \
         CREATE TABLE pitr.stock (id INT PRIMARY KEY, qty INT, touched INT) ENGINE=InnoDB; \
         INSERT INTO pitr.stock SELECT seq, 1000, 0 FROM pitr.seq_1_to_20; \
         CREATE TABLE pitr.audit (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(50)) \
           ENGINE=MyISAM;",
    );
    let tmp = PassphraseRepo::init();
    let (repo, pass) = (tmp.url.as_str(), tmp.pass.as_str());

    // The archiver runs throughout, committing a segment every second.
    let mut running = archiver(repo, pass, &source, false)
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
    let (t1, t1_gtid, t1_position, at_t1, before_drop, drop_gtid, _before_restart) =
        std::thread::scope(|scope| {
            scope.spawn(|| load.run(&source));
            // A failed assertion below stops the load too (else the scope waits for it).
            let _stop = StopOnDrop(&load.stop);
            load.wait_batches(20);
            // A backup mid-load.
            // DDL in every batch while the backup runs: CREATE TABLE, ALTER TABLE (InnoDB
            // and MyISAM), FLUSH BINARY LOGS, before, during and after its lock.
            load.busy.store(true, Ordering::SeqCst);
            let out = rbackup_on(
                &["backup", "--repo", repo, "--passphrase-file", pass],
                &source,
                &["--databases", "pitr", "--progress=never"],
            );
            load.busy.store(false, Ordering::SeqCst);
            assert!(out.status.success(), "backup: {}", text(&out));
            load.wait_batches(10);
            // The archiver killed with -9 mid-stream and started again: it resumes after
            // its last committed segment (no gap, no duplicate, or the restores below
            // differ).
            running.kill().expect("SIGKILL the archiver");
            running.wait().unwrap();
            running = archiver(repo, pass, &source, false)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("restart rbackup binlog");
            load.wait_batches(10);
            // Its connection cut by the server (KILL): it reconnects and goes on.
            cut_the_archivers_connection(&source);
            load.wait_batches(10);
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
            load.wait_batches(10);
            // Cut once more, after T1.
            cut_the_archivers_connection(&source);
            load.wait_batches(15);
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
    // The source restarted under the running archiver (it reconnects and goes on across
    // the STOP event and the new binlog file), then one more write.
    source.restart();
    source.sql(
        "UPDATE pitr.stock SET qty = 7 WHERE id = 4; \
         INSERT INTO pitr.audit (what) VALUES ('after a restart');",
    );
    let last = checksums(&source);
    wait_for_the_archiver(&source);
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
    archive_once(repo, pass, &source, 0);
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
    let (out, record) = drill(repo, pass, "latest", &[]);
    assert_eq!(out.status.code(), Some(0), "drill: {}", text(&out));
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
    let gapped = tmp.dir.path().join("gapped");
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

/// `rbackup backup` of database `pitr` of `server` (and `extra`): the backup's ID and
/// binlog coordinates ("file:pos").
fn backup_id(repo: &str, pass: &str, server: &Server, extra: &[&str]) -> (String, String) {
    let mut args = vec![
        "backup",
        "--repo",
        repo,
        "--passphrase-file",
        pass,
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = rbackup_on(&args, server, &["--databases", "pitr", "--progress=never"]);
    assert!(out.status.success(), "backup: {}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("backup json");
    let c = &json["meta"]["coordinates"];
    (
        json["id"].as_str().unwrap().to_string(),
        format!("{}:{}", c["file"].as_str().unwrap(), c["position"]),
    )
}

/// Two servers with the same binlog names, server_id and GTIDs (domain 0, server 1),
/// archived into one repository as sources `a` and `b`, each backed up (b's backup the
/// newer): a point-in-time restore from a's archive loads a's backup, never b's, and
/// replays a's events; with only b's backup it is refused (exit 1, target untouched); b's
/// backup named by ID restores with b's archive; `list` shows each backup's window under
/// its own source.
#[test]
fn a_restore_never_pairs_a_backup_with_another_servers_archive() {
    let (a, b) = common::start_two(common::options(1, true), common::options(1, true));
    let target = Server::start(ServerOptions::default());
    for (s, name) in [(&a, "a"), (&b, "b")] {
        s.sql(&format!(
            "CREATE DATABASE pitr; CREATE TABLE pitr.t (id INT PRIMARY KEY, v VARCHAR(20)) \
             ENGINE=InnoDB; INSERT INTO pitr.t VALUES (1, '{name}1'), (2, '{name}2');"
        ));
    }
    let tmp = PassphraseRepo::init();
    let (repo, pass) = (tmp.url.as_str(), tmp.pass.as_str());
    let (backup_a, _) = backup_id(repo, pass, &a, &[]);
    // The same statements (of the same lengths) on both: b's backup, after them, has
    // coordinates that are between two transactions of a's archive too, later than a's
    // backup; a planner that paired by coordinates or commit time alone would take it.
    for name in ["a", "b"] {
        let s = if name == "a" { &a } else { &b };
        s.sql(&format!(
            "INSERT INTO pitr.t VALUES (3, '{name}3'); UPDATE pitr.t SET v = '{name}1x' WHERE id = 1;"
        ));
    }
    let r = &a.sql_rows("SHOW MASTER STATUS")[0];
    let a_at = format!("{}:{}", r[0], r[1]);
    let (backup_b, b_at) = backup_id(repo, pass, &b, &[]);
    assert_eq!(b_at, a_at, "both servers' binlogs alike up to b's backup");
    b.sql("INSERT INTO pitr.t VALUES (6, 'b6');");
    a.sql("INSERT INTO pitr.t VALUES (4, 'a4');");
    for (s, name) in [(&a, "a"), (&b, "b")] {
        let out = archiver_named(repo, pass, s, true, name).output().unwrap();
        assert!(out.status.success(), "archiver {name}: {}", text(&out));
    }
    let rows = |s: &Server| s.sql_rows("SELECT id, v FROM pitr.t ORDER BY id");
    let final_a = rows(&a);

    // From a's archive: a's backup (b's is newer by time and coordinates), a's events.
    let out = restored(
        "--source a --to-latest",
        repo,
        pass,
        &target,
        &["--source", "a", "--to-latest"],
    );
    assert!(out.contains(&format!("backup {backup_a}")), "{out}");
    assert!(!out.contains(&backup_b), "{out}");
    assert_eq!(rows(&target), final_a);
    // A time after everything: the same.
    let later = (chrono::Utc::now() + chrono::Duration::seconds(1))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    a.sql("DO SLEEP(2); INSERT INTO pitr.t VALUES (5, 'a5');");
    let out = archiver_named(repo, pass, &a, true, "a").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = restored(
        "--source a --to-time",
        repo,
        pass,
        &target,
        &["--source", "a", "--to-time", &later, "--time-zone", "UTC"],
    );
    assert!(out.contains(&format!("backup {backup_a}")), "{out}");
    assert_eq!(rows(&target), final_a);

    // Only b's backup offered to a's archive: refused, nothing changed.
    let out = restore(
        repo,
        pass,
        &target,
        &[&backup_b, "--source", "a", "--to-latest"],
    );
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("no backup in the repository is of the source"),
        "{said}"
    );
    assert!(
        target.sql_rows("SHOW DATABASES LIKE 'pitr'").is_empty(),
        "a refused restore changed the target"
    );
    // b's backup by ID: b's archive, chosen without --source.
    let out = restored("b by ID", repo, pass, &target, &[&backup_b, "--to-latest"]);
    assert!(out.contains(&format!("backup {backup_b}")), "{out}");
    assert_eq!(rows(&target), rows(&b));

    // list: each backup's window under its own source.
    let out = rbackup(
        &["list", "--repo", repo, "--passphrase-file", pass, "--json"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    for (id, source) in [(&backup_a, "a"), (&backup_b, "b")] {
        let entry = list.iter().find(|e| e["id"] == id.as_str()).unwrap();
        assert_eq!(entry["window"]["source"], source, "{entry:#}");
    }
    let out = rbackup(&["list", "--repo", repo, "--passphrase-file", pass], &[]);
    let table = text(&out);
    let under_a = table
        .split("binlog archive of source a ")
        .nth(1)
        .and_then(|r| r.split("binlog archive of source b ").next())
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        under_a.contains(&format!("backup {}", &backup_a[..8])),
        "{table}"
    );
    assert!(!under_a.contains(&backup_b[..8]), "{table}");
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
    let (source, target) = common::start_two(common::options(1, true), ServerOptions::default());
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
    let tmp = PassphraseRepo::init();
    let (repo, pass) = (tmp.url.as_str(), tmp.pass.as_str());
    let out = rbackup_on(
        &[
            "backup",
            "--repo",
            repo,
            "--passphrase-file",
            pass,
            "--json",
        ],
        &source,
        &["--databases", "sbtest", "--progress=never"],
    );
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
    archive_once(repo, pass, &source, 0);

    let out = restored("--to-latest", repo, pass, &target, &["--to-latest"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("replayed "))
        .unwrap()
        .to_string();
    let ours = checksums_of(&target, "sbtest");

    // The same backup, then the server's own files through mariadb-binlog | mariadb.
    target.sql("DROP DATABASE sbtest");
    let args = [
        "restore",
        "--repo",
        repo,
        "--passphrase-file",
        pass,
        "latest",
    ];
    assert!(
        rbackup_on(&args, &target, &["--progress=never"])
            .status
            .success()
    );
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

/// `rbackup backup --databases shop` of `source` into `repo`: its ID.
fn backup_shop(repo: &str, pass: &str, source: &Server) -> String {
    backup_of(repo, pass, source, &["--databases", "shop"])
}

/// The drill's binlog replay paths. A write made with `sql_log_bin=0` on the source after
/// backup A (a row the binlog never saw) and then an UPDATE of that row, which the binlog
/// has: replaying the archive onto A's restore cannot find the row, so the drill of A
/// fails (exit 6), naming the transaction and the server's error, as `restore
/// --to-latest` would. A binlog purged on the source before it was archived (a gap) after
/// backup B: the drill of B (into a given target, to look at what was replayed) replays up
/// to the gap, records the gap, and passes.
#[test]
fn drill_replay_fails_naming_the_transaction_and_stops_at_a_gap_without_failing() {
    let (source, target) = common::start_two(common::options(1, true), ServerOptions::default());
    source.sql(
        "CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20)) \
         ENGINE=InnoDB; INSERT INTO shop.t SELECT seq, 'row' FROM shop.seq_1_to_10;",
    );
    let tmp = PassphraseRepo::init();
    let (repo, pass) = (tmp.url.as_str(), tmp.pass.as_str());
    let archive = |code: i32| archive_once(repo, pass, &source, code);
    archive(0);
    let a = backup_shop(repo, pass, &source);
    source.sql(
        "INSERT INTO shop.t VALUES (11, 'after A'); \
         SET SESSION sql_log_bin = 0; INSERT INTO shop.t VALUES (50, 'unlogged'); \
         SET SESSION sql_log_bin = 1; UPDATE shop.t SET v = 'changed' WHERE id = 50;",
    );
    let failing = source.sql_value("SELECT @@gtid_binlog_pos");
    archive(0);
    let b = backup_shop(repo, pass, &source);
    source.sql("INSERT INTO shop.t VALUES (12, 'after B')");
    archive(0);
    // Binlogs purged before they were archived: a gap after 12.
    source.sql("FLUSH BINARY LOGS; INSERT INTO shop.t VALUES (13, 'lost'); FLUSH BINARY LOGS;");
    let current = source.sql_rows("SHOW MASTER STATUS")[0][0].clone();
    // A file a dump thread still reads is not purged: wait for the last archiver's to go.
    let deadline = Instant::now() + Duration::from_secs(30);
    while source.sql_value(
        "SELECT COUNT(*) FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%'",
    ) != "0"
    {
        assert!(
            Instant::now() < deadline,
            "the archiver's dump thread stays"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Nor one whose transactions InnoDB has not yet made durable (its binlog checkpoint
    // comes later, under load up to seconds): PURGE then leaves it silently, so retry.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        source.sql(&format!("PURGE BINARY LOGS TO '{current}'"));
        if source.sql_rows("SHOW BINARY LOGS")[0][0] == current {
            break;
        }
        assert!(Instant::now() < deadline, "the old binlogs are not purged");
        std::thread::sleep(Duration::from_millis(200));
    }
    source.sql("INSERT INTO shop.t VALUES (14, 'after the gap')");
    archive(3);

    let drill = |id: &str, more: &[String]| {
        let more: Vec<&str> = more.iter().map(String::as_str).collect();
        let (out, record) = drill(repo, pass, id, &more);
        eprintln!("drill {id}: {}\n{record:#}", text(&out));
        (out.status.code(), record, text(&out))
    };

    // A: the UPDATE of the unlogged row fails on the scratch server.
    let (code, record, said) = drill(&a, &[]);
    assert_eq!(code, Some(6), "{said}");
    assert_eq!(record["verdict"], "failed", "{record:#}");
    let replay = &record["binlog_replay"];
    assert_eq!(replay["done"], false, "{record:#}");
    let error = replay["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("transaction {failing}")) && error.contains("Can't find record"),
        "{record:#}"
    );
    assert!(
        record["message"]
            .as_str()
            .is_some_and(|m| m.contains("the binlog replay failed") && m.contains(&failing)),
        "{record:#}"
    );
    // The tables themselves restored as recorded: the comparison came first.
    assert!(
        record["tables"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["result"] == "ok"),
        "{record:#}"
    );

    // B: replayed up to the gap (12 in, 13 lost, 14 after the gap), the gap recorded.
    let mut into_target = vec!["--target".to_string()];
    into_target.extend(connection(&target));
    let (code, record, said) = drill(&b, &into_target);
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(record["verdict"], "passed", "{record:#}");
    let replay = &record["binlog_replay"];
    assert_eq!(replay["done"], true, "{record:#}");
    assert_eq!(replay["transactions"], 1, "{record:#}");
    assert!(
        replay["gap"]["resume_at"]
            .as_str()
            .is_some_and(|r| r.starts_with(&format!("{current}:"))),
        "{record:#}"
    );
    assert!(
        replay["stop"]["why"]
            .as_str()
            .is_some_and(|w| w.starts_with("a gap in the archive")),
        "{record:#}"
    );
    assert!(said.contains("a gap in the archive"), "{said}");
    assert_eq!(
        target.sql_rows("SELECT id FROM shop.t WHERE id > 10 ORDER BY id"),
        vec![
            vec!["11".to_string()],
            vec!["12".to_string()],
            vec!["50".to_string()]
        ]
    );
    // `list` shows B's last drill as passed.
    let out = rbackup(
        &["list", "--repo", repo, "--passphrase-file", pass, "--json"],
        &[],
    );
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let listed = list.iter().find(|s| s["id"] == b.as_str()).unwrap();
    assert_eq!(listed["last_drill"]["verdict"], "passed", "{listed:#}");
}

/// Where the source stood at one moment: GTID, binlog position, checksums of `shop`.
struct Point {
    gtid: String,
    position: String,
    sums: BTreeMap<String, String>,
}

fn point(s: &Server) -> Point {
    let r = &s.sql_rows("SHOW MASTER STATUS")[0];
    Point {
        gtid: s.sql_value("SELECT @@gtid_binlog_pos"),
        position: format!("{}:{}", r[0], r[1]),
        sums: checksums_of(s, "shop"),
    }
}

/// Prune end to end with real backups and binlogs (issue 14): four backups of a server
/// under writes (DML, a CREATE TABLE, a binlog rotation), the archive brought up to date
/// (`rbackup binlog --once`) before each; `prune --keep-last 2`; then every kept backup
/// restores to the end of its window into the target, with the source's CHECKSUM TABLE
/// at that moment: the older one to the last archived transaction before the newer
/// (`--to-gtid`, planned from that backup; `--to-position` from it too, and as planned),
/// the newest to the end
/// of the archive. A point before the oldest kept backup is refused (its binlog went
/// with the removed backups), and `verify --read-data` passes after the prune.
#[test]
fn prune_then_every_kept_backup_restores_to_the_end_of_its_window() {
    let started = Instant::now();
    let (source, target) = common::start_two(common::options(1, true), ServerOptions::default());
    source.sql(
        "CREATE DATABASE shop; \
         CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, n INT, note VARCHAR(64)) \
           ENGINE=InnoDB; \
         CREATE TABLE shop.stock (id INT PRIMARY KEY, qty INT) ENGINE=InnoDB; \
         CREATE TABLE shop.log (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(40)) ENGINE=MyISAM; \
         INSERT INTO shop.stock SELECT seq, 100 FROM shop.seq_1_to_50;",
    );
    let tmp = PassphraseRepo::init();
    let (repo, pass) = (tmp.url.as_str(), tmp.pass.as_str());
    let archive = || archive_once(repo, pass, &source, 0);
    let write = |round: u64| {
        let mut sql = format!(
            "INSERT INTO shop.orders (n, note) SELECT seq, CONCAT('r{round}-', seq) \
               FROM shop.seq_1_to_3000; \
             UPDATE shop.stock SET qty = qty - {round} WHERE id % 3 = {m}; \
             DELETE FROM shop.orders WHERE n % 10 = {m}; \
             INSERT INTO shop.log (what) VALUES ('round {round}');",
            m = round % 3
        );
        match round {
            // After the third backup: its window crosses binlog files.
            6 => sql.push_str(" FLUSH BINARY LOGS;"),
            3 => sql.push_str(
                " CREATE TABLE shop.made (id INT PRIMARY KEY, v VARCHAR(10)) ENGINE=InnoDB; \
                 INSERT INTO shop.made VALUES (1, 'a'), (2, 'b');",
            ),
            _ => {}
        }
        source.sql(&sql);
    };
    // ids[i]'s window ends where ends[i] was noted: right before the next backup, or at
    // the end of the archive for the newest.
    let mut ids = Vec::new();
    let mut ends = Vec::new();
    for round in 0..4u64 {
        write(round * 2 + 1);
        archive();
        if round > 0 {
            ends.push(point(&source));
        }
        ids.push(backup_shop(repo, pass, &source));
        // Distinct snapshot times (second resolution) keep the order plain.
        std::thread::sleep(Duration::from_millis(1100));
        write(round * 2 + 2);
    }
    archive();
    ends.push(point(&source));
    assert!(ends[3].sums.contains_key("shop.made"), "{:?}", ends[3].sums);

    let out = rbackup(
        &[
            "prune",
            "--repo",
            repo,
            "--passphrase-file",
            pass,
            "--keep-last",
            "2",
        ],
        &[],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for id in &ids[..2] {
        assert!(t.contains(&format!("removed {}", &id[..10])), "{t}");
    }
    let out = rbackup(
        &[
            "verify",
            "--repo",
            repo,
            "--passphrase-file",
            pass,
            "--read-data",
        ],
        &[],
    );
    assert!(out.status.success(), "verify after prune: {}", text(&out));

    let restore_shop = |what: &str, pitr: &[&str]| -> (Option<i32>, String) {
        target.sql("DROP DATABASE IF EXISTS shop");
        let out = restore_into(repo, pass, &target, pitr);
        eprintln!("{what}:\n{}", text(&out));
        (out.status.code(), text(&out))
    };
    // The older kept backup, to the last transaction before the newer one.
    let (code, said) = restore_shop("older, --to-gtid", &["--to-gtid", &ends[2].gtid]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains(&format!("backup {}", ids[2])), "{said}");
    assert_eq!(checksums_of(&target, "shop"), ends[2].sums, "{said}");
    // By position the newer backup stands exactly there (nothing to replay): named, the
    // older one replays its whole window.
    let (code, said) = restore_shop(
        "older, --to-position",
        &[&ids[2], "--to-position", &ends[2].position],
    );
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains(&format!("backup {}", ids[2])) && said.contains("first replayed: "),
        "{said}"
    );
    assert_eq!(checksums_of(&target, "shop"), ends[2].sums, "{said}");
    let (code, said) = restore_shop("--to-position", &["--to-position", &ends[2].position]);
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(checksums_of(&target, "shop"), ends[2].sums, "{said}");
    // The newest, to the end of the archive.
    let (code, said) = restore_shop("newest, --to-latest", &["--to-latest"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains(&format!("backup {}", ids[3])), "{said}");
    assert_eq!(checksums_of(&target, "shop"), ends[3].sums, "{said}");
    // Before the oldest kept backup: its backups and binlog are gone.
    let (code, said) = restore_shop("pruned", &["--to-gtid", &ends[0].gtid]);
    assert_eq!(code, Some(1), "{said}");
    eprintln!(
        "prune then restore every kept backup: {:?}",
        started.elapsed()
    );
}

/// A backup of `shop` only (`--databases shop`) on a server that also writes into other
/// databases after it: InnoDB rows in `other`, DDL in `other`, a `CREATE DATABASE other2`
/// with a table, a transaction into both `shop` and `other`, DDL in `shop` without a
/// default database. `restore --to-latest` into a fresh server gives `shop`'s final
/// checksums, and neither `other` nor `other2` exists there; `--dry-run` says how many
/// transactions were left out; a drill of the backup passes, replaying `shop`'s. Without
/// a backup ID the older whole-server backup is chosen over it; a backup with
/// `--ignore-table` is refused as a replay's start, naming why. Then a
/// statement-logged `USE other; INSERT INTO shop.t ...` (the trap of default-database
/// filtering) refuses the restore naming its GTID, and `--skip-gtid` of it restores
/// `shop` without that row.
#[test]
fn a_partial_backup_restores_and_drills_only_its_databases() {
    let (source, target) = common::start_two(common::options(1, true), ServerOptions::default());
    source.sql(
        "CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20)) \
         ENGINE=InnoDB; INSERT INTO shop.t SELECT seq, 'row' FROM shop.seq_1_to_10; \
         CREATE DATABASE other; CREATE TABLE other.t (id INT PRIMARY KEY, v VARCHAR(20)) \
         ENGINE=InnoDB; INSERT INTO other.t SELECT seq, 'o' FROM other.seq_1_to_10;",
    );
    let tmp = PassphraseRepo::init();
    let (repo, pass) = (tmp.url.as_str(), tmp.pass.as_str());
    let archive = || archive_once(repo, pass, &source, 0);
    archive();
    // An older whole-server backup: chosen without an ID over the newer partial one.
    let out = rbackup_on(
        &["backup", "--repo", repo, "--passphrase-file", pass],
        &source,
        &["--progress=never"],
    );
    assert!(out.status.success(), "backup: {}", text(&out));
    let whole = String::from_utf8_lossy(&out.stdout).trim().to_string();
    std::thread::sleep(Duration::from_millis(1100));
    let id = backup_shop(repo, pass, &source);
    source.sql(
        "INSERT INTO shop.t VALUES (11, 'after'); UPDATE shop.t SET v = 'changed' WHERE id < 4; \
         INSERT INTO other.t VALUES (11, 'o'), (12, 'o'); DELETE FROM other.t WHERE id = 1; \
         CREATE TABLE other.t2 (id INT PRIMARY KEY) ENGINE=InnoDB; \
         ALTER TABLE other.t ADD COLUMN c INT NOT NULL DEFAULT 7; \
         CREATE DATABASE other2; CREATE TABLE other2.x (id INT PRIMARY KEY) ENGINE=InnoDB; \
         INSERT INTO other2.x VALUES (1), (2); \
         BEGIN; INSERT INTO shop.t VALUES (12, 'both'); INSERT INTO other.t2 VALUES (1); \
         UPDATE other.t SET v = 'both' WHERE id = 2; DELETE FROM shop.t WHERE id = 5; COMMIT; \
         CREATE TABLE shop.t3 (id INT PRIMARY KEY, w INT) ENGINE=InnoDB; \
         INSERT INTO shop.t3 VALUES (1, 1), (2, 4); \
         DROP TABLE other.t2; INSERT INTO other.t VALUES (20, 'last', 1); \
         USE shop; ALTER TABLE t ADD COLUMN n INT NOT NULL DEFAULT 3; \
         INSERT INTO t VALUES (13, 'used', 9);",
    );
    archive();
    let want = checksums_of(&source, "shop");
    assert_eq!(want.len(), 2, "{want:?}");

    let restore_shop = |pitr: &[&str]| {
        target.sql("DROP DATABASE IF EXISTS shop; DROP DATABASE IF EXISTS other");
        let out = restore_into(repo, pass, &target, pitr);
        eprintln!("restore {pitr:?}:\n{}", text(&out));
        out
    };
    let databases = |s: &Server| -> Vec<String> {
        s.sql_rows("SHOW DATABASES")
            .into_iter()
            .map(|r| r[0].clone())
            .collect()
    };

    // Without an ID: the whole-server backup serves, so it is the one.
    let out = restore_shop(&["--to-latest", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.contains(&format!("backup {whole} (")) && !text(&out).contains("PARTIAL"),
        "{said}"
    );
    // A backup of part of shop (--ignore-table) cannot start a replay: named, refused.
    let out = rbackup_on(
        &["backup", "--repo", repo, "--passphrase-file", pass],
        &source,
        &[
            "--databases",
            "shop",
            "--ignore-table=shop.t",
            "--progress=never",
        ],
    );
    assert!(out.status.success(), "backup: {}", text(&out));
    let part = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let out = restore_shop(&[&part, "--to-latest", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("--ignore-table shop.t leaves tables out"),
        "{}",
        text(&out)
    );
    // Its drill compares what it holds and records why nothing was replayed.
    let (out, record) = drill(repo, pass, &part, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let replay = &record["binlog_replay"];
    assert_eq!(replay["done"], false, "{record:#}");
    assert!(
        replay["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("no replay: the backup holds part of a database")),
        "{record:#}"
    );

    // --dry-run of the partial backup: what is left out, nothing changed.
    let out = restore_shop(&[&id, "--to-latest", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.contains("databases: shop (a partial backup"), "{said}");
    let left_out: u64 = said
        .split("left out: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no 'left out' line: {said}"));
    // other's INSERT, DELETE, CREATE TABLE, ALTER, CREATE DATABASE other2, its CREATE
    // TABLE and INSERT, DROP TABLE, the last INSERT.
    assert_eq!(left_out, 9, "{said}");
    assert!(
        said.contains("2 statements on other databases cut out of 1 transactions"),
        "{said}"
    );
    assert!(!databases(&target).contains(&"shop".to_string()));

    // --to-latest: shop's final state, and nothing of the other databases.
    let out = restore_shop(&[&id, "--to-latest"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        said.contains(&format!(
            "PARTIAL RESTORE: only the databases of backup {id} are restored (shop)"
        )),
        "{said}"
    );
    assert_eq!(checksums_of(&target, "shop"), want);
    let dbs = databases(&target);
    assert!(
        !dbs.contains(&"other".to_string()) && !dbs.contains(&"other2".to_string()),
        "{dbs:?}"
    );
    assert_eq!(
        target.sql_rows("SELECT id, v, n FROM shop.t WHERE id > 10 OR id = 5 ORDER BY id"),
        vec![
            vec!["11".to_string(), "after".into(), "3".into()],
            vec!["12".to_string(), "both".into(), "3".into()],
            vec!["13".to_string(), "used".into(), "9".into()],
        ]
    );

    // The drill replays shop's transactions and passes.
    let (out, record) = drill(repo, pass, &id, &[]);
    eprintln!("drill: {}\n{record:#}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(record["verdict"], "passed", "{record:#}");
    let replay = &record["binlog_replay"];
    assert_eq!(replay["done"], true, "{record:#}");
    assert!(replay["transactions"].as_u64().unwrap() >= 6, "{record:#}");
    assert_eq!(replay["databases"], "shop", "{record:#}");
    assert_eq!(
        replay["other_databases"]["transactions_left_out"], 9,
        "{record:#}"
    );

    // The trap: a statement logged with `other` as its default database writing into
    // shop. Refused, naming it; left out knowingly with --skip-gtid.
    source.sql(
        "SET SESSION binlog_format = 'STATEMENT'; USE other; \
         INSERT INTO shop.t VALUES (14, 'trap', 1); SET SESSION binlog_format = 'ROW'; \
         INSERT INTO shop.t VALUES (15, 'after trap', 1);",
    );
    archive();
    let trap_gtid = last_gtid_where(&source, |ev, _| {
        ev[2] == "Query" && ev[5].contains("'trap'")
    })
    .expect("the trap statement is logged as a statement");
    let out = restore_shop(&[&id, "--to-latest", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!("transaction {trap_gtid}"))
            && said.contains("default database `other` names `shop`")
            && said.contains(&format!("--skip-gtid {trap_gtid}")),
        "{said}"
    );
    let out = restore_shop(&[&id, "--to-latest", "--skip-gtid", &trap_gtid]);
    assert!(out.status.success(), "{}", text(&out));
    // A drill now replays up to the trap, which ends the backup's window, and passes.
    let (out, record) = drill(repo, pass, &id, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let replay = &record["binlog_replay"];
    assert_eq!(replay["done"], true, "{record:#}");
    assert!(
        replay["stop"]["why"].as_str().is_some_and(|w| w
            .starts_with(&format!("the next transaction {trap_gtid}"))
            && w.contains("names `shop`")),
        "{record:#}"
    );
    assert_eq!(
        target.sql_rows("SELECT id FROM shop.t WHERE id > 13 ORDER BY id"),
        vec![vec!["15".to_string()]]
    );
}

/// XA transactions in a partial backup's replay. MariaDB logs a prepared XA transaction
/// (`XA START` ... `XA END`, XA PREPARE) and its `XA COMMIT` as two transactions: one of
/// another database's is left out whole, and so must its `XA COMMIT` be (replayed alone,
/// the target knows no such XID and the restore fails); one of shop's is replayed, both
/// halves.
#[test]
fn a_partial_backups_replay_keeps_or_leaves_out_both_halves_of_an_xa_transaction() {
    let (source, target) = common::start_two(common::options(1, true), ServerOptions::default());
    source.sql(
        "CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20)) \
         ENGINE=InnoDB; INSERT INTO shop.t VALUES (1, 'a'); \
         CREATE DATABASE other; CREATE TABLE other.t (id INT PRIMARY KEY, v VARCHAR(20)) \
         ENGINE=InnoDB;",
    );
    let tmp = PassphraseRepo::init();
    let (repo, pass) = (tmp.url.as_str(), tmp.pass.as_str());
    let archive = || archive_once(repo, pass, &source, 0);
    archive();
    let id = backup_shop(repo, pass, &source);
    source.sql(
        "XA START 'o1'; INSERT INTO other.t VALUES (1, 'xa'); XA END 'o1'; XA PREPARE 'o1'; \
         XA COMMIT 'o1'; \
         XA START 's1'; INSERT INTO shop.t VALUES (2, 'xa'); XA END 's1'; XA PREPARE 's1'; \
         XA COMMIT 's1'; \
         XA START 'o2'; INSERT INTO other.t VALUES (2, 'xa'); XA END 'o2'; XA PREPARE 'o2'; \
         XA ROLLBACK 'o2'; \
         INSERT INTO shop.t VALUES (3, 'after');",
    );
    archive();
    let want = checksums_of(&source, "shop");
    let out = restore_into(repo, pass, &target, &[&id, "--to-latest"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(checksums_of(&target, "shop"), want);
    assert_eq!(
        target.sql_value(
            "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'other'"
        ),
        "0"
    );
}

/// With statement logging (STATEMENT, or MIXED, MariaDB's default), a statement on
/// another database that fires a trigger (or calls a stored function) writing into a kept
/// one is logged as that statement alone, by its default database: a partial backup's
/// replay left it out, and the kept database missed the trigger's rows, silently. Such a
/// backup now records that it cannot start a replay, naming the trigger.
#[test]
fn a_trigger_on_another_database_writing_into_a_kept_one_is_not_lost() {
    let (source, target) = common::start_two(common::options(1, true), ServerOptions::default());
    source.sql(
        "CREATE DATABASE shop; CREATE TABLE shop.log (id INT PRIMARY KEY) ENGINE=InnoDB; \
         CREATE DATABASE other; CREATE TABLE other.t (id INT PRIMARY KEY) ENGINE=InnoDB; \
         CREATE TRIGGER other.tr AFTER INSERT ON other.t FOR EACH ROW \
         INSERT INTO shop.log VALUES (NEW.id);",
    );
    let tmp = PassphraseRepo::init();
    let (repo, pass) = (tmp.url.as_str(), tmp.pass.as_str());
    let archive = || archive_once(repo, pass, &source, 0);
    archive();
    let id = backup_shop(repo, pass, &source);
    source.sql("SET SESSION binlog_format = 'MIXED'; USE other; INSERT INTO t VALUES (1), (2);");
    archive();
    assert_eq!(source.sql_value("SELECT COUNT(*) FROM shop.log"), "2");
    let out = restore_into(repo, pass, &target, &[&id, "--to-latest"]);
    // Refused, naming the trigger (restored, shop.log would lack the trigger's rows).
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("trigger other.tr"), "{}", text(&out));

    // A trigger of an ignored database that names only its row (NEW.c) and its own
    // database: the backup of every other database can start a replay.
    source.sql(
        "CREATE DATABASE x; CREATE TABLE x.t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB; \
         CREATE TRIGGER x.tr BEFORE INSERT ON x.t FOR EACH ROW SET NEW.v = NEW.id + \
         (SELECT COUNT(*) FROM x.t);",
    );
    let out = rbackup_on(
        &["backup", "--repo", repo, "--passphrase-file", pass],
        &source,
        &["--all-databases", "--ignore-database=x", "--progress=never"],
    );
    assert!(out.status.success(), "backup: {}", text(&out));
    let except_x = String::from_utf8_lossy(&out.stdout).trim().to_string();
    archive();
    let out = rbackup_on(
        &[
            "restore",
            "--repo",
            repo,
            "--passphrase-file",
            pass,
            &except_x,
            "--to-latest",
            "--dry-run",
        ],
        &target,
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
}

/// A kept database named by digits alone (`2024`), written into by a statement logged
/// under another default database (`USE other; INSERT INTO `2024`.t ...`): the qualifier
/// `` `2024`. `` was taken for a number, so the statement counted as other's and the
/// replay dropped its row silently. It is mixed: the restore refuses, naming it.
#[test]
fn a_statement_from_another_database_naming_a_kept_one_spelt_in_digits_is_not_dropped() {
    let (source, target) = common::start_two(
        ServerOptions {
            binlog: true,
            ..Default::default()
        },
        ServerOptions::default(),
    );
    source.sql(
        "CREATE DATABASE `2024`; CREATE TABLE `2024`.t (id INT PRIMARY KEY) ENGINE=InnoDB; \
         CREATE DATABASE other; CREATE TABLE other.t (id INT PRIMARY KEY) ENGINE=InnoDB;",
    );
    let tmp = PassphraseRepo::init();
    let (repo, pass) = (tmp.url.as_str(), tmp.pass.as_str());
    let archive = || archive_once(repo, pass, &source, 0);
    archive();
    let id = backup_of(repo, pass, &source, &["--databases", "2024"]);
    source.sql(
        "SET SESSION binlog_format = 'STATEMENT'; USE other; \
         INSERT INTO `2024`.t VALUES (1); INSERT INTO other.t VALUES (1);",
    );
    archive();
    let out = restore_into(repo, pass, &target, &[&id, "--to-latest", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("default database `other` names `2024`"),
        "{}",
        text(&out)
    );
}

/// A statement logged by a session with NO_BACKSLASH_ESCAPES, from another default
/// database, writing into a kept one after a string that ends in a backslash
/// (`'C:\'`): read with backslash escapes, the string ran on to the end and hid `shop.t`,
/// so the statement counted as other's and the replay dropped its write silently. Its
/// strings are read as its session's `sql_mode` reads them: mixed, refused, named.
#[test]
fn a_statement_logged_without_backslash_escapes_is_read_as_its_session_read_it() {
    let (source, target) = common::start_two(
        ServerOptions {
            binlog: true,
            ..Default::default()
        },
        ServerOptions::default(),
    );
    source.sql(
        "CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20)) \
         ENGINE=InnoDB; INSERT INTO shop.t VALUES (1, 'a'); \
         CREATE DATABASE other; CREATE TABLE other.t (id INT PRIMARY KEY) ENGINE=InnoDB;",
    );
    let tmp = PassphraseRepo::init();
    let (repo, pass) = (tmp.url.as_str(), tmp.pass.as_str());
    let archive = || archive_once(repo, pass, &source, 0);
    archive();
    let id = backup_shop(repo, pass, &source);
    source.sql(
        "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES'); \
         SET SESSION binlog_format = 'STATEMENT'; USE other; \
         UPDATE (SELECT 'C:\\' AS p) AS d JOIN shop.t AS s SET s.v = d.p; \
         INSERT INTO other.t VALUES (1);",
    );
    assert_eq!(source.sql_value("SELECT v FROM shop.t"), "C:\\");
    archive();
    let out = restore_into(repo, pass, &target, &[&id, "--to-latest", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("default database `other` names `shop`"),
        "{}",
        text(&out)
    );
}

/// A trigger of another database created under NO_BACKSLASH_ESCAPES whose body names a
/// kept database after a string ending in a backslash (`'C:\'`): read with backslash
/// escapes the string ran on to the end and hid `shop.log`, so the backup of shop was
/// recorded as replayable and a statement-logged firing would lose the trigger's write.
/// The body is read with the trigger's own `sql_mode`: the backup starts no replay.
#[test]
fn a_trigger_created_without_backslash_escapes_naming_a_kept_database_is_found() {
    let (source, target) = common::start_two(
        ServerOptions {
            binlog: true,
            ..Default::default()
        },
        ServerOptions::default(),
    );
    source.sql(
        "CREATE DATABASE shop; CREATE TABLE shop.log (id INT PRIMARY KEY, p VARCHAR(20)) \
         ENGINE=InnoDB; INSERT INTO shop.log VALUES (1, ''); \
         CREATE DATABASE other; CREATE TABLE other.t (id INT PRIMARY KEY) ENGINE=InnoDB; \
         SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES'); \
         CREATE TRIGGER other.tr AFTER INSERT ON other.t FOR EACH ROW \
         UPDATE (SELECT 'C:\\' AS p) AS d JOIN shop.log AS l SET l.p = d.p;",
    );
    let tmp = PassphraseRepo::init();
    let (repo, pass) = (tmp.url.as_str(), tmp.pass.as_str());
    let archive = || archive_once(repo, pass, &source, 0);
    archive();
    let id = backup_shop(repo, pass, &source);
    source.sql("SET SESSION binlog_format = 'STATEMENT'; USE other; INSERT INTO t VALUES (1);");
    assert_eq!(source.sql_value("SELECT p FROM shop.log"), "C:\\");
    archive();
    let out = restore_into(repo, pass, &target, &[&id, "--to-latest", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("trigger other.tr"), "{}", text(&out));
}

/// `rbackup backup` of `source` with `extra` (none: the whole server): its ID.
fn backup_of(repo: &str, pass: &str, source: &Server, extra: &[&str]) -> String {
    let mut tail = extra.to_vec();
    tail.push("--progress=never");
    let out = rbackup_on(
        &["backup", "--repo", repo, "--passphrase-file", pass],
        source,
        &tail,
    );
    assert!(out.status.success(), "backup: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `rbackup restore` into `target` (database `db` dropped first) with `pitr`.
fn restore_db(
    repo: &str,
    pass: &str,
    target: &Server,
    db: &str,
    pitr: &[&str],
) -> std::process::Output {
    target.sql(&format!(
        "DROP DATABASE IF EXISTS {db}; DROP DATABASE IF EXISTS other"
    ));
    let out = restore_into(repo, pass, target, pitr);
    eprintln!("restore {pitr:?}:\n{}", text(&out));
    out
}

/// The GTID of the transaction of `source`'s binlog with an event whose text contains
/// `needle` (the last such), and the binlog file it is in.
fn gtid_with(source: &Server, needle: &str) -> (String, String) {
    let mut found = None;
    for file in source.sql_rows("SHOW BINARY LOGS") {
        let mut gtid = None;
        for ev in source.sql_rows(&format!("SHOW BINLOG EVENTS IN '{}'", file[0])) {
            if ev[2] == "Gtid" {
                gtid = ev[5].split_whitespace().last().map(str::to_string);
            }
            if ev[5].contains(needle) {
                found = gtid.clone().map(|g| (g, file[0].clone()));
            }
        }
    }
    found.unwrap_or_else(|| panic!("no event with {needle:?} in the binlog"))
}

/// `--skip-gtid` of a prepared XA transaction's first half (`XA START` .. `XA PREPARE`,
/// binlogged as its own GTID group): its `XA COMMIT`, a later group, is left out with it
/// (replayed alone it failed: XAER_NOTA), and the plan says so.
#[test]
fn skipping_a_prepared_xa_half_leaves_out_its_xa_commit() {
    let (source, target) = common::start_two(
        ServerOptions {
            binlog: true,
            ..Default::default()
        },
        ServerOptions::default(),
    );
    source.sql(
        "CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20)) \
         ENGINE=InnoDB; INSERT INTO shop.t VALUES (1, 'a');",
    );
    let tmp = PassphraseRepo::init();
    let (repo, pass) = (tmp.url.as_str(), tmp.pass.as_str());
    let archive = || archive_once(repo, pass, &source, 0);
    archive();
    backup_of(repo, pass, &source, &[]);
    // The prepared XA transaction outlives its session (MariaDB 10.5+); another one
    // writes meanwhile; then its XA COMMIT.
    source.sql("XA START 'x1'; INSERT INTO shop.t VALUES (2, 'xa'); XA END 'x1'; XA PREPARE 'x1';");
    source.sql("INSERT INTO shop.t VALUES (3, 'between');");
    source.sql("XA COMMIT 'x1'; INSERT INTO shop.t VALUES (4, 'after');");
    archive();
    let (half, _) = gtid_with(&source, "XA PREPARE X'7831'");
    let (commit, _) = gtid_with(&source, "XA COMMIT X'7831'");
    assert_ne!(half, commit);
    let out = restore_db(
        repo,
        pass,
        &target,
        "shop",
        &["--to-latest", "--skip-gtid", &half],
    );
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.contains(&format!("skipped: transaction {half}"))
            && said.contains(&format!("skipped: transaction {commit}"))
            && said.contains("the XA COMMIT of XA transaction x'7831',x'',1"),
        "{said}"
    );
    assert_eq!(
        target.sql_rows("SELECT id FROM shop.t ORDER BY id"),
        vec![vec!["1".to_string()], vec!["3".into()], vec!["4".into()]]
    );
    assert_eq!(target.sql("XA RECOVER").trim(), "");
}

/// An XA transaction prepared before a backup's coordinates and committed after them:
/// the backup (a consistent snapshot) does not hold its rows, and its `XA COMMIT` alone
/// fails on the target (XAER_NOTA). Its prepared half, archived before the coordinates,
/// is replayed first (whole-server and partial backups); one rolled back is as if never
/// there. Not archived (its binlog's segments lost): the plan is refused before anything
/// is loaded, naming the XID and the XA COMMIT's GTID, and `--skip-gtid` of the XA COMMIT
/// restores without its rows knowingly; its rolled-back sibling is left out.
#[test]
fn an_xa_transaction_prepared_before_a_backup_and_committed_after_it_is_not_lost() {
    let (source, target) = common::start_two(
        ServerOptions {
            binlog: true,
            ..Default::default()
        },
        ServerOptions::default(),
    );
    source.sql(
        "CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20)) \
         ENGINE=InnoDB; INSERT INTO shop.t VALUES (1, 'a'); \
         CREATE DATABASE other; CREATE TABLE other.t (id INT PRIMARY KEY) ENGINE=InnoDB;",
    );
    let tmp = PassphraseRepo::init();
    let (repo, pass) = (tmp.url.as_str(), tmp.pass.as_str());
    let archive = || archive_once(repo, pass, &source, 0);
    archive();
    source.sql("XA START 'p1'; INSERT INTO shop.t VALUES (2, 'p1'); XA END 'p1'; XA PREPARE 'p1';");
    source.sql("XA START 'p2'; INSERT INTO shop.t VALUES (3, 'p2'); XA END 'p2'; XA PREPARE 'p2';");
    source.sql("XA START 'o1'; INSERT INTO other.t VALUES (1); XA END 'o1'; XA PREPARE 'o1';");
    let whole = backup_of(repo, pass, &source, &[]);
    let shop = backup_of(repo, pass, &source, &["--databases", "shop"]);
    source.sql(
        "XA COMMIT 'p1'; XA ROLLBACK 'p2'; XA COMMIT 'o1'; INSERT INTO shop.t VALUES (4, 'after');",
    );
    archive();
    let want = checksums_of(&source, "shop");
    let (p1_half, _) = gtid_with(&source, "XA PREPARE X'7031'");
    for id in [&whole, &shop] {
        let out = restore_db(repo, pass, &target, "shop", &[id, "--to-latest"]);
        assert!(out.status.success(), "{}", text(&out));
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            said.contains(&format!("replayed first: transaction {p1_half}")),
            "{said}"
        );
        assert_eq!(checksums_of(&target, "shop"), want, "backup {id}");
        assert_eq!(target.sql("XA RECOVER").trim(), "", "backup {id}");
        target.sql("DROP DATABASE IF EXISTS other");
    }

    // Prepared in a binlog file whose segments are then lost.
    source.sql("FLUSH BINARY LOGS");
    source.sql("XA START 'p3'; INSERT INTO shop.t VALUES (5, 'p3'); XA END 'p3'; XA PREPARE 'p3';");
    source.sql("XA START 'p4'; INSERT INTO shop.t VALUES (6, 'p4'); XA END 'p4'; XA PREPARE 'p4';");
    source.sql("FLUSH BINARY LOGS; INSERT INTO shop.t VALUES (7, 'later');");
    let newer = backup_of(repo, pass, &source, &[]);
    source.sql("XA COMMIT 'p3'; XA ROLLBACK 'p4'; INSERT INTO shop.t VALUES (8, 'after');");
    archive();
    let (_, lost_file) = gtid_with(&source, "XA PREPARE X'7033'");
    let (p3_commit, _) = gtid_with(&source, "XA COMMIT X'7033'");
    let (p4_rollback, _) = gtid_with(&source, "XA ROLLBACK X'7034'");
    let lost = segment_objects(Path::new(repo), &lost_file);
    assert!(!lost.is_empty());
    for (path, _, _) in &lost {
        std::fs::remove_file(path).unwrap();
    }
    let out = restore_db(repo, pass, &target, "shop", &[&newer, "--to-latest"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!("transaction {p3_commit}"))
            && said.contains("XA transaction x'7033',x'',1")
            && said.contains(&format!("--skip-gtid {p3_commit}")),
        "{said}"
    );
    assert_eq!(
        target.sql_value(
            "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'shop'"
        ),
        "0",
        "a refused restore loaded the backup"
    );
    let out = restore_db(
        repo,
        pass,
        &target,
        "shop",
        &[&newer, "--to-latest", "--skip-gtid", &p3_commit],
    );
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.contains(&format!("left out: transaction {p4_rollback}")),
        "{said}"
    );
    assert_eq!(
        target.sql_rows("SELECT id FROM shop.t ORDER BY id"),
        [1, 2, 4, 7, 8]
            .iter()
            .map(|i| vec![i.to_string()])
            .collect::<Vec<_>>()
    );
}

/// With `lower_case_table_names=1` the server names database `Shop` `shop` (in its
/// binlog too): a backup of `--databases Shop` replays shop's events, none dropped.
#[test]
fn a_partial_backup_named_in_another_letter_case_replays_its_events() {
    let lower = ServerOptions {
        binlog: true,
        extra_args: vec!["--lower-case-table-names=1".into()],
        ..Default::default()
    };
    let (source, target) = common::start_two(
        lower,
        ServerOptions {
            extra_args: vec!["--lower-case-table-names=1".into()],
            ..Default::default()
        },
    );
    source.sql(
        "CREATE DATABASE Shop; CREATE TABLE Shop.T (id INT PRIMARY KEY, v VARCHAR(20)) \
         ENGINE=InnoDB; INSERT INTO Shop.T VALUES (1, 'a'); \
         CREATE DATABASE other; CREATE TABLE other.t (id INT PRIMARY KEY) ENGINE=InnoDB;",
    );
    let tmp = PassphraseRepo::init();
    let (repo, pass) = (tmp.url.as_str(), tmp.pass.as_str());
    let archive = || archive_once(repo, pass, &source, 0);
    archive();
    let id = backup_of(repo, pass, &source, &["--databases", "Shop"]);
    source.sql(
        "INSERT INTO Shop.T VALUES (2, 'b'); USE Shop; INSERT INTO T VALUES (3, 'c'); \
         UPDATE shop.t SET v = 'z' WHERE id = 1; INSERT INTO other.t VALUES (1);",
    );
    archive();
    let want = checksums_of(&source, "shop");
    let out = restore_db(repo, pass, &target, "shop", &[&id, "--to-latest"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(checksums_of(&target, "shop"), want);
    assert_eq!(
        target.sql_rows("SELECT id, v FROM shop.t ORDER BY id"),
        vec![
            vec!["1".to_string(), "z".into()],
            vec!["2".to_string(), "b".into()],
            vec!["3".to_string(), "c".into()],
        ]
    );
    assert_eq!(
        target.sql_value(
            "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'other'"
        ),
        "0"
    );
}
