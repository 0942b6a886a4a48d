//! The `--xml` encoder: mariadb-dump's XML document, byte for byte.
//!
//! The document is `<mysqldump>` with one `<database>` per dumped database holding, per
//! table, `<table_structure>` (a `<field>` per column, a `<key>` per index column and an
//! `<options>` element, each an element whose attributes are the columns of the server's
//! answer: INFORMATION_SCHEMA.COLUMNS, SHOW KEYS, SHOW TABLE STATUS), `<table_data>` (a
//! `<row>` of `<field name="...">` per row) and `<triggers>`; then `<events>` and
//! `<routines>` whose definitions are CDATA sections. The escaping is mariadb-dump's:
//! `<`, `>`, `&` and `"` become entities, every other byte is written as it is (binary
//! values too, unless `--hex-blob`); numbers are written as the server sent them (FLOAT
//! with its 6 significant digits, as mariadb-dump, not widened as rdump's SQL does).
//!
//! Element helpers here take values as bytes and append to a caller's buffer; the
//! orchestration (which queries, in which order) is `dump::stream::xml`. Not for: I/O, or the SQL
//! text mariadb-dump writes raw into its XML (sequences reuse `format::script`).

use crate::format::encode::push_hex;
use crate::format::objects::ColumnKind;

/// The document's first two lines.
pub const HEADER: &str = "<?xml version=\"1.0\"?>\n\
     <mysqldump xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n";
/// The document's last line.
pub const FOOTER: &str = "</mysqldump>\n";

/// Appends `bytes` with `<`, `>`, `&`, `"` as entities; in an attribute *name* a space
/// becomes `_` (SHOW's `Database Collation` is written `Database_Collation`).
pub fn push_escaped(bytes: &[u8], attribute_name: bool, out: &mut Vec<u8>) {
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let entity: &[u8] = match b {
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'&' => b"&amp;",
            b'"' => b"&quot;",
            b' ' if attribute_name => b"_",
            _ => continue,
        };
        out.extend_from_slice(&bytes[run..i]);
        out.extend_from_slice(entity);
        run = i + 1;
    }
    out.extend_from_slice(&bytes[run..]);
}

/// `indent<name a="v" ...>end`: an opening tag with escaped attribute values.
pub fn push_open_tag(
    indent: &str,
    name: &str,
    attributes: &[(&str, &[u8])],
    end: &str,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(indent.as_bytes());
    out.push(b'<');
    out.extend_from_slice(name.as_bytes());
    for (attr, value) in attributes {
        out.push(b' ');
        out.extend_from_slice(attr.as_bytes());
        out.extend_from_slice(b"=\"");
        push_escaped(value, false, out);
        out.push(b'"');
    }
    out.push(b'>');
    out.extend_from_slice(end.as_bytes());
}

/// A CDATA section on lines of its own; `]]>` inside is split across two sections.
pub fn push_cdata(text: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"<![CDATA[\n");
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(b"]]>") {
            out.extend_from_slice(b"]]]]><![CDATA[>");
            i += 3;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out.extend_from_slice(b"\n]]>\n");
}

/// One row of a server answer as an element, `\t\t<element Col="value" ... />`: every
/// non-NULL column an attribute (names with spaces get `_`), in the answer's order. The
/// column named `body` (a CREATE statement), if any, becomes the element's CDATA content.
pub fn push_row_element(
    element: &str,
    columns: &[String],
    values: &[Option<Vec<u8>>],
    body: Option<&str>,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(b"\t\t<");
    out.extend_from_slice(element.as_bytes());
    let mut content: Option<&[u8]> = None;
    for (name, value) in columns.iter().zip(values) {
        let Some(value) = value else { continue };
        if body == Some(name.as_str()) {
            content = Some(value);
            continue;
        }
        out.push(b' ');
        push_escaped(name.as_bytes(), true, out);
        out.extend_from_slice(b"=\"");
        push_escaped(value, false, out);
        out.push(b'"');
    }
    match content {
        // An empty definition is written as no definition, as mariadb-dump does.
        Some(text) if !text.is_empty() => {
            out.extend_from_slice(b">\n");
            push_cdata(text, out);
            out.extend_from_slice(b"\t\t</");
            out.extend_from_slice(element.as_bytes());
            out.extend_from_slice(b">\n");
        }
        _ => out.extend_from_slice(b" />\n"),
    }
}

/// An XML comment, as mariadb-dump turns its SQL comments into one (`--comments` given
/// with `--xml`): `<!-- text -->`, every `-` followed by another `-` dropped.
pub fn push_comment(bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"<!-- ");
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'-' && bytes.get(i + 1) == Some(&b'-') {
            continue;
        }
        out.push(b);
    }
    out.extend_from_slice(b" -->\n");
}

/// A name inside a comment, as mariadb-dump's `fix_for_comment`: a line break inside it is
/// followed by `-- `.
pub fn fix_for_comment(name: &str) -> String {
    name.replace('\n', "\n-- ")
}

/// How a column's value is written inside `<field>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    /// Numbers (integers, DECIMAL, FLOAT, DOUBLE, YEAR): as sent.
    Number,
    /// Binary strings, BLOBs, BIT and spatial values: hex with `--hex-blob`, else escaped.
    Binary,
    /// Everything else: escaped text.
    Text,
}

