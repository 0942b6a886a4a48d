//! `rload`'s command line: the shared connection options ([`CLIENT_OPTIONS`], applied by
//! [`ConnectionBuilder`] exactly as for rdump) plus rload's own table, read from option
//! files (`[client]`, `[rload]`) and then the command line, through the same my_getopt
//! machinery (`args`, `optfile`, `table::long_occurrence`): prefixes, `--skip-`, `--loose-`,
//! `=ON/OFF` and abbreviations behave as for rdump.
//!
//! rload's own options carry [`LOAD_OPTION`] as their [`Opt`] and are told apart by their
//! long name: the `Opt` enum belongs to mysqldump's resolver (`resolve.rs` matches it
//! exhaustively), and rload's options mean nothing there.
//!
//! Not for: what the options do (see `crate::load`).

use std::ffi::OsString;
use std::path::PathBuf;

use super::args::{self, Item, Origin};
use super::resolve::{ConnectionBuilder, parse_number};
use super::table::{self, CLIENT_OPTIONS, Kind, Opt, OptDef, Value};
use super::{Env, UsageError, optfile};
use crate::client::options::{Password, Secret};
use crate::load::{LoadCommand, LoadOptions, SourceOptions};
use crate::plan::Progress;

/// The option-file groups rload reads.
pub const GROUPS: &[&str] = &["client", "rload"];

/// The `Opt` of every rload-specific option (dispatched on `OptDef::long`).
pub const LOAD_OPTION: Opt = Opt::Ignored;

const fn flag(long: &'static str, short: Option<char>, help: &'static str) -> OptDef {
    table::flag(long, short, LOAD_OPTION, help)
}

const fn req(
    long: &'static str,
    short: Option<char>,
    arg: &'static str,
    help: &'static str,
) -> OptDef {
    table::req(long, short, arg, LOAD_OPTION, help)
}

/// rload's own options.
pub static LOAD_OPTIONS: &[OptDef] = &[
    req(
        "threads",
        None,
        "#",
        "Connections loading data chunks in parallel (default 4).",
    ),
    flag(
        "defer-indexes",
        None,
        "Create secondary indexes after the data is loaded, in one ALTER TABLE per table \
         (default ON; --defer-indexes=OFF or --skip-defer-indexes to create them with the table).",
    ),
    req(
        "databases",
        None,
        "list",
        "Load only these databases of the dump (comma-separated, repeatable).",
    ),
    req(
        "tables",
        None,
        "list",
        "Load only these tables (db.table or table, comma-separated, repeatable); views, \
         routines and events are then not loaded.",
    ),
    req(
        "target-database",
        None,
        "name",
        "Load the dump's only (selected) database under this name.",
    ),
    flag(
        "drop-existing",
        None,
        "Drop tables, views, sequences, triggers, routines and events of the dump that \
         already exist on the target (default: refuse to load).",
    ),
    flag(
        "resume",
        None,
        "Continue an interrupted load of this dump into this server, skipping what its \
         journal says is loaded.",
    ),
    flag(
        "enable-binlog",
        None,
        "Write the load to the target's binary log (default: sql_log_bin=0).",
    ),
    flag(
        "fast-unsafe",
        None,
        "For a server nothing else uses yet: relax its durability for the load \
         (SET GLOBAL innodb_flush_log_at_trx_commit=0, sync_binlog=0, and innodb_doublewrite=OFF \
         where it is dynamic), put back when rload ends. A crash of the server during the \
         load can lose the load. Refused where a setting is read-only or the account may \
         not set it. Default OFF: the load is fully durable.",
    ),
    flag(
        "permission-check",
        None,
        "Load only a dump that no one but you and root can change: the dump directory, \
         the files and directories in it and the directories and symlinks on the way to it \
         owned by you or root, no symlink inside it, none writable by group or others \
         (sticky directories on the way excepted). Default ON; --skip-permission-check loads a dump others could \
         have changed (their SQL then runs with your privileges).",
    ),
    flag(
        "seed-replica",
        None,
        "After loading, make the target a replica of --source-host at the dump's \
         coordinates, start replication and wait until it runs.",
    ),
    req(
        "source-host",
        None,
        "name",
        "With --seed-replica: the source to replicate from.",
    ),
    req(
        "source-port",
        None,
        "#",
        "With --seed-replica: the source's port (default 3306).",
    ),
    req(
        "source-user",
        None,
        "name",
        "With --seed-replica: the replication user.",
    ),
    OptDef {
        long: "source-password",
        short: None,
        kind: Kind::OptionalValue,
        arg: "name",
        help: "With --seed-replica: the replication user's password (solicited on the tty \
               if no value is given).",
        id: LOAD_OPTION,
    },
    flag(
        "source-ssl",
        None,
        "With --seed-replica: replicate over TLS (MASTER_SSL=1).",
    ),
    req(
        "progress",
        None,
        "when",
        "Progress on stderr: auto (bars on a terminal), always (also a line every 5 s to a file or pipe) or never.",
    ),
    flag("quiet", Some('q'), "No summary line at the end."),
    flag("verbose", Some('v'), "Say what is being done on stderr."),
];

