//! Conformance checks of the batched reads a host loop makes of every
//! session on every tick: `change_stamps_of` and `quiet_for_sweep`.

use crate::attachment::SessionRef;
use crate::error::Result;
use crate::guest_mailbox::Reply;
use crate::mailbox::AckStatus;
use crate::pages::ChangeStamps;
use crate::time::Timestamp;

use super::{HOUR, MailboxUnderTest, fresh_session, inbound, outbound};

/// The stamps a batch read gives, comparable with a single read's.
fn comparable(stamps: &Result<ChangeStamps>) -> std::result::Result<ChangeStamps, String> {
    match stamps {
        Ok(stamps) => Ok(stamps.clone()),
        Err(e) => Err(e.to_string()),
    }
}

/// Checks one batch over the session and `missing` against single reads;
/// returns the session's stamps.
async fn check(t: &MailboxUnderTest, missing: &SessionRef, label: &str) -> ChangeStamps {
    let batch = t
        .factory
        .change_stamps_of(&[t.session.clone(), missing.clone()])
        .await;
    assert_eq!(batch.len(), 2, "{label}: one answer per session");
    let own = t.host.change_stamps().await;
    let other = t.factory.host_mailbox(missing).change_stamps().await;
    assert_eq!(
        comparable(&batch[0]),
        comparable(&own),
        "{label}: the session"
    );
    assert_eq!(
        comparable(&batch[1]),
        comparable(&other),
        "{label}: a session never created"
    );
    batch[0].as_ref().expect("stamps of the session").clone()
}

/// A batch of stamps answers, in order, what each mailbox's own
/// `change_stamps` answers, and moves with each half.
pub async fn change_stamps_of_answers_as_each_mailbox(t: &MailboxUnderTest) {
    let missing = fresh_session();
    let fresh = check(t, &missing, "fresh").await;
    t.host.write_message(inbound("m1", "hello")).await.unwrap();
    let written = check(t, &missing, "after a host write").await;
    assert_ne!(
        written.host, fresh.host,
        "a host write moves the host stamp"
    );
    t.guest()
        .write_reply(Reply::new(outbound("r1", "hi")))
        .await
        .unwrap();
    let replied = check(t, &missing, "after a guest reply").await;
    assert_ne!(
        replied.guest, written.guest,
        "a reply moves the guest stamp"
    );
    assert!(t.factory.change_stamps_of(&[]).await.is_empty());
}

/// What a sweep reads of the session: acks synced, completed recurring
/// messages, due count.
async fn sweep_reads(t: &MailboxUnderTest, now: Timestamp) -> (usize, usize, u64) {
    let synced = t.host.sync_acks().await.unwrap();
    let recurring = t.host.completed_recurring().await.unwrap().len();
    (synced, recurring, t.host.count_due(now).await.unwrap())
}

/// Whether the factory calls the session quiet for a sweep at `now`.
async fn quiet(t: &MailboxUnderTest, now: Timestamp) -> bool {
    let answers = t
        .factory
        .quiet_for_sweep(std::slice::from_ref(&t.session), now)
        .await;
    assert_eq!(answers.len(), 1, "one answer per session");
    answers[0]
}

/// A session called quiet is one whose sweep reads find nothing: checked
/// after each change a sweep must see (a scheduled message coming due, a
/// host write, a guest ack, a completed recurring message).
pub async fn quiet_for_sweep_never_hides_work(t: &MailboxUnderTest) {
    let now = Timestamp::now();
    let later = now.plus_millis(2 * HOUR);
    let mut scheduled = inbound("scheduled", "s");
    scheduled.process_after = Some(now.plus_millis(HOUR));
    t.host.write_message(scheduled).await.unwrap();
    assert_eq!(sweep_reads(t, now).await, (0, 0, 0), "nothing due yet");
    assert!(!quiet(t, later).await, "the scheduled message is due later");
    assert_eq!(sweep_reads(t, later).await, (0, 0, 1));

    let guest = t.guest();
    guest
        .ack(&["scheduled".into()], AckStatus::Completed)
        .await
        .unwrap();
    assert!(!quiet(t, now).await, "an ack to copy");
    assert_eq!(sweep_reads(t, now).await, (1, 0, 0));

    t.host.write_message(inbound("due", "d")).await.unwrap();
    assert!(!quiet(t, now).await, "a host write of due work");
    assert_eq!(sweep_reads(t, now).await, (0, 0, 1));

    let mut daily = inbound("daily", "standup");
    daily.recurrence = Some("0 9 * * *".into());
    t.host.write_message(daily).await.unwrap();
    let ids = ["due".to_owned(), "daily".to_owned()];
    guest.ack(&ids, AckStatus::Completed).await.unwrap();
    assert_eq!(t.host.sync_acks().await.unwrap(), 2);
    // The sync that finds nothing more may be remembered; the recurring
    // message it completed must still be found.
    assert_eq!(t.host.sync_acks().await.unwrap(), 0);
    assert!(!quiet(t, now).await, "a completed recurring message");
    assert_eq!(sweep_reads(t, now).await, (0, 1, 0));
    assert!(t.factory.quiet_for_sweep(&[], now).await.is_empty());
}
