//! Segments: the unit the archive stores, and the interface a store implements.
//!
//! A segment is a run of consecutive events of one binlog file, byte for byte as they are
//! in the file, from `start` to `end`. The first segment of a file starts after its
//! FORMAT_DESCRIPTION (which every segment carries in its description), so the 4-byte
//! magic, the FORMAT_DESCRIPTION and a file's segments in order make the file again
//! (`rebuild_file`), readable by `mariadb-binlog`/`mysqlbinlog`, and any one segment
//! after the magic and FORMAT_DESCRIPTION can be read alone. Two bytes of such a file may
//! differ from the server's own: the server clears the FORMAT_DESCRIPTION's in-use flag
//! in what it sends (outside the CRC32, which is computed without it), and when archiving
//! began past a file's start, the FORMAT_DESCRIPTION is the copy the server re-sends with
//! its `log_pos` zeroed (offsets in the rebuilt file then differ from the events'
//! positions; `mariadb-binlog` reads it all the same).
//!
//! `SegmentStore` is what the archiver needs of a place to keep segments: the point to
//! resume from, an atomic commit of one segment, and a gap marker. The repository
//! (`backup`) implements it; `local::LocalDirStore` is a directory of files for tests.
//! `SegmentBuilder` decides where a segment ends (flush interval, size, end of file).
//!
//! Not for: reading the server (`stream`) or choosing what to restore.

use std::future::Future;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::binlog::Position;
use crate::binlog::event::{BINLOG_MAGIC, FIRST_EVENT_POS};
use crate::binlog::stream::FramedEvent;

/// The GTIDs of one domain and server id that a segment holds: transactions `first` to
/// `last` (MariaDB sequence numbers), `count` of them (fewer than `last - first + 1` when
/// other servers' transactions came between).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GtidRange {
    pub domain: u32,
    pub server_id: u32,
    pub first: u64,
    pub last: u64,
    pub count: u64,
}

/// What the archive records about one segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// The binlog file the events are in, as the server names it ("binlog.000012").
    pub file: String,
    /// Where the first event starts and the last one ends in `file`.
    pub start: u64,
    pub end: u64,
    pub events: u64,
    /// Header timestamps (UTC seconds) of the first and last event.
    pub first_event_time: u32,
    pub last_event_time: u32,
    /// The GTIDs of the transactions that begin in this segment (MariaDB).
    pub gtids: Vec<GtidRange>,
    /// The segment ends inside a transaction (cut by the flush interval or the size
    /// limit): its rest is in the next segment.
    pub ends_in_transaction: bool,
    /// The last event is the file's ROTATE to this file: `file` ends here.
    pub rotate_to: Option<String>,
    /// The last event is a STOP (the server shut down): `file` ends here.
    pub ends_with_stop: bool,
    /// The file's FORMAT_DESCRIPTION event as the server sent it: its own (from position
    /// 4), or the copy re-sent at a dump's start when archiving began past position 4.
    #[serde(with = "hex_bytes")]
    pub format_description: Vec<u8>,
    /// CRC32 of the segment's bytes, for a store that wants to check them on reading.
    pub crc32: u32,
    /// The identity of the server whose binlog this is (`source::identify`: MySQL's
    /// `server_uuid`, MariaDB's `<hostname>-<port>-<server_id>`), as the archiver read it
    /// when it connected; `None` in segments archived before it was recorded. Restores
    /// pair backups with archives by it (`replay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

impl Segment {
    /// Where archiving resumes after this segment: the next file at its start when this
    /// one ended with a ROTATE, else right after its last event.
    pub fn resume_point(&self) -> ResumePoint {
        match &self.rotate_to {
            Some(next) => ResumePoint {
                position: Position {
                    file: next.clone(),
                    pos: FIRST_EVENT_POS,
                },
                format_description: None,
            },
            None => ResumePoint {
                position: Position {
                    file: self.file.clone(),
                    pos: self.end,
                },
                format_description: Some(self.format_description.clone()),
            },
        }
    }
}

/// Where the archiver starts again, and the FORMAT_DESCRIPTION already archived for that
/// file (kept for the segments to come rather than the server's re-sent copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumePoint {
    pub position: Position,
    pub format_description: Option<Vec<u8>>,
}

/// Events the archive does not have: the server purged them before they were archived
/// (ERR 1236). Archiving goes on from `resume_at`; nothing can be restored across it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// The end of the last archived event (`None`: nothing was archived before).
    pub after: Option<Position>,
    /// Where archiving starts again.
    pub resume_at: Position,
    /// What the server said.
    pub message: String,
    /// When the gap was recorded (UTC seconds).
    pub recorded_at: i64,
}

/// An error of a store, in its own words.
pub type StoreError = Box<dyn std::error::Error + Send + Sync>;

/// A place that keeps the segments of one source server. The archiver calls it from one
/// task; an implementation keeps a lock so that a second archiver on the same source
/// refuses.
pub trait SegmentStore {
    /// Where the last run stopped: after the last committed segment
    /// (`Segment::resume_point`) or the last gap (`resume_at`), whichever came last;
    /// `None` for an empty archive.
    fn resume_point(
        &mut self,
    ) -> impl Future<Output = Result<Option<ResumePoint>, StoreError>> + Send;

