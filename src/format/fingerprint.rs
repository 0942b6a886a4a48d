//! Row fingerprints (restore drills, issue 14): per table, the number of rows and an
//! order-independent hash of them, so that a table read in any chunks, by any number of
//! readers, in any order, gets the same fingerprint, and two servers holding the same rows
//! get equal ones.
//!
//! A row is hashed from its cells as the server sent them in the text protocol (the same
//! `SELECT` of `dump::read` on both sides, with the session settings of a dump: UTC
//! timestamps, utf8mb4): each cell as a u32 LE length and its bytes, NULL as `u32::MAX`;
//! the row's hash is XXH3-128 of that; the table's is the sum of its rows' hashes modulo
//! 2^128 (a sum, not XOR, so that two equal rows of a table without a key do not cancel).
//! Fingerprints are hashed from cells, not from encoded bytes, so that they check the
//! encoder and the loader too, and so that a drill reading the restored server needs no
//! encoding. XXH3 is not a MAC: the fingerprints detect loss and corruption, not forgery
//! (they are stored inside the encrypted, MAC-checked backup).
//!
//! In a file entry's `meta` (REPOSITORY.md, "Snapshots"), a chunk file's fingerprint is
//! `{"fingerprint": {"db", "table", "rows", "sum": "<32 hex>"}}`.
//!
//! Not for: reading rows (the dump does, `dump::dir`), storing (the sink), comparing two
//! sets (the drill).

use std::collections::BTreeMap;

use xxhash_rust::xxh3::xxh3_128;

/// The fingerprint of some rows of one table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fingerprint {
    pub rows: u64,
    pub sum: u128,
}

impl Fingerprint {
    /// Adds one row (reusing `scratch` for its bytes).
    pub fn push_row(&mut self, cells: &[Option<&[u8]>], scratch: &mut Vec<u8>) {
        scratch.clear();
        for cell in cells {
            match cell {
                Some(b) => {
                    scratch.extend_from_slice(&(b.len() as u32).to_le_bytes());
                    scratch.extend_from_slice(b);
                }
                None => scratch.extend_from_slice(&u32::MAX.to_le_bytes()),
            }
        }
        self.rows += 1;
        self.sum = self.sum.wrapping_add(xxh3_128(scratch));
    }

    /// Two parts of one table (chunks) together.
    pub fn add(&mut self, other: &Fingerprint) {
        self.rows += other.rows;
        self.sum = self.sum.wrapping_add(other.sum);
    }

    pub fn sum_hex(&self) -> String {
        format!("{:032x}", self.sum)
    }

    /// The file entry meta of a chunk file of `db`.`table` with these rows.
    pub fn to_meta(&self, db: &str, table: &str) -> serde_json::Value {
        serde_json::json!({"fingerprint": {
            "db": db, "table": table, "rows": self.rows, "sum": self.sum_hex(),
        }})
    }

    /// The table and fingerprint of a file entry's meta; `None` if it has none.
    pub fn from_meta(meta: &serde_json::Value) -> Option<((String, String), Fingerprint)> {
        let f = meta.get("fingerprint")?;
        let db = f.get("db")?.as_str()?.to_string();
        let table = f.get("table")?.as_str()?.to_string();
        let rows = f.get("rows")?.as_u64()?;
        let sum = u128::from_str_radix(f.get("sum")?.as_str()?, 16).ok()?;
        Some(((db, table), Fingerprint { rows, sum }))
    }
}

/// How many of each kind of stored program and view a database has (what a drill
/// compares besides rows). Recorded per database in a backup's snapshot meta (`objects`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectCounts {
    pub views: u64,
    pub routines: u64,
    pub triggers: u64,
    pub events: u64,
}

/// Fingerprints of whole tables, keyed by (database, table).
pub type TableFingerprints = BTreeMap<(String, String), Fingerprint>;

/// Adds every chunk's fingerprint found in `metas` to its table's.
pub fn aggregate<'a>(metas: impl IntoIterator<Item = &'a serde_json::Value>) -> TableFingerprints {
    let mut out = TableFingerprints::new();
    for meta in metas {
        if let Some((key, f)) = Fingerprint::from_meta(meta) {
            out.entry(key).or_default().add(&f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(rows: &[&[Option<&[u8]>]]) -> Fingerprint {
        let mut f = Fingerprint::default();
        let mut scratch = Vec::new();
        for r in rows {
            f.push_row(r, &mut scratch);
        }
        f
    }

    #[test]
    fn order_and_chunking_do_not_matter_but_every_cell_does() {
        let a: &[Option<&[u8]>] = &[Some(b"1"), Some(b"x")];
        let b: &[Option<&[u8]>] = &[Some(b"2"), None];
        let c: &[Option<&[u8]>] = &[Some(b"2"), Some(b"")];
        let whole = of(&[a, b, a]);
        let mut chunks = of(&[a]);
        chunks.add(&of(&[a, b]));
        assert_eq!(whole, chunks);
        assert_eq!(whole.rows, 3);
        // NULL is not the empty string; a duplicate row counts (sum, not XOR).
        assert_ne!(of(&[b]), of(&[c]));
        assert_ne!(of(&[a, a, b]), of(&[b]));
        // Cells are length-prefixed: ("1x", "") is not ("1", "x").
        assert_ne!(of(&[&[Some(b"1x"), Some(b"")]]), of(&[a]));
    }

    #[test]
    fn meta_round_trips_and_aggregates_per_table() {
        let f = of(&[&[Some(b"1")]]);
        let metas = [
            f.to_meta("d", "t"),
            f.to_meta("d", "t"),
            f.to_meta("d", "u"),
            serde_json::Value::Null,
        ];
        let all = aggregate(&metas);
        assert_eq!(all.len(), 2);
        assert_eq!(all[&("d".into(), "t".into())].rows, 2);
        assert_eq!(
            Fingerprint::from_meta(&metas[2]),
            Some((("d".into(), "u".into()), f))
        );
    }
}
