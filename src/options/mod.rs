//! mysqldump-compatible options: command line, option files and environment, resolved into a
//! [`Command`](crate::plan::Command) before any connection opens.
//!
//! The parser is hand-written rather than built on clap on purpose: mysqldump (my_getopt)
//! semantics do not fit a declarative parser. Group flags are order-dependent (`--opt`,
//! `--skip-opt`, `--compact` set several options at their position and later flags override
//! them); any boolean takes `--skip-`/`--disable-`/`--enable-` prefixes and `=0/1/ON/OFF`;
//! `--loose-` turns an unknown option into a warning; long names may be abbreviated to a
//! unique prefix; `_` and `-` are the same in names; `-pSECRET` takes an attached value only;
//! and option files feed the very same option table, before the command line.
//!
//! Layout: `table` (the one option table and the name rules), `args` (argv), `optfile`
//! (`my.cnf` files), `resolve` (what options mean, and mysqldump's cross-option rules).
//!
//! It is not for: prompting for a password (a bare `-p` yields
//! [`Password::Prompt`](crate::client::options::Password::Prompt)), connecting, or printing anything
//! except the warnings [`parse`] writes to stderr.

pub mod args;
pub mod optfile;
pub mod resolve;
pub mod rload;
pub mod table;

use std::ffi::OsString;
use std::path::PathBuf;

use crate::plan::Command;

/// The process environment the options depend on; passed explicitly so tests never read the
/// real `/etc` or `$HOME`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Env {
    /// `$HOME`: `~/.my.cnf` is read from here.
    pub home: Option<PathBuf>,
    /// `$MYSQL_PWD`: the password when none is given on the command line or in option files.
    pub mysql_pwd: Option<String>,
    /// Global option files, read first, in order; missing ones are skipped.
    pub system_option_files: Vec<PathBuf>,
}

/// Never shows `MYSQL_PWD`.
impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("home", &self.home)
            .field("mysql_pwd", &self.mysql_pwd.as_ref().map(|_| "***"))
            .field("system_option_files", &self.system_option_files)
            .finish()
    }
}

impl Env {
    /// `HOME`, `MYSQL_PWD`, and MariaDB's global files `/etc/my.cnf`, `/etc/mysql/my.cnf`
    /// (then `~/.my.cnf` is read last).
    pub fn from_process() -> Env {
        Env {
            home: std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from),
            mysql_pwd: std::env::var("MYSQL_PWD").ok(),
            system_option_files: vec!["/etc/my.cnf".into(), "/etc/mysql/my.cnf".into()],
        }
    }
}

/// A command line or option file that cannot be used. Messages name the option or the
/// file and line, and never contain a password.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UsageError {
    #[error("unknown option '{0}'")]
    UnknownOption(String),
    /// An unknown option given a value (`--frob=1`): my_getopt's "unknown variable"; the
    /// value is never shown.
    #[error("unknown variable '{0}'")]
    UnknownVariable(String),
    #[error("ambiguous option '{option}' ({candidates})")]
    AmbiguousOption { option: String, candidates: String },
    #[error("option '{0}' requires a value")]
    MissingValue(String),
    #[error("invalid value '{value}' for option '{option}': {reason}")]
    InvalidValue {
        option: String,
        value: String,
        reason: String,
    },
    /// A number my_getopt cannot read (`--port=abc`, a bad suffix, out of range).
    #[error("invalid value '{value}' for option '{option}': {reason}")]
    BadNumber {
        option: String,
        value: String,
        reason: String,
    },
    #[error("option '{option}' is not supported: {reason}")]
    Unsupported { option: String, reason: String },
    #[error("option '{0}' must be given before any other option (first on the command line)")]
    DefaultsNotFirst(String),
    #[error("{}:{line}: {message}", path.display())]
    OptionFile {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}:{line}: {source}", path.display())]
    InFile {
        path: PathBuf,
        line: usize,
        source: Box<UsageError>,
    },
    #[error("cannot read option file '{}': {message}", path.display())]
    Io { path: PathBuf, message: String },
    #[error("command-line argument {0} is not valid UTF-8")]
    NotUtf8(usize),
    #[error(
        "no database given\nUsage: rdump [OPTIONS] database [tables]\nOR     rdump [OPTIONS] --databases DB1 [DB2 DB3...]\nOR     rdump [OPTIONS] --all-databases"
    )]
    NoDatabase,
    /// A rule between options, e.g. `--single-transaction` with `--lock-all-tables`.
    #[error("{0}")]
    Invalid(String),
}

