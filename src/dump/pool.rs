//! Several connections feeding one ordered stream: the chunks of a table are read in
//! parallel by the pool's sessions (all inside one snapshot, see `group`), encoded as they
//! arrive, and handed to the writer strictly in chunk order. Readers encode rows, the writer
//! decides where INSERT statements end (`encode::sql::StatementJoiner`), so the output is
//! the same bytes whatever the number of readers and the chunking.
//!
//! Memory is bounded: each chunk in flight passes its encoded bytes through a channel of
//! `CHANNEL_BUFFERS` buffers of about `BUFFER_BYTES`; a reader whose turn has not come
//! waits (and so does its server connection) until the writer drains it.
//! Not for: deciding chunks (see `chunk`) or what the stream contains (see `stream`).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::client::conn::Session;
use crate::dump::group;
use crate::dump::read::TableRead;
use crate::error::{Error, Result};
use crate::format::encode::sql::{InsertStyle, SeparatedRows, SqlEncoder, StatementJoiner};
use crate::format::encode::xml::XmlRowEncoder;
use crate::format::objects::{TableInfo, TableKind};

/// Encoded bytes are sent to the writer in pieces of about this size.
const BUFFER_BYTES: usize = 256 * 1024;
/// Pieces a chunk may have in flight before its reader waits for the writer: 4 MiB, twice
/// a default chunk (`plan::STREAM_CHUNK_BYTES`), so a reader ahead of the writer usually
/// reads its whole chunk and takes the next.
const CHANNEL_BUFFERS: usize = 16;
/// Chunks in flight per reader session (the one being written included): with two, every
/// reader can read ahead of the writer by a chunk.
const CHUNKS_PER_READER: usize = 2;

/// One key range of a table to read and encode as INSERT statements (or XML rows).
pub struct ChunkRead {
    pub read: Arc<TableRead>,
    pub range: Option<String>,
    pub quoted_table: String,
    pub style: InsertStyle,
    /// `--xml`: the rows are `<row>` elements instead (whole rows, which the writer passes
    /// on as they are: its `StatementJoiner` then has `extended` off).
    pub xml: Option<Arc<XmlRowEncoder>>,
    /// Names the chunk in errors: "dumping table `db`.`t` chunk 3".
    pub context: String,
}

/// Idle reader sessions, each inside the shared snapshot.
pub struct ReaderPool {
    idle: Vec<Session>,
    /// The tables (database, name) every session opened at the snapshot's start, or for
    /// the database being dumped (`group::hold_tables`), the only ones it reads; `None`:
    /// any table (readers outside a snapshot and without locks: `--skip-lock-tables`).
    held: Option<HashSet<(String, String)>>,
    /// The readers hold the tables of one database at a time (`hold_database`), in a
    /// transaction of each, while the dump's session holds their LOCK TABLES.
    per_database: bool,
}

type Reading = (JoinHandle<Result<u64>>, mpsc::Receiver<SeparatedRows>);

impl ReaderPool {
    pub fn new(sessions: Vec<Session>) -> ReaderPool {
        ReaderPool {
            idle: sessions,
            held: None,
            per_database: false,
        }
    }

    /// A pool that reads under the dump's `--lock-tables`: each database's tables are
    /// held by `hold_database` before they are read.
    pub fn per_database(sessions: Vec<Session>) -> ReaderPool {
        ReaderPool {
            idle: sessions,
            held: Some(HashSet::new()),
            per_database: true,
        }
    }

    pub fn holds_per_database(&self) -> bool {
        self.per_database
    }

