//! The dump's own text (every non-row line, and the names in INSERT statements) in the
//! connection's character set (`--default-character-set`), as mysqldump writes it.
//!
//! rdump reads names and definitions as UTF-8 text (see `client::conn::Session`); a dump
//! whose session is latin1 (say) must name `tä` in latin1 bytes outside the definitions,
//! while definitions stay UTF-8 inside their `SET character_set_client = utf8mb4` wrappers.
//! UTF-8 character sets and binary take the text as it is. A character the target set lacks
//! becomes `?`, as the server converts. Not for: row values (read in the connection's
//! character set already).

use std::borrow::Cow;

use encoding_rs::{EncoderResult, Encoding};

/// The encoding of the dump's text for one connection character set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextCharset {
    /// `None`: UTF-8 as it is (utf8mb3, utf8mb4, binary, or a set rdump does not know).
    encoding: Option<&'static Encoding>,
}

/// The encoding of a MariaDB/MySQL character set, `None` for UTF-8 ones, binary and those
/// rdump does not map (their text is written as UTF-8).
fn encoding_of(charset: &str) -> Option<&'static Encoding> {
    use encoding_rs::*;
    Some(match charset.to_ascii_lowercase().as_str() {
        "latin1" => WINDOWS_1252,
        "latin2" => ISO_8859_2,
        "latin7" => ISO_8859_13,
        "cp1250" => WINDOWS_1250,
        "cp1251" => WINDOWS_1251,
        "cp1256" => WINDOWS_1256,
        "cp1257" => WINDOWS_1257,
        "cp866" => IBM866,
        "greek" => ISO_8859_7,
        "hebrew" => ISO_8859_8,
        "tis620" => WINDOWS_874,
        "koi8r" => KOI8_R,
        "koi8u" => KOI8_U,
        "macroman" => MACINTOSH,
        "sjis" | "cp932" => SHIFT_JIS,
        "ujis" | "eucjpms" => EUC_JP,
        "euckr" => EUC_KR,
        "gbk" | "gb2312" => GBK,
        "gb18030" => GB18030,
        "big5" => BIG5,
        _ => return None,
    })
}

impl TextCharset {
    pub fn of(charset: &str) -> TextCharset {
        TextCharset {
            encoding: encoding_of(charset),
        }
    }

    /// `text` (UTF-8) in this character set.
    pub fn encode<'a>(&self, text: &'a str) -> Cow<'a, [u8]> {
        match self.encoding {
            Some(e) if !text.is_ascii() => Cow::Owned(encode_with(e, text)),
            _ => Cow::Borrowed(text.as_bytes()),
        }
    }

    /// rdump's script text for the dump: in this character set, except between a
    /// `SET character_set_client = <cs>` line and the one restoring `@saved_cs_client`,
    /// which is in `<cs>` (utf8mb4 for every definition rdump writes).
    pub fn script<'a>(&self, text: &'a str) -> Cow<'a, [u8]> {
        if self.encoding.is_none() || text.is_ascii() {
            return Cow::Borrowed(text.as_bytes());
        }
        let mut out = Vec::with_capacity(text.len() + 16);
        let mut current = self.encoding;
        for line in text.split_inclusive('\n') {
            match current {
                Some(e) if !line.is_ascii() => out.extend_from_slice(&encode_with(e, line)),
                _ => out.extend_from_slice(line.as_bytes()),
            }
            if let Some(cs) = client_charset_set_by(line) {
                current = if cs.starts_with('@') {
                    self.encoding
                } else {
                    encoding_of(&cs)
                };
            }
        }
        Cow::Owned(out)
    }
}

/// The value a `SET character_set_client = X` line (in any version comment) sets.
fn client_charset_set_by(line: &str) -> Option<String> {
    let at = line.find("SET character_set_client")?;
    let rest = line[at + "SET character_set_client".len()..].trim_start();
    let value = rest.strip_prefix('=')?.trim_start();
    let end = value
        .find(|c: char| c.is_whitespace() || c == ';' || c == '*')
        .unwrap_or(value.len());
    Some(value[..end].to_string())
}

/// `text` in `encoding`, `?` for each character it lacks.
fn encode_with(encoding: &'static Encoding, text: &str) -> Vec<u8> {
    let mut encoder = encoding.new_encoder();
    let mut out = Vec::with_capacity(text.len() + 8);
    let mut rest = text;
    loop {
        let need = encoder
            .max_buffer_length_from_utf8_without_replacement(rest.len())
            .unwrap_or(rest.len() * 4 + 16);
        let start = out.len();
        out.resize(start + need, 0);
        let (result, read, written) =
            encoder.encode_from_utf8_without_replacement(rest, &mut out[start..], true);
        out.truncate(start + written);
        rest = &rest[read..];
        match result {
            EncoderResult::InputEmpty => return out,
            EncoderResult::Unmappable(_) => out.push(b'?'),
            EncoderResult::OutputFull => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_sets_and_binary_keep_the_text() {
        for cs in ["utf8mb4", "utf8mb3", "utf8", "binary"] {
            assert_eq!(
                TextCharset::of(cs).script("`tä`").as_ref(),
                "`tä`".as_bytes()
            );
        }
    }

    #[test]
    fn latin1_outside_definitions_utf8_inside() {
        let text = "DROP TABLE IF EXISTS `tä`;\n\
                    /*!40101 SET character_set_client = utf8mb4 */;\n\
                    CREATE TABLE `tä` (`c` enum('é'));\n\
                    /*!40101 SET character_set_client = @saved_cs_client */;\n\
                    LOCK TABLES `tä` WRITE;\n";
        let out = TextCharset::of("latin1").script(text);
        let expected = [
            &b"DROP TABLE IF EXISTS `t\xe4`;\n"[..],
            b"/*!40101 SET character_set_client = utf8mb4 */;\n",
            "CREATE TABLE `tä` (`c` enum('é'));\n".as_bytes(),
            b"/*!40101 SET character_set_client = @saved_cs_client */;\n",
            b"LOCK TABLES `t\xe4` WRITE;\n",
        ]
        .concat();
        assert_eq!(out.as_ref(), &expected[..]);
    }

    #[test]
    fn characters_the_set_lacks_become_question_marks() {
        assert_eq!(TextCharset::of("latin1").encode("a中ö").as_ref(), b"a?\xf6");
    }
}
