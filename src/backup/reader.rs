//! `RepositoryReader`: what a reader key sees (REPOSITORY.md, "Index", "Snapshots"):
//! every index loaded (presence and locations), snapshots listed and opened, a snapshot's
//! catalog read entry by entry, and each logical file streamed back blob by blob.
//!
//! Every object read is checked against the BLAKE3 of its name before it is decrypted;
//! every blob is decompressed and its keyed hash compared with its ID. A failure names
//! the object (pack, index, snapshot) and the logical file that needed it.
//!
//! Memory: the index, as a vector sorted by blob ID (48 bytes per blob: the ID and a
//! 16-byte location; a `HashMap` took 56 to 112 with its load factor) and the packs'
//! IDs (32 bytes per pack), and, per `FileReader`, one decrypted pack. About 1.5 MiB per
//! GiB of chunks (32 KiB on average), 1.5 GiB for a repository of 1 TiB of chunks.
//!
//! Not for: loading into a server or writing a directory (the commands do that with the
//! bytes streamed here).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::config::Repository;
use super::error::{BackupError, Result};
use super::index;
use super::keys::BlobId;
use super::pack;
use super::snapshot::{FileEntry, Snapshot, check_storage_id};

#[derive(Debug, Clone, Copy)]
struct Location {
    pack: u32,
    offset: u32,
    length: u32,
    raw_length: u32,
}

struct Inner {
    repo: Repository,
    /// Pack IDs (binary), numbered by `Location::pack`.
    packs: Vec<[u8; 32]>,
    /// Sorted by blob ID, one location per ID (the first index object's that lists it).
    blobs: Vec<(BlobId, Location)>,
}

impl Inner {
    fn location(&self, id: &BlobId) -> Option<Location> {
        self.blobs
            .binary_search_by(|(b, _)| b.0.cmp(&id.0))
            .ok()
            .map(|i| self.blobs[i].1)
    }
}

/// A repository opened for reading.
#[derive(Clone)]
pub struct RepositoryReader {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RepositoryReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RepositoryReader({}, {} blobs)",
            self.inner.repo.store.url(),
            self.inner.blobs.len()
        )
    }
}

impl RepositoryReader {
    /// Loads every index. Needs a reader key.
    pub async fn open(repo: Repository) -> Result<RepositoryReader> {
        if !repo.keys.can_read() {
            return Err(BackupError::Key(format!(
                "{}: reading needs a reader key (--identity-file or --passphrase-file); a writer key cannot decrypt",
                repo.store.url()
            )));
        }
        let mut packs: Vec<[u8; 32]> = Vec::new();
        let mut pack_numbers: HashMap<[u8; 32], u32> = HashMap::new();
        let listing = repo.store.list("index").await?;
        // Every blob takes 44 bytes of an index object (its ID in the presence part, 12
        // bytes of location): room for all of them at once, never doubled while growing.
        let room: u64 = listing.iter().map(|l| l.size / 44).sum();
        // Sizes come from the storage's listing: past 64 Mi blobs (2 TiB of chunks) the
        // vector grows as it fills rather than trusting them.
        let room = room.min(1 << 26);
        let mut blobs: Vec<(BlobId, Location)> = Vec::with_capacity(room as usize);
        for listed in listing {
            let data = repo.store.get(&listed.name).await?;
            check_storage_id(&listed.name, &data)?;
            for p in index::decode(&repo.keys, &listed.name, &data)? {
                let mut id = [0u8; 32];
                hex::decode_to_slice(&p.pack, &mut id).expect("index pack IDs are hex");
                let n = *pack_numbers.entry(id).or_insert_with(|| {
                    packs.push(id);
                    (packs.len() - 1) as u32
                });
                blobs.extend(p.blobs.iter().map(|b| {
                    (
                        b.id,
                        Location {
                            pack: n,
                            offset: b.offset,
                            length: b.length,
                            raw_length: b.raw_length,
                        },
                    )
                }));
            }
        }
        drop(pack_numbers);
        // Stable: of the locations of one blob, the first listed is kept.
        blobs.sort_by_key(|b| b.0);
        blobs.dedup_by(|b, a| a.0 == b.0);
        blobs.shrink_to_fit();
        Ok(RepositoryReader {
            inner: Arc::new(Inner { repo, packs, blobs }),
        })
    }

    pub fn repository(&self) -> &Repository {
        &self.inner.repo
    }

    /// How many blobs the index lists (distinct IDs).
    pub fn blob_count(&self) -> usize {
        self.inner.blobs.len()
    }

