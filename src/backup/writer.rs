//! `BackupWriter`: the sink of one backup (REPOSITORY.md, "Blobs" to "Snapshots").
//!
//! The dump's sink opens a `FileWriter` per logical file (a table chunk, a schema file,
//! the manifest), writes its bytes in pieces of any size and closes it; then the backup
//! is committed with what the dump says of it (databases, coordinates). Any number of
//! files may be open at once, from any number of tasks (`BackupWriter` is shared by
//! reference; each `FileWriter` is owned by one task).
//!
//! File writes are synchronous, like `output::Sink::write_all`, so the dump's row
//! callbacks can feed them directly (this is the seam for `rbackup backup`): each file's
//! bytes are cut into chunks (`chunker`), each chunk named by the keyed hash; a chunk
//! already in the repository (listed by an index's presence part, or written earlier in
//! this backup) is only referenced; a new one is compressed with zstd (on the calling
//! thread) and appended to the open pack. A full pack goes to the uploader task through a
//! queue of `UPLOAD_QUEUE` packs; a writer that finds the queue full waits for it
//! (`block_in_place` on the multi-thread runtime, which the binaries use), so memory stays
//! bounded when the storage is slower than the dump. The uploader encrypts and uploads
//! packs one at a time, and writes an index object every `index_every` packs. Its first
//! error fails every later write and the commit.
//!
//! `commit` sends the last pack, waits for the uploader, writes the last index, then the
//! snapshot: packs, then index, then snapshot. `abort` (or an error) writes the index of
//! the packs already uploaded, so that the next backup reuses them, and never a snapshot.
//!
//! The writer never decrypts anything: a writer key is enough.
//!
//! Not for: what the files are (the dump decides), reading (see `reader`).

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::chunker::Chunker;
use super::config::Repository;
use super::error::{BackupError, Result};
use super::index::{self, PackBlobs};
use super::keys::{BlobId, storage_id};
use super::lock::{self, LockConfirm, LockGuard, LockKind};
use super::pack::{self, PackBuilder};
use super::snapshot::{FileEntry, Snapshot, Stats};

/// How a backup is written (none of this is part of the format).
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// A pack is closed once its blobs pass this many bytes.
    pub pack_size: usize,
    /// An index object is written after this many packs (and at the end).
    pub index_every: usize,
    /// zstd level of each blob. 1 by default: on sysbench-like INSERT text (64 MiB,
    /// `zstd -b1 -e9 -B32768`, i.e. 32 KiB blocks compressed alone like blobs) level 1
    /// gave the best ratio and speed: x2.19 at 81 MB/s, level 3 x2.15 at 33 MB/s, levels
    /// 4 to 9 x2.00 to x2.04 at 10 to 19 MB/s (one run on the shared 2-core VM; speeds
    /// relative only).
    pub zstd_level: i32,
    /// A unique lock name (e.g. `backup-<source>`): a second backup holding the same
    /// name refuses. `None`: only the shared lock.
    pub unique_lock: Option<String>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            pack_size: 4 * 1024 * 1024,
            index_every: 8,
            zstd_level: 1,
            unique_lock: None,
        }
    }
}

impl WriterOptions {
    /// The defaults, with the pack size and index interval from the environment
    /// (`RBACKUP_PACK_SIZE` in bytes, at least 64 KiB; `RBACKUP_INDEX_EVERY` in packs):
    /// tuning, not format. Smaller packs indexed more often let an interrupted backup's
    /// uploads be reused sooner (tests use that), at the cost of more objects.
    pub fn from_env() -> Result<WriterOptions> {
        let mut o = WriterOptions::default();
        let var = |name: &str| -> Result<Option<usize>> {
            match std::env::var(name) {
                Ok(v) => v.trim().parse().map(Some).map_err(|_| {
                    BackupError::Usage(format!("{name}={v}: expected a whole number"))
                }),
                Err(_) => Ok(None),
            }
        };
        if let Some(n) = var("RBACKUP_PACK_SIZE")? {
            o.pack_size = n.max(64 * 1024);
        }
        if let Some(n) = var("RBACKUP_INDEX_EVERY")? {
            o.index_every = n.max(1);
        }
        Ok(o)
    }
}

