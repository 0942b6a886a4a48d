//! What `rbackup check` observes in a repository: the newest backup's time, the binlog
//! archiver's last stored event and the breaks in its archive, the last restore drill that
//! passed.
//!
//! Breaks: with a reader key, every segment's header is read (`SegmentSource::records`)
//! and the archive split by `binlog::window::spans`, the one continuity rule restore
//! follows, so that a lost segment that ended its file (its ROTATE) or a whole missing
//! file is a break as much as a hole or a recorded gap; a break counts when the span it
//! ends has its last event at or after the oldest backup's time (before it, no backup's
//! window crosses it). A segment or gap object that is damaged or forged is a break too,
//! named (restore cannot read past it). Without a reader key only names are seen: holes inside a file,
//! file numbers skipped, gap objects stored after the oldest backup. Read as REPOSITORY.md lays them out (`snapshots/`, `binlog/<source>/...`,
//! `drills/<snapshot>/<id>`).
//!
//! Owns: gathering `trust::check::Observed`. Not for: the verdict (`trust::check`), writing
//! any of these objects (backup, the archiver, drills).
//!
//! With a reader key the times are the ones the objects hold (a snapshot's `time`, a
//! segment header's `last_event_time`, a drill record's `time`); with only a writer key or no key
//! (a monitoring host), they are the storage's modification times of the newest objects
//! (when they were stored), and drills cannot be judged (their verdict is encrypted):
//! `last_drill_success` is then `None` and `drill_readable` false.
//!
//! The archiver's time is the newer of its last stored event and its heartbeat
//! (`heartbeats/<source>`, `segments::Heartbeat`) when the heartbeat says it was caught up
//! exactly at the end of the newest segment: on an idle server no segment is stored, and
//! the heartbeat tells an archiver that is idle and caught up from one that stopped. A
//! heartbeat's MAC is checked with any key (a writer key holds the naming key); without a
//! key it is taken as the listing's times are. Its time is the earlier of the one it
//! records (the archiver's clock) and its storage modification time. Drill records are read through
//! `drill::all`: one whose MAC does not match (forged, or damaged) never counts as a
//! passed drill, and is reported (`Observed::ignored_drills`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::config::Repository;
use super::copy::{binlog_stem, check_binlog_id};
use super::drill;
use super::error::{BackupError, Result};
use super::keys::Keys;
use super::segments::{Heartbeat, RepositorySegments, file_number};
use super::snapshot::Snapshot;
use super::store::{Listed, Store};
use crate::binlog::segment::{Record, SegmentSource};
use crate::binlog::window::{self, SpanEnd};
use crate::trust::check::{Archiver, Observed};

/// What was observed, and whether drills could be read.
#[derive(Debug, Clone)]
pub struct Health {
    pub observed: Observed,
    pub drill_readable: bool,
    /// Per archiver source: (name, last event), for the metrics.
    pub sources: Vec<(String, Option<DateTime<Utc>>)>,
}

