//! The lifecycle decisions (stuck, wake, retry, recurrence) as tables with
//! the clock passed in, the runtime seam with the fake runtime, and the
//! sweep and start-up reconcile with a scripted guest, and retention.

mod observed;
mod reconcile;
mod recurrence;
mod retention;
mod retry;
mod runtime;
mod series;
mod stuck;
mod support;
mod sweep;
mod wake;
