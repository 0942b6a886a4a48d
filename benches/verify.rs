//! `cargo bench --bench verify`: `verify --read-data` (the library call `rbackup verify`
//! makes) against the issue 14 target, "at least as fast as reading the repository from
//! disk at zstd decompression speed on all cores".
//!
//! Builds, in a temporary directory, an encrypted repository holding one backup of
//! sysbench-like rows (`RBACKUP_BENCH_MB`, default 512 MiB of logical data) and, beside it,
//! the same data as plain zstd files laid out like packs (32 KiB blocks, each one zstd
//! frame at level 1, ~4 MiB files) with no encryption and no hashing. Then, page cache
//! warm for both (one untimed pass each), best of `RBACKUP_BENCH_ROUNDS` (default 3):
//!
//! - `baseline`: every zstd file read and every frame decompressed, files in parallel on
//!   rayon's pool (all cores): the target;
//! - `verify`: `backup::verify::verify` with `read_data: Some(100.0)`: every pack read and
//!   BLAKE3-hashed, decrypted (age), its table read, every blob decompressed and
//!   keyed-BLAKE3-hashed, plus snapshots, index and catalog;
//! - `read`: the repository's files read alone (what disk reading costs here).
//!
//! Prints logical MB/s for each and verify's ratio to the baseline, and the CPU time
//! (user + system, the whole process) of the baseline and of verify.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use age::secrecy::ExposeSecret;
use rayon::prelude::*;
use rdump::backup::store::{Store, StoreOptions};
use rdump::backup::verify::{self, VerifyOptions};
use rdump::backup::writer::SnapshotInfo;
use rdump::backup::{self, Access, BackupWriter, InitOptions, WriterOptions};

const BLOCK: usize = 32 * 1024;

/// Sysbench-like CSV rows (id, k, c, pad) from a xorshift generator.
struct Rows {
    state: u64,
    id: u64,
}

