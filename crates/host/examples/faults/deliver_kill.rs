//! Delivery loop killed: `airlock deliver --once` (the stdout adapter) gets
//! SIGKILL at random points and is restarted each time, while the guest's
//! replies keep coming. Every reply must reach stdout at least once, and
//! more than once only the one in flight at a kill.

use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_core::MessageId;
use airlock_core::mailbox::NewOutboundMessage;
use airlock_core::testing::history::{DeliveryHistory, DeliveryReport};
use airlock_sqlite_fs::GuestMailbox;

use crate::airlock::Airlock;
use crate::support::{Kill, Run, integrity_figure, run_child};
use crate::{Campaign, Outcome, Rng};

/// Keep at least this many replies due, so that a kill finds work in flight.
const LOW_WATER: usize = 8;

/// The scenario and its negative control.
pub fn run(c: &Campaign) -> Result<Vec<Outcome>, String> {
    let kills = (c.trials / 2).max(1);
    let a = Airlock::new(&c.airlock, &c.dir.join("deliver-kill"))?;
    let (real, stalls) = campaign(&a, kills, || a.command(&["deliver", "--once"]))?;
    let integrity = a.integrity_failures();
    let ok = real.is_ok() && integrity.is_empty() && real.crashes > 0;
    let mut outcomes = vec![Outcome {
        name: "deliver-kill",
        trials: kills,
        figures: format!(
            "{real}; {}; guest blocked by a killed publish {stalls} time(s), each unblocked by the next host pass",
            integrity_figure(&integrity)
        ),
        ok,
    }];

    let control_kills = kills.clamp(1, 30);
    let b = Airlock::new(&c.airlock, &c.dir.join("deliver-kill-control"))?;
    let (control, _) = campaign(&b, control_kills, || {
        let mut cmd = Command::new(&c.driver);
        cmd.args([UNSAFE_ROLE, b.data.to_str().unwrap_or_default(), &b.session]);
        cmd
    })?;
    outcomes.push(Outcome {
        name: "deliver-kill/control mark-first",
        trials: control_kills,
        figures: format!("lost {} (must be > 0); {control}", control.lost.len()),
        ok: !control.lost.is_empty(),
    });
    Ok(outcomes)
}

