//! Throwaway, real MariaDB servers for rdump's integration tests (no mocks).
//!
//! Use it from an integration-test file with `mod common;`.
//!
//! * [`Server::start`] / [`Server::start_default`] start a private `mariadbd` on a
//!   fresh copy of a datadir *template*, on a free TCP port of 127.0.0.1 and on a
//!   unix socket in a short private directory (`/tmp/rdXXXXXX/`), and wait until it
//!   accepts connections. The template is made once per machine and MariaDB version
//!   (`mariadb-install-db` plus the test users), under
//!   `std::env::temp_dir()/rdump-test-template-<hash>`, guarded by an `flock` and an
//!   atomic rename so that parallel test threads and processes never clash.
//! * Every server has `root@localhost` without password (used by the helpers through
//!   the socket) and a user [`TEST_USER`] / [`TEST_PASSWORD`] at `localhost` and
//!   `127.0.0.1` with `ALL PRIVILEGES ... WITH GRANT OPTION` for the code under test.
//! * Each server has its own `--tmpdir` inside its directory.
//! * The servers run with `--character-set-server=utf8mb4` (as Debian's packaged
//!   config does) and with the *system* time zone `Europe/Berlin` (environment `TZ`),
//!   so `@@time_zone = SYSTEM` has DST: a dumper that forgets
//!   `SET TIME_ZONE='+00:00'` loses TIMESTAMPs in the autumn DST overlap.
//!   Both are overridable through [`ServerOptions`].
//! * Queries go through the real `mariadb` command-line client (sync API):
//!   [`Server::sql`], [`Server::sql_result`], [`Server::sql_rows`]; dumps are
//!   restored as a user would do it, `mariadb < dump.sql`: [`Server::restore`],
//!   [`Server::restore_file`]; fixtures are loaded with `mariadb --comments`
//!   (keeps comments in routine bodies): [`Server::load_file`].
//! * [`connection`] is a server's connection options as `rdump`, `rload` and `rbackup`
//!   take them (its socket, [`TEST_USER`] and [`TEST_PASSWORD`]).
//! * [`Server::restart`] stops a server cleanly and starts it again on the same datadir,
//!   socket and port (a source restarting under a replica or the binlog archiver).
//! * Dropping a [`Server`] stops it (SIGTERM, up to 10 s, then SIGKILL) and removes
//!   its directory; this also happens when a test panics (Drop runs on unwind).
//!   Set `RDUMP_TEST_KEEP=1` to keep the directory of a server whose test panicked.
//! * No orphans: every `mariadbd` is spawned with `prctl(PR_SET_PDEATHSIG, SIGKILL)`,
//!   so it is killed when the test process dies, even by SIGKILL. Because the
//!   kernel ties PDEATHSIG to the *thread* that forked, all servers are forked by one
//!   helper thread that lives as long as the process (a server started in a
//!   short-lived thread therefore survives that thread). Directories left behind by
//!   a killed test process are swept by the next test process (each carries an owner
//!   pid file).
//! * Binaries can be overridden with `RDUMP_TEST_MARIADBD`,
//!   `RDUMP_TEST_MARIADB_INSTALL_DB`, `RDUMP_TEST_MARIADB`, `RDUMP_TEST_MARIADB_DUMP`.
//!
//! [`snapshot_of`] / [`assert_same`] (in `snapshot.rs`) compare the contents of
//! databases on two servers, for dump-and-restore fidelity tests.
#![allow(dead_code)]

pub mod dirdump;
pub mod rbackup;
pub mod s3;
pub mod snapshot;

#[allow(unused_imports)]
pub use snapshot::{
    Difference, Snapshot, assert_same, check_same, diff, row_diff, snapshot_of, table_rows,
};

use std::fs;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// Name of the password-authenticated user created on every server.
pub const TEST_USER: &str = "rdump";
/// Password of [`TEST_USER`].
pub const TEST_PASSWORD: &str = "rdump-secret-pw";

/// Bump when the template's content or the options it is made with change.
const TEMPLATE_LAYOUT: &str = "v1";
/// InnoDB redo log size: the template and every server must agree on it.
const INNODB_LOG_FILE_SIZE: &str = "8M";
/// Name of the file marking a server directory as ours, holding the owner pid.
const OWNER_FILE: &str = "rdump-harness-owner";
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

