//! One binlog event, read in place: its 19-byte header, its CRC32, and the few bodies the
//! archiver needs to understand (ROTATE, FORMAT_DESCRIPTION, MariaDB's GTID, QUERY's text).
//!
//! Not for: changing an event. Nothing here rewrites a byte or recomputes a checksum: an
//! event that fails a check is an error, never repaired. Not for deciding what an event
//! means to the archive either (artificial or not, where a segment ends): see `stream`
//! and `segment`.

use std::fmt;

/// Bytes of the common (v4) event header.
pub const HEADER_LEN: usize = 19;
/// Bytes of the CRC32 at the end of an event when the binlog has checksums.
pub const CRC_LEN: usize = 4;
/// The magic at the start of every binlog file.
pub const BINLOG_MAGIC: [u8; 4] = [0xFE, b'b', b'i', b'n'];
/// Where the first event of a binlog file (its FORMAT_DESCRIPTION) starts.
pub const FIRST_EVENT_POS: u64 = 4;

/// Event type codes (MySQL's and MariaDB's numbering; only those the archiver reads).
pub mod kind {
    pub const QUERY: u8 = 2;
    pub const STOP: u8 = 3;
    pub const ROTATE: u8 = 4;
    pub const FORMAT_DESCRIPTION: u8 = 15;
    pub const XID: u8 = 16;
    pub const HEARTBEAT: u8 = 27;
    pub const XA_PREPARE: u8 = 38;
    /// MySQL's GTID events (MariaDB's is `GTID`) and MySQL 8's compressed transaction.
    pub const MYSQL_GTID: u8 = 33;
    pub const MYSQL_ANONYMOUS_GTID: u8 = 34;
    pub const MYSQL_TRANSACTION_PAYLOAD: u8 = 40;
    pub const ANNOTATE_ROWS: u8 = 160;
    pub const BINLOG_CHECKPOINT: u8 = 161;
    pub const GTID: u8 = 162;
    pub const GTID_LIST: u8 = 163;
}

/// Header flag: the binlog file was open when this FORMAT_DESCRIPTION was read (the
/// server clears it in place when it closes the file, without changing the CRC, which
/// is computed with the flag cleared).
pub const FLAG_BINLOG_IN_USE: u16 = 0x0001;
/// Header flag: the event was made up by the server for the stream (a fake ROTATE, a
/// GTID_LIST when connecting by GTID); it is in no binlog file.
pub const FLAG_ARTIFICIAL: u16 = 0x0020;

/// MariaDB GTID_EVENT flag: a single statement without BEGIN/COMMIT (DDL).
const GTID_FLAG_STANDALONE: u8 = 0x01;

/// What is wrong with an event's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventError {
    /// Fewer bytes than the header, or than the header's `event_size` says.
    Truncated { have: usize, want: usize },
    /// More bytes than the header's `event_size` says.
    Overlong { have: usize, want: usize },
    /// The CRC32 at the end does not match the event's bytes.
    Checksum { stored: u32, computed: u32 },
    /// A body too short for its type.
    Malformed(&'static str),
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::Truncated { have, want } => {
                write!(f, "truncated event: {have} bytes of {want}")
            }
            EventError::Overlong { have, want } => {
                write!(
                    f,
                    "event longer than its header says: {have} bytes, not {want}"
                )
            }
            EventError::Checksum { stored, computed } => write!(
                f,
                "CRC32 mismatch: the event says {stored:#010x}, its bytes give {computed:#010x}"
            ),
            EventError::Malformed(what) => write!(f, "malformed event: {what}"),
        }
    }
}

/// The common header of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Seconds since the epoch (UTC) when the statement started.
    pub timestamp: u32,
    pub kind: u8,
    pub server_id: u32,
    /// Bytes of the whole event, header and checksum included.
    pub size: u32,
    /// Where the event ends in its binlog file (the next event's position); 0 for some
    /// events made up for the stream.
    pub log_pos: u32,
    pub flags: u16,
}

impl Header {
    /// Reads the header of `ev`, which must be exactly one event: as long as its
    /// `event_size` (anything else is `Truncated` or `Overlong`).
    pub fn parse(ev: &[u8]) -> Result<Header, EventError> {
        if ev.len() < HEADER_LEN {
            return Err(EventError::Truncated {
                have: ev.len(),
                want: HEADER_LEN,
            });
        }
        let u32_at = |i: usize| u32::from_le_bytes([ev[i], ev[i + 1], ev[i + 2], ev[i + 3]]);
        let h = Header {
            timestamp: u32_at(0),
            kind: ev[4],
            server_id: u32_at(5),
            size: u32_at(9),
            log_pos: u32_at(13),
            flags: u16::from_le_bytes([ev[17], ev[18]]),
        };
        let want = h.size as usize;
        if want < HEADER_LEN || ev.len() < want {
            return Err(EventError::Truncated {
                have: ev.len(),
                want: want.max(HEADER_LEN),
            });
        }
        if ev.len() > want {
            return Err(EventError::Overlong {
                have: ev.len(),
                want,
            });
        }
        Ok(h)
    }