impl UsageError {
    /// mariadb-dump's exit code for this error: my_getopt's codes for what it rejects (2 an
    /// unknown option, 3 an ambiguous one, 5 a missing value, 7 an unknown option given a
    /// value, 9 a number it cannot read), 1 (`EX_USAGE`) for the rest.
    pub fn exit_code(&self) -> i32 {
        match self {
            UsageError::UnknownOption(_) => 2,
            UsageError::AmbiguousOption { .. } => 3,
            UsageError::MissingValue(_) => 5,
            UsageError::UnknownVariable(_) => 7,
            UsageError::BadNumber { .. } => 9,
            UsageError::InFile { source, .. } => source.exit_code(),
            _ => 1,
        }
    }
}

/// Parses `args` (without argv[0]) after the option files, into what to do. Warnings (unknown
/// `loose-` options, abbreviated names, adjusted values) go to stderr.
pub fn parse(args: &[OsString], env: &Env, program_groups: &[&str]) -> Result<Command, UsageError> {
    let (command, warnings) = parse_with_warnings(args, env, program_groups)?;
    print_warnings(warnings);
    Ok(command)
}

/// Warnings of a parse, as mysqldump prints them.
pub(crate) fn print_warnings(warnings: Vec<String>) {
    for w in warnings {
        eprintln!("Warning: {w}");
    }
}

/// The arguments as text; a non-UTF-8 argument is an error naming its position.
pub(crate) fn utf8_args(args: &[OsString]) -> Result<Vec<String>, UsageError> {
    args.iter()
        .enumerate()
        .map(|(i, a)| {
            a.to_str()
                .map(String::from)
                .ok_or(UsageError::NotUtf8(i + 1))
        })
        .collect()
}

/// [`parse`], returning the warnings instead of printing them.
pub fn parse_with_warnings(
    args: &[OsString],
    env: &Env,
    program_groups: &[&str],
) -> Result<(Command, Vec<String>), UsageError> {
    let args = utf8_args(args)?;
    let tables = table::DUMP_TABLES;
    let (defaults, rest) = args::split_defaults_args(&args)?;

    let mut warnings = Vec::new();
    let entries = optfile::read_entries(&defaults, env, program_groups, &mut warnings)?;
    if defaults.print_defaults {
        return Ok((
            Command::PrintDefaults(print_defaults_line(&entries, rest)),
            warnings,
        ));
    }
    let from_files = optfile::occurrences(tables, entries, &mut warnings)?;

    let mut builder = resolve::DumpBuilder::new();
    let mut parser = args::Parser::new(tables, rest);
    let from_command_line = std::iter::from_fn(|| parser.next());
    let items = from_files
        .into_iter()
        .map(|o| Ok(args::Item::Option(o)))
        .chain(from_command_line);
    let mut stop = None;
    for item in items {
        match item? {
            args::Item::Option(occ) => match builder.apply(&occ)? {
                resolve::Flow::Continue => {}
                resolve::Flow::Help => stop = Some(Command::Help),
                resolve::Flow::Version => stop = Some(Command::Version),
            },
            args::Item::Positional(p) => builder.positional(p),
        }
        if stop.is_some() {
            break;
        }
    }
    warnings.append(&mut parser.warnings);
    warnings.append(&mut builder.warnings);
    let command = match stop {
        Some(command) => command,
        None => Command::Dump(Box::new(builder.finish(env, &mut warnings)?)),
    };
    Ok((command, warnings))
}

