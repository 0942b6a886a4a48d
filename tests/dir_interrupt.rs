//! Directory dumps under stress: a killed worker connection or SIGINT leaves no manifest
//! and no half-written chunk file and exits non-zero; SIGINT stops a directory dump or the
//! single stream within 2 s, its message the last line; a re-run into the interrupted
//! directory clears it and leaves exactly the files of its manifest; a second rdump into a
//! directory being dumped into fails at once and the first completes; DDL on a dumped table
//! waits until the dump ends; progress bars show on a terminal (labelled, with separators,
//! chunks "of N") and not on a pipe, and `--progress=always` prints plain lines to a file;
//! memory stays bounded
//! with 8 threads.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use common::{Server, ServerOptions};

/// One server with `big.t`: 1,000,000 rows (~70 MB as SQL), shared by the tests.
fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let s = Server::start(ServerOptions {
            binlog: true,
            server_id: 61,
            ..Default::default()
        });
        s.sql(
            "CREATE DATABASE big; \
             CREATE TABLE big.t (id INT PRIMARY KEY, a VARCHAR(40), b DOUBLE, c DATETIME) ENGINE=InnoDB; \
             INSERT INTO big.t SELECT seq, MD5(seq), seq / 7, '2024-01-01' + INTERVAL seq SECOND \
               FROM big.seq_1_to_1000000;",
        );
        s
    })
}

/// The tests of this file interrupt running dumps and find their connections in the
/// process list: run them one at a time, so no test kills or slows another's dump.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn rdump_dir(dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rdump"));
    cmd.arg("--no-defaults")
        .arg(format!("--socket={}", server().socket().display()))
        .args(["-uroot", "--progress=never"])
        .arg(format!("--dir={}", dir.display()))
        .args(extra)
        .arg("big");
    cmd
}

fn files_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir.join("big")) else {
        return Vec::new();
    };
    let mut v: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Waits until the dump has committed at least one chunk, and leaves it stopped there
/// (SIGSTOP, see [`common::stop_when`]) so it cannot end before the test interrupts it;
/// the test then calls [`common::resume`].
fn wait_mid_dump(child: &mut Child, dir: &Path) {
    common::stop_when(child, "a first committed chunk", || {
        files_in(dir)
            .iter()
            .any(|f| f.ends_with(".sql") && f.contains(".000"))
    });
}

fn assert_not_a_dump(dir: &Path) {
    assert!(
        !dir.join("rdump.json").exists(),
        "an interrupted dump wrote a manifest"
    );
    let partial: Vec<String> = files_in(dir)
        .into_iter()
        .filter(|f| f.contains("rdump-partial"))
        .collect();
    assert!(partial.is_empty(), "half-written files left: {partial:?}");
}

