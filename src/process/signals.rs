//! The signals that stop a dump or a load (SIGINT, SIGTERM, SIGHUP), for the binaries'
//! `select!`: dropping the running future then removes every uncommitted file.
//! Not for: what an interruption means to each tool (their errors say that).

/// Resolves with the signal's name and number when one of them arrives; never, when the
/// handlers cannot be installed.
pub async fn interrupted() -> (&'static str, i32) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => ("SIGINT", 2),
        _ = term.recv() => ("SIGTERM", 15),
        _ = hup.recv() => ("SIGHUP", 1),
    }
}
