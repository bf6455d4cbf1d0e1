//! Files the guest can plant or craft: forged journals, crafted and corrupt
//! `outbound.db`, FIFOs and symlinks in place of mailbox files.

use std::time::{Duration, Instant};

use airlock_core::Timestamp;
use airlock_sqlite_fs::{Error, PlainContent};
use rusqlite::Connection;

use crate::mailbox_common::{Fixture, bulky, hot_journal_of, integrity, msg, temp_dir};

fn contents(db: &std::path::Path) -> Vec<String> {
    // Read-write on purpose: an ordinary open replays a hot journal.
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT content FROM messages_in ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn forged_inbound_journal_is_quarantined_not_replayed() {
    let fx = Fixture::new();
    for i in 0..200 {
        fx.host
            .write_message(&msg(&format!("m{i}"), &bulky(i)), &PlainContent)
            .unwrap();
    }
    let original = contents(&fx.host.paths().inbound_db());

    // Another database: a copy with different rows, whose hot journal holds those rows.
    let scratch = temp_dir();
    let other = scratch.path().join("inbound.db");
    std::fs::copy(fx.host.paths().inbound_db(), &other).unwrap();
    Connection::open(&other)
        .unwrap()
        .execute_batch(
            "UPDATE messages_in SET content = 'FORGED ' || seq; UPDATE messages_in SET tries = 1;",
        )
        .unwrap();
    let forged = hot_journal_of(
        &other,
        "UPDATE messages_in SET content = 'x' || content; DELETE FROM messages_in;",
    );

    // Control: plain SQLite replays the forged journal and replaces the rows.
    let control_dir = temp_dir();
    let control = control_dir.path().join("inbound.db");
    std::fs::copy(fx.host.paths().inbound_db(), &control).unwrap();
    std::fs::copy(&forged, control.with_extension("db-journal")).unwrap();
    assert!(
        contents(&control).iter().any(|c| c.starts_with("FORGED")),
        "the forgery should work on plain SQLite"
    );

    std::fs::copy(&forged, fx.host.paths().inbound_journal()).unwrap();
    let w = fx
        .host
        .write_message(&msg("after", "{}"), &PlainContent)
        .unwrap();
    let moved = w
        .quarantined_journal
        .clone()
        .expect("the forged journal must be reported");
    assert!(
        moved.starts_with(fx.host.host_state().quarantine()),
        "{}",
        moved.display()
    );
    assert_eq!(
        std::fs::read(&moved).unwrap(),
        std::fs::read(&forged).unwrap()
    );
    assert!(!fx.host.paths().inbound_journal().exists());
    let mut now = contents(&fx.host.paths().inbound_db());
    assert_eq!(now.pop().as_deref(), Some("{}"));
    assert_eq!(now, original, "original rows intact");
    assert_eq!(w.seq, 402);
    assert_eq!(integrity(&fx.host.paths().inbound_db()), "ok");
    assert_eq!(fx.host.quarantined_journals().unwrap(), [moved]);

    // A symlink planted as the journal is moved aside too, never followed.
    let target = scratch.path().join("secret");
    std::fs::write(&target, "secret").unwrap();
    std::os::unix::fs::symlink(&target, fx.host.paths().inbound_journal()).unwrap();
    let w = fx
        .host
        .write_message(&msg("after-2", "{}"), &PlainContent)
        .unwrap();
    assert!(w.quarantined_journal.is_some());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "secret");
    fx.assert_no_wal();
}

