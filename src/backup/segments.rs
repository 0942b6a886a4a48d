//! Binlog segments in the repository (REPOSITORY.md, "Binlog segments"): the archiver's
//! `SegmentStore` and the restore side's `SegmentSource` over `binlog/<source>/`.
//!
//! A segment is one object `binlog/<source>/<file>/<start>-<end>.<id>` (positions 20
//! digits, `<id>` the storage ID): age-encrypted to the repository recipient, plaintext
//! zstd of a JSON header line (`SegmentHeader`: the segment's description, the BLAKE3 of
//! its events and a MAC) then the events byte for byte. A gap is one object
//! `binlog/<source>/gaps/<file>-<pos>.<id>` (`<file>:<pos>` where archiving resumed),
//! age-encrypted JSON with its own MAC. The MAC (keyed BLAKE3 under
//! `derive_key("rbackup v1 binlog mac", naming key)`, of the header with `mac` empty) keeps
//! anyone who holds only the public recipient (it is in `config`) from adding a segment
//! that a restore would replay: it takes the writer key (or a reader's) to make one.
//!
//! The archiver holds only the writer key: it never decrypts. Where to resume is in the
//! names (`resume_point` lists them): after the last segment's end, or at the last gap's
//! position. A segment that ended its file (ROTATE, STOP) resumes at that end, which the
//! server answers by going on with the next file. Commits are one put each, then `syncfs`
//! on a local repository (S3 acknowledges a put once durable), so a committed segment
//! survives a power loss and segments appear in order. One archiver per source:
//! `locks/unique-binlog-<source>` with a shared lock, refreshed in the background
//! (`lock`), checked before every commit.
//!
//! Heartbeats: `caught_up` overwrites `heartbeats/<source>` (`Heartbeat`, plaintext JSON
//! with a MAC under `derive_key("rbackup v1 heartbeat mac")`): caught up at the end of the
//! last segment, at this time; `backup::health` reads it for `rbackup check`.
//!
//! Reading: `records()` reads every object's header line only (a ranged get of the first
//! 256 KiB, decrypted and decompressed as a stream), checks its MAC and that it says what
//! the name says; `segment_bytes()` reads the whole object and checks its storage ID
//! (BLAKE3 of the stored bytes), the MAC, the BLAKE3 of the events, their CRC32 and length.
//! Every error names the object.
//!
//! Not for: reading the server (`binlog::stream`), where segments end (`binlog::segment`),
//! choosing what to restore.

use std::io::{BufRead, BufReader, Read, Write};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::config::Repository;
use super::error::{BackupError, Result};
use super::keys::{Keys, storage_id};
use super::lock::{self, LockGuard, LockKind};
use crate::binlog::Position;
use crate::binlog::segment::{
    Gap, Record, ResumePoint, Segment, SegmentSource, SegmentStore, StoreError, rebuild_file,
};

/// The version of segment and gap objects.
pub const VERSION: u32 = 1;
/// zstd level of segments (binlog events compress 3 to 5 times at level 1).
const ZSTD_LEVEL: i32 = 1;
/// How much of a segment object `records()` fetches to read its header line.
const HEADER_PREFIX: u64 = 256 * 1024;
/// The longest header line read (the FORMAT_DESCRIPTION in hex and the GTID ranges).
const MAX_HEADER: u64 = 4 << 20;
/// Headers read at once by `records()`.
const READ_AHEAD: usize = 16;

/// The header line of a segment object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentHeader {
    pub version: u32,
    /// The source name: a segment moved under another source's folder is refused.
    pub source: String,
    #[serde(flatten)]
    pub segment: Segment,
    /// BLAKE3 (unkeyed) of the events, hex.
    pub blake3: String,
    /// See the module doc.
    #[serde(default)]
    pub mac: String,
}

/// A gap object's plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GapObject {
    pub version: u32,
    pub source: String,
    #[serde(flatten)]
    pub gap: Gap,
    #[serde(default)]
    pub mac: String,
}

