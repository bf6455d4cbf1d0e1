//! The only way the host touches `inbound.db`: a connection that lives for
//! one closure call, under the session lock, after the journal was vetted.

use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::journal::{
    QuarantinedJournal, finish_intent, intent_pending, vet_inbound_journal, write_intent,
};
use super::lock::SessionLock;
use crate::error::{Error, Result};
use crate::layout::{HostSessionState, SessionPaths};
use crate::schema::{INBOUND_VERSION, migrate_inbound};
use crate::sqlite_util::{
    FileState, JournalKind, OpenMode, check_regular_or_absent, open_file, read_header,
};

/// Host writers wait this long for a guest reader's shared lock.
const HOST_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// An open `inbound.db` inside one host operation. Never leaves the closure.
pub(crate) struct InboundConn<'a> {
    conn: Connection,
    paths: &'a SessionPaths,
    state: &'a HostSessionState,
    intent: bool,
}

impl InboundConn<'_> {
    /// The connection, for reads.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction, with the intent marker written first.
    pub(crate) fn write<T>(
        &mut self,
        context: &str,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        self.mark_intent()?;
        let path = self.paths.inbound_db();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| Error::sqlite(&path, context, e))?;
        let value = f(&tx).map_err(|e| Error::sqlite(&path, context, e))?;
        tx.commit().map_err(|e| Error::sqlite(&path, context, e))?;
        Ok(value)
    }

    /// The `inbound.db` path, for error context.
    pub(crate) fn path(&self) -> std::path::PathBuf {
        self.paths.inbound_db()
    }

    /// Before every write transaction: the marker must carry the counter
    /// the file has when this transaction begins.
    fn mark_intent(&mut self) -> Result<()> {
        write_intent(self.paths, self.state)?;
        self.intent = true;
        Ok(())
    }
}

/// Opens `inbound.db` for one operation and closes it before returning.
///
/// Under the session lock: a foreign journal is quarantined first, a WAL
/// file is converted to `DELETE`, an old file is migrated; then `f` runs.
pub(crate) fn with_inbound<T>(
    paths: &SessionPaths,
    state: &HostSessionState,
    f: impl FnOnce(&mut InboundConn<'_>) -> Result<T>,
) -> Result<(T, Option<QuarantinedJournal>)> {
    let _lock = SessionLock::acquire(state)?;
    let quarantined = vet_inbound_journal(paths, state)?;
    let path = paths.inbound_db();
    match check_regular_or_absent(&path)? {
        FileState::Absent => return Err(Error::Missing { path }),
        FileState::Regular(_) => {}
    }
    let header = read_header(&path).map_err(|e| Error::io(&path, e))?;
    let conn = open_file(&path, OpenMode::ReadWrite, HOST_BUSY_TIMEOUT)
        .map_err(|e| Error::sqlite(&path, "opening inbound.db", e))?;
    let mut inbound = InboundConn {
        conn,
        paths,
        state,
        intent: false,
    };
    let result = prepare(&mut inbound, header.map(|h| h.journal)).and_then(|()| f(&mut inbound));
    let had_intent = inbound.intent || intent_pending(state);
    let closed = inbound
        .conn
        .close()
        .map_err(|(_, e)| Error::sqlite(&path, "closing inbound.db", e));
    if had_intent && closed.is_ok() {
        finish_intent(paths, state)?;
    }
    let value = result?;
    closed?;
    Ok((value, quarantined))
}

fn prepare(inbound: &mut InboundConn<'_>, journal: Option<JournalKind>) -> Result<()> {
    let path = inbound.path();
    if journal == Some(JournalKind::Wal) {
        inbound.mark_intent()?;
        let mode: String = inbound
            .conn
            .pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get(0))
            .map_err(|e| Error::sqlite(&path, "converting inbound.db from WAL to DELETE", e))?;
        tracing::warn!(path = %path.display(), now = %mode, "inbound.db was in WAL mode; converted to DELETE");
    }
    let mode: String = inbound
        .conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .map_err(|e| Error::sqlite(&path, "reading journal_mode", e))?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(Error::WrongJournalMode {
            path,
            mode,
            why: "the host could not convert it to DELETE; WAL is not coherent across guest mounts",
        });
    }
    let version: i64 = inbound
        .conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| Error::sqlite(&path, "reading user_version", e))?;
    if version < INBOUND_VERSION {
        inbound.mark_intent()?;
        if migrate_inbound(&mut inbound.conn)
            .map_err(|e| Error::sqlite(&path, "migrating inbound.db", e))?
        {
            tracing::info!(path = %path.display(), from = version, "migrated inbound.db");
        }
    }
    Ok(())
}
