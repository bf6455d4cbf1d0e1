//! UTC timestamps in the text form the mailboxes and the registry store.
//!
//! The stored form is ISO-8601 with milliseconds and a `Z`
//! (`2026-11-23T10:00:00.000Z`), which is what the reference host writes and
//! sorts correctly as text. Text without a zone is read as UTC.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// A point in time, always UTC.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

/// Text that is not a timestamp airlock understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {value:?}: expected ISO-8601 such as 2026-01-31T12:00:00.000Z")]
pub struct TimestampError {
    /// The refused text.
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

    /// Parses ISO-8601 text; text without a zone is UTC.
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        let text = text.trim();
        if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
            return Ok(Self(dt.with_timezone(&Utc)));
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
            if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
                return Ok(Self(naive.and_utc()));
            }
        }
        Err(TimestampError {
            value: text.chars().take(64).collect(),
        })
    }

    /// The stored text form, e.g. `2026-11-23T10:00:00.000Z`.
    pub fn to_iso(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// This timestamp moved by `millis` milliseconds (saturating).
    pub fn plus_millis(&self, millis: i64) -> Self {
        Self(self.0 + chrono::Duration::milliseconds(millis))
    }
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

    #[test]
    fn formats_with_millis_and_z() {
        let t = Timestamp::from_millis(1_700_000_000_123).unwrap();
        assert_eq!(t.to_iso(), "2023-11-14T22:13:20.123Z");
        assert_eq!(Timestamp::parse(&t.to_iso()).unwrap(), t);
    }

    #[test]
    fn zoneless_text_is_utc() {
        let a = Timestamp::parse("2023-11-14 22:13:20").unwrap();
        let b = Timestamp::parse("2023-11-14T22:13:20Z").unwrap();
        let c = Timestamp::parse("2023-11-14T23:13:20+01:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert!(Timestamp::parse("yesterday").is_err());
    }
}
