//! Failure modes: a failed or interrupted dump never looks complete. Wrong passwords,
//! unreachable servers, unknown databases and tables, usage errors, SQL errors, a
//! connection or query killed mid-dump, Ctrl-C and SIGTERM mid-dump, a full disk and a
//! missing output directory each end with mysqldump's exit code, one `rdump: ...` message
//! on stderr that names the server and the object (with the server's own error text), no
//! `-- Dump completed` line, no file at the `-r` path (an older file there stays as it was)
//! and no leftover `.rdump-partial` temp file. Passwords never reach stdout, stderr or the
//! dump. Successful result files are created with mode 0600.
//!
//! One server serves every test of this file (started on first use, stopped at process
//! exit); the tests that interrupt a dump stream the one-million-row table `big`.`t`
//! (~67 MB of SQL, ~2.7 s for a debug build) and each connect as their own account, so a
//! `KILL` finds exactly the connection of its own test.

mod common;

use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Server, ServerOptions};

const RDUMP: &str = env!("CARGO_BIN_EXE_rdump");

/// Rows of `big`.`t`: a debug build needs ~2.7 s to dump them, a hundred times what the
/// interrupting tests need to catch the dump while it streams.
const BIG_ROWS: u32 = 1_000_000;
/// Password of the per-test accounts made by [`own_account`].
const OWN_PASSWORD: &str = "own-account-pw";
/// How long an interrupted rdump may take to exit before the test gives up.
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// The shared server.

struct Fixture {
    server: Server,
    /// Set once `big`.`t` exists (made by the first test that needs it).
    big: OnceLock<()>,
}

static SHARED: Mutex<Option<Arc<Fixture>>> = Mutex::new(None);

/// The server of this test binary, with `errs`.`t` (1000 rows, ~100 KB of SQL: smaller
/// than rdump's 256 KiB write buffer). Started by the first test that asks; stopped by an
/// `atexit` hook (a `static` is never dropped) so its directory does not outlive the run.
fn fixture() -> Arc<Fixture> {
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(f) = shared.as_ref() {
        return Arc::clone(f);
    }
    let server = Server::start(ServerOptions::default());
    server.sql(
        "CREATE DATABASE errs;
         CREATE TABLE errs.t (id INT PRIMARY KEY, v VARCHAR(100));
         USE errs;
         INSERT INTO t SELECT seq, REPEAT('x', 90) FROM seq_1_to_1000;",
    );
    // SAFETY: registers a plain `extern "C" fn` that never unwinds.
    unsafe {
        libc::atexit(stop_shared_server);
    }
    let f = Arc::new(Fixture {
        server,
        big: OnceLock::new(),
    });
    *shared = Some(Arc::clone(&f));
    f
}

extern "C" fn stop_shared_server() {
    let taken = match SHARED.lock() {
        Ok(mut g) => g.take(),
        Err(e) => e.into_inner().take(),
    };
    // Every test has finished by now: this is the last reference, and Server's Drop
    // stops mariadbd and removes its directory.
    drop(taken);
}

/// Makes `big`.`t` (once): `BIG_ROWS` rows of ~60 bytes, from MariaDB's SEQUENCE engine.
fn big_table(f: &Fixture) {
    f.big.get_or_init(|| {
        let t = Instant::now();
        f.server.sql(&format!(
            "CREATE DATABASE big;
             CREATE TABLE big.t (id INT PRIMARY KEY, v VARCHAR(100)) ENGINE=InnoDB;
             USE big;
             INSERT INTO t SELECT seq, REPEAT(CONCAT('row-', seq, '-'), 5)
               FROM seq_1_to_{BIG_ROWS};"
        ));
        eprintln!("made big.t ({BIG_ROWS} rows) in {:.2?}", t.elapsed());
    });
}

/// An account of its own (`ALL PRIVILEGES`, password [`OWN_PASSWORD`]) for a test that
/// must find its rdump's connection in the process list.
fn own_account(server: &Server, user: &str) {
    server.sql(&format!(
        "CREATE USER IF NOT EXISTS '{user}'@'localhost' IDENTIFIED BY '{OWN_PASSWORD}';
         GRANT ALL PRIVILEGES ON *.* TO '{user}'@'localhost';"
    ));
}

// ---------------------------------------------------------------------------
// Running rdump.

/// `--socket=<socket> -urdump -p<password>`.
fn over_socket(server: &Server) -> Vec<String> {
    vec![
        format!("--socket={}", server.socket().display()),
        format!("-u{}", server.user()),
        format!("-p{}", server.password()),
    ]
}

/// `--socket=<socket> -u<user> -p<OWN_PASSWORD>`.
fn as_account(server: &Server, user: &str) -> Vec<String> {
    vec![
        format!("--socket={}", server.socket().display()),
        format!("-u{user}"),
        format!("-p{OWN_PASSWORD}"),
    ]
}

/// `--protocol=tcp -h127.0.0.1 -P<port> -urdump -p<password>`.
fn over_tcp(server: &Server, password: &str) -> Vec<String> {
    vec![
        "--protocol=tcp".into(),
        "-h127.0.0.1".into(),
        format!("-P{}", server.port()),
        format!("-u{}", server.user()),
        format!("-p{password}"),
    ]
}

/// `rdump --no-defaults <conn...> <args...>` with stdin closed.
fn rdump(conn: &[String], args: &[&str]) -> Command {
    let mut cmd = Command::new(RDUMP);
    cmd.arg("--no-defaults")
        .args(conn)
        .args(args)
        .stdin(Stdio::null());
    cmd
}

/// How an rdump run ended.
struct Outcome {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

impl Outcome {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn describe(&self) -> String {
        let out = self.stdout_text();
        let tail: String = out
            .chars()
            .rev()
            .take(400)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!(
            "exit code {:?}\n--- stderr ---\n{}\n--- stdout ({} bytes), tail ---\n{tail}",
            self.code,
            self.stderr,
            self.stdout.len()
        )
    }

    fn assert_code(&self, code: i32) {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit code {code}; {}",
            self.describe()
        );
    }

    /// The one `rdump: ...` line on stderr: a failure is one message, not a cascade.
    fn message(&self) -> &str {
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert!(
            lines.len() == 1 && lines[0].starts_with("rdump: "),
            "expected exactly one `rdump: ...` line on stderr; {}",
            self.describe()
        );
        lines[0]
    }

    /// The first stderr line of a usage error (a `Use --help` hint may follow).
    fn usage_message(&self) -> &str {
        let first = self.stderr.lines().next().unwrap_or("");
        assert!(
            first.starts_with("rdump: "),
            "expected a `rdump: ...` line on stderr; {}",
            self.describe()
        );
        first
    }

    fn assert_not_completed(&self) {
        assert!(
            !self.stdout_text().contains("Dump completed"),
            "a failed dump printed `Dump completed`; {}",
            self.describe()
        );
    }

