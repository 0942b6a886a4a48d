//! The `rbackup` command: subcommands over a repository (REPOSITORY.md). Parsing with clap,
//! running on tokio, printing, exit codes; everything else is in `rdump::backup`.
//!
//! `backup` runs the directory dump (`dump::dir::run_to`) with a repository as its
//! destination (`output::destination`): every file goes through the sink into
//! `BackupWriter`, the manifest last, then the backup is committed with the manifest's
//! databases and coordinates. `restore` into a server stages the backup in a private
//! temporary directory (`restore_to_dir`) and runs rload's loader on it (a direct
//! repository source for the loader is left for later).
//!
//! The connection (and, for `backup`, selection) options of `backup` and `restore` are
//! rdump's and rload's, parsed by their own parsers (`rdump::options`, option groups
//! `[client]` and `[rbackup]`): `split_own` takes rbackup's own long options out of the
//! command line and hands clap only those; the rest goes to that parser.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Args, Parser, Subcommand};
use rdump::backup::error::BackupError;
use rdump::backup::store::StoreOptions;
use rdump::backup::writer::SnapshotInfo;
use rdump::backup::{self, Access, InitOptions, RepositoryReader};
use rdump::client::options::{Password, Secret};
use rdump::output::destination::Destination;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  usage error, or refused: no repository, wrong or missing key, locked by another
     operation, repository or object of an unknown version
  2  the storage failed (unreachable, refused, I/O error); the error names the object
  5  the repository is damaged: an object is missing or does not match its hash; the
     error names the object and the file (table) that needs it";

/// Deduplicated, encrypted MySQL/MariaDB backups in a local directory or S3.
#[derive(Parser, Debug)]
#[command(name = "rbackup", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a repository.
    #[command(after_help = EXIT_CODES)]
    Init(InitArgs),
    /// List the backups in a repository (needs a reader key).
    #[command(after_help = EXIT_CODES)]
    List(ListArgs),
    /// Back up a server: a consistent directory dump (CSV by default) streamed into the
    /// repository; prints the new backup's ID.
    #[command(after_help = BACKUP_HELP, disable_help_flag = true)]
    Backup(BackupArgs),
    /// Restore a backup into a server (staged in a private temporary directory, then
    /// loaded as rload does), or with --to-dir as the directory `rdump --dir` made.
    #[command(after_help = RESTORE_HELP, disable_help_flag = true)]
    Restore(RestoreArgs),
}

const BACKUP_HELP: &str = "\
Connection and selection options are rdump's, read also from the [client] and [rbackup]
groups of the option files: -h -P -S -u -p --ssl-* ..., --databases DB... or
--all-databases (the default: every database; accounts are not included yet),
--threads N (default 4), --format=sql|csv (default csv), --chunk-size N. See rdump --help.
rbackup's own options may come anywhere.

Exit codes:
  0  success: the backup's ID is on stdout
  1  usage error, or refused: no repository, wrong or missing key, locked
  2  the server failed (the error names server and object), or, before the dump started
     or while committing, the storage failed (the error names the object)
  3  the dump could not be made consistent
  5  writing into the repository failed during the dump (the error names the file), or
     the repository is damaged
A failed backup leaves no snapshot; the packs it uploaded are reused by the next one.";

const RESTORE_HELP: &str = "\
Into a server: the target's connection options and the load options are rload's, read also
from the [client] and [rbackup] groups: -h -P -S -u -p --ssl-* ..., --threads N,
--databases DB,..., --drop-existing, ... See rload --help. The backup is written to a
private temporary directory (mode 0700, in $TMPDIR) and removed after the load, so
that much free space is needed there. Give the ID before the connection options.

Exit codes:
  0  success
  1  usage error, or refused: no repository, wrong or missing key, locked
  2  the storage failed (the error names the object), or the target server failed
  3  the load found data it could not load as dumped
  5  the repository is damaged: an object is missing or does not match its hash; the
     error names the object and the file (table) that needs it";

#[derive(Args, Debug)]
struct BackupArgs {
    #[command(flatten)]
    repo: RepoArg,
    #[command(flatten)]
    keys: KeyArgs,
    /// The writer key made by init: enough to add backups, not to read any.
    #[arg(long, env = "RBACKUP_WRITER_KEY_FILE", value_name = "F")]
    writer_key_file: Option<PathBuf>,
    /// A tag for the backup (repeatable).
    #[arg(long = "tag", value_name = "T")]
    tags: Vec<String>,
    /// Print a JSON summary on stdout instead of the ID alone.
    #[arg(long)]
    json: bool,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
    /// rdump's options (connection, selection), see split_own.
    #[arg(last = true, hide = true)]
    dump_options: Vec<String>,
}

