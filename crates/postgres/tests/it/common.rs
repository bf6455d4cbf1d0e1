//! The PostgreSQL test helpers, shared with other crates' tests through the
//! `testing` feature.

pub use airlock_postgres::testing::*;
