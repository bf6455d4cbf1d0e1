//! Settling delivered messages: once `delivery.db` records a delivery (the
//! authority that it must never be sent again), `inbound.db`'s `delivered`
//! gets the row and the outbox is cleared, in that order. A session's pass
//! settles its deliveries in batches, so a backlog costs one host-state
//! commit per batch instead of one per message; the `unsettled` table keeps
//! every recorded delivery until it is settled, so a crash in between only
//! delays the settling to the session's next pass.

use std::time::Instant;

use airlock_core::mailbox::Origin;
use airlock_core::{DeliveryOutcome, HostMailboxStore as _, Result};
use rusqlite::params;

use super::engine::Engine;
use super::state::{DeliveryState, origin_text};
use crate::SessionHandle;

/// A recorded delivery whose `inbound.db` row and outbox clearing are due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsettled {
    pub origin: Origin,
    pub seq: i64,
    pub message_id: String,
    pub platform_message_id: Option<String>,
}

impl DeliveryState {
    /// The deliveries of `session` recorded but not yet settled, in seq order.
    pub(crate) fn unsettled(&self, session: &str) -> Result<Vec<Unsettled>> {
        self.with("reading unsettled deliveries", |c| {
            let mut stmt = c.prepare(
                "SELECT origin, seq, message_id, platform_message_id FROM unsettled
                 WHERE session_id = ?1 ORDER BY seq",
            )?;
            let rows = stmt.query_map([session], |r| {
                let origin: String = r.get(0)?;
                Ok(Unsettled {
                    origin: if origin == "host" {
                        Origin::Host
                    } else {
                        Origin::Guest
                    },
                    seq: r.get(1)?,
                    message_id: r.get(2)?,
                    platform_message_id: r.get(3)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Forgets settled deliveries.
    pub(crate) fn settled(&self, session: &str, done: &[Unsettled]) -> Result<()> {
        self.with("forgetting settled deliveries", |c| {
            let tx = c.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "DELETE FROM unsettled WHERE session_id = ?1 AND origin = ?2 AND seq = ?3",
                )?;
                for d in done {
                    stmt.execute(params![session, origin_text(d.origin), d.seq])?;
                }
            }
            tx.commit()
        })
    }
}

/// Settles `batch` for `session`: one `inbound.db` commit for all of it,
/// then the guest messages' outboxes, then forgets them. When the commit
/// fails, the deliveries stay unsettled (still recorded as delivered, so
/// never sent again) and the next pass tries again.
pub(crate) async fn settle(
    engine: &Engine,
    handle: &SessionHandle,
    batch: Vec<Unsettled>,
) -> Result<()> {
    let mailbox = handle.mailbox();
    if batch.is_empty() {
        return Ok(());
    }
    let outcomes: Vec<(String, DeliveryOutcome)> = batch
        .iter()
        .map(|d| {
            let outcome = DeliveryOutcome::Delivered {
                platform_message_id: d.platform_message_id.clone(),
            };
            (d.message_id.clone(), outcome)
        })
        .collect();
    if let Err(e) = mailbox.record_outcomes(&outcomes).await {
        // Host state already says delivered, so nothing is sent twice; only
        // the guest's view lags until the next pass.
        tracing::warn!(error = %e, count = outcomes.len(), "delivered, but recording it in inbound.db failed");
        return Ok(());
    }
    for d in batch.iter().filter(|d| d.origin == Origin::Guest) {
        mailbox.clear_outbox(&d.message_id).await;
    }
    let (state, id) = (engine.state.clone(), handle.session().id.to_string());
    engine.blocking(move || state.settled(&id, &batch)).await
}

/// The deliveries a session's pass has recorded and not settled yet.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    batch: Vec<Unsettled>,
    since: Option<Instant>,
}

impl Pending {
    /// Adds one recorded delivery.
    pub fn push(&mut self, delivery: Unsettled) {
        self.since.get_or_insert_with(Instant::now);
        self.batch.push(delivery);
    }

    /// Whether the batch is full or has waited long enough (see
    /// [`super::DelivererConfig::settle_batch`] and `settle_wait`).
    pub fn due(&self, config: &super::DelivererConfig) -> bool {
        self.batch.len() >= config.settle_batch.max(1)
            || self
                .since
                .is_some_and(|t| t.elapsed() >= config.settle_wait)
    }

    /// Takes the batch, leaving this empty.
    pub fn take(&mut self) -> Vec<Unsettled> {
        self.since = None;
        std::mem::take(&mut self.batch)
    }
}
