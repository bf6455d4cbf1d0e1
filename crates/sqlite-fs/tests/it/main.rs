//! The integration tests of `airlock-sqlite-fs`, one test binary (the shape
//! of ripgrep's and rust-analyzer's): each former `tests/<name>.rs` is a
//! module here, and the shared fixtures are the `attachments_support` and
//! `mailbox_common` modules. Tests that re-run this binary as a child
//! process name their test with `airlock_core::testing::libtest_name`.

// Shared fixtures.
mod attachments_support;
mod mailbox_common;

// The tests, one module per former test binary.
mod attachments_inbound;
mod attachments_outbox;
mod attachments_props;
mod attachments_race;
mod attachments_store;
mod guest_idle;
mod guest_routing;
mod mailbox_basic;
mod mailbox_conformance;
mod mailbox_group_commit;
mod mailbox_guest_files;
mod mailbox_guest_props;
mod mailbox_hostile;
mod mailbox_killed_reader;
mod mailbox_killed_staging;
mod mailbox_processes;
mod mailbox_schema;
mod mailbox_tamper;
mod registry_conformance;
mod registry_foreign;
mod registry_model;
mod registry_processes;
mod storage_faults;
mod timestamps;

use airlock_core::testing::libtest_name;
