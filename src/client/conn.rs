//! Connections to the server: opening them from `ConnectionOptions` (socket or TCP, TLS,
//! compression, character set, init command) and running statements with errors that name
//! the server and the object.
//!
//! `open_replication` gives `binlog` a connection on the lean client alone (the replication
//! protocol is served by `wire` only).
//!
//! Not for: deciding what to run (see `dump`, `load`) or encoding rows.
//! Passwords go into the driver's options and nowhere else; `Session::server` is the
//! address only.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{ClientIdentity, Conn, OptsBuilder, Row, SslOpts, Value};

use crate::client::options::{
    ConnectionOptions, Password, Protocol, SslMode, TlsVersion, iana_cipher_name,
};
use crate::client::wire::{Login, RowsState, Target, TlsWish, WireConn, WireError, WireResult};
use crate::error::{Error, Result, describe};
use crate::sql::dialect::Dialect;

/// Where the default unix socket lives: MariaDB/Debian first, then MySQL's compiled default.
const DEFAULT_SOCKETS: &[&str] = &["/run/mysqld/mysqld.sock", "/tmp/mysql.sock"];
const DEFAULT_PORT: u16 = 3306;

/// One open connection and what we know about its server.
///
/// Statements go in utf8mb4 and control queries (`rows`, `first_value`: names and
/// definitions) come back in utf8mb4, whatever the connection's character set, so every
/// name and definition is exact UTF-8 text; rows (`cursor`, `stream`) come back in the
/// connection's character set (`--default-character-set`), as mysqldump writes them. The
/// session switches `character_set_results` between the two when it must (never for
/// utf8mb4, the default).
pub struct Session {
    link: Link,
    /// "localhost via /run/mysqld/mysqld.sock" or "db1:3306": for messages.
    pub server: String,
    pub dialect: Dialect,
    /// The character set rows are read in.
    rows_charset: String,
    /// Results come in `rows_charset` now (else in utf8mb4).
    results_in_rows_charset: bool,
}

/// The character set names, definitions and control results are read in.
const TEXT_CHARSET: &str = "utf8mb4";

/// The client under a session: our lean one (`wire`) where it can serve the options,
/// mysql_async where it cannot (compression, other authentication plugins).
enum Link {
    Wire(WireConn),
    Driver(Conn),
}

/// Set once the lean client has met something it does not do (an authentication plugin,
/// caching_sha2_password's full authentication without TLS): later sessions of the process
/// go straight to the driver, instead of each trying first.
static WIRE_DECLINED: AtomicBool = AtomicBool::new(false);

/// Whether this process may use the lean client, and with what TLS (`tls_wish`): not with
/// `--compress`, nor with `RDUMP_WIRE=driver` (kept for comparing the two paths), nor when
/// a session already found it cannot serve these options.
fn wire_allowed(opts: &ConnectionOptions) -> Option<TlsWish> {
    if WIRE_DECLINED.load(Ordering::Relaxed)
        || opts.compress
        || std::env::var_os("RDUMP_WIRE").is_some_and(|v| v == "driver")
    {
        return None;
    }
    Some(tls_wish(opts))
}

/// TLS on the lean client as the driver does it: never on a unix socket, if offered for
/// PREFERRED over TCP, always for the other modes.
fn tls_wish(opts: &ConnectionOptions) -> TlsWish {
    let on_socket = matches!(address(opts), Address::Socket(_));
    match opts.ssl.mode {
        SslMode::Disabled => TlsWish::No,
        _ if on_socket => TlsWish::No,
        SslMode::Preferred => TlsWish::IfOffered,
        SslMode::Required | SslMode::VerifyCa | SslMode::VerifyIdentity => TlsWish::Yes,
    }
}

