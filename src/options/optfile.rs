//! MySQL/MariaDB option files (`my.cnf`): which files are read, and their syntax.
//!
//! Reads `[group]` sections named by the program (plus the `client-server` and
//! `client-mariadb` aliases of `client`, and each group with `--defaults-group-suffix`
//! appended), `name`, `name=value`, quoted values with backslash escapes, `#`/`;` comment
//! lines, trailing ` # comments`, `!include` and `!includedir`. Each option line becomes an
//! [`Occurrence`] through [`table::long_occurrence`], exactly as `--name=value` on the command
//! line would, carrying its file and line for error messages.
//!
//! It is not for: giving options a meaning (see `resolve`; `--print-defaults` prints the
//! entries read here, in `options`), or `~/.mylogin.cnf` (MySQL's obfuscated login-path
//! file), which rdump does not support.

use std::fs;
use std::path::{Path, PathBuf};

use super::args::{Defaults, Occurrence, Origin};
use super::table::{self, OptDef};
use super::{Env, UsageError};

/// One `name[=value]` line of a group we read.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub value: Option<String>,
    pub path: PathBuf,
    pub line: usize,
}

/// How deep `!include` may nest before we call it a loop.
const MAX_INCLUDE_DEPTH: usize = 10;

/// The files to read, in order, each with whether it must exist.
pub fn files_to_read(defaults: &Defaults, env: &Env) -> Vec<(PathBuf, bool)> {
    if defaults.no_defaults {
        return Vec::new();
    }
    let mut files = Vec::new();
    if let Some(f) = &defaults.file {
        files.push((f.clone(), true));
    } else {
        files.extend(env.system_option_files.iter().map(|f| (f.clone(), false)));
    }
    if let Some(f) = &defaults.extra_file {
        files.push((f.clone(), true));
    }
    if defaults.file.is_none()
        && let Some(home) = &env.home
    {
        files.push((home.join(".my.cnf"), false));
    }
    files
}

/// The groups to read: the program's, `client`'s MariaDB aliases, and the suffixed variants.
pub fn groups_to_read(program_groups: &[&str], suffix: Option<&str>) -> Vec<String> {
    let mut groups: Vec<String> = Vec::new();
    for g in program_groups {
        groups.push(g.to_string());
        if g.eq_ignore_ascii_case("client") {
            groups.push("client-server".into());
            groups.push("client-mariadb".into());
        }
    }
    if let Some(s) = suffix {
        let suffixed: Vec<String> = groups.iter().map(|g| format!("{g}{s}")).collect();
        groups.extend(suffixed);
    }
    groups
}

/// Reads every option file that applies, in order, into entries of the wanted groups.
pub fn read_entries(
    defaults: &Defaults,
    env: &Env,
    program_groups: &[&str],
    warnings: &mut Vec<String>,
) -> Result<Vec<Entry>, UsageError> {
    let groups = groups_to_read(program_groups, defaults.group_suffix.as_deref());
    let mut out = Vec::new();
    for (path, required) in files_to_read(defaults, env) {
        if !required && !path.is_file() {
            continue;
        }
        read_file(&path, &groups, 0, &mut out, warnings)?;
    }
    Ok(out)
}

