//! Every reply delivered once, in seq order, across a host restart.

use std::sync::Arc;

use airlock_host::delivery::{RecordingAdapter, Scope, Script};
use airlock_sqlite_fs::host::PageLimits;

use crate::delivery::support::{Host, quick};

#[tokio::test]
async fn a_restart_in_the_middle_delivers_the_rest_and_nothing_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let host = Host::at(tmp.path());
    let mut sessions = Vec::new();
    for s in 0..3 {
        let session = host.session(&format!("chat-{s}")).await;
        for i in 0..20 {
            host.reply(&session, &format!("s{s}-m{i}"), &format!("reply {i}"));
        }
        sessions.push(session);
    }
    let mut config = quick();
    config.page = PageLimits {
        max_rows: 3,
        max_bytes: 1 << 20,
    };
    // The first deliverer stops at message 8 of each session (a failure),
    // then the process "restarts".
    let first = Arc::new(RecordingAdapter::new());
    for s in 0..3 {
        first.script_message(&format!("s{s}-m8"), Script::Transient(1));
    }
    let report = host
        .deliverer(first.clone(), config)
        .poll(Scope::Active)
        .await
        .unwrap();
    assert_eq!((report.delivered, report.retrying), (24, 3), "{report:?}");
    drop(host);

    let host = Host::at(tmp.path());
    for session in &sessions {
        for i in 20..25 {
            host.reply(session, &format!("{}-late-{i}", session.id), "late");
        }
    }
    let second = Arc::new(RecordingAdapter::new());
    let deliverer = host.deliverer(second.clone(), config);
    let report = deliverer.deliver_now(Scope::Active).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.delivered, 3 * 12 + 3 * 5);
    // Nothing left, nothing twice.
    let again = deliverer.deliver_now(Scope::Active).await.unwrap();
    assert_eq!(again.delivered, 0, "{again:?}");

    let all: Vec<_> = first
        .recorded()
        .into_iter()
        .chain(second.recorded())
        .collect();
    for session in &sessions {
        let seqs: Vec<i64> = all
            .iter()
            .filter(|r| r.session == session.id.as_str())
            .map(|r| r.seq)
            .collect();
        let expected: Vec<i64> = (0..25).map(|i| 1 + 2 * i).collect();
        assert_eq!(seqs, expected, "each once, in seq order");
    }
    // The failed attempt survived the restart: message 8 succeeded on attempt 2.
    let m8 = second
        .recorded()
        .into_iter()
        .find(|r| r.id == "s0-m8")
        .unwrap();
    assert_eq!(m8.attempt, 2);
    // Routing defaults to the session's chat.
    assert_eq!(m8.routing.channel_type.as_deref(), Some("slack"));
    assert_eq!(m8.routing.platform_id.as_deref(), Some("chat-0"));
}
