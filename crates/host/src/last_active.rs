//! `LastActive`: coalesces the `last_active` touch of every inbound write,
//! so a busy session costs the registry one write per interval instead of
//! one per message.
//!
//! `last_active` is advisory (listings, retention measured in days), so a
//! touch may reach the registry up to one interval late: the first touch of
//! a quiet session is written at once (a one-message CLI run keeps the
//! registry exact), later ones within the interval are held and the newest
//! is written when it ends, by a task of the runtime. A runtime that stops
//! inside the window loses only that held, advisory timestamp;
//! [`LastActive::flush`] writes every held touch at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_core::{Result, SessionId, SessionStore, SessionStoreExt, Timestamp};
use tokio::time::Instant;

/// The touch state of one session.
#[derive(Debug)]
struct Slot {
    /// When a touch of this session was last sent to the registry.
    written: Instant,
    /// The newest touch not yet written.
    held: Option<Timestamp>,
    /// A task will write `held` when the interval ends.
    flusher: bool,
}

/// What one touch does once the map has been consulted.
enum Action {
    Write,
    Held,
    Flush(Instant),
}

/// The coalescer shared by a manager and its clones.
#[derive(Debug)]
pub(crate) struct LastActive {
    interval: Duration,
    slots: Mutex<HashMap<SessionId, Slot>>,
}

impl LastActive {
    /// Writes at most one touch per session per `interval` (zero: every one).
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Records that `id` was active at `at`: written now, or held for the
    /// end of the interval.
    pub(crate) async fn touch(
        self: &Arc<Self>,
        store: &Arc<dyn SessionStore>,
        id: &SessionId,
        at: Timestamp,
    ) -> Result<()> {
        if self.interval.is_zero() {
            return store.touch_session(id, at).await.map(drop);
        }
        let now = Instant::now();
        let action = {
            let mut slots = self.lock();
            if slots.len() > 1_024 && !slots.contains_key(id) {
                let interval = self.interval;
                slots.retain(|_, s| s.flusher || now.duration_since(s.written) < interval);
            }
            match slots.get_mut(id) {
                None => {
                    slots.insert(
                        id.clone(),
                        Slot {
                            written: now,
                            held: None,
                            flusher: false,
                        },
                    );
                    Action::Write
                }
                Some(slot)
                    if !slot.flusher && now.duration_since(slot.written) >= self.interval =>
                {
                    slot.written = now;
                    Action::Write
                }
                Some(slot) => {
                    slot.held = Some(at);
                    if slot.flusher {
                        Action::Held
                    } else {
                        slot.flusher = true;
                        Action::Flush(slot.written + self.interval)
                    }
                }
            }
        };
        match action {
            Action::Write => {
                let written = store.touch_session(id, at).await.map(drop);
                if written.is_err() {
                    // The next touch tries again instead of being held.
                    self.lock().remove(id);
                }
                written
            }
            Action::Held => Ok(()),
            Action::Flush(due) => {
                let (this, store, id) = (self.clone(), store.clone(), id.clone());
                tokio::spawn(async move {
                    tokio::time::sleep_until(due).await;
                    this.flush_one(&store, &id).await;
                });
                Ok(())
            }
        }
    }

    /// Writes every held touch now (a host that is about to stop).
    pub(crate) async fn flush(self: &Arc<Self>, store: &Arc<dyn SessionStore>) {
        let held: Vec<SessionId> = self
            .lock()
            .iter()
            .filter(|(_, s)| s.held.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        for id in held {
            self.flush_one(store, &id).await;
        }
    }

    async fn flush_one(&self, store: &Arc<dyn SessionStore>, id: &SessionId) {
        let held = {
            let mut slots = self.lock();
            let Some(slot) = slots.get_mut(id) else {
                return;
            };
            slot.flusher = false;
            slot.written = Instant::now();
            slot.held.take()
        };
        let Some(at) = held else {
            return;
        };
        match store.touch_session(id, at).await {
            Ok(_) => {}
            // Removed in the meantime: nothing left to touch.
            Err(e) if e.is_not_found() => {}
            Err(e) => tracing::warn!(session = %id, error = %e, "could not record last_active"),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }
}
