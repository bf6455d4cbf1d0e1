//! The session folder through a held directory handle: every look at a
//! guest-reachable name is `O_NOFOLLOW|O_NONBLOCK` or `AT_SYMLINK_NOFOLLOW`,
//! so a symlink is never followed and a FIFO never blocks the host.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, RenameFlags, Stat};
use rustix::io::Errno;

use crate::error::{Error, Result};

/// `inbound.db` in the session folder.
pub(crate) const INBOUND: &str = "inbound.db";
/// Its rollback journal, the name SQLite would look for beside it.
pub(crate) const JOURNAL: &str = "inbound.db-journal";
/// Side files the host never writes beside `inbound.db`.
pub(crate) const SIDE_FILES: [&str; 3] = [JOURNAL, "inbound.db-wal", "inbound.db-shm"];

/// The identity of a file as `fstat` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) size: u64,
    pub(crate) ctime_ns: i128,
}

impl FileId {
    /// From a `stat` result.
    pub(crate) fn of(st: &Stat) -> FileId {
        FileId {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size.max(0) as u64,
            ctime_ns: i128::from(st.st_ctime) * 1_000_000_000 + i128::from(st.st_ctime_nsec),
        }
    }
}

/// What a guest-reachable name holds, read without following or blocking.
#[derive(Debug)]
pub(crate) enum Entry {
    /// Nothing.
    Absent,
    /// A regular file, open read-only, with its `fstat`.
    File(std::fs::File, Stat),
    /// Something else (symlink, FIFO, folder, device): described.
    Other(&'static str),
}

/// Describes a non-regular file type.
pub(crate) fn describe(ft: FileType) -> &'static str {
    match ft {
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Directory => "a folder",
        FileType::Socket => "a socket",
        FileType::RegularFile => "a regular file",
        _ => "a device",
    }
}

/// A held handle on one session folder.
#[derive(Debug)]
pub(crate) struct Folder {
    fd: OwnedFd,
    path: PathBuf,
}

impl Folder {
    /// Opens the session folder itself (its own name is the host's).
    pub(crate) fn open(path: &Path) -> Result<Folder> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(CWD, path, flags, Mode::empty())
            .map_err(|e| Error::io(path, e.into()))?;
        Ok(Folder {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The folder's path, for messages.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// `path/name`, for messages.
    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Opens `name` read-only if it is a regular file; never blocks, never follows.
    pub(crate) fn open_entry(&self, name: &str) -> Result<Entry> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => {
                let st =
                    rustix::fs::fstat(&fd).map_err(|e| Error::io(self.join(name), e.into()))?;
                match FileType::from_raw_mode(st.st_mode) {
                    FileType::RegularFile => Ok(Entry::File(fd.into(), st)),
                    ft => Ok(Entry::Other(describe(ft))),
                }
            }
            Err(Errno::NOENT) => Ok(Entry::Absent),
            Err(Errno::LOOP) => Ok(Entry::Other("a symbolic link")),
            // A FIFO/socket/device that refuses a non-blocking open is still foreign.
            Err(Errno::NXIO | Errno::ACCESS | Errno::PERM) => self.kind_only(name),
            Err(e) => Err(Error::io(self.join(name), e.into())),
        }
    }

    fn kind_only(&self, name: &str) -> Result<Entry> {
        Ok(match self.stat(name)? {
            None => Entry::Absent,
            Some(st) => Entry::Other(describe(FileType::from_raw_mode(st.st_mode))),
        })
    }

