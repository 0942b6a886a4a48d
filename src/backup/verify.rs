//! `verify`: the repository checked object by object (REPOSITORY.md, "Integrity checks, by
//! who can do them"), and every damaged or missing object named with the backups and
//! files (tables) it breaks.
//!
//! What is checked depends on what the caller holds:
//! - **anyone with read access** (no key): every index, pack, snapshot, key file, drill
//!   record and binlog object hashes to its name (its storage ID); every pack that an
//!   index's plaintext presence part lists exists.
//! - **a reader key** besides: every snapshot decrypts and carries its MAC; its catalog
//!   and every file entry resolve to indexed blobs in packs that are present and intact;
//!   with `read_data`, every blob of every pack (or of a random share of the packs) is
//!   decrypted, decompressed and keyed-hashed against its ID, and the pack's own table
//!   agrees with the index. A pack no index lists is read for its table, so that a blob a
//!   backup needs and no index lists is traced to the pack holding it (its index object is
//!   the damage: missing or damaged).
//!
//! Objects are listed snapshots first, then indexes, then packs: a backup running
//! meanwhile writes packs, then index, then snapshot, so every snapshot seen has its index
//! and packs seen too (no false alarms from a concurrent backup).
//!
//! Work: downloads run on tokio (a few at a time); the CPU work (BLAKE3 of packs, age
//! decryption, zstd, keyed BLAKE3 of blobs) runs on rayon's pool: per pack, its BLAKE3
//! beside its decryption, then its blobs split across the pool. Catalog blobs met in the
//! packs read are kept (up to `CATALOG_CACHE`) for the backups' check, which otherwise
//! fetches and decrypts their packs again.
//! Memory: at most `in_flight` packs are downloaded or being checked at once (each held
//! twice while decrypted; up to `in_flight` plaintext buffers are reused), plus the index
//! (about 80 bytes per blob), the kept catalog blobs and, per damaged object, the names
//! of the files it breaks.
//!
//! Not for: repairing anything, restore drills (`rbackup verify --drill`), binlog segment
//! contents (checked by the archive's reader, `binlog::segment::SegmentSource`, see
//! `check_segments`).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use rayon::prelude::*;
use serde::Serialize;

use super::config::Repository;
use super::error::{BackupError, Result};
use super::index;
use super::keys::{BlobId, Keys, NamingKey, storage_id};
use super::lock::{self, LockKind};
use super::pack::{self, BlobEntry};
use super::segments::{ObjectKind, RepositorySegments};
use super::snapshot::{FileEntry, Snapshot, check_storage_id};
use super::store::Store;
use crate::binlog::Position;
use crate::binlog::segment::Segment;
use crate::binlog::window;

/// How much to check.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Decrypt, decompress and re-hash every blob of this percentage of the packs (chosen
    /// at random); `None`: only the storage hashes and references.
    pub read_data: Option<f64>,
    /// Packs downloaded or being checked at once (bounds memory).
    pub in_flight: usize,
    /// Seed of the random choice of packs for a partial `read_data`.
    pub seed: u64,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            read_data: None,
            in_flight: rayon::current_num_threads() * 2 + 2,
            seed: random_seed(),
        }
    }
}

/// Bytes of catalog blobs kept from the pack checks for the backups' check.
const CATALOG_CACHE: usize = 64 << 20;

/// A seed from the clock and the process (no random-number crate needed for a sample).
pub fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let h = blake3::hash(format!("{nanos}-{}", std::process::id()).as_bytes());
    u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// What is wrong with an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Listed (by an index, a snapshot) or needed, and not in the storage.
    Missing,
    /// Its bytes do not hash to its name, do not decrypt, or a blob in it is wrong.
    Damaged,
    /// A pack holding blobs that backups need, listed by no index.
    Unindexed,
    /// Not damage: an object nothing needs (a pack left by an interrupted backup or
    /// prune, which the next prune removes), or a name rbackup does not write.
    Notice,
}

impl Kind {
    pub fn is_damage(self) -> bool {
        self != Kind::Notice
    }

    pub fn word(self) -> &'static str {
        match self {
            Kind::Missing => "MISSING",
            Kind::Damaged => "DAMAGED",
            Kind::Unindexed => "UNINDEXED",
            Kind::Notice => "notice",
        }
    }
}

/// One backup an object breaks: the whole of it, or some of its files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Broken {
    pub time: String,
    /// The backup cannot be read at all (its snapshot or its catalog is lost).
    pub whole: bool,
    /// The logical files (tables' chunk files, schema files, the manifest) that cannot be
    /// restored.
    pub files: BTreeSet<String>,
}

/// A damaged, missing or noteworthy object.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The object's name in the repository (`data/ab/ab…`, `index/…`, `snapshots/…`), or
    /// `blob <id>` for a blob found nowhere.
    pub object: String,
    pub kind: Kind,
    pub detail: String,
    /// Backups (by snapshot ID) it breaks.
    pub breaks: BTreeMap<String, Broken>,
}

/// What `verify` found and what it checked.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub url: String,
    /// Backups and blobs were checked (a reader key was given).
    pub reader: bool,
    pub snapshots: usize,
    pub indexes: usize,
    pub packs: usize,
    pub pack_bytes: u64,
    /// Packs whose blobs were decrypted, decompressed and re-hashed, and those blobs.
    pub packs_read: usize,
    pub blobs_read: u64,
    pub raw_bytes_read: u64,
    pub other_objects: usize,
    /// Binlog segments read and checked (with a reader key).
    pub binlog_segments: usize,
    pub findings: Vec<Finding>,
    /// What was not checked, and why.
    pub not_checked: Vec<String>,
}

impl Report {
    /// Damaged, missing or unindexed objects (notices excluded).
    pub fn damage(&self) -> usize {
        self.findings.iter().filter(|f| f.kind.is_damage()).count()
    }

    /// Backups broken by some damage.
    pub fn broken_backups(&self) -> BTreeSet<String> {
        self.findings
            .iter()
            .filter(|f| f.kind.is_damage())
            .flat_map(|f| f.breaks.keys().cloned())
            .collect()
    }
}

