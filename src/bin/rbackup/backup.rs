//! `rbackup backup`: the directory dump (`dump::dir::run_to`) with the repository as its
//! destination (`output::destination`): every file goes through the sink into
//! `BackupWriter`, the manifest last, then the backup is committed with the manifest's
//! databases and coordinates, and the server's identity and binlog source (which binlog
//! archive point-in-time restores may pair it with: `binlog::replay`). The connection and
//! selection options are rdump's, parsed by its own parser (option groups `[client]` and
//! `[rbackup]`).
//!
//! Not for: the dump itself (`rdump::dump`), the repository format (`rdump::backup`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Args};
use rdump::backup::store::StoreOptions;
use rdump::backup::writer::SnapshotInfo;
use rdump::backup::{self, Access};
use rdump::client::options::{Password, Secret};
use rdump::output::destination::Destination;

use rdump::trust::log::{Level, Value};
use rdump::trust::metrics::Metric;

use crate::common::{Failure, GROUPS, KeyArgs, RepoArg, interrupted, log, metric};

pub const HELP: &str = "\
Connection and selection options are rdump's, read also from the [client] and [rbackup]
groups of the option files: -h -P -S -u -p --ssl-* ..., --databases DB... or
--all-databases. With neither, every database and the accounts (users, roles, grants,
default roles, as rdump --system=users; mysql's privilege tables are left out of the
dump of `mysql`),
--threads N (default 4), --format=sql|csv (default csv), --chunk-size N. See rdump --help.
rbackup's own options may come anywhere. The backup records its server's identity
(MySQL's server_uuid; MariaDB's <hostname>-<port>-<server_id>) and, with --source NAME,
the name `rbackup binlog --source` gave the server's binlog archive: point-in-time
restores pair it only with that server's archive.

Exit codes:
  0  success: the backup's ID is on stdout
  1  usage error, or refused: no repository, wrong or missing key, locked
  2  the server failed (the error names server and object), or, before the dump started
     or while committing, the storage failed (the error names the object)
  3  the dump could not be made consistent
  5  writing into the repository failed during the dump (the error names the file), or
     the repository is damaged
A failed backup leaves no snapshot; the packs it uploaded are reused by the next one.
One backup per source at a time: a second backup of the same server and selection while
one runs refuses (exit 1), naming the holder (host, pid, since when); backups of other
sources into the same repository go on side by side.";

#[derive(Args, Debug)]
pub struct BackupArgs {
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
    /// The name of the server's binlog archive, when `rbackup binlog --source` gave it one
    /// (default: the server's identity, which is also the archiver's default name).
    /// Recorded in the backup: point-in-time restores use only this source's archive.
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
    /// rdump's options (connection, selection), see split_own.
    #[arg(last = true, hide = true)]
    dump_options: Vec<String>,
}

