//! The block-device plumbing of the power-loss scenario: making an ext4
//! image, attaching loop devices, mounting, and checking the filesystem
//! after a cut. Every guard undoes itself on drop, so no mount or loop
//! device outlives the scenario.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Size of the simulated disk: room for the run's attachments and journal.
pub const DISK_SIZE: u64 = 128 << 20;

/// Runs `program args…`; a failure names the command and its stderr.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("starting {program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(format!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Why this machine cannot run the scenario, if it cannot.
pub fn unavailable() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("needs root (loop devices and mounts)".into());
    }
    for tool in ["mkfs.ext4", "e2fsck", "losetup", "mount", "umount"] {
        if run("sh", &["-c", &format!("command -v {tool}")]).is_err() {
            return Some(format!("{tool} is not installed"));
        }
    }
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        return Some(format!("cannot open /dev/fuse: {e}"));
    }
    None
}

/// A fresh ext4 image (4 KiB blocks, journal and inode tables written up
/// front so no lazy initialisation writes into the run), read into memory.
pub fn ext4_image(scratch: &Path) -> Result<Vec<u8>, String> {
    let path = scratch.to_str().ok_or("non-UTF-8 scratch path")?;
    let file = std::fs::File::create(scratch).map_err(|e| format!("{path}: {e}"))?;
    file.set_len(DISK_SIZE)
        .map_err(|e| format!("{path}: {e}"))?;
    drop(file);
    run(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-b",
            "4096",
            "-E",
            "lazy_itable_init=0,lazy_journal_init=0",
            path,
        ],
    )?;
    let image = std::fs::read(scratch).map_err(|e| format!("{path}: {e}"));
    let _ = std::fs::remove_file(scratch);
    image
}

/// An attached loop device; dropping it detaches.
pub struct Loop {
    dev: String,
}

impl Loop {
    /// Attaches `file` to a free loop device.
    pub fn attach(file: &Path) -> Result<Loop, String> {
        let file = file.to_str().ok_or("non-UTF-8 image path")?;
        let dev = run("losetup", &["--find", "--show", file])?;
        Ok(Loop { dev })
    }

    /// `/dev/loopN`.
    pub fn dev(&self) -> &str {
        &self.dev
    }

    /// `e2fsck -fn`: the filesystem's own consistency after a cut and its
    /// journal's replay (read-only; an error is what e2fsck found).
    pub fn fsck(&self) -> Result<(), String> {
        run("e2fsck", &["-f", "-n", &self.dev]).map(drop)
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = run("losetup", &["--detach", &self.dev]);
    }
}

/// A mounted ext4; dropping it unmounts.
pub struct Mounted {
    point: PathBuf,
}

impl Mounted {
    /// Mounts `dev` at `point` (mounting replays ext4's journal, as a boot does).
    pub fn new(dev: &Loop, point: &Path) -> Result<Mounted, String> {
        std::fs::create_dir_all(point).map_err(|e| format!("{}: {e}", point.display()))?;
        let at = point.to_str().ok_or("non-UTF-8 mount point")?;
        run("mount", &["-t", "ext4", dev.dev(), at])?;
        Ok(Mounted {
            point: point.to_path_buf(),
        })
    }

    /// `syncfs`: everything written so far is durable after it.
    pub fn sync(&self) -> Result<(), String> {
        let at = self.point.to_str().ok_or("non-UTF-8 mount point")?;
        run("sync", &["-f", at]).map(drop)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(at) = self.point.to_str()
            && run("umount", &[at]).is_err()
        {
            let _ = run("umount", &["-l", at]);
        }
    }
}