/// Findings by object name, merged.
#[derive(Default)]
struct Findings(BTreeMap<String, Finding>);

impl Findings {
    fn add(&mut self, object: &str, kind: Kind, detail: impl Into<String>) {
        let detail = detail.into();
        let f = self.0.entry(object.to_string()).or_insert_with(|| Finding {
            object: object.to_string(),
            kind,
            detail: String::new(),
            breaks: BTreeMap::new(),
        });
        f.kind = f.kind.min(kind);
        if !f.detail.contains(&detail) {
            if !f.detail.is_empty() {
                f.detail.push_str("; ");
            }
            f.detail.push_str(&detail);
        }
    }

    fn breaks(&mut self, object: &str, snapshot: &str, time: &str, file: Option<&str>) {
        let f = self
            .0
            .get_mut(object)
            .expect("a finding is added before what it breaks");
        let b = f.breaks.entry(snapshot.to_string()).or_default();
        b.time = time.to_string();
        match file {
            Some(name) => {
                b.files.insert(name.to_string());
            }
            None => b.whole = true,
        }
    }
}

/// The indexed packs and blobs.
#[derive(Default)]
struct Index {
    packs: Vec<String>,
    numbers: HashMap<String, u32>,
    /// Per pack, the blobs the indexes list in it (locations zero without a reader).
    entries: Vec<Vec<BlobEntry>>,
    /// Each blob's first pack, and any further ones.
    first: HashMap<BlobId, u32>,
    more: HashMap<BlobId, Vec<u32>>,
}

impl Index {
    fn add(&mut self, pack_id: &str, blobs: Vec<BlobEntry>) {
        let n = match self.numbers.get(pack_id) {
            Some(&n) => n,
            None => {
                let n = self.packs.len() as u32;
                self.packs.push(pack_id.to_string());
                self.numbers.insert(pack_id.to_string(), n);
                self.entries.push(Vec::new());
                n
            }
        };
        for b in blobs {
            // Already listed in this pack (by another index): `first` and `more` say so
            // without a scan of the pack's entries.
            match self.first.get(&b.id) {
                None => {
                    self.first.insert(b.id, n);
                }
                Some(&f) if f == n => continue,
                Some(_) => {
                    let more = self.more.entry(b.id).or_default();
                    if more.contains(&n) {
                        continue;
                    }
                    more.push(n);
                }
            }
            self.entries[n as usize].push(b);
        }
    }

    fn locations(&self, id: &BlobId) -> Vec<u32> {
        let mut out: Vec<u32> = self.first.get(id).copied().into_iter().collect();
        if let Some(more) = self.more.get(id) {
            out.extend(more);
        }
        out
    }
}

