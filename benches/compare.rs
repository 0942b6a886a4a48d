//! `cargo bench --bench compare`: rdump against its peers on sandbox MariaDB servers.
//!
//! What it does, in order:
//!
//! 1. Installs `sysbench` and `mydumper` (which brings `myloader`) with apt-get when they
//!    are missing (`RDUMP_BENCH_NO_INSTALL=1` to skip; mydumper's rows are then marked
//!    unavailable).
//! 2. Builds the datasets, each once per parameter set and MariaDB version, into
//!    `target/bench-data/<dataset>-<params>-<hash>/` (a datadir after a slow, clean
//!    shutdown, plus the `CHECKSUM TABLE` of every table):
//!    * `sysbench`: `sbtest.sbtest1..N`, sysbench's `oltp_read_write` tables,
//!    * `mixed`: one table `mixed.mixed` with the types of `fixtures/fidelity.sql`
//!      (integers, DECIMAL, FLOAT, DOUBLE, BIT, strings with quotes/backslashes/newlines/
//!      4-byte UTF-8, binary strings, ENUM, SET, temporals, JSON, NULLs),
//!    * `big`: one sysbench table `sbbig.sbtest1`,
//!    * `restore`: `sbtest.sbtest1..N` for the restore benchmarks.
//! 3. For each dump dataset: copies the cached datadir, starts a private `mariadbd` on it
//!    (the harness of `tests/common`, with a buffer pool that holds the data), warms the
//!    buffer pool, then runs interleaved rounds (the order rotates each round) of the
//!    floor query, `mysqldump` (the system's `mariadb-dump`), `mydumper`, `rdump` and
//!    `rdump --dir` in SQL, CSV and CSV+zstd over the unix socket, and `mysqldump`,
//!    `mydumper`, `rdump` and `rdump --dir` (SQL) over TCP to 127.0.0.1.
//! 4. For the restore dataset: makes each tool's dump once, then runs interleaved rounds of
//!    restores, each into a fresh empty server: `mysql < dump.sql` (mysqldump's and
//!    rdump's dumps), `myloader`, and `rload` on each `rdump --dir` format (when the `rload`
//!    binary exists), and `rload --fast-unsafe` on the CSV one. Every restore is checked
//!    against the source's `CHECKSUM TABLE`; the table also gives the server's CPU per row.
//!    Targets run with the test harness's relaxed settings (innodb_flush_log_at_trx_commit=2,
//!    no doublewrite) unless `RDUMP_BENCH_DURABLE_TARGETS=1` starts them with the server's
//!    durable defaults (1, doublewrite ON), where `--fast-unsafe` has something to relax.
//! 5. Prints a Markdown report and writes it to `target/bench-results/compare-<time>.md`.
//!
//! Measures per run: wall time; client CPU (user+sys) and peak RSS from `wait4` on the
//! client process; server CPU from `/proc/<mariadbd>/stat` (utime+stime) before and after;
//! context switches of the client (`wait4`) and of the server's threads
//! (`/proc/<mariadbd>/task/*/status`); output bytes. The report names the CPU model, the
//! cores, the kernel and the load average. The table shows medians over the rounds. The *floor* is the server CPU
//! of `mariadb --quick -e 'SELECT * FROM t1; SELECT * FROM t2; ...' > /dev/null` divided by
//! the number of cores: no dump can be faster than the server sending the rows.
//!
//! Settings (environment variables, all optional):
//! `RDUMP_BENCH_QUICK=1` (4 x 100,000 rows, restore 4 x 50,000, 1 round),
//! `RDUMP_BENCH_ROUNDS` (3), `RDUMP_BENCH_THREADS` (the number of cores),
//! `RDUMP_BENCH_TABLES` (8), `RDUMP_BENCH_ROWS` (1M), `RDUMP_BENCH_MIXED_ROWS` (= ROWS),
//! `RDUMP_BENCH_BIG_ROWS` (4 x ROWS), `RDUMP_BENCH_RESTORE_TABLES` (4),
//! `RDUMP_BENCH_RESTORE_ROWS` (250K), `RDUMP_BENCH_CHUNK_SIZE` (100K: rdump's
//! `--chunk-size` and mydumper's `--rows`), `RDUMP_BENCH_DATASETS`
//! (`sysbench,mixed,big,restore`), `RDUMP_BENCH_RLOAD_ARGS` (rload's arguments, with
//! `{socket}`, `{threads}`, `{dir}` placeholders), `RDUMP_BENCH_NO_INSTALL=1`,
//! `RDUMP_BENCH_DURABLE_TARGETS=1`.
//! Counts take `K`/`M` suffixes and `_` separators.
//!
//! Not for: correctness of the dump contents (the integration tests do that) or the
//! encoders alone (`benches/encode.rs`).

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, ServerOptions};

/// Bump when the generated data or the way datadirs are cached changes.
const GENERATOR_VERSION: &str = "v1";
/// InnoDB redo log of every bench server (loads checkpoint much less than with 8M).
const LOG_FILE_SIZE: &str = "256M";
/// Buffer pool of the restore targets.
const TARGET_BUFFER_POOL_MB: u64 = 1024;
/// Rows per INSERT ... SELECT when generating the mixed table.
const MIXED_BATCH: u64 = 100_000;

fn main() {
    if std::env::var_os("RDUMP_TEST_WATCHDOG_SECS").is_none() {
        // A full run takes longer than the test harness's 10-minute hang watchdog.
        // SAFETY: the first statement of main, before any other thread exists.
        unsafe { std::env::set_var("RDUMP_TEST_WATCHDOG_SECS", "0") };
    }
    let begin = Instant::now();
    let cfg = Config::from_env();
    let mut notes = Vec::new();
    let tools = Tools::locate(&cfg, &mut notes);
    let ctx = Ctx::new(cfg, tools);
    ctx.sweep_stale();
    log(&format!(
        "config: {} round(s), {} thread(s), datasets {:?}",
        ctx.cfg.rounds, ctx.cfg.threads, ctx.cfg.datasets
    ));

    let mut report = Report {
        notes,
        ..Report::default()
    };
    for name in ctx.cfg.datasets.clone() {
        let ds = ctx.dataset(&name);
        if name == "restore" {
            match bench_restores(&ctx, &ds) {
                Ok(r) => report.restores = Some(r),
                Err(e) => report.notes.push(format!("restore benchmark failed: {e}")),
            }
        } else {
            match bench_dumps(&ctx, &ds) {
                Ok(r) => report.dumps.push(r),
                Err(e) => report
                    .notes
                    .push(format!("{} benchmark failed: {e}", ds.label())),
            }
        }
    }
    report.elapsed = begin.elapsed();
    let text = report.render(&ctx);
    println!("{text}");
    let dir = ctx.target_dir.join("bench-results");
    let path = dir.join(format!(
        "compare-{}.md",
        chrono::Local::now().format("%Y%m%d-%H%M%S")
    ));
    match fs::create_dir_all(&dir).and_then(|()| fs::write(&path, &text)) {
        Ok(()) => log(&format!("report written to {}", path.display())),
        Err(e) => log(&format!("cannot write {}: {e}", path.display())),
    }
}

fn log(msg: &str) {
    eprintln!(
        "[compare {}] {msg}",
        chrono::Local::now().format("%H:%M:%S")
    );
}

// ---------------------------------------------------------------------------
// Settings.

#[derive(Clone, Debug)]
struct Config {
    rounds: usize,
    threads: usize,
    cores: usize,
    tables: usize,
    rows: u64,
    mixed_rows: u64,
    big_rows: u64,
    restore_tables: usize,
    restore_rows: u64,
    chunk_size: u64,
    datasets: Vec<String>,
    install: bool,
    rload_args: Option<String>,
    /// Restore targets with innodb_flush_log_at_trx_commit=1 and doublewrite ON.
    durable_targets: bool,
}

impl Config {
    fn from_env() -> Config {
        let quick = env_flag("RDUMP_BENCH_QUICK");
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let tables = env_count("RDUMP_BENCH_TABLES", if quick { 4 } else { 8 }) as usize;
        let rows = env_count("RDUMP_BENCH_ROWS", if quick { 100_000 } else { 1_000_000 });
        let datasets = std::env::var("RDUMP_BENCH_DATASETS")
            .unwrap_or_else(|_| "sysbench,mixed,big,restore".into())
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>();
        for d in &datasets {
            assert!(
                ["sysbench", "mixed", "big", "restore"].contains(&d.as_str()),
                "RDUMP_BENCH_DATASETS: unknown dataset {d:?} (sysbench, mixed, big, restore)"
            );
        }
        Config {
            rounds: env_count("RDUMP_BENCH_ROUNDS", if quick { 1 } else { 3 }).max(1) as usize,
            threads: env_count("RDUMP_BENCH_THREADS", cores as u64).max(1) as usize,
            cores,
            tables: tables.max(1),
            rows: rows.max(1),
            mixed_rows: env_count("RDUMP_BENCH_MIXED_ROWS", rows).max(1),
            big_rows: env_count("RDUMP_BENCH_BIG_ROWS", 4 * rows).max(1),
            restore_tables: env_count("RDUMP_BENCH_RESTORE_TABLES", 4).max(1) as usize,
            restore_rows: env_count(
                "RDUMP_BENCH_RESTORE_ROWS",
                if quick { 50_000 } else { 250_000 },
            )
            .max(1),
            chunk_size: env_count("RDUMP_BENCH_CHUNK_SIZE", 100_000).max(1),
            datasets,
            install: !env_flag("RDUMP_BENCH_NO_INSTALL"),
            rload_args: std::env::var("RDUMP_BENCH_RLOAD_ARGS").ok(),
            durable_targets: env_flag("RDUMP_BENCH_DURABLE_TARGETS"),
        }
    }

