//! The guest's idle poll: after a poll that found nothing, the next polls
//! read only the two files' headers until a file changes or a scheduled
//! row comes due, and never miss a message for it.

use airlock_core::Timestamp;
use airlock_sqlite_fs::{GuestMailbox, PlainContent};

use crate::mailbox_common::{Fixture, msg};

/// Overwrites `inbound.db` after its 100-byte header with zeros (same
/// size, same inode, same change counter) and returns what was there.
fn blank_after_header(fx: &Fixture) -> Vec<u8> {
    let path = fx.host.paths().inbound_db();
    let original = std::fs::read(&path).unwrap();
    let mut blanked = original.clone();
    blanked[100..].fill(0);
    use std::io::{Seek, Write};
    let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.seek(std::io::SeekFrom::Start(0)).unwrap();
    file.write_all(&blanked).unwrap();
    original
}

#[test]
fn an_idle_poll_reads_only_the_headers_until_a_file_changes() {
    let fx = Fixture::new();
    fx.host
        .write_message(&msg("m1", "{}"), &PlainContent)
        .unwrap();
    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    let now = Timestamp::now();
    assert_eq!(guest.pending_at(10, now).unwrap().len(), 1, "first poll");
    guest.mark_completed(&["m1"]).unwrap();
    assert!(guest.pending_at(10, now).unwrap().is_empty(), "acked");

    // Nothing changed: the next poll does not open the database, so even
    // a body SQLite could not read answers "nothing new".
    let original = blank_after_header(&fx);
    assert!(guest.pending_at(10, now).unwrap().is_empty());
    std::fs::write(fx.host.paths().inbound_db(), &original).unwrap();

    // A host write changes the file: the next poll reads it.
    fx.host
        .write_message(&msg("m2", "{}"), &PlainContent)
        .unwrap();
    let ids: Vec<String> = guest
        .pending_at(10, Timestamp::now())
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, ["m2"]);
}

#[test]
fn a_scheduled_row_comes_due_with_no_file_changing() {
    let fx = Fixture::new();
    let now = Timestamp::now();
    fx.write_scheduled("later", now, 60_000);
    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    assert!(guest.pending_at(10, now).unwrap().is_empty(), "first poll");
    assert!(
        guest
            .pending_at(10, now.plus_millis(30_000))
            .unwrap()
            .is_empty()
    );
    let due = guest.pending_at(10, now.plus_millis(60_001)).unwrap();
    assert_eq!(due.len(), 1, "due at its time although no file changed");
    assert_eq!(due[0].id, "later");
}

#[test]
fn a_change_to_outbound_db_alone_ends_the_idle_state() {
    let fx = Fixture::new();
    fx.host
        .write_message(&msg("m1", "{}"), &PlainContent)
        .unwrap();
    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    let now = Timestamp::now();
    assert_eq!(guest.pending_at(10, now).unwrap().len(), 1);
    guest.mark_processing(&["m1"]).unwrap();
    assert!(guest.pending_at(10, now).unwrap().is_empty(), "claimed");
    // A second guest handle clears the claim (a commit to outbound.db, no
    // change to inbound.db): the first handle's next poll must see m1.
    drop(GuestMailbox::open(fx.session_dir()).unwrap());
    assert_eq!(guest.pending_at(10, now).unwrap().len(), 1);
}
