//! Opening what a command needs: the registry and the session manager.

use std::path::PathBuf;
use std::sync::Arc;

use airlock_core::{Error, Result, SessionStore};
use airlock_sqlite_fs::SqliteSessionStore;

use super::settings::{Command, RegistryLocation, Settings};
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

/// Checks that the data dir (and a SQLite registry) a command reads exist,
/// or creates the data dir for a command that creates sessions. Returns
/// the data dir when this call created it, so the command can say where.
pub fn prepare_data_dir(settings: &Settings) -> Result<Option<PathBuf>> {
    if !settings.command.uses_data_dir() {
        return Ok(None);
    }
    // An import's dry run reports what it would adopt into a data dir and
    // registry as they are, missing ones included, and creates neither.
    if matches!(settings.command, Command::Import { dry_run: true, .. }) {
        return Ok(None);
    }
    // `migrate` touches only the registry: a PostgreSQL one needs no data dir.
    if matches!(settings.command, Command::Migrate { .. })
        && matches!(settings.registry, RegistryLocation::Postgres(_))
    {
        return Ok(None);
    }
    let dir = &settings.data_dir;
    let creates = settings.command.creates_data_dir();
    let mut created = None;
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Error::InvalidInput(format!(
                "data dir {} is not a directory",
                dir.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && creates => {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            created = Some(dir.clone());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::InvalidInput(format!(
                "data dir {} does not exist (check --data-dir or AIRLOCK_DATA_DIR; \
                 only resolve, import, demo and run create one)",
                dir.display()
            )));
        }
        Err(e) => return Err(Error::io(dir, e)),
    }
    if let RegistryLocation::Sqlite(path) = &settings.registry
        && !creates
        && !path.is_file()
    {
        return Err(Error::InvalidInput(format!(
            "no registry at {} (check --data-dir or --registry; only resolve, import, \
             demo and run create one)",
            path.display()
        )));
    }
    Ok(created)
}

/// Opens the registry named by the settings.
pub async fn open_registry(settings: &Settings) -> Result<Arc<dyn SessionStore>> {
    match &settings.registry {
        RegistryLocation::Sqlite(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            let store = SqliteSessionStore::open_file(path).map_err(|e| e.into_core())?;
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
    if let Some((manager, _)) = routing_manager(settings).await? {
        return Ok(manager);
    }
    let mut config = ManagerConfig::new(&settings.data_dir);
    config.host_id = settings.host_id.clone();
    Ok(SessionManager::new(open_registry(settings).await?, config))
}

/// With `--host-id` on a PostgreSQL registry: the routing manager and its
/// registry (whose routing queue the caller may use); else `None`.
pub async fn routing_manager(
    settings: &Settings,
) -> Result<Option<(SessionManager, airlock_postgres::PgSessionStore)>> {
    let (RegistryLocation::Postgres(url), Some(host)) = (&settings.registry, &settings.host_id)
    else {
        return Ok(None);
    };
    let mut config = ManagerConfig::new(&settings.data_dir);
    config.host_id = Some(host.clone());
    let pg = open_postgres(url).await?;
    let router = crate::routing::pg::PgRouter::new(pg.route_queue(), host.clone());
    let manager = SessionManager::new(Arc::new(pg.clone()), config).with_router(Arc::new(router));
    Ok(Some((manager, pg)))
}

/// The delivery engine over the settings' registry and data dir.
pub async fn deliverer(
    settings: &Settings,
    adapter: Arc<crate::delivery::DynChannelAdapter>,
) -> Result<crate::Deliverer> {
    crate::Deliverer::builder(manager(settings).await?, adapter).build()
}
