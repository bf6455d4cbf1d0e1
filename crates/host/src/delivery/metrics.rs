//! The engine's counters, through the `metrics` facade: a host exports them
//! with whatever recorder it installed (none installed: they cost nothing).

use std::time::Duration;

/// Messages the adapter confirmed.
pub const DELIVERED: &str = "airlock_delivery_delivered_total";
/// Transient failures scheduled for another attempt.
pub const RETRIED: &str = "airlock_delivery_retried_total";
/// Messages dead-lettered.
pub const DEAD_LETTERED: &str = "airlock_delivery_dead_lettered_total";
/// Sessions whose pass failed (broken files, read errors, timeouts).
pub const SESSION_ERRORS: &str = "airlock_delivery_session_errors_total";
/// Seconds one poll pass over its sessions took.
pub const POLL_SECONDS: &str = "airlock_delivery_poll_seconds";

pub(crate) fn delivered() {
    metrics::counter!(DELIVERED).increment(1);
}

pub(crate) fn retried() {
    metrics::counter!(RETRIED).increment(1);
}

pub(crate) fn dead_lettered() {
    metrics::counter!(DEAD_LETTERED).increment(1);
}

pub(crate) fn session_error() {
    metrics::counter!(SESSION_ERRORS).increment(1);
}

pub(crate) fn poll_time(took: Duration) {
    metrics::histogram!(POLL_SECONDS).record(took.as_secs_f64());
}