    /// The place of blob `id` among the index's blob IDs in sorted order (`0..blob_count`),
    /// for a caller that keeps one bit per blob (prune); `None` when no index lists it.
    pub fn blob_rank(&self, id: &BlobId) -> Option<usize> {
        self.inner
            .blobs
            .binary_search_by(|(b, _)| b.0.cmp(&id.0))
            .ok()
    }

    /// The blob ID at `rank` (see `blob_rank`).
    pub fn blob_at(&self, rank: usize) -> BlobId {
        self.inner.blobs[rank].0
    }

    /// Every snapshot with its ID, oldest first.
    pub async fn snapshots(&self) -> Result<Vec<(String, Snapshot)>> {
        let repo = &self.inner.repo;
        let mut out = Vec::new();
        for listed in repo.store.list("snapshots").await? {
            let data = repo.store.get(&listed.name).await?;
            let snap = Snapshot::decode(&repo.keys, &listed.name, &data)?;
            out.push((
                listed.name.trim_start_matches("snapshots/").to_string(),
                snap,
            ));
        }
        out.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        Ok(out)
    }

    /// The snapshot `id`: a full ID, a unique prefix of one, or `latest`.
    pub async fn snapshot(&self, id: &str) -> Result<(String, Snapshot)> {
        let mut all = self.snapshots().await?;
        if id == "latest" {
            return all.pop().ok_or_else(|| {
                BackupError::Usage(format!("{}: no backup yet", self.inner.repo.store.url()))
            });
        }
        let mut found: Vec<_> = all.into_iter().filter(|(s, _)| s.starts_with(id)).collect();
        match found.len() {
            1 => Ok(found.pop().unwrap()),
            0 => Err(BackupError::Usage(format!("no backup {id}"))),
            n => Err(BackupError::Usage(format!(
                "{id} is the prefix of {n} backups"
            ))),
        }
    }

    /// The snapshot's file entries, read from its catalog one at a time.
    pub fn catalog(&self, snapshot: &Snapshot) -> CatalogReader {
        let mut catalog = snapshot.catalog.clone();
        catalog.name = format!(
            "the catalog (list of files) of the backup of {}",
            snapshot.time
        );
        CatalogReader {
            file: self.read_file(&catalog),
            buf: Vec::new(),
            done: false,
        }
    }

    /// Streams a logical file back.
    pub fn read_file(&self, entry: &FileEntry) -> FileReader {
        FileReader {
            reader: self.clone(),
            name: entry.name.clone(),
            blobs: entry.blobs.clone(),
            next: 0,
            pack: None,
        }
    }
}

/// What `restore_to_dir` wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    pub files: u64,
    pub bytes: u64,
}

impl RepositoryReader {
    /// Writes every file of `snapshot` under `dir` (which must not exist or be empty),
    /// each under a temporary name renamed into place once complete and synced; files
    /// named in `write_last` (e.g. a dump's manifest) are written after all others, so a
    /// directory that has them is complete. Files are 0600.
    pub async fn restore_to_dir(
        &self,
        snapshot: &Snapshot,
        dir: &Path,
        write_last: &[&str],
    ) -> Result<Restored> {
        let io =
            |path: &Path, e: std::io::Error| BackupError::Usage(format!("{}: {e}", path.display()));
        if dir.exists() {
            let mut entries = std::fs::read_dir(dir).map_err(|e| io(dir, e))?;
            if entries.next().is_some() {
                return Err(BackupError::Usage(format!(
                    "{}: not empty (restore --to-dir writes into a new or empty directory)",
                    dir.display()
                )));
            }
        }
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let mut done = Restored::default();
        let mut last = Vec::new();
        let mut catalog = self.catalog(snapshot);
        while let Some(entry) = catalog.next().await? {
            if write_last.contains(&entry.name.as_str()) {
                last.push(entry);
                continue;
            }
            self.restore_file(&entry, dir, &mut done).await?;
        }
        for entry in last {
            self.restore_file(&entry, dir, &mut done).await?;
        }
        Ok(done)
    }

    /// Writes one file of a snapshot under `dir` as `restore_to_dir` does, but without
    /// syncing it: for a throwaway copy (a drill's staging, restored file by file to name
    /// every damaged table, not only the first). An fsync per chunk file made staging a
    /// 12 MB backup of ~400 files take 225 s on a loaded 2-core VM.
    pub async fn stage_file(
        &self,
        entry: &FileEntry,
        dir: &Path,
        done: &mut Restored,
    ) -> Result<()> {
        self.write_file(entry, dir, done, false).await
    }

