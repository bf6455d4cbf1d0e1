//! The error every airlock store returns, with kinds a caller can act on.

use std::path::PathBuf;

use crate::ids::IdError;

/// A boxed error from a backend library (rusqlite, sqlx, …).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type of airlock's traits.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An operation failed; the variant says what the caller can do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The named thing does not exist (unknown id).
    #[error("{kind} {id} not found")]
    NotFound {
        /// What was looked up, e.g. `"session"`.
        kind: &'static str,
        /// The id that was not found.
        id: String,
    },

    /// Creating the thing would break a uniqueness rule.
    #[error("{kind} {id} already exists")]
    AlreadyExists {
        /// What was being created.
        kind: &'static str,
        /// Its identifying key.
        id: String,
    },

    /// The operation conflicts with the current state (e.g. a guest may be
    /// running, so the host must not write its file).
    #[error("conflict: {0}")]
    Conflict(String),

    /// An id from outside was not a safe path component.
    #[error(transparent)]
    InvalidId(#[from] IdError),

    /// Input other than an id was malformed (a name, a timestamp, JSON, …).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// An on-disk invariant does not hold (wrong journal mode, broken seq
    /// parity, a journal the host did not write, …).
    #[error("invariant violated{}: {what}", path.as_ref().map(|p| format!(" at {}", p.display())).unwrap_or_default())]
    InvariantViolated {
        /// The file concerned, if any.
        path: Option<PathBuf>,
        /// What does not hold.
        what: String,
    },

    /// A file-system operation failed.
    #[error("I/O error at {}: {source}", path.display())]
    Io {
        /// The path operated on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The session's folder is on another host (its `owner_host`): this host
    /// must not touch it; route the message to the owner instead.
    #[error("session {session} is owned by host {owner}, not by this host")]
    NotOwner {
        /// The session concerned.
        session: String,
        /// The host that has its folder.
        owner: String,
    },

    /// The file system is full (`ENOSPC`, `EDQUOT`, `SQLITE_FULL`): the write
    /// was refused, and a write the caller saw fail was not acknowledged.
    /// Free or grow the file system, then retry.
    #[error("disk full{}: {source}", at(path))]
    DiskFull {
        /// The file or folder written, if known.
        path: Option<PathBuf>,
        /// The underlying error.
        #[source]
        source: BoxError,
    },

    /// The file system is read-only (`EROFS`, a database opened read-only on
    /// a read-only mount): reads still work, writes do not.
    #[error("read-only filesystem{}: {source}", at(path))]
    ReadOnly {
        /// The file or folder written, if known.
        path: Option<PathBuf>,
        /// The underlying error.
        #[source]
        source: BoxError,
    },

    /// The guest is in the middle of writing its mailbox file (it left a
    /// hot journal and may still be running), so the host did not touch
    /// the file. Transient: a later pass reads it, and recovery runs once
    /// the registry says the guest is stopped.
    #[error("{} has a hot journal and the guest may still be running", path.display())]
    GuestBusy {
        /// The guest's database file.
        path: PathBuf,
    },

    /// The database backend failed (SQLite, PostgreSQL, connection loss, …).
    #[error("{backend} error while {context}: {source}")]
    Backend {
        /// Which backend, e.g. `"sqlite"` or `"postgres"`.
        backend: &'static str,
        /// What airlock was doing.
        context: String,
        /// The backend's own error.
        #[source]
        source: BoxError,
    },
}

/// A condition of the file system, not of the operation, that refuses
/// writes: every backend maps its own codes to it once, at its seam.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageFault {
    /// No space (or quota) left.
    Full,
    /// Mounted read-only.
    ReadOnly,
}

impl StorageFault {
    /// The fault an I/O error reports, if any.
    pub fn of_io(err: &std::io::Error) -> Option<StorageFault> {
        use std::io::ErrorKind;
        match err.kind() {
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded => Some(StorageFault::Full),
            ErrorKind::ReadOnlyFilesystem => Some(StorageFault::ReadOnly),
            _ => None,
        }
    }
}

fn at(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!(" at {}", p.display()))
        .unwrap_or_default()
}

impl Error {
    /// A [`Error::NotFound`] for `kind` with `id`.
    pub fn not_found(kind: &'static str, id: impl ToString) -> Self {
        Error::NotFound {
            kind,
            id: id.to_string(),
        }
    }

    /// An [`Error::Io`] at `path`, or [`Error::DiskFull`] / [`Error::ReadOnly`]
    /// when the file system's state is the cause (see [`StorageFault::of_io`]).
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        match StorageFault::of_io(&source) {
            Some(fault) => Error::storage(fault, Some(path.into()), source),
            None => Error::Io {
                path: path.into(),
                source,
            },
        }
    }

    /// [`Error::DiskFull`] or [`Error::ReadOnly`], as `fault` says.
    pub fn storage(
        fault: StorageFault,
        path: Option<PathBuf>,
        source: impl Into<BoxError>,
    ) -> Self {
        let source = source.into();
        match fault {
            StorageFault::Full => Error::DiskFull { path, source },
            StorageFault::ReadOnly => Error::ReadOnly { path, source },
        }
    }

    /// Which storage fault this is, if it is one.
    pub fn storage_fault(&self) -> Option<StorageFault> {
        match self {
            Error::DiskFull { .. } => Some(StorageFault::Full),
            Error::ReadOnly { .. } => Some(StorageFault::ReadOnly),
            _ => None,
        }
    }

    /// An [`Error::Backend`] wrapping `source`.
    pub fn backend(
        backend: &'static str,
        context: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Backend {
            backend,
            context: context.into(),
            source: source.into(),
        }
    }

    /// An [`Error::InvariantViolated`].
    pub fn invariant(path: Option<PathBuf>, what: impl Into<String>) -> Self {
        Error::InvariantViolated {
            path,
            what: what.into(),
        }
    }

    /// Whether this is [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_full_and_read_only_io_errors_get_their_own_kinds() {
        // ENOSPC, EDQUOT, EROFS as Linux numbers them.
        for (errno, fault) in [
            (28, StorageFault::Full),
            (122, StorageFault::Full),
            (30, StorageFault::ReadOnly),
        ] {
            let err = Error::io("/d/f", std::io::Error::from_raw_os_error(errno));
            assert_eq!(err.storage_fault(), Some(fault), "errno {errno}: {err:?}");
            assert!(err.to_string().contains("/d/f"), "{err}");
        }
        let full = Error::io("/d/f", std::io::Error::from_raw_os_error(28));
        assert!(full.to_string().starts_with("disk full at /d/f"), "{full}");
        let other = Error::io("/d/f", std::io::Error::from_raw_os_error(5));
        assert!(matches!(other, Error::Io { .. }), "{other:?}");
        assert_eq!(other.storage_fault(), None);
    }
}
