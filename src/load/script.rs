//! Reading the dump's SQL files as the `mariadb` client would (with `--comments`): a
//! streaming splitter into statements, and the rewrite of database qualifiers for
//! `--target-database`.
//!
//! # Splitting
//!
//! [`Splitter`] reads a file line by line (any line length: one extended INSERT is a line)
//! and yields the statements between delimiters, as bytes (data need not be UTF-8). Like
//! the client, it knows `'…'`, `"…"` and `` `…` `` quoting (with backslash escapes in the
//! first two unless `NO_BACKSLASH_ESCAPES` is in force), `#` and `-- ` line comments,
//! `/* … */` comments, and `/*!NNNNN … */` / `/*M!NNNNN … */` version comments, which
//! are code (delimiters are not looked for inside them). A `DELIMITER x` line at the start
//! of a statement changes the delimiter (`;;` around routines, triggers and events).
//! Comments before a statement are dropped; comments inside it are kept, so routine and
//! trigger bodies keep theirs (the plain client would strip them). A file that ends inside a
//! quoted string or a comment is an error (a truncated file).
//!
//! Why splitting rdump's data files this way is exact: the SQL encoder
//! (`encode::sql`, `quote::escape_into`) escapes `\n`, `\r`, `\0`, `\\`, both quotes and
//! Ctrl-Z inside every string, writes binary strings the same way or as hex, and ends each
//! statement with `;\n`; so a `;` at a line end outside quotes is always a statement end,
//! and no quote or comment opener can appear unescaped inside a value.
//!
//! Whether backslashes escape follows the session's sql_mode: the splitter tracks
//! `SET sql_mode = '…'` statements (and rdump's `@saved_sql_mode` save and restore) by
//! their text; a caller that runs the statements can also set it from the server
//! ([`Splitter::set_backslash_escapes`]) after any statement that mentions sql_mode.
//!
//! Not for: running statements (see `data`, `schema`, `post`).

use std::collections::VecDeque;
use std::io::{self, BufRead};
use std::path::Path;

use crate::sql::quote::ident;

pub fn is_zstd(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "zst")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Normal,
    Single,
    Double,
    Backtick,
    LineComment,
    BlockComment,
}

/// Yields the statements of an SQL file (see the module doc).
pub struct Splitter<R> {
    reader: R,
    delimiter: Vec<u8>,
    backslash_escapes: bool,
    /// `@saved_sql_mode`'s backslash setting, as rdump's files save and restore it.
    saved_backslash_escapes: bool,
    eof: bool,
    line: Vec<u8>,
    current: Vec<u8>,
    /// Where the statement's code starts in `current` (after leading comments).
    code_start: Option<usize>,
    state: State,
    version_comment: bool,
    pending: VecDeque<Vec<u8>>,
}

impl<R: BufRead> Splitter<R> {
    pub fn new(reader: R) -> Splitter<R> {
        Splitter {
            reader,
            delimiter: b";".to_vec(),
            backslash_escapes: true,
            saved_backslash_escapes: true,
            eof: false,
            line: Vec::new(),
            current: Vec::new(),
            code_start: None,
            state: State::Normal,
            version_comment: false,
            pending: VecDeque::new(),
        }
    }

    /// The reader, once the statements are read.
    pub fn into_inner(self) -> R {
        self.reader
    }

    /// Whether backslashes escape in strings (false under `NO_BACKSLASH_ESCAPES`).
    pub fn set_backslash_escapes(&mut self, on: bool) {
        self.backslash_escapes = on;
    }

    pub fn backslash_escapes(&self) -> bool {
        self.backslash_escapes
    }

