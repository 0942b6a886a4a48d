//! Drill records (REPOSITORY.md, "Drill records"): one age-encrypted JSON object per
//! restore drill, `drills/<snapshot-id>/<storage id>`, saying when, of which backup, into
//! what, how long, the verdict and the comparison table by table. Like a snapshot it
//! carries a MAC under the naming key (`derive_key("rbackup v1 drill mac")`), so whoever
//! can only put objects cannot forge a passed drill; a record without a valid MAC is
//! ignored by readers (and reported by `all` and `newest`: `rbackup list` and `check` say so).
//!
//! Who can write one: anyone holding the naming key and the repository recipient, i.e. a
//! writer key suffices for the object itself; the drill that produces it restores the
//! backup and so needs a reader key anyway.
//!
//! Not for: running a drill (`trust::drill`), comparing fingerprints.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::config::Repository;
use super::error::{BackupError, Result};
use super::keys::{Keys, storage_id};
use super::snapshot::check_storage_id;
use super::store::Store;

pub const VERSION: u32 = 1;

/// One table's comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableResult {
    pub db: String,
    pub table: String,
    /// `ok`, `differs` (rows or fingerprint), `missing` (not on the restored server),
    /// `damaged` (its data could not be read from the repository), `not_loaded`,
    /// `unrecorded` (on the restored server, not in the backup's fingerprints).
    pub result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_sum: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_sum: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One database's object counts compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectsResult {
    pub db: String,
    pub kind: String,
    pub expected: u64,
    pub restored: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillRecord {
    pub version: u32,
    /// When the drill started (RFC 3339 UTC).
    pub time: String,
    pub snapshot: String,
    pub snapshot_time: String,
    pub host: String,
    pub program: String,
    /// What the backup was restored into: "scratch <server version>" or the target's label.
    pub target: String,
    pub seconds: f64,
    /// `passed`, `failed` (the backup did not restore as recorded) or `error` (the drill
    /// could not run to its end: the scratch server, the target or the storage failed).
    pub verdict: String,
    /// One line saying why, for a verdict other than `passed`.
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub tables_compared: u64,
    #[serde(default)]
    pub rows_compared: u64,
    /// Every table that is not `ok` first, then the others.
    #[serde(default)]
    pub tables: Vec<TableResult>,
    #[serde(default)]
    pub objects: Vec<ObjectsResult>,
    /// Seconds spent staging the backup, starting the scratch server (alongside the
    /// staging), loading, and reading the restored server back.
    #[serde(default)]
    pub phases: BTreeMap<String, f64>,
    /// Binlog replay to the latest archived event: what was done, or why not.
    #[serde(default)]
    pub binlog_replay: serde_json::Value,
    #[serde(default)]
    pub mac: String,
}

impl DrillRecord {
    pub fn passed(&self) -> bool {
        self.verdict == "passed"
    }

    /// When the drill ended: its start plus its duration (`time` unreadable: `None`).
    pub fn finished(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let start = chrono::DateTime::parse_from_rfc3339(&self.time).ok()?;
        let ms = (self.seconds.max(0.0) * 1000.0) as i64;
        Some(start.with_timezone(&chrono::Utc) + chrono::Duration::milliseconds(ms))
    }

    fn canonical(&self) -> Vec<u8> {
        let mut c = self.clone();
        c.mac = String::new();
        serde_json::to_vec(&c).expect("drill record serializes")
    }

    /// The object name and stored bytes.
    pub fn encode(&self, keys: &Keys) -> (String, Vec<u8>) {
        let mut signed = self.clone();
        signed.mac = keys.naming.drill_mac(&self.canonical());
        let json = serde_json::to_vec(&signed).expect("drill record serializes");
        let stored = keys.encrypt(&json);
        (
            format!("drills/{}/{}", self.snapshot, storage_id(&stored)),
            stored,
        )
    }

