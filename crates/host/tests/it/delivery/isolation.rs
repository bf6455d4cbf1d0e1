//! One broken session never stops the others, nor the loop.

use std::sync::Arc;
use std::time::Duration;

use airlock_host::delivery::{RecordingAdapter, Scope, Script};

use crate::delivery::support::{Host, quick};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_sessions_with_four_broken_deliver_the_other_46_in_one_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let host = Host::at(tmp.path());
    let mut sessions = Vec::new();
    for s in 0..50 {
        let session = host.session(&format!("chat-{s}")).await;
        host.reply(&session, &format!("s{s}-a"), "a");
        host.reply(&session, &format!("s{s}-b"), "b");
        sessions.push(session);
    }
    let corrupt = host.session_dir(&sessions[10]).join("outbound.db");
    std::fs::write(&corrupt, vec![0xa5u8; 8192]).unwrap();
    let fifo = host.session_dir(&sessions[11]).join("outbound.db");
    std::fs::remove_file(&fifo).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    std::fs::remove_file(host.session_dir(&sessions[12]).join("inbound.db")).unwrap();
    let adapter = Arc::new(RecordingAdapter::new());
    adapter.script_session(sessions[13].id.as_str(), Script::Hang);

    let mut config = quick();
    config.call_timeout = Duration::from_millis(300);
    let deliverer = host.deliverer(adapter.clone(), config);
    let report = deliverer.poll(Scope::Active).await.unwrap();
    assert_eq!(report.sessions, 50);
    // The session whose inbound.db was removed is repaired from host state
    // (a tamper event), so it delivers too: 47 sessions of 50.
    assert_eq!(report.delivered, 47 * 2, "{report:#?}");
    assert!(
        host.session_dir(&sessions[12]).join("inbound.db").is_file(),
        "the missing inbound.db is rebuilt from host state"
    );
    assert_eq!(
        report.retrying, 1,
        "the hanging call timed out: {report:#?}"
    );
    let mut failed: Vec<String> = report
        .errors
        .iter()
        .map(|e| e.session.to_string())
        .collect();
    failed.sort();
    let mut expected: Vec<String> = sessions[10..12].iter().map(|s| s.id.to_string()).collect();
    expected.sort();
    assert_eq!(failed, expected, "{report:#?}");
    let broken = |i: usize| {
        report
            .errors
            .iter()
            .find(|e| e.session == sessions[i].id)
            .unwrap()
            .error
            .clone()
    };
    assert!(broken(10).contains("outbound.db"), "{}", broken(10));
    assert!(broken(11).contains("outbound.db"), "{}", broken(11));
    let delivered: std::collections::HashSet<String> =
        adapter.recorded().into_iter().map(|r| r.session).collect();
    assert_eq!(delivered.len(), 47);

    // The loop goes on: it keeps passing over the broken sessions and
    // delivers what arrives in the healthy ones.
    host.reply(&sessions[0], "s0-late", "late");
    let runner = deliverer.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        runner
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
    for _ in 0..2000 {
        if adapter.recorded().iter().any(|r| r.id == "s0-late") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(adapter.recorded().iter().any(|r| r.id == "s0-late"));
    stop.send(()).unwrap();
    running.await.unwrap();
}

/// A guest caught mid-write (a hot journal beside its `outbound.db`) makes
/// its session guest-busy, not failed: nothing is read or marked, the pass
/// is not clean, and the next pass after the write ends delivers it all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_mid_write_is_guest_busy_not_a_failure_and_read_by_the_next_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let host = Host::at(tmp.path());
    let session = host.session("chat-busy").await;
    host.bulk_replies(&session, "r", 50, 2000);
    let db = host.session_dir(&session).join("outbound.db");
    let journal = db.with_extension("db-journal");
    // A journal the guest's open transaction would leave: written while a
    // write spills pages, kept, and the transaction rolled back.
    let hot = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "cache_size", 10).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE; UPDATE messages_out SET content = 'torn';")
            .unwrap();
        let hot = std::fs::read(&journal).unwrap();
        conn.execute_batch("ROLLBACK").unwrap();
        hot
    };
    assert!(hot.len() > 8 && hot[..8] != [0u8; 8], "the journal is hot");
    std::fs::write(&journal, &hot).unwrap();

    let adapter = Arc::new(RecordingAdapter::new());
    let deliverer = host.deliverer(adapter.clone(), quick());
    let report = deliverer.poll(Scope::Active).await.unwrap();
    assert_eq!(
        (report.guest_busy, report.errors.len(), report.delivered),
        (1, 0, 0),
        "{report:#?}"
    );
    assert!(!report.is_clean(), "messages are left: {report:#?}");

    // The guest's write ends (its journal goes): everything arrives.
    std::fs::remove_file(&journal).unwrap();
    let report = deliverer.poll(Scope::Active).await.unwrap();
    assert_eq!(
        (report.guest_busy, report.delivered),
        (0, 50),
        "{report:#?}"
    );
    assert!(report.is_clean(), "{report:#?}");
}
