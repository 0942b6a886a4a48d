//! Objects created after the data, each kind for all databases before the next kind, as a
//! mariadb-dump script creates them: routines first (a view may call a stored function),
//! then views (the stand-in views of every database's `views.sql`, then each file whole,
//! which replaces its stand-ins by the real views: a view may use a view of any database),
//! then each table's triggers (after the data, or loading would fire them), then events
//! last (an event may run as soon as it exists).
//!
//! Each file is one journal step. Re-running a step after an interruption is safe: the
//! routine, view and event files drop what they create first, and a table's existing
//! triggers are dropped before its trigger file runs again.
//!
//! With `--seed-replica`, events that would run on their own are set `DISABLE ON SLAVE`, as
//! replication itself does with events it creates: the replica's data must only change
//! through replication.

use super::conn::LoadConn;
use super::error::Result;
use super::exec::{Edit, Script, run_file};
use super::journal::{self, Journal};
use super::plan::{DbPlan, LoadPlan};
use super::script::starts_with_words;
use crate::client::conn::cell_string;
use crate::format::manifest::FileEntry;
use crate::sql::quote::{ident, qualified, string_literal};

/// Creates routines, views, triggers and events; returns how many files ran.
pub async fn create(
    conn: &mut LoadConn,
    plan: &LoadPlan,
    journal: &Journal,
    seed_replica: bool,
) -> Result<usize> {
    // In run order: (database, file, what it does, how).
    let mut steps: Vec<(&DbPlan, &FileEntry, String, Step)> = Vec::new();
    for d in &plan.databases {
        if let Some(f) = &d.routines_file {
            let what = format!("creating routines in {}", ident(&d.target));
            steps.push((d, f, what, Step::Whole));
        }
    }
    for d in &plan.databases {
        if let Some(f) = &d.views_file {
            let what = format!("creating stand-in views in {}", ident(&d.target));
            steps.push((d, f, what, Step::StandInViews));
        }
    }
    for d in &plan.databases {
        if let Some(f) = &d.views_file {
            let what = format!("creating views in {}", ident(&d.target));
            steps.push((d, f, what, Step::Whole));
        }
    }
    for d in &plan.databases {
        for t in &d.tables {
            if let Some(f) = &t.triggers_file {
                let what = format!("creating triggers on {}", qualified(&d.target, &t.name));
                steps.push((d, f, what, Step::Triggers(&t.name)));
            }
        }
    }
    for d in &plan.databases {
        if let Some(f) = &d.events_file {
            let what = format!("creating events in {}", ident(&d.target));
            steps.push((d, f, what, Step::Whole));
        }
    }
    let mut ran = 0;
    for (d, file, context, step) in steps {
        // A views file done is done with its stand-ins.
        let item = journal::post_item(&file.file);
        if journal.is_done(&item) {
            continue;
        }
        conn.exec(&format!("USE {}", ident(&d.target)), &context)
            .await?;
        if let (Step::Triggers(table), true) = (step, journal.resumed) {
            drop_triggers(conn, &d.target, table).await?;
        }
        let script = Script {
            rename: d.rename(),
            rename_everywhere: false,
            context,
        };
        if let Step::StandInViews = step {
            // Not journaled: run again (they drop what they create) until the file is done.
            run_file(conn, plan, file, &script, stand_ins_only()).await?;
            continue;
        }
        run_file(conn, plan, file, &script, |_| Edit::Keep).await?;
        journal.mark_done(conn, &item, 0).await?;
        ran += 1;
    }
    if seed_replica {
        for d in plan.databases.iter().filter(|d| d.events_file.is_some()) {
            disable_events_on_replica(conn, &d.target).await?;
        }
    }
    Ok(ran)
}

/// How a post file runs.
#[derive(Clone, Copy)]
enum Step<'a> {
    Whole,
    /// Only the stand-in views at the head of a `views.sql` (see `stand_ins_only`).
    StandInViews,
    /// A table's triggers file; on `--resume` the table's triggers are dropped first.
    Triggers(&'a str),
}