    /// The next statement, without its delimiter and leading comments; `None` at the end.
    pub fn next_statement(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(s) = self.pending.pop_front() {
                self.track_sql_mode(&s);
                return Ok(Some(s));
            }
            if self.eof {
                return self.finish();
            }
            self.line.clear();
            let n = self.reader.read_until(b'\n', &mut self.line)?;
            if n == 0 {
                self.eof = true;
                continue;
            }
            let line = std::mem::take(&mut self.line);
            self.process_line(&line);
            self.line = line;
        }
    }

    fn finish(&mut self) -> io::Result<Option<Vec<u8>>> {
        match self.state {
            State::Normal | State::LineComment if !self.version_comment => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file ends inside a quoted string or a comment (truncated?)",
                ));
            }
        }
        self.state = State::Normal;
        self.complete();
        match self.pending.pop_front() {
            Some(s) => {
                self.track_sql_mode(&s);
                Ok(Some(s))
            }
            None => Ok(None),
        }
    }

    fn mark_code(&mut self) {
        if self.code_start.is_none() {
            self.code_start = Some(self.current.len());
        }
    }

    fn complete(&mut self) {
        if let Some(start) = self.code_start {
            let mut end = self.current.len();
            while end > start && self.current[end - 1].is_ascii_whitespace() {
                end -= 1;
            }
            self.pending.push_back(self.current[start..end].to_vec());
        }
        self.current.clear();
        self.code_start = None;
    }

    fn process_line(&mut self, line: &[u8]) {
        if self.state == State::Normal
            && !self.version_comment
            && self.code_start.is_none()
            && let Some(d) = delimiter_command(line)
        {
            self.delimiter = d;
            self.current.clear();
            return;
        }
        let mut i = 0;
        while i < line.len() {
            match self.state {
                State::Normal => {
                    // Bytes that mean nothing here (numbers, commas, parentheses, words)
                    // are copied in one go; only the others go through the match below.
                    let first = self.delimiter.first().copied();
                    let rest = &line[i..];
                    let run = rest
                        .iter()
                        .position(|&c| may_be_special(c) || Some(c) == first)
                        .unwrap_or(rest.len());
                    if run > 0 {
                        let plain = &rest[..run];
                        if self.code_start.is_none()
                            && let Some(f) = plain.iter().position(|c| !c.is_ascii_whitespace())
                        {
                            self.code_start = Some(self.current.len() + f);
                        }
                        self.current.extend_from_slice(plain);
                        i += run;
                        continue;
                    }
                    let b = line[i];
                    if !self.version_comment && line[i..].starts_with(&self.delimiter) {
                        self.complete();
                        i += self.delimiter.len();
                        continue;
                    }
                    let next = line.get(i + 1).copied();
                    match b {
                        b'\'' | b'"' | b'`' => {
                            self.mark_code();
                            self.state = match b {
                                b'\'' => State::Single,
                                b'"' => State::Double,
                                _ => State::Backtick,
                            };
                            self.current.push(b);
                            i += 1;
                        }
                        b'#' => {
                            self.state = State::LineComment;
                            self.current.push(b);
                            i += 1;
                        }
                        b'-' if next == Some(b'-')
                            && line.get(i + 2).is_none_or(|&c| c <= b' ') =>
                        {
                            self.state = State::LineComment;
                            self.current.extend_from_slice(b"--");
                            i += 2;
                        }
                        b'/' if next == Some(b'*') => {
                            let version = line.get(i + 2) == Some(&b'!')
                                || (line.get(i + 2) == Some(&b'M')
                                    && line.get(i + 3) == Some(&b'!'));
                            if version {
                                self.mark_code();
                                self.version_comment = true;
                            } else {
                                self.state = State::BlockComment;
                            }
                            self.current.extend_from_slice(b"/*");
                            i += 2;
                        }
                        b'*' if self.version_comment && next == Some(b'/') => {
                            self.version_comment = false;
                            self.current.extend_from_slice(b"*/");
                            i += 2;
                        }
                        _ => {
                            if !b.is_ascii_whitespace() {
                                self.mark_code();
                            }
                            self.current.push(b);
                            i += 1;
                        }
                    }
                }
                State::Single | State::Double => {
                    let quote = if self.state == State::Single {
                        b'\''
                    } else {
                        b'"'
                    };
                    let bs = self.backslash_escapes;
                    let rest = &line[i..];
                    match rest.iter().position(|&c| c == quote || (bs && c == b'\\')) {
                        None => {
                            self.current.extend_from_slice(rest);
                            i = line.len();
                        }
                        Some(k) => {
                            self.current.extend_from_slice(&rest[..=k]);
                            if rest[k] == b'\\' {
                                if let Some(&escaped) = rest.get(k + 1) {
                                    self.current.push(escaped);
                                    i += k + 2;
                                } else {
                                    i += k + 1;
                                }
                            } else {
                                self.state = State::Normal;
                                i += k + 1;
                            }
                        }
                    }
                }
                State::Backtick => i += self.copy_through(&line[i..], b"`"),
                State::LineComment => i += self.copy_through(&line[i..], b"\n"),
                State::BlockComment => i += self.copy_through(&line[i..], b"*/"),
            }
        }
    }

    /// Copies `rest` up to and including `end`, which closes the current quoted name or
    /// comment (the state goes back to Normal), or all of `rest` when `end` is not in it.
    /// Returns the bytes consumed.
    fn copy_through(&mut self, rest: &[u8], end: &[u8]) -> usize {
        match memchr::memmem::find(rest, end) {
            None => {
                self.current.extend_from_slice(rest);
                rest.len()
            }
            Some(k) => {
                let n = k + end.len();
                self.current.extend_from_slice(&rest[..n]);
                self.state = State::Normal;
                n
            }
        }
    }

    /// Follows `SET sql_mode = '…'` and rdump's `@saved_sql_mode` by their text.
    fn track_sql_mode(&mut self, stmt: &[u8]) {
        match sql_mode_assignment(stmt) {
            Some(SqlModeSet::Literal(modes)) => {
                self.backslash_escapes =
                    !modes.to_ascii_uppercase().contains("NO_BACKSLASH_ESCAPES");
            }
            Some(SqlModeSet::Save) => self.saved_backslash_escapes = self.backslash_escapes,
            Some(SqlModeSet::Restore) => self.backslash_escapes = self.saved_backslash_escapes,
            None => {}
        }
    }
}

