//! Deterministic snapshots of databases on a real server, and their comparison, to
//! check that a dump restored elsewhere reproduces the original.
//!
//! A [`Snapshot`] maps keys such as ``"`db` table `t`: checksum"`` (sorted) to the
//! text the server reports for them:
//!
//! * database: `SHOW CREATE DATABASE`;
//! * base table: `SHOW CREATE TABLE`, `CHECKSUM TABLE .. EXTENDED`, `COUNT(*)`;
//! * view: `SHOW CREATE VIEW` (definition, with DEFINER / ALGORITHM / SQL SECURITY
//!   as-is, plus character_set_client and collation_connection);
//! * trigger: `SHOW CREATE TRIGGER` minus the name and `Created` (sql_mode,
//!   SQL Original Statement, charsets) plus `ACTION_ORDER`;
//! * procedure / function / package: `SHOW CREATE ...` minus the name;
//! * event: `SHOW CREATE EVENT` minus the name (sql_mode, time_zone, Create Event,
//!   charsets);
//! * sequence: `SHOW CREATE SEQUENCE` and `SELECT * FROM seq` (includes
//!   `next_not_cached_value`).
//!
//! Everything is fetched through one `mariadb --batch` client run per phase and
//! un-escaped, so values are the server's exact text (newlines are real newlines).
use super::{Server, parse_batch, quote_ident, quote_str};
use std::collections::BTreeMap;
use std::fmt;

/// Sorted map from object aspect to what the server reports for it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub entries: BTreeMap<String, String>,
}

/// One key whose value differs between two snapshots (`None`: key absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub key: String,
    pub a: Option<String>,
    pub b: Option<String>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.a, &self.b) {
            (Some(_), None) => write!(f, "{}: only in A", self.key),
            (None, Some(_)) => write!(f, "{}: only in B", self.key),
            (Some(a), Some(b)) => {
                write!(f, "{}: differs", self.key)?;
                let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
                let first = (0..la.len().max(lb.len()))
                    .find(|&i| la.get(i) != lb.get(i))
                    .unwrap_or(0);
                let show = |l: Option<&&str>| match l {
                    Some(l) => format!("{:?}", truncate(l, 400)),
                    None => "(no such line)".to_string(),
                };
                write!(
                    f,
                    "\n    first difference at line {}:\n    A: {}\n    B: {}",
                    first + 1,
                    show(la.get(first)),
                    show(lb.get(first))
                )
            }
            (None, None) => write!(f, "{}: (absent in both?)", self.key),
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

/// Every key whose value differs (or exists on one side only), in key order.
pub fn diff(a: &Snapshot, b: &Snapshot) -> Vec<Difference> {
    let mut keys: Vec<&String> = a.entries.keys().chain(b.entries.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (va, vb) = (a.entries.get(k), b.entries.get(k));
            (va != vb).then(|| Difference {
                key: k.clone(),
                a: va.cloned(),
                b: vb.cloned(),
            })
        })
        .collect()
}

/// Panics with the report of [`check_same`] unless `a` and `b` are identical.
#[track_caller]
pub fn assert_same(a: &Snapshot, b: &Snapshot) {
    if let Err(report) = check_same(a, b) {
        panic!("{report}");
    }
}

/// `Err` with a readable report (first differing object in detail, then the list
/// of all differing keys) unless `a` and `b` are identical.
pub fn check_same(a: &Snapshot, b: &Snapshot) -> Result<(), String> {
    let diffs = diff(a, b);
    if diffs.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "snapshots differ in {} of {}/{} entries; first: {}\nall differing keys:\n",
        diffs.len(),
        a.entries.len(),
        b.entries.len(),
        diffs[0]
    );
    for d in &diffs {
        msg.push_str(&format!("  - {}\n", d.key));
    }
    Err(msg)
}

const BOUNDARY: &str = "--rdump-snapshot-boundary-5b1e9c--";

/// Run `queries` in one client call; return each query's rows.
fn run_batch(server: &Server, queries: &[String]) -> Vec<Vec<Vec<String>>> {
    if queries.is_empty() {
        return Vec::new();
    }
    let mut script = String::new();
    for q in queries {
        script.push_str(q);
        script.push_str(";\nSELECT '");
        script.push_str(BOUNDARY);
        script.push_str("';\n");
    }
    let out = server.sql(&script);
    let mut results = Vec::new();
    let mut current = String::new();
    for line in out.split_inclusive('\n') {
        if line.trim_end_matches('\n') == BOUNDARY {
            results.push(parse_batch(&current));
            current.clear();
        } else {
            current.push_str(line);
        }
    }
    assert_eq!(
        results.len(),
        queries.len(),
        "snapshot: result count mismatch"
    );
    results
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Table,
    View,
    Sequence,
}

