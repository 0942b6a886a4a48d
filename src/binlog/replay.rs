//! Point-in-time restore, planning: which backup to load and exactly which archived events
//! to replay after it, for a target (a time, a GTID, a binlog position, or the end of the
//! archive), with transactions left out by `--skip-gtid`.
//!
//! ```text
//! backups (BackupPoint: id, binlog coordinates, GTID position, source) + Target + skips
//!   ─► candidates: backups of this archive's source (below), whose coordinates the
//!      archive holds and are at or before the stop point, newest coordinates first,
//!      whole-server backups before partial ones (below), none that holds part of a
//!      database
//!   ─► walk (SegmentSource::records in order, one segment's bytes at a time): every event
//!      re-checked (stream::Framer: CRC32, positions continue), segments checked to follow
//!      each other (same file: end = next start; next file: after a ROTATE or STOP, from
//!      its first event) and to come from one server, a gap or a break before the stop
//!      point refuses, naming it
//!   ─► transactions followed (GTID event ... XID / COMMIT / the one DDL statement): the
//!      stop point is always between two transactions, never inside one
//!   ─► ReplayPlan: the byte ranges of segments to replay (`Piece`), first and last
//!      transaction, the stop point and why, the transactions skipped
//! ```
//!
//! The stop rules (inclusive, whole transactions only):
//! - `Time(t)`: every transaction before the first one whose first event's timestamp
//!   (UTC seconds) is after `t`. Event timestamps have whole seconds: a transaction
//!   stamped 12:00:00 is "at or before" 12:00:00.5.
//! - `Gtid(g)`: every transaction up to and including `g`.
//! - `Position(file:pos)`: every transaction that ends at or before `pos` in `file`.
//! - `Latest`: every complete transaction archived (an unfinished last one is left out).
//! - `EndOfWindow` (a restore drill's): as `Latest`, but a gap or a missing segment after
//!   the backup ends the replay there instead of refusing it (the stop says which), as
//!   does a transaction a partial backup cannot replay (`filter`: mixed).
//!
//! A partial backup (`BackupPoint::databases`) replays only its databases' events: the
//! walk hands each transaction's events to `filter::Units` and leaves out, or cuts out,
//! the other databases' statements as byte ranges, as `--skip-gtid` does. A prepared XA
//! transaction left out leaves out its `XA COMMIT`/`XA ROLLBACK` too, a transaction of
//! its own later in the binlog (replayed, the target knows no such XID).
//!
//! XA transactions: the prepared half (`XA START` .. `XA PREPARE`) and the `XA COMMIT`/
//! `XA ROLLBACK` are two transactions of the binlog, with a GTID each. A skipped
//! (`--skip-gtid`) prepared half leaves out its end too, and the plan says so (`xa`). One
//! prepared before the backup's coordinates and ended after them is in no backup (a
//! consistent snapshot does not see prepared rows): its prepared half is looked for in
//! the archive before the coordinates (`prepared_before`: backwards, one segment at a
//! time, up to a gap or another server's segment) and replayed first; not archived, its
//! `XA ROLLBACK` is left out (nothing to undo) and its `XA COMMIT` refuses the plan,
//! naming the transaction and the XID (a drill's window ends before it).
//!
//! Which backup: the one with the newest binlog coordinates among those that serve the
//! target, i.e. whose coordinates are at or before its stop point. When the backup was
//! committed (`BackupPoint::time`, the rbackup host's clock) plays no part, since the
//! stop point is found in the archive by the server's own stamps: for `Time(t)` a backup
//! serves when the archived event that ends at its coordinates is stamped at or before
//! `t` (event stamps follow binlog order: then nothing before the coordinates is after
//! `t`); only when the archive holds no event right before them (archiving began there,
//! or a gap ends there) is the commit time used instead. For `Gtid(g)` a backup serves
//! when its GTID position does not hold `g`; for `Position(p)` when its coordinates are
//! at or before `p`; for `Latest` always.
//!
//! Whole-server backups first: when one of them serves the target, only they are
//! candidates (a newer `--databases shop` backup never wins over last night's
//! whole-server one, which would restore everything else too). A partial backup
//! (`BackupPoint::databases`) is chosen only when no whole-server backup serves, and the
//! plan then says so (`ReplayPlan::partial`: which databases only are restored, why no
//! whole-server backup serves, the partial backups of other databases; naming a
//! backup's ID chooses otherwise). A backup that holds part of a database
//! (`BackupPoint::not_replayable`: some tables, `--where`, `--no-data`, ...) is never a
//! candidate: replaying every event of its databases would meet tables or rows it does
//! not hold; named alone it is refused, naming why, and a newer one left out is noted.
//!
//! Which source: a backup serves only the archive of its own source server. It records
//! (`BackupPoint::source`, `server`) the archive name it was taken for and its server's
//! identity; an archive has a name (`SegmentSource::name`) and its segments record the
//! identity of the server they came from (`Segment::server`). A backup belongs to the
//! archive when the names are equal or the archive's segments record its server's
//! identity; with neither, it is not a candidate, and when no backup belongs the plan is
//! refused naming the sources the backups have. A backup that records neither, or an
//! archive whose segments record no server (made before rbackup recorded them; a
//! `local` directory archive) and whose name is not the backup's, cannot be checked: the
//! backup is a candidate, as before, and the plan says so. Walking, the segment holding the backup's coordinates must be its server's, and
//! the transactions around the coordinates must agree with the backup's GTID position
//! (the one ending there held by it, the one beginning there not), else the next older
//! backup is tried (this catches a server re-initialized under the same identity and
//! binlog names, whose GTIDs start again); a segment of another server than the one
//! before it ends the archive there (refused, named).
//!
//! Not for: applying the plan (`apply`), reading snapshots (the caller makes
//! `BackupPoint`s), where the archive is stored (any `SegmentSource`).

use std::collections::{HashMap, HashSet};
use std::fmt;

use chrono::{NaiveDateTime, TimeZone};

use crate::binlog::Position;
use crate::binlog::event::{self, FIRST_EVENT_POS, HEADER_LEN, kind};
use crate::binlog::filter::{self, DatabaseFilter, Units, Verdict};
use crate::binlog::segment::{Record, Segment, SegmentSource};
use crate::binlog::stream::{Frame, Framer};
use crate::binlog::window;
use crate::sql::dialect::BinlogStart;

/// A backup as the planner sees it: where in the binlog its data stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupPoint {
    pub id: String,
    /// When the backup was committed (UTC seconds, the rbackup host's clock): it was
    /// taken before this. Orders backups with equal coordinates; decides nothing else,
    /// but for `Time` when the archive cannot (see the module doc).
    pub time: i64,
    /// The binlog coordinates of the backup's data (the dump's `SHOW MASTER STATUS`).
    pub position: Position,
    /// The GTID position of the backup's data (MariaDB `gtid_binlog_pos`, MySQL
    /// `gtid_executed`).
    pub gtid: Option<String>,
    /// The name of the binlog archive the backup was taken for (`rbackup backup
    /// --source`, by default its server's identity); `None` in backups made before it
    /// was recorded.
    pub source: Option<String>,
    /// Its server's identity (`binlog::source::identity_sql`), as segments record it.
    pub server: Option<String>,
    /// The databases a partial backup holds (`None`: the whole server): only their
    /// events are replayed (`filter`).
    pub databases: Option<DatabaseFilter>,
    /// Why a replay cannot start from this backup (it holds part of a database, or rows
    /// as of another time: snapshot `meta.binlog_replayable` false), `None`: it can.
    pub not_replayable: Option<String>,
}

impl BackupPoint {
    /// Whether the backup belongs to the archive named `name` whose segments record the
    /// server identities `servers` (see the module doc); `None`: it records no source.
    pub fn belongs_to(&self, name: Option<&str>, servers: &[&str]) -> Option<bool> {
        if self.source.is_none() && self.server.is_none() {
            return None;
        }
        let by_name = name.is_some() && self.source.as_deref() == name;
        let by_server = self.server.as_deref().is_some_and(|s| servers.contains(&s));
        if by_name || by_server {
            return Some(true);
        }
        // An archive whose segments record no server (archived by an older rbackup)
        // cannot be checked but by name.
        if servers.is_empty() {
            return None;
        }
        Some(false)
    }
}

/// Where to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// UTC microseconds since the epoch.
    Time(i64),
    /// A GTID, normalised (`normalize_gtid`).
    Gtid(String),
    Position(Position),
    Latest,
    /// The end of the backup's window: every complete transaction up to the end of the
    /// archive or, where a gap or a missing segment comes first, up to it (what a restore
    /// drill replays: a gap is then the window's end, not a refusal).
    EndOfWindow,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Time(t) => write!(f, "time {}", format_micros(*t)),
            Target::Gtid(g) => write!(f, "GTID {g}"),
            Target::Position(p) => write!(f, "position {p}"),
            Target::Latest => write!(f, "the end of the archive"),
            Target::EndOfWindow => write!(f, "the end of the backup's window"),
        }
    }
}

/// One transaction of the archive (or a lone event outside any transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    pub gtid: Option<String>,
    /// Where its first event starts.
    pub start: Position,
    /// Where its last event ends (in `start.file`).
    pub end: u64,
    /// Its first event's timestamp (UTC seconds).
    pub time: u32,
}

impl fmt::Display for Txn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.gtid {
            Some(g) => write!(f, "transaction {g}")?,
            None => write!(f, "transaction")?,
        }
        write!(
            f,
            " at {}..{} ({} UTC)",
            self.start,
            self.end,
            format_micros(i64::from(self.time) * 1_000_000)
        )
    }
}

/// A byte range of one archived segment to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub segment: Segment,
    pub from: u64,
    pub to: u64,
    /// The segment's place in `SegmentSource::records` (for ordering).
    record: usize,
}

/// Where the replay stops, and why there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    /// The end of the last replayed event (the backup's coordinates if none is).
    pub at: Position,
    pub why: String,
    /// The first transaction not replayed, when the archive has one.
    pub next: Option<Txn>,
}

/// What a point-in-time restore does.
#[derive(Debug, Clone)]
pub struct ReplayPlan {
    pub backup: BackupPoint,
    pub target: Target,
    /// The bytes to replay, in order (consecutive pieces of one file follow each other
    /// except around a skipped transaction).
    pub pieces: Vec<Piece>,
    pub first: Option<Txn>,
    pub last: Option<Txn>,
    pub transactions: u64,
    pub events: u64,
    pub skipped: Vec<Txn>,
    /// What the replay does of XA transactions whose halves are apart: an `XA COMMIT`
    /// left out with its skipped prepared half, a prepared half from before the backup's
    /// coordinates replayed first (one line each, as `describe` prints them).
    pub xa: Vec<String>,
    /// MySQL: the GTIDs left out and replayed first (`ReplayGtids`).
    pub gtids: ReplayGtids,
    /// A partial backup's replay: transactions left out whole as belonging to other
    /// databases, and statements cut out of transactions replayed (in how many).
    pub other_databases: OtherDatabases,
    pub stop: Stop,
    /// What a person should know about the choice (a backup that records no source).
    pub notes: Vec<String>,
    /// A partial backup was chosen: which databases only are restored and why no
    /// whole-server backup was (printed prominently, also on stderr by `restore`).
    pub partial: Option<String>,
}

/// MySQL GTIDs (`uuid:n`) as intervals per source UUID, bounded by how many runs they
/// make, not how many GTIDs. MariaDB GTIDs are not collected: its GTID position is the
/// last sequence number of each domain, a transaction left out leaves no hole in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MysqlGtids(std::collections::BTreeMap<String, Vec<(u64, u64)>>);

impl MysqlGtids {
    /// Adds `uuid:n` (anything else, a MariaDB GTID, is not collected).
    pub fn insert(&mut self, gtid: &str) {
        if let Some((uuid, n)) = gtid.rsplit_once(':')
            && !uuid.contains(':')
            && let Ok(n) = n.trim().parse::<u64>()
        {
            self.add(uuid.trim(), n, n);
        }
    }

    fn add(&mut self, uuid: &str, a: u64, b: u64) {
        let v = self.0.entry(uuid.to_ascii_lowercase()).or_default();
        match v.last_mut() {
            // In binlog order: the common case, appended.
            Some(last) if last.1.saturating_add(1) == a => last.1 = b,
            Some(last) if last.1 < a => v.push((a, b)),
            None => v.push((a, b)),
            Some(_) => {
                v.push((a, b));
                v.sort_unstable();
                let mut merged: Vec<(u64, u64)> = Vec::with_capacity(v.len());
                for &(x, y) in v.iter() {
                    match merged.last_mut() {
                        Some(m) if x <= m.1.saturating_add(1) => m.1 = m.1.max(y),
                        _ => merged.push((x, y)),
                    }
                }
                *v = merged;
            }
        }
    }

    /// A MySQL GTID set (`uuid:1-5:7,uuid2:3`); `None` for one that cannot be read (tagged
    /// GTIDs).
    pub fn parse(set: &str) -> Option<MysqlGtids> {
        let mut out = MysqlGtids::default();
        for part in set.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut it = part.split(':');
            let uuid = it.next()?.trim();
            for range in it {
                let (a, b) = match range.split_once('-') {
                    Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
                    None => {
                        let n = range.trim().parse().ok()?;
                        (n, n)
                    }
                };
                if a > b {
                    return None;
                }
                out.add(uuid, a, b);
            }
        }
        Some(out)
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(Vec::is_empty)
    }

    pub fn union(&mut self, other: &MysqlGtids) {
        for (uuid, v) in &other.0 {
            for &(a, b) in v {
                self.add(uuid, a, b);
            }
        }
    }

    /// Removes every GTID of `other`.
    pub fn subtract(&mut self, other: &MysqlGtids) {
        for (uuid, cut) in &other.0 {
            let Some(v) = self.0.get_mut(uuid) else {
                continue;
            };
            for &(ca, cb) in cut {
                let mut kept = Vec::with_capacity(v.len() + 1);
                for &(a, b) in v.iter() {
                    if b < ca || a > cb {
                        kept.push((a, b));
                        continue;
                    }
                    if a < ca {
                        kept.push((a, ca - 1));
                    }
                    if b > cb {
                        kept.push((cb + 1, b));
                    }
                }
                *v = kept;
            }
        }
        self.0.retain(|_, v| !v.is_empty());
    }
}

impl fmt::Display for MysqlGtids {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (uuid, v) in self.0.iter().filter(|(_, v)| !v.is_empty()) {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            f.write_str(uuid)?;
            for &(a, b) in v {
                if a == b {
                    write!(f, ":{a}")?;
                } else {
                    write!(f, ":{a}-{b}")?;
                }
            }
        }
        Ok(())
    }
}

/// A MySQL replay's GTIDs that are not simply the backup's set plus the transactions
/// replayed (`apply::before_replay_sql` makes the target's executed set right with them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayGtids {
    /// Transactions left out (`--skip-gtid`, other databases', an XA end left out with
    /// its prepared half): without them in the target's executed set, a replica of the
    /// restored server (or it, made a replica of the source) would fetch and apply them.
    pub left_out: MysqlGtids,
    /// Prepared XA halves from before the backup's coordinates replayed first: the
    /// backup's set holds them, so MySQL would skip them as executed.
    pub replayed_first: MysqlGtids,
}

/// What a partial backup's replay leaves out (see `filter`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtherDatabases {
    pub transactions: u64,
    pub statements: u64,
    pub statements_in: u64,
}

impl ReplayPlan {
    pub fn bytes(&self) -> u64 {
        self.pieces.iter().map(|p| p.to - p.from).sum()
    }

    /// The plan as lines for a person (`--dry-run`, and before a restore).
    pub fn describe(&self) -> Vec<String> {
        let mut out = vec![format!(
            "backup {} (binlog {}, GTID {})",
            self.backup.id,
            self.backup.position,
            self.backup.gtid.as_deref().unwrap_or("-")
        )];
        // Per file: its byte ranges (more than one around a skipped transaction) and
        // how many segments they come from.
        // (file, byte ranges, segments, start of the last segment counted)
        type File = (String, Vec<(u64, u64)>, usize, u64);
        let mut files: Vec<File> = Vec::new();
        for p in &self.pieces {
            match files.last_mut() {
                Some(f) if f.0 == p.segment.file => {
                    match f.1.last_mut() {
                        Some(r) if r.1 == p.from => r.1 = p.to,
                        _ => f.1.push((p.from, p.to)),
                    }
                    if f.3 != p.segment.start {
                        f.2 += 1;
                        f.3 = p.segment.start;
                    }
                }
                _ => files.push((
                    p.segment.file.clone(),
                    vec![(p.from, p.to)],
                    1,
                    p.segment.start,
                )),
            }
        }
        for (file, ranges, n, _) in files {
            let ranges: Vec<String> = ranges.iter().map(|(a, b)| format!("{a}..{b}")).collect();
            out.push(format!(
                "segments: {file} {} ({n} segment{})",
                ranges.join(", "),
                if n == 1 { "" } else { "s" }
            ));
        }
        out.push(format!(
            "replay: {} transactions, {} events, {} bytes",
            self.transactions,
            self.events,
            self.bytes()
        ));
        match (&self.first, &self.last) {
            (Some(f), Some(l)) => {
                out.push(format!("first replayed: {f}"));
                out.push(format!("last replayed: {l}"));
            }
            _ => out.push("nothing to replay: the backup is the target state".into()),
        }
        for s in &self.skipped {
            out.push(format!("skipped: {s}"));
        }
        out.extend(self.xa.iter().cloned());
        if let Some(p) = &self.partial {
            out.push(format!("PARTIAL RESTORE: {p}"));
        }
        if let Some(f) = &self.backup.databases {
            let o = &self.other_databases;
            out.push(format!(
                "databases: {} (a partial backup: events on other databases are not \
                 replayed)",
                f.describe()
            ));
            out.push(format!(
                "left out: {} transactions on other databases only; {} statements on other \
                 databases cut out of {} transactions replayed",
                o.transactions, o.statements, o.statements_in
            ));
        }
        out.push(format!("stop point: {} ({})", self.stop.at, self.stop.why));
        if let Some(n) = &self.stop.next {
            out.push(format!("first not replayed: {n}"));
        }
        for n in &self.notes {
            out.push(format!("note: {n}"));
        }
        out
    }
}

