//! `airlock deliver`: runs the delivery engine with the stdout channel (one
//! JSON line per message, files inline in base64), once or until Ctrl-C.

use std::sync::Arc;

use airlock_core::{Error, Result, SessionId};
use async_trait::async_trait;
use indicatif::ProgressBar;

use crate::Deliverer;
use crate::cli::context;
use crate::cli::progress::{self, Stdout};
use crate::cli::settings::Settings;
use crate::delivery::{
    ChannelAdapter, Delivery, DeliveryError, DynChannelAdapter, PassReport, Scope, StdoutAdapter,
};

/// The stdout channel, counting each line its reader took, so a person
/// waiting for a backlog to drain sees it move.
#[derive(Debug)]
struct Counted {
    inner: StdoutAdapter,
    delivered: ProgressBar,
}

#[async_trait]
impl ChannelAdapter for Counted {
    async fn deliver(&self, delivery: &Delivery) -> std::result::Result<String, DeliveryError> {
        let sent = self.inner.deliver(delivery).await;
        if sent.is_ok() {
            self.delivered.inc(1);
        }
        sent
    }
}

/// Runs `deliver`.
pub async fn run(settings: &Settings, only: Option<&SessionId>, once: bool) -> Result<()> {
    if once {
        let delivered = progress::counter(settings, Stdout::Data, "messages delivered");
        let adapter = Counted {
            inner: StdoutAdapter::new(),
            delivered: delivered.clone(),
        };
        let drained = drain(&open(settings, only, Arc::new(adapter)).await?, only).await;
        delivered.finish_and_clear();
        return drained;
    }
    let deliverer = open(settings, only, Arc::new(StdoutAdapter::new())).await?;
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    deliverer.run_on(only.cloned(), shutdown).await;
    Ok(())
}

/// The engine over `adapter`; an unknown `only` session is an error, not a
/// silent empty loop.
async fn open(
    settings: &Settings,
    only: Option<&SessionId>,
    adapter: Arc<DynChannelAdapter>,
) -> Result<Deliverer> {
    let deliverer = context::deliverer(settings, adapter).await?;
    if let Some(id) = only {
        context::open_registry(settings)
            .await?
            .session(id)
            .await
            .map(drop)?;
    }
    Ok(deliverer)
}

/// `deliver --once`: passes until nothing due is left or one fails.
async fn drain(deliverer: &Deliverer, only: Option<&SessionId>) -> Result<()> {
    let scope = only.map_or(Scope::Active, |id| Scope::Session(id.clone()));
    // A backlog larger than one pass's time budget takes several passes,
    // and a guest caught mid-write is read again a moment later.
    let mut busy_retries = 0;
    loop {
        let report = deliverer.deliver_now(scope.clone()).await?;
        let only_guest_busy = report.guest_busy > 0
            && report.errors.is_empty()
            && report.retrying == 0
            && report.dead_lettered == 0;
        if only_guest_busy && busy_retries < GUEST_BUSY_RETRIES {
            busy_retries += 1;
            tokio::time::sleep(GUEST_BUSY_PAUSE).await;
            continue;
        }
        if report.unfinished == 0 || !report.is_clean() {
            return summarise(&report);
        }
    }
}

/// How often `--once` reads again a session whose guest was mid-write.
const GUEST_BUSY_RETRIES: u32 = 20;
/// The pause before each of those reads.
const GUEST_BUSY_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// `Ok` when everything due was delivered; otherwise one line saying what
/// is left (the messages stay due, or are listed by `airlock failures`).
fn summarise(report: &PassReport) -> Result<()> {
    if report.is_clean() {
        return Ok(());
    }
    let mut parts = Vec::new();
    if report.retrying > 0 {
        parts.push(format!(
            "{} message(s) not delivered and still due",
            report.retrying
        ));
    }
    if report.dead_lettered > 0 {
        parts.push(format!(
            "{} message(s) dead-lettered (see `airlock failures`)",
            report.dead_lettered
        ));
    }
    if report.guest_busy > 0 {
        parts.push(format!(
            "{} session(s) not read: the guest was writing its mailbox (a later pass delivers them)",
            report.guest_busy
        ));
    }
    if let Some(first) = report.errors.first() {
        parts.push(format!(
            "{} session(s) failed, first {}: {}",
            report.errors.len(),
            first.session,
            first.error
        ));
    }
    Err(Error::Conflict(parts.join("; ")))
}
