//! The binlog archiver (`rdump::binlog`) against real MariaDB servers: what it archives
//! is the server's binlog byte for byte (artificial events left out), `mariadb-binlog`
//! reads the files rebuilt from it as it reads the server's own, and the archive stays
//! contiguous when the archiver is killed and restarted, when the source restarts, and
//! says so loudly (ERR 1236) when a binlog was purged while it was down.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Server, ServerOptions};
use rdump::binlog::local::{LocalDirStore, Record};
use rdump::binlog::{ArchiveError, ArchiveOptions, CutPolicy, Position, archive};
use rdump::client::options::{ConnectionOptions, Password, Secret};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn source() -> Server {
    Server::start(ServerOptions {
        binlog: true,
        ..Default::default()
    })
}

fn connection(server: &Server) -> ConnectionOptions {
    ConnectionOptions {
        socket: Some(server.socket()),
        user: Some(server.user().into()),
        password: Password::Given(Secret::new(server.password())),
        ..Default::default()
    }
}

fn once() -> ArchiveOptions {
    ArchiveOptions {
        once: true,
        ..Default::default()
    }
}

/// The server's binlog files, in order.
fn binlog_files(server: &Server) -> Vec<String> {
    server
        .sql_rows("SHOW BINARY LOGS")
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

fn master_status(server: &Server) -> Position {
    let r = &server.sql_rows("SHOW MASTER STATUS")[0];
    Position {
        file: r[0].clone(),
        pos: r[1].parse().unwrap(),
    }
}

/// `mariadb-binlog` of a file.
fn decoded(path: &Path) -> String {
    let out = Command::new("mariadb-binlog")
        .arg("--no-defaults")
        .arg(path)
        .output()
        .expect("run mariadb-binlog");
    assert!(
        out.status.success(),
        "mariadb-binlog {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Checks the archive of every binlog file of `server` against the file itself: the
/// rebuilt file equals the server's up to where the archive ends (the FORMAT_DESCRIPTION's
/// in-use flag aside, which the server clears when it closes the file), and
/// `mariadb-binlog` decodes both alike. Returns how many files were compared.
fn assert_archive_matches(server: &Server, store: &LocalDirStore, scratch: &Path) -> usize {
    let mut compared = 0;
    for file in binlog_files(server) {
        let Some(rebuilt) = store.rebuild(&file).unwrap() else {
            continue;
        };
        let original = std::fs::read(server.dir().join(&file)).unwrap();
        assert!(
            rebuilt.len() <= original.len(),
            "{file}: the archive ({}) is longer than the file ({})",
            rebuilt.len(),
            original.len()
        );
        let mut expected = original[..rebuilt.len()].to_vec();
        // The in-use flag of the FORMAT_DESCRIPTION (byte 4 + 17).
        expected[21] = (expected[21] & !1) | (rebuilt[21] & 1);
        assert!(
            expected == rebuilt,
            "{file}: archived bytes differ from the server's at offset {:?}",
            expected.iter().zip(&rebuilt).position(|(a, b)| a != b)
        );
        let path = scratch.join(&file);
        std::fs::write(&path, &rebuilt).unwrap();
        if rebuilt.len() == original.len() {
            // The server clears the in-use flag of the FORMAT_DESCRIPTION it sends; give
            // the server's file the same flag, so that only what we archived differs.
            let theirs_path = scratch.join(format!("{file}.server"));
            let mut theirs = original.clone();
            theirs[21] = expected[21];
            std::fs::write(&theirs_path, &theirs).unwrap();
            assert_eq!(
                decoded(&path),
                decoded(&theirs_path),
                "{file}: mariadb-binlog differs"
            );
        }
        compared += 1;
    }
    compared
}

/// Every segment follows the one before it in its file, with the same FORMAT_DESCRIPTION
/// (the file's own, not the copy the server re-sends after a reconnect), and each file's
/// first segment starts right after its FORMAT_DESCRIPTION or where the previous file's
/// archive left.
fn assert_contiguous(store: &LocalDirStore) {
    let mut last: Option<(String, u64, Option<String>, Vec<u8>)> = None;
    for (n, r) in store.records().unwrap() {
        let Record::Segment(s) = r else {
            last = None;
            continue;
        };
        if let Some((file, end, rotate_to, fde)) = &last {
            if *file == s.file {
                assert_eq!(*end, s.start, "segment {n} of {} does not follow", s.file);
                assert_eq!(
                    *fde, s.format_description,
                    "segment {n} of {}: another FORMAT_DESCRIPTION",
                    s.file
                );
            } else {
                assert_eq!(
                    rotate_to.as_deref().unwrap_or(&s.file),
                    s.file,
                    "segment {n}: {} after {file}",
                    s.file
                );
                assert_eq!(
                    s.start,
                    4 + s.format_description.len() as u64,
                    "segment {n}: {} does not start after its FORMAT_DESCRIPTION",
                    s.file
                );
            }
        }
        last = Some((
            s.file.clone(),
            s.end,
            s.rotate_to.clone(),
            s.format_description.clone(),
        ));
    }
}

fn some_writes(server: &Server, n: usize) {
    server.sql(
        "CREATE DATABASE IF NOT EXISTS pitr; \
         CREATE TABLE IF NOT EXISTS pitr.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB; \
         CREATE TABLE IF NOT EXISTS pitr.m (id INT AUTO_INCREMENT PRIMARY KEY, v TEXT) ENGINE=MyISAM;",
    );
    let mut sql = String::new();
    for i in 0..n {
        sql.push_str(&format!(
            "INSERT INTO pitr.t (v) VALUES (REPEAT('x', {})); INSERT INTO pitr.m (v) VALUES ('row {i}'); ",
            i % 200
        ));
        if i % 7 == 0 {
            sql.push_str("UPDATE pitr.t SET v = CONCAT(v, 'y') ORDER BY id DESC LIMIT 3; ");
        }
    }
    server.sql(&sql);
}

#[test]
fn once_archives_every_file_up_to_the_current_position_byte_for_byte() {
    let server = source();
    some_writes(&server, 50);
    server.sql("FLUSH BINARY LOGS");
    some_writes(&server, 50);
    server.sql("ALTER TABLE pitr.t ADD COLUMN w INT; FLUSH BINARY LOGS; DELETE FROM pitr.t WHERE id % 3 = 0");
    let target = master_status(&server);
    let dir = tempfile::tempdir().unwrap();
    let mut store = LocalDirStore::open(&dir.path().join("archive")).unwrap();
    let report = runtime()
        .block_on(archive(
            &connection(&server),
            &mut store,
            &once(),
            std::future::pending(),
        ))
        .unwrap();
    assert_eq!(report.position.as_ref(), Some(&target), "{report:?}");
    assert_contiguous(&store);
    assert_eq!(assert_archive_matches(&server, &store, dir.path()), 3);
    // Run again: only what the server wrote since (a BINLOG_CHECKPOINT may follow a
    // rotation late), nothing archived twice.
    let before = store.records().unwrap().len();
    runtime()
        .block_on(archive(
            &connection(&server),
            &mut store,
            &once(),
            std::future::pending(),
        ))
        .unwrap();
    for (_, r) in &store.records().unwrap()[before..] {
        let Record::Segment(s) = r else { panic!() };
        assert!(s.file == target.file && s.start >= target.pos, "{s:?}");
    }
    assert_contiguous(&store);
    assert_eq!(assert_archive_matches(&server, &store, dir.path()), 3);
}

#[test]
fn an_event_longer_than_a_packet_is_archived_whole() {
    let server = Server::start(ServerOptions {
        binlog: true,
        extra_args: vec!["--max-allowed-packet=64M".into()],
        ..Default::default()
    });
    server.sql(
        "CREATE DATABASE pitr; CREATE TABLE pitr.big (id INT PRIMARY KEY, b LONGBLOB); \
         INSERT INTO pitr.big VALUES (1, REPEAT('z', 20 * 1024 * 1024)), (2, 'small');",
    );
    let dir = tempfile::tempdir().unwrap();
    let mut store = LocalDirStore::open(&dir.path().join("archive")).unwrap();
    runtime()
        .block_on(archive(
            &connection(&server),
            &mut store,
            &once(),
            std::future::pending(),
        ))
        .unwrap();
    assert_contiguous(&store);
    assert_eq!(assert_archive_matches(&server, &store, dir.path()), 1);
    let archived: u64 = store
        .records()
        .unwrap()
        .iter()
        .filter_map(|(_, r)| match r {
            Record::Segment(s) => Some(s.end - s.start),
            Record::Gap(_) => None,
        })
        .sum();
    assert!(archived > 20 << 20, "{archived}");
}

/// Environment of the archiver child process (`archiver_child`).
const CHILD_DIR: &str = "RDUMP_BINLOG_CHILD_DIR";
const CHILD_SOCKET: &str = "RDUMP_BINLOG_CHILD_SOCKET";

/// Not a test: the body of the archiver process that `archiver_killed_with_sigkill...`
/// starts and kills (it runs only with the child's environment).
#[test]
#[ignore]
fn archiver_child() {
    let (Some(dir), Some(socket)) = (std::env::var_os(CHILD_DIR), std::env::var_os(CHILD_SOCKET))
    else {
        return;
    };
    let conn = ConnectionOptions {
        socket: Some(socket.into()),
        user: Some(common::TEST_USER.into()),
        password: Password::Given(Secret::new(common::TEST_PASSWORD)),
        ..Default::default()
    };
    let opts = ArchiveOptions {
        cut: CutPolicy {
            flush_interval: Duration::from_millis(200),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut store = LocalDirStore::open(Path::new(&dir)).unwrap();
    let result = runtime().block_on(archive(&conn, &mut store, &opts, std::future::pending()));
    panic!("the archiver ended: {result:?}");
}

fn spawn_archiver(server: &Server, dir: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["archiver_child", "--exact", "--ignored", "--nocapture"])
        .env(CHILD_DIR, dir)
        .env(CHILD_SOCKET, server.socket())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn segments(store_dir: &Path) -> usize {
    std::fs::read_dir(store_dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0)
}

/// Writes in a loop on another thread until the returned flag is set.
fn writer(
    server: &Server,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<()>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let socket = server.socket();
    let handle = std::thread::spawn(move || {
        let mut i = 0;
        while !flag.load(Ordering::Relaxed) {
            let out = Command::new(common::client_bin())
                .arg("--no-defaults")
                .arg("-uroot")
                .arg(format!("--socket={}", socket.display()))
                .arg("-e")
                .arg(format!(
                    "INSERT INTO pitr.t (v) VALUES (REPEAT('w', {})); \
                     INSERT INTO pitr.m (v) VALUES ('w{i}'); \
                     UPDATE pitr.t SET v = CONCAT(v, 'u') WHERE id = {};",
                    i % 150,
                    i / 2 + 1
                ))
                .output()
                .unwrap();
            // A restart of the server in the middle: try again.
            if !out.status.success() {
                std::thread::sleep(Duration::from_millis(50));
            }
            i += 1;
        }
    });
    (done, handle)
}

fn stop_writer(
    w: (
        std::sync::Arc<std::sync::atomic::AtomicBool>,
        std::thread::JoinHandle<()>,
    ),
) {
    w.0.store(true, std::sync::atomic::Ordering::Relaxed);
    w.1.join().unwrap();
}

/// Whether the sockets of process `pid` hold no unread bytes (`ss -xtpn`: Recv-Q); true
/// when `ss` cannot tell.
fn nothing_unread(pid: u32) -> bool {
    let Ok(out) = std::process::Command::new("ss").args(["-xtpn"]).output() else {
        return true;
    };
    let tag = format!("pid={pid},");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&tag))
        .all(|l| l.split_whitespace().nth(2) == Some("0"))
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn archiver_killed_with_sigkill_mid_stream_resumes_without_gap_or_duplicate() {
    let server = source();
    some_writes(&server, 10);
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("archive");
    let w = writer(&server);
    let mut child = spawn_archiver(&server, &store_dir);
    // Segments are committed every flush interval while the writes go on.
    wait_for("3 segments from the first archiver", || {
        segments(&store_dir) >= 3
    });
    assert!(
        LocalDirStore::open(&store_dir).is_err(),
        "a second archiver on the same archive must refuse"
    );
    common::signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    let before = segments(&store_dir);
    server.sql("FLUSH BINARY LOGS");
    let mut child = spawn_archiver(&server, &store_dir);
    wait_for("segments from the second archiver", || {
        segments(&store_dir) >= before + 3
    });
    common::signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    stop_writer(w);
    // A last run to the current position; then the archive must be the binlog exactly.
    let target = master_status(&server);
    let mut store = LocalDirStore::open(&store_dir).unwrap();
    let report = runtime()
        .block_on(archive(
            &connection(&server),
            &mut store,
            &once(),
            std::future::pending(),
        ))
        .unwrap();
    assert_eq!(report.position.as_ref(), Some(&target));
    assert_contiguous(&store);
    assert_eq!(assert_archive_matches(&server, &store, dir.path()), 2);
}

#[test]
fn the_archive_stays_contiguous_across_a_cut_connection_and_a_source_restart() {
    let mut server = source();
    some_writes(&server, 10);
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("archive");
    let conn = connection(&server);
    let opts = ArchiveOptions {
        cut: CutPolicy {
            flush_interval: Duration::from_millis(200),
            ..Default::default()
        },
        ..Default::default()
    };
    let rt = runtime();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = {
        let store_dir = store_dir.clone();
        rt.spawn(async move {
            let mut store = LocalDirStore::open(&store_dir).unwrap();
            archive(&conn, &mut store, &opts, async {
                let _ = stop_rx.await;
            })
            .await
        })
    };
    let w = writer(&server);
    wait_for("segments", || segments(&store_dir) >= 2);
    // Cut the connection: KILL the server's dump thread.
    let dump_thread = || {
        server
            .sql_rows("SELECT id FROM information_schema.processlist WHERE command = 'Binlog Dump'")
            .into_iter()
            .next()
            .map(|r| r[0].clone())
    };
    wait_for("the dump thread", || dump_thread().is_some());
    let id = dump_thread().unwrap();
    server.sql(&format!("KILL {id}"));
    let before = segments(&store_dir);
    wait_for("segments after the cut", || {
        segments(&store_dir) >= before + 2
    });
    server.restart();
    let before = segments(&store_dir);
    wait_for("segments after the restart", || {
        segments(&store_dir) >= before + 2
    });
    stop_writer(w);
    let target = master_status(&server);
    let archived_up_to = |target: &Position| {
        let store_dir = store_dir.clone();
        let target = target.clone();
        move || {
            std::fs::read_dir(&store_dir).unwrap().flatten().any(|e| {
                e.file_name().to_string_lossy().ends_with(".json")
                    && std::fs::read_to_string(e.path()).is_ok_and(|t| {
                        t.contains(&format!("\"file\": \"{}\"", target.file))
                            && t.contains(&format!("\"end\": {}", target.pos))
                    })
            })
        }
    };
    wait_for(
        "the archive to reach the server's position",
        archived_up_to(&target),
    );
    stop_tx.send(()).unwrap();
    let report = rt.block_on(task).unwrap().unwrap();
    assert!(report.reconnects >= 2, "{report:?}");
    let store = LocalDirStore::open(&store_dir).unwrap();
    assert_contiguous(&store);
    assert!(assert_archive_matches(&server, &store, dir.path()) >= 2);
    // The file the restart closed ends with a STOP event, archived.
    assert!(
        store
            .records()
            .unwrap()
            .iter()
            .any(|(_, r)| matches!(r, Record::Segment(s) if s.ends_with_stop))
    );
}

#[test]
fn a_binlog_purged_while_the_archiver_was_down_is_err_1236_and_becomes_a_gap() {
    let server = source();
    some_writes(&server, 10);
    let dir = tempfile::tempdir().unwrap();
    let mut store = LocalDirStore::open(&dir.path().join("archive")).unwrap();
    let conn = connection(&server);
    let rt = runtime();
    rt.block_on(archive(&conn, &mut store, &once(), std::future::pending()))
        .unwrap();
    let archived_to = store.records().unwrap().len();
    // While the archiver is down: more writes, two rotations, the old files purged.
    some_writes(&server, 10);
    server.sql("FLUSH BINARY LOGS");
    some_writes(&server, 10);
    server.sql("FLUSH BINARY LOGS");
    let current = master_status(&server).file;
    // The server keeps a file until InnoDB's checkpoint has passed it and no dump thread
    // reads it: purge until it has gone.
    wait_for("the old binlogs purged", || {
        server.sql(&format!("PURGE BINARY LOGS TO '{current}'"));
        binlog_files(&server) == [current.clone()]
    });
    let e = rt
        .block_on(archive(&conn, &mut store, &once(), std::future::pending()))
        .unwrap_err();
    let ArchiveError::Purged { position, .. } = &e else {
        panic!("expected Purged, got {e:?}");
    };
    assert_eq!(
        position.as_ref().map(|p| p.file.as_str()),
        Some("binlog.000001")
    );
    assert!(e.to_string().contains("GAP IN THE BINLOG ARCHIVE"), "{e}");
    assert_eq!(
        store.records().unwrap().len(),
        archived_to,
        "nothing archived"
    );
    let gap = rt
        .block_on(rdump::binlog::mark_gap(&conn, &mut store, e))
        .unwrap();
    assert_eq!(gap.resume_at.file, current);
    some_writes(&server, 5);
    rt.block_on(archive(&conn, &mut store, &once(), std::future::pending()))
        .unwrap();
    let records = store.records().unwrap();
    assert!(
        matches!(records[archived_to].1, Record::Gap(_)),
        "{records:?}"
    );
    assert!(matches!(records.last().unwrap().1, Record::Segment(_)));
    assert_eq!(assert_archive_matches(&server, &store, dir.path()), 1);
}

#[test]
fn a_corrupt_event_stops_the_archive_at_the_last_good_event() {
    let server = source();
    some_writes(&server, 20);
    server.sql("INSERT INTO pitr.m (v) VALUES ('needle-in-the-binlog')");
    some_writes(&server, 5);
    server.sql("FLUSH BINARY LOGS");
    // Flip one byte of a statement's text in the closed file (the server does not check
    // checksums when it sends, as master_verify_checksum is off by default).
    let path = server.dir().join("binlog.000001");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(6)
        .position(|w| w == b"needle")
        .expect("the statement is in the binlog");
    bytes[at] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut store = LocalDirStore::open(&dir.path().join("archive")).unwrap();
    let e = runtime()
        .block_on(archive(
            &connection(&server),
            &mut store,
            &once(),
            std::future::pending(),
        ))
        .unwrap_err();
    let ArchiveError::Corrupt {
        file, pos, problem, ..
    } = &e
    else {
        panic!("expected Corrupt, got {e:?}");
    };
    assert_eq!(file, "binlog.000001");
    assert!(problem.contains("CRC32"), "{problem}");
    // The event starts before the flipped byte and ends after it; the archive ends
    // exactly where it starts.
    assert!((*pos as usize) < at, "{pos} {at}");
    let last_end = store
        .records()
        .unwrap()
        .iter()
        .filter_map(|(_, r)| match r {
            Record::Segment(s) => Some(s.end),
            Record::Gap(_) => None,
        })
        .max();
    assert_eq!(last_end, Some(*pos));
    assert_contiguous(&store);
}

#[test]
fn an_idle_source_keeps_the_stream_alive_with_heartbeats() {
    let server = source();
    some_writes(&server, 3);
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("archive");
    let conn = connection(&server);
    let opts = ArchiveOptions {
        heartbeat: Duration::from_millis(200),
        read_timeout: Duration::from_millis(1000),
        ..Default::default()
    };
    let rt = runtime();
    let report = rt
        .block_on(async {
            let mut store = LocalDirStore::open(&store_dir).unwrap();
            // Idle for three read timeouts: only heartbeats arrive.
            archive(
                &conn,
                &mut store,
                &opts,
                tokio::time::sleep(Duration::from_secs(3)),
            )
            .await
        })
        .unwrap();
    assert_eq!(report.reconnects, 0, "{report:?}");
    assert!(report.events > 0, "{report:?}");
}

#[test]
fn a_start_at_a_gtid_archives_from_the_next_transaction() {
    let server = source();
    some_writes(&server, 5);
    let gtid = server.sql_value("SELECT @@gtid_binlog_pos");
    let after = master_status(&server);
    some_writes(&server, 5);
    let dir = tempfile::tempdir().unwrap();
    let mut store = LocalDirStore::open(&dir.path().join("archive")).unwrap();
    let opts = ArchiveOptions {
        start: Some(rdump::sql::dialect::BinlogStart::Gtid(gtid.clone())),
        ..once()
    };
    runtime()
        .block_on(archive(
            &connection(&server),
            &mut store,
            &opts,
            std::future::pending(),
        ))
        .unwrap();
    let records = store.records().unwrap();
    let Record::Segment(first) = &records[0].1 else {
        panic!("{records:?}")
    };
    assert_eq!(
        (first.file.as_str(), first.start),
        (after.file.as_str(), after.pos),
        "archiving after {gtid} starts where the server was then"
    );
    let next_seq: u64 = gtid.rsplit('-').next().unwrap().parse::<u64>().unwrap() + 1;
    assert_eq!(first.gtids[0].first, next_seq, "{:?}", first.gtids);
    assert_contiguous(&store);
    // The archived bytes are the file's from there on.
    let file = std::fs::read(server.dir().join(&after.file)).unwrap();
    let bytes = store.segment_bytes(records[0].0, first).unwrap();
    assert_eq!(&file[first.start as usize..first.end as usize], &bytes[..]);
}

#[test]
fn a_second_archiver_with_the_same_server_id_refuses_instead_of_taking_over() {
    let server = source();
    some_writes(&server, 3);
    let dir = tempfile::tempdir().unwrap();
    let conn = connection(&server);
    let opts = ArchiveOptions {
        heartbeat: Duration::from_millis(100),
        ..Default::default()
    };
    let rt = runtime();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let first = {
        let (conn, opts, path) = (conn.clone(), opts.clone(), dir.path().join("a"));
        rt.spawn(async move {
            let mut store = LocalDirStore::open(&path).unwrap();
            archive(&conn, &mut store, &opts, async {
                let _ = stop_rx.await;
            })
            .await
        })
    };
    wait_for("the first archiver's dump thread", || {
        server.sql_value(
            "SELECT COUNT(*) FROM information_schema.processlist WHERE command = 'Binlog Dump'",
        ) == "1"
    });
    let mut other = LocalDirStore::open(&dir.path().join("b")).unwrap();
    let e = rt
        .block_on(archive(&conn, &mut other, &opts, std::future::pending()))
        .unwrap_err();
    assert!(
        matches!(&e, ArchiveError::Config(m) if m.contains("already connected")),
        "{e:?}"
    );
    stop_tx.send(()).unwrap();
    let report = rt.block_on(first).unwrap().unwrap();
    assert_eq!(report.reconnects, 0, "the first archiver was not disturbed");
}

#[test]
fn a_binlog_without_checksums_is_archived_byte_for_byte_too() {
    let server = Server::start(ServerOptions {
        binlog: true,
        extra_args: vec!["--binlog-checksum=NONE".into()],
        ..Default::default()
    });
    some_writes(&server, 20);
    server.sql("FLUSH BINARY LOGS");
    some_writes(&server, 5);
    let dir = tempfile::tempdir().unwrap();
    let mut store = LocalDirStore::open(&dir.path().join("archive")).unwrap();
    runtime()
        .block_on(archive(
            &connection(&server),
            &mut store,
            &once(),
            std::future::pending(),
        ))
        .unwrap();
    assert_contiguous(&store);
    assert_eq!(assert_archive_matches(&server, &store, dir.path()), 2);
}

#[test]
fn an_archive_begun_mid_file_rebuilds_a_file_mariadb_binlog_reads() {
    let server = source();
    some_writes(&server, 5);
    let start = master_status(&server);
    server.sql("INSERT INTO pitr.m (v) VALUES ('after-the-start')");
    some_writes(&server, 5);
    let dir = tempfile::tempdir().unwrap();
    let mut store = LocalDirStore::open(&dir.path().join("archive")).unwrap();
    let opts = ArchiveOptions {
        start: Some(rdump::sql::dialect::BinlogStart::Position {
            file: start.file.clone(),
            pos: start.pos,
        }),
        ..once()
    };
    runtime()
        .block_on(archive(
            &connection(&server),
            &mut store,
            &opts,
            std::future::pending(),
        ))
        .unwrap();
    let records = store.records().unwrap();
    let Record::Segment(first) = &records[0].1 else {
        panic!()
    };
    assert_eq!(first.start, start.pos);
    // The segments are the file's bytes from the start on; the FORMAT_DESCRIPTION is
    // the copy the server re-sent (its log_pos zeroed), so offsets in the rebuilt file
    // differ from the server's, and mariadb-binlog still reads every event.
    let original = std::fs::read(server.dir().join(&start.file)).unwrap();
    let rebuilt = store.rebuild(&start.file).unwrap().unwrap();
    let header = 4 + first.format_description.len();
    assert_eq!(&rebuilt[header..], &original[start.pos as usize..]);
    let path = dir.path().join(&start.file);
    std::fs::write(&path, &rebuilt).unwrap();
    let text = decoded(&path);
    assert!(text.contains("after-the-start"), "{text}");
    assert!(
        text.contains(&format!("end_log_pos {}", original.len())),
        "{text}"
    );
}

#[test]
fn a_refused_login_fails_at_once_and_a_server_down_is_retried() {
    let mut server = source();
    let dir = tempfile::tempdir().unwrap();
    let mut store = LocalDirStore::open(&dir.path().join("archive")).unwrap();
    let rt = runtime();
    let wrong = ConnectionOptions {
        password: Password::Given(Secret::new("not-the-password")),
        ..connection(&server)
    };
    let begin = std::time::Instant::now();
    let e = rt
        .block_on(archive(&wrong, &mut store, &once(), std::future::pending()))
        .unwrap_err();
    assert!(matches!(e, ArchiveError::Server { .. }), "{e:?}");
    assert!(e.to_string().contains("1045"), "{e}");
    assert!(!e.to_string().contains("not-the-password"), "{e}");
    assert!(
        begin.elapsed() < Duration::from_secs(10),
        "retried a refused login"
    );
    // A server that is down is retried for `reconnect_for`, then the run fails.
    let conn = connection(&server);
    server.stop();
    let opts = ArchiveOptions {
        reconnect_for: Duration::from_secs(1),
        start: Some(rdump::sql::dialect::BinlogStart::Position {
            file: "binlog.000001".into(),
            pos: 4,
        }),
        ..Default::default()
    };
    let e = rt
        .block_on(archive(&conn, &mut store, &opts, std::future::pending()))
        .unwrap_err();
    assert!(matches!(e, ArchiveError::Connection { .. }), "{e:?}");
}

/// CPU time (user + system) of a process so far, from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3 (index 0 here); utime 14, stime 15 (1-based).
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

/// Not a pass/fail test: the archiver's CPU under sysbench `oltp_write_only` with 2
/// threads for 20 s (`cargo test --test binlog archiver_cpu -- --ignored --nocapture`;
/// a debug build unless run with `--release`).
#[test]
#[ignore]
fn archiver_cpu_under_a_sysbench_write_load() {
    let server = source();
    server.sql("CREATE DATABASE sbtest");
    let sysbench = |command: &str, extra: &[&str]| {
        let out = Command::new("sysbench")
            .arg("oltp_write_only")
            .arg("--db-driver=mysql")
            .arg(format!("--mysql-socket={}", server.socket().display()))
            .arg("--mysql-user=root")
            .args(["--tables=2", "--table-size=10000"])
            .args(extra)
            .arg(command)
            .output()
            .expect("run sysbench");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    sysbench("prepare", &[]);
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("archive");
    let mut child = spawn_archiver(&server, &store_dir);
    wait_for("the archiver to catch up", || {
        server.sql_value(
            "SELECT COUNT(*) FROM information_schema.processlist WHERE command = 'Binlog Dump'",
        ) == "1"
    });
    std::thread::sleep(Duration::from_secs(2));
    let before = cpu_time(child.id());
    let started = std::time::Instant::now();
    let out = sysbench("run", &["--threads=2", "--time=20"]);
    let wall = started.elapsed();
    let used = cpu_time(child.id()) - before;
    common::signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    let tps = out
        .lines()
        .find(|l| l.contains("transactions:"))
        .unwrap_or_default()
        .trim()
        .to_string();
    let archived: u64 = std::fs::read_dir(&store_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    println!(
        "archiver CPU: {:.2} s in {:.1} s = {:.1}% of one core; {tps}; {} MiB archived",
        used.as_secs_f64(),
        wall.as_secs_f64(),
        100.0 * used.as_secs_f64() / wall.as_secs_f64(),
        archived >> 20
    );
}

// ---------------------------------------------------------------------------------------
// `rbackup binlog` into a repository (local and S3): the archiver's command and the
// repository's segment store (`backup::segments::RepositorySegments`).

use common::rbackup::{rbackup, text};
use rdump::backup::segments::{ObjectKind, RepositorySegments};
use rdump::backup::store::{S3Settings, StoreOptions};
use rdump::binlog::SegmentSource;
use rdump::binlog::window::{self, SpanEnd};

/// A repository for the archiver: an age identity (the reader) and a writer key.
struct Repo {
    _dir: tempfile::TempDir,
    url: String,
    identity: std::path::PathBuf,
    writer_key: std::path::PathBuf,
    env: Vec<(&'static str, String)>,
    store: StoreOptions,
}

fn init_repo(url: Option<String>, moto: Option<&common::s3::MotoServer>) -> Repo {
    let dir = tempfile::tempdir().unwrap();
    let url = url.unwrap_or_else(|| dir.path().join("repo").to_str().unwrap().to_string());
    let identity = age::x25519::Identity::generate();
    let identity_path = dir.path().join("identity");
    {
        use age::secrecy::ExposeSecret;
        std::fs::write(&identity_path, identity.to_string().expose_secret()).unwrap();
    }
    let writer_key = dir.path().join("writer.key");
    let env = moto.map(|m| m.env()).unwrap_or_default();
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
        &env,
    );
    assert!(out.status.success(), "{}", text(&out));
    let store = StoreOptions {
        s3: S3Settings {
            endpoint: moto.map(|m| m.endpoint()),
            region: moto.map(|_| common::s3::REGION.to_string()),
            access_key_id: moto.map(|_| common::s3::ACCESS_KEY_ID.to_string()),
            secret_access_key: moto.map(|_| common::s3::SECRET_ACCESS_KEY.to_string()),
        },
        ..Default::default()
    };
    Repo {
        _dir: dir,
        url,
        identity: identity_path,
        writer_key,
        env,
        store,
    }
}

impl Repo {
    /// `rbackup binlog --repo URL --writer-key-file F EXTRA -- <connection of server>`.
    fn binlog_command(&self, server: &Server, extra: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rbackup"));
        cmd.args(["binlog", "--repo", &self.url, "--writer-key-file"])
            .arg(&self.writer_key)
            .args(extra)
            .args(cli_connection(server));
        for var in [
            "RBACKUP_REPO",
            "RBACKUP_IDENTITY_FILE",
            "RBACKUP_PASSPHRASE_FILE",
            "RBACKUP_WRITER_KEY_FILE",
            "AWS_ENDPOINT_URL",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (*k, v)));
        cmd
    }

    fn binlog(&self, server: &Server, extra: &[&str]) -> std::process::Output {
        self.binlog_command(server, extra).output().unwrap()
    }

    fn spawn(&self, server: &Server, extra: &[&str]) -> std::process::Child {
        self.binlog_command(server, extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn list_json(&self) -> Vec<serde_json::Value> {
        let out = self.list(&["--json"]);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
    }

    fn list(&self, extra: &[&str]) -> std::process::Output {
        let mut a = vec![
            "list",
            "--repo",
            &self.url,
            "--identity-file",
            self.identity.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        let out = rbackup(&a, &self.env);
        assert!(out.status.success(), "{}", text(&out));
        out
    }

    /// The archive of the repository's only source, opened with the reader's key.
    fn segments(&self, rt: &tokio::runtime::Runtime) -> RepositorySegments {
        self.try_segments(rt).expect("an archive in the repository")
    }

    /// The same, `None` while there is no archive yet.
    fn try_segments(&self, rt: &tokio::runtime::Runtime) -> Option<RepositorySegments> {
        rt.block_on(async {
            let access = rdump::backup::Access::identity_file(&self.identity).unwrap();
            let repo = rdump::backup::open(&self.url, &access, &self.store)
                .await
                .unwrap();
            let sources = RepositorySegments::sources(&repo).await.unwrap();
            assert!(sources.len() <= 1, "{sources:?}");
            let source = sources.first()?;
            Some(RepositorySegments::open_reader(repo, source).unwrap())
        })
    }
}

fn cli_connection(server: &Server) -> Vec<String> {
    vec![
        "--no-defaults".into(),
        format!("--socket={}", server.socket().display()),
        format!("-u{}", server.user()),
        format!("-p{}", server.password()),
    ]
}

/// The repository's archive is contiguous and has no segment twice: in each file every
/// segment object starts where the one before ended; one span from the first to the last.
fn assert_repo_contiguous(segs: &RepositorySegments, rt: &tokio::runtime::Runtime) -> usize {
    let objects = rt.block_on(segs.objects()).unwrap();
    let mut last: Option<(String, u64)> = None;
    for o in &objects {
        let ObjectKind::Segment { file, start, end } = &o.kind else {
            last = None;
            continue;
        };
        if let Some((f, e)) = &last
            && f == file
        {
            assert_eq!(
                e, start,
                "{}: does not follow (or repeats) the one before",
                o.name
            );
        }
        last = Some((file.clone(), *end));
    }
    let records = rt.block_on(segs.records()).unwrap();
    let spans = window::spans(&records);
    assert!(
        spans
            .iter()
            .all(|s| !matches!(s.ends, SpanEnd::Discontinuity { .. })),
        "{spans:?}"
    );
    objects.len()
}

/// Every archived file rebuilt from the repository equals the server's (up to where the
/// archive ends, the FORMAT_DESCRIPTION's in-use flag aside) and mariadb-binlog reads it
/// as it reads the server's. Returns how many files were compared.
fn assert_repo_matches(
    server: &Server,
    segs: &RepositorySegments,
    rt: &tokio::runtime::Runtime,
    scratch: &Path,
) -> usize {
    let mut compared = 0;
    for file in binlog_files(server) {
        let Some(rebuilt) = rt.block_on(segs.rebuild(&file)).unwrap() else {
            continue;
        };
        let original = std::fs::read(server.dir().join(&file)).unwrap();
        assert!(rebuilt.len() <= original.len(), "{file}: archive too long");
        let mut expected = original[..rebuilt.len()].to_vec();
        expected[21] = (expected[21] & !1) | (rebuilt[21] & 1);
        assert!(
            expected == rebuilt,
            "{file}: archived bytes differ from the server's at offset {:?}",
            expected.iter().zip(&rebuilt).position(|(a, b)| a != b)
        );
        if rebuilt.len() == original.len() {
            let path = scratch.join(&file);
            std::fs::write(&path, &rebuilt).unwrap();
            let theirs_path = scratch.join(format!("{file}.server"));
            let mut theirs = original.clone();
            theirs[21] = expected[21];
            std::fs::write(&theirs_path, &theirs).unwrap();
            assert_eq!(decoded(&path), decoded(&theirs_path), "{file}");
        }
        compared += 1;
    }
    compared
}

/// `rbackup backup` of database pitr with the writer key; its coordinates.
fn cli_backup(repo: &Repo, server: &Server) -> serde_json::Value {
    let mut a: Vec<String> = [
        "backup",
        "--repo",
        &repo.url,
        "--writer-key-file",
        repo.writer_key.to_str().unwrap(),
        "--json",
    ]
    .map(String::from)
    .to_vec();
    a.extend(cli_connection(server));
    a.extend(["--databases", "pitr", "--progress=never"].map(String::from));
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = rbackup(&a, &repo.env);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn stderr_of(child: std::process::Child) -> (Option<i32>, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_archives_into_a_local_repository_and_list_shows_the_window() {
    let server = source();
    some_writes(&server, 30);
    server.sql("FLUSH BINARY LOGS");
    let repo = init_repo(None, None);
    let backup = cli_backup(&repo, &server);
    some_writes(&server, 30);
    server.sql("ALTER TABLE pitr.t ADD COLUMN w INT; FLUSH BINARY LOGS");
    some_writes(&server, 10);
    let target = master_status(&server);
    let out = repo.binlog(&server, &["--once"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("ends at {target}")),
        "{}",
        text(&out)
    );
    let rt = runtime();
    let segs = repo.segments(&rt);
    let scratch = tempfile::tempdir().unwrap();
    assert_repo_contiguous(&segs, &rt);
    assert_eq!(assert_repo_matches(&server, &segs, &rt, scratch.path()), 3);
    // The backup's window runs from its coordinates to the last archived event.
    let list = repo.list_json();
    let w = &list[0]["window"];
    assert_eq!(
        w["from"]["file"], backup["meta"]["coordinates"]["file"],
        "{w}"
    );
    assert_eq!(
        w["from"]["pos"], backup["meta"]["coordinates"]["position"],
        "{w}"
    );
    assert_eq!(w["to"]["file"], target.file.as_str(), "{w}");
    assert_eq!(w["to"]["pos"], target.pos, "{w}");
    assert_eq!(w["ends"]["kind"], "latest", "{w}");
    let table = String::from_utf8_lossy(&repo.list(&[]).stdout).into_owned();
    assert!(table.contains(&format!("-> {target}")), "{table}");
    // A second --once archives nothing twice.
    some_writes(&server, 3);
    let out = repo.binlog(&server, &["--once"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_repo_contiguous(&segs, &rt);
    assert_eq!(assert_repo_matches(&server, &segs, &rt, scratch.path()), 3);

    // A flipped byte in a segment object is named on reading.
    let records = rt.block_on(segs.records()).unwrap();
    let objects = rt.block_on(segs.objects()).unwrap();
    let victim = objects
        .iter()
        .find(|o| matches!(o.kind, ObjectKind::Segment { .. }))
        .unwrap();
    let path = Path::new(&repo.url).join(&victim.name);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let ObjectKind::Segment { file, .. } = &victim.kind else {
        unreachable!()
    };
    let e = rt.block_on(segs.rebuild(file)).unwrap_err();
    assert!(
        e.to_string().contains(&victim.name) && e.to_string().contains("damaged"),
        "{e}"
    );
    if let Err(e) = rt.block_on(segs.records()) {
        assert!(e.to_string().contains(&victim.name), "{e}");
    }
    let rdump::binlog::Record::Segment(described) = records
        .iter()
        .find(|r| matches!(r, rdump::binlog::Record::Segment(s) if s.file == *file))
        .unwrap()
    else {
        unreachable!()
    };
    let e = rt.block_on(segs.segment_bytes(described)).unwrap_err();
    assert!(e.to_string().contains(&victim.name), "{e}");
}

#[test]
fn the_cli_survives_sigkill_commits_on_sigterm_and_a_second_archiver_refuses() {
    let server = source();
    some_writes(&server, 10);
    let repo = init_repo(None, None);
    let rt = runtime();
    let w = writer(&server);
    let objects = |segs: &Option<RepositorySegments>| {
        segs.as_ref()
            .map_or(0, |s| rt.block_on(s.objects()).map_or(0, |o| o.len()))
    };
    let mut child = repo.spawn(&server, &["--flush-interval", "200ms"]);
    let mut segs = None;
    wait_for("3 segments from the first archiver", || {
        if segs.is_none() {
            segs = repo.try_segments(&rt);
        }
        objects(&segs) >= 3
    });
    // A second archiver of the same source refuses, naming the first.
    let out = repo.binlog(&server, &["--once"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("pid {}", child.id()))
            && text(&out).contains("locked by binlog archiver"),
        "{}",
        text(&out)
    );
    common::signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    let before = objects(&segs);
    server.sql("FLUSH BINARY LOGS");
    let child = repo.spawn(&server, &["--flush-interval", "200ms"]);
    wait_for("segments from the second archiver", || {
        objects(&segs) >= before + 3
    });
    stop_writer(w);
    // SIGTERM commits what was received: with a flush interval of an hour nothing would
    // be committed otherwise. Wait until the server has sent everything.
    common::signal(&child, libc::SIGTERM);
    let (code, stderr) = stderr_of(child);
    assert_eq!(code, Some(0), "{stderr}");
    some_writes(&server, 5);
    let target = master_status(&server);
    let dump_threads = |state: &str| -> Vec<String> {
        server
            .sql_rows(&format!(
                "SELECT id FROM information_schema.processlist \
                 WHERE command = 'Binlog Dump' AND state LIKE '{state}'"
            ))
            .into_iter()
            .map(|r| r[0].clone())
            .collect()
    };
    let old = dump_threads("%");
    let child = repo.spawn(&server, &["--flush-interval", "1m"]);
    wait_for("the new dump thread to have sent everything", || {
        dump_threads("%has sent all binlog%")
            .iter()
            .any(|id| !old.contains(id))
    });
    // Sent is not yet read: the archiver may still be behind its socket (a fixed 1.5 s was
    // too little in a full suite on 2 loaded cores: the archive ended one write short).
    // Wait until its sockets hold nothing unread; what it has read it commits on SIGTERM.
    wait_for("the archiver to have read its socket", || {
        nothing_unread(child.id())
    });
    std::thread::sleep(Duration::from_millis(300));
    common::signal(&child, libc::SIGTERM);
    let (code, stderr) = stderr_of(child);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("ends at {target}")),
        "expected the archive to end at {target}: {stderr}"
    );
    let segs = segs.unwrap();
    assert_repo_contiguous(&segs, &rt);
    let scratch = tempfile::tempdir().unwrap();
    assert_eq!(assert_repo_matches(&server, &segs, &rt, scratch.path()), 2);
}

#[test]
fn a_purge_while_the_cli_was_down_is_a_gap_in_list_and_exit_3() {
    let server = source();
    some_writes(&server, 10);
    let repo = init_repo(None, None);
    let out = repo.binlog(&server, &["--once"]);
    assert!(out.status.success(), "{}", text(&out));
    some_writes(&server, 10);
    server.sql("FLUSH BINARY LOGS");
    some_writes(&server, 10);
    server.sql("FLUSH BINARY LOGS");
    let current = master_status(&server).file;
    wait_for("the old binlogs purged", || {
        server.sql(&format!("PURGE BINARY LOGS TO '{current}'"));
        binlog_files(&server) == [current.clone()]
    });
    some_writes(&server, 3);
    let target = master_status(&server);
    let out = repo.binlog(&server, &["--once"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("GAP IN THE BINLOG ARCHIVE"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains(&format!("ends at {target}")),
        "{}",
        text(&out)
    );
    let table = String::from_utf8_lossy(&repo.list(&[]).stdout).into_owned();
    assert!(
        table.contains(&format!(
            "ends at a GAP (binlog purged before it was archived; archiving resumed at {current}:4)"
        )),
        "{table}"
    );
    let rt = runtime();
    let segs = repo.segments(&rt);
    let spans = window::spans(&rt.block_on(segs.records()).unwrap());
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert!(matches!(spans[0].ends, SpanEnd::Gap { .. }), "{spans:?}");
    assert_eq!(spans[1].end, target);
}

#[test]
fn the_cli_archives_into_s3_and_refuses_an_account_without_privileges() {
    let server = source();
    some_writes(&server, 20);
    server.sql("FLUSH BINARY LOGS");
    some_writes(&server, 5);
    let moto = common::s3::MotoServer::start();
    moto.create_bucket("pitr");
    let repo = init_repo(Some("s3://pitr/archive".into()), Some(&moto));
    let out = repo.binlog(&server, &["--once", "--flush-interval", "500ms"]);
    assert!(out.status.success(), "{}", text(&out));
    let rt = runtime();
    let segs = repo.segments(&rt);
    assert_repo_contiguous(&segs, &rt);
    let scratch = tempfile::tempdir().unwrap();
    assert_eq!(assert_repo_matches(&server, &segs, &rt, scratch.path()), 2);
    // An account with REPLICATION SLAVE only: refused before archiving, saying what it needs.
    server.sql(
        "CREATE USER 'repl'@'localhost' IDENTIFIED BY 'repl-pw'; \
         GRANT REPLICATION SLAVE ON *.* TO 'repl'@'localhost'",
    );
    let mut cmd = repo.binlog_command(&server, &["--once"]);
    cmd.args(["-urepl", "-prepl-pw"]);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("BINLOG MONITOR"), "{}", text(&out));
    assert!(!text(&out).contains("repl-pw"), "{}", text(&out));
}

/// Not a pass/fail test: `rbackup binlog` (the binary in `RDUMP_BENCH_RBACKUP`, e.g.
/// target/release/rbackup; by default the debug one) into a local repository under
/// sysbench `oltp_write_only` with 2 threads for `RDUMP_BENCH_SECONDS` (default 30): its
/// CPU (user + system, from /proc) per second of load and per event, and the RPO: the age
/// of the newest archived event, sampled every 500 ms, against the flush interval (10 s).
/// `cargo test --test binlog archiver_cli_cpu -- --ignored --nocapture`.
#[test]
#[ignore]
fn archiver_cli_cpu_and_rpo_under_sysbench() {
    let server = source();
    server.sql("CREATE DATABASE sbtest");
    let seconds: u64 = std::env::var("RDUMP_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let sysbench = |command: &str, extra: &[&str]| {
        let out = Command::new("sysbench")
            .arg("oltp_write_only")
            .arg("--db-driver=mysql")
            .arg(format!("--mysql-socket={}", server.socket().display()))
            .arg("--mysql-user=root")
            .args(["--tables=2", "--table-size=10000"])
            .args(extra)
            .arg(command)
            .output()
            .expect("run sysbench");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    sysbench("prepare", &[]);
    let repo = init_repo(None, None);
    let bin = std::env::var("RDUMP_BENCH_RBACKUP")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_rbackup").to_string());
    // Catch up with the prepare first, so that only the load is measured.
    let mut cmd = repo.binlog_command(&server, &["--once"]);
    let out = Command::new(&bin)
        .args(cmd.get_args())
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    cmd = repo.binlog_command(&server, &[]);
    let mut child = Command::new(&bin)
        .args(cmd.get_args())
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the archiver's dump thread", || {
        server.sql_value(
            "SELECT COUNT(*) FROM information_schema.processlist WHERE command = 'Binlog Dump'",
        ) == "1"
    });
    std::thread::sleep(Duration::from_secs(2));
    let events_before = binlog_bytes(&server);
    let before = cpu_time(child.id());
    let started = std::time::Instant::now();
    // RPO samples on another thread while the load runs.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        let rt = runtime();
        let segs = repo.segments(&rt);
        std::thread::spawn(move || {
            let mut ages = Vec::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(500));
                let records = rt.block_on(segs.records()).unwrap();
                if let Some(rdump::binlog::Record::Segment(s)) = records.last() {
                    let now = chrono::Utc::now().timestamp();
                    ages.push(now - i64::from(s.last_event_time));
                }
            }
            ages
        })
    };
    let out = sysbench("run", &["--threads=2", &format!("--time={seconds}")]);
    let wall = started.elapsed();
    let used = cpu_time(child.id()) - before;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut ages = sampler.join().unwrap();
    let archived = binlog_bytes(&server) - events_before;
    common::signal(&child, libc::SIGTERM);
    child.wait().unwrap();
    let tps = out
        .lines()
        .find(|l| l.contains("transactions:"))
        .unwrap_or_default()
        .trim()
        .to_string();
    // Skip the first 12 s: the first segment is committed a flush interval after the start.
    let steady: Vec<i64> = ages.split_off(ages.len().min(24));
    println!(
        "archiver CPU: {:.2} s in {:.1} s = {:.1}% of one core; {tps}; {:.1} MiB of binlog \
         ({:.2} us CPU per KiB); RPO (age of the newest archived event, s, flush interval \
         10 s): max {:?}, samples {}",
        used.as_secs_f64(),
        wall.as_secs_f64(),
        100.0 * used.as_secs_f64() / wall.as_secs_f64(),
        archived as f64 / (1 << 20) as f64,
        used.as_secs_f64() * 1e6 / (archived as f64 / 1024.0),
        steady.iter().max(),
        steady.len()
    );
}

/// The server's binlog bytes so far (all files).
fn binlog_bytes(server: &Server) -> u64 {
    server
        .sql_rows("SHOW BINARY LOGS")
        .iter()
        .map(|r| r[1].parse::<u64>().unwrap())
        .sum()
}

/// Not a pass/fail test: the RPO of `rbackup binlog` under a steady light load, where the
/// flush interval (not the 16 MiB size limit) decides when segments are committed. For
/// each flush interval in `RDUMP_RPO_INTERVALS` (default "10s,2s"): an archiver into a
/// local repository, one client committing `RDUMP_RPO_RATE` (default 30) single-row
/// transactions per second for `RDUMP_RPO_SECONDS` (default 60), and every 200 ms a
/// sample of the archive's newest event: its age by its binlog timestamp (whole seconds,
/// `now - last_event_time`, as `rbackup check` sees it) and, exactly, by the commit time
/// (`NOW(6)` in the row) of the newest archived transaction. Prints max and p99 of both.
/// `cargo test --test binlog rpo_light_load -- --ignored --nocapture`.
#[test]
#[ignore]
fn rpo_light_load() {
    use std::io::Write;
    let env_or = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let seconds: u64 = env_or("RDUMP_RPO_SECONDS", "60").parse().unwrap();
    let rate: u64 = env_or("RDUMP_RPO_RATE", "30").parse().unwrap();
    let intervals = env_or("RDUMP_RPO_INTERVALS", "10s,2s");
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!("machine: {cpu}, kernel {}", kernel.trim());
    for interval in intervals.split(',') {
        let server = source();
        server.sql(
            "CREATE DATABASE rpo; CREATE TABLE rpo.t (id INT AUTO_INCREMENT PRIMARY KEY, \
             ts DATETIME(6) NOT NULL) ENGINE=InnoDB",
        );
        let repo = init_repo(None, None);
        let out = repo.binlog(&server, &["--once"]);
        assert!(out.status.success(), "{}", text(&out));
        // The GTID sequence number of row id n is base + n: nothing else writes.
        let base: u64 = server
            .sql_value("SELECT @@gtid_binlog_pos")
            .rsplit('-')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let mut child = repo.spawn(&server, &["--flush-interval", interval]);
        wait_for("the archiver's dump thread", || {
            server.sql_value(
                "SELECT COUNT(*) FROM information_schema.processlist WHERE command = 'Binlog Dump'",
            ) == "1"
        });
        let mut client = server
            .client_command()
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = client.stdin.take().unwrap();
        let rt = runtime();
        let segs = repo.segments(&rt);
        let mut seen = std::collections::HashSet::new();
        // (sample time UTC µs, newest archived event's timestamp s, newest GTID seq).
        let mut samples: Vec<(i64, i64, u64)> = Vec::new();
        let (mut newest_ts, mut newest_seq) = (0i64, 0u64);
        let started = std::time::Instant::now();
        let period = Duration::from_micros(1_000_000 / rate);
        let mut next_write = started;
        let mut next_sample = started;
        let mut written = 0u64;
        while started.elapsed() < Duration::from_secs(seconds) {
            let now = std::time::Instant::now();
            if now >= next_write {
                writeln!(stdin, "INSERT INTO rpo.t (ts) VALUES (NOW(6));").unwrap();
                stdin.flush().unwrap();
                written += 1;
                next_write += period;
            }
            if now >= next_sample {
                next_sample += Duration::from_millis(200);
                for o in rt.block_on(segs.objects()).unwrap() {
                    if !matches!(o.kind, ObjectKind::Segment { .. }) || !seen.insert(o.name.clone())
                    {
                        continue;
                    }
                    let h = rt.block_on(segs.header(&o)).unwrap();
                    newest_ts = newest_ts.max(i64::from(h.segment.last_event_time));
                    for g in &h.segment.gtids {
                        newest_seq = newest_seq.max(g.last);
                    }
                }
                // Skip the first interval: nothing of the load can be archived before.
                if newest_seq > base {
                    samples.push((chrono::Utc::now().timestamp_micros(), newest_ts, newest_seq));
                }
            }
            std::thread::sleep(
                next_write
                    .min(next_sample)
                    .saturating_duration_since(std::time::Instant::now()),
            );
        }
        drop(stdin);
        client.wait().unwrap();
        common::signal(&child, libc::SIGTERM);
        child.wait().unwrap();
        // Commit times of the rows, by GTID sequence number (the server's clock, which is
        // this machine's).
        let commits: std::collections::HashMap<u64, i64> = server
            .sql_rows("SELECT id, CAST(UNIX_TIMESTAMP(ts) * 1000000 AS SIGNED) FROM rpo.t")
            .into_iter()
            .map(|r| (base + r[0].parse::<u64>().unwrap(), r[1].parse().unwrap()))
            .collect();
        let mut coarse: Vec<f64> = samples
            .iter()
            .map(|(now, ts, _)| (*now as f64 / 1e6) - *ts as f64)
            .collect();
        let mut exact: Vec<f64> = samples
            .iter()
            .filter_map(|(now, _, seq)| commits.get(seq).map(|c| (now - c) as f64 / 1e6))
            .collect();
        let stats = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let p99 = v[((v.len() as f64 * 0.99).ceil() as usize).saturating_sub(1)];
            (v[v.len() - 1], p99, v.len())
        };
        let (cmax, cp99, n) = stats(&mut coarse);
        let (emax, ep99, _) = stats(&mut exact);
        println!(
            "RPO, --flush-interval {interval}, {written} transactions in {seconds} s \
             ({:.1}/s), {n} samples every 200 ms: by event timestamp (whole s) max {cmax:.2} s, \
             p99 {cp99:.2} s; by commit time of the newest archived transaction max \
             {emax:.2} s, p99 {ep99:.2} s",
            written as f64 / seconds as f64
        );
    }
}