fn bin(env: &str, default: &str) -> String {
    std::env::var(env).unwrap_or_else(|_| default.to_string())
}

/// Path of the `mariadbd` binary.
pub fn mariadbd_bin() -> String {
    bin("RDUMP_TEST_MARIADBD", "/usr/sbin/mariadbd")
}
/// Path of `mariadb-install-db`.
pub fn install_db_bin() -> String {
    bin(
        "RDUMP_TEST_MARIADB_INSTALL_DB",
        "/usr/bin/mariadb-install-db",
    )
}
/// Path of the `mariadb` command-line client.
pub fn client_bin() -> String {
    bin("RDUMP_TEST_MARIADB", "/usr/bin/mariadb")
}
/// Path of the system's `mariadb-dump` (the reference implementation).
pub fn system_dump_bin() -> String {
    bin("RDUMP_TEST_MARIADB_DUMP", "/usr/bin/mariadb-dump")
}

/// How to start a server. Use `..Default::default()` for fields you do not care
/// about: `ServerOptions { binlog: true, server_id: 2, ..Default::default() }`.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Enable the binary log (`--log-bin=<dir>/binlog --binlog-format=ROW`).
    pub binlog: bool,
    /// `--server-id` (must differ between a primary and its replicas).
    pub server_id: u32,
    /// Extra `mariadbd` arguments, appended last (so they override the defaults).
    pub extra_args: Vec<String>,
    /// `TZ` of the server process, i.e. its SYSTEM time zone (`None`: inherit).
    pub system_time_zone: Option<String>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            binlog: false,
            server_id: 1,
            extra_args: Vec::new(),
            system_time_zone: Some("Europe/Berlin".to_string()),
        }
    }
}

/// A running throwaway MariaDB server; stopped and deleted on drop.
pub struct Server {
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
    port: u16,
    options: ServerOptions,
    start_time: Duration,
    /// `mariadbd`'s arguments, for `restart`.
    args: Vec<String>,
}

/// Spawns `mariadbd` with `args` (its stderr into `dir/stderr.log`).
fn spawn_server(args: &[String], dir: &Path, options: &ServerOptions) -> Result<Child, StartError> {
    let mut cmd = Command::new(mariadbd_bin());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("stderr.log"))
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        );
    if let Some(tz) = &options.system_time_zone {
        cmd.env("TZ", tz);
    }
    spawn_with_parent_death_signal(cmd)
        .map_err(|e| StartError::Other(format!("cannot spawn {}: {e}", mariadbd_bin())))
}

enum StartError {
    PortInUse(String),
    Other(String),
}

impl Server {
    /// Start a server with default options (no binlog, server id 1).
    pub fn start_default() -> Server {
        Server::start(ServerOptions::default())
    }

    /// Start a server; panics (with the tail of its error log) if it does not
    /// accept connections within 60 s. Retries (twice) if the chosen port was taken.
    pub fn start(options: ServerOptions) -> Server {
        start_watchdog();
        let begin = Instant::now();
        let template = template_datadir();
        let mut last = String::new();
        for _attempt in 0..3 {
            match Server::try_start(&options, template, begin) {
                Ok(server) => return server,
                Err(StartError::PortInUse(msg)) => last = msg,
                Err(StartError::Other(msg)) => panic!("{msg}"),
            }
        }
        panic!("could not start mariadbd, port always in use:\n{last}");
    }

