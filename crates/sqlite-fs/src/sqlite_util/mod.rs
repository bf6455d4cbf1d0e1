//! SQLite plumbing shared by the host and guest sides: file header checks,
//! safe opens, and the retry policy for transient cross-mount errors.

mod files;
#[cfg(feature = "host")]
mod guest_db;
mod header;
mod open;
mod retry;
mod stamp;
#[cfg(feature = "host")]
pub(crate) mod template;

pub use files::{
    FileState, canonical_dir, check_regular_or_absent, free_space, is_read_only, on_read_only_mount,
};
#[cfg(feature = "host")]
pub use guest_db::{GuestDb, uri_path};
pub use header::{DbHeader, JournalKind, read_header};
#[cfg(feature = "host")]
pub use open::open_read_only_wal;
pub use open::{OpenMode, open_file};
pub use retry::{RetryPolicy, RetryStats, RetryStatsSnapshot, retry};
pub use stamp::{FileStamp, file_stamp};
