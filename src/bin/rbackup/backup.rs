//! `rbackup backup`: the directory dump (`dump::dir::run_to`) with the repository as its
//! destination (`output::destination`): every file goes through the sink into
//! `BackupWriter`, the manifest last, then the backup is committed with the manifest's
//! databases and coordinates, and the server's identity and binlog source (which binlog
//! archive point-in-time restores may pair it with: `binlog::replay`), which databases a
//! replay from it applies (named as the server names them: in lower case under
//! `lower_case_table_names=1`, as its binlog does) and whether one can start from it at all (not from a backup of
//! some tables or rows: `not_replayable`). The connection and
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
/// `--databases a b` or one database those (a table subset of one database counts its
/// whole database here, and makes the backup not replayable: `not_replayable`).
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

/// Why a replay cannot start from this backup (`None`: it can): it holds part of a
/// database its replay applies (`filter`: those databases, `None` every one), some of its
/// tables or rows, so replaying every event of the database would meet tables or rows the
/// backup does not hold (fail partway, or be silently inexact).
fn not_replayable(
    selection: &rdump::plan::Selection,
    filter: Option<&rdump::binlog::filter::DatabaseFilter>,
    writers: &[String],
) -> Option<String> {
    use rdump::plan::{History, Scope};
    let replayed = |db: &str| filter.is_none_or(|f| f.keeps(db));
    let names = |l: &[(String, String)]| {
        l.iter()
            .filter(|(db, _)| replayed(db))
            .map(|(db, t)| format!("{db}.{t}"))
            .collect::<Vec<_>>()
    };
    let mut why = Vec::new();
    if let Scope::Database { db, tables } = &selection.scope
        && !tables.is_empty()
    {
        why.push(format!(
            "it holds tables {} of {db} only (--tables)",
            tables.join(", ")
        ));
    }
    let ignored = names(&selection.ignore_tables);
    if !ignored.is_empty() {
        why.push(format!(
            "--ignore-table {} leaves tables out",
            ignored.join(", ")
        ));
    }
    let no_rows = names(&selection.ignore_table_data);
    if !no_rows.is_empty() {
        why.push(format!(
            "--ignore-table-data {} leaves rows out",
            no_rows.join(", ")
        ));
    }
    if selection.where_clause.is_some() {
        why.push("--where leaves rows out".into());
    }
    if selection.no_data {
        why.push("--no-data holds no rows".into());
    }
    if let History::AsOf(ts) = &selection.history {
        why.push(format!(
            "--as-of {ts} holds the rows as of then, not as of the backup's coordinates"
        ));
    }
    if !why.is_empty() {
        return Some(format!(
            "the backup holds part of a database: {} (a point-in-time replay would meet \
             tables or rows it does not hold)",
            why.join("; ")
        ));
    }
    (!writers.is_empty()).then(|| {
        format!(
            "{} (of a database the backup does not hold) names one it holds, and may \
             write into it: with statement-based logging (STATEMENT, MIXED) a statement \
             firing or calling it is logged alone, under its own database, so a replay \
             would leave its writes out",
            writers.join(", ")
        )
    })
}

