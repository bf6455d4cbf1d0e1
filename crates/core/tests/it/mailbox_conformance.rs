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

/// The platform-id property over sequences proptest draws (and shrinks).
mod platform_id_props {
    use airlock_core::testing::{
        PLATFORM_IDS, PLATFORM_TEXTS, platform_id_sequence_is_stored_once,
    };
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn memory_mailbox_stores_every_distinct_platform_message_once(
            pairs in proptest::collection::vec((0..PLATFORM_IDS.len(), 0..PLATFORM_TEXTS.len()), 1..60)
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let t = super::memory_mailbox().await.unwrap();
                platform_id_sequence_is_stored_once(&t, &pairs).await;
            });
        }
    }
}
