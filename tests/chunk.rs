//! The chunk planner (`rdump::dump::chunk`) against a real MariaDB: for every kind of key, the
//! chunks' conditions select every row exactly once (`SELECT MIN(n), MAX(n), COUNT(*) FROM
//! (SELECT (c0)+(c1)+... AS n FROM t) x` gives 1, 1, the row count) and come out in key
//! order; walked chunks hold exactly `TARGET` rows each but the last (1 to `TARGET` rows),
//! as each chunk's `estimated_rows` says, and arithmetic ones at most `TARGET` rows each
//! (see `check`). Walked keys: sparse and skewed integers, BIGINT signed and unsigned
//! extremes, DECIMAL(30,6), a row count that is a multiple of `TARGET`, a composite (INT,
//! VARCHAR) key, strings in utf8mb4_bin (multibyte, emoji) and in utf8mb4_general_ci
//! (accents, mixed case; with a negative control comparing as binary), BINARY(16) with
//! 0x00/0xFF bytes, DATETIME(6), a (DATE, TIME, YEAR) key with zero dates and negative times,
//! TIMESTAMP(3) across a DST change of the server's zone, a UNIQUE NOT NULL key without a
//! primary key, and odd names. Arithmetic splits: dense integer ids (with gaps, at the
//! density threshold, through a UNIQUE key), every integer type from its smallest value,
//! BIGINT UNSIGNED up to its largest, DECIMAL(20,0); planning them reads no index range.
//! Wrong estimates (an open transaction's rows count in `TABLE_ROWS`): too low walks, a bit
//! low still splits, too high splits sparse ids into more, smaller chunks. Declined keys
//! (DOUBLE, ENUM, prefix, BLOB, HASH; TIMESTAMP in a session with a DST zone), tables
//! without a usable key, empty tables and tables of at most `TARGET` rows are one chunk with
//! range `None`.
//!
//! One server serves every test of this file (started on first use, stopped at process
//! exit); each test has a database of its own. The cases live in `mod chunk_plans` so that
//! `cargo test --test chunk --lib chunk` runs them all.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use common::{Server, ServerOptions, quote_ident, quote_str};
use rdump::client::conn::{Session, cell_string};
use rdump::dump::chunk::{Chunk, ChunkKey, ChunkPlan, Split, choose_key, plan_chunks};

/// Small, so a few hundred rows make dozens of chunks.
const TARGET: u64 = 7;

// ---------------------------------------------------------------------------
// The shared server.

static SHARED: Mutex<Option<Arc<Server>>> = Mutex::new(None);

/// The server of this test binary; stopped by an `atexit` hook, since a `static` is never
/// dropped and its directory would otherwise wait for the next process's sweep.
fn server() -> Arc<Server> {
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = shared.as_ref() {
        return Arc::clone(s);
    }
    let server = Arc::new(Server::start(ServerOptions::default()));
    // SAFETY: registers a plain `extern "C" fn` that never unwinds.
    unsafe {
        libc::atexit(stop_shared_server);
    }
    *shared = Some(Arc::clone(&server));
    server
}

extern "C" fn stop_shared_server() {
    let taken = match SHARED.lock() {
        Ok(mut g) => g.take(),
        Err(e) => e.into_inner().take(),
    };
    drop(taken);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A session as the dump opens it: root over the socket, UTC.
async fn session(server: &Server) -> Session {
    let mut s = Session::connect(&rdump::client::options::ConnectionOptions {
        socket: Some(server.socket()),
        user: Some("root".into()),
        ..Default::default()
    })
    .await
    .expect("connect");
    s.exec("SET time_zone='+00:00'", "setting the time zone")
        .await
        .expect("set time_zone");
    s
}

/// A fresh database `db` holding what `sql` makes (run with `USE db` first).
fn setup(server: &Server, db: &str, sql: &str) {
    let q = quote_ident(db);
    server.sql(&format!(
        "DROP DATABASE IF EXISTS {q}; CREATE DATABASE {q}; USE {q}; {sql}"
    ));
}

/// A deterministic xorshift generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A string of 0 to `max_len` pieces of `alphabet`.
    fn string(&mut self, alphabet: &[&str], max_len: u64) -> String {
        let len = self.below(max_len + 1);
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len() as u64) as usize])
            .collect()
    }
}

/// `INSERT [IGNORE] INTO t VALUES (...), (...)`.
fn insert(table: &str, ignore: bool, rows: impl IntoIterator<Item = String>) -> String {
    let rows: Vec<String> = rows.into_iter().map(|r| format!("({r})")).collect();
    format!(
        "INSERT {}INTO {} VALUES {};",
        if ignore { "IGNORE " } else { "" },
        quote_ident(table),
        rows.join(", ")
    )
}

// ---------------------------------------------------------------------------
// Checking a plan.

async fn count(s: &mut Session, sql: &str) -> Vec<Option<String>> {
    let rows = s.rows(sql, "checking").await.expect(sql);
    assert_eq!(rows.len(), 1, "{sql}");
    (0..rows[0].len())
        .map(|i| cell_string(&rows[0], i))
        .collect()
}

