//! The `--tab` encoder: rows as delimited text in the format of SELECT ... INTO OUTFILE,
//! so `LOAD DATA INFILE` (or mysqlimport) with the same FIELDS/LINES options reads it back.
//!
//! Not for: the `.sql` schema file written beside it (see `dump::stream`).

use crate::format::objects::{ColumnKind, ENUM_ERROR_VALUE};

/// Byte strings for `--tab` field and line formatting, after escape processing (`\t` -> TAB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TabFormat {
    pub fields_terminated_by: Vec<u8>,
    pub fields_enclosed_by: Vec<u8>,
    /// `--fields-optionally-enclosed-by`: enclose only string columns.
    pub optionally_enclosed: bool,
    pub fields_escaped_by: Vec<u8>,
    pub lines_terminated_by: Vec<u8>,
    /// `--header`: a first line with the column names, formatted as a row of strings.
    pub header: bool,
}

impl Default for TabFormat {
    fn default() -> Self {
        TabFormat {
            fields_terminated_by: b"\t".to_vec(),
            fields_enclosed_by: Vec::new(),
            optionally_enclosed: false,
            fields_escaped_by: b"\\".to_vec(),
            lines_terminated_by: b"\n".to_vec(),
            header: false,
        }
    }
}

pub struct TabEncoder {
    format: TabFormat,
    kinds: Vec<ColumnKind>,
}

impl TabEncoder {
    pub fn new(format: TabFormat, kinds: Vec<ColumnKind>) -> TabEncoder {
        TabEncoder { format, kinds }
    }

    pub fn push_row(&self, cells: &[Option<&[u8]>], out: &mut Vec<u8>) {
        let f = &self.format;
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(&f.fields_terminated_by);
            }
            let Some(bytes) = cell else {
                if f.fields_escaped_by.is_empty() {
                    out.extend_from_slice(b"NULL");
                } else {
                    out.extend_from_slice(&f.fields_escaped_by);
                    out.push(b'N');
                }
                continue;
            };
            // INTO OUTFILE writes an ENUM's error value as the empty string.
            let bytes = match self.kinds[i] {
                ColumnKind::Enum if bytes == &ENUM_ERROR_VALUE.as_bytes() => &b""[..],
                _ => bytes,
            };
            // With --header mariadb-dump reads `SELECT <names> UNION ALL SELECT <row>`, where
            // every column is a string: optionally enclosed fields are then all enclosed.
            let is_string = f.header
                || matches!(
                    self.kinds[i],
                    ColumnKind::Text | ColumnKind::Binary | ColumnKind::Enum
                );
            let enclose = !f.fields_enclosed_by.is_empty() && (is_string || !f.optionally_enclosed);
            if enclose {
                out.extend_from_slice(&f.fields_enclosed_by);
            }
            self.escape(bytes, enclose, out);
            if enclose {
                out.extend_from_slice(&f.fields_enclosed_by);
            }
        }
        out.extend_from_slice(&f.lines_terminated_by);
    }

    /// `--header`: the column names as one line, each written as a string value would be
    /// (enclosed and escaped by the same rules), as mariadb-dump writes it.
    pub fn push_header(&self, names: &[String], out: &mut Vec<u8>) {
        let strings = TabEncoder {
            format: self.format.clone(),
            kinds: vec![ColumnKind::Text; names.len()],
        };
        let cells: Vec<Option<&[u8]>> = names.iter().map(|n| Some(n.as_bytes())).collect();
        strings.push_row(&cells, out);
    }

    /// Escapes as INTO OUTFILE does: the escape character itself, NUL as `\0`, the first
    /// byte of the line terminator, and the enclosure character inside an enclosed field or
    /// the first byte of the field terminator in a bare one, so LOAD DATA cannot mistake
    /// data for a separator.
    fn escape(&self, bytes: &[u8], enclosed: bool, out: &mut Vec<u8>) {
        let f = &self.format;
        let Some(&esc) = f.fields_escaped_by.first() else {
            out.extend_from_slice(bytes);
            return;
        };
        let enc = f.fields_enclosed_by.first().copied();
        let term = f.fields_terminated_by.first().copied();
        let line = f.lines_terminated_by.first().copied();
        for &b in bytes {
            if b == 0 {
                out.push(esc);
                out.push(b'0');
                continue;
            }
            let special = b == esc
                || Some(b) == line
                || if enclosed {
                    Some(b) == enc
                } else {
                    Some(b) == term
                };
            if special {
                out.push(esc);
            }
            out.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(format: TabFormat, kinds: Vec<ColumnKind>, cells: &[Option<&[u8]>]) -> Vec<u8> {
        let mut out = Vec::new();
        TabEncoder::new(format, kinds).push_row(cells, &mut out);
        out
    }

    #[test]
    fn default_format_is_tab_separated_with_backslash_escapes() {
        let out = row(
            TabFormat::default(),
            vec![ColumnKind::Number, ColumnKind::Text, ColumnKind::Text],
            &[Some(b"1"), Some(b"a\tb\nc\\d\0"), None],
        );
        assert_eq!(out, b"1\ta\\\tb\\\nc\\\\d\\0\t\\N\n");
    }

    #[test]
    fn optionally_enclosed_quotes_only_strings() {
        let format = TabFormat {
            fields_terminated_by: b",".to_vec(),
            fields_enclosed_by: b"\"".to_vec(),
            optionally_enclosed: true,
            ..TabFormat::default()
        };
        let out = row(
            format,
            vec![ColumnKind::Number, ColumnKind::Text],
            &[Some(b"7"), Some(b"say \"hi\", ok")],
        );
        assert_eq!(out, b"7,\"say \\\"hi\\\", ok\"\n");
    }

    #[test]
    fn line_terminator_is_escaped_inside_enclosed_fields_too() {
        let format = TabFormat {
            fields_terminated_by: b",".to_vec(),
            fields_enclosed_by: b"\"".to_vec(),
            optionally_enclosed: true,
            lines_terminated_by: b"\r\n".to_vec(),
            ..TabFormat::default()
        };
        let out = row(format, vec![ColumnKind::Binary], &[Some(b"\t\n\r,")]);
        assert_eq!(out, b"\"\t\n\\\r,\"\r\n");
    }

    #[test]
    fn without_escape_character_null_is_the_word_null() {
        let format = TabFormat {
            fields_escaped_by: Vec::new(),
            ..TabFormat::default()
        };
        let out = row(format, vec![ColumnKind::Text], &[None]);
        assert_eq!(out, b"NULL\n");
    }
}
