//! Times for the tables: seconds from a fixed instant.

use airlock_core::Timestamp;

/// 2026-06-01 12:00:00 UTC plus `secs` seconds (negative: before).
pub fn t(secs: i64) -> Timestamp {
    Timestamp::parse("2026-06-01 12:00:00")
        .unwrap()
        .plus_millis(secs * 1000)
}

/// Minutes in seconds.
pub const MIN: i64 = 60;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use airlock_core::mailbox::{InboundMessage, NewInboundMessage, NewOutboundMessage};
use airlock_core::{MessageId, Session};
use airlock_host::lifecycle::{FakeRuntime, Runtime, RuntimeTimeouts, SweepConfig, Sweeper};
use airlock_host::{ManagerConfig, SessionManager};
use airlock_sqlite_fs::{GuestMailbox, SqliteSessionStore};

/// What the scripted guest does when it is woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guest {
    /// Claims every due message, then dies.
    ClaimAndDie,
    /// Claims every due message and stays alive without answering.
    ClaimAndHang,
    /// Claims, replies to and completes every due message; stays alive.
    Answer,
}

/// A host with a fake runtime, a virtual clock and a scripted guest.
pub struct Rig {
    pub _dir: tempfile::TempDir,
    pub manager: SessionManager,
    pub fake: FakeRuntime,
    pub sweeper: Sweeper,
    pub clock: Arc<Mutex<Timestamp>>,
}

impl Rig {
    /// A fresh data dir; each wake runs the next guest of the script
    /// (`ClaimAndDie` once the script is empty).
    pub fn new(script: &[Guest]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::at(dir, script)
    }

    /// A host over an existing data dir (a restart).
    pub fn at(dir: tempfile::TempDir, script: &[Guest]) -> Self {
        let store = Arc::new(SqliteSessionStore::open_in(dir.path()).unwrap());
        let manager = SessionManager::new(store, ManagerConfig::new(dir.path()));
        let fake = FakeRuntime::new();
        let clock = Arc::new(Mutex::new(t(0)));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let (f, c, s) = (fake.clone(), clock.clone(), script);
        fake.on_wake(move |launch| {
            let guest = s.lock().unwrap().pop_front().unwrap_or(Guest::ClaimAndDie);
            let now = *c.lock().unwrap();
            let mailbox = GuestMailbox::open(launch.session_dir.as_ref().unwrap()).unwrap();
            let due = mailbox.pending_at(10, now).unwrap();
            let ids: Vec<&str> = due.iter().map(|m| m.id.as_str()).collect();
            mailbox.mark_processing(&ids).unwrap();
            match guest {
                Guest::ClaimAndDie => f.set_running(&launch.session.id, false),
                Guest::ClaimAndHang => {}
                Guest::Answer => {
                    for m in &due {
                        let mut reply = NewOutboundMessage::new(
                            MessageId::new(format!("re-{}", m.id)).unwrap(),
                            "chat",
                            r#"{"text":"done"}"#,
                        );
                        reply.in_reply_to = Some(m.id.clone());
                        mailbox.write_message_out(&reply).unwrap();
                    }
                    mailbox.mark_completed(&ids).unwrap();
                }
            }
        });
        let runtime = Runtime::new(Arc::new(fake.clone()), RuntimeTimeouts::default());
        let sweeper = Sweeper::new(manager.clone(), runtime, SweepConfig::default());
        Self {
            _dir: dir,
            manager,
            fake,
            sweeper,
            clock,
        }
    }

    /// Sets the virtual clock to `t(secs)`.
    pub fn at_secs(&self, secs: i64) -> Timestamp {
        let now = t(secs);
        *self.clock.lock().unwrap() = now;
        now
    }

    /// A session of chat `name`.
    pub async fn session(&self, name: &str) -> Session {
        crate::support::chat_session(&self.manager, name).await
    }

    /// Writes a triggering chat message `id` at the virtual time.
    pub async fn send(&self, session: &Session, id: &str) {
        let mut msg =
            NewInboundMessage::new(MessageId::new(id).unwrap(), "chat", r#"{"text":"hi"}"#);
        msg.timestamp = *self.clock.lock().unwrap();
        self.manager.write_message(&session.id, msg).await.unwrap();
    }

    /// The stored inbound message `id`.
    pub fn inbound(&self, session: &Session, id: &str) -> InboundMessage {
        self.manager
            .mailbox(session)
            .inbound_message(id)
            .unwrap()
            .unwrap()
    }
}
