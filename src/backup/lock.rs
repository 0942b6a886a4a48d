//! Lock objects (REPOSITORY.md, "Locks"): shared locks under unique names, the exclusive
//! lock and unique named locks by create-only puts (`If-None-Match: *`), each refreshed
//! every `ttl/3` by a background task; stale locks (not refreshed for `ttl`, or left by a
//! dead process of this host) are taken over: on S3 by a conditional overwrite of exactly
//! the stale version (`If-Match`), on a local directory by replacing it under an
//! exclusive `flock` of the `locks` folder after checking it is still the stale version.
//!
//! Not for: deciding which operation takes which lock (the commands do).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::error::{BackupError, Result};
use super::keys::storage_id;
use super::store::Store;

/// How long a lock lives without refresh before it is stale.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockKind {
    /// Adds or reads: backup, archiver, restore, copy, verify.
    Shared,
    /// Deletes: prune.
    Exclusive,
    /// One holder per name (with a shared lock): `backup-<source>`, `binlog-<source>`.
    Unique(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockInfo {
    pub kind: String,
    pub operation: String,
    pub host: String,
    pub pid: u32,
    pub created: String,
    pub refreshed: String,
    pub ttl_secs: u64,
    /// Unique to one acquisition: a refresh or release touches a lock object only while
    /// it still holds this token (another operation may have taken it over as stale).
    #[serde(default)]
    pub token: String,
}

impl LockInfo {
    fn new(kind: &str, operation: &str, ttl: Duration, token: &str) -> LockInfo {
        let now = now();
        LockInfo {
            kind: kind.into(),
            operation: operation.into(),
            host: hostname(),
            pid: std::process::id(),
            created: now.clone(),
            refreshed: now,
            ttl_secs: ttl.as_secs().max(1),
            token: token.to_string(),
        }
    }

    /// Stale: not refreshed within its ttl, or its process (on this host) is gone.
    pub fn is_stale(&self) -> bool {
        if self.host == hostname() && !pid_alive(self.pid) {
            return true;
        }
        match chrono::DateTime::parse_from_rfc3339(&self.refreshed) {
            Ok(t) => {
                let age = chrono::Utc::now().signed_duration_since(t);
                age.num_seconds() > self.ttl_secs as i64
            }
            Err(_) => true,
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} (host {}, pid {}, since {}, refreshed {})",
            self.operation, self.host, self.pid, self.created, self.refreshed
        )
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// This machine's host name, as locks record it.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for its length; gethostname NUL-terminates on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn pid_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seed = format!(
        "{}-{}-{nanos}-{}",
        hostname(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    storage_id(seed.as_bytes())[..24].to_string()
}

/// Held locks; refreshed in the background until released.
pub struct LockGuard {
    store: Store,
    names: Vec<String>,
    token: String,
    kind: String,
    operation: String,
    ttl: Duration,
    refresher: tokio::task::JoinHandle<()>,
    lost: Arc<AtomicBool>,
    released: bool,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LockGuard({:?})", self.names)
    }
}

async fn read_info(store: &Store, name: &str) -> Result<Option<(LockInfo, Option<String>)>> {
    let Some(head) = store.head(name).await? else {
        return Ok(None);
    };
    let Some(bytes) = store.get_opt(name).await? else {
        return Ok(None);
    };
    let info = serde_json::from_slice(&bytes).unwrap_or(LockInfo {
        kind: "?".into(),
        operation: "unreadable lock".into(),
        host: "?".into(),
        pid: 0,
        created: String::new(),
        refreshed: String::new(),
        ttl_secs: 0,
        token: String::new(),
    });
    Ok(Some((info, head.e_tag)))
}

/// Creates `name` with a create-only put, taking over a stale holder. On refusal the
/// error names the holder.
async fn create_or_take_over(store: &Store, name: &str, body: Bytes, what: &str) -> Result<()> {
    for _ in 0..3 {
        if store.create(name, body.clone()).await? {
            return Ok(());
        }
        let Some((holder, e_tag)) = read_info(store, name).await? else {
            continue; // released meanwhile: try again
        };
        if !holder.is_stale() {
            return Err(BackupError::Locked(format!(
                "{}: {what} is locked by {}",
                store.url(),
                holder.describe()
            )));
        }
        let replaced = match e_tag {
            Some(tag) => store.replace_if(name, body.clone(), &tag).await?,
            None => None,
        };
        match replaced {
            Some(true) => return Ok(()),
            Some(false) => continue, // someone else took it over first
            None => {
                // No conditional overwrite (a local directory): under an exclusive flock of
                // the `locks` folder, replace the lock only if it is still the stale
                // version read above. Of two racing takers one replaces it; the other
                // then finds the new holder's lock and refuses.
                let _takeover = takeover_guard(store).await?;
                match read_info(store, name).await? {
                    Some((now, _)) if same_holder(&now, &holder) && now.is_stale() => {
                        store.put(name, body.clone()).await?;
                        return Ok(());
                    }
                    _ => continue,
                }
            }
        }
    }
    Err(BackupError::Locked(format!(
        "{}: {what}: lost the race for {name} three times",
        store.url()
    )))
}

fn same_holder(a: &LockInfo, b: &LockInfo) -> bool {
    (&a.token, &a.host, a.pid, &a.created, &a.refreshed)
        == (&b.token, &b.host, b.pid, &b.created, &b.refreshed)
}

/// An exclusive `flock` of a local repository's `locks` folder, held while a stale lock
/// is taken over (released when dropped, or by the kernel when the process dies).
async fn takeover_guard(store: &Store) -> Result<std::fs::File> {
    let Some(root) = store.local_root() else {
        return Err(BackupError::Usage(format!(
            "{}: no conditional overwrite and not a local directory",
            store.url()
        )));
    };
    let dir = root.join("locks");
    let url = store.url().to_string();
    tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(&dir)?;
        // SAFETY: a valid open descriptor; LOCK_EX waits for the other holder.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(f)
    })
    .await
    .map_err(|e| std::io::Error::other(e.to_string()))
    .and_then(|r| r)
    .map_err(|e| BackupError::Storage {
        object: "locks/".into(),
        message: format!("locking the locks folder for a takeover: {e} (repository {url})"),
    })
}

