//! Chunk planning: splits one table into key ranges of about `target_rows` rows each, so a
//! parallel reader (directory mode, or one stream fed by several connections) can read a
//! big table one chunk per worker at a time, all inside the dump's consistent snapshot.
//!
//! The planner picks a key (`choose_key`), walks its index with keyset pagination
//! (`SELECT <key> FROM t FORCE INDEX (idx) WHERE <key > previous boundary> ORDER BY <key>
//! LIMIT 1 OFFSET target_rows-1`, until no row is left) and turns the boundaries into SQL
//! conditions (`range_condition`) for `read::TableRead::select_sql`. Each step is one
//! index range scan of `target_rows` entries, whatever the key: sparse or skewed integer
//! ids, composite keys and string keys all give chunks of exactly `target_rows` rows (the
//! last one: 1 to `target_rows`).
//!
//! Not for: reading rows, running chunks in parallel or ordering their output (the
//! reader's job), nor for a cheap estimate: planning a keyed table of more than
//! `target_rows` rows reads its whole key index once (for an InnoDB primary key, the
//! clustered index, i.e. the table). It must run on the dump's session, inside its
//! snapshot, so that the boundaries describe the rows the chunks will read.
//!
//! Why every row is in exactly one chunk: boundaries strictly increase (each one is read
//! from the rows `> previous`), and chunk `i` is `key > b(i-1) AND key <= b(i)` (chunk 0
//! has no lower bound, the last no upper one), so as long as all conditions are evaluated
//! alike the chunks partition the rows. The literal rules make that comparison the
//! index's own (the column's collation, exact values), so the chunks are also in key order,
//! of the sizes above, and each is an index range:
//!
//! * integer, DECIMAL and YEAR columns: the number as the server prints it (BIGINT
//!   UNSIGNED's 18446744073709551615 and BIGINT's -9223372036854775808 included);
//! * CHAR/VARCHAR: read as `HEX(col)`, written `_<column charset> X'<hex>'`, a literal in
//!   the column's character set whose comparison uses the column's collation (a column's
//!   coercibility beats a literal's). A plain `X'<hex>'` is a binary string: MySQL compares
//!   a nonbinary column with it as binary, which breaks case- and accent-insensitive
//!   collations (MariaDB 10.11 happens to convert it to the column's collation);
//! * BINARY/VARBINARY: `X'<hex>'`;
//! * DATE, DATETIME(n), TIME: the text value, quoted with `quote::string_literal`;
//! * TIMESTAMP(n): the same, but that text is in the session's time zone: such keys are
//!   used only when the session's `time_zone` is a fixed offset (the dump session runs
//!   with `'+00:00'`), since a zone with daylight saving time shows one text for two
//!   instants in the hour it repeats. Every connection that runs the conditions must use
//!   the planning session's zone.
//!
//! Declined (another UNIQUE key is used, or the table is one chunk): keys on FLOAT, DOUBLE,
//! ENUM, SET, BIT, TEXT/BLOB, JSON and other types (UUID, INET6, spatial), TIMESTAMP keys
//! in a session with a named time zone, prefix (`col(10)`), HASH, ignored or invisible
//! indexes, and UNIQUE indexes with a nullable column. An empty table, one without a usable
//! key and one of at most `target_rows` rows is one chunk with range `None`, so every table
//! still gets its (maybe empty) file.

use mysql_async::Row;

use crate::conn::{Session, cell_by_name, cell_string};
use crate::error::{Error, Result};
use crate::quote::{ident, qualified, string_literal};

/// One key range of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// 0-based, in key order.
    pub index: usize,
    /// SQL condition selecting exactly this chunk's rows; `None` = the whole table.
    pub range: Option<String>,
    /// Rows in the chunk: exact for a keyed table (as of the snapshot), the server's
    /// `TABLE_ROWS` estimate for a table read as one chunk for want of a key.
    pub estimated_rows: u64,
}

/// The key the chunks are ranges of, for the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkKey {
    pub columns: Vec<String>,
    /// `PRIMARY` or the UNIQUE index's name.
    pub index_name: String,
}

/// How a key column's values are read back and written as SQL literals.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Literal {
    /// Integers, DECIMAL, YEAR: the text is an exact SQL number.
    Number,
    /// CHAR/VARCHAR in this character set: `_<charset> X'<hex>'`.
    Character { charset: String },
    /// BINARY/VARBINARY: `X'<hex>'`.
    Binary,
    /// DATE, DATETIME, TIME: the quoted text.
    Temporal,
    /// TIMESTAMP: the quoted text in the session's time zone, which must be a fixed offset.
    Timestamp,
}

