//! `airlock failures`: dead letters (deliveries that failed for good) with
//! reason, attempts and last error; `retry ID` re-queues one, `purge ID`
//! drops it and its outbox files.

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