fn canonical<T: Serialize + Clone>(value: &T, clear_mac: impl FnOnce(&mut T)) -> Vec<u8> {
    let mut c = value.clone();
    clear_mac(&mut c);
    serde_json::to_vec(&c).expect("header serializes")
}

/// An archiver's heartbeat, `heartbeats/<source>` (REPOSITORY.md, "Archiver heartbeats"):
/// plaintext JSON, overwritten in place, saying that the archiver was caught up with its
/// server at the end of the archive's last segment (`file`:`pos`, the segment's end) at
/// `time` (the archiver's clock). MAC under `derive_key("rbackup v1 heartbeat mac")`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub version: u32,
    pub source: String,
    pub file: String,
    pub pos: u64,
    /// RFC 3339 UTC.
    pub time: String,
    #[serde(default)]
    pub mac: String,
}

impl Heartbeat {
    /// The object name of `source`'s heartbeat.
    pub fn object(source: &str) -> String {
        format!("heartbeats/{source}")
    }

    /// Reads a heartbeat of `source`: the MAC checked when `keys` are given (a writer key
    /// suffices); without keys it is taken as it is, as a monitoring host without keys
    /// takes the listing's times. `None` when it is not a valid heartbeat of `source`.
    pub fn decode(keys: Option<&Keys>, source: &str, bytes: &[u8]) -> Option<Heartbeat> {
        let h: Heartbeat = serde_json::from_slice(bytes).ok()?;
        if h.version != VERSION || h.source != source {
            return None;
        }
        if let Some(keys) = keys
            && keys.naming.heartbeat_mac(&canonical(&h, |h| h.mac.clear())) != h.mac
        {
            return None;
        }
        Some(h)
    }

    /// When, as a time (`None` when unreadable).
    pub fn at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::parse_from_rfc3339(&self.time)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    }
}

/// What an object's name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectKind {
    Segment { file: String, start: u64, end: u64 },
    Gap { file: String, pos: u64 },
}

/// A listed segment or gap object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveObject {
    /// The object's name in the repository.
    pub name: String,
    pub size: u64,
    pub kind: ObjectKind,
}

impl ArchiveObject {
    fn order_key(&self) -> (u64, &str, u64, u8) {
        let (file, pos, rank) = match &self.kind {
            ObjectKind::Gap { file, pos } => (file, *pos, 0),
            ObjectKind::Segment { file, start, .. } => (file, *start, 1),
        };
        (file_number(file), file.as_str(), pos, rank)
    }
}

/// The number after the last dot of a binlog file name, for ordering files
/// ("binlog.000012" is 12); names without one sort last.
pub fn file_number(file: &str) -> u64 {
    file.rsplit_once('.')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(u64::MAX)
}

/// Whether `name` may be a path component of an object name: a source name or a binlog
/// file name (letters, digits, `.`, `_`, `-`; not starting with a dot).
pub fn valid_component(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn is_storage_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parses what follows `binlog/<source>/` in an object's name.
fn parse_name(rest: &str) -> Option<ObjectKind> {
    if let Some(gap) = rest.strip_prefix("gaps/") {
        let (stem, id) = gap.rsplit_once('.')?;
        let (file, pos) = stem.rsplit_once('-')?;
        if !is_storage_id(id) || pos.len() != 20 || !valid_component(file) {
            return None;
        }
        return Some(ObjectKind::Gap {
            file: file.to_string(),
            pos: pos.parse().ok()?,
        });
    }
    let (file, leaf) = rest.split_once('/')?;
    let (range, id) = leaf.split_once('.')?;
    let (start, end) = range.split_once('-')?;
    if !is_storage_id(id) || start.len() != 20 || end.len() != 20 || !valid_component(file) {
        return None;
    }
    Some(ObjectKind::Segment {
        file: file.to_string(),
        start: start.parse().ok()?,
        end: end.parse().ok()?,
    })
}

/// The binlog archive of one source in a repository: `SegmentStore` for the archiver
/// (`open_archiver`, holding the source's unique lock), `SegmentSource` for readers
/// (`open_reader`, which needs a reader key to decrypt).
pub struct RepositorySegments {
    repo: Repository,
    source: String,
    prefix: String,
    lock: Option<LockGuard>,
    /// The end of the archive's last segment (the archiver's: for its heartbeats).
    last_end: Option<Position>,
}

impl std::fmt::Debug for RepositorySegments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RepositorySegments({} {})",
            self.repo.store.url(),
            self.source
        )
    }
}

