//! `cargo bench --bench backup`: issue 12's targets for rbackup, on sandbox MariaDB servers
//! the bench starts itself (the harness of `tests/common`, as `benches/compare.rs` does).
//!
//! What it does, in order:
//!
//! 1. **Dedup** (`sysbench` 4 x 250,000 rows), once per scenario, each on a fresh copy of
//!    the cached dataset: backup 1 of the database by `rbackup backup` into a new local
//!    repository (age-encrypted, the writer key only), by restic over mysqldump's output
//!    (`mariadb-dump --single-transaction | restic backup --stdin`) and by restic over an
//!    `rdump --dir --format=csv` directory; then, as issue 12 orders it, 2% rows appended
//!    to every table and 0.1% of its rows updated (`k` and `c`, rows drawn by a fixed-seed
//!    generator: at random among all rows, or among the newest 5% only; a third, stricter
//!    scenario updates the newest 5% of the old rows before the append); then backup 2 by
//!    the same three. The measure is the bytes backup 2 stored again before compression
//!    (rbackup: the snapshot's `new_bytes`; restic: its summary's `data_added`) divided by
//!    backup 1's logical bytes (rbackup: the snapshot's `logical_bytes`; restic: the bytes
//!    it read, `total_bytes_processed`). Byte counts are exact, not timings: they do not
//!    depend on the machine's load (only on the dataset's random contents, which sysbench
//!    draws once when the dataset is cached, and on the repository's random chunker seed,
//!    which moves them by a few hundredths of a percent).
//! 2. **Speed** (`sysbench` 8 x 1,000,000 rows, one warm source server, interleaved rounds):
//!    `rdump --dir --format=csv --zstd --threads N` against `rbackup backup --threads N` into
//!    a new local repository (rbackup's format is CSV too), then a second `rbackup backup`
//!    of the unchanged database (all deduplicated) against the first; restores each into a
//!    fresh empty server: `rload --threads N` of that rdump directory against `rbackup
//!    restore`, both checked against the source's `CHECKSUM TABLE`.
//! 3. **Peak RSS** of every rbackup run (and of its peers): the process's own `VmHWM`
//!    polled from `/proc/PID/status` every 10 ms until it exits (not `wait4`'s
//!    `ru_maxrss`, which inherits the parent's high-water mark through vfork).
//! 4. Prints a Markdown report with the machine beside the tables and writes it to
//!    `target/bench-results/backup-<time>.md`.
//!
//! Settings (environment variables, all optional; counts take `K`/`M` suffixes):
//! `RBACKUP_BENCH_QUICK=1` (dedup 4 x 25,000, speed 4 x 100,000, 1 round),
//! `RBACKUP_BENCH_DEDUP_TABLES` (4), `RBACKUP_BENCH_DEDUP_ROWS` (250K),
//! `RBACKUP_BENCH_TABLES` (8), `RBACKUP_BENCH_ROWS` (1M) for the speed part,
//! `RBACKUP_BENCH_ROUNDS` (3, speed only), `RBACKUP_BENCH_THREADS` (the number of cores),
//! `RBACKUP_BENCH_PARTS` (`dedup,speed`).
//!
//! Datasets are cached under `target/bench-data/` with the same names and key as
//! `benches/compare.rs` uses (`sysbench-<tables>x<rows>-<hash>`), so the two benches share
//! the 8 x 1M datadir.
//!
//! Not for: correctness of backups (tests/rbackup_*.rs) or rdump against its peers
//! (`benches/compare.rs`).

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Read as _, Seek as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use age::secrecy::ExposeSecret;
use common::{Server, ServerOptions};

/// Must match `benches/compare.rs`: the datadir cache is shared.
const GENERATOR_VERSION: &str = "v1";
/// InnoDB redo log of every bench server (as in `benches/compare.rs`).
const LOG_FILE_SIZE: &str = "256M";
/// Buffer pool of the restore targets.
const TARGET_BUFFER_POOL_MB: u64 = 1024;
/// Passphrase of the restic repositories (a throwaway).
const RESTIC_PASSWORD: &str = "rbackup-bench";
/// Issue 12's dedup targets: backup 2's new bytes ÷ backup 1's logical bytes.
const DEDUP_TARGET_RANDOM: f64 = 0.35;
const DEDUP_TARGET_NEWEST: f64 = 0.05;
/// Issue 12's speed and memory targets.
const BACKUP_VS_RDUMP: f64 = 1.3;
const SECOND_VS_FIRST: f64 = 1.0;
const RESTORE_VS_RLOAD: f64 = 1.2;
const RSS_TARGET_MIB: f64 = 128.0;

fn main() {
    if std::env::var_os("RDUMP_TEST_WATCHDOG_SECS").is_none() {
        // A full run takes longer than the test harness's 10-minute hang watchdog.
        // SAFETY: the first statement of main, before any other thread exists.
        unsafe { std::env::set_var("RDUMP_TEST_WATCHDOG_SECS", "0") };
    }
    let begin = Instant::now();
    let cfg = Config::from_env();
    let tools = Tools::locate();
    let ctx = Ctx::new(cfg, tools);
    ctx.sweep_stale();
    let load_before = loadavg();
    log(&format!(
        "config: parts {:?}, dedup {} x {}, speed {} x {}, {} round(s), {} thread(s)",
        ctx.cfg.parts,
        ctx.cfg.dedup_tables,
        ctx.cfg.dedup_rows,
        ctx.cfg.tables,
        ctx.cfg.rows,
        ctx.cfg.rounds,
        ctx.cfg.threads
    ));
    let mut report = Report::default();
    if ctx.cfg.parts.iter().any(|p| p == "dedup") {
        for scenario in [
            Scenario::Random,
            Scenario::Newest,
            Scenario::NewestBeforeAppend,
        ] {
            match bench_dedup(&ctx, scenario) {
                Ok(r) => report.dedup.push(r),
                Err(e) => {
                    log(&format!("dedup {}: FAILED: {e}", scenario.slug()));
                    report
                        .notes
                        .push(format!("dedup ({}) failed: {e}", scenario.slug()));
                }
            }
        }
    }
    if ctx.cfg.parts.iter().any(|p| p == "speed") {
        match bench_speed(&ctx) {
            Ok(r) => report.speed = Some(r),
            Err(e) => {
                log(&format!("speed: FAILED: {e}"));
                report.notes.push(format!("speed benchmark failed: {e}"));
            }
        }
    }
    report.elapsed = begin.elapsed();
    report.load = (load_before, loadavg());
    let text = report.render(&ctx);
    println!("{text}");
    let dir = ctx.target_dir.join("bench-results");
    let path = dir.join(format!(
        "backup-{}.md",
        chrono::Local::now().format("%Y%m%d-%H%M%S")
    ));
    match fs::create_dir_all(&dir).and_then(|()| fs::write(&path, &text)) {
        Ok(()) => log(&format!("report written to {}", path.display())),
        Err(e) => log(&format!("cannot write {}: {e}", path.display())),
    }
}

