//! The lean row path: our own client for the MySQL text protocol, used for every `Session`
//! whose connection does not need protocol compression (see `conn::Session`).
//!
//! Why: a dump's client CPU is almost all per row, and a general driver spends most of it
//! on things a dumper never needs. A callgrind profile of `rdump` on 200,000 sysbench rows
//! through mysql_async (927M instructions) showed malloc/free at ~22% (a `Vec` per row and
//! per cell), row decoding and per-row futures at ~15% more, and the SQL encoder at ~8%.
//! Here the socket is read in 256 KiB blocks and each row's cells are slices of that block,
//! handed to the encoder as they are: no allocation and no future per row.
//!
//! What is ours and what is not: the packets of the handshake, the scrambles and the
//! column definitions are mysql_common's (the crate under mysql_async). Ours are the
//! framing (4-byte headers, sequence ids, 16 MiB continuation packets), the result set
//! reader (OK/ERR/EOF, `SERVER_MORE_RESULTS_EXISTS`) and the text row parser.
//!
//! Scope: unix socket (plain, as the driver's), or TCP, plain or TLS: when TLS is wanted
//! (`TlsWish`) the SSLRequest goes first, then the stream is upgraded with tokio-rustls and
//! the handshake goes on encrypted; `tls` makes the rustls configuration for the
//! `--ssl-mode`, as the driver's. TLS that is wanted and cannot be had is `WireError::Tls`,
//! never plain text. Authentication by `mysql_native_password` or `caching_sha2_password`
//! (fast path; full authentication over TLS only, where the password goes in clear), with
//! auth switch. Anything else (compression, another plugin, caching_sha2's full
//! authentication without TLS, which needs the server's RSA key) is `Unsupported` and
//! `conn::Session` opens a mysql_async connection instead, so no option is ever served
//! less securely or not at all. `RDUMP_WIRE=driver` forces mysql_async everywhere (to
//! compare the two paths; `tests/fidelity.rs` dumps through both and expects the same).
//!
//! Replication: `command_ok` (for COM_REGISTER_SLAVE), then `send_command` of a
//! COM_BINLOG_DUMP (the packets are made by `binlog::stream` and `dialect`) and
//! `next_binlog_packet`, which hands each event over as the server sent it, never parsed
//! or re-encoded here (`binlog::event` reads and checks them).
//!
//! Not for: deciding what to run, or rload (which needs LOAD DATA LOCAL: mysql_async).

use std::io;

use mysql_common::constants::{CapabilityFlags, StatusFlags};
use mysql_common::io::ParseBuf;
use std::sync::Arc;

use futures::FutureExt;
use mysql_common::constants::UTF8MB4_GENERAL_CI;
use mysql_common::packets::{
    AuthPlugin, AuthSwitchRequest, HandshakePacket, HandshakeResponse, SslRequest,
};
use mysql_common::proto::MySerialize;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Bytes asked of the socket per read; also the buffer's usual size.
const READ_BLOCK: usize = 256 * 1024;
/// The largest payload of one packet; a longer one continues in the next packet.
const MAX_PAYLOAD: usize = 0xFF_FFFF;
/// Advertised to the server as the largest packet we accept (as the mysql clients do).
const MAX_PACKET: u32 = 1 << 30;

/// What can go wrong on a wire connection.
#[derive(Debug)]
pub enum WireError {
    /// The server said no (ERR packet).
    Server {
        code: u16,
        state: String,
        message: String,
    },
    /// Nothing answered: the socket or TCP connect failed (no such socket, refused,
    /// unreachable, the server's accept queue full). Never reached the server.
    Connect(io::Error),
    /// The host name did not resolve.
    Resolve(io::Error),
    /// The socket failed or closed.
    Io(io::Error),
    /// The server sent something we cannot parse.
    Protocol(String),
    /// This connection needs something the lean client does not do; use the driver.
    Unsupported(String),
    /// TLS was wanted and could not be had: the server does not offer it, the certificate
    /// failed the checks of the `--ssl-mode`, a file of `--ssl-ca/cert/key` is bad. Never
    /// a reason to continue in plain text.
    Tls(String),
}

impl std::fmt::Display for WireError {
    /// The same shapes as `error::describe` gives mysql_async's errors.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Server { code, message, .. } => {
                f.write_str(&crate::error::server_error(*code, message))
            }
            WireError::Connect(e) => write!(f, "Can't connect to server ({e})"),
            WireError::Resolve(e) => write!(f, "Unknown server host ({e})"),
            WireError::Io(e) => write!(f, "Lost connection to server ({e})"),
            WireError::Protocol(m) => write!(f, "client error: {m}"),
            WireError::Unsupported(m) => write!(f, "client error: not supported: {m}"),
            WireError::Tls(m) => write!(f, "TLS error: {m}"),
        }
    }
}

impl From<io::Error> for WireError {
    fn from(e: io::Error) -> Self {
        WireError::Io(e)
    }
}

pub type WireResult<T> = std::result::Result<T, WireError>;

fn protocol(msg: impl Into<String>) -> WireError {
    WireError::Protocol(msg.into())
}

