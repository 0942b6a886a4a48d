//! The option table: every option rdump knows, as data, and the my_getopt name rules over it.
//!
//! One definition per option (long name, optional short letter, kind, help text, and the
//! [`Opt`] it sets) drives the command-line parser (`args`), the option-file reader
//! (`optfile`) and `--help`. [`long_occurrence`] is the single place where a long option name
//! as spelled by the user (`single_trans`, `skip-opt`, `loose-frob=1`) becomes a definition and
//! a [`Value`]; both the command line and option files go through it.
//!
//! It is not for: deciding what an option *means* (that is `resolve`), or reading files.
//!
//! The table is split into [`CLIENT_OPTIONS`] (connection options shared by every rdump tool,
//! e.g. a future `rload`) and [`DUMP_OPTIONS`] (mysqldump's own); a tool passes the list of
//! tables it accepts.

use std::fmt;

use super::UsageError;

/// How an option takes its value, as in my_getopt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--x`, `--skip-x`, `--x=0|1|ON|OFF|TRUE|FALSE`.
    Bool,
    /// `--x=v`, `--x v`, `-Xv`, `-X v`.
    RequiredValue,
    /// `--x`, `--x=v`, `-X`, `-Xv` (never the next argument).
    OptionalValue,
}

/// What an option sets; aliases share one `Opt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opt {
    Help,
    Version,
    // Connection.
    Host,
    Port,
    User,
    Password,
    Socket,
    Protocol,
    Ssl,
    SslMode,
    SslCa,
    SslCert,
    SslKey,
    SslVerifyServerCert,
    SslCipher,
    TlsVersion,
    Compress,
    DefaultCharacterSet,
    InitCommand,
    // Selection.
    AllDatabases,
    Databases,
    Tables,
    IgnoreTable,
    IgnoreTableData,
    IgnoreDatabase,
    Where,
    NoData,
    NoCreateInfo,
    NoCreateDb,
    Routines,
    Events,
    Triggers,
    System,
    DumpHistory,
    AsOf,
    // Shape.
    AddDropDatabase,
    AddDropTable,
    AddDropTrigger,
    AddLocks,
    DisableKeys,
    ExtendedInsert,
    CompleteInsert,
    InsertIgnore,
    DelayedInsert,
    Replace,
    HexBlob,
    Compact,
    Comments,
    DumpDate,
    TzUtc,
    NetBufferLength,
    MaxAllowedPacket,
    OrderByPrimary,
    OptGroup,
    Quick,
    CreateOptions,
    Compatible,
    SetCharset,
    NoSetNames,
    NoAutocommit,
    FlushPrivileges,
    QuoteNames,
    // Consistency.
    SingleTransaction,
    LockTables,
    LockAllTables,
    FlushLogs,
    MasterData,
    DumpSlave,
    Gtid,
    SetGtidPurged,
    IncludeMasterHostPort,
    ApplySlaveStatements,
    DeleteMasterLogs,
    // Output.
    ResultFile,
    Tab,
    Dir,
    Threads,
    ChunkSize,
    Format,
    Zstd,
    DirConsistency,
    Progress,
    Quiet,
    FieldsTerminatedBy,
    FieldsEnclosedBy,
    FieldsOptionallyEnclosedBy,
    FieldsEscapedBy,
    LinesTerminatedBy,
    Header,
    Xml,
    Force,
    Verbose,
    /// Accepted for compatibility and ignored.
    Ignored,
    /// Known to mysqldump but not implemented: enabling it is an error with this reason.
    Unsupported(&'static str),
}

#[derive(Debug)]
pub struct OptDef {
    pub long: &'static str,
    pub short: Option<char>,
    pub kind: Kind,
    /// The value placeholder in `--help` (`name` or `#`).
    pub arg: &'static str,
    pub help: &'static str,
    pub id: Opt,
}

impl OptDef {
    /// `--long`, as used in messages.
    pub fn display(&self) -> String {
        format!("--{}", self.long)
    }
}

pub(super) const fn flag(
    long: &'static str,
    short: Option<char>,
    id: Opt,
    help: &'static str,
) -> OptDef {
    OptDef {
        long,
        short,
        kind: Kind::Bool,
        arg: "",
        help,
        id,
    }
}
pub(super) const fn req(
    long: &'static str,
    short: Option<char>,
    arg: &'static str,
    id: Opt,
    help: &'static str,
) -> OptDef {
    OptDef {
        long,
        short,
        kind: Kind::RequiredValue,
        arg,
        help,
        id,
    }
}
const fn optv(
    long: &'static str,
    short: Option<char>,
    arg: &'static str,
    id: Opt,
    help: &'static str,
) -> OptDef {
    OptDef {
        long,
        short,
        kind: Kind::OptionalValue,
        arg,
        help,
        id,
    }
}