#[test]
fn a_killed_worker_connection_fails_the_dump_without_a_manifest() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let mut child = rdump_dir(&dir, &["--threads=2", "--chunk-size=20000"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Stopped where a chunk is committed and a worker is mid-query (between two chunks,
    // no worker may be reading: then it runs on a little).
    let mut ids = Vec::new();
    common::stop_when(&mut child, "a worker reading after a first chunk", || {
        ids = server().sql_rows(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT%FROM `big`.`t`%' \
             AND INFO NOT LIKE '%PROCESSLIST%'",
        );
        !ids.is_empty()
            && files_in(&dir)
                .iter()
                .any(|f| f.ends_with(".sql") && f.contains(".000"))
    });
    server().sql(&format!("KILL {}", ids[0][0]));
    common::resume(&child);
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("dumping table `big`.`t` chunk"), "{stderr}");
    assert_not_a_dump(&dir);
}

#[test]
fn sigint_stops_the_dump_without_a_manifest_or_partial_files() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let mut child = rdump_dir(&dir, &["--threads=2", "--chunk-size=20000"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_mid_dump(&mut child, &dir);
    common::signal(&child, libc::SIGINT);
    let signalled = std::time::Instant::now();
    common::resume(&child);
    let out = child.wait_with_output().unwrap();
    let took = signalled.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert_not_a_dump(&dir);
    assert_stopped_promptly_with_its_message(took, &stderr);
}

/// A dump or load stopped by SIGINT exits within 2 s of it, and its message is the last
/// thing on stderr.
fn assert_stopped_promptly_with_its_message(took: std::time::Duration, stderr: &str) {
    eprintln!("stopped {:.2} s after SIGINT", took.as_secs_f64());
    assert!(
        took < std::time::Duration::from_secs(2),
        "took {took:?} to stop after SIGINT: {stderr}"
    );
    let last = stderr.trim_end().lines().last().unwrap_or("");
    assert!(
        last.starts_with("rdump: interrupted by SIGINT"),
        "not the last line: {stderr:?}"
    );
}

#[test]
fn sigint_stops_the_single_stream_promptly() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let result = tmp.path().join("big.sql");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rdump"))
        .arg("--no-defaults")
        .arg(format!("--socket={}", server().socket().display()))
        .args(["-uroot", "--progress=never", "--single-transaction"])
        .arg(format!("--result-file={}", result.display()))
        .arg("big")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Stopped once its readers are reading the table.
    common::stop_when(&mut child, "a reader on big.t", || {
        !server()
            .sql_rows(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT%FROM `big`.`t`%' \
                 AND INFO NOT LIKE '%PROCESSLIST%'",
            )
            .is_empty()
    });
    // Signalled while it runs at full speed, not while stopped.
    common::resume(&child);
    std::thread::sleep(std::time::Duration::from_millis(300));
    common::signal(&child, libc::SIGINT);
    let signalled = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    let took = signalled.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(!result.exists(), "an interrupted dump left its result file");
    assert_stopped_promptly_with_its_message(took, &stderr);
}

/// Every file under `dir`, relative, sorted.
fn all_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_dir() {
            out.extend(
                all_files(&e.path())
                    .into_iter()
                    .map(|f| format!("{name}/{f}")),
            );
        } else {
            out.push(name);
        }
    }
    out.sort();
    out
}

/// The manifest and every file it lists, relative, sorted.
fn manifest_files(dir: &Path) -> Vec<String> {
    let m = rdump::format::manifest::read(dir).unwrap();
    let mut out = vec!["rdump.json".to_string()];
    for d in &m.databases {
        for f in [
            &d.database_file,
            &d.views_file,
            &d.routines_file,
            &d.events_file,
        ]
        .into_iter()
        .flatten()
        {
            out.push(f.file.clone());
        }
        for t in &d.tables {
            for f in [&t.schema_file, &t.triggers_file].into_iter().flatten() {
                out.push(f.file.clone());
            }
            out.extend(t.chunks.iter().map(|c| c.file.clone()));
        }
    }
    out.sort();
    out
}

