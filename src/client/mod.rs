//! Talking to a MySQL or MariaDB server: opening connections (unix socket or TCP, TLS,
//! authentication, character set), running statements with errors that name the server,
//! and streaming result rows to the caller without a copy per row.
//!
//! `conn::Session` is the one type the rest of the crate holds. It runs on `wire`, rdump's
//! own lean client of the text protocol, whenever it can, and on mysql_async otherwise
//! (protocol compression, other authentication plugins); `tls` configures rustls for an
//! `--ssl-mode`; `options` says what to connect to. `conn::open_replication` gives the
//! binlog archiver a `wire` connection, on which `wire` sends replication commands and
//! reads the event stream as sent. Not for: deciding what to run (the dump,
//! the load), or dumps of any kind: nothing here knows what a table or a chunk is.

pub mod conn;
pub mod options;
pub mod tls;
pub mod wire;
