//! Sinks: where encoded bytes go. A result file is written under a temporary name in its
//! target directory (mode 0600) and renamed into place only by `commit`, so an interrupted
//! or failed dump never leaves a file that looks complete; dropping an uncommitted sink
//! deletes the temporary file. With `--zstd` the bytes are compressed on the way; the byte
//! count and an XXH3-128 checksum of what reached the file are returned by `commit`, for
//! the manifest.
//!
//! Result and chunk files are written around the page cache (`direct`); stdout that is
//! redirected to a regular file is written behind (`PageCacheDrop`): every `BEHIND_WINDOW`
//! bytes the kernel is told to start writing the new window back, and the windows before
//! it are dropped from the page cache. A dump therefore keeps a bounded share of the host's
//! page cache (it does not evict the database server's cached files), and it avoids the
//! kernel's cost of filling memory with dirty pages: on the project's 2-core VM, writing
//! 1.5 GB to a new file through the page cache cost 2 to 4 s of system CPU, written behind
//! about 0.5 s with 4 MiB windows (0.6 s with 16 MiB, 1 to 1.3 s with 64 MiB; one C
//! program, two runs each). `RDUMP_PAGE_CACHE=keep` turns both off, for measuring.
//!
//! Not for: formatting (see `format`) or deciding what is written (see `dump`).

use std::fs;
use std::io::{self, BufWriter, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use xxhash_rust::xxh3::Xxh3;
use zstd::stream::raw::{self, Operation};
use zstd::stream::zio;

use crate::error::{Error, Result};
use crate::output::direct::DirectFile;
use crate::output::dumpdir::{Dir, TempFile};

const BUFFER: usize = 256 * 1024;

/// How much output is written back and dropped from the page cache at a time. About three
/// windows per file stay in the page cache (dirty, under writeback, to drop next).
const BEHIND_WINDOW: u64 = 4 * 1024 * 1024;

/// What a committed sink wrote: the stored bytes (after compression) and their checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub bytes: u64,
    /// XXH3-128 of the stored bytes, as 32 lower-case hex digits via `checksum_hex`.
    pub checksum: u128,
}

impl Written {
    pub fn checksum_hex(&self) -> String {
        format!("{:032x}", self.checksum)
    }
}

/// The device under the sink, counting what it stores and hashing it when it is a file
/// (only files get a checksum: the manifest's). No per-byte work for stdout.
struct Counted {
    base: Base,
    hasher: Option<Xxh3>,
    bytes: u64,
    behind: Option<PageCacheDrop>,
}

enum Base {
    Stdout(io::Stdout),
    /// A second handle on the temporary file: its errors read as the OS's ("No space left
    /// on device"), without the temporary name.
    File(fs::File),
    /// The same, written around the page cache (see `direct`).
    Direct(DirectFile),
    /// A logical file of a backup (`output::destination`): its bytes go to the repository
    /// writer as they come.
    Repository(Box<crate::backup::FileWriter>),
    /// Nowhere: a file whose bytes nobody keeps, only its `meta` (a drill's fingerprints).
    Discard,
}

/// Where the files of a discarding destination leave their names and `meta` on commit.
#[derive(Debug, Default)]
pub struct MetaCollector(std::sync::Mutex<Vec<(String, serde_json::Value)>>);

impl MetaCollector {
    /// Every committed file's name and meta, in commit order.
    pub fn take(&self) -> Vec<(String, serde_json::Value)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.base {
            Base::Stdout(w) => w.write(buf)?,
            Base::File(w) => w.write(buf)?,
            Base::Direct(w) => {
                w.write(buf)?;
                buf.len()
            }
            Base::Repository(w) => {
                w.write(buf).map_err(io::Error::other)?;
                buf.len()
            }
            Base::Discard => buf.len(),
        };
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.bytes += n as u64;
        if let Some(behind) = &mut self.behind {
            behind.wrote(n as u64);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.base {
            Base::Stdout(w) => w.flush(),
            Base::File(w) => w.flush(),
            // Blocks are written when full; the rest by `DirectFile::finish`.
            Base::Direct(_) => Ok(()),
            // Chunks are cut when complete; the rest by `FileWriter::finish`.
            Base::Repository(_) | Base::Discard => Ok(()),
        }
    }
}

