//! Dumping: what to read and how to read it consistently, and the two orchestrators that
//! turn a `Plan` into a dump.
//!
//! `catalog` says what exists, `selection` what the plan covers and how sessions are set
//! up, `snapshot` (one session, mysqldump's modes) and `group` (several sessions sharing one
//! view) keep the dumped state consistent and read its coordinates from the primitives in
//! `consistency`, `chunk` splits a table into key ranges, `read` plans each SELECT, and
//! `pool` reads a table's chunks over several sessions in order. `stream` writes one
//! mysqldump-shaped script (stdout, `-r`, `--tab`); `dir` writes a directory of chunk files
//! and its manifest. The orchestrators share helpers only through the modules below them.
//!
//! Not for: the bytes of a dump (see `format`), where they are stored (see `output`), or
//! talking to the server (see `client`).

pub mod catalog;
pub mod chunk;
pub mod consistency;
pub mod dir;
pub mod group;
pub mod pool;
pub mod read;
pub mod selection;
pub mod snapshot;
pub mod stream;