/// Checks a plan of `db`.`table`: its chunks partition the rows (every row in exactly one
/// chunk) in key order, whatever the split; their sizes depend on it:
///
/// * `Walk`: exactly `target` rows each but the last (1 to `target` rows), each as its
///   `estimated_rows` says;
/// * `Whole`: one chunk without a range, of all (at most `target`, if keyed) rows; for a
///   keyed table `estimated_rows` is exact;
/// * `Arithmetic`: a one-column key whose span `MAX - MIN + 1` is cut into exactly
///   `ceil(span / target)` ranges, so each holds 0 to `target` rows (a range of at most
///   `target` values of a unique key cannot hold more, whatever the estimate was); the span
///   is at most twice the estimate (the shares add up to it), which is over `target`; and,
///   unless that estimate was too high, at least half the span's values are rows, so the
///   chunks average `target / 2` rows or more. Exact sizes there depend on the gaps in the
///   ids, and the cases assert them where they know them.
///
/// `Err` says what is wrong (the negative control expects one).
async fn check(
    s: &mut Session,
    db: &str,
    table: &str,
    plan: &ChunkPlan,
    target: u64,
) -> Result<(), String> {
    let chunks = &plan.chunks;
    let t = format!("{}.{}", quote_ident(db), quote_ident(table));
    let n: u64 = count(s, &format!("SELECT COUNT(*) FROM {t}")).await[0]
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    if chunks.is_empty() {
        return Err("no chunk".into());
    }
    for (i, c) in chunks.iter().enumerate() {
        if c.index != i {
            return Err(format!("chunk {i} has index {}", c.index));
        }
    }
    let conds: Vec<String> = chunks
        .iter()
        .map(|c| c.range.clone().unwrap_or_else(|| "TRUE".into()))
        .collect();

    // Every row in exactly one chunk.
    let sum: Vec<String> = conds.iter().map(|c| format!("({c})")).collect();
    let cover = count(
        s,
        &format!(
            "SELECT MIN(n), MAX(n), COUNT(*) FROM (SELECT {} AS n FROM {t}) x",
            sum.join("+")
        ),
    )
    .await;
    if n > 0 && (cover[0].as_deref() != Some("1") || cover[1].as_deref() != Some("1")) {
        return Err(format!(
            "rows not covered exactly once: MIN, MAX = {cover:?}"
        ));
    }
    if cover[2] != Some(n.to_string()) {
        return Err(format!("COUNT {:?} != {n}", cover[2]));
    }

    let Some(key) = &plan.key else {
        // No key: one chunk, the whole table.
        return match (plan.split, chunks.as_slice()) {
            (Split::Whole, [c]) if c.range.is_none() => Ok(()),
            _ => Err(format!(
                "keyless table in {} chunks by {:?}",
                chunks.len(),
                plan.split
            )),
        };
    };
    let whole = chunks.len() == 1 && chunks[0].range.is_none();
    if whole != (plan.split == Split::Whole) {
        return Err(format!(
            "{:?} plan of {} chunks, the first {:?}",
            plan.split,
            chunks.len(),
            chunks[0].range
        ));
    }

    // Chunk numbers of the rows in key order: 0,0,...,1,1,... .
    let case: Vec<String> = conds
        .iter()
        .enumerate()
        .map(|(i, c)| format!("WHEN {c} THEN {i}"))
        .collect();
    let order: Vec<String> = key.columns.iter().map(|c| quote_ident(c)).collect();
    let sql = format!(
        "SELECT CASE {} ELSE -1 END FROM {t} ORDER BY {}",
        case.join(" "),
        order.join(", ")
    );
    let numbers: Vec<i64> = s
        .rows(&sql, "checking")
        .await
        .expect(&sql)
        .iter()
        .map(|r| cell_string(r, 0).unwrap().parse().unwrap())
        .collect();
    if let Some(w) = numbers.windows(2).find(|w| w[1] < w[0]) {
        return Err(format!(
            "chunks out of key order: chunk {} after {}",
            w[1], w[0]
        ));
    }
    let sizes: Vec<u64> = (0..chunks.len())
        .map(|i| numbers.iter().filter(|&&x| x == i as i64).count() as u64)
        .collect();

    match plan.split {
        Split::Whole | Split::Walk => {
            let expected_chunks = n.div_ceil(target).max(1) as usize;
            if chunks.len() != expected_chunks {
                return Err(format!(
                    "{} chunks for {n} rows, expected {expected_chunks}",
                    chunks.len()
                ));
            }
            for (i, (c, &rows)) in chunks.iter().zip(&sizes).enumerate() {
                let last = i + 1 == chunks.len();
                let ok = if last {
                    (n == 0 && rows == 0) || (1..=target).contains(&rows)
                } else {
                    rows == target
                };
                if !ok {
                    return Err(format!("chunk {i} of {} has {rows} rows", chunks.len()));
                }
                if c.estimated_rows != rows {
                    return Err(format!(
                        "chunk {i} estimates {} rows, has {rows}",
                        c.estimated_rows
                    ));
                }
            }
        }
        Split::Arithmetic => {
            let [column] = key.columns.as_slice() else {
                return Err(format!("arithmetic split of a key of {:?}", key.columns));
            };
            let c = quote_ident(column);
            let ends = count(s, &format!("SELECT MIN({c}), MAX({c}) FROM {t}")).await;
            let end = |i: usize| ends[i].as_deref().unwrap().parse::<i128>().unwrap();
            let span = (end(1) - end(0) + 1) as u128;
            let expected_chunks = span.div_ceil(u128::from(target)) as usize;
            if chunks.len() != expected_chunks {
                return Err(format!(
                    "{} chunks for a span of {span}, expected {expected_chunks}",
                    chunks.len()
                ));
            }
            if chunks.iter().any(|c| c.range.is_none()) {
                return Err("an arithmetic chunk without a range".into());
            }
            if let Some(i) = sizes.iter().position(|&rows| rows > target) {
                return Err(format!("chunk {i} has {} rows", sizes[i]));
            }
            let estimate: u64 = chunks.iter().map(|c| c.estimated_rows).sum();
            if estimate <= target || span > 2 * u128::from(estimate) {
                return Err(format!(
                    "arithmetic split of a span of {span} for an estimate of {estimate}"
                ));
            }
        }
    }
    Ok(())
}

/// Plans `db`.`table` with `TARGET`, checks the plan and returns it.
async fn plan_and_check(s: &mut Session, db: &str, table: &str) -> ChunkPlan {
    let plan = plan_chunks(s, db, table, TARGET)
        .await
        .unwrap_or_else(|e| panic!("planning {db}.{table}: {e}"));
    assert_eq!(
        choose_key(s, db, table).await.unwrap(),
        plan.key,
        "choose_key and plan_chunks disagree"
    );
    if let Err(e) = check(s, db, table, &plan, TARGET).await {
        panic!("{db}.{table}: {e}\nplan: {plan:#?}");
    }
    eprintln!(
        "{db}.{table}: {} rows in {} chunks by {:?} ({:?})",
        plan.chunks.iter().map(|c| c.estimated_rows).sum::<u64>(),
        plan.chunks.len(),
        plan.key,
        plan.split
    );
    plan
}

fn key(columns: &[&str], index_name: &str) -> Option<ChunkKey> {
    Some(ChunkKey {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        index_name: index_name.to_string(),
    })
}