enum Chain {
    Plain(BufWriter<Counted>),
    Zstd(zio::Writer<BufWriter<Counted>, raw::Encoder<'static>>),
}

/// A zstd compression context (~3.5 MB at level 3), handed back by `Sink::seal` so that a
/// caller writing many files in turn (a `--dir` worker) compresses them all with one. A
/// context per file made glibc's heap grow with the churn: 8 csv+zstd workers peaked at
/// 51–66 MB (41–45 MB with a fixed mmap threshold, so the contexts were not the cause).
pub struct ZstdContext(raw::Encoder<'static>);

impl Base {
    /// The write-behind for this device: none for direct files, whose pages are not cached.
    fn page_cache_drop(&self) -> Option<PageCacheDrop> {
        match self {
            Base::Stdout(w) => PageCacheDrop::new(w.as_raw_fd()),
            Base::File(w) => PageCacheDrop::new(w.as_raw_fd()),
            Base::Direct(_) | Base::Repository(_) | Base::Discard => None,
        }
    }
}

impl Chain {
    /// `zstd`: the context to compress with, a new one at that level or one to reuse.
    fn new(base: Base, zstd: Option<(i32, Option<ZstdContext>)>) -> io::Result<Chain> {
        let hasher = (!matches!(base, Base::Stdout(_))).then(Xxh3::new);
        let behind = base.page_cache_drop();
        let counted = Counted {
            base,
            hasher,
            bytes: 0,
            behind,
        };
        // A direct file buffers in its own blocks: a second buffer would only cost memory.
        let capacity = if matches!(counted.base, Base::Direct(_)) {
            0
        } else {
            BUFFER
        };
        let buffered = BufWriter::with_capacity(capacity, counted);
        Ok(match zstd {
            None => Chain::Plain(buffered),
            Some((_, Some(ZstdContext(reused)))) => Chain::Zstd(zio::Writer::new(buffered, reused)),
            Some((level, None)) => {
                Chain::Zstd(zio::Writer::new(buffered, raw::Encoder::new(level)?))
            }
        })
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Chain::Plain(w) => w.write_all(bytes),
            Chain::Zstd(w) => w.write_all(bytes),
        }
    }

    /// Ends the zstd frame, flushes everything, and returns the device and the zstd
    /// context, reset for another file.
    fn finish(self) -> io::Result<(Counted, Option<ZstdContext>)> {
        let (buffered, context) = match self {
            Chain::Plain(w) => (w, None),
            Chain::Zstd(mut w) => {
                w.finish()?;
                let (buffered, mut encoder) = w.into_inner();
                encoder.reinit()?;
                (buffered, Some(ZstdContext(encoder)))
            }
        };
        let mut counted = buffered.into_inner().map_err(|e| e.into_error())?;
        counted.flush()?;
        Ok((counted, context))
    }
}

/// Write-behind for a regular file (see the module's doc), without ever waiting for the
/// disk while the dump runs: each full window is handed to writeback (`SYNC_FILE_RANGE_WRITE`
/// does not wait), and the windows handed over before the last one are dropped
/// (`POSIX_FADV_DONTNEED` skips pages still dirty or under writeback, which then stay
/// cached until `finish`). Waiting for each window instead left the 2 cores ~18% idle in
/// `--dir` runs, against ~5% for plain buffered writes.
///
/// Offsets are the file's: `[base, dropped)` was dropped, `[dropped, previous)` is to drop
/// next, `[previous, started)` is being written back, `[started, end)` is dirty. Advice
/// only: the calls' errors are ignored (a write error surfaces from `write` or `fsync` as
/// always), and anything but a regular file on Linux gets none.
struct PageCacheDrop {
    fd: RawFd,
    base: u64,
    dropped: u64,
    previous: u64,
    started: u64,
    end: u64,
}

impl PageCacheDrop {
    fn new(fd: RawFd) -> Option<PageCacheDrop> {
        if page_cache_kept() {
            return None;
        }
        #[cfg(target_os = "linux")]
        {
            // SAFETY: fstat and lseek on a descriptor this process owns, into a zeroed
            // struct; no memory is shared with the kernel beyond the call.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            if unsafe { libc::fstat(fd, &mut st) } != 0
                || st.st_mode & libc::S_IFMT != libc::S_IFREG
            {
                return None;
            }
            // Appending (`>>`), writes land at the end whatever the offset says.
            let appending = unsafe { libc::fcntl(fd, libc::F_GETFL) } & libc::O_APPEND != 0;
            let at = if appending {
                st.st_size
            } else {
                unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) }
            };
            if at < 0 {
                return None;
            }
            let at = at as u64;
            Some(PageCacheDrop {
                fd,
                base: at,
                dropped: at,
                previous: at,
                started: at,
                end: at,
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = fd;
            None
        }
    }

