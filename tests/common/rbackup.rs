//! Running the real `rbackup` binary in tests: the repository and key variables of the
//! test's own environment are removed first, so only what a test passes reaches it
//! ([`rbackup`], [`command`]; [`rbackup_on`] adds a server's connection options). Also
//! the repositories the tests run it on: [`PassphraseRepo`] (`rbackup init` with a
//! passphrase file, in a temporary directory) and [`KeyRepo`] (with an age identity and a
//! writer key); and what tests put into a binlog archive without a server:
//! [`binlog_events`] and the [`segment`] record of them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use age::secrecy::ExposeSecret;

use super::{Server, connection};

/// Runs `rbackup ARGS` with `env` and nothing of the caller's RBACKUP_*/AWS_ENDPOINT_URL.
pub fn rbackup(args: &[&str], env: &[(&str, String)]) -> Output {
    command(args, env).output().expect("run rbackup")
}

/// The command [`rbackup`] runs, to spawn it (stdout and stderr piped).
#[allow(dead_code)]
pub fn command(args: &[&str], env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rbackup"));
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd.args(args);
    for var in [
        "RBACKUP_REPO",
        "RBACKUP_IDENTITY_FILE",
        "RBACKUP_PASSPHRASE_FILE",
        "RBACKUP_WRITER_KEY_FILE",
        "RBACKUP_CONFIG",
        "RBACKUP_TO",
        "RBACKUP_TO_WRITER_KEY_FILE",
        "RBACKUP_TO_IDENTITY_FILE",
        "RBACKUP_TO_AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// A run's exit status, stdout and stderr, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `rbackup ARGS <server's connection options> TAIL` (see [`rbackup`]).
pub fn rbackup_on(args: &[&str], server: &Server, tail: &[&str]) -> Output {
    command_on(args, server, tail)
        .output()
        .expect("run rbackup")
}

/// The command [`rbackup_on`] runs, to spawn it (stdout and stderr piped).
pub fn command_on(args: &[&str], server: &Server, tail: &[&str]) -> Command {
    let connection = connection(server);
    let mut all = args.to_vec();
    all.extend(connection.iter().map(String::as_str));
    all.extend_from_slice(tail);
    command(&all, &[])
}

/// A repository made by `rbackup init --passphrase-file` in a temporary directory (the
/// repository `repo` and the passphrase file `pass` in it), removed on drop.
pub struct PassphraseRepo {
    /// The temporary directory, for the test's other files.
    pub dir: tempfile::TempDir,
    /// The repository's URL (a local path).
    pub url: String,
    /// The passphrase file's path.
    pub pass: String,
}

impl PassphraseRepo {
    /// Makes the repository; panics with rbackup's output if `init` fails.
    pub fn init() -> PassphraseRepo {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("repo").to_str().unwrap().to_string();
        let pass = dir.path().join("pass");
        std::fs::write(&pass, "a long passphrase\n").unwrap();
        let pass = pass.to_str().unwrap().to_string();
        let out = rbackup(&["init", "--repo", &url, "--passphrase-file", &pass], &[]);
        assert!(out.status.success(), "{}", text(&out));
        PassphraseRepo { dir, url, pass }
    }
}

/// Binlog events from `start` to `end` of a file, as a server writes them: each with its
/// header (size, and the position where it ends), a body of `body(position, length)` and
/// its CRC32. Events are at most 4 KiB.
pub fn binlog_events(start: u64, end: u64, body: impl Fn(u64, usize) -> Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity((end - start) as usize);
    let mut pos = start;
    while pos < end {
        let left = (end - pos) as usize;
        let mut size = left.min(4096);
        if left > size && left - size < 23 {
            size = left - 23;
        }
        assert!(size >= 23, "{start}-{end}: too short for an event");
        let at = out.len();
        out.extend_from_slice(&0u32.to_le_bytes());
        out.push(2); // QUERY
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&(size as u32).to_le_bytes());
        out.extend_from_slice(&((pos + size as u64) as u32).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&body(pos, size - 23));
        let crc = crc32fast::hash(&out[at..]);
        out.extend_from_slice(&crc.to_le_bytes());
        pos += size as u64;
    }
    out
}

/// What the archiver records of a segment of `bytes`: events from `start` to `end` of
/// `file` (counted as one, dated `time`), archived from server identity `server`, ending
/// the file with a ROTATE to `rotate_to`.
pub fn segment(
    file: &str,
    (start, end): (u64, u64),
    time: u32,
    bytes: &[u8],
    server: &str,
    rotate_to: Option<&str>,
) -> rdump::binlog::segment::Segment {
    rdump::binlog::segment::Segment {
        file: file.to_string(),
        start,
        end,
        events: 1,
        first_event_time: time,
        last_event_time: time,
        gtids: vec![],
        ends_in_transaction: false,
        rotate_to: rotate_to.map(str::to_string),
        ends_with_stop: false,
        format_description: vec![1, 2, 3],
        crc32: crc32fast::hash(bytes),
        server: Some(server.to_string()),
    }
}

/// A repository made by `rbackup init --recipient R --writer-key-file W`: read with the age
/// identity file `<dir>/<name>.id` (whose recipient is R), written with the writer key
/// `<dir>/<name>.wk`.
pub struct KeyRepo {
    /// `<dir>/<name>`: the repository of [`KeyRepo::init`] (unused by [`KeyRepo::init_at`]).
    pub path: PathBuf,
    pub url: String,
    /// The identity file's path.
    pub identity: String,
    /// The writer key file's path.
    pub writer_key: PathBuf,
}

impl KeyRepo {
    /// The repository `<dir>/<name>`; panics with rbackup's output if `init` fails.
    pub fn init(dir: &Path, name: &str) -> KeyRepo {
        let url = dir.join(name).to_str().unwrap().to_string();
        KeyRepo::init_at(dir, name, &url, &[])
    }

    /// The repository at `url` (`rbackup init` run with `env`), its keys in `dir`.
    pub fn init_at(dir: &Path, name: &str, url: &str, env: &[(&str, String)]) -> KeyRepo {
        let identity = age::x25519::Identity::generate();
        let id_path = dir.join(format!("{name}.id"));
        std::fs::write(
            &id_path,
            format!("{}\n", identity.to_string().expose_secret()),
        )
        .unwrap();
        let writer_key = dir.join(format!("{name}.wk"));
        let out = rbackup(
            &[
                "init",
                "--repo",
                url,
                "--recipient",
                &identity.to_public().to_string(),
                "--writer-key-file",
                writer_key.to_str().unwrap(),
            ],
            env,
        );
        assert!(out.status.success(), "{}", text(&out));
        KeyRepo {
            path: dir.join(name),
            url: url.to_string(),
            identity: id_path.to_str().unwrap().to_string(),
            writer_key,
        }
    }

    /// (path, URL, identity file, writer key file).
    pub fn parts(&self) -> (&Path, &str, &str, &Path) {
        (&self.path, &self.url, &self.identity, &self.writer_key)
    }

    /// `rbackup ARGS --repo URL --identity-file F` with `env`.
    pub fn run(&self, args: &[&str], env: &[(&str, String)]) -> Output {
        let mut a = args.to_vec();
        a.extend(["--repo", &self.url, "--identity-file", &self.identity]);
        rbackup(&a, env)
    }

    /// `copy` arguments from this repository (read with its identity) to `to` (written
    /// with its writer key).
    pub fn copy_to<'a>(&'a self, to: &'a KeyRepo) -> Vec<&'a str> {
        let mut args = self.copy_args(to);
        args.extend(["--to-writer-key-file", to.writer_key.to_str().unwrap()]);
        args
    }

    /// [`KeyRepo::copy_to`] with `to`'s identity instead of its writer key.
    pub fn copy_to_reader<'a>(&'a self, to: &'a KeyRepo) -> Vec<&'a str> {
        let mut args = self.copy_args(to);
        args.extend(["--to-identity-file", &to.identity]);
        args
    }

    fn copy_args<'a>(&'a self, to: &'a KeyRepo) -> Vec<&'a str> {
        vec![
            "copy",
            "--repo",
            &self.url,
            "--identity-file",
            &self.identity,
            "--to",
            &to.url,
        ]
    }
}