/// Turns entries into occurrences, as if each were `--name=value` on the command line.
pub fn occurrences(
    tables: &[&'static [OptDef]],
    entries: Vec<Entry>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Occurrence>, UsageError> {
    let mut out = Vec::new();
    for e in entries {
        let origin = Origin::File {
            path: e.path,
            line: e.line,
        };
        let found = table::long_occurrence(tables, &e.name, e.value, &mut || None, warnings)
            .map_err(|err| origin.wrap(err))?;
        if let Some((def, value)) = found {
            out.push(Occurrence { def, value, origin });
        }
    }
    Ok(out)
}

fn file_error(path: &Path, line: usize, message: impl Into<String>) -> UsageError {
    UsageError::OptionFile {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// Parses one file (and what it includes), appending entries of `groups` to `out`.
pub fn read_file(
    path: &Path,
    groups: &[String],
    depth: usize,
    out: &mut Vec<Entry>,
    warnings: &mut Vec<String>,
) -> Result<(), UsageError> {
    let bytes = fs::read(path).map_err(|e| UsageError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| file_error(path, 0, "option file is not valid UTF-8"))?;
    let dir = path.parent().unwrap_or(Path::new("."));

    // None: no group seen yet; Some(wanted).
    let mut in_group: Option<bool> = None;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(directive) = line.strip_prefix('!') {
            let (word, arg) = directive
                .split_once(char::is_whitespace)
                .map(|(w, a)| (w, a.trim()))
                .unwrap_or((directive, ""));
            if (word != "include" && word != "includedir") || arg.is_empty() {
                return Err(file_error(
                    path,
                    line_no,
                    format!("invalid directive '!{directive}'"),
                ));
            }
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(file_error(
                    path,
                    line_no,
                    "!include nested too deeply (a loop?)",
                ));
            }
            let target = dir.join(arg);
            if word == "include" {
                if target.is_file() {
                    read_file(&target, groups, depth + 1, out, warnings)?;
                } else {
                    warnings.push(format!(
                        "{}:{line_no}: included file '{}' not found",
                        path.display(),
                        target.display()
                    ));
                }
            } else {
                for file in cnf_files_in(&target, path, line_no, warnings)? {
                    read_file(&file, groups, depth + 1, out, warnings)?;
                }
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let Some((name, _)) = rest.split_once(']') else {
                return Err(file_error(
                    path,
                    line_no,
                    "wrong group definition (missing ']')",
                ));
            };
            let name = name.trim();
            in_group = Some(groups.iter().any(|g| g.eq_ignore_ascii_case(name)));
            continue;
        }
        match in_group {
            None => {
                return Err(file_error(
                    path,
                    line_no,
                    "option without preceding [group]",
                ));
            }
            Some(false) => continue,
            Some(true) => {}
        }
        let (name, value) = split_option_line(line);
        if name.is_empty() {
            return Err(file_error(path, line_no, "option line without a name"));
        }
        out.push(Entry {
            name,
            value,
            path: path.to_path_buf(),
            line: line_no,
        });
    }
    Ok(())
}

/// The `.cnf` files of an `!includedir`, sorted by name; a missing directory is skipped.
fn cnf_files_in(
    dir: &Path,
    from: &Path,
    line: usize,
    warnings: &mut Vec<String>,
) -> Result<Vec<PathBuf>, UsageError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(_) => {
            warnings.push(format!(
                "{}:{line}: included directory '{}' not readable",
                from.display(),
                dir.display()
            ));
            return Ok(Vec::new());
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "cnf") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// `name`, `name=value`, `name = "quoted value" # comment`.
fn split_option_line(line: &str) -> (String, Option<String>) {
    let line = strip_trailing_comment(line);
    match line.split_once('=') {
        None => (line.trim().to_string(), None),
        Some((name, value)) => (name.trim().to_string(), Some(unquote(value.trim()))),
    }
}

/// Cuts a `#` comment that is outside quotes and preceded by whitespace.
fn strip_trailing_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut prev_space = false;
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '#' && prev_space => return &line[..i],
            None if c == '\'' || c == '"' => quote = Some(c),
            None => {}
        }
        prev_space = c.is_whitespace();
    }
    line
}

