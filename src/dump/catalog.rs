//! The catalog: which databases, tables, columns, views, triggers, routines, events and
//! sequences exist, and their definitions as the server prints them.
//!
//! Not for: writing output (see `stream`, `dir`) or choosing what to dump (see `plan`). Every query
//! here is a small control query on the dump's session, so it sees the same snapshot.

use crate::client::conn::{Session, cell_by_name, cell_string};
use crate::error::{Error, Result};
use crate::format::objects::{
    Account, Column, ColumnKind, Definition, RoutineType, TableInfo, TableKind,
};
use crate::sql::quote::{ident, qualified, string_literal};

fn missing(session: &Session, what: String) -> Error {
    Error::Server {
        server: session.server.clone(),
        context: what,
        message: "the server returned no definition (missing privilege?)".into(),
    }
}

pub async fn list_databases(session: &mut Session) -> Result<Vec<String>> {
    let rows = session.rows("SHOW DATABASES", "listing databases").await?;
    Ok(rows.iter().filter_map(|r| cell_string(r, 0)).collect())
}

pub async fn database_exists(session: &mut Session, db: &str) -> Result<bool> {
    let sql = format!(
        "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {}",
        string_literal(db)
    );
    Ok(!session
        .rows(&sql, &format!("looking up database {}", ident(db)))
        .await?
        .is_empty())
}

/// Tables, views and sequences of `db`, sorted by name bytes (mysqldump's SHOW TABLES order).
pub async fn list_tables(session: &mut Session, db: &str) -> Result<Vec<TableInfo>> {
    let sql = format!(
        "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_ROWS, AVG_ROW_LENGTH \
         FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = {}",
        string_literal(db)
    );
    let rows = session
        .rows(&sql, &format!("listing tables of {}", ident(db)))
        .await?;
    let mut tables: Vec<TableInfo> = rows
        .iter()
        .filter_map(|r| {
            let name = cell_string(r, 0)?;
            let kind = match cell_string(r, 1).as_deref() {
                Some("VIEW") => TableKind::View,
                Some("SEQUENCE") => TableKind::Sequence,
                _ => TableKind::Base,
            };
            Some(TableInfo {
                is_log_table: db == "mysql"
                    && matches!(
                        name.as_str(),
                        "general_log" | "slow_log" | "transaction_registry"
                    ),
                name,
                kind,
                engine: cell_string(r, 2),
                estimated_rows: cell_string(r, 3).and_then(|n| n.parse().ok()).unwrap_or(0),
                avg_row_bytes: cell_string(r, 4).and_then(|n| n.parse().ok()).unwrap_or(0),
                system_versioned: cell_string(r, 1).as_deref() == Some("SYSTEM VERSIONED"),
            })
        })
        .collect();
    tables.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    Ok(tables)
}

pub async fn columns(session: &mut Session, db: &str, table: &str) -> Result<Vec<Column>> {
    let sql = format!(
        "SELECT COLUMN_NAME, DATA_TYPE, EXTRA, COLUMN_DEFAULT FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} ORDER BY ORDINAL_POSITION",
        string_literal(db),
        string_literal(table)
    );
    let rows = session
        .rows(
            &sql,
            &format!("reading columns of {}", qualified(db, table)),
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let name = cell_string(r, 0)?;
            let data_type = cell_string(r, 1).unwrap_or_default();
            let extra = cell_string(r, 2).unwrap_or_default().to_ascii_uppercase();
            let default = cell_string(r, 3).unwrap_or_default().to_ascii_lowercase();
            Some(Column {
                name,
                kind: ColumnKind::from_data_type(&data_type),
                generated: extra.contains("VIRTUAL GENERATED")
                    || extra.contains("STORED GENERATED")
                    || extra.contains("PERSISTENT GENERATED"),
                invisible: extra.contains("INVISIBLE"),
                default_uses_sequence: default.contains("nextval(")
                    || default.contains("next value for"),
            })
        })
        .collect())
}

/// Primary key columns in key order (empty without a primary key).
pub async fn primary_key(session: &mut Session, db: &str, table: &str) -> Result<Vec<String>> {
    let sql = format!(
        "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = {} \
         AND TABLE_NAME = {} AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
        string_literal(db),
        string_literal(table)
    );
    let rows = session
        .rows(
            &sql,
            &format!("reading primary key of {}", qualified(db, table)),
        )
        .await?;
    Ok(rows.iter().filter_map(|r| cell_string(r, 0)).collect())
}

