//! A guest that edits, replaces or plants files beside `inbound.db` cannot
//! change what the host accepted, delivered or originated: the host's truth
//! is `host.db`, the folder's file is checked and repaired from it, and no
//! journal or WAL file found in the folder is ever replayed.
//!
//! Each test here is a case measured against earlier versions (issue 10:
//! cases 1, 2 and the known gaps of case 9). `AIRLOCK_RACE_SECS` sets how
//! long the planting loop runs (default 10).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use airlock_core::Timestamp;
use airlock_core::mailbox::{NewHostMessage, Origin};
use airlock_sqlite_fs::{GuestMailbox, MailboxRoots, PlainContent};
use rusqlite::{Connection, OpenFlags};

use crate::mailbox_common::{Fixture, bulky, hot_journal_of, integrity, msg, reply, temp_dir};

/// `(id, content)` of every `messages_in` row, read-only (never replays a journal).
fn rows(db: &Path) -> BTreeMap<String, String> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = conn.prepare("SELECT id, content FROM messages_in").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// A forged hot journal for `fx`'s `inbound.db`: replayed, it would put
/// "FORGED" content into every row and add a `host_outbound` row. With
/// `page1`, the forging transaction also changes the header, so the journal
/// holds a saved page 1 (carrying the copy's change counter, one above the
/// live file's); without, it has none.
fn forged_journal(fx: &Fixture, scratch: &Path, page1: bool) -> PathBuf {
    let copy = scratch.join(if page1 { "with-page1.db" } else { "inbound.db" });
    std::fs::copy(fx.host.paths().inbound_db(), &copy).unwrap();
    Connection::open(&copy)
        .unwrap()
        .execute_batch(
            "UPDATE messages_in SET content = 'FORGED ' || seq;
             INSERT INTO messages_in (id, seq, kind, timestamp, status, content)
               VALUES ('forged-host', 9999, 'host_outbound', '2025-01-01', 'completed', '{\"text\":\"pay me\"}');",
        )
        .unwrap();
    let header = if page1 {
        "PRAGMA user_version = 7;"
    } else {
        ""
    };
    hot_journal_of(
        &copy,
        &format!(
            "{header} UPDATE messages_in SET content = 'x' || content; DELETE FROM messages_in;"
        ),
    )
}

