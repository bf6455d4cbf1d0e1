//! `airlock messages`: a session's inbound and outbound messages.

use airlock_core::mailbox::{InboundMessage, OutboundMessage};
use airlock_core::{Result, SessionId};
use serde::Serialize;

use crate::cli::context;
use crate::cli::output::{clean, clip, emit, or_dash};
use crate::cli::settings::{Direction, Settings};

#[derive(Serialize)]
struct Listing {
    #[serde(rename = "in", skip_serializing_if = "Option::is_none")]
    inbound: Option<Vec<InboundMessage>>,
    #[serde(rename = "out", skip_serializing_if = "Option::is_none")]
    outbound: Option<Vec<OutboundMessage>>,
}

/// Runs `messages`.
pub async fn run(
    settings: &Settings,
    id: &SessionId,
    direction: Direction,
    limit: usize,
) -> Result<()> {
    let manager = context::manager(settings).await?;
    let session = manager.session(id).await?;
    let mailbox = manager.mailbox(&session);
    let want_in = direction != Direction::Out;
    let want_out = direction != Direction::In;
    let listing = tokio::task::spawn_blocking(move || -> airlock_sqlite_fs::Result<Listing> {
        Ok(Listing {
            inbound: want_in.then(|| mailbox.list_inbound(limit)).transpose()?,
            outbound: want_out.then(|| mailbox.list_outbound(limit)).transpose()?,
        })
    })
    .await
    .map_err(|e| airlock_core::Error::backend("sqlite", "listing messages", e))??;
    emit(settings.output, &listing, |l| {
        let mut lines = Vec::new();
        if let Some(inbound) = &l.inbound {
            lines.push(format!("inbound ({}):", inbound.len()));
            for m in inbound {
                lines.push(format!(
                    "  {:>5}  {:<24} {:<8} {:<10} {}  {}",
                    m.seq,
                    clean(&m.id),
                    clean(&m.kind),
                    clean(m.status.as_str()),
                    clean(&m.timestamp),
                    clip(&m.content, 60)
                ));
            }
        }
        if let Some(outbound) = &l.outbound {
            lines.push(format!("outbound ({}):", outbound.len()));
            for m in outbound {
                lines.push(format!(
                    "  {:>5}  {:<24} {:<8} reply-to {:<16} {}  {}",
                    m.seq,
                    clean(&m.id),
                    clean(&m.kind),
                    clean(&or_dash(m.in_reply_to.as_ref())),
                    clean(&m.timestamp),
                    clip(&m.content, 60)
                ));
            }
        }
        lines.join("\n")
    });
    Ok(())
}
