//! A file written around the page cache: whole aligned blocks go to the disk with
//! `O_DIRECT`, submitted asynchronously (Linux AIO, `io_submit`) while the caller fills the
//! next block; the last partial block is written normally. For the dump's chunk and result
//! files, which are written once, sequentially, and not read back by the dump.
//!
//! Why direct: on the project's 2-core VM the kernel's buffered write path (copying into the
//! page cache, ext4's delayed allocation and buffer heads, dropping the pages again) was
//! ~45% of `rdump --dir`'s client CPU in a `perf` profile of sysbench 8x1M, even with the
//! sink's write-behind. A C program writing 1.5 GB: 0.5 s of system CPU written behind, 0.1 s
//! with `O_DIRECT`.
//!
//! Why asynchronous: a direct write waits for the device, which would stall the connection
//! the caller reads from. A writer thread per file did the waiting before, but every 512 KiB
//! block then cost two or three sleeps and wake-ups (the thread waiting for the disk, then
//! for the next block; the caller for a free block when the thread had not run yet): over
//! TCP to a local server, sysbench 8x1M, 5,700 of `rdump --dir -t2`'s 11,000 voluntary
//! context switches were the writer threads' (`perf record -e sched:sched_switch`). With
//! AIO nobody sleeps unless the disk is behind: the caller takes a block back
//! (`io_getevents`) only when it needs its memory for the next one, and with three in
//! flight the oldest has mostly completed by then. Measured on one 2-core VM (AMD EPYC,
//! Linux 6.18.44, load 1.5 to 8), alternating (benches/README.md, issue 15; a hypothesis
//! until another machine confirms it): voluntary switches over TCP 9,600–10,700 ->
//! 1,600–4,000 (medians of three runs), over the unix socket 9,100–11,700 -> 1,700–2,900,
//! the client's CPU unchanged.
//!
//! The cost: ext4 (and XFS for unaligned ones) complete a direct write that extends the file
//! before `io_submit` returns, so the file is grown sparse ahead of the writes
//! (`ftruncate`, `GROW` at a time, never past the file-size limit, `ulimit -f`, which would
//! get the process killed) and cut to its length by `finish`; the blocks written
//! into that hole are allocated as unwritten extents and converted at completion by the
//! kernel's workqueue (kworker CPU: ~0.1 s more per 1.5 GB than the extending writes of
//! the thread, which the dump's own CPU does not show).
//!
//! A file that never fills a block (schema files, the manifest) sets up no AIO. When the
//! filesystem refuses `O_DIRECT` (at open, on a submission or a write: `EINVAL`), the file
//! is written normally instead; without AIO (`io_setup` fails: a kernel without it, a
//! seccomp filter, `fs.aio-max-nr` spent) the blocks are written directly by the caller.
//! The caller sees no difference but speed.
//!
//! Not for: naming, committing or checksumming files (see `sink`).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};

/// Bytes per direct write. A multiple of every logical block size in use (512, 4096).
const BLOCK: usize = 256 * 1024;
/// Blocks per open file: the one being filled and up to `BLOCKS - 1` in flight, 1 MiB in
/// all, as the two 512 KiB blocks of the writer thread before (1 MiB blocks, 2 MiB per file,
/// put `--dir --threads=8 --format=csv --zstd` at the test's 64 MB memory bound). Three in
/// flight rather than one 512 KiB: the caller waits only when the oldest of three has not
/// completed, not whenever the one before has not.
const BLOCKS: usize = 4;
/// Alignment of the blocks in memory and on disk.
const ALIGN: usize = 4096;
/// How far the file is grown ahead of the writes at a time (see `DirectFile::submit`):
/// once for most chunk files (tens of MB), sparse until written.
const GROW: u64 = 64 * 1024 * 1024;

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

/// Writes at given offsets, directly while the filesystem accepts it.
struct BlockWriter {
    direct: Option<File>,
    plain: File,
}

impl BlockWriter {
    fn write_at(&mut self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let directly = match &self.direct {
            Some(direct) => direct.write_all_at(bytes, offset),
            None => self.plain.write_all_at(bytes, offset),
        };
        match directly {
            // A filesystem (or a short write) that breaks the alignment rules, or one that
            // opens but does not do direct writes: the rest of the file goes through the
            // page cache.
            Err(e) if self.direct.is_some() && refuses_direct(&e) => {
                self.direct = None;
                self.plain.write_all_at(bytes, offset)
            }
            other => other,
        }
    }
}

