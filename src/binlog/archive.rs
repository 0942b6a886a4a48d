//! The archiver's run: resume where the store says, stream, cut segments, commit them, and
//! reconnect after a lost connection (a network cut, a server restart) at exactly the
//! event after the last committed one, until stopped or, with `once`, until the position
//! the server had when the run started.
//!
//! Whatever ends a connection, the events received and checked before it are committed
//! first: a lost connection, a corrupt event (the good events before it are kept, the bad
//! one never is), a stop. ERR 1236 (the binlog needed is purged) ends the run with
//! `ArchiveError::Purged`, never retried; `mark_gap` turns it into a gap in the store.
//!
//! Not for: checking events (`stream`), where segments end (`segment`), or storage.

use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::binlog::event::{Checksum, FIRST_EVENT_POS};
use crate::binlog::segment::{
    CutPolicy, Gap, ResumePoint, SegmentBuilder, SegmentStore, StoreError,
};
use crate::binlog::stream::{self, DEFAULT_SERVER_ID, Frame, Framer, read_error};
use crate::binlog::{ArchiveError, Position};
use crate::client::options::ConnectionOptions;
use crate::client::wire::{BinlogPacket, WireConn, WireError, WireResult};
use crate::sql::dialect::BinlogStart;

/// How an archiver runs.
#[derive(Debug, Clone)]
pub struct ArchiveOptions {
    /// The server id to register with (see `stream::DEFAULT_SERVER_ID`).
    pub server_id: u32,
    pub cut: CutPolicy,
    /// How often an idle server sends a heartbeat.
    pub heartbeat: Duration,
    /// No event nor heartbeat for this long: the connection is taken as lost.
    pub read_timeout: Duration,
    /// Reconnecting is given up after failing for this long (the run then fails).
    pub reconnect_for: Duration,
    /// Archive up to the server's position at the start (SHOW MASTER STATUS), then stop.
    pub once: bool,
    /// Where to start when the store is empty; `None`: the oldest binlog on the server.
    pub start: Option<BinlogStart>,
}

