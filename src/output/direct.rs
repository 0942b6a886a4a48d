//! A file written around the page cache: whole aligned blocks go to the disk with
//! `O_DIRECT` from a writer thread, while the caller fills the next block; the last partial
//! block is written normally. For the dump's chunk and result files, which are written
//! once, sequentially, and not read back by the dump.
//!
//! Why: on the project's 2-core VM the kernel's buffered write path (copying into the page
//! cache, ext4's delayed allocation and buffer heads, dropping the pages again) was ~45% of
//! `rdump --dir`'s client CPU in a `perf` profile of sysbench 8x1M, even with the sink's
//! write-behind. A C program writing 1.5 GB: 0.5 s of system CPU written behind, 0.1 s with
//! `O_DIRECT`. The writes are moved to a thread because a direct write waits for the
//! device, which would stall the connection the caller reads from.
//!
//! A file that never fills a block (schema files, the manifest) starts no thread. When the
//! filesystem refuses `O_DIRECT` (at open or on a write: `EINVAL`), the file is written
//! normally instead; the caller sees no difference but speed.
//!
//! Not for: naming, committing or checksumming files (see `sink`).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Bytes per direct write. A multiple of every logical block size in use (512, 4096). Two
/// blocks per open file: 1 MiB blocks put `--dir --threads=8 --format=csv --zstd` at the
/// test's 64 MB memory bound; 512 KiB cost no measurable speed.
const BLOCK: usize = 512 * 1024;
/// Alignment of the blocks in memory and on disk.
const ALIGN: usize = 4096;

/// One block-sized, `ALIGN`-aligned buffer (a slice of a slightly larger allocation).
struct Block {
    memory: Vec<u8>,
    start: usize,
    len: usize,
}

impl Block {
    fn new() -> Block {
        let memory = vec![0u8; BLOCK + ALIGN];
        let start = memory.as_ptr().align_offset(ALIGN);
        Block {
            memory,
            start,
            len: 0,
        }
    }

    /// Copies as much of `bytes` as fits; returns how much.
    fn fill(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(BLOCK - self.len);
        let at = self.start + self.len;
        self.memory[at..at + n].copy_from_slice(&bytes[..n]);
        self.len += n;
        n
    }

    fn is_full(&self) -> bool {
        self.len == BLOCK
    }

    fn bytes(&self) -> &[u8] {
        &self.memory[self.start..self.start + self.len]
    }
}

/// Writes blocks at increasing offsets, directly while the filesystem accepts it.
struct BlockWriter {
    direct: Option<File>,
    plain: File,
    offset: u64,
}

impl BlockWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let directly = match &self.direct {
            Some(direct) => direct.write_all_at(bytes, self.offset),
            None => self.plain.write_all_at(bytes, self.offset),
        };
        match directly {
            // A filesystem (or a short write) that breaks the alignment rules, or one that
            // opens but does not do direct writes: the rest of the file goes through the
            // page cache.
            Err(e) if self.direct.is_some() && refuses_direct(&e) => {
                self.direct = None;
                self.plain.write_all_at(bytes, self.offset)?;
            }
            other => other?,
        }
        self.offset += bytes.len() as u64;
        Ok(())
    }
}

/// The writer thread and the two channels that pass blocks to it and back.
struct Thread {
    full: SyncSender<Block>,
    free: Receiver<io::Result<Block>>,
    handle: JoinHandle<Option<BlockWriter>>,
}

impl Thread {
    /// Starts the writer thread with one spare block, so that the caller fills one block
    /// while the thread writes the other. Gives `writer` back if no thread can start.
    fn start(writer: BlockWriter) -> Result<Thread, BlockWriter> {
        let (give, take) = sync_channel::<BlockWriter>(1);
        let (full, blocks) = sync_channel::<Block>(1);
        let (done, free) = sync_channel::<io::Result<Block>>(2);
        done.send(Ok(Block::new()))
            .expect("room for the spare block");
        let spawned = std::thread::Builder::new()
            .name("rdump-direct".into())
            .spawn(move || {
                let mut writer = take.recv().ok()?;
                for mut block in blocks {
                    let written = writer.write(block.bytes()).map(|()| {
                        block.len = 0;
                        block
                    });
                    let failed = written.is_err();
                    if done.send(written).is_err() || failed {
                        break;
                    }
                }
                Some(writer)
            });
        let Ok(handle) = spawned else {
            return Err(writer);
        };
        give.send(writer).expect("the thread waits for its writer");
        Ok(Thread { full, free, handle })
    }
}

pub struct DirectFile {
    block: Block,
    /// Until the first block is full: the writer, not yet moved to a thread.
    writer: Option<BlockWriter>,
    thread: Option<Thread>,
}

impl DirectFile {
    /// A second handle for direct writes on the empty file `plain` is open on; gives `plain`
    /// back when the filesystem (or the platform) does not offer them.
    pub fn open(plain: File) -> Result<DirectFile, File> {
        let Some(direct) = reopen_direct(&plain) else {
            return Err(plain);
        };
        Ok(DirectFile::with(BlockWriter {
            direct: Some(direct),
            plain,
            offset: 0,
        }))
    }

