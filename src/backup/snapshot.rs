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
    /// Keyed BLAKE3 of the snapshot's JSON with `mac` empty, under a key derived from the
    /// naming key (REPOSITORY.md, "Snapshots"): only a writer or reader can make one.
    #[serde(default)]
    pub mac: String,
}

impl Snapshot {
    /// The stored bytes and the object name.
    pub fn encode(&self, keys: &Keys) -> (String, Vec<u8>) {
        let mut signed = self.clone();
        signed.mac = keys.naming.snapshot_mac(&self.canonical());
        let json = serde_json::to_vec(&signed).expect("snapshot serializes");
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
        let snapshot: Snapshot = serde_json::from_value(value)
            .map_err(|e| BackupError::damaged(object, format!("not a snapshot: {e}")))?;
        if keys.naming.snapshot_mac(&snapshot.canonical()) != snapshot.mac {
            return Err(BackupError::damaged(
                object,
                "its MAC does not match: not written with this repository's naming key \
                 (a forged snapshot, or another repository's)",
            ));
        }
        Ok(snapshot)
    }

    /// The bytes the MAC covers: the JSON with `mac` empty.
    fn canonical(&self) -> Vec<u8> {
        let mut c = self.clone();
        c.mac = String::new();
        serde_json::to_vec(&c).expect("snapshot serializes")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::keys::NamingKey;

    fn keys(naming: NamingKey, identity: &age::x25519::Identity) -> Keys {
        Keys {
            naming,
            recipient: Some(identity.to_public()),
            identity: Some(identity.clone()),
        }
    }

    fn snapshot(time: &str) -> Snapshot {
        Snapshot {
            version: VERSION,
            time: time.into(),
            host: "db1".into(),
            tags: vec!["nightly".into()],
            program: "rbackup test".into(),
            meta: serde_json::json!({"databases": ["a", "b"], "binlog": {"pos": 4}}),
            stats: Stats::default(),
            catalog: FileEntry {
                name: String::new(),
                size: 0,
                blobs: Vec::new(),
                meta: serde_json::Value::Null,
            },
            mac: String::new(),
        }
    }

    #[test]
    fn a_snapshot_made_without_the_naming_key_is_refused() {
        let identity = age::x25519::Identity::generate();
        let reader = keys(NamingKey::generate(), &identity);
        let (name, stored) = snapshot("2026-01-01T00:00:00Z").encode(&reader);
        let back = Snapshot::decode(&reader, &name, &stored).unwrap();
        assert_eq!(back.meta, snapshot("x").meta);
        // Someone with only the public recipient (it is in `config`) encrypts a snapshot
        // of their own, dated so that `latest` picks it: refused, not restored.
        let outsider = keys(NamingKey::generate(), &identity);
        let (name, stored) = snapshot("2099-01-01T00:00:00Z").encode(&outsider);
        let e = Snapshot::decode(&reader, &name, &stored).unwrap_err();
        assert!(e.is_damage() && e.to_string().contains("MAC"), "{e}");
        let mut plain = snapshot("2099-01-01T00:00:00Z");
        plain.mac = "00".repeat(32);
        let stored = reader.encrypt(&serde_json::to_vec(&plain).unwrap());
        let name = format!("snapshots/{}", crate::backup::keys::storage_id(&stored));
        assert!(Snapshot::decode(&reader, &name, &stored).is_err());
    }
}