    /// Where the event starts in its file, from its end and size (`None` when the end is
    /// not set or smaller than the size).
    pub fn start_pos(&self) -> Option<u64> {
        (self.log_pos != 0)
            .then(|| u64::from(self.log_pos).checked_sub(u64::from(self.size)))
            .flatten()
    }

    pub fn is_artificial(&self) -> bool {
        self.flags & FLAG_ARTIFICIAL != 0
    }
}

/// Whether the events of a binlog file end with a CRC32 (from its FORMAT_DESCRIPTION).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    Off,
    Crc32,
}

impl Checksum {
    fn trailer(self) -> usize {
        match self {
            Checksum::Off => 0,
            Checksum::Crc32 => CRC_LEN,
        }
    }
}

/// The CRC32 of an event's bytes before its trailer, as the server computes it: for a
/// FORMAT_DESCRIPTION with the in-use flag cleared.
fn computed_crc(ev: &[u8], kind: u8) -> u32 {
    let body_end = ev.len() - CRC_LEN;
    let mut h = crc32fast::Hasher::new();
    if kind == kind::FORMAT_DESCRIPTION {
        h.update(&ev[..17]);
        h.update(&[ev[17] & !(FLAG_BINLOG_IN_USE as u8), ev[18]]);
        h.update(&ev[HEADER_LEN..body_end]);
    } else {
        h.update(&ev[..body_end]);
    }
    h.finalize()
}

/// Checks the CRC32 at the end of `ev` (nothing to check with checksums off).
pub fn verify_checksum(ev: &[u8], header: &Header, checksum: Checksum) -> Result<(), EventError> {
    if checksum == Checksum::Off {
        return Ok(());
    }
    if ev.len() < HEADER_LEN + CRC_LEN {
        return Err(EventError::Truncated {
            have: ev.len(),
            want: HEADER_LEN + CRC_LEN,
        });
    }
    let stored = u32::from_le_bytes(ev[ev.len() - CRC_LEN..].try_into().expect("4 bytes"));
    let computed = computed_crc(ev, header.kind);
    if stored != computed {
        return Err(EventError::Checksum { stored, computed });
    }
    Ok(())
}

/// Checks an event's CRC32 like `verify_checksum` (not for a FORMAT_DESCRIPTION) and
/// returns the CRC32 state of the whole event, trailer included, for a segment's own
/// checksum (`Hasher::combine`): the bytes are read once.
pub fn verified_crc(
    ev: &[u8],
    header: &Header,
    checksum: Checksum,
) -> Result<crc32fast::Hasher, EventError> {
    let mut h = crc32fast::Hasher::new();
    if checksum == Checksum::Off || header.kind == kind::FORMAT_DESCRIPTION {
        verify_checksum(ev, header, checksum)?;
        h.update(ev);
        return Ok(h);
    }
    if ev.len() < HEADER_LEN + CRC_LEN {
        return Err(EventError::Truncated {
            have: ev.len(),
            want: HEADER_LEN + CRC_LEN,
        });
    }
    let (body, trailer) = ev.split_at(ev.len() - CRC_LEN);
    h.update(body);
    let stored = u32::from_le_bytes(trailer.try_into().expect("4 bytes"));
    let computed = h.clone().finalize();
    if stored != computed {
        return Err(EventError::Checksum { stored, computed });
    }
    h.update(trailer);
    Ok(h)
}

/// Whether the last 4 bytes of `ev` are the CRC32 of the rest (for events made up by the
/// server, whose checksum setting is the stream's, not a file's).
pub fn has_valid_crc(ev: &[u8], header: &Header) -> bool {
    verify_checksum(ev, header, Checksum::Crc32).is_ok()
}

/// The body of an event: after the header, before the checksum.
pub fn body(ev: &[u8], checksum: Checksum) -> &[u8] {
    let end = ev.len().saturating_sub(checksum.trailer()).max(HEADER_LEN);
    &ev[HEADER_LEN.min(ev.len())..end]
}

