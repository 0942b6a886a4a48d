//! Running the real `rbackup` binary in tests: the repository and key variables of the
//! test's own environment are removed first, so only what a test passes reaches it
//! ([`rbackup`], [`command`]; [`rbackup_on`] adds a server's connection options). Also
//! the repositories the tests run it on: [`PassphraseRepo`] (`rbackup init` with a
//! passphrase file, in a temporary directory).

use std::process::{Command, Output};

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