    fn try_start(
        options: &ServerOptions,
        template: &Path,
        begin: Instant,
    ) -> Result<Server, StartError> {
        sweep_stale_dirs();
        let dir = tempfile::Builder::new()
            .prefix("rd")
            .tempdir_in("/tmp")
            .map_err(|e| StartError::Other(format!("cannot create server dir: {e}")))?;
        // Written then renamed, so that a concurrent sweep never reads it half-made.
        let owner_tmp = dir.path().join(format!("{OWNER_FILE}.tmp"));
        fs::write(&owner_tmp, std::process::id().to_string())
            .and_then(|()| fs::rename(&owner_tmp, dir.path().join(OWNER_FILE)))
            .map_err(|e| StartError::Other(format!("cannot write owner file: {e}")))?;
        let datadir = dir.path().join("data");
        let out = Command::new("cp")
            .arg("-a")
            .arg("--reflink=auto")
            .arg(template)
            .arg(&datadir)
            .output()
            .map_err(|e| StartError::Other(format!("cannot run cp: {e}")))?;
        if !out.status.success() {
            return Err(StartError::Other(format!(
                "copying template {} failed: {}",
                template.display(),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let tmpdir = dir.path().join("tmp");
        fs::create_dir(&tmpdir)
            .map_err(|e| StartError::Other(format!("cannot create tmpdir: {e}")))?;
        let port = free_port();
        let p = |name: &str| dir.path().join(name).display().to_string();
        let mut args = vec![
            "--no-defaults".to_string(),
            format!("--datadir={}", datadir.display()),
            format!("--socket={}", p("mysql.sock")),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".to_string(),
            format!("--pid-file={}", p("mariadbd.pid")),
            format!("--log-error={}", p("error.log")),
            format!("--tmpdir={}", p("tmp")),
            "--user=root".to_string(),
            format!("--server-id={}", options.server_id),
            "--skip-name-resolve".to_string(),
            "--character-set-server=utf8mb4".to_string(),
            "--collation-server=utf8mb4_general_ci".to_string(),
            "--innodb-buffer-pool-size=32M".to_string(),
            format!("--innodb-log-file-size={INNODB_LOG_FILE_SIZE}"),
            // Throwaway data: trade durability for speed.
            "--innodb-flush-log-at-trx-commit=2".to_string(),
            "--innodb-doublewrite=0".to_string(),
            "--innodb-temp-data-file-path=ibtmp1:1M:autoextend".to_string(),
            "--innodb-fast-shutdown=3".to_string(),
            // Many parallel servers would exhaust fs.aio-max-nr.
            "--innodb-use-native-aio=0".to_string(),
        ];
        if options.binlog {
            args.push(format!("--log-bin={}", p("binlog")));
            args.push("--binlog-format=ROW".to_string());
        }
        args.extend(options.extra_args.iter().cloned());

        let child = spawn_server(&args, dir.path(), options)?;
        let mut server = Server {
            child: Some(child),
            dir: Some(dir),
            port,
            options: options.clone(),
            start_time: Duration::ZERO,
            args,
        };
        server.wait_ready()?;
        server.start_time = begin.elapsed();
        Ok(server)
    }

    /// Stops the server (SIGTERM, a clean shutdown) and starts it again on the same
    /// datadir, socket and port; panics if it does not come back.
    pub fn restart(&mut self) {
        self.stop();
        let child = spawn_server(&self.args, self.dir(), &self.options)
            .unwrap_or_else(|_| panic!("cannot restart mariadbd"));
        self.child = Some(child);
        if self.wait_ready().is_err() {
            panic!(
                "mariadbd did not come back after a restart:\n{}",
                self.error_log_tail(40)
            );
        }
    }

    /// `restart` with `arg` appended to the server's arguments (kept for later restarts;
    /// a later `--option=value` overrides an earlier one).
    #[allow(dead_code)]
    pub fn restart_with(&mut self, arg: &str) {
        self.args.push(arg.to_string());
        self.restart();
    }

    fn wait_ready(&mut self) -> Result<(), StartError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                let log = self.error_log_tail(40);
                let msg = format!(
                    "mariadbd exited during startup ({status}); tail of {}:\n{log}",
                    self.error_log().display()
                );
                return Err(if log.contains("Address already in use") {
                    StartError::PortInUse(msg)
                } else {
                    StartError::Other(msg)
                });
            }
            if greeting_received(&self.socket()) && self.sql_result("SELECT 1").is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(StartError::Other(format!(
                    "mariadbd did not accept connections within {START_TIMEOUT:?}; tail of {}:\n{}",
                    self.error_log().display(),
                    self.error_log_tail(40)
                )));
            }
            std::thread::sleep(Duration::from_millis(15));
        }
    }

