//! The running process, shared by the three programs: its command line after parsing
//! (passwords overwritten in argv), asking for a password, and the signals that stop it.
//!
//! Not for: parsing options (see `options`) or what an interruption means to a dump or a
//! load (their errors say that).

pub mod argv;
pub mod prompt;
pub mod signals;
