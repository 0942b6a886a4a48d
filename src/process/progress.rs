//! What a person sees on stderr while a dump or a load runs: progress bars on a terminal
//! (`--progress=auto|always`), a plain line every few seconds when `--progress=always` and
//! stderr is not a terminal (a log file), nothing otherwise. Every number a person reads is
//! written with thousands separators (`thousands`) and sizes in decimal MB (`mb`), as the
//! summaries are.
//!
//! `stop` clears every bar and draws nothing more: the binaries call it before printing an
//! error or an interruption, so that message is the last thing on the terminal, whatever
//! the threads of an abandoned run still report.
//!
//! `RDUMP_PROGRESS_SECONDS` sets the lines' interval (5 s by default; tests use less).
//!
//! Not for: what is counted (each tool keeps its own counters and builds its lines).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressDrawTarget};

use crate::plan::Progress;

/// How often a line is printed when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(5);

static STOPPED: AtomicBool = AtomicBool::new(false);
static BOARDS: Mutex<Vec<MultiProgress>> = Mutex::new(Vec::new());

/// How progress shows, from `--progress` and whether stderr is a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    Hidden,
    Bars,
    Lines,
}

impl Display {
    pub fn for_mode(mode: Progress) -> Display {
        Display::choose(mode, std::io::stderr().is_terminal())
    }

    fn choose(mode: Progress, terminal: bool) -> Display {
        match (mode, terminal) {
            (Progress::Never, _) => Display::Hidden,
            (_, true) => Display::Bars,
            (Progress::Always, false) => Display::Lines,
            (Progress::Auto, false) => Display::Hidden,
        }
    }
}

/// The bars of one run (drawn on stderr only as `Display::Bars`), and its line printer.
pub struct Board {
    pub multi: MultiProgress,
    pub display: Display,
    lines: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl Board {
    pub fn new(mode: Progress) -> Board {
        let display = Display::for_mode(mode);
        let target = if display == Display::Bars && !STOPPED.load(Ordering::Relaxed) {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        BOARDS.lock().expect("boards lock").push(multi.clone());
        Board {
            multi,
            display,
            lines: None,
        }
    }

    /// With `Display::Lines`, prints `tool: <elapsed> <line()>` every few seconds until
    /// `finish` (or `stop`).
    pub fn lines_every_few_seconds(
        &mut self,
        tool: &'static str,
        line: impl Fn() -> String + Send + 'static,
    ) {
        if self.display != Display::Lines || self.lines.is_some() {
            return;
        }
        let done = Arc::new(AtomicBool::new(false));
        let finished = Arc::clone(&done);
        let every = std::env::var("RDUMP_PROGRESS_SECONDS")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|s| *s > 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(LINE_EVERY);
        let started = Instant::now();
        let spawned = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                let mut next = started + every;
                loop {
                    std::thread::sleep(every.min(Duration::from_millis(100)));
                    if finished.load(Ordering::Relaxed) || STOPPED.load(Ordering::Relaxed) {
                        return;
                    }
                    if Instant::now() >= next {
                        next += every;
                        eprintln!("{tool}: {} {}", elapsed(started.elapsed()), line());
                    }
                }
            });
        if let Ok(handle) = spawned {
            self.lines = Some((done, handle));
        }
    }

    /// Clears the bars and stops the lines.
    pub fn finish(&mut self) {
        let _ = self.multi.clear();
        if let Some((done, handle)) = self.lines.take() {
            done.store(true, Ordering::Relaxed);
            let _ = handle.join();
        }
    }
}

/// Clears every bar of the process and draws nothing more (see the module doc).
pub fn stop() {
    STOPPED.store(true, Ordering::Relaxed);
    for m in BOARDS.lock().expect("boards lock").iter() {
        let _ = m.clear();
        m.set_draw_target(ProgressDrawTarget::hidden());
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes as decimal megabytes with one decimal, `12.3 MB`.
pub fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// A duration as `hh:mm:ss`.
pub fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// A whole rate per second of `count` over `secs`, with separators.
pub fn per_second(count: u64, secs: f64) -> String {
    thousands((count as f64 / secs.max(0.001)) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_a_person_writes_them() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(mb(23_456_789), "23.5 MB");
        assert_eq!(elapsed(Duration::from_secs(3723)), "01:02:03");
        assert_eq!(per_second(202_215, 1.0), "202,215");
    }

    #[test]
    fn bars_on_a_terminal_lines_when_always_elsewhere() {
        assert_eq!(Display::choose(Progress::Auto, true), Display::Bars);
        assert_eq!(Display::choose(Progress::Always, true), Display::Bars);
        assert_eq!(Display::choose(Progress::Auto, false), Display::Hidden);
        assert_eq!(Display::choose(Progress::Always, false), Display::Lines);
        assert_eq!(Display::choose(Progress::Never, true), Display::Hidden);
    }
}