    /// `fstatat(name, AT_SYMLINK_NOFOLLOW)`; `None` when absent. Never opens it.
    pub(crate) fn stat(&self, name: &str) -> Result<Option<Stat>> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(Error::io(self.join(name), e.into())),
        }
    }

    /// Moves `name` into `quarantine` (same file system), never replacing a
    /// file there. Returns where it went, or `None` when it was already gone.
    pub(crate) fn quarantine(&self, name: &str, quarantine: &Path) -> Result<Option<PathBuf>> {
        let open = || {
            rustix::fs::openat(
                CWD,
                quarantine,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
        };
        // Made by the first quarantine, not with every session.
        let qfd = match open() {
            Err(Errno::NOENT) => std::fs::create_dir_all(quarantine)
                .map_err(|e| Error::io(quarantine, e))
                .and_then(|()| open().map_err(|e| Error::io(quarantine, e.into())))?,
            other => other.map_err(|e| Error::io(quarantine, e.into()))?,
        };
        let millis = airlock_core::Timestamp::now().as_millis();
        for n in 0..1000 {
            let target = format!("{name}.{millis}.{n}");
            match rustix::fs::renameat_with(&self.fd, name, &qfd, &target, RenameFlags::NOREPLACE) {
                Ok(()) => return Ok(Some(quarantine.join(target))),
                Err(Errno::EXIST) => continue,
                Err(Errno::NOENT) => return Ok(None),
                Err(Errno::XDEV) => {
                    return Err(Error::NotOneFilesystem {
                        folder: self.path.clone(),
                        host_state: quarantine.to_path_buf(),
                    });
                }
                Err(e) => return Err(Error::io(self.join(name), e.into())),
            }
        }
        Err(Error::io(
            quarantine,
            std::io::Error::other("no free name in the quarantine folder"),
        ))
    }

    /// Makes `source` (a host-state path) the folder's `inbound.db`: a hard
    /// link under a fresh temporary name, renamed over whatever is there.
    pub(crate) fn link_inbound(&self, source: &Path) -> Result<()> {
        let pid = std::process::id();
        for n in 0..100u32 {
            let tmp = format!(".airlock-tmp-inbound-{pid}-{n}");
            match rustix::fs::linkat(CWD, source, &self.fd, &tmp, AtFlags::empty()) {
                Ok(()) => {
                    return rustix::fs::renameat(&self.fd, &tmp, &self.fd, INBOUND).map_err(|e| {
                        let _ = rustix::fs::unlinkat(&self.fd, &tmp, AtFlags::empty());
                        Error::io(self.join(INBOUND), e.into())
                    });
                }
                Err(Errno::EXIST) => continue,
                Err(Errno::XDEV) => {
                    return Err(Error::NotOneFilesystem {
                        folder: self.path.clone(),
                        host_state: source.to_path_buf(),
                    });
                }
                Err(e) => return Err(Error::io(self.join(&tmp), e.into())),
            }
        }
        Err(Error::io(
            self.join(INBOUND),
            std::io::Error::other("no free temporary name"),
        ))
    }

    /// Hard-links the folder's `name` to `target` in host state (no replace).
    pub(crate) fn link_out(&self, name: &str, target: &Path) -> Result<()> {
        rustix::fs::linkat(&self.fd, name, CWD, target, AtFlags::empty()).map_err(|e| {
            if e == Errno::XDEV {
                Error::NotOneFilesystem {
                    folder: self.path.clone(),
                    host_state: target.to_path_buf(),
                }
            } else {
                Error::io(self.join(name), e.into())
            }
        })
    }

    /// Moves the host-state file `source` in as `name`, never replacing
    /// anything. `Ok(false)` when something is already there.
    pub(crate) fn move_in(&self, source: &Path, name: &str) -> Result<bool> {
        match rustix::fs::renameat_with(CWD, source, &self.fd, name, RenameFlags::NOREPLACE) {
            Ok(()) => Ok(true),
            Err(Errno::EXIST) => Ok(false),
            Err(Errno::XDEV) => Err(Error::NotOneFilesystem {
                folder: self.path.clone(),
                host_state: source.to_path_buf(),
            }),
            Err(e) => Err(Error::io(self.join(name), e.into())),
        }
    }

    /// Moves `name` out to the host-state path `target` (replacing it).
    pub(crate) fn move_out(&self, name: &str, target: &Path) -> Result<()> {
        rustix::fs::renameat(&self.fd, name, CWD, target)
            .map_err(|e| Error::io(self.join(name), e.into()))
    }

    /// Removes the file `name` (not a folder); absent is fine.
    pub(crate) fn remove(&self, name: &str) -> Result<()> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(Error::io(self.join(name), e.into())),
        }
    }
}
