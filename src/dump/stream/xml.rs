//! The single stream's `--xml` document: what mariadb-dump 10.11 writes with `--xml`, in
//! its order and from the same server answers, so the bytes are the same.
//!
//! Per database (`<database name="...">`): with a table list (`db t1 t2`) the routines
//! first, then sequences, tables (in the order named) and events; otherwise sequences,
//! tables and views (by name), events, routines. A table is its `<table_structure>` (the
//! INFORMATION_SCHEMA.COLUMNS, SHOW KEYS and SHOW TABLE STATUS rows as elements), its
//! `<table_data>` and its `<triggers>`; a view is its structure only (mariadb-dump writes
//! no view definition in XML). Sequences are mariadb-dump's SQL text, raw inside the
//! document, as it writes them. The rows are read as `dump::read::TableRead::plain` says,
//! by the pool's readers when there are some (chunks written in key order), else on the
//! dump's session.
//!
//! Not for: the document's header and footer, consistency, or refusing the options XML
//! cannot express (see `options::resolve`).

use std::sync::Arc;

use super::{FLUSH_AT, Summary, flush_if_full, rows_read, tolerate};
use crate::client::conn::Session;
use crate::dump::catalog;
use crate::dump::chunk;
use crate::dump::pool::{ChunkRead, ReaderPool};
use crate::dump::read::TableRead;
use crate::error::{Error, Result};
use crate::format::charset::TextCharset;
use crate::format::encode::sql::{InsertStyle, StatementJoiner};
use crate::format::encode::xml::{
    XmlRowEncoder, fix_for_comment, push_comment, push_open_tag, push_row_element,
};
use crate::format::objects::{Column, ColumnKind, TableInfo, TableKind};
use crate::format::script;
use crate::format::shape::InsertMode;
use crate::output::sink::Sink;
use crate::plan::{Plan, Scope};
use crate::sql::quote::{ident, qualified, string_literal};

/// A server answer: its column names and rows of raw values.
struct Answer {
    columns: Vec<String>,
    rows: Vec<Vec<Option<Vec<u8>>>>,
}

async fn answer(s: &mut Session, sql: &str, context: &str) -> Result<Answer> {
    let rows = s.rows(sql, context).await?;
    let columns = match rows.first() {
        Some(r) => r
            .columns_ref()
            .iter()
            .map(|c| c.name_str().into_owned())
            .collect(),
        None => Vec::new(),
    };
    let rows = rows
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| crate::client::conn::cell_bytes(r, i))
                .collect::<Vec<_>>()
        })
        .collect();
    Ok(Answer { columns, rows })
}

/// A comment, only when `--comments` was given with `--xml`.
fn comment(plan: &Plan, text: &str, out: &mut Vec<u8>) {
    if plan.shape.comments {
        push_comment(&name_charset(plan).encode(text), out);
    }
}

/// The character set mariadb-dump reads names and structure in: the connection's
/// (`--default-character-set`). Definitions (triggers, routines, events) it reads as
/// binary: they stay the UTF-8 the server stores.
fn name_charset(plan: &Plan) -> TextCharset {
    TextCharset::of(&plan.connection.character_set)
}

/// A structure answer (read in utf8mb4) in the connection's character set.
fn in_charset(plan: &Plan, a: &mut Answer) {
    let cs = name_charset(plan);
    let convert = |v: &mut Vec<u8>| {
        if let Ok(text) = std::str::from_utf8(v) {
            let converted = cs.encode(text).into_owned();
            *v = converted;
        }
    };
    for r in &mut a.rows {
        r.iter_mut().flatten().for_each(convert);
    }
}

