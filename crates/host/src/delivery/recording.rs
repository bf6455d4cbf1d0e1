//! A channel adapter for tests: records every delivery it confirms and can
//! be told to fail (transiently, permanently) or to hang, per message or
//! per session.

use std::collections::HashMap;
use std::sync::Mutex;

use airlock_core::mailbox::{Origin, Routing};
use async_trait::async_trait;
use serde_json::Value;

use super::adapter::{ChannelAdapter, DeliveryError};
use super::delivery::Delivery;

/// One delivery the adapter confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The session id.
    pub session: String,
    /// The message id.
    pub id: String,
    /// Its seq.
    pub seq: i64,
    /// Who wrote it.
    pub origin: Origin,
    /// The kind.
    pub kind: String,
    /// The content, parsed.
    pub content: Value,
    /// The resolved routing.
    pub routing: Routing,
    /// The files, by name with their bytes.
    pub files: Vec<(String, Vec<u8>)>,
    /// The attempt number that succeeded.
    pub attempt: u32,
    /// The platform id it answered.
    pub platform_id: String,
}

/// What the adapter does with one message or session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Fail transiently this many more times, then deliver.
    Transient(u32),
    /// Refuse for good.
    Permanent,
    /// Never return (the engine's per-call timeout must end the call).
    Hang,
}

/// Records deliveries; see the module docs.
#[derive(Debug, Default)]
pub struct RecordingAdapter {
    recorded: Mutex<Vec<Recorded>>,
    by_message: Mutex<HashMap<String, Script>>,
    by_session: Mutex<HashMap<String, Script>>,
    calls: Mutex<usize>,
}

impl RecordingAdapter {
    /// An adapter that delivers everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Scripts what happens to the message with id `message_id`.
    pub fn script_message(&self, message_id: &str, script: Script) {
        lock(&self.by_message).insert(message_id.to_owned(), script);
    }

    /// Scripts what happens to every message of `session`.
    pub fn script_session(&self, session: &str, script: Script) {
        lock(&self.by_session).insert(session.to_owned(), script);
    }

    /// The confirmed deliveries, in the order they were made.
    pub fn recorded(&self) -> Vec<Recorded> {
        lock(&self.recorded).clone()
    }

    /// Calls made, failed ones included.
    pub fn calls(&self) -> usize {
        *lock(&self.calls)
    }

    fn take_script(&self, delivery: &Delivery) -> Option<Script> {
        let mut by_message = lock(&self.by_message);
        let script = by_message.get(&delivery.message().id).copied().or_else(|| {
            lock(&self.by_session)
                .get(delivery.session().id.as_str())
                .copied()
        });
        if let Some(Script::Transient(n)) = script
            && let Some(entry) = by_message.get_mut(&delivery.message().id)
        {
            *entry = Script::Transient(n.saturating_sub(1));
        }
        script
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[async_trait]
impl ChannelAdapter for RecordingAdapter {
    async fn deliver(&self, delivery: &Delivery) -> Result<String, DeliveryError> {
        *lock(&self.calls) += 1;
        match self.take_script(delivery) {
            Some(Script::Transient(n)) if n > 0 => {
                return Err(DeliveryError::transient(format!(
                    "scripted failure, {n} left"
                )));
            }
            Some(Script::Permanent) => {
                return Err(DeliveryError::permanent("scripted refusal"));
            }
            Some(Script::Hang) => std::future::pending::<()>().await,
            _ => {}
        }
        let mut recorded = lock(&self.recorded);
        let platform_id = format!("rec-{}", recorded.len() + 1);
        let message = delivery.message();
        recorded.push(Recorded {
            session: delivery.session().id.to_string(),
            id: message.id.clone(),
            seq: message.seq,
            origin: message.origin,
            kind: message.kind.clone(),
            content: delivery.content().clone(),
            routing: delivery.routing().clone(),
            files: delivery
                .files()
                .iter()
                .map(|f| (f.name.clone(), f.data.clone()))
                .collect(),
            attempt: delivery.attempt(),
            platform_id: platform_id.clone(),
        });
        Ok(platform_id)
    }
}