impl Rows {
    fn next_u64(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    fn fill(&mut self, out: &mut Vec<u8>, bytes: usize) {
        while out.len() < bytes {
            self.id += 1;
            let k = self.next_u64() % 1_000_000;
            write!(out, "{},{},\"", self.id, k).unwrap();
            for g in 0..10 {
                if g > 0 {
                    out.push(b'-');
                }
                write!(out, "{:011}", self.next_u64() % 100_000_000_000).unwrap();
            }
            out.extend_from_slice(b"\",\"");
            for g in 0..5 {
                if g > 0 {
                    out.push(b'-');
                }
                write!(out, "{:011}", self.next_u64() % 100_000_000_000).unwrap();
            }
            out.extend_from_slice(b"\"\n");
        }
    }
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn main() {
    let mb: usize = std::env::var("RBACKUP_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    let rounds: usize = std::env::var("RBACKUP_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let logical = mb << 20;
    let tmp = tempfile::Builder::new()
        .prefix("rbackup-bench-verify")
        .tempdir_in(std::env::var("RBACKUP_BENCH_DIR").unwrap_or_else(|_| "/tmp".into()))
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = tmp.path().join("repo").to_str().unwrap().to_string();
    let identity = age::x25519::Identity::generate();
    let id_path = tmp.path().join("reader.key");
    std::fs::write(&id_path, identity.to_string().expose_secret()).unwrap();

    // The repository: one backup of 8 files.
    let t = Instant::now();
    rt.block_on(async {
        let (repo, _) = backup::init(
            &url,
            InitOptions {
                recipients: vec![identity.to_public().to_string()],
                ..Default::default()
            },
            &StoreOptions::default(),
        )
        .await
        .unwrap();
        let w = BackupWriter::start(repo, WriterOptions::default())
            .await
            .unwrap();
        let mut rows = Rows {
            state: 0x9E37_79B9_7F4A_7C15,
            id: 0,
        };
        for f in 0..8 {
            let mut file = w.file(&format!("sbtest/sbtest{f}.csv"));
            let mut written = 0;
            let mut buf = Vec::with_capacity(1 << 20);
            while written < logical / 8 {
                buf.clear();
                rows.fill(&mut buf, 1 << 20);
                file.write(&buf).unwrap();
                written += buf.len();
            }
            w.close_file(file, serde_json::Value::Null).unwrap();
        }
        w.commit(SnapshotInfo::default()).await.unwrap();
    });
    eprintln!("repository written in {:.1} s", t.elapsed().as_secs_f64());

    // The baseline: the same rows as zstd frames of 32 KiB in ~4 MiB files.
    let plain_dir = tmp.path().join("zstd");
    std::fs::create_dir(&plain_dir).unwrap();
    let mut rows = Rows {
        state: 0x9E37_79B9_7F4A_7C15,
        id: 0,
    };
    let mut frames: Vec<Vec<(usize, usize)>> = Vec::new();
    let mut total = 0usize;
    let mut n = 0;
    let mut compressor = zstd::bulk::Compressor::new(1).unwrap();
    while total < logical {
        let mut data = Vec::with_capacity(4 << 20);
        rows.fill(&mut data, 4 << 20);
        total += data.len();
        let mut out = Vec::new();
        let mut lens = Vec::new();
        for block in data.chunks(BLOCK) {
            let c = compressor.compress(block).unwrap();
            lens.push((c.len(), block.len()));
            out.extend_from_slice(&c);
        }
        std::fs::write(plain_dir.join(format!("{n:06}.zst")), out).unwrap();
        frames.push(lens);
        n += 1;
    }

    let baseline = || {
        (0..frames.len()).into_par_iter().for_each(|i| {
            let data = std::fs::read(plain_dir.join(format!("{i:06}.zst"))).unwrap();
            let mut d = zstd::bulk::Decompressor::new().unwrap();
            let mut buf = Vec::with_capacity(BLOCK);
            let mut at = 0;
            for &(c, raw) in &frames[i] {
                buf.clear();
                d.decompress_to_buffer(&data[at..at + c], &mut buf).unwrap();
                assert_eq!(buf.len(), raw);
                at += c;
            }
        });
    };
    let repo_dir = tmp.path().join("repo");
    let read_only = || {
        files_under(&repo_dir).par_iter().for_each(|p| {
            std::hint::black_box(std::fs::read(p).unwrap());
        });
    };
    let access = Access::identity_file(&id_path).unwrap();
    let repo = rt
        .block_on(backup::open(&url, &access, &StoreOptions::default()))
        .unwrap();
    let store = Store::open(&url, &StoreOptions::default(), false).unwrap();
    let run_verify = || {
        let report = rt
            .block_on(verify::verify(
                &store,
                Some(&repo),
                &VerifyOptions {
                    read_data: Some(100.0),
                    ..Default::default()
                },
            ))
            .unwrap();
        assert_eq!(report.damage(), 0);
        report
    };

    let report = run_verify();
    let logical_bytes = report.raw_bytes_read as f64;
    let repo_bytes: u64 = files_under(&repo_dir)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    let zstd_bytes: u64 = files_under(&plain_dir)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    // Warm the page cache, then interleave the rounds (a shared machine's load moves).
    baseline();
    read_only();
    // Wall time and the process's CPU time (user + system, all threads).
    let time = |f: &dyn Fn()| {
        let (t, c) = (Instant::now(), cpu_seconds());
        f();
        (t.elapsed().as_secs_f64(), cpu_seconds() - c)
    };
    let (mut t_base, mut t_read, mut t_verify) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    let (mut c_base, mut c_verify) = (f64::INFINITY, f64::INFINITY);
    for round in 0..rounds {
        let (b, bc) = time(&baseline);
        let (r, _) = time(&read_only);
        let (v, vc) = time(&|| {
            run_verify();
        });
        eprintln!(
            "round {round}: baseline {b:.2} s (CPU {bc:.2} s), read {r:.2} s, verify {v:.2} s (CPU {vc:.2} s)"
        );
        t_base = t_base.min(b);
        t_read = t_read.min(r);
        t_verify = t_verify.min(v);
        c_base = c_base.min(bc);
        c_verify = c_verify.min(vc);
    }
    let mbps = |bytes: f64, t: f64| bytes / t / 1e6;
    println!(
        "verify --read-data bench: {:.0} MB logical ({} packs, {:.0} MB stored; zstd files {:.0} MB), {} rayon threads, best of {rounds}",
        logical_bytes / 1e6,
        report.packs,
        repo_bytes as f64 / 1e6,
        zstd_bytes as f64 / 1e6,
        rayon::current_num_threads()
    );
    println!(
        "  baseline (read + zstd -d, all cores): {t_base:.2} s, {:.0} MB/s logical",
        mbps(total as f64, t_base)
    );
    println!(
        "  read the repository's files only:    {t_read:.2} s, {:.0} MB/s stored",
        mbps(repo_bytes as f64, t_read)
    );
    println!(
        "  verify --read-data:                   {t_verify:.2} s, {:.0} MB/s logical ({:.2}x the baseline's speed)",
        mbps(logical_bytes, t_verify),
        mbps(logical_bytes, t_verify) / mbps(total as f64, t_base)
    );
    println!(
        "  CPU (user + system, least of the rounds): baseline {c_base:.2} s, verify {c_verify:.2} s ({:.2}x the baseline's CPU per logical byte)",
        (c_verify / logical_bytes) / (c_base / total as f64)
    );
}

/// User + system CPU seconds of this process so far (all its threads).
fn cpu_seconds() -> f64 {
    // SAFETY: rusage is plain data; getrusage fills it for this process.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}
