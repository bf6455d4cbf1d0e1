//! Reads the 100-byte SQLite file header without SQLite, so a file's journal
//! mode and change counter can be checked before any library opens it.

use std::io::Read;
use std::path::Path;

/// Journal kind recorded in the header (bytes 18–19).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalKind {
    /// 1/1: rollback journal (`DELETE`, `TRUNCATE`, `PERSIST`, …).
    Rollback,
    /// 2/2: write-ahead log.
    Wal,
    /// Anything else (not a database, or a future format).
    Other(u8, u8),
}

/// The parts of the header airlock checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbHeader {
    /// Bytes 18–19.
    pub journal: JournalKind,
    /// Bytes 24–27, big-endian: bumped by every committed write in rollback mode.
    pub change_counter: u32,
}

const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Reads the header of `path`; `Ok(None)` when the file is absent, empty or
/// shorter than a header (SQLite writes the header with the first commit).
pub fn read_header(path: &Path) -> std::io::Result<Option<DbHeader>> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut buf = [0u8; 100];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    if filled < buf.len() || &buf[..16] != MAGIC {
        return Ok(None);
    }
    let journal = match (buf[18], buf[19]) {
        (1, 1) => JournalKind::Rollback,
        (2, 2) => JournalKind::Wal,
        (w, r) => JournalKind::Other(w, r),
    };
    let change_counter = u32::from_be_bytes([buf[24], buf[25], buf[26], buf[27]]);
    Ok(Some(DbHeader {
        journal,
        change_counter,
    }))
}