/// One database's element, as mariadb-dump's `dump_all_tables_in_db` (whole databases) or
/// `dump_selected_tables` (`db t1 t2`) writes it. `log_tables` are the mysql database's
/// general_log, slow_log and transaction_registry: structure only, the first two at the
/// start and the last at the end.
#[allow(clippy::too_many_arguments)]
pub(super) async fn dump_database(
    s: &mut Session,
    plan: &Plan,
    db: &str,
    tables: &[TableInfo],
    log_tables: &[TableInfo],
    out: &mut Sink,
    summary: &mut Summary,
    pool: &mut Option<ReaderPool>,
) -> Result<()> {
    let sel = &plan.selection;
    let named = matches!(&sel.scope, Scope::Database { tables, .. } if !tables.is_empty());
    let mut buf = Vec::new();
    push_open_tag(
        "",
        "database",
        &[("name", &name_charset(plan).encode(db))],
        "\n",
        &mut buf,
    );
    out.write_all(&buf)?;
    for t in log_tables
        .iter()
        .filter(|t| t.name != "transaction_registry")
    {
        let r = structure(s, plan, db, t, out).await.map(drop);
        tolerate(plan, summary, r)?;
    }
    if named && sel.routines {
        let r = routines(s, plan, db, out).await;
        tolerate(plan, summary, r)?;
    }
    if !sel.no_create_info {
        for t in tables.iter().filter(|t| t.kind == TableKind::Sequence) {
            let r = sequence(s, plan, db, t, out).await;
            tolerate(plan, summary, r)?;
        }
    }
    for t in tables.iter().filter(|t| t.kind != TableKind::Sequence) {
        let r = table(s, plan, db, t, out, summary, pool).await;
        tolerate(plan, summary, r)?;
        if sel.triggers {
            let r = triggers(s, plan, db, &t.name, out).await;
            tolerate(plan, summary, r)?;
        }
    }
    if sel.events {
        let r = events(s, plan, db, out).await;
        tolerate(plan, summary, r)?;
    }
    if !named && sel.routines {
        let r = routines(s, plan, db, out).await;
        tolerate(plan, summary, r)?;
    }
    for t in log_tables
        .iter()
        .filter(|t| t.name == "transaction_registry")
    {
        let r = structure(s, plan, db, t, out).await.map(drop);
        tolerate(plan, summary, r)?;
    }
    out.write_all(b"</database>\n")
}

/// A sequence: its comment, then mariadb-dump's SQL (CREATE SEQUENCE and SETVAL) as text.
async fn sequence(
    s: &mut Session,
    plan: &Plan,
    db: &str,
    t: &TableInfo,
    out: &mut Sink,
) -> Result<()> {
    let create = catalog::show_create_table(s, db, t).await?;
    let next = catalog::sequence_next_value(s, db, &t.name).await?;
    let mut buf = Vec::new();
    comment(
        plan,
        &format!(
            "\n--\n-- Sequence structure for {}\n--\n\n",
            fix_for_comment(&ident(&t.name))
        ),
        &mut buf,
    );
    let mut shape = plan.shape.clone();
    shape.comments = false;
    let text = script::sequence_structure(&shape, &t.name, &create, Some(&next));
    buf.extend_from_slice(&TextCharset::of(&plan.connection.character_set).script(&text));
    out.write_all(&buf)
}

/// The columns of a table or view, as `<field>` elements want them and as the rows are
/// read: INFORMATION_SCHEMA.COLUMNS under mariadb-dump's column names, in column order.
async fn fields(s: &mut Session, db: &str, name: &str) -> Result<(Answer, Vec<Column>)> {
    let sql = format!(
        "SELECT `COLUMN_NAME` AS `Field`, `COLUMN_TYPE` AS `Type`, `IS_NULLABLE` AS `Null`, \
         `COLUMN_KEY` AS `Key`, `COLUMN_DEFAULT` AS `Default`, `EXTRA` AS `Extra`, \
         `COLUMN_COMMENT` AS `Comment`, `DATA_TYPE` FROM `INFORMATION_SCHEMA`.`COLUMNS` \
         WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} ORDER BY ORDINAL_POSITION",
        string_literal(db),
        string_literal(name)
    );
    let mut a = answer(
        s,
        &sql,
        &format!("reading columns of {}", qualified(db, name)),
    )
    .await?;
    let columns = a
        .rows
        .iter()
        .map(|r| {
            let text = |i: usize| {
                r.get(i)
                    .cloned()
                    .flatten()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default()
            };
            Column {
                name: text(0),
                kind: ColumnKind::from_data_type(&text(7)),
                generated: false,
                invisible: false,
                default_uses_sequence: false,
            }
        })
        .collect();
    // DATA_TYPE is ours, not an attribute.
    a.columns.truncate(7);
    for r in &mut a.rows {
        r.truncate(7);
    }
    Ok((a, columns))
}

