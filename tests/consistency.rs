//! Consistency under load: while server-side writers keep moving amounts between rows of
//! two tables (the total never changes), `rdump --dir --threads 4` with small chunks must
//! capture one state: the restored total is exact, and replaying the source's binlog from
//! the recorded coordinates turns the restored copy into the source's final state. Run for
//! every consistency method MariaDB has; snapshot-only and none must say they are not
//! consistent across threads.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::dirdump::restore_dir;
use common::{Server, ServerOptions};
use rdump::format::manifest;

const ROWS: u32 = 3000;
const START_AMOUNT: u64 = 1000;

fn setup(server: &Server) {
    server.sql(&format!(
        "CREATE DATABASE bank;
         CREATE TABLE bank.a (id INT PRIMARY KEY, amount BIGINT NOT NULL) ENGINE=InnoDB;
         CREATE TABLE bank.b (id INT PRIMARY KEY, amount BIGINT NOT NULL) ENGINE=InnoDB;
         CREATE TABLE bank.ctl (id INT PRIMARY KEY, go INT NOT NULL) ENGINE=InnoDB;
         CREATE TABLE bank.m (id INT PRIMARY KEY, n BIGINT NOT NULL) ENGINE=MyISAM;
         INSERT INTO bank.m VALUES (1, 0), (2, 0);
         INSERT INTO bank.ctl VALUES (1, 1);
         INSERT INTO bank.a SELECT seq, {START_AMOUNT} FROM bank.seq_1_to_{ROWS};
         INSERT INTO bank.b SELECT seq, {START_AMOUNT} FROM bank.seq_1_to_{ROWS};"
    ));
    // One transfer per transaction, until ctl.go is 0 (or a safety bound).
    server.sql(
        "DELIMITER ;;
         CREATE PROCEDURE bank.churn()
         BEGIN
           DECLARE n INT DEFAULT 0;
           DECLARE x, i, j, k, l INT;
           WHILE (SELECT go FROM bank.ctl WHERE id = 1) = 1 AND n < 2000000 DO
             -- Point updates: the ids are computed first (RAND() in a WHERE would be
             -- evaluated per row, scanning and locking the whole table).
             SET x = FLOOR(1 + RAND() * 50), i = FLOOR(1 + RAND() * 3000),
                 j = FLOOR(1 + RAND() * 3000), k = FLOOR(1 + RAND() * 3000),
                 l = FLOOR(1 + RAND() * 3000);
             START TRANSACTION;
             UPDATE bank.a SET amount = amount - x WHERE id = i;
             UPDATE bank.b SET amount = amount + x WHERE id = j;
             UPDATE bank.b SET amount = amount - x WHERE id = k;
             UPDATE bank.a SET amount = amount + x WHERE id = l;
             COMMIT;
             -- A non-transactional table: consistent only if read while writes are stopped.
             UPDATE bank.m SET n = n + 1 WHERE id = 1 + (n MOD 2);
             SET n = n + 1;
           END WHILE;
         END;;
         DELIMITER ;",
    );
}