impl Literal {
    /// The literal rule for a column of `data_type`, `None` for a type the planner declines.
    fn for_column(data_type: &str, charset: Option<&str>) -> Option<Literal> {
        match data_type.to_ascii_lowercase().as_str() {
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "decimal"
            | "numeric" | "year" => Some(Literal::Number),
            "char" | "varchar" => {
                let charset = charset?;
                let valid = !charset.is_empty()
                    && charset
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_');
                valid.then(|| Literal::Character {
                    charset: charset.to_string(),
                })
            }
            "binary" | "varbinary" => Some(Literal::Binary),
            "date" | "datetime" | "time" => Some(Literal::Temporal),
            "timestamp" => Some(Literal::Timestamp),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyColumn {
    name: String,
    literal: Literal,
}

impl KeyColumn {
    /// What the boundary query selects for this column.
    fn read_expr(&self) -> String {
        match self.literal {
            Literal::Character { .. } | Literal::Binary => format!("HEX({})", ident(&self.name)),
            Literal::Number | Literal::Temporal | Literal::Timestamp => ident(&self.name),
        }
    }

    /// The value as read by `read_expr`, as an SQL literal that compares as the index does;
    /// `None` if the server's text is not what the rule expects.
    fn render(&self, text: &str) -> Option<String> {
        match &self.literal {
            Literal::Number => {
                let valid = !text.is_empty()
                    && text
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b == b'-' || b == b'.');
                valid.then(|| text.to_string())
            }
            Literal::Character { charset } => is_hex(text).then(|| format!("_{charset} X'{text}'")),
            Literal::Binary => is_hex(text).then(|| format!("X'{text}'")),
            Literal::Temporal | Literal::Timestamp => Some(string_literal(text)),
        }
    }
}

fn is_hex(text: &str) -> bool {
    text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    index_name: String,
    columns: Vec<KeyColumn>,
}

impl Key {
    fn names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    fn public(&self) -> ChunkKey {
        ChunkKey {
            columns: self.names(),
            index_name: self.index_name.clone(),
        }
    }
}

/// One index as information_schema.STATISTICS describes it.
struct IndexInfo {
    name: String,
    unique: bool,
    /// Usable at all: B-tree-like, not ignored, not invisible, no prefix or expression part.
    usable: bool,
    columns: Vec<String>,
}

/// One column as information_schema.COLUMNS describes it.
struct ColumnInfo {
    name: String,
    nullable: bool,
    literal: Option<Literal>,
}

/// The key `plan_chunks` would range over: the PRIMARY KEY, else the UNIQUE index whose
/// columns are all NOT NULL with the fewest columns (ties: by name), else none. Indexes
/// whose columns or kind the planner declines (see the module documentation) are passed
/// over, so a PRIMARY KEY on a FLOAT column leaves the choice to the UNIQUE indexes.
pub async fn choose_key(s: &mut Session, db: &str, table: &str) -> Result<Option<ChunkKey>> {
    Ok(usable_key(s, db, table).await?.map(|k| k.public()))
}

async fn usable_key(s: &mut Session, db: &str, table: &str) -> Result<Option<Key>> {
    let context = format!("choosing the chunk key of {}", qualified(db, table));
    let where_table = format!(
        "WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {}",
        string_literal(db),
        string_literal(table)
    );
    // `*`: IGNORED (MariaDB 10.6+) and IS_VISIBLE (MySQL 8) exist only on some servers.
    let stats = s
        .rows(
            &format!(
                "SELECT * FROM information_schema.STATISTICS {where_table} \
                 ORDER BY INDEX_NAME, SEQ_IN_INDEX"
            ),
            &context,
        )
        .await?;
    let indexes = group_indexes(&stats);
    if !indexes.iter().any(|i| i.unique && i.usable) {
        return Ok(None);
    }
    let cols = s
        .rows(
            &format!(
                "SELECT COLUMN_NAME, DATA_TYPE, IS_NULLABLE, CHARACTER_SET_NAME \
                 FROM information_schema.COLUMNS {where_table}"
            ),
            &context,
        )
        .await?;
    let columns: Vec<ColumnInfo> = cols
        .iter()
        .filter_map(|r| {
            let name = cell_string(r, 0)?;
            let data_type = cell_string(r, 1).unwrap_or_default();
            let charset = cell_string(r, 3);
            Some(ColumnInfo {
                name,
                nullable: cell_string(r, 2).as_deref() != Some("NO"),
                literal: Literal::for_column(&data_type, charset.as_deref()),
            })
        })
        .collect();
    let timestamps_ok = if columns
        .iter()
        .any(|c| c.literal == Some(Literal::Timestamp))
    {
        let zone = s
            .first_value("SELECT @@session.time_zone", &context)
            .await?
            .unwrap_or_default();
        is_fixed_offset(&zone)
    } else {
        true
    };
    Ok(pick_key(&indexes, &columns, timestamps_ok))
}

/// `+00:00`, `-05:30`: a zone without daylight saving time, where every TIMESTAMP has its
/// own text. Named zones (and SYSTEM) may repeat an hour when clocks go back.
fn is_fixed_offset(zone: &str) -> bool {
    let b = zone.as_bytes();
    b.len() == 6
        && matches!(b[0], b'+' | b'-')
        && b[1..3].iter().all(u8::is_ascii_digit)
        && b[3] == b':'
        && b[4..6].iter().all(u8::is_ascii_digit)
}

/// Groups STATISTICS rows (ordered by index, then position) into indexes.
fn group_indexes(rows: &[Row]) -> Vec<IndexInfo> {
    let mut out: Vec<IndexInfo> = Vec::new();
    for r in rows {
        let Some(name) = cell_by_name(r, "INDEX_NAME") else {
            continue;
        };
        let column = cell_by_name(r, "COLUMN_NAME");
        let index_type = cell_by_name(r, "INDEX_TYPE")
            .unwrap_or_default()
            .to_ascii_uppercase();
        let part_usable = column.is_some()
            && cell_by_name(r, "SUB_PART").is_none()
            && !matches!(
                index_type.as_str(),
                "HASH" | "FULLTEXT" | "SPATIAL" | "RTREE"
            )
            && !cell_by_name(r, "IGNORED").is_some_and(|v| v.eq_ignore_ascii_case("YES"))
            && !cell_by_name(r, "IS_VISIBLE").is_some_and(|v| v.eq_ignore_ascii_case("NO"));
        let unique = cell_by_name(r, "NON_UNIQUE").as_deref() == Some("0");
        match out.last_mut() {
            Some(last) if last.name == name => {
                last.usable &= part_usable;
                last.columns.extend(column);
            }
            _ => out.push(IndexInfo {
                name,
                unique,
                usable: part_usable,
                columns: column.into_iter().collect(),
            }),
        }
    }
    out
}

/// The PRIMARY KEY if usable, else the usable UNIQUE NOT NULL index with the fewest
/// columns (ties by name, for a plan that does not depend on the server's row order).
/// Keys with a TIMESTAMP column are usable only when `timestamps_ok`.
fn pick_key(indexes: &[IndexInfo], columns: &[ColumnInfo], timestamps_ok: bool) -> Option<Key> {
    let find = |name: &str| {
        columns
            .iter()
            .find(|c| c.name == name)
            .or_else(|| columns.iter().find(|c| c.name.eq_ignore_ascii_case(name)))
    };
    let mut candidates: Vec<Key> = indexes
        .iter()
        .filter(|i| i.unique && i.usable && !i.columns.is_empty())
        .filter_map(|i| {
            let columns = i
                .columns
                .iter()
                .map(|name| {
                    let c = find(name)?;
                    if c.nullable || (c.literal == Some(Literal::Timestamp) && !timestamps_ok) {
                        return None;
                    }
                    Some(KeyColumn {
                        name: c.name.clone(),
                        literal: c.literal.clone()?,
                    })
                })
                .collect::<Option<Vec<_>>>()?;
            Some(Key {
                index_name: i.name.clone(),
                columns,
            })
        })
        .collect();
    candidates.sort_by(|a, b| {
        (a.index_name != "PRIMARY")
            .cmp(&(b.index_name != "PRIMARY"))
            .then(a.columns.len().cmp(&b.columns.len()))
            .then(a.index_name.as_bytes().cmp(b.index_name.as_bytes()))
    });
    candidates.into_iter().next()
}

/// Splits `db`.`table` into chunks of `target_rows` rows (at least 1) in key order; the
/// last chunk holds the rest (1 to `target_rows` rows). Returns the key used, `None` when
/// the table has no usable key and is read as one chunk.
///
/// A table with at most `target_rows` rows is one chunk with range `None` (its key is still
/// returned); the first boundary query finds that out by reading at most `target_rows`
/// index entries, so the possibly stale `TABLE_ROWS` estimate is never trusted for it. An
/// empty table is one chunk too (range `None`, 0 rows), so it still gets its empty file.
pub async fn plan_chunks(
    s: &mut Session,
    db: &str,
    table: &str,
    target_rows: u64,
) -> Result<(Option<ChunkKey>, Vec<Chunk>)> {
    let target = target_rows.max(1);
    let name = qualified(db, table);
    let estimate = table_rows_estimate(s, db, table).await?;
    let Some(key) = usable_key(s, db, table).await? else {
        return Ok((None, vec![whole_table(estimate)]));
    };
    let names = key.names();
    let from = format!("{name} FORCE INDEX ({})", ident(&key.index_name));
    let order: Vec<String> = names.iter().map(|c| ident(c)).collect();
    let order = order.join(", ");
    let reads: Vec<String> = key.columns.iter().map(KeyColumn::read_expr).collect();
    let reads = reads.join(", ");
    let after = |b: Option<&Vec<String>>| {
        b.map(|b| format!(" WHERE {}", range_condition(&names, Some(b), None)))
            .unwrap_or_default()
    };

    let mut bounds: Vec<Vec<String>> = Vec::new();
    loop {
        let context = format!("reading chunk boundary {} of {name}", bounds.len());
        let sql = format!(
            "SELECT {reads} FROM {from}{} ORDER BY {order} LIMIT 1 OFFSET {}",
            after(bounds.last()),
            target - 1
        );
        let rows = s.rows(&sql, &context).await?;
        let Some(row) = rows.first() else {
            break;
        };
        let bound = render_boundary(s, &key, row, &context)?;
        if bounds.last() == Some(&bound) {
            // `key > b` returned b again: the literal does not compare as the column (a
            // TIMESTAMP in a DST overlap of a non-UTC session). Never loop on it.
            return Err(Error::Server {
                server: s.server.clone(),
                context,
                message: format!(
                    "key value ({}) does not compare equal to itself as a literal; \
                     is the session time zone '+00:00'?",
                    bound.join(", ")
                ),
            });
        }
        bounds.push(bound);
    }

    // The rows after the last boundary: fewer than `target`, counted exactly (the scan is
    // bounded by LIMIT, so this reads at most `target` index entries).
    let rest: u64 = s
        .first_value(
            &format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM {from}{} LIMIT {target}) rest",
                after(bounds.last())
            ),
            &format!("counting the rows of the last chunk of {name}"),
        )
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let last_rows = if rest == 0 && !bounds.is_empty() {
        // The row count is a multiple of `target`: the last boundary closes nothing.
        bounds.pop();
        target
    } else {
        rest
    };

