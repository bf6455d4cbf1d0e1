//! W5: how long after the host starts a write the guest, polling every
//! 10 ms, sees the message; and what an idle guest poll costs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock_sqlite_fs::GuestMailbox;
use airlock_sqlite_fs::guest::DEFAULT_POLL_LIMIT;

use crate::report::{Latencies, fail, figure, timed};
use crate::setup::{Host, chat_message};

/// The guest's poll interval (the W5 setting).
const POLL_EVERY: Duration = Duration::from_millis(10);
/// Longest a message may stay unseen before the run is declared broken.
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// When each message's write started, by id.
type Sent = Arc<Mutex<HashMap<String, Instant>>>;

/// Writes messages at uneven intervals while a guest thread polls.
pub async fn run(dir: &Path, quick: bool) -> Result<(), String> {
    let (messages, idle_polls) = if quick { (10, 20) } else { (200, 200) };
    let host = Host::open(dir)?;
    let session = host.new_session("bench").await?;
    let folder = host.manager.session_dir(&session);
    let sent: Sent = Arc::default();
    let guest = {
        let (folder, sent) = (folder.clone(), sent.clone());
        std::thread::spawn(move || watch(folder, sent, messages))
    };
    let mut gap = 0x9e37_79b9u32;
    for n in 0..messages {
        // Spread writes over the guest's poll cycle: 0–19 ms apart.
        gap ^= gap << 13;
        gap ^= gap >> 17;
        gap ^= gap << 5;
        tokio::time::sleep(Duration::from_millis(u64::from(gap % 20))).await;
        let message = chat_message(&format!("v{n}"), 200)?;
        let id = message.id.to_string();
        sent.lock()
            .map_err(|_| "a poisoned lock")?
            .insert(id, Instant::now());
        host.manager
            .write_message(&session.id, message)
            .await
            .map_err(fail("write_message"))?;
    }
    let seen = guest.join().map_err(|_| "the guest thread panicked")??;
    let seen = Latencies::new(seen)?;
    figure("w5.visible_p50_us", seen.p50_us());
    figure("w5.visible_p99_us", seen.percentile_us(99.0));
    host.manager
        .sync_acks(&session.id)
        .await
        .map_err(fail("sync_acks"))?;
    figure("w5.idle_poll_us", idle_poll(&folder, idle_polls)?);
    Ok(())
}

/// The guest: polls every [`POLL_EVERY`] until it has seen `expected`
/// messages, acking each.
fn watch(folder: PathBuf, sent: Sent, expected: usize) -> Result<Vec<Duration>, String> {
    let guest = GuestMailbox::open(&folder).map_err(fail("opening the guest side"))?;
    let mut seen = Vec::with_capacity(expected);
    let mut last_progress = Instant::now();
    let mut next_poll = Instant::now();
    while seen.len() < expected {
        let rows = guest
            .pending(DEFAULT_POLL_LIMIT)
            .map_err(fail("guest poll"))?;
        let now = Instant::now();
        if !rows.is_empty() {
            last_progress = now;
            let sent = sent.lock().map_err(|_| "a poisoned lock")?;
            for row in &rows {
                let start = sent
                    .get(&row.id)
                    .ok_or_else(|| format!("the guest saw unknown message {:?}", row.id))?;
                seen.push(now.duration_since(*start));
            }
            let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
            guest.mark_completed(&ids).map_err(fail("guest ack"))?;
        } else if now.duration_since(last_progress) > GIVE_UP_AFTER {
            return Err(format!(
                "the guest saw {} of {expected} messages",
                seen.len()
            ));
        }
        // Every 10 ms from the last poll's start (a fixed rate, as a timer
        // would), not 10 ms after its acks: the acks' commits would
        // otherwise stretch every cycle and count as visibility latency.
        next_poll += POLL_EVERY;
        let now = Instant::now();
        if next_poll > now {
            std::thread::sleep(next_poll - now);
        } else {
            next_poll = now;
        }
    }
    Ok(seen)
}

/// The p50 of a guest poll that finds nothing.
fn idle_poll(folder: &Path, polls: usize) -> Result<f64, String> {
    let guest = GuestMailbox::open(folder).map_err(fail("opening the guest side"))?;
    // The first poll of a guest also considers on_wake rows: not the idle case.
    guest
        .pending(DEFAULT_POLL_LIMIT)
        .map_err(fail("guest poll"))?;
    let mut samples = Vec::with_capacity(polls);
    for _ in 0..polls {
        let (rows, took) = timed(|| guest.pending(DEFAULT_POLL_LIMIT));
        let rows = rows.map_err(fail("guest poll"))?;
        if !rows.is_empty() {
            return Err(format!("an idle poll returned {} rows", rows.len()));
        }
        samples.push(took);
    }
    Ok(Latencies::new(samples)?.p50_us())
}
