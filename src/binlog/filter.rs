//! Point-in-time restore of a partial backup: which archived events belong to the
//! backup's databases (`DatabaseFilter`), one "unit" of a transaction at a time.
//!
//! A backup of some databases (`--databases shop`, `shop`, `--all-databases
//! --ignore-database=x`) records them (snapshot `meta.binlog_databases`); a whole-server
//! backup records nothing and its replay is not filtered. The planner (`replay::walk`)
//! cuts a transaction into units and asks `Units::event` what each one is:
//!
//! - a row-based statement (ANNOTATE_ROWS, its TABLE_MAPs, its row events up to the one
//!   flagged STMT_END): by the databases of its TABLE_MAPs, exactly. All kept: kept; none:
//!   other; both (a multi-table UPDATE, a trigger writing into another database): mixed.
//! - a statement (QUERY, with the INTVAR/RAND/USER_VAR events before it): by its default
//!   database, as `mariadb-binlog --database` and `replicate-do-db` do (CREATE/DROP/ALTER
//!   DATABASE name the database they change as their default one). The classic trap of
//!   that rule is a statement whose default database is another one but that writes into
//!   a kept database by a qualified name (`USE other; INSERT INTO shop.t ...`): such a
//!   statement (its text names a kept database as `db.`/`` `db`. ``, outside quotes and
//!   comments, its strings read as its session's `sql_mode` reads them (a backslash
//!   escapes unless NO_BACKSLASH_ESCAPES), also spelled `db . t`, `db/**/.t`, `"db".t` (ANSI_QUOTES) or in another
//!   letter case, which is the same database under lower_case_table_names) is mixed,
//!   never dropped silently. With `Except`, where the kept databases
//!   are not listed, that is any database but the excluded ones (`USE scratch; TRUNCATE
//!   shop.log`, `ALTER TABLE shop.t ...` from `scratch`: mixed); a table alias used as a
//!   qualifier (`a.id`) then counts too, which refuses (names the GTID), never drops.
//!   A QUERY whose default database or text cannot be read is mixed. A statement without a default database
//!   is kept when it names a kept database that way, else (a `CREATE USER`, a `DROP TABLE
//!   other.t`) it is other; with `Except`, where the kept databases are not listed, it is
//!   kept unless every database it names is excluded.
//!   A statement whose default database is kept is replayed whatever it names (`USE
//!   shop; DROP TABLE other.t`: it fails on the target and the replay stops naming it).
//!   A statement-logged LOAD DATA (BEGIN_LOAD_QUERY, APPEND_BLOCK, EXECUTE_LOAD_QUERY) is
//!   one such statement, by its EXECUTE_LOAD_QUERY.
//! - BEGIN/COMMIT/ROLLBACK/XA/SAVEPOINT statements, GTID and XID events: the transaction's
//!   frame, kept with it.
//!
//! Why not `mariadb-binlog --database` (client/mysqlbinlog.cc, 10.11): it takes one
//! database; it filters QUERY events by default database and row events per TABLE_MAP,
//! so it drops the trap above silently and applies half of a statement writing into two
//! databases; it leaves the other databases' transactions as empty ones.
//!
//! The planner then leaves out a transaction whose units are all other, cuts the other
//! units out of a transaction that also has kept ones (each row-based statement repeats
//! its TABLE_MAPs, so the rest decodes alone), and refuses a transaction with a mixed
//! unit, naming it (`--skip-gtid` leaves it out knowingly); a drill's replay
//! (`Target::EndOfWindow`) stops before it instead, its window ending there. MySQL's
//! compressed transactions (TRANSACTION_PAYLOAD) cannot be looked into: mixed. MariaDB's
//! compressed statements (`log_bin_compress`) are not decompressed: one whose default
//! database is kept is kept; any other (another default database, or none) is mixed,
//! since a statement whose text was not checked is never dropped.
//!
//! What the binlog cannot tell: a statement-logged statement on another database that
//! fires a trigger (or calls a stored function) writing into a kept one is logged alone,
//! under its own database, and looks like other's. A backup for which a trigger or
//! function of another database names a kept one therefore starts no replay (`rbackup
//! backup`: `meta.binlog_replayable` false); one created after the backup is in the
//! binlog, a statement of another database naming a kept one: mixed.
//!
//! Not for: where units are in the plan's bytes (`replay`), decoding rows.

use serde::{Deserialize, Serialize};

use crate::binlog::event::{self, Checksum, kind};

/// Which databases a partial backup holds, for its replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseFilter {
    /// Only these databases (`--databases a b`, or one database).
    Only(Vec<String>),
    /// Every database but these (`--all-databases --ignore-database=...`).
    Except(Vec<String>),
}

