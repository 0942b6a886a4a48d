//! Point-in-time restore, applying: the events of a `replay::ReplayPlan` replayed into the
//! target through the server's own decoder, `mariadb-binlog -` (MySQL: `mysqlbinlog -`)
//! reading the archived bytes on its stdin, its SQL piped through rbackup into one
//! `mariadb` (`mysql`) client.
//!
//! ```text
//! per binlog file of the plan: magic + FORMAT_DESCRIPTION + the plan's pieces of the
//!   file's segments (SegmentSource::segment_bytes, one at a time, through a channel of 2)
//!   ─► writer thread ─► mariadb-binlog stdin
//! mariadb-binlog stdout ─► pump thread (counts lines, remembers the GTID comment lines)
//!   ─► mariadb stdin (one client for the whole replay; it stops at the first error)
//! ```
//!
//! Why the server's decoder rather than a native applier: it is on every server host, it
//! is the tool the server's makers keep in step with every event type (row events,
//! compressed events, annotations, XA), and what it prints is what a DBA would run by hand.
//! A skipped transaction is left out of the bytes handed to it (it reads events one after
//! the other and does not check that positions continue), so no --start/--stop-position
//! arithmetic is needed.
//!
//! The password goes to the client in a 0600 option file (`--defaults-file`), never on a
//! command line; the decoder gets no connection at all. Before anything changes, the
//! target's account is checked for what replaying needs (`privilege_check_sql`: the
//! `BINLOG` statement of the file's FORMAT_DESCRIPTION, harmless, needs BINLOG REPLAY on
//! MariaDB 10.5+, SUPER before, SUPER or BINLOG_ADMIN on MySQL). A replayed transaction
//! that fails stops the replay (`ApplyError::Failed` names it: its GTID and position, from
//! the decoder's comment lines before the client's failing line).
//!
//! Not for: choosing what to replay (`replay`), loading the backup (rload's loader).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::binlog::event::BINLOG_MAGIC;
use crate::binlog::replay::{MysqlGtids, ReplayGtids, ReplayPlan};
use crate::binlog::segment::SegmentSource;
use crate::client::conn::Session;
use crate::client::options::{ConnectionOptions, Password, Protocol, SslMode};
use crate::sql::dialect::{Dialect, Flavor};
use crate::sql::quote::string_literal;

/// Why a replay failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The target's account lacks a privilege replaying needs (nothing was changed).
    #[error("{0}")]
    Privileges(String),
    /// `mariadb-binlog`/`mariadb` missing or failing to start.
    #[error("{0}")]
    Tool(String),
    /// A replayed transaction failed on the target.
    #[error("{0}")]
    Failed(String),
    #[error("binlog archive: {0}")]
    Archive(String),
    #[error("{0}")]
    Io(String),
}

/// The programs that replay, for a server flavor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    pub decoder: PathBuf,
    pub client: PathBuf,
    pub flavor: Flavor,
}