/// Why no plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The archive cannot get there: no backup before the target, a gap, a target not
    /// archived. Nothing was touched.
    #[error("{0}")]
    Refused(String),
    /// The archive's store failed or holds damaged data.
    #[error("binlog archive: {0}")]
    Archive(String),
    /// The request makes no sense (a GTID that is not one, a bad time).
    #[error("{0}")]
    Usage(String),
}

/// Reads `--to-time`'s 'YYYY-MM-DD HH:MM:SS[.ffffff]' in `zone` (`None` or "SYSTEM": the
/// system's; "UTC"; "+HH:MM"; or an IANA name such as "Europe/Berlin") as UTC
/// microseconds. A time that a clock change skips or repeats in that zone is refused.
pub fn parse_time(text: &str, zone: Option<&str>) -> Result<i64, PlanError> {
    let naive =
        NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S%.f").map_err(|e| {
            PlanError::Usage(format!(
                "--to-time {text:?}: {e} (expected 'YYYY-MM-DD HH:MM:SS[.ffffff]')"
            ))
        })?;
    fn one<T: TimeZone>(
        r: chrono::LocalResult<chrono::DateTime<T>>,
        text: &str,
        zone: &str,
    ) -> Result<i64, PlanError> {
        match r {
            chrono::LocalResult::Single(t) => Ok(t.timestamp_micros()),
            chrono::LocalResult::Ambiguous(a, b) => Err(PlanError::Usage(format!(
                "--to-time {text:?} happens twice in {zone} ({} and {} UTC): give it in UTC \
                 (--time-zone UTC)",
                format_micros(a.timestamp_micros()),
                format_micros(b.timestamp_micros())
            ))),
            chrono::LocalResult::None => Err(PlanError::Usage(format!(
                "--to-time {text:?} does not exist in {zone} (a clock change skips it)"
            ))),
        }
    }
    match zone.map(str::trim) {
        None | Some("SYSTEM") | Some("system") => one(
            chrono::Local.from_local_datetime(&naive),
            text,
            "the system's time zone",
        ),
        Some("UTC") | Some("utc") | Some("Z") => Ok(naive.and_utc().timestamp_micros()),
        Some(z) if z.starts_with('+') || z.starts_with('-') => {
            let bad = || PlanError::Usage(format!("--time-zone {z:?}: expected +HH:MM"));
            let (h, m) = z[1..].split_once(':').ok_or_else(bad)?;
            let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
            let secs = (h * 3600 + m * 60) * if z.starts_with('-') { -1 } else { 1 };
            let off = chrono::FixedOffset::east_opt(secs).ok_or_else(bad)?;
            one(off.from_local_datetime(&naive), text, z)
        }
        Some(z) => {
            let tz: chrono_tz::Tz = z.parse().map_err(|_| {
                PlanError::Usage(format!(
                    "--time-zone {z:?}: not a time zone (UTC, SYSTEM, +HH:MM or a name such \
                     as Europe/Berlin)"
                ))
            })?;
            one(tz.from_local_datetime(&naive), text, z)
        }
    }
}

/// UTC microseconds as 'YYYY-MM-DD HH:MM:SS[.ffffff]'.
pub fn format_micros(t: i64) -> String {
    match chrono::DateTime::from_timestamp_micros(t) {
        Some(d) if t % 1_000_000 == 0 => d.format("%Y-%m-%d %H:%M:%S").to_string(),
        Some(d) => d.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        None => t.to_string(),
    }
}

/// A GTID as the user typed it, in the form the planner compares: MariaDB
/// "domain-server-sequence" (numbers without leading zeros), MySQL "uuid:number" (lower
/// case).
pub fn normalize_gtid(text: &str) -> Result<String, PlanError> {
    let t = text.trim();
    let bad = || {
        PlanError::Usage(format!(
            "{text:?} is not a GTID (MariaDB: domain-server-sequence such as 0-1-42; MySQL: \
             uuid:number)"
        ))
    };
    if let Some((uuid, n)) = t.split_once(':') {
        let hex: String = uuid.chars().filter(|c| *c != '-').collect();
        if uuid.len() != 36 || hex.len() != 32 || hex::decode(&hex).is_err() {
            return Err(bad());
        }
        let n: u64 = n.parse().map_err(|_| bad())?;
        return Ok(format!("{}:{n}", uuid.to_ascii_lowercase()));
    }
    let parts: Vec<&str> = t.split('-').collect();
    if parts.len() != 3 {
        return Err(bad());
    }
    let d: u32 = parts[0].parse().map_err(|_| bad())?;
    let s: u32 = parts[1].parse().map_err(|_| bad())?;
    let n: u64 = parts[2].parse().map_err(|_| bad())?;
    Ok(format!("{d}-{s}-{n}"))
}

/// Whether a backup's GTID position already holds `gtid` (`None`: cannot tell). MariaDB:
/// the position's sequence number for the GTID's domain is at least the GTID's. MySQL: the
/// executed set holds it.
pub fn gtid_set_contains(set: &str, gtid: &str) -> Option<bool> {
    if let Some((uuid, n)) = gtid.split_once(':') {
        let n: u64 = n.parse().ok()?;
        let set = set.replace(['\n', ' '], "");
        for part in set.split(',').filter(|p| !p.is_empty()) {
            let mut fields = part.split(':');
            if !fields.next()?.eq_ignore_ascii_case(uuid) {
                continue;
            }
            for range in fields {
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
                if a <= n && n <= b {
                    return Some(true);
                }
            }
        }
        return Some(false);
    }
    let parts: Vec<&str> = gtid.split('-').collect();
    let (domain, seq): (u32, u64) = (parts.first()?.parse().ok()?, parts.get(2)?.parse().ok()?);
    for part in set.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let p: Vec<&str> = part.split('-').collect();
        if p.len() == 3 && p[0].parse::<u32>().ok()? == domain {
            return Some(p[2].parse::<u64>().ok()? >= seq);
        }
    }
    Some(false)
}

/// A MySQL GTID_LOG_EVENT's GTID (flags u8, source UUID 16 bytes, number i64) as
/// "uuid:number".
pub fn mysql_gtid(ev: &[u8], checksum: event::Checksum) -> Option<String> {
    let b = event::body(ev, checksum);
    if b.len() < 25 {
        return None;
    }
    let u = hex::encode(&b[1..17]);
    let n = i64::from_le_bytes(b[17..25].try_into().ok()?);
    Some(format!(
        "{}-{}-{}-{}-{}:{n}",
        &u[..8],
        &u[8..12],
        &u[12..16],
        &u[16..20],
        &u[20..]
    ))
}

/// Event kinds that are in no transaction: they are replayed when between replayed
/// transactions (`mariadb-binlog` prints them as comments) but never open one.
fn outside_transactions(k: u8) -> bool {
    matches!(
        k,
        kind::ROTATE
            | kind::STOP
            | kind::FORMAT_DESCRIPTION
            | kind::GTID_LIST
            | kind::BINLOG_CHECKPOINT
            | kind::HEARTBEAT
            | 35 // MySQL PREVIOUS_GTIDS
    )
}

/// Whether segment `next` continues `prev` exactly (`window::follows`, the one rule that
/// `list`, `verify` and the planner share); else what is wrong.
fn follows(prev: &Segment, next: &Segment) -> Result<(), String> {
    if window::follows(prev, next) {
        return Ok(());
    }
    if prev.file == next.file {
        return Err(format!(
            "the archive of {} stops at {} and starts again at {}",
            prev.file, prev.end, next.start
        ));
    }
    let why = if prev.rotate_to.is_none() && !prev.ends_with_stop {
        format!("the end of {} (its ROTATE) is missing", prev.file)
    } else if next.start != FIRST_EVENT_POS + next.format_description.len() as u64 {
        format!("{} does not start at its first event", next.file)
    } else {
        format!("{} does not come right after {}", next.file, prev.file)
    };
    Err(format!(
        "the archive goes from {}:{} to {}:{} with the events between missing ({why})",
        prev.file, prev.end, next.file, next.start
    ))
}

/// Where in `records` a position lies: the segment holding the event that starts there
/// (or, at the end of the archive, the segment that ends there).
fn locate(records: &[Record], at: &Position) -> Option<usize> {
    let mut end_match = None;
    for (i, r) in records.iter().enumerate() {
        if let Record::Segment(s) = r
            && s.file == at.file
        {
            if s.start <= at.pos && at.pos < s.end {
                return Some(i);
            }
            if s.end == at.pos {
                end_match = Some(i);
            }
        }
    }
    end_match
}

