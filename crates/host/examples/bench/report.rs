//! The output protocol (`figure <key> <value>` lines) and percentiles.

use std::time::Duration;

/// Prints one measured figure for the parent process.
pub fn figure(key: &str, value: f64) {
    println!("figure {key} {value}");
}

/// Latencies of one run, sorted once.
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// Sorts `samples`; an empty set is refused, since it has no percentiles.
    pub fn new(mut samples: Vec<Duration>) -> Result<Self, String> {
        if samples.is_empty() {
            return Err("no samples were taken".into());
        }
        samples.sort_unstable();
        Ok(Self(samples))
    }

    /// The nearest-rank percentile `p` (0–100), in microseconds.
    pub fn percentile_us(&self, p: f64) -> f64 {
        let n = self.0.len();
        let rank = ((p / 100.0 * n as f64).ceil() as usize).clamp(1, n);
        self.0[rank - 1].as_secs_f64() * 1e6
    }

    /// The median, in microseconds.
    pub fn p50_us(&self) -> f64 {
        self.percentile_us(50.0)
    }
}

/// Times `f` once.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = std::time::Instant::now();
    let out = f();
    (out, start.elapsed())
}

/// Turns any displayable error into the workload's error text.
pub fn fail<E: std::fmt::Display>(context: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{context}: {e}")
}
