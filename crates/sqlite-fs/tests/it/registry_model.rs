//! Model-based property test: random resolve / archive / update / delete
//! sequences against `SqliteSessionStore` agree with a plain model of
//! SPEC.md's resolution rules.

use airlock_core::testing::{agent, thread};
use airlock_core::{
    ContainerStatus, MessagingGroupId, NewMessagingGroup, ResolveRequest, SessionFilter, SessionId,
    SessionMode, SessionStatus, SessionStore, SessionStoreExt, SessionUpdate, Timestamp,
};
use airlock_sqlite_fs::SqliteSessionStore;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Resolve {
        agent: u8,
        chat: Option<u8>,
        thread: Option<u8>,
        mode: SessionMode,
    },
    Archive(usize),
    Reactivate(usize),
    Container(usize, ContainerStatus),
    Delete(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let mode = prop_oneof![
        Just(SessionMode::Shared),
        Just(SessionMode::PerThread),
        Just(SessionMode::AgentShared)
    ];
    let container = prop_oneof![
        Just(ContainerStatus::Running),
        Just(ContainerStatus::Idle),
        Just(ContainerStatus::Stopped)
    ];
    prop_oneof![
        6 => (0u8..3, proptest::option::of(0u8..3), proptest::option::of(0u8..3), mode)
            .prop_map(|(agent, chat, thread, mode)| Op::Resolve { agent, chat, thread, mode }),
        2 => any::<usize>().prop_map(Op::Archive),
        1 => any::<usize>().prop_map(Op::Reactivate),
        1 => (any::<usize>(), container).prop_map(|(i, c)| Op::Container(i, c)),
        1 => any::<usize>().prop_map(Op::Delete),
    ]
}

/// One session as the model sees it, written straight from SPEC.md.
#[derive(Debug, Clone)]
struct ModelSession {
    id: SessionId,
    agent: u8,
    chat: Option<u8>,
    thread: Option<u8>,
    mode: SessionMode,
    active: bool,
    container: ContainerStatus,
}

#[derive(Debug, Default)]
struct Model {
    sessions: Vec<ModelSession>,
}

impl Model {
    /// The active session SPEC.md says a resolve must find, if any.
    fn find(
        &self,
        agent: u8,
        chat: Option<u8>,
        thread: Option<u8>,
        mode: SessionMode,
    ) -> Option<&ModelSession> {
        self.sessions
            .iter()
            .filter(|s| s.active && s.agent == agent)
            .find(|s| match mode {
                SessionMode::AgentShared => s.mode == SessionMode::AgentShared,
                _ if chat.is_none() => false,
                SessionMode::PerThread if thread.is_some() => {
                    s.mode == SessionMode::PerThread && s.chat == chat && s.thread == thread
                }
                _ => s.mode != SessionMode::AgentShared && s.chat == chat && s.thread.is_none(),
            })
    }
}

async fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteSessionStore::open_in(dir.path()).unwrap();
    let mut chats: Vec<MessagingGroupId> = Vec::new();
    for i in 0..3 {
        chats.push(
            store
                .create_messaging_group(NewMessagingGroup::new("model", format!("chat-{i}")))
                .await
                .unwrap()
                .id,
        );
    }
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Resolve {
                agent: a,
                chat,
                thread: t,
                mode,
            } => {
                let request = ResolveRequest::new(
                    agent(&format!("agent-{a}")),
                    chat.map(|c| chats[c as usize].clone()),
                    t.map(|t| thread(&format!("thread-{t}"))),
                    mode,
                );
                let got = store.resolve_session(request).await.unwrap();
                match model.find(a, chat, t, mode) {
                    Some(expected) => {
                        assert!(
                            !got.created,
                            "{op:?}: created although {:?} matches",
                            expected.id
                        );
                        assert_eq!(got.session.id, expected.id, "{op:?}");
                    }
                    None => {
                        assert!(got.created, "{op:?}: reused {:?}", got.session.id);
                        let stored_thread = match mode {
                            SessionMode::PerThread if chat.is_some() => t,
                            _ => None,
                        };
                        model.sessions.push(ModelSession {
                            id: got.session.id.clone(),
                            agent: a,
                            chat,
                            thread: stored_thread,
                            mode,
                            active: true,
                            container: ContainerStatus::Stopped,
                        });
                    }
                }
            }
            Op::Archive(i) if !model.sessions.is_empty() => {
                let i = i % model.sessions.len();
                store.archive_session(&model.sessions[i].id).await.unwrap();
                model.sessions[i].active = false;
            }
            Op::Reactivate(i) if !model.sessions.is_empty() => {
                let i = i % model.sessions.len();
                let s = model.sessions[i].clone();
                // Sessions without a key (no chat, not agent-shared) never conflict.
                let has_key = s.chat.is_some() || s.mode == SessionMode::AgentShared;
                let taken =
                    !s.active && has_key && model.find(s.agent, s.chat, s.thread, s.mode).is_some();
                let result = store
                    .update_session(
                        &s.id,
                        SessionUpdate {
                            status: Some(SessionStatus::Active),
                            ..SessionUpdate::default()
                        },
                    )
                    .await;
                if taken {
                    assert!(
                        matches!(result, Err(airlock_core::Error::Conflict(_))),
                        "{result:?}"
                    );
                } else {
                    result.unwrap();
                    model.sessions[i].active = true;
                }
            }
            Op::Container(i, status) if !model.sessions.is_empty() => {
                let i = i % model.sessions.len();
                let updated = store
                    .set_container_status(&model.sessions[i].id, status, Timestamp::now())
                    .await
                    .unwrap();
                assert_eq!(updated.container_status, status);
                model.sessions[i].container = status;
            }
            Op::Delete(i) if !model.sessions.is_empty() => {
                let i = i % model.sessions.len();
                let s = model.sessions.remove(i);
                store.delete_session(&s.id).await.unwrap();
            }
            _ => {}
        }
    }
    let stored = store.list_sessions(SessionFilter::default()).await.unwrap();
    assert_eq!(stored.len(), model.sessions.len());
    for (got, want) in stored.iter().zip(&model.sessions) {
        assert_eq!(got.id, want.id, "order is creation order");
        assert_eq!(got.status == SessionStatus::Active, want.active);
        assert_eq!(got.container_status, want.container);
        assert_eq!(got.mode, want.mode);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_registry_agrees_with_the_spec_model(ops in proptest::collection::vec(op(), 1..60)) {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run(ops));
    }
}
