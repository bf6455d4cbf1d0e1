//! Derived message ids: where a different message is stored when a platform
//! reuses an id (`<id>#2`, `<id>#3`, …), never dropping either message.

use crate::error::Result;
use crate::ids::{MAX_ID_BYTES, MessageId};

/// The `n`-th id derived from `id` (`n` ≥ 2): `<base>#<n>`, the base cut at a
/// char boundary so the result stays within [`MAX_ID_BYTES`].
///
/// `n` of 0 or 1 gives `id` itself: the first message keeps its own id.
pub fn derived_message_id(id: &MessageId, n: u64) -> Result<MessageId> {
    if n < 2 {
        return Ok(id.clone());
    }
    let suffix = format!("#{n}");
    let mut cut = id
        .as_str()
        .len()
        .min(MAX_ID_BYTES.saturating_sub(suffix.len()));
    while !id.as_str().is_char_boundary(cut) {
        cut -= 1;
    }
    Ok(MessageId::new(format!("{}{suffix}", &id.as_str()[..cut]))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_fit_and_keep_chars_whole() {
        let id = MessageId::new("m1").unwrap();
        assert_eq!(derived_message_id(&id, 1).unwrap(), id);
        assert_eq!(derived_message_id(&id, 2).unwrap().as_str(), "m1#2");
        let long = MessageId::new("x".repeat(MAX_ID_BYTES)).unwrap();
        let derived = derived_message_id(&long, 2).unwrap();
        assert_eq!(
            derived.as_str(),
            format!("{}#2", "x".repeat(MAX_ID_BYTES - 2))
        );
        let wide = MessageId::new(format!("{}éx", "x".repeat(MAX_ID_BYTES - 3))).unwrap();
        let derived = derived_message_id(&wide, 2).unwrap();
        assert_eq!(
            derived.as_str(),
            format!("{}#2", "x".repeat(MAX_ID_BYTES - 3))
        );
    }
}