    /// The server's private directory (holds `data/`, `mysql.sock`, `error.log`,
    /// `binlog.*`).
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("server dir").path()
    }
    /// Unix socket path (always shorter than 108 bytes).
    pub fn socket(&self) -> PathBuf {
        self.dir().join("mysql.sock")
    }
    /// TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }
    /// Data directory.
    pub fn datadir(&self) -> PathBuf {
        self.dir().join("data")
    }
    /// Error log path.
    pub fn error_log(&self) -> PathBuf {
        self.dir().join("error.log")
    }
    /// Base name of the binary log files (`<dir>/binlog`), when enabled.
    pub fn binlog_basename(&self) -> Option<PathBuf> {
        self.options.binlog.then(|| self.dir().join("binlog"))
    }
    /// The password-authenticated test user.
    pub fn user(&self) -> &'static str {
        TEST_USER
    }
    /// Password of [`Server::user`].
    pub fn password(&self) -> &'static str {
        TEST_PASSWORD
    }
    /// `mysql://rdump:...@127.0.0.1:<port>` (for `mysql_async::Opts::from_url`).
    pub fn tcp_url(&self) -> String {
        format!(
            "mysql://{TEST_USER}:{TEST_PASSWORD}@127.0.0.1:{}",
            self.port
        )
    }
    /// Server id given at start.
    pub fn server_id(&self) -> u32 {
        self.options.server_id
    }
    /// Options the server was started with.
    pub fn options(&self) -> &ServerOptions {
        &self.options
    }
    /// Wall time `start` took for this server (template copy to first `SELECT 1`).
    pub fn start_time(&self) -> Duration {
        self.start_time
    }
    /// Pid of the `mariadbd` process.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Last `n` lines of the error log.
    pub fn error_log_tail(&self, n: usize) -> String {
        let text = fs::read(self.error_log())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("(cannot read error log: {e})"));
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// `mariadb --no-defaults -uroot --socket=<socket>`: root over the socket, no
    /// other options; add your own.
    pub fn client_command(&self) -> Command {
        let mut cmd = Command::new(client_bin());
        cmd.arg("--no-defaults")
            .arg("-uroot")
            .arg(format!("--socket={}", self.socket().display()));
        cmd
    }

    /// `mariadb-dump --no-defaults -uroot --socket=<socket> <args>` (the system's
    /// reference dumper); returns stdout, or stderr on failure.
    pub fn system_dump(&self, args: &[&str]) -> Result<Vec<u8>, String> {
        let out = Command::new(system_dump_bin())
            .arg("--no-defaults")
            .arg("-uroot")
            .arg(format!("--socket={}", self.socket().display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", system_dump_bin()))?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Run SQL (one or more `;`-separated statements, fed on stdin, so the client's
    /// `DELIMITER` works too) as root in batch mode without column names and with
    /// `--default-character-set=utf8mb4`. Returns stdout, batch-escaped (`\t`,
    /// `\n`, `\\`, `\0` inside values; NULL prints as `NULL`), or stderr on error.
    pub fn sql_result(&self, sql: &str) -> Result<String, String> {
        let mut cmd = self.client_command();
        cmd.args([
            "--batch",
            "--skip-column-names",
            "--default-character-set=utf8mb4",
        ]);
        let out = run_with_stdin(cmd, sql.as_bytes())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Like [`Server::sql_result`], panicking with the client's stderr on error.
    pub fn sql(&self, sql: &str) -> String {
        self.sql_result(sql)
            .unwrap_or_else(|e| panic!("SQL failed on port {}: {e}\nSQL: {sql}", self.port))
    }

    /// Rows of the last result(s) of `sql`, each value un-escaped (NULL becomes the
    /// string `NULL`: compare with care).
    pub fn sql_rows(&self, sql: &str) -> Vec<Vec<String>> {
        parse_batch(&self.sql(sql))
    }

    /// The single value of a one-row, one-column query.
    pub fn sql_value(&self, sql: &str) -> String {
        let rows = self.sql_rows(sql);
        assert!(
            rows.len() == 1 && rows[0].len() == 1,
            "expected one value from {sql:?}, got {rows:?}"
        );
        rows.into_iter().next().unwrap().into_iter().next().unwrap()
    }

    /// Pipe `sql` into the plain client exactly as a user restoring a dump would:
    /// `mariadb --no-defaults -uroot --socket=.. < dump.sql`. Err carries stderr.
    pub fn restore(&self, sql: &[u8]) -> Result<(), String> {
        self.restore_with_args(&[], sql)
    }

    /// [`Server::restore`] with extra client arguments, e.g. `&["--comments"]`
    /// (the plain client strips `#` and `-- ` comments from routine and trigger
    /// bodies, even inside `/*!50003 ... */`).
    pub fn restore_with_args(&self, args: &[&str], sql: &[u8]) -> Result<(), String> {
        let mut cmd = self.client_command();
        cmd.args(args);
        let out = run_with_stdin(cmd, sql)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "restore failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// [`Server::restore`] with the content of a file.
    pub fn restore_file(&self, path: impl AsRef<Path>) -> Result<(), String> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        self.restore(&bytes)
    }

    /// Load a SQL file (e.g. a fixture) like `mariadb --comments < file`; panics
    /// on error. `--comments` keeps comments inside routine / trigger / event
    /// bodies, which the client strips by default. Use [`Server::restore`] for
    /// dumps: that one is the plain client, as a user would run it.
    pub fn load_file(&self, path: impl AsRef<Path>) {
        let path = path.as_ref();
        let bytes =
            fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        if let Err(e) = self.restore_with_args(&["--comments"], &bytes) {
            panic!("loading {} failed: {e}", path.display());
        }
    }

    /// Stop the server now (what Drop does; the directory stays until drop).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking()
            && std::env::var_os("RDUMP_TEST_KEEP").is_some()
            && let Some(dir) = self.dir.take()
        {
            eprintln!("RDUMP_TEST_KEEP: keeping {}", dir.keep().display());
        }
        // Otherwise TempDir's own Drop removes the directory.
    }
}

fn stop_child(child: &mut Child) {
    // SAFETY: plain kill(2) on the pid of a child we have not reaped yet.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Run `cmd` with `input` on stdin (written from a thread, so large outputs
/// cannot deadlock) and collect its output.
pub fn run_with_stdin(mut cmd: Command, input: &[u8]) -> Result<Output, String> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let mut stdin = child.stdin.take().expect("stdin");
    std::thread::scope(|s| {
        s.spawn(move || {
            // A client that stops early (error) closes its stdin: ignore EPIPE.
            let _ = stdin.write_all(input);
        });
        child
            .wait_with_output()
            .map_err(|e| format!("waiting for {cmd:?}: {e}"))
    })
}

/// Split `--batch` output into rows of un-escaped values.
pub fn parse_batch(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .map(|line| line.split('\t').map(unescape_batch).collect())
        .collect()
}

/// Undo the `mariadb --batch` escaping of one value (`\0 \t \n \r \\`).
pub fn unescape_batch(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('\0'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// `name` as a backtick-quoted identifier.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `s` as a single-quoted SQL string literal (default sql_mode).
pub fn quote_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// A free TCP port on 127.0.0.1 (racy by nature: the caller retries on clash).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// True once the server greets on its socket (it is then accepting connections).
fn greeting_received(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).is_ok()
}

// ---------------------------------------------------------------------------
// Spawning with PR_SET_PDEATHSIG from a process-lifetime thread.

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

pub fn spawn_with_parent_death_signal(mut cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let sender = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("rdump-test-spawner".into())
            .spawn(move || {
                // Never returns while the process lives: PDEATHSIG fires when the
                // *forking thread* exits, so this thread must outlive the servers.
                for (cmd, reply) in rx {
                    let mut cmd = cmd;
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawn rdump-test-spawner thread");
        Mutex::new(tx)
    });
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl: do not outlive it.
            if libc::getppid() != parent {
                return Err(io::Error::other("parent died before exec"));
            }
            Ok(())
        });
    }
    let (reply_tx, reply_rx) = mpsc::channel();
    sender
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("spawner thread gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("spawner thread gone"))?
}

// ---------------------------------------------------------------------------
// Template datadir, shared by all test processes on the machine.

/// The template datadir (made on first use, then reused by every process).
pub fn template_datadir() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let begin = Instant::now();
        let (path, built) = ensure_template();
        if built {
            eprintln!(
                "[rdump-test] built template datadir {} in {:.2?}",
                path.display(),
                begin.elapsed()
            );
        }
        path.join("data")
    })
}

