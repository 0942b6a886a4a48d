//! `rbackup binlog`: the binlog archiver. Streams the source's binlog over the replication
//! protocol (`rdump::binlog::archive`) into the repository's segment store
//! (`rdump::backup::segments::RepositorySegments`), holding the source's unique lock, until
//! stopped (SIGTERM, SIGINT, SIGHUP: the open segment is committed, exit 0) or, with
//! `--once`, up to the server's position at the start. A binlog purged before it was
//! archived is said loudly, recorded as a gap, and archiving goes on from the oldest binlog
//! the server has; the run then exits 3. A binlog that restarted (RESET MASTER, a new base
//! name) is not a gap: refused, exit 2. The connection options are rdump's, parsed by its
//! own parser (option groups `[client]` and `[rbackup]`).
//!
//! Not for: the stream, the segments or their storage (the library does all of it).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgAction, Args};
use rdump::backup::segments::RepositorySegments;
use rdump::backup::store::StoreOptions;
use rdump::backup::{self, Access};
use rdump::binlog::{ArchiveError, ArchiveOptions, CutPolicy, archive, mark_gap, source};
use rdump::client::options::{ConnectionOptions, Password, Secret};

use crate::common::{Failure, GROUPS, KeyArgs, RepoArg, exit_code, interrupted};

/// `binlog`'s own long options (see `common::split_own`), and whether each takes a value.
pub const OWN_OPTIONS: &[(&str, bool)] = &[
    ("repo", true),
    ("identity-file", true),
    ("passphrase-file", true),
    ("writer-key-file", true),
    ("server-id", true),
    ("flush-interval", true),
    ("once", false),
    ("source", true),
    ("help", false),
];

pub const HELP: &str = "\
Connection options are rdump's, read also from the [client] and [rbackup] groups of the
option files: -h -P -S -u -p --ssl-* ... (no --compress). rbackup's own options may come
anywhere. The account needs REPLICATION SLAVE, BINLOG MONITOR and REPLICATION MASTER ADMIN
(MariaDB 10.5+; REPLICATION SLAVE and REPLICATION CLIENT on MySQL and older MariaDB); the
server needs log_bin. A lost connection or a restart of the server is retried for 5 minutes.
While the server is idle and everything received is stored, the archiver overwrites
heartbeats/<source> (at most once per --flush-interval), so that `rbackup check
--max-binlog-lag` tells an idle server from a stopped archiver.

Exit codes:
  0  stopped by SIGTERM, SIGINT or SIGHUP (what was received is committed first), or
     --once archived up to the server's position at its start
  1  usage error, or refused: no repository, wrong or missing key, another archiver holds
     this source's lock (the error names it), a replica with this --server-id is connected
  2  the server refused or failed (missing privileges, binary logging off, connection lost
     for longer than 5 minutes), or the storage failed; the error names the object. Also:
     the server's binlog restarted (RESET MASTER numbering its files from .000001 again,
     or a new log_bin_basename): nothing is recorded; archive it as a new --source
  3  GAP: a binlog was purged from the server before it was archived. The gap is recorded
     in the repository and archiving went on from the oldest binlog the server has;
     nothing can be restored across the gap: take a new backup
  5  the server sent a corrupt event (CRC32, truncated, out of place): the events before
     it are archived, it is not";

#[derive(Args, Debug)]
pub struct BinlogArgs {
    #[command(flatten)]
    repo: RepoArg,
    #[command(flatten)]
    keys: KeyArgs,
    /// The writer key made by init: enough to archive, not to read anything.
    #[arg(long, env = "RBACKUP_WRITER_KEY_FILE", value_name = "F")]
    writer_key_file: Option<PathBuf>,
    /// The server id to register with (default 4294967040: must differ from every real
    /// replica's).
    #[arg(long, value_name = "N")]
    server_id: Option<u32>,
    /// Commit a segment at least this often while events flow (500ms, 10s, 1m).
    #[arg(long, value_name = "T", default_value = "10s", value_parser = parse_interval)]
    flush_interval: Duration,
    /// Archive up to the server's current position, then exit.
    #[arg(long)]
    once: bool,
    /// The source's name in the repository (default: MySQL's server_uuid, on MariaDB
    /// <hostname>-<port>-<server_id>).
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
    /// rdump's connection options, see split_own.
    #[arg(last = true, hide = true)]
    connection_options: Vec<String>,
}

