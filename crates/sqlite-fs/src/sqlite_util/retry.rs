//! Bounded retries of transient SQLite conditions, counted by kind.
//!
//! Across lock-less mounts a reader meets `SQLITE_BUSY`,
//! `SQLITE_READONLY_ROLLBACK` (a writer's in-flight journal looks hot) and,
//! through a stale page cache, "database disk image is malformed". All are
//! retried with a short backoff; only a condition that persists is returned.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};

const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_CORRUPT: i32 = 11;
const SQLITE_NOTADB: i32 = 26;
const SQLITE_READONLY_ROLLBACK: i32 = 776;

/// A transient condition worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transient {
    /// `SQLITE_BUSY` / `SQLITE_LOCKED` (any extended form).
    Busy,
    /// `SQLITE_READONLY_ROLLBACK` (776): a journal looked hot to a read-only reader.
    ReadonlyRollback,
    /// `SQLITE_CORRUPT` / `SQLITE_NOTADB` seen through a possibly stale cache.
    Malformed,
}

/// Classifies an extended result code; `malformed_is_transient` is set only
/// for readers of a file another party writes.
pub fn classify(extended_code: i32, malformed_is_transient: bool) -> Option<Transient> {
    if extended_code == SQLITE_READONLY_ROLLBACK {
        return Some(Transient::ReadonlyRollback);
    }
    match extended_code & 0xff {
        SQLITE_BUSY | SQLITE_LOCKED => Some(Transient::Busy),
        SQLITE_CORRUPT | SQLITE_NOTADB if malformed_is_transient => Some(Transient::Malformed),
        _ => None,
    }
}

/// How often and how long to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total (the first one included).
    pub attempts: u32,
    /// Sleep after the first failure; doubled each time.
    pub first_backoff: Duration,
    /// Longest sleep.
    pub max_backoff: Duration,
    /// Whether "malformed" counts as transient.
    pub malformed_is_transient: bool,
}

impl RetryPolicy {
    /// The guest reading `inbound.db`: about 3 s of retries in the worst case.
    pub const GUEST_READ: RetryPolicy = RetryPolicy {
        attempts: 20,
        first_backoff: Duration::from_millis(2),
        max_backoff: Duration::from_millis(250),
        malformed_is_transient: true,
    };
    /// The guest writing its own `outbound.db`.
    pub const GUEST_WRITE: RetryPolicy = RetryPolicy {
        attempts: 20,
        first_backoff: Duration::from_millis(2),
        max_backoff: Duration::from_millis(250),
        malformed_is_transient: false,
    };
    #[cfg(feature = "host")]
    /// The host reading `outbound.db` while the guest may commit: about 2 s
    /// in the worst case, because a guest's commit through a slow mount on a
    /// loaded machine can hold its journal for over a second, and a reply
    /// delivered a poll later costs nothing while an error reaches the caller.
    pub const HOST_READ: RetryPolicy = RetryPolicy {
        attempts: 14,
        first_backoff: Duration::from_millis(2),
        max_backoff: Duration::from_millis(250),
        malformed_is_transient: false,
    };
}

/// Counts of retried conditions, by kind.
#[derive(Debug, Default)]
pub struct RetryStats {
    busy: AtomicU64,
    readonly_rollback: AtomicU64,
    malformed: AtomicU64,
    gave_up: AtomicU64,
}

/// Counts of retried transient conditions, by kind, at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryStatsSnapshot {
    /// Retries after `SQLITE_BUSY`/`SQLITE_LOCKED`.
    pub busy: u64,
    /// Retries after `SQLITE_READONLY_ROLLBACK` (776).
    pub readonly_rollback: u64,
    /// Retries after a "malformed" read.
    pub malformed: u64,
    /// Operations that failed after all attempts.
    pub gave_up: u64,
}

