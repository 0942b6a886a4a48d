//! Snapshot objects and file entries (REPOSITORY.md, "Snapshots"): the snapshot, one
//! encrypted JSON object per backup, written last; its catalog, a logical file of JSON
//! lines (one `FileEntry` per file of the backup) stored in blobs like any other file.
//!
//! Not for: reading blobs (see `reader`) or what a file means (the dump decides).

use serde::{Deserialize, Serialize};

use super::error::{BackupError, Result};
use super::keys::{BlobId, Keys, storage_id};

pub const VERSION: u32 = 1;

/// A logical file: its name in the backup, its size and its blobs in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub size: u64,
    #[serde(with = "hex_ids")]
    pub blobs: Vec<BlobId>,
    /// What the dump says of the file (table, chunk, checksum); free-form.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub meta: serde_json::Value,
}

/// What a backup stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub files: u64,
    /// Bytes of the logical files (before chunking and compression).
    pub logical_bytes: u64,
    pub blobs: u64,
    /// Blobs not in the repository before this backup, and their raw and stored bytes.
    pub new_blobs: u64,
    pub new_bytes: u64,
    pub new_stored_bytes: u64,
    pub packs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    pub time: String,
    pub host: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub program: String,
    /// What the dump says of the backup: databases, coordinates, consistency.
    #[serde(default)]
    pub meta: serde_json::Value,
    pub stats: Stats,
    /// The catalog: JSON lines of `FileEntry`, stored as a logical file.
    pub catalog: FileEntry,
}

impl Snapshot {
    /// The stored bytes and the object name.
    pub fn encode(&self, keys: &Keys) -> (String, Vec<u8>) {
        let json = serde_json::to_vec(self).expect("snapshot serializes");
        let stored = keys.encrypt(&json);
        (format!("snapshots/{}", storage_id(&stored)), stored)
    }

    pub fn decode(keys: &Keys, object: &str, stored: &[u8]) -> Result<Snapshot> {
        check_storage_id(object, stored)?;
        let json = keys.decrypt(object, stored)?;
        let value: serde_json::Value = serde_json::from_slice(&json)
            .map_err(|e| BackupError::damaged(object, format!("not a snapshot: {e}")))?;
        let version = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
        if version != VERSION as u64 {
            return Err(BackupError::Usage(format!(
                "{object}: snapshot version {version} (this rbackup reads {VERSION})"
            )));
        }
        serde_json::from_value(value)
            .map_err(|e| BackupError::damaged(object, format!("not a snapshot: {e}")))
    }
}

/// Checks that a stored object's bytes hash to the ID at the end of its name.
pub fn check_storage_id(object: &str, stored: &[u8]) -> Result<()> {
    let expected = object.rsplit('/').next().unwrap_or("");
    let actual = storage_id(stored);
    if actual != expected {
        return Err(BackupError::damaged(
            object,
            format!("its content hashes to {actual}"),
        ));
    }
    Ok(())
}

mod hex_ids {
    use super::BlobId;
    use serde::{Deserialize, Deserializer, Serializer, de::Error, ser::SerializeSeq};

    pub fn serialize<S: Serializer>(ids: &[BlobId], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(ids.len()))?;
        for id in ids {
            seq.serialize_element(&id.to_string())?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<BlobId>, D::Error> {
        let strings = Vec::<String>::deserialize(d)?;
        strings
            .iter()
            .map(|s| s.parse().map_err(D::Error::custom))
            .collect()
    }
}
