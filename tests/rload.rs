//! `rload`: directory dumps made by `rdump --dir` loaded back with the real `rload` binary
//! into real MariaDB servers.
//!
//! * the fidelity fixture round-trips through SQL and CSV chunks, with and without zstd,
//!   with indexes deferred or not: every table, view, trigger, routine, event and sequence
//!   identical (`snapshot_of`), and the journal gone afterwards;
//! * a damaged dump (flipped byte, truncated zstd file, a truncated zstd file whose manifest
//!   entry matches it, missing chunk, manifest of an unknown version, incomplete manifest, no
//!   manifest) is refused with exit code 5, naming the file, before anything changes on the
//!   target;
//! * objects that exist are refused (exit 1) unless `--drop-existing`; `--target-database`
//!   renames a database, its view's references included; a chunk damaged after the check
//!   (SQL cut inside a string: exit 5; CSV cut in half: exit 3) is rolled back;
//! * a chunk changed while the load runs (one row altered, same size; one row appended) is
//!   hashed as it loads and fails the load naming the file (exit 5), uncommitted; a chunk
//!   with more rows than the manifest says fails it (exit 3);
//! * databases and tables with the longest names the server takes (50 `#`, each `@0023` in
//!   a file name; 64 two-byte characters) dump with `--dir` and load back identical;
//! * a second rload of a dump into a server where one runs is refused (exit 1) without
//!   touching the journal or talking of an incomplete load, and after it finished;
//! * a load killed with SIGKILL in the middle is refused without `--resume` and finished
//!   with it, identical to an uninterrupted one, including a MyISAM chunk left half-loaded;
//!   the password is masked in the process's command line;
//! * a dump that others could change (a chunk writable by others, a manifest of another
//!   user) is refused (exit 1) before anything changes, unless `--skip-permission-check`;
//! * `--seed-replica` builds a replica from a dump taken while a primary takes writes
//!   (InnoDB, MyISAM, a table without a key); a wrong replication password is reported with
//!   the server's message (exit 2) and `--resume` then only sets up replication; the replica
//!   catches up and every table's CHECKSUM TABLE matches; the load is not in the replica's
//!   binary log.
//! * `--fast-unsafe` loads the fixture as the default path does and the durability globals
//!   afterwards equal those before: after success, after a failed load and after SIGTERM; an
//!   account without SUPER is refused, naming the variable, with nothing changed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{Server, ServerOptions, check_same, quote_ident, snapshot_of, stop_when};

const FIXTURE_DBS: &[&str] = &["fidelity", "fid elity-2"];

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fidelity.sql")
}

fn rdump_dir(server: &Server, dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_rdump"))
        .arg("--no-defaults")
        .arg(format!("--socket={}", server.socket().display()))
        .arg("-uroot")
        .arg(format!("--dir={}", dir.display()))
        .args(["--routines", "--events", "--progress=never", "--quiet"])
        .args(args)
        .output()
        .expect("run rdump");
    assert!(
        out.status.success(),
        "rdump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `rdump_dir` of `server` into `d` in a new temporary directory: the directory (removed
/// on drop) and the dump's path.
fn dump_dir(server: &Server, args: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    rdump_dir(server, &dir, args);
    (tmp, dir)
}

fn rload_command(target: &Server, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rload"));
    cmd.arg("--no-defaults")
        .arg(format!("--socket={}", target.socket().display()))
        .arg(format!("-u{}", target.user()))
        .arg(format!("-p{}", target.password()))
        .arg("--progress=never")
        .args(args)
        .arg(dir);
    cmd
}

fn rload(target: &Server, dir: &Path, args: &[&str]) -> Output {
    rload_command(target, dir, args)
        .output()
        .expect("run rload")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_ok(out: &Output, label: &str) {
    assert!(
        out.status.success(),
        "[{label}] rload failed ({}): {}",
        out.status,
        stderr(out)
    );
}

fn drop_databases(server: &Server, dbs: &[&str]) {
    let drops: Vec<String> = dbs
        .iter()
        .map(|db| format!("DROP DATABASE IF EXISTS {};", quote_ident(db)))
        .collect();
    server.sql(&format!("SET FOREIGN_KEY_CHECKS=0; {}", drops.join(" ")));
}

fn databases(server: &Server) -> Vec<Vec<String>> {
    server.sql_rows("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY 1")
}

/// A source with the fidelity fixture and a target, shared by the tests that only read
/// the source (each test uses its own target databases or its own target).
fn fixture_source() -> &'static Server {
    static SOURCE: OnceLock<Server> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let s = Server::start(ServerOptions {
            binlog: true,
            server_id: 51,
            ..Default::default()
        });
        s.load_file(fixture());
        s
    })
}

fn start(id: u32, binlog: bool) -> Server {
    Server::start(common::options(id, binlog))
}

