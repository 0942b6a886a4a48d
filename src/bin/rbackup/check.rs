//! `rbackup check`: reads what the repository says of its backups, binlog archive and
//! drills (`rdump::backup::health`), judges it against the limits (`rdump::trust::check`)
//! and prints one line; the exit code is the verdict's (0 OK, 1 WARNING, 2 CRITICAL,
//! 3 UNKNOWN when the repository could not be read).
//!
//! Any key will do: with a reader key the times are those the objects hold; with a writer
//! key or none (a monitoring host), the storage times of the newest objects, and drills
//! (whose verdicts are encrypted) cannot be judged: with `--max-drill-age` that is UNKNOWN.
//!
//! Not for: the verdict's rules (`rdump::trust::check`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use rdump::backup::error::BackupError;
use rdump::backup::health::{Health, observe};
use rdump::backup::store::{Store, StoreOptions};
use rdump::backup::{self, Access};
use rdump::trust::check::{Limits, Status, Verdict, verdict};
use rdump::trust::duration::CalendarDuration;
use rdump::trust::log::{Level, Value};
use rdump::trust::metrics::Metric;

use crate::common::{KeyArgs, RepoArg, config, json_logs, log, metric};

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    repo: RepoArg,
    #[command(flatten)]
    keys: KeyArgs,
    /// A writer key: enough for the backup and archiver checks, not for drills.
    #[arg(long, env = "RBACKUP_WRITER_KEY_FILE", value_name = "F")]
    writer_key_file: Option<PathBuf>,
    /// CRITICAL when the newest backup is older than this (e.g. 26h).
    #[arg(long, value_name = "DURATION")]
    max_age: Option<CalendarDuration>,
    /// CRITICAL when the archiver's last stored event is older than this (e.g. 15min).
    #[arg(long, value_name = "DURATION")]
    max_binlog_lag: Option<CalendarDuration>,
    /// WARNING when no restore drill passed within this (e.g. 8d).
    #[arg(long, value_name = "DURATION")]
    max_drill_age: Option<CalendarDuration>,
}

pub async fn command(args: CheckArgs) -> ExitCode {
    let cli = Limits {
        max_age: args.max_age,
        max_binlog_lag: args.max_binlog_lag,
        max_drill_age: args.max_drill_age,
    };
    let limits = config()
        .map(|c| c.check_limits())
        .unwrap_or_default()
        .overridden_by(cli);
    let now = chrono::Utc::now();
    let verdict = match gather(&args, now).await {
        Ok(health) if limits.max_drill_age.is_some() && !health.drill_readable => Verdict::unknown(
            "--max-drill-age needs a reader key (--identity-file or --passphrase-file): drill records are encrypted",
        ),
        Ok(health) => {
            record_metrics(&health, now);
            verdict(&health.observed, &limits, &chrono::Local)
        }
        Err(e) => Verdict::unknown(&format!("{}: {e}", args.repo.repo)),
    };
    println!("{}", verdict.line);
    if !json_logs() {
        return ExitCode::from(verdict.status.exit_code() as u8);
    }
    let level = match verdict.status {
        Status::Ok => Level::Info,
        Status::Warning => Level::Warn,
        _ => Level::Error,
    };
    log(
        level,
        &verdict.line,
        &[("status", Value::Str(verdict.status.label().into()))],
    );
    ExitCode::from(verdict.status.exit_code() as u8)
}

async fn gather(
    args: &CheckArgs,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Health, BackupError> {
    let access = match &args.writer_key_file {
        Some(f) if args.keys.identity_file.is_none() && args.keys.passphrase_file.is_none() => {
            Access::writer_key_file(f)?
        }
        _ => args.keys.access()?,
    };
    if matches!(access, Access::None) {
        // No key: what the listing says (object names and times).
        let store = Store::open(&args.repo.repo, &StoreOptions::default(), false)?;
        if store.head("config").await?.is_none() {
            return Err(BackupError::Usage(
                "not an rbackup repository (no config)".into(),
            ));
        }
        return observe(&store, None, now).await;
    }
    let repo = backup::open(&args.repo.repo, &access, &StoreOptions::default()).await?;
    observe(&repo.store, Some(&repo), now).await
}

fn record_metrics(health: &Health, now: chrono::DateTime<chrono::Utc>) {
    let o = &health.observed;
    if let Some(t) = o.archiver.as_ref().and_then(|a| a.last_event) {
        metric(
            Metric::BinlogLagSeconds,
            ((now - t).num_milliseconds() as f64 / 1000.0).max(0.0),
        );
    }
    if let Some(t) = o.last_drill_success {
        metric(Metric::DrillLastSuccessTimestamp, t.timestamp() as f64);
    }
}