/// The triggers and stored functions of databases a partial backup's replay leaves out
/// (`filter`) whose body names a database it replays (`filter::qualifiers_read`, its
/// strings read as its `sql_mode` reads them; in any letter case), or cannot be read:
/// with statement logging (STATEMENT, or MIXED, MariaDB's default) a statement on
/// another database firing or calling one is logged alone, by
/// its default database, and the replay would drop its writes into the backup's
/// databases silently. One created after the backup is in the binlog, a statement of
/// another database naming a kept one: refused there (`filter`).
async fn writers_into_kept(
    connection: &rdump::client::options::ConnectionOptions,
    filter: &rdump::binlog::filter::DatabaseFilter,
) -> Result<Vec<String>, Failure> {
    let mut session = rdump::client::conn::Session::connect(connection)
        .await
        .map_err(Failure::Dump)?;
    let rows = session
        .rows(
            "SELECT 'trigger', TRIGGER_SCHEMA, TRIGGER_NAME, ACTION_STATEMENT, SQL_MODE \
             FROM information_schema.TRIGGERS UNION ALL \
             SELECT 'function', ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_DEFINITION, SQL_MODE \
             FROM information_schema.ROUTINES WHERE ROUTINE_TYPE = 'FUNCTION'",
            "listing triggers and stored functions",
        )
        .await
        .map_err(Failure::Dump)?;
    session.close().await;
    let mut out = Vec::new();
    for r in &rows {
        let cell = |i| rdump::client::conn::cell_string(r, i).unwrap_or_default();
        let (kind, db, name) = (cell(0), cell(1), cell(2));
        // The server's own schemas (sys's functions, whose definitions an account may
        // not read) write into no database of a backup.
        let system =
            db == "mysql" || rdump::sql::dialect::Dialect::is_skipped_by_all_databases(&db);
        if filter.keeps(&db) || system {
            continue;
        }
        let body = rdump::client::conn::cell_string(r, 3);
        // A trigger's NEW.c and OLD.c are its row's columns, not a database's.
        let row = |q: &str| {
            kind == "trigger" && (q.eq_ignore_ascii_case("new") || q.eq_ignore_ascii_case("old"))
        };
        // Its strings read as its own sql_mode reads them (NO_BACKSLASH_ESCAPES: `'C:\'`
        // ends at its second quote).
        let escapes = !cell(4)
            .split(',')
            .any(|m| m.eq_ignore_ascii_case("NO_BACKSLASH_ESCAPES"));
        let names_kept = body.as_deref().is_none_or(|b| {
            rdump::binlog::filter::qualifiers_read(b.as_bytes(), escapes)
                .iter()
                .any(|q| !row(q) && filter.keeps_ignoring_case(q))
        });
        if names_kept {
            out.push(format!(
                "{kind} {db}.{name}{}",
                if body.is_none() {
                    " (its definition cannot be read)"
                } else {
                    ""
                }
            ));
        }
    }
    Ok(out)
}

/// What the snapshot's meta says of point-in-time replays from the backup: which
/// databases' events they apply (`binlog_databases`, null: the whole server's binlog),
/// whether one can start from it and why not (`binlog_replayable`,
/// `binlog_not_replayable`; absent in older backups: it can).
fn replay_meta(selection: &rdump::plan::Selection, writers: &[String]) -> serde_json::Value {
    let databases = binlog_databases(&selection.scope, &selection.ignore_databases);
    let refused = not_replayable(selection, databases.as_ref(), writers);
    serde_json::json!({
        "binlog_databases": databases,
        "binlog_replayable": refused.is_none(),
        "binlog_not_replayable": refused,
    })
}

