//! Cross-crate integration tests live in this package's test targets
//! (`host_loop.rs`); the library itself is empty.