pub struct DirectFile {
    /// The block being filled.
    block: Block,
    writer: BlockWriter,
    /// Where the next block goes.
    offset: u64,
    /// The file's length as this file set it (grown ahead of the writes).
    len: u64,
    /// Set up on the first full block; `None` when AIO is not available.
    aio: Option<aio::Context>,
    aio_tried: bool,
    /// No more submissions (a failed one, or the file turned to plain writes); what is in
    /// flight is still taken back.
    aio_off: bool,
    /// Written blocks, to be filled again.
    free: Vec<Block>,
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
        }))
    }

    fn with(writer: BlockWriter) -> DirectFile {
        DirectFile {
            block: Block::new(),
            writer,
            offset: 0,
            len: 0,
            aio: None,
            aio_tried: false,
            aio_off: false,
            free: Vec::new(),
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

    /// Submits the full block (setting up AIO on the first one), first taking back the
    /// oldest block in flight when `BLOCKS - 1` are; the next block to fill is a written
    /// one, or a new one while there are fewer than `BLOCKS`. Without AIO the block is
    /// written here.
    fn pass_block(&mut self) -> io::Result<()> {
        let offset = self.offset;
        self.offset += BLOCK as u64;
        if !self.aio_tried {
            self.aio_tried = true;
            if self.writer.direct.is_some() {
                self.aio = aio::Context::new(BLOCKS);
            }
        }
        if self
            .aio
            .as_ref()
            .is_some_and(|aio| aio.in_flight() >= BLOCKS - 1)
        {
            let landed = self.land_oldest()?;
            self.free.push(landed);
        }
        if self.submit(offset)? {
            let next = self.free.pop().unwrap_or_else(Block::new);
            let full = std::mem::replace(&mut self.block, next);
            self.aio.as_mut().expect("submitted").push(full, offset);
            return Ok(());
        }
        self.writer.write_at(self.block.bytes(), offset)?;
        self.block.len = 0;
        Ok(())
    }

    /// Submits the full block at `offset`, growing the file first so that the write does
    /// not extend it (ext4 completes an extending direct write before `io_submit`
    /// returns). `false` when the block was not submitted (no AIO, or it is off): it is to
    /// be written here.
    fn submit(&mut self, offset: u64) -> io::Result<bool> {
        if self.aio_off || self.aio.is_none() {
            return Ok(false);
        }
        let end = offset + BLOCK as u64;
        if end > self.len {
            // Never past the file-size limit (`ulimit -f`): growing the file past it gets
            // the process killed (SIGXFSZ) where its bytes may well fit under it. A block
            // that ends past it is written here, as a plain write would be.
            let grown = (end + GROW).min(file_size_limit());
            if grown < end || self.writer.plain.set_len(grown).is_err() {
                self.aio_off = true;
                return Ok(false);
            }
            self.len = grown;
        }
        let submitted = match (&self.aio, &self.writer.direct) {
            (Some(aio), Some(direct)) => aio.submit(direct, self.block.bytes(), offset).is_ok(),
            _ => false,
        };
        // Not submitted: a file that turned to plain writes, no room for the request, or a
        // file that takes no asynchronous direct writes.
        self.aio_off |= !submitted;
        Ok(submitted)
    }

    /// Waits for the oldest block in flight and gives it back written and empty. A short
    /// write is finished here; a block the filesystem refused to write directly is written
    /// normally, and so is the rest of the file.
    fn land_oldest(&mut self) -> io::Result<Block> {
        let aio = self.aio.as_mut().expect("a block in flight");
        let (mut block, offset, written) = aio.wait_oldest()?;
        match written {
            Ok(n) if n >= block.len => {}
            Ok(n) => self
                .writer
                .write_at(&block.bytes()[n..], offset + n as u64)?,
            Err(e) if refuses_direct(&e) => {
                self.aio_off = true;
                self.writer.direct = None;
                self.writer.write_at(block.bytes(), offset)?;
            }
            Err(e) => return Err(e),
        }
        block.len = 0;
        Ok(block)
    }

    /// Waits for the blocks in flight, writes what is left, cuts the file to its length,
    /// and returns the plain handle (for `fsync`).
    pub fn finish(mut self) -> io::Result<File> {
        while self.aio.as_ref().is_some_and(|aio| aio.in_flight() > 0) {
            self.land_oldest()?;
        }
        // Nothing in flight: the context goes back to the pool.
        self.aio = None;
        // The last, partial block: the whole blocks of it directly, the rest normally.
        let bytes = self.block.bytes();
        let whole = bytes.len() / ALIGN * ALIGN;
        self.writer.write_at(&bytes[..whole], self.offset)?;
        self.writer.direct = None;
        self.writer
            .write_at(&bytes[whole..], self.offset + whole as u64)?;
        let end = self.offset + bytes.len() as u64;
        if self.len > end {
            self.writer.plain.set_len(end)?;
        }
        Ok(self.writer.plain)
    }
}

/// Linux AIO (`io_setup`, `io_submit`, `io_getevents`) for the direct writes of one file.
/// Contexts are kept for the next file when a file is done (`io_destroy` waits for an RCU
/// grace period: a sleep per file).
#[cfg(target_os = "linux")]
mod aio {
    use std::collections::VecDeque;
    use std::fs::File;
    use std::io;
    use std::os::fd::AsRawFd;
    use std::sync::Mutex;

    use super::Block;

    /// The kernel's `struct iocb` (linux/aio_abi.h).
    #[repr(C)]
    #[derive(Default)]
    struct Iocb {
        data: u64,
        #[cfg(target_endian = "little")]
        key: u32,
        #[cfg(target_endian = "little")]
        rw_flags: i32,
        #[cfg(target_endian = "big")]
        rw_flags: i32,
        #[cfg(target_endian = "big")]
        key: u32,
        lio_opcode: u16,
        reqprio: i16,
        fildes: u32,
        buf: u64,
        nbytes: u64,
        offset: i64,
        reserved2: u64,
        flags: u32,
        resfd: u32,
    }

    /// The kernel's `struct io_event`.
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct IoEvent {
        data: u64,
        obj: u64,
        res: i64,
        res2: i64,
    }

    const IOCB_CMD_PWRITE: u16 = 1;
    /// Idle contexts kept for the next files (each holds a few kernel pages).
    const POOL: usize = 64;

    /// Contexts with nothing in flight and every event taken, by size.
    static IDLE: Mutex<Vec<(libc::c_ulong, usize)>> = Mutex::new(Vec::new());

    /// A write in flight: its block (whose memory the kernel reads until it completes),
    /// offset, and result once its event came.
    struct InFlight {
        block: Block,
        offset: u64,
        done: Option<io::Result<usize>>,
    }

    pub struct Context {
        id: libc::c_ulong,
        size: usize,
        in_flight: VecDeque<InFlight>,
    }

    impl Context {
        /// A context for `size` requests at a time (an idle one, or a new one); `None`
        /// without AIO.
        pub fn new(size: usize) -> Option<Context> {
            let idle = IDLE.lock().ok().and_then(|mut idle| {
                let at = idle.iter().position(|&(_, s)| s == size)?;
                Some(idle.swap_remove(at).0)
            });
            let id = match idle {
                Some(id) => id,
                None => {
                    let mut id: libc::c_ulong = 0;
                    // SAFETY: io_setup writes the new context's id into `id`.
                    let r =
                        unsafe { libc::syscall(libc::SYS_io_setup, size as libc::c_long, &mut id) };
                    if r != 0 {
                        return None;
                    }
                    id
                }
            };
            Some(Context {
                id,
                size,
                in_flight: VecDeque::new(),
            })
        }

        pub fn in_flight(&self) -> usize {
            self.in_flight.len()
        }

        /// Submits a write of `bytes` at `offset` of `file`. `bytes` must stay allocated
        /// until the write is taken back: they are `block`'s, handed over by `push`.
        pub fn submit(&self, file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
            if self.in_flight.len() >= self.size {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut cb = Iocb {
                data: offset,
                lio_opcode: IOCB_CMD_PWRITE,
                fildes: file.as_raw_fd() as u32,
                buf: bytes.as_ptr() as u64,
                nbytes: bytes.len() as u64,
                offset: offset as i64,
                ..Iocb::default()
            };
            let mut list = [&mut cb as *mut Iocb];
            // SAFETY: one valid iocb, copied by the kernel during the call; the kernel
            // reads `bytes` until the write completes (kept alive, see above).
            let r = unsafe {
                libc::syscall(
                    libc::SYS_io_submit,
                    self.id,
                    1 as libc::c_long,
                    list.as_mut_ptr(),
                )
            };
            match r {
                1 => Ok(()),
                0 => Err(io::ErrorKind::WouldBlock.into()),
                _ => Err(io::Error::last_os_error()),
            }
        }

        /// Keeps `block`, just submitted at `offset`, until its write is taken back.
        pub fn push(&mut self, block: Block, offset: u64) {
            self.in_flight.push_back(InFlight {
                block,
                offset,
                done: None,
            });
        }

        /// Waits for the oldest write in flight (noting the others that complete) and gives
        /// back its block, offset, and the bytes it wrote or its error. An error of the
        /// wait itself leaves everything in flight.
        pub fn wait_oldest(&mut self) -> io::Result<(Block, u64, io::Result<usize>)> {
            let mut events = [IoEvent::default(); 8];
            let max = events.len().min(self.in_flight.len()) as libc::c_long;
            while self.in_flight.front().is_some_and(|w| w.done.is_none()) {
                // SAFETY: room for `max` events; no timeout.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_io_getevents,
                        self.id,
                        1 as libc::c_long,
                        max,
                        events.as_mut_ptr(),
                        std::ptr::null_mut::<libc::timespec>(),
                    )
                };
                if r < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(e);
                }
                for event in &events[..r as usize] {
                    let done = if event.res < 0 {
                        Err(io::Error::from_raw_os_error(-event.res as i32))
                    } else {
                        Ok(event.res as usize)
                    };
                    if let Some(w) = self
                        .in_flight
                        .iter_mut()
                        .find(|w| w.offset == event.data && w.done.is_none())
                    {
                        w.done = Some(done);
                    }
                }
            }
            let w = self.in_flight.pop_front().expect("a write in flight");
            Ok((w.block, w.offset, w.done.expect("completed")))
        }
    }

    impl Drop for Context {
        fn drop(&mut self) {
            if self.in_flight.is_empty()
                && let Ok(mut idle) = IDLE.lock()
                && idle.len() < POOL
            {
                idle.push((self.id, self.size));
                return;
            }
            // SAFETY: destroys this context; waits for (or cancels) the writes in flight,
            // so that their blocks, dropped after this, are no longer read.
            unsafe { libc::syscall(libc::SYS_io_destroy, self.id) };
        }
    }
}

