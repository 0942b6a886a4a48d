//! `prune`: backups the retention policy does not keep are removed, then every blob no
//! kept backup needs (REPOSITORY.md, "Index": new index objects for what is kept are
//! written *before* the old ones and the packs they alone list are deleted).
//!
//! Under the repository's exclusive lock (no backup, archiver, restore or verify runs
//! meanwhile), in this order, each step durable (`Store::sync`) before the next:
//!
//! 1. **plan**: every snapshot read (one that cannot be read stops prune: what it needs is
//!    unknown), the policy applied to each group on its own (`trust::retention`; "Groups"
//!    below), the kept backups' catalogs read
//!    for the blobs they need; each pack is kept (at least `repack_below` of its bytes
//!    used), repacked (some used, less than that), or deleted (none used, or listed by no
//!    index: left by an interrupted backup or prune);
//! 2. **repack**: the used blobs of the packs to repack (unless a kept pack has them too)
//!    are copied, checked on the way (decompressed and re-hashed: damage is not copied, it
//!    stops prune before anything is deleted), into new packs;
//! 3. **index**: new index objects list the kept packs of every index object that lists a
//!    pack to repack or delete, and the new packs;
//! 4. the removed backups' **snapshots** are deleted;
//! 5. the old index objects replaced in 3 are deleted;
//! 6. the packs to delete and the repacked ones are deleted;
//! 7. binlog segments and gaps (`binlog/<source>/`) that end at or before the cut of
//!    their source's archive, oldest first; never the newest segment (where the archiver
//!    resumes). Each archive is cut on its own, at the oldest coordinates it holds of a
//!    kept backup *of that source* (`archive_cut`): one whose `binlog_source` is the
//!    archive's name or whose `server_identity` its segments record, as a point-in-time
//!    restore matches them (`BackupPoint::belongs_to`); another server's backups, whose
//!    binlog file names may well be the same, never move it. A kept backup that records
//!    no source (made before `binlog_source` was recorded), or whose source cannot be
//!    checked (the archive's segment headers unreadable), may be any archive's: it holds
//!    every cut back to its coordinates but never makes one. An archive that holds no
//!    kept backup of its source (all removed, or a server no longer backed up) is kept
//!    whole and reported: without a backup its binlog restores nothing here, but it is
//!    the only copy of those events and deleting it is the DBA's call, not a retention
//!    rule's. Every kept backup keeps its whole window (from its coordinates on).
//!    Telling sources apart costs one ranged read of each segment's header, and only for
//!    an archive that holds the coordinates of a kept backup recorded under another
//!    source name (a repository of several servers).
//!
//! The exclusive lock is taken beside a running binlog archiver (its shared lock does
//! not refuse prune): the archiver only appends after its newest segment.
//!
//! Killed at any point (kill -9, power loss), the repository stays whole: before 4 only
//! objects were added (new packs unindexed, or listed twice with the old ones: both
//! valid); after 4 the removed backups are gone before anything they alone need; after 5
//! every index lists only packs that stay. What is left over (new packs no index lists,
//! old packs no index lists) is removed by the next prune; `verify` reports it as a notice,
//! not damage.
//!
//! Copy markers (`copies/<marker>`, REPOSITORY.md "Copies") of the backups removed are
//! kept, on purpose, and listed: `rbackup copy` skips a source backup whose marker
//! exists, so the marker of a backup copied here and then pruned is what stops every
//! later copy from bringing it back (to be removed again by the next prune, its binlog
//! with it). Which marker is a backup's is known from its snapshot's `copied_from`
//! (reader key) under the naming key; prune always holds both.
//!
//! **Groups.** The policy is applied to each group of backups on its own, as restic's
//! `forget` groups by host and paths: otherwise, with two servers backed up nightly,
//! `--keep-daily 7` would keep one of the two each day, and hourly backups of one database
//! would take the daily buckets of the nightly whole-server backups. A group is (`source`,
//! `scope`) (`group_of`): the source is `meta.binlog_source` (the server identity, or
//! `backup --source`, as `list` shows per source), else `meta.source`, else the host; the
//! scope is `meta.scope`, what `backup` selected (whole server, which databases, which
//! tables, what is left out; not the databases that existed that night). A backup made
//! before `scope` was recorded has a scope of its own, `(not recorded)` followed by what
//! its meta says (`binlog_databases`: whole server or which databases; a partial
//! selection's `binlog_not_replayable`), so it never shares a group, nor its buckets, with
//! newer backups: conservative, the policy then keeps up to its counts of those old
//! backups too. `--keep-within` counts from the newest backup of the group. The binlog
//! cut (step 7) uses every kept backup of a source, whatever its group.
//!
//! An empty policy (no `--keep-*`) removes nothing at all. A pack listed by an index but
//! missing from the storage has its index entries dropped (so the next backup stores those
//! blobs again, REPOSITORY.md "Index"), and is reported.
//!
//! Memory: what grows with the repository is the index, held compact. While the kept
//! backups' catalogs are read: the reader's index (`reader`: 48 bytes per blob) and one
//! bit per blob for "used"; then the used blobs' IDs, sorted (32 bytes each), and
//! `IndexTable`: one 48-byte row per (pack, blob) an index lists, sorted by pack, and a
//! 4-byte permutation by blob ID, plus about 100 bytes per pack (its ID, its place in
//! each index object, its size and fate). The peak is about 85 bytes per blob: measured
//! with these structures on 3 million synthetic blobs, 84 bytes per blob (97 at 1
//! million); the `HashSet`s and `HashMap`s of `String`s before took 207 (264 at 1
//! million). Blobs are chunks of 32 KiB on average before compression, so that is about
//! 2.7 MiB per GiB of deduplicated data, 2.7 GiB for 1 TiB of it (a 1 TB repository of
//! data that compresses two times holds about 2 TB of chunks: 5.4 GiB). Restic also
//! keeps its whole index in memory, but its chunks average 1 MiB: 32 times fewer blobs
//! for the same data; ours are smaller for deduplication of row data. Repacking adds the
//! blobs it copies (their entries and IDs) and one pack at a time.
//!
//! `RBACKUP_TEST_PRUNE_PAUSE=<step>` (tests only) makes prune stop and wait to be killed
//! after step `repacked`, `indexed`, `snapshots`, `indexes-deleted` or `first-pack-deleted`.
//!
//! Not for: the policy's rules (`trust::retention`), reading segments (`segments`),
//! which backup a restore replays from which archive (`binlog::replay`), verifying packs
//! prune does not touch (`verify`).

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::config::Repository;
use super::error::{BackupError, Result};
use super::index::{self, PackBlobs};
use super::keys::{BlobId, storage_id};
use super::lock::{self, LockKind};
use super::pack::{self, PackBuilder};
use super::reader::RepositoryReader;
use super::segments::{ArchiveObject, ObjectKind, RepositorySegments, backup_point};
use super::snapshot::{Snapshot, check_storage_id};
use super::verify::{check_blob, pack_id_of};
use crate::binlog::Position;
use crate::binlog::replay::BackupPoint;
use crate::binlog::window;
use crate::trust::retention::{self, Policy};

