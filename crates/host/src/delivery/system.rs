//! Outbound rows of kind `system` are requests to the host, not chat
//! messages: each goes to the handler registered for its `action`.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use super::adapter::DeliveryError;
use super::delivery::Delivery;

/// Handles one kind of `system` request (`{"action": "<name>", …}`).
#[async_trait]
pub trait SystemHandler: Debug + Send + Sync + 'static {
    /// Acts on the request; errors are classified like an adapter's.
    async fn handle(&self, request: &Delivery) -> Result<(), DeliveryError>;
}

/// Handlers by action name.
#[derive(Debug, Clone, Default)]
pub(crate) struct SystemHandlers(HashMap<String, Arc<dyn SystemHandler>>);

impl SystemHandlers {
    pub(crate) fn insert(&mut self, action: String, handler: Arc<dyn SystemHandler>) {
        self.0.insert(action, handler);
    }

    /// The handler of the request's `action`, and the action's name.
    pub(crate) fn for_request(
        &self,
        delivery: &Delivery,
    ) -> (Option<String>, Option<Arc<dyn SystemHandler>>) {
        let action = delivery
            .content()
            .get("action")
            .and_then(|a| a.as_str())
            .map(str::to_owned);
        let handler = action.as_ref().and_then(|a| self.0.get(a).cloned());
        (action, handler)
    }
}