fn tls_error(msg: impl std::fmt::Display) -> WireError {
    WireError::Tls(msg.to_string())
}

/// Where to connect.
pub enum Target<'a> {
    Socket(&'a str),
    Tcp(&'a str, u16),
}

/// How to log in.
pub struct Login<'a> {
    pub user: &'a str,
    pub password: Option<&'a str>,
    /// Whether to use TLS (only over TCP: a unix socket is never encrypted, as with the
    /// driver), and with what configuration (see `tls::client_config`).
    pub tls: TlsWish,
    pub tls_config: Option<Arc<rustls::ClientConfig>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsWish {
    /// Never (`--ssl-mode=DISABLED`, or PREFERRED on a unix socket).
    No,
    /// If the server offers it (PREFERRED over TCP).
    IfOffered,
    /// Always.
    Yes,
}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
    /// TLS over TCP. The socket under it is buffered, so that rustls (which asks for 4 KiB
    /// at a time) does not cost a system call per 4 KiB.
    Tls(Box<TlsStream<BufReader<TcpStream>>>),
    /// Only while the TCP stream is being upgraded to TLS.
    Upgrading,
}

/// How many times a read of a server on this machine yields the CPU before it waits for
/// the socket (see `Stream::read`).
const YIELDS_BEFORE_WAIT: usize = 8;

/// Tries `try_read`, yielding the CPU after each empty try, at most `yields` times; `None`
/// when the socket stayed empty.
fn yielding(
    yields: usize,
    mut try_read: impl FnMut() -> io::Result<usize>,
) -> Option<io::Result<usize>> {
    for _ in 0..yields {
        match try_read() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
            done => return Some(done),
        }
    }
    None
}

/// A `try_read` takes no part in tokio's cooperative budget, which `read().await` does: a
/// reader whose rows are always there would never give the runtime back its thread, and
/// the signal handler (`main`'s `select!`) and the other tasks would starve. Every such read
/// takes a unit of the budget, and the task yields when it is spent.
async fn cooperative(done: io::Result<usize>) -> io::Result<usize> {
    tokio::task::consume_budget().await;
    done
}

