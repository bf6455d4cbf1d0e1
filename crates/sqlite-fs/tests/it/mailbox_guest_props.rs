//! Property test: a malicious guest does random things to the session
//! folder between host operations (edit, replace, truncate, rename or
//! delete `inbound.db`; plant journals, `-wal`, `-shm`, FIFOs, symlinks,
//! hard links) while the host writes, delivers and syncs acks.
//!
//! Invariants: every acknowledged inbound message stays in host state and
//! is back in `inbound.db` after the next host operation; nothing the guest
//! wrote as host-originated is delivered; nothing is delivered twice; no
//! host call hangs (a watchdog aborts the run) or panics.
//! `AIRLOCK_TAMPER_CASES` sets the number of cases (default 12).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use airlock_core::Timestamp;
use airlock_core::mailbox::{NewHostMessage, Origin};
use airlock_sqlite_fs::{GuestMailbox, PlainContent};
use proptest::prelude::*;
use rusqlite::{Connection, OpenFlags};

use crate::mailbox_common::{Fixture, env_usize, msg, reply};

#[derive(Debug, Clone)]
enum GuestOp {
    /// `INSERT` a `host_outbound` row into `inbound.db` in place.
    InsertHostRow,
    /// Rewrite every row's content in place.
    EditContents,
    /// A copy without `delivered` (and with a forged host row) renamed over it.
    ReplaceWithoutDeliveries,
    /// Cut the file to this many bytes.
    Truncate(u64),
    /// Rename `inbound.db` away.
    RenameAway,
    /// Delete it.
    Delete,
    /// A file with these bytes as `inbound.db-journal`, `-wal` or `-shm`.
    Plant(usize, Vec<u8>),
    /// A FIFO at one of the mailbox names.
    Fifo(usize),
    /// A symlink at one of the mailbox names, to a file outside.
    Symlink(usize),
    /// A hard link of an outside file as `inbound.db`.
    HardLinkOutside,
    /// Hard-link `inbound.db` to a second name and edit it through that.
    EditThroughHardLink,
    /// A genuine reply (and acks), as a working guest would.
    Reply,
}

#[derive(Debug, Clone)]
enum HostOp {
    Write(u8),
    HostMessage,
    Deliver,
    SyncAcks,
}

const NAMES: [&str; 4] = [
    "inbound.db",
    "inbound.db-journal",
    "inbound.db-wal",
    "inbound.db-shm",
];

fn guest_op() -> impl Strategy<Value = GuestOp> {
    prop_oneof![
        Just(GuestOp::InsertHostRow),
        Just(GuestOp::EditContents),
        Just(GuestOp::ReplaceWithoutDeliveries),
        (0u64..8192).prop_map(GuestOp::Truncate),
        Just(GuestOp::RenameAway),
        Just(GuestOp::Delete),
        (1usize..4, proptest::collection::vec(any::<u8>(), 0..700))
            .prop_map(|(i, b)| GuestOp::Plant(i, b)),
        (0usize..4).prop_map(GuestOp::Fifo),
        (0usize..4).prop_map(GuestOp::Symlink),
        Just(GuestOp::HardLinkOutside),
        Just(GuestOp::EditThroughHardLink),
        Just(GuestOp::Reply),
    ]
}

fn host_op() -> impl Strategy<Value = HostOp> {
    prop_oneof![
        3 => (1u8..4).prop_map(HostOp::Write),
        1 => Just(HostOp::HostMessage),
        2 => Just(HostOp::Deliver),
        1 => Just(HostOp::SyncAcks),
    ]
}

/// Everything the guest does ignores errors: it only tries.
fn run_guest(op: &GuestOp, dir: &Path, outside: &Path, n: usize) {
    let db = dir.join("inbound.db");
    let edit = |path: &Path, sql: &str| {
        if let Ok(c) = Connection::open(path) {
            let _ = c.execute_batch(sql);
        }
    };
    let host_row = format!(
        "INSERT INTO messages_in (id, seq, kind, timestamp, status, trigger, content)
         VALUES ('evil-{n}', {}, 'host_outbound', '2025-01-01 00:00:00', 'completed', 0, 'evil');",
        100_000 + 2 * n
    );
    match op {
        GuestOp::InsertHostRow => edit(&db, &host_row),
        GuestOp::EditContents => edit(&db, "UPDATE messages_in SET content = 'GUEST'"),
        GuestOp::ReplaceWithoutDeliveries => {
            let copy = dir.join(format!("copy-{n}.db"));
            if std::fs::copy(&db, &copy).is_ok() {
                edit(&copy, &format!("DELETE FROM delivered; {host_row}"));
                let _ = std::fs::rename(&copy, &db);
            }
        }
        GuestOp::Truncate(len) => {
            if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&db) {
                let _ = f.set_len(*len);
            }
        }
        GuestOp::RenameAway => {
            let _ = std::fs::rename(&db, dir.join(format!("away-{n}.db")));
        }
        GuestOp::Delete => {
            let _ = std::fs::remove_file(&db);
        }
        GuestOp::Plant(i, bytes) => {
            let _ = std::fs::write(dir.join(NAMES[*i]), bytes);
        }
        GuestOp::Fifo(i) => {
            let path = dir.join(NAMES[*i]);
            let _ = std::fs::remove_file(&path);
            let _ = rustix::fs::mknodat(
                rustix::fs::CWD,
                &path,
                rustix::fs::FileType::Fifo,
                rustix::fs::Mode::from_raw_mode(0o600),
                0,
            );
        }
        GuestOp::Symlink(i) => {
            let path = dir.join(NAMES[*i]);
            let _ = std::fs::remove_file(&path);
            let _ = std::os::unix::fs::symlink(outside.join("secret.db"), &path);
        }
        GuestOp::HardLinkOutside => {
            let tmp = dir.join(format!("hl-{n}"));
            if std::fs::hard_link(outside.join("secret.db"), &tmp).is_ok() {
                let _ = std::fs::rename(&tmp, &db);
            }
        }
        GuestOp::EditThroughHardLink => {
            let other = dir.join(format!("alias-{n}.db"));
            if std::fs::hard_link(&db, &other).is_ok() {
                edit(&other, &host_row);
            }
        }
        GuestOp::Reply => {
            if let Ok(guest) = GuestMailbox::open(dir) {
                let _ = guest.write_message_out(&reply(&format!("reply-{n}"), "{\"text\":\"hi\"}"));
                if let Ok(pending) = guest.pending(3) {
                    let ids: Vec<&str> = pending.iter().map(|m| m.id.as_str()).collect();
                    let _ = guest.mark_completed(&ids);
                }
            }
        }
    }
}

