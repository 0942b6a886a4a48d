//! rdump: a drop-in, faster `mysqldump` for MySQL and MariaDB.
//!
//! Data flows one way: options -> plan -> snapshot -> read -> encode -> sink.
//! See ARCHITECTURE.md for the map of modules and the invariants they keep.

pub mod client;
pub mod dump;
pub mod error;
pub mod format;
pub mod load;
pub mod options;
pub mod output;
pub mod plan;
pub mod process;
pub mod sql;