/// Take a snapshot of `databases` on `server` (see the module doc for what it holds).
pub fn snapshot_of(server: &Server, databases: &[&str]) -> Snapshot {
    // Phase 1: list the objects of every database.
    let mut listing = Vec::new();
    for db in databases {
        let qdb = quote_str(db);
        listing.push(format!("SHOW CREATE DATABASE {}", quote_ident(db)));
        listing.push(format!(
            "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = {qdb}"
        ));
        listing.push(format!(
            "SELECT TRIGGER_NAME, ACTION_ORDER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {qdb}"
        ));
        listing.push(format!(
            "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {qdb}"
        ));
        listing.push(format!(
            "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {qdb}"
        ));
    }
    let lists = run_batch(server, &listing);

    let mut snap = Snapshot::default();
    // Phase 2: one query per aspect; `aspects[i]` names the key of `detail[i]` and
    // which columns to keep (by label).
    let mut detail: Vec<String> = Vec::new();
    let mut aspects: Vec<(String, Vec<&'static str>)> = Vec::new();
    for (i, db) in databases.iter().enumerate() {
        let [create_db, tables, triggers, routines, events] = &lists[i * 5..i * 5 + 5] else {
            unreachable!()
        };
        let qd = quote_ident(db);
        let prefix = |what: &str, name: &str| format!("{qd} {what} {}", quote_ident(name));
        snap.entries.insert(
            format!("{qd} database: SHOW CREATE DATABASE"),
            create_db
                .first()
                .and_then(|r| r.get(1))
                .cloned()
                .unwrap_or_default(),
        );

        let mut objs: Vec<(String, Kind)> = tables
            .iter()
            .map(|r| {
                let kind = match r[1].as_str() {
                    "VIEW" => Kind::View,
                    "SEQUENCE" => Kind::Sequence,
                    _ => Kind::Table, // BASE TABLE, SYSTEM VERSIONED
                };
                (r[0].clone(), kind)
            })
            .collect();
        objs.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, kind) in objs {
            let q = format!("{qd}.{}", quote_ident(&name));
            match kind {
                Kind::Table => {
                    let p = prefix("table", &name);
                    detail.push(format!("SHOW CREATE TABLE {q}"));
                    aspects.push((format!("{p}: SHOW CREATE TABLE"), vec!["#1"]));
                    detail.push(format!("SELECT COUNT(*) FROM {q}"));
                    aspects.push((format!("{p}: row count"), vec!["#0"]));
                    detail.push(format!("CHECKSUM TABLE {q} EXTENDED"));
                    aspects.push((format!("{p}: CHECKSUM TABLE EXTENDED"), vec!["#1"]));
                }
                Kind::View => {
                    let p = prefix("view", &name);
                    detail.push(format!("SHOW CREATE VIEW {q}"));
                    aspects.push((
                        format!("{p}: SHOW CREATE VIEW"),
                        vec!["#1", "character_set_client=#2", "collation_connection=#3"],
                    ));
                }
                Kind::Sequence => {
                    let p = prefix("sequence", &name);
                    detail.push(format!("SHOW CREATE SEQUENCE {q}"));
                    aspects.push((format!("{p}: SHOW CREATE SEQUENCE"), vec!["#1"]));
                    detail.push(format!("SELECT * FROM {q}"));
                    aspects.push((format!("{p}: state (SELECT * FROM seq)"), vec!["*"]));
                }
            }
        }

        let mut trg: Vec<&Vec<String>> = triggers.iter().collect();
        trg.sort();
        for r in trg {
            let p = prefix("trigger", &r[0]);
            snap.entries
                .insert(format!("{p}: ACTION_ORDER"), r[1].clone());
            detail.push(format!("SHOW CREATE TRIGGER {qd}.{}", quote_ident(&r[0])));
            // Trigger, sql_mode, SQL Original Statement, character_set_client,
            // collation_connection, Database Collation, Created (dropped).
            aspects.push((
                format!("{p}: SHOW CREATE TRIGGER"),
                vec![
                    "sql_mode=#1",
                    "#2",
                    "character_set_client=#3",
                    "collation_connection=#4",
                    "Database Collation=#5",
                ],
            ));
        }

        let mut rts: Vec<&Vec<String>> = routines.iter().collect();
        rts.sort_by(|a, b| (&a[1], &a[0]).cmp(&(&b[1], &b[0])));
        for r in rts {
            let kind = r[1].as_str(); // PROCEDURE, FUNCTION, PACKAGE, PACKAGE BODY
            let p = prefix(&kind.to_lowercase(), &r[0]);
            detail.push(format!("SHOW CREATE {kind} {qd}.{}", quote_ident(&r[0])));
            // name, sql_mode, Create ..., character_set_client, collation_connection,
            // Database Collation.
            aspects.push((
                format!("{p}: SHOW CREATE {kind}"),
                vec![
                    "sql_mode=#1",
                    "#2",
                    "character_set_client=#3",
                    "collation_connection=#4",
                    "Database Collation=#5",
                ],
            ));
        }

        let mut evs: Vec<&String> = events.iter().map(|r| &r[0]).collect();
        evs.sort();
        for name in evs {
            let p = prefix("event", name);
            detail.push(format!("SHOW CREATE EVENT {qd}.{}", quote_ident(name)));
            // Event, sql_mode, time_zone, Create Event, character_set_client,
            // collation_connection, Database Collation.
            aspects.push((
                format!("{p}: SHOW CREATE EVENT"),
                vec![
                    "sql_mode=#1",
                    "time_zone=#2",
                    "#3",
                    "character_set_client=#4",
                    "collation_connection=#5",
                    "Database Collation=#6",
                ],
            ));
        }
    }

    let results = run_batch(server, &detail);
    for ((key, cols), rows) in aspects.into_iter().zip(results) {
        snap.entries.insert(key, render(&rows, &cols));
    }
    snap
}