    fn wrote(&mut self, n: u64) {
        self.end += n;
        if self.end - self.started >= BEHIND_WINDOW {
            self.write_back(self.started, self.end, false);
            self.drop_cached(self.dropped, self.previous);
            self.dropped = self.previous;
            self.previous = self.started;
            self.started = self.end;
        }
    }

    /// At the end of the output: waits until everything written is on disk and drops it.
    fn finish(&mut self) {
        self.write_back(self.base, self.end, true);
        self.drop_cached(self.base, self.end);
    }

    /// Starts writing `[from, to)` back; with `wait`, also waits until it is on disk.
    fn write_back(&self, from: u64, to: u64, wait: bool) {
        #[cfg(target_os = "linux")]
        if to > from {
            let flags = if wait {
                libc::SYNC_FILE_RANGE_WAIT_BEFORE
                    | libc::SYNC_FILE_RANGE_WRITE
                    | libc::SYNC_FILE_RANGE_WAIT_AFTER
            } else {
                libc::SYNC_FILE_RANGE_WRITE
            };
            // SAFETY: a plain syscall on an owned descriptor with offsets, no pointers.
            unsafe {
                libc::sync_file_range(self.fd, from as i64, (to - from) as i64, flags);
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (from, to, wait);
    }

    fn drop_cached(&self, from: u64, to: u64) {
        if to > from {
            #[cfg(target_os = "linux")]
            // SAFETY: as in `write_back`.
            unsafe {
                libc::posix_fadvise(
                    self.fd,
                    from as i64,
                    (to - from) as i64,
                    libc::POSIX_FADV_DONTNEED,
                );
            }
        }
    }
}

/// `RDUMP_PAGE_CACHE=keep`: plain buffered writes, no write-behind and no `O_DIRECT` (for
/// measuring what they save).
fn page_cache_kept() -> bool {
    std::env::var_os("RDUMP_PAGE_CACHE").is_some_and(|v| v == "keep")
}

pub struct Sink {
    chain: Chain,
    landing: Landing,
    /// For messages: the final path, or "stdout".
    name: PathBuf,
    /// Adds the bytes handed to `write_all` (before compression), for a progress display.
    meter: Option<Arc<AtomicU64>>,
    /// What the file's catalog entry says of it (a backup's, a discarding destination's).
    meta: serde_json::Value,
}

/// Where a sink's bytes end up, and what `commit` does about it.
enum Landing {
    Stdout,
    /// A temporary file, published under its name by `commit`.
    Temp(TempFile),
    /// The file itself, written as it is: a device, a fifo, a file reached through a
    /// descriptor (`/dev/stdout`, `/dev/fd/N`, `/proc/..`), or a regular file in a directory the user cannot write
    /// (a failed dump then leaves it partial). `sync`: a regular file, fsynced on commit.
    InPlace {
        sync: bool,
    },
    /// A backup's logical file, closed into the backup's catalog by `commit`.
    Repository(std::sync::Arc<crate::backup::BackupWriter>),
    /// Discarded; the name and meta go to the collector on commit.
    Collect(Arc<MetaCollector>, String),
}

/// How `-r FILE` (or a `--tab` file) is written, from what is at the path now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// Nothing, or a regular file: under a temporary name, renamed over it on success.
    Replace,
    /// A device, fifo or socket (whose open fails), or a file reached through a descriptor
    /// (`/dev/stdout`, `/dev/fd/N`, `/proc/..`): opened and written as it is (as
    /// mysqldump), never replaced by a regular file.
    InPlace,
    /// A directory: refused before anything is read.
    Directory,
}

/// What `-r path` does with what is at `path` (symlinks followed).
pub fn target_kind(path: &Path) -> io::Result<TargetKind> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(TargetKind::Replace),
        Err(e) => return Err(e),
    };
    if meta.is_dir() {
        return Ok(TargetKind::Directory);
    }
    if !meta.is_file() || reached_through_dev_or_proc(path) {
        return Ok(TargetKind::InPlace);
    }
    Ok(TargetKind::Replace)
}

