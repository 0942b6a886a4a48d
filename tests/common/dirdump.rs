//! Restoring a directory dump (`rdump --dir`) with the plain `mariadb` client, file by file
//! in manifest order, for tests that check what such a dump holds. (`rload` is the real
//! loader; this is the reference it is compared with.)

use std::path::Path;

use rdump::manifest::Manifest;

use super::Server;

/// Reads a file of the dump, decompressing `.zst` files.
pub fn read_dump_file(dir: &Path, file: &str) -> Vec<u8> {
    let bytes = std::fs::read(dir.join(file)).unwrap();
    if file.ends_with(".zst") {
        zstd::decode_all(&bytes[..]).unwrap()
    } else {
        bytes
    }
}

/// Restores a directory dump with the plain client, in the order a loader must use:
/// databases, tables and sequences, data chunks, triggers, routines, events, views.
pub fn restore_dir(target: &Server, dir: &Path, m: &Manifest) {
    let run = |db: Option<&str>, file: &str| {
        let sql = read_dump_file(dir, file);
        let args: Vec<&str> = db.into_iter().chain(["--comments"]).collect();
        target
            .restore_with_args(&args, &sql)
            .unwrap_or_else(|e| panic!("restoring {file}: {e}"));
    };
    for d in &m.databases {
        run(None, &d.database_file.as_ref().unwrap().file);
        // Sequences first: a table's DEFAULT may call NEXTVAL.
        let mut tables: Vec<_> = d.tables.iter().collect();
        tables.sort_by_key(|t| t.kind != "sequence");
        for t in &tables {
            if let Some(f) = &t.schema_file {
                run(Some(&d.name), &f.file);
            }
        }
        for t in &tables {
            for c in &t.chunks {
                run(Some(&d.name), &c.file);
            }
        }
    }
    for d in &m.databases {
        for t in &d.tables {
            if let Some(f) = &t.triggers_file {
                run(Some(&d.name), &f.file);
            }
        }
        for f in [&d.routines_file, &d.events_file, &d.views_file]
            .into_iter()
            .flatten()
        {
            run(Some(&d.name), &f.file);
        }
    }
}
