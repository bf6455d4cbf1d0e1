//! `airlock migrate [--check]` against the test PostgreSQL: a registry one
//! migration behind fails the check, `migrate` brings it up, the check passes.

use airlock_postgres::testing::{SchemaGuard, migrate_up_to, pg_url, random_schema};

use crate::cli::util::TestDir;

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
    // One migration behind this build (3: routed dead letters).
    runtime.block_on(migrate_up_to(&url, &schema, 2));
    let sep = if url.contains('?') { '&' } else { '?' };
    let registry = format!("{url}{sep}schema={schema}");
    let env = TestDir::new();

    let behind = env
        .cmd(&["--registry", &registry, "migrate", "--check"])
        .run();
    assert_ne!(behind.code, Some(0), "{}\n{}", behind.stdout, behind.stderr);
    assert!(
        behind.stdout.contains("pending: 3") && !behind.stdout.contains("pending: 2"),
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

#[test]
#[cfg_attr(
    not(airlock_pg),
    ignore = "needs AIRLOCK_TEST_PG_URL (set it and rebuild)"
)]
fn a_message_sent_through_another_host_is_queued_and_doctor_shows_it_stranded() {
    let Some(url) = pg_url("doctor stranded") else {
        return;
    };
    let schema = random_schema("airlock_cli");
    let _guard = SchemaGuard::new(&url, &schema);
    let sep = if url.contains('?') { '&' } else { '?' };
    let registry = format!("{url}{sep}schema={schema}");
    let (host_a, host_b) = (TestDir::new(), TestDir::new());
    let session = host_a.json(&[
        "--registry",
        &registry,
        "--host-id",
        "host-a",
        "resolve",
        "--agent-group",
        "g",
        "--channel",
        "slack",
        "--platform-id",
        "C1",
        "--mode",
        "shared",
    ]);
    let id = session["id"].as_str().unwrap().to_owned();
    // Host B is a host with a data dir of its own (a missing one is a mistake).
    std::fs::create_dir_all(host_b.data_dir()).unwrap();

    let sent = host_b.ok(&[
        "--registry",
        &registry,
        "--host-id",
        "host-b",
        "send",
        "--session",
        &id,
        "--text",
        "hi",
    ]);
    assert!(sent.contains("queued for its owner, host host-a"), "{sent}");
    assert!(
        !host_b.data_dir().join("v2-sessions/g").join(&id).exists(),
        "host B created host A's folder"
    );

    // Host A never heartbeat: doctor (on either host) shows the message stranded.
    let doctor = host_b
        .cmd(&["--registry", &registry, "--host-id", "host-b", "doctor"])
        .run();
    assert_ne!(doctor.code, Some(0), "{}\n{}", doctor.stdout, doctor.stderr);
    assert!(
        doctor.stdout.contains(&format!(
            "STRANDED {id}  1 routed message(s) wait for host host-a"
        )),
        "{}",
        doctor.stdout
    );
    assert!(doctor.stdout.contains("elsewhere"), "{}", doctor.stdout);
}
