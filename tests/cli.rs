//! The `rdump` command line, end to end against real MariaDB servers: option files and
//! passwords (`--defaults-file`, `!include`, `loose-`, `MYSQL_PWD`, `-pSECRET`), `--tab`
//! (files load back with `LOAD DATA` / `mariadb-import` to the same CHECKSUM TABLE),
//! selection (`--where`, `--ignore-table`, named tables, `-B`, `-A`, `--no-data` ...),
//! replication coordinates (`--master-data`, `--gtid`) and the key consistency property
//! (dump + binlog replay from the recorded position reproduces the source), `--system=users`,
//! the output-shape switches (`--compact`, `--skip-comments`, `--skip-dump-date`), and
//! `--help` / `--version`.
//!
//! Servers are few and shared (each starts on first use, in a `OnceLock`):
//! * [`src`]: binlog on, server id 1, loaded once with [`src_setup`]. Tests only *read* it,
//!   so its binlog stays still and coordinate tests can compare with `SHOW MASTER STATUS`.
//! * [`dst`]: no binlog, server id 2. The restore target (every test restores into its own
//!   database or account) and the server without binlog for the `--master-data` error.
//! * The binlog-replay test starts its own writable binlog server (id 3).
//! * [`flush_server`]: binlog on, server id 5, for the `--flush-logs` tests, which rotate its
//!   binlog; they take its lock, so one runs at a time and each sees it quiescent.
//!
//! Every `rdump` child runs with `HOME` set to an empty directory and without `MYSQL_PWD`,
//! and passes `--no-defaults` unless the test is about option files (those use
//! `--defaults-file`, which reads only that file; the one `--defaults-extra-file` test
//! overrides everything the global `/etc` files could set).

mod common;

use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, Once, OnceLock};
use std::time::{Duration, Instant};

use common::{Server, ServerOptions, check_same, row_diff, run_with_stdin, snapshot_of};

// ---------------------------------------------------------------------------
// Shared servers.

/// Password of the account created on the source for `--system=users`.
const APP_PASSWORD: &str = "app-pw-7Qx!";

/// What the shared source holds. `seldb`: tables for selection tests (t2 has a trigger);
/// `otherdb`: a second database; `tabdb`: two identical tables of hard `--tab` values;
/// `charsetdb`: a latin1 table with high bytes and a utf8mb4 table with latin1-representable
/// text; `orderdb.m`: a MyISAM table whose rows are stored out of primary-key order;
/// `cli_app@%`: an account with a password and a grant.
fn src_setup() -> String {
    let all_bytes: String = (0..=255u8).map(|b| format!("{b:02X}")).collect();
    format!(
        r#"
CREATE DATABASE seldb;
USE seldb;
CREATE TABLE seldb.t1 (id INT PRIMARY KEY, v VARCHAR(20));
INSERT INTO seldb.t1 SELECT seq, CONCAT('v', seq) FROM seq_1_to_30;
CREATE TABLE seldb.t2 (id INT PRIMARY KEY, w INT);
INSERT INTO seldb.t2 VALUES (1, 10), (2, 20), (3, 30);
CREATE TABLE seldb.t3 (id INT PRIMARY KEY);
INSERT INTO seldb.t3 VALUES (1);
CREATE TRIGGER t2_bi BEFORE INSERT ON t2 FOR EACH ROW SET NEW.w = NEW.w + 1;
CREATE DATABASE otherdb;
CREATE TABLE otherdb.o1 (id INT PRIMARY KEY);
INSERT INTO otherdb.o1 VALUES (7);
CREATE DATABASE tabdb;
CREATE TABLE tabdb.plain (
  id INT NOT NULL PRIMARY KEY,
  s TEXT NULL,
  b BLOB NULL,
  n INT NULL,
  d DECIMAL(12,3) NULL,
  dt DATETIME NULL
) DEFAULT CHARSET=utf8mb4;
INSERT INTO tabdb.plain VALUES
  (1, 'plain text', x'00', 42, 1.5, '2024-01-02 03:04:05'),
  (2, NULL, NULL, NULL, NULL, NULL),
  (3, 'tab\there\tand\nnewline', x'090A0D', -7, -0.001, '1999-12-31 23:59:59'),
  (4, 'back\\slash \\N and \\\\ two', x'5C4E', 0, 0, '2000-01-01 00:00:00'),
  (5, 'nul\0byte', x'00FF00', NULL, 12345.678, NULL),
  (6, '', x'', 0, NULL, NULL),
  (7, 'crlf\r\nend, comma "double" ''single''', x'22272C0D0A', 1, 2, NULL),
  (8, 'ünïcødé 😀 中文', x'{all_bytes}', 8, 8, '2038-01-19 03:14:08'),
  (9, 'trailing backslash\\', x'5C', 9, NULL, NULL),
  (10, '\\N', x'5C4E', 10, NULL, NULL),
  (11, 'NULL', NULL, 11, NULL, NULL),
  (12, '"', x'22', 12, NULL, NULL),
  (13, ',', x'2C', 13, NULL, NULL);
CREATE TABLE tabdb.csv LIKE tabdb.plain;
INSERT INTO tabdb.csv SELECT * FROM tabdb.plain;
CREATE DATABASE charsetdb;
CREATE TABLE charsetdb.l1 (id INT PRIMARY KEY, s VARCHAR(40)) DEFAULT CHARSET=latin1;
INSERT INTO charsetdb.l1 VALUES (1, 'café'), (2, 'ÿ and é, ß £ ½ ©'), (3, 'ascii'), (4, NULL);
CREATE TABLE charsetdb.u1 (id INT PRIMARY KEY, s VARCHAR(40)) DEFAULT CHARSET=utf8mb4;
INSERT INTO charsetdb.u1 VALUES (1, 'naïve'), (2, 'ÿ and é, ß £ ½ ©'), (3, 'ascii');
CREATE DATABASE orderdb;
CREATE TABLE orderdb.m (id INT PRIMARY KEY, v CHAR(1)) ENGINE=MyISAM;
INSERT INTO orderdb.m VALUES (3, 'c'), (1, 'a'), (4, 'd'), (2, 'b');
CREATE USER 'cli_app'@'%' IDENTIFIED BY '{APP_PASSWORD}';
GRANT SELECT, INSERT ON seldb.* TO 'cli_app'@'%';
-- mariadb-install-db made root@<hostname>, which a --skip-name-resolve server ignores, so
-- SHOW CREATE USER fails for it (in mariadb-dump --system=users too): drop it.
DELETE FROM mysql.global_priv WHERE Host = @@hostname;
DELETE FROM mysql.proxies_priv WHERE Host = @@hostname;
FLUSH PRIVILEGES;
"#
    )
}

static SRC: OnceLock<Server> = OnceLock::new();
static DST: OnceLock<Server> = OnceLock::new();
static FLUSH: OnceLock<Server> = OnceLock::new();
static FLUSH_LOCK: Mutex<()> = Mutex::new(());

/// The shared source: binlog on, loaded once, never written by tests.
fn src() -> &'static Server {
    SRC.get_or_init(|| {
        register_cleanup();
        let s = Server::start(ServerOptions {
            binlog: true,
            server_id: 1,
            ..Default::default()
        });
        s.sql(&src_setup());
        s
    })
}

/// The shared restore target: no binlog; holds `nobin` for the `--master-data` error.
fn dst() -> &'static Server {
    DST.get_or_init(|| {
        register_cleanup();
        let s = Server::start(ServerOptions {
            server_id: 2,
            ..Default::default()
        });
        s.sql("CREATE DATABASE nobin; CREATE TABLE nobin.t (id INT PRIMARY KEY); INSERT INTO nobin.t VALUES (1);");
        s
    })
}

/// The `--flush-logs` server (binlog on, server id 5) with `flushdb` and `flushdb2`, and the
/// guard that keeps the other `--flush-logs` tests off it while the caller rotates its logs.
fn flush_server() -> (MutexGuard<'static, ()>, &'static Server) {
    let guard = FLUSH_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let server = FLUSH.get_or_init(|| {
        register_cleanup();
        let s = Server::start(ServerOptions {
            binlog: true,
            server_id: 5,
            ..Default::default()
        });
        s.sql(
            "CREATE DATABASE flushdb;
             CREATE TABLE flushdb.t (id INT PRIMARY KEY);
             INSERT INTO flushdb.t VALUES (1), (2);
             CREATE DATABASE flushdb2;
             CREATE TABLE flushdb2.t (id INT PRIMARY KEY);
             INSERT INTO flushdb2.t VALUES (3);",
        );
        s
    });
    (guard, server)
}

/// Statics are never dropped: stop the shared servers and remove their directories at exit
/// (PDEATHSIG would kill them anyway, but leave the directories for the next sweep).
fn register_cleanup() {
    static ONCE: Once = Once::new();
    extern "C" fn cleanup() {
        for cell in [&SRC, &DST, &FLUSH] {
            if let Some(server) = cell.get() {
                if let Some(pid) = server.pid() {
                    // SAFETY: kill/waitpid on the pid of a mariadbd child this process spawned.
                    unsafe {
                        libc::kill(pid as libc::pid_t, libc::SIGKILL);
                        libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0);
                    }
                }
                let _ = fs::remove_dir_all(server.dir());
            }
        }
    }
    ONCE.call_once(|| {
        // SAFETY: registering a plain extern "C" function.
        unsafe {
            libc::atexit(cleanup);
        }
    });
}

// ---------------------------------------------------------------------------
// Running rdump and the MariaDB tools.

/// What a child process did.
struct Run {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
    what: String,
}

impl Run {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Panics with stderr unless the exit code is 0; returns stdout as text.
    #[track_caller]
    fn ok(&self) -> String {
        assert_eq!(
            self.code,
            Some(0),
            "{} failed\nstderr:\n{}",
            self.what,
            self.stderr
        );
        self.text()
    }
}

const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `cmd` with stdin closed, collecting its output; kills it after [`CHILD_TIMEOUT`].
fn run(mut cmd: Command) -> Run {
    let what = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + CHILD_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {CHILD_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        code: status.code(),
        stdout: t_out.join().unwrap(),
        stderr: String::from_utf8_lossy(&t_err.join().unwrap()).into_owned(),
        what,
    }
}

/// An empty directory used as `HOME` of every rdump child, so `~/.my.cnf` is never read.
fn empty_home() -> &'static Path {
    static HOME: OnceLock<tempfile::TempDir> = OnceLock::new();
    HOME.get_or_init(|| tempfile::tempdir().expect("temp HOME"))
        .path()
}

/// `rdump` with a clean environment (empty HOME, no MYSQL_PWD / MYSQL_HOST / ports).
fn rdump_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rdump"));
    cmd.env("HOME", empty_home());
    for var in [
        "MYSQL_PWD",
        "MYSQL_HOST",
        "MYSQL_TCP_PORT",
        "MYSQL_UNIX_PORT",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// `rdump <args>` exactly as given.
fn rdump<S: AsRef<OsStr>>(args: &[S]) -> Run {
    let mut cmd = rdump_command();
    cmd.args(args);
    run(cmd)
}

/// `rdump --no-defaults -uroot --socket=<server> <args>`.
fn dump(server: &Server, args: &[&str]) -> Run {
    let mut cmd = rdump_command();
    cmd.arg("--no-defaults")
        .arg("-uroot")
        .arg(format!("--socket={}", server.socket().display()))
        .args(args);
    run(cmd)
}

/// [`dump`] that must succeed; returns the dump as text.
#[track_caller]
fn dump_ok(server: &Server, args: &[&str]) -> String {
    dump(server, args).ok()
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

fn lines_starting<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(prefix)).collect()
}

/// Writes `text` to `dir/name` and returns the path.
fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(&p, text).unwrap();
    p
}

/// `CHECKSUM TABLE db.t EXTENDED` on `server`.
fn checksum(server: &Server, db: &str, table: &str) -> String {
    let rows = server.sql_rows(&format!("CHECKSUM TABLE `{db}`.`{table}` EXTENDED"));
    rows[0][1].clone()
}

/// Asserts that `db.table` has the same CHECKSUM TABLE on both servers, showing the
/// differing rows if not.
#[track_caller]
fn assert_same_checksum(a: &Server, b: &Server, db: &str, table: &str) {
    let (ca, cb) = (checksum(a, db, table), checksum(b, db, table));
    if ca != cb {
        panic!(
            "CHECKSUM TABLE {db}.{table} differs: source {ca}, restored {cb}\n{}",
            row_diff(a, b, db, table, 10)
        );
    }
}

