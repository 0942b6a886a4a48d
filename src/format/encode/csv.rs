//! The CSV encoder of directory dumps (`--dir --format csv`): one header-free file per
//! chunk that `LOAD DATA [LOCAL] INFILE` reads back exactly, with the statement that does
//! so (`load_data_sql`) and the dialect's description for the manifest
//! (`dialect_description`).
//!
//! # The dialect
//!
//! RFC 4180 in shape, with LOAD DATA's backslash escape on top, because LOAD DATA needs an
//! escape character to tell NULL (`\N`) from the string `\N`:
//!
//! * Records end with `\n` (LF; RFC 4180 says CRLF, but LOAD DATA takes exactly one
//!   terminator sequence, `LINES TERMINATED BY '\n'` is its usual form, and with LF a
//!   CR in the data needs no care). Fields are separated by `,`. No header line. Every record has one field per stored column
//!   (generated columns are not in the file), in the order of `TableRead`'s SELECT.
//! * NULL is the bare (unquoted) two bytes `\N`.
//! * Text (character strings, temporal values, SET, JSON) is written bare, as is, when an
//!   unenclosed field reads it back unchanged: not empty, not the word `NULL` in any
//!   letter case (LOAD DATA reads a bare `NULL` as NULL), no space or control character
//!   (byte below 0x21) first or last, and none of `"`, `,`, `\n`, `\r`, `\` or NUL in it.
//!   Any other text, and every ENUM member, is enclosed in `"`. Inside, `"` is written
//!   `""` (RFC 4180), `\` is written `\\` and a NUL byte `\0`; every other byte is written
//!   as is, including raw `\n`, `\r`, `,` and Ctrl-Z (LOAD DATA takes a line terminator
//!   inside an enclosed field as data). So text without backslashes or NULs is plain RFC
//!   4180. Since such fields are enclosed, the empty string and the strings `NULL` and
//!   `\N` (written `""`, `"NULL"` and `"\\N"`) stay strings. Bare text costs the server
//!   less to parse than enclosed text (benches/README.md). Text is UTF-8 (`utf8mb4`, the
//!   dump connection's character set). Dumps written before bare text (every text value
//!   enclosed) are read by the same statement.
//! * Numbers (integers, DECIMAL, DOUBLE, YEAR, and FLOAT read as an exact DOUBLE) are bare,
//!   as the server prints them.
//! * Binary strings, BLOBs and spatial values are bare upper-case hex (`binary_encoding:
//!   hex`), an empty field for the empty string; loaded with `SET col = UNHEX(@var)`.
//! * BIT values are bare unsigned decimal integers (`b'101'` is `5`); loaded with
//!   `SET col = CAST(@var AS UNSIGNED)`, which restores the exact bits, all 64 of
//!   `BIT(64)` included.
//! * The ENUM error value (index 0, which the server shows as `''` and `read` returns as
//!   `catalog::ENUM_ERROR_VALUE`) is the bare `0`. So that no member can be read as the
//!   error value, a member that is `0` followed by zero or more spaces is written with one
//!   more trailing space (member `0` is `"0 "`); every other member is written as is.
//!   ENUM columns are loaded through a variable with two assignments:
//!   `SET e = IF(BINARY @v <> '0' AND BINARY TRIM(TRAILING ' ' FROM @v) = '0',
//!   LEFT(@v, LENGTH(@v) - 1), @v), e = IF(BINARY @v = '0', 0, e + 0)`. The first drops the
//!   added space and stores the member by name (for the error value `0` it stores the
//!   member `0` if there is one, else index 0); the second stores, as an integer, index 0
//!   for the error value and the index just stored otherwise. An integer-typed branch is
//!   needed: `IF(.., 0, @v)` is the string `'0'`, i.e. the member `0` where one exists.
//!   (Dropping the space in SQL rather than relying on the server ignoring trailing spaces
//!   when it stores an ENUM matters for `CHARACTER SET binary` ENUMs, whose members keep
//!   trailing spaces and are compared byte for byte: `'0'`, `'0 '` and `'0  '` may all be
//!   members.) Each error value makes LOAD DATA warn (1265 "Data truncated", once or
//!   twice), as the SQL restore's `INSERT ... 0` does.
//!
//! # The loader's session
//!
//! `load_data_sql` returns the statement only. The session running it must have:
//! * `sql_mode` without `STRICT_*` and without `NO_BACKSLASH_ESCAPES`, with
//!   `NO_AUTO_VALUE_ON_ZERO` — exactly `SET sql_mode='NO_AUTO_VALUE_ON_ZERO'` as the SQL
//!   restore uses: a row with auto-increment value 0 keeps it, storing the ENUM error
//!   value (integer 0) is a warning, not an error, and zero dates load. The statement's
//!   string literals (`'\\'`, `'\n'`, the file name) assume backslash escapes.
//! * `time_zone='+00:00'`: TIMESTAMPs are read in UTC.
//! * `foreign_key_checks=0` (chunks and tables load in any order) and, for speed,
//!   `unique_checks=0`.
//! * `character_set_client` utf8mb4 (`SET NAMES utf8mb4`) for the statement's identifiers;
//!   the file's character set is named by the statement (`CHARACTER SET utf8mb4`), so
//!   `character_set_database` does not matter. The dump's connection must read rows in
//!   utf8mb4 (its default) for the file to be utf8mb4.
//! * For `local`, a client with local-infile enabled and a server with `local_infile=ON`.
//!   Note that with LOCAL the server behaves as with `IGNORE` (duplicate keys skipped,
//!   conversion errors downgraded to warnings), so a loader must check the warnings; the
//!   only warning a faithful dump produces is 1265 for ENUM error values.
//!
//! Triggers fire on LOAD DATA as on INSERT: load rows before creating triggers.
//!
//! Not for: writing files or the manifest (see `dump::dir`), reading rows (see `dump::read`).