/// What the caller says of the backup at commit.
#[derive(Debug, Clone, Default)]
pub struct SnapshotInfo {
    /// The backup's time (RFC 3339); `None`: when the writer started. `copy` keeps the
    /// source's.
    pub time: Option<String>,
    pub host: Option<String>,
    pub tags: Vec<String>,
    /// Databases, coordinates, consistency: what the dump recorded.
    pub meta: serde_json::Value,
}

/// An empty pack with room for `pack_size` plus one maximal blob and the table, so that
/// it never reallocates (a doubled 8 MiB buffer per pack would double the writer's memory).
fn new_pack(options: &WriterOptions) -> PackBuilder {
    PackBuilder::new(options.pack_size + 192 * 1024)
}

/// Full packs waiting for the uploader (each up to `pack_size` plus one blob).
pub const UPLOAD_QUEUE: usize = 2;

struct Shared {
    repo: Repository,
    options: WriterOptions,
    seed: u64,
    /// Blob IDs in the repository or in this backup (uploaded or in the open pack).
    known: Mutex<HashSet<BlobId>>,
    packer: Mutex<PackBuilder>,
    /// Packs uploaded and not yet listed by an index object.
    pending: Mutex<Vec<PackBlobs>>,
    stats: Mutex<Stats>,
    open_files: AtomicUsize,
    /// To the uploader; taken (closed) at commit or abort.
    uploads: Mutex<Option<mpsc::Sender<PackBuilder>>>,
    /// The uploader's first error.
    failed: Mutex<Option<BackupError>>,
    /// Re-confirms the backup's lock before each index object (see `flush_index`).
    lock: LockConfirm,
}

impl Shared {
    fn check(&self) -> Result<()> {
        match &*self.failed.lock().unwrap() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

pub struct BackupWriter {
    shared: Arc<Shared>,
    catalog: Mutex<Option<FileWriter>>,
    uploader: Option<tokio::task::JoinHandle<()>>,
    lock: Option<LockGuard>,
    started: chrono::DateTime<chrono::Utc>,
}

impl std::fmt::Debug for BackupWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BackupWriter({})", self.shared.repo.store.url())
    }
}

impl BackupWriter {
    /// Locks the repository and reads what it holds (the presence part of every index).
    pub async fn start(repo: Repository, options: WriterOptions) -> Result<BackupWriter> {
        let kind = match &options.unique_lock {
            Some(name) => LockKind::Unique(name.clone()),
            None => LockKind::Shared,
        };
        let lock = lock::acquire(&repo.store, kind, "backup").await?;
        let mut known = HashSet::new();
        for listed in repo.store.list("index").await? {
            let data = repo.store.get(&listed.name).await?;
            super::snapshot::check_storage_id(&listed.name, &data)?;
            let (packs, _) = index::decode_presence(&listed.name, &data)?;
            for (_, blobs) in packs {
                known.extend(blobs);
            }
        }
        let seed = repo.keys.naming.chunker_seed();
        let (tx, rx) = mpsc::channel(UPLOAD_QUEUE);
        let first_pack = new_pack(&options);
        let shared = Arc::new(Shared {
            repo,
            options,
            seed,
            known: Mutex::new(known),
            packer: Mutex::new(first_pack),
            pending: Mutex::new(Vec::new()),
            stats: Mutex::new(Stats::default()),
            open_files: AtomicUsize::new(0),
            uploads: Mutex::new(Some(tx)),
            failed: Mutex::new(None),
            lock: lock.confirmer(),
        });
        let uploader = tokio::spawn(upload_packs(shared.clone(), rx));
        let catalog = FileWriter::new(shared.clone(), "catalog", false);
        Ok(BackupWriter {
            shared,
            catalog: Mutex::new(Some(catalog)),
            uploader: Some(uploader),
            lock: Some(lock),
            started: chrono::Utc::now(),
        })
    }