    pub fn decode(keys: &Keys, object: &str, stored: &[u8]) -> Result<DrillRecord> {
        check_storage_id(object, stored)?;
        let json = keys.decrypt(object, stored)?;
        let value: serde_json::Value = serde_json::from_slice(&json)
            .map_err(|e| BackupError::damaged(object, format!("not a drill record: {e}")))?;
        let version = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
        if version != VERSION as u64 {
            return Err(BackupError::Usage(format!(
                "{object}: drill record version {version} (this rbackup reads {VERSION})"
            )));
        }
        let record: DrillRecord = serde_json::from_value(value)
            .map_err(|e| BackupError::damaged(object, format!("not a drill record: {e}")))?;
        if keys.naming.drill_mac(&record.canonical()) != record.mac {
            return Err(BackupError::damaged(
                object,
                "its MAC does not match: not written with this repository's naming key",
            ));
        }
        let in_name = object.split('/').nth(1).unwrap_or("");
        if in_name != record.snapshot {
            return Err(BackupError::damaged(
                object,
                format!("it is the record of backup {}", record.snapshot),
            ));
        }
        Ok(record)
    }
}

/// Writes `record`; returns its object name.
pub async fn write(repo: &Repository, record: &DrillRecord) -> Result<String> {
    let (name, stored) = record.encode(&repo.keys);
    repo.store.put(&name, Bytes::from(stored)).await?;
    Ok(name)
}

/// Every valid drill record, and the records that could not be read (damaged, forged, filed
/// under another backup, unknown version) with why. A key error (no reader key) is an
/// error; so is a storage failure that is not damage.
pub async fn all(store: &Store, keys: &Keys) -> Result<(Vec<DrillRecord>, Vec<BackupError>)> {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for listed in store.list("drills").await? {
        let data = match store.get(&listed.name).await {
            Ok(d) => d,
            Err(e) if e.is_damage() => {
                bad.push(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        match DrillRecord::decode(keys, &listed.name, &data) {
            Ok(r) => good.push(r),
            Err(BackupError::Key(m)) => return Err(BackupError::Key(m)),
            Err(e) => bad.push(e),
        }
    }
    Ok((good, bad))
}

/// The newest valid drill record of each backup (by the records' own times), and the
/// records that could not be read (see `all`).
pub async fn newest(
    repo: &Repository,
) -> Result<(BTreeMap<String, DrillRecord>, Vec<BackupError>)> {
    let (records, bad) = all(&repo.store, &repo.keys).await?;
    let mut newest: BTreeMap<String, DrillRecord> = BTreeMap::new();
    for r in records {
        let newer = newest.get(&r.snapshot).is_none_or(|old| r.time > old.time);
        if newer {
            newest.insert(r.snapshot.clone(), r);
        }
    }
    Ok((newest, bad))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::keys::NamingKey;

    fn record() -> DrillRecord {
        DrillRecord {
            version: VERSION,
            time: "2026-01-01T00:00:00Z".into(),
            snapshot: "ab".repeat(32),
            snapshot_time: "2025-12-31T23:00:00Z".into(),
            host: "h".into(),
            program: "rbackup test".into(),
            target: "scratch".into(),
            seconds: 1.5,
            verdict: "passed".into(),
            message: String::new(),
            tables_compared: 1,
            rows_compared: 3,
            tables: vec![],
            objects: vec![],
            phases: BTreeMap::new(),
            binlog_replay: serde_json::Value::Null,
            mac: String::new(),
        }
    }

    #[test]
    fn a_record_round_trips_and_a_forged_one_is_refused() {
        let identity = age::x25519::Identity::generate();
        let keys = Keys {
            naming: NamingKey::generate(),
            recipient: Some(identity.to_public()),
            identity: Some(identity.clone()),
        };
        let (name, stored) = record().encode(&keys);
        assert!(name.starts_with(&format!("drills/{}/", "ab".repeat(32))));
        let back = DrillRecord::decode(&keys, &name, &stored).unwrap();
        assert!(back.passed());
        // Someone with the public recipient only.
        let outsider = Keys {
            naming: NamingKey::generate(),
            ..keys.clone()
        };
        let (name, stored) = record().encode(&outsider);
        assert!(DrillRecord::decode(&keys, &name, &stored).is_err());
        // A record filed under another backup.
        let (_, stored) = record().encode(&keys);
        let moved = format!("drills/{}/{}", "cd".repeat(32), storage_id(&stored));
        assert!(DrillRecord::decode(&keys, &moved, &stored).is_err());
    }
}
