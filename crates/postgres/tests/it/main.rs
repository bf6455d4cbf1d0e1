//! The integration tests of `airlock-postgres`, one test binary: each
//! former `tests/<name>.rs` is a module here, `common` their shared helpers.
//! Without a server (`AIRLOCK_TEST_PG_URL` unset) they skip, unless
//! `AIRLOCK_REQUIRE_PG=1` makes a missing server a failure.

mod common;

mod conformance;
mod connection_loss;
mod processes;
mod registry;
mod tls;
