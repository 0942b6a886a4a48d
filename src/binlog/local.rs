//! `LocalDirStore`: a `SegmentStore` in a local directory, for tests and for looking at
//! an archive by hand. The repository (`backup`) is the real store.
//!
//! Layout: records numbered from 1, `00000001.json` (a segment's description or a gap),
//! and for a segment `00000001.seg` (its bytes). A record exists once its `.json` does:
//! the bytes are written first (temporary name, fsync, rename), the description last, so a
//! crash leaves at most a `.seg` without description, which is ignored and overwritten.
//! Files are 0600. A second store on the same directory refuses (`flock` on `lock`).
//!
//! Not for: production archives (no compression, no encryption, no remote copies).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub use crate::binlog::segment::Record;
use crate::binlog::segment::{
    Gap, ResumePoint, Segment, SegmentSource, SegmentStore, StoreError, rebuild_file,
};

pub struct LocalDirStore {
    dir: PathBuf,
    /// Held for the store's life: the `flock` that keeps a second archiver out.
    _lock: File,
    /// The number of the last record.
    last: u64,
}

impl LocalDirStore {
    /// Opens (creating) the archive in `dir` and takes its lock; refuses if another store
    /// holds it.
    pub fn open(dir: &Path) -> Result<LocalDirStore, StoreError> {
        fs::create_dir_all(dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(dir.join("lock"))?;
        // SAFETY: flock on an open descriptor we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(format!(
                "{} is in use by another archiver ({})",
                dir.display(),
                std::io::Error::last_os_error()
            )
            .into());
        }
        let last = record_numbers(dir)?.last().copied().unwrap_or(0);
        Ok(LocalDirStore {
            dir: dir.to_path_buf(),
            _lock: lock,
            last,
        })
    }

    fn path(&self, n: u64, ext: &str) -> PathBuf {
        self.dir.join(format!("{n:08}.{ext}"))
    }

    /// Every record, in order, with its number.
    pub fn records(&self) -> Result<Vec<(u64, Record)>, StoreError> {
        record_numbers(&self.dir)?
            .into_iter()
            .map(|n| {
                let text = fs::read(self.path(n, "json"))?;
                Ok((n, serde_json::from_slice(&text)?))
            })
            .collect()
    }

    /// The bytes of segment record `n`, checked against its CRC32.
    pub fn segment_bytes(&self, n: u64, segment: &Segment) -> Result<Vec<u8>, StoreError> {
        let bytes = fs::read(self.path(n, "seg"))?;
        // `end - start` from a damaged (or hand-edited) description must not underflow.
        if crc32fast::hash(&bytes) != segment.crc32
            || segment.end.checked_sub(segment.start) != Some(bytes.len() as u64)
        {
            return Err(format!(
                "segment {n} ({}:{}) is damaged",
                segment.file, segment.start
            )
            .into());
        }
        Ok(bytes)
    }

    /// Rebuilds binlog `file` from its archived segments (see `segment::rebuild_file`);
    /// `None` when no segment of it is archived. Refuses segments that do not follow each
    /// other exactly.
    pub fn rebuild(&self, file: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut fde = None;
        let mut parts = Vec::new();
        let mut end = None;
        for (n, r) in self.records()? {
            let Record::Segment(s) = r else { continue };
            if s.file != file {
                continue;
            }
            if let Some(e) = end
                && e != s.start
            {
                return Err(format!("{file}: segment {n} starts at {}, not {e}", s.start).into());
            }
            end = Some(s.end);
            fde.get_or_insert_with(|| s.format_description.clone());
            parts.push(self.segment_bytes(n, &s)?);
        }
        Ok(fde.map(|fde| rebuild_file(&fde, parts.iter().map(Vec::as_slice))))
    }

    fn write_record(&mut self, record: &Record, bytes: Option<&[u8]>) -> Result<(), StoreError> {
        let n = self.last + 1;
        if let Some(bytes) = bytes {
            write_atomically(&self.path(n, "seg"), bytes)?;
        }
        write_atomically(&self.path(n, "json"), &serde_json::to_vec_pretty(record)?)?;
        File::open(&self.dir)?.sync_all()?;
        self.last = n;
        Ok(())
    }
}

/// Writes `path` under a temporary name, fsyncs it and renames it into place (0600).
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    Ok(())
}

/// The numbers of the records whose description exists, ascending.
fn record_numbers(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name.strip_suffix(".json").and_then(|s| s.parse().ok()) {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

impl SegmentStore for LocalDirStore {
    async fn resume_point(&mut self) -> Result<Option<ResumePoint>, StoreError> {
        if self.last == 0 {
            return Ok(None);
        }
        let text = fs::read(self.path(self.last, "json"))?;
        Ok(Some(match serde_json::from_slice::<Record>(&text)? {
            Record::Segment(s) => s.resume_point(),
            Record::Gap(g) => ResumePoint {
                position: g.resume_at,
                format_description: None,
            },
        }))
    }

    async fn commit(&mut self, segment: &Segment, bytes: &[u8]) -> Result<(), StoreError> {
        self.write_record(&Record::Segment(segment.clone()), Some(bytes))
    }

    async fn record_gap(&mut self, gap: &Gap) -> Result<(), StoreError> {
        self.write_record(&Record::Gap(gap.clone()), None)
    }
}

impl SegmentSource for LocalDirStore {
    async fn records(&self) -> Result<Vec<Record>, StoreError> {
        Ok(LocalDirStore::records(self)?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    async fn segment_bytes(&self, segment: &Segment) -> Result<Vec<u8>, StoreError> {
        for (n, r) in LocalDirStore::records(self)? {
            if let Record::Segment(s) = r
                && s.file == segment.file
                && s.start == segment.start
            {
                return LocalDirStore::segment_bytes(self, n, &s);
            }
        }
        Err(format!(
            "segment {}:{} is not in the archive",
            segment.file, segment.start
        )
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_whose_end_is_before_its_start_is_damage_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDirStore::open(dir.path()).unwrap();
        let bytes = b"event bytes".to_vec();
        let segment = Segment {
            file: "b.000001".into(),
            start: 100,
            end: 50,
            events: 1,
            first_event_time: 0,
            last_event_time: 0,
            gtids: Vec::new(),
            ends_in_transaction: false,
            rotate_to: None,
            ends_with_stop: false,
            format_description: Vec::new(),
            crc32: crc32fast::hash(&bytes),
            server: None,
        };
        fs::write(store.path(1, "seg"), &bytes).unwrap();
        let e = store.segment_bytes(1, &segment).unwrap_err();
        assert!(e.to_string().contains("damaged"), "{e}");
    }
}