/// The rows of each chunk, counted with its condition.
async fn sizes(s: &mut Session, db: &str, table: &str, plan: &ChunkPlan) -> Vec<u64> {
    let t = format!("{}.{}", quote_ident(db), quote_ident(table));
    let mut out = Vec::new();
    for c in &plan.chunks {
        let sql = format!(
            "SELECT COUNT(*) FROM {t} WHERE {}",
            c.range.as_deref().unwrap_or("TRUE")
        );
        out.push(count(s, &sql).await[0].as_deref().unwrap().parse().unwrap());
    }
    out
}

/// The server's `TABLE_ROWS` estimate, as the planner reads it.
async fn table_rows(s: &mut Session, db: &str, table: &str) -> u64 {
    let sql = format!(
        "SELECT TABLE_ROWS FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {}",
        quote_str(db),
        quote_str(table)
    );
    count(s, &sql).await[0].as_deref().unwrap().parse().unwrap()
}

/// The session's `Handler_read_next`: index entries read in key order, one per row of a
/// walk's `OFFSET` (MIN and MAX are read with one `Handler_read_first`/`_last` each).
async fn index_entries_read(s: &mut Session) -> u64 {
    let rows = s
        .rows("SHOW SESSION STATUS LIKE 'Handler_read_next'", "checking")
        .await
        .unwrap();
    cell_string(&rows[0], 1).unwrap().parse().unwrap()
}

/// Another connection that runs `statements` in a transaction it keeps open: its rows
/// count in InnoDB's `TABLE_ROWS` at once, but no other snapshot sees them, so the planner's
/// estimate is off by as many rows. End it with `ROLLBACK`.
async fn uncommitted(server: &Server, statements: &[&str]) -> Session {
    let mut other = session(server).await;
    other.exec("BEGIN", "beginning").await.unwrap();
    for sql in statements {
        other.exec(sql, "changing rows").await.expect(sql);
    }
    other
}

/// Runs `body` with a fresh UTC session on the shared server.
fn with_session<F>(body: F)
where
    F: AsyncFnOnce(&Server, &mut Session),
{
    let server = server();
    runtime().block_on(async {
        let mut s = session(&server).await;
        body(&server, &mut s).await;
        s.close().await;
    });
}

/// The cases, in a module so that `cargo test --test chunk --lib chunk` (a name filter)
/// runs them all.
mod chunk_plans {
    use super::*;

    // ---------------------------------------------------------------------------
    // Integer and decimal keys.

    #[test]
    fn sparse_and_skewed_integer_ids() {
        with_session(async |server, s| {
            let mut ids: BTreeSet<i64> = [1, 2, 1_000_000, 1_000_001, 5_000_000_000].into();
            ids.extend((0..120i64).map(|i| i * i * i));
            ids.extend((0..100i64).map(|i| 1_000_000_000_000_000 + i * i));
            ids.extend((0..60i64).map(|i| 9_000_000_000_000_000_000 + i));
            let rows = ids.iter().map(|i| format!("{i}, {}", i % 97));
            setup(
                server,
                "sparse",
                &format!(
                    "CREATE TABLE t (id BIGINT PRIMARY KEY, v INT) ENGINE=InnoDB; {}",
                    insert("t", false, rows)
                ),
            );
            let ChunkPlan {
                key: k,
                split,
                chunks,
            } = plan_and_check(s, "sparse", "t").await;
            assert_eq!(k, key(&["id"], "PRIMARY"));
            assert_eq!(split, Split::Walk);
            assert!(chunks.len() > 40, "{}", chunks.len());
            assert_eq!(
                chunks[0].range.as_deref(),
                Some(format!("`id` <= {}", ids.iter().nth(6).unwrap()).as_str())
            );
        });
    }

    #[test]
    fn bigint_signed_extremes() {
        with_session(async |server, s| {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            let mut ids: BTreeSet<i64> =
                [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX].into();
            ids.extend((0..200).map(|_| rng.next() as i64));
            setup(
                server,
                "signed",
                &format!(
                    "CREATE TABLE t (id BIGINT NOT NULL, PRIMARY KEY (id)); {}",
                    insert("t", false, ids.iter().map(|i| i.to_string()))
                ),
            );
            let ChunkPlan { chunks, .. } = plan_and_check(s, "signed", "t").await;
            assert_eq!(
                chunks[0].range.as_deref(),
                Some(format!("`id` <= {}", ids.iter().nth(6).unwrap()).as_str())
            );
        });
    }

    #[test]
    fn bigint_unsigned_extremes() {
        with_session(async |server, s| {
            let mut rng = Rng(0xdead_beef_cafe_f00d);
            let mut ids: BTreeSet<u64> = [0, 1, 2, u64::MAX - 1, u64::MAX].into();
            ids.extend((0..200).map(|_| rng.next()));
            // Make the last boundary the largest value: a row count of k * TARGET + 1.
            while ids.len() % TARGET as usize != 1 {
                ids.insert(rng.next());
            }
            setup(
                server,
                "unsigned",
                &format!(
                    "CREATE TABLE t (id BIGINT UNSIGNED PRIMARY KEY); {}",
                    insert("t", false, ids.iter().map(|i| i.to_string()))
                ),
            );
            let ChunkPlan { chunks, .. } = plan_and_check(s, "unsigned", "t").await;
            let last = chunks.last().unwrap();
            assert_eq!(last.estimated_rows, 1);
            assert!(
                last.range.as_deref().unwrap().starts_with("`id` > "),
                "{last:?}"
            );
            // The largest id is alone in the last chunk.
            let max = s
                .first_value(
                    &format!(
                        "SELECT id FROM unsigned.t WHERE {}",
                        last.range.as_deref().unwrap()
                    ),
                    "checking",
                )
                .await
                .unwrap();
            assert_eq!(max.as_deref(), Some("18446744073709551615"));
        });
    }

    #[test]
    fn decimal_key_with_negative_values() {
        with_session(async |server, s| {
            let mut rng = Rng(42);
            let values: BTreeSet<i64> = (0..250)
                .map(|_| rng.next() as i64 % 10_000_000_000)
                .collect();
            setup(
                server,
                "decimal",
                &format!(
                    "CREATE TABLE t (d DECIMAL(30,6) PRIMARY KEY); {}",
                    insert(
                        "t",
                        true,
                        values.iter().map(|v| format!(
                            "{}.{:06}",
                            v / 1000,
                            (v % 1000).abs() * 997
                        ))
                    )
                ),
            );
            plan_and_check(s, "decimal", "t").await;
        });
    }

