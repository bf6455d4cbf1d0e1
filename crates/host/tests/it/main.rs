//! The integration tests of `airlock-host`, one test binary: `cli` runs
//! the `airlock` binary end to end, `delivery` the delivery engine with
//! the recording adapter, `lifecycle` the lifecycle decisions, the sweep
//! and retention. Tests that re-run this binary as a child name their test
//! by its full path (`delivery::processes::child_deliverer`).

mod support;

mod cli;
mod delivery;
mod lifecycle;
