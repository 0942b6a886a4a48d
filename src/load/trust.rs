//! Whether the dump can be trusted not to change under the load: rload executes the SQL in
//! a dump's files, so a dump someone else could edit is someone else's SQL run with the
//! loader's privileges. Before anything is checked or loaded, the dump directory, the
//! directories inside it that the plan reads from, the manifest and every file the plan
//! reads must be owned by the running user or root, be no symlink (inside the dump), and
//! be writable by neither group nor others; every directory passed through to reach the
//! dump likewise (those of the path as given, symlinks followed, not only of the resolved
//! path), except that a sticky directory such as `/tmp` may be writable by others (no one
//! can rename another's entry there), and every symlink followed on the way must be the
//! user's or root's. Nobody else can then replace a file, or redirect the path, between
//! this check and its load.
//!
//! `--skip-permission-check` turns this off (a dump on a filesystem without Unix owners, or
//! one deliberately shared). Not for: sizes and checksums (see `verify`).

use std::collections::{BTreeSet, VecDeque};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use super::error::{LoadError, Result};
use super::plan::FileRef;
use crate::format::manifest;

/// Checks the dump at `dir` and the files the load reads (see the module doc).
pub fn check(dir: &Path, files: &[FileRef]) -> Result<()> {
    let me = rustix::process::geteuid().as_raw();
    let canonical = resolve(dir, me)?;
    check_one(&canonical, me, Place::Dump)?;
    let mut inside: BTreeSet<&str> = BTreeSet::new();
    inside.insert(manifest::FILE_NAME);
    for f in files {
        let mut prefix = String::new();
        let components: Vec<Component> = Path::new(&f.relative).components().collect();
        for c in &components[..components.len().saturating_sub(1)] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(&c.as_os_str().to_string_lossy());
            check_one(&canonical.join(&prefix), me, Place::Inside)?;
        }
        inside.insert(&f.relative);
    }
    for f in inside {
        check_one(&canonical.join(f), me, Place::Inside)?;
    }
    Ok(())
}

/// Resolves `dir` as the kernel does, checking every directory passed through (as
/// `Place::Above`) and every symlink followed (owned by the user or root): the dump's path
/// as given, not only its resolved one, must be one no one else can redirect (a symlink in
/// a directory others can write could be pointed at another dump after the check).
fn resolve(dir: &Path, me: u32) -> Result<PathBuf> {
    let failed = |e: std::io::Error| LoadError::dump(dir, e.to_string());
    let absolute = std::path::absolute(dir).map_err(failed)?;
    let mut pending: VecDeque<PathBuf> = components(&absolute);
    let mut at = PathBuf::from("/");
    let mut followed = 0;
    while let Some(next) = pending.pop_front() {
        match next.components().next() {
            Some(Component::RootDir) => at = PathBuf::from("/"),
            Some(Component::ParentDir) => {
                at.pop();
            }
            Some(Component::Normal(_)) => {
                check_one(&at, me, Place::Above)?;
                let entry = at.join(&next);
                let meta = std::fs::symlink_metadata(&entry).map_err(failed)?;
                if !meta.file_type().is_symlink() {
                    at = entry;
                    continue;
                }
                if meta.uid() != me && meta.uid() != 0 {
                    return Err(LoadError::Refused(format!(
                        "{}: the symlink {} on the way to the dump is owned by another user \
                         (uid {}); rload loads a dump only when no one but you and root can \
                         change it (fix the permissions, or load with \
                         --skip-permission-check)",
                        dir.display(),
                        entry.display(),
                        meta.uid()
                    )));
                }
                followed += 1;
                if followed > 40 {
                    return Err(failed(std::io::Error::from_raw_os_error(libc::ELOOP)));
                }
                let target = std::fs::read_link(&entry).map_err(failed)?;
                let mut rest = components(&target);
                rest.extend(pending);
                pending = rest;
            }
            _ => {}
        }
    }
    Ok(at)
}

fn components(path: &Path) -> VecDeque<PathBuf> {
    path.components()
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// A directory above the dump's.
    Above,
    /// The dump directory itself (its path resolved).
    Dump,
    /// A file or directory in it, not followed if a symlink.
    Inside,
}