/// How prune runs.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    pub policy: Policy,
    /// Plan and report only.
    pub dry_run: bool,
    /// A pack with some used blobs is repacked when less than this share of its bytes is
    /// used (0.5: mostly unused).
    pub repack_below: f64,
    /// Plaintext size at which a new pack is closed (as the writer's).
    pub pack_size: usize,
    /// Index objects list at most this many packs each.
    pub packs_per_index: usize,
    /// "Now", for `--keep-within` and backups dated in the future.
    pub now: DateTime<Utc>,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            policy: Policy::default(),
            dry_run: false,
            repack_below: 0.5,
            pack_size: 4 << 20,
            packs_per_index: 256,
            now: Utc::now(),
        }
    }
}

/// One backup and its fate.
#[derive(Debug, Clone)]
pub struct SnapshotFate {
    pub id: String,
    pub time: String,
    pub host: String,
    /// The backups the policy was applied to together (`group_of`).
    pub group: Group,
    /// Why it is kept ("daily backup, last backup"), or `None`: removed.
    pub kept: Option<String>,
}

/// What happens to a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackFate {
    Keep,
    Repack,
    /// No kept backup uses any of its blobs.
    Unused,
    /// Listed by no index (left by an interrupted backup or prune).
    Unindexed,
    /// Listed by an index, not in the storage: its entries are dropped.
    Missing,
}

/// What prune does (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Newest first.
    pub snapshots: Vec<SnapshotFate>,
    pub policy: String,
    pub empty_policy: bool,
    /// Per fate: packs and their stored bytes.
    pub packs: BTreeMap<&'static str, (usize, u64)>,
    /// Blobs copied into new packs, and their stored bytes.
    pub copy_blobs: usize,
    pub copy_bytes: u64,
    /// Index objects replaced.
    pub rewrite_indexes: usize,
    /// Blobs kept backups need that no pack holds (damage found on the way).
    pub lost_blobs: usize,
    /// Binlog archives: what goes per source.
    pub binlog: Vec<BinlogPlan>,
    /// Copy markers of removed backups, kept.
    pub kept_markers: Vec<KeptMarker>,
}

/// The binlog segments and gaps of one source that go: every object that ends at or
/// before the archive's cut (never its newest segment); see step 7 of the module doc.
#[derive(Debug, Clone, Default)]
pub struct BinlogPlan {
    pub source: String,
    /// Where the archive is cut: the oldest coordinates it holds of a kept backup of this
    /// source or of one that may be (records no source); `None`: kept whole (`whole`).
    pub cut: Option<String>,
    /// The backup whose coordinates are the cut.
    pub cut_backup: Option<String>,
    /// Kept backups of this source whose coordinates the archive holds.
    pub ours: usize,
    /// Kept backups whose coordinates the archive holds and that may be of this source
    /// (they record no source, or it could not be checked): they hold the cut back.
    pub maybe: usize,
    /// Why the archive is kept whole, when `cut` is `None`.
    pub whole: Option<String>,
    /// Said about the plan besides (a segment header that could not be read).
    pub note: Option<String>,
    /// The whole archive: objects and stored bytes.
    pub archive_objects: usize,
    pub archive_bytes: u64,
    /// What goes.
    pub objects: Vec<String>,
    pub bytes: u64,
}

/// The copy marker of a backup prune removes: kept (see the module doc).
#[derive(Debug, Clone)]
pub struct KeptMarker {
    /// The removed backup (snapshot ID here).
    pub backup: String,
    /// `copies/<marker>`.
    pub marker: String,
    /// Where it was copied from: `<source repository ID>/<source snapshot ID>`.
    pub from: String,
}

impl Plan {
    pub fn removed(&self) -> impl Iterator<Item = &SnapshotFate> {
        self.snapshots.iter().filter(|s| s.kept.is_none())
    }

    /// Stored bytes freed (approximately: repacked blobs are written again).
    pub fn freed_bytes(&self) -> u64 {
        let deleted: u64 = ["unused", "unindexed", "repack"]
            .iter()
            .filter_map(|k| self.packs.get(k))
            .map(|(_, b)| b)
            .sum();
        let binlog: u64 = self.binlog.iter().map(|b| b.bytes).sum();
        deleted.saturating_sub(self.copy_bytes) + binlog
    }
}

/// What prune did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub plan: Plan,
    pub snapshots_deleted: usize,
    pub packs_written: usize,
    pub indexes_written: usize,
    pub indexes_deleted: usize,
    pub packs_deleted: usize,
    pub binlog_deleted: usize,
}

fn fate_word(f: PackFate) -> &'static str {
    match f {
        PackFate::Keep => "keep",
        PackFate::Repack => "repack",
        PackFate::Unused => "unused",
        PackFate::Unindexed => "unindexed",
        PackFate::Missing => "missing",
    }
}

