//! The `rbackup` command: subcommands over a repository (REPOSITORY.md). This file holds
//! the command line (clap) and the dispatch; each subcommand lives in a module of its own
//! beside it (`init`, `list`, `backup`, `restore`), with what they share in `common`.
//! Parsing, running on tokio, printing and exit codes are here; everything else is in
//! `rdump::backup`.
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
mod common;
mod init;
mod list;
mod restore;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rdump::backup::limit_heap_growth;

use common::{EXIT_CODES, exit_code, split_own};

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
    /// Archive the server's binlog into the repository continuously (for point-in-time
    /// recovery), or with --once up to its current position.
    #[command(after_help = binlog::HELP, disable_help_flag = true)]
    Binlog(binlog::BinlogArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    limit_heap_growth();
    let cli = Cli::parse_from(split_own(std::env::args_os().collect()));
    let result = match cli.command {
        Command::Backup(args) => return backup::command(args).await,
        Command::Init(args) => init::run(args).await,
        Command::List(args) => list::run(args).await,
        Command::Restore(args) if args.to_dir.is_none() => return restore::command(args).await,
        Command::Restore(args) => restore::to_dir(args).await,
        Command::Binlog(args) => return binlog::command(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rbackup: {e}");
            ExitCode::from(exit_code(&e))
        }
    }
}