    fn assert_nowhere(&self, secret: &str) {
        assert!(
            !self.stderr.contains(secret),
            "stderr contains the password {secret:?}; {}",
            self.describe()
        );
        assert!(
            !self.stdout_text().contains(secret),
            "stdout contains the password {secret:?}; {}",
            self.describe()
        );
    }
}

fn run(mut cmd: Command) -> Outcome {
    let out = cmd.output().expect("run rdump");
    Outcome {
        code: out.status.code(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn assert_contains(message: &str, part: &str) {
    assert!(
        message.contains(part),
        "message does not contain {part:?}:\n{message}"
    );
}

/// An rdump running in the background; its stdout and stderr are drained by threads.
/// Killed (SIGKILL) on drop if still running, e.g. when the test panics.
struct Running {
    child: Child,
    stdout_len: Arc<AtomicUsize>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    /// Stopped by [`Running::wait_until`], not yet resumed.
    stopped: bool,
}

impl Running {
    fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rdump");
        let stdout_len = Arc::new(AtomicUsize::new(0));
        let mut out = child.stdout.take().unwrap();
        let len = Arc::clone(&stdout_len);
        let stdout = std::thread::spawn(move || {
            let mut all = Vec::new();
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                match out.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        all.extend_from_slice(&chunk[..n]);
                        len.store(all.len(), Ordering::Relaxed);
                    }
                }
            }
            all
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = err.read_to_end(&mut all);
            all
        });
        Running {
            child,
            stdout_len,
            stdout: Some(stdout),
            stderr: Some(stderr),
            stopped: false,
        }
    }

    fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    /// Waits until `ready()`, and leaves rdump stopped (SIGSTOP) there, so it cannot
    /// finish before the test's KILL or signal (see [`common::stop_when`]); [`signal`]
    /// and [`finish`] let it go on. Panics if rdump exits first.
    /// `ready` is given the bytes rdump has written to stdout so far.
    fn wait_until(&mut self, what: &str, mut ready: impl FnMut(usize) -> bool) {
        let len = Arc::clone(&self.stdout_len);
        let child = &mut self.child;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            common::stop_when(child, what, || ready(len.load(Ordering::Relaxed)))
        }));
        self.stopped = outcome.is_ok();
        if let Err(e) = outcome {
            let status = self.child.try_wait().ok().flatten().and_then(|s| s.code());
            let described = self.collect(status).describe();
            let e = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{e} (make big.t bigger if it finished); {described}");
        }
    }

    fn assert_running(&mut self, before: &str) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let outcome = self.collect(status.code());
            panic!(
                "rdump exited before {before} (make big.t bigger if it finished); {}",
                outcome.describe()
            );
        }
    }

    /// Sends `signal`, then lets a stopped rdump go on to receive it.
    fn signal(&mut self, signal: libc::c_int) {
        self.assert_running("the signal");
        common::signal(&self.child, signal);
        self.resume();
    }

    fn resume(&mut self) {
        if std::mem::take(&mut self.stopped) {
            common::resume(&self.child);
        }
    }

    /// Waits (up to [`EXIT_TIMEOUT`]) for rdump to exit on its own.
    fn finish(mut self) -> Outcome {
        self.resume();
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return self.collect(status.code()),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let outcome = self.collect(None);
                    panic!(
                        "rdump did not exit within {EXIT_TIMEOUT:?}; {}",
                        outcome.describe()
                    );
                }
            }
        }
    }

    fn collect(&mut self, code: Option<i32>) -> Outcome {
        let stdout = self.stdout.take().map(|h| h.join().unwrap_or_default());
        let stderr = self.stderr.take().map(|h| h.join().unwrap_or_default());
        Outcome {
            code,
            stdout: stdout.unwrap_or_default(),
            stderr: String::from_utf8_lossy(&stderr.unwrap_or_default()).into_owned(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// Files.

/// Names in `dir` (hidden ones too), sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Total size of the `.rdump-partial` temp files in `dir` (0 when there are none).
fn partial_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".rdump-partial"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

fn assert_no_partial(dir: &Path) {
    let left: Vec<String> = entries(dir)
        .into_iter()
        .filter(|n| n.ends_with(".rdump-partial"))
        .collect();
    assert!(
        left.is_empty(),
        "temp files left in {}: {left:?}",
        dir.display()
    );
}

const OLDER_DUMP: &str = "-- an older, complete dump\n-- Dump completed on 2001-01-01\n";

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::Builder::new()
            .prefix("rdump-tmpfs")
            .tempdir()
            .map_err(|e| format!("cannot make a mount point: {e}"))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let path = CString::new(self.dir.path().as_os_str().as_bytes()).unwrap();
        // SAFETY: umount2 with a valid NUL-terminated path; then TempDir removes the
        // (now empty) mount point.
        unsafe {
            libc::umount2(path.as_ptr(), libc::MNT_DETACH);
        }
    }
}

/// An ext4 filesystem of `size` in an image file, mounted (loop) on a fresh directory,
/// unmounted on drop: a real disk's direct and asynchronous writes, which tmpfs does not
/// have (its writes complete before `io_submit` returns).
struct Ext4 {
    mount: Tmpfs,
    _image: tempfile::TempDir,
}

impl Ext4 {
    fn mount(size: &str) -> Result<Ext4, String> {
        let image_dir = tempfile::tempdir().map_err(|e| format!("no image dir: {e}"))?;
        let image = image_dir.path().join("fs.img");
        let run = |cmd: &mut Command| -> Result<(), String> {
            let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "{cmd:?} failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Ok(())
        };
        run(Command::new("truncate").args(["-s", size]).arg(&image))?;
        run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image))?;
        let dir = tempfile::Builder::new()
            .prefix("rdump-ext4")
            .tempdir()
            .map_err(|e| format!("cannot make a mount point: {e}"))?;
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(dir.path()))?;
        Ok(Ext4 {
            mount: Tmpfs { dir },
            _image: image_dir,
        })
    }

    fn path(&self) -> &Path {
        self.mount.path()
    }
}

/// A 1 MiB tmpfs, or `None` (with the reason printed) where mounting is not allowed.
fn tiny_disk() -> Option<Tmpfs> {
    match Tmpfs::mount("1m") {
        Ok(t) => Some(t),
        Err(reason) => {
            eprintln!("SKIPPED: needs a tmpfs (root, CAP_SYS_ADMIN): {reason}");
            None
        }
    }
}

// ---------------------------------------------------------------------------
// Passwords and connecting.

#[test]
fn wrong_password_over_tcp_is_access_denied_exit_2_without_echoing_the_password() {
    let f = fixture();
    let s = &f.server;
    let out = run(rdump(&over_tcp(s, "WRONGPASS"), &["errs"]));
    out.assert_code(2);
    let msg = out.message();
    assert_contains(msg, "Access denied");
    assert_contains(msg, &format!("127.0.0.1:{}", s.port()));
    out.assert_nowhere("WRONGPASS");
    assert!(out.stdout.is_empty(), "{}", out.describe());
}

