//! Cross-crate integration tests live in this package's test targets
//! (`it/`, one binary); the library itself is empty.
