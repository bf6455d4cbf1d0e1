//! Runs the shared conformance suite against `MemorySessionStore`.

use std::sync::Arc;

use airlock_core::MemorySessionStore;
use airlock_core::testing::StoreUnderTest;

async fn memory_store() -> Option<StoreUnderTest> {
    Some(StoreUnderTest::new(Arc::new(MemorySessionStore::new())))
}

airlock_core::session_store_conformance!(memory_store);