    /// The environment variables that differ from the defaults, for the report.
    fn env_line() -> String {
        let mut vars: Vec<String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("RDUMP_BENCH_"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        vars.sort();
        vars.join(" ")
    }
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// A count from the environment: `250000`, `250_000`, `250K`, `1M`.
fn env_count(name: &str, default: u64) -> u64 {
    let Ok(raw) = std::env::var(name) else {
        return default;
    };
    let s: String = raw.chars().filter(|c| !matches!(c, '_' | ',')).collect();
    let (digits, factor) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 1_000),
        Some('m' | 'M') => (&s[..s.len() - 1], 1_000_000),
        _ => (&s[..], 1),
    };
    digits
        .parse::<u64>()
        .map(|n| n * factor)
        .unwrap_or_else(|_| panic!("{name}={raw:?} is not a count"))
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let groups: Vec<&str> = digits
        .as_bytes()
        .rchunks(3)
        .rev()
        .map(|g| std::str::from_utf8(g).expect("ASCII digits"))
        .collect();
    groups.join(",")
}

// ---------------------------------------------------------------------------
// Tools under test and their peers.

struct Tools {
    rdump: PathBuf,
    rload: Option<PathBuf>,
    rload_note: String,
    sysbench: Option<PathBuf>,
    mydumper: Option<PathBuf>,
    myloader: Option<PathBuf>,
    mysqldump: PathBuf,
    mariadb: PathBuf,
}

