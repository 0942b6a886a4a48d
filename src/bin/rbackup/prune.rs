//! `rbackup prune`: the retention policy's `--keep-*` options, the plan printed per group
//! (source, scope; with `--log-format json` each backup's fate also a log line carrying
//! its group; with `--dry-run` only that), then `rdump::backup::prune` run under the
//! exclusive lock.
//!
//! Not for: the policy (`rdump::trust::retention`) or deleting (`rdump::backup::prune`).

use clap::Args;
use rdump::backup::error::BackupError;
use std::collections::BTreeMap;

use rdump::backup::prune::{self, Group, Plan, PruneOptions, SnapshotFate};
use rdump::backup::store::StoreOptions;
use rdump::trust::duration::CalendarDuration;
use rdump::trust::log::{Level, Value};
use rdump::trust::retention::{Count, Policy};

use crate::common::{KeyArgs, RepoArg};

pub const HELP: &str = "\
What prune deletes, in this order (a prune killed at any point leaves a repository that
verify passes and from which every kept backup restores; the next prune finishes the work):
  1. the snapshots of the backups the policy, applied to each group (source, scope) on
     its own, does not keep;
  2. every pack no kept backup uses a blob of, and packs no index lists (left by an
     interrupted backup or prune); packs less than half used are repacked: their used
     blobs are copied into new packs (checked on the way) and new index objects are
     written before anything old is deleted;
  3. per binlog source, the archived segments before the oldest kept backup of that
     source, of any group (never its newest segment); an archive with no kept backup
     of its source is kept whole, and said so.
Copy markers (copies/) of removed backups are kept: they stop rbackup copy from
bringing those backups back.
It holds the repository's exclusive lock: refused while a backup, archiver, restore or
verify runs, and they are refused while it runs. --dry-run lists each group and its
backups with the reasons each is kept, or that it would be removed, and what would be
deleted; it deletes nothing and takes only a shared lock.

Exit codes:
  0  success (also: nothing to remove)
  1  usage error, or refused: no repository, wrong key (prune needs a reader key), locked
  2  the storage failed; the error names the object
  5  the repository is damaged (a snapshot or catalog cannot be read, a pack to repack is
     damaged): prune stops before deleting anything it cannot account for; run verify";

#[derive(Args, Debug)]
pub struct PruneArgs {
    #[command(flatten)]
    repo: RepoArg,
    #[command(flatten)]
    keys: KeyArgs,
    /// Keep the N newest backups.
    #[arg(long, value_name = "N")]
    keep_last: Option<Count>,
    /// Keep the newest backup of each of the N newest hours that have one.
    #[arg(long, value_name = "N")]
    keep_hourly: Option<Count>,
    /// Keep the newest backup of each of the N newest days that have one.
    #[arg(long, value_name = "N")]
    keep_daily: Option<Count>,
    /// Keep the newest backup of each of the N newest ISO weeks (Monday to Sunday).
    #[arg(long, value_name = "N")]
    keep_weekly: Option<Count>,
    /// Keep the newest backup of each of the N newest months.
    #[arg(long, value_name = "N")]
    keep_monthly: Option<Count>,
    /// Keep the newest backup of each of the N newest years.
    #[arg(long, value_name = "N")]
    keep_yearly: Option<Count>,
    /// Keep every backup made within DURATION (e.g. 7d, 1y2m, 36h) before the newest.
    #[arg(long, value_name = "DURATION")]
    keep_within: Option<CalendarDuration>,
    /// Print what would be removed and why; remove nothing.
    #[arg(long)]
    dry_run: bool,
}

impl PruneArgs {
    /// The policy of the --keep-* flags; with none given, the config file's `[retention]`
    /// (`--config`, /etc/rbackup.toml), which may be empty too (then nothing is removed).
    fn policy(&self) -> Policy {
        let flags = self.keep_last.is_some()
            || self.keep_hourly.is_some()
            || self.keep_daily.is_some()
            || self.keep_weekly.is_some()
            || self.keep_monthly.is_some()
            || self.keep_yearly.is_some()
            || self.keep_within.is_some();
        if !flags && let Some(config) = crate::common::config() {
            return config.retention_policy();
        }
        Policy {
            last: self.keep_last.unwrap_or_default(),
            hourly: self.keep_hourly.unwrap_or_default(),
            daily: self.keep_daily.unwrap_or_default(),
            weekly: self.keep_weekly.unwrap_or_default(),
            monthly: self.keep_monthly.unwrap_or_default(),
            yearly: self.keep_yearly.unwrap_or_default(),
            within: self.keep_within,
        }
    }
}

