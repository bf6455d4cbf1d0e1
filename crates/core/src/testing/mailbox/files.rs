//! Conformance checks of files travelling beside messages: reply files,
//! outbox confinement and inline inbound attachments.

use crate::attachment::OutboxFile;
use crate::error::Error;
use crate::guest_mailbox::Reply;
use crate::host_mailbox::HostMailboxStoreExt;
use crate::mailbox::{NewInboundMessage, WriteOutcome};
use crate::message_content::declared_files;
use crate::time::Timestamp;

use super::{MailboxUnderTest, mid, outbound};

fn file(name: &str, data: &[u8]) -> OutboxFile {
    OutboxFile {
        name: name.into(),
        data: data.to_vec(),
    }
}

/// A reply's files are declared in its content and read back by the host
/// with it; clearing the outbox removes them.
pub async fn reply_files_travel_with_the_reply(t: &MailboxUnderTest) {
    let guest = t.guest();
    let reply = Reply {
        message: outbound("r1", "see attached"),
        files: vec![
            file("report.txt", b"report"),
            file("chart.png", &[0, 1, 2, 255]),
        ],
    };
    let written = guest.write_reply(reply).await.unwrap();
    assert_eq!(written.files, ["report.txt", "chart.png"]);

    let due = t.host.due_with_files(Timestamp::now()).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        declared_files(&due[0].message.content),
        ["report.txt", "chart.png"]
    );
    assert!(due[0].message.content.contains("see attached"));
    assert_eq!(
        due[0].files,
        [
            file("report.txt", b"report"),
            file("chart.png", &[0, 1, 2, 255])
        ]
    );
    // A name the message did not store is skipped, not an error.
    let some = t
        .host
        .read_outbox_files("r1", &["missing.txt".into(), "report.txt".into()])
        .await
        .unwrap();
    assert_eq!(some, [file("report.txt", b"report")]);

    t.host.clear_outbox("r1").await;
    let after = t
        .host
        .read_outbox_files("r1", &["report.txt".into()])
        .await
        .unwrap();
    assert!(after.is_empty(), "{after:?}");
    // Clearing again (nothing there) is still quiet.
    t.host.clear_outbox("r1").await;
}

/// A reply with an unsafe or repeated file name, or files on content that is
/// not a JSON object, is refused and stores nothing.
pub async fn unsafe_reply_files_store_nothing(t: &MailboxUnderTest) {
    let guest = t.guest();
    for files in [
        vec![file("../escape.txt", b"x")],
        vec![file("a/b.txt", b"x")],
        vec![file("", b"x")],
        vec![file("same.txt", b"1"), file("same.txt", b"2")],
    ] {
        let reply = Reply {
            message: outbound("r-bad", "x"),
            files,
        };
        let err = guest.write_reply(reply).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput(_) | Error::InvalidId(_)),
            "{err:?}"
        );
    }
    let mut plain = outbound("r-plain", "x");
    plain.content = "not json".into();
    let err = guest
        .write_reply(Reply {
            message: plain,
            files: vec![file("a.txt", b"x")],
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    assert_eq!(t.host.counts().await.unwrap().outbound, 0);
    let none = t
        .host
        .read_outbox_files("r-bad", &["same.txt".into(), "a.txt".into()])
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
}

/// The host refuses an outbox message id (guest text) that is not a safe component.
pub async fn unsafe_outbox_ids_are_refused(t: &MailboxUnderTest) {
    for id in ["../other", "a/b", "", ".."] {
        let err = t
            .host
            .read_outbox_files(id, &["x".into()])
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidId(_)), "{id:?}: {err:?}");
        // Best effort, never a panic, never anything outside.
        t.host.clear_outbox(id).await;
    }
}

/// Inline attachments become files once; a retry writes no second copy.
pub async fn inline_attachments_are_written_once(t: &MailboxUnderTest) {
    if !t.capabilities.inline_attachments {
        eprintln!(
            "SKIPPED inline_attachments_are_written_once: the backend stores content byte for byte (capability inline_attachments = false)"
        );
        return;
    }
    let content = r#"{"text":"pic","attachments":[{"name":"a.txt","data":"aGVsbG8="},{"name":"bad.txt","data":"!!!"}]}"#;
    let msg = NewInboundMessage::new(mid("m1"), "chat", content);
    let written = t.host.write_message(msg.clone()).await.unwrap();
    assert_eq!(written.outcome, WriteOutcome::Inserted);
    assert_eq!(written.attachments.len(), 2, "{:?}", written.attachments);
    assert_eq!(written.attachments[0].name.as_deref(), Some("a.txt"));
    assert_eq!(
        written.attachments[0].local_path.as_deref(),
        Some("inbox/m1/a.txt")
    );
    assert!(
        written.attachments[1].error.is_some(),
        "invalid base64 is reported"
    );

    let again = t.host.write_message(msg).await.unwrap();
    assert_eq!(again.outcome, WriteOutcome::Duplicate);
    assert_eq!(again.seq, written.seq);

    let pending = t.guest().pending(10, Timestamp::now()).await.unwrap();
    assert_eq!(pending.len(), 1);
    let stored: serde_json::Value = serde_json::from_str(&pending[0].content).unwrap();
    assert_eq!(stored["attachments"][0]["localPath"], "inbox/m1/a.txt");
    assert!(stored["attachments"][0].get("data").is_none());
    assert!(stored["attachments"][1]["error"].is_string());
    assert_eq!(stored["text"], "pic");
}
