//! The SQL encoder: rows into `INSERT INTO ... VALUES (...),(...);` statements.
//!
//! Extended INSERTs are split so that no statement exceeds `net_buffer_length` (a single
//! row larger than that gets a statement of its own, as mysqldump does). Where a statement
//! ends depends only on the rows before it in the table (`continues_statement`): rows read
//! in key-range chunks by several connections are encoded as separated rows
//! (`SqlEncoder::push_separated_row`) and joined into statements in table order by a
//! `StatementJoiner`, which cuts them at the same rows as one `SqlEncoder` over the whole
//! table. Not for: table structure or session statements (see `dump::stream`).

use crate::format::charset::TextCharset;
use crate::format::encode::{push_bit_literal, push_hex};
use crate::format::objects::{ColumnKind, ENUM_ERROR_VALUE};
use crate::format::shape::InsertMode;
use crate::sql::quote::escape_into;

/// Settings of an INSERT encoder, from the plan's `Shape`.
#[derive(Debug, Clone, Copy)]
pub struct InsertStyle {
    pub mode: InsertMode,
    /// `--delayed-insert`, for a table whose engine takes INSERT DELAYED.
    pub delayed: bool,
    pub extended: bool,
    pub hex_blob: bool,
    pub net_buffer_length: usize,
    /// The dump's character set: the table and column names of each statement are in it.
    pub charset: TextCharset,
}

/// Encodes the rows of one table (or one chunk of it) into INSERT statements.
pub struct SqlEncoder {
    /// `INSERT INTO `t` (`a`,`b`) VALUES ` — written at the start of each statement.
    prefix: Vec<u8>,
    kinds: Vec<ColumnKind>,
    style: InsertStyle,
    /// Length of the statement written so far; 0 when no statement is open.
    open_len: usize,
}

impl SqlEncoder {
    /// `quoted_table` is already quoted; `column_list` is `Some("(`a`,`b`)")` when the
    /// INSERT must name its columns (complete-insert, generated or invisible columns).
    pub fn new(
        quoted_table: &str,
        column_list: Option<&str>,
        kinds: Vec<ColumnKind>,
        style: InsertStyle,
    ) -> SqlEncoder {
        SqlEncoder {
            prefix: statement_prefix(quoted_table, column_list, style),
            kinds,
            style,
            open_len: 0,
        }
    }

    /// Appends `(v1,v2,...)`.
    fn push_values(&self, cells: &[Option<&[u8]>], out: &mut Vec<u8>) {
        out.push(b'(');
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            encode_value(*cell, self.kinds[i], self.style.hex_blob, out);
        }
        out.push(b')');
    }

    /// For extended INSERTs read in chunks: appends `,\n(v1,v2,...)` and returns the length
    /// of the row's `(...)`; a `StatementJoiner` later decides which separators start a new
    /// statement instead. Without extended INSERTs, appends the row's whole statement (as
    /// `push_row`) and returns 0.
    pub fn push_separated_row(&mut self, cells: &[Option<&[u8]>], out: &mut Vec<u8>) -> usize {
        if !self.style.extended {
            self.push_row(cells, out);
            return 0;
        }
        out.extend_from_slice(b",\n");
        let row_at = out.len();
        self.push_values(cells, out);
        out.len() - row_at
    }

    /// Appends one row; `cells[i]` is `None` for NULL. The row is encoded in place in
    /// `out`; in the rare case it does not fit the open statement, the separator before it
    /// becomes `;\n` and a new statement's prefix (moving the row once per statement rather
    /// than copying every row).
    pub fn push_row(&mut self, cells: &[Option<&[u8]>], out: &mut Vec<u8>) {
        let continues = self.style.extended && self.open_len > 0;
        let sep_at = out.len();
        if continues {
            out.extend_from_slice(b",\n");
        } else {
            out.extend_from_slice(&self.prefix);
        }
        let row_at = out.len();
        self.push_values(cells, out);
        let row_len = out.len() - row_at;

        if !self.style.extended {
            out.extend_from_slice(b";\n");
            return;
        }
        if continues && !continues_statement(self.open_len, row_len, self.style.net_buffer_length) {
            let mut restart = Vec::with_capacity(2 + self.prefix.len());
            restart.extend_from_slice(b";\n");
            restart.extend_from_slice(&self.prefix);
            out.splice(sep_at..sep_at + 2, restart);
            self.open_len = self.prefix.len() + row_len;
        } else if continues {
            self.open_len += 2 + row_len;
        } else {
            self.open_len = self.prefix.len() + row_len;
        }
    }

    /// Closes the open statement, if any.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.open_len > 0 {
            out.extend_from_slice(b";\n");
            self.open_len = 0;
        }
    }
}

