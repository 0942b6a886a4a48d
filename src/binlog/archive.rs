//! The archiver's run: resume where the store says, stream, cut segments, commit them, and
//! reconnect after a lost connection (a network cut, a server restart) at exactly the
//! event after the last committed one, until stopped or, with `once`, until the position
//! the server had when the run started.
//!
//! Whatever ends a connection, the events received and checked before it are committed
//! first: a lost connection, a corrupt event (the good events before it are kept, the bad
//! one never is), a stop. ERR 1236 (the binlog needed is purged) ends the run with
//! `ArchiveError::Purged`, never retried; `mark_gap` turns it into a gap in the store,
//! unless the server's binlog restarted (RESET MASTER, a new base name: `restart_reason`).
//! A restarted binlog is refused, at the start of a run and in `mark_gap`, naming the
//! server, where the archive ends and what to do; nothing is written for it.
//!
//! A server heartbeat (the server has sent everything it has) that finds every event
//! received committed, and whose file and position are where the archive ends, tells the
//! store the archive is caught up (`SegmentStore::caught_up`, at most once per flush
//! interval): monitoring can then tell an idle server from a stopped archiver.
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
    /// The source server's identity, recorded in every segment (`Segment::server`).
    pub server: Option<String>,
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
            server: None,
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

/// Whether the server, at `server` (a heartbeat's position), has nothing the archive
/// lacks: it is where the archive ends (`resume`), or, after a segment that ended its file
/// (ROTATE: the archive resumes at the next file's first event), right after that file's
/// FORMAT_DESCRIPTION (`format_description`, the file's). A heartbeat without a position
/// proves nothing.
fn at_end(
    server: Option<&Position>,
    resume: Option<&ResumePoint>,
    format_description: Option<&(String, Vec<u8>)>,
) -> bool {
    let (Some(server), Some(resume)) = (server, resume) else {
        return false;
    };
    let end = &resume.position;
    server.file == end.file
        && (server.pos == end.pos
            || (end.pos == FIRST_EVENT_POS
                && format_description.is_some_and(|(f, fde)| {
                    *f == end.file && server.pos == FIRST_EVENT_POS + fde.len() as u64
                })))
}

/// What a run keeps between events and across connections.
struct Run<'a, S> {
    store: &'a mut S,
    builder: SegmentBuilder,
    report: ArchiveReport,
    /// Where the archive ends: after the last committed segment.
    resume: Option<ResumePoint>,
    /// The FORMAT_DESCRIPTION of the file being archived: the archive's own copy when it
    /// has one, so that a resumed file's segments carry the same one.
    format_description: Option<(String, Vec<u8>)>,
    /// With `once`: the server's position at the start.
    target: Option<Position>,
    /// When the store was last told the archiver is caught up (`SegmentStore::caught_up`),
    /// and how often it may be told (the flush interval).
    caught_up_at: Option<Instant>,
    caught_up_every: Duration,
}