/// Checks the repository. `repo` is the repository opened with the caller's keys (`None`
/// when none were given: then only what needs no key is checked). Storage failures are
/// errors; damage is in the report.
pub async fn verify(
    store: &Store,
    repo: Option<&Repository>,
    options: &VerifyOptions,
) -> Result<Report> {
    let reader_keys: Option<Arc<Keys>> = repo
        .filter(|r| r.keys.can_read())
        .map(|r| Arc::new(r.keys.clone()));
    let max_raw = repo.map_or(128 * 1024, |r| r.config.chunker.max as usize);
    let mut report = Report {
        url: store.url().to_string(),
        reader: reader_keys.is_some(),
        ..Default::default()
    };
    let mut findings = Findings::default();

    // A shared lock: a prune must not delete objects while they are checked. Taking it
    // needs write access; with read access only, verify goes on and says so.
    let guard = match lock::acquire(store, LockKind::Shared, "verify").await {
        Ok(g) => Some(g),
        Err(e @ BackupError::Locked(_)) => return Err(e),
        Err(e) => {
            report.not_checked.push(format!(
                "no shared lock could be taken ({e}): a prune running meanwhile would show as missing objects"
            ));
            None
        }
    };

    // Snapshots, then indexes, then packs (see the module doc).
    let snapshot_list = store.list("snapshots").await?;
    let index_list = store.list("index").await?;
    let data_list = store.list("data").await?;

    // Indexes.
    let mut idx = Index::default();
    let mut fetched = fetch_all(store, &index_list);
    while let Some((name, got)) = fetched.next().await {
        report.indexes += 1;
        let data = match got {
            Ok(d) => d,
            Err(e) if e.is_damage() => {
                findings.add(&name, Kind::Missing, "listed, then gone");
                continue;
            }
            Err(e) => return Err(e),
        };
        if let Err(e) = check_storage_id(&name, &data) {
            findings.add(&name, Kind::Damaged, detail_of(&e));
            continue;
        }
        let decoded = match &reader_keys {
            Some(keys) => index::decode(keys, &name, &data),
            None => index::decode_presence(&name, &data).map(|(presence, _)| {
                presence
                    .into_iter()
                    .map(|(pack, ids)| index::PackBlobs {
                        pack,
                        blobs: ids
                            .into_iter()
                            .map(|id| BlobEntry {
                                id,
                                offset: 0,
                                length: 0,
                                raw_length: 0,
                            })
                            .collect(),
                    })
                    .collect()
            }),
        };
        match decoded {
            Ok(packs) => {
                for p in packs {
                    idx.add(&p.pack, p.blobs);
                }
            }
            Err(e) => findings.add(&name, Kind::Damaged, detail_of(&e)),
        }
    }
    drop(fetched);

    // Snapshots.
    let mut snapshots: Vec<(String, Snapshot)> = Vec::new();
    let mut fetched = futures::stream::iter(snapshot_list.iter().map(|l| {
        let store = store.clone();
        let name = l.name.clone();
        async move {
            let r = store.get(&name).await;
            (name, r)
        }
    }))
    .buffered(8);
    while let Some((name, got)) = fetched.next().await {
        report.snapshots += 1;
        let id = name.trim_start_matches("snapshots/").to_string();
        let data = match got {
            Ok(d) => d,
            Err(e) if e.is_damage() => {
                findings.add(&name, Kind::Missing, "listed, then gone");
                continue;
            }
            Err(e) => return Err(e),
        };
        let decoded = match &reader_keys {
            Some(keys) => Snapshot::decode(keys, &name, &data).map(Some),
            None => check_storage_id(&name, &data).map(|_| None),
        };
        match decoded {
            Ok(Some(s)) => snapshots.push((id, s)),
            Ok(None) => {}
            Err(e) => {
                findings.add(&name, Kind::Damaged, detail_of(&e));
                findings.breaks(&name, &id, "(unknown: the snapshot is unreadable)", None);
            }
        }
    }
    drop(fetched);
    snapshots.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));

    // Packs: which exist, which are missing.
    let mut present: BTreeMap<String, u64> = BTreeMap::new();
    for l in &data_list {
        match pack_id_of(&l.name) {
            Some(id) => {
                present.insert(id.to_string(), l.size);
            }
            None => findings.add(
                &l.name,
                Kind::Notice,
                "not a pack name (data/<2 hex>/<64 hex>): not written by rbackup",
            ),
        }
    }
    // Packs that are lost whole (missing or damaged), and blobs damaged in a pack.
    let mut bad_packs: HashMap<u32, String> = HashMap::new();
    let mut bad_blobs: HashMap<(BlobId, u32), ()> = HashMap::new();
    for (n, id) in idx.packs.iter().enumerate() {
        if !present.contains_key(id) {
            let name = pack::object_name(id);
            findings.add(
                &name,
                Kind::Missing,
                "listed by an index, not in the storage",
            );
            bad_packs.insert(n as u32, name);
        }
    }

    // Packs: hashed, and read (decrypted, every blob checked) when chosen.
    let percent = options.read_data.map(|p| p.clamp(0.0, 100.0));
    let read_keys = if percent.is_some() {
        reader_keys.clone()
    } else {
        None
    };
    if percent.is_some() && reader_keys.is_none() {
        report.not_checked.push(
            "--read-data needs a reader key: blobs were not decrypted (only the packs' hashes were checked)"
                .into(),
        );
    }
    let jobs: Vec<PackJob> = present
        .keys()
        .map(|id| {
            let number = idx.numbers.get(id).copied();
            let entries = number.map(|n| idx.entries[n as usize].clone());
            let read = read_keys.is_some()
                && number.is_some()
                && percent.is_some_and(|p| chosen(options.seed, id, p));
            PackJob {
                id: id.clone(),
                number,
                entries: entries.unwrap_or_default(),
                read,
                // A pack no index lists: its table says what it holds.
                want_table: number.is_none() && reader_keys.is_some(),
            }
        })
        .collect();
    let in_flight = options.in_flight.max(1);
    // The catalogs' blobs, kept when a pack read holds them (up to CATALOG_CACHE bytes),
    // so that the backups' check below need not fetch and decrypt those packs again.
    let catalog: Arc<HashSet<BlobId>> = Arc::new(
        snapshots
            .iter()
            .flat_map(|(_, s)| s.catalog.blobs.iter().copied())
            .collect(),
    );
    let mut catalog_cache: HashMap<BlobId, Vec<u8>> = HashMap::new();
    let mut catalog_cached = 0usize;
    let buffers = Arc::new(BufferPool {
        free: Default::default(),
        keep: in_flight,
    });
    let mut orphans: HashMap<BlobId, (String, BlobEntry)> = HashMap::new();
    let mut unneeded_orphans: Vec<String> = Vec::new();
    let mut results = futures::stream::iter(jobs.into_iter().map(|job| {
        let store = store.clone();
        let keys = reader_keys.clone();
        let catalog = catalog.clone();
        let buffers = buffers.clone();
        async move {
            let name = pack::object_name(&job.id);
            let stored = match store.get(&name).await {
                Ok(b) => b,
                Err(e) => return (job, Err(e)),
            };
            let (tx, rx) = tokio::sync::oneshot::channel();
            rayon::spawn(move || {
                let checked =
                    check_pack(&job, &stored, keys.as_deref(), max_raw, &catalog, &buffers);
                let _ = tx.send((job, Ok(checked)));
            });
            rx.await.expect("a pack check always answers")
        }
    }))
    .buffer_unordered(in_flight);
    while let Some((job, outcome)) = results.next().await {
        let name = pack::object_name(&job.id);
        let checked = match outcome {
            Ok(c) => c,
            Err(e) if e.is_damage() => PackCheck {
                whole: Some((Kind::Missing, "listed, then gone".into())),
                ..Default::default()
            },
            Err(e) => return Err(e),
        };
        report.packs += 1;
        report.pack_bytes += checked.stored_len;
        if job.read && checked.whole.is_none() {
            report.packs_read += 1;
        }
        report.blobs_read += checked.blobs_read;
        report.raw_bytes_read += checked.raw_bytes;
        if let Some((kind, detail)) = &checked.whole {
            findings.add(&name, *kind, detail.clone());
            if let Some(n) = job.number {
                bad_packs.insert(n, name.clone());
            }
            continue;
        }
        if let Some(n) = job.number {
            for (blob, detail) in &checked.bad_blobs {
                findings.add(&name, Kind::Damaged, format!("blob {blob}: {detail}"));
                bad_blobs.insert((*blob, n), ());
            }
        }
        for (blob, raw) in checked.catalog {
            if catalog_cached + raw.len() <= CATALOG_CACHE && !catalog_cache.contains_key(&blob) {
                catalog_cached += raw.len();
                catalog_cache.insert(blob, raw);
            }
        }
        if job.number.is_none() {
            for entry in checked.table.unwrap_or_default() {
                orphans.insert(entry.id, (job.id.clone(), entry));
            }
            unneeded_orphans.push(name);
        }
    }
    drop(results);

    // Other objects named by their storage ID: key files, drill records, binlog objects.
    let mut others = Vec::new();
    for prefix in ["keys", "drills", "binlog"] {
        // With a reader key the binlog archive is read whole below (which checks the
        // storage IDs too).
        if prefix == "binlog" && reader_keys.is_some() {
            continue;
        }
        others.extend(store.list(prefix).await?);
    }
    let mut fetched = fetch_all(store, &others);
    while let Some((name, got)) = fetched.next().await {
        report.other_objects += 1;
        let data = match got {
            Ok(d) => d,
            Err(e) if e.is_damage() => continue, // deleted meanwhile (a prune of segments)
            Err(e) => return Err(e),
        };
        let Some(expected) = storage_id_in_name(&name) else {
            findings.add(
                &name,
                Kind::Notice,
                "no storage ID in its name: not written by rbackup",
            );
            continue;
        };
        let actual = storage_id(&data);
        if actual != expected {
            findings.add(
                &name,
                Kind::Damaged,
                format!("its content hashes to {actual}"),
            );
        }
    }
    drop(fetched);

    // Backups: every catalog and file resolves to blobs in intact packs.
    if let Some(keys) = &reader_keys {
        let blobs = BlobState {
            idx: &idx,
            bad_packs: &bad_packs,
            bad_blobs: &bad_blobs,
            orphans: &orphans,
        };
        let mut fetcher = Fetcher {
            store,
            keys,
            idx: &idx,
            orphans: &orphans,
            cache: &catalog_cache,
            max_raw,
            pack: None,
        };
        let mut needed_orphans = BTreeSet::new();
        for (id, snap) in &snapshots {
            check_backup(
                id,
                snap,
                &blobs,
                &mut fetcher,
                &mut findings,
                &mut needed_orphans,
            )
            .await?;
        }
        for name in unneeded_orphans {
            if !needed_orphans.contains(&name) {
                findings.add(
                    &name,
                    Kind::Notice,
                    "listed by no index and needed by no backup: left by an interrupted backup or prune (prune removes it)",
                );
            }
        }
    } else {
        for name in unneeded_orphans {
            findings.add(
                &name,
                Kind::Notice,
                "listed by no index: left by an interrupted backup or prune, or its index is lost (a reader key tells)",
            );
        }
        report.not_checked.push(
            "without a reader key (--identity-file or --passphrase-file) the backups' contents were not checked: \
             which files each backup needs, and the blobs inside the packs"
                .into(),
        );
    }

    // Binlog archives: every segment read whole (storage ID, MAC, BLAKE3 and CRC32 of its
    // events, each event's CRC32 and position) and continuity.
    if let Some(repo) = repo.filter(|_| reader_keys.is_some()) {
        for source in RepositorySegments::sources(repo).await? {
            let archive = RepositorySegments::open_reader(repo.clone(), &source)?;
            check_archive(&archive, &snapshots, &mut findings, &mut report).await?;
        }
    }

    report.findings = findings.0.into_values().collect();
    report
        .findings
        .sort_by(|a, b| a.kind.cmp(&b.kind).then(a.object.cmp(&b.object)));
    if let Some(g) = guard {
        let _ = g.release().await;
    }
    Ok(report)
}