    async fn restore_file(&self, entry: &FileEntry, dir: &Path, done: &mut Restored) -> Result<()> {
        self.write_file(entry, dir, done, true).await
    }

    async fn write_file(
        &self,
        entry: &FileEntry,
        dir: &Path,
        done: &mut Restored,
        sync: bool,
    ) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join(safe_relative(&entry.name)?);
        let io =
            |path: &Path, e: std::io::Error| BackupError::Usage(format!("{}: {e}", path.display()));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        if std::fs::symlink_metadata(&path).is_ok() {
            return Err(duplicate(&entry.name));
        }
        let mut tmp = path.clone().into_os_string();
        tmp.push(".rbackup-partial");
        let tmp = PathBuf::from(tmp);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io(&tmp, e))?;
        let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
        let mut reader = self.read_file(entry);
        let result = async {
            let mut n = 0u64;
            while let Some(chunk) = reader.next_chunk().await? {
                out.write_all(&chunk).map_err(|e| io(&tmp, e))?;
                n += chunk.len() as u64;
            }
            if n != entry.size {
                return Err(BackupError::damaged(
                    "catalog",
                    format!(
                        "{} restored {n} bytes, the catalog says {}",
                        entry.name, entry.size
                    ),
                ));
            }
            let file = out.into_inner().map_err(|e| io(&tmp, e.into_error()))?;
            if sync {
                file.sync_all().map_err(|e| io(&tmp, e))?;
            }
            // Published by link, which never replaces: a name that comes twice in the
            // catalog (a damaged or forged one) is refused, never overwritten.
            match std::fs::hard_link(&tmp, &path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(duplicate(&entry.name));
                }
                Err(e) => return Err(io(&path, e)),
            }
            std::fs::remove_file(&tmp).map_err(|e| io(&tmp, e))?;
            Ok(n)
        }
        .await;
        match result {
            Ok(n) => {
                done.files += 1;
                done.bytes += n;
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }
}

/// A catalog that names one file twice: refused (the first copy stays as written).
fn duplicate(name: &str) -> BackupError {
    BackupError::damaged(
        "catalog",
        format!(
            "{name} appears twice in the backup's catalog; the copy already written was kept and nothing was overwritten"
        ),
    )
}

/// A file name from a catalog as a relative path that stays inside the target directory.
fn safe_relative(name: &str) -> Result<PathBuf> {
    let path = Path::new(name);
    let ok = !name.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    if !ok {
        return Err(BackupError::damaged(
            "catalog",
            format!("file name {name:?} would leave the target directory"),
        ));
    }
    Ok(path.to_path_buf())
}

/// A snapshot's catalog, entry by entry.
pub struct CatalogReader {
    file: FileReader,
    buf: Vec<u8>,
    done: bool,
}

impl CatalogReader {
    pub async fn next(&mut self) -> Result<Option<FileEntry>> {
        loop {
            if let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                let entry = serde_json::from_slice(&line[..nl])
                    .map_err(|e| BackupError::damaged("catalog", format!("bad file entry: {e}")))?;
                return Ok(Some(entry));
            }
            if self.done {
                if !self.buf.is_empty() {
                    return Err(BackupError::damaged("catalog", "truncated last entry"));
                }
                return Ok(None);
            }
            match self.file.next_chunk().await? {
                Some(chunk) => self.buf.extend_from_slice(&chunk),
                None => self.done = true,
            }
        }
    }
}

/// One logical file, blob by blob.
pub struct FileReader {
    reader: RepositoryReader,
    name: String,
    blobs: Vec<BlobId>,
    next: usize,
    /// The last pack read: (object name, plaintext).
    pack: Option<(String, Vec<u8>)>,
}

impl FileReader {
    /// A reader of another file that keeps this one's last decrypted pack: reading many
    /// small files one after the other (as `copy` does) fetches and decrypts a pack they
    /// share once, not once per file.
    pub fn next_file(self, entry: &FileEntry) -> FileReader {
        FileReader {
            reader: self.reader,
            name: entry.name.clone(),
            blobs: entry.blobs.clone(),
            next: 0,
            pack: self.pack,
        }
    }

