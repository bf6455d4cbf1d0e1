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
