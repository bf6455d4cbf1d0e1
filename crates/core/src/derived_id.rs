//! Derived message ids: where a different message is stored when a platform
//! reuses an id (`<id>#2`, `<id>#3`, …), never dropping either message.
//!
//! A platform may itself send ids that end in `#N`, so a stored id never
//! tells which id was requested: backends record the requested id of every
//! renamed message and treat as a retry only a stored message *requested*
//! under the same id with the same content ([`free_message_id`] picks the
//! id of a new one).

use crate::ids::{IdError, MAX_ID_BYTES, MessageId};

/// The `n`-th id derived from `id` (`n` ≥ 2): `<base>#<n>`, the base cut at a
/// char boundary so the result stays within [`MAX_ID_BYTES`].
///
/// `n` of 0 or 1 gives `id` itself: the first message keeps its own id.
pub fn derived_message_id(id: &MessageId, n: u64) -> Result<MessageId, IdError> {
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
    MessageId::new(format!("{}{suffix}", &id.as_str()[..cut]))
}

/// The id a new message requested as `requested` is stored under: the
/// requested id itself when no stored message has it, else the first
/// `<id>#N` (N ≥ 2) that `taken` reports free.
///
/// Whether it is a retry is decided before, among the messages requested
/// under the same id: an id being taken says nothing about that (`x#2` may
/// be a platform's own id or one derived from `x`).
pub fn free_message_id<E>(
    requested: &MessageId,
    mut taken: impl FnMut(&MessageId) -> std::result::Result<bool, E>,
) -> std::result::Result<MessageId, E>
where
    E: From<IdError>,
{
    // Ends: a session cannot hold 2^64 messages requested under one id.
    let mut n = 1u64;
    loop {
        let id = derived_message_id(requested, n)?;
        if !taken(&id)? {
            return Ok(id);
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_free_id_is_taken() {
        let x = MessageId::new("x").unwrap();
        let taken = ["x", "x#2"];
        let free = free_message_id::<crate::Error>(&x, |id| Ok(taken.contains(&id.as_str())));
        assert_eq!(free.unwrap().as_str(), "x#3");
        let free = free_message_id::<crate::Error>(&x, |_| Ok(false));
        assert_eq!(free.unwrap(), x);
    }

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