    /// The next piece of the file (one blob), verified; `None` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        let Some(&id) = self.blobs.get(self.next) else {
            return Ok(None);
        };
        let blob = self.blob(id).await.map_err(|e| e.in_file(&self.name))?;
        self.next += 1;
        Ok(Some(blob))
    }

    /// Writes the whole file to `out`.
    pub async fn copy_to(&mut self, out: &mut impl std::io::Write) -> Result<u64> {
        let mut n = 0;
        while let Some(chunk) = self.next_chunk().await? {
            out.write_all(&chunk).map_err(|e| BackupError::Storage {
                object: self.name.clone(),
                message: format!("writing the restored file: {e}"),
            })?;
            n += chunk.len() as u64;
        }
        Ok(n)
    }

    async fn blob(&mut self, id: BlobId) -> Result<Vec<u8>> {
        let inner = &self.reader.inner;
        let loc = inner.location(&id).ok_or_else(|| BackupError::Missing {
            object: format!("blob {id} (listed by no index)"),
            file: None,
        })?;
        let pack_name = pack::object_name(&hex::encode(inner.packs[loc.pack as usize]));
        if self
            .pack
            .as_ref()
            .map(|(n, _)| n != &pack_name)
            .unwrap_or(true)
        {
            self.pack = None;
            let stored = inner.repo.store.get(&pack_name).await?;
            check_storage_id(&pack_name, &stored)?;
            let plain = inner.repo.keys.decrypt(&pack_name, &stored)?;
            self.pack = Some((pack_name.clone(), plain));
        }
        let plain = &self.pack.as_ref().expect("pack loaded").1;
        let max_raw = inner.repo.config.chunker.max as usize;
        decode_blob(&inner.repo.keys.naming, max_raw, &pack_name, plain, loc, id)
    }
}

/// Cuts blob `id` out of its pack's plaintext, decompresses and checks it. The raw length
/// comes from an index, which any writer key can write: it is refused past the chunker's
/// `max_raw` before anything is allocated for it, so a forged length (up to 4 GiB) with a
/// zstd bomb behind it cannot make a reader allocate or inflate more than one chunk.
fn decode_blob(
    naming: &super::keys::NamingKey,
    max_raw: usize,
    pack_name: &str,
    plain: &[u8],
    loc: Location,
    id: BlobId,
) -> Result<Vec<u8>> {
    if loc.raw_length as usize > max_raw {
        return Err(BackupError::damaged(
            pack_name,
            format!(
                "blob {id}: the index gives it {} bytes, more than a chunk's {max_raw}",
                loc.raw_length
            ),
        ));
    }
    let start = loc.offset as usize;
    let slice = plain
        .get(start..start + loc.length as usize)
        .ok_or_else(|| {
            BackupError::damaged(pack_name, format!("blob {id} lies outside the pack"))
        })?;
    let raw = zstd::bulk::decompress(slice, loc.raw_length as usize)
        .map_err(|e| BackupError::damaged(pack_name, format!("blob {id}: zstd: {e}")))?;
    if raw.len() != loc.raw_length as usize || naming.blob_id(&raw) != id {
        return Err(BackupError::damaged(
            pack_name,
            format!("blob {id} does not match its hash"),
        ));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forged_raw_length_is_refused_before_decompressing() {
        // A writer key can write an index: it could claim 4 GiB for a blob whose
        // compressed bytes are a tiny zstd bomb. Nothing past one chunk is inflated.
        let naming = crate::backup::keys::NamingKey::generate();
        let max = 128 * 1024;
        let raw = vec![0u8; 1 << 20];
        let id = naming.blob_id(&raw);
        let plain = zstd::bulk::compress(&raw, 1).unwrap();
        assert!(plain.len() < 4096);
        let loc = Location {
            pack: 0,
            offset: 0,
            length: plain.len() as u32,
            raw_length: raw.len() as u32,
        };
        let e = decode_blob(&naming, max, "data/ab/abc", &plain, loc, id).unwrap_err();
        assert!(
            e.is_damage() && e.to_string().contains("more than a chunk"),
            "{e}"
        );
        // Within the bound it decodes and is checked.
        let small = vec![7u8; max];
        let sid = naming.blob_id(&small);
        let splain = zstd::bulk::compress(&small, 1).unwrap();
        let sloc = Location {
            length: splain.len() as u32,
            raw_length: small.len() as u32,
            ..loc
        };
        assert_eq!(
            decode_blob(&naming, max, "data/ab/abc", &splain, sloc, sid).unwrap(),
            small
        );
        let e = decode_blob(&naming, max, "data/ab/abc", &splain, sloc, id).unwrap_err();
        assert!(e.to_string().contains("does not match its hash"), "{e}");
    }

    #[test]
    fn catalog_names_stay_inside_the_target() {
        assert!(safe_relative("db/t.00001.sql").is_ok());
        assert!(safe_relative("rdump.json").is_ok());
        for bad in ["", "/etc/passwd", "../x", "db/../../x", "./x"] {
            assert!(safe_relative(bad).is_err(), "{bad}");
        }
    }
}