#[test]
fn the_right_password_never_appears_in_messages_of_a_failed_dump() {
    let f = fixture();
    let s = &f.server;
    // Over TCP, failing on an unknown database.
    let out = run(rdump(&over_tcp(s, s.password()), &["nosuchdb"]));
    out.assert_code(2);
    out.message();
    out.assert_nowhere(s.password());
    // Over the socket, verbose, failing on an unknown table.
    let out = run(rdump(
        &over_socket(s),
        &["--verbose", "errs", "nosuchtable"],
    ));
    out.assert_code(6);
    out.assert_nowhere(s.password());
}

#[test]
fn the_password_never_appears_in_a_successful_dump_or_its_messages() {
    let f = fixture();
    let s = &f.server;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.sql");
    let r = format!("-r{}", path.display());
    let out = run(rdump(
        &over_tcp(s, s.password()),
        &["--verbose", &r, "errs"],
    ));
    out.assert_code(0);
    out.assert_nowhere(s.password());
    let dump = fs::read_to_string(&path).unwrap();
    assert_contains(&dump, "-- Dump completed");
    assert!(
        !dump.contains(s.password()),
        "the dump file contains the password"
    );
}

/// mysqldump overwrites the password in its argv so `ps` cannot show it; rdump does too.
#[test]
fn the_password_is_masked_in_the_process_command_line() {
    let f = fixture();
    let s = &f.server;
    big_table(&f);
    let dir = tempfile::tempdir().unwrap();
    let r = format!("-r{}", dir.path().join("dump.sql").display());
    let mut conn = over_tcp(s, s.password());
    conn.push(format!("--password={}", s.password()));
    let mut dump = Running::spawn(rdump(&conn, &[&r, "big"]));
    dump.wait_until("rows reached the temp file", |_| {
        partial_bytes(dir.path()) > 0
    });
    let cmdline = fs::read(format!("/proc/{}/cmdline", dump.pid())).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    dump.signal(libc::SIGINT);
    let _ = dump.finish();
    assert!(
        !cmdline.contains(s.password()),
        "password visible: {cmdline}"
    );
    let masked = "x".repeat(s.password().len());
    assert!(cmdline.contains(&format!(" -p{masked} ")), "{cmdline}");
    assert!(
        cmdline.contains(&format!(" --password={masked} ")),
        "{cmdline}"
    );
}

#[test]
fn unreachable_tcp_port_is_exit_2_naming_the_address() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conn = vec![
        "--protocol=tcp".into(),
        "-h127.0.0.1".into(),
        format!("-P{port}"),
        "-urdump".into(),
        "-psome-password".into(),
    ];
    let out = run(rdump(&conn, &["errs"]));
    out.assert_code(2);
    // As the client library says it (naming the port too, as MySQL's clients do); it
    // never connected, so no "Lost connection".
    assert_eq!(
        out.message(),
        format!(
            "rdump: Got error: 2003: \"Can't connect to server on '127.0.0.1:{port}' (111)\" \
             when trying to connect"
        )
    );
    out.assert_nowhere("some-password");
    assert!(out.stdout.is_empty(), "{}", out.describe());
}

#[test]
fn unknown_host_is_exit_2_as_the_client_library_says_it() {
    let conn = vec![
        "-hno-such-host.invalid".into(),
        "-urdump".into(),
        "-psome-password".into(),
    ];
    let out = run(rdump(&conn, &["errs"]));
    out.assert_code(2);
    let theirs = common::system_dump_message(&["-hno-such-host.invalid", "-urdump", "errs"]);
    assert_eq!(
        out.message().strip_prefix("rdump: "),
        theirs.strip_prefix("mariadb-dump: "),
        "{}",
        out.describe()
    );
    assert_contains(
        out.message(),
        "2005: \"Unknown server host 'no-such-host.invalid'",
    );
}

#[test]
fn missing_socket_is_exit_2_naming_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("no-server-here.sock");
    let conn = vec![
        format!("--socket={}", socket.display()),
        "-urdump".into(),
        "-psome-password".into(),
    ];
    let out = run(rdump(&conn, &["errs"]));
    out.assert_code(2);
    // Word for word mariadb-dump's message.
    let theirs = common::system_dump_message(&[
        &format!("--socket={}", socket.display()),
        "-urdump",
        "errs",
    ]);
    assert_eq!(
        out.message().strip_prefix("rdump: "),
        theirs.strip_prefix("mariadb-dump: "),
        "{}",
        out.describe()
    );
    assert_contains(
        out.message(),
        &format!(
            "2002: \"Can't connect to local server through socket '{}' (2)\"",
            socket.display()
        ),
    );
    out.assert_nowhere("some-password");
    assert!(out.stdout.is_empty(), "{}", out.describe());
}

// ---------------------------------------------------------------------------
// Unknown objects and usage errors.

#[test]
fn unknown_database_is_exit_2_naming_the_database() {
    let f = fixture();
    let s = &f.server;
    let label = format!("localhost via {}", s.socket().display());
    for args in [
        &["nosuchdb"][..],
        &["-B", "nosuchdb"],
        &["-B", "errs", "nosuchdb"],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let r = format!("-r{}", dir.path().join("dump.sql").display());
        let mut all = args.to_vec();
        all.push(&r);
        let out = run(rdump(&over_socket(s), &all));
        out.assert_code(2);
        let msg = out.message();
        assert_contains(msg, "Unknown database 'nosuchdb'");
        assert_contains(msg, &label);
        assert_eq!(entries(dir.path()), Vec::<String>::new(), "{args:?}");
    }
}

/// A SELECT-only user naming a database it may not see (existing or not) gets the server's
/// 1044 Access denied, not 1049, and every error reads as mariadb-dump's (`Got error:
/// <code>: "<message>" when ...`): the same text after the program's name, plus the server.
#[test]
fn a_database_the_user_cannot_see_is_1044_in_mariadb_dumps_words() {
    let f = fixture();
    let s = &f.server;
    s.sql(&format!(
        "CREATE DATABASE IF NOT EXISTS hidden_1044;
         CREATE USER IF NOT EXISTS 'selonly'@'localhost' IDENTIFIED BY '{OWN_PASSWORD}';
         GRANT SELECT ON errs.* TO 'selonly'@'localhost';"
    ));
    let label = format!("localhost via {}", s.socket().display());
    let conn = as_account(s, "selonly");
    for (args, code) in [
        (&["hidden_1044"][..], "1044"),
        (&["nosuchdb"], "1044"),
        (&["-B", "hidden_1044"], "1044"),
    ] {
        let ours = run(rdump(&conn, args));
        ours.assert_code(2);
        let theirs = run({
            let mut c = Command::new(common::system_dump_bin());
            c.arg("--no-defaults")
                .args(&conn)
                .args(args)
                .stdin(Stdio::null());
            c
        });
        theirs.assert_code(2);
        let msg = ours.message();
        let their_msg = theirs.stderr.trim_end();
        let their_text = their_msg.split_once(": ").expect("program: message").1;
        assert_eq!(
            msg,
            format!("rdump: {label}: {their_text}"),
            "{args:?}: mariadb-dump said {their_msg:?}"
        );
        assert_contains(msg, &format!("Got error: {code}: \"Access denied"));
    }
    // And root, for whom the database does not exist: 1049, as mariadb-dump.
    let out = run(rdump(&over_socket(s), &["nosuchdb"]));
    assert_contains(
        out.message(),
        "Got error: 1049: \"Unknown database 'nosuchdb'\" when selecting the database",
    );
}

