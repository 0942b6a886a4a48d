//! The loader's connections: opened from the same `ConnectionOptions` as rdump's
//! (`crate::conn::Session`: socket or TCP, TLS modes, compression, character set, init
//! command), plus what loading needs and `Session` does not expose: statements as raw bytes
//! (data files need not be UTF-8), the affected-row and warning counts of each statement,
//! the connection id, and `LOAD DATA LOCAL INFILE` fed from a stream.
//!
//! The address and TLS rules are `crate::conn`'s, repeated here because `Session` keeps its
//! driver connection private; keep the two in step (see `conn::Session::connect`).
//!
//! Errors are `crate::error::Error::Server`/`Connect`: they name the server and what was being
//! done, never the statement (a CHANGE MASTER carries a password).

use std::path::Path;

use futures::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::{ClientIdentity, Conn, InfileData, OptsBuilder, Row, SslOpts};

use crate::conn::{cell_string, server_label};
use crate::dialect::Dialect;
use crate::error::{Error, describe};
use crate::plan::{ConnectionOptions, Password, Protocol, SslMode};

const DEFAULT_SOCKETS: &[&str] = &["/run/mysqld/mysqld.sock", "/tmp/mysql.sock"];
const DEFAULT_PORT: u16 = 3306;

/// What one statement did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    pub affected: u64,
    pub warnings: u16,
}

/// One open connection of the loader.
pub struct LoadConn {
    conn: Conn,
    /// "localhost via /run/mysqld/mysqld.sock" or "db1:3306": for messages.
    pub server: String,
    pub dialect: Dialect,
}

enum Address {
    Socket(String),
    Tcp(String, u16),
}

/// As `conn::address`: localhost means the socket, unless only a port was given.
fn address(opts: &ConnectionOptions) -> Address {
    let host = opts.host.as_deref().unwrap_or("localhost");
    let use_socket = match opts.protocol {
        Some(Protocol::Socket) => true,
        Some(Protocol::Tcp) => false,
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

fn ssl_opts(opts: &ConnectionOptions) -> SslOpts {
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
    match opts.ssl.mode {
        SslMode::VerifyIdentity => ssl,
        SslMode::VerifyCa => ssl.with_danger_skip_domain_validation(true),
        _ => ssl
            .with_danger_accept_invalid_certs(true)
            .with_danger_skip_domain_validation(true),
    }
}

fn builder(opts: &ConnectionOptions, tls: bool) -> OptsBuilder {
    let password = match &opts.password {
        Password::Given(s) => Some(s.expose().to_string()),
        Password::None | Password::Prompt => None,
    };
    let user = opts
        .user
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "root".into());
    let mut init = vec![format!("SET NAMES {}", opts.character_set)];
    if let Some(cmd) = &opts.init_command {
        init.push(cmd.clone());
    }
    let mut b = OptsBuilder::default()
        .user(Some(user))
        .pass(password)
        .init(init)
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
        b = b.ssl_opts(Some(ssl_opts(opts)));
    }
    b
}

impl LoadConn {
    /// Opens one connection, with TLS as `--ssl-mode` asks, and learns the server's dialect.
    pub async fn connect(opts: &ConnectionOptions) -> Result<LoadConn, Error> {
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
        let conn = conn.map_err(|e| Error::Connect {
            server: server.clone(),
            message: describe(&e),
        })?;
        let mut c = LoadConn {
            conn,
            server,
            dialect: Dialect::from_version_string(""),
        };
        let version = c
            .first_value("SELECT VERSION()", "reading the server version")
            .await?
            .unwrap_or_default();
        c.dialect = Dialect::from_version_string(&version);
        Ok(c)
    }

    pub fn error(&self, context: &str, e: &mysql_async::Error) -> Error {
        Error::Server {
            server: self.server.clone(),
            context: context.to_string(),
            message: describe(e),
        }
    }

    /// The server's thread id of this connection.
    pub fn id(&self) -> u32 {
        self.conn.id()
    }

    /// Runs one statement.
    pub async fn exec(&mut self, sql: &str, context: &str) -> Result<(), Error> {
        self.exec_bytes(sql.as_bytes(), context).await.map(|_| ())
    }

    /// Runs one statement given as bytes; returns its affected rows and warning count.
    pub async fn exec_bytes(&mut self, sql: &[u8], context: &str) -> Result<Outcome, Error> {
        match self.conn.query_drop(sql).await {
            Ok(()) => Ok(Outcome {
                affected: self.conn.affected_rows(),
                warnings: self.conn.get_warnings(),
            }),
            Err(e) => Err(self.error(context, &e)),
        }
    }

    /// Runs `LOAD DATA LOCAL INFILE ...` with `data` as the file's bytes.
    pub async fn load_local(
        &mut self,
        sql: &str,
        data: impl std::future::Future<Output = mysql_async::Result<InfileData>> + Send + Sync + 'static,
        context: &str,
    ) -> Result<Outcome, Error> {
        self.conn.set_infile_handler(data);
        let outcome = self.exec_bytes(sql.as_bytes(), context).await;
        // A statement that failed before the server asked for the file leaves the handler
        // installed, holding the data's source: replace it with an empty one to release it.
        self.conn.set_infile_handler(async {
            let empty: InfileData = futures::stream::empty().boxed();
            Ok(empty)
        });
        outcome
    }

    /// Runs a small query and returns all its rows.
    pub async fn rows(&mut self, sql: &str, context: &str) -> Result<Vec<Row>, Error> {
        match self.conn.query::<Row, _>(sql).await {
            Ok(rows) => Ok(rows),
            Err(e) => Err(self.error(context, &e)),
        }
    }

    /// The first column of the first row as text, `None` for no row or NULL.
    pub async fn first_value(&mut self, sql: &str, context: &str) -> Result<Option<String>, Error> {
        let rows = self.rows(sql, context).await?;
        Ok(rows.first().and_then(|r| cell_string(r, 0)))
    }

    /// `(code, level, message)` of the last statement's warnings.
    pub async fn warnings(&mut self) -> Result<Vec<(u32, String, String)>, Error> {
        let rows = self.rows("SHOW WARNINGS", "reading warnings").await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    cell_string(r, 1).and_then(|c| c.parse().ok()).unwrap_or(0),
                    cell_string(r, 0).unwrap_or_default(),
                    cell_string(r, 2).unwrap_or_default(),
                )
            })
            .collect())
    }

    /// Closes the connection politely; errors are irrelevant at that point.
    pub async fn close(self) {
        let _ = self.conn.disconnect().await;
    }
}
