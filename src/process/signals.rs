//! The signals that stop a dump or a load (SIGINT, SIGTERM, SIGHUP), for the binaries'
//! `select!`: dropping the running future then removes every uncommitted file.
//!
//! The signals are received on a thread of their own (`watch`), which wakes the binary's
//! `select!` directly: received through the busy runtime that runs the dump, a signal could
//! wait a second or more for a worker thread to poll the runtime's I/O driver.
//!
//! SIGXFSZ (a write past the file-size limit, `ulimit -f`) is ignored from `watch` on: the
//! write then fails with EFBIG ("File too large"), reported with the file's name like any
//! write error, and the tool's temporary files are removed, where the signal's default
//! action killed the process and left them.
//!
//! Not for: what an interruption means to each tool (their errors say that).

use tokio::sync::oneshot;

/// The signals being watched (see `watch`).
pub struct Watch {
    received: Option<oneshot::Receiver<(&'static str, i32)>>,
}

/// Installs the handlers (before it returns) and watches for the signals on a thread of its
/// own. Without handlers (they could not be installed), the watch never fires.
pub fn watch() -> Watch {
    // SAFETY: sets SIGXFSZ's disposition to ignored; no handler runs.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let (ready, installed) = std::sync::mpsc::channel::<bool>();
    let (tx, rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                let _ = ready.send(false);
                return;
            };
            runtime.block_on(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                    signal(SignalKind::hangup()),
                ) else {
                    let _ = ready.send(false);
                    return;
                };
                let _ = ready.send(true);
                let got = tokio::select! {
                    _ = int.recv() => ("SIGINT", 2),
                    _ = term.recv() => ("SIGTERM", 15),
                    _ = hup.recv() => ("SIGHUP", 1),
                };
                let _ = tx.send(got);
                // Later signals stay caught (not fatal) while the binary stops.
                std::future::pending::<()>().await;
            });
        });
    let watching = spawned.is_ok() && installed.recv().unwrap_or(false);
    Watch {
        received: watching.then_some(rx),
    }
}

impl Watch {
    /// Resolves with the signal's name and number when one of them arrives.
    pub async fn interrupted(&mut self) -> (&'static str, i32) {
        match self.received.as_mut() {
            Some(rx) => match rx.await {
                Ok(got) => got,
                Err(_) => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }
}
