//! Micro-benchmarks of the row encoders (`cargo bench --bench encode`).
//!
//! Each benchmark encodes one batch of realistic rows (1,000 rows, made once from a fixed
//! seed) into a reused buffer, as the dump does between two flushes, and reports the
//! throughput in *output* bytes per second (what a dump writes). Two row shapes:
//!
//! * `sysbench`: sysbench's `sbtest` table (`id INT, k INT, c CHAR(120), pad CHAR(60)`),
//!   digits and dashes: the common case, nothing to escape.
//! * `mixed`: the types of `fixtures/fidelity.sql` in one row (integers, DECIMAL, FLOAT,
//!   DOUBLE, BIT, CHAR/VARCHAR/TEXT with quotes, backslashes, newlines and 4-byte UTF-8,
//!   VARBINARY/BLOB of arbitrary bytes, ENUM, SET, temporals, JSON, about 10% NULLs).
//!
//! Not for: anything that touches a server or a file (see `benches/compare.rs`).

use divan::Bencher;
use divan::counter::BytesCount;

use rdump::format::encode::csv::CsvEncoder;
use rdump::format::encode::push_hex;
use rdump::format::encode::sql::{InsertStyle, SqlEncoder, encode_value};
use rdump::format::encode::tab::TabEncoder;
use rdump::format::encode::tab::TabFormat;
use rdump::format::objects::ColumnKind;
use rdump::format::shape::InsertMode;

fn main() {
    divan::main();
}

const ROWS: usize = 1_000;
/// mysqldump's and rdump's default `net_buffer_length` for extended INSERTs.
const NET_BUFFER_LENGTH: usize = 1024 * 1024;

/// A small deterministic generator (xorshift64*), so every run encodes the same rows.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// sysbench's `###########-###########-...` groups of 11 digits.
    fn digit_groups(&mut self, groups: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(groups * 12);
        for g in 0..groups {
            if g > 0 {
                out.push(b'-');
            }
            for _ in 0..11 {
                out.push(b'0' + self.below(10) as u8);
            }
        }
        out
    }
}

type Row = Vec<Option<Vec<u8>>>;

struct Table {
    kinds: Vec<ColumnKind>,
    rows: Vec<Row>,
}

impl Table {
    fn cells(&self) -> Vec<Vec<Option<&[u8]>>> {
        self.rows
            .iter()
            .map(|r| r.iter().map(|c| c.as_deref()).collect())
            .collect()
    }
}

/// NULL one time in ten, else `value`.
fn nullable(rng: &mut Rng, value: impl FnOnce(&mut Rng) -> Option<Vec<u8>>) -> Option<Vec<u8>> {
    if rng.below(10) == 0 { None } else { value(rng) }
}

fn text(s: impl Into<String>) -> Option<Vec<u8>> {
    Some(s.into().into_bytes())
}

fn sysbench_table() -> Table {
    let mut rng = Rng(0x5eed_0001);
    let rows = (1..=ROWS as u64)
        .map(|id| {
            vec![
                text(id.to_string()),
                text((rng.below(1_000_000)).to_string()),
                Some(rng.digit_groups(10)),
                Some(rng.digit_groups(5)),
            ]
        })
        .collect();
    Table {
        kinds: vec![
            ColumnKind::Number,
            ColumnKind::Number,
            ColumnKind::Text,
            ColumnKind::Text,
        ],
        rows,
    }
}

