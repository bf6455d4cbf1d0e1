//! Which boot of the machine and which mount of the host-state filesystem
//! a publish record was written under.
//!
//! Within one mount, in one boot, every process (and every guest, through
//! the bind mount) reads a file from the same page cache, and a killed
//! process loses none of what it wrote: only a power cut, a kernel crash or
//! a filesystem that went away loses unsynced writes, and each of those
//! ends the boot or the mount. So a publish need not sync the published
//! `inbound.db` when its record carries this instance: a record written
//! under another instance is never trusted, and the file is rebuilt from
//! `host.db` (whose commits do sync) before the host uses it again.
//!
//! Where the instance cannot be told apart for sure (no boot id, or a
//! kernel before 6.8 whose mount ids are reused), there is none, and every
//! publish syncs as before.

use std::path::Path;
use std::sync::OnceLock;

use rustix::fs::{AtFlags, CWD, StatxFlags};

/// `STATX_MNT_ID_UNIQUE` (Linux 6.8): a mount id never reused while the
/// machine runs.
const STATX_MNT_ID_UNIQUE: u32 = 0x4000;

/// A boot of the machine and a mount in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Instance {
    /// `/proc/sys/kernel/random/boot_id`, as a number.
    pub(crate) boot: u128,
    /// The mount's unique id.
    pub(crate) mount: u64,
}

impl Instance {
    /// As the record stores it: `<boot, hex>-<mount>`.
    pub(crate) fn to_text(self) -> String {
        format!("{:032x}-{}", self.boot, self.mount)
    }

    /// The stored form back (`None` for anything else).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (boot, mount) = text.split_once('-')?;
        Some(Self {
            boot: u128::from_str_radix(boot, 16).ok()?,
            mount: mount.parse().ok()?,
        })
    }
}

/// This boot's id, read once.
fn boot_id() -> Option<u128> {
    static BOOT: OnceLock<Option<u128>> = OnceLock::new();
    *BOOT.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let hex: String = text.trim().chars().filter(|c| *c != '-').collect();
        (hex.len() == 32).then(|| u128::from_str_radix(&hex, 16).ok())?
    })
}

/// The instance `dir` lives in now; `None` where it cannot be known.
pub(crate) fn of(dir: &Path) -> Option<Instance> {
    let boot = boot_id()?;
    let st = rustix::fs::statx(
        CWD,
        dir,
        AtFlags::empty(),
        StatxFlags::from_bits_retain(STATX_MNT_ID_UNIQUE),
    )
    .ok()?;
    (st.stx_mask & STATX_MNT_ID_UNIQUE != 0).then_some(Instance {
        boot,
        mount: st.stx_mnt_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_folder_has_one_instance_that_survives_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let Some(instance) = of(dir.path()) else {
            // A kernel before 6.8: there is none, and publishes sync.
            return;
        };
        assert_eq!(of(dir.path()), Some(instance));
        assert_eq!(Instance::parse(&instance.to_text()), Some(instance));
        assert!(!instance.to_text().contains(char::is_whitespace));
        assert_eq!(Instance::parse("-"), None);
    }
}
