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
//! Binlog segments and gap records (`binlog/<source>/...`, `backup::segments`) are whole
//! age files: each one the destination lacks (by its name without the storage ID) and
//! needs is read back with every check a restore makes (storage ID, MAC under the
//! source's naming key, version, source, the positions of its name against its header,
//! length, BLAKE3 and CRC32 of the events, then each event's framing, CRC32 and position:
//! `verify::check_events`), then sealed again for the destination by the archiver's own
//! code (`segments::seal_segment`, `seal_gap`: a MAC under the destination's naming key,
//! the destination's recipient), source by source in archive order. One that fails a
//! check is refused, naming it, and the copy stops: a tampered source segment is never
//! laundered with a valid destination MAC. A segment is held in memory whole, with its
//! compressed and encrypted copies while it is sealed (segments are at most the
//! archiver's 16 MiB, or one bigger event).
//!
//! What the destination needs: not the objects that end at or before the oldest
//! coordinates of the backups of their source it holds (after this run's copies), which
//! its own prune removes (`copy_cut`, by prune's rule `prune::archive_cut`: per source,
//! another server's backups never cut an archive, and an archive with no held backup of
//! its source is copied whole, as prune keeps it whole): otherwise every copy would
//! bring back what the destination's prune removed. Its backups' coordinates and
//! sources come from its snapshots with a reader key, or, with a writer key, from the
//! source snapshots whose `copies/` marker names a snapshot the destination still lists;
//! a destination snapshot no marker accounts for has unknown coordinates, and then every
//! missing object is copied.
//!
//! Memory: per backup, the source reader's one decrypted pack (4 MiB, and its ciphertext
//! while fetched), one blob, one file's list of blob IDs (32 bytes per blob) on each
//! side, and the destination writer's packs (`writer`: the open pack and the upload
//! queue); nothing grows with a file's or a backup's size but the lists of blob IDs.
//! What grows with the repositories: the source's index (`reader`) and the destination's
//! known blob IDs (`writer`). Measured (tests/backup_memory.rs, debug build, AMD EPYC,
//! Linux 6.18): in process, 36.8 MiB peak RSS copying a 32 MiB backup, 39.0 MiB a 96 MiB
//! one; the `rbackup copy` binary, 51.1 MiB for a 64 MiB backup and 59.1 MiB for a 320
//! MiB one (the difference is the pack uploads in flight, which vary from run to run).
//!
//! Both repositories are held under a shared lock for the whole copy (prune waits).

use std::collections::HashSet;

use bytes::Bytes;

use super::config::Repository;
use super::error::{BackupError, Result};
use super::keys::storage_id;
use super::lock::{self, LockKind};
use super::reader::RepositoryReader;
use super::segments::{
    ArchiveObject, ObjectKind, RepositorySegments, backup_point, seal_gap, seal_segment,
};
use super::verify::check_events;
use super::writer::{BackupWriter, SnapshotInfo, WriterOptions};
use crate::binlog::Position;
use crate::binlog::replay::BackupPoint;
use crate::binlog::window;

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
    /// Binlog objects the destination lacks and does not need (see `copy_cut`).
    pub segments_left_out: usize,
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
        all.clone()
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
        let held = destination_coordinates(src, &all, dest).await?;
        let done = copy_binlogs(src, dest, held.as_deref()).await?;
        if done.objects > 0 {
            progress(&format!(
                "copied {} binlog objects ({} bytes)",
                done.objects, done.bytes
            ));
        }
        if done.left_out > 0 {
            progress(&format!(
                "left out {} binlog objects older than the oldest backup the destination holds",
                done.left_out
            ));
        }
        report.segments = done.objects;
        report.segment_bytes = done.bytes;
        report.segments_left_out = done.left_out;
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