/// `<table_structure>`: a `<field>` per column, a `<key>` per index column, `<options>`
/// (SHOW TABLE STATUS, with `--create-options`). Returns the columns.
async fn structure(
    s: &mut Session,
    plan: &Plan,
    db: &str,
    t: &TableInfo,
    out: &mut Sink,
) -> Result<Vec<Column>> {
    let (mut fields, columns) = fields(s, db, &t.name).await?;
    in_charset(plan, &mut fields);
    if plan.selection.no_create_info {
        return Ok(columns);
    }
    let mut buf = Vec::new();
    comment(
        plan,
        &format!(
            "\n--\n-- Table structure for table {}\n--\n\n",
            fix_for_comment(&ident(&t.name))
        ),
        &mut buf,
    );
    push_open_tag(
        "\t",
        "table_structure",
        &[("name", &name_charset(plan).encode(&t.name))],
        "\n",
        &mut buf,
    );
    for row in &fields.rows {
        push_row_element("field", &fields.columns, row, None, &mut buf);
    }
    let what = format!("reading keys of {}", qualified(db, &t.name));
    let mut keys = answer(
        s,
        &format!("SHOW KEYS FROM {}", qualified(db, &t.name)),
        &what,
    )
    .await?;
    in_charset(plan, &mut keys);
    for row in &keys.rows {
        push_row_element("key", &keys.columns, row, None, &mut buf);
    }
    if plan.shape.create_options {
        let sql = format!(
            "SHOW TABLE STATUS FROM {} LIKE {}",
            ident(db),
            string_literal(&like_pattern(&t.name))
        );
        let what = format!("reading status of {}", qualified(db, &t.name));
        let mut status = answer(s, &sql, &what).await?;
        in_charset(plan, &mut status);
        match status.rows.first() {
            Some(row) => push_row_element("options", &status.columns, row, None, &mut buf),
            None => eprintln!(
                "Error: Couldn't read status information for table {}",
                ident(&t.name)
            ),
        }
    }
    buf.extend_from_slice(b"\t</table_structure>\n");
    out.write_all(&buf)?;
    Ok(columns)
}

/// The mysql tables whose rows mariadb-dump leaves out by default: the InnoDB statistics
/// (unless `--replace` or `--insert-ignore`) and, without `--events`, mysql.event.
fn skips_system_rows(plan: &Plan, db: &str, table: &str) -> bool {
    if !db.eq_ignore_ascii_case("mysql") {
        return false;
    }
    let stats = ["innodb_index_stats", "innodb_table_stats"]
        .iter()
        .any(|t| table.eq_ignore_ascii_case(t));
    (stats && plan.shape.insert_mode == InsertMode::Insert)
        || (!plan.selection.events && table.eq_ignore_ascii_case("event"))
}

/// A name as a LIKE pattern matching only itself.
fn like_pattern(name: &str) -> String {
    let mut p = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '\\' | '_' | '%') {
            p.push('\\');
        }
        p.push(c);
    }
    p
}