/// A FORMAT_DESCRIPTION's checksum algorithm: the byte before its own 4-byte checksum
/// field, which servers since MySQL 5.6.1 and MariaDB 5.3 always write (0 = off,
/// 1 = CRC32). Older servers' binlogs (no such byte) are not supported.
pub fn format_description_checksum(ev: &[u8]) -> Result<Checksum, EventError> {
    // binlog version (2), server version (50), create time (4), header length (1), at
    // least one post-header length, then algorithm (1) and checksum (4).
    if ev.len() < HEADER_LEN + 2 + 50 + 4 + 1 + 1 + 1 + CRC_LEN {
        return Err(EventError::Malformed("FORMAT_DESCRIPTION too short"));
    }
    match ev[ev.len() - CRC_LEN - 1] {
        0 => Ok(Checksum::Off),
        1 => Ok(Checksum::Crc32),
        _ => Err(EventError::Malformed(
            "FORMAT_DESCRIPTION names an unknown checksum algorithm",
        )),
    }
}

/// A ROTATE event: the file that follows and where in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotate {
    pub pos: u64,
    pub file: String,
}

/// Reads a ROTATE's body (position, then the file name to the end).
pub fn parse_rotate(ev: &[u8], checksum: Checksum) -> Result<Rotate, EventError> {
    let b = body(ev, checksum);
    if b.len() < 9 {
        return Err(EventError::Malformed("ROTATE too short"));
    }
    let pos = u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
    let file = std::str::from_utf8(&b[8..])
        .map_err(|_| EventError::Malformed("ROTATE file name is not UTF-8"))?
        .to_string();
    Ok(Rotate { pos, file })
}

/// A MariaDB GTID: domain-server-sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gtid {
    pub domain: u32,
    pub server_id: u32,
    pub seq: u64,
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server_id, self.seq)
    }
}

/// A MariaDB GTID_EVENT: the transaction's GTID, and whether it is a single statement
/// without BEGIN/COMMIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GtidEvent {
    pub gtid: Gtid,
    pub standalone: bool,
}

/// Reads a MariaDB GTID_EVENT (sequence u64, domain u32, flags u8, ...).
pub fn parse_gtid(ev: &[u8], header: &Header, checksum: Checksum) -> Result<GtidEvent, EventError> {
    let b = body(ev, checksum);
    if b.len() < 13 {
        return Err(EventError::Malformed("GTID event too short"));
    }
    Ok(GtidEvent {
        gtid: Gtid {
            domain: u32::from_le_bytes(b[8..12].try_into().expect("4 bytes")),
            server_id: header.server_id,
            seq: u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
        },
        standalone: b[12] & GTID_FLAG_STANDALONE != 0,
    })
}

/// The statement text of a QUERY event (post-header of 13 bytes: thread id, exec time,
/// database name length, error code, status variables length).
pub fn query_text(ev: &[u8], checksum: Checksum) -> Result<&[u8], EventError> {
    let b = body(ev, checksum);
    if b.len() < 13 {
        return Err(EventError::Malformed("QUERY too short"));
    }
    let db_len = b[8] as usize;
    let status_len = u16::from_le_bytes([b[11], b[12]]) as usize;
    let start = 13 + status_len + db_len + 1;
    b.get(start..)
        .ok_or(EventError::Malformed("QUERY shorter than its lengths"))
}

