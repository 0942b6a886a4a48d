//! Running one of the dump's small SQL files (database, table schema, views, triggers,
//! routines, events) on one connection, statement by statement, as `mariadb --comments`
//! would: the splitter's statements, with the database renamed for `--target-database`, and
//! backslash escaping set from the server's sql_mode after any statement that sets it (the
//! files switch to each object's own sql_mode, e.g. `NO_BACKSLASH_ESCAPES`).
//!
//! Not for: data chunks (see `data`, which streams them).

use super::plan::LoadPlan;
use crate::format::manifest::FileEntry;

use super::conn::LoadConn;
use super::error::{LoadError, Result};
use super::script::{self, Splitter, starts_with_words};

/// What to do with one statement before it runs.
pub enum Edit {
    /// Run it as it is (after renaming).
    Keep,
    /// Run this instead.
    Replace(Vec<u8>),
    /// Do not run it.
    Skip,
}

/// How to run a file.
pub struct Script<'a> {
    /// `(from, to)`: database rename.
    pub rename: Option<(&'a str, &'a str)>,
    /// Rename every identifier equal to `from` (database.sql), not only qualifiers.
    pub rename_everywhere: bool,
    /// What is being done, for messages: "creating table `db`.`t`".
    pub context: String,
}

/// Reads and runs a whole file; `edit` sees each statement (renamed) first.
pub async fn run_file(
    conn: &mut LoadConn,
    plan: &LoadPlan,
    file: &FileEntry,
    script: &Script<'_>,
    mut edit: impl FnMut(&[u8]) -> Edit,
) -> Result<()> {
    let path = &plan.path(&file.file);
    let text = plan.read_file(file)?;
    let mut splitter = Splitter::new(&text[..]);
    loop {
        let stmt = match splitter.next_statement() {
            Ok(Some(s)) => s,
            Ok(None) => break,
            Err(e) => return Err(LoadError::dump(path, e.to_string())),
        };
        let stmt = match script.rename {
            Some((from, to)) => script::rename_database(
                &stmt,
                from,
                to,
                script.rename_everywhere,
                splitter.backslash_escapes(),
            ),
            None => stmt,
        };
        let stmt = match edit(&stmt) {
            Edit::Keep => stmt,
            Edit::Replace(s) => s,
            Edit::Skip => continue,
        };
        conn.exec_bytes(&stmt, &script.context).await?;
        if mentions_sql_mode(&stmt) {
            let mode = conn
                .first_value("SELECT @@SESSION.sql_mode", "reading the sql_mode")
                .await?
                .unwrap_or_default();
            splitter.set_backslash_escapes(!mode.contains("NO_BACKSLASH_ESCAPES"));
        }
    }
    Ok(())
}

fn mentions_sql_mode(stmt: &[u8]) -> bool {
    starts_with_words(stmt, "SET") && stmt.windows(8).any(|w| w.eq_ignore_ascii_case(b"sql_mode"))
}