    #[test]
    fn row_count_a_multiple_of_the_target_ends_with_a_full_chunk() {
        with_session(async |server, s| {
            // Every third id: too sparse for the arithmetic, walked.
            setup(
                server,
                "multiple",
                "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t SELECT seq * 3 FROM seq_1_to_280;",
            );
            let ChunkPlan { split, chunks, .. } = plan_and_check(s, "multiple", "t").await;
            assert_eq!(split, Split::Walk);
            assert_eq!(chunks.len(), 40);
            assert_eq!(chunks[1].range.as_deref(), Some("`id` > 21 AND `id` <= 42"));
            assert_eq!(chunks[39].range.as_deref(), Some("`id` > 819"));
            assert_eq!(chunks[39].estimated_rows, 7);
        });
    }

    // ---------------------------------------------------------------------------
    // Dense integer keys: split arithmetically.

    #[test]
    fn dense_integer_ids_are_split_arithmetically() {
        with_session(async |server, s| {
            setup(
                server,
                "dense",
                "CREATE TABLE t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB;
                 INSERT INTO t SELECT seq, seq % 10 FROM seq_1_to_280;
                 CREATE TABLE holes (id INT UNSIGNED PRIMARY KEY);
                 INSERT INTO holes SELECT seq FROM seq_1_to_400 WHERE seq % 5 <> 0;
                 CREATE TABLE uniq (id BIGINT NOT NULL, k INT NOT NULL, UNIQUE KEY u (k));
                 INSERT INTO uniq SELECT seq * 1000, 50 + seq FROM seq_1_to_100;",
            );
            let plan = plan_and_check(s, "dense", "t").await;
            assert_eq!(plan.split, Split::Arithmetic);
            assert_eq!(plan.chunks.len(), 40);
            assert_eq!(plan.chunks[0].range.as_deref(), Some("`id` <= 7"));
            assert_eq!(
                plan.chunks[1].range.as_deref(),
                Some("`id` > 7 AND `id` <= 14")
            );
            assert_eq!(plan.chunks[39].range.as_deref(), Some("`id` > 273"));
            assert_eq!(sizes(s, "dense", "t", &plan).await, vec![7; 40]);
            // The estimate is right here, and so are the shares.
            assert!(plan.chunks.iter().all(|c| c.estimated_rows == 7));

            // Every fifth id missing: 320 rows over 1..=399, ranges of 7 values with 5 or
            // 6 rows (57 chunks, where the walk makes 46).
            let plan = plan_and_check(s, "dense", "holes").await;
            assert_eq!(plan.split, Split::Arithmetic);
            assert_eq!(plan.chunks.len(), 57);
            let rows = sizes(s, "dense", "holes", &plan).await;
            assert!(rows.iter().all(|r| (5..=6).contains(r)), "{rows:?}");
            let estimated: Vec<u64> = plan.chunks.iter().map(|c| c.estimated_rows).collect();
            assert!(
                rows.iter()
                    .zip(&estimated)
                    .all(|(r, e)| r.abs_diff(*e) <= 1),
                "{rows:?} {estimated:?}"
            );

            // A UNIQUE NOT NULL key: its MIN and MAX, read through it.
            let plan = plan_and_check(s, "dense", "uniq").await;
            assert_eq!(plan.key, key(&["k"], "u"));
            assert_eq!(plan.split, Split::Arithmetic);
            assert_eq!(plan.chunks[0].range.as_deref(), Some("`k` <= 57"));
        });
    }

    #[test]
    fn the_arithmetic_needs_half_the_key_values_to_be_rows() {
        with_session(async |server, s| {
            // 280 even ids: a span of 559 values for 280 rows, dense enough (<= 560); one
            // more row at 565 makes it 564 values for 281 rows (> 562), walked.
            setup(
                server,
                "half",
                "CREATE TABLE even (id INT PRIMARY KEY); INSERT INTO even SELECT seq * 2 FROM seq_1_to_280;
                 CREATE TABLE sparser (id INT PRIMARY KEY);
                 INSERT INTO sparser SELECT seq * 2 FROM seq_1_to_280; INSERT INTO sparser VALUES (565);",
            );
            let plan = plan_and_check(s, "half", "even").await;
            assert_eq!(plan.split, Split::Arithmetic);
            assert_eq!(plan.chunks.len(), 80);
            let rows = sizes(s, "half", "even", &plan).await;
            assert!(rows.iter().all(|r| (3..=4).contains(r)), "{rows:?}");
            let plan = plan_and_check(s, "half", "sparser").await;
            assert_eq!(plan.split, Split::Walk);
            assert_eq!(plan.chunks.len(), 41);
        });
    }

    #[test]
    fn planning_a_dense_key_reads_two_index_entries_and_a_sparse_one_its_whole_index() {
        with_session(async |server, s| {
            setup(
                server,
                "cost",
                "CREATE TABLE dense (id INT PRIMARY KEY, v VARCHAR(32));
                 INSERT INTO dense SELECT seq, MD5(seq) FROM seq_1_to_20000;
                 CREATE TABLE sparse (id INT PRIMARY KEY, v VARCHAR(32));
                 INSERT INTO sparse SELECT seq * 3, MD5(seq) FROM seq_1_to_20000;",
            );
            for (table, split, most, least) in [
                ("dense", Split::Arithmetic, 10, 0),
                ("sparse", Split::Walk, 20_000, 19_000),
            ] {
                let before = index_entries_read(s).await;
                let plan = plan_chunks(s, "cost", table, 1000).await.unwrap();
                let read = index_entries_read(s).await - before;
                assert_eq!(plan.split, split, "{table}");
                assert!(
                    (least..=most).contains(&read),
                    "{table}: {read} entries read"
                );
                check(s, "cost", table, &plan, 1000)
                    .await
                    .unwrap_or_else(|e| panic!("{table}: {e}"));
                assert_eq!(plan.chunks.len(), 20, "{table}");
            }
        });
    }

