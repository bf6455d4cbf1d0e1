//! Read-only filesystem: `send` and `guest reply` run in a loop while the
//! tmpfs under the data dir is remounted read-only. Every write that fails
//! must say "read-only" (never another error, never a panic); the reads
//! (`sessions`, `show`, `messages` in and out) keep working on the
//! read-only disk and find every acknowledged message; once remounted
//! read-write the next writes succeed and leave no temporary file.
//! Skipped, and said so, where no tmpfs can be mounted (it needs root).

use std::process::{Command, ExitCode, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use airlock_core::testing::history::WriteHistory;

use crate::airlock::Airlock;
use crate::support::{Tmpfs, error_line, inbound_texts, integrity_figure, outbound_texts};
use crate::{Campaign, Outcome};

/// Writes after the remount succeeded (all of them must fail).
const AFTER: usize = 10;

/// How the writes ended.
#[derive(Default)]
struct Tally {
    inbound: WriteHistory,
    outbound: WriteHistory,
    ok: usize,
    read_only: usize,
    other: Vec<String>,
    panics: usize,
    ok_after: usize,
}

/// The scenario and its negative control.
pub fn run(c: &Campaign) -> Result<Vec<Outcome>, String> {
    let mut out = Vec::new();
    for (name, control) in [
        ("read-only", false),
        ("read-only/control swallow errors", true),
    ] {
        let at = c.dir.join(name.replace('/', "-"));
        let mnt = match Tmpfs::mount(&at, "64m") {
            Ok(m) => m,
            Err(e) => {
                return Ok(vec![Outcome {
                    name: "read-only",
                    trials: 0,
                    figures: format!("SKIPPED: cannot mount a tmpfs here (needs root): {e}"),
                    ok: true,
                }]);
            }
        };
        out.push(campaign(c, &mnt, name, control)?);
    }
    Ok(out)
}

fn campaign(
    c: &Campaign,
    mnt: &Tmpfs,
    name: &'static str,
    swallow: bool,
) -> Result<Outcome, String> {
    let a = Airlock::new(&c.airlock, &mnt.path().join("run"))?;
    a.run(&[
        "send",
        "--session",
        &a.session,
        "--id",
        "in-1",
        "--text",
        "in-1",
    ])?;
    let session_dir = a.session_dir.to_str().ok_or("non-UTF-8 path")?.to_owned();
    // The control's writer reports success whatever happened.
    let wrapper: Vec<String> = if swallow {
        vec![c.driver.to_string_lossy().into_owned(), SWALLOW_ROLE.into()]
    } else {
        Vec::new()
    };
    let tally = Mutex::new(Tally::default());
    tally
        .lock()
        .map_err(|e| e.to_string())?
        .inbound
        .attempt("in-1");
    tally.lock().map_err(|e| e.to_string())?.inbound.ack("in-1");
    let read_only = AtomicBool::new(false);
    let trials = (c.trials / 4).clamp(4, 50);
    let remounted = std::thread::scope(|scope| {
        let writer = scope.spawn(|| -> Result<(), String> {
            let mut after = 0;
            let mut i = 0;
            while after < AFTER {
                let was_read_only = read_only.load(Ordering::SeqCst);
                let key = format!("s{i}");
                let send = [
                    "send",
                    "--session",
                    &a.session,
                    "--id",
                    &key,
                    "--text",
                    &key,
                ];
                let out = quiet(a.command_via(&wrapper, &send))?;
                record(&tally, &key, true, &out, was_read_only)?;
                let reply = format!("r{i}");
                let args = [
                    "guest",
                    "reply",
                    "--session-dir",
                    &session_dir,
                    "--in-reply-to",
                    "in-1",
                    "--text",
                    &reply,
                ];
                let out = quiet(a.command_via(&wrapper, &args))?;
                record(&tally, &reply, false, &out, was_read_only)?;
                if was_read_only {
                    after += 1;
                }
                i += 1;
            }
            Ok(())
        });
        // Some writes land first; then the disk goes read-only under the loop.
        while tally.lock().map(|t| t.ok).unwrap_or(0) < 2 * trials && !writer.is_finished() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let remounted = mnt.remount("ro");
        // Set even if the remount failed: it lets the writer stop.
        read_only.store(true, Ordering::SeqCst);
        let joined = writer.join().map_err(|_| "the writer panicked".to_owned());
        remounted.and(joined.and_then(|r| r))
    });
    remounted?;

    // Reads on the read-only disk.
    let mut reads_failed = Vec::new();
    for args in [vec!["sessions"], vec!["show", &a.session]] {
        if let Err(e) = a.run(&args) {
            reads_failed.push(e);
        }
    }
    let tally = tally.into_inner().map_err(|e| e.to_string())?;
    let rin = match inbound_texts(&a) {
        Ok(seen) => Some(tally.inbound.check(seen)),
        Err(e) => {
            reads_failed.push(e);
            None
        }
    };
    let rout = match outbound_texts(&a) {
        Ok(seen) => Some(tally.outbound.check(seen.into_iter().map(|(_, t)| t))),
        Err(e) => {
            reads_failed.push(e);
            None
        }
    };

    // Read-write again: writes work, nothing is left behind.
    mnt.remount("rw")?;
    a.mark_guest_stopped()?;
    let after = a
        .run(&[
            "send",
            "--session",
            &a.session,
            "--id",
            "final",
            "--text",
            "final",
        ])
        .err();
    let temps = a.temp_files();
    let integrity = a.integrity_failures();
    let checks_ok = rin.as_ref().is_some_and(|r| r.is_ok())
        && rout.as_ref().is_some_and(|r| r.is_ok())
        && reads_failed.is_empty()
        && tally.other.is_empty()
        && tally.panics == 0
        && tally.read_only > 0
        && tally.ok_after == 0
        && after.is_none()
        && temps.is_empty()
        && integrity.is_empty();
    let show = |r: &Option<airlock_core::testing::history::WriteReport>| {
        r.as_ref().map_or("not read".to_owned(), |r| r.to_string())
    };
    let mut figures = format!(
        "exits ok {} read-only {} other {} panic {} ok-while-read-only {}; inbound {}; outbound {}; \
         reads failing {} writes failing after rw {} temp files {} {}",
        tally.ok,
        tally.read_only,
        tally.other.len(),
        tally.panics,
        tally.ok_after,
        show(&rin),
        show(&rout),
        reads_failed.len(),
        usize::from(after.is_some()),
        temps.len(),
        integrity_figure(&integrity)
    );
    let firsts = [&tally.other, &reads_failed];
    if let Some(first) = firsts.iter().find_map(|v| v.first()).or(after.as_ref()) {
        figures.push_str(&format!("; first: {first}"));
    }
    if swallow {
        figures.push_str(" (lost must be > 0)");
    }
    Ok(Outcome {
        name,
        trials: tally.ok + tally.read_only + tally.other.len(),
        figures,
        ok: if swallow {
            rin.is_some_and(|r| !r.lost.is_empty())
        } else {
            checks_ok
        },
    })
}

fn quiet(mut cmd: Command) -> Result<Output, String> {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("starting airlock: {e}"))
}