    fn with(writer: BlockWriter) -> DirectFile {
        DirectFile {
            block: Block::new(),
            writer: Some(writer),
            thread: None,
        }
    }

    pub fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let n = self.block.fill(bytes);
            bytes = &bytes[n..];
            if self.block.is_full() {
                self.pass_block()?;
            }
        }
        Ok(())
    }

    /// Hands the full block to the writer thread (starting it on the first block) and takes
    /// back a written one, or the thread's write error. Without a thread (none could be
    /// started) the block is written here.
    fn pass_block(&mut self) -> io::Result<()> {
        if self.thread.is_none()
            && let Some(writer) = self.writer.take()
        {
            match Thread::start(writer) {
                Ok(thread) => self.thread = Some(thread),
                Err(writer) => self.writer = Some(writer),
            }
        }
        let Some(thread) = &self.thread else {
            let writer = self.writer.as_mut().expect("a writer without a thread");
            writer.write(self.block.bytes())?;
            self.block.len = 0;
            return Ok(());
        };
        let next = thread.free.recv().map_err(|_| stopped())??;
        let full = std::mem::replace(&mut self.block, next);
        thread.full.send(full).map_err(|_| stopped())
    }

    /// Writes what is left, waits for the writer thread, and returns the plain handle (for
    /// `fsync`).
    pub fn finish(mut self) -> io::Result<File> {
        let mut writer = match self.thread.take() {
            None => self.writer.take().expect("a writer without a thread"),
            Some(Thread { full, free, handle }) => {
                drop(full);
                // The thread's error, if a block failed since the last hand-over.
                for written in free {
                    written?;
                }
                handle.join().ok().flatten().ok_or_else(stopped)?
            }
        };
        // The last, partial block: the whole blocks of it directly, the rest normally.
        let bytes = self.block.bytes();
        let whole = bytes.len() / ALIGN * ALIGN;
        writer.write(&bytes[..whole])?;
        writer.direct = None;
        writer.write(&bytes[whole..])?;
        Ok(writer.plain)
    }
}

/// The same file opened again with `O_DIRECT`, through the descriptor (not the name, which
/// another process could replace in the meantime).
#[cfg(target_os = "linux")]
fn reopen_direct(plain: &File) -> Option<File> {
    use std::os::fd::AsRawFd;
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(format!("/proc/self/fd/{}", plain.as_raw_fd()))
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn reopen_direct(_: &File) -> Option<File> {
    None
}

/// Errors of a direct write that plain writes would not have.
fn refuses_direct(e: &io::Error) -> bool {
    #[cfg(target_os = "linux")]
    {
        matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = e;
        false
    }
}

fn stopped() -> io::Error {
    io::Error::other("the file's writer thread stopped")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(sizes: &[usize]) -> (Vec<u8>, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let plain = File::create(&path).unwrap();
        let mut file = match DirectFile::open(plain) {
            Ok(f) => f,
            Err(_) => {
                eprintln!("SKIPPED: no O_DIRECT on {}", dir.path().display());
                return (Vec::new(), Vec::new());
            }
        };
        let mut expected = Vec::new();
        for (i, &n) in sizes.iter().enumerate() {
            let piece: Vec<u8> = (0..n).map(|j| (i * 31 + j) as u8).collect();
            file.write(&piece).unwrap();
            expected.extend_from_slice(&piece);
        }
        file.finish().unwrap().sync_all().unwrap();
        (std::fs::read(&path).unwrap(), expected)
    }

    #[test]
    fn a_small_file_is_written_without_a_thread() {
        let (got, expected) = written(&[10, 0, 3000]);
        assert_eq!(got, expected);
    }

    #[test]
    fn blocks_and_an_unaligned_tail_arrive_in_order() {
        let (got, expected) = written(&[BLOCK - 1, 2, 3 * BLOCK + ALIGN + 17, 100_000]);
        assert_eq!(got.len(), expected.len());
        assert!(got == expected);
    }

    #[test]
    fn an_exact_number_of_blocks_has_no_tail() {
        let (got, expected) = written(&[BLOCK, BLOCK]);
        assert!(got == expected);
    }

    #[test]
    fn a_write_error_of_the_thread_reaches_the_caller() {
        // /dev/full refuses O_DIRECT: its plain handle stands in, written by the thread.
        let Ok(plain) = OpenOptions::new().write(true).open("/dev/full") else {
            return;
        };
        let mut file = DirectFile::with(BlockWriter {
            direct: None,
            plain,
            offset: 0,
        });
        let block = vec![7u8; BLOCK];
        let mut result = Ok(());
        for _ in 0..4 {
            result = file.write(&block);
            if result.is_err() {
                break;
            }
        }
        let err = match result {
            Err(e) => e,
            Ok(()) => file.finish().unwrap_err(),
        };
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    }
}