/// `DELIMITER x` at the start of a line (case-insensitive): the new delimiter.
/// A byte that may start a quote, a comment or the end of a version comment outside quotes.
fn may_be_special(c: u8) -> bool {
    matches!(c, b'\'' | b'"' | b'`' | b'#' | b'-' | b'/' | b'*')
}

fn delimiter_command(line: &[u8]) -> Option<Vec<u8>> {
    let t = trim_start(line);
    if t.len() < 10 || !t[..9].eq_ignore_ascii_case(b"delimiter") || !t[9].is_ascii_whitespace() {
        return None;
    }
    let d: Vec<u8> = trim_start(&t[10..])
        .iter()
        .copied()
        .take_while(|c| !c.is_ascii_whitespace())
        .collect();
    (!d.is_empty()).then_some(d)
}

fn trim_start(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &s[n..]
}

/// The statement's code with a leading `/*!NNNNN ` or `/*M!NNNNN ` opener removed.
pub fn without_version_comment(stmt: &[u8]) -> &[u8] {
    let s = trim_start(stmt);
    let rest = match s.strip_prefix(b"/*!").or_else(|| s.strip_prefix(b"/*M!")) {
        Some(r) => r,
        None => return s,
    };
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    trim_start(&rest[digits..])
}

/// Whether `stmt` starts with the words `prefix` (case-insensitive, any whitespace between
/// words), after a version comment opener.
pub fn starts_with_words(stmt: &[u8], prefix: &str) -> bool {
    let mut s = without_version_comment(stmt);
    for word in prefix.split_whitespace() {
        s = trim_start(s);
        if s.len() < word.len() || !s[..word.len()].eq_ignore_ascii_case(word.as_bytes()) {
            return false;
        }
        s = &s[word.len()..];
        if s.first()
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            return false;
        }
    }
    true
}

enum SqlModeSet {
    Literal(String),
    Save,
    Restore,
}