async fn pause(step: &str) {
    let Ok(value) = std::env::var("RBACKUP_TEST_PRUNE_PAUSE") else {
        return;
    };
    // `STEP` waits for ever (to be killed); `STEP:PATH` goes on once PATH exists.
    let (at, until) = match value.split_once(':') {
        Some((at, path)) => (at.to_string(), Some(std::path::PathBuf::from(path))),
        None => (value, None),
    };
    if at != step {
        return;
    }
    eprintln!("rbackup prune: paused after {step} (RBACKUP_TEST_PRUNE_PAUSE)");
    loop {
        match &until {
            Some(path) if path.exists() => return,
            Some(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            None => tokio::time::sleep(std::time::Duration::from_secs(3600)).await,
        }
    }
}

/// Runs prune on `repo` (opened with a reader key). `say` gets one line per step.
pub async fn prune(
    repo: &Repository,
    options: &PruneOptions,
    say: &mut (dyn FnMut(String) + Send),
) -> Result<Outcome> {
    if !repo.keys.can_read() {
        return Err(BackupError::Key(format!(
            "{}: prune needs a reader key (--identity-file or --passphrase-file): it reads every kept backup's list of files",
            repo.store.url()
        )));
    }
    let store = &repo.store;
    // A dry run deletes nothing: a shared lock (backups may go on) is enough.
    let kind = if options.dry_run {
        LockKind::Shared
    } else {
        LockKind::Exclusive
    };
    // Beside a running binlog archiver: it only appends after its newest segment, which
    // prune never deletes.
    let guard = match kind {
        LockKind::Exclusive => lock::acquire_exclusive_beside(store, "prune", BESIDE).await?,
        kind => lock::acquire(store, kind, "prune").await?,
    };
    let result = run(repo, options, say, &guard).await;
    match result {
        Ok(outcome) => {
            guard.release().await?;
            Ok(outcome)
        }
        Err(e) => {
            let _ = guard.release().await;
            Err(e)
        }
    }
}

/// The operations prune goes ahead beside (a running binlog archiver only appends after
/// its newest segment, which prune never deletes).
const BESIDE: &[&str] = &["binlog archiver"];

/// Before each deleting step: the exclusive lock is still ours and freshly refreshed, no
/// other operation holds a live shared lock, and no backup appeared since the plan (a
/// prune paused past its lock's ttl is invisible to backups, which then go ahead and may
/// deduplicate against packs this prune planned to delete). `known`: every snapshot and
/// index object the plan saw or prune wrote.
async fn still_alone(
    store: &super::store::Store,
    guard: &lock::LockGuard,
    known: &std::collections::HashSet<String>,
) -> Result<()> {
    guard.reconfirm_exclusive(BESIDE).await?;
    for prefix in ["snapshots", "index"] {
        for listed in store.list(prefix).await? {
            if !known.contains(&listed.name) {
                return Err(BackupError::Locked(format!(
                    "{}: {} appeared while prune ran (a backup went ahead while prune was paused past its lock's ttl); stopping before deleting more (run prune again)",
                    store.url(),
                    listed.name
                )));
            }
        }
    }
    Ok(())
}

async fn run(
    repo: &Repository,
    options: &PruneOptions,
    say: &mut (dyn FnMut(String) + Send),
    guard: &lock::LockGuard,
) -> Result<Outcome> {
    let store = &repo.store;
    let mut plan = Plan {
        policy: options.policy.to_string(),
        empty_policy: options.policy.is_empty(),
        ..Default::default()
    };

    // Snapshots and the policy.
    let mut snapshots: Vec<(String, Snapshot)> = Vec::new();
    for listed in store.list("snapshots").await? {
        let data = store.get(&listed.name).await?;
        let snap = Snapshot::decode(&repo.keys, &listed.name, &data).map_err(|e| {
            if e.is_damage() {
                BackupError::damaged(
                    &listed.name,
                    format!(
                        "{}; prune stops: what this backup needs is unknown (run rbackup verify)",
                        detail(&e)
                    ),
                )
            } else {
                e
            }
        })?;
        snapshots.push((
            listed.name.trim_start_matches("snapshots/").to_string(),
            snap,
        ));
    }
    // A deterministic order for ties (by ID), as retention::apply wants.
    snapshots.sort_by(|a, b| a.0.cmp(&b.0));
    let mut times = Vec::with_capacity(snapshots.len());
    for (id, s) in &snapshots {
        let t = DateTime::parse_from_rfc3339(&s.time).map_err(|e| {
            BackupError::damaged(
                format!("snapshots/{id}"),
                format!("bad time {:?}: {e}", s.time),
            )
        })?;
        times.push(t.with_timezone(&Utc));
    }
    let groups: Vec<Group> = snapshots
        .iter()
        .map(|(_, s)| group_of(&s.meta, &s.host))
        .collect();
    let fates = decide(
        &groups,
        &times,
        &options.policy,
        &chrono::Local,
        options.now,
    );
    let mut order: Vec<usize> = (0..snapshots.len()).collect();
    order.sort_by(|a, b| times[*b].cmp(&times[*a]).then(a.cmp(b)));
    plan.snapshots = order
        .iter()
        .map(|&i| SnapshotFate {
            id: snapshots[i].0.clone(),
            time: snapshots[i].1.time.clone(),
            host: snapshots[i].1.host.clone(),
            group: groups[i].clone(),
            kept: fates[i].clone(),
        })
        .collect();
    if plan.empty_policy {
        say("empty policy (no --keep-* option): nothing is removed".into());
        return Ok(Outcome {
            plan,
            ..Default::default()
        });
    }

    // What the kept backups need: one bit per blob of the reader's index (sorted IDs),
    // then the sorted IDs of the used ones.
    let reader = RepositoryReader::open(repo.clone()).await.map_err(|e| {
        if e.is_damage() {
            BackupError::damaged(
                object(&e),
                format!("{}; prune stops (run rbackup verify)", detail(&e)),
            )
        } else {
            e
        }
    })?;
    let mut used_bits = vec![0u64; reader.blob_count().div_ceil(64)];
    // Needed blobs that no index lists (damage): counted as lost.
    let mut unlisted: HashSet<BlobId> = HashSet::new();
    let mut mark = |id: &BlobId| match reader.blob_rank(id) {
        Some(r) => used_bits[r / 64] |= 1 << (r % 64),
        None => {
            unlisted.insert(*id);
        }
    };
    for (i, (id, snap)) in snapshots.iter().enumerate() {
        if fates[i].is_none() {
            continue;
        }
        snap.catalog.blobs.iter().for_each(&mut mark);
        let mut catalog = reader.catalog(snap);
        loop {
            match catalog.next().await {
                Ok(Some(entry)) => entry.blobs.iter().for_each(&mut mark),
                Ok(None) => break,
                Err(e) => {
                    return Err(BackupError::damaged(
                        object(&e),
                        format!(
                            "{}; prune stops: the kept backup {id} cannot be read whole (run rbackup verify)",
                            detail(&e)
                        ),
                    ));
                }
            }
        }
    }
    let used: Vec<BlobId> = (0..reader.blob_count())
        .filter(|r| used_bits[r / 64] & (1 << (r % 64)) != 0)
        .map(|r| reader.blob_at(r))
        .collect();
    drop(used_bits);
    drop(reader);
    let is_used = |id: &BlobId| used.binary_search(id).is_ok();

    // The index, compact (see "Memory" in the module doc).
    let table = IndexTable::load(repo).await?;
    let mut present: HashMap<[u8; 32], u64> = HashMap::new();
    for listed in store.list("data").await? {
        if let Some(id) = pack_id_of(&listed.name) {
            let mut raw = [0u8; 32];
            if hex::decode_to_slice(id, &mut raw).is_ok() {
                present.insert(raw, listed.size);
            }
        }
    }

    // Each pack's fate.
    let fate: Vec<PackFate> = (0..table.packs.len())
        .map(|p| {
            if !present.contains_key(&table.packs[p]) {
                return PackFate::Missing;
            }
            let rows = table.rows_of(p as u32);
            let total: u64 = rows.iter().map(|r| r.entry.length as u64).sum();
            let in_use: u64 = rows
                .iter()
                .filter(|r| is_used(&r.entry.id))
                .map(|r| r.entry.length as u64)
                .sum();
            if in_use == 0 {
                PackFate::Unused
            } else if (in_use as f64) < options.repack_below * total as f64 {
                PackFate::Repack
            } else {
                PackFate::Keep
            }
        })
        .collect();
    let indexed: HashSet<[u8; 32]> = table.packs.iter().copied().collect();
    let mut unindexed: Vec<[u8; 32]> = present
        .keys()
        .filter(|id| !indexed.contains(*id))
        .copied()
        .collect();
    unindexed.sort();
    drop(indexed);
    for (p, f) in fate.iter().enumerate() {
        let bytes = present.get(&table.packs[p]).copied().unwrap_or(0);
        let slot = plan.packs.entry(fate_word(*f)).or_default();
        slot.0 += 1;
        slot.1 += bytes;
    }
    for id in &unindexed {
        let slot = plan
            .packs
            .entry(fate_word(PackFate::Unindexed))
            .or_default();
        slot.0 += 1;
        slot.1 += present[id];
    }
    // The blobs to copy: used, in a pack to repack, and in no kept pack.
    let in_kept_pack = |id: &BlobId| {
        table
            .packs_of(id)
            .any(|p| fate[p as usize] == PackFate::Keep)
    };
    let mut copy: Vec<(u32, Vec<pack::BlobEntry>)> = Vec::new();
    let mut copied: HashSet<BlobId> = HashSet::new();
    let mut repack: Vec<u32> = (0..table.packs.len() as u32)
        .filter(|&p| fate[p as usize] == PackFate::Repack)
        .collect();
    repack.sort_by_key(|&p| table.packs[p as usize]);
    for p in repack {
        let mut blobs = Vec::new();
        for r in table.rows_of(p) {
            let b = r.entry;
            if is_used(&b.id) && !in_kept_pack(&b.id) && copied.insert(b.id) {
                plan.copy_blobs += 1;
                plan.copy_bytes += b.length as u64;
                blobs.push(b);
            }
        }
        if !blobs.is_empty() {
            copy.push((p, blobs));
        }
    }
    plan.lost_blobs = unlisted.len()
        + used
            .iter()
            .filter(|b| !in_kept_pack(b) && !copied.contains(b))
            .count();
    let touched: Vec<usize> = table
        .objects
        .iter()
        .enumerate()
        .filter(|(_, (_, packs))| packs.iter().any(|&p| fate[p as usize] != PackFate::Keep))
        .map(|(i, _)| i)
        .collect();
    plan.rewrite_indexes = touched.len();

    // Binlog archives: what no kept backup of their source needs.
    let kept_points: Vec<BackupPoint> = snapshots
        .iter()
        .enumerate()
        .filter(|(i, _)| fates[*i].is_some())
        .filter_map(|(_, (id, s))| backup_point(id, s))
        .collect();
    for source in RepositorySegments::sources(repo).await? {
        let archive = RepositorySegments::open_reader(repo.clone(), &source)?;
        plan.binlog.push(binlog_plan(&archive, &kept_points).await?);
    }
    // Copy markers of the removed backups: kept, listed.
    let copied: Vec<KeptMarker> = snapshots
        .iter()
        .enumerate()
        .filter(|(i, _)| fates[*i].is_none())
        .filter_map(|(_, (id, s))| {
            let from = s.meta.get("copied_from")?;
            let r = from.get("repository")?.as_str()?;
            let snapshot = from.get("snapshot")?.as_str()?;
            Some(KeptMarker {
                backup: id.clone(),
                marker: repo.keys.naming.copy_marker(r, snapshot),
                from: format!("{r}/{snapshot}"),
            })
        })
        .collect();
    if !copied.is_empty() {
        let listed: HashSet<String> = store
            .list("copies")
            .await?
            .into_iter()
            .map(|l| l.name)
            .collect();
        plan.kept_markers = copied
            .into_iter()
            .filter(|m| listed.contains(&m.marker))
            .collect();
    }
    let binlog_objects: usize = plan.binlog.iter().map(|b| b.objects.len()).sum();

    let removed: Vec<&SnapshotFate> = plan.removed().collect();
    let to_delete: Vec<String> = {
        let mut v: Vec<String> = fate
            .iter()
            .enumerate()
            .filter(|(_, f)| matches!(f, PackFate::Unused | PackFate::Repack))
            .map(|(p, _)| hex::encode(table.packs[p]))
            .chain(unindexed.iter().map(hex::encode))
            .collect();
        v.sort();
        v
    };
    if removed.is_empty() && to_delete.is_empty() && touched.is_empty() && binlog_objects == 0 {
        say("nothing to prune: every backup is kept and every pack is in use".into());
        return Ok(Outcome {
            plan,
            ..Default::default()
        });
    }
    if plan.lost_blobs > 0 {
        say(format!(
            "warning: kept backups need {} blobs that no pack holds (damage: run rbackup verify --read-data)",
            plan.lost_blobs
        ));
    }
    if options.dry_run {
        return Ok(Outcome {
            plan,
            ..Default::default()
        });
    }
    let mut outcome = Outcome::default();

    // 2. Repack.
    let max_raw = repo.config.chunker.max as usize;
    let mut new_packs: Vec<PackBlobs> = Vec::new();
    let mut builder = PackBuilder::new(options.pack_size + options.pack_size / 4);
    for (p, blobs) in &copy {
        let name = pack::object_name(&hex::encode(table.packs[*p as usize]));
        let stored = store.get(&name).await?;
        check_storage_id(&name, &stored)?;
        let plain = repo.keys.decrypt(&name, &stored)?;
        for b in blobs {
            check_blob(&repo.keys.naming, max_raw, &plain, b).map_err(|d| {
                BackupError::damaged(
                    &name,
                    format!("blob {}: {d}; prune stops before deleting anything", b.id),
                )
            })?;
            let start = b.offset as usize;
            builder.add(
                b.id,
                &plain[start..start + b.length as usize],
                b.raw_length as usize,
            );
            if builder.len() >= options.pack_size {
                let full = std::mem::replace(
                    &mut builder,
                    PackBuilder::new(options.pack_size + options.pack_size / 4),
                );
                new_packs.push(upload_pack(repo, full).await?);
            }
        }
    }
    if !builder.is_empty() {
        new_packs.push(upload_pack(repo, builder).await?);
    }
    outcome.packs_written = new_packs.len();
    if !new_packs.is_empty() {
        say(format!(
            "repacked {} blobs ({} bytes) into {} new packs",
            plan.copy_blobs,
            plan.copy_bytes,
            new_packs.len()
        ));
    }
    store.sync().await?;
    pause("repacked").await;

    // 3. New index objects for what the touched ones keep, and the new packs; each
    // object's pack list is built when it is written.
    let mut untouched_pack = vec![false; table.packs.len()];
    for (i, (_, packs)) in table.objects.iter().enumerate() {
        if touched.binary_search(&i).is_err() {
            for &p in packs {
                untouched_pack[p as usize] = true;
            }
        }
    }
    let mut seen = vec![false; table.packs.len()];
    let mut relisted: Vec<u32> = Vec::new();
    for &i in &touched {
        for &p in &table.objects[i].1 {
            if fate[p as usize] == PackFate::Keep
                && !untouched_pack[p as usize]
                && !std::mem::replace(&mut seen[p as usize], true)
            {
                relisted.push(p);
            }
        }
    }
    drop(seen);
    drop(untouched_pack);
    // What the plan saw and what prune writes: anything else appearing later is a backup
    // that went ahead beside a paused prune (see `still_alone`).
    let mut known: HashSet<String> = snapshots
        .iter()
        .map(|(id, _)| format!("snapshots/{id}"))
        .chain(table.objects.iter().map(|(name, _)| name.clone()))
        .collect();
    let per_index = options.packs_per_index.max(1);
    let mut new_packs = new_packs.into_iter();
    let mut relisted = relisted.into_iter();
    loop {
        let mut chunk: Vec<PackBlobs> = relisted
            .by_ref()
            .take(per_index)
            .map(|p| PackBlobs {
                pack: hex::encode(table.packs[p as usize]),
                blobs: table.rows_of(p).iter().map(|r| r.entry).collect(),
            })
            .collect();
        let room = per_index - chunk.len();
        chunk.extend(new_packs.by_ref().take(room));
        if chunk.is_empty() {
            break;
        }
        let data = index::encode(&repo.keys, &chunk);
        let name = format!("index/{}", storage_id(&data));
        known.insert(name.clone());
        store.put(&name, Bytes::from(data)).await?;
        outcome.indexes_written += 1;
    }
    store.sync().await?;
    pause("indexed").await;
    still_alone(store, guard, &known).await?;

    // 4. Snapshots of the removed backups.
    for s in &removed {
        store.delete(&format!("snapshots/{}", s.id)).await?;
        outcome.snapshots_deleted += 1;
    }
    store.sync().await?;
    if !removed.is_empty() {
        say(format!("removed {} backups", removed.len()));
    }
    pause("snapshots").await;
    still_alone(store, guard, &known).await?;

    // 5. The index objects replaced.
    for &i in &touched {
        store.delete(&table.objects[i].0).await?;
        outcome.indexes_deleted += 1;
    }
    store.sync().await?;
    pause("indexes-deleted").await;
    still_alone(store, guard, &known).await?;

    // 6. The packs nothing lists any more.
    for (n, id) in to_delete.iter().enumerate() {
        store.delete(&pack::object_name(id)).await?;
        outcome.packs_deleted += 1;
        if n == 0 {
            pause("first-pack-deleted").await;
        }
    }
    store.sync().await?;
    still_alone(store, guard, &known).await?;
    // 7. Binlog segments and gaps before every kept backup's window, oldest first (a
    // killed prune leaves the archive contiguous from where it stopped).
    for b in &plan.binlog {
        for name in &b.objects {
            store.delete(name).await?;
            outcome.binlog_deleted += 1;
        }
    }
    store.sync().await?;
    say(format!(
        "deleted {} packs, wrote {} and replaced {} index objects by {}; about {} bytes freed",
        outcome.packs_deleted,
        outcome.packs_written,
        outcome.indexes_deleted,
        outcome.indexes_written,
        plan.freed_bytes()
    ));
    outcome.plan = plan;
    Ok(outcome)
}

/// One blob as an index lists it in one pack (48 bytes).
#[derive(Debug, Clone, Copy)]
struct Row {
    entry: pack::BlobEntry,
    pack: u32,
}

/// Every index object, compact: prune's whole view of the index (see "Memory" in the
/// module doc).
struct IndexTable {
    /// Each index object's name and the numbers of the packs it lists.
    objects: Vec<(String, Vec<u32>)>,
    /// Pack IDs, numbered in the order they are first listed.
    packs: Vec<[u8; 32]>,
    /// Every (pack, blob) an index lists, once, sorted by pack number then offset.
    rows: Vec<Row>,
    /// Pack `p`'s rows are `rows[starts[p]..starts[p + 1]]`.
    starts: Vec<u32>,
    /// Row numbers sorted by blob ID: the packs that hold a blob.
    by_id: Vec<u32>,
}

impl IndexTable {
    async fn load(repo: &Repository) -> Result<IndexTable> {
        let store = &repo.store;
        let listing = store.list("index").await?;
        // 44 bytes of index object per blob: room for every row at once.
        let room: u64 = listing.iter().map(|l| l.size / 44).sum();
        // Sizes come from the storage's listing: past 64 Mi blobs (2 TiB of chunks) the
        // vector grows as it fills rather than trusting them.
        let room = room.min(1 << 26);
        let mut rows: Vec<Row> = Vec::with_capacity(room as usize);
        let mut packs: Vec<[u8; 32]> = Vec::new();
        let mut numbers: HashMap<[u8; 32], u32> = HashMap::new();
        let mut objects = Vec::new();
        for listed in listing {
            let data = store.get(&listed.name).await?;
            check_storage_id(&listed.name, &data)?;
            let mut listed_packs = Vec::new();
            for p in index::decode(&repo.keys, &listed.name, &data)? {
                let mut id = [0u8; 32];
                hex::decode_to_slice(&p.pack, &mut id).expect("index pack IDs are hex");
                let n = *numbers.entry(id).or_insert_with(|| {
                    packs.push(id);
                    (packs.len() - 1) as u32
                });
                listed_packs.push(n);
                rows.extend(p.blobs.iter().map(|&entry| Row { entry, pack: n }));
            }
            objects.push((listed.name, listed_packs));
        }
        drop(numbers);
        rows.sort_unstable_by(|a, b| {
            (a.pack, a.entry.offset, a.entry.id).cmp(&(b.pack, b.entry.offset, b.entry.id))
        });
        // A pack listed by two index objects (a prune killed between its steps 3 and 5).
        rows.dedup_by(|b, a| a.pack == b.pack && a.entry == b.entry);
        rows.shrink_to_fit();
        let mut starts = vec![0u32; packs.len() + 1];
        for r in &rows {
            starts[r.pack as usize + 1] += 1;
        }
        for p in 0..packs.len() {
            starts[p + 1] += starts[p];
        }
        let mut by_id: Vec<u32> = (0..rows.len() as u32).collect();
        by_id.sort_unstable_by(|&a, &b| rows[a as usize].entry.id.cmp(&rows[b as usize].entry.id));
        Ok(IndexTable {
            objects,
            packs,
            rows,
            starts,
            by_id,
        })
    }

    fn rows_of(&self, pack: u32) -> &[Row] {
        &self.rows[self.starts[pack as usize] as usize..self.starts[pack as usize + 1] as usize]
    }

    /// The numbers of the packs an index lists blob `id` in.
    fn packs_of<'a>(&'a self, id: &'a BlobId) -> impl Iterator<Item = u32> + 'a {
        let first = self
            .by_id
            .partition_point(|&r| self.rows[r as usize].entry.id < *id);
        self.by_id[first..]
            .iter()
            .map(|&r| &self.rows[r as usize])
            .take_while(move |r| r.entry.id == *id)
            .map(|r| r.pack)
    }
}

async fn upload_pack(repo: &Repository, builder: PackBuilder) -> Result<PackBlobs> {
    let (plain, blobs) = builder.seal();
    let stored = repo.keys.encrypt(&plain);
    drop(plain);
    let id = storage_id(&stored);
    repo.store
        .put(&pack::object_name(&id), Bytes::from(stored))
        .await?;
    Ok(PackBlobs { pack: id, blobs })
}

fn object(e: &BackupError) -> String {
    match e {
        BackupError::Missing { object, .. }
        | BackupError::Damaged { object, .. }
        | BackupError::Storage { object, .. } => object.clone(),
        other => other.to_string(),
    }
}

fn detail(e: &BackupError) -> String {
    match e {
        BackupError::Damaged { detail, file, .. } => match file {
            Some(f) => format!("{detail} (needed by {f})"),
            None => detail.clone(),
        },
        BackupError::Missing { file: Some(f), .. } => format!("missing (needed by {f})"),
        BackupError::Missing { .. } => "missing".into(),
        other => other.to_string(),
    }
}

/// The backups a retention policy is applied to together, as restic groups by host and
/// paths: those of one server (`source`) and of one selection (`scope`). See "Groups" in
/// the module doc.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Group {
    /// `meta.binlog_source`, else `meta.source`, else the snapshot's host.
    pub source: String,
    /// `meta.scope`; for a backup that records none, what its meta says of it, marked
    /// `(not recorded)` (`SCOPE_NOT_RECORDED`).
    pub scope: String,
}