impl<S: SegmentStore> Run<'_, S> {
    /// Commits the open segment, if any.
    async fn commit(&mut self) -> Result<(), ArchiveError> {
        if let Some((segment, bytes)) = self.builder.take() {
            self.store
                .commit(&segment, &bytes)
                .await
                .map_err(store_error("committing a segment"))?;
            self.report.segments += 1;
            self.report.bytes += bytes.len() as u64;
            self.report.position = Some(Position {
                file: segment.file.clone(),
                pos: segment.end,
            });
            self.resume = Some(segment.resume_point());
        }
        Ok(())
    }

    /// Commits the open segment if it is of another file than `file`.
    async fn commit_other_file(&mut self, file: &str) -> Result<(), ArchiveError> {
        if self.builder.open_file().is_some_and(|f| f != file) {
            self.commit().await?;
        }
        Ok(())
    }

    fn reached_target(&self, at: &Position) -> bool {
        self.target.as_ref().is_some_and(|t| reached(at, t))
    }

    /// Takes one checked frame; `true` once `once`'s target is reached.
    async fn on_frame(&mut self, frame: Frame, server: &str) -> Result<bool, ArchiveError> {
        match frame {
            Frame::Artificial => Ok(false),
            // The server has nothing more to send: with every event received committed,
            // the archive is caught up (at most once per flush interval, to the store).
            Frame::Heartbeat { position } => {
                let due = self
                    .caught_up_at
                    .is_none_or(|t| t.elapsed() >= self.caught_up_every);
                let at_end = at_end(
                    position.as_ref(),
                    self.resume.as_ref(),
                    self.format_description.as_ref(),
                );
                if self.builder.open_file().is_none() && due && at_end {
                    self.store
                        .caught_up()
                        .await
                        .map_err(store_error("recording a heartbeat"))?;
                    self.caught_up_at = Some(Instant::now());
                }
                Ok(false)
            }
            Frame::Skipped { position } => Ok(self.reached_target(&position)),
            Frame::FileStart {
                file,
                format_description,
                resent,
            } => {
                self.commit_other_file(&file).await?;
                let ours = self
                    .format_description
                    .as_ref()
                    .is_some_and(|(f, _)| *f == file);
                if !(resent && ours) {
                    self.format_description = Some((file, format_description));
                }
                Ok(false)
            }
            Frame::Event(ev) => {
                self.commit_other_file(&ev.file).await?;
                let Some((_, fde)) = self
                    .format_description
                    .as_ref()
                    .filter(|(f, _)| *f == ev.file)
                else {
                    return Err(ArchiveError::Corrupt {
                        server: server.to_string(),
                        file: ev.file.clone(),
                        pos: ev.start,
                        problem: "an event before its file's FORMAT_DESCRIPTION".into(),
                    });
                };
                self.builder.push(&ev, fde);
                self.report.events += 1;
                let done = self.reached_target(&Position {
                    file: ev.file.clone(),
                    pos: ev.end,
                });
                if done || self.builder.due(Instant::now()) {
                    self.commit().await?;
                }
                Ok(done)
            }
        }
    }
}

/// Packets read in one go: every whole packet that had arrived.
type Batch = Vec<WireResult<BinlogPacket>>;

/// After a wake-up that brought less than `BUSY_BATCH` bytes, the reader lets the events
/// pile up in the socket this long before it reads again: a wake-up (a system call, a task
/// hand-off) per batch rather than per event. Under sysbench oltp_write_only with 2 threads
/// the server sends each event on its own (15,000 a second here), and waking for each was
/// most of the archiver's CPU (perf: the scheduler and futexes). Segments are committed
/// seconds apart, so 30 ms more is nothing. A batch of `BUSY_BATCH` or more (most of a
/// unix socket's 208 KiB buffer) means the server is sending faster than that: the next
/// read follows at once, so a busy stream is never held back.
const COALESCE: Duration = Duration::from_millis(30);
const BUSY_BATCH: usize = 128 * 1024;
/// The most packets handed over at once.
const MAX_BATCH: usize = 4096;
/// Batches the reader may hand over before the archiver takes them.
const BATCHES_IN_FLIGHT: usize = 8;