/// The watchdog's clock: the start of the current host call, in ms since `EPOCH`.
static CALL_STARTED: AtomicU64 = AtomicU64::new(0);
static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
const WATCHDOG: Duration = Duration::from_secs(60);

fn now_ms() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

fn start_watchdog() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        std::thread::spawn(|| {
            loop {
                std::thread::sleep(Duration::from_millis(500));
                let started = CALL_STARTED.load(Ordering::Relaxed);
                if started != 0 && now_ms() - started > WATCHDOG.as_millis() as u64 {
                    eprintln!("a host call hung for over {WATCHDOG:?}");
                    std::process::abort();
                }
            }
        });
    });
}

/// Runs one host call under the watchdog.
fn watched<T>(f: impl FnOnce() -> T) -> T {
    CALL_STARTED.store(now_ms(), Ordering::Relaxed);
    let value = f();
    CALL_STARTED.store(0, Ordering::Relaxed);
    value
}

fn published(db: &Path) -> BTreeMap<String, String> {
    let Ok(conn) = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return BTreeMap::new();
    };
    let Ok(mut stmt) = conn.prepare("SELECT id, content FROM messages_in") else {
        return BTreeMap::new();
    };
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

fn check(steps: &[(GuestOp, HostOp)]) {
    start_watchdog();
    let fx = Fixture::new();
    let outside = tempfile::tempdir().unwrap();
    Connection::open(outside.path().join("secret.db"))
        .unwrap()
        .execute_batch("CREATE TABLE secret (x); INSERT INTO secret VALUES ('secret');")
        .unwrap();
    let secret_before = std::fs::read(outside.path().join("secret.db")).unwrap();
    let dir = fx.session_dir();
    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    let mut host_ids: HashSet<String> = HashSet::new();
    let mut delivered: HashSet<String> = HashSet::new();
    let mut next = 0usize;
    for (n, (guest, host)) in steps.iter().enumerate() {
        run_guest(guest, &dir, outside.path(), n);
        match host {
            HostOp::Write(k) => {
                let batch: Vec<_> = (0..*k)
                    .map(|_| {
                        next += 1;
                        msg(&format!("m{next}"), &format!("{{\"n\":{next}}}"))
                    })
                    .collect();
                let written = watched(|| fx.host.write_messages(&batch, &PlainContent)).unwrap();
                for (w, m) in written.iter().zip(&batch) {
                    acked.insert(w.id.to_string(), m.content.clone());
                }
            }
            HostOp::HostMessage => {
                next += 1;
                let id = format!("h{next}");
                watched(|| {
                    fx.host.write_host_message(&NewHostMessage::new(
                        id.parse().unwrap(),
                        "{\"text\":\"no\"}",
                    ))
                })
                .unwrap();
                acked.insert(id.clone(), "{\"text\":\"no\"}".to_owned());
                host_ids.insert(id);
            }
            HostOp::Deliver => {
                let due = watched(|| fx.host.due_outbound(Timestamp::now())).unwrap();
                for m in due {
                    assert!(delivered.insert(m.id.clone()), "{} delivered twice", m.id);
                    if m.origin == Origin::Host {
                        assert!(
                            host_ids.contains(&m.id),
                            "guest row {} delivered as the host's",
                            m.id
                        );
                    }
                    assert!(!m.id.starts_with("evil"), "{m:?}");
                    watched(|| fx.host.mark_delivered(&m.id, Some("p"))).unwrap();
                }
            }
            HostOp::SyncAcks => {
                // The guest's own file is its business; the host only reads it.
                let _ = watched(|| fx.host.sync_acks());
            }
        }
        watched(|| fx.host.verify()).unwrap();
        let stored: BTreeMap<String, String> = watched(|| fx.host.list_inbound(usize::MAX))
            .unwrap()
            .into_iter()
            .map(|m| (m.id, m.content))
            .collect();
        assert_eq!(stored, acked, "host state lost or changed a message");
        let now = published(&fx.host.paths().inbound_db());
        assert_eq!(
            now, acked,
            "after {guest:?}/{host:?} inbound.db is not what the host wrote"
        );
    }
    assert_eq!(
        std::fs::read(outside.path().join("secret.db")).unwrap(),
        secret_before
    );
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: env_usize("AIRLOCK_TAMPER_CASES", 12) as u32,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_malicious_guest_cannot_change_what_the_host_accepted_or_delivers(
        steps in proptest::collection::vec((guest_op(), host_op()), 1..24)
    ) {
        check(&steps);
    }
}
