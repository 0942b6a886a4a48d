//! A real S3-compatible server for the repository tests: `moto_server` (PyPI
//! `moto[server]`, on PATH) on a free loopback port, started like the MariaDB sandboxes
//! (with PR_SET_PDEATHSIG, so it dies with the test process) and stopped on drop.
//! moto keeps its buckets in memory: a restarted server is empty.
//!
//! Override the binary with `RDUMP_TEST_MOTO_SERVER`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Credentials moto accepts (it checks none).
pub const ACCESS_KEY_ID: &str = "rbackup-test";
pub const SECRET_ACCESS_KEY: &str = "rbackup-test-secret";
pub const REGION: &str = "us-east-1";

pub struct MotoServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl MotoServer {
    /// Starts a server and waits until it answers HTTP.
    pub fn start() -> MotoServer {
        let dir = tempfile::tempdir().expect("temp dir for moto's log");
        let port = super::free_port();
        let bin = std::env::var("RDUMP_TEST_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let log = std::fs::File::create(dir.path().join("moto.log")).expect("moto log");
        let mut cmd = Command::new(&bin);
        cmd.args(["-p", &port.to_string(), "-H", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        let child = super::spawn_with_parent_death_signal(cmd)
            .unwrap_or_else(|e| panic!("cannot start {bin} (pip install 'moto[server]'): {e}"));
        let mut server = MotoServer {
            child: Some(child),
            port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.request("GET", "/").is_err() {
            if let Some(status) = server.child.as_mut().unwrap().try_wait().ok().flatten() {
                panic!("moto_server exited ({status}): {}", server.log());
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("moto.log")
    }

    /// One plain HTTP request (moto checks no signature); the status line's code.
    fn request(&self, method: &str, path: &str) -> std::io::Result<u16> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer)?;
        let text = String::from_utf8_lossy(&answer);
        text.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not HTTP: {text}")))
    }

    pub fn create_bucket(&self, name: &str) {
        let code = self
            .request("PUT", &format!("/{name}"))
            .expect("create bucket");
        assert_eq!(code, 200, "creating bucket {name}: {}", self.log());
    }

    /// The environment a child process (`rbackup`) needs to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
        ]
    }

    /// Freezes the server (SIGSTOP): it keeps its state (in memory) and its port, accepts
    /// connections and answers nothing, as a hung or cut-off server does.
    #[allow(dead_code)]
    pub fn pause(&self) {
        if let Some(child) = &self.child {
            super::signal(child, libc::SIGSTOP);
        }
    }

    /// Lets a paused server go on (SIGCONT).
    #[allow(dead_code)]
    pub fn resume(&self) {
        if let Some(child) = &self.child {
            super::signal(child, libc::SIGCONT);
        }
    }

    /// The keys under `prefix` in `bucket` with their sizes (ListObjectsV2, up to 1000).
    #[allow(dead_code)]
    pub fn objects(&self, bucket: &str, prefix: &str) -> Vec<(String, u64)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to moto");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET /{bucket}?list-type=2&prefix={prefix} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).expect("moto's answer");
        let text = String::from_utf8_lossy(&answer).to_string();
        let field = |part: &str, tag: &str| -> Option<String> {
            let open = format!("<{tag}>");
            let start = part.find(&open)? + open.len();
            let end = part[start..].find(&format!("</{tag}>"))? + start;
            Some(part[start..end].to_string())
        };
        text.split("<Contents>")
            .skip(1)
            .filter_map(|c| Some((field(c, "Key")?, field(c, "Size")?.parse().ok()?)))
            .collect()
    }

    /// Stops the server (SIGKILL: a storage outage).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.stop();
    }
}