fn check_source(source: &str) -> Result<()> {
    if !valid_component(source) {
        return Err(BackupError::Usage(format!(
            "{source:?} is not a usable binlog source name (letters, digits, '.', '_', '-')"
        )));
    }
    Ok(())
}

/// A backup as the replay planner sees it (`binlog::replay::BackupPoint`): its binlog
/// coordinates and GTID position from the snapshot's `meta.coordinates`, its binlog
/// source and server identity from `meta.binlog_source` and `meta.server_identity`
/// (absent in backups made before they were recorded); `None` when it has no
/// coordinates (taken from a server without a binlog: it cannot start a replay).
pub fn backup_point(
    id: &str,
    snapshot: &super::Snapshot,
) -> Option<crate::binlog::replay::BackupPoint> {
    let c = &snapshot.meta["coordinates"];
    let (Some(file), Some(pos)) = (c["file"].as_str(), c["position"].as_u64()) else {
        return None;
    };
    let time = chrono::DateTime::parse_from_rfc3339(&snapshot.time)
        .map(|t| t.timestamp())
        .unwrap_or(i64::MAX);
    Some(crate::binlog::replay::BackupPoint {
        id: id.to_string(),
        time,
        position: Position {
            file: file.to_string(),
            pos,
        },
        gtid: c["gtid"].as_str().map(str::to_string),
        source: snapshot.meta["binlog_source"].as_str().map(str::to_string),
        server: snapshot.meta["server_identity"]
            .as_str()
            .map(str::to_string),
        databases: crate::binlog::filter::DatabaseFilter::from_meta(&snapshot.meta),
        // `binlog_replayable: false` with its reason (`rbackup backup`); absent: replayable.
        not_replayable: (snapshot.meta["binlog_replayable"] == false).then(|| {
            snapshot.meta["binlog_not_replayable"]
                .as_str()
                .unwrap_or("the backup is recorded as not replayable")
                .to_string()
        }),
    })
}

impl RepositorySegments {
    /// For the archiver: takes `locks/unique-binlog-<source>` (and a shared lock); a
    /// second archiver of the same source refuses, naming the holder.
    pub async fn open_archiver(repo: Repository, source: &str) -> Result<RepositorySegments> {
        check_source(source)?;
        let lock = lock::acquire(
            &repo.store,
            LockKind::Unique(format!("binlog-{source}")),
            "binlog archiver",
        )
        .await?;
        Ok(RepositorySegments {
            prefix: format!("binlog/{source}/"),
            source: source.to_string(),
            repo,
            lock: Some(lock),
            last_end: None,
        })
    }

    /// For reading (no lock taken: the caller takes a shared lock if it needs one).
    pub fn open_reader(repo: Repository, source: &str) -> Result<RepositorySegments> {
        check_source(source)?;
        Ok(RepositorySegments {
            prefix: format!("binlog/{source}/"),
            source: source.to_string(),
            repo,
            lock: None,
            last_end: None,
        })
    }

