//! What the subcommands share: the repository and key arguments, rbackup's own options
//! picked out of a command line that also carries rdump's or rload's, exit codes, the
//! failure type of the commands that run a dump or a load, signals.
//!
//! Not for: any one subcommand's work (its own module).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use rdump::backup::Access;
use rdump::backup::error::BackupError;

pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  usage error, or refused: no repository, wrong or missing key, locked by another
     operation, repository or object of an unknown version
  2  the storage failed (unreachable, refused, I/O error); the error names the object
  5  the repository is damaged: an object is missing or does not match its hash; the
     error names the object and the file (table) that needs it";

/// rbackup's own long options of `backup` and `restore`, and whether each takes a value.
const OWN_OPTIONS: &[(&str, bool)] = &[
    ("repo", true),
    ("identity-file", true),
    ("passphrase-file", true),
    ("writer-key-file", true),
    ("tag", true),
    ("json", false),
    ("to-dir", true),
    ("to-time", true),
    ("time-zone", true),
    ("to-gtid", true),
    ("to-position", true),
    ("to-latest", false),
    ("skip-gtid", true),
    ("dry-run", false),
    ("binlog-archive", true),
    ("source", true),
    ("help", false),
];

/// Splits the arguments after `backup`/`restore` into rbackup's own (for clap: its long
/// options, and for `restore` the ID when it comes before any other option) and the rest,
/// which rdump's or rload's parser reads. Returns the argv clap gets.
pub fn split_own(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let Some(sub) = args.get(1).and_then(|a| a.to_str()).map(str::to_string) else {
        return args;
    };
    if sub != "backup" && sub != "restore" && sub != "binlog" {
        return args;
    }
    let own_options = if sub == "binlog" {
        crate::binlog::OWN_OPTIONS
    } else {
        OWN_OPTIONS
    };
    let mut own: Vec<std::ffi::OsString> = args[..2].to_vec();
    let mut rest = Vec::new();
    let mut id_seen = false;
    let mut it = args.into_iter().skip(2);
    while let Some(arg) = it.next() {
        let text = arg.to_string_lossy().to_string();
        if let Some(body) = text.strip_prefix("--") {
            let name = body.split_once('=').map_or(body, |(n, _)| n);
            if let Some((_, takes_value)) = own_options.iter().find(|(n, _)| *n == name) {
                let attached = body.contains('=');
                own.push(arg);
                if *takes_value
                    && !attached
                    && let Some(value) = it.next()
                {
                    own.push(value);
                }
                continue;
            }
        } else if sub == "restore" && !text.starts_with('-') && rest.is_empty() && !id_seen {
            id_seen = true;
            own.push(arg);
            continue;
        }
        rest.push(arg);
    }
    own.push("--".into());
    own.extend(rest);
    own
}

#[derive(Args, Debug)]
pub struct RepoArg {
    /// The repository: a path, file:///path or s3://bucket/prefix (S3 settings from
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION,
    /// AWS_ENDPOINT_URL).
    #[arg(long, env = "RBACKUP_REPO", value_name = "URL")]
    pub repo: String,
}

#[derive(Args, Debug)]
pub struct KeyArgs {
    /// An age identity file (AGE-SECRET-KEY-1…) of one of the repository's readers.
    #[arg(long, env = "RBACKUP_IDENTITY_FILE", value_name = "F")]
    pub identity_file: Option<PathBuf>,
    /// A file whose first line is the repository's passphrase.
    #[arg(long, env = "RBACKUP_PASSPHRASE_FILE", value_name = "F")]
    pub passphrase_file: Option<PathBuf>,
}

impl KeyArgs {
    pub fn access(&self) -> Result<Access, BackupError> {
        match (&self.identity_file, &self.passphrase_file) {
            (Some(f), _) => Access::identity_file(f),
            (None, Some(f)) => Access::passphrase_file(f),
            (None, None) => Ok(Access::None),
        }
    }
}

pub fn exit_code(e: &BackupError) -> u8 {
    match e {
        BackupError::Missing { .. } | BackupError::Damaged { .. } => 5,
        BackupError::Storage { .. } => 2,
        BackupError::Key(_) | BackupError::Locked(_) | BackupError::Usage(_) => 1,
    }
}

/// Why `backup` or a restore into a server failed, with the exit code of its kind.
pub enum Failure {
    Repository(BackupError),
    Dump(rdump::error::Error),
    Load(rdump::load::error::LoadError),
    Usage(String),
}

impl Failure {
    pub fn report(self) -> ExitCode {
        let code = match &self {
            Failure::Repository(e) => {
                eprintln!("rbackup: {e}");
                exit_code(e) as i32
            }
            Failure::Dump(e) => {
                eprintln!("rbackup: {e}");
                e.exit_code()
            }
            Failure::Load(e) => {
                eprintln!("rbackup: {e}");
                e.exit_code()
            }
            Failure::Usage(m) => {
                eprintln!("rbackup: {m}");
                1
            }
        };
        ExitCode::from(code as u8)
    }
}

impl From<BackupError> for Failure {
    fn from(e: BackupError) -> Failure {
        Failure::Repository(e)
    }
}

/// The option groups `backup` and `restore` read besides `[client]`.
pub const GROUPS: &[&str] = &["client", "rbackup"];

/// Resolves when SIGINT, SIGTERM or SIGHUP arrives (watched on a thread of its own from the
/// moment this is first polled).
pub async fn interrupted() -> rdump::error::Error {
    let mut watch = rdump::process::signals::watch();
    let (name, signal) = watch.interrupted().await;
    rdump::error::Error::Interrupted { name, signal }
}

pub fn read_recipients_file(path: &PathBuf) -> Result<Vec<String>, BackupError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BackupError::Usage(format!("{}: {e}", path.display())))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}
