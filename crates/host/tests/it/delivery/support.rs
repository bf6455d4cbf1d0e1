//! A data dir with a registry, sessions, and a guest writing replies.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use airlock_core::mailbox::NewOutboundMessage;
use airlock_core::{MessageId, Session};
use airlock_host::delivery::{DelivererConfig, DynChannelAdapter, RetryPolicy};
use airlock_host::{Deliverer, ManagerConfig, SessionManager};
use airlock_sqlite_fs::{GuestMailbox, SqliteSessionStore};

/// A host over one data dir.
pub struct Host {
    pub manager: SessionManager,
}

impl Host {
    /// A host over `dir` (opened again after a "restart").
    pub fn at(dir: &Path) -> Self {
        let store = Arc::new(SqliteSessionStore::open_in(dir).unwrap());
        Self {
            manager: SessionManager::new(store, ManagerConfig::new(dir)),
        }
    }

    /// A session of its own chat `name`.
    pub async fn session(&self, name: &str) -> Session {
        crate::support::chat_session(&self.manager, name).await
    }

    pub fn session_dir(&self, session: &Session) -> PathBuf {
        self.manager.session_dir(session)
    }

    /// A deliverer with `config` over this host.
    pub fn deliverer(&self, adapter: Arc<DynChannelAdapter>, config: DelivererConfig) -> Deliverer {
        Deliverer::builder(self.manager.clone(), adapter)
            .config(config)
            .build()
            .unwrap()
    }

    /// The guest of `session` writes a reply `id` with `text`; returns its seq.
    pub fn reply(&self, session: &Session, id: &str, text: &str) -> i64 {
        let guest = GuestMailbox::open(self.session_dir(session)).unwrap();
        let msg = NewOutboundMessage::new(
            MessageId::new(id).unwrap(),
            "chat",
            serde_json::json!({ "text": text }).to_string(),
        );
        guest.write_message_out(&msg).unwrap()
    }

    /// The guest of `session` writes `n` replies of `size` bytes at once
    /// (one transaction, as a busy agent would over time); ids `<prefix>-<i>`.
    pub fn bulk_replies(&self, session: &Session, prefix: &str, n: usize, size: usize) {
        let guest = GuestMailbox::open(self.session_dir(session)).unwrap();
        drop(guest);
        let path = self.session_dir(session).join("outbound.db");
        let mut conn = rusqlite::Connection::open(path).unwrap();
        let tx = conn.transaction().unwrap();
        let start: i64 = tx
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM messages_out", [], |r| {
                r.get(0)
            })
            .unwrap();
        let filler = "x".repeat(size.saturating_sub(20));
        {
            let mut stmt = tx
                .prepare(
                    "INSERT INTO messages_out (id, seq, timestamp, kind, content)
                     VALUES (?1, ?2, '2026-01-01 00:00:00', 'chat', ?3)",
                )
                .unwrap();
            for i in 0..n {
                let first = if start % 2 == 0 { start + 1 } else { start + 2 };
                let seq = first + 2 * i as i64;
                let content = serde_json::json!({ "text": filler, "i": i }).to_string();
                stmt.execute(rusqlite::params![format!("{prefix}-{i}"), seq, content])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
}

/// Short timeouts and backoff, so tests that wait for retries stay fast.
pub fn quick() -> DelivererConfig {
    DelivererConfig {
        call_timeout: Duration::from_millis(500),
        retry: RetryPolicy {
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
            window: Duration::from_secs(600),
        },
        ..DelivererConfig::default()
    }
}
