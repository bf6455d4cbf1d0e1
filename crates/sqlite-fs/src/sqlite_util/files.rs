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
