//! Asking for a password (`-p` with no value), as the mysql clients do through glibc's
//! `getpass`: on the controlling terminal when there is one (echo off), else with the
//! prompt on stderr and one line read from stdin, so `echo pw | rdump -p ...` works in a
//! script or a cron job. Shared by `rdump` and `rload`.
//!
//! Not for: deciding whether to ask (that is `options`: `Password::Prompt`).

use std::io::{BufRead, Write};

/// Reads a password after showing `prompt`. Without a terminal, an empty stdin gives an
/// empty password (connecting without one), as mariadb-dump.
pub fn password(prompt: &str) -> std::io::Result<String> {
    if std::fs::File::open("/dev/tty").is_ok() {
        return rpassword::prompt_password(prompt);
    }
    let mut err = std::io::stderr();
    let _ = err.write_all(prompt.as_bytes());
    let _ = err.flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let trimmed = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(trimmed);
    Ok(line)
}
