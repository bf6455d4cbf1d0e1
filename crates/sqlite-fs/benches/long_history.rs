//! The host's per-message costs on a session with a long history: what a
//! host pays once a session has run for a while.
//!
//! - `due_outbound`: 2,000 guest replies of 8 KiB each, all delivered but the newest;
//! - `write_message`: one new message into an `inbound.db` holding 2,000
//!   messages of 8 KiB (tmpfs, so fsync is not what is measured);
//! - `sync_acks`: the guest has completed all 2,000, and they are synced already.
//!
//! The session lives on tmpfs unless `AIRLOCK_BENCH_DIR` names another folder.
use std::hint::black_box;

use airlock_core::mailbox::{NewInboundMessage, NewOutboundMessage};
use airlock_core::{AgentGroupId, MessageId, SessionId, SessionRef, Timestamp};
use airlock_sqlite_fs::{GuestMailbox, HostMailbox, MailboxRoots, PlainContent};
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
        let id = MessageId::new(format!("m{n}")).unwrap();
        host.write_message(
            &NewInboundMessage::new(id, "chat", content.clone()),
            &PlainContent,
        )
        .unwrap();
    }
    let ids: Vec<String> = (0..=HISTORY).map(|n| format!("m{n}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    guest.mark_processing(&ids).unwrap();
    guest.mark_completed(&ids).unwrap();
    assert_eq!(host.sync_acks().unwrap(), HISTORY + 1);
    host
}

fn bench(c: &mut Criterion) {
    // tmpfs where there is one, so fsync is not what is measured;
    // AIRLOCK_BENCH_DIR puts the session on a disk of your choice instead.
    let base = std::env::var_os("AIRLOCK_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let shm = std::path::Path::new("/dev/shm");
            if shm.is_dir() {
                shm.into()
            } else {
                std::env::temp_dir()
            }
        });
    let tmp = tempfile::Builder::new()
        .prefix("airlock-bench-")
        .tempdir_in(base)
        .unwrap();
    let host = session_with_history(tmp.path());
    let due = host.due_outbound(Timestamp::now()).unwrap();
    assert_eq!(due.len(), 1, "exactly the newest reply is due");
    c.bench_function("due_outbound/2000_delivered_8KiB", |b| {
        b.iter(|| black_box(host.due_outbound(Timestamp::now()).unwrap()))
    });
    c.bench_function("sync_acks/2000_synced", |b| {
        b.iter(|| assert_eq!(host.sync_acks().unwrap(), 0))
    });
    let mut n = 0u64;
    c.bench_function("write_message/2000_stored_8KiB", |b| {
        b.iter(|| {
            n += 1;
            let id = MessageId::new(format!("new-{n}")).unwrap();
            let msg = NewInboundMessage::new(id, "chat", "{\"text\":\"hi\"}");
            black_box(host.write_message(&msg, &PlainContent).unwrap())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
