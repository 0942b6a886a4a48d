//! Databases, tables and sequences on the target, before the data: objects of the dump that
//! already exist (refused, or dropped with `--drop-existing`), `database.sql` and each table's
//! schema file run with its secondary indexes deferred (`indexes`), and what the data phase
//! needs to know of each created table (transactional engine, deferred indexes, ENUM
//! columns). Sequences are created before tables (a DEFAULT may call NEXTVAL) with their
//! state (`SETVAL`) from the schema file; nothing uses them until the data is in.
//!
//! Not for: data (see `data`), views, triggers, routines and events (see `post`).

use std::collections::{HashMap, HashSet};

use super::conn::LoadConn;
use super::error::{LoadError, Result};
use super::exec::{Edit, Script, run_file};
use super::indexes::{self, Tok, tokens};
use super::journal::{self, Journal};
use super::plan::{DbPlan, LoadPlan};
use super::script::{self, Splitter, starts_with_words};
use crate::client::conn::cell_string;
use crate::format::manifest::{FileEntry, TableEntry};
use crate::sql::quote::{ident, qualified, string_literal};

/// A table as the data phase sees it.
#[derive(Debug, Clone)]
pub struct TableTarget {
    /// Database on the target.
    pub db: String,
    pub entry: TableEntry,
    /// Rows can be rolled back (InnoDB): a chunk loads in one transaction with its journal row.
    pub transactional: bool,
    /// (name, definition) of the indexes to add after the data.
    pub deferred: Vec<(String, String)>,
    pub enum_columns: Vec<String>,
    /// Has an AUTO_INCREMENT column (`LOAD DATA` into it holds the table's AUTO-INC lock,
    /// unless innodb_autoinc_lock_mode=2).
    pub auto_increment: bool,
}

/// An object of the dump that already exists on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// "table", "view", "sequence", "trigger", "function", "procedure", "package",
    /// "package body", "event".
    pub kind: String,
    pub db: String,
    pub name: String,
}

impl Conflict {
    fn drop_sql(&self) -> String {
        let keyword = match self.kind.as_str() {
            "view" => "VIEW",
            "sequence" => "SEQUENCE",
            "trigger" => "TRIGGER",
            "function" => "FUNCTION",
            "procedure" => "PROCEDURE",
            "package" => "PACKAGE",
            "package body" => "PACKAGE BODY",
            "event" => "EVENT",
            _ => "TABLE",
        };
        format!(
            "DROP {keyword} IF EXISTS {}",
            qualified(&self.db, &self.name)
        )
    }
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind, qualified(&self.db, &self.name))
    }
}

/// Names of the objects a file defines: `(kind, name)` from `DROP <kind> IF EXISTS name`
/// (routines, events) or `CREATE ... TRIGGER name`.
fn defined_names(plan: &LoadPlan, file: &FileEntry) -> Result<Vec<(String, String)>> {
    let path = plan.path(&file.file);
    let text = plan.read_file(file)?;
    let mut s = Splitter::new(&text[..]);
    let mut out = Vec::new();
    while let Some(stmt) = s
        .next_statement()
        .map_err(|e| LoadError::dump(&path, e.to_string()))?
    {
        let text = String::from_utf8_lossy(&stmt);
        let t = tokens(&text);
        let word = |i: usize| match t.get(i) {
            Some(Tok::Word(w)) => w.to_ascii_uppercase(),
            _ => String::new(),
        };
        if word(0) == "DROP" {
            let (w1, w2) = (word(1), word(2));
            let (kind, at) = match (w1.as_str(), w2.as_str()) {
                ("PACKAGE", "BODY") => ("package body", 3),
                (k @ ("FUNCTION" | "PROCEDURE" | "PACKAGE" | "EVENT"), _) => (k, 2),
                _ => continue,
            };
            if word(at) == "IF"
                && word(at + 1) == "EXISTS"
                && let Some(n) = last_name(&t[at + 2..])
            {
                out.push((kind.to_ascii_lowercase(), n));
            }
        } else if word(0) == "CREATE"
            && let Some(i) = t
                .iter()
                .position(|x| matches!(x, Tok::Word(w) if w.eq_ignore_ascii_case("TRIGGER")))
            && let Some(n) = last_name(&t[i + 1..])
        {
            out.push(("trigger".into(), n));
        }
    }
    Ok(out)
}

/// The object name at the start of `t`: `name` or `db`.`name`.
fn last_name(t: &[Tok]) -> Option<String> {
    match (t.first(), t.get(1), t.get(2)) {
        (Some(_), Some(Tok::Dot), Some(n)) => n.name().map(String::from),
        (Some(n), _, _) => n.name().map(String::from),
        _ => None,
    }
}

