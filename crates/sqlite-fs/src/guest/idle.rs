//! The guest's idle poll: a poll that found nothing remembers both files'
//! stamps and the earliest time a pending row it saw becomes due, so the
//! next polls read two 100-byte headers instead of two databases until a
//! file changes or that time comes (issue 14's W5).
//!
//! Sound because a poll's answer depends only on the two files and the
//! clock: every commit bumps the change counter in rollback-journal mode
//! (a file swapped in has another inode), the guest's acks are commits to
//! `outbound.db`, and the stamps are read before the databases, so a write
//! that lands during a poll makes the next one read again.

use std::sync::Mutex;

use airlock_core::Timestamp;

use crate::error::Result;
use crate::layout::SessionPaths;
use crate::sqlite_util::{FileStamp, file_stamp};

/// Both files' stamps, read before a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamps {
    inbound: Option<FileStamp>,
    outbound: Option<FileStamp>,
}

impl Stamps {
    /// Reads both stamps now.
    pub(super) fn read(paths: &SessionPaths) -> Result<Stamps> {
        Ok(Stamps {
            inbound: file_stamp(&paths.inbound_db())?,
            outbound: file_stamp(&paths.outbound_db())?,
        })
    }
}

/// What the last poll that found nothing saw.
#[derive(Debug, Clone, Copy)]
struct Quiet {
    stamps: Stamps,
    /// The earliest `process_after` after that poll's clock among the
    /// pending rows it passed over; `None`: none was scheduled.
    next_due: Option<Timestamp>,
}

/// The memo of the last poll that found nothing, if the last poll did.
#[derive(Debug, Default)]
pub(super) struct IdleMemo(Mutex<Option<Quiet>>);

impl IdleMemo {
    /// Whether a poll at `now` over files stamped `stamps` must find
    /// nothing, because the last poll found nothing over the same files and
    /// no row it saw has come due since.
    pub(super) fn still_idle(&self, stamps: &Stamps, now: Timestamp) -> bool {
        let memo = self.0.lock().unwrap_or_else(|p| p.into_inner());
        memo.is_some_and(|q| q.stamps == *stamps && q.next_due.is_none_or(|due| now < due))
    }

    /// Records a poll's outcome: `Some(next_due)` when it found nothing
    /// over files stamped `stamps` (read before it), `None` otherwise.
    pub(super) fn record(&self, stamps: Stamps, found_nothing: Option<Option<Timestamp>>) {
        let mut memo = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *memo = found_nothing.map(|next_due| Quiet { stamps, next_due });
    }

    /// Forgets the last poll (an error, or a poll that cannot be trusted).
    pub(super) fn forget(&self) {
        self.record(
            Stamps {
                inbound: None,
                outbound: None,
            },
            None,
        );
    }
}
