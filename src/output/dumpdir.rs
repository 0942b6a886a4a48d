//! Where files are created: an open directory (`Dir`) in which a file is written under a
//! temporary name and published under its own name, and the dump directory of `rdump --dir`
//! (`DumpDir`), claimed safely and locked for the whole dump.
//!
//! Every file and subdirectory is created relative to the directory's descriptor, never by
//! a path: a temporary file with `O_CREAT | O_EXCL | O_NOFOLLOW` (mode 0600), a
//! subdirectory with `mkdirat` and opened with `O_NOFOLLOW` (for each file written in it:
//! a dump holds descriptors for the files in flight, not one per database). A symlink
//! planted inside a directory is therefore never followed.
//!
//! A dump directory is either created by rdump (`mkdir`, which fails if anything exists
//! under the name; mode 0700) or an existing one accepted only if it is a real directory
//! (not a symlink), owned by the running user, not writable by group or others, and empty
//! or an rdump directory whose dump did not finish (it has a journal and no manifest: its
//! files are then removed first, and anything rdump did not write there refuses the
//! directory). rdump never changes the mode of a directory it did not create.
//!
//! The journal, `.rdump-files`, names every file and subdirectory the dump creates, written
//! before each is created (a crash leaves nothing unnamed in it; temporary files are
//! recognised by their `.rdump-partial` suffix). It also carries the lock: an exclusive
//! `flock`, held until the `DumpDir` and every `Dir` of it are dropped, so a second rdump
//! into the same directory fails at once. The manifest is published with `link`, which
//! never replaces an existing manifest; the journal is removed after it.
//!
//! Not for: what goes into the files (see `sink`, `dir`, `manifest`).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustix::fs::{self as rfs, AtFlags, FlockOperation, Mode, OFlags};

use crate::error::{Error, Result};

/// The journal of a dump directory (see the module doc).
pub const JOURNAL: &str = ".rdump-files";

/// The suffix of every temporary file rdump writes.
pub const PARTIAL_SUFFIX: &str = ".rdump-partial";

/// An open directory that files are created in (see the module doc).
#[derive(Clone)]
pub struct Dir(Arc<DirInner>);

struct DirInner {
    at: At,
    /// For messages.
    path: PathBuf,
    /// A dump directory's: the journal and this directory's place in the dump ("" or
    /// "db/").
    journal: Option<(Arc<File>, String)>,
    /// Publishing may replace an existing file (`-r`), or must not (a dump directory).
    replace: bool,
}

enum At {
    /// Open for the directory's life: a dump's root, `-r`'s directory.
    Open(OwnedFd),
    /// A database's directory in a dump: opened from the dump's root (never through a
    /// symlink) for each file, and held only while that file is written, so a dump of
    /// thousands of databases holds no descriptor for each (`ulimit -n` is often 1024).
    Below { root: Dir, name: String },
}

/// A file being written under a temporary name in a `Dir`: removed when dropped unless
/// `publish`ed.
pub struct TempFile {
    dir: Dir,
    /// The directory's descriptor opened for this file (`At::Below`).
    own: Option<OwnedFd>,
    temp: String,
    name: String,
    published: bool,
}

impl Dir {
    /// The directory at `path` (symlinks in the path followed: the user named it), for
    /// files that may replace existing ones (`-r`, `--tab`).
    pub fn open(path: &Path) -> io::Result<Dir> {
        let path = if path.as_os_str().is_empty() {
            Path::new(".")
        } else {
            path
        };
        let flags = OFlags::DIRECTORY | OFlags::CLOEXEC;
        // A directory one may write but not list (mode -wx) is opened as a path only:
        // enough to create and rename in, not to fsync.
        let fd = match rfs::open(path, flags | OFlags::RDONLY, Mode::empty()) {
            Err(rustix::io::Errno::ACCESS) => rfs::open(path, flags | OFlags::PATH, Mode::empty()),
            other => other,
        }?;
        Ok(Dir(Arc::new(DirInner {
            at: At::Open(fd),
            path: path.to_path_buf(),
            journal: None,
            replace: true,
        })))
    }