pub async fn show_create_database(session: &mut Session, db: &str) -> Result<String> {
    let what = format!("reading definition of database {}", ident(db));
    let rows = session
        .rows(&format!("SHOW CREATE DATABASE {}", ident(db)), &what)
        .await?;
    rows.first()
        .and_then(|r| cell_string(r, 1))
        .ok_or_else(|| missing(session, what))
}

/// `SHOW CREATE TABLE` (or `SHOW CREATE SEQUENCE`) text.
pub async fn show_create_table(
    session: &mut Session,
    db: &str,
    table: &TableInfo,
) -> Result<String> {
    let (keyword, what) = match table.kind {
        TableKind::Sequence => ("SEQUENCE", "sequence"),
        _ => ("TABLE", "table"),
    };
    let what = format!(
        "reading definition of {what} {}",
        qualified(db, &table.name)
    );
    let rows = session
        .rows(
            &format!("SHOW CREATE {keyword} {}", qualified(db, &table.name)),
            &what,
        )
        .await?;
    rows.first()
        .and_then(|r| cell_string(r, 1))
        .ok_or_else(|| missing(session, what))
}

/// The view's definition with the charset settings it was created under.
pub async fn show_create_view(session: &mut Session, db: &str, view: &str) -> Result<Definition> {
    let what = format!("reading definition of view {}", qualified(db, view));
    // From inside its database the server prints the view's name and same-database tables
    // unqualified, so the dump restores into whatever database the user loads it into.
    session.exec(&format!("USE {}", ident(db)), &what).await?;
    let rows = session
        .rows(&format!("SHOW CREATE VIEW {}", qualified(db, view)), &what)
        .await?;
    let r = rows.first().ok_or_else(|| missing(session, what.clone()))?;
    Ok(Definition {
        name: view.to_string(),
        create: cell_string(r, 1).ok_or_else(|| missing(session, what))?,
        sql_mode: String::new(),
        character_set_client: text_client_charset(cell_by_name(r, "character_set_client")),
        collation_connection: cell_by_name(r, "collation_connection").unwrap_or_default(),
        time_zone: None,
    })
}

/// The client character set a definition is recreated under. Definitions are read as
/// utf8mb4 text (see `Session`), so an object created under another client character set
/// (latin1, binary, ...) is recreated from that text under utf8mb4: its string literals
/// keep their meaning (they take the charset of its `collation_connection`, kept), only
/// the object's recorded `character_set_client` becomes utf8mb4. UTF-8 ones stay.
fn text_client_charset(recorded: Option<String>) -> String {
    match recorded {
        Some(cs)
            if matches!(
                cs.to_ascii_lowercase().as_str(),
                "utf8" | "utf8mb3" | "utf8mb4"
            ) =>
        {
            cs
        }
        _ => "utf8mb4".to_string(),
    }
}

/// The view's column names, for the placeholder that stands in until all tables exist.
pub async fn view_columns(session: &mut Session, db: &str, view: &str) -> Result<Vec<String>> {
    Ok(columns(session, db, view)
        .await?
        .into_iter()
        .map(|c| c.name)
        .collect())
}

/// Reads `SHOW CREATE <kind> db.name` into a `Definition`; `create_column` names the
/// column holding the statement ("SQL Original Statement", "Create Procedure", ...).
async fn show_create_object(
    session: &mut Session,
    kind: &str,
    db: &str,
    name: &str,
    create_column: &str,
) -> Result<Definition> {
    let what = format!(
        "reading definition of {} {}",
        kind.to_ascii_lowercase(),
        qualified(db, name)
    );
    let rows = session
        .rows(
            &format!("SHOW CREATE {kind} {}", qualified(db, name)),
            &what,
        )
        .await?;
    let r = rows.first().ok_or_else(|| missing(session, what.clone()))?;
    Ok(Definition {
        name: name.to_string(),
        create: cell_by_name(r, create_column).ok_or_else(|| missing(session, what))?,
        sql_mode: cell_by_name(r, "sql_mode").unwrap_or_default(),
        character_set_client: text_client_charset(cell_by_name(r, "character_set_client")),
        collation_connection: cell_by_name(r, "collation_connection").unwrap_or_default(),
        time_zone: cell_by_name(r, "time_zone"),
    })
}

