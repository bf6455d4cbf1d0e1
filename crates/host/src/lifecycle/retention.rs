//! Retention: archive a session, prune archived sessions older than a
//! cutoff, and measure disk usage.
//!
//! A prune removes three things that must go together: the registry row,
//! the session folder and the session's host state. It is crash-safe by an
//! intent file per session in `host-state/prune/`, written (synced) before
//! anything is removed and deleted after everything is: every step is
//! idempotent, and each prune run first finishes the intents a killed run
//! left. So a prune killed anywhere is finished by the next run, and never
//! leaves a registry row without its folder or a folder without its row
//! once that run is over. `--dry-run` lists exactly those sessions (the
//! unfinished ones included) and their bytes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use airlock_core::{
    AgentGroupId, Error, Result, Session, SessionFilter, SessionId, SessionStatus, SessionStoreExt,
    Timestamp,
};
use serde::{Deserialize, Serialize};

use crate::SessionManager;

/// Whether `session` may be pruned at `cutoff`: archived, and last active
/// (or, never active, created) before the cutoff. Active sessions never are.
pub fn is_prunable(session: &Session, cutoff: Timestamp) -> bool {
    session.status == SessionStatus::Archived
        && session.last_active.unwrap_or(session.created_at) < cutoff
}

/// One session a prune removes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneItem {
    /// The session.
    pub session: SessionId,
    /// Its agent group.
    pub agent_group: AgentGroupId,
    /// Its folder under the sessions root.
    pub folder: PathBuf,
    /// Its host-only state.
    pub host_state: PathBuf,
    /// Bytes of both (regular files, symlinks not followed).
    pub bytes: u64,
    /// A prune that was killed had started on it.
    pub resumed: bool,
}

/// Disk usage of one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionUsage {
    /// The session.
    pub session: SessionId,
    /// Its agent group.
    pub agent_group: AgentGroupId,
    /// `active` or `archived`.
    pub status: SessionStatus,
    /// Bytes of its folder.
    pub folder_bytes: u64,
    /// Bytes of its host state.
    pub host_state_bytes: u64,
}

/// Disk usage per session and per agent group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Every session, registry order.
    pub sessions: Vec<SessionUsage>,
    /// Folder plus host-state bytes per agent group.
    pub agent_groups: BTreeMap<String, u64>,
}

/// Bytes of regular files under `path`, symlinks not followed; a missing
/// path is 0 (a guest may remove files while this runs).
pub fn tree_bytes(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_file() {
        return meta.len();
    }
    if !meta.is_dir() {
        return 0;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| tree_bytes(&e.path()))
        .fold(0u64, u64::saturating_add)
}

/// Archives, prunes and measures the sessions of a [`SessionManager`].
#[derive(Debug, Clone)]
pub struct Retention {
    manager: SessionManager,
}

/// The test hook of [`Retention::prune_killed_after`]: stop after this many steps.
type Budget = Option<usize>;

fn take_step(budget: &mut Budget) -> Result<()> {
    match budget {
        Some(0) => Err(Error::backend(
            "prune",
            "stopping",
            std::io::Error::other("killed"),
        )),
        Some(n) => {
            *n -= 1;
            Ok(())
        }
        None => Ok(()),
    }
}

fn not_found_ok(path: &Path, r: std::io::Result<()>) -> Result<()> {
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}

impl Retention {
    /// Retention over `manager`'s registry and folders.
    pub fn new(manager: SessionManager) -> Self {
        Self { manager }
    }

    fn intents_dir(&self) -> PathBuf {
        self.manager.state_dir().join("prune")
    }

    /// Sets `status='archived'`: never resolved again, prunable later.
    pub async fn archive(&self, id: &SessionId) -> Result<Session> {
        self.manager.store().archive_session(id).await
    }

    fn item(&self, session: &Session, resumed: bool) -> PruneItem {
        let folder = self.manager.session_dir(session);
        let host_state = self
            .manager
            .mailbox(session)
            .host_state()
            .dir()
            .to_path_buf();
        PruneItem {
            session: session.id.clone(),
            agent_group: session.agent_group_id.clone(),
            bytes: tree_bytes(&folder).saturating_add(tree_bytes(&host_state)),
            folder,
            host_state,
            resumed,
        }
    }