fn sql_mode_assignment(stmt: &[u8]) -> Option<SqlModeSet> {
    let s = without_version_comment(stmt);
    let text = std::str::from_utf8(s.get(..s.len().min(400))?).ok()?;
    let lower = text.to_ascii_lowercase();
    let rest = lower.strip_prefix("set")?.trim_start();
    if let Some(r) = rest.strip_prefix("@saved_sql_mode") {
        return r
            .trim_start()
            .strip_prefix('=')?
            .trim_start()
            .starts_with("@@sql_mode")
            .then_some(SqlModeSet::Save);
    }
    let rest = rest
        .strip_prefix("session ")
        .or_else(|| rest.strip_prefix("@@session."))
        .or_else(|| rest.strip_prefix("@@"))
        .unwrap_or(rest)
        .trim_start();
    let rest = rest.strip_prefix("sql_mode")?.trim_start();
    let value = rest.strip_prefix('=')?.trim_start();
    if value.starts_with("@saved_sql_mode") {
        return Some(SqlModeSet::Restore);
    }
    let value = value.strip_prefix('\'')?;
    let end = value.find('\'')?;
    // Only one assignment: `SET @OLD=@@SQL_MODE, SQL_MODE='…'` is not this shape.
    Some(SqlModeSet::Literal(value[..end].to_string()))
}

