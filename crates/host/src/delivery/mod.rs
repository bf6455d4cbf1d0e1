//! The delivery engine: every outbound message (the guest's and the host's
//! own) delivered exactly once to the platform, in seq order per session,
//! with failures kept durably, retried with backoff or dead-lettered, and
//! each session isolated from the others' failures.
//!
//! - [`ChannelAdapter`] is what a host implements to reach a platform;
//!   [`StdoutAdapter`] prints JSON lines (`airlock deliver`),
//!   `RecordingAdapter` (feature `testing`) records for tests.
//! - [`Delivery`] is one message on its way out; completing it records the
//!   outcome, then clears the outbox, in that order.
//! - [`Deliverer`] polls sessions through [`crate::runner`] with a per-session
//!   lease (a `flock` in host state), so deliverers in several processes
//!   never send one message twice.
//! - Cost does not grow with history: an idle session costs two header reads
//!   (`outbound.db`, `inbound.db`) compared with the stamps stored beside its
//!   cursors in `host-state/delivery.db`; new rows are read past the cursor
//!   by the `seq` index in pages bounded by count and bytes.

mod adapter;
mod deliverer;
#[allow(clippy::module_inception)]
mod delivery;
mod engine;
mod lease;
pub mod metrics;
mod policy;
#[cfg(any(test, feature = "testing"))]
mod recording;
mod session;
mod settle;
mod state;
mod stdout;
mod system;

pub use adapter::{ChannelAdapter, DeliveryError, DynChannelAdapter};
pub use deliverer::{Deliverer, DelivererBuilder, PassReport, STATE_FILE, Scope, SessionFailure};
pub use delivery::{Delivery, Outcome, declared_files};
pub use engine::DelivererConfig;
pub use lease::{LEASE_FILE, SessionLease};
pub use policy::{Retry, RetryPolicy};
#[cfg(any(test, feature = "testing"))]
pub use recording::{Recorded, RecordingAdapter, Script};
pub use session::SessionTally;
pub use state::{DeliveryState, QueuedMessage};
pub use stdout::{StdoutAdapter, delivery_line};
pub use system::SystemHandler;
