//! Runs the shared mailbox conformance suite against the SQLite-file mailbox.

use std::sync::Arc;

use airlock_core::MailboxFactory;
use airlock_core::testing::{MailboxCapabilities, MailboxUnderTest, fresh_session};
use airlock_sqlite_fs::MailboxRoots;
use airlock_sqlite_fs::attachments::AttachmentLimits;
use airlock_sqlite_fs::mailbox_impl::SqliteMailboxes;

async fn sqlite_mailbox() -> Option<MailboxUnderTest> {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mailboxes = SqliteMailboxes::new(
        MailboxRoots::in_data_dir(tmp.path()),
        AttachmentLimits::default(),
    );
    let session = fresh_session();
    let host = mailboxes
        .create_mailbox(&session)
        .await
        .expect("create mailbox");
    let (guests, of) = (mailboxes.clone(), session.clone());
    Some(MailboxUnderTest {
        factory: Arc::new(mailboxes),
        session,
        host,
        start_guest: Box::new(move || Arc::new(guests.open_guest(&of).expect("open guest"))),
        capabilities: MailboxCapabilities {
            inline_attachments: true,
        },
        guard: Box::new(tmp),
    })
}

airlock_core::mailbox_conformance!(sqlite_mailbox);

/// The platform-id property over sequences proptest draws (and shrinks).
mod platform_id_props {
    use airlock_core::testing::{
        PLATFORM_IDS, PLATFORM_TEXTS, platform_id_sequence_is_stored_once,
    };
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
        #[test]
        fn sqlite_mailbox_stores_every_distinct_platform_message_once(
            pairs in proptest::collection::vec((0..PLATFORM_IDS.len(), 0..PLATFORM_TEXTS.len()), 1..40)
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let t = super::sqlite_mailbox().await.unwrap();
                platform_id_sequence_is_stored_once(&t, &pairs).await;
            });
        }
    }
}

/// The guest's reply-with-files protocol on real files.
mod reply_protocol {
    use airlock_core::testing::{fresh_session, outbound};
    use airlock_core::{GuestMailboxStore, MailboxFactory, OutboxFile, Reply};
    use airlock_sqlite_fs::MailboxRoots;
    use airlock_sqlite_fs::attachments::AttachmentLimits;
    use airlock_sqlite_fs::mailbox_impl::SqliteMailboxes;

    fn reply(id: &str) -> Reply {
        Reply {
            message: outbound(id, "with a file"),
            files: vec![OutboxFile {
                name: "report.txt".into(),
                data: b"report".to_vec(),
            }],
        }
    }

    fn entries(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reply_whose_row_fails_leaves_no_files_and_keeps_a_stored_replys() {
        let tmp = tempfile::tempdir().unwrap();
        let mailboxes = SqliteMailboxes::new(
            MailboxRoots::in_data_dir(tmp.path()),
            AttachmentLimits::default(),
        );
        let session = fresh_session();
        mailboxes.create_mailbox(&session).await.unwrap();
        let guest = mailboxes.open_guest(&session).unwrap();
        let dir = guest.inner().dir();
        guest.write_reply(reply("r1")).await.unwrap();
        assert_eq!(
            std::fs::read(dir.join("outbox/r1/report.txt")).unwrap(),
            b"report"
        );

        std::fs::write(dir.join("outbound.db"), b"not a database").unwrap();
        guest.write_reply(reply("r2")).await.unwrap_err();
        assert_eq!(
            entries(&dir.join("outbox")),
            ["r1"],
            "no files of r2, no staging left"
        );
        // A retry of the stored reply that fails must not remove its files.
        guest.write_reply(reply("r1")).await.unwrap_err();
        assert_eq!(
            std::fs::read(dir.join("outbox/r1/report.txt")).unwrap(),
            b"report"
        );
        assert_eq!(entries(&dir.join("outbox")), ["r1"]);
    }
}
