//! Conformance checks of the guest half: polling, claims, state, heartbeat.

use std::time::Duration;

use crate::guest_mailbox::ToolInFlight;
use crate::host_mailbox::{GuestStopped, HostMailboxStoreExt as _};
use crate::mailbox::AckStatus;
use crate::memory::MemorySessionStore;
use crate::session::{ContainerStatus, ResolveRequest, SessionMode};
use crate::store::{SessionStore as _, SessionStoreExt as _};
use crate::testing::agent;
use crate::time::Timestamp;

use super::{MailboxUnderTest, inbound};

/// A poll returns the newest `limit` unacked messages, oldest first.
pub async fn pending_is_the_newest_n_oldest_first(t: &MailboxUnderTest) {
    for i in 1..=5 {
        t.host
            .write_message(inbound(&format!("m{i}"), "x"))
            .await
            .unwrap();
    }
    let guest = t.guest();
    let now = Timestamp::now();
    let first = guest.pending(3, now).await.unwrap();
    let seqs: Vec<i64> = first.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [6, 8, 10]);
    let ids: Vec<String> = first.iter().map(|m| m.id.clone()).collect();
    guest.ack(&ids, AckStatus::Processing).await.unwrap();
    let rest = guest.pending(3, now).await.unwrap();
    let seqs: Vec<i64> = rest.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [2, 4]);
    assert!(guest.pending(0, now).await.unwrap().is_empty());
}

/// `on_wake` messages go only to a guest's first poll, and to every new guest's.
pub async fn on_wake_is_only_for_a_first_poll(t: &MailboxUnderTest) {
    let mut wake = inbound("wake", "resume");
    wake.on_wake = true;
    t.host.write_message(wake).await.unwrap();
    t.host.write_message(inbound("plain", "x")).await.unwrap();
    let now = Timestamp::now();
    let guest = t.guest();
    let ids = |v: Vec<crate::mailbox::InboundMessage>| -> Vec<String> {
        v.into_iter().map(|m| m.id).collect()
    };
    assert_eq!(
        ids(guest.pending(10, now).await.unwrap()),
        ["wake", "plain"]
    );
    assert_eq!(ids(guest.pending(10, now).await.unwrap()), ["plain"]);
    drop(guest);
    let next = t.guest();
    assert_eq!(ids(next.pending(10, now).await.unwrap()), ["wake", "plain"]);
}

/// A guest that starts forgets the `processing` claims of the one before it.
pub async fn a_new_guest_drops_stale_claims(t: &MailboxUnderTest) {
    t.host.write_message(inbound("m1", "x")).await.unwrap();
    t.host.write_message(inbound("m2", "y")).await.unwrap();
    let now = Timestamp::now();
    let crashed = t.guest();
    crashed
        .ack(&["m1".into()], AckStatus::Processing)
        .await
        .unwrap();
    crashed
        .ack(&["m2".into()], AckStatus::Completed)
        .await
        .unwrap();
    assert_eq!(t.host.processing_claims().await.unwrap(), ["m1"]);
    drop(crashed);
    let next = t.guest();
    assert!(t.host.processing_claims().await.unwrap().is_empty());
    let pending = next.pending(10, now).await.unwrap();
    let ids: Vec<&str> = pending.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["m1"], "the claim is gone, the completed ack stays");
}

/// Session state keeps the last value per key; the tool in flight reaches the host.
pub async fn state_and_tool_in_flight(t: &MailboxUnderTest) {
    let guest = t.guest();
    assert_eq!(guest.state("cursor").await.unwrap(), None);
    guest.set_state("cursor", "1").await.unwrap();
    guest.set_state("cursor", "2").await.unwrap();
    guest.set_state("other", "x").await.unwrap();
    assert_eq!(guest.state("cursor").await.unwrap().as_deref(), Some("2"));

    guest
        .set_tool_in_flight(Some(ToolInFlight {
            tool: "bash".into(),
            declared_timeout_ms: Some(30_000),
        }))
        .await
        .unwrap();
    let state = t.host.container_state().await.unwrap().unwrap();
    assert_eq!(state.current_tool.as_deref(), Some("bash"));
    assert_eq!(state.tool_declared_timeout_ms, Some(30_000));
    assert!(state.tool_started_at.is_some());
    guest.set_tool_in_flight(None).await.unwrap();
    let state = t.host.container_state().await.unwrap().unwrap();
    assert_eq!(state.current_tool, None);
    assert_eq!(state.tool_declared_timeout_ms, None);
}

/// No heartbeat means no age; after one, the age grows with the host's clock.
pub async fn heartbeat_age_follows_the_guest(t: &MailboxUnderTest) {
    assert_eq!(t.host.heartbeat_age(Timestamp::now()).await.unwrap(), None);
    let guest = t.guest();
    guest.touch_heartbeat().await.unwrap();
    let now = Timestamp::now();
    let age = t.host.heartbeat_age(now.plus_millis(60_000)).await.unwrap();
    let age = age.expect("a heartbeat was touched");
    assert!(age >= Duration::from_secs(59), "{age:?}");
    // The host's clock behind the guest's counts as zero, never negative.
    let age = t
        .host
        .heartbeat_age(now.plus_millis(-60_000))
        .await
        .unwrap();
    assert_eq!(age, Some(Duration::ZERO));
}

/// A guest about to start gets what its mount needs; after it stopped (as
/// the registry says), recovery of a mailbox it left clean finds nothing.
pub async fn guest_start_and_stop_leave_the_mailbox_usable(t: &MailboxUnderTest) {
    t.host.write_message(inbound("m1", "x")).await.unwrap();
    let setup = t.host.prepare_guest().await.unwrap();
    if let Some(dir) = &setup.session_dir {
        assert!(dir.is_dir(), "{}", dir.display());
    }
    let guest = t.guest();
    guest.touch_heartbeat().await.unwrap();
    drop(guest);

    let registry = MemorySessionStore::new();
    let request = ResolveRequest::new(agent("conformance"), None, None, SessionMode::AgentShared);
    let session = registry.resolve_session(request).await.unwrap().session;
    assert_eq!(
        GuestStopped::from_session(
            &registry
                .set_container_status(&session.id, ContainerStatus::Running, Timestamp::now())
                .await
                .unwrap()
        ),
        None,
        "a running guest gives no proof"
    );
    let stopped = registry
        .set_container_status(&session.id, ContainerStatus::Stopped, Timestamp::now())
        .await
        .unwrap();
    let proof = GuestStopped::from_session(&stopped).expect("stopped");
    assert!(!t.host.recover_stopped_guest(proof).await.unwrap());
    assert_eq!(t.host.counts().await.unwrap().inbound, 1);
    assert_eq!(
        t.guest().pending(10, Timestamp::now()).await.unwrap().len(),
        1
    );
}