    /// Keeps one segment: its description and its bytes, all or nothing. Once this
    /// returns, the segment survives a crash and `resume_point` reflects it.
    fn commit(
        &mut self,
        segment: &Segment,
        bytes: &[u8],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records a gap (see `Gap`); `resume_point` then answers `gap.resume_at`.
    fn record_gap(&mut self, gap: &Gap) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The archiver is caught up: the server said it has nothing more to send (a heartbeat)
    /// and every event received is committed. A store that monitoring reads records it
    /// (the repository: an archiver heartbeat, so that an idle server does not look like a
    /// stopped archiver); the default records nothing. Called at most once per flush
    /// interval.
    fn caught_up(&mut self) -> impl Future<Output = Result<(), StoreError>> + Send {
        async { Ok(()) }
    }
}

/// One record of an archive, in order: a segment or a gap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Segment(Segment),
    Gap(Gap),
}

/// The reading side of an archive of one source server: point-in-time restore, `list`'s
/// restorable windows, `verify`, `prune` and `copy` read through it. Implemented by the
/// repository's store and by `local::LocalDirStore`.
pub trait SegmentSource {
    /// The archive's source name (`binlog/<source>/` in a repository), when it has one.
    fn name(&self) -> Option<&str> {
        None
    }

    /// Every segment and gap, in the order they were archived (binlog file order, then
    /// start position; a gap where it was recorded).
    fn records(&self) -> impl Future<Output = Result<Vec<Record>, StoreError>> + Send;

    /// One segment's events byte for byte, checked against its description (length
    /// `end - start` and CRC32): damage is an error naming the segment, never wrong bytes.
    fn segment_bytes(
        &self,
        segment: &Segment,
    ) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;
}

/// Rebuilds a binlog file from its FORMAT_DESCRIPTION and its segments' bytes, in order:
/// the magic, the FORMAT_DESCRIPTION, then the segments.
pub fn rebuild_file<'a>(
    format_description: &[u8],
    segments: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<u8> {
    let mut out = BINLOG_MAGIC.to_vec();
    out.extend_from_slice(format_description);
    for s in segments {
        out.extend_from_slice(s);
    }
    out
}

/// When to cut segments.
#[derive(Debug, Clone, Copy)]
pub struct CutPolicy {
    /// A segment is committed at most this long after its first event arrived.
    pub flush_interval: Duration,
    /// A segment is committed once it holds this many bytes (or one bigger event).
    pub max_bytes: usize,
}

impl Default for CutPolicy {
    fn default() -> Self {
        CutPolicy {
            flush_interval: Duration::from_secs(10),
            max_bytes: 16 << 20,
        }
    }
}

struct OpenSegment {
    segment: Segment,
    bytes: Vec<u8>,
    opened: Instant,
    crc: crc32fast::Hasher,
}

/// Collects events into the segment being built and says when it is due.
pub struct SegmentBuilder {
    policy: CutPolicy,
    open: Option<OpenSegment>,
    server: Option<String>,
}

impl SegmentBuilder {
    pub fn new(policy: CutPolicy) -> SegmentBuilder {
        SegmentBuilder {
            policy,
            open: None,
            server: None,
        }
    }

    /// Records `server` (see `Segment::server`) in every segment built from now on.
    pub fn with_server(mut self, server: Option<String>) -> SegmentBuilder {
        self.server = server;
        self
    }

    /// Adds an event (of `format_description`'s file) to the open segment, opening one
    /// if none is. The caller takes the segment first when the event is of another file.
    pub fn push(&mut self, ev: &FramedEvent, format_description: &[u8]) {
        let server = &self.server;
        let open = self.open.get_or_insert_with(|| OpenSegment {
            segment: Segment {
                file: ev.file.clone(),
                start: ev.start,
                end: ev.start,
                events: 0,
                first_event_time: ev.header.timestamp,
                last_event_time: ev.header.timestamp,
                gtids: Vec::new(),
                ends_in_transaction: false,
                rotate_to: None,
                ends_with_stop: false,
                format_description: format_description.to_vec(),
                crc32: 0,
                server: server.clone(),
            },
            bytes: Vec::new(),
            opened: Instant::now(),
            crc: crc32fast::Hasher::new(),
        });
        debug_assert_eq!(open.segment.file, ev.file);
        debug_assert_eq!(open.segment.end, ev.start);
        let s = &mut open.segment;
        s.end = ev.end;
        s.events += 1;
        s.last_event_time = ev.header.timestamp;
        s.ends_in_transaction = !ev.at_boundary;
        s.rotate_to = ev.rotate_to.clone();
        s.ends_with_stop = ev.stop;
        if let Some(g) = ev.gtid {
            let g = g.gtid;
            match s
                .gtids
                .iter_mut()
                .find(|r| r.domain == g.domain && r.server_id == g.server_id)
            {
                Some(r) => {
                    r.last = g.seq;
                    r.count += 1;
                }
                None => s.gtids.push(GtidRange {
                    domain: g.domain,
                    server_id: g.server_id,
                    first: g.seq,
                    last: g.seq,
                    count: 1,
                }),
            }
        }
        open.bytes.extend_from_slice(&ev.bytes);
        // Hashing the event's bytes again (SIMD, ~20 ns for 200 bytes) is far cheaper than
        // `combine` with its state (a GF(2) matrix power per event: it was 8% of the
        // archiver's instructions under sysbench).
        open.crc.update(&ev.bytes);
    }

