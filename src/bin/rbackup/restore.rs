//! `rbackup restore`: a backup into a server (staged in a private temporary directory, then
//! loaded as rload does; the target's connection and load options are rload's, parsed by
//! its own parser) or, with `--to-dir`, back into the directory `rdump --dir` made. A
//! direct repository source for the loader is left for later.
//!
//! With `--to-time`, `--to-gtid`, `--to-position` or `--to-latest`, a point-in-time
//! restore: the snapshots become `binlog::replay::BackupPoint`s, `replay::plan` picks the
//! backup and the events, the plan is printed (and with `--dry-run` that is all); else the
//! target's privileges are checked (`apply::check_privileges`), the backup is loaded as
//! above and the events replayed (`apply::apply`).
//!
//! Not for: the load itself (`rdump::load`), reading the repository (`rdump::backup`),
//! planning or replaying (`rdump::binlog::{replay, apply}`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Args};
use rdump::backup::error::BackupError;
use rdump::backup::store::StoreOptions;
use rdump::backup::{self, RepositoryReader};

use crate::common::{Failure, KeyArgs, RepoArg, interrupted};

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

Point in time: --to-time 'YYYY-MM-DD HH:MM:SS[.ffffff]' [--time-zone Z] (Z: SYSTEM, the
default, UTC, +HH:MM or a name such as Europe/Berlin), --to-gtid G (inclusive),
--to-position FILE:POS (every transaction ending at or before it) or --to-latest loads the
backup with the newest binlog coordinates at or before the stop point (found in the archive
by the server's event times, not by when backups were committed; a whole-server backup
first: one of some databases only when no whole-server one serves, and the plan says so;
never one of some tables or rows: --tables, --ignore-table, --where, ...), then replays
the archived events from exactly there through mariadb-binlog piped into mariadb (found on
PATH; mysqlbinlog/mysql for MySQL), whole transactions only. --skip-gtid G (repeatable)
leaves a transaction out. --dry-run prints the plan and touches nothing. The stop point is
printed in every mode. --source NAME picks the archive when the repository holds several
(as `rbackup binlog --source` named them; a backup ID picks its own). Only backups of that
archive's source server are candidates (recorded by `rbackup backup`; older backups that
record none are candidates for any archive, and the plan says so). The account needs BINLOG REPLAY (MariaDB 10.5+; SUPER before),
checked before anything changes.

Exit codes:
  0  success
  1  usage error, or refused: no repository, wrong or missing key, locked, no backup
     before the target, a gap in the binlog archive, missing replay privileges
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
    /// The backup: its ID, a unique prefix of it, or `latest` (the default). With a
    /// point-in-time target: only this backup is considered.
    id: Option<String>,
    /// Write the backup's files into this new (or empty) directory instead of a server.
    #[arg(long, value_name = "DIR")]
    pub to_dir: Option<PathBuf>,
    #[command(flatten)]
    pub pitr: PitrArgs,
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
    let (id, snapshot) = reader
        .snapshot(args.id.as_deref().unwrap_or("latest"))
        .await?;
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
    if args.pitr.any() {
        return pitr::command(args).await;
    }
    match run_restore(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(),
    }
}

/// Restore into a server: the backup is written to a private temporary directory
/// (`tempfile` makes it 0700), loaded as rload would, and removed.
async fn run_restore(args: RestoreArgs) -> Result<(), Failure> {
    let (staging, opts) = load_options(&args.load_options)?;
    let access = args.keys.access()?;
    let repo = backup::open(&args.repo.repo, &access, &StoreOptions::from_env()?).await?;
    let reader = RepositoryReader::open(repo).await?;
    load_backup(
        reader,
        args.id.as_deref().unwrap_or("latest"),
        staging,
        &opts,
    )
    .await
}

/// rload's options for the target, with the staging directory they load from.
pub(crate) fn load_options(
    load_options: &[String],
) -> Result<(tempfile::TempDir, rdump::load::LoadOptions), Failure> {
    let staging = tempfile::Builder::new()
        .prefix("rbackup-restore-")
        .tempdir()
        .map_err(|e| Failure::Usage(format!("could not create a temporary directory: {e}")))?;
    let opts = crate::common::parse_load_options(load_options, staging.path(), "restore")?;
    Ok((staging, opts))
}

