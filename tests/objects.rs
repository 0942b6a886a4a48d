//! Objects and output shape compared with `mariadb-dump` 10.11 (issue 10): INSERT
//! statements cut at the same rows whatever the number of readers, views that select from
//! later databases, definitions under every client character set, accounts and roles of
//! `--system=users`, and `--tab`'s view files and session header.
//!
//! Each test starts its own throwaway servers (dropped at its end) and runs the real
//! `rdump` binary, and `mariadb-dump` where the comparison is with it.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::Server;

/// `rdump --no-defaults -uroot --socket=<server> <args>`; panics with stderr on failure.
#[track_caller]
fn rdump(server: &Server, args: &[&str]) -> Vec<u8> {
    let out = rdump_run(server, args);
    assert!(
        out.status.success(),
        "rdump {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn rdump_run(server: &Server, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rdump"))
        .arg("--no-defaults")
        .arg("-uroot")
        .arg(format!("--socket={}", server.socket().display()))
        .args(args)
        .env_remove("MYSQL_PWD")
        .stdin(Stdio::null())
        .output()
        .expect("run rdump")
}

#[track_caller]
fn mariadb_dump(server: &Server, args: &[&str]) -> Vec<u8> {
    server
        .system_dump(args)
        .unwrap_or_else(|e| panic!("mariadb-dump {args:?} failed: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The lines of a dump's rows: INSERT statements and their continuation lines.
/// mariadb-dump 10.11 ends an extended INSERT's first line after `VALUES` (rdump keeps the
/// first row on it, as MySQL's mysqldump): the same length, so the same cuts; that line
/// break is joined here.
fn insert_lines(dump: &[u8]) -> Vec<String> {
    text(dump)
        .replace(" VALUES\n(", " VALUES (")
        .lines()
        .filter(|l| l.starts_with("INSERT INTO") || l.starts_with('('))
        .map(str::to_string)
        .collect()
}

fn restore(server: &Server, dump: &[u8]) {
    if let Err(e) = server.restore(dump) {
        panic!("restore failed: {e}");
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------
// Item 11: the output does not depend on the reader count.

/// Rows of varied lengths over many chunks (`--chunk-size=300`, 17 chunks) and a small
/// `--net-buffer-length`, so statements end inside chunks and span their boundaries: the
/// dump with 4 readers is the same bytes as with one, and its INSERT lines are
/// mariadb-dump's.
#[test]
fn insert_statements_end_at_the_same_rows_whatever_the_reader_count() {
    let s = Server::start_default();
    s.sql(
        "CREATE DATABASE rowsdb; USE rowsdb;
         CREATE TABLE rowsdb.t (id INT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB;
         INSERT INTO rowsdb.t SELECT seq, REPEAT(CHAR(97 + seq % 26), seq * 7919 % 150)
           FROM seq_1_to_5000;
         CREATE TABLE rowsdb.u (id BIGINT PRIMARY KEY, w TEXT) ENGINE=InnoDB;
         INSERT INTO rowsdb.u SELECT seq * 3, REPEAT('x', seq % 700) FROM seq_1_to_3000;",
    );
    let common = ["--net-buffer-length=4096", "--skip-dump-date", "rowsdb"];
    for mode in [None, Some("--single-transaction")] {
        let with = |threads: &str| {
            let mut args = vec![threads, "--chunk-size=300"];
            args.extend(mode);
            args.extend(common);
            rdump(&s, &args)
        };
        let one = with("--threads=1");
        let four = with("--threads=4");
        assert!(
            one == four,
            "{mode:?}: --threads=4 differs from --threads=1:\n{}",
            first_difference(&one, &four)
        );
        let reference = mariadb_dump(&s, &common);
        assert_eq!(
            insert_lines(&four),
            insert_lines(&reference),
            "{mode:?}: rdump's INSERT statements differ from mariadb-dump's"
        );
        assert!(insert_lines(&four).len() > 100);
    }
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    let (a, b) = (text(a), text(b));
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}:\n  {x:.120}\n  {y:.120}", i + 1);
        }
    }
    format!("lengths {} and {}", a.len(), b.len())
}

// ---------------------------------------------------------------------------
// Item 2: views that select from databases dumped later.

/// `aaa_v` (dumped first) has views on a table and on a view of `zzz_t`, and a function
/// of `zzz_t` in a view; `zzz_t` has a view on a table of `aaa_v`.
const CROSS_DATABASE_VIEWS: &str = "
CREATE DATABASE aaa_v; CREATE DATABASE zzz_t;
CREATE TABLE zzz_t.t (a INT PRIMARY KEY, b VARCHAR(10));
INSERT INTO zzz_t.t VALUES (1, 'one'), (2, 'two');
CREATE TABLE aaa_v.base (x INT PRIMARY KEY); INSERT INTO aaa_v.base VALUES (7);
CREATE VIEW zzz_t.w AS SELECT a, b FROM zzz_t.t WHERE a > 1;
CREATE VIEW zzz_t.back AS SELECT x FROM aaa_v.base;
CREATE VIEW aaa_v.v AS SELECT a, b FROM zzz_t.t;
CREATE VIEW aaa_v.on_view AS SELECT b FROM zzz_t.w;
";

/// What the views of the two databases return, for comparing source and restore.
fn view_contents(s: &Server) -> String {
    s.sql(
        "SELECT * FROM aaa_v.v ORDER BY a; SELECT * FROM aaa_v.on_view;
         SELECT * FROM zzz_t.w; SELECT * FROM zzz_t.back;",
    )
}

/// The lines that place views: database switches, stand-ins and final definitions.
fn view_placement(dump: &[u8]) -> Vec<String> {
    text(dump)
        .lines()
        .filter(|l| {
            l.starts_with("USE ")
                || l.starts_with("-- Current Database")
                || l.starts_with("-- Final view structure")
                || l.starts_with("-- Temporary table structure")
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn views_on_later_databases_restore_with_databases_and_all_databases() {
    let s = Server::start_default();
    s.sql(CROSS_DATABASE_VIEWS);
    let expected = view_contents(&s);
    for args in [&["--databases", "aaa_v", "zzz_t"][..], &["--all-databases"]] {
        let dump = rdump(&s, args);
        // Where views go is mariadb-dump's: stand-ins with their database's tables, the
        // real definitions after all databases, each database with its USE again.
        assert_eq!(
            view_placement(&dump),
            view_placement(&mariadb_dump(&s, args)),
            "{args:?}"
        );
        let target = Server::start_default();
        restore(&target, &dump);
        assert_eq!(view_contents(&target), expected, "{args:?}");
    }
}

#[test]
fn views_on_later_databases_load_with_rload() {
    let s = Server::start_default();
    s.sql(CROSS_DATABASE_VIEWS);
    let dir = tempfile::tempdir().unwrap();
    let dump_dir = dir.path().join("d");
    rdump(
        &s,
        &[
            &format!("--dir={}", dump_dir.display()),
            "--progress=never",
            "--quiet",
            "--databases",
            "aaa_v",
            "zzz_t",
        ],
    );
    let target = Server::start_default();
    let out = Command::new(env!("CARGO_BIN_EXE_rload"))
        .arg("--no-defaults")
        .arg(format!("--socket={}", target.socket().display()))
        .arg("-uroot")
        .arg("--progress=never")
        .arg(&dump_dir)
        .output()
        .expect("run rload");
    assert!(
        out.status.success(),
        "rload failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(view_contents(&target), view_contents(&s));
}

// ---------------------------------------------------------------------------
// Item 6: `--tab` writes views to files, and each file has mariadb-dump's header.

#[test]
fn tab_writes_each_view_to_its_file_and_nothing_to_stdout() {
    let s = Server::start_default();
    s.sql(CROSS_DATABASE_VIEWS);
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours");
    let theirs = dir.path().join("theirs");
    for d in [&ours, &theirs] {
        std::fs::create_dir(d).unwrap();
        // The server writes the .txt files.
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    }
    let out = rdump(&s, &[&format!("--tab={}", ours.display()), "zzz_t"]);
    assert_eq!(text(&out), "", "--tab writes nothing on stdout");
    mariadb_dump(&s, &[&format!("--tab={}", theirs.display()), "zzz_t"]);
    assert_eq!(files_in(&ours), files_in(&theirs));
    assert_eq!(
        files_in(&ours),
        ["back.sql", "t.sql", "t.txt", "w.sql"],
        "one .sql per view"
    );
    // The session lines around each file's definitions are mariadb-dump's.
    let session_lines = |path: &Path| -> Vec<String> {
        text(&std::fs::read(path).unwrap())
            .lines()
            .filter(|l| l.starts_with("/*!40"))
            .map(str::to_string)
            .collect()
    };
    for f in ["t.sql", "w.sql"] {
        assert_eq!(
            session_lines(&ours.join(f)),
            session_lines(&theirs.join(f)),
            "{f}"
        );
    }
    // Each view's file restores it alone (here after its tables).
    let target = Server::start_default();
    target.sql("CREATE DATABASE aaa_v; CREATE TABLE aaa_v.base (x INT PRIMARY KEY); CREATE DATABASE zzz_t;");
    for f in ["t.sql", "w.sql", "back.sql"] {
        target
            .restore_with_args(&["zzz_t"], &std::fs::read(ours.join(f)).unwrap())
            .unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    assert_eq!(
        target.sql("SHOW FULL TABLES FROM zzz_t"),
        s.sql("SHOW FULL TABLES FROM zzz_t")
    );
}

// ---------------------------------------------------------------------------
// Item 4: `--system`.

/// Every account of `mysql.user` with what defines it: SHOW CREATE USER for users, and
/// SHOW GRANTS (sorted: the server lists role grants in no fixed order) for all.
fn accounts_and_grants(s: &Server) -> Vec<String> {
    let mut out = Vec::new();
    for row in
        s.sql_rows("SELECT User, Host, is_role, default_role FROM mysql.user ORDER BY User, Host")
    {
        let (user, host, is_role) = (&row[0], &row[1], row[2] == "Y");
        if user == "mariadb_dump_import_role" {
            panic!("the import role was left behind");
        }
        out.push(row.join(" "));
        let name = match (is_role, user.as_str()) {
            (true, "PUBLIC") => "PUBLIC".to_string(),
            (true, _) => common::quote_str(user),
            _ => format!("{}@{}", common::quote_str(user), common::quote_str(host)),
        };
        if !is_role {
            // The template's `root`@`<hostname>` is ignored under skip_name_resolve: the
            // server will not show it (rdump warns and leaves it out).
            match s.sql_result(&format!("SHOW CREATE USER {name}")) {
                Ok(create) => out.push(create),
                Err(e) if e.contains("ERROR 1133") => continue,
                Err(e) => panic!("SHOW CREATE USER {name}: {e}"),
            }
        }
        let mut grants: Vec<String> = s
            .sql_rows(&format!("SHOW GRANTS FOR {name}"))
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
        grants.sort();
        // A fresh server's `GRANT PROXY ON ''@'%'` rows name the proxied host '' where the
        // GRANT that SHOW GRANTS prints names '%': restoring it adds a second row that
        // SHOW GRANTS prints the same (mariadb-dump's restore does the same).
        grants.dedup();
        out.extend(grants);
    }
    out
}

/// Panics with the lines only one side has.
#[track_caller]
fn same_lines(restored: &[String], source: &[String]) {
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter().filter(|l| !b.contains(l)).cloned().collect()
    };
    let first = restored.iter().zip(source).position(|(a, b)| a != b);
    assert!(
        restored == source,
        "only restored: {:#?}\nonly source: {:#?}\nfirst difference: {:?}\nrestored: {restored:#?}",
        only(restored, source),
        only(source, restored),
        first.map(|i| (&restored[i], &source[i])),
    );
}

#[test]
fn system_users_restores_users_roles_role_grants_and_default_roles() {
    let s = Server::start_default();
    s.sql(
        "CREATE DATABASE appdb;
         CREATE ROLE reader; GRANT SELECT ON appdb.* TO reader;
         CREATE ROLE writer; GRANT INSERT, UPDATE ON appdb.* TO writer; GRANT reader TO writer;
         CREATE ROLE unused;
         CREATE USER app@'%' IDENTIFIED BY 'app-pw' WITH MAX_USER_CONNECTIONS 3;
         GRANT writer TO app@'%'; SET DEFAULT ROLE writer FOR app@'%';
         CREATE USER ops@'10.0.0.%' IDENTIFIED BY 'ops-pw';
         GRANT reader TO ops@'10.0.0.%' WITH ADMIN OPTION;
         GRANT PROCESS ON *.* TO ops@'10.0.0.%';
         GRANT SELECT ON appdb.* TO PUBLIC;",
    );
    let dump = rdump(&s, &["--system=users"]);
    let target = Server::start_default();
    restore(&target, &dump);
    same_lines(&accounts_and_grants(&target), &accounts_and_grants(&s));
    // The dump restores again over its own accounts.
    restore(&target, &dump);
    same_lines(&accounts_and_grants(&target), &accounts_and_grants(&s));
}

#[test]
fn system_plugins_udfs_and_servers_restore() {
    let s = Server::start_default();
    s.sql(
        "INSTALL SONAME 'ha_blackhole';
         CREATE FUNCTION ed25519_password RETURNS STRING SONAME 'auth_ed25519.so';
         CREATE SERVER srv1 FOREIGN DATA WRAPPER mysql
           OPTIONS (HOST '127.0.0.1', DATABASE 'd', USER 'u', PASSWORD 'p', PORT 3307);",
    );
    let state = |s: &Server| {
        s.sql(
            "SELECT PLUGIN_NAME, PLUGIN_LIBRARY FROM information_schema.PLUGINS
               WHERE PLUGIN_LIBRARY IS NOT NULL AND PLUGIN_STATUS = 'ACTIVE' ORDER BY 1;
             SELECT * FROM mysql.func ORDER BY name;
             SELECT * FROM mysql.servers ORDER BY Server_name;",
        )
    };
    let dump = rdump(&s, &["--system=plugins,udfs,servers"]);
    let target = Server::start_default();
    restore(&target, &dump);
    assert_eq!(state(&target), state(&s));
    assert!(state(&s).contains("ha_blackhole") && state(&s).contains("srv1"));
    let refused = rdump_run(&s, &["--system=users,stats"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("--system=stats"));
}

// ---------------------------------------------------------------------------
// Item 3: definitions under every client character set.

/// Non-ASCII names, comments, ENUM/SET members and defaults, and objects created under
/// utf8mb4 and (a trigger and a view) under latin1. Names and values all fit latin1, but
/// one default and one value (中) do not: a latin1 dump writes '?' for the value, as
/// mariadb-dump, so rows are compared under utf8mb4 and binary only.
const CHARSET_OBJECTS: &str = "
CREATE DATABASE cs_db; USE cs_db;
CREATE TABLE `tä` (id INT PRIMARY KEY,
  `cö` ENUM('é','b') DEFAULT 'é' COMMENT 'kommentär',
  s SET('ø','x') DEFAULT 'ø',
  l VARCHAR(10) CHARACTER SET latin1 DEFAULT 'ñ',
  u VARCHAR(10) DEFAULT '中') COMMENT='tabelle ü' DEFAULT CHARSET=utf8mb4;
INSERT INTO `tä` VALUES (1,'é','ø','ñ','x'),(2,'b','x','ö','y');
CREATE TABLE plain (id INT PRIMARY KEY, u VARCHAR(10)) DEFAULT CHARSET=utf8mb4;
INSERT INTO plain VALUES (1, '中文');
CREATE VIEW `vü` AS SELECT id, `cö`, 'ä' AS lit FROM `tä`;
CREATE TRIGGER `trü` BEFORE INSERT ON `tä` FOR EACH ROW SET NEW.l = 'ö';
CREATE PROCEDURE `prü`() COMMENT 'pö' SELECT 'ü' AS `spalte ä`;
CREATE EVENT `evü` ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE
  COMMENT 'ereignis ö' DO SELECT 'é';
";

/// The latin1 objects: their text as a latin1 client sent it.
const LATIN1_OBJECTS: &[u8] = b"SET NAMES latin1; \
CREATE TRIGGER cs_db.trl BEFORE UPDATE ON cs_db.`t\xe4` FOR EACH ROW SET NEW.l = '\xf6'; \
CREATE VIEW cs_db.vl AS SELECT '\xe9' AS `x\xe4`;";

/// What the objects are, as a utf8mb4 client sees them (without the character set columns
/// of SHOW CREATE: an object created under latin1 is recreated under utf8mb4).
fn charset_objects(s: &Server, rows: bool) -> String {
    let mut sql = String::from(
        "USE cs_db;
         SHOW CREATE TABLE `tä`; SHOW CREATE TABLE plain;
         SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS
           WHERE TABLE_SCHEMA = 'cs_db' ORDER BY 1;
         SELECT TRIGGER_NAME, ACTION_STATEMENT FROM information_schema.TRIGGERS
           WHERE TRIGGER_SCHEMA = 'cs_db' ORDER BY 1;
         SELECT ROUTINE_NAME, ROUTINE_DEFINITION, ROUTINE_COMMENT FROM information_schema.ROUTINES
           WHERE ROUTINE_SCHEMA = 'cs_db';
         SELECT EVENT_NAME, EVENT_DEFINITION, EVENT_COMMENT FROM information_schema.EVENTS
           WHERE EVENT_SCHEMA = 'cs_db';
         SELECT * FROM `vü` ORDER BY id; SELECT * FROM vl;",
    );
    if rows {
        sql.push_str("SELECT * FROM `tä` ORDER BY id; SELECT * FROM plain;");
    }
    s.sql(&sql)
}

#[test]
fn definitions_survive_every_client_character_set() {
    let s = Server::start_default();
    s.sql(CHARSET_OBJECTS);
    s.restore(LATIN1_OBJECTS).unwrap();
    for charset in ["utf8mb4", "latin1", "binary"] {
        for threads in ["--threads=1", "--threads=2"] {
            let dump = rdump(
                &s,
                &[
                    &format!("--default-character-set={charset}"),
                    threads,
                    "--routines",
                    "--events",
                    "--databases",
                    "cs_db",
                ],
            );
            assert!(
                !dump.windows(3).any(|w| w == "\u{FFFD}".as_bytes()),
                "{charset}: U+FFFD in the dump"
            );
            let target = Server::start_default();
            // Restored as a user would: the plain client, its default character set.
            restore(&target, &dump);
            let rows = charset != "latin1";
            let lines = |s: String| s.lines().map(str::to_string).collect::<Vec<_>>();
            eprintln!("--default-character-set={charset} {threads}");
            same_lines(
                &lines(charset_objects(&target, rows)),
                &lines(charset_objects(&s, rows)),
            );
            if !rows {
                // Values latin1 holds come back; 中 becomes '?', as with mariadb-dump.
                assert_eq!(
                    target.sql("SELECT * FROM cs_db.`tä` ORDER BY id"),
                    s.sql("SELECT * FROM cs_db.`tä` ORDER BY id")
                );
                assert_eq!(target.sql_value("SELECT u FROM cs_db.plain"), "??");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Item 10: `--xml`, mariadb-dump's XML document.

/// Every type with the characters XML escapes (`& < > "`) and those it keeps (`'`,
/// non-ASCII), binary bytes, BIT, NULLs, JSON, ENUM/SET, generated and invisible columns, a
/// CDATA end (`]]>`) in a trigger, routines, an event, a view, a MyISAM table and
/// non-ASCII names and comments (written in the connection's character set).
const XML_EXTRA: &str = "
CREATE DATABASE xml_x; USE xml_x;
CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(50), f FLOAT, d DECIMAL(10,3), b VARBINARY(10),
  bt BIT(5), e ENUM('a','b'), st SET('x','y'), j JSON, dt DATETIME, ts TIMESTAMP NULL, y YEAR,
  g INT AS (id*2) VIRTUAL, inv INT INVISIBLE DEFAULT 7, bl BLOB,
  c TEXT COMMENT 'a \"c\" <&>');
INSERT INTO t (id,s,f,d,b,bt,e,st,j,dt,ts,y,bl,c) VALUES
 (1,'a&b<c>\"d\"''e é ☃',1.2345678,-12.5,0x00FF41,b'10101','b','x,y','{\"k\": [1,2]}',
  '2020-01-02 03:04:05','2020-06-01 00:00:00',2021,'',NULL),
 (2,NULL,NULL,NULL,'',b'0',NULL,'',NULL,NULL,NULL,NULL,0x0102,'x]]>y');
CREATE VIEW v AS SELECT id, s FROM t;
CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.s = CONCAT(NEW.s, ']]><x>');
CREATE PROCEDURE p() SELECT 1 < 2;
CREATE FUNCTION f() RETURNS INT RETURN 1;
CREATE EVENT ev ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DO SELECT 1;
CREATE TABLE t2 (a INT) ENGINE=MyISAM; INSERT INTO t2 VALUES (1),(2);
CREATE TABLE `tâble` (`cöl` INT PRIMARY KEY COMMENT 'é<', v VARCHAR(5)) COMMENT 'ç';
INSERT INTO `tâble` VALUES (1, 'ü');
";

/// `rdump --xml` writes mariadb-dump's `--xml` document byte for byte, with one connection
/// and with four readers (tables split into chunks), across the options that change it.
/// No line is left out of the comparison: the XML has no dump date. (The `<options>` and
/// `<key>` elements carry the server's statistics, Rows, Cardinality, Update_time: a
/// background statistics update between two dumps changes them, so a difference is
/// checked again against a new mariadb-dump, a few times.)
#[test]
fn xml_is_mariadb_dumps_document_byte_for_byte() {
    let s = Server::start_default();
    s.load_file(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fidelity.sql"));
    s.sql(XML_EXTRA);
    let cases: &[&[&str]] = &[
        &["fidelity"],
        &[
            "--routines",
            "--events",
            "--databases",
            "fidelity",
            "fid elity-2",
            "xml_x",
        ],
        &[
            "--no-data",
            "--routines",
            "--events",
            "--databases",
            "xml_x",
            "fidelity",
        ],
        &["-t", "--routines", "--events", "xml_x"],
        &[
            "--hex-blob",
            "--comments",
            "--routines",
            "--events",
            "xml_x",
        ],
        &[
            "--where=id > 1",
            "--hex-blob",
            "--comments",
            "--routines",
            "--events",
            "xml_x",
            "t",
            "v",
        ],
        &[
            "--order-by-primary",
            "--skip-create-options",
            "--skip-triggers",
            "fidelity",
        ],
        &[
            "--compact",
            "--ignore-table-data=fidelity.ints",
            "--ignore-table=fidelity.many_rows",
            "fidelity",
        ],
        &[
            "--default-character-set=latin1",
            "--tables",
            "xml_x",
            "t",
            "t2",
        ],
        &[
            "--default-character-set=latin1",
            "--comments",
            "--databases",
            "xml_x",
        ],
        &["--default-character-set=cp1250", "xml_x"],
        &["--single-transaction", "--databases", "fidelity", "xml_x"],
        &["-A", "--routines", "--events"],
    ];
    for case in cases {
        for readers in [&["--threads=1"][..], &["--threads=4", "--chunk-size=1000"]] {
            let mut args = vec!["--xml"];
            args.extend(*case);
            let mut ours = args.clone();
            ours.extend(readers);
            let mut attempt = 0;
            loop {
                attempt += 1;
                let reference = mariadb_dump(&s, &args);
                let got = rdump(&s, &ours);
                if got == reference {
                    break;
                }
                assert!(
                    attempt < 4,
                    "rdump {ours:?} differs from mariadb-dump {args:?}:\n{}",
                    first_difference(&reference, &got)
                );
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
    }

    // What mariadb-dump refuses, and what rdump refuses with --xml, exits 1 with a reason.
    let dir = tempfile::tempdir().unwrap();
    let tab = format!("--tab={}", dir.path().display());
    for other in [
        tab.as_str(),
        "--dump-history",
        "--master-data=2",
        "--system=users",
    ] {
        let out = rdump_run(&s, &["--xml", other, "xml_x"]);
        assert_eq!(out.status.code(), Some(1), "--xml {other}");
        let err = text(&out.stderr);
        assert!(
            err.contains("--xml can't be used with"),
            "--xml {other}: {err}"
        );
        assert!(out.stdout.is_empty(), "--xml {other}");
    }
    let dir_dump = dir.path().join("d");
    let out = rdump_run(
        &s,
        &["--xml", &format!("--dir={}", dir_dump.display()), "xml_x"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--xml can't be used with --dir"));
}
