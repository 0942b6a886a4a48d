//! Reading a table's rows: the SELECT that returns every stored value exactly, and the
//! INSERT column list that puts them back.
//!
//! A `TableRead` is planned once per table from its columns; running it streams rows from
//! the server to an encoder (see `stream`). A later parallel reader runs the same SELECT with
//! a key range per chunk: `select_sql` takes the extra condition for that.
//! Not for: encoding or writing.

use crate::format::objects::{Column, ColumnKind, ENUM_ERROR_VALUE};
use crate::plan::History;
use crate::sql::dialect::Dialect;
use crate::sql::quote::{ident, qualified, string_literal};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRead {
    /// `SELECT <cols> FROM `db`.`t``, without WHERE or ORDER BY.
    select: String,
    /// Where ` FROM ` starts in `select` (columns are added before it).
    from_at: usize,
    /// ` FOR SYSTEM_TIME ...` after the table, for `--dump-history`/`--as-of`.
    system_time: Option<String>,
    /// The user's `--where`, if any.
    where_clause: Option<String>,
    /// `ORDER BY ...` for `--order-by-primary`.
    order_by: Option<String>,
    /// Kind of each selected column, for the encoders.
    pub kinds: Vec<ColumnKind>,
    /// Names of the selected (stored) columns, in the order of `kinds`.
    pub columns: Vec<String>,
    /// `(`a`,`b`)` when the INSERT must name its columns.
    pub insert_columns: Option<String>,
}

impl TableRead {
    /// Plans the read of one table. Generated columns are left out (the server computes
    /// them); invisible columns are named, since `SELECT *` would skip them.
    pub fn plan(
        dialect: &Dialect,
        db: &str,
        table: &str,
        columns: &[Column],
        where_clause: Option<&str>,
        primary_key: &[String],
        complete_insert: bool,
    ) -> TableRead {
        let stored: Vec<&Column> = columns.iter().filter(|c| !c.generated).collect();
        let exprs: Vec<String> = stored
            .iter()
            .map(|c| match c.kind {
                ColumnKind::Float => dialect.exact_float_expr(&ident(&c.name)),
                ColumnKind::Enum => {
                    let q = ident(&c.name);
                    format!("IF({q}+0 = 0, {}, {q})", string_literal(ENUM_ERROR_VALUE))
                }
                _ => ident(&c.name),
            })
            .collect();
        let hint = if dialect.is_mariadb() {
            "/*!40001 SQL_NO_CACHE */ "
        } else {
            ""
        };
        let select = format!(
            "SELECT {hint}{} FROM {}",
            exprs.join(", "),
            qualified(db, table)
        );
        let names_needed =
            complete_insert || stored.len() != columns.len() || columns.iter().any(|c| c.invisible);
        let insert_columns = names_needed.then(|| {
            let names: Vec<String> = stored.iter().map(|c| ident(&c.name)).collect();
            format!("({})", names.join(", "))
        });
        let order_by = (!primary_key.is_empty()).then(|| {
            let cols: Vec<String> = primary_key.iter().map(|c| ident(c)).collect();
            format!("ORDER BY {}", cols.join(","))
        });
        TableRead {
            from_at: select.len() - " FROM ".len() - qualified(db, table).len(),
            select,
            system_time: None,
            where_clause: where_clause.map(str::to_string),
            order_by,
            kinds: stored.iter().map(|c| c.kind).collect(),
            columns: stored.iter().map(|c| c.name.clone()).collect(),
            insert_columns,
        }
    }

    /// The read of `--xml`, as mariadb-dump's: every column (generated and invisible ones
    /// too) by its plain name, values as the server shows them (FLOAT with its 6 digits).
    pub fn plain(
        dialect: &Dialect,
        db: &str,
        table: &str,
        columns: &[Column],
        where_clause: Option<&str>,
        primary_key: &[String],
    ) -> TableRead {
        let hint = if dialect.is_mariadb() {
            "/*!40001 SQL_NO_CACHE */ "
        } else {
            ""
        };
        let names: Vec<String> = columns.iter().map(|c| ident(&c.name)).collect();
        let from = qualified(db, table);
        let select = format!("SELECT {hint}{} FROM {from}", names.join(", "));
        let order_by = (!primary_key.is_empty()).then(|| {
            let cols: Vec<String> = primary_key.iter().map(|c| ident(c)).collect();
            format!("ORDER BY {}", cols.join(","))
        });
        TableRead {
            from_at: select.len() - " FROM ".len() - from.len(),
            select,
            system_time: None,
            where_clause: where_clause.map(String::from),
            order_by,
            kinds: columns.iter().map(|c| c.kind).collect(),
            columns: columns.iter().map(|c| c.name.clone()).collect(),
            insert_columns: None,
        }
    }