/// Takes a lock of `kind` for `operation` (a word for messages: "backup", "prune").
pub async fn acquire(store: &Store, kind: LockKind, operation: &str) -> Result<LockGuard> {
    acquire_with_ttl(store, kind, operation, DEFAULT_TTL).await
}

pub async fn acquire_with_ttl(
    store: &Store,
    kind: LockKind,
    operation: &str,
    ttl: Duration,
) -> Result<LockGuard> {
    acquire_beside(store, kind, operation, ttl, &[]).await
}

/// Takes the exclusive lock for `operation`, going ahead beside live shared locks of the
/// operations named in `beside` (prune beside a running binlog archiver, which only
/// appends segments after its last one: prune never deletes those, see
/// `backup::prune`). Any other live shared lock refuses, as `acquire` does.
pub async fn acquire_exclusive_beside(
    store: &Store,
    operation: &str,
    beside: &[&str],
) -> Result<LockGuard> {
    acquire_beside(store, LockKind::Exclusive, operation, DEFAULT_TTL, beside).await
}

async fn acquire_beside(
    store: &Store,
    kind: LockKind,
    operation: &str,
    ttl: Duration,
    beside: &[&str],
) -> Result<LockGuard> {
    let mut names = Vec::new();
    let token = unique_suffix();
    let result = take(store, &kind, operation, ttl, &token, &mut names, beside).await;
    if let Err(e) = result {
        for n in &names {
            let _ = store.delete(n).await;
        }
        return Err(e);
    }
    let lost = Arc::new(AtomicBool::new(false));
    let refresher = tokio::spawn(refresh(
        store.clone(),
        names.clone(),
        kind_word(&kind).to_string(),
        operation.to_string(),
        ttl,
        token.clone(),
        lost.clone(),
    ));
    Ok(LockGuard {
        store: store.clone(),
        names,
        token,
        kind: kind_word(&kind).to_string(),
        operation: operation.to_string(),
        ttl,
        refresher,
        lost,
        released: false,
    })
}

fn kind_word(kind: &LockKind) -> &'static str {
    match kind {
        LockKind::Shared => "shared",
        LockKind::Exclusive => "exclusive",
        LockKind::Unique(_) => "unique",
    }
}

