//! Where a run's session folder lives: behind the in-process FUSE mount, or on a real virtio-fs share into a VM.
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fs::CacheConfig;
use crate::mount::Mount;

/// A virtio-fs share of a running VM, and how to start a guest process in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmShare {
    /// The shared folder on the host (virtiofsd's `--shared-dir`).
    pub host_root: PathBuf,
    /// Where the VM mounts it.
    pub guest_root: PathBuf,
    /// The VM's agent (`host:port`), see [`crate::vm`].
    pub agent: String,
}

/// The folders of one run: the real session folder and what the guest opens.
pub struct Folders {
    tmp: tempfile::TempDir,
    /// The session folder on the host's own filesystem.
    pub real: PathBuf,
    vm: Option<VmShare>,
    mount: Option<Mount>,
}

/// Where a session folder of the harness sits below its run folder.
const SESSION: &str = "v2-sessions/ag-test/sess-test";

impl Folders {
    /// A fresh run folder: in a temp dir for FUSE, inside the share for a VM.
    pub fn new(vm: Option<&VmShare>) -> Result<Folders, String> {
        let tmp = match vm {
            None => tempfile::tempdir(),
            Some(share) => tempfile::Builder::new()
                .prefix("run-")
                .tempdir_in(&share.host_root),
        }
        .map_err(|e| format!("temp dir: {e}"))?;
        let real = tmp.path().join(SESSION);
        std::fs::create_dir_all(&real).map_err(|e| format!("{}: {e}", real.display()))?;
        Ok(Folders {
            tmp,
            real,
            vm: vm.cloned(),
            mount: None,
        })
    }

    /// Makes the folder reachable for guests with `cache` (mounts FUSE; a
    /// VM share is already there) and returns the path a guest opens.
    pub fn attach(&mut self, cache: CacheConfig) -> Result<PathBuf, String> {
        match &self.vm {
            Some(share) => {
                let name = self
                    .tmp
                    .path()
                    .file_name()
                    .ok_or("run folder has no name")?;
                Ok(share.guest_root.join(name).join(SESSION))
            }
            None => {
                let mnt = self.tmp.path().join("mnt");
                std::fs::create_dir_all(&mnt).map_err(|e| format!("{}: {e}", mnt.display()))?;
                let mount = Mount::new(&self.real, &mnt, cache)?;
                let path = mount.path().to_path_buf();
                self.mount = Some(mount);
                Ok(path)
            }
        }
    }

    /// The guest's path as the host can open it: only through a local FUSE mount.
    pub fn local_mount(&self) -> Option<&Path> {
        self.mount.as_ref().map(Mount::path)
    }

    /// Unmounts (FUSE) before the host verifies the files.
    pub fn detach(&mut self) {
        self.mount = None;
    }

    /// The command that runs `airlock-crossmount guest …`: locally, or through the VM's agent.
    pub fn guest_command(&self, exe: &Path) -> Command {
        let mut cmd = Command::new(exe);
        if let Some(share) = &self.vm {
            cmd.arg("vm-exec").arg(&share.agent).arg("--");
        }
        cmd.arg("guest");
        cmd
    }
}