    /// The sources that have an archive in the repository, sorted.
    pub async fn sources(repo: &Repository) -> Result<Vec<String>> {
        let mut out: Vec<String> = repo
            .store
            .list_folders("binlog")
            .await?
            .into_iter()
            .filter(|s| valid_component(s))
            .collect();
        out.sort();
        Ok(out)
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn repository(&self) -> &Repository {
        &self.repo
    }

    /// Releases the archiver's locks.
    pub async fn release(mut self) -> Result<()> {
        match self.lock.take() {
            Some(l) => l.release().await,
            None => Ok(()),
        }
    }

    /// Every segment and gap object, in archive order (binlog file number, then
    /// position, a gap before the segments that start where it resumed). Objects whose
    /// names are not the format's are left out (a stray upload).
    pub async fn objects(&self) -> Result<Vec<ArchiveObject>> {
        self.objects_under(&self.prefix).await
    }

    async fn objects_under(&self, prefix: &str) -> Result<Vec<ArchiveObject>> {
        let mut out: Vec<ArchiveObject> = self
            .repo
            .store
            .list(prefix.trim_end_matches('/'))
            .await?
            .into_iter()
            .filter_map(|l| {
                let rest = l.name.strip_prefix(&self.prefix)?;
                Some(ArchiveObject {
                    kind: parse_name(rest)?,
                    size: l.size,
                    name: l.name,
                })
            })
            .collect();
        out.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
        Ok(out)
    }

    fn keys(&self) -> &Keys {
        &self.repo.keys
    }

    /// The header of a segment object, checked (MAC, version, source, and that it says
    /// what the name says). Reads only the object's beginning when it can.
    pub async fn header(&self, object: &ArchiveObject) -> Result<SegmentHeader> {
        if object.size > HEADER_PREFIX {
            let prefix = self
                .repo
                .store
                .get_range(&object.name, 0..HEADER_PREFIX)
                .await?;
            // A header longer than the prefix: read the whole object below.
            if let Ok((header, _)) = read_header(self.keys(), &object.name, &prefix) {
                self.check_header(object, &header)?;
                return Ok(header);
            }
        }
        let stored = self.repo.store.get(&object.name).await?;
        check_id(&object.name, &stored)?;
        let (header, _) = read_header(self.keys(), &object.name, &stored)?;
        self.check_header(object, &header)?;
        Ok(header)
    }

    fn check_header(&self, object: &ArchiveObject, header: &SegmentHeader) -> Result<()> {
        let damaged = |what: String| Err(BackupError::damaged(&object.name, what));
        if header.version != VERSION {
            return Err(BackupError::Usage(format!(
                "{}: binlog segment version {} (this rbackup reads {VERSION})",
                object.name, header.version
            )));
        }
        let mac = self
            .keys()
            .naming
            .binlog_mac(&canonical(header, |h| h.mac.clear()));
        if mac != header.mac {
            return damaged(
                "its MAC does not match: not written with this repository's naming key \
                 (a forged segment, or another repository's)"
                    .into(),
            );
        }
        if header.source != self.source {
            return damaged(format!(
                "it is a segment of source {:?}, not {:?}",
                header.source, self.source
            ));
        }
        let s = &header.segment;
        let named = ObjectKind::Segment {
            file: s.file.clone(),
            start: s.start,
            end: s.end,
        };
        if named != object.kind {
            return damaged(format!(
                "its header says {}:{}-{}, not what its name says",
                s.file, s.start, s.end
            ));
        }
        Ok(())
    }

    /// A gap object, checked.
    pub async fn gap(&self, object: &ArchiveObject) -> Result<Gap> {
        let stored = self.repo.store.get(&object.name).await?;
        check_id(&object.name, &stored)?;
        let plain = self.keys().decrypt(&object.name, &stored)?;
        let g: GapObject = serde_json::from_slice(&plain)
            .map_err(|e| BackupError::damaged(&object.name, format!("not a gap record: {e}")))?;
        if g.version != VERSION {
            return Err(BackupError::Usage(format!(
                "{}: binlog gap version {} (this rbackup reads {VERSION})",
                object.name, g.version
            )));
        }
        let mac = self
            .keys()
            .naming
            .binlog_mac(&canonical(&g, |g| g.mac.clear()));
        let named = ObjectKind::Gap {
            file: g.gap.resume_at.file.clone(),
            pos: g.gap.resume_at.pos,
        };
        if mac != g.mac || g.source != self.source || named != object.kind {
            return Err(BackupError::damaged(
                &object.name,
                "its MAC, source or position does not match (a forged or moved gap record)",
            ));
        }
        Ok(g.gap)
    }

    /// The record an object holds (its header for a segment).
    async fn record(&self, object: ArchiveObject) -> Result<Record> {
        match &object.kind {
            ObjectKind::Segment { .. } => self
                .header(&object)
                .await
                .map(|h| Record::Segment(h.segment)),
            ObjectKind::Gap { .. } => self.gap(&object).await.map(Record::Gap),
        }
    }

    /// The segment object of `segment` (by file and positions).
    async fn find(&self, segment: &Segment) -> Result<ArchiveObject> {
        let want = ObjectKind::Segment {
            file: segment.file.clone(),
            start: segment.start,
            end: segment.end,
        };
        if !valid_component(&segment.file) {
            return Err(BackupError::Usage(format!(
                "{:?} is not a binlog file name",
                segment.file
            )));
        }
        self.objects_under(&format!("{}{}/", self.prefix, segment.file))
            .await?
            .into_iter()
            .find(|o| o.kind == want)
            .ok_or_else(|| BackupError::Missing {
                object: format!(
                    "{}{}/{:020}-{:020}.*",
                    self.prefix, segment.file, segment.start, segment.end
                ),
                file: None,
            })
    }

    /// The events of a segment object, every check done (see the module doc).
    pub async fn read_segment(&self, object: &ArchiveObject) -> Result<(SegmentHeader, Vec<u8>)> {
        let stored = self.repo.store.get(&object.name).await?;
        check_id(&object.name, &stored)?;
        let (header, mut rest) = read_header(self.keys(), &object.name, &stored)?;
        self.check_header(object, &header)?;
        let s = &header.segment;
        let damaged = |what: String| BackupError::damaged(&object.name, what);
        let len = s
            .end
            .checked_sub(s.start)
            .ok_or_else(|| damaged("its end is before its start".into()))?;
        let mut bytes = Vec::with_capacity(len.min(64 << 20) as usize);
        (&mut rest)
            .take(len + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| damaged(format!("cannot decrypt or decompress: {e}")))?;
        if bytes.len() as u64 != len {
            return Err(damaged(format!(
                "{} bytes of events, not {len}",
                bytes.len()
            )));
        }
        if blake3::hash(&bytes).to_hex().as_str() != header.blake3
            || crc32fast::hash(&bytes) != s.crc32
        {
            return Err(damaged("its events do not match their hash".into()));
        }
        Ok((header, bytes))
    }

    /// Rebuilds binlog `file` from its segments (see `segment::rebuild_file`: the first
    /// segment's FORMAT_DESCRIPTION); `None` when none is archived. Refuses segments that
    /// do not follow each other exactly.
    pub async fn rebuild(&self, file: &str) -> Result<Option<Vec<u8>>> {
        let objects = self
            .objects_under(&format!("{}{}/", self.prefix, file))
            .await?;
        let mut fde = None;
        let mut parts = Vec::new();
        let mut end = None;
        for o in &objects {
            let ObjectKind::Segment { start, .. } = &o.kind else {
                continue;
            };
            if let Some(e) = end
                && e != *start
            {
                return Err(BackupError::damaged(
                    &o.name,
                    format!("starts at {start}, not at {e} where the one before ended"),
                ));
            }
            let (header, bytes) = self.read_segment(o).await?;
            end = Some(header.segment.end);
            fde.get_or_insert(header.segment.format_description);
            parts.push(bytes);
        }
        Ok(fde.map(|fde| rebuild_file(&fde, parts.iter().map(Vec::as_slice))))
    }

    async fn put_synced(&self, name: &str, stored: Vec<u8>) -> Result<()> {
        if let Some(lock) = &self.lock {
            lock.check()?;
            // Refreshed and still ours right before the put: an archiver paused past its
            // ttl whose lock another archiver took over must not add overlapping segments.
            lock.confirmer().confirm().await?;
        }
        self.repo.store.put(name, Bytes::from(stored)).await?;
        self.repo.store.sync().await
    }
}

/// Opens `stored` as plaintext (decrypting as a stream when the repository is encrypted).
fn open_plain<'a>(keys: &Keys, object: &str, stored: &'a [u8]) -> Result<Box<dyn Read + 'a>> {
    if keys.recipient.is_none() {
        return Ok(Box::new(stored));
    }
    let identity = keys.identity.as_ref().ok_or_else(|| {
        BackupError::Key(format!(
            "{object}: reading needs a reader key (--identity-file or --passphrase-file); a writer key cannot decrypt"
        ))
    })?;
    let cannot =
        |e: age::DecryptError| BackupError::damaged(object, format!("cannot decrypt: {e}"));
    let decryptor = age::Decryptor::new_buffered(stored).map_err(cannot)?;
    let reader = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(cannot)?;
    Ok(Box::new(reader))
}

