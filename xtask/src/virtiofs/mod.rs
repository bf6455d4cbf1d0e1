//! `cargo xtask virtiofs`: the cross-mount suite on real virtio-fs, with the guest inside a QEMU VM.
//!
//! Everything comes from the package registries: Debian's `qemu-system-x86`,
//! `busybox-static`, `seabios` and `linux-image-amd64` (unpacked, not
//! installed), virtiofsd from crates.io (QEMU's C daemon as a fallback), all
//! cached under `~/.cache/airlock/virtiofs`. The VM has 1 vCPU and 1 GiB of
//! shared memfd memory, and one virtiofs device per cache mode (`never`,
//! `auto`, `always`, `auto` + `--writeback`). Its init mounts them and runs
//! `airlock-crossmount agent`; the harness runs on the host and starts each
//! guest through it (`vm-exec`, which also moves the guest's times onto the
//! host's clock by a round-trip measured offset).
//!
//! Under TCG (no working `/dev/kvm`) the guest is slow: messages go at
//! about 1.5 a second and latency is reported, not judged. With KVM the
//! FUSE suite's sizes and bounds apply.

mod assets;
mod initramfs;
mod vm;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::run_command;

const USAGE: &str = "usage: cargo xtask virtiofs [--short] [--accel auto|kvm|tcg] [HARNESS FLAGS]
  --short      CI's form: fewer messages, every control once
  --accel      auto (default) tries /dev/kvm, then TCG
  other flags go to airlock-crossmount run (e.g. --mount-check-rounds 1,
               --only NC3 --runs 10)";

/// The VM's `/init`.
fn init_script(modules: &[String]) -> String {
    let mut s = String::from(
        "#!/bin/busybox sh\n\
         B=/bin/busybox\n\
         $B mkdir -p /proc /sys /dev /tmp /mnt\n\
         $B mount -t proc proc /proc\n\
         $B mount -t sysfs sys /sys\n\
         $B mount -t devtmpfs dev /dev\n\
         $B mount -t tmpfs tmp /tmp\n",
    );
    for m in modules {
        s.push_str(&format!("$B insmod /lib/modules/{m}\n"));
    }
    for share in &vm::SHARES {
        let t = share.tag;
        s.push_str(&format!(
            "$B mkdir -p {root}/{t} && $B mount -t virtiofs {t} {root}/{t} || echo 'AIRLOCK-VM: mount {t} failed'\n",
            root = vm::GUEST_ROOT
        ));
    }
    s.push_str(
        "$B ip link set lo up\n\
         $B ip addr add 10.0.2.15/24 dev eth0\n\
         $B ip link set eth0 up\n\
         $B ip route add default via 10.0.2.2\n\
         export TMPDIR=/tmp HOME=/tmp\n",
    );
    s.push_str(&format!(
        "echo '{}'\nexec /bin/airlock-crossmount agent 0.0.0.0:7000\n",
        vm::UP_LINE
    ));
    s
}

/// Builds the initramfs: busybox, the harness binary and its libraries, the modules, `/init`.
fn initramfs(kernel: &assets::Kernel, crossmount: &Path, out: &Path) -> Result<(), String> {
    let mut c = initramfs::Cpio::default();
    for d in [
        "bin",
        "lib",
        "lib64",
        "lib/modules",
        "lib/x86_64-linux-gnu",
        "mnt",
        "tmp",
    ] {
        c.dir(d);
    }
    c.copy("bin/busybox", Path::new("/bin/busybox"))?;
    c.copy("bin/airlock-crossmount", crossmount)?;
    for lib in assets::shared_libs(crossmount)? {
        let name = lib.to_string_lossy().trim_start_matches('/').to_owned();
        c.copy(&name, &lib)?;
    }
    let mut names = Vec::new();
    for ko in assets::module_load_order(&kernel.modules)? {
        let name = ko
            .file_name()
            .ok_or("module without a name")?
            .to_string_lossy()
            .into_owned();
        c.copy(&format!("lib/modules/{name}"), &ko)?;
        names.push(name);
    }
    c.file("init", 0o755, init_script(&names).as_bytes());
    std::fs::write(out, c.finish()).map_err(|e| format!("{}: {e}", out.display()))
}

/// Entry point: `cargo xtask virtiofs [ARGS]`.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut short = false;
    let mut accel = "auto".to_owned();
    let mut harness = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--short" => short = true,
            "--accel" => accel = it.next().ok_or("--accel needs a value")?.clone(),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => harness.push(a.clone()),
        }
    }
    let cache = assets::cache_dir();
    let work = cache.join("run");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    assets::host_packages()?;
    let kernel = assets::kernel()?;
    let daemon = assets::virtiofsd()?;
    let crossmount = assets::crossmount_binary()?;
    let initrd = work.join("initramfs.cpio");
    initramfs(&kernel, &crossmount, &initrd)?;
    let shares = work.join("shares");
    let console = work.join("console.log");
    let mut failures = Vec::new();
    for accel in vm::accel_tries(&accel) {
        // virtiofsd serves one VM connection: fresh daemons for every boot.
        let daemons = vm::start_daemons(&daemon, &shares, &work)?;
        let sockets: Vec<PathBuf> = daemons.iter().map(|(_, s)| s.clone()).collect();
        let boot = vm::Boot {
            qemu: "qemu-system-x86_64",
            kernel: &kernel.image,
            initrd: &initrd,
            sockets: &sockets,
            console: &console,
        };
        match vm::boot(&boot, &crossmount, accel) {
            Ok(machine) => {
                let r = suite(&crossmount, &machine, &shares, short, &harness);
                drop(machine);
                drop(daemons);
                return r;
            }
            Err(e) => {
                eprintln!("virtiofs: booting with {accel} failed: {e}");
                failures.push(format!("{accel}: {e}"));
            }
        }
    }
    Err(format!("the VM did not come up: {}", failures.join("; ")))
}

/// Runs the harness against the booted VM and prints the clock offset before and after.
fn suite(
    crossmount: &Path,
    machine: &vm::Vm,
    shares: &Path,
    short: bool,
    harness: &[String],
) -> Result<(), String> {
    let clock = || {
        let mut c = Command::new(crossmount);
        c.args(["vm-clock", &machine.agent]);
        run_command(c)
    };
    println!(
        "virtiofs: VM up with {} ({}), agent {}",
        machine.accel,
        if machine.accel == "kvm" {
            "latency judged"
        } else {
            "software emulation: reduced rate, latency reported, not judged"
        },
        machine.agent
    );
    clock()?;
    let mut c = Command::new(crossmount);
    c.arg("run")
        .arg("--vm")
        .arg(&machine.agent)
        .arg(shares)
        .arg(vm::GUEST_ROOT);
    if machine.accel != "kvm" {
        c.args(["--no-latency", "--write-ms", "700", "--poll-ms", "200"]);
    }
    let (messages, controls, runs) = if short {
        ("30", "20", "1")
    } else {
        ("200", "60", "2")
    };
    c.args([
        "--messages",
        messages,
        "--control-messages",
        controls,
        "--runs",
        runs,
    ]);
    c.args(harness);
    let result = run_command(c);
    let _ = clock();
    result.map_err(|e| format!("virtio-fs suite failed: {e}"))
}
