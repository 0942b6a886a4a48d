//! `prune`: backups the retention policy does not keep are removed, then every blob no
//! kept backup needs (REPOSITORY.md, "Index": new index objects for what is kept are
//! written *before* the old ones and the packs they alone list are deleted).
//!
//! Under the repository's exclusive lock (no backup, archiver, restore or verify runs
//! meanwhile), in this order, each step durable (`Store::sync`) before the next:
//!
//! 1. **plan**: every snapshot read (one that cannot be read stops prune: what it needs is
//!    unknown), the policy applied (`trust::retention`), the kept backups' catalogs read
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
//! 7. binlog segments and gaps (`binlog/<source>/`) that end at or before the oldest
//!    coordinates of a kept backup that the source's archive holds, oldest first; never
//!    the newest segment (where the archiver resumes), never anything of an archive that
//!    holds no kept backup's coordinates. Every kept backup keeps its whole window
//!    (from its coordinates on).
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
//! An empty policy (no `--keep-*`) removes nothing at all. A pack listed by an index but
//! missing from the storage has its index entries dropped (so the next backup stores those
//! blobs again, REPOSITORY.md "Index"), and is reported.
//!
//! `RBACKUP_TEST_PRUNE_PAUSE=<step>` (tests only) makes prune stop and wait to be killed
//! after step `repacked`, `indexed`, `snapshots`, `indexes-deleted` or `first-pack-deleted`.
//!
//! Not for: the policy's rules (`trust::retention`), reading segments (`segments`),
//! verifying packs prune does not touch (`verify`).

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
use super::segments::{ObjectKind, RepositorySegments};
use super::snapshot::{Snapshot, check_storage_id};
use super::verify::{check_blob, coordinates, pack_id_of};
use crate::binlog::Position;
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
}