    /// Opens `db`'s transactional tables in a new transaction of every reader (see
    /// `group::hold_tables`), waiting at most a second for each; the pool then reads those.
    /// A DDL statement that waits for the dump's locks makes this time out (1205): the
    /// caller releases and tries again.
    pub async fn hold_database(&mut self, db: &str, tables: &[TableInfo]) -> Result<()> {
        let list: Vec<(String, String)> = tables
            .iter()
            .filter(|t| {
                t.kind == TableKind::Base && t.is_transactional() && !t.data_lives_elsewhere()
            })
            .map(|t| (db.to_string(), t.name.clone()))
            .collect();
        for s in &mut self.idle {
            s.exec(
                "START TRANSACTION",
                "starting a reader's transaction for the database",
            )
            .await?;
            s.exec("SET SESSION lock_wait_timeout = 1", "bounding lock waits")
                .await?;
        }
        let held = group::hold_tables(&mut self.idle, &list).await;
        for s in &mut self.idle {
            group::bound_lock_waits(s).await?;
        }
        held?;
        self.held = Some(list.into_iter().collect());
        Ok(())
    }

    /// Ends the readers' transactions of `hold_database`: the tables are theirs no more.
    pub async fn release_database(&mut self) {
        if !self.per_database {
            return;
        }
        for s in &mut self.idle {
            let _ = s.exec("COMMIT", "ending a reader's transaction").await;
        }
        self.held = Some(HashSet::new());
    }

    /// A pool whose sessions hold `tables` and read only those.
    pub fn holding(sessions: Vec<Session>, tables: Vec<(String, String)>) -> ReaderPool {
        ReaderPool {
            idle: sessions,
            held: Some(tables.into_iter().collect()),
            per_database: false,
        }
    }

    /// Whether the pool may read `db`.`table`.
    pub fn reads(&self, db: &str, table: &str) -> bool {
        self.held
            .as_ref()
            .is_none_or(|h| h.contains(&(db.to_string(), table.to_string())))
    }

    pub fn len(&self) -> usize {
        self.idle.len()
    }

    pub fn is_empty(&self) -> bool {
        self.idle.is_empty()
    }

