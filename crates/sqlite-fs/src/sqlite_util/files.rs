//! File-type checks for paths the guest can replace (symlink, FIFO, folder).

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use crate::error::{Error, Result};

/// What is at a path the guest may have touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// Nothing.
    Absent,
    /// A regular file of this many bytes.
    Regular(u64),
}

/// `lstat`s `path`: a regular file or nothing is fine, anything else
/// (symlink, FIFO, socket, device, folder) is [`Error::UnsafeFile`].
pub fn check_regular_or_absent(path: &Path) -> Result<FileState> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            let ft = meta.file_type();
            if ft.is_file() {
                return Ok(FileState::Regular(meta.len()));
            }
            let what = if ft.is_symlink() {
                "it is a symbolic link"
            } else if ft.is_fifo() {
                "it is a FIFO"
            } else if ft.is_dir() {
                "it is a folder"
            } else if ft.is_socket() {
                "it is a socket"
            } else {
                "it is a device"
            };
            Err(Error::UnsafeFile {
                path: path.to_path_buf(),
                what: what.into(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileState::Absent),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// `path` made absolute with every symlink in it resolved, as far as it
/// exists (the rest is appended as given): a data dir is resolved once, at
/// start-up, so symlinks in its own path (macOS's `/tmp`) are the user's
/// choice, and everything below it is opened without following any.
pub fn canonical_dir(path: &Path) -> std::path::PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    let mut missing = Vec::new();
    let mut existing = absolute.as_path();
    loop {
        if let Ok(resolved) = std::fs::canonicalize(existing) {
            return missing
                .iter()
                .rev()
                .fold(resolved, |acc, part| acc.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_owned());
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

/// Whether this process cannot write at `path` (or, if it does not exist,
/// at its nearest existing ancestor): a read-only filesystem or mount, or
/// no write permission. Read commands then avoid every write.
pub fn is_read_only(path: &Path) -> bool {
    use rustix::fs::{Access, access};
    let mut at = path;
    loop {
        match access(at, Access::WRITE_OK) {
            Ok(()) => return false,
            Err(rustix::io::Errno::NOENT) => match at.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => at = parent,
                _ => return false,
            },
            Err(rustix::io::Errno::ROFS | rustix::io::Errno::ACCESS | rustix::io::Errno::PERM) => {
                return true;
            }
            Err(_) => return false,
        }
    }
}

/// Whether the file system holding `path` (or its nearest existing
/// ancestor) is mounted read-only: unlike [`is_read_only`], a missing
/// permission does not count.
pub fn on_read_only_mount(path: &Path) -> bool {
    statvfs_near(path).is_some_and(|s| s.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
}

/// The bytes an unprivileged writer may still use on the file system
/// holding `path` (or its nearest existing ancestor).
pub fn free_space(path: &Path) -> Option<u64> {
    statvfs_near(path).map(|s| s.f_bavail.saturating_mul(s.f_frsize))
}

fn statvfs_near(path: &Path) -> Option<rustix::fs::StatVfs> {
    let mut at = path;
    loop {
        match rustix::fs::statvfs(at) {
            Ok(s) => return Some(s),
            Err(rustix::io::Errno::NOENT) => match at.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => at = parent,
                _ => return None,
            },
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_dir_resolves_symlinks_in_the_existing_part_only() {
        let tmp = std::env::temp_dir().join(format!("airlock-canon-{}", std::process::id()));
        std::fs::create_dir_all(tmp.join("real")).unwrap();
        let link = tmp.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(tmp.join("real"), &link).unwrap();
        let real = std::fs::canonicalize(tmp.join("real")).unwrap();
        assert_eq!(canonical_dir(&link), real);
        assert_eq!(canonical_dir(&link.join("a/b")), real.join("a/b"));
        assert!(canonical_dir(Path::new("rel")).is_absolute());
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
