//! Reading a chunk file while it loads: its stored bytes are counted (for the progress
//! bar) and hashed with the manifest's XXH3-128 as they are read, decompressed when it is a
//! `.zst` file. At its end, [`ChunkFile::finish`] hashes whatever the reader left unread and
//! compares the checksum with the manifest's, so a file changed after `verify` checked it
//! (same size or not) fails its chunk before the chunk commits.
//!
//! Not for: checking files before the load (see `verify`), running what is read (`data`).

use indicatif::ProgressBar;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use xxhash_rust::xxh3::Xxh3;

use super::script::is_zstd;

const BLOCK: usize = 256 * 1024;

/// The file's stored bytes, hashed and counted as they are read.
struct Hashed {
    file: File,
    hasher: Xxh3,
    counter: ProgressBar,
}

impl Read for Hashed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.counter.inc(n as u64);
        Ok(n)
    }
}

enum Body {
    Plain(BufReader<Hashed>),
    Zstd(BufReader<zstd::stream::read::Decoder<'static, BufReader<Hashed>>>),
}

/// A chunk file open for loading (see the module doc).
pub struct ChunkFile {
    body: Body,
}

impl ChunkFile {
    /// Opens `path`; every stored byte read advances `counter`.
    pub fn open(path: &Path, counter: ProgressBar) -> io::Result<ChunkFile> {
        let hashed = Hashed {
            file: File::open(path)?,
            hasher: Xxh3::new(),
            counter,
        };
        let body = if is_zstd(path) {
            Body::Zstd(BufReader::with_capacity(
                BLOCK,
                zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(BLOCK, hashed))?,
            ))
        } else {
            Body::Plain(BufReader::with_capacity(BLOCK, hashed))
        };
        Ok(ChunkFile { body })
    }

    /// Reads the rest of the stored file and returns its checksum, as the manifest writes it
    /// (32 lower-case hex digits).
    pub fn finish(self) -> io::Result<String> {
        let mut hashed = match self.body {
            Body::Plain(r) => r.into_inner(),
            Body::Zstd(r) => r.into_inner().finish().into_inner(),
        };
        io::copy(&mut hashed, &mut io::sink())?;
        Ok(format!("{:032x}", hashed.hasher.digest128()))
    }

    /// Like `finish`, and fails when the checksum is not `expected`, with a message for the
    /// file's error.
    pub fn check(self, expected: &str) -> Result<(), String> {
        let got = self
            .finish()
            .map_err(|e| format!("reading the file failed: {e}"))?;
        if got == expected {
            Ok(())
        } else {
            Err(format!(
                "changed after it was checked: the bytes loaded have checksum {got}, the \
                 manifest says {expected}"
            ))
        }
    }
}

impl Read for ChunkFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.body {
            Body::Plain(r) => r.read(buf),
            Body::Zstd(r) => r.read(buf),
        }
    }
}

impl BufRead for ChunkFile {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match &mut self.body {
            Body::Plain(r) => r.fill_buf(),
            Body::Zstd(r) => r.fill_buf(),
        }
    }

    fn consume(&mut self, amt: usize) {
        match &mut self.body {
            Body::Plain(r) => r.consume(amt),
            Body::Zstd(r) => r.consume(amt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::sink::Sink;

    fn write(dir: &Path, name: &str, bytes: &[u8], zstd: Option<i32>) -> String {
        let mut s = Sink::file(&dir.join(name), zstd).unwrap();
        s.write_all(bytes).unwrap();
        s.commit().unwrap().checksum_hex()
    }

    #[test]
    fn reads_decompressed_and_hashes_the_stored_bytes_also_when_read_in_part() {
        let d = tempfile::tempdir().unwrap();
        let text = b"INSERT INTO t VALUES (1);\n".repeat(20_000);
        for (name, zstd) in [("a.sql", None), ("a.sql.zst", Some(3))] {
            let sum = write(d.path(), name, &text, zstd);
            let counter = ProgressBar::hidden();
            let mut f = ChunkFile::open(&d.path().join(name), counter.clone()).unwrap();
            let mut all = Vec::new();
            f.read_to_end(&mut all).unwrap();
            assert_eq!(all, text, "{name}");
            assert_eq!(f.finish().unwrap(), sum, "{name}");
            let stored = std::fs::metadata(d.path().join(name)).unwrap().len();
            assert_eq!(counter.position(), stored, "{name}");
            // Read only in part: the rest still counts for the checksum.
            let mut f = ChunkFile::open(&d.path().join(name), ProgressBar::hidden()).unwrap();
            let mut some = [0u8; 100];
            f.read_exact(&mut some).unwrap();
            assert_eq!(f.finish().unwrap(), sum, "{name}, read in part");
        }
    }

    #[test]
    fn a_changed_file_fails_its_check() {
        let d = tempfile::tempdir().unwrap();
        let sum = write(d.path(), "a.sql", b"INSERT INTO t VALUES (1);\n", None);
        std::fs::write(d.path().join("a.sql"), b"INSERT INTO t VALUES (2);\n").unwrap();
        let mut f = ChunkFile::open(&d.path().join("a.sql"), ProgressBar::hidden()).unwrap();
        io::copy(&mut f, &mut io::sink()).unwrap();
        let e = f.check(&sum).unwrap_err();
        assert!(e.contains("changed after it was checked"), "{e}");
    }
}