fn check_one(path: &Path, me: u32, place: Place) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        // `verify` names a missing file with the rest of the damage.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && place == Place::Inside => {
            return Ok(());
        }
        Err(e) => return Err(LoadError::dump(path, e.to_string())),
    };
    let refuse = |why: String| {
        Err(LoadError::Refused(format!(
            "{}: {why}; rload loads a dump only when no one but you and root can change it \
             (fix the permissions, or load with --skip-permission-check)",
            path.display()
        )))
    };
    if meta.file_type().is_symlink() {
        return refuse("is a symlink inside the dump".into());
    }
    let (uid, mode) = (meta.uid(), meta.mode());
    if uid != me && uid != 0 {
        return refuse(format!("is owned by another user (uid {uid})"));
    }
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !(place == Place::Above && sticky) {
        return refuse(format!(
            "is writable by {} (mode {:o})",
            if mode & 0o002 != 0 {
                "others"
            } else {
                "its group"
            },
            mode & 0o7777
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn file(relative: &str) -> FileRef {
        FileRef {
            relative: relative.into(),
            bytes: 0,
            checksum: String::new(),
        }
    }

    fn dump() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("db")).unwrap();
        fs::write(t.path().join("rdump.json"), b"{}").unwrap();
        fs::write(t.path().join("db/t.00000.sql"), b"").unwrap();
        for p in ["rdump.json", "db/t.00000.sql"] {
            fs::set_permissions(t.path().join(p), fs::Permissions::from_mode(0o600)).unwrap();
        }
        t
    }

    #[test]
    fn a_dump_only_its_user_can_write_passes() {
        let t = dump();
        check(t.path(), &[file("db/t.00000.sql")]).unwrap();
    }

    #[test]
    fn files_or_directories_others_can_write_or_symlinks_are_refused() {
        let t = dump();
        let chunk = t.path().join("db/t.00000.sql");
        fs::set_permissions(&chunk, fs::Permissions::from_mode(0o666)).unwrap();
        let e = check(t.path(), &[file("db/t.00000.sql")]).unwrap_err();
        assert!(
            e.to_string().contains("writable by others (mode 666)"),
            "{e}"
        );
        assert_eq!(e.exit_code(), 1);
        fs::set_permissions(&chunk, fs::Permissions::from_mode(0o600)).unwrap();

        fs::set_permissions(t.path().join("db"), fs::Permissions::from_mode(0o770)).unwrap();
        let e = check(t.path(), &[file("db/t.00000.sql")]).unwrap_err();
        assert!(
            e.to_string().contains("/db: is writable by its group"),
            "{e}"
        );
        fs::set_permissions(t.path().join("db"), fs::Permissions::from_mode(0o700)).unwrap();

        std::os::unix::fs::chown(&chunk, Some(1234), None).unwrap();
        let e = check(t.path(), &[file("db/t.00000.sql")]).unwrap_err();
        assert!(
            e.to_string().contains("owned by another user (uid 1234)"),
            "{e}"
        );

        fs::remove_file(&chunk).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &chunk).unwrap();
        let e = check(t.path(), &[file("db/t.00000.sql")]).unwrap_err();
        assert!(
            e.to_string().contains("is a symlink inside the dump"),
            "{e}"
        );

        // A symlink to the dump in a directory others can write: they could point it
        // elsewhere after the check.
        fs::set_permissions(&chunk, fs::Permissions::from_mode(0o600)).unwrap();
        fs::remove_file(&chunk).unwrap();
        fs::write(&chunk, b"").unwrap();
        fs::set_permissions(&chunk, fs::Permissions::from_mode(0o600)).unwrap();
        check(t.path(), &[file("db/t.00000.sql")]).unwrap();
        let shared = tempfile::tempdir().unwrap();
        fs::set_permissions(shared.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let via = shared.path().join("current");
        std::os::unix::fs::symlink(t.path(), &via).unwrap();
        let e = check(&via, &[file("db/t.00000.sql")]).unwrap_err();
        assert!(
            e.to_string().contains("writable by others (mode 777)"),
            "{e}"
        );
        // In a directory only its owner can change, the symlink is followed.
        fs::set_permissions(shared.path(), fs::Permissions::from_mode(0o755)).unwrap();
        check(&via, &[file("db/t.00000.sql")]).unwrap();
        check(&via.join("db/.."), &[file("db/t.00000.sql")]).unwrap();
        // A symlink of another user (in /tmp, sticky, its owner may replace it).
        if rustix::process::geteuid().is_root() {
            std::os::unix::fs::lchown(&via, Some(1234), None).unwrap();
            let e = check(&via, &[]).unwrap_err();
            assert!(
                e.to_string()
                    .contains("is owned by another user (uid 1234)"),
                "{e}"
            );
        }

        fs::set_permissions(t.path(), fs::Permissions::from_mode(0o1777)).unwrap();
        let e = check(t.path(), &[]).unwrap_err();
        assert!(
            e.to_string().contains("writable by others (mode 1777)"),
            "{e}"
        );
    }
}
