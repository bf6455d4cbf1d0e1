//! Access patterns under test: airlock's own and the negative controls.
use std::collections::BTreeMap;
use std::path::Path;

/// Result of one side's operation; the text names what failed.
pub type SideResult<T> = Result<T, String>;

/// One message as the guest saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The message id.
    pub id: String,
    /// Its sequence number.
    pub seq: i64,
}

/// How the host side writes `inbound.db` and reads `outbound.db` (on the real folder).
pub trait HostSide: Send {
    /// Creates `inbound.db` before the guest starts.
    fn init(&mut self, dir: &Path) -> SideResult<()>;
    /// Writes one message; returns once it is committed.
    fn write(&mut self, dir: &Path, id: &str, body: &str) -> SideResult<()>;
    /// Ids of the replies in `outbound.db` now (empty if the file does not exist yet).
    fn replies(&mut self, dir: &Path) -> SideResult<Vec<String>>;
    /// What a host loop does between deliveries (airlock: copy the guest's acks
    /// into `messages_in.status`, so polls stay small).
    fn housekeeping(&mut self, _dir: &Path) -> SideResult<()> {
        Ok(())
    }
    /// What the host side noticed during the run, for the report (NC3: its held writes).
    fn note(&self) -> Option<String> {
        None
    }
    /// Releases connections it kept open (the long-lived controls).
    fn close(&mut self) {}
}

/// How the guest side reads `inbound.db` and writes `outbound.db` (through the mount).
pub trait GuestSide {
    /// New messages, oldest first; a message returned twice is a duplicate.
    fn poll(&mut self, dir: &Path) -> SideResult<Vec<Seen>>;
    /// Writes the reply to message `to` and acknowledges it; returns once committed.
    fn reply(&mut self, dir: &Path, to: &Seen) -> SideResult<()>;
    /// Raw SQLite conditions retried inside the library, by extended code or name.
    fn retries(&self) -> BTreeMap<String, u64>;
    /// Releases connections it kept open.
    fn close(&mut self) {}
}

/// Which access pattern a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// airlock's host and guest mailbox APIs.
    Airlock,
    /// NC1: both files in WAL mode, long-lived connections on both sides.
    Nc1Wal,
    /// NC3: the guest opens `inbound.db` read-write (per poll) and reads it,
    /// next to a host that keeps its journal in the folder and holds each
    /// write open for the guest ([`crate::controls::JournalHost`]).
    Nc3GuestReadWrite,
    /// NC4: one long-lived guest writer with `synchronous=OFF` (meant for a writeback mount).
    Nc4LongLivedWriter,
}

impl Pattern {
    /// Name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Airlock => "airlock",
            Pattern::Nc1Wal => "nc1-wal",
            Pattern::Nc3GuestReadWrite => "nc3-guest-rw",
            Pattern::Nc4LongLivedWriter => "nc4-longlived-sync-off",
        }
    }

    /// Parses [`Pattern::name`].
    pub fn parse(s: &str) -> Option<Pattern> {
        [
            Pattern::Airlock,
            Pattern::Nc1Wal,
            Pattern::Nc3GuestReadWrite,
            Pattern::Nc4LongLivedWriter,
        ]
        .into_iter()
        .find(|p| p.name() == s)
    }

    /// The guest's pause between polls: NC3 polls without pause, so the host's
    /// held writes ([`crate::controls::JournalHost`]) wait little for it.
    pub fn guest_poll(self, configured: std::time::Duration) -> std::time::Duration {
        match self {
            Pattern::Nc3GuestReadWrite => std::time::Duration::from_millis(1),
            _ => configured,
        }
    }

    /// Journal mode of `inbound.db` under this pattern.
    pub fn journal(self) -> &'static str {
        match self {
            Pattern::Nc1Wal => "wal",
            Pattern::Nc3GuestReadWrite => "truncate",
            _ => "delete",
        }
    }

    /// The longest one host write may wait for the guest (NC3 holds each write open for it).
    pub fn write_hold(self) -> std::time::Duration {
        match self {
            Pattern::Nc3GuestReadWrite => crate::controls::NC3_HOLD_LIMIT,
            _ => std::time::Duration::ZERO,
        }
    }

    /// The host side of this pattern.
    pub fn host(self) -> Box<dyn HostSide> {
        match self {
            Pattern::Nc1Wal => Box::new(crate::controls::WalHost::default()),
            Pattern::Nc3GuestReadWrite => Box::new(crate::controls::JournalHost::default()),
            _ => Box::new(crate::airlock::AirlockHost::default()),
        }
    }

    /// The guest side of this pattern.
    pub fn guest(self) -> Box<dyn GuestSide + Send> {
        match self {
            Pattern::Airlock => Box::new(crate::airlock::AirlockGuest::default()),
            Pattern::Nc1Wal => Box::new(crate::controls::WalGuest::default()),
            Pattern::Nc3GuestReadWrite => Box::new(crate::controls::ReadWriteGuest::default()),
            Pattern::Nc4LongLivedWriter => {
                Box::new(crate::controls::LongLivedWriterGuest::default())
            }
        }
    }
}

/// Message id of the n-th test message.
pub fn message_id(n: usize) -> String {
    format!("m{n:05}")
}

/// Seq the host gives the n-th test message: the next host seq after message n-1's.
pub fn message_seq(n: usize) -> i64 {
    let previous = i64::try_from(n).map_or(i64::MAX, |n| n.saturating_mul(2));
    airlock_core::Seq::next_host(Some(airlock_core::Seq::new(previous))).get()
}

/// Id of the reply to message `id`.
pub fn reply_id(id: &str) -> String {
    format!("r-{id}")
}
