//! Reading a database the guest wrote (`outbound.db`) so that SQLite never
//! opens, locks or maps anything the guest can reach by name.
//!
//! The file is opened through the session folder's handle (`O_NOFOLLOW |
//! O_NONBLOCK`, `fstat`: a regular file with a single name), its header is
//! read from that handle (a WAL-mode file is refused), and exactly that
//! inode is hard-linked into host-only state (`linkat` of
//! `/proc/self/fd/N`). SQLite opens only that host-only name, with
//! `immutable=1`: no locks, no journal, `-wal` or `-shm` look-ups, read-only,
//! with the untrusted-file limits. Immutable means SQLite would not notice a
//! concurrent guest commit, so the change counter (header bytes 24–27) and
//! the absence of `outbound.db-journal` (`fstatat`, never opened) are checked
//! before and after each read; a commit in between makes the read a
//! transient `SQLITE_READONLY_ROLLBACK`, retried like the one SQLite reports
//! itself, and [`Error::GuestMayBeRunning`] when it persists.
//!
//! Where the link cannot be made (host state on another filesystem, a
//! read-only data dir) the verified bytes are copied into a private
//! temporary file instead, under [`MAX_COPY_BYTES`].

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, OpenFlags};
use rustix::fd::AsRawFd;
use rustix::fs::{AtFlags, FlockOperation};

use super::header::{JournalKind, read_header_of};
use super::open::{UNTRUSTED_TIME_BUDGET, apply_untrusted_limits};
use crate::attachments::{AccessError, ConfinedDir, RegularFile};
use crate::error::{Error, Result};

/// Largest guest database read through the copy fallback.
pub const MAX_COPY_BYTES: u64 = 256 * 1024 * 1024;

const SQLITE_READONLY_ROLLBACK: i32 = 776;
const SNAPSHOT_LOCK: &str = "snapshot.lock";

/// Where a guest database lives and where the host may put its snapshot.
#[derive(Debug, Clone, Copy)]
pub struct GuestDb<'a> {
    /// The session folder (trusted path; confinement starts below it).
    pub folder: &'a Path,
    /// The file's name in it, e.g. `outbound.db`.
    pub name: &'a str,
    /// A host-only folder for the snapshot link (created if missing).
    pub scratch: &'a Path,
    /// Refuse the file when it has other names (hard links). Set for files
    /// only the guest writes; the host may link its own files elsewhere.
    pub single_name: bool,
}