/// Runs SQL on `server` as root through the client with extra client arguments.
#[track_caller]
fn client_sql(server: &Server, client_args: &[&str], sql: &str) {
    let mut cmd = server.client_command();
    cmd.args(client_args);
    let out = run_with_stdin(cmd, sql.as_bytes()).expect("run mariadb");
    assert!(
        out.status.success(),
        "mariadb {client_args:?} failed on {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `(File, Position)` of `SHOW MASTER STATUS`.
fn master_status(server: &Server) -> (String, u64) {
    let rows = server.sql_rows("SHOW MASTER STATUS");
    let row = rows.first().expect("SHOW MASTER STATUS returned no row");
    (row[0].clone(), row[1].parse().expect("binlog position"))
}

/// The `CHANGE MASTER TO MASTER_LOG_FILE='f', MASTER_LOG_POS=n;` line of a dump (possibly
/// behind `-- `): `(commented, file, pos)`.
fn change_master_line(dump: &str) -> Option<(bool, String, u64)> {
    dump.lines().find_map(|l| {
        let (commented, rest) = match l.strip_prefix("-- ") {
            Some(r) => (true, r),
            None => (false, l),
        };
        let rest = rest.strip_prefix("CHANGE MASTER TO MASTER_LOG_FILE='")?;
        let (file, rest) = rest.split_once("', MASTER_LOG_POS=")?;
        let pos = rest.strip_suffix(';')?.parse().ok()?;
        Some((commented, file.to_string(), pos))
    })
}

// ---------------------------------------------------------------------------
// 1. Option files and MYSQL_PWD.

/// The `[client]` lines that log in as the password user over `server`'s socket.
fn client_group(server: &Server) -> String {
    format!(
        "[client]\nuser={}\npassword={}\nsocket={}\n",
        server.user(),
        server.password(),
        server.socket().display()
    )
}

/// The INSERT lines of a dump of `seldb t2` with one row per INSERT and column names.
const T2_SINGLE_ROW_COMPLETE_INSERTS: [&str; 3] = [
    "INSERT INTO `t2` (`id`, `w`) VALUES (1,10);",
    "INSERT INTO `t2` (`id`, `w`) VALUES (2,20);",
    "INSERT INTO `t2` (`id`, `w`) VALUES (3,30);",
];

#[test]
fn defaults_file_client_group_connects_and_tool_groups_shape_the_output() {
    let s = src();
    let dir = tempfile::tempdir().unwrap();
    // [client] alone logs in (user + password + socket: any one missing fails); the
    // [mysqldump] and [rdump] groups set output options; other programs' groups are skipped.
    let cnf = write_file(
        dir.path(),
        "my.cnf",
        &format!(
            "# test option file\n{}\n[mysqld]\nnot-an-rdump-option=1\n\n[mysqldump]\nskip-extended-insert\n\n[rdump]\ncomplete-insert\n",
            client_group(s)
        ),
    );
    let out = rdump(&[&format!("--defaults-file={}", cnf.display()), "seldb", "t2"]).ok();
    let inserts = lines_starting(&out, "INSERT INTO");
    assert_eq!(inserts, T2_SINGLE_ROW_COMPLETE_INSERTS, "dump:\n{out}");
}

#[test]
fn include_directive_reads_a_second_option_file() {
    let s = src();
    let dir = tempfile::tempdir().unwrap();
    // The password lives only in the included file (relative to the including one).
    write_file(
        dir.path(),
        "private/secret.cnf",
        &format!("[client]\npassword={}\n", s.password()),
    );
    let cnf = write_file(
        dir.path(),
        "my.cnf",
        &format!(
            "[client]\nuser={}\nsocket={}\n!include private/secret.cnf\n[mysqldump]\nskip-extended-insert\ncomplete-insert\n",
            s.user(),
            s.socket().display()
        ),
    );
    let out = rdump(&[&format!("--defaults-file={}", cnf.display()), "seldb", "t2"]).ok();
    assert_eq!(
        lines_starting(&out, "INSERT INTO"),
        T2_SINGLE_ROW_COMPLETE_INSERTS
    );
}

#[test]
fn includedir_directive_reads_the_cnf_files_of_a_directory() {
    let s = src();
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "conf.d/10-client.cnf",
        &format!("[client]\npassword={}\n", s.password()),
    );
    write_file(
        dir.path(),
        "conf.d/20-dump.cnf",
        "[mysqldump]\nskip-extended-insert\n[rdump]\ncomplete-insert\n",
    );
    // Not a .cnf file: must be skipped (it would break the dump).
    write_file(
        dir.path(),
        "conf.d/ignored.txt",
        "[client]\nport=1\nprotocol=tcp\n",
    );
    let cnf = write_file(
        dir.path(),
        "my.cnf",
        &format!(
            "[client]\nuser={}\nsocket={}\n!includedir conf.d\n",
            s.user(),
            s.socket().display()
        ),
    );
    let out = rdump(&[&format!("--defaults-file={}", cnf.display()), "seldb", "t2"]).ok();
    assert_eq!(
        lines_starting(&out, "INSERT INTO"),
        T2_SINGLE_ROW_COMPLETE_INSERTS
    );
}

#[test]
fn loose_unknown_option_in_an_option_file_is_tolerated_but_a_plain_one_is_not() {
    let s = src();
    let dir = tempfile::tempdir().unwrap();
    let loose = write_file(
        dir.path(),
        "loose.cnf",
        &format!(
            "{}[mysqldump]\nloose-frobnicate-widgets=1\nloose_no_such_flag\n",
            client_group(s)
        ),
    );
    let r = rdump(&[
        &format!("--defaults-file={}", loose.display()),
        "seldb",
        "t2",
    ]);
    let out = r.ok();
    assert!(out.contains("INSERT INTO `t2`"), "dump:\n{out}");

    let strict = write_file(
        dir.path(),
        "strict.cnf",
        &format!("{}[mysqldump]\nfrobnicate-widgets=1\n", client_group(s)),
    );
    let r = rdump(&[
        &format!("--defaults-file={}", strict.display()),
        "seldb",
        "t2",
    ]);
    // my_getopt's "unknown variable" (an unknown option with a value): exit 7, as
    // mariadb-dump.
    assert_eq!(
        r.code,
        Some(7),
        "an unknown option is a usage error: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains("frobnicate-widgets") && r.stderr.contains("strict.cnf"),
        "the error names the option and the file: {}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
}

#[test]
fn mysql_pwd_supplies_the_password_when_no_other_is_given() {
    let s = src();
    let port = s.port().to_string();
    let args = [
        "--no-defaults",
        "-h127.0.0.1",
        "-P",
        port.as_str(),
        "-u",
        s.user(),
        "seldb",
        "t2",
    ];
    let mut cmd = rdump_command();
    cmd.args(args).env("MYSQL_PWD", s.password());
    let out = run(cmd).ok();
    assert!(out.contains("INSERT INTO `t2` VALUES (1,10)"), "{out}");

    // Control: the same command without MYSQL_PWD is refused by the server.
    let r = rdump(&args);
    assert_eq!(r.code, Some(2), "without MYSQL_PWD: {}", r.stderr);
}

#[test]
fn command_line_password_beats_the_option_file() {
    let s = src();
    let dir = tempfile::tempdir().unwrap();
    let wrong_in_file = write_file(
        dir.path(),
        "wrong.cnf",
        &format!(
            "[client]\nuser={}\npassword=not-the-password-in-file\nsocket={}\n",
            s.user(),
            s.socket().display()
        ),
    );
    let r = rdump(&[
        format!("--defaults-file={}", wrong_in_file.display()),
        format!("--password={}", s.password()),
        "seldb".into(),
        "t2".into(),
    ]);
    r.ok();

    // And the other way round: a wrong command-line password is used, not the file's.
    let right_in_file = write_file(dir.path(), "right.cnf", &client_group(s));
    let r = rdump(&[
        &format!("--defaults-file={}", right_in_file.display()),
        "--password=not-the-password-on-cli",
        "seldb",
        "t2",
    ]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
}

#[test]
fn defaults_extra_file_is_read_after_the_global_option_files() {
    // The global files (/etc/my.cnf, /etc/mysql/my.cnf) are read first and may set a
    // socket, host or protocol; the extra file comes later and overrides them all.
    let s = src();
    let dir = tempfile::tempdir().unwrap();
    let cnf = write_file(
        dir.path(),
        "extra.cnf",
        &format!(
            "{}host=localhost\nprotocol=socket\n[mysqldump]\nskip-extended-insert\ncomplete-insert\n",
            client_group(s)
        ),
    );
    let out = rdump(&[
        &format!("--defaults-extra-file={}", cnf.display()),
        "seldb",
        "t2",
    ])
    .ok();
    assert_eq!(
        lines_starting(&out, "INSERT INTO"),
        T2_SINGLE_ROW_COMPLETE_INSERTS
    );
}

// ---------------------------------------------------------------------------
// 2. Passwords on the command line.

#[test]
fn attached_p_password_connects_and_never_appears_in_output_or_stderr() {
    let s = src();
    let port = s.port().to_string();
    let r = rdump(&[
        "--no-defaults",
        "-h127.0.0.1",
        "-P",
        &port,
        "-u",
        s.user(),
        &format!("-p{}", s.password()),
        "-v",
        "seldb",
    ]);
    let out = r.ok();
    assert!(out.contains("INSERT INTO `t1` VALUES"), "{out}");
    assert!(!r.stderr.is_empty(), "-v should log progress to stderr");
    assert!(!out.contains(s.password()), "password in the dump");
    assert!(
        !r.stderr.contains(s.password()),
        "password in stderr: {}",
        r.stderr
    );
}

#[test]
fn wrong_password_fails_with_exit_2_without_echoing_it() {
    let s = src();
    let port = s.port().to_string();
    let secret = "Wr0ng-Secret-4711";
    let r = rdump(&[
        "--no-defaults",
        "-h127.0.0.1",
        "-P",
        &port,
        "-u",
        s.user(),
        &format!("-p{secret}"),
        "-v",
        "seldb",
    ]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains("Access denied"),
        "the server's refusal is shown: {}",
        r.stderr
    );
    assert!(
        !r.stderr.contains(secret),
        "password in stderr: {}",
        r.stderr
    );
    assert!(!r.text().contains(secret), "password on stdout");
    assert!(!r.text().contains("Dump completed"));
}

/// `-p` without a terminal (the child starts a new session, so it has no controlling
/// terminal) reads the password from stdin, prompting on stderr, as mariadb-dump (glibc's
/// getpass) does: `echo pw | rdump -p ...` in a script.
#[test]
fn bare_p_without_a_terminal_reads_the_password_from_stdin_like_mariadb_dump() {
    use std::os::unix::process::CommandExt;
    let s = src();
    let port = s.port().to_string();
    let piped = |program: &str, input: &str| {
        let mut cmd = if program == "rdump" {
            rdump_command()
        } else {
            Command::new(program)
        };
        cmd.args([
            "--no-defaults",
            "-h127.0.0.1",
            "-P",
            &port,
            "-u",
            s.user(),
            "-p",
        ])
        .args(["--skip-dump-date", "--skip-comments", "seldb", "t2"]);
        // SAFETY: setsid is async-signal-safe; it only detaches the child from the terminal.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        run_with_stdin(cmd, input.as_bytes()).expect("run")
    };
    let input = format!("{}\n", s.password());
    let ours = piped("rdump", &input);
    let theirs = piped(&common::system_dump_bin(), &input);
    let err = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(ours.status.code(), Some(0), "{}", err(&ours));
    assert_eq!(theirs.status.code(), Some(0), "{}", err(&theirs));
    assert!(err(&ours).starts_with("Enter password: "), "{}", err(&ours));
    assert!(!err(&ours).contains(s.password()));
    assert_eq!(
        String::from_utf8_lossy(&ours.stdout)
            .lines()
            .filter(|l| l.starts_with("INSERT INTO `t2`"))
            .count(),
        1
    );
    // A wrong one is refused by the server, as with mariadb-dump.
    let ours = piped("rdump", "wrong\n");
    let theirs = piped(&common::system_dump_bin(), "wrong\n");
    assert_eq!(ours.status.code(), Some(2), "{}", err(&ours));
    assert_eq!(theirs.status.code(), Some(2), "{}", err(&theirs));
}

// ---------------------------------------------------------------------------
// 3. --tab.

/// Restores `dir/<table>.sql` into `tabdb` on the target (created if needed).
fn restore_tab_schema(target: &Server, dir: &Path, table: &str) {
    target.sql("CREATE DATABASE IF NOT EXISTS tabdb");
    let sql = fs::read(dir.join(format!("{table}.sql"))).expect("the .sql file of --tab");
    target
        .restore_with_args(&["tabdb"], &sql)
        .unwrap_or_else(|e| panic!("restoring {table}.sql: {e}"));
    assert_eq!(
        target.sql_value(&format!("SELECT COUNT(*) FROM tabdb.`{table}`")),
        "0"
    );
}

#[test]
fn tab_writes_sql_and_txt_that_restore_and_load_to_the_same_checksum() {
    let (s, d) = (src(), dst());
    let dir = tempfile::tempdir().unwrap();
    let tab = format!("--tab={}", dir.path().display());
    dump_ok(s, &[&tab, "tabdb", "plain"]);
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["plain.sql", "plain.txt"]);
    let schema = fs::read_to_string(dir.path().join("plain.sql")).unwrap();
    assert!(schema.contains("CREATE TABLE `plain`"), "{schema}");
    assert!(!schema.contains("INSERT INTO"), "rows go to plain.txt only");

    restore_tab_schema(d, dir.path(), "plain");
    // mariadb-import --local: LOAD DATA LOCAL INFILE with the default field options into the
    // table named like the file.
    let mut cmd = Command::new("mariadb-import");
    cmd.arg("--no-defaults")
        .arg("-uroot")
        .arg(format!("--socket={}", d.socket().display()))
        .arg("--local")
        .arg("tabdb")
        .arg(dir.path().join("plain.txt"));
    let r = run(cmd);
    r.ok();
    assert!(
        r.text().contains("Records: 13") && r.text().contains("Warnings: 0"),
        "mariadb-import: {}",
        r.text()
    );
    assert_same_checksum(s, d, "tabdb", "plain");
}

#[test]
fn tab_with_csv_field_and_line_options_loads_back_with_matching_load_data() {
    let (s, d) = (src(), dst());
    let dir = tempfile::tempdir().unwrap();
    let tab = format!("--tab={}", dir.path().display());
    dump_ok(
        s,
        &[
            &tab,
            "--fields-terminated-by=,",
            "--fields-optionally-enclosed-by=\"",
            r"--lines-terminated-by=\r\n",
            "tabdb",
            "csv",
        ],
    );
    let txt = fs::read(dir.path().join("csv.txt")).unwrap();
    // Shape: strings enclosed, numbers not, NULL as \N, CRLF line ends.
    let first_line_end = txt.windows(2).position(|w| w == b"\r\n").expect("a CRLF");
    assert_eq!(
        String::from_utf8_lossy(&txt[..first_line_end]),
        r#"1,"plain text","\0",42,1.500,"2024-01-02 03:04:05""#
    );
    let text = String::from_utf8_lossy(&txt);
    assert!(
        text.contains("\r\n2,\\N,\\N,\\N,\\N,\\N\r\n"),
        "row 2 of NULLs as \\N: {text:?}"
    );

    restore_tab_schema(d, dir.path(), "csv");
    let path = dir.path().join("csv.txt");
    client_sql(
        d,
        &["--local-infile=1"],
        &format!(
            r#"LOAD DATA LOCAL INFILE '{}' INTO TABLE tabdb.csv FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '"' LINES TERMINATED BY '\r\n'"#,
            path.display()
        ),
    );
    assert_eq!(d.sql_value("SELECT COUNT(*) FROM tabdb.csv"), "13");
    assert_same_checksum(s, d, "tabdb", "csv");
}

/// Dumps `tabdb.plain` with `--tab` and `opts` by rdump and by mariadb-dump (whose server
/// writes the .txt with SELECT ... INTO OUTFILE); panics where the .txt files differ.
fn assert_tab_txt_same_as_mariadb_dump(opts: &[&str]) {
    let s = src();
    let ours = tempfile::tempdir().unwrap();
    let theirs = tempfile::tempdir().unwrap();
    for (dir, by_rdump) in [(&ours, true), (&theirs, false)] {
        let mut args = vec![format!("--tab={}", dir.path().display())];
        args.extend(opts.iter().map(|s| s.to_string()));
        args.extend(["tabdb".to_string(), "plain".to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if by_rdump {
            dump_ok(s, &args);
        } else {
            s.system_dump(&args)
                .unwrap_or_else(|e| panic!("mariadb-dump --tab: {e}"));
        }
    }
    let a = fs::read(ours.path().join("plain.txt")).unwrap();
    let b = fs::read(theirs.path().join("plain.txt")).unwrap();
    if a != b {
        let first = a
            .iter()
            .zip(&b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        let from = first.saturating_sub(40);
        panic!(
            "{opts:?}: rdump's plain.txt differs from mariadb-dump's at byte {first}:\n rdump: {:?}\n mdump: {:?}",
            String::from_utf8_lossy(&a[from..(first + 40).min(a.len())]),
            String::from_utf8_lossy(&b[from..(first + 40).min(b.len())]),
        );
    }
}

#[test]
fn tab_txt_is_byte_identical_to_mariadb_dump_tab() {
    assert_tab_txt_same_as_mariadb_dump(&[]);
}

#[test]
fn tab_csv_txt_is_byte_identical_to_mariadb_dump_tab() {
    // INTO OUTFILE escapes the first byte of LINES TERMINATED BY (here \r) everywhere,
    // also inside enclosed fields; rdump writes it bare there (LOAD DATA reads both).
    assert_tab_txt_same_as_mariadb_dump(&[
        "--fields-terminated-by=,",
        "--fields-optionally-enclosed-by=\"",
        r"--lines-terminated-by=\r\n",
    ]);
}

/// `--header` starts each `.txt` with the column names, formatted as string values (so
/// enclosed and escaped like them), byte for byte as mariadb-dump's; without `--tab` it is
/// refused, as there.
#[test]
fn tab_header_line_is_byte_identical_to_mariadb_dump() {
    assert_tab_txt_same_as_mariadb_dump(&["--header"]);
    assert_tab_txt_same_as_mariadb_dump(&[
        "--header",
        "--fields-terminated-by=,",
        "--fields-optionally-enclosed-by=\"",
        r"--lines-terminated-by=\r\n",
    ]);
    let r = dump(src(), &["--header", "tabdb"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("--tab"), "{}", r.stderr);
}

// ---------------------------------------------------------------------------
// 4. Selection and structure switches.

#[test]
fn where_dumps_only_matching_rows() {
    let (s, d) = (src(), dst());
    let out = dump_ok(s, &["--where=id > 10", "seldb", "t1"]);
    d.sql("CREATE DATABASE where_target");
    d.restore_with_args(&["where_target"], out.as_bytes())
        .unwrap();
    assert_eq!(
        d.sql_value("SELECT CONCAT(COUNT(*), ' ', MIN(id), ' ', MAX(id)) FROM where_target.t1"),
        "20 11 30"
    );
}

#[test]
fn ignore_table_omits_its_create_table_and_inserts() {
    let out = dump_ok(src(), &["--ignore-table=seldb.t3", "seldb"]);
    assert!(!out.contains("CREATE TABLE `t3`"), "{out}");
    assert!(!out.contains("INSERT INTO `t3`"), "{out}");
    for t in ["t1", "t2"] {
        assert!(out.contains(&format!("CREATE TABLE `{t}`")), "{t} missing");
        assert!(
            out.contains(&format!("INSERT INTO `{t}`")),
            "{t} rows missing"
        );
    }
}

/// `--ignore-table-data=db.t` keeps the table's structure (and triggers) and drops its rows,
/// as mariadb-dump; in a `--dir` dump the table has no data files.
#[test]
fn ignore_table_data_keeps_the_structure_and_drops_the_rows_like_mariadb_dump() {
    let s = src();
    let args = [
        "--ignore-table-data=seldb.t2",
        "--ignore-table-data=seldb.t3",
        "seldb",
    ];
    let ours = dump_ok(s, &args);
    let theirs = String::from_utf8(s.system_dump(&args).expect("mariadb-dump")).unwrap();
    let objects = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| {
                l.starts_with("CREATE TABLE")
                    || l.starts_with("INSERT INTO")
                    || l.contains("TRIGGER t2_bi")
            })
            .map(|l| l.split(" VALUES").next().unwrap().to_string())
            .collect()
    };
    assert_eq!(objects(&ours), objects(&theirs));
    assert!(ours.contains("CREATE TABLE `t2`") && !ours.contains("INSERT INTO `t2`"));
    assert!(ours.contains("INSERT INTO `t1`"));

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    dump_ok(
        s,
        &[
            &format!("--dir={}", dir.display()),
            "--progress=never",
            "--quiet",
            args[0],
            "seldb",
        ],
    );
    let names: Vec<String> = fs::read_dir(dir.join("seldb"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("t2") && n.contains("schema")),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.starts_with("t1.0")), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("t2.0")), "{names:?}");
}

#[test]
fn named_tables_dump_only_those_without_create_database_or_use() {
    let out = dump_ok(src(), &["seldb", "t1", "t2"]);
    assert!(out.contains("CREATE TABLE `t1`") && out.contains("CREATE TABLE `t2`"));
    assert!(out.contains("INSERT INTO `t1`") && out.contains("INSERT INTO `t2`"));
    assert!(!out.contains("`t3`"), "t3 was not asked for:\n{out}");
    assert!(!out.contains("CREATE DATABASE"), "{out}");
    assert!(lines_starting(&out, "USE ").is_empty(), "{out}");
}

#[test]
fn databases_option_writes_create_database_and_use_for_each() {
    let (s, d) = (src(), dst());
    let out = dump_ok(s, &["-B", "seldb", "otherdb"]);
    for db in ["seldb", "otherdb"] {
        let create = out
            .find(&format!("CREATE DATABASE /*!32312 IF NOT EXISTS*/ `{db}` "))
            .unwrap_or_else(|| panic!("no CREATE DATABASE for {db}:\n{out}"));
        let use_ = out
            .find(&format!("\nUSE `{db}`;\n"))
            .unwrap_or_else(|| panic!("no USE for {db}"));
        assert!(create < use_, "CREATE DATABASE {db} comes before USE");
    }
    // And it restores to the same databases.
    d.restore(out.as_bytes()).unwrap();
    check_same(
        &snapshot_of(s, &["seldb", "otherdb"]),
        &snapshot_of(d, &["seldb", "otherdb"]),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn all_databases_includes_user_databases_and_mysql_but_not_system_schemas() {
    let out = dump_ok(src(), &["-A", "--single-transaction"]);
    for db in ["mysql", "seldb", "otherdb", "tabdb"] {
        assert!(has_line(&out, &format!("USE `{db}`;")), "no USE `{db}`");
    }
    // (mysql.proc rows mention performance_schema and sys: look at the statements only.)
    for db in ["information_schema", "performance_schema", "sys"] {
        assert!(
            !has_line(&out, &format!("USE `{db}`;"))
                && !out.contains(&format!("CREATE DATABASE /*!32312 IF NOT EXISTS*/ `{db}`")),
            "{db} must not be dumped by -A"
        );
    }
    assert!(out.contains("-- Dump completed"));
}

#[test]
fn all_databases_with_default_locking_succeeds() {
    let r = dump(src(), &["-A"]);
    r.ok();
    assert!(r.text().contains("-- Dump completed"));
}

#[test]
fn all_databases_dump_restores_with_the_plain_client() {
    let run = dump(src(), &["-A", "--single-transaction"]);
    run.ok();
    // Restore the bytes as written: the dump holds binary data that is not UTF-8.
    let bytes = run.stdout.clone();
    // A private server: the restore replaces its `mysql` database.
    let target = Server::start(ServerOptions {
        server_id: 4,
        ..Default::default()
    });
    target
        .restore(&bytes)
        .unwrap_or_else(|e| panic!("restoring the -A dump: {e}"));
    check_same(
        &snapshot_of(src(), &["seldb", "otherdb", "tabdb"]),
        &snapshot_of(&target, &["seldb", "otherdb", "tabdb"]),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn no_data_writes_structure_without_rows() {
    let out = dump_ok(src(), &["--no-data", "seldb"]);
    assert!(out.contains("CREATE TABLE `t1`") && out.contains("CREATE TABLE `t3`"));
    assert!(!out.contains("INSERT INTO"), "{out}");
}

#[test]
fn no_create_info_writes_rows_without_create_table() {
    let out = dump_ok(src(), &["--no-create-info", "seldb"]);
    assert!(out.contains("INSERT INTO `t1`") && out.contains("INSERT INTO `t3`"));
    assert!(!out.contains("CREATE TABLE"), "{out}");
}

#[test]
fn no_create_db_omits_create_database_but_keeps_use() {
    let out = dump_ok(src(), &["--no-create-db", "-B", "seldb"]);
    assert!(!out.contains("CREATE DATABASE"), "{out}");
    assert!(has_line(&out, "USE `seldb`;"));
    assert!(out.contains("CREATE TABLE `t1`"));
}

#[test]
fn add_drop_database_drops_each_database_before_creating_it() {
    let out = dump_ok(src(), &["--add-drop-database", "-B", "seldb", "otherdb"]);
    for db in ["seldb", "otherdb"] {
        let drop = out
            .find(&format!("/*!40000 DROP DATABASE IF EXISTS `{db}`*/;"))
            .unwrap_or_else(|| panic!("no DROP DATABASE for {db}:\n{out}"));
        let create = out
            .find(&format!("CREATE DATABASE /*!32312 IF NOT EXISTS*/ `{db}`"))
            .unwrap();
        assert!(drop < create);
    }
    let plain = dump_ok(src(), &["-B", "seldb"]);
    assert!(!plain.contains("DROP DATABASE"), "not without the option");
}

#[test]
fn skip_triggers_omits_triggers() {
    let with = dump_ok(src(), &["seldb"]);
    assert!(
        with.contains("TRIGGER t2_bi "),
        "triggers are dumped by default"
    );
    let without = dump_ok(src(), &["--skip-triggers", "seldb"]);
    assert!(!without.contains("TRIGGER"), "{without}");
    assert!(without.contains("INSERT INTO `t2`"));
}

// ---------------------------------------------------------------------------
// 5-6. Replication coordinates.

/// Dumps the quiescent source with `args`, asserting SHOW MASTER STATUS did not move
/// around it; returns the dump and that status.
fn dump_quiescent(s: &Server, args: &[&str]) -> (String, (String, u64)) {
    let before = master_status(s);
    let out = dump_ok(s, args);
    let after = master_status(s);
    assert_eq!(before, after, "the source was written during the dump");
    (out, before)
}

#[test]
fn master_data_1_writes_change_master_at_show_master_status() {
    let s = src();
    let (out, (file, pos)) = dump_quiescent(s, &["--master-data=1", "seldb"]);
    let line = format!("CHANGE MASTER TO MASTER_LOG_FILE='{file}', MASTER_LOG_POS={pos};");
    assert!(
        has_line(&out, &line),
        "expected the line {line:?} in:\n{out}"
    );
    assert_eq!(change_master_line(&out), Some((false, file, pos)));
}

#[test]
fn master_data_2_writes_change_master_commented() {
    let s = src();
    let (out, (file, pos)) = dump_quiescent(s, &["--master-data=2", "seldb"]);
    let line = format!("-- CHANGE MASTER TO MASTER_LOG_FILE='{file}', MASTER_LOG_POS={pos};");
    assert!(
        has_line(&out, &line),
        "expected the line {line:?} in:\n{out}"
    );
    assert!(
        !out.lines().any(|l| l.starts_with("CHANGE MASTER")),
        "no executable CHANGE MASTER with --master-data=2"
    );
}

/// Without `--gtid`, `--master-data` still records the GTID position, commented at the end
/// (`-- SET GLOBAL gtid_slave_pos='...';`), as mariadb-dump; and `--apply-slave-statements`
/// writes `STOP ALL SLAVES;` before the CHANGE MASTER and `START ALL SLAVES;` at the end,
/// also with `--master-data`: the same replication lines as mariadb-dump's, in its order.
#[test]
fn master_data_replication_lines_are_mariadb_dumps() {
    let s = src();
    let gtid = s.sql_value("SELECT @@gtid_binlog_pos");
    let replication_lines = |dump: &str| -> Vec<String> {
        dump.lines()
            .filter(|l| {
                let l = l.trim_start_matches("-- ");
                l.starts_with("CHANGE MASTER")
                    || l.starts_with("SET GLOBAL gtid_slave_pos")
                    || l.ends_with("ALL SLAVES;")
            })
            .map(String::from)
            .collect()
    };
    for args in [
        &["--master-data=1"][..],
        &["--master-data=2"],
        &["--master-data=1", "--apply-slave-statements"],
        &[
            "--master-data=2",
            "--apply-slave-statements",
            "--skip-comments",
        ],
        &["--apply-slave-statements"],
        &["--master-data=1", "--gtid"],
    ] {
        let mut all = vec!["--single-transaction"];
        all.extend(args);
        all.extend(["seldb", "t1"]);
        let (ours, _) = dump_quiescent(s, &all);
        let theirs = String::from_utf8(s.system_dump(&all).expect("mariadb-dump")).unwrap();
        assert_eq!(
            replication_lines(&ours),
            replication_lines(&theirs),
            "{args:?}\nrdump:\n{ours}"
        );
    }
    let (out, _) = dump_quiescent(s, &["--master-data=1", "seldb", "t1"]);
    assert!(
        has_line(&out, &format!("-- SET GLOBAL gtid_slave_pos='{gtid}';")),
        "{out}"
    );
}

#[test]
fn master_data_with_gtid_writes_use_gtid_and_gtid_slave_pos() {
    let s = src();
    for mode in ["--lock-all-tables", "--single-transaction"] {
        let gtid = s.sql_value("SELECT @@gtid_binlog_pos");
        assert!(!gtid.is_empty(), "the source has GTIDs");
        let (out, _) = dump_quiescent(s, &[mode, "--master-data=1", "--gtid", "seldb"]);
        assert!(
            has_line(&out, "CHANGE MASTER TO MASTER_USE_GTID=slave_pos;"),
            "[{mode}] no MASTER_USE_GTID line:\n{out}"
        );
        let set = format!("SET GLOBAL gtid_slave_pos='{gtid}';");
        assert!(has_line(&out, &set), "[{mode}] expected {set:?} in:\n{out}");
    }
}

#[test]
fn single_transaction_and_lock_all_tables_give_the_same_coordinates() {
    let s = src();
    let (a, status) = dump_quiescent(s, &["--single-transaction", "--master-data=2", "seldb"]);
    let (b, _) = dump_quiescent(s, &["--lock-all-tables", "--master-data=2", "seldb"]);
    let (ca, cb) = (change_master_line(&a), change_master_line(&b));
    assert_eq!(ca, cb);
    assert_eq!(ca, Some((true, status.0, status.1)));
}

/// `mariadb-dump --no-defaults -uroot --socket=.. <args>`: the reference's exit code.
fn system_dump_code(server: &Server, args: &[&str]) -> Option<i32> {
    let mut cmd = Command::new(common::system_dump_bin());
    cmd.arg("--no-defaults")
        .arg("-uroot")
        .arg(format!("--socket={}", server.socket().display()))
        .args(args);
    run(cmd).code
}

#[test]
fn master_data_without_binlog_fails_like_mysqldump_with_a_clear_message_and_no_footer() {
    // mysqldump prints "Error: Binlogging on server not active" and exits with
    // EX_MYSQLERR (2); mariadb-dump 10.11 does so in both modes (checked below).
    let d = dst();
    for mode in [None, Some("--single-transaction")] {
        let dir = tempfile::tempdir().unwrap();
        let result = dir.path().join("dump.sql");
        let result_arg = format!("--result-file={}", result.display());
        let mut reference_args = vec!["--master-data=1"];
        reference_args.extend(mode);
        reference_args.push("nobin");
        let reference = system_dump_code(d, &reference_args);
        assert_ne!(reference, Some(0), "mariadb-dump {reference_args:?}");
        for to_file in [false, true] {
            let mut args = vec!["--master-data=1"];
            args.extend(mode);
            if to_file {
                args.push(&result_arg);
            }
            args.push("nobin");
            let r = dump(d, &args);
            assert_eq!(
                r.code, reference,
                "{args:?}: rdump's exit code differs from mariadb-dump's; stderr {}",
                r.stderr
            );
            assert_eq!(r.code, Some(2), "{args:?}: stderr {}", r.stderr);
            assert!(
                r.stderr.contains("Binlogging on server not active")
                    && r.stderr.contains("--master-data"),
                "{args:?}: the message should say binary logging is off: {}",
                r.stderr
            );
            assert!(!r.text().contains("Dump completed"), "{args:?}");
            assert!(
                !result.exists(),
                "{args:?}: no result file for a failed dump"
            );
        }
    }
}

/// Binlog files of `server` from `first` on, in order.
fn binlog_files_from(server: &Server, first: &str) -> Vec<PathBuf> {
    let base = server.binlog_basename().expect("binlog enabled");
    let prefix = format!("{}.", base.file_name().unwrap().to_string_lossy());
    let mut files: Vec<PathBuf> = fs::read_dir(base.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.strip_prefix(&prefix)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                && name.as_str() >= first
        })
        .collect();
    files.sort();
    assert!(
        files
            .first()
            .is_some_and(|f| f.file_name().unwrap() == first),
        "binlog {first} not found among {files:?}"
    );
    files
}

/// One writer transaction touching both tables (insert, update, delete, a counter).
fn pitr_write(server: &Server, i: u64) {
    server.sql(&format!(
        "START TRANSACTION;
         INSERT INTO pitr.t VALUES ({id}, {i}, 'written');
         UPDATE pitr.t SET v = v + 1 WHERE id = {upd};
         UPDATE pitr.counter SET n = n + 1, last = {i} WHERE id = 1;
         COMMIT;
         DELETE FROM pitr.t WHERE id = {del};",
        id = 1_000_000 + i,
        upd = i * 13 % 20_000 + 1,
        del = i * 7 % 20_000 + 1,
    ));
}

#[test]
fn dump_coordinates_match_the_data_so_binlog_replay_reproduces_the_source() {
    let d = dst();
    let p = Server::start(ServerOptions {
        binlog: true,
        server_id: 3,
        ..Default::default()
    });
    p.sql(
        "CREATE DATABASE pitr;
         USE pitr;
         CREATE TABLE pitr.t (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(40));
         INSERT INTO pitr.t SELECT seq, seq, REPEAT('x', seq % 40) FROM seq_1_to_20000;
         CREATE TABLE pitr.counter (id INT PRIMARY KEY, n INT NOT NULL, last INT);
         INSERT INTO pitr.counter VALUES (1, 0, NULL);",
    );
    let next = AtomicU64::new(1);
    for mode in ["--single-transaction", "--lock-all-tables"] {
        // Some writes before the dump.
        for _ in 0..5 {
            pitr_write(&p, next.fetch_add(1, Ordering::SeqCst));
        }
        let counter_before: u64 = p.sql_value("SELECT n FROM pitr.counter").parse().unwrap();
        // Writes during the dump, from another connection: the dump starts once the writer
        // is under way, and the writer goes on until the dump has finished.
        let stop = AtomicBool::new(false);
        let done = AtomicU64::new(0);
        let out = std::thread::scope(|scope| {
            let writer = scope.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    pitr_write(&p, next.fetch_add(1, Ordering::SeqCst));
                    done.fetch_add(1, Ordering::SeqCst);
                }
            });
            while done.load(Ordering::SeqCst) < 2 {
                std::thread::sleep(Duration::from_millis(1));
            }
            let at_start = done.load(Ordering::SeqCst);
            let out = dump(&p, &[mode, "--master-data=2", "-B", "pitr"]);
            let at_end = done.load(Ordering::SeqCst);
            stop.store(true, Ordering::SeqCst);
            writer.join().unwrap();
            eprintln!(
                "[{mode}] {} writer transactions committed while the dump ran",
                at_end - at_start
            );
            out.ok()
        });
        // More writes after it.
        for _ in 0..5 {
            pitr_write(&p, next.fetch_add(1, Ordering::SeqCst));
        }
        let (commented, file, pos) = change_master_line(&out)
            .unwrap_or_else(|| panic!("[{mode}] no CHANGE MASTER line in the dump"));
        assert!(commented, "--master-data=2 comments it");

        d.sql("DROP DATABASE IF EXISTS pitr");
        d.restore(out.as_bytes())
            .unwrap_or_else(|e| panic!("[{mode}] restoring the dump: {e}"));
        // The dump saw some of the concurrent writes and missed the later ones, so the
        // replay must start exactly at the recorded position to add up.
        let dumped: u64 = d.sql_value("SELECT n FROM pitr.counter").parse().unwrap();
        let fin: u64 = p.sql_value("SELECT n FROM pitr.counter").parse().unwrap();
        assert!(
            counter_before < dumped && dumped < fin,
            "[{mode}] the dump should land amid the writes: {counter_before} < {dumped} < {fin}"
        );
        let mut cmd = Command::new("mariadb-binlog");
        cmd.arg("--no-defaults")
            .arg(format!("--start-position={pos}"))
            .args(binlog_files_from(&p, &file));
        let binlog = run(cmd);
        binlog.ok();
        d.restore(&binlog.stdout)
            .unwrap_or_else(|e| panic!("[{mode}] replaying the binlog from {file}:{pos}: {e}"));
        if let Err(diff) = check_same(&snapshot_of(&p, &["pitr"]), &snapshot_of(d, &["pitr"])) {
            panic!(
                "[{mode}] dump + binlog from {file}:{pos} differs from the source:\n{diff}\n{}",
                row_diff(&p, d, "pitr", "t", 10)
            );
        }
    }
}

// ---------------------------------------------------------------------------
// 7. --system=users.

#[test]
fn system_users_restores_accounts_with_password_and_grants() {
    let (s, d) = (src(), dst());
    let out = dump_ok(s, &["--system=users"]);
    assert!(out.contains("`cli_app`@`%`"), "{out}");
    assert!(
        !out.contains(APP_PASSWORD),
        "the password is stored hashed only"
    );
    d.restore(out.as_bytes()).unwrap();

    let login = |password: &str| {
        let mut cmd = Command::new(common::client_bin());
        cmd.args([
            "--no-defaults",
            "-h127.0.0.1",
            &format!("-P{}", d.port()),
            "-ucli_app",
            &format!("-p{password}"),
            "--batch",
            "--skip-column-names",
            "-e",
            "SHOW GRANTS",
        ]);
        run(cmd)
    };
    let grants = login(APP_PASSWORD).ok();
    assert!(
        grants.contains("GRANT SELECT, INSERT ON `seldb`.* TO `cli_app`@`%`"),
        "grants on the target: {grants}"
    );
    let wrong = login("not-the-app-password");
    assert_ne!(wrong.code, Some(0), "a wrong password must be refused");
    assert_eq!(
        s.sql("SHOW GRANTS FOR 'cli_app'@'%'"),
        d.sql("SHOW GRANTS FOR 'cli_app'@'%'")
    );
}

#[test]
fn system_users_with_a_database_dumps_accounts_before_the_database() {
    let out = dump_ok(src(), &["--system=users", "seldb", "t3"]);
    let account = out
        .find("CREATE USER IF NOT EXISTS `cli_app`@`%`")
        .unwrap_or_else(|| panic!("no account in:\n{out}"));
    let table = out.find("CREATE TABLE `t3`").expect("the table");
    assert!(account < table, "accounts come first");
    assert!(out.contains("INSERT INTO `t3`"));
}

// ---------------------------------------------------------------------------
// 8. Output shape switches.

#[test]
fn compact_has_no_session_set_lines_and_no_comments() {
    let out = dump_ok(src(), &["--compact", "seldb"]);
    assert!(out.contains("CREATE TABLE `t1`") && out.contains("INSERT INTO `t1`"));
    assert!(lines_starting(&out, "/*!40101 SET").is_empty(), "{out}");
    assert!(lines_starting(&out, "/*!40103 SET").is_empty(), "{out}");
    assert!(lines_starting(&out, "/*!40014 SET").is_empty(), "{out}");
    assert!(lines_starting(&out, "--").is_empty(), "{out}");
}

#[test]
fn skip_comments_has_no_comment_lines() {
    let with = dump_ok(src(), &["seldb"]);
    assert!(
        !lines_starting(&with, "--").is_empty(),
        "comments by default"
    );
    let out = dump_ok(src(), &["--skip-comments", "seldb"]);
    assert!(lines_starting(&out, "--").is_empty(), "{out}");
    assert!(out.contains("INSERT INTO `t1`"));
}

#[test]
fn skip_dump_date_footer_reads_dump_completed_without_a_date() {
    let dated = dump_ok(src(), &["seldb", "t3"]);
    let last = dated.lines().rev().find(|l| !l.is_empty()).unwrap();
    assert!(last.starts_with("-- Dump completed on 20"), "{last:?}");
    let out = dump_ok(src(), &["--skip-dump-date", "seldb", "t3"]);
    let last = out.lines().rev().find(|l| !l.is_empty()).unwrap();
    assert_eq!(last, "-- Dump completed");
}

// ---------------------------------------------------------------------------
// 8b. Where -r writes.

#[test]
fn result_file_writes_into_fifos_devices_and_dev_stdout_as_they_are() {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let s = src();
    let tmp = tempfile::tempdir().unwrap();

    // A fifo with a reader: the reader gets the dump, the fifo stays a fifo.
    let fifo = tmp.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // The read end is opened first (without waiting for a writer), so a dump that does
    // not write into the fifo ends the test instead of hanging it.
    let mut read_end = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let reader = {
        let done = std::sync::Arc::clone(&done);
        std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 65536];
            loop {
                match read_end.read(&mut buf) {
                    Ok(0) if done.load(Ordering::SeqCst) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("{e}"),
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            got
        })
    };
    let fifo_arg = format!("--result-file={}", fifo.display());
    let r = dump(s, &[&fifo_arg, "seldb", "t1"]);
    done.store(true, Ordering::SeqCst);
    r.ok();
    let read = String::from_utf8(reader.join().unwrap()).unwrap();
    assert!(read.contains("INSERT INTO `t1`") && read.contains("-- Dump completed"));
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());

    // A symlink to a char device (/dev/null): both stay as they are.
    let null = tmp.path().join("null");
    std::os::unix::fs::symlink("/dev/null", &null).unwrap();
    let null_arg = format!("-r{}", null.display());
    dump_ok(s, &[&null_arg, "seldb", "t1"]);
    assert!(fs::symlink_metadata(&null).unwrap().is_symlink());
    assert!(
        fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );

    // A symlink to /proc/self/fd/1: the dump goes to rdump's stdout.
    let out_link = tmp.path().join("stdout");
    std::os::unix::fs::symlink("/proc/self/fd/1", &out_link).unwrap();
    let out_arg = format!("--result-file={}", out_link.display());
    let text = dump_ok(s, &[&out_arg, "seldb", "t1"]);
    assert!(text.contains("INSERT INTO `t1`") && text.contains("-- Dump completed"));
    assert!(fs::symlink_metadata(&out_link).unwrap().is_symlink());
    let text = dump_ok(s, &["--result-file=/dev/stdout", "seldb", "t1"]);
    assert!(text.contains("-- Dump completed"));

    // An existing directory: refused before any table is read, nothing written in it.
    let dir_arg = format!("--result-file={}", tmp.path().display());
    let r = dump(s, &["--verbose", &dir_arg, "seldb", "t1"]);
    assert_eq!(r.code, Some(5), "{}", r.stderr);
    assert!(r.stderr.contains("Is a directory"), "{}", r.stderr);
    assert!(!r.stderr.contains("-- Dumping table"), "{}", r.stderr);
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 3);
}

