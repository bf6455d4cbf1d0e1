//! A regular file opened through a [`ConfinedDir`](super::ConfinedDir):
//! type, size, link count and identity taken from the handle, never the path.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::FileType;

use super::confined::{AccessError, identity_of, kind_name, links_of};

/// A regular file opened through a [`ConfinedDir`], with its size at open.
#[derive(Debug)]
pub struct RegularFile {
    file: File,
    len: u64,
    links: u64,
    identity: (u64, u64),
    path: PathBuf,
}

impl RegularFile {
    /// Checks with `fstat` that `fd` is a regular file and keeps what it found.
    pub(super) fn from_fd(fd: OwnedFd, path: PathBuf) -> Result<Self, AccessError> {
        let stat = match rustix::fs::fstat(&fd) {
            Ok(stat) => stat,
            Err(e) => {
                return Err(AccessError::Io {
                    path,
                    source: e.into(),
                });
            }
        };
        let file_type = FileType::from_raw_mode(stat.st_mode);
        if file_type != FileType::RegularFile {
            return Err(AccessError::NotRegular {
                path,
                kind: kind_name(file_type),
            });
        }
        Ok(RegularFile {
            file: File::from(fd),
            len: u64::try_from(stat.st_size).unwrap_or(0),
            links: links_of(&stat),
            identity: identity_of(&stat),
            path,
        })
    }

    /// Its number of hard links when it was opened: more than one means the
    /// same bytes are reachable under another name, perhaps outside the folder.
    pub fn links(&self) -> u64 {
        self.links
    }

    /// Device and inode number (`fstat`), to tell whether a name still
    /// refers to this file.
    pub fn identity(&self) -> (u64, u64) {
        self.identity
    }

    /// The path it was opened under, for messages only.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fails with [`AccessError::HardLinked`] unless this is the file's only name.
    pub fn single_link(self) -> Result<Self, AccessError> {
        if self.links > 1 {
            return Err(AccessError::HardLinked {
                path: self.path,
                links: self.links,
            });
        }
        Ok(self)
    }

    /// Its size when it was opened (`fstat`).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it was empty when opened.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads the whole file if it is at most `limit` bytes: the `fstat` size
    /// is checked first (a sparse 10 GiB file is refused without reading),
    /// and reading stops one byte past the limit in case the file grows.
    pub fn read_capped(mut self, limit: u64) -> Result<Vec<u8>, AccessError> {
        if self.len > limit {
            return Err(AccessError::TooLarge {
                path: self.path,
                size: self.len,
                limit,
            });
        }
        let mut data = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
        let read = (&mut self.file)
            .take(limit.saturating_add(1))
            .read_to_end(&mut data);
        match read {
            Ok(n) if n as u64 > limit => Err(AccessError::TooLarge {
                path: self.path,
                size: n as u64,
                limit,
            }),
            Ok(_) => Ok(data),
            Err(source) => Err(AccessError::Io {
                path: self.path,
                source,
            }),
        }
    }

    /// The open file, for positioned reads.
    pub fn as_file(&self) -> &File {
        &self.file
    }

    /// The open file, for streaming reads.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }
}

impl AsFd for RegularFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}
