//! `rbackup list`: the backups of a repository, as a table or JSON, each with its last
//! restore drill (the newest valid drill record, `rdump::backup::drill`).
//!
//! Not for: reading snapshots (`rdump::backup::reader`).

use clap::Args;
use rdump::backup::error::BackupError;
use rdump::backup::store::StoreOptions;
use rdump::backup::{self, RepositoryReader};

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
                serde_json::json!({
                    "id": id, "time": s.time, "host": s.host, "tags": s.tags,
                    "meta": s.meta, "stats": s.stats, "last_drill": last_drill(id),
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
    Ok(())
}
