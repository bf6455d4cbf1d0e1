//! Starting the virtiofsd daemons and the VM, with `/dev/kvm` when it boots and TCG when it does not.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::assets::Virtiofsd;

/// The VM's mount points of the shares live below this folder.
pub const GUEST_ROOT: &str = "/mnt";
/// The port the agent listens on inside the VM.
const AGENT_PORT: u16 = 7000;
/// The line init prints once the shares are mounted and the agent starts.
pub const UP_LINE: &str = "AIRLOCK-VM: up";

/// A child process that is killed and reaped when dropped.
pub struct Guarded(pub Child);

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One share: its virtiofs tag (also its folder name) and the daemon's cache flags.
pub struct Share {
    /// Tag and folder name (`never`, `auto`, `always`, `auto-wb`).
    pub tag: &'static str,
    /// virtiofsd `--cache` value.
    pub cache: &'static str,
    /// virtiofsd `--writeback`.
    pub writeback: bool,
}

/// The four shares, one per cache mode the suite judges.
pub const SHARES: [Share; 4] = [
    Share {
        tag: "never",
        cache: "never",
        writeback: false,
    },
    Share {
        tag: "auto",
        cache: "auto",
        writeback: false,
    },
    Share {
        tag: "always",
        cache: "always",
        writeback: false,
    },
    Share {
        tag: "auto-wb",
        cache: "auto",
        writeback: true,
    },
];

