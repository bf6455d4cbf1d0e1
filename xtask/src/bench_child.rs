//! Runs one workload of the bench binary as a child process: its figures
//! come from its stdout, its peak memory from the kernel (`wait4`'s
//! `ru_maxrss`), so nothing inside the measured process has to be trusted
//! to report its own memory.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

/// What one child run reported.
pub struct ChildRun {
    /// `(key, value)` per `figure` line, in order.
    pub figures: Vec<(String, f64)>,
    /// Peak resident memory of the child, in bytes.
    pub peak_rss_bytes: u64,
}

/// Runs `binary <workload> <args…> --dir <dir> [--quick]` and waits for it.
pub fn run(
    binary: &Path,
    workload: &str,
    args: &[&str],
    dir: &Path,
    quick: bool,
) -> Result<ChildRun, String> {
    let mut cmd = Command::new(binary);
    cmd.arg(workload).args(args).arg("--dir").arg(dir);
    if quick {
        cmd.arg("--quick");
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", binary.display()))?;
    let mut stdout = String::new();
    let read = child
        .stdout
        .take()
        .ok_or("the child has no stdout")?
        .read_to_string(&mut stdout);
    let (status, peak_rss_bytes) = wait4(child.id())?;
    read.map_err(|e| format!("reading {workload}'s output: {e}"))?;
    if status != 0 {
        return Err(format!(
            "workload {workload} failed (wait status {status:#x})"
        ));
    }
    Ok(ChildRun {
        figures: parse(workload, &stdout)?,
        peak_rss_bytes,
    })
}

/// `figure <key> <value>` lines; anything else is an error (a protocol change).
fn parse(workload: &str, stdout: &str) -> Result<Vec<(String, f64)>, String> {
    stdout
        .lines()
        .map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next(), words.next()) {
                (Some("figure"), Some(key), Some(value), None) => value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .map(|v| (key.to_owned(), v))
                    .ok_or_else(|| format!("{workload}: bad value in {line:?}")),
                _ => Err(format!("{workload}: unexpected output line {line:?}")),
            }
        })
        .collect()
}

/// Reaps `pid`, returning its wait status and its peak RSS in bytes.
fn wait4(pid: u32) -> Result<(i32, u64), String> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| format!("pid {pid} out of range"))?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live locals; `pid` is our own
        // unreaped child (std's `Child` is never waited on after this).
        let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if got == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("waiting for pid {pid}: {err}"));
        }
    }
    // Linux reports ru_maxrss in KiB.
    let kib = u64::try_from(usage.ru_maxrss).unwrap_or(0);
    Ok((status, kib * 1024))
}

/// Whether `dir` is on tmpfs or ramfs, where fsync costs nothing.
pub fn is_memory_fs(dir: &Path) -> Result<bool, String> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| format!("{} contains a NUL byte", dir.display()))?;
    // SAFETY: an all-zero statfs is a valid value of this plain C struct.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `fs` is a live local.
    if unsafe { libc::statfs(path.as_ptr(), &mut fs) } != 0 {
        let err = std::io::Error::last_os_error();
        return Err(format!("statfs {}: {err}", dir.display()));
    }
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    const RAMFS_MAGIC: i64 = 0x8584_58f6;
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between targets
    let kind = fs.f_type as i64;
    Ok(kind == TMPFS_MAGIC || kind == RAMFS_MAGIC)
}