/// Where a blob stands: usable, or lost because of an object.
struct BlobState<'a> {
    idx: &'a Index,
    bad_packs: &'a HashMap<u32, String>,
    bad_blobs: &'a HashMap<(BlobId, u32), ()>,
    orphans: &'a HashMap<BlobId, (String, BlobEntry)>,
}

enum Lost {
    /// In a damaged or missing pack (named).
    In(String),
    /// Listed by no index but in this pack (its index is lost).
    Unindexed(String),
    /// Listed by no index, in no pack.
    Nowhere,
}

impl BlobState<'_> {
    fn check(&self, id: &BlobId) -> Result<(), Lost> {
        let locations = self.idx.locations(id);
        if locations.is_empty() {
            return Err(match self.orphans.get(id) {
                Some((pack, _)) => Lost::Unindexed(pack::object_name(pack)),
                None => Lost::Nowhere,
            });
        }
        let mut cause = None;
        for n in locations {
            if let Some(name) = self.bad_packs.get(&n) {
                cause.get_or_insert_with(|| name.clone());
            } else if self.bad_blobs.contains_key(&(*id, n)) {
                cause.get_or_insert_with(|| pack::object_name(&self.idx.packs[n as usize]));
            } else {
                return Ok(());
            }
        }
        Err(Lost::In(cause.expect("a location was bad")))
    }
}

/// Records what a lost blob breaks; returns the object to blame.
fn blame(
    findings: &mut Findings,
    lost: Lost,
    blob: &BlobId,
    needed_orphans: &mut BTreeSet<String>,
) -> String {
    match lost {
        Lost::In(object) => object,
        Lost::Unindexed(pack) => {
            findings.add(
                &pack,
                Kind::Unindexed,
                "holds blobs that backups need, but no index lists it: the index object that listed it is missing or damaged",
            );
            needed_orphans.insert(pack.clone());
            pack
        }
        Lost::Nowhere => {
            let object = format!("blob {blob}");
            findings.add(
                &object,
                Kind::Missing,
                "listed by no index and in no pack (its pack and index are missing)",
            );
            object
        }
    }
}

