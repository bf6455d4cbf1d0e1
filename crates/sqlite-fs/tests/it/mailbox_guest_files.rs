//! The host's reads of guest-written files never reach a name the guest can
//! swap: planted `-wal`/`-shm` files, FIFOs raced in place of `outbound.db`
//! or its journal, and hard links (issue 10, cases 3, 4 and 8).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use airlock_core::{ContainerStatus, Timestamp};
use airlock_sqlite_fs::doctor::check_session;
use airlock_sqlite_fs::{Error, GuestMailbox};
use rusqlite::Connection;

use crate::mailbox_common::{Fixture, bulky, registry_proof, reply, temp_dir};

/// Runs `f` on a thread; a call that blocks (a FIFO opened for reading
/// waits for a writer forever) fails the test instead of hanging the suite.
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("the host blocked for more than {secs} s"))
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}

fn guest_with_replies(fx: &Fixture, n: usize) -> GuestMailbox {
    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    for i in 0..n {
        guest
            .write_message_out(&reply(&format!("r-{i}"), &bulky(i)))
            .unwrap();
    }
    guest
}

#[test]
fn planted_wal_and_shm_beside_a_rollback_outbound_db_are_never_read() {
    let fx = Fixture::new();
    guest_with_replies(&fx, 2);
    let outbound = fx.host.paths().outbound_db();

    // A WAL-mode copy of the file holding one more row, only in its -wal.
    let scratch = temp_dir();
    let copy = scratch.path().join("outbound.db");
    std::fs::copy(&outbound, &copy).unwrap();
    let conn = Connection::open(&copy).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    conn.execute(
        "INSERT INTO messages_out (id, seq, timestamp, kind, content) VALUES ('planted', 99, '2020-01-01 00:00:00', 'chat', 'from the wal')",
        [],
    )
    .unwrap();
    let wal = std::fs::read(scratch.path().join("outbound.db-wal")).unwrap();
    assert!(!wal.is_empty());
    drop(conn);
    let side = |suffix: &str| fx.session_dir().join(format!("outbound.db{suffix}"));
    std::fs::write(side("-wal"), &wal).unwrap();

    let due = fx.host.due_outbound(Timestamp::now()).unwrap();
    let ids: Vec<&str> = due.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["r-0", "r-1"], "a row only in a planted -wal was read");
    assert_eq!(fx.host.outbound_count().unwrap(), 2);
    assert!(
        !side("-shm").exists(),
        "the host created (and would map) a -shm beside the guest's file"
    );
    assert_eq!(
        std::fs::read(side("-wal")).unwrap(),
        wal,
        "the -wal was touched"
    );
}