#[derive(Args, Debug)]
struct RestoreArgs {
    #[command(flatten)]
    repo: RepoArg,
    #[command(flatten)]
    keys: KeyArgs,
    /// The backup: its ID, a unique prefix of it, or `latest`.
    #[arg(default_value = "latest")]
    id: String,
    /// Write the backup's files into this new (or empty) directory instead of a server.
    #[arg(long, value_name = "DIR")]
    to_dir: Option<PathBuf>,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
    /// rload's options (target connection, load), see split_own.
    #[arg(last = true, hide = true)]
    load_options: Vec<String>,
}

/// rbackup's own long options of `backup` and `restore`, and whether each takes a value.
const OWN_OPTIONS: &[(&str, bool)] = &[
    ("repo", true),
    ("identity-file", true),
    ("passphrase-file", true),
    ("writer-key-file", true),
    ("tag", true),
    ("json", false),
    ("to-dir", true),
    ("help", false),
];

/// Splits the arguments after `backup`/`restore` into rbackup's own (for clap: its long
/// options, and for `restore` the ID when it comes before any other option) and the rest,
/// which rdump's or rload's parser reads. Returns the argv clap gets.
fn split_own(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let Some(sub) = args.get(1).and_then(|a| a.to_str()).map(str::to_string) else {
        return args;
    };
    if sub != "backup" && sub != "restore" {
        return args;
    }
    let mut own: Vec<std::ffi::OsString> = args[..2].to_vec();
    let mut rest = Vec::new();
    let mut id_seen = false;
    let mut it = args.into_iter().skip(2);
    while let Some(arg) = it.next() {
        let text = arg.to_string_lossy().to_string();
        if let Some(body) = text.strip_prefix("--") {
            let name = body.split_once('=').map_or(body, |(n, _)| n);
            if let Some((_, takes_value)) = OWN_OPTIONS.iter().find(|(n, _)| *n == name) {
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
struct RepoArg {
    /// The repository: a path, file:///path or s3://bucket/prefix (S3 settings from
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION,
    /// AWS_ENDPOINT_URL).
    #[arg(long, env = "RBACKUP_REPO", value_name = "URL")]
    repo: String,
}

#[derive(Args, Debug)]
struct InitArgs {
    #[command(flatten)]
    repo: RepoArg,
    /// A reader: an age X25519 recipient (age1…). Repeatable.
    #[arg(long = "recipient", value_name = "AGE_PUBKEY")]
    recipients: Vec<String>,
    /// Readers: a file of age recipients, one per line (# comments).
    #[arg(long, value_name = "F")]
    recipients_file: Option<PathBuf>,
    /// A reader passphrase, the file's first line (a key file of its own).
    #[arg(long, value_name = "F")]
    passphrase_file: Option<PathBuf>,
    /// Store everything unencrypted (anyone who reads the storage reads the backups).
    #[arg(long, conflicts_with_all = ["recipients", "recipients_file", "passphrase_file"])]
    no_encryption: bool,
    /// Write the writer key here (mode 0600): it lets a database host add backups
    /// without being able to read any. The file must not exist.
    #[arg(long, value_name = "F")]
    writer_key_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct KeyArgs {
    /// An age identity file (AGE-SECRET-KEY-1…) of one of the repository's readers.
    #[arg(long, env = "RBACKUP_IDENTITY_FILE", value_name = "F")]
    identity_file: Option<PathBuf>,
    /// A file whose first line is the repository's passphrase.
    #[arg(long, env = "RBACKUP_PASSPHRASE_FILE", value_name = "F")]
    passphrase_file: Option<PathBuf>,
}

impl KeyArgs {
    fn access(&self) -> Result<Access, BackupError> {
        match (&self.identity_file, &self.passphrase_file) {
            (Some(f), _) => Access::identity_file(f),
            (None, Some(f)) => Access::passphrase_file(f),
            (None, None) => Ok(Access::None),
        }
    }
}

#[derive(Args, Debug)]
struct ListArgs {
    #[command(flatten)]
    repo: RepoArg,
    #[command(flatten)]
    keys: KeyArgs,
    /// One JSON array of backups, for scripts.
    #[arg(long)]
    json: bool,
}

fn exit_code(e: &BackupError) -> u8 {
    match e {
        BackupError::Missing { .. } | BackupError::Damaged { .. } => 5,
        BackupError::Storage { .. } => 2,
        BackupError::Key(_) | BackupError::Locked(_) | BackupError::Usage(_) => 1,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    backup::limit_heap_growth();
    let cli = Cli::parse_from(split_own(std::env::args_os().collect()));
    let result = match cli.command {
        Command::Backup(args) => return backup_command(args).await,
        Command::Init(args) => init(args).await,
        Command::List(args) => list(args).await,
        Command::Restore(args) if args.to_dir.is_none() => return restore_command(args).await,
        Command::Restore(args) => restore(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rbackup: {e}");
            ExitCode::from(exit_code(&e))
        }
    }
}

fn read_recipients_file(path: &PathBuf) -> Result<Vec<String>, BackupError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BackupError::Usage(format!("{}: {e}", path.display())))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

async fn init(args: InitArgs) -> Result<(), BackupError> {
    let mut recipients = args.recipients.clone();
    if let Some(f) = &args.recipients_file {
        recipients.extend(read_recipients_file(f)?);
    }
    let passphrase = match &args.passphrase_file {
        Some(f) => match Access::passphrase_file(f)? {
            Access::Passphrase(p) => Some(p),
            _ => unreachable!(),
        },
        None => None,
    };
    // Refuse an existing writer key file before anything is created.
    let mut key_out = match &args.writer_key_file {
        Some(path) => Some(create_secret_file(path)?),
        None => None,
    };
    let options = InitOptions {
        recipients,
        passphrase,
        no_encryption: args.no_encryption,
        scrypt_log_n: None,
    };
    let result = backup::init(&args.repo.repo, options, &StoreOptions::default()).await;
    let (repo, writer) = match result {
        Ok(r) => r,
        Err(e) => {
            if let Some(path) = &args.writer_key_file {
                drop(key_out.take());
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
    };
    println!(
        "created repository {} at {} ({})",
        repo.config.id,
        args.repo.repo,
        if repo.keys.encrypted() {
            "encrypted with age"
        } else {
            "NOT encrypted"
        }
    );
    match (writer, key_out, &args.writer_key_file) {
        (Some(w), Some(mut file), Some(path)) => {
            file.write_all(w.to_text().as_bytes())
                .and_then(|_| file.sync_all())
                .map_err(|e| BackupError::Usage(format!("{}: {e}", path.display())))?;
            println!("writer key written to {}", path.display());
        }
        (_, Some(_), Some(path)) => {
            drop(std::fs::remove_file(path));
            println!("no writer key: the repository is not encrypted");
        }
        _ => {}
    }
    Ok(())
}

fn create_secret_file(path: &PathBuf) -> Result<std::fs::File, BackupError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| BackupError::Usage(format!("{}: {e}", path.display())))
}

async fn list(args: ListArgs) -> Result<(), BackupError> {
    let access = args.keys.access()?;
    let repo = backup::open(&args.repo.repo, &access, &StoreOptions::default()).await?;
    let reader = RepositoryReader::open(repo).await?;
    let snapshots = reader.snapshots().await?;
    if args.json {
        let list: Vec<serde_json::Value> = snapshots
            .iter()
            .map(|(id, s)| {
                serde_json::json!({
                    "id": id, "time": s.time, "host": s.host, "tags": s.tags,
                    "meta": s.meta, "stats": s.stats,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list).expect("json"));
        return Ok(());
    }
    println!(
        "{:<10} {:<20} {:<24} {:>14} {:>14}  {:<30} tags",
        "ID", "time", "databases", "logical bytes", "new bytes", "coordinates"
    );
    for (id, s) in &snapshots {
        let databases = match s.meta.get("databases") {
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(","),
            _ => "(all)".into(),
        };
        let coordinates = s
            .meta
            .get("coordinates")
            .map(|c| {
                let file = c.get("file").and_then(|v| v.as_str()).unwrap_or("");
                let pos = c.get("position").map(|v| v.to_string()).unwrap_or_default();
                let gtid = c.get("gtid").and_then(|v| v.as_str()).unwrap_or("");
                format!("{file}:{pos} {gtid}").trim().to_string()
            })
            .unwrap_or_default();
        println!(
            "{:<10} {:<20} {:<24} {:>14} {:>14}  {:<30} {}",
            &id[..8],
            s.time,
            databases,
            s.stats.logical_bytes,
            s.stats.new_bytes,
            coordinates,
            s.tags.join(",")
        );
    }
    Ok(())
}

async fn restore(args: RestoreArgs) -> Result<(), BackupError> {
    let Some(dir) = &args.to_dir else {
        unreachable!("restore into a server is restore_command's");
    };
    if !args.load_options.is_empty() {
        return Err(BackupError::Usage(format!(
            "restore --to-dir takes no load options (got {})",
            args.load_options[0]
        )));
    }
    let access = args.keys.access()?;
    let repo = backup::open(&args.repo.repo, &access, &StoreOptions::default()).await?;
    let reader = RepositoryReader::open(repo).await?;
    let (id, snapshot) = reader.snapshot(&args.id).await?;
    // rdump's manifest goes last: a directory without it is not a dump.
    let done = reader
        .restore_to_dir(&snapshot, dir, &["rdump.json"])
        .await?;
    println!(
        "restored backup {id} ({} files, {} bytes) to {}",
        done.files,
        done.bytes,
        dir.display()
    );
    Ok(())
}

/// Why `backup` or a restore into a server failed, with the exit code of its kind.
enum Failure {
    Repository(BackupError),
    Dump(rdump::error::Error),
    Load(rdump::load::error::LoadError),
    Usage(String),
}

impl Failure {
    fn report(self) -> ExitCode {
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
const GROUPS: &[&str] = &["client", "rbackup"];

async fn backup_command(args: BackupArgs) -> ExitCode {
    match run_backup(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(),
    }
}

/// rdump's plan for the dump of a backup: the directory dump's options (CSV unless
/// `--format` says otherwise; every database unless a selection is given).
fn backup_plan(dump_options: &[String]) -> Result<rdump::plan::Plan, Failure> {
    use rdump::plan::{Command as DumpCommand, Output};
    let selects = dump_options.iter().any(|a| {
        matches!(a.as_str(), "-A" | "-B" | "--all-databases" | "--databases")
            || a.starts_with("--databases=")
    });
    // --no-defaults and --defaults-*: first, as rdump's parser wants them; then what a
    // backup always holds (routines, events; triggers are on by default) and CSV, which
    // later options may change.
    let defaults = dump_options
        .iter()
        .take_while(|a| a.starts_with("--no-defaults") || a.starts_with("--defaults"))
        .count();
    let mut argv: Vec<std::ffi::OsString> =
        dump_options[..defaults].iter().map(Into::into).collect();
    argv.extend(["--routines", "--events", "--format=csv"].map(Into::into));
    argv.extend(dump_options[defaults..].iter().map(Into::into));
    if !selects {
        argv.push("--all-databases".into());
    }
    // Where the dump's files go is the repository; the directory is never created.
    argv.push("--dir=rbackup-repository".into());
    let parsed = rdump::options::parse(&argv, &rdump::options::Env::from_process(), GROUPS);
    rdump::process::argv::mask(rdump::options::secret_span);
    let mut plan = match parsed {
        Ok(DumpCommand::Dump(plan)) => *plan,
        Ok(_) => {
            return Err(Failure::Usage(
                "backup: --help, --version and --print-defaults are rbackup's, not the dump's"
                    .into(),
            ));
        }
        Err(e) => return Err(Failure::Usage(format!("backup: {e}"))),
    };
    if !matches!(plan.output, Output::Dir(_)) {
        return Err(Failure::Usage(
            "backup: the dump's output is the repository (no -r, --tab)".into(),
        ));
    }
    if plan.connection.password == Password::Prompt {
        let pw = rdump::process::prompt::password("Enter password: ")
            .map_err(|e| Failure::Usage(format!("could not read the password: {e}")))?;
        plan.connection.password = Password::Given(Secret::new(pw));
    }
    plan.quiet = true;
    // The repository compresses each blob; a compressed stream would not deduplicate.
    plan.zstd = None;
    Ok(plan)
}

async fn run_backup(args: BackupArgs) -> Result<(), Failure> {
    let plan = backup_plan(&args.dump_options)?;
    let rdump::plan::Output::Dir(opts) = &plan.output else {
        unreachable!("checked by backup_plan")
    };
    let access = match &args.writer_key_file {
        Some(f) => Access::writer_key_file(f)?,
        None => args.keys.access()?,
    };
    let repo = backup::open(&args.repo.repo, &access, &StoreOptions::default()).await?;
    let writer = std::sync::Arc::new(
        backup::BackupWriter::start(repo, backup::WriterOptions::default()).await?,
    );
    let destination = Destination::Repository(std::sync::Arc::clone(&writer));
    let started = std::time::Instant::now();
    let dumped = tokio::select! {
        r = rdump::dump::dir::run_to(&plan, opts, destination) => r,
        e = interrupted() => Err(e),
    };
    let writer = sole_owner(writer).await;
    let summary = match dumped {
        Ok(summary) => summary,
        Err(e) => {
            if let Some(w) = writer {
                w.abort().await;
            }
            return Err(Failure::Dump(e));
        }
    };
    let Some(writer) = writer else {
        return Err(Failure::Usage(
            "the dump ended with files still open".into(),
        ));
    };
    let info = SnapshotInfo {
        host: None,
        tags: args.tags.clone(),
        meta: serde_json::json!({
            "databases": summary.database_names,
            "coordinates": summary.coordinates,
            "consistency": summary.method,
            "server": rdump::client::conn::server_label(&plan.connection),
            "tables": summary.tables,
            "rows": summary.rows,
        }),
    };
    let (id, snapshot) = writer.commit(info).await?;
    if args.json {
        let out = serde_json::json!({
            "id": id, "time": snapshot.time, "host": snapshot.host, "tags": snapshot.tags,
            "meta": snapshot.meta, "stats": snapshot.stats,
            "seconds": started.elapsed().as_secs_f64(),
        });
        println!("{}", serde_json::to_string_pretty(&out).expect("json"));
    } else {
        println!("{id}");
    }
    eprintln!(
        "rbackup: backup {} of {} databases, {} tables, {} rows: {} logical bytes, {} new ({} stored) in {:.1} s",
        &id[..8],
        summary.databases,
        summary.tables,
        summary.rows,
        snapshot.stats.logical_bytes,
        snapshot.stats.new_bytes,
        snapshot.stats.new_stored_bytes,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The writer once the dump's tasks let go of it (a failed dump's workers are aborted,
/// not joined); `None` if they still hold it after a few seconds (then no snapshot is
/// written either way: dropping the writer closes its upload queue).
async fn sole_owner(
    mut writer: std::sync::Arc<backup::BackupWriter>,
) -> Option<backup::BackupWriter> {
    for _ in 0..100 {
        match std::sync::Arc::try_unwrap(writer) {
            Ok(w) => return Some(w),
            Err(w) => writer = w,
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    None
}

/// Resolves when SIGINT, SIGTERM or SIGHUP arrives (watched on a thread of its own from the
/// moment this is first polled).
async fn interrupted() -> rdump::error::Error {
    let mut watch = rdump::process::signals::watch();
    let (name, signal) = watch.interrupted().await;
    rdump::error::Error::Interrupted { name, signal }
}

async fn restore_command(args: RestoreArgs) -> ExitCode {
    match run_restore(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(),
    }
}

/// Restore into a server: the backup is written to a private temporary directory
/// (`tempfile` makes it 0700), loaded as rload would, and removed.
async fn run_restore(args: RestoreArgs) -> Result<(), Failure> {
    use rdump::load::LoadCommand;
    use rdump::options::rload;
    let staging = tempfile::Builder::new()
        .prefix("rbackup-restore-")
        .tempdir()
        .map_err(|e| Failure::Usage(format!("could not create a temporary directory: {e}")))?;
    let mut argv: Vec<std::ffi::OsString> = args.load_options.iter().map(Into::into).collect();
    argv.push(staging.path().into());
    let parsed = rload::parse(&argv, &rdump::options::Env::from_process(), GROUPS);
    rdump::process::argv::mask(rload::secret_span);
    let mut opts = match parsed {
        Ok(LoadCommand::Load(opts)) => *opts,
        Ok(_) => {
            return Err(Failure::Usage(
                "restore: --help and --version are rbackup's, not the load's".into(),
            ));
        }
        Err(e) => return Err(Failure::Usage(format!("restore: {e}"))),
    };
    if opts.connection.password == Password::Prompt {
        let pw = rdump::process::prompt::password("Enter password: ")
            .map_err(|e| Failure::Usage(format!("could not read the password: {e}")))?;
        opts.connection.password = Password::Given(Secret::new(pw));
    }
    let access = args.keys.access()?;
    let repo = backup::open(&args.repo.repo, &access, &StoreOptions::default()).await?;
    let reader = RepositoryReader::open(repo).await?;
    let (id, snapshot) = reader.snapshot(&args.id).await?;
    let done = reader
        .restore_to_dir(&snapshot, staging.path(), &["rdump.json"])
        .await?;
    drop(reader);
    let changed = std::sync::atomic::AtomicBool::new(false);
    let loaded = tokio::select! {
        r = rdump::load::run(&opts, &changed) => r,
        e = interrupted() => Err(rdump::load::error::LoadError::Rdump(e)),
    };
    let summary = loaded.map_err(Failure::Load)?;
    if !opts.quiet {
        eprintln!("{}", summary.line());
    }
    println!(
        "restored backup {id} ({} files, {} bytes) into {}",
        done.files,
        done.bytes,
        rdump::client::conn::server_label(&opts.connection)
    );
    Ok(())
}