/// Opens a lean connection and runs what the driver's options would run on connect (SET
/// NAMES, --init-command). `Ok(None)` when the lean client cannot serve it, or failed in a
/// way the driver may not (then the driver tries, and reports any error in its own words).
/// A connection nothing answered (`Failure::Unreached`, `UnknownHost`) or the server
/// refused (an error packet: access denied, too many connections) is that failure: the
/// driver would meet the same.
///
/// TLS failures (`WireError::Tls`: no TLS from the server when the mode requires it, a
/// certificate the mode's checks refuse, a bad --ssl-ca/cert/key file) go to the driver:
/// it is configured alike (`ssl_opts`), so it fails too and says why, or connects
/// with TLS all the same. Neither client ever falls back to plain text after a TLS failure;
/// the driver only for PREFERRED when the server offers no TLS at all, as the wire does.
async fn open_wire(
    opts: &ConnectionOptions,
    tls: TlsWish,
) -> std::result::Result<Option<WireConn>, Failure> {
    let mut c = match connect_wire(opts, tls).await {
        Ok(c) => c,
        Err(WireError::Unsupported(_)) => {
            WIRE_DECLINED.store(true, Ordering::Relaxed);
            return Ok(None);
        }
        Err(WireError::Connect(e)) => return Err(Failure::Unreached(e)),
        Err(WireError::Resolve(e)) => return Err(Failure::UnknownHost(e)),
        Err(e @ WireError::Server { .. }) => {
            return Err(Failure::Other(Error::Connect {
                server: server_label(opts),
                message: e.to_string(),
            }));
        }
        Err(_) => return Ok(None),
    };
    for sql in init_statements(opts) {
        if c.query_drop(&sql).await.is_err() {
            return Ok(None);
        }
    }
    Ok(Some(c))
}

/// Opens a lean connection (TLS as `tls` says); the client's error as it is. The init
/// statements are the caller's.
async fn connect_wire(opts: &ConnectionOptions, tls: TlsWish) -> WireResult<WireConn> {
    let password = match &opts.password {
        Password::Given(s) => Some(s.expose()),
        Password::None | Password::Prompt => None,
    };
    let user = user_name(opts);
    let tls_config = match tls {
        TlsWish::No => None,
        TlsWish::IfOffered | TlsWish::Yes => Some(
            crate::client::tls::client_config(&opts.ssl)
                .map_err(|e| WireError::Tls(e.to_string()))?,
        ),
    };
    let login = Login {
        user: &user,
        password,
        tls,
        tls_config,
    };
    let addr = address(opts);
    let target = match &addr {
        Address::Socket(path) => Target::Socket(path),
        Address::Tcp(host, port) => Target::Tcp(host, *port),
    };
    WireConn::connect(target, &login).await
}

/// A connection on the lean client only, for the replication protocol (`binlog`), which
/// mysql_async cannot serve as needed; with the server's dialect. `--compress` and
/// authentication the lean client does not do are `WireError::Unsupported`, never served
/// by another client. The error is the client's own, so that the caller can tell a server
/// that is down (`WireError::Io`, `Connect`: worth retrying) from one that refuses
/// (`Server`). `server_label` names the server in messages.
pub async fn open_replication(opts: &ConnectionOptions) -> WireResult<(WireConn, Dialect)> {
    if opts.compress {
        return Err(WireError::Unsupported(
            "the binlog stream does not support --compress".into(),
        ));
    }
    let mut c = connect_wire(opts, tls_wish(opts)).await?;
    for sql in init_statements(opts) {
        c.query_drop(&sql).await?;
    }
    let version = c.server_version();
    let dialect = Dialect::from_version_string(version.strip_prefix("5.5.5-").unwrap_or(version));
    Ok((c, dialect))
}

/// Whether a connection is a process's first to the server, or one more of a dump or load
/// whose first connection is open (then a refused connect means a full accept queue, not a
/// server that is down, and is tried again too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    First,
    More,
}

/// How long a connection is tried again while the server's accept queue is full (EAGAIN
/// on a unix socket when more connections arrive at once than its `back_log`; a refused
/// TCP connect for one more connection).
const CONNECT_PATIENCE: Duration = Duration::from_secs(10);

/// How one attempt to open a connection failed.
enum Failure {
    /// Nothing answered: no socket, refused, unreachable, accept queue full.
    Unreached(io::Error),
    /// The host name did not resolve.
    UnknownHost(io::Error),
    /// Anything else (the server refused: access denied, too many connections; TLS), as
    /// reported.
    Other(Error),
}