/// A table (or view): its structure, then for a base table its rows.
async fn table(
    s: &mut Session,
    plan: &Plan,
    db: &str,
    t: &TableInfo,
    out: &mut Sink,
    summary: &mut Summary,
    pool: &mut Option<ReaderPool>,
) -> Result<()> {
    let sel = &plan.selection;
    if plan.verbose {
        eprintln!("-- Dumping table {}", qualified(db, &t.name));
    }
    let columns = structure(s, plan, db, t, out).await?;
    if t.kind != TableKind::Base
        || skips_system_rows(plan, db, &t.name)
        || !sel.wants_rows(db, &t.name)
        || t.data_lives_elsewhere()
        || columns.is_empty()
    {
        return Ok(());
    }
    let pk = if plan.shape.order_by_primary {
        catalog::primary_key(s, db, &t.name).await?
    } else {
        Vec::new()
    };
    let read = TableRead::plain(
        &s.dialect,
        db,
        &t.name,
        &columns,
        sel.where_clause.as_deref(),
        &pk,
    );
    let named: Vec<(Vec<u8>, ColumnKind)> = columns
        .iter()
        .map(|c| (name_charset(plan).encode(&c.name).into_owned(), c.kind))
        .collect();
    let enc = XmlRowEncoder::new(&named, plan.shape.hex_blob);

    let mut buf: Vec<u8> = Vec::with_capacity(FLUSH_AT + 64 * 1024);
    comment(
        plan,
        &format!(
            "\n--\n-- Dumping data for table {}\n--\n",
            fix_for_comment(&ident(&t.name))
        ),
        &mut buf,
    );
    if let Some(w) = &sel.where_clause {
        comment(
            plan,
            &format!("-- WHERE:  {}\n", fix_for_comment(w)),
            &mut buf,
        );
    }
    if !pk.is_empty() {
        let cols: Vec<String> = pk.iter().map(|c| ident(c)).collect();
        comment(
            plan,
            &format!("-- ORDER BY:  {}\n", fix_for_comment(&cols.join(","))),
            &mut buf,
        );
    }
    push_open_tag(
        "\t",
        "table_data",
        &[("name", &name_charset(plan).encode(&t.name))],
        "\n",
        &mut buf,
    );
    out.write_all(&buf)?;
    buf.clear();

    let context = format!("dumping table {}", qualified(db, &t.name));
    // As the SQL stream: the pool reads what its sessions hold, in the same snapshot.
    let pool = pool
        .as_mut()
        .filter(|p| !p.is_empty() && t.is_transactional() && p.reads(db, &t.name) && pk.is_empty());
    let read_result = match pool {
        Some(pool) => {
            let rows = plan.stream.chunk_rows_for(t.avg_row_bytes);
            let chunks = chunk::plan_chunks(s, db, &t.name, rows).await?.chunks;
            let read = Arc::new(read);
            let enc = Arc::new(enc);
            let style = InsertStyle {
                mode: plan.shape.insert_mode,
                delayed: false,
                extended: false,
                hex_blob: plan.shape.hex_blob,
                net_buffer_length: plan.shape.net_buffer_length,
                charset: TextCharset::of(&plan.connection.character_set),
            };
            let chunks = chunks
                .into_iter()
                .map(|c| ChunkRead {
                    read: Arc::clone(&read),
                    context: format!("{context} chunk {}", c.index),
                    range: c.range,
                    quoted_table: ident(&t.name),
                    style,
                    xml: Some(Arc::clone(&enc)),
                })
                .collect();
            // `extended` off: the joiner passes whole rows on as they come.
            let joiner = StatementJoiner::new(&ident(&t.name), None, style);
            pool.read_ordered(chunks, joiner, |bytes| out.write_all(bytes))
                .await
        }
        None => {
            let sql = read.select_sql(None);
            let r = s
                .stream(&sql, &context, |cells| {
                    enc.push_row(cells, &mut buf);
                    flush_if_full(out, &mut buf)
                })
                .await;
            // Rows read before an error go out, as mariadb-dump's do.
            if matches!(r, Ok(_) | Err(Error::Rows { .. })) {
                out.write_all(&buf)?;
            }
            r
        }
    };
    let rows = rows_read(plan, summary, read_result)?;
    out.write_all(b"\t</table_data>\n")?;
    summary.rows += rows.unwrap_or(0);
    summary.tables += 1;
    Ok(())
}