/// The backups the destination holds (after this run's copies), as their binlog
/// coordinates and sources, for choosing the segments it needs. With a reader key,
/// every destination snapshot's. With a writer key (which cannot decrypt the destination's snapshots), the
/// source's snapshots whose copy marker names a snapshot the destination still lists; if
/// the destination lists a snapshot no marker accounts for (a backup written there
/// directly, or copied from another repository), its coordinates are unknown and `None`
/// is returned: every missing segment is copied, as before.
async fn destination_coordinates(
    src: &Repository,
    source_snapshots: &[(String, super::Snapshot)],
    dest: &Repository,
) -> Result<Option<Vec<BackupPoint>>> {
    let listed = dest.store.list("snapshots").await?;
    if dest.keys.can_read() {
        let mut out = Vec::new();
        for l in listed {
            let data = dest.store.get(&l.name).await?;
            let snap = super::Snapshot::decode(&dest.keys, &l.name, &data)?;
            out.extend(backup_point(l.name.trim_start_matches("snapshots/"), &snap));
        }
        return Ok(Some(out));
    }
    let there: HashSet<String> = listed
        .iter()
        .map(|l| l.name.trim_start_matches("snapshots/").to_string())
        .collect();
    let markers: HashSet<String> = dest
        .store
        .list("copies")
        .await?
        .into_iter()
        .map(|l| l.name)
        .collect();
    let mut accounted: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for (id, snap) in source_snapshots {
        let marker = dest.keys.naming.copy_marker(&src.config.id, id);
        if !markers.contains(&marker) {
            continue;
        }
        let body = dest.store.get(&marker).await?;
        let copy = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["snapshot"].as_str().map(str::to_string));
        if let Some(copy) = copy
            && there.contains(&copy)
        {
            accounted.insert(copy);
            out.extend(backup_point(id, snap));
        }
    }
    Ok((accounted.len() == there.len()).then_some(out))
}

/// Where a binlog object ends (a gap: where archiving resumed), as prune compares it.
fn object_end(kind: &ObjectKind) -> Position {
    match kind {
        ObjectKind::Segment { file, end, .. } => Position {
            file: file.clone(),
            pos: *end,
        },
        ObjectKind::Gap { file, pos } => Position {
            file: file.clone(),
            pos: *pos,
        },
    }
}

/// The cut of the archive of `name` for a copy: where the destination's prune cuts
/// (`prune::archive_cut` over `held`, the destination's backups, with `servers`, the
/// server identities the archive's segments record, `None` if unknown) among the held
/// coordinates between the first segment's start and the last one's end of the
/// source's and the destination's archives together; `None` when that cuts nothing
/// (nothing is left out). The destination's prune cuts within its own archive; taking
/// the union of both archives keeps the two from undoing each other: a segment prune
/// removed is never copied back, and a segment a held backup needs that the destination
/// never had is copied (prune then keeps it).
pub fn copy_cut(
    name: &str,
    source: &[ArchiveObject],
    dest: &[ArchiveObject],
    held: &[BackupPoint],
    servers: Option<&[&str]>,
) -> Option<Position> {
    let mut first: Option<Position> = None;
    let mut last: Option<Position> = None;
    for o in source.iter().chain(dest) {
        let ObjectKind::Segment { file, start, end } = &o.kind else {
            continue;
        };
        let s = Position {
            file: file.clone(),
            pos: *start,
        };
        let e = Position {
            file: file.clone(),
            pos: *end,
        };
        if first
            .as_ref()
            .is_none_or(|f| window::compare(&s, f).is_lt())
        {
            first = Some(s);
        }
        if last.as_ref().is_none_or(|l| window::compare(&e, l).is_gt()) {
            last = Some(e);
        }
    }
    let (first, last) = (first?, last?);
    let within: Vec<&BackupPoint> = held
        .iter()
        .filter(|b| {
            window::compare(&first, &b.position).is_le()
                && window::compare(&b.position, &last).is_le()
        })
        .collect();
    super::prune::archive_cut(name, &within, servers)
        .at
        .map(|b| b.position.clone())
}

/// What `copy_binlogs` did.
#[derive(Debug, Default)]
struct BinlogsCopied {
    objects: usize,
    bytes: u64,
    /// Objects the destination lacks but does not need: they end at or before the oldest
    /// coordinates of the backups it holds (its prune removed them, or would).
    left_out: usize,
}