/// Reads the stream on its own task, so that a read is never cancelled half-way (a
/// flush timer or a stop only drops the channel's receiver), and hands the packets over
/// in batches (see `COALESCE`).
async fn read_packets(mut conn: WireConn, tx: mpsc::Sender<Batch>, timeout: Duration) {
    loop {
        let mut batch = Vec::new();
        let mut bytes = 0;
        loop {
            let packet = if batch.is_empty() {
                match tokio::time::timeout(timeout, conn.next_binlog_packet()).await {
                    Ok(p) => p,
                    Err(_) => Err(WireError::Io(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no event nor heartbeat for {} s", timeout.as_secs()),
                    ))),
                }
            } else {
                // A whole packet is buffered: this returns at once.
                conn.next_binlog_packet().await
            };
            let last = match &packet {
                Ok(BinlogPacket::Event(e)) => {
                    bytes += e.len();
                    false
                }
                _ => true,
            };
            batch.push(packet);
            if last {
                let _ = tx.send(batch).await;
                return;
            }
            if !conn.has_buffered_packet() || batch.len() >= MAX_BATCH {
                break;
            }
        }
        if tx.send(batch).await.is_err() {
            return;
        }
        if bytes < BUSY_BATCH {
            tokio::time::sleep(COALESCE).await;
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
    let resume = store
        .resume_point()
        .await
        .map_err(store_error("reading where the archive ends"))?;
    // Before anything, and before `once`'s target (the server's position) is compared
    // with the archive's end: a restarted binlog's position is "before" it.
    check_continues(conn, resume.as_ref()).await?;
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
    let target = if opts.once {
        Some(stream::current_position(conn).await?)
    } else {
        None
    };
    let mut run = Run {
        store,
        builder: SegmentBuilder::new(opts.cut).with_server(opts.server.clone()),
        report: ArchiveReport {
            position: resume.as_ref().map(|r| r.position.clone()),
            ..Default::default()
        },
        format_description: resume.as_ref().and_then(|r| {
            r.format_description
                .clone()
                .map(|f| (r.position.file.clone(), f))
        }),
        resume,
        target,
        caught_up_at: None,
        caught_up_every: opts.cut.flush_interval,
    };
    if let BinlogStart::Position { file, pos } = &start
        && run.reached_target(&Position {
            file: file.clone(),
            pos: *pos,
        })
    {
        return Ok(run.report);
    }
    let mut failing_since: Option<Instant> = None;
    let mut backoff = Duration::from_millis(200);
    loop {
        let lost = match stream::open(conn, &start, opts.server_id, opts.heartbeat).await {
            Ok(stream) => {
                let ended = follow(&mut run, stream, &start, opts, &mut stop).await;
                if ended.received_any {
                    failing_since = None;
                    backoff = Duration::from_millis(200);
                }
                // What was received and checked is committed, however the stream ended.
                run.commit().await?;
                match ended.outcome? {
                    Ended::Finished => return Ok(run.report),
                    Ended::Lost(e) => {
                        run.report.reconnects += 1;
                        e
                    }
                }
            }
            Err(e @ ArchiveError::Connection { .. }) => e,
            Err(e) => return Err(e),
        };
        let since = *failing_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= opts.reconnect_for {
            return Err(lost);
        }
        if let Some(r) = &run.resume {
            start = BinlogStart::Position {
                file: r.position.file.clone(),
                pos: r.position.pos,
            };
        }
        tokio::select! {
            _ = &mut stop => return Ok(run.report),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// How one connection's stream went.
struct Followed {
    outcome: Result<Ended, ArchiveError>,
    /// Whether any packet arrived (the connection worked).
    received_any: bool,
}

/// Follows one connection's stream until it ends, `stop` fires or `once`'s target is
/// reached, committing segments as they are due.
async fn follow<S: SegmentStore>(
    run: &mut Run<'_, S>,
    stream: stream::Stream,
    start: &BinlogStart,
    opts: &ArchiveOptions,
    stop: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Followed {
    let server = stream.server.clone();
    let mut framer = Framer::new(start, Checksum::Crc32);
    let (tx, mut rx) = mpsc::channel(BATCHES_IN_FLIGHT);
    let reader = tokio::spawn(read_packets(stream.conn, tx, opts.read_timeout));
    let mut received_any = false;
    let lost = |message: &str| {
        Ok(Ended::Lost(ArchiveError::Connection {
            server: server.clone(),
            message: message.to_string(),
        }))
    };
    // After a stop, the batches the reader has already handed over are still taken (at
    // most the channel's capacity, so a busy stream cannot hold the stop back): what was
    // received is committed, as the CLI promises.
    let mut drain_after_stop: Option<usize> = None;
    let outcome = 'stream: loop {
        let batch = if let Some(left) = drain_after_stop.as_mut() {
            match rx.try_recv() {
                Ok(batch) if *left > 0 => {
                    *left -= 1;
                    Some(batch)
                }
                _ => break Ok(Ended::Finished),
            }
        } else {
            let sleep_to = run.builder.deadline().map(tokio::time::Instant::from_std);
            tokio::select! {
                biased;
                _ = &mut *stop => {
                    drain_after_stop = Some(BATCHES_IN_FLIGHT);
                    continue;
                }
                _ = async { tokio::time::sleep_until(sleep_to.expect("deadline")).await }, if sleep_to.is_some() => {
                    match run.commit().await {
                        Ok(()) => continue,
                        Err(e) => break Err(e),
                    }
                }
                batch = rx.recv() => batch,
            }
        };
        let Some(batch) = batch else {
            break lost("the stream ended");
        };
        for packet in batch {
            let bytes = match packet {
                Ok(BinlogPacket::End) => break 'stream lost("the server ended the binlog dump"),
                Ok(BinlogPacket::Event(bytes)) => bytes,
                Err(e) => match read_error(&server, framer.position().as_ref(), e) {
                    e @ ArchiveError::Connection { .. } => break 'stream Ok(Ended::Lost(e)),
                    e => break 'stream Err(e),
                },
            };
            received_any = true;
            let frame = match framer.accept(bytes) {
                Ok(f) => f,
                Err(fe) => {
                    break 'stream Err(ArchiveError::Corrupt {
                        server: server.clone(),
                        file: fe.file,
                        pos: fe.pos,
                        problem: fe.problem,
                    });
                }
            };
            match run.on_frame(frame, &server).await {
                Ok(false) => {}
                Ok(true) => break 'stream Ok(Ended::Finished),
                Err(e) => break 'stream Err(e),
            }
        }
    };
    reader.abort();
    // Stopped: whatever the drained batches ended with, the run ends (a lost connection
    // would otherwise reconnect and wait on the stop that has already fired).
    let outcome = match outcome {
        Ok(Ended::Lost(_)) if drain_after_stop.is_some() => Ok(Ended::Finished),
        other => other,
    };
    Followed {
        outcome,
        received_any,
    }
}

/// Whether the server's binlog `files` (SHOW BINARY LOGS: name, size) can go on from
/// `after`, where the archive ends; if not, why not. A purge only removes older files: the
/// server then has `after`'s file at least as long as `after`, or only later files of the
/// same base name. Anything else is a binlog that restarted: `RESET MASTER` (`RESET
/// BINARY LOGS AND GTIDS` on MySQL 8.4) numbering its files from `<base>.000001` again,
/// its files replaced, or a new `log_bin_basename`. The new files' positions would be
/// taken for the old ones' (the archive orders segments by file number and offset).
/// A restart that has already grown past the archive's end in the same file (the archive
/// ends at `binlog.000002:900`, the new `binlog.000002` is longer) cannot be told from
/// names and sizes.
fn restart_reason(after: &Position, files: &[(String, u64)]) -> Option<String> {
    let base = |f: &str| {
        f.rsplit_once('.')
            .map_or(f.to_string(), |(b, _)| b.to_string())
    };
    let ours = base(&after.file);
    let (oldest, _) = files.first()?;
    let (newest, _) = files.last()?;
    let same: Vec<&(String, u64)> = files.iter().filter(|(f, _)| base(f) == ours).collect();
    let reset = "the binary log was reset (RESET MASTER; RESET BINARY LOGS AND GTIDS on \
                 MySQL 8.4) or its files replaced, and its numbering restarted";
    if same.is_empty() {
        return Some(format!(
            "its binary logs are now {oldest} to {newest}: the base name changed \
             (log_bin_basename), none is named {ours}.*"
        ));
    }
    if let Some((_, size)) = same.iter().find(|(f, _)| *f == after.file) {
        return (*size < after.pos).then(|| {
            format!(
                "its {} is {size} bytes long, shorter than the archive of it: {reset} \
                 (or the file lost its end in a crash of the server's host)",
                after.file
            )
        });
    }
    let numbers = same.iter().map(|(f, _)| file_index(f));
    match (numbers.max().flatten(), file_index(&after.file)) {
        (Some(n), Some(a)) if n > a => None, // older files purged
        _ => Some(format!(
            "its newest binary log is {newest}, not after {}: {reset}",
            after.file
        )),
    }
}

/// The refusal to go on from `after` on `server`, for `why` (`restart_reason`), with what
/// the server said (`said`), if it said anything.
fn restart_refusal(server: &str, after: &Position, why: &str, said: Option<&str>) -> ArchiveError {
    ArchiveError::Server {
        server: server.to_string(),
        context: format!("continuing the binlog archive from {after}"),
        message: format!(
            "{why}{}. The new positions cannot follow this archive's: nothing was archived, \
             no gap recorded. Archive the server as a new source (rbackup binlog --source \
             NEW) and take a new backup naming it (rbackup backup --source NEW); this \
             archive stays restorable up to {after}",
            said.map_or(String::new(), |s| format!(" (the server said: {s})"))
        ),
    }
}

/// Refuses a server whose binlog cannot go on from `resume` (`restart_reason`).
async fn check_continues(
    conn: &ConnectionOptions,
    resume: Option<&ResumePoint>,
) -> Result<(), ArchiveError> {
    let Some(after) = resume.map(|r| &r.position) else {
        return Ok(());
    };
    let (server, files) = stream::binlog_files(conn).await?;
    match restart_reason(after, &files) {
        Some(why) => Err(restart_refusal(&server, after, &why, None)),
        None => Ok(()),
    }
}

/// Turns `ArchiveError::Purged` into a gap in `store`: archiving goes on from the start
/// of the oldest binlog the server still has. Returns the gap recorded; any other error
/// is handed back as it is. A binlog that restarted (see `restart_reason`) is refused with
/// `ArchiveError::Server`, and nothing is recorded.
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
    let (server, files) = stream::binlog_files(conn).await?;
    let Some((oldest, _)) = files.first().cloned() else {
        return Err(ArchiveError::Server {
            server,
            context: "listing the binary logs".into(),
            message: "the server has no binary log".into(),
        });
    };
    // A gap only goes forward: one "back" to a restarted binlog would sort before the
    // archive's end, and archiving would resume there again for ever.
    if let Some(after) = &after {
        let why = restart_reason(after, &files).or_else(|| {
            let forward = matches!(
                (file_index(&oldest), file_index(&after.file)),
                (Some(o), Some(a)) if o > a
            );
            (!forward).then(|| {
                format!(
                    "its oldest binary log is {oldest}, not after {}: the binary log was \
                     reset or its files replaced",
                    after.file
                )
            })
        });
        if let Some(why) = why {
            return Err(restart_refusal(&server, after, &why, Some(message)));
        }
    }
    let gap = Gap {
        after,
        resume_at: Position {
            file: oldest,
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

    #[test]
    fn a_restarted_binlog_is_told_from_a_purge() {
        let files = |f: &[(&str, u64)]| -> Vec<(String, u64)> {
            f.iter().map(|(n, s)| (n.to_string(), *s)).collect()
        };
        let end = at("b.000003", 900);
        // Purged: later files only, or the file still there and long enough.
        assert_eq!(restart_reason(&end, &files(&[("b.000005", 4000)])), None);
        assert_eq!(restart_reason(&end, &files(&[("b.000003", 900)])), None);
        assert_eq!(
            restart_reason(&end, &files(&[("b.000002", 10), ("b.000003", 5000)])),
            None
        );
        assert_eq!(restart_reason(&end, &[]), None);
        // RESET MASTER: numbered below the archive's end, or the file shorter than it.
        let why = restart_reason(&end, &files(&[("b.000001", 5000)])).unwrap();
        assert!(
            why.contains("RESET MASTER") && why.contains("b.000001"),
            "{why}"
        );
        let why = restart_reason(&end, &files(&[("b.000001", 9), ("b.000003", 899)])).unwrap();
        assert!(why.contains("899 bytes"), "{why}");
        // A new base name.
        let why = restart_reason(&end, &files(&[("c.000001", 5000)])).unwrap();
        assert!(
            why.contains("log_bin_basename") && why.contains("c.000001"),
            "{why}"
        );
    }

    #[test]
    fn caught_up_only_where_the_archive_ends() {
        let resume = |p: Position| ResumePoint {
            position: p,
            format_description: None,
        };
        let end = resume(at("b.000002", 900));
        assert!(at_end(Some(&at("b.000002", 900)), Some(&end), None));
        // The server is further on (events the archive has not got), or elsewhere.
        assert!(!at_end(Some(&at("b.000002", 1200)), Some(&end), None));
        assert!(!at_end(Some(&at("b.000003", 900)), Some(&end), None));
        assert!(!at_end(None, Some(&end), None));
        assert!(!at_end(Some(&at("b.000002", 900)), None, None));
        // After a ROTATE: right after the next file's FORMAT_DESCRIPTION.
        let rotated = resume(at("b.000003", FIRST_EVENT_POS));
        let fde = ("b.000003".to_string(), vec![0u8; 100]);
        assert!(at_end(
            Some(&at("b.000003", 104)),
            Some(&rotated),
            Some(&fde)
        ));
        assert!(!at_end(
            Some(&at("b.000003", 150)),
            Some(&rotated),
            Some(&fde)
        ));
        let other = ("b.000002".to_string(), vec![0u8; 100]);
        assert!(!at_end(
            Some(&at("b.000003", 104)),
            Some(&rotated),
            Some(&other)
        ));
    }
}