    /// Blobs the repository held when this backup started, plus those added since.
    pub fn known_blobs(&self) -> usize {
        self.shared.known.lock().unwrap().len()
    }

    /// Opens a logical file of the backup.
    pub fn file(&self, name: &str) -> FileWriter {
        FileWriter::new(self.shared.clone(), name, true)
    }

    /// Finishes a file and records it in the backup's catalog.
    pub fn close_file(&self, file: FileWriter, meta: serde_json::Value) -> Result<FileEntry> {
        let mut entry = file.finish()?;
        entry.meta = meta;
        let mut line = serde_json::to_vec(&entry).expect("file entry serializes");
        line.push(b'\n');
        let mut catalog = self.catalog.lock().unwrap();
        let catalog = catalog.as_mut().expect("the catalog is open until commit");
        catalog.write(&line)?;
        {
            let mut stats = self.shared.stats.lock().unwrap();
            stats.files += 1;
            stats.logical_bytes += entry.size;
        }
        Ok(entry)
    }

    /// What was stored so far.
    pub fn stats(&self) -> Stats {
        self.shared.stats.lock().unwrap().clone()
    }

    /// Writes the last pack, the last index and the snapshot; releases the lock.
    /// Returns the snapshot's ID (its storage ID) and the snapshot.
    /// On an error the backup is aborted (see `abort`): no snapshot, the uploaded packs
    /// indexed for the next backup, the lock released.
    pub async fn commit(mut self, info: SnapshotInfo) -> Result<(String, Snapshot)> {
        match self.try_commit(info).await {
            Ok(done) => Ok(done),
            Err(e) => {
                self.abort().await;
                Err(e)
            }
        }
    }

    async fn try_commit(&mut self, info: SnapshotInfo) -> Result<(String, Snapshot)> {
        let open = self.shared.open_files.load(Ordering::SeqCst);
        if open != 0 {
            return Err(BackupError::Usage(format!(
                "commit with {open} file(s) still open: the backup is not complete"
            )));
        }
        let catalog = self.catalog.lock().unwrap().take();
        let catalog = catalog
            .ok_or_else(|| BackupError::Usage("commit twice".into()))?
            .finish()?;
        send_open_pack(&self.shared)?;
        self.drain_uploads().await;
        self.shared.check()?;
        flush_index(&self.shared).await?;
        self.lock.as_ref().map_or(Ok(()), |l| l.check())?;
        self.shared.lock.confirm().await?;
        let snapshot = Snapshot {
            version: super::snapshot::VERSION,
            time: info.time.unwrap_or_else(|| {
                self.started
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            }),
            host: info.host.unwrap_or_else(local_host),
            tags: info.tags,
            program: format!("rbackup {}", env!("CARGO_PKG_VERSION")),
            meta: info.meta,
            stats: self.stats(),
            catalog,
            mac: String::new(),
        };
        let (name, stored) = snapshot.encode(&self.shared.repo.keys);
        let store = &self.shared.repo.store;
        store.sync().await?; // packs and index durable before the snapshot
        store.put(&name, Bytes::from(stored)).await?;
        store.sync().await?; // and the snapshot before the backup is reported done
        if let Some(lock) = self.lock.take() {
            lock.release().await?;
        }
        let id = name.trim_start_matches("snapshots/").to_string();
        Ok((id, snapshot))
    }

    /// Gives up the backup: uploads what is buffered and indexes every uploaded pack (so
    /// the next backup reuses them), writes no snapshot, releases the lock. Errors of
    /// these last uploads are ignored (the storage may be what failed).
    pub async fn abort(mut self) {
        // Even when the last pack fails, the packs uploaded before it get their index.
        let _ = send_open_pack(&self.shared);
        self.drain_uploads().await;
        let _ = flush_index(&self.shared).await;
        if let Some(lock) = self.lock.take() {
            let _ = lock.release().await;
        }
    }
}

