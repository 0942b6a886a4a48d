//! Chunk planning: splits one table into key ranges of at most `target_rows` rows each, so
//! a parallel reader (directory mode, or one stream fed by several connections) can read a
//! big table one chunk per worker at a time, all inside the dump's consistent snapshot.
//!
//! The planner picks a key (`choose_key`) and then one of two ways to find the boundaries,
//! which `range_condition` turns into SQL conditions for `read::TableRead::select_sql`:
//!
//! * Arithmetic (`Split::Arithmetic`), for a key of one integer column (TINYINT..BIGINT,
//!   signed or UNSIGNED, or DECIMAL(n,0)) whose values are dense: it reads `MIN(key)` and
//!   `MAX(key)` (one query, two index dives) and cuts `MIN..=MAX` into as few equal ranges
//!   of at most `target_rows` key values as it takes, upper bounds `MIN + k * step - 1`
//!   (`k` = 1, 2, ...). Dense means: the table has more than `target_rows` rows by the
//!   server's `TABLE_ROWS` estimate, and the span `MAX - MIN + 1` is more than
//!   `target_rows` and at most twice that estimate (`arithmetic_split` says why twice).
//!   Since the key is unique, a range of `step <= target_rows` values holds at most
//!   `target_rows` rows whatever the estimate says; the density rule only makes the chunks
//!   hold `target_rows / 2` rows or more on average (at most about twice as many chunks as
//!   the walk makes), unless the estimate is too high. Each chunk's `estimated_rows` is
//!   its share of the estimate. Planning reads no index range, whatever the table's size.
//! * The walk (`Split::Walk`), for every other key (sparse or skewed integer ids,
//!   composite, string and temporal keys, or an estimate that says the table is small): it
//!   walks the index with keyset pagination (`SELECT <key> FROM t FORCE INDEX (idx) WHERE
//!   <key > previous boundary> ORDER BY <key> LIMIT 1 OFFSET target_rows-1`, until no row
//!   is left), so it gives chunks of exactly `target_rows` rows (the last one: 1 to
//!   `target_rows`) but reads the whole key index once (for an InnoDB primary key, the
//!   clustered index, i.e. the table).
//!
//! The estimate is only trusted to choose the arithmetic: one that says "at most
//! `target_rows` rows" is checked by the walk's first step, which reads at most
//! `target_rows` index entries and finds out; one that is too low sends a dense table to
//! the (exact, slower) walk; one that is too high makes arithmetic chunks with fewer rows
//! (more chunks, never a wrong one).
//!
//! Not for: reading rows, running chunks in parallel or ordering their output (the
//! reader's job). It must run on the dump's session, inside its snapshot, so that the
//! boundaries (and MIN, MAX) describe the rows the chunks will read.
//!
//! Why every row is in exactly one chunk, with either method: boundaries strictly increase
//! (the walk reads each one from the rows `> previous`; the arithmetic adds `step >= 1`),
//! and chunk `i` is `key > b(i-1) AND key <= b(i)`: chunk 0 has no lower bound and the last
//! no upper one, so a row below `MIN` or above `MAX` (or an estimate that is wrong) still
//! falls in a chunk. As long as all conditions are evaluated alike the chunks partition the
//! rows. The literal rules make that comparison the index's own (the column's collation,
//! exact values), so the chunks are also in key order and each is an index range:
//!
//! * integer, DECIMAL and YEAR columns: the number as the server prints it, or for an
//!   arithmetic bound as Rust prints the `i128` (BIGINT UNSIGNED's 18446744073709551615
//!   and BIGINT's -9223372036854775808 included; an arithmetic bound lies between MIN and
//!   MAX, so it is a value of the column's type);
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
//! key and one of at most `target_rows` rows (as the walk counts, never by the estimate)
//! is one chunk with range `None` (`Split::Whole`), so every table still gets its (maybe
//! empty) file.

use mysql_async::Row;

use crate::client::conn::{Session, cell_by_name, cell_string};
use crate::error::{Error, Result};
use crate::sql::quote::{ident, qualified, string_literal};