impl RetryStats {
    /// The counts now.
    pub fn snapshot(&self) -> RetryStatsSnapshot {
        RetryStatsSnapshot {
            busy: self.busy.load(Ordering::Relaxed),
            readonly_rollback: self.readonly_rollback.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            gave_up: self.gave_up.load(Ordering::Relaxed),
        }
    }

    fn count(&self, kind: Transient) {
        let counter = match kind {
            Transient::Busy => &self.busy,
            Transient::ReadonlyRollback => &self.readonly_rollback,
            Transient::Malformed => &self.malformed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs `op` until it succeeds, fails with a non-transient error, or
/// `policy.attempts` are used up (then [`Error::Persistent`]). Each attempt
/// must open its own connection, so a retry really re-reads the file.
pub fn retry<T>(
    policy: RetryPolicy,
    stats: &RetryStats,
    mut op: impl FnMut() -> Result<T>,
) -> Result<T> {
    let mut backoff = policy.first_backoff;
    let mut attempt = 1;
    loop {
        let err = match op() {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        let kind = err
            .sqlite_code()
            .and_then(|code| classify(code, policy.malformed_is_transient));
        let Some(kind) = kind else {
            return Err(err);
        };
        if attempt >= policy.attempts {
            stats.gave_up.fetch_add(1, Ordering::Relaxed);
            return Err(match err {
                Error::Sqlite {
                    path,
                    context,
                    source,
                } => Error::Persistent {
                    path,
                    context,
                    attempts: attempt,
                    source,
                },
                other => other,
            });
        }
        stats.count(kind);
        std::thread::sleep(jitter(backoff));
        backoff = (backoff * 2).min(policy.max_backoff);
        attempt += 1;
    }
}

/// Up to +50% so that two retrying parties drift apart.
fn jitter(base: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let extra = base.as_micros() as u64 * u64::from(nanos % 50) / 100;
    base + Duration::from_micros(extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        assert_eq!(classify(776, false), Some(Transient::ReadonlyRollback));
        assert_eq!(classify(5, false), Some(Transient::Busy));
        assert_eq!(classify(5 | (2 << 8), false), Some(Transient::Busy));
        assert_eq!(classify(11, true), Some(Transient::Malformed));
        assert_eq!(classify(11, false), None);
        assert_eq!(classify(8, true), None);
    }

    #[test]
    fn persistent_condition_is_reported_after_the_budget() {
        let stats = RetryStats::default();
        let policy = RetryPolicy {
            attempts: 3,
            first_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
            malformed_is_transient: true,
        };
        let mut calls = 0;
        let err = retry::<()>(policy, &stats, || {
            calls += 1;
            Err(Error::sqlite(
                "x.db",
                "reading",
                rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(776), None),
            ))
        })
        .unwrap_err();
        assert_eq!(calls, 3);
        assert!(
            matches!(err, Error::Persistent { attempts: 3, .. }),
            "{err}"
        );
        let snap = stats.snapshot();
        assert_eq!((snap.readonly_rollback, snap.gave_up), (2, 1));
    }

    #[test]
    fn malformed_reads_are_retried_and_counted_then_succeed() {
        let stats = RetryStats::default();
        let policy = RetryPolicy {
            first_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
            ..RetryPolicy::GUEST_READ
        };
        let mut calls = 0;
        let value = retry(policy, &stats, || {
            calls += 1;
            if calls < 3 {
                let code = if calls == 1 { 11 } else { 5 };
                return Err(Error::sqlite(
                    "x.db",
                    "reading",
                    rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None),
                ));
            }
            Ok(42)
        })
        .unwrap();
        assert_eq!(value, 42);
        let snap = stats.snapshot();
        assert_eq!((snap.malformed, snap.busy, snap.gave_up), (1, 1, 0));
        // A host-side policy does not retry "malformed".
        let err = retry::<()>(RetryPolicy::HOST_READ, &stats, || {
            Err(Error::sqlite(
                "x.db",
                "reading",
                rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(11), None),
            ))
        })
        .unwrap_err();
        assert!(matches!(err, Error::Sqlite { .. }), "{err}");
    }
}
