//! What a delivery engine reads from a host mailbox at a cost that does not
//! grow with the session's history: pages of outbound rows past a seq
//! cursor, and stamps that say whether anything changed since last time.

use crate::mailbox::OutboundMessage;

/// How much one page of outbound rows may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimits {
    /// Rows per page (at least 1).
    pub max_rows: usize,
    /// Content bytes per page; the row that crosses it ends the page, so a
    /// page holds at most this plus one row.
    pub max_bytes: usize,
}

impl Default for PageLimits {
    fn default() -> Self {
        Self {
            max_rows: 256,
            max_bytes: 8 * 1024 * 1024,
        }
    }
}

impl PageLimits {
    /// The limits of a one-row page (reading back one message by its seq).
    pub fn one() -> Self {
        Self {
            max_rows: 1,
            max_bytes: 1,
        }
    }

    /// Takes rows from `rows` until the row or byte budget is spent; a
    /// `None` row is skipped (a row the backend could not read as a message).
    pub fn fill<E>(
        &self,
        rows: impl IntoIterator<Item = Result<Option<OutboundMessage>, E>>,
    ) -> Result<Vec<OutboundMessage>, E> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for row in rows {
            if out.len() >= self.max_rows.max(1) {
                break;
            }
            let Some(message) = row? else { continue };
            bytes = bytes.saturating_add(message.content.len());
            out.push(message);
            if bytes >= self.max_bytes {
                break;
            }
        }
        Ok(out)
    }
}

/// A page of host-originated outbound messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPage {
    /// The messages, in seq order.
    pub messages: Vec<OutboundMessage>,
    /// The highest inbound seq when the page was read: when the page is not
    /// full, no host message up to this seq is left unread.
    pub max_seq: i64,
}

/// Opaque change stamps of a mailbox's two halves: equal stamps read at two
/// times mean the half did not change in between (different stamps may
/// still hold the same rows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeStamps {
    /// The guest's half (its replies and acks); `None` before its first write.
    pub guest: Option<String>,
    /// The host's half (inbound rows, host-originated messages, outcomes).
    pub host: Option<String>,
}
