//! The replication client: opens a binlog stream on the project's own protocol client
//! (`conn::open_replication`, `wire`), and frames it: every event is checked (its length,
//! its CRC32, that it starts exactly where the previous one ended) and classified, so the
//! archiver gets the events of the binlog files and nothing else.
//!
//! The stream carries events that are in no file, and `Framer` drops them: the fake
//! ROTATE that names the file at the start of a dump and of every following file
//! (LOG_EVENT_ARTIFICIAL_F, timestamp 0, `log_pos` 0), the FORMAT_DESCRIPTION re-sent when
//! a dump starts past the start of a file (`log_pos` 0), heartbeats, and any other event
//! flagged artificial (MariaDB's GTID_LIST when connecting by GTID). A file's own
//! FORMAT_DESCRIPTION (at position 4) is handed over apart (`Frame::FileStart`): it is
//! the header of the file, not part of a segment.
//!
//! Not for: keeping events (`segment`), reconnecting or deciding when to stop
//! (`archive`).

use std::time::Duration;

use crate::binlog::event::{self, Checksum, EventError, FIRST_EVENT_POS, GtidEvent, Header, kind};
use crate::binlog::{ArchiveError, Position};
use crate::client::conn::{open_replication, server_label};
use crate::client::options::ConnectionOptions;
use crate::client::wire::{WireConn, WireError};
use crate::sql::dialect::{BinlogStart, Dialect};

/// The server id the archiver registers with unless told otherwise: 4294967040
/// (0xFFFFFF00), far above the small numbers replicas are given, so that it does not
/// clash with a real replica (a source drops the older of two connections with one id).
/// `connect` refuses anyway when a replica with this id is registered on the source.
pub const DEFAULT_SERVER_ID: u32 = 0xFFFF_FF00;

/// The server error that says the binlog asked for is not there (purged, or never was).
pub const ER_MASTER_FATAL_ERROR_READING_BINLOG: u16 = 1236;

/// COM_REGISTER_SLAVE: announces a replica with `server_id` and no host, user or
/// password (SHOW SLAVE HOSTS lists it with an empty host).
pub fn register_replica_packet(server_id: u32) -> Vec<u8> {
    let mut p = vec![0x15];
    p.extend_from_slice(&server_id.to_le_bytes());
    p.extend_from_slice(&[0, 0, 0]); // hostname, user, password: empty
    p.extend_from_slice(&0u16.to_le_bytes()); // port
    p.extend_from_slice(&0u32.to_le_bytes()); // replication rank (unused)
    p.extend_from_slice(&0u32.to_le_bytes()); // master id (the server fills it in)
    p
}

/// An open binlog stream, right after COM_BINLOG_DUMP.
pub struct Stream {
    pub conn: WireConn,
    pub server: String,
    pub dialect: Dialect,
}

fn server_error(server: &str, context: &str, e: WireError) -> ArchiveError {
    match e {
        WireError::Io(_) | WireError::Connect(_) => ArchiveError::Connection {
            server: server.to_string(),
            message: format!("{context}: {e}"),
        },
        _ => ArchiveError::Server {
            server: server.to_string(),
            context: context.to_string(),
            message: e.to_string(),
        },
    }
}

/// Opens a replication connection. A server that cannot be reached, or that is shutting
/// down or full, is `ArchiveError::Connection` (retried); one that refuses us (a wrong
/// password, TLS that cannot be had) is `Server`, and the run fails at once.
pub(crate) async fn connect(
    opts: &ConnectionOptions,
) -> Result<(WireConn, String, Dialect), ArchiveError> {
    let server = server_label(opts);
    match open_replication(opts).await {
        Ok((conn, dialect)) => Ok((conn, server, dialect)),
        Err(
            e @ (WireError::Io(_)
            | WireError::Connect(_)
            | WireError::Server {
                code: 1040 | 1053 | 2013,
                ..
            }),
        ) => Err(ArchiveError::Connection {
            server,
            message: e.to_string(),
        }),
        Err(e) => Err(ArchiveError::Server {
            server,
            context: "connecting".into(),
            message: e.to_string(),
        }),
    }
}