/// Reads the header line of a segment object's plaintext; returns it and the reader
/// positioned at the first event.
fn read_header<'a>(
    keys: &Keys,
    object: &str,
    stored: &'a [u8],
) -> Result<(SegmentHeader, Box<dyn BufRead + 'a>)> {
    let plain = open_plain(keys, object, stored)?;
    let damaged = |what: String| BackupError::damaged(object, what);
    let decoder = zstd::stream::read::Decoder::new(plain)
        .map_err(|e| damaged(format!("cannot decompress: {e}")))?;
    let mut reader = BufReader::with_capacity(64 * 1024, decoder);
    let mut line = Vec::new();
    (&mut reader)
        .take(MAX_HEADER)
        .read_until(b'\n', &mut line)
        .map_err(|e| damaged(format!("cannot decrypt or decompress: {e}")))?;
    if line.pop() != Some(b'\n') {
        return Err(damaged("no header line".into()));
    }
    let header: SegmentHeader =
        serde_json::from_slice(&line).map_err(|e| damaged(format!("not a segment header: {e}")))?;
    Ok((header, Box::new(reader)))
}

/// Checks that a stored object's bytes hash to the storage ID after the last dot of its
/// name.
fn check_id(object: &str, stored: &[u8]) -> Result<()> {
    let expected = object.rsplit('.').next().unwrap_or("");
    let actual = storage_id(stored);
    if actual != expected {
        return Err(BackupError::damaged(
            object,
            format!("its content hashes to {actual}"),
        ));
    }
    Ok(())
}