/// `/dev/stdout`, `/dev/fd/N`, `/proc/self/fd/1`, or a symlink leading there: the file is
/// whatever a descriptor of the process is open on (a shell's redirection), not a name to
/// replace. A regular file elsewhere under `/dev` (`/dev/shm`, a tmpfs) is an ordinary file.
fn reached_through_dev_or_proc(path: &Path) -> bool {
    let names_a_descriptor = |at: &Path| {
        at.starts_with("/proc")
            || at.starts_with("/dev/fd")
            || ["/dev/stdin", "/dev/stdout", "/dev/stderr"]
                .iter()
                .any(|d| at == Path::new(d))
    };
    let mut at = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    for _ in 0..40 {
        if names_a_descriptor(&at) {
            return true;
        }
        match fs::read_link(&at) {
            Ok(next) => at = follow(&at, next),
            Err(_) => return false,
        }
    }
    false
}

/// Where the symlink `at`, reading `next`, leads.
fn follow(at: &Path, next: PathBuf) -> PathBuf {
    match at.parent() {
        Some(parent) => parent.join(next),
        None => next,
    }
}

/// The file a chain of symlinks at `path` ends at, whether it exists or not (a dangling
/// symlink names the file to create).
fn final_target(path: &Path) -> PathBuf {
    let mut at = path.to_path_buf();
    for _ in 0..40 {
        match fs::read_link(&at) {
            Ok(next) => at = follow(&at, next),
            Err(_) => break,
        }
    }
    at
}

/// The file replacing an existing one of the user's takes its group and permissions, as
/// the file mysqldump writes into keeps them (a group rdump cannot give takes the group's
/// permissions away). One of another user keeps rdump's 0600 and owner: copying a
/// stranger's mode or owner would hand them the dump (a file planted in `/tmp` for root's
/// `-r`).
fn keep_group_and_mode(file: &fs::File, old: &fs::Metadata) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt, fchown};
    if old.uid() != rustix::process::geteuid().as_raw() {
        return;
    }
    let mut mode = old.mode() & 0o777;
    if fchown(file, None, Some(old.gid())).is_err() {
        mode &= !0o070;
    }
    let _ = file.set_permissions(fs::Permissions::from_mode(mode));
}

/// Why the rename over `real` will fail, known before the dump: another user's file in a
/// sticky directory (`/tmp`) that is not the user's either (the rename fails `EPERM`; with
/// `fs.protected_regular` mysqldump's open fails too).
fn cannot_replace(real: &Path, parent: &Path) -> Option<&'static str> {
    use std::os::unix::fs::MetadataExt;
    let me = rustix::process::geteuid();
    if me.is_root() {
        return None;
    }
    let old = fs::metadata(real).ok().filter(|m| m.is_file())?;
    let dir = fs::metadata(parent).ok()?;
    let me = me.as_raw();
    (old.uid() != me && dir.mode() & 0o1000 != 0 && dir.uid() != me).then_some(
        "it is another user's file in a sticky directory, which only they can replace; \
         choose another name",
    )
}

/// A directory the user cannot create the temporary file in.
fn cannot_write_dir(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(libc::EROFS)
}

impl Sink {
    pub fn stdout(zstd_level: Option<i32>) -> Result<Sink> {
        let name = PathBuf::from("stdout");
        let chain = Chain::new(Base::Stdout(io::stdout()), zstd_level.map(|l| (l, None)))
            .map_err(|e| Error::write(&name, e))?;
        Ok(Sink {
            chain,
            landing: Landing::Stdout,
            name,
            meter: None,
            meta: serde_json::Value::Null,
        })
    }

