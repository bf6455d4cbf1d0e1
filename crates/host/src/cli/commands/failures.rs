//! `airlock failures`: dead letters (deliveries that failed for good) with
//! reason, attempts and last error; `retry ID` re-queues one, `purge ID`
//! drops it and its outbox files. With `--routed`, the same for routed
//! messages the owner could not apply.

use std::sync::Arc;

use airlock_core::{Result, SessionId};

use crate::cli::context;
use crate::cli::output::{clip, emit, or_dash};
use crate::cli::settings::{FailureAction, Settings};
use crate::delivery::{QueuedMessage, StdoutAdapter};

fn line(f: &QueuedMessage) -> String {
    format!(
        "{:>5}  {}  seq {:<5} {}  attempts {}  {}  last error: {}",
        f.id,
        f.session_id,
        f.seq,
        clip(&airlock_core::escape_for_log(&f.message_id), 40),
        f.attempts,
        or_dash(f.reason.as_deref()),
        clip(f.last_error.as_deref().unwrap_or("-"), 100),
    )
}

/// Runs `failures`.
pub async fn run(
    settings: &Settings,
    session: Option<&SessionId>,
    action: FailureAction,
) -> Result<()> {
    // The adapter is never called: listing and re-queueing deliver nothing.
    let deliverer = context::deliverer(settings, Arc::new(StdoutAdapter::new())).await?;
    match action {
        FailureAction::List => {
            let rows = deliverer.failures(session).await?;
            emit(settings.output, &rows, |rows| {
                if rows.is_empty() {
                    "no dead letters".to_owned()
                } else {
                    rows.iter().map(line).collect::<Vec<_>>().join("\n")
                }
            });
        }
        FailureAction::Retry(id) => {
            let row = deliverer.retry_failure(id).await?;
            emit(settings.output, &row, |r| {
                format!("re-queued {}: the next deliver pass sends it", line(r))
            });
        }
        FailureAction::Purge(id) => {
            let row = deliverer.purge_failure(id).await?;
            emit(settings.output, &row, |r| format!("purged {}", line(r)));
        }
    }
    Ok(())
}

fn routed_line(d: &airlock_postgres::DeadLetter) -> String {
    format!(
        "{:>5}  {}  {}  host {}  attempts {}  dead for {} s  last error: {}",
        d.queue_id,
        d.session_id,
        clip(&airlock_core::escape_for_log(&d.message_id), 40),
        crate::cli::output::clean(&d.owner_host),
        d.attempts,
        d.dead_for_secs,
        clip(d.last_error.as_deref().unwrap_or("-"), 100),
    )
}

/// Runs `failures --routed`: the routing queue's dead letters.
pub async fn routed(
    settings: &Settings,
    session: Option<&SessionId>,
    action: FailureAction,
) -> Result<()> {
    let Some(queue) = super::queued::queue(settings).await? else {
        return Err(airlock_core::Error::InvalidInput(
            "failures --routed needs a PostgreSQL registry: nothing is routed on SQLite".into(),
        ));
    };
    match action {
        FailureAction::List => {
            let rows: Vec<_> = queue
                .dead_letters()
                .await?
                .into_iter()
                .filter(|d| session.is_none_or(|s| s.as_str() == d.session_id))
                .collect();
            emit(settings.output, &rows, |rows| {
                if rows.is_empty() {
                    "no routed dead letters".to_owned()
                } else {
                    rows.iter().map(routed_line).collect::<Vec<_>>().join("\n")
                }
            });
        }
        FailureAction::Retry(id) => {
            let row = queue.retry_dead(id).await?;
            emit(settings.output, &row, |r| {
                format!(
                    "re-queued {}: its owner's next drain applies it",
                    routed_line(r)
                )
            });
        }
        FailureAction::Purge(id) => {
            let row = queue.purge_dead(id).await?;
            emit(settings.output, &row, |r| {
                format!("purged {}", routed_line(r))
            });
        }
    }
    Ok(())
}
