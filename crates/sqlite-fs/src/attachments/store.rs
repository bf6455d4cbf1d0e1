//! `FsAttachmentStore`: the async [`AttachmentStore`] over session folders,
//! running the blocking file work on tokio's blocking pool.

use std::path::PathBuf;

use airlock_core::{
    AttachmentStore, Error, ExtractedContent, MessageId, OutboxFile, Result, SessionRef,
};
use async_trait::async_trait;

use super::confined::ConfinedDir;
use super::inbound::InboundExtractor;
use super::limits::AttachmentLimits;
use super::outbox::{clear_outbox_in, read_outbox_files_in};

/// Attachment files under `<sessions_root>/<agent_group>/<session>/`.
#[derive(Debug, Clone)]
pub struct FsAttachmentStore {
    sessions_root: PathBuf,
    extractor: InboundExtractor,
}

impl FsAttachmentStore {
    /// A store over `sessions_root` with `limits`.
    pub fn new(sessions_root: impl Into<PathBuf>, limits: AttachmentLimits) -> Self {
        Self {
            sessions_root: sessions_root.into(),
            extractor: InboundExtractor::new(limits),
        }
    }

    /// The same store with another inbound extractor (e.g. a test clock).
    pub fn with_extractor(mut self, extractor: InboundExtractor) -> Self {
        self.extractor = extractor;
        self
    }

    /// The sessions root.
    pub fn sessions_root(&self) -> &std::path::Path {
        &self.sessions_root
    }

    /// Runs `work` on the blocking pool with the session folder opened
    /// beneath the root (the two ids resolved without following symlinks).
    async fn on_session<T: Send + 'static>(
        &self,
        session: &SessionRef,
        work: impl FnOnce(&ConfinedDir, &InboundExtractor) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let root = self.sessions_root.clone();
        let session = session.clone();
        let extractor = self.extractor.clone();
        tokio::task::spawn_blocking(move || {
            let dir = ConfinedDir::open_session(&root, &session.agent_group, &session.session)
                .map_err(|e| {
                    Error::io(
                        root.join(session.agent_group.as_str())
                            .join(session.session.as_str()),
                        e,
                    )
                })?;
            work(&dir, &extractor)
        })
        .await
        .map_err(|e| Error::backend("fs", "running an attachment task", e))?
    }
}

#[async_trait]
impl AttachmentStore for FsAttachmentStore {
    async fn extract_inbound(
        &self,
        session: &SessionRef,
        message_id: &MessageId,
        content: &str,
    ) -> Result<ExtractedContent> {
        // Plain messages (the common case) cost no thread hop and no syscall.
        if !super::inbound::has_data_entries(content) {
            return Ok(ExtractedContent {
                content: content.to_owned(),
                attachments: Vec::new(),
            });
        }
        let message_id = message_id.clone();
        let content = content.to_owned();
        self.on_session(session, move |dir, extractor| {
            extractor.prepare_in(dir, &message_id, &content)
        })
        .await
    }

    async fn read_outbox_files(
        &self,
        session: &SessionRef,
        message_id: &MessageId,
        names: &[String],
    ) -> Result<Vec<OutboxFile>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let message_id = message_id.clone();
        let names = names.to_vec();
        self.on_session(session, move |dir, extractor| {
            Ok(read_outbox_files_in(
                dir,
                &message_id,
                &names,
                extractor.limits(),
            ))
        })
        .await
    }

    async fn clear_outbox(&self, session: &SessionRef, message_id: &MessageId) {
        let message_id = message_id.clone();
        let result = self
            .on_session(session, move |dir, _| Ok(clear_outbox_in(dir, &message_id)))
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "outbox not cleared");
        }
    }
}