#[test]
fn a_rerun_into_an_interrupted_directory_leaves_exactly_its_manifests_files() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let mut child = rdump_dir(&dir, &["--threads=2", "--chunk-size=20000"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_mid_dump(&mut child, &dir);
    common::signal(&child, libc::SIGINT);
    common::resume(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(files_in(&dir).iter().any(|f| f.contains(".000")));
    // No rows this time: the first run's chunk files must not stay.
    let out = rdump_dir(&dir, &["--threads=2", "--no-data"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(all_files(&dir), manifest_files(&dir));
}

#[test]
fn a_second_rdump_into_a_directory_being_dumped_fails_and_the_first_completes() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let mut first = rdump_dir(&dir, &["--threads=2", "--chunk-size=20000"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_mid_dump(&mut first, &dir);
    let second = rdump_dir(&dir, &["--threads=1", "--where=id <= 10"])
        .output()
        .unwrap();
    common::resume(&first);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another rdump is dumping into this directory"),
        "{stderr}"
    );
    let out = first.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = rdump::format::manifest::read(&dir).unwrap();
    assert_eq!(m.databases[0].tables[0].rows, 1_000_000);
    assert_eq!(all_files(&dir), manifest_files(&dir));
}

#[test]
fn ddl_on_a_dumped_table_waits_until_the_dump_ends() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let mut child = rdump_dir(&dir, &["--threads=1", "--chunk-size=20000"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_mid_dump(&mut child, &dir);
    let ddl =
        server().sql_result("SET SESSION lock_wait_timeout=1; ALTER TABLE big.t ADD COLUMN z INT");
    common::resume(&child);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = ddl.expect_err("ALTER TABLE went through while the dump was reading the table");
    assert!(err.contains("Lock wait timeout"), "{err}");
    assert!(dir.join("rdump.json").exists());
}

fn run_in_pty(cmd: &str) -> String {
    let out = Command::new("script")
        .args(["-qefc", cmd, "/dev/null"])
        .env("TERM", "xterm")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn progress_shows_on_a_terminal_and_not_on_a_pipe() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let tty_dir = tmp.path().join("tty");
    let cmd = format!(
        "{} --no-defaults --socket={} -uroot --threads=2 --chunk-size=50000 --dir={} big",
        env!("CARGO_BIN_EXE_rdump"),
        server().socket().display(),
        tty_dir.display()
    );
    let screen = run_in_pty(&cmd);
    assert!(
        screen.contains(" rows ("),
        "no progress bar on the terminal:\n{screen}"
    );
    assert!(
        screen.contains(" MB/s"),
        "no throughput on the terminal:\n{screen}"
    );
    assert!(
        screen.contains("thread 0:"),
        "no per-thread line on the terminal"
    );
    // Labelled numbers: the row total is the catalog's estimate, rates are whole numbers
    // with separators, a table's chunks are counted "of N".
    assert!(screen.contains(" rows (estimate), "), "{screen}");
    assert!(screen.contains(" rows/s, "), "{screen}");
    assert!(screen.contains(" of 20 "), "no 'chunk i of 20':\n{screen}");
    assert!(
        !has_four_decimal_rate(&screen),
        "a rate with four decimals:\n{screen}"
    );
    assert!(
        screen.contains("rdump: 1 databases, 1 tables, 1,000,000 rows"),
        "no summary:\n{screen}"
    );

    let pipe_dir = tmp.path().join("pipe");
    let out = Command::new(env!("CARGO_BIN_EXE_rdump"))
        .arg("--no-defaults")
        .arg(format!("--socket={}", server().socket().display()))
        .args(["-uroot", "--threads=2", "--chunk-size=50000"])
        .arg(format!("--dir={}", pipe_dir.display()))
        .arg("big")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains(" rows ("),
        "a progress bar on a pipe: {stderr}"
    );
    assert_eq!(
        stderr.lines().count(),
        1,
        "only the summary on a pipe: {stderr}"
    );

    // --progress=always with stderr a file: a plain line every few seconds (here 0.2 s).
    let log_dir = tmp.path().join("log");
    let out = Command::new(env!("CARGO_BIN_EXE_rdump"))
        .arg("--no-defaults")
        .arg(format!("--socket={}", server().socket().display()))
        .args([
            "-uroot",
            "--threads=1",
            "--chunk-size=50000",
            "--progress=always",
        ])
        .arg(format!("--dir={}", log_dir.display()))
        .arg("big")
        .env("RDUMP_PROGRESS_SECONDS", "0.2")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.len() >= 2, "no progress lines: {stderr}");
    assert!(
        lines[0].starts_with("rdump: 00:00:0") && lines[0].contains(" rows (estimate), "),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\r') && !stderr.contains('\x1b'),
        "{stderr:?}"
    );
    assert!(
        lines.last().unwrap().starts_with("rdump: 1 databases"),
        "{stderr}"
    );

    let quiet_dir = tmp.path().join("quiet");
    let out = Command::new(env!("CARGO_BIN_EXE_rdump"))
        .arg("--no-defaults")
        .arg(format!("--socket={}", server().socket().display()))
        .args(["-uroot", "--quiet"])
        .arg(format!("--dir={}", quiet_dir.display()))
        .arg("big")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "--quiet printed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_single_stream_shows_progress_on_a_terminal_and_writes_the_same_dump() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let shown = tmp.path().join("shown.sql");
    let cmd = format!(
        "{} --no-defaults --socket={} -uroot --single-transaction --skip-dump-date big > {}",
        env!("CARGO_BIN_EXE_rdump"),
        server().socket().display(),
        shown.display()
    );
    let screen = run_in_pty(&cmd);
    assert!(
        screen.contains(" MB of data written ("),
        "no progress on the terminal:\n{screen}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_rdump"))
        .arg("--no-defaults")
        .arg(format!("--socket={}", server().socket().display()))
        .args(["-uroot", "--single-transaction", "--skip-dump-date", "big"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read(&shown).unwrap() == out.stdout,
        "the dump differs when progress shows"
    );
}

#[test]
fn ctrl_c_on_a_terminal_clears_the_bars_before_its_message() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    // SIGINT after 0.7 s, while the bars show: on a quiet 2-core VM this dump takes ~1.4 s
    // on one thread (it finished before a SIGINT at 1.5 s), and its rows start within
    // ~0.1 s.
    let cmd = format!(
        "timeout -s INT 0.7 {} --no-defaults --socket={} -uroot --threads=1 --chunk-size=20000 \
         --dir={} big",
        env!("CARGO_BIN_EXE_rdump"),
        server().socket().display(),
        dir.display()
    );
    let out = Command::new("script")
        .args(["-qefc", &cmd, "/dev/null"])
        .env("TERM", "xterm")
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout).into_owned();
    let message = screen
        .rfind("rdump: interrupted by SIGINT")
        .unwrap_or_else(|| panic!("no message:\n{screen:?}"));
    let (before, after) = screen.split_at(message);
    let last_bar = before
        .rfind("rows (estimate)")
        .unwrap_or_else(|| panic!("no bar before the message:\n{screen:?}"));
    // Each line of the bars is erased (ESC[2K) after their last drawing, and nothing is
    // drawn after the message.
    let erased = before[last_bar..].matches("\x1b[2K").count();
    assert!(
        erased >= 2,
        "bar lines left above the message: {:?}",
        &before[last_bar..]
    );
    assert!(
        !after.contains("rows (estimate)") && !after.contains("thread 0:"),
        "a bar after the message: {after:?}"
    );
    assert_not_a_dump(&dir);
}

/// Peak RSS of a child (kilobytes): the high-water mark of its own memory (`VmHWM` in
/// /proc/PID/status), read every few milliseconds until it exits. Not wait4's `ru_maxrss`:
/// a child spawned with vfork/posix_spawn shares this test process's memory until it
/// execs, and the kernel keeps that high-water mark, so `ru_maxrss` reported the test
/// harness's RSS (200 MB after another test had held two dumps in memory), not rdump's.
fn run_measuring_rss(mut cmd: Command) -> (std::process::ExitStatus, i64) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0i64;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            let hwm = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<i64>().ok());
            peak = peak.max(hwm.unwrap_or(0));
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status, peak);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn memory_stays_bounded_with_eight_threads() {
    let _serial = serial();
    for (label, extra) in [
        ("sql", vec!["--threads=8", "--chunk-size=50000"]),
        (
            "csv+zstd",
            vec![
                "--threads=8",
                "--chunk-size=50000",
                "--format=csv",
                "--zstd",
            ],
        ),
        ("one chunk", vec!["--threads=8", "--chunk-size=100000000"]),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let (status, rss_kb) = run_measuring_rss(rdump_dir(&tmp.path().join("d"), &extra));
        assert!(status.success(), "[{label}] failed");
        eprintln!("[{label}] peak RSS {} MB", rss_kb / 1024);
        assert!(
            rss_kb < 64 * 1024,
            "[{label}] peak RSS {rss_kb} kB is over 64 MB"
        );
    }
}

/// Whether some "…/s" rate on the screen has four decimals (indicatif's `{per_sec}`).
fn has_four_decimal_rate(screen: &str) -> bool {
    screen.split("/s").any(|before| {
        let tail: Vec<char> = before.chars().rev().take(5).collect();
        tail.len() == 5 && tail[..4].iter().all(|c| c.is_ascii_digit()) && tail[4] == '.'
    })
}