fn race_secs() -> u64 {
    std::env::var("AIRLOCK_RACE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
}

/// Case 1: the planting loop (hard link to a temp name, rename over
/// `inbound.db-journal`, as fast as it can) while the host writes.
#[test]
fn forged_journal_planted_in_a_loop_is_never_replayed() {
    let fx = Fixture::new();
    for i in 0..100 {
        fx.host
            .write_message(&msg(&format!("seed-{i}"), &bulky(i)), &PlainContent)
            .unwrap();
    }
    let scratch = temp_dir();
    let forged = forged_journal(&fx, scratch.path(), false);
    let mut acked: BTreeMap<String, String> = rows(&fx.host.host_state().published_db());
    let stop = Arc::new(AtomicBool::new(false));
    let planted = Arc::new(AtomicU64::new(0));
    let dir = fx.session_dir();
    let planter = {
        let (stop, planted, forged) = (stop.clone(), planted.clone(), forged.clone());
        std::thread::spawn(move || {
            let tmp = dir.join(".plant");
            let journal = dir.join("inbound.db-journal");
            while !stop.load(Ordering::Relaxed) {
                let _ = std::fs::remove_file(&tmp);
                if std::fs::hard_link(&forged, &tmp).is_ok()
                    && std::fs::rename(&tmp, &journal).is_ok()
                {
                    planted.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(race_secs());
    let mut n = 0;
    while Instant::now() < deadline || n < 200 {
        let id = format!("race-{n}");
        let content = format!("{{\"n\":{n}}}");
        let w = fx
            .host
            .write_message(&msg(&id, &content), &PlainContent)
            .unwrap();
        assert_eq!(w.id.as_str(), id);
        acked.insert(id, content);
        n += 1;
    }
    stop.store(true, Ordering::Relaxed);
    planter.join().unwrap();
    // One more host operation after the loop stopped.
    fx.host.verify().unwrap();
    let db = fx.host.paths().inbound_db();
    assert!(!fx.host.paths().inbound_journal().exists());
    assert_eq!(integrity(&db), "ok");
    assert_eq!(
        rows(&db),
        acked,
        "the folder's rows are exactly what the host wrote"
    );
    let in_host: BTreeMap<String, String> = fx
        .host
        .list_inbound(usize::MAX)
        .unwrap()
        .into_iter()
        .map(|m| (m.id, m.content))
        .collect();
    assert_eq!(in_host, acked);
    assert!(fx.host.due_outbound(Timestamp::now()).unwrap().is_empty());
    let events = fx.host.tamper_events().unwrap();
    eprintln!(
        "{n} writes, {} plants, {} tamper events",
        planted.load(Ordering::Relaxed),
        events.len()
    );
    assert!(!events.is_empty(), "the planted journals were not reported");
    fx.assert_no_wal();
}

/// Case 2a: a `host_outbound` row the guest inserts into `inbound.db` is
/// never delivered as the host's, and the edit is reported.
#[test]
fn guest_inserted_host_message_is_never_delivered() {
    let fx = Fixture::new();
    fx.host
        .write_message(&msg("m1", "{}"), &PlainContent)
        .unwrap();
    Connection::open(fx.host.paths().inbound_db())
        .unwrap()
        .execute_batch(
            "INSERT INTO messages_in (id, seq, kind, timestamp, status, trigger, content)
             VALUES ('evil', 4, 'host_outbound', '2025-01-01 00:00:00', 'completed', 0, '{\"text\":\"as the host\"}')",
        )
        .unwrap();
    let due = fx.host.due_outbound(Timestamp::now()).unwrap();
    assert!(due.iter().all(|m| m.id != "evil"), "{due:?}");
    let events = fx.host.tamper_events().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].reason.contains("changed in place"), "{events:?}");
    assert_eq!(events[0].repair, "rebuilt from host.db");
    let published = rows(&fx.host.paths().inbound_db());
    assert_eq!(published.keys().collect::<Vec<_>>(), ["m1"]);
}

/// Case 2b: a copy without `delivered` renamed over `inbound.db` does not
/// make the host deliver an already delivered reply (or host message) again.
#[test]
fn replaced_inbound_without_deliveries_delivers_nothing_twice() {
    let fx = Fixture::new();
    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    guest
        .write_message_out(&reply("r1", "{\"text\":\"hi\"}"))
        .unwrap();
    fx.host
        .write_host_message(&NewHostMessage::new(
            "h1".parse().unwrap(),
            "{\"text\":\"denied\"}",
        ))
        .unwrap();
    let due = fx.host.due_outbound(Timestamp::now()).unwrap();
    assert_eq!(due.len(), 2);
    for m in &due {
        fx.host.mark_delivered(&m.id, Some("p")).unwrap();
    }
    let scratch = fx.session_dir().join("copy.db");
    std::fs::copy(fx.host.paths().inbound_db(), &scratch).unwrap();
    Connection::open(&scratch)
        .unwrap()
        .execute_batch("DELETE FROM delivered")
        .unwrap();
    std::fs::rename(&scratch, fx.host.paths().inbound_db()).unwrap();
    assert!(fx.host.due_outbound(Timestamp::now()).unwrap().is_empty());
    let events = fx.host.tamper_events().unwrap();
    assert!(
        events.iter().any(|e| e.reason.contains("replaced")),
        "{events:?}"
    );
    let moved = events[0].moved_to.clone().unwrap();
    assert!(moved.starts_with(fx.host.host_state().quarantine()));
    // The guest's seq look-up still finds the platform id of its reply.
    let published = Connection::open_with_flags(
        fx.host.paths().inbound_db(),
        OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let n: i64 = published
        .query_row("SELECT count(*) FROM delivered", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
    assert!(due.iter().any(|m| m.origin == Origin::Host));
}

/// Case 9, first gap: with the old design's "write in flight" marker set
/// (as after a real host crash), a forged journal without page 1, or one
/// whose page 1 carries the file's current change counter, was trusted.
#[test]
fn forged_journal_after_a_host_crash_is_never_trusted() {
    let fx = Fixture::new();
    for i in 0..200 {
        fx.host
            .write_message(&msg(&format!("m{i}"), &bulky(i)), &PlainContent)
            .unwrap();
    }
    let scratch = temp_dir();
    let without_page1 = forged_journal(&fx, scratch.path(), false);
    let with_page1 = forged_journal(&fx, scratch.path(), true);
    // The copies' counters are one ahead of the live file's: one more host
    // write makes the forged page 1 carry exactly the live counter.
    fx.host
        .write_message(&msg("one-more", "{}"), &PlainContent)
        .unwrap();
    let expected = fx.host.list_inbound(usize::MAX).unwrap();
    for journal in [with_page1, without_page1] {
        let journal = std::fs::read(journal).unwrap();
        let counter = airlock_sqlite_fs::read_header(&fx.host.paths().inbound_db())
            .unwrap()
            .unwrap()
            .change_counter;
        // What earlier versions wrote before each write transaction.
        std::fs::write(
            fx.host.host_state().dir().join("inbound.intent"),
            format!("busy 1 now {counter}\n"),
        )
        .unwrap();
        std::fs::write(fx.host.paths().inbound_journal(), &journal).unwrap();
        let w = fx
            .host
            .write_message(&msg(&format!("after-{counter}"), "{}"), &PlainContent)
            .unwrap();
        assert!(w.quarantined_journal.is_some());
        let published = rows(&fx.host.paths().inbound_db());
        assert!(
            published.values().all(|c| !c.starts_with("FORGED")),
            "forged rows replayed"
        );
        assert!(!published.contains_key("forged-host"));
        for m in &expected {
            assert_eq!(published.get(&m.id), Some(&m.content));
        }
        assert_eq!(integrity(&fx.host.paths().inbound_db()), "ok");
    }
}

/// Case 9, second gap: a forged `-wal` beside a WAL-mode `inbound.db` (a
/// folder from an earlier version) is not replayed when the host takes the
/// folder over.
#[test]
fn forged_wal_beside_a_legacy_wal_inbound_is_never_replayed() {
    let dir = temp_dir();
    let roots = MailboxRoots::in_data_dir(dir.path());
    let session = crate::mailbox_common::fixture_session();
    let paths = roots.sessions().session(&session);
    std::fs::create_dir_all(paths.dir()).unwrap();
    let db = paths.inbound_db();
    {
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(airlock_sqlite_fs::schema::INBOUND_SCHEMA)
            .unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch("INSERT INTO messages_in (id, seq, kind, timestamp, content) VALUES ('real', 2, 'chat', 't', 'real')")
            .unwrap();
    }
    // The forgery: the same file with a WAL holding rows never committed to it.
    let scratch = temp_dir();
    let copy = scratch.path().join("inbound.db");
    std::fs::copy(&db, &copy).unwrap();
    let conn = Connection::open(&copy).unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    conn.execute_batch("UPDATE messages_in SET content = 'FORGED'; INSERT INTO messages_in (id, seq, kind, timestamp, status, content) VALUES ('evil', 4, 'host_outbound', 't', 'completed', 'x')")
        .unwrap();
    std::fs::copy(copy.with_extension("db-wal"), db.with_extension("db-wal")).unwrap();
    drop(conn);
    let host = roots.create_session(&session).unwrap();
    let stored: Vec<(String, String)> = host
        .list_inbound(10)
        .unwrap()
        .into_iter()
        .map(|m| (m.id, m.content))
        .collect();
    assert_eq!(stored, [("real".to_owned(), "real".to_owned())]);
    assert!(host.due_outbound(Timestamp::now()).unwrap().is_empty());
    assert!(!db.with_extension("db-wal").exists());
    assert!(
        host.tamper_events()
            .unwrap()
            .iter()
            .any(|e| e.file == "inbound.db-wal")
    );
}

fn legacy_folder(dir: &Path) -> (MailboxRoots, airlock_core::SessionRef) {
    let roots = MailboxRoots::in_data_dir(dir);
    let session = crate::mailbox_common::fixture_session();
    let paths = roots.sessions().session(&session);
    std::fs::create_dir_all(paths.dir()).unwrap();
    Connection::open(paths.inbound_db())
        .unwrap()
        .execute_batch(
            "CREATE TABLE messages_in (id TEXT PRIMARY KEY, seq INTEGER UNIQUE, kind TEXT NOT NULL,
               timestamp TEXT NOT NULL, status TEXT DEFAULT 'pending', process_after TEXT,
               recurrence TEXT, tries INTEGER DEFAULT 0, platform_id TEXT, channel_type TEXT,
               thread_id TEXT, content TEXT NOT NULL);
             CREATE TABLE delivered (message_out_id TEXT PRIMARY KEY, delivered_at TEXT NOT NULL);
             INSERT INTO messages_in (id, seq, kind, timestamp, content) VALUES ('old-1', 2, 'chat', 't', '{}');",
        )
        .unwrap();
    (roots, session)
}

/// `show` and `messages` (counts and listings) never write `inbound.db`,
/// neither a current one nor an older shape (issue 16).
#[test]
fn listings_and_counts_leave_inbound_db_byte_identical() {
    let fx = Fixture::new();
    fx.host
        .write_message(&msg("m1", "{}"), &PlainContent)
        .unwrap();
    let legacy_dir = temp_dir();
    let (roots, session) = legacy_folder(legacy_dir.path());
    for host in [fx.host.clone(), roots.host(&session)] {
        let db = host.paths().inbound_db();
        let before = std::fs::read(&db).unwrap();
        assert!(!host.list_inbound(50).unwrap().is_empty());
        host.counts().unwrap();
        host.count_due(Timestamp::now()).unwrap();
        host.tamper_events().unwrap();
        assert_eq!(
            std::fs::read(&db).unwrap(),
            before,
            "{} was written",
            db.display()
        );
    }
}

/// The host keeps a hard link to the published file, so sessions root and
/// host state must share a file system; otherwise creating a session fails
/// with an error that says so.
#[test]
fn host_state_on_another_file_system_is_a_clear_error() {
    use std::os::unix::fs::MetadataExt;
    let (Ok(a), Ok(b)) = (
        tempfile::tempdir_in("/dev/shm"),
        tempfile::tempdir_in(std::env::temp_dir()),
    ) else {
        eprintln!("skipped: needs /dev/shm and a temp dir");
        return;
    };
    if a.path().metadata().unwrap().dev() == b.path().metadata().unwrap().dev() {
        eprintln!("skipped: /dev/shm and the temp dir are one file system here");
        return;
    }
    let roots = MailboxRoots::new(
        airlock_sqlite_fs::SessionsRoot::new(a.path().join("sessions")),
        airlock_sqlite_fs::HostStateRoot::new(b.path().join("host-state")),
    )
    .unwrap();
    let err = roots
        .create_session(&crate::mailbox_common::fixture_session())
        .unwrap_err();
    assert!(
        matches!(err, airlock_sqlite_fs::Error::NotOneFilesystem { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("one file system"), "{err}");
}

/// The host's placeholder journal as a host killed mid-publish leaves it:
/// SQLite's journal magic, then zeros.
fn leftover_placeholder() -> Vec<u8> {
    let mut b = vec![0u8; 512];
    b[..8].copy_from_slice(&[0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7]);
    b
}

/// deliver-kill: a deliverer SIGKILLed while publishing left its placeholder
/// journal (and no record of the write) in the folder, and a read-only guest
/// failed "attempt to write a readonly database" until the host wrote to
/// the session again. Any host read now repairs the folder first.
#[test]
fn deliver_kill_placeholder_left_by_a_killed_publish_is_removed_by_the_next_host_read() {
    let fx = Fixture::new();
    fx.host
        .write_message(&msg("m1", "{}"), &PlainContent)
        .unwrap();
    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    assert_eq!(guest.pending(10).unwrap().len(), 1);
    let kill_mid_publish = || {
        std::fs::remove_file(fx.host.host_state().published_record()).unwrap();
        std::fs::write(fx.host.paths().inbound_journal(), leftover_placeholder()).unwrap();
    };
    kill_mid_publish();
    assert!(
        guest.pending(10).is_err(),
        "a read-only guest cannot read past a hot journal"
    );
    assert_eq!(fx.host.count_due(Timestamp::now()).unwrap(), 1);
    assert!(!fx.host.paths().inbound_journal().exists());
    assert_eq!(guest.pending(10).unwrap().len(), 1);

    // A delivery pass that finds the session idle only stamps it.
    kill_mid_publish();
    fx.host.inbound_stamp().unwrap();
    assert!(!fx.host.paths().inbound_journal().exists());
    assert_eq!(guest.pending(10).unwrap().len(), 1);
    assert!(
        fx.host.tamper_events().unwrap().is_empty(),
        "the host's own placeholder is no tamper event"
    );
}

/// A journal the guest plants between host writes is quarantined by the
/// next host read as well (a tamper event), so it cannot stall the guest.
#[test]
fn deliver_kill_journal_planted_between_writes_is_quarantined_by_the_next_host_read() {
    let fx = Fixture::new();
    fx.host
        .write_message(&msg("m1", "{}"), &PlainContent)
        .unwrap();
    std::fs::write(fx.host.paths().inbound_journal(), leftover_placeholder()).unwrap();
    assert_eq!(fx.host.list_inbound(10).unwrap().len(), 1);
    assert!(!fx.host.paths().inbound_journal().exists());
    let events = fx.host.tamper_events().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    assert_eq!(guest.pending(10).unwrap().len(), 1);
}

/// power-loss: a cut during a publish can keep some of its pages and lose
/// the (never synced) placeholder, leaving a torn `inbound.db` and no
/// record of the write; the next host read, not only the next write,
/// rebuilds it from `host.db`.
#[test]
fn power_loss_torn_inbound_db_is_rebuilt_by_the_next_host_read() {
    use std::os::unix::fs::FileExt;
    let fx = Fixture::new();
    for i in 0..20 {
        fx.host
            .write_message(&msg(&format!("m{i}"), &bulky(i)), &PlainContent)
            .unwrap();
    }
    std::fs::remove_file(fx.host.host_state().published_record()).unwrap();
    let db = fx.host.paths().inbound_db();
    let file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
    file.write_all_at(&[0x5a; 4096], 4096).unwrap();
    drop(file);
    let torn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0)));
    assert!(torn.as_deref() != Ok("ok"), "the tear must damage the file");

    assert_eq!(fx.host.list_inbound(100).unwrap().len(), 20);
    assert_eq!(integrity(&fx.host.paths().inbound_db()), "ok");
    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    assert_eq!(guest.pending(100).unwrap().len(), 20);
}

/// power-loss: a publish does not sync the published file; its record names
/// the boot and mount it was written in, and a record of another one (what
/// a power cut, a crash of the kernel or a remount leaves) is never
/// trusted: the next write rebuilds the file from `host.db`.
#[test]
fn power_loss_a_record_of_another_boot_or_mount_makes_the_next_write_rebuild() {
    use std::os::unix::fs::MetadataExt;
    let fx = Fixture::new();
    fx.host
        .write_message(&msg("m1", "{}"), &PlainContent)
        .unwrap();
    let record = fx.host.host_state().published_record();
    let fields = || -> Vec<String> {
        std::fs::read_to_string(&record)
            .unwrap()
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    let ours = fields();
    assert_eq!(ours.len(), 7, "{ours:?}");
    if ours[6] == "-" {
        // A kernel before 6.8: no instance, and every publish syncs.
        return;
    }
    let inode = || {
        std::fs::metadata(fx.host.host_state().published_db())
            .unwrap()
            .ino()
    };
    let published = inode();
    fx.host
        .write_message(&msg("m2", "{}"), &PlainContent)
        .unwrap();
    assert_eq!(inode(), published, "the same instance: written in place");
    // The record of m2's publish, as a later boot would find it.
    let mut other = fields();
    other[6] = "ffffffffffffffffffffffffffffffff-1".into();
    std::fs::write(&record, format!("{}\n", other.join(" "))).unwrap();
    fx.host
        .write_message(&msg("m3", "{}"), &PlainContent)
        .unwrap();
    assert_ne!(inode(), published, "another instance: rebuilt");
    assert_eq!(fields()[6], ours[6], "the new record names this instance");
    assert!(fx.host.tamper_events().unwrap().is_empty());
    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    assert_eq!(guest.pending(10).unwrap().len(), 3);
    assert_eq!(integrity(&fx.host.paths().inbound_db()), "ok");
}

#[test]
fn io_errors_a_rebuild_left_by_an_earlier_process_is_removed_by_the_next_rebuild() {
    // Under libfiu, a rebuild whose write failed and whose clean-up unlink
    // failed too left `.rebuild-<pid>.db` in host state for good (no later
    // process has that pid), a malformed file the campaign's check found.
    let fx = Fixture::new();
    fx.host
        .write_message(&msg("m0", "x"), &PlainContent)
        .unwrap();
    let published = fx.host.host_state().published_db();
    let stale = published.with_file_name(".rebuild-4000000.db");
    std::fs::write(&stale, b"half a database").unwrap();
    // A torn published file makes the next read rebuild it.
    std::fs::remove_file(fx.host.host_state().published_record()).unwrap();
    assert_eq!(fx.host.list_inbound(100).unwrap().len(), 1);
    assert!(!stale.exists(), "{} is still there", stale.display());
}

/// The placeholder journal is one host-state file, moved into the folder
/// for each write and back out after it, so the guest can write into that
/// inode while it sits in the folder. A template whose bytes changed is
/// replaced by a fresh file, never moved into the folder again; an
/// untouched one is reused.
#[test]
fn a_placeholder_changed_while_in_the_folder_is_replaced() {
    use std::os::unix::fs::MetadataExt;
    let fx = Fixture::new();
    let template = fx.host.host_state().placeholder_journal();
    let inode = |p: &Path| std::fs::metadata(p).unwrap().ino();
    fx.host
        .write_message(&msg("m1", "one"), &PlainContent)
        .unwrap();
    let clean = std::fs::read(&template).unwrap();
    assert_eq!(clean.len(), 512);
    assert_eq!(clean[..8], [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7]);
    assert!(clean[8..].iter().all(|&b| b == 0));
    let first = inode(&template);
    fx.host
        .write_message(&msg("m2", "two"), &PlainContent)
        .unwrap();
    assert_eq!(inode(&template), first, "an untouched template is reused");
    // What a guest can do to the shared inode while it is in the folder
    // (same inode, other bytes).
    std::fs::write(&template, b"journal records of the guest's choosing").unwrap();
    assert_eq!(inode(&template), first);
    fx.host
        .write_message(&msg("m3", "three"), &PlainContent)
        .unwrap();
    assert_eq!(std::fs::read(&template).unwrap(), clean);
    assert_ne!(inode(&template), first, "the changed file is not put back");
    assert_eq!(integrity(&fx.host.paths().inbound_db()), "ok");
    assert_eq!(rows(&fx.host.paths().inbound_db()).len(), 3);
}