use crate::format::encode::push_hex;
use crate::format::objects::{ColumnKind, ENUM_ERROR_VALUE};
use crate::sql::quote::{ident, qualified, string_literal};

/// The character set of the file (the rows' text as the dump connection reads it).
pub const CHARACTER_SET: &str = "utf8mb4";

/// The FIELDS / LINES clause matching the files, as LOAD DATA takes it.
const FIELDS_AND_LINES: &str = "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' \
                                ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'";

/// Encodes rows into the CSV dialect described in the module doc.
#[derive(Debug, Clone)]
pub struct CsvEncoder {
    kinds: Vec<ColumnKind>,
}

impl CsvEncoder {
    /// `kinds` of the selected (stored) columns, in file order (`TableRead::kinds`).
    pub fn new(kinds: Vec<ColumnKind>) -> Self {
        CsvEncoder { kinds }
    }

    /// Appends one record; `cells[i]` is `None` for NULL.
    pub fn push_row(&self, cells: &[Option<&[u8]>], out: &mut Vec<u8>) {
        debug_assert_eq!(cells.len(), self.kinds.len(), "one cell per column");
        for (i, (cell, &kind)) in cells.iter().zip(&self.kinds).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let Some(bytes) = *cell else {
                out.extend_from_slice(b"\\N");
                continue;
            };
            match kind {
                ColumnKind::Number | ColumnKind::Float => out.extend_from_slice(bytes),
                ColumnKind::Bit => push_bit_decimal(bytes, out),
                ColumnKind::Binary => push_hex(bytes, out),
                ColumnKind::Enum if bytes == ENUM_ERROR_VALUE.as_bytes() => out.push(b'0'),
                ColumnKind::Enum if is_zero_and_spaces(bytes) => {
                    out.push(b'"');
                    out.extend_from_slice(bytes);
                    out.extend_from_slice(b" \"");
                }
                ColumnKind::Text => push_text(bytes, out),
                ColumnKind::Enum => push_enclosed(bytes, out),
            }
        }
        out.push(b'\n');
    }
}

/// `0` followed by nothing but spaces: ENUM members written with one more space.
fn is_zero_and_spaces(bytes: &[u8]) -> bool {
    bytes.first() == Some(&b'0') && bytes[1..].iter().all(|&b| b == b' ')
}

/// Appends a text value: bare when LOAD DATA reads it back as is without enclosing (see
/// [`is_bare`]), else enclosed ([`push_enclosed`]). Bare values cost the server less to
/// parse (benches/README.md, "Unquoted text").
fn push_text(bytes: &[u8], out: &mut Vec<u8>) {
    if is_bare(bytes) {
        out.extend_from_slice(bytes);
    } else {
        push_enclosed(bytes, out);
    }
}

