//! Runs the shared mailbox conformance suite against `MemoryMailboxes`.

use std::sync::Arc;

use airlock_core::testing::{MailboxCapabilities, MailboxUnderTest, fresh_session};
use airlock_core::{MailboxFactory, MemoryMailboxes};

async fn memory_mailbox() -> Option<MailboxUnderTest> {
    let mailboxes = MemoryMailboxes::new();
    let session = fresh_session();
    let host = mailboxes.create_mailbox(&session).await.unwrap();
    let (guests, of) = (mailboxes.clone(), session.clone());
    Some(MailboxUnderTest {
        factory: Arc::new(mailboxes),
        session,
        host,
        start_guest: Box::new(move || Arc::new(guests.guest(&of).expect("mailbox created"))),
        capabilities: MailboxCapabilities {
            inline_attachments: false,
        },
        guard: Box::new(()),
    })
}

airlock_core::mailbox_conformance!(memory_mailbox);