fn ensure_template() -> (PathBuf, bool) {
    let version = Command::new(mariadbd_bin())
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} --version: {e}", mariadbd_bin()));
    let mut key = version.stdout.clone();
    key.extend_from_slice(TEMPLATE_LAYOUT.as_bytes());
    key.extend_from_slice(INNODB_LOG_FILE_SIZE.as_bytes());
    key.extend_from_slice(install_db_bin().as_bytes());
    let base = std::env::temp_dir();
    let path = base.join(format!("rdump-test-template-{:016x}", fnv1a(&key)));
    let ready = path.join("READY");
    if ready.exists() {
        return (path, false);
    }
    let lock_path = base.join(format!(
        "{}.lock",
        path.file_name().unwrap().to_string_lossy()
    ));
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", lock_path.display()));
    // SAFETY: flock on a valid open fd; released when `lock` is closed.
    let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    assert_eq!(
        rc,
        0,
        "flock {}: {}",
        lock_path.display(),
        io::Error::last_os_error()
    );
    if ready.exists() {
        return (path, false); // another process built it while we waited
    }
    // Leftovers of a crashed build (we hold the lock: nobody else is building).
    let _ = fs::remove_dir_all(&path);
    let staging_prefix = format!("{}.tmp-", path.file_name().unwrap().to_string_lossy());
    for entry in fs::read_dir(&base).into_iter().flatten().flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(&staging_prefix)
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    let staging = base.join(format!("{staging_prefix}{}", std::process::id()));
    fs::create_dir_all(&staging).expect("create template staging dir");
    build_template(&staging.join("data"));
    fs::write(staging.join("READY"), &version.stdout).expect("write READY");
    fs::rename(&staging, &path).expect("rename template into place");
    drop(lock);
    (path, true)
}

