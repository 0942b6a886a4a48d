//! What a dump covers and how its sessions read: the databases and tables selected by the
//! plan (checked to exist, or skipped under `--force`), and the session settings under which
//! definitions and rows are read as mysqldump reads them.
//!
//! Shared by both orchestrators (`stream`, `dir`), below them. Not for: consistency (see
//! `snapshot`, `group`) or reading rows.

use crate::client::conn::Session;
use crate::dump::catalog;
use crate::error::{Error, Result};
use crate::format::objects::{TableInfo, TableKind};
use crate::plan::{Plan, Scope};

/// The databases to dump and, for each, the tables (empty = all). A database that does
/// not exist is an error, or with `skipped` (`--force`) left out and its error put there.
pub(crate) async fn resolve_selection(
    s: &mut Session,
    plan: &Plan,
    mut skipped: Option<&mut Vec<Error>>,
) -> Result<Vec<(String, Vec<String>)>> {
    let wanted: Vec<(String, Vec<String>)> = match &plan.selection.scope {
        Scope::AllDatabases => catalog::list_databases(s)
            .await?
            .into_iter()
            .filter(|d| !crate::sql::dialect::Dialect::is_skipped_by_all_databases(d))
            .filter(|d| !plan.selection.ignore_databases.contains(d))
            .map(|d| (d, Vec::new()))
            .collect(),
        Scope::Databases(dbs) => dbs.iter().map(|d| (d.clone(), Vec::new())).collect(),
        Scope::Database { db, tables } => vec![(db.clone(), tables.clone())],
    };
    let mut found = Vec::with_capacity(wanted.len());
    for (db, tables) in wanted {
        if catalog::database_exists(s, &db).await? {
            found.push((db, tables));
            continue;
        }
        let e = Error::NotFound {
            server: s.server.clone(),
            message: format!(
                "Got error: {} when selecting the database",
                not_selectable(s, &db).await
            ),
        };
        match skipped.as_deref_mut() {
            Some(skipped) => skipped.push(e),
            None => return Err(e),
        }
    }
    Ok(found)
}

/// Why `db`, absent from information_schema, cannot be dumped, in the server's words as
/// mariadb-dump gets them from selecting it: 1044 (access denied) for a user who may not
/// see it, whether or not it exists, else 1049 (unknown database).
async fn not_selectable(s: &mut Session, db: &str) -> String {
    let sql = format!("SHOW CREATE DATABASE {}", crate::sql::quote::ident(db));
    match s.rows(&sql, "selecting the database").await {
        Err(Error::Server { message, .. }) => message,
        _ => crate::error::server_error(1049, &format!("Unknown database '{db}'")),
    }
}

/// The tables of `db` to dump, honouring the named tables and `--ignore-table`. A named
/// table that does not exist is an error, or with `skipped` (`--force`) left out and its
/// error put there.
pub(crate) async fn tables_of(
    s: &mut Session,
    plan: &Plan,
    db: &str,
    named: &[String],
    mut skipped: Option<&mut Vec<Error>>,
) -> Result<Vec<TableInfo>> {
    let all = catalog::list_tables(s, db).await?;
    let ignored = |t: &TableInfo| {
        plan.selection
            .ignore_tables
            .iter()
            .any(|(d, n)| d == db && *n == t.name)
    };
    if named.is_empty() {
        return Ok(all.into_iter().filter(|t| !ignored(t)).collect());
    }
    let mut out = Vec::with_capacity(named.len());
    for name in named {
        match all.iter().find(|t| &t.name == name) {
            Some(t) if !ignored(t) => out.push(t.clone()),
            Some(_) => {}
            None => {
                let e = Error::IllegalTable {
                    server: s.server.clone(),
                    message: format!("Couldn't find table: \"{name}\" in database `{db}`"),
                };
                match skipped.as_deref_mut() {
                    Some(skipped) => skipped.push(e),
                    None => return Err(e),
                }
            }
        }
    }
    Ok(out)
}

/// The tables of each selected database as listed at one moment (while DDL is held off,
/// see `stream`), with the errors of named tables found missing (`--force`).
pub(crate) type Catalog = std::collections::HashMap<String, (Result<Vec<TableInfo>>, Vec<Error>)>;

