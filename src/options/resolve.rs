//! What options mean: applies occurrences in order (option files, then the command line) and
//! then mysqldump's rules between options, producing a [`Plan`].
//!
//! Order matters exactly as in mysqldump: `--opt`, `--skip-opt` and `--compact` set their
//! group at their position, and later options override them. After all occurrences,
//! [`DumpBuilder::finish`] applies mysqldump's `get_options()` rules: `--dump-slave` and
//! `--master-data` imply `--lock-all-tables` unless `--single-transaction`, which conflicts
//! with `--lock-all-tables`; either turns `--lock-tables` off; `--fields-*` need `--tab`;
//! `--tab` excludes `-A`/`-B`; positionals become the [`Scope`].
//!
//! [`ConnectionBuilder`] holds the connection options on their own so that other rdump tools
//! can reuse them. It is not for: parsing names or files (see `table`, `args`, `optfile`).

use std::path::PathBuf;

use super::args::{Occurrence, Origin};
use super::table::{Opt, OptDef, Value};
use super::{Env, UsageError};
use crate::client::options::{
    ConnectionOptions, Password, Protocol, Secret, SslMode, TlsVersion, iana_cipher_name,
};
use crate::format::encode::tab::TabFormat;
use crate::format::shape::{CoordinateStyle, GtidPurged, InsertMode, Shape};
use crate::plan::{
    Consistency, ConsistencyPlan, DirConsistency, DirFormat, DirOptions, History, Output, Plan,
    Progress, Scope, Selection, StreamOptions,
};

/// Whether to go on after one occurrence: `--help`/`--version` stop at their position, as
/// mysqldump exits there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Help,
    Version,
}

/// The text of a value option, `None` when reset with `--skip-x`.
fn text(value: &Value) -> Option<&str> {
    match value {
        Value::Text(s) => Some(s),
        _ => None,
    }
}

fn on(value: &Value) -> bool {
    *value == Value::On
}

fn invalid(def: &OptDef, value: &str, reason: impl Into<String>) -> UsageError {
    UsageError::InvalidValue {
        option: def.display(),
        value: value.into(),
        reason: reason.into(),
    }
}

/// An unsigned number with an optional K, M, G, T, P or E suffix, as my_getopt.
pub fn parse_number(def: &OptDef, s: &str) -> Result<u64, UsageError> {
    let s = s.trim();
    let invalid = |def: &OptDef, value: &str, reason: &str| UsageError::BadNumber {
        option: def.display(),
        value: value.into(),
        reason: reason.into(),
    };
    let (digits, shift) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                'P' => 50,
                'E' => 60,
                _ => return Err(invalid(def, s, "legal suffixes are K, M, G, T, P, E")),
            };
            (&s[..i], shift)
        }
        _ => (s, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(def, s, "expected an unsigned number"));
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| invalid(def, s, "number too large"))
}

/// Clamps to `[min, max]` and rounds down to a multiple of `block`, warning when adjusted.
fn limit(def: &OptDef, n: u64, min: u64, max: u64, block: u64, warnings: &mut Vec<String>) -> u64 {
    let adjusted = (n.clamp(min, max) / block) * block;
    if adjusted != n {
        warnings.push(format!(
            "option '{}': value {n} adjusted to {adjusted}",
            def.display()
        ));
    }
    adjusted
}

/// `--master-data[=#]`, `--dump-slave[=#]`: bare is 1, values above 2 become 2.
fn coordinate_level(
    def: &OptDef,
    value: &Value,
    warnings: &mut Vec<String>,
) -> Result<u8, UsageError> {
    Ok(match value {
        Value::Absent | Value::On => 1,
        Value::Off => 0,
        Value::Text(s) => {
            let n = parse_number(def, s)?;
            if n > 2 {
                warnings.push(format!(
                    "option '{}': value {n} adjusted to 2",
                    def.display()
                ));
            }
            n.min(2) as u8
        }
    })
}

fn coordinate_style(level: u8) -> Option<CoordinateStyle> {
    match level {
        0 => None,
        1 => Some(CoordinateStyle::Statement),
        _ => Some(CoordinateStyle::Commented),
    }
}

/// `--fields-*`/`--lines-terminated-by` values as SQL string literals would read them:
/// `\t \n \r \0 \b \Z \\` and `\x` = `x`, or a `0x...` hex constant.
pub fn decode_field_string(s: &str) -> Vec<u8> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))
        && !hex.is_empty()
        && hex.len() % 2 == 0
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("checked hex digits"))
            .collect();
    }
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            None => out.push(b'\\'),
            Some(b'0') => out.push(0),
            Some(b'b') => out.push(8),
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b't') => out.push(b'\t'),
            Some(b'Z') => out.push(26),
            Some(other) => out.push(other),
        }
    }
    out
}

/// Connection options, shared by every rdump tool.
#[derive(Debug, Clone, Default)]
pub struct ConnectionBuilder {
    conn: ConnectionOptions,
}