/// `--print-defaults`: the option files' options as `--name=value` arguments, then the
/// command line's, as mariadb-dump prints them, except that a password shows as `*****`
/// (mariadb-dump prints it).
fn print_defaults_line(entries: &[optfile::Entry], command_line: &[String]) -> String {
    let from_files = entries.iter().map(|e| match &e.value {
        Some(v) => format!("--{}={v}", e.name),
        None => format!("--{}", e.name),
    });
    let mut line = String::new();
    for arg in from_files.chain(command_line.iter().cloned()) {
        match secret_span(&arg) {
            Some(start) => {
                line.push_str(&arg[..start]);
                line.push_str("*****");
            }
            None => line.push_str(&arg),
        }
        line.push(' ');
    }
    line
}

/// `--version` in mariadb-dump's shape (`mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB,
/// for debian-linux-gnu (x86_64)`), so that scripts parsing it find a version after `Ver`
/// and after `Distrib`: `rdump  Ver 0.1.0 Distrib 0.1.0-rdump, for linux (x86_64)`.
pub fn version_line(program: &str) -> String {
    let v = env!("CARGO_PKG_VERSION");
    format!(
        "{program}  Ver {v} Distrib {v}-rdump, for {} ({})",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// The exit codes listed at the end of `--help`: mysqldump's.
const EXIT_CODES: &str = "
Exit codes (mysqldump's):
  0  the dump is complete.
  1  a usage error: a bad value, a rule between options, no database given.
  2  a server error: cannot connect, a statement failed, a database does not exist, no
     binary log for --master-data; also an unknown option (as my_getopt).
  3  the dump could not be kept consistent (lost connection while reading rows, no
     coordinates); also an ambiguous option.
  5  writing the output failed; also an option missing its value.
  6  a table named on the command line does not exist.
  7  an unknown option given a value (--frob=1).
  9  a number that cannot be read (--port=abc).
  128+N  stopped by signal N (SIGINT, SIGTERM, SIGHUP).
With --force the dump goes on past errors and exits with the first one's code. Only a
dump that ends with '-- Dump completed' (with --dir: that has rdump.json) is complete.
";

/// `--help` output for a mysqldump-compatible program, generated from the option table.
pub fn help_text(program: &str) -> String {
    const COLUMN: usize = 22;
    const WIDTH: usize = 80;
    let mut out = String::new();
    out.push_str(&format!(
        "{program} {}: dump MariaDB/MySQL databases as SQL, compatible with mysqldump.\n\n",
        env!("CARGO_PKG_VERSION")
    ));
    out.push_str(&format!(
        "Usage: {program} [OPTIONS] database [tables]\n\
         OR     {program} [OPTIONS] --databases DB1 [DB2 DB3...]\n\
         OR     {program} [OPTIONS] --all-databases\n\n\
         Default options are read from the following files in the given order:\n\
         /etc/my.cnf /etc/mysql/my.cnf ~/.my.cnf\n\
         The following groups are read: client client-server client-mariadb mysqldump {program}\n\
         The following options may be given as the first argument:\n\
         --print-defaults          Print the program argument list and exit.\n\
         --no-defaults             Don't read default options from any option file.\n\
         --defaults-file=#         Only read default options from the given file #.\n\
         --defaults-extra-file=#   Read this file after the global files are read.\n\
         --defaults-group-suffix=# Additionally read default groups with # appended as a suffix.\n\n"
    ));
    option_list(&mut out, table::DUMP_TABLES, COLUMN, WIDTH);
    out.push_str(EXIT_CODES);
    out
}

/// The `--help` list of options from `tables`, sorted by name: the option in the first
/// `column` characters, its help wrapped to `width`.
pub(crate) fn option_list(
    out: &mut String,
    tables: &[&[table::OptDef]],
    column: usize,
    width: usize,
) {
    let mut defs: Vec<&table::OptDef> = tables.iter().flat_map(|t| t.iter()).collect();
    defs.sort_by_key(|d| d.long);
    for d in defs {
        let mut left = match d.short {
            Some(c) => format!("  -{c}, --{}", d.long),
            None => format!("  --{}", d.long),
        };
        match d.kind {
            table::Kind::Bool => {}
            table::Kind::RequiredValue => left.push_str(&format!("={}", d.arg)),
            table::Kind::OptionalValue => left.push_str(&format!("[={}]", d.arg)),
        }
        let lines = wrap(d.help, width - column);
        if left.len() + 1 > column {
            out.push_str(&left);
            out.push('\n');
            left = String::new();
        }
        for (i, line) in lines.iter().enumerate() {
            let lead = if i == 0 { left.as_str() } else { "" };
            out.push_str(&format!("{lead:<column$}{line}\n"));
        }
    }
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let last = lines.last_mut().expect("never empty");
        if !last.is_empty() && last.len() + 1 + word.len() > width {
            lines.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines
}

/// Where a password starts inside one command-line argument (`-pSECRET`, `-vpSECRET`,
/// `--password=SECRET`, `--pass=SECRET`), as the parser reads it; `None` for any other
/// argument. `main` overwrites that span in the process's argv, as mysqldump does, so
/// `ps` does not show it.
pub fn secret_span(arg: &str) -> Option<usize> {
    let tables = table::DUMP_TABLES;
    if let Some(body) = arg.strip_prefix("--") {
        let (name, _) = body.split_once('=')?;
        let eq = 2 + name.len();
        let found = table::long_occurrence(
            tables,
            name,
            Some(String::new()),
            &mut || None,
            &mut Vec::new(),
        );
        return match found {
            Ok(Some((def, _))) if def.id == table::Opt::Password => Some(eq + 1),
            _ => None,
        };
    }
    let cluster = arg.strip_prefix('-')?;
    for (i, c) in cluster.char_indices() {
        let def = table::find_short(tables, c)?;
        match def.kind {
            table::Kind::Bool => continue,
            _ if def.id == table::Opt::Password => {
                let start = 1 + i + c.len_utf8();
                return (start < arg.len()).then_some(start);
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::secret_span;

    #[test]
    fn secret_span_finds_every_spelling_of_a_password_argument() {
        assert_eq!(secret_span("-pSECRET"), Some(2));
        assert_eq!(secret_span("-BpSECRET"), Some(3));
        assert_eq!(secret_span("--password=SECRET"), Some(11));
        assert_eq!(secret_span("--pass=SECRET"), Some(7));
        assert_eq!(secret_span("--loose-password=SECRET"), Some(17));
    }

    #[test]
    fn secret_span_leaves_other_arguments_alone() {
        assert_eq!(secret_span("-p"), None);
        assert_eq!(secret_span("--password"), None);
        assert_eq!(secret_span("-uroot"), None);
        assert_eq!(secret_span("-upass"), None);
        assert_eq!(secret_span("--port=3306"), None);
        assert_eq!(secret_span("-P3306"), None);
        assert_eq!(secret_span("mydb"), None);
    }
}

#[cfg(test)]
mod parse_tests {
    use super::*;
    use crate::client::options::{Password, Secret};
    use crate::plan::Plan;
    use std::fs;
    use std::path::Path;
    use tempfile::TempDir;

    const SECRET: &str = "s3cr3t-PW";

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn run(args: &[&str], env: &Env) -> Result<Plan, UsageError> {
        match parse_with_warnings(&os(args), env, &["client", "mysqldump", "rdump"])?.0 {
            Command::Dump(plan) => Ok(*plan),
            other => panic!("expected a dump, got {other:?}"),
        }
    }

    fn password(args: &[&str]) -> Password {
        run(args, &Env::default()).unwrap().connection.password
    }

    fn given(s: &str) -> Password {
        Password::Given(Secret::new(s))
    }

    /// An Env whose only option file is `$HOME/.my.cnf` with `text`.
    fn home_with(text: &str) -> (TempDir, Env) {
        let d = TempDir::new().unwrap();
        fs::write(d.path().join(".my.cnf"), text).unwrap();
        let env = Env {
            home: Some(d.path().to_path_buf()),
            ..Env::default()
        };
        (d, env)
    }

    fn write(dir: &Path, name: &str, text: &str) -> String {
        let p = dir.join(name);
        fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    #[test]
    fn bare_p_and_bare_password_prompt() {
        assert_eq!(password(&["-p", "db"]), Password::Prompt);
        assert_eq!(password(&["--password", "db"]), Password::Prompt);
    }

    #[test]
    fn attached_p_and_password_equals_give_the_password() {
        assert_eq!(password(&["-pSECRET", "db"]), given("SECRET"));
        assert_eq!(password(&["--password=SECRET", "db"]), given("SECRET"));
    }

    #[test]
    fn empty_password_equals_is_an_empty_password() {
        assert_eq!(password(&["--password=", "db"]), given(""));
    }

    #[test]
    fn skip_password_is_an_empty_password_as_in_my_getopt() {
        assert_eq!(password(&["-pX", "--skip-password", "db"]), given(""));
    }

    #[test]
    fn p_space_value_prompts_and_the_value_is_the_database() {
        let plan = run(&["-p", "SECRET"], &Env::default()).unwrap();
        assert_eq!(plan.connection.password, Password::Prompt);
        assert_eq!(
            plan.selection.scope,
            crate::plan::Scope::Database {
                db: "SECRET".into(),
                tables: vec![]
            }
        );
    }

    #[test]
    fn no_password_anywhere_is_none() {
        assert_eq!(password(&["db"]), Password::None);
    }

    #[test]
    fn mysql_pwd_is_used_when_nothing_else_gives_a_password() {
        let env = Env {
            mysql_pwd: Some("fromenv".into()),
            ..Env::default()
        };
        assert_eq!(
            run(&["db"], &env).unwrap().connection.password,
            given("fromenv")
        );
    }

    #[test]
    fn option_file_password_beats_mysql_pwd() {
        let (_d, mut env) = home_with("[client]\npassword=fromfile\n");
        env.mysql_pwd = Some("fromenv".into());
        assert_eq!(
            run(&["db"], &env).unwrap().connection.password,
            given("fromfile")
        );
    }

    #[test]
    fn command_line_password_beats_option_file_and_mysql_pwd() {
        let (_d, mut env) = home_with("[client]\npassword=fromfile\n");
        env.mysql_pwd = Some("fromenv".into());
        assert_eq!(
            run(&["-pcli", "db"], &env).unwrap().connection.password,
            given("cli")
        );
        assert_eq!(
            run(&["-p", "db"], &env).unwrap().connection.password,
            Password::Prompt
        );
    }

    #[test]
    fn bare_password_in_an_option_file_prompts() {
        let (_d, env) = home_with("[client]\npassword\n");
        assert_eq!(
            run(&["db"], &env).unwrap().connection.password,
            Password::Prompt
        );
    }

    #[test]
    fn debug_of_a_plan_never_shows_the_password() {
        for args in [
            vec![format!("-p{SECRET}"), "db".into()],
            vec![format!("--password={SECRET}"), "db".into()],
        ] {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let plan = run(&args, &Env::default()).unwrap();
            assert!(!format!("{plan:?}").contains(SECRET));
            assert!(!format!("{:?}", Command::Dump(Box::new(plan))).contains(SECRET));
        }
        let env = Env {
            mysql_pwd: Some(SECRET.into()),
            ..Env::default()
        };
        assert!(!format!("{:?}", run(&["db"], &env).unwrap()).contains(SECRET));
        assert!(!format!("{env:?}").contains(SECRET));
    }

    #[test]
    fn usage_errors_never_show_the_password() {
        let p = format!("-p{SECRET}");
        let pw = format!("--password={SECRET}");
        let cases: Vec<Vec<String>> = vec![
            vec![p.clone(), "--frobnicate".into(), "db".into()],
            vec![p.clone(), "-A".into(), "db".into()],
            vec![
                pw.clone(),
                "--single-transaction".into(),
                "-x".into(),
                "db".into(),
            ],
            vec![pw.clone()],
            vec![format!("--passwrd={SECRET}"), "db".into()],
            vec![format!("--p={SECRET}"), "db".into()],
            vec![
                format!("--loose-passwrd={SECRET}"),
                "--port=x".into(),
                "db".into(),
            ],
            vec!["-p".into(), SECRET.into(), "-A".into()],
            vec![
                format!("--skip-password={SECRET}"),
                "--tab=/d".into(),
                "-A".into(),
            ],
            vec![pw.clone(), "--no-defaults".into()],
            vec![],
        ];
        let mut errors = 0;
        for case in cases {
            let args: Vec<&str> = case.iter().map(String::as_str).collect();
            if let Err(e) = run(&args, &Env::default()) {
                errors += 1;
                let msg = e.to_string();
                assert!(!msg.contains(SECRET), "{msg}");
                assert!(!format!("{e:?}").contains(SECRET), "{e:?}");
            }
        }
        assert_eq!(errors, 11);
        // From an option file, too.
        let (_d, env) = home_with(&format!("[client]\npassword={SECRET}\nfrob=1\n"));
        let e = run(&["db"], &env).unwrap_err();
        assert!(!e.to_string().contains(SECRET) && !format!("{e:?}").contains(SECRET));
    }

    #[test]
    fn option_files_come_before_the_command_line_and_later_wins() {
        let d = TempDir::new().unwrap();
        let sys = write(
            d.path(),
            "sys.cnf",
            "[client]\nuser=sys\nhost=syshost\n[mysqldump]\nskip-opt\n",
        );
        fs::write(d.path().join(".my.cnf"), "[client]\nuser=home\n").unwrap();
        let env = Env {
            home: Some(d.path().to_path_buf()),
            mysql_pwd: None,
            system_option_files: vec![sys.into()],
        };
        let plan = run(&["--add-locks", "db"], &env).unwrap();
        assert_eq!(plan.connection.user.as_deref(), Some("home"));
        assert_eq!(plan.connection.host.as_deref(), Some("syshost"));
        assert!(!plan.shape.add_drop_table && plan.shape.add_locks);
        let plan = run(&["-ucli", "db"], &env).unwrap();
        assert_eq!(plan.connection.user.as_deref(), Some("cli"));
    }

    #[test]
    fn missing_system_and_home_files_are_skipped() {
        let env = Env {
            home: Some("/nonexistent/home".into()),
            mysql_pwd: None,
            system_option_files: vec!["/nonexistent/my.cnf".into()],
        };
        assert!(run(&["db"], &env).is_ok());
    }

    #[test]
    fn missing_defaults_file_is_an_error_naming_it() {
        let e = run(
            &["--defaults-file=/nonexistent/x.cnf", "db"],
            &Env::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.cnf"), "{e}");
    }

    #[test]
    fn defaults_file_is_the_only_file_read() {
        let d = TempDir::new().unwrap();
        let only = write(d.path(), "only.cnf", "[client]\nuser=only\n");
        let sys = write(d.path(), "sys.cnf", "[client]\nhost=sys\n");
        fs::write(d.path().join(".my.cnf"), "[client]\nport=9\n").unwrap();
        let env = Env {
            home: Some(d.path().to_path_buf()),
            mysql_pwd: None,
            system_option_files: vec![sys.into()],
        };
        let plan = run(&[&format!("--defaults-file={only}"), "db"], &env).unwrap();
        assert_eq!(plan.connection.user.as_deref(), Some("only"));
        assert_eq!((plan.connection.host, plan.connection.port), (None, 0));
    }

    #[test]
    fn defaults_extra_file_is_read_after_system_files_and_before_home() {
        let d = TempDir::new().unwrap();
        let sys = write(
            d.path(),
            "sys.cnf",
            "[client]\nuser=sys\nhost=sys\nport=1\n",
        );
        let extra = write(d.path(), "extra.cnf", "[client]\nuser=extra\nhost=extra\n");
        fs::write(d.path().join(".my.cnf"), "[client]\nuser=home\n").unwrap();
        let env = Env {
            home: Some(d.path().to_path_buf()),
            mysql_pwd: None,
            system_option_files: vec![sys.into()],
        };
        let plan = run(&[&format!("--defaults-extra-file={extra}"), "db"], &env).unwrap();
        let c = plan.connection;
        assert_eq!(
            (c.user.as_deref(), c.host.as_deref(), c.port),
            (Some("home"), Some("extra"), 1)
        );
    }

    #[test]
    fn no_defaults_ignores_every_file() {
        let (_d, env) = home_with("[client]\nuser=home\n");
        assert_eq!(
            run(&["--no-defaults", "db"], &env).unwrap().connection.user,
            None
        );
    }

    #[test]
    fn defaults_options_after_other_arguments_are_an_error() {
        let e = run(&["db", "--defaults-file=/x.cnf"], &Env::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("--defaults-file") && e.contains("first"), "{e}");
    }

    #[test]
    fn errors_applying_option_file_values_name_file_and_line() {
        let (d, env) = home_with("[client]\nuser=x\nport=notanumber\n");
        let e = run(&["db"], &env).unwrap_err().to_string();
        let file = d.path().join(".my.cnf");
        assert!(
            e.starts_with(&format!("{}:3: ", file.display())) && e.contains("--port"),
            "{e}"
        );
    }

    #[test]
    fn a_command_line_port_or_socket_sets_the_protocol_and_one_in_a_file_does_not() {
        use crate::client::options::Protocol;
        let protocol = |args: &[&str], file: &str| {
            let (_d, env) = home_with(file);
            run(args, &env).unwrap().connection.protocol
        };
        assert_eq!(protocol(&["db"], "[client]\nport=1\nsocket=/s\n"), None);
        assert_eq!(
            protocol(&["-P1", "db"], "[client]\nsocket=/s\n"),
            Some(Protocol::Tcp)
        );
        assert_eq!(
            protocol(&["-S/s", "db"], "[client]\nport=1\n"),
            Some(Protocol::Socket)
        );
        assert_eq!(protocol(&["-P1", "-S/s", "db"], ""), Some(Protocol::Socket));
        assert_eq!(protocol(&["-S/s", "-P1", "db"], ""), Some(Protocol::Tcp));
        assert_eq!(
            protocol(&["-P1", "--protocol=socket", "db"], ""),
            Some(Protocol::Socket)
        );
        assert_eq!(
            protocol(&["-P1", "db"], "[client]\nprotocol=socket\n"),
            Some(Protocol::Tcp)
        );
    }

    #[test]
    fn other_programs_groups_in_option_files_are_ignored() {
        let (_d, env) = home_with("[mysqld]\nfrobnicate=1\n[mysql]\nuser=mysql\n");
        assert_eq!(run(&["db"], &env).unwrap().connection.user, None);
    }

    #[test]
    fn non_utf8_argument_is_an_error() {
        use std::os::unix::ffi::OsStringExt;
        let args = vec![OsString::from("db"), OsString::from_vec(vec![0xff])];
        let e = parse_with_warnings(&args, &Env::default(), &["client"]).unwrap_err();
        assert_eq!(e, UsageError::NotUtf8(2));
    }

    #[test]
    fn warnings_are_returned_for_prefixes_and_loose_options() {
        let (_c, w) = parse_with_warnings(
            &os(&["--single-trans", "--loose-frob", "db"]),
            &Env::default(),
            &["client"],
        )
        .unwrap();
        assert_eq!(w.len(), 2, "{w:?}");
    }

    #[test]
    fn help_text_lists_every_option_from_the_table() {
        let h = help_text("rdump");
        assert!(h.contains("Usage: rdump [OPTIONS] database [tables]"));
        for d in table::DUMP_TABLES.iter().flat_map(|t| t.iter()) {
            assert!(h.contains(&format!("--{}", d.long)), "missing --{}", d.long);
        }
        assert!(h.contains("  -h, --host=name     Connect to host."), "{h}");
        assert!(h.contains("  -p, --password[=name]"));
        assert!(h.lines().all(|l| l.len() <= 100), "overlong help line");
    }
}
