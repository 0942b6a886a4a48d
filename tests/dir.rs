//! Directory dumps (`rdump --dir`): the fidelity fixture round-trips through chunked SQL
//! files (plain and zstd) restored with the `mariadb` client in manifest order; every file
//! matches its manifest checksum; the manifest records the snapshot's coordinates; a
//! directory that already holds a dump is refused, and so is one that is shared, another's,
//! a symlink or not empty, without changing it; a new one is created in a parent one may
//! write but not list; a dump of more databases than `ulimit -n` allows descriptors works;
//! rows over TCP to 127.0.0.1 (a 7 MiB result, pauses mid-stream) arrive whole, and TCP
//! dumps match the socket's.

mod common;

use std::path::Path;
use std::process::Command;

use common::dirdump::restore_dir;
use common::{Server, ServerOptions, check_same, snapshot_of};
use rdump::format::manifest::{self, Manifest};

const FIXTURE_DBS: &[&str] = &["fidelity", "fid elity-2"];

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fidelity.sql")
}

fn start_pair() -> (Server, Server) {
    common::start_two(common::options(41, true), common::options(42, false))
}

fn rdump_dir(server: &Server, dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rdump"))
        .arg("--no-defaults")
        .arg(format!("--socket={}", server.socket().display()))
        .arg("-uroot")
        .arg(format!("--dir={}", dir.display()))
        .args(["--routines", "--events", "--progress=never"])
        .args(args)
        .output()
        .expect("run rdump")
}

fn assert_checksums_match(dir: &Path, m: &Manifest) {
    let mut files = 0;
    for d in &m.databases {
        let per_db = [
            &d.database_file,
            &d.views_file,
            &d.routines_file,
            &d.events_file,
        ];
        for f in per_db.into_iter().flatten() {
            assert_eq!(
                rdump::output::sink::checksum_file(&dir.join(&f.file)).unwrap(),
                f.checksum,
                "{}",
                f.file
            );
            files += 1;
        }
        for t in &d.tables {
            for f in [&t.schema_file, &t.triggers_file].into_iter().flatten() {
                assert_eq!(
                    rdump::output::sink::checksum_file(&dir.join(&f.file)).unwrap(),
                    f.checksum,
                    "{}",
                    f.file
                );
                files += 1;
            }
            for c in &t.chunks {
                let path = dir.join(&c.file);
                assert_eq!(
                    std::fs::metadata(&path).unwrap().len(),
                    c.bytes,
                    "{}",
                    c.file
                );
                assert_eq!(
                    rdump::output::sink::checksum_file(&path).unwrap(),
                    c.checksum,
                    "{}",
                    c.file
                );
                files += 1;
            }
        }
    }
    assert!(files > 50, "only {files} files in the manifest");
}

fn drop_fixture_databases(server: &Server) {
    let drops: Vec<String> = FIXTURE_DBS
        .iter()
        .map(|db| format!("DROP DATABASE IF EXISTS {};", common::quote_ident(db)))
        .collect();
    server.sql(&format!("SET FOREIGN_KEY_CHECKS=0; {}", drops.join(" ")));
}

