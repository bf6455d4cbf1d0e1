//! Mailbox basics: creation, schemas, writes, polls, replies, deliveries, acks.

use airlock_core::mailbox::{InboundStatus, Origin, WriteOutcome};
use airlock_core::{Seq, Timestamp};
use airlock_sqlite_fs::{GuestMailbox, PlainContent};

use crate::mailbox_common::{Fixture, msg, reply};

#[test]
fn host_writes_guest_polls_and_replies() {
    let fx = Fixture::new();
    let a = fx
        .host
        .write_message(&msg("m1", r#"{"text":"hi"}"#), &PlainContent)
        .unwrap();
    let b = fx
        .host
        .write_message(&msg("m2", r#"{"text":"there"}"#), &PlainContent)
        .unwrap();
    assert_eq!((a.seq, b.seq), (2, 4));
    assert_eq!(a.outcome, WriteOutcome::Inserted);

    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    let pending = guest.pending(10).unwrap();
    assert_eq!(
        pending.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["m1", "m2"]
    );
    assert_eq!(pending[0].series_id.as_deref(), Some("m1"));
    assert_eq!(pending[0].status, "pending");

    guest.mark_processing(&["m1", "m2"]).unwrap();
    assert!(guest.pending(10).unwrap().is_empty());
    let seq = guest
        .write_message_out(&reply("r1", r#"{"text":"ok"}"#))
        .unwrap();
    assert_eq!(seq, 5);
    guest.mark_completed(&["m1"]).unwrap();

    let due = fx.host.due_outbound(Timestamp::now()).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].id.as_str(), due[0].seq, due[0].origin),
        ("r1", 5, Origin::Guest)
    );
    fx.host.mark_delivered("r1", Some("P-1")).unwrap();
    assert!(fx.host.due_outbound(Timestamp::now()).unwrap().is_empty());
    assert_eq!(fx.host.sync_acks().unwrap(), 1);
    let rows = fx.host.list_inbound(10).unwrap();
    assert_eq!(rows[0].status, "completed");
    assert_eq!(rows[1].status, "pending");

    let target = guest.lookup_seq(Seq::new(5)).unwrap().unwrap();
    assert_eq!(target.platform_message_id.as_deref(), Some("P-1"));
    let target = guest.lookup_seq(Seq::new(4)).unwrap().unwrap();
    assert_eq!(target.platform_message_id.as_deref(), Some("m2"));
    assert!(guest.lookup_seq(Seq::new(99)).unwrap().is_none());
    fx.assert_no_wal();
}

use std::cell::RefCell;
use std::time::Duration;

use crate::mailbox_common::{integrity, registry_proof};
use airlock_core::mailbox::{Destination, NewHostMessage, Routing};
use airlock_core::{AttachmentOutcome, ContainerStatus, ExtractedContent, MessageId};
use airlock_sqlite_fs::InboundContent;

#[test]
fn retries_are_no_ops_and_reused_ids_are_renamed() {
    let fx = Fixture::new();
    let first = fx
        .host
        .write_message(&msg("m1", "A"), &PlainContent)
        .unwrap();
    let retry = fx
        .host
        .write_message(&msg("m1", "A"), &PlainContent)
        .unwrap();
    assert_eq!(
        (retry.seq, retry.outcome.clone()),
        (2, WriteOutcome::Duplicate)
    );
    assert_eq!(first.outcome, WriteOutcome::Inserted);
    let other = fx
        .host
        .write_message(&msg("m1", "B"), &PlainContent)
        .unwrap();
    assert_eq!(other.id.as_str(), "m1#2");
    assert_eq!(other.seq, 4);
    assert_eq!(
        other.outcome,
        WriteOutcome::Renamed {
            original: MessageId::new("m1").unwrap()
        }
    );
    let other_retry = fx
        .host
        .write_message(&msg("m1", "B"), &PlainContent)
        .unwrap();
    assert_eq!(
        (
            other_retry.id.as_str(),
            other_retry.seq,
            other_retry.outcome
        ),
        ("m1#2", 4, WriteOutcome::Duplicate)
    );
    let third = fx
        .host
        .write_message(&msg("m1", "C"), &PlainContent)
        .unwrap();
    assert_eq!((third.id.as_str(), third.seq), ("m1#3", 6));
    // An unrelated id that merely starts with the same text is not a derived id.
    let lookalike = fx
        .host
        .write_message(&msg("m1#x", "A"), &PlainContent)
        .unwrap();
    assert_eq!(lookalike.outcome, WriteOutcome::Inserted);
    let rows = fx.host.list_inbound(10).unwrap();
    let ids: Vec<_> = rows
        .iter()
        .map(|r| (r.id.as_str(), r.series_id.as_deref().unwrap()))
        .collect();
    assert_eq!(
        ids,
        [
            ("m1", "m1"),
            ("m1#2", "m1#2"),
            ("m1#3", "m1#3"),
            ("m1#x", "m1#x")
        ]
    );
    fx.assert_no_wal();
}

#[test]
fn retries_of_renamed_messages_with_the_longest_ids_are_recognised() {
    let fx = Fixture::new();
    // 255 bytes with a two-byte char where "#2" must cut: the base is shortened.
    let id = format!("{}éx", "x".repeat(252));
    let write = |content| {
        fx.host
            .write_message(&msg(&id, content), &PlainContent)
            .unwrap()
    };
    assert_eq!(write("A").outcome, WriteOutcome::Inserted);
    let renamed = write("B");
    assert_eq!(renamed.id.as_str(), format!("{}#2", "x".repeat(252)));
    let retried = write("B");
    assert_eq!(
        (retried.id.as_str(), retried.seq, retried.outcome),
        (renamed.id.as_str(), renamed.seq, WriteOutcome::Duplicate)
    );
    let third = write("C");
    assert_eq!(third.id.as_str(), format!("{}#3", "x".repeat(252)));
    assert_eq!(write("C").outcome, WriteOutcome::Duplicate);
    assert_eq!(write("A").outcome, WriteOutcome::Duplicate);
    assert_eq!(fx.host.list_inbound(10).unwrap().len(), 3);
}

/// Records calls; "prepares" by upper-casing and reports one attachment.
#[derive(Default)]
struct Recorder {
    calls: RefCell<Vec<String>>,
}

impl InboundContent for Recorder {
    fn prepare(&self, id: &MessageId, raw: &str) -> airlock_sqlite_fs::Result<ExtractedContent> {
        self.calls.borrow_mut().push(format!("prepare {id}"));
        Ok(ExtractedContent {
            content: raw.to_uppercase(),
            attachments: vec![AttachmentOutcome {
                index: 0,
                name: Some("a.png".into()),
                local_path: Some(format!("inbox/{id}/a.png")),
                error: None,
            }],
        })
    }

    fn same_message(
        &self,
        id: &MessageId,
        raw: &str,
        stored: &str,
    ) -> airlock_sqlite_fs::Result<bool> {
        self.calls.borrow_mut().push(format!("same {id}"));
        Ok(raw.to_uppercase() == stored)
    }
}

#[test]
fn content_hook_sees_stored_rows_first_and_prepares_with_the_final_id() {
    let fx = Fixture::new();
    let hook = Recorder::default();
    let w = fx.host.write_message(&msg("m", "abc"), &hook).unwrap();
    assert_eq!(
        w.attachments[0].local_path.as_deref(),
        Some("inbox/m/a.png")
    );
    assert_eq!(fx.host.list_inbound(1).unwrap()[0].content, "ABC");
    hook.calls.borrow_mut().clear();
    let dup = fx.host.write_message(&msg("m", "abc"), &hook).unwrap();
    assert_eq!(dup.outcome, WriteOutcome::Duplicate);
    assert!(dup.attachments.is_empty());
    assert_eq!(
        *hook.calls.borrow(),
        ["same m"],
        "no second copy of the files"
    );
    hook.calls.borrow_mut().clear();
    let renamed = fx.host.write_message(&msg("m", "xyz"), &hook).unwrap();
    assert_eq!(*hook.calls.borrow(), ["same m", "prepare m#2"]);
    assert_eq!(
        renamed.attachments[0].local_path.as_deref(),
        Some("inbox/m#2/a.png")
    );
    fx.assert_no_wal();
}

#[test]
fn host_messages_are_delivered_without_touching_outbound_or_parity() {
    let fx = Fixture::new();
    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    fx.host
        .write_message(&msg("in-1", "{}"), &PlainContent)
        .unwrap();
    assert_eq!(guest.write_message_out(&reply("g-1", "{}")).unwrap(), 3);
    let outbound_before = std::fs::read(fx.host.paths().outbound_db()).unwrap();
    let mut denial = NewHostMessage::new(MessageId::new("deny-1").unwrap(), r#"{"text":"denied"}"#);
    denial.platform_id = Some("C1".into());
    assert_eq!(fx.host.write_host_message(&denial).unwrap(), 4);
    assert_eq!(
        fx.host.write_host_message(&denial).unwrap(),
        4,
        "retry is a no-op"
    );
    let mut later = NewHostMessage::new(MessageId::new("deny-2").unwrap(), "{}");
    later.deliver_after = Some(Timestamp::now().plus_millis(3_600_000));
    assert_eq!(fx.host.write_host_message(&later).unwrap(), 6);
    assert_eq!(
        std::fs::read(fx.host.paths().outbound_db()).unwrap(),
        outbound_before
    );
    // A guest message reusing the host message's id cannot suppress it.
    guest.write_message_out(&reply("deny-1", "{}")).unwrap();
    let seq = guest.write_message_out(&reply("g-2", "{}")).unwrap();
    assert_eq!(seq, 9, "next odd above both tables");

    assert_eq!(
        guest
            .pending(10)
            .unwrap()
            .iter()
            .map(|m| m.id.as_str())
            .collect::<Vec<_>>(),
        ["in-1"]
    );
    assert_eq!(fx.host.count_due(Timestamp::now()).unwrap(), 1);
    let due = fx.host.due_outbound(Timestamp::now()).unwrap();
    let got: Vec<_> = due
        .iter()
        .map(|m| (m.id.as_str(), m.seq, m.origin))
        .collect();
    assert_eq!(
        got,
        [
            ("g-1", 3, Origin::Guest),
            ("deny-1", 4, Origin::Host),
            ("g-2", 9, Origin::Guest)
        ]
    );
    assert_eq!(due[1].platform_id.as_deref(), Some("C1"));
    fx.host.mark_delivered("deny-1", Some("P9")).unwrap();
    fx.host.mark_delivery_failed("g-1").unwrap();
    fx.host.mark_delivered("g-1", Some("late")).unwrap();
    let due = fx.host.due_outbound(Timestamp::now()).unwrap();
    assert_eq!(
        due.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["g-2"]
    );
    let later_due = fx
        .host
        .due_outbound(Timestamp::now().plus_millis(7_200_000))
        .unwrap();
    assert_eq!(
        later_due.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["deny-2", "g-2"]
    );
    let conn = rusqlite::Connection::open(fx.host.paths().inbound_db()).unwrap();
    let (status, platform_id): (String, Option<String>) = conn
        .query_row(
            "SELECT status, platform_message_id FROM delivered WHERE message_out_id = 'g-1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    // A delivery after a recorded failure (a retried dead letter) replaces it.
    assert_eq!(status, "delivered");
    assert_eq!(platform_id.as_deref(), Some("late"));
    fx.assert_no_wal();
}

#[test]
fn routing_destinations_and_system_responses() {
    let fx = Fixture::new();
    fx.host
        .write_routing(&Routing {
            channel_type: Some("slack".into()),
            platform_id: Some("C1".into()),
            thread_id: None,
        })
        .unwrap();
    fx.host.write_routing(&Routing::default()).unwrap();
    let dest = |name: &str| Destination {
        name: name.into(),
        display_name: None,
        kind: "channel".into(),
        channel_type: Some("slack".into()),
        platform_id: Some("C2".into()),
        agent_group_id: None,
    };
    fx.host
        .replace_destinations(&[dest("a"), dest("b")])
        .unwrap();
    fx.host.replace_destinations(&[dest("c")]).unwrap();
    let w = fx
        .host
        .write_system_response(
            MessageId::new("q-1-resp").unwrap(),
            "q-1",
            "approved",
            serde_json::json!({"ok": true}),
        )
        .unwrap();
    let conn = rusqlite::Connection::open(fx.host.paths().inbound_db()).unwrap();
    let routing: (i64, Option<String>) = conn
        .query_row(
            "SELECT count(*), max(channel_type) FROM session_routing",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(routing, (1, None));
    let names: Vec<String> = conn
        .prepare("SELECT name FROM destinations")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(names, ["c"]);
    let (kind, content): (String, String) = conn
        .query_row(
            "SELECT kind, content FROM messages_in WHERE seq = ?1",
            [w.seq],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(kind, "system");
    assert_eq!(
        content,
        r#"{"type":"question_response","questionId":"q-1","status":"approved","result":{"ok":true}}"#
    );
    fx.assert_no_wal();
}

#[test]
fn polls_honour_limits_due_times_wake_rows_and_acks() {
    let fx = Fixture::new();
    let now = Timestamp::now();
    for i in 0..15 {
        fx.host
            .write_message(&msg(&format!("m{i}"), "{}"), &PlainContent)
            .unwrap();
    }
    let mut wake = msg("wake", "{}");
    wake.on_wake = true;
    fx.host.write_message(&wake, &PlainContent).unwrap();
    fx.write_scheduled("later", now, 60_000);
    let mut context = msg("ctx", "{}");
    context.trigger = false;
    fx.host.write_message(&context, &PlainContent).unwrap();
    assert_eq!(
        fx.host.count_due(now).unwrap(),
        16,
        "15 + wake; not later, not context-only"
    );
    assert_eq!(fx.host.count_due(now.plus_millis(120_000)).unwrap(), 17);

    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    let first = guest.pending_at(3, now).unwrap();
    assert_eq!(
        first.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["m14", "wake", "ctx"],
        "newest N, oldest first"
    );
    let second = guest.pending_at(3, now).unwrap();
    assert_eq!(
        second.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["m13", "m14", "ctx"],
        "on_wake only on the first poll"
    );
    guest.mark_processing(&["m14", "ctx"]).unwrap();
    let third = guest.pending_at(100, now).unwrap();
    assert_eq!(third.len(), 14);
    assert_eq!(third.first().unwrap().id, "m0");
    assert_eq!(
        guest
            .pending_at(100, now.plus_millis(120_000))
            .unwrap()
            .last()
            .unwrap()
            .id,
        "later"
    );
    assert_eq!(
        guest
            .pending(airlock_sqlite_fs::guest::DEFAULT_POLL_LIMIT)
            .unwrap()
            .len(),
        10
    );

    // A fresh guest (after a crash) clears leftover claims and sees wake rows again.
    let fresh = GuestMailbox::open(fx.session_dir()).unwrap();
    let ids: Vec<String> = fresh
        .pending_at(100, now)
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert!(
        ids.contains(&"m14".to_string()) && ids.contains(&"wake".to_string()),
        "{ids:?}"
    );
    assert!(fx.host.processing_claims().unwrap().is_empty());
    fresh.mark_processing(&["m0"]).unwrap();
    assert_eq!(fx.host.processing_claims().unwrap(), ["m0"]);
    fresh.mark_failed(&["m0"]).unwrap();
    assert_eq!(fx.host.sync_acks().unwrap(), 1);
    assert_eq!(fx.host.list_inbound(100).unwrap()[0].status, "failed");
    fx.assert_no_wal();
}

#[test]
fn guest_state_tools_heartbeat_and_seq_parity() {
    let fx = Fixture::new();
    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    assert_eq!(fx.host.heartbeat_age(Timestamp::now()).unwrap(), None);
    guest.touch_heartbeat().unwrap();
    let age = fx
        .host
        .heartbeat_age(Timestamp::now().plus_millis(60_000))
        .unwrap()
        .unwrap();
    assert!(
        age >= Duration::from_secs(50) && age <= Duration::from_secs(70),
        "{age:?}"
    );

    assert_eq!(fx.host.container_state().unwrap(), None);
    guest.set_tool_in_flight("bash", Some(30_000)).unwrap();
    let state = fx.host.container_state().unwrap().unwrap();
    assert_eq!(
        (
            state.current_tool.as_deref(),
            state.tool_declared_timeout_ms
        ),
        (Some("bash"), Some(30_000))
    );
    guest.clear_tool_in_flight().unwrap();
    assert_eq!(
        fx.host.container_state().unwrap().unwrap().current_tool,
        None
    );

    assert_eq!(guest.state_get("k").unwrap(), None);
    guest.state_set("k", "1").unwrap();
    guest.state_set("k", "2").unwrap();
    assert_eq!(guest.state_get("k").unwrap().as_deref(), Some("2"));

    assert_eq!(guest.write_message_out(&reply("a", "{}")).unwrap(), 1);
    assert_eq!(
        guest.write_message_out(&reply("a", "{}")).unwrap(),
        1,
        "retry returns the stored seq"
    );
    fx.host
        .write_message(&msg("x", "{}"), &PlainContent)
        .unwrap();
    fx.host
        .write_message(&msg("y", "{}"), &PlainContent)
        .unwrap();
    assert_eq!(guest.write_message_out(&reply("b", "{}")).unwrap(), 5);
    assert_eq!(
        fx.host
            .write_message(&msg("z", "{}"), &PlainContent)
            .unwrap()
            .seq,
        6
    );
    assert_eq!(guest.write_message_out(&reply("c", "{}")).unwrap(), 7);
    let counts = fx.host.counts().unwrap();
    assert_eq!(
        (
            counts.inbound,
            counts.inbound_pending,
            counts.outbound,
            counts.delivered
        ),
        (3, 3, 3, 0)
    );
    let listed: Vec<i64> = fx
        .host
        .list_outbound(2)
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(listed, [5, 7]);
    assert!(registry_proof(ContainerStatus::Idle).is_none());
    assert_eq!(integrity(&fx.host.paths().outbound_db()), "ok");
    fx.assert_no_wal();
}

#[test]
fn guest_never_rolls_back_a_hot_inbound_journal() {
    let fx = Fixture::new();
    for i in 0..200 {
        fx.host
            .write_message(
                &msg(&format!("m{i}"), &crate::mailbox_common::bulky(i)),
                &PlainContent,
            )
            .unwrap();
    }
    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    // A hot journal (here: a copy of a real one) makes a read-only reader
    // fail with SQLITE_READONLY_ROLLBACK; a read-write open would replay it.
    let scratch = crate::mailbox_common::temp_dir();
    let copy = scratch.path().join("inbound.db");
    std::fs::copy(fx.host.paths().inbound_db(), &copy).unwrap();
    let journal = crate::mailbox_common::hot_journal_of(
        &copy,
        "UPDATE messages_in SET content = 'x' || content",
    );
    std::fs::copy(&journal, fx.host.paths().inbound_journal()).unwrap();
    let before = std::fs::read(fx.host.paths().inbound_db()).unwrap();
    let err = guest.pending(10).unwrap_err();
    assert!(
        matches!(err, airlock_sqlite_fs::Error::Persistent { .. }),
        "{err}"
    );
    assert_eq!(err.sqlite_code(), Some(776));
    assert!(
        guest.retry_stats().readonly_rollback > 0,
        "{:?}",
        guest.retry_stats()
    );
    assert_eq!(guest.retry_stats().gave_up, 1);
    assert_eq!(
        std::fs::read(fx.host.paths().inbound_db()).unwrap(),
        before,
        "guest changed inbound.db"
    );
    assert!(fx.host.paths().inbound_journal().exists());
    fx.assert_no_wal();
}

#[test]
fn due_outbound_finds_undelivered_rows_anywhere_in_a_long_history() {
    let fx = Fixture::new();
    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    let now = Timestamp::now();
    let later = now.plus_millis(60_000);
    for n in 1..=40 {
        let mut m = reply(&format!("r{n}"), &format!(r#"{{"n":{n}}}"#));
        if n == 3 {
            m.deliver_after = Some(later);
        }
        guest.write_message_out(&m).unwrap();
    }
    // Delivered: everything but r3 (scheduled), r7 (an old straggler) and r40.
    for n in (1..=40).filter(|n| ![3, 7, 40].contains(n)) {
        fx.host.mark_delivered(&format!("r{n}"), None).unwrap();
    }
    let ids = |due: Vec<airlock_core::mailbox::OutboundMessage>| {
        due.into_iter().map(|m| m.id).collect::<Vec<_>>()
    };
    assert_eq!(ids(fx.host.due_outbound(now).unwrap()), ["r7", "r40"]);
    fx.host.mark_delivered("r7", None).unwrap();
    fx.host.mark_delivery_failed("r40").unwrap();
    assert!(fx.host.due_outbound(now).unwrap().is_empty());
    let due = fx.host.due_outbound(later).unwrap();
    assert_eq!(
        due.iter()
            .map(|m| (m.id.as_str(), m.content.as_str()))
            .collect::<Vec<_>>(),
        [("r3", r#"{"n":3}"#)]
    );
}

#[test]
fn syncing_acks_that_are_already_synced_writes_nothing() {
    let fx = Fixture::new();
    for id in ["m1", "m2"] {
        fx.host
            .write_message(&msg(id, "{}"), &PlainContent)
            .unwrap();
    }
    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    guest.mark_processing(&["m1", "m2"]).unwrap();
    guest.mark_completed(&["m1"]).unwrap();
    assert_eq!(fx.host.sync_acks().unwrap(), 1);
    // Every publish bumps the published file's change counter.
    let before = crate::mailbox_common::inbound_counter(&fx);
    assert_eq!(fx.host.sync_acks().unwrap(), 0);
    assert_eq!(
        crate::mailbox_common::inbound_counter(&fx),
        before,
        "a sync with nothing to change wrote inbound.db"
    );
    guest.mark_failed(&["m2"]).unwrap();
    assert_eq!(fx.host.sync_acks().unwrap(), 1);
    let statuses: Vec<_> = fx
        .host
        .list_inbound(10)
        .unwrap()
        .into_iter()
        .map(|m| (m.id, m.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("m1".into(), InboundStatus::Completed),
            ("m2".into(), InboundStatus::Failed)
        ]
    );
}

#[test]
fn an_ack_status_the_guest_made_up_is_skipped_where_it_is_read() {
    let fx = Fixture::new();
    for id in ["m1", "m2"] {
        fx.host
            .write_message(&msg(id, "{}"), &PlainContent)
            .unwrap();
    }
    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    guest.mark_completed(&["m1"]).unwrap();
    let conn = rusqlite::Connection::open(fx.host.paths().outbound_db()).unwrap();
    conn.execute(
        "INSERT INTO processing_ack (message_id, status, status_changed) VALUES ('m2', 'COMPLETED', 'x')",
        [],
    )
    .unwrap();
    drop(conn);
    let acks = fx.host.processing_acks().unwrap();
    assert_eq!(
        acks.iter()
            .map(|a| a.message_id.as_str())
            .collect::<Vec<_>>(),
        ["m1"],
        "the made-up status is not passed on"
    );
    assert_eq!(fx.host.sync_acks().unwrap(), 1);
    let statuses: Vec<String> = fx
        .host
        .list_inbound(10)
        .unwrap()
        .into_iter()
        .map(|m| m.status.to_string())
        .collect();
    assert_eq!(statuses, ["completed", "pending"]);
}

/// Descriptors this process holds of the file at `path` (by device and inode).
fn descriptors_of(path: &std::path::Path) -> usize {
    use std::os::unix::fs::MetadataExt;
    let target = std::fs::metadata(path).unwrap();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|fd| std::fs::metadata(fd.path()).ok())
        .filter(|m| m.dev() == target.dev() && m.ino() == target.ino())
        .count()
}

/// Invariant 2: between operations the host holds no descriptor of
/// `inbound.db`; the publish attaches it to a pooled `host.db` connection
/// for one write only, and that connection stays open.
#[test]
fn no_descriptor_of_inbound_db_stays_open_between_writes() {
    let fx = Fixture::new();
    let inbound = fx.host.paths().inbound_db();
    for n in 0..3 {
        fx.host
            .write_message(&msg(&format!("m{n}"), "hello"), &PlainContent)
            .unwrap();
        assert_eq!(descriptors_of(&inbound), 0, "after write {n}");
    }
    assert!(
        descriptors_of(&fx.host.host_state().host_db()) > 0,
        "host.db's connections are pooled"
    );
    // The check sees a descriptor when there is one.
    let held = std::fs::File::open(&inbound).unwrap();
    assert_eq!(descriptors_of(&inbound), 1);
    drop(held);
}

/// A sync that found nothing is remembered (the next one skips
/// `outbound.db`) only while neither side changed: a new guest ack, or a
/// host commit that adds the row an earlier ack names, is synced at once.
#[test]
fn an_idle_ack_sync_is_remembered_only_until_either_side_changes() {
    let fx = Fixture::new();
    for id in ["m1", "m2"] {
        fx.host
            .write_message(&msg(id, "{}"), &PlainContent)
            .unwrap();
    }
    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    guest.mark_processing(&["m1", "m2"]).unwrap();
    guest.mark_completed(&["m1"]).unwrap();
    assert_eq!(fx.host.sync_acks().unwrap(), 1);
    assert_eq!(fx.host.sync_acks().unwrap(), 0);
    assert_eq!(fx.host.sync_acks().unwrap(), 0);
    // Only the guest's file changes.
    guest.mark_completed(&["m2"]).unwrap();
    assert_eq!(fx.host.sync_acks().unwrap(), 1);
    // An ack of a message the host has not stored yet settles nothing...
    guest.mark_completed(&["m3"]).unwrap();
    assert_eq!(fx.host.sync_acks().unwrap(), 0);
    assert_eq!(fx.host.sync_acks().unwrap(), 0);
    // ...until the host stores it: only host.db (its generation) changes.
    fx.host
        .write_message(&msg("m3", "{}"), &PlainContent)
        .unwrap();
    assert_eq!(fx.host.sync_acks().unwrap(), 1);
    let m3 = fx.host.inbound_message("m3").unwrap().unwrap();
    assert_eq!(m3.status, InboundStatus::Completed);
}

/// A sweep's reads that all found nothing make the session quiet for the
/// next sweep (no SQLite open at all), until the earliest scheduled message
/// comes due or the guest writes.
#[test]
fn idle_sweep_reads_make_the_session_quiet_until_something_changes() {
    let fx = Fixture::new();
    let now = Timestamp::now();
    fx.write_scheduled("later", now, 3_600_000);
    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    let sweep_reads = |at: Timestamp| {
        let synced = fx.host.sync_acks().unwrap();
        let recurring = fx.host.completed_recurring().unwrap().len();
        (synced, recurring, fx.host.count_due(at).unwrap())
    };
    assert!(!fx.host.quiet_for_sweep(now), "nothing was read yet");
    assert_eq!(sweep_reads(now), (0, 0, 0));
    assert!(fx.host.quiet_for_sweep(now), "every read was idle");
    assert!(
        fx.host.quiet_for_sweep(now.plus_millis(3_599_999)),
        "still before the scheduled time"
    );
    assert!(!fx.host.quiet_for_sweep(now.plus_millis(3_600_000)));
    guest.mark_processing(&["later"]).unwrap();
    assert!(!fx.host.quiet_for_sweep(now), "the guest's file changed");
    assert_eq!(sweep_reads(now), (0, 0, 0));
    assert!(fx.host.quiet_for_sweep(now));
}
