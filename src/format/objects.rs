//! The database objects a dump describes, as plain data: tables (kind, engine, estimates),
//! columns and how each column's values are written (`ColumnKind`), and the definitions of
//! views, triggers, routines and events with the session settings they were created under,
//! and the accounts of `--system=users`.
//!
//! Filled by `dump::catalog` from the server, written by `encode` and `script`, recorded in
//! the manifest and read back by `load`. Not for: querying the server (see `dump::catalog`).

use crate::sql::quote::string_literal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    Base,
    View,
    Sequence,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    pub name: String,
    pub kind: TableKind,
    pub engine: Option<String>,
    /// mysql.general_log, slow_log and (MariaDB) transaction_registry: the server refuses
    /// LOCK TABLES on them and owns their rows, so they are dumped as structure only,
    /// created IF NOT EXISTS, as mysqldump does.
    pub is_log_table: bool,
    /// The server's row estimate (information_schema.TABLES.TABLE_ROWS), for ordering work.
    pub estimated_rows: u64,
    /// The server's average row size in bytes (AVG_ROW_LENGTH, 0 when unknown), for sizing
    /// the single stream's chunks.
    pub avg_row_bytes: u64,
    /// MariaDB `WITH SYSTEM VERSIONING` (TABLE_TYPE 'SYSTEM VERSIONED'): `--dump-history`
    /// and `--as-of` read its other row versions.
    pub system_versioned: bool,
}

impl TableInfo {
    /// Whether the engine takes INSERT DELAYED (mariadb-dump's list for
    /// `--delayed-insert`).
    pub fn takes_insert_delayed(&self) -> bool {
        matches!(
            self.engine
                .as_deref()
                .map(str::to_ascii_uppercase)
                .as_deref(),
            Some("MYISAM" | "ISAM" | "ARCHIVE" | "HEAP" | "MEMORY")
        )
    }

    /// Tables whose rows live elsewhere, so mysqldump writes their structure only.
    pub fn data_lives_elsewhere(&self) -> bool {
        self.is_log_table
            || matches!(
                self.engine
                    .as_deref()
                    .map(str::to_ascii_uppercase)
                    .as_deref(),
                Some("MRG_MYISAM" | "MRG_ISAM" | "FEDERATED" | "CONNECT" | "SPIDER")
            )
    }

    pub fn is_transactional(&self) -> bool {
        matches!(
            self.engine
                .as_deref()
                .map(str::to_ascii_uppercase)
                .as_deref(),
            Some("INNODB" | "ROCKSDB" | "TOKUDB")
        )
    }
}

/// How a column's text-protocol value must be written to restore the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Integers, DECIMAL, DOUBLE, YEAR: the text is a valid SQL number.
    Number,
    /// FLOAT: read widened to DOUBLE (see `Dialect::exact_float_expr`), written as a number.
    Float,
    /// BIT(n): the raw big-endian bytes, written as b'...'.
    Bit,
    /// Binary strings, BLOBs and spatial values: arbitrary bytes.
    Binary,
    /// Character strings, temporal values, SET, JSON: a quoted string.
    Text,
    /// ENUM: a quoted member, except the error value (index 0, shown as '') which is read
    /// as `ENUM_ERROR_VALUE` (see `dump::read`) and written as the number 0, since writing ''
    /// would restore a declared '' member instead.
    Enum,
}

/// What the SELECT returns for an ENUM's error value (index 0): no member can be this.
pub const ENUM_ERROR_VALUE: &str = "\u{1}rdump:enum-index-0\u{1}";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: ColumnKind,
    /// Generated (VIRTUAL or STORED) columns are never selected nor inserted.
    pub generated: bool,
    /// INVISIBLE columns are missing from `SELECT *` and must be named explicitly.
    pub invisible: bool,
    /// The DEFAULT calls NEXTVAL/NEXT VALUE FOR a sequence (MariaDB): inserting into the
    /// table then opens the sequence, which `LOCK TABLES t WRITE` alone does not allow.
    pub default_uses_sequence: bool,
}

impl ColumnKind {
    /// The kind's name in manifests.
    pub fn name(self) -> &'static str {
        match self {
            ColumnKind::Number => "number",
            ColumnKind::Float => "float",
            ColumnKind::Bit => "bit",
            ColumnKind::Binary => "binary",
            ColumnKind::Text => "text",
            ColumnKind::Enum => "enum",
        }
    }

    pub fn from_name(name: &str) -> Option<ColumnKind> {
        [
            ColumnKind::Number,
            ColumnKind::Float,
            ColumnKind::Bit,
            ColumnKind::Binary,
            ColumnKind::Text,
            ColumnKind::Enum,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }

    pub fn from_data_type(data_type: &str) -> ColumnKind {
        match data_type.to_ascii_lowercase().as_str() {
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "decimal"
            | "numeric" | "double" | "real" | "year" => ColumnKind::Number,
            "float" => ColumnKind::Float,
            "enum" => ColumnKind::Enum,
            "bit" => ColumnKind::Bit,
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob"
            | "geometry" | "point" | "linestring" | "polygon" | "multipoint"
            | "multilinestring" | "multipolygon" | "geometrycollection" | "geomcollection" => {
                ColumnKind::Binary
            }
            _ => ColumnKind::Text,
        }
    }
}

/// A definition together with the session settings it was created under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub name: String,
    pub create: String,
    pub sql_mode: String,
    pub character_set_client: String,
    pub collation_connection: String,
    /// Events only: the time zone the schedule is expressed in.
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutineType {
    Function,
    Procedure,
}

impl RoutineType {
    pub fn keyword(self) -> &'static str {
        match self {
            RoutineType::Function => "FUNCTION",
            RoutineType::Procedure => "PROCEDURE",
        }
    }
}
/// An account of `--system=users`: a user or (MariaDB) a role, with its statements. A
/// directory dump keeps a list of them as JSON (`accounts.json`, see `format::manifest`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Account {
    pub user: String,
    /// Empty for a role.
    pub host: String,
    pub is_role: bool,
    /// MariaDB: the role `SET DEFAULT ROLE` gave the user ("" for none).
    pub default_role: String,
    /// `SHOW CREATE USER` (users only).
    pub create: Option<String>,
    /// `SHOW GRANTS`, without its `SET DEFAULT ROLE` line (written from `default_role`).
    pub grants: Vec<String>,
}

impl Account {
    /// The account as SQL names it: `'u'@'h'`, a role `'r'`, MariaDB's `PUBLIC` role bare.
    pub fn sql_name(&self) -> String {
        match (self.is_role, self.user.as_str()) {
            (true, "PUBLIC") => "PUBLIC".to_string(),
            (true, _) => string_literal(&self.user),
            (false, _) => format!(
                "{}@{}",
                string_literal(&self.user),
                string_literal(&self.host)
            ),
        }
    }
}
