//! The command line, my_getopt style: turns `argv` into option occurrences and positionals.
//!
//! Handles `--name`, `--name=value`, `--name value` (required-value options only), unique
//! prefixes and `skip-`/`disable-`/`enable-`/`loose-`/`maximum-` (through
//! [`table::long_occurrence`], shared with option files), short options `-uroot`, `-u root`,
//! grouped boolean shorts `-Bd`, `-p`/`-pSECRET` (an optional value is only ever attached), `--`
//! and positionals anywhere. The leading `--no-defaults`/`--defaults-file=`/
//! `--defaults-extra-file=`/`--defaults-group-suffix=` arguments are split off first by
//! [`split_defaults_args`].
//!
//! It is not for: giving options a meaning (see `resolve`) or reading option files.

use std::collections::VecDeque;
use std::path::PathBuf;

use super::UsageError;
use super::table::{self, Kind, OptDef, Value};

/// Where an occurrence came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    CommandLine,
    File { path: PathBuf, line: usize },
}

impl Origin {
    /// Adds the file and line to an error from an option-file occurrence.
    pub fn wrap(&self, e: UsageError) -> UsageError {
        match self {
            Origin::CommandLine => e,
            Origin::File { path, line } => UsageError::InFile {
                path: path.clone(),
                line: *line,
                source: Box::new(e),
            },
        }
    }
}

/// One option as given, in order, ready to be applied.
#[derive(Debug, Clone)]
pub struct Occurrence {
    pub def: &'static OptDef,
    pub value: Value,
    pub origin: Origin,
}

#[derive(Debug)]
pub enum Item {
    Option(Occurrence),
    Positional(String),
}

/// Which option files to read: set only by the leading arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Defaults {
    pub no_defaults: bool,
    pub file: Option<PathBuf>,
    pub extra_file: Option<PathBuf>,
    pub group_suffix: Option<String>,
    /// `--print-defaults`: print the options the files give, then the command line, and
    /// exit.
    pub print_defaults: bool,
}

const DEFAULTS_OPTIONS: [&str; 4] = [
    "no-defaults",
    "defaults-file",
    "defaults-extra-file",
    "defaults-group-suffix",
];

/// Splits off the option-file arguments, which mysqldump accepts only before all others.
pub fn split_defaults_args(args: &[String]) -> Result<(Defaults, &[String]), UsageError> {
    let mut d = Defaults::default();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        let Some(body) = arg.strip_prefix("--") else {
            break;
        };
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n.replace('_', "-"), Some(v)),
            None => (body.replace('_', "-"), None),
        };
        let needs_value = || {
            value
                .filter(|v| !v.is_empty())
                .ok_or_else(|| UsageError::MissingValue(format!("--{name}")))
        };
        match name.as_str() {
            "no-defaults" => d.no_defaults = true,
            "print-defaults" => d.print_defaults = true,
            "defaults-file" => d.file = Some(PathBuf::from(needs_value()?)),
            "defaults-extra-file" => d.extra_file = Some(PathBuf::from(needs_value()?)),
            "defaults-group-suffix" => d.group_suffix = Some(needs_value()?.to_string()),
            _ => break,
        }
        i += 1;
    }
    Ok((d, &args[i..]))
}

/// An iterator over the command line's options and positionals, in order.
pub struct Parser<'a> {
    tables: &'a [&'static [OptDef]],
    args: &'a [String],
    pos: usize,
    only_positionals: bool,
    queue: VecDeque<Item>,
    pub warnings: Vec<String>,
}

impl<'a> Parser<'a> {
    pub fn new(tables: &'a [&'static [OptDef]], args: &'a [String]) -> Self {
        Parser {
            tables,
            args,
            pos: 0,
            only_positionals: false,
            queue: VecDeque::new(),
            warnings: Vec::new(),
        }
    }

    fn take_next(&mut self) -> Option<String> {
        let v = self.args.get(self.pos).cloned();
        if v.is_some() {
            self.pos += 1;
        }
        v
    }

    fn occurrence(def: &'static OptDef, value: Value) -> Item {
        Item::Option(Occurrence {
            def,
            value,
            origin: Origin::CommandLine,
        })
    }

    fn long(&mut self, body: &str) -> Result<(), UsageError> {
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        if DEFAULTS_OPTIONS.contains(&name.replace('_', "-").as_str()) {
            return Err(UsageError::DefaultsNotFirst(format!("--{name}")));
        }
        let (args, mut pos) = (self.args, self.pos);
        let mut next = || {
            let v = args.get(pos).cloned();
            pos += usize::from(v.is_some());
            v
        };
        let found =
            table::long_occurrence(self.tables, name, inline, &mut next, &mut self.warnings)?;
        self.pos = pos;
        if let Some((def, value)) = found {
            self.queue.push_back(Self::occurrence(def, value));
        }
        Ok(())
    }

    fn shorts(&mut self, cluster: &str) -> Result<(), UsageError> {
        for (i, c) in cluster.char_indices() {
            let def = table::find_short(self.tables, c)
                .ok_or_else(|| UsageError::UnknownOption(format!("-{c}")))?;
            let rest = &cluster[i + c.len_utf8()..];
            let value = match def.kind {
                Kind::Bool => {
                    self.queue.push_back(Self::occurrence(def, Value::On));
                    continue;
                }
                Kind::RequiredValue if rest.is_empty() => match self.take_next() {
                    Some(v) => Value::Text(v),
                    None => return Err(UsageError::MissingValue(format!("-{c}"))),
                },
                // `-p SECRET` is a bare -p (prompt) and a positional, as in mysqldump.
                Kind::OptionalValue if rest.is_empty() => Value::Absent,
                _ => Value::Text(rest.to_string()),
            };
            self.queue.push_back(Self::occurrence(def, value));
            return Ok(());
        }
        Ok(())
    }
}