impl Stream {
    /// Reads what has arrived. With `yields` (a server on this machine), an empty socket
    /// first makes the thread yield the CPU up to `yields` times, retrying after each,
    /// before it waits for the socket: the CPU goes to the server thread that is about to
    /// send the rows, and the reader takes them without a sleep and a wake-up. On the 2-core
    /// VM, `rdump --dir -t2` of sysbench 8x1M (3 runs each) went from 2.47-2.61 s with
    /// 42,000-49,000 voluntary context switches and the cores 14-16% idle, to 1.85-1.91 s
    /// with ~6,000 and 2-6% idle (20 yields; 5 to 50 did about as well, 200 worse).
    /// Reading less eagerly over TCP to a local server, so that the server's 16 KiB writes
    /// would pile up (`SO_RCVLOWAT` of 128 KiB with a 1 ms bounded wait once a result set
    /// passed 1 MiB, or a 1 ms pause after a short read), was measured and not kept: the
    /// server's CPU did not move (its TCP send path is ~12% of it, the same share as with
    /// mydumper), and the mark made the kernel ACK more and the reader wait in `epoll_wait`
    /// more (benches/README.md, "Reading less eagerly over TCP").
    async fn read(&mut self, buf: &mut [u8], yields: usize) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => match yielding(yields, || s.try_read(buf)) {
                Some(done) => cooperative(done).await,
                None => s.read(buf).await,
            },
            Stream::Tcp(s) => match yielding(yields, || s.try_read(buf)) {
                Some(done) => cooperative(done).await,
                None => s.read(buf).await,
            },
            Stream::Tls(s) => {
                // One TLS read gives one record (16 KiB at most); take every record that
                // has already arrived too, so that the rows are parsed in big blocks.
                let mut n = s.read(buf).await?;
                while n > 0 && n < buf.len() {
                    match s.read(&mut buf[n..]).now_or_never() {
                        Some(Ok(0)) | None => break,
                        Some(Ok(m)) => n += m,
                        Some(Err(e)) => return Err(e),
                    }
                }
                Ok(n)
            }
            Stream::Upgrading => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.write_all(buf).await,
            Stream::Tcp(s) => s.write_all(buf).await,
            Stream::Tls(s) => {
                s.write_all(buf).await?;
                s.flush().await
            }
            Stream::Upgrading => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

/// One connection.
pub struct WireConn {
    stream: Stream,
    /// Bytes read from the socket; `buf[start..end]` are not parsed yet.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Sequence id expected on the next packet.
    seq: u8,
    caps: CapabilityFlags,
    server_version: String,
    /// A result set whose rows are not all read (a dropped cursor): drained first.
    unread: Option<usize>,
    /// Yields before waiting for the socket (`Stream::read`): the server runs on this
    /// machine (a unix socket, or TCP to a loopback address), so its threads share our CPUs.
    yields: usize,
    /// Socket reads since the task last gave its thread back (`READS_PER_YIELD`).
    reads: u32,
}

/// A reader whose rows are always there gives its thread back (`yield_now`) every this many
/// socket reads (at most 2 MiB of rows with 256 KiB reads), as well as when tokio's budget
/// of 128 reads is spent: 128 reads of rows to encode kept one poll busy for up to a second,
/// and the binary's `select!` on the same thread saw a Ctrl-C only after it.
const READS_PER_YIELD: u32 = 8;

/// The answer to a query before its rows.
enum Response {
    /// No rows (an OK packet); `more` when another result follows.
    Done { more: bool },
    /// A result set of this many columns; its definitions are read next.
    Rows(usize),
}

impl WireConn {
    /// Connects and logs in. `Unsupported` means: use the driver for this connection.
    pub async fn connect(target: Target<'_>, login: &Login<'_>) -> WireResult<WireConn> {
        let (stream, host, local) = match target {
            Target::Socket(path) => {
                let s = UnixStream::connect(path)
                    .await
                    .map_err(WireError::Connect)?;
                (Stream::Unix(s), None, true)
            }
            Target::Tcp(host, port) => {
                let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host, port))
                    .await
                    .map_err(WireError::Resolve)?
                    .collect();
                if addrs.is_empty() {
                    return Err(WireError::Resolve(io::Error::other("no address")));
                }
                let s = TcpStream::connect(&addrs[..])
                    .await
                    .map_err(WireError::Connect)?;
                s.set_nodelay(true)?;
                let local = s.peer_addr().is_ok_and(|a| a.ip().is_loopback());
                (Stream::Tcp(s), Some(host), local)
            }
        };
        let tls = if host.is_some() {
            login.tls
        } else {
            TlsWish::No
        };
        let mut c = WireConn {
            stream,
            buf: vec![0; READ_BLOCK],
            start: 0,
            end: 0,
            seq: 0,
            caps: CapabilityFlags::empty(),
            server_version: String::new(),
            unread: None,
            yields: if local { YIELDS_BEFORE_WAIT } else { 0 },
            reads: 0,
        };
        c.handshake(login, tls, host).await?;
        Ok(c)
    }

    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    async fn handshake(
        &mut self,
        login: &Login<'_>,
        tls: TlsWish,
        host: Option<&str>,
    ) -> WireResult<()> {
        let first = self.read_packet().await?;
        if first.first() == Some(&0xFF) {
            return Err(parse_err(&first));
        }
        let hello: HandshakePacket<'_> = ParseBuf(&first)
            .parse(())
            .map_err(|e| protocol(format!("bad handshake: {e}")))?;
        let server_caps = hello.capabilities();
        let offered = server_caps.contains(CapabilityFlags::CLIENT_SSL);
        let use_tls = match tls {
            TlsWish::No => false,
            TlsWish::IfOffered => offered,
            TlsWish::Yes if offered => true,
            TlsWish::Yes => {
                return Err(tls_error(
                    "the server does not offer TLS, which --ssl-mode requires",
                ));
            }
        };
        let mut wanted = CapabilityFlags::CLIENT_LONG_PASSWORD
            | CapabilityFlags::CLIENT_LONG_FLAG
            | CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_TRANSACTIONS
            | CapabilityFlags::CLIENT_SECURE_CONNECTION
            | CapabilityFlags::CLIENT_MULTI_STATEMENTS
            | CapabilityFlags::CLIENT_MULTI_RESULTS
            | CapabilityFlags::CLIENT_PS_MULTI_RESULTS
            | CapabilityFlags::CLIENT_PLUGIN_AUTH
            | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
            | CapabilityFlags::CLIENT_DEPRECATE_EOF;
        if !server_caps.contains(CapabilityFlags::CLIENT_PROTOCOL_41) {
            return Err(WireError::Unsupported("a pre-4.1 server".into()));
        }
        if use_tls {
            wanted |= CapabilityFlags::CLIENT_SSL;
        }
        self.caps = wanted & server_caps;
        if use_tls {
            self.start_tls(login, host.unwrap_or_default()).await?;
        }
        self.server_version = hello.server_version_str().into_owned();
        let mut nonce = hello.nonce();
        let mut plugin = hello
            .auth_plugin()
            .map(|p| p.into_owned())
            .unwrap_or(AuthPlugin::MysqlNativePassword);
        if !matches!(
            plugin,
            AuthPlugin::MysqlNativePassword | AuthPlugin::CachingSha2Password
        ) {
            // The server's default; the account's own may differ and is asked for by an
            // auth switch. Start with the native scramble, as the mysql clients do.
            plugin = AuthPlugin::MysqlNativePassword;
        }
        let version = hello
            .server_version_parsed()
            .unwrap_or((5, 5, 3))
            .max((5, 5, 3));
        let data = scramble(&plugin, login.password, &nonce);
        let response = HandshakeResponse::new(
            Some(data),
            version,
            Some(login.user.as_bytes()),
            None::<&[u8]>,
            Some(plugin.clone()),
            self.caps,
            None,
            MAX_PACKET,
        );
        let mut out = Vec::new();
        response.serialize(&mut out);
        self.write_packet(&out).await?;
        loop {
            let p = self.read_packet().await?;
            match p.first() {
                Some(0x00) => return Ok(()),
                Some(0xFF) => return Err(parse_err(&p)),
                Some(0xFE) => {
                    let switch: AuthSwitchRequest<'_> = ParseBuf(&p)
                        .parse(())
                        .map_err(|e| protocol(format!("bad auth switch: {e}")))?;
                    plugin = switch.auth_plugin().into_owned();
                    if !matches!(
                        plugin,
                        AuthPlugin::MysqlNativePassword | AuthPlugin::CachingSha2Password
                    ) {
                        return Err(WireError::Unsupported(format!(
                            "authentication plugin {}",
                            String::from_utf8_lossy(plugin.as_bytes())
                        )));
                    }
                    nonce = switch.plugin_data().to_vec();
                    let data = scramble(&plugin, login.password, &nonce);
                    self.write_packet(&data).await?;
                }
                // caching_sha2_password: 3 = the cached scramble matched, an OK follows;
                // 4 = full authentication, which needs TLS (then the password goes as it
                // is, NUL-terminated) or the server's RSA key (not ours: the driver's).
                Some(0x01) if p.get(1) == Some(&3) => {}
                Some(0x01) if p.get(1) == Some(&4) && self.is_tls() => {
                    let mut clear = login.password.unwrap_or_default().as_bytes().to_vec();
                    clear.push(0);
                    self.write_packet(&clear).await?;
                }
                Some(0x01) => {
                    return Err(WireError::Unsupported(
                        "caching_sha2_password full authentication".into(),
                    ));
                }
                _ => return Err(protocol("unexpected packet during authentication")),
            }
        }
    }

    /// Never yield the CPU before waiting for an empty socket (see `Stream::read`): for a
    /// connection that mostly waits, as a binlog stream does, where spinning only costs.
    pub fn wait_without_yielding(&mut self) {
        self.yields = 0;
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// Sends the SSLRequest packet and upgrades the TCP stream to TLS; the handshake
    /// response then goes over TLS, its sequence id following the SSLRequest's.
    async fn start_tls(&mut self, login: &Login<'_>, host: &str) -> WireResult<()> {
        let config = login
            .tls_config
            .clone()
            .ok_or_else(|| tls_error("no TLS configuration"))?;
        if self.start != self.end {
            return Err(protocol("data after the server's greeting"));
        }
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| tls_error(format!("{host} is not a valid TLS server name: {e}")))?;
        let request = SslRequest::new(self.caps, MAX_PACKET, UTF8MB4_GENERAL_CI as u8);
        let mut out = Vec::new();
        request.serialize(&mut out);
        self.write_packet(&out).await?;
        let Stream::Tcp(tcp) = std::mem::replace(&mut self.stream, Stream::Upgrading) else {
            return Err(protocol("TLS on a stream that is not TCP"));
        };
        let tcp = BufReader::with_capacity(READ_BLOCK, tcp);
        let tls = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(tls_error)?;
        self.stream = Stream::Tls(Box::new(tls));
        Ok(())
    }

    /// Sends a text-protocol query (COM_QUERY).
    pub async fn send_query(&mut self, sql: &str) -> WireResult<()> {
        self.drain_unread().await?;
        self.seq = 0;
        let mut payload = Vec::with_capacity(sql.len() + 1);
        payload.push(0x03);
        payload.extend_from_slice(sql.as_bytes());
        self.write_packet(&payload).await
    }

    /// Reads the first packet of a query's (next) result.
    async fn read_response(&mut self) -> WireResult<Response> {
        let p = self.read_packet().await?;
        match p.first() {
            Some(0x00) => Ok(Response::Done {
                more: ok_more_results(&p)?,
            }),
            Some(0xFF) => Err(parse_err(&p)),
            Some(0xFB) => Err(protocol("the server asked for a local file")),
            Some(_) => {
                let (n, used) = lenenc(&p, 0).ok_or_else(|| protocol("bad column count"))?;
                if used != p.len() || n == 0 || n > 4096 {
                    return Err(protocol("bad column count"));
                }
                Ok(Response::Rows(n as usize))
            }
            None => Err(protocol("empty packet")),
        }
    }

    /// Reads the column definitions of a result set of `n` columns and returns their names
    /// (as mysql_common parses them).
    async fn read_columns(&mut self, n: usize) -> WireResult<Vec<mysql_common::packets::Column>> {
        let mut cols = Vec::with_capacity(n);
        for _ in 0..n {
            let p = self.read_packet().await?;
            let col: mysql_common::packets::Column = ParseBuf(&p)
                .parse(())
                .map_err(|e| protocol(format!("bad column definition: {e}")))?;
            cols.push(col);
        }
        if !self.caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF) {
            let p = self.read_packet().await?;
            if p.first() != Some(&0xFE) {
                return Err(protocol("no EOF after the column definitions"));
            }
        }
        self.unread = Some(n);
        Ok(cols)
    }

    /// Parses the rows that have arrived (reading the socket first if none has) and passes
    /// each one's cells to `on_row`, `None` for NULL. Returns `Ok(false)` once the result
    /// set has ended (and `more_results` tells whether another follows), `Ok(true)` while
    /// rows may follow. Rows are slices of the read buffer: nothing is copied or allocated
    /// per row, except for a row longer than 16 MiB (several packets), which is joined.
    pub async fn next_rows<E>(
        &mut self,
        mut on_row: impl FnMut(&[Option<&[u8]>]) -> std::result::Result<(), E>,
    ) -> WireResult<std::result::Result<RowsState, E>> {
        let Some(ncols) = self.unread else {
            return Ok(Ok(RowsState::Ended { more: false }));
        };
        loop {
            // Every complete single-packet row in the buffer, in place.
            let mut cells: Vec<Option<&[u8]>> = Vec::with_capacity(ncols);
            let mut pos = self.start;
            let mut rows = 0u64;
            let end = self.end;
            let buf = &self.buf[..end];
            let mut seq = self.seq;
            let mut outcome = None;
            while end - pos >= 4 {
                let len = payload_len(&buf[pos..]);
                if len >= MAX_PAYLOAD || end - pos - 4 < len {
                    break;
                }
                if buf[pos + 3] != seq {
                    return Err(protocol(format!(
                        "packets out of order (got {}, expected {seq})",
                        buf[pos + 3]
                    )));
                }
                let payload = &buf[pos + 4..pos + 4 + len];
                match payload.first() {
                    Some(0xFE)
                        if self.caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF) || len < 9 =>
                    {
                        outcome = Some(Ok(payload.to_vec()));
                        pos += 4 + len;
                        seq = seq.wrapping_add(1);
                        break;
                    }
                    Some(0xFF) => {
                        // The ERR ends the result: past it, the next command starts clean
                        // (KILL QUERY leaves the connection usable).
                        outcome = Some(Err(parse_err(payload)));
                        pos += 4 + len;
                        seq = seq.wrapping_add(1);
                        break;
                    }
                    _ => {}
                }
                cells.clear();
                parse_row(payload, ncols, &mut cells)?;
                if let Err(e) = on_row(&cells) {
                    self.start = pos + 4 + len;
                    self.seq = seq.wrapping_add(1);
                    return Ok(Err(e));
                }
                rows += 1;
                pos += 4 + len;
                seq = seq.wrapping_add(1);
            }
            drop(cells);
            self.start = pos;
            self.seq = seq;
            match outcome {
                Some(Err(e)) => {
                    self.unread = None;
                    return Err(e);
                }
                Some(Ok(eof)) => {
                    self.unread = None;
                    return Ok(Ok(RowsState::Ended {
                        more: eof_more_results(&eof, self.caps)?,
                    }));
                }
                None if rows > 0 => return Ok(Ok(RowsState::More)),
                None => {}
            }
            // A row of several packets: join it (rare, and bounded by max_allowed_packet).
            if self.end - self.start >= 4 && payload_len(&self.buf[self.start..]) == MAX_PAYLOAD {
                let row = self.read_packet().await?;
                let mut cells: Vec<Option<&[u8]>> = Vec::with_capacity(ncols);
                parse_row(&row, ncols, &mut cells)?;
                if let Err(e) = on_row(&cells) {
                    return Ok(Err(e));
                }
                return Ok(Ok(RowsState::More));
            }
            self.fill().await?;
        }
    }

    /// Reads and forgets the rest of a result set whose reader stopped early, and any
    /// results after it, so the next query starts clean.
    async fn drain_unread(&mut self) -> WireResult<()> {
        if self.unread.is_some() && self.read_rest(|_| {}).await? {
            self.skip_results().await?;
        }
        Ok(())
    }

    /// Reads the rest of the current result set, passing each row to `on_row`; returns
    /// whether another result follows.
    async fn read_rest(&mut self, mut on_row: impl FnMut(&[Option<&[u8]>])) -> WireResult<bool> {
        loop {
            let step = self
                .next_rows(|cells| {
                    on_row(cells);
                    Ok::<(), std::convert::Infallible>(())
                })
                .await?;
            match step {
                Ok(RowsState::More) => {}
                Ok(RowsState::Ended { more }) => return Ok(more),
            }
        }
    }

    /// Reads the query's results up to the next one with rows, and its column
    /// definitions; `None` once no result is left (statements without rows are skipped).
    pub async fn next_result_set(
        &mut self,
    ) -> WireResult<Option<Vec<mysql_common::packets::Column>>> {
        loop {
            match self.read_response().await? {
                Response::Done { more: true } => {}
                Response::Done { more: false } => return Ok(None),
                Response::Rows(n) => return self.read_columns(n).await.map(Some),
            }
        }
    }

    /// Reads and forgets every remaining result of the current query.
    pub async fn skip_results(&mut self) -> WireResult<()> {
        while self.next_result_set().await?.is_some() {
            if !self.read_rest(|_| {}).await? {
                break;
            }
        }
        Ok(())
    }

    /// Runs `sql` and reads every result it returns, keeping none.
    pub async fn query_drop(&mut self, sql: &str) -> WireResult<()> {
        self.send_query(sql).await?;
        self.skip_results().await
    }

    /// Runs `sql` and returns the first result set's column definitions and rows (`None`
    /// for NULL), reading and forgetting any later results.
    pub async fn query_all(
        &mut self,
        sql: &str,
    ) -> WireResult<(
        Vec<mysql_common::packets::Column>,
        Vec<Vec<Option<Vec<u8>>>>,
    )> {
        self.send_query(sql).await?;
        let Some(cols) = self.next_result_set().await? else {
            return Ok((Vec::new(), Vec::new()));
        };
        let mut rows = Vec::new();
        let more = self
            .read_rest(|cells| rows.push(cells.iter().map(|c| c.map(<[u8]>::to_vec)).collect()))
            .await?;
        if more {
            self.skip_results().await?;
        }
        Ok((cols, rows))
    }

    /// Sends one command packet (a new command: sequence id 0) and reads the OK that
    /// answers it; an ERR is `WireError::Server`.
    pub async fn command_ok(&mut self, packet: &[u8]) -> WireResult<()> {
        self.send_command(packet).await?;
        let p = self.read_packet().await?;
        match p.first() {
            Some(0x00) => Ok(()),
            Some(0xFF) => Err(parse_err(&p)),
            _ => Err(protocol("expected OK after a command")),
        }
    }

    /// Sends one command packet (sequence id 0) without reading an answer: for
    /// COM_BINLOG_DUMP(_GTID), whose answer is the event stream (`next_binlog_packet`).
    pub async fn send_command(&mut self, packet: &[u8]) -> WireResult<()> {
        self.drain_unread().await?;
        self.seq = 0;
        self.write_packet(packet).await
    }

    /// The next packet of a binlog stream, after `send_command` of a COM_BINLOG_DUMP: an
    /// event's bytes exactly as the server sent them (the 0x00 marker removed; an event
    /// longer than 16 MiB arrives in several packets and is joined), or `End` when a
    /// non-blocking dump has reached the end of the binlog (EOF packet). An ERR packet
    /// (e.g. 1236, the binlog is purged) is `WireError::Server`. The connection is good
    /// for nothing else afterwards.
    pub async fn next_binlog_packet(&mut self) -> WireResult<BinlogPacket> {
        let mut p = self.read_packet().await?;
        match p.first() {
            Some(0x00) => {
                p.remove(0);
                Ok(BinlogPacket::Event(p))
            }
            Some(0xFE) if p.len() < 9 => Ok(BinlogPacket::End),
            Some(0xFF) => Err(parse_err(&p)),
            Some(b) => Err(protocol(format!(
                "binlog stream: packet starting with {b:#04x}"
            ))),
            None => Err(protocol("binlog stream: empty packet")),
        }
    }

    /// Whether a whole packet (not one continued in the next) is already in the buffer:
    /// `next_binlog_packet` then returns it without reading the socket.
    pub fn has_buffered_packet(&self) -> bool {
        let avail = self.end - self.start;
        if avail < 4 {
            return false;
        }
        let len = payload_len(&self.buf[self.start..self.start + 4]);
        len < MAX_PAYLOAD && avail >= 4 + len
    }

    /// Says goodbye (COM_QUIT); errors are irrelevant then.
    pub async fn close(mut self) {
        self.seq = 0;
        let _ = self.write_packet(&[0x01]).await;
    }

    /// Reads more bytes from the socket into the buffer, making room first.
    async fn fill(&mut self) -> WireResult<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end < READ_BLOCK / 4 {
            // Move the unparsed tail to the front, or grow for a packet longer than the
            // buffer (up to one 16 MiB packet; longer rows are joined by `read_packet`).
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < READ_BLOCK / 4 {
                let new_len = (self.buf.len() * 2).min(MAX_PAYLOAD + 4 + READ_BLOCK);
                if new_len <= self.buf.len() {
                    return Err(protocol("packet longer than the read buffer"));
                }
                self.buf.resize(new_len, 0);
            }
        }
        self.reads += 1;
        if self.reads >= READS_PER_YIELD {
            self.reads = 0;
            tokio::task::yield_now().await;
        }
        let n = self
            .stream
            .read(&mut self.buf[self.end..], self.yields)
            .await?;
        if n == 0 {
            return Err(WireError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )));
        }
        self.end += n;
        // Shrink back after a huge row has gone through.
        if self.start == self.end && self.buf.len() > 4 * READ_BLOCK {
            self.buf = vec![0; READ_BLOCK];
            self.start = 0;
            self.end = 0;
        }
        Ok(())
    }

    /// Reads one logical packet (joining continuation packets), owned.
    async fn read_packet(&mut self) -> WireResult<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            while self.end - self.start < 4 {
                self.fill().await?;
            }
            let h = &self.buf[self.start..self.start + 4];
            let len = payload_len(h);
            if h[3] != self.seq {
                return Err(protocol(format!(
                    "packets out of order (got {}, expected {})",
                    h[3], self.seq
                )));
            }
            while self.end - self.start < 4 + len {
                self.fill().await?;
            }
            out.extend_from_slice(&self.buf[self.start + 4..self.start + 4 + len]);
            self.start += 4 + len;
            self.seq = self.seq.wrapping_add(1);
            if len < MAX_PAYLOAD {
                return Ok(out);
            }
        }
    }

    /// Writes one logical packet, split into 16 MiB packets as the protocol says.
    async fn write_packet(&mut self, payload: &[u8]) -> WireResult<()> {
        let mut out = Vec::with_capacity(payload.len() + 8);
        let mut rest = payload;
        loop {
            let n = rest.len().min(MAX_PAYLOAD);
            out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
            out.push(self.seq);
            self.seq = self.seq.wrapping_add(1);
            out.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if n < MAX_PAYLOAD {
                break;
            }
        }
        self.stream.write_all(&out).await?;
        Ok(())
    }
}

