//! Host writer killed: `airlock send` (with and without attachments) gets
//! SIGKILL at a random point; a killed send is retried half of the time.
//! Nothing acknowledged may be lost, nothing stored twice, no attachment
//! may exist under its final name half-written, and the next write of the
//! session leaves no temporary file behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode, Stdio};
use std::time::{Duration, Instant};

use airlock_core::testing::history::WriteHistory;

use crate::airlock::{Airlock, files_under, text_of};
use crate::{Campaign, Outcome, Rng};

/// Runs the child to completion, or kills it after `delay` (None: never).
fn finish(mut child: Child, delay: Option<Duration>) -> Result<bool, String> {
    if let Some(delay) = delay {
        std::thread::sleep(delay);
        let _ = child.kill();
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for a child: {e}"))?;
    Ok(status.success())
}

/// A file of `size` bytes whose content says which message it belongs to.
pub fn attachment(dir: &Path, key: &str, size: usize) -> Result<PathBuf, String> {
    let path = dir.join(format!("{key}.bin"));
    let mut data = key.as_bytes().repeat(size / key.len() + 1);
    data.truncate(size);
    std::fs::write(&path, data).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Files under `inbox/` whose size is not the size sent: a partial file
/// under a final name. `sizes` maps a message folder to its attachment size.
pub fn partial_files(inbox: &Path, sizes: &BTreeMap<String, u64>) -> Vec<String> {
    let mut partial = Vec::new();
    for file in files_under(inbox) {
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if name.starts_with(".airlock-tmp") {
            continue;
        }
        let folder = file
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        if sizes.get(&folder) != Some(&size) {
            partial.push(format!("{} ({size} bytes)", file.display()));
        }
    }
    partial
}

/// The scenario and its negative control.
pub fn run(c: &Campaign) -> Result<Vec<Outcome>, String> {
    Ok(vec![real(c)?, control(c)?])
}

fn real(c: &Campaign) -> Result<Outcome, String> {
    let a = Airlock::new(&c.airlock, &c.dir.join("send-kill"))?;
    let files = c.dir.join("send-kill/files");
    std::fs::create_dir_all(&files).map_err(|e| e.to_string())?;
    let mut rng = Rng::from_time();
    let mut history = WriteHistory::new();
    let mut sizes = BTreeMap::new();
    let mut window = Duration::from_millis(50);
    let (mut kills, mut retries) = (0, 0);
    // Until `trials` sends were killed (a send that finished before its
    // kill is no kill trial), within a bound that a broken timer hits.
    let mut sends = 0;
    while kills < c.trials && sends < 5 * c.trials + 4 {
        let i = sends;
        sends += 1;
        let key = format!("s{i}");
        let mut args = vec![
            "send",
            "--session",
            &a.session,
            "--id",
            &key,
            "--text",
            &key,
        ];
        let path;
        if i % 2 == 1 {
            let size = 64 * 1024 + rng.below(2 << 20) as usize;
            path = attachment(&files, &key, size)?;
            sizes.insert(key.clone(), size as u64);
            args.extend(["--attach", path.to_str().ok_or("non-UTF-8 temp path")?]);
        }
        history.attempt(&key);
        let spawn = || {
            a.command(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("starting airlock send: {e}"))
        };
        // The first trials run whole, to learn how long a send takes.
        let delay = if i < 4 {
            None
        } else {
            Some(Duration::from_micros(
                rng.below(window.as_micros() as u64 + 1),
            ))
        };
        let started = Instant::now();
        let acked = finish(spawn()?, delay)?;
        if delay.is_none() {
            // Most of a send is start-up; kills spread over the whole run.
            window = started.elapsed();
        }
        if acked {
            history.ack(&key);
            continue;
        }
        kills += 1;
        if rng.below(2) == 0 {
            retries += 1;
            if finish(spawn()?, None)? {
                history.ack(&key);
            }
        }
    }
    // The session's next write: it must clean up what a kill left.
    history.attempt("final");
    a.run(&[
        "send",
        "--session",
        &a.session,
        "--id",
        "final",
        "--text",
        "final",
    ])?;
    history.ack("final");

    let rows = a.inbound()?;
    let seen: Vec<String> = rows
        .iter()
        .filter_map(|r| r["content"].as_str().and_then(text_of))
        .collect();
    let report = history.check(seen);
    let temps = a.temp_files();
    let partial = partial_files(&a.session_dir.join("inbox"), &sizes);
    let integrity = a.integrity_failures();
    let doctor = a.doctor_ok();
    let ok = report.is_ok()
        && temps.is_empty()
        && partial.is_empty()
        && integrity.is_empty()
        && doctor.is_ok()
        && kills >= c.trials;
    let mut figures = format!(
        "{report}; sends {sends} kills {kills} retries {retries} temp files {} partial files {} integrity failures {}",
        temps.len(),
        partial.len(),
        integrity.len()
    );
    if let Err(e) = doctor {
        figures.push_str(&format!("; doctor: {e}"));
    }
    if let Some(p) = partial.first().or(integrity.first()) {
        figures.push_str(&format!("; first: {p}"));
    }
    Ok(Outcome {
        name: "send-kill",
        trials: kills,
        figures,
        ok,
    })
}

/// Negative control: attachments written in place (no temporary name, no
/// rename), killed the same way; the partial-file check must see one.
fn control(c: &Campaign) -> Result<Outcome, String> {
    let dir = c.dir.join("send-kill-control");
    let _ = std::fs::remove_dir_all(&dir);
    let inbox = dir.join("inbox");
    let trials = c.trials.clamp(1, 40);
    let mut rng = Rng::from_time();
    let mut sizes = BTreeMap::new();
    let mut window = Duration::from_millis(20);
    for i in 0..trials {
        let key = format!("s{i}");
        let target = inbox.join(&key).join("a.bin");
        sizes.insert(key, UNSAFE_SIZE as u64);
        let child = std::process::Command::new(&c.driver)
            .args([UNSAFE_ROLE, target.to_str().ok_or("non-UTF-8 path")?])
            .spawn()
            .map_err(|e| format!("starting the unsafe writer: {e}"))?;
        let started = Instant::now();
        let delay =
            (i > 0).then(|| Duration::from_micros(rng.below(window.as_micros() as u64 + 1)));
        finish(child, delay)?;
        if delay.is_none() {
            window = started.elapsed();
        }
    }
    let partial = partial_files(&inbox, &sizes);
    Ok(Outcome {
        name: "send-kill/control in-place",
        trials,
        figures: format!("partial files {} (must be > 0)", partial.len()),
        ok: !partial.is_empty(),
    })
}

pub const UNSAFE_ROLE: &str = "--unsafe-attachment-writer";
pub const UNSAFE_SIZE: usize = 8 << 20;

/// The unsafe writer's role: writes `UNSAFE_SIZE` bytes straight into the
/// final name, in small writes.
pub fn unsafe_role(args: &[String]) -> Option<ExitCode> {
    let [role, target] = args else { return None };
    if role != UNSAFE_ROLE {
        return None;
    }
    use std::io::Write;
    let target = Path::new(target);
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(target.parent().unwrap_or(Path::new(".")))?;
        let mut f = std::fs::File::create(target)?;
        for _ in 0..UNSAFE_SIZE / 4096 {
            f.write_all(&[b'x'; 4096])?;
        }
        Ok(())
    };
    Some(match write() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("unsafe writer: {e}");
            ExitCode::FAILURE
        }
    })
}