impl BackupWriter {
    /// Closes the upload queue and waits until the uploader has sent everything.
    async fn drain_uploads(&mut self) {
        drop(self.shared.uploads.lock().unwrap().take());
        if let Some(uploader) = self.uploader.take()
            && let Err(e) = uploader.await
        {
            self.shared
                .failed
                .lock()
                .unwrap()
                .get_or_insert(BackupError::Storage {
                    object: "data/".into(),
                    message: format!("the uploader failed: {e}"),
                });
        }
    }
}

impl Drop for BackupWriter {
    fn drop(&mut self) {
        // Killed or dropped without commit: packs already queued may still go up (and
        // are then orphans until an index lists them); nothing else is written.
        drop(self.shared.uploads.lock().unwrap().take());
    }
}

/// The uploader: encrypts and uploads packs in turn; after the first error it only
/// drains the queue (writers then fail on `Shared::check`).
async fn upload_packs(shared: Arc<Shared>, mut rx: mpsc::Receiver<PackBuilder>) {
    while let Some(pack) = rx.recv().await {
        if shared.failed.lock().unwrap().is_some() {
            continue;
        }
        if let Err(e) = upload_pack(&shared, pack).await {
            shared.failed.lock().unwrap().get_or_insert(e);
        }
    }
}

/// Hands a full pack to the uploader, waiting for room in the queue.
fn send_pack(shared: &Shared, pack: PackBuilder) -> Result<()> {
    shared.check()?;
    let Some(tx) = shared.uploads.lock().unwrap().clone() else {
        return Err(BackupError::Usage(
            "the backup was committed or aborted: no more writes".into(),
        ));
    };
    let closed = || BackupError::Storage {
        object: "data/".into(),
        message: "the uploader stopped".into(),
    };
    match tx.try_send(pack) {
        Ok(()) => Ok(()),
        Err(mpsc::error::TrySendError::Closed(_)) => {
            Err(shared.check().err().unwrap_or_else(closed))
        }
        Err(mpsc::error::TrySendError::Full(pack)) => {
            let sent = match tokio::runtime::Handle::try_current() {
                Ok(handle) => tokio::task::block_in_place(|| handle.block_on(tx.send(pack))),
                Err(_) => tx.blocking_send(pack),
            };
            sent.map_err(|_| shared.check().err().unwrap_or_else(closed))
        }
    }
}

/// Sends the open pack, if it holds anything.
fn send_open_pack(shared: &Shared) -> Result<()> {
    let pack = {
        let mut packer = shared.packer.lock().unwrap();
        if packer.is_empty() {
            return Ok(());
        }
        std::mem::take(&mut *packer)
    };
    send_pack(shared, pack)
}

fn local_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Writes one index object for every pack uploaded and not yet indexed.
async fn flush_index(shared: &Shared) -> Result<()> {
    let packs = std::mem::take(&mut *shared.pending.lock().unwrap());
    if packs.is_empty() {
        return Ok(());
    }
    let data = index::encode(&shared.repo.keys, &packs);
    let name = format!("index/{}", storage_id(&data));
    // The packs are durable before the index that lists them, and the lock still ours:
    // a prune that took over a lock we let go stale may have deleted these packs (they
    // were in no index), and an index listing them would make every later backup skip
    // their blobs. Without the lock the packs stay unindexed (orphans for prune).
    let stored = match shared.repo.store.sync().await {
        Ok(()) => match shared.lock.confirm().await {
            Ok(()) => shared.repo.store.put(&name, Bytes::from(data)).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    if let Err(e) = stored {
        shared.pending.lock().unwrap().extend(packs);
        return Err(e);
    }
    Ok(())
}

async fn upload_pack(shared: &Shared, pack: PackBuilder) -> Result<()> {
    let (plain, blobs) = pack.seal();
    let stored = shared.repo.keys.encrypt(&plain);
    drop(plain);
    let id = storage_id(&stored);
    let stored_len = stored.len() as u64;
    shared
        .repo
        .store
        .put(&pack::object_name(&id), Bytes::from(stored))
        .await?;
    let index_now = {
        let mut pending = shared.pending.lock().unwrap();
        pending.push(PackBlobs { pack: id, blobs });
        pending.len() >= shared.options.index_every
    };
    {
        let mut stats = shared.stats.lock().unwrap();
        stats.packs += 1;
        stats.new_stored_bytes += stored_len;
    }
    if index_now {
        flush_index(shared).await?;
    }
    Ok(())
}

/// One logical file being written.
pub struct FileWriter {
    shared: Arc<Shared>,
    name: String,
    chunker: Chunker,
    compressor: zstd::bulk::Compressor<'static>,
    blobs: Vec<BlobId>,
    size: u64,
    /// Counted in `open_files` (every file but the catalog).
    counted: bool,
}

impl std::fmt::Debug for FileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileWriter({}, {} bytes)", self.name, self.size)
    }
}

