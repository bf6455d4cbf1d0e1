//! Design notes of the mailbox layer (documentation only).
//!
//! # The three cross-mount invariants, and what enforces them
//!
//! 1. **`journal_mode=DELETE`.** Every open reads the file header (bytes
//!    18–19) before SQLite sees the file. The host publishes `inbound.db`
//!    with a rollback-journal header and rebuilds one found in WAL mode (a
//!    tamper event); the guest refuses a WAL
//!    `inbound.db` with [`Error::WrongJournalMode`](crate::Error::WrongJournalMode)
//!    saying why; the host refuses a WAL `outbound.db` (the guest converts its
//!    own file on [`GuestMailbox::open`](crate::GuestMailbox::open)).
//! 2. **Open, write, close per operation.** [`HostMailbox`](crate::HostMailbox)
//!    holds only paths. Each publish opens the published `inbound.db`
//!    inside one function (`host_state::publish`) and closes it before
//!    returning; no public function returns a connection. The guest opens `inbound.db`
//!    with `SQLITE_OPEN_READ_ONLY` and `mmap_size=0` for every poll; no guest
//!    function opens it read-write.
//! 3. **One writer per file.** Host writes to one session are serialised by
//!    the group commit's single leader per session plus an exclusive `flock`
//!    on `<host_state>/sessions/<group>/<session>/inbound.lock`, so tasks and
//!    host processes on one machine queue. The host opens `outbound.db`
//!    read-only, except [`HostMailbox::recover_outbound`](crate::HostMailbox::recover_outbound),
//!    which requires an [`airlock_core::GuestStopped`] proof, obtainable
//!    only from the registry's answer that the container is `stopped`
//!    (`SessionStoreExt::mark_guest_stopped` or `guest_stopped`).
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
//! # Host state: the folder is a shared, untrusted medium
//!
//! The guest can create, edit, rename, truncate or swap any file in its
//! session folder at any instant, `inbound.db` included. So the host's truth
//! lives in `<data_dir>/host-state/sessions/<group>/<session>/` (outside the
//! sessions root, never mounted into a guest):
//! - `host.db` (WAL, `synchronous=FULL`): every accepted `messages_in` row
//!   (status, tries, process_after, …), `delivered`, host-originated
//!   messages, `session_routing`, `destinations` (the `inbound.db` schema),
//!   plus `host_meta` (the publishing generation) and `tamper_events`.
//!   Listings, counts, `due_outbound`'s filtering and every delivery
//!   decision read `host.db` only. `sync_acks` reads the guest's
//!   `processing_ack` (the guest is the authority on its own processing)
//!   and writes statuses into `host.db`, then publishes them; a sync that
//!   found nothing is remembered in the process until the guest's file or
//!   the published generation changes, and a read of completed recurring
//!   messages that found none until the generation does
//!   (`host/idle_memo.rs`).
//! - `published/inbound.db`: a hard link to the folder's `inbound.db`. The
//!   host opens only this name, never the folder's, so SQLite's hot-journal
//!   check looks only at `published/inbound.db-journal`, which the guest
//!   cannot reach: a journal planted in the folder, even in a loop racing the
//!   host, is never seen by SQLite (the race is impossible, not unlikely).
//!   We chose this over "verify after the transaction": a check after the
//!   fact can only detect a replay that already replaced rows.
//! - `published.record`: dev, inode, size, ctime and change counter of the
//!   published file after the host's last commit, with the generation and
//!   the instance it was written in (this boot's id and the unique id of
//!   the host-state mount, Linux 6.8+). Written without a sync: a lost
//!   record only causes a needless rebuild.
//! - `inbound.lock` (the cross-process `flock`), `quarantine/`.
//!
//! Sessions root and host state must be on one file system (the hard link);
//! otherwise creating or opening a session fails with
//! [`Error::NotOneFilesystem`](crate::Error::NotOneFilesystem).
//!
//! ## Writing
//!
//! Per batch (see group commit): one `host.db` transaction with the rows and
//! "generation G" (one WAL fsync: the durability point, what the caller's
//! success means); then the same rows copied into the published file through
//! the link in one transaction with `journal_mode=MEMORY` (no journal file
//! anywhere) and no fsync of the file (see below); then the record
//! (overwritten in place, fixed width: truncating and rewriting it made ext4
//! start writeback on close). The copy runs on a second pooled `host.db`
//! connection that attaches the link for this one write and detaches it
//! (closing the file): no open of `host.db` and no parse of its schema per
//! write, and the first connection's prepared statements survive (a detach
//! makes SQLite prepare again every statement of its connection).
//! Meanwhile a placeholder `inbound.db-journal` (SQLite's journal magic,
//! zeros to 512 bytes, not synced) sits in the folder, so guest readers
//! that start during the write see a hot journal and retry (776), exactly
//! as with a real journal. It is one host-state file
//! (`placeholder.journal`), renamed in (`RENAME_NOREPLACE`, through the
//! held folder handle) and back out after the commit, its bytes checked
//! before each use: creating a file right after removing one makes ext4
//! search for a free inode, which cost a fifth of the CPU of many sessions
//! written at once. A file already there, or
//! one that replaced the placeholder, is quarantined after the write (never
//! looped on). A crash between the `host.db` commit and the record leaves
//! the generations apart: the next operation rebuilds the published file
//! from `host.db` (and removes a leftover placeholder silently). Reads
//! count: a leftover placeholder stops every read-only guest (a hot journal
//! it may not roll back), so a host read that finds a journal beside
//! `inbound.db` first takes an empty write turn, which repairs the folder,
//! and a delivery pass stamps every session (`inbound_stamp`) even when it
//! finds nothing to do. The
//! header stays a rollback-journal one (bytes 18–19 = 1), the file stays in
//! `DELETE` mode for every reader, and the host still opens, writes and
//! closes it per operation. SPEC's ordering rules are unchanged (next even
//! seq, retries return the stored seq, reused ids get derived ids,
//! attachments are staged and synced before the row commits).
//!
//! Why the published file needs no fsync: within one boot and one mount
//! every process and every guest (through the bind mount) reads the file
//! from the same page cache, and a killed process loses nothing it wrote;
//! only a power cut, a kernel crash or a file system that went away loses
//! unsynced pages, and each ends the boot or the mount. A record is
//! trusted only under the instance it names, so after any of them the next
//! operation rebuilds the file from `host.db`, whose commits do sync (a
//! guest starts only after `prepare_guest`, an operation). Where the
//! instance cannot be known (no boot id, a kernel before 6.8, whose mount
//! ids are reused) the record names none and every publish and rebuild
//! syncs the file (`synchronous=FULL`), as before. `cargo xtask faults
//! --scenario power-loss` replays each cut onto a fresh mount of the
//! image, so it checks this rule.
//!
//! ## Verify, then repair, never replay
//!
//! Before each host operation that writes, delivers or checks, the folder's
//! `inbound.db` is opened through the held folder handle
//! (`O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC`) and `fstat`ed: regular, same (dev,
//! inode) as the link, same size, ctime and change counter as the record;
//! `inbound.db-journal`, `-wal` and `-shm` must not exist (`fstatat`
//! without following; never opened by SQLite). Any difference is a
//! *tamper event*: the offending entry is moved into `quarantine/`
//! (`renameat`), then repaired: if the linked inode is intact it is linked
//! back (link to a temporary name, rename over `inbound.db`: O(1));
//! otherwise (edited in place, truncated, switched to WAL) a fresh file is
//! built from `host.db` in host state (synced where the record names no
//! instance), linked into the folder and
//! made the new link. Each event is logged (`tracing::warn!`), stored in
//! `host.db`, shown by [`HostMailbox::tamper_events`](crate::HostMailbox::tamper_events),
//! counted by `airlock show`, listed by `airlock doctor` (non-zero exit
//! until `airlock doctor --ack`).
//!
//! Residual: the guest can still edit the shared inode in place *during* a
//! host write. That only changes what the guest shows itself, never the
//! host's truth, and if the edit happened before the host's own last write
//! it keeps the host's ctime; [`HostMailbox::audit`](crate::HostMailbox::audit)
//! (run by `doctor`) compares every row with `host.db` to catch it.
//! Listings (`show`, `messages`) read `host.db` and never write `inbound.db`.
//!
//! ## Adoption
//!
//! A folder with an `inbound.db` but no `host.db` (earlier airlock versions,
//! a reference install) is adopted once: the file (only the main file; its
//! `-journal`/`-wal`/`-shm` are quarantined, never replayed) is copied into
//! host state, migrated there, its rows imported into `host.db` (the only
//! time the folder's content is trusted; logged), and the file itself is
//! hard-linked as the published copy without being written, so the guest
//! keeps reading the older shape until the first host write publishes a
//! rebuilt file of the current shape (`user_version` stamped). The files
//! of the previous design (`inbound.intent`, `inbound.counter`) are removed.
//!
//! ## Group commit
//!
//! Writes to one session that arrive while a commit is in flight go into the
//! next transaction together (`host_state::batch`): the first caller leads,
//! takes the file lock, verifies the folder, opens one `host.db`
//! transaction and takes every queued job (at most 256); each job runs on
//! its own caller's thread, in queue order, inside its own savepoint (one
//! job's error undoes only that job; retries and renames are decided in
//! queue order); the leader commits once, publishes once and wakes every
//! caller. Each waiting caller has its own condition variable, so a turn
//! wakes only the caller it concerns. Nobody returns before the transaction
//! holding its job is durable.
//! [`HostMailbox::write_messages`](crate::HostMailbox::write_messages) is
//! the explicit batch (all or nothing). Host processes still serialise on
//! the `flock`.

