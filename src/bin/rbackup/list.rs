//! `rbackup list`: the backups of a repository, as a table or JSON, and the restorable
//! window of each: from its binlog coordinates to the last archived event of the binlog
//! archive that holds them, ended by a gap if one follows (`rdump::binlog::window`); then
//! each archive's contiguous spans.
//!
//! Not for: reading snapshots (`rdump::backup::reader`) or segments (`backup::segments`).

use clap::Args;
use rdump::backup::error::BackupError;
use rdump::backup::segments::RepositorySegments;
use rdump::backup::store::StoreOptions;
use rdump::backup::{self, RepositoryReader};
use rdump::binlog::window::{self, Span, SpanEnd, Window};
use rdump::binlog::{Position, SegmentSource};

use crate::common::{KeyArgs, RepoArg};

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    repo: RepoArg,
    #[command(flatten)]
    keys: KeyArgs,
    /// One JSON array of backups, for scripts.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: ListArgs) -> Result<(), BackupError> {
    let access = args.keys.access()?;
    let repo = backup::open(&args.repo.repo, &access, &StoreOptions::default()).await?;
    let archives = archives(&repo).await?;
    let reader = RepositoryReader::open(repo).await?;
    let snapshots = reader.snapshots().await?;
    if args.json {
        let list: Vec<serde_json::Value> = snapshots
            .iter()
            .map(|(id, s)| {
                let window = backup_window(&s.meta, &archives).map(|(source, w)| {
                    serde_json::json!({
                        "source": source, "from": w.from, "to": w.to,
                        "to_time": utc(w.to_time), "ends": w.ends,
                    })
                });
                serde_json::json!({
                    "id": id, "time": s.time, "host": s.host, "tags": s.tags,
                    "meta": s.meta, "stats": s.stats, "window": window,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list).expect("json"));
        return Ok(());
    }
    println!(
        "{:<10} {:<20} {:<24} {:>14} {:>14}  {:<30} tags",
        "ID", "time", "databases", "logical bytes", "new bytes", "coordinates"
    );
    for (id, s) in &snapshots {
        let databases = match s.meta.get("databases") {
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(","),
            _ => "(all)".into(),
        };
        let coordinates = s
            .meta
            .get("coordinates")
            .map(|c| {
                let file = c.get("file").and_then(|v| v.as_str()).unwrap_or("");
                let pos = c.get("position").map(|v| v.to_string()).unwrap_or_default();
                let gtid = c.get("gtid").and_then(|v| v.as_str()).unwrap_or("");
                format!("{file}:{pos} {gtid}").trim().to_string()
            })
            .unwrap_or_default();
        println!(
            "{:<10} {:<20} {:<24} {:>14} {:>14}  {:<30} {}",
            &id[..8],
            s.time,
            databases,
            s.stats.logical_bytes,
            s.stats.new_bytes,
            coordinates,
            s.tags.join(",")
        );
    }
    print_windows(&snapshots, &archives);
    Ok(())
}

/// The contiguous spans of every source's binlog archive.
async fn archives(repo: &backup::Repository) -> Result<Vec<(String, Vec<Span>)>, BackupError> {
    let mut out = Vec::new();
    for source in RepositorySegments::sources(repo).await? {
        let segments = RepositorySegments::open_reader(repo.clone(), &source)?;
        let records = segments
            .records()
            .await
            .map_err(|e| match e.downcast::<BackupError>() {
                Ok(e) => *e,
                Err(e) => BackupError::Usage(e.to_string()),
            })?;
        out.push((source, window::spans(&records)));
    }
    Ok(out)
}

/// The binlog position a backup's snapshot records.
fn coordinates(meta: &serde_json::Value) -> Option<Position> {
    let c = meta.get("coordinates")?;
    Some(Position {
        file: c.get("file")?.as_str()?.to_string(),
        pos: c.get("position")?.as_u64()?,
    })
}

/// The window of the backup whose snapshot says `meta`: the first archive with a span that
/// holds its coordinates.
fn backup_window(
    meta: &serde_json::Value,
    archives: &[(String, Vec<Span>)],
) -> Option<(String, Window)> {
    let at = coordinates(meta)?;
    archives
        .iter()
        .find_map(|(source, spans)| window::window(spans, &at).map(|w| (source.clone(), w)))
}

fn utc(secs: u32) -> String {
    chrono::DateTime::from_timestamp(i64::from(secs), 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

fn describe_end(ends: &SpanEnd) -> String {
    match ends {
        SpanEnd::Latest => "the newest archived event".into(),
        SpanEnd::Gap { gap } => format!(
            "a GAP (binlog purged before it was archived; archiving resumed at {})",
            gap.resume_at
        ),
        SpanEnd::Discontinuity { next } => {
            format!("a MISSING segment (the next one starts at {next})")
        }
    }
}

fn print_windows(snapshots: &[(String, backup::Snapshot)], archives: &[(String, Vec<Span>)]) {
    if archives.is_empty() {
        println!("\nno binlog archive: no backup can be rolled forward (rbackup binlog)");
        return;
    }
    println!("\nrestorable windows (point-in-time recovery):");
    for (id, s) in snapshots {
        match (coordinates(&s.meta), backup_window(&s.meta, archives)) {
            (_, Some((source, w))) => println!(
                "  {:<10} {} -> {} ({}), source {source}, ends at {}",
                &id[..8],
                w.from,
                w.to,
                utc(w.to_time),
                describe_end(&w.ends)
            ),
            (Some(at), None) => println!(
                "  {:<10} {at}: not in any archived span (archived later, not yet, or lost in a gap)",
                &id[..8]
            ),
            (None, None) => println!("  {:<10} no binlog coordinates", &id[..8]),
        }
    }
    for (source, spans) in archives {
        println!("binlog archive of source {source}:");
        for span in spans {
            println!(
                "  {} .. {} ({} .. {}), {} segments, ends at {}",
                span.start,
                span.end,
                utc(span.first_time),
                utc(span.last_time),
                span.segments,
                describe_end(&span.ends)
            );
        }
    }
}