/// Rewrites references to database `from` as `to` in one statement: backtick- or
/// double-quoted or bare identifiers equal to `from` that qualify a name (followed by `.`,
/// and not themselves after a `.`), or, with `everywhere`, every quoted identifier equal to
/// `from` (for `database.sql`: `CREATE DATABASE` and `USE`). String literals and comments
/// are left alone; version comments are code.
pub fn rename_database(
    stmt: &[u8],
    from: &str,
    to: &str,
    everywhere: bool,
    backslash_escapes: bool,
) -> Vec<u8> {
    let from_b = from.as_bytes();
    let mut out = Vec::with_capacity(stmt.len() + 16);
    let mut i = 0;
    // The last byte of code before the current token (for "after a `.`").
    let mut prev_code: u8 = b' ';
    let qualifies = |end: usize| -> bool {
        stmt[end..]
            .iter()
            .find(|c| !c.is_ascii_whitespace())
            .is_some_and(|&c| c == b'.')
    };
    while i < stmt.len() {
        let b = stmt[i];
        let next = stmt.get(i + 1).copied();
        match b {
            b'`' | b'"' => {
                // A quoted identifier (or, for `"`, maybe a string).
                let mut j = i + 1;
                let mut name = Vec::new();
                loop {
                    match stmt.get(j) {
                        None => break,
                        Some(&c) if c == b && stmt.get(j + 1) == Some(&b) => {
                            name.push(c);
                            j += 2;
                        }
                        Some(&c) if c == b => {
                            j += 1;
                            break;
                        }
                        Some(&b'\\') if b == b'"' && backslash_escapes => {
                            name.push(b'\\');
                            if let Some(&e) = stmt.get(j + 1) {
                                name.push(e);
                            }
                            j += 2;
                        }
                        Some(&c) => {
                            name.push(c);
                            j += 1;
                        }
                    }
                }
                let matches = name == from_b
                    && prev_code != b'.'
                    && (qualifies(j) || (everywhere && b == b'`'));
                if matches && b == b'`' {
                    out.extend_from_slice(ident(to).as_bytes());
                } else if matches {
                    out.push(b'"');
                    out.extend_from_slice(to.replace('"', "\"\"").as_bytes());
                    out.push(b'"');
                } else {
                    out.extend_from_slice(&stmt[i..j.min(stmt.len())]);
                }
                prev_code = b;
                i = j;
            }
            b'\'' => {
                let mut j = i + 1;
                while j < stmt.len() {
                    let c = stmt[j];
                    if c == b'\\' && backslash_escapes {
                        j += 2;
                        continue;
                    }
                    j += 1;
                    if c == b'\'' {
                        break;
                    }
                }
                let j = j.min(stmt.len());
                out.extend_from_slice(&stmt[i..j]);
                prev_code = b'\'';
                i = j;
            }
            b'#' => {
                let j = stmt[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(stmt.len(), |k| i + k + 1);
                out.extend_from_slice(&stmt[i..j]);
                i = j;
            }
            b'-' if next == Some(b'-') && stmt.get(i + 2).is_none_or(|&c| c <= b' ') => {
                let j = stmt[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(stmt.len(), |k| i + k + 1);
                out.extend_from_slice(&stmt[i..j]);
                i = j;
            }
            b'/' if next == Some(b'*')
                && stmt.get(i + 2) != Some(&b'!')
                && stmt.get(i + 2..i + 4) != Some(b"M!") =>
            {
                let j = stmt[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(stmt.len(), |k| i + 2 + k + 2);
                out.extend_from_slice(&stmt[i..j]);
                i = j;
            }
            _ if is_word_byte(b) => {
                let j = stmt[i..]
                    .iter()
                    .position(|&c| !is_word_byte(c))
                    .map_or(stmt.len(), |k| i + k);
                let word = &stmt[i..j];
                let matches = word == from_b
                    && !word.iter().all(u8::is_ascii_digit)
                    && prev_code != b'.'
                    && prev_code != b'@'
                    && qualifies(j);
                if matches {
                    out.extend_from_slice(ident(to).as_bytes());
                } else {
                    out.extend_from_slice(word);
                }
                prev_code = b'a';
                i = j;
            }
            _ => {
                out.push(b);
                if !b.is_ascii_whitespace() {
                    prev_code = b;
                }
                i += 1;
            }
        }
    }
    out
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<String> {
        let mut s = Splitter::new(text.as_bytes());
        let mut out = Vec::new();
        while let Some(stmt) = s.next_statement().unwrap() {
            out.push(String::from_utf8(stmt).unwrap());
        }
        out
    }

    #[test]
    fn statements_end_at_delimiters_outside_quotes_and_comments() {
        assert_eq!(
            split("SET a=1;\nINSERT INTO t VALUES ('x;y',\"a;\",`c;`),\n(2,'it\\'s;');\n"),
            vec![
                "SET a=1",
                "INSERT INTO t VALUES ('x;y',\"a;\",`c;`),\n(2,'it\\'s;')"
            ]
        );
    }

    #[test]
    fn plain_runs_keep_every_byte_and_the_statement_start() {
        assert_eq!(
            split("  \n\t INSERT INTO t VALUES (1,-2,3/4,5*6,'a'),(7e-3,x--y,-- z\n8);\n"),
            vec!["INSERT INTO t VALUES (1,-2,3/4,5*6,'a'),(7e-3,x--y,-- z\n8)"]
        );
        assert_eq!(
            split("DELIMITER GO\nSELECT 'G', GOAT FROM g GO\nSELECT 1 GO\n"),
            vec!["SELECT 'G',", "AT FROM g", "SELECT 1"]
        );
    }

    #[test]
    fn leading_comments_are_dropped_and_comment_only_text_is_no_statement() {
        assert_eq!(
            split("\n--\n-- Table `t`; x\n--\n\n/* c; */ DROP TABLE t;\n# end; \n-- \n"),
            vec!["DROP TABLE t"]
        );
    }

    #[test]
    fn version_comments_are_code_and_hide_no_delimiter() {
        assert_eq!(
            split(
                "/*!40101 SET NAMES utf8mb4 */;\n/*!50001 CREATE VIEW `v` AS SELECT\n 1 AS `a;*/b` */;\n"
            ),
            vec![
                "/*!40101 SET NAMES utf8mb4 */",
                "/*!50001 CREATE VIEW `v` AS SELECT\n 1 AS `a;*/b` */"
            ]
        );
    }

    #[test]
    fn delimiter_lines_change_the_delimiter_and_bodies_keep_their_comments() {
        let text = "/*!50003 SET sql_mode = '' */ ;\nDELIMITER ;;\nCREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW\nBEGIN\n  -- don't; stop\n  SET NEW.a = 1; /* x; */\nEND ;;\nDELIMITER ;\n/*!50003 SET sql_mode = @saved_sql_mode */ ;\n";
        assert_eq!(
            split(text),
            vec![
                "/*!50003 SET sql_mode = '' */",
                "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW\nBEGIN\n  -- don't; stop\n  SET NEW.a = 1; /* x; */\nEND",
                "/*!50003 SET sql_mode = @saved_sql_mode */"
            ]
        );
    }

    #[test]
    fn no_backslash_escapes_is_followed_from_set_sql_mode() {
        let text = "SET @saved_sql_mode = @@sql_mode;\nSET sql_mode = 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES';\nSELECT 'a\\';\nSET sql_mode = @saved_sql_mode;\nSELECT 'b\\';';\n";
        assert_eq!(
            split(text),
            vec![
                "SET @saved_sql_mode = @@sql_mode",
                "SET sql_mode = 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES'",
                "SELECT 'a\\'",
                "SET sql_mode = @saved_sql_mode",
                "SELECT 'b\\';'"
            ]
        );
    }

    #[test]
    fn raw_newlines_inside_strings_stay_in_the_statement() {
        assert_eq!(
            split("INSERT INTO t VALUES ('a\n;\nb');\nSELECT 1;"),
            vec!["INSERT INTO t VALUES ('a\n;\nb')", "SELECT 1"]
        );
    }

    #[test]
    fn a_file_ending_inside_a_string_is_an_error() {
        let mut s = Splitter::new(&b"SELECT 1;\nINSERT INTO t VALUES ('abc"[..]);
        assert_eq!(s.next_statement().unwrap().unwrap(), b"SELECT 1");
        assert!(s.next_statement().is_err());
    }

    #[test]
    fn binary_bytes_pass_through() {
        let text = b"INSERT INTO t VALUES ('\xff\x00\\'\\\\',0x00);\n";
        let mut s = Splitter::new(&text[..]);
        assert_eq!(
            s.next_statement().unwrap().unwrap(),
            b"INSERT INTO t VALUES ('\xff\x00\\'\\\\',0x00)"
        );
        assert!(s.next_statement().unwrap().is_none());
    }

    #[test]
    fn starts_with_words_ignores_case_spacing_and_version_comments() {
        assert!(starts_with_words(
            b"/*!50003 CREATE  table x",
            "CREATE TABLE"
        ));
        assert!(starts_with_words(b"create table `x`", "CREATE TABLE"));
        assert!(!starts_with_words(b"CREATE TABLESPACE x", "CREATE TABLE"));
    }

    fn rename(s: &str, everywhere: bool) -> String {
        String::from_utf8(rename_database(
            s.as_bytes(),
            "src",
            "new`db",
            everywhere,
            true,
        ))
        .unwrap()
    }

    #[test]
    fn rename_rewrites_qualifiers_only() {
        assert_eq!(
            rename(
                "CREATE VIEW `src`.`v` AS select `src`.`t`.`src` AS `src` from `src` . `t` where x = 'src.t' -- `src`.x\n",
                false
            ),
            "CREATE VIEW `new``db`.`v` AS select `new``db`.`t`.`src` AS `src` from `new``db` . `t` where x = 'src.t' -- `src`.x\n"
        );
        assert_eq!(
            rename(
                "INSERT INTO src.t SELECT * FROM \"src\".t2 JOIN t3.src ON 1",
                false
            ),
            "INSERT INTO `new``db`.t SELECT * FROM \"new`db\".t2 JOIN t3.src ON 1"
        );
    }

    #[test]
    fn rename_everywhere_for_database_statements() {
        assert_eq!(
            rename(
                "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `src` /*!40100 DEFAULT CHARACTER SET utf8mb4 */",
                true
            ),
            "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `new``db` /*!40100 DEFAULT CHARACTER SET utf8mb4 */"
        );
        assert_eq!(rename("USE `src`", true), "USE `new``db`");
    }
}
