//! The integration tests of `airlock-core`, one test binary: the shared
//! conformance suites run against the in-memory registry and mailboxes.

mod mailbox_conformance;
mod registry_conformance;
