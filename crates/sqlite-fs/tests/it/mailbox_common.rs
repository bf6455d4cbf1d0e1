//! Helpers shared by the mailbox integration tests: temp session folders,
//! the header journal-mode check, and child-process roles.

use std::path::{Path, PathBuf};

use airlock_core::mailbox::{NewInboundMessage, NewOutboundMessage};
use airlock_core::{AgentGroupId, MessageId, SessionId, SessionRef};
use airlock_sqlite_fs::{HostMailbox, MailboxRoots};

/// Asks a registry (in memory) for a session's guest-stopped proof after
/// setting its container to `status`: the only way a caller gets one.
pub fn registry_proof(status: airlock_core::ContainerStatus) -> Option<airlock_core::GuestStopped> {
    use airlock_core::{
        MemorySessionStore, ResolveRequest, SessionMode, SessionStore, SessionStoreExt, Timestamp,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let registry = MemorySessionStore::new();
        let request = ResolveRequest::new(
            AgentGroupId::new("ag-1").unwrap(),
            None,
            None,
            SessionMode::AgentShared,
        );
        let session = registry.resolve_session(request).await.unwrap().session;
        registry
            .set_container_status(&session.id, status, Timestamp::now())
            .await
            .unwrap();
        registry.guest_stopped(&session.id).await.unwrap()
    })
}

/// A data dir with one created session.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub roots: MailboxRoots,
    pub session: SessionRef,
    pub host: HostMailbox,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = temp_dir();
        let roots = MailboxRoots::in_data_dir(dir.path());
        let session = SessionRef::new(
            AgentGroupId::new("ag-1").unwrap(),
            SessionId::new("sess-1").unwrap(),
        );
        let host = roots.create_session(&session).unwrap();
        Fixture {
            dir,
            roots,
            session,
            host,
        }
    }

    /// Writes message `id` (content `{}`) that comes due `after_ms` after `now`.
    pub fn write_scheduled(&self, id: &str, now: airlock_core::Timestamp, after_ms: i64) {
        let mut scheduled = msg(id, "{}");
        scheduled.process_after = Some(now.plus_millis(after_ms));
        self.host
            .write_message(&scheduled, &airlock_sqlite_fs::PlainContent)
            .unwrap();
    }

    pub fn session_dir(&self) -> PathBuf {
        self.host.paths().dir().to_path_buf()
    }

    /// Asserts no database file under the data dir was left in WAL mode.
    pub fn assert_no_wal(&self) {
        assert_no_wal(self.dir.path());
    }
}

/// A fresh temp dir, on tmpfs when the machine has one: the properties
/// tested (ordering, serialisation, crash consistency under SIGKILL) do not
/// depend on fsync, and a shared CI disk makes each fsync cost milliseconds.
pub fn temp_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if std::env::var_os("AIRLOCK_TEST_ON_DISK").is_none()
        && shm.is_dir()
        && let Ok(dir) = tempfile::Builder::new()
            .prefix("airlock-mailbox-")
            .tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}

/// Reads bytes 18–19 straight from every `*.db` under `root`: 1/1 = rollback journal.
/// `host-state/` is skipped: it is never mounted, and its `host.db` is WAL by design.
pub fn assert_no_wal(root: &Path) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let ft = entry.file_type().unwrap();
            if ft.is_dir() && entry.file_name() == airlock_sqlite_fs::layout::HOST_STATE_DIR {
                continue;
            }
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() && path.extension().is_some_and(|e| e == "db") {
                let bytes = std::fs::read(&path).unwrap();
                if bytes.len() >= 100 {
                    assert_eq!(
                        (bytes[18], bytes[19]),
                        (1, 1),
                        "{} is not in rollback-journal mode",
                        path.display()
                    );
                }
                assert!(
                    !path.with_extension("db-wal").exists(),
                    "{} has a -wal file",
                    path.display()
                );
            }
        }
    }
}

pub fn msg(id: &str, content: &str) -> NewInboundMessage {
    NewInboundMessage::new(MessageId::new(id).unwrap(), "chat", content)
}

