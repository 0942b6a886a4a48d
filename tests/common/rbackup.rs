//! Running the real `rbackup` binary in tests: the repository and key variables of the
//! test's own environment are removed first, so only what a test passes reaches it.

use std::process::{Command, Output};

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
