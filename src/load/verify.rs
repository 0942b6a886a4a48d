//! Checking the dump before anything changes on the target: every file the plan reads must
//! exist, have the manifest's size and XXH3-128 checksum, and a `.zst` file must decompress
//! to its end without error (a file compressed from a damaged stream has the right checksum
//! but still cannot load). Each file is read once (zstd files are checksummed and decoded in
//! the same pass), on `threads` threads.
//!
//! A failure names the file and what is wrong with it; all damaged files are listed. The
//! load then stops with exit code 5 before connecting. This check alone cannot hold for a
//! file changed after it: the loader hashes each chunk again as it loads it (`chunkfile`)
//! and fails the chunk, uncommitted, when its bytes differ. Schema and post-object files
//! are small and read whole when run, right after this check. Not for: loading.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use xxhash_rust::xxh3::Xxh3;

use super::error::{LoadError, Result};
use super::plan::FileRef;
use super::script::is_zstd;
use crate::output::sink::checksum_file;

/// What was checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verified {
    pub files: usize,
    pub bytes: u64,
}

/// Checks `files` under `dir` (see the module doc).
pub fn verify(dir: &Path, files: &[FileRef], threads: usize) -> Result<Verified> {
    let next = AtomicUsize::new(0);
    let failures: Mutex<Vec<(usize, String)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, files.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(f) = files.get(i) else { break };
                    if let Err(why) = check(&dir.join(&f.relative), f) {
                        failures.lock().expect("failures lock").push((i, why));
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().expect("failures lock");
    failures.sort_by_key(|(i, _)| *i);
    if let Some((i, why)) = failures.first() {
        let mut message = format!("{why}; nothing was loaded");
        if failures.len() > 1 {
            let others: Vec<String> = failures[1..]
                .iter()
                .take(10)
                .map(|(i, why)| format!("{}: {why}", files[*i].relative))
                .collect();
            message.push_str(&format!(
                " ({} more damaged: {}{})",
                failures.len() - 1,
                others.join("; "),
                if failures.len() > 11 { "; ..." } else { "" }
            ));
        }
        return Err(LoadError::dump(dir.join(&files[*i].relative), message));
    }
    Ok(Verified {
        files: files.len(),
        bytes: files.iter().map(|f| f.bytes).sum(),
    })
}

/// One file: exists, size, checksum, and for zstd a complete decode.
fn check(path: &Path, f: &FileRef) -> Result<(), String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err("missing (the manifest lists it)".into());
        }
        Err(e) => return Err(e.to_string()),
    };
    if meta.len() != f.bytes {
        return Err(format!(
            "is {} bytes, the manifest says {} (truncated or changed)",
            meta.len(),
            f.bytes
        ));
    }
    let (checksum, decode_error) = if is_zstd(path) {
        checksum_and_decode(path).map_err(|e| e.to_string())?
    } else {
        (checksum_file(path).map_err(|e| e.to_string())?, None)
    };
    if checksum != f.checksum {
        return Err(format!(
            "checksum {checksum} does not match the manifest's {} (the file is damaged or changed)",
            f.checksum
        ));
    }
    if let Some(e) = decode_error {
        return Err(format!("damaged zstd data: {e}"));
    }
    Ok(())
}

/// Hashes everything read through it.
struct Hashing<R> {
    inner: R,
    hasher: Xxh3,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// The checksum of a zstd file's stored bytes and, if decoding failed, why.
fn checksum_and_decode(path: &Path) -> io::Result<(String, Option<String>)> {
    let mut h = Hashing {
        inner: File::open(path)?,
        hasher: Xxh3::new(),
    };
    let decode_error = {
        let decoder = zstd::stream::read::Decoder::with_buffer(BufReader::new(&mut h));
        match decoder {
            Ok(mut d) => io::copy(&mut d, &mut io::sink())
                .err()
                .map(|e| e.to_string()),
            Err(e) => Some(e.to_string()),
        }
    };
    // Whatever the decoder did not read still counts for the checksum.
    io::copy(&mut h, &mut io::sink())?;
    Ok((format!("{:032x}", h.hasher.digest128()), decode_error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::sink::Sink;

    fn write(dir: &Path, name: &str, bytes: &[u8], zstd: Option<i32>) -> FileRef {
        let mut s = Sink::file(&dir.join(name), zstd).unwrap();
        s.write_all(bytes).unwrap();
        let w = s.commit().unwrap();
        FileRef {
            relative: name.into(),
            bytes: w.bytes,
            checksum: w.checksum_hex(),
        }
    }

    #[test]
    fn good_files_pass() {
        let d = tempfile::tempdir().unwrap();
        let files = vec![
            write(d.path(), "a.sql", b"SELECT 1;\n", None),
            write(
                d.path(),
                "b.sql.zst",
                &b"INSERT INTO t VALUES (1);\n".repeat(1000),
                Some(3),
            ),
        ];
        let v = verify(d.path(), &files, 2).unwrap();
        assert_eq!(v.files, 2);
    }

    #[test]
    fn missing_resized_and_flipped_files_are_named() {
        let d = tempfile::tempdir().unwrap();
        let a = write(d.path(), "a.sql", b"SELECT 1;\n", None);
        let b = write(d.path(), "b.sql", b"SELECT 2;\n", None);
        let c = write(d.path(), "c.sql", b"SELECT 3;\n", None);
        std::fs::remove_file(d.path().join("a.sql")).unwrap();
        std::fs::write(d.path().join("b.sql"), b"SELECT 2;\n\n").unwrap();
        std::fs::write(d.path().join("c.sql"), b"SELECT 4;\n").unwrap();
        let e = verify(d.path(), &[a, b, c], 1).unwrap_err().to_string();
        assert!(e.contains("a.sql: missing"), "{e}");
        assert!(
            e.contains("b.sql: is 11 bytes, the manifest says 10"),
            "{e}"
        );
        assert!(e.contains("c.sql: checksum"), "{e}");
    }

    #[test]
    fn a_truncated_zstd_file_with_a_matching_checksum_is_damaged() {
        let d = tempfile::tempdir().unwrap();
        let mut f = write(d.path(), "t.csv.zst", &b"1,\"x\"\n".repeat(5000), Some(3));
        let bytes = std::fs::read(d.path().join("t.csv.zst")).unwrap();
        let cut = &bytes[..bytes.len() - 7];
        std::fs::write(d.path().join("t.csv.zst"), cut).unwrap();
        f.bytes = cut.len() as u64;
        f.checksum = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(cut));
        let e = verify(d.path(), &[f], 1).unwrap_err().to_string();
        assert!(e.contains("t.csv.zst: damaged zstd data"), "{e}");
    }
}
