//! What an idle poll costs: one session with nothing new and 0 / 1,000 /
//! 100,000 delivered messages in its history (the three should match), and
//! one idle pass over many sessions (10,000 by default; set
//! `AIRLOCK_BENCH_SESSIONS` to change it).
//!
//! The data dir lives on tmpfs (`/dev/shm`) unless `AIRLOCK_BENCH_DIR` names
//! another folder. History is written straight into the files (one
//! transaction each) and recorded as delivered before the engine starts, so
//! setup does not take 100,000 deliveries.
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use airlock_core::{
    AgentGroupId, NewMessagingGroup, ResolveRequest, Session, SessionMode, SessionStoreExt,
};
use airlock_host::delivery::{ChannelAdapter, Delivery, DeliveryError, Scope};
use airlock_host::{Deliverer, ManagerConfig, SessionManager};
use airlock_sqlite_fs::{GuestMailbox, SqliteSessionStore};
use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};

#[derive(Debug)]
struct Discard;

#[async_trait]
impl ChannelAdapter for Discard {
    async fn deliver(&self, d: &Delivery) -> Result<String, DeliveryError> {
        Ok(d.message().id.clone())
    }
}

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("AIRLOCK_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir).unwrap(),
        None if Path::new("/dev/shm").is_dir() => tempfile::tempdir_in("/dev/shm").unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

async fn host(dir: &Path) -> (SessionManager, Deliverer) {
    let store = Arc::new(SqliteSessionStore::open_in(dir).unwrap());
    let manager = SessionManager::new(store, ManagerConfig::new(dir));
    let deliverer = Deliverer::builder(manager.clone(), Arc::new(Discard))
        .build()
        .unwrap();
    (manager, deliverer)
}

async fn session(manager: &SessionManager, chat: &str) -> Session {
    let mg = manager
        .store()
        .ensure_messaging_group(NewMessagingGroup::new("bench", chat))
        .await
        .unwrap();
    let request = ResolveRequest::new(
        AgentGroupId::new("ag-bench").unwrap(),
        Some(mg.id),
        None,
        SessionMode::Shared,
    );
    manager.resolve_session(request).await.unwrap().session
}

/// `n` guest replies, all already recorded in `delivered`.
fn history(manager: &SessionManager, session: &Session, n: usize) {
    let dir = manager.session_dir(session);
    drop(GuestMailbox::open(&dir).unwrap());
    let mut out = rusqlite::Connection::open(dir.join("outbound.db")).unwrap();
    let mut inbound = rusqlite::Connection::open(dir.join("inbound.db")).unwrap();
    let (tx, itx) = (out.transaction().unwrap(), inbound.transaction().unwrap());
    let content = format!("{{\"text\":\"{}\"}}", "x".repeat(1000));
    for i in 0..n {
        tx.execute(
            "INSERT INTO messages_out (id, seq, timestamp, kind, content) VALUES (?1, ?2, '2026-01-01 00:00:00', 'chat', ?3)",
            rusqlite::params![format!("h{i}"), 1 + 2 * i as i64, content],
        )
        .unwrap();
        itx.execute(
            "INSERT INTO delivered (message_out_id, status, delivered_at) VALUES (?1, 'delivered', '2026-01-01 00:00:00')",
            [format!("h{i}")],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    itx.commit().unwrap();
}

fn poll_cost(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("poll_one_idle_session");
    for n in [0usize, 1_000, 100_000] {
        let tmp = bench_dir();
        let (manager, deliverer) = rt.block_on(host(tmp.path()));
        let session = rt.block_on(session(&manager, "chat"));
        history(&manager, &session, n);
        // The first pass walks the history once and stores the cursor.
        let first = rt
            .block_on(deliverer.poll(Scope::Session(session.id.clone())))
            .unwrap();
        assert!(first.is_clean() && first.delivered == 0, "{first:?}");
        group.bench_function(format!("{n}_delivered"), |b| {
            b.iter(|| {
                let report = rt
                    .block_on(deliverer.poll(Scope::Session(session.id.clone())))
                    .unwrap();
                assert_eq!(report.idle, 1);
                black_box(report)
            })
        });
    }
    group.finish();
}

fn idle_pass(c: &mut Criterion) {
    let count: usize = std::env::var("AIRLOCK_BENCH_SESSIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = bench_dir();
    let (manager, deliverer) = rt.block_on(host(tmp.path()));
    rt.block_on(async {
        for i in 0..count {
            session(&manager, &format!("chat-{i}")).await;
        }
    });
    let first = rt.block_on(deliverer.poll(Scope::Active)).unwrap();
    assert!(first.is_clean(), "{first:?}");
    let mut group = c.benchmark_group("idle_pass");
    group.sample_size(10);
    group.bench_function(format!("{count}_sessions"), |b| {
        b.iter(|| {
            let report = rt.block_on(deliverer.poll(Scope::Active)).unwrap();
            assert_eq!(report.idle, count);
            black_box(report)
        })
    });
    group.finish();
}

criterion_group!(benches, poll_cost, idle_pass);
criterion_main!(benches);