impl std::fmt::Display for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "source {}, scope {}", self.source, self.scope)
    }
}

/// How the scope of a backup made before `meta.scope` was recorded begins.
pub const SCOPE_NOT_RECORDED: &str = "(not recorded)";

/// The group of a backup with snapshot `meta`, made on `host`.
pub fn group_of(meta: &serde_json::Value, host: &str) -> Group {
    let text = |key: &str| {
        meta.get(key)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
    };
    let source = text("binlog_source")
        .or_else(|| text("source"))
        .unwrap_or(host)
        .to_string();
    let scope = match meta.get("scope").and_then(|v| v.as_str()) {
        Some(scope) => scope.to_string(),
        None => {
            // Before `scope`: what the replay fields say (whole server or which
            // databases, partial or not), each its own group; none of them: one group.
            use crate::binlog::filter::DatabaseFilter;
            let sorted = |d: &[String]| {
                let mut d = d.to_vec();
                d.sort();
                d.dedup();
                d.join(",")
            };
            let what = match meta.get("binlog_databases") {
                None => None,
                Some(serde_json::Value::Null) => Some("whole server".to_string()),
                Some(v) => Some(match serde_json::from_value::<DatabaseFilter>(v.clone()) {
                    Ok(DatabaseFilter::Only(d)) => format!("databases {}", sorted(&d)),
                    Ok(DatabaseFilter::Except(d)) => {
                        format!("all databases except {}", sorted(&d))
                    }
                    Err(_) => format!("databases {v}"),
                }),
            };
            match (what, text("binlog_not_replayable")) {
                (None, _) => SCOPE_NOT_RECORDED.to_string(),
                (Some(what), None) => format!("{SCOPE_NOT_RECORDED} {what}"),
                (Some(what), Some(partial)) => {
                    format!("{SCOPE_NOT_RECORDED} {what}, partial: {partial}")
                }
            }
        }
    };
    Group { source, scope }
}

