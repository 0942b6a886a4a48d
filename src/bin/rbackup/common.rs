//! What the subcommands share: the repository and key arguments, rbackup's own options
//! picked out of a command line that also carries rdump's or rload's, exit codes, the
//! failure type of the commands that run a dump or a load, signals; and the global
//! options of every subcommand (`Global`): the config file (`--config`, its values become
//! clap's defaults), the log lines (`log`, text or JSON) and the metrics file (`metric`,
//! written by `finish_run`).
//!
//! Not for: any one subcommand's work (its own module).

use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::{Mutex, OnceLock};

use clap::Args;
use rdump::backup::Access;
use rdump::backup::error::BackupError;
use rdump::trust::config::Config;
use rdump::trust::log::{Level, LogFormat, Value as LogValue};
use rdump::trust::metrics::{Metric, Series};

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
    ("config", true),
    ("metrics-file", true),
    ("log-format", true),
];

/// The options every subcommand takes, before or after its name (see `Global`).
const GLOBAL_OPTIONS: &[&str] = &["config", "metrics-file", "log-format"];

/// Splits the arguments after `backup`/`restore` into rbackup's own (for clap: its long
/// options, and for `restore` the ID when it comes before any other option) and the rest,
/// which rdump's or rload's parser reads. Returns the argv clap gets.
pub fn split_own(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let at = subcommand_index(&args);
    let Some(sub) = args.get(at).and_then(|a| a.to_str()).map(str::to_string) else {
        return args;
    };
    if sub == "verify" {
        // `verify --drill --target OPTIONS...`: everything after --target is rload's.
        return match args.iter().skip(at + 1).position(|a| a == "--target") {
            Some(p) => {
                let end = at + 1 + p + 1;
                let mut own: Vec<std::ffi::OsString> = args[..end].to_vec();
                own.push("--".into());
                own.extend(args[end..].iter().cloned());
                own
            }
            None => args,
        };
    }
    if sub != "backup" && sub != "restore" && sub != "binlog" {
        return args;
    }
    let own_options = if sub == "binlog" {
        crate::binlog::OWN_OPTIONS
    } else {
        OWN_OPTIONS
    };
    let mut own: Vec<std::ffi::OsString> = args[..at + 1].to_vec();
    let mut rest = Vec::new();
    let mut id_seen = false;
    let mut it = args.into_iter().skip(at + 1);
    while let Some(arg) = it.next() {
        let text = arg.to_string_lossy().to_string();
        if let Some(body) = text.strip_prefix("--") {
            let name = body.split_once('=').map_or(body, |(n, _)| n);
            let global = GLOBAL_OPTIONS.contains(&name).then_some((name, true));
            if let Some((_, takes_value)) = own_options
                .iter()
                .copied()
                .find(|(n, _)| *n == name)
                .or(global)
            {
                let attached = body.contains('=');
                own.push(arg);
                if takes_value
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

/// Where the subcommand's name is: after the global options given before it.
fn subcommand_index(args: &[std::ffi::OsString]) -> usize {
    let mut i = 1;
    while let Some(text) = args.get(i).and_then(|a| a.to_str()) {
        let Some(body) = text.strip_prefix("--") else {
            break;
        };
        let name = body.split_once('=').map_or(body, |(n, _)| n);
        if !GLOBAL_OPTIONS.contains(&name) {
            break;
        }
        i += if body.contains('=') { 1 } else { 2 };
    }
    i
}

/// The value of the global option `name` in `args` (`--name V` or `--name=V`), wherever
/// it is, before clap has parsed anything (the config file sets clap's defaults).
pub fn prescan(args: &[std::ffi::OsString], name: &str) -> Option<std::ffi::OsString> {
    let flag = format!("--{name}");
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let text = a.to_string_lossy();
        if text == "--" {
            break;
        }
        if text == flag {
            return it.next().cloned();
        }
        if let Some(v) = text.strip_prefix(&format!("{flag}=")) {
            return Some(v.into());
        }
    }
    None
}

/// The options of every subcommand, before or after its name.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// The config file: repository, key files, connection option file, retention, check
    /// limits (default /etc/rbackup.toml when it exists). A flag or variable given wins
    /// over it.
    #[arg(long, global = true, env = "RBACKUP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Update this Prometheus textfile-collector file (atomically) with the run's metrics,
    /// keeping those of other operations already in it.
    #[arg(long, global = true, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// How log lines on stderr look: text, or json (one object per line).
    #[arg(long, global = true, value_name = "text|json")]
    pub log_format: Option<LogFormat>,
}

/// The loaded config file, if any (set once in `main`).
static CONFIG: OnceLock<Config> = OnceLock::new();

/// The config file of this run, if one was loaded.
pub fn config() -> Option<&'static Config> {
    CONFIG.get()
}

/// Loads `--config` (or `$RBACKUP_CONFIG`), else /etc/rbackup.toml if it exists.
pub fn load_config(args: &[std::ffi::OsString]) -> Result<(), String> {
    let given = prescan(args, "config").or_else(|| std::env::var_os("RBACKUP_CONFIG"));
    let loaded = match given {
        Some(path) => Some(rdump::trust::config::load(std::path::Path::new(&path))),
        None => rdump::trust::config::load_default().transpose(),
    };
    match loaded {
        Some(Ok(config)) => {
            let _ = CONFIG.set(config);
            Ok(())
        }
        Some(Err(e)) => Err(e.to_string()),
        None => Ok(()),
    }
}

/// The config file's values as clap defaults (a flag or variable given wins), set on
/// every subcommand that has the argument.
pub fn with_config_defaults(mut cmd: clap::Command) -> clap::Command {
    let Some(c) = config() else {
        return cmd;
    };
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    let defaults: Vec<(&str, Option<String>)> = vec![
        ("repo", c.repository.clone()),
        ("identity_file", path(&c.identity_file)),
        ("passphrase_file", path(&c.passphrase_file)),
        ("writer_key_file", path(&c.writer_key_file)),
        ("to", c.copy_to.clone()),
        ("to_writer_key_file", path(&c.copy_to_writer_key_file)),
        ("to_identity_file", path(&c.copy_to_identity_file)),
        ("metrics_file", path(&c.metrics_file)),
        (
            "log_format",
            c.log_format.map(|f| match f {
                LogFormat::Json => "json".to_string(),
                LogFormat::Text => "text".to_string(),
            }),
        ),
    ];
    fn set(cmd: clap::Command, id: &str, value: &str) -> clap::Command {
        let has = cmd.get_arguments().any(|a| a.get_id() == id);
        let mut cmd = if has {
            // Once per argument and run: clap keeps default values as &'static str.
            let value: &'static str = Box::leak(value.to_string().into_boxed_str());
            cmd.mut_arg(id, move |a| a.default_value(value).required(false))
        } else {
            cmd
        };
        // Not `init`: what it is given it creates (a writer key file, a key file for a
        // passphrase), and nothing should be created from a file's defaults unasked.
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .filter(|n| n != "init")
            .collect();
        for name in names {
            cmd = cmd.mut_subcommand(name, |s| set(s, id, value));
        }
        cmd
    }
    for (id, value) in defaults {
        if let Some(v) = value {
            cmd = set(cmd, id, &v);
        }
    }
    cmd
}

/// This run's logging and metrics (set once in `main`, before the subcommand runs).
struct Run {
    format: LogFormat,
    operation: String,
    metrics_file: Option<PathBuf>,
    started: std::time::Instant,
    series: Mutex<Vec<Series>>,
}

static RUN: OnceLock<Run> = OnceLock::new();

/// Starts the run's log and metrics for `operation`.
pub fn start_run(global: &Global, operation: &str) {
    let _ = RUN.set(Run {
        format: global.log_format.unwrap_or_default(),
        operation: operation.to_string(),
        metrics_file: global.metrics_file.clone(),
        started: std::time::Instant::now(),
        series: Mutex::new(Vec::new()),
    });
}

/// One log line on stderr, in the run's format (text when the run was not started).
pub fn log(level: Level, message: &str, fields: &[(&str, LogValue)]) {
    let (format, operation) = RUN.get().map_or((LogFormat::Text, "rbackup"), |r| {
        (r.format, r.operation.as_str())
    });
    let line = rdump::trust::log::render(
        format,
        chrono::Utc::now(),
        level,
        operation,
        message,
        fields,
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
}

/// True when log lines are JSON (`--log-format json`).
pub fn json_logs() -> bool {
    RUN.get().is_some_and(|r| r.format == LogFormat::Json)
}

/// Records a metric of this run, written at its end (with `--metrics-file`).
pub fn metric(m: Metric, value: f64) {
    if let Some(run) = RUN.get() {
        let series = Series::new(m, &run.operation, value);
        run.series.lock().unwrap().push(series);
    }
}

/// Ends the run: its duration, its success time when it succeeded, and what the command
/// recorded go to the metrics file. A metrics file that cannot be written is reported,
/// and fails the run only when the command itself succeeded.
pub fn finish_run(success: bool) -> bool {
    let Some(run) = RUN.get() else {
        return true;
    };
    let Some(path) = &run.metrics_file else {
        return true;
    };
    let mut series = std::mem::take(&mut *run.series.lock().unwrap());
    series.push(Series::new(
        Metric::DurationSeconds,
        &run.operation,
        run.started.elapsed().as_secs_f64(),
    ));
    if success {
        let now = chrono::Utc::now();
        series.push(Series::new(
            Metric::LastSuccessTimestamp,
            &run.operation,
            now.timestamp() as f64 + f64::from(now.timestamp_subsec_millis()) / 1000.0,
        ));
    }
    match rdump::trust::metrics::update(path, &series) {
        Ok(()) => true,
        Err(e) => {
            log(Level::Error, &format!("metrics file not written: {e}"), &[]);
            false
        }
    }
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
        let (message, code) = match &self {
            Failure::Repository(e) => (e.to_string(), exit_code(e) as i32),
            Failure::Dump(e) => (e.to_string(), e.exit_code()),
            Failure::Load(e) => (e.to_string(), e.exit_code()),
            Failure::Usage(m) => (m.clone(), 1),
        };
        log(
            Level::Error,
            &message,
            &[("exit_code", LogValue::Int(code.into()))],
        );
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

/// rload's options for a target given on rbackup's command line (`restore`, `verify
/// --drill --target`), loading from `dir`; asks for the password when `-p` has none.
/// `what` names the command in errors.
pub fn parse_load_options(
    options: &[String],
    dir: &std::path::Path,
    what: &str,
) -> Result<rdump::load::LoadOptions, Failure> {
    use rdump::client::options::{Password, Secret};
    use rdump::load::LoadCommand;
    use rdump::options::rload;
    let mut argv: Vec<std::ffi::OsString> = options.iter().map(Into::into).collect();
    argv.push(dir.into());
    let parsed = rload::parse(&argv, &rdump::options::Env::from_process(), GROUPS);
    rdump::process::argv::mask(rload::secret_span);
    let mut opts = match parsed {
        Ok(LoadCommand::Load(opts)) => *opts,
        Ok(_) => {
            return Err(Failure::Usage(format!(
                "{what}: --help and --version are rbackup's, not the load's"
            )));
        }
        Err(e) => return Err(Failure::Usage(format!("{what}: {e}"))),
    };
    if opts.connection.password == Password::Prompt {
        let pw = rdump::process::prompt::password("Enter password: ")
            .map_err(|e| Failure::Usage(format!("could not read the password: {e}")))?;
        opts.connection.password = Password::Given(Secret::new(pw));
    }
    Ok(opts)
}
