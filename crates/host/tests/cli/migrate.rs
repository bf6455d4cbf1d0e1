//! `airlock migrate [--check]` against the test PostgreSQL: a registry one
//! migration behind fails the check, `migrate` brings it up, the check passes.

use airlock_postgres::testing::{SchemaGuard, migrate_up_to, pg_url, random_schema};

use crate::util::TestDir;

#[test]
#[cfg_attr(
    not(airlock_pg),
    ignore = "needs AIRLOCK_TEST_PG_URL (set it and rebuild)"
)]
fn migrate_check_fails_one_migration_behind_and_passes_after_migrate() {
    let Some(url) = pg_url("migrate --check") else {
        return;
    };
    let schema = random_schema("airlock_cli");
    let _guard = SchemaGuard::new(&url, &schema);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(migrate_up_to(&url, &schema, 1));
    let sep = if url.contains('?') { '&' } else { '?' };
    let registry = format!("{url}{sep}schema={schema}");
    let env = TestDir::new();

    let behind = env
        .cmd(&["--registry", &registry, "migrate", "--check"])
        .run();
    assert_ne!(behind.code, Some(0), "{}\n{}", behind.stdout, behind.stderr);
    assert!(
        behind.stdout.contains("pending: 2"),
        "{}\n{}",
        behind.stdout,
        behind.stderr
    );
    assert!(
        behind.stderr.contains("pending"),
        "{}\n{}",
        behind.stdout,
        behind.stderr
    );

    let migrated = env.cmd(&["--registry", &registry, "migrate"]).run();
    assert_eq!(
        migrated.code,
        Some(0),
        "{}\n{}",
        migrated.stdout,
        migrated.stderr
    );
    assert!(
        migrated.stdout.contains("migrated now"),
        "{}\n{}",
        migrated.stdout,
        migrated.stderr
    );

    let current = env
        .cmd(&["--registry", &registry, "migrate", "--check"])
        .run();
    assert_eq!(
        current.code,
        Some(0),
        "{}\n{}",
        current.stdout,
        current.stderr
    );
    assert!(
        current.stdout.contains("up to date"),
        "{}\n{}",
        current.stdout,
        current.stderr
    );
}