/// A symlink in place of `inbound.db` is never followed: it is moved
/// aside (a tamper event) and the host's own copy is linked back.
#[test]
fn symlinked_inbound_db_is_moved_aside_and_relinked() {
    let fx = Fixture::new();
    fx.host
        .write_message(&msg("m0", "{}"), &PlainContent)
        .unwrap();
    let scratch = temp_dir();
    let elsewhere = scratch.path().join("elsewhere.db");
    std::fs::rename(fx.host.paths().inbound_db(), &elsewhere).unwrap();
    let before = std::fs::read(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, fx.host.paths().inbound_db()).unwrap();
    fx.host
        .write_message(&msg("m", "{}"), &PlainContent)
        .unwrap();
    assert_eq!(
        std::fs::read(&elsewhere).unwrap(),
        before,
        "the symlink was followed"
    );
    let meta = std::fs::symlink_metadata(fx.host.paths().inbound_db()).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(contents(&fx.host.paths().inbound_db()), ["{}", "{}"]);
    let events = fx.host.tamper_events().unwrap();
    assert!(
        events.iter().any(|e| e.reason.contains("symbolic link")),
        "{events:?}"
    );
    fx.assert_no_wal();
}

/// Runs every host read of `outbound.db` and checks each ends (Ok or a typed error) in time.
fn host_reads_end_in_time(fx: &Fixture) -> Vec<Result<(), String>> {
    let host = &fx.host;
    let reads: Vec<Box<dyn Fn() -> Result<(), Error>>> = vec![
        Box::new(|| host.due_outbound(Timestamp::now()).map(drop)),
        Box::new(|| host.list_outbound(10).map(drop)),
        Box::new(|| host.processing_acks().map(drop)),
        Box::new(|| host.container_state().map(drop)),
        Box::new(|| host.outbound_count().map(drop)),
    ];
    reads
        .iter()
        .map(|read| {
            let start = Instant::now();
            let res = read();
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "a read took {:?}",
                start.elapsed()
            );
            res.map_err(|e| {
                assert!(
                    matches!(
                        e,
                        Error::UntrustedFileRejected { .. }
                            | Error::Sqlite { .. }
                            | Error::Persistent { .. }
                    ),
                    "unexpected error kind: {e:?}"
                );
                e.to_string()
            })
        })
        .collect()
}

#[test]
fn recursive_view_in_outbound_fails_fast() {
    let fx = Fixture::new();
    let path = fx.host.paths().outbound_db();
    std::fs::remove_file(&path).unwrap();
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE VIEW messages_out AS
               WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)
               SELECT 'id' || x AS id, 2 * x + 1 AS seq, NULL AS in_reply_to, 't' AS timestamp,
                      NULL AS deliver_after, NULL AS recurrence, 'chat' AS kind, NULL AS platform_id,
                      NULL AS channel_type, NULL AS thread_id, '{}' AS content FROM c;
             CREATE VIEW processing_ack AS
               WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)
               SELECT 'id' || x AS message_id, 'completed' AS status, 't' AS status_changed FROM c;",
        )
        .unwrap();
    let start = Instant::now();
    let err = fx.host.due_outbound(Timestamp::now()).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert!(matches!(err, Error::UntrustedFileRejected { .. }), "{err}");
    assert!(err.to_string().contains("time budget"), "{err}");
    let err = fx.host.sync_acks().unwrap_err();
    assert!(matches!(err, Error::UntrustedFileRejected { .. }), "{err}");
    let results = host_reads_end_in_time(&fx);
    assert!(results[0].is_err() && results[1].is_err() && results[2].is_err());
    fx.assert_no_wal();
}

#[test]
fn huge_page_count_in_outbound_header_never_hangs() {
    let fx = Fixture::new();
    let guest = airlock_sqlite_fs::GuestMailbox::open(fx.session_dir()).unwrap();
    guest
        .write_message_out(&crate::mailbox_common::reply("r", "{}"))
        .unwrap();
    let path = fx.host.paths().outbound_db();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[28..32].copy_from_slice(&u32::MAX.to_be_bytes());
    std::fs::write(&path, &bytes).unwrap();
    // The header claims 2^32-1 pages; SQLite trusts it (the counters agree)
    // and finds the file malformed: every read ends in time with a typed error.
    let results = host_reads_end_in_time(&fx);
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().is_err_and(|e| e.contains("untrusted file"))),
        "{results:?}"
    );
    fx.assert_no_wal();
}

