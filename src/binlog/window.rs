//! Restorable windows: which stretches of an archive are contiguous (`spans`), and how far
//! a backup taken at some binlog position can be rolled forward (`window`): from its
//! coordinates to the end of the span that holds them, which ends at the last archived
//! event, at a gap (a purged binlog), or where segments stop following each other (a
//! damaged or missing segment). Pure functions of an archive's records (`SegmentSource::
//! records`), for `rbackup list` and point-in-time restore alike.
//!
//! Not for: reading the archive, choosing a backup for a target time, replaying.

use std::cmp::Ordering;

use serde::Serialize;

use crate::binlog::Position;
use crate::binlog::event::FIRST_EVENT_POS;
use crate::binlog::segment::{Gap, Record, Segment};

/// The order of binlog positions: by the file's number (the digits after its last dot,
/// "binlog.000012" is 12), then its name, then the offset.
pub fn compare(a: &Position, b: &Position) -> Ordering {
    let number = |f: &str| {
        f.rsplit_once('.')
            .and_then(|(_, n)| n.parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    };
    (number(&a.file), a.file.as_str(), a.pos).cmp(&(number(&b.file), b.file.as_str(), b.pos))
}

/// How a span ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SpanEnd {
    /// At the newest archived event.
    Latest,
    /// At a gap: the binlog from the span's end to `gap.resume_at` is lost.
    Gap { gap: Gap },
    /// The next segment does not follow (starts at `next`): a segment is missing.
    Discontinuity { next: Position },
}

/// A contiguous stretch of the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Span {
    /// Where its first event starts and its last one ends.
    pub start: Position,
    pub end: Position,
    /// Header times (UTC seconds) of its first and last event.
    pub first_time: u32,
    pub last_time: u32,
    pub segments: usize,
    pub ends: SpanEnd,
}

impl Span {
    /// Whether `at` lies within the span (its ends included).
    pub fn covers(&self, at: &Position) -> bool {
        compare(&self.start, at) != Ordering::Greater && compare(at, &self.end) != Ordering::Greater
    }
}

/// The next binlog file's name: "binlog.000012" -> "binlog.000013" (`None` without a
/// number after the last dot).
pub fn next_file(name: &str) -> Option<String> {
    let (base, num) = name.rsplit_once('.')?;
    let n: u64 = num.parse().ok()?;
    Some(format!("{base}.{:0width$}", n + 1, width = num.len()))
}

/// Whether `next` continues the archive right after `prev`: the same file from where it
/// ended, or, after a segment that ended its file, the file it names (ROTATE) or the
/// file numbered next (STOP: the server starts a new file when it starts again), from its
/// first event (right after its FORMAT_DESCRIPTION). Any other file after a STOP (one
/// numbered later) means whole files are missing: not a continuation.
pub fn follows(prev: &Segment, next: &Segment) -> bool {
    if prev.file == next.file {
        return next.start == prev.end;
    }
    let file_ended = match &prev.rotate_to {
        Some(f) => *f == next.file,
        None => prev.ends_with_stop && next_file(&prev.file).as_deref() == Some(next.file.as_str()),
    };
    let after = Position {
        file: prev.file.clone(),
        pos: prev.end,
    };
    let first = Position {
        file: next.file.clone(),
        pos: next.start,
    };
    file_ended
        && compare(&after, &first) == Ordering::Less
        && next.start == FIRST_EVENT_POS + next.format_description.len() as u64
}

/// The contiguous spans of an archive's records, in order.
pub fn spans(records: &[Record]) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    let mut open: Option<(Span, &Segment)> = None;
    for r in records {
        match r {
            Record::Gap(gap) => {
                if let Some((mut span, _)) = open.take() {
                    span.ends = SpanEnd::Gap { gap: gap.clone() };
                    out.push(span);
                }
            }
            Record::Segment(s) => {
                if let Some((span, prev)) = &mut open
                    && follows(prev, s)
                {
                    span.end = Position {
                        file: s.file.clone(),
                        pos: s.end,
                    };
                    span.last_time = s.last_event_time;
                    span.segments += 1;
                    *prev = s;
                    continue;
                }
                if let Some((mut span, _)) = open.take() {
                    span.ends = SpanEnd::Discontinuity {
                        next: Position {
                            file: s.file.clone(),
                            pos: s.start,
                        },
                    };
                    out.push(span);
                }
                open = Some((
                    Span {
                        start: Position {
                            file: s.file.clone(),
                            pos: s.start,
                        },
                        end: Position {
                            file: s.file.clone(),
                            pos: s.end,
                        },
                        first_time: s.first_event_time,
                        last_time: s.last_event_time,
                        segments: 1,
                        ends: SpanEnd::Latest,
                    },
                    s,
                ));
            }
        }
    }
    if let Some((span, _)) = open {
        out.push(span);
    }
    out
}

