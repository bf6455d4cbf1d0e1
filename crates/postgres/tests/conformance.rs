//! Runs the shared `SessionStore` conformance suite against
//! `PgSessionStore`, each test in a fresh schema dropped at its end.

mod common;

use std::sync::Arc;

use airlock_core::testing::StoreUnderTest;

async fn pg_store() -> Option<StoreUnderTest> {
    let (store, guard) = common::fresh_store("postgres conformance").await?;
    Some(StoreUnderTest {
        store: Arc::new(store),
        guard: Box::new(guard),
    })
}

airlock_core::session_store_conformance!(pg_store);
