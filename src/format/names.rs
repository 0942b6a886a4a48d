//! The names of a dump's files: a database or table name as a file name, as the server
//! encodes names on disk (`@xxxx` for anything but letters, digits, `_-$` and non-ASCII).
//!
//! Used by the directory dump (`dir_file_name`, which also keeps every name short enough
//! for the file system) and `--tab`. Not for: choosing which files a dump has (see
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

/// The longest encoded name `dir_file_name` keeps whole, in bytes: with a chunk's suffix
/// (`.0000000.csv.zst`) and the temporary name around it while it is written
/// (`.<name>.XXXXXX.rdump-partial`), a file name stays under the 255 bytes of Linux file
/// systems.
const MAX_ENCODED: usize = 200;

/// A database or table name as a directory dump's file name: `file_name`, unless that is
/// longer than `MAX_ENCODED` bytes (a 64-character name of `#` is 320: every `#` is
/// `@0023`), then its first bytes (whole characters) followed by `~` and 16 hex digits of
/// the name's XXH3-64. Such names stay unique (`~` never appears in an encoded name, so they
/// cannot meet a short one), and the manifest keeps the real name for rload.
pub fn dir_file_name(name: &str) -> String {
    let encoded = file_name(name);
    if encoded.len() <= MAX_ENCODED {
        return encoded;
    }
    let keep = MAX_ENCODED - 17;
    let cut = (0..=keep)
        .rev()
        .find(|&i| encoded.is_char_boundary(i))
        .unwrap_or(0);
    format!(
        "{}~{:016x}",
        &encoded[..cut],
        xxhash_rust::xxh3::xxh3_64(name.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_encoded_names_are_cut_and_hashed_to_fit() {
        let hashes = "#".repeat(64);
        let short = "#".repeat(40);
        assert_eq!(dir_file_name(&short), file_name(&short), "fits: kept");
        let long = dir_file_name(&hashes);
        assert!(long.len() <= MAX_ENCODED, "{}", long.len());
        assert!(long.starts_with("@0023@0023"), "{long}");
        assert!(long.contains('~'), "{long}");
        let other = dir_file_name(&format!("{}$", "#".repeat(63)));
        assert_ne!(long, other, "same prefix, other names");
        // Three-byte characters: 64 of them (192 bytes) fit; cut at a character boundary.
        let kana = "ー".repeat(64);
        assert_eq!(dir_file_name(&kana), kana);
        let mixed = format!("{}{}", "ー".repeat(30), "#".repeat(34));
        let cut = dir_file_name(&mixed);
        assert!(cut.len() <= MAX_ENCODED && cut.contains('~'), "{cut}");
        assert_eq!(dir_file_name(&hashes), long, "stable");
    }

    #[test]
    fn file_names_encode_separators_and_quotes() {
        assert_eq!(file_name("plain_t1"), "plain_t1");
        assert_eq!(file_name("a/b.c"), "a@002fb@002ec");
        assert_eq!(file_name("größe"), "größe");
        assert_eq!(file_name("x y`'"), "x@0020y@0060@0027");
    }
}