impl ConnectionBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one connection option; `Ok(false)` when `def` is not a connection option.
    ///
    /// As MariaDB's clients (10.6.1 and later): a port given on the command line means
    /// TCP and a socket given there means the socket, whichever comes last, also against
    /// `--protocol` (the last of the three wins); in option files they set only the port
    /// or the path. `conn` then connects over the socket only when the host is `localhost`
    /// (or not given) and the protocol is not TCP.
    pub fn apply(
        &mut self,
        def: &OptDef,
        value: &Value,
        origin: &Origin,
    ) -> Result<bool, UsageError> {
        let c = &mut self.conn;
        let path = |v: &Value| text(v).map(PathBuf::from);
        let command_line = *origin == Origin::CommandLine;
        match def.id {
            Opt::Host => c.host = text(value).map(String::from),
            Opt::User => c.user = text(value).map(String::from),
            Opt::Socket => {
                c.socket = path(value);
                if command_line {
                    c.protocol = Some(Protocol::Socket);
                }
            }
            Opt::InitCommand => c.init_command = text(value).map(String::from),
            Opt::Compress => c.compress = on(value),
            Opt::Password => {
                c.password = match value {
                    Value::Absent | Value::On => Password::Prompt,
                    // my_getopt: --skip-password is an empty password.
                    Value::Off => Password::Given(Secret::new("")),
                    Value::Text(s) => Password::Given(Secret::new(s.as_str())),
                }
            }
            Opt::Port => {
                c.port = match text(value) {
                    None => 0,
                    Some(s) => u16::try_from(parse_number(def, s)?)
                        .map_err(|_| invalid(def, s, "a port is at most 65535"))?,
                };
                if command_line {
                    c.protocol = Some(Protocol::Tcp);
                }
            }
            Opt::Protocol => {
                c.protocol = match text(value).map(str::to_ascii_lowercase).as_deref() {
                    None => None,
                    Some("tcp") => Some(Protocol::Tcp),
                    Some("socket") => Some(Protocol::Socket),
                    Some(p @ ("pipe" | "memory")) => {
                        return Err(UsageError::Unsupported {
                            option: format!("--protocol={p}"),
                            reason: "not supported on this platform".into(),
                        });
                    }
                    Some(_) => {
                        return Err(invalid(
                            def,
                            text(value).unwrap_or(""),
                            "expected tcp or socket",
                        ));
                    }
                }
            }
            Opt::DefaultCharacterSet => {
                c.character_set = text(value).unwrap_or("utf8mb4").to_string();
            }
            Opt::Ssl => {
                if !on(value) {
                    c.ssl.mode = SslMode::Disabled;
                } else if c.ssl.mode == SslMode::Disabled {
                    c.ssl.mode = SslMode::Preferred;
                }
            }
            Opt::SslMode => {
                c.ssl.mode = match text(value) {
                    None => SslMode::default(),
                    Some(s) => match s.to_ascii_uppercase().replace('-', "_").as_str() {
                        "DISABLED" => SslMode::Disabled,
                        "PREFERRED" => SslMode::Preferred,
                        "REQUIRED" => SslMode::Required,
                        "VERIFY_CA" => SslMode::VerifyCa,
                        "VERIFY_IDENTITY" => SslMode::VerifyIdentity,
                        _ => {
                            return Err(invalid(
                                def,
                                s,
                                "expected DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY",
                            ));
                        }
                    },
                }
            }
            Opt::SslCa | Opt::SslCert | Opt::SslKey => {
                let p = path(value);
                // "implies --ssl"
                if p.is_some() && c.ssl.mode == SslMode::Disabled {
                    c.ssl.mode = SslMode::Preferred;
                }
                match def.id {
                    Opt::SslCa => c.ssl.ca = p,
                    Opt::SslCert => c.ssl.cert = p,
                    _ => c.ssl.key = p,
                }
            }
            Opt::TlsVersion => {
                c.ssl.tls_versions = match text(value) {
                    None => None,
                    Some(list) => {
                        let mut versions = Vec::new();
                        for part in list.split(',').filter(|p| !p.trim().is_empty()) {
                            match TlsVersion::parse(part) {
                                Ok(Some(v)) if !versions.contains(&v) => versions.push(v),
                                Ok(_) => {}
                                Err(()) => {
                                    return Err(invalid(
                                        def,
                                        part,
                                        "expected TLSv1.2 or TLSv1.3 (comma-separated)",
                                    ));
                                }
                            }
                        }
                        if versions.is_empty() {
                            return Err(invalid(
                                def,
                                list,
                                "rdump's TLS speaks TLSv1.2 and TLSv1.3 only",
                            ));
                        }
                        Some(versions)
                    }
                }
            }
            Opt::SslCipher => {
                c.ssl.ciphers = text(value).map(|list| {
                    list.split(':')
                        .filter(|n| !n.trim().is_empty())
                        .map(iana_cipher_name)
                        .collect()
                });
                // "implies --ssl"
                if c.ssl.ciphers.is_some() && c.ssl.mode == SslMode::Disabled {
                    c.ssl.mode = SslMode::Preferred;
                }
            }
            Opt::SslVerifyServerCert => {
                if on(value) {
                    c.ssl.mode = SslMode::VerifyIdentity;
                } else if c.ssl.mode == SslMode::VerifyIdentity {
                    c.ssl.mode = SslMode::Preferred;
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The connection options; `MYSQL_PWD` is the password only if none was given.
    pub fn finish(self, env: &Env) -> ConnectionOptions {
        let mut conn = self.conn;
        if conn.password == Password::None
            && let Some(pwd) = &env.mysql_pwd
        {
            conn.password = Password::Given(Secret::new(pwd.as_str()));
        }
        conn
    }
}

/// Everything mysqldump's options set, before the rules between them are applied.
#[derive(Debug, Clone)]
pub struct DumpBuilder {
    conn: ConnectionBuilder,
    shape: Shape,
    selection: Selection,
    all_databases: bool,
    databases: bool,
    positionals: Vec<String>,
    lock_tables: bool,
    lock_all_tables: bool,
    single_transaction: bool,
    master_data: u8,
    dump_slave: u8,
    consistency: ConsistencyPlan,
    replace: bool,
    insert_ignore: bool,
    tab: Option<PathBuf>,
    result_file: Option<PathBuf>,
    dir: Option<PathBuf>,
    threads: Option<usize>,
    chunk_rows: Option<u64>,
    format: Option<DirFormat>,
    dir_consistency: Option<DirConsistency>,
    zstd: Option<i32>,
    progress: Progress,
    quiet: bool,
    fields_terminated_by: Option<Vec<u8>>,
    fields_enclosed_by: Option<Vec<u8>>,
    fields_optionally_enclosed_by: Option<Vec<u8>>,
    fields_escaped_by: Option<Vec<u8>>,
    lines_terminated_by: Option<Vec<u8>>,
    header: bool,
    dump_history: bool,
    as_of: Option<String>,
    /// `--comments` or `--skip-comments` was given: with `--xml` comments are off unless so.
    comments_given: bool,
    force: bool,
    verbose: bool,
    pub warnings: Vec<String>,
}

/// mysqldump's effective defaults: `net_buffer_length` and `max_allowed_packet` are rounded
/// to my_getopt's 1024-byte block size (1046528) and 24 MiB respectively.
pub const DEFAULT_NET_BUFFER_LENGTH: usize = ((1024 * 1024 - 1025) / 1024) * 1024;
pub const DEFAULT_MAX_ALLOWED_PACKET: usize = 24 * 1024 * 1024;
/// `--zstd` without a level (see where it is used for the measurement).
pub const DEFAULT_ZSTD_LEVEL: i32 = 1;

impl Default for DumpBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl DumpBuilder {
    pub fn new() -> Self {
        DumpBuilder {
            conn: ConnectionBuilder::new(),
            shape: Shape {
                net_buffer_length: DEFAULT_NET_BUFFER_LENGTH,
                max_allowed_packet: DEFAULT_MAX_ALLOWED_PACKET,
                ..Shape::default()
            },
            selection: Selection::default(),
            all_databases: false,
            databases: false,
            positionals: Vec::new(),
            lock_tables: true,
            lock_all_tables: false,
            single_transaction: false,
            master_data: 0,
            dump_slave: 0,
            consistency: ConsistencyPlan::default(),
            replace: false,
            insert_ignore: false,
            tab: None,
            result_file: None,
            dir: None,
            threads: None,
            chunk_rows: None,
            format: None,
            dir_consistency: None,
            zstd: None,
            progress: Progress::Auto,
            quiet: false,
            fields_terminated_by: None,
            fields_enclosed_by: None,
            fields_optionally_enclosed_by: None,
            fields_escaped_by: None,
            lines_terminated_by: None,
            header: false,
            dump_history: false,
            as_of: None,
            comments_given: false,
            force: false,
            verbose: false,
            warnings: Vec::new(),
        }
    }

    pub fn positional(&mut self, arg: String) {
        self.positionals.push(arg);
    }

    /// Applies one occurrence at its position; errors from option files name file and line.
    pub fn apply(&mut self, occ: &Occurrence) -> Result<Flow, UsageError> {
        self.apply_value(occ.def, &occ.value, &occ.origin)
            .map_err(|e| occ.origin.wrap(e))
    }

    fn apply_value(
        &mut self,
        def: &OptDef,
        value: &Value,
        origin: &Origin,
    ) -> Result<Flow, UsageError> {
        if self.conn.apply(def, value, origin)? {
            return Ok(Flow::Continue);
        }
        let b = on(value);
        let bytes = |v: &Value| text(v).map(decode_field_string);
        let s = &mut self.shape;
        let sel = &mut self.selection;
        match def.id {
            Opt::Help if b => return Ok(Flow::Help),
            Opt::Version if b => return Ok(Flow::Version),
            Opt::Help | Opt::Version | Opt::Ignored => {}
            Opt::Unsupported(reason) => {
                if *value != Value::Off {
                    return Err(UsageError::Unsupported {
                        option: def.display(),
                        reason: reason.into(),
                    });
                }
            }
            Opt::QuoteNames => {
                if !b {
                    self.warnings
                        .push("--skip-quote-names ignored: rdump always quotes names".into());
                }
            }
            // Selection.
            Opt::AllDatabases => self.all_databases = b,
            Opt::Databases => self.databases = b,
            Opt::Tables => {
                if b {
                    self.databases = false;
                }
            }
            Opt::IgnoreTable => match text(value) {
                None => sel.ignore_tables.clear(),
                Some(t) => match t.split_once('.') {
                    Some((db, table)) if !db.is_empty() && !table.is_empty() => {
                        sel.ignore_tables.push((db.to_string(), table.to_string()));
                    }
                    _ => return Err(invalid(def, t, "use --ignore-table=<database>.<table>")),
                },
            },
            Opt::IgnoreTableData => match text(value) {
                None => sel.ignore_table_data.clear(),
                Some(t) => match t.split_once('.') {
                    Some((db, table)) if !db.is_empty() && !table.is_empty() => {
                        sel.ignore_table_data
                            .push((db.to_string(), table.to_string()));
                    }
                    _ => {
                        return Err(invalid(
                            def,
                            t,
                            "use --ignore-table-data=<database>.<table>",
                        ));
                    }
                },
            },
            Opt::DumpHistory => self.dump_history = b,
            Opt::AsOf => self.as_of = text(value).map(String::from),
            Opt::IgnoreDatabase => match text(value) {
                None => sel.ignore_databases.clear(),
                Some(db) => sel.ignore_databases.push(db.to_string()),
            },
            Opt::Where => sel.where_clause = text(value).map(String::from),
            Opt::NoData => sel.no_data = b,
            Opt::NoCreateInfo => sel.no_create_info = b,
            Opt::NoCreateDb => sel.no_create_db = b,
            Opt::Routines => sel.routines = b,
            Opt::Events => sel.events = b,
            Opt::Triggers => sel.triggers = b,
            Opt::System => {
                sel.system_users = false;
                sel.system_plugins = false;
                sel.system_udfs = false;
                sel.system_servers = false;
                for part in text(value).unwrap_or("").split(',').map(str::trim) {
                    match part.to_ascii_lowercase().as_str() {
                        "" => {}
                        "users" => sel.system_users = true,
                        "plugins" => sel.system_plugins = true,
                        "udfs" => sel.system_udfs = true,
                        "servers" => sel.system_servers = true,
                        "all" => {
                            sel.system_users = true;
                            sel.system_plugins = true;
                            sel.system_udfs = true;
                            sel.system_servers = true;
                            self.warnings.push(
                                "--system=all: stats and timezones are not dumped by rdump \
                                 (dump those mysql tables by name); dumping users, plugins, \
                                 udfs and servers"
                                    .into(),
                            );
                        }
                        "stats" | "timezones" => {
                            return Err(UsageError::Unsupported {
                                option: format!("--system={part}"),
                                reason: format!(
                                    "rdump does not write --system={part}; dump the mysql tables \
                                     by name instead (e.g. `rdump mysql {}`)",
                                    if part.eq_ignore_ascii_case("stats") {
                                        "innodb_index_stats innodb_table_stats"
                                    } else {
                                        "time_zone time_zone_name time_zone_transition \
                                         time_zone_transition_type time_zone_leap_second"
                                    }
                                ),
                            });
                        }
                        _ => {
                            return Err(invalid(
                                def,
                                part,
                                "expected users, all, plugins, udfs, servers, stats or timezones",
                            ));
                        }
                    }
                }
            }
            // Shape.
            Opt::AddDropDatabase => s.add_drop_database = b,
            Opt::AddDropTable => s.add_drop_table = b,
            Opt::AddDropTrigger => s.add_drop_trigger = b,
            Opt::AddLocks => s.add_locks = b,
            Opt::DisableKeys => s.disable_keys = b,
            Opt::ExtendedInsert => s.extended_insert = b,
            Opt::CompleteInsert => s.complete_insert = b,
            Opt::InsertIgnore => self.insert_ignore = b,
            Opt::DelayedInsert => s.delayed_insert = b,
            Opt::Replace => self.replace = b,
            Opt::HexBlob => s.hex_blob = b,
            Opt::Comments => {
                s.comments = b;
                self.comments_given = true;
            }
            // As mariadb-dump's -X: what follows on the command line may turn them on again.
            Opt::Xml if b => {
                s.xml = true;
                s.extended_insert = false;
                s.add_drop_table = false;
                s.add_locks = false;
                s.disable_keys = false;
                s.no_autocommit = false;
                sel.no_create_db = false;
            }
            Opt::Xml => {}
            Opt::DumpDate => s.dump_date = b,
            Opt::TzUtc => s.tz_utc = b,
            Opt::OrderByPrimary => s.order_by_primary = b,
            Opt::Quick => s.quick = b,
            Opt::CreateOptions => s.create_options = b,
            Opt::Compatible => {
                s.compatible.clear();
                for mode in text(value).unwrap_or("").split(',').map(str::trim) {
                    match mode.to_ascii_lowercase().as_str() {
                        "" => {}
                        m @ ("no_key_options" | "no_table_options" | "no_field_options") => {
                            s.compatible.push(m.to_ascii_uppercase());
                        }
                        m @ ("ansi" | "mysql323" | "mysql40" | "postgresql" | "oracle"
                        | "mssql" | "db2" | "maxdb") => {
                            return Err(UsageError::Unsupported {
                                option: format!("--compatible={m}"),
                                reason: "its dump does not restore into MariaDB or MySQL as it \
                                         is; only no_key_options, no_table_options and \
                                         no_field_options are supported"
                                    .into(),
                            });
                        }
                        _ => return Err(invalid(def, mode, "Invalid mode to --compatible")),
                    }
                }
            }
            Opt::SetCharset => s.set_charset = b,
            Opt::NoSetNames => {
                if b {
                    s.set_charset = false;
                }
            }
            Opt::NoAutocommit => s.no_autocommit = b,
            Opt::FlushPrivileges => s.flush_privileges = b,
            Opt::Compact => {
                s.compact = b;
                if b {
                    s.add_drop_table = false;
                    s.add_locks = false;
                    s.comments = false;
                    s.disable_keys = false;
                    s.set_charset = false;
                }
            }
            Opt::OptGroup => {
                s.add_drop_table = b;
                s.add_locks = b;
                s.create_options = b;
                s.disable_keys = b;
                s.extended_insert = b;
                s.quick = b;
                s.set_charset = b;
                self.lock_tables = b;
            }
            Opt::NetBufferLength => {
                s.net_buffer_length = match text(value) {
                    None => DEFAULT_NET_BUFFER_LENGTH,
                    Some(v) => {
                        let n = parse_number(def, v)?;
                        limit(def, n, 4096, 16 * 1024 * 1024, 1024, &mut self.warnings) as usize
                    }
                }
            }
            Opt::MaxAllowedPacket => {
                s.max_allowed_packet = match text(value) {
                    None => DEFAULT_MAX_ALLOWED_PACKET,
                    Some(v) => {
                        let n = parse_number(def, v)?;
                        limit(
                            def,
                            n,
                            4096,
                            2 * 1024 * 1024 * 1024,
                            1024,
                            &mut self.warnings,
                        ) as usize
                    }
                }
            }
            // Consistency.
            Opt::SingleTransaction => self.single_transaction = b,
            Opt::LockTables => self.lock_tables = b,
            Opt::LockAllTables => self.lock_all_tables = b,
            Opt::FlushLogs => self.consistency.flush_logs = b,
            Opt::MasterData => self.master_data = coordinate_level(def, value, &mut self.warnings)?,
            Opt::DumpSlave => self.dump_slave = coordinate_level(def, value, &mut self.warnings)?,
            Opt::Gtid => self.consistency.gtid = b,
            Opt::SetGtidPurged => {
                self.consistency.set_gtid_purged = match text(value) {
                    None => GtidPurged::default(),
                    Some(v) => match v.to_ascii_uppercase().as_str() {
                        "OFF" => GtidPurged::Off,
                        "ON" => GtidPurged::On,
                        "AUTO" => GtidPurged::Auto,
                        "COMMENTED" => GtidPurged::Commented,
                        _ => return Err(invalid(def, v, "expected OFF, ON, AUTO or COMMENTED")),
                    },
                }
            }
            Opt::IncludeMasterHostPort => self.consistency.include_master_host_port = b,
            Opt::ApplySlaveStatements => self.consistency.apply_slave_statements = b,
            Opt::DeleteMasterLogs => self.consistency.delete_master_logs = b,
            // Output.
            Opt::ResultFile => self.result_file = text(value).map(PathBuf::from),
            Opt::Tab => self.tab = text(value).map(PathBuf::from),
            Opt::Dir => self.dir = text(value).map(PathBuf::from),
            Opt::Threads => {
                self.threads = match text(value) {
                    None => None,
                    Some(v) => Some(
                        limit(def, parse_number(def, v)?, 1, 256, 1, &mut self.warnings) as usize,
                    ),
                }
            }
            Opt::ChunkSize => {
                self.chunk_rows = match text(value) {
                    None => None,
                    Some(v) => Some(limit(
                        def,
                        parse_number(def, v)?,
                        1,
                        u64::MAX / 2,
                        1,
                        &mut self.warnings,
                    )),
                }
            }
            Opt::Format => {
                self.format = match text(value).map(str::to_ascii_lowercase).as_deref() {
                    None => None,
                    Some("sql") => Some(DirFormat::Sql),
                    Some("csv") => Some(DirFormat::Csv),
                    Some(v) => return Err(invalid(def, v, "expected sql or csv")),
                }
            }
            Opt::DirConsistency => {
                self.dir_consistency = match text(value).map(str::to_ascii_lowercase).as_deref() {
                    None => None,
                    Some("auto") => Some(DirConsistency::Auto),
                    Some("flush") => Some(DirConsistency::Flush),
                    Some("backup-lock") => Some(DirConsistency::BackupLock),
                    Some("lock") => Some(DirConsistency::Lock),
                    Some("snapshot-only") => Some(DirConsistency::SnapshotOnly),
                    Some("none") => Some(DirConsistency::None),
                    Some(v) => {
                        return Err(invalid(
                            def,
                            v,
                            "expected auto, flush, backup-lock, lock, snapshot-only or none",
                        ));
                    }
                }
            }
            Opt::Zstd => {
                self.zstd = match value {
                    Value::Off => None,
                    _ => match text(value) {
                        // Level 1 by measurement (benches/README.md, "zstd level"): on
                        // sysbench 4 x 250,000 rows as CSV, `--dir --threads 2` took 0.69 to
                        // 0.77 s of client CPU at level 1 against 2.81 to 2.92 s at level 3
                        // (uncompressed 0.24 s, the server 0.43 to 0.51 s in every case) and
                        // wrote 90.2 MB against 99.0 MB (mydumper -c: 95.9 MB); on the
                        // generated mixed table 44.6 MB against 46.8 MB. Where text repeats
                        // (Rust source code) level 3 is 28% smaller at about the same CPU:
                        // ask for it with --zstd=3.
                        None => Some(DEFAULT_ZSTD_LEVEL),
                        Some(v) => {
                            Some(
                                limit(def, parse_number(def, v)?, 1, 22, 1, &mut self.warnings)
                                    as i32,
                            )
                        }
                    },
                }
            }
            Opt::Progress => {
                self.progress = match text(value).map(str::to_ascii_lowercase).as_deref() {
                    None | Some("auto") => Progress::Auto,
                    Some("always") => Progress::Always,
                    Some("never") => Progress::Never,
                    Some(v) => return Err(invalid(def, v, "expected auto, always or never")),
                }
            }
            Opt::Quiet => self.quiet = b,
            Opt::FieldsTerminatedBy => self.fields_terminated_by = bytes(value),
            Opt::FieldsEnclosedBy => self.fields_enclosed_by = bytes(value),
            Opt::FieldsOptionallyEnclosedBy => self.fields_optionally_enclosed_by = bytes(value),
            Opt::FieldsEscapedBy => self.fields_escaped_by = bytes(value),
            Opt::LinesTerminatedBy => self.lines_terminated_by = bytes(value),
            Opt::Header => self.header = b,
            Opt::Force => self.force = b,
            Opt::Verbose => self.verbose = b,
            // Connection options were handled above.
            Opt::Host
            | Opt::Port
            | Opt::User
            | Opt::Password
            | Opt::Socket
            | Opt::Protocol
            | Opt::Ssl
            | Opt::SslMode
            | Opt::SslCa
            | Opt::SslCert
            | Opt::SslKey
            | Opt::SslVerifyServerCert
            | Opt::SslCipher
            | Opt::TlsVersion
            | Opt::Compress
            | Opt::DefaultCharacterSet
            | Opt::InitCommand => {
                unreachable!("connection options are applied by ConnectionBuilder")
            }
        }
        Ok(Flow::Continue)
    }

    /// mysqldump's rules between options, then the plan. Warnings are appended to `warnings`.
    pub fn finish(mut self, env: &Env, warnings: &mut Vec<String>) -> Result<Plan, UsageError> {
        if self.shape.xml {
            self.check_xml()?;
            if !self.comments_given {
                self.shape.comments = false;
            }
        }
        let output = self.output(warnings)?;
        let consistency = self.consistency_plan()?;

        if self.tab.is_some() && (self.databases || self.all_databases) {
            return Err(UsageError::Invalid(
                "--databases or --all-databases can't be used with --tab".into(),
            ));
        }
        let mut selection = self.selection;
        selection.history = match (self.dump_history, &self.as_of) {
            (true, Some(_)) => {
                return Err(UsageError::Invalid(
                    "--dump-history and --as-of can't be used together".into(),
                ));
            }
            (true, None) => History::All,
            (false, Some(ts)) => History::AsOf(ts.clone()),
            (false, None) => History::Current,
        };
        if selection.history != History::Current && self.dir.is_some() {
            return Err(UsageError::Invalid(
                "--dump-history and --as-of can't be used with --dir".into(),
            ));
        }
        let mut positionals = self.positionals;
        selection.scope = if self.all_databases {
            if !positionals.is_empty() {
                return Err(UsageError::Invalid(
                    "--all-databases does not take database or table names".into(),
                ));
            }
            Scope::AllDatabases
        } else if positionals.is_empty() {
            let system = selection.system_users
                || selection.system_plugins
                || selection.system_udfs
                || selection.system_servers;
            if !system {
                return Err(if self.databases {
                    UsageError::Invalid("--databases needs at least one database name".into())
                } else {
                    UsageError::NoDatabase
                });
            }
            // --system alone: accounts (plugins, ...) only, no database.
            Scope::Databases(Vec::new())
        } else if self.databases {
            Scope::Databases(positionals)
        } else {
            let db = positionals.remove(0);
            Scope::Database {
                db,
                tables: positionals,
            }
        };

        let mut shape = self.shape;
        shape.insert_mode = if self.replace {
            InsertMode::Replace
        } else if self.insert_ignore {
            InsertMode::InsertIgnore
        } else {
            InsertMode::Insert
        };

        Ok(Plan {
            connection: self.conn.finish(env),
            selection,
            shape,
            consistency,
            output,
            force: self.force,
            verbose: self.verbose,
            zstd: self.zstd,
            progress: self.progress,
            quiet: self.quiet,
            stream: StreamOptions {
                threads: self.threads.unwrap_or(crate::plan::DEFAULT_STREAM_THREADS),
                threads_given: self.threads.is_some(),
                chunk_rows: self.chunk_rows,
            },
        })
    }

    /// `--xml` with what it cannot go with: mariadb-dump's own refusals (`--tab`,
    /// `--dump-history`), and what rdump refuses because mariadb-dump would write SQL text
    /// into the XML document (coordinates, `--system`, `--flush-privileges`) or because it
    /// is not built for XML (`--dir`, `--as-of`).
    fn check_xml(&self) -> Result<(), UsageError> {
        let sel = &self.selection;
        let refused = [
            (self.tab.is_some(), "--tab", "mariadb-dump refuses it too"),
            (
                self.dump_history,
                "--dump-history",
                "mariadb-dump refuses it too",
            ),
            (
                self.dir.is_some(),
                "--dir",
                "a directory dump holds SQL or CSV chunk files; write the XML document to stdout or --result-file",
            ),
            (
                self.as_of.is_some(),
                "--as-of",
                "rdump reads system-versioned tables as of a time only for SQL dumps",
            ),
            (
                self.master_data > 0
                    || self.dump_slave > 0
                    || self.consistency.delete_master_logs
                    || self.consistency.apply_slave_statements,
                "--master-data, --dump-slave, --delete-master-logs and --apply-slave-statements",
                "mariadb-dump writes their SQL statements as plain text inside the XML document, which no XML reader can use",
            ),
            (
                sel.system_users || sel.system_plugins || sel.system_udfs || sel.system_servers,
                "--system",
                "mariadb-dump writes its SQL statements as plain text inside the XML document, which no XML reader can use",
            ),
            (
                self.shape.flush_privileges,
                "--flush-privileges",
                "mariadb-dump writes FLUSH PRIVILEGES as plain text inside the XML document, which no XML reader can use",
            ),
        ];
        match refused.iter().find(|(given, _, _)| *given) {
            Some((_, option, why)) => Err(UsageError::Invalid(format!(
                "--xml can't be used with {option}: {why}"
            ))),
            None => Ok(()),
        }
    }

    fn output(&self, warnings: &mut Vec<String>) -> Result<Output, UsageError> {
        let fields = [
            &self.fields_terminated_by,
            &self.fields_enclosed_by,
            &self.fields_optionally_enclosed_by,
            &self.fields_escaped_by,
            &self.lines_terminated_by,
        ];
        let dir_only = [
            (self.format.is_some(), "--format"),
            (self.dir_consistency.is_some(), "--consistency"),
        ];
        if self.header && self.tab.is_none() {
            return Err(UsageError::Invalid(
                "You must use option --tab with --header".into(),
            ));
        }
        if let Some(dir) = &self.dir {
            if dir.as_os_str().is_empty() {
                return Err(UsageError::Invalid(
                    "--dir needs a directory name (an empty one was given)".into(),
                ));
            }
            if self.tab.is_some() || self.result_file.is_some() {
                return Err(UsageError::Invalid(
                    "--dir can't be used with --tab or --result-file".into(),
                ));
            }
            if fields.iter().any(|f| f.is_some()) {
                return Err(UsageError::Invalid(
                    "--fields-... and --lines-terminated-by need --tab".into(),
                ));
            }
            return Ok(Output::Dir(DirOptions {
                dir: dir.clone(),
                threads: self.threads.unwrap_or(4),
                chunk_rows: self.chunk_rows.unwrap_or(100_000),
                format: self.format.unwrap_or_default(),
                consistency: self.dir_consistency.unwrap_or_default(),
            }));
        }
        if let Some((_, name)) = dir_only.iter().find(|(given, _)| *given) {
            return Err(UsageError::Invalid(format!("{name} needs --dir")));
        }
        let Some(dir) = &self.tab else {
            if fields.iter().any(|f| f.is_some()) {
                return Err(UsageError::Invalid(
                    "--fields-... and --lines-terminated-by need --tab".into(),
                ));
            }
            return Ok(match &self.result_file {
                Some(f) => Output::ResultFile(f.clone()),
                None => Output::Stdout,
            });
        };
        if self.fields_enclosed_by.is_some() && self.fields_optionally_enclosed_by.is_some() {
            return Err(UsageError::Invalid(
                "--fields-enclosed-by and --fields-optionally-enclosed-by can't be used together"
                    .into(),
            ));
        }
        if self.result_file.is_some() {
            warnings.push("--result-file is ignored with --tab".into());
        }
        let mut format = TabFormat::default();
        if let Some(v) = &self.fields_terminated_by {
            format.fields_terminated_by = v.clone();
        }
        if let Some(v) = &self.fields_enclosed_by {
            format.fields_enclosed_by = v.clone();
        }
        if let Some(v) = &self.fields_optionally_enclosed_by {
            format.fields_enclosed_by = v.clone();
            format.optionally_enclosed = true;
        }
        if let Some(v) = &self.fields_escaped_by {
            format.fields_escaped_by = v.clone();
        }
        if let Some(v) = &self.lines_terminated_by {
            format.lines_terminated_by = v.clone();
        }
        format.header = self.header;
        Ok(Output::Tab {
            dir: dir.clone(),
            format,
        })
    }

    /// mysqldump's get_options(), in its order.
    fn consistency_plan(&self) -> Result<ConsistencyPlan, UsageError> {
        let single_transaction = self.single_transaction;
        let mut lock_all_tables = self.lock_all_tables;
        let mut lock_tables = self.lock_tables;
        let mut master_data = self.master_data;
        let mut dump_slave = self.dump_slave;
        let mut flush_logs = self.consistency.flush_logs;
        if self.consistency.delete_master_logs {
            if self.dir.is_some() {
                return Err(UsageError::Invalid(
                    "--delete-master-logs can't be used with --dir".into(),
                ));
            }
            // mariadb-dump: flush the logs, record the position, purge up to it.
            flush_logs = true;
            if master_data == 0 {
                master_data = 2;
            }
        }
        if dump_slave > 0 {
            lock_all_tables = !single_transaction;
            master_data = 0;
        }
        if single_transaction && lock_all_tables {
            return Err(UsageError::Invalid(
                "--single-transaction and --lock-all-tables are mutually exclusive".into(),
            ));
        }
        if master_data > 0 {
            lock_all_tables = !single_transaction;
            dump_slave = 0;
        }
        if single_transaction || lock_all_tables {
            lock_tables = false;
        }
        let mode = if single_transaction {
            Consistency::SingleTransaction
        } else if lock_all_tables {
            Consistency::LockAllTables
        } else if lock_tables {
            Consistency::LockTables
        } else {
            Consistency::None
        };
        Ok(ConsistencyPlan {
            mode,
            master_data: coordinate_style(master_data),
            dump_slave: coordinate_style(dump_slave),
            flush_logs,
            ..self.consistency.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::parse_with_warnings;
    use crate::plan::Command;
    use std::ffi::OsString;

    fn try_plan(args: &[&str]) -> Result<Plan, UsageError> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        match parse_with_warnings(&args, &Env::default(), &["client", "mysqldump"])?.0 {
            Command::Dump(plan) => Ok(*plan),
            other => panic!("expected a dump, got {other:?}"),
        }
    }

    fn plan(args: &[&str]) -> Plan {
        try_plan(args).unwrap()
    }

    fn error(args: &[&str]) -> String {
        try_plan(args).unwrap_err().to_string()
    }

    fn opt_group(s: &Shape) -> [bool; 7] {
        [
            s.add_drop_table,
            s.add_locks,
            s.create_options,
            s.disable_keys,
            s.extended_insert,
            s.quick,
            s.set_charset,
        ]
    }

    #[test]
    fn defaults_are_mysqldumps_with_opt_on() {
        let p = plan(&["db"]);
        assert_eq!(opt_group(&p.shape), [true; 7]);
        assert_eq!(p.consistency.mode, Consistency::LockTables);
        assert!(p.shape.comments && p.shape.dump_date && p.shape.tz_utc && !p.shape.compact);
        assert!(p.selection.triggers && !p.selection.routines && !p.selection.events);
        assert_eq!(p.output, Output::Stdout);
        assert_eq!(p.connection.password, Password::None);
    }

    #[test]
    fn default_net_buffer_length_and_max_allowed_packet_match_mariadb_dump() {
        let p = plan(&["db"]);
        assert_eq!(p.shape.net_buffer_length, 1_046_528);
        assert_eq!(p.shape.max_allowed_packet, 25_165_824);
    }

    #[test]
    fn skip_opt_turns_the_whole_opt_group_and_lock_tables_off() {
        let p = plan(&["--skip-opt", "db"]);
        assert_eq!(opt_group(&p.shape), [false; 7]);
        assert_eq!(p.consistency.mode, Consistency::None);
    }

    #[test]
    fn without_create_options_definitions_are_read_without_table_key_and_field_options() {
        assert_eq!(plan(&["db"]).shape.reading_sql_mode(), "");
        let all = "NO_KEY_OPTIONS,NO_TABLE_OPTIONS,NO_FIELD_OPTIONS";
        assert_eq!(plan(&["--skip-opt", "db"]).shape.reading_sql_mode(), all);
        assert_eq!(
            plan(&["--skip-create-options", "db"])
                .shape
                .reading_sql_mode(),
            all
        );
        assert_eq!(
            plan(&["--compatible=No_Table_Options", "db"])
                .shape
                .reading_sql_mode(),
            "NO_TABLE_OPTIONS"
        );
        assert!(error(&["--compatible=ansi", "db"]).contains("not supported"));
        assert!(error(&["--compatible=mysql80", "db"]).contains("--compatible"));
    }

    #[test]
    fn options_after_skip_opt_override_it() {
        let p = plan(&["--skip-opt", "--add-drop-table", "db"]);
        assert!(p.shape.add_drop_table);
        assert!(!p.shape.extended_insert);
    }

    #[test]
    fn skip_opt_after_an_option_overrides_it() {
        let p = plan(&["--add-drop-table", "--skip-opt", "db"]);
        assert!(!p.shape.add_drop_table);
    }

    #[test]
    fn opt_after_skip_opt_turns_the_group_back_on() {
        let p = plan(&["--skip-opt", "--opt", "db"]);
        assert_eq!(opt_group(&p.shape), [true; 7]);
        assert_eq!(p.consistency.mode, Consistency::LockTables);
    }

    #[test]
    fn compact_turns_off_drop_table_locks_comments_keys_and_charset() {
        let p = plan(&["--compact", "db"]);
        assert!(p.shape.compact);
        assert!(!p.shape.add_drop_table && !p.shape.add_locks && !p.shape.comments);
        assert!(!p.shape.disable_keys && !p.shape.set_charset);
        // Not part of --compact:
        assert!(p.shape.extended_insert && p.shape.create_options && p.shape.quick);
        assert_eq!(p.consistency.mode, Consistency::LockTables);
    }

    #[test]
    fn options_after_compact_override_it() {
        let p = plan(&["--compact", "--add-drop-table", "--comments", "db"]);
        assert!(p.shape.compact && p.shape.add_drop_table && p.shape.comments);
    }

    #[test]
    fn opt_after_compact_restores_the_opt_group_but_not_comments() {
        let p = plan(&["--compact", "--opt", "db"]);
        assert_eq!(opt_group(&p.shape), [true; 7]);
        assert!(!p.shape.comments && p.shape.compact);
    }

    #[test]
    fn no_set_names_is_skip_set_charset() {
        assert!(!plan(&["-N", "db"]).shape.set_charset);
    }

    #[test]
    fn single_transaction_turns_lock_tables_off() {
        let p = plan(&["--single-transaction", "db"]);
        assert_eq!(p.consistency.mode, Consistency::SingleTransaction);
    }

    #[test]
    fn lock_all_tables_turns_lock_tables_off() {
        assert_eq!(
            plan(&["-x", "db"]).consistency.mode,
            Consistency::LockAllTables
        );
    }

    #[test]
    fn single_transaction_with_lock_all_tables_is_an_error() {
        assert_eq!(
            error(&["--single-transaction", "--lock-all-tables", "db"]),
            "--single-transaction and --lock-all-tables are mutually exclusive"
        );
    }

    #[test]
    fn skip_lock_tables_alone_means_no_locking() {
        assert_eq!(
            plan(&["--skip-lock-tables", "db"]).consistency.mode,
            Consistency::None
        );
    }

    #[test]
    fn master_data_implies_lock_all_tables() {
        let p = plan(&["--master-data", "db"]);
        assert_eq!(p.consistency.mode, Consistency::LockAllTables);
        assert_eq!(p.consistency.master_data, Some(CoordinateStyle::Statement));
    }

    #[test]
    fn master_data_with_single_transaction_keeps_the_single_transaction() {
        let p = plan(&["--single-transaction", "--master-data=2", "db"]);
        assert_eq!(p.consistency.mode, Consistency::SingleTransaction);
        assert_eq!(p.consistency.master_data, Some(CoordinateStyle::Commented));
    }

    #[test]
    fn master_data_levels_zero_one_two_and_above_two_adjusted() {
        assert_eq!(
            plan(&["--master-data=0", "db"]).consistency.master_data,
            None
        );
        assert_eq!(
            plan(&["--master-data=1", "db"]).consistency.master_data,
            Some(CoordinateStyle::Statement)
        );
        assert_eq!(
            plan(&["--master-data=3", "db"]).consistency.master_data,
            Some(CoordinateStyle::Commented)
        );
        assert!(error(&["--master-data=x", "db"]).contains("--master-data"));
    }

    #[test]
    fn source_data_is_an_alias_of_master_data() {
        assert_eq!(
            plan(&["--source-data=2", "db"]).consistency.master_data,
            Some(CoordinateStyle::Commented)
        );
    }

    #[test]
    fn master_data_zero_leaves_locking_alone() {
        assert_eq!(
            plan(&["--master-data=0", "db"]).consistency.mode,
            Consistency::LockTables
        );
    }

    #[test]
    fn dump_slave_implies_lock_all_tables_unless_single_transaction() {
        let p = plan(&["--dump-slave", "db"]);
        assert_eq!(p.consistency.mode, Consistency::LockAllTables);
        assert_eq!(p.consistency.dump_slave, Some(CoordinateStyle::Statement));
        let p = plan(&["--dump-replica=2", "--single-transaction", "db"]);
        assert_eq!(p.consistency.mode, Consistency::SingleTransaction);
        assert_eq!(p.consistency.dump_slave, Some(CoordinateStyle::Commented));
    }

    #[test]
    fn dump_slave_wins_over_master_data_as_in_mysqldump() {
        let p = plan(&["--master-data", "--dump-slave", "db"]);
        assert_eq!(
            (p.consistency.master_data, p.consistency.dump_slave),
            (None, Some(CoordinateStyle::Statement))
        );
    }

    #[test]
    fn dump_slave_with_lock_all_tables_and_single_transaction_is_not_an_error() {
        // mysqldump recomputes lock-all-tables from --dump-slave before checking the conflict.
        let p = plan(&["--dump-slave", "-x", "--single-transaction", "db"]);
        assert_eq!(p.consistency.mode, Consistency::SingleTransaction);
    }

    #[test]
    fn consistency_side_flags_are_recorded() {
        let p = plan(&[
            "-F",
            "--gtid",
            "--set-gtid-purged=commented",
            "--include-master-host-port",
            "--apply-replica-statements",
            "db",
        ]);
        let c = p.consistency;
        assert!(c.flush_logs && c.gtid && c.include_master_host_port && c.apply_slave_statements);
        assert_eq!(c.set_gtid_purged, GtidPurged::Commented);
        assert!(error(&["--set-gtid-purged=maybe", "db"]).contains("--set-gtid-purged"));
    }

    #[test]
    fn one_positional_is_a_database_and_more_are_its_tables() {
        assert_eq!(
            plan(&["db", "t1", "t2"]).selection.scope,
            Scope::Database {
                db: "db".into(),
                tables: vec!["t1".into(), "t2".into()]
            }
        );
    }

    #[test]
    fn databases_makes_every_positional_a_database() {
        assert_eq!(
            plan(&["-B", "a", "b"]).selection.scope,
            Scope::Databases(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn tables_overrides_databases() {
        assert_eq!(
            plan(&["-B", "--tables", "a", "t"]).selection.scope,
            Scope::Database {
                db: "a".into(),
                tables: vec!["t".into()]
            }
        );
    }

    #[test]
    fn all_databases_selects_everything() {
        assert_eq!(plan(&["-A"]).selection.scope, Scope::AllDatabases);
    }

    #[test]
    fn all_databases_with_names_is_an_error() {
        assert!(error(&["-A", "db"]).contains("--all-databases"));
    }

    #[test]
    fn databases_without_names_is_an_error() {
        assert!(error(&["-B"]).contains("--databases"));
    }

    #[test]
    fn no_database_at_all_is_an_error_with_usage() {
        let e = error(&["-v"]);
        assert!(
            e.contains("no database given") && e.contains("--all-databases"),
            "{e}"
        );
    }

    #[test]
    fn system_users_alone_needs_no_database() {
        let p = plan(&["--system=users"]);
        assert!(p.selection.system_users);
        assert_eq!(p.selection.scope, Scope::Databases(vec![]));
    }

    #[test]
    fn system_accepts_users_plugins_udfs_servers_and_all_and_refuses_stats_timezones() {
        let all = plan(&["--system=ALL", "-A"]).selection;
        assert!(all.system_users && all.system_plugins && all.system_udfs && all.system_servers);
        assert!(plan(&["--system=users,", "-A"]).selection.system_users);
        let some = plan(&["--system=plugins,servers"]).selection;
        assert!(some.system_plugins && some.system_servers && !some.system_users);
        for part in ["stats", "timezones"] {
            let e = error(&[&format!("--system=users,{part}"), "-A"]);
            assert!(e.contains("does not write"), "{e}");
        }
        assert!(error(&["--system=bogus", "-A"]).contains("bogus"));
    }

    #[test]
    fn ignore_table_is_repeatable_and_needs_a_dot() {
        let p = plan(&["--ignore-table=a.t1", "--ignore-table=b.t.2", "-A"]);
        assert_eq!(
            p.selection.ignore_tables,
            vec![("a".into(), "t1".into()), ("b".into(), "t.2".into())]
        );
        assert!(error(&["--ignore-table=t1", "-A"]).contains("--ignore-table"));
    }

    #[test]
    fn ignore_database_is_repeatable() {
        let p = plan(&["--ignore-database=a", "--ignore-database=b", "-A"]);
        assert_eq!(
            p.selection.ignore_databases,
            vec!["a".to_string(), "b".to_string()]
        );
    }

    #[test]
    fn selection_flags() {
        let p = plan(&[
            "-d",
            "-t",
            "-n",
            "-R",
            "-E",
            "--skip-triggers",
            "-w",
            "id>3",
            "db",
        ]);
        let s = p.selection;
        assert!(
            s.no_data
                && s.no_create_info
                && s.no_create_db
                && s.routines
                && s.events
                && !s.triggers
        );
        assert_eq!(s.where_clause.as_deref(), Some("id>3"));
    }

    #[test]
    fn replace_wins_over_insert_ignore() {
        assert_eq!(
            plan(&["--replace", "--insert-ignore", "db"])
                .shape
                .insert_mode,
            InsertMode::Replace
        );
        assert_eq!(
            plan(&["--insert-ignore", "db"]).shape.insert_mode,
            InsertMode::InsertIgnore
        );
    }

    #[test]
    fn shape_flags() {
        let p = plan(&[
            "--add-drop-database",
            "--add-drop-trigger",
            "-c",
            "--hex-blob",
            "--skip-dump-date",
            "--skip-tz-utc",
            "--order-by-primary",
            "--no-autocommit",
            "--flush-privileges",
            "--skip-extended-insert",
            "-Q",
            "--allow-keywords",
            "db",
        ]);
        let s = p.shape;
        assert!(s.add_drop_database && s.add_drop_trigger && s.complete_insert && s.hex_blob);
        assert!(
            !s.dump_date
                && !s.tz_utc
                && s.order_by_primary
                && s.no_autocommit
                && s.flush_privileges
        );
        assert!(!s.extended_insert);
    }

    #[test]
    fn net_buffer_length_takes_suffixes_and_is_limited_to_4k_16m() {
        assert_eq!(
            plan(&["--net-buffer-length=64K", "db"])
                .shape
                .net_buffer_length,
            65536
        );
        assert_eq!(
            plan(&["--net-buffer-length=1", "db"])
                .shape
                .net_buffer_length,
            4096
        );
        assert_eq!(
            plan(&["--net-buffer-length=1G", "db"])
                .shape
                .net_buffer_length,
            16 << 20
        );
        assert!(error(&["--net-buffer-length=12Q", "db"]).contains("--net-buffer-length"));
    }

    #[test]
    fn max_allowed_packet_takes_suffixes() {
        assert_eq!(
            plan(&["--max-allowed-packet=1G", "db"])
                .shape
                .max_allowed_packet,
            1 << 30
        );
        assert_eq!(
            plan(&["--max-allowed-packet=512m", "db"])
                .shape
                .max_allowed_packet,
            512 << 20
        );
    }

    #[test]
    fn result_file_and_tab_select_the_output() {
        assert_eq!(
            plan(&["-r", "/o.sql", "db"]).output,
            Output::ResultFile("/o.sql".into())
        );
        assert_eq!(
            plan(&["-T", "/dir", "db"]).output,
            Output::Tab {
                dir: "/dir".into(),
                format: TabFormat::default()
            }
        );
    }

    #[test]
    fn an_empty_dir_name_is_refused() {
        let e = error(&["--dir=", "db"]);
        assert!(e.contains("--dir needs a directory name"), "{e}");
    }

    #[test]
    fn tab_field_options_process_escapes() {
        let p = plan(&[
            "--tab=/d",
            "--fields-terminated-by=,",
            r"--fields-optionally-enclosed-by=\'",
            r"--fields-escaped-by=\\",
            r"--lines-terminated-by=\r\n",
            "db",
        ]);
        let Output::Tab { format, .. } = p.output else {
            panic!("not tab")
        };
        assert_eq!(format.fields_terminated_by, b",");
        assert_eq!(format.fields_enclosed_by, b"'");
        assert!(format.optionally_enclosed);
        assert_eq!(format.fields_escaped_by, b"\\");
        assert_eq!(format.lines_terminated_by, b"\r\n");
    }

    #[test]
    fn field_strings_decode_like_sql_literals() {
        assert_eq!(decode_field_string(r"\t"), b"\t");
        assert_eq!(decode_field_string(r"\0"), b"\0");
        assert_eq!(decode_field_string(r"a\\b"), b"a\\b");
        assert_eq!(decode_field_string("\\"), b"\\");
        assert_eq!(decode_field_string("0x2C3B"), b",;");
        assert_eq!(decode_field_string("0xZZ"), b"0xZZ");
    }

    #[test]
    fn field_options_without_tab_are_an_error() {
        assert!(error(&["--fields-terminated-by=,", "db"]).contains("--tab"));
    }

    #[test]
    fn enclosed_and_optionally_enclosed_together_are_an_error() {
        assert!(
            error(&[
                "-T/d",
                "--fields-enclosed-by=a",
                "--fields-optionally-enclosed-by=b",
                "db"
            ])
            .contains("enclosed")
        );
    }

    #[test]
    fn tab_with_databases_or_all_databases_is_an_error() {
        assert!(error(&["--tab=/d", "-A"]).contains("--tab"));
        assert!(error(&["--tab=/d", "-B", "db"]).contains("--tab"));
    }

    #[test]
    fn where_with_tab_is_fine() {
        assert_eq!(
            plan(&["--tab=/d", "--where=1", "db"])
                .selection
                .where_clause
                .as_deref(),
            Some("1")
        );
    }

    #[test]
    fn force_and_verbose() {
        let p = plan(&["-f", "-v", "db"]);
        assert!(p.force && p.verbose);
    }

    #[test]
    fn connection_options() {
        let p = plan(&[
            "-h",
            "db.example",
            "-P",
            "3307",
            "-u",
            "bob",
            "-S",
            "/s.sock",
            "--protocol=TCP",
            "-C",
            "--default-character-set=latin1",
            "--init-command=SET x=1",
            "db",
        ]);
        let c = p.connection;
        assert_eq!(c.host.as_deref(), Some("db.example"));
        assert_eq!((c.port, c.user.as_deref()), (3307, Some("bob")));
        assert_eq!(c.socket, Some("/s.sock".into()));
        assert_eq!(c.protocol, Some(Protocol::Tcp));
        assert!(c.compress);
        assert_eq!(c.character_set, "latin1");
        assert_eq!(c.init_command.as_deref(), Some("SET x=1"));
    }

    #[test]
    fn port_zero_or_absent_is_zero_and_must_fit_in_16_bits() {
        assert_eq!(plan(&["db"]).connection.port, 0);
        assert_eq!(plan(&["-P0", "db"]).connection.port, 0);
        assert_eq!(plan(&["-P1", "--skip-port", "db"]).connection.port, 0);
        assert!(error(&["-P70000", "db"]).contains("--port"));
        assert!(error(&["--port", "db"]).contains("--port"));
    }

    #[test]
    fn protocol_pipe_and_memory_are_not_supported_here() {
        assert!(error(&["--protocol=pipe", "db"]).contains("not supported on this platform"));
        assert!(error(&["--protocol=memory", "db"]).contains("not supported on this platform"));
        assert!(error(&["--protocol=carrier-pigeon", "db"]).contains("--protocol"));
    }

    #[test]
    fn ssl_options_map_to_ssl_mode() {
        assert_eq!(plan(&["db"]).connection.ssl.mode, SslMode::Preferred);
        assert_eq!(
            plan(&["--skip-ssl", "db"]).connection.ssl.mode,
            SslMode::Disabled
        );
        assert_eq!(
            plan(&["--ssl-mode=verify_ca", "db"]).connection.ssl.mode,
            SslMode::VerifyCa
        );
        assert_eq!(
            plan(&["--ssl-mode=REQUIRED", "db"]).connection.ssl.mode,
            SslMode::Required
        );
        assert_eq!(
            plan(&["--ssl-verify-server-cert", "db"])
                .connection
                .ssl
                .mode,
            SslMode::VerifyIdentity
        );
        assert!(error(&["--ssl-mode=sometimes", "db"]).contains("--ssl-mode"));
    }

    #[test]
    fn ssl_files_imply_ssl_even_after_skip_ssl() {
        let p = plan(&[
            "--skip-ssl",
            "--ssl-ca=/ca.pem",
            "--ssl-cert=/c.pem",
            "--ssl-key=/k.pem",
            "db",
        ]);
        assert_eq!(p.connection.ssl.mode, SslMode::Preferred);
        assert_eq!(p.connection.ssl.ca, Some("/ca.pem".into()));
        assert_eq!(p.connection.ssl.cert, Some("/c.pem".into()));
        assert_eq!(p.connection.ssl.key, Some("/k.pem".into()));
    }

    #[test]
    fn ignored_compatibility_options_are_accepted() {
        plan(&[
            "--column-statistics=0",
            "--network-timeout",
            "-y",
            "--max-statement-time=5",
            "--log-error=/tmp/x",
            "--skip-column-statistics",
            "db",
        ]);
    }

    #[test]
    fn xml_turns_sql_only_shapes_off_and_refuses_what_it_cannot_express() {
        let p = plan(&["--xml", "db"]);
        assert!(p.shape.xml && !p.shape.extended_insert && !p.shape.add_drop_table);
        assert!(!p.shape.add_locks && !p.shape.disable_keys && !p.shape.comments);
        assert!(plan(&["-X", "--comments", "db"]).shape.comments);
        assert!(plan(&["--comments", "-X", "db"]).shape.comments);
        // As mariadb-dump: an option after -X turns its part on again.
        assert!(
            plan(&["-X", "--extended-insert", "db"])
                .shape
                .extended_insert
        );
        assert!(!plan(&["--skip-xml", "db"]).shape.xml);
        for other in [
            "--tab=/d",
            "--dir=/d",
            "--dump-history",
            "--as-of=2020-01-01",
            "--master-data",
            "--dump-slave=2",
            "--system=users",
            "--flush-privileges",
        ] {
            let e = error(&["--xml", other, "db"]);
            assert!(e.starts_with("--xml can't be used with"), "{other}: {e}");
        }
    }

    #[test]
    fn delete_master_logs_flushes_logs_and_records_the_position_commented() {
        let c = plan(&["--delete-master-logs", "db"]).consistency;
        assert!(c.delete_master_logs && c.flush_logs);
        assert_eq!(c.master_data, Some(CoordinateStyle::Commented));
        assert_eq!(c.mode, Consistency::LockAllTables);
        let c = plan(&["--master-data=1", "--delete-master-logs", "db"]).consistency;
        assert_eq!(c.master_data, Some(CoordinateStyle::Statement));
        assert!(error(&["--delete-master-logs", "--dir=/d", "db"]).contains("--dir"));
    }

    #[test]
    fn help_and_version_stop_at_their_position() {
        let run = |a: &[&str]| {
            let args: Vec<OsString> = a.iter().map(OsString::from).collect();
            parse_with_warnings(&args, &Env::default(), &["client"]).map(|r| r.0)
        };
        assert_eq!(run(&["--help", "--frobnicate"]).unwrap(), Command::Help);
        assert_eq!(run(&["-?"]).unwrap(), Command::Help);
        assert_eq!(run(&["-V"]).unwrap(), Command::Version);
        assert!(run(&["--frobnicate", "--help"]).is_err());
    }
}