/// The default database of a QUERY event (empty when the statement ran without one),
/// from the same post-header as `query_text`.
pub fn query_db(ev: &[u8], checksum: Checksum) -> Result<String, EventError> {
    let b = body(ev, checksum);
    if b.len() < 13 {
        return Err(EventError::Malformed("QUERY too short"));
    }
    let db_len = b[8] as usize;
    let status_len = u16::from_le_bytes([b[11], b[12]]) as usize;
    let start = 13 + status_len;
    b.get(start..start + db_len)
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .ok_or(EventError::Malformed("QUERY shorter than its lengths"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An event of `kind` with `body`, ending at `log_pos`, with a CRC32.
    pub(crate) fn event(
        kind: u8,
        timestamp: u32,
        log_pos: u32,
        flags: u16,
        body: &[u8],
    ) -> Vec<u8> {
        let size = (HEADER_LEN + body.len() + CRC_LEN) as u32;
        let mut ev = Vec::new();
        ev.extend_from_slice(&timestamp.to_le_bytes());
        ev.push(kind);
        ev.extend_from_slice(&1u32.to_le_bytes());
        ev.extend_from_slice(&size.to_le_bytes());
        ev.extend_from_slice(&log_pos.to_le_bytes());
        ev.extend_from_slice(&flags.to_le_bytes());
        ev.extend_from_slice(body);
        let crc = computed_crc(&[ev.as_slice(), &[0; 4]].concat(), kind);
        ev.extend_from_slice(&crc.to_le_bytes());
        ev
    }

    #[test]
    fn header_reads_every_field_and_refuses_a_wrong_length() {
        let ev = event(kind::XID, 1_700_000_000, 500, 0, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let h = Header::parse(&ev).unwrap();
        assert_eq!(h.timestamp, 1_700_000_000);
        assert_eq!(h.kind, kind::XID);
        assert_eq!(h.size as usize, ev.len());
        assert_eq!(h.start_pos(), Some(500 - ev.len() as u64));
        for cut in 0..ev.len() {
            assert!(
                matches!(Header::parse(&ev[..cut]), Err(EventError::Truncated { .. })),
                "cut at {cut}"
            );
        }
        let mut longer = ev.clone();
        longer.push(0);
        assert!(matches!(
            Header::parse(&longer),
            Err(EventError::Overlong { .. })
        ));
    }

    #[test]
    fn a_flipped_byte_fails_the_checksum() {
        let ev = event(kind::QUERY, 1, 100, 0, b"0123456789abcdefBEGIN");
        let h = Header::parse(&ev).unwrap();
        verify_checksum(&ev, &h, Checksum::Crc32).unwrap();
        for i in 0..ev.len() {
            let mut bad = ev.clone();
            bad[i] ^= 0x40;
            let Ok(h) = Header::parse(&bad) else { continue };
            assert!(
                verify_checksum(&bad, &h, Checksum::Crc32).is_err(),
                "flip at {i} passed"
            );
        }
    }

    #[test]
    fn the_verified_crc_is_the_whole_events() {
        let ev = event(kind::QUERY, 1, 100, 0, b"0123456789abcdefBEGIN");
        let h = Header::parse(&ev).unwrap();
        for checksum in [Checksum::Crc32, Checksum::Off] {
            assert_eq!(
                verified_crc(&ev, &h, checksum).unwrap().finalize(),
                crc32fast::hash(&ev)
            );
        }
        let mut bad = ev.clone();
        bad[20] ^= 1;
        assert!(verified_crc(&bad, &h, Checksum::Crc32).is_err());
    }

    #[test]
    fn format_description_checksum_ignores_the_in_use_flag() {
        let mut body = vec![4, 0];
        body.extend_from_slice(&[b'x'; 50]);
        body.extend_from_slice(&[0; 4]);
        body.push(19);
        body.extend_from_slice(&[13, 0, 8]);
        body.push(1); // CRC32
        let closed = event(kind::FORMAT_DESCRIPTION, 1, 120, 0, &body);
        let mut open = closed.clone();
        open[17] |= FLAG_BINLOG_IN_USE as u8;
        for ev in [&closed, &open] {
            let h = Header::parse(ev).unwrap();
            verify_checksum(ev, &h, Checksum::Crc32).unwrap();
            assert_eq!(format_description_checksum(ev).unwrap(), Checksum::Crc32);
        }
    }

    #[test]
    fn rotate_gtid_and_query_bodies() {
        let mut b = 4u64.to_le_bytes().to_vec();
        b.extend_from_slice(b"binlog.000002");
        let ev = event(kind::ROTATE, 0, 0, FLAG_ARTIFICIAL, &b);
        assert_eq!(
            parse_rotate(&ev, Checksum::Crc32).unwrap(),
            Rotate {
                pos: 4,
                file: "binlog.000002".into()
            }
        );
        let mut b = 77u64.to_le_bytes().to_vec();
        b.extend_from_slice(&3u32.to_le_bytes());
        b.push(GTID_FLAG_STANDALONE);
        let ev = event(kind::GTID, 5, 900, 0, &b);
        let h = Header::parse(&ev).unwrap();
        let g = parse_gtid(&ev, &h, Checksum::Crc32).unwrap();
        assert_eq!(g.gtid.to_string(), "3-1-77");
        assert!(g.standalone);
        let mut b = vec![0; 13];
        b[8] = 2; // db "db"
        b[11] = 3; // 3 bytes of status variables
        b.extend_from_slice(&[9, 9, 9]);
        b.extend_from_slice(b"db\0COMMIT");
        let ev = event(kind::QUERY, 5, 900, 0, &b);
        assert_eq!(query_text(&ev, Checksum::Crc32).unwrap(), b"COMMIT");
        assert_eq!(query_db(&ev, Checksum::Crc32).unwrap(), "db");
        assert!(query_text(&ev[..HEADER_LEN + 4], Checksum::Off).is_err());
    }
}