    /// The directory's own descriptor (`At::Open`).
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.0.at {
            At::Open(fd) => Some(fd.as_fd()),
            At::Below { .. } => None,
        }
    }

    /// A descriptor of a directory that has none of its own (`At::Below`), opened now.
    fn reopen(&self) -> io::Result<Option<OwnedFd>> {
        match &self.0.at {
            At::Open(_) => Ok(None),
            At::Below { root, name } => {
                let root = root.fd().expect("a dump's root is open");
                Ok(Some(rfs::openat(
                    root,
                    name.as_str(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?))
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// A new empty file (mode 0600) that becomes `name` on `TempFile::publish`. In a dump
    /// directory, `name` is written to the journal first.
    pub fn create_temp(&self, name: &str) -> io::Result<(File, TempFile)> {
        if let Some((journal, prefix)) = &self.0.journal {
            note(journal, &format!("{prefix}{name}"))?;
        }
        let own = self.reopen()?;
        let fd = match &own {
            Some(fd) => fd.as_fd(),
            None => self.fd().expect("an open directory"),
        };
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut tries = 0;
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let temp = format!(
                ".{name}.{:x}{n:x}{nanos:x}{PARTIAL_SUFFIX}",
                std::process::id()
            );
            match rfs::openat(
                fd,
                temp.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            ) {
                Ok(fd) => {
                    let file = TempFile {
                        dir: self.clone(),
                        own,
                        temp,
                        name: name.to_string(),
                        published: false,
                    };
                    return Ok((File::from(fd), file));
                }
                Err(rustix::io::Errno::EXIST) if tries < 100 => tries += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Makes the directory's entries durable.
    pub fn sync(&self) -> io::Result<()> {
        match self.reopen()? {
            Some(fd) => rfs::fsync(&fd),
            None => rfs::fsync(self.fd().expect("an open directory")),
        }
        .map_err(io::Error::from)
    }
}

/// `temp` becomes `name` unless `name` exists: a hard link (NFS has it), else a rename
/// that refuses to replace (filesystems without hard links).
fn publish_no_replace(fd: BorrowedFd<'_>, temp: &str, name: &str) -> io::Result<()> {
    use rustix::io::Errno;
    match rfs::linkat(fd, temp, fd, name, AtFlags::empty()) {
        Ok(()) => {
            let _ = rfs::unlinkat(fd, temp, AtFlags::empty());
            Ok(())
        }
        Err(Errno::PERM | Errno::NOTSUP | Errno::MLINK | Errno::XDEV) => {
            rfs::renameat_with(fd, temp, fd, name, rfs::RenameFlags::NOREPLACE)
                .map_err(io::Error::from)
        }
        Err(e) => Err(e.into()),
    }
}

impl TempFile {
    /// The file's own name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The directory's descriptor.
    fn fd(&self) -> BorrowedFd<'_> {
        match &self.own {
            Some(fd) => fd.as_fd(),
            None => self.dir.fd().expect("an open directory"),
        }
    }

    /// The temporary file takes its name: replacing what is there (`Dir::open`), or
    /// failing if `name` exists (a dump directory); the directory entry is made durable.
    pub fn publish(mut self) -> io::Result<()> {
        let fd = self.fd();
        if self.dir.0.replace {
            rfs::renameat(fd, self.temp.as_str(), fd, self.name.as_str())?;
        } else {
            publish_no_replace(fd, &self.temp, &self.name)?;
        }
        self.published = true;
        let _ = rfs::fsync(self.fd());
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.published {
            let _ = rfs::unlinkat(self.fd(), self.temp.as_str(), AtFlags::empty());
        }
    }
}

/// Appends one line to the journal (`O_APPEND`: one write, whole, whoever writes).
fn note(journal: &File, line: &str) -> io::Result<()> {
    let mut journal = journal;
    journal.write_all(format!("{line}\n").as_bytes())
}

/// A dump directory, claimed and locked (see the module doc).
pub struct DumpDir {
    root: Dir,
    subdirs: Mutex<HashMap<String, Dir>>,
}

impl DumpDir {
    /// Creates the dump directory at `path`, or accepts the existing one if it is safe to
    /// dump into (see the module doc), and locks it. `manifest` is the manifest's file name:
    /// a directory holding one is refused.
    pub fn claim(path: &Path, manifest: &str) -> Result<DumpDir> {
        if path.as_os_str().is_empty() {
            return Err(Error::Usage(
                "--dir needs a directory name (an empty one was given)".into(),
            ));
        }
        let (fd, created) = open_or_create(path)?;
        let st = rfs::fstat(&fd).map_err(|e| Error::write(path, e.into()))?;
        let me = rustix::process::geteuid().as_raw();
        if created {
            // rdump's own directory: 0700 whatever the umask.
            rfs::fchmod(&fd, Mode::from_raw_mode(0o700))
                .map_err(|e| Error::write(path, e.into()))?;
        } else {
            check_safe(path, st.st_uid, st.st_mode, me)?;
        }
        let refused = |why: String| Error::Usage(format!("{}: {why}", path.display()));
        if exists_at(&fd, manifest) {
            return Err(refused(format!(
                "already holds a dump ({manifest}); choose another directory"
            )));
        }
        let (journal, journal_is_new) =
            open_journal(&fd).map_err(|e| Error::write(path.join(JOURNAL), e))?;
        let remove_new_journal = |fd: &OwnedFd| {
            if journal_is_new {
                let _ = rfs::unlinkat(fd, JOURNAL, AtFlags::empty());
            }
        };
        match rfs::flock(&journal, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(refused(
                    "another rdump is dumping into this directory (it holds the lock on its \
                     .rdump-files); choose another directory"
                        .into(),
                ));
            }
            Err(e) => {
                remove_new_journal(&fd);
                return Err(Error::write(path.join(JOURNAL), e.into()));
            }
        }
        // Checked again under the lock: a dump may have ended since.
        if exists_at(&fd, manifest) {
            remove_new_journal(&fd);
            return Err(refused(format!(
                "already holds a dump ({manifest}); choose another directory"
            )));
        }
        let mut journal = File::from(journal);
        let clear = if journal_is_new {
            // A directory rdump did not start a dump in: it must be empty.
            let entries = entries(&fd, "").map_err(|e| Error::write(path, e))?;
            if let Some(stranger) = entries.iter().find(|(n, _)| n != JOURNAL) {
                remove_new_journal(&fd);
                return Err(refused(format!(
                    "is not empty (it holds {:?}); rdump dumps into a new or empty directory, \
                     or one where an rdump dump did not finish",
                    stranger.0
                )));
            }
            None
        } else {
            let mut text = String::new();
            journal
                .read_to_string(&mut text)
                .map_err(|e| Error::write(path.join(JOURNAL), e))?;
            Some(text)
        };
        if let Some(text) = clear {
            clear_unfinished(&fd, &text).map_err(refused)?;
            journal
                .set_len(0)
                .map_err(|e| Error::write(path.join(JOURNAL), e))?;
        }
        let journal = Arc::new(journal);
        Ok(DumpDir {
            root: Dir(Arc::new(DirInner {
                at: At::Open(fd),
                path: path.to_path_buf(),
                journal: Some((journal, String::new())),
                replace: false,
            })),
            subdirs: Mutex::new(HashMap::new()),
        })
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    /// The directory itself, for files at its top (the manifest).
    pub fn root(&self) -> &Dir {
        &self.root
    }

    /// The subdirectory `name` (one level: a database's), created on first use.
    pub fn subdir(&self, name: &str) -> Result<Dir> {
        let mut subdirs = self.subdirs.lock().expect("subdirs lock");
        if let Some(d) = subdirs.get(name) {
            return Ok(d.clone());
        }
        let path = self.root.path().join(name);
        let (journal, _) = self
            .root
            .0
            .journal
            .as_ref()
            .expect("a dump directory's journal");
        note(journal, &format!("{name}/")).map_err(|e| Error::write(&path, e))?;
        let parent = self.root.fd().expect("a dump's root is open");
        match rfs::mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(Error::write(&path, e.into())),
        }
        // A real directory, not a symlink (checked now; each file opens it the same way).
        rfs::openat(
            parent,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::write(&path, e.into()))?;
        let dir = Dir(Arc::new(DirInner {
            at: At::Below {
                root: self.root.clone(),
                name: name.to_string(),
            },
            path,
            journal: Some((Arc::clone(journal), format!("{name}/"))),
            replace: false,
        }));
        subdirs.insert(name.to_string(), dir.clone());
        Ok(dir)
    }

    /// The dump is complete: its journal goes (the lock with it, when the last `Dir` of
    /// the dump is dropped).
    pub fn finish(self) {
        if let Some(fd) = self.root.fd() {
            let _ = rfs::unlinkat(fd, JOURNAL, AtFlags::empty());
        }
        let _ = self.root.sync();
    }
}

/// `mkdir`s the last component of `path` (relative to its parent, opened as the user named
/// it) and opens it without following a symlink there. Returns whether it was created.
fn open_or_create(path: &Path) -> Result<(OwnedFd, bool)> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let Some(name) = path.file_name() else {
        // ".", "..", "/": an existing directory, never a symlink.
        let fd = rfs::open(path, flags, Mode::empty()).map_err(|e| Error::write(path, e.into()))?;
        return Ok((fd, false));
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // A parent one may write but not list (mode -wx) is opened as a path only: enough to
    // create the directory in and open it.
    let parent_flags = OFlags::DIRECTORY | OFlags::CLOEXEC;
    let parent = match rfs::open(parent, parent_flags | OFlags::RDONLY, Mode::empty()) {
        Err(rustix::io::Errno::ACCESS) => {
            rfs::open(parent, parent_flags | OFlags::PATH, Mode::empty())
        }
        other => other,
    }
    .map_err(|e| Error::write(parent, e.into()))?;
    let created = match rfs::mkdirat(&parent, name, Mode::from_raw_mode(0o700)) {
        Ok(()) => true,
        Err(rustix::io::Errno::EXIST) => false,
        Err(e) => return Err(Error::write(path, e.into())),
    };
    match rfs::openat(&parent, name, flags, Mode::empty()) {
        Ok(fd) => Ok((fd, created)),
        Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR)
            if rfs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|st| {
                rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::Symlink
            }) =>
        {
            Err(Error::Usage(format!(
                "{}: is a symlink; rdump dumps only into a real directory (name its target \
                 instead)",
                path.display()
            )))
        }
        Err(rustix::io::Errno::NOTDIR) => Err(Error::Usage(format!(
            "{}: exists and is not a directory",
            path.display()
        ))),
        Err(e) => Err(Error::write(path, e.into())),
    }
}

/// An existing directory is dumped into only if it is the user's and no one else can write
/// into it.
fn check_safe(path: &Path, uid: u32, mode: u32, me: u32) -> Result<()> {
    if uid != me {
        return Err(Error::Usage(format!(
            "{}: is owned by another user (uid {uid}); rdump dumps only into a directory of \
             its own user (uid {me}): choose a new directory, rdump creates it",
            path.display()
        )));
    }
    if mode & 0o022 != 0 {
        return Err(Error::Usage(format!(
            "{}: is writable by {} (mode {:o}); rdump dumps only into a directory no one \
             else can write, and does not change one it did not create: choose a new \
             directory, rdump creates it",
            path.display(),
            if mode & 0o002 != 0 {
                "others"
            } else {
                "its group"
            },
            mode & 0o7777
        )));
    }
    Ok(())
}

fn exists_at(fd: &OwnedFd, name: &str) -> bool {
    rfs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
}

/// Opens the journal, creating it if there is none (true then).
fn open_journal(fd: &OwnedFd) -> io::Result<(OwnedFd, bool)> {
    let flags = OFlags::RDWR | OFlags::APPEND | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rfs::openat(
        fd,
        JOURNAL,
        flags | OFlags::CREATE | OFlags::EXCL,
        Mode::from_raw_mode(0o600),
    ) {
        Ok(j) => Ok((j, true)),
        Err(rustix::io::Errno::EXIST) => {
            let j = rfs::openat(fd, JOURNAL, flags, Mode::empty())?;
            let st = rfs::fstat(&j)?;
            if rfs::FileType::from_raw_mode(st.st_mode) != rfs::FileType::RegularFile {
                return Err(io::Error::other("the journal is not a regular file"));
            }
            Ok((j, false))
        }
        Err(e) => Err(e.into()),
    }
}

/// The entries of a directory (or of its subdirectory `sub`, not followed if a symlink),
/// with whether each is a directory (not followed either).
fn entries(fd: &OwnedFd, sub: &str) -> io::Result<Vec<(String, bool)>> {
    let dir = if sub.is_empty() {
        rfs::openat(
            fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?
    } else {
        rfs::openat(
            fd,
            sub,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?
    };
    let mut out = Vec::new();
    for entry in rfs::Dir::read_from(&dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "." || name == ".." {
            continue;
        }
        let st = rfs::statat(&dir, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)?;
        let is_dir = rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::Directory;
        out.push((name, is_dir));
    }
    Ok(out)
}

fn is_partial(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(PARTIAL_SUFFIX)
}

/// Removes what an unfinished dump wrote (its journal's names, and temporary files), after
/// checking that nothing else is in the directory. On refusal, says what is in the way.
fn clear_unfinished(fd: &OwnedFd, journal: &str) -> std::result::Result<(), String> {
    let named: std::collections::HashSet<&str> = journal.lines().collect();
    let mut files: Vec<String> = Vec::new();
    let mut dirs: Vec<String> = Vec::new();
    let stranger = |name: &str| {
        format!(
            "holds {name:?}, which an unfinished rdump dump did not write; rdump clears an \
             unfinished dump's directory only when it holds nothing else"
        )
    };
    let listed = entries(fd, "").map_err(|e| e.to_string())?;
    for (name, is_dir) in listed {
        if name == JOURNAL {
            continue;
        }
        if is_dir && named.contains(format!("{name}/").as_str()) {
            for (inner, inner_is_dir) in entries(fd, &name).map_err(|e| e.to_string())? {
                let relative = format!("{name}/{inner}");
                if inner_is_dir || !(named.contains(relative.as_str()) || is_partial(&inner)) {
                    return Err(stranger(&relative));
                }
                files.push(relative);
            }
            dirs.push(name);
        } else if !is_dir && (named.contains(name.as_str()) || is_partial(&name)) {
            files.push(name);
        } else {
            return Err(stranger(&name));
        }
    }
    for f in &files {
        rfs::unlinkat(fd, f.as_str(), AtFlags::empty()).map_err(|e| format!("{f}: {e}"))?;
    }
    for d in &dirs {
        rfs::unlinkat(fd, d.as_str(), AtFlags::REMOVEDIR).map_err(|e| format!("{d}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn publish(dir: &Dir, name: &str, bytes: &[u8]) -> io::Result<()> {
        let (mut f, temp) = dir.create_temp(name)?;
        f.write_all(bytes)?;
        temp.publish()
    }

    #[test]
    fn a_new_directory_is_created_0700_and_a_file_is_published_only_once() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("dump");
        let d = DumpDir::claim(&path, "rdump.json").unwrap();
        assert_eq!(mode(&path), 0o700);
        publish(d.root(), "rdump.json", b"one").unwrap();
        let err = publish(d.root(), "rdump.json", b"two").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
        assert_eq!(fs::read(path.join("rdump.json")).unwrap(), b"one");
        d.finish();
        let left: Vec<_> = fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("rdump.json")]);
    }

    #[test]
    fn a_shared_or_foreign_or_symlinked_or_nonempty_directory_is_refused_untouched() {
        let t = tempfile::tempdir().unwrap();
        let shared = t.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
        let e = DumpDir::claim(&shared, "rdump.json")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("writable by others (mode 1777)"), "{e}");
        assert_eq!(mode(&shared), 0o1777);
        assert_eq!(fs::read_dir(&shared).unwrap().count(), 0);

        let target = t.path().join("target");
        fs::create_dir(&target).unwrap();
        std::os::unix::fs::symlink(&target, t.path().join("link")).unwrap();
        let e = DumpDir::claim(&t.path().join("link"), "rdump.json")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("is a symlink"), "{e}");
        assert_eq!(fs::read_dir(&target).unwrap().count(), 0);

        fs::write(target.join("notes.txt"), b"mine").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o700)).unwrap();
        let e = DumpDir::claim(&target, "rdump.json")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("is not empty (it holds \"notes.txt\")"), "{e}");
        let left: Vec<_> = fs::read_dir(&target)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("notes.txt")]);

        let e = check_safe(Path::new("d"), 1234, 0o40700, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("owned by another user (uid 1234)"), "{e}");
        assert!(DumpDir::claim(Path::new(""), "rdump.json").is_err());
    }

    #[test]
    fn an_empty_existing_directory_of_the_user_is_accepted_and_its_mode_kept() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("mine");
        fs::create_dir(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o750)).unwrap();
        let d = DumpDir::claim(&path, "rdump.json").unwrap();
        assert_eq!(mode(&path), 0o750);
        drop(d);
    }

    #[test]
    fn a_second_claim_fails_while_the_first_holds_the_lock() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("dump");
        let first = DumpDir::claim(&path, "rdump.json").unwrap();
        let sub = first.subdir("db").unwrap();
        let e = DumpDir::claim(&path, "rdump.json")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("another rdump is dumping into this directory"),
            "{e}"
        );
        drop(first);
        // A `Dir` of the dump still holds the lock.
        assert!(DumpDir::claim(&path, "rdump.json").is_err());
        drop(sub);
        assert!(DumpDir::claim(&path, "rdump.json").is_ok());
    }

    #[test]
    fn an_unfinished_dump_is_cleared_and_a_stranger_file_refuses_it() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("dump");
        {
            let d = DumpDir::claim(&path, "rdump.json").unwrap();
            let db = d.subdir("db").unwrap();
            publish(&db, "t.00000.sql", b"old chunk").unwrap();
            // As after a kill: a temporary file stays.
            fs::write(path.join("db/.t.00001.sql.1234.rdump-partial"), b"half").unwrap();
        }
        // A symlink planted where a chunk will go is not followed.
        let victim = t.path().join("victim");
        fs::write(&victim, b"victim").unwrap();
        {
            let d = DumpDir::claim(&path, "rdump.json").unwrap();
            assert!(
                !path.join("db").exists(),
                "the old dump's files were cleared"
            );
            let db = d.subdir("db").unwrap();
            std::os::unix::fs::symlink(&victim, path.join("db/t.00000.sql")).unwrap();
            let e = publish(&db, "t.00000.sql", b"new").unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
            assert_eq!(fs::read(&victim).unwrap(), b"victim");
            fs::remove_file(path.join("db/t.00000.sql")).unwrap();
            fs::write(path.join("db/notes.txt"), b"stranger").unwrap();
        }
        let e = DumpDir::claim(&path, "rdump.json")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("holds \"db/notes.txt\""), "{e}");
        assert_eq!(fs::read(path.join("db/notes.txt")).unwrap(), b"stranger");
    }
}