/// The tables rload parses with.
pub static LOAD_TABLES: &[&[OptDef]] = &[CLIENT_OPTIONS, LOAD_OPTIONS];

fn text(value: &Value) -> Option<&str> {
    match value {
        Value::Text(s) => Some(s),
        _ => None,
    }
}

fn invalid(def: &OptDef, value: &str, reason: &str) -> UsageError {
    UsageError::InvalidValue {
        option: def.display(),
        value: value.into(),
        reason: reason.into(),
    }
}

/// Comma-separated names, empty items dropped.
fn list(value: &Value) -> Vec<String> {
    text(value)
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Everything rload's options set, before the rules between them.
struct Builder {
    conn: ConnectionBuilder,
    positionals: Vec<String>,
    threads: usize,
    defer_indexes: bool,
    databases: Vec<String>,
    tables: Vec<String>,
    target_database: Option<String>,
    drop_existing: bool,
    resume: bool,
    enable_binlog: bool,
    fast_unsafe: bool,
    permission_check: bool,
    seed_replica: bool,
    source_host: Option<String>,
    source_port: u16,
    source_user: Option<String>,
    source_password: Password,
    source_ssl: bool,
    /// A --source-* option was given (they need --seed-replica).
    source_given: Option<&'static str>,
    progress: Progress,
    quiet: bool,
    verbose: bool,
}

enum Flow {
    Continue,
    Help,
    Version,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            conn: ConnectionBuilder::new(),
            positionals: Vec::new(),
            threads: 4,
            defer_indexes: true,
            databases: Vec::new(),
            tables: Vec::new(),
            target_database: None,
            drop_existing: false,
            resume: false,
            enable_binlog: false,
            fast_unsafe: false,
            permission_check: true,
            seed_replica: false,
            source_host: None,
            source_port: 0,
            source_user: None,
            source_password: Password::None,
            source_ssl: false,
            source_given: None,
            progress: Progress::Auto,
            quiet: false,
            verbose: false,
        }
    }

    fn apply(
        &mut self,
        def: &'static OptDef,
        value: &Value,
        origin: &Origin,
    ) -> Result<Flow, UsageError> {
        if self.conn.apply(def, value, origin)? {
            return Ok(Flow::Continue);
        }
        let on = *value == Value::On;
        match def.id {
            Opt::Help if on => return Ok(Flow::Help),
            Opt::Version if on => return Ok(Flow::Version),
            Opt::Help | Opt::Version => return Ok(Flow::Continue),
            Opt::Unsupported(reason) => {
                if *value != Value::Off {
                    return Err(UsageError::Unsupported {
                        option: def.display(),
                        reason: reason.into(),
                    });
                }
                return Ok(Flow::Continue);
            }
            _ => {}
        }
        if def.long.starts_with("source-") {
            self.source_given = Some(def.long);
        }
        match def.long {
            "threads" => {
                self.threads = match text(value) {
                    None => 4,
                    Some(s) => {
                        let n = parse_number(def, s)?;
                        if n == 0 || n > 256 {
                            return Err(invalid(def, s, "expected 1 to 256"));
                        }
                        n as usize
                    }
                }
            }
            "defer-indexes" => self.defer_indexes = on,
            "databases" => match value {
                Value::Text(_) => self.databases.extend(list(value)),
                _ => self.databases.clear(),
            },
            "tables" => match value {
                Value::Text(_) => self.tables.extend(list(value)),
                _ => self.tables.clear(),
            },
            "target-database" => {
                self.target_database = match text(value) {
                    Some("") => return Err(invalid(def, "", "a database name is needed")),
                    other => other.map(String::from),
                }
            }
            "drop-existing" => self.drop_existing = on,
            "resume" => self.resume = on,
            "enable-binlog" => self.enable_binlog = on,
            "fast-unsafe" => self.fast_unsafe = on,
            "permission-check" => self.permission_check = on,
            "seed-replica" => self.seed_replica = on,
            "source-host" => self.source_host = text(value).map(String::from),
            "source-port" => {
                self.source_port = match text(value) {
                    None => 0,
                    Some(s) => u16::try_from(parse_number(def, s)?)
                        .map_err(|_| invalid(def, s, "a port is at most 65535"))?,
                }
            }
            "source-user" => self.source_user = text(value).map(String::from),
            "source-password" => {
                self.source_password = match value {
                    Value::Absent | Value::On => Password::Prompt,
                    Value::Off => Password::None,
                    Value::Text(s) => Password::Given(Secret::new(s.as_str())),
                }
            }
            "source-ssl" => self.source_ssl = on,
            "progress" => {
                self.progress = match text(value).map(str::to_ascii_lowercase).as_deref() {
                    None | Some("auto") => Progress::Auto,
                    Some("always") => Progress::Always,
                    Some("never") => Progress::Never,
                    Some(v) => return Err(invalid(def, v, "expected auto, always or never")),
                }
            }
            "quiet" => self.quiet = on,
            "verbose" => self.verbose = on,
            // CLIENT_OPTIONS accepted for compatibility (--character-sets-dir, ...).
            _ => {}
        }
        Ok(Flow::Continue)
    }

    fn finish(self, env: &Env) -> Result<LoadOptions, UsageError> {
        let dir = match self.positionals.as_slice() {
            [dir] => PathBuf::from(dir),
            [] => {
                return Err(UsageError::Invalid(
                    "no dump directory given\nUsage: rload [OPTIONS] DIR".into(),
                ));
            }
            more => {
                return Err(UsageError::Invalid(format!(
                    "rload takes one dump directory, got {} arguments\nUsage: rload [OPTIONS] DIR",
                    more.len()
                )));
            }
        };
        let replica = if self.seed_replica {
            let Some(host) = self.source_host else {
                return Err(UsageError::Invalid(
                    "--seed-replica needs --source-host (and usually --source-user, --source-password)"
                        .into(),
                ));
            };
            if self.enable_binlog {
                return Err(UsageError::Invalid(
                    "--enable-binlog cannot be used with --seed-replica: a replica's own copy of \
                     the data must not be written to its binary log"
                        .into(),
                ));
            }
            Some(SourceOptions {
                host,
                port: if self.source_port == 0 {
                    3306
                } else {
                    self.source_port
                },
                user: self.source_user,
                password: self.source_password,
                ssl: self.source_ssl,
            })
        } else {
            if let Some(opt) = self.source_given {
                return Err(UsageError::Invalid(format!(
                    "--{opt} is only used with --seed-replica"
                )));
            }
            None
        };
        let accounts =
            self.databases.is_empty() && self.tables.is_empty() && self.target_database.is_none();
        Ok(LoadOptions {
            accounts,
            connection: self.conn.finish(env),
            dir,
            threads: self.threads,
            defer_indexes: self.defer_indexes,
            databases: self.databases,
            tables: self.tables,
            target_database: self.target_database,
            drop_existing: self.drop_existing,
            resume: self.resume,
            enable_binlog: self.enable_binlog,
            fast_unsafe: self.fast_unsafe,
            permission_check: self.permission_check,
            replica,
            progress: self.progress,
            quiet: self.quiet,
            verbose: self.verbose,
        })
    }
}