impl Failure {
    /// Worth another attempt: the server's accept queue was full.
    fn transient(&self, opening: Opening) -> bool {
        match self {
            Failure::Unreached(e) => match e.raw_os_error() {
                Some(libc::EAGAIN) => true,
                Some(libc::ECONNREFUSED) => opening == Opening::More,
                _ => false,
            },
            _ => false,
        }
    }

    /// The error, worded as the client library words a failure to connect at all:
    /// `2002: "Can't connect to local server through socket '...' (2)"`,
    /// `2003: "Can't connect to server on 'db1:3306' (111)"`, `2005: "Unknown server
    /// host 'db1' (-2)"` (the TCP form names the port, as MySQL's clients do).
    fn into_error(self, opts: &ConnectionOptions) -> Error {
        let errno = |e: &io::Error| {
            e.raw_os_error()
                .map_or_else(|| e.to_string(), |n| n.to_string())
        };
        let message = match (address(opts), self) {
            (_, Failure::Other(e)) => return e,
            (Address::Socket(path), Failure::Unreached(e) | Failure::UnknownHost(e)) => format!(
                "2002: \"Can't connect to local server through socket '{path}' ({})\"",
                errno(&e)
            ),
            (Address::Tcp(host, port), Failure::Unreached(e)) => format!(
                "2003: \"Can't connect to server on '{}:{port}' ({})\"",
                opts.host.as_deref().unwrap_or(&host),
                errno(&e)
            ),
            (Address::Tcp(host, _), Failure::UnknownHost(e)) => format!(
                "2005: \"Unknown server host '{}' ({})\"",
                opts.host.as_deref().unwrap_or(&host),
                resolver_code(&e)
            ),
        };
        Error::Unreachable { message }
    }
}

/// getaddrinfo's error code for a failed lookup, as the client library prints it (the
/// standard library keeps only its text).
fn resolver_code(e: &io::Error) -> String {
    let text = e.to_string();
    [
        ("Name or service not known", "-2"),
        ("Temporary failure in name resolution", "-3"),
        ("No address associated with hostname", "-5"),
    ]
    .iter()
    .find(|(words, _)| text.contains(words))
    .map_or(text.clone(), |(_, code)| code.to_string())
}

/// Tries `attempt` again, backing off, while it fails transiently (see `Failure`), for up
/// to `CONNECT_PATIENCE`; the last failure is the error.
async fn with_retries<T, F, Fut>(
    opts: &ConnectionOptions,
    opening: Opening,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, Failure>>,
{
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        match attempt().await {
            Ok(t) => return Ok(t),
            Err(f) if f.transient(opening) && started.elapsed() < CONNECT_PATIENCE => {
                // Spread the attempts of many connections over time.
                let jitter = Duration::from_micros(u64::from(std::process::id() % 7) * 700)
                    + Duration::from_nanos(started.elapsed().subsec_nanos() as u64 % 3_000_000);
                tokio::time::sleep(pause + jitter).await;
                pause = (pause * 2).min(Duration::from_millis(250));
            }
            Err(f) => return Err(f.into_error(opts)),
        }
    }
}

/// Connections opened at once by `open_sessions` and rload: more at once only fill the
/// server's accept queue.
pub const CONNECTS_AT_ONCE: usize = 8;

fn user_name(opts: &ConnectionOptions) -> String {
    opts.user
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "root".into())
}

/// Run on every new connection: utf8mb4 for statements and control results (see
/// `Session`), then the user's --init-command.
fn init_statements(opts: &ConnectionOptions) -> Vec<String> {
    let mut init = vec![format!("SET NAMES {TEXT_CHARSET}")];
    if let Some(cmd) = &opts.init_command {
        init.push(cmd.clone());
    }
    init
}

/// Where to connect, resolved from the options.
enum Address {
    Socket(String),
    Tcp(String, u16),
}

