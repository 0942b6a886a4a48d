//! The loader's connections: opened from the same `ConnectionOptions` as rdump's
//! (`crate::client::conn::Session`: socket or TCP, TLS modes, compression, character set, init
//! command), plus what loading needs and `Session` does not expose: statements as raw bytes
//! (data files need not be UTF-8), the affected-row and warning counts of each statement,
//! the connection id, and `LOAD DATA LOCAL INFILE` fed from a stream.
//!
//! Connections are opened by `crate::client::conn::open`, so the address and TLS rules are rdump's.
//!
//! Errors are `crate::error::Error::Server`/`Connect`: they name the server and what was being
//! done, never the statement (a CHANGE MASTER carries a password).

use futures::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, InfileData, Row};

use crate::client::conn::{Opening, cell_string};
use crate::client::options::ConnectionOptions;
use crate::error::{Error, describe};
use crate::sql::dialect::Dialect;

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

impl LoadConn {
    /// Opens one connection, exactly as rdump's sessions are opened (`crate::client::conn::open`).
    pub async fn connect(opts: &ConnectionOptions) -> Result<LoadConn, Error> {
        LoadConn::open(opts, Opening::First).await
    }

    /// Opens one more connection of a load whose first is open: a refused connect (the
    /// server's accept queue full) is tried again too.
    pub async fn connect_more(opts: &ConnectionOptions) -> Result<LoadConn, Error> {
        LoadConn::open(opts, Opening::More).await
    }

    async fn open(opts: &ConnectionOptions, opening: Opening) -> Result<LoadConn, Error> {
        let (conn, server, dialect) = crate::client::conn::open(opts, opening).await?;
        Ok(LoadConn {
            conn,
            server,
            dialect,
        })
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
