//! UTC timestamps in the text form the mailboxes and the registry store.
//!
//! The stored form is SQLite's own `YYYY-MM-DD HH:MM:SS` in UTC with
//! milliseconds (`2026-11-23 10:00:00.000`), the form `strftime('%Y-%m-%d
//! %H:%M:%f')` writes. The reference compares some columns as plain strings
//! against `datetime('now')` (`YYYY-MM-DD HH:MM:SS`, no fraction), and this
//! form keeps both properties it relies on:
//!
//! - `value <= datetime('now')` is false for any instant in the future (a
//!   fraction makes the string longer, so an instant inside the current
//!   second is not "due" yet) and true for any instant before the current
//!   second: a due value is seen at most one second late, never early.
//!   Without the fraction an instant later in the current second would be
//!   due early, and values written within one second would lose their order.
//! - It sorts correctly against `datetime('now')`-style values and against
//!   itself, because every field has a fixed width and the separator is the
//!   same space.
//!
//! Reads accept every form either side writes: `T` or space, with or without
//! `Z`, fractions, seconds or a numeric offset. Text without a zone is UTC.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// The stored text form (chrono's spelling of SQLite's `%Y-%m-%d %H:%M:%f`).
const STORED_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.3f";

/// A point in time, always UTC.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

/// Text that is not a timestamp airlock understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid timestamp {value:?}: expected a UTC date and time such as \
     2026-01-31 12:00:00.000 or ISO-8601 such as 2026-01-31T12:00:00Z"
)]
pub struct TimestampError {
    /// The refused text (at most 64 characters of it).
    pub value: String,
}

impl Timestamp {
    /// The current time, truncated to milliseconds (the stored precision),
    /// so a value survives a round trip through any backend unchanged.
    pub fn now() -> Self {
        let now = Utc::now();
        Self::from_millis(now.timestamp_millis()).unwrap_or(Self(now))
    }

    /// The timestamp `millis` milliseconds after the Unix epoch, if representable.
    pub fn from_millis(millis: i64) -> Option<Self> {
        DateTime::from_timestamp_millis(millis).map(Self)
    }

    /// Milliseconds since the Unix epoch.
    pub fn as_millis(&self) -> i64 {
        self.0.timestamp_millis()
    }

    /// The inner chrono value.
    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }

    /// Parses any form either side writes: `YYYY-MM-DD`, then `T`, `t` or a
    /// space, then `HH:MM`, optional `:SS` and fraction, then an optional
    /// `Z` or `±HH`, `±HHMM`, `±HH:MM` offset. Text without a zone is UTC.
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        let refused = || TimestampError {
            value: text.trim().chars().take(64).collect(),
        };
        let text = text.trim();
        if let Some(at) = parse_fixed(text.as_bytes()) {
            return Ok(Self(at));
        }
        if !text.is_ascii() || text.len() < 16 {
            return Err(refused());
        }
        let (date, rest) = text.split_at(10);
        let rest = rest.strip_prefix(['T', 't', ' ']).ok_or_else(refused)?;
        let (clock, offset) = split_zone(rest).ok_or_else(refused)?;
        let clock = clock.trim_end();
        let naive = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"]
            .iter()
            .find_map(|format| {
                NaiveDateTime::parse_from_str(&format!("{date} {clock}"), format).ok()
            })
            .ok_or_else(refused)?;
        let local = offset
            .from_local_datetime(&naive)
            .single()
            .ok_or_else(refused)?;
        Ok(Self(local.with_timezone(&Utc)))
    }

    /// The stored text form, SQLite's `YYYY-MM-DD HH:MM:SS.sss` in UTC, e.g.
    /// `2026-11-23 10:00:00.000` (see the module docs for why).
    ///
    /// The name predates the switch from `2026-11-23T10:00:00.000Z`; both are
    /// ISO-8601 date and time, this one with the space separator and no zone.
    pub fn to_iso(&self) -> String {
        self.0.format(STORED_FORMAT).to_string()
    }

    /// This timestamp moved by `millis` milliseconds (saturating).
    pub fn plus_millis(&self, millis: i64) -> Self {
        Self(self.0 + chrono::Duration::milliseconds(millis))
    }
}

/// Whether a stored time text (`process_after`, `deliver_after`) is due at
/// `now`: the one definition of "due" every mailbox uses, host and guest.
/// No time is due. An unreadable time is due too (`Err` carries it, for a
/// caller that logs it): a value nobody can parse must not hold a message
/// back forever.
pub fn due_at(stored: Option<&str>, now: Timestamp) -> Result<bool, &str> {
    match stored {
        None => Ok(true),
        Some(text) => Timestamp::parse(text).map(|t| t <= now).map_err(|_| text),
    }
}

/// [`due_at`] with an unreadable time counted as due.
pub fn is_due(stored: Option<&str>, now: Timestamp) -> bool {
    due_at(stored, now).unwrap_or(true)
}

