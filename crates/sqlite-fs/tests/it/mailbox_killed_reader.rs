//! Fault campaign, delivery loop killed: a host reader killed mid-read of
//! `outbound.db` leaves its host-state link to the file; the next read must
//! not take it for the guest's second name and refuse the session forever.

use airlock_sqlite_fs::GuestMailbox;

use crate::mailbox_common::*;

#[test]
fn deliver_kill_a_stale_snapshot_link_does_not_stall_the_session() {
    let fx = Fixture::new();
    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    guest
        .write_message_out(&reply("r1", r#"{"text":"hi"}"#))
        .unwrap();
    assert_eq!(
        fx.host
            .due_outbound(airlock_core::Timestamp::now())
            .unwrap()
            .len(),
        1
    );
    // What a reader killed between linking and unlinking leaves behind.
    let link = fx.host.host_state().dir().join("outbound.db.snapshot");
    std::fs::hard_link(fx.session_dir().join("outbound.db"), &link).unwrap();
    let due = fx
        .host
        .due_outbound(airlock_core::Timestamp::now())
        .unwrap();
    assert_eq!(due.len(), 1);
    assert!(!link.exists(), "the stale link is removed");
}