/// Connects as a replica with `server_id` and starts a dump at `start`. Checks first that
/// the server writes a binlog and that no replica with our id is registered there.
/// Connection failures are `ArchiveError::Connection` (worth retrying); ERR 1236 is
/// `Purged`.
pub async fn open(
    opts: &ConnectionOptions,
    start: &BinlogStart,
    server_id: u32,
    heartbeat: Duration,
) -> Result<Stream, ArchiveError> {
    let (mut conn, server, dialect) = connect(opts).await?;
    let err = |context: &str, e: WireError| server_error(&server, context, e);
    let (_, rows) = conn
        .query_all("SELECT @@GLOBAL.log_bin, @@GLOBAL.server_id")
        .await
        .map_err(|e| err("reading log_bin and server_id", e))?;
    let cell = |i: usize| {
        rows.first()
            .and_then(|r| r.get(i).cloned().flatten())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    if cell(0) != "1" {
        return Err(ArchiveError::Server {
            server,
            context: "checking the binary log".into(),
            message: "binary logging is off (log_bin=0): there is nothing to archive".into(),
        });
    }
    if cell(1) == server_id.to_string() {
        return Err(ArchiveError::Config(format!(
            "{server}: the server's own server_id is {server_id}; choose another --server-id"
        )));
    }
    // A replica with our id: a real one (refuse: registering would make the source drop
    // its connection), or the dump thread of our own previous run, which the source
    // drops at its next heartbeat once it finds the socket closed: wait that long.
    let patience = heartbeat * 3 + Duration::from_secs(2);
    let waited = std::time::Instant::now();
    while replica_registered(&mut conn, &dialect, server_id)
        .await
        .map_err(|e| err("listing the registered replicas", e))?
    {
        if waited.elapsed() >= patience {
            return Err(ArchiveError::Config(format!(
                "{server}: a replica with server id {server_id} is already connected (another \
                 archiver, or a replica): choose another --server-id"
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let gtid = match start {
        BinlogStart::Gtid(g) => Some(g.as_str()),
        BinlogStart::Position { .. } => None,
    };
    let heartbeat_ns = u64::try_from(heartbeat.as_nanos()).unwrap_or(u64::MAX);
    for sql in dialect.binlog_session_sql(heartbeat_ns, gtid) {
        conn.query_drop(&sql)
            .await
            .map_err(|e| err("setting up the binlog session", e))?;
    }
    conn.command_ok(&register_replica_packet(server_id))
        .await
        .map_err(|e| err("registering as a replica (COM_REGISTER_SLAVE)", e))?;
    let dump = dialect
        .binlog_dump_command(start, server_id)
        .map_err(ArchiveError::Config)?;
    conn.send_command(&dump)
        .await
        .map_err(|e| err("starting the binlog dump", e))?;
    conn.wait_without_yielding();
    Ok(Stream {
        conn,
        server,
        dialect,
    })
}

/// Whether a replica with `server_id` is registered on the source.
async fn replica_registered(
    conn: &mut WireConn,
    dialect: &Dialect,
    server_id: u32,
) -> Result<bool, WireError> {
    let (cols, hosts) = conn.query_all(dialect.replica_hosts_sql()).await?;
    let id_col = cols
        .iter()
        .position(|c| c.name_str().eq_ignore_ascii_case("Server_id"))
        .unwrap_or(0);
    let id = server_id.to_string();
    Ok(hosts.iter().any(|r| {
        r.get(id_col)
            .and_then(|c| c.as_deref())
            .is_some_and(|c| c == id.as_bytes())
    }))
}

/// The server's current binlog position (SHOW MASTER STATUS), on a connection of its own.
pub async fn current_position(opts: &ConnectionOptions) -> Result<Position, ArchiveError> {
    let (mut conn, server, dialect) = connect(opts).await?;
    let (_, rows) = conn
        .query_all(dialect.binlog_status_sql())
        .await
        .map_err(|e| server_error(&server, "reading the binlog position", e))?;
    conn.close().await;
    let row = rows.first().ok_or_else(|| ArchiveError::Server {
        server: server.clone(),
        context: "reading the binlog position".into(),
        message: "binary logging is off: SHOW MASTER STATUS is empty".into(),
    })?;
    let text = |i: usize| {
        row.get(i)
            .cloned()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let pos = text(1).parse().map_err(|_| ArchiveError::Server {
        server: server.clone(),
        context: "reading the binlog position".into(),
        message: format!("bad position {:?}", text(1)),
    })?;
    Ok(Position { file: text(0), pos })
}

/// The server's name (for errors) and its binlog files with their sizes, oldest first
/// (SHOW BINARY LOGS: the current file's size is where the server writes next).
pub async fn binlog_files(
    opts: &ConnectionOptions,
) -> Result<(String, Vec<(String, u64)>), ArchiveError> {
    let (mut conn, server, _) = connect(opts).await?;
    let (_, rows) = conn
        .query_all("SHOW BINARY LOGS")
        .await
        .map_err(|e| server_error(&server, "listing the binary logs", e))?;
    conn.close().await;
    let text = |c: Option<&Option<Vec<u8>>>| {
        c.cloned()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let files = rows
        .iter()
        .map(|r| (text(r.first()), text(r.get(1)).parse().unwrap_or(0)))
        .collect();
    Ok((server, files))
}

/// The oldest binlog file the server still has (SHOW BINARY LOGS, first row).
pub async fn oldest_binlog(opts: &ConnectionOptions) -> Result<String, ArchiveError> {
    let (server, files) = binlog_files(opts).await?;
    files
        .into_iter()
        .next()
        .map(|(file, _)| file)
        .ok_or_else(|| ArchiveError::Server {
            server,
            context: "listing the binary logs".into(),
            message: "the server has no binary log".into(),
        })
}

/// What one packet of the stream is, once checked.
#[derive(Debug)]
pub enum Frame {
    /// An event of a binlog file, to archive.
    Event(FramedEvent),
    /// The FORMAT_DESCRIPTION of `file`: its own (at position 4, `resent` false), or the
    /// copy sent when a dump starts past it (`resent`, its `log_pos` zeroed by the server).
    FileStart {
        file: String,
        format_description: Vec<u8>,
        resent: bool,
    },
    /// A heartbeat: the server has sent everything it has and waits for new events. It
    /// says where the server is (the file it reads and the end of the last event it read;
    /// `None` when the event does not say: no file name, or position 0).
    Heartbeat { position: Option<Position> },
    /// A fake ROTATE or other artificial event: in no file.
    Artificial,
    /// An event of a dump by GTID before its first transaction (see `Framer::accept`),
    /// ending at `position`: not archived.
    Skipped { position: Position },
}

/// Where a HEARTBEAT event says the server is: the file named by its body (the name to
/// the end, with the checksum stripped when the event carries a valid one) and the
/// header's `log_pos`.
fn heartbeat_position(bytes: &[u8], header: &Header) -> Option<Position> {
    let checksum = if event::has_valid_crc(bytes, header) {
        Checksum::Crc32
    } else {
        Checksum::Off
    };
    let name = event::body(bytes, checksum);
    let name = std::str::from_utf8(name).ok()?.trim_end_matches('\0');
    (!name.is_empty() && header.log_pos != 0).then(|| Position {
        file: name.to_string(),
        pos: u64::from(header.log_pos),
    })
}

/// A checked event of a binlog file, with what the archive records about it.
#[derive(Debug)]
pub struct FramedEvent {
    pub bytes: Vec<u8>,
    /// The CRC32 state of `bytes` (all of them), computed while checking the event.
    pub crc: crc32fast::Hasher,
    pub header: Header,
    pub file: String,
    /// Where it starts and ends in `file`.
    pub start: u64,
    pub end: u64,
    /// A MariaDB GTID_EVENT: the transaction it begins.
    pub gtid: Option<GtidEvent>,
    /// After this event, no transaction is open (a segment cut here holds whole ones).
    pub at_boundary: bool,
    /// A ROTATE in the file: the file that follows; this event ends its file.
    pub rotate_to: Option<String>,
    /// A STOP event: the server shut down; this event ends its file.
    pub stop: bool,
}

/// Checks and classifies the events of one dump, in order (see the module doc).
pub struct Framer {
    file: Option<String>,
    /// Where the next event of `file` must start; `None` until known (a dump by GTID).
    expected: Option<u64>,
    /// A dump by GTID, before its first transaction: positions are learnt from the first
    /// GTID event (the server skips the transactions before the GTID position without a
    /// word, so nothing before it can be checked for continuity).
    learning: bool,
    checksum: Checksum,
    in_transaction: bool,
    standalone: bool,
    /// After a MySQL GTID event: the next query says whether a transaction follows.
    first_query_decides: bool,
}

/// A framing failure: an error in `file` at `pos`.
#[derive(Debug)]
pub struct FrameError {
    pub file: String,
    pub pos: u64,
    pub problem: String,
}

impl Framer {
    /// For a dump that starts at `start`: a position is checked from the first event on;
    /// a GTID start learns the position from the first event of the file.
    pub fn new(start: &BinlogStart, checksum: Checksum) -> Framer {
        let (file, expected) = match start {
            BinlogStart::Position { file, pos } => (Some(file.clone()), Some(*pos)),
            BinlogStart::Gtid(_) => (None, None),
        };
        Framer {
            learning: expected.is_none(),
            file,
            expected,
            checksum,
            in_transaction: false,
            standalone: false,
            first_query_decides: false,
        }
    }

    /// The file being read, and where its next event starts (when known).
    pub fn position(&self) -> Option<Position> {
        Some(Position {
            file: self.file.clone()?,
            pos: self.expected?,
        })
    }

    fn fail(&self, pos: Option<u64>, problem: impl std::fmt::Display) -> FrameError {
        FrameError {
            file: self.file.clone().unwrap_or_else(|| "(unknown file)".into()),
            pos: pos.or(self.expected).unwrap_or(0),
            problem: problem.to_string(),
        }
    }

    /// Checks one packet's event and says what it is.
    pub fn accept(&mut self, bytes: Vec<u8>) -> Result<Frame, FrameError> {
        let header = Header::parse(&bytes).map_err(|e| self.fail(None, e))?;
        let artificial = header.is_artificial() || header.log_pos == 0;
        match header.kind {
            kind::HEARTBEAT => {
                return Ok(Frame::Heartbeat {
                    position: heartbeat_position(&bytes, &header),
                });
            }
            kind::ROTATE if artificial => {
                // Made up by the server: names the file the next events come from. Its
                // checksum follows the stream's setting, not a file's: strip one if valid.
                let checksum = if event::has_valid_crc(&bytes, &header) {
                    Checksum::Crc32
                } else {
                    Checksum::Off
                };
                let rotate =
                    event::parse_rotate(&bytes, checksum).map_err(|e| self.fail(None, e))?;
                self.expected = (!self.learning).then_some(rotate.pos);
                if self.file.as_deref() != Some(rotate.file.as_str()) {
                    self.in_transaction = false;
                }
                self.file = Some(rotate.file);
                return Ok(Frame::Artificial);
            }
            kind::FORMAT_DESCRIPTION => {
                let checksum =
                    event::format_description_checksum(&bytes).map_err(|e| self.fail(None, e))?;
                event::verify_checksum(&bytes, &header, checksum)
                    .map_err(|e| self.fail(None, e))?;
                let file = self
                    .file
                    .clone()
                    .ok_or_else(|| self.fail(None, "FORMAT_DESCRIPTION before any ROTATE"))?;
                self.checksum = checksum;
                let resent = artificial;
                if !resent {
                    if header.start_pos() != Some(FIRST_EVENT_POS) {
                        return Err(self.fail(
                            header.start_pos(),
                            "FORMAT_DESCRIPTION not at the start of its file",
                        ));
                    }
                    self.expected = (!self.learning).then_some(u64::from(header.log_pos));
                    self.in_transaction = false;
                }
                return Ok(Frame::FileStart {
                    file,
                    format_description: bytes,
                    resent,
                });
            }
            _ if artificial => return Ok(Frame::Artificial),
            _ => {}
        }
        let start = header
            .start_pos()
            .ok_or_else(|| self.fail(None, "event whose end is before its size"))?;
        let crc = event::verified_crc(&bytes, &header, self.checksum)
            .map_err(|e| self.fail(Some(start), e))?;
        let starts_transaction = matches!(
            header.kind,
            kind::GTID | kind::MYSQL_GTID | kind::MYSQL_ANONYMOUS_GTID
        );
        if self.learning && !starts_transaction {
            // By GTID the server sends a file's events that belong to no transaction
            // (GTID_LIST, BINLOG_CHECKPOINT) and skips the transactions before the start
            // without a word: the archive starts at the first transaction it sends.
            return Ok(Frame::Skipped {
                position: Position {
                    file: self.file.clone().unwrap_or_default(),
                    pos: u64::from(header.log_pos),
                },
            });
        }
        match self.expected {
            Some(want) if want != start => {
                return Err(self.fail(
                    Some(want),
                    format!(
                        "event of type {} starts at {start}, not where the previous one ended \
                         ({want}): the stream skipped or repeated bytes",
                        header.kind
                    ),
                ));
            }
            _ => {}
        }
        let file = self
            .file
            .clone()
            .ok_or_else(|| self.fail(Some(start), "event before any ROTATE"))?;
        let end = u64::from(header.log_pos);
        let mut framed = FramedEvent {
            crc,
            gtid: None,
            at_boundary: false,
            rotate_to: None,
            stop: false,
            file,
            start,
            end,
            header,
            bytes,
        };
        self.track_transaction(&mut framed)
            .map_err(|e| self.fail(Some(start), e))?;
        self.expected = Some(end);
        self.learning = false;
        Ok(Frame::Event(framed))
    }

    /// Follows transactions: a GTID event opens one; XID, XA PREPARE, a COMMIT or
    /// ROLLBACK query (or the one statement of a standalone GTID) closes it.
    fn track_transaction(&mut self, ev: &mut FramedEvent) -> Result<(), EventError> {
        let checksum = self.checksum;
        match ev.header.kind {
            kind::GTID => {
                let g = event::parse_gtid(&ev.bytes, &ev.header, checksum)?;
                self.in_transaction = true;
                self.standalone = g.standalone;
                ev.gtid = Some(g);
            }
            kind::MYSQL_GTID | kind::MYSQL_ANONYMOUS_GTID => {
                // MySQL's GTID event does not say whether a transaction or a single
                // statement (DDL) follows: its first query does (BEGIN or not).
                self.in_transaction = true;
                self.standalone = false;
                self.first_query_decides = true;
            }
            kind::XID | kind::XA_PREPARE | kind::MYSQL_TRANSACTION_PAYLOAD => {
                self.in_transaction = false
            }
            kind::QUERY if self.in_transaction => {
                let text = event::query_text(&ev.bytes, checksum)?;
                let starts = |word: &[u8]| {
                    text.len() >= word.len() && text[..word.len()].eq_ignore_ascii_case(word)
                };
                let decides = std::mem::take(&mut self.first_query_decides);
                // MySQL opens an XA transaction's prepared half with `XA START` (or its
                // synonym `XA BEGIN`), not BEGIN: the half ends at its XA_PREPARE event.
                let opens = starts(b"BEGIN") || starts(b"XA START") || starts(b"XA BEGIN");
                if (decides && !opens)
                    || self.standalone
                    || starts(b"COMMIT")
                    || starts(b"ROLLBACK")
                {
                    self.in_transaction = false;
                }
            }
            kind::ROTATE => {
                ev.rotate_to = Some(event::parse_rotate(&ev.bytes, checksum)?.file);
                self.in_transaction = false;
            }
            kind::STOP => {
                ev.stop = true;
                self.in_transaction = false;
            }
            _ => {}
        }
        ev.at_boundary = !self.in_transaction;
        Ok(())
    }
}

/// What a stream's read error means for the archiver: 1236 is `Purged` (at `at`), other
/// server errors end the run, a lost connection is retried.
pub fn read_error(server: &str, at: Option<&Position>, e: WireError) -> ArchiveError {
    match e {
        WireError::Server { code, message, .. } if code == ER_MASTER_FATAL_ERROR_READING_BINLOG => {
            ArchiveError::Purged {
                server: server.to_string(),
                position: at.cloned(),
                message: format!("Error {code}: {message}"),
            }
        }
        // The server going away (shutdown, KILL) reaches us as an error packet first.
        WireError::Server {
            code: 1053 | 1927 | 2013 | 1317,
            ..
        } => ArchiveError::Connection {
            server: server.to_string(),
            message: e.to_string(),
        },
        WireError::Io(_) => ArchiveError::Connection {
            server: server.to_string(),
            message: e.to_string(),
        },
        _ => ArchiveError::Server {
            server: server.to_string(),
            context: "reading the binlog stream".into(),
            message: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binlog::event::tests::event;
    use crate::binlog::event::{FLAG_ARTIFICIAL, FLAG_BINLOG_IN_USE};

    fn fake_rotate(file: &str, pos: u64) -> Vec<u8> {
        let mut b = pos.to_le_bytes().to_vec();
        b.extend_from_slice(file.as_bytes());
        event(kind::ROTATE, 0, 0, FLAG_ARTIFICIAL, &b)
    }

    fn format_description(log_pos_zero: bool) -> Vec<u8> {
        let mut body = vec![4, 0];
        body.extend_from_slice(&[b'x'; 50]);
        body.extend_from_slice(&[0; 4]);
        body.push(19);
        body.extend_from_slice(&[13, 0, 8]);
        body.push(1);
        let len = (event::HEADER_LEN + body.len() + 4) as u32;
        let pos = if log_pos_zero { 0 } else { 4 + len };
        event(kind::FORMAT_DESCRIPTION, 1, pos, FLAG_BINLOG_IN_USE, &body)
    }

    fn query(text: &str, end: u32) -> Vec<u8> {
        let mut b = vec![0; 13];
        b.extend_from_slice(b"\0");
        b.extend_from_slice(text.as_bytes());
        let size = (event::HEADER_LEN + b.len() + 4) as u32;
        let _ = size;
        event(kind::QUERY, 10, end, 0, &b)
    }

    fn sized(ev: Vec<u8>, start: u64) -> Vec<u8> {
        // Re-make `ev` so that it ends at `start + len`.
        let h = Header::parse(&ev).unwrap();
        let body = &ev[event::HEADER_LEN..ev.len() - 4];
        event(
            h.kind,
            h.timestamp,
            (start + ev.len() as u64) as u32,
            h.flags,
            body,
        )
    }

    fn start_at(file: &str, pos: u64) -> BinlogStart {
        BinlogStart::Position {
            file: file.into(),
            pos,
        }
    }

    #[test]
    fn artificial_events_are_dropped_and_real_ones_checked_in_order() {
        let mut f = Framer::new(&start_at("b.000001", 4), Checksum::Crc32);
        assert!(matches!(
            f.accept(fake_rotate("b.000001", 4)).unwrap(),
            Frame::Artificial
        ));
        let fde = format_description(false);
        let fde_end = 4 + fde.len() as u64;
        match f.accept(fde).unwrap() {
            Frame::FileStart { file, resent, .. } => {
                assert_eq!(file, "b.000001");
                assert!(!resent);
            }
            other => panic!("{other:?}"),
        }
        let begin = sized(query("BEGIN", 0), fde_end);
        let begin_end = fde_end + begin.len() as u64;
        let Frame::Event(ev) = f.accept(begin).unwrap() else {
            panic!()
        };
        assert_eq!((ev.start, ev.end), (fde_end, begin_end));
        let heartbeat = event(kind::HEARTBEAT, 0, begin_end as u32, 0, b"b.000001");
        match f.accept(heartbeat).unwrap() {
            Frame::Heartbeat { position } => assert_eq!(
                position,
                Some(Position {
                    file: "b.000001".into(),
                    pos: begin_end
                })
            ),
            other => panic!("{other:?}"),
        }
        // An event that does not start where the last one ended is an error.
        let gap = sized(query("COMMIT", 0), begin_end + 1);
        let e = f.accept(gap).unwrap_err();
        assert_eq!(e.pos, begin_end);
        assert!(
            e.problem.contains("not where the previous one ended"),
            "{}",
            e.problem
        );
    }

    #[test]
    fn a_dump_past_the_start_gets_a_resent_format_description() {
        let mut f = Framer::new(&start_at("b.000001", 500), Checksum::Crc32);
        f.accept(fake_rotate("b.000001", 500)).unwrap();
        match f.accept(format_description(true)).unwrap() {
            Frame::FileStart { resent, .. } => assert!(resent),
            other => panic!("{other:?}"),
        }
        let Frame::Event(ev) = f.accept(sized(query("BEGIN", 0), 500)).unwrap() else {
            panic!()
        };
        assert_eq!(ev.start, 500);
    }

    #[test]
    fn a_truncated_or_corrupt_event_is_an_error_never_repaired() {
        let mut f = Framer::new(&start_at("b.000001", 500), Checksum::Crc32);
        f.accept(fake_rotate("b.000001", 500)).unwrap();
        let ev = sized(query("BEGIN", 0), 500);
        let e = f.accept(ev[..ev.len() - 1].to_vec()).unwrap_err();
        assert!(e.problem.contains("truncated"), "{}", e.problem);
        let mut bad = ev.clone();
        bad[25] ^= 1;
        let e = f.accept(bad).unwrap_err();
        assert!(e.problem.contains("CRC32"), "{}", e.problem);
        assert_eq!((e.file.as_str(), e.pos), ("b.000001", 500));
    }

    #[test]
    fn transactions_end_at_commit_xid_or_a_standalone_statement() {
        let mut f = Framer::new(&start_at("b.000001", 100), Checksum::Crc32);
        f.accept(fake_rotate("b.000001", 100)).unwrap();
        let mut pos = 100u64;
        let mut push = |f: &mut Framer, ev: Vec<u8>| -> bool {
            let ev = sized(ev, pos);
            pos += ev.len() as u64;
            match f.accept(ev).unwrap() {
                Frame::Event(e) => e.at_boundary,
                other => panic!("{other:?}"),
            }
        };
        let gtid = |seq: u64, standalone: bool| {
            let mut b = seq.to_le_bytes().to_vec();
            b.extend_from_slice(&0u32.to_le_bytes());
            b.push(u8::from(standalone));
            event(kind::GTID, 1, 0, 0, &b)
        };
        assert!(!push(&mut f, gtid(1, false)));
        assert!(!push(&mut f, query("BEGIN", 0)));
        assert!(!push(
            &mut f,
            event(kind::ANNOTATE_ROWS, 1, 0, 0, b"INSERT")
        ));
        assert!(push(&mut f, event(kind::XID, 1, 0, 0, &7u64.to_le_bytes())));
        assert!(!push(&mut f, gtid(2, false)));
        assert!(!push(&mut f, query("BEGIN", 0)));
        assert!(push(&mut f, query("COMMIT", 0)));
        assert!(!push(&mut f, gtid(3, true)));
        assert!(push(&mut f, query("CREATE TABLE t (a INT)", 0)));
    }

    #[test]
    fn mysql_transactions_end_at_xid_or_after_a_ddl_statement() {
        let mut f = Framer::new(&start_at("b.000001", 100), Checksum::Crc32);
        f.accept(fake_rotate("b.000001", 100)).unwrap();
        let mut pos = 100u64;
        let mut push = |f: &mut Framer, ev: Vec<u8>| -> bool {
            let ev = sized(ev, pos);
            pos += ev.len() as u64;
            match f.accept(ev).unwrap() {
                Frame::Event(e) => e.at_boundary,
                other => panic!("{other:?}"),
            }
        };
        let gtid = || event(kind::MYSQL_GTID, 1, 0, 0, &[0; 42]);
        assert!(!push(&mut f, gtid()));
        assert!(!push(&mut f, query("BEGIN", 0)));
        assert!(!push(&mut f, event(30, 1, 0, 0, b"rows")));
        assert!(push(&mut f, event(kind::XID, 1, 0, 0, &7u64.to_le_bytes())));
        assert!(!push(&mut f, gtid()));
        assert!(push(&mut f, query("CREATE TABLE t (a INT)", 0)));
        assert!(!push(&mut f, gtid()));
        assert!(push(
            &mut f,
            event(kind::MYSQL_TRANSACTION_PAYLOAD, 1, 0, 0, b"zstd")
        ));
        // An XA transaction's prepared half (opened by XA START, not BEGIN) ends at its
        // XA_PREPARE; its XA COMMIT, later, is a transaction of its own.
        for anonymous in [false, true] {
            let opening = if anonymous {
                event(kind::MYSQL_ANONYMOUS_GTID, 1, 0, 0, &[0; 42])
            } else {
                gtid()
            };
            assert!(!push(&mut f, opening));
            assert!(!push(&mut f, query("XA START X'7031',X'',1", 0)));
            assert!(!push(&mut f, event(30, 1, 0, 0, b"rows")));
            assert!(!push(&mut f, query("XA END X'7031',X'',1", 0)));
            assert!(push(&mut f, event(kind::XA_PREPARE, 1, 0, 0, &[0; 13])));
            assert!(!push(&mut f, gtid()));
            assert!(push(&mut f, query("XA COMMIT X'7031',X'',1", 0)));
        }
    }

    #[test]
    fn register_packet_layout() {
        assert_eq!(
            register_replica_packet(0x0102_0304),
            [0x15, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }
}
