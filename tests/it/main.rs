//! The cross-crate integration tests, one test binary: the host loop over
//! every registry backend, imports, several hosts on one registry, and the
//! repository's tidy rules.

mod host_loop;
mod import_registries;
mod multi_host;
mod tidy;