#[test]
fn result_file_on_a_fifo_without_a_reader_still_stops_on_a_signal() {
    use std::os::unix::fs::FileTypeExt;
    let s = src();
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut cmd = rdump_command();
    cmd.arg("--no-defaults")
        .arg("-uroot")
        .arg(format!("--socket={}", s.socket().display()))
        .arg(format!("--result-file={}", fifo.display()))
        .args(["seldb", "t1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // Long enough to connect and wait in open(2) for a reader that never comes.
    std::thread::sleep(Duration::from_secs(2));
    common::signal(&child, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if status.is_none() {
        // Unblock it (a reader), so the test does not leave it behind.
        let _ = fs::File::open(&fifo).map(|mut f| std::io::copy(&mut f, &mut std::io::sink()));
        let _ = child.wait();
        panic!("rdump -r on a fifo without a reader ignored SIGTERM for 10 s");
    }
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.unwrap().code(), Some(143), "{err}");
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
}

#[test]
fn result_file_that_is_another_users_file_in_a_sticky_directory_fails_before_the_dump() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED: needs root to run rdump as another user");
        return;
    }
    let s = src();
    let tmp = tempfile::tempdir().unwrap();
    let sticky = tmp.path().join("sticky");
    fs::create_dir(&sticky).unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o711)).unwrap();
    fs::set_permissions(&sticky, fs::Permissions::from_mode(0o1777)).unwrap();
    let theirs = sticky.join("dump.sql");
    fs::write(&theirs, b"theirs").unwrap();
    fs::set_permissions(&theirs, fs::Permissions::from_mode(0o666)).unwrap();
    std::os::unix::fs::chown(&theirs, Some(1002), Some(1002)).unwrap();
    let mut cmd = rdump_command();
    cmd.uid(1001)
        .gid(1001)
        .arg("--no-defaults")
        .args(["-h127.0.0.1", &format!("-P{}", s.port())])
        .arg(format!("-u{}", s.user()))
        .arg(format!("-p{}", s.password()))
        .arg(format!("--result-file={}", theirs.display()))
        .args(["--verbose", "seldb", "t1"]);
    let r = run(cmd);
    assert_eq!(r.code, Some(5), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("another user's file in a sticky directory"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("-- Dumping table"), "{}", r.stderr);
    assert_eq!(fs::read(&theirs).unwrap(), b"theirs");
}

