//! Server dialects: the one place that knows how MariaDB and MySQL (5.7, 8.0, 8.4) differ.
//!
//! It answers questions ("how do I read binlog coordinates?", "how do I write a CHANGE
//! MASTER for this server?") with SQL text, so no version check is scattered elsewhere; and,
//! for the binlog archiver, the replication command that starts a binlog stream
//! (COM_BINLOG_DUMP, or MySQL's COM_BINLOG_DUMP_GTID with its binary GTID set) as bytes.
//! Not for: running SQL (callers run what it returns) or parsing results beyond naming the
//! columns to read. MySQL 8 cannot be run here, so its answers are unit-tested on their text.

use crate::sql::quote::string_literal;

/// Where a binlog stream starts: a file and position, or after a GTID position (MariaDB:
/// `gtid_binlog_pos` form "0-1-100,1-2-7"; MySQL: an executed set "uuid:1-100").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinlogStart {
    Position { file: String, pos: u64 },
    Gtid(String),
}

/// MySQL's binary form of a GTID set (as COM_BINLOG_DUMP_GTID carries it): the number of
/// source UUIDs (u64), then per UUID its 16 bytes, the number of intervals (u64) and each
/// interval as start and end, the end one past the last (u64 each). "uuid:1-5:7" has the
/// intervals [1, 6) and [7, 8).
pub fn mysql_gtid_set_encoding(set: &str) -> Result<Vec<u8>, String> {
    let mut sids = Vec::new();
    for part in set.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut fields = part.split(':');
        let uuid_text = fields.next().unwrap_or_default();
        let hex_text: String = uuid_text.chars().filter(|c| *c != '-').collect();
        let uuid = hex::decode(&hex_text)
            .ok()
            .filter(|b| b.len() == 16 && uuid_text.len() == 36)
            .ok_or_else(|| format!("bad source UUID {uuid_text:?} in GTID set"))?;
        let mut intervals = Vec::new();
        for range in fields {
            let bad =
                || format!("bad interval {range:?} in GTID set (tagged GTIDs are not supported)");
            let (a, b) = range.split_once('-').unwrap_or((range, range));
            let start: u64 = a.parse().map_err(|_| bad())?;
            let last: u64 = b.parse().map_err(|_| bad())?;
            if start == 0 || last < start {
                return Err(bad());
            }
            intervals.push((start, last + 1));
        }
        if intervals.is_empty() {
            return Err(format!("no interval for {uuid_text} in GTID set"));
        }
        sids.push((uuid, intervals));
    }
    let mut out = (sids.len() as u64).to_le_bytes().to_vec();
    for (uuid, intervals) in sids {
        out.extend_from_slice(&uuid);
        out.extend_from_slice(&(intervals.len() as u64).to_le_bytes());
        for (start, end) in intervals {
            out.extend_from_slice(&start.to_le_bytes());
            out.extend_from_slice(&end.to_le_bytes());
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    MariaDb,
    MySql,
}

/// A server version as (major, minor, patch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialect {
    pub flavor: Flavor,
    pub version: Version,
    /// The full `SELECT VERSION()` text, for the dump header.
    pub version_string: String,
}

/// Column names of `SHOW SLAVE STATUS`/`SHOW REPLICA STATUS` that rdump reads: whether
/// the SQL thread runs, and where the source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaStatusColumns {
    pub sql_running: &'static str,
    pub exec_file: &'static str,
    pub exec_pos: &'static str,
    pub host: &'static str,
    pub port: &'static str,
}

impl Dialect {
    /// Recognises the server from `SELECT VERSION()`: "10.11.6-MariaDB-log", "8.0.36".
    pub fn from_version_string(v: &str) -> Dialect {
        let flavor = if v.to_ascii_lowercase().contains("mariadb") {
            Flavor::MariaDb
        } else {
            Flavor::MySql
        };
        // MariaDB 10.x behind old replication-compatible prefixes: "5.5.5-10.11.6-MariaDB".
        let core = v.strip_prefix("5.5.5-").unwrap_or(v);
        let mut nums = core
            .split(|c: char| !c.is_ascii_digit())
            .take(3)
            .map(|n| n.parse::<u32>().unwrap_or(0));
        let version = Version(
            nums.next().unwrap_or(0),
            nums.next().unwrap_or(0),
            nums.next().unwrap_or(0),
        );
        Dialect {
            flavor,
            version,
            version_string: v.to_string(),
        }
    }