/// Copies every binlog object (segment or gap record) the destination lacks and needs,
/// source by source in archive order. Each one is read whole and checked as a restore
/// checks it before it is sealed again for the destination: storage ID, MAC under the
/// source's naming key, version, source, the positions its name gives against its header,
/// the events' length, BLAKE3 and CRC32, then each event's framing, CRC32 and position
/// (`verify::check_events`). A segment that fails is refused, naming it, and the copy
/// stops: a tampered or damaged segment is never given a valid MAC for the destination.
async fn copy_binlogs(
    src: &Repository,
    dest: &Repository,
    held: Option<&[BackupPoint]>,
) -> Result<BinlogsCopied> {
    let mut done = BinlogsCopied::default();
    for source in RepositorySegments::sources(src).await? {
        let from = RepositorySegments::open_reader(src.clone(), &source)?;
        let to = RepositorySegments::open_reader(dest.clone(), &source)?;
        let objects = from.objects().await?;
        let there_objects = to.objects().await?;
        // The segments' servers, when a held backup recorded under another source name
        // may be this source's by its server (as `prune` reads them).
        let servers: Option<Vec<String>> = match held {
            Some(h)
                if h.iter().any(|b| {
                    b.source.as_deref() != Some(source.as_str())
                        && (b.source.is_some() || b.server.is_some())
                }) =>
            {
                super::prune::segment_servers(&from, &objects).await.ok()
            }
            _ => Some(Vec::new()),
        };
        let servers: Option<Vec<&str>> = servers
            .as_ref()
            .map(|s| s.iter().map(String::as_str).collect());
        let cut =
            held.and_then(|h| copy_cut(&source, &objects, &there_objects, h, servers.as_deref()));
        let there: HashSet<&str> = there_objects
            .iter()
            .filter_map(|o| binlog_stem(&o.name))
            .collect();
        for object in &objects {
            let Some(stem) = binlog_stem(&object.name) else {
                continue;
            };
            if there.contains(stem) {
                continue;
            }
            if let Some(cut) = &cut
                && window::compare(&object_end(&object.kind), cut).is_le()
            {
                done.left_out += 1;
                continue;
            }
            let (name, sealed) = match &object.kind {
                ObjectKind::Segment { .. } => {
                    let (header, events) = from.read_segment(object).await?;
                    if let Some(wrong) = check_events(&header.segment, &events) {
                        return Err(BackupError::damaged(
                            &object.name,
                            format!("{wrong}; not copied"),
                        ));
                    }
                    seal_segment(&dest.keys, &source, &header.segment, &events).map_err(|e| {
                        BackupError::damaged(&object.name, format!("cannot compress: {e}"))
                    })?
                }
                ObjectKind::Gap { .. } => {
                    let gap = from.gap(object).await?;
                    seal_gap(&dest.keys, &source, &gap)
                }
            };
            done.bytes += sealed.len() as u64;
            dest.store.put(&name, Bytes::from(sealed)).await?;
            done.objects += 1;
        }
    }
    if done.objects > 0 {
        dest.store.sync().await?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(file: &str, start: u64, end: u64) -> ArchiveObject {
        ArchiveObject {
            name: String::new(),
            size: 0,
            kind: ObjectKind::Segment {
                file: file.into(),
                start,
                end,
            },
        }
    }

    fn at(file: &str, pos: u64) -> Position {
        Position {
            file: file.into(),
            pos,
        }
    }

    /// A held backup of source `source` at `file:pos`.
    fn held(source: &str, file: &str, pos: u64) -> BackupPoint {
        BackupPoint {
            id: format!("{source}-{file}-{pos}"),
            time: 0,
            position: at(file, pos),
            gtid: None,
            source: Some(source.into()),
            server: None,
            databases: None,
            not_replayable: None,
        }
    }

    #[test]
    fn the_cut_is_the_oldest_held_backup_within_either_archive() {
        let src = [
            seg("b.000001", 4, 1000),
            seg("b.000001", 1000, 2000),
            seg("b.000002", 4, 500),
        ];
        // The destination pruned before its backup at b.000001:1000.
        let dst = [seg("b.000001", 1000, 2000)];
        let held = [held("s1", "b.000001", 1000), held("s1", "b.000002", 100)];
        let cut = |src: &[ArchiveObject], dst: &[ArchiveObject], h: &[BackupPoint]| {
            copy_cut("s1", src, dst, h, Some(&["srv-1"]))
        };
        assert_eq!(cut(&src, &dst, &held), Some(at("b.000001", 1000)));
        // No backup held, or none inside either archive: nothing is left out.
        assert_eq!(cut(&src, &dst, &[]), None);
        assert_eq!(
            cut(&src, &dst, &[self::held("s1", "other.000009", 4)]),
            None
        );
        // Another source's backup (same binlog file names) neither moves the cut nor
        // makes one, as the destination's prune does not.
        let other = self::held("s2", "b.000001", 4);
        assert_eq!(
            cut(&src, &dst, &[other.clone(), held[0].clone()]),
            Some(at("b.000001", 1000))
        );
        assert_eq!(cut(&src, &dst, std::slice::from_ref(&other)), None);
        // The source pruned further than the destination: the destination's oldest
        // backup (in its own archive only) still holds the cut, so what it needs of the
        // source's comes.
        let src = [seg("b.000002", 4, 500)];
        let dst = [seg("b.000001", 1000, 2000)];
        assert_eq!(cut(&src, &dst, &held), Some(at("b.000001", 1000)));
        // A held backup the destination's archive does not reach yet, in the source's.
        let dst: [ArchiveObject; 0] = [];
        assert_eq!(cut(&src, &dst, &held), Some(at("b.000002", 100)));
    }

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