/// Lists the tables of every database of `selection` (as `tables_of`).
pub(crate) async fn list_catalog(
    s: &mut Session,
    plan: &Plan,
    selection: &[(String, Vec<String>)],
) -> Catalog {
    let mut catalog = Catalog::new();
    for (db, named) in selection {
        let mut missing = Vec::new();
        let listed = tables_of(s, plan, db, named, plan.force.then_some(&mut missing)).await;
        catalog.insert(db.clone(), (listed, missing));
    }
    catalog
}

/// The tables of `catalog` a session opens to keep their definitions: tables of a
/// transactional engine (not views, not the log tables), as (database, table). Not
/// MyISAM or Aria tables: a SELECT on one waits for its table lock behind a writer that
/// the lock holding DDL off stops (a cycle through rdump, seen in tests/consistency.rs);
/// the single-transaction stream reads them as they are when it reads them, mysqldump's
/// rule, DDL included.
pub(crate) fn catalog_tables(catalog: &Catalog) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (db, (listed, _)) in catalog {
        if let Ok(tables) = listed {
            out.extend(
                tables
                    .iter()
                    .filter(|t| {
                        t.kind != TableKind::View && !t.is_log_table && t.is_transactional()
                    })
                    .map(|t| (db.clone(), t.name.clone())),
            );
        }
    }
    out
}

/// The tables of `tables` whose definitions a DDL statement is changing right now, by
/// name: base tables the server listed without an engine ("skipped since its definition
/// is being modified by concurrent DDL statement"). Such a statement holds the table
/// while a lock that holds DDL off (BACKUP STAGE BLOCK_DDL, FTWRL) is granted, and ends,
/// with its binlog event, after that lock is released: the table is then at neither its
/// old nor its new definition at the coordinates, and opening it waits for the statement,
/// which waits for the lock. The caller lets go of its lock and takes it again.
pub(crate) fn changing<'a>(tables: impl Iterator<Item = (&'a str, &'a TableInfo)>) -> Vec<String> {
    tables
        .filter(|(_, t)| t.kind == TableKind::Base && t.engine.is_none())
        .map(|(db, t)| crate::sql::quote::qualified(db, &t.name))
        .collect()
}

/// `changing` over a catalog; a database whose listing waited too long for a table's
/// metadata lock (1205: the listing then waits behind such a statement, under a bound the
/// caller set) counts as changing too.
pub(crate) fn catalog_changing(catalog: &Catalog) -> Vec<String> {
    let mut out = Vec::new();
    for (db, (listed, _)) in catalog {
        match listed {
            Ok(tables) => out.extend(changing(tables.iter().map(|t| (db.as_str(), t)))),
            Err(e) if e.sql_error_code() == Some(1205) => {
                out.push(format!("a table of {}", crate::sql::quote::ident(db)))
            }
            Err(_) => {}
        }
    }
    out
}

/// How often a dump lets go of its lock and takes it again while DDL statements are
/// changing tables it dumps (see `changing`), before it fails naming them.
pub(crate) const DDL_RETRIES: u32 = 30;

/// Session settings under which definitions and rows are read as mysqldump reads them.
pub(crate) async fn prepare_session(s: &mut Session, plan: &Plan) -> Result<()> {
    let mut sql = vec![
        "SET SESSION SQL_QUOTE_SHOW_CREATE=1".to_string(),
        format!(
            "/*!40100 SET @@SQL_MODE='{}' */",
            plan.shape.reading_sql_mode()
        ),
        "SET SESSION net_read_timeout=86400, SESSION net_write_timeout=86400".to_string(),
    ];
    if plan.shape.tz_utc {
        sql.push("/*!40103 SET TIME_ZONE='+00:00' */".to_string());
    }
    if s.dialect.is_mariadb() {
        sql.push("SET SESSION max_statement_time=0".to_string());
    }
    if let Some(q) = s.dialect.fresh_statistics_sql() {
        sql.push(q.to_string());
    }
    for q in sql {
        s.exec(&q, "preparing the session").await?;
    }
    Ok(())
}