impl Iterator for Parser<'_> {
    type Item = Result<Item, UsageError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(Ok(item));
            }
            let arg = self.take_next()?;
            if self.only_positionals || arg == "-" || !arg.starts_with('-') {
                return Some(Ok(Item::Positional(arg)));
            }
            let result = if arg == "--" {
                self.only_positionals = true;
                Ok(())
            } else if let Some(body) = arg.strip_prefix("--") {
                self.long(body)
            } else {
                self.shorts(&arg[1..])
            };
            if let Err(e) = result {
                return Some(Err(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::table::DUMP_TABLES;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    /// (option long name or "POS", value) pairs.
    fn items(a: &[&str]) -> Result<Vec<(String, Value)>, UsageError> {
        let args = strings(a);
        Parser::new(DUMP_TABLES, &args)
            .map(|r| {
                r.map(|item| match item {
                    Item::Option(o) => (o.def.long.to_string(), o.value),
                    Item::Positional(p) => ("POS".to_string(), Value::Text(p)),
                })
            })
            .collect()
    }

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn long_value_may_be_attached_with_equals_or_be_the_next_argument() {
        assert_eq!(
            items(&["--host=a", "--user", "b"]).unwrap(),
            vec![("host".into(), text("a")), ("user".into(), text("b"))]
        );
    }

    #[test]
    fn optional_value_never_takes_the_next_argument() {
        assert_eq!(
            items(&["--master-data", "db"]).unwrap(),
            vec![
                ("master-data".into(), Value::Absent),
                ("POS".into(), text("db"))
            ]
        );
    }

    #[test]
    fn short_value_may_be_attached_or_the_next_argument() {
        assert_eq!(
            items(&["-uroot", "-h", "db1", "-P3307"]).unwrap(),
            vec![
                ("user".into(), text("root")),
                ("host".into(), text("db1")),
                ("port".into(), text("3307"))
            ]
        );
    }

    #[test]
    fn bare_short_p_prompts_and_leaves_the_next_argument_positional() {
        assert_eq!(
            items(&["-p", "SECRET"]).unwrap(),
            vec![
                ("password".into(), Value::Absent),
                ("POS".into(), text("SECRET"))
            ]
        );
    }

    #[test]
    fn attached_short_p_is_the_password() {
        assert_eq!(
            items(&["-pSECRET"]).unwrap(),
            vec![("password".into(), text("SECRET"))]
        );
    }

    #[test]
    fn boolean_shorts_can_be_grouped_and_end_with_a_value_short() {
        assert_eq!(
            items(&["-Bdufred"]).unwrap(),
            vec![
                ("databases".into(), Value::On),
                ("no-data".into(), Value::On),
                ("user".into(), text("fred"))
            ]
        );
    }

    #[test]
    fn double_dash_ends_options() {
        assert_eq!(
            items(&["--", "--db", "-x"]).unwrap(),
            vec![("POS".into(), text("--db")), ("POS".into(), text("-x"))]
        );
    }

    #[test]
    fn positionals_and_options_may_be_interleaved() {
        assert_eq!(
            items(&["db", "-d", "t1"]).unwrap(),
            vec![
                ("POS".into(), text("db")),
                ("no-data".into(), Value::On),
                ("POS".into(), text("t1"))
            ]
        );
    }

    #[test]
    fn unknown_short_option_is_an_error() {
        assert_eq!(
            items(&["-j"]).unwrap_err().to_string(),
            "unknown option '-j'"
        );
    }

    #[test]
    fn short_value_option_at_the_end_without_value_is_an_error() {
        assert_eq!(
            items(&["-u"]).unwrap_err().to_string(),
            "option '-u' requires a value"
        );
    }

    #[test]
    fn loose_unknown_option_is_skipped_with_a_warning() {
        let args = strings(&["--loose-frobnicate=3", "db"]);
        let mut p = Parser::new(DUMP_TABLES, &args);
        let got: Vec<_> = p.by_ref().collect::<Result<_, _>>().unwrap();
        assert_eq!(got.len(), 1);
        assert!(
            p.warnings[0].contains("--loose-frobnicate"),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn leading_defaults_arguments_are_split_off() {
        let args = strings(&["--no-defaults", "--defaults-extra-file=/x.cnf", "-A"]);
        let (d, rest) = split_defaults_args(&args).unwrap();
        assert!(d.no_defaults);
        assert_eq!(d.extra_file, Some(PathBuf::from("/x.cnf")));
        assert_eq!(rest, &strings(&["-A"])[..]);
    }

    #[test]
    fn defaults_arguments_after_other_options_are_an_error() {
        let err = items(&["-A", "--no-defaults"]).unwrap_err().to_string();
        assert!(
            err.contains("'--no-defaults'") && err.contains("first"),
            "{err}"
        );
    }

    #[test]
    fn defaults_file_needs_a_value() {
        let args = strings(&["--defaults-file"]);
        assert!(split_defaults_args(&args).is_err());
    }
}
