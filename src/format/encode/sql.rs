//! The SQL encoder: rows into `INSERT INTO ... VALUES (...),(...);` statements.
//!
//! Extended INSERTs are split so that no statement exceeds `net_buffer_length` (a single
//! row larger than that gets a statement of its own, as mysqldump does). Not for: table
//! structure or session statements (see `dump::stream`).

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
        SqlEncoder {
            prefix: prefix.into_bytes(),
            kinds,
            style,
            open_len: 0,
        }
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
        out.push(b'(');
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            encode_value(*cell, self.kinds[i], self.style.hex_blob, out);
        }
        out.push(b')');
        let row_len = out.len() - row_at;

        if !self.style.extended {
            out.extend_from_slice(b";\n");
            return;
        }
        // ",\n" before the row and ";\n" after it count toward the limit.
        if continues && self.open_len + 2 + row_len + 2 > self.style.net_buffer_length {
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
        let mut enc = SqlEncoder::new("`t`", None, vec![ColumnKind::Number], style(true, 35));
        let out = encode(&mut enc, &[&[Some(b"1")], &[Some(b"2")], &[Some(b"3")]]);
        assert_eq!(
            out,
            "INSERT INTO `t` VALUES (1),\n(2);\nINSERT INTO `t` VALUES (3);\n"
        );
        for stmt in out.split_inclusive(";\n") {
            assert!(stmt.len() <= 35, "{stmt:?}");
        }
    }

    #[test]
    fn a_row_larger_than_the_limit_gets_its_own_statement() {
        let big = vec![b'x'; 100];
        let mut enc = SqlEncoder::new("`t`", None, vec![ColumnKind::Text], style(true, 30));
        let out = encode(&mut enc, &[&[Some(b"a")], &[Some(&big)], &[Some(b"b")]]);
        assert_eq!(out.matches("INSERT INTO").count(), 3);
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