impl Tools {
    fn locate(cfg: &Config, notes: &mut Vec<String>) -> Tools {
        install_missing_packages(cfg, notes);
        let rdump = PathBuf::from(env!("CARGO_BIN_EXE_rdump"));
        let release = rdump.parent().expect("target/release").to_path_buf();
        let (rload, rload_note) = match option_env!("CARGO_BIN_EXE_rload") {
            Some(p) => (
                Some(PathBuf::from(p)),
                "built by this cargo run".to_string(),
            ),
            None if release.join("rload").is_file() => (
                Some(release.join("rload")),
                "target/release/rload (not a target of this build: may be stale)".to_string(),
            ),
            None => (None, "no rload binary in target/release".to_string()),
        };
        let mydumper = which("mydumper");
        let myloader = which("myloader");
        if mydumper.is_none() || myloader.is_none() {
            notes.push(mydumper_missing_note());
        }
        Tools {
            rdump,
            rload,
            rload_note,
            sysbench: which("sysbench"),
            mydumper,
            myloader,
            mysqldump: PathBuf::from(common::system_dump_bin()),
            mariadb: PathBuf::from(common::client_bin()),
        }
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn install_missing_packages(cfg: &Config, notes: &mut Vec<String>) {
    let missing: Vec<&str> = [("sysbench", "sysbench"), ("mydumper", "mydumper")]
        .into_iter()
        .filter(|(bin, _)| which(bin).is_none())
        .map(|(_, pkg)| pkg)
        .collect();
    if missing.is_empty() {
        return;
    }
    if !cfg.install {
        notes.push(format!(
            "not installed (RDUMP_BENCH_NO_INSTALL): {}",
            missing.join(", ")
        ));
        return;
    }
    let apt = |args: &[&str]| -> bool {
        let root = unsafe { libc::geteuid() } == 0;
        let mut cmd = if root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        cmd.args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        log(&format!("apt-get {}", args.join(" ")));
        cmd.status().is_ok_and(|s| s.success())
    };
    let install = |pkg: &str| apt(&["install", "-y", "-q", "--no-install-recommends", pkg]);
    let mut updated = false;
    for pkg in missing {
        if install(pkg) {
            continue;
        }
        if !updated {
            updated = true;
            apt(&["update", "-q"]);
            if install(pkg) {
                continue;
            }
        }
        notes.push(format!("apt-get could not install {pkg}"));
    }
}

fn mydumper_missing_note() -> String {
    let policy = Command::new("apt-cache")
        .args(["policy", "mydumper"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if policy.contains("Candidate: (none)") || policy.trim().is_empty() {
        "mydumper is not packaged for this system (apt-cache policy mydumper: no candidate): \
         its rows (mydumper, myloader) are skipped"
            .to_string()
    } else {
        "mydumper/myloader are not installed: their rows are skipped".to_string()
    }
}

fn version_of(bin: &Path, arg: &str) -> String {
    Command::new(bin)
        .arg(arg)
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_else(|| "unknown".into())
}

// ---------------------------------------------------------------------------
// Context: settings, tools and where things live.

struct Ctx {
    cfg: Config,
    tools: Tools,
    /// `target/`
    target_dir: PathBuf,
    /// `target/bench-data/`
    data_dir: PathBuf,
}

impl Ctx {
    fn new(cfg: Config, tools: Tools) -> Ctx {
        let target_dir = tools
            .rdump
            .parent()
            .and_then(Path::parent)
            .expect("rdump lives in target/<profile>/")
            .to_path_buf();
        let data_dir = target_dir.join("bench-data");
        fs::create_dir_all(&data_dir).expect("create target/bench-data");
        Ctx {
            cfg,
            tools,
            target_dir,
            data_dir,
        }
    }

    fn dataset(&self, name: &str) -> Dataset {
        let c = &self.cfg;
        match name {
            "sysbench" => Dataset::new(name, "sbtest", Shape::Sysbench, c.tables, c.rows),
            "mixed" => Dataset::new(name, "mixed", Shape::Mixed, 1, c.mixed_rows),
            "big" => Dataset::new(name, "sbbig", Shape::Sysbench, 1, c.big_rows),
            "restore" => Dataset::new(
                name,
                "sbtest",
                Shape::Sysbench,
                c.restore_tables,
                c.restore_rows,
            ),
            other => unreachable!("unknown dataset {other}"),
        }
    }

    /// Removes run, output and staging directories of bench processes that died.
    fn sweep_stale(&self) {
        for entry in fs::read_dir(&self.data_dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = ["run-", "out-"]
                .iter()
                .find_map(|p| name.strip_prefix(p))
                .or_else(|| name.split_once(".tmp-").map(|(_, rest)| rest))
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok());
            if let Some(pid) = pid
                && !Path::new(&format!("/proc/{pid}")).exists()
            {
                log(&format!("removing stale {}", entry.path().display()));
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }

    /// A directory under `target/bench-data/`, removed on drop.
    fn scratch(&self, prefix: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("{prefix}-{}-", std::process::id()))
            .tempdir_in(&self.data_dir)
            .expect("create scratch dir")
    }
}

// ---------------------------------------------------------------------------
// Datasets.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// sysbench `oltp_read_write` tables `sbtest1..N`.
    Sysbench,
    /// One table `mixed` with the column types of `fixtures/fidelity.sql`.
    Mixed,
}

#[derive(Clone, Debug)]
struct Dataset {
    name: String,
    db: String,
    shape: Shape,
    tables: usize,
    rows: u64,
}

impl Dataset {
    fn new(name: &str, db: &str, shape: Shape, tables: usize, rows: u64) -> Dataset {
        Dataset {
            name: name.into(),
            db: db.into(),
            shape,
            tables,
            rows,
        }
    }

    fn table_names(&self) -> Vec<String> {
        match self.shape {
            Shape::Sysbench => (1..=self.tables).map(|i| format!("sbtest{i}")).collect(),
            Shape::Mixed => vec!["mixed".into()],
        }
    }

    fn qualified_tables(&self) -> Vec<String> {
        self.table_names()
            .iter()
            .map(|t| format!("`{}`.`{t}`", self.db))
            .collect()
    }

    fn label(&self) -> String {
        let shape = match (self.name.as_str(), self.shape) {
            ("big", _) => "sysbench, one big table",
            (_, Shape::Sysbench) => "sysbench",
            (_, Shape::Mixed) => "mixed types, one table",
        };
        format!(
            "`{}`: {shape}, {} x {} rows",
            self.name,
            self.tables,
            thousands(self.rows)
        )
    }

    /// Directory name of the cached datadir: parameters plus a hash of everything else
    /// the files depend on.
    fn cache_key(&self) -> String {
        let version = Command::new(common::mariadbd_bin())
            .arg("--version")
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default();
        let mut key = version;
        key.extend_from_slice(
            format!(
                "{GENERATOR_VERSION}/{LOG_FILE_SIZE}/{:?}/{}",
                self.shape, self.db
            )
            .as_bytes(),
        );
        format!(
            "{}-{}x{}-{:012x}",
            self.name,
            self.tables,
            self.rows,
            fnv1a(&key) & 0xffff_ffff_ffff
        )
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A cached dataset: `dir/data` (datadir) and the source's checksums.
struct CachedDataset {
    dir: PathBuf,
    checksums: BTreeMap<String, String>,
}

/// The cached datadir of `ds`, built first if missing.
fn ensure_dataset(ctx: &Ctx, ds: &Dataset) -> Result<CachedDataset, String> {
    let dir = ctx.data_dir.join(ds.cache_key());
    if !dir.join("READY").exists() {
        let begin = Instant::now();
        log(&format!(
            "building dataset {} into {}",
            ds.label(),
            dir.display()
        ));
        build_dataset(ctx, ds, &dir)?;
        log(&format!(
            "built dataset {} in {:.0?}",
            ds.label(),
            begin.elapsed()
        ));
    }
    let text = fs::read_to_string(dir.join("checksums.tsv"))
        .map_err(|e| format!("reading checksums of {}: {e}", dir.display()))?;
    Ok(CachedDataset {
        dir,
        checksums: parse_checksums(&text),
    })
}

fn build_dataset(ctx: &Ctx, ds: &Dataset, dir: &Path) -> Result<(), String> {
    let staging = ctx.data_dir.join(format!(
        "{}.tmp-{}",
        dir.file_name().unwrap().to_string_lossy(),
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).map_err(|e| format!("create {}: {e}", staging.display()))?;
    let datadir = staging.join("data");
    copy_tree(common::template_datadir(), &datadir)?;
    let server = start_server(Some(&datadir), 2048);
    match ds.shape {
        Shape::Sysbench => load_sysbench(ctx, &server, ds, &staging)?,
        Shape::Mixed => load_mixed(&server, ds)?,
    }
    let checksums = checksum_tables(&server, ds)?;
    for (table, sum) in &checksums {
        if sum == "NULL" {
            return Err(format!("CHECKSUM TABLE {table} is NULL after loading"));
        }
    }
    shutdown_cleanly(server)?;
    let text: String = checksums
        .iter()
        .map(|(t, s)| format!("{t}\t{s}\n"))
        .collect();
    fs::write(staging.join("checksums.tsv"), text).map_err(|e| e.to_string())?;
    fs::write(staging.join("READY"), ds.label()).map_err(|e| e.to_string())?;
    let _ = fs::remove_dir_all(dir);
    fs::rename(&staging, dir).map_err(|e| format!("rename into {}: {e}", dir.display()))
}

fn load_sysbench(ctx: &Ctx, server: &Server, ds: &Dataset, staging: &Path) -> Result<(), String> {
    let sysbench = ctx
        .tools
        .sysbench
        .as_ref()
        .ok_or("sysbench is not installed (apt-get install sysbench)")?;
    server.sql(&format!("CREATE DATABASE `{}`", ds.db));
    let log_path = staging.join("sysbench.log");
    let log_file = File::create(&log_path).map_err(|e| e.to_string())?;
    let threads = ds.tables.min(ctx.cfg.cores).max(1);
    let status = Command::new(sysbench)
        .arg("oltp_read_write")
        .arg("--db-driver=mysql")
        .arg(format!("--mysql-socket={}", server.socket().display()))
        .arg("--mysql-user=root")
        .arg(format!("--mysql-db={}", ds.db))
        .arg(format!("--tables={}", ds.tables))
        .arg(format!("--table-size={}", ds.rows))
        .arg(format!("--threads={threads}"))
        .arg("prepare")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file)
        .status()
        .map_err(|e| format!("cannot run sysbench: {e}"))?;
    if !status.success() {
        return Err(format!(
            "sysbench prepare failed ({status}):\n{}",
            tail(&fs::read_to_string(&log_path).unwrap_or_default(), 20)
        ));
    }
    Ok(())
}

/// Deterministic rows of every common type, generated by the server from a sequence.
fn load_mixed(server: &Server, ds: &Dataset) -> Result<(), String> {
    let db = &ds.db;
    server.sql(&format!(
        "CREATE DATABASE `{db}` CHARACTER SET utf8mb4;
         CREATE TABLE `{db}`.mixed (
           id INT UNSIGNED NOT NULL PRIMARY KEY,
           ti TINYINT NULL,
           si SMALLINT UNSIGNED NOT NULL,
           bi BIGINT NOT NULL,
           dc DECIMAL(20,6) NULL,
           f FLOAT NULL,
           d DOUBLE NOT NULL,
           bits BIT(12) NOT NULL,
           c CHAR(16) NOT NULL,
           vc VARCHAR(200) NULL,
           t TEXT NOT NULL,
           vb VARBINARY(32) NOT NULL,
           bl BLOB NULL,
           e ENUM('red','green','blue','it''s') NOT NULL,
           s SET('a','b','c','d') NOT NULL,
           dt DATETIME(6) NOT NULL,
           ts TIMESTAMP NULL DEFAULT NULL,
           dd DATE NOT NULL,
           tm TIME(3) NOT NULL,
           y YEAR NOT NULL,
           j JSON NULL,
           KEY bi (bi)
         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;"
    ));
    let mut first = 1;
    while first <= ds.rows {
        let last = (first + MIXED_BATCH - 1).min(ds.rows);
        server
            .sql_result(&format!(
                r#"USE `{db}`;
                SET time_zone = '+00:00';
                INSERT INTO mixed
                SELECT n,
                  IF(n % 10 = 0, NULL, n % 256 - 128),
                  n % 65536,
                  CAST(CONV(SUBSTR(MD5(n), 1, 15), 16, 10) AS SIGNED) - 576460752303423488,
                  IF(n % 9 = 0, NULL, CRC32(n) / 1000000 - 50000),
                  IF(n % 8 = 0, NULL, CRC32(n) / 7.0e0),
                  CRC32(CONCAT('d', n)) / 4294967296e0 * POW(10e0, n % 40 - 20),
                  n % 4096,
                  LEFT(MD5(n), 1 + n % 16),
                  IF(n % 11 = 0, NULL, CONCAT('row ', n, ' it''s "quoted" \\ back',
                     CHAR(10), 'line ü😀 ', MD5(n))),
                  REPEAT(CONCAT(MD5(CONCAT('t', n)), ' '), 1 + n % 12),
                  UNHEX(SHA2(n, 256)),
                  IF(n % 5 = 0, NULL, UNHEX(REPEAT(SHA2(CONCAT('b', n), 512), 1 + n % 4))),
                  1 + n % 4,
                  n % 16,
                  TIMESTAMPADD(MICROSECOND, n * 7919013, '2000-01-01 00:00:00'),
                  IF(n % 7 = 0, NULL, FROM_UNIXTIME(946684800 + (n * 7919) % 1000000000)),
                  DATE('1970-01-01') + INTERVAL (n % 30000) DAY,
                  SEC_TO_TIME((n * 37) % 6000000 - 3000000 + 0.125),
                  1901 + n % 255,
                  IF(n % 6 = 0, NULL, JSON_OBJECT('id', n, 'name', CONCAT('n', n),
                     'tags', JSON_ARRAY('x', n % 10, n / 7), 'ok', n % 2 = 0))
                FROM (SELECT CAST(seq AS SIGNED) AS n FROM seq_{first}_to_{last}) AS s;"#
            ))
            .map_err(|e| format!("generating mixed rows {first}..{last}: {e}"))?;
        first = last + 1;
    }
    Ok(())
}

/// `CHECKSUM TABLE` of every table of `ds`: `db.table` -> checksum (`NULL` if missing).
fn checksum_tables(server: &Server, ds: &Dataset) -> Result<BTreeMap<String, String>, String> {
    let out = server.sql_result(&format!(
        "CHECKSUM TABLE {}",
        ds.qualified_tables().join(", ")
    ))?;
    Ok(parse_checksums(&out))
}

fn parse_checksums(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(t, s)| (t.trim().to_string(), s.trim().to_string()))
        .collect()
}

/// Slow shutdown (purge done, change buffer merged), so the datadir starts clean later.
fn shutdown_cleanly(mut server: Server) -> Result<(), String> {
    let pid = server.pid().ok_or("server not running")?;
    server.sql("SET GLOBAL innodb_fast_shutdown = 0");
    let _ = server.sql_result("SHUTDOWN");
    let deadline = Instant::now() + Duration::from_secs(900);
    while process_alive(pid) {
        if Instant::now() > deadline {
            return Err("mariadbd did not shut down within 15 minutes".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    server.stop(); // reaps the exited process
    Ok(())
}

/// True while `pid` runs (a zombie awaiting its parent's wait counts as exited).
fn process_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    let out = Command::new("cp")
        .arg("-a")
        .arg("--reflink=auto")
        .arg(from)
        .arg(to)
        .output()
        .map_err(|e| format!("cannot run cp: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cp -a {} {} failed: {}",
            from.display(),
            to.display(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A bench server: the harness's `mariadbd` options, on `datadir` when given (else the
/// empty template copy), with a buffer pool of `buffer_pool_mb` and a larger redo log.
fn start_server(datadir: Option<&Path>, buffer_pool_mb: u64) -> Server {
    let mut extra_args = vec![
        format!("--innodb-buffer-pool-size={buffer_pool_mb}M"),
        format!("--innodb-log-file-size={LOG_FILE_SIZE}"),
        "--max-allowed-packet=256M".to_string(),
        "--max-connections=500".to_string(),
    ];
    if let Some(dir) = datadir {
        // Appended last, so it overrides the harness's own --datadir.
        extra_args.push(format!("--datadir={}", dir.display()));
    }
    Server::start(ServerOptions {
        extra_args,
        ..Default::default()
    })
}

/// An empty restore target: the harness's relaxed durability, or with
/// `RDUMP_BENCH_DURABLE_TARGETS=1` the server's durable defaults.
fn start_target(cfg: &Config) -> Server {
    if !cfg.durable_targets {
        return start_server(None, TARGET_BUFFER_POOL_MB);
    }
    Server::start(ServerOptions {
        extra_args: vec![
            format!("--innodb-buffer-pool-size={TARGET_BUFFER_POOL_MB}M"),
            format!("--innodb-log-file-size={LOG_FILE_SIZE}"),
            "--max-allowed-packet=256M".to_string(),
            "--max-connections=500".to_string(),
            "--innodb-flush-log-at-trx-commit=1".to_string(),
            "--innodb-doublewrite=1".to_string(),
        ],
        ..Default::default()
    })
}

/// A server on a fresh copy of a cached dataset; both go away on drop (server first).
struct SourceServer {
    server: Server,
    _copy: tempfile::TempDir,
}

fn start_source(ctx: &Ctx, cached: &CachedDataset) -> Result<SourceServer, String> {
    let copy = ctx.scratch("run");
    let datadir = copy.path().join("data");
    let begin = Instant::now();
    copy_tree(&cached.dir.join("data"), &datadir)?;
    // The whole dataset fits in the buffer pool: dumps are measured on a warm server.
    let mb = dir_bytes(&datadir) / (1 << 20);
    let buffer_pool = (mb + mb / 4 + 256).clamp(512, 12 * 1024);
    let server = start_server(Some(&datadir), buffer_pool);
    log(&format!(
        "source server up ({} MiB datadir, {buffer_pool} MiB buffer pool) in {:.1?}",
        mb,
        begin.elapsed()
    ));
    Ok(SourceServer {
        server,
        _copy: copy,
    })
}

fn dir_bytes(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| dir_bytes(&e.path()))
        .sum()
}

// ---------------------------------------------------------------------------
// Measuring one client process.

#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    wall: f64,
    client_cpu: f64,
    server_cpu: f64,
    /// CPU used on the machine by everything else during the run (other users' builds
    /// and tests on a shared machine, kernel threads): the noise of this sample.
    other_cpu: f64,
    rss_kib: u64,
    bytes: u64,
    /// Voluntary and involuntary context switches of the client (all its threads, wait4).
    client_vcs: u64,
    client_ivcs: u64,
    /// Context switches (voluntary + involuntary) of the server's threads during the run,
    /// from /proc/<mariadbd>/task/*/status: threads that exit during the run are not
    /// counted (the server keeps its connection threads in its thread cache).
    server_cs: u64,
}

/// Runs `cmd` to completion and measures it. `stdin`/`stdout` default to null.
fn measure(
    mut cmd: Command,
    stdin: Option<File>,
    stdout: Option<File>,
    server_pid: u32,
) -> Result<Sample, String> {
    let stderr = tempfile::tempfile().map_err(|e| e.to_string())?;
    cmd.stdin(stdin.map_or_else(Stdio::null, Stdio::from))
        .stdout(stdout.map_or_else(Stdio::null, Stdio::from))
        .stderr(stderr.try_clone().map_err(|e| e.to_string())?);
    let what = describe(&cmd);
    let cpu_before = process_cpu_seconds(server_pid)?;
    let switches_before = thread_switches(server_pid);
    let busy_before = machine_busy_seconds();
    let begin = Instant::now();
    let child = cmd.spawn().map_err(|e| format!("cannot run {what}: {e}"))?;
    let (status, usage) = wait4(child.id()).map_err(|e| format!("waiting for {what}: {e}"))?;
    let wall = begin.elapsed().as_secs_f64();
    let cpu_after = process_cpu_seconds(server_pid)?;
    let switches_after = thread_switches(server_pid);
    let busy = machine_busy_seconds() - busy_before;
    drop(child); // already reaped by wait4
    if !exited_ok(status) {
        let mut text = String::new();
        let mut f = stderr;
        let _ = io::Seek::rewind(&mut f);
        let _ = io::Read::read_to_string(&mut f, &mut text);
        return Err(format!(
            "{what} {}: {}",
            status_text(status),
            tail(&text, 8)
        ));
    }
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    let client_cpu = secs(usage.ru_utime) + secs(usage.ru_stime);
    let server_cpu = cpu_after - cpu_before;
    Ok(Sample {
        wall,
        client_cpu,
        server_cpu,
        other_cpu: (busy - client_cpu - server_cpu).max(0.0),
        rss_kib: usage.ru_maxrss as u64,
        bytes: 0,
        client_vcs: usage.ru_nvcsw as u64,
        client_ivcs: usage.ru_nivcsw as u64,
        server_cs: switches_after
            .iter()
            .map(|(tid, n)| n.saturating_sub(switches_before.get(tid).copied().unwrap_or(0)))
            .sum(),
    })
}

/// Context switches (voluntary + involuntary) of each thread of a process, by thread id.
fn thread_switches(pid: u32) -> BTreeMap<u32, u64> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let status = fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let n: u64 = status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        out.insert(tid, n);
    }
    out
}

fn wait4(pid: u32) -> io::Result<(libc::c_int, libc::rusage)> {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; pid is a child of this process.
        let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if r == pid as libc::pid_t {
            return Ok((status, usage));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

fn exited_ok(status: libc::c_int) -> bool {
    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

fn status_text(status: libc::c_int) -> String {
    if libc::WIFEXITED(status) {
        format!("exited with {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("ended with status {status}")
    }
}

/// utime + stime of a process, in seconds (all its threads).
fn process_cpu_seconds(pid: u32) -> Result<f64, String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("reading /proc/{pid}/stat: {e}"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // Fields after the command name start at field 3 (state): utime is 14, stime 15.
    let ticks = |i: usize| -> Result<f64, String> {
        fields
            .get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| format!("malformed /proc/{pid}/stat"))
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((ticks(14)? + ticks(15)?) / hz)
}

/// Non-idle CPU time of the whole machine since boot (all cores), from /proc/stat.
fn machine_busy_seconds() -> f64 {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let busy: f64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| ticks.get(i))
        .sum();
    // SAFETY: sysconf has no preconditions.
    busy / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

fn describe(cmd: &Command) -> String {
    let name = Path::new(cmd.get_program())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    format!("`{name} {}`", args.join(" "))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The runs of one tool: samples, or why there are none (or fewer than asked).
#[derive(Clone, Debug, Default)]
struct Series {
    samples: Vec<Sample>,
    error: Option<String>,
    unavailable: Option<String>,
    /// Restores: every restore matched the source's CHECKSUM TABLE.
    checksums_ok: Option<bool>,
}

impl Series {
    fn unavailable(why: impl Into<String>) -> Series {
        Series {
            unavailable: Some(why.into()),
            ..Series::default()
        }
    }
    fn usable(&self) -> bool {
        self.error.is_none() && self.unavailable.is_none()
    }
    fn med(&self, f: impl Fn(&Sample) -> f64) -> Option<f64> {
        (!self.samples.is_empty()).then(|| median(self.samples.iter().map(f).collect()))
    }
    fn wall(&self) -> Option<f64> {
        self.med(|s| s.wall)
    }
    fn range(&self) -> Option<(f64, f64)> {
        let walls = self.samples.iter().map(|s| s.wall);
        (self.samples.len() > 1).then(|| {
            (
                walls.clone().fold(f64::INFINITY, f64::min),
                walls.fold(0.0, f64::max),
            )
        })
    }
    fn rss_mib(&self) -> Option<f64> {
        self.samples
            .iter()
            .map(|s| s.rss_kib)
            .max()
            .map(|k| k as f64 / 1024.0)
    }
}

// ---------------------------------------------------------------------------
// Dumps.

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Dumper {
    Floor,
    Mysqldump,
    Mydumper,
    Rdump,
    RdumpDirSql,
    RdumpDirCsv,
    RdumpDirCsvZstd,
    /// The same tools over TCP to 127.0.0.1 (the server's port) instead of the socket.
    MysqldumpTcp,
    MydumperTcp,
    RdumpTcp,
    RdumpDirSqlTcp,
}

const DUMPERS: [Dumper; 11] = [
    Dumper::Floor,
    Dumper::Mysqldump,
    Dumper::Mydumper,
    Dumper::Rdump,
    Dumper::RdumpDirSql,
    Dumper::RdumpDirCsv,
    Dumper::RdumpDirCsvZstd,
    Dumper::MysqldumpTcp,
    Dumper::MydumperTcp,
    Dumper::RdumpTcp,
    Dumper::RdumpDirSqlTcp,
];

impl Dumper {
    fn slug(self) -> &'static str {
        match self {
            Dumper::Floor => "floor",
            Dumper::Mysqldump => "mysqldump",
            Dumper::Mydumper => "mydumper",
            Dumper::Rdump => "rdump",
            Dumper::RdumpDirSql => "rdump-dir-sql",
            Dumper::RdumpDirCsv => "rdump-dir-csv",
            Dumper::RdumpDirCsvZstd => "rdump-dir-csv-zstd",
            Dumper::MysqldumpTcp => "mysqldump-tcp",
            Dumper::MydumperTcp => "mydumper-tcp",
            Dumper::RdumpTcp => "rdump-tcp",
            Dumper::RdumpDirSqlTcp => "rdump-dir-sql-tcp",
        }
    }

    /// Whether the tool connects over TCP to 127.0.0.1 rather than the unix socket.
    fn is_tcp(self) -> bool {
        matches!(
            self,
            Dumper::MysqldumpTcp | Dumper::MydumperTcp | Dumper::RdumpTcp | Dumper::RdumpDirSqlTcp
        )
    }

    /// The tool an rdump row is compared with (over the same transport).
    fn peer(self) -> Option<Dumper> {
        match self {
            Dumper::Rdump => Some(Dumper::Mysqldump),
            Dumper::RdumpTcp => Some(Dumper::MysqldumpTcp),
            Dumper::RdumpDirSqlTcp => Some(Dumper::MydumperTcp),
            x if x.is_dir_mode() => Some(Dumper::Mydumper),
            _ => None,
        }
    }

    /// The command as shown in the report (`$S` is the server's socket).
    fn shown(self, cfg: &Config) -> String {
        let n = cfg.threads;
        let chunk = cfg.chunk_size;
        match self {
            Dumper::MysqldumpTcp => {
                "mysqldump -h127.0.0.1 -PPORT --single-transaction --databases DB > dump.sql".into()
            }
            Dumper::MydumperTcp => {
                format!("mydumper -h 127.0.0.1 -P PORT -t {n} -r {chunk} -B DB -o DIR")
            }
            Dumper::RdumpTcp => {
                "rdump -h127.0.0.1 -PPORT --single-transaction --databases DB > dump.sql".into()
            }
            Dumper::RdumpDirSqlTcp => format!(
                "rdump -h127.0.0.1 -PPORT --dir DIR --threads {n} --chunk-size {chunk} --databases DB"
            ),
            Dumper::Floor => {
                "mariadb --quick -e 'SELECT * FROM t1; SELECT * FROM t2; …' > /dev/null".into()
            }
            Dumper::Mysqldump => "mysqldump --single-transaction --databases DB > dump.sql".into(),
            Dumper::Mydumper => format!("mydumper -t {n} -r {chunk} -B DB -o DIR"),
            Dumper::Rdump => "rdump --single-transaction --databases DB > dump.sql".into(),
            Dumper::RdumpDirSql => {
                format!("rdump --dir DIR --threads {n} --chunk-size {chunk} --databases DB")
            }
            Dumper::RdumpDirCsv => format!(
                "rdump --dir DIR --threads {n} --chunk-size {chunk} --format csv --databases DB"
            ),
            Dumper::RdumpDirCsvZstd => format!(
                "rdump --dir DIR --threads {n} --chunk-size {chunk} --format csv --zstd --databases DB"
            ),
        }
    }

    fn is_dir_mode(self) -> bool {
        matches!(
            self,
            Dumper::RdumpDirSql
                | Dumper::RdumpDirCsv
                | Dumper::RdumpDirCsvZstd
                | Dumper::RdumpDirSqlTcp
        )
    }

    fn is_rdump(self) -> bool {
        self == Dumper::Rdump || self == Dumper::RdumpTcp || self.is_dir_mode()
    }
}

/// Runs one dump of `ds` into `out` (a file or a directory path that does not exist yet).
fn run_dump(
    ctx: &Ctx,
    server: &Server,
    ds: &Dataset,
    d: Dumper,
    out: &Path,
) -> Result<Sample, String> {
    let cfg = &ctx.cfg;
    let tools = &ctx.tools;
    let socket = format!("--socket={}", server.socket().display());
    let port = format!("-P{}", server.port());
    // The tools' own connection options: the socket, or TCP to the loopback address.
    let conn: Vec<&str> = if d.is_tcp() {
        vec![
            "--no-defaults",
            "-uroot",
            "-h127.0.0.1",
            &port,
            "--protocol=tcp",
        ]
    } else {
        vec!["--no-defaults", "-uroot", &socket]
    };
    let pid = server.pid().ok_or("server is not running")?;
    let create = |p: &Path| File::create(p).map_err(|e| format!("create {}: {e}", p.display()));
    let rdump_dir = |extra: &[&str]| {
        let mut c = Command::new(&tools.rdump);
        c.args(&conn)
            .arg(format!("--dir={}", out.display()))
            .arg(format!("--threads={}", cfg.threads))
            .arg(format!("--chunk-size={}", cfg.chunk_size))
            .args(["--progress=never", "--quiet"])
            .args(extra)
            .args(["--databases", &ds.db]);
        c
    };
    let (cmd, stdout) = match d {
        Dumper::Floor => {
            let mut c = Command::new(&tools.mariadb);
            let selects: Vec<String> = ds
                .qualified_tables()
                .iter()
                .map(|t| format!("SELECT * FROM {t}"))
                .collect();
            c.args([
                "--no-defaults",
                "-uroot",
                &socket,
                "--quick",
                "--batch",
                "--skip-column-names",
                "--default-character-set=utf8mb4",
                "-e",
                &selects.join("; "),
            ]);
            (c, None)
        }
        Dumper::Mysqldump | Dumper::MysqldumpTcp => {
            let mut c = Command::new(&tools.mysqldump);
            c.args(&conn)
                .arg("--single-transaction")
                .args(["--databases", &ds.db]);
            (c, Some(create(out)?))
        }
        Dumper::Mydumper | Dumper::MydumperTcp => {
            let bin = tools.mydumper.as_ref().ok_or("mydumper is not installed")?;
            let mut c = Command::new(bin);
            c.args(["-u", "root"]);
            if d.is_tcp() {
                c.args(["-h", "127.0.0.1", "-P", &server.port().to_string()]);
            } else {
                c.arg("-S").arg(server.socket());
            }
            c.arg(format!("--threads={}", cfg.threads))
                .arg(format!("--rows={}", cfg.chunk_size))
                .args(["--database", &ds.db, "--outputdir"])
                .arg(out);
            (c, None)
        }
        Dumper::Rdump | Dumper::RdumpTcp => {
            let mut c = Command::new(&tools.rdump);
            c.args(&conn).arg("--single-transaction").args([
                "--progress=never",
                "--quiet",
                "--databases",
                &ds.db,
            ]);
            (c, Some(create(out)?))
        }
        Dumper::RdumpDirSql | Dumper::RdumpDirSqlTcp => (rdump_dir(&[]), None),
        Dumper::RdumpDirCsv => (rdump_dir(&["--format=csv"]), None),
        Dumper::RdumpDirCsvZstd => (rdump_dir(&["--format=csv", "--zstd"]), None),
    };
    let mut sample = measure(cmd, None, stdout, pid)?;
    sample.bytes = dir_bytes(out);
    Ok(sample)
}

struct DumpResults {
    ds: Dataset,
    series: BTreeMap<Dumper, Series>,
}

impl DumpResults {
    /// Server CPU of the plain SELECTs divided by the cores: the best a dump can do.
    fn floor(&self, cores: usize) -> Option<f64> {
        self.series
            .get(&Dumper::Floor)
            .and_then(|s| s.med(|x| x.server_cpu))
            .map(|cpu| cpu / cores as f64)
    }
    fn wall(&self, d: Dumper) -> Option<f64> {
        self.series
            .get(&d)
            .filter(|s| s.usable() || !s.samples.is_empty())
            .and_then(Series::wall)
    }
}

fn bench_dumps(ctx: &Ctx, ds: &Dataset) -> Result<DumpResults, String> {
    let cached = ensure_dataset(ctx, ds)?;
    let source = start_source(ctx, &cached)?;
    let server = &source.server;
    let out = ctx.scratch("out");

    let mut series: BTreeMap<Dumper, Series> = BTreeMap::new();
    let mut todo: Vec<Dumper> = Vec::new();
    for d in DUMPERS {
        if matches!(d, Dumper::Mydumper | Dumper::MydumperTcp) && ctx.tools.mydumper.is_none() {
            series.insert(d, Series::unavailable("mydumper is not installed"));
        } else {
            series.insert(d, Series::default());
            todo.push(d);
        }
    }
    // Warm-up: read every row once, so that every tool finds the data in the buffer pool.
    let warm = run_dump(ctx, server, ds, Dumper::Floor, &out.path().join("warm"))?;
    log(&format!(
        "{}: warm-up SELECT * in {:.2} s",
        ds.name, warm.wall
    ));

    for round in 0..ctx.cfg.rounds {
        let mut order = todo.clone();
        let shift = round % order.len().max(1);
        order.rotate_left(shift);
        for d in order {
            let s = series.get_mut(&d).expect("series");
            if !s.usable() {
                continue;
            }
            let path = out.path().join(format!("{}-{round}", d.slug()));
            match run_dump(ctx, server, ds, d, &path) {
                Ok(sample) => {
                    log(&format!(
                        "{} round {}/{}: {:<20} {:>8.2} s wall, {:>7.2} s client CPU, {:>7.2} s server CPU, {:>6.2} s other CPU, {:>6.1} MiB RSS, {:>8.1} MiB out, cs client {}/{} server {}",
                        ds.name,
                        round + 1,
                        ctx.cfg.rounds,
                        d.slug(),
                        sample.wall,
                        sample.client_cpu,
                        sample.server_cpu,
                        sample.other_cpu,
                        sample.rss_kib as f64 / 1024.0,
                        sample.bytes as f64 / 1048576.0,
                        sample.client_vcs,
                        sample.client_ivcs,
                        sample.server_cs
                    ));
                    s.samples.push(sample);
                }
                Err(e) => {
                    log(&format!("{} {}: FAILED: {e}", ds.name, d.slug()));
                    s.error = Some(e);
                }
            }
            let _ = fs::remove_dir_all(&path);
            let _ = fs::remove_file(&path);
            // SAFETY: sync(2) has no preconditions; it keeps write-back of one run out of
            // the next one.
            unsafe { libc::sync() };
        }
    }
    Ok(DumpResults {
        ds: ds.clone(),
        series,
    })
}

// ---------------------------------------------------------------------------
// Restores.

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Loader {
    MysqlFromMysqldump,
    MysqlFromRdump,
    Myloader,
    RloadSql,
    RloadCsv,
    RloadCsvZstd,
    /// `rload --fast-unsafe` on the CSV directory.
    RloadCsvFast,
}

const LOADERS: [Loader; 7] = [
    Loader::MysqlFromMysqldump,
    Loader::MysqlFromRdump,
    Loader::Myloader,
    Loader::RloadSql,
    Loader::RloadCsv,
    Loader::RloadCsvZstd,
    Loader::RloadCsvFast,
];

impl Loader {
    /// The dump this loader reads.
    fn input(self) -> Dumper {
        match self {
            Loader::MysqlFromMysqldump => Dumper::Mysqldump,
            Loader::MysqlFromRdump => Dumper::Rdump,
            Loader::Myloader => Dumper::Mydumper,
            Loader::RloadSql => Dumper::RdumpDirSql,
            Loader::RloadCsv | Loader::RloadCsvFast => Dumper::RdumpDirCsv,
            Loader::RloadCsvZstd => Dumper::RdumpDirCsvZstd,
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Loader::MysqlFromMysqldump => "mysql<mysqldump.sql",
            Loader::MysqlFromRdump => "mysql<rdump.sql",
            Loader::Myloader => "myloader",
            Loader::RloadSql => "rload-sql",
            Loader::RloadCsv => "rload-csv",
            Loader::RloadCsvZstd => "rload-csv-zstd",
            Loader::RloadCsvFast => "rload-csv-fast-unsafe",
        }
    }

    fn shown(self, cfg: &Config) -> String {
        let n = cfg.threads;
        match self {
            Loader::MysqlFromMysqldump | Loader::MysqlFromRdump => "mysql < dump.sql".into(),
            Loader::Myloader => format!("myloader -t {n} -d DIR"),
            Loader::RloadSql | Loader::RloadCsv | Loader::RloadCsvZstd => match &cfg.rload_args {
                Some(args) => format!("rload {args}"),
                None => format!("rload --threads {n} DIR"),
            },
            Loader::RloadCsvFast => match &cfg.rload_args {
                Some(args) => format!("rload --fast-unsafe {args}"),
                None => format!("rload --fast-unsafe --threads {n} DIR"),
            },
        }
    }

    fn is_rload(self) -> bool {
        matches!(
            self,
            Loader::RloadSql | Loader::RloadCsv | Loader::RloadCsvZstd | Loader::RloadCsvFast
        )
    }
}

fn run_restore(ctx: &Ctx, target: &Server, l: Loader, input: &Path) -> Result<Sample, String> {
    let cfg = &ctx.cfg;
    let tools = &ctx.tools;
    let socket = target.socket().display().to_string();
    let pid = target.pid().ok_or("target server is not running")?;
    let (cmd, stdin) = match l {
        Loader::MysqlFromMysqldump | Loader::MysqlFromRdump => {
            let mut c = Command::new(&tools.mariadb);
            c.args(["--no-defaults", "-uroot"])
                .arg(format!("--socket={socket}"));
            let f = File::open(input).map_err(|e| format!("open {}: {e}", input.display()))?;
            (c, Some(f))
        }
        Loader::Myloader => {
            let bin = tools.myloader.as_ref().ok_or("myloader is not installed")?;
            let mut c = Command::new(bin);
            c.args(["-u", "root", "-S", &socket])
                .arg(format!("--threads={}", cfg.threads))
                .arg("--directory")
                .arg(input);
            (c, None)
        }
        Loader::RloadSql | Loader::RloadCsv | Loader::RloadCsvZstd | Loader::RloadCsvFast => {
            let bin = tools.rload.as_ref().ok_or("rload is not available")?;
            let mut args: Vec<String> = match &cfg.rload_args {
                Some(template) => template
                    .split_whitespace()
                    .map(|arg| {
                        arg.replace("{socket}", &socket)
                            .replace("{threads}", &cfg.threads.to_string())
                            .replace("{dir}", &input.display().to_string())
                    })
                    .collect(),
                None => vec![
                    "--no-defaults".into(),
                    "-uroot".into(),
                    format!("--socket={socket}"),
                    format!("--threads={}", cfg.threads),
                    "--progress=never".into(),
                    "--quiet".into(),
                    input.display().to_string(),
                ],
            };
            if l == Loader::RloadCsvFast {
                // After --no-defaults / --defaults-file, which must come first.
                let at = usize::from(
                    args.first()
                        .is_some_and(|a| a == "--no-defaults" || a.starts_with("--defaults")),
                );
                args.insert(at, "--fast-unsafe".into());
            }
            let mut c = Command::new(bin);
            c.args(&args);
            (c, None)
        }
    };
    let mut sample = measure(cmd, stdin, None, pid)?;
    sample.bytes = dir_bytes(input);
    Ok(sample)
}

struct RestoreResults {
    ds: Dataset,
    series: BTreeMap<Loader, Series>,
}

impl RestoreResults {
    fn wall(&self, l: Loader) -> Option<f64> {
        self.series.get(&l).and_then(Series::wall)
    }
    /// The fastest durable rload variant (not `--fast-unsafe`), by median wall time.
    fn best_rload(&self) -> Option<(Loader, f64)> {
        LOADERS
            .iter()
            .filter(|&&l| l.is_rload() && l != Loader::RloadCsvFast)
            .filter_map(|&l| {
                let s = self.series.get(&l)?;
                (s.usable() && s.checksums_ok == Some(true))
                    .then(|| s.wall())
                    .flatten()
                    .map(|w| (l, w))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }
}

fn bench_restores(ctx: &Ctx, ds: &Dataset) -> Result<RestoreResults, String> {
    let cached = ensure_dataset(ctx, ds)?;
    let inputs = ctx.scratch("out");
    let mut series: BTreeMap<Loader, Series> = BTreeMap::new();
    let mut made: BTreeMap<Dumper, PathBuf> = BTreeMap::new();
    {
        let source = start_source(ctx, &cached)?;
        for l in LOADERS {
            if l.is_rload() && ctx.tools.rload.is_none() {
                series.insert(l, Series::unavailable(ctx.tools.rload_note.clone()));
                continue;
            }
            if l == Loader::Myloader && ctx.tools.myloader.is_none() {
                series.insert(l, Series::unavailable("myloader is not installed"));
                continue;
            }
            let d = l.input();
            if let Entry::Vacant(slot) = made.entry(d) {
                let path = inputs.path().join(d.slug());
                match run_dump(ctx, &source.server, ds, d, &path) {
                    Ok(s) => {
                        log(&format!(
                            "restore input {}: {:.2} s, {:.1} MiB",
                            d.slug(),
                            s.wall,
                            s.bytes as f64 / 1048576.0
                        ));
                        slot.insert(path);
                    }
                    Err(e) => {
                        series.insert(l, Series::unavailable(format!("dump failed: {e}")));
                        continue;
                    }
                }
            }
            series.insert(l, Series::default());
        }
    }
    let todo: Vec<Loader> = LOADERS.into_iter().filter(|l| series[l].usable()).collect();
    for round in 0..ctx.cfg.rounds {
        let mut order = todo.clone();
        let shift = round % order.len().max(1);
        order.rotate_left(shift);
        for l in order {
            let s = series.get_mut(&l).expect("series");
            if !s.usable() {
                continue;
            }
            let target = start_target(&ctx.cfg);
            let input = &made[&l.input()];
            match run_restore(ctx, &target, l, input) {
                Ok(sample) => {
                    let got = checksum_tables(&target, ds).unwrap_or_default();
                    let ok = got == cached.checksums;
                    log(&format!(
                        "restore round {}/{}: {:<20} {:>8.2} s wall, {:>7.2} s client CPU, {:>7.2} s server CPU, {:>6.2} s other CPU, {:>6.1} MiB RSS, checksums {}",
                        round + 1,
                        ctx.cfg.rounds,
                        l.slug(),
                        sample.wall,
                        sample.client_cpu,
                        sample.server_cpu,
                        sample.other_cpu,
                        sample.rss_kib as f64 / 1024.0,
                        if ok { "match" } else { "DIFFER" }
                    ));
                    if !ok {
                        s.error = Some(format!(
                            "CHECKSUM TABLE differs from the source: got {got:?}, want {:?}",
                            cached.checksums
                        ));
                    }
                    s.checksums_ok = Some(s.checksums_ok.unwrap_or(true) && ok);
                    s.samples.push(sample);
                }
                Err(e) => {
                    log(&format!("restore {}: FAILED: {e}", l.slug()));
                    s.error = Some(e);
                }
            }
            drop(target);
            // SAFETY: sync(2) has no preconditions.
            unsafe { libc::sync() };
        }
    }
    Ok(RestoreResults {
        ds: ds.clone(),
        series,
    })
}

// ---------------------------------------------------------------------------
// The report.

#[derive(Default)]
struct Report {
    notes: Vec<String>,
    dumps: Vec<DumpResults>,
    restores: Option<RestoreResults>,
    elapsed: Duration,
}

fn f2(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite())
        .map_or_else(|| "–".into(), |x| format!("{x:.2}"))
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1048576.0)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn status_cell(s: &Series) -> Option<String> {
    if let Some(why) = &s.unavailable {
        return Some(format!("not available: {}", one_line(why)));
    }
    if s.samples.is_empty() {
        return Some(format!(
            "failed: {}",
            one_line(s.error.as_deref().unwrap_or("no run"))
        ));
    }
    None
}

fn one_line(s: &str) -> String {
    let flat: String = s
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|");
    if flat.chars().count() > 160 {
        format!("{}…", flat.chars().take(160).collect::<String>())
    } else {
        flat
    }
}

impl Report {
    fn render(&self, ctx: &Ctx) -> String {
        let cfg = &ctx.cfg;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "## rdump compare benchmark, {}\n",
            chrono::Local::now().format("%Y-%m-%d %H:%M %Z")
        );
        let _ = writeln!(out, "{}\n", machine_line(ctx));
        let env = Config::env_line();
        let _ = writeln!(
            out,
            "Command: `{}cargo bench --bench compare` ({} round(s), interleaved; medians; \
             {} thread(s) for the parallel tools; chunks of {} rows; took {:.0?}).\n",
            if env.is_empty() {
                String::new()
            } else {
                format!("{env} ")
            },
            cfg.rounds,
            cfg.threads,
            thousands(cfg.chunk_size),
            self.elapsed
        );
        for d in &self.dumps {
            self.render_dumps(&mut out, ctx, d);
        }
        if let Some(r) = &self.restores {
            self.render_restores(&mut out, ctx, r);
        }
        self.render_targets(&mut out, ctx);
        out.push_str(
            "Columns: wall = median wall time of the client; client CPU = user+sys of the \
             client process (wait4); server CPU = utime+stime of mariadbd during the run \
             (/proc); other CPU = busy CPU time of the whole machine (/proc/stat) minus \
             both: other processes of the shared machine (high values: the run competed \
             for the cores, its wall time is inflated); peak RSS = \
             ru_maxrss of the client (largest over the rounds); client cs = its voluntary \
             (it waited: socket, disk, another thread) and involuntary (preempted, or \
             sched_yield) context switches (wait4); server cs = context switches of the \
             server's threads (/proc/<mariadbd>/task/*/status); ÷ floor = wall ÷ floor, where the \
             floor is the server CPU of a plain `SELECT *` of every table (read by `mariadb \
             --quick` into /dev/null) divided by the cores.\n",
        );
        if !self.notes.is_empty() || ctx.tools.rload.is_some() {
            out.push_str("\nNotes:\n");
            for n in &self.notes {
                let _ = writeln!(out, "- {n}");
            }
            if ctx.tools.rload.is_some() {
                let _ = writeln!(out, "- rload: {}", ctx.tools.rload_note);
            }
        }
        out
    }

    fn render_dumps(&self, out: &mut String, ctx: &Ctx, d: &DumpResults) {
        let cfg = &ctx.cfg;
        let floor = d.floor(cfg.cores);
        let _ = writeln!(out, "### Dump {} (database `{}`)\n", d.ds.label(), d.ds.db);
        out.push_str(
            "| tool | wall (s) | min–max | client CPU (s) | server CPU (s) | other CPU (s) | client cs (vol / invol) | server cs | peak RSS (MiB) | output (MiB) | ÷ peer | ÷ floor |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for (&dumper, s) in &d.series {
            let name = if dumper == Dumper::Floor {
                format!("floor: server CPU ÷ {} cores", cfg.cores)
            } else {
                format!("`{}`", dumper.shown(cfg))
            };
            if let Some(status) = status_cell(s) {
                let _ = writeln!(out, "| {name} | {status} | | | | | | | | | | |");
                continue;
            }
            let wall = if dumper == Dumper::Floor {
                floor
            } else {
                s.wall()
            };
            let range = s
                .range()
                .filter(|_| dumper != Dumper::Floor)
                .map_or_else(String::new, |(a, b)| format!("{a:.2}–{b:.2}"));
            let peer = dumper
                .peer()
                .and_then(|p| ratio(wall, d.wall(p)).map(|r| format!("{r:.2} × {}", p.slug())))
                .unwrap_or_default();
            let count = |f: fn(&Sample) -> u64| {
                s.med(|x| f(x) as f64)
                    .map_or_else(String::new, |v| thousands(v as u64))
            };
            let switches = if dumper == Dumper::Floor {
                String::new()
            } else {
                format!("{} / {}", count(|x| x.client_vcs), count(|x| x.client_ivcs))
            };
            let server_cs = count(|x| x.server_cs);
            let (rss, bytes, client) = if dumper == Dumper::Floor {
                (String::new(), String::new(), String::new())
            } else {
                (
                    f2(s.rss_mib()),
                    mib(s.samples.iter().map(|x| x.bytes).max().unwrap_or(0)),
                    f2(s.med(|x| x.client_cpu)),
                )
            };
            let _ = writeln!(
                out,
                "| {name} | {} | {range} | {client} | {} | {} | {switches} | {server_cs} | {rss} | {bytes} | {peer} | {} |",
                f2(wall),
                f2(s.med(|x| x.server_cpu)),
                f2(s.med(|x| x.other_cpu)),
                f2(ratio(wall, floor)),
            );
        }
        if let Some(s) = d
            .series
            .get(&Dumper::Floor)
            .filter(|s| !s.samples.is_empty())
        {
            let _ = writeln!(
                out,
                "\nFloor query: `{}` took {} s wall, {} s server CPU.",
                Dumper::Floor.shown(cfg),
                f2(s.wall()),
                f2(s.med(|x| x.server_cpu))
            );
        }
        let _ = writeln!(
            out,
            "All tools connect as root over the server's unix socket, those with `-h127.0.0.1` \
             over TCP to the loopback address; mysqldump is `{}`.\n",
            ctx.tools.mysqldump.display()
        );
        for (&dumper, s) in &d.series {
            if let Some(e) = s.error.as_ref().filter(|_| !s.samples.is_empty()) {
                let _ = writeln!(
                    out,
                    "- `{}` failed in a later round: {}",
                    dumper.slug(),
                    one_line(e)
                );
            }
        }
    }

    fn render_restores(&self, out: &mut String, ctx: &Ctx, r: &RestoreResults) {
        let cfg = &ctx.cfg;
        let mysql = r.wall(Loader::MysqlFromMysqldump);
        let myloader = r.wall(Loader::Myloader);
        let _ = writeln!(
            out,
            "### Restore {} (into a fresh server each time, {})\n",
            r.ds.label(),
            if cfg.durable_targets {
                "durable: innodb_flush_log_at_trx_commit=1, doublewrite ON"
            } else {
                "relaxed as the test harness: innodb_flush_log_at_trx_commit=2, doublewrite OFF"
            }
        );
        let rows = (r.ds.tables as u64 * r.ds.rows).max(1) as f64;
        out.push_str(
            "| restore | input | wall (s) | min–max | client CPU (s) | server CPU (s) | server CPU per row (µs) | other CPU (s) | peak RSS (MiB) | input (MiB) | CHECKSUM TABLE | ÷ mysql < mysqldump.sql | ÷ myloader |\n\
             |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n",
        );
        for (&l, s) in &r.series {
            let name = format!("`{}`", l.shown(cfg));
            let input = format!("`{}`", l.input().slug());
            if let Some(status) = status_cell(s) {
                let _ = writeln!(out, "| {name} | {input} | {status} | | | | | | | | | | |");
                continue;
            }
            let wall = s.wall();
            let range = s
                .range()
                .map_or_else(String::new, |(a, b)| format!("{a:.2}–{b:.2}"));
            let check = match s.checksums_ok {
                Some(true) => "match".to_string(),
                Some(false) => "**DIFFERS**".to_string(),
                None => "–".to_string(),
            };
            let _ = writeln!(
                out,
                "| {name} | {input} | {} | {range} | {} | {} | {} | {} | {} | {} | {check} | {} | {} |",
                f2(wall),
                f2(s.med(|x| x.client_cpu)),
                f2(s.med(|x| x.server_cpu)),
                f2(s.med(|x| x.server_cpu * 1e6 / rows)),
                f2(s.med(|x| x.other_cpu)),
                f2(s.rss_mib()),
                mib(s.samples.iter().map(|x| x.bytes).max().unwrap_or(0)),
                f2(ratio(wall, mysql)),
                f2(ratio(wall, myloader)),
            );
        }
        out.push('\n');
        for (&l, s) in &r.series {
            if let Some(e) = s.error.as_ref().filter(|_| !s.samples.is_empty()) {
                let _ = writeln!(out, "- `{}`: {}", l.slug(), one_line(e));
            }
        }
    }

    /// The targets of issue 5, with this run's ratios.
    fn render_targets(&self, out: &mut String, ctx: &Ctx) {
        let cfg = &ctx.cfg;
        let n = cfg.threads;
        let mut rows: Vec<(String, Option<f64>, f64)> = Vec::new();
        if let Some(d) = self.dumps.iter().find(|d| d.ds.name == "sysbench") {
            let dir = d.wall(Dumper::RdumpDirSql);
            rows.push((
                format!("`rdump --dir --threads {n}` wall ÷ `mydumper -t {n}`"),
                ratio(dir, d.wall(Dumper::Mydumper)),
                0.55,
            ));
            rows.push((
                format!("`rdump --dir --threads {n}` wall ÷ floor"),
                ratio(dir, d.floor(cfg.cores)),
                1.3,
            ));
            rows.push((
                "`rdump` single-stream wall ÷ mysqldump".into(),
                ratio(d.wall(Dumper::Rdump), d.wall(Dumper::Mysqldump)),
                0.33,
            ));
            // Issue 15: over the socket and over TCP; the server's CPU and the client's
            // voluntary context switches against mydumper's.
            for (how, dir, mydumper, single, mysqldump) in [
                (
                    "socket",
                    Dumper::RdumpDirSql,
                    Dumper::Mydumper,
                    Dumper::Rdump,
                    Dumper::Mysqldump,
                ),
                (
                    "TCP",
                    Dumper::RdumpDirSqlTcp,
                    Dumper::MydumperTcp,
                    Dumper::RdumpTcp,
                    Dumper::MysqldumpTcp,
                ),
            ] {
                let med =
                    |x: Dumper, f: fn(&Sample) -> f64| d.series.get(&x).and_then(|s| s.med(f));
                rows.push((
                    format!("{how}: `rdump --dir --threads {n}` wall ÷ `mydumper -t {n}`"),
                    ratio(d.wall(dir), d.wall(mydumper)),
                    0.6,
                ));
                rows.push((
                    format!("{how}: `rdump` single-stream wall ÷ mysqldump"),
                    ratio(d.wall(single), d.wall(mysqldump)),
                    0.3,
                ));
                rows.push((
                    format!("{how}: server CPU during `rdump --dir` ÷ during mydumper"),
                    ratio(med(dir, |x| x.server_cpu), med(mydumper, |x| x.server_cpu)),
                    1.0,
                ));
                rows.push((
                    format!("{how}: voluntary context switches, `rdump --dir` ÷ mydumper"),
                    ratio(
                        med(dir, |x| x.client_vcs as f64),
                        med(mydumper, |x| x.client_vcs as f64),
                    ),
                    2.0,
                ));
            }
        }
        let rss = self
            .dumps
            .iter()
            .flat_map(|d| d.series.iter())
            .filter(|(d, _)| d.is_rdump())
            .filter_map(|(_, s)| s.rss_mib())
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
        if !self.dumps.is_empty() {
            rows.push((
                "rdump peak RSS in every mode and dataset (MiB)".into(),
                rss,
                64.0,
            ));
        }
        if let Some(r) = &self.restores {
            let best = r.best_rload();
            let label =
                best.map_or_else(|| "rload".to_string(), |(l, _)| format!("`{}`", l.slug()));
            rows.push((
                format!("best rload ({label}) wall ÷ `mysql < mysqldump.sql`"),
                ratio(best.map(|b| b.1), r.wall(Loader::MysqlFromMysqldump)),
                0.45,
            ));
            rows.push((
                format!("best rload ({label}) wall ÷ `myloader -t {n}`"),
                ratio(best.map(|b| b.1), r.wall(Loader::Myloader)),
                0.6,
            ));
            // Issue 15: restore speed, with --fast-unsafe.
            rows.push((
                format!("`rload --fast-unsafe` (CSV) wall ÷ `myloader -t {n}`"),
                ratio(r.wall(Loader::RloadCsvFast), r.wall(Loader::Myloader)),
                0.45,
            ));
        }
        if rows.is_empty() {
            return;
        }
        let default_size = cfg.tables == 8
            && cfg.rows == 1_000_000
            && cfg.restore_tables == 4
            && cfg.restore_rows == 250_000
            && n == 2;
        let _ = writeln!(
            out,
            "### Issue 5 and 15 targets, ratios from this run{}\n",
            if default_size {
                ""
            } else {
                " (NOT the issue's dataset sizes / thread count: indicative only)"
            }
        );
        out.push_str("| target | measured | goal | met |\n|---|---:|---:|---|\n");
        for (what, value, goal) in rows {
            let met = match value {
                Some(v) if v <= goal => "yes",
                Some(_) => "no",
                None => "–",
            };
            let _ = writeln!(out, "| {what} | {} | ≤ {goal} | {met} |", f2(value));
        }
        out.push('\n');
    }
}

fn machine_line(ctx: &Ctx) -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, v)| v.trim())
        .to_string();
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1048576.0);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |k| k.trim().to_string());
    let load = fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    let git = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let t = &ctx.tools;
    let mydumper = t
        .mydumper
        .as_ref()
        .map_or_else(|| "not installed".into(), |p| version_of(p, "--version"));
    let sysbench = t
        .sysbench
        .as_ref()
        .map_or_else(|| "not installed".into(), |p| version_of(p, "--version"));
    format!(
        "Machine: {} cores ({model}), {mem_gib:.0} GiB RAM, Linux {kernel}, load average {load} \
         when this report was written, shared and noisy. \
         Server: {} (sandbox, `tests/common` options plus a buffer pool holding the data, \
         {LOG_FILE_SIZE} redo log). rdump {git}; mysqldump: {}; mydumper: {mydumper}; \
         sysbench: {sysbench}.",
        ctx.cfg.cores,
        version_of(Path::new(&common::mariadbd_bin()), "--version"),
        version_of(&t.mysqldump, "--version"),
    )
}
