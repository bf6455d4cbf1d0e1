//! Empty database files built once per process by SQLite and copied for
//! each new session. Making a file with SQLite parses and runs its schema
//! every time (and the switch of a new `host.db` to WAL syncs it four
//! times); the bytes are the same for every session, so the second session
//! a process creates gets them with one write.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{CWD, Mode, OFlags, RenameFlags, renameat_with};

use crate::error::{Error, Result};

/// Scratch and temporary names of this process are told apart by this.
static NEXT_NAME: AtomicU64 = AtomicU64::new(0);

/// `dir/.<what>-<pid>-<n>`, unused by any other call of this process.
pub(crate) fn unique_name(dir: &Path, what: &str) -> PathBuf {
    let n = NEXT_NAME.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{what}-{}-{n}", std::process::id()))
}

/// Removes a database file and whatever SQLite may have left beside it.
pub(crate) fn remove_db_files(path: &Path) {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(name);
    }
}

/// An empty database file's bytes, made by `build` the first time they
/// are needed.
pub(crate) struct Template {
    name: &'static str,
    build: fn(&Path) -> rusqlite::Result<()>,
    bytes: OnceLock<Vec<u8>>,
}

impl Template {
    /// A template named `name` (for its scratch file), made by `build`,
    /// which creates the database at the path it is given and closes it.
    pub(crate) const fn new(name: &'static str, build: fn(&Path) -> rusqlite::Result<()>) -> Self {
        Self {
            name,
            build,
            bytes: OnceLock::new(),
        }
    }

    /// The bytes, built in `scratch` (a host-only folder) on first use;
    /// `None` when that build failed (the caller makes the file with SQLite,
    /// and the next call tries again).
    pub(crate) fn bytes(&self, scratch: &Path) -> Option<&[u8]> {
        if let Some(bytes) = self.bytes.get() {
            return Some(bytes);
        }
        let path = unique_name(scratch, &format!("template-{}", self.name));
        remove_db_files(&path);
        let built = (self.build)(&path)
            .map_err(|e| e.to_string())
            .and_then(|()| std::fs::read(&path).map_err(|e| e.to_string()));
        remove_db_files(&path);
        match built {
            Ok(bytes) => Some(self.bytes.get_or_init(|| bytes)),
            Err(e) => {
                tracing::debug!(template = self.name, error = %e, "could not build a database template");
                None
            }
        }
    }
}

/// Whether a file was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// `path` now holds the bytes.
    Made,
    /// Something already was at `path`; it was left alone.
    Exists,
}

/// Writes `bytes` to a new file at `path`: under a temporary name beside it
/// (`.<name>.tmp-<pid>-<n>`, made exclusively, never following a link),
/// synced when `sync`, then
/// renamed into place only if nothing is there.
pub(crate) fn write_new(path: &Path, bytes: &[u8], sync: bool) -> Result<Written> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = unique_name(dir, &format!("{name}.tmp"));
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let written = rustix::fs::open(&tmp, flags, Mode::from_raw_mode(0o644))
        .map_err(std::io::Error::from)
        .and_then(|fd| {
            let mut file = std::fs::File::from(fd);
            file.write_all(bytes)?;
            if sync { file.sync_all() } else { Ok(()) }
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(&tmp, e));
    }
    place_new(&tmp, path)
}

/// Renames the finished file `tmp` to `path` only if nothing is there;
/// `tmp` is removed whenever it was not placed.
pub(crate) fn place_new(tmp: &Path, path: &Path) -> Result<Written> {
    match renameat_with(CWD, tmp, CWD, path, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(Written::Made),
        Err(e) => {
            let _ = std::fs::remove_file(tmp);
            if e == rustix::io::Errno::EXIST {
                Ok(Written::Exists)
            } else {
                Err(Error::io(path, e.into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_one_table(path: &Path) -> rusqlite::Result<()> {
        let conn = rusqlite::Connection::open(path)?;
        conn.execute_batch("CREATE TABLE t (x); PRAGMA user_version = 7;")?;
        conn.close().map_err(|(_, e)| e)
    }

    fn fail_to_build(_: &Path) -> rusqlite::Result<()> {
        Err(rusqlite::Error::InvalidQuery)
    }

    #[test]
    fn a_template_is_what_sqlite_built_and_leaves_no_scratch_file() {
        let dir = tempfile::tempdir().unwrap();
        static T: Template = Template::new("one-table", build_one_table);
        let bytes = T.bytes(dir.path()).unwrap().to_vec();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let copy = dir.path().join("copy.db");
        assert_eq!(write_new(&copy, &bytes, true).unwrap(), Written::Made);
        let conn = rusqlite::Connection::open(&copy).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 7);
        conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
    }

    #[test]
    fn write_new_never_replaces_a_file_and_leaves_no_temporary_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taken.db");
        std::fs::write(&path, b"the guest's").unwrap();
        assert_eq!(write_new(&path, b"ours", false).unwrap(), Written::Exists);
        assert_eq!(std::fs::read(&path).unwrap(), b"the guest's");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_build_answers_none_and_is_tried_again() {
        let dir = tempfile::tempdir().unwrap();
        static T: Template = Template::new("failing", fail_to_build);
        assert!(T.bytes(dir.path()).is_none());
        assert!(T.bytes.get().is_none());
    }
}
