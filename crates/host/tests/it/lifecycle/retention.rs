//! Retention: what a dry run lists is what prune removes, an active
//! session is never pruned, and a prune killed at any step is finished by
//! the next run with registry and folders consistent.

use std::collections::BTreeSet;
use std::path::Path;

use airlock_core::{Session, SessionFilter, SessionStatus, SessionStoreExt, Timestamp};
use airlock_host::lifecycle::{Retention, is_prunable};

use crate::lifecycle::support::Rig;

const DAY_MS: i64 = 86_400_000;

#[test]
fn only_archived_sessions_idle_since_before_the_cutoff_are_prunable() {
    let base = Timestamp::parse("2026-06-01 00:00:00").unwrap();
    let cutoff = base.plus_millis(30 * DAY_MS);
    let session = |status, last_active: Option<i64>| Session {
        status,
        last_active: last_active.map(|d| base.plus_millis(d * DAY_MS)),
        created_at: base,
        ..airlock_core::ResolveRequest::new(
            airlock_core::AgentGroupId::new("ag").unwrap(),
            None,
            None,
            airlock_core::SessionMode::Shared,
        )
        .new_session(airlock_core::SessionId::generate(), base)
    };
    let rows = [
        (SessionStatus::Active, Some(1), false),
        (SessionStatus::Active, None, false),
        (SessionStatus::Archived, Some(1), true),
        (SessionStatus::Archived, None, true),
        (SessionStatus::Archived, Some(30), false),
        (SessionStatus::Archived, Some(31), false),
    ];
    for (status, last, want) in rows {
        assert_eq!(
            is_prunable(&session(status, last), cutoff),
            want,
            "{status:?} {last:?}"
        );
    }
}

/// A host with `archived` archived sessions idle since now, one active and
/// one archived but used after the cutoff; each with an inbox file.
async fn populated(archived: usize) -> (Rig, Vec<Session>, Vec<Session>, Timestamp) {
    let rig = Rig::new(&[]);
    let cutoff = Timestamp::now().plus_millis(DAY_MS);
    let (mut gone, mut kept) = (Vec::new(), Vec::new());
    for i in 0..archived + 2 {
        let s = rig.session(&format!("c{i}")).await;
        rig.send(&s, "m1").await;
        let inbox = rig.manager.session_dir(&s).join("inbox/m1");
        std::fs::create_dir_all(&inbox).unwrap();
        std::fs::write(inbox.join("a.txt"), vec![b'x'; 1000]).unwrap();
        if i == archived {
            kept.push(s); // active
            continue;
        }
        rig.manager.store().archive_session(&s.id).await.unwrap();
        if i == archived + 1 {
            let later = cutoff.plus_millis(3_600_000);
            rig.manager
                .store()
                .touch_session(&s.id, later)
                .await
                .unwrap();
            kept.push(s);
        } else {
            gone.push(s);
        }
    }
    (rig, gone, kept, cutoff)
}

async fn registry(rig: &Rig) -> BTreeSet<String> {
    let all = rig
        .manager
        .store()
        .list_sessions(SessionFilter::default())
        .await
        .unwrap();
    all.into_iter().map(|s| s.id.to_string()).collect()
}

fn folders(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for group in std::fs::read_dir(root).unwrap().flatten() {
        for s in std::fs::read_dir(group.path()).unwrap().flatten() {
            out.insert(s.file_name().to_string_lossy().into_owned());
        }
    }
    out
}

fn ids(sessions: &[Session]) -> BTreeSet<String> {
    sessions.iter().map(|s| s.id.to_string()).collect()
}

#[tokio::test]
async fn the_dry_run_lists_exactly_what_prune_removes_and_never_an_active_session() {
    let (rig, gone, kept, cutoff) = populated(2).await;
    let retention = Retention::new(rig.manager.clone());
    let plan = retention.plan(cutoff).await.unwrap();
    assert_eq!(
        plan.iter()
            .map(|i| i.session.to_string())
            .collect::<BTreeSet<_>>(),
        ids(&gone)
    );
    assert!(
        plan.iter().all(|i| i.bytes >= 1000 && !i.resumed),
        "{plan:#?}"
    );
    let states: Vec<_> = plan.iter().map(|i| i.host_state.clone()).collect();
    let removed = retention.prune(cutoff).await.unwrap();
    assert_eq!(removed, plan);
    assert_eq!(registry(&rig).await, ids(&kept));
    assert_eq!(folders(rig.manager.roots().sessions().path()), ids(&kept));
    assert!(states.iter().all(|p| !p.exists()));
    for s in &kept {
        assert_eq!(rig.inbound(s, "m1").id, "m1");
    }
    assert!(retention.plan(cutoff).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_prune_killed_at_any_step_is_finished_by_the_next_run() {
    let mut seed: u64 = 0x5eed;
    for trial in 0..56 {
        // A small LCG: the step to stop at, over every step of 1-3 sessions.
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let archived = 1 + (seed >> 33) as usize % 3;
        let kill_at = (seed >> 40) as usize % (5 * archived + 1);
        let (rig, gone, kept, cutoff) = populated(archived).await;
        let retention = Retention::new(rig.manager.clone());
        let killed = retention.prune_killed_after(cutoff, kill_at).await;
        assert_eq!(killed.is_err(), kill_at < 5 * archived, "trial {trial}");
        // What the next run will remove is what a dry run says now.
        let plan = retention.plan(cutoff).await.unwrap();
        let removed = retention.prune(cutoff).await.unwrap();
        assert_eq!(removed, plan, "trial {trial}");
        let root = rig.manager.roots().sessions().path().to_path_buf();
        assert_eq!(
            registry(&rig).await,
            ids(&kept),
            "trial {trial} (stop after {kill_at})"
        );
        assert_eq!(
            folders(&root),
            ids(&kept),
            "trial {trial} (stop after {kill_at})"
        );
        for s in &gone {
            assert!(
                !rig.manager.mailbox(s).host_state().dir().exists(),
                "trial {trial}"
            );
        }
        for s in &kept {
            assert_eq!(rig.inbound(s, "m1").status, "pending", "trial {trial}");
        }
    }
}

#[tokio::test]
async fn usage_counts_each_session_and_each_agent_group() {
    let (rig, gone, kept, _) = populated(1).await;
    let usage = Retention::new(rig.manager.clone()).usage().await.unwrap();
    assert_eq!(usage.sessions.len(), gone.len() + kept.len());
    assert!(
        usage
            .sessions
            .iter()
            .all(|s| s.folder_bytes >= 1000 && s.host_state_bytes > 0)
    );
    let total: u64 = usage
        .sessions
        .iter()
        .map(|s| s.folder_bytes + s.host_state_bytes)
        .sum();
    assert_eq!(usage.agent_groups.get("ag"), Some(&total));
}