/// The policy applied to each group on its own (`--keep-within` from the group's newest
/// backup, buckets per group): per backup (`groups[i]` made at `times[i]`; ties keep this
/// order), the reasons it is kept, or `None`: removed.
pub fn decide<Tz: chrono::TimeZone>(
    groups: &[Group],
    times: &[DateTime<Utc>],
    policy: &Policy,
    tz: &Tz,
    now: DateTime<Utc>,
) -> Vec<Option<String>> {
    let mut members: BTreeMap<&Group, Vec<usize>> = BTreeMap::new();
    for (i, g) in groups.iter().enumerate() {
        members.entry(g).or_default().push(i);
    }
    let mut fates = vec![None; groups.len()];
    for indices in members.values() {
        let group_times: Vec<DateTime<Utc>> = indices.iter().map(|&i| times[i]).collect();
        let decision = retention::apply(&group_times, policy, tz, now);
        for k in &decision.keep {
            fates[indices[k.index]] = Some(k.reasons_text());
        }
    }
    fates
}

/// Where an archive is cut (step 7 of the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cut<'a> {
    /// The backup whose coordinates are the cut; `None`: the archive is kept whole.
    pub at: Option<&'a BackupPoint>,
    /// Kept backups of the archive's source, and those that may be, among those given.
    pub ours: usize,
    pub maybe: usize,
}

