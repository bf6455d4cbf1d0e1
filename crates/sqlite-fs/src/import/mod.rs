//! Adopting an existing reference install (nanoclaw v2) in place.
//!
//! [`import_reference`] reads the reference's central registry
//! (`<data dir>/v2.db`) read-only and registers its messaging groups and
//! sessions in any airlock [`SessionStore`], keeping each session's id, so
//! its folder `v2-sessions/<agent group>/<session>/` opens in place. It is
//! idempotent (what is registered already is left as it is), never creates
//! a second session for a chat, and reports what it did or, with
//! [`ImportOptions::dry_run`], what it would do.
//!
//! The steps: [`reference`] reads the rows, [`plan`] decides what they mean
//! in airlock (pure), this module applies the plan to the store.

pub mod plan;
pub mod reference;
pub mod report;

use std::path::PathBuf;

use airlock_core::{
    Error, MessagingGroupId, NewMessagingGroup, SessionFilter, SessionRef, SessionStore,
    SessionStoreExt,
};

pub use reference::{REFERENCE_REGISTRY_FILE, ReferenceRegistry, read_reference};
pub use report::{Action, GroupOutcome, ImportReport, SessionOutcome};

use crate::layout::SessionsRoot;
use plan::PlannedSession;

/// Why a reference install could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The data dir has no `v2.db`.
    #[error("no reference registry at {}: point --from at the reference's data dir (the folder holding v2.db and v2-sessions/)", path.display())]
    NoRegistry {
        /// The path looked at.
        path: PathBuf,
    },
    /// `v2.db` lacks a table every reference registry has.
    #[error("{} is not a reference registry: it has no {missing} table", path.display())]
    NotReference {
        /// The file.
        path: PathBuf,
        /// The missing table.
        missing: &'static str,
    },
    /// SQLite could not read the file.
    #[error("reading the reference registry {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
}

impl From<ImportError> for Error {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Read { .. } => {
                Error::backend("sqlite", "importing a reference install", e)
            }
            other => Error::InvalidInput(other.to_string()),
        }
    }
}

/// How to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// The reference's data dir (holding `v2.db`).
    pub from: PathBuf,
    /// airlock's sessions root; a session is adopted only if its folder is there.
    pub sessions_root: SessionsRoot,
    /// Report what would be done, write nothing.
    pub dry_run: bool,
}

/// Imports the reference install at `options.from` into `store`.
pub async fn import_reference(
    store: &dyn SessionStore,
    options: &ImportOptions,
) -> airlock_core::Result<ImportReport> {
    import_reference_with_progress(store, options, &|_, _| {}).await
}

/// [`import_reference`], calling `progress(done, total)` after each chat
/// and session it handles (`total` is known once the reference is read).
pub async fn import_reference_with_progress(
    store: &dyn SessionStore,
    options: &ImportOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> airlock_core::Result<ImportReport> {
    let from = options.from.clone();
    let reference = tokio::task::spawn_blocking(move || read_reference(&from))
        .await
        .map_err(|e| Error::backend("sqlite", "reading a reference registry", e))??;
    let plan = plan::plan(&reference);
    let mut report = ImportReport {
        source: options.from.join(REFERENCE_REGISTRY_FILE),
        dry_run: options.dry_run,
        agent_groups: reference.agent_groups.len(),
        messaging_groups: Vec::new(),
        sessions: plan.skipped.clone(),
        notes: plan.notes.clone(),
    };
    let total = plan.groups.len() + plan.sessions.len();
    let mut done = 0;
    progress(done, total);
    let mut group_ids = Vec::new();
    for new in &plan.groups {
        let (id, action) = apply_group(store, new, options.dry_run).await?;
        report.messaging_groups.push(GroupOutcome {
            channel_type: new.channel_type.clone(),
            platform_id: new.platform_id.clone(),
            id: id.as_ref().map(ToString::to_string),
            action,
        });
        group_ids.push(id);
        done += 1;
        progress(done, total);
    }
    for planned in plan.sessions {
        // In a dry run a group not yet registered has no id; no session can hold it.
        let chat = planned.chat.and_then(|i| group_ids[i].clone());
        let outcome = apply_session(store, options, planned, chat).await?;
        report.sessions.push(outcome);
        done += 1;
        progress(done, total);
    }
    report.sessions.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(report)
}

async fn apply_group(
    store: &dyn SessionStore,
    new: &NewMessagingGroup,
    dry_run: bool,
) -> airlock_core::Result<(Option<MessagingGroupId>, Action)> {
    if let Some(found) = store
        .find_messaging_group(&new.channel_type, &new.platform_id)
        .await?
    {
        return Ok((Some(found.id), Action::Unchanged));
    }
    if dry_run {
        return Ok((None, Action::WouldAdopt));
    }
    let group = store.ensure_messaging_group(new.clone()).await?;
    Ok((Some(group.id), Action::Adopted))
}

async fn apply_session(
    store: &dyn SessionStore,
    options: &ImportOptions,
    planned: PlannedSession,
    chat: Option<MessagingGroupId>,
) -> airlock_core::Result<SessionOutcome> {
    let mut session = planned.session;
    session.messaging_group_id = chat;
    let mut outcome = SessionOutcome {
        id: session.id.to_string(),
        agent_group: session.agent_group_id.to_string(),
        mode: Some(session.mode),
        action: Action::Unchanged,
        detail: None,
    };
    match store.session(&session.id).await {
        Ok(_) => return Ok(outcome),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e),
    }
    let folder = options.sessions_root.session(&SessionRef::from(&session));
    if !folder.inbound_db().is_file() {
        outcome.action = Action::Skipped;
        outcome.detail = Some(format!(
            "its folder {} has no inbound.db; run the import with --data-dir set to the reference's \
             data dir, so that its folders open in place",
            folder.dir().display()
        ));
        return Ok(outcome);
    }
    if let Some(holder) = key_holder(store, &session).await? {
        outcome.action = Action::Conflict;
        outcome.detail = Some(format!(
            "session {holder} already holds this chat in airlock's registry"
        ));
        return Ok(outcome);
    }
    if options.dry_run {
        outcome.action = Action::WouldAdopt;
        return Ok(outcome);
    }
    match store.adopt_session(session.clone()).await {
        Ok(()) => outcome.action = Action::Adopted,
        Err(Error::Conflict(why)) => {
            outcome.action = Action::Conflict;
            outcome.detail = Some(why);
        }
        Err(e) => return Err(e),
    }
    Ok(outcome)
}

/// The active session that holds `session`'s resolution key, if another does.
async fn key_holder(
    store: &dyn SessionStore,
    session: &airlock_core::Session,
) -> airlock_core::Result<Option<airlock_core::SessionId>> {
    let Some(key) = session.resolution_key() else {
        return Ok(None);
    };
    if session.status != airlock_core::SessionStatus::Active {
        return Ok(None);
    }
    let mut filter = SessionFilter::agent_group(session.agent_group_id.clone());
    filter.status = Some(airlock_core::SessionStatus::Active);
    Ok(store
        .list_sessions(filter)
        .await?
        .into_iter()
        .find(|s| s.id != session.id && s.resolution_key().as_deref() == Some(key.as_str()))
        .map(|s| s.id))
}