/// The client library's rule (libmariadb's `mysql_real_connect`): the unix socket when the
/// host is `localhost` (or not given) and the protocol is not TCP, else TCP, also for
/// `--protocol=socket` with another host. `options::resolve` sets the protocol from a
/// port or socket given on the command line. Defaults as the library's: the socket from
/// `MYSQL_UNIX_PORT`, else the first of [`DEFAULT_SOCKETS`] that exists; the port from
/// `MYSQL_TCP_PORT`, else 3306.
fn address(opts: &ConnectionOptions) -> Address {
    let host = opts.host.as_deref().unwrap_or("localhost");
    if host == "localhost" && opts.protocol != Some(Protocol::Tcp) {
        let path = opts
            .socket
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .or_else(|| {
                std::env::var("MYSQL_UNIX_PORT")
                    .ok()
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| {
                DEFAULT_SOCKETS
                    .iter()
                    .find(|p| Path::new(p).exists())
                    .unwrap_or(&DEFAULT_SOCKETS[0])
                    .to_string()
            });
        Address::Socket(path)
    } else {
        let host = if host == "localhost" {
            "127.0.0.1"
        } else {
            host
        };
        let port = if opts.port != 0 {
            opts.port
        } else {
            std::env::var("MYSQL_TCP_PORT")
                .ok()
                .and_then(|p| p.parse().ok())
                .filter(|p| *p != 0)
                .unwrap_or(DEFAULT_PORT)
        };
        Address::Tcp(host.to_string(), port)
    }
}

/// The server's address as shown in messages and the dump header.
pub fn server_label(opts: &ConnectionOptions) -> String {
    match address(opts) {
        Address::Socket(path) => format!("localhost via {path}"),
        Address::Tcp(host, port) => format!("{host}:{port}"),
    }
}

/// The driver's TLS settings for the options. `tls::client_config` gives the lean client
/// the same (roots, identity, what each mode checks): change both together.
fn ssl_opts(opts: &ConnectionOptions, verify: bool) -> SslOpts {
    let mut ssl = SslOpts::default();
    if let Some(ca) = &opts.ssl.ca {
        ssl = ssl
            .with_root_certs(vec![ca.clone().into()])
            .with_disable_built_in_roots(true);
    }
    if let (Some(cert), Some(key)) = (&opts.ssl.cert, &opts.ssl.key) {
        ssl = ssl.with_client_identity(Some(ClientIdentity::new(
            cert.clone().into(),
            key.clone().into(),
        )));
    }
    match (opts.ssl.mode, verify) {
        (SslMode::VerifyIdentity, _) => ssl,
        (SslMode::VerifyCa, _) => ssl.with_danger_skip_domain_validation(true),
        // REQUIRED and PREFERRED encrypt without verifying, as the mysql clients do.
        _ => ssl
            .with_danger_accept_invalid_certs(true)
            .with_danger_skip_domain_validation(true),
    }
}

fn builder(opts: &ConnectionOptions, tls: bool) -> OptsBuilder {
    let password = match &opts.password {
        Password::Given(s) => Some(s.expose().to_string()),
        // `main` turns Prompt into Given before connecting.
        Password::None | Password::Prompt => None,
    };
    let mut b = OptsBuilder::default()
        .user(Some(user_name(opts)))
        .pass(password)
        .init(init_statements(opts))
        .stmt_cache_size(0)
        .prefer_socket(false);
    b = match address(opts) {
        Address::Socket(path) => b.socket(Some(path)),
        Address::Tcp(host, port) => b.ip_or_hostname(host).tcp_port(port),
    };
    if opts.compress {
        b = b.compression(mysql_async::Compression::default());
    }
    if tls {
        b = b.ssl_opts(Some(ssl_opts(opts, true)));
    }
    b
}

/// `--tls-version`/`--ssl-cipher` on a driver connection: mysql_async cannot be told
/// them, so what the server negotiated is checked instead, and a connection outside them is
/// refused (rdump's own client offers only what they allow).
async fn check_negotiated_tls(
    conn: &mut Conn,
    opts: &ConnectionOptions,
    server: &str,
) -> Result<()> {
    let rows: Vec<(String, String)> = conn
        .query("SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')")
        .await
        .map_err(|e| Error::Connect {
            server: server.to_string(),
            message: describe(&e),
        })?;
    let value = |name: &str| {
        rows.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (version, cipher) = (value("Ssl_version"), value("Ssl_cipher"));
    if version.is_empty() {
        return Ok(()); // no TLS (a socket, or PREFERRED without TLS from the server)
    }
    let version_ok = match (&opts.ssl.tls_versions, TlsVersion::parse(&version)) {
        (None, _) => true,
        (Some(allowed), Ok(Some(v))) => allowed.contains(&v),
        (Some(_), _) => false,
    };
    let cipher_ok = match &opts.ssl.ciphers {
        None => true,
        Some(allowed) => allowed.contains(&iana_cipher_name(&cipher)),
    };
    if version_ok && cipher_ok {
        return Ok(());
    }
    Err(Error::Connect {
        server: server.to_string(),
        message: format!(
            "the server negotiated {version} with {cipher}, outside --tls-version/--ssl-cipher"
        ),
    })
}

/// Opens one driver connection as the options say (socket or TCP, TLS per `--ssl-mode`,
/// falling back to plain for PREFERRED when the server has no TLS) and learns the server's
/// dialect. Returns the connection, the server's label for messages, and the dialect.
/// Every tool's connections are opened here (`Session`, and rload's `LoadConn`); a full
/// accept queue is waited out (`with_retries`).
pub async fn open(opts: &ConnectionOptions, opening: Opening) -> Result<(Conn, String, Dialect)> {
    with_retries(opts, opening, || open_driver(opts)).await
}

async fn open_driver(
    opts: &ConnectionOptions,
) -> std::result::Result<(Conn, String, Dialect), Failure> {
    let server = server_label(opts);
    let on_socket = matches!(address(opts), Address::Socket(_));
    let conn = match opts.ssl.mode {
        SslMode::Disabled => Conn::new(builder(opts, false)).await,
        SslMode::Preferred if on_socket => Conn::new(builder(opts, false)).await,
        SslMode::Preferred => match Conn::new(builder(opts, true)).await {
            Err(mysql_async::Error::Driver(
                mysql_async::DriverError::NoClientSslFlagFromServer,
            )) => Conn::new(builder(opts, false)).await,
            other => other,
        },
        _ => Conn::new(builder(opts, true)).await,
    };
    let mut conn = match conn {
        Ok(c) => c,
        Err(mysql_async::Error::Io(mysql_async::IoError::Io(e))) if never_connected(&e) => {
            return Err(Failure::Unreached(e));
        }
        Err(e) => {
            return Err(Failure::Other(Error::Connect {
                server,
                message: describe(&e),
            }));
        }
    };
    let version: Option<String> = conn.query_first("SELECT VERSION()").await.map_err(|e| {
        Failure::Other(Error::Server {
            server: server.clone(),
            context: "reading the server version".into(),
            message: describe(&e),
        })
    })?;
    let dialect = Dialect::from_version_string(&version.unwrap_or_default());
    if opts.ssl.restricted() {
        check_negotiated_tls(&mut conn, opts, &server)
            .await
            .map_err(Failure::Other)?;
    }
    Ok((conn, server, dialect))
}

/// An I/O error that only a connect gives: nothing answered.
fn never_connected(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ENOENT
                | libc::ECONNREFUSED
                | libc::EAGAIN
                | libc::ENETUNREACH
                | libc::EHOSTUNREACH
                | libc::ETIMEDOUT
                | libc::EACCES
                | libc::ENOTSOCK
        )
    )
}

