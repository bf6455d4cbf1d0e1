//! What the guest-kill, disk-full, read-only and io-sweep scenarios share:
//! a child killed at a random point while its confirmation lines are read,
//! a tmpfs of its own, and the final reads of the outbound side.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

use crate::airlock::{Airlock, text_of};

/// Runs `child` (stdout piped) to completion, or SIGKILLs it after `delay`;
/// returns the complete lines it printed (a line cut by the kill is no
/// confirmation) and whether it exited 0.
pub fn lines_until_killed(
    mut child: Child,
    delay: Option<Duration>,
) -> Result<(Vec<String>, bool), String> {
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            if line.ends_with(b"\n") {
                lines.push(String::from_utf8_lossy(&line).trim_end().to_owned());
            }
            line.clear();
        }
        lines
    });
    if let Some(delay) = delay {
        std::thread::sleep(delay);
        let _ = child.kill();
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for a child: {e}"))?;
    let lines = reader.join().map_err(|_| "reader thread panicked")?;
    Ok((lines, status.success()))
}

/// The texts of the session's outbound rows, as the host lists them.
pub fn outbound_texts(a: &Airlock) -> Result<Vec<(String, String)>, String> {
    let out = a.run(&[
        "messages",
        &a.session,
        "--direction",
        "out",
        "--limit",
        "1000000",
    ])?;
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("messages output: {e}"))?;
    Ok(v["out"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let text = r["content"].as_str().and_then(text_of)?;
            Some((r["id"].as_str()?.to_owned(), text))
        })
        .collect())
}

/// The texts of the session's inbound rows.
pub fn inbound_texts(a: &Airlock) -> Result<Vec<String>, String> {
    Ok(a.inbound()?
        .iter()
        .filter_map(|r| r["content"].as_str().and_then(text_of))
        .collect())
}

/// A tmpfs of `size` mounted at `at`, unmounted (lazily, so a stuck child
/// cannot keep it) on drop.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts it; `Err` names why not (mounting needs root).
    pub fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        let _ = Command::new("umount").arg("-l").arg(at).output();
        std::fs::create_dir_all(at).map_err(|e| format!("{}: {e}", at.display()))?;
        mount(&["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"], at)?;
        Ok(Tmpfs(at.to_path_buf()))
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `mount -o remount,OPTIONS`; a busy file system (a writer still has
    /// a file open) is retried for a while.
    pub fn remount(&self, options: &str) -> Result<(), String> {
        let mut last = String::new();
        for _ in 0..200 {
            match mount(&["-o", &format!("remount,{options}")], &self.0) {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(last)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
    }
}

fn mount(args: &[&str], at: &Path) -> Result<(), String> {
    let out: Output = Command::new("mount")
        .args(args)
        .arg(at)
        .output()
        .map_err(|e| format!("running mount: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "mount {} {}: {}",
            args.join(" "),
            at.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The error line a failed CLI run printed, lowercased.
pub fn error_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_lowercase()
}
