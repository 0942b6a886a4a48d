//! CSV fidelity: every base table of the fixture (fixtures/fidelity.sql) plus the CSV
//! dialect's own hard cases (`EXTRA`) is read with the library (`TableRead` through
//! `Session::stream`), encoded by `encode::csv::CsvEncoder` into one file per table, and
//! loaded into a second server with the `mariadb` client running the statements of
//! `encode::csv::load_data_sql` (LOCAL). CHECKSUM TABLE EXTENDED of every base table must
//! then be the same on both servers, and the only LOAD DATA warnings must be those of ENUM
//! error values.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{Server, ServerOptions, parse_batch, quote_ident, row_diff, run_with_stdin};
use rdump::client::conn::Session;
use rdump::client::options::ConnectionOptions;
use rdump::dump::catalog;
use rdump::dump::read::TableRead;
use rdump::format::encode::csv::{CsvEncoder, load_data_sql};
use rdump::format::objects::{ColumnKind, TableKind};

const DATABASES: &[&str] = &["fidelity", "fid elity-2", "csv_extra"];

/// Tables whose ENUM error values make LOAD DATA warn (1265, as the SQL restore does).
const ENUM_ERROR_TABLES: &[&str] = &[
    "`fidelity`.`enum_error_value`",
    "`csv_extra`.`enum_zero`",
    "`csv_extra`.`enum_binary`",
    "`csv_extra`.`single_enum`",
];

/// Cases of the CSV dialect beyond the fixture (default sql_mode escapes in literals).
const EXTRA: &str = r#"
SET NAMES utf8mb4;
SET time_zone = '+00:00';
DROP DATABASE IF EXISTS csv_extra;
CREATE DATABASE csv_extra CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
USE csv_extra;
-- NULL look-alikes, quotes, separators, escapes and line breaks in every position.
CREATE TABLE texts (
  id INT NOT NULL PRIMARY KEY,
  v VARCHAR(100),
  l1 TEXT CHARACTER SET latin1,
  c CHAR(5)
) ENGINE=InnoDB;
INSERT INTO texts VALUES
 (1, '\\N', '\\N', '\\N'),
 (2, 'N', 'NULL', 'null'),
 (3, '\\', '\\\\', 'x\\'),
 (4, '"', '""', '","'),
 (5, '"\n"', ',', ',"'),
 (6, '\r', '\r\n', '\n'),
 (7, '\\0', CONCAT('a', CHAR(0), 'b'), '\\n'),
 (8, '0', ' 0 ', '\\"'),
 (9, '"\\', '\\"\\', ''),
 (10, NULL, '', NULL),
 (11, '\\r\\n\\t\\Z', 'é\\ü', '\t'),
 (12, '\n\\N\n', '"NULL"', '\\\\N'),
 (13, CHAR(26), ',,\n,', '"\\"');
-- Text written bare or enclosed: values at each edge of the bare rule (word NULL in any
-- case, spaces and control characters first or last, quotes, separators, line breaks).
CREATE TABLE bare (
  id INT NOT NULL PRIMARY KEY,
  v VARCHAR(100),
  t TEXT,
  c CHAR(10),
  l VARCHAR(20) CHARACTER SET latin1
) ENGINE=InnoDB;
INSERT INTO bare VALUES
 (1, ' a ', 'a ', ' a', 'é'),
 (2, 'NULL', 'null', 'NuLl', 'NULL '),
 (3, '\\N', 'N', '\\', 'x\\N'),
 (4, '', '"', '"x', 'x"'),
 (5, ',', 'a,b', ',a', 'a,'),
 (6, '\n', 'a\nb', '\r', 'a\r\nb'),
 (7, '\t', CHAR(26), 'a\tb', CHAR(1)),
 (8, 'plain', '2026-12-03 08:00:00', '-1', '0x41'),
 (9, 'NULLNULL', 'NUL', 'ü x', CONCAT(CHAR(0), 'a')),
 (10, 'a"b', 'x\ty', CONCAT('a', CHAR(0)), '\\');
