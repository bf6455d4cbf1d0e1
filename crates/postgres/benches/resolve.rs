//! Benchmarks `resolve_session` on a registry of 100,000 sessions: for a
//! key that has an active session, and for a new key.
//!
//! The measurement is generic over `Arc<dyn SessionStore>`; each backend
//! only supplies a factory that returns a store bulk-loaded with the
//! sessions of [`existing`] (see [`BACKENDS`]). PostgreSQL needs
//! `AIRLOCK_TEST_PG_URL` and is skipped with a message without it.
//!
//! `cargo bench -p airlock-postgres --bench resolve`

use std::any::Any;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use airlock_core::testing::{agent, chat, request, thread};
use airlock_core::{MessagingGroupId, ResolveRequest, SessionMode, SessionStore};
use airlock_postgres::PgSessionStore;
use airlock_postgres::testing as common;
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;

/// Sessions in the registry before measuring.
const SESSIONS: usize = 100_000;

/// A store holding [`SESSIONS`] active per-thread sessions, one for each
/// `existing(chat, i)`, and whatever keeps its storage alive.
struct Loaded {
    store: Arc<dyn SessionStore>,
    chat: MessagingGroupId,
    _guard: Box<dyn Any>,
}

/// Makes a loaded store, or prints why the backend is skipped.
type Factory = fn(&Runtime, usize) -> Option<Loaded>;

/// Every benchmarked backend.
const BACKENDS: &[(&str, Factory)] = &[("sqlite", sqlite_store), ("postgres", postgres_store)];

/// The request of the `i`-th preloaded session (agent `bench`, chat
/// `chat`, thread `t<i>`, per-thread mode). Bulk loads must write exactly
/// the rows this resolves to; the bench checks a sample.
fn existing(chat: &MessagingGroupId, i: usize) -> ResolveRequest {
    request(
        &agent("bench"),
        Some(chat),
        Some(&thread(&format!("t{i}"))),
        SessionMode::PerThread,
    )
}

fn sqlite_store(rt: &Runtime, sessions: usize) -> Option<Loaded> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = airlock_sqlite_fs::SqliteSessionStore::open_in(dir.path()).expect("open registry");
    let chat = rt.block_on(chat(&store, "bench"));
    let started = std::time::Instant::now();
    // One statement on a second connection; the key text mirrors
    // ResolveRequest::key() for per-thread requests.
    let conn = rusqlite::Connection::open(store.path()).expect("open registry file");
    conn.busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?2) \
         INSERT INTO sessions (id, agent_group_id, messaging_group_id, thread_id, mode, status, \
                               container_status, created_at, resolution_key) \
         SELECT printf('sess-0000000000000-%016d', i), 'bench', ?1, 't' || i, 'per-thread', \
                'active', 'stopped', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), \
                'thread/bench/' || ?1 || '/t' || i FROM n",
        rusqlite::params![chat.as_str(), i64::try_from(sessions).unwrap()],
    )
    .expect("bulk load");
    conn.execute_batch("ANALYZE").expect("analyze");
    eprintln!(
        "sqlite: bulk-loaded {sessions} sessions in {:?}",
        started.elapsed()
    );
    Some(Loaded {
        store: Arc::new(store),
        chat,
        _guard: Box::new(dir),
    })
}

fn postgres_store(rt: &Runtime, sessions: usize) -> Option<Loaded> {
    let url = common::pg_url("the PostgreSQL resolve bench")?;
    let schema = common::random_schema("airlock_bench");
    let guard = common::SchemaGuard::new(&url, &schema);
    rt.block_on(async {
        let store = PgSessionStore::connect_with(common::test_options(&url, &schema))
            .await
            .expect("AIRLOCK_TEST_PG_URL is set but the store cannot open");
        let chat = chat(&store, "bench").await;
        let started = std::time::Instant::now();
        // One statement instead of 100,000 resolves; the key text mirrors
        // ResolveRequest::key() for per-thread requests.
        sqlx::query(
            "INSERT INTO sessions (id, agent_group_id, messaging_group_id, thread_id, mode, \
                                   status, container_status, created_at, resolution_key) \
             SELECT 'sess-0000000000000-' || lpad(i::text, 16, '0'), 'bench', $1, 't' || i, \
                    'per-thread', 'active', 'stopped', now(), 'thread/bench/' || $1 || '/t' || i \
             FROM generate_series(0, $2 - 1) AS i",
        )
        .bind(chat.as_str())
        .bind(i64::try_from(sessions).unwrap())
        .execute(store.pool())
        .await
        .expect("bulk load");
        sqlx::query("ANALYZE sessions")
            .execute(store.pool())
            .await
            .expect("analyze");
        eprintln!(
            "postgres: bulk-loaded {sessions} sessions in {:?}",
            started.elapsed()
        );
        Some(Loaded {
            store: Arc::new(store),
            chat,
            _guard: Box::new(guard),
        })
    })
}

/// Measures one backend: resolving preloaded keys, then new keys.
fn bench_backend(c: &mut Criterion, rt: &Runtime, name: &str, loaded: &Loaded) {
    let store = &loaded.store;
    for i in [0, SESSIONS / 2, SESSIONS - 1] {
        let found = rt
            .block_on(store.resolve_session(existing(&loaded.chat, i)))
            .unwrap();
        assert!(
            !found.created,
            "{name}: the bulk load does not match ResolveRequest::key()"
        );
    }
    let mut group = c.benchmark_group(format!("resolve_session/{name}/{SESSIONS}_sessions"));
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));

    let mut n = 0usize;
    group.bench_function("existing_key", |b| {
        b.iter(|| {
            // A stride through the table, so the cache sees many keys.
            n = (n + 7919) % SESSIONS;
            let resolved = rt
                .block_on(store.resolve_session(existing(&loaded.chat, n)))
                .unwrap();
            debug_assert!(!resolved.created);
            black_box(resolved)
        })
    });

    let mut fresh = 0u64;
    group.bench_function("new_key", |b| {
        b.iter(|| {
            fresh += 1;
            let req = request(
                &agent("bench"),
                Some(&loaded.chat),
                Some(&thread(&format!("new-{fresh}"))),
                SessionMode::PerThread,
            );
            let resolved = rt.block_on(store.resolve_session(req)).unwrap();
            debug_assert!(resolved.created);
            black_box(resolved)
        })
    });
    group.finish();
}

fn resolve(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (name, factory) in BACKENDS {
        match factory(&rt, SESSIONS) {
            Some(loaded) => {
                bench_backend(c, &rt, name, &loaded);
                // The guard drops its storage off the runtime.
                drop(loaded);
            }
            None => eprintln!("resolve bench: {name} skipped (see above)"),
        }
    }
}

criterion_group!(benches, resolve);
criterion_main!(benches);