    /// The file of the open segment, if any.
    pub fn open_file(&self) -> Option<&str> {
        self.open.as_ref().map(|o| o.segment.file.as_str())
    }

    /// Whether the open segment must be committed now: it ended its file, is full, or
    /// its flush interval has passed.
    pub fn due(&self, now: Instant) -> bool {
        self.open.as_ref().is_some_and(|o| {
            o.segment.rotate_to.is_some()
                || o.segment.ends_with_stop
                || o.bytes.len() >= self.policy.max_bytes
                || now >= o.opened + self.policy.flush_interval
        })
    }

    /// When the open segment's flush interval ends (`None`: no open segment).
    pub fn deadline(&self) -> Option<Instant> {
        self.open
            .as_ref()
            .map(|o| o.opened + self.policy.flush_interval)
    }

    /// Takes the open segment for committing.
    pub fn take(&mut self) -> Option<(Segment, Vec<u8>)> {
        self.open.take().map(|mut o| {
            o.segment.crc32 = o.crc.finalize();
            (o.segment, o.bytes)
        })
    }
}

/// Serde for bytes as a hex string (segment descriptions are JSON).
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binlog::event::{Gtid, GtidEvent, Header};

    fn framed(start: u64, len: u64, gtid: Option<u64>, at_boundary: bool) -> FramedEvent {
        let bytes = vec![7; len as usize];
        let mut crc = crc32fast::Hasher::new();
        crc.update(&bytes);
        FramedEvent {
            crc,
            bytes,
            header: Header {
                timestamp: 1000 + start as u32,
                kind: 2,
                server_id: 1,
                size: len as u32,
                log_pos: (start + len) as u32,
                flags: 0,
            },
            file: "b.000001".into(),
            start,
            end: start + len,
            gtid: gtid.map(|seq| GtidEvent {
                gtid: Gtid {
                    domain: 0,
                    server_id: 1,
                    seq,
                },
                standalone: false,
            }),
            at_boundary,
            rotate_to: None,
            stop: false,
        }
    }

    #[test]
    fn a_segment_records_its_range_times_and_gtids() {
        let mut b = SegmentBuilder::new(CutPolicy::default());
        b.push(&framed(100, 10, Some(5), false), b"fde");
        b.push(&framed(110, 20, None, true), b"fde");
        b.push(&framed(130, 10, Some(6), false), b"fde");
        assert!(!b.due(Instant::now()));
        let (s, bytes) = b.take().unwrap();
        assert_eq!((s.start, s.end, s.events), (100, 140, 3));
        assert_eq!((s.first_event_time, s.last_event_time), (1100, 1130));
        assert_eq!(
            s.gtids,
            [GtidRange {
                domain: 0,
                server_id: 1,
                first: 5,
                last: 6,
                count: 2
            }]
        );
        assert!(s.ends_in_transaction);
        assert_eq!(bytes.len(), 40);
        assert_eq!(s.crc32, crc32fast::hash(&bytes));
        assert_eq!(
            s.resume_point().position,
            Position {
                file: "b.000001".into(),
                pos: 140
            }
        );
        assert!(b.take().is_none());
    }

    #[test]
    fn a_segment_is_due_after_its_interval_when_full_or_at_a_rotate() {
        let policy = CutPolicy {
            flush_interval: Duration::from_secs(10),
            max_bytes: 100,
        };
        let mut b = SegmentBuilder::new(policy);
        b.push(&framed(100, 10, None, true), b"");
        let now = Instant::now();
        assert!(!b.due(now));
        assert!(b.due(now + Duration::from_secs(11)));
        b.push(&framed(110, 95, None, true), b"");
        assert!(b.due(now), "full");
        b.take();
        let mut rotate = framed(205, 10, None, true);
        rotate.rotate_to = Some("b.000002".into());
        b.push(&rotate, b"");
        assert!(b.due(now));
        let (s, _) = b.take().unwrap();
        assert_eq!(
            s.resume_point(),
            ResumePoint {
                position: Position {
                    file: "b.000002".into(),
                    pos: 4
                },
                format_description: None
            }
        );
    }

    #[test]
    fn descriptions_round_trip_through_json() {
        let mut b = SegmentBuilder::new(CutPolicy::default());
        b.push(&framed(100, 10, Some(1), true), &[0xFE, 0x01]);
        let (s, _) = b.take().unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"format_description\":\"fe01\""), "{json}");
        assert_eq!(serde_json::from_str::<Segment>(&json).unwrap(), s);
    }
}