/// Names from an information_schema query with one name column, in the query's order.
async fn names(session: &mut Session, sql: &str, context: &str) -> Result<Vec<String>> {
    Ok(session
        .rows(sql, context)
        .await?
        .iter()
        .filter_map(|r| cell_string(r, 0))
        .collect())
}

/// Triggers of one table in the order they fire, so recreating them keeps that order.
pub async fn triggers(session: &mut Session, db: &str, table: &str) -> Result<Vec<Definition>> {
    let sql = format!(
        "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = {} \
         AND EVENT_OBJECT_TABLE = {} ORDER BY EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER",
        string_literal(db),
        string_literal(table)
    );
    let list = names(
        session,
        &sql,
        &format!("listing triggers of {}", qualified(db, table)),
    )
    .await?;
    let mut out = Vec::with_capacity(list.len());
    for name in list {
        out.push(
            show_create_object(session, "TRIGGER", db, &name, "SQL Original Statement").await?,
        );
    }
    Ok(out)
}

pub async fn routines(session: &mut Session, db: &str) -> Result<Vec<(RoutineType, Definition)>> {
    let mut out = Vec::new();
    for rt in [RoutineType::Function, RoutineType::Procedure] {
        let sql = format!(
            "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {} \
             AND ROUTINE_TYPE = '{}' ORDER BY ROUTINE_NAME",
            string_literal(db),
            rt.keyword()
        );
        let list = names(session, &sql, &format!("listing routines of {}", ident(db))).await?;
        let column = match rt {
            RoutineType::Function => "Create Function",
            RoutineType::Procedure => "Create Procedure",
        };
        for name in list {
            out.push((
                rt,
                show_create_object(session, rt.keyword(), db, &name, column).await?,
            ));
        }
    }
    Ok(out)
}

pub async fn events(session: &mut Session, db: &str) -> Result<Vec<Definition>> {
    let sql = format!(
        "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {} \
         ORDER BY EVENT_NAME",
        string_literal(db)
    );
    let list = names(session, &sql, &format!("listing events of {}", ident(db))).await?;
    let mut out = Vec::with_capacity(list.len());
    for name in list {
        out.push(show_create_object(session, "EVENT", db, &name, "Create Event").await?);
    }
    Ok(out)
}

/// The value a restored sequence must continue from.
pub async fn sequence_next_value(session: &mut Session, db: &str, seq: &str) -> Result<String> {
    let what = format!("reading state of sequence {}", qualified(db, seq));
    session
        .first_value(
            &format!("SELECT next_not_cached_value FROM {}", qualified(db, seq)),
            &what,
        )
        .await?
        .ok_or_else(|| missing(session, what))
}