    let mut chunks = Vec::with_capacity(bounds.len() + 1);
    for i in 0..=bounds.len() {
        let lower = i.checked_sub(1).map(|j| bounds[j].as_slice());
        let upper = bounds.get(i).map(Vec::as_slice);
        chunks.push(Chunk {
            index: i,
            range: (lower.is_some() || upper.is_some())
                .then(|| range_condition(&names, lower, upper)),
            estimated_rows: if i == bounds.len() { last_rows } else { target },
        });
    }
    Ok((Some(key.public()), chunks))
}

fn whole_table(estimated_rows: u64) -> Chunk {
    Chunk {
        index: 0,
        range: None,
        estimated_rows,
    }
}

/// `TABLE_ROWS` from information_schema.TABLES (0 when the engine gives none); also checks
/// that the table exists.
async fn table_rows_estimate(s: &mut Session, db: &str, table: &str) -> Result<u64> {
    let name = qualified(db, table);
    let rows = s
        .rows(
            &format!(
                "SELECT TABLE_ROWS FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {}",
                string_literal(db),
                string_literal(table)
            ),
            &format!("estimating the rows of {name}"),
        )
        .await?;
    match rows.first() {
        Some(r) => Ok(cell_string(r, 0).and_then(|v| v.parse().ok()).unwrap_or(0)),
        None => Err(Error::NotFound {
            server: s.server.clone(),
            message: format!("cannot plan chunks of {name}: no such table"),
        }),
    }
}