/// Objects of the plan that already exist on the target. Reads only.
pub async fn conflicts(conn: &mut LoadConn, plan: &LoadPlan) -> Result<Vec<Conflict>> {
    let lctn = conn
        .first_value(
            "SELECT @@lower_case_table_names",
            "reading lower_case_table_names",
        )
        .await?
        .unwrap_or_default();
    let fold_tables = lctn != "0";
    let mut out = Vec::new();
    for d in &plan.databases {
        let db = string_literal(&d.target);
        let key = |n: &str, fold: bool| {
            if fold {
                n.to_lowercase()
            } else {
                n.to_string()
            }
        };
        let mut tables: HashSet<String> =
            d.tables.iter().map(|t| key(&t.name, fold_tables)).collect();
        tables.extend(d.views.iter().map(|v| key(v, fold_tables)));
        let mut programs: HashSet<(String, String)> = HashSet::new();
        let files = d
            .tables
            .iter()
            .filter_map(|t| t.triggers_file.as_ref())
            .chain(d.routines_file.iter())
            .chain(d.events_file.iter());
        for f in files {
            for (kind, name) in defined_names(plan, f)? {
                let kind = if kind == "trigger" || kind == "event" {
                    kind
                } else {
                    "routine".into()
                };
                programs.insert((kind, name.to_lowercase()));
            }
        }
        for r in conn
            .rows(
                &format!("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = {db}"),
                "looking for existing tables",
            )
            .await?
        {
            let name = cell_string(&r, 0).unwrap_or_default();
            if tables.contains(&key(&name, fold_tables)) {
                let kind = match cell_string(&r, 1).as_deref() {
                    Some("VIEW") => "view",
                    Some("SEQUENCE") => "sequence",
                    _ => "table",
                };
                out.push(Conflict {
                    kind: kind.into(),
                    db: d.target.clone(),
                    name,
                });
            }
        }
        let queries = [
            (
                "trigger",
                format!(
                    "SELECT TRIGGER_NAME, 'trigger' FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {db}"
                ),
            ),
            (
                "routine",
                format!(
                    "SELECT ROUTINE_NAME, LOWER(ROUTINE_TYPE) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {db} ORDER BY ROUTINE_TYPE = 'PACKAGE'"
                ),
            ),
            (
                "event",
                format!(
                    "SELECT EVENT_NAME, 'event' FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {db}"
                ),
            ),
        ];
        for (kind, sql) in queries {
            for r in conn.rows(&sql, "looking for existing objects").await? {
                let name = cell_string(&r, 0).unwrap_or_default();
                if programs.contains(&(kind.to_string(), name.to_lowercase())) {
                    out.push(Conflict {
                        kind: cell_string(&r, 1).unwrap_or_else(|| kind.into()),
                        db: d.target.clone(),
                        name,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Drops the objects found by [`conflicts`] (`--drop-existing`).
pub async fn drop_conflicts(conn: &mut LoadConn, conflicts: &[Conflict]) -> Result<()> {
    for c in conflicts {
        conn.exec(&c.drop_sql(), &format!("dropping the existing {c}"))
            .await?;
    }
    Ok(())
}

/// The CREATE TABLE statement of a schema file (renamed as it will run).
fn create_statement(plan: &LoadPlan, d: &DbPlan, file: &FileEntry) -> Result<Option<String>> {
    let path = plan.path(&file.file);
    let text = plan.read_file(file)?;
    let mut s = Splitter::new(&text[..]);
    while let Some(stmt) = s
        .next_statement()
        .map_err(|e| LoadError::dump(&path, e.to_string()))?
    {
        if starts_with_words(&stmt, "CREATE TABLE") {
            let stmt = match d.rename() {
                Some((from, to)) => {
                    script::rename_database(&stmt, from, to, false, s.backslash_escapes())
                }
                None => stmt,
            };
            return Ok(String::from_utf8(stmt).ok());
        }
    }
    Ok(None)
}

/// The default character set and collation part of a CREATE DATABASE statement (what
/// follows the database name), for ALTER DATABASE.
fn database_options(stmt: &[u8], db: &str) -> Option<String> {
    let text = String::from_utf8_lossy(stmt);
    let name = ident(db);
    let rest = text[text.find(&name)? + name.len()..].trim();
    (!rest.is_empty()).then(|| rest.to_string())
}

/// What the schema phase made.
#[derive(Debug, Clone, Copy, Default)]
pub struct Created {
    pub tables: usize,
    /// Tables with deferred indexes.
    pub deferred: usize,
}

/// Creates the plan's databases, sequences and tables (skipping what the journal has), and
/// sends each base table to `ready` for the data phase as soon as it exists: database by
/// database, sequences first, then tables biggest first. With `drop_existing`, a database
/// that exists gets the dump's default character set and collation.
pub async fn create(
    conn: &mut LoadConn,
    plan: &LoadPlan,
    journal: &Journal,
    defer: bool,
    drop_existing: bool,
    ready: &tokio::sync::mpsc::UnboundedSender<TableTarget>,
) -> Result<Created> {
    // Every CREATE TABLE first: which of a table's columns other tables' foreign keys use.
    let mut creates: HashMap<(usize, usize), String> = HashMap::new();
    let mut referenced: HashMap<(String, String), Vec<Vec<String>>> = HashMap::new();
    for (di, d) in plan.databases.iter().enumerate() {
        for (ti, t) in d.tables.iter().enumerate() {
            let Some(f) = t.schema_file.as_ref().filter(|_| t.kind == "table") else {
                continue;
            };
            if let Some(create) = create_statement(plan, d, f)? {
                for fk in indexes::foreign_keys(&create) {
                    let parent_db = fk.parent_db.unwrap_or_else(|| d.target.clone());
                    referenced
                        .entry((parent_db, fk.parent))
                        .or_default()
                        .push(fk.parent_columns);
                }
                creates.insert((di, ti), create);
            }
        }
    }
    let mut out = Created::default();
    for (di, d) in plan.databases.iter().enumerate() {
        let context = format!("creating database {}", ident(&d.target));
        let item = journal::database_item(&d.source);
        if !journal.is_done(&item) {
            match &d.database_file {
                Some(f) => {
                    let script = Script {
                        rename: d.rename(),
                        rename_everywhere: true,
                        context: context.clone(),
                    };
                    let mut options = None;
                    run_file(conn, plan, f, &script, |stmt| {
                        if starts_with_words(stmt, "CREATE DATABASE") {
                            options = database_options(stmt, &d.target);
                        }
                        Edit::Keep
                    })
                    .await?;
                    // An existing database takes the dump's defaults with --drop-existing.
                    if let (Some(options), true) = (options, drop_existing) {
                        conn.exec(
                            &format!("ALTER DATABASE {} {options}", ident(&d.target)),
                            &context,
                        )
                        .await?;
                    }
                }
                None => {
                    conn.exec(
                        &format!("CREATE DATABASE IF NOT EXISTS {}", ident(&d.target)),
                        &context,
                    )
                    .await?
                }
            }
            journal.mark_done(conn, &item, 0).await?;
        }
        conn.exec(&format!("USE {}", ident(&d.target)), &context)
            .await?;
        let mut order: Vec<usize> = (0..d.tables.len()).collect();
        let bytes = |t: &TableEntry| t.chunks.iter().map(|c| c.bytes).sum::<u64>();
        order.sort_by_key(|&i| {
            (
                d.tables[i].kind != "sequence",
                std::cmp::Reverse(bytes(&d.tables[i])),
            )
        });
        for ti in order {
            let t = &d.tables[ti];
            // A table without a schema file (a data-only dump) must exist already.
            let mut deferred = Vec::new();
            if let Some(f) = &t.schema_file {
                let deferral = creates.get(&(di, ti)).and_then(|create| {
                    if !defer || t.rows == 0 {
                        return None;
                    }
                    let refs = referenced
                        .get(&(d.target.clone(), t.name.clone()))
                        .cloned()
                        .unwrap_or_default();
                    indexes::defer(create, &refs)
                });
                let item = journal::schema_item(&f.file);
                if journal.is_done(&item) {
                    // Created by an earlier run, which may have deferred indexes with other
                    // options: every index of the CREATE that the table lacks gets added.
                    let all = creates
                        .get(&(di, ti))
                        .map(|c| indexes::all_indexes(c))
                        .unwrap_or_default();
                    deferred = all;
                } else {
                    let what = if t.kind == "sequence" {
                        "sequence"
                    } else {
                        "table"
                    };
                    let context = format!("creating {what} {}", qualified(&d.target, &t.name));
                    if journal.resumed {
                        // Created by the interrupted run, with no data yet: start it over.
                        conn.exec(
                            &format!(
                                "DROP {} IF EXISTS {}",
                                what.to_ascii_uppercase(),
                                qualified(&d.target, &t.name)
                            ),
                            &context,
                        )
                        .await?;
                    }
                    let script = Script {
                        rename: d.rename(),
                        rename_everywhere: false,
                        context,
                    };
                    let replacement = deferral.as_ref().map(|x| x.create.clone().into_bytes());
                    run_file(conn, plan, f, &script, |stmt| match &replacement {
                        Some(r) if starts_with_words(stmt, "CREATE TABLE") => {
                            Edit::Replace(r.clone())
                        }
                        // The file's own DROP: the table is known to be absent (the load was
                        // admitted on a target without it, dropped it, or dropped it above),
                        // and a DROP IF EXISTS of a missing table costs the server ~10 ms.
                        _ if starts_with_words(stmt, "DROP TABLE")
                            || starts_with_words(stmt, "DROP SEQUENCE") =>
                        {
                            Edit::Skip
                        }
                        _ => Edit::Keep,
                    })
                    .await?;
                    journal.mark_done(conn, &item, 0).await?;
                    if let Some(x) = deferral {
                        deferred = x.deferred;
                    }
                }
            }
            if t.kind != "table" {
                continue;
            }
            let (transactional, auto_increment) = table_traits(conn, &d.target, &t.name).await?;
            out.tables += 1;
            out.deferred += usize::from(!deferred.is_empty());
            let target = TableTarget {
                db: d.target.clone(),
                entry: t.clone(),
                transactional,
                auto_increment,
                deferred,
                enum_columns: t
                    .columns
                    .iter()
                    .filter(|c| c.kind == "enum")
                    .map(|c| c.name.clone())
                    .collect(),
            };
            // The data phase is gone only when it failed: its error is the one to report.
            let _ = ready.send(target);
        }
    }
    Ok(out)
}

/// Whether a table's engine supports transactions (rollback), and whether it has an
/// AUTO_INCREMENT column.
async fn table_traits(conn: &mut LoadConn, db: &str, table: &str) -> Result<(bool, bool)> {
    // Constants, not a correlated subquery: the server then opens this one table only.
    let (db, table) = (string_literal(db), string_literal(table));
    let rows = conn
        .rows(
            &format!(
                "SELECT e.TRANSACTIONS = 'YES', (SELECT COUNT(*) > 0 FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = {db} AND TABLE_NAME = {table} AND EXTRA LIKE '%auto_increment%') \
                 FROM information_schema.TABLES t JOIN information_schema.ENGINES e ON e.ENGINE = t.ENGINE \
                 WHERE t.TABLE_SCHEMA = {db} AND t.TABLE_NAME = {table}"
            ),
            "reading the table's engine",
        )
        .await?;
    let flag = |i| {
        rows.first()
            .and_then(|r| cell_string(r, i))
            .is_some_and(|v| v == "1")
    };
    Ok((flag(0), flag(1)))
}

/// Adds the deferred indexes a table does not have yet, in one ALTER TABLE. Returns how many.
pub async fn add_indexes(conn: &mut LoadConn, t: &TableTarget) -> Result<usize> {
    let existing: HashSet<String> = conn
        .rows(
            &format!(
                "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {}",
                string_literal(&t.db),
                string_literal(&t.entry.name)
            ),
            "reading indexes",
        )
        .await?
        .iter()
        .filter_map(|r| cell_string(r, 0))
        .map(|n| n.to_lowercase())
        .collect();
    let adds: Vec<String> = t
        .deferred
        .iter()
        .filter(|(name, _)| !existing.contains(&name.to_lowercase()))
        .map(|(_, def)| format!("ADD {def}"))
        .collect();
    if adds.is_empty() {
        return Ok(0);
    }
    conn.exec(
        &format!(
            "ALTER TABLE {} {}",
            qualified(&t.db, &t.entry.name),
            adds.join(", ")
        ),
        &format!(
            "adding {} deferred index(es) to {}",
            adds.len(),
            qualified(&t.db, &t.entry.name)
        ),
    )
    .await?;
    Ok(adds.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_options_follow_the_name() {
        assert_eq!(
            database_options(
                b"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `a``b` /*!40100 DEFAULT CHARACTER SET latin1 */",
                "a`b"
            )
            .as_deref(),
            Some("/*!40100 DEFAULT CHARACTER SET latin1 */")
        );
        assert_eq!(database_options(b"CREATE DATABASE `x`", "x"), None);
    }

    #[test]
    fn names_of_qualified_and_plain_objects() {
        assert_eq!(last_name(&tokens("`db`.`x` BEFORE")), Some("x".into()));
        assert_eq!(last_name(&tokens("trg BEFORE")), Some("trg".into()));
        assert_eq!(last_name(&tokens("\"t\" */")), Some("t".into()));
    }

    #[test]
    fn drop_statements_name_the_object_kind() {
        let c = Conflict {
            kind: "package body".into(),
            db: "d".into(),
            name: "p`x".into(),
        };
        assert_eq!(c.drop_sql(), "DROP PACKAGE BODY IF EXISTS `d`.`p``x`");
        assert_eq!(c.to_string(), "package body `d`.`p``x`");
    }
}