    #[test]
    fn dense_bigint_unsigned_ids_up_to_the_largest_value() {
        with_session(async |server, s| {
            setup(
                server,
                "umax",
                "CREATE TABLE t (id BIGINT UNSIGNED PRIMARY KEY);
                 INSERT INTO t SELECT 18446744073709551616 - seq FROM seq_1_to_300;",
            );
            let plan = plan_and_check(s, "umax", "t").await;
            assert_eq!(plan.split, Split::Arithmetic);
            // 300 values in 43 ranges of 7, the last of 6.
            let min = u64::MAX - 299;
            assert_eq!(plan.chunks.len(), 43);
            assert_eq!(
                plan.chunks[0].range.as_deref(),
                Some(format!("`id` <= {}", min + 6).as_str())
            );
            assert_eq!(
                plan.chunks[42].range.as_deref(),
                Some(format!("`id` > {}", min + 293).as_str())
            );
            let rows = sizes(s, "umax", "t", &plan).await;
            assert_eq!(rows[..42], [7; 42]);
            assert_eq!(rows[42], 6);
        });
    }

    #[test]
    fn dense_negative_ids_from_the_smallest_value_of_each_integer_type() {
        with_session(async |server, s| {
            setup(
                server,
                "negative",
                "CREATE TABLE big (id BIGINT PRIMARY KEY);
                 INSERT INTO big SELECT -9223372036854775809 + seq FROM seq_1_to_300;
                 CREATE TABLE zero (id INT PRIMARY KEY);
                 INSERT INTO zero SELECT CAST(seq AS SIGNED) - 151 FROM seq_1_to_300;
                 CREATE TABLE tiny (id TINYINT PRIMARY KEY);
                 INSERT INTO tiny SELECT CAST(seq AS SIGNED) - 129 FROM seq_1_to_256;
                 CREATE TABLE utiny (id TINYINT UNSIGNED PRIMARY KEY);
                 INSERT INTO utiny SELECT seq - 1 FROM seq_1_to_256;
                 CREATE TABLE small (id SMALLINT PRIMARY KEY);
                 INSERT INTO small SELECT CAST(seq AS SIGNED) - 32769 FROM seq_1_to_300;
                 CREATE TABLE medium (id MEDIUMINT UNSIGNED PRIMARY KEY);
                 INSERT INTO medium SELECT 16777216 - seq FROM seq_1_to_300;",
            );
            for (table, first) in [
                ("big", "`id` <= -9223372036854775802".to_string()),
                ("zero", "`id` <= -144".into()),
                ("tiny", "`id` <= -122".into()),
                ("utiny", "`id` <= 6".into()),
                ("small", "`id` <= -32762".into()),
                ("medium", format!("`id` <= {}", 16777215 - 299 + 6)),
            ] {
                let plan = plan_and_check(s, "negative", table).await;
                assert_eq!(plan.split, Split::Arithmetic, "{table}");
                assert_eq!(plan.chunks[0].range.as_deref(), Some(first.as_str()));
                let rows = sizes(s, "negative", table, &plan).await;
                let (last, full) = rows.split_last().unwrap();
                assert!(full.iter().all(|&r| r == 7), "{table}: {rows:?}");
                assert!((1..=7).contains(last), "{table}: {rows:?}");
            }
        });
    }

    #[test]
    fn decimals_without_fraction_are_split_arithmetically_others_walked() {
        with_session(async |server, s| {
            setup(
                server,
                "decimals",
                "CREATE TABLE d0 (d DECIMAL(20,0) PRIMARY KEY);
                 INSERT INTO d0 SELECT 100000000000000000000 - seq FROM seq_1_to_300;
                 CREATE TABLE d2 (d DECIMAL(10,2) PRIMARY KEY);
                 INSERT INTO d2 SELECT seq FROM seq_1_to_300;
                 CREATE TABLE huge (d DECIMAL(65,0) PRIMARY KEY);
                 INSERT INTO huge SELECT CAST(CONCAT(REPEAT('9', 60), LPAD(seq, 5, '0')) AS DECIMAL(65,0)) FROM seq_1_to_300;
                 CREATE TABLE y (y YEAR PRIMARY KEY);
                 INSERT INTO y SELECT 1900 + seq FROM seq_1_to_255;",
            );
            let plan = plan_and_check(s, "decimals", "d0").await;
            assert_eq!(plan.split, Split::Arithmetic);
            assert_eq!(
                plan.chunks[42].range.as_deref(),
                Some("`d` > 99999999999999999993")
            );
            // Values beyond i128 (and DECIMAL(n,s>0), YEAR): walked, as before.
            for t in ["d2", "huge", "y"] {
                let plan = plan_and_check(s, "decimals", t).await;
                assert_eq!(plan.split, Split::Walk, "{t}");
            }
        });
    }

    // ---------------------------------------------------------------------------
    // Wrong estimates: an open transaction's rows count in InnoDB's TABLE_ROWS, but no
    // other snapshot sees them.

    #[test]
    fn an_estimate_of_a_few_rows_for_a_dense_table_is_walked() {
        with_session(async |server, s| {
            setup(
                server,
                "estlow",
                "CREATE TABLE t (id INT PRIMARY KEY) STATS_AUTO_RECALC=0;
                 INSERT INTO t SELECT seq FROM seq_1_to_300;",
            );
            let mut other = uncommitted(server, &["DELETE FROM estlow.t WHERE id > 2"]).await;
            assert_eq!(table_rows(s, "estlow", "t").await, 2);
            // The estimate says one chunk; the walk's first step finds more rows and walks on.
            let plan = plan_and_check(s, "estlow", "t").await;
            assert_eq!(plan.split, Split::Walk);
            assert_eq!(plan.chunks.len(), 43);
            other.exec("ROLLBACK", "rolling back").await.unwrap();
            other.close().await;
        });
    }

    #[test]
    fn an_estimate_somewhat_too_low_still_gives_chunks_of_at_most_target_rows() {
        with_session(async |server, s| {
            setup(
                server,
                "estpart",
                "CREATE TABLE t (id INT PRIMARY KEY) STATS_AUTO_RECALC=0;
                 INSERT INTO t SELECT seq FROM seq_1_to_300;",
            );
            let mut other = uncommitted(server, &["DELETE FROM estpart.t WHERE id > 160"]).await;
            assert_eq!(table_rows(s, "estpart", "t").await, 160);
            // A span of 300 for an estimate of 160: dense enough. The ranges hold 7 rows
            // each whatever the estimate; only the shares are too small.
            let plan = plan_and_check(s, "estpart", "t").await;
            assert_eq!(plan.split, Split::Arithmetic);
            assert_eq!(plan.chunks.len(), 43);
            assert_eq!(
                plan.chunks.iter().map(|c| c.estimated_rows).sum::<u64>(),
                160
            );
            let rows = sizes(s, "estpart", "t", &plan).await;
            assert_eq!(rows[..42], [7; 42]);
            other.exec("ROLLBACK", "rolling back").await.unwrap();
            other.close().await;
        });
    }