/// Undoes `chattr +i` on drop (the temporary directory can then be removed).
struct Immutable(PathBuf);

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

#[test]
fn result_file_in_a_directory_that_cannot_be_written_is_written_in_place() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ro");
    fs::create_dir(&dir).unwrap();
    let file = dir.join("dump.sql");
    fs::write(&file, b"old").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    // Tests run as root, who writes any directory: an immutable one (ext4, chattr) is
    // one root cannot create a file in, while the file in it stays writable.
    let chattr = Command::new("chattr").arg("+i").arg(&dir).output();
    if !chattr.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: chattr +i is not available on {}", dir.display());
        return;
    }
    let _undo = Immutable(dir.clone());
    assert!(fs::write(dir.join("probe"), b"").is_err());
    let arg = format!("--result-file={}", file.display());
    dump_ok(src(), &[&arg, "seldb", "t1"]);
    let text = fs::read_to_string(&file).unwrap();
    assert!(text.contains("INSERT INTO `t1`") && text.contains("-- Dump completed"));
    // The file itself was written: its mode is the one it had.
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o644
    );
}

// ---------------------------------------------------------------------------
// 9. --help and --version.

#[test]
fn help_exits_zero_and_lists_the_options() {
    let r = rdump(&["--help"]);
    let out = r.ok();
    for opt in [
        "Usage:",
        "--single-transaction",
        "--master-data",
        "--tab",
        "--where",
        "--defaults-file",
        "--all-databases",
    ] {
        assert!(out.contains(opt), "--help lacks {opt}:\n{out}");
    }
}

