//! What the guest-kill, disk-full, read-only and io-sweep scenarios share:
//! a child killed at a random point while its confirmation lines are read,
//! a tmpfs of its own, and the final reads of the outbound side.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use crate::airlock::{Airlock, text_of};

/// When to SIGKILL a child: once it has printed `after_lines` complete
/// lines (0: at once), `delay` later. Counting lines puts kills among the
/// child's work however fast the machine runs it; a wall-clock delay alone
/// lands after a short run has ended on an idle machine.
#[derive(Debug, Clone, Copy)]
pub struct Kill {
    /// Complete lines to wait for first.
    pub after_lines: usize,
    /// Then this long.
    pub delay: Duration,
}

impl Kill {
    /// `delay` after the start.
    pub fn after(delay: Duration) -> Kill {
        Kill {
            after_lines: 0,
            delay,
        }
    }
}

/// What one child run printed and how it ended.
#[derive(Debug)]
pub struct Run {
    /// The complete lines of stdout (a line cut by the kill is no
    /// confirmation).
    pub lines: Vec<String>,
    /// How it ended.
    pub status: ExitStatus,
    /// Ended by the kill (by a signal, not an exit code).
    pub killed: bool,
    /// Exited 0.
    pub success: bool,
    /// All it wrote to stderr, when stderr was piped.
    pub stderr: String,
    /// How it ended and its last stderr, for error messages.
    pub ending: String,
}

/// Runs `child` (stdout piped; stderr piped or not) to completion, or
/// SIGKILLs it as `kill` says if it is still running then.
pub fn run_child(mut child: Child, kill: Option<Kill>) -> Result<Run, String> {
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            if line.ends_with(b"\n")
                && tx
                    .send(String::from_utf8_lossy(&line).trim_end().to_owned())
                    .is_err()
            {
                break;
            }
            line.clear();
        }
    });
    let stderr = child
        .stderr
        .take()
        .map(|e| std::thread::spawn(move || std::io::read_to_string(e).unwrap_or_default()));
    let mut lines = Vec::new();
    let mut killed = false;
    if let Some(kill) = kill {
        while lines.len() < kill.after_lines {
            match rx.recv() {
                Ok(line) => lines.push(line),
                Err(_) => break,
            }
        }
        if lines.len() >= kill.after_lines {
            killed = kill_at(&mut child, Instant::now() + kill.delay)?;
        }
    }
    lines.extend(rx.iter());
    let status = child
        .wait()
        .map_err(|e| format!("waiting for a child: {e}"))?;
    reader.join().map_err(|_| "reader thread panicked")?;
    let stderr = match stderr {
        Some(t) => t.join().map_err(|_| "stderr thread panicked")?,
        None => String::new(),
    };
    let tail: String = stderr.lines().last().unwrap_or_default().to_owned();
    Ok(Run {
        lines,
        status,
        killed: killed && status.code().is_none(),
        success: status.success(),
        ending: format!("{status}, last stderr line {tail:?}"),
        stderr,
    })
}

/// SIGKILLs `child` at `deadline` unless it exited first; whether it was
/// still running then.
fn kill_at(child: &mut Child, deadline: Instant) -> Result<bool, String> {
    loop {
        if child
            .try_wait()
            .map_err(|e| format!("waiting for a child: {e}"))?
            .is_some()
        {
            return Ok(false);
        }
        let now = Instant::now();
        if now >= deadline {
            let _ = child.kill();
            return Ok(true);
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(1)));
    }
}

/// Runs `cmd` (stdin null, stdout and stderr piped) to completion, or
/// SIGKILLs it after `limit` (a hang: then `killed`).
pub fn run_bounded(mut cmd: Command, limit: Duration) -> Result<Run, String> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {cmd:?}: {e}"))?;
    run_child(child, Some(Kill::after(limit)))
}

/// The last `n` lines `run` wrote to stderr, joined by " | ".
pub fn stderr_tail(run: &Run, n: usize) -> String {
    let lines: Vec<&str> = run.stderr.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// "integrity failures N", with the first failure when there is one.
pub fn integrity_figure(failures: &[String]) -> String {
    match failures.first() {
        None => "integrity failures 0".into(),
        Some(first) => format!("integrity failures {} (first: {first})", failures.len()),
    }
}

/// Runs `child` (stdout piped) to completion, or SIGKILLs it after `delay`;
/// returns the complete lines it printed and whether it exited 0.
pub fn lines_until_killed(
    child: Child,
    delay: Option<Duration>,
) -> Result<(Vec<String>, bool), String> {
    let run = run_child(child, delay.map(Kill::after))?;
    Ok((run.lines, run.success))
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