/// The key values of one boundary row as SQL literals. Key columns are a PRIMARY KEY or
/// NOT NULL, so a NULL here is a server-side inconsistency and an error, never a bound.
fn render_boundary(s: &Session, key: &Key, row: &Row, context: &str) -> Result<Vec<String>> {
    key.columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let Some(text) = cell_string(row, i) else {
                return Err(Error::Server {
                    server: s.server.clone(),
                    context: context.to_string(),
                    message: format!(
                        "key column {} of index {} returned NULL",
                        ident(&c.name),
                        ident(&key.index_name)
                    ),
                });
            };
            c.render(&text).ok_or_else(|| Error::Server {
                server: s.server.clone(),
                context: context.to_string(),
                message: format!(
                    "unexpected value {} for key column {}",
                    string_literal(&text),
                    ident(&c.name)
                ),
            })
        })
        .collect()
}

/// The condition `lower < key <= upper` over the key columns `key`, whose values are
/// already SQL literals (a bound of `None` is open). Composite keys are expanded into
/// `(a > x) OR (a = x AND b > y)`, not row constructors, so the server scans an index
/// range. Both bounds `None` gives `TRUE`.
///
/// Panics if a bound does not have one value per key column.
pub fn range_condition(
    key: &[String],
    lower: Option<&[String]>,
    upper: Option<&[String]>,
) -> String {
    let sides: Vec<String> = [(lower, ">", ">"), (upper, "<", "<=")]
        .into_iter()
        .filter_map(|(bound, strict, last)| bound.map(|b| side(key, b, strict, last)))
        .collect();
    if sides.is_empty() {
        "TRUE".to_string()
    } else {
        sides.join(" AND ")
    }
}

