//! `rbackup copy`: backups and archived binlog segments from one repository into another
//! (the offsite copy), re-encrypted for the destination's recipients.
//!
//! Owns: choosing what is missing at the destination, moving it, the copy markers
//! (`copies/<keyed hash>`, REPOSITORY.md "Copies") and the order of the writes. Not for:
//! the formats (the other modules) or the command line (`src/bin/rbackup/copy.rs`).
//!
//! How a backup is copied: two repositories have different naming keys (and so different
//! blob IDs and chunk boundaries), so a backup cannot be moved blob by blob. Each logical
//! file of the source backup is read back (every blob checked, as a restore does) and fed
//! to a `BackupWriter` on the destination, which chunks it with the destination's seed,
//! names each chunk with the destination's naming key and stores only the chunks the
//! destination's index presence parts do not list: what moves is what the destination
//! lacks (a deduplicated second backup moves only its new chunks). The writer writes an
//! index object after every pack, so a killed copy loses at most the pack in flight; its
//! rerun finds the rest in the index and does not store it again. The destination snapshot
//! keeps the source's time, host, tags and meta, plus `meta.copied_from` (source repository
//! and snapshot IDs).
//!
//! Packs, then index, then snapshot, then the marker: the marker's name is the keyed hash
//! (destination naming key) of the source repository and snapshot IDs, so a copy holding
//! only the destination's writer key sees what it already copied by listing `copies/`.
//! A copy killed between the snapshot and its marker would copy that backup again on the
//! rerun (a second snapshot of the same data, no new packs); with a reader key for the
//! destination, `copied_from` of its snapshots is checked too and that cannot happen.
//!
//! Binlog segments and gap records (`binlog/...`, `backup::segments`) are whole age
//! files: each one whose name without its storage ID (`<source>/<file>/<start>-<end>`) is
//! not at the destination is decrypted, checked (storage ID, MAC under the source's naming
//! key, the events' BLAKE3), given a MAC under the destination's naming key, re-encrypted
//! to the destination recipient and put under its new storage ID, in name order. A segment
//! is held in memory whole (segments are a few MiB).
//!
//! Both repositories are held under a shared lock for the whole copy (prune waits).

use std::collections::HashSet;

use bytes::Bytes;

use super::config::Repository;
use super::error::{BackupError, Result};
use super::keys::storage_id;
use super::lock::{self, LockKind};
use super::reader::RepositoryReader;
use super::writer::{BackupWriter, SnapshotInfo, WriterOptions};

/// What to copy and how.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// The source backups (IDs, unique prefixes or `latest`); empty: all.
    pub ids: Vec<String>,
    /// Also copy binlog segments and gap records missing at the destination.
    pub binlogs: bool,
}

/// One backup copied.
#[derive(Debug, Clone)]
pub struct Copied {
    pub source_id: String,
    pub id: String,
    pub time: String,
    pub logical_bytes: u64,
    /// Bytes the destination stored for it (encrypted packs, after deduplication).
    pub stored_bytes: u64,
}

/// What a copy did.
#[derive(Debug, Clone, Default)]
pub struct CopyReport {
    pub copied: Vec<Copied>,
    /// Backups already at the destination.
    pub skipped: usize,
    pub segments: usize,
    pub segment_bytes: u64,
}

impl CopyReport {
    /// Bytes written into the destination's packs and segments.
    pub fn bytes_added(&self) -> u64 {
        self.copied.iter().map(|c| c.stored_bytes).sum::<u64>() + self.segment_bytes
    }
    pub fn logical_bytes(&self) -> u64 {
        self.copied.iter().map(|c| c.logical_bytes).sum()
    }
}