/// Plans a point-in-time restore (see the module doc). `backups` in any order.
pub async fn plan<S: SegmentSource>(
    source: &S,
    backups: &[BackupPoint],
    target: &Target,
    skip: &[String],
) -> Result<ReplayPlan, PlanError> {
    let records = source
        .records()
        .await
        .map_err(|e| PlanError::Archive(format!("listing the archive: {e}")))?;
    if !records.iter().any(|r| matches!(r, Record::Segment(_))) {
        return Err(PlanError::Refused(
            "the binlog archive is empty: nothing to replay (is the archiver running?)".into(),
        ));
    }
    if let Target::Gtid(g) = target
        && skip.contains(g)
    {
        return Err(PlanError::Usage(format!(
            "--skip-gtid {g} is also the target"
        )));
    }
    // Where the target is in the archive, when known before walking.
    let target_at = match target {
        Target::Position(p) => Some(locate(&records, p).ok_or_else(|| {
            PlanError::Refused(format!(
                "binlog position {p} is not in the archive ({})",
                archive_extent(&records)
            ))
        })?),
        Target::Gtid(g) => {
            let found = records.iter().enumerate().rev().find_map(|(i, r)| match r {
                Record::Segment(s) if may_hold(s, g) => Some(i),
                _ => None,
            });
            Some(found.ok_or_else(|| {
                PlanError::Refused(format!(
                    "GTID {g} is not in the binlog archive ({})",
                    archive_extent(&records)
                ))
            })?)
        }
        _ => None,
    };
    // The backups of this archive's source (see the module doc).
    let mut servers: Vec<&str> = records
        .iter()
        .filter_map(|r| match r {
            Record::Segment(s) => s.server.as_deref(),
            Record::Gap(_) => None,
        })
        .collect();
    servers.sort_unstable();
    servers.dedup();
    let name = source.name();
    let ours: Vec<&BackupPoint> = backups
        .iter()
        .filter(|b| b.belongs_to(name, &servers) != Some(false))
        .collect();
    if ours.is_empty() && !backups.is_empty() {
        let mut theirs: Vec<String> = backups
            .iter()
            .map(|b| {
                format!(
                    "{} (server {})",
                    b.source.as_deref().unwrap_or("-"),
                    b.server.as_deref().unwrap_or("-")
                )
            })
            .collect();
        theirs.sort();
        theirs.dedup();
        return Err(PlanError::Refused(format!(
            "no backup in the repository is of the source of this binlog archive ({}, server \
             {}): the backups are of {}; a backup is never replayed with another server's \
             binlog",
            name.unwrap_or("-"),
            if servers.is_empty() {
                "not recorded".to_string()
            } else {
                servers.join(", ")
            },
            theirs.join(", ")
        )));
    }
    // Backups that cannot start a replay (they hold part of a database): never candidates.
    let (ours, unreplayable): (Vec<&BackupPoint>, Vec<&BackupPoint>) =
        ours.into_iter().partition(|b| b.not_replayable.is_none());
    if ours.is_empty() && !unreplayable.is_empty() {
        return Err(PlanError::Refused(format!(
            "no backup of this source can start a point-in-time restore: {}",
            unreplayable
                .iter()
                .map(|b| format!(
                    "backup {}: {}",
                    b.id,
                    b.not_replayable.as_deref().unwrap_or_default()
                ))
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    let mut candidates: Vec<&BackupPoint> = ours
        .into_iter()
        .filter(|b| match target {
            Target::Gtid(g) => {
                b.gtid.as_deref().and_then(|set| gtid_set_contains(set, g)) != Some(true)
            }
            _ => true,
        })
        .collect();
    // Newest coordinates first; the commit time only between equal coordinates.
    candidates.sort_by(|a, b| {
        window::compare(&b.position, &a.position)
            .then(b.time.cmp(&a.time))
            .then(b.id.cmp(&a.id))
    });
    if candidates.is_empty() {
        return Err(PlanError::Refused(format!(
            "no backup was taken before the target ({target}); {} backups in the repository",
            backups.len()
        )));
    }
    // Whole-server backups first: a partial one only when none of them serves.
    let (whole, partial): (Vec<&BackupPoint>, Vec<&BackupPoint>) =
        candidates.into_iter().partition(|b| b.databases.is_none());
    let mut whole_err = None;
    let chosen = if whole.is_empty() {
        None
    } else {
        match choose(
            source, &records, &whole, target, target_at, skip, name, &servers,
        )
        .await
        {
            Ok(p) => Some(p),
            Err(e) if !partial.is_empty() => {
                whole_err = Some(e);
                None
            }
            Err(e) => return Err(e),
        }
    };
    let mut p = match chosen {
        Some(p) => p,
        None => {
            let mut p = match choose(
                source, &records, &partial, target, target_at, skip, name, &servers,
            )
            .await
            {
                Ok(p) => p,
                // The whole-server backups' reason first; damage before refusals.
                Err(e) => {
                    return Err(match (whole_err, e) {
                        (None, e) => e,
                        (Some(PlanError::Refused(w)), PlanError::Refused(e)) => PlanError::Refused(
                            format!("{w}; nor can a partial backup (of some databases): {e}"),
                        ),
                        (Some(PlanError::Refused(_)), e) => e,
                        (Some(w), _) => w,
                    });
                }
            };
            p.partial = Some(partial_choice(
                &p.backup,
                whole_err.map(|e| e.to_string()),
                &partial,
            ));
            p
        }
    };
    // A newer backup left out as not replayable: say so.
    for b in unreplayable {
        if window::compare(&b.position, &p.backup.position) == std::cmp::Ordering::Greater {
            p.notes.push(format!(
                "backup {} ({}) is newer but cannot start a replay: {}",
                b.id,
                b.position,
                b.not_replayable.as_deref().unwrap_or_default()
            ));
        }
    }
    Ok(p)
}

/// Why partial backup `chosen` was chosen (`whole_refused`: why no whole-server backup
/// serves, `None`: there is none), and the other partial backups that hold other databases.
fn partial_choice(
    chosen: &BackupPoint,
    whole_refused: Option<String>,
    partial: &[&BackupPoint],
) -> String {
    let mut others: Vec<String> = Vec::new();
    let held = chosen.databases.as_ref().map(DatabaseFilter::describe);
    for b in partial {
        let d = b.databases.as_ref().map(DatabaseFilter::describe);
        if d != held
            && let Some(d) = d
            && !others.iter().any(|o| o.starts_with(&format!("{d} (")))
        {
            others.push(format!("{d} (backup {})", b.id));
        }
    }
    format!(
        "only the databases of backup {} are restored ({}): {}{}; to restore from another \
         backup, name its ID",
        chosen.id,
        held.unwrap_or_default(),
        match whole_refused {
            Some(m) => format!("no whole-server backup of this source serves the target ({m})"),
            None => "no whole-server backup of this source is a candidate".to_string(),
        },
        if others.is_empty() {
            String::new()
        } else {
            format!(
                "; partial backups of other databases: {}",
                others.join(", ")
            )
        }
    )
}

/// The first of `candidates` (in order) that serves the target (see the module doc).
#[allow(clippy::too_many_arguments)]
async fn choose<S: SegmentSource>(
    source: &S,
    records: &[Record],
    candidates: &[&BackupPoint],
    target: &Target,
    target_at: Option<usize>,
    skip: &[String],
    name: Option<&str>,
    servers: &[&str],
) -> Result<ReplayPlan, PlanError> {
    let mut not_covered = Vec::new();
    let mut after = Vec::new();
    let mut last_err = None;
    for &b in candidates {
        let Some(at) = locate(records, &b.position) else {
            not_covered.push(format!("{} at {}", b.id, b.position));
            continue;
        };
        if let Some(t) = target_at
            && (at > t
                || (at == t && matches!(target, Target::Position(p) if p.pos < b.position.pos)))
        {
            after.push(format!("{} at {}", b.id, b.position));
            continue; // the backup is after the target
        }
        if let Target::Time(t) = target {
            let stamp = stamp_before(source, records, at, &b.position).await?;
            let after_t = match stamp {
                Some(ts) => i64::from(ts) * 1_000_000 > *t,
                // Nothing archived right before the backup: its commit time decides.
                None => b.time.saturating_mul(1_000_000) > *t,
            };
            if after_t {
                after.push(match stamp {
                    Some(ts) => format!(
                        "{} at {} (after an event stamped {} UTC)",
                        b.id,
                        b.position,
                        format_micros(i64::from(ts) * 1_000_000)
                    ),
                    None => format!(
                        "{} at {} (committed {} UTC)",
                        b.id,
                        b.position,
                        format_micros(b.time.saturating_mul(1_000_000))
                    ),
                });
                continue;
            }
        }
        if let (Some(want), Record::Segment(s)) = (&b.server, &records[at])
            && let Some(got) = &s.server
            && got != want
        {
            last_err = Some(PlanError::Refused(format!(
                "backup {} (server {want}) has coordinates {} in a segment of server {got}: \
                 another server's binlog",
                b.id, b.position
            )));
            continue;
        }
        match walk(source, records, b, at, target, skip).await {
            // By GTID the backup's position may hide that it is past the target: an
            // older backup may still reach it.
            Err(WalkError::NotReached(m)) if matches!(target, Target::Gtid(_)) => {
                last_err = Some(PlanError::Refused(m));
                continue;
            }
            Err(WalkError::NotReached(m)) => return Err(PlanError::Refused(m)),
            // Not this backup (see `WalkError::NotABoundary`): try the next older one.
            Err(WalkError::NotABoundary(m)) => {
                last_err = Some(PlanError::Archive(m));
                continue;
            }
            Err(WalkError::NotItsHistory(m)) => {
                last_err = Some(PlanError::Refused(m));
                continue;
            }
            Err(WalkError::Plan(e)) => return Err(e),
            Ok(mut p) => {
                if b.belongs_to(name, servers).is_none() {
                    p.notes.push(format!(
                        "the source server of backup {} could not be checked against this \
                         archive (the backup or the archive does not record it: made by an \
                         older rbackup); its coordinates were checked to be between two \
                         transactions of the archive",
                        b.id
                    ));
                }
                return Ok(p);
            }
        }
    }
    if let Some(e) = last_err {
        return Err(e);
    }
    if not_covered.is_empty() {
        return Err(PlanError::Refused(format!(
            "no backup was taken before the target ({target}): the coordinates of every \
             backup of this source are after its stop point: {}",
            after.join(", ")
        )));
    }
    Err(PlanError::Refused(format!(
        "no backup taken before the target ({target}) is covered by the binlog archive ({}): \
         not archived: {}{}",
        archive_extent(records),
        not_covered.join(", "),
        if after.is_empty() {
            String::new()
        } else {
            format!("; after the stop point: {}", after.join(", "))
        }
    )))
}

/// The timestamp of the archived event that ends at `at` in segment `records[i]`: read
/// from the segment's bytes, or, when `at` is where the segment starts, the previous
/// segment's last event (when it follows). `None` when no archived event ends there.
async fn stamp_before<S: SegmentSource>(
    source: &S,
    records: &[Record],
    i: usize,
    at: &Position,
) -> Result<Option<u32>, PlanError> {
    let Record::Segment(s) = &records[i] else {
        return Ok(None);
    };
    if at.pos <= s.start {
        return Ok(match i.checked_sub(1).map(|p| &records[p]) {
            Some(Record::Segment(p)) if window::follows(p, s) => Some(p.last_event_time),
            _ => None,
        });
    }
    let bytes = source.segment_bytes(s).await.map_err(|e| {
        PlanError::Archive(format!("segment {}:{}-{}: {e}", s.file, s.start, s.end))
    })?;
    let mut off = 0usize;
    while off + HEADER_LEN <= bytes.len() {
        let size =
            u32::from_le_bytes(bytes[off + 9..off + 13].try_into().expect("4 bytes")) as usize;
        if size < HEADER_LEN || off + size > bytes.len() {
            return Err(damaged(s, s.start + off as u64, "truncated event"));
        }
        let end = s.start + (off + size) as u64;
        if end == at.pos {
            let ts = u32::from_le_bytes(bytes[off..off + 4].try_into().expect("4 bytes"));
            return Ok(Some(ts));
        }
        if end > at.pos {
            break;
        }
        off += size;
    }
    Ok(None)
}

/// Whether segment `s` may hold the GTID (from its description's GTID ranges; MySQL
/// GTIDs are not listed there: any segment may).
fn may_hold(s: &Segment, gtid: &str) -> bool {
    if gtid.contains(':') {
        return true;
    }
    let p: Vec<u64> = gtid.split('-').filter_map(|x| x.parse().ok()).collect();
    p.len() == 3
        && s.gtids.iter().any(|r| {
            u64::from(r.domain) == p[0]
                && u64::from(r.server_id) == p[1]
                && r.first <= p[2]
                && p[2] <= r.last
        })
}

/// "archived: binlog.000001:256 .. binlog.000003:1200, 1 gap".
fn archive_extent(records: &[Record]) -> String {
    let segs: Vec<&Segment> = records
        .iter()
        .filter_map(|r| match r {
            Record::Segment(s) => Some(s),
            Record::Gap(_) => None,
        })
        .collect();
    let gaps = records.len() - segs.len();
    match (segs.first(), segs.last()) {
        (Some(a), Some(b)) => format!(
            "archived: {}:{} .. {}:{}{}",
            a.file,
            a.start,
            b.file,
            b.end,
            if gaps > 0 {
                format!(", {gaps} gap(s)")
            } else {
                String::new()
            }
        ),
        _ => "nothing archived".into(),
    }
}

enum WalkError {
    /// The archive ends before the target.
    NotReached(String),
    /// The backup's coordinates are not between two transactions of the archive (another
    /// server's backup with the same binlog names, or damage): an older backup may serve.
    NotABoundary(String),
    /// The transactions around the backup's coordinates disagree with its GTID position
    /// (another server's history with the same binlog names: a server re-initialized, or
    /// another one): an older backup may serve.
    NotItsHistory(String),
    Plan(PlanError),
}

impl From<PlanError> for WalkError {
    fn from(e: PlanError) -> WalkError {
        WalkError::Plan(e)
    }
}

/// The transaction being read.
struct Open<'f> {
    txn: Txn,
    record: usize,
    events: u64,
    skipped: bool,
    /// A partial backup's replay: its units (`filter`), how many were kept and how many
    /// (with how many events) cut out as other databases', and why it cannot be split.
    units: Option<Units<'f>>,
    kept: u64,
    other: u64,
    other_events: u64,
    mixed: Option<String>,
    /// The XID of an XA transaction's `XA START` (its prepared half), or of the `XA
    /// COMMIT`/`XA ROLLBACK` that ends one prepared before (MariaDB logs them as two
    /// transactions).
    xa_start: Option<String>,
    xa_end: Option<String>,
    /// `xa_end` is an `XA COMMIT` (else an `XA ROLLBACK`).
    xa_commit: bool,
}

/// The walk's output being built: pieces and where the current one began.
struct Pieces {
    done: Vec<Piece>,
    /// The piece being extended: its record, segment and start.
    open: Option<(usize, u64)>,
}

impl Pieces {
    /// Ends the open piece at `upto` in segment `record` (`seg`).
    fn flush(&mut self, record: usize, seg: &Segment, upto: u64) {
        if let Some((r, from)) = self.open.take() {
            debug_assert_eq!(r, record);
            if from < upto {
                self.done.push(Piece {
                    segment: seg.clone(),
                    from,
                    to: upto,
                    record,
                });
            }
        }
    }

    /// Drops everything from `pos` of record `record` on (after a flush).
    fn trim(&mut self, record: usize, pos: u64) {
        while let Some(last) = self.done.last_mut() {
            if (last.record, last.from) >= (record, pos) {
                self.done.pop();
            } else {
                if last.record == record && last.to > pos {
                    last.to = pos;
                }
                break;
            }
        }
    }
}

async fn walk<S: SegmentSource>(
    source: &S,
    records: &[Record],
    backup: &BackupPoint,
    first_record: usize,
    target: &Target,
    skip: &[String],
) -> Result<ReplayPlan, WalkError> {
    let skip: HashSet<&str> = skip.iter().map(String::as_str).collect();
    let mut skipped_seen = Vec::new();
    let mut pieces = Pieces {
        done: Vec::new(),
        open: None,
    };
    let mut framer: Option<(String, Framer, event::Checksum)> = None;
    let mut prev: Option<&Segment> = None;
    let mut open: Option<Open> = None;
    let mut other_databases = OtherDatabases::default();
    // The XIDs of prepared XA transactions left out as other databases' (their XA
    // COMMIT/ROLLBACK comes later, a transaction of its own).
    let mut left_out_xa: HashSet<String> = HashSet::new();
    // The XIDs of prepared XA transactions replayed, and of those skipped (`--skip-gtid`:
    // which transaction), whose XA COMMIT/ROLLBACK is still to come.
    let mut prepared_replayed: HashSet<String> = HashSet::new();
    let mut skipped_xa: HashMap<String, String> = HashMap::new();
    // The prepared halves of XA transactions prepared before the backup's coordinates
    // and ended after them: replayed first (`prepared_before`); and what the plan says of
    // XA transactions.
    let mut prepended: Vec<PreparedBefore> = Vec::new();
    let mut xa_lines: Vec<String> = Vec::new();
    let mut gtids = ReplayGtids::default();
    let mut first: Option<Txn> = None;
    let mut last: Option<Txn> = None;
    let (mut transactions, mut events) = (0u64, 0u64);
    let mut including = true;
    let mut last_time: u32 = 0;
    let mut stop: Option<Stop> = None;
    let mut seen_target_file = false;
    // The end of the last event included (or the backup's coordinates).
    let mut included_end = backup.position.clone();
    // The GTID of the last transaction before the backup's coordinates (in their
    // segment), and whether the transactions around them were checked against the
    // backup's GTID position.
    let mut gtid_before: Option<String> = None;
    let mut checked_history = false;
    // With `EndOfWindow`: what ended the window before the end of the archive.
    let mut window_end: Option<String> = None;
    'records: for (ri, record) in records.iter().enumerate().skip(first_record) {
        let s = match record {
            Record::Gap(g) if matches!(target, Target::EndOfWindow) => {
                window_end = Some(format!(
                    "a gap in the archive: nothing archived from {} to {} ({})",
                    g.after
                        .as_ref()
                        .map_or("the start".to_string(), |p| p.to_string()),
                    g.resume_at,
                    g.message
                ));
                break 'records;
            }
            Record::Gap(g) => {
                return Err(WalkError::Plan(PlanError::Refused(format!(
                    "GAP IN THE BINLOG ARCHIVE between backup {} ({}) and the target \
                     ({target}): nothing archived from {} to {} ({}); nothing can be \
                     restored across it: restore to a point before {}, or from a backup \
                     taken after it",
                    backup.id,
                    backup.position,
                    g.after
                        .as_ref()
                        .map_or("the start".to_string(), |p| p.to_string()),
                    g.resume_at,
                    g.message,
                    g.after
                        .as_ref()
                        .map_or("the start".to_string(), |p| p.to_string()),
                ))));
            }
            Record::Segment(s) => s,
        };
        if let Some(p) = prev
            && matches!(target, Target::EndOfWindow)
            && let Err(m) = follows(p, s)
        {
            window_end = Some(format!("the archive is not contiguous: {m}"));
            break 'records;
        }
        if let Some(p) = prev {
            follows(p, s).map_err(|m| {
                PlanError::Refused(format!(
                    "the binlog archive is not contiguous between backup {} and the target \
                     ({target}): {m}; nothing can be restored across it",
                    backup.id
                ))
            })?;
        }
        if let Some(p) = prev
            && let (Some(a), Some(b)) = (&p.server, &s.server)
            && a != b
        {
            return Err(WalkError::Plan(PlanError::Refused(format!(
                "the binlog archive changes servers between backup {} and the target \
                 ({target}): {}:{} is of server {a}, {}:{} of server {b}; nothing can be \
                 restored across it",
                backup.id, p.file, p.end, s.file, s.start
            ))));
        }
        prev = Some(s);
        if let Target::Position(p) = target {
            if s.file == p.file {
                seen_target_file = true;
            } else if seen_target_file {
                // Past the target's file: the transactions so far are all of it.
                stop = Some(Stop {
                    at: included_end.clone(),
                    why: format!("the end of {} is before {p}", p.file),
                    next: None,
                });
                break 'records;
            }
        }
        let bytes = source.segment_bytes(s).await.map_err(|e| {
            PlanError::Archive(format!("segment {}:{}-{}: {e}", s.file, s.start, s.end))
        })?;
        let checksum = event::format_description_checksum(&s.format_description)
            .map_err(|e| PlanError::Archive(format!("segment {}:{}: {e}", s.file, s.start)))?;
        if framer.as_ref().is_none_or(|(f, _, _)| *f != s.file) {
            let start = BinlogStart::Position {
                file: s.file.clone(),
                pos: s.start,
            };
            framer = Some((s.file.clone(), Framer::new(&start, checksum), checksum));
        }
        let (_, fr, checksum) = framer.as_mut().expect("set above");
        let checksum = *checksum;
        let from = if ri == first_record {
            backup.position.pos
        } else {
            s.start
        };
        if ri == first_record
            && from == s.start
            && ri > 0
            && let Some(Record::Segment(p)) = records.get(ri - 1)
            && p.file == s.file
            && p.ends_in_transaction
        {
            return Err(not_a_boundary(backup));
        }
        if including && from < s.end {
            pieces.open = Some((ri, from));
        }
        let mut off = 0usize;
        let mut reached_from = from == s.start;
        while off < bytes.len() {
            let rest = &bytes[off..];
            if rest.len() < HEADER_LEN {
                return Err(damaged(s, s.start + off as u64, "truncated event").into());
            }
            let size = u32::from_le_bytes(rest[9..13].try_into().expect("4 bytes")) as usize;
            if size < HEADER_LEN || size > rest.len() {
                return Err(damaged(s, s.start + off as u64, "truncated event").into());
            }
            let ev = rest[..size].to_vec();
            off += size;
            let fe = match fr.accept(ev) {
                Ok(Frame::Event(fe)) => fe,
                Ok(_) => {
                    return Err(damaged(s, s.start + off as u64, "not an event of the file").into());
                }
                Err(e) => {
                    return Err(WalkError::Plan(PlanError::Archive(format!(
                        "segment {}:{}-{}: at {}: {}",
                        s.file, s.start, s.end, e.pos, e.problem
                    ))));
                }
            };
            if fe.end <= from {
                match fe.header.kind {
                    kind::GTID => gtid_before = fe.gtid.map(|g| g.gtid.to_string()),
                    kind::MYSQL_GTID => gtid_before = mysql_gtid(&fe.bytes, checksum),
                    _ => {}
                }
                if fe.end == from {
                    if !fe.at_boundary {
                        return Err(not_a_boundary(backup));
                    }
                    reached_from = true;
                }
                continue;
            }
            if !reached_from {
                return Err(not_a_boundary(backup));
            }
            last_time = fe.header.timestamp;
            let pos_here = Position {
                file: fe.file.clone(),
                pos: fe.start,
            };
            if open.is_none() && !outside_transactions(fe.header.kind) {
                let gtid = match fe.header.kind {
                    kind::GTID => fe.gtid.map(|g| g.gtid.to_string()),
                    kind::MYSQL_GTID => mysql_gtid(&fe.bytes, checksum),
                    _ => None,
                };
                let txn = Txn {
                    gtid,
                    start: pos_here.clone(),
                    end: fe.end,
                    time: fe.header.timestamp,
                };
                if !checked_history {
                    checked_history = true;
                    check_history(backup, gtid_before.as_deref(), txn.gtid.as_deref())?;
                }
                if let Target::Time(t) = target
                    && i64::from(txn.time) * 1_000_000 > *t
                {
                    pieces.flush(ri, s, fe.start);
                    stop = Some(Stop {
                        at: included_end.clone(),
                        why: format!(
                            "the next transaction began at {} UTC, after the target {} UTC",
                            format_micros(i64::from(txn.time) * 1_000_000),
                            format_micros(*t)
                        ),
                        next: Some(txn),
                    });
                    break 'records;
                }
                let skipped = txn.gtid.as_deref().is_some_and(|g| skip.contains(g));
                if skipped {
                    pieces.flush(ri, s, fe.start);
                    including = false;
                }
                open = Some(Open {
                    txn,
                    record: ri,
                    events: 0,
                    skipped,
                    units: backup.databases.as_ref().map(Units::new),
                    kept: 0,
                    other: 0,
                    other_events: 0,
                    mixed: None,
                    xa_start: None,
                    xa_end: None,
                    xa_commit: false,
                });
            }
            if let Some(o) = open.as_mut() {
                o.events += 1;
                o.txn.end = fe.end;
                match fe.header.kind {
                    kind::GTID => o.xa_start = prepared_xa(&fe.bytes, checksum),
                    kind::QUERY => {
                        if let Ok(text) = event::query_text(&fe.bytes, checksum) {
                            // MySQL logs `XA START` as a statement.
                            if let Some(x) = xa_statement(text, &["XA START ", "XA BEGIN "]) {
                                o.xa_start = Some(x);
                            }
                            o.xa_end = xa_statement(text, &["XA COMMIT ", "XA ROLLBACK "]);
                            o.xa_commit = xa_statement(text, &["XA COMMIT "]).is_some();
                        }
                    }
                    _ => {}
                }
                if !o.skipped
                    && let Some(units) = o.units.as_mut()
                    && let filter::Step::End(u, v) =
                        units.event(&fe.bytes, fe.header.kind, checksum, ri, fe.start)
                {
                    match v {
                        Verdict::Kept => o.kept += 1,
                        Verdict::Other => {
                            // Cut out of the bytes: the unit is contiguous and ends here.
                            o.other += 1;
                            o.other_events += u.events;
                            pieces.flush(ri, s, fe.end);
                            pieces.trim(u.record, u.start);
                            if fe.end < s.end {
                                pieces.open = Some((ri, fe.end));
                            }
                        }
                        Verdict::Mixed(m) => {
                            o.kept += 1;
                            o.mixed.get_or_insert(m);
                        }
                    }
                }
            }
            if !fe.at_boundary {
                continue;
            }
            // Between transactions after this event.
            let Some(mut o) = open.take() else {
                // A lone event outside transactions (GTID_LIST, ROTATE ...).
                if including {
                    included_end = Position {
                        file: fe.file.clone(),
                        pos: fe.end,
                    };
                }
                continue;
            };
            if let Target::Position(p) = target
                && fe.file == p.file
                && fe.end > p.pos
            {
                // This transaction ends past the target: stop before it.
                pieces.flush(ri, s, fe.end);
                pieces.trim(o.record, o.txn.start.pos);
                stop = Some(Stop {
                    at: included_end.clone(),
                    why: format!("the next transaction ends at {}, past {p}", fe.end),
                    next: Some(o.txn),
                });
                break 'records;
            }
            // An `XA COMMIT`/`XA ROLLBACK` of its own: the end of an XA transaction
            // prepared before it (MariaDB and MySQL log the two halves apart).
            let ends = o
                .xa_end
                .clone()
                .filter(|_| o.xa_start.is_none() && o.kept == 0);
            let end_verb = if o.xa_commit { "COMMIT" } else { "ROLLBACK" };
            if o.skipped {
                // Its prepared half skipped: its end is left out with it (below).
                if let Some(x) = &o.xa_start {
                    skipped_xa.insert(x.clone(), o.txn.to_string());
                }
                if let Some(x) = &ends
                    && prepared_replayed.remove(x)
                {
                    xa_lines.push(format!(
                        "note: XA transaction {x} stays PREPARED on the target: its prepared \
                         half is replayed, its XA {end_verb} ({}) skipped; end it with XA \
                         COMMIT {x} or XA ROLLBACK {x}",
                        o.txn
                    ));
                }
                if let Some(g) = &o.txn.gtid {
                    gtids.left_out.insert(g);
                }
                skipped_seen.push(o.txn.clone());
                including = true;
                if fe.end < s.end {
                    pieces.open = Some((ri, fe.end));
                }
                continue;
            }
            if let (Some(m), Some(f), Target::EndOfWindow) = (&o.mixed, &backup.databases, target) {
                // A drill: what this backup can be restored to ends before it.
                pieces.flush(ri, s, fe.end);
                pieces.trim(o.record, o.txn.start.pos);
                stop = Some(Stop {
                    at: included_end.clone(),
                    why: format!(
                        "the next {} cannot be replayed for a backup of {} only: {m}",
                        o.txn,
                        f.describe()
                    ),
                    next: Some(o.txn),
                });
                break 'records;
            }
            if let (Some(m), Some(f)) = (&o.mixed, &backup.databases) {
                return Err(WalkError::Plan(PlanError::Refused(format!(
                    "{} cannot be replayed for backup {}, which holds {} only: {m}. \
                     Restore from a whole-server backup, or leave it out knowingly{}",
                    o.txn,
                    backup.id,
                    f.describe(),
                    match &o.txn.gtid {
                        Some(g) => format!(" with --skip-gtid {g}"),
                        None => " by restoring to a point before it".to_string(),
                    }
                ))));
            }
            let trailing_kept = o.units.as_mut().and_then(Units::finish).is_some();
            let ends = ends.filter(|_| !trailing_kept);
            // The XA COMMIT/ROLLBACK of a prepared XA transaction left out (as other
            // databases', or skipped, or prepared before the backup and not archived, a
            // ROLLBACK): left out too (the target knows no such XID).
            let mut ends_left_out_xa = false;
            let mut end_left_out_why: Option<String> = None;
            if let Some(x) = &ends {
                if let Some(half) = skipped_xa.remove(x) {
                    end_left_out_why = Some(format!(
                        "skipped: {} (the XA {end_verb} of XA transaction {x}, whose prepared \
                         half, {half}, is skipped: left out with it)",
                        o.txn
                    ));
                } else if left_out_xa.remove(x) {
                    ends_left_out_xa = true;
                } else if !prepared_replayed.remove(x) {
                    // Prepared before the backup's coordinates: the backup does not hold
                    // its rows (prepared, not committed, when it was taken).
                    match prepared_before(source, records, first_record, backup, x).await? {
                        Some(half)
                            if half.mixed.is_some() || (half.kept == 0 && half.other > 0) =>
                        {
                            if let (Some(m), Some(f)) = (&half.mixed, &backup.databases) {
                                let why = format!(
                                    "{} (the XA {end_verb} of XA transaction {x}, whose \
                                     prepared half {} is before the coordinates of backup {} \
                                     and not in it) cannot be replayed for a backup of {} \
                                     only: {m}",
                                    o.txn,
                                    half.txn,
                                    backup.id,
                                    f.describe(),
                                );
                                if matches!(target, Target::EndOfWindow) {
                                    // A drill: what this backup can be restored to ends
                                    // before it (as before any mixed transaction).
                                    pieces.flush(ri, s, fe.end);
                                    pieces.trim(o.record, o.txn.start.pos);
                                    stop = Some(Stop {
                                        at: included_end.clone(),
                                        why: format!("the next {why}"),
                                        next: Some(o.txn),
                                    });
                                    break 'records;
                                }
                                return Err(WalkError::Plan(PlanError::Refused(format!(
                                    "{why}. Restore from a whole-server backup, or leave \
                                     its rows out knowingly with --skip-gtid {}",
                                    o.txn.gtid.as_deref().unwrap_or("-")
                                ))));
                            }
                            // Other databases' only: both halves left out.
                            ends_left_out_xa = true;
                        }
                        Some(half) => {
                            xa_lines.push(format!(
                                "replayed first: {} (XA transaction {x}, prepared before the \
                                 backup's coordinates, which does not hold it; its XA \
                                 {end_verb} is {})",
                                half.txn, o.txn
                            ));
                            transactions += 1;
                            events += half.events;
                            if half.other > 0 {
                                other_databases.statements += half.other;
                                other_databases.statements_in += 1;
                            }
                            if let Some(g) = &half.txn.gtid {
                                gtids.replayed_first.insert(g);
                            }
                            prepended.push(half);
                        }
                        None if !o.xa_commit => {
                            end_left_out_why = Some(format!(
                                "left out: {} (the XA ROLLBACK of XA transaction {x}, prepared \
                                 before the backup's coordinates and not in the archive: \
                                 nothing to roll back)",
                                o.txn
                            ));
                        }
                        None => {
                            let why = format!(
                                "{} is the XA COMMIT of XA transaction {x}, prepared before the \
                                 coordinates of backup {} ({}) and not in the binlog archive \
                                 before them ({}): the backup does not hold its rows \
                                 (prepared, not committed, when it was taken), and its XA \
                                 COMMIT alone would fail on the target (XAER_NOTA: unknown \
                                 XID)",
                                o.txn,
                                backup.id,
                                backup.position,
                                archive_extent(records)
                            );
                            if matches!(target, Target::EndOfWindow) {
                                pieces.flush(ri, s, fe.end);
                                pieces.trim(o.record, o.txn.start.pos);
                                stop = Some(Stop {
                                    at: included_end.clone(),
                                    why: format!("the next {why}"),
                                    next: Some(o.txn),
                                });
                                break 'records;
                            }
                            return Err(WalkError::Plan(PlanError::Refused(format!(
                                "{why}. Restore from a backup taken before its XA PREPARE \
                                 (with the archive from there) or after its XA COMMIT, or \
                                 leave its rows out knowingly with --skip-gtid {}",
                                o.txn.gtid.as_deref().unwrap_or("-")
                            ))));
                        }
                    }
                }
            }
            if end_left_out_why.is_some()
                || (o.units.is_some()
                    && ((o.kept == 0 && o.other > 0 && !trailing_kept) || ends_left_out_xa))
            {
                // Only other databases' (or the end of an XA transaction left out): left
                // out whole.
                if let Some(x) = o.xa_start.take() {
                    left_out_xa.insert(x);
                }
                pieces.flush(ri, s, fe.end);
                pieces.trim(o.record, o.txn.start.pos);
                if fe.end < s.end {
                    pieces.open = Some((ri, fe.end));
                }
                if let Some(g) = &o.txn.gtid {
                    gtids.left_out.insert(g);
                }
                match end_left_out_why {
                    Some(why) => xa_lines.push(why),
                    None => other_databases.transactions += 1,
                }
            } else {
                if let Some(x) = &o.xa_start {
                    prepared_replayed.insert(x.clone());
                }
                transactions += 1;
                events += o.events - o.other_events;
                first.get_or_insert_with(|| o.txn.clone());
                last = Some(o.txn.clone());
                if o.other > 0 {
                    other_databases.statements += o.other;
                    other_databases.statements_in += 1;
                }
            }
            included_end = Position {
                file: fe.file.clone(),
                pos: fe.end,
            };
            let reached = match target {
                Target::Gtid(g) => o.txn.gtid.as_deref() == Some(g.as_str()),
                Target::Position(p) => fe.file == p.file && fe.end == p.pos,
                _ => false,
            };
            if reached {
                pieces.flush(ri, s, fe.end);
                stop = Some(Stop {
                    at: included_end.clone(),
                    why: match target {
                        Target::Gtid(g) => format!("transaction {g}, the target, included"),
                        _ => format!("{target} reached"),
                    },
                    next: None,
                });
                break 'records;
            }
        }
        if let Some((r, _)) = pieces.open {
            debug_assert_eq!(r, ri);
            pieces.flush(ri, s, s.end);
            pieces.open = None;
        }
    }
    if !checked_history {
        check_history(backup, gtid_before.as_deref(), None)?;
    }
    let stop = match stop {
        Some(s) => s,
        None => {
            // The end of the archive.
            if let Some(o) = &open {
                pieces.trim(o.record, o.txn.start.pos);
            }
            match target {
                Target::Latest | Target::EndOfWindow => Stop {
                    at: included_end.clone(),
                    why: match (&open, &window_end) {
                        (Some(o), None) => format!(
                            "the end of the archive (its last {} is not complete yet and is \
                             left out)",
                            o.txn
                        ),
                        (None, None) => "the end of the archive".into(),
                        (Some(o), Some(w)) => {
                            format!("{w} (the {} cut by it is left out)", o.txn)
                        }
                        (None, Some(w)) => w.clone(),
                    },
                    next: open.as_ref().map(|o| o.txn.clone()),
                },
                Target::Time(t) => {
                    return Err(WalkError::NotReached(format!(
                        "the binlog archive ends at {} UTC ({included_end}), before the target \
                         {} UTC: events after it may not be archived yet; restore \
                         --to-latest to replay everything archived",
                        format_micros(i64::from(last_time) * 1_000_000),
                        format_micros(*t)
                    )));
                }
                Target::Position(p) if seen_target_file && included_end.file == p.file => {
                    // The file ends (archived) before the position.
                    return Err(WalkError::NotReached(format!(
                        "binlog position {p} is past the end of the archive ({included_end})"
                    )));
                }
                _ => {
                    return Err(WalkError::NotReached(format!(
                        "{target} is not in the binlog archive after backup {} ({}); {}",
                        backup.id,
                        backup.position,
                        archive_extent(records)
                    )));
                }
            }
        }
    };
    for g in &skip {
        if !skipped_seen.iter().any(|t| t.gtid.as_deref() == Some(*g)) {
            return Err(WalkError::Plan(PlanError::Refused(format!(
                "--skip-gtid {g}: no such transaction between backup {} ({}) and the stop \
                 point ({})",
                backup.id, backup.position, stop.at
            ))));
        }
    }
    // The prepared halves found before the coordinates go first, in archive order.
    prepended.sort_by_key(|h| (h.record, h.txn.start.pos));
    if let Some(h) = prepended.first() {
        first = Some(h.txn.clone());
    }
    let mut all: Vec<Piece> = prepended.into_iter().flat_map(|h| h.pieces).collect();
    all.extend(pieces.done);
    Ok(ReplayPlan {
        backup: backup.clone(),
        target: target.clone(),
        pieces: all,
        xa: xa_lines,
        gtids,
        first,
        last,
        transactions,
        events,
        skipped: skipped_seen,
        other_databases,
        stop,
        notes: Vec::new(),
        partial: None,
    })
}

/// The XID of statement `text` when it is one of `words` (`XA COMMIT xid`, ...), as
/// `prepared_xa` writes it.
fn xa_statement(text: &[u8], words: &[&str]) -> Option<String> {
    // Read for every QUERY of a replay: nothing is copied but for an `XA ` statement.
    let head = text.trim_ascii_start();
    if head.len() < 3 || !head[..3].eq_ignore_ascii_case(b"XA ") {
        return None;
    }
    let t = String::from_utf8_lossy(text);
    let t = t.trim();
    let upper = t.to_ascii_uppercase();
    // `XA COMMIT xid ONE PHASE` ends a transaction of its own, never prepared apart.
    if upper.ends_with("ONE PHASE") {
        return None;
    }
    words
        .iter()
        .find(|w| upper.starts_with(*w))
        .map(|w| normalize_xid(&t[w.len()..]))
}

/// An XA transaction's prepared half (`XA START` .. `XA PREPARE`) found in the archive
/// before a backup's coordinates (`prepared_before`).
struct PreparedBefore {
    txn: Txn,
    /// Where it starts in `SegmentSource::records`.
    record: usize,
    /// Its bytes to replay (a partial backup's: other databases' statements cut out).
    pieces: Vec<Piece>,
    /// Its events replayed.
    events: u64,
    /// A partial backup's: its units kept, cut out as other databases', and why it
    /// cannot be split (`filter`).
    kept: u64,
    other: u64,
    mixed: Option<String>,
}

/// The prepared half of XA transaction `xid` that ends last before `backup`'s
/// coordinates (in record `at`), looked for backwards through the archive (one segment's
/// bytes at a time) as far as it reaches without a gap or another server's segment;
/// `None` when not there, or when an `XA COMMIT`/`XA ROLLBACK` of `xid` follows it before
/// the coordinates (that one ended before the backup: the XID reused, the transaction
/// that ends after them was never binlogged prepared, e.g. a read-only XA transaction's
/// lone XA COMMIT, MDEV-25616; replaying the earlier one would apply its rows twice). A
/// prepared XA transaction is binlogged by its `XA PREPARE` (MariaDB 10.5+, MySQL): one
/// prepared before a backup's snapshot and ended after it is in no backup but in the
/// archive before its coordinates.
async fn prepared_before<S: SegmentSource>(
    source: &S,
    records: &[Record],
    at: usize,
    backup: &BackupPoint,
    xid: &str,
) -> Result<Option<PreparedBefore>, PlanError> {
    let Record::Segment(here) = &records[at] else {
        return Ok(None);
    };
    let read = |s: &Segment| {
        let s = s.clone();
        async move {
            let bytes = source.segment_bytes(&s).await.map_err(|e| {
                PlanError::Archive(format!("segment {}:{}-{}: {e}", s.file, s.start, s.end))
            })?;
            let checksum = event::format_description_checksum(&s.format_description)
                .map_err(|e| PlanError::Archive(format!("segment {}:{}: {e}", s.file, s.start)))?;
            Ok::<_, PlanError>((bytes, checksum))
        }
    };
    // Events of `bytes` (segment `s`) as (position, event), up to `limit`.
    fn events<'b>(
        s: &Segment,
        bytes: &'b [u8],
        limit: u64,
    ) -> Result<Vec<(u64, &'b [u8])>, PlanError> {
        let mut out = Vec::new();
        let mut off = 0usize;
        while off + HEADER_LEN <= bytes.len() {
            let size =
                u32::from_le_bytes(bytes[off + 9..off + 13].try_into().expect("4 bytes")) as usize;
            if size < HEADER_LEN || off + size > bytes.len() {
                return Err(damaged(s, s.start + off as u64, "truncated event"));
            }
            let pos = s.start + off as u64;
            if pos + size as u64 > limit {
                break;
            }
            out.push((pos, &bytes[off..off + size]));
            off += size;
        }
        Ok(out)
    }
    // Backwards: its XA_PREPARE event, then the GTID event that opens its group.
    let mut end: Option<(usize, u64)> = None;
    let mut start: Option<(usize, u64)> = None;
    let mut r = at;
    while let Record::Segment(s) = &records[r] {
        if s.server.is_some() && here.server.is_some() && s.server != here.server {
            break;
        }
        if r < at
            && let Record::Segment(n) = &records[r + 1]
            && !window::follows(s, n)
        {
            break;
        }
        let (bytes, checksum) = read(s).await?;
        let limit = if r == at { backup.position.pos } else { s.end };
        let mut last_gtid = None;
        // An XA COMMIT/ROLLBACK of `xid` after its last XA_PREPARE here (or here with none
        // after a later segment's): that transaction ended before the coordinates, and the
        // one ended after them is not in the archive (it was never binlogged prepared).
        let mut ended_after = false;
        for (pos, ev) in events(s, &bytes, limit)? {
            match ev[4] {
                kind::QUERY
                    if end.is_none_or(|(er, _)| er == r)
                        && event::query_text(ev, checksum).is_ok_and(|t| {
                            xa_statement(t, &["XA COMMIT ", "XA ROLLBACK "]).as_deref() == Some(xid)
                        }) =>
                {
                    ended_after = true;
                }
                // MySQL without GTIDs (gtid_mode OFF) opens each group with an
                // anonymous one.
                kind::GTID | kind::MYSQL_GTID | kind::MYSQL_ANONYMOUS_GTID => last_gtid = Some(pos),
                kind::XA_PREPARE
                    if end.is_none_or(|(er, _)| er == r)
                        && xa_prepare_xid(ev, checksum).as_deref() == Some(xid) =>
                {
                    end = Some((r, pos + ev.len() as u64));
                    start = last_gtid.map(|g| (r, g));
                    ended_after = false;
                }
                _ => {}
            }
        }
        if ended_after {
            return Ok(None);
        }
        match (end, start) {
            (Some(_), Some(_)) => break,
            // Its group began in an earlier segment: its last GTID event.
            (Some((er, _)), None) if er != r => {
                if let Some(g) = last_gtid {
                    start = Some((r, g));
                    break;
                }
            }
            _ => {}
        }
        if r == 0 {
            break;
        }
        r -= 1;
    }
    let (Some(start), Some(end)) = (start, end) else {
        return Ok(None);
    };
    // Forwards over it: its events, pieces, and a partial backup's units (as `walk`).
    let mut half: Option<PreparedBefore> = None;
    let mut units = backup.databases.as_ref().map(Units::new);
    let mut pieces = Pieces {
        done: Vec::new(),
        open: None,
    };
    for (ri, record) in records.iter().enumerate().take(end.0 + 1).skip(start.0) {
        let Record::Segment(s) = record else {
            return Ok(None);
        };
        let (bytes, checksum) = read(s).await?;
        let from = if ri == start.0 { start.1 } else { s.start };
        let to = if ri == end.0 { end.1 } else { s.end };
        pieces.open = Some((ri, from));
        for (pos, ev) in events(s, &bytes, to)? {
            if pos < from {
                continue;
            }
            let header =
                event::Header::parse(ev).map_err(|e| damaged(s, pos, &format!("{e:?}")))?;
            let h = half.get_or_insert_with(|| PreparedBefore {
                txn: Txn {
                    gtid: match header.kind {
                        kind::GTID => event::parse_gtid(ev, &header, checksum)
                            .ok()
                            .map(|g| g.gtid.to_string()),
                        kind::MYSQL_GTID => mysql_gtid(ev, checksum),
                        _ => None,
                    },
                    start: Position {
                        file: s.file.clone(),
                        pos,
                    },
                    end: end.1,
                    time: header.timestamp,
                },
                record: ri,
                pieces: Vec::new(),
                events: 0,
                kept: 0,
                other: 0,
                mixed: None,
            });
            h.events += 1;
            let ev_end = pos + ev.len() as u64;
            if let Some(u) = units.as_mut()
                && let filter::Step::End(u, v) = u.event(ev, header.kind, checksum, ri, pos)
            {
                match v {
                    Verdict::Kept => h.kept += 1,
                    Verdict::Other => {
                        h.other += 1;
                        h.events -= u.events;
                        pieces.flush(ri, s, ev_end);
                        pieces.trim(u.record, u.start);
                        if ev_end < to {
                            pieces.open = Some((ri, ev_end));
                        }
                    }
                    Verdict::Mixed(m) => {
                        h.kept += 1;
                        h.mixed.get_or_insert(m);
                    }
                }
            }
        }
        pieces.flush(ri, s, to);
    }
    if units.as_mut().and_then(Units::finish).is_some()
        && let Some(h) = half.as_mut()
    {
        h.kept += 1;
    }
    Ok(half.map(|mut h| {
        h.pieces = pieces.done;
        h
    }))
}

/// The XID of an XA_PREPARE event (not one-phase), as `prepared_xa` writes it. Its body:
/// one_phase (1), formatID (4), gtrid length (4), bqual length (4), gtrid and bqual.
fn xa_prepare_xid(ev: &[u8], checksum: event::Checksum) -> Option<String> {
    let b = event::body(ev, checksum);
    if *b.first()? != 0 {
        return None;
    }
    let u32_at =
        |i: usize| -> Option<u32> { Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?)) };
    let format = u32_at(1)?;
    let (gtrid, bqual) = (u32_at(5)? as usize, u32_at(9)? as usize);
    let data = b.get(13..13 + gtrid + bqual)?;
    let hex = |d: &[u8]| d.iter().map(|c| format!("{c:02x}")).collect::<String>();
    Some(normalize_xid(&format!(
        "X'{}',X'{}',{format}",
        hex(&data[..gtrid]),
        hex(&data[gtrid..])
    )))
}

