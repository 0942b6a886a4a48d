//! Restoring a directory dump (`rdump --dir`) with the plain `mariadb` client, file by file
//! in manifest order, for tests that check what such a dump holds. (`rload` is the real
//! loader; this is the reference it is compared with.)

use std::path::Path;

use rdump::format::manifest::Manifest;

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
                if c.file.ends_with(".csv") || c.file.ends_with(".csv.zst") {
                    load_csv(target, dir, &d.name, t, &c.file);
                } else {
                    run(Some(&d.name), &c.file);
                }
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

/// Loads one CSV chunk with LOAD DATA LOCAL INFILE in the session the CSV dialect needs.
fn load_csv(
    target: &Server,
    dir: &Path,
    db: &str,
    t: &rdump::format::manifest::TableEntry,
    file: &str,
) {
    let data = read_dump_file(dir, file);
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), &data).unwrap();
    let columns: Vec<(String, rdump::format::objects::ColumnKind)> = t
        .columns
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                rdump::format::objects::ColumnKind::from_name(&c.kind).unwrap(),
            )
        })
        .collect();
    let load = rdump::format::encode::csv::load_data_sql(
        &tmp.path().display().to_string(),
        db,
        &t.name,
        &columns,
        true,
    );
    let sql = format!(
        "SET NAMES utf8mb4; SET time_zone='+00:00'; SET sql_mode='NO_AUTO_VALUE_ON_ZERO'; \
         SET foreign_key_checks=0; SET unique_checks=0; {load};"
    );
    target
        .restore_with_args(&["--local-infile=1"], sql.as_bytes())
        .unwrap_or_else(|e| panic!("loading {file}: {e}"));
}
