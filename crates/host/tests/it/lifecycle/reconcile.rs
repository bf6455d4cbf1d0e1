//! A host restart with sessions the registry says are running and no live
//! guests: all end stopped, their claims recovered, nothing lost.

use airlock_core::{ContainerStatus, SessionStoreExt};
use airlock_sqlite_fs::GuestMailbox;

use crate::lifecycle::support::{Guest, Rig};

#[tokio::test]
async fn sessions_said_running_with_no_guest_end_stopped_with_claims_recovered() {
    let rig = Rig::new(&[]);
    let mut sessions = Vec::new();
    for (i, status) in [
        ContainerStatus::Running,
        ContainerStatus::Idle,
        ContainerStatus::Running,
    ]
    .into_iter()
    .enumerate()
    {
        let s = rig.session(&format!("c{i}")).await;
        rig.at_secs(0);
        rig.send(&s, "m1").await;
        rig.send(&s, "m2").await;
        rig.manager
            .store()
            .set_container_status(&s.id, status, rig.at_secs(0))
            .await
            .unwrap();
        // The old host's guest claimed m1 and died with the host.
        GuestMailbox::open(rig.manager.session_dir(&s))
            .unwrap()
            .mark_processing(&["m1"])
            .unwrap();
        sessions.push(s);
    }
    // The third one's guest survived the restart (a runtime that kept it).
    rig.fake.set_running(&sessions[2].id, true);

    let restarted = Rig::at(rig._dir, &[Guest::Answer]);
    restarted.fake.set_running(&sessions[2].id, true);
    let out = restarted
        .sweeper
        .reconcile(restarted.at_secs(5))
        .await
        .unwrap();
    assert_eq!(out.len(), 3);
    for s in &sessions[..2] {
        let now = restarted.manager.session(&s.id).await.unwrap();
        assert_eq!(now.container_status, ContainerStatus::Stopped);
        let m1 = restarted.inbound(s, "m1");
        assert_eq!((m1.status.as_str(), m1.tries), ("pending", 1), "{}", s.id);
        let m2 = restarted.inbound(s, "m2");
        assert_eq!((m2.status.as_str(), m2.tries), ("pending", 0));
    }
    let alive = restarted.manager.session(&sessions[2].id).await.unwrap();
    assert_eq!(alive.container_status, ContainerStatus::Running);
    assert_eq!(restarted.inbound(&sessions[2], "m1").tries, 0);

    // Nothing lost: the next tick wakes guests that answer m2 at once and m1 after its backoff.
    let r = restarted
        .sweeper
        .tick_session(&sessions[0].id, restarted.at_secs(6))
        .await
        .unwrap();
    assert!(r.woke);
}
