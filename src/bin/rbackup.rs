//! The `rbackup` command: subcommands over a repository (REPOSITORY.md). Parsing with clap,
//! running on tokio, printing, exit codes; everything else is in `rdump::backup`.
//!
//! Implemented: `init`, `list`, `restore --to-dir`. `backup` and `restore` into a server
//! need the dump pipeline: the dump's sink will feed `rdump::backup::BackupWriter`
//! (`file`, `FileWriter::write` from the row callback, `close_file`, `commit` with the
//! manifest's coordinates), and a restore into a server will stream
//! `RepositoryReader::read_file` into rload's loader.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use rdump::backup::error::BackupError;
use rdump::backup::store::StoreOptions;
use rdump::backup::{self, Access, InitOptions, RepositoryReader};

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
    /// Restore a backup: with --to-dir, as the directory `rdump --dir` made (rload loads it).
    #[command(after_help = EXIT_CODES)]
    Restore(RestoreArgs),
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
    /// Write the backup's files into this new (or empty) directory.
    #[arg(long, value_name = "DIR")]
    to_dir: Option<PathBuf>,
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
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init(args) => init(args).await,
        Command::List(args) => list(args).await,
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
        return Err(BackupError::Usage(
            "restoring into a server is not wired yet: restore --to-dir DIR, then rload DIR".into(),
        ));
    };
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