fn mixed_table() -> Table {
    use ColumnKind::*;
    let kinds = vec![
        Number, // id INT
        Number, // ti TINYINT
        Number, // bi BIGINT
        Number, // dec DECIMAL(20,6)
        Float,  // f FLOAT (read as DOUBLE)
        Number, // d DOUBLE
        Bit,    // bits BIT(12)
        Text,   // c CHAR(16)
        Text,   // vc VARCHAR(200) with quotes, backslashes, newlines, UTF-8
        Text,   // t TEXT
        Binary, // vb VARBINARY(32)
        Binary, // bl BLOB
        Enum,   // e ENUM
        Text,   // s SET
        Text,   // dt DATETIME(6)
        Text,   // ts TIMESTAMP
        Text,   // tm TIME(3)
        Number, // y YEAR
        Text,   // j JSON
    ];
    let mut rng = Rng(0x5eed_0002);
    let enums = ["red", "green", "blue", "it's"];
    let sets = ["", "a", "a,b", "b,c,d", "a,b,c,d"];
    let rows = (1..=ROWS as u64)
        .map(|id| {
            let hexish: String = (0..32)
                .map(|_| char::from(b"0123456789abcdef"[rng.below(16) as usize]))
                .collect();
            let ti = nullable(&mut rng, |rng| {
                text((rng.below(256) as i64 - 128).to_string())
            });
            let bi = text((rng.next() as i64 / 8).to_string());
            let dec = text(format!(
                "{}.{:06}",
                rng.below(100_000_000) as i64 - 50_000_000,
                rng.below(1_000_000)
            ));
            let f = nullable(&mut rng, |rng| {
                text(format!("{}", (rng.next() as f32) / 7.0e9_f32))
            });
            let d = text(format!("{:e}", (rng.next() as f64) / 3.0e7));
            let bits = Some(((rng.below(4096)) as u16).to_be_bytes().to_vec());
            let c = text(hexish[..1 + rng.below(16) as usize].to_string());
            let vc = nullable(&mut rng, |_| {
                text(format!(
                    "row {id} it's \"quoted\" \\ back\nline ü😀 {hexish}"
                ))
            });
            let t = text(format!("{hexish} ").repeat(1 + rng.below(12) as usize));
            let vb = Some(rng.bytes(32));
            let bl = nullable(&mut rng, |rng| {
                let len = 64 * (1 + rng.below(4) as usize);
                Some(rng.bytes(len))
            });
            let e = text(enums[rng.below(4) as usize]);
            let s = text(sets[rng.below(5) as usize]);
            let dt = text(format!(
                "20{:02}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
                rng.below(30),
                1 + rng.below(12),
                1 + rng.below(28),
                rng.below(24),
                rng.below(60),
                rng.below(60),
                rng.below(1_000_000)
            ));
            let ts = nullable(&mut rng, |rng| {
                text(format!(
                    "2021-{:02}-{:02} {:02}:{:02}:{:02}",
                    1 + rng.below(12),
                    1 + rng.below(28),
                    rng.below(24),
                    rng.below(60),
                    rng.below(60)
                ))
            });
            let tm = text(format!(
                "-{:03}:{:02}:{:02}.125",
                rng.below(800),
                rng.below(60),
                rng.below(60)
            ));
            let y = text((1901 + rng.below(255)).to_string());
            let j = nullable(&mut rng, |rng| {
                text(format!(
                    r#"{{"id": {id}, "name": "n{id}", "tags": ["x", {}, {}], "ok": true}}"#,
                    rng.below(10),
                    rng.below(1000) as f64 / 7.0
                ))
            });
            vec![
                text(id.to_string()),
                ti,
                bi,
                dec,
                f,
                d,
                bits,
                c,
                vc,
                t,
                vb,
                bl,
                e,
                s,
                dt,
                ts,
                tm,
                y,
                j,
            ]
        })
        .collect();
    Table { kinds, rows }
}

fn style(hex_blob: bool) -> InsertStyle {
    InsertStyle {
        mode: InsertMode::Insert,
        delayed: false,
        extended: true,
        hex_blob,
        charset: rdump::format::charset::TextCharset::of("utf8mb4"),
        net_buffer_length: NET_BUFFER_LENGTH,
    }
}

/// Bytes one run of `encode` appends to an empty buffer.
fn output_len(encode: &mut impl FnMut(&mut Vec<u8>)) -> usize {
    let mut out = Vec::new();
    encode(&mut out);
    out.len()
}

