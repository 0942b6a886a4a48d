//! A pack's plaintext (REPOSITORY.md, "Packs"): compressed blobs one after the other,
//! then a table of (blob ID, offset, stored length, raw length), its length, `RBPK` and
//! the version byte. The whole is then encrypted as one age file by the writer.
//!
//! Not for: encryption, upload or the index (see `writer`, `index`).

use super::error::{BackupError, Result};
use super::keys::BlobId;

pub const MAGIC: &[u8; 4] = b"RBPK";
pub const VERSION: u8 = 1;

/// Where a blob lies in a pack's plaintext, and its sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobEntry {
    pub id: BlobId,
    pub offset: u32,
    pub length: u32,
    pub raw_length: u32,
}

/// A pack being filled.
#[derive(Default)]
pub struct PackBuilder {
    data: Vec<u8>,
    blobs: Vec<BlobEntry>,
}

impl PackBuilder {
    pub fn new(capacity: usize) -> PackBuilder {
        PackBuilder {
            data: Vec::with_capacity(capacity),
            blobs: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// Bytes of blobs so far.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Appends a compressed blob.
    pub fn add(&mut self, id: BlobId, compressed: &[u8], raw_length: usize) {
        self.blobs.push(BlobEntry {
            id,
            offset: self.data.len() as u32,
            length: compressed.len() as u32,
            raw_length: raw_length as u32,
        });
        self.data.extend_from_slice(compressed);
    }

    /// The pack's plaintext and its blob table.
    pub fn seal(mut self) -> (Vec<u8>, Vec<BlobEntry>) {
        let start = self.data.len();
        self.data
            .extend_from_slice(&(self.blobs.len() as u32).to_le_bytes());
        for b in &self.blobs {
            self.data.extend_from_slice(&b.id.0);
            self.data.extend_from_slice(&b.offset.to_le_bytes());
            self.data.extend_from_slice(&b.length.to_le_bytes());
            self.data.extend_from_slice(&b.raw_length.to_le_bytes());
        }
        let table_len = (self.data.len() - start) as u32;
        self.data.extend_from_slice(&table_len.to_le_bytes());
        self.data.extend_from_slice(MAGIC);
        self.data.push(VERSION);
        (self.data, self.blobs)
    }
}

/// Reads the blob table at the end of a pack's plaintext (for verify and index rebuilds).
pub fn read_table(object: &str, plain: &[u8]) -> Result<Vec<BlobEntry>> {
    let bad = |what: &str| BackupError::damaged(object, format!("pack table: {what}"));
    if plain.len() < 9 || &plain[plain.len() - 5..plain.len() - 1] != MAGIC {
        return Err(bad("no RBPK trailer"));
    }
    if plain[plain.len() - 1] != VERSION {
        return Err(BackupError::Usage(format!(
            "{object}: pack version {} (this rbackup reads {VERSION})",
            plain[plain.len() - 1]
        )));
    }
    let end = plain.len() - 9;
    let table_len = u32::from_le_bytes(plain[end..end + 4].try_into().unwrap()) as usize;
    let start = end.checked_sub(table_len).ok_or_else(|| bad("length"))?;
    let table = &plain[start..end];
    let count = u32::from_le_bytes(
        table
            .get(..4)
            .ok_or_else(|| bad("count"))?
            .try_into()
            .unwrap(),
    ) as usize;
    if table.len() != 4 + count * 44 {
        return Err(bad("size"));
    }
    let mut out = Vec::with_capacity(count);
    for e in table[4..].chunks_exact(44) {
        let u = |i: usize| u32::from_le_bytes(e[i..i + 4].try_into().unwrap());
        let entry = BlobEntry {
            id: BlobId(e[..32].try_into().unwrap()),
            offset: u(32),
            length: u(36),
            raw_length: u(40),
        };
        if entry.offset as usize + entry.length as usize > start {
            return Err(bad("a blob past the table"));
        }
        out.push(entry);
    }
    Ok(out)
}

/// The name of a pack object.
pub fn object_name(id: &str) -> String {
    format!("data/{}/{id}", &id[..2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_reads_back() {
        let mut p = PackBuilder::new(100);
        p.add(BlobId([1; 32]), b"abc", 10);
        p.add(BlobId([2; 32]), b"defgh", 20);
        let (plain, blobs) = p.seal();
        assert_eq!(read_table("data/x", &plain).unwrap(), blobs);
        assert_eq!(&plain[blobs[1].offset as usize..][..5], b"defgh");
        let mut bad = plain.clone();
        bad.truncate(plain.len() - 2);
        assert!(read_table("data/x", &bad).unwrap_err().is_damage());
    }
}
