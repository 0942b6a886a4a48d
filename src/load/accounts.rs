//! The dump's accounts (`accounts.json`, written by `rdump --dir --system=users` and by
//! every `rbackup backup` of all databases): users and roles created with their grants and
//! default roles, last in the load (a table or routine grant needs its object).
//!
//! What is never touched, so that a restore cannot lock anyone out:
//! - the account running the load (`CURRENT_USER()`): not created, no grant, no password;
//! - `mariadb.sys@localhost` (owner of the sys views, made by the server's installer);
//! - every account that already exists on the target (`root@localhost`, or anything made
//!   since): left exactly as the target has it, password and grants, and named in the
//!   verbose output. To restore such an account from the dump, drop it first.
//!
//! MariaDB's `PUBLIC` role exists everywhere; its grants (additive) are applied. The
//! statements are `format::script::account_statements`, the ones `--system=users` writes
//! into a single-stream dump. One journal step; before it runs, each account it is about
//! to create is recorded in the journal (`account 'u'@'h'`), so that a resumed load
//! finishes the accounts it made and still leaves every other existing one alone.
//!
//! Not for: reading accounts from a server (`dump::catalog::accounts`).

use std::collections::HashSet;

use super::conn::LoadConn;
use super::error::{LoadError, Result};
use super::journal::Journal;
use super::plan::LoadPlan;
use crate::client::conn::cell_string;
use crate::format::objects::Account;
use crate::format::script::account_statements;

/// The journal item of the accounts step.
pub const ITEM: &str = "accounts";

/// What the accounts step did.
#[derive(Debug, Default, Clone)]
pub struct Created {
    /// Accounts whose statements ran.
    pub applied: usize,
    /// Accounts of the dump left as the target has them (`'u'@'h'`).
    pub kept: Vec<String>,
}

/// Creates the plan's accounts (if it has any) as the module doc says.
pub async fn create(conn: &mut LoadConn, plan: &LoadPlan, journal: &Journal) -> Result<Created> {
    let Some(file) = &plan.accounts_file else {
        return Ok(Created::default());
    };
    if journal.is_done(ITEM) {
        return Ok(Created::default());
    }
    let text = plan.read_file(file)?;
    let accounts: Vec<Account> = serde_json::from_slice(&text)
        .map_err(|e| LoadError::dump(plan.path(&file.file), format!("not an account list: {e}")))?;
    let me = conn
        .first_value("SELECT CURRENT_USER()", "reading the loading account")
        .await?
        .unwrap_or_default();
    let me = me
        .rsplit_once('@')
        .map(|(u, h)| (u.to_string(), h.to_string()))
        .unwrap_or((me.clone(), String::new()));
    let existing: HashSet<(String, String)> = conn
        .rows(
            "SELECT User, Host FROM mysql.user",
            "listing the target's accounts",
        )
        .await?
        .iter()
        .map(|r| {
            (
                cell_string(r, 0).unwrap_or_default(),
                cell_string(r, 1).unwrap_or_default(),
            )
        })
        .collect();
    let mut created = Created::default();
    let mut kept_accounts = Vec::new();
    for a in accounts {
        let key = (a.user.clone(), a.host.clone());
        let protected = key == me || (a.user == "mariadb.sys" && a.host == "localhost");
        let public = a.is_role && a.user == "PUBLIC";
        let ours = journal.is_done(&account_item(&a));
        if protected || (!public && !ours && existing.contains(&key)) {
            created.kept.push(a.sql_name());
            continue;
        }
        kept_accounts.push(a);
    }
    if kept_accounts.is_empty() {
        journal.mark_done(conn, ITEM, 0).await?;
        return Ok(created);
    }
    journal.mark_started(conn, ITEM).await?;
    for a in &kept_accounts {
        if !journal.is_done(&account_item(a)) {
            journal.mark_done(conn, &account_item(a), 0).await?;
        }
    }
    for statement in account_statements(&kept_accounts) {
        // The context never holds the statement: it may carry a password hash.
        conn.exec(&statement, "creating the dump's accounts and grants")
            .await?;
    }
    created.applied = kept_accounts.len();
    journal
        .mark_done(conn, ITEM, created.applied as u64)
        .await?;
    Ok(created)
}

/// The journal item recording that this load creates account `a`.
fn account_item(a: &Account) -> String {
    format!("account {}", a.sql_name())
}