/// Reads the repository's state. `keys`: the repository's keys when it could be opened.
pub async fn observe(
    store: &Store,
    repo: Option<&Repository>,
    now: DateTime<Utc>,
) -> Result<Health> {
    let keys = repo.map(|r| &r.keys);
    let reader = keys.filter(|k| k.can_read());
    // A break before the oldest backup breaks no backup's window.
    let (oldest_backup, newest_backup) = backup_times(store, reader).await?;
    let readable = repo.filter(|r| r.keys.can_read());
    let (archiver, sources) = archiver(store, keys, readable, oldest_backup).await?;
    let (last_drill_success, ignored_drills) = match reader {
        Some(keys) => last_drill(store, keys).await?,
        None => (None, Vec::new()),
    };
    Ok(Health {
        observed: Observed {
            now,
            newest_backup,
            archiver,
            last_drill_success,
            ignored_drills,
        },
        drill_readable: reader.is_some(),
        sources,
    })
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The oldest and the newest backup's time: what the snapshots say with a reader key
/// (the oldest also no later than when it was stored), else when they were stored.
type Times = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

async fn backup_times(store: &Store, reader: Option<&Keys>) -> Result<Times> {
    let listed = store.list("snapshots").await?;
    let stored = listed.iter().map(|l| l.last_modified);
    let oldest_stored = stored.clone().min();
    let Some(keys) = reader else {
        return Ok((oldest_stored, stored.max()));
    };
    let mut oldest = oldest_stored;
    let mut newest = None;
    for l in &listed {
        let data = store.get(&l.name).await?;
        let snap = Snapshot::decode(keys, &l.name, &data)?;
        let t = parse_time(&snap.time).ok_or_else(|| BackupError::damaged(&l.name, "bad time"))?;
        newest = newest.max(Some(t));
        oldest = Some(oldest.map_or(t, |o| o.min(t)));
    }
    Ok((oldest, newest))
}

/// Where the archive's records break continuity (`binlog::window::spans`, the rule restore
/// follows) after the last event of a span that ends at or after `oldest` (UTC seconds):
/// each described, naming where the archive stops and where it starts again.
fn breaks(source: &str, records: &[Record], oldest: Option<i64>) -> Vec<String> {
    window::spans(records)
        .iter()
        .filter(|s| oldest.is_none_or(|t| i64::from(s.last_time) >= t))
        .filter_map(|s| match &s.ends {
            SpanEnd::Latest => None,
            SpanEnd::Gap { gap } => Some(format!(
                "archiver {source}: binlog from {} to {} missing (purged before it was \
                 archived: a gap)",
                s.end, gap.resume_at
            )),
            SpanEnd::Discontinuity { next } => Some(format!(
                "archiver {source}: binlog from {} to {next} missing (a segment or a whole \
                 file is not in the archive)",
                s.end
            )),
        })
        .collect()
}

/// With a reader key: every source's breaks (`breaks`), from the segments' headers.
async fn span_breaks(repo: &Repository, oldest: Option<DateTime<Utc>>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for source in RepositorySegments::sources(repo).await? {
        let segments = RepositorySegments::open_reader(repo.clone(), &source)?;
        let records = match segments.records().await {
            Ok(r) => r,
            Err(e) => match e.downcast::<BackupError>() {
                // A damaged or forged segment or gap: restore stops there, a break.
                Ok(e) if matches!(*e, BackupError::Damaged { .. }) => {
                    out.push(format!(
                        "archiver {source}: {e} (restore cannot read past it)"
                    ));
                    continue;
                }
                Ok(e) => return Err(*e),
                Err(e) => {
                    return Err(BackupError::Usage(format!("binlog archive {source}: {e}")));
                }
            },
        };
        out.extend(breaks(&source, &records, oldest.map(|t| t.timestamp())));
    }
    Ok(out)
}

/// A segment's name parsed: (source, file, start, end).
fn segment(name: &str) -> Option<(&str, &str, u64, u64)> {
    let stem = binlog_stem(name)?;
    let mut parts = stem.splitn(4, '/');
    let (_, source, file, range) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if file == "gaps" || range.contains('/') {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    Some((source, file, start.parse().ok()?, end.parse().ok()?))
}

/// The header line of a segment (REPOSITORY.md: a JSON line, then the events, the whole
/// compressed with zstd, then encrypted).
fn segment_last_time(keys: &Keys, name: &str, stored: &[u8]) -> Result<Option<DateTime<Utc>>> {
    check_binlog_id(name, stored)?;
    let plain = keys.decrypt(name, stored)?;
    let mut decoder = zstd::stream::read::Decoder::new(&plain[..])
        .map_err(|e| BackupError::damaged(name, format!("zstd: {e}")))?;
    // The header is the first line; read at most 64 KiB of it.
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.contains(&b'\n') && head.len() < 64 * 1024 {
        let n = std::io::Read::read(&mut decoder, &mut buf)
            .map_err(|e| BackupError::damaged(name, format!("zstd: {e}")))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let header: serde_json::Value = serde_json::from_slice(line)
        .map_err(|e| BackupError::damaged(name, format!("segment header: {e}")))?;
    // archive13's header: `last_event_time`, UTC seconds; REPOSITORY.md's `last_time`.
    let t = header
        .get("last_event_time")
        .or_else(|| header.get("last_time"))
        .and_then(|v| match v {
            serde_json::Value::String(s) => parse_time(s),
            serde_json::Value::Number(n) => n.as_i64().and_then(|s| DateTime::from_timestamp(s, 0)),
            _ => None,
        });
    Ok(t)
}

/// One binlog file's segment objects: (start, end, the object).
type FileSegments<'a> = Vec<(u64, u64, &'a Listed)>;

async fn archiver(
    store: &Store,
    keys: Option<&Keys>,
    readable: Option<&Repository>,
    oldest_backup: Option<DateTime<Utc>>,
) -> Result<(Option<Archiver>, Vec<(String, Option<DateTime<Utc>>)>)> {
    let reader = readable.map(|r| &r.keys);
    let listed = store.list("binlog").await?;
    if listed.is_empty() {
        return Ok((None, Vec::new()));
    }
    // With a reader key, the breaks restore would stop at; without one, what the names
    // show (holes in a file, files missing between numbered ones, recorded gaps).
    let mut gaps = match readable {
        Some(repo) => span_breaks(repo, oldest_backup).await?,
        None => Vec::new(),
    };
    let by_name = readable.is_none();
    // source -> file -> segments (start, end, object)
    let mut by_source: BTreeMap<&str, BTreeMap<&str, FileSegments>> = BTreeMap::new();
    for l in &listed {
        if let Some((source, file, start, end)) = segment(&l.name) {
            by_source
                .entry(source)
                .or_default()
                .entry(file)
                .or_default()
                .push((start, end, l));
        } else if let Some(stem) = binlog_stem(&l.name)
            && let Some(rest) = stem.strip_prefix("binlog/")
            && let Some((source, gap)) = rest.split_once("/gaps/")
            && by_name
            && oldest_backup.is_none_or(|t| l.last_modified >= t)
        {
            gaps.push(format!("archiver {source}: gap recorded at {gap}"));
        }
    }
    let mut sources = Vec::new();
    let mut last_event: Option<DateTime<Utc>> = None;
    for (source, files) in &by_source {
        let mut newest: Option<&Listed> = None;
        // Files in the server's order (by number); a number skipped is a file missing.
        let mut ordered: Vec<(&&str, &FileSegments)> = files.iter().collect();
        ordered.sort_by_key(|(f, _)| (file_number(f), **f));
        for pair in ordered.windows(2) {
            let ((prev, _), (next, segs)) = (pair[0], pair[1]);
            let recent = segs
                .iter()
                .any(|s| oldest_backup.is_none_or(|t| s.2.last_modified >= t));
            if by_name && file_number(next) > file_number(prev).saturating_add(1) && recent {
                gaps.push(format!(
                    "archiver {source}: the files between {prev} and {next} missing"
                ));
            }
        }
        for (file, segments) in ordered {
            let mut segments = segments.clone();
            segments.sort_by_key(|s| (s.0, s.1));
            for pair in segments.windows(2) {
                let (prev, next) = (pair[0], pair[1]);
                if by_name
                    && next.0 > prev.1
                    && oldest_backup.is_none_or(|t| next.2.last_modified >= t)
                {
                    gaps.push(format!(
                        "archiver {source}: {file} bytes {} to {} missing",
                        prev.1, next.0
                    ));
                }
            }
            // The newest segment: the last of the last file (files sort by name, as the
            // server numbers them).
            newest = segments.last().map(|s| s.2).or(newest);
        }
        let t = match (newest, reader) {
            (Some(l), Some(keys)) => {
                let stored = store.get(&l.name).await?;
                segment_last_time(keys, &l.name, &stored)?.or(Some(l.last_modified))
            }
            (Some(l), None) => Some(l.last_modified),
            (None, _) => None,
        };
        // The archiver's heartbeat, when it says "caught up" at the end of the newest
        // segment: an idle server's archiver is as recent as its heartbeat.
        let end = newest
            .and_then(|l| segment(&l.name))
            .map(|(_, f, _, e)| (f, e));
        let heartbeat = match end {
            Some(_) => heartbeat(store, keys, source).await?,
            None => None,
        };
        let t = match (heartbeat, end) {
            (Some((h, at)), Some((file, pos))) if h.file == file && h.pos == pos => t.max(at),
            _ => t,
        };
        sources.push((source.to_string(), t));
        last_event = last_event.max(t);
    }
    Ok((Some(Archiver { last_event, gaps }), sources))
}

/// `source`'s heartbeat (`segments::Heartbeat`), when there is a valid one, with the time
/// it is taken to say (`heartbeat_time`).
async fn heartbeat(
    store: &Store,
    keys: Option<&Keys>,
    source: &str,
) -> Result<Option<(Heartbeat, Option<DateTime<Utc>>)>> {
    let name = Heartbeat::object(source);
    // Stat first: an overwrite in between leaves the older storage time, the safe side.
    let stored = store.head(&name).await?.map(|l| l.last_modified);
    Ok(store
        .get_opt(&name)
        .await?
        .and_then(|b| Heartbeat::decode(keys, source, &b))
        .map(|h| {
            let at = heartbeat_time(h.at(), stored);
            (h, at)
        }))
}

/// A heartbeat's time: the earlier of the time it records (the archiver host's clock,
/// and unauthenticated when the check has no key) and when the storage says it was
/// written: a heartbeat dated in the future, by a skewed clock or by whoever could write
/// it, cannot make a stopped archiver look current.
fn heartbeat_time(
    recorded: Option<DateTime<Utc>>,
    stored: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    match (recorded, stored) {
        (Some(r), Some(s)) => Some(r.min(s)),
        (r, _) => r,
    }
}

/// When the last drill that passed ended, and the drill records ignored (damaged, forged,
/// filed under another backup: `drill::all`), each named with why. Only records whose
/// MAC checks count: a record anyone could have put must not satisfy `--max-drill-age`.
async fn last_drill(store: &Store, keys: &Keys) -> Result<(Option<DateTime<Utc>>, Vec<String>)> {
    let (records, bad) = drill::all(store, keys).await?;
    let last = records
        .iter()
        .filter(|r| r.passed())
        .filter_map(|r| r.finished())
        .max();
    Ok((last, bad.iter().map(ToString::to_string).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_parse() {
        let id = "cd".repeat(32);
        let name =
            format!("binlog/u1/mysql-bin.000003/00000000000000000004-00000000000000009000.{id}");
        assert_eq!(segment(&name), Some(("u1", "mysql-bin.000003", 4, 9000)));
        assert_eq!(
            segment(&format!("binlog/u1/gaps/mysql-bin.000003-4.{id}")),
            None
        );
    }

    fn seg(file: &str, start: u64, end: u64, time: u32, rotate_to: Option<&str>) -> Record {
        Record::Segment(crate::binlog::segment::Segment {
            file: file.into(),
            start,
            end,
            events: 1,
            first_event_time: time,
            last_event_time: time,
            gtids: Vec::new(),
            ends_in_transaction: false,
            rotate_to: rotate_to.map(str::to_string),
            ends_with_stop: false,
            format_description: vec![0; 3],
            crc32: 0,
            server: None,
        })
    }

    #[test]
    fn breaks_follow_the_restore_rule_and_only_after_the_oldest_backup() {
        let whole = [
            seg("b.000001", 7, 500, 100, None),
            seg("b.000001", 500, 900, 200, Some("b.000002")),
            seg("b.000002", 7, 300, 300, None),
        ];
        assert!(breaks("s", &whole, Some(0)).is_empty());
        // The tail segment carrying the ROTATE lost: b.000001 ends at 500.
        let lost_tail = [whole[0].clone(), whole[2].clone()];
        let b = breaks("s", &lost_tail, Some(0));
        assert_eq!(b.len(), 1, "{b:?}");
        assert!(b[0].contains("b.000001:500 to b.000002:7"), "{b:?}");
        // Before the oldest backup (its last event older): no backup's window.
        assert!(breaks("s", &lost_tail, Some(150)).is_empty());
        // A whole file missing: b.000002 rotated to b.000003, which is not there.
        let mut missing_file = whole.to_vec();
        missing_file[2] = seg("b.000002", 7, 300, 300, Some("b.000003"));
        missing_file.push(seg("b.000004", 7, 90, 400, None));
        let b = breaks("s", &missing_file, None);
        assert_eq!(b.len(), 1, "{b:?}");
        assert!(b[0].contains("b.000002:300 to b.000004:7"), "{b:?}");
    }

    #[test]
    fn a_heartbeat_is_as_old_as_the_earlier_of_its_time_and_its_storage_time() {
        let t = |s: i64| DateTime::from_timestamp(s, 0);
        // Dated in the future (a skewed archiver clock, or a forged heartbeat): stored time.
        assert_eq!(heartbeat_time(t(5000), t(1000)), t(1000));
        assert_eq!(heartbeat_time(t(1000), t(1002)), t(1000));
        assert_eq!(heartbeat_time(t(1000), None), t(1000));
        assert_eq!(heartbeat_time(None, t(1000)), None);
    }
}