#[test]
fn version_flag_prints_mariadb_dumps_shape() {
    // mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
    let mut cmd = Command::new(common::system_dump_bin());
    cmd.arg("--version");
    let theirs = run(cmd).ok();
    let shape = |line: &str| -> Vec<String> {
        let words: Vec<&str> = line.trim_end().split(' ').collect();
        vec![
            words[1].to_string(),
            words[2].to_string(),
            words[4].to_string(),
            words[6].to_string(),
        ]
    };
    assert_eq!(shape(&theirs), ["", "Ver", "Distrib", "for"], "{theirs}");
    for flag in ["-V", "--version"] {
        let out = rdump(&[flag]).ok();
        let v = env!("CARGO_PKG_VERSION");
        assert!(
            out.starts_with(&format!("rdump  Ver {v} Distrib {v}")),
            "{flag}: {out:?}"
        );
        assert_eq!(shape(&out), shape(&theirs), "{out}");
        assert_eq!(out.lines().count(), 1);
    }
}

/// `--print-defaults` prints what the option files give and the command line, as
/// mariadb-dump, and exits 0 without connecting; a password shows as `*****` (mariadb-dump
/// prints it).
#[test]
fn print_defaults_lists_the_option_file_arguments_like_mariadb_dump() {
    let dir = tempfile::tempdir().unwrap();
    let plain = write_file(
        dir.path(),
        "plain.cnf",
        "[client]\nuser=bob\nport=1\n[mysqldump]\nsingle-transaction\nloose-frob=1\n[mysqld]\nx=1\n",
    );
    let args = |f: &Path| {
        vec![
            format!("--defaults-file={}", f.display()),
            "--print-defaults".into(),
            "-B".into(),
            "db".into(),
        ]
    };
    let ours = rdump(&args(&plain)).ok();
    let mut cmd = Command::new(common::system_dump_bin());
    cmd.env("HOME", empty_home()).args(args(&plain));
    let theirs = run(cmd).ok();
    // mariadb-dump names itself as it was started (argv[0]).
    let after_name = |t: &str| t.split_once(" would have").unwrap().1.to_string();
    assert_eq!(after_name(&ours), after_name(&theirs), "rdump:\n{ours}");
    assert!(
        ours.contains("--user=bob --port=1 --single-transaction --loose-frob=1 -B db"),
        "{ours}"
    );

    let secret = write_file(dir.path(), "secret.cnf", "[client]\npassword=Sekr1t\n");
    let mut a = args(&secret);
    a.push("-pAlso5ecret".into());
    let out = rdump(&a).ok();
    assert!(out.contains("--password=***** -B db -p*****"), "{out}");
    assert!(
        !out.contains("Sekr1t") && !out.contains("Also5ecret"),
        "{out}"
    );
}

