//! Objects created after the data, per database: routines first (a view may call a stored
//! function), then views (`views.sql`: stand-in views, then the real ones, so views may
//! use views defined later), then each table's triggers (after the data, or loading would
//! fire them), then events last (an event may run as soon as it exists).
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
use super::plan::LoadPlan;
use crate::client::conn::cell_string;
use crate::sql::quote::{ident, qualified, string_literal};

/// Creates routines, views, triggers and events; returns how many files ran.
pub async fn create(
    conn: &mut LoadConn,
    plan: &LoadPlan,
    journal: &Journal,
    seed_replica: bool,
) -> Result<usize> {
    let mut ran = 0;
    for d in &plan.databases {
        let use_db = format!("USE {}", ident(&d.target));
        let mut steps: Vec<(&str, String, Option<&str>)> = Vec::new();
        if let Some(f) = &d.routines_file {
            steps.push((
                &f.file,
                format!("creating routines in {}", ident(&d.target)),
                None,
            ));
        }
        if let Some(f) = &d.views_file {
            steps.push((
                &f.file,
                format!("creating views in {}", ident(&d.target)),
                None,
            ));
        }
        for t in &d.tables {
            if let Some(f) = &t.triggers_file {
                steps.push((
                    &f.file,
                    format!("creating triggers on {}", qualified(&d.target, &t.name)),
                    Some(&t.name),
                ));
            }
        }
        if let Some(f) = &d.events_file {
            steps.push((
                &f.file,
                format!("creating events in {}", ident(&d.target)),
                None,
            ));
        }
        for (file, context, trigger_table) in steps {
            let item = journal::post_item(file);
            if journal.is_done(&item) {
                continue;
            }
            conn.exec(&use_db, &context).await?;
            if let (Some(table), true) = (trigger_table, journal.resumed) {
                drop_triggers(conn, &d.target, table).await?;
            }
            let script = Script {
                rename: d.rename(),
                rename_everywhere: false,
                context,
            };
            run_file(conn, &plan.path(file), &script, |_| Edit::Keep).await?;
            journal.mark_done(conn, &item, 0).await?;
            ran += 1;
        }
        if seed_replica && d.events_file.is_some() {
            disable_events_on_replica(conn, &d.target).await?;
        }
    }
    Ok(ran)
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