/// Every account of `mysql.user`, users (by user, host) then roles (by name), each with its
/// CREATE USER and grants, as mariadb-dump's `--system=users` reads them: `mariadb.sys`
/// and anonymous users too. MySQL's internal `mysql.*` accounts are left out. The second
/// list names the accounts the server ignores and will not show (error 1133: a host name
/// under `skip_name_resolve`), which mariadb-dump stops at.
pub async fn accounts(session: &mut Session) -> Result<(Vec<Account>, Vec<String>)> {
    let sql = if session.dialect.is_mariadb() {
        "SELECT User, Host, is_role, default_role FROM mysql.user \
         ORDER BY is_role, User, Host"
    } else {
        "SELECT User, Host, 'N', '' FROM mysql.user \
         WHERE User NOT IN ('mysql.sys', 'mysql.session', 'mysql.infoschema') \
         ORDER BY User, Host"
    };
    let rows = session.rows(sql, "listing accounts").await?;
    let mut out = Vec::with_capacity(rows.len());
    let mut ignored = Vec::new();
    let unknown = |e: &Error| e.sql_error_code() == Some(1133);
    for r in &rows {
        let mut a = Account {
            user: cell_string(r, 0).unwrap_or_default(),
            host: cell_string(r, 1).unwrap_or_default(),
            is_role: cell_string(r, 2).as_deref() == Some("Y"),
            default_role: cell_string(r, 3).unwrap_or_default(),
            create: None,
            grants: Vec::new(),
        };
        let what = format!("reading account {}", a.sql_name());
        if !a.is_role {
            let sql = format!("SHOW CREATE USER {}", a.sql_name());
            match session.rows(&sql, &what).await {
                Ok(rows) => a.create = rows.first().and_then(|r| cell_string(r, 0)),
                Err(e) if unknown(&e) => {
                    ignored.push(a.sql_name());
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        let sql = format!("SHOW GRANTS FOR {}", a.sql_name());
        a.grants = session
            .rows(&sql, &what)
            .await?
            .iter()
            .filter_map(|r| cell_string(r, 0))
            .filter(|g| !g.starts_with("SET DEFAULT ROLE"))
            .collect();
        out.push(a);
    }
    Ok((out, ignored))
}

/// `--system=plugins`: (name, library) of the active plugins loaded from a library.
pub async fn plugins(session: &mut Session) -> Result<Vec<(String, String)>> {
    let rows = session.rows("SHOW PLUGINS", "listing plugins").await?;
    Ok(rows
        .iter()
        .filter(|r| cell_by_name(r, "Status").as_deref() == Some("ACTIVE"))
        .filter_map(|r| Some((cell_by_name(r, "Name")?, cell_by_name(r, "Library")?)))
        .collect())
}

/// `--system=udfs`: the loadable functions of `mysql.func` as (name, ret, dl, type).
pub async fn udfs(session: &mut Session) -> Result<Vec<[String; 4]>> {
    let rows = session
        .rows(
            "SELECT name, ret, dl, type FROM mysql.func ORDER BY name",
            "listing loadable functions",
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| [0, 1, 2, 3].map(|i| cell_string(r, i).unwrap_or_default()))
        .collect())
}

/// `--system=servers`: each row of `mysql.servers` as (column, value) pairs.
pub async fn servers(session: &mut Session) -> Result<Vec<Vec<(String, String)>>> {
    let rows = session
        .rows(
            "SELECT Server_name, Wrapper, Host, Db, Username, Password, Port, Socket, Owner \
             FROM mysql.servers ORDER BY Server_name",
            "listing servers",
        )
        .await?;
    let names = [
        "Server_name",
        "Wrapper",
        "Host",
        "Db",
        "Username",
        "Password",
        "Port",
        "Socket",
        "Owner",
    ];
    Ok(rows
        .iter()
        .map(|r| {
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.to_string(), cell_string(r, i).unwrap_or_default()))
                .collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_kinds_follow_the_data_type() {
        assert_eq!(ColumnKind::from_data_type("bigint"), ColumnKind::Number);
        assert_eq!(ColumnKind::from_data_type("DECIMAL"), ColumnKind::Number);
        assert_eq!(ColumnKind::from_data_type("float"), ColumnKind::Float);
        assert_eq!(ColumnKind::from_data_type("bit"), ColumnKind::Bit);
        assert_eq!(ColumnKind::from_data_type("longblob"), ColumnKind::Binary);
        assert_eq!(ColumnKind::from_data_type("point"), ColumnKind::Binary);
        assert_eq!(ColumnKind::from_data_type("datetime"), ColumnKind::Text);
        assert_eq!(ColumnKind::from_data_type("json"), ColumnKind::Text);
        assert_eq!(ColumnKind::from_data_type("enum"), ColumnKind::Enum);
        assert_eq!(ColumnKind::from_data_type("set"), ColumnKind::Text);
    }

    #[test]
    fn kind_names_round_trip() {
        for k in [ColumnKind::Number, ColumnKind::Enum, ColumnKind::Binary] {
            assert_eq!(ColumnKind::from_name(k.name()), Some(k));
        }
        assert_eq!(ColumnKind::from_name("nope"), None);
    }

    #[test]
    fn merge_and_federated_tables_have_no_data_of_their_own() {
        let t = |engine: &str| TableInfo {
            name: "t".into(),
            kind: TableKind::Base,
            engine: Some(engine.into()),
            is_log_table: false,
            estimated_rows: 0,
            avg_row_bytes: 0,
            system_versioned: false,
        };
        assert!(t("MRG_MyISAM").data_lives_elsewhere());
        assert!(t("FEDERATED").data_lives_elsewhere());
        assert!(!t("InnoDB").data_lives_elsewhere());
        assert!(t("InnoDB").is_transactional());
        assert!(!t("Aria").is_transactional());
    }
}