/// The binlog segments and gaps of one source that go: every object before the oldest
/// coordinates of a kept backup that the archive holds (never its newest segment).
#[derive(Debug, Clone, Default)]
pub struct BinlogPlan {
    pub source: String,
    /// The oldest kept backup's coordinates in this archive; `None`: the archive holds no
    /// kept backup's coordinates and is left alone.
    pub cut: Option<String>,
    pub objects: Vec<String>,
    pub bytes: u64,
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
    let decision = retention::apply(&times, &options.policy, &chrono::Local, options.now);
    let mut fates: Vec<Option<String>> = vec![None; snapshots.len()];
    for k in &decision.keep {
        fates[k.index] = Some(k.reasons_text());
    }
    let mut order: Vec<usize> = (0..snapshots.len()).collect();
    order.sort_by(|a, b| times[*b].cmp(&times[*a]).then(a.cmp(b)));
    plan.snapshots = order
        .iter()
        .map(|&i| SnapshotFate {
            id: snapshots[i].0.clone(),
            time: snapshots[i].1.time.clone(),
            host: snapshots[i].1.host.clone(),
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

    // What the kept backups need.
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
    let mut used: HashSet<BlobId> = HashSet::new();
    for (i, (id, snap)) in snapshots.iter().enumerate() {
        if fates[i].is_none() {
            continue;
        }
        used.extend(snap.catalog.blobs.iter().copied());
        let mut catalog = reader.catalog(snap);
        loop {
            match catalog.next().await {
                Ok(Some(entry)) => used.extend(entry.blobs),
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
    drop(reader);

    // The index, object by object.
    let mut indexes: Vec<(String, Vec<PackBlobs>)> = Vec::new();
    for listed in store.list("index").await? {
        let data = store.get(&listed.name).await?;
        check_storage_id(&listed.name, &data)?;
        indexes.push((
            listed.name.clone(),
            index::decode(&repo.keys, &listed.name, &data)?,
        ));
    }
    let mut entries: HashMap<String, Vec<pack::BlobEntry>> = HashMap::new();
    for (_, packs) in &indexes {
        for p in packs {
            let e = entries.entry(p.pack.clone()).or_default();
            for b in &p.blobs {
                if !e.iter().any(|x| x.id == b.id) {
                    e.push(*b);
                }
            }
        }
    }
    let mut present: HashMap<String, u64> = HashMap::new();
    for listed in store.list("data").await? {
        if let Some(id) = pack_id_of(&listed.name) {
            present.insert(id.to_string(), listed.size);
        }
    }

    // Each pack's fate.
    let mut fate: HashMap<String, PackFate> = HashMap::new();
    for (id, blobs) in &entries {
        let f = if !present.contains_key(id) {
            PackFate::Missing
        } else {
            let total: u64 = blobs.iter().map(|b| b.length as u64).sum();
            let in_use: u64 = blobs
                .iter()
                .filter(|b| used.contains(&b.id))
                .map(|b| b.length as u64)
                .sum();
            if in_use == 0 {
                PackFate::Unused
            } else if (in_use as f64) < options.repack_below * total as f64 {
                PackFate::Repack
            } else {
                PackFate::Keep
            }
        };
        fate.insert(id.clone(), f);
    }
    for id in present.keys() {
        fate.entry(id.clone()).or_insert(PackFate::Unindexed);
    }
    for (id, f) in &fate {
        let bytes = present.get(id).copied().unwrap_or(0);
        let slot = plan.packs.entry(fate_word(*f)).or_default();
        slot.0 += 1;
        slot.1 += bytes;
    }
    // The blobs to copy: used, in a pack to repack, and in no kept pack.
    let kept_blobs: HashSet<BlobId> = entries
        .iter()
        .filter(|(id, _)| fate[*id] == PackFate::Keep)
        .flat_map(|(_, b)| b.iter().map(|e| e.id))
        .collect();
    let mut copy: BTreeMap<String, Vec<pack::BlobEntry>> = BTreeMap::new();
    let mut copied: HashSet<BlobId> = HashSet::new();
    let mut repack_ids: Vec<&String> = entries
        .keys()
        .filter(|id| fate[*id] == PackFate::Repack)
        .collect();
    repack_ids.sort();
    for id in repack_ids {
        for b in &entries[id] {
            if used.contains(&b.id) && !kept_blobs.contains(&b.id) && copied.insert(b.id) {
                plan.copy_blobs += 1;
                plan.copy_bytes += b.length as u64;
                copy.entry(id.clone()).or_default().push(*b);
            }
        }
    }
    let available: HashSet<&BlobId> = kept_blobs.iter().chain(copied.iter()).collect();
    plan.lost_blobs = used.iter().filter(|b| !available.contains(b)).count();
    let touched: Vec<usize> = indexes
        .iter()
        .enumerate()
        .filter(|(_, (_, packs))| packs.iter().any(|p| fate[&p.pack] != PackFate::Keep))
        .map(|(i, _)| i)
        .collect();
    plan.rewrite_indexes = touched.len();

    // Binlog archives: what no kept backup's window needs.
    let kept_coordinates: Vec<Position> = snapshots
        .iter()
        .enumerate()
        .filter(|(i, _)| fates[*i].is_some())
        .filter_map(|(_, (_, s))| coordinates(&s.meta))
        .collect();
    for source in RepositorySegments::sources(repo).await? {
        let archive = RepositorySegments::open_reader(repo.clone(), &source)?;
        plan.binlog
            .push(binlog_plan(&archive, &kept_coordinates).await?);
    }
    let binlog_objects: usize = plan.binlog.iter().map(|b| b.objects.len()).sum();

    let removed: Vec<&SnapshotFate> = plan.removed().collect();
    let to_delete: Vec<String> = {
        let mut v: Vec<String> = fate
            .iter()
            .filter(|(_, f)| matches!(f, PackFate::Unused | PackFate::Unindexed | PackFate::Repack))
            .map(|(id, _)| id.clone())
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
    for (id, blobs) in &copy {
        let name = pack::object_name(id);
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

    // 3. New index objects for what the touched ones keep, and the new packs.
    let untouched_packs: HashSet<&String> = indexes
        .iter()
        .enumerate()
        .filter(|(i, _)| !touched.contains(i))
        .flat_map(|(_, (_, packs))| packs.iter().map(|p| &p.pack))
        .collect();
    let mut listed: Vec<PackBlobs> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for &i in &touched {
        for p in &indexes[i].1 {
            if fate[&p.pack] == PackFate::Keep
                && !untouched_packs.contains(&p.pack)
                && seen.insert(p.pack.clone())
            {
                listed.push(PackBlobs {
                    pack: p.pack.clone(),
                    blobs: entries[&p.pack].clone(),
                });
            }
        }
    }
    listed.extend(new_packs);
    // What the plan saw and what prune writes: anything else appearing later is a backup
    // that went ahead beside a paused prune (see `still_alone`).
    let mut known: HashSet<String> = snapshots
        .iter()
        .map(|(id, _)| format!("snapshots/{id}"))
        .chain(indexes.iter().map(|(name, _)| name.clone()))
        .collect();
    for chunk in listed.chunks(options.packs_per_index.max(1)) {
        let data = index::encode(&repo.keys, chunk);
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
        store.delete(&indexes[i].0).await?;
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

/// Which objects of one source's archive go (see `BinlogPlan`).
async fn binlog_plan(archive: &RepositorySegments, kept: &[Position]) -> Result<BinlogPlan> {
    let mut plan = BinlogPlan {
        source: archive.source().to_string(),
        ..Default::default()
    };
    let objects = archive.objects().await?;
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
        return Ok(plan);
    };
    // The oldest kept coordinates this archive holds.
    let cut = kept
        .iter()
        .filter(|c| window::compare(&first.0, c).is_le() && window::compare(c, &last.1).is_le())
        .min_by(|a, b| window::compare(a, b))
        .cloned();
    let Some(cut) = cut else {
        return Ok(plan);
    };
    plan.cut = Some(cut.to_string());
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
