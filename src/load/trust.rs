//! Whether the dump can be trusted not to change under the load: rload executes the SQL in
//! a dump's files, so a dump someone else could edit is someone else's SQL run with the
//! loader's privileges. Before anything is checked or loaded, the dump directory, the
//! directories inside it that the plan reads from, the manifest and every file the plan
//! reads must be owned by the running user or root, be no symlink (inside the dump), and
//! be writable by neither group nor others; the directories above the dump likewise, except
//! that a sticky directory such as `/tmp` may be writable by others (no one can rename
//! another's entry there). Nobody else can then replace a file between this check and its
//! load.
//!
//! `--skip-permission-check` turns this off (a dump on a filesystem without Unix owners, or
//! one deliberately shared). Not for: sizes and checksums (see `verify`).

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path};

use super::error::{LoadError, Result};
use super::plan::FileRef;
use crate::format::manifest;

/// Checks the dump at `dir` and the files the load reads (see the module doc).
pub fn check(dir: &Path, files: &[FileRef]) -> Result<()> {
    let me = rustix::process::geteuid().as_raw();
    let canonical = std::fs::canonicalize(dir).map_err(|e| LoadError::dump(dir, e.to_string()))?;
    let mut above = canonical.parent();
    while let Some(d) = above {
        check_one(d, me, Place::Above)?;
        above = d.parent();
    }
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

        fs::set_permissions(t.path(), fs::Permissions::from_mode(0o1777)).unwrap();
        let e = check(t.path(), &[]).unwrap_err();
        assert!(
            e.to_string().contains("writable by others (mode 1777)"),
            "{e}"
        );
    }
}