/// Keeps the stand-in views at the head of a `views.sql` (each one's `DROP TABLE`, `DROP
/// VIEW`, `CREATE VIEW ... AS SELECT` of constants) and skips the rest from the first real
/// definition on: the first `DROP VIEW` that does not follow a `DROP TABLE`, or the first
/// view created with an `ALGORITHM` (as the server prints every real view).
fn stand_ins_only() -> impl FnMut(&[u8]) -> Edit {
    let (mut after_drop_table, mut done) = (false, false);
    move |stmt| {
        let real_view = starts_with_words(stmt, "CREATE")
            && stmt
                .windows(10)
                .any(|w| w.eq_ignore_ascii_case(b"ALGORITHM="));
        if real_view || (starts_with_words(stmt, "DROP VIEW") && !after_drop_table) {
            done = true;
        }
        after_drop_table = starts_with_words(stmt, "DROP TABLE");
        if done { Edit::Skip } else { Edit::Keep }
    }
}

async fn drop_triggers(conn: &mut LoadConn, db: &str, table: &str) -> Result<()> {
    let rows = conn
        .rows(
            &format!(
                "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS \
                 WHERE EVENT_OBJECT_SCHEMA = {} AND EVENT_OBJECT_TABLE = {}",
                string_literal(db),
                string_literal(table)
            ),
            "reading triggers",
        )
        .await?;
    for name in rows.iter().filter_map(|r| cell_string(r, 0)) {
        conn.exec(
            &format!("DROP TRIGGER IF EXISTS {}", qualified(db, &name)),
            "dropping a trigger of the interrupted load",
        )
        .await?;
    }
    Ok(())
}

async fn disable_events_on_replica(conn: &mut LoadConn, db: &str) -> Result<()> {
    let rows = conn
        .rows(
            &format!(
                "SELECT EVENT_NAME FROM information_schema.EVENTS \
                 WHERE EVENT_SCHEMA = {} AND STATUS = 'ENABLED'",
                string_literal(db)
            ),
            "reading events",
        )
        .await?;
    for name in rows.iter().filter_map(|r| cell_string(r, 0)) {
        conn.exec(
            &format!("ALTER EVENT {} DISABLE ON SLAVE", qualified(db, &name)),
            &format!("disabling event {} on the replica", qualified(db, &name)),
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::objects::Definition;
    use crate::format::script;
    use crate::format::shape::Shape;
    use crate::load::script::Splitter;

    /// Of a views file as rdump writes it (two stand-ins, then two real views), only the
    /// stand-ins' statements are kept.
    #[test]
    fn stand_ins_only_keeps_the_stand_in_views() {
        for shape in [
            Shape::default(),
            Shape {
                comments: false,
                ..Shape::default()
            },
        ] {
            let view = |name: &str| Definition {
                name: name.into(),
                create: format!(
                    "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY \
                     DEFINER VIEW `{name}` AS select 1 AS `a`"
                ),
                sql_mode: String::new(),
                character_set_client: "utf8mb4".into(),
                collation_connection: "utf8mb4_general_ci".into(),
                time_zone: None,
            };
            let mut file = String::new();
            for v in ["v1", "v2"] {
                file.push_str(&script::view_placeholder(&shape, v, &["a".into()]));
            }
            for v in ["v1", "v2"] {
                file.push_str(&script::view_final(&shape, &view(v)));
            }
            let mut splitter = Splitter::new(file.as_bytes());
            let mut keep = stand_ins_only();
            let mut kept = Vec::new();
            while let Some(stmt) = splitter.next_statement().unwrap() {
                if let Edit::Keep = keep(&stmt) {
                    kept.push(String::from_utf8(stmt).unwrap());
                }
            }
            let creates: Vec<&String> = kept.iter().filter(|s| s.contains("CREATE")).collect();
            assert_eq!(creates.len(), 2, "{kept:#?}");
            assert!(creates.iter().all(|s| s.contains("AS SELECT")), "{kept:#?}");
            assert!(kept.iter().all(|s| !s.contains("ALGORITHM")), "{kept:#?}");
        }
    }
}