/// Opens `n` sessions more (`Opening::More`), `CONNECTS_AT_ONCE` at a time, each readied
/// by `ready`. Returns those that opened, and the first error of those that did not (a
/// server or account limit: 1040 too many connections, 1226 max_user_connections): the
/// caller decides whether fewer will do.
pub async fn open_sessions<F, Fut>(
    opts: &ConnectionOptions,
    n: usize,
    ready: F,
) -> (Vec<Session>, Option<Error>)
where
    F: Fn(Session) -> Fut,
    Fut: std::future::Future<Output = Result<Session>>,
{
    use futures::StreamExt;
    let ready = &ready;
    let outcomes: Vec<Result<Session>> = futures::stream::iter(0..n)
        .map(|_| async move { ready(Session::connect_more(opts).await?).await })
        .buffer_unordered(CONNECTS_AT_ONCE)
        .collect()
        .await;
    let mut opened = Vec::with_capacity(n);
    let mut refused = None;
    for outcome in outcomes {
        match outcome {
            Ok(s) => opened.push(s),
            Err(e) => {
                refused.get_or_insert(e);
            }
        }
    }
    (opened, refused)
}

impl Session {
    /// Opens a process's first connection: the lean client when it can serve the options,
    /// else the driver (see `open`).
    pub async fn connect(opts: &ConnectionOptions) -> Result<Session> {
        Session::open(opts, Opening::First).await
    }