impl Tools {
    /// Finds the decoder and the client on `PATH`: `mariadb-binlog` and `mariadb` (else
    /// the `mysql*` names MariaDB also installs) for MariaDB, `mysqlbinlog` and `mysql`
    /// for MySQL (MariaDB's decoder does not read MySQL 8's binlogs).
    pub fn find(flavor: Flavor) -> Result<Tools, ApplyError> {
        let (decoders, clients): (&[&str], &[&str]) = match flavor {
            Flavor::MariaDb => (&["mariadb-binlog", "mysqlbinlog"], &["mariadb", "mysql"]),
            Flavor::MySql => (&["mysqlbinlog"], &["mysql"]),
        };
        let find = |names: &[&str]| {
            names.iter().find_map(|n| on_path(n)).ok_or_else(|| {
                ApplyError::Tool(format!(
                    "{} not found on PATH: point-in-time restore replays the archived \
                     events through the server's own decoder",
                    names.join(" or ")
                ))
            })
        };
        Ok(Tools {
            decoder: find(decoders)?,
            client: find(clients)?,
            flavor,
        })
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The decoder's arguments: no option files, the replayed statements kept out of the
/// target's binlog (`SET sql_log_bin=0`, as the backup's load) unless `log_bin`, the
/// binlog read from stdin.
pub fn decoder_args(_flavor: Flavor, log_bin: bool) -> Vec<String> {
    let mut a = vec!["--no-defaults".to_string()];
    if !log_bin {
        a.push("--disable-log-bin".into());
    }
    a.push("-".into());
    a
}

/// The client's arguments: the option file first (the only one read), statements
/// passed through byte for byte (`--binary-mode`: the decoder's output may hold any
/// byte), stop at the first error (the default without `--force`).
pub fn client_args(_flavor: Flavor, option_file: &Path) -> Vec<String> {
    vec![
        format!("--defaults-file={}", option_file.display()),
        "--binary-mode".into(),
        "--batch".into(),
    ]
}

/// A value of an option file, quoted: `"` and `\` escaped, as both clients read them.
fn option_value(v: &str) -> String {
    let mut out = String::from("\"");
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `[client]` option file that gives the client the target's connection and password
/// (written 0600 by `apply`; never an argument, which `ps` would show).
pub fn client_option_file(opts: &ConnectionOptions, flavor: Flavor) -> String {
    let mut s = String::from("[client]\n");
    let mut line = |k: &str, v: String| s.push_str(&format!("{k}={v}\n"));
    if let Some(h) = &opts.host {
        line("host", option_value(h));
    }
    if opts.port != 0 {
        line("port", opts.port.to_string());
    }
    if let Some(p) = &opts.socket {
        line("socket", option_value(&p.to_string_lossy()));
    }
    match opts.protocol {
        Some(Protocol::Tcp) => line("protocol", "TCP".into()),
        Some(Protocol::Socket) => line("protocol", "SOCKET".into()),
        None => {}
    }
    if let Some(u) = &opts.user {
        line("user", option_value(u));
    }
    if let Password::Given(p) = &opts.password {
        line("password", option_value(p.expose()));
    }
    line("default-character-set", option_value(&opts.character_set));
    for (k, v) in [
        ("ssl-ca", &opts.ssl.ca),
        ("ssl-cert", &opts.ssl.cert),
        ("ssl-key", &opts.ssl.key),
    ] {
        if let Some(v) = v {
            line(k, option_value(&v.to_string_lossy()));
        }
    }
    match (flavor, opts.ssl.mode) {
        (Flavor::MariaDb, SslMode::Disabled) => line("skip-ssl", "1".into()),
        (Flavor::MariaDb, SslMode::Preferred) => {}
        (Flavor::MariaDb, SslMode::Required) => line("ssl", "1".into()),
        (Flavor::MariaDb, SslMode::VerifyCa | SslMode::VerifyIdentity) => {
            line("ssl", "1".into());
            line("ssl-verify-server-cert", "1".into());
        }
        (Flavor::MySql, m) => line(
            "ssl-mode",
            match m {
                SslMode::Disabled => "DISABLED",
                SslMode::Preferred => "PREFERRED",
                SslMode::Required => "REQUIRED",
                SslMode::VerifyCa => "VERIFY_CA",
                SslMode::VerifyIdentity => "VERIFY_IDENTITY",
            }
            .into(),
        ),
    }
    s
}

/// What the replaying account must be allowed, in the dialect's words.
pub fn replay_privileges(dialect: &Dialect) -> &'static str {
    match dialect.flavor {
        Flavor::MariaDb if dialect.version >= crate::sql::dialect::Version(10, 5, 2) => {
            "BINLOG REPLAY (for the BINLOG statements of row events) and BINLOG ADMIN or \
             SUPER (for sql_log_bin)"
        }
        Flavor::MariaDb => "SUPER",
        Flavor::MySql => {
            "SUPER or BINLOG_ADMIN (with SYSTEM_VARIABLES_ADMIN for the \
                          session variables mysqlbinlog sets)"
        }
    }
}

/// Statements that need what replaying needs and change nothing: `sql_log_bin` off (as
/// the decoder's output does, unless `log_bin`) and the `BINLOG` statement of the
/// archive's FORMAT_DESCRIPTION (as the decoder's output starts with).
pub fn privilege_check_sql(format_description: &[u8], log_bin: bool) -> Vec<String> {
    let mut sql = Vec::new();
    if !log_bin {
        sql.push("SET SESSION sql_log_bin = 0".to_string());
    }
    sql.push(format!(
        "BINLOG {}",
        string_literal(&base64(format_description))
    ));
    sql
}

/// MySQL: before replaying, the restored server's executed GTIDs get the backup's (so
/// that the server's state says what it holds, and the replayed transactions' GTIDs,
/// set by mysqlbinlog's `SET GTID_NEXT`, follow them), and the GTIDs of the transactions
/// the replay leaves out (`ReplayGtids::left_out`: else they are holes, which a replica
/// of the restored server, or it made a replica of the source, would fetch and apply:
/// the skipped DROP, another database's writes), but not those of prepared XA halves
/// replayed first (`ReplayGtids::replayed_first`: MySQL would skip them as executed).
/// MariaDB: nothing (its GTIDs are not checked on replay, its GTID position has no
/// holes; `gtid_slave_pos` is the user's choice after a restore).
pub fn before_replay_sql(
    dialect: &Dialect,
    backup_gtid: Option<&str>,
    gtids: &ReplayGtids,
) -> Vec<String> {
    if dialect.flavor != Flavor::MySql {
        return Vec::new();
    }
    let backup = backup_gtid
        .map(|g| g.replace(['\n', ' '], ""))
        .filter(|g| !g.trim().is_empty());
    let set = if gtids.left_out.is_empty() && gtids.replayed_first.is_empty() {
        backup
    } else {
        // A set that cannot be read (tagged GTIDs) is given as it is.
        match backup.as_deref().map(MysqlGtids::parse) {
            Some(None) => backup,
            parsed => {
                let mut set = parsed.flatten().unwrap_or_default();
                set.subtract(&gtids.replayed_first);
                set.union(&gtids.left_out);
                Some(set.to_string()).filter(|s| !s.is_empty())
            }
        }
    };
    match set {
        Some(set) => vec![format!(
            "SET @@GLOBAL.GTID_PURGED = {}",
            string_literal(&format!("+{set}"))
        )],
        None => Vec::new(),
    }
}

/// Standard base64 with padding.
fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Checks on `session` (the target) that its account may replay (see the module doc).
pub async fn check_privileges(
    session: &mut Session,
    format_description: &[u8],
    log_bin: bool,
) -> Result<(), ApplyError> {
    for sql in privilege_check_sql(format_description, log_bin) {
        if let Err(e) = session.exec(&sql, "checking the replay privileges").await {
            let what = if sql.starts_with("BINLOG") {
                "the BINLOG statement (row events)"
            } else {
                "SET sql_log_bin"
            };
            return Err(ApplyError::Privileges(format!(
                "{}: the target's account may not replay binlog events ({what} refused): it \
                 needs {}; nothing was changed. The server said: {e}",
                session.server,
                replay_privileges(&session.dialect)
            )));
        }
    }
    Ok(())
}

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub files: usize,
    pub bytes: u64,
    pub sql_lines: u64,
}

/// A GTID comment of the decoder's output: at which line of the client's input, which
/// GTID, in which file, ending where.
#[derive(Debug, Clone)]
struct Mark {
    line: u64,
    file: String,
    text: String,
}

/// How many GTID comment lines the pump keeps (the failing one is among the last: the
/// client reads only a little ahead of what it runs).
const MARKS_KEPT: usize = 100_000;

/// Reads a GTID comment line of the decoder: "#... end_log_pos 1234 CRC32 0x... GTID
/// 0-1-5 trans" (MariaDB) or "SET @@SESSION.GTID_NEXT= 'uuid:5'" (MySQL).
fn gtid_of_line(line: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(line);
    if text.starts_with('#') {
        let i = text.find("\tGTID ").or_else(|| text.find(" GTID "))?;
        let gtid = text[i + 6..].split_whitespace().next()?;
        let end = text
            .split("end_log_pos ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next());
        return Some(match end {
            Some(e) => format!("{gtid} (its GTID event ends at {e})"),
            None => gtid.to_string(),
        });
    }
    let rest = text.strip_prefix("SET @@SESSION.GTID_NEXT=")?;
    let g = rest.trim().trim_start_matches(['\'', ' ']);
    let g = g.split('\'').next()?;
    (g != "AUTOMATIC").then(|| g.to_string())
}

/// The line number in the client's error ("ERROR 1146 (42S02) at line 37: ...").
fn failing_line(stderr: &str) -> Option<u64> {
    let i = stderr.find(" at line ")?;
    stderr[i + 9..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The client's error lines ("ERROR 1146 (42S02) at line 37: ..."), without the echo of
/// the failing statement (a BINLOG statement is kilobytes of base64).
fn client_error(stderr: &str) -> String {
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("ERROR")).collect();
    if errors.is_empty() {
        stderr.trim().chars().take(2000).collect()
    } else {
        errors.join("; ")
    }
}

struct Pumped {
    lines: u64,
    marks: VecDeque<Mark>,
}

/// Copies each decoder's output, in order, into the client's stdin; after a write
/// error (the client stopped) it drains the rest so that the decoders end.
fn pump(
    outputs: std::sync::mpsc::Receiver<(String, ChildStdout)>,
    mut client: std::process::ChildStdin,
    failed: Arc<AtomicBool>,
) -> Pumped {
    let mut p = Pumped {
        lines: 0,
        marks: VecDeque::new(),
    };
    let mut ok = true;
    let mut line = Vec::with_capacity(64 << 10);
    for (file, out) in outputs {
        let mut r = BufReader::with_capacity(256 << 10, out);
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if !ok {
                continue;
            }
            p.lines += 1;
            if (line[0] == b'#' || line[0] == b'S')
                && let Some(text) = gtid_of_line(&line)
            {
                if p.marks.len() == MARKS_KEPT {
                    p.marks.pop_front();
                }
                p.marks.push_back(Mark {
                    line: p.lines,
                    file: file.clone(),
                    text,
                });
            }
            if client.write_all(&line).is_err() {
                ok = false;
                failed.store(true, Ordering::SeqCst);
            }
        }
    }
    drop(client);
    p
}

/// Replays `plan` into the target (see the module doc). The backup must be loaded
/// already; `before` are statements run first by the client (`before_replay_sql`).
/// Runs on a multi-threaded tokio runtime (it waits for its helper threads and child
/// processes with `block_in_place`).
pub async fn apply<S: SegmentSource>(
    source: &S,
    plan: &ReplayPlan,
    tools: &Tools,
    opts: &ConnectionOptions,
    log_bin: bool,
    before: &[String],
) -> Result<Applied, ApplyError> {
    let mut applied = Applied::default();
    if plan.pieces.is_empty() {
        return Ok(applied);
    }
    let io = |what: &str, e: std::io::Error| ApplyError::Io(format!("{what}: {e}"));
    // tempfile creates the file 0600.
    let mut option_file = tempfile::Builder::new()
        .prefix("rbackup-replay-")
        .suffix(".cnf")
        .tempfile()
        .map_err(|e| io("creating the client's option file", e))?;
    option_file
        .write_all(client_option_file(opts, tools.flavor).as_bytes())
        .and_then(|()| option_file.flush())
        .map_err(|e| io("writing the client's option file", e))?;
    let mut client = Command::new(&tools.client)
        .args(client_args(tools.flavor, option_file.path()))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ApplyError::Tool(format!("{}: {e}", tools.client.display())))?;
    let mut client_in = client.stdin.take().expect("piped");
    let mut client_err = client.stderr.take().expect("piped");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = client_err.read_to_string(&mut s);
        s
    });
    let mut prefix = String::new();
    for sql in before {
        prefix.push_str(sql);
        prefix.push_str(";\n");
    }
    let _ = client_in.write_all(prefix.as_bytes());
    let failed = Arc::new(AtomicBool::new(false));
    let (out_tx, out_rx) = std::sync::mpsc::channel();
    let pump_failed = Arc::clone(&failed);
    let pumper = std::thread::spawn(move || pump(out_rx, client_in, pump_failed));
    let mut result = Ok(());
    let mut i = 0;
    while i < plan.pieces.len() && !failed.load(Ordering::SeqCst) {
        let file = plan.pieces[i].segment.file.clone();
        let group_end = plan.pieces[i..]
            .iter()
            .position(|p| p.segment.file != file)
            .map_or(plan.pieces.len(), |n| i + n);
        let group = &plan.pieces[i..group_end];
        i = group_end;
        applied.files += 1;
        let mut decoder = match Command::new(&tools.decoder)
            .args(decoder_args(tools.flavor, log_bin))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(d) => d,
            Err(e) => {
                result = Err(ApplyError::Tool(format!(
                    "{}: {e}",
                    tools.decoder.display()
                )));
                break;
            }
        };
        let _ = out_tx.send((file.clone(), decoder.stdout.take().expect("piped")));
        let mut dec_err = decoder.stderr.take().expect("piped");
        let dec_err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = dec_err.read_to_string(&mut s);
            s
        });
        let mut dec_in = decoder.stdin.take().expect("piped");
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
        let writer = std::thread::spawn(move || {
            while let Some(b) = rx.blocking_recv() {
                if dec_in.write_all(&b).is_err() {
                    return false;
                }
            }
            true
        });
        let mut head = BINLOG_MAGIC.to_vec();
        head.extend_from_slice(&group[0].segment.format_description);
        let mut sent = tx.send(head).await.is_ok();
        for piece in group {
            if !sent || failed.load(Ordering::SeqCst) {
                break;
            }
            let bytes = match source.segment_bytes(&piece.segment).await {
                Ok(b) => b,
                Err(e) => {
                    result = Err(ApplyError::Archive(format!(
                        "segment {}:{}-{}: {e}",
                        piece.segment.file, piece.segment.start, piece.segment.end
                    )));
                    failed.store(true, Ordering::SeqCst);
                    break;
                }
            };
            let (a, b) = (
                (piece.from - piece.segment.start) as usize,
                (piece.to - piece.segment.start) as usize,
            );
            applied.bytes += (b - a) as u64;
            let part = if a == 0 && b == bytes.len() {
                bytes
            } else {
                bytes[a..b].to_vec()
            };
            sent = tx.send(part).await.is_ok();
        }
        drop(tx);
        let wrote = tokio::task::block_in_place(|| writer.join().unwrap_or(false));
        let status = tokio::task::block_in_place(|| decoder.wait());
        let dec_err = dec_err_reader.join().unwrap_or_default();
        if result.is_err() {
            break;
        }
        match status {
            Ok(s) if s.success() && wrote => {}
            _ if failed.load(Ordering::SeqCst) => break, // the client stopped: see below
            Ok(s) => {
                result = Err(ApplyError::Tool(format!(
                    "{} failed ({s}) on the archived events of {file}: {}",
                    tools.decoder.display(),
                    dec_err.trim()
                )));
                failed.store(true, Ordering::SeqCst);
                break;
            }
            Err(e) => {
                result = Err(ApplyError::Tool(format!(
                    "{}: {e}",
                    tools.decoder.display()
                )));
                break;
            }
        }
    }
    drop(out_tx);
    let pumped = tokio::task::block_in_place(|| pumper.join()).unwrap_or(Pumped {
        lines: 0,
        marks: VecDeque::new(),
    });
    applied.sql_lines = pumped.lines;
    let status = tokio::task::block_in_place(|| client.wait())
        .map_err(|e| ApplyError::Tool(format!("{}: {e}", tools.client.display())))?;
    let client_err = err_reader.join().unwrap_or_default();
    drop(option_file);
    if !status.success() {
        let line = failing_line(&client_err).map(|l| l.saturating_sub(before.len() as u64));
        let txn = line.and_then(|l| pumped.marks.iter().rev().find(|m| m.line <= l));
        let what = match txn {
            Some(m) => format!("transaction {} in {}", m.text, m.file),
            None => "a replayed statement".to_string(),
        };
        return Err(ApplyError::Failed(format!(
            "{}: replaying {what} failed: {}; the target holds the backup and the \
             transactions replayed before it, not the requested point in time",
            crate::client::conn::server_label(opts),
            client_error(&client_err)
        )));
    }
    result?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::options::Secret;

    fn mariadb() -> Dialect {
        Dialect::from_version_string("10.11.6-MariaDB-log")
    }

    fn mysql() -> Dialect {
        Dialect::from_version_string("8.0.36")
    }

    #[test]
    fn the_option_file_holds_the_connection_and_quotes_the_password() {
        let opts = ConnectionOptions {
            host: Some("db1".into()),
            port: 3307,
            user: Some("restore".into()),
            password: Password::Given(Secret::new("p\"w\\d#;x")),
            protocol: Some(Protocol::Tcp),
            ssl: crate::client::options::SslOptions {
                mode: SslMode::VerifyIdentity,
                ca: Some("/etc/ca.pem".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let f = client_option_file(&opts, Flavor::MariaDb);
        assert!(f.starts_with("[client]\n"), "{f}");
        for want in [
            "host=\"db1\"\n",
            "port=3307\n",
            "protocol=TCP\n",
            "user=\"restore\"\n",
            "password=\"p\\\"w\\\\d#;x\"\n",
            "ssl-ca=\"/etc/ca.pem\"\n",
            "ssl-verify-server-cert=1\n",
        ] {
            assert!(f.contains(want), "{want:?} not in {f}");
        }
        let f = client_option_file(&opts, Flavor::MySql);
        assert!(f.contains("ssl-mode=VERIFY_IDENTITY\n"), "{f}");
        assert!(!f.contains("ssl-verify-server-cert"), "{f}");
    }

    #[test]
    fn command_lines_carry_no_secret() {
        let d = decoder_args(Flavor::MariaDb, false);
        assert_eq!(d, ["--no-defaults", "--disable-log-bin", "-"]);
        assert_eq!(decoder_args(Flavor::MySql, true), ["--no-defaults", "-"]);
        let c = client_args(Flavor::MySql, Path::new("/tmp/x.cnf"));
        assert_eq!(c[0], "--defaults-file=/tmp/x.cnf");
        assert!(c.iter().all(|a| !a.contains("password")));
    }

    #[test]
    fn privileges_by_dialect_and_the_check_statements() {
        assert!(replay_privileges(&mariadb()).starts_with("BINLOG REPLAY"));
        assert_eq!(
            replay_privileges(&Dialect::from_version_string("10.4.30-MariaDB")),
            "SUPER"
        );
        assert!(replay_privileges(&mysql()).contains("BINLOG_ADMIN"));
        let sql = privilege_check_sql(b"\x01\x02\x03\xfe", false);
        assert_eq!(sql, ["SET SESSION sql_log_bin = 0", "BINLOG 'AQID/g=='"]);
        assert_eq!(privilege_check_sql(b"ab", true), ["BINLOG 'YWI='"]);
        assert_eq!(base64(b"abc"), "YWJj");
    }

    #[test]
    fn mysql_gets_the_backups_gtid_set_before_the_replay_mariadb_nothing() {
        let set =
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n0b0c0d0e-71ca-11e1-9e33-c80aa9429562:1-2";
        let none = ReplayGtids::default();
        assert_eq!(
            before_replay_sql(&mysql(), Some(set), &none),
            [
                "SET @@GLOBAL.GTID_PURGED = '+3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,0b0c0d0e-71ca-11e1-9e33-c80aa9429562:1-2'"
            ]
        );
        assert!(before_replay_sql(&mysql(), None, &none).is_empty());
        assert!(before_replay_sql(&mariadb(), Some("0-1-5"), &none).is_empty());
    }

    #[test]
    fn mysql_marks_the_left_out_gtids_executed_and_leaves_the_replayed_first_ones_out() {
        let (a, b) = (
            "3e11fa47-71ca-11e1-9e33-c80aa9429562",
            "0b0c0d0e-71ca-11e1-9e33-c80aa9429562",
        );
        let mut gtids = ReplayGtids::default();
        // Skipped 7, other databases' 9 and 10, and b's 3.
        for g in [
            format!("{a}:7"),
            format!("{a}:9"),
            format!("{a}:10"),
            format!("{b}:3"),
        ] {
            gtids.left_out.insert(&g);
        }
        // A prepared XA half (a:4) from before the backup, replayed first.
        gtids.replayed_first.insert(&format!("{a}:4"));
        assert_eq!(
            before_replay_sql(&mysql(), Some(&format!("{a}:1-5,\n{b}:1-2")), &gtids),
            [format!(
                "SET @@GLOBAL.GTID_PURGED = '+{b}:1-3,{a}:1-3:5:7:9-10'"
            )]
        );
        // No backup set: the left-out ones only.
        assert_eq!(
            before_replay_sql(&mysql(), None, &gtids),
            [format!("SET @@GLOBAL.GTID_PURGED = '+{b}:3,{a}:7:9-10'")]
        );
        // MariaDB: nothing (no holes in its GTID position).
        gtids.left_out.insert("0-1-7");
        assert!(before_replay_sql(&mariadb(), Some("0-1-5"), &gtids).is_empty());
        // A set that cannot be read is given as it is.
        assert_eq!(
            before_replay_sql(&mysql(), Some(&format!("{a}:tag:1-5")), &gtids),
            [format!("SET @@GLOBAL.GTID_PURGED = '+{a}:tag:1-5'")]
        );
    }

    #[test]
    fn mysql_gtid_sets_merge_and_subtract_intervals() {
        let mut s = MysqlGtids::parse("U:1-3:5, v:2").unwrap();
        s.insert("u:4");
        s.insert("v:1");
        assert_eq!(s.to_string(), "u:1-5,v:1-2");
        s.subtract(&MysqlGtids::parse("u:2-3,v:1-2,w:1").unwrap());
        assert_eq!(s.to_string(), "u:1:4-5");
        assert!(MysqlGtids::parse("u:3-1").is_none());
        assert!(MysqlGtids::parse("u:x").is_none());
        s.insert("0-1-5");
        assert_eq!(s.to_string(), "u:1:4-5");
    }

    #[test]
    fn the_failing_transaction_is_found_from_the_decoders_comments() {
        let line = b"#241202 14:00:00 server id 1  end_log_pos 1234 CRC32 0x1a2b3c4d \tGTID 0-1-57 trans\n";
        assert_eq!(
            gtid_of_line(line).unwrap(),
            "0-1-57 (its GTID event ends at 1234)"
        );
        assert_eq!(
            gtid_of_line(
                b"SET @@SESSION.GTID_NEXT= '3e11fa47-71ca-11e1-9e33-c80aa9429562:7'/*!*/;\n"
            )
            .unwrap(),
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:7"
        );
        assert!(
            gtid_of_line(b"SET @@SESSION.GTID_NEXT= 'AUTOMATIC' /* added by mysqlbinlog */ /*!*/;")
                .is_none()
        );
        assert!(gtid_of_line(b"# at 1234\n").is_none());
        assert_eq!(
            failing_line("ERROR 1146 (42S02) at line 37: Table 'd.t' doesn't exist\n"),
            Some(37)
        );
        assert_eq!(failing_line("ERROR 2002 (HY000): Can't connect"), None);
        assert_eq!(
            client_error(
                "--------------\nBINLOG '\nAAAA\n'\n--------------\n\nERROR 1146 (42S02) at line 9: Table 'd.t' doesn't exist\n"
            ),
            "ERROR 1146 (42S02) at line 9: Table 'd.t' doesn't exist"
        );
    }
}
