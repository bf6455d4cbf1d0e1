//! The error of the mailbox layer: kinds a caller can act on, each with the file concerned.

use std::path::{Path, PathBuf};

use airlock_core::{IdError, StorageFault};

/// The result type of this crate's mailbox API.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A mailbox operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// SQLite failed (after the library's own retries, if any).
    #[error("sqlite error at {} while {context}: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What airlock was doing.
        context: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },

    /// A transient SQLite condition (busy, hot journal seen read-only, a
    /// "malformed" read through a stale mount) did not clear after retries.
    #[error("{} still failing after {attempts} attempts while {context}: {source}", path.display())]
    Persistent {
        /// The database file.
        path: PathBuf,
        /// What airlock was doing.
        context: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last error.
        #[source]
        source: rusqlite::Error,
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

    /// A mailbox file is not in rollback-journal (`DELETE`) mode.
    #[error("{} is in {mode} journal mode; {why}", path.display())]
    WrongJournalMode {
        /// The database file.
        path: PathBuf,
        /// The mode found (`wal`, …).
        mode: String,
        /// Why that is refused.
        why: &'static str,
    },

    /// `outbound.db` has a hot journal and the guest may still be running, so
    /// the host must not touch it; recover once the guest is stopped.
    #[error("{} has a hot journal and the guest may still be running", path.display())]
    GuestMayBeRunning {
        /// The database file.
        path: PathBuf,
    },

    /// A file the guest can replace is not a regular file (symlink, FIFO, …).
    #[error("refusing {}: {what}", path.display())]
    UnsafeFile {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        what: String,
    },

    /// A file written by the guest was refused: too slow or too large to read,
    /// or crafted (bad schema objects, corruption).
    #[error("untrusted file {} refused while {context}: {why}", path.display())]
    UntrustedFileRejected {
        /// The file.
        path: PathBuf,
        /// What airlock was doing.
        context: String,
        /// What went wrong.
        why: String,
    },

    /// The mailbox does not exist (no session folder / database file).
    #[error("mailbox file {} does not exist", path.display())]
    Missing {
        /// The missing file.
        path: PathBuf,
    },

    /// The session folder and host-only state are on different file systems,
    /// so the host cannot keep its own hard link to the published `inbound.db`.
    #[error("{} and {} must be on one file system (the host keeps a hard link to inbound.db in host state)", folder.display(), host_state.display())]
    NotOneFilesystem {
        /// The session folder.
        folder: PathBuf,
        /// The session's host-only state.
        host_state: PathBuf,
    },

    /// The group commit this write was batched into failed; nothing of it was stored.
    #[error("the group commit of {} failed: {reason}", path.display())]
    CommitFailed {
        /// `host.db`.
        path: PathBuf,
        /// The leader's error.
        reason: String,
        /// The leader's storage fault (a full or read-only disk), if that was the cause.
        fault: Option<StorageFault>,
    },

    /// The guest's mount self-test failed: the mount hides host writes.
    #[error(transparent)]
    StaleMount(#[from] crate::guest::StaleMount),

    /// An id was not a safe path component.
    #[error(transparent)]
    InvalidId(#[from] IdError),

    /// Other malformed input.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// An error from a component speaking airlock-core's error (e.g. the
    /// attachment store behind an [`InboundContent`](crate::InboundContent)).
    #[error(transparent)]
    Core(#[from] airlock_core::Error),

    /// Preparing inbound content (attachments) failed.
    #[error("preparing content of message {message_id} failed: {source}")]
    Content {
        /// The message.
        message_id: String,
        /// The content preparer's error.
        #[source]
        source: airlock_core::Error,
    },
}

impl Error {
    /// An [`Error::Io`] at `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Sqlite`] at `path` while doing `context`.
    pub fn sqlite(
        path: impl Into<PathBuf>,
        context: impl Into<String>,
        source: rusqlite::Error,
    ) -> Self {
        Error::Sqlite {
            path: path.into(),
            context: context.into(),
            source,
        }
    }

    /// The storage fault behind this error (a full or read-only file
    /// system), if that is the cause.
    pub fn storage_fault(&self) -> Option<StorageFault> {
        match self {
            Error::Io { source, .. } => StorageFault::of_io(source),
            Error::Sqlite { path, source, .. } | Error::Persistent { path, source, .. } => {
                sqlite_fault(path, source)
            }
            Error::CommitFailed { fault, .. } => *fault,
            Error::Core(e) | Error::Content { source: e, .. } => e.storage_fault(),
            _ => None,
        }
    }

    /// The file this error is about, for the errors that have one.
    fn file(&self) -> Option<&Path> {
        match self {
            Error::Io { path, .. }
            | Error::Sqlite { path, .. }
            | Error::Persistent { path, .. }
            | Error::CommitFailed { path, .. } => Some(path),
            _ => None,
        }
    }

    /// The SQLite extended result code, if this is an SQLite error.
    pub fn sqlite_code(&self) -> Option<i32> {
        match self {
            Error::Sqlite { source, .. } | Error::Persistent { source, .. } => match source {
                rusqlite::Error::SqliteFailure(e, _) => Some(e.extended_code),
                _ => None,
            },
            _ => None,
        }
    }
}

impl From<Error> for airlock_core::Error {
    fn from(err: Error) -> Self {
        use airlock_core::Error as E;
        // The one place a full or read-only disk becomes its own kind.
        if let Some(fault) = err.storage_fault()
            && !matches!(err, Error::Core(_) | Error::Content { .. })
        {
            let path = err.file().map(Path::to_path_buf);
            return E::storage(fault, path, err);
        }
        match err {
            Error::Io { path, source } => E::io(path, source),
            Error::InvalidId(e) => E::InvalidId(e),
            Error::InvalidInput(what) => E::InvalidInput(what),
            Error::Missing { path } => E::not_found("mailbox file", path.display()),
            Error::GuestMayBeRunning { path } => E::GuestBusy { path },
            Error::Content { source, .. } | Error::Core(source) => source,
            Error::WrongJournalMode { ref path, .. } | Error::UnsafeFile { ref path, .. } => {
                E::invariant(Some(path.clone()), err.to_string())
            }
            Error::NotOneFilesystem { ref folder, .. } => {
                E::invariant(Some(folder.clone()), err.to_string())
            }
            Error::CommitFailed { .. } => E::backend("sqlite", "a group commit", err),
            Error::StaleMount(ref stale) => E::invariant(Some(stale.path.clone()), err.to_string()),
            // The context and path go into the core error's context, so the
            // message reads "sqlite error while <what> (<path>): <cause>".
            Error::Sqlite {
                path,
                context,
                source,
            } => E::backend("sqlite", format!("{context} ({})", path.display()), source),
            Error::Persistent {
                path,
                context,
                attempts,
                source,
            } => E::backend(
                "sqlite",
                format!(
                    "{context} ({}), still failing after {attempts} attempts",
                    path.display()
                ),
                source,
            ),
            Error::UntrustedFileRejected { .. } => {
                E::backend("sqlite", "reading a guest-written file", err)
            }
        }
    }
}

/// SQLite's word for a full disk (`SQLITE_FULL`), or a write refused on a
/// file system that is mounted read-only (SQLite then reports "readonly",
/// "unable to open" or an I/O error, so the mount is asked). SQLite also
/// reports some `ENOSPC` as a plain I/O error (growing a `-shm` by writing
/// to it), and rusqlite does not pass the errno on: an I/O error on a file
/// system with less than [`LOW_SPACE`] free counts as a full disk.
pub(crate) fn sqlite_fault(path: &Path, err: &rusqlite::Error) -> Option<StorageFault> {
    use rusqlite::ErrorCode;
    let rusqlite::Error::SqliteFailure(f, _) = err else {
        return None;
    };
    match f.code {
        ErrorCode::DiskFull => Some(StorageFault::Full),
        ErrorCode::SystemIoFailure | ErrorCode::CannotOpen
            if crate::sqlite_util::free_space(path).is_some_and(|free| free < LOW_SPACE) =>
        {
            Some(StorageFault::Full)
        }
        ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::SystemIoFailure
            if crate::sqlite_util::on_read_only_mount(path) =>
        {
            Some(StorageFault::ReadOnly)
        }
        _ => None,
    }
}

/// Below this much free space, an I/O error SQLite reports is taken for a
/// full disk (see [`sqlite_fault`]).
const LOW_SPACE: u64 = 1 << 20;

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use airlock_core::Error as E;

    use super::Error;

    fn enospc() -> std::io::Error {
        std::io::Error::from_raw_os_error(28)
    }

    #[test]
    fn each_error_is_mapped_into_cores_once() {
        // sqlite-fs's own errors are classified here, once.
        let at = PathBuf::from("/data/s/inbound.db");
        let mapped = E::from(Error::io(&at, enospc()));
        assert!(
            matches!(&mapped, E::DiskFull { path: Some(p), .. } if *p == at),
            "{mapped:?}"
        );
        assert!(matches!(
            E::from(Error::InvalidInput("no".into())),
            E::InvalidInput(w) if w == "no"
        ));
        let journal = PathBuf::from("/data/s/outbound.db");
        assert!(matches!(
            E::from(Error::GuestMayBeRunning { path: journal.clone() }),
            E::GuestBusy { path } if path == journal
        ));
        // Errors that are core's from the start (core's helpers, the
        // attachment half) come back exactly as they were, never classified
        // a second time: a full disk met while staging an attachment stays
        // a full disk with its own path, a missing thing stays missing.
        let staged = PathBuf::from("/data/s/inbox/m1/.tmp");
        let from_attachments = E::io(&staged, enospc());
        let expected = from_attachments.to_string();
        let back = E::from(Error::Content {
            message_id: "m1".into(),
            source: from_attachments,
        });
        assert!(
            matches!(&back, E::DiskFull { path: Some(p), .. } if *p == staged),
            "{back:?}"
        );
        assert_eq!(back.to_string(), expected);
        let missing = E::from(Error::Core(E::not_found("session", "s1")));
        assert!(matches!(missing, E::NotFound { kind: "session", ref id } if id == "s1"));
    }
}