    /// Opens one more connection of a dump whose first is open (see `Opening`).
    pub async fn connect_more(opts: &ConnectionOptions) -> Result<Session> {
        Session::open(opts, Opening::More).await
    }

    async fn open(opts: &ConnectionOptions, opening: Opening) -> Result<Session> {
        with_retries(opts, opening, || Session::open_once(opts)).await
    }

    async fn open_once(opts: &ConnectionOptions) -> std::result::Result<Session, Failure> {
        if let Some(tls) = wire_allowed(opts)
            && let Some(c) = open_wire(opts, tls).await?
        {
            // The handshake carries VERSION(); MariaDB 10.x prefixes it with "5.5.5-" for
            // old replication clients.
            let version = c.server_version();
            let dialect =
                Dialect::from_version_string(version.strip_prefix("5.5.5-").unwrap_or(version));
            return Ok(Session::new(
                Link::Wire(c),
                server_label(opts),
                dialect,
                opts,
            ));
        }
        let (conn, server, dialect) = open_driver(opts).await?;
        Ok(Session::new(Link::Driver(conn), server, dialect, opts))
    }

    fn new(link: Link, server: String, dialect: Dialect, opts: &ConnectionOptions) -> Session {
        Session {
            link,
            server,
            dialect,
            rows_charset: opts.character_set.clone(),
            results_in_rows_charset: opts.character_set.eq_ignore_ascii_case(TEXT_CHARSET),
        }
    }

    /// Sets `character_set_results` for rows (`for_rows`) or for control queries.
    async fn results_for(&mut self, for_rows: bool) -> Result<()> {
        if self.results_in_rows_charset == for_rows
            || self.rows_charset.eq_ignore_ascii_case(TEXT_CHARSET)
        {
            return Ok(());
        }
        let charset = if for_rows {
            self.rows_charset.clone()
        } else {
            TEXT_CHARSET.to_string()
        };
        let sql = format!("SET character_set_results = {charset}");
        let outcome = match &mut self.link {
            Link::Wire(c) => c.query_drop(&sql).await.map_err(|e| e.to_string()),
            Link::Driver(c) => c.query_drop(&sql).await.map_err(|e| describe(&e)),
        };
        outcome.map_err(|m| self.error("setting the results' character set", m))?;
        self.results_in_rows_charset = for_rows;
        Ok(())
    }

