//! `rbackup verify --drill [ID|latest] [--target OPTIONS...]`: the restore drill's command
//! line, its printing and exit codes. Without `--target` the backup is restored into a
//! throwaway server rbackup starts and removes; after `--target`, every argument is
//! rload's (the target's connection and load options).
//!
//! `VerifyArgs` holds the `verify` subcommand's arguments as far as drills need them;
//! `verify` without `--drill` (checking objects, `--read-data`) is another module's.
//!
//! Not for: the drill itself (`rdump::trust::drill`), the record's format
//! (`rdump::backup::drill`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use rdump::backup::store::StoreOptions;
use rdump::backup::{self};
use rdump::trust::drill::{DrillOptions, Outcome, Target};
use rdump::trust::scratch::ScratchOptions;

use crate::common::{Failure, KeyArgs, RepoArg, exit_code, interrupted};

pub const HELP: &str = "\
--drill [ID|latest] restores a backup into a scratch server and compares it, table by
table, with the row fingerprints recorded while the backup was taken (row count and an
order-independent hash of the rows), plus the counts of views, routines, triggers and
events per database. Without --target the scratch server is a throwaway mariadbd (or
mysqld) that rbackup initializes (mariadb-install-db) in a private temporary directory
($TMPDIR/rbackup-drill-*), on a unix socket only, and removes after, also on failure or
Ctrl-C. --target ends rbackup's options: every argument after it is rload's (the target's
connection options -h -P -S -u -p --ssl-*, option files, --threads, --drop-existing ...);
the restored data stays there. The backup is staged in $TMPDIR (as much free space as its
logical size). The mysql schema is neither restored nor compared. After the comparison
(against the backup's own state), when the repository has a binlog archive covering the
backup's coordinates, it is replayed into the restored server to its latest complete
transaction (as restore --to-latest), or up to a gap in the archive after the backup (the
end of what can be restored from it: the record names the gap, and the drill does not
fail for it; check reports gaps); the record says whether it was replayed or why not, how
many transactions, and the stop point. The result is recorded in the repository
(drills/<backup>/<id>); `rbackup list` shows each backup's last drill.

Exit codes:
  0  the drill passed
  1  usage error, or refused: no repository, no such backup, wrong or missing key (a
     drill needs a reader key), locked by another operation
  2  the drill could not run: the storage failed, the scratch server did not start, the
     target could not be reached, the restored server could not be read, or the binlog
     replay could not start (mariadb-binlog/mariadb missing, replay privileges lacking)
  5  the drill failed: the repository is damaged (an object is missing or does not match
     its hash); the report names each table whose data it holds (or the binlog archive's
     damaged segment)
  6  the drill failed: the backup did not load, or a restored table's rows or
     fingerprint, or a database's count of views/routines/triggers/events, differs from
     what the backup recorded; or an archived binlog transaction failed to replay; the
     report names them
130 (or 128 + the signal) interrupted; nothing is recorded";

#[derive(Args, Debug)]
pub struct DrillArgs {
    /// Restore drill of a backup (its ID, a unique prefix, or `latest`, the default).
    #[arg(long, value_name = "ID", num_args = 0..=1, default_missing_value = "latest")]
    pub drill: Option<String>,
    /// Restore into this server instead of a scratch one: every argument after --target
    /// is rload's (connection and load options).
    #[arg(long)]
    pub target: bool,
    /// The scratch server's binary (default: mariadbd, then mysqld, in $PATH and sbin).
    #[arg(long, value_name = "PATH")]
    pub scratch_server: Option<PathBuf>,
    /// Connections for loading and reading back (default 4).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub threads: usize,
    /// Print the report (of a drill: its record) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// rload's options after --target, see split_own.
    #[arg(last = true, hide = true)]
    pub target_options: Vec<String>,
}

/// What a drill needs of `verify`'s arguments (`verify::VerifyArgs` holds the command line).
#[derive(Debug)]
pub struct VerifyArgs {
    pub repo: RepoArg,
    pub keys: KeyArgs,
    pub drill: DrillArgs,
}

pub async fn command(args: VerifyArgs) -> ExitCode {
    let Some(id) = args.drill.drill.clone() else {
        unreachable!("verify::command runs drills only with --drill");
    };
    tokio::select! {
        code = run(args, id) => code,
        e = interrupted() => {
            eprintln!("rbackup: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

fn target(args: &DrillArgs) -> Result<Target, Failure> {
    if !args.target {
        if !args.target_options.is_empty() {
            return Err(Failure::Usage(format!(
                "verify: unexpected argument {} (target options go after --target)",
                args.target_options[0]
            )));
        }
        return Ok(Target::Scratch(ScratchOptions {
            server: args.scratch_server.clone(),
            buffer_pool: None,
        }));
    }
    // rload wants a dump directory; the drill replaces it with its staging directory.
    let opts = crate::common::parse_load_options(
        &args.target_options,
        std::path::Path::new("rbackup-drill-staging"),
        "verify --target",
    )?;
    Ok(Target::Server(Box::new(opts)))
}

async fn run(args: VerifyArgs, id: String) -> ExitCode {
    let target = match target(&args.drill) {
        Ok(t) => t,
        Err(f) => return f.report(),
    };
    let access = match args.keys.access() {
        Ok(a) => a,
        Err(e) => return Failure::Repository(e).report(),
    };
    let repo = match backup::open(&args.repo.repo, &access, &StoreOptions::default()).await {
        Ok(r) => r,
        Err(e) => return Failure::Repository(e).report(),
    };
    let options = DrillOptions {
        snapshot: id,
        target,
        threads: args.drill.threads.max(1),
    };
    let drilled = match rdump::trust::drill::run(repo, options).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("rbackup: drill: {e}");
            return ExitCode::from(exit_code(&e));
        }
    };
    let r = &drilled.record;
    if args.drill.json {
        println!("{}", serde_json::to_string_pretty(r).expect("json"));
    } else {
        for t in r.tables.iter().filter(|t| t.result != "ok") {
            let rows = match (t.expected_rows, t.restored_rows) {
                (Some(e), Some(g)) => format!(": {g} rows restored, {e} recorded"),
                (Some(e), None) => format!(": {e} rows recorded"),
                (None, Some(g)) => format!(": {g} rows restored"),
                (None, None) => String::new(),
            };
            let detail = t
                .detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            let name = if t.db.is_empty() {
                t.table.clone()
            } else {
                format!("{}.{}", t.db, t.table)
            };
            println!("{:<10} {name}{rows}{detail}", t.result);
        }
        for o in r.objects.iter().filter(|o| o.expected != o.restored) {
            println!(
                "differs    {}: {} {} restored, {} recorded",
                o.db, o.kind, o.restored, o.expected
            );
        }
        println!(
            "drill {} of backup {} into {}: {} tables, {} rows compared in {:.1} s{}",
            r.verdict.to_uppercase(),
            &r.snapshot[..8.min(r.snapshot.len())],
            r.target,
            r.tables_compared,
            r.rows_compared,
            r.seconds,
            if r.message.is_empty() {
                String::new()
            } else {
                format!(": {}", r.message)
            }
        );
        if !r.phases.is_empty() {
            let phases: Vec<String> = r
                .phases
                .iter()
                .map(|(k, v)| format!("{} {v:.1} s", k.replace('_', " ")))
                .collect();
            eprintln!("rbackup: drill phases: {}", phases.join(", "));
        }
        if let Some(reason) = r.binlog_replay.get("reason").and_then(|v| v.as_str()) {
            println!("binlog replay: {reason}");
        }
    }
    match &drilled.stored {
        Ok(name) => eprintln!("rbackup: drill recorded as {name}"),
        Err(e) => eprintln!("rbackup: warning: the drill could not be recorded: {e}"),
    }
    let code = match drilled.outcome {
        Outcome::Passed => 0,
        Outcome::Failed { damage: true } => 5,
        Outcome::Failed { damage: false } => 6,
        Outcome::Error => 2,
    };
    if code == 0 && drilled.stored.is_err() {
        return ExitCode::from(2);
    }
    ExitCode::from(code)
}