#[test]
fn fidelity_fixture_round_trips_through_rdump_dir_and_rload() {
    let (a, b) = common::both(fixture_source, || start(52, false));
    let expected = snapshot_of(a, FIXTURE_DBS);
    for (label, dump_args, load_args) in [
        (
            "sql",
            vec!["--threads=3", "--chunk-size=500"],
            vec!["--threads=3"],
        ),
        (
            "sql + zstd, indexes not deferred",
            vec!["--threads=2", "--chunk-size=1000", "--zstd"],
            vec!["--threads=2", "--defer-indexes=off"],
        ),
        (
            "csv",
            vec!["--threads=2", "--chunk-size=700", "--format=csv"],
            vec!["--threads=4"],
        ),
        (
            "csv + zstd",
            vec![
                "--threads=2",
                "--chunk-size=2000",
                "--format=csv",
                "--zstd=5",
            ],
            vec!["--threads=2"],
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("dump");
        let mut args = vec!["--databases", "fidelity", "fid elity-2"];
        args.extend(dump_args);
        rdump_dir(a, &dir, &args);
        drop_databases(&b, FIXTURE_DBS);
        let started = Instant::now();
        let out = rload(&b, &dir, &load_args);
        assert_ok(&out, label);
        let summary = stderr(&out);
        assert!(
            summary.contains("rload: 2 databases, 38 tables"),
            "[{label}] {summary}"
        );
        check_same(&expected, &snapshot_of(&b, FIXTURE_DBS))
            .unwrap_or_else(|e| panic!("[{label}] {e}"));
        // The journal is gone once the load completed.
        assert!(
            !databases(&b).iter().any(|r| r[0] == "rdump_load"),
            "[{label}]"
        );
        eprintln!(
            "[{label}] identical after rload ({:.1?})",
            started.elapsed()
        );
    }
}

/// Rewrites the manifest of `dir` through `edit`.
fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("rdump.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut m);
    std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
}

/// The manifest's entry (as JSON) of the data file `file`.
fn chunk_entry<'a>(m: &'a mut serde_json::Value, file: &str) -> &'a mut serde_json::Value {
    m["databases"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .flat_map(|d| d["tables"].as_array_mut().unwrap().iter_mut())
        .flat_map(|t| t["chunks"].as_array_mut().unwrap().iter_mut())
        .find(|c| c["file"] == file)
        .unwrap_or_else(|| panic!("no chunk {file}"))
}

/// Copies a dump directory (to damage the copy).
fn copy_dir(from: &Path, to: &Path) {
    let out = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn a_damaged_dump_is_refused_before_anything_changes_on_the_target() {
    let (a, b) = common::both(fixture_source, || start(53, false));
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    let zst = tmp.path().join("zst");
    rdump_dir(
        a,
        &plain,
        &[
            "--chunk-size=1000",
            "fidelity",
            "many_rows",
            "ints",
            "myisam_t",
        ],
    );
    rdump_dir(
        a,
        &zst,
        &[
            "--chunk-size=1000",
            "--zstd",
            "fidelity",
            "many_rows",
            "ints",
        ],
    );
    let before = databases(&b);
    let chunk = "fidelity/many_rows.00007.sql";
    let zchunk = "fidelity/many_rows.00007.sql.zst";

    let mut cases: Vec<(&str, PathBuf, Vec<&str>)> = Vec::new();
    // A flipped byte in the middle of a chunk: same size, other checksum.
    let d = tmp.path().join("flipped");
    copy_dir(&plain, &d);
    let mut bytes = std::fs::read(d.join(chunk)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(d.join(chunk), &bytes).unwrap();
    cases.push(("flipped byte", d, vec![chunk, "checksum", "does not match"]));
    // A truncated zstd file.
    let d = tmp.path().join("truncated");
    copy_dir(&zst, &d);
    let bytes = std::fs::read(d.join(zchunk)).unwrap();
    std::fs::write(d.join(zchunk), &bytes[..bytes.len() - 9]).unwrap();
    cases.push(("truncated zstd", d, vec![zchunk, "truncated"]));
    // The same, with a manifest that matches the truncated file (written damaged).
    let d = tmp.path().join("truncated-listed");
    copy_dir(&zst, &d);
    let cut = &bytes[..bytes.len() - 9];
    std::fs::write(d.join(zchunk), cut).unwrap();
    edit_manifest(&d, |m| {
        let c = chunk_entry(m, zchunk);
        c["bytes"] = cut.len().into();
        c["checksum"] = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(cut)).into();
    });
    cases.push((
        "truncated zstd, listed so",
        d,
        vec![zchunk, "damaged zstd data"],
    ));
    // A missing chunk file.
    let d = tmp.path().join("missing");
    copy_dir(&plain, &d);
    std::fs::remove_file(d.join(chunk)).unwrap();
    cases.push(("missing chunk", d, vec![chunk, "missing"]));
    // A manifest from a future version, an incomplete one, none.
    let d = tmp.path().join("version");
    copy_dir(&plain, &d);
    edit_manifest(&d, |m| m["format_version"] = 2.into());
    cases.push((
        "unknown version",
        d,
        vec!["rdump.json", "unknown format", "version 2"],
    ));
    let d = tmp.path().join("incomplete");
    copy_dir(&plain, &d);
    edit_manifest(&d, |m| m["complete"] = false.into());
    cases.push(("incomplete", d, vec!["rdump.json", "incomplete"]));
    let d = tmp.path().join("no-manifest");
    copy_dir(&plain, &d);
    std::fs::remove_file(d.join("rdump.json")).unwrap();
    cases.push(("no manifest", d, vec!["rdump.json", "no manifest"]));

    for (label, dir, expected) in cases {
        let out = rload(&b, &dir, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(5), "[{label}] {err}");
        for e in expected {
            assert!(err.contains(e), "[{label}] expected {e:?} in: {err}");
        }
        assert!(!err.contains("--resume"), "[{label}] {err}");
        assert_eq!(databases(&b), before, "[{label}] the target changed");
        eprintln!("[{label}] refused: {}", err.lines().next().unwrap_or(""));
    }

    // The undamaged dumps load.
    for dir in [&plain, &zst] {
        drop_databases(&b, &["fidelity"]);
        assert_ok(&rload(&b, dir, &[]), "undamaged");
    }
    assert_eq!(
        b.sql_value("SELECT COUNT(*) FROM fidelity.many_rows"),
        "30000"
    );
}

/// Cuts an SQL chunk inside its first string value and sets the manifest to the result, so
/// that the check passes and the damage shows only while loading.
fn damage_after_verification(dir: &Path, file: &str) {
    let bytes = std::fs::read(dir.join(file)).unwrap();
    let values = bytes.windows(8).position(|w| w == b"VALUES (").unwrap();
    let quote = values + bytes[values..].iter().position(|&c| c == b'\'').unwrap();
    let cut = &bytes[..quote + 2];
    std::fs::write(dir.join(file), cut).unwrap();
    edit_manifest(dir, |m| {
        let c = chunk_entry(m, file);
        c["bytes"] = cut.len().into();
        c["checksum"] = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(cut)).into();
    });
}