/// Starts one daemon per share of `root`; returns them with their sockets.
pub fn start_daemons(
    daemon: &Virtiofsd,
    root: &Path,
    sockets: &Path,
) -> Result<Vec<(Guarded, PathBuf)>, String> {
    let mut out = Vec::new();
    for share in &SHARES {
        let dir = root.join(share.tag);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let socket = sockets.join(format!("{}.sock", share.tag));
        let _ = std::fs::remove_file(&socket);
        let mut cmd = match daemon {
            Virtiofsd::Rust(bin) => {
                let mut c = Command::new(bin);
                c.arg(format!("--socket-path={}", socket.display()))
                    .arg(format!("--shared-dir={}", dir.display()))
                    .arg(format!("--cache={}", share.cache))
                    .args(["--sandbox=none", "--seccomp=none"]);
                if share.writeback {
                    c.arg("--writeback");
                }
                c
            }
            Virtiofsd::Qemu(bin) => {
                let cache = if share.cache == "never" {
                    "none"
                } else {
                    share.cache
                };
                let mut c = Command::new(bin);
                c.arg(format!("--socket-path={}", socket.display()))
                    .arg("-o")
                    .arg(format!("source={},cache={cache}", dir.display()));
                if share.writeback {
                    c.args(["-o", "writeback"]);
                }
                c
            }
        };
        let log = std::fs::File::create(sockets.join(format!("{}.log", share.tag)))
            .map_err(|e| e.to_string())?;
        let child = cmd
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting virtiofsd: {e}"))?;
        out.push((Guarded(child), socket));
    }
    let until = Instant::now() + Duration::from_secs(20);
    while out.iter().any(|(_, s)| !s.exists()) {
        if Instant::now() > until {
            return Err(format!(
                "virtiofsd did not create its sockets in {} within 20 s (logs there)",
                sockets.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(out)
}

/// What the VM boots.
pub struct Boot<'a> {
    /// qemu binary.
    pub qemu: &'a str,
    /// Kernel image.
    pub kernel: &'a Path,
    /// Initramfs.
    pub initrd: &'a Path,
    /// One socket per entry of [`SHARES`].
    pub sockets: &'a [PathBuf],
    /// Where the serial console goes.
    pub console: &'a Path,
}

/// A running VM.
pub struct Vm {
    /// QEMU, killed when the VM is dropped.
    _qemu: Guarded,
    /// The agent's address on the host.
    pub agent: String,
    /// `kvm` or `tcg`.
    pub accel: &'static str,
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn start(boot: &Boot, accel: &str, port: u16) -> Result<Guarded, String> {
    let mut c = Command::new(boot.qemu);
    c.args(["-machine", &format!("q35,accel={accel}")])
        .args(["-cpu", if accel == "kvm" { "host" } else { "max" }])
        .args(["-smp", "1", "-m", "1G"])
        .args(["-object", "memory-backend-memfd,id=mem,size=1G,share=on"])
        .args(["-numa", "node,memdev=mem"])
        .args(["-display", "none", "-monitor", "none", "-no-reboot"])
        .arg("-serial")
        .arg(format!("file:{}", boot.console.display()))
        .arg("-kernel")
        .arg(boot.kernel)
        .arg("-initrd")
        .arg(boot.initrd)
        .args(["-append", "console=ttyS0 panic=-1"])
        .args([
            "-netdev",
            &format!("user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:{AGENT_PORT}"),
        ])
        .args(["-device", "virtio-net-pci,netdev=n0,romfile="]);
    for (i, (share, socket)) in SHARES.iter().zip(boot.sockets).enumerate() {
        c.arg("-chardev")
            .arg(format!("socket,id=fs{i},path={}", socket.display()))
            .arg("-device")
            .arg(format!("vhost-user-fs-pci,chardev=fs{i},tag={}", share.tag));
    }
    let log = std::fs::File::create(boot.console.with_extension("qemu.log"))
        .map_err(|e| e.to_string())?;
    let child = c
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", boot.qemu))?;
    Ok(Guarded(child))
}

/// Waits until the agent answers a clock request; `Err` with the console's tail when QEMU exits or time runs out.
fn wait_up(
    vm: &mut Guarded,
    crossmount: &Path,
    agent: &str,
    console: &Path,
    limit: Duration,
    silent_limit: Option<Duration>,
) -> Result<(), String> {
    let until = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = vm.0.try_wait() {
            let err =
                std::fs::read_to_string(console.with_extension("qemu.log")).unwrap_or_default();
            return Err(format!(
                "QEMU exited ({status}): {} {}",
                err.trim(),
                tail(console)
            ));
        }
        let up = std::fs::read_to_string(console).is_ok_and(|c| c.contains(UP_LINE));
        if up
            && Command::new(crossmount)
                .args(["vm-clock", agent])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        {
            return Ok(());
        }
        if Instant::now() > until {
            return Err(format!(
                "no agent within {} s; console: {}",
                limit.as_secs(),
                tail(console)
            ));
        }
        if silent_limit.is_some_and(|l| Instant::now() > until - limit + l)
            && std::fs::metadata(console).map_or(0, |m| m.len()) == 0
        {
            return Err(format!(
                "the guest printed nothing within {} s (a /dev/kvm that cannot run this kernel, \
                 such as kvm_pvm, hangs like this)",
                silent_limit.unwrap_or_default().as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The last lines of the console log, for error messages.
pub fn tail(console: &Path) -> String {
    let text = std::fs::read_to_string(console).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join(" | ")
}

/// Accelerators to try for `accel` (`auto`, `kvm`, `tcg`): KVM first when `/dev/kvm` opens.
pub fn accel_tries(accel: &str) -> Vec<&'static str> {
    let kvm_usable = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    match accel {
        "kvm" => vec!["kvm"],
        "tcg" => vec!["tcg"],
        _ if kvm_usable => vec!["kvm", "tcg"],
        _ => vec!["tcg"],
    }
}

/// Boots with `accel` and waits for the agent (KVM gets less time: a broken
/// `/dev/kvm` hangs or dies early, and TCG is still to try).
pub fn boot(boot: &Boot, crossmount: &Path, accel: &'static str) -> Result<Vm, String> {
    let port = free_port()?;
    let agent = format!("127.0.0.1:{port}");
    let _ = std::fs::remove_file(boot.console);
    let mut qemu = start(boot, accel, port)?;
    let (limit, silent) = if accel == "kvm" {
        (Duration::from_secs(60), Some(Duration::from_secs(20)))
    } else {
        (Duration::from_secs(400), None)
    };
    wait_up(&mut qemu, crossmount, &agent, boot.console, limit, silent)?;
    Ok(Vm {
        _qemu: qemu,
        agent,
        accel,
    })
}