fn normalize_xid(xid: &str) -> String {
    xid.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// The XID of a MariaDB GTID event that opens a prepared XA transaction (flag
/// FL_PREPARED_XA: `XA START` ... `XA PREPARE`, whose `XA COMMIT` is a transaction of its
/// own), as the server writes it in `XA COMMIT X'gtrid',X'bqual',formatID`.
fn prepared_xa(ev: &[u8], checksum: event::Checksum) -> Option<String> {
    const FL_GROUP_COMMIT_ID: u8 = 2;
    const FL_PREPARED_XA: u8 = 64;
    let b = event::body(ev, checksum);
    let flags = *b.get(12)?;
    if flags & FL_PREPARED_XA == 0 {
        return None;
    }
    let mut at = 13
        + if flags & FL_GROUP_COMMIT_ID != 0 {
            8
        } else {
            0
        };
    let format = u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?);
    let gtrid = *b.get(at + 4)? as usize;
    let bqual = *b.get(at + 5)? as usize;
    at += 6;
    let data = b.get(at..at + gtrid + bqual)?;
    let hex = |d: &[u8]| d.iter().map(|c| format!("{c:02x}")).collect::<String>();
    Some(normalize_xid(&format!(
        "X'{}',X'{}',{format}",
        hex(&data[..gtrid]),
        hex(&data[gtrid..])
    )))
}