fn record(
    tally: &Mutex<Tally>,
    key: &str,
    inbound: bool,
    out: &Output,
    was_read_only: bool,
) -> Result<(), String> {
    let mut t = tally.lock().map_err(|e| e.to_string())?;
    let history = if inbound {
        &mut t.inbound
    } else {
        &mut t.outbound
    };
    history.attempt(key);
    if out.status.success() {
        history.ack(key);
        t.ok += 1;
        t.ok_after += usize::from(was_read_only);
        return Ok(());
    }
    let line = error_line(out);
    if out.status.code().is_none_or(|c| c == 101) {
        t.panics += 1;
        t.other.push(format!("{key}: {line}"));
    } else if line.contains("read-only") {
        t.read_only += 1;
    } else {
        t.other.push(format!("{key}: {line}"));
    }
    Ok(())
}

const SWALLOW_ROLE: &str = "--swallow-errors";

/// The control writer's role: runs the rest of its arguments and exits 0
/// whatever they did, as a writer that ignores its errors would.
pub fn swallow_role(args: &[String]) -> Option<ExitCode> {
    let (role, rest) = args.split_first()?;
    if role != SWALLOW_ROLE {
        return None;
    }
    let (program, rest) = rest.split_first()?;
    let _ = Command::new(program)
        .args(rest)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    Some(ExitCode::SUCCESS)
}