    /// Reads `chunks` with up to `len()` sessions at once and passes their encoded bytes to
    /// `write` in chunk order. A session takes the next chunk as soon as it has read its
    /// own, up to `CHUNKS_PER_READER` chunks in flight per session. `joiner` makes the rows
    /// INSERT statements; the last one is closed also when a chunk fails after rows went
    /// out (as mysqldump's, so a `--force` dump stays loadable). Returns the rows read.
    pub async fn read_ordered(
        &mut self,
        chunks: Vec<ChunkRead>,
        mut joiner: StatementJoiner,
        mut write: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<u64> {
        if self.idle.is_empty() && !chunks.is_empty() {
            return Err(Error::Usage(
                "no reader connection is left to read the table's chunks".into(),
            ));
        }
        let max_in_flight = self.idle.len() * CHUNKS_PER_READER;
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Session>();
        let mut pending: VecDeque<Reading> = VecDeque::new();
        let mut chunks = chunks.into_iter().peekable();
        let mut rows = 0;
        let mut read_chunks = 0;
        loop {
            self.keep_returned(&mut done_rx);
            while pending.len() < max_in_flight && chunks.peek().is_some() {
                let Some(session) = self.idle.pop() else {
                    break;
                };
                let chunk = chunks.next().expect("a chunk");
                let (tx, rx) = mpsc::channel(CHANNEL_BUFFERS);
                let done = done_tx.clone();
                pending.push_back((tokio::spawn(read_chunk(session, chunk, tx, done)), rx));
            }
            let Some((_, rx)) = pending.front_mut() else {
                break;
            };
            // The head chunk's bytes go out as they come; a session that finishes a chunk
            // meanwhile goes back to the loop's top for the next one.
            tokio::select! {
                biased;
                piece = rx.recv() => if let Some(rows) = piece {
                    if let Err(e) = joiner.write(&rows, &mut write) {
                        abort_all(pending);
                        self.keep_returned(&mut done_rx);
                        return Err(e);
                    }
                    continue;
                },
                Some(s) = done_rx.recv() => {
                    self.idle.push(s);
                    continue;
                }
            }
            let (handle, _) = pending.pop_front().expect("the head chunk");
            let failed = match handle.await {
                Ok(Ok(n)) => {
                    rows += n;
                    read_chunks += 1;
                    continue;
                }
                // A chunk refused at its start after earlier chunks' rows went out: the
                // table's rows are cut short, as when one query fails midway (mysqldump's
                // exit 3).
                Ok(Err(Error::Server {
                    server,
                    context,
                    message,
                })) if read_chunks > 0 => Error::Rows {
                    server,
                    context,
                    message,
                    row: rows,
                },
                Ok(Err(e)) => e,
                Err(e) => Error::Usage(format!("a reader failed: {e}")),
            };
            // The failed reader's session is gone (so are those of the chunks in flight);
            // sessions that had finished their chunk stay for the next table (`--force`).
            abort_all(pending);
            self.keep_returned(&mut done_rx);
            joiner.finish(&mut write)?;
            return Err(failed);
        }
        // Every reader has ended, so every session it handed back is in the channel.
        self.keep_returned(&mut done_rx);
        joiner.finish(&mut write)?;
        Ok(rows)
    }

    /// Takes back the sessions that finished their chunks.
    fn keep_returned(&mut self, done_rx: &mut mpsc::UnboundedReceiver<Session>) {
        while let Ok(s) = done_rx.try_recv() {
            self.idle.push(s);
        }
    }

    /// Ends the readers' transactions and closes them.
    pub async fn close(self) {
        for mut s in self.idle {
            let _ = s.exec("COMMIT", "ending the snapshot").await;
            s.close().await;
        }
    }
}

fn abort_all(pending: VecDeque<Reading>) {
    for (h, _) in pending {
        h.abort();
    }
}

/// One reader task: streams the chunk's rows, encodes them as separated rows (the writer's
/// `StatementJoiner` makes them statements), sends them in pieces,
/// waiting for the writer whenever `CHANNEL_BUFFERS` pieces are unread, and hands the
/// session back through `done` once the rows are read.
async fn read_chunk(
    mut s: Session,
    chunk: ChunkRead,
    tx: mpsc::Sender<SeparatedRows>,
    done: mpsc::UnboundedSender<Session>,
) -> Result<u64> {
    let sql = chunk.read.select_sql(chunk.range.as_deref());
    let mut enc = SqlEncoder::new(
        &chunk.quoted_table,
        chunk.read.insert_columns.as_deref(),
        chunk.read.kinds.clone(),
        chunk.style,
    );
    let extended = chunk.style.extended && chunk.xml.is_none();
    let piece = || SeparatedRows::with_capacity(BUFFER_BYTES + 64 * 1024);
    let mut buf = piece();
    let mut complete = true;
    let mut failed = None;
    let rows = {
        let mut cursor = s.cursor(&sql, &chunk.context).await?;
        // A batch is the rows of one socket read (256 KiB): `buf` stays near BUFFER_BYTES.
        loop {
            let more = cursor
                .next_rows(|cells| {
                    if let Some(xml) = &chunk.xml {
                        xml.push_row(cells, &mut buf.bytes);
                        return Ok(());
                    }
                    let len = enc.push_separated_row(cells, &mut buf.bytes);
                    if extended {
                        buf.row_lens.push(len);
                    }
                    Ok(())
                })
                .await;
            match more {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
            if buf.bytes.len() >= BUFFER_BYTES {
                let full = std::mem::replace(&mut buf, piece());
                if tx.send(full).await.is_err() {
                    // The writer gave up (its error is reported there); the session, in
                    // the middle of a result, goes with this task.
                    complete = false;
                    break;
                }
            }
        }
        cursor.count
    };
    // After an error the session goes with this task. The rows read before it go out: the
    // writer passes them on, and closes their statement, before it sees the error
    // (`--force` goes on after it).
    if complete && failed.is_none() {
        let _ = done.send(s);
    }
    let _ = tx.send(buf).await;
    failed.map_or(Ok(rows), Err)
}