pub async fn command(args: BackupArgs) -> ExitCode {
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
    // The config file's connection option file, unless the command line names one.
    let config = crate::common::config();
    if defaults == 0
        && let Some(f) = config.and_then(|c| c.defaults_file.as_ref())
    {
        argv.push(format!("--defaults-file={}", f.display()).into());
    }
    argv.extend(["--routines", "--events", "--format=csv"].map(Into::into));
    if let Some(threads) = config.and_then(|c| c.backup.threads) {
        argv.push(format!("--threads={threads}").into());
    }
    argv.extend(dump_options[defaults..].iter().map(Into::into));
    let databases = config
        .map(|c| c.backup.databases.clone())
        .unwrap_or_default();
    if !selects && !databases.is_empty() {
        argv.push("--databases".into());
        argv.extend(databases.iter().map(Into::into));
    } else if !selects {
        argv.push("--all-databases".into());
        argv.push("--system=users".into());
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

/// The databases whose binlog events a replay from this backup applies (`None`: every
/// one, a whole-server backup): `--all-databases` with `--ignore-database`s all but those,
/// `--databases a b` or one database those (a table subset of one database still counts
/// its whole database).
fn binlog_databases(
    scope: &rdump::plan::Scope,
    ignored: &[String],
) -> Option<rdump::binlog::filter::DatabaseFilter> {
    use rdump::binlog::filter::DatabaseFilter;
    use rdump::plan::Scope;
    match scope {
        Scope::AllDatabases if ignored.is_empty() => None,
        Scope::AllDatabases => Some(DatabaseFilter::Except(ignored.to_vec())),
        Scope::Databases(d) => Some(DatabaseFilter::Only(d.clone())),
        Scope::Database { db, .. } => Some(DatabaseFilter::Only(vec![db.clone()])),
    }
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
    let repo = backup::open(&args.repo.repo, &access, &StoreOptions::from_env()?).await?;
    let source = source_name(&plan);
    // Which binlog archive the backup belongs to (REPOSITORY.md, "Snapshots").
    let identity = server_identity(&plan.connection).await?;
    let binlog_source = args.source.clone().unwrap_or_else(|| identity.clone());
    let options = backup::WriterOptions {
        unique_lock: Some(format!("backup-{source}")),
        ..backup::WriterOptions::from_env()?
    };
    let writer = std::sync::Arc::new(backup::BackupWriter::start(repo, options).await?);
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
    let mut tags = args.tags.clone();
    if tags.is_empty() {
        tags = crate::common::config()
            .map(|c| c.backup.tags.clone())
            .unwrap_or_default();
    }
    let info = SnapshotInfo {
        time: None,
        host: None,
        tags,
        meta: serde_json::json!({
            "databases": summary.database_names,
            // Which databases a point-in-time replay from this backup applies (null: the
            // whole server's binlog).
            "binlog_databases": binlog_databases(&plan.selection.scope, &plan.selection.ignore_databases),
            "coordinates": summary.coordinates,
            "consistency": summary.method,
            "server": rdump::client::conn::server_label(&plan.connection),
            "source": source,
            "binlog_source": binlog_source,
            "server_identity": identity,
            "tables": summary.tables,
            "rows": summary.rows,
            // What a restore drill compares besides the tables' fingerprints (those are in
            // the chunk files' catalog entries).
            "objects": summary.objects,
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
    let stats = &snapshot.stats;
    metric(Metric::BytesAdded, stats.new_stored_bytes as f64);
    if let Ok(store) =
        rdump::backup::store::Store::open(&args.repo.repo, &StoreOptions::default(), false)
        && let Some(bytes) = crate::copy::repository_bytes(&store).await
    {
        metric(Metric::RepositoryBytes, bytes as f64);
    }
    if stats.logical_bytes > 0 {
        let new = (stats.new_bytes as f64 / stats.logical_bytes as f64).min(1.0);
        metric(Metric::DedupRatio, 1.0 - new);
    }
    log(
        Level::Info,
        &format!(
            "backup {} of {} databases, {} tables, {} rows: {} logical bytes, {} new ({} stored) in {:.1} s",
            &id[..8],
            summary.databases,
            summary.tables,
            summary.rows,
            stats.logical_bytes,
            stats.new_bytes,
            stats.new_stored_bytes,
            started.elapsed().as_secs_f64()
        ),
        &[
            ("id", Value::Str(id.clone())),
            ("logical_bytes", Value::UInt(stats.logical_bytes)),
            ("new_bytes", Value::UInt(stats.new_bytes)),
            ("stored_bytes", Value::UInt(stats.new_stored_bytes)),
        ],
    );
    Ok(())
}

/// The source of a backup, for its unique lock (`locks/unique-backup-<source>`,
/// REPOSITORY.md "Locks"): the server (with this machine's name when it is reached
/// through a socket or loopback, which name no machine) and the selection. Readable
/// part, then 12 hex digits of BLAKE3 over the whole, so that two sources never share a
/// name and any name is a valid object name.
fn source_name(plan: &rdump::plan::Plan) -> String {
    use rdump::plan::Scope;
    let label = rdump::client::conn::server_label(&plan.connection);
    let local = label.starts_with("localhost")
        || label.starts_with("127.")
        || label.starts_with("::1")
        || label.starts_with("[::1]");
    let server = if local {
        format!("{}:{label}", rdump::backup::lock::hostname())
    } else {
        label
    };
    let selection = match &plan.selection.scope {
        Scope::AllDatabases => "--all-databases".to_string(),
        Scope::Databases(dbs) => {
            let mut dbs = dbs.clone();
            dbs.sort();
            format!("--databases\0{}", dbs.join("\0"))
        }
        Scope::Database { db, tables } => format!("{db}\0{}", tables.join("\0")),
    };
    let hash = blake3::hash(format!("{server}\n{selection}").as_bytes()).to_hex();
    let readable: String = server
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    format!("{readable}-{}", &hash[..12])
}

/// The server's identity as the binlog archiver reads it (`binlog::source::identity_sql`),
/// recorded in the snapshot so that a point-in-time restore pairs the backup with its own
/// server's archive only.
async fn server_identity(
    connection: &rdump::client::options::ConnectionOptions,
) -> Result<String, Failure> {
    let mut session = rdump::client::conn::Session::connect(connection)
        .await
        .map_err(Failure::Dump)?;
    let sql = rdump::binlog::source::identity_sql(session.dialect.is_mariadb());
    let raw = session
        .first_value(sql, "reading the server's identity")
        .await
        .map_err(Failure::Dump)?
        .unwrap_or_default();
    session.close().await;
    Ok(rdump::binlog::source::sanitize(&raw))
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

#[cfg(test)]
mod tests {
    use super::*;
    use rdump::binlog::filter::DatabaseFilter;
    use rdump::plan::Scope;

    #[test]
    fn a_backup_records_which_databases_its_replay_applies() {
        assert_eq!(binlog_databases(&Scope::AllDatabases, &[]), None);
        assert_eq!(
            binlog_databases(&Scope::AllDatabases, &["x".into()]),
            Some(DatabaseFilter::Except(vec!["x".into()]))
        );
        assert_eq!(
            binlog_databases(&Scope::Databases(vec!["a".into(), "b".into()]), &[]),
            Some(DatabaseFilter::Only(vec!["a".into(), "b".into()]))
        );
        let one = Scope::Database {
            db: "shop".into(),
            tables: vec!["t".into()],
        };
        assert_eq!(
            binlog_databases(&one, &["ignored without -A".into()]),
            Some(DatabaseFilter::Only(vec!["shop".into()]))
        );
        // As the snapshot's meta holds it.
        let meta = serde_json::json!({
            "binlog_databases": binlog_databases(&Scope::Databases(vec!["shop".into()]), &[]),
        });
        assert_eq!(
            meta["binlog_databases"],
            serde_json::json!({"only": ["shop"]})
        );
        assert_eq!(
            DatabaseFilter::from_meta(&meta),
            Some(DatabaseFilter::Only(vec!["shop".into()]))
        );
        let whole =
            serde_json::json!({"binlog_databases": binlog_databases(&Scope::AllDatabases, &[])});
        assert_eq!(DatabaseFilter::from_meta(&whole), None);
    }
}