const IGNORED: &str = "Accepted for compatibility; has no effect.";
const NOT_SSL: &str =
    "only --ssl-ca, --ssl-cert, --ssl-key, --ssl-cipher and --tls-version are supported";

/// Help, version and connection options: shared by every rdump tool.
pub static CLIENT_OPTIONS: &[OptDef] = &[
    flag(
        "help",
        Some('?'),
        Opt::Help,
        "Display this help message and exit.",
    ),
    flag(
        "version",
        Some('V'),
        Opt::Version,
        "Output version information and exit.",
    ),
    req("host", Some('h'), "name", Opt::Host, "Connect to host."),
    req(
        "port",
        Some('P'),
        "#",
        Opt::Port,
        "Port number to use for connection.",
    ),
    req(
        "user",
        Some('u'),
        "name",
        Opt::User,
        "User for login if not current user.",
    ),
    optv(
        "password",
        Some('p'),
        "name",
        Opt::Password,
        "Password to use when connecting to server. If password is not given it's solicited on the tty.",
    ),
    req(
        "socket",
        Some('S'),
        "name",
        Opt::Socket,
        "The socket file to use for connection.",
    ),
    req(
        "protocol",
        None,
        "name",
        Opt::Protocol,
        "The protocol to use for connection (tcp, socket).",
    ),
    flag(
        "ssl",
        None,
        Opt::Ssl,
        "Enable SSL for connection (automatically enabled with other flags). (Defaults to on; use --skip-ssl to disable.)",
    ),
    req(
        "ssl-mode",
        None,
        "name",
        Opt::SslMode,
        "SSL connection mode: DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY.",
    ),
    req(
        "ssl-ca",
        None,
        "name",
        Opt::SslCa,
        "CA file in PEM format (implies --ssl).",
    ),
    req(
        "ssl-cert",
        None,
        "name",
        Opt::SslCert,
        "X509 cert in PEM format (implies --ssl).",
    ),
    req(
        "ssl-key",
        None,
        "name",
        Opt::SslKey,
        "X509 key in PEM format (implies --ssl).",
    ),
    flag(
        "ssl-verify-server-cert",
        None,
        Opt::SslVerifyServerCert,
        "Verify server's certificate and host name (same as --ssl-mode=VERIFY_IDENTITY).",
    ),
    req(
        "ssl-capath",
        None,
        "name",
        Opt::Unsupported(NOT_SSL),
        "Not supported.",
    ),
    req(
        "ssl-cipher",
        None,
        "name",
        Opt::SslCipher,
        "SSL cipher to use (implies --ssl): a colon-separated list, by OpenSSL or IANA name, of which rdump's TLS (rustls) offers the TLS 1.3 suites and the ECDHE AES-GCM and CHACHA20-POLY1305 suites of TLS 1.2.",
    ),
    req(
        "ssl-crl",
        None,
        "name",
        Opt::Unsupported(NOT_SSL),
        "Not supported.",
    ),
    req(
        "ssl-crlpath",
        None,
        "name",
        Opt::Unsupported(NOT_SSL),
        "Not supported.",
    ),
    req(
        "tls-version",
        None,
        "name",
        Opt::TlsVersion,
        "TLS protocol version for secure connection: a comma-separated list of TLSv1.2 and TLSv1.3 (TLSv1 and TLSv1.1 are not offered by rdump's TLS).",
    ),
    flag(
        "compress",
        Some('C'),
        Opt::Compress,
        "Use compression in server/client protocol.",
    ),
    req(
        "default-character-set",
        None,
        "name",
        Opt::DefaultCharacterSet,
        "Set the default character set (utf8mb4 unless given).",
    ),
    req(
        "init-command",
        None,
        "name",
        Opt::InitCommand,
        "SQL command to execute when connecting to the server.",
    ),
    req("character-sets-dir", None, "name", Opt::Ignored, IGNORED),
    req("plugin-dir", None, "name", Opt::Ignored, IGNORED),
    req("default-auth", None, "name", Opt::Ignored, IGNORED),
];

