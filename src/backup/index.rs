//! Index objects (REPOSITORY.md, "Index"): a plaintext presence part (pack ID and the blob
//! IDs it holds) that writers read to deduplicate without any decryption, and an
//! age-encrypted location part (offset, stored and raw length of each blob) that readers
//! need to restore.
//!
//! Not for: deciding when an index is written (see `writer`), or loading all of them
//! (see `reader`).

use super::error::{BackupError, Result};
use super::keys::{BlobId, Keys};
use super::pack::BlobEntry;

pub const MAGIC: &[u8; 4] = b"RBIX";
pub const VERSION: u8 = 1;

/// One pack as an index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackBlobs {
    /// The pack's storage ID (64 hex digits).
    pub pack: String,
    pub blobs: Vec<BlobEntry>,
}

/// Encodes an index object for `packs`.
pub fn encode(keys: &Keys, packs: &[PackBlobs]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&(packs.len() as u32).to_le_bytes());
    let mut locations = Vec::new();
    for p in packs {
        let mut id = [0u8; 32];
        hex::decode_to_slice(&p.pack, &mut id).expect("pack IDs are hex");
        out.extend_from_slice(&id);
        out.extend_from_slice(&(p.blobs.len() as u32).to_le_bytes());
        for b in &p.blobs {
            out.extend_from_slice(&b.id.0);
            locations.extend_from_slice(&b.offset.to_le_bytes());
            locations.extend_from_slice(&b.length.to_le_bytes());
            locations.extend_from_slice(&b.raw_length.to_le_bytes());
        }
    }
    let sealed = keys.encrypt(&locations);
    out.extend_from_slice(&(sealed.len() as u64).to_le_bytes());
    out.extend_from_slice(&sealed);
    out
}

struct Cursor<'a> {
    object: &'a str,
    data: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let s = self
            .data
            .get(self.at..self.at.saturating_add(n))
            .ok_or_else(|| BackupError::damaged(self.object, "index truncated"))?;
        self.at += n;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
}

/// Each pack's ID and the blob IDs it holds.
pub type Presence = Vec<(String, Vec<BlobId>)>;

/// The presence part: (pack ID, blob IDs). Needs no key. Returns the offset of the
/// location part too.
pub fn decode_presence(object: &str, data: &[u8]) -> Result<(Presence, usize)> {
    let mut c = Cursor {
        object,
        data,
        at: 0,
    };
    if c.take(4)? != MAGIC {
        return Err(BackupError::damaged(object, "not an index object"));
    }
    let version = c.take(1)?[0];
    if version != VERSION {
        return Err(BackupError::Usage(format!(
            "{object}: index version {version} (this rbackup reads {VERSION})"
        )));
    }
    let n = c.u32()? as usize;
    let mut packs = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        let pack = hex::encode(c.take(32)?);
        let count = c.u32()? as usize;
        let mut blobs = Vec::with_capacity(count.min(1 << 20));
        for _ in 0..count {
            blobs.push(BlobId(c.take(32)?.try_into().unwrap()));
        }
        packs.push((pack, blobs));
    }
    Ok((packs, c.at))
}

/// Presence and locations (a reader's view).
pub fn decode(keys: &Keys, object: &str, data: &[u8]) -> Result<Vec<PackBlobs>> {
    let (presence, at) = decode_presence(object, data)?;
    let mut c = Cursor { object, data, at };
    let len = u64::from_le_bytes(c.take(8)?.try_into().unwrap()) as usize;
    let sealed = c.take(len)?;
    if c.at != data.len() {
        return Err(BackupError::damaged(object, "bytes after the index"));
    }
    let locations = keys.decrypt(object, sealed)?;
    let total: usize = presence.iter().map(|(_, b)| b.len()).sum();
    if locations.len() != total * 12 {
        return Err(BackupError::damaged(
            object,
            "location part does not match the presence part",
        ));
    }
    let mut l = Cursor {
        object,
        data: &locations,
        at: 0,
    };
    let mut out = Vec::with_capacity(presence.len());
    for (pack, ids) in presence {
        let mut blobs = Vec::with_capacity(ids.len());
        for id in ids {
            blobs.push(BlobEntry {
                id,
                offset: l.u32()?,
                length: l.u32()?,
                raw_length: l.u32()?,
            });
        }
        out.push(PackBlobs { pack, blobs });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::keys::NamingKey;

    #[test]
    fn a_forged_length_is_damage_not_a_panic() {
        // The location part's length is a u64 from the object: at + len must not overflow.
        let identity = age::x25519::Identity::generate();
        let reader = Keys {
            naming: NamingKey::generate(),
            recipient: Some(identity.to_public()),
            identity: Some(identity),
        };
        let mut data = encode(&reader, &[]);
        let at = MAGIC.len() + 1 + 4;
        data[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        let e = decode(&reader, "index/x", &data).unwrap_err();
        assert!(e.is_damage(), "{e}");
    }

    #[test]
    fn writers_read_presence_readers_read_locations() {
        let identity = age::x25519::Identity::generate();
        let naming = NamingKey::generate();
        let reader = Keys {
            naming: naming.clone(),
            recipient: Some(identity.to_public()),
            identity: Some(identity.clone()),
        };
        let writer = Keys {
            naming,
            recipient: Some(identity.to_public()),
            identity: None,
        };
        let packs = vec![PackBlobs {
            pack: "ab".repeat(32),
            blobs: vec![
                BlobEntry {
                    id: BlobId([1; 32]),
                    offset: 0,
                    length: 10,
                    raw_length: 30,
                },
                BlobEntry {
                    id: BlobId([2; 32]),
                    offset: 10,
                    length: 5,
                    raw_length: 7,
                },
            ],
        }];
        let data = encode(&writer, &packs);
        let (presence, _) = decode_presence("index/x", &data).unwrap();
        assert_eq!(
            presence,
            vec![("ab".repeat(32), vec![BlobId([1; 32]), BlobId([2; 32])])]
        );
        assert!(decode(&writer, "index/x", &data).is_err());
        assert_eq!(decode(&reader, "index/x", &data).unwrap(), packs);
    }
}
