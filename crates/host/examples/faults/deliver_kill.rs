//! Delivery loop killed: `airlock deliver --once` (the stdout adapter) gets
//! SIGKILL at random points and is restarted each time, while the guest's
//! replies keep coming. Every reply must reach stdout at least once, and
//! more than once only the one in flight at a kill.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_core::MessageId;
use airlock_core::mailbox::NewOutboundMessage;
use airlock_core::testing::history::{DeliveryHistory, DeliveryReport};
use airlock_sqlite_fs::GuestMailbox;

use crate::airlock::Airlock;
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
            "{real}; integrity failures {}; guest blocked by a killed publish {stalls} time(s), each unblocked by the next host pass",
            integrity.len()
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
/// the kill is no delivery: a reader discards it).
fn delivered_lines(
    mut child: std::process::Child,
    kill_after: Option<Duration>,
) -> Result<(Vec<String>, bool), String> {
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut keys = Vec::new();
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            if line.ends_with(b"\n")
                && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&line)
                && let Some(text) = v["content"]["text"].as_str()
            {
                keys.push(text.to_owned());
            }
            line.clear();
        }
        keys
    });
    if let Some(delay) = kill_after {
        std::thread::sleep(delay);
        let _ = child.kill();
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let keys = reader.join().map_err(|_| "reader thread panicked")?;
    let killed = kill_after.is_some() && !status.success() && status.code().is_none();
    Ok((keys, killed))
}

/// The texts of complete JSON lines.
pub fn texts(out: &[u8]) -> Vec<String> {
    out.split_inclusive(|b| *b == b'\n')
        .filter(|l| l.ends_with(b"\n"))
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .filter_map(|v| v["content"]["text"].as_str().map(str::to_owned))
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
    let mut window = Duration::from_millis(40);
    let mut done = 0;
    let spawn = || {
        command()
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting the delivery run: {e}"))
    };
    // A session that stops delivering (every run fails) must end the loop.
    let mut runs = 0;
    let mut idle = false;
    let mut stalls = 0;
    while done < kills {
        runs += 1;
        if runs > 20 * kills {
            return Err(format!("delivery stalled: {done} kills in {runs} runs"));
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
        let delay = Duration::from_micros(rng.below(window.as_micros() as u64 + 1));
        let (keys, killed) = delivered_lines(spawn()?, Some(delay))?;
        // A run killed before printing anything had nothing visibly in flight.
        let in_flight: Vec<String> = if killed {
            keys.last().cloned().into_iter().collect()
        } else {
            Vec::new()
        };
        if killed {
            done += 1;
        }
        // Kills should land while replies are printed: widen or narrow the window.
        if keys.is_empty() {
            window = window.mul_f32(1.5).min(Duration::from_secs(5));
        } else if !killed {
            window = window.mul_f32(0.7).max(Duration::from_millis(1));
        }
        idle = keys.is_empty() && !killed;
        delivered.extend(keys.iter().cloned());
        history.run(keys, in_flight);
    }
    // Restarted, unharmed, until nothing is left (`--once` exits 0): what
    // backs off after a kill comes out within its back-off (seconds).
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let mut child = spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let out = std::io::read_to_string(stdout).map_err(|e| e.to_string())?;
        let status = child.wait().map_err(|e| e.to_string())?;
        history.run(texts(out.as_bytes()), Vec::<String>::new());
        if status.success() || std::time::Instant::now() > deadline {
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