    /// The result file `path` (`-r`, `--tab`), written as `target_kind` says: a regular
    /// file appears at `path` only when `commit` succeeds. A symlink to a regular file is
    /// kept, its target replaced. A writable regular file in a directory the user cannot
    /// write is written in place.
    pub fn file(path: &Path, zstd_level: Option<i32>) -> Result<Sink> {
        let kind = target_kind(path).map_err(|e| Error::write(path, e))?;
        match kind {
            TargetKind::Directory => Err(Error::write(
                path,
                io::Error::new(io::ErrorKind::IsADirectory, "Is a directory"),
            )),
            TargetKind::InPlace => Sink::in_place(path, zstd_level),
            TargetKind::Replace => {
                // Through a symlink: the file it names is replaced (or created), the
                // symlink kept.
                let real = final_target(path);
                let parent = match real.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d,
                    _ => Path::new("."),
                };
                let Some(file_name) = real.file_name().and_then(|n| n.to_str()) else {
                    return Err(Error::write(
                        path,
                        io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
                    ));
                };
                if let Some(why) = cannot_replace(&real, parent) {
                    return Err(Error::write(
                        path,
                        io::Error::new(io::ErrorKind::PermissionDenied, why),
                    ));
                }
                let created = Dir::open(parent).and_then(|d| d.create_temp(file_name));
                match created {
                    Ok((file, temp)) => {
                        if let Some(old) = fs::metadata(&real).ok().filter(|m| m.is_file()) {
                            keep_group_and_mode(&file, &old);
                        }
                        Sink::on_temp(path, file, temp, zstd_level, None)
                    }
                    Err(e) if cannot_write_dir(&e) && real.is_file() => {
                        Sink::in_place(path, zstd_level).map_err(|_| Error::write(path, e))
                    }
                    Err(e) => Err(Error::write(path, e)),
                }
            }
        }
    }

    /// The file `name` of a dump directory, published (never replacing a file) on
    /// `commit`, compressed (with `zstd_level`) with `context` when one is given.
    pub fn in_dir(
        dir: &Dir,
        name: &str,
        zstd_level: Option<i32>,
        context: Option<ZstdContext>,
    ) -> Result<Sink> {
        let path = dir.path().join(name);
        let (file, temp) = dir.create_temp(name).map_err(|e| Error::write(&path, e))?;
        Sink::on_temp(&path, file, temp, zstd_level, context)
    }

    fn on_temp(
        path: &Path,
        file: fs::File,
        temp: TempFile,
        zstd_level: Option<i32>,
        context: Option<ZstdContext>,
    ) -> Result<Sink> {
        let base = if page_cache_kept() {
            Base::File(file)
        } else {
            DirectFile::open(file).map_or_else(Base::File, Base::Direct)
        };
        let chain = Chain::new(base, zstd_level.map(|l| (l, context)))
            .map_err(|e| Error::write(path, e))?;
        Ok(Sink {
            chain,
            landing: Landing::Temp(temp),
            name: path.to_path_buf(),
            meter: None,
            meta: serde_json::Value::Null,
        })
    }

    /// Opens `path` as it is (truncating a regular file, as mysqldump's `fopen`).
    fn in_place(path: &Path, zstd_level: Option<i32>) -> Result<Sink> {
        let file = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(|e| Error::write(path, e))?;
        let sync = file.metadata().is_ok_and(|m| m.is_file());
        let chain = Chain::new(Base::File(file), zstd_level.map(|l| (l, None)))
            .map_err(|e| Error::write(path, e))?;
        Ok(Sink {
            chain,
            landing: Landing::InPlace { sync },
            name: path.to_path_buf(),
            meter: None,
            meta: serde_json::Value::Null,
        })
    }

    /// The logical file `name` of the backup `writer` (see `output::destination`): no
    /// compression here, the repository compresses each blob.
    pub fn in_repository(writer: &std::sync::Arc<crate::backup::BackupWriter>, name: &str) -> Sink {
        let base = Base::Repository(Box::new(writer.file(name)));
        let chain = Chain::new(base, None).expect("no zstd context to make");
        Sink {
            chain,
            landing: Landing::Repository(std::sync::Arc::clone(writer)),
            name: PathBuf::from(format!("repository file {name}")),
            meter: None,
            meta: serde_json::Value::Null,
        }
    }

    /// The logical file `name` of a destination that keeps no bytes, only the file's
    /// name and `meta`, handed to `collector` on commit.
    pub fn discarding(collector: &Arc<MetaCollector>, name: &str) -> Sink {
        let chain = Chain::new(Base::Discard, None).expect("no zstd context to make");
        Sink {
            chain,
            landing: Landing::Collect(Arc::clone(collector), name.to_string()),
            name: PathBuf::from(format!("discarded file {name}")),
            meter: None,
            meta: serde_json::Value::Null,
        }
    }

    /// True when the bytes written are kept nowhere (`discarding`).
    pub fn discards(&self) -> bool {
        matches!(self.landing, Landing::Collect(..))
    }

    /// What the file's entry in a backup's catalog (or a collector) says of it.
    pub fn set_meta(&mut self, meta: serde_json::Value) {
        self.meta = meta;
    }

    pub fn name(&self) -> &Path {
        &self.name
    }

    /// Counts every byte written from now on (before compression) into `meter`.
    pub fn meter(&mut self, meter: Arc<AtomicU64>) {
        self.meter = Some(meter);
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        if let Some(m) = &self.meter {
            m.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
        self.chain
            .write_all(bytes)
            .map_err(|e| Error::write(&self.name, e))
    }

    /// Flushes, syncs and (for a temporary file) publishes it under its name.
    pub fn commit(self) -> Result<Written> {
        self.seal()?.0.commit()
    }

    /// Ends the encoding: the zstd frame is closed and its context handed back (for
    /// `in_dir`), and the buffers are handed to the device. What is left (the direct
    /// file's last blocks, the fsync, the rename) is `Sealed::commit`'s, which a caller may
    /// run elsewhere.
    pub fn seal(self) -> Result<(Sealed, Option<ZstdContext>)> {
        let (counted, context) = self
            .chain
            .finish()
            .map_err(|e| Error::write(&self.name, e))?;
        let sealed = Sealed {
            counted,
            landing: self.landing,
            name: self.name,
            meta: self.meta,
        };
        Ok((sealed, context))
    }
}