/// Render the selected columns of `rows`: `"#n"` is column n alone, `"label=#n"`
/// a labelled line, `"*"` all columns tab-separated.
fn render(rows: &[Vec<String>], cols: &[&str]) -> String {
    let mut out = String::new();
    for row in rows {
        for spec in cols {
            if !out.is_empty() {
                out.push('\n');
            }
            if *spec == "*" {
                out.push_str(&row.join("\t"));
                continue;
            }
            let (label, idx) = match spec.split_once("=#") {
                Some((label, idx)) => (Some(label), idx),
                None => (None, spec.trim_start_matches('#')),
            };
            let idx: usize = idx.parse().expect("column index");
            let value = row
                .get(idx)
                .map(String::as_str)
                .unwrap_or("(missing column)");
            match label {
                Some(label) => out.push_str(&format!("{label}: {value}")),
                None => out.push_str(value),
            }
        }
    }
    out
}

/// Every row of `db`.`table` (invisible columns included) as one exact text line,
/// sorted: FLOATs as exact DOUBLEs, strings / binaries / geometries / BITs as hex,
/// ENUM / SET as `index:hex(text)`, TIMESTAMPs in UTC. First element: the header.
pub fn table_rows(server: &Server, db: &str, table: &str) -> Vec<String> {
    let cols = server.sql_rows(&format!(
        "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} ORDER BY ORDINAL_POSITION",
        quote_str(db),
        quote_str(table)
    ));
    let exprs: Vec<String> = cols
        .iter()
        .map(|c| {
            let q = quote_ident(&c[0]);
            match c[1].as_str() {
                "float" => format!("CAST({q} AS DOUBLE)"),
                "enum" | "set" => format!("CONCAT({q} + 0, ':', HEX({q}))"),
                "tinyint" | "smallint" | "mediumint" | "int" | "bigint" | "decimal" | "double"
                | "year" | "date" | "time" | "datetime" | "timestamp" => q,
                _ => format!("HEX({q})"),
            }
        })
        .collect();
    let order: Vec<String> = (1..=exprs.len()).map(|i| i.to_string()).collect();
    let out = server.sql(&format!(
        "SET time_zone = '+00:00';\nSELECT {} FROM {}.{} ORDER BY {}",
        exprs.join(", "),
        quote_ident(db),
        quote_ident(table),
        order.join(", ")
    ));
    let header = cols
        .iter()
        .map(|c| c[0].as_str())
        .collect::<Vec<_>>()
        .join("\t");
    std::iter::once(header)
        .chain(out.lines().map(str::to_string))
        .collect()
}

/// Which rows of `db`.`table` differ between two servers: up to `max` rows only in
/// A and only in B (multiset difference), each cut to 300 characters.
pub fn row_diff(a: &Server, b: &Server, db: &str, table: &str, max: usize) -> String {
    let (ra, rb) = (table_rows(a, db, table), table_rows(b, db, table));
    let mut out = format!("columns: {}\n", ra[0]);
    fn count(rows: &[String]) -> BTreeMap<&str, i64> {
        let mut m: BTreeMap<&str, i64> = BTreeMap::new();
        for r in rows {
            *m.entry(r.as_str()).or_default() += 1;
        }
        m
    }
    let (ca, cb) = (count(&ra[1..]), count(&rb[1..]));
    for (label, x, y) in [("only in A", &ca, &cb), ("only in B", &cb, &ca)] {
        let extra: Vec<&str> = x
            .iter()
            .flat_map(|(row, n)| {
                let surplus = n - y.get(row).copied().unwrap_or(0);
                std::iter::repeat_n(*row, surplus.max(0) as usize)
            })
            .collect();
        out.push_str(&format!("{label}: {} row(s)\n", extra.len()));
        for row in extra.iter().take(max) {
            out.push_str(&format!("  {}\n", truncate(row, 300)));
        }
    }
    out
}
