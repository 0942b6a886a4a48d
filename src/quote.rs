//! Quoting of identifiers and string literals for the SQL rdump writes.
//!
//! Every name that reaches the output or a query goes through `ident`; every string value
//! through `string_literal`. Not for: row values (see `encode`), which are escaped in place
//! into the output buffer without allocating.

/// `name` as a backtick-quoted identifier, with backticks doubled.
pub fn ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('`');
    for c in name.chars() {
        if c == '`' {
            out.push('`');
        }
        out.push(c);
    }
    out.push('`');
    out
}

/// `db`.`name`.
pub fn qualified(db: &str, name: &str) -> String {
    format!("{}.{}", ident(db), ident(name))
}

/// `s` as a single-quoted SQL string literal, escaped as mysql_real_escape_string does.
pub fn string_literal(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    out.push(b'\'');
    escape_into(s.as_bytes(), &mut out);
    out.push(b'\'');
    // Escaping only inserts ASCII bytes before ASCII bytes, so UTF-8 stays valid.
    String::from_utf8(out).expect("escaping keeps UTF-8 valid")
}

/// Appends `bytes` escaped for use inside a single- or double-quoted SQL string literal:
/// NUL, newline, carriage return, backslash, both quotes and Ctrl-Z get a backslash escape.
#[inline]
pub fn escape_into(bytes: &[u8], out: &mut Vec<u8>) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc = match b {
            0 => b'0',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\\' => b'\\',
            b'\'' => b'\'',
            b'"' => b'"',
            0x1a => b'Z',
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.push(b'\\');
        out.push(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// A name made safe for an SQL `--` comment line: no line breaks can end the comment early.
pub fn comment_safe(name: &str) -> String {
    name.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ident_doubles_backticks() {
        assert_eq!(ident("a`b"), "`a``b`");
        assert_eq!(ident("plain"), "`plain`");
        assert_eq!(ident("it's \"x\""), "`it's \"x\"`");
    }

    #[test]
    fn qualified_quotes_both_parts() {
        assert_eq!(qualified("d`b", "t"), "`d``b`.`t`");
    }

    #[test]
    fn string_literal_escapes_every_special_byte() {
        assert_eq!(
            string_literal("a'b\"c\\d\0e\nf\rg\x1ah"),
            r#"'a\'b\"c\\d\0e\nf\rg\Zh'"#
        );
    }

    #[test]
    fn string_literal_keeps_multibyte_utf8() {
        assert_eq!(string_literal("größe 😀"), "'größe 😀'");
    }

    #[test]
    fn comment_safe_removes_line_breaks() {
        assert_eq!(comment_safe("a\nb\rc"), "a b c");
    }
}