/// Parses `args` (without argv[0]) after the option files, into what rload is to do.
/// Warnings go to stderr.
pub fn parse(
    args: &[OsString],
    env: &Env,
    program_groups: &[&str],
) -> Result<LoadCommand, UsageError> {
    let (command, warnings) = parse_with_warnings(args, env, program_groups)?;
    super::print_warnings(warnings);
    Ok(command)
}

/// [`parse`], returning the warnings instead of printing them.
pub fn parse_with_warnings(
    args: &[OsString],
    env: &Env,
    program_groups: &[&str],
) -> Result<(LoadCommand, Vec<String>), UsageError> {
    let args = super::utf8_args(args)?;
    let (defaults, rest) = args::split_defaults_args(&args)?;
    if defaults.print_defaults {
        return Err(UsageError::Unsupported {
            option: "--print-defaults".into(),
            reason: "not supported by rload".into(),
        });
    }
    let mut warnings = Vec::new();
    let entries = optfile::read_entries(&defaults, env, program_groups, &mut warnings)?;
    let from_files = optfile::occurrences(LOAD_TABLES, entries, &mut warnings)?;

    let mut builder = Builder::new();
    let mut parser = args::Parser::new(LOAD_TABLES, rest);
    let from_command_line = std::iter::from_fn(|| parser.next());
    let items = from_files
        .into_iter()
        .map(|o| Ok(Item::Option(o)))
        .chain(from_command_line);
    let mut stop = None;
    for item in items {
        match item? {
            Item::Option(occ) => match builder
                .apply(occ.def, &occ.value, &occ.origin)
                .map_err(|e| occ.origin.wrap(e))?
            {
                Flow::Continue => {}
                Flow::Help => stop = Some(LoadCommand::Help),
                Flow::Version => stop = Some(LoadCommand::Version),
            },
            Item::Positional(p) => builder.positionals.push(p),
        }
        if stop.is_some() {
            break;
        }
    }
    warnings.append(&mut parser.warnings);
    let command = match stop {
        Some(c) => c,
        None => LoadCommand::Load(Box::new(builder.finish(env)?)),
    };
    Ok((command, warnings))
}

