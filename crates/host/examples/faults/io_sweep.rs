//! Deterministic k-th call sweep: libfiu's POSIX preload with the
//! `fiu_kth` policy (`examples/fiu_kth.rs`) fails exactly the k-th call of
//! `open`, `pwrite`, `fsync`, `fdatasync`, `ftruncate`, `rename` and
//! `unlink` (counted together), for k = 1, 2, … until a run never reaches
//! k, of one operation each: `send --attach`, `guest reply`, `deliver
//! --once`. Every failed run must be a non-zero exit with an error line,
//! never a panic or a hang; nothing acknowledged lost, nothing duplicated,
//! no partial attachment, no temporary file after the next write,
//! `integrity_check` ok. `write` is left out: libfiu would also fail
//! tokio's eventfd wake-ups, which the kernel never does (see io-errors).
//! Skipped, and said so, without libfiu.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use airlock_core::MessageId;
use airlock_core::mailbox::NewOutboundMessage;
use airlock_core::testing::history::{DeliveryHistory, WriteHistory};
use airlock_sqlite_fs::GuestMailbox;

use crate::airlock::Airlock;
use crate::io_errors::{bounded, hung, panicked};
use crate::support::{Run, inbound_texts, integrity_figure, outbound_texts};
use crate::{Campaign, Outcome};

const POSIX_PRELOAD: &str = "/usr/lib/fiu/fiu_posix_preload.so";
const POINTS: &str = "posix/io/oc/open,posix/io/rw/pwrite,posix/io/sync/fsync,\
posix/io/sync/fdatasync,posix/io/rw/ftruncate,posix/io/dir/rename,posix/io/dir/unlink";
/// A bound on k: an operation with more calls than this is reported, not swept forever.
const MAX_K: u64 = 3000;
const ATTACHMENT: usize = 200_000;

/// Runs `cmd` with the k-th call failing; whether the fault fired.
struct Faulter {
    lib: PathBuf,
    marker: PathBuf,
}

impl Faulter {
    fn run(&self, mut cmd: Command, k: u64) -> Result<(Run, bool), String> {
        let _ = std::fs::remove_file(&self.marker);
        cmd.env(
            "LD_PRELOAD",
            format!("{POSIX_PRELOAD}:{}", self.lib.display()),
        )
        .env("AIRLOCK_FIU_POINTS", POINTS)
        .env("AIRLOCK_FIU_K", k.to_string())
        .env("AIRLOCK_FIU_MARKER", &self.marker);
        let run = bounded(cmd)?;
        Ok((run, self.marker.exists()))
    }
}

/// How the faulted runs of one sweep ended.
#[derive(Default)]
struct Tally {
    runs: u64,
    /// Exit 0 although the k-th call failed (the fault was absorbed).
    absorbed: usize,
    errors: usize,
    panics: usize,
    hangs: usize,
    complete: bool,
}

impl Tally {
    /// Records a run; whether it succeeded.
    fn record(&mut self, run: &Run, fired: bool) -> bool {
        self.runs += 1;
        self.complete |= !fired;
        if hung(run) {
            self.hangs += 1;
        } else if run.success {
            self.absorbed += usize::from(fired);
        } else if panicked(&run.status) {
            self.panics += 1;
        } else {
            self.errors += 1;
        }
        run.success
    }

    fn is_ok(&self) -> bool {
        self.panics == 0 && self.hangs == 0 && self.complete && self.errors > 0
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "k = 1..{}{}: error {} absorbed {} panic {} hang {}",
            self.runs,
            if self.complete { "" } else { " (INCOMPLETE)" },
            self.errors,
            self.absorbed,
            self.panics,
            self.hangs
        )
    }
}

/// The scenario and its negative control.
pub fn run(c: &Campaign) -> Result<Vec<Outcome>, String> {
    if !Path::new(POSIX_PRELOAD).is_file() {
        return Ok(vec![Outcome {
            name: "io-sweep",
            trials: 0,
            figures: format!("SKIPPED: {POSIX_PRELOAD} not found (Debian package libfiu0)"),
            ok: true,
        }]);
    }
    let lib = c
        .driver
        .parent()
        .map(|d| d.join("libfiu_kth.so"))
        .filter(|p| p.is_file())
        .ok_or("libfiu_kth.so is not beside the driver (cargo build --example fiu_kth)")?;
    let f = Faulter {
        lib,
        marker: c.dir.join("io-sweep-marker"),
    };
    Ok(vec![
        send(c, &f)?,
        reply(c, &f)?,
        deliver(c, &f)?,
        control(c, &f)?,
    ])
}