async fn take(
    store: &Store,
    kind: &LockKind,
    operation: &str,
    ttl: Duration,
    token: &str,
    names: &mut Vec<String>,
    beside: &[&str],
) -> Result<()> {
    let body = |k: &str| {
        Bytes::from(
            serde_json::to_vec(&LockInfo::new(k, operation, ttl, token)).expect("lock serializes"),
        )
    };
    match kind {
        LockKind::Shared | LockKind::Unique(_) => {
            let name = format!("locks/shared-{}", unique_suffix());
            store.put(&name, body("shared")).await?;
            names.push(name);
            if let Some((holder, _)) = read_info(store, "locks/exclusive").await?
                && !holder.is_stale()
            {
                return Err(BackupError::Locked(format!(
                    "{}: the repository is locked exclusively by {}",
                    store.url(),
                    holder.describe()
                )));
            }
            if let LockKind::Unique(unique) = kind {
                let name = format!("locks/unique-{unique}");
                create_or_take_over(
                    store,
                    &name,
                    body("unique"),
                    &format!("{operation} {unique}"),
                )
                .await?;
                names.push(name);
            }
        }
        LockKind::Exclusive => {
            let name = "locks/exclusive".to_string();
            create_or_take_over(store, &name, body("exclusive"), "the repository").await?;
            names.push(name);
            for listed in store.list("locks").await? {
                if !listed.name.starts_with("locks/shared-") {
                    continue;
                }
                if let Some((holder, _)) = read_info(store, &listed.name).await? {
                    if holder.is_stale() {
                        store.delete(&listed.name).await?;
                    } else if beside.contains(&holder.operation.as_str()) {
                        continue;
                    } else {
                        return Err(BackupError::Locked(format!(
                            "{}: the repository is in use by {}",
                            store.url(),
                            holder.describe()
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

async fn refresh(
    store: Store,
    names: Vec<String>,
    kind: String,
    operation: String,
    ttl: Duration,
    token: String,
    lost: Arc<AtomicBool>,
) {
    let mut last_ok = tokio::time::Instant::now();
    let mut interval = tokio::time::interval(ttl / 3);
    interval.tick().await;
    loop {
        interval.tick().await;
        let ok = refresh_once(&store, &names, &kind, &operation, ttl, &token, &lost).await;
        if ok {
            last_ok = tokio::time::Instant::now();
        } else if last_ok.elapsed() >= ttl {
            lost.store(true, Ordering::SeqCst);
        }
    }
}

/// Rewrites the lock objects that are still ours with a new `refreshed` time; marks the
/// lock lost when one was taken over or deleted. False when the storage failed.
async fn refresh_once(
    store: &Store,
    names: &[String],
    kind: &str,
    operation: &str,
    ttl: Duration,
    token: &str,
    lost: &AtomicBool,
) -> bool {
    let info = LockInfo::new(kind, operation, ttl, token);
    let body = Bytes::from(serde_json::to_vec(&info).expect("lock serializes"));
    let mut ok = true;
    {
        for n in names {
            // Only a lock that is still ours is refreshed: one that was taken over (we
            // looked stale: paused, partitioned) or deleted is lost, never overwritten,
            // and the operation fails at its next `check` instead of going on alongside
            // the new holder. On S3 the overwrite is conditional on the version read.
            match read_info(store, n).await {
                Ok(Some((held, e_tag))) if held.token == token => {
                    let put = match e_tag {
                        Some(tag) => match store.replace_if(n, body.clone(), &tag).await {
                            Ok(Some(true)) => Ok(()),
                            Ok(Some(false)) => {
                                lost.store(true, Ordering::SeqCst);
                                Ok(())
                            }
                            Ok(None) => store.put(n, body.clone()).await,
                            Err(e) => Err(e),
                        },
                        None => store.put(n, body.clone()).await,
                    };
                    ok &= put.is_ok();
                }
                Ok(_) => lost.store(true, Ordering::SeqCst),
                Err(_) => ok = false,
            }
        }
    }
    ok
}

/// A handle that re-confirms a held lock on demand (see `LockGuard::confirmer`).
#[derive(Clone)]
pub struct LockConfirm {
    store: Store,
    names: Vec<String>,
    kind: String,
    operation: String,
    ttl: Duration,
    token: String,
    lost: Arc<AtomicBool>,
}

impl LockConfirm {
    /// Refreshes the lock now and fails unless it is still ours. Called before writing
    /// an object others rely on (a backup's index objects and snapshot): a holder that was
    /// paused past its ttl may have been taken over by a prune that deleted its unindexed
    /// packs; an index listing them would make later backups skip blobs that are gone.
    /// After a successful refresh a stale-lock takeover of the old version fails (S3:
    /// `If-Match` on the version it read; local: replaced only if still that version).
    pub async fn confirm(&self) -> Result<()> {
        let refreshed = refresh_once(
            &self.store,
            &self.names,
            &self.kind,
            &self.operation,
            self.ttl,
            &self.token,
            &self.lost,
        )
        .await;
        if self.lost.load(Ordering::SeqCst) {
            return Err(BackupError::Locked(format!(
                "{}: the {} lock was taken over or removed while this {} ran (paused past its ttl?); giving up",
                self.store.url(),
                self.kind,
                self.operation
            )));
        }
        if !refreshed {
            return Err(BackupError::Storage {
                object: self.names.first().cloned().unwrap_or_default(),
                message: "the lock could not be refreshed".into(),
            });
        }
        Ok(())
    }
}

impl LockGuard {
    /// An error if the locks could not be refreshed for a whole ttl: what they protect
    /// may have been taken by another operation.
    pub fn check(&self) -> Result<()> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(BackupError::Locked(format!(
                "{}: the lock could not be refreshed for longer than its ttl; giving up",
                self.store.url()
            )));
        }
        Ok(())
    }

    /// For the holder of the exclusive lock, before it deletes anything: refreshes the lock
    /// (so that a stale takeover of the old version fails), fails if it was lost, then
    /// fails if a live shared lock other than those of `beside` exists. A holder paused
    /// past its ttl is ignored by shared lockers (a stale exclusive lock does not stop
    /// them): this is where it finds out that a backup started meanwhile. Each side
    /// writes its own lock before looking for the other's, as at acquisition, so at least
    /// one of the two sees the other.
    pub async fn reconfirm_exclusive(&self, beside: &[&str]) -> Result<()> {
        self.confirmer().confirm().await?;
        for listed in self.store.list("locks").await? {
            if !listed.name.starts_with("locks/shared-") || self.names.contains(&listed.name) {
                continue;
            }
            if let Some((holder, _)) = read_info(&self.store, &listed.name).await?
                && !holder.is_stale()
                && !beside.contains(&holder.operation.as_str())
            {
                return Err(BackupError::Locked(format!(
                    "{}: {} started while this {} was paused past its lock's ttl; stopping before deleting more (run it again)",
                    self.store.url(),
                    holder.describe(),
                    self.operation
                )));
            }
        }
        Ok(())
    }

    /// A handle that refreshes and re-checks this lock on demand (`LockConfirm::confirm`).
    pub fn confirmer(&self) -> LockConfirm {
        LockConfirm {
            store: self.store.clone(),
            names: self.names.clone(),
            kind: self.kind.clone(),
            operation: self.operation.clone(),
            ttl: self.ttl,
            token: self.token.clone(),
            lost: self.lost.clone(),
        }
    }

    /// Deletes the lock objects that are still ours (not one another operation took
    /// over meanwhile).
    pub async fn release(mut self) -> Result<()> {
        self.refresher.abort();
        self.released = true;
        for n in self.names.iter().rev() {
            match read_info(&self.store, n).await? {
                Some((held, _)) if held.token == self.token => self.store.delete(n).await?,
                _ => {}
            }
        }
        Ok(())
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.refresher.abort();
        if self.released {
            return;
        }
        // Best effort; a lock left behind goes stale (at once for a dead process here).
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let store = self.store.clone();
            let names = std::mem::take(&mut self.names);
            let token = self.token.clone();
            handle.spawn(async move {
                for n in names.iter().rev() {
                    if let Ok(Some((held, _))) = read_info(&store, n).await
                        && held.token == token
                    {
                        let _ = store.delete(n).await;
                    }
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staleness_by_time_and_by_dead_process() {
        let mut info = LockInfo::new("shared", "backup", Duration::from_secs(60), "t");
        assert!(!info.is_stale());
        info.refreshed = (chrono::Utc::now() - chrono::Duration::seconds(120)).to_rfc3339();
        assert!(info.is_stale());
        let mut dead = LockInfo::new("shared", "backup", Duration::from_secs(600), "t");
        dead.pid = i32::MAX as u32 - 1;
        assert!(dead.is_stale());
        let mut other_host = dead.clone();
        other_host.host = "elsewhere".into();
        assert!(!other_host.is_stale());
    }
}