impl DatabaseFilter {
    pub fn keeps(&self, db: &str) -> bool {
        match self {
            DatabaseFilter::Only(k) => k.iter().any(|d| d == db),
            DatabaseFilter::Except(x) => !x.iter().any(|d| d == db),
        }
    }

    /// Whether `db` may be a kept database where names are case-insensitive: `Only`, a
    /// kept one but for case; `Except`, as `keeps` (an excluded one but for case may be
    /// another database).
    pub fn keeps_ignoring_case(&self, db: &str) -> bool {
        match self {
            DatabaseFilter::Only(k) => k.iter().any(|d| d.to_lowercase() == db.to_lowercase()),
            DatabaseFilter::Except(_) => self.keeps(db),
        }
    }

    /// "shop, shop2" / "every database but x".
    pub fn describe(&self) -> String {
        match self {
            DatabaseFilter::Only(k) if k.is_empty() => "no database".into(),
            DatabaseFilter::Only(k) => k.join(", "),
            DatabaseFilter::Except(x) => format!("every database but {}", x.join(", ")),
        }
    }

    /// A snapshot's `meta.binlog_databases` (absent or null: a whole-server backup).
    pub fn from_meta(meta: &serde_json::Value) -> Option<DatabaseFilter> {
        serde_json::from_value(meta.get("binlog_databases")?.clone()).ok()
    }
}

/// What a finished unit is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Kept,
    Other,
    /// Writes into a kept and another database, or cannot be told: why.
    Mixed(String),
}

/// The unit being read.
#[derive(Debug, Clone, Default)]
pub struct Unit {
    /// The planner's place of its first event (record, position in the file).
    pub record: usize,
    pub start: u64,
    pub events: u64,
    kept: Vec<String>,
    other: Vec<String>,
    mixed: Option<String>,
}

impl Unit {
    fn verdict(&self) -> Verdict {
        if let Some(m) = &self.mixed {
            return Verdict::Mixed(m.clone());
        }
        match (self.kept.is_empty(), self.other.is_empty()) {
            (false, false) => Verdict::Mixed(format!(
                "one statement writes into {} and into {}",
                self.kept.join(", "),
                self.other.join(", ")
            )),
            (true, false) => Verdict::Other,
            // Kept, or nothing known (leave it in place).
            _ => Verdict::Kept,
        }
    }

    fn add(list: &mut Vec<String>, db: String) {
        if !list.contains(&db) {
            list.push(db);
        }
    }
}

/// What one event does to the units of a transaction.
pub enum Step {
    /// The event is the transaction's frame, or part of the unit still open.
    Continue,
    /// The event ends a unit (it is its last one).
    End(Unit, Verdict),
}

/// Follows the units of one transaction.
pub struct Units<'a> {
    filter: &'a DatabaseFilter,
    open: Option<Unit>,
}

const STMT_END_F: u16 = 0x0001;

