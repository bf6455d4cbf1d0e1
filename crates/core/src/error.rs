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

impl Error {
    /// A [`Error::NotFound`] for `kind` with `id`.
    pub fn not_found(kind: &'static str, id: impl ToString) -> Self {
        Error::NotFound {
            kind,
            id: id.to_string(),
        }
    }

    /// An [`Error::Io`] at `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
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
