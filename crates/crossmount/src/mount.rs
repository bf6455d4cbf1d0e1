//! Mounting the passthrough filesystem, and a guard that always unmounts it.
use std::path::{Path, PathBuf};
use std::process::Command;

use fuser::{BackgroundSession, Config, MountOption};

use crate::fs::{CacheConfig, PassthroughFs};

/// Why FUSE cannot be used here, or `None` when a mount can be tried.
pub fn fuse_unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 && !Path::new("/usr/bin/fusermount3").exists() {
        return Some(format!("not root (euid {euid}) and no fusermount3"));
    }
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        Ok(_) => None,
        Err(e) => Some(format!("cannot open /dev/fuse: {e}")),
    }
}

/// Lazily unmounts harness mounts whose server is gone (a run killed by a signal
/// cannot run its Drop guards); live mounts of concurrent runs are left alone.
pub fn sweep_dead_mounts() {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(source), Some(point)) = (fields.next(), fields.next()) else {
            continue;
        };
        if source != FS_NAME {
            continue;
        }
        let dead =
            matches!(std::fs::metadata(point), Err(e) if e.raw_os_error() == Some(libc::ENOTCONN));
        if dead {
            let _ = Command::new("umount").arg("-l").arg(point).status();
        }
    }
}

/// The source name of every harness mount (`mount | grep airlock-crossmount`).
pub const FS_NAME: &str = "airlock-crossmount";

/// A mounted passthrough filesystem; dropping it unmounts, even while unwinding.
#[derive(Debug)]
pub struct Mount {
    session: Option<BackgroundSession>,
    mountpoint: PathBuf,
    cache: CacheConfig,
}

impl Mount {
    /// Mounts `real` at `mountpoint` with the given cache behaviour.
    pub fn new(real: &Path, mountpoint: &Path, cache: CacheConfig) -> Result<Mount, String> {
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName(FS_NAME.into()),
            MountOption::Subtype(FS_NAME.into()),
            MountOption::NoAtime,
        ];
        let fs = PassthroughFs::new(real, cache);
        let session = fuser::spawn_mount(fs, mountpoint, &config).map_err(|e| {
            format!(
                "mounting {} at {}: {e}",
                real.display(),
                mountpoint.display()
            )
        })?;
        Ok(Mount {
            session: Some(session),
            mountpoint: mountpoint.to_path_buf(),
            cache,
        })
    }

    /// Where the filesystem is mounted.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// The cache behaviour it was mounted with.
    pub fn cache(&self) -> CacheConfig {
        self.cache
    }
}

fn is_mounted(p: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return false;
    };
    let p = p.to_string_lossy();
    mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1).is_some_and(|m| m == p))
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let _ = session.umount_and_join();
        }
        // Belt and braces: a mount must never outlive the harness.
        if is_mounted(&self.mountpoint) {
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg(&self.mountpoint)
                .status();
        }
        if is_mounted(&self.mountpoint) {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&self.mountpoint)
                .status();
        }
    }
}
