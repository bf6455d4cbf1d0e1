//! `Seq`: a message's sequence number, with the parity rule that tells the
//! two mailbox tables apart.
//!
//! The host numbers `messages_in` with even seqs, the guest numbers
//! `messages_out` with odd ones, so an agent can name a message by its seq
//! alone (edit 5, react to 6) and parity says which table holds it. The
//! arithmetic lives here once; backends call [`Seq::next_host`] and
//! [`Seq::next_guest`] instead of computing `max + 2`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which side of a mailbox numbered a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Parity {
    /// Even: a `messages_in` row, written by the host.
    Host,
    /// Odd: a `messages_out` row, written by the guest.
    Guest,
}

/// A message's sequence number, unique across both tables of a session.
///
/// Any `i64` can be held (a guest may write anything into its own file);
/// [`Seq::parity`] says which side it belongs to, and the constructors of
/// new seqs never break the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seq(i64);

/// A seq text that is not an integer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a message seq: {input:?}")]
pub struct SeqParseError {
    /// The text that was given.
    pub input: String,
}

impl Seq {
    /// The seq `value`, as stored.
    pub const fn new(value: i64) -> Self {
        Seq(value)
    }

    /// The stored integer.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// Even seqs are the host's, odd ones the guest's (negative ones too).
    pub const fn parity(self) -> Parity {
        if self.0.rem_euclid(2) == 0 {
            Parity::Host
        } else {
            Parity::Guest
        }
    }

    /// Whether the host numbered it (even).
    pub const fn is_host(self) -> bool {
        matches!(self.parity(), Parity::Host)
    }

    /// Whether the guest numbered it (odd).
    pub const fn is_guest(self) -> bool {
        matches!(self.parity(), Parity::Guest)
    }

    /// The next host seq above `max`: the smallest even number greater than
    /// it, and 2 when `max` is below 2 (an empty table's max is 0).
    ///
    /// Saturates at the largest even `i64` rather than overflowing.
    pub const fn next_host(max: Option<Seq>) -> Seq {
        let max = match max {
            Some(Seq(m)) if m > 0 => m,
            _ => 0,
        };
        match max.checked_add(2 - max.rem_euclid(2)) {
            Some(next) => Seq(next),
            None => Seq(i64::MAX - 1),
        }
    }

    /// The next guest seq above `max`: the smallest odd number greater than
    /// it, and 1 when `max` is below 1.
    ///
    /// Saturates at `i64::MAX` (odd) rather than overflowing.
    pub const fn next_guest(max: Option<Seq>) -> Seq {
        let max = match max {
            Some(Seq(m)) if m > 0 => m,
            _ => 0,
        };
        match max.checked_add(1 + max.rem_euclid(2)) {
            Some(next) => Seq(next),
            None => Seq(i64::MAX),
        }
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Seq {
    type Err = SeqParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim().parse::<i64>().map(Seq).map_err(|_| SeqParseError {
            input: s.to_owned(),
        })
    }
}

impl TryFrom<&str> for Seq {
    type Error = SeqParseError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<i64> for Seq {
    fn from(value: i64) -> Self {
        Seq(value)
    }
}

impl From<Seq> for i64 {
    fn from(seq: Seq) -> Self {
        seq.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn first_seqs_of_empty_tables() {
        assert_eq!(Seq::next_host(None), Seq(2));
        assert_eq!(Seq::next_host(Some(Seq(0))), Seq(2));
        assert_eq!(Seq::next_guest(None), Seq(1));
        assert_eq!(Seq::next_guest(Some(Seq(0))), Seq(1));
    }

    #[test]
    fn next_seqs_above_a_max_of_either_parity() {
        assert_eq!(Seq::next_host(Some(Seq(2))), Seq(4));
        assert_eq!(Seq::next_host(Some(Seq(5))), Seq(6));
        assert_eq!(Seq::next_guest(Some(Seq(1))), Seq(3));
        assert_eq!(Seq::next_guest(Some(Seq(4))), Seq(5));
        // A negative max (a guest's crafted row) never yields a non-positive seq.
        assert_eq!(Seq::next_host(Some(Seq(-3))), Seq(2));
        assert_eq!(Seq::next_guest(Some(Seq(-4))), Seq(1));
    }

    #[test]
    fn the_largest_seqs_saturate_instead_of_overflowing() {
        assert_eq!(Seq::next_host(Some(Seq(i64::MAX))), Seq(i64::MAX - 1));
        assert_eq!(Seq::next_guest(Some(Seq(i64::MAX))), Seq(i64::MAX));
    }

    #[test]
    fn parity_of_negative_seqs() {
        assert_eq!(Seq(-2).parity(), Parity::Host);
        assert_eq!(Seq(-1).parity(), Parity::Guest);
    }

    #[test]
    fn parses_prints_and_serialises_as_an_integer() {
        let seq: Seq = "42".parse().unwrap();
        assert_eq!(seq, Seq(42));
        assert_eq!(seq.to_string(), "42");
        assert_eq!(Seq::try_from(" 7 ").unwrap(), Seq(7));
        let err = "4x".parse::<Seq>().unwrap_err();
        assert_eq!(err.input, "4x");
        assert!(err.to_string().contains("4x"));
        assert_eq!(serde_json::to_string(&Seq(5)).unwrap(), "5");
        assert_eq!(serde_json::from_str::<Seq>("6").unwrap(), Seq(6));
        assert!(serde_json::from_str::<Seq>("\"6\"").is_err());
    }

    proptest! {
        #[test]
        fn next_host_is_the_smallest_even_above(max in i64::MIN..i64::MAX - 2) {
            let next = Seq::next_host(Some(Seq(max))).get();
            prop_assert_eq!(next.rem_euclid(2), 0);
            prop_assert!(next > max.max(0));
            prop_assert!(next - max.max(0) <= 2);
        }

        #[test]
        fn next_guest_is_the_smallest_odd_above(max in i64::MIN..i64::MAX - 2) {
            let next = Seq::next_guest(Some(Seq(max))).get();
            prop_assert_eq!(next.rem_euclid(2), 1);
            prop_assert!(next > max.max(0));
            prop_assert!(next - max.max(0) <= 2);
        }

        #[test]
        fn display_then_parse_round_trips(v in any::<i64>()) {
            prop_assert_eq!(Seq(v).to_string().parse::<Seq>().unwrap(), Seq(v));
        }
    }
}