fn build_template(datadir: &Path) {
    let out = Command::new(install_db_bin())
        .args([
            "--no-defaults",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
            "--user=root",
        ])
        .arg(format!("--datadir={}", datadir.display()))
        .arg(format!("--innodb-log-file-size={INNODB_LOG_FILE_SIZE}"))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", install_db_bin()));
    assert!(
        out.status.success(),
        "mariadb-install-db failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Boot it once (no networking) to create the test users, then shut down cleanly.
    let run = tempfile::Builder::new()
        .prefix("rdt")
        .tempdir_in("/tmp")
        .expect("template run dir");
    let socket = run.path().join("mysql.sock");
    let log = run.path().join("error.log");
    let mut cmd = Command::new(mariadbd_bin());
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", datadir.display()))
        .arg(format!("--socket={}", socket.display()))
        .arg(format!("--log-error={}", log.display()))
        .arg(format!("--pid-file={}", run.path().join("pid").display()))
        .arg(format!("--innodb-log-file-size={INNODB_LOG_FILE_SIZE}"))
        .args([
            "--skip-networking",
            "--user=root",
            "--innodb-buffer-pool-size=32M",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = spawn_with_parent_death_signal(cmd).expect("spawn template mariadbd");
    let client = || {
        let mut c = Command::new(client_bin());
        c.arg("--no-defaults")
            .arg("-uroot")
            .arg(format!("--socket={}", socket.display()));
        c
    };
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "template mariadbd exited ({status}):\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
        if greeting_received(&socket) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "template mariadbd did not start:\n{}",
            fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(15));
    }
    let setup = format!(
        "CREATE USER '{u}'@'localhost' IDENTIFIED BY '{p}';\n\
         CREATE USER '{u}'@'127.0.0.1' IDENTIFIED BY '{p}';\n\
         GRANT ALL PRIVILEGES ON *.* TO '{u}'@'localhost' WITH GRANT OPTION;\n\
         GRANT ALL PRIVILEGES ON *.* TO '{u}'@'127.0.0.1' WITH GRANT OPTION;\n\
         SHUTDOWN;\n",
        u = TEST_USER,
        p = TEST_PASSWORD
    );
    let out = run_with_stdin(client(), setup.as_bytes()).expect("run client on template");
    assert!(
        out.status.success(),
        "template setup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            stop_child(&mut child);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Remove server directories of test processes that died without cleaning up
/// (once per process).
fn sweep_stale_dirs() {
    static SWEPT: OnceLock<()> = OnceLock::new();
    SWEPT.get_or_init(|| {
        let Ok(entries) = fs::read_dir("/tmp") else {
            return;
        };
        for entry in entries.flatten() {
            if !entry.file_name().to_string_lossy().starts_with("rd") {
                continue;
            }
            let Ok(owner) = fs::read_to_string(entry.path().join(OWNER_FILE)) else {
                continue;
            };
            let dead = owner
                .trim()
                .parse::<u32>()
                .is_ok_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
            if dead {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    });
}

/// 64-bit FNV-1a (stable across Rust versions, unlike `DefaultHasher`).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Fails the whole test binary, loudly, if it runs longer than
/// `RDUMP_TEST_WATCHDOG_SECS` (600 by default; every binary normally takes well under a
/// minute; 0 turns it off, as the compare bench does): a hung test then shows up at once
/// instead of at CI's time limit. The servers die with the process (PR_SET_PDEATHSIG).
fn start_watchdog() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let secs = std::env::var("RDUMP_TEST_WATCHDOG_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(600u64);
        if secs == 0 {
            return;
        }
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(secs));
            eprintln!(
                "watchdog: this test binary has run for {secs} s; a test is hung. \
                 Server directories are kept under /tmp/rd*; aborting."
            );
            std::process::abort();
        });
    });
}