    #[test]
    fn an_estimate_too_high_for_sparse_ids_gives_more_small_chunks_never_a_wrong_one() {
        with_session(async |server, s| {
            setup(
                server,
                "esthigh",
                "CREATE TABLE t (id INT PRIMARY KEY) STATS_AUTO_RECALC=0;
                 INSERT INTO t SELECT seq * 10 FROM seq_1_to_100;",
            );
            let mut other = uncommitted(
                server,
                &["INSERT INTO esthigh.t SELECT 100000 + seq FROM esthigh.seq_1_to_1000"],
            )
            .await;
            assert_eq!(table_rows(s, "esthigh", "t").await, 1100);
            // 100 rows over 10..=1000, believed 1100: 142 ranges of at most 7 values, each
            // with 0 or 1 row, where the walk would make 15 chunks.
            let plan = plan_and_check(s, "esthigh", "t").await;
            assert_eq!(plan.split, Split::Arithmetic);
            assert_eq!(plan.chunks.len(), 142);
            let rows = sizes(s, "esthigh", "t", &plan).await;
            assert!(rows.iter().all(|&r| r <= 1), "{rows:?}");
            other.exec("ROLLBACK", "rolling back").await.unwrap();
            other.close().await;
            // Rolled back, the estimate is right again and the same ids are walked.
            assert_eq!(table_rows(s, "esthigh", "t").await, 100);
            assert_eq!(plan_and_check(s, "esthigh", "t").await.split, Split::Walk);
        });
    }

    // ---------------------------------------------------------------------------
    // Composite, string, binary and temporal keys.

    const MIXED: &[&str] = &[
        "a", "b", "Z", "é", "ß", "日", "本", "😀", "🦀", " ", "'", "\\", "\"", "0", "~", "\u{1}",
    ];

    #[test]
    fn composite_int_varchar_key() {
        with_session(async |server, s| {
            let mut rng = Rng(7);
            let rows = (0..400).map(|_| {
                let r = rng.below(100) as i64;
                // Skewed: most rows share a few values of `a`, some are negative.
                let a = r * r / 1000 - 3;
                format!("{a}, {}, 0", quote_str(&rng.string(MIXED, 4)))
            });
            setup(
                server,
                "composite",
                &format!(
                    "CREATE TABLE t (a INT NOT NULL, s VARCHAR(20) NOT NULL, v INT, \
                 PRIMARY KEY (a, s)) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci; {}",
                    insert("t", true, rows)
                ),
            );
            let ChunkPlan { key: k, chunks, .. } = plan_and_check(s, "composite", "t").await;
            assert_eq!(k, key(&["a", "s"], "PRIMARY"));
            let middle = chunks[1].range.as_deref().unwrap();
            assert!(
                middle.starts_with("((`a` > ") && middle.contains(" OR (`a` = "),
                "{middle}"
            );
            assert!(
                !middle.contains("(`a`, `s`)"),
                "no row constructors: {middle}"
            );
            // The middle chunks are index range scans, not full scans.
            let explain = s
                .rows(
                    &format!("EXPLAIN SELECT * FROM composite.t WHERE {middle}"),
                    "explaining",
                )
                .await
                .unwrap();
            assert_eq!(
                rdump::client::conn::cell_by_name(&explain[0], "type").as_deref(),
                Some("range"),
                "{middle}"
            );
        });
    }

    #[test]
    fn string_key_in_utf8mb4_bin_with_multibyte_and_emoji() {
        with_session(async |server, s| {
            let mut rng = Rng(11);
            let mut rows: Vec<String> =
                (0..400).map(|_| quote_str(&rng.string(MIXED, 6))).collect();
            rows.push("''".into());
            setup(
                server,
                "strbin",
                &format!(
                    "CREATE TABLE t (s VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin \
                 PRIMARY KEY); {}",
                    insert("t", true, rows)
                ),
            );
            let ChunkPlan { chunks, .. } = plan_and_check(s, "strbin", "t").await;
            assert!(
                chunks[0]
                    .range
                    .as_deref()
                    .unwrap()
                    .starts_with("`s` <= _utf8mb4 X'"),
                "{:?}",
                chunks[0]
            );
        });
    }

    #[test]
    fn string_key_in_a_case_and_accent_insensitive_collation() {
        with_session(async |server, s| {
            let alphabet = [
                "a", "A", "á", "Á", "à", "e", "E", "é", "É", "o", "ö", "Ö", "O", "s", "S", "ß",
                "z", "Z", "ø", " ", "_", "b", "B",
            ];
            let mut rng = Rng(13);
            let rows = (0..500).map(|_| quote_str(&rng.string(&alphabet, 5)));
            setup(
                server,
                "strci",
                &format!(
                    "CREATE TABLE t (s VARCHAR(20) CHARACTER SET utf8mb4 \
                 COLLATE utf8mb4_general_ci NOT NULL, UNIQUE KEY u (s)); {}",
                    insert("t", true, rows)
                ),
            );
            let ChunkPlan { key: k, chunks, .. } = plan_and_check(s, "strci", "t").await;
            assert_eq!(k, key(&["s"], "u"));
            assert!(chunks.len() > 10, "{}", chunks.len());
            // Negative control: the same boundaries compared as binary (`BINARY X'..'`) are
            // not the index's order, and the checker notices (chunks out of key order, wrong
            // sizes). A plain `X'..'` would not show it on MariaDB 10.11: a literal's
            // coercibility (4) loses to the column's (2), so it is converted to the column's
            // collation; the introducer just makes that explicit.
            let binary: Vec<Chunk> = chunks
                .iter()
                .map(|c| Chunk {
                    range: c
                        .range
                        .as_ref()
                        .map(|r| r.replace("_utf8mb4 X'", "BINARY X'")),
                    ..c.clone()
                })
                .collect();
            let binary = ChunkPlan {
                key: k,
                split: Split::Walk,
                chunks: binary,
            };
            let wrong = check(s, "strci", "t", &binary, TARGET).await;
            assert!(wrong.is_err(), "binary comparisons went unnoticed");
            eprintln!("negative control: {}", wrong.unwrap_err());
        });
    }