/// The snapshot meta's `scope`: what the backup selects, canonical (lists sorted, names
/// quoted when not plain), so that prune applies its policy per (source, scope) group
/// (`rdump::backup::prune::group_of`) and a selection stays one group across nights
/// whatever databases exist: "all databases", "all databases except a,b", "databases
/// a,b" (one database named alone is the same), "tables db: a,b", then the options that
/// change what is held, each sorted (`--ignore-table=db.t`, `--ignore-table-data=db.t`,
/// `--where=#<hash>`: a BLAKE3 prefix, not the clause, `--no-data`, `--no-create-info`,
/// `--no-create-db`, `--routines`, `--events`, `--skip-triggers`, `--system=...`,
/// `--dump-history`, `--as-of=TS`).
fn retention_scope(selection: &rdump::plan::Selection) -> String {
    use rdump::plan::{History, Scope};
    fn name(s: &str) -> String {
        if !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '-'))
        {
            s.to_string()
        } else {
            rdump::sql::quote::ident(s)
        }
    }
    fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
        let mut v: Vec<String> = names.map(|n| name(n)).collect();
        v.sort();
        v.dedup();
        v.join(",")
    }
    let mut out = match &selection.scope {
        Scope::AllDatabases if selection.ignore_databases.is_empty() => "all databases".into(),
        Scope::AllDatabases => format!(
            "all databases except {}",
            list(selection.ignore_databases.iter())
        ),
        Scope::Databases(d) => format!("databases {}", list(d.iter())),
        Scope::Database { db, tables } if tables.is_empty() => format!("databases {}", name(db)),
        Scope::Database { db, tables } => format!("tables {}: {}", name(db), list(tables.iter())),
    };
    let tables = |l: &[(String, String)]| {
        let mut v: Vec<String> = l
            .iter()
            .map(|(db, t)| format!("{}.{}", name(db), name(t)))
            .collect();
        v.sort();
        v.dedup();
        v
    };
    for t in tables(&selection.ignore_tables) {
        out.push_str(&format!(" --ignore-table={t}"));
    }
    for t in tables(&selection.ignore_table_data) {
        out.push_str(&format!(" --ignore-table-data={t}"));
    }
    if let Some(w) = &selection.where_clause {
        out.push_str(&format!(
            " --where=#{}",
            &blake3::hash(w.as_bytes()).to_hex()[..12]
        ));
    }
    for (on, flag) in [
        (selection.no_data, "--no-data"),
        (selection.no_create_info, "--no-create-info"),
        (selection.no_create_db, "--no-create-db"),
        (selection.routines, "--routines"),
        (selection.events, "--events"),
        (!selection.triggers, "--skip-triggers"),
    ] {
        if on {
            out.push(' ');
            out.push_str(flag);
        }
    }
    let system: Vec<&str> = [
        (selection.system_users, "users"),
        (selection.system_plugins, "plugins"),
        (selection.system_udfs, "udfs"),
        (selection.system_servers, "servers"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, n)| *n)
    .collect();
    if !system.is_empty() {
        out.push_str(&format!(" --system={}", system.join(",")));
    }
    match &selection.history {
        History::Current => {}
        History::All => out.push_str(" --dump-history"),
        History::AsOf(ts) => out.push_str(&format!(" --as-of={ts}")),
    }
    out
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
    // Read after the dump: a trigger made before its coordinates is found here, one made
    // after them is in the binlog (see `writers_into_kept`).
    // The databases as the server names them (in its binlog too), for the replay.
    let selection = match lower_case_names(&plan.connection).await {
        Ok(lower) => as_the_server_names(&plan.selection, lower),
        Err(e) => {
            writer.abort().await;
            return Err(e);
        }
    };
    let writers = match binlog_databases(&selection.scope, &selection.ignore_databases) {
        Some(f) => match writers_into_kept(&plan.connection, &f).await {
            Ok(w) => w,
            Err(e) => {
                writer.abort().await;
                return Err(e);
            }
        },
        None => Vec::new(),
    };
    let mut tags = args.tags.clone();
    if tags.is_empty() {
        tags = crate::common::config()
            .map(|c| c.backup.tags.clone())
            .unwrap_or_default();
    }
    let mut meta = serde_json::json!({
        "databases": summary.database_names,
        "coordinates": summary.coordinates,
        "consistency": summary.method,
        "server": rdump::client::conn::server_label(&plan.connection),
        "source": source,
        "binlog_source": binlog_source,
        "server_identity": identity,
        // Which prune group the backup is of, with its source (`retention_scope`).
        "scope": retention_scope(&plan.selection),
        "tables": summary.tables,
        "rows": summary.rows,
        // What a restore drill compares besides the tables' fingerprints (those are in
        // the chunk files' catalog entries).
        "objects": summary.objects,
    });
    if let (Some(m), serde_json::Value::Object(replay)) =
        (meta.as_object_mut(), replay_meta(&selection, &writers))
    {
        m.extend(replay);
    }
    let info = SnapshotInfo {
        time: None,
        host: None,
        tags,
        meta,
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

/// Whether the server stores database and table names in lower case
/// (`lower_case_table_names=1`: it names database `Shop` `shop`, in its binlog too).
async fn lower_case_names(
    connection: &rdump::client::options::ConnectionOptions,
) -> Result<bool, Failure> {
    let mut session = rdump::client::conn::Session::connect(connection)
        .await
        .map_err(Failure::Dump)?;
    let v = session
        .first_value(
            "SELECT @@lower_case_table_names",
            "reading lower_case_table_names",
        )
        .await
        .map_err(Failure::Dump)?
        .unwrap_or_default();
    session.close().await;
    Ok(v.trim() == "1")
}

/// `selection`'s database names as a server that stores them in lower case (`lower`)
/// names them, in its binlog too: a partial backup's replay (`binlog::filter`) compares
/// them with the binlog's exactly, so `--databases Shop` must record `shop` there.
fn as_the_server_names(selection: &rdump::plan::Selection, lower: bool) -> rdump::plan::Selection {
    use rdump::plan::Scope;
    let mut s = selection.clone();
    if !lower {
        return s;
    }
    let low = |d: &mut String| *d = d.to_lowercase();
    match &mut s.scope {
        Scope::AllDatabases => {}
        Scope::Databases(d) => d.iter_mut().for_each(low),
        Scope::Database { db, .. } => low(db),
    }
    s.ignore_databases.iter_mut().for_each(low);
    for (db, _) in s
        .ignore_tables
        .iter_mut()
        .chain(s.ignore_table_data.iter_mut())
    {
        low(db);
    }
    s
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

    /// The snapshot meta's replay fields for `selection`, and the planner's view of them.
    fn replay_of(selection: &rdump::plan::Selection) -> (serde_json::Value, Option<String>) {
        let meta = replay_meta(selection, &[]);
        (meta.clone(), point_of(meta))
    }

    /// `BackupPoint::not_replayable` of a snapshot with `meta`.
    fn point_of(mut meta: serde_json::Value) -> Option<String> {
        meta["coordinates"] = serde_json::json!({"file": "b.000001", "position": 4});
        let snapshot = rdump::backup::Snapshot {
            version: 1,
            time: "2026-01-01T00:00:00Z".into(),
            host: "h".into(),
            tags: Vec::new(),
            program: "test".into(),
            meta,
            stats: Default::default(),
            catalog: rdump::backup::FileEntry {
                name: String::new(),
                size: 0,
                blobs: Vec::new(),
                meta: serde_json::Value::Null,
            },
            mac: String::new(),
        };
        rdump::backup::segments::backup_point("id", &snapshot)
            .unwrap()
            .not_replayable
    }

    #[test]
    fn the_retention_scope_is_the_selection_canonical_not_the_databases_of_the_night() {
        use rdump::plan::{History, Selection};
        let with = |f: &dyn Fn(&mut Selection)| {
            let mut s = Selection::default();
            f(&mut s);
            retention_scope(&s)
        };
        let dbs = |d: &[&str]| Scope::Databases(d.iter().map(|t| t.to_string()).collect());
        assert_eq!(with(&|_| {}), retention_scope(&Selection::default()));
        assert!(
            with(&|_| {}).starts_with("all databases"),
            "{}",
            with(&|_| {})
        );
        // Order and repetition do not matter; one database alone is `--databases` of it.
        assert_eq!(
            with(&|s| s.scope = dbs(&["shop", "crm", "shop"])),
            with(&|s| s.scope = dbs(&["crm", "shop"]))
        );
        assert!(with(&|s| s.scope = dbs(&["shop", "crm"])).starts_with("databases crm,shop"));
        assert_eq!(
            with(&|s| s.scope = Scope::Database {
                db: "shop".into(),
                tables: vec![]
            }),
            with(&|s| s.scope = dbs(&["shop"]))
        );
        let tables = with(&|s| {
            s.scope = Scope::Database {
                db: "shop".into(),
                tables: vec!["b".into(), "a".into()],
            }
        });
        assert!(tables.starts_with("tables shop: a,b"), "{tables}");
        // Every selection option that changes what is held makes another scope.
        let all = with(&|_| {});
        let variants = [
            with(&|s| s.ignore_databases = vec!["x".into()]),
            with(&|s| s.ignore_tables = vec![("shop".into(), "log".into())]),
            with(&|s| s.ignore_table_data = vec![("shop".into(), "log".into())]),
            with(&|s| s.where_clause = Some("id < 10".into())),
            with(&|s| s.where_clause = Some("id < 11".into())),
            with(&|s| s.no_data = true),
            with(&|s| s.system_users = !s.system_users),
            with(&|s| s.routines = !s.routines),
            with(&|s| s.history = History::AsOf("2026-01-01 00:00:00".into())),
        ];
        for (i, v) in variants.iter().enumerate() {
            assert_ne!(v, &all, "{v}");
            for w in &variants[i + 1..] {
                assert_ne!(v, w);
            }
        }
        // The where clause itself is not shown (only a hash of it).
        assert!(!variants[3].contains("id < 10"), "{}", variants[3]);
        // Names that are not plain are quoted: `a,b` is not `a` and `b`.
        assert_ne!(
            with(&|s| s.scope = dbs(&["a,b"])),
            with(&|s| s.scope = dbs(&["a", "b"]))
        );
    }

    #[test]
    fn a_backup_of_part_of_a_database_records_that_it_cannot_start_a_replay() {
        use rdump::plan::{History, Selection};
        let shop = |tables: &[&str]| Scope::Database {
            db: "shop".into(),
            tables: tables.iter().map(|t| t.to_string()).collect(),
        };
        let whole = Selection::default();
        let (meta, refused) = replay_of(&whole);
        assert_eq!(meta["binlog_replayable"], true);
        assert_eq!(meta["binlog_not_replayable"], serde_json::Value::Null);
        assert_eq!(refused, None);
        let databases = Selection {
            scope: Scope::Databases(vec!["shop".into()]),
            ..Selection::default()
        };
        assert_eq!(replay_of(&databases).1, None);
        assert_eq!(
            replay_of(&Selection {
                scope: shop(&[]),
                ..Selection::default()
            })
            .1,
            None
        );
        // An option that leaves tables or rows of a replayed database out, each.
        let cases = [
            (
                Selection {
                    scope: shop(&["t1", "t2"]),
                    ..Selection::default()
                },
                "tables t1, t2 of shop only (--tables)",
            ),
            (
                Selection {
                    ignore_tables: vec![("shop".into(), "log".into())],
                    ..Selection::default()
                },
                "--ignore-table shop.log",
            ),
            (
                Selection {
                    scope: Scope::Databases(vec!["shop".into()]),
                    ignore_table_data: vec![("shop".into(), "log".into())],
                    ..Selection::default()
                },
                "--ignore-table-data shop.log",
            ),
            (
                Selection {
                    where_clause: Some("id < 10".into()),
                    ..Selection::default()
                },
                "--where",
            ),
            (
                Selection {
                    no_data: true,
                    ..Selection::default()
                },
                "--no-data",
            ),
            (
                Selection {
                    history: History::AsOf("2026-01-01 00:00:00".into()),
                    ..Selection::default()
                },
                "--as-of 2026-01-01 00:00:00",
            ),
        ];
        for (selection, why) in cases {
            let (meta, refused) = replay_of(&selection);
            assert_eq!(meta["binlog_replayable"], false, "{why}");
            let refused = refused.unwrap();
            assert!(
                refused.starts_with("the backup holds part of a database: ")
                    && refused.contains(why)
                    && meta["binlog_not_replayable"] == refused.as_str(),
                "{refused}"
            );
        }
        // A table left out of a database the replay does not apply: replayable.
        let other = Selection {
            scope: Scope::Databases(vec!["shop".into()]),
            ignore_tables: vec![("other".into(), "t".into())],
            ignore_table_data: vec![("other".into(), "u".into())],
            ..Selection::default()
        };
        assert_eq!(replay_of(&other).1, None);
        // A backup made before this was recorded: replayable.
        assert_eq!(point_of(serde_json::json!({"databases": ["shop"]})), None);
        // Recorded not replayable without a reason: still not replayable.
        assert!(point_of(serde_json::json!({"binlog_replayable": false})).is_some());
    }

    #[test]
    fn database_names_are_recorded_as_a_lower_case_server_names_them() {
        let selection = rdump::plan::Selection {
            scope: Scope::Databases(vec!["Shop".into(), "b".into()]),
            ignore_tables: vec![("Shop".into(), "T".into())],
            ..rdump::plan::Selection::default()
        };
        assert_eq!(as_the_server_names(&selection, false), selection);
        let lower = as_the_server_names(&selection, true);
        assert_eq!(
            lower.scope,
            Scope::Databases(vec!["shop".into(), "b".into()])
        );
        assert_eq!(lower.ignore_tables, vec![("shop".into(), "T".into())]);
        assert_eq!(
            binlog_databases(&lower.scope, &[]),
            Some(DatabaseFilter::Only(vec!["shop".into(), "b".into()]))
        );
    }

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
