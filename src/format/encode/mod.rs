//! Encoders: turn rows of raw cells (as the server sent them) into output bytes.
//!
//! `sql` writes INSERT statements a `mysql`/`mariadb` client restores; `tab` writes the
//! delimited text of `--tab` that LOAD DATA reads; `csv` the CSV of `--format csv`; `xml`
//! the elements of mariadb-dump's `--xml` document. Encoders know column kinds, never
//! connections or files: they append to a caller's buffer, and the caller decides when
//! the buffer goes to a sink. Not for: reading rows or deciding what to dump.

pub mod csv;
pub mod sql;
pub mod tab;
pub mod xml;

/// Appends `bytes` as upper-case hex digits.
#[inline]
pub fn push_hex(bytes: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + bytes.len() * 2, 0);
    hex::encode_to_slice(bytes, &mut out[start..]).expect("buffer sized for hex");
    out[start..].make_ascii_uppercase();
}

/// Appends a BIT value (big-endian bytes) as mysqldump does: `b'101'`, `b'0'` for zero.
pub fn push_bit_literal(bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"b'");
    let mut started = false;
    for &byte in bytes {
        for shift in (0..8).rev() {
            let bit = (byte >> shift) & 1;
            if bit == 1 {
                started = true;
            }
            if started {
                out.push(b'0' + bit);
            }
        }
    }
    if !started {
        out.push(b'0');
    }
    out.push(b'\'');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_upper_case() {
        let mut out = Vec::new();
        push_hex(&[0x00, 0xab, 0xff], &mut out);
        assert_eq!(out, b"00ABFF");
    }

    #[test]
    fn bit_literal_drops_leading_zeros() {
        let mut out = Vec::new();
        push_bit_literal(&[0x02, 0xaa], &mut out);
        assert_eq!(out, b"b'1010101010'");
    }

    #[test]
    fn bit_literal_of_zero_is_b0() {
        let mut out = Vec::new();
        push_bit_literal(&[0, 0], &mut out);
        assert_eq!(out, b"b'0'");
    }

    #[test]
    fn bit_literal_keeps_all_64_ones() {
        let mut out = Vec::new();
        push_bit_literal(&[0xff; 8], &mut out);
        assert_eq!(out.len(), 3 + 64);
    }
}
