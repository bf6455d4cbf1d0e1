//! Cross-mount harness: proves airlock's mailbox invariants through a cache-incoherent FUSE mount.
pub mod airlock;
pub mod controls;
pub mod fs;
pub mod guest;
pub mod medium;
pub mod mount;
pub mod nonce;
pub mod pattern;
pub mod protocol;
pub mod report;
pub mod run;
pub mod sql;
pub mod suite;
pub mod vm;
