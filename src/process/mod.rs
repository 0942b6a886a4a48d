//! The running process, shared by the three programs: its command line after parsing
//! (passwords overwritten in argv), asking for a password, the signals that stop it, and
//! the progress a person sees on stderr, and how the kernel schedules rdump (`sched`).
//!
//! Not for: parsing options (see `options`) or what an interruption means to a dump or a
//! load (their errors say that).

pub mod argv;
pub mod progress;
pub mod prompt;
pub mod sched;
pub mod signals;
