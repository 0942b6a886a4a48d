//! `rbackup restore`: a backup into a server (staged in a private temporary directory, then
//! loaded as rload does; the target's connection and load options are rload's, parsed by
//! its own parser) or, with `--to-dir`, back into the directory `rdump --dir` made. A
//! direct repository source for the loader is left for later.
//!
//! Not for: the load itself (`rdump::load`), reading the repository (`rdump::backup`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Args};
use rdump::backup::error::BackupError;
use rdump::backup::store::StoreOptions;
use rdump::backup::{self, RepositoryReader};
use rdump::client::options::{Password, Secret};

use crate::common::{Failure, GROUPS, KeyArgs, RepoArg, interrupted};

pub const HELP: &str = "\
Into a server: the target's connection options and the load options are rload's, read also
from the [client] and [rbackup] groups: -h -P -S -u -p --ssl-* ..., --threads N,
--databases DB,..., --drop-existing, ... See rload --help. The backup is written to a
private temporary directory (mode 0700, in $TMPDIR) and removed after the load, so
that much free space is needed there. Give the ID before the connection options.
A backup of every database restores every database but `mysql` (the target's own; name
it with --databases mysql --drop-existing to load it over the target's), then the
accounts: users and roles the target does not have are created with their passwords,
grants and default roles; accounts the target has (root, mariadb.sys, the account
running the restore) are left exactly as they are.

Exit codes:
  0  success
  1  usage error, or refused: no repository, wrong or missing key, locked
  2  the storage failed (the error names the object), or the target server failed
  3  the load found data it could not load as dumped
  5  the repository is damaged: an object is missing or does not match its hash; the
     error names the object and the file (table) that needs it";

#[derive(Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    repo: RepoArg,
    #[command(flatten)]
    keys: KeyArgs,
    /// The backup: its ID, a unique prefix of it, or `latest`.
    #[arg(default_value = "latest")]
    id: String,
    /// Write the backup's files into this new (or empty) directory instead of a server.
    #[arg(long, value_name = "DIR")]
    pub to_dir: Option<PathBuf>,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
    /// rload's options (target connection, load), see split_own.
    #[arg(last = true, hide = true)]
    load_options: Vec<String>,
}

pub async fn to_dir(args: RestoreArgs) -> Result<(), BackupError> {
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
    let repo = backup::open(&args.repo.repo, &access, &StoreOptions::from_env()?).await?;
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

/// A backup of every database holds `mysql` (without its privilege tables: the accounts
/// come as accounts.json). Restored into a server with no `--databases`, it is every
/// database but `mysql`, whose tables the target has as its own (to load them over the
/// target's, name it: `--databases mysql --drop-existing`), plus the accounts.
fn leave_out_mysql(opts: &mut rdump::load::LoadOptions, snapshot: &backup::Snapshot) {
    if !opts.databases.is_empty() || !opts.tables.is_empty() || opts.target_database.is_some() {
        return;
    }
    let Some(dbs) = snapshot.meta["databases"].as_array() else {
        return;
    };
    let names: Vec<String> = dbs
        .iter()
        .filter_map(|d| d.as_str())
        .map(str::to_string)
        .collect();
    if !names.iter().any(|d| d == "mysql") || names.len() < 2 {
        return;
    }
    opts.databases = names.into_iter().filter(|d| d != "mysql").collect();
    opts.accounts = true;
}

pub async fn command(args: RestoreArgs) -> ExitCode {
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
    let repo = backup::open(&args.repo.repo, &access, &StoreOptions::from_env()?).await?;
    let reader = RepositoryReader::open(repo).await?;
    let (id, snapshot) = reader.snapshot(&args.id).await?;
    let done = reader
        .restore_to_dir(&snapshot, staging.path(), &["rdump.json"])
        .await?;
    drop(reader);
    leave_out_mysql(&mut opts, &snapshot);
    let changed = std::sync::atomic::AtomicBool::new(false);
    let loaded = tokio::select! {
        r = rdump::load::run(&opts, &changed) => r,
        e = interrupted() => Err(rdump::load::error::LoadError::Rdump(e)),
    };
    let summary = loaded.map_err(Failure::Load)?;
    if !opts.quiet {
        crate::common::log(rdump::trust::log::Level::Info, &summary.line(), &[]);
    }
    println!(
        "restored backup {id} ({} files, {} bytes) into {}",
        done.files,
        done.bytes,
        rdump::client::conn::server_label(&opts.connection)
    );
    Ok(())
}