//! # Host-originated messages
//!
//! A message the host sends itself (e.g. a denial) is stored with
//! [`HostMailbox::write_host_message`](crate::HostMailbox::write_host_message)
//! in `host.db` and published in `inbound.db`: a `messages_in` row with an even
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
//! [`Error::GuestMayBeRunning`](crate::Error::GuestMayBeRunning) (core's
//! `Error::GuestBusy` at the seam, which the delivery engine counts as a
//! busy session, not a failure): recover once the guest is stopped.
//!
//! # Migrations
//!
//! Each file is stamped `PRAGMA user_version = 1` once up to date. The guest
//! migrates `outbound.db` on open (missing columns added, missing tables
//! created); the host migrates an adopted `inbound.db` in its private copy
//! (backfilling `series_id = id`) and publishes the current shape with its
//! first write. The guest reads an un-migrated `inbound.db` by selecting
//! defaults for missing columns.
//!
//! # Tests and their knobs
//!
//! `tests/it/mailbox_*.rs` run on tmpfs (`/dev/shm`) when present, because the
//! properties they check do not depend on fsync; `AIRLOCK_TEST_ON_DISK=1`
//! runs them on the default temp dir. Heavier runs:
//! `AIRLOCK_CRASH_TRIALS` (SIGKILL trials, default 200),
//! `AIRLOCK_MAILBOX_WRITES` (writes per task in the 16-task + second-process
//! test, default 500), `AIRLOCK_MAILBOX_EXCHANGE` (messages in the two-process
//! exchange, default 500), `AIRLOCK_RACE_SECS` (the journal-planting loop,
//! default 10 s), `AIRLOCK_TAMPER_CASES` (malicious-guest property cases,
//! default 12), `AIRLOCK_GROUP_WRITES` (writes per thread in the group-commit
//! test, default 40).