/// A segment object as stored under `keys`: its name (`binlog/<source>/<file>/<start>-<end>.<id>`)
/// and its bytes (header with the MAC under `keys`' naming key, events, zstd, age). The
/// archiver's commit and `copy` (which re-seals a checked source segment for the
/// destination) both make it here.
pub fn seal_segment(
    keys: &Keys,
    source: &str,
    segment: &Segment,
    bytes: &[u8],
) -> std::io::Result<(String, Vec<u8>)> {
    let mut header = SegmentHeader {
        version: VERSION,
        source: source.to_string(),
        segment: segment.clone(),
        blake3: blake3::hash(bytes).to_hex().to_string(),
        mac: String::new(),
    };
    header.mac = keys
        .naming
        .binlog_mac(&canonical(&header, |h| h.mac.clear()));
    let mut encoder =
        zstd::stream::write::Encoder::new(Vec::with_capacity(bytes.len() / 3 + 4096), ZSTD_LEVEL)?;
    serde_json::to_writer(&mut encoder, &header)?;
    encoder.write_all(b"\n")?;
    encoder.write_all(bytes)?;
    let compressed = encoder.finish()?;
    let stored = keys.encrypt(&compressed);
    drop(compressed);
    let name = format!(
        "binlog/{source}/{}/{:020}-{:020}.{}",
        segment.file,
        segment.start,
        segment.end,
        storage_id(&stored)
    );
    Ok((name, stored))
}

/// A gap object as stored under `keys`: its name (`binlog/<source>/gaps/<file>-<pos>.<id>`)
/// and its bytes (JSON with the MAC under `keys`' naming key, age).
pub fn seal_gap(keys: &Keys, source: &str, gap: &Gap) -> (String, Vec<u8>) {
    let mut g = GapObject {
        version: VERSION,
        source: source.to_string(),
        gap: gap.clone(),
        mac: String::new(),
    };
    g.mac = keys.naming.binlog_mac(&canonical(&g, |g| g.mac.clear()));
    let stored = keys.encrypt(&serde_json::to_vec(&g).expect("a gap serializes"));
    let name = format!(
        "binlog/{source}/gaps/{}-{:020}.{}",
        gap.resume_at.file,
        gap.resume_at.pos,
        storage_id(&stored)
    );
    (name, stored)
}