#[test]
fn fidelity_fixture_round_trips_through_a_directory_dump() {
    let (a, b) = start_pair();
    a.load_file(fixture());
    for (label, extra) in [
        ("sql", vec!["--threads=3", "--chunk-size=500"]),
        (
            "sql + zstd",
            vec!["--threads=2", "--chunk-size=1000", "--zstd"],
        ),
        (
            "sql, --skip-tz-utc (a directory dump is always in UTC)",
            vec!["--threads=2", "--chunk-size=3000", "--skip-tz-utc"],
        ),
        (
            "csv",
            vec!["--threads=4", "--chunk-size=700", "--format=csv"],
        ),
        (
            "csv + zstd",
            vec![
                "--threads=2",
                "--chunk-size=2000",
                "--format=csv",
                "--zstd=5",
            ],
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("dump");
        let mut args = vec!["--databases", "fidelity", "fid elity-2"];
        args.extend(extra);
        let out = rdump_dir(&a, &dir, &args);
        assert!(
            out.status.success(),
            "[{label}] {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let m = manifest::read(&dir).unwrap();
        assert_checksums_match(&dir, &m);
        assert!(
            m.databases
                .iter()
                .flat_map(|d| &d.tables)
                .any(|t| t.chunks.len() > 3),
            "[{label}] no table was split into chunks"
        );
        drop_fixture_databases(&b);
        restore_dir(&b, &dir, &m);
        check_same(&snapshot_of(&a, FIXTURE_DBS), &snapshot_of(&b, FIXTURE_DBS))
            .unwrap_or_else(|e| panic!("[{label}] {e}"));
        eprintln!("[{label}] identical after restore");
    }
}

#[test]
fn manifest_records_the_coordinates_of_the_dumped_state() {
    let server = Server::start(ServerOptions {
        binlog: true,
        server_id: 43,
        ..Default::default()
    });
    server.sql("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY); INSERT INTO app.t VALUES (1),(2),(3);");
    let status = server.sql_rows("SHOW MASTER STATUS");
    let gtid = server.sql_value("SELECT @@GLOBAL.gtid_binlog_pos");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let out = rdump_dir(&server, &dir, &["app"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = manifest::read(&dir).unwrap();
    assert_eq!(
        m.coordinates.binlog_file.as_deref(),
        Some(status[0][0].as_str())
    );
    assert_eq!(
        m.coordinates.binlog_position,
        Some(status[0][1].parse().unwrap())
    );
    assert_eq!(m.coordinates.gtid.as_deref(), Some(gtid.as_str()));
    assert_eq!(m.consistency.method, "backup-lock");
    assert!(m.consistency.consistent);

    // CSV files are utf8mb4: another connection character set is refused.
    let latin1 = rdump_dir(
        &server,
        &tmp.path().join("latin1"),
        &["--format=csv", "--default-character-set=latin1", "app"],
    );
    assert_eq!(latin1.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&latin1.stderr).contains("utf8mb4"));

    // The same directory again: refused, the existing dump untouched.
    let before = std::fs::read(dir.join("rdump.json")).unwrap();
    let again = rdump_dir(&server, &dir, &["app"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a dump"));
    assert_eq!(std::fs::read(dir.join("rdump.json")).unwrap(), before);
}

#[test]
fn a_shared_symlinked_or_nonempty_directory_is_refused_and_left_as_it_was() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start(common::options(44, false));
    server.sql("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY); INSERT INTO app.t VALUES (1),(2);");
    let tmp = tempfile::tempdir().unwrap();
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
    let names = |p: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };

    // A shared 1777 directory holding someone's file: refused, its mode and file kept.
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::write(shared.join("theirs.txt"), b"not yours").unwrap();
    let out = rdump_dir(&server, &shared, &["app"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("writable by others (mode 1777)"),
        "{stderr}"
    );
    assert_eq!(mode(&shared), 0o1777);
    assert_eq!(names(&shared), ["theirs.txt"]);

    // A symlink to another directory: refused, nothing written there.
    let victim = tmp.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(&victim, tmp.path().join("planted")).unwrap();
    let out = rdump_dir(&server, &tmp.path().join("planted"), &["app"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is a symlink"), "{stderr}");
    assert!(names(&victim).is_empty());
    assert_eq!(mode(&victim), 0o755);

    // The user's own non-empty directory: refused, untouched.
    let mine = tmp.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), b"mine").unwrap();
    let out = rdump_dir(&server, &mine, &["app"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is not empty"), "{stderr}");
    assert_eq!(names(&mine), ["notes.txt"]);

    // An empty name: refused (it dumped into the current directory).
    let out = Command::new(env!("CARGO_BIN_EXE_rdump"))
        .current_dir(&mine)
        .args(["--no-defaults", "-uroot", "--dir="])
        .arg(format!("--socket={}", server.socket().display()))
        .arg("app")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dir needs a directory name"));
    assert_eq!(names(&mine), ["notes.txt"]);

    // The user's own empty directory (0750): used, its mode kept; a new one is 0700; both
    // hold exactly the manifest and the files it lists.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o750)).unwrap();
    let new = tmp.path().join("new");
    for (dir, want) in [(&empty, 0o750), (&new, 0o700)] {
        let out = rdump_dir(&server, dir, &["app"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(mode(dir), want);
        assert_eq!(names(dir), ["app", "rdump.json"]);
        let m = manifest::read(dir).unwrap();
        let mut listed: Vec<String> = m.databases[0]
            .tables
            .iter()
            .flat_map(|t| {
                t.schema_file
                    .iter()
                    .map(|f| f.file.clone())
                    .chain(t.chunks.iter().map(|c| c.file.clone()))
            })
            .chain(
                [
                    &m.databases[0].database_file,
                    &m.databases[0].routines_file,
                    &m.databases[0].events_file,
                    &m.databases[0].views_file,
                ]
                .into_iter()
                .flatten()
                .map(|f| f.file.clone()),
            )
            .map(|f| f.trim_start_matches("app/").to_string())
            .collect();
        listed.sort();
        assert_eq!(names(&dir.join("app")), listed);
    }
}

#[test]
fn a_dump_directory_is_created_in_a_parent_one_may_write_but_not_list() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED: needs root to run rdump as another user");
        return;
    }
    let server = Server::start(common::options(45, false));
    server.sql("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY); INSERT INTO app.t VALUES (1),(2);");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    // A drop box of user 1001: writable and searchable, not listable (mode -wx).
    let dropbox = tmp.path().join("dropbox");
    std::fs::create_dir(&dropbox).unwrap();
    std::os::unix::fs::chown(&dropbox, Some(1001), Some(1001)).unwrap();
    std::fs::set_permissions(&dropbox, std::fs::Permissions::from_mode(0o300)).unwrap();
    let dir = dropbox.join("dump");
    let out = Command::new(env!("CARGO_BIN_EXE_rdump"))
        .uid(1001)
        .gid(1001)
        .env("HOME", tmp.path())
        .arg("--no-defaults")
        .args(["-h127.0.0.1", &format!("-P{}", server.port())])
        .arg(format!("-u{}", server.user()))
        .arg(format!("-p{}", server.password()))
        .arg(format!("--dir={}", dir.display()))
        .args(["--progress=never", "app"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("rdump.json").is_file());
}

#[test]
fn a_dump_of_more_databases_than_open_files_allowed_succeeds() {
    use std::os::unix::process::CommandExt;
    let server = Server::start(common::options(46, false));
    let names: Vec<String> = (1..=120).map(|i| format!("m{i}")).collect();
    let sql: String = names
        .iter()
        .map(|d| format!("CREATE DATABASE {d}; CREATE TABLE {d}.t (id INT PRIMARY KEY); INSERT INTO {d}.t VALUES (1);"))
        .collect();
    server.sql(&sql);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rdump"));
    cmd.arg("--no-defaults")
        .arg(format!("--socket={}", server.socket().display()))
        .arg("-uroot")
        .arg(format!("--dir={}", dir.display()))
        .args(["--progress=never", "--databases"])
        .args(&names);
    // SAFETY: setrlimit is async-signal-safe; it only lowers the child's own limit.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 64,
                rlim_max: 64,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(manifest::read(&dir).unwrap().databases.len(), 120);
}

/// The lean client's reads over TCP to 127.0.0.1 (`client::wire`: many 256 KiB reads, the
/// socket emptied as rows come): on one connection a result of ~7 MiB, one whose server
/// pauses twice mid-stream (`SLEEP` in the select list, the socket empty meanwhile) and a
/// small result after them arrive whole and in order; `rdump --dir` and the single stream
/// over TCP write what they write over the socket. A guard for any change to how rows are
/// read (e.g. `SO_RCVLOWAT`, measured in benches/README.md and not kept): nothing may be
/// lost, reordered or left waiting, whatever the size of the last packets.
#[test]
fn tcp_rows_of_a_big_result_arrive_whole_after_a_pause_and_match_the_socket() {
    use rdump::client::conn::Session;
    use rdump::client::options::{ConnectionOptions, Password, Protocol, Secret};
    let server = Server::start(common::options(47, false));
    server.sql(
        "CREATE DATABASE p; USE p; CREATE TABLE p.t (id INT PRIMARY KEY, pad CHAR(230)); \
         INSERT INTO p.t SELECT seq, REPEAT(CHAR(65 + seq % 26), 1 + seq % 230) FROM seq_1_to_60001;",
    );
    let opts = ConnectionOptions {
        host: Some("127.0.0.1".into()),
        port: server.port(),
        user: Some(server.user().into()),
        password: Password::Given(Secret::new(server.password())),
        protocol: Some(Protocol::Tcp),
        ..Default::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut s = Session::connect(&opts).await.expect("connect over TCP");
        for sql in [
            "SELECT id, pad FROM p.t ORDER BY id",
            "SELECT id, pad, IF(id IN (20000, 40000), SLEEP(0.2), 0) FROM p.t ORDER BY id",
            "SELECT id, pad FROM p.t WHERE id <= 3 ORDER BY id",
        ] {
            let mut next = 1u64;
            let mut bytes = 0usize;
            let started = std::time::Instant::now();
            let rows = s
                .stream(sql, "test", |cells| {
                    let id: u64 = cell_string_of(cells[0]).parse().unwrap();
                    assert_eq!(id, next, "{sql}: rows in order, none lost");
                    let pad = cells[1].unwrap();
                    assert_eq!(pad.len() as u64, 1 + id % 230);
                    assert!(pad.iter().all(|&b| b == b'A' + (id % 26) as u8));
                    bytes += pad.len();
                    next += 1;
                    Ok(())
                })
                .await
                .expect(sql);
            let want = if sql.contains("<= 3") { 3 } else { 60001 };
            assert_eq!(rows, want, "{sql}");
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "{sql}: took {:?}",
                started.elapsed()
            );
            if want > 3 {
                assert!(
                    bytes > 6 << 20,
                    "{sql}: {bytes} bytes, more than the first MiB"
                );
            }
        }
        let v = s.first_value("SELECT 42", "test").await.unwrap();
        assert_eq!(v.as_deref(), Some("42"));
    });
    let tmp = tempfile::tempdir().unwrap();
    let dump = |tcp: bool, dir: Option<&Path>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rdump"));
        cmd.arg("--no-defaults")
            .arg(format!("-u{}", server.user()))
            .arg(format!("-p{}", server.password()));
        if tcp {
            cmd.args(["-h127.0.0.1", &format!("-P{}", server.port())]);
        } else {
            cmd.arg(format!("--socket={}", server.socket().display()));
        }
        match dir {
            Some(d) => cmd.args([
                &format!("--dir={}", d.display()),
                "--threads=2",
                "--chunk-size=20000",
                "--format=csv",
            ]),
            None => cmd.arg("--skip-dump-date"),
        };
        let out = cmd.args(["--progress=never", "p"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    // The header names the host; the rest is the same.
    let body = |out: Vec<u8>| {
        String::from_utf8(out)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("-- "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (tcp, sock) = (body(dump(true, None)), body(dump(false, None)));
    assert!(
        tcp.len() > 6 << 20 && tcp == sock,
        "single stream: TCP as socket"
    );
    let (a, b) = (tmp.path().join("tcp"), tmp.path().join("sock"));
    dump(true, Some(&a));
    dump(false, Some(&b));
    let mut files = 0;
    for e in std::fs::read_dir(b.join("p")).unwrap() {
        let name = e.unwrap().file_name();
        if name.to_string_lossy().ends_with(".csv") {
            assert_eq!(
                std::fs::read(a.join("p").join(&name)).unwrap(),
                std::fs::read(b.join("p").join(&name)).unwrap(),
                "{name:?}"
            );
            files += 1;
        }
    }
    assert!(files >= 3, "{files} chunk files");
}

fn cell_string_of(cell: Option<&[u8]>) -> String {
    String::from_utf8(cell.unwrap().to_vec()).unwrap()
}
