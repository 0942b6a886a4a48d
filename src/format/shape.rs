//! How a dump's statements are shaped: the mysqldump options that change the text written
//! (DROP statements, locks, extended INSERTs and their size, hex blobs, comments, time zone,
//! how coordinates and GTID state are written), not what is dumped.
//!
//! Plain data, resolved by `options` into the `Plan`, read by `encode` and `script`. Not for:
//! choosing objects or consistency (see `plan`).

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InsertMode {
    #[default]
    Insert,
    /// `--insert-ignore`.
    InsertIgnore,
    /// `--replace`.
    Replace,
}

/// The shape of the statements written. Defaults are mysqldump's with `--opt` (its default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub add_drop_database: bool,
    pub add_drop_table: bool,
    pub add_drop_trigger: bool,
    pub add_locks: bool,
    pub disable_keys: bool,
    pub extended_insert: bool,
    pub complete_insert: bool,
    pub insert_mode: InsertMode,
    /// `--delayed-insert`: INSERT DELAYED for the tables whose engine takes it (MyISAM,
    /// MEMORY, ARCHIVE), in the single stream only.
    pub delayed_insert: bool,
    pub hex_blob: bool,
    /// `--create-options`: keep table options (ENGINE, AUTO_INCREMENT, ...) in CREATE TABLE.
    /// Off, definitions are read as mariadb-dump reads them then: under the sql_mode
    /// `NO_KEY_OPTIONS,NO_TABLE_OPTIONS,NO_FIELD_OPTIONS` (see [`Shape::reading_sql_mode`]).
    pub create_options: bool,
    /// `--compatible=...`: the sql_mode names definitions are read under (upper case; only
    /// `NO_KEY_OPTIONS`, `NO_TABLE_OPTIONS`, `NO_FIELD_OPTIONS` are accepted).
    pub compatible: Vec<String>,
    /// `--set-charset`: write the SET NAMES / character_set_client save and restore lines.
    pub set_charset: bool,
    /// `--comments` (off with `--skip-comments` or `--compact`): the header and per-table comments.
    pub comments: bool,
    /// `--dump-date`: the date in the footer.
    pub dump_date: bool,
    /// `--tz-utc`: dump and restore TIMESTAMP columns in UTC.
    pub tz_utc: bool,
    /// `--compact`: no header, footer, or session save/restore lines.
    pub compact: bool,
    /// `--net-buffer-length`: the largest extended INSERT, in bytes (mariadb-dump's default
    /// 1046528, a multiple of 1024).
    pub net_buffer_length: usize,
    /// `--max-allowed-packet`.
    pub max_allowed_packet: usize,
    pub order_by_primary: bool,
    /// `-q/--quick`: stream rows (rdump always streams; kept for compatibility).
    pub quick: bool,
    /// `--no-autocommit`: wrap each table's data in SET autocommit=0 ... COMMIT.
    pub no_autocommit: bool,
    /// `--flush-privileges`: FLUSH PRIVILEGES after dumping the mysql database.
    pub flush_privileges: bool,
    /// `-X/--xml`: mariadb-dump's XML document instead of SQL (see `encode::xml`).
    pub xml: bool,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            add_drop_database: false,
            add_drop_table: true,
            add_drop_trigger: false,
            add_locks: true,
            disable_keys: true,
            extended_insert: true,
            complete_insert: false,
            insert_mode: InsertMode::Insert,
            delayed_insert: false,
            hex_blob: false,
            create_options: true,
            compatible: Vec::new(),
            set_charset: true,
            comments: true,
            dump_date: true,
            tz_utc: true,
            compact: false,
            net_buffer_length: 1046528,
            max_allowed_packet: 24 * 1024 * 1024,
            order_by_primary: false,
            quick: true,
            no_autocommit: false,
            flush_privileges: false,
            xml: false,
        }
    }
}

impl Shape {
    /// The session sql_mode under which `SHOW CREATE` is read, as mariadb-dump sets it:
    /// the `--compatible` modes, and without `--create-options` those that leave table, key
    /// and column options (ENGINE, AUTO_INCREMENT, KEY_BLOCK_SIZE, ...) out (not with
    /// `--xml`, where mariadb-dump only leaves out the `<options>` element).
    pub fn reading_sql_mode(&self) -> String {
        let mut modes: Vec<&str> = self.compatible.iter().map(String::as_str).collect();
        if !self.create_options && !self.xml {
            for m in ["NO_KEY_OPTIONS", "NO_TABLE_OPTIONS", "NO_FIELD_OPTIONS"] {
                if !modes.contains(&m) {
                    modes.push(m);
                }
            }
        }
        modes.join(",")
    }
}

/// How coordinates are written: `=1` as a statement, `=2` as a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordinateStyle {
    Statement,
    Commented,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GtidPurged {
    Off,
    On,
    #[default]
    Auto,
    Commented,
}
