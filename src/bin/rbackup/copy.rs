//! `rbackup copy`: the offsite copy, backups and archived binlogs missing at another
//! repository. The source needs a reader key (`--identity-file`/`--passphrase-file`), the
//! destination its writer key (`--to-writer-key-file`) or a reader key of its own
//! (`--to-identity-file`, `--to-passphrase-file`). The destination's S3 settings may
//! differ from the source's: `--to-endpoint`, and `RBACKUP_TO_AWS_*` variables for the
//! credentials (never on the command line).
//!
//! Not for: the copy itself (`rdump::backup::copy`).

use std::path::PathBuf;

use clap::Args;
use rdump::backup::copy::{CopyOptions, copy};
use rdump::backup::error::BackupError;
use rdump::backup::store::{S3Settings, StoreOptions};
use rdump::backup::{self, Access, RepositoryReader};
use rdump::trust::log::{Level, Value};
use rdump::trust::metrics::Metric;

use crate::common::{KeyArgs, RepoArg, log, metric};

pub const HELP: &str = "\
What moves: every backup of the source (or those given) whose copy the destination does not
hold yet, re-chunked and re-encrypted for the destination, storing only the chunks the
destination lacks; then every archived binlog segment the destination lacks. A copy that
was interrupted is simply run again: what it stored is reused, nothing is stored twice.

The destination's S3 credentials, region and endpoint come from RBACKUP_TO_AWS_ACCESS_KEY_ID,
RBACKUP_TO_AWS_SECRET_ACCESS_KEY, RBACKUP_TO_AWS_REGION, RBACKUP_TO_AWS_ENDPOINT_URL (or
--to-endpoint), each falling back to the AWS_* variable of the source.

Exit codes:
  0  success (prints one line per backup copied)
  1  usage error, or refused: no repository, wrong or missing key, locked
  2  a storage failed (the error names the object and repository)
  5  the source is damaged: an object is missing or does not match its hash; the error
     names the object and the file (table) that needs it";

#[derive(Args, Debug)]
pub struct CopyArgs {
    #[command(flatten)]
    repo: RepoArg,
    #[command(flatten)]
    keys: KeyArgs,
    /// The destination repository: a path, file:///path or s3://bucket/prefix.
    #[arg(long, env = "RBACKUP_TO", value_name = "URL")]
    to: String,
    /// The destination's writer key (enough to copy into it; it cannot read it).
    #[arg(long, env = "RBACKUP_TO_WRITER_KEY_FILE", value_name = "F")]
    to_writer_key_file: Option<PathBuf>,
    /// An age identity file of one of the destination's readers (instead of its writer
    /// key).
    #[arg(long, env = "RBACKUP_TO_IDENTITY_FILE", value_name = "F")]
    to_identity_file: Option<PathBuf>,
    /// A file whose first line is the destination's passphrase.
    #[arg(long, env = "RBACKUP_TO_PASSPHRASE_FILE", value_name = "F")]
    to_passphrase_file: Option<PathBuf>,
    /// The destination's S3 endpoint, when it is not the source's.
    #[arg(long, env = "RBACKUP_TO_AWS_ENDPOINT_URL", value_name = "URL")]
    to_endpoint: Option<String>,
    /// Backups only, no binlog segments.
    #[arg(long)]
    no_binlogs: bool,
    /// The backups to copy (IDs, unique prefixes, `latest`); none: all.
    #[arg(value_name = "ID")]
    ids: Vec<String>,
}

/// The destination's store settings: `RBACKUP_TO_AWS_*`, falling back to `AWS_*` (which
/// `Store::open` reads itself when nothing is given).
fn destination_store(args: &CopyArgs) -> StoreOptions {
    let var = |name: &str| std::env::var(format!("RBACKUP_TO_{name}")).ok();
    StoreOptions {
        s3: S3Settings {
            endpoint: args.to_endpoint.clone(),
            region: var("AWS_REGION"),
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
        },
        ..StoreOptions::default()
    }
}

pub async fn run(args: CopyArgs) -> Result<(), BackupError> {
    let access = args.keys.access()?;
    let source = backup::open(&args.repo.repo, &access, &StoreOptions::default()).await?;
    let reader = RepositoryReader::open(source).await?;
    let to_access = match (
        &args.to_writer_key_file,
        &args.to_identity_file,
        &args.to_passphrase_file,
    ) {
        (Some(f), _, _) => Access::writer_key_file(f)?,
        (None, Some(f), _) => Access::identity_file(f)?,
        (None, None, Some(f)) => Access::passphrase_file(f)?,
        (None, None, None) => Access::None,
    };
    let dest = backup::open(&args.to, &to_access, &destination_store(&args)).await?;
    let options = CopyOptions {
        ids: args.ids.clone(),
        binlogs: !args.no_binlogs,
    };
    let progress = |line: &str| log(Level::Info, line, &[]);
    let report = copy(&reader, &dest, &options, &progress).await?;
    for c in &report.copied {
        println!("{} {}", c.source_id, c.id);
    }
    let added = report.bytes_added();
    metric(Metric::BytesAdded, added as f64);
    if report.logical_bytes() > 0 {
        let stored: u64 = report.copied.iter().map(|c| c.stored_bytes).sum();
        let ratio = 1.0 - (stored as f64 / report.logical_bytes() as f64).min(1.0);
        metric(Metric::DedupRatio, ratio);
    }
    if let Some(bytes) = repository_bytes(&dest.store).await {
        metric(Metric::RepositoryBytes, bytes as f64);
    }
    log(
        Level::Info,
        &format!(
            "copy to {} done: {} backups copied, {} already there, {} binlog objects, {} bytes stored",
            args.to,
            report.copied.len(),
            report.skipped,
            report.segments,
            added
        ),
        &[
            ("copied", Value::UInt(report.copied.len() as u64)),
            ("skipped", Value::UInt(report.skipped as u64)),
            ("binlog_objects", Value::UInt(report.segments as u64)),
            ("bytes_added", Value::UInt(added)),
        ],
    );
    Ok(())
}

/// The bytes of the repository's packs, indexes, snapshots and segments (a listing), for
/// the metrics; `None` if the listing fails (the copy itself succeeded).
pub async fn repository_bytes(store: &rdump::backup::store::Store) -> Option<u64> {
    let mut total = 0;
    for prefix in ["data", "index", "snapshots", "binlog"] {
        total += store
            .list(prefix)
            .await
            .ok()?
            .iter()
            .map(|l| l.size)
            .sum::<u64>();
    }
    Some(total)
}
