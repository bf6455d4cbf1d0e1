//! W1 (one writer, one session, back to back) and W6 (16 writers on one
//! session; 100 sessions written at once): 200-byte messages through
//! `SessionManager::write_message`, each call timed until it returns.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock_core::SessionId;
use airlock_host::SessionManager;

use crate::report::{Latencies, fail, figure};
use crate::setup::{Host, chat_message};

/// Bytes of content of every message (the W1 size).
const MESSAGE_BYTES: usize = 200;

/// How many writers hit how many sessions.
struct Load {
    sessions: usize,
    writers_per_session: usize,
    messages_per_writer: usize,
}

/// What a load measured.
struct Outcome {
    msgs_per_s: f64,
    latencies: Latencies,
}

/// W1: one session, one writer.
pub async fn w1(dir: &Path, quick: bool) -> Result<(), String> {
    let load = Load {
        sessions: 1,
        writers_per_session: 1,
        messages_per_writer: if quick { 30 } else { 500 },
    };
    let out = run_load(dir, &load).await?;
    figure("w1.msgs_per_s", out.msgs_per_s);
    figure("w1.p50_us", out.latencies.p50_us());
    figure("w1.p99_us", out.latencies.percentile_us(99.0));
    Ok(())
}

/// W6: 16 writers on one session, then 100 sessions with one writer each.
pub async fn w6(dir: &Path, quick: bool) -> Result<(), String> {
    let one = Load {
        sessions: 1,
        writers_per_session: 16,
        messages_per_writer: if quick { 4 } else { 50 },
    };
    let out = run_load(&dir.join("one"), &one).await?;
    figure("w6.one_session_16_writers.msgs_per_s", out.msgs_per_s);
    figure("w6.one_session_16_writers.p50_us", out.latencies.p50_us());
    figure(
        "w6.one_session_16_writers.p99_us",
        out.latencies.percentile_us(99.0),
    );
    let many = Load {
        sessions: 100,
        writers_per_session: 1,
        messages_per_writer: if quick { 2 } else { 20 },
    };
    let out = run_load(&dir.join("many"), &many).await?;
    figure("w6.sessions_100.msgs_per_s", out.msgs_per_s);
    figure("w6.sessions_100.p50_us", out.latencies.p50_us());
    figure("w6.sessions_100.p99_us", out.latencies.percentile_us(99.0));
    Ok(())
}

async fn run_load(dir: &Path, load: &Load) -> Result<Outcome, String> {
    std::fs::create_dir_all(dir).map_err(fail("creating the load's folder"))?;
    let host = Host::open(dir)?;
    let mut sessions = Vec::with_capacity(load.sessions);
    for _ in 0..load.sessions {
        sessions.push(host.new_session("bench").await?.id);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (s, session) in sessions.iter().enumerate() {
        for w in 0..load.writers_per_session {
            let manager = host.manager.clone();
            let session = session.clone();
            let prefix = format!("s{s}-w{w}");
            let count = load.messages_per_writer;
            tasks.push(tokio::spawn(writer(manager, session, prefix, count)));
        }
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.map_err(fail("a writer task"))??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(Outcome {
        msgs_per_s: samples.len() as f64 / elapsed,
        latencies: Latencies::new(samples)?,
    })
}

/// Writes `count` messages back to back, timing each call.
async fn writer(
    manager: Arc<SessionManager>,
    session: SessionId,
    prefix: String,
    count: usize,
) -> Result<Vec<Duration>, String> {
    let mut samples = Vec::with_capacity(count);
    for n in 0..count {
        let message = chat_message(&format!("{prefix}-m{n}"), MESSAGE_BYTES)?;
        let start = Instant::now();
        manager
            .write_message(&session, message)
            .await
            .map_err(fail("write_message"))?;
        samples.push(start.elapsed());
    }
    Ok(samples)
}