    #[test]
    fn binary16_key_with_arbitrary_bytes() {
        with_session(async |server, s| {
            let mut rng = Rng(17);
            let mut values: BTreeSet<String> = [
                "00".repeat(16),
                "FF".repeat(16),
                format!("{}01", "00".repeat(15)),
                format!("{}FE", "FF".repeat(15)),
                format!("7F{}", "FF".repeat(15)),
                format!("80{}", "00".repeat(15)),
                format!("61{}", "00".repeat(15)),
                format!("6120{}", "00".repeat(14)),
            ]
            .into();
            values.extend((0..300).map(|_| format!("{:016X}{:016X}", rng.next(), rng.next())));
            // Values sharing long prefixes, ending in 0x00/0xFF.
            values.extend((0..30).map(|i| format!("{}{:02X}", "00".repeat(15), i * 8 + 7)));
            setup(
                server,
                "bin16",
                &format!(
                    "CREATE TABLE t (id BINARY(16) PRIMARY KEY, v INT); {}",
                    insert("t", false, values.iter().map(|v| format!("X'{v}', 1")))
                ),
            );
            let ChunkPlan { chunks, .. } = plan_and_check(s, "bin16", "t").await;
            assert_eq!(
                chunks[0].range.as_deref(),
                Some(format!("`id` <= X'{}'", values.iter().nth(6).unwrap()).as_str())
            );
        });
    }

    #[test]
    fn datetime6_key() {
        with_session(async |server, s| {
            setup(
                server,
                "dt",
                "CREATE TABLE t (at DATETIME(6) PRIMARY KEY);
             INSERT IGNORE INTO t SELECT TIMESTAMP'2000-01-01 00:00:00'
               + INTERVAL (seq * seq * 7919 % 1000000007) SECOND
               + INTERVAL (seq * 104729 % 1000000) MICROSECOND FROM seq_1_to_300;
             INSERT INTO t VALUES ('1000-01-01 00:00:00.000000'),
               ('9999-12-31 23:59:59.999999'), ('2000-01-01 00:00:00.000001');",
            );
            let ChunkPlan { chunks, .. } = plan_and_check(s, "dt", "t").await;
            assert_eq!(
                chunks[0].range.as_deref(),
                Some(
                    format!(
                        "`at` <= '{}'",
                        server.sql_value("SELECT at FROM dt.t ORDER BY at LIMIT 1 OFFSET 6")
                    )
                    .as_str()
                )
            );
        });
    }