#[test]
fn corrupted_outbound_never_hangs_or_panics() {
    let fx = Fixture::new();
    let guest = airlock_sqlite_fs::GuestMailbox::open(fx.session_dir()).unwrap();
    for i in 0..30 {
        guest
            .write_message_out(&crate::mailbox_common::reply(&format!("r{i}"), &bulky(i)))
            .unwrap();
    }
    let path = fx.host.paths().outbound_db();
    let pristine = std::fs::read(&path).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut failures = 0;
    for round in 0..40 {
        let mut bytes = pristine.clone();
        for _ in 0..(1 + round % 8) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = 100 + (seed as usize) % (bytes.len() - 100);
            bytes[at] ^= (seed >> 32) as u8 | 1;
        }
        std::fs::write(&path, &bytes).unwrap();
        failures += host_reads_end_in_time(&fx)
            .iter()
            .filter(|r| r.is_err())
            .count();
    }
    // Truncation and garbage headers too.
    std::fs::write(&path, &pristine[..pristine.len() / 2]).unwrap();
    host_reads_end_in_time(&fx);
    std::fs::write(&path, b"SQLite format 3\0garbage garbage garbage").unwrap();
    let results = host_reads_end_in_time(&fx);
    assert!(results.iter().all(Result::is_err), "{results:?}");
    eprintln!("{failures} typed failures over 40 corrupted files");
    assert!(
        failures > 0,
        "random corruption never detected: the corruption did not happen"
    );
    fx.assert_no_wal();
}

#[test]
fn fifo_or_symlink_as_outbound_db_is_refused_without_blocking() {
    let fx = Fixture::new();
    let path = fx.host.paths().outbound_db();
    std::fs::remove_file(&path).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let err = fx.host.due_outbound(Timestamp::now()).unwrap_err();
    assert!(
        matches!(err, Error::UnsafeFile { .. }) && err.to_string().contains("FIFO"),
        "{err}"
    );
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(fx.host.paths().inbound_db(), &path).unwrap();
    let err = fx.host.outbound_count().unwrap_err();
    assert!(matches!(err, Error::UnsafeFile { .. }), "{err}");
    // A FIFO planted as the journal would hang SQLite's hot-journal check.
    std::fs::remove_file(&path).unwrap();
    airlock_sqlite_fs::GuestMailbox::open(fx.session_dir()).unwrap();
    let journal = fx.host.paths().outbound_journal();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &journal,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let err = fx.host.list_outbound(5).unwrap_err();
    assert!(matches!(err, Error::UnsafeFile { .. }), "{err}");
    fx.assert_no_wal();
}

#[test]
fn inspect_reports_journal_modes_checks_and_quarantine() {
    let fx = Fixture::new();
    fx.host
        .write_message(&msg("m", "{}"), &PlainContent)
        .unwrap();
    let report = fx.host.inspect(Timestamp::now()).unwrap();
    assert_eq!(
        report.inbound_header.unwrap().journal,
        airlock_sqlite_fs::JournalKind::Rollback
    );
    assert_eq!(
        report.outbound_header.unwrap().journal,
        airlock_sqlite_fs::JournalKind::Rollback
    );
    assert_eq!(
        (
            report.inbound_check.as_str(),
            report.outbound_check.as_str()
        ),
        ("ok", "ok")
    );
    assert!(!report.outbound_journal_present && report.quarantined.is_empty());
    assert_eq!(report.heartbeat_age, None);
    std::fs::write(fx.host.paths().inbound_journal(), b"not a journal").unwrap();
    std::fs::write(
        fx.host.paths().outbound_db(),
        b"SQLite format 3\0 but garbage",
    )
    .unwrap();
    let report = fx.host.inspect(Timestamp::now()).unwrap();
    assert_eq!(report.quarantined.len(), 1);
    assert_ne!(report.outbound_check, "ok");
    fx.assert_no_wal();
}
