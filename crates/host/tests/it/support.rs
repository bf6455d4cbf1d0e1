//! What every area of the host's tests shares.

use airlock_core::{
    AgentGroupId, NewMessagingGroup, ResolveRequest, Session, SessionMode, SessionStoreExt,
};
use airlock_host::SessionManager;

/// The shared session of agent group `ag` in Slack chat `name`, made on
/// first use.
pub async fn chat_session(manager: &SessionManager, name: &str) -> Session {
    let chat = manager
        .store()
        .ensure_messaging_group(NewMessagingGroup::new("slack", name))
        .await
        .unwrap();
    manager
        .resolve_session(ResolveRequest::new(
            AgentGroupId::new("ag").unwrap(),
            Some(chat.id),
            None,
            SessionMode::Shared,
        ))
        .await
        .unwrap()
        .session
}
