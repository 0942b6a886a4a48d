//! `rbackup list`: the backups of a repository, as a table or JSON, and the restorable
//! window of each: from its binlog coordinates to the last archived event of its own
//! source's binlog archive (`BackupPoint::belongs_to`: a backup is never shown with
//! another server's archive), ended by a gap if one follows (`rdump::binlog::window`);
//! per source: the archive's contiguous spans and the windows of its backups. Each backup
//! also shows its last restore drill (the newest valid drill record,
//! `rdump::backup::drill`).
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
    let repo = backup::open(&args.repo.repo, &access, &StoreOptions::from_env()?).await?;
    let archives = archives(&repo).await?;
    let reader = RepositoryReader::open(repo).await?;
    let snapshots = reader.snapshots().await?;
    let (drills, bad) = backup::drill::newest(reader.repository()).await?;
    for e in bad {
        eprintln!("rbackup: warning: a drill record is ignored: {e}");
    }
    let last_drill = |id: &str| {
        drills.get(id).map(|d| {
            serde_json::json!({
                "time": d.time, "verdict": d.verdict, "seconds": d.seconds,
                "target": d.target, "message": d.message,
                "tables_compared": d.tables_compared, "rows_compared": d.rows_compared,
            })
        })
    };
    if args.json {
        let list: Vec<serde_json::Value> = snapshots
            .iter()
            .map(|(id, s)| {
                let window = backup_window(id, s, &archives).map(|(source, w)| {
                    serde_json::json!({
                        "source": source, "from": w.from, "to": w.to,
                        "to_time": utc(w.to_time), "ends": w.ends,
                    })
                });
                serde_json::json!({
                    "id": id, "time": s.time, "host": s.host, "tags": s.tags,
                    "meta": s.meta, "stats": s.stats, "window": window, "last_drill": last_drill(id),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list).expect("json"));
        return Ok(());
    }
    println!(
        "{:<10} {:<20} {:<24} {:>14} {:>14}  {:<30} {:<28} tags",
        "ID", "time", "databases", "logical bytes", "new bytes", "coordinates", "last drill"
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
        let drill = drills
            .get(id.as_str())
            .map(|d| format!("{} {}", d.verdict, d.time))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<10} {:<20} {:<24} {:>14} {:>14}  {:<30} {:<28} {}",
            &id[..8],
            s.time,
            databases,
            s.stats.logical_bytes,
            s.stats.new_bytes,
            coordinates,
            drill,
            s.tags.join(",")
        );
    }
    print_windows(&snapshots, &archives);
    Ok(())
}

/// A source's binlog archive: its name, contiguous spans and the server identities its
/// segments record.
struct Archive {
    name: String,
    spans: Vec<Span>,
    servers: Vec<String>,
}

/// The binlog archive of every source.
async fn archives(repo: &backup::Repository) -> Result<Vec<Archive>, BackupError> {
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
        let mut servers: Vec<String> = records
            .iter()
            .filter_map(|r| match r {
                rdump::binlog::Record::Segment(s) => s.server.clone(),
                rdump::binlog::Record::Gap(_) => None,
            })
            .collect();
        servers.sort();
        servers.dedup();
        out.push(Archive {
            name: source,
            spans: window::spans(&records),
            servers,
        });
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

/// The window of backup `id`: the first archive of its own source with a span that holds
/// its coordinates.
fn backup_window(
    id: &str,
    snapshot: &backup::Snapshot,
    archives: &[Archive],
) -> Option<(String, Window)> {
    let point = rdump::backup::segments::backup_point(id, snapshot)?;
    // A backup of part of a database starts no replay: no window.
    if point.not_replayable.is_some() {
        return None;
    }
    archives.iter().find_map(|a| {
        let servers: Vec<&str> = a.servers.iter().map(String::as_str).collect();
        if point.belongs_to(Some(&a.name), &servers) == Some(false) {
            return None;
        }
        window::window(&a.spans, &point.position).map(|w| (a.name.clone(), w))
    })
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

fn print_windows(snapshots: &[(String, backup::Snapshot)], archives: &[Archive]) {
    // Without a binlog archive, the table alone (as before archives existed).
    if archives.is_empty() {
        return;
    }
    let windows: Vec<Option<(String, Window)>> = snapshots
        .iter()
        .map(|(id, s)| backup_window(id, s, archives))
        .collect();
    println!("\nrestorable windows (point-in-time recovery), per source:");
    for a in archives {
        println!(
            "binlog archive of source {} (server {}):",
            a.name,
            if a.servers.is_empty() {
                "not recorded".to_string()
            } else {
                a.servers.join(", ")
            }
        );
        for span in &a.spans {
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
        for ((id, _), w) in snapshots.iter().zip(&windows) {
            if let Some((source, w)) = w
                && *source == a.name
            {
                println!(
                    "  backup {:<10} {} -> {} ({}), ends at {}",
                    &id[..8],
                    w.from,
                    w.to,
                    utc(w.to_time),
                    describe_end(&w.ends)
                );
            }
        }
    }
    let mut heading = false;
    for ((id, s), w) in snapshots.iter().zip(&windows) {
        if w.is_some() {
            continue;
        }
        if !heading {
            println!("backups without a restorable window:");
            heading = true;
        }
        let source = s.meta["binlog_source"].as_str().unwrap_or("not recorded");
        if let Some(why) =
            rdump::backup::segments::backup_point(id, s).and_then(|p| p.not_replayable)
        {
            println!("  {:<10} no point-in-time replay: {why}", &id[..8]);
            continue;
        }
        match coordinates(&s.meta) {
            Some(at) => println!(
                "  {:<10} {at} (source {source}): not in any archived span of its source \
                 (archived later, not yet, lost in a gap, or no archive of its source)",
                &id[..8]
            ),
            None => println!("  {:<10} no binlog coordinates", &id[..8]),
        }
    }
}
