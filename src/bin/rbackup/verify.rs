//! `rbackup verify`: the repository checked (`rdump::backup::verify`), each damaged or
//! missing object printed with the backups and files it breaks; exit 5 when anything is
//! damaged. `--drill` (a restore drill into a scratch server) is a hook for the drill
//! command, not built here.
//!
//! Not for: the checks themselves (`rdump::backup::verify`).

use std::process::ExitCode;

use clap::Args;
use rdump::backup::error::BackupError;
use rdump::backup::store::{Store, StoreOptions};
use rdump::backup::verify::{self, Report, VerifyOptions};
use rdump::backup::{self, Access};

use crate::common::{KeyArgs, RepoArg, exit_code};

pub const HELP: &str = "\
What is checked:
  without a key    every pack, index, snapshot, key file, drill record and binlog object
                   hashes to its name (its storage ID), and every pack an index lists exists
  with a reader key  besides: every backup's snapshot (MAC), its list of files and every
                   file's blobs resolve to intact packs (and binlog segments' CRC32 and
                   continuity, once archived)
  --read-data      besides: every blob is decrypted, decompressed and re-hashed;
                   --read-data=PERCENT does that for a random PERCENT of the packs
Every object is downloaded once; the CPU work runs on all cores.
Each damaged or missing object is printed with the backups and files (tables) it breaks.

Exit codes:
  0  no damage found (notices, e.g. packs left by an interrupted backup, are not damage)
  1  usage error, or refused: no repository, wrong key, locked by a prune
  2  the storage failed (unreachable, refused, I/O error); the error names the object
  5  damage found: objects missing or not matching their hash, each named";

/// `verify --help`'s text after the options: this module's, then the drill's.
pub fn help() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        format!(
            "{HELP}\n\nRestore drills (--drill):\n{}",
            crate::drill::HELP
        )
    })
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    repo: RepoArg,
    #[command(flatten)]
    keys: KeyArgs,
    /// Also decrypt, decompress and re-hash every blob, or those of a random PERCENT of the
    /// packs (--read-data=10).
    #[arg(long, value_name = "PERCENT", num_args = 0..=1, require_equals = true, default_missing_value = "100")]
    read_data: Option<String>,
    /// `--drill [ID|latest]` and the drill's options (`crate::drill`), `--json`.
    #[command(flatten)]
    drill: crate::drill::DrillArgs,
}

pub async fn command(args: VerifyArgs) -> ExitCode {
    if args.drill.drill.is_some() {
        return crate::drill::command(crate::drill::VerifyArgs {
            repo: args.repo,
            keys: args.keys,
            drill: args.drill,
        })
        .await;
    }
    match run(args).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("rbackup: {e}");
            ExitCode::from(exit_code(&e))
        }
    }
}

fn parse_percent(text: &str) -> Result<f64, BackupError> {
    let t = text.trim().trim_end_matches('%');
    match t.parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 100.0 => Ok(p),
        _ => Err(BackupError::Usage(format!(
            "--read-data={text}: a percentage of the packs, more than 0 and at most 100"
        ))),
    }
}

async fn run(args: VerifyArgs) -> Result<u8, BackupError> {
    let read_data = args.read_data.as_deref().map(parse_percent).transpose()?;
    let url = &args.repo.repo;
    let access = args.keys.access()?;
    let options = StoreOptions::from_env()?;
    let store = Store::open(url, &options, false)?;
    // Without a key an encrypted repository is checked as far as its storage IDs go.
    let repo = match access {
        Access::None => {
            let config = store.get_opt("config").await?.ok_or_else(|| {
                BackupError::Usage(format!(
                    "{url}: not an rbackup repository (no config; run rbackup init)"
                ))
            })?;
            let encrypted = serde_json::from_slice::<serde_json::Value>(&config)
                .ok()
                .and_then(|v| {
                    v.get("encryption")
                        .and_then(|e| e.as_str())
                        .map(|e| e != "none")
                })
                .unwrap_or(true);
            if encrypted {
                None
            } else {
                Some(backup::open(url, &Access::None, &options).await?)
            }
        }
        access => Some(backup::open(url, &access, &options).await?),
    };
    let verify_options = VerifyOptions {
        read_data,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let report = verify::verify(&store, repo.as_ref(), &verify_options).await?;
    let seconds = started.elapsed().as_secs_f64();
    crate::common::metric(
        rdump::trust::metrics::Metric::VerifyErrors,
        report.damage() as f64,
    );
    if args.drill.json {
        let mut value = serde_json::to_value(&report).expect("the report serializes");
        value["seconds"] = serde_json::json!(seconds);
        value["damage"] = serde_json::json!(report.damage());
        println!("{}", serde_json::to_string_pretty(&value).expect("json"));
    } else {
        print_report(&report, seconds);
    }
    Ok(if report.damage() > 0 { 5 } else { 0 })
}

fn print_report(r: &Report, seconds: f64) {
    println!("verify {}", r.url);
    println!(
        "  {} backups, {} index objects, {} packs ({} bytes) hashed, {} other objects",
        r.snapshots, r.indexes, r.packs, r.pack_bytes, r.other_objects
    );
    if r.packs_read > 0 {
        println!(
            "  {} packs read: {} blobs ({} bytes) decrypted, decompressed and re-hashed",
            r.packs_read, r.blobs_read, r.raw_bytes_read
        );
    }
    for n in &r.not_checked {
        println!("  not checked: {n}");
    }
    for f in &r.findings {
        println!("{} {}: {}", f.kind.word(), f.object, f.detail);
        for (id, b) in &f.breaks {
            let short = &id[..id.len().min(10)];
            if b.whole {
                println!(
                    "  breaks backup {short} ({}): the whole backup (its snapshot or list of files)",
                    b.time
                );
                if b.files.is_empty() {
                    continue;
                }
            }
            let files: Vec<&str> = b.files.iter().map(String::as_str).collect();
            let shown = files.len().min(20);
            let more = if files.len() > shown {
                format!(" and {} more files", files.len() - shown)
            } else {
                String::new()
            };
            println!(
                "  breaks backup {short} ({}): {}{more}",
                b.time,
                files[..shown].join(", ")
            );
        }
    }
    let damage = r.damage();
    if damage == 0 {
        println!("no damage found ({seconds:.1} s)");
    } else {
        println!(
            "{damage} damaged or missing objects; {} backups broken ({seconds:.1} s)",
            r.broken_backups().len()
        );
    }
}
