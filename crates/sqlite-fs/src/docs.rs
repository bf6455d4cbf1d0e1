//! Design notes of the mailbox layer (documentation only).
//!
//! # The three cross-mount invariants, and what enforces them
//!
//! 1. **`journal_mode=DELETE`.** Every open reads the file header (bytes
//!    18–19) before SQLite sees the file. The host converts a WAL
//!    `inbound.db` to `DELETE` (and logs it); the guest refuses a WAL
//!    `inbound.db` with [`Error::WrongJournalMode`](crate::Error::WrongJournalMode)
//!    saying why; the host refuses a WAL `outbound.db` (the guest converts its
//!    own file on [`GuestMailbox::open`](crate::GuestMailbox::open)).
//! 2. **Open, write, close per operation.** [`HostMailbox`](crate::HostMailbox)
//!    holds only paths. Each method opens `inbound.db` inside a closure scope
//!    (`host::inbound::with_inbound`) and closes it before returning; no
//!    public function returns a connection. The guest opens `inbound.db`
//!    with `SQLITE_OPEN_READ_ONLY` and `mmap_size=0` for every poll; no guest
//!    function opens it read-write.
//! 3. **One writer per file.** Host access to one session's `inbound.db` is
//!    serialised by an in-process gate per session plus an exclusive `flock`
//!    on `<host_state>/sessions/<group>/<session>/inbound.lock`, so tasks and
//!    host processes on one machine queue. The host opens `outbound.db`
//!    read-only, except [`HostMailbox::recover_outbound`](crate::HostMailbox::recover_outbound),
//!    which requires a [`GuestStopped`](crate::GuestStopped) proof, obtainable
//!    only from a `stopped` container status.
//!
//! # Mounts the session folder may be shared through
//!
//! Supported: VirtioFS (and FUSE shares like it) with `cache=none` or
//! `cache=auto` and an attribute timeout of at most 1 s, the default of
//! Docker Desktop, Apple Container, Colima, Lima and Podman machine.
//! Not supported: `cache=always` (the guest keeps stale pages for as long as
//! the attributes are trusted) and any mount with the FUSE **writeback cache**
//! (virtiofsd `-o writeback`, libfuse `-o writeback_cache`): Linux then trusts
//! its own cached file size, so the guest never sees `inbound.db` grow and
//! about half of the host's messages are never read (measured by
//! `cargo xtask crossmount`, case `wb-in`). The guest's mount self-test
//! ([`check_mount`](crate::guest::check_mount)) fails with a "stale mount"
//! error on both, so a misconfigured sandbox stops at start-up instead of
//! silently missing messages.
//!
//! # Host-only state
//!
//! `<data_dir>/host-state/sessions/<group>/<session>/` (outside the sessions
//! root, never mounted into a guest) holds `inbound.lock`, the intent marker
//! `inbound.intent`, the change counter `inbound.counter` remembered after
//! each commit, and `quarantine/`.
//!
//! # Journal quarantine
//!
//! Before each write transaction the host sets the intent marker to `busy`,
//! together with the file's change counter (header bytes 24–27) at that
//! moment, and `fdatasync`s it (the folder is synced when the file is
//! created); it sets it back to `idle` once the commit returned and the
//! connection closed, and records the counter after the commit. Cost: one
//! extra `fdatasync` per write transaction, beside SQLite's own three or so
//! (measured on this CI disk under load: 500 sequential writes took about
//! 11 s with a create+fsync(file)+fsync(dir)+unlink marker and about 7.5 s
//! with the rewrite+fdatasync marker used now; on tmpfs about 0.5 s).
//!
//! Before any open of `inbound.db`, a journal found beside it while the
//! marker is not `busy` cannot come from an interrupted host write: it is
//! moved to `quarantine/` unreplayed, logged with `tracing::warn!`, and
//! reported in
//! [`WrittenMessage::quarantined_journal`](airlock_core::mailbox::WrittenMessage).
//! With the marker `busy` (the host died mid-write) the journal is the
//! host's own and SQLite rolls it back normally, unless the journal's saved
//! copy of page 1 (read by `host::journal_file`, only from records SQLite
//! would replay) carries a change counter other than the one the marker
//! recorded: then it is foreign and quarantined too. The marker, not the
//! post-commit counter, decides, because after power loss an interrupted
//! transaction's pages may reach the disk in any order.
//!
//! Residual risk: in the window between a host crash mid-write and the next
//! host open, a guest that replaces the journal with one that saved no page 1
//! (or a page 1 with the right counter, which it can read from
//! `inbound.db`) is trusted. A symlink or file planted as the journal in the
//! instant between the check and SQLite's open, or during a host
//! transaction, is not caught.
//!
//! # Host-originated messages
//!
//! A message the host sends itself (e.g. a denial) is stored with
//! [`HostMailbox::write_host_message`](crate::HostMailbox::write_host_message)
//! in `inbound.db`, which the host owns: a `messages_in` row with an even
//! seq, kind `host_outbound`, status `completed` and trigger 0. The guest
//! never processes it (not pending) but sees it as context. Delivery
//! ([`HostMailbox::due_outbound`](crate::HostMailbox::due_outbound)) returns
//! these rows beside the guest's `messages_out` rows, ordered by seq, with
//! [`Origin::Host`](airlock_core::mailbox::Origin) and kind `chat`; they are
//! tracked in `delivered` like any other. `outbound.db` is never written and
//! parity never broken. A guest row that reuses a host message's id is
//! skipped, so a guest cannot suppress a host message by id collision.
//!
//! # Untrusted `outbound.db`
//!
//! The guest can swap any name in its folder between a check and a use, so
//! SQLite is never given one. `GuestDb` (`sqlite_util::guest_db`)
//! opens `outbound.db` through the session folder's handle (`O_NOFOLLOW |
//! O_NONBLOCK | O_CLOEXEC`, openat2 `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`)
//! and checks the handle with `fstat`: a regular file with a single name (a
//! FIFO, device, symlink or hard link is
//! [`Error::UnsafeFile`](crate::Error::UnsafeFile), at once). The header is
//! read from that handle: a WAL-mode file is refused. Exactly that inode is
//! then hard-linked into the session's host state (`linkat` of
//! `/proc/self/fd/N`, under a `flock` so concurrent host readers never see
//! each other's link as a second name) and SQLite opens only that host-only
//! name, `file:…?mode=ro&immutable=1`: no locks, no journal, `-wal` or
//! `-shm` look-up, no open of anything the guest placed, no writable map.
//! Immutable means SQLite would not notice a guest commit during the read,
//! so the change counter (bytes 24–27) is read from the handle and the
//! journal is looked at with `fstatat` (never opened) before and after each
//! read: a journal present or a counter moved makes the read a transient
//! 776, retried, and [`Error::GuestMayBeRunning`](crate::Error::GuestMayBeRunning)
//! when it persists. Where no link can be made (host state on another
//! filesystem, a read-only data dir) the verified bytes are copied into a
//! private file instead (at most 256 MiB). We chose the link over reading
//! the whole file into memory because it costs two metadata operations per
//! read whatever the history's length.
//!
//! Recovery of a stopped guest's hot journal ([`HostMailbox::recover_outbound`](crate::HostMailbox::recover_outbound))
//! is the one read-write open: both files are verified the same way and
//! linked into host state as `outbound.recover` and its `-journal`, so
//! SQLite replays exactly the checked inodes; a journal naming a
//! super-journal (which would make SQLite open a path the guest wrote) is
//! refused. `doctor` reads both mailbox files as such snapshots.
//!
//! The connection gets SQLite's advice for untrusted files:
//! `trusted_schema=OFF`, `cell_size_check=ON`, `mmap_size=0`, `query_only`,
//! a bounded page cache, tight `sqlite3_limit`s and a progress handler that
//! interrupts a read after 1.5 s. A crafted file fails with
//! [`Error::UntrustedFileRejected`](crate::Error::UntrustedFileRejected).
//! `hard_heap_limit` is process-wide, so it is left to the embedding host.
//! Values of any storage class are read as text, so odd types never fail a read.
//!
//! # Read-only data dirs
//!
//! On a read-only filesystem the registry opens read-only: `immutable=1`
//! when it has no `-wal` (it was closed cleanly, the main file holds every
//! commit, and nothing can be locked or created), `mode=ro` when a `-wal`
//! exists (a live writer behind a read-only bind mount; SQLite reads the WAL
//! through the existing `-shm`). Listings and counts of `inbound.db` then
//! read a verified snapshot instead of taking the session lock. Writes fail
//! saying "read-only".
//!
//! # Transient errors
//!
//! Guest reads retry `SQLITE_BUSY`, `SQLITE_READONLY_ROLLBACK` (776) and
//! "malformed"/"not a database" with exponential backoff (about 3 s in the
//! worst case) and count them ([`GuestMailbox::retry_stats`](crate::GuestMailbox::retry_stats));
//! host reads of `outbound.db` retry busy and 776, and a persistent 776 becomes
//! [`Error::GuestMayBeRunning`](crate::Error::GuestMayBeRunning): recover once
//! the guest is stopped.
//!
//! # Migrations
//!
//! Each file is stamped `PRAGMA user_version = 1` once up to date. The owner
//! migrates on open (host: `inbound.db`; guest: `outbound.db`): missing
//! columns are added, `series_id = id` is backfilled, missing tables are
//! created. The guest reads an un-migrated `inbound.db` by selecting defaults
//! for missing columns.
//!
//! # Tests and their knobs
//!
//! `tests/mailbox_*.rs` run on tmpfs (`/dev/shm`) when present, because the
//! properties they check do not depend on fsync; `AIRLOCK_TEST_ON_DISK=1`
//! runs them on the default temp dir. Heavier runs:
//! `AIRLOCK_CRASH_TRIALS` (SIGKILL trials, default 200),
//! `AIRLOCK_MAILBOX_WRITES` (writes per task in the 16-task + second-process
//! test, default 500), `AIRLOCK_MAILBOX_EXCHANGE` (messages in the two-process
//! exchange, default 500).
