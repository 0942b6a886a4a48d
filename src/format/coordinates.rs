//! The binlog coordinates a dump records: this server's binlog file and position and GTID
//! state of exactly the dumped data, and, for a replica, where its SQL thread stood in its
//! source's binlog. Plain data.
//!
//! Read by `dump::snapshot`/`dump::group`, written by `script` and the manifest, used by
//! `load::replica` to seed a replica. Not for: reading them from a server.

/// Binlog coordinates of the dumped state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coordinates {
    /// This server's binlog file and position (`--master-data`).
    pub binlog: Option<(String, u64)>,
    /// The GTID set/position of the dumped state (MariaDB gtid_binlog_pos, MySQL gtid_executed).
    pub gtid: Option<String>,
    /// Where this replica's SQL thread stood in its source's binlog (`--dump-slave`).
    pub source: Option<SourceCoordinates>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCoordinates {
    pub file: String,
    pub pos: u64,
    pub host: String,
    pub port: u16,
    /// MariaDB: gtid_slave_pos of the replica.
    pub gtid: Option<String>,
}
