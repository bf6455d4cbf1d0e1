//! `SqliteSessionStore`: the session registry in one SQLite file.
//!
//! The registry file (`<data_dir>/airlock.db`) is host-only, so unlike the
//! mailboxes it uses WAL and one long-lived connection. Resolution is atomic
//! across processes: a partial unique index over the active sessions'
//! resolution keys, and insert-or-fetch inside an immediate transaction.

mod migrate;
mod queries;
mod rows;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_core::{Error, Result};
use rusqlite::{Connection, OpenFlags};

use crate::sqlite_util::{is_read_only, open_read_only_wal};

pub use migrate::{ForeignRegistry, MigrateError, SCHEMA_VERSION};

/// File name of the registry inside the data dir.
pub const REGISTRY_FILE: &str = "airlock.db";

/// How long a writer waits for another process's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Puts the file in WAL mode, waiting out other processes doing the same.
///
/// Two processes opening a new registry at once both switch it to WAL; the
/// switch needs an exclusive lock, and SQLite answers `SQLITE_BUSY` at once,
/// without the busy handler, where waiting could deadlock. Retry those with
/// a short backoff, up to [`BUSY_TIMEOUT`].
fn switch_to_wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    let mut backoff = Duration::from_millis(2);
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// Why the registry could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenStoreError {
    /// The data dir could not be created.
    #[error("creating data dir {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// SQLite could not open or configure the file.
    #[error("opening registry {}: {source}", path.display())]
    Open {
        /// The registry file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The schema could not be migrated.
    #[error("registry {}: {source}", path.display())]
    Migrate {
        /// The registry file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: MigrateError,
    },
}

impl OpenStoreError {
    /// The storage fault behind this error (a full or read-only file
    /// system), if that is the cause.
    pub fn storage_fault(&self) -> Option<airlock_core::StorageFault> {
        match self {
            OpenStoreError::CreateDir { source, .. } => airlock_core::StorageFault::of_io(source),
            OpenStoreError::Open { path, source }
            | OpenStoreError::Migrate {
                path,
                source: MigrateError::Sqlite { cause: source, .. },
            } => crate::error::sqlite_fault(path, source),
            OpenStoreError::Migrate { .. } => None,
        }
    }

    /// This error in airlock-core's terms: a full or read-only disk keeps its kind.
    pub fn into_core(self) -> Error {
        match (self.storage_fault(), &self) {
            (Some(fault), OpenStoreError::CreateDir { path, .. })
            | (Some(fault), OpenStoreError::Open { path, .. })
            | (Some(fault), OpenStoreError::Migrate { path, .. }) => {
                let path = path.clone();
                Error::storage(fault, Some(path), self)
            }
            (None, _) => Error::backend("sqlite", "opening the registry", self),
        }
    }
}

/// The embedded session registry.
#[derive(Debug, Clone)]
pub struct SqliteSessionStore {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
}

impl SqliteSessionStore {
    /// Opens (creating if needed) `<data_dir>/airlock.db`.
    pub fn open_in(data_dir: &Path) -> Result<Self, OpenStoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| OpenStoreError::CreateDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        Self::open_file(&data_dir.join(REGISTRY_FILE))
    }

    /// Opens (creating if needed) the registry at `path` and migrates it.
    ///
    /// On a read-only filesystem an existing registry is opened read-only
    /// instead (see [`SqliteSessionStore::open_read_only`]): reads work,
    /// writes fail saying "read-only".
    pub fn open_file(path: &Path) -> Result<Self, OpenStoreError> {
        match Self::open_writable(path) {
            Err(e) if path.is_file() && is_read_only(path) => {
                tracing::debug!(error = %e, "registry not writable; opening it read-only");
                Self::open_read_only(path)
            }
            other => other,
        }
    }

    /// Opens an existing registry for reading only, never writing to its
    /// folder. A registry with no `-wal` (closed cleanly) is opened
    /// `immutable=1`: nothing to lock, and the main file holds every commit.
    /// With a `-wal` a writer may be live (a read-only bind mount of a
    /// running host's data dir), so it is opened `mode=ro`, which reads the
    /// WAL through the existing `-shm` and sees every commit.
    pub fn open_read_only(path: &Path) -> Result<Self, OpenStoreError> {
        let open_err = |source| OpenStoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = open_read_only_wal(path, BUSY_TIMEOUT).map_err(open_err)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(open_err)?;
        if version != SCHEMA_VERSION {
            return Err(OpenStoreError::Migrate {
                path: path.to_path_buf(),
                source: MigrateError::ReadOnly { found: version },
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn open_writable(path: &Path) -> Result<Self, OpenStoreError> {
        let open_err = |source| OpenStoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        let migrate_err = |source| OpenStoreError::Migrate {
            path: path.to_path_buf(),
            source,
        };
        migrate::refuse_foreign(&conn).map_err(migrate_err)?;
        switch_to_wal(&conn).map_err(open_err)?;
        // FULL: a session, group or route the registry acknowledged must
        // survive a power cut (under NORMAL a WAL commit is durable only
        // at the next checkpoint, and a lost session row orphans a folder
        // whose messages were acknowledged). Only `last_active` touches,
        // advisory and one per message, commit under NORMAL (`relaxed`).
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        migrate::migrate(&mut conn).map_err(migrate_err)?;
        Ok(Self {
            path: path.to_path_buf(),
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// The registry file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `job` with the connection on a blocking thread, so SQLite never
    /// stalls the async runtime.
    async fn run<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            job(&mut guard).map_err(|e| storage_kind(e, &path))
        })
        .await
        .map_err(|e| Error::backend("sqlite", "running a registry query", e))?
    }
}

/// A full or read-only disk under the registry becomes its own kind here,
/// once for every query, with the registry's path.
fn storage_kind(err: Error, path: &Path) -> Error {
    match err {
        Error::DiskFull { path: None, source } => Error::DiskFull {
            path: Some(path.to_path_buf()),
            source,
        },
        Error::ReadOnly { path: None, source } => Error::ReadOnly {
            path: Some(path.to_path_buf()),
            source,
        },
        Error::Backend { ref source, .. } => {
            match source
                .downcast_ref::<rusqlite::Error>()
                .and_then(|e| crate::error::sqlite_fault(path, e))
            {
                Some(fault) => Error::storage(fault, Some(path.to_path_buf()), err),
                None => err,
            }
        }
        other => other,
    }
}
