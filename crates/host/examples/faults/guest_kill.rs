//! Guest writer killed: SIGKILL at random points of `airlock guest reply`
//! (with and without a file) and of a guest process writing replies in a
//! loop through `GuestMailbox::write_message_out`. Once the guest is marked
//! stopped (which rolls back a journal a kill left), the host must read
//! every reply the guest confirmed, none twice, deliver each once, and
//! every file of a stored reply must be whole; `integrity_check` ok.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use airlock_core::MessageId;
use airlock_core::mailbox::NewOutboundMessage;
use airlock_core::testing::history::{DeliveryHistory, WriteHistory};
use airlock_sqlite_fs::GuestMailbox;

use crate::airlock::Airlock;
use crate::support::{lines_until_killed, outbound_texts};
use crate::{Campaign, Outcome, Rng};

/// Replies each looping guest process tries to write.
const PER_PROCESS: usize = 20;
/// The size of the file every other `guest reply` carries.
const FILE_SIZE: usize = 300_000;

/// The scenario and its negative control.
pub fn run(c: &Campaign) -> Result<Vec<Outcome>, String> {
    Ok(vec![
        campaign(c, "guest-kill", false)?,
        campaign(c, "guest-kill/control ack-first", true)?,
    ])
}

/// Random kill points over `window`, learned from the first whole runs.
struct Killer {
    rng: Rng,
    window: Duration,
    runs: usize,
}

impl Killer {
    fn delay(&mut self) -> Option<Duration> {
        self.runs += 1;
        (self.runs > 3)
            .then(|| Duration::from_micros(self.rng.below(self.window.as_micros() as u64 + 1)))
    }

    fn learn(&mut self, delay: Option<Duration>, took: Duration) {
        if delay.is_none() {
            self.window = self.window.max(took);
        }
    }
}

fn campaign(c: &Campaign, name: &'static str, ack_first: bool) -> Result<Outcome, String> {
    let dir = c.dir.join(name.replace('/', "-"));
    let a = Airlock::new(&c.airlock, &dir)?;
    a.run(&[
        "send",
        "--session",
        &a.session,
        "--id",
        "in-1",
        "--text",
        "in-1",
    ])?;
    let file = dir.join("photo.bin");
    std::fs::write(&file, vec![7u8; FILE_SIZE]).map_err(|e| e.to_string())?;
    let session_dir = a.session_dir.to_str().ok_or("non-UTF-8 path")?.to_owned();
    let mut history = WriteHistory::new();
    let mut with_file = BTreeMap::new();
    // One per kind of writer: a CLI reply and a loop of 20 take different times.
    let mut killers: Vec<Killer> = (0..2)
        .map(|_| Killer {
            rng: Rng::from_time(),
            window: Duration::from_millis(1),
            runs: 0,
        })
        .collect();
    let trials = if ack_first {
        c.trials.clamp(1, 20)
    } else {
        c.trials
    };
    let mut kills = 0;
    for i in 0..trials {
        let mut cmd;
        let cli = i % 2 == 0 && !ack_first;
        if cli {
            // The CLI's reply: the confirmation is its JSON line.
            let key = format!("g{i}");
            let mut args = vec![
                "guest",
                "reply",
                "--session-dir",
                &session_dir,
                "--in-reply-to",
                "in-1",
                "--text",
                &key,
            ];
            if i % 4 == 0 {
                args.extend(["--file", file.to_str().ok_or("non-UTF-8 path")?]);
                with_file.insert(key.clone(), FILE_SIZE as u64);
            }
            history.attempt(&key);
            cmd = a.command(&args);
        } else {
            let prefix = format!("w{i}");
            for j in 0..PER_PROCESS {
                history.attempt(format!("{prefix}-{j}"));
            }
            cmd = std::process::Command::new(&c.driver);
            cmd.args([WRITER_ROLE, &session_dir, &prefix]);
            if ack_first {
                cmd.arg("ack-first");
            }
        }
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting a guest writer: {e}"))?;
        let killer = &mut killers[i % 2];
        let delay = killer.delay();
        let started = Instant::now();
        let (lines, exited) = lines_until_killed(child, delay)?;
        killer.learn(delay, started.elapsed());
        kills += usize::from(!exited);
        if cli {
            // The CLI's confirmation is one JSON document naming the reply.
            let printed: Option<serde_json::Value> = serde_json::from_str(&lines.join("\n")).ok();
            if printed.is_some_and(|v| v["id"].is_string()) {
                history.ack(format!("g{i}"));
            }
        } else {
            // The looping writer prints each key once it is stored.
            for line in lines {
                history.ack(line);
            }
        }
    }

    // The sandbox is gone: a journal a kill left is rolled back now.
    a.mark_guest_stopped()?;
    let rows = outbound_texts(&a)?;
    let report = history.check(rows.iter().map(|(_, t)| t.clone()));
    let broken = broken_files(&a.session_dir, &rows, &with_file);
    let out = a
        .command(&["deliver", "--once"])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    let mut deliveries = DeliveryHistory::new();
    for (_, text) in &rows {
        deliveries.outbound(text.clone());
    }
    deliveries.run(
        crate::deliver_kill::texts(&out.stdout),
        Vec::<String>::new(),
    );
    let delivered = deliveries.check();
    let integrity = a.integrity_failures();
    let ok_run = report.is_ok()
        && delivered.is_ok()
        && broken.is_empty()
        && integrity.is_empty()
        && out.status.success()
        && kills > 0;
    let mut figures = format!(
        "{report}; delivered: {delivered}; kills {kills} broken files {} integrity failures {}",
        broken.len(),
        integrity.len()
    );
    if let Some(first) = broken.first().or(integrity.first()) {
        figures.push_str(&format!("; first: {first}"));
    }
    if ack_first {
        figures.push_str(" (lost must be > 0)");
    }
    Ok(Outcome {
        name,
        trials,
        figures,
        // The control's writer confirms before it writes: the checker
        // must see replies it confirmed and never stored.
        ok: if ack_first {
            !report.lost.is_empty()
        } else {
            ok_run
        },
    })
}

