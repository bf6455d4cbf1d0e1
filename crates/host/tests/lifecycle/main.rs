//! The lifecycle decisions (stuck, wake, retry, recurrence) as tables with
//! the clock passed in, and the runtime seam with the fake runtime.

mod observed;
mod recurrence;
mod retry;
mod runtime;
mod stuck;
mod support;
mod wake;
