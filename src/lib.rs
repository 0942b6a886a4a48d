//! rdump: a drop-in, faster `mysqldump` for MySQL and MariaDB.
//!
//! Data flows one way: options -> plan -> snapshot -> read -> encode -> sink.
//! See ARCHITECTURE.md for the map of modules and the invariants they keep.

pub mod catalog;
pub mod chunk;
pub mod client;
pub mod dir;
pub mod dump;
pub mod error;
pub mod format;
pub mod group;
pub mod load;
pub mod options;
pub mod output;
pub mod plan;
pub mod pool;
pub mod process;
pub mod read;
pub mod snapshot;
pub mod sql;