/// The backup's GTID position must hold the transaction that ends at its coordinates
/// (`before`) and not the one that begins there (`after`), as far as the archive shows
/// them; else the archive at those coordinates is another history than the backup's.
fn check_history(
    backup: &BackupPoint,
    before: Option<&str>,
    after: Option<&str>,
) -> Result<(), WalkError> {
    let Some(set) = backup.gtid.as_deref() else {
        return Ok(());
    };
    let wrong = |what: String| {
        Err(WalkError::NotItsHistory(format!(
            "backup {} (binlog {}, GTID {set}) is not of this archive's history: {what}; \
             another server's binlog with the same file names, or the server was \
             re-initialized",
            backup.id, backup.position
        )))
    };
    if let Some(g) = before
        && gtid_set_contains(set, g) == Some(false)
    {
        return wrong(format!(
            "the archive's transaction right before its coordinates is {g}, which its GTID \
             position does not hold"
        ));
    }
    if let Some(g) = after
        && gtid_set_contains(set, g) == Some(true)
    {
        return wrong(format!(
            "the archive's transaction right after its coordinates is {g}, which its GTID \
             position already holds"
        ));
    }
    Ok(())
}

fn not_a_boundary(backup: &BackupPoint) -> WalkError {
    WalkError::NotABoundary(format!(
        "backup {}'s binlog coordinates {} are not between two transactions of the archive",
        backup.id, backup.position
    ))
}