async fn check_backup(
    id: &str,
    snap: &Snapshot,
    blobs: &BlobState<'_>,
    fetcher: &mut Fetcher<'_>,
    findings: &mut Findings,
    needed_orphans: &mut BTreeSet<String>,
) -> Result<()> {
    // The catalog first: without it nothing of the backup can be found.
    // A catalog blob in a pack no index lists is still read (from that pack), so that
    // the files are named too; restore cannot read it until the index is rebuilt.
    for blob in &snap.catalog.blobs {
        if let Err(lost) = blobs.check(blob) {
            let readable = matches!(lost, Lost::Unindexed(_));
            let object = blame(findings, lost, blob, needed_orphans);
            findings.breaks(&object, id, &snap.time, None);
            if !readable {
                return Ok(());
            }
        }
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut line_no = 0usize;
    let mut check_line = |line: &[u8], findings: &mut Findings, needed: &mut BTreeSet<String>| {
        line_no += 1;
        let entry: FileEntry = match serde_json::from_slice(line) {
            Ok(e) => e,
            Err(e) => {
                let object = format!("snapshots/{id}");
                findings.add(
                    &object,
                    Kind::Damaged,
                    format!("its catalog's entry {line_no} is not a file entry: {e}"),
                );
                findings.breaks(&object, id, &snap.time, None);
                return;
            }
        };
        let mut blamed = BTreeSet::new();
        for blob in &entry.blobs {
            if let Err(lost) = blobs.check(blob) {
                blamed.insert(blame(findings, lost, blob, needed));
            }
        }
        for object in blamed {
            findings.breaks(&object, id, &snap.time, Some(&entry.name));
        }
    };
    for blob in &snap.catalog.blobs {
        match fetcher.blob(blob).await {
            Ok(data) => buf.extend_from_slice(&data),
            Err(e) if e.is_damage() => {
                let object = object_of(&e);
                findings.add(&object, Kind::Damaged, detail_of(&e));
                findings.breaks(&object, id, &snap.time, None);
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        let mut start = 0;
        while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
            check_line(&buf[start..start + nl], findings, needed_orphans);
            start += nl + 1;
        }
        buf.drain(..start);
    }
    if !buf.is_empty() {
        let object = format!("snapshots/{id}");
        findings.add(
            &object,
            Kind::Damaged,
            "its catalog ends in a truncated entry",
        );
        findings.breaks(&object, id, &snap.time, None);
    }
    Ok(())
}

/// Reads blobs for the catalogs, one pack cached.
struct Fetcher<'a> {
    store: &'a Store,
    keys: &'a Keys,
    idx: &'a Index,
    /// Blobs of packs no index lists (to read a catalog whose index is lost).
    orphans: &'a HashMap<BlobId, (String, BlobEntry)>,
    /// Catalog blobs already read and checked with their packs.
    cache: &'a HashMap<BlobId, Vec<u8>>,
    max_raw: usize,
    pack: Option<(String, Vec<u8>)>,
}

impl Fetcher<'_> {
    async fn blob(&mut self, id: &BlobId) -> Result<Vec<u8>> {
        if let Some(raw) = self.cache.get(id) {
            return Ok(raw.clone());
        }
        let (pack_id, entry) = match self.idx.first.get(id) {
            Some(&n) => (
                self.idx.packs[n as usize].clone(),
                self.idx.entries[n as usize]
                    .iter()
                    .find(|e| e.id == *id)
                    .copied()
                    .expect("an indexed blob has an entry in its pack"),
            ),
            None => self
                .orphans
                .get(id)
                .cloned()
                .ok_or_else(|| BackupError::Missing {
                    object: format!("blob {id} (listed by no index)"),
                    file: None,
                })?,
        };
        let name = pack::object_name(&pack_id);
        if self
            .pack
            .as_ref()
            .map(|(p, _)| p != &pack_id)
            .unwrap_or(true)
        {
            self.pack = None;
            let stored = self.store.get(&name).await?;
            check_storage_id(&name, &stored)?;
            self.pack = Some((pack_id.clone(), self.keys.decrypt(&name, &stored)?));
        }
        let plain = &self.pack.as_ref().expect("loaded").1;
        check_blob(&self.keys.naming, self.max_raw, plain, &entry)
            .map_err(|detail| BackupError::damaged(&name, format!("blob {id}: {detail}")))
    }
}

struct PackJob {
    id: String,
    /// Its number in the index; `None` when no index lists it.
    number: Option<u32>,
    entries: Vec<BlobEntry>,
    read: bool,
    want_table: bool,
}

#[derive(Default)]
struct PackCheck {
    stored_len: u64,
    /// The whole pack is lost.
    whole: Option<(Kind, String)>,
    bad_blobs: Vec<(BlobId, String)>,
    table: Option<Vec<BlobEntry>>,
    /// Catalog blobs read in this pack, checked.
    catalog: Vec<(BlobId, Vec<u8>)>,
    blobs_read: u64,
    raw_bytes: u64,
}

/// The CPU work on one pack (runs on rayon): its storage ID, and with a key its table and
/// (when `job.read`) every blob the index lists in it, the blobs split across the pool.
/// Catalog blobs (`catalog`) of a pack read are returned, checked, for `check_backup`.
fn check_pack(
    job: &PackJob,
    stored: &[u8],
    keys: Option<&Keys>,
    max_raw: usize,
    catalog: &HashSet<BlobId>,
    buffers: &BufferPool,
) -> PackCheck {
    let mut out = PackCheck {
        stored_len: stored.len() as u64,
        ..Default::default()
    };
    let keys = keys.filter(|_| job.read || job.want_table);
    let name = pack::object_name(&job.id);
    // The storage ID and the decryption both read the stored bytes: side by side.
    let mut plain = buffers.take();
    let (actual, decrypted) = rayon::join(
        || storage_id(stored),
        || keys.map(|k| k.decrypt_into(&name, stored, &mut plain)),
    );
    (|| {
        if actual != job.id {
            out.whole = Some((Kind::Damaged, format!("its content hashes to {actual}")));
            return;
        }
        let Some(keys) = keys else { return };
        if let Some(Err(e)) = decrypted {
            out.whole = Some((Kind::Damaged, detail_of(&e)));
            return;
        }
        let table = match pack::read_table(&name, &plain) {
            Ok(t) => t,
            Err(e) => {
                out.whole = Some((Kind::Damaged, detail_of(&e)));
                return;
            }
        };
        if !job.read {
            if job.want_table {
                out.table = Some(table);
            }
            return;
        }
        let by_id: HashMap<BlobId, &BlobEntry> = table.iter().map(|e| (e.id, e)).collect();
        let checked: Vec<BlobCheck> = job
            .entries
            .par_iter()
            .with_min_len(16)
            .map(|entry| {
                match by_id.get(&entry.id) {
                    None => return Err("listed by the index, not in the pack's table".into()),
                    Some(t) if **t != *entry => {
                        return Err("the index and the pack's table disagree on where it is".into());
                    }
                    Some(_) => {}
                }
                RAW.with(|raw| {
                    let mut raw = raw.borrow_mut();
                    check_blob_into(&keys.naming, max_raw, &plain, entry, &mut raw)?;
                    Ok((raw.len(), catalog.contains(&entry.id).then(|| raw.clone())))
                })
            })
            .collect();
        for (entry, c) in job.entries.iter().zip(checked) {
            match c {
                Ok((len, kept)) => {
                    out.blobs_read += 1;
                    out.raw_bytes += len as u64;
                    if let Some(raw) = kept {
                        out.catalog.push((entry.id, raw));
                    }
                }
                Err(detail) => out.bad_blobs.push((entry.id, detail)),
            }
        }
        if job.want_table {
            out.table = Some(table);
        }
    })();
    buffers.give(plain);
    out
}