/// One packet of a binlog stream (`WireConn::next_binlog_packet`).
#[derive(Debug, PartialEq, Eq)]
pub enum BinlogPacket {
    /// An event: its 19-byte header, body and (with checksums on) its CRC32, as sent.
    Event(Vec<u8>),
    /// The end of a non-blocking dump.
    End,
}

/// Where a result set's reading stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowsState {
    /// Rows may follow.
    More,
    /// The result set ended; `more` when another result follows.
    Ended { more: bool },
}

fn scramble(plugin: &AuthPlugin<'_>, password: Option<&str>, nonce: &[u8]) -> Vec<u8> {
    // gen_data only for the plugins it can do without optional features.
    match plugin {
        AuthPlugin::MysqlNativePassword | AuthPlugin::CachingSha2Password => {
            match plugin.gen_data(password, nonce) {
                Some(data) => {
                    let mut out = Vec::new();
                    data.serialize(&mut out);
                    out
                }
                None => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

/// The payload length in a packet header (its first 3 bytes, little-endian).
#[inline]
fn payload_len(header: &[u8]) -> usize {
    u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize
}

/// A length-encoded integer at `pos`: its value and the bytes it took.
fn lenenc(p: &[u8], pos: usize) -> Option<(u64, usize)> {
    let b = *p.get(pos)?;
    Some(match b {
        0..=0xFA => (b as u64, 1),
        0xFC => {
            let v = p.get(pos + 1..pos + 3)?;
            (u16::from_le_bytes([v[0], v[1]]) as u64, 3)
        }
        0xFD => {
            let v = p.get(pos + 1..pos + 4)?;
            (u32::from_le_bytes([v[0], v[1], v[2], 0]) as u64, 4)
        }
        0xFE => {
            let v = p.get(pos + 1..pos + 9)?;
            (u64::from_le_bytes(v.try_into().ok()?), 9)
        }
        _ => return None,
    })
}

/// Splits a text-protocol row into its `ncols` cells: each a length-encoded string, or
/// 0xFB for NULL.
pub fn parse_row<'a>(
    payload: &'a [u8],
    ncols: usize,
    cells: &mut Vec<Option<&'a [u8]>>,
) -> WireResult<()> {
    let mut pos = 0;
    for _ in 0..ncols {
        let Some(&b) = payload.get(pos) else {
            return Err(protocol("row shorter than its columns"));
        };
        if b < 0xFB {
            // The common case: a cell shorter than 251 bytes.
            let end = pos + 1 + b as usize;
            let cell = payload
                .get(pos + 1..end)
                .ok_or_else(|| protocol("row cell past the packet"))?;
            cells.push(Some(cell));
            pos = end;
        } else if b == 0xFB {
            cells.push(None);
            pos += 1;
        } else {
            let (len, used) = lenenc(payload, pos).ok_or_else(|| protocol("bad cell length"))?;
            let start = pos + used;
            let end = usize::try_from(len)
                .ok()
                .and_then(|l| start.checked_add(l))
                .ok_or_else(|| protocol("bad cell length"))?;
            let cell = payload
                .get(start..end)
                .ok_or_else(|| protocol("row cell past the packet"))?;
            cells.push(Some(cell));
            pos = end;
        }
    }
    if pos != payload.len() {
        return Err(protocol("row longer than its columns"));
    }
    Ok(())
}

/// An ERR packet: code, SQL state (after '#', when present) and message.
fn parse_err(p: &[u8]) -> WireError {
    if p.len() < 3 {
        return protocol("short error packet");
    }
    let code = u16::from_le_bytes([p[1], p[2]]);
    let (state, msg) = if p.get(3) == Some(&b'#') && p.len() >= 9 {
        (String::from_utf8_lossy(&p[4..9]).into_owned(), &p[9..])
    } else {
        ("HY000".to_string(), &p[3..])
    };
    WireError::Server {
        code,
        state,
        message: String::from_utf8_lossy(msg).into_owned(),
    }
}

/// Whether an OK packet (header 0x00) says another result follows.
fn ok_more_results(p: &[u8]) -> WireResult<bool> {
    let (_, a) = lenenc(p, 1).ok_or_else(|| protocol("bad OK packet"))?;
    let (_, b) = lenenc(p, 1 + a).ok_or_else(|| protocol("bad OK packet"))?;
    let at = 1 + a + b;
    let flags = p
        .get(at..at + 2)
        .map(|f| u16::from_le_bytes([f[0], f[1]]))
        .ok_or_else(|| protocol("bad OK packet"))?;
    Ok(StatusFlags::from_bits_truncate(flags).contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS))
}

/// Whether the packet ending a result set (EOF, or an OK with header 0xFE under
/// CLIENT_DEPRECATE_EOF) says another result follows.
fn eof_more_results(p: &[u8], caps: CapabilityFlags) -> WireResult<bool> {
    if caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF) {
        ok_more_results(p)
    } else {
        // 0xFE, warnings (2), status flags (2).
        let flags = p
            .get(3..5)
            .map(|f| u16::from_le_bytes([f[0], f[1]]))
            .ok_or_else(|| protocol("bad EOF packet"))?;
        Ok(
            StatusFlags::from_bits_truncate(flags)
                .contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[Option<&[u8]>]) -> Vec<u8> {
        let mut p = Vec::new();
        for c in cells {
            match c {
                None => p.push(0xFB),
                Some(b) if b.len() < 251 => {
                    p.push(b.len() as u8);
                    p.extend_from_slice(b);
                }
                Some(b) if b.len() < 1 << 16 => {
                    p.push(0xFC);
                    p.extend_from_slice(&(b.len() as u16).to_le_bytes());
                    p.extend_from_slice(b);
                }
                Some(b) if b.len() < 1 << 24 => {
                    p.push(0xFD);
                    p.extend_from_slice(&(b.len() as u32).to_le_bytes()[..3]);
                    p.extend_from_slice(b);
                }
                Some(b) => {
                    p.push(0xFE);
                    p.extend_from_slice(&(b.len() as u64).to_le_bytes());
                    p.extend_from_slice(b);
                }
            }
        }
        p
    }

    #[test]
    fn rows_parse_every_length_encoding_and_null() {
        let long = vec![b'x'; 300];
        let longer = vec![b'y'; 70_000];
        let want: Vec<Option<&[u8]>> = vec![
            Some(b"1"),
            None,
            Some(b""),
            Some(&long),
            Some(&longer),
            Some(&[0xFB, 0xFF, 0x00]),
        ];
        let p = row(&want);
        let mut got = Vec::new();
        parse_row(&p, want.len(), &mut got).unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn malformed_rows_are_errors_not_panics() {
        let p = row(&[Some(b"abc"), Some(b"de")]);
        let mut cells = Vec::new();
        assert!(parse_row(&p, 3, &mut cells).is_err(), "too few cells");
        cells.clear();
        assert!(parse_row(&p, 1, &mut cells).is_err(), "too many cells");
        for cut in 0..p.len() {
            cells.clear();
            assert!(parse_row(&p[..cut], 2, &mut cells).is_err(), "cut at {cut}");
        }
        cells.clear();
        assert!(
            parse_row(
                &[0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
                1,
                &mut cells
            )
            .is_err()
        );
        cells.clear();
        assert!(parse_row(&[0xFF], 1, &mut cells).is_err());
    }

    #[test]
    fn error_packets_keep_code_state_and_message() {
        let mut p = vec![0xFF];
        p.extend_from_slice(&1317u16.to_le_bytes());
        p.extend_from_slice(b"#70100Query execution was interrupted");
        assert!(
            matches!(parse_err(&p), WireError::Server { code: 1317, ref state, .. } if state == "70100")
        );
        assert_eq!(
            parse_err(&p).to_string(),
            "1317: \"Query execution was interrupted\""
        );
        let mut p = vec![0xFF];
        p.extend_from_slice(&1040u16.to_le_bytes());
        p.extend_from_slice(b"Too many connections");
        assert_eq!(parse_err(&p).to_string(), "1040: \"Too many connections\"");
    }

    #[test]
    fn ok_and_eof_packets_tell_whether_more_results_follow() {
        // OK: header, affected rows, insert id, status flags, warnings.
        let more = StatusFlags::SERVER_MORE_RESULTS_EXISTS.bits().to_le_bytes();
        let ok = [0x00, 0x00, 0x00, more[0], more[1], 0, 0];
        assert!(ok_more_results(&ok).unwrap());
        assert!(!ok_more_results(&[0x00, 0x01, 0xFC, 0x10, 0x00, 0x02, 0x00, 0, 0]).unwrap());
        let eof = [0xFE, 0, 0, more[0], more[1]];
        assert!(eof_more_results(&eof, CapabilityFlags::empty()).unwrap());
        assert!(!eof_more_results(&[0xFE, 0, 0, 2, 0], CapabilityFlags::empty()).unwrap());
        assert!(ok_more_results(&[0x00]).is_err());
    }

    #[test]
    fn length_encoded_integers() {
        assert_eq!(lenenc(&[0xFA], 0), Some((250, 1)));
        assert_eq!(lenenc(&[0xFC, 0x34, 0x12], 0), Some((0x1234, 3)));
        assert_eq!(lenenc(&[0xFD, 1, 2, 3], 0), Some((0x030201, 4)));
        assert_eq!(
            lenenc(&[0xFE, 1, 0, 0, 0, 0, 0, 0, 1], 0),
            Some((1 | 1 << 56, 9))
        );
        assert_eq!(lenenc(&[0xFC, 1], 0), None);
        assert_eq!(lenenc(&[0xFF], 0), None);
    }
}