fn log(msg: &str) {
    eprintln!("[backup {}] {msg}", chrono::Local::now().format("%H:%M:%S"));
}

// ---------------------------------------------------------------------------
// Settings.

#[derive(Clone, Debug)]
struct Config {
    rounds: usize,
    threads: usize,
    cores: usize,
    dedup_tables: usize,
    dedup_rows: u64,
    tables: usize,
    rows: u64,
    parts: Vec<String>,
}

impl Config {
    fn from_env() -> Config {
        let quick = env_flag("RBACKUP_BENCH_QUICK");
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let parts = std::env::var("RBACKUP_BENCH_PARTS")
            .unwrap_or_else(|_| "dedup,speed".into())
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>();
        for p in &parts {
            assert!(
                ["dedup", "speed"].contains(&p.as_str()),
                "RBACKUP_BENCH_PARTS: unknown part {p:?} (dedup, speed)"
            );
        }
        Config {
            rounds: env_count("RBACKUP_BENCH_ROUNDS", if quick { 1 } else { 3 }).max(1) as usize,
            threads: env_count("RBACKUP_BENCH_THREADS", cores as u64).max(1) as usize,
            cores,
            dedup_tables: env_count("RBACKUP_BENCH_DEDUP_TABLES", 4).max(1) as usize,
            dedup_rows: env_count(
                "RBACKUP_BENCH_DEDUP_ROWS",
                if quick { 25_000 } else { 250_000 },
            )
            .max(100),
            tables: env_count("RBACKUP_BENCH_TABLES", if quick { 4 } else { 8 }).max(1) as usize,
            rows: env_count(
                "RBACKUP_BENCH_ROWS",
                if quick { 100_000 } else { 1_000_000 },
            )
            .max(1),
            parts,
        }
    }