/// A sink whose encoding has ended (`Sink::seal`), not yet committed: dropping it deletes
/// the temporary file, as for a `Sink`.
pub struct Sealed {
    counted: Counted,
    landing: Landing,
    name: PathBuf,
    meta: serde_json::Value,
}

impl Sealed {
    /// Writes what the device still holds, syncs and (for a temporary file) publishes it.
    pub fn commit(self) -> Result<Written> {
        let name = self.name;
        let mut counted = self.counted;
        let written = Written {
            bytes: counted.bytes,
            checksum: counted.hasher.as_ref().map_or(0, Xxh3::digest128),
        };
        let mut behind = counted.behind.take();
        let base = match (counted.base, &self.landing) {
            (Base::Repository(file), Landing::Repository(writer)) => {
                writer
                    .close_file(*file, self.meta)
                    .map_err(|e| Error::write(&name, io::Error::other(e)))?;
                return Ok(written);
            }
            (Base::Discard, Landing::Collect(collector, file)) => {
                collector.0.lock().unwrap().push((file.clone(), self.meta));
                return Ok(written);
            }
            (base, _) => base,
        };
        let base = match base {
            Base::Direct(d) => Base::File(d.finish().map_err(|e| Error::write(&name, e))?),
            other => other,
        };
        let file = match base {
            Base::File(file) => Some(file),
            _ => None,
        };
        match (self.landing, file) {
            (Landing::Temp(temp), Some(file)) => {
                file.sync_all().map_err(|e| Error::write(&name, e))?;
                if let Some(b) = &mut behind {
                    b.finish();
                }
                temp.publish().map_err(|e| Error::write(&name, e))?;
            }
            (Landing::InPlace { sync: true }, Some(file)) => {
                file.sync_all().map_err(|e| Error::write(&name, e))?;
                if let Some(b) = &mut behind {
                    b.finish();
                }
            }
            _ => {
                // stdout redirected to a file: written back and dropped, not fsynced (as
                // mysqldump, which leaves that to the shell's file). A device or fifo: as
                // written.
                if let Some(b) = &mut behind {
                    b.finish();
                }
            }
        }
        Ok(written)
    }
}

