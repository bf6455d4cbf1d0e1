//! `due_outbound` on a session with a long delivered history: what a host
//! delivery loop pays per poll once a session has run for a while.
//!
//! Workload: 2,000 guest replies of 8 KiB each, all delivered but the newest.
use std::hint::black_box;

use airlock_core::mailbox::NewOutboundMessage;
use airlock_core::{AgentGroupId, MessageId, SessionId, SessionRef, Timestamp};
use airlock_sqlite_fs::{GuestMailbox, HostMailbox, MailboxRoots};
use criterion::{Criterion, criterion_group, criterion_main};

const HISTORY: usize = 2_000;
const CONTENT_BYTES: usize = 8 * 1024;

fn session_with_history(dir: &std::path::Path) -> HostMailbox {
    let roots = MailboxRoots::in_data_dir(dir);
    let session = SessionRef::new(
        AgentGroupId::new("ag-bench").unwrap(),
        SessionId::new("sess-bench").unwrap(),
    );
    let host = roots.create_session(&session).unwrap();
    let guest = GuestMailbox::open(host.paths().dir()).unwrap();
    let content = format!("{{\"text\":\"{}\"}}", "x".repeat(CONTENT_BYTES));
    for n in 0..=HISTORY {
        let id = MessageId::new(format!("r{n}")).unwrap();
        guest
            .write_message_out(&NewOutboundMessage::new(id, "chat", content.clone()))
            .unwrap();
        if n < HISTORY {
            host.mark_delivered(&format!("r{n}"), None).unwrap();
        }
    }
    host
}

fn bench(c: &mut Criterion) {
    // tmpfs where there is one: the setup's fsyncs say nothing about the read path.
    let tmp = tempfile::Builder::new()
        .prefix("airlock-bench-")
        .tempdir_in(if std::path::Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        })
        .unwrap();
    let host = session_with_history(tmp.path());
    let due = host.due_outbound(Timestamp::now()).unwrap();
    assert_eq!(due.len(), 1, "exactly the newest reply is due");
    c.bench_function("due_outbound/2000_delivered_8KiB", |b| {
        b.iter(|| black_box(host.due_outbound(Timestamp::now()).unwrap()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
