//! I/O errors injected with libfiu's `fiu-run` (Debian `fiu-utils`): random
//! failures of `write`, `pwrite`, `fsync`, `fdatasync`, `unlink`, `rename`
//! and `ftruncate` at p = 0.02 and 0.1 during `airlock send`, `airlock guest
//! reply` and `airlock deliver`. Every failure must be a non-zero exit,
//! never a panic (exit 101 or a signal); nothing acknowledged may be lost
//! and the files pass `integrity_check` afterwards. libfiu intercepts libc:
//! SQLite's and std's calls fail, rustix's raw syscalls (the attachment
//! code's openat2/renameat/unlinkat) do not. Skipped, and said so, without
//! `fiu-run`.

use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::time::Duration;

use airlock_core::testing::history::{DeliveryHistory, WriteHistory};

use crate::airlock::{Airlock, text_of};
use crate::support::{Run, integrity_figure, run_bounded, stderr_tail};
use crate::{Campaign, Outcome};

/// The failure points, as libfiu's POSIX preload names them.
const POINTS: [&str; 7] = [
    "posix/io/rw/write",
    "posix/io/rw/pwrite",
    "posix/io/sync/fsync",
    "posix/io/sync/fdatasync",
    "posix/io/dir/unlink",
    "posix/io/dir/rename",
    "posix/io/rw/ftruncate",
];

fn fiu_run_available() -> bool {
    std::process::Command::new("fiu-run")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// `fiu-run -x -c "enable_random name=…,probability=p" …` for every point.
fn fiu(p: f64) -> Vec<String> {
    let mut w = vec![
        "fiu-run".to_owned(),
        "-x".to_owned(),
        "-f".to_owned(),
        String::new(),
    ];
    for point in POINTS {
        w.push("-c".into());
        w.push(format!("enable_random name={point},probability={p}"));
    }
    w
}

/// A panic (Rust exits 101) or a death by signal: what must never happen.
pub fn panicked(status: &ExitStatus) -> bool {
    status.code().is_none_or(|c| c == 101)
}

/// A faulted command may hang: libfiu also fails `write` on the eventfd
/// that wakes tokio's runtime, and a lost wake-up never comes back. Such a
/// run is killed after this long and counted as a hang.
const HANG: Duration = Duration::from_secs(20);

/// tokio's panic when the write to its wake-up eventfd fails: only libfiu
/// makes that write fail (the kernel does not), so it is counted apart.
const WAKE_ARTIFACT: &str = "failed to wake I/O driver";

/// Runs `cmd` with stdout and stderr captured, killed after [`HANG`] (a
/// hung run's lines count too: they were delivered before it hung).
pub fn bounded(cmd: Command) -> Result<Run, String> {
    run_bounded(cmd, HANG)
}

/// Whether `run` hung (and was killed).
pub fn hung(run: &Run) -> bool {
    run.killed
}

/// Whether `run` failed with tokio's wake-up artifact.
fn artifact(run: &Run) -> bool {
    run.stderr.contains(WAKE_ARTIFACT)
}

/// Where a panicked run says it panicked and why (the two lines from
/// "panicked at"), else its last stderr lines.
fn panic_message(run: &Run) -> String {
    let lines: Vec<&str> = run.stderr.lines().collect();
    match lines.iter().position(|l| l.contains("panicked at")) {
        Some(at) => lines[at..(at + 2).min(lines.len())].join(" "),
        None => stderr_tail(run, 3),
    }
}

/// Counts of one faulted run.
#[derive(Default)]
struct Exits {
    ok: usize,
    errors: usize,
    panics: usize,
    hangs: usize,
    artifacts: usize,
    /// The last stderr lines of the first panicked run.
    first_panic: Option<String>,
}

impl Exits {
    /// Records one run; whether it succeeded.
    fn record(&mut self, run: &Run) -> bool {
        if hung(run) {
            self.hangs += 1;
        } else if run.success {
            self.ok += 1;
        } else if artifact(run) {
            self.artifacts += 1;
        } else if panicked(&run.status) {
            self.panics += 1;
            self.first_panic.get_or_insert_with(|| panic_message(run));
        } else {
            self.errors += 1;
        }
        run.success
    }
}

impl std::fmt::Display for Exits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exits ok {} error {} panic {} hang {} wake-up artifact {}",
            self.ok, self.errors, self.panics, self.hangs, self.artifacts
        )?;
        match &self.first_panic {
            Some(tail) => write!(f, " (first panic: {tail:?})"),
            None => Ok(()),
        }
    }
}

/// The scenario and its negative control.
pub fn run(c: &Campaign) -> Result<Vec<Outcome>, String> {
    if !fiu_run_available() {
        return Ok(vec![Outcome {
            name: "io-errors",
            trials: 0,
            figures: "SKIPPED: fiu-run not found (Debian package fiu-utils)".into(),
            ok: true,
        }]);
    }
    let mut out = Vec::new();
    for p in [0.02, 0.1] {
        out.push(writes(c, p)?);
        out.push(deliveries(c, p)?);
    }
    out.push(control(c)?);
    Ok(out)
}