/// One key range of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// 0-based, in key order.
    pub index: usize,
    /// SQL condition selecting exactly this chunk's rows; `None` = the whole table.
    pub range: Option<String>,
    /// Rows in the chunk: exact for a walked or small keyed table (as of the snapshot); for
    /// an arithmetic chunk its share of the server's `TABLE_ROWS` estimate (in proportion
    /// to the key values it covers; the shares add up to the estimate); that estimate for a
    /// table read as one chunk for want of a key.
    pub estimated_rows: u64,
}

/// How `plan_chunks` found a table's boundaries (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// One chunk with range `None`: no usable key, an empty table, or at most
    /// `target_rows` rows (counted by the walk's first step, not taken from the estimate).
    Whole,
    /// Boundaries read by walking the key index: chunks of exactly `target_rows` rows but
    /// the last, `estimated_rows` exact.
    Walk,
    /// Boundaries computed from `MIN` and `MAX` of a dense one-column integer key: each
    /// chunk covers at most `target_rows` key values, so holds at most `target_rows` rows;
    /// `estimated_rows` are shares of the estimate.
    Arithmetic,
}

/// What `plan_chunks` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkPlan {
    /// The key the ranges are over; `None` when the table has no usable key (it is then
    /// one chunk). Returned for a `Whole` keyed table too.
    pub key: Option<ChunkKey>,
    pub split: Split,
    /// At least one, in key order, `index` 0, 1, ...
    pub chunks: Vec<Chunk>,
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
    /// TINYINT..BIGINT (signed or not) and DECIMAL(n,0): the text is an exact SQL integer,
    /// and the key may be split arithmetically.
    Integer,
    /// DECIMAL(n,s) with s > 0, YEAR: the text is an exact SQL number.
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
    /// The literal rule for a column of `data_type` (with `NUMERIC_SCALE` `scale`, for
    /// DECIMAL), `None` for a type the planner declines.
    fn for_column(data_type: &str, charset: Option<&str>, scale: Option<&str>) -> Option<Literal> {
        match data_type.to_ascii_lowercase().as_str() {
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => {
                Some(Literal::Integer)
            }
            "decimal" | "numeric" if scale == Some("0") => Some(Literal::Integer),
            "decimal" | "numeric" | "year" => Some(Literal::Number),
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
            Literal::Integer | Literal::Number | Literal::Temporal | Literal::Timestamp => {
                ident(&self.name)
            }
        }
    }

    /// The value as read by `read_expr`, as an SQL literal that compares as the index does;
    /// `None` if the server's text is not what the rule expects.
    fn render(&self, text: &str) -> Option<String> {
        match &self.literal {
            Literal::Integer => {
                let digits = text.strip_prefix('-').unwrap_or(text);
                let valid = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
                valid.then(|| text.to_string())
            }
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
                "SELECT COLUMN_NAME, DATA_TYPE, IS_NULLABLE, CHARACTER_SET_NAME, NUMERIC_SCALE \
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
            let scale = cell_string(r, 4);
            Some(ColumnInfo {
                name,
                nullable: cell_string(r, 2).as_deref() != Some("NO"),
                literal: Literal::for_column(&data_type, charset.as_deref(), scale.as_deref()),
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

/// Splits `db`.`table` into chunks of at most `target_rows` rows (at least 1) in key order,
/// arithmetically for a dense one-column integer key, else by walking the key (see the
/// module documentation). Either way every row of the snapshot is in exactly one chunk.
///
/// A table with at most `target_rows` rows is one chunk with range `None` (its key is still
/// returned); the walk's first boundary query finds that out by reading at most
/// `target_rows` index entries, so the possibly stale `TABLE_ROWS` estimate is never
/// trusted for it. An empty table is one chunk too (range `None`, 0 rows), so it still gets
/// its empty file.
pub async fn plan_chunks(
    s: &mut Session,
    db: &str,
    table: &str,
    target_rows: u64,
) -> Result<ChunkPlan> {
    let target = target_rows.max(1);
    let name = qualified(db, table);
    let estimate = table_rows_estimate(s, db, table).await?;
    let Some(key) = usable_key(s, db, table).await? else {
        return Ok(ChunkPlan {
            key: None,
            split: Split::Whole,
            chunks: vec![whole_table(estimate)],
        });
    };
    let from = format!("{name} FORCE INDEX ({})", ident(&key.index_name));

    // Only an estimate of more than one chunk's rows is worth the MIN/MAX dives: a smaller
    // one is checked (and a small table counted) by the walk's first, bounded step.
    if estimate > target
        && let [column] = key.columns.as_slice()
        && column.literal == Literal::Integer
        && let Some((min, max)) = key_min_max(s, &from, column, &name).await?
        && let Some(split) = arithmetic_split(min, max, estimate, target)
    {
        let names = key.names();
        let chunks = split
            .into_iter()
            .enumerate()
            .map(|(i, c)| Chunk {
                index: i,
                range: Some(range_condition(
                    &names,
                    c.lower.map(|b| vec![b.to_string()]).as_deref(),
                    c.upper.map(|b| vec![b.to_string()]).as_deref(),
                )),
                estimated_rows: c.estimated_rows,
            })
            .collect();
        return Ok(ChunkPlan {
            key: Some(key.public()),
            split: Split::Arithmetic,
            chunks,
        });
    }
    let chunks = walk(s, &key, &from, &name, target).await?;
    let split = if chunks.len() == 1 {
        Split::Whole
    } else {
        Split::Walk
    };
    Ok(ChunkPlan {
        key: Some(key.public()),
        split,
        chunks,
    })
}

/// `MIN` and `MAX` of the integer key `column` (two index dives), `None` for an empty table
/// or values beyond `i128` (a DECIMAL(65,0) key), which are left to the walk.
async fn key_min_max(
    s: &mut Session,
    from: &str,
    column: &KeyColumn,
    name: &str,
) -> Result<Option<(i128, i128)>> {
    let c = ident(&column.name);
    let rows = s
        .rows(
            &format!("SELECT MIN({c}), MAX({c}) FROM {from}"),
            &format!("reading the key span of {name}"),
        )
        .await?;
    let value = |i| {
        rows.first()
            .and_then(|r| cell_string(r, i))
            .and_then(|v| v.parse::<i128>().ok())
    };
    Ok(value(0).zip(value(1)))
}

/// One chunk of an arithmetic split: `lower < key <= upper`, `None` bounds open.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SpanChunk {
    lower: Option<i128>,
    upper: Option<i128>,
    estimated_rows: u64,
}

/// The estimate above which a row count is not believed (no server holds 2^63 rows); it
/// also keeps the products `estimate * offset` of `arithmetic_split` within `u128`.
const MAX_BELIEVED_ROWS: u64 = 1 << 63;

/// Splits the key values `min..=max` of a unique integer key into ranges of at most
/// `target` values each, `None` unless the values are dense: the span `max - min + 1` is
/// more than `target` (else the walk counts the at most `target` rows cheaply) and at most
/// twice `estimate`. Why twice: a range of `target` key values holds at most `target` rows
/// (the key is unique), so the density only decides how full the chunks are; at a density
/// of 1/2 or more they average `target / 2` rows or more, at most twice the walk's number
/// of chunks, for a plan that costs two index dives instead of a read of the whole index.
/// Ids with gaps stay within it: deleted rows, AUTO_INCREMENT values lost to rollbacks, or
/// to the batches InnoDB reserves for an `INSERT ... SELECT` (which can lose nearly as many
/// values as the statement inserts). Sparser ids, where chunks would be mostly empty, are
/// walked.
///
/// The ranges are equal (`step` values, the last one the rest), as few as `target` allows;
/// the first has no lower bound and the last no upper bound. All arithmetic is on the
/// offsets from `min` in `u128`, so no step overflows, from BIGINT's minimum to BIGINT
/// UNSIGNED's maximum; every bound lies in `min..max`, a value of the column's type.
fn arithmetic_split(min: i128, max: i128, estimate: u64, target: u64) -> Option<Vec<SpanChunk>> {
    if max < min || estimate > MAX_BELIEVED_ROWS {
        return None;
    }
    // `max - min` is in 0..2^128: exact as a wrapping difference of the two's complements.
    let span = (max as u128).wrapping_sub(min as u128).checked_add(1)?;
    let target = u128::from(target.max(1));
    let estimate = u128::from(estimate);
    if span <= target || span > 2 * estimate {
        return None;
    }
    // step <= target, as span / ceil(span / target) <= target; ranges >= 2, as span > step.
    let step = span.div_ceil(span.div_ceil(target));
    let count = span.div_ceil(step);
    // The share of the estimate up to an offset: `estimate * offset` <= 2^63 * 2^64.
    let share = |offset: u128| estimate * offset / span;
    let bound = |offset: u128| (min as u128).wrapping_add(offset) as i128;
    Some(
        (0..count)
            .map(|i| {
                let start = i * step;
                let end = (start + step).min(span);
                SpanChunk {
                    lower: (i > 0).then(|| bound(start - 1)),
                    upper: (i + 1 < count).then(|| bound(end - 1)),
                    estimated_rows: (share(end) - share(start)) as u64,
                }
            })
            .collect(),
    )
}

/// The walk: boundaries read every `target` index entries, the last chunk's rows counted.
/// A table of at most `target` rows is one chunk with range `None`.
async fn walk(
    s: &mut Session,
    key: &Key,
    from: &str,
    name: &str,
    target: u64,
) -> Result<Vec<Chunk>> {
    let names = key.names();
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
        let bound = render_boundary(s, key, row, &context)?;
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
    Ok(chunks)
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
            literal: Literal::for_column(data_type, charset, None).expect("supported"),
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
        assert_eq!(col("int", None).render("-"), None);
        assert_eq!(col("int", None).render("1.5"), None);
        assert_eq!(
            col("bigint", None)
                .render("-9223372036854775808")
                .as_deref(),
            Some("-9223372036854775808")
        );
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
    fn only_integers_and_decimals_without_fraction_are_split_arithmetically() {
        let literal = |data_type, scale| Literal::for_column(data_type, None, scale);
        for t in [
            "tinyint",
            "SMALLINT",
            "mediumint",
            "int",
            "integer",
            "bigint",
        ] {
            assert_eq!(literal(t, Some("0")), Some(Literal::Integer), "{t}");
            assert_eq!(literal(t, None), Some(Literal::Integer), "{t}");
        }
        assert_eq!(literal("decimal", Some("0")), Some(Literal::Integer));
        assert_eq!(literal("numeric", Some("0")), Some(Literal::Integer));
        assert_eq!(literal("decimal", Some("2")), Some(Literal::Number));
        assert_eq!(literal("decimal", None), Some(Literal::Number));
        assert_eq!(literal("year", None), Some(Literal::Number));
    }

    /// `arithmetic_split` of `min..=max` as (lower, upper, estimated rows) triples.
    fn split(min: i128, max: i128, estimate: u64, target: u64) -> Option<Vec<SpanChunk>> {
        let chunks = arithmetic_split(min, max, estimate, target)?;
        // The invariants of every split: bounds strictly increasing within `min..max`, each
        // chunk's lower bound the previous one's upper bound, open ends, at most `target`
        // key values per chunk, shares adding up to the estimate.
        assert!(chunks.len() >= 2);
        assert_eq!(chunks[0].lower, None);
        assert_eq!(chunks.last().unwrap().upper, None);
        let mut prev = min - 1;
        for (i, c) in chunks.iter().enumerate() {
            if i > 0 {
                assert_eq!(c.lower, chunks[i - 1].upper);
            }
            let upper = c.upper.unwrap_or(max);
            assert!(upper > prev && upper >= min && upper <= max, "{chunks:?}");
            assert!((upper - prev) as u128 <= u128::from(target), "{chunks:?}");
            prev = upper;
        }
        assert_eq!(
            chunks
                .iter()
                .map(|c| u128::from(c.estimated_rows))
                .sum::<u128>(),
            u128::from(estimate)
        );
        Some(chunks)
    }

    fn c(lower: Option<i128>, upper: Option<i128>, estimated_rows: u64) -> SpanChunk {
        SpanChunk {
            lower,
            upper,
            estimated_rows,
        }
    }

    #[test]
    fn a_dense_span_is_cut_into_equal_ranges_of_at_most_target_values() {
        assert_eq!(
            split(1, 280, 280, 7).unwrap()[..2],
            [c(None, Some(7), 7), c(Some(7), Some(14), 7)]
        );
        assert_eq!(split(1, 280, 280, 7).unwrap().len(), 40);
        assert_eq!(split(1, 280, 280, 7).unwrap()[39], c(Some(273), None, 7));
        // 8 values in ranges of at most 7: two of 4, not 7 + 1.
        assert_eq!(
            split(1, 8, 8, 7),
            Some(vec![c(None, Some(4), 4), c(Some(4), None, 4)])
        );
        // 120001 values by 2000: 61 ranges of 1968 (the last 1921), not 60 and a runt.
        let s = split(1, 120_001, 120_001, 2000).unwrap();
        assert_eq!(s.len(), 61);
        assert_eq!(s[0].upper, Some(1968));
        assert_eq!(s[60].lower, Some(60 * 1968));
        // The estimate is shared in proportion to the values.
        assert_eq!(
            split(-10, 9, 10, 5),
            Some(vec![
                c(None, Some(-6), 2),
                c(Some(-6), Some(-1), 3),
                c(Some(-1), Some(4), 2),
                c(Some(4), None, 3),
            ])
        );
    }

    #[test]
    fn only_dense_spans_of_more_than_one_chunk_are_split() {
        // Span at most target: the walk counts those rows exactly.
        assert_eq!(split(1, 7, 100, 7), None);
        assert_eq!(split(5, 5, 100, 1), None);
        // Span at most twice the estimate.
        assert!(split(1, 200, 100, 7).is_some());
        assert_eq!(split(1, 201, 100, 7), None);
        assert_eq!(split(1, 1000, 0, 7), None);
        // Nonsense: an inverted span, an unbelievable estimate.
        assert_eq!(split(10, 1, 100, 7), None);
        assert_eq!(split(0, 10, u64::MAX, 7), None);
        assert!(split(1, 1 << 62, 1 << 62, 1 << 61).is_some());
    }

    #[test]
    fn bounds_at_the_ends_of_bigint_do_not_overflow() {
        let (imin, imax) = (i128::from(i64::MIN), i128::from(i64::MAX));
        let umax = i128::from(u64::MAX);
        // BIGINT UNSIGNED's last 100 values.
        let s = split(umax - 99, umax, 100, 10).unwrap();
        assert_eq!(s.len(), 10);
        assert_eq!(s[0].upper, Some(umax - 90));
        assert_eq!(s[9], c(Some(umax - 10), None, 10));
        // BIGINT's first 100 values.
        let s = split(imin, imin + 99, 100, 10).unwrap();
        assert_eq!(s[0], c(None, Some(imin + 9), 10));
        assert_eq!(s[9].lower, Some(imin + 89));
        // The whole of BIGINT and of BIGINT UNSIGNED: 2^64 values in 4 ranges.
        let quarter = 1i128 << 62;
        for (min, max) in [(imin, imax), (0, umax)] {
            let s = split(min, max, 1 << 63, 1 << 62).unwrap();
            assert_eq!(
                s.iter().map(|c| c.upper).collect::<Vec<_>>(),
                [
                    Some(min + quarter - 1),
                    Some(min + 2 * quarter - 1),
                    Some(min + 3 * quarter - 1),
                    None
                ]
            );
            assert!(s.iter().all(|c| c.estimated_rows == 1 << 61));
        }
        assert_eq!(
            split(imin, imax, 1 << 63, 1 << 62).unwrap()[1].upper,
            Some(-1)
        );
        // Spans no u64 estimate makes dense, up to i128's whole range (2^128 values, one
        // more than u128 counts): no panic, no split.
        assert_eq!(split(i128::MIN, i128::MAX, 1 << 63, 1), None);
        assert_eq!(split(i128::MIN, i128::MAX - 1, 1 << 63, 1), None);
        assert_eq!(split(i128::MIN + 1, i128::MAX, 1 << 63, 1), None);
        assert_eq!(split(-1, i128::MAX, 1 << 63, 1), None);
        // The largest believed estimate with the largest span it makes dense, 2^64 values.
        assert_eq!(split(0, (1 << 64) - 1, 1 << 63, 1 << 63).unwrap().len(), 2);
    }

    #[test]
    fn some_key_types_are_declined() {
        for t in [
            "float", "double", "enum", "set", "bit", "text", "blob", "json", "uuid", "inet6",
        ] {
            assert_eq!(Literal::for_column(t, Some("utf8mb4"), None), None, "{t}");
        }
        assert_eq!(Literal::for_column("varchar", None, None), None);
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
            literal: Literal::for_column(data_type, Some("utf8mb4"), Some("0")),
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