/// No AIO here: every block is written by the caller.
#[cfg(not(target_os = "linux"))]
mod aio {
    use std::fs::File;
    use std::io;

    use super::Block;

    pub struct Context;

    impl Context {
        pub fn new(_: usize) -> Option<Context> {
            None
        }
        pub fn in_flight(&self) -> usize {
            0
        }
        pub fn submit(&self, _: &File, _: &[u8], _: u64) -> io::Result<()> {
            Err(io::ErrorKind::Unsupported.into())
        }
        pub fn push(&mut self, _: Block, _: u64) {}
        pub fn wait_oldest(&mut self) -> io::Result<(Block, u64, io::Result<usize>)> {
            Err(io::ErrorKind::Unsupported.into())
        }
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

/// The process's file-size limit (`RLIMIT_FSIZE`, `ulimit -f`) in bytes; `u64::MAX` when
/// there is none.
fn file_size_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: getrlimit writes into the struct given.
    if unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit) } != 0
        || limit.rlim_cur == libc::RLIM_INFINITY
    {
        return u64::MAX;
    }
    // `rlim_t` is u64 on Linux, not on every platform.
    #[allow(clippy::unnecessary_cast)]
    let limit = limit.rlim_cur as u64;
    limit
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
    fn a_small_file_is_written_without_aio() {
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
    fn a_file_grown_ahead_of_its_writes_ends_at_its_length() {
        // Past a growth step, ending inside the next one; and at a block edge.
        let past = GROW as usize + 2 * BLOCK;
        for sizes in [&[past - 5, BLOCK + 10][..], &[6 * BLOCK][..]] {
            let (got, expected) = written(sizes);
            assert_eq!(got.len(), expected.len());
            assert!(got == expected);
        }
    }

    #[test]
    fn a_file_dropped_with_a_write_in_flight_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let Ok(mut file) = DirectFile::open(File::create(dir.path().join("f")).unwrap()) else {
            return;
        };
        file.write(&vec![1u8; 3 * BLOCK]).unwrap();
        drop(file);
    }

    #[test]
    fn an_exact_number_of_blocks_has_no_tail() {
        let (got, expected) = written(&[BLOCK, BLOCK]);
        assert!(got == expected);
    }

    #[test]
    fn a_write_error_reaches_the_caller() {
        // /dev/full refuses O_DIRECT: its plain handle stands in.
        let Ok(plain) = OpenOptions::new().write(true).open("/dev/full") else {
            return;
        };
        let mut file = DirectFile::with(BlockWriter {
            direct: None,
            plain,
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
