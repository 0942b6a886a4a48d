//! What a dump says, shared by everything that writes or reads one: the objects it
//! describes (`objects`), the coordinates it records (`coordinates`), how its statements
//! are shaped (`shape`), rows turned into bytes (`encode`: SQL, CSV, `--tab`), every other
//! line of a script (`script`) and its text in the connection's character set (`charset`),
//! the directory dump's manifest (`manifest`), the names of its files (`names`) and the
//! row fingerprints a backup records for restore drills (`fingerprint`).
//!
//! It is the contract between the dump, the load and the backup layer. Not for: talking to
//! a server (formats never see a connection) or storing bytes (see `output`).

pub mod charset;
pub mod coordinates;
pub mod encode;
pub mod fingerprint;
pub mod manifest;
pub mod names;
pub mod objects;
pub mod script;
pub mod shape;