-- Multibyte character sets whose second byte may be 0x5C (`\`): the file is utf8mb4 (the
-- dump connection's), so such text is written bare and read back unchanged.
CREATE TABLE multibyte (
  id INT NOT NULL PRIMARY KEY,
  s VARCHAR(20) CHARACTER SET sjis,
  c VARCHAR(20) CHARACTER SET cp932,
  g VARCHAR(20) CHARACTER SET gbk,
  b VARCHAR(20) CHARACTER SET big5
) ENGINE=InnoDB;
INSERT INTO multibyte VALUES
 (1, 'ソ表予', '予偆兔', '乗俓僜', '么佢俞'),
 (2, '十"', '兔\\', '乗,', '俞\n');
-- ENUMs with a member literally '0' and with '', and their error values (index 0).
CREATE TABLE enum_zero (
  id INT NOT NULL PRIMARY KEY,
  e ENUM('0', '', 'a') NOT NULL,
  n ENUM('1', '0') NULL,
  z ENUM('a', 'b') NULL
) ENGINE=InnoDB;
SET sql_mode = '';
INSERT INTO enum_zero VALUES
 (1, '0', '0', 'a'), (2, 'bad', 'bad', 'bad'), (3, '', NULL, NULL), (4, 'a', '1', 'b'),
 (5, 'nope', '0', '');
-- A binary ENUM keeps trailing spaces in members and compares bytes: '0' and '0 '
-- are different members.
CREATE TABLE enum_binary (
  id INT NOT NULL PRIMARY KEY,
  e ENUM('0', '0 ', 'a ', '00', ' 0', '', '0  ') CHARACTER SET binary NULL
) ENGINE=InnoDB;
INSERT INTO enum_binary VALUES
 (1, '0'), (2, '0 '), (3, 'a '), (4, '00'), (5, ' 0'), (6, ''), (7, 'bad'), (8, NULL),
 (9, '0  ');
-- One-column tables: an empty value makes an empty line; the error value a bare 0.
CREATE TABLE single_enum (e ENUM('x') NOT NULL) ENGINE=InnoDB;
INSERT INTO single_enum VALUES ('x'), ('bad'), ('x');
SET sql_mode = DEFAULT;
CREATE TABLE single_bin (v VARBINARY(10)) ENGINE=InnoDB;
INSERT INTO single_bin VALUES (''), (NULL), (0x00), (0x5C4E), (''), (0x0A), (0x2C22);
CREATE TABLE single_text (v TEXT) ENGINE=InnoDB;
INSERT INTO single_text VALUES (''), (NULL), ('\\N'), ('NULL'), ('\n'), (''), ('"');
-- BIT widths with the top bit set.
CREATE TABLE more_bits (
  id INT NOT NULL PRIMARY KEY,
  b64 BIT(64),
  b1 BIT(1),
  b13 BIT(13),
  b63 BIT(63)
) ENGINE=InnoDB;
INSERT INTO more_bits VALUES
 (1, 0x8000000000000001, 1, b'1000000000001', 0x7FFFFFFFFFFFFFFF),
 (2, 0, 0, 0, 0),
 (3, NULL, NULL, NULL, NULL),
 (4, 18446744073709551614, b'1', 8191, 1);
"#;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fidelity.sql")
}

fn start_pair() -> (Server, Server) {
    std::thread::scope(|s| {
        let a = s.spawn(|| {
            Server::start(ServerOptions {
                server_id: 1,
                ..Default::default()
            })
        });
        let b = s.spawn(|| {
            Server::start(ServerOptions {
                server_id: 2,
                ..Default::default()
            })
        });
        (a.join().unwrap(), b.join().unwrap())
    })
}

/// What reading the source produced: the schema script, the load script and the tables.
struct Dumped {
    schema: String,
    load: String,
    /// Qualified names, in load order.
    tables: Vec<String>,
    /// (database, table) by qualified name.
    names: BTreeMap<String, (String, String)>,
    files: usize,
    bytes: u64,
}

/// Reads every base table of `DATABASES` on `server` into one CSV file each under `dir`.
async fn dump_csv(server: &Server, dir: &Path) -> Dumped {
    let opts = ConnectionOptions {
        socket: Some(server.socket()),
        user: Some("root".into()),
        ..Default::default()
    };
    let mut s = Session::connect(&opts).await.expect("connect");
    s.exec("SET time_zone='+00:00'", "time zone").await.unwrap();
    s.exec("SET SQL_MODE=''", "sql_mode").await.unwrap();

    let mut schema = String::from("SET NAMES utf8mb4;\nSET FOREIGN_KEY_CHECKS=0;\n");
    let mut load = String::from(
        "SET NAMES utf8mb4; SET time_zone='+00:00'; SET sql_mode='NO_AUTO_VALUE_ON_ZERO'; \
         SET foreign_key_checks=0; SET unique_checks=0;\n",
    );
    let mut tables = Vec::new();
    let mut names = BTreeMap::new();
    let mut bytes = 0u64;
    for db in DATABASES {
        let create_db = catalog::show_create_database(&mut s, db).await.unwrap();
        schema.push_str(&format!("{create_db};\nUSE {};\n", quote_ident(db)));
        let listed = catalog::list_tables(&mut s, db).await.unwrap();
        // Sequences too (their rows are not compared): a DEFAULT NEXTVAL(seq) needs them.
        for t in listed.iter().filter(|t| t.kind == TableKind::Sequence) {
            let create = catalog::show_create_table(&mut s, db, t).await.unwrap();
            schema.push_str(&format!("{create};\n"));
        }
        for t in listed {
            if t.kind != TableKind::Base {
                continue;
            }
            let create = catalog::show_create_table(&mut s, db, &t).await.unwrap();
            schema.push_str(&format!("{create};\n"));

            let columns = catalog::columns(&mut s, db, &t.name).await.unwrap();
            let read = TableRead::plan(&s.dialect, db, &t.name, &columns, None, &[], false);
            let path = dir.join(format!("{}.csv", tables.len()));
            let mut file = std::fs::File::create(&path).unwrap();
            let encoder = CsvEncoder::new(read.kinds.clone());
            let mut buf = Vec::with_capacity(1 << 18);
            s.stream(&read.select_sql(None), "reading rows", |cells| {
                encoder.push_row(cells, &mut buf);
                if buf.len() >= 1 << 18 {
                    file.write_all(&buf).unwrap();
                    bytes += buf.len() as u64;
                    buf.clear();
                }
                Ok(())
            })
            .await
            .unwrap();
            file.write_all(&buf).unwrap();
            bytes += buf.len() as u64;

            let stored: Vec<(String, ColumnKind)> = columns
                .iter()
                .filter(|c| !c.generated)
                .map(|c| (c.name.clone(), c.kind))
                .collect();
            let qualified = format!("{}.{}", quote_ident(db), quote_ident(&t.name));
            // A marker row before each table's warnings, to attribute them.
            load.push_str(&format!(
                "SELECT 'table', {};\n{};\nSHOW WARNINGS;\n",
                common::quote_str(&qualified),
                load_data_sql(path.to_str().unwrap(), db, &t.name, &stored, true)
            ));
            names.insert(qualified.clone(), (db.to_string(), t.name.clone()));
            tables.push(qualified);
        }
    }
    s.close().await;
    Dumped {
        schema,
        load,
        files: tables.len(),
        tables,
        names,
        bytes,
    }
}

/// `CHECKSUM TABLE .. EXTENDED` of every table, by qualified name.
fn checksums(server: &Server, tables: &[String]) -> BTreeMap<String, String> {
    let script: String = tables
        .iter()
        .map(|t| format!("CHECKSUM TABLE {t} EXTENDED;\n"))
        .collect();
    let rows = server.sql_rows(&script);
    assert_eq!(rows.len(), tables.len(), "one checksum per table: {rows:?}");
    tables
        .iter()
        .cloned()
        .zip(rows.into_iter().map(|r| r[1].clone()))
        .collect()
}

#[test]
fn fixture_round_trips_through_csv_and_load_data() {
    let start = Instant::now();
    let (a, b) = start_pair();
    a.load_file(fixture());
    a.restore(EXTRA.as_bytes())
        .unwrap_or_else(|e| panic!("creating the extra cases failed: {e}"));
    eprintln!("servers started and loaded in {:.2?}", start.elapsed());

    let t = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dumped = runtime.block_on(dump_csv(&a, dir.path()));
    eprintln!(
        "wrote {} CSV files ({} bytes) in {:.2?}",
        dumped.files,
        dumped.bytes,
        t.elapsed()
    );

    let t = Instant::now();
    b.restore(dumped.schema.as_bytes())
        .unwrap_or_else(|e| panic!("creating the tables failed: {e}"));
    let mut client = b.client_command();
    client.args([
        "--local-infile=1",
        "--batch",
        "--skip-column-names",
        "--default-character-set=utf8mb4",
    ]);
    let out = run_with_stdin(client, dumped.load.as_bytes()).unwrap();
    assert!(
        out.status.success(),
        "LOAD DATA failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("loaded into the target in {:.2?}", t.elapsed());

    // Warnings, attributed to the table loaded before them.
    let mut table = String::new();
    let mut unexpected = Vec::new();
    for row in parse_batch(&String::from_utf8_lossy(&out.stdout)) {
        if row.len() == 2 && row[0] == "table" {
            table = row[1].clone();
            continue;
        }
        eprintln!("warning loading {table}: {row:?}");
        let expected = row.get(1).map(String::as_str) == Some("1265")
            && ENUM_ERROR_TABLES.contains(&table.as_str());
        if !expected {
            unexpected.push(format!("{table}: {row:?}"));
        }
    }
    for t in ENUM_ERROR_TABLES {
        assert!(dumped.tables.iter().any(|x| x == t), "{t} was not loaded");
    }

    let (before, after) = (checksums(&a, &dumped.tables), checksums(&b, &dumped.tables));
    let mut report = String::new();
    for (t, sum) in &before {
        if after.get(t) != Some(sum) {
            let (db, name) = &dumped.names[t];
            report.push_str(&format!(
                "{t}: checksum {sum} on the source, {:?} restored\n{}\n",
                after.get(t),
                row_diff(&a, &b, db, name, 5)
            ));
        }
    }
    assert!(
        report.is_empty(),
        "tables differ after CSV round trip:\n{report}"
    );
    assert!(
        unexpected.is_empty(),
        "unexpected LOAD DATA warnings:\n{}",
        unexpected.join("\n")
    );
    eprintln!(
        "all {} base tables have the same CHECKSUM TABLE EXTENDED ({:.2?} in all)",
        before.len(),
        start.elapsed()
    );
}
