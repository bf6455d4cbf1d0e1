//! `messages_in.status`, parsed once where a row is read.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::mailbox::AckStatus;

/// Where an inbound message stands (`messages_in.status`).
///
/// A value neither side defines is kept as [`InboundStatus::Other`], never
/// refused: a row is read whatever a newer or foreign writer stored. Its
/// JSON form is the stored text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InboundStatus {
    /// Waiting for the guest (also what a NULL status means).
    Pending,
    /// The guest finished it.
    Completed,
    /// The guest, or the host's retries, gave up on it.
    Failed,
    /// Held by the host (a paused series).
    Paused,
    /// Stored text that is none of the above, kept as it was.
    Other(String),
}

impl InboundStatus {
    /// The status a stored text (`None`: SQL NULL, the column's default) means.
    pub fn parse(stored: Option<&str>) -> InboundStatus {
        match stored {
            None | Some("pending") => InboundStatus::Pending,
            Some("completed") => InboundStatus::Completed,
            Some("failed") => InboundStatus::Failed,
            Some("paused") => InboundStatus::Paused,
            Some(other) => InboundStatus::Other(other.to_owned()),
        }
    }

    /// The stored spelling.
    pub fn as_str(&self) -> &str {
        match self {
            InboundStatus::Pending => "pending",
            InboundStatus::Completed => "completed",
            InboundStatus::Failed => "failed",
            InboundStatus::Paused => "paused",
            InboundStatus::Other(text) => text,
        }
    }

    /// The status a guest's finished ack settles its message to (`None`
    /// while the guest is still processing it).
    pub fn settled_by(ack: AckStatus) -> Option<InboundStatus> {
        match ack {
            AckStatus::Processing => None,
            AckStatus::Completed => Some(InboundStatus::Completed),
            AckStatus::Failed => Some(InboundStatus::Failed),
        }
    }

    /// Whether the message still waits for the guest.
    pub fn is_pending(&self) -> bool {
        *self == InboundStatus::Pending
    }
}

impl fmt::Display for InboundStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for InboundStatus {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for InboundStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for InboundStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for InboundStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        Ok(InboundStatus::parse(text.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stored_text_round_trips_and_null_is_pending() {
        for text in ["pending", "completed", "failed", "paused", "archived-by-v3"] {
            let status = InboundStatus::parse(Some(text));
            assert_eq!(status.as_str(), text);
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("{text:?}"));
            assert_eq!(
                serde_json::from_str::<InboundStatus>(&json).unwrap(),
                status
            );
        }
        assert_eq!(InboundStatus::parse(None), InboundStatus::Pending);
        assert_eq!(
            InboundStatus::parse(Some("archived-by-v3")),
            InboundStatus::Other("archived-by-v3".into())
        );
        assert!(!InboundStatus::parse(Some("Pending")).is_pending());
    }
}