/// XXH3-128 of a whole file, as `Written::checksum_hex` prints it (for verifying a dump).
pub fn checksum_file(path: &Path) -> io::Result<String> {
    let mut hasher = Xxh3::new();
    let mut f = fs::File::open(path)?;
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = io::Read::read(&mut f, &mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:032x}", hasher.digest128()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_file_appears_only_on_commit_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.sql");
        let mut sink = Sink::file(&path, None).unwrap();
        sink.write_all(b"hello").unwrap();
        assert!(!path.exists());
        let written = sink.commit().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"hello");
        assert_eq!(written.bytes, 5);
        assert_eq!(written.checksum_hex(), checksum_file(&path).unwrap());
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn files_compressed_in_turn_with_one_reused_context_each_decompress_alone() {
        let dir = tempfile::tempdir().unwrap();
        let open = Dir::open(dir.path()).unwrap();
        let mut context = None;
        for (i, row) in ["(1,'a')", "(2,'b')", "(3,'c')"].iter().enumerate() {
            let path = dir.path().join(format!("t.{i}.sql.zst"));
            let name = format!("t.{i}.sql.zst");
            let mut sink = Sink::in_dir(&open, &name, Some(3), context.take()).unwrap();
            let text = format!("INSERT INTO t VALUES {row};\n").repeat(100 + i);
            sink.write_all(text.as_bytes()).unwrap();
            let (sealed, back) = sink.seal().unwrap();
            assert!(back.is_some(), "the context comes back");
            context = back;
            sealed.commit().unwrap();
            let stored = fs::read(&path).unwrap();
            assert_eq!(zstd::decode_all(&stored[..]).unwrap(), text.as_bytes());
        }
    }

    #[test]
    fn zstd_files_decompress_to_what_was_written_and_are_checksummed_as_stored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.sql.zst");
        let mut sink = Sink::file(&path, Some(3)).unwrap();
        let text = b"INSERT INTO t VALUES (1);\n".repeat(1000);
        sink.write_all(&text).unwrap();
        let written = sink.commit().unwrap();
        let stored = fs::read(&path).unwrap();
        assert_eq!(written.bytes, stored.len() as u64);
        assert!(stored.len() < text.len() / 10);
        assert_eq!(zstd::decode_all(&stored[..]).unwrap(), text);
        assert_eq!(written.checksum_hex(), checksum_file(&path).unwrap());
    }

    #[test]
    fn an_uncommitted_file_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.sql");
        let mut sink = Sink::file(&path, Some(1)).unwrap();
        sink.write_all(b"partial").unwrap();
        drop(sink);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_failed_dump_keeps_an_older_complete_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.sql");
        fs::write(&path, b"old complete dump").unwrap();
        let mut sink = Sink::file(&path, None).unwrap();
        sink.write_all(b"new partial").unwrap();
        drop(sink);
        assert_eq!(fs::read(&path).unwrap(), b"old complete dump");
    }

    #[test]
    fn a_missing_directory_is_a_write_error_naming_the_path() {
        let err = Sink::file(Path::new("/nonexistent-dir/x/dump.sql"), None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("/nonexistent-dir/x/dump.sql"));
        assert_eq!(err.exit_code(), crate::error::exit::WRITE_ERROR);
    }

    #[test]
    fn a_directory_target_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let err = Sink::file(dir.path(), None).err().unwrap();
        assert!(err.to_string().contains("Is a directory"), "{err}");
        assert_eq!(err.exit_code(), crate::error::exit::WRITE_ERROR);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn devices_fifos_and_dev_stdout_are_written_in_place_regular_files_replaced() {
        assert_eq!(
            target_kind(Path::new("/dev/null")).unwrap(),
            TargetKind::InPlace
        );
        assert_eq!(
            target_kind(Path::new("/dev/stdout")).unwrap(),
            TargetKind::InPlace
        );
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("stdout");
        std::os::unix::fs::symlink("/proc/self/fd/1", &link).unwrap();
        assert_eq!(target_kind(&link).unwrap(), TargetKind::InPlace);
        let file = dir.path().join("f.sql");
        assert_eq!(target_kind(&file).unwrap(), TargetKind::Replace);
        fs::write(&file, b"old").unwrap();
        assert_eq!(target_kind(&file).unwrap(), TargetKind::Replace);
        assert_eq!(target_kind(dir.path()).unwrap(), TargetKind::Directory);

        // /dev/null stays a device.
        let null = dir.path().join("null");
        std::os::unix::fs::symlink("/dev/null", &null).unwrap();
        let mut sink = Sink::file(&null, None).unwrap();
        sink.write_all(b"dump").unwrap();
        sink.commit().unwrap();
        assert!(fs::symlink_metadata(&null).unwrap().is_symlink());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 3);

        // A socket cannot be opened (ENXIO, as mysqldump's fopen finds): an error, and the
        // socket is not replaced.
        let socket = dir.path().join("socket");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let err = Sink::file(&socket, None).err().unwrap();
        assert_eq!(err.exit_code(), crate::error::exit::WRITE_ERROR, "{err}");
        use std::os::unix::fs::FileTypeExt;
        assert!(
            fs::symlink_metadata(&socket)
                .unwrap()
                .file_type()
                .is_socket()
        );
    }

    #[test]
    fn a_regular_file_under_dev_shm_is_replaced_not_written_in_place() {
        let shm = Path::new("/dev/shm");
        let Ok(dir) = tempfile::tempdir_in(shm) else {
            eprintln!("SKIPPED: /dev/shm is not writable here");
            return;
        };
        let file = dir.path().join("dump.sql");
        fs::write(&file, b"old").unwrap();
        assert_eq!(target_kind(&file).unwrap(), TargetKind::Replace);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/dev/fd/1", &link).unwrap();
        assert_eq!(target_kind(&link).unwrap(), TargetKind::InPlace);
    }

    #[test]
    fn a_dangling_symlink_is_kept_and_the_file_it_names_created() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("backups")).unwrap();
        let link = dir.path().join("latest.sql");
        std::os::unix::fs::symlink("backups/dump.sql", &link).unwrap();
        let mut sink = Sink::file(&link, None).unwrap();
        sink.write_all(b"new").unwrap();
        sink.commit().unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(
            fs::read(dir.path().join("backups/dump.sql")).unwrap(),
            b"new"
        );
    }

    #[test]
    fn a_replaced_file_of_the_user_keeps_its_group_and_mode_a_new_one_is_0600() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dump.sql");
        let write = |bytes: &[u8]| {
            let mut sink = Sink::file(&file, None).unwrap();
            sink.write_all(bytes).unwrap();
            sink.commit().unwrap();
        };
        write(b"first");
        assert_eq!(fs::metadata(&file).unwrap().mode() & 0o7777, 0o600);
        fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
        // Tests run as root, who may give a file any group (as a DBA's cron job finds it).
        let root = rustix::process::geteuid().is_root();
        if root {
            std::os::unix::fs::chown(&file, None, Some(4321)).unwrap();
        }
        // A hard link keeps the previous dump (the rename replaces the name only).
        let link = dir.path().join("previous.sql");
        fs::hard_link(&file, &link).unwrap();
        write(b"second");
        assert_eq!(fs::read(&link).unwrap(), b"first");
        let meta = fs::metadata(&file).unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"second");
        assert_eq!(meta.mode() & 0o7777, 0o640);
        if root {
            assert_eq!(meta.gid(), 4321);
            // Another user's file (planted for root's -r in /tmp): not handed to them.
            fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
            std::os::unix::fs::chown(&file, Some(1234), Some(4321)).unwrap();
            write(b"third");
            let meta = fs::metadata(&file).unwrap();
            assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o600));
        }
    }

    #[test]
    fn a_symlink_to_a_regular_file_is_kept_and_its_target_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.sql");
        fs::write(&real, b"old").unwrap();
        let link = dir.path().join("link.sql");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut sink = Sink::file(&link, None).unwrap();
        sink.write_all(b"new").unwrap();
        sink.commit().unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"new");
    }
}