/// `INSERT INTO `t` (`a`,`b`) VALUES `: the start of each statement, in the dump's
/// character set.
fn statement_prefix(quoted_table: &str, column_list: Option<&str>, style: InsertStyle) -> Vec<u8> {
    let verb = match (style.mode, style.delayed) {
        (InsertMode::Insert, false) => "INSERT",
        (InsertMode::InsertIgnore, false) => "INSERT IGNORE",
        (InsertMode::Replace, false) => "REPLACE",
        (InsertMode::Insert, true) => "INSERT DELAYED",
        (InsertMode::InsertIgnore, true) => "INSERT DELAYED IGNORE",
        (InsertMode::Replace, true) => "REPLACE DELAYED",
    };
    let mut prefix = format!("{verb} INTO {quoted_table} ");
    if let Some(list) = column_list {
        prefix.push_str(list);
        prefix.push(' ');
    }
    prefix.push_str("VALUES ");
    style.charset.encode(&prefix).into_owned()
}

/// Whether a row of `row_len` bytes joins the open statement of `open_len` bytes (0: none
/// open) rather than starting the next one, by mariadb-dump's count: the statement with
/// ",\n" and the row, plus 6 bytes it reserves (its `init_length`, the pattern's length + 4,
/// and the first row's 2), must stay under `limit` (net_buffer_length).
fn continues_statement(open_len: usize, row_len: usize, limit: usize) -> bool {
    open_len > 0 && open_len + 2 + row_len + 6 < limit
}

/// Rows encoded by `SqlEncoder::push_separated_row`: each row's `,\n(...)` in `bytes`, and
/// each row's `(...)` length in `row_lens` (empty without extended INSERTs, when `bytes`
/// holds whole statements).
#[derive(Debug, Default)]
pub struct SeparatedRows {
    pub bytes: Vec<u8>,
    pub row_lens: Vec<usize>,
}

impl SeparatedRows {
    pub fn with_capacity(bytes: usize) -> SeparatedRows {
        SeparatedRows {
            bytes: Vec::with_capacity(bytes),
            row_lens: Vec::new(),
        }
    }
}

/// Joins a table's `SeparatedRows`, handed over in table order, into extended INSERT
/// statements cut exactly where one `SqlEncoder` over all the rows would cut them. The bytes
/// pass through in runs (one write per statement and piece), never row by row.
pub struct StatementJoiner {
    prefix: Vec<u8>,
    style: InsertStyle,
    open_len: usize,
}

impl StatementJoiner {
    pub fn new(quoted_table: &str, column_list: Option<&str>, style: InsertStyle) -> Self {
        StatementJoiner {
            prefix: statement_prefix(quoted_table, column_list, style),
            style,
            open_len: 0,
        }
    }

    /// Writes the next rows of the table through `write`.
    pub fn write<E>(
        &mut self,
        rows: &SeparatedRows,
        mut write: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        if !self.style.extended {
            return write(&rows.bytes);
        }
        let bytes = &rows.bytes;
        // `run`: the start of the bytes not written yet; `at`: the current row's ",\n".
        let (mut run, mut at) = (0, 0);
        for &len in &rows.row_lens {
            if continues_statement(self.open_len, len, self.style.net_buffer_length) {
                self.open_len += 2 + len;
            } else {
                write(&bytes[run..at])?;
                if self.open_len > 0 {
                    write(b";\n")?;
                }
                write(&self.prefix)?;
                self.open_len = self.prefix.len() + len;
                run = at + 2;
            }
            at += 2 + len;
        }
        debug_assert_eq!(at, bytes.len(), "row lengths cover the bytes");
        write(&bytes[run..])
    }