#[test]
fn unknown_table_is_exit_6_naming_the_table() {
    let f = fixture();
    let s = &f.server;
    // To stdout: mysqldump prints its header before it looks for the table; rdump may
    // too, but never a `Dump completed` line.
    let out = run(rdump(&over_socket(s), &["errs", "t", "nosuchtable"]));
    out.assert_code(6);
    let msg = out.message();
    assert_contains(msg, "nosuchtable");
    assert_contains(msg, &format!("localhost via {}", s.socket().display()));
    out.assert_not_completed();
    // To a result file: nothing appears.
    let dir = tempfile::tempdir().unwrap();
    let r = format!("-r{}", dir.path().join("dump.sql").display());
    let out = run(rdump(&over_socket(s), &[&r, "errs", "nosuchtable"]));
    out.assert_code(6);
    assert_contains(out.message(), "nosuchtable");
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

/// `--force`, as mysqldump's: a database or named table that does not exist is reported
/// and left out, the rest is dumped, and the exit code is the first error's (2 for a
/// database, 6 for a table); never `Dump completed`.
#[test]
fn force_leaves_out_a_missing_database_or_table() {
    let f = fixture();
    let s = &f.server;
    for (args, code, missing) in [
        (
            &["-B", "nosuchdb", "errs"][..],
            2,
            "Unknown database 'nosuchdb'",
        ),
        (&["errs", "nosuchtable", "t"], 6, "nosuchtable"),
    ] {
        let mut all = args.to_vec();
        all.push("--force");
        let out = run(rdump(&over_socket(s), &all));
        out.assert_code(code);
        out.assert_not_completed();
        assert_contains(&out.stderr, missing);
        assert_contains(
            out.stderr.lines().last().unwrap_or(""),
            "dump incomplete: 1 error(s)",
        );
        assert_contains(&out.stdout_text(), "INSERT INTO `t` VALUES (1,");
    }
}

#[test]
fn unknown_option_is_usage_error_exit_2_with_nothing_on_stdout() {
    // my_getopt's EXIT_UNKNOWN_OPTION, as mariadb-dump.
    let out = run(rdump(&[], &["--no-such-option", "errs"]));
    out.assert_code(2);
    assert_contains(out.usage_message(), "--no-such-option");
    assert!(out.stdout.is_empty(), "{}", out.describe());
}

#[test]
fn single_transaction_with_lock_all_tables_is_usage_error_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let r = format!("-r{}", dir.path().join("dump.sql").display());
    let out = run(rdump(
        &[],
        &["--single-transaction", "--lock-all-tables", &r, "errs"],
    ));
    out.assert_code(1);
    let msg = out.usage_message();
    assert_contains(msg, "--single-transaction");
    assert_contains(msg, "--lock-all-tables");
    assert!(out.stdout.is_empty(), "{}", out.describe());
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

#[test]
fn sql_error_while_dumping_a_table_names_the_table_and_quotes_the_server() {
    let f = fixture();
    let s = &f.server;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.sql");
    fs::write(&path, OLDER_DUMP).unwrap();
    let r = format!("-r{}", path.display());
    let out = run(rdump(&over_socket(s), &["--where=id = = 1", &r, "errs"]));
    out.assert_code(2);
    let msg = out.message();
    assert_contains(msg, "dumping table `errs`.`t`");
    assert_contains(msg, "You have an error in your SQL syntax");
    assert_contains(msg, &format!("localhost via {}", s.socket().display()));
    assert_eq!(entries(dir.path()), vec!["dump.sql"]);
    assert_eq!(fs::read_to_string(&path).unwrap(), OLDER_DUMP);
}

/// mysqldump exits 2 (EX_MYSQLERR) with "Error: Binlogging on server not active".
#[test]
fn master_data_without_binary_log_exits_2_like_mysqldump() {
    let f = fixture();
    let s = &f.server;
    let out = run(rdump(&over_socket(s), &["--master-data=2", "errs"]));
    out.assert_code(2);
    out.message();
    out.assert_not_completed();
}

// ---------------------------------------------------------------------------
// Interrupted dumps.

/// The id of the one connection of `user` that runs a SELECT on `big`.`t`.
fn select_of(server: &Server, user: &str) -> String {
    let ids = server.sql_rows(&format!(
        "SELECT ID FROM information_schema.PROCESSLIST
          WHERE USER = '{user}' AND INFO LIKE 'SELECT%FROM `big`.`t`%'"
    ));
    assert_eq!(ids.len(), 1, "connections of {user} reading big.t: {ids:?}");
    ids[0][0].clone()
}

#[test]
fn killed_connection_mid_dump_to_file_leaves_no_result_and_keeps_the_older_file() {
    let f = fixture();
    let s = &f.server;
    big_table(&f);
    own_account(s, "kill_file");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.sql");
    fs::write(&path, OLDER_DUMP).unwrap();
    let r = format!("-r{}", path.display());
    let mut dump = Running::spawn(rdump(
        &as_account(s, "kill_file"),
        &[&r, "--threads=1", "big"],
    ));
    dump.wait_until("rows reached the temp file", |_| {
        partial_bytes(dir.path()) > 0
    });
    let id = select_of(s, "kill_file");
    dump.assert_running("the KILL");
    s.sql(&format!("KILL {id}"));
    let out = dump.finish();
    // mysqldump: an error while reading rows is a consistency failure (3).
    out.assert_code(3);
    assert_contains(out.message(), " at row: ");
    let msg = out.message();
    assert_contains(msg, "dumping table `big`.`t`");
    assert_contains(msg, &format!("localhost via {}", s.socket().display()));
    assert_eq!(entries(dir.path()), vec!["dump.sql"]);
    assert_eq!(fs::read_to_string(&path).unwrap(), OLDER_DUMP);
}

#[test]
fn killed_connection_mid_dump_to_stdout_never_prints_dump_completed() {
    let f = fixture();
    let s = &f.server;
    big_table(&f);
    own_account(s, "kill_stdout");
    let mut dump = Running::spawn(rdump(
        &as_account(s, "kill_stdout"),
        &["--threads=1", "big"],
    ));
    dump.wait_until("1 MB of rows on stdout", |stdout| stdout > 1 << 20);
    let id = select_of(s, "kill_stdout");
    dump.assert_running("the KILL");
    s.sql(&format!("KILL {id}"));
    let out = dump.finish();
    // mysqldump: an error while reading rows is a consistency failure (3).
    out.assert_code(3);
    assert_contains(out.message(), " at row: ");
    assert_contains(out.message(), "dumping table `big`.`t`");
    assert_contains(&out.stdout_text(), "INSERT INTO `t` VALUES");
    out.assert_not_completed();
}

#[test]
fn killed_query_mid_dump_reports_the_server_error() {
    let f = fixture();
    let s = &f.server;
    big_table(&f);
    own_account(s, "kill_query");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.sql");
    let r = format!("-r{}", path.display());
    let mut dump = Running::spawn(rdump(
        &as_account(s, "kill_query"),
        &[&r, "--threads=1", "big"],
    ));
    dump.wait_until("rows reached the temp file", |_| {
        partial_bytes(dir.path()) > 0
    });
    let id = select_of(s, "kill_query");
    dump.assert_running("the KILL QUERY");
    s.sql(&format!("KILL QUERY {id}"));
    let out = dump.finish();
    // mysqldump: an error while reading rows is a consistency failure (3).
    out.assert_code(3);
    assert_contains(out.message(), " at row: ");
    let msg = out.message();
    assert_contains(msg, "dumping table `big`.`t`");
    assert_contains(msg, "Query execution was interrupted");
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

/// The single stream read by two connections: killing one reader fails the dump the same
/// way. A chunk (~13 MB) is bigger than what a reader buffers ahead (4 MiB plus the
/// socket's buffer), so the reader of the chunk being written is still in its query when
/// the dump is stopped; with small chunks both readers could have read theirs whole (the
/// wait also checks the process list, in case it stops between two queries).
#[test]
fn killed_reader_of_a_parallel_single_stream_fails_the_dump() {
    let f = fixture();
    let s = &f.server;
    big_table(&f);
    own_account(s, "kill_reader");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.sql");
    let r = format!("-r{}", path.display());
    let mut dump = Running::spawn(rdump(
        &as_account(s, "kill_reader"),
        &[
            &r,
            "--single-transaction",
            "--threads=2",
            "--chunk-size=200000",
            "big",
        ],
    ));
    let mut ids = Vec::new();
    dump.wait_until("rows in the temp file and a reader in its query", |_| {
        ids = s.sql_rows(
            "SELECT ID FROM information_schema.PROCESSLIST
              WHERE USER = 'kill_reader' AND INFO LIKE 'SELECT%FROM `big`.`t`%'",
        );
        !ids.is_empty() && partial_bytes(dir.path()) > 0
    });
    dump.assert_running("the KILL");
    s.sql(&format!("KILL {}", ids[0][0]));
    let out = dump.finish();
    out.assert_code(3);
    assert_contains(out.message(), "dumping table `big`.`t` chunk");
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

#[test]
fn killed_connection_mid_tab_dump_leaves_no_table_files() {
    let f = fixture();
    let s = &f.server;
    big_table(&f);
    own_account(s, "kill_tab");
    let dir = tempfile::tempdir().unwrap();
    let tab = format!("--tab={}", dir.path().display());
    let mut dump = Running::spawn(rdump(&as_account(s, "kill_tab"), &[&tab, "big"]));
    dump.wait_until("rows reached the temp file", |_| {
        partial_bytes(dir.path()) > 0
    });
    let id = select_of(s, "kill_tab");
    dump.assert_running("the KILL");
    s.sql(&format!("KILL {id}"));
    let out = dump.finish();
    // mysqldump: an error while reading rows is a consistency failure (3).
    out.assert_code(3);
    assert_contains(out.message(), " at row: ");
    assert_contains(out.message(), "dumping table `big`.`t`");
    out.assert_not_completed();
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

#[test]
fn sigint_mid_dump_to_file_leaves_no_result_and_no_temp_file() {
    let f = fixture();
    let s = &f.server;
    big_table(&f);
    let dir = tempfile::tempdir().unwrap();
    let r = format!("-r{}", dir.path().join("dump.sql").display());
    let mut dump = Running::spawn(rdump(&over_socket(s), &[&r, "big"]));
    dump.wait_until("rows reached the temp file", |_| {
        partial_bytes(dir.path()) > 0
    });
    dump.signal(libc::SIGINT);
    let out = dump.finish();
    assert!(
        out.code.is_some_and(|c| c != 0),
        "expected a non-zero exit; {}",
        out.describe()
    );
    out.message();
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

#[test]
fn sigint_mid_dump_to_stdout_never_prints_dump_completed() {
    let f = fixture();
    let s = &f.server;
    big_table(&f);
    let mut dump = Running::spawn(rdump(&over_socket(s), &["big"]));
    dump.wait_until("1 MB of rows on stdout", |stdout| stdout > 1 << 20);
    dump.signal(libc::SIGINT);
    let out = dump.finish();
    assert!(
        out.code.is_some_and(|c| c != 0),
        "expected a non-zero exit; {}",
        out.describe()
    );
    out.assert_not_completed();
}

#[test]
fn sigterm_mid_dump_leaves_no_result_file_and_keeps_the_older_file() {
    let f = fixture();
    let s = &f.server;
    big_table(&f);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.sql");
    fs::write(&path, OLDER_DUMP).unwrap();
    let r = format!("-r{}", path.display());
    let mut dump = Running::spawn(rdump(&over_socket(s), &[&r, "big"]));
    dump.wait_until("rows reached the temp file", |_| {
        partial_bytes(dir.path()) > 0
    });
    dump.signal(libc::SIGTERM);
    let out = dump.finish();
    assert!(out.code != Some(0), "{}", out.describe());
    assert_eq!(fs::read_to_string(&path).unwrap(), OLDER_DUMP);
    out.assert_not_completed();
}

#[test]
fn sigterm_mid_dump_removes_its_temp_file() {
    let f = fixture();
    let s = &f.server;
    big_table(&f);
    let dir = tempfile::tempdir().unwrap();
    let r = format!("-r{}", dir.path().join("dump.sql").display());
    let mut dump = Running::spawn(rdump(&over_socket(s), &[&r, "big"]));
    dump.wait_until("rows reached the temp file", |_| {
        partial_bytes(dir.path()) > 0
    });
    dump.signal(libc::SIGTERM);
    let out = dump.finish();
    assert!(out.code != Some(0), "{}", out.describe());
    assert_no_partial(dir.path());
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

// ---------------------------------------------------------------------------
// Write errors and result files.

#[test]
fn full_disk_is_write_error_exit_5_naming_the_path() {
    let Some(disk) = tiny_disk() else { return };
    let f = fixture();
    let s = &f.server;
    big_table(&f);
    let path = disk.path().join("dump.sql");
    let r = format!("-r{}", path.display());
    let out = run(rdump(&over_socket(s), &[&r, "big"]));
    out.assert_code(5);
    let msg = out.message();
    assert_contains(msg, &path.display().to_string());
    assert_contains(msg, "No space left on device");
    assert_eq!(entries(disk.path()), Vec::<String>::new());
}

/// A full ext4 disk under direct writes in flight (Linux AIO into a file grown sparse
/// ahead of them): the error names the file, the exit is 5, and nothing is left (no
/// result, no temporary file, no manifest of a `--dir` dump).
#[test]
fn full_ext4_disk_under_direct_writes_is_write_error_exit_5_naming_the_path() {
    let disk = match Ext4::mount("16M") {
        Ok(d) => d,
        Err(reason) => {
            eprintln!("SKIPPED: needs a loop-mounted ext4 (root): {reason}");
            return;
        }
    };
    let f = fixture();
    let s = &f.server;
    big_table(&f);
    let path = disk.path().join("dump.sql");
    let out = run(rdump(
        &over_socket(s),
        &[&format!("-r{}", path.display()), "big"],
    ));
    out.assert_code(5);
    let msg = out.message();
    assert_contains(msg, &path.display().to_string());
    assert_contains(msg, "No space left on device");
    assert_eq!(entries(disk.path()), vec!["lost+found"]);
    let dir = disk.path().join("d");
    let out = run(rdump(
        &over_socket(s),
        &[&format!("--dir={}", dir.display()), "--threads=2", "big"],
    ));
    out.assert_code(5);
    let msg = out.message();
    assert_contains(msg, &dir.display().to_string());
    assert_contains(msg, "No space left on device");
    let left: Vec<String> = fs::read_dir(&dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !left
            .iter()
            .any(|n| n.contains("manifest") || n.contains("partial")),
        "{left:?}"
    );
}

/// `errs` (~100 KB) sits in rdump's write buffer until the commit flushes it.
#[test]
fn full_disk_at_the_final_flush_is_write_error_exit_5() {
    let Some(disk) = tiny_disk() else { return };
    let f = fixture();
    let s = &f.server;
    // Leave 16 KiB free.
    fs::write(disk.path().join("filler"), vec![0u8; (1024 - 16) * 1024]).unwrap();
    let path = disk.path().join("dump.sql");
    let r = format!("-r{}", path.display());
    let out = run(rdump(&over_socket(s), &[&r, "errs"]));
    out.assert_code(5);
    let msg = out.message();
    assert_contains(msg, &path.display().to_string());
    assert_contains(msg, "No space left on device");
    assert_eq!(entries(disk.path()), vec!["filler"]);
}

#[test]
fn full_stdout_device_is_write_error_exit_5() {
    let Ok(full) = fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("SKIPPED: no /dev/full");
        return;
    };
    let f = fixture();
    let s = &f.server;
    let mut cmd = rdump(&over_socket(s), &["errs"]);
    cmd.stdout(full);
    let out = run(cmd);
    out.assert_code(5);
    let msg = out.message();
    assert_contains(msg, "stdout");
    assert_contains(msg, "No space left on device");
}

/// A file-size limit (`ulimit -f`, here 16 MiB) that every file of the dump fits under
/// is no obstacle, as for mysqldump: the direct writer grows its files ahead of the
/// writes (64 MiB at a time), and growing one past the limit got rdump killed by SIGXFSZ
/// as soon as a file passed 256 KiB.
#[test]
fn a_file_size_limit_the_files_fit_under_is_no_obstacle() {
    use std::os::unix::process::CommandExt;
    let f = fixture();
    let s = &f.server;
    s.sql(
        "CREATE DATABASE IF NOT EXISTS fsize;
         CREATE TABLE IF NOT EXISTS fsize.t (id INT PRIMARY KEY, v VARCHAR(100));
         INSERT IGNORE INTO fsize.t SELECT seq, REPEAT('y', 90) FROM fsize.seq_1_to_20000;",
    );
    let limited_to = |bytes: u64, args: &[&str]| {
        let mut cmd = rdump(&over_socket(s), args);
        // SAFETY: setrlimit only, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: bytes,
                    rlim_max: bytes,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        run(cmd)
    };
    let limited = |args: &[&str]| limited_to(16 << 20, args);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.sql");
    let out = limited(&[&format!("-r{}", path.display()), "fsize"]);
    out.assert_code(0);
    let len = fs::metadata(&path).unwrap().len();
    assert!((1 << 20..16 << 20).contains(&len), "{len} bytes");
    let tab = dir.path().join("tab");
    let out = limited(&[&format!("--dir={}", tab.display()), "fsize"]);
    out.assert_code(0);
    fn largest(dir: &Path) -> u64 {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let meta = e.metadata().unwrap();
                if meta.is_dir() {
                    largest(&e.path())
                } else {
                    meta.len()
                }
            })
            .max()
            .unwrap_or(0)
    }
    let len = largest(&tab);
    assert!(len > 256 << 10, "the largest file has {len} bytes");

    // A file that does not fit (1 MiB): a write error naming it (EFBIG), exit 5, no
    // temporary file left; SIGXFSZ killed rdump there, leaving its temporary file.
    let small = tempfile::tempdir().unwrap();
    let path = small.path().join("dump.sql");
    let out = limited_to(1 << 20, &[&format!("-r{}", path.display()), "fsize"]);
    out.assert_code(5);
    let msg = out.message();
    assert_contains(msg, &path.display().to_string());
    assert_contains(msg, "File too large");
    assert_eq!(entries(small.path()), Vec::<String>::new());
}

/// stdout redirected to a regular file (here appended after bytes already there) is
/// written behind and dropped from the page cache window by window: the file ends up with
/// exactly the dump a pipe gets, after the bytes it had.
#[test]
fn stdout_appended_to_a_regular_file_holds_the_same_dump_as_a_pipe() {
    let f = fixture();
    let s = &f.server;
    big_table(&f);
    let args = ["--skip-dump-date", "big"];
    let piped = run(rdump(&over_socket(s), &args));
    piped.assert_code(0);
    assert!(
        piped.stdout.len() > 12 << 20,
        "crosses several 4 MiB windows"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.sql");
    fs::write(&path, b"-- kept\n").unwrap();
    let file = fs::OpenOptions::new().append(true).open(&path).unwrap();
    let mut cmd = rdump(&over_socket(s), &args);
    cmd.stdout(file);
    run(cmd).assert_code(0);
    let written = fs::read(&path).unwrap();
    assert_eq!(&written[..8], b"-- kept\n");
    assert!(
        written[8..] == piped.stdout[..],
        "the file differs from the piped dump"
    );
}

#[test]
fn result_file_in_a_missing_directory_is_write_error_exit_5_naming_the_path() {
    let f = fixture();
    let s = &f.server;
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("missing/dir/x.sql");
    let r = format!("-r{}", path.display());
    let out = run(rdump(&over_socket(s), &[&r, "errs"]));
    out.assert_code(5);
    let msg = out.message();
    assert_contains(msg, &path.display().to_string());
    assert_contains(msg, "No such file or directory");
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

#[test]
fn result_file_is_created_with_mode_0600() {
    let f = fixture();
    let s = &f.server;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.sql");
    let r = format!("-r{}", path.display());
    let out = run(rdump(&over_socket(s), &[&r, "errs"]));
    out.assert_code(0);
    assert!(out.stdout.is_empty(), "{}", out.describe());
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode of {} is {mode:o}", path.display());
    assert_contains(&fs::read_to_string(&path).unwrap(), "-- Dump completed");
    assert_eq!(entries(dir.path()), vec!["dump.sql"]);
}

/// `-f/--force`: an SQL error on one table is reported and the dump goes on with the
/// others, but it still exits 2 and never claims `-- Dump completed`. Without it the
/// dump stops at the first error.
#[test]
fn force_goes_on_after_an_sql_error_but_never_claims_completion() {
    let f = fixture();
    let s = &f.server;
    s.sql(&format!(
        "CREATE DATABASE IF NOT EXISTS forcedb;
         CREATE TABLE IF NOT EXISTS forcedb.a_readable (id INT PRIMARY KEY);
         CREATE TABLE IF NOT EXISTS forcedb.b_hidden (id INT PRIMARY KEY);
         CREATE TABLE IF NOT EXISTS forcedb.c_readable (id INT PRIMARY KEY);
         REPLACE INTO forcedb.a_readable VALUES (1);
         REPLACE INTO forcedb.c_readable VALUES (3);
         CREATE USER IF NOT EXISTS 'forcer'@'localhost' IDENTIFIED BY '{OWN_PASSWORD}';
         GRANT SELECT ON forcedb.a_readable TO 'forcer'@'localhost';
         GRANT SELECT ON forcedb.c_readable TO 'forcer'@'localhost';
         GRANT INSERT ON forcedb.b_hidden TO 'forcer'@'localhost';"
    ));
    let conn = as_account(s, "forcer");

    let stopped = run(rdump(&conn, &["--skip-lock-tables", "forcedb"]));
    stopped.assert_code(2);
    assert_contains(stopped.message(), "`forcedb`.`b_hidden`");
    assert!(!stopped.stdout_text().contains("INSERT INTO `c_readable`"));
    stopped.assert_not_completed();

    let forced = run(rdump(&conn, &["--skip-lock-tables", "--force", "forcedb"]));
    forced.assert_code(2);
    let out = forced.stdout_text();
    assert_contains(&out, "INSERT INTO `a_readable` VALUES (1)");
    assert_contains(&out, "INSERT INTO `c_readable` VALUES (3)");
    assert!(forced.stderr.contains("b_hidden"), "{}", forced.stderr);
    forced.assert_not_completed();
}

/// `force_rows`: `a_big` (`BIG_ROWS` rows, a trigger) then `b_after` (one row). Made once.
fn force_rows_db(s: &Server) {
    static MADE: OnceLock<()> = OnceLock::new();
    MADE.get_or_init(|| {
        s.sql(&format!(
            "CREATE DATABASE force_rows;
             USE force_rows;
             CREATE TABLE a_big (id INT PRIMARY KEY, v VARCHAR(100)) ENGINE=InnoDB;
             INSERT INTO a_big SELECT seq, REPEAT(CONCAT('row-', seq, '-'), 5)
               FROM seq_1_to_{BIG_ROWS};
             CREATE TRIGGER a_big_ins BEFORE INSERT ON a_big FOR EACH ROW SET NEW.v = NEW.v;
             CREATE TABLE b_after (id INT PRIMARY KEY);
             INSERT INTO b_after VALUES (7);"
        ));
    });
}

/// The id of a connection of `user` reading the rows of `force_rows`.`a_big`, if one is.
fn reader_of_a_big(s: &Server, user: &str) -> Option<String> {
    s.sql_rows(&format!(
        "SELECT ID FROM information_schema.PROCESSLIST
          WHERE USER = '{user}' AND INFO LIKE 'SELECT%FROM `force_rows`.`a_big`%'"
    ))
    .into_iter()
    .next()
    .map(|row| row[0].clone())
}

/// Stops `dump` once `ready` holds (given the bytes on its stdout) and a connection of
/// `user` is reading the rows of `force_rows`.`a_big`; returns that connection's id.
fn stopped_while_reading_a_big(
    dump: &mut Running,
    s: &Server,
    user: &str,
    what: &str,
    ready: impl Fn(usize) -> bool,
) -> String {
    let mut id = None;
    dump.wait_until(what, |stdout| {
        id = reader_of_a_big(s, user);
        ready(stdout) && id.is_some()
    });
    id.expect("a reader of a_big")
}

/// `--force` also goes on after an error in the middle of a table's rows (mysqldump's
/// "at row" error, exit 3, as it exits with its first error's code): the rows read end
/// with a closed statement, the table's triggers and the tables after it are dumped, the
/// output loads, and it never claims completion. Read by one connection, and in chunks by
/// two.
#[test]
fn force_goes_on_after_an_error_in_the_middle_of_a_tables_rows() {
    let f = fixture();
    let s = &f.server;
    force_rows_db(s);
    own_account(s, "force_rows");
    for (label, mode) in [
        ("one connection", vec!["--threads=1"]),
        (
            "two readers",
            vec!["--single-transaction", "--threads=2", "--chunk-size=200000"],
        ),
    ] {
        let mut args = mode.clone();
        args.extend(["--force", "force_rows"]);
        let mut dump = Running::spawn(rdump(&as_account(s, "force_rows"), &args));
        let id = stopped_while_reading_a_big(
            &mut dump,
            s,
            "force_rows",
            "1 MB of rows and a reader in its query",
            |stdout| stdout > 1 << 20,
        );
        dump.assert_running("the KILL QUERY");
        s.sql(&format!("KILL QUERY {id}"));
        let out = dump.finish();
        out.assert_code(3);
        // Each error when it happens, then the summary.
        let msg = out.stderr.lines().last().unwrap_or("");
        assert_contains(msg, "dump incomplete: 1 error(s) skipped under --force");
        assert_contains(msg, "Query execution was interrupted");
        assert_contains(msg, "dumping table `force_rows`.`a_big`");
        out.assert_not_completed();
        let text = out.stdout_text();
        assert_contains(&text, "INSERT INTO `b_after` VALUES (7);");
        assert_contains(&text, "TRIGGER a_big_ins BEFORE INSERT");

        s.sql("DROP DATABASE IF EXISTS force_rows_restored; CREATE DATABASE force_rows_restored;");
        s.restore_with_args(&["force_rows_restored"], &out.stdout)
            .unwrap_or_else(|e| panic!("[{label}] {e}"));
        let restored = s.sql(
            "SELECT CONCAT(COUNT(*), ' ', (SELECT COUNT(*) FROM force_rows_restored.b_after),
                    ' ', (SELECT COUNT(*) FROM information_schema.TRIGGERS
                           WHERE TRIGGER_SCHEMA = 'force_rows_restored'))
               FROM force_rows_restored.a_big",
        );
        let counts: Vec<u64> = restored
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        assert!(
            counts[0] > 0 && counts[0] < u64::from(BIG_ROWS),
            "[{label}] a_big restored with {} rows",
            counts[0]
        );
        assert_eq!(&counts[1..], &[1, 1], "[{label}] b_after rows, triggers");
    }
}

/// `--tab --force`: a table whose rows fail midway gets no data file (a cut-short one would
/// look complete), but its .sql file with the trigger is written, and so are the tables
/// after it.
#[test]
fn force_with_tab_keeps_no_cut_short_data_file() {
    let f = fixture();
    let s = &f.server;
    force_rows_db(s);
    own_account(s, "force_tab");
    let dir = tempfile::tempdir().unwrap();
    let tab = format!("--tab={}", dir.path().display());
    let mut dump = Running::spawn(rdump(
        &as_account(s, "force_tab"),
        &[&tab, "--force", "force_rows"],
    ));
    let id = stopped_while_reading_a_big(
        &mut dump,
        s,
        "force_tab",
        "1 MB of rows in the temp file and a reader in its query",
        |_| partial_bytes(dir.path()) > 1 << 20,
    );
    dump.assert_running("the KILL QUERY");
    s.sql(&format!("KILL QUERY {id}"));
    let out = dump.finish();
    out.assert_code(3);
    assert_contains(out.stderr.lines().last().unwrap_or(""), "dump incomplete");
    out.assert_not_completed();
    assert_eq!(
        entries(dir.path()),
        vec!["a_big.sql", "b_after.sql", "b_after.txt"]
    );
    assert_contains(
        &fs::read_to_string(dir.path().join("a_big.sql")).unwrap(),
        "a_big_ins BEFORE INSERT",
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("b_after.txt")).unwrap(),
        "7\n"
    );
}

/// `--force` after the connection itself is lost in the middle of a table's rows: every
/// later step fails too and is reported, the output still loads, and the exit code is the
/// first error's (3, as mysqldump's).
#[test]
fn force_after_a_lost_connection_exits_with_the_first_errors_code() {
    let f = fixture();
    let s = &f.server;
    force_rows_db(s);
    own_account(s, "force_lost");
    let mut dump = Running::spawn(rdump(
        &as_account(s, "force_lost"),
        &["--threads=1", "--force", "force_rows"],
    ));
    let id = stopped_while_reading_a_big(
        &mut dump,
        s,
        "force_lost",
        "1 MB of rows and a reader in its query",
        |stdout| stdout > 1 << 20,
    );
    dump.assert_running("the KILL");
    s.sql(&format!("KILL {id}"));
    let out = dump.finish();
    out.assert_code(3);
    out.assert_not_completed();
    let last = out.stderr.lines().last().unwrap_or("");
    assert_contains(last, "dump incomplete");
    assert_contains(last, "dumping table `force_rows`.`a_big` at row: ");
    assert!(
        !out.stdout_text().contains("INSERT INTO `b_after`"),
        "{}",
        out.describe()
    );
    s.sql("DROP DATABASE IF EXISTS force_lost_restored; CREATE DATABASE force_lost_restored;");
    s.restore_with_args(&["force_lost_restored"], &out.stdout)
        .unwrap();
    let n: u64 = s
        .sql("SELECT COUNT(*) FROM force_lost_restored.a_big")
        .trim()
        .parse()
        .unwrap();
    assert!(
        n > 0 && n < u64::from(BIG_ROWS),
        "a_big restored with {n} rows"
    );
}

/// The default `--lock-tables` mode read by several connections: a MyISAM table is read by
/// the session that holds its `READ LOCAL` lock. Readers without the lock saw rows inserted
/// after it (concurrent inserts), and an UPDATE waiting for the lock queued their reads
/// behind it while the lock waited for them: the dump hung.
#[test]
fn lock_tables_reads_a_myisam_table_under_its_lock() {
    let f = fixture();
    let s = &f.server;
    s.sql(&format!(
        "CREATE DATABASE mylock;
         USE mylock;
         CREATE TABLE m (id INT PRIMARY KEY, v VARCHAR(100)) ENGINE=MyISAM;
         INSERT INTO m SELECT seq, REPEAT(CONCAT('row-', seq, '-'), 5) FROM seq_1_to_{BIG_ROWS};"
    ));
    own_account(s, "mylock");
    let mut dump = Running::spawn(rdump(&as_account(s, "mylock"), &["--threads=4", "mylock"]));
    dump.wait_until("1 MB of rows on stdout", |stdout| stdout > 1 << 20);
    dump.assert_running("the writes");
    // A concurrent insert at the end of the table (allowed by READ LOCAL), then an UPDATE
    // that waits for the lock until the dump ends.
    let late = BIG_ROWS + 1;
    s.sql(&format!("INSERT INTO mylock.m VALUES ({late}, 'late')"));
    let update = s
        .client_command()
        .args(["-e", "UPDATE mylock.m SET v = 'updated' WHERE id = 5"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let out = dump.finish();
    out.assert_code(0);
    let text = out.stdout_text();
    assert_contains(&text, &format!("({BIG_ROWS},'row-{BIG_ROWS}-"));
    assert!(
        !text.contains(&format!("({late},'late')")),
        "a row inserted after the lock is in the dump"
    );
    assert!(!text.contains("'updated'"), "the UPDATE got in");
    let updated = update.wait_with_output().unwrap();
    assert!(
        updated.status.success(),
        "{}",
        String::from_utf8_lossy(&updated.stderr)
    );
}

/// `--single-transaction` read by several connections: the dump's own session starts its
/// snapshot with the readers', under the same lock (it reads a table's rows itself when
/// `--force` has left the pool without readers), so it has a transaction as they do.
#[test]
fn the_dumps_own_session_joins_the_readers_snapshot() {
    let f = fixture();
    let s = &f.server;
    big_table(&f);
    own_account(s, "snapjoin");
    let mut dump = Running::spawn(rdump(
        &as_account(s, "snapjoin"),
        &["--single-transaction", "--threads=2", "big"],
    ));
    dump.wait_until("1 MB of rows on stdout", |stdout| stdout > 1 << 20);
    dump.assert_running("reading the transactions");
    let in_snapshot = s.sql_value(
        "SELECT COUNT(*) FROM information_schema.INNODB_TRX t
           JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
          WHERE p.USER = 'snapjoin'",
    );
    let connections =
        s.sql_value("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'snapjoin'");
    let out = dump.finish();
    out.assert_code(0);
    assert_eq!(connections, "3", "the dump's session and two readers");
    assert_eq!(in_snapshot, "3", "sessions of the dump with a transaction");
}
