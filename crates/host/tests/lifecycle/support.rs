//! Times for the tables: seconds from a fixed instant.

use airlock_core::Timestamp;

/// 2026-06-01 12:00:00 UTC plus `secs` seconds (negative: before).
pub fn t(secs: i64) -> Timestamp {
    Timestamp::parse("2026-06-01 12:00:00")
        .unwrap()
        .plus_millis(secs * 1000)
}

/// Minutes in seconds.
pub const MIN: i64 = 60;