#[test]
fn existing_objects_are_refused_unless_dropped_and_a_database_can_be_renamed() {
    let (a, b) = common::both(fixture_source, || start(54, false));
    let (tmp, dir) = dump_dir(
        a,
        &[
            "--chunk-size=5000",
            "--databases",
            "fidelity",
            "fid elity-2",
        ],
    );

    // One existing table of the dump: refused, nothing changed.
    b.sql("CREATE DATABASE fidelity; CREATE TABLE fidelity.ints (x INT); INSERT INTO fidelity.ints VALUES (7);");
    let out = rload(&b, &dir, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("table `fidelity`.`ints`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        b.sql_value(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'fidelity'"
        ),
        "1"
    );
    assert!(
        !databases(&b)
            .iter()
            .any(|r| r[0] == "fid elity-2" || r[0] == "rdump_load")
    );

    // --drop-existing replaces it.
    assert_ok(&rload(&b, &dir, &["--drop-existing"]), "drop-existing");
    check_same(&snapshot_of(a, FIXTURE_DBS), &snapshot_of(&b, FIXTURE_DBS)).unwrap();

    // --target-database: the second database under a new name; its view, which names its
    // database, follows.
    let out = rload(
        &b,
        &dir,
        &["--databases=fid elity-2", "--target-database=renamed db"],
    );
    assert_ok(&out, "rename");
    assert_eq!(
        b.sql_value("SELECT COUNT(*) FROM `renamed db`.`v cross`"),
        a.sql_value("SELECT COUNT(*) FROM `fid elity-2`.`v cross`")
    );
    let view = b.sql_value(
        "SELECT VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'renamed db'",
    );
    assert!(!view.contains("`fid elity-2`.`t-1`"), "{view}");
    // More than one database cannot take one name.
    let out = rload(&b, &dir, &["--target-database=x"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    // A chunk damaged after the check (same checksum in the manifest): the load stops with
    // exit 5 naming it, the chunk's transaction rolled back.
    let bad = tmp.path().join("bad");
    copy_dir(&dir, &bad);
    damage_after_verification(&bad, "fidelity/strings.00000.sql");
    let out = rload(&b, &bad, &["--drop-existing", "--tables=fidelity.strings"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("strings.00000.sql"),
        "{}",
        stderr(&out)
    );
    assert_eq!(b.sql_value("SELECT COUNT(*) FROM fidelity.strings"), "0");

    // A CSV chunk cut in half after the check: fewer rows than the manifest says, exit 3,
    // nothing of it kept.
    let csv = tmp.path().join("csv");
    rdump_dir(
        a,
        &csv,
        &[
            "--format=csv",
            "--chunk-size=100000",
            "fidelity",
            "many_rows",
        ],
    );
    let file = "fidelity/many_rows.00000.csv";
    let bytes = std::fs::read(csv.join(file)).unwrap();
    let cut = &bytes[..bytes.len() / 2];
    std::fs::write(csv.join(file), cut).unwrap();
    edit_manifest(&csv, |m| {
        let c = chunk_entry(m, file);
        c["bytes"] = cut.len().into();
        c["checksum"] = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(cut)).into();
    });
    let out = rload(&b, &csv, &["--drop-existing"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("many_rows"), "{}", stderr(&out));
    assert!(stderr(&out).contains("--resume"), "{}", stderr(&out));
    assert_eq!(b.sql_value("SELECT COUNT(*) FROM fidelity.many_rows"), "0");
}

/// The fixture source with a database `big` added: an InnoDB table with a secondary index
/// and a MyISAM table, enough rows for 60 + 1 chunks of 2000.
fn big_source() -> &'static Server {
    static BIG: OnceLock<()> = OnceLock::new();
    let s = fixture_source();
    BIG.get_or_init(|| {
        s.sql(
            "CREATE DATABASE big;
             CREATE TABLE big.inno (id INT PRIMARY KEY, k INT NOT NULL, v VARCHAR(100), KEY k (k)) ENGINE=InnoDB;
             INSERT INTO big.inno SELECT seq, seq % 977, REPEAT(CHAR(65 + seq % 26), 40 + seq % 50) FROM big.seq_1_to_120000;
             CREATE TABLE big.myi (id INT PRIMARY KEY, v VARCHAR(100), KEY kv (v(10))) ENGINE=MyISAM;
             INSERT INTO big.myi SELECT seq, CONCAT('row ', seq, REPEAT('y', seq % 50)) FROM big.seq_1_to_60000;",
        );
    });
    s
}

fn journal_value(target: &Server, sql: &str) -> Option<String> {
    target
        .sql_result(sql)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

#[test]
fn a_killed_load_resumes_and_ends_identical_to_an_uninterrupted_one() {
    let (a, b) = common::both(big_source, || start(55, false));
    let (_tmp, dir) = dump_dir(a, &["--chunk-size=2000", "--threads=2", "big"]);
    let m = rdump::format::manifest::read(&dir).unwrap();
    let chunks: usize = m
        .databases
        .iter()
        .flat_map(|d| &d.tables)
        .map(|t| t.chunks.len())
        .sum();
    // InnoDB in 60 chunks; the MyISAM table, read under the dump's lock, in one.
    assert!(chunks >= 60, "{chunks} chunks");

    // Kill -9 once some chunks are in.
    // One connection, which loads the tables biggest first: the MyISAM table's chunk is
    // not reached when the run is killed (two would start both tables at once).
    let mut child: Child = rload_command(&b, &dir, &["--threads=1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Stopped between short slices of work, so a quick machine cannot finish the load
    // between the check and the kill.
    stop_when(&mut child, "8 chunks were loaded", || done_chunks(&b) >= 8);
    // The password is masked in the process's command line, as rdump does.
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !cmdline.contains(b.password()),
        "password visible: {cmdline}"
    );
    assert!(
        cmdline.contains(&format!(" -p{} ", "x".repeat(b.password().len()))),
        "{cmdline}"
    );
    let at_kill = done_chunks(&b);
    assert!(
        at_kill < chunks,
        "the load was not interrupted ({at_kill} of {chunks})"
    );

    // Without --resume: refused, the journal kept.
    let out = rload(&b, &dir, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--resume"), "{}", stderr(&out));

    // As if the killed run had been in the middle of a MyISAM chunk: some of its rows are
    // in, its journal row says `started`. The resumed load must delete them first.
    let load_id = journal_value(&b, "SELECT load_id FROM rdump_load.rload_loads").unwrap();
    let untouched: Vec<_> = m.databases[0]
        .tables
        .iter()
        .find(|t| t.name == "myi")
        .unwrap()
        .chunks
        .iter()
        .filter(|c| {
            journal_value(
                &b,
                &format!(
                    "SELECT COUNT(*) FROM rdump_load.rload_journal WHERE item = 'chunk {}'",
                    c.file
                ),
            )
            .as_deref()
                == Some("0")
        })
        .collect();
    let half = untouched
        .first()
        .expect("a MyISAM chunk the killed run did not reach");
    let range = half.range.clone().unwrap_or_else(|| "TRUE".into());
    b.sql(&format!(
        "INSERT INTO rdump_load.rload_journal VALUES ('{load_id}', 'chunk {}', 'started', 0, NOW());
         INSERT INTO big.myi SELECT id, 'half-loaded' FROM (SELECT seq AS id FROM big.seq_1_to_60000) x WHERE {range} LIMIT 40;",
        half.file
    ));

    let out = rload(&b, &dir, &["--resume", "--threads=2"]);
    assert_ok(&out, "resume");
    assert!(stderr(&out).contains("resumed:"), "{}", stderr(&out));
    check_same(&snapshot_of(a, &["big"]), &snapshot_of(&b, &["big"])).unwrap();
    assert_eq!(
        b.sql_value("SELECT COUNT(*) FROM big.myi WHERE v = 'half-loaded'"),
        "0"
    );
    assert!(!databases(&b).iter().any(|r| r[0] == "rdump_load"));
    eprintln!("killed after {at_kill} of {chunks} chunks; resumed to an identical copy");
}

/// Chunks the target's journal has as loaded.
fn done_chunks(target: &Server) -> usize {
    journal_value(
        target,
        "SELECT COUNT(*) FROM rdump_load.rload_journal WHERE state = 'done' AND item LIKE 'chunk %'",
    )
    .and_then(|v| v.parse::<usize>().ok())
    .unwrap_or(0)
}

/// `rload ARGS DIR` into `target` (stdout discarded, stderr piped), left stopped
/// (`stop_when`) once its journal has `chunks` chunks loaded: kill it, or signal it and
/// `common::resume` it.
fn rload_stopped_after(target: &Server, dir: &Path, args: &[&str], chunks: usize) -> Child {
    let mut child = rload_command(target, dir, args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    stop_when(&mut child, &format!("{chunks} chunks were loaded"), || {
        done_chunks(target) >= chunks
    });
    child
}

#[test]
fn a_chunk_changed_during_the_load_fails_uncommitted_and_extra_rows_fail() {
    let (a, b) = common::both(big_source, || start(56, false));
    let (tmp, dir) = dump_dir(a, &["--chunk-size=2000", "--threads=2", "big", "inno"]);
    let m = rdump::format::manifest::read(&dir).unwrap();
    let last = m.databases[0].tables[0].chunks.last().unwrap().clone();
    assert!(last.index >= 50, "{} chunks", last.index + 1);
    let original = std::fs::read(dir.join(&last.file)).unwrap();
    let alter = |bytes: &mut Vec<u8>| {
        // One letter of one row's string, same size.
        let values = bytes.windows(8).position(|w| w == b"VALUES (").unwrap();
        let quote = values + bytes[values..].iter().position(|&c| c == b'\'').unwrap();
        bytes[quote + 1] = if bytes[quote + 1] == b'Z' { b'Y' } else { b'Z' };
    };
    let append = |bytes: &mut Vec<u8>| {
        bytes.extend_from_slice(b"INSERT INTO `inno` VALUES (999999,1,'appended');\n");
    };
    type Edit<'a> = (&'a str, &'a dyn Fn(&mut Vec<u8>));
    let edits: [Edit; 2] = [("one row altered", &alter), ("one row appended", &append)];
    for (label, edit) in edits {
        drop_databases(&b, &["big", "rdump_load"]);
        // Verified and loading, the last chunk not reached yet (one connection loads the
        // chunks in order).
        let child = rload_stopped_after(&b, &dir, &["--threads=1"], 3);
        let mut bytes = original.clone();
        edit(&mut bytes);
        std::fs::write(dir.join(&last.file), &bytes).unwrap();
        common::resume(&child);
        let out = child.wait_with_output().unwrap();
        std::fs::write(dir.join(&last.file), &original).unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(5), "[{label}] {err}");
        assert!(err.contains(&last.file), "[{label}] {err}");
        assert!(
            err.contains("changed after it was checked"),
            "[{label}] {err}"
        );
        assert!(!err.contains("rload: 1 databases"), "[{label}] {err}");
        // The chunk is not in: no journal row, none of its rows.
        assert_eq!(
            journal_value(
                &b,
                &format!(
                    "SELECT COUNT(*) FROM rdump_load.rload_journal WHERE item = 'chunk {}'",
                    last.file
                )
            )
            .as_deref(),
            Some("0"),
            "[{label}]"
        );
        let range = last.range.clone().unwrap();
        assert_eq!(
            b.sql_value(&format!(
                "SELECT COUNT(*) FROM big.inno WHERE {range} OR id = 999999"
            )),
            "0",
            "[{label}] the changed chunk's rows were kept"
        );
        eprintln!("[{label}] {}", err.lines().next().unwrap_or(""));
    }

    // A file with more rows than the manifest says (here: a manifest that says one fewer)
    // fails as one with fewer does.
    let fewer = tmp.path().join("fewer");
    copy_dir(&dir, &fewer);
    edit_manifest(&fewer, |m| {
        let c = chunk_entry(m, &last.file);
        c["rows"] = (last.rows - 1).into();
    });
    drop_databases(&b, &["big", "rdump_load"]);
    let out = rload(&b, &fewer, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!(
            "{} rows loaded, the manifest says {}",
            last.rows,
            last.rows - 1
        )),
        "{err}"
    );
    assert!(err.contains(&last.file), "{err}");

    // The untouched dump loads; with --progress=always and stderr not a terminal, plain
    // progress lines (every 0.05 s here) come before a summary with thousands separators.
    drop_databases(&b, &["big", "rdump_load"]);
    let out = rload_command(&b, &dir, &["--progress=always", "--threads=1"])
        .env("RDUMP_PROGRESS_SECONDS", "0.05")
        .output()
        .unwrap();
    assert_ok(&out, "untouched");
    assert_eq!(b.sql_value("SELECT COUNT(*) FROM big.inno"), "120000");
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.len() >= 2, "{err}");
    assert!(
        lines[0].starts_with("rload: 00:00:0") && lines[0].contains(" MB of chunk files"),
        "{err}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("rload: 1 databases, 1 tables, 120,000 rows in 60 chunks"),
        "{err}"
    );
}

#[test]
fn a_second_load_of_one_dump_is_refused_while_the_first_runs_and_after_it() {
    let (a, b) = common::both(big_source, || start(57, false));
    let (_tmp, dir) = dump_dir(a, &["--chunk-size=2000", "--threads=2", "big", "inno"]);
    let first = rload_stopped_after(&b, &dir, &["--threads=1"], 2);
    let journal =
        |b: &Server| b.sql_rows("SELECT item, state FROM rdump_load.rload_journal ORDER BY item");
    let before = journal(&b);
    for args in [&[][..], &["--resume"][..]] {
        let out = rload(&b, &dir, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("another rload is loading this dump"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("the load is incomplete"), "{args:?}: {err}");
        assert_eq!(
            journal(&b),
            before,
            "{args:?}: the second load changed the journal"
        );
    }
    common::resume(&first);
    let out = first.wait_with_output().unwrap();
    assert_ok(&out, "first");
    assert_eq!(b.sql_value("SELECT COUNT(*) FROM big.inno"), "120000");
    // After it: the dump's objects exist; no talk of an incomplete load.
    let out = rload(&b, &dir, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("already exist"), "{err}");
    assert!(!err.contains("--resume"), "{err}");
}

#[test]
fn names_at_the_servers_limits_round_trip_through_dir_and_rload() {
    let (a, b) = common::start_two(common::options(58, false), common::options(59, false));
    // The longest names MariaDB stores (its own file names encode them): 50 `#` for a
    // table (each is `@0023` on disk, and in rdump's file names), 51 for a database, 64
    // two-byte and 50 three-byte characters.
    let hashes_db = "#".repeat(51);
    let kana_db = "ー".repeat(51);
    let tables = [
        "#".repeat(50),
        "é".repeat(64),
        "ー".repeat(50),
        format!("{}{}", "#".repeat(20), "ー".repeat(30)),
    ];
    let dbs = [hashes_db.as_str(), kana_db.as_str()];
    for db in dbs {
        let mut sql = format!("CREATE DATABASE {0}; USE {0};", quote_ident(db));
        for (i, t) in tables.iter().enumerate() {
            sql.push_str(&format!(
                "CREATE TABLE {0} (id INT PRIMARY KEY, v VARCHAR(20)); \
                 INSERT INTO {0} SELECT seq, CONCAT('row ', seq) FROM seq_1_to_7; \
                 CREATE TRIGGER {1} BEFORE INSERT ON {0} FOR EACH ROW SET NEW.v = NEW.v;",
                quote_ident(t),
                quote_ident(&format!("tr{i}"))
            ));
        }
        a.sql(&sql);
    }
    let tmp = tempfile::tempdir().unwrap();
    for (label, args) in [
        ("sql", vec!["--chunk-size=3"]),
        ("csv+zstd", vec!["--chunk-size=3", "--format=csv", "--zstd"]),
    ] {
        let dir = tmp.path().join(label);
        let mut args: Vec<&str> = args;
        args.extend(["--databases"]);
        args.extend(dbs);
        rdump_dir(&a, &dir, &args);
        drop_databases(&b, &dbs);
        assert_ok(&rload(&b, &dir, &[]), label);
        check_same(&snapshot_of(&a, &dbs), &snapshot_of(&b, &dbs))
            .unwrap_or_else(|e| panic!("[{label}] {e}"));
        for t in &tables {
            assert_eq!(
                b.sql_value(&format!(
                    "SELECT COUNT(*) FROM {}.{}",
                    quote_ident(&hashes_db),
                    quote_ident(t)
                )),
                "7",
                "[{label}] {t}"
            );
        }
    }
}

fn replica_status(r: &Server, column: &str) -> String {
    let out = r
        .client_command()
        .args(["--vertical", "-e", "SHOW SLAVE STATUS"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == column).then(|| v.trim().to_string())
        })
        .unwrap_or_default()
}

/// `rload --seed-replica` of `dir` into `r`, replicating from `p` (127.0.0.1:`port`) as
/// its user with `password`.
fn seed_replica(
    r: &Server,
    dir: &Path,
    p: &Server,
    port: &str,
    password: &str,
    resume: bool,
) -> Output {
    let pw = format!("--source-password={password}");
    let mut args = vec![
        "--seed-replica",
        "--source-host=127.0.0.1",
        "--source-port",
        port,
        "--source-user",
        p.user(),
        pw.as_str(),
    ];
    if resume {
        args.push("--resume");
    }
    rload(r, dir, &args)
}

#[test]
fn a_replica_seeded_from_a_dump_taken_under_writes_catches_up() {
    let (p, r) = common::start_two(common::options(61, true), common::options(62, true));
    p.sql(
        "CREATE DATABASE app;
         CREATE TABLE app.inno (id INT AUTO_INCREMENT PRIMARY KEY, n INT NOT NULL, v VARCHAR(50), KEY kn (n)) ENGINE=InnoDB;
         CREATE TABLE app.myi (id INT AUTO_INCREMENT PRIMARY KEY, n INT NOT NULL, v VARCHAR(50)) ENGINE=MyISAM;
         CREATE TABLE app.nokey (a INT, b VARCHAR(50)) ENGINE=InnoDB;
         CREATE TABLE app.ctl (id INT PRIMARY KEY, go INT NOT NULL) ENGINE=InnoDB;
         INSERT INTO app.ctl VALUES (1, 1);
         INSERT INTO app.inno (n, v) SELECT seq % 100, CONCAT('r', seq) FROM app.seq_1_to_20000;
         INSERT INTO app.myi (n, v) SELECT seq % 100, CONCAT('m', seq) FROM app.seq_1_to_10000;
         INSERT INTO app.nokey SELECT seq % 50, CONCAT('k', seq % 7) FROM app.seq_1_to_5000;
         DELIMITER ;;
         CREATE PROCEDURE app.churn()
         BEGIN
           DECLARE i INT DEFAULT 0;
           DECLARE x INT;
           WHILE (SELECT go FROM app.ctl WHERE id = 1) = 1 AND i < 1000000 DO
             SET x = FLOOR(1 + RAND() * 20000);
             START TRANSACTION;
             INSERT INTO app.inno (n, v) VALUES (FLOOR(RAND() * 100), 'w');
             UPDATE app.inno SET n = n + 1 WHERE id = x;
             COMMIT;
             INSERT INTO app.myi (n, v) VALUES (i, 'w');
             INSERT INTO app.nokey VALUES (i % 50, 'w');
             DELETE FROM app.nokey WHERE a = i % 50 AND b = 'k3' LIMIT 1;
             SET i = i + 1;
           END WHILE;
         END;;
         DELIMITER ;",
    );
    let writers: Vec<Child> = (0..2)
        .map(|_| {
            p.client_command()
                .args(["-e", "CALL app.churn()"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (_tmp, dir) = dump_dir(&p, &["--threads=2", "--chunk-size=3000", "app"]);
    let m = rdump::format::manifest::read(&dir).unwrap();
    assert!(m.consistency.consistent && m.consistency.non_transactional_consistent);

    let port = p.port().to_string();
    let seed = |password: &str, resume: bool| seed_replica(&r, &dir, &p, &port, password, resume);
    // A wrong replication password: the server's message, exit 2; the data stays loaded.
    let out = seed("wrong-password", false);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("Access denied"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("wrong-password"), "{}", stderr(&out));
    // Replication is stopped, so nothing is applied unwatched before the resume below
    // resets it to the dump's position.
    assert_eq!(replica_status(&r, "Slave_IO_Running"), "No");
    assert_eq!(replica_status(&r, "Slave_SQL_Running"), "No");
    // Fixed and resumed: only replication is set up again.
    let out = seed(p.password(), true);
    assert_ok(&out, "seed");
    assert!(
        stderr(&out).contains("both threads running"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("0 chunks"), "{}", stderr(&out));
    // The load was not written to the replica's binary log.
    assert_eq!(r.sql_value("SELECT @@GLOBAL.gtid_binlog_pos"), "");

    std::thread::sleep(Duration::from_millis(300));
    p.sql("UPDATE app.ctl SET go = 0");
    for w in writers {
        let out = w.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "writer: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let target = p.sql_value("SELECT @@GLOBAL.gtid_binlog_pos");
    let deadline = Instant::now() + Duration::from_secs(60);
    while r.sql_value("SELECT @@GLOBAL.gtid_slave_pos") != target {
        assert_eq!(
            replica_status(&r, "Last_SQL_Errno"),
            "0",
            "{}",
            replica_status(&r, "Last_SQL_Error")
        );
        assert!(Instant::now() < deadline, "the replica did not catch up");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(replica_status(&r, "Slave_SQL_Running"), "Yes");
    assert_eq!(replica_status(&r, "Slave_IO_Running"), "Yes");
    let tables = "app.inno, app.myi, app.nokey, app.ctl";
    let sum = |s: &Server| s.sql(&format!("CHECKSUM TABLE {tables} EXTENDED"));
    assert_eq!(sum(&p), sum(&r));
    let moved: u64 = p.sql_value("SELECT COUNT(*) FROM app.myi").parse().unwrap();
    assert!(moved > 10000, "no writes happened; the test proves nothing");
    eprintln!("replica caught up to {target}; checksums match");
}

/// Parallel loaders of one partitioned InnoDB table: from MariaDB 10.6 the first bulk insert
/// into an empty partition locks it exclusively while other loaders hold intention locks on
/// it, and they deadlock (error 1213; one load in four failed before). A deadlocked chunk is
/// rolled back and loaded again, and the table ends identical to the source in every round
/// (most runs load a few chunks again; the count is printed, not asserted).
#[test]
fn a_partitioned_table_loaded_by_eight_threads_ends_identical_in_every_round() {
    let (source, target) =
        common::start_two(common::options(71, false), common::options(72, false));
    source.sql(
        "CREATE DATABASE part;
         CREATE TABLE part.t (id INT PRIMARY KEY, v VARCHAR(40)) ENGINE=InnoDB
           PARTITION BY RANGE (id) (
             PARTITION p0 VALUES LESS THAN (20001), PARTITION p1 VALUES LESS THAN (40001),
             PARTITION p2 VALUES LESS THAN (60001), PARTITION p3 VALUES LESS THAN (80001),
             PARTITION p4 VALUES LESS THAN MAXVALUE);
         INSERT INTO part.t SELECT seq, CONCAT('v', seq) FROM part.seq_1_to_100000;",
    );
    let (_tmp, dir) = dump_dir(&source, &["--threads=2", "--chunk-size=2000", "part"]);
    let expected = snapshot_of(&source, &["part"]);
    let mut again = 0;
    for round in 0..4 {
        drop_databases(&target, &["part"]);
        let out = rload(&target, &dir, &["--threads=8", "--verbose"]);
        assert_ok(&out, &format!("round {round}"));
        again += stderr(&out).matches("loading the chunk again").count();
        check_same(&expected, &snapshot_of(&target, &["part"])).unwrap();
    }
    eprintln!("chunks loaded again after a deadlock or lock wait timeout: {again}");
}

/// A seed that failed (a closed port, then a wrong password), then was started by hand and
/// applied transactions: a resumed seed would reset the replica to the dump's position and
/// apply them twice, so it is refused and replication is left as it runs.
#[test]
fn a_resumed_seed_is_refused_once_the_replica_has_moved_on() {
    let (p, r) = common::start_two(common::options(81, true), common::options(82, true));
    p.sql(
        "CREATE DATABASE moved;
         CREATE TABLE moved.t (id INT PRIMARY KEY) ENGINE=InnoDB;
         INSERT INTO moved.t VALUES (1), (2);",
    );
    let (_tmp, dir) = dump_dir(&p, &["--single-transaction", "moved"]);
    // A port where nothing listens: the IO thread is tried again for a while, then the
    // error is the server's, exit 2.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let seed_at = |port: &str, password: &str, resume: bool| {
        seed_replica(&r, &dir, &p, port, password, resume)
    };
    let out = seed_at(&closed, p.password(), false);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("error 2003"), "{}", stderr(&out));
    assert!(stderr(&out).contains("new attempt(s)"), "{}", stderr(&out));
    let port = p.port().to_string();
    let seed = |password: &str, resume: bool| seed_at(&port, password, resume);
    let out = seed("wrong-password", true);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("Access denied"), "{}", stderr(&out));
    // The DBA fixes the password by hand and starts replication; a row arrives.
    r.sql(&format!(
        "CHANGE MASTER TO MASTER_PASSWORD='{}'; START SLAVE;",
        p.password()
    ));
    p.sql("INSERT INTO moved.t VALUES (3)");
    let deadline = Instant::now() + Duration::from_secs(30);
    while r.sql_value("SELECT COUNT(*) FROM moved.t") != "3" {
        assert!(Instant::now() < deadline, "the row did not arrive");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = seed(p.password(), true);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("moved past the dump's position"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains(p.password()), "{}", stderr(&out));
    assert_eq!(r.sql_value("SELECT COUNT(*) FROM moved.t"), "3");
    assert_eq!(replica_status(&r, "Slave_SQL_Running"), "Yes");
    // As the message says: without --seed-replica the resume finishes the load, and
    // replication goes on untouched.
    let out = rload(&r, &dir, &["--resume"]);
    assert_ok(&out, "finish");
    assert_eq!(
        r.sql_value(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'rdump_load'"
        ),
        "0"
    );
    p.sql("INSERT INTO moved.t VALUES (4)");
    let deadline = Instant::now() + Duration::from_secs(30);
    while r.sql_value("SELECT COUNT(*) FROM moved.t") != "4" {
        assert!(Instant::now() < deadline, "replication stopped");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_dump_others_could_change_is_refused_unless_told_otherwise() {
    use std::os::unix::fs::PermissionsExt;
    let server = start(59, false);
    server.sql("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY); INSERT INTO app.t VALUES (1),(2),(3);");
    let (_tmp, dir) = dump_dir(&server, &["app"]);
    let chunk = dir.join("app/t.00000.sql");
    let target = ["--target-database=app2"];

    std::fs::set_permissions(&chunk, std::fs::Permissions::from_mode(0o606)).unwrap();
    let out = rload(&server, &dir, &target);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("t.00000.sql: is writable by others (mode 606)")
            && stderr(&out).contains("--skip-permission-check"),
        "{}",
        stderr(&out)
    );
    std::fs::set_permissions(&chunk, std::fs::Permissions::from_mode(0o600)).unwrap();

    std::os::unix::fs::chown(dir.join("rdump.json"), Some(4321), None).unwrap();
    let out = rload(&server, &dir, &target);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("rdump.json: is owned by another user (uid 4321)"),
        "{}",
        stderr(&out)
    );
    assert!(!databases(&server).iter().any(|d| d[0] == "app2"));

    let out = rload(
        &server,
        &dir,
        &["--target-database=app2", "--skip-permission-check"],
    );
    assert_ok(&out, "--skip-permission-check");
    assert_eq!(server.sql_value("SELECT COUNT(*) FROM app2.t"), "3");
}

/// The global variables `--fast-unsafe` may change, as the target has them now.
fn durability_globals(server: &Server) -> String {
    server.sql_value(
        "SELECT CONCAT_WS(' ', @@GLOBAL.innodb_flush_log_at_trx_commit, @@GLOBAL.sync_binlog, \
         @@GLOBAL.innodb_doublewrite, @@GLOBAL.innodb_adaptive_hash_index, \
         @@GLOBAL.innodb_stats_auto_recalc)",
    )
}

/// A target with a durable configuration (the harness starts servers with
/// innodb_flush_log_at_trx_commit=2) and its binary log on.
fn durable_target(id: u32) -> Server {
    let t = Server::start(ServerOptions {
        binlog: true,
        server_id: id,
        extra_args: vec![
            "--innodb-flush-log-at-trx-commit=1".into(),
            "--sync-binlog=1".into(),
        ],
        ..Default::default()
    });
    assert_eq!(durability_globals(&t), "1 1 OFF OFF ON");
    t
}

#[test]
fn fast_unsafe_loads_as_the_default_path_and_puts_the_settings_back() {
    let (a, b) = common::both(fixture_source, || durable_target(60));
    let expected = snapshot_of(a, FIXTURE_DBS);
    let mut dump_args = vec!["--format=csv", "--chunk-size=500", "--databases"];
    dump_args.extend(FIXTURE_DBS);
    let (tmp, dir) = dump_dir(a, &dump_args);
    let before = durability_globals(&b);
    let binlog_before = b.sql_value("SELECT @@GLOBAL.gtid_binlog_pos");

    let out = rload(&b, &dir, &["--fast-unsafe", "--threads=3"]);
    assert_ok(&out, "fast-unsafe");
    // Without --enable-binlog nothing of the load reaches the target's binary log, not
    // even the FLUSH ENGINE LOGS that makes it durable (a GTID of its own would be an
    // errant transaction on a replica seeded by the load).
    assert_eq!(
        b.sql_value("SELECT @@GLOBAL.gtid_binlog_pos"),
        binlog_before,
        "the load wrote into the target's binary log"
    );
    let err = stderr(&out);
    assert!(
        err.contains("innodb_flush_log_at_trx_commit 1 -> 0") && err.contains("sync_binlog 1 -> 0"),
        "{err}"
    );
    // MariaDB 10.x: read-only, left as it is and said so.
    assert!(
        err.contains("innodb_doublewrite (it is not dynamic"),
        "{err}"
    );
    assert!(
        err.contains(
            "run: SET GLOBAL innodb_flush_log_at_trx_commit = 1, sync_binlog = 1, \
             innodb_stats_auto_recalc = 1;"
        ),
        "{err}"
    );
    check_same(&expected, &snapshot_of(&b, FIXTURE_DBS)).unwrap();
    assert_eq!(durability_globals(&b), before);
    // Statistics recalculation was off during the load: the loaded tables were analyzed
    // (a table's persistent statistics count its rows, not the empty table's none).
    assert_ne!(
        b.sql_value(
            "SELECT n_rows FROM mysql.innodb_table_stats WHERE database_name = 'fidelity' \
             AND table_name = 'many_rows'"
        ),
        "0",
        "many_rows was not analyzed after the load"
    );

    // A load that fails after the settings were relaxed (a chunk's row count is not the
    // manifest's) puts them back too.
    drop_databases(&b, FIXTURE_DBS);
    let bad = tmp.path().join("bad");
    copy_dir(&dir, &bad);
    let file = rdump::format::manifest::read(&bad).unwrap().databases[0].tables[0].chunks[0]
        .file
        .clone();
    edit_manifest(&bad, |m| {
        let c = chunk_entry(m, &file);
        c["rows"] = (c["rows"].as_u64().unwrap() + 1).into();
    });
    let out = rload(&b, &bad, &["--fast-unsafe", "--drop-existing"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the relaxed settings were put back"),
        "{}",
        stderr(&out)
    );
    assert_eq!(durability_globals(&b), before);
}

#[test]
fn fast_unsafe_puts_the_settings_back_when_interrupted_and_is_refused_without_privileges() {
    let (a, b) = common::both(big_source, || durable_target(61));
    let (_tmp, dir) = dump_dir(a, &["--chunk-size=2000", "--threads=2", "big"]);
    let before = durability_globals(&b);

    // SIGTERM in the middle of the load.
    let child = rload_stopped_after(&b, &dir, &["--fast-unsafe", "--threads=1"], 4);
    assert_eq!(
        b.sql_value("SELECT @@GLOBAL.innodb_flush_log_at_trx_commit"),
        "0",
        "relaxed while the load runs"
    );
    common::signal(&child, libc::SIGTERM);
    common::resume(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(128 + 15), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the relaxed settings were put back"),
        "{}",
        stderr(&out)
    );
    assert_eq!(durability_globals(&b), before);

    // An account that may load but not SET GLOBAL: refused, naming the variable, with
    // nothing changed on the target (not even the journal).
    b.sql(
        "CREATE USER weak@localhost IDENTIFIED BY 'weakpw';
         GRANT ALL ON *.* TO weak@localhost;
         REVOKE SUPER ON *.* FROM weak@localhost;",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_rload"))
        .arg("--no-defaults")
        .arg(format!("--socket={}", b.socket().display()))
        .args([
            "-uweak",
            "-pweakpw",
            "--progress=never",
            "--fast-unsafe",
            "--resume",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--fast-unsafe needs to set innodb_flush_log_at_trx_commit"),
        "{}",
        stderr(&out)
    );
    assert_eq!(durability_globals(&b), before);
    // The interrupted load is still there to resume, untouched by the refused run.
    let out = rload(&b, &dir, &["--resume"]);
    assert_ok(&out, "resume");
    check_same(&snapshot_of(a, &["big"]), &snapshot_of(&b, &["big"])).unwrap();
}

/// A setting changed by someone else while the load runs (a DBA making the server durable
/// again, another rload putting back its own) is left as they set it, and said so; the
/// ones still relaxed are put back.
#[test]
fn fast_unsafe_leaves_a_setting_changed_by_someone_else_during_the_load() {
    let (a, b) = common::both(big_source, || durable_target(62));
    let (_tmp, dir) = dump_dir(a, &["--chunk-size=2000", "--threads=2", "big"]);
    let child = rload_stopped_after(&b, &dir, &["--fast-unsafe", "--threads=1"], 2);
    assert_eq!(b.sql_value("SELECT @@GLOBAL.sync_binlog"), "0");
    b.sql("SET GLOBAL sync_binlog = 7");
    common::resume(&child);
    let out = child.wait_with_output().unwrap();
    assert_ok(&out, "fast-unsafe");
    assert_eq!(durability_globals(&b), "1 7 OFF OFF ON", "{}", stderr(&out));
    assert!(
        stderr(&out).contains("sync_binlog was changed to 7 during the load"),
        "{}",
        stderr(&out)
    );
}
