//! TLS to the registry: `sslmode=verify-full` with the CI server's
//! self-signed CA (made by `.ci/run`) connects over TLS; a CA that did not
//! sign the server's certificate fails with an error that says so.

use airlock_postgres::PgSessionStore;
use airlock_postgres::testing::{REQUIRE_VAR, SchemaGuard, pg_url, random_schema};

/// The CA `.ci/run` made and the one that signed nothing.
const CA_VAR: &str = "AIRLOCK_TEST_PG_TLS_CA";
const WRONG_CA_VAR: &str = "AIRLOCK_TEST_PG_TLS_WRONG_CA";

fn tls_files(test: &str) -> Option<(String, String)> {
    match (std::env::var(CA_VAR), std::env::var(WRONG_CA_VAR)) {
        (Ok(ca), Ok(wrong)) => Some((ca, wrong)),
        _ if std::env::var_os(REQUIRE_VAR).is_some() => {
            panic!(
                "{test} must run here ({REQUIRE_VAR} is set) but {CA_VAR}/{WRONG_CA_VAR} are not set (.ci/run sets them)"
            )
        }
        _ => {
            eprintln!("SKIPPED {test}: needs {CA_VAR} and {WRONG_CA_VAR} (.ci/run sets them)");
            None
        }
    }
}

fn with_params(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

#[tokio::test]
#[cfg_attr(
    not(airlock_pg),
    ignore = "needs AIRLOCK_TEST_PG_URL (set it and rebuild)"
)]
async fn verify_full_connects_over_tls_and_a_wrong_ca_is_refused_clearly() {
    let Some(url) = pg_url("tls") else { return };
    let Some((ca, wrong_ca)) = tls_files("tls") else {
        return;
    };
    let schema = random_schema("airlock_tls");
    let _guard = SchemaGuard::new(&url, &schema);
    let good = with_params(
        &url,
        &format!("sslmode=verify-full&sslrootcert={ca}&schema={schema}"),
    );
    let store = PgSessionStore::connect(&good)
        .await
        .unwrap_or_else(|e| panic!("verify-full with the CI CA: {e}"));
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(ssl, "the connection is not encrypted");
    store.close().await;

    let bad = with_params(
        &url,
        &format!("sslmode=verify-full&sslrootcert={wrong_ca}&schema={schema}"),
    );
    let err = PgSessionStore::connect(&bad).await.unwrap_err().to_string();
    assert!(
        err.contains("cannot connect to PostgreSQL") && err.to_lowercase().contains("certificate"),
        "{err}"
    );
}