/// Copies into `dest` what `options` selects from `source`, skipping what is there.
/// `progress` is told of each backup and segment batch as it completes.
pub async fn copy(
    source: &RepositoryReader,
    dest: &Repository,
    options: &CopyOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<CopyReport> {
    let src = source.repository();
    if src.config.id == dest.config.id {
        return Err(BackupError::Usage(format!(
            "{} and {} are the same repository ({})",
            src.store.url(),
            dest.store.url(),
            dest.config.id
        )));
    }
    let source_lock = lock::acquire(&src.store, LockKind::Shared, "copy").await?;
    let dest_lock = lock::acquire(&dest.store, LockKind::Shared, "copy").await?;
    let result = copy_locked(source, dest, options, progress).await;
    let released = async {
        source_lock.release().await?;
        dest_lock.release().await
    }
    .await;
    let report = result?;
    released?;
    Ok(report)
}

async fn copy_locked(
    source: &RepositoryReader,
    dest: &Repository,
    options: &CopyOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<CopyReport> {
    let src = source.repository();
    let mut report = CopyReport::default();
    let all = source.snapshots().await?;
    let selected: Vec<(String, super::Snapshot)> = if options.ids.is_empty() {
        all
    } else {
        let mut out: Vec<(String, super::Snapshot)> = Vec::new();
        for id in &options.ids {
            let found = source.snapshot(id).await?;
            if !out.iter().any(|(i, _)| *i == found.0) {
                out.push(found);
            }
        }
        out.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        out
    };
    let markers: HashSet<String> = dest
        .store
        .list("copies")
        .await?
        .into_iter()
        .map(|l| l.name)
        .collect();
    let already = copied_by_snapshot(dest).await?;
    for (id, snapshot) in selected {
        let marker = dest.keys.naming.copy_marker(&src.config.id, &id);
        if markers.contains(&marker) || already.contains(&(src.config.id.clone(), id.clone())) {
            report.skipped += 1;
            continue;
        }
        let copied = copy_snapshot(source, dest, &id, &snapshot).await?;
        let body = serde_json::json!({"version": 1, "snapshot": copied.id});
        dest.store
            .put(&marker, Bytes::from(body.to_string().into_bytes()))
            .await?;
        progress(&format!(
            "copied backup {} of {} as {} ({} logical bytes, {} stored)",
            &id[..8],
            snapshot.time,
            &copied.id[..8],
            copied.logical_bytes,
            copied.stored_bytes
        ));
        report.copied.push(copied);
    }
    if options.binlogs {
        let (n, bytes) = copy_binlogs(src, dest).await?;
        if n > 0 {
            progress(&format!("copied {n} binlog objects ({bytes} bytes)"));
        }
        report.segments = n;
        report.segment_bytes = bytes;
    }
    Ok(report)
}

/// (source repository, snapshot) of every destination snapshot made by a copy, when the
/// destination can be read; empty with a writer key.
async fn copied_by_snapshot(dest: &Repository) -> Result<HashSet<(String, String)>> {
    let mut out = HashSet::new();
    if !dest.keys.can_read() {
        return Ok(out);
    }
    for listed in dest.store.list("snapshots").await? {
        let data = dest.store.get(&listed.name).await?;
        let snap = super::Snapshot::decode(&dest.keys, &listed.name, &data)?;
        let from = snap.meta.get("copied_from");
        let repo = from
            .and_then(|f| f.get("repository"))
            .and_then(|v| v.as_str());
        let id = from
            .and_then(|f| f.get("snapshot"))
            .and_then(|v| v.as_str());
        if let (Some(r), Some(i)) = (repo, id) {
            out.insert((r.to_string(), i.to_string()));
        }
    }
    Ok(out)
}

async fn copy_snapshot(
    source: &RepositoryReader,
    dest: &Repository,
    id: &str,
    snapshot: &super::Snapshot,
) -> Result<Copied> {
    let options = WriterOptions {
        // An index after every pack: a killed copy's rerun re-sends at most one pack.
        index_every: 1,
        ..WriterOptions::default()
    };
    let writer = BackupWriter::start(dest.clone(), options).await?;
    let result = async {
        let mut catalog = source.catalog(snapshot);
        // One reader for every file in turn, so that files sharing a pack (small tables,
        // schema files) fetch and decrypt it once.
        let mut previous: Option<super::FileReader> = None;
        while let Some(entry) = catalog.next().await? {
            let mut file = writer.file(&entry.name);
            let mut reader = match previous.take() {
                Some(r) => r.next_file(&entry),
                None => source.read_file(&entry),
            };
            let mut written = 0u64;
            while let Some(chunk) = reader.next_chunk().await? {
                written += chunk.len() as u64;
                // May wait for the uploader (block_in_place): the runtime is multi-thread.
                file.write(&chunk)?;
            }
            if written != entry.size {
                return Err(BackupError::damaged(
                    "catalog",
                    format!(
                        "{} read {written} bytes, the catalog says {}",
                        entry.name, entry.size
                    ),
                ));
            }
            writer.close_file(file, entry.meta.clone())?;
            previous = Some(reader);
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        writer.abort().await;
        return Err(e);
    }
    let mut meta = snapshot.meta.clone();
    let from = serde_json::json!({
        "repository": source.repository().config.id,
        "snapshot": id,
    });
    match &mut meta {
        serde_json::Value::Object(m) => {
            m.insert("copied_from".into(), from);
        }
        _ => meta = serde_json::json!({ "copied_from": from }),
    }
    let info = SnapshotInfo {
        time: Some(snapshot.time.clone()),
        host: Some(snapshot.host.clone()),
        tags: snapshot.tags.clone(),
        meta,
    };
    let (new_id, new) = writer.commit(info).await?;
    Ok(Copied {
        source_id: id.to_string(),
        id: new_id,
        time: snapshot.time.clone(),
        logical_bytes: new.stats.logical_bytes,
        stored_bytes: new.stats.new_stored_bytes,
    })
}

/// A binlog object's name without its storage ID: `binlog/<source>/<file>/<start>-<end>`
/// or `binlog/<source>/gaps/<file>-<pos>`.
pub fn binlog_stem(name: &str) -> Option<&str> {
    let (stem, id) = name.rsplit_once('.')?;
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(stem)
}

/// Checks that a binlog object's bytes hash to the storage ID at the end of its name
/// (`<stem>.<id>`).
pub fn check_binlog_id(name: &str, stored: &[u8]) -> Result<()> {
    let expected = name.rsplit_once('.').map_or("", |(_, id)| id);
    let actual = storage_id(stored);
    if actual != expected {
        return Err(BackupError::damaged(
            name,
            format!("its content hashes to {actual}"),
        ));
    }
    Ok(())
}

/// The canonical bytes a binlog MAC covers: the object's JSON with `mac` empty.
fn binlog_canonical<T: serde::Serialize + Clone>(value: &T, clear: impl FnOnce(&mut T)) -> Vec<u8> {
    let mut c = value.clone();
    clear(&mut c);
    serde_json::to_vec(&c).expect("header serializes")
}

/// A binlog object of `src` made into the same object for `dest`: decrypted, its MAC
/// checked under the source's naming key and made again under the destination's (a
/// segment's header and events are otherwise byte for byte the same), re-encrypted.
fn rekey_binlog_object(
    src: &Repository,
    dest: &Repository,
    name: &str,
    stored: &[u8],
) -> Result<Vec<u8>> {
    use super::segments::{GapObject, SegmentHeader};
    use std::io::{BufRead, Read, Write};
    check_binlog_id(name, stored)?;
    let plain = src.keys.decrypt(name, stored)?;
    let damaged = |what: String| BackupError::damaged(name, what);
    let refused_mac =
        || damaged("its MAC does not match the source repository's naming key".into());
    if name.contains("/gaps/") {
        let mut gap: GapObject = serde_json::from_slice(&plain)
            .map_err(|e| damaged(format!("not a gap record: {e}")))?;
        if src
            .keys
            .naming
            .binlog_mac(&binlog_canonical(&gap, |g| g.mac.clear()))
            != gap.mac
        {
            return Err(refused_mac());
        }
        gap.mac = dest
            .keys
            .naming
            .binlog_mac(&binlog_canonical(&gap, |g| g.mac.clear()));
        return Ok(dest
            .keys
            .encrypt(&serde_json::to_vec(&gap).expect("gap serializes")));
    }
    let mut reader = std::io::BufReader::new(
        zstd::stream::read::Decoder::new(&plain[..])
            .map_err(|e| damaged(format!("cannot decompress: {e}")))?,
    );
    let mut line = Vec::new();
    reader
        .read_until(b'\n', &mut line)
        .map_err(|e| damaged(format!("cannot decompress: {e}")))?;
    if line.pop() != Some(b'\n') {
        return Err(damaged("no header line".into()));
    }
    let mut header: SegmentHeader =
        serde_json::from_slice(&line).map_err(|e| damaged(format!("not a segment header: {e}")))?;
    if src
        .keys
        .naming
        .binlog_mac(&binlog_canonical(&header, |h| h.mac.clear()))
        != header.mac
    {
        return Err(refused_mac());
    }
    let mut events = Vec::new();
    reader
        .read_to_end(&mut events)
        .map_err(|e| damaged(format!("cannot decompress: {e}")))?;
    if blake3::hash(&events).to_hex().as_str() != header.blake3 {
        return Err(damaged(
            "its events do not match the header's BLAKE3".into(),
        ));
    }
    header.mac = dest
        .keys
        .naming
        .binlog_mac(&binlog_canonical(&header, |h| h.mac.clear()));
    let io = |e: std::io::Error| damaged(format!("cannot compress: {e}"));
    let mut encoder =
        zstd::stream::write::Encoder::new(Vec::with_capacity(plain.len() + 1024), 1).map_err(io)?;
    serde_json::to_writer(&mut encoder, &header).expect("header serializes");
    encoder.write_all(b"\n").map_err(io)?;
    encoder.write_all(&events).map_err(io)?;
    let compressed = encoder.finish().map_err(io)?;
    Ok(dest.keys.encrypt(&compressed))
}

/// Copies every binlog object (segment or gap record) whose stem the destination lacks,
/// in name order. Returns how many and the bytes stored.
async fn copy_binlogs(src: &Repository, dest: &Repository) -> Result<(usize, u64)> {
    let there: HashSet<String> = dest
        .store
        .list("binlog")
        .await?
        .into_iter()
        .filter_map(|l| binlog_stem(&l.name).map(str::to_string))
        .collect();
    let mut n = 0;
    let mut bytes = 0u64;
    for listed in src.store.list("binlog").await? {
        let Some(stem) = binlog_stem(&listed.name) else {
            continue; // not an object of the format (an upload in progress, a stray file)
        };
        if there.contains(stem) {
            continue;
        }
        let stored = src.store.get(&listed.name).await?;
        let sealed = rekey_binlog_object(src, dest, &listed.name, &stored)?;
        drop(stored);
        let name = format!("{stem}.{}", storage_id(&sealed));
        bytes += sealed.len() as u64;
        dest.store.put(&name, Bytes::from(sealed)).await?;
        n += 1;
    }
    if n > 0 {
        dest.store.sync().await?;
    }
    Ok((n, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binlog_stems_drop_the_storage_id() {
        let id = "ab".repeat(32);
        assert_eq!(
            binlog_stem(&format!(
                "binlog/s1/mysql-bin.000001/00000000000000000004-00000000000000001000.{id}"
            )),
            Some("binlog/s1/mysql-bin.000001/00000000000000000004-00000000000000001000")
        );
        assert_eq!(
            binlog_stem(&format!("binlog/s1/gaps/mysql-bin.000002-4.{id}")),
            Some("binlog/s1/gaps/mysql-bin.000002-4")
        );
        assert_eq!(binlog_stem("binlog/s1/mysql-bin.000001/x"), None);
    }
}