/// Two writers running the churn procedure until stopped.
fn start_writers(server: &Server) -> Vec<Child> {
    server.sql("UPDATE bank.ctl SET go = 1");
    (0..2)
        .map(|_| {
            server
                .client_command()
                .args(["-e", "CALL bank.churn()"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect()
}

fn stop_writers(server: &Server, writers: Vec<Child>) {
    server.sql("UPDATE bank.ctl SET go = 0");
    for w in writers {
        let out = w.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "writer: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn total(server: &Server) -> u64 {
    server
        .sql_value("SELECT (SELECT SUM(amount) FROM bank.a) + (SELECT SUM(amount) FROM bank.b)")
        .parse()
        .unwrap()
}

fn checksums(server: &Server) -> String {
    server.sql("CHECKSUM TABLE bank.a, bank.b, bank.m EXTENDED")
}

/// Replays the source's binlog from the manifest's coordinates into `target`.
fn replay_binlog(source: &Server, target: &Server, file: &str, pos: u64) {
    let dir = source.binlog_basename().unwrap();
    let dir = dir.parent().unwrap();
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.as_str() >= file && n.starts_with(file.rsplit_once('.').unwrap().0))
        .filter(|n| !n.ends_with(".index") && !n.ends_with(".state"))
        .collect();
    files.sort();
    let out = Command::new("mariadb-binlog")
        .arg(format!("--start-position={pos}"))
        .args(files.iter().map(|f| dir.join(f)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mariadb-binlog: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Only the first file starts at `pos`; mariadb-binlog applies it to the first file.
    target
        .restore(&out.stdout)
        .unwrap_or_else(|e| panic!("replaying the binlog: {e}"));
}

fn dump_under_load(
    source: &Server,
    target: &Server,
    consistency: &str,
    threads: u32,
    dir: &Path,
) -> manifest::Manifest {
    let writers = start_writers(source);
    std::thread::sleep(Duration::from_millis(300));
    let out = Command::new(env!("CARGO_BIN_EXE_rdump"))
        .arg("--no-defaults")
        .arg(format!("--socket={}", source.socket().display()))
        .args(["-uroot", "--chunk-size=200", "--progress=never"])
        .arg(format!("--threads={threads}"))
        .arg(format!("--consistency={consistency}"))
        .arg(format!("--dir={}", dir.display()))
        .args(["-B", "bank"])
        .output()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    stop_writers(source, writers);
    assert!(
        out.status.success(),
        "[{consistency}] {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = manifest::read(dir).unwrap();
    target.sql("DROP DATABASE IF EXISTS bank");
    restore_dir(target, dir, &m);
    m
}

#[test]
fn every_locking_method_captures_one_state_and_its_coordinates() {
    let (source, target) = common::start_two(common::options(51, true), common::options(52, false));
    setup(&source);
    let expected = 2 * u64::from(ROWS) * START_AMOUNT;
    for method in ["flush", "backup-lock", "lock", "auto"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        let m = dump_under_load(&source, &target, method, 4, &dir);
        assert!(
            m.consistency.consistent,
            "[{method}] manifest says not consistent"
        );
        assert!(
            m.consistency.non_transactional_consistent,
            "[{method}] the MyISAM table was not read under the lock"
        );
        assert_eq!(
            total(&target),
            expected,
            "[{method}] the dump's total is off: threads saw different states"
        );
        let moved: u64 = target
            .sql_value("SELECT COUNT(*) FROM bank.a WHERE amount <> 1000")
            .parse()
            .unwrap();
        assert!(
            moved > 0,
            "[{method}] no writes happened before the dump; the test proves nothing"
        );
        let file = m.coordinates.binlog_file.clone().unwrap();
        let pos = m.coordinates.binlog_position.unwrap();
        replay_binlog(&source, &target, &file, pos);
        assert_eq!(
            checksums(&target),
            checksums(&source),
            "[{method}] the dump plus the binlog from its coordinates is not the source"
        );
        eprintln!(
            "[{method}] consistent: total exact, binlog replay from {file}:{pos} matches; lock {} ms",
            m.consistency.lock_ms
        );
    }
}

/// `--consistency=snapshot-only` with one thread takes no lock: its one snapshot is
/// consistent, and its coordinates are the snapshot's own (MariaDB's binlog_snapshot_*),
/// not the server's a moment later, which replaying the binlog from them shows.
#[test]
fn one_snapshot_without_a_lock_records_its_own_coordinates() {
    let (source, target) = common::start_two(common::options(56, true), common::options(57, false));
    setup(&source);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let m = dump_under_load(&source, &target, "snapshot-only", 1, &dir);
    assert!(m.consistency.consistent, "one snapshot is consistent");
    assert_eq!(total(&target), 2 * u64::from(ROWS) * START_AMOUNT);
    let file = m.coordinates.binlog_file.clone().unwrap();
    let pos = m.coordinates.binlog_position.unwrap();
    replay_binlog(&source, &target, &file, pos);
    // The MyISAM table is read outside any lock: only the InnoDB tables must match.
    let innodb = |s: &Server| s.sql("CHECKSUM TABLE bank.a, bank.b EXTENDED");
    assert_eq!(
        innodb(&target),
        innodb(&source),
        "the dump plus the binlog from its coordinates is not the source"
    );
}

#[test]
fn lockless_methods_say_they_are_not_consistent_across_threads() {
    let server = Server::start(ServerOptions {
        binlog: true,
        server_id: 53,
        ..Default::default()
    });
    server.sql("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY); INSERT INTO app.t VALUES (1);");
    for method in ["snapshot-only", "none"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        let out = Command::new(env!("CARGO_BIN_EXE_rdump"))
            .arg("--no-defaults")
            .arg(format!("--socket={}", server.socket().display()))
            .args(["-uroot", "--threads=2", "--progress=never"])
            .arg(format!("--consistency={method}"))
            .arg(format!("--dir={}", dir.display()))
            .arg("app")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let m = manifest::read(&dir).unwrap();
        assert_eq!(m.consistency.method, method);
        assert!(
            !m.consistency.consistent,
            "[{method}] claims consistency it cannot have"
        );
        assert!(m.consistency.lock_ms < 1000);
    }
}

/// The mysqldump-compatible stream read by several connections (`--threads`) shares one
/// snapshot: exact totals, and its `--master-data` coordinates are those of its data.
#[test]
fn the_single_stream_read_by_several_connections_captures_one_state() {
    let (source, target) = common::start_two(common::options(54, true), common::options(55, false));
    setup(&source);
    for mode in ["--single-transaction", "--lock-all-tables"] {
        let writers = start_writers(&source);
        std::thread::sleep(Duration::from_millis(300));
        let out = Command::new(env!("CARGO_BIN_EXE_rdump"))
            .arg("--no-defaults")
            .arg(format!("--socket={}", source.socket().display()))
            .args([
                "-uroot",
                "--threads=4",
                "--chunk-size=200",
                "--master-data=2",
                mode,
            ])
            .args(["-B", "bank"])
            .output()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        stop_writers(&source, writers);
        assert!(
            out.status.success(),
            "[{mode}] {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dump = String::from_utf8(out.stdout).unwrap();
        let line = dump
            .lines()
            .find(|l| l.starts_with("-- CHANGE MASTER TO MASTER_LOG_FILE="))
            .expect("no coordinates in the dump");
        let file = line.split('\'').nth(1).unwrap().to_string();
        let pos: u64 = line
            .rsplit("MASTER_LOG_POS=")
            .next()
            .unwrap()
            .trim_end_matches(';')
            .parse()
            .unwrap();
        target.sql("DROP DATABASE IF EXISTS bank");
        target.restore(dump.as_bytes()).unwrap();
        assert_eq!(
            total(&target),
            2 * u64::from(ROWS) * START_AMOUNT,
            "[{mode}] the readers saw different states"
        );
        replay_binlog(&source, &target, &file, pos);
        assert_eq!(
            checksums(&target),
            checksums(&source),
            "[{mode}] coordinates do not match the data"
        );
        eprintln!("[{mode}] 4 readers: total exact, binlog replay from {file}:{pos} matches");
    }
}

/// One batch of DDL and writes in database `ddl` (issue 13): a table created and filled,
/// an instant ALTER TABLE of an InnoDB table written throughout, an ALTER of a MyISAM
/// table, a table renamed, one dropped, the binlog rotated. The MyISAM table is written
/// and altered only with `myisam` (a single-transaction stream reads MyISAM tables
/// outside any lock, as mysqldump).
fn ddl_batch(n: u64, myisam: bool) -> String {
    let mut sql = format!(
        "INSERT INTO ddl.a (v) VALUES ({n}), ({n} + 1); UPDATE ddl.a SET v = v + 1 WHERE id = {k};\
         CREATE TABLE ddl.t{n} (id INT PRIMARY KEY, v INT) ENGINE=InnoDB;\
         INSERT INTO ddl.t{n} VALUES (1, {n}), (2, {n});",
        k = n % 10 + 1
    );
    if myisam {
        sql.push_str(&format!(" INSERT INTO ddl.m (v) VALUES ({n});"));
    }
    if n.is_multiple_of(2) {
        sql.push_str(&format!(
            " ALTER TABLE ddl.a ADD COLUMN c{n} INT NOT NULL DEFAULT {n};"
        ));
    }
    if myisam && n.is_multiple_of(3) {
        sql.push_str(&format!(
            " ALTER TABLE ddl.m ADD COLUMN c{n} INT NOT NULL DEFAULT {n};"
        ));
    }
    if n.is_multiple_of(4) && n > 4 {
        sql.push_str(&format!(" DROP TABLE IF EXISTS ddl.t{};", n - 3));
    }
    if n.is_multiple_of(5) && n > 5 {
        sql.push_str(&format!(" RENAME TABLE ddl.t{} TO ddl.r{};", n - 2, n - 2));
    }
    if n.is_multiple_of(7) {
        sql.push_str(" FLUSH BINARY LOGS;");
    }
    sql
}

/// Every table of `ddl`, with its columns and CHECKSUM TABLE.
fn ddl_state(s: &Server) -> Vec<String> {
    let tables = s.sql_rows(
        "SELECT table_name, GROUP_CONCAT(column_name ORDER BY ordinal_position) \
         FROM information_schema.columns WHERE table_schema = 'ddl' \
         GROUP BY table_name ORDER BY table_name",
    );
    let list: Vec<String> = tables.iter().map(|r| format!("ddl.`{}`", r[0])).collect();
    let sums = s.sql_rows(&format!("CHECKSUM TABLE {} EXTENDED", list.join(", ")));
    tables
        .iter()
        .zip(sums)
        .map(|(t, sum)| format!("{} ({}): {}", t[0], t[1], sum[1]))
        .collect()
}

/// CREATE, ALTER (instant on InnoDB, and of a MyISAM table), RENAME, DROP TABLE and FLUSH
/// BINARY LOGS run all the time while `rdump --single-transaction --master-data` and
/// `rdump --dir` (whose locks hold DDL off) dump: each dump plus the binlog replayed from
/// its coordinates must be the source, table for table, column for column and row for
/// row; a dump that cannot be consistent (`--consistency=lock`: LOCK TABLES leaves other
/// tables free to be created) must fail, naming the table. Before the fix a table created
/// between the listing and the lock was in neither the dump nor the replay, and the
/// stream dumped a table created, or instantly altered, after its snapshot.
#[test]
fn ddl_during_a_dump_never_makes_it_differ_from_its_coordinates() {
    let (source, target) = common::start_two(common::options(58, true), common::options(59, false));
    let modes: [(&str, &[&str]); 5] = [
        ("stream", &["--single-transaction", "--master-data=2"]),
        (
            "stream, one connection",
            &["--single-transaction", "--master-data=2", "--threads=1"],
        ),
        ("dir auto", &["--threads=3", "--consistency=auto"]),
        ("dir flush", &["--threads=3", "--consistency=flush"]),
        ("dir lock", &["--threads=3", "--consistency=lock"]),
    ];
    let mut refused = 0;
    for (mode, args) in modes {
        for round in 0..4 {
            source.sql(
                "DROP DATABASE IF EXISTS ddl; CREATE DATABASE ddl; \
                 CREATE TABLE ddl.a (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB; \
                 INSERT INTO ddl.a (v) SELECT seq FROM ddl.seq_1_to_2000; \
                 CREATE TABLE ddl.m (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=MyISAM; \
                 INSERT INTO ddl.m (v) VALUES (1), (2);",
            );
            let stream = mode.starts_with("stream");
            let stop = std::sync::atomic::AtomicBool::new(false);
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("d");
            let out = std::thread::scope(|scope| {
                scope.spawn(|| {
                    let mut n = 0;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        n += 1;
                        source.sql(&ddl_batch(n, !stream));
                    }
                });
                // DDL before the dump starts and while it runs; the dumps start at
                // different moments of a batch.
                std::thread::sleep(Duration::from_millis(150 + 37 * round));
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_rdump"));
                cmd.arg("--no-defaults")
                    .arg(format!("--socket={}", source.socket().display()))
                    .args(["-uroot", "--progress=never"])
                    .args(args);
                if !stream {
                    cmd.arg(format!("--dir={}", dir.display()));
                }
                let out = cmd.args(["-B", "ddl"]).output().unwrap();
                std::thread::sleep(Duration::from_millis(100));
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
                out
            });
            let said = String::from_utf8_lossy(&out.stderr).into_owned();
            if !out.status.success() {
                // Only LOCK TABLES may refuse, loudly and naming what changed.
                assert_eq!(mode, "dir lock", "[{mode}] {said}");
                assert!(
                    said.contains("`ddl`.`") && said.contains("created or dropped"),
                    "[{mode}] {said}"
                );
                refused += 1;
                eprintln!("[{mode}] refused: {said}");
                continue;
            }
            target.sql("DROP DATABASE IF EXISTS ddl");
            let (file, pos) = if stream {
                let dump = String::from_utf8(out.stdout).unwrap();
                let line = dump
                    .lines()
                    .find(|l| l.starts_with("-- CHANGE MASTER TO MASTER_LOG_FILE="))
                    .expect("no coordinates in the dump");
                let file = line.split('\'').nth(1).unwrap().to_string();
                let pos: u64 = line
                    .rsplit("MASTER_LOG_POS=")
                    .next()
                    .unwrap()
                    .trim_end_matches(';')
                    .parse()
                    .unwrap();
                target.restore(dump.as_bytes()).unwrap();
                (file, pos)
            } else {
                let m = manifest::read(&dir).unwrap();
                assert!(m.consistency.consistent, "[{mode}] not consistent");
                restore_dir(&target, &dir, &m);
                (
                    m.coordinates.binlog_file.clone().unwrap(),
                    m.coordinates.binlog_position.unwrap(),
                )
            };
            replay_binlog(&source, &target, &file, pos);
            assert_eq!(
                ddl_state(&target),
                ddl_state(&source),
                "[{mode}, round {round}] the dump plus the binlog from {file}:{pos} is not the source"
            );
            eprintln!("[{mode}, round {round}] dump + binlog from {file}:{pos} = source");
        }
    }
    eprintln!("--consistency=lock refused {refused} of 4 dumps");
}