/// Splits `HH:MM[:SS[.f]][zone]` into the clock and the zone's offset (UTC
/// when there is none); `None` when the zone is malformed.
/// The fixed-width UTC forms (`YYYY-MM-DD HH:MM:SS`, optionally `.sss`,
/// with a space or `T`, optionally `Z`: what airlock and the reference
/// store) read digit by digit; `None` for anything else, which the general
/// parse decides. A sweep reads the registry's times for every session on
/// every tick, and the general parse (a `format!` and chrono's format
/// interpreter per call) was a third of reading a row.
fn parse_fixed(text: &[u8]) -> Option<DateTime<Utc>> {
    let text = match text {
        [clock @ .., b'Z' | b'z'] => clock,
        text => text,
    };
    let fixed = |i: usize, b: u8| text.get(i) == Some(&b);
    let shaped = matches!(text.len(), 19 | 23)
        && fixed(4, b'-')
        && fixed(7, b'-')
        && matches!(text[10], b' ' | b'T' | b't')
        && fixed(13, b':')
        && fixed(16, b':')
        && (text.len() == 19 || fixed(19, b'.'));
    if !shaped {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<u32> {
        text[from..to].iter().try_fold(0u32, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    let millis = if text.len() == 23 { number(20, 23)? } else { 0 };
    let year = i32::try_from(number(0, 4)?).ok()?;
    let date = chrono::NaiveDate::from_ymd_opt(year, number(5, 7)?, number(8, 10)?)?;
    let time = chrono::NaiveTime::from_hms_milli_opt(
        number(11, 13)?,
        number(14, 16)?,
        number(17, 19)?,
        millis,
    )?;
    Some(Utc.from_utc_datetime(&NaiveDateTime::new(date, time)))
}

fn split_zone(rest: &str) -> Option<(&str, FixedOffset)> {
    let utc = FixedOffset::east_opt(0)?;
    if let Some(clock) = rest.strip_suffix(['Z', 'z']) {
        return Some((clock, utc));
    }
    // The clock itself has no sign, so a sign starts the offset.
    let Some(at) = rest.find(['+', '-']) else {
        return Some((rest, utc));
    };
    let (clock, zone) = rest.split_at(at);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
    let colons = zone[1..].matches(':').count();
    let well_formed = digits.bytes().all(|b| b.is_ascii_digit())
        && matches!((digits.len(), colons), (2, 0) | (4, 0) | (4, 1))
        && (colons == 0 || zone.as_bytes().get(3) == Some(&b':'));
    if !well_formed {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits
        .get(2..)
        .filter(|m| !m.is_empty())
        .map_or(Some(0), |m| m.parse().ok())?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some((
        clock,
        FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))?,
    ))
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(value: DateTime<Utc>) -> Self {
        Self(value)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_iso())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.to_iso())
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_iso())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The general parse alone (what `parse` was before its fixed-width path).
    fn parse_general(text: &str) -> Option<Timestamp> {
        let text = text.trim();
        if !text.is_ascii() || text.len() < 16 {
            return None;
        }
        let (date, rest) = text.split_at(10);
        let rest = rest.strip_prefix(['T', 't', ' '])?;
        let (clock, offset) = split_zone(rest)?;
        let naive = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"]
            .iter()
            .find_map(|f| {
                NaiveDateTime::parse_from_str(&format!("{date} {}", clock.trim_end()), f).ok()
            })?;
        let local = offset.from_local_datetime(&naive).single()?;
        Some(Timestamp(local.with_timezone(&Utc)))
    }

    proptest::proptest! {
        /// Texts of the fixed shape with any byte at each place (digits
        /// mostly, so that many are valid dates): the fast path answers as
        /// the general parse does, or leaves the text to it.
        #[test]
        fn the_fixed_width_path_agrees_with_the_general_parse(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    8 => proptest::char::range('0', '9'),
                    1 => proptest::sample::select(vec!['-', ':', '.', ' ', 'T', 'Z', 'x', '+']),
                ],
                17..=25,
            ),
            shape in 0..4usize,
        ) {
            let mut text: Vec<char> = bytes;
            // Put the separators in place for most cases, so the dates vary.
            if shape > 0 {
                for (i, c) in [(4, '-'), (7, '-'), (10, ' '), (13, ':'), (16, ':'), (19, '.')] {
                    if i < text.len() {
                        text[i] = c;
                    }
                }
            }
            let text: String = text.into_iter().collect();
            let fast = parse_fixed(text.trim().as_bytes()).map(Timestamp);
            if fast.is_some() {
                proptest::prop_assert_eq!(fast, parse_general(&text), "{:?}", text);
            }
            proptest::prop_assert_eq!(Timestamp::parse(&text).ok(), parse_general(&text), "{:?}", text);
        }
    }

    proptest::proptest! {
        /// Fixed-width texts from fields near and beyond their ranges: both
        /// parses give the same instant or both refuse.
        #[test]
        fn fixed_width_fields_parse_as_the_general_parse_does(
            (year, month, day) in (0..=9999u32, 0..=13u32, 0..=32u32),
            (hour, minute, second, millis) in (0..=25u32, 0..=61u32, 0..=61u32, 0..=999u32),
            (separator, fraction, zone) in (proptest::sample::select(vec![' ', 'T', 't']), proptest::bool::ANY, proptest::sample::select(vec!["", "Z", "z"])),
        ) {
            let fraction = if fraction { format!(".{millis:03}") } else { String::new() };
            let text = format!("{year:04}-{month:02}-{day:02}{separator}{hour:02}:{minute:02}:{second:02}{fraction}{zone}");
            proptest::prop_assert_eq!(Timestamp::parse(&text).ok(), parse_general(&text), "{}", text);
        }
    }

    #[test]
    fn the_fixed_width_path_reads_the_stored_forms() {
        for text in [
            "2023-11-14 22:13:20.123",
            "2023-11-14T22:13:20.123Z",
            "2023-11-14 22:13:20",
            "2023-11-14t22:13:20z",
        ] {
            assert!(parse_fixed(text.as_bytes()).is_some(), "{text}");
            assert_eq!(Timestamp::parse(text).ok(), parse_general(text), "{text}");
        }
        for text in [
            "2023-02-30 22:13:20",
            "2023-11-14 24:00:00",
            "2023-11-14 22:13:60.000",
        ] {
            assert!(parse_fixed(text.as_bytes()).is_none(), "{text}");
        }
    }

    #[test]
    fn due_at_compares_readable_times_and_counts_unreadable_ones_due() {
        let now = Timestamp::parse("2026-12-01 10:00:00.000").unwrap();
        assert_eq!(due_at(None, now), Ok(true));
        assert_eq!(due_at(Some("2026-12-01T10:00:00Z"), now), Ok(true));
        assert_eq!(due_at(Some("2026-12-01T10:30:00+01:00"), now), Ok(true));
        assert_eq!(due_at(Some("2026-12-01 10:00:00.001"), now), Ok(false));
        assert_eq!(due_at(Some("2026-12-02"), now), Err("2026-12-02"));
        assert!(is_due(Some("2026-12-02"), now));
        assert!(!is_due(Some("2026-12-01T11:00:01+01:00"), now));
    }

    #[test]
    fn writes_sqlite_form_with_millis() {
        let t = Timestamp::from_millis(1_700_000_000_123).unwrap();
        assert_eq!(t.to_iso(), "2023-11-14 22:13:20.123");
        assert_eq!(Timestamp::parse(&t.to_iso()).unwrap(), t);
        let whole = Timestamp::from_millis(1_700_000_000_000).unwrap();
        assert_eq!(whole.to_iso(), "2023-11-14 22:13:20.000");
    }

    #[test]
    fn reads_every_form_either_side_writes() {
        let t = Timestamp::from_millis(1_700_000_000_000).unwrap();
        let with_millis = Timestamp::from_millis(1_700_000_000_123).unwrap();
        for text in [
            "2023-11-14 22:13:20",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20Z",
            "2023-11-14t22:13:20z",
            "2023-11-14 22:13:20Z",
            "2023-11-14T23:13:20+01:00",
            "2023-11-14T23:13:20+0100",
            "2023-11-14T23:13:20+01",
            "2023-11-14 21:43:20-00:30",
            "2023-11-14 23:13:20 +01:00",
            " 2023-11-14 22:13:20 ",
        ] {
            assert_eq!(Timestamp::parse(text), Ok(t), "{text}");
        }
        for text in [
            "2023-11-14 22:13:20.123",
            "2023-11-14T22:13:20.123Z",
            "2023-11-14T22:13:20.123000Z",
            "2023-11-14T23:13:20.123+01:00",
        ] {
            assert_eq!(Timestamp::parse(text), Ok(with_millis), "{text}");
        }
        assert_eq!(
            Timestamp::parse("2023-11-14 22:13"),
            Ok(Timestamp::from_millis(1_699_999_980_000).unwrap())
        );
    }

    #[test]
    fn refuses_what_is_not_a_timestamp() {
        for text in [
            "",
            "yesterday",
            "2023-11-14",
            "2023-11-14X22:13:20",
            "2023-11-14 25:13:20",
            "2023-11-14 22:13:20+24:00",
            "2023-11-14 22:13:20+1",
            "2023-11-14 22:13:20+01:0",
            "2023-11-14 22:13:20+0a",
            "2023-11-14 22:13:20 garbage",
            "2023-11-14 22:13:20\u{e9}",
            "2023-11-14 22:13:20.",
        ] {
            let err = Timestamp::parse(text).unwrap_err();
            assert!(
                err.to_string().contains("invalid timestamp"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn the_old_airlock_form_stays_readable() {
        let t = Timestamp::parse("2026-11-23T10:00:00.000Z").unwrap();
        assert_eq!(t.to_iso(), "2026-11-23 10:00:00.000");
    }
}