impl GuestDb<'_> {
    fn path(&self) -> PathBuf {
        self.folder.join(self.name)
    }

    fn journal_name(&self) -> String {
        format!("{}-journal", self.name)
    }

    /// Opens the file through the folder's handle and verifies it; `None` when absent.
    pub fn open_verified(&self, dir: &ConfinedDir) -> Result<Option<RegularFile>> {
        let opened = dir.open_regular(self.name);
        let checked = if self.single_name {
            opened.and_then(RegularFile::single_link)
        } else {
            opened
        };
        match checked {
            Ok(file) => Ok(Some(file)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(access_error(e)),
        }
    }

    /// `outbound.db-journal` as seen by `fstatat` (never opened): `None`
    /// when absent or empty (SQLite never treats an empty journal as hot).
    pub fn journal(&self, dir: &ConfinedDir) -> Result<Option<u64>> {
        let name = self.journal_name();
        match dir.entry(&name) {
            Ok(None) => Ok(None),
            Ok(Some(entry)) if entry.is_regular() => Ok((entry.len > 0).then_some(entry.len)),
            Ok(Some(entry)) => Err(Error::UnsafeFile {
                path: dir.label_of(&name),
                what: describe(entry.kind),
            }),
            Err(e) => Err(Error::io(dir.label_of(&name), e)),
        }
    }

    /// Runs `f` on a read-only, untrusted, immutable connection to a
    /// snapshot of the file; `Ok(None)` when the file does not exist. One
    /// attempt: a guest commit during the read is a transient error for
    /// [`super::retry`].
    pub fn read<T>(
        &self,
        context: &str,
        f: &dyn Fn(&Connection) -> rusqlite::Result<T>,
    ) -> Result<Option<T>> {
        // No folder, no file: the caller reports what is missing.
        let dir = match ConfinedDir::open_trusted(self.folder) {
            Ok(dir) => dir,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(self.folder, e)),
        };
        let snapshot_name = format!("{}.snapshot", self.name);
        // A host killed mid-read (or whose unlink failed) left its link: it
        // would count as the guest file's second name and refuse every read.
        // Best effort: a link that stays is refused below, with its reason.
        if let Err(e) = Snapshot::clear_stale(self.scratch, &snapshot_name) {
            tracing::debug!(error = %e, "could not remove a stale snapshot link");
        }
        let Some(file) = self.open_verified(&dir)? else {
            return Ok(None);
        };
        let before = self.state(&dir, &file)?;
        let snapshot = Snapshot::take(self.scratch, &snapshot_name, &file)?;
        let result = snapshot.with_connection(&self.path(), context, f);
        drop(snapshot);
        // A commit during the read explains any failure of the read itself
        // (a torn page looks corrupt), so the re-check comes first.
        if self.state(&dir, &file)? != before {
            return Err(guest_committed(&self.path(), context));
        }
        result.map(Some)
    }

    /// Rolls back the file's hot journal through verified handles: both
    /// files must be regular with a single name, and both inodes are
    /// hard-linked into host state, where SQLite opens them read-write by
    /// host-only names. Returns whether a journal was there. The caller
    /// proves the guest is stopped.
    pub fn recover(&self) -> Result<bool> {
        let dir = ConfinedDir::open_trusted(self.folder).map_err(|e| Error::io(self.folder, e))?;
        let journal_name = self.journal_name();
        let journal = match dir
            .open_regular(&journal_name)
            .and_then(RegularFile::single_link)
        {
            Ok(journal) => journal,
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(access_error(e)),
        };
        let Some(file) = self.open_verified(&dir)? else {
            // A journal without its database cannot be replayed into anything.
            remove_if_same(&dir, &journal_name, &journal)?;
            return Ok(true);
        };
        refuse_super_journal(&journal)?;
        let links = RecoveryLinks::make(self.scratch, &file, &journal)
            .map_err(|e| Error::io(self.scratch, e))?;
        let path = self.path();
        let replayed = links
            .replay()
            .map_err(|e| Error::sqlite(&path, "recovering outbound.db", e));
        drop(links);
        replayed?;
        remove_if_same(&dir, &journal_name, &journal)?;
        Ok(true)
    }

    /// The change counter, refusing WAL mode and failing while a journal is present.
    fn state(&self, dir: &ConfinedDir, file: &RegularFile) -> Result<Option<u32>> {
        let path = self.path();
        let header = read_header_of(file.as_file()).map_err(|e| Error::io(&path, e))?;
        if let Some(h) = header
            && h.journal == JournalKind::Wal
        {
            return Err(Error::WrongJournalMode {
                path,
                mode: "wal".into(),
                why: "the guest must keep outbound.db in DELETE mode; the host reads WAL files stale across mounts",
            });
        }
        if self.journal(dir)?.is_some() {
            return Err(guest_committed(&path, "a rollback journal is present"));
        }
        Ok(header.map(|h| h.change_counter))
    }
}

/// Unlinks `name` if it still names `file` (the guest may have replaced it).
fn remove_if_same(dir: &ConfinedDir, name: &str, file: &RegularFile) -> Result<()> {
    match dir.entry(name) {
        Ok(Some(entry)) if entry.identity == file.identity() => dir
            .remove_file(name)
            .map_err(|e| Error::io(dir.label_of(name), e)),
        Ok(_) => Ok(()),
        Err(e) => Err(Error::io(dir.label_of(name), e)),
    }
}

/// The magic a rollback journal ends with when it names a super-journal
/// (a multi-database commit, which airlock never makes): replaying it would
/// make SQLite open whatever path the guest wrote there.
const JOURNAL_MAGIC: [u8; 8] = [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];

fn refuse_super_journal(journal: &RegularFile) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let Some(offset) = journal.len().checked_sub(8) else {
        return Ok(());
    };
    let mut tail = [0u8; 8];
    journal
        .as_file()
        .read_exact_at(&mut tail, offset)
        .map_err(|e| Error::io(journal.path(), e))?;
    if tail == JOURNAL_MAGIC {
        return Err(Error::UnsafeFile {
            path: journal.path().to_path_buf(),
            what: "the journal names a super-journal, which only a multi-database commit writes"
                .into(),
        });
    }
    Ok(())
}

