//! The lifecycle half of the host's loop: which guest to wake, which to
//! kill, what to do with the work a dead guest left, and when a recurring
//! message fires next.
//!
//! Every decision is a pure function of its inputs, the clock included, so
//! each one is table-tested without a container or a sleep:
//! - [`stuck`]: kill a running guest or leave it ([`decide_stuck`]);
//! - [`observed`]: the guest's signs of life on the host's clock ([`Observed`]);
//! - [`wake`]: start a guest for due work ([`decide_wake`]);
//! - [`retry`]: a claim a dead guest left, retried later or failed ([`decide_retry`]);
//! - [`recurrence`]: the next fire time of a cron series in a time zone ([`Schedule`]).
//!
//! [`Sweeper`] composes them on [`crate::runner`]: one tick per active
//! session (sync acks, stuck kill, leftovers requeued, wake) and the
//! start-up [`Sweeper::reconcile`].
//!
//! [`Retention`] archives, prunes (crash-safe) and measures sessions.
//!
//! The host acts through [`ContainerRuntime`] (with [`Runtime`] bounding
//! each call by a timeout); `FakeRuntime` (feature `testing`) is one for tests.

#[cfg(any(test, feature = "testing"))]
mod fake;
pub mod observed;
mod process;
mod reconcile;
pub mod recurrence;
pub mod retention;
pub mod retry;
mod runtime;
pub mod stuck;
mod sweep;
pub mod wake;

#[cfg(any(test, feature = "testing"))]
pub use fake::{FakeRuntime, RuntimeCall};
pub use observed::{Observed, tool_timeout};
pub use process::{ProcessRuntime, SESSION_DIR_ENV, SESSION_ID_ENV};
pub use recurrence::{
    NextOccurrence, Recur, RecurrenceError, Schedule, next_occurrence, parse_zone,
};
pub use retention::{PruneItem, Retention, Usage, is_prunable};
pub use retry::{ClaimRetry, RetryDecision, decide_retry, failure_note};
pub use runtime::{ContainerRuntime, Runtime, RuntimeError, RuntimeTimeouts};
pub use stuck::{Claim, Stuck, StuckConfig, StuckInput, decide_stuck};
pub use sweep::{SweepConfig, Sweeper, TickReport};
pub use wake::{Wake, decide_wake};