pub async fn run(args: PruneArgs) -> Result<(), BackupError> {
    let access = args.keys.access()?;
    let repo = rdump::backup::open(&args.repo.repo, &access, &StoreOptions::from_env()?).await?;
    let options = PruneOptions {
        policy: args.policy(),
        dry_run: args.dry_run,
        ..Default::default()
    };
    println!("policy: {}", options.policy);
    let mut say = |line: String| println!("{line}");
    let outcome = prune::prune(&repo, &options, &mut say).await?;
    print_plan(&outcome.plan, args.dry_run);
    Ok(())
}

fn print_plan(plan: &Plan, dry_run: bool) {
    if plan.empty_policy {
        return;
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    // Per group (source, scope), in that order; each group's backups newest first.
    let mut groups: BTreeMap<&Group, Vec<&SnapshotFate>> = BTreeMap::new();
    for s in &plan.snapshots {
        groups.entry(&s.group).or_default().push(s);
    }
    let json = crate::common::json_logs();
    for (group, snapshots) in &groups {
        let removed = snapshots.iter().filter(|s| s.kept.is_none()).count();
        println!(
            "group: source {}, scope {}: {} backups, {} kept, {} {verb}",
            group.source,
            group.scope,
            snapshots.len(),
            snapshots.len() - removed,
            removed
        );
        for s in snapshots {
            let short = &s.id[..s.id.len().min(10)];
            match &s.kept {
                Some(reasons) => println!("keep   {short} {} {}: {reasons}", s.time, s.host),
                None => println!(
                    "{}{short} {} {}: kept by no rule of the policy",
                    if dry_run { "remove " } else { "removed " },
                    s.time,
                    s.host
                ),
            }
            if json {
                let fate = match (&s.kept, dry_run) {
                    (Some(_), _) => "keep",
                    (None, true) => "would remove",
                    (None, false) => "removed",
                };
                crate::common::log(
                    Level::Info,
                    &format!("backup {short}: {fate}"),
                    &[
                        ("backup", Value::Str(s.id.clone())),
                        ("time", Value::Str(s.time.clone())),
                        ("host", Value::Str(s.host.clone())),
                        ("source", Value::Str(group.source.clone())),
                        ("scope", Value::Str(group.scope.clone())),
                        ("fate", Value::Str(fate.into())),
                        (
                            "reasons",
                            Value::Str(
                                s.kept
                                    .clone()
                                    .unwrap_or_else(|| "kept by no rule of the policy".into()),
                            ),
                        ),
                    ],
                );
            }
        }
    }
    let packs = |k: &str| plan.packs.get(k).copied().unwrap_or((0, 0));
    let (unused, unused_b) = packs("unused");
    let (unindexed, unindexed_b) = packs("unindexed");
    let (repack, repack_b) = packs("repack");
    let (keep, keep_b) = packs("keep");
    let (missing, _) = packs("missing");
    println!(
        "packs: {keep} kept ({keep_b} bytes); {verb} {unused} that no kept backup uses ({unused_b} bytes) and {unindexed} that no index lists ({unindexed_b} bytes); {} {repack} mostly unused ({repack_b} bytes, {} blobs of {} bytes copied out)",
        if dry_run { "would repack" } else { "repacked" },
        plan.copy_blobs,
        plan.copy_bytes
    );
    if missing > 0 {
        println!(
            "{missing} packs listed by an index are missing from the storage: their index entries {} dropped (run rbackup verify)",
            if dry_run { "would be" } else { "were" }
        );
    }
    for b in &plan.binlog {
        if let Some(note) = &b.note {
            println!("binlog source {}: {note}", b.source);
        }
        match (&b.cut, &b.cut_backup) {
            (Some(cut), Some(backup)) => println!(
                "binlog source {}: {verb} {} segments and gaps ({} bytes) before {cut}, the coordinates of {}, the oldest kept backup of this source{}",
                b.source,
                b.objects.len(),
                b.bytes,
                &backup[..backup.len().min(10)],
                if b.maybe > 0 {
                    " or of one that records no source"
                } else {
                    ""
                }
            ),
            _ => println!(
                "binlog source {}: kept whole ({} segments and gaps, {} bytes): {}",
                b.source,
                b.archive_objects,
                b.archive_bytes,
                b.whole.as_deref().unwrap_or("no cut")
            ),
        }
    }
    for m in &plan.kept_markers {
        println!(
            "copy marker {} of backup {} (copied from {}): {}, so that rbackup copy does not bring the removed backup back",
            &m.marker[..m.marker.len().min(20)],
            &m.backup[..m.backup.len().min(10)],
            m.from,
            if dry_run { "would be kept" } else { "kept" }
        );
    }
    println!(
        "{} {} backups, about {} bytes",
        if dry_run { "would free:" } else { "freed:" },
        plan.removed().count(),
        plan.freed_bytes()
    );
}