/// Removes one pair of surrounding quotes and processes backslash escapes, as my_default.c.
fn unquote(value: &str) -> String {
    let inner = match value.chars().next() {
        Some(q @ ('\'' | '"')) if value.len() > 1 && value.ends_with(q) => {
            &value[1..value.len() - 1]
        }
        _ => value,
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('s') => out.push(' '),
            Some(e @ ('"' | '\'' | '\\')) => out.push(e),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::table::{DUMP_TABLES, Value};
    use std::io::Write;
    use tempfile::TempDir;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::File::create(&p)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        p
    }

    fn entries_of(path: &Path) -> Result<Vec<(String, Option<String>)>, UsageError> {
        let groups = groups_to_read(&["client", "mysqldump", "rdump"], None);
        let mut out = Vec::new();
        read_file(path, &groups, 0, &mut out, &mut Vec::new())?;
        Ok(out.into_iter().map(|e| (e.name, e.value)).collect())
    }

    fn pair(n: &str, v: Option<&str>) -> (String, Option<String>) {
        (n.to_string(), v.map(String::from))
    }

    #[test]
    fn only_the_programs_groups_are_read() {
        let d = TempDir::new().unwrap();
        let f = write(
            d.path(),
            "my.cnf",
            "[mysqld]\nport=1\n[client]\nuser=a\n[mysql]\nhost=h\n[rdump]\nhost=r\n",
        );
        assert_eq!(
            entries_of(&f).unwrap(),
            vec![pair("user", Some("a")), pair("host", Some("r"))]
        );
    }

    #[test]
    fn client_server_and_client_mariadb_are_read_as_client_aliases() {
        let d = TempDir::new().unwrap();
        let f = write(
            d.path(),
            "my.cnf",
            "[client-server]\nuser=a\n[client-mariadb]\nhost=b\n[CLIENT]\nport=3\n",
        );
        assert_eq!(
            entries_of(&f).unwrap(),
            vec![
                pair("user", Some("a")),
                pair("host", Some("b")),
                pair("port", Some("3"))
            ]
        );
    }

    #[test]
    fn group_suffix_adds_suffixed_groups() {
        assert_eq!(
            groups_to_read(&["rdump"], Some("_x")),
            vec!["rdump", "rdump_x"]
        );
    }

    #[test]
    fn name_and_value_are_trimmed_and_a_bare_name_has_no_value() {
        let d = TempDir::new().unwrap();
        let f = write(
            d.path(),
            "my.cnf",
            "[client]\n  user  =  bob  \nsingle-transaction\n",
        );
        assert_eq!(
            entries_of(&f).unwrap(),
            vec![pair("user", Some("bob")), pair("single-transaction", None)]
        );
    }

    #[test]
    fn quotes_are_removed_and_escapes_processed() {
        let d = TempDir::new().unwrap();
        let f = write(
            d.path(),
            "my.cnf",
            "[client]\npassword=\"a b#c\"\nuser='it\\'s'\ninit-command=x\\ty\\\\z\\sq\\n\nhost=\"\"\n",
        );
        assert_eq!(
            entries_of(&f).unwrap(),
            vec![
                pair("password", Some("a b#c")),
                pair("user", Some("it's")),
                pair("init-command", Some("x\ty\\z q\n")),
                pair("host", Some(""))
            ]
        );
    }

    #[test]
    fn comment_lines_and_trailing_comments_are_ignored() {
        let d = TempDir::new().unwrap();
        let f = write(
            d.path(),
            "my.cnf",
            "# top\n[client]\n; semi\n   # indented\nuser=bob # who\npassword=ab#cd\nhost='h # not a comment' # comment\n",
        );
        assert_eq!(
            entries_of(&f).unwrap(),
            vec![
                pair("user", Some("bob")),
                pair("password", Some("ab#cd")),
                pair("host", Some("h # not a comment"))
            ]
        );
    }

    #[test]
    fn include_reads_a_file_relative_to_the_including_one() {
        let d = TempDir::new().unwrap();
        write(d.path(), "sub/inc.cnf", "[client]\nuser=inc\n");
        let f = write(
            d.path(),
            "my.cnf",
            "[client]\nhost=a\n!include sub/inc.cnf\nport=2\n",
        );
        assert_eq!(
            entries_of(&f).unwrap(),
            vec![
                pair("host", Some("a")),
                pair("user", Some("inc")),
                pair("port", Some("2"))
            ]
        );
    }

    #[test]
    fn includedir_reads_cnf_files_sorted_by_name() {
        let d = TempDir::new().unwrap();
        write(d.path(), "conf.d/20-b.cnf", "[client]\nuser=b\n");
        write(d.path(), "conf.d/10-a.cnf", "[client]\nuser=a\n");
        write(d.path(), "conf.d/30-c.txt", "[client]\nuser=c\n");
        let f = write(d.path(), "my.cnf", "!includedir conf.d\n");
        assert_eq!(
            entries_of(&f).unwrap(),
            vec![pair("user", Some("a")), pair("user", Some("b"))]
        );
    }

    #[test]
    fn include_loop_is_an_error_not_a_hang() {
        let d = TempDir::new().unwrap();
        let f = write(d.path(), "my.cnf", "!include my.cnf\n");
        let err = entries_of(&f).unwrap_err().to_string();
        assert!(err.contains("nested too deeply"), "{err}");
    }

    #[test]
    fn option_before_any_group_is_an_error_naming_file_and_line() {
        let d = TempDir::new().unwrap();
        let f = write(d.path(), "my.cnf", "# c\nuser=x\n");
        let err = entries_of(&f).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:2:", f.display())), "{err}");
    }

    #[test]
    fn unclosed_group_header_is_an_error_naming_file_and_line() {
        let d = TempDir::new().unwrap();
        let f = write(d.path(), "my.cnf", "[client\n");
        let err = entries_of(&f).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}:1:", f.display())) && err.contains("group"),
            "{err}"
        );
    }

    #[test]
    fn unknown_option_in_a_file_is_an_error_naming_file_and_line() {
        let d = TempDir::new().unwrap();
        let f = write(d.path(), "my.cnf", "[client]\n\nfrobnicate=1\n");
        let entries = {
            let mut out = Vec::new();
            read_file(
                &f,
                &groups_to_read(&["client"], None),
                0,
                &mut out,
                &mut Vec::new(),
            )
            .unwrap();
            out
        };
        let err = occurrences(DUMP_TABLES, entries, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!("{}:3: unknown variable '--frobnicate'", f.display())
        );
    }

    #[test]
    fn loose_skip_and_underscores_work_in_files_as_on_the_command_line() {
        let d = TempDir::new().unwrap();
        let f = write(
            d.path(),
            "my.cnf",
            "[client]\nloose-frobnicate=1\nskip_triggers\nsingle_transaction=ON\n",
        );
        let mut out = Vec::new();
        read_file(
            &f,
            &groups_to_read(&["client"], None),
            0,
            &mut out,
            &mut Vec::new(),
        )
        .unwrap();
        let mut warnings = Vec::new();
        let occ = occurrences(DUMP_TABLES, out, &mut warnings).unwrap();
        let got: Vec<_> = occ.iter().map(|o| (o.def.long, o.value.clone())).collect();
        assert_eq!(
            got,
            vec![("triggers", Value::Off), ("single-transaction", Value::On)]
        );
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn required_value_option_without_value_in_a_file_is_an_error() {
        let d = TempDir::new().unwrap();
        let f = write(d.path(), "my.cnf", "[client]\nhost\n");
        let mut out = Vec::new();
        read_file(
            &f,
            &groups_to_read(&["client"], None),
            0,
            &mut out,
            &mut Vec::new(),
        )
        .unwrap();
        let err = occurrences(DUMP_TABLES, out, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!("{}:2: option '--host' requires a value", f.display())
        );
    }

    #[test]
    fn system_files_then_extra_file_then_home_file() {
        let env = Env {
            home: Some("/home/u".into()),
            mysql_pwd: None,
            system_option_files: vec!["/etc/my.cnf".into(), "/etc/mysql/my.cnf".into()],
        };
        let d = Defaults {
            extra_file: Some("/x.cnf".into()),
            ..Defaults::default()
        };
        let files: Vec<_> = files_to_read(&d, &env)
            .into_iter()
            .map(|(p, r)| (p.display().to_string(), r))
            .collect();
        assert_eq!(
            files,
            vec![
                ("/etc/my.cnf".to_string(), false),
                ("/etc/mysql/my.cnf".to_string(), false),
                ("/x.cnf".to_string(), true),
                ("/home/u/.my.cnf".to_string(), false)
            ]
        );
    }

    #[test]
    fn defaults_file_replaces_all_other_files() {
        let env = Env {
            home: Some("/home/u".into()),
            mysql_pwd: None,
            system_option_files: vec!["/etc/my.cnf".into()],
        };
        let d = Defaults {
            file: Some("/only.cnf".into()),
            ..Defaults::default()
        };
        assert_eq!(
            files_to_read(&d, &env),
            vec![(PathBuf::from("/only.cnf"), true)]
        );
    }

    #[test]
    fn no_defaults_reads_nothing() {
        let env = Env {
            home: Some("/home/u".into()),
            mysql_pwd: None,
            system_option_files: vec!["/etc/my.cnf".into()],
        };
        let d = Defaults {
            no_defaults: true,
            ..Defaults::default()
        };
        assert!(files_to_read(&d, &env).is_empty());
    }
}