    /// Which client this session runs on, for --verbose.
    pub fn client_name(&self) -> &'static str {
        match self.link {
            Link::Wire(_) => "rdump's text-protocol client",
            Link::Driver(_) => "mysql_async",
        }
    }

    fn error(&self, context: &str, message: String) -> Error {
        Error::Server {
            server: self.server.clone(),
            context: context.to_string(),
            message,
        }
    }

    /// Runs a statement that returns no rows worth reading.
    pub async fn exec(&mut self, sql: &str, context: &str) -> Result<()> {
        let outcome = match &mut self.link {
            Link::Wire(c) => c.query_drop(sql).await.map_err(|e| e.to_string()),
            Link::Driver(c) => c.query_drop(sql).await.map_err(|e| describe(&e)),
        };
        outcome.map_err(|m| self.error(context, m))
    }

    /// Runs a small control query and returns all its rows, text in utf8mb4.
    pub async fn rows(&mut self, sql: &str, context: &str) -> Result<Vec<Row>> {
        self.results_for(false).await?;
        let outcome = match &mut self.link {
            Link::Wire(c) => match c.query_all(sql).await {
                Ok((columns, rows)) => {
                    let columns: Arc<[mysql_async::Column]> = columns.into();
                    Ok(rows
                        .into_iter()
                        .map(|r| {
                            let values = r
                                .into_iter()
                                .map(|v| v.map_or(Value::NULL, Value::Bytes))
                                .collect();
                            mysql_common::row::new_row(values, columns.clone())
                        })
                        .collect())
                }
                Err(e) => Err(e.to_string()),
            },
            Link::Driver(c) => c.query::<Row, _>(sql).await.map_err(|e| describe(&e)),
        };
        outcome.map_err(|m| self.error(context, m))
    }

    /// The first column of the first row as text, `None` for no row or NULL.
    pub async fn first_value(&mut self, sql: &str, context: &str) -> Result<Option<String>> {
        let rows = self.rows(sql, context).await?;
        Ok(rows.first().and_then(|r| cell_string(r, 0)))
    }

    /// Starts `sql` and returns a cursor over its rows, read from the socket as they come,
    /// in the connection's character set.
    pub async fn cursor<'a>(&'a mut self, sql: &str, context: &str) -> Result<RowCursor<'a>> {
        self.results_for(true).await?;
        let server = self.server.clone();
        let started = match &mut self.link {
            Link::Wire(c) => start_wire_rows(c, sql).await.map_err(|e| e.to_string()),
            Link::Driver(c) => match c.query_iter(sql.to_string()).await {
                Ok(result) => Ok(Rows::Driver(result)),
                Err(e) => Err(describe(&e)),
            },
        };
        match started {
            Ok(rows) => Ok(RowCursor {
                rows,
                server,
                context: context.to_string(),
                count: 0,
            }),
            Err(message) => Err(Error::Server {
                server,
                context: context.to_string(),
                message,
            }),
        }
    }

    /// Streams the rows of `sql` to `on_row` as they arrive, never holding the result.
    /// `on_row` gets the cells as raw bytes (`None` for NULL), in the text protocol's form.
    pub async fn stream<F>(&mut self, sql: &str, context: &str, mut on_row: F) -> Result<u64>
    where
        F: FnMut(&[Option<&[u8]>]) -> Result<()>,
    {
        let mut cursor = self.cursor(sql, context).await?;
        while cursor.next_rows(&mut on_row).await? {}
        Ok(cursor.count)
    }

    /// Closes the connection politely; errors are irrelevant at that point.
    pub async fn close(self) {
        match self.link {
            Link::Wire(c) => c.close().await,
            Link::Driver(c) => {
                let _ = c.disconnect().await;
            }
        }
    }
}

/// Sends `sql` and reads up to its first result set's rows. A statement without rows
/// (or only such results) gives an empty cursor.
async fn start_wire_rows<'a>(c: &'a mut WireConn, sql: &str) -> WireResult<Rows<'a>> {
    c.send_query(sql).await?;
    Ok(match c.next_result_set().await? {
        Some(_) => Rows::Wire(c),
        None => Rows::Ended,
    })
}

enum Rows<'a> {
    Wire(&'a mut WireConn),
    Driver(mysql_async::QueryResult<'a, 'static, mysql_async::TextProtocol>),
    Ended,
}

/// The rows of one query, read as they arrive. Errors while reading are `Error::Rows`,
/// naming the row reached (mysqldump reports these as consistency failures); errors of
/// `on_row` are returned as they are.
pub struct RowCursor<'a> {
    rows: Rows<'a>,
    server: String,
    context: String,
    /// Rows returned so far.
    pub count: u64,
}