/// Loads backup `id` into the target of `opts` through `staging` (removed after).
pub(crate) async fn load_backup(
    reader: RepositoryReader,
    id: &str,
    staging: tempfile::TempDir,
    opts: &rdump::load::LoadOptions,
) -> Result<(), Failure> {
    let (id, snapshot) = reader.snapshot(id).await?;
    let mut opts = opts.clone();
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

/// The point-in-time options of `restore`.
#[derive(Args, Debug, Default)]
pub struct PitrArgs {
    /// Restore to this time: 'YYYY-MM-DD HH:MM:SS[.ffffff]', read in --time-zone.
    #[arg(long, value_name = "TIME", conflicts_with_all = ["to_gtid", "to_position", "to_latest"])]
    pub to_time: Option<String>,
    /// The zone of --to-time: SYSTEM (the default), UTC, +HH:MM or a name (Europe/Berlin).
    #[arg(long, value_name = "Z", requires = "to_time")]
    pub time_zone: Option<String>,
    /// Restore up to and including this transaction (MariaDB domain-server-seq).
    #[arg(long, value_name = "GTID", conflicts_with_all = ["to_position", "to_latest"])]
    pub to_gtid: Option<String>,
    /// Restore every transaction that ends at or before this binlog position.
    #[arg(long, value_name = "FILE:POS", conflicts_with = "to_latest")]
    pub to_position: Option<String>,
    /// Restore every complete transaction archived.
    #[arg(long)]
    pub to_latest: bool,
    /// Leave this transaction out of the replay (repeatable).
    #[arg(long, value_name = "GTID")]
    pub skip_gtid: Vec<String>,
    /// Print the plan (backup, segments, first and last event, stop point) and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// The source server whose binlog archive to replay (as `rbackup binlog --source`
    /// named it); needed only when the repository archives several.
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
    /// Read the binlog archive from a directory of `rdump::binlog::local::LocalDirStore`
    /// instead of the repository (for tests and archives kept by hand).
    #[arg(long, value_name = "DIR", hide = true)]
    pub binlog_archive: Option<PathBuf>,
}

impl PitrArgs {
    fn any(&self) -> bool {
        self.to_time.is_some()
            || self.to_gtid.is_some()
            || self.to_position.is_some()
            || self.to_latest
            || !self.skip_gtid.is_empty()
            || self.dry_run
    }
}

mod pitr {
    use std::process::ExitCode;

    use rdump::backup::segments::RepositorySegments;
    use rdump::backup::store::StoreOptions;
    use rdump::backup::{self, RepositoryReader};
    use rdump::binlog::apply::{self, ApplyError, Tools};
    use rdump::binlog::replay::{self, BackupPoint, PlanError, Target};
    use rdump::binlog::{Position, SegmentSource};
    use rdump::client::conn::Session;

    use super::{RestoreArgs, load_backup, load_options};
    use crate::common::Failure;

    /// A point-in-time restore's failure, with its exit code.
    enum PitrFailure {
        Plan(PlanError),
        Apply(ApplyError),
        Other(Failure),
    }

    impl From<Failure> for PitrFailure {
        fn from(f: Failure) -> PitrFailure {
            PitrFailure::Other(f)
        }
    }

    impl From<rdump::backup::error::BackupError> for PitrFailure {
        fn from(e: rdump::backup::error::BackupError) -> PitrFailure {
            PitrFailure::Other(Failure::Repository(e))
        }
    }

    pub async fn command(args: RestoreArgs) -> ExitCode {
        let code = match run(args).await {
            Ok(()) => return ExitCode::SUCCESS,
            Err(PitrFailure::Other(f)) => return f.report(),
            Err(PitrFailure::Plan(e)) => {
                eprintln!("rbackup: {e}");
                match e {
                    PlanError::Archive(_) => 5,
                    PlanError::Refused(_) | PlanError::Usage(_) => 1,
                }
            }
            Err(PitrFailure::Apply(e)) => {
                eprintln!("rbackup: {e}");
                match e {
                    ApplyError::Privileges(_) => 1,
                    ApplyError::Archive(_) => 5,
                    _ => 2,
                }
            }
        };
        ExitCode::from(code)
    }

    fn target(args: &super::PitrArgs) -> Result<Target, PlanError> {
        if let Some(t) = &args.to_time {
            return Ok(Target::Time(replay::parse_time(
                t,
                args.time_zone.as_deref(),
            )?));
        }
        if let Some(g) = &args.to_gtid {
            return Ok(Target::Gtid(replay::normalize_gtid(g)?));
        }
        if let Some(p) = &args.to_position {
            let bad = || PlanError::Usage(format!("--to-position {p:?}: expected FILE:POS"));
            let (file, pos) = p.rsplit_once(':').ok_or_else(bad)?;
            return Ok(Target::Position(Position {
                file: file.to_string(),
                pos: pos.parse().map_err(|_| bad())?,
            }));
        }
        if args.to_latest {
            return Ok(Target::Latest);
        }
        Err(PlanError::Usage(
            "a point-in-time restore needs --to-time, --to-gtid, --to-position or --to-latest"
                .into(),
        ))
    }

    /// The backups as the planner sees them (those without binlog coordinates cannot
    /// start a replay and are left out).
    async fn backup_points(
        reader: &RepositoryReader,
        only: Option<&str>,
    ) -> Result<Vec<BackupPoint>, PitrFailure> {
        let snapshots = match only {
            Some(id) => vec![reader.snapshot(id).await?],
            None => reader.snapshots().await?,
        };
        let out = snapshots
            .iter()
            .filter_map(|(id, s)| rdump::backup::segments::backup_point(id, s))
            .collect();
        Ok(out)
    }

    async fn run(args: RestoreArgs) -> Result<(), PitrFailure> {
        let target = target(&args.pitr).map_err(PitrFailure::Plan)?;
        let skip = args
            .pitr
            .skip_gtid
            .iter()
            .map(|g| replay::normalize_gtid(g))
            .collect::<Result<Vec<_>, _>>()
            .map_err(PitrFailure::Plan)?;
        if args.to_dir.is_some() {
            return Err(Failure::Usage("--to-dir cannot replay binlog events".into()).into());
        }
        if let Some(dir) = &args.pitr.binlog_archive {
            let store = rdump::binlog::local::LocalDirStore::open(dir).map_err(|e| {
                PitrFailure::Plan(PlanError::Archive(format!("{}: {e}", dir.display())))
            })?;
            return run_with(args, target, skip, &store).await;
        }
        let access = args.keys.access()?;
        let repo = backup::open(&args.repo.repo, &access, &StoreOptions::from_env()?).await?;
        let sources = RepositorySegments::sources(&repo).await?;
        // A backup named by ID picks its own source's archive: by name, else the archive
        // whose segments record its server.
        let own = match (&args.pitr.source, &args.id, sources.len()) {
            (None, Some(id), 2..) => {
                let reader = RepositoryReader::open(repo.clone()).await?;
                let (id, snapshot) = reader.snapshot(id).await?;
                match rdump::backup::segments::backup_point(&id, &snapshot) {
                    Some(point) => own_archive(&repo, &sources, &point).await?,
                    None => None,
                }
            }
            _ => None,
        };
        let name = match (
            own.as_ref().or(args.pitr.source.as_ref()),
            sources.as_slice(),
        ) {
            (Some(n), _) if sources.contains(n) => n.clone(),
            (Some(n), _) => {
                return Err(Failure::Usage(format!(
                    "the repository has no binlog archive of source {n:?} (it has: {})",
                    if sources.is_empty() {
                        "none".to_string()
                    } else {
                        sources.join(", ")
                    }
                ))
                .into());
            }
            (None, [one]) => one.clone(),
            (None, []) => {
                return Err(PitrFailure::Plan(PlanError::Refused(
                    "the repository has no binlog archive: start `rbackup binlog` on the \
                     source server"
                        .into(),
                )));
            }
            (None, many) => {
                return Err(Failure::Usage(format!(
                    "the repository archives the binlogs of several sources ({}): choose one \
                     with --source (a backup is replayed only with its own source's archive)",
                    many.join(", ")
                ))
                .into());
            }
        };
        let segments = RepositorySegments::open_reader(repo, &name)?;
        run_with(args, target, skip, &segments).await
    }

    /// The archive among `sources` that `point` belongs to (`BackupPoint::belongs_to`),
    /// when exactly one does.
    async fn own_archive(
        repo: &rdump::backup::Repository,
        sources: &[String],
        point: &BackupPoint,
    ) -> Result<Option<String>, PitrFailure> {
        if let Some(s) = &point.source
            && sources.contains(s)
        {
            return Ok(Some(s.clone()));
        }
        let mut found = Vec::new();
        for name in sources {
            let segments = RepositorySegments::open_reader(repo.clone(), name)?;
            let records = segments
                .records()
                .await
                .map_err(|e| PitrFailure::Plan(PlanError::Archive(format!("{name}: {e}"))))?;
            let mut servers: Vec<&str> = records
                .iter()
                .filter_map(|r| match r {
                    rdump::binlog::Record::Segment(s) => s.server.as_deref(),
                    rdump::binlog::Record::Gap(_) => None,
                })
                .collect();
            servers.dedup();
            if point.belongs_to(Some(name), &servers) == Some(true) {
                found.push(name.clone());
            }
        }
        Ok(if found.len() == 1 { found.pop() } else { None })
    }

    async fn run_with<S: SegmentSource>(
        args: RestoreArgs,
        target: Target,
        skip: Vec<String>,
        source: &S,
    ) -> Result<(), PitrFailure> {
        // Everything that can be refused is refused before the target is touched.
        let loading = if args.pitr.dry_run {
            None
        } else {
            Some(load_options(&args.load_options)?)
        };
        let access = args.keys.access()?;
        let repo = backup::open(&args.repo.repo, &access, &StoreOptions::from_env()?).await?;
        let reader = RepositoryReader::open(repo).await?;
        let backups = backup_points(&reader, args.id.as_deref()).await?;
        let plan = replay::plan(source, &backups, &target, &skip)
            .await
            .map_err(PitrFailure::Plan)?;
        println!("point-in-time restore to {target}:");
        for line in plan.describe() {
            println!("  {line}");
        }
        // A partial backup (chosen only when no whole-server one serves, or named): said
        // on stderr too, whatever the output's fate.
        if let Some(p) = &plan.partial {
            eprintln!("rbackup: PARTIAL RESTORE: {p}");
        }
        let Some((staging, opts)) = loading else {
            println!("dry run: nothing was changed");
            return Ok(());
        };
        let mut session = Session::connect(&opts.connection)
            .await
            .map_err(|e| PitrFailure::Other(Failure::Dump(e)))?;
        let dialect = session.dialect.clone();
        let tools = Tools::find(dialect.flavor).map_err(PitrFailure::Apply)?;
        if let Some(first) = plan.pieces.first() {
            apply::check_privileges(
                &mut session,
                &first.segment.format_description,
                opts.enable_binlog,
            )
            .await
            .map_err(PitrFailure::Apply)?;
        }
        session.close().await;
        load_backup(reader, &plan.backup.id, staging, &opts).await?;
        let started = std::time::Instant::now();
        let before = apply::before_replay_sql(&dialect, plan.backup.gtid.as_deref(), &plan.gtids);
        let done = apply::apply(
            source,
            &plan,
            &tools,
            &opts.connection,
            opts.enable_binlog,
            &before,
        )
        .await
        .map_err(PitrFailure::Apply)?;
        let secs = started.elapsed().as_secs_f64();
        let other = match &plan.backup.databases {
            Some(f) => format!(
                " ({} of {}'s; {} transactions of other databases left out)",
                plan.transactions,
                f.describe(),
                plan.other_databases.transactions
            ),
            None => String::new(),
        };
        println!(
            "replayed {} transactions{other} ({} bytes of binlog from {} files) in {secs:.1} s \
             through {}; stopped at {} ({})",
            plan.transactions,
            done.bytes,
            done.files,
            tools.decoder.display(),
            plan.stop.at,
            plan.stop.why
        );
        Ok(())
    }
}