impl FileWriter {
    fn new(shared: Arc<Shared>, name: &str, counted: bool) -> FileWriter {
        if counted {
            shared.open_files.fetch_add(1, Ordering::SeqCst);
        }
        let chunker = Chunker::new(&shared.repo.config.chunker, shared.seed);
        let compressor = zstd::bulk::Compressor::new(shared.options.zstd_level)
            .expect("a zstd context can be made");
        FileWriter {
            shared,
            name: name.to_string(),
            chunker,
            compressor,
            blobs: Vec::new(),
            size: 0,
            counted,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds bytes to the file: chunks, names, compresses what is new and packs it; waits
    /// only when the upload queue is full. An error here (or an earlier upload's) means
    /// the backup cannot complete.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        let max = self.shared.repo.config.chunker.max as usize;
        for piece in data.chunks(max) {
            self.size += piece.len() as u64;
            self.chunker.push(piece);
            while let Some(chunk) = self.chunker.next_chunk() {
                let id = add_blob(&self.shared, &mut self.compressor, chunk, &self.name)?;
                self.blobs.push(id);
            }
        }
        Ok(())
    }

    /// Stores the file's last chunks and returns its entry.
    pub fn finish(mut self) -> Result<FileEntry> {
        for chunk in self.chunker.finish() {
            let id = add_blob(&self.shared, &mut self.compressor, &chunk, &self.name)?;
            self.blobs.push(id);
        }
        Ok(FileEntry {
            name: std::mem::take(&mut self.name),
            size: self.size,
            blobs: std::mem::take(&mut self.blobs),
            meta: serde_json::Value::Null,
        })
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        if self.counted {
            self.shared.open_files.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Names a chunk; stores it unless the repository has it. Returns its ID.
fn add_blob(
    shared: &Shared,
    compressor: &mut zstd::bulk::Compressor<'static>,
    chunk: &[u8],
    file: &str,
) -> Result<BlobId> {
    let id = shared.repo.keys.naming.blob_id(chunk);
    let new = shared.known.lock().unwrap().insert(id);
    {
        let mut stats = shared.stats.lock().unwrap();
        stats.blobs += 1;
        if new {
            stats.new_blobs += 1;
            stats.new_bytes += chunk.len() as u64;
        }
    }
    if !new {
        return Ok(id);
    }
    let compressed = compressor
        .compress(chunk)
        .map_err(|e| BackupError::Storage {
            object: file.to_string(),
            message: format!("zstd: {e}"),
        })?;
    let full = {
        let mut packer = shared.packer.lock().unwrap();
        packer.add(id, &compressed, chunk.len());
        if packer.len() >= shared.options.pack_size {
            Some(std::mem::replace(&mut *packer, new_pack(&shared.options)))
        } else {
            None
        }
    };
    match full {
        Some(pack) => send_pack(shared, pack)?,
        None => shared.check()?,
    }
    Ok(id)
}