/// Writes `n` more guest replies `d<next>…`, recorded as outbound.
fn top_up(
    guest: &GuestMailbox,
    history: &mut DeliveryHistory,
    next: &mut usize,
    n: usize,
) -> Result<(), String> {
    for _ in 0..n {
        let key = format!("d{next}");
        *next += 1;
        let id = MessageId::new(format!("out-{key}")).map_err(|e| e.to_string())?;
        let msg = NewOutboundMessage::new(id, "chat", format!(r#"{{"text":"{key}"}}"#));
        guest
            .write_message_out(&msg)
            .map_err(|e| format!("guest reply: {e}"))?;
        history.outbound(key);
    }
    Ok(())
}

/// The texts of the complete lines a delivery run printed (a line cut by
/// the kill is no delivery: a reader discards it) and how the run ended.
fn delivered_lines(
    child: std::process::Child,
    kill: Option<Kill>,
) -> Result<(Vec<String>, Run), String> {
    let run = run_child(child, kill)?;
    Ok((line_texts(&run.lines), run))
}

/// The message texts of complete lines `deliver` printed.
pub fn line_texts(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| line_text(l.as_bytes()))
        .collect()
}

/// The message text of one JSON line `deliver` printed.
fn line_text(line: &[u8]) -> Option<String> {
    let v = serde_json::from_slice::<serde_json::Value>(line).ok()?;
    v["content"]["text"].as_str().map(str::to_owned)
}

/// The texts of complete JSON lines.
pub fn texts(out: &[u8]) -> Vec<String> {
    out.split_inclusive(|b| *b == b'\n')
        .filter(|l| l.ends_with(b"\n"))
        .filter_map(line_text)
        .collect()
}

/// Kills `kills` delivery runs at random points, then lets one finish;
/// returns the report and how often the guest could not write meanwhile.
fn campaign(
    a: &Airlock,
    kills: usize,
    command: impl Fn() -> Command,
) -> Result<(DeliveryReport, usize), String> {
    let guest = GuestMailbox::open(&a.session_dir)
        .map_err(|e| format!("opening the guest mailbox: {e}"))?;
    let mut history = DeliveryHistory::new();
    let mut rng = Rng::from_time();
    let (mut next, mut delivered) = (0usize, std::collections::BTreeSet::new());
    let mut done = 0;
    let spawn = || {
        command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting the delivery run: {e}"))
    };
    // A session that stops delivering (every run fails) must end the loop.
    let mut runs = 0;
    let mut idle = false;
    let mut stalls = 0;
    let mut last_ending = String::from("no run yet");
    while done < kills {
        runs += 1;
        if runs > 20 * kills {
            return Err(format!(
                "delivery stalled: {done} kills in {runs} runs, the last {last_ending}"
            ));
        }
        // Replies in flight at a kill back off (the engine counts the kill as
        // a failed attempt): fresh ones keep the runs busy meanwhile.
        if (next - delivered.len() < LOW_WATER || idle)
            && let Err(blocked) = top_up(&guest, &mut history, &mut next, 2 * LOW_WATER)
        {
            // A host killed while publishing inbound.db leaves its
            // placeholder journal, which stops a read-only guest; one host
            // pass, even with nothing to deliver, must clear it.
            stalls += 1;
            let (keys, _) = delivered_lines(spawn()?, None)?;
            delivered.extend(keys.iter().cloned());
            history.run(keys, Vec::<String>::new());
            top_up(&guest, &mut history, &mut next, 2 * LOW_WATER).map_err(|e| {
                format!("the guest was still blocked after a host pass ({blocked}): {e}")
            })?;
        }
        // Killed after a random number of the due replies is printed (none:
        // during start-up or the settling of the last kill), a random
        // moment (under 3 ms) later.
        let due = (next - delivered.len()) as u64;
        let kill = Kill {
            after_lines: rng.below(due + 1) as usize,
            delay: Duration::from_micros(rng.below(3_000)),
        };
        let (keys, run) = delivered_lines(spawn()?, Some(kill))?;
        let killed = run.killed;
        last_ending = run.ending;
        // A run killed before printing anything had nothing visibly in flight.
        let in_flight: Vec<String> = if killed {
            keys.last().cloned().into_iter().collect()
        } else {
            Vec::new()
        };
        if killed {
            done += 1;
        }
        idle = keys.is_empty() && !killed;
        delivered.extend(keys.iter().cloned());
        history.run(keys, in_flight);
    }
    // Restarted, unharmed, until nothing is left (`--once` exits 0): what
    // backs off after a kill comes out within its back-off (seconds).
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let (keys, run) = delivered_lines(spawn()?, None)?;
        history.run(keys, Vec::<String>::new());
        if run.success || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok((history.check(), stalls))
}

const UNSAFE_ROLE: &str = "--unsafe-deliverer";

/// An adapter that reports each message delivered before it prints it
/// (it prints a message only when the next one arrives, or at the end).
#[derive(Debug, Default)]
struct MarkFirst {
    pending: Mutex<Option<String>>,
}

impl MarkFirst {
    fn flush(&self) {
        if let Some(line) = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            println!("{line}");
        }
    }
}

#[async_trait::async_trait]
impl airlock_host::ChannelAdapter for MarkFirst {
    async fn deliver(
        &self,
        d: &airlock_host::Delivery,
    ) -> Result<String, airlock_host::DeliveryError> {
        let line = serde_json::json!({ "content": d.content() }).to_string();
        let previous = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(line);
        if let Some(previous) = previous {
            println!("{previous}");
        }
        Ok("unsafe".into())
    }
}

/// The unsafe deliverer's role: drains the session with [`MarkFirst`].
pub fn unsafe_role(args: &[String]) -> Option<ExitCode> {
    let [role, data, session] = args else {
        return None;
    };
    if role != UNSAFE_ROLE {
        return None;
    }
    let run = async {
        let manager = crate::airlock::manager(std::path::Path::new(data))?;
        let adapter = Arc::new(MarkFirst::default());
        let deliverer = airlock_host::Deliverer::builder(manager, adapter.clone())
            .build()
            .map_err(|e| e.to_string())?;
        let session = airlock_core::SessionId::new(session.as_str()).map_err(|e| e.to_string())?;
        deliverer.drain(&session).await.map_err(|e| e.to_string())?;
        adapter.flush();
        Ok::<(), String>(())
    };
    Some(match crate::airlock::block_on(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("unsafe deliverer: {e}");
            ExitCode::FAILURE
        }
    })
}