/// Rows as `<row>` elements of `<field name="...">` values.
#[derive(Debug, Clone)]
pub struct XmlRowEncoder {
    /// `\t\t<field name="col"` for each column, escaped once.
    field_open: Vec<Vec<u8>>,
    values: Vec<Value>,
    hex_blob: bool,
}

impl XmlRowEncoder {
    /// `columns`: the selected columns' names (in the connection's character set) and
    /// kinds, in the SELECT's order.
    pub fn new(columns: &[(Vec<u8>, ColumnKind)], hex_blob: bool) -> XmlRowEncoder {
        let field_open = columns
            .iter()
            .map(|(name, _)| {
                let mut open = b"\t\t<field name=\"".to_vec();
                push_escaped(name, false, &mut open);
                open.push(b'"');
                open
            })
            .collect();
        let values = columns
            .iter()
            .map(|(_, kind)| match kind {
                ColumnKind::Number | ColumnKind::Float => Value::Number,
                ColumnKind::Binary | ColumnKind::Bit => Value::Binary,
                ColumnKind::Text | ColumnKind::Enum => Value::Text,
            })
            .collect();
        XmlRowEncoder {
            field_open,
            values,
            hex_blob,
        }
    }

    /// Appends one `<row>` element.
    pub fn push_row(&self, cells: &[Option<&[u8]>], out: &mut Vec<u8>) {
        out.extend_from_slice(b"\t<row>\n");
        for (i, cell) in cells.iter().enumerate() {
            out.extend_from_slice(&self.field_open[i]);
            let Some(bytes) = cell else {
                out.extend_from_slice(b" xsi:nil=\"true\" />\n");
                continue;
            };
            match self.values[i] {
                Value::Binary if self.hex_blob && !bytes.is_empty() => {
                    out.extend_from_slice(b" xsi:type=\"xs:hexBinary\">");
                    push_hex(bytes, out);
                }
                // mariadb-dump writes a non-number ("inf", "nan") as NULL.
                Value::Number if bytes.first().is_some_and(u8::is_ascii_alphabetic) => {
                    out.extend_from_slice(b">NULL");
                }
                Value::Number => {
                    out.push(b'>');
                    out.extend_from_slice(bytes);
                }
                Value::Binary | Value::Text => {
                    out.push(b'>');
                    push_escaped(bytes, false, out);
                }
            }
            out.extend_from_slice(b"</field>\n");
        }
        out.extend_from_slice(b"\t</row>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(out: Vec<u8>) -> String {
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_the_four_characters_and_keeps_the_rest() {
        let mut out = Vec::new();
        push_escaped("a&b<c>\"d\"'e é".as_bytes(), false, &mut out);
        assert_eq!(text(out), "a&amp;b&lt;c&gt;&quot;d&quot;'e é");
        let mut out = Vec::new();
        push_escaped(b"Database Collation", true, &mut out);
        assert_eq!(text(out), "Database_Collation");
    }

    #[test]
    fn rows_write_nulls_numbers_text_and_hex() {
        let cols = [
            (b"id".to_vec(), ColumnKind::Number),
            (b"s".to_vec(), ColumnKind::Text),
            (b"b".to_vec(), ColumnKind::Binary),
            (b"e".to_vec(), ColumnKind::Binary),
        ];
        let mut out = Vec::new();
        XmlRowEncoder::new(&cols, true)
            .push_row(&[Some(b"1"), None, Some(&[0, 0xff]), Some(b"")], &mut out);
        assert_eq!(
            text(out),
            "\t<row>\n\t\t<field name=\"id\">1</field>\n\t\t<field name=\"s\" xsi:nil=\"true\" />\n\
             \t\t<field name=\"b\" xsi:type=\"xs:hexBinary\">00FF</field>\n\
             \t\t<field name=\"e\"></field>\n\t</row>\n"
        );
    }

    #[test]
    fn row_elements_skip_nulls_and_put_the_body_in_cdata() {
        let cols = [
            "Trigger",
            "sql_mode",
            "SQL Original Statement",
            "Database Collation",
        ]
        .map(String::from);
        let vals = [
            Some(b"tr".to_vec()),
            None,
            Some(b"CREATE x ]]> y".to_vec()),
            Some(b"utf8mb4_general_ci".to_vec()),
        ];
        let mut out = Vec::new();
        push_row_element(
            "trigger",
            &cols,
            &vals,
            Some("SQL Original Statement"),
            &mut out,
        );
        assert_eq!(
            text(out),
            "\t\t<trigger Trigger=\"tr\" Database_Collation=\"utf8mb4_general_ci\">\n\
             <![CDATA[\nCREATE x ]]]]><![CDATA[> y\n]]>\n\t\t</trigger>\n"
        );
    }

    #[test]
    fn comments_lose_double_hyphens() {
        let mut out = Vec::new();
        push_comment(b"\n--\n-- Dumping data for table `t`\n--\n", &mut out);
        assert_eq!(
            text(out),
            "<!-- \n-\n- Dumping data for table `t`\n-\n -->\n"
        );
    }
}