/// Stored replies whose file is missing or not whole.
fn broken_files(
    session_dir: &Path,
    rows: &[(String, String)],
    with_file: &BTreeMap<String, u64>,
) -> Vec<String> {
    rows.iter()
        .filter_map(|(id, text)| {
            let size = with_file.get(text)?;
            let path = session_dir.join("outbox").join(id).join("photo.bin");
            let got = std::fs::metadata(&path).map(|m| m.len()).ok();
            (got != Some(*size)).then(|| format!("{} ({got:?} bytes)", path.display()))
        })
        .collect()
}

const WRITER_ROLE: &str = "--guest-writer";

/// The looping guest writer's role: `PER_PROCESS` replies through the
/// library, each key printed once `write_message_out` returned (or, for
/// the control, before it is written).
pub fn writer_role(args: &[String]) -> Option<ExitCode> {
    let (role, rest) = args.split_first()?;
    if role != WRITER_ROLE {
        return None;
    }
    let (dir, prefix, ack_first) = match rest {
        [dir, prefix] => (dir, prefix, false),
        [dir, prefix, flag] if flag == "ack-first" => (dir, prefix, true),
        _ => {
            eprintln!("{WRITER_ROLE} SESSION_DIR PREFIX [ack-first]");
            return Some(ExitCode::from(2));
        }
    };
    let write = || -> Result<(), String> {
        let guest = GuestMailbox::open(dir).map_err(|e| e.to_string())?;
        let mut stdout = std::io::stdout().lock();
        for j in 0..PER_PROCESS {
            let key = format!("{prefix}-{j}");
            let id = MessageId::new(format!("out-{key}")).map_err(|e| e.to_string())?;
            let msg = NewOutboundMessage::new(id, "chat", format!(r#"{{"text":"{key}"}}"#));
            if ack_first {
                writeln!(stdout, "{key}").map_err(|e| e.to_string())?;
                stdout.flush().map_err(|e| e.to_string())?;
                std::thread::sleep(Duration::from_millis(5));
            }
            guest.write_message_out(&msg).map_err(|e| e.to_string())?;
            if !ack_first {
                writeln!(stdout, "{key}").map_err(|e| e.to_string())?;
                stdout.flush().map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    };
    Some(match write() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("guest writer: {e}");
            ExitCode::FAILURE
        }
    })
}
