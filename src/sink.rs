//! Sinks: where encoded bytes go. A result file is written under a temporary name in its
//! target directory (mode 0600) and renamed into place only by `commit`, so an interrupted
//! or failed dump never leaves a file that looks complete; dropping an uncommitted sink
//! deletes the temporary file.
//!
//! Not for: formatting (see `encode`) or deciding what is written (see `dump`).

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const BUFFER: usize = 256 * 1024;

enum Target {
    Stdout(BufWriter<io::Stdout>),
    File {
        /// Writes go through a plain handle on the temporary file, so errors read as the
        /// OS's ("No space left on device"), without the temporary name.
        writer: BufWriter<fs::File>,
        tmp: tempfile::NamedTempFile,
        path: PathBuf,
    },
}

pub struct Sink {
    target: Target,
    /// For messages: the final path, or "stdout".
    name: PathBuf,
}

impl Sink {
    pub fn stdout() -> Sink {
        Sink {
            target: Target::Stdout(BufWriter::with_capacity(BUFFER, io::stdout())),
            name: PathBuf::from("stdout"),
        }
    }

    /// A file that appears at `path` only when `commit` succeeds.
    pub fn file(path: &Path) -> Result<Sink> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // NamedTempFile creates the file with mode 0600.
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{file_name}."))
            .suffix(".rdump-partial")
            .tempfile_in(&dir)
            .map_err(|e| Error::write(path, io::Error::new(e.kind(), strip_path(&e))))?;
        let handle = tmp
            .as_file()
            .try_clone()
            .map_err(|e| Error::write(path, e))?;
        Ok(Sink {
            target: Target::File {
                writer: BufWriter::with_capacity(BUFFER, handle),
                tmp,
                path: path.to_path_buf(),
            },
            name: path.to_path_buf(),
        })
    }

    pub fn name(&self) -> &Path {
        &self.name
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        let r = match &mut self.target {
            Target::Stdout(w) => w.write_all(bytes),
            Target::File { writer, .. } => writer.write_all(bytes),
        };
        r.map_err(|e| Error::write(&self.name, e))
    }

    /// Flushes, syncs and (for a file) renames the temporary file into place.
    pub fn commit(self) -> Result<()> {
        let name = self.name;
        match self.target {
            Target::Stdout(mut w) => w.flush().map_err(|e| Error::write(&name, e)),
            Target::File { writer, tmp, path } => {
                let file = writer
                    .into_inner()
                    .map_err(|e| Error::write(&name, e.into_error()))?;
                file.sync_all().map_err(|e| Error::write(&name, e))?;
                tmp.persist(&path)
                    .map_err(|e| Error::write(&name, e.error))?;
                // Make the rename itself durable.
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    if let Ok(d) = fs::File::open(dir) {
                        let _ = d.sync_all();
                    }
                }
                Ok(())
            }
        }
    }
}

/// tempfile's errors append `at path "<temp name>"`; the user knows the final path only.
fn strip_path(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" at path ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_file_appears_only_on_commit_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.sql");
        let mut sink = Sink::file(&path).unwrap();
        sink.write_all(b"hello").unwrap();
        assert!(!path.exists());
        sink.commit().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"hello");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_uncommitted_file_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.sql");
        let mut sink = Sink::file(&path).unwrap();
        sink.write_all(b"partial").unwrap();
        drop(sink);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_failed_dump_keeps_an_older_complete_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.sql");
        fs::write(&path, b"old complete dump").unwrap();
        let mut sink = Sink::file(&path).unwrap();
        sink.write_all(b"new partial").unwrap();
        drop(sink);
        assert_eq!(fs::read(&path).unwrap(), b"old complete dump");
    }

    #[test]
    fn a_missing_directory_is_a_write_error_naming_the_path() {
        let err = Sink::file(Path::new("/nonexistent-dir/x/dump.sql"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("/nonexistent-dir/x/dump.sql"));
        assert_eq!(err.exit_code(), crate::error::exit::WRITE_ERROR);
    }
}
