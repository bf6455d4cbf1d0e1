//! Opening what a command needs: the registry and the session manager.

use std::sync::Arc;

use airlock_core::{Error, Result, SessionStore};
use airlock_sqlite_fs::SqliteSessionStore;

use super::settings::{RegistryLocation, Settings};
use crate::{ManagerConfig, SessionManager};

/// Reads a file named by a flag (`--attach`, `--file`, `--content-file`)
/// without ever blocking: a FIFO, socket or device is refused at once, and
/// a file over the attachment size cap is refused before it is read.
pub fn read_input(path: &std::path::Path, flag: &str) -> Result<Vec<u8>> {
    let limit = airlock_sqlite_fs::attachments::AttachmentLimits::default().max_file_bytes;
    airlock_sqlite_fs::attachments::open_named_file(path)
        .and_then(|file| file.read_capped(limit))
        .map_err(|e| Error::InvalidInput(format!("cannot read {flag} {e}")))
}

/// Opens the registry named by the settings.
pub async fn open_registry(settings: &Settings) -> Result<Arc<dyn SessionStore>> {
    match &settings.registry {
        RegistryLocation::Sqlite(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            let store = SqliteSessionStore::open_file(path)
                .map_err(|e| Error::backend("sqlite", "opening the registry", e))?;
            Ok(Arc::new(store))
        }
        RegistryLocation::Postgres(url) => Ok(Arc::new(open_postgres(url).await?)),
    }
}

/// Opens the PostgreSQL registry at `url` (settings in its query).
pub async fn open_postgres(url: &str) -> Result<airlock_postgres::PgSessionStore> {
    airlock_postgres::PgSessionStore::connect(url)
        .await
        .map_err(|e| Error::backend("postgres", "connecting to the registry", e))
}

/// The session manager over the settings' registry and data dir; with
/// `--host-id` on PostgreSQL, messages for other hosts' sessions are routed.
pub async fn manager(settings: &Settings) -> Result<SessionManager> {
    let mut config = ManagerConfig::new(&settings.data_dir);
    config.host_id = settings.host_id.clone();
    if let (RegistryLocation::Postgres(url), Some(host)) = (&settings.registry, &settings.host_id) {
        let pg = open_postgres(url).await?;
        let router = crate::routing::pg::PgRouter::new(pg.route_queue(), host.clone());
        return Ok(SessionManager::new(Arc::new(pg), config).with_router(Arc::new(router)));
    }
    Ok(SessionManager::new(open_registry(settings).await?, config))
}

/// The delivery engine over the settings' registry and data dir.
pub async fn deliverer(
    settings: &Settings,
    adapter: Arc<crate::delivery::DynChannelAdapter>,
) -> Result<crate::Deliverer> {
    crate::Deliverer::builder(manager(settings).await?, adapter).build()
}