    /// Closes the open statement, if any.
    pub fn finish<E>(&mut self, mut write: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        if self.open_len > 0 {
            self.open_len = 0;
            write(b";\n")?;
        }
        Ok(())
    }
}

/// Appends one value as an SQL literal.
#[inline]
pub fn encode_value(cell: Option<&[u8]>, kind: ColumnKind, hex_blob: bool, out: &mut Vec<u8>) {
    let Some(bytes) = cell else {
        out.extend_from_slice(b"NULL");
        return;
    };
    match kind {
        ColumnKind::Number | ColumnKind::Float => out.extend_from_slice(bytes),
        ColumnKind::Bit => push_bit_literal(bytes, out),
        ColumnKind::Enum if bytes == ENUM_ERROR_VALUE.as_bytes() => out.push(b'0'),
        ColumnKind::Binary if hex_blob && !bytes.is_empty() => {
            out.extend_from_slice(b"0x");
            push_hex(bytes, out);
        }
        ColumnKind::Binary | ColumnKind::Text | ColumnKind::Enum => {
            out.push(b'\'');
            escape_into(bytes, out);
            out.push(b'\'');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn style(extended: bool, limit: usize) -> InsertStyle {
        InsertStyle {
            mode: InsertMode::Insert,
            delayed: false,
            extended,
            hex_blob: false,
            net_buffer_length: limit,
            charset: TextCharset::of("utf8mb4"),
        }
    }

    fn encode(enc: &mut SqlEncoder, rows: &[&[Option<&[u8]>]]) -> String {
        let mut out = Vec::new();
        for r in rows {
            enc.push_row(r, &mut out);
        }
        enc.finish(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn extended_insert_joins_rows_in_one_statement() {
        let mut enc = SqlEncoder::new(
            "`t`",
            None,
            vec![ColumnKind::Number, ColumnKind::Text],
            style(true, 1 << 20),
        );
        let out = encode(
            &mut enc,
            &[&[Some(b"1"), Some(b"a'b")], &[Some(b"2"), None]],
        );
        assert_eq!(out, "INSERT INTO `t` VALUES (1,'a\\'b'),\n(2,NULL);\n");
    }

    #[test]
    fn extended_insert_splits_at_net_buffer_length() {
        // 23 bytes of prefix, 3 a row: (1) is 26 bytes, with (2) 31 (37 counted, < 40),
        // with (3) it would be 42 counted.
        let mut enc = SqlEncoder::new("`t`", None, vec![ColumnKind::Number], style(true, 40));
        let out = encode(&mut enc, &[&[Some(b"1")], &[Some(b"2")], &[Some(b"3")]]);
        assert_eq!(
            out,
            "INSERT INTO `t` VALUES (1),\n(2);\nINSERT INTO `t` VALUES (3);\n"
        );
        for stmt in out.split_inclusive(";\n") {
            assert!(stmt.len() <= 40, "{stmt:?}");
        }
    }

    #[test]
    fn a_row_larger_than_the_limit_gets_its_own_statement() {
        let big = vec![b'x'; 100];
        let mut enc = SqlEncoder::new("`t`", None, vec![ColumnKind::Text], style(true, 30));
        let out = encode(&mut enc, &[&[Some(b"a")], &[Some(&big)], &[Some(b"b")]]);
        assert_eq!(out.matches("INSERT INTO").count(), 3);
    }

    /// Rows of varied lengths, cut into pieces anywhere and joined, give the same bytes as
    /// one encoder over all of them: statement ends depend on the rows, not the pieces.
    #[test]
    fn joined_pieces_cut_statements_where_one_encoder_does() {
        let values: Vec<Vec<u8>> = (0..400u32)
            .map(|i| vec![b'a' + (i % 26) as u8; ((i * 7919) % 97) as usize])
            .collect();
        for (extended, limit) in [(true, 60), (true, 300), (true, 4096), (false, 100)] {
            let kinds = vec![ColumnKind::Number, ColumnKind::Text];
            let st = style(extended, limit);
            let mut one = SqlEncoder::new("`t`", Some("(`a`,`b`)"), kinds.clone(), st);
            let ids: Vec<String> = (0..values.len()).map(|i| i.to_string()).collect();
            let rows: Vec<[Option<&[u8]>; 2]> = values
                .iter()
                .zip(&ids)
                .map(|(v, id)| [Some(id.as_bytes()), Some(v.as_slice())])
                .collect();
            let mut expected = Vec::new();
            for r in &rows {
                one.push_row(r, &mut expected);
            }
            one.finish(&mut expected);
            for piece_rows in [1, 3, 7, 64, 1000] {
                let mut joiner = StatementJoiner::new("`t`", Some("(`a`,`b`)"), st);
                let mut got = Vec::new();
                for piece in rows.chunks(piece_rows) {
                    // Each piece (a chunk) has an encoder of its own, as in the pool.
                    let mut enc = SqlEncoder::new("`t`", Some("(`a`,`b`)"), kinds.clone(), st);
                    let mut sep = SeparatedRows::default();
                    for r in piece {
                        let len = enc.push_separated_row(r, &mut sep.bytes);
                        if extended {
                            sep.row_lens.push(len);
                        }
                    }
                    joiner
                        .write(&sep, |b| {
                            got.extend_from_slice(b);
                            Ok::<(), ()>(())
                        })
                        .unwrap();
                }
                joiner
                    .finish(|b| {
                        got.extend_from_slice(b);
                        Ok::<(), ()>(())
                    })
                    .unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&expected),
                    "extended {extended}, limit {limit}, {piece_rows} rows a piece"
                );
            }
        }
    }

    #[test]
    fn single_row_inserts_with_column_list_and_replace() {
        let mut s = style(false, 100);
        s.mode = InsertMode::Replace;
        let mut enc = SqlEncoder::new("`t`", Some("(`a`)"), vec![ColumnKind::Number], s);
        let out = encode(&mut enc, &[&[Some(b"1")], &[Some(b"2")]]);
        assert_eq!(
            out,
            "REPLACE INTO `t` (`a`) VALUES (1);\nREPLACE INTO `t` (`a`) VALUES (2);\n"
        );
    }

    #[test]
    fn insert_ignore_verb() {
        let mut s = style(true, 100);
        s.mode = InsertMode::InsertIgnore;
        let mut enc = SqlEncoder::new("`t`", None, vec![ColumnKind::Number], s);
        assert!(encode(&mut enc, &[&[Some(b"1")]]).starts_with("INSERT IGNORE INTO"));
    }

    #[test]
    fn empty_table_writes_nothing() {
        let mut enc = SqlEncoder::new("`t`", None, vec![ColumnKind::Number], style(true, 100));
        assert_eq!(encode(&mut enc, &[]), "");
    }

    #[test]
    fn values_by_kind() {
        let mut out = Vec::new();
        encode_value(Some(b"-1.5e-7"), ColumnKind::Float, false, &mut out);
        out.push(b' ');
        encode_value(Some(&[0x01, 0x00]), ColumnKind::Bit, false, &mut out);
        out.push(b' ');
        encode_value(
            Some(&[0x00, 0xff, b'\'']),
            ColumnKind::Binary,
            true,
            &mut out,
        );
        out.push(b' ');
        encode_value(
            Some(&[0x00, 0xff, b'\'']),
            ColumnKind::Binary,
            false,
            &mut out,
        );
        out.push(b' ');
        encode_value(Some(b""), ColumnKind::Binary, true, &mut out);
        out.push(b' ');
        encode_value(None, ColumnKind::Text, false, &mut out);
        out.push(b' ');
        encode_value(
            Some(ENUM_ERROR_VALUE.as_bytes()),
            ColumnKind::Enum,
            false,
            &mut out,
        );
        out.push(b' ');
        encode_value(Some(b"a"), ColumnKind::Enum, false, &mut out);
        assert_eq!(
            out,
            b"-1.5e-7 b'100000000' 0x00FF27 '\\0\xff\\'' '' NULL 0 'a'"
        );
    }
}
