//! The names of a dump's files: a database or table name as a file name, as the server
//! encodes names on disk (`@xxxx` for anything but letters, digits, `_-$` and non-ASCII).
//!
//! Used by the directory dump and `--tab`. Not for: choosing which files a dump has (see
//! `dump::dir`).

/// A table name as a file name: letters, digits and `_-$` and non-ASCII characters stay,
/// anything else (`/`, `.`, spaces, quotes) becomes `@xxxx` as the server encodes it.
pub fn file_name(table: &str) -> String {
    let mut out = String::with_capacity(table.len());
    for c in table.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$') || !c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("@{:04x}", c as u32));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_encode_separators_and_quotes() {
        assert_eq!(file_name("plain_t1"), "plain_t1");
        assert_eq!(file_name("a/b.c"), "a@002fb@002ec");
        assert_eq!(file_name("größe"), "größe");
        assert_eq!(file_name("x y`'"), "x@0020y@0060@0027");
    }
}
