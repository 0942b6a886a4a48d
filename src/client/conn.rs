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

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mysql_async::prelude::Queryable;
use mysql_async::{ClientIdentity, Conn, OptsBuilder, Row, SslOpts, Value};

use crate::client::options::{ConnectionOptions, Password, Protocol, SslMode};
use crate::client::wire::{Login, RowsState, Target, TlsWish, WireConn, WireError, WireResult};
use crate::error::{Error, Result, describe};
use crate::sql::dialect::Dialect;

/// Where the default unix socket lives: MariaDB/Debian first, then MySQL's compiled default.
const DEFAULT_SOCKETS: &[&str] = &["/run/mysqld/mysqld.sock", "/tmp/mysql.sock"];
const DEFAULT_PORT: u16 = 3306;

/// One open connection and what we know about its server.
pub struct Session {
    link: Link,
    /// "localhost via /run/mysqld/mysqld.sock" or "db1:3306": for messages.
    pub server: String,
    pub dialect: Dialect,
}

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
/// NAMES, --init-command). `None` when the lean client cannot serve it, or failed at all
/// (then the driver tries, and reports any error in its own words).
///
/// TLS failures (`WireError::Tls`: no TLS from the server when the mode requires it, a
/// certificate the mode's checks refuse, a bad --ssl-ca/cert/key file) go the same way:
/// the driver is configured alike (`ssl_opts`), so it fails too and says why, or connects
/// with TLS all the same. Neither client ever falls back to plain text after a TLS failure;
/// the driver only for PREFERRED when the server offers no TLS at all, as the wire does.
async fn open_wire(opts: &ConnectionOptions, tls: TlsWish) -> Option<WireConn> {
    match connect_wire(opts, tls).await {
        Ok(c) => Some(c),
        Err(WireError::Unsupported(_)) => {
            WIRE_DECLINED.store(true, Ordering::Relaxed);
            None
        }
        Err(_) => None,
    }
}

/// Opens a lean connection and runs the init statements; the error as it is.
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
    let mut c = WireConn::connect(target, &login).await?;
    for sql in init_statements(opts) {
        c.query_drop(&sql).await?;
    }
    Ok(c)
}

/// A connection on the lean client only, for the replication protocol (`binlog`), which
/// mysql_async cannot serve as needed; with the server's dialect. `--compress` and
/// authentication the lean client does not do are `WireError::Unsupported`, never served
/// by another client. The error is the client's own, so that the caller can tell a server
/// that is down (`WireError::Io`, worth retrying) from one that refuses (`Server`).
/// `server_label` names the server in messages.
pub async fn open_replication(opts: &ConnectionOptions) -> WireResult<(WireConn, Dialect)> {
    if opts.compress {
        return Err(WireError::Unsupported(
            "the binlog stream does not support --compress".into(),
        ));
    }
    let c = connect_wire(opts, tls_wish(opts)).await?;
    let version = c.server_version();
    let dialect = Dialect::from_version_string(version.strip_prefix("5.5.5-").unwrap_or(version));
    Ok((c, dialect))
}

fn user_name(opts: &ConnectionOptions) -> String {
    opts.user
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "root".into())
}

/// Run on every new connection: the character set, then the user's --init-command.
fn init_statements(opts: &ConnectionOptions) -> Vec<String> {
    let mut init = vec![format!("SET NAMES {}", opts.character_set)];
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

fn address(opts: &ConnectionOptions) -> Address {
    let host = opts.host.as_deref().unwrap_or("localhost");
    let use_socket = match opts.protocol {
        Some(Protocol::Socket) => true,
        Some(Protocol::Tcp) => false,
        // As MariaDB's clients: localhost means the socket, unless only a port was given.
        None => {
            host == "localhost" && !(opts.port != 0 && opts.host.is_none() && opts.socket.is_none())
        }
    };
    if use_socket {
        let path = opts
            .socket
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
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
        let port = if opts.port == 0 {
            DEFAULT_PORT
        } else {
            opts.port
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

/// Opens one driver connection as the options say (socket or TCP, TLS per `--ssl-mode`,
/// falling back to plain for PREFERRED when the server has no TLS) and learns the server's
/// dialect. Returns the connection, the server's label for messages, and the dialect.
/// Every tool's connections are opened here (`Session`, and rload's `LoadConn`).
pub async fn open(opts: &ConnectionOptions) -> Result<(Conn, String, Dialect)> {
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
    let mut conn = conn.map_err(|e| Error::Connect {
        server: server.clone(),
        message: describe(&e),
    })?;
    let version: Option<String> =
        conn.query_first("SELECT VERSION()")
            .await
            .map_err(|e| Error::Server {
                server: server.clone(),
                context: "reading the server version".into(),
                message: describe(&e),
            })?;
    let dialect = Dialect::from_version_string(&version.unwrap_or_default());
    Ok((conn, server, dialect))
}

impl Session {
    /// Opens one connection: the lean client when it can serve the options, else the
    /// driver (see `open`).
    pub async fn connect(opts: &ConnectionOptions) -> Result<Session> {
        if let Some(tls) = wire_allowed(opts)
            && let Some(c) = open_wire(opts, tls).await
        {
            // The handshake carries VERSION(); MariaDB 10.x prefixes it with "5.5.5-" for
            // old replication clients.
            let version = c.server_version();
            let dialect =
                Dialect::from_version_string(version.strip_prefix("5.5.5-").unwrap_or(version));
            return Ok(Session {
                link: Link::Wire(c),
                server: server_label(opts),
                dialect,
            });
        }
        let (conn, server, dialect) = open(opts).await?;
        Ok(Session {
            link: Link::Driver(conn),
            server,
            dialect,
        })
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

    /// Runs a small control query and returns all its rows.
    pub async fn rows(&mut self, sql: &str, context: &str) -> Result<Vec<Row>> {
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

    /// Starts `sql` and returns a cursor over its rows, read from the socket as they come.
    pub async fn cursor<'a>(&'a mut self, sql: &str, context: &str) -> Result<RowCursor<'a>> {
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