#[test]
fn outbound_db_swapped_with_a_fifo_never_hangs_the_host() {
    let fx = Fixture::new();
    guest_with_replies(&fx, 3);
    let dir = fx.session_dir();
    let regular = dir.join("outbound.regular");
    std::fs::copy(dir.join("outbound.db"), &regular).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (dir, stop) = (dir.clone(), stop.clone());
        std::thread::spawn(move || {
            let (fifo, file) = (dir.join("swap.fifo"), dir.join("swap.file"));
            while !stop.load(Ordering::Relaxed) {
                mkfifo(&fifo);
                let _ = std::fs::rename(&fifo, dir.join("outbound.db"));
                std::fs::copy(dir.join("outbound.regular"), &file).unwrap();
                let _ = std::fs::rename(&file, dir.join("outbound.db"));
            }
        })
    };
    let host = fx.host.clone();
    let (ok, refused) = within(120, move || {
        let (mut ok, mut refused) = (0, 0);
        for _ in 0..400 {
            match host.due_outbound(Timestamp::now()) {
                Ok(due) => {
                    assert_eq!(due.len(), 3);
                    ok += 1;
                }
                Err(Error::UnsafeFile { .. }) => refused += 1,
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        (ok, refused)
    });
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(
        ok > 0 && refused > 0,
        "the race never happened: {ok} ok, {refused} refused"
    );
}

#[test]
fn fifo_journals_never_hang_doctor() {
    let fx = Fixture::new();
    guest_with_replies(&fx, 1);
    mkfifo(&fx.host.paths().outbound_journal());
    mkfifo(&fx.host.paths().inbound_journal());
    let (paths, state) = (fx.host.paths().clone(), fx.host.host_state().clone());
    let findings = within(60, move || check_session(&paths, &state));
    let unreadable: Vec<_> = findings
        .iter()
        .filter(|f| f.check == "unreadable")
        .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    // inbound.db is read through the host's own link (its copy is not the
    // guest's to block); the FIFO beside it is still reported.
    assert_eq!(unreadable, ["outbound.db"], "{findings:#?}");
    assert!(
        findings
            .iter()
            .any(|f| f.check == "hot_journal" && f.path == fx.host.paths().inbound_journal()),
        "{findings:#?}"
    );
    assert!(findings.iter().all(|f| !f.detail.is_empty()));

    let host = fx.host.clone();
    let err = within(60, move || host.list_outbound(5)).unwrap_err();
    assert!(
        matches!(&err, Error::UnsafeFile { what, .. } if what.contains("FIFO")),
        "{err}"
    );
}

#[test]
fn hard_linked_outbound_db_is_refused() {
    let fx = Fixture::new();
    guest_with_replies(&fx, 1);
    let outside = temp_dir();
    std::fs::hard_link(
        fx.host.paths().outbound_db(),
        outside.path().join("elsewhere.db"),
    )
    .unwrap();
    let err = fx.host.due_outbound(Timestamp::now()).unwrap_err();
    assert!(
        matches!(&err, Error::UnsafeFile { what, .. } if what.contains("hard links")),
        "{err}"
    );
    std::fs::remove_file(outside.path().join("elsewhere.db")).unwrap();
    assert_eq!(fx.host.due_outbound(Timestamp::now()).unwrap().len(), 1);
}

#[test]
fn reads_leave_no_link_behind_and_never_change_the_guest_file() {
    let fx = Fixture::new();
    guest_with_replies(&fx, 2);
    let outbound = fx.host.paths().outbound_db();
    let before = std::fs::read(&outbound).unwrap();
    for _ in 0..3 {
        assert_eq!(fx.host.due_outbound(Timestamp::now()).unwrap().len(), 2);
    }
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&outbound).unwrap().nlink(), 1);
    assert_eq!(std::fs::read(&outbound).unwrap(), before);
    let names: Vec<String> = std::fs::read_dir(fx.session_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("outbound"))
        .collect();
    assert_eq!(names, ["outbound.db"]);
}

#[test]
fn recovery_refuses_a_hard_linked_or_fifo_journal() {
    let fx = Fixture::new();
    guest_with_replies(&fx, 1);
    let stopped = registry_proof(ContainerStatus::Stopped).unwrap();
    let journal = fx.host.paths().outbound_journal();
    mkfifo(&journal);
    let host = fx.host.clone();
    let err = within(60, move || host.recover_outbound(stopped)).unwrap_err();
    assert!(matches!(err, Error::UnsafeFile { .. }), "{err}");
    std::fs::remove_file(&journal).unwrap();

    let outside = temp_dir();
    std::fs::write(outside.path().join("j"), b"not a journal").unwrap();
    std::fs::hard_link(outside.path().join("j"), &journal).unwrap();
    let err = fx.host.recover_outbound(stopped).unwrap_err();
    assert!(matches!(err, Error::UnsafeFile { .. }), "{err}");
    assert_eq!(
        std::fs::read(outside.path().join("j")).unwrap(),
        b"not a journal"
    );
}

#[test]
fn doctor_reports_an_outbox_folder_no_message_names() {
    let fx = Fixture::new();
    guest_with_replies(&fx, 1);
    let outbox = fx.session_dir().join("outbox");
    std::fs::create_dir_all(outbox.join("r-0")).unwrap();
    std::fs::create_dir_all(outbox.join("out-killed")).unwrap();
    let findings = check_session(fx.host.paths(), fx.host.host_state());
    let orphans: Vec<_> = findings
        .iter()
        .filter(|f| f.check == "orphan_outbox")
        .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(orphans, ["out-killed"], "{findings:#?}");
}
