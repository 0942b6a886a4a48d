//! A throwaway MariaDB (or MySQL) server for restore drills: initialized by
//! `mariadb-install-db` (MySQL: `mysqld --initialize-insecure`) in a private temporary
//! directory (`$TMPDIR/rbackup-drill-*`, mode 0700), started from the local
//! `mariadbd`/`mysqld` on a unix socket only (`--skip-networking`), root without a
//! password, reachable only by this OS user (the directory's mode), and removed after.
//!
//! Cleanup: dropping a `ScratchServer` kills the server (SIGKILL: its data is thrown away
//! anyway) and removes the directory; this also runs when the drill fails or is
//! interrupted (the drill's future is dropped). The server runs in a process group of its
//! own (a terminal's Ctrl-C reaches rbackup, which then removes it) and with
//! `PR_SET_PDEATHSIG` = SIGKILL, tied to a keeper thread that lives as long as the
//! server, so it dies with rbackup even when rbackup is killed with SIGKILL (its directory
//! then stays behind, named `rbackup-drill-*`).
//!
//! The first drill keeps a copy of the initialized datadir in `~/.cache/rbackup/` (see
//! `template_dir`); later drills copy it instead of running `mariadb-install-db`.
//!
//! Settings trade durability for speed (no doublewrite, no log flush at commit, no binary
//! log) and keep the restored data inert (`event_scheduler=OFF`).
//!
//! Not for: restoring into it or comparing (`trust::drill`).

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::client::options::ConnectionOptions;

/// How long the server may take to accept connections after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(180);

#[derive(Debug, Clone, Default)]
pub struct ScratchOptions {
    /// The server binary; `None`: `mariadbd`, then `mysqld`, in `$PATH`, `/usr/sbin`,
    /// `/usr/local/sbin`, `/usr/local/mysql/bin`.
    pub server: Option<PathBuf>,
    /// `--innodb-buffer-pool-size` (default 256M).
    pub buffer_pool: Option<String>,
}

pub struct ScratchServer {
    dir: Option<tempfile::TempDir>,
    /// A short directory in /tmp for the socket when `$TMPDIR` is too long for one.
    socket_dir: Option<tempfile::TempDir>,
    socket: PathBuf,
    stop: Option<mpsc::Sender<()>>,
    keeper: Option<std::thread::JoinHandle<()>>,
    /// `mariadbd --version`'s line, for the drill record.
    pub version: String,
}

impl std::fmt::Debug for ScratchServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScratchServer({})", self.socket.display())
    }
}

