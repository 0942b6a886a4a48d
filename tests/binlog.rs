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

/// Every segment follows the one before it in its file, and each file's first segment
/// starts right after its FORMAT_DESCRIPTION or where the previous file's archive left.
fn assert_contiguous(store: &LocalDirStore) {
    let mut last: Option<(String, u64, Option<String>)> = None;
    for (n, r) in store.records().unwrap() {
        let Record::Segment(s) = r else {
            last = None;
            continue;
        };
        if let Some((file, end, rotate_to)) = &last {
            if *file == s.file {
                assert_eq!(*end, s.start, "segment {n} of {} does not follow", s.file);
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
        last = Some((s.file.clone(), s.end, s.rotate_to.clone()));
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
    // Run again: nothing new, nothing archived twice.
    let again = runtime()
        .block_on(archive(
            &connection(&server),
            &mut store,
            &once(),
            std::future::pending(),
        ))
        .unwrap();
    assert_eq!(again.events, 0, "{again:?}");
}