impl RowCursor<'_> {
    /// Passes the rows that have arrived to `on_row` (at least one, unless the result has
    /// ended: then `false`). On the lean client that is every row in the last 256 KiB
    /// read; on the driver, one row.
    pub async fn next_rows(
        &mut self,
        mut on_row: impl FnMut(&[Option<&[u8]>]) -> Result<()>,
    ) -> Result<bool> {
        let count = &mut self.count;
        let read: std::result::Result<Result<bool>, String> = match &mut self.rows {
            Rows::Ended => return Ok(false),
            Rows::Wire(c) => {
                let step = c
                    .next_rows(|cells| {
                        on_row(cells)?;
                        *count += 1;
                        Ok(())
                    })
                    .await;
                match step {
                    Ok(Ok(RowsState::More)) => Ok(Ok(true)),
                    Ok(Ok(RowsState::Ended { more })) => {
                        if more && let Err(e) = c.skip_results().await {
                            Err(e.to_string())
                        } else {
                            self.rows = Rows::Ended;
                            Ok(Ok(false))
                        }
                    }
                    Ok(Err(e)) => Ok(Err(e)),
                    Err(e) => Err(e.to_string()),
                }
            }
            Rows::Driver(result) => match result.next().await {
                Ok(Some(row)) => {
                    *count += 1;
                    Ok(on_row(&cells(&row)).map(|()| true))
                }
                Ok(None) => {
                    self.rows = Rows::Ended;
                    Ok(Ok(false))
                }
                Err(e) => Err(describe(&e)),
            },
        };
        match read {
            Ok(outcome) => outcome,
            Err(message) => Err(Error::Rows {
                server: self.server.clone(),
                context: self.context.clone(),
                message,
                row: self.count,
            }),
        }
    }
}

/// A text-protocol row's cells as raw bytes, `None` for NULL.
pub fn cells(row: &Row) -> Vec<Option<&[u8]>> {
    (0..row.len())
        .map(|i| match row.as_ref(i) {
            Some(mysql_async::Value::Bytes(b)) => Some(b.as_slice()),
            _ => None,
        })
        .collect()
}

/// A cell as text (lossy for non-UTF-8 bytes), `None` for NULL or a missing column.
pub fn cell_string(row: &Row, i: usize) -> Option<String> {
    match row.as_ref(i)? {
        mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        mysql_async::Value::NULL => None,
        other => Some(other.as_sql(true)),
    }
}

/// A cell by column name, for SHOW statements whose column order varies by version.
pub fn cell_by_name(row: &Row, name: &str) -> Option<String> {
    let idx = row
        .columns_ref()
        .iter()
        .position(|c| c.name_str().eq_ignore_ascii_case(name))?;
    cell_string(row, idx)
}

/// A cell as raw bytes, for definitions that may not be valid UTF-8.
pub fn cell_bytes(row: &Row, i: usize) -> Option<Vec<u8>> {
    match row.as_ref(i)? {
        mysql_async::Value::Bytes(b) => Some(b.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::options::Secret;

    #[test]
    fn localhost_without_port_uses_the_socket() {
        let opts = ConnectionOptions {
            socket: Some("/tmp/x.sock".into()),
            ..Default::default()
        };
        assert_eq!(server_label(&opts), "localhost via /tmp/x.sock");
    }

    #[test]
    fn protocol_tcp_uses_loopback_for_localhost() {
        let opts = ConnectionOptions {
            protocol: Some(Protocol::Tcp),
            port: 3307,
            ..Default::default()
        };
        assert_eq!(server_label(&opts), "127.0.0.1:3307");
    }

    #[test]
    fn a_port_without_protocol_is_still_the_socket_for_localhost() {
        // The port of an option file: only a command-line port sets the protocol.
        let opts = ConnectionOptions {
            port: 3307,
            socket: Some("/tmp/x.sock".into()),
            ..Default::default()
        };
        assert_eq!(server_label(&opts), "localhost via /tmp/x.sock");
    }

    #[test]
    fn protocol_socket_with_another_host_is_tcp() {
        let opts = ConnectionOptions {
            host: Some("127.0.0.1".into()),
            protocol: Some(Protocol::Socket),
            socket: Some("/tmp/x.sock".into()),
            port: 3307,
            ..Default::default()
        };
        assert_eq!(server_label(&opts), "127.0.0.1:3307");
    }

    #[test]
    fn a_remote_host_uses_tcp_with_the_default_port() {
        let opts = ConnectionOptions {
            host: Some("db1".into()),
            ..Default::default()
        };
        assert_eq!(server_label(&opts), "db1:3306");
    }

    #[test]
    fn server_label_never_contains_the_password() {
        let opts = ConnectionOptions {
            host: Some("db1".into()),
            password: Password::Given(Secret::new("hunter2")),
            ..Default::default()
        };
        assert!(!server_label(&opts).contains("hunter2"));
        assert!(!format!("{opts:?}").contains("hunter2"));
    }
}