/// "10s", "500ms", "2m", or seconds.
fn parse_interval(s: &str) -> Result<Duration, String> {
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{s:?}: a duration is a number and ms, s or m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{s:?}: a duration is a number and ms, s or m")),
    };
    if !(0.01..=86400.0).contains(&secs) {
        return Err(format!("{s:?}: between 10ms and a day"));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub async fn command(args: BinlogArgs) -> ExitCode {
    match run(args).await {
        Ok(code) => ExitCode::from(code),
        Err(f) => f.report(),
    }
}

/// The connection options, parsed as rdump parses them (option files included).
fn connection(options: &[String]) -> Result<ConnectionOptions, Failure> {
    use rdump::plan::Command as DumpCommand;
    let defaults = options
        .iter()
        .take_while(|a| a.starts_with("--no-defaults") || a.starts_with("--defaults"))
        .count();
    let mut argv: Vec<std::ffi::OsString> = options[..defaults].iter().map(Into::into).collect();
    // The config file's connection option file, unless the command line names one.
    if defaults == 0
        && let Some(f) = crate::common::config().and_then(|c| c.defaults_file.as_ref())
    {
        argv.push(format!("--defaults-file={}", f.display()).into());
    }
    argv.extend(options[defaults..].iter().map(Into::into));
    // rdump's parser wants something to dump and somewhere to put it: neither is used.
    argv.extend(["--all-databases", "--dir=rbackup-binlog"].map(Into::into));
    let parsed = rdump::options::parse(&argv, &rdump::options::Env::from_process(), GROUPS);
    rdump::process::argv::mask(rdump::options::secret_span);
    let mut connection = match parsed {
        Ok(DumpCommand::Dump(plan)) => plan.connection,
        Ok(_) => {
            return Err(Failure::Usage(
                "binlog: --help, --version and --print-defaults are rbackup's".into(),
            ));
        }
        Err(e) => return Err(Failure::Usage(format!("binlog: {e}"))),
    };
    if connection.password == Password::Prompt {
        let pw = rdump::process::prompt::password("Enter password: ")
            .map_err(|e| Failure::Usage(format!("could not read the password: {e}")))?;
        connection.password = Password::Given(Secret::new(pw));
    }
    Ok(connection)
}

/// The exit code of an archiving error (see HELP).
fn archive_failure(e: &ArchiveError) -> u8 {
    match e {
        ArchiveError::Config(_) => 1,
        ArchiveError::Purged { .. } => 3,
        ArchiveError::Corrupt { .. } => 5,
        ArchiveError::Server { .. }
        | ArchiveError::Connection { .. }
        | ArchiveError::Store { .. } => 2,
    }
}

async fn run(args: BinlogArgs) -> Result<u8, Failure> {
    let conn = connection(&args.connection_options)?;
    let access = match &args.writer_key_file {
        Some(f) => Access::writer_key_file(f)?,
        None => args.keys.access()?,
    };
    let repo = backup::open(&args.repo.repo, &access, &StoreOptions::from_env()?).await?;
    let info = match source::identify(&conn).await {
        Ok(i) => i,
        Err(e) => {
            eprintln!("rbackup: {e}");
            return Ok(archive_failure(&e));
        }
    };
    let name = args.source.clone().unwrap_or(info.name.clone());
    let mut store = RepositorySegments::open_archiver(repo, &name).await?;
    let opts = ArchiveOptions {
        server_id: args.server_id.unwrap_or(rdump::binlog::DEFAULT_SERVER_ID),
        cut: CutPolicy {
            flush_interval: args.flush_interval,
            ..CutPolicy::default()
        },
        once: args.once,
        server: Some(info.name.clone()),
        ..ArchiveOptions::default()
    };
    // A signal sets the flag; every run of `archive` stops on it (after committing).
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(async move {
        let _ = interrupted().await;
        let _ = stop_tx.send(true);
    });
    eprintln!(
        "rbackup: archiving the binlog of {} (server identity {}) as source {name} into {}{}",
        info.server,
        info.name,
        args.repo.repo,
        if args.once { " (--once)" } else { "" }
    );
    let mut gaps = 0;
    let mut totals = (0u64, 0u64, 0u64);
    let result = loop {
        let mut rx = stop_rx.clone();
        let stop = async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        };
        match archive(&conn, &mut store, &opts, stop).await {
            Ok(report) => {
                totals.0 += report.segments;
                totals.1 += report.events;
                totals.2 += report.bytes;
                break Ok(report.position);
            }
            Err(e @ ArchiveError::Purged { .. }) => {
                // Said once the gap is recorded: a restarted binlog is refused instead.
                let purged = e.to_string();
                match mark_gap(&conn, &mut store, e).await {
                    Ok(gap) => {
                        eprintln!("rbackup: {purged}");
                        gaps += 1;
                        eprintln!(
                            "rbackup: GAP recorded in the repository: archiving goes on from {}; \
                             no restore can cross it: take a new backup",
                            gap.resume_at
                        );
                        if *stop_rx.borrow() {
                            break Ok(Some(gap.resume_at));
                        }
                    }
                    Err(e) => break Err(e),
                }
            }
            Err(e) => break Err(e),
        }
    };
    watcher.abort();
    let released = store.release().await;
    match result {
        Ok(position) => {
            eprintln!(
                "rbackup: archived {} segments, {} events, {} bytes; the archive of {name} ends at {}",
                totals.0,
                totals.1,
                totals.2,
                position.map_or("(nothing archived)".to_string(), |p| p.to_string())
            );
            if let Err(e) = released {
                eprintln!("rbackup: releasing the lock: {e}");
                return Ok(exit_code(&e));
            }
            Ok(if gaps > 0 { 3 } else { 0 })
        }
        Err(e) => {
            eprintln!("rbackup: {e}");
            Ok(archive_failure(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_with_units() {
        assert_eq!(parse_interval("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_interval("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_interval("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_interval("3").unwrap(), Duration::from_secs(3));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("10h").is_err());
    }
}