    /// The read of a system-versioned table for `--dump-history` (every row version, with
    /// its ROW_START and ROW_END, named in the INSERT as mariadb-dump names them) or
    /// `--as-of` (the rows at that time).
    pub fn with_history(mut self, history: &History) -> TableRead {
        match history {
            History::Current => {}
            History::All => {
                self.select.insert_str(self.from_at, ", ROW_START, ROW_END");
                self.system_time = Some(" FOR SYSTEM_TIME ALL".into());
                let names: Vec<String> = self.columns.iter().map(|c| ident(c)).collect();
                self.insert_columns = Some(format!("({}, row_start, row_end)", names.join(", ")));
                self.kinds.extend([ColumnKind::Text, ColumnKind::Text]);
                self.columns.extend(["row_start".into(), "row_end".into()]);
            }
            History::AsOf(ts) => {
                self.system_time = Some(format!(
                    " FOR SYSTEM_TIME AS OF TIMESTAMP {}",
                    string_literal(ts)
                ));
            }
        }
        self
    }

    /// The statement to run, optionally restricted further by `range` (a chunk's key range).
    pub fn select_sql(&self, range: Option<&str>) -> String {
        let mut sql = self.select.clone();
        if let Some(t) = &self.system_time {
            sql.push_str(t);
        }
        let conds: Vec<String> = self
            .where_clause
            .iter()
            .map(|w| format!("({w})"))
            .chain(range.map(|r| format!("({r})")))
            .collect();
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.join(" AND "));
        }
        if let Some(o) = &self.order_by {
            sql.push(' ');
            sql.push_str(o);
        }
        sql
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, kind: ColumnKind, generated: bool, invisible: bool) -> Column {
        Column {
            name: name.into(),
            kind,
            generated,
            invisible,
            default_uses_sequence: false,
        }
    }

    fn mariadb() -> Dialect {
        Dialect::from_version_string("10.11.6-MariaDB")
    }

    #[test]
    fn plain_table_selects_its_columns_and_needs_no_insert_list() {
        let cols = [
            col("id", ColumnKind::Number, false, false),
            col("n`m", ColumnKind::Text, false, false),
        ];
        let r = TableRead::plan(&mariadb(), "d", "t", &cols, None, &[], false);
        assert_eq!(
            r.select_sql(None),
            "SELECT /*!40001 SQL_NO_CACHE */ `id`, `n``m` FROM `d`.`t`"
        );
        assert_eq!(r.insert_columns, None);
        assert_eq!(r.kinds, vec![ColumnKind::Number, ColumnKind::Text]);
    }

    #[test]
    fn generated_columns_are_neither_selected_nor_inserted() {
        let cols = [
            col("a", ColumnKind::Number, false, false),
            col("g", ColumnKind::Number, true, false),
        ];
        let r = TableRead::plan(&mariadb(), "d", "t", &cols, None, &[], false);
        assert!(!r.select_sql(None).contains("`g`"));
        assert_eq!(r.insert_columns.as_deref(), Some("(`a`)"));
    }

    #[test]
    fn invisible_columns_are_named_explicitly() {
        let cols = [
            col("a", ColumnKind::Number, false, false),
            col("h", ColumnKind::Text, false, true),
        ];
        let r = TableRead::plan(&mariadb(), "d", "t", &cols, None, &[], false);
        assert!(r.select_sql(None).contains("`a`, `h`"));
        assert_eq!(r.insert_columns.as_deref(), Some("(`a`, `h`)"));
    }

    #[test]
    fn float_columns_are_widened_to_double() {
        let cols = [col("f", ColumnKind::Float, false, false)];
        let r = TableRead::plan(&mariadb(), "d", "t", &cols, None, &[], false);
        assert!(r.select_sql(None).contains("CAST(`f` AS DOUBLE)"));
    }

    #[test]
    fn enum_error_value_is_read_as_a_marker() {
        let cols = [col("e", ColumnKind::Enum, false, false)];
        let r = TableRead::plan(&mariadb(), "d", "t", &cols, None, &[], false);
        assert!(
            r.select_sql(None)
                .contains("IF(`e`+0 = 0, '\u{1}rdump:enum-index-0\u{1}', `e`)")
        );
    }

    #[test]
    fn where_and_range_and_order_combine() {
        let cols = [col("id", ColumnKind::Number, false, false)];
        let r = TableRead::plan(
            &mariadb(),
            "d",
            "t",
            &cols,
            Some("id > 1 OR id < 0"),
            &["id".into()],
            true,
        );
        assert_eq!(
            r.select_sql(Some("`id` < 100")),
            "SELECT /*!40001 SQL_NO_CACHE */ `id` FROM `d`.`t` WHERE (id > 1 OR id < 0) AND (`id` < 100) ORDER BY `id`"
        );
        assert_eq!(r.insert_columns.as_deref(), Some("(`id`)"));
    }
}
