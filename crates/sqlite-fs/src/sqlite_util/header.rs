//! Reads the 100-byte SQLite file header without SQLite, so a file's journal
//! mode and change counter can be checked before any library opens it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};

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
///
/// The open never blocks and never follows a symlink: a FIFO, device or
/// symlink at `path` is an error (`InvalidData`), not a hang.
pub fn read_header(path: &Path) -> io::Result<Option<DbHeader>> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(rustix::io::Errno::LOOP) => return Err(not_regular(path, "a symbolic link")),
        Err(e) => return Err(e.into()),
    };
    let stat = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(not_regular(path, "not a regular file"));
    }
    read_header_of(&File::from(fd))
}

fn not_regular(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {what}", path.display()),
    )
}

/// Reads the header of an open file at offset 0 (positioned reads, so the
/// file's offset is left alone); `Ok(None)` as in [`read_header`].
pub fn read_header_of(file: &File) -> io::Result<Option<DbHeader>> {
    let mut buf = [0u8; 100];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
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