/// mysqldump's own options (MariaDB 10.11 mariadb-dump and MySQL 8 mysqldump names).
pub static DUMP_OPTIONS: &[OptDef] = &[
    flag(
        "all-databases",
        Some('A'),
        Opt::AllDatabases,
        "Dump all the databases. This will be same as --databases with all databases selected.",
    ),
    flag("all-tablespaces", Some('Y'), Opt::Ignored, IGNORED),
    flag("no-tablespaces", Some('y'), Opt::Ignored, IGNORED),
    flag(
        "add-drop-database",
        None,
        Opt::AddDropDatabase,
        "Add a DROP DATABASE before each create.",
    ),
    flag(
        "add-drop-table",
        None,
        Opt::AddDropTable,
        "Add a DROP TABLE before each create. (Defaults to on; use --skip-add-drop-table to disable.)",
    ),
    flag(
        "add-drop-trigger",
        None,
        Opt::AddDropTrigger,
        "Add a DROP TRIGGER before each create.",
    ),
    flag(
        "add-locks",
        None,
        Opt::AddLocks,
        "Add locks around INSERT statements. (Defaults to on; use --skip-add-locks to disable.)",
    ),
    flag("allow-keywords", None, Opt::Ignored, IGNORED),
    flag(
        "apply-slave-statements",
        None,
        Opt::ApplySlaveStatements,
        "Adds 'STOP SLAVE' prior to 'CHANGE MASTER' and 'START SLAVE' to bottom of dump.",
    ),
    flag(
        "apply-replica-statements",
        None,
        Opt::ApplySlaveStatements,
        "Same as --apply-slave-statements.",
    ),
    req(
        "as-of",
        None,
        "name",
        Opt::AsOf,
        "Dump system versioned table(s) as of specified timestamp. Argument is interpreted according to the --tz-utc setting. Table structures are always dumped as of current timestamp. Not with --dir.",
    ),
    flag(
        "column-statistics",
        None,
        Opt::Ignored,
        "Accepted for compatibility with MySQL 8; has no effect.",
    ),
    flag(
        "comments",
        Some('i'),
        Opt::Comments,
        "Write additional information. (Defaults to on; use --skip-comments to disable.)",
    ),
    req(
        "compatible",
        None,
        "name",
        Opt::Compatible,
        "Read definitions under these sql_mode names: no_key_options, no_table_options, no_field_options (comma-separated). mariadb-dump's ansi, mysql323, mysql40, postgresql, oracle, mssql, db2 and maxdb are refused: their dumps do not restore into MariaDB or MySQL as they are.",
    ),
    flag(
        "compact",
        None,
        Opt::Compact,
        "Give less verbose output: no header/footer constructs. Enables options --skip-add-drop-table --skip-add-locks --skip-comments --skip-disable-keys --skip-set-charset.",
    ),
    flag(
        "complete-insert",
        Some('c'),
        Opt::CompleteInsert,
        "Use complete insert statements.",
    ),
    flag(
        "create-options",
        Some('a'),
        Opt::CreateOptions,
        "Include all MariaDB specific create options. (Defaults to on; use --skip-create-options to disable.)",
    ),
    flag(
        "databases",
        Some('B'),
        Opt::Databases,
        "Dump several databases. All name arguments are regarded as database names. 'USE db_name;' will be included in the output.",
    ),
    flag("debug-check", None, Opt::Ignored, IGNORED),
    flag("debug-info", None, Opt::Ignored, IGNORED),
    flag(
        "delayed-insert",
        None,
        Opt::DelayedInsert,
        "Insert rows with INSERT DELAYED (tables of MyISAM, MEMORY and ARCHIVE; not in --dir dumps).",
    ),
    flag(
        "delete-master-logs",
        None,
        Opt::DeleteMasterLogs,
        "Delete logs on master after backup: once the dump is complete, PURGE BINARY LOGS TO the file of its position. Turns on --flush-logs and --master-data (2 unless given). Not with --dir.",
    ),
    flag(
        "delete-source-logs",
        None,
        Opt::DeleteMasterLogs,
        "Same as --delete-master-logs.",
    ),
    flag(
        "disable-keys",
        Some('K'),
        Opt::DisableKeys,
        "'/*!40000 ALTER TABLE tb_name DISABLE KEYS */; and '/*!40000 ALTER TABLE tb_name ENABLE KEYS */; will be put in the output. (Defaults to on; use --skip-disable-keys to disable.)",
    ),
    flag(
        "dump-date",
        None,
        Opt::DumpDate,
        "Put a dump date to the end of the output. (Defaults to on; use --skip-dump-date to disable.)",
    ),
    flag(
        "dump-history",
        Some('H'),
        Opt::DumpHistory,
        "Dump system versioned table(s) with history (only for timestamp based versioning): every row version with its row_start and row_end, restored with system_versioning_insert_history. Not with --dir.",
    ),
    optv(
        "dump-slave",
        None,
        "#",
        Opt::DumpSlave,
        "Append the binary log position of this replica's source: 1 as a CHANGE MASTER statement, 2 as a comment. Turns --lock-all-tables on unless --single-transaction is given.",
    ),
    optv(
        "dump-replica",
        None,
        "#",
        Opt::DumpSlave,
        "Same as --dump-slave.",
    ),
    flag("events", Some('E'), Opt::Events, "Dump events."),
    flag(
        "extended-insert",
        Some('e'),
        Opt::ExtendedInsert,
        "Use multiple-row INSERT syntax that include several VALUES lists. (Defaults to on; use --skip-extended-insert to disable.)",
    ),
    req(
        "fields-terminated-by",
        None,
        "name",
        Opt::FieldsTerminatedBy,
        "Fields in the output file are terminated by the given string.",
    ),
    req(
        "fields-enclosed-by",
        None,
        "name",
        Opt::FieldsEnclosedBy,
        "Fields in the output file are enclosed by the given character.",
    ),
    req(
        "fields-optionally-enclosed-by",
        None,
        "name",
        Opt::FieldsOptionallyEnclosedBy,
        "Fields in the output file are optionally enclosed by the given character.",
    ),
    req(
        "fields-escaped-by",
        None,
        "name",
        Opt::FieldsEscapedBy,
        "Fields in the output file are escaped by the given character.",
    ),
    flag(
        "flush-logs",
        Some('F'),
        Opt::FlushLogs,
        "Flush logs file in server before starting dump.",
    ),
    flag(
        "flush-privileges",
        None,
        Opt::FlushPrivileges,
        "Emit a FLUSH PRIVILEGES statement after dumping the mysql database.",
    ),
    flag(
        "force",
        Some('f'),
        Opt::Force,
        "Continue even if we get an SQL error.",
    ),
    flag(
        "galera-info",
        None,
        Opt::Ignored,
        "Accepted; writes nothing. On a server that is not a Galera node mariadb-dump writes nothing either; rdump does not write a Galera node's wsrep position.",
    ),
    flag(
        "gtid",
        None,
        Opt::Gtid,
        "Used together with --master-data=1 or --dump-slave=1: set the GTID position instead of the binlog file and offset.",
    ),
    flag(
        "header",
        None,
        Opt::Header,
        "Used together with --tab. When enabled, adds header with column names to the top of output txt files.",
    ),
    flag(
        "hex-blob",
        None,
        Opt::HexBlob,
        "Dump binary strings (BINARY, VARBINARY, BLOB) in hexadecimal format.",
    ),
    req(
        "ignore-database",
        None,
        "name",
        Opt::IgnoreDatabase,
        "Do not dump the specified database (with --all-databases). Repeatable.",
    ),
    req(
        "ignore-table-data",
        None,
        "name",
        Opt::IgnoreTableData,
        "Do not dump the rows of the specified table, given as database.table (its structure is dumped). Repeatable.",
    ),
    req(
        "ignore-table",
        None,
        "name",
        Opt::IgnoreTable,
        "Do not dump the specified table, given as database.table. Repeatable.",
    ),
    flag(
        "include-master-host-port",
        None,
        Opt::IncludeMasterHostPort,
        "Adds 'MASTER_HOST=<host>, MASTER_PORT=<port>' to 'CHANGE MASTER TO..' in dump produced with --dump-slave.",
    ),
    flag(
        "include-source-host-port",
        None,
        Opt::IncludeMasterHostPort,
        "Same as --include-master-host-port.",
    ),
    flag(
        "insert-ignore",
        None,
        Opt::InsertIgnore,
        "Insert rows with INSERT IGNORE.",
    ),
    req(
        "lines-terminated-by",
        None,
        "name",
        Opt::LinesTerminatedBy,
        "Lines in the output file are terminated by the given string.",
    ),
    flag(
        "lock-all-tables",
        Some('x'),
        Opt::LockAllTables,
        "Locks all tables across all databases with a global read lock for the whole dump. Turns --lock-tables off.",
    ),
    flag(
        "lock-tables",
        Some('l'),
        Opt::LockTables,
        "Lock all tables for read. (Defaults to on; use --skip-lock-tables to disable.)",
    ),
    req("log-error", None, "name", Opt::Ignored, IGNORED),
    flag("log-queries", None, Opt::Ignored, IGNORED),
    optv(
        "master-data",
        None,
        "#",
        Opt::MasterData,
        "Append the binary log position: 1 as a CHANGE MASTER statement, 2 as a comment. Turns --lock-all-tables on unless --single-transaction is given.",
    ),
    optv(
        "source-data",
        None,
        "#",
        Opt::MasterData,
        "Same as --master-data.",
    ),
    req(
        "max-allowed-packet",
        None,
        "#",
        Opt::MaxAllowedPacket,
        "The maximum packet length to send to or receive from server (K, M, G suffixes).",
    ),
    req("max-statement-time", None, "#", Opt::Ignored, IGNORED),
    req(
        "net-buffer-length",
        None,
        "#",
        Opt::NetBufferLength,
        "The largest extended INSERT statement written, in bytes (K, M, G suffixes; 4K to 16M).",
    ),
    flag("network-timeout", None, Opt::Ignored, IGNORED),
    flag(
        "no-autocommit",
        None,
        Opt::NoAutocommit,
        "Wrap tables with autocommit/commit statements.",
    ),
    flag(
        "no-create-db",
        Some('n'),
        Opt::NoCreateDb,
        "Suppress the CREATE DATABASE statement written with --all-databases or --databases.",
    ),
    flag(
        "no-create-info",
        Some('t'),
        Opt::NoCreateInfo,
        "Don't write table creation info.",
    ),
    flag("no-data", Some('d'), Opt::NoData, "No row information."),
    flag("no-data-med", None, Opt::Ignored, IGNORED),
    flag(
        "no-set-names",
        Some('N'),
        Opt::NoSetNames,
        "Same as --skip-set-charset.",
    ),
    flag(
        "opt",
        None,
        Opt::OptGroup,
        "Same as --add-drop-table, --add-locks, --create-options, --quick, --extended-insert, --lock-tables, --set-charset, and --disable-keys. Enabled by default, disable with --skip-opt.",
    ),
    flag(
        "order-by-primary",
        None,
        Opt::OrderByPrimary,
        "Sorts each table's rows by primary key, or first unique key, if such a key exists.",
    ),
    flag("order-by-size", None, Opt::Ignored, IGNORED),
    flag(
        "quick",
        Some('q'),
        Opt::Quick,
        "Don't buffer query, dump directly to stdout. (Defaults to on; use --skip-quick to disable.)",
    ),
    flag(
        "quote-names",
        Some('Q'),
        Opt::QuoteNames,
        "Quote table and column names with backticks (`). Always on in rdump.",
    ),
    flag(
        "replace",
        None,
        Opt::Replace,
        "Use REPLACE INTO instead of INSERT INTO.",
    ),
    req(
        "dir",
        None,
        "name",
        Opt::Dir,
        "rdump: write a parallel, chunked dump into this directory, with a manifest (rdump.json).",
    ),
    req(
        "threads",
        None,
        "#",
        Opt::Threads,
        "rdump: connections reading in parallel inside one snapshot (default 4; 1 reads as mysqldump).",
    ),
    req(
        "chunk-size",
        None,
        "#",
        Opt::ChunkSize,
        "rdump: rows per chunk (--dir: per chunk file, default 100000; one stream: about 2 MiB of rows; K and M suffixes).",
    ),
    req(
        "format",
        None,
        "name",
        Opt::Format,
        "rdump, with --dir: data files as sql (INSERT statements) or csv.",
    ),
    optv(
        "zstd",
        None,
        "#",
        Opt::Zstd,
        "rdump: compress output files with zstd, at this level (default 1).",
    ),
    req(
        "consistency",
        None,
        "name",
        Opt::DirConsistency,
        "rdump, with --dir: auto, flush, backup-lock, lock, snapshot-only or none.",
    ),
    req(
        "progress",
        None,
        "name",
        Opt::Progress,
        "rdump: progress on stderr: auto (bars on a terminal), always (also a line every 5 s to a file or pipe) or never.",
    ),
    flag(
        "quiet",
        None,
        Opt::Quiet,
        "rdump: no summary line at the end.",
    ),
    req(
        "result-file",
        Some('r'),
        "name",
        Opt::ResultFile,
        "Direct output to a given file. rdump: a new file is created mode 0600 whatever the umask (mysqldump's follow it), an existing one of yours replaced by one with its mode and group; written under a temporary name and renamed on success; a device, fifo or /dev/stdout is written as it is.",
    ),
    flag(
        "routines",
        Some('R'),
        Opt::Routines,
        "Dump stored routines (functions and procedures).",
    ),
    flag(
        "set-charset",
        None,
        Opt::SetCharset,
        "Add 'SET NAMES default_character_set' to the output. (Defaults to on; use --skip-set-charset to disable.)",
    ),
    req(
        "set-gtid-purged",
        None,
        "name",
        Opt::SetGtidPurged,
        "MySQL: write SET @@GLOBAL.GTID_PURGED: OFF, ON, AUTO or COMMENTED.",
    ),
    flag(
        "single-transaction",
        None,
        Opt::SingleTransaction,
        "Creates a consistent snapshot by dumping all tables in a single transaction (InnoDB only). Turns --lock-tables off.",
    ),
    req(
        "system",
        None,
        "name",
        Opt::System,
        "Dump system tables as portable SQL: users (and roles), plugins, udfs, servers, \
         or all of these (stats and timezones are refused: dump those mysql tables by name).",
    ),
    req(
        "tab",
        Some('T'),
        "name",
        Opt::Tab,
        "Create tab-separated textfile for each table to given path (.sql and .txt files).",
    ),
    flag(
        "tables",
        None,
        Opt::Tables,
        "Overrides option --databases (-B).",
    ),
    flag(
        "triggers",
        None,
        Opt::Triggers,
        "Dump triggers for each dumped table. (Defaults to on; use --skip-triggers to disable.)",
    ),
    flag(
        "tz-utc",
        None,
        Opt::TzUtc,
        "Set connection time zone to UTC and add SET TIME_ZONE='+00:00' to the dump. (Defaults to on; use --skip-tz-utc to disable.)",
    ),
    flag(
        "verbose",
        Some('v'),
        Opt::Verbose,
        "Print info about the various stages.",
    ),
    req(
        "where",
        Some('w'),
        "name",
        Opt::Where,
        "Dump only selected records.",
    ),
    flag(
        "xml",
        Some('X'),
        Opt::Xml,
        "Dump a database as well formed XML: mariadb-dump's document, byte for byte. Not with \
         --tab, --dir, --master-data, --dump-slave, --system, --flush-privileges, \
         --dump-history or --as-of. Turns --comments off unless given. A dump with errors \
         (--force) lacks the closing </mysqldump>.",
    ),
];

