//! Files a person named on the command line: their path is trusted, but
//! what is there may still be a FIFO or device, which must not block.

use std::io;
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::confined::{AccessError, RegularFile};

/// Opens a file a person named (a CLI argument): symlinks in `path` are
/// followed, that being the person's choice, but the open never blocks
/// (`O_NONBLOCK`: a FIFO or device is refused by `fstat`, never waited on).
pub fn open_named_file(path: &Path) -> Result<RegularFile, AccessError> {
    let io_err = |source: io::Error| AccessError::Io {
        path: path.to_path_buf(),
        source,
    };
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NXIO) => {
            return Err(AccessError::NotRegular {
                path: path.to_path_buf(),
                kind: "socket or device",
            });
        }
        Err(e) => return Err(io_err(e.into())),
    };
    RegularFile::from_fd(fd, path.to_path_buf())
}