/// `outbound.recover` and `outbound.recover-journal` in host state: the
/// verified inodes under names only the host can reach.
struct RecoveryLinks {
    dir: ConfinedDir,
    db: PathBuf,
    _lock: File,
}

const RECOVER: &str = "outbound.recover";
const RECOVER_JOURNAL: &str = "outbound.recover-journal";

impl RecoveryLinks {
    fn make(scratch: &Path, file: &RegularFile, journal: &RegularFile) -> io::Result<Self> {
        let (lock, dir) = lock_scratch(scratch)?;
        for name in [RECOVER, RECOVER_JOURNAL] {
            remove_stale(&dir, name)?;
        }
        link_fd(file, &dir, RECOVER)?;
        link_fd(journal, &dir, RECOVER_JOURNAL)?;
        Ok(Self {
            dir,
            db: scratch.join(RECOVER),
            _lock: lock,
        })
    }

    /// An ordinary read-write open rolls the hot journal back and deletes it.
    fn replay(&self) -> rusqlite::Result<()> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.db, flags)?;
        conn.busy_timeout(std::time::Duration::from_secs(2))?;
        conn.pragma_update(None, "mmap_size", 0)?;
        conn.pragma_update(None, "trusted_schema", "OFF")?;
        conn.pragma_update(None, "cell_size_check", "ON")?;
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })?;
        conn.close().map_err(|(_, e)| e)
    }
}

impl Drop for RecoveryLinks {
    fn drop(&mut self) {
        for name in [RECOVER, RECOVER_JOURNAL] {
            let _ = self.dir.remove_file(name);
        }
    }
}

/// Creates host state's folder and takes its snapshot lock.
fn lock_scratch(scratch: &Path) -> io::Result<(File, ConfinedDir)> {
    std::fs::create_dir_all(scratch)?;
    let lock = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(scratch.join(SNAPSHOT_LOCK))?;
    rustix::fs::flock(&lock, FlockOperation::LockExclusive)?;
    Ok((lock, ConfinedDir::open_trusted(scratch)?))
}

/// A host killed mid-read leaves its link; it must not count as the
/// guest's second name, nor be reused for another inode.
fn remove_stale(dir: &ConfinedDir, name: &str) -> io::Result<()> {
    match dir.remove_file(name) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Links exactly the inode behind `file` (not whatever its path names now).
fn link_fd(file: &RegularFile, dir: &ConfinedDir, name: &str) -> io::Result<()> {
    let proc_path = format!("/proc/self/fd/{}", file.as_file().as_raw_fd());
    rustix::fs::linkat(
        rustix::fs::CWD,
        proc_path.as_str(),
        dir,
        name,
        AtFlags::SYMLINK_FOLLOW,
    )
    .map_err(Into::into)
}

/// The error SQLite itself gives a read-only reader that meets a hot
/// journal, so retries and their counts treat both alike.
fn guest_committed(path: &Path, context: &str) -> Error {
    Error::sqlite(
        path,
        context,
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(SQLITE_READONLY_ROLLBACK),
            Some("the guest is writing the file".into()),
        ),
    )
}

/// Words for a file type in [`Error::UnsafeFile`].
pub fn describe(kind: &str) -> String {
    match kind {
        "symlink" => "it is a symbolic link".into(),
        "fifo" => "it is a FIFO".into(),
        "directory" => "it is a folder".into(),
        other => format!("it is a {other}"),
    }
}

/// Maps a refused open into the crate's error.
pub fn access_error(err: AccessError) -> Error {
    match err {
        AccessError::NotRegular { path, kind } => Error::UnsafeFile {
            path,
            what: describe(kind),
        },
        AccessError::HardLinked { path, links } => Error::UnsafeFile {
            path,
            what: format!("it has {links} hard links (only a file with a single name is read)"),
        },
        AccessError::TooLarge { path, size, limit } => Error::UnsafeFile {
            path,
            what: format!("{size} bytes is over the limit of {limit} bytes"),
        },
        AccessError::Io { path, source } => Error::io(path, source),
    }
}