fn store_error(e: BackupError) -> StoreError {
    Box::new(e)
}

impl SegmentStore for RepositorySegments {
    async fn resume_point(&mut self) -> std::result::Result<Option<ResumePoint>, StoreError> {
        let objects = self.objects().await.map_err(store_error)?;
        self.last_end = objects.iter().rev().find_map(|o| match &o.kind {
            ObjectKind::Segment { file, end, .. } => Some(Position {
                file: file.clone(),
                pos: *end,
            }),
            ObjectKind::Gap { .. } => None,
        });
        Ok(objects.last().map(|o| match &o.kind {
            // The FORMAT_DESCRIPTION is in the encrypted header, which a writer cannot
            // read: the archiver takes the copy the server re-sends.
            ObjectKind::Segment { file, end, .. } => ResumePoint {
                position: Position {
                    file: file.clone(),
                    pos: *end,
                },
                format_description: None,
            },
            ObjectKind::Gap { file, pos } => ResumePoint {
                position: Position {
                    file: file.clone(),
                    pos: *pos,
                },
                format_description: None,
            },
        }))
    }

    async fn commit(
        &mut self,
        segment: &Segment,
        bytes: &[u8],
    ) -> std::result::Result<(), StoreError> {
        if !valid_component(&segment.file) || segment.file == "gaps" {
            return Err(store_error(BackupError::Usage(format!(
                "binlog file name {:?} cannot be an object name",
                segment.file
            ))));
        }
        let (name, stored) = seal_segment(self.keys(), &self.source, segment, bytes)?;
        self.put_synced(&name, stored).await.map_err(store_error)?;
        self.last_end = Some(Position {
            file: segment.file.clone(),
            pos: segment.end,
        });
        Ok(())
    }

    /// Overwrites `heartbeats/<source>`: caught up at the last segment's end, now. Not
    /// synced (a heartbeat lost to a crash is only an older one); refused when the lock is
    /// no longer ours.
    async fn caught_up(&mut self) -> std::result::Result<(), StoreError> {
        let Some(end) = &self.last_end else {
            return Ok(()); // nothing archived yet: nothing to be caught up with
        };
        if let Some(lock) = &self.lock {
            lock.check().map_err(store_error)?;
        }
        let mut h = Heartbeat {
            version: VERSION,
            source: self.source.clone(),
            file: end.file.clone(),
            pos: end.pos,
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            mac: String::new(),
        };
        h.mac = self
            .keys()
            .naming
            .heartbeat_mac(&canonical(&h, |h| h.mac.clear()));
        let json = serde_json::to_vec(&h)?;
        self.repo
            .store
            .put(&Heartbeat::object(&self.source), Bytes::from(json))
            .await
            .map_err(store_error)
    }

    async fn record_gap(&mut self, gap: &Gap) -> std::result::Result<(), StoreError> {
        let (name, stored) = seal_gap(self.keys(), &self.source, gap);
        self.put_synced(&name, stored).await.map_err(store_error)
    }
}

impl SegmentSource for RepositorySegments {
    fn name(&self) -> Option<&str> {
        Some(&self.source)
    }

    async fn records(&self) -> std::result::Result<Vec<Record>, StoreError> {
        let objects = self.objects().await.map_err(store_error)?;
        let mut records: Vec<Record> = futures::stream::iter(objects)
            .map(|o| self.record(o))
            .buffered(READ_AHEAD)
            .try_collect()
            .await
            .map_err(store_error)?;
        // The same range twice (two archivers past a lock taken over as stale): one.
        records.dedup_by(|b, a| match (a, b) {
            (Record::Segment(a), Record::Segment(b)) => {
                a.file == b.file && a.start == b.start && a.end == b.end
            }
            _ => false,
        });
        Ok(records)
    }