fn find(names: &[&str]) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for d in [
        "/usr/sbin",
        "/usr/local/sbin",
        "/usr/local/mysql/bin",
        "/usr/bin",
    ] {
        dirs.push(d.into());
    }
    for name in names {
        for d in &dirs {
            let p = d.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Runs `cmd` in a process group of its own, killed if the spawning thread dies.
fn spawn_guarded(cmd: &mut Command) -> std::io::Result<std::process::Child> {
    cmd.process_group(0);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Where an initialized datadir is kept for the next drill (`$XDG_CACHE_HOME` or
/// `~/.cache`, `rbackup/scratch-<hash of the server binary, its version, root or not>`,
/// mode 0700): copying it takes well under a second, `mariadb-install-db` about 4 s on a
/// quiet 2-core VM and 5 to 9 s on a loaded one. It holds only a fresh server's system
/// tables (root without a password, like every scratch server; the directory is the
/// user's own, 0700). `RBACKUP_SCRATCH_TEMPLATE=0` turns it off.
fn template_dir(server: &Path, version: &str, as_root: bool) -> Option<PathBuf> {
    if std::env::var_os("RBACKUP_SCRATCH_TEMPLATE").is_some_and(|v| v == "0") {
        return None;
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let key = format!("{}\n{version}\n{as_root}", server.display());
    let hash = blake3::hash(key.as_bytes()).to_hex();
    Some(
        base.join("rbackup")
            .join(format!("scratch-{}", &hash[..16])),
    )
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    let out = Command::new("cp")
        .arg("-a")
        .arg("--reflink=auto")
        .arg(from)
        .arg(to)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run cp: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Keeps a copy of a freshly initialized datadir as the template (best effort: made
/// under a temporary name, then renamed; a concurrent drill's template wins).
fn save_template(datadir: &Path, template: &Path) {
    use std::os::unix::fs::DirBuilderExt;
    let Some(parent) = template.parent() else {
        return;
    };
    if std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)
        .is_err()
    {
        return;
    }
    let Ok(tmp) = tempfile::Builder::new()
        .prefix(".scratch-")
        .tempdir_in(parent)
    else {
        return;
    };
    if copy_dir(datadir, &tmp.path().join("data")).is_ok()
        && std::fs::write(tmp.path().join("READY"), b"").is_ok()
    {
        let path = tmp.keep();
        if std::fs::rename(&path, template).is_err() {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// True once the server sent its handshake (protocol 10) on `socket`.
fn greets(socket: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut head = [0u8; 5];
    s.read_exact(&mut head).is_ok() && head[4] == 10
}

impl ScratchServer {
    /// Initializes and starts a server; blocks until it accepts connections (seconds:
    /// `mariadb-install-db` takes about 4 s on a quiet 2-core VM). An error says which
    /// step failed, with the tail of the server's log.
    pub fn start(options: &ScratchOptions) -> Result<ScratchServer, String> {
        let server = match &options.server {
            Some(p) => p.clone(),
            None => find(&["mariadbd", "mysqld"]).ok_or(
                "no mariadbd or mysqld found in $PATH, /usr/sbin, /usr/local/sbin or \
                 /usr/local/mysql/bin: give --scratch-server PATH or --target",
            )?,
        };
        let version = Command::new(&server)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", server.display()))?;
        let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
        let mariadb =
            version.contains("MariaDB") || server.file_name().is_some_and(|n| n == "mariadbd");
        let dir = tempfile::Builder::new()
            .prefix("rbackup-drill-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let p = |name: &str| dir.path().join(name);
        // A unix socket path must fit in 108 bytes; a long $TMPDIR gets one in /tmp.
        let mut socket = p("mysql.sock");
        let mut socket_dir = None;
        if socket.as_os_str().len() > 100 {
            let d = tempfile::Builder::new()
                .prefix("rbd")
                .tempdir_in("/tmp")
                .map_err(|e| format!("cannot create a socket directory in /tmp: {e}"))?;
            socket = d.path().join("s");
            socket_dir = Some(d);
        }
        std::fs::create_dir(p("tmp")).map_err(|e| format!("{}: {e}", p("tmp").display()))?;
        let as_root = rustix::process::geteuid().is_root();
        let datadir = p("data");
        let log = p("error.log");
        let init = if mariadb {
            let install = server
                .parent()
                .map(|d| d.join("mariadb-install-db"))
                .filter(|p| p.is_file())
                .or_else(|| find(&["mariadb-install-db", "mysql_install_db"]))
                .ok_or("no mariadb-install-db found beside the server or in $PATH")?;
            let mut cmd = Command::new(&install);
            cmd.args([
                "--no-defaults",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ])
            .arg(format!("--datadir={}", datadir.display()));
            if as_root {
                cmd.arg("--user=root");
            }
            cmd
        } else {
            let mut cmd = Command::new(&server);
            cmd.arg("--no-defaults")
                .arg("--initialize-insecure")
                .arg(format!("--datadir={}", datadir.display()))
                .arg(format!("--log-error={}", log.display()));
            if as_root {
                cmd.arg("--user=root");
            }
            cmd
        };
        let template = template_dir(&server, &version, as_root);
        let copied = template
            .as_ref()
            .filter(|t| t.join("READY").is_file())
            .is_some_and(|t| copy_dir(&t.join("data"), &datadir).is_ok());
        if !copied {
            let _ = std::fs::remove_dir_all(&datadir);
            let mut init = init;
            init.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let out = spawn_guarded(&mut init)
                .and_then(|c| c.wait_with_output())
                .map_err(|e| format!("cannot initialize the scratch server: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "initializing the scratch server failed ({}): {}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr),
                    tail(&log, 20)
                ));
            }
            if let Some(t) = &template {
                save_template(&datadir, t);
            }
        }
        let mut args = vec![
            "--no-defaults".to_string(),
            format!("--datadir={}", datadir.display()),
            format!("--socket={}", socket.display()),
            "--skip-networking".into(),
            format!("--pid-file={}", p("server.pid").display()),
            format!("--log-error={}", log.display()),
            format!("--tmpdir={}", p("tmp").display()),
            "--skip-name-resolve".into(),
            "--character-set-server=utf8mb4".into(),
            format!(
                "--innodb-buffer-pool-size={}",
                options.buffer_pool.as_deref().unwrap_or("256M")
            ),
            "--innodb-flush-log-at-trx-commit=0".into(),
            "--innodb-doublewrite=0".into(),
            "--max-allowed-packet=1G".into(),
            "--event-scheduler=OFF".into(),
            "--skip-log-bin".into(),
        ];
        if mariadb {
            args.push("--collation-server=utf8mb4_general_ci".into());
        }
        if as_root {
            args.push("--user=root".into());
        }
        // The keeper thread forks the server (PDEATHSIG follows the forking thread) and
        // lives until the server is stopped.
        let (stop, stopped) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel::<Result<(), String>>();
        let exited: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let exited_k = Arc::clone(&exited);
        let server_k = server.clone();
        let keeper = std::thread::Builder::new()
            .name("rbackup-scratch".into())
            .spawn(move || {
                let mut cmd = Command::new(&server_k);
                cmd.args(&args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                let mut child = match spawn_guarded(&mut cmd) {
                    Ok(c) => {
                        let _ = started_tx.send(Ok(()));
                        c
                    }
                    Err(e) => {
                        let _ = started_tx
                            .send(Err(format!("cannot start {}: {e}", server_k.display())));
                        return;
                    }
                };
                loop {
                    match stopped.recv_timeout(Duration::from_millis(50)) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            if let Ok(Some(status)) = child.try_wait() {
                                *exited_k.lock().unwrap() = Some(status.to_string());
                                return;
                            }
                        }
                        // Stop, or the ScratchServer is gone.
                        _ => {
                            let _ = child.kill();
                            let _ = child.wait();
                            return;
                        }
                    }
                }
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        let mut scratch = ScratchServer {
            dir: Some(dir),
            socket_dir,
            socket,
            stop: Some(stop),
            keeper: Some(keeper),
            version,
        };
        started_rx
            .recv()
            .map_err(|_| "the scratch server's keeper thread ended".to_string())??;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = exited.lock().unwrap().clone() {
                return Err(format!(
                    "the scratch server exited while starting ({status}); tail of its log:\n{}",
                    tail(&log, 30)
                ));
            }
            if greets(&scratch.socket) {
                break;
            }
            if Instant::now() > deadline {
                scratch.shutdown();
                return Err(format!(
                    "the scratch server did not accept connections within {} s; tail of its log:\n{}",
                    START_TIMEOUT.as_secs(),
                    tail(&log, 30)
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Ok(scratch)
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// root over the unix socket, no password.
    pub fn connection(&self) -> ConnectionOptions {
        ConnectionOptions {
            user: Some("root".into()),
            socket: Some(self.socket.clone()),
            host: Some("localhost".into()),
            ..ConnectionOptions::default()
        }
    }

    /// Kills the server and removes its directory (also done on drop).
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(k) = self.keeper.take() {
            let _ = k.join();
        }
        if let Some(d) = self.dir.take() {
            let path = d.path().to_path_buf();
            if d.close().is_err() {
                let _ = std::fs::remove_dir_all(path);
            }
        }
        self.socket_dir.take();
    }
}

impl Drop for ScratchServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