    /// Intents a killed prune left, oldest name first.
    fn pending(&self) -> Result<Vec<PruneItem>> {
        let dir = self.intents_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "intent"))
            .collect();
        paths.sort();
        let mut items = Vec::new();
        for path in paths {
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            // Written whole and renamed into place, so unreadable means not ours.
            let Ok(mut item) = serde_json::from_slice::<PruneItem>(&bytes) else {
                tracing::warn!(path = %path.display(), "ignoring an unreadable prune intent");
                continue;
            };
            let roots = self.manager.roots();
            if !item.folder.starts_with(roots.sessions().path())
                || !item.host_state.starts_with(roots.host_state().path())
            {
                tracing::warn!(path = %path.display(), "ignoring a prune intent that names paths outside the roots");
                continue;
            }
            item.bytes = tree_bytes(&item.folder).saturating_add(tree_bytes(&item.host_state));
            item.resumed = true;
            items.push(item);
        }
        Ok(items)
    }

    /// What `prune(cutoff)` would remove now: unfinished prunes first, then
    /// archived sessions older than `cutoff`. Changes nothing.
    pub async fn plan(&self, cutoff: Timestamp) -> Result<Vec<PruneItem>> {
        let mut items = self.pending()?;
        let filter = SessionFilter {
            status: Some(SessionStatus::Archived),
            ..SessionFilter::default()
        };
        for session in self.manager.store().list_sessions(filter).await? {
            if is_prunable(&session, cutoff) && !items.iter().any(|i| i.session == session.id) {
                items.push(self.item(&session, false));
            }
        }
        Ok(items)
    }

    /// Removes what [`plan`](Self::plan) lists; returns it.
    pub async fn prune(&self, cutoff: Timestamp) -> Result<Vec<PruneItem>> {
        self.prune_with(cutoff, None, &|_, _| {}).await
    }

    /// [`prune`](Self::prune), calling `progress(removed, total)` once the
    /// plan is made and after each session it removes.
    pub async fn prune_with_progress(
        &self,
        cutoff: Timestamp,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<Vec<PruneItem>> {
        self.prune_with(cutoff, None, progress).await
    }

    /// [`prune`](Self::prune) stopped after `steps` steps, as a kill would
    /// stop it (feature `testing`).
    #[cfg(any(test, feature = "testing"))]
    pub async fn prune_killed_after(
        &self,
        cutoff: Timestamp,
        steps: usize,
    ) -> Result<Vec<PruneItem>> {
        self.prune_with(cutoff, Some(steps), &|_, _| {}).await
    }

    async fn prune_with(
        &self,
        cutoff: Timestamp,
        mut budget: Budget,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<Vec<PruneItem>> {
        let items = self.plan(cutoff).await?;
        progress(0, items.len());
        for (done, item) in items.iter().enumerate() {
            self.remove(item, &mut budget).await?;
            progress(done + 1, items.len());
        }
        Ok(items)
    }

    async fn remove(&self, item: &PruneItem, budget: &mut Budget) -> Result<()> {
        let intent = self.intents_dir().join(format!("{}.intent", item.session));
        if !item.resumed {
            take_step(budget)?;
            self.write_intent(&intent, item)?;
        }
        take_step(budget)?;
        match self.manager.store().delete_session(&item.session).await {
            Err(Error::NotFound { .. }) | Ok(()) => {}
            Err(e) => return Err(e),
        }
        take_step(budget)?;
        not_found_ok(&item.folder, std::fs::remove_dir_all(&item.folder))?;
        take_step(budget)?;
        not_found_ok(&item.host_state, std::fs::remove_dir_all(&item.host_state))?;
        take_step(budget)?;
        not_found_ok(&intent, std::fs::remove_file(&intent))?;
        tracing::info!(session = %item.session, bytes = item.bytes, "pruned");
        Ok(())
    }

    fn write_intent(&self, intent: &Path, item: &PruneItem) -> Result<()> {
        let dir = self.intents_dir();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let staged = intent.with_extension("staged");
        let body = serde_json::to_vec(item)
            .map_err(|e| Error::backend("prune", "encoding an intent", e))?;
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&staged)?;
            f.write_all(&body)?;
            f.sync_all()?;
            std::fs::rename(&staged, intent)?;
            std::fs::File::open(&dir)?.sync_all()
        };
        write().map_err(|e| Error::io(intent, e))
    }

    /// Disk usage of every session, and per agent group.
    pub async fn usage(&self) -> Result<Usage> {
        let mut usage = Usage::default();
        for session in self
            .manager
            .store()
            .list_sessions(SessionFilter::default())
            .await?
        {
            let item = self.item(&session, false);
            let folder_bytes = tree_bytes(&item.folder);
            let host_state_bytes = tree_bytes(&item.host_state);
            *usage
                .agent_groups
                .entry(session.agent_group_id.to_string())
                .or_default() += folder_bytes.saturating_add(host_state_bytes);
            usage.sessions.push(SessionUsage {
                session: session.id,
                agent_group: session.agent_group_id,
                status: session.status,
                folder_bytes,
                host_state_bytes,
            });
        }
        Ok(usage)
    }
}