pub fn reply(id: &str, content: &str) -> NewOutboundMessage {
    NewOutboundMessage::new(MessageId::new(id).unwrap(), "chat", content)
}

/// Env var naming the role a re-executed test binary plays.
pub const ROLE_ENV: &str = "AIRLOCK_MAILBOX_TEST_ROLE";

/// The child role, if this process was started as one.
pub fn child_role() -> Option<String> {
    std::env::var(ROLE_ENV).ok()
}

/// Re-runs this test binary's `test_name` (its full libtest name, from
/// [`crate::libtest_name`]) as a child with `role` and extra env.
pub fn child_command(
    test_name: &str,
    role: &str,
    envs: &[(&str, String)],
) -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

/// Env var carrying the session folder to a child.
pub const DIR_ENV: &str = "AIRLOCK_MAILBOX_TEST_DIR";
/// Env var carrying the data dir to a child.
pub const DATA_ENV: &str = "AIRLOCK_MAILBOX_TEST_DATA";

/// Reads a usize from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The fixture's session ref (all fixtures use the same ids).
pub fn fixture_session() -> SessionRef {
    SessionRef::new(
        AgentGroupId::new("ag-1").unwrap(),
        SessionId::new("sess-1").unwrap(),
    )
}

/// Child role: opens `db` with plain SQLite, starts a write transaction big
/// enough to spill modified pages into the database file (so the journal is
/// hot), prints `READY` and waits to be killed.
pub fn stuck_transaction(db: &Path, sql: &str) -> ! {
    use std::io::Write;
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.pragma_update(None, "cache_size", 10).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    conn.execute_batch(sql).unwrap();
    let journal = db.with_extension("db-journal");
    assert!(journal.exists(), "no journal at {}", journal.display());
    println!("READY");
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

/// Waits for a line equal to `marker` on the child's stdout.
pub fn wait_for_line(reader: &mut impl std::io::BufRead, marker: &str) {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "child ended before printing {marker}"
        );
        // libtest prints `test <name> ... ` before a test's own output.
        if line.trim_end().ends_with(marker) {
            return;
        }
    }
}

/// Runs `test_name` (a full libtest name) as a child in `role` on `fx`'s
/// session folder, waits until it prints `READY` (it is stuck
/// mid-transaction), and SIGKILLs it.
pub fn kill_child_when_ready(fx: &Fixture, test_name: &str, role: &str) {
    let mut child = child_command(
        test_name,
        role,
        &[(DIR_ENV, fx.session_dir().display().to_string())],
    )
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    wait_for_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        "READY",
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `PRAGMA integrity_check` on a read-only connection.
pub fn integrity(db: &Path) -> String {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// Rows of 1 KiB content, so a later update touches many pages.
pub fn bulky(i: usize) -> String {
    format!("{{\"text\":\"{}-{}\"}}", i, "x".repeat(1024))
}

/// Produces a hot journal for `db` in-process: runs `sql` in a transaction
/// with a tiny cache so pages spill, copies the journal aside while it is
/// hot, then rolls back. Returns the copy's path (beside `db`, `.hot`).
pub fn hot_journal_of(db: &Path, sql: &str) -> PathBuf {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.pragma_update(None, "cache_size", 10).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    conn.execute_batch(sql).unwrap();
    let journal = db.with_extension("db-journal");
    let copy = db.with_extension("hot");
    std::fs::copy(&journal, &copy).unwrap();
    conn.execute_batch("ROLLBACK").unwrap();
    // SQLite writes the journal magic only when it syncs before spilling
    // pages; a zero header is not hot.
    let header = std::fs::read(&copy).unwrap();
    assert!(
        header.len() > 8 && header[..8] != [0u8; 8],
        "journal did not become hot: use more rows"
    );
    copy
}

/// The change counter of the session folder's `inbound.db` (header bytes 24–27).
pub fn inbound_counter(fx: &Fixture) -> u32 {
    airlock_sqlite_fs::read_header(&fx.host.paths().inbound_db())
        .unwrap()
        .unwrap()
        .change_counter
}
