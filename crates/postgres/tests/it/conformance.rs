//! Runs the shared `SessionStore` conformance suite against
//! `PgSessionStore`, each test in a fresh schema dropped at its end.

#[cfg(airlock_pg)]
use crate::common;

#[cfg(airlock_pg)]
mod suite {
    use std::sync::Arc;

    use airlock_core::testing::StoreUnderTest;

    use super::common;

    async fn pg_store() -> Option<StoreUnderTest> {
        let (store, guard) = common::fresh_store("postgres conformance").await?;
        Some(StoreUnderTest {
            store: Arc::new(store),
            guard: Box::new(guard),
        })
    }

    airlock_core::session_store_conformance!(pg_store);
}

/// Without a server the suite is not compiled; this one test stands for it,
/// so the runner's summary says a PostgreSQL suite was skipped.
#[cfg(not(airlock_pg))]
#[test]
#[cfg_attr(
    not(airlock_pg),
    ignore = "needs AIRLOCK_TEST_PG_URL: the PostgreSQL conformance suite is compiled only when it is set"
)]
fn postgres_conformance_suite() {
    panic!("set AIRLOCK_TEST_PG_URL and rebuild to run the PostgreSQL conformance suite");
}
