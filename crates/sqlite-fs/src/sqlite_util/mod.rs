//! SQLite plumbing shared by the host and guest sides: file header checks,
//! safe opens, and the retry policy for transient cross-mount errors.

mod files;
mod guest_db;
mod header;
mod open;
mod retry;

pub use files::{FileState, canonical_dir, check_regular_or_absent, is_read_only};
pub use guest_db::{GuestDb, uri_path};
pub use header::{DbHeader, JournalKind, read_header};
pub use open::{OpenMode, open_file, open_read_only_wal};
pub use retry::{RetryPolicy, RetryStats, RetryStatsSnapshot, retry};