fn damaged(s: &Segment, pos: u64, what: &str) -> PlanError {
    PlanError::Archive(format!(
        "segment {}:{}-{} is damaged at {pos}: {what}",
        s.file, s.start, s.end
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::binlog::event::tests::event;
    use crate::binlog::segment::{Gap, GtidRange, StoreError};

    /// An archive in memory, and the events to fill it, written as a server would.
    #[derive(Default)]
    struct Arch {
        records: Vec<Record>,
        bytes: HashMap<(String, u64), Vec<u8>>,
        file: String,
        pos: u64,
        fde: Vec<u8>,
        cur: Vec<u8>,
        cur_start: u64,
        times: Option<(u32, u32)>,
        events: u64,
        gtids: Vec<GtidRange>,
        in_txn: bool,
        rotate_to: Option<String>,
        /// The archive's name, and the server recorded in the segments cut from now on.
        name: Option<String>,
        server: Option<String>,
    }

    fn fde() -> Vec<u8> {
        let mut body = vec![4, 0];
        body.extend_from_slice(&[b'x'; 50]);
        body.extend_from_slice(&[0; 4]);
        body.push(19);
        body.extend_from_slice(&[13, 0, 8]);
        body.push(1); // CRC32
        let len = (HEADER_LEN + body.len() + 4) as u32;
        event(kind::FORMAT_DESCRIPTION, 1, 4 + len, 0, &body)
    }

    fn query_body(text: &str) -> Vec<u8> {
        let mut b = vec![0; 13];
        b[8] = 1; // db "d"
        b.extend_from_slice(b"d\0");
        b.extend_from_slice(text.as_bytes());
        b
    }

    impl Arch {
        fn new(file: &str) -> Arch {
            let fde = fde();
            let pos = FIRST_EVENT_POS + fde.len() as u64;
            Arch {
                file: file.into(),
                pos,
                cur_start: pos,
                fde,
                ..Default::default()
            }
        }

        fn push(&mut self, k: u8, ts: u32, body: &[u8]) {
            let len = (HEADER_LEN + body.len() + 4) as u64;
            let ev = event(k, ts, (self.pos + len) as u32, 0, body);
            self.pos += len;
            self.cur.extend_from_slice(&ev);
            self.events += 1;
            let t = self.times.get_or_insert((ts, ts));
            t.1 = ts;
        }

        fn gtid(&mut self, seq: u64, ts: u32, standalone: bool) {
            let mut b = seq.to_le_bytes().to_vec();
            b.extend_from_slice(&0u32.to_le_bytes());
            b.push(u8::from(standalone));
            self.push(kind::GTID, ts, &b);
            match self.gtids.first_mut() {
                Some(r) => {
                    r.last = seq;
                    r.count += 1;
                }
                None => self.gtids.push(GtidRange {
                    domain: 0,
                    server_id: 1,
                    first: seq,
                    last: seq,
                    count: 1,
                }),
            }
        }

        /// A transaction 0-1-seq: GTID, INSERT, (cut here if asked), XID.
        fn txn(&mut self, seq: u64, ts: u32, cut_inside: bool) -> (u64, u64) {
            let start = self.pos;
            self.gtid(seq, ts, false);
            self.in_txn = true;
            self.push(kind::QUERY, ts, &query_body("INSERT INTO t VALUES (1)"));
            if cut_inside {
                self.cut();
            }
            self.push(kind::XID, ts, &7u64.to_le_bytes());
            self.in_txn = false;
            (start, self.pos)
        }

        fn ddl(&mut self, seq: u64, ts: u32, text: &str) {
            self.gtid(seq, ts, true);
            self.push(kind::QUERY, ts, &query_body(text));
        }

        /// Commits the events so far as a segment.
        fn cut(&mut self) {
            if self.cur.is_empty() {
                return;
            }
            let times = self.times.take().unwrap();
            let s = Segment {
                file: self.file.clone(),
                start: self.cur_start,
                end: self.pos,
                events: std::mem::take(&mut self.events),
                first_event_time: times.0,
                last_event_time: times.1,
                gtids: std::mem::take(&mut self.gtids),
                ends_in_transaction: self.in_txn,
                rotate_to: self.rotate_to.take(),
                ends_with_stop: false,
                format_description: self.fde.clone(),
                crc32: crc32fast::hash(&self.cur),
                server: self.server.clone(),
            };
            self.bytes
                .insert((s.file.clone(), s.start), std::mem::take(&mut self.cur));
            self.records.push(Record::Segment(s));
            self.cur_start = self.pos;
        }

        fn rotate(&mut self, next: &str, ts: u32) {
            let mut b = 4u64.to_le_bytes().to_vec();
            b.extend_from_slice(next.as_bytes());
            self.push(kind::ROTATE, ts, &b);
            self.rotate_to = Some(next.into());
            self.cut();
            self.file = next.into();
            self.pos = FIRST_EVENT_POS + self.fde.len() as u64;
            self.cur_start = self.pos;
        }

        /// Drops what was not archived since the last cut and records a gap up to here.
        fn gap_to(&mut self, file: &str) {
            self.cur.clear();
            self.times = None;
            self.events = 0;
            self.gtids.clear();
            let after = self.records.iter().rev().find_map(|r| match r {
                Record::Segment(s) => Some(Position {
                    file: s.file.clone(),
                    pos: s.end,
                }),
                _ => None,
            });
            self.file = file.into();
            self.pos = FIRST_EVENT_POS + self.fde.len() as u64;
            self.cur_start = self.pos;
            self.records.push(Record::Gap(Gap {
                after,
                resume_at: Position {
                    file: file.into(),
                    pos: 4,
                },
                message: "Could not find first log file name in binary log index file".into(),
                recorded_at: 0,
            }));
        }

        fn here(&self) -> Position {
            Position {
                file: self.file.clone(),
                pos: self.pos,
            }
        }
    }

    impl SegmentSource for Arch {
        fn name(&self) -> Option<&str> {
            self.name.as_deref()
        }

        async fn records(&self) -> Result<Vec<Record>, StoreError> {
            Ok(self.records.clone())
        }

        async fn segment_bytes(&self, s: &Segment) -> Result<Vec<u8>, StoreError> {
            Ok(self.bytes[&(s.file.clone(), s.start)].clone())
        }
    }

    fn backup(id: &str, time: i64, at: Position, seq: u64) -> BackupPoint {
        BackupPoint {
            id: id.into(),
            time,
            position: at,
            gtid: Some(format!("0-1-{seq}")),
            source: None,
            server: None,
            databases: None,
            not_replayable: None,
        }
    }

    /// The same, of source `source` on server `server`.
    fn backup_of(
        id: &str,
        time: i64,
        at: Position,
        seq: u64,
        source: &str,
        server: &str,
    ) -> BackupPoint {
        BackupPoint {
            source: Some(source.into()),
            server: Some(server.into()),
            ..backup(id, time, at, seq)
        }
    }

    /// The GTIDs of the transactions in the plan's bytes, in order; checks every piece
    /// holds whole events.
    fn replayed(a: &Arch, p: &ReplayPlan) -> Vec<String> {
        let mut out = Vec::new();
        for piece in &p.pieces {
            let seg = &a.bytes[&(piece.segment.file.clone(), piece.segment.start)];
            let mut b = &seg[(piece.from - piece.segment.start) as usize
                ..(piece.to - piece.segment.start) as usize];
            while !b.is_empty() {
                let size = u32::from_le_bytes(b[9..13].try_into().unwrap()) as usize;
                let ev = &b[..size];
                let h = Header::parse(ev).unwrap();
                if h.kind == kind::GTID {
                    let g = event::parse_gtid(ev, &h, event::Checksum::Crc32).unwrap();
                    out.push(g.gtid.to_string());
                }
                b = &b[size..];
            }
        }
        out
    }

    use crate::binlog::event::Header;

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn seqs(range: std::ops::RangeInclusive<u64>) -> Vec<String> {
        range.map(|n| format!("0-1-{n}")).collect()
    }

    /// b.000001: txns 1..=10 at t=100+seq (segment cut inside 4 and after 6), a
    /// backup after 3; b.000002: 11..=20, the DROP at 15 (DDL), a backup after 12;
    /// the last transaction 21 unfinished.
    fn archive() -> (Arch, Vec<BackupPoint>, HashMap<u64, (Position, u64)>) {
        let mut a = Arch::new("b.000001");
        let mut at = HashMap::new();
        let mut backups = Vec::new();
        for seq in 1..=10 {
            let start = a.here();
            let (_, end) = a.txn(seq, 100 + seq as u32, seq == 4);
            at.insert(seq, (start, end));
            if seq == 3 {
                backups.push(backup("old", 104, a.here(), 3));
            }
            if seq == 6 {
                a.cut();
            }
        }
        a.rotate("b.000002", 110);
        for seq in 11..=20 {
            let start = a.here();
            if seq == 15 {
                a.ddl(15, 115, "DROP TABLE t");
                at.insert(seq, (start, a.pos));
            } else {
                let (_, end) = a.txn(seq, 100 + seq as u32, seq == 18);
                at.insert(seq, (start, end));
            }
            if seq == 12 {
                backups.push(backup("new", 113, a.here(), 12));
            }
        }
        a.gtid(21, 121, false);
        a.in_txn = true;
        a.push(kind::QUERY, 121, &query_body("INSERT INTO t VALUES (2)"));
        a.cut();
        (a, backups, at)
    }

    #[test]
    fn a_backup_whose_coordinates_are_not_a_boundary_gives_way_to_an_older_one() {
        let (a, mut backups, _) = archive();
        // A newer backup (another server's, same binlog names) pointing inside an event.
        let mut inside = backups[1].position.clone();
        inside.pos += 3;
        backups.push(backup("other", 114, inside, 12));
        let p = run(plan(&a, &backups, &Target::Latest, &[])).unwrap();
        assert_eq!(p.backup.id, "new");
        // Alone, it is refused naming it.
        let e = run(plan(&a, &backups[2..], &Target::Latest, &[])).unwrap_err();
        assert!(
            e.to_string().contains("not between two transactions"),
            "{e}"
        );
    }

    #[test]
    fn latest_replays_every_complete_transaction_after_the_newest_backup() {
        let (a, backups, _) = archive();
        let p = run(plan(&a, &backups, &Target::Latest, &[])).unwrap();
        assert_eq!(p.backup.id, "new");
        assert_eq!(replayed(&a, &p), seqs(13..=20), "21 is unfinished");
        assert_eq!(p.transactions, 8);
        assert_eq!(p.first.as_ref().unwrap().gtid.as_deref(), Some("0-1-13"));
        assert_eq!(p.last.as_ref().unwrap().gtid.as_deref(), Some("0-1-20"));
        assert_eq!(
            p.stop.next.as_ref().unwrap().gtid.as_deref(),
            Some("0-1-21")
        );
        assert!(
            p.describe()
                .iter()
                .any(|l| l.starts_with("stop point: b.000002:"))
        );
    }

    #[test]
    fn a_time_stops_before_the_first_transaction_after_it_whole_transactions_only() {
        let (a, backups, at) = archive();
        // 108.5 s: transactions 1..=8 are at or before it.
        let p = run(plan(&a, &backups, &Target::Time(108_500_000), &[])).unwrap();
        assert_eq!(p.backup.id, "old", "the newer backup is after the target");
        assert_eq!(replayed(&a, &p), seqs(4..=8));
        assert_eq!(
            p.stop.at,
            Position {
                file: "b.000001".into(),
                pos: at[&8].1
            }
        );
        assert_eq!(p.stop.next.as_ref().unwrap().gtid.as_deref(), Some("0-1-9"));
        // The whole second counts: 108 exactly is the same.
        let q = run(plan(&a, &backups, &Target::Time(108_000_000), &[])).unwrap();
        assert_eq!(replayed(&a, &q), seqs(4..=8));
        // Across the rotate, from the newer backup.
        let r = run(plan(&a, &backups, &Target::Time(119_000_000), &[])).unwrap();
        assert_eq!(r.backup.id, "new");
        assert_eq!(replayed(&a, &r), seqs(13..=19));
        // Before any backup: refused; after the archive's end: refused.
        let e = run(plan(&a, &backups, &Target::Time(50_000_000), &[])).unwrap_err();
        assert!(e.to_string().contains("no backup was taken before"), "{e}");
        let e = run(plan(&a, &backups, &Target::Time(500_000_000), &[])).unwrap_err();
        assert!(e.to_string().contains("--to-latest"), "{e}");
    }

    #[test]
    fn a_gtid_is_included_and_the_backup_is_the_newest_without_it() {
        let (a, backups, _) = archive();
        let t = Target::Gtid(normalize_gtid("0-1-4").unwrap());
        let p = run(plan(&a, &backups, &t, &[])).unwrap();
        assert_eq!(p.backup.id, "old");
        assert_eq!(replayed(&a, &p), seqs(4..=4), "4 spans two segments");
        let t = Target::Gtid("0-1-18".into());
        let p = run(plan(&a, &backups, &t, &[])).unwrap();
        assert_eq!(p.backup.id, "new");
        assert_eq!(replayed(&a, &p), seqs(13..=18));
        let e = run(plan(&a, &backups, &Target::Gtid("0-1-99".into()), &[])).unwrap_err();
        assert!(
            e.to_string()
                .contains("0-1-99 is not in the binlog archive"),
            "{e}"
        );
        let e = run(plan(&a, &backups, &Target::Gtid("0-1-2".into()), &[])).unwrap_err();
        assert!(e.to_string().contains("no backup was taken before"), "{e}");
    }

    #[test]
    fn a_position_inside_a_transaction_stops_before_it() {
        let (a, backups, at) = archive();
        let (start18, end18) = at[&18].clone();
        for pos in [start18.pos + 30, end18 - 1] {
            let t = Target::Position(Position {
                file: "b.000002".into(),
                pos,
            });
            let p = run(plan(&a, &backups, &t, &[])).unwrap();
            assert_eq!(replayed(&a, &p), seqs(13..=17), "at {pos}");
            assert_eq!(p.stop.at.pos, start18.pos);
        }
        let t = Target::Position(Position {
            file: "b.000002".into(),
            pos: end18,
        });
        let p = run(plan(&a, &backups, &t, &[])).unwrap();
        assert_eq!(replayed(&a, &p), seqs(13..=18));
        // In the first file: the older backup, up to the end of that file if need be.
        let t = Target::Position(Position {
            file: "b.000001".into(),
            pos: at[&6].1,
        });
        let p = run(plan(&a, &backups, &t, &[])).unwrap();
        assert_eq!(p.backup.id, "old");
        assert_eq!(replayed(&a, &p), seqs(4..=6));
        let t = Target::Position(Position {
            file: "b.000009".into(),
            pos: 4,
        });
        assert!(run(plan(&a, &backups, &t, &[])).is_err());
    }

    impl Arch {
        /// The prepared half of XA transaction `xid` (gtrid, bqual '', format 1), as
        /// MariaDB logs it: GTID (FL_PREPARED_XA and the XID), a row statement, XA END,
        /// XA_PREPARE.
        fn xa_prepare(&mut self, seq: u64, ts: u32, xid: &str) {
            let mut b = seq.to_le_bytes().to_vec();
            b.extend_from_slice(&0u32.to_le_bytes());
            b.push(64);
            b.extend_from_slice(&1u32.to_le_bytes());
            b.extend_from_slice(&[xid.len() as u8, 0]);
            b.extend_from_slice(xid.as_bytes());
            self.push(kind::GTID, ts, &b);
            self.gtids_seen(seq);
            self.in_txn = true;
            self.push(kind::QUERY, ts, &query_body("INSERT INTO t VALUES (2)"));
            self.push(
                kind::QUERY,
                ts,
                &query_body(&format!("XA END {}", xid_text(xid))),
            );
            let mut p = vec![0u8];
            p.extend_from_slice(&1u32.to_le_bytes());
            p.extend_from_slice(&(xid.len() as u32).to_le_bytes());
            p.extend_from_slice(&0u32.to_le_bytes());
            p.extend_from_slice(xid.as_bytes());
            self.push(kind::XA_PREPARE, ts, &p);
            self.in_txn = false;
        }

        /// `XA COMMIT`/`XA ROLLBACK` of `xid`, a transaction of its own.
        fn xa_end(&mut self, seq: u64, ts: u32, xid: &str, commit: bool) {
            self.gtid(seq, ts, true);
            let verb = if commit { "COMMIT" } else { "ROLLBACK" };
            self.push(
                kind::QUERY,
                ts,
                &query_body(&format!("XA {verb} {}", xid_text(xid))),
            );
        }

        fn gtids_seen(&mut self, seq: u64) {
            match self.gtids.first_mut() {
                Some(r) => {
                    r.last = seq;
                    r.count += 1;
                }
                None => self.gtids.push(GtidRange {
                    domain: 0,
                    server_id: 1,
                    first: seq,
                    last: seq,
                    count: 1,
                }),
            }
        }
    }

    /// `X'6869',X'',1` as the server writes an XID in its statements.
    fn xid_text(xid: &str) -> String {
        let hex: String = xid.bytes().map(|c| format!("{c:02X}")).collect();
        format!("X'{hex}',X'',1")
    }

    /// b.000001: 1, the prepared half of p1 (2), 3 | backup B | p1's XA COMMIT (4), 5,
    /// p2 prepared (6) and rolled back (7); a segment cut after 3 and at the end. A
    /// backup A after 1 too.
    fn xa_archive() -> (Arch, BackupPoint, BackupPoint) {
        let mut a = Arch::new("b.000001");
        a.txn(1, 101, false);
        let at_a = a.here();
        a.xa_prepare(2, 102, "p1");
        a.txn(3, 103, false);
        a.cut();
        let at_b = a.here();
        a.xa_end(4, 104, "p1", true);
        a.txn(5, 105, false);
        a.xa_prepare(6, 106, "p2");
        a.xa_end(7, 107, "p2", false);
        a.cut();
        (a, backup("A", 0, at_a, 1), backup("B", 1, at_b, 3))
    }

    #[test]
    fn an_xa_transaction_prepared_before_the_backup_is_replayed_first() {
        let (a, _, b) = xa_archive();
        let p = run(plan(&a, std::slice::from_ref(&b), &Target::Latest, &[])).unwrap();
        assert_eq!(
            replayed(&a, &p),
            seqs(2..=2)
                .into_iter()
                .chain(seqs(4..=7))
                .collect::<Vec<_>>()
        );
        assert_eq!(p.first.as_ref().unwrap().gtid.as_deref(), Some("0-1-2"));
        assert_eq!(p.transactions, 5);
        assert!(
            p.describe()
                .iter()
                .any(|l| l.starts_with("replayed first: transaction 0-1-2")
                    && l.contains("XA transaction x'7031',x'',1")),
            "{:#?}",
            p.describe()
        );
        // Its prepared half not archived (the segment before the coordinates lost): its
        // XA COMMIT refuses, naming it; skipped knowingly, the rest is replayed.
        let mut lost = a;
        lost.records.remove(0);
        let e = run(plan(&lost, std::slice::from_ref(&b), &Target::Latest, &[])).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("transaction 0-1-4")
                && m.contains("XA COMMIT of XA transaction x'7031',x'',1")
                && m.contains("--skip-gtid 0-1-4"),
            "{m}"
        );
        let skip = vec!["0-1-4".to_string()];
        let p = run(plan(
            &lost,
            std::slice::from_ref(&b),
            &Target::Latest,
            &skip,
        ))
        .unwrap();
        assert_eq!(replayed(&lost, &p), seqs(5..=7));
        // A drill's window ends before it.
        let p = run(plan(
            &lost,
            std::slice::from_ref(&b),
            &Target::EndOfWindow,
            &[],
        ))
        .unwrap();
        assert!(replayed(&lost, &p).is_empty());
        assert!(
            p.stop.why.starts_with("the next transaction 0-1-4"),
            "{}",
            p.stop.why
        );
    }

    /// An XA_PREPARE event's body for `xid` (gtrid, bqual '', format 1).
    fn xa_prepare_body(xid: &str) -> Vec<u8> {
        let mut p = vec![0u8];
        p.extend_from_slice(&1u32.to_le_bytes());
        p.extend_from_slice(&(xid.len() as u32).to_le_bytes());
        p.extend_from_slice(&0u32.to_le_bytes());
        p.extend_from_slice(xid.as_bytes());
        p
    }

    /// MySQL without GTIDs (gtid_mode OFF) opens each group with an anonymous GTID
    /// event: the prepared half before the backup is found (and replayed first) all the
    /// same, not taken for missing, and has no GTID.
    #[test]
    fn an_xa_half_prepared_before_the_backup_is_found_by_its_anonymous_gtid() {
        let mut a = Arch::new("b.000001");
        let anonymous = |a: &mut Arch, ts: u32| a.push(kind::MYSQL_ANONYMOUS_GTID, ts, &[0; 42]);
        anonymous(&mut a, 101);
        a.in_txn = true;
        a.push(kind::QUERY, 101, &query_body("BEGIN"));
        a.push(kind::QUERY, 101, &query_body("INSERT INTO t VALUES (1)"));
        a.push(kind::XID, 101, &7u64.to_le_bytes());
        a.in_txn = false;
        let half = a.here();
        anonymous(&mut a, 102);
        a.in_txn = true;
        a.push(
            kind::QUERY,
            102,
            &query_body(&format!("XA START {}", xid_text("p1"))),
        );
        a.push(kind::QUERY, 102, &query_body("INSERT INTO t VALUES (2)"));
        a.push(
            kind::QUERY,
            102,
            &query_body(&format!("XA END {}", xid_text("p1"))),
        );
        a.push(kind::XA_PREPARE, 102, &xa_prepare_body("p1"));
        a.in_txn = false;
        let half_end = a.here();
        a.cut();
        let mut b = backup("B", 1, a.here(), 0);
        b.gtid = None;
        anonymous(&mut a, 104);
        a.push(
            kind::QUERY,
            104,
            &query_body(&format!("XA COMMIT {}", xid_text("p1"))),
        );
        a.cut();
        let p = run(plan(&a, std::slice::from_ref(&b), &Target::Latest, &[])).unwrap();
        assert_eq!(
            (p.pieces[0].from, p.pieces[0].to),
            (half.pos, half_end.pos),
            "{:#?}",
            p.pieces
        );
        assert_eq!(p.transactions, 2);
        assert_eq!(p.first.as_ref().unwrap().start, half);
        assert_eq!(p.first.as_ref().unwrap().gtid, None);
        assert!(
            p.describe()
                .iter()
                .any(|l| l.starts_with("replayed first: transaction")),
            "{:#?}",
            p.describe()
        );
    }

    /// A drill (`EndOfWindow`) of a partial backup: the XA COMMIT of a transaction
    /// prepared before the backup by a statement writing into a kept and another database
    /// ends the window, as any such transaction does; a restore past it refuses.
    #[test]
    fn a_drill_ends_before_the_xa_commit_of_a_mixed_half_prepared_before_a_partial_backup() {
        let mut a = Arch::new("b.000001");
        a.rows_txn(1, 101, &[&[("shop", "t")]], None);
        // p1's prepared half (MariaDB: GTID with FL_PREPARED_XA and the XID).
        let mut g = 2u64.to_le_bytes().to_vec();
        g.extend_from_slice(&0u32.to_le_bytes());
        g.push(64);
        g.extend_from_slice(&1u32.to_le_bytes());
        g.extend_from_slice(&[2, 0]);
        g.extend_from_slice(b"p1");
        a.push(kind::GTID, 102, &g);
        a.gtids_seen(2);
        a.in_txn = true;
        a.rows(102, &[("shop", "t"), ("other", "u")]);
        a.push(
            kind::QUERY,
            102,
            &query_in("shop", &format!("XA END {}", xid_text("p1"))),
        );
        a.push(kind::XA_PREPARE, 102, &xa_prepare_body("p1"));
        a.in_txn = false;
        a.cut();
        let b = partial(&a, 2);
        a.xa_end(3, 103, "p1", true);
        a.rows_txn(4, 104, &[&[("shop", "t")]], None);
        a.cut();
        let e = run(plan(&a, std::slice::from_ref(&b), &Target::Latest, &[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("XA COMMIT of XA transaction x'7031',x'',1")
                && e.contains("cannot be replayed for a backup of")
                && e.contains("--skip-gtid 0-1-3"),
            "{e}"
        );
        let p = run(plan(
            &a,
            std::slice::from_ref(&b),
            &Target::EndOfWindow,
            &[],
        ))
        .unwrap();
        assert!(replayed(&a, &p).is_empty(), "{:?}", replayed(&a, &p));
        assert!(
            p.stop.why.starts_with("the next transaction 0-1-3")
                && p.stop.why.contains("cannot be replayed for a backup of"),
            "{}",
            p.stop.why
        );
    }

    /// An XID used again: transaction p1 prepared and committed before the backup, then
    /// a lone XA COMMIT p1 after it (its own prepared half never binlogged, as a read-only
    /// XA transaction's on MariaDB before MDEV-25616's fix). The earlier p1 is in the
    /// backup: replayed first it would be committed twice. Refused as not archived.
    #[test]
    fn an_xa_half_ended_before_the_backup_is_not_replayed_again() {
        let mut a = Arch::new("b.000001");
        a.txn(1, 101, false);
        a.xa_prepare(2, 102, "p1");
        a.xa_end(3, 103, "p1", true);
        a.cut();
        let b = backup("B", 1, a.here(), 3);
        a.xa_end(4, 104, "p1", true);
        a.txn(5, 105, false);
        a.cut();
        let e = run(plan(&a, std::slice::from_ref(&b), &Target::Latest, &[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("transaction 0-1-4")
                && e.contains("XA COMMIT of XA transaction x'7031',x'',1")
                && e.contains("not in the binlog archive"),
            "{e}"
        );
        // Its XA ROLLBACK: left out, nothing replayed first.
        let mut a = Arch::new("b.000001");
        a.xa_prepare(2, 102, "p1");
        a.xa_end(3, 103, "p1", false);
        a.cut();
        let b = backup("B", 1, a.here(), 3);
        a.xa_end(4, 104, "p1", false);
        a.txn(5, 105, false);
        a.cut();
        let p = run(plan(&a, std::slice::from_ref(&b), &Target::Latest, &[])).unwrap();
        assert_eq!(replayed(&a, &p), ["0-1-5"]);
    }

    #[test]
    fn xa_statements_are_told_from_others() {
        let end = ["XA COMMIT ", "XA ROLLBACK "];
        assert_eq!(
            xa_statement(b"  xa commit X'7031', X'',1", &end).as_deref(),
            Some("x'7031',x'',1")
        );
        assert_eq!(xa_statement(b"XA COMMIT X'70',X'',1 ONE PHASE", &end), None);
        assert_eq!(xa_statement(b"COMMIT", &end), None);
        assert_eq!(xa_statement(b"XA", &end), None);
        assert_eq!(xa_statement(b"XA END X'70',X'',1", &end), None);
    }

    #[test]
    fn skipping_a_prepared_xa_half_leaves_out_its_end() {
        let (a, backup_a, _) = xa_archive();
        let skip = vec!["0-1-2".to_string(), "0-1-6".to_string()];
        let p = run(plan(
            &a,
            std::slice::from_ref(&backup_a),
            &Target::Latest,
            &skip,
        ))
        .unwrap();
        assert_eq!(replayed(&a, &p), ["0-1-3", "0-1-5"]);
        let said = p.describe();
        for (end, half) in [("0-1-4", "0-1-2"), ("0-1-7", "0-1-6")] {
            assert!(
                said.iter()
                    .any(|l| l.starts_with(&format!("skipped: transaction {end}"))
                        && l.contains(&format!("half, transaction {half}"))),
                "{said:#?}"
            );
        }
        // Skipping only the XA COMMIT: the transaction stays prepared, the plan says so.
        let skip = vec!["0-1-4".to_string()];
        let p = run(plan(
            &a,
            std::slice::from_ref(&backup_a),
            &Target::Latest,
            &skip,
        ))
        .unwrap();
        assert_eq!(
            replayed(&a, &p),
            ["0-1-2", "0-1-3", "0-1-5", "0-1-6", "0-1-7"]
        );
        assert!(
            p.describe().iter().any(|l| l.contains("stays PREPARED")),
            "{:#?}",
            p.describe()
        );
    }

    #[test]
    fn a_skipped_gtid_is_cut_out_and_the_rest_replayed() {
        let (a, backups, _) = archive();
        let skip = vec![normalize_gtid("0-1-15").unwrap()];
        let p = run(plan(&a, &backups, &Target::Latest, &skip)).unwrap();
        let mut want = seqs(13..=20);
        want.retain(|g| g != "0-1-15");
        assert_eq!(replayed(&a, &p), want);
        assert_eq!(p.skipped.len(), 1);
        assert!(
            p.describe()
                .iter()
                .any(|l| l.starts_with("skipped: transaction 0-1-15"))
        );
        // Skipping one that spans segments, and one not in the range.
        let p = run(plan(&a, &backups, &Target::Latest, &["0-1-18".into()])).unwrap();
        assert!(!replayed(&a, &p).contains(&"0-1-18".to_string()));
        assert_eq!(replayed(&a, &p).len(), 7);
        let e = run(plan(&a, &backups, &Target::Latest, &["0-1-2".into()])).unwrap_err();
        assert!(e.to_string().contains("--skip-gtid 0-1-2"), "{e}");
    }

    #[test]
    fn a_gap_between_the_backup_and_the_target_is_refused_naming_it() {
        let mut a = Arch::new("b.000001");
        a.txn(1, 101, false);
        let b1 = backup("before-gap", 102, a.here(), 1);
        a.txn(2, 102, false);
        a.cut();
        a.txn(3, 103, false); // lost
        a.gap_to("b.000003");
        a.txn(4, 104, false);
        let b2 = backup("after-gap", 105, a.here(), 4);
        a.txn(5, 105, false);
        a.cut();
        let backups = vec![b1, b2];
        let e = run(plan(&a, &backups, &Target::Gtid("0-1-2".into()), &[])).unwrap();
        assert_eq!(replayed(&a, &e), seqs(2..=2));
        let e = run(plan(&a, &backups[..1], &Target::Latest, &[])).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("GAP IN THE BINLOG ARCHIVE") && m.contains("b.000001:"),
            "{m}"
        );
        assert!(m.contains("b.000003:4"), "{m}");
        let p = run(plan(&a, &backups, &Target::Latest, &[])).unwrap();
        assert_eq!(p.backup.id, "after-gap");
        assert_eq!(replayed(&a, &p), seqs(5..=5));
        // A drill's replay: up to the gap, which ends the window.
        let p = run(plan(&a, &backups[..1], &Target::EndOfWindow, &[])).unwrap();
        assert_eq!(p.backup.id, "before-gap");
        assert_eq!(replayed(&a, &p), seqs(2..=2));
        assert!(
            p.stop
                .why
                .starts_with("a gap in the archive: nothing archived from b.000001:")
                && p.stop.why.contains("to b.000003:4"),
            "{}",
            p.stop.why
        );
        // Without a gap after the backup, the end of the archive.
        let p = run(plan(&a, &backups[1..], &Target::EndOfWindow, &[])).unwrap();
        assert_eq!(replayed(&a, &p), seqs(5..=5));
        assert_eq!(p.stop.why, "the end of the archive");
    }

    #[test]
    fn segments_that_do_not_follow_each_other_are_refused() {
        let (mut a, backups, _) = archive();
        // Remove a segment in the middle of b.000002.
        let i = a
            .records
            .iter()
            .position(|r| matches!(r, Record::Segment(s) if s.file == "b.000002" && s.ends_in_transaction))
            .unwrap();
        a.records.remove(i);
        let e = run(plan(&a, &backups, &Target::Latest, &[])).unwrap_err();
        assert!(e.to_string().contains("not contiguous"), "{e}");
    }

    /// A segment object lost from the archive (deleted, never listed): a restore that
    /// would cross where it was is refused naming the place; one that ends before it is
    /// not; when it was the last segment the archive simply ends earlier, which only
    /// `Latest` accepts (a time past the archive's end is not known to be reached).
    #[test]
    fn a_lost_segment_is_refused_across_and_shortens_the_archive_at_its_end() {
        let segment_at = |a: &Arch, pick: &dyn Fn(&Segment) -> bool| {
            a.records
                .iter()
                .position(|r| matches!(r, Record::Segment(s) if pick(s)))
                .unwrap()
        };
        // The end of b.000001 (its ROTATE segment) lost: b.000002 does not follow.
        let (mut a, backups, _) = archive();
        let i = segment_at(&a, &|s| s.rotate_to.is_some());
        a.records.remove(i);
        for t in [
            Target::Latest,
            Target::Time(119_000_000),
            Target::Gtid("0-1-12".into()),
        ] {
            let e = run(plan(&a, &backups[..1], &t, &[]))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("not contiguous") && e.contains("b.000001:") && e.contains("ROTATE"),
                "{t}: {e}"
            );
        }
        // Before the hole: fine.
        let p = run(plan(&a, &backups[..1], &Target::Time(105_000_000), &[])).unwrap();
        assert_eq!(replayed(&a, &p), seqs(4..=5));
        // The first segment of b.000002 lost: b.000002 no longer starts at its first event.
        let (mut a, backups, _) = archive();
        let i = segment_at(&a, &|s| s.file == "b.000002");
        a.records.remove(i);
        let e = run(plan(&a, &backups[..1], &Target::Latest, &[])).unwrap_err();
        assert!(
            e.to_string().contains("does not start at its first event"),
            "{e}"
        );
        // The last segment lost (18's end .. 21): the archive ends inside 18.
        let (mut a, backups, _) = archive();
        a.records.pop();
        let p = run(plan(&a, &backups, &Target::Latest, &[])).unwrap();
        assert_eq!(replayed(&a, &p), seqs(13..=17), "the archive ends earlier");
        // 18 began after 117.5 s: the stop point is archived.
        let p = run(plan(&a, &backups, &Target::Time(117_500_000), &[])).unwrap();
        assert_eq!(replayed(&a, &p), seqs(13..=17));
        // 119 s is past the last archived event: refused, never "up to what is there".
        let e = run(plan(&a, &backups, &Target::Time(119_000_000), &[])).unwrap_err();
        assert!(e.to_string().contains("--to-latest"), "{e}");
        let e = run(plan(&a, &backups, &Target::Gtid("0-1-19".into()), &[])).unwrap_err();
        assert!(e.to_string().contains("not in the binlog archive"), "{e}");
    }

    /// After a STOP the archive goes on only with the file numbered next.
    #[test]
    fn a_file_missing_after_a_stop_is_refused() {
        let mut a = Arch::new("b.000001");
        a.txn(1, 101, false);
        let b = backup("b", 102, a.here(), 1);
        a.txn(2, 102, false);
        a.push(kind::STOP, 103, &[]);
        a.cut();
        if let Some(Record::Segment(s)) = a.records.last_mut() {
            s.ends_with_stop = true;
        }
        a.file = "b.000003".into();
        a.pos = FIRST_EVENT_POS + a.fde.len() as u64;
        a.cur_start = a.pos;
        a.txn(3, 104, false);
        a.cut();
        let e = run(plan(&a, &[b], &Target::Latest, &[])).unwrap_err();
        assert!(
            e.to_string()
                .contains("b.000003 does not come right after b.000001"),
            "{e}"
        );
    }

    #[test]
    fn a_backup_not_in_the_archive_is_named() {
        let (a, _, _) = archive();
        let b = backup(
            "elsewhere",
            100,
            Position {
                file: "other.000001".into(),
                pos: 500,
            },
            0,
        );
        let e = run(plan(&a, &[b], &Target::Latest, &[])).unwrap_err();
        assert!(
            e.to_string().contains("elsewhere at other.000001:500"),
            "{e}"
        );
    }

    /// The backup is chosen by its coordinates against the stop point found in the
    /// archive, never by its commit time (the rbackup host's clock).
    #[test]
    fn the_backup_is_chosen_by_coordinates_whatever_the_commit_clock_says() {
        let (a, backups, at) = archive();
        let pos = |seq: u64| Position {
            file: if seq <= 10 { "b.000001" } else { "b.000002" }.into(),
            pos: at[&seq].1,
        };
        // Host clock ahead: "new" (after 12, events stamped 112) committed at 200. For
        // 119 it serves, and is the newest that does.
        let mut ahead = backups.clone();
        ahead[1].time = 200;
        let p = run(plan(&a, &ahead, &Target::Time(119_000_000), &[])).unwrap();
        assert_eq!(p.backup.id, "new");
        assert_eq!(replayed(&a, &p), seqs(13..=19));
        // Committed a second after the target, its snapshot before it: after 7 (stamped
        // 107), committed at 109; the target 108.5.
        let mut late = backups.clone();
        late.push(backup("snap", 109, pos(7), 7));
        let p = run(plan(&a, &late, &Target::Time(108_500_000), &[])).unwrap();
        assert_eq!(p.backup.id, "snap");
        assert_eq!(replayed(&a, &p), seqs(8..=8));
        // Host clock behind: "late" holds 9 (stamped 109) but says it was committed at
        // 100, before the target 108.5 and after "old" (99): never chosen, whatever
        // the order of commit times.
        let mut behind = backups.clone();
        behind[0].time = 99;
        behind.push(backup("late", 100, pos(9), 9));
        let p = run(plan(&a, &behind, &Target::Time(108_500_000), &[])).unwrap();
        assert_eq!(p.backup.id, "old");
        assert_eq!(replayed(&a, &p), seqs(4..=8));
        // Alone, it is refused rather than loaded with nothing replayed.
        let e = run(plan(&a, &behind[2..], &Target::Time(108_500_000), &[])).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("no backup was taken before") && m.contains("late at b.000001:"),
            "{m}"
        );
        // The same backup at exactly the stop point: 108.9 still excludes 9 (stamped 109
        // is after 108.9), 109.0 includes it.
        let p = run(plan(&a, &behind, &Target::Time(109_000_000), &[])).unwrap();
        assert_eq!(p.backup.id, "late");
        assert!(replayed(&a, &p).is_empty());
        // By GTID and position too: the newest by coordinates, whatever the times.
        let mut skewed = backups.clone();
        skewed[0].time = 500;
        skewed[1].time = 1;
        let p = run(plan(&a, &skewed, &Target::Gtid("0-1-18".into()), &[])).unwrap();
        assert_eq!(p.backup.id, "new");
        let p = run(plan(&a, &skewed, &Target::Latest, &[])).unwrap();
        assert_eq!(p.backup.id, "new");
        let t = Target::Position(pos(6));
        let p = run(plan(&a, &skewed, &t, &[])).unwrap();
        assert_eq!(p.backup.id, "old");
        assert_eq!(replayed(&a, &p), seqs(4..=6));
    }

    /// A backup whose coordinates are after the stop point is never chosen, for any kind
    /// of target and any commit time.
    #[test]
    fn a_backup_after_the_stop_point_is_never_chosen() {
        let (a, backups, at) = archive();
        let after_9 = Position {
            file: "b.000001".into(),
            pos: at[&9].1,
        };
        for time in [0, 105, 109, 10_000] {
            let mut bs = backups.clone();
            bs.push(backup("late", time, after_9.clone(), 9));
            for (t, want) in [
                (Target::Time(108_500_000), "old"),
                (Target::Gtid("0-1-8".into()), "old"),
                (
                    Target::Position(Position {
                        file: "b.000001".into(),
                        pos: at[&8].1,
                    }),
                    "old",
                ),
                (Target::Time(109_000_000), "late"),
                (Target::Latest, "new"),
            ] {
                let p = run(plan(&a, &bs, &t, &[])).unwrap();
                assert_eq!(p.backup.id, want, "{t} with late committed at {time}");
                if want == "old" {
                    assert_eq!(replayed(&a, &p), seqs(4..=8), "{t}");
                }
            }
        }
    }

    /// An archive of source "a" (server srv-a in its segments) and backups of "a" and of
    /// "b": a restore never pairs b's backup with a's archive.
    #[test]
    fn backups_of_another_source_are_never_paired_with_the_archive() {
        let mut a = Arch::new("b.000001");
        a.name = Some("a".into());
        a.server = Some("srv-a".into());
        let mut at = Vec::new();
        for seq in 1..=6 {
            a.txn(seq, 100 + seq as u32, false);
            at.push(a.here());
            if seq % 2 == 0 {
                a.cut();
            }
        }
        let ours = backup_of("ours", 100, at[1].clone(), 2, "a", "srv-a");
        // Server b's backup, same binlog names, newer coordinates and commit time.
        let theirs = backup_of("theirs", 200, at[3].clone(), 4, "b", "srv-b");
        let bs = vec![ours.clone(), theirs.clone()];
        for (t, last) in [(Target::Latest, 6), (Target::Time(105_500_000), 5)] {
            let p = run(plan(&a, &bs, &t, &[])).unwrap();
            assert_eq!(p.backup.id, "ours", "{t}");
            assert_eq!(replayed(&a, &p), seqs(3..=last));
            assert!(p.notes.is_empty());
        }
        // Only the other server's: refused, naming both sides.
        let e = run(plan(
            &a,
            std::slice::from_ref(&theirs),
            &Target::Latest,
            &[],
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("no backup in the repository is of the source")
                && e.contains("(a, server srv-a)")
                && e.contains("b (server srv-b)"),
            "{e}"
        );
        // Named for this archive (--source a) on a server of another identity: matched
        // by name, then refused at its segment (a server re-initialized under the name).
        let renamed = backup_of("renamed", 300, at[3].clone(), 4, "a", "srv-new");
        let p = run(plan(
            &a,
            &[ours.clone(), renamed.clone()],
            &Target::Latest,
            &[],
        ))
        .unwrap();
        assert_eq!(p.backup.id, "ours");
        let e = run(plan(&a, &[renamed], &Target::Latest, &[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("another server's binlog"), "{e}");
        // Matched by the server alone (the archiver was named with --source, the backup
        // was not).
        let by_server = backup_of("by-server", 100, at[1].clone(), 2, "srv-a", "srv-a");
        let p = run(plan(&a, &[by_server], &Target::Latest, &[])).unwrap();
        assert_eq!(p.backup.id, "by-server");
        // A backup that records no source (older rbackup): used, and the plan says so.
        let old = backup("old", 100, at[1].clone(), 2);
        let p = run(plan(&a, &[old, theirs], &Target::Latest, &[])).unwrap();
        assert_eq!(p.backup.id, "old");
        assert!(
            p.describe()
                .iter()
                .any(|l| l.starts_with("note: the source server of backup old could not")),
            "{:?}",
            p.describe()
        );
        // An archive whose segments record no server (an older archiver): a backup
        // named for another source cannot be checked; used, and the plan says so.
        let mut unrecorded = Arch::new("b.000001");
        unrecorded.name = Some("a".into());
        unrecorded.txn(1, 101, false);
        let x = unrecorded.here();
        unrecorded.txn(2, 102, false);
        unrecorded.cut();
        let named = backup_of("named", 100, x, 1, "srv-a", "srv-a");
        let p = run(plan(&unrecorded, &[named], &Target::Latest, &[])).unwrap();
        assert_eq!(p.notes.len(), 1, "{:?}", p.notes);
        // Segments of another server later in the archive: nothing crosses them.
        a.server = Some("srv-other".into());
        a.txn(7, 107, false);
        a.cut();
        let e = run(plan(&a, &[ours], &Target::Latest, &[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("changes servers") && e.contains("srv-other"),
            "{e}"
        );
    }

    /// A server re-initialized under the same identity and binlog names starts its GTIDs
    /// again: a backup whose GTID position disagrees with the transactions around its
    /// coordinates in the archive is not loaded; an older one that agrees serves.
    #[test]
    fn a_backup_of_another_history_at_the_same_coordinates_gives_way() {
        let (a, backups, at) = archive();
        let after_5 = Position {
            file: "b.000001".into(),
            pos: at[&5].1,
        };
        // Holds fewer transactions than the archive before its coordinates (0-1-5).
        let reinit = backup("reinit", 200, after_5.clone(), 2);
        // Holds the transaction after them (0-1-6) already.
        let ahead = backup("ahead", 200, after_5, 7);
        for b in [reinit, ahead] {
            let id = b.id.clone();
            let e = run(plan(&a, std::slice::from_ref(&b), &Target::Latest, &[]))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("backup {id} ")) && e.contains("not of this archive's history"),
                "{e}"
            );
            let p = run(plan(&a, &[backups[0].clone(), b], &Target::Latest, &[])).unwrap();
            assert_eq!(p.backup.id, "old");
        }
        // At the very end of the archive (no transaction after): the one before counts.
        let mut a = Arch::new("b.000001");
        for seq in 1..=3 {
            a.txn(seq, 100 + seq as u32, false);
        }
        a.cut();
        let e = run(plan(
            &a,
            &[backup("end", 1, a.here(), 1)],
            &Target::Latest,
            &[],
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("not of this archive's history"), "{e}");
        let p = run(plan(
            &a,
            &[backup("end", 1, a.here(), 3)],
            &Target::Latest,
            &[],
        ))
        .unwrap();
        assert_eq!(p.transactions, 0);
    }

    #[test]
    fn times_zones_and_gtids_parse() {
        assert_eq!(
            parse_time("2024-03-01 12:00:00", Some("UTC")).unwrap(),
            1_709_294_400_000_000
        );
        assert_eq!(
            parse_time("2024-03-01 13:00:00.25", Some("Europe/Berlin")).unwrap(),
            1_709_294_400_250_000
        );
        assert_eq!(
            parse_time("2024-03-01 10:30:00", Some("-01:30")).unwrap(),
            1_709_294_400_000_000
        );
        let e = parse_time("2024-10-27 02:30:00", Some("Europe/Berlin")).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        assert!(parse_time("2024-03-31 02:30:00", Some("Europe/Berlin")).is_err());
        assert!(parse_time("yesterday", None).is_err());
        assert!(parse_time("2024-03-01 12:00:00", Some("Mars/Base")).is_err());
        assert_eq!(
            format_micros(1_709_294_400_250_000),
            "2024-03-01 12:00:00.250000"
        );
        assert_eq!(normalize_gtid(" 0-01-42").unwrap(), "0-1-42");
        assert_eq!(
            normalize_gtid("3E11FA47-71CA-11E1-9E33-C80AA9429562:23").unwrap(),
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:23"
        );
        assert!(normalize_gtid("0-1").is_err());
        assert!(normalize_gtid("xyz:1").is_err());
        assert_eq!(gtid_set_contains("0-1-100,1-2-5", "0-1-100"), Some(true));
        assert_eq!(gtid_set_contains("0-1-100,1-2-5", "0-1-101"), Some(false));
        assert_eq!(gtid_set_contains("0-1-100", "2-1-1"), Some(false));
        let set =
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7,\n0b0c0d0e-71ca-11e1-9e33-c80aa9429562:1-2";
        assert_eq!(
            gtid_set_contains(set, "3e11fa47-71ca-11e1-9e33-c80aa9429562:7"),
            Some(true)
        );
        assert_eq!(
            gtid_set_contains(set, "3e11fa47-71ca-11e1-9e33-c80aa9429562:6"),
            Some(false)
        );
    }

    fn query_in(db: &str, text: &str) -> Vec<u8> {
        let mut b = vec![0; 13];
        b[8] = db.len() as u8;
        b.extend_from_slice(db.as_bytes());
        b.push(0);
        b.extend_from_slice(text.as_bytes());
        b
    }

    const TABLE_MAP: u8 = 19;
    const WRITE_ROWS: u8 = 23;
    const INTVAR: u8 = 5;

    impl Arch {
        /// A row-based statement: ANNOTATE_ROWS, a TABLE_MAP per table, one row event
        /// per table (the last flagged STMT_END).
        fn rows(&mut self, ts: u32, tables: &[(&str, &str)]) {
            self.push(kind::ANNOTATE_ROWS, ts, b"INSERT ...");
            for (i, (db, t)) in tables.iter().enumerate() {
                let mut b = vec![i as u8, 0, 0, 0, 0, 0, 1, 0];
                b.push(db.len() as u8);
                b.extend_from_slice(db.as_bytes());
                b.push(0);
                b.push(t.len() as u8);
                b.extend_from_slice(t.as_bytes());
                b.extend_from_slice(&[0, 1, 3, 0]);
                self.push(TABLE_MAP, ts, &b);
            }
            for i in 0..tables.len() {
                let end = u8::from(i + 1 == tables.len());
                self.push(
                    WRITE_ROWS,
                    ts,
                    &[i as u8, 0, 0, 0, 0, 0, end, 0, 1, 1, 0xfe, 7],
                );
            }
        }

        /// A row-based transaction of the statements `stmts` (a cut after statement
        /// `cut_after`, if given).
        fn rows_txn(
            &mut self,
            seq: u64,
            ts: u32,
            stmts: &[&[(&str, &str)]],
            cut_after: Option<usize>,
        ) {
            self.gtid(seq, ts, false);
            self.in_txn = true;
            for (i, st) in stmts.iter().enumerate() {
                self.rows(ts, st);
                if cut_after == Some(i) {
                    self.cut();
                }
            }
            self.push(kind::XID, ts, &7u64.to_le_bytes());
            self.in_txn = false;
        }

        fn stmt_txn(&mut self, seq: u64, ts: u32, db: &str, text: &str) {
            self.gtid(seq, ts, false);
            self.in_txn = true;
            self.push(INTVAR, ts, &[2, 5, 0, 0, 0, 0, 0, 0, 0]);
            self.push(kind::QUERY, ts, &query_in(db, text));
            self.push(kind::XID, ts, &7u64.to_le_bytes());
            self.in_txn = false;
        }
    }

    /// The databases of the TABLE_MAPs and QUERYs in the plan's bytes.
    fn replayed_databases(a: &Arch, p: &ReplayPlan) -> Vec<String> {
        let mut out = Vec::new();
        for piece in &p.pieces {
            let seg = &a.bytes[&(piece.segment.file.clone(), piece.segment.start)];
            let mut b = &seg[(piece.from - piece.segment.start) as usize
                ..(piece.to - piece.segment.start) as usize];
            while !b.is_empty() {
                let size = u32::from_le_bytes(b[9..13].try_into().unwrap()) as usize;
                let ev = &b[..size];
                let body = event::body(ev, event::Checksum::Crc32);
                match ev[4] {
                    TABLE_MAP => out
                        .push(String::from_utf8_lossy(&body[9..9 + body[8] as usize]).into_owned()),
                    kind::QUERY => out.push(event::query_db(ev, event::Checksum::Crc32).unwrap()),
                    INTVAR => out.push("intvar".into()),
                    _ => {}
                }
                b = &b[size..];
            }
        }
        out
    }

    fn partial(a: &Arch, seq: u64) -> BackupPoint {
        let mut b = backup("partial", 100, a.here(), seq);
        b.databases = Some(DatabaseFilter::Only(vec!["shop".into()]));
        b
    }

    #[test]
    fn whole_server_backups_first_a_partial_one_only_when_none_serves() {
        let (a, backups, at) = archive();
        let only = |id: &str, b: &BackupPoint, db: &str| BackupPoint {
            id: id.into(),
            databases: Some(DatabaseFilter::Only(vec![db.into()])),
            ..b.clone()
        };
        let (old, new) = (&backups[0], &backups[1]);
        // A newer backup of `shop` does not win over an older whole-server one.
        let shop_new = only("shop-new", new, "shop");
        let p = run(plan(
            &a,
            &[old.clone(), shop_new.clone()],
            &Target::Latest,
            &[],
        ))
        .unwrap();
        assert_eq!(p.backup.id, "old");
        assert_eq!(p.partial, None);
        assert!(p.describe().iter().all(|l| !l.contains("PARTIAL")));
        // No whole-server backup serves (the only one is after the stop point): the
        // partial one, saying so, naming the backups of other databases.
        let shop_old = only("shop-old", old, "shop");
        let blog_old = only("blog-old", old, "blog");
        let to = Target::Position(Position {
            file: at[&5].0.file.clone(),
            pos: at[&5].1,
        });
        let p = run(plan(
            &a,
            &[new.clone(), shop_old.clone(), blog_old.clone()],
            &to,
            &[],
        ))
        .unwrap();
        assert_eq!(p.backup.id, "shop-old");
        let why = p.partial.clone().unwrap();
        assert!(
            why.contains("only the databases of backup shop-old are restored (shop)")
                && why.contains("no whole-server backup of this source serves the target")
                && why.contains("new at b.000002")
                && why.contains("blog (backup blog-old)")
                && why.contains("name its ID"),
            "{why}"
        );
        assert!(
            p.describe()
                .iter()
                .any(|l| l.starts_with("PARTIAL RESTORE: only the databases")),
            "{:?}",
            p.describe()
        );
        // No whole-server backup at all.
        let p = run(plan(
            &a,
            std::slice::from_ref(&shop_new),
            &Target::Latest,
            &[],
        ))
        .unwrap();
        assert!(
            p.partial
                .as_deref()
                .unwrap()
                .contains("no whole-server backup of this source is a candidate")
        );
        // Neither serves: both reasons.
        let to = Target::Position(Position {
            file: at[&2].0.file.clone(),
            pos: at[&2].1,
        });
        let e = run(plan(&a, &[new.clone(), shop_new], &to, &[])).unwrap_err();
        assert!(e.to_string().contains("nor can a partial backup"), "{e}");
    }

    #[test]
    fn a_backup_of_part_of_a_database_never_starts_a_replay() {
        let (a, backups, _) = archive();
        let why = "the backup holds part of a database: --where leaves rows out";
        let mut new = backups[1].clone();
        new.not_replayable = Some(why.into());
        // Left out as a candidate; the plan names it, being newer.
        let p = run(plan(
            &a,
            &[backups[0].clone(), new.clone()],
            &Target::Latest,
            &[],
        ))
        .unwrap();
        assert_eq!(p.backup.id, "old");
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains("backup new") && n.contains(why)),
            "{:?}",
            p.notes
        );
        // Named alone (a backup ID, a drill): refused, naming why.
        let e = run(plan(&a, &[new], &Target::Latest, &[])).unwrap_err();
        assert!(
            matches!(&e, PlanError::Refused(m) if m.contains(why)),
            "{e}"
        );
    }

    #[test]
    fn a_partial_backup_replays_only_its_databases() {
        let mut a = Arch::new("b.000001");
        a.txn(1, 100, false);
        let b = partial(&a, 1);
        a.rows_txn(2, 101, &[&[("shop", "t")]], None);
        a.rows_txn(3, 102, &[&[("other", "t")]], None);
        a.ddl(4, 103, "CREATE DATABASE other");
        // Mixed by statement: the other database's statement is cut out, across a
        // segment cut just after it.
        a.rows_txn(
            5,
            104,
            &[
                &[("other", "t")],
                &[("shop", "t"), ("shop", "u")],
                &[("other", "x")],
            ],
            Some(0),
        );
        a.stmt_txn(6, 105, "other", "INSERT INTO t VALUES (1)");
        a.stmt_txn(7, 106, "shop", "INSERT INTO t VALUES (1)");
        a.stmt_txn(8, 107, "", "INSERT INTO shop.t VALUES (1)");
        a.stmt_txn(9, 108, "", "DROP TABLE other.t");
        a.rows_txn(10, 109, &[&[("shop", "t")]], None);
        a.cut();
        let whole = backup("whole", 100, b.position.clone(), 1);
        let p = run(plan(&a, &[whole], &Target::Latest, &[])).unwrap();
        assert_eq!(
            replayed(&a, &p),
            seqs(2..=10),
            "a whole-server backup: everything"
        );
        assert_eq!(p.other_databases, OtherDatabases::default());

        let p = run(plan(&a, std::slice::from_ref(&b), &Target::Latest, &[])).unwrap();
        assert_eq!(
            replayed(&a, &p),
            ["0-1-2", "0-1-5", "0-1-7", "0-1-8", "0-1-10"]
        );
        assert_eq!(
            replayed_databases(&a, &p),
            [
                "shop", "shop", "shop", "intvar", "shop", "intvar", "", "shop"
            ]
        );
        assert_eq!(
            p.other_databases,
            OtherDatabases {
                transactions: 4,
                statements: 2,
                statements_in: 1
            }
        );
        assert_eq!(p.transactions, 5);
        assert_eq!(p.last.as_ref().unwrap().gtid.as_deref(), Some("0-1-10"));
        let d = p.describe();
        assert!(
            d.iter()
                .any(|l| l.starts_with("databases: shop (a partial backup")),
            "{d:?}"
        );
        assert!(
            d.iter().any(|l| l == "left out: 4 transactions on other databases only; 2 statements on other databases cut out of 1 transactions replayed"),
            "{d:?}"
        );
        // A GTID target that is another database's transaction: reached, left out.
        let p = run(plan(
            &a,
            std::slice::from_ref(&b),
            &Target::Gtid("0-1-6".into()),
            &[],
        ))
        .unwrap();
        assert_eq!(replayed(&a, &p), ["0-1-2", "0-1-5"]);
        assert_eq!(p.other_databases.transactions, 3);
        // The events counted are those in the bytes replayed (cut statements not).
        let in_bytes: u64 = p
            .pieces
            .iter()
            .map(|piece| {
                let seg = &a.bytes[&(piece.segment.file.clone(), piece.segment.start)];
                let mut b = &seg[(piece.from - piece.segment.start) as usize
                    ..(piece.to - piece.segment.start) as usize];
                let mut n = 0;
                while !b.is_empty() {
                    let size = u32::from_le_bytes(b[9..13].try_into().unwrap()) as usize;
                    b = &b[size..];
                    n += 1;
                }
                n
            })
            .sum();
        assert_eq!(p.events, in_bytes);
    }

    #[test]
    fn a_statement_into_a_kept_database_from_another_is_refused_naming_it() {
        let mut a = Arch::new("b.000001");
        a.txn(1, 100, false);
        let b = partial(&a, 1);
        a.rows_txn(2, 101, &[&[("shop", "t")]], None);
        a.stmt_txn(3, 102, "other", "INSERT INTO `shop`.t VALUES (1)");
        a.rows_txn(4, 103, &[&[("shop", "t")]], None);
        a.cut();
        let e = run(plan(&a, std::slice::from_ref(&b), &Target::Latest, &[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("transaction 0-1-3")
                && e.contains("default database `other` names `shop`")
                && e.contains("--skip-gtid 0-1-3"),
            "{e}"
        );
        // A drill's replay: up to it, which ends the window.
        let p = run(plan(
            &a,
            std::slice::from_ref(&b),
            &Target::EndOfWindow,
            &[],
        ))
        .unwrap();
        assert_eq!(replayed(&a, &p), ["0-1-2"]);
        assert!(
            p.stop.why.starts_with("the next transaction 0-1-3")
                && p.stop
                    .why
                    .contains("cannot be replayed for a backup of shop only"),
            "{}",
            p.stop.why
        );
        assert_eq!(p.stop.next.as_ref().unwrap().gtid.as_deref(), Some("0-1-3"));
        // Before it: fine; skipped knowingly: fine.
        let p = run(plan(
            &a,
            std::slice::from_ref(&b),
            &Target::Gtid("0-1-2".into()),
            &[],
        ))
        .unwrap();
        assert_eq!(replayed(&a, &p), ["0-1-2"]);
        let p = run(plan(
            &a,
            std::slice::from_ref(&b),
            &Target::Latest,
            &["0-1-3".into()],
        ))
        .unwrap();
        assert_eq!(replayed(&a, &p), ["0-1-2", "0-1-4"]);
        // One row-based statement writing into both: refused too.
        let mut a = Arch::new("b.000001");
        a.txn(1, 100, false);
        let b = partial(&a, 1);
        a.rows_txn(2, 101, &[&[("shop", "t"), ("other", "log")]], None);
        a.cut();
        let e = run(plan(&a, std::slice::from_ref(&b), &Target::Latest, &[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("transaction 0-1-2") && e.contains("writes into shop and into other"),
            "{e}"
        );
    }

    #[test]
    fn a_mysql_gtid_event_reads_as_uuid_and_number() {
        let mut b = vec![1u8];
        b.extend_from_slice(&hex::decode("3e11fa4771ca11e19e33c80aa9429562").unwrap());
        b.extend_from_slice(&23i64.to_le_bytes());
        b.extend_from_slice(&[0; 10]);
        let ev = event(kind::MYSQL_GTID, 1, 100, 0, &b);
        assert_eq!(
            mysql_gtid(&ev, event::Checksum::Crc32).unwrap(),
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:23"
        );
    }
}