/// The cut of the archive of `source` among the kept backups `held` (those whose
/// coordinates the archive holds): the oldest coordinates of a backup of the source or
/// of one that may be, provided at least one is the source's; `servers` are the server
/// identities its segments record (`None`: unknown, the headers could not be read, so a
/// backup recorded under another source name may be the source's by its server).
pub(super) fn archive_cut<'a>(
    source: &str,
    held: &[&'a BackupPoint],
    servers: Option<&[&str]>,
) -> Cut<'a> {
    let mut cut = Cut {
        at: None,
        ours: 0,
        maybe: 0,
    };
    let mut oldest: Option<&BackupPoint> = None;
    for &b in held {
        let belongs = match servers {
            Some(servers) => b.belongs_to(Some(source), servers),
            None if b.source.as_deref() == Some(source) => Some(true),
            None => None,
        };
        match belongs {
            Some(true) => cut.ours += 1,
            None => cut.maybe += 1,
            Some(false) => continue,
        }
        if oldest.is_none_or(|o| {
            window::compare(&b.position, &o.position)
                .then_with(|| b.id.cmp(&o.id))
                .is_lt()
        }) {
            oldest = Some(b);
        }
    }
    if cut.ours > 0 {
        cut.at = oldest;
    }
    cut
}

/// The server identities the segments of `objects` record (each header read, a ranged
/// get, 16 at a time).
pub(super) async fn segment_servers(
    archive: &RepositorySegments,
    objects: &[ArchiveObject],
) -> Result<Vec<String>> {
    use futures::{StreamExt, TryStreamExt};
    let mut servers: Vec<String> = futures::stream::iter(
        objects
            .iter()
            .filter(|o| matches!(o.kind, ObjectKind::Segment { .. })),
    )
    .map(|o| archive.header(o))
    .buffered(16)
    .try_filter_map(|h| async move { Ok(h.segment.server) })
    .try_collect()
    .await?;
    servers.sort_unstable();
    servers.dedup();
    Ok(servers)
}

