//! The `rbackup` command: subcommands over a repository (REPOSITORY.md). This file holds
//! the command line (clap) and the dispatch; each subcommand lives in a module of its own
//! beside it (`init`, `list`, `backup`, `restore`, `drill` for `verify --drill`), with what
//! they share in `common`.
//! Parsing, running on tokio, printing and exit codes are here; everything else is in
//! `rdump::backup`.
//!
//! Every subcommand takes the global options (`common::Global`: `--config`,
//! `--metrics-file`, `--log-format`) before or after its name; the config file is loaded
//! before parsing and its values become clap's defaults, and the run's duration and
//! success go to the metrics file after the subcommand.
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

mod backup;
mod binlog;
mod check;
mod common;
mod copy;
mod drill;
mod init;
mod list;
mod prune;
mod restore;
mod verify;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use rdump::backup::limit_heap_growth;
use rdump::trust::log::{Level, Value};

use common::{EXIT_CODES, exit_code, split_own};

/// Deduplicated, encrypted MySQL/MariaDB backups in a local directory or S3.
#[derive(Parser, Debug)]
#[command(name = "rbackup", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(flatten)]
    global: common::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a repository.
    #[command(after_help = EXIT_CODES)]
    Init(init::InitArgs),
    /// List the backups in a repository (needs a reader key).
    #[command(after_help = EXIT_CODES)]
    List(list::ListArgs),
    /// Back up a server: a consistent directory dump (CSV by default) streamed into the
    /// repository; prints the new backup's ID.
    #[command(after_help = backup::HELP, disable_help_flag = true)]
    Backup(backup::BackupArgs),
    /// Restore a backup into a server (staged in a private temporary directory, then
    /// loaded as rload does), or with --to-dir as the directory `rdump --dir` made.
    #[command(after_help = restore::HELP, disable_help_flag = true)]
    Restore(restore::RestoreArgs),
    /// Check the repository: every object against its hash, every backup's references;
    /// with --read-data every blob. Names what is damaged and the backups it breaks.
    /// With --drill, restore a backup into a scratch server and compare it with the
    /// fingerprints recorded while it was taken.
    #[command(after_help = verify::help())]
    Verify(verify::VerifyArgs),
    /// Remove the backups a retention policy does not keep, and the data only they used.
    #[command(long_about = rdump::trust::retention::PRUNE_POLICY_HELP, after_help = prune::HELP)]
    Prune(prune::PruneArgs),
    /// Copy backups (all, or the IDs given) and archived binlogs missing at another
    /// repository (the offsite copy), re-encrypted for it; only what it lacks moves.
    #[command(after_help = copy::HELP)]
    Copy(copy::CopyArgs),
    /// Are the backups fresh, the binlogs archived, the drills recent? Exit 0 OK,
    /// 1 WARNING, 2 CRITICAL, 3 UNKNOWN, with one line saying why.
    #[command(long_about = rdump::trust::check::CHECK_HELP)]
    Check(check::CheckArgs),
    /// Archive the server's binlog into the repository continuously (for point-in-time
    /// recovery), or with --once up to its current position.
    #[command(after_help = binlog::HELP, disable_help_flag = true)]
    Binlog(binlog::BinlogArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    limit_heap_growth();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Err(e) = common::load_config(&argv) {
        eprintln!("rbackup: {e}");
        return ExitCode::from(1);
    }
    let matches = common::with_config_defaults(Cli::command()).get_matches_from(split_own(argv));
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    common::start_run(&cli.global, matches.subcommand_name().unwrap_or("rbackup"));
    let code = run(cli.command).await;
    if !common::finish_run(code == ExitCode::SUCCESS) && code == ExitCode::SUCCESS {
        return ExitCode::from(1);
    }
    code
}

async fn run(command: Command) -> ExitCode {
    let result = match command {
        Command::Backup(args) => return backup::command(args).await,
        Command::Init(args) => init::run(args).await,
        Command::List(args) => list::run(args).await,
        Command::Restore(args) if args.to_dir.is_none() => return restore::command(args).await,
        Command::Restore(args) => restore::to_dir(args).await,
        Command::Verify(args) => return verify::command(args).await,
        Command::Prune(args) => prune::run(args).await,
        Command::Copy(args) => copy::run(args).await,
        Command::Check(args) => return check::command(args).await,
        Command::Binlog(args) => return binlog::command(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = exit_code(&e);
            common::log(
                Level::Error,
                &e.to_string(),
                &[("exit_code", Value::UInt(code.into()))],
            );
            ExitCode::from(code)
        }
    }
}
