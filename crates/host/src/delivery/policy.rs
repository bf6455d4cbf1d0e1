//! When to try a failed delivery again, as a pure function of its inputs
//! (the clock and the jitter seed included), so tests control time.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use airlock_core::Timestamp;

/// Exponential backoff with jitter, bounded by a retry window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failure (before jitter).
    pub first_delay: Duration,
    /// Longest delay between two attempts.
    pub max_delay: Duration,
    /// A message still failing this long after its first failure is dead-lettered.
    pub window: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
            window: Duration::from_secs(30 * 60),
        }
    }
}

/// What to do after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again at this time.
    At(Timestamp),
    /// The window is over: dead-letter it.
    GiveUp,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A number in `[0, 1)` derived from `seed` (the message and attempt), so
/// retries of many messages spread out but each is reproducible.
fn unit_jitter(seed: impl Hash) -> f64 {
    let mut h = DefaultHasher::new();
    seed.hash(&mut h);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

impl RetryPolicy {
    /// The next attempt after failure number `attempts` (1 for the first),
    /// the first of which happened at `first_failed`.
    ///
    /// The delay doubles per attempt up to `max_delay`, with "equal jitter"
    /// (half fixed, half random), and is never shorter than `retry_after`.
    pub fn next(
        &self,
        attempts: u32,
        first_failed: Timestamp,
        now: Timestamp,
        retry_after: Option<Duration>,
        seed: impl Hash,
    ) -> Retry {
        let elapsed = now.as_millis().saturating_sub(first_failed.as_millis());
        if elapsed >= millis(self.window) {
            return Retry::GiveUp;
        }
        let exp = attempts.saturating_sub(1).min(40);
        let base = millis(self.first_delay)
            .saturating_mul(1i64 << exp)
            .min(millis(self.max_delay));
        let jittered = base / 2 + (base as f64 / 2.0 * unit_jitter(seed)) as i64;
        let delay = jittered.max(retry_after.map_or(0, millis));
        if elapsed.saturating_add(delay) > millis(self.window) {
            // The last try lands on the window's end rather than past it.
            let last = first_failed.as_millis().saturating_add(millis(self.window));
            return Retry::At(Timestamp::from_millis(last).unwrap_or(now));
        }
        Retry::At(now.plus_millis(delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(1_700_000_000_000 + ms).unwrap()
    }

    fn delay(policy: &RetryPolicy, attempts: u32, now: i64, after: Option<u64>) -> i64 {
        match policy.next(
            attempts,
            at(0),
            at(now),
            after.map(Duration::from_millis),
            ("m", attempts),
        ) {
            Retry::At(t) => t.as_millis() - at(now).as_millis(),
            Retry::GiveUp => -1,
        }
    }

    #[test]
    fn delays_double_with_jitter_and_stop_at_the_cap() {
        let p = RetryPolicy::default();
        for attempts in 1..=12 {
            let base = (1000i64 << (attempts - 1)).min(300_000);
            let d = delay(&p, attempts, 0, None);
            assert!(
                d >= base / 2 && d <= base,
                "attempt {attempts}: {d} vs {base}"
            );
        }
    }

    #[test]
    fn retry_after_is_honoured() {
        let p = RetryPolicy::default();
        assert_eq!(delay(&p, 1, 0, Some(60_000)), 60_000);
    }

    #[test]
    fn past_the_window_it_gives_up_and_the_last_try_is_at_its_end() {
        let p = RetryPolicy::default();
        let window = 30 * 60 * 1000;
        assert_eq!(delay(&p, 3, window, None), -1);
        assert_eq!(delay(&p, 20, window - 1000, None), 1000);
    }
}
