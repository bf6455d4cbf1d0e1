//! W1: one 200-byte inbound message written back to back to one session,
//! plus the floor (bare SQLite open + INSERT + close, `DELETE`/`FULL`, same
//! folder) and 16 concurrent writers on one session.
//!
//! `cargo run --release -p airlock-sqlite-fs --example w1_write -- DIR [N]`
//! (DIR on a real disk, e.g. /var/tmp; N messages per case, default 300).

use std::path::Path;
use std::time::{Duration, Instant};

use airlock_core::mailbox::NewInboundMessage;
use airlock_core::{AgentGroupId, MessageId, SessionId, SessionRef};
use airlock_sqlite_fs::{MailboxRoots, PlainContent};

fn content(i: usize) -> String {
    let text = format!("{{\"text\":\"{i:06}");
    format!("{text}{}\"}}", "x".repeat(200 - text.len() - 2))
}

fn report(name: &str, mut lat: Vec<Duration>, wall: Duration) {
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "{name:<28} n={:<5} {:>8.0} msgs/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
        lat.len(),
        lat.len() as f64 / wall.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3
    );
}

fn floor(dir: &Path, n: usize) {
    let db = dir.join("floor.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=DELETE; CREATE TABLE t (id TEXT PRIMARY KEY, content TEXT)",
    )
    .unwrap();
    drop(conn);
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        conn.execute(
            "INSERT INTO t VALUES (?1, ?2)",
            (format!("m{i}"), content(i)),
        )
        .unwrap();
        drop(conn);
        lat.push(t.elapsed());
    }
    report("floor (open+INSERT+close)", lat, start.elapsed());
}

fn main() {
    let mut args = std::env::args().skip(1);
    let base = std::path::PathBuf::from(args.next().expect("usage: w1_write DIR [N]"));
    let n: usize = args.next().map_or(300, |s| s.parse().unwrap());
    // W1_CASE=floor|one|sixteen runs one case alone (to count its fsyncs).
    let case = std::env::var("W1_CASE").unwrap_or_default();
    let wants = |c: &str| case.is_empty() || case == c;
    let run = tempfile::tempdir_in(&base).unwrap();
    if wants("floor") {
        floor(run.path(), n);
    }
    let roots = MailboxRoots::in_data_dir(run.path());
    let session = |name: &str| {
        SessionRef::new(
            AgentGroupId::new("ag").unwrap(),
            SessionId::new(name).unwrap(),
        )
    };
    let host = roots.create_session(&session("w1")).unwrap();
    let host16 = roots.create_session(&session("w1-16")).unwrap();
    if wants("one") {
        one_writer(&host, n);
    }
    if wants("sixteen") {
        sixteen_writers(&host16, n);
    }
}

fn one_writer(host: &airlock_sqlite_fs::HostMailbox, n: usize) {
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let msg =
            NewInboundMessage::new(MessageId::new(format!("m{i}")).unwrap(), "chat", content(i));
        let t = Instant::now();
        host.write_message(&msg, &PlainContent).unwrap();
        lat.push(t.elapsed());
    }
    report("W1 one writer", lat, start.elapsed());
}

fn sixteen_writers(host: &airlock_sqlite_fs::HostMailbox, n: usize) {
    let writers = 16;
    let start = Instant::now();
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let host = host.clone();
            std::thread::spawn(move || {
                (0..n / writers)
                    .map(|i| {
                        let msg = NewInboundMessage::new(
                            MessageId::new(format!("w{w}-{i}")).unwrap(),
                            "chat",
                            content(i),
                        );
                        let t = Instant::now();
                        host.write_message(&msg, &PlainContent).unwrap();
                        t.elapsed()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let lat: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    report("W1 16 writers, one session", lat, start.elapsed());
}