/// `<triggers name="t">` with a `<trigger>` per trigger (SHOW CREATE TRIGGER), if any.
async fn triggers(
    s: &mut Session,
    plan: &Plan,
    db: &str,
    table: &str,
    out: &mut Sink,
) -> Result<()> {
    let what = format!("reading triggers of {}", qualified(db, table));
    let sql = format!(
        "SELECT TRIGGER_NAME FROM INFORMATION_SCHEMA.TRIGGERS \
         WHERE EVENT_OBJECT_SCHEMA = {} AND EVENT_OBJECT_TABLE = {}",
        string_literal(db),
        string_literal(table)
    );
    let names = answer(s, &sql, &what).await?;
    if names.rows.is_empty() {
        return Ok(());
    }
    let mut buf = Vec::new();
    push_open_tag(
        "\t",
        "triggers",
        &[("name", &name_charset(plan).encode(table))],
        "\n",
        &mut buf,
    );
    for row in &names.rows {
        let name = text_of(row, 0);
        let create = answer(
            s,
            &format!("SHOW CREATE TRIGGER {}", qualified(db, &name)),
            &what,
        )
        .await?;
        for r in &create.rows {
            push_row_element(
                "trigger",
                &create.columns,
                r,
                Some("SQL Original Statement"),
                &mut buf,
            );
        }
    }
    buf.extend_from_slice(b"\t</triggers>\n");
    out.write_all(&buf)
}

fn text_of(row: &[Option<Vec<u8>>], i: usize) -> String {
    row.get(i)
        .cloned()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// `<events>` with an `<event>` per event (SHOW CREATE EVENT), if the database has any.
async fn events(s: &mut Session, plan: &Plan, db: &str, out: &mut Sink) -> Result<()> {
    let mut buf = Vec::new();
    comment(
        plan,
        &format!(
            "\n--\n-- Dumping events for database '{}'\n--\n",
            fix_for_comment(db)
        ),
        &mut buf,
    );
    let what = format!("reading events of {}", ident(db));
    let list = answer(s, &format!("SHOW EVENTS FROM {}", ident(db)), &what).await?;
    if !list.rows.is_empty() {
        buf.extend_from_slice(b"\t<events>\n");
        for row in &list.rows {
            let name = text_of(row, 1);
            let create = answer(
                s,
                &format!("SHOW CREATE EVENT {}", qualified(db, &name)),
                &what,
            )
            .await?;
            for r in &create.rows {
                push_row_element("event", &create.columns, r, Some("Create Event"), &mut buf);
            }
        }
        buf.extend_from_slice(b"\t</events>\n");
    }
    out.write_all(&buf)
}

/// `<routines>` (always written, also empty) with a `<routine>` per function, procedure,
/// package and package body (SHOW CREATE ...), in that order.
async fn routines(s: &mut Session, plan: &Plan, db: &str, out: &mut Sink) -> Result<()> {
    let mut buf = Vec::new();
    comment(
        plan,
        &format!(
            "\n--\n-- Dumping routines for database '{}'\n--\n",
            fix_for_comment(db)
        ),
        &mut buf,
    );
    buf.extend_from_slice(b"\t<routines>\n");
    let what = format!("reading routines of {}", ident(db));
    let kinds: &[(&str, &str)] = if s.dialect.is_mariadb() {
        &[
            ("FUNCTION", "Create Function"),
            ("PROCEDURE", "Create Procedure"),
            ("PACKAGE", "Create Package"),
            ("PACKAGE BODY", "Create Package Body"),
        ]
    } else {
        &[
            ("FUNCTION", "Create Function"),
            ("PROCEDURE", "Create Procedure"),
        ]
    };
    for (kind, body) in kinds {
        let list = answer(
            s,
            &format!("SHOW {kind} STATUS WHERE Db = {}", string_literal(db)),
            &what,
        )
        .await?;
        for row in &list.rows {
            let name = text_of(row, 1);
            let sql = format!("SHOW CREATE {kind} {}", qualified(db, &name));
            let create = answer(s, &sql, &what).await?;
            for r in &create.rows {
                let at = create.columns.iter().position(|c| c == body);
                match at.map(|i| r.get(i).cloned().flatten()) {
                    // No body: the account may not read it (mariadb-dump stops there too).
                    Some(None) => {
                        return Err(Error::Server {
                            server: s.server.clone(),
                            context: what.clone(),
                            message: format!("insufficient privileges to {sql}"),
                        });
                    }
                    // An empty body (a routine the account sees but may not read) is
                    // left out, as mariadb-dump does.
                    Some(Some(b)) if b.is_empty() => {}
                    _ => push_row_element("routine", &create.columns, r, Some(body), &mut buf),
                }
            }
        }
    }
    buf.extend_from_slice(b"\t</routines>\n");
    out.write_all(&buf)
}