/// Whether a text value can be written bare: LOAD DATA's unenclosed field reads it back
/// byte for byte and as a string. Not when it is empty, is the word `NULL` in any case
/// (an unenclosed `NULL` is read as NULL), begins or ends with a space or a control
/// character (so that no reader's trimming can change it), or holds `"` (an opening `"`
/// encloses), `,` or `\n` (terminators), `\r`, `\` (the escape, `\N` is NULL) or NUL.
fn is_bare(bytes: &[u8]) -> bool {
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first > b' '
        && last > b' '
        && !bytes.eq_ignore_ascii_case(b"NULL")
        && memchr::memchr3(b'"', b',', b'\\', bytes).is_none()
        && memchr::memchr3(b'\n', b'\r', 0, bytes).is_none()
}

/// Appends `bytes` enclosed in `"`: `"` doubled, `\` as `\\`, NUL as `\0`. The three are
/// found with memchr's vectorized search (a per-byte loop made CSV dumps cost more client
/// CPU than SQL ones: 2.5 s against 2.0 s on sysbench 8 x 1M).
fn push_enclosed(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for i in memchr::memchr3_iter(b'"', b'\\', 0, bytes) {
        let escaped: &[u8] = match bytes[i] {
            b'"' => b"\"\"",
            b'\\' => b"\\\\",
            0 => b"\\0",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escaped);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends a BIT value (big-endian bytes, at most 8 of them) as an unsigned decimal.
fn push_bit_decimal(bytes: &[u8], out: &mut Vec<u8>) {
    debug_assert!(
        bytes.iter().rev().skip(8).all(|&b| b == 0),
        "BIT values have at most 64 bits"
    );
    let mut value = bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let mut digits = [0u8; 20];
    let mut n = digits.len();
    loop {
        n -= 1;
        digits[n] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[n..]);
}

/// The LOAD DATA statement that reads a file written by `CsvEncoder` back into
/// `db`.`table`. `columns` are the stored columns in file order with their kinds (the
/// columns `TableRead` selects); `file` is the path as the server (or, with `local`, the
/// client) sees it. The statement only: see the module doc for the session it needs.
pub fn load_data_sql(
    file: &str,
    db: &str,
    table: &str,
    columns: &[(String, ColumnKind)],
    local: bool,
) -> String {
    let mut targets = Vec::with_capacity(columns.len());
    let mut sets = Vec::new();
    for (i, (name, kind)) in columns.iter().enumerate() {
        let col = ident(name);
        let var = format!("@c{i}");
        match kind {
            ColumnKind::Number | ColumnKind::Float | ColumnKind::Text => {
                targets.push(col);
                continue;
            }
            ColumnKind::Binary => sets.push(format!("{col} = UNHEX({var})")),
            ColumnKind::Bit => sets.push(format!("{col} = CAST({var} AS UNSIGNED)")),
            ColumnKind::Enum => {
                sets.push(format!(
                    "{col} = IF(BINARY {var} <> '0' AND BINARY TRIM(TRAILING ' ' FROM {var}) = '0', \
                     LEFT({var}, LENGTH({var}) - 1), {var})"
                ));
                sets.push(format!("{col} = IF(BINARY {var} = '0', 0, {col} + 0)"));
            }
        }
        targets.push(var);
    }
    let mut sql = format!(
        "LOAD DATA {}INFILE {} INTO TABLE {} CHARACTER SET {CHARACTER_SET} {FIELDS_AND_LINES} ({})",
        if local { "LOCAL " } else { "" },
        string_literal(file),
        qualified(db, table),
        targets.join(", ")
    );
    if !sets.is_empty() {
        sql.push_str(" SET ");
        sql.push_str(&sets.join(", "));
    }
    sql
}

/// The dialect, for the manifest: LOAD DATA's FIELDS/LINES settings plus how each kind of
/// value is written. Values are the literal characters (`"\n"` is a newline).
pub fn dialect_description() -> Vec<(&'static str, &'static str)> {
    vec![
        ("format", "csv"),
        ("header", "false"),
        ("character_set", CHARACTER_SET),
        ("fields_terminated_by", ","),
        ("fields_enclosed_by", "\""),
        ("fields_optionally_enclosed", "true"),
        ("fields_escaped_by", "\\"),
        ("lines_terminated_by", "\n"),
        ("null", "\\N"),
        ("quote_in_field", "\"\""),
        ("escaped_in_field", "\\\\ for \\, \\0 for NUL"),
        (
            "enclosed",
            "ENUM members, and text (character strings, temporal values, SET, JSON) that is \
             empty, is NULL in any case, begins or ends with a byte below 0x21, or holds \
             \", ',', LF, CR, \\ or NUL",
        ),
        (
            "bare",
            "numbers, FLOAT as exact DOUBLE, hex, BIT, NULL, all other text",
        ),
        ("binary_encoding", "hex"),
        ("bit_encoding", "unsigned decimal"),
        ("enum_error_value", "0"),
        (
            "enum_zero_members",
            "a member 0 followed by n spaces is written with n+1 spaces",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kinds: &[ColumnKind], cells: &[Option<&[u8]>]) -> Vec<u8> {
        let mut out = Vec::new();
        CsvEncoder::new(kinds.to_vec()).push_row(cells, &mut out);
        out
    }

    #[test]
    fn numbers_and_plain_text_are_bare_and_null_is_backslash_n() {
        let out = row(
            &[
                ColumnKind::Number,
                ColumnKind::Float,
                ColumnKind::Text,
                ColumnKind::Text,
            ],
            &[
                Some(b"-12.50"),
                Some(b"1.2345677661895752"),
                Some(b"a b"),
                None,
            ],
        );
        assert_eq!(out, b"-12.50,1.2345677661895752,a b,\\N\n");
    }

    /// Text is enclosed exactly where an unenclosed field would not read back as the
    /// same string (and where a reader might trim).
    #[test]
    fn text_is_enclosed_only_where_a_bare_field_would_change() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"a", b"a"),
            (b"a b", b"a b"),
            (b"2026-12-03 08:00:00", b"2026-12-03 08:00:00"),
            ("\u{e9}t\u{e9}".as_bytes(), "\u{e9}t\u{e9}".as_bytes()),
            (b"x\x1ay", b"x\x1ay"),
            (b"NULLx", b"NULLx"),
            (b"N", b"N"),
            (b"", b"\"\""),
            (b"NULL", b"\"NULL\""),
            (b"null", b"\"null\""),
            (b"NuLl", b"\"NuLl\""),
            (b"\\N", b"\"\\\\N\""),
            (b"a\\b", b"\"a\\\\b\""),
            (b" a ", b"\" a \""),
            (b"a ", b"\"a \""),
            (b" a", b"\" a\""),
            (b"\ta", b"\"\ta\""),
            (b"a\t", b"\"a\t\""),
            (b"\x1a", b"\"\x1a\""),
            (b"\"", b"\"\"\"\""),
            (b"\"x", b"\"\"\"x\""),
            (b"x\"", b"\"x\"\"\""),
            (b",", b"\",\""),
            (b"a,b", b"\"a,b\""),
            (b"a\nb", b"\"a\nb\""),
            (b"a\rb", b"\"a\rb\""),
            (b"a\0b", b"\"a\\0b\""),
        ];
        for (value, written) in cases {
            let out = row(&[ColumnKind::Text], &[Some(value)]);
            assert_eq!(
                out,
                [*written, b"\n"].concat(),
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn quotes_are_doubled_backslashes_and_nul_escaped_newlines_raw() {
        let out = row(
            &[ColumnKind::Text],
            &[Some(b"say \"hi\",\r\nback\\slash\0end")],
        );
        assert_eq!(out, b"\"say \"\"hi\"\",\r\nback\\\\slash\\0end\"\n");
    }

    /// The vectorized search against a byte-by-byte reference, for every byte value at
    /// every position of inputs around the search's block sizes.
    #[test]
    fn enclosed_text_matches_the_byte_by_byte_definition() {
        fn reference(bytes: &[u8]) -> Vec<u8> {
            let mut out = vec![b'"'];
            for &b in bytes {
                match b {
                    b'"' => out.extend_from_slice(b"\"\""),
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    0 => out.extend_from_slice(b"\\0"),
                    _ => out.push(b),
                }
            }
            out.push(b'"');
            out
        }
        for len in [1, 7, 15, 16, 17, 31, 32, 33, 64, 65] {
            for pos in 0..len {
                for b in 0..=255u8 {
                    let mut input = vec![b'x'; len];
                    input[pos] = b;
                    let mut out = Vec::new();
                    push_enclosed(&input, &mut out);
                    assert_eq!(out, reference(&input), "len {len} pos {pos} byte {b:#x}");
                }
            }
        }
    }

    #[test]
    fn the_strings_null_and_backslash_n_stay_strings() {
        let out = row(
            &[ColumnKind::Text, ColumnKind::Text, ColumnKind::Text],
            &[Some(b"NULL"), Some(b"\\N"), Some(b"")],
        );
        assert_eq!(out, b"\"NULL\",\"\\\\N\",\"\"\n");
    }

    #[test]
    fn binary_is_bare_upper_case_hex() {
        let out = row(
            &[ColumnKind::Binary, ColumnKind::Binary, ColumnKind::Binary],
            &[Some(&[0x00, 0x5c, 0xff, b'"']), Some(b""), None],
        );
        assert_eq!(out, b"005CFF22,,\\N\n");
    }

    #[test]
    fn bits_are_unsigned_decimals() {
        let out = row(
            &[
                ColumnKind::Bit,
                ColumnKind::Bit,
                ColumnKind::Bit,
                ColumnKind::Bit,
            ],
            &[
                Some(&[0x00]),
                Some(&[0x01, 0x00]),
                Some(&[0xff; 8]),
                Some(&[]),
            ],
        );
        assert_eq!(out, b"0,256,18446744073709551615,0\n");
    }

    #[test]
    fn enum_error_value_is_bare_zero_and_member_zero_gets_a_trailing_space() {
        let out = row(
            &[ColumnKind::Enum; 8],
            &[
                Some(ENUM_ERROR_VALUE.as_bytes()),
                Some(b"0"),
                Some(b"0  "),
                Some(b"00"),
                Some(b" 0"),
                Some(b""),
                Some(b"it's \"x\""),
                None,
            ],
        );
        assert_eq!(
            out,
            b"0,\"0 \",\"0   \",\"00\",\" 0\",\"\",\"it's \"\"x\"\"\",\\N\n"
        );
    }

    #[test]
    fn rows_append_to_the_buffer() {
        let enc = CsvEncoder::new(vec![ColumnKind::Number]);
        let mut out = Vec::new();
        enc.push_row(&[Some(b"1")], &mut out);
        enc.push_row(&[None], &mut out);
        assert_eq!(out, b"1\n\\N\n");
    }

    #[test]
    fn load_data_reads_plain_columns_directly() {
        let sql = load_data_sql(
            "/d/t.1.csv",
            "d",
            "t",
            &[
                ("id".into(), ColumnKind::Number),
                ("f".into(), ColumnKind::Float),
                ("s`q".into(), ColumnKind::Text),
            ],
            false,
        );
        assert_eq!(
            sql,
            "LOAD DATA INFILE '/d/t.1.csv' INTO TABLE `d`.`t` CHARACTER SET utf8mb4 \
             FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '\\\\' \
             LINES TERMINATED BY '\\n' (`id`, `f`, `s``q`)"
        );
    }

    #[test]
    fn load_data_converts_hex_bits_and_enums_through_variables() {
        let sql = load_data_sql(
            "it's.csv",
            "my db",
            "t",
            &[
                ("id".into(), ColumnKind::Number),
                ("b".into(), ColumnKind::Binary),
                ("bits".into(), ColumnKind::Bit),
                ("e".into(), ColumnKind::Enum),
            ],
            true,
        );
        assert_eq!(
            sql,
            "LOAD DATA LOCAL INFILE 'it\\'s.csv' INTO TABLE `my db`.`t` CHARACTER SET utf8mb4 \
             FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '\\\\' \
             LINES TERMINATED BY '\\n' (`id`, @c1, @c2, @c3) \
             SET `b` = UNHEX(@c1), `bits` = CAST(@c2 AS UNSIGNED), \
             `e` = IF(BINARY @c3 <> '0' AND BINARY TRIM(TRAILING ' ' FROM @c3) = '0', \
             LEFT(@c3, LENGTH(@c3) - 1), @c3), `e` = IF(BINARY @c3 = '0', 0, `e` + 0)"
        );
    }

    #[test]
    fn dialect_names_the_binary_encoding_and_separators() {
        let d = dialect_description();
        let get = |k: &str| d.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        assert_eq!(get("binary_encoding"), Some("hex"));
        assert_eq!(get("fields_terminated_by"), Some(","));
        assert_eq!(get("lines_terminated_by"), Some("\n"));
        assert_eq!(get("null"), Some("\\N"));
        assert_eq!(get("header"), Some("false"));
    }
}
