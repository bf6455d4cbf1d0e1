//! A mailbox file's stamp (header change counter, size, inode), read in one
//! open without SQLite: how the host's delivery passes and the guest's polls
//! tell that nothing was committed since they last looked.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::{Mode, OFlags};

use crate::error::{Error, Result};

/// What a mailbox file's header and metadata say, read in one open: equal
/// stamps mean no commit happened in between (rollback-journal mode bumps
/// the change counter on every commit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileStamp {
    /// Header bytes 24–27; 0 for a file shorter than a header.
    pub change_counter: u32,
    /// File size in bytes.
    pub size: u64,
    /// Inode number, so a file swapped in by the guest never looks unchanged.
    pub inode: u64,
}

/// Header stamp of the file at `path`, opened without following symlinks
/// and without blocking (a FIFO is refused, never waited on); `None` when absent.
pub fn file_stamp(path: &Path) -> Result<Option<FileStamp>> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(rustix::io::Errno::LOOP) => {
            return Err(Error::UnsafeFile {
                path: path.to_path_buf(),
                what: "it is a symbolic link".into(),
            });
        }
        Err(e) => return Err(Error::io(path, e.into())),
    };
    let mut file = std::fs::File::from(fd);
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::UnsafeFile {
            path: path.to_path_buf(),
            what: "it is not a regular file".into(),
        });
    }
    let mut header = [0u8; 28];
    let mut filled = 0;
    while filled < header.len() {
        match file.read(&mut header[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    let change_counter = if filled == header.len() {
        u32::from_be_bytes([header[24], header[25], header[26], header[27]])
    } else {
        0
    };
    Ok(Some(FileStamp {
        change_counter,
        size: meta.len(),
        inode: meta.ino(),
    }))
}
