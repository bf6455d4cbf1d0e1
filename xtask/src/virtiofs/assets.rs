//! What the VM needs, from the package registries only, cached under `~/.cache/airlock/virtiofs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{cargo, project_root, run_command};

/// Debian packages installed on the host when missing.
const APT_PACKAGES: [&str; 3] = ["qemu-system-x86", "busybox-static", "seabios"];
/// What `cargo install virtiofsd` needs to link.
const VIRTIOFSD_BUILD_PACKAGES: [&str; 2] = ["libseccomp-dev", "libcap-ng-dev"];
/// Debian 12's C daemon, used when the crates.io one cannot be built.
const QEMU_VIRTIOFSD: &str = "/usr/lib/qemu/virtiofsd";
/// Kernel modules the VM's init loads (with their dependencies).
pub const MODULES: [&str; 3] = ["virtio_pci", "virtio_net", "virtiofs"];

/// The cache folder (`$XDG_CACHE_HOME/airlock/virtiofs`, else `~/.cache/…`).
pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/var/tmp"));
    base.join("airlock/virtiofs")
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

/// Installs whichever of `packages` is missing with apt-get.
fn apt_install(packages: &[&str]) -> Result<(), String> {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut update = Command::new("apt-get");
    update.arg("update");
    run_command(update)?;
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    run_command(install)
}

/// The packages QEMU and the initramfs need.
pub fn host_packages() -> Result<(), String> {
    apt_install(&APT_PACKAGES)
}

/// The guest kernel and its modules folder, from Debian's `linux-image-amd64`.
pub struct Kernel {
    /// The bzImage QEMU boots.
    pub image: PathBuf,
    /// `lib/modules/<version>`.
    pub modules: PathBuf,
}

fn output(command: &mut Command) -> Result<String, String> {
    let out = command
        .output()
        .map_err(|e| format!("{:?}: {e}", command.get_program()))?;
    if !out.status.success() {
        return Err(format!(
            "{:?} failed: {}",
            command.get_program(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn find_kernel(root: &Path) -> Option<Kernel> {
    let boot = std::fs::read_dir(root.join("boot")).ok()?;
    let image = boot.flatten().map(|e| e.path()).find(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
    })?;
    let version = image.file_name()?.to_string_lossy()["vmlinuz-".len()..].to_owned();
    let modules = root.join("lib/modules").join(version);
    modules.is_dir().then_some(Kernel { image, modules })
}

/// Downloads and unpacks (without installing) the kernel package once.
pub fn kernel() -> Result<Kernel, String> {
    let root = cache_dir().join("kernel");
    if let Some(k) = find_kernel(&root) {
        return Ok(k);
    }
    let deps = output(Command::new("apt-cache").args(["depends", "linux-image-amd64"]))?;
    let package = deps
        .lines()
        .find_map(|l| l.trim().strip_prefix("Depends: linux-image-"))
        .map(|v| format!("linux-image-{v}"))
        .ok_or(
            "apt-cache depends linux-image-amd64 names no kernel package (run apt-get update)",
        )?;
    let debs = cache_dir().join("deb");
    std::fs::create_dir_all(&debs).map_err(|e| e.to_string())?;
    run_command({
        let mut c = Command::new("apt-get");
        c.args(["download", &package]).current_dir(&debs);
        c
    })?;
    let deb = std::fs::read_dir(&debs)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains(&package))
        .ok_or_else(|| format!("apt-get download {package} left no .deb"))?;
    run_command({
        let mut c = Command::new("dpkg-deb");
        c.arg("-x").arg(&deb).arg(&root);
        c
    })?;
    find_kernel(&root).ok_or_else(|| format!("{} has no boot/vmlinuz-*", deb.display()))
}

/// Which virtiofsd runs the shares.
pub enum Virtiofsd {
    /// The Rust daemon from crates.io.
    Rust(PathBuf),
    /// QEMU's old C daemon (different flags).
    Qemu(PathBuf),
}

/// virtiofsd from crates.io (`cargo install virtiofsd --locked`, cached), else QEMU's C daemon.
pub fn virtiofsd() -> Result<Virtiofsd, String> {
    let root = cache_dir().join("virtiofsd");
    let bin = root.join("bin/virtiofsd");
    if bin.is_file() {
        return Ok(Virtiofsd::Rust(bin));
    }
    let built = apt_install(&VIRTIOFSD_BUILD_PACKAGES).and_then(|()| {
        let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        c.args(["install", "virtiofsd", "--locked", "--root"])
            .arg(&root);
        run_command(c)
    });
    match built {
        Ok(()) if bin.is_file() => Ok(Virtiofsd::Rust(bin)),
        other => {
            let why = other.err().unwrap_or_else(|| "no binary installed".into());
            if Path::new(QEMU_VIRTIOFSD).is_file() {
                eprintln!(
                    "virtiofs: cargo install virtiofsd failed ({why}); using {QEMU_VIRTIOFSD}"
                );
                Ok(Virtiofsd::Qemu(QEMU_VIRTIOFSD.into()))
            } else {
                Err(format!(
                    "no virtiofsd: cargo install failed ({why}) and {QEMU_VIRTIOFSD} is missing"
                ))
            }
        }
    }
}

/// Builds `airlock-crossmount` in release mode and returns its path
/// (`AIRLOCK_CROSSMOUNT_BIN` names a binary built already instead).
pub fn crossmount_binary() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("AIRLOCK_CROSSMOUNT_BIN") {
        return Ok(PathBuf::from(bin));
    }
    run_command(cargo(&["build", "--release", "-p", "airlock-crossmount"]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"));
    Ok(target.join("release/airlock-crossmount"))
}

/// The shared libraries `binary` loads, as `ldd` lists them (none for a static binary).
pub fn shared_libs(binary: &Path) -> Result<Vec<PathBuf>, String> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| format!("ldd: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter_map(|l| {
            let path = l.split("=>").last()?.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}

/// `depends=` of a module file, read from its `.modinfo` section.
fn module_depends(ko: &Path) -> Result<Vec<String>, String> {
    let bytes = std::fs::read(ko).map_err(|e| format!("{}: {e}", ko.display()))?;
    let key = b"\0depends=";
    let Some(at) = bytes.windows(key.len()).position(|w| w == key) else {
        return Ok(Vec::new());
    };
    let rest = &bytes[at + key.len()..];
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    Ok(String::from_utf8_lossy(&rest[..end])
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect())
}

/// The module files to load for [`MODULES`], dependencies first (built-in ones have no file).
pub fn module_load_order(modules: &Path) -> Result<Vec<PathBuf>, String> {
    let mut index = BTreeMap::new();
    let mut stack = vec![modules.join("kernel")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Some(name) = path.file_name().and_then(|n| n.to_str())
                && let Some(stem) = name.strip_suffix(".ko")
            {
                index.insert(stem.replace('-', "_"), path);
            }
        }
    }
    let mut order = Vec::new();
    let mut done = BTreeSet::new();
    fn visit(
        name: &str,
        index: &BTreeMap<String, PathBuf>,
        done: &mut BTreeSet<String>,
        order: &mut Vec<PathBuf>,
    ) -> Result<(), String> {
        if !done.insert(name.to_owned()) {
            return Ok(());
        }
        let Some(path) = index.get(name) else {
            return Ok(());
        };
        for dep in module_depends(path)? {
            visit(&dep, index, done, order)?;
        }
        order.push(path.clone());
        Ok(())
    }
    for m in MODULES {
        visit(m, &index, &mut done, &mut order)?;
    }
    Ok(order)
}