    #[test]
    fn three_column_key_of_date_time_and_year_with_zero_dates_and_negative_times() {
        with_session(async |server, s| {
            setup(
                server,
                "dty",
                "CREATE TABLE t (d DATE NOT NULL, tm TIME(2) NOT NULL, y YEAR NOT NULL,
                   PRIMARY KEY (d, tm, y));
                 INSERT IGNORE INTO t SELECT
                   IF(seq % 7 = 0, '0000-00-00', DATE'2020-01-01' + INTERVAL seq % 3 DAY),
                   SEC_TO_TIME(CAST(seq % 4 AS SIGNED) * 1000000 - 1500000 + seq % 2 / 100),
                   1901 + seq * 37 % 255
                 FROM seq_1_to_400;
                 INSERT IGNORE INTO t VALUES ('0000-00-00', '-838:59:59', 0),
                   ('9999-12-31', '838:59:59', 2155);",
            );
            let ChunkPlan { key: k, chunks, .. } = plan_and_check(s, "dty", "t").await;
            assert_eq!(k, key(&["d", "tm", "y"], "PRIMARY"));
            assert!(chunks.len() > 40, "{}", chunks.len());
        });
    }

    #[test]
    fn timestamp_key_across_a_dst_change_of_the_server_zone() {
        with_session(async |server, s| {
            // Every 13 s from 00:00 UTC on the day Berlin (the server's SYSTEM zone) turns its
            // clocks back at 01:00 UTC: the planner's UTC session sees no ambiguity.
            setup(
                server,
                "ts",
                "SET time_zone = '+00:00';
             CREATE TABLE t (at TIMESTAMP(3) NOT NULL, PRIMARY KEY (at));
             INSERT INTO t SELECT TIMESTAMP'2023-10-29 00:00:00' + INTERVAL seq * 13 SECOND
               + INTERVAL seq * 1000 MICROSECOND FROM seq_1_to_400;",
            );
            plan_and_check(s, "ts", "t").await;
        });
    }

    #[test]
    fn a_timestamp_key_is_not_chunked_in_a_session_with_daylight_saving_time() {
        with_session(async |server, s| {
            setup(
                server,
                "tssys",
                "SET time_zone = '+00:00';
                 CREATE TABLE t (at TIMESTAMP(3) NOT NULL, PRIMARY KEY (at));
                 INSERT INTO t SELECT TIMESTAMP'2023-10-29 00:00:00' + INTERVAL seq * 13 SECOND
                   FROM seq_1_to_400;",
            );
            // SYSTEM is Europe/Berlin: 02:00-03:00 local happens twice on that day, so one
            // boundary text would stand for two instants (the plan was lopsided).
            s.exec("SET time_zone = SYSTEM", "setting the time zone")
                .await
                .unwrap();
            let ChunkPlan { key: k, chunks, .. } = plan_and_check(s, "tssys", "t").await;
            assert_eq!(k, None);
            assert_eq!(chunks.len(), 1);
        });
    }

    // ---------------------------------------------------------------------------
    // Key choice and one-chunk tables.

    #[test]
    fn unique_not_null_key_with_the_fewest_columns_when_there_is_no_primary_key() {
        with_session(async |server, s| {
            setup(
                server,
                "uniq",
                "CREATE TABLE t (a INT NOT NULL, b INT NOT NULL, c INT NOT NULL, n INT,
               UNIQUE KEY ab (a, b), UNIQUE KEY c_only (c), UNIQUE KEY n_only (n), KEY a (a));
             INSERT INTO t SELECT seq % 10, seq, 1000 - seq * 3, seq FROM seq_1_to_200;",
            );
            let ChunkPlan { key: k, .. } = plan_and_check(s, "uniq", "t").await;
            assert_eq!(k, key(&["c"], "c_only"));
        });
    }

    #[test]
    fn declined_key_types_leave_the_choice_to_other_keys() {
        with_session(async |server, s| {
            setup(
                server,
                "declined",
                "CREATE TABLE dbl (d DOUBLE PRIMARY KEY, i INT NOT NULL, UNIQUE KEY i (i));
             CREATE TABLE enm (e ENUM('x', 'y', 'z') PRIMARY KEY);
             CREATE TABLE prefix (s VARCHAR(100) NOT NULL, PRIMARY KEY (s(10)));
             CREATE TABLE blob_unique (b BLOB NOT NULL, UNIQUE KEY b (b));
             CREATE TABLE mem (id INT PRIMARY KEY) ENGINE=MEMORY;
             INSERT INTO enm VALUES ('x'), ('y'), ('z');",
            );
            assert_eq!(
                choose_key(s, "declined", "dbl").await.unwrap(),
                key(&["i"], "i")
            );
            for t in ["enm", "prefix", "blob_unique", "mem"] {
                assert_eq!(choose_key(s, "declined", t).await.unwrap(), None, "{t}");
            }
            let ChunkPlan { key: k, chunks, .. } =
                plan_chunks(s, "declined", "enm", 1).await.unwrap();
            assert_eq!(k, None);
            assert_eq!(chunks.len(), 1);
            assert_eq!(chunks[0].range, None);
        });
    }

    #[test]
    fn a_table_without_a_key_is_one_chunk() {
        with_session(async |server, s| {
            setup(
                server,
                "nokey",
                "CREATE TABLE t (a INT, b VARCHAR(10), KEY a (a));
             INSERT INTO t SELECT seq % 3, 'x' FROM seq_1_to_100;",
            );
            let ChunkPlan { key: k, chunks, .. } = plan_and_check(s, "nokey", "t").await;
            assert_eq!(k, None);
            assert_eq!(chunks.len(), 1);
            assert_eq!(chunks[0].range, None);
        });
    }

    #[test]
    fn a_table_with_only_a_nullable_unique_key_is_one_chunk() {
        with_session(async |server, s| {
            setup(
                server,
                "nullable",
                "CREATE TABLE t (a INT NULL, UNIQUE KEY a (a));
             INSERT INTO t SELECT IF(seq % 10 = 0, NULL, seq) FROM seq_1_to_100;",
            );
            let ChunkPlan { key: k, chunks, .. } = plan_and_check(s, "nullable", "t").await;
            assert_eq!(k, None);
            assert_eq!(chunks.len(), 1);
            assert_eq!(chunks[0].range, None);
        });
    }

    #[test]
    fn an_empty_table_is_one_chunk_without_a_range() {
        with_session(async |server, s| {
            setup(server, "empty", "CREATE TABLE t (id INT PRIMARY KEY);");
            let ChunkPlan { key: k, chunks, .. } = plan_and_check(s, "empty", "t").await;
            assert_eq!(k, key(&["id"], "PRIMARY"));
            assert_eq!(
                chunks,
                vec![Chunk {
                    index: 0,
                    range: None,
                    estimated_rows: 0
                }]
            );
        });
    }

    #[test]
    fn tables_of_at_most_target_rows_are_one_chunk() {
        with_session(async |server, s| {
            setup(
            server,
            "small",
            "CREATE TABLE five (id INT PRIMARY KEY); INSERT INTO five SELECT seq FROM seq_1_to_5;
             CREATE TABLE seven (id INT PRIMARY KEY); INSERT INTO seven SELECT seq FROM seq_1_to_7;
             CREATE TABLE eight (id INT PRIMARY KEY); INSERT INTO eight SELECT seq FROM seq_1_to_8;
             CREATE TABLE five_far (id BIGINT PRIMARY KEY);
             INSERT INTO five_far SELECT seq * 1000000000000 FROM seq_1_to_5;
             CREATE TABLE eight_far (id INT PRIMARY KEY); INSERT INTO eight_far SELECT seq * 10 FROM seq_1_to_8;",
        );
            for (t, rows) in [("five", 5), ("seven", 7), ("five_far", 5)] {
                let plan = plan_and_check(s, "small", t).await;
                assert_eq!(plan.split, Split::Whole, "{t}");
                assert_eq!(
                    plan.chunks,
                    vec![Chunk {
                        index: 0,
                        range: None,
                        estimated_rows: rows
                    }],
                    "{t}"
                );
            }
            // Eight dense ids: two ranges of 4 values, not 7 + 1.
            let plan = plan_and_check(s, "small", "eight").await;
            assert_eq!(plan.split, Split::Arithmetic);
            assert_eq!(plan.chunks.len(), 2);
            assert_eq!(plan.chunks[1].range.as_deref(), Some("`id` > 4"));
            assert_eq!(plan.chunks[1].estimated_rows, 4);
            // Eight sparse ids: walked, 7 + 1.
            let plan = plan_and_check(s, "small", "eight_far").await;
            assert_eq!(plan.split, Split::Walk);
            assert_eq!(plan.chunks[1].range.as_deref(), Some("`id` > 70"));
            assert_eq!(plan.chunks[1].estimated_rows, 1);
        });
    }

    #[test]
    fn odd_names_are_quoted() {
        with_session(async |server, s| {
            setup(
                server,
                "odd db`name",
                "CREATE TABLE `t ``x` (`i``d` INT PRIMARY KEY); \
             INSERT INTO `t ``x` SELECT seq * 3 FROM seq_1_to_50;",
            );
            let ChunkPlan { key: k, chunks, .. } = plan_and_check(s, "odd db`name", "t `x").await;
            assert_eq!(k, key(&["i`d"], "PRIMARY"));
            assert_eq!(chunks[0].range.as_deref(), Some("`i``d` <= 21"));
        });
    }

    #[test]
    fn a_missing_table_is_an_error_naming_it() {
        with_session(async |server, s| {
            setup(server, "missing", "");
            let e = plan_chunks(s, "missing", "nope", TARGET)
                .await
                .expect_err("no such table");
            assert!(e.to_string().contains("`missing`.`nope`"), "{e}");
        });
    }
}