    /// The RBACKUP_BENCH_* variables set, for the report.
    fn env_line() -> String {
        let mut vars: Vec<String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("RBACKUP_BENCH_"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        vars.sort();
        vars.join(" ")
    }

    fn dedup_default_size(&self) -> bool {
        self.dedup_tables == 4 && self.dedup_rows == 250_000
    }

    fn speed_default_size(&self) -> bool {
        self.tables == 8 && self.rows == 1_000_000
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
// Tools.

struct Tools {
    rdump: PathBuf,
    rload: PathBuf,
    rbackup: PathBuf,
    mysqldump: PathBuf,
    mariadb: PathBuf,
    restic: Option<PathBuf>,
    sysbench: Option<PathBuf>,
}

impl Tools {
    fn locate() -> Tools {
        Tools {
            rdump: PathBuf::from(env!("CARGO_BIN_EXE_rdump")),
            rload: PathBuf::from(env!("CARGO_BIN_EXE_rload")),
            rbackup: PathBuf::from(env!("CARGO_BIN_EXE_rbackup")),
            mysqldump: PathBuf::from(common::system_dump_bin()),
            mariadb: PathBuf::from(common::client_bin()),
            restic: which("restic"),
            sysbench: which("sysbench"),
        }
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into()])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
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

struct Ctx {
    cfg: Config,
    tools: Tools,
    target_dir: PathBuf,
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

    /// Removes the scratch directories of bench processes that died.
    fn sweep_stale(&self) {
        for entry in fs::read_dir(&self.data_dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = ["bk-run-", "bk-out-"]
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
            .prefix(&format!("bk-{prefix}-{}-", std::process::id()))
            .tempdir_in(&self.data_dir)
            .expect("create scratch dir")
    }
}

// ---------------------------------------------------------------------------
// Datasets: sysbench tables in database `sbtest`, cached as datadirs.

const DB: &str = "sbtest";

#[derive(Clone, Copy, Debug)]
struct Dataset {
    tables: usize,
    rows: u64,
}

impl Dataset {
    fn label(&self) -> String {
        format!("sysbench {} x {} rows", self.tables, thousands(self.rows))
    }

    fn table_names(&self) -> Vec<String> {
        (1..=self.tables).map(|i| format!("sbtest{i}")).collect()
    }

    /// As `benches/compare.rs` names its `sysbench` dataset (shared cache).
    fn cache_key(&self) -> String {
        let mut key = Command::new(common::mariadbd_bin())
            .arg("--version")
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default();
        key.extend_from_slice(
            format!("{GENERATOR_VERSION}/{LOG_FILE_SIZE}/Sysbench/{DB}").as_bytes(),
        );
        format!(
            "sysbench-{}x{}-{:012x}",
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

struct CachedDataset {
    dir: PathBuf,
    checksums: BTreeMap<String, String>,
}

fn ensure_dataset(ctx: &Ctx, ds: Dataset) -> Result<CachedDataset, String> {
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

fn build_dataset(ctx: &Ctx, ds: Dataset, dir: &Path) -> Result<(), String> {
    let sysbench = ctx
        .tools
        .sysbench
        .as_ref()
        .ok_or("sysbench is not installed (apt-get install sysbench)")?;
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
    server.sql(&format!("CREATE DATABASE `{DB}`"));
    let log_path = staging.join("sysbench.log");
    let log_file = File::create(&log_path).map_err(|e| e.to_string())?;
    let status = Command::new(sysbench)
        .arg("oltp_read_write")
        .arg("--db-driver=mysql")
        .arg(format!("--mysql-socket={}", server.socket().display()))
        .arg("--mysql-user=root")
        .arg(format!("--mysql-db={DB}"))
        .arg(format!("--tables={}", ds.tables))
        .arg(format!("--table-size={}", ds.rows))
        .arg(format!("--threads={}", ds.tables.min(ctx.cfg.cores).max(1)))
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
    let checksums = checksum_tables(&server, ds)?;
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

fn checksum_tables(server: &Server, ds: Dataset) -> Result<BTreeMap<String, String>, String> {
    let tables: Vec<String> = ds
        .table_names()
        .iter()
        .map(|t| format!("`{DB}`.`{t}`"))
        .collect();
    let out = server.sql_result(&format!("CHECKSUM TABLE {}", tables.join(", ")))?;
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
    while Path::new(&format!("/proc/{pid}/status")).exists() && !is_zombie(pid) {
        if Instant::now() > deadline {
            return Err("mariadbd did not shut down within 15 minutes".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    server.stop();
    Ok(())
}

fn is_zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
    })
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

/// A bench server: the harness's options, on `datadir` when given (else an empty copy of
/// the template), with a buffer pool of `buffer_pool_mb` and a 256M redo log.
fn start_server(datadir: Option<&Path>, buffer_pool_mb: u64) -> Server {
    let mut extra_args = vec![
        format!("--innodb-buffer-pool-size={buffer_pool_mb}M"),
        format!("--innodb-log-file-size={LOG_FILE_SIZE}"),
        "--max-allowed-packet=256M".to_string(),
        "--max-connections=500".to_string(),
    ];
    if let Some(dir) = datadir {
        extra_args.push(format!("--datadir={}", dir.display()));
    }
    Server::start(ServerOptions {
        extra_args,
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
    copy_tree(&cached.dir.join("data"), &datadir)?;
    let mb = dir_bytes(&datadir) / (1 << 20);
    let buffer_pool = (mb + mb / 4 + 256).clamp(512, 12 * 1024);
    let server = start_server(Some(&datadir), buffer_pool);
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
// Running and measuring client processes.

#[derive(Clone, Debug, Default)]
struct Sample {
    wall: f64,
    /// user+sys of the pipeline's processes (wait4).
    client_cpu: f64,
    server_cpu: f64,
    /// Busy CPU of the rest of the machine during the run (other users of a shared machine).
    other_cpu: f64,
    /// Peak RSS (VmHWM) of the process measured (the last of a pipeline), KiB.
    rss_kib: u64,
    stdout: String,
}

/// Runs a pipeline `cmds[0] | cmds[1] | ...` to completion: wall time, CPU of every
/// process, the server's CPU and the peak RSS (VmHWM polled every 10 ms) of the last
/// process. Fails naming the command and the tail of its stderr if any exits non-zero.
fn run(cmds: Vec<Command>, stdin: Option<File>, server_pid: Option<u32>) -> Result<Sample, String> {
    let n = cmds.len();
    let out = tempfile::tempfile().map_err(|e| e.to_string())?;
    let mut children: Vec<(String, Child, File)> = Vec::new();
    let mut next_stdin: Option<Stdio> = stdin.map(Stdio::from);
    let server_before = server_pid.map(process_cpu_seconds).transpose()?;
    let busy_before = machine_busy_seconds();
    let begin = Instant::now();
    for (i, mut cmd) in cmds.into_iter().enumerate() {
        let err = tempfile::tempfile().map_err(|e| e.to_string())?;
        cmd.stdin(next_stdin.take().unwrap_or_else(Stdio::null))
            .stderr(err.try_clone().map_err(|e| e.to_string())?);
        if i + 1 == n {
            cmd.stdout(out.try_clone().map_err(|e| e.to_string())?);
        } else {
            cmd.stdout(Stdio::piped());
        }
        let what = describe(&cmd);
        let mut child = cmd.spawn().map_err(|e| format!("cannot run {what}: {e}"))?;
        if let Some(pipe) = child.stdout.take() {
            next_stdin = Some(Stdio::from(pipe));
        }
        children.push((what, child, err));
    }
    let last_status = format!("/proc/{}/status", children[n - 1].1.id());
    let mut done: Vec<Option<(libc::c_int, libc::rusage)>> = vec![None; n];
    let mut peak = 0u64;
    while done.iter().any(Option::is_none) {
        if done[n - 1].is_none()
            && let Some(hwm) = vm_hwm_kib(&last_status)
        {
            peak = peak.max(hwm);
        }
        for (i, (_, child, _)) in children.iter().enumerate() {
            if done[i].is_none() {
                done[i] = wait4_nohang(child.id()).map_err(|e| format!("wait4: {e}"))?;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let wall = begin.elapsed().as_secs_f64();
    let server_cpu = match (server_pid, server_before) {
        (Some(pid), Some(before)) => process_cpu_seconds(pid)? - before,
        _ => 0.0,
    };
    let busy = machine_busy_seconds() - busy_before;
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    let mut client_cpu = 0.0;
    for ((what, _child, mut err), d) in children.into_iter().zip(&done) {
        let (status, usage) = d.expect("every child reaped");
        client_cpu += secs(usage.ru_utime) + secs(usage.ru_stime);
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            let mut text = String::new();
            let _ = err.rewind();
            let _ = err.read_to_string(&mut text);
            return Err(format!(
                "{what} {}: {}",
                status_text(status),
                tail(&text, 8)
            ));
        }
    }
    let mut stdout = String::new();
    let mut out = out;
    let _ = out.rewind();
    let _ = out.read_to_string(&mut stdout);
    Ok(Sample {
        wall,
        client_cpu,
        server_cpu,
        other_cpu: (busy - client_cpu - server_cpu).max(0.0),
        rss_kib: peak,
        stdout,
    })
}

fn vm_hwm_kib(status_file: &str) -> Option<u64> {
    fs::read_to_string(status_file)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn wait4_nohang(pid: u32) -> io::Result<Option<(libc::c_int, libc::rusage)>> {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; pid is a child of this process.
        let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid as libc::pid_t {
            return Ok(Some((status, usage)));
        }
        if r == 0 {
            return Ok(None);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
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
    let busy: f64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| ticks.get(i))
        .sum();
    // SAFETY: sysconf has no preconditions.
    busy / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
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

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

// ---------------------------------------------------------------------------
// The commands.

/// A repository with an x25519 reader and the writer key, as a database host has it.
struct Repo {
    url: String,
    writer_key: String,
    identity_file: String,
}

fn init_repo(ctx: &Ctx, dir: &Path) -> Result<Repo, String> {
    let identity = age::x25519::Identity::generate();
    let identity_file = dir.join("reader.key");
    fs::write(
        &identity_file,
        format!("{}\n", identity.to_string().expose_secret()),
    )
    .map_err(|e| e.to_string())?;
    let repo = Repo {
        url: dir.join("repo").display().to_string(),
        writer_key: dir.join("writer.key").display().to_string(),
        identity_file: identity_file.display().to_string(),
    };
    let mut c = rbackup_cmd(ctx);
    c.args(["init", "--repo", &repo.url, "--recipient"])
        .arg(identity.to_public().to_string())
        .args(["--writer-key-file", &repo.writer_key]);
    run(vec![c], None, None)?;
    Ok(repo)
}

fn rbackup_cmd(ctx: &Ctx) -> Command {
    let mut c = Command::new(&ctx.tools.rbackup);
    for var in [
        "RBACKUP_REPO",
        "RBACKUP_IDENTITY_FILE",
        "RBACKUP_PASSPHRASE_FILE",
        "RBACKUP_WRITER_KEY_FILE",
    ] {
        c.env_remove(var);
    }
    c
}

/// `rbackup backup --json` of `sbtest` with the writer key; its JSON summary.
fn rbackup_backup(ctx: &Ctx, server: &Server, repo: &Repo) -> Result<(Sample, Stats), String> {
    let mut c = rbackup_cmd(ctx);
    c.args([
        "backup",
        "--repo",
        &repo.url,
        "--writer-key-file",
        &repo.writer_key,
        "--json",
    ])
    .args(["--no-defaults", "-uroot"])
    .arg(format!("--socket={}", server.socket().display()))
    .arg(format!("--threads={}", ctx.cfg.threads))
    .args(["--progress=never", "--databases", DB]);
    let sample = run(vec![c], None, server.pid())?;
    let json: serde_json::Value = serde_json::from_str(&sample.stdout)
        .map_err(|e| format!("rbackup backup --json: {e}: {}", sample.stdout))?;
    let s = &json["stats"];
    let field = |k: &str| {
        s[k].as_u64()
            .ok_or_else(|| format!("rbackup backup --json: no stats.{k} in {json}"))
    };
    let stats = Stats {
        logical: field("logical_bytes")?,
        added: field("new_bytes")?,
        stored: field("new_stored_bytes")?,
    };
    Ok((sample, stats))
}

/// `rdump --dir DIR --format=csv [--zstd] --threads N --databases sbtest`.
fn rdump_dir_cmd(ctx: &Ctx, server: &Server, dir: &Path, zstd: bool) -> Command {
    let mut c = Command::new(&ctx.tools.rdump);
    c.args(["--no-defaults", "-uroot"])
        .arg(format!("--socket={}", server.socket().display()))
        .arg(format!("--dir={}", dir.display()))
        .arg(format!("--threads={}", ctx.cfg.threads))
        .args(["--format=csv", "--progress=never", "--quiet"]);
    if zstd {
        c.arg("--zstd");
    }
    c.args(["--databases", DB]);
    c
}

fn restic_cmd(ctx: &Ctx, repo: &Path) -> Result<Command, String> {
    let bin = ctx.tools.restic.as_ref().ok_or("restic is not installed")?;
    let mut c = Command::new(bin);
    c.env("RESTIC_PASSWORD", RESTIC_PASSWORD)
        .env_remove("RESTIC_REPOSITORY")
        .env_remove("RESTIC_PASSWORD_FILE")
        .arg("--no-cache")
        .arg("--repo")
        .arg(repo);
    Ok(c)
}

fn restic_init(ctx: &Ctx, repo: &Path) -> Result<(), String> {
    let mut c = restic_cmd(ctx, repo)?;
    c.args(["init", "--quiet"]);
    run(vec![c], None, None).map(drop)
}

/// restic's summary of a backup: bytes read (logical), `data_added` (before
/// compression) and the growth of the repository's size on disk (stored).
fn restic_summary(sample: &Sample, repo: &Path, size_before: u64) -> Result<Stats, String> {
    let summary = sample
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message_type"] == "summary")
        .ok_or_else(|| format!("no summary in restic's output: {}", tail(&sample.stdout, 3)))?;
    let field = |k: &str| {
        summary[k]
            .as_u64()
            .ok_or_else(|| format!("restic summary without {k}: {summary}"))
    };
    Ok(Stats {
        logical: field("total_bytes_processed")?,
        added: field("data_added")?,
        stored: dir_bytes(repo).saturating_sub(size_before),
    })
}

/// `mariadb-dump --single-transaction --databases sbtest | restic backup --stdin`.
fn restic_over_mysqldump(
    ctx: &Ctx,
    server: &Server,
    repo: &Path,
) -> Result<(Sample, Stats), String> {
    let mut dump = Command::new(&ctx.tools.mysqldump);
    dump.args(["--no-defaults", "-uroot"])
        .arg(format!("--socket={}", server.socket().display()))
        .args(["--single-transaction", "--databases", DB]);
    let mut restic = restic_cmd(ctx, repo)?;
    restic.args([
        "backup",
        "--json",
        "--stdin",
        "--stdin-filename",
        "sbtest.sql",
        "--host",
        "bench",
    ]);
    let before = dir_bytes(repo);
    let sample = run(vec![dump, restic], None, server.pid())?;
    let stats = restic_summary(&sample, repo, before)?;
    Ok((sample, stats))
}

/// `rdump --dir D --format=csv` then `restic backup D` (always the same path, so that
/// restic compares with its previous snapshot as it would night after night).
fn restic_over_rdump_dir(
    ctx: &Ctx,
    server: &Server,
    repo: &Path,
    dir: &Path,
) -> Result<(Sample, Stats), String> {
    let _ = fs::remove_dir_all(dir);
    run(
        vec![rdump_dir_cmd(ctx, server, dir, false)],
        None,
        server.pid(),
    )?;
    let mut restic = restic_cmd(ctx, repo)?;
    restic
        .args(["backup", "--json", "--host", "bench"])
        .arg(dir);
    let before = dir_bytes(repo);
    let sample = run(vec![restic], None, None)?;
    let stats = restic_summary(&sample, repo, before)?;
    let _ = fs::remove_dir_all(dir);
    Ok((sample, stats))
}

// ---------------------------------------------------------------------------
// Dedup.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// 2% rows appended, then 0.1% of the rows updated at random (issue 12's order).
    Random,
    /// 2% rows appended, then 0.1% of the rows updated among the newest 5% (which hold
    /// the appended 2%).
    Newest,
    /// Stricter: 0.1% of the rows updated among the newest 5% of the rows there before,
    /// then 2% appended (every update lands in rows backup 1 stored).
    NewestBeforeAppend,
}

impl Scenario {
    fn slug(self) -> &'static str {
        match self {
            Scenario::Random => "random",
            Scenario::Newest => "newest-5%",
            Scenario::NewestBeforeAppend => "newest-5%-before-append",
        }
    }
    fn describe(self) -> &'static str {
        match self {
            Scenario::Random => "2% rows appended, then 0.1% of rows updated at random",
            Scenario::Newest => {
                "2% rows appended, then 0.1% of rows updated among the newest 5% (the appended \
                 2% among them)"
            }
            Scenario::NewestBeforeAppend => {
                "0.1% of rows updated among the newest 5% of the rows backup 1 saw, then 2% \
                 rows appended (stricter than the issue's order: every update hits stored rows)"
            }
        }
    }
    fn target(self) -> f64 {
        match self {
            Scenario::Random => DEDUP_TARGET_RANDOM,
            Scenario::Newest | Scenario::NewestBeforeAppend => DEDUP_TARGET_NEWEST,
        }
    }
    /// restic over mysqldump's output in issue 12's own measurement.
    fn issue_restic(self) -> &'static str {
        match self {
            Scenario::Random => "98%",
            Scenario::Newest => "14%",
            Scenario::NewestBeforeAppend => "not measured",
        }
    }
    /// The seed of the changes' generator.
    fn seed(self) -> u64 {
        match self {
            Scenario::Random => 0,
            Scenario::NewestBeforeAppend => 1,
            Scenario::Newest => 2,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    /// Bytes of the backup's input (rbackup: logical files; restic: bytes read).
    logical: u64,
    /// Bytes newly stored, before compression.
    added: u64,
    /// Bytes newly stored, after compression (and encryption).
    stored: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Backupper {
    Rbackup,
    ResticMysqldump,
    ResticRdumpDir,
}

impl Backupper {
    fn shown(self, threads: usize) -> String {
        match self {
            Backupper::Rbackup => format!("rbackup backup --threads {threads} (local repository)"),
            Backupper::ResticMysqldump => {
                "mariadb-dump --single-transaction | restic backup --stdin".into()
            }
            Backupper::ResticRdumpDir => {
                format!("rdump --dir D --format=csv --threads {threads}; restic backup D")
            }
        }
    }
}

struct DedupResult {
    scenario: Scenario,
    ds: Dataset,
    updated: u64,
    appended: u64,
    /// (backup 1, backup 2) per tool, or why not.
    rows: BTreeMap<Backupper, Result<(Stats, Stats), String>>,
    /// Peak RSS of each rbackup backup, KiB.
    rbackup_rss: Vec<u64>,
}

/// A deterministic generator (splitmix64), so that every run changes the same rows the
/// same way.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// sysbench's `###########-###########-...` with `groups` groups of 11 digits.
    fn digits(&mut self, groups: usize) -> String {
        (0..groups)
            .map(|_| format!("{:011}", self.below(100_000_000_000)))
            .collect::<Vec<_>>()
            .join("-")
    }
}

/// The changes between backup 1 and backup 2 as SQL, per table: `rows / 50` rows
/// appended (ids after the last, as sysbench's inserts add them) and 0.1% of the table's
/// rows updated (`k` and `c`, as sysbench's writes do), drawn among all rows or among the
/// newest 5% (the highest ids); the updates after the append except in
/// `NewestBeforeAppend`. Returns the SQL, the rows updated and the rows appended.
fn changes_sql(ds: Dataset, scenario: Scenario) -> (String, u64, u64) {
    let mut rng = Rng(0x7262_6163_6b75_7031 ^ scenario.seed());
    let appends = (ds.rows / 50).max(1);
    let append_first = scenario != Scenario::NewestBeforeAppend;
    // The table when the updates run.
    let total = if append_first {
        ds.rows + appends
    } else {
        ds.rows
    };
    let updates = (total / 1000).max(1);
    let (low, span) = match scenario {
        Scenario::Random => (1, total),
        Scenario::Newest | Scenario::NewestBeforeAppend => {
            let span = (total / 20).max(updates);
            (total - span + 1, span)
        }
    };
    let mut sql = String::from("SET autocommit=0;\n");
    for t in ds.table_names() {
        let mut appended = String::new();
        let mut i = 0;
        while i < appends {
            let batch = (appends - i).min(1000);
            let values: Vec<String> = (0..batch)
                .map(|j| {
                    format!(
                        "({}, {}, '{}', '{}')",
                        ds.rows + i + j + 1,
                        1 + rng.below(ds.rows),
                        rng.digits(10),
                        rng.digits(5)
                    )
                })
                .collect();
            let _ = writeln!(
                appended,
                "INSERT INTO `{DB}`.`{t}` (id, k, c, pad) VALUES {};",
                values.join(",")
            );
            i += batch;
        }
        let mut ids = BTreeSet::new();
        while (ids.len() as u64) < updates {
            ids.insert(low + rng.below(span));
        }
        let mut updated = String::new();
        for id in ids {
            let _ = writeln!(
                updated,
                "UPDATE `{DB}`.`{t}` SET k = {}, c = '{}' WHERE id = {id};",
                1 + rng.below(ds.rows),
                rng.digits(10)
            );
        }
        if append_first {
            sql.push_str(&appended);
            sql.push_str(&updated);
        } else {
            sql.push_str(&updated);
            sql.push_str(&appended);
        }
        sql.push_str("COMMIT;\n");
    }
    (sql, updates * ds.tables as u64, appends * ds.tables as u64)
}

fn bench_dedup(ctx: &Ctx, scenario: Scenario) -> Result<DedupResult, String> {
    let ds = Dataset {
        tables: ctx.cfg.dedup_tables,
        rows: ctx.cfg.dedup_rows,
    };
    let cached = ensure_dataset(ctx, ds)?;
    let source = start_source(ctx, &cached)?;
    let server = &source.server;
    let work = ctx.scratch("out");
    let repo = init_repo(ctx, work.path())?;
    let restic_sql = work.path().join("restic-mysqldump");
    let restic_dir = work.path().join("restic-rdump-dir");
    let dump_dir = work.path().join("rdump-dir");
    let have_restic = ctx.tools.restic.is_some();
    if have_restic {
        restic_init(ctx, &restic_sql)?;
        restic_init(ctx, &restic_dir)?;
    }
    let (changes, updated, appended) = changes_sql(ds, scenario);
    let mut firsts: BTreeMap<Backupper, Result<Stats, String>> = BTreeMap::new();
    let mut rows: BTreeMap<Backupper, Result<(Stats, Stats), String>> = BTreeMap::new();
    let mut rbackup_rss = Vec::new();
    for backup in 1..=2 {
        if backup == 2 {
            server
                .restore(changes.as_bytes())
                .map_err(|e| format!("applying the changes: {e}"))?;
            log(&format!(
                "dedup {}: {updated} rows updated, {appended} appended",
                scenario.slug()
            ));
        }
        for b in [
            Backupper::Rbackup,
            Backupper::ResticMysqldump,
            Backupper::ResticRdumpDir,
        ] {
            let r = match b {
                Backupper::Rbackup => rbackup_backup(ctx, server, &repo),
                _ if !have_restic => Err("restic is not installed".to_string()),
                Backupper::ResticMysqldump => restic_over_mysqldump(ctx, server, &restic_sql),
                Backupper::ResticRdumpDir => {
                    restic_over_rdump_dir(ctx, server, &restic_dir, &dump_dir)
                }
            };
            let r = r.map(|(sample, stats)| {
                log(&format!(
                    "dedup {} backup {backup} {b:?}: {} logical, {} new before compression ({:.2}%), {} stored, {:.1} s, {:.1} MiB peak RSS",
                    scenario.slug(),
                    thousands(stats.logical),
                    thousands(stats.added),
                    100.0 * stats.added as f64 / stats.logical.max(1) as f64,
                    thousands(stats.stored),
                    sample.wall,
                    sample.rss_kib as f64 / 1024.0
                ));
                if b == Backupper::Rbackup {
                    rbackup_rss.push(sample.rss_kib);
                }
                stats
            });
            if let Err(e) = &r {
                log(&format!(
                    "dedup {} backup {backup} {b:?}: FAILED: {e}",
                    scenario.slug()
                ));
            }
            if backup == 1 {
                firsts.insert(b, r);
            } else {
                let first = firsts.remove(&b).expect("backup 1 ran");
                rows.insert(b, first.and_then(|f| r.map(|s| (f, s))));
            }
        }
    }
    Ok(DedupResult {
        scenario,
        ds,
        updated,
        appended,
        rows,
        rbackup_rss,
    })
}

// ---------------------------------------------------------------------------
// Speed.

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Run {
    RdumpZstd,
    BackupFirst,
    BackupSecond,
    Rload,
    Restore,
}

const RUNS: [Run; 5] = [
    Run::RdumpZstd,
    Run::BackupFirst,
    Run::BackupSecond,
    Run::Rload,
    Run::Restore,
];

impl Run {
    fn shown(self, n: usize) -> String {
        match self {
            Run::RdumpZstd => format!("rdump --dir DIR --format=csv --zstd --threads {n}"),
            Run::BackupFirst => format!("rbackup backup --threads {n} (first, new repository)"),
            Run::BackupSecond => {
                format!("rbackup backup --threads {n} (second, unchanged data)")
            }
            Run::Rload => format!("rload --threads {n} DIR (the --zstd directory)"),
            Run::Restore => format!("rbackup restore latest --threads {n}"),
        }
    }
}

#[derive(Default)]
struct SpeedResult {
    ds: Option<Dataset>,
    samples: BTreeMap<Run, Vec<Sample>>,
    errors: BTreeMap<Run, String>,
    /// Output of the last round: rdump's directory, rbackup's repository (bytes).
    rdump_bytes: u64,
    repo_bytes: u64,
    checksums_ok: BTreeMap<Run, bool>,
}

impl SpeedResult {
    fn med(&self, r: Run, f: impl Fn(&Sample) -> f64) -> Option<f64> {
        median(self.samples.get(&r)?.iter().map(f).collect())
    }
    fn wall(&self, r: Run) -> Option<f64> {
        self.med(r, |s| s.wall)
    }
    fn cpu(&self, r: Run) -> Option<f64> {
        self.med(r, |s| s.client_cpu + s.server_cpu)
    }
    fn rss_mib(&self, r: Run) -> Option<f64> {
        self.samples
            .get(&r)?
            .iter()
            .map(|s| s.rss_kib)
            .max()
            .map(|k| k as f64 / 1024.0)
    }
}

fn bench_speed(ctx: &Ctx) -> Result<SpeedResult, String> {
    let ds = Dataset {
        tables: ctx.cfg.tables,
        rows: ctx.cfg.rows,
    };
    let cached = ensure_dataset(ctx, ds)?;
    let mut result = SpeedResult {
        ds: Some(ds),
        ..SpeedResult::default()
    };
    let n = ctx.cfg.threads;
    let work = ctx.scratch("out");
    let rdump_dir = work.path().join("rdump-zstd");
    let record = |result: &mut SpeedResult, r: Run, round: usize, s: Result<Sample, String>| match s
    {
        Ok(s) => {
            log(&format!(
                "speed round {}/{}: {:<45} {:>7.2} s wall, {:>7.2} s client CPU, {:>7.2} s server CPU, {:>6.2} s other CPU, {:>6.1} MiB peak RSS",
                round + 1,
                ctx.cfg.rounds,
                r.shown(n),
                s.wall,
                s.client_cpu,
                s.server_cpu,
                s.other_cpu,
                s.rss_kib as f64 / 1024.0
            ));
            result.samples.entry(r).or_default().push(s);
        }
        Err(e) => {
            log(&format!("speed {r:?}: FAILED: {e}"));
            result.errors.insert(r, e);
        }
    };
    let mut repo_dir = None;
    {
        let source = start_source(ctx, &cached)?;
        let server = &source.server;
        // Warm-up: every row once into the buffer pool.
        let tables: Vec<String> = ds
            .table_names()
            .iter()
            .map(|t| format!("SELECT * FROM `{DB}`.`{t}`"))
            .collect();
        let mut warm = Command::new(&ctx.tools.mariadb);
        warm.args(["--no-defaults", "-uroot", "--quick", "--batch"])
            .arg(format!("--socket={}", server.socket().display()))
            .args(["-e", &tables.join("; ")])
            .stdout(Stdio::null());
        let begin = Instant::now();
        warm.status().map_err(|e| format!("warm-up: {e}"))?;
        log(&format!(
            "speed: warm-up SELECT * in {:.1?}",
            begin.elapsed()
        ));
        for round in 0..ctx.cfg.rounds {
            // rdump first on even rounds, rbackup first on odd ones.
            for step in 0..2 {
                if (step + round) % 2 == 0 {
                    let _ = fs::remove_dir_all(&rdump_dir);
                    let s = run(
                        vec![rdump_dir_cmd(ctx, server, &rdump_dir, true)],
                        None,
                        server.pid(),
                    );
                    record(&mut result, Run::RdumpZstd, round, s);
                    result.rdump_bytes = dir_bytes(&rdump_dir);
                } else {
                    let dir = ctx.scratch("out");
                    let repo = init_repo(ctx, dir.path())?;
                    for r in [Run::BackupFirst, Run::BackupSecond] {
                        let s = rbackup_backup(ctx, server, &repo).map(|(s, _)| s);
                        record(&mut result, r, round, s);
                    }
                    result.repo_bytes = dir_bytes(Path::new(&repo.url));
                    repo_dir = Some((dir, repo));
                }
                // SAFETY: sync(2) has no preconditions; it keeps one run's write-back out
                // of the next one.
                unsafe { libc::sync() };
            }
        }
    }
    // Restores, each into a fresh empty server, alternating.
    let Some((_keep, repo)) = repo_dir else {
        return Err("no rbackup repository to restore from".into());
    };
    if !rdump_dir.join("rdump.json").exists() {
        return Err("no rdump directory to load".into());
    }
    for round in 0..ctx.cfg.rounds {
        for step in 0..2 {
            let r = if (step + round) % 2 == 0 {
                Run::Rload
            } else {
                Run::Restore
            };
            let target = start_server(None, TARGET_BUFFER_POOL_MB);
            let socket = format!("--socket={}", target.socket().display());
            let threads = format!("--threads={n}");
            let cmd = match r {
                Run::Rload => {
                    let mut c = Command::new(&ctx.tools.rload);
                    c.args(["--no-defaults", "-uroot", &socket, &threads])
                        .args(["--progress=never", "--quiet"])
                        .arg(&rdump_dir);
                    c
                }
                _ => {
                    let mut c = rbackup_cmd(ctx);
                    c.args(["restore", "--repo", &repo.url, "--identity-file"])
                        .arg(&repo.identity_file)
                        .arg("latest")
                        .args(["--no-defaults", "-uroot", &socket, &threads])
                        .arg("--progress=never");
                    c
                }
            };
            let s = run(vec![cmd], None, target.pid());
            if s.is_ok() {
                let ok = checksum_tables(&target, ds).is_ok_and(|got| got == cached.checksums);
                let all = result.checksums_ok.get(&r).copied().unwrap_or(true) && ok;
                result.checksums_ok.insert(r, all);
                if !ok {
                    log(&format!(
                        "speed {r:?}: CHECKSUM TABLE differs from the source"
                    ));
                }
            }
            record(&mut result, r, round, s);
            drop(target);
            // SAFETY: as above.
            unsafe { libc::sync() };
        }
    }
    Ok(result)
}

// ---------------------------------------------------------------------------
// The report.

#[derive(Default)]
struct Report {
    dedup: Vec<DedupResult>,
    speed: Option<SpeedResult>,
    notes: Vec<String>,
    elapsed: Duration,
    load: (String, String),
}

fn f2(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite())
        .map_or_else(|| "–".into(), |x| format!("{x:.2}"))
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "–".into();
    }
    format!("{:.2}%", 100.0 * part as f64 / whole as f64)
}

fn one_line(s: &str) -> String {
    let flat = s
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|");
    if flat.chars().count() > 200 {
        format!("{}…", flat.chars().take(200).collect::<String>())
    } else {
        flat
    }
}

fn met(value: Option<f64>, goal: f64) -> &'static str {
    match value {
        Some(v) if v <= goal => "yes",
        Some(_) => "no",
        None => "–",
    }
}

impl Report {
    fn render(&self, ctx: &Ctx) -> String {
        let cfg = &ctx.cfg;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "## rbackup benchmark (issue 12 targets), {}\n",
            chrono::Local::now().format("%Y-%m-%d %H:%M %Z")
        );
        let _ = writeln!(out, "{}\n", machine_line(ctx));
        let env = Config::env_line();
        let _ = writeln!(
            out,
            "Command: `{}cargo bench --bench backup` ({} thread(s); speed: {} round(s), \
             interleaved, medians; took {:.0?}). Load average at the start {}, at the end {}.\n",
            if env.is_empty() {
                String::new()
            } else {
                format!("{env} ")
            },
            cfg.threads,
            cfg.rounds,
            self.elapsed,
            self.load.0,
            self.load.1
        );
        let mut targets: Vec<(String, String, String, &'static str)> = Vec::new();
        for d in &self.dedup {
            self.render_dedup(&mut out, ctx, d, &mut targets);
        }
        if let Some(s) = &self.speed {
            self.render_speed(&mut out, ctx, s, &mut targets);
        }
        if !targets.is_empty() {
            let sized = (self.dedup.is_empty() || cfg.dedup_default_size())
                && (self.speed.is_none() || cfg.speed_default_size());
            let _ = writeln!(
                out,
                "### Issue 12 targets{}\n",
                if sized {
                    ""
                } else {
                    " (NOT the issue's dataset sizes: indicative only)"
                }
            );
            out.push_str("| target | measured | goal | met |\n|---|---:|---:|---|\n");
            for (what, value, goal, ok) in &targets {
                let _ = writeln!(out, "| {what} | {value} | {goal} | {ok} |");
            }
            out.push('\n');
        }
        if !self.notes.is_empty() {
            out.push_str("Notes:\n");
            for n in &self.notes {
                let _ = writeln!(out, "- {}", one_line(n));
            }
        }
        out
    }

    fn render_dedup(
        &self,
        out: &mut String,
        ctx: &Ctx,
        d: &DedupResult,
        targets: &mut Vec<(String, String, String, &'static str)>,
    ) {
        let _ = writeln!(
            out,
            "### Dedup, {}: {} ({} rows updated, {} appended)\n",
            d.ds.label(),
            d.scenario.describe(),
            thousands(d.updated),
            thousands(d.appended)
        );
        out.push_str(
            "| backup | backup 1: logical bytes | backup 1: new bytes | backup 2: logical bytes | backup 2: new bytes (before compression) | ÷ backup 1's logical | backup 2: stored (compressed, encrypted) |\n\
             |---|---:|---:|---:|---:|---:|---:|\n",
        );
        for (b, r) in &d.rows {
            let name = format!("`{}`", b.shown(ctx.cfg.threads)).replace('|', "\\|");
            match r {
                Ok((one, two)) => {
                    let _ = writeln!(
                        out,
                        "| {name} | {} | {} | {} | {} | **{}** | {} |",
                        thousands(one.logical),
                        thousands(one.added),
                        thousands(two.logical),
                        thousands(two.added),
                        pct(two.added, one.logical),
                        thousands(two.stored),
                    );
                }
                Err(e) => {
                    let _ = writeln!(out, "| {name} | failed: {} | | | | | |", one_line(e));
                }
            }
        }
        let _ = writeln!(
            out,
            "\nByte counts are exact (they do not depend on the machine's load). rbackup: \
             the snapshot's `logical_bytes` and `new_bytes` (blobs not in the repository \
             before, raw) and `new_stored_bytes`; restic: its summary's \
             `total_bytes_processed` and `data_added` (raw), and the repository's growth on \
             disk. Issue 12 measured restic over mysqldump at {} for this scenario.\n",
            d.scenario.issue_restic()
        );
        let rb = d
            .rows
            .get(&Backupper::Rbackup)
            .and_then(|r| r.as_ref().ok())
            .map(|(one, two)| two.added as f64 / one.logical.max(1) as f64);
        let peer = d
            .rows
            .get(&Backupper::ResticMysqldump)
            .and_then(|r| r.as_ref().ok())
            .map(|(one, two)| format!(" (restic over mysqldump: {})", pct(two.added, one.logical)))
            .unwrap_or_default();
        let goal = d.scenario.target();
        targets.push((
            format!(
                "dedup, {}: backup 2's new bytes ÷ backup 1's logical bytes{peer}",
                d.scenario.slug()
            ),
            rb.map_or_else(|| "–".into(), |v| format!("{:.2}%", 100.0 * v)),
            format!("≤ {:.0}%", 100.0 * goal),
            met(rb, goal),
        ));
        let rss = d.rbackup_rss.iter().max().map(|k| *k as f64 / 1024.0);
        targets.push((
            format!("rbackup backup peak RSS, dedup {} (MiB)", d.scenario.slug()),
            f2(rss),
            format!("≤ {RSS_TARGET_MIB}"),
            met(rss, RSS_TARGET_MIB),
        ));
    }

    fn render_speed(
        &self,
        out: &mut String,
        ctx: &Ctx,
        s: &SpeedResult,
        targets: &mut Vec<(String, String, String, &'static str)>,
    ) {
        let n = ctx.cfg.threads;
        let label = s.ds.map(|d| d.label()).unwrap_or_default();
        let _ = writeln!(out, "### Speed, {label} (local repository and directory)\n");
        out.push_str(
            "| run | wall (s) | min–max | client CPU (s) | server CPU (s) | client+server CPU (s) | other CPU (s) | peak RSS (MiB, VmHWM) | checksums |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---|\n",
        );
        for r in RUNS {
            let name = format!("`{}`", r.shown(n));
            if let Some(e) = s.errors.get(&r).filter(|_| !s.samples.contains_key(&r)) {
                let _ = writeln!(out, "| {name} | failed: {} | | | | | | | |", one_line(e));
                continue;
            }
            let Some(samples) = s.samples.get(&r) else {
                continue;
            };
            let walls: Vec<f64> = samples.iter().map(|x| x.wall).collect();
            let range = if walls.len() > 1 {
                format!(
                    "{:.2}–{:.2}",
                    walls.iter().copied().fold(f64::INFINITY, f64::min),
                    walls.iter().copied().fold(0.0, f64::max)
                )
            } else {
                String::new()
            };
            let check = match s.checksums_ok.get(&r) {
                Some(true) => "match",
                Some(false) => "**DIFFER**",
                None => "",
            };
            let _ = writeln!(
                out,
                "| {name} | {} | {range} | {} | {} | {} | {} | {} | {check} |",
                f2(s.wall(r)),
                f2(s.med(r, |x| x.client_cpu)),
                f2(s.med(r, |x| x.server_cpu)),
                f2(s.cpu(r)),
                f2(s.med(r, |x| x.other_cpu)),
                f2(s.rss_mib(r)),
            );
        }
        let _ = writeln!(
            out,
            "\nOutput: rdump's --zstd directory {:.1} MiB, rbackup's repository after two \
             backups {:.1} MiB. Wall times on a shared machine are inflated by the other CPU \
             column; client+server CPU is the steadier comparison.\n",
            s.rdump_bytes as f64 / 1048576.0,
            s.repo_bytes as f64 / 1048576.0
        );
        for (r, e) in &s.errors {
            if s.samples.contains_key(r) {
                let _ = writeln!(out, "- `{r:?}` failed in a round: {}", one_line(e));
            }
        }
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let cpu_note = |a: Run, b: Run| {
            ratio(s.cpu(a), s.cpu(b)).map_or_else(String::new, |c| format!(" (CPU {c:.2})"))
        };
        for (what, a, b, goal) in [
            (
                format!("`rbackup backup` wall ÷ `rdump --dir --zstd -t{n}`"),
                Run::BackupFirst,
                Run::RdumpZstd,
                BACKUP_VS_RDUMP,
            ),
            (
                "second (deduplicated) backup wall ÷ first".to_string(),
                Run::BackupSecond,
                Run::BackupFirst,
                SECOND_VS_FIRST,
            ),
            (
                format!("`rbackup restore` wall ÷ `rload -t{n}` of a local directory"),
                Run::Restore,
                Run::Rload,
                RESTORE_VS_RLOAD,
            ),
        ] {
            let v = ratio(s.wall(a), s.wall(b));
            targets.push((
                format!("{what}{}", cpu_note(a, b)),
                f2(v),
                format!("≤ {goal}"),
                met(v, goal),
            ));
        }
        for r in [Run::BackupFirst, Run::BackupSecond, Run::Restore] {
            let v = s.rss_mib(r);
            targets.push((
                format!("peak RSS, `{}` (MiB)", r.shown(n)),
                f2(v),
                format!("≤ {RSS_TARGET_MIB}"),
                met(v, RSS_TARGET_MIB),
            ));
        }
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
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let git = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let t = &ctx.tools;
    let restic = t
        .restic
        .as_ref()
        .map_or_else(|| "not installed".into(), |p| version_of(p, "version"));
    let sysbench = t
        .sysbench
        .as_ref()
        .map_or_else(|| "not installed".into(), |p| version_of(p, "--version"));
    format!(
        "Machine: {} cores ({model}), {mem_gib:.0} GiB RAM, Linux {kernel}. Server: {} \
         (sandbox, `tests/common` options plus a buffer pool holding the data, \
         {LOG_FILE_SIZE} redo log). rbackup/rdump {git}; mysqldump: {}; {restic}; {sysbench}.",
        ctx.cfg.cores,
        version_of(Path::new(&common::mariadbd_bin()), "--version"),
        version_of(&t.mysqldump, "--version"),
    )
}