impl Default for ArchiveOptions {
    fn default() -> Self {
        ArchiveOptions {
            server_id: DEFAULT_SERVER_ID,
            cut: CutPolicy::default(),
            heartbeat: Duration::from_secs(2),
            read_timeout: Duration::from_secs(10),
            reconnect_for: Duration::from_secs(300),
            once: false,
            start: None,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveReport {
    pub segments: u64,
    pub events: u64,
    pub bytes: u64,
    /// Connections lost and opened again.
    pub reconnects: u64,
    /// Where the archive ends now (the next run starts there).
    pub position: Option<Position>,
}

fn store_error(context: &'static str) -> impl Fn(StoreError) -> ArchiveError {
    move |e| ArchiveError::Store {
        context: context.to_string(),
        message: e.to_string(),
    }
}

/// The number after the last dot of a binlog file name ("binlog.000012" is 12), for
/// ordering files.
fn file_index(name: &str) -> Option<u64> {
    name.rsplit_once('.').and_then(|(_, n)| n.parse().ok())
}

/// Whether position `at` is at or past `target`.
fn reached(at: &Position, target: &Position) -> bool {
    if at.file == target.file {
        return at.pos >= target.pos;
    }
    match (file_index(&at.file), file_index(&target.file)) {
        (Some(a), Some(t)) => a > t,
        _ => at.file > target.file,
    }
}

/// Commits the open segment, if any.
async fn commit<S: SegmentStore>(
    builder: &mut SegmentBuilder,
    store: &mut S,
    report: &mut ArchiveReport,
    resume: &mut Option<ResumePoint>,
) -> Result<(), ArchiveError> {
    if let Some((segment, bytes)) = builder.take() {
        store
            .commit(&segment, &bytes)
            .await
            .map_err(store_error("committing a segment"))?;
        report.segments += 1;
        report.bytes += bytes.len() as u64;
        report.position = Some(Position {
            file: segment.file.clone(),
            pos: segment.end,
        });
        *resume = Some(segment.resume_point());
    }
    Ok(())
}

/// Reads the stream on its own task, so that a read is never cancelled half-way (a
/// flush timer or a stop only drops the channel's receiver).
async fn read_packets(
    mut conn: WireConn,
    tx: mpsc::Sender<WireResult<BinlogPacket>>,
    timeout: Duration,
) {
    loop {
        let packet = match tokio::time::timeout(timeout, conn.next_binlog_packet()).await {
            Ok(p) => p,
            Err(_) => Err(WireError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no event nor heartbeat for {} s", timeout.as_secs()),
            ))),
        };
        let last = !matches!(packet, Ok(BinlogPacket::Event(_)));
        if tx.send(packet).await.is_err() || last {
            return;
        }
    }
}

/// How one connection's stream ended.
enum Ended {
    /// Stopped by the caller, or `once` reached its target.
    Finished,
    /// Lost; reconnect.
    Lost(ArchiveError),
}

/// Archives the binlog of the server `conn` points at into `store` (see the module doc).
/// `stop` ends the run (the open segment is committed first).
pub async fn archive<S: SegmentStore>(
    conn: &ConnectionOptions,
    store: &mut S,
    opts: &ArchiveOptions,
    stop: impl Future<Output = ()>,
) -> Result<ArchiveReport, ArchiveError> {
    tokio::pin!(stop);
    let mut report = ArchiveReport::default();
    let mut resume = store
        .resume_point()
        .await
        .map_err(store_error("reading where the archive ends"))?;
    let mut start = match &resume {
        Some(r) => BinlogStart::Position {
            file: r.position.file.clone(),
            pos: r.position.pos,
        },
        None => match &opts.start {
            Some(s) => s.clone(),
            None => BinlogStart::Position {
                file: stream::oldest_binlog(conn).await?,
                pos: FIRST_EVENT_POS,
            },
        },
    };
    report.position = resume.as_ref().map(|r| r.position.clone());
    // The FORMAT_DESCRIPTION of the file being archived: the archive's own copy when it
    // has one, so that a resumed file's segments carry the same one.
    let mut format_description: Option<(String, Vec<u8>)> = resume.as_ref().and_then(|r| {
        r.format_description
            .clone()
            .map(|f| (r.position.file.clone(), f))
    });
    let target = if opts.once {
        Some(stream::current_position(conn).await?)
    } else {
        None
    };
    if let (Some(t), BinlogStart::Position { file, pos }) = (&target, &start)
        && reached(
            &Position {
                file: file.clone(),
                pos: *pos,
            },
            t,
        )
    {
        return Ok(report);
    }
    let mut builder = SegmentBuilder::new(opts.cut);
    let mut failing_since: Option<Instant> = None;
    let mut backoff = Duration::from_millis(200);
    loop {
        let opened = stream::open(conn, &start, opts.server_id, opts.heartbeat).await;
        let stream = match opened {
            Ok(s) => s,
            Err(e @ ArchiveError::Connection { .. }) => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= opts.reconnect_for {
                    return Err(e);
                }
                tokio::select! {
                    _ = &mut stop => return Ok(report),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            Err(e) => return Err(e),
        };
        let server = stream.server.clone();
        let mut framer = Framer::new(&start, Checksum::Crc32);
        let (tx, mut rx) = mpsc::channel(8);
        let reader = tokio::spawn(read_packets(stream.conn, tx, opts.read_timeout));
        let mut received_any = false;
        let ended: Result<Ended, ArchiveError> = loop {
            let deadline = builder.deadline();
            let sleep_to = deadline.map(tokio::time::Instant::from_std);
            tokio::select! {
                biased;
                _ = &mut stop => break Ok(Ended::Finished),
                _ = async { tokio::time::sleep_until(sleep_to.expect("deadline")).await }, if sleep_to.is_some() => {
                    if let Err(e) = commit(&mut builder, store, &mut report, &mut resume).await {
                        break Err(e);
                    }
                }
                msg = rx.recv() => {
                    let bytes = match msg {
                        None => break Ok(Ended::Lost(ArchiveError::Connection {
                            server: server.clone(),
                            message: "the stream ended".into(),
                        })),
                        Some(Ok(BinlogPacket::Event(bytes))) => bytes,
                        Some(Ok(BinlogPacket::End)) => break Ok(Ended::Lost(ArchiveError::Connection {
                            server: server.clone(),
                            message: "the server ended the binlog dump".into(),
                        })),
                        Some(Err(e)) => match read_error(&server, framer.position().as_ref(), e) {
                            e @ ArchiveError::Connection { .. } => break Ok(Ended::Lost(e)),
                            e => break Err(e),
                        },
                    };
                    if !received_any {
                        received_any = true;
                        failing_since = None;
                        backoff = Duration::from_millis(200);
                    }
                    let frame = match framer.accept(bytes) {
                        Ok(f) => f,
                        Err(fe) => break Err(ArchiveError::Corrupt {
                            server: server.clone(),
                            file: fe.file,
                            pos: fe.pos,
                            problem: fe.problem,
                        }),
                    };
                    match frame {
                        Frame::Artificial => {}
                        Frame::Skipped { position } => {
                            if target.as_ref().is_some_and(|t| reached(&position, t)) {
                                break Ok(Ended::Finished);
                            }
                        }
                        Frame::FileStart { file, format_description: fde, resent } => {
                            if builder.open_file().is_some_and(|f| f != file)
                                && let Err(e) = commit(&mut builder, store, &mut report, &mut resume).await
                            {
                                break Err(e);
                            }
                            let ours = format_description.as_ref().is_some_and(|(f, _)| *f == file);
                            if !(resent && ours) {
                                format_description = Some((file, fde));
                            }
                        }
                        Frame::Event(ev) => {
                            if builder.open_file().is_some_and(|f| f != ev.file)
                                && let Err(e) = commit(&mut builder, store, &mut report, &mut resume).await
                            {
                                break Err(e);
                            }
                            let Some((_, fde)) = format_description.as_ref().filter(|(f, _)| *f == ev.file) else {
                                break Err(ArchiveError::Corrupt {
                                    server: server.clone(),
                                    file: ev.file.clone(),
                                    pos: ev.start,
                                    problem: "an event before its file's FORMAT_DESCRIPTION".into(),
                                });
                            };
                            builder.push(&ev, fde);
                            report.events += 1;
                            let done = target.as_ref().is_some_and(|t| {
                                reached(&Position { file: ev.file.clone(), pos: ev.end }, t)
                            });
                            if (done || builder.due(Instant::now()))
                                && let Err(e) = commit(&mut builder, store, &mut report, &mut resume).await
                            {
                                break Err(e);
                            }
                            if done {
                                break Ok(Ended::Finished);
                            }
                        }
                    }
                }
            }
        };
        reader.abort();
        // What was received and checked is committed, however the stream ended.
        commit(&mut builder, store, &mut report, &mut resume).await?;
        match ended? {
            Ended::Finished => return Ok(report),
            Ended::Lost(e) => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= opts.reconnect_for {
                    return Err(e);
                }
                report.reconnects += 1;
                if let Some(r) = &resume {
                    start = BinlogStart::Position {
                        file: r.position.file.clone(),
                        pos: r.position.pos,
                    };
                }
                tokio::select! {
                    _ = &mut stop => return Ok(report),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Turns `ArchiveError::Purged` into a gap in `store`: archiving goes on from the start
/// of the oldest binlog the server still has. Returns the gap recorded; any other error
/// is handed back as it is.
pub async fn mark_gap<S: SegmentStore>(
    conn: &ConnectionOptions,
    store: &mut S,
    error: ArchiveError,
) -> Result<Gap, ArchiveError> {
    let ArchiveError::Purged { message, .. } = &error else {
        return Err(error);
    };
    let after = store
        .resume_point()
        .await
        .map_err(store_error("reading where the archive ends"))?
        .map(|r| r.position);
    let gap = Gap {
        after,
        resume_at: Position {
            file: stream::oldest_binlog(conn).await?,
            pos: FIRST_EVENT_POS,
        },
        message: message.clone(),
        recorded_at: chrono::Utc::now().timestamp(),
    };
    store
        .record_gap(&gap)
        .await
        .map_err(store_error("recording a gap"))?;
    Ok(gap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(file: &str, pos: u64) -> Position {
        Position {
            file: file.into(),
            pos,
        }
    }

    #[test]
    fn positions_order_by_file_number_then_offset() {
        assert!(reached(&at("b.000002", 500), &at("b.000002", 500)));
        assert!(!reached(&at("b.000002", 499), &at("b.000002", 500)));
        assert!(reached(&at("b.000010", 4), &at("b.000009", 9000)));
        assert!(!reached(&at("b.000009", 9000), &at("b.000010", 4)));
        assert!(reached(&at("b.1000000", 4), &at("b.999999", 4)));
    }
}