    async fn segment_bytes(&self, segment: &Segment) -> std::result::Result<Vec<u8>, StoreError> {
        let object = self.find(segment).await.map_err(store_error)?;
        let (header, bytes) = self.read_segment(&object).await.map_err(store_error)?;
        if header.segment.crc32 != segment.crc32 {
            return Err(store_error(BackupError::damaged(
                &object.name,
                "its description differs from the one asked for",
            )));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_sort_in_archive_order() {
        let id = "ab".repeat(32);
        assert_eq!(
            parse_name(&format!("binlog.000012/{:020}-{:020}.{id}", 256, 1000)),
            Some(ObjectKind::Segment {
                file: "binlog.000012".into(),
                start: 256,
                end: 1000
            })
        );
        assert_eq!(
            parse_name(&format!("gaps/my-bin.000003-{:020}.{id}", 4)),
            Some(ObjectKind::Gap {
                file: "my-bin.000003".into(),
                pos: 4
            })
        );
        assert_eq!(parse_name("binlog.000001/4-5.x"), None);
        assert_eq!(parse_name(&format!("../x/{:020}-{:020}.{id}", 1, 2)), None);
        let obj = |kind| ArchiveObject {
            name: String::new(),
            size: 0,
            kind,
        };
        let mut v = [
            obj(ObjectKind::Segment {
                file: "b.000010".into(),
                start: 300,
                end: 400,
            }),
            obj(ObjectKind::Segment {
                file: "b.000010".into(),
                start: 256,
                end: 300,
            }),
            obj(ObjectKind::Gap {
                file: "b.000010".into(),
                pos: 4,
            }),
            obj(ObjectKind::Segment {
                file: "b.000009".into(),
                start: 256,
                end: 300,
            }),
        ];
        v.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
        let order: Vec<(String, u64)> = v
            .iter()
            .map(|o| match &o.kind {
                ObjectKind::Gap { file, pos } => (file.clone(), *pos),
                ObjectKind::Segment { file, start, .. } => (file.clone(), *start),
            })
            .collect();
        assert_eq!(
            order,
            [
                ("b.000009".to_string(), 256),
                ("b.000010".to_string(), 4),
                ("b.000010".to_string(), 256),
                ("b.000010".to_string(), 300)
            ]
        );
    }

    #[test]
    fn a_heartbeat_needs_its_mac_and_its_source() {
        let keys = Keys {
            naming: crate::backup::keys::NamingKey::generate(),
            recipient: None,
            identity: None,
        };
        let mut h = Heartbeat {
            version: VERSION,
            source: "s1".into(),
            file: "binlog.000002".into(),
            pos: 4096,
            time: "2026-06-10T12:00:00.000Z".into(),
            mac: String::new(),
        };
        h.mac = keys.naming.heartbeat_mac(&canonical(&h, |h| h.mac.clear()));
        let json = serde_json::to_vec(&h).unwrap();
        assert_eq!(Heartbeat::decode(Some(&keys), "s1", &json), Some(h.clone()));
        assert!(Heartbeat::decode(Some(&keys), "s2", &json).is_none());
        let mut later = h.clone();
        later.time = "2026-06-10T13:00:00.000Z".into();
        let forged = serde_json::to_vec(&later).unwrap();
        assert!(Heartbeat::decode(Some(&keys), "s1", &forged).is_none());
        // Without a key it is taken as it is.
        assert!(Heartbeat::decode(None, "s1", &forged).is_some());
        assert_eq!(
            h.at(),
            Some(
                "2026-06-10T12:00:00Z"
                    .parse::<chrono::DateTime<chrono::Utc>>()
                    .unwrap()
            )
        );
    }

    #[test]
    fn source_and_file_names_must_be_plain_components() {
        assert!(valid_component("3f2c1a-uuid-like-0001"));
        assert!(valid_component("db1.example.com-3306-1"));
        assert!(!valid_component("a/b"));
        assert!(!valid_component(".."));
        assert!(!valid_component(""));
        assert!(!valid_component("a b"));
    }
}