/// Runs `encode` (one batch into a cleared buffer) and counts its output bytes.
fn bench_batch(bencher: Bencher, mut encode: impl FnMut(&mut Vec<u8>)) {
    let len = output_len(&mut encode);
    let mut out = Vec::with_capacity(len * 2);
    bencher.counter(BytesCount::new(len)).bench_local(|| {
        out.clear();
        encode(&mut out);
        divan::black_box(out.len())
    });
}

fn table(shape: &str) -> Table {
    match shape {
        "sysbench" => sysbench_table(),
        "mixed" => mixed_table(),
        other => unreachable!("unknown shape {other}"),
    }
}

const SHAPES: &[&str] = &["sysbench", "mixed"];

/// `SqlEncoder::push_row` with extended INSERTs (the dump's default), 1,000 rows.
#[divan::bench(args = SHAPES)]
fn sql_push_row(bencher: Bencher, shape: &str) {
    let t = table(shape);
    let cells = t.cells();
    let mut enc = SqlEncoder::new("`t`", None, t.kinds.clone(), style(false));
    bench_batch(bencher, |out| {
        for row in &cells {
            enc.push_row(row, out);
        }
        enc.finish(out);
    });
}

/// `SqlEncoder::push_row` with `--hex-blob`, 1,000 rows.
#[divan::bench(args = ["mixed"])]
fn sql_push_row_hex_blob(bencher: Bencher, shape: &str) {
    let t = table(shape);
    let cells = t.cells();
    let mut enc = SqlEncoder::new("`t`", None, t.kinds.clone(), style(true));
    bench_batch(bencher, |out| {
        for row in &cells {
            enc.push_row(row, out);
        }
        enc.finish(out);
    });
}

/// `encode_value` alone, on 1,000 values of one kind of column.
#[divan::bench(args = ["number", "sysbench_c", "text_escapes", "binary", "binary_hex"])]
fn sql_encode_value(bencher: Bencher, column: &str) {
    let (t, index, hex_blob) = match column {
        "number" => (sysbench_table(), 1, false),
        "sysbench_c" => (sysbench_table(), 2, false),
        "text_escapes" => (mixed_table(), 8, false),
        "binary" => (mixed_table(), 10, false),
        "binary_hex" => (mixed_table(), 10, true),
        other => unreachable!("unknown column {other}"),
    };
    let kind = t.kinds[index];
    let values: Vec<Option<&[u8]>> = t.rows.iter().map(|r| r[index].as_deref()).collect();
    bench_batch(bencher, |out| {
        for v in &values {
            encode_value(*v, kind, hex_blob, out);
        }
    });
}

/// `CsvEncoder::push_row` (`--dir --format csv`), 1,000 rows.
#[divan::bench(args = SHAPES)]
fn csv_push_row(bencher: Bencher, shape: &str) {
    let t = table(shape);
    let cells = t.cells();
    let enc = CsvEncoder::new(t.kinds.clone());
    bench_batch(bencher, |out| {
        for row in &cells {
            enc.push_row(row, out);
        }
    });
}

/// `TabEncoder::push_row` (`--tab` with the default FIELDS/LINES), 1,000 rows.
#[divan::bench(args = SHAPES)]
fn tab_push_row(bencher: Bencher, shape: &str) {
    let t = table(shape);
    let cells = t.cells();
    let enc = TabEncoder::new(TabFormat::default(), t.kinds.clone());
    bench_batch(bencher, |out| {
        for row in &cells {
            enc.push_row(row, out);
        }
    });
}

/// `push_hex` on one value of this many bytes (a hash, a BLOB page).
#[divan::bench(args = [32, 4096, 65536])]
fn hex(bencher: Bencher, len: usize) {
    let bytes = Rng(0x5eed_0003).bytes(len);
    bench_batch(bencher, |out| push_hex(&bytes, out));
}
