//! Whether to start a guest for a session, as a pure function.
//!
//! A guest is started only for due work (`count_due > 0`: pending,
//! triggering, `process_after` passed, so a message in backoff wakes
//! nothing) and only when the runtime knows none; a `.heartbeat` left by an
//! earlier guest is removed first, so the new one is never judged by it.

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Nothing to do: no due work, or a guest already runs.
    Leave,
    /// Start a guest.
    Start {
        /// Delete the stale `.heartbeat` before starting it.
        remove_heartbeat: bool,
    },
}

/// Decides from the due count, whether the runtime says a guest runs, and
/// whether a `.heartbeat` file is there.
pub fn decide_wake(due: u64, guest_running: bool, heartbeat_present: bool) -> Wake {
    if due == 0 || guest_running {
        return Wake::Leave;
    }
    Wake::Start {
        remove_heartbeat: heartbeat_present,
    }
}