/// `key <op> values` in lexicographic order: for each column i, the first i columns equal
/// and column i compared with `strict` (`last` for the final column).
fn side(key: &[String], values: &[String], strict: &str, last: &str) -> String {
    assert_eq!(
        key.len(),
        values.len(),
        "a chunk bound needs one value per key column"
    );
    assert!(!key.is_empty(), "a chunk key has at least one column");
    let terms: Vec<String> = (0..key.len())
        .map(|i| {
            let op = if i + 1 == key.len() { last } else { strict };
            let mut parts: Vec<String> = (0..i)
                .map(|j| format!("{} = {}", ident(&key[j]), values[j]))
                .collect();
            parts.push(format!("{} {op} {}", ident(&key[i]), values[i]));
            parts.join(" AND ")
        })
        .collect();
    if terms.len() == 1 {
        terms.into_iter().next().unwrap_or_default()
    } else {
        let terms: Vec<String> = terms.iter().map(|t| format!("({t})")).collect();
        format!("({})", terms.join(" OR "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn single_column_bounds() {
        let key = v(&["id"]);
        assert_eq!(range_condition(&key, None, Some(&v(&["10"]))), "`id` <= 10");
        assert_eq!(range_condition(&key, Some(&v(&["10"])), None), "`id` > 10");
        assert_eq!(
            range_condition(&key, Some(&v(&["-9223372036854775808"])), Some(&v(&["20"]))),
            "`id` > -9223372036854775808 AND `id` <= 20"
        );
        assert_eq!(range_condition(&key, None, None), "TRUE");
    }

    #[test]
    fn composite_bounds_expand_into_index_ranges() {
        let key = v(&["a", "b"]);
        assert_eq!(
            range_condition(&key, Some(&v(&["1", "'x'"])), None),
            "((`a` > 1) OR (`a` = 1 AND `b` > 'x'))"
        );
        assert_eq!(
            range_condition(&key, Some(&v(&["1", "'x'"])), Some(&v(&["2", "'y'"]))),
            "((`a` > 1) OR (`a` = 1 AND `b` > 'x')) AND ((`a` < 2) OR (`a` = 2 AND `b` <= 'y'))"
        );
        let key = v(&["a", "b", "c"]);
        assert_eq!(
            range_condition(&key, None, Some(&v(&["1", "2", "3"]))),
            "((`a` < 1) OR (`a` = 1 AND `b` < 2) OR (`a` = 1 AND `b` = 2 AND `c` <= 3))"
        );
    }

    #[test]
    fn column_names_are_quoted() {
        assert_eq!(
            range_condition(&v(&["we`ird col"]), Some(&v(&["1"])), None),
            "`we``ird col` > 1"
        );
    }

    #[test]
    #[should_panic(expected = "one value per key column")]
    fn a_bound_must_match_the_key() {
        range_condition(&v(&["a", "b"]), Some(&v(&["1"])), None);
    }

    #[test]
    fn literals_follow_the_column_type() {
        let col = |data_type: &str, charset: Option<&str>| KeyColumn {
            name: "c".into(),
            literal: Literal::for_column(data_type, charset).expect("supported"),
        };
        assert_eq!(
            col("bigint", None)
                .render("18446744073709551615")
                .as_deref(),
            Some("18446744073709551615")
        );
        assert_eq!(
            col("decimal", None).render("-1.50").as_deref(),
            Some("-1.50")
        );
        assert_eq!(col("int", None).render("1; DROP"), None);
        let s = col("varchar", Some("utf8mb4"));
        assert_eq!(s.read_expr(), "HEX(`c`)");
        assert_eq!(s.render("C3A9").as_deref(), Some("_utf8mb4 X'C3A9'"));
        assert_eq!(s.render("").as_deref(), Some("_utf8mb4 X''"));
        assert_eq!(s.render("C3A"), None);
        let b = col("binary", None);
        assert_eq!(b.render("00FF").as_deref(), Some("X'00FF'"));
        let t = col("datetime", None);
        assert_eq!(t.read_expr(), "`c`");
        assert_eq!(
            t.render("2024-02-29 23:59:59.999999").as_deref(),
            Some("'2024-02-29 23:59:59.999999'")
        );
    }

    #[test]
    fn some_key_types_are_declined() {
        for t in [
            "float", "double", "enum", "set", "bit", "text", "blob", "json", "uuid", "inet6",
        ] {
            assert_eq!(Literal::for_column(t, Some("utf8mb4")), None, "{t}");
        }
        assert_eq!(Literal::for_column("varchar", None), None);
    }

    #[test]
    fn only_fixed_offsets_are_safe_zones_for_timestamp_keys() {
        for z in ["+00:00", "-05:30", "+14:00"] {
            assert!(is_fixed_offset(z), "{z}");
        }
        for z in ["SYSTEM", "Europe/Berlin", "UTC", "+0:00", ""] {
            assert!(!is_fixed_offset(z), "{z}");
        }
    }

    #[test]
    fn timestamp_keys_need_a_fixed_offset_zone() {
        let columns = [column("ts", false, "timestamp"), column("i", false, "int")];
        let indexes = [
            index("PRIMARY", true, true, &["ts"]),
            index("u_i", true, true, &["i"]),
        ];
        let chosen = |ok| pick_key(&indexes, &columns, ok).map(|k| k.index_name);
        assert_eq!(chosen(true).as_deref(), Some("PRIMARY"));
        assert_eq!(chosen(false).as_deref(), Some("u_i"));
    }

    fn index(name: &str, unique: bool, usable: bool, columns: &[&str]) -> IndexInfo {
        IndexInfo {
            name: name.into(),
            unique,
            usable,
            columns: v(columns),
        }
    }

    fn column(name: &str, nullable: bool, data_type: &str) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            nullable,
            literal: Literal::for_column(data_type, Some("utf8mb4")),
        }
    }

    #[test]
    fn key_choice_prefers_primary_then_fewest_not_null_columns() {
        let columns = [
            column("id", false, "int"),
            column("a", false, "int"),
            column("b", false, "varchar"),
            column("n", true, "int"),
            column("f", false, "float"),
        ];
        let chosen =
            |indexes: &[IndexInfo]| pick_key(indexes, &columns, true).map(|k| k.index_name);
        assert_eq!(
            chosen(&[
                index("u_a", true, true, &["a"]),
                index("PRIMARY", true, true, &["id", "b"]),
            ])
            .as_deref(),
            Some("PRIMARY")
        );
        assert_eq!(
            chosen(&[
                index("u_ab", true, true, &["a", "b"]),
                index("u_b", true, true, &["b"]),
                index("k_a", false, true, &["a"]),
            ])
            .as_deref(),
            Some("u_b")
        );
        assert_eq!(chosen(&[index("u_n", true, true, &["n"])]), None);
        assert_eq!(
            chosen(&[
                index("PRIMARY", true, true, &["f"]),
                index("u_a", true, true, &["a"]),
            ])
            .as_deref(),
            Some("u_a")
        );
        assert_eq!(chosen(&[index("u_a", true, false, &["a"])]), None);
        assert_eq!(chosen(&[]), None);
    }
}