/// Where a password starts inside one argument (`-pSECRET`, `--password=SECRET`,
/// `--source-password=SECRET`, and their abbreviations), `None` for any other argument:
/// the span `argv::mask` overwrites.
pub fn secret_span(arg: &str) -> Option<usize> {
    if let Some(body) = arg.strip_prefix("--") {
        let (name, _) = body.split_once('=')?;
        let found = table::long_occurrence(
            LOAD_TABLES,
            name,
            Some(String::new()),
            &mut || None,
            &mut Vec::new(),
        );
        return match found {
            Ok(Some((def, _))) if def.id == Opt::Password || def.long == "source-password" => {
                Some(2 + name.len() + 1)
            }
            _ => None,
        };
    }
    let cluster = arg.strip_prefix('-')?;
    for (i, c) in cluster.char_indices() {
        let def = table::find_short(LOAD_TABLES, c)?;
        match def.kind {
            Kind::Bool => continue,
            _ if def.id == Opt::Password => {
                let start = 1 + i + c.len_utf8();
                return (start < arg.len()).then_some(start);
            }
            _ => return None,
        }
    }
    None
}

/// `rload --help`.
pub fn help_text() -> String {
    const COLUMN: usize = 26;
    const WIDTH: usize = 80;
    let mut out = format!(
        "rload {}: load an rdump directory dump (rdump --dir) in parallel.\n\n\
         Usage: rload [OPTIONS] DIR\n\n\
         The dump is checked (manifest, every file's size and checksum, zstd frames) before\n\
         anything changes on the target. Tables are created, their chunks loaded over\n\
         --threads connections (biggest tables first), secondary indexes added, then routines,\n\
         views, triggers and events, then the dump's accounts (rdump --dir --system=users)\n\
         when no --databases, --tables or --target-database narrows the load: accounts the\n\
         target has, the loading one among them, are left as they are. A journal in the\n\
         target's `rdump_load` schema lets --resume finish an interrupted load; it is\n\
         removed when the load completes.\n\n\
         Exit codes: 0 loaded, 1 usage or refused (existing objects, interrupted load),\n\
         2 server or replication error, 3 data not loaded as dumped, 5 dump files\n\
         missing or damaged, 128+N killed by signal N.\n\n\
         Default options are read from the following files in the given order:\n\
         /etc/my.cnf /etc/mysql/my.cnf ~/.my.cnf\n\
         The following groups are read: client client-server client-mariadb rload\n\
         The following options may be given as the first argument:\n\
         --no-defaults             Don't read default options from any option file.\n\
         --defaults-file=#         Only read default options from the given file #.\n\
         --defaults-extra-file=#   Read this file after the global files are read.\n\
         --defaults-group-suffix=# Additionally read default groups with # appended as a suffix.\n\n",
        env!("CARGO_PKG_VERSION")
    );
    super::option_list(&mut out, LOAD_TABLES, COLUMN, WIDTH);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn load(args: &[&str]) -> Result<LoadOptions, UsageError> {
        match parse_with_warnings(&os(args), &Env::default(), GROUPS)?.0 {
            LoadCommand::Load(o) => Ok(*o),
            other => panic!("expected a load, got {other:?}"),
        }
    }

    #[test]
    fn defaults_and_the_directory() {
        let o = load(&["/d"]).unwrap();
        assert_eq!(o.dir, PathBuf::from("/d"));
        assert_eq!(o.threads, 4);
        assert!(o.defer_indexes && !o.resume && !o.drop_existing && !o.enable_binlog);
        assert!(o.permission_check);
        assert!(!o.fast_unsafe, "the default load is fully durable");
        assert!(load(&["--fast-unsafe", "/d"]).unwrap().fast_unsafe);
        assert!(
            !load(&["--skip-permission-check", "/d"])
                .unwrap()
                .permission_check
        );
        assert!(o.replica.is_none());
        assert!(o.accounts, "a whole dump's accounts are loaded");
        for narrowed in [
            &["--databases=a", "/d"][..],
            &["--tables=a.t", "/d"],
            &["--databases=a", "--target-database=b", "/d"],
        ] {
            assert!(!load(narrowed).unwrap().accounts, "{narrowed:?}");
        }
        assert!(load(&[]).is_err());
        assert!(load(&["/a", "/b"]).is_err());
    }

    #[test]
    fn connection_options_are_rdumps() {
        let o = load(&[
            "-h",
            "db1",
            "-P3307",
            "-uu",
            "-psecret",
            "--ssl-mode=REQUIRED",
            "/d",
        ])
        .unwrap();
        assert_eq!(o.connection.host.as_deref(), Some("db1"));
        assert_eq!(o.connection.port, 3307);
        assert_eq!(o.connection.user.as_deref(), Some("u"));
        assert_eq!(
            o.connection.password,
            Password::Given(Secret::new("secret"))
        );
    }

    #[test]
    fn load_options_take_values_and_bool_forms() {
        let o = load(&[
            "--threads=8",
            "--defer-indexes=off",
            "--databases=a,b",
            "--databases",
            "c",
            "--tables=a.t1,t2",
            "--target-database=new",
            "--drop-existing",
            "--resume",
            "--progress=never",
            "-q",
            "/d",
        ])
        .unwrap();
        assert_eq!(o.threads, 8);
        assert!(!o.defer_indexes);
        assert_eq!(o.databases, vec!["a", "b", "c"]);
        assert_eq!(o.tables, vec!["a.t1", "t2"]);
        assert_eq!(o.target_database.as_deref(), Some("new"));
        assert!(o.drop_existing && o.resume && o.quiet);
        assert_eq!(o.progress, Progress::Never);
        assert!(!load(&["--skip-defer-indexes", "/d"]).unwrap().defer_indexes);
        assert!(load(&["--threads=0", "/d"]).is_err());
    }

    #[test]
    fn seed_replica_needs_a_source_and_source_options_need_seed_replica() {
        let o = load(&[
            "--seed-replica",
            "--source-host=p",
            "--source-port=3310",
            "--source-user=repl",
            "--source-password=pw",
            "--source-ssl",
            "/d",
        ])
        .unwrap();
        let r = o.replica.unwrap();
        assert_eq!(
            (r.host.as_str(), r.port, r.user.as_deref()),
            ("p", 3310, Some("repl"))
        );
        assert_eq!(r.password, Password::Given(Secret::new("pw")));
        assert!(r.ssl);
        assert!(!format!("{r:?}").contains("pw\""));
        assert!(load(&["--seed-replica", "/d"]).is_err());
        assert!(load(&["--source-host=p", "/d"]).is_err());
        assert!(load(&["--seed-replica", "--source-host=p", "--enable-binlog", "/d"]).is_err());
        let bare = load(&[
            "--seed-replica",
            "--source-host=p",
            "--source-password",
            "/d",
        ])
        .unwrap();
        assert_eq!(bare.replica.unwrap().password, Password::Prompt);
    }

    #[test]
    fn rload_group_of_option_files_is_read() {
        let d = tempfile::TempDir::new().unwrap();
        std::fs::write(
            d.path().join(".my.cnf"),
            "[client]\nuser=fromclient\n[rload]\nthreads=3\n[mysqldump]\nthreads=9\n",
        )
        .unwrap();
        let env = Env {
            home: Some(d.path().to_path_buf()),
            ..Env::default()
        };
        let o = match parse_with_warnings(&os(&["/d"]), &env, GROUPS).unwrap().0 {
            LoadCommand::Load(o) => o,
            _ => unreachable!(),
        };
        assert_eq!(o.threads, 3);
        assert_eq!(o.connection.user.as_deref(), Some("fromclient"));
    }

    #[test]
    fn help_and_version_stop_parsing() {
        let c = parse_with_warnings(&os(&["--help", "--frob"]), &Env::default(), GROUPS)
            .unwrap()
            .0;
        assert!(matches!(c, LoadCommand::Help));
        let h = help_text();
        for d in LOAD_TABLES.iter().flat_map(|t| t.iter()) {
            assert!(h.contains(&format!("--{}", d.long)), "missing --{}", d.long);
        }
    }

    #[test]
    fn secret_span_covers_both_passwords() {
        assert_eq!(secret_span("-pSECRET"), Some(2));
        assert_eq!(secret_span("--password=SECRET"), Some(11));
        assert_eq!(secret_span("--source-password=SECRET"), Some(18));
        assert_eq!(secret_span("--source-pass=SECRET"), Some(14));
        assert_eq!(secret_span("--source-host=h"), None);
        assert_eq!(secret_span("-q"), None);
        assert_eq!(secret_span("/dump"), None);
    }

    #[test]
    fn option_names_are_unique() {
        let all: Vec<_> = LOAD_TABLES.iter().flat_map(|t| t.iter()).collect();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.long, b.long);
                if a.short.is_some() {
                    assert_ne!(a.short, b.short, "-{:?}", a.short);
                }
            }
        }
    }
}