fn send(c: &Campaign, f: &Faulter) -> Result<Outcome, String> {
    let a = Airlock::new(&c.airlock, &c.dir.join("io-sweep-send"))?;
    let file = c.dir.join("io-sweep-send/photo.bin");
    std::fs::write(&file, vec![3u8; ATTACHMENT]).map_err(|e| e.to_string())?;
    let file = file.to_str().ok_or("non-UTF-8 path")?.to_owned();
    let mut history = WriteHistory::new();
    let mut sizes = BTreeMap::new();
    let mut tally = Tally::default();
    for k in 1..=MAX_K {
        let key = format!("s{k}");
        let args = [
            "send",
            "--session",
            &a.session,
            "--id",
            &key,
            "--text",
            &key,
            "--attach",
            &file,
        ];
        history.attempt(&key);
        sizes.insert(key.clone(), ATTACHMENT as u64);
        let (run, fired) = f.run(a.command(&args), k)?;
        if tally.record(&run, fired) {
            history.ack(&key);
        }
        if !fired {
            break;
        }
    }
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
    let report = history.check(inbound_texts(&a)?);
    let partial = crate::send_kill::partial_files(&a.session_dir.join("inbox"), &sizes);
    let temps = a.temp_files();
    let integrity = a.integrity_failures();
    let ok = tally.is_ok()
        && report.is_ok()
        && partial.is_empty()
        && temps.is_empty()
        && integrity.is_empty();
    Ok(Outcome {
        name: "io-sweep send --attach",
        trials: tally.runs as usize,
        figures: format!(
            "{tally}; {report}; partial files {} temp files {} {}",
            partial.len(),
            temps.len(),
            integrity_figure(&integrity)
        ),
        ok,
    })
}

fn reply(c: &Campaign, f: &Faulter) -> Result<Outcome, String> {
    let a = Airlock::new(&c.airlock, &c.dir.join("io-sweep-reply"))?;
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
    let reply_args = |text: &str| {
        [
            "guest",
            "reply",
            "--session-dir",
            &session_dir,
            "--in-reply-to",
            "in-1",
            "--text",
            text,
        ]
        .map(str::to_owned)
    };
    let mut history = WriteHistory::new();
    let mut tally = Tally::default();
    for k in 1..=MAX_K {
        let key = format!("r{k}");
        let args = reply_args(&key);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        history.attempt(&key);
        let (run, fired) = f.run(a.command(&args), k)?;
        if tally.record(&run, fired) {
            history.ack(&key);
        }
        if !fired {
            break;
        }
    }
    // The guest is gone; a journal its failed write left is rolled back.
    a.mark_guest_stopped()?;
    history.attempt("final");
    let args = reply_args("final");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    a.run(&args)?;
    history.ack("final");
    let report = history.check(outbound_texts(&a)?.into_iter().map(|(_, t)| t));
    let integrity = a.integrity_failures();
    let ok = tally.is_ok() && report.is_ok() && integrity.is_empty();
    Ok(Outcome {
        name: "io-sweep guest reply",
        trials: tally.runs as usize,
        figures: format!("{tally}; {report}; {}", integrity_figure(&integrity)),
        ok,
    })
}

fn deliver(c: &Campaign, f: &Faulter) -> Result<Outcome, String> {
    let a = Airlock::new(&c.airlock, &c.dir.join("io-sweep-deliver"))?;
    let guest = GuestMailbox::open(&a.session_dir).map_err(|e| e.to_string())?;
    let mut history = DeliveryHistory::new();
    let mut tally = Tally::default();
    let mut next = 0;
    for k in 1..=MAX_K {
        for _ in 0..2 {
            let key = format!("d{next}");
            next += 1;
            let id = MessageId::new(format!("out-{key}")).map_err(|e| e.to_string())?;
            let msg = NewOutboundMessage::new(id, "chat", format!(r#"{{"text":"{key}"}}"#));
            guest.write_message_out(&msg).map_err(|e| e.to_string())?;
            history.outbound(key);
        }
        let (run, fired) = f.run(a.command(&["deliver", "--once"]), k)?;
        let keys = crate::deliver_kill::line_texts(&run.lines);
        let done = tally.record(&run, fired);
        // A failed run's last printed message may not be marked delivered.
        let in_flight: Vec<String> = if done {
            Vec::new()
        } else {
            keys.last().cloned().into_iter().collect()
        };
        history.run(keys, in_flight);
        if !fired {
            break;
        }
    }
    let out = a
        .command(&["deliver", "--once"])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    history.run(
        crate::deliver_kill::texts(&out.stdout),
        Vec::<String>::new(),
    );
    let report = history.check();
    let integrity = a.integrity_failures();
    let ok = tally.is_ok() && report.is_ok() && integrity.is_empty() && out.status.success();
    Ok(Outcome {
        name: "io-sweep deliver",
        trials: tally.runs as usize,
        figures: format!("{tally}; {report}; {}", integrity_figure(&integrity)),
        ok,
    })
}

/// Negative control: the writer that unwraps its I/O results, swept the
/// same way; the panic count must see it.
fn control(c: &Campaign, f: &Faulter) -> Result<Outcome, String> {
    let target = c.dir.join("io-sweep-control.bin");
    let mut tally = Tally::default();
    for k in 1..=MAX_K {
        let mut cmd = Command::new(&c.driver);
        cmd.arg(crate::io_errors::PANICKY_ROLE).arg(&target);
        let (run, fired) = f.run(cmd, k)?;
        tally.record(&run, fired);
        if !fired {
            break;
        }
    }
    Ok(Outcome {
        name: "io-sweep/control unwrap",
        trials: tally.runs as usize,
        figures: format!("{tally} (panics must be > 0)"),
        ok: tally.panics > 0,
    })
}