    fn mysql_at_least(&self, major: u32, minor: u32, patch: u32) -> bool {
        self.flavor == Flavor::MySql && self.version >= Version(major, minor, patch)
    }

    fn mariadb_at_least(&self, major: u32, minor: u32, patch: u32) -> bool {
        self.flavor == Flavor::MariaDb && self.version >= Version(major, minor, patch)
    }

    pub fn is_mariadb(&self) -> bool {
        self.flavor == Flavor::MariaDb
    }

    /// Statement returning the binlog File and Position of the primary.
    pub fn binlog_status_sql(&self) -> &'static str {
        if self.mysql_at_least(8, 2, 0) {
            "SHOW BINARY LOG STATUS"
        } else {
            "SHOW MASTER STATUS"
        }
    }

    /// Statement describing this server's replication from its source.
    pub fn replica_status_sql(&self) -> &'static str {
        if self.mysql_at_least(8, 0, 22) || self.mariadb_at_least(10, 5, 1) {
            "SHOW REPLICA STATUS"
        } else {
            "SHOW SLAVE STATUS"
        }
    }

    /// Statement listing the replicas registered on this source (column `Server_id`).
    pub fn replica_hosts_sql(&self) -> &'static str {
        if self.mysql_at_least(8, 0, 22) {
            "SHOW REPLICAS"
        } else if self.mariadb_at_least(10, 5, 1) {
            "SHOW REPLICA HOSTS"
        } else {
            "SHOW SLAVE HOSTS"
        }
    }

    /// Stopping and starting the replica's IO thread (a new connection attempt now).
    pub fn restart_io_thread_sql(&self) -> [&'static str; 2] {
        if self.mysql_at_least(8, 0, 22) {
            ["STOP REPLICA IO_THREAD", "START REPLICA IO_THREAD"]
        } else {
            ["STOP SLAVE IO_THREAD", "START SLAVE IO_THREAD"]
        }
    }

    pub fn replica_status_columns(&self) -> ReplicaStatusColumns {
        if self.mysql_at_least(8, 0, 22) {
            ReplicaStatusColumns {
                sql_running: "Replica_SQL_Running",
                exec_file: "Relay_Source_Log_File",
                exec_pos: "Exec_Source_Log_Pos",
                host: "Source_Host",
                port: "Source_Port",
            }
        } else {
            ReplicaStatusColumns {
                sql_running: "Slave_SQL_Running",
                exec_file: "Relay_Master_Log_File",
                exec_pos: "Exec_Master_Log_Pos",
                host: "Master_Host",
                port: "Master_Port",
            }
        }
    }

    pub fn stop_replica_sql(&self) -> &'static str {
        if self.mysql_at_least(8, 0, 22) || self.mariadb_at_least(10, 5, 1) {
            "STOP REPLICA SQL_THREAD"
        } else {
            "STOP SLAVE SQL_THREAD"
        }
    }

    pub fn start_replica_sql(&self) -> &'static str {
        if self.mysql_at_least(8, 0, 22) || self.mariadb_at_least(10, 5, 1) {
            "START REPLICA"
        } else {
            "START SLAVE"
        }
    }

    /// The GTID set a replica has applied: MariaDB's slave position, MySQL's executed set.
    pub fn replica_gtid_position_sql(&self) -> &'static str {
        match self.flavor {
            Flavor::MySql => "SELECT @@GLOBAL.gtid_executed",
            Flavor::MariaDb => "SELECT @@GLOBAL.gtid_slave_pos",
        }
    }

    /// Starts only the replica's SQL thread (after `stop_replica_sql`).
    pub fn start_replica_sql_thread_sql(&self) -> &'static str {
        if self.mysql_at_least(8, 0, 22) || self.mariadb_at_least(10, 5, 1) {
            "START REPLICA SQL_THREAD"
        } else {
            "START SLAVE SQL_THREAD"
        }
    }

    /// The statement that points a replica at `file`/`pos` (without trailing `;`).
    /// MySQL 8.0.23 renamed CHANGE MASTER TO and its MASTER_ options.
    pub fn change_source_sql(
        &self,
        file: &str,
        pos: u64,
        host_port: Option<(&str, u16)>,
    ) -> String {
        let (stmt, pfx) = if self.mysql_at_least(8, 0, 23) {
            ("CHANGE REPLICATION SOURCE TO", "SOURCE")
        } else {
            ("CHANGE MASTER TO", "MASTER")
        };
        let mut s = format!("{stmt} ");
        if let Some((host, port)) = host_port {
            s.push_str(&format!(
                "{pfx}_HOST={}, {pfx}_PORT={port}, ",
                string_literal(host)
            ));
        }
        s.push_str(&format!(
            "{pfx}_LOG_FILE={}, {pfx}_LOG_POS={pos}",
            string_literal(file)
        ));
        s
    }

    /// The global variable that holds the GTID set of everything in the binlog.
    pub fn gtid_executed_sql(&self) -> &'static str {
        match self.flavor {
            Flavor::MariaDb => "SELECT @@GLOBAL.gtid_binlog_pos",
            Flavor::MySql => "SELECT @@GLOBAL.gtid_executed",
        }
    }

    /// MariaDB: the GTID position of a binlog file/position (exact for a snapshot).
    pub fn gtid_at_binlog_pos_sql(&self, file: &str, pos: u64) -> Option<String> {
        self.is_mariadb()
            .then(|| format!("SELECT BINLOG_GTID_POS({}, {pos})", string_literal(file)))
    }

    /// Statements that make a restored server continue replication from `gtid`.
    pub fn gtid_restore_sql(&self, gtid: &str) -> Vec<String> {
        match self.flavor {
            Flavor::MariaDb => vec![
                format!("SET GLOBAL gtid_slave_pos={}", string_literal(gtid)),
                "CHANGE MASTER TO MASTER_USE_GTID=slave_pos".to_string(),
            ],
            Flavor::MySql => vec![format!(
                "SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ {}",
                string_literal(gtid)
            )],
        }
    }

    /// Session variables a binlog reader sets before COM_BINLOG_DUMP: events as they are
    /// in the file, checksums included (the server would otherwise strip them), and a
    /// heartbeat every `heartbeat_ns` while idle. MariaDB also needs
    /// `@mariadb_slave_capability=4` (GTID-aware; without it GTID events arrive rewritten
    /// as dummy queries) and, to start at a GTID position, `@slave_connect_state`.
    pub fn binlog_session_sql(&self, heartbeat_ns: u64, connect_gtid: Option<&str>) -> Vec<String> {
        let mut sql = Vec::new();
        match self.flavor {
            Flavor::MariaDb => {
                sql.push("SET @mariadb_slave_capability = 4".to_string());
                sql.push("SET @master_binlog_checksum = @@global.binlog_checksum".to_string());
                if let Some(gtid) = connect_gtid {
                    sql.push(format!(
                        "SET @slave_connect_state = {}",
                        string_literal(gtid)
                    ));
                    sql.push("SET @slave_gtid_strict_mode = 1".to_string());
                }
            }
            Flavor::MySql if self.mysql_at_least(8, 0, 26) => {
                sql.push("SET @source_binlog_checksum = @@global.binlog_checksum".to_string());
            }
            Flavor::MySql => {
                sql.push("SET @master_binlog_checksum = @@global.binlog_checksum".to_string());
            }
        }
        sql.push(format!("SET @master_heartbeat_period = {heartbeat_ns}"));
        sql
    }

    /// The command packet that starts a binlog stream: COM_BINLOG_DUMP at `file`/`pos`
    /// (MariaDB also by GTID: `@slave_connect_state`, then an empty file name at 4), or
    /// on MySQL by GTID COM_BINLOG_DUMP_GTID with the executed set `gtid_set`, as the
    /// server's binary encoding. MariaDB gets BINLOG_SEND_ANNOTATE_ROWS_EVENT, so that
    /// the statement behind each row event is archived too. `Err` for a GTID set that
    /// cannot be read (MySQL 8.3's tagged GTIDs are not supported).
    pub fn binlog_dump_command(
        &self,
        start: &BinlogStart,
        server_id: u32,
    ) -> Result<Vec<u8>, String> {
        const COM_BINLOG_DUMP: u8 = 0x12;
        const COM_BINLOG_DUMP_GTID: u8 = 0x1E;
        const BINLOG_SEND_ANNOTATE_ROWS_EVENT: u16 = 0x02;
        const BINLOG_THROUGH_GTID: u16 = 0x04;
        let flags = if self.is_mariadb() {
            BINLOG_SEND_ANNOTATE_ROWS_EVENT
        } else {
            0
        };
        let by_position = |file: &str, pos: u64| -> Result<Vec<u8>, String> {
            let pos =
                u32::try_from(pos).map_err(|_| format!("binlog position {pos} is past 4 GiB"))?;
            let mut p = vec![COM_BINLOG_DUMP];
            p.extend_from_slice(&pos.to_le_bytes());
            p.extend_from_slice(&flags.to_le_bytes());
            p.extend_from_slice(&server_id.to_le_bytes());
            p.extend_from_slice(file.as_bytes());
            Ok(p)
        };
        match (start, self.flavor) {
            (BinlogStart::Position { file, pos }, _) => by_position(file, *pos),
            (BinlogStart::Gtid(_), Flavor::MariaDb) => by_position("", 4),
            (BinlogStart::Gtid(set), Flavor::MySql) => {
                let data = mysql_gtid_set_encoding(set)?;
                let mut p = vec![COM_BINLOG_DUMP_GTID];
                p.extend_from_slice(&BINLOG_THROUGH_GTID.to_le_bytes());
                p.extend_from_slice(&server_id.to_le_bytes());
                p.extend_from_slice(&0u32.to_le_bytes()); // no file name
                p.extend_from_slice(&4u64.to_le_bytes());
                p.extend_from_slice(&(data.len() as u32).to_le_bytes());
                p.extend_from_slice(&data);
                Ok(p)
            }
        }
    }

    /// MariaDB can report the binlog position of a consistent snapshot without a global lock.
    pub fn snapshot_binlog_status_sql(&self) -> Option<&'static str> {
        self.is_mariadb()
            .then_some("SHOW STATUS LIKE 'binlog_snapshot_%'")
    }

    /// The lightest lock that stops commits while coordinates are read, with its release.
    pub fn backup_lock_sql(&self) -> Option<(Vec<&'static str>, &'static str)> {
        if self.mariadb_at_least(10, 4, 1) {
            Some((
                vec!["BACKUP STAGE START", "BACKUP STAGE BLOCK_COMMIT"],
                "BACKUP STAGE END",
            ))
        } else if self.mysql_at_least(8, 0, 0) {
            Some((vec!["LOCK INSTANCE FOR BACKUP"], "UNLOCK INSTANCE"))
        } else {
            None
        }
    }

    /// A SELECT expression that returns a FLOAT column's stored value exactly. The text
    /// protocol prints FLOAT with 6 significant digits (1.2345678 comes back as 1.23457);
    /// widened to DOUBLE it prints the exact value, which restores to the same float bits.
    pub fn exact_float_expr(&self, quoted_column: &str) -> String {
        if self.mariadb_at_least(10, 4, 5) || self.mysql_at_least(8, 0, 17) {
            format!("CAST({quoted_column} AS DOUBLE)")
        } else {
            format!("({quoted_column} + 0e0)")
        }
    }

    /// The first line of a MariaDB dump: makes a MariaDB client refuse `\!` shell commands
    /// hidden in names while restoring. Other clients read it as a comment.
    pub fn sandbox_line(&self) -> Option<&'static str> {
        self.is_mariadb()
            .then_some("/*M!999999\\- enable the sandbox mode */ ")
    }

    /// MySQL 8 caches `information_schema.TABLES` statistics (TABLE_ROWS, DATA_LENGTH) for
    /// up to a day: a freshly loaded table shows 0 rows. The chunk planner and the
    /// biggest-first order read those estimates, so the dump's sessions ask for fresh ones.
    /// MariaDB reads them live.
    pub fn fresh_statistics_sql(&self) -> Option<&'static str> {
        self.mysql_at_least(8, 0, 3)
            .then_some("SET SESSION information_schema_stats_expiry = 0")
    }

    pub fn supports_sequences(&self) -> bool {
        self.mariadb_at_least(10, 3, 0)
    }

    /// `information_schema.COLUMNS.EXTRA` marks invisible columns on both flavors.
    pub fn supports_invisible_columns(&self) -> bool {
        self.mariadb_at_least(10, 3, 3) || self.mysql_at_least(8, 0, 23)
    }

    /// Databases `-A` never dumps.
    pub fn is_skipped_by_all_databases(name: &str) -> bool {
        name.eq_ignore_ascii_case("information_schema")
            || name.eq_ignore_ascii_case("performance_schema")
            || name.eq_ignore_ascii_case("sys")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mysql(v: &str) -> Dialect {
        Dialect::from_version_string(v)
    }
    fn mariadb() -> Dialect {
        Dialect::from_version_string("10.11.19-MariaDB-0+deb12u1-log")
    }

    #[test]
    fn binlog_session_sets_capability_checksum_and_heartbeat() {
        assert_eq!(
            mariadb().binlog_session_sql(2_000_000_000, Some("0-1-5")),
            [
                "SET @mariadb_slave_capability = 4",
                "SET @master_binlog_checksum = @@global.binlog_checksum",
                "SET @slave_connect_state = '0-1-5'",
                "SET @slave_gtid_strict_mode = 1",
                "SET @master_heartbeat_period = 2000000000",
            ]
        );
        assert_eq!(
            mysql("8.0.36").binlog_session_sql(1000, None),
            [
                "SET @source_binlog_checksum = @@global.binlog_checksum",
                "SET @master_heartbeat_period = 1000",
            ]
        );
        assert_eq!(
            mysql("5.7.44").binlog_session_sql(1000, None)[0],
            "SET @master_binlog_checksum = @@global.binlog_checksum"
        );
    }

    #[test]
    fn binlog_dump_by_position_asks_mariadb_for_annotate_rows_events() {
        let start = BinlogStart::Position {
            file: "binlog.000003".into(),
            pos: 0x0102,
        };
        let p = mariadb().binlog_dump_command(&start, 7).unwrap();
        let mut want = vec![0x12, 0x02, 0x01, 0, 0, 0x02, 0x00, 7, 0, 0, 0];
        want.extend_from_slice(b"binlog.000003");
        assert_eq!(p, want);
        let p = mysql("8.0.36").binlog_dump_command(&start, 7).unwrap();
        assert_eq!(&p[5..7], &[0, 0], "no MariaDB flag for MySQL");
        let far = BinlogStart::Position {
            file: "b".into(),
            pos: 1 << 32,
        };
        assert!(mariadb().binlog_dump_command(&far, 7).is_err());
        // MariaDB by GTID: @slave_connect_state, then an empty name at 4.
        let p = mariadb()
            .binlog_dump_command(&BinlogStart::Gtid("0-1-9".into()), 7)
            .unwrap();
        assert_eq!(p, [0x12, 4, 0, 0, 0, 0x02, 0, 7, 0, 0, 0]);
    }

    #[test]
    fn mysql_binlog_dump_gtid_carries_the_encoded_set() {
        let set = "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7, \n\
                   4e11fa47-71ca-11e1-9e33-c80aa9429562:10";
        let p = mysql("8.0.36")
            .binlog_dump_command(&BinlogStart::Gtid(set.into()), 9)
            .unwrap();
        assert_eq!(p[0], 0x1E);
        assert_eq!(&p[1..3], &[0x04, 0], "BINLOG_THROUGH_GTID");
        assert_eq!(&p[3..7], &9u32.to_le_bytes());
        assert_eq!(&p[7..11], &0u32.to_le_bytes(), "no file name");
        assert_eq!(&p[11..19], &4u64.to_le_bytes());
        let data_len = u32::from_le_bytes(p[19..23].try_into().unwrap()) as usize;
        let data = &p[23..];
        assert_eq!(data.len(), data_len);
        let mut want = 2u64.to_le_bytes().to_vec();
        want.extend_from_slice(&hex::decode("3E11FA4771CA11E19E33C80AA9429562").unwrap());
        want.extend_from_slice(&2u64.to_le_bytes());
        for v in [1u64, 6, 7, 8] {
            want.extend_from_slice(&v.to_le_bytes());
        }
        want.extend_from_slice(&hex::decode("4e11fa4771ca11e19e33c80aa9429562").unwrap());
        want.extend_from_slice(&1u64.to_le_bytes());
        for v in [10u64, 11] {
            want.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(data, want);
        for bad in [
            "3E11FA47-71CA-11E1-9E33-C80AA9429562",
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:0-3",
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:5-3",
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:tag:1-3",
            "not-a-uuid:1-3",
        ] {
            assert!(mysql_gtid_set_encoding(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn recognises_flavor_and_version() {
        let d = mariadb();
        assert_eq!(d.flavor, Flavor::MariaDb);
        assert_eq!(d.version, Version(10, 11, 19));
        let d = mysql("8.0.36-0ubuntu0.22.04.1");
        assert_eq!(d.flavor, Flavor::MySql);
        assert_eq!(d.version, Version(8, 0, 36));
        let d = Dialect::from_version_string("5.5.5-10.6.16-MariaDB");
        assert_eq!((d.flavor, d.version), (Flavor::MariaDb, Version(10, 6, 16)));
    }

    #[test]
    fn binlog_status_uses_the_new_name_from_mysql_8_2() {
        assert_eq!(mysql("8.4.0").binlog_status_sql(), "SHOW BINARY LOG STATUS");
        assert_eq!(mysql("8.0.36").binlog_status_sql(), "SHOW MASTER STATUS");
        assert_eq!(mariadb().binlog_status_sql(), "SHOW MASTER STATUS");
    }

    #[test]
    fn change_source_uses_replication_source_from_mysql_8_0_23() {
        assert_eq!(
            mysql("8.0.23").change_source_sql("binlog.000007", 1234, None),
            "CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000007', SOURCE_LOG_POS=1234"
        );
        assert_eq!(
            mysql("5.7.44").change_source_sql("b.1", 4, Some(("h'x", 3307))),
            "CHANGE MASTER TO MASTER_HOST='h\\'x', MASTER_PORT=3307, MASTER_LOG_FILE='b.1', MASTER_LOG_POS=4"
        );
        assert_eq!(
            mariadb().change_source_sql("bin.000001", 734, None),
            "CHANGE MASTER TO MASTER_LOG_FILE='bin.000001', MASTER_LOG_POS=734"
        );
    }

    #[test]
    fn replica_status_columns_follow_the_rename() {
        assert_eq!(mysql("8.0.22").replica_status_sql(), "SHOW REPLICA STATUS");
        assert_eq!(
            mysql("8.0.22").replica_status_columns().exec_pos,
            "Exec_Source_Log_Pos"
        );
        assert_eq!(mysql("5.7.44").replica_status_sql(), "SHOW SLAVE STATUS");
        assert_eq!(
            mariadb().replica_status_columns().exec_file,
            "Relay_Master_Log_File"
        );
        assert_eq!(
            mysql("8.0.22").replica_status_columns().sql_running,
            "Replica_SQL_Running"
        );
        assert_eq!(
            mariadb().replica_status_columns().sql_running,
            "Slave_SQL_Running"
        );
        assert_eq!(
            mysql("8.0.22").restart_io_thread_sql(),
            ["STOP REPLICA IO_THREAD", "START REPLICA IO_THREAD"]
        );
        assert_eq!(
            mysql("8.0.21").restart_io_thread_sql(),
            ["STOP SLAVE IO_THREAD", "START SLAVE IO_THREAD"]
        );
        assert_eq!(
            mariadb().restart_io_thread_sql(),
            ["STOP SLAVE IO_THREAD", "START SLAVE IO_THREAD"]
        );
        assert_eq!(
            mysql("8.0.22").start_replica_sql_thread_sql(),
            "START REPLICA SQL_THREAD"
        );
        assert_eq!(
            mysql("5.7.44").start_replica_sql_thread_sql(),
            "START SLAVE SQL_THREAD"
        );
        assert_eq!(
            mysql("8.0.36").replica_gtid_position_sql(),
            "SELECT @@GLOBAL.gtid_executed"
        );
        assert_eq!(
            mariadb().replica_gtid_position_sql(),
            "SELECT @@GLOBAL.gtid_slave_pos"
        );
    }

    #[test]
    fn gtid_state_is_gtid_executed_on_mysql_and_binlog_pos_on_mariadb() {
        assert_eq!(
            mysql("8.0.36").gtid_executed_sql(),
            "SELECT @@GLOBAL.gtid_executed"
        );
        assert_eq!(
            mariadb().gtid_executed_sql(),
            "SELECT @@GLOBAL.gtid_binlog_pos"
        );
        assert_eq!(
            mysql("8.0.36").gtid_restore_sql("uuid:1-5"),
            vec!["SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ 'uuid:1-5'"]
        );
        assert_eq!(
            mariadb().gtid_restore_sql("0-1-2"),
            vec![
                "SET GLOBAL gtid_slave_pos='0-1-2'",
                "CHANGE MASTER TO MASTER_USE_GTID=slave_pos"
            ]
        );
        assert_eq!(
            mariadb().gtid_at_binlog_pos_sql("bin.000001", 734).unwrap(),
            "SELECT BINLOG_GTID_POS('bin.000001', 734)"
        );
        assert!(mysql("8.0.36").gtid_at_binlog_pos_sql("b", 1).is_none());
    }

    #[test]
    fn backup_lock_is_lock_instance_on_mysql_8_and_backup_stage_on_mariadb() {
        let (lock, unlock) = mysql("8.0.36").backup_lock_sql().unwrap();
        assert_eq!(lock, vec!["LOCK INSTANCE FOR BACKUP"]);
        assert_eq!(unlock, "UNLOCK INSTANCE");
        let (lock, unlock) = mariadb().backup_lock_sql().unwrap();
        assert_eq!(
            lock,
            vec!["BACKUP STAGE START", "BACKUP STAGE BLOCK_COMMIT"]
        );
        assert_eq!(unlock, "BACKUP STAGE END");
        assert!(mysql("5.7.44").backup_lock_sql().is_none());
    }

    #[test]
    fn exact_float_expr_widens_to_double() {
        assert_eq!(mariadb().exact_float_expr("`f`"), "CAST(`f` AS DOUBLE)");
        assert_eq!(mysql("5.7.44").exact_float_expr("`f`"), "(`f` + 0e0)");
    }

    #[test]
    fn mysql_8_sessions_ask_for_fresh_table_statistics() {
        assert_eq!(
            mysql("8.0.36").fresh_statistics_sql(),
            Some("SET SESSION information_schema_stats_expiry = 0")
        );
        assert_eq!(mysql("5.7.44").fresh_statistics_sql(), None);
        assert_eq!(mariadb().fresh_statistics_sql(), None);
    }

    #[test]
    fn sandbox_line_only_for_mariadb() {
        assert!(mariadb().sandbox_line().is_some());
        assert!(mysql("8.0.36").sandbox_line().is_none());
    }
}