#[test]
fn usage_errors_exit_with_mariadb_dumps_codes() {
    let s = src();
    for (args, code) in [
        (&["--frobnicate", "seldb"][..], 2),
        (&["--frobnicate=1", "seldb"], 7),
        (&["--skip-frobnicate", "seldb"], 2),
        (&["-j", "seldb"], 2),
        (&["--s", "seldb"], 3),
        (&["--port=abc", "seldb"], 9),
        (&["--single-transaction", "-x", "seldb"], 1),
        (&["-S"], 5),
    ] {
        let ours = dump(s, args).code;
        let theirs = system_dump_code(s, args);
        assert_eq!(
            (ours, theirs),
            (Some(code), Some(code)),
            "{args:?}: rdump, mariadb-dump"
        );
    }
}

#[test]
fn help_lists_the_exit_codes() {
    let out = rdump(&["--help"]).ok();
    assert!(out.contains("Exit codes"), "{out}");
    for line in [
        "  2  a server error",
        "  3  the dump could not",
        "  6  a table named",
    ] {
        assert!(out.contains(line), "--help lacks {line:?}");
    }
}

// ---------------------------------------------------------------------------
// 10. Connection options: character set, init command, protocol.

#[test]
fn default_character_set_is_utf8mb4() {
    let out = dump_ok(src(), &["charsetdb", "l1"]);
    assert!(has_line(&out, "/*!40101 SET NAMES utf8mb4 */;"), "{out}");
    assert!(
        out.contains("(1,'café')"),
        "latin1 text is sent as UTF-8: {out}"
    );
}

#[test]
fn default_character_set_latin1_writes_latin1_bytes_that_restore_to_the_same_checksum() {
    let (s, d) = (src(), dst());
    let run = dump(s, &["--default-character-set=latin1", "-B", "charsetdb"]);
    run.ok();
    let bytes = &run.stdout;
    let text = String::from_utf8_lossy(bytes);
    assert!(has_line(&text, "/*!40101 SET NAMES latin1 */;"), "{text}");
    assert!(!text.contains("SET NAMES utf8mb4"), "{text}");
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    // é, ÿ and ï as single latin1 bytes, from the latin1 and from the utf8mb4 table.
    for needle in [
        &b"(1,'caf\xe9')"[..],
        b"(2,'\xff and \xe9,",
        b"(1,'na\xefve')",
    ] {
        assert!(
            contains(needle),
            "no latin1 bytes {:?} in the dump:\n{text}",
            String::from_utf8_lossy(needle)
        );
    }
    assert!(!contains("é".as_bytes()), "UTF-8 in a latin1 dump:\n{text}");
    // The plain client takes the character set from the dump's SET NAMES.
    d.restore(bytes)
        .unwrap_or_else(|e| panic!("restoring the latin1 dump: {e}"));
    for table in ["l1", "u1"] {
        assert_same_checksum(s, d, "charsetdb", table);
    }
}

#[test]
fn init_command_runs_on_the_dump_connection() {
    // rdump sets neither group_concat_max_len nor any other variable this test reads, so
    // the --where sees the session value only if the init command ran on the same
    // connection as the SELECT.
    let s = src();
    let args = |init: bool| {
        let mut a = vec![
            "--skip-extended-insert",
            "--where=id <= @@SESSION.group_concat_max_len",
        ];
        if init {
            a.push("--init-command=SET SESSION group_concat_max_len = 7");
        }
        a.extend(["seldb", "t1"]);
        a
    };
    let control = dump_ok(s, &args(false));
    assert_eq!(lines_starting(&control, "INSERT INTO `t1`").len(), 30);
    let out = dump_ok(s, &args(true));
    let inserts = lines_starting(&out, "INSERT INTO `t1`");
    assert_eq!(inserts.len(), 7, "{out}");
    assert_eq!(inserts[6], "INSERT INTO `t1` VALUES (7,'v7');");
}

/// A `--where` that holds only on a connection from `host` (`'localhost'`: the unix socket;
/// `'127.0.0.1:%'`: TCP), as the server itself sees the connection.
fn where_connected_from(host: &str) -> String {
    format!(
        "--where=(SELECT HOST FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()) LIKE '{host}'"
    )
}

#[test]
fn protocol_socket_without_host_connects_through_the_socket() {
    let s = src();
    // A bogus port before --protocol=socket changes nothing: the socket is used (a port
    // given after it would mean TCP, as in mariadb-dump).
    let out = dump_ok(
        s,
        &[
            "-P1",
            "--protocol=socket",
            &where_connected_from("localhost"),
            "--skip-extended-insert",
            "seldb",
            "t2",
        ],
    );
    assert_eq!(
        lines_starting(&out, "INSERT INTO `t2`").len(),
        3,
        "not connected through the socket:\n{out}"
    );
}