/// Which objects of one source's archive go (see `BinlogPlan`); `kept`: every kept
/// backup that has binlog coordinates.
async fn binlog_plan(archive: &RepositorySegments, kept: &[BackupPoint]) -> Result<BinlogPlan> {
    let source = archive.source();
    let mut plan = BinlogPlan {
        source: source.to_string(),
        ..Default::default()
    };
    let objects = archive.objects().await?;
    plan.archive_objects = objects.len();
    plan.archive_bytes = objects.iter().map(|o| o.size).sum();
    let segments: Vec<(Position, Position)> = objects
        .iter()
        .filter_map(|o| match &o.kind {
            ObjectKind::Segment { file, start, end } => Some((
                Position {
                    file: file.clone(),
                    pos: *start,
                },
                Position {
                    file: file.clone(),
                    pos: *end,
                },
            )),
            ObjectKind::Gap { .. } => None,
        })
        .collect();
    let (Some(first), Some(last)) = (segments.first(), segments.last()) else {
        plan.whole = Some("it holds no segment".into());
        return Ok(plan);
    };
    // The kept backups whose coordinates this archive holds.
    let held: Vec<&BackupPoint> = kept
        .iter()
        .filter(|b| {
            window::compare(&first.0, &b.position).is_le()
                && window::compare(&b.position, &last.1).is_le()
        })
        .collect();
    // A backup recorded under another source name may still be this source's by its
    // server identity: then the segments' headers say which servers the archive holds.
    let recorded_elsewhere = held
        .iter()
        .any(|b| b.source.as_deref() != Some(source) && (b.source.is_some() || b.server.is_some()));
    let servers: Option<Vec<String>> = if recorded_elsewhere {
        match segment_servers(archive, &objects).await {
            Ok(s) => Some(s),
            Err(e) => {
                plan.note = Some(format!(
                    "its segments' headers could not be read ({e}): every kept backup it holds the coordinates of counts as possibly this source's (run rbackup verify)"
                ));
                None
            }
        }
    } else {
        Some(Vec::new())
    };
    let server_refs: Option<Vec<&str>> = servers
        .as_ref()
        .map(|s| s.iter().map(String::as_str).collect());
    let cut = archive_cut(source, &held, server_refs.as_deref());
    plan.ours = cut.ours;
    plan.maybe = cut.maybe;
    let Some(at) = cut.at else {
        plan.whole = Some(if cut.maybe > 0 {
            format!(
                "no kept backup of this source has its coordinates in it ({} kept backups whose source is not recorded, or could not be checked, may be of it)",
                cut.maybe
            )
        } else {
            "no kept backup of this source has its coordinates in it".into()
        });
        return Ok(plan);
    };
    let cut = at.position.clone();
    plan.cut = Some(cut.to_string());
    plan.cut_backup = Some(at.id.clone());
    let newest = objects
        .iter()
        .rposition(|o| matches!(o.kind, ObjectKind::Segment { .. }));
    for (i, o) in objects.iter().enumerate() {
        if Some(i) == newest {
            break; // the archiver resumes after its newest segment: never that one
        }
        let before = match &o.kind {
            ObjectKind::Segment { file, end, .. } => Position {
                file: file.clone(),
                pos: *end,
            },
            ObjectKind::Gap { file, pos } => Position {
                file: file.clone(),
                pos: *pos,
            },
        };
        if window::compare(&before, &cut).is_le() {
            plan.objects.push(o.name.clone());
            plan.bytes += o.size;
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u8, offset: u32) -> pack::BlobEntry {
        pack::BlobEntry {
            id: BlobId([id; 32]),
            offset,
            length: 10,
            raw_length: 20,
        }
    }

    #[test]
    fn the_index_table_finds_every_pack_of_a_blob() {
        assert_eq!(std::mem::size_of::<Row>(), 48);
        // Pack 0 holds blobs 1 and 2, pack 1 holds 2 and 3; pack 0 listed twice.
        let mut rows = vec![
            Row {
                entry: entry(2, 10),
                pack: 0,
            },
            Row {
                entry: entry(1, 0),
                pack: 0,
            },
            Row {
                entry: entry(3, 0),
                pack: 1,
            },
            Row {
                entry: entry(2, 10),
                pack: 1,
            },
            Row {
                entry: entry(1, 0),
                pack: 0,
            },
        ];
        rows.sort_unstable_by(|a, b| {
            (a.pack, a.entry.offset, a.entry.id).cmp(&(b.pack, b.entry.offset, b.entry.id))
        });
        rows.dedup_by(|b, a| a.pack == b.pack && a.entry == b.entry);
        let mut by_id: Vec<u32> = (0..rows.len() as u32).collect();
        by_id.sort_unstable_by(|&a, &b| rows[a as usize].entry.id.cmp(&rows[b as usize].entry.id));
        let table = IndexTable {
            objects: vec![],
            packs: vec![[0; 32], [1; 32]],
            starts: vec![0, 2, 4],
            rows,
            by_id,
        };
        let ids = |p| -> Vec<u8> { table.rows_of(p).iter().map(|r| r.entry.id.0[0]).collect() };
        assert_eq!(ids(0), [1, 2]);
        assert_eq!(ids(1), [3, 2]);
        let packs = |b: u8| -> Vec<u32> {
            let mut v: Vec<u32> = table.packs_of(&BlobId([b; 32])).collect();
            v.sort();
            v
        };
        assert_eq!(packs(1), [0]);
        assert_eq!(packs(2), [0, 1]);
        assert_eq!(packs(3), [1]);
        assert!(packs(4).is_empty());
        assert!(packs(0).is_empty());
    }

    fn g(source: &str, scope: &str) -> Group {
        Group {
            source: source.into(),
            scope: scope.into(),
        }
    }

    #[test]
    fn the_group_of_a_backup_is_its_source_and_scope() {
        use serde_json::json;
        // Source: binlog_source, else source, else the host.
        let m = json!({"binlog_source": "srv-a", "source": "h-123", "scope": "all databases"});
        assert_eq!(group_of(&m, "host"), g("srv-a", "all databases"));
        let m = json!({"source": "h-123", "scope": "databases shop"});
        assert_eq!(group_of(&m, "host"), g("h-123", "databases shop"));
        assert_eq!(group_of(&json!({"scope": "x"}), "host"), g("host", "x"));
        // The databases of the night do not count: the scope does.
        let a = json!({"binlog_source": "s", "scope": "all databases", "databases": ["a"]});
        let b = json!({"binlog_source": "s", "scope": "all databases", "databases": ["a", "new"]});
        assert_eq!(group_of(&a, "h"), group_of(&b, "h"));
        // Older backups (no scope): what they record, marked, never a recorded scope.
        let whole = json!({"binlog_source": "s", "binlog_databases": null, "binlog_replayable": true, "binlog_not_replayable": null});
        assert_eq!(group_of(&whole, "h"), g("s", "(not recorded) whole server"));
        let shop = json!({"binlog_source": "s", "binlog_databases": {"only": ["shop"]}, "binlog_replayable": true});
        assert_eq!(
            group_of(&shop, "h"),
            g("s", "(not recorded) databases shop")
        );
        let part = json!({"binlog_source": "s", "binlog_databases": {"only": ["shop"]}, "binlog_replayable": false, "binlog_not_replayable": "it holds tables a of shop only (--tables)"});
        assert_eq!(
            group_of(&part, "h").scope,
            "(not recorded) databases shop, partial: it holds tables a of shop only (--tables)"
        );
        let except = json!({"binlog_databases": {"except": ["b", "a"]}});
        assert_eq!(
            group_of(&except, "h"),
            g("h", "(not recorded) all databases except a,b")
        );
        // Nothing recorded at all (the oldest backups): one group per source.
        assert_eq!(group_of(&json!(null), "h"), g("h", "(not recorded)"));
        assert_eq!(
            group_of(&json!({"binlog_source": "s"}), "h"),
            g("s", "(not recorded)")
        );
    }

    fn day(d: u32, h: u32) -> DateTime<Utc> {
        format!("2026-11-{d:02}T{h:02}:00:00Z").parse().unwrap()
    }

    fn kept_of(groups: &[Group], times: &[DateTime<Utc>], policy: &Policy) -> Vec<usize> {
        let now: DateTime<Utc> = "2026-12-31T00:00:00Z".parse().unwrap();
        decide(groups, times, policy, &Utc, now)
            .iter()
            .enumerate()
            .filter(|(_, f)| f.is_some())
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn two_sources_backed_up_the_same_days_each_keep_their_own() {
        // Servers A (at 01:00) and B (at 02:00), every night for 10 nights.
        let mut groups = Vec::new();
        let mut times = Vec::new();
        for d in 1..=10 {
            groups.push(g("A", "all databases"));
            times.push(day(d, 1));
            groups.push(g("B", "all databases"));
            times.push(day(d, 2));
        }
        let daily = Policy {
            daily: retention::Count::N(3),
            ..Default::default()
        };
        // Each keeps its 3 newest nights (before: only B's, the newer each day).
        let kept = kept_of(&groups, &times, &daily);
        assert_eq!(kept, [14, 15, 16, 17, 18, 19]);
        let fates = decide(&groups, &times, &daily, &Utc, day(30, 0));
        assert_eq!(fates[18].as_deref(), Some("daily backup"));
        assert_eq!(fates[13], None);
        // Everything in one group: the old behaviour, B's only.
        let one = vec![g("A", "x"); times.len()];
        assert_eq!(kept_of(&one, &times, &daily), [15, 17, 19]);
    }

    #[test]
    fn whole_server_and_partial_backups_of_one_source_are_kept_apart() {
        // A whole-server backup at 00:00 and hourly backups of shop 01:00..23:00, 5 days.
        let mut groups = Vec::new();
        let mut times = Vec::new();
        for d in 1..=5 {
            groups.push(g("A", "all databases --system=users"));
            times.push(day(d, 0));
            for h in 1..24 {
                groups.push(g("A", "databases shop"));
                times.push(day(d, h));
            }
        }
        let daily = Policy {
            daily: retention::Count::N(2),
            ..Default::default()
        };
        let kept = kept_of(&groups, &times, &daily);
        let whole: Vec<usize> = kept.iter().copied().filter(|&i| i % 24 == 0).collect();
        // The whole-server backups of the two newest days stay, and the shop's newest of
        // each of its two newest days.
        assert_eq!(whole, [72, 96]);
        assert_eq!(kept.len(), 4, "{kept:?}");
        assert!(kept.contains(&(96 + 23)) && kept.contains(&(72 + 23)));
    }

    #[test]
    fn keep_within_counts_from_the_newest_backup_of_each_group() {
        use crate::trust::duration::CalendarDuration;
        // A stopped being backed up on the 5th; B goes on to the 20th.
        let mut groups = Vec::new();
        let mut times = Vec::new();
        for d in 1..=5 {
            groups.push(g("A", "s"));
            times.push(day(d, 1));
        }
        for d in 1..=20 {
            groups.push(g("B", "s"));
            times.push(day(d, 1));
        }
        let within = Policy {
            within: Some("2d".parse::<CalendarDuration>().unwrap()),
            ..Default::default()
        };
        let kept = kept_of(&groups, &times, &within);
        // A: the 4th and 5th (within 2 days of its own newest, the 5th); B: 19th, 20th.
        assert_eq!(kept, [3, 4, 23, 24]);
        // An empty policy keeps everything, in every group.
        assert_eq!(kept_of(&groups, &times, &Policy::default()).len(), 25);
    }

    #[test]
    fn backups_that_record_no_scope_never_share_a_group_with_newer_ones() {
        use serde_json::json;
        // Nights 1-4 before the upgrade (no scope), 5-7 after, same server and selection.
        let old =
            json!({"binlog_source": "s", "binlog_databases": null, "binlog_replayable": true});
        let new = json!({"binlog_source": "s", "scope": "all databases --system=users", "binlog_databases": null});
        let mut groups = Vec::new();
        let mut times = Vec::new();
        for d in 1..=7 {
            groups.push(group_of(if d <= 4 { &old } else { &new }, "h"));
            times.push(day(d, 1));
        }
        let last = Policy {
            last: retention::Count::N(2),
            ..Default::default()
        };
        // Two of each: the old ones are kept as their own group.
        assert_eq!(kept_of(&groups, &times, &last), [2, 3, 5, 6]);
    }

    fn point(
        id: &str,
        file: &str,
        pos: u64,
        source: Option<&str>,
        server: Option<&str>,
    ) -> BackupPoint {
        BackupPoint {
            id: id.into(),
            time: 0,
            position: Position {
                file: file.into(),
                pos,
            },
            gtid: None,
            source: source.map(str::to_string),
            server: server.map(str::to_string),
            databases: None,
            not_replayable: None,
        }
    }

    fn cut_of<'a>(
        source: &str,
        held: &[&'a BackupPoint],
        servers: Option<&[&str]>,
    ) -> Option<&'a str> {
        archive_cut(source, held, servers).at.map(|b| b.id.as_str())
    }

    #[test]
    fn each_archive_is_cut_at_the_oldest_kept_backup_of_its_own_source() {
        // Two servers with the same binlog file names: a1 and b1 are older than a2, b2.
        let a1 = point("a1", "mysql-bin.000002", 500, Some("A"), Some("srv-a"));
        let a2 = point("a2", "mysql-bin.000003", 100, Some("A"), Some("srv-a"));
        let b1 = point("b1", "mysql-bin.000001", 900, Some("B"), Some("srv-b"));
        let b2 = point("b2", "mysql-bin.000004", 100, Some("B"), Some("srv-b"));
        let all = [&a1, &a2, &b1, &b2];
        // By name; with the servers each archive's segments record.
        assert_eq!(cut_of("A", &all, Some(&["srv-a"])), Some("a1"));
        assert_eq!(cut_of("B", &all, Some(&["srv-b"])), Some("b1"));
        // B's oldest kept backup removed: B's cut moves to b2 only, never to A's a1/a2.
        assert_eq!(cut_of("B", &[&a1, &a2, &b2], Some(&["srv-b"])), Some("b2"));
        let c = archive_cut("B", &[&a1, &a2, &b2], Some(&["srv-b"]));
        assert_eq!((c.ours, c.maybe), (1, 0));
        // An archive whose name is not the backups' source but whose segments record
        // their server: theirs by the server (an archiver run with --source).
        assert_eq!(cut_of("db-a", &all, Some(&["srv-a"])), Some("a1"));
        // No kept backup of the source: kept whole, whoever else is kept.
        let c = archive_cut("C", &all, Some(&["srv-c"]));
        assert_eq!((c.at, c.ours, c.maybe), (None, 0, 0));
        assert_eq!(cut_of("B", &[&a1, &a2], Some(&["srv-b"])), None);
        // Segments that record no server (an older archiver): by name only, and a
        // backup of another name may be the archive's: it holds the cut back.
        assert_eq!(cut_of("B", &[&a1, &b2], Some(&[])), Some("a1"));
        assert_eq!(cut_of("B", &[&a1], Some(&[])), None);
        // Headers unreadable (None): the same, conservatively.
        assert_eq!(cut_of("B", &[&a1, &b2], None), Some("a1"));
        assert_eq!(cut_of("B", &[&a2, &b2], None), Some("a2"));
        assert_eq!(cut_of("A", &[&b1], None), None);
    }

    #[test]
    fn a_backup_that_records_no_source_holds_every_cut_back_but_makes_none() {
        let old = point("old", "mysql-bin.000001", 4, None, None);
        let a = point("a", "mysql-bin.000003", 100, Some("A"), Some("srv-a"));
        let b = point("b", "mysql-bin.000002", 100, Some("B"), Some("srv-b"));
        assert_eq!(cut_of("A", &[&old, &a, &b], Some(&["srv-a"])), Some("old"));
        assert_eq!(cut_of("B", &[&old, &a, &b], Some(&["srv-b"])), Some("old"));
        // Alone, it cuts nothing.
        let c = archive_cut("A", &[&old], Some(&["srv-a"]));
        assert_eq!((c.at, c.ours, c.maybe), (None, 0, 1));
        // Equal coordinates: the lower ID, so that the plan is the same every run.
        let twin = point("a0", "mysql-bin.000003", 100, Some("A"), None);
        assert_eq!(cut_of("A", &[&twin, &a], Some(&["srv-a"])), Some("a"));
    }
}