/// A host-only name for one verified inode: a hard link under a lock (so
/// concurrent host readers never see each other's link count), or a private
/// copy; removed on drop.
struct Snapshot {
    path: PathBuf,
    _lock: Option<File>,
}

impl Snapshot {
    fn take(scratch: &Path, name: &str, file: &RegularFile) -> Result<Self> {
        match Self::link(scratch, name, file) {
            Ok(snapshot) => Ok(snapshot),
            Err(e) if link_impossible(&e) => {
                tracing::debug!(error = %e, "cannot link a guest file into host state; reading a copy");
                Self::copy(scratch, file)
            }
            Err(e) => Err(Error::io(scratch, e)),
        }
    }

    /// Removes a link `name` a previous reader left, under the lock (a
    /// reader holding the lock still needs its link).
    fn clear_stale(scratch: &Path, name: &str) -> io::Result<()> {
        let (_lock, dir) = lock_scratch(scratch)?;
        remove_stale(&dir, name)
    }

    fn link(scratch: &Path, name: &str, file: &RegularFile) -> io::Result<Self> {
        let (lock, dir) = lock_scratch(scratch)?;
        remove_stale(&dir, name)?;
        link_fd(file, &dir, name)?;
        Ok(Self {
            path: scratch.join(name),
            _lock: Some(lock),
        })
    }

    fn copy(scratch: &Path, file: &RegularFile) -> Result<Self> {
        if file.len() > MAX_COPY_BYTES {
            return Err(Error::UnsafeFile {
                path: file.path().to_path_buf(),
                what: format!(
                    "{} bytes is over the {MAX_COPY_BYTES}-byte limit for reading a copy \
                     (host state {} cannot hold a link to it)",
                    file.len(),
                    scratch.display()
                ),
            });
        }
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "airlock-outbound-{}-{}.snapshot",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let candidates = [scratch.to_path_buf(), std::env::temp_dir()];
        let mut last = None;
        for folder in candidates {
            let path = folder.join(&name);
            match write_copy(&path, file) {
                Ok(()) => return Ok(Self { path, _lock: None }),
                Err(e) => {
                    let _ = std::fs::remove_file(&path);
                    last = Some(Error::io(&path, e));
                }
            }
        }
        Err(last.expect("two candidates"))
    }

    fn with_connection<T>(
        &self,
        label: &Path,
        context: &str,
        f: &dyn Fn(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let conn = open_immutable(&self.path).map_err(|e| Error::sqlite(label, context, e))?;
        f(&conn).map_err(|e| Error::sqlite(label, context, e))
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Errors after which a copy can still be read: no link across
/// filesystems, a read-only or foreign-owned host state, no `/proc`.
fn link_impossible(err: &io::Error) -> bool {
    use rustix::io::Errno;
    let code = err.raw_os_error();
    [
        Errno::XDEV,
        Errno::ROFS,
        Errno::ACCESS,
        Errno::PERM,
        Errno::NOENT,
        Errno::MLINK,
    ]
    .iter()
    .any(|e| code == Some(e.raw_os_error()))
}

fn write_copy(path: &Path, file: &RegularFile) -> io::Result<()> {
    let mut out = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)?;
    let mut source = file.as_file();
    let copied = io::copy(&mut (&mut source).take(MAX_COPY_BYTES), &mut out)?;
    if copied < file.len() {
        return Err(io::Error::other("the file shrank while it was copied"));
    }
    out.flush()
}

/// `file:<path>?mode=ro&immutable=1` with the untrusted-file limits.
fn open_immutable(path: &Path) -> rusqlite::Result<Connection> {
    let uri = format!("file:{}?mode=ro&immutable=1", uri_path(path));
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    // No SQLITE_OPEN_NOFOLLOW: the name is host-only, and its folder may
    // sit below a symlink the user chose.
    let conn = Connection::open_with_flags(uri, flags)?;
    conn.pragma_update(None, "mmap_size", 0)?;
    apply_untrusted_limits(&conn, UNTRUSTED_TIME_BUDGET)?;
    Ok(conn)
}

/// Percent-encodes what a SQLite URI path cannot hold literally.
pub fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_paths_escape_query_and_fragment_characters() {
        assert_eq!(uri_path(Path::new("/a b/c?d#e%")), "/a%20b/c%3Fd%23e%25");
    }
}