/// The client library's transport rules, case by case against mariadb-dump: a port given
/// on the command line means TCP and a socket given there means the socket (the last of
/// `-P`, `-S`, `--protocol` wins), in option files they only set the port or path; the
/// socket only for `localhost`; `MYSQL_TCP_PORT`/`MYSQL_UNIX_PORT` as defaults. In every
/// case one transport is broken (a missing socket or port 1), so success shows which was used.
#[test]
fn transport_follows_the_client_librarys_rules_like_mariadb_dump() {
    let s = src();
    let dir = tempfile::tempdir().unwrap();
    let sock = s.socket().display().to_string();
    let port = s.port().to_string();
    let bad_sock = "/nonexistent/mysql.sock";
    let cases: Vec<(&str, Option<String>, Vec<String>, Vec<(&str, String)>, bool)> = vec![
        // The issue's case: the option file's socket, a command-line port: TCP.
        (
            "file socket, -h localhost -P",
            Some(format!("socket={bad_sock}")),
            vec!["-hlocalhost".into(), format!("-P{port}")],
            vec![],
            true,
        ),
        (
            "file good socket, -P bad",
            Some(format!("socket={sock}")),
            vec!["-hlocalhost".into(), "-P1".into()],
            vec![],
            false,
        ),
        (
            "-h localhost -P, no file",
            None,
            vec!["-hlocalhost".into(), format!("-P{port}")],
            vec![],
            true,
        ),
        (
            "-P then -S: socket",
            None,
            vec![format!("-P{port}"), format!("-S{bad_sock}")],
            vec![],
            false,
        ),
        (
            "-S then -P: TCP",
            None,
            vec![format!("-S{bad_sock}"), format!("-P{port}")],
            vec![],
            true,
        ),
        (
            "file port, file socket: socket",
            Some(format!("port=1\nsocket={sock}")),
            vec![],
            vec![],
            true,
        ),
        (
            "file port and host=localhost: socket",
            Some(format!("host=localhost\nport={port}\nsocket={bad_sock}")),
            vec![],
            vec![],
            false,
        ),
        (
            "file protocol=tcp, -S: socket",
            Some(format!("protocol=tcp\nport={port}")),
            vec![format!("-S{bad_sock}")],
            vec![],
            false,
        ),
        (
            "file protocol=tcp: TCP",
            Some(format!("protocol=tcp\nport={port}\nsocket={bad_sock}")),
            vec![],
            vec![],
            true,
        ),
        (
            "--protocol=socket then -P: TCP",
            None,
            vec![
                format!("-S{sock}"),
                "--protocol=socket".into(),
                "-P1".into(),
            ],
            vec![],
            false,
        ),
        (
            "-P then --protocol=socket: socket",
            None,
            vec![
                format!("-S{sock}"),
                "-P1".into(),
                "--protocol=socket".into(),
            ],
            vec![],
            true,
        ),
        (
            "file protocol=socket, -P: TCP",
            Some(format!("protocol=socket\nsocket={bad_sock}")),
            vec![format!("-P{port}")],
            vec![],
            true,
        ),
        (
            "--protocol=socket with 127.0.0.1: TCP",
            None,
            vec![
                "--protocol=socket".into(),
                "-h127.0.0.1".into(),
                format!("-P{port}"),
                format!("-S{bad_sock}"),
            ],
            vec![],
            true,
        ),
        (
            "-h 127.0.0.1 -S: TCP",
            Some("port=1".into()),
            vec!["-h127.0.0.1".into(), format!("-S{sock}")],
            vec![],
            false,
        ),
        (
            "MYSQL_TCP_PORT",
            None,
            vec!["-h127.0.0.1".into()],
            vec![("MYSQL_TCP_PORT", port.clone())],
            true,
        ),
        (
            "MYSQL_UNIX_PORT",
            None,
            vec![],
            vec![("MYSQL_UNIX_PORT", sock.clone())],
            true,
        ),
    ];
    let mut mismatches = Vec::new();
    for (i, (name, file, args, env, expect)) in cases.into_iter().enumerate() {
        let defaults = match &file {
            Some(text) => {
                let f = write_file(
                    dir.path(),
                    &format!("c{i}.cnf"),
                    &format!("[client]\n{text}\n"),
                );
                format!("--defaults-file={}", f.display())
            }
            None => "--no-defaults".into(),
        };
        let code = |program: &str| {
            let mut cmd = if program == "rdump" {
                rdump_command()
            } else {
                // The same clean environment as rdump_command's.
                let mut c = Command::new(program);
                c.env("HOME", empty_home());
                for var in [
                    "MYSQL_PWD",
                    "MYSQL_HOST",
                    "MYSQL_TCP_PORT",
                    "MYSQL_UNIX_PORT",
                ] {
                    c.env_remove(var);
                }
                c
            };
            cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
            cmd.arg(&defaults)
                .args(["-u", s.user(), &format!("-p{}", s.password())])
                .args(&args)
                .args(["--no-data", "seldb", "t3"]);
            let r = run(cmd);
            (r.code == Some(0), r.stderr)
        };
        let (ours, our_err) = code("rdump");
        let (theirs, their_err) = code(&common::system_dump_bin());
        if ours != expect || theirs != expect {
            mismatches.push(format!(
                "{name}: expected success={expect}, rdump {ours} ({our_err}), mariadb-dump {theirs} ({their_err})"
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn protocol_tcp_with_localhost_connects_over_tcp_and_ignores_the_socket() {
    let s = src();
    let port = format!("-P{}", s.port());
    let password = format!("-p{}", s.password());
    let where_tcp = where_connected_from("127.0.0.1:%");
    // --protocol comes last: a socket (or port) given after it would choose the transport,
    // as in mariadb-dump.
    let args = |protocol: Option<&'static str>| {
        let mut a: Vec<&str> = vec![
            "--no-defaults",
            "-hlocalhost",
            &port,
            "--socket=/nonexistent/mysql.sock",
        ];
        a.extend(protocol);
        a.extend([
            "-u",
            s.user(),
            &password,
            &where_tcp,
            "--skip-extended-insert",
            "seldb",
            "t2",
        ]);
        a
    };
    let out = rdump(&args(Some("--protocol=tcp"))).ok();
    assert_eq!(
        lines_starting(&out, "INSERT INTO `t2`").len(),
        3,
        "not connected over TCP:\n{out}"
    );
    // Control: without --protocol=tcp, the socket given last means the (missing) socket.
    let r = rdump(&args(None));
    assert_eq!(r.code, Some(2), "{}", r.stderr);
}

// ---------------------------------------------------------------------------
// 11. --flush-logs.

/// `SHOW BINARY LOGS`: the file names, oldest first.
fn binary_logs(server: &Server) -> Vec<String> {
    server
        .sql_rows("SHOW BINARY LOGS")
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

/// How many binlog files `rdump <args>` adds on the `--flush-logs` server.
fn new_binlogs_after_dump(server: &Server, args: &[&str]) -> usize {
    let before = binary_logs(server).len();
    dump_ok(server, args);
    binary_logs(server).len() - before
}

/// `--delete-master-logs`, as mariadb-dump: flushes the logs, records the new position
/// (commented, `--master-data=2`, unless asked otherwise) and, once the dump is complete,
/// purges every binary log before it: one file is left, the one the dump's position names.
#[test]
fn delete_master_logs_purges_the_logs_before_the_dumps_position_like_mariadb_dump() {
    let (_guard, f) = flush_server();
    // The server may keep a file InnoDB still needs (its binlog checkpoint), so the purge is
    // seen in the general log rather than in SHOW BINARY LOGS.
    f.sql("SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = 1;");
    for program in ["mariadb-dump", "rdump"] {
        f.sql("TRUNCATE mysql.general_log");
        let before = binary_logs(f);
        let args = ["--delete-master-logs", "--single-transaction", "flushdb"];
        let out = if program == "rdump" {
            dump_ok(f, &args)
        } else {
            String::from_utf8(f.system_dump(&args).expect("mariadb-dump")).unwrap()
        };
        let after = binary_logs(f);
        let newest = after.last().unwrap().clone();
        assert!(
            !before.contains(&newest),
            "{program}: no flush: {before:?} {after:?}"
        );
        assert!(
            out.contains(&format!("-- CHANGE MASTER TO MASTER_LOG_FILE='{newest}'")),
            "{program}:\n{out}"
        );
        assert!(out.contains("-- Dump completed"), "{program}");
        let purges = f.sql_rows(
            "SELECT argument FROM mysql.general_log WHERE argument LIKE 'PURGE BINARY LOGS%'",
        );
        assert_eq!(
            purges,
            [[format!("PURGE BINARY LOGS TO '{newest}'")]],
            "{program}"
        );
    }
    f.sql("SET GLOBAL general_log = 0; SET GLOBAL log_output = 'FILE';");
    // Not with --dir, whose files are checked by rload later.
    let r = dump(
        f,
        &["--delete-master-logs", "--dir=/nonexistent/x", "flushdb"],
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
}

#[test]
fn flush_logs_starts_one_new_binlog_file() {
    let (_guard, f) = flush_server();
    for flag in ["-F", "--flush-logs"] {
        assert_eq!(new_binlogs_after_dump(f, &[flag, "flushdb"]), 1, "{flag}");
    }
    assert_eq!(new_binlogs_after_dump(f, &["flushdb"]), 0, "not without it");
}

#[test]
fn flush_logs_with_master_data_and_lock_all_tables_records_the_start_of_the_new_binlog() {
    let (_guard, f) = flush_server();
    let before = binary_logs(f);
    let out = dump_ok(
        f,
        &[
            "--master-data=2",
            "--flush-logs",
            "--lock-all-tables",
            "flushdb",
        ],
    );
    let after = binary_logs(f);
    assert_eq!(after.len(), before.len() + 1, "{before:?} -> {after:?}");
    let newest = after.last().unwrap().clone();
    assert!(!before.contains(&newest));
    // The recorded position is the start of the new file's events; the server may append a
    // Binlog_checkpoint (not a transaction) in the background after the rotation, so
    // nothing but checkpoints may stand between it and the current position.
    let (file, _) = master_status(f);
    assert_eq!(file, newest);
    let Some((true, recorded_file, recorded_pos)) = change_master_line(&out) else {
        panic!("no active CHANGE MASTER line:\n{out}");
    };
    assert_eq!(recorded_file, newest);
    let events = f.sql_rows(&format!(
        "SHOW BINLOG EVENTS IN '{newest}' FROM {recorded_pos}"
    ));
    for e in &events {
        assert_eq!(
            e[2], "Binlog_checkpoint",
            "a transaction after the recorded position: {events:?}"
        );
    }
}

#[test]
fn flush_logs_with_single_transaction_starts_one_new_binlog_file() {
    // mariadb-dump takes FLUSH TABLES WITH READ LOCK, flushes the logs once and starts the
    // transaction under the lock.
    let (_guard, f) = flush_server();
    assert_eq!(
        new_binlogs_after_dump(f, &["--single-transaction", "--flush-logs", "flushdb"]),
        1
    );
}

#[test]
fn flush_logs_with_per_database_locks_flushes_once_per_database_like_mysqldump() {
    // mysqldump's manual: "the logs are flushed for each database dumped. The exception is
    // when using --lock-all-tables, --master-data, or --single-transaction"; mariadb-dump
    // 10.11 does so (checked here), with --lock-tables (the default) and without locks.
    let (_guard, f) = flush_server();
    for mode in ["--lock-tables", "--skip-lock-tables"] {
        let args = [mode, "--flush-logs", "-B", "flushdb", "flushdb2"];
        let before = binary_logs(f).len();
        f.system_dump(&args)
            .unwrap_or_else(|e| panic!("mariadb-dump {args:?}: {e}"));
        let reference = binary_logs(f).len() - before;
        assert_eq!(reference, 2, "mariadb-dump {args:?}");
        assert_eq!(new_binlogs_after_dump(f, &args), reference, "{args:?}");
    }
}

// ---------------------------------------------------------------------------
// 12. Row order and statement shape switches.

#[test]
fn order_by_primary_writes_rows_in_primary_key_order() {
    let s = src();
    let values = |out: &str| -> Vec<String> {
        lines_starting(out, "INSERT INTO `m` VALUES ")
            .iter()
            .map(|l| l["INSERT INTO `m` VALUES ".len()..].to_string())
            .collect()
    };
    // Control: a plain scan returns the MyISAM rows in insertion order.
    let plain = dump_ok(s, &["--skip-extended-insert", "orderdb", "m"]);
    assert_eq!(
        values(&plain),
        ["(3,'c');", "(1,'a');", "(4,'d');", "(2,'b');"]
    );
    let out = dump_ok(
        s,
        &[
            "--skip-extended-insert",
            "--order-by-primary",
            "orderdb",
            "m",
        ],
    );
    assert_eq!(
        values(&out),
        ["(1,'a');", "(2,'b');", "(3,'c');", "(4,'d');"]
    );
}

/// Restores `seldb.t1`'s rows, dumped with `verb_args` and `--no-create-info`, into a fresh
/// copy of t1 on the target that already holds `(1,'old')` and `(31,'extra')`.
fn restore_t1_rows_over_existing(db: &str, verb_args: &[&str]) -> (String, Result<(), String>) {
    let d = dst();
    d.sql(&format!(
        "CREATE DATABASE {db};
         CREATE TABLE {db}.t1 (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO {db}.t1 VALUES (1, 'old'), (31, 'extra');"
    ));
    let mut args = vec!["--no-create-info"];
    args.extend(verb_args);
    args.extend(["seldb", "t1"]);
    let out = dump_ok(src(), &args);
    let restored = d.restore_with_args(&[db], out.as_bytes());
    (out, restored)
}

#[test]
fn replace_writes_replace_statements_that_overwrite_existing_rows() {
    let d = dst();
    let (out, restored) = restore_t1_rows_over_existing("verb_replace", &["--replace"]);
    assert!(
        out.contains("\nREPLACE INTO `t1` VALUES (1,'v1'),"),
        "{out}"
    );
    assert!(!out.contains("INSERT"), "{out}");
    restored.unwrap();
    assert_eq!(
        d.sql_value("SELECT CONCAT(COUNT(*), ' ', (SELECT v FROM verb_replace.t1 WHERE id = 1)) FROM verb_replace.t1"),
        "31 v1"
    );
}

#[test]
fn insert_ignore_writes_insert_ignore_statements_that_keep_existing_rows() {
    let d = dst();
    let (out, restored) = restore_t1_rows_over_existing("verb_ignore", &["--insert-ignore"]);
    assert!(
        out.contains("\nINSERT IGNORE INTO `t1` VALUES (1,'v1'),"),
        "{out}"
    );
    assert!(!out.contains("INSERT INTO"), "{out}");
    restored.unwrap();
    assert_eq!(
        d.sql_value("SELECT CONCAT(COUNT(*), ' ', (SELECT v FROM verb_ignore.t1 WHERE id = 1)) FROM verb_ignore.t1"),
        "31 old"
    );
    // Control: plain INSERTs stop at the duplicate key.
    let (_, plain) = restore_t1_rows_over_existing("verb_plain", &[]);
    let err = plain.expect_err("plain INSERT over an existing key");
    assert!(err.contains("Duplicate entry"), "{err}");
}

#[test]
fn skip_add_drop_table_omits_drop_table() {
    let with = dump_ok(src(), &["seldb", "t3"]);
    assert!(has_line(&with, "DROP TABLE IF EXISTS `t3`;"), "{with}");
    let out = dump_ok(src(), &["--skip-add-drop-table", "seldb", "t3"]);
    assert!(!out.contains("DROP TABLE"), "{out}");
    assert!(out.contains("CREATE TABLE `t3`"), "{out}");
}

#[test]
fn add_drop_trigger_drops_each_trigger_before_creating_it() {
    let plain = dump_ok(src(), &["seldb", "t2"]);
    assert!(!plain.contains("DROP TRIGGER"), "not by default:\n{plain}");
    let out = dump_ok(src(), &["--add-drop-trigger", "seldb", "t2"]);
    let drop = out
        .find("\n/*!50032 DROP TRIGGER IF EXISTS `t2_bi` */;\n")
        .unwrap_or_else(|| panic!("no DROP TRIGGER:\n{out}"));
    let create = out.find("TRIGGER t2_bi ").expect("the trigger");
    assert!(drop < create, "{out}");
}

#[test]
fn no_autocommit_wraps_each_tables_rows_in_one_transaction() {
    let plain = dump_ok(src(), &["seldb", "t1", "t3"]);
    assert!(!plain.to_lowercase().contains("autocommit"), "{plain}");
    let out = dump_ok(src(), &["--no-autocommit", "seldb", "t1", "t3"]);
    let lines: Vec<&str> = out.lines().collect();
    for t in ["t1", "t3"] {
        let insert = lines
            .iter()
            .position(|l| l.starts_with(&format!("INSERT INTO `{t}`")))
            .unwrap_or_else(|| panic!("no rows of {t}:\n{out}"));
        let off = lines[..insert]
            .iter()
            .rposition(|l| l.eq_ignore_ascii_case("set autocommit=0;"))
            .unwrap_or_else(|| panic!("no autocommit=0 before {t}'s rows:\n{out}"));
        let commit = insert
            + lines[insert..]
                .iter()
                .position(|l| l.eq_ignore_ascii_case("commit;"))
                .unwrap_or_else(|| panic!("no commit after {t}'s rows:\n{out}"));
        // Nothing but the table's own lock/keys statements between them and its rows.
        assert!(
            lines[off + 1..commit]
                .iter()
                .all(|l| l.starts_with(&format!("INSERT INTO `{t}`"))
                    || l.starts_with('(')
                    || l.contains(&format!("`{t}`"))
                    || *l == "UNLOCK TABLES;"),
            "{t}: unexpected lines in its transaction:\n{}",
            lines[off..=commit].join("\n")
        );
    }
    dst().sql("CREATE DATABASE no_autocommit_target");
    dst()
        .restore_with_args(&["no_autocommit_target"], out.as_bytes())
        .unwrap();
    assert_eq!(
        dst().sql_value("SELECT COUNT(*) FROM no_autocommit_target.t1"),
        "30"
    );
}

#[test]
fn hex_blob_writes_blobs_as_hex_literals_that_restore_to_the_same_checksum() {
    let (s, d) = (src(), dst());
    let plain = dump_ok(s, &["--skip-extended-insert", "tabdb", "plain"]);
    assert!(
        plain.contains("VALUES (1,'plain text','\\0',42,"),
        "{plain}"
    );
    let out = dump_ok(
        s,
        &["--skip-extended-insert", "--hex-blob", "tabdb", "plain"],
    );
    for line in [
        "INSERT INTO `plain` VALUES (1,'plain text',0x00,42,1.500,'2024-01-02 03:04:05');",
        "INSERT INTO `plain` VALUES (5,'nul\\0byte',0x00FF00,NULL,12345.678,NULL);",
        // An empty BLOB has no hex digits: '' as in mysqldump.
        "INSERT INTO `plain` VALUES (6,'','',0,NULL,NULL);",
    ] {
        assert!(has_line(&out, line), "no line {line:?} in:\n{out}");
    }
    d.sql("CREATE DATABASE hex_blob_target");
    d.restore_with_args(&["hex_blob_target"], out.as_bytes())
        .unwrap();
    assert_eq!(
        checksum(s, "tabdb", "plain"),
        checksum(d, "hex_blob_target", "plain")
    );
}

/// As mysqldump: `rdump db | mysql otherdb` puts views in `otherdb`, reading `otherdb`'s
/// tables (the view's name and same-database references are written unqualified).
#[test]
fn views_restore_into_the_database_the_dump_is_loaded_into() {
    let d = dst();
    d.sql(
        "CREATE DATABASE viewsrc; CREATE TABLE viewsrc.t (id INT PRIMARY KEY); \
         INSERT INTO viewsrc.t VALUES (1),(2); \
         CREATE VIEW viewsrc.v AS SELECT id FROM viewsrc.t WHERE id > 1; \
         CREATE DATABASE viewcopy;",
    );
    let run = dump(d, &["viewsrc"]);
    run.ok();
    let text = run.text();
    assert!(
        !text.contains("`viewsrc`.`v`"),
        "view name is qualified:\n{text}"
    );
    assert!(
        !text.contains("`viewsrc`.`t`"),
        "view body names the source database"
    );
    d.restore_with_args(&["viewcopy"], &run.stdout).unwrap();
    d.sql("DROP DATABASE viewsrc");
    assert_eq!(d.sql_value("SELECT COUNT(*) FROM viewcopy.v"), "1");
}

/// `--skip-create-options`, `--skip-opt` and `--compatible=no_*_options` leave table, key
/// and column options out of CREATE TABLE exactly as mariadb-dump does (definitions read
/// under NO_KEY_OPTIONS, NO_TABLE_OPTIONS, NO_FIELD_OPTIONS), and `--create-options` after
/// `--skip-opt` brings them back.
#[test]
fn create_options_switches_shape_create_table_like_mariadb_dump() {
    let d = dst();
    d.sql(
        "CREATE DATABASE createopts;
         CREATE TABLE createopts.c (
           id INT PRIMARY KEY AUTO_INCREMENT, x INT COMMENT 'k',
           y VARCHAR(5) CHARACTER SET latin1 DEFAULT 'a',
           KEY kx (x) KEY_BLOCK_SIZE=4 COMMENT 'idx'
         ) ENGINE=InnoDB AUTO_INCREMENT=50 ROW_FORMAT=DYNAMIC COMMENT='tbl' CHARSET=utf8mb4;
         INSERT INTO createopts.c VALUES (NULL, 1, 'b');",
    );
    let create_table = |dump: &[u8]| -> String {
        let text = String::from_utf8_lossy(dump);
        let start = text.find("CREATE TABLE").expect("a CREATE TABLE");
        let end = start + text[start..].find(";\n").expect("its end");
        text[start..end].to_string()
    };
    for args in [
        &[][..],
        &["--skip-create-options"],
        &["--skip-opt"],
        &["--skip-opt", "--create-options"],
        &["--compatible=no_table_options"],
        &["--compatible=no_key_options,no_field_options"],
    ] {
        let mut all = args.to_vec();
        all.extend(["--no-data", "createopts", "c"]);
        let ours = create_table(&dump(d, &all).stdout);
        let theirs = create_table(&d.system_dump(&all).expect("mariadb-dump"));
        assert_eq!(ours, theirs, "{args:?}");
        let options_kept = !args.contains(&"--skip-create-options")
            && args != ["--skip-opt"]
            && !args.iter().any(|a| a.contains("no_table"));
        assert_eq!(
            ours.contains("ENGINE=InnoDB AUTO_INCREMENT="),
            options_kept,
            "{args:?}: {ours}"
        );
    }
    let r = dump(d, &["--compatible=ansi", "createopts"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("--compatible=ansi"), "{}", r.stderr);
}

/// `--delayed-insert` writes INSERT DELAYED (and REPLACE DELAYED, INSERT DELAYED IGNORE)
/// for the tables whose engine takes it, as mariadb-dump; `--galera-info` changes nothing
/// on a server that is not a Galera node, there as here.
#[test]
fn delayed_insert_and_galera_info_are_accepted_like_mariadb_dump() {
    let d = dst();
    d.sql(
        "CREATE DATABASE delayeddb;
         CREATE TABLE delayeddb.my (a INT) ENGINE=MyISAM; INSERT INTO delayeddb.my VALUES (1);
         CREATE TABLE delayeddb.me (a INT) ENGINE=MEMORY; INSERT INTO delayeddb.me VALUES (1);
         CREATE TABLE delayeddb.ar (a INT) ENGINE=Aria; INSERT INTO delayeddb.ar VALUES (1);
         CREATE TABLE delayeddb.inno (a INT) ENGINE=InnoDB; INSERT INTO delayeddb.inno VALUES (1);",
    );
    let verbs = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains(" INTO `"))
            .map(|l| l.split(" VALUES").next().unwrap().to_string())
            .collect()
    };
    for extra in [
        &["--delayed-insert"][..],
        &["--delayed-insert", "--replace"],
        &["--delayed-insert", "--insert-ignore"],
    ] {
        let mut args = extra.to_vec();
        args.push("delayeddb");
        let ours = dump_ok(d, &args);
        let theirs = String::from_utf8(d.system_dump(&args).unwrap()).unwrap();
        assert_eq!(verbs(&ours), verbs(&theirs), "{extra:?}");
    }
    let with = dump_ok(d, &["--galera-info", "--skip-dump-date", "delayeddb"]);
    let without = dump_ok(d, &["--skip-dump-date", "delayeddb"]);
    assert_eq!(with, without);
}

/// `--dump-history` dumps every row version of a system-versioned table with its
/// ROW_START and ROW_END, restored with `system_versioning_insert_history`, so the restored
/// table has the same history; `--as-of` dumps the rows of that time. Both as mariadb-dump
/// writes them (the same INSERTs), and refused with `--dir`.
#[test]
fn dump_history_and_as_of_dump_system_versioned_rows_like_mariadb_dump() {
    let d = dst();
    d.sql(
        "CREATE DATABASE versioned; CREATE DATABASE versioned_copy;
         CREATE TABLE versioned.sv (id INT PRIMARY KEY, v INT) WITH SYSTEM VERSIONING;
         CREATE TABLE versioned.plain (id INT PRIMARY KEY);
         INSERT INTO versioned.plain VALUES (1);
         INSERT INTO versioned.sv VALUES (1, 1), (2, 2);
         UPDATE versioned.sv SET v = 10 WHERE id = 1;
         DELETE FROM versioned.sv WHERE id = 2;",
    );
    // --as-of is read in UTC (--tz-utc), as by mariadb-dump.
    let between = d.sql_value("SELECT UTC_TIMESTAMP(6)");
    std::thread::sleep(Duration::from_millis(20));
    d.sql("INSERT INTO versioned.sv VALUES (3, 3)");
    // mariadb-dump 10.11.19 breaks the line after VALUES even for one row; rdump does not.
    let inserts = |text: &str| -> String {
        text.lines()
            .filter(|l| {
                l.starts_with("INSERT") || l.starts_with('(') || l.starts_with("/*M!101100")
            })
            .collect::<Vec<_>>()
            .join("\n")
            .replace("VALUES\n(", "VALUES (")
    };
    let as_of = format!("--as-of={between}");
    for args in [&["--dump-history", "versioned"][..], &[&as_of, "versioned"]] {
        let ours = dump_ok(d, args);
        let theirs = String::from_utf8(d.system_dump(args).unwrap()).unwrap();
        assert_eq!(inserts(&ours), inserts(&theirs), "{args:?}\n{ours}");
    }
    let history = |db: &str| {
        d.sql_rows(&format!(
            "SELECT id, v, ROW_START, ROW_END FROM {db}.sv FOR SYSTEM_TIME ALL ORDER BY ROW_START, id"
        ))
    };
    let run = dump(d, &["--dump-history", "versioned"]);
    run.ok();
    d.restore_with_args(&["versioned_copy"], &run.stdout)
        .unwrap();
    assert_eq!(history("versioned_copy"), history("versioned"));
    assert_eq!(history("versioned").len(), 4);
    let at = dump_ok(d, &[&as_of, "versioned", "sv"]);
    assert!(at.contains("INSERT INTO `sv` VALUES (1,10);"), "{at}");
    let r = dump(d, &["--dump-history", "--dir=/nonexistent/x", "versioned"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
}

/// Triggers, views and events are written in mariadb-dump's versioned-comment form, so the
/// usual `sed 's/DEFINER[ ]*=[ ]*[^*]*\*/\*/'` removes every definer (an account missing on
/// the target then does not stop the restore) and the result restores, each object then
/// owned by the restoring user. The form also restores unchanged, definers kept.
#[test]
fn definer_stripping_sed_works_on_triggers_views_and_events() {
    let d = dst();
    d.sql(
        "CREATE DATABASE definers; USE definers;
         CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10));
         CREATE DEFINER=`gone`@`%` TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.v = '*/';
         CREATE DEFINER=`gone`@`%` SQL SECURITY INVOKER VIEW vw AS SELECT id FROM t WHERE v <> '*/';
         CREATE DEFINER=`gone`@`%` EVENT ev ON SCHEDULE EVERY 1 DAY STARTS '2031-01-01' DISABLE DO SET @x = 1;
         CREATE DATABASE definers_kept; CREATE DATABASE definers_stripped;",
    );
    let run = dump(d, &["--events", "definers"]);
    run.ok();
    let text = run.text();
    for form in [
        "/*!50003 CREATE*/ /*!50017 DEFINER=`gone`@`%`*/ /*!50003 TRIGGER",
        "/*!50013 DEFINER=`gone`@`%` SQL SECURITY INVOKER */",
        "/*!50106 CREATE*/ /*!50117 DEFINER=`gone`@`%`*/ /*!50106 EVENT",
    ] {
        assert!(text.contains(form), "no {form:?} in\n{text}");
    }
    d.restore_with_args(&["definers_kept"], &run.stdout)
        .unwrap();
    let definers = |db: &str| {
        d.sql_rows(&format!(
            "SELECT DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '{db}'
             UNION ALL SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '{db}'
             UNION ALL SELECT DEFINER FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '{db}'"
        ))
        .into_iter()
        .map(|r| r[0].clone())
        .collect::<Vec<_>>()
    };
    assert_eq!(definers("definers_kept"), ["gone@%"; 3]);

    let mut sed = Command::new("sed");
    sed.arg("s/DEFINER[ ]*=[ ]*[^*]*\\*/\\*/");
    let stripped = run_with_stdin(sed, &run.stdout).expect("sed");
    assert!(stripped.status.success());
    let stripped_text = String::from_utf8_lossy(&stripped.stdout);
    assert!(
        !stripped_text.contains("DEFINER="),
        "a definer survived the sed:\n{stripped_text}"
    );
    d.restore_with_args(&["definers_stripped"], &stripped.stdout)
        .unwrap();
    assert_eq!(definers("definers_stripped"), ["root@localhost"; 3]);
    d.sql("INSERT INTO definers_stripped.t VALUES (1, 'x')");
    assert_eq!(
        d.sql_value("SELECT v FROM definers_stripped.t"),
        "*/",
        "the trigger restored with its body"
    );
    assert_eq!(
        d.sql_value("SELECT COUNT(*) FROM definers_stripped.vw"),
        "0"
    );
}

/// `--zstd` compresses the single stream too: the frame decompresses to the same dump.
#[test]
fn zstd_single_stream_decompresses_to_the_plain_dump() {
    let plain = dump(src(), &["--skip-dump-date", "--threads=1", "seldb"]);
    plain.ok();
    let packed = dump(
        src(),
        &["--skip-dump-date", "--threads=1", "--zstd=9", "seldb"],
    );
    packed.ok();
    assert!(packed.stdout.len() < plain.stdout.len());
    assert_eq!(zstd::decode_all(&packed.stdout[..]).unwrap(), plain.stdout);
}

/// An account without RELOAD cannot take the brief lock that puts several readers in one
/// snapshot: rdump reads with one connection, as mysqldump, silently when the reader count
/// was its default, with a warning when `--threads` asked for more. Also logs in over TCP
/// with a password through rdump's own client.
#[test]
fn without_reload_a_single_transaction_reads_with_one_connection() {
    let s = src();
    let as_app = |extra: &[&str]| {
        let mut cmd = rdump_command();
        cmd.args([
            "--no-defaults",
            "-h127.0.0.1",
            &format!("-P{}", s.port()),
            "-ucli_app",
            &format!("-p{APP_PASSWORD}"),
            "--single-transaction",
            "--skip-dump-date",
            "--skip-triggers",
            "--verbose",
        ])
        .args(extra)
        .arg("seldb");
        run(cmd)
    };
    let implicit = as_app(&[]);
    let out = implicit.ok();
    assert!(out.contains("INSERT INTO `t1` VALUES"), "{out}");
    assert!(
        implicit.stderr.contains("(rdump's text-protocol client)"),
        "{}",
        implicit.stderr
    );
    assert!(!implicit.stderr.contains("warning"), "{}", implicit.stderr);
    let asked = as_app(&["--threads=2"]);
    assert_eq!(asked.ok(), out);
    assert!(
        asked.stderr.contains(
            "no RELOAD privilege for a snapshot shared by 2 connections; reading with one"
        ),
        "{}",
        asked.stderr
    );
}