/// The one line the system's `mariadb-dump --no-defaults <args>` prints on stderr when it
/// fails (for comparing messages word for word).
pub fn system_dump_message(args: &[&str]) -> String {
    let out = Command::new(system_dump_bin())
        .arg("--no-defaults")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", system_dump_bin()));
    assert!(!out.status.success(), "mariadb-dump {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// Starts two servers at once (each start takes ~0.4 s, mostly waiting).
pub fn start_two(a: ServerOptions, b: ServerOptions) -> (Server, Server) {
    both(move || Server::start(a), move || Server::start(b))
}

/// Runs `a` and `b` on two threads at once (e.g. a shared source's setup and the start of
/// a target) and returns both results; a panic in either is the caller's.
pub fn both<A: Send, B: Send>(
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    std::thread::scope(|s| {
        let a = s.spawn(a);
        let b = s.spawn(b);
        (a.join().unwrap(), b.join().unwrap())
    })
}

/// `server`'s connection options as `rdump`, `rload` and `rbackup` take them: no option
/// files, its socket, [`TEST_USER`] and [`TEST_PASSWORD`].
pub fn connection(server: &Server) -> Vec<String> {
    vec![
        "--no-defaults".into(),
        format!("--socket={}", server.socket().display()),
        format!("-u{}", server.user()),
        format!("-p{}", server.password()),
    ]
}

/// Options for a test server: its server_id, and whether it writes a binlog.
pub fn options(server_id: u32, binlog: bool) -> ServerOptions {
    ServerOptions {
        binlog,
        server_id,
        ..Default::default()
    }
}

/// Lets `child` run in short slices, stopped (SIGSTOP) between them, until `ready()` holds
/// while it is stopped; returns with the child still stopped, so the caller acts on a
/// process that has made exactly the progress `ready` saw (plus any statement already on
/// the server). Whether the child is fast or the machine slow, it cannot finish between
/// the check and the caller's kill: the race a plain poll loop loses on a quick machine.
/// The caller kills it, or signals it and then calls [`resume`]. Panics if the child
/// exits first, or after a minute.
pub fn stop_when(child: &mut Child, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        signal(child, libc::SIGSTOP);
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("the process ended ({status}) before {what}");
        }
        wait_stopped(child);
        if ready() {
            return;
        }
        if Instant::now() >= deadline {
            // Not left stopped behind a failed test.
            let _ = child.kill();
            let _ = child.wait();
            panic!("timed out waiting for {what}");
        }
        resume(child);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until the kernel reports `child` stopped (kill(2) returns before it is).
fn wait_stopped(child: &Child) {
    let stat = format!("/proc/{}/stat", child.id());
    for _ in 0..1000 {
        match fs::read_to_string(&stat) {
            // "pid (comm) S ...": comm may hold anything, so read after its last ')'.
            Ok(s)
                if s.rsplit_once(')').is_some_and(|(_, rest)| {
                    rest.trim_start().starts_with(['T', 't', 'Z', 'X'])
                }) =>
            {
                return;
            }
            Err(_) => return,
            _ => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// Continues a child stopped by [`stop_when`].
pub fn resume(child: &Child) {
    signal(child, libc::SIGCONT);
}

/// Sends `sig` to our own child.
pub fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on the pid of our own child, which the caller has not reaped.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill: {}", io::Error::last_os_error());
}