/// The tables mysqldump-compatible parsing uses.
pub static DUMP_TABLES: &[&[OptDef]] = &[CLIENT_OPTIONS, DUMP_OPTIONS];

/// The value of one option occurrence, after prefixes and kinds are taken into account.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// A boolean set on (`--x`, `--enable-x`, `--x=1`).
    On,
    /// A boolean set off (`--skip-x`, `--x=0`), or a value option reset (`--skip-host`).
    Off,
    /// An optional-value option given bare (`--password`, `-p`, `--master-data`).
    Absent,
    Text(String),
}

/// Never prints text: it may be a password.
impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::On => f.write_str("On"),
            Value::Off => f.write_str("Off"),
            Value::Absent => f.write_str("Absent"),
            Value::Text(_) => f.write_str("Text(..)"),
        }
    }
}

/// `name`, `name=1/0/ON/OFF/TRUE/FALSE` (case-insensitive), as my_getopt.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "on" | "true" => Some(true),
        "0" | "off" | "false" => Some(false),
        _ => None,
    }
}

fn normalize(name: &str) -> String {
    name.replace('_', "-")
}

enum Found {
    One(&'static OptDef, bool),
    Ambiguous(Vec<&'static str>),
    None,
}

/// Exact match first, then a unique prefix (aliases of one option count once).
fn find(tables: &[&'static [OptDef]], name: &str) -> Found {
    let all = || tables.iter().flat_map(|t| t.iter());
    if let Some(def) = all().find(|d| d.long == name) {
        return Found::One(def, false);
    }
    let mut hits: Vec<&'static OptDef> = Vec::new();
    for def in all().filter(|d| d.long.starts_with(name)) {
        let alias = hits
            .iter()
            .any(|h| h.id == def.id && def.id != Opt::Ignored);
        if !alias {
            hits.push(def);
        }
    }
    match hits.len() {
        0 => Found::None,
        1 => Found::One(hits[0], true),
        _ => Found::Ambiguous(hits.iter().map(|d| d.long).collect()),
    }
}

/// Looks up a short option letter.
pub fn find_short(tables: &[&'static [OptDef]], c: char) -> Option<&'static OptDef> {
    tables
        .iter()
        .flat_map(|t| t.iter())
        .find(|d| d.short == Some(c))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Prefix {
    Skip,
    Enable,
    Maximum,
}

/// Turns one long option as written (`name` without the leading `--`, with its `=value` split
/// off into `inline`) into its definition and value. `next` supplies the following argument
/// for `--name value` (the command line); option files pass a closure returning `None`.
///
/// Returns `Ok(None)` for an option to skip: an unknown `loose-` option or a `maximum-` one
/// (both with a warning).
pub fn long_occurrence(
    tables: &[&'static [OptDef]],
    spelled: &str,
    inline: Option<String>,
    next: &mut dyn FnMut() -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<Option<(&'static OptDef, Value)>, UsageError> {
    let full = normalize(spelled);
    let mut rest: &str = &full;
    let mut prefix: Option<Prefix> = None;
    let mut loose = false;
    let def = loop {
        match find(tables, rest) {
            Found::One(def, by_prefix) => {
                if by_prefix {
                    warnings.push(format!(
                        "using unique option prefix '{rest}' is error-prone and can break in the future; use the full name '{}' instead",
                        def.long
                    ));
                }
                break def;
            }
            Found::Ambiguous(candidates) => {
                return Err(UsageError::AmbiguousOption {
                    option: format!("--{spelled}"),
                    candidates: candidates.join(", "),
                });
            }
            Found::None => {}
        }
        let special = [
            ("skip-", Some(Prefix::Skip)),
            ("disable-", Some(Prefix::Skip)),
            ("enable-", Some(Prefix::Enable)),
            ("maximum-", Some(Prefix::Maximum)),
            ("loose-", None),
        ];
        match special
            .iter()
            .find(|(p, _)| rest.starts_with(p) && rest.len() > p.len())
        {
            Some((p, kind)) => {
                rest = &rest[p.len()..];
                match kind {
                    Some(k) => prefix = Some(*k),
                    None => loose = true,
                }
            }
            None if loose => {
                warnings.push(format!("ignoring unknown option '--{spelled}'"));
                return Ok(None);
            }
            None if inline.is_some() => {
                return Err(UsageError::UnknownVariable(format!("--{spelled}")));
            }
            None => return Err(UsageError::UnknownOption(format!("--{spelled}"))),
        }
    };

    if prefix == Some(Prefix::Maximum) {
        if def.kind == Kind::Bool || inline.is_none() {
            return Err(UsageError::Invalid(format!(
                "'--{spelled}' needs a numeric option and a value"
            )));
        }
        warnings.push(format!(
            "ignoring '--{spelled}': maximum- limits have no effect in rdump"
        ));
        return Ok(None);
    }

    let value = match (def.kind, prefix) {
        // my_getopt: --skip-x=0 is a double negation and enables x.
        (Kind::Bool, Some(Prefix::Skip)) => match inline.as_deref() {
            Some("0") => Value::On,
            _ => Value::Off,
        },
        (Kind::Bool, Some(Prefix::Enable)) => match inline.as_deref() {
            Some("0") => Value::Off,
            _ => Value::On,
        },
        (Kind::Bool, _) => match inline {
            None => Value::On,
            Some(v) => match parse_bool(&v) {
                Some(true) => Value::On,
                Some(false) => Value::Off,
                None => {
                    return Err(UsageError::InvalidValue {
                        option: def.display(),
                        value: v,
                        reason: "expected 1/0, ON/OFF or TRUE/FALSE".into(),
                    });
                }
            },
        },
        // --skip-host, --disable-master-data: back to the default.
        (_, Some(Prefix::Skip)) => Value::Off,
        (Kind::RequiredValue, _) => match inline.or_else(next) {
            Some(v) => Value::Text(v),
            None => return Err(UsageError::MissingValue(def.display())),
        },
        (Kind::OptionalValue, _) => match inline {
            Some(v) => Value::Text(v),
            None => Value::Absent,
        },
    };
    Ok(Some((def, value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(
        spelled: &str,
        inline: Option<&str>,
    ) -> Result<Option<(&'static str, Value)>, UsageError> {
        let mut w = Vec::new();
        long_occurrence(
            DUMP_TABLES,
            spelled,
            inline.map(String::from),
            &mut || None,
            &mut w,
        )
        .map(|o| o.map(|(d, v)| (d.long, v)))
    }

    #[test]
    fn every_long_name_is_unique() {
        let all: Vec<_> = DUMP_TABLES.iter().flat_map(|t| t.iter()).collect();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.long, b.long, "duplicate long option");
            }
        }
    }

    #[test]
    fn every_short_letter_is_unique() {
        let all: Vec<_> = DUMP_TABLES
            .iter()
            .flat_map(|t| t.iter())
            .filter_map(|d| d.short)
            .collect();
        for (i, a) in all.iter().enumerate() {
            assert!(!all[i + 1..].contains(a), "duplicate short option -{a}");
        }
    }

    #[test]
    fn long_names_use_dashes_only() {
        for d in DUMP_TABLES.iter().flat_map(|t| t.iter()) {
            assert!(!d.long.contains('_'), "{}", d.long);
        }
    }

    #[test]
    fn a_name_that_starts_like_a_prefix_matches_itself_first() {
        // mysqldump's --disable-keys is an option, not "disable" + "keys".
        assert_eq!(
            lookup("disable-keys", None).unwrap(),
            Some(("disable-keys", Value::On))
        );
        assert_eq!(
            lookup("skip-disable-keys", None).unwrap(),
            Some(("disable-keys", Value::Off))
        );
        assert_eq!(
            lookup("disable-triggers", None).unwrap(),
            Some(("triggers", Value::Off))
        );
    }

    #[test]
    fn underscore_and_dash_are_the_same_in_names() {
        assert_eq!(
            lookup("single_transaction", None).unwrap(),
            Some(("single-transaction", Value::On))
        );
    }

    #[test]
    fn unique_prefix_selects_the_option() {
        assert_eq!(
            lookup("single-trans", None).unwrap(),
            Some(("single-transaction", Value::On))
        );
    }

    #[test]
    fn ambiguous_prefix_lists_the_candidates() {
        let err = lookup("s", None).unwrap_err().to_string();
        assert!(err.contains("ambiguous option '--s'"), "{err}");
        assert!(
            err.contains("socket") && err.contains("single-transaction"),
            "{err}"
        );
    }

    #[test]
    fn exact_match_wins_over_longer_names() {
        // "ssl" is also a prefix of ssl-ca, ssl-mode, ...
        assert_eq!(lookup("ssl", None).unwrap(), Some(("ssl", Value::On)));
        // "tables" is a prefix of nothing else but "tab" is a prefix of "tables".
        assert_eq!(
            lookup("tab", Some("/x")).unwrap(),
            Some(("tab", Value::Text("/x".into())))
        );
    }

    #[test]
    fn aliases_matching_one_prefix_are_not_ambiguous() {
        assert_eq!(
            lookup("apply-", None).unwrap().unwrap().0,
            "apply-slave-statements"
        );
    }

    #[test]
    fn skip_and_disable_turn_a_bool_off_and_enable_turns_it_on() {
        assert_eq!(
            lookup("skip-triggers", None).unwrap().unwrap().1,
            Value::Off
        );
        assert_eq!(
            lookup("disable-triggers", None).unwrap().unwrap().1,
            Value::Off
        );
        assert_eq!(
            lookup("enable-triggers", None).unwrap().unwrap().1,
            Value::On
        );
        assert_eq!(
            lookup("skip-triggers", Some("0")).unwrap().unwrap().1,
            Value::On
        );
    }

    #[test]
    fn bool_values_accept_on_off_true_false_one_zero_in_any_case() {
        for (v, want) in [
            ("1", Value::On),
            ("ON", Value::On),
            ("true", Value::On),
            ("0", Value::Off),
            ("off", Value::Off),
            ("False", Value::Off),
        ] {
            assert_eq!(lookup("compact", Some(v)).unwrap().unwrap().1, want, "{v}");
        }
        let err = lookup("compact", Some("maybe")).unwrap_err().to_string();
        assert!(err.contains("--compact") && err.contains("maybe"), "{err}");
    }

    #[test]
    fn skip_on_a_value_option_resets_it() {
        assert_eq!(
            lookup("skip-host", None).unwrap(),
            Some(("host", Value::Off))
        );
    }

    #[test]
    fn loose_prefix_ignores_unknown_options() {
        assert_eq!(lookup("loose-frobnicate", Some("1")).unwrap(), None);
        assert_eq!(
            lookup("loose-skip-triggers", None).unwrap(),
            Some(("triggers", Value::Off))
        );
    }

    #[test]
    fn unknown_option_names_the_option_but_not_its_value() {
        let err = lookup("frobnicate", Some("hunter2"))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "unknown variable '--frobnicate'");
        let err = lookup("frobnicate", None).unwrap_err().to_string();
        assert_eq!(err, "unknown option '--frobnicate'");
    }

    #[test]
    fn required_value_without_value_is_an_error() {
        assert_eq!(
            lookup("port", None).unwrap_err().to_string(),
            "option '--port' requires a value"
        );
    }

    #[test]
    fn maximum_prefix_is_accepted_and_ignored() {
        assert_eq!(
            lookup("maximum-max-allowed-packet", Some("1G")).unwrap(),
            None
        );
    }
}