/// Database names for a message: `` `a`, `b` ``.
fn backquoted<S: std::fmt::Display>(names: &[S]) -> String {
    names
        .iter()
        .map(|d| format!("`{d}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The start of a statement's text for a message (120 bytes at most).
fn excerpt(text: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(&text[..text.len().min(120)])
}

fn is_rows(k: u8) -> bool {
    matches!(k, 20..=25 | 30..=32 | 39 | 166..=171)
}

impl<'a> Units<'a> {
    pub fn new(filter: &'a DatabaseFilter) -> Units<'a> {
        Units { filter, open: None }
    }

    /// Reads event `ev` (of kind `k`, at `record`/`start`) of the transaction.
    pub fn event(
        &mut self,
        ev: &[u8],
        k: u8,
        checksum: Checksum,
        record: usize,
        start: u64,
    ) -> Step {
        match k {
            kind::GTID | kind::MYSQL_GTID | kind::MYSQL_ANONYMOUS_GTID | kind::XID => {
                return Step::Continue;
            }
            kind::XA_PREPARE => return Step::Continue,
            _ => {}
        }
        let statement = k == kind::QUERY || k == QUERY_COMPRESSED;
        // A QUERY whose text cannot be read is never dropped unread (`None`: mixed).
        let text = if k == kind::QUERY {
            event::query_text(ev, checksum).ok()
        } else {
            Some(&[][..])
        };
        let text_or_empty = text.unwrap_or_default();
        if statement && self.open.is_none() && k == kind::QUERY && is_frame(text_or_empty) {
            return Step::Continue;
        }
        let u = self.open.get_or_insert_with(|| Unit {
            record,
            start,
            ..Default::default()
        });
        u.events += 1;
        if k == TABLE_MAP {
            match table_map_db(ev, checksum) {
                Some(db) if self.filter.keeps(&db) => Unit::add(&mut u.kept, db),
                Some(db) => Unit::add(&mut u.other, db),
                None => u.mixed = Some("a TABLE_MAP event that cannot be read".into()),
            }
            return Step::Continue;
        }
        if k == kind::MYSQL_TRANSACTION_PAYLOAD {
            u.mixed = Some(
                "a compressed transaction (binlog_transaction_compression) cannot be looked \
                 into"
                    .into(),
            );
            return Step::Continue;
        }
        if is_rows(k) {
            let b = event::body(ev, checksum);
            let end = b.len() >= 8 && u16::from_le_bytes([b[6], b[7]]) & STMT_END_F != 0;
            if !end {
                return Step::Continue;
            }
        } else if k == EXECUTE_LOAD_QUERY {
            // A statement-logged LOAD DATA (its data in the BEGIN_LOAD_QUERY/APPEND_BLOCK
            // events before it, in its unit): a statement of its own.
            match execute_load_query(ev, checksum) {
                Some((db, text)) => {
                    let escapes = backslash_escapes(event::body(ev, checksum), 26);
                    self.statement(&db, text, escapes)
                }
                None => u.mixed = Some("an EXECUTE_LOAD_QUERY event that cannot be read".into()),
            }
        } else if statement {
            match (event::query_db(ev, checksum), text) {
                (Ok(db), _) if k == QUERY_COMPRESSED => self.compressed(&db),
                (Ok(db), Some(text)) => {
                    let escapes = backslash_escapes(event::body(ev, checksum), 13);
                    self.statement(&db, text, escapes)
                }
                _ => u.mixed = Some("a QUERY event whose database or text cannot be read".into()),
            }
        } else {
            // INTVAR, RAND, USER_VAR, ANNOTATE_ROWS, ...: belong to what follows.
            return Step::Continue;
        }
        let u = self.open.take().expect("opened above");
        let v = u.verdict();
        Step::End(u, v)
    }

    /// Classifies a statement with default database `db` (see the module doc), read as
    /// its session's `sql_mode` says: `escapes`, whether a backslash escapes in strings.
    fn statement(&mut self, db: &str, text: &[u8], escapes: bool) {
        let u = self.open.as_mut().expect("open");
        let named = qualifiers_read(text, escapes);
        let label = |db: &str| {
            if db.is_empty() {
                "no default database".to_string()
            } else {
                format!("default database `{db}`")
            }
        };
        if !db.is_empty() && self.filter.keeps(db) {
            Unit::add(&mut u.kept, db.to_string());
            return;
        }
        let kept_named: Vec<&String> = named.iter().filter(|q| self.filter.keeps(q)).collect();
        // A name that is a kept database but for its letters' case (`SHOP.t`): the same
        // database where names are case-insensitive (lower_case_table_names), which the
        // binlog does not say: never dropped for it.
        let kept_named: Vec<&String> = if kept_named.is_empty() {
            named
                .iter()
                .filter(|q| self.filter.keeps_ignoring_case(q))
                .collect()
        } else {
            kept_named
        };
        if db.is_empty() {
            let exact = kept_named.iter().any(|q| self.filter.keeps(q));
            let keep = match self.filter {
                DatabaseFilter::Only(_) => exact,
                DatabaseFilter::Except(_) => named.is_empty() || exact,
            };
            if keep {
                Unit::add(&mut u.kept, "(statement without default database)".into());
            } else if !kept_named.is_empty() {
                u.mixed = Some(format!(
                    "a statement without a default database names {} (`{}`), a database \
                     the backup holds but for the case of its letters",
                    backquoted(&kept_named),
                    excerpt(text)
                ));
            } else {
                Unit::add(&mut u.other, label(db));
            }
            return;
        }
        // Another default database (`Only`: not listed; `Except`: excluded) yet the text
        // names a kept one (`Except`: any but the excluded ones): mixed, never dropped.
        if kept_named.is_empty() {
            Unit::add(&mut u.other, db.to_string());
        } else {
            u.mixed = Some(format!(
                "a statement with {} names {} (`{}`): by its default database it \
                     belongs to `{db}`, which the backup does not hold, yet it may write \
                     into a database it holds",
                label(db),
                backquoted(&kept_named),
                excerpt(text)
            ));
        }
    }

    /// A MariaDB compressed statement (`log_bin_compress`) with default database `db`:
    /// its text is not decompressed, so only a kept default database tells it is kept;
    /// any other one (or none) is mixed, never dropped unread.
    fn compressed(&mut self, db: &str) {
        let u = self.open.as_mut().expect("open");
        if !db.is_empty() && self.filter.keeps(db) {
            Unit::add(&mut u.kept, db.to_string());
            return;
        }
        u.mixed = Some(format!(
            "a compressed statement (log_bin_compress) with {}: its text is not looked \
             into, so whether it writes into a database the backup holds cannot be told",
            if db.is_empty() {
                "no default database".to_string()
            } else {
                format!("default database `{db}`, which the backup does not hold")
            }
        ));
    }

    /// The unit still open at the end of the transaction (events that end no statement):
    /// kept in place.
    pub fn finish(&mut self) -> Option<Unit> {
        self.open.take()
    }
}

const TABLE_MAP: u8 = 19;
const QUERY_COMPRESSED: u8 = 165;
const EXECUTE_LOAD_QUERY: u8 = 18;

/// The default database and text of an EXECUTE_LOAD_QUERY event: a QUERY's post-header
/// (thread id, exec time, database name length, error code, status variables length)
/// and 13 bytes more (file id, the file name's place in the text, duplicate handling).
fn execute_load_query(ev: &[u8], checksum: Checksum) -> Option<(String, &[u8])> {
    let b = event::body(ev, checksum);
    let db_len = *b.get(8)? as usize;
    let status_len = u16::from_le_bytes([*b.get(11)?, *b.get(12)?]) as usize;
    let db = b.get(26 + status_len..26 + status_len + db_len)?;
    let text = b.get(26 + status_len + db_len + 1..)?;
    Some((String::from_utf8_lossy(db).into_owned(), text))
}

/// `sql_mode`'s NO_BACKSLASH_ESCAPES (the same bit on MariaDB and MySQL).
const MODE_NO_BACKSLASH_ESCAPES: u64 = 1 << 20;

/// Whether a backslash escapes in the strings of a statement-logged event's text: not
/// when the session's `sql_mode` (its status variable `Q_SQL_MODE_CODE`) has
/// NO_BACKSLASH_ESCAPES, where `'C:\'` ends at its second quote and what follows is
/// statement text. `b`: the event's body, whose status variables (length at 11) start at
/// `at` (13 for QUERY, 26 for EXECUTE_LOAD_QUERY). Read up to `sql_mode`, which servers
/// log right after `Q_FLAGS2_CODE`; not found or not readable: the server's default,
/// backslashes escape.
fn backslash_escapes(b: &[u8], at: usize) -> bool {
    let Some(len) = b
        .get(11..13)
        .map(|l| u16::from_le_bytes([l[0], l[1]]) as usize)
    else {
        return true;
    };
    let Some(vars) = b.get(at..at + len) else {
        return true;
    };
    let mut i = 0;
    while let Some(&code) = vars.get(i) {
        i += 1;
        let size = match code {
            // Q_SQL_MODE_CODE: 8 bytes.
            1 => {
                return match vars.get(i..i + 8) {
                    Some(m) => {
                        let mode = u64::from_le_bytes(m.try_into().expect("8 bytes"));
                        mode & MODE_NO_BACKSLASH_ESCAPES == 0
                    }
                    None => true,
                };
            }
            // Q_FLAGS2_CODE, Q_AUTO_INCREMENT, Q_MASTER_DATA_WRITTEN_CODE.
            0 | 3 | 10 => 4,
            // Q_CHARSET_CODE.
            4 => 6,
            // Q_TIME_ZONE_CODE, Q_CATALOG_NZ_CODE: a length byte, then the bytes.
            5 | 6 => 1 + *vars.get(i).unwrap_or(&0) as usize,
            // Q_LC_TIME_NAMES_CODE, Q_CHARSET_DATABASE_CODE.
            7 | 8 => 2,
            // Q_TABLE_MAP_FOR_UPDATE_CODE.
            9 => 8,
            // Anything else (its size unknown here): sql_mode was not before it.
            _ => return true,
        };
        i += size;
    }
    true
}

/// A statement that frames a transaction rather than changing data.
fn is_frame(text: &[u8]) -> bool {
    let t = String::from_utf8_lossy(&text[..text.len().min(40)]).to_ascii_uppercase();
    let t = t.trim_start();
    [
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "XA",
        "SAVEPOINT",
        "RELEASE SAVEPOINT",
    ]
    .iter()
    .any(|p| {
        t.starts_with(p)
            && t[p.len()..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_')
    })
}

/// The database of a TABLE_MAP event (post-header: table id 6 bytes, flags 2; then the
/// database name with its length byte and a NUL).
fn table_map_db(ev: &[u8], checksum: Checksum) -> Option<String> {
    let b = event::body(ev, checksum);
    let len = *b.get(8)? as usize;
    let name = b.get(9..9 + len)?;
    Some(String::from_utf8_lossy(name).into_owned())
}

/// The qualifiers a statement uses (`x` of `x.y`, `` `x`.y ``, `x.*`, `x . y`,
/// `"x".y` under ANSI_QUOTES, `x.1y`), outside string literals and comments: the
/// databases it may name (or table aliases, which then count too: a false "names a kept
/// database" refuses, it never drops).
pub fn qualifiers(text: &[u8]) -> Vec<String> {
    qualifiers_read(text, true)
}

/// `qualifiers`, with strings read as a session with NO_BACKSLASH_ESCAPES reads them when
/// `escapes` is false (a backslash is then a character like any other).
pub fn qualifiers_read(text: &[u8], escapes: bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let n = text.len();
    let mut i = 0;
    // The name just read follows a qualifier's dot (`y` of `x.y`, `c` of `x.y.c`).
    let mut member = false;
    while i < n {
        let c = text[i];
        if let Some(e) = comment_end(text, i) {
            i = e;
            continue;
        }
        // Quoted (`` `2024` ``, `"2024"`): a name even when all digits.
        let quoted = matches!(c, b'`' | b'"');
        let name: Vec<u8> = match c {
            b'\'' | b'"' => {
                let s = i + 1;
                i += 1;
                while i < n && text[i] != c {
                    if escapes && text[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                let name = text[s..i.min(n)].to_vec();
                i += 1;
                // A string, unless a dot follows: then `"x"` is an identifier
                // (ANSI_QUOTES), which may be a database.
                if c == b'\'' {
                    member = false;
                    continue;
                }
                name
            }
            b'`' => {
                let mut name = Vec::new();
                i += 1;
                while i < n {
                    if text[i] == b'`' {
                        if text.get(i + 1) == Some(&b'`') {
                            name.push(b'`');
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    name.push(text[i]);
                    i += 1;
                }
                i += 1;
                name
            }
            c if ident(c) => {
                let s = i;
                while i < n && ident(text[i]) {
                    i += 1;
                }
                text[s..i].to_vec()
            }
            b'.' => {
                i += 1;
                continue;
            }
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            _ => {
                member = false;
                i += 1;
                continue;
            }
        };
        // Is a dot next (past spaces and comments), then a name or `*`?
        let dot = skip_blank(text, i);
        let qualifies = text.get(dot) == Some(&b'.') && {
            let next = skip_blank(text, dot + 1);
            text.get(next)
                .is_some_and(|&c| ident(c) || matches!(c, b'`' | b'"' | b'*'))
        };
        if qualifies && !member && (quoted || !name.iter().all(u8::is_ascii_digit)) {
            let s = String::from_utf8_lossy(&name).into_owned();
            if !out.contains(&s) {
                out.push(s);
            }
        }
        member = qualifies;
        if qualifies {
            i = dot + 1;
        }
    }
    out
}

fn ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// Where the comment starting at `i` ends (`None`: none starts there). Not the
/// executable `/*! ... */` and `/*M! ... */`, whose text runs; `--` only before a space
/// or a control character, as the server reads it (`a--1` is `a - -1`).
fn comment_end(text: &[u8], i: usize) -> Option<usize> {
    let n = text.len();
    match text[i] {
        b'#' => Some(
            text[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(n, |p| i + p),
        ),
        b'-' if text.get(i + 1) == Some(&b'-') && text.get(i + 2).is_none_or(|&c| c <= b' ') => {
            Some(
                text[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(n, |p| i + p),
            )
        }
        b'/' if text.get(i + 1) == Some(&b'*')
            && !matches!(text.get(i + 2), Some(b'!') | Some(b'M')) =>
        {
            let mut j = i + 2;
            while j + 1 < n && !(text[j] == b'*' && text[j + 1] == b'/') {
                j += 1;
            }
            Some((j + 2).min(n))
        }
        _ => None,
    }
}

/// The first byte at or after `i` that is neither white space nor in a comment.
fn skip_blank(text: &[u8], mut i: usize) -> usize {
    while i < text.len() {
        if text[i].is_ascii_whitespace() {
            i += 1;
        } else if let Some(e) = comment_end(text, i) {
            i = e;
        } else {
            break;
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualifiers_outside_quotes_and_comments() {
        let q = |s: &str| qualifiers(s.as_bytes());
        assert_eq!(q("INSERT INTO shop.t VALUES (1.5)"), ["shop"]);
        assert_eq!(
            q("insert into `shop`.`t` select * from other.x"),
            ["shop", "other"]
        );
        assert_eq!(
            q("INSERT INTO t VALUES ('shop.t') # shop.x"),
            Vec::<String>::new()
        );
        assert_eq!(q("/* shop.t */ DROP TABLE a.b -- shop.t"), ["a"]);
        assert_eq!(q("GRANT SELECT ON shop.* TO u"), ["shop"]);
        assert_eq!(q("/*!40000 ALTER TABLE s.t DISABLE KEYS */"), ["s"]);
        assert_eq!(q("SELECT 1.5, 2.e3"), Vec::<String>::new());
        assert_eq!(q("UPDATE `we``ird`.t SET c=1"), ["we`ird"]);
        // A database named by digits alone, quoted (unquoted, `2024.5` is a number).
        assert_eq!(q("INSERT INTO `2024`.t VALUES (1)"), ["2024"]);
        assert_eq!(q("INSERT INTO \"2024\" . t VALUES (2024.5)"), ["2024"]);
    }

    /// A QUERY (or QUERY_COMPRESSED) event with default database `db`, CRC32-checked.
    fn query_event(k: u8, db: &str, text: &[u8]) -> Vec<u8> {
        let mut b = vec![0; 13];
        b[8] = db.len() as u8;
        b.extend_from_slice(db.as_bytes());
        b.push(0);
        b.extend_from_slice(text);
        event::tests::event(k, 0, 0, 0, &b)
    }

    fn verdict_of_event(filter: &DatabaseFilter, ev: &[u8], k: u8) -> Verdict {
        match Units::new(filter).event(ev, k, Checksum::Crc32, 0, 0) {
            Step::End(_, v) => v,
            Step::Continue => panic!("a statement ends its unit"),
        }
    }

    /// A statement logged by a session with NO_BACKSLASH_ESCAPES: `'C:\'` is a whole
    /// string there, and the `shop.t` after it statement text, not part of a string.
    #[test]
    fn strings_are_read_as_the_sessions_sql_mode_reads_them() {
        let only = DatabaseFilter::Only(vec!["shop".into()]);
        let text = b"UPDATE (SELECT 'C:\\' AS p) AS d JOIN shop.t AS s SET s.v = d.p";
        let with_mode = |mode: u64| {
            // Q_FLAGS2_CODE (4 bytes), then Q_SQL_MODE_CODE (8 bytes).
            let mut vars = vec![0u8, 0, 0, 0, 0, 1];
            vars.extend_from_slice(&mode.to_le_bytes());
            let mut b = vec![0; 13];
            b[8] = "other".len() as u8;
            b[11..13].copy_from_slice(&(vars.len() as u16).to_le_bytes());
            b.extend_from_slice(&vars);
            b.extend_from_slice(b"other\0");
            b.extend_from_slice(text);
            event::tests::event(kind::QUERY, 0, 0, 0, &b)
        };
        let v = verdict_of_event(&only, &with_mode(MODE_NO_BACKSLASH_ESCAPES), kind::QUERY);
        assert!(
            matches!(&v, Verdict::Mixed(m) if m.contains("names `shop`")),
            "{v:?}"
        );
        // With backslash escapes (the default) the string runs on to the end.
        assert_eq!(
            verdict_of_event(&only, &with_mode(0), kind::QUERY),
            Verdict::Other
        );
    }

    #[test]
    fn a_compressed_statement_is_never_dropped_unread() {
        let only = DatabaseFilter::Only(vec!["shop".into()]);
        let except = DatabaseFilter::Except(vec!["scratch".into()]);
        // Compressed text (not zlib here: it is never looked into).
        let text = b"\x83\0\0\x10not decompressed";
        let c = |db| query_event(QUERY_COMPRESSED, db, text);
        assert_eq!(
            verdict_of_event(&only, &c("shop"), QUERY_COMPRESSED),
            Verdict::Kept
        );
        assert_eq!(
            verdict_of_event(&except, &c("shop"), QUERY_COMPRESSED),
            Verdict::Kept
        );
        for (f, db) in [
            (&only, "other"),
            (&only, ""),
            (&except, "scratch"),
            (&except, ""),
        ] {
            assert!(
                matches!(
                    verdict_of_event(f, &c(db), QUERY_COMPRESSED),
                    Verdict::Mixed(m) if m.contains("compressed")
                ),
                "{f:?} {db:?}"
            );
        }
        // The same statements uncompressed go by their text.
        let q = |db| query_event(kind::QUERY, db, b"UPDATE t SET a=1");
        assert_eq!(
            verdict_of_event(&only, &q("other"), kind::QUERY),
            Verdict::Other
        );
        assert_eq!(
            verdict_of_event(&except, &q("scratch"), kind::QUERY),
            Verdict::Other
        );
        // A QUERY whose lengths run past its end cannot be read: mixed.
        let mut bad = vec![0u8; 13];
        bad[8] = 200;
        let bad = event::tests::event(kind::QUERY, 0, 0, 0, &bad);
        assert!(matches!(
            verdict_of_event(&only, &bad, kind::QUERY),
            Verdict::Mixed(_)
        ));
    }

    #[test]
    fn frames_are_not_statements() {
        for t in [
            "BEGIN",
            "COMMIT",
            "ROLLBACK",
            "XA START X'01'",
            "SAVEPOINT `a`",
        ] {
            assert!(is_frame(t.as_bytes()), "{t}");
        }
        for t in ["BEGIN_X", "INSERT INTO t VALUES (1)", "COMMITTED", "XAX"] {
            assert!(!is_frame(t.as_bytes()), "{t}");
        }
    }

    fn unit_of(filter: &DatabaseFilter, db: &str, text: &str) -> Verdict {
        let mut u = Units::new(filter);
        u.open = Some(Unit::default());
        u.statement(db, text.as_bytes(), true);
        u.open.unwrap().verdict()
    }

    #[test]
    fn statements_go_by_their_default_database_and_the_trap_is_refused() {
        let only = DatabaseFilter::Only(vec!["shop".into()]);
        assert_eq!(
            unit_of(&only, "shop", "INSERT INTO t VALUES (1)"),
            Verdict::Kept
        );
        assert_eq!(
            unit_of(&only, "shop", "INSERT INTO other.t VALUES (1)"),
            Verdict::Kept
        );
        assert_eq!(
            unit_of(&only, "other", "CREATE DATABASE other"),
            Verdict::Other
        );
        assert_eq!(
            unit_of(&only, "other", "INSERT INTO t VALUES (1)"),
            Verdict::Other
        );
        assert!(matches!(
            unit_of(&only, "other", "INSERT INTO shop.t VALUES (1)"),
            Verdict::Mixed(m) if m.contains("`shop`")
        ));
        assert_eq!(
            unit_of(&only, "", "INSERT INTO shop.t VALUES (1)"),
            Verdict::Kept
        );
        assert_eq!(unit_of(&only, "", "DROP TABLE other.t"), Verdict::Other);
        assert_eq!(unit_of(&only, "", "CREATE USER u"), Verdict::Other);
        let except = DatabaseFilter::Except(vec!["x".into()]);
        assert_eq!(unit_of(&except, "", "CREATE USER u"), Verdict::Kept);
        assert_eq!(unit_of(&except, "", "DROP TABLE x.t"), Verdict::Other);
        assert_eq!(unit_of(&except, "x", "UPDATE t SET a=1"), Verdict::Other);
        assert_eq!(unit_of(&except, "y", "UPDATE t SET a=1"), Verdict::Kept);
        // The trap with `Except`: an excluded default database, a kept one by name.
        let scratch = DatabaseFilter::Except(vec!["scratch".into()]);
        for text in [
            "TRUNCATE TABLE shop.orders",
            "ALTER TABLE `shop`.`orders` ADD c INT",
            "INSERT INTO shop.log SELECT * FROM t",
        ] {
            assert!(
                matches!(
                    unit_of(&scratch, "scratch", text),
                    Verdict::Mixed(m) if m.contains("`shop`") && m.contains("`scratch`")
                ),
                "{text}"
            );
        }
        assert_eq!(
            unit_of(&scratch, "scratch", "TRUNCATE TABLE scratch.t"),
            Verdict::Other
        );
        assert_eq!(
            unit_of(&scratch, "scratch", "INSERT INTO t VALUES ('shop.x')"),
            Verdict::Other
        );
        assert_eq!(
            DatabaseFilter::from_meta(&serde_json::json!({"binlog_databases": {"only": ["a"]}})),
            Some(DatabaseFilter::Only(vec!["a".into()]))
        );
        assert_eq!(
            DatabaseFilter::from_meta(&serde_json::json!({"binlog_databases": null})),
            None
        );
        assert_eq!(DatabaseFilter::from_meta(&serde_json::json!({})), None);
    }

    /// The trap spelled otherwise: a qualifier past spaces or a comment, in ANSI_QUOTES,
    /// before a table name starting with a digit, in other letters' case; each was read
    /// as naming no kept database, and the statement dropped.
    #[test]
    fn a_kept_database_named_any_way_the_server_reads_is_seen() {
        let only = DatabaseFilter::Only(vec!["shop".into()]);
        for text in [
            "INSERT INTO shop .t VALUES (1)",
            "INSERT INTO shop\n.t VALUES (1)",
            "INSERT INTO shop. t VALUES (1)",
            "INSERT INTO shop/* x */.t VALUES (1)",
            "INSERT INTO `shop` . `t` VALUES (1)",
            "INSERT INTO \"shop\".\"t\" VALUES (1)",
            "INSERT INTO shop.\"t\" VALUES (1)",
            "INSERT INTO shop.1t VALUES (1)",
            "INSERT INTO SHOP.t VALUES (1)",
            "UPDATE t SET a=a--1, b=(SELECT 1) WHERE 1; UPDATE shop.u SET c=1",
        ] {
            assert!(
                matches!(unit_of(&only, "other", text), Verdict::Mixed(m) if m.contains("shop") || m.contains("SHOP")),
                "{text}"
            );
        }
        // Without a default database: an exact name keeps it, another case refuses.
        assert_eq!(
            unit_of(&only, "", "INSERT INTO shop . t VALUES (1)"),
            Verdict::Kept
        );
        assert!(matches!(
            unit_of(&only, "", "INSERT INTO Shop.t VALUES (1)"),
            Verdict::Mixed(_)
        ));
        // Still nothing named by strings, comments, numbers or members.
        for text in [
            "INSERT INTO t VALUES (\"shop\", 'shop.t', 1.5, 2 . 5)",
            "INSERT INTO t VALUES (1) -- shop.t",
            "UPDATE other.t SET a = other.t.shop",
            "UPDATE other.t SET a = other . t . shop",
        ] {
            assert_eq!(unit_of(&only, "other", text), Verdict::Other, "{text}");
        }
        let q = |s: &str| qualifiers(s.as_bytes());
        assert_eq!(q("SELECT a.b.c, d . e . f"), ["a", "d"]);
        assert_eq!(q("SELECT 1.5, 2.e3, 3 . 4"), Vec::<String>::new());
    }

    /// A statement-logged LOAD DATA (BEGIN_LOAD_QUERY, APPEND_BLOCK..., then
    /// EXECUTE_LOAD_QUERY, a QUERY with 13 more bytes of post-header) is a statement of
    /// its own: it was read as the start of the next one, and cut out with it when that
    /// was another database's (`LOAD DATA ... INTO TABLE shop.t; INSERT INTO other.t2`
    /// in one transaction lost shop's rows).
    #[test]
    fn a_load_data_is_a_statement_of_its_own() {
        let only = DatabaseFilter::Only(vec!["shop".into()]);
        let execute_load = |db: &str, text: &str| {
            let mut b = vec![0; 26];
            b[8] = db.len() as u8;
            b.extend_from_slice(db.as_bytes());
            b.push(0);
            b.extend_from_slice(text.as_bytes());
            event::tests::event(EXECUTE_LOAD_QUERY, 0, 0, 0, &b)
        };
        let mut units = Units::new(&only);
        let mut verdicts = Vec::new();
        let events: Vec<(u8, Vec<u8>)> = vec![
            (kind::QUERY, query_event(kind::QUERY, "shop", b"BEGIN")),
            (
                17,
                event::tests::event(17, 0, 0, 0, &[1, 0, 0, 0, b'1', b'\n']),
            ),
            (
                EXECUTE_LOAD_QUERY,
                execute_load(
                    "shop",
                    "LOAD DATA INFILE '/tmp/SQL_LOAD-1-2-0.data' INTO TABLE `t`",
                ),
            ),
            (
                kind::QUERY,
                query_event(kind::QUERY, "other", b"INSERT INTO t2 VALUES (1)"),
            ),
            (
                EXECUTE_LOAD_QUERY,
                execute_load(
                    "other",
                    "LOAD DATA INFILE '/tmp/SQL_LOAD-1-2-1.data' INTO TABLE shop.t",
                ),
            ),
        ];
        for (k, ev) in &events {
            if let Step::End(u, v) = units.event(ev, *k, Checksum::Crc32, 0, 0) {
                verdicts.push((u.events, v));
            }
        }
        assert_eq!(verdicts.len(), 3, "{verdicts:?}");
        assert_eq!(verdicts[0], (2, Verdict::Kept));
        assert_eq!(verdicts[1], (1, Verdict::Other));
        assert!(matches!(&verdicts[2], (1, Verdict::Mixed(m)) if m.contains("`shop`")));
    }
}
