//! The SQL text rdump writes and sends, with no I/O: quoting of names and strings, and the
//! one place that knows how MariaDB and MySQL differ (`dialect`).
//!
//! Everything above uses it: the client (which statements a session runs), the formats
//! (which statements a dump holds), the dump and the load. Not for: running SQL (see
//! `client`) or row values (escaped in place by `format::encode`).

pub mod dialect;
pub mod quote;