/// `send` (half with an attachment) and `guest reply` under faults.
fn writes(c: &Campaign, p: f64) -> Result<Outcome, String> {
    let a = Airlock::new(&c.airlock, &c.dir.join(format!("io-send-{p}")))?;
    let file = c.dir.join(format!("io-send-{p}/photo.bin"));
    std::fs::write(&file, vec![9u8; 200_000]).map_err(|e| e.to_string())?;
    let file = file.to_str().ok_or("non-UTF-8 path")?.to_owned();
    let session_dir = a.session_dir.to_str().ok_or("non-UTF-8 path")?.to_owned();
    let wrapper = fiu(p);
    let (mut inbound, mut outbound) = (WriteHistory::new(), WriteHistory::new());
    let mut exits = Exits::default();
    let trials = (c.trials / 2).max(1);
    for i in 0..trials {
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
        if i % 2 == 1 {
            args.extend(["--attach", &file]);
        }
        inbound.attempt(&key);
        if exits.record(&bounded(a.command_via(&wrapper, &args))?) {
            inbound.ack(&key);
        }
        let reply = format!("r{i}");
        let args = [
            "guest",
            "reply",
            "--session-dir",
            &session_dir,
            "--in-reply-to",
            &key,
            "--text",
            &reply,
        ];
        outbound.attempt(&reply);
        if exits.record(&bounded(a.command_via(&wrapper, &args))?) {
            outbound.ack(&reply);
        }
    }
    // The guest is gone (a journal its failed write left is rolled back),
    // the next write without faults, then the final reads.
    a.mark_guest_stopped()?;
    inbound.attempt("final");
    a.run(&[
        "send",
        "--session",
        &a.session,
        "--id",
        "final",
        "--text",
        "final",
    ])?;
    inbound.ack("final");
    let seen_in: Vec<String> = a
        .inbound()?
        .iter()
        .filter_map(|r| r["content"].as_str().and_then(text_of))
        .collect();
    let out = a.run(&[
        "messages",
        &a.session,
        "--direction",
        "out",
        "--limit",
        "1000000",
    ])?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let seen_out: Vec<String> = v["out"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["content"].as_str().and_then(text_of))
        .collect();
    let (rin, rout) = (inbound.check(seen_in), outbound.check(seen_out));
    let integrity = a.integrity_failures();
    let ok = rin.is_ok() && rout.is_ok() && integrity.is_empty() && exits.panics == 0;
    Ok(Outcome {
        name: if p < 0.05 {
            "io-errors send+reply p=0.02"
        } else {
            "io-errors send+reply p=0.1"
        },
        trials,
        figures: format!(
            "{exits}; inbound {rin}; outbound {rout}; {}",
            integrity_figure(&integrity)
        ),
        ok,
    })
}

/// `deliver --once` under faults until a run without faults finds nothing left.
fn deliveries(c: &Campaign, p: f64) -> Result<Outcome, String> {
    let a = Airlock::new(&c.airlock, &c.dir.join(format!("io-deliver-{p}")))?;
    let guest = airlock_sqlite_fs::GuestMailbox::open(&a.session_dir).map_err(|e| e.to_string())?;
    let mut history = DeliveryHistory::new();
    let count = (c.trials / 2).max(1);
    for i in 0..count {
        let key = format!("d{i}");
        let id = airlock_core::MessageId::new(format!("out-{key}")).map_err(|e| e.to_string())?;
        let msg = airlock_core::mailbox::NewOutboundMessage::new(
            id,
            "chat",
            format!(r#"{{"text":"{key}"}}"#),
        );
        guest.write_message_out(&msg).map_err(|e| e.to_string())?;
        history.outbound(key);
    }
    let wrapper = fiu(p);
    let mut exits = Exits::default();
    let mut runs = 0;
    // Each faulted run delivers some; the faults stop after enough runs.
    for _ in 0..count {
        let run = bounded(a.command_via(&wrapper, &["deliver", "--once"]))?;
        runs += 1;
        let keys = crate::deliver_kill::line_texts(&run.lines);
        let done = exits.record(&run);
        let in_flight: Vec<String> = if done {
            Vec::new()
        } else {
            keys.last().cloned().into_iter().collect()
        };
        history.run(keys, in_flight);
        if done {
            break;
        }
    }
    let out = a
        .command(&["deliver", "--once"])
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| e.to_string())?;
    history.run(
        crate::deliver_kill::texts(&out.stdout),
        Vec::<String>::new(),
    );
    let report = history.check();
    let integrity = a.integrity_failures();
    let ok = report.is_ok() && exits.panics == 0 && integrity.is_empty() && out.status.success();
    Ok(Outcome {
        name: if p < 0.05 {
            "io-errors deliver p=0.02"
        } else {
            "io-errors deliver p=0.1"
        },
        trials: runs,
        figures: format!(
            "{exits}; {report}; {}; final unfaulted run {}{}",
            integrity_figure(&integrity),
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .map(|l| format!(": {l}"))
                .unwrap_or_default()
        ),
        ok,
    })
}

pub const PANICKY_ROLE: &str = "--panicky-writer";

/// Negative control: a writer that unwraps its I/O results, under the same
/// faults; the panic count must see it.
fn control(c: &Campaign) -> Result<Outcome, String> {
    let dir = c.dir.join("io-control");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let target = dir.join("file.bin");
    let mut exits = Exits::default();
    let trials = c.trials.clamp(1, 20);
    let wrapper = fiu(0.1);
    for _ in 0..trials {
        let mut cmd = Command::new(&wrapper[0]);
        cmd.args(&wrapper[1..])
            .arg(&c.driver)
            .arg(PANICKY_ROLE)
            .arg(&target);
        exits.record(&bounded(cmd)?);
    }
    Ok(Outcome {
        name: "io-errors/control unwrap",
        trials,
        figures: format!("{exits} (panics must be > 0)"),
        ok: exits.panics > 0,
    })
}

/// The panicky writer's role: small synced writes, every error unwrapped.
pub fn unsafe_role(args: &[String]) -> Option<ExitCode> {
    let [role, target] = args else { return None };
    if role != PANICKY_ROLE {
        return None;
    }
    use std::io::Write;
    let mut f = std::fs::File::create(target).unwrap();
    for _ in 0..64 {
        f.write_all(&[b'x'; 512]).unwrap();
        f.sync_data().unwrap();
    }
    Some(ExitCode::SUCCESS)
}