/// One blob checked in a pack: its raw length and, for a catalog blob, its bytes; or what
/// is wrong with it.
type BlobCheck = std::result::Result<(usize, Option<Vec<u8>>), String>;

/// Pack plaintext buffers reused from pack to pack (at most `in_flight` kept, dropped with
/// the pool at the end of `verify`).
struct BufferPool {
    free: std::sync::Mutex<Vec<Vec<u8>>>,
    keep: usize,
}

impl BufferPool {
    fn take(&self) -> Vec<u8> {
        self.free
            .lock()
            .expect("no panic while held")
            .pop()
            .unwrap_or_default()
    }

    fn give(&self, buf: Vec<u8>) {
        let mut free = self.free.lock().expect("no panic while held");
        if free.len() < self.keep {
            free.push(buf);
        }
    }
}

thread_local! {
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
    /// A blob's raw bytes while verify checks it (at most a chunk's maximum).
    static RAW: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Cuts a blob out of its pack's plaintext, decompresses it and checks its keyed hash.
/// A raw length past the chunker's maximum is refused before anything is inflated.
pub(crate) fn check_blob(
    naming: &NamingKey,
    max_raw: usize,
    plain: &[u8],
    entry: &BlobEntry,
) -> std::result::Result<Vec<u8>, String> {
    let mut raw = Vec::new();
    check_blob_into(naming, max_raw, plain, entry, &mut raw)?;
    Ok(raw)
}

/// `check_blob` into `raw` (cleared first; its allocation reused).
fn check_blob_into(
    naming: &NamingKey,
    max_raw: usize,
    plain: &[u8],
    entry: &BlobEntry,
    raw: &mut Vec<u8>,
) -> std::result::Result<(), String> {
    if entry.raw_length as usize > max_raw {
        return Err(format!(
            "the index gives it {} bytes, more than a chunk's {max_raw}",
            entry.raw_length
        ));
    }
    let start = entry.offset as usize;
    let slice = plain
        .get(start..start.saturating_add(entry.length as usize))
        .ok_or("lies outside the pack")?;
    raw.clear();
    // Room for the raw length; a reused buffer may hold more (never more than `max_raw`):
    // a frame inflating past the raw length then fails on the length below.
    raw.reserve_exact(entry.raw_length as usize);
    DECOMPRESSOR
        .with(|d| {
            let mut d = d.borrow_mut();
            if d.is_none() {
                *d = Some(zstd::bulk::Decompressor::new()?);
            }
            d.as_mut()
                .expect("made above")
                .decompress_to_buffer(slice, raw)
        })
        .map_err(|e| format!("zstd: {e}"))?;
    if raw.len() != entry.raw_length as usize || naming.blob_id(raw) != entry.id {
        return Err("does not match its hash".into());
    }
    Ok(())
}

/// The pack ID in `data/<ab>/<ab…>`, when the name is one.
pub fn pack_id_of(name: &str) -> Option<&str> {
    let mut parts = name.split('/');
    let (Some("data"), Some(prefix), Some(id), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    (is_id(id) && id.starts_with(prefix) && prefix.len() == 2).then_some(id)
}

fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The storage ID an object's name ends with: the last path component (`keys/<id>`,
/// `drills/<snapshot>/<id>`) or what follows its last dot (`binlog/…/<start>-<end>.<id>`).
pub fn storage_id_in_name(name: &str) -> Option<&str> {
    let last = name.rsplit('/').next()?;
    let id = last.rsplit('.').next()?;
    is_id(id).then_some(id)
}

/// Whether a pack belongs to the random `percent` of packs of this run.
fn chosen(seed: u64, pack: &str, percent: f64) -> bool {
    if percent >= 100.0 {
        return true;
    }
    let mut h = blake3::Hasher::new();
    h.update(&seed.to_le_bytes());
    h.update(pack.as_bytes());
    let x = u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().expect("8 bytes"));
    (x as f64 / u64::MAX as f64) * 100.0 < percent
}

/// The object an error names.
fn object_of(e: &BackupError) -> String {
    match e {
        BackupError::Missing { object, .. }
        | BackupError::Damaged { object, .. }
        | BackupError::Storage { object, .. } => object.clone(),
        other => other.to_string(),
    }
}

/// What an error says of its object, without the object's name.
fn detail_of(e: &BackupError) -> String {
    match e {
        BackupError::Damaged { detail, .. } => detail.clone(),
        BackupError::Missing { .. } => "missing".into(),
        other => other.to_string(),
    }
}

/// The binlog position a backup's snapshot records (`meta.coordinates`).
pub fn coordinates(meta: &serde_json::Value) -> Option<Position> {
    let c = meta.get("coordinates")?;
    Some(Position {
        file: c.get("file")?.as_str()?.to_string(),
        pos: c.get("position")?.as_u64()?,
    })
}

/// Checks each event of a segment's bytes: its framing, CRC32 (when the file has them) and
/// position. `None` when all is well, else what is wrong.
pub fn check_events(segment: &Segment, bytes: &[u8]) -> Option<String> {
    use crate::binlog::event;
    let checksum = event::format_description_checksum(&segment.format_description)
        .unwrap_or(event::Checksum::Crc32);
    let mut at = 0usize;
    let mut pos = segment.start;
    while at < bytes.len() {
        let size = bytes
            .get(at + 9..at + 13)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
            .unwrap_or(0);
        let ok = bytes.get(at..at.saturating_add(size)).and_then(|ev| {
            let h = event::Header::parse(ev).ok()?;
            event::verify_checksum(ev, &h, checksum).ok()?;
            (h.log_pos == 0 || u64::from(h.log_pos) == pos + size as u64).then_some(())
        });
        if ok.is_none() {
            return Some(format!(
                "the event at {}:{pos} fails its CRC32 or framing",
                segment.file
            ));
        }
        at += size;
        pos += size as u64;
    }
    None
}

/// One source's archive in the repository (see `check_segments` for what is checked);
/// a segment lost or damaged breaks point-in-time recovery, past its start, of every
/// backup whose coordinates the archive holds before it.
async fn check_archive(
    archive: &RepositorySegments,
    snapshots: &[(String, Snapshot)],
    findings: &mut Findings,
    report: &mut Report,
) -> Result<()> {
    let source = archive.source().to_string();
    let mut previous: Option<Segment> = None;
    let mut first: Option<Position> = None;
    let mut lost: Vec<(String, Position)> = Vec::new();
    for object in archive.objects().await? {
        let (file, start, end) = match &object.kind {
            ObjectKind::Gap { .. } => {
                match archive.gap(&object).await {
                    Ok(gap) => findings.add(
                        &object.name,
                        Kind::Notice,
                        format!(
                            "archiving gap: the binlog from {} to {} was not archived ({}); no point-in-time recovery across it",
                            gap.after
                                .as_ref()
                                .map(|p| p.to_string())
                                .unwrap_or_else(|| "the start".into()),
                            gap.resume_at,
                            gap.message
                        ),
                    ),
                    Err(e) if e.is_damage() => {
                        findings.add(&object.name, Kind::Damaged, detail_of(&e))
                    }
                    Err(e) => return Err(e),
                }
                previous = None;
                continue;
            }
            ObjectKind::Segment { file, start, end } => (file.clone(), *start, *end),
        };
        report.binlog_segments += 1;
        let at = Position {
            file: file.clone(),
            pos: start,
        };
        first.get_or_insert_with(|| at.clone());
        let range = format!("lost: the events of {file} from {start} to {end}");
        match archive.read_segment(&object).await {
            Err(e) if e.is_damage() => {
                findings.add(
                    &object.name,
                    Kind::Damaged,
                    format!("{}; {range}", detail_of(&e)),
                );
                lost.push((object.name.clone(), at));
                previous = None;
            }
            Err(e) => return Err(e),
            Ok((header, bytes)) => {
                let segment = header.segment;
                if let Some(prev) = &previous
                    && !window::follows(prev, &segment)
                {
                    findings.add(
                        &object.name,
                        Kind::Missing,
                        format!(
                            "does not follow the segment before it (which ends at {}:{}): the events between are missing",
                            prev.file, prev.end
                        ),
                    );
                    lost.push((
                        object.name.clone(),
                        Position {
                            file: prev.file.clone(),
                            pos: prev.end,
                        },
                    ));
                }
                if let Some(problem) = check_events(&segment, &bytes) {
                    findings.add(&object.name, Kind::Damaged, format!("{problem}; {range}"));
                    lost.push((object.name.clone(), at));
                }
                previous = Some(segment);
            }
        }
    }
    // The backups whose recovery window runs into what was lost.
    let Some(first) = first else { return Ok(()) };
    for (object, at) in lost {
        for (id, snap) in snapshots {
            let Some(c) = coordinates(&snap.meta) else {
                continue;
            };
            if window::compare(&first, &c).is_le() && window::compare(&c, &at).is_le() {
                findings.breaks(
                    &object,
                    id,
                    &snap.time,
                    Some(&format!(
                        "point-in-time recovery past {at} (binlog source {source})"
                    )),
                );
            }
        }
    }
    Ok(())
}

/// Binlog segments of one source, as its archive reads them back: each segment's bytes
/// checked against its description (length and CRC32, by the `SegmentSource`), every
/// event's own CRC32 and position, and continuity (each segment starts where the previous
/// one of its file ended; a file ends with a ROTATE to the next one, or a recorded gap
/// explains the break). Returns findings named `binlog/<source>/<file>:<start>-<end>`.
pub async fn check_segments<S: crate::binlog::segment::SegmentSource>(
    source_name: &str,
    source: &S,
) -> std::result::Result<Vec<Finding>, crate::binlog::segment::StoreError> {
    use crate::binlog::segment::Record;
    let mut findings = Findings::default();
    let mut previous: Option<Segment> = None;
    let mut after_gap = false;
    for record in source.records().await? {
        let segment = match record {
            Record::Gap(gap) => {
                let object = format!("binlog/{source_name}/gaps");
                findings.add(
                    &object,
                    Kind::Notice,
                    format!(
                        "archiving gap recorded after {}: no point-in-time restore across it ({})",
                        gap.after
                            .as_ref()
                            .map(|p| p.to_string())
                            .unwrap_or_else(|| "the start".into()),
                        gap.message
                    ),
                );
                after_gap = true;
                continue;
            }
            Record::Segment(s) => s,
        };
        let object = format!(
            "binlog/{source_name}/{}:{}-{}",
            segment.file, segment.start, segment.end
        );
        let range = format!(
            "events of {} from {} to {} (UTC seconds {} to {})",
            segment.file,
            segment.start,
            segment.end,
            segment.first_event_time,
            segment.last_event_time
        );
        if let Some(prev) = &previous
            && !after_gap
            && !window::follows(prev, &segment)
        {
            findings.add(
                &object,
                Kind::Missing,
                format!(
                    "does not continue the segment before it ({}:{}-{}): the events between are missing; point-in-time restore stops at {}:{}",
                    prev.file, prev.start, prev.end, prev.file, prev.end
                ),
            );
        }
        after_gap = false;
        match source.segment_bytes(&segment).await {
            Err(e) => findings.add(&object, Kind::Damaged, format!("{e}; lost: {range}")),
            Ok(bytes) => {
                if let Some(problem) = check_events(&segment, &bytes) {
                    findings.add(&object, Kind::Damaged, format!("{problem}; lost: {range}"));
                }
            }
        }
        previous = Some(segment);
    }
    Ok(findings.0.into_values().collect())
}

/// The listed objects' bytes, eight downloads in flight, in listing order.
fn fetch_all<'a>(
    store: &'a Store,
    listed: &'a [super::store::Listed],
) -> impl futures::Stream<Item = (String, Result<bytes::Bytes>)> + 'a {
    futures::stream::iter(
        listed
            .iter()
            .map(move |l| async move { (l.name.clone(), store.get(&l.name).await) }),
    )
    .buffered(8)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_storage_ids() {
        let id = "ab".repeat(32);
        assert_eq!(pack_id_of(&format!("data/ab/{id}")), Some(id.as_str()));
        assert_eq!(pack_id_of(&format!("data/cd/{id}")), None);
        assert_eq!(pack_id_of("data/ab/xyz"), None);
        assert_eq!(
            storage_id_in_name(&format!(
                "binlog/s1/binlog.000001/00000000000000000004-00000000000000000100.{id}"
            )),
            Some(id.as_str())
        );
        assert_eq!(storage_id_in_name(&format!("keys/{id}")), Some(id.as_str()));
        assert_eq!(storage_id_in_name("keys/short"), None);
    }

    /// A binlog event of `body` ending at `end`, with its CRC32.
    fn event(end: u64, body: &[u8], crc_ok: bool) -> Vec<u8> {
        let size = (19 + body.len() + 4) as u32;
        let mut ev = Vec::new();
        ev.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        ev.push(2); // QUERY
        ev.extend_from_slice(&1u32.to_le_bytes());
        ev.extend_from_slice(&size.to_le_bytes());
        ev.extend_from_slice(&(end as u32).to_le_bytes());
        ev.extend_from_slice(&0u16.to_le_bytes());
        ev.extend_from_slice(body);
        let crc = crc32fast::hash(&ev) ^ if crc_ok { 0 } else { 1 };
        ev.extend_from_slice(&crc.to_le_bytes());
        ev
    }

    fn segment(file: &str, start: u64, events: &[&[u8]], crc_ok: bool) -> (Segment, Vec<u8>) {
        let mut bytes = Vec::new();
        let mut pos = start;
        for body in events {
            let ev = event(pos + 19 + body.len() as u64 + 4, body, crc_ok);
            pos += ev.len() as u64;
            bytes.extend_from_slice(&ev);
        }
        // A FORMAT_DESCRIPTION long enough to say "CRC32" (the byte before its checksum).
        let mut fd = vec![0u8; 19 + 2 + 50 + 4 + 1 + 10];
        fd.push(1);
        fd.extend_from_slice(&[0; 4]);
        let seg = Segment {
            file: file.into(),
            start,
            end: pos,
            events: events.len() as u64,
            first_event_time: 1_700_000_000,
            last_event_time: 1_700_000_000,
            gtids: Vec::new(),
            ends_in_transaction: false,
            rotate_to: None,
            ends_with_stop: false,
            format_description: fd,
            crc32: crc32fast::hash(&bytes),
            server: None,
        };
        (seg, bytes)
    }

    use crate::binlog::segment::{Segment, SegmentStore};

    #[tokio::test]
    async fn segments_are_checked_for_crc_and_continuity() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = crate::binlog::local::LocalDirStore::open(dir.path()).unwrap();
        let (a, a_bytes) = segment("bin.000001", 256, &[b"BEGIN", b"INSERT 1", b"COMMIT"], true);
        store.commit(&a, &a_bytes).await.unwrap();
        let (b, b_bytes) = segment("bin.000001", a.end, &[b"INSERT 2"], true);
        store.commit(&b, &b_bytes).await.unwrap();
        assert!(check_segments("s1", &store).await.unwrap().is_empty());
        // Events missing between two segments; an event whose CRC32 is wrong.
        let (c, c_bytes) = segment("bin.000001", b.end + 100, &[b"INSERT 3"], true);
        store.commit(&c, &c_bytes).await.unwrap();
        let (d, d_bytes) = segment("bin.000001", c.end, &[b"INSERT 4"], false);
        store.commit(&d, &d_bytes).await.unwrap();
        let found = check_segments("s1", &store).await.unwrap();
        let c_name = format!("binlog/s1/bin.000001:{}-{}", c.start, c.end);
        let d_name = format!("binlog/s1/bin.000001:{}-{}", d.start, d.end);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found
                .iter()
                .any(|f| f.object == c_name && f.kind == Kind::Missing)
        );
        assert!(
            found.iter().any(|f| f.object == d_name
                && f.kind == Kind::Damaged
                && f.detail.contains("CRC32"))
        );
        // A damaged segment file: named with the events lost.
        let seg_file = dir.path().join("00000002.seg");
        let mut bytes = std::fs::read(&seg_file).unwrap();
        bytes[3] ^= 1;
        std::fs::write(&seg_file, bytes).unwrap();
        let found = check_segments("s1", &store).await.unwrap();
        let b_name = format!("binlog/s1/bin.000001:{}-{}", b.start, b.end);
        assert!(
            found.iter().any(|f| f.object == b_name
                && f.kind == Kind::Damaged
                && f.detail.contains("lost: events of bin.000001")),
            "{found:?}"
        );
    }

    #[test]
    fn a_partial_read_chooses_about_that_share() {
        let n = 2000;
        let picked = (0..n)
            .filter(|i| chosen(42, &format!("{i:064}"), 25.0))
            .count();
        assert!((400..600).contains(&picked), "{picked}");
        assert!((0..n).all(|i| chosen(1, &format!("{i}"), 100.0)));
        assert!(!(0..n).any(|i| chosen(1, &format!("{i}"), 0.0)));
    }
}