/// How far a backup at `from` can be rolled forward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Window {
    pub from: Position,
    /// The end of the last archived event it can reach, and that event's time.
    pub to: Position,
    pub to_time: u32,
    /// What stops it there.
    pub ends: SpanEnd,
}

/// The window of a backup whose coordinates are `from`: `None` when no span holds them
/// (the archive begins later, has a gap there, or has not reached them yet).
pub fn window(spans: &[Span], from: &Position) -> Option<Window> {
    spans.iter().find(|s| s.covers(from)).map(|s| Window {
        from: from.clone(),
        to: s.end.clone(),
        to_time: s.last_time,
        ends: s.ends.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(file: &str, start: u64, end: u64) -> Segment {
        Segment {
            file: file.into(),
            start,
            end,
            events: 1,
            first_event_time: start as u32,
            last_event_time: end as u32,
            gtids: Vec::new(),
            ends_in_transaction: false,
            rotate_to: None,
            ends_with_stop: false,
            format_description: vec![0; 252],
            crc32: 0,
            server: None,
        }
    }

    fn at(file: &str, pos: u64) -> Position {
        Position {
            file: file.into(),
            pos,
        }
    }

    #[test]
    fn spans_follow_files_and_break_at_gaps_and_holes() {
        let mut a2 = seg("b.000001", 500, 900);
        a2.rotate_to = Some("b.000002".into());
        let gap = Gap {
            after: Some(at("b.000002", 700)),
            resume_at: at("b.000005", 4),
            message: "purged".into(),
            recorded_at: 0,
        };
        let records = vec![
            Record::Segment(seg("b.000001", 256, 500)),
            Record::Segment(a2),
            Record::Segment(seg("b.000002", 256, 700)),
            Record::Gap(gap.clone()),
            Record::Segment(seg("b.000005", 256, 300)),
            Record::Segment(seg("b.000005", 350, 400)),
        ];
        let s = spans(&records);
        assert_eq!(s.len(), 3, "{s:?}");
        assert_eq!(
            (s[0].start.clone(), s[0].end.clone()),
            (at("b.000001", 256), at("b.000002", 700))
        );
        assert_eq!(s[0].segments, 3);
        assert_eq!(s[0].ends, SpanEnd::Gap { gap });
        assert_eq!(
            s[1].ends,
            SpanEnd::Discontinuity {
                next: at("b.000005", 350)
            }
        );
        assert_eq!(s[2].ends, SpanEnd::Latest);
        // A backup in the first span rolls forward to the gap; one in the hole, nowhere.
        let w = window(&s, &at("b.000001", 600)).unwrap();
        assert_eq!((w.to.clone(), w.to_time), (at("b.000002", 700), 700));
        assert!(window(&s, &at("b.000003", 900)).is_none());
        assert!(window(&s, &at("b.000005", 320)).is_none());
        assert_eq!(
            window(&s, &at("b.000005", 400)).unwrap().to,
            at("b.000005", 400)
        );
        assert!(window(&s, &at("b.000006", 4)).is_none());
    }

    #[test]
    fn a_file_that_did_not_end_is_not_followed_by_the_next() {
        let a = seg("b.000001", 256, 500);
        let b = seg("b.000002", 256, 300);
        assert!(!follows(&a, &b));
        let mut stopped = a.clone();
        stopped.ends_with_stop = true;
        assert!(follows(&stopped, &b));
        assert!(!follows(&stopped, &seg("b.000002", 300, 400)));
        // After a STOP, a file numbered later than the next: b.000002 is missing whole.
        assert!(!follows(&stopped, &seg("b.000003", 256, 300)));
        let s = spans(&[
            Record::Segment(stopped),
            Record::Segment(seg("b.000003", 256, 300)),
        ]);
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(
            s[0].ends,
            SpanEnd::Discontinuity {
                next: at("b.000003", 256)
            }
        );
        assert_eq!(
            compare(&at("b.000010", 4), &at("b.000009", 900)),
            Ordering::Greater
        );
    }
}
