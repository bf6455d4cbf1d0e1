//! One sweep tick: for every active session, sessions in parallel on
//! [`crate::runner`] with a bound and failures isolated, apply the pure
//! decisions in an order that keeps the one-writer rule:
//!
//! 1. sync the guest's acks, and continue the series of each completed
//!    recurring message (next occurrence inserted, recurrence cleared, in
//!    one transaction);
//! 2. a running guest: observe it and enforce the stuck decision (kill);
//! 3. a guest the runtime no longer knows while the registry says it runs:
//!    mark it stopped, which recovers a hot journal in `outbound.db` (the
//!    runtime has said it is stopped), then requeue its leftover claims
//!    with backoff or fail them after the last try, with a `system` note;
//! 4. due work and no guest: delete a stale `.heartbeat`, then wake one.
//!
//! Claims are requeued once per stop (on the registry's running → stopped
//! change), because the dead guest's `processing` rows stay in
//! `outbound.db` (the host never writes it) until the next guest clears them.
//!
//! A whole tick first asks, for all sessions at once, which mailboxes are
//! quiet (`MailboxFactory::quiet_for_sweep`: step 1 and the due count would
//! find nothing) and which guests run (`ContainerRuntime::running_among`);
//! a quiet session listed stopped with no guest is done without a job, and
//! a quiet one with a job skips step 1. Both answers are read before the
//! session's job, like a stamp: a change after them is the next tick's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use airlock_core::mailbox::NewInboundMessage;
use airlock_core::{
    ContainerStatus, DynHostMailbox, Error, HostMailboxStore as _, MessageId, Result, SeriesNext,
    Session, SessionFilter, SessionId, SessionRef, Timestamp,
};
use chrono_tz::Tz;

use super::observed::{Observed, tool_timeout};
use super::recurrence::{Recur, next_occurrence};
use super::retry::{ClaimRetry, RetryDecision, decide_retry, failure_note};
use super::runtime::Runtime;
use super::stuck::{Stuck, StuckConfig};
use super::wake::{Wake, decide_wake};
use crate::runner::{JobOutcome, RunnerConfig, run_each};
use crate::{SessionHandle, SessionManager};

/// Limits of the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepConfig {
    /// The zone recurring messages' cron expressions are read in.
    pub zone: Tz,
    /// The stuck decision's limits.
    pub stuck: StuckConfig,
    /// Backoff and try limit of claims a stopped guest left.
    pub retry: ClaimRetry,
    /// Sessions swept at once, and the bound of one session's tick.
    pub runner: RunnerConfig,
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            zone: Tz::UTC,
            stuck: StuckConfig::default(),
            retry: ClaimRetry::default(),
            runner: RunnerConfig::default(),
        }
    }
}

/// What one session's tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Acks copied into `messages_in`.
    pub acks_synced: usize,
    /// Next occurrences of recurring messages inserted.
    pub recurred: Vec<String>,
    /// Series stopped because their expression could not be read.
    pub series_stopped: Vec<String>,
    /// The guest was killed, and why.
    pub killed: Option<Stuck>,
    /// The guest was found gone and its session marked stopped.
    pub stopped: bool,
    /// Claims put back to pending with backoff.
    pub requeued: Vec<String>,
    /// Claims failed for good (a `system` note was written for each).
    pub failed: Vec<String>,
    /// A guest was woken.
    pub woke: bool,
}

/// The sweep: decisions over a [`SessionManager`], acts through a [`Runtime`].
#[derive(Debug, Clone)]
pub struct Sweeper {
    manager: SessionManager,
    runtime: Runtime,
    config: SweepConfig,
    observed: Arc<Mutex<HashMap<SessionId, Observed>>>,
}

impl Sweeper {
    /// A sweeper over `manager`'s sessions.
    pub fn new(manager: SessionManager, runtime: Runtime, config: SweepConfig) -> Self {
        Self {
            manager,
            runtime,
            config,
            observed: Arc::default(),
        }
    }

    /// The manager swept.
    pub fn manager(&self) -> &SessionManager {
        &self.manager
    }

    /// The runtime acted through.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The limits in force.
    pub fn config(&self) -> &SweepConfig {
        &self.config
    }

    fn observed(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Observed>> {
        self.observed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One tick over every active session at `now`.
    pub async fn tick(
        &self,
        now: Timestamp,
    ) -> Result<Vec<(SessionId, JobOutcome<TickReport, Error>)>> {
        let sessions = self
            .manager
            .store()
            .list_sessions(SessionFilter::active())
            .await?;
        let (mut outcomes, jobs) = self.plan(sessions, now).await;
        let this = self.clone();
        let done = run_each(jobs, self.config.runner, move |(_, session, quiet)| {
            let this = this.clone();
            async move {
                let handle = this.manager.handle(session)?;
                this.tick_handle(handle, now, Row::Listed { quiet }).await
            }
        })
        .await;
        for ((index, _, _), outcome) in done {
            outcomes[index].1 = Some(outcome);
        }
        Ok(outcomes
            .into_iter()
            .filter_map(|(id, outcome)| outcome.map(|o| (id, o)))
            .collect())
    }

    /// Each listed session's outcome when it needs no job (a quiet session,
    /// listed stopped, without a guest), and the jobs of the others, with
    /// their place in the listing and whether their mailbox is quiet.
    async fn plan(&self, sessions: Vec<Session>, now: Timestamp) -> (Vec<Planned>, Vec<Job>) {
        let host = self.manager.host_id();
        let mine: Vec<bool> = sessions
            .iter()
            .map(|s| crate::routing::foreign_owner(s, host).is_none())
            .collect();
        // Sessions another host owns fail in their job, unread.
        let (refs, ids): (Vec<SessionRef>, Vec<SessionId>) = sessions
            .iter()
            .zip(&mine)
            .filter(|(_, mine)| **mine)
            .map(|(s, _)| (SessionRef::from(s), s.id.clone()))
            .unzip();
        let (quiet, running) = tokio::join!(
            self.manager.mailboxes().quiet_for_sweep(&refs, now),
            self.runtime.running_among(&ids)
        );
        let (mut quiet, mut running) = (quiet.into_iter(), running.map(Vec::into_iter));
        let (mut planned, mut jobs) = (Vec::with_capacity(sessions.len()), Vec::new());
        for (index, (session, mine)) in sessions.into_iter().zip(mine).enumerate() {
            let (quiet, running) = match mine {
                true => (
                    quiet.next().unwrap_or(false),
                    running.as_mut().and_then(Iterator::next),
                ),
                false => (false, None),
            };
            let stopped = session.container_status == ContainerStatus::Stopped;
            if quiet && stopped && running == Some(false) {
                planned.push((session.id, Some(JobOutcome::Done(TickReport::default()))));
            } else {
                planned.push((session.id.clone(), None));
                jobs.push((index, session, quiet));
            }
        }
        (planned, jobs)
    }

    /// One session's tick at `now`.
    pub async fn tick_session(&self, id: &SessionId, now: Timestamp) -> Result<TickReport> {
        let handle = self.manager.open(id).await?;
        self.tick_handle(handle, now, Row::Fresh).await
    }

    /// One session's tick over `handle`, whose registry row came from `row`.
    async fn tick_handle(
        &self,
        handle: SessionHandle,
        now: Timestamp,
        row: Row,
    ) -> Result<TickReport> {
        let quiet = matches!(row, Row::Listed { quiet: true });
        let id = &handle.session().id;
        let mailbox = handle.mailbox();
        let mut report = TickReport::default();
        if !quiet {
            report.acks_synced = mailbox.sync_acks().await?;
            self.continue_series(mailbox.as_ref(), now, &mut report)
                .await?;
        }
        let mut running = self.runtime.is_running(id).await.map_err(runtime_error)?;
        if running {
            let stuck = self.check_running(id, mailbox.as_ref(), now).await?;
            if stuck != Stuck::Ok {
                tracing::warn!(session = %id, verdict = ?stuck, "killing a stuck guest");
                self.runtime.kill(id).await.map_err(runtime_error)?;
                report.killed = Some(stuck);
                running = false;
            }
        }
        if !running {
            // A listed row decides only whether to look again: a session
            // marked running since the listing is handled by the next tick.
            if handle.session().container_status != ContainerStatus::Stopped {
                let fresh = self.reread(&handle, row).await?;
                if fresh.session().container_status != ContainerStatus::Stopped {
                    self.stopped(&fresh, now, &mut report).await?;
                }
            }
            // Requeued leftovers and failure notes are new rows to count.
            let nothing_due = quiet && !report.stopped;
            report.woke = !nothing_due && self.wake_if_due(&handle, now, row).await?;
        }
        Ok(report)
    }

    async fn continue_series(
        &self,
        mailbox: &DynHostMailbox,
        now: Timestamp,
        report: &mut TickReport,
    ) -> Result<()> {
        let zone = self.config.zone;
        for done in mailbox.completed_recurring().await? {
            match next_occurrence(&done, zone, now) {
                Recur::Once => {}
                Recur::Next(next) => {
                    let series = SeriesNext {
                        id: next.id.clone(),
                        process_after: next.process_after,
                        recurrence: next.recurrence.clone(),
                    };
                    if mailbox.continue_series(&done.id, series).await? {
                        report.recurred.push(next.id.to_string());
                    }
                }
                Recur::Stop(e) => {
                    // Reported once: the recurrence is cleared with it.
                    if mailbox.end_series(&done.id).await? {
                        tracing::warn!(message = %done.id, error = %e, "a recurring series stops");
                        report.series_stopped.push(done.id);
                    }
                }
            }
        }
        Ok(())
    }

    async fn check_running(
        &self,
        id: &SessionId,
        mailbox: &DynHostMailbox,
        now: Timestamp,
    ) -> Result<Stuck> {
        let beat = mailbox.last_heartbeat().await?;
        let claims = mailbox.processing_claims().await?;
        let state = mailbox.container_state().await?;
        let mut all = self.observed();
        // A guest found running that this host did not wake (after a
        // restart) is observed from now on.
        let seen = all
            .entry(id.clone())
            .or_insert_with(|| Observed::started_at(now));
        seen.observe(now, beat, &claims);
        Ok(seen.decide(&self.config.stuck, now, tool_timeout(state.as_ref())))
    }

    /// Marks the session stopped (recovering `outbound.db`) and requeues or
    /// fails the claims its guest left.
    pub(crate) async fn guest_gone(
        &self,
        id: &SessionId,
        now: Timestamp,
        report: &mut TickReport,
    ) -> Result<()> {
        let handle = self.manager.open(id).await?;
        self.stopped(&handle, now, report).await
    }

    async fn stopped(
        &self,
        handle: &SessionHandle,
        now: Timestamp,
        report: &mut TickReport,
    ) -> Result<()> {
        let id = &handle.session().id;
        self.observed().remove(id);
        self.manager.mark_stopped(handle).await?;
        report.stopped = true;
        let retry = self.config.retry;
        let (requeued, failed) = requeue_leftovers(handle.mailbox().as_ref(), &retry, now).await?;
        for f in &failed {
            self.write_failure_note(handle, f).await?;
        }
        report.requeued = requeued;
        report.failed = failed.into_iter().map(|f| f.message_id).collect();
        Ok(())
    }

    async fn write_failure_note(&self, handle: &SessionHandle, failed: &Failed) -> Result<()> {
        let Failed {
            message_id,
            seq,
            tries,
        } = failed;
        // One note per failed message (its seq is unique in the session): a
        // retried sweep writes the same id and content, stored once.
        let note_id = MessageId::new(format!("failed-{seq}"))?;
        let mut note = NewInboundMessage::new(note_id, "system", failure_note(message_id, *tries));
        note.trigger = false;
        tracing::warn!(session = %handle.session().id, message = %message_id, tries, "a message failed on every try");
        self.manager.write_to(handle, note).await.map(|_| ())
    }

    /// `handle` itself when its row is fresh, else the row read again.
    async fn reread(&self, handle: &SessionHandle, row: Row) -> Result<SessionHandle> {
        match row {
            Row::Fresh => Ok(handle.clone()),
            Row::Listed { .. } => self.manager.open(&handle.session().id).await,
        }
    }

    async fn wake_if_due(&self, handle: &SessionHandle, now: Timestamp, row: Row) -> Result<bool> {
        let due = handle.mailbox().count_due(now).await?;
        if due == 0 {
            return Ok(false);
        }
        let handle = self.reread(handle, row).await?;
        let mailbox = handle.mailbox();
        let present = mailbox.last_heartbeat().await?.is_some();
        let Wake::Start { remove_heartbeat } = decide_wake(due, false, present) else {
            return Ok(false);
        };
        if remove_heartbeat {
            mailbox.clear_heartbeat().await?;
        }
        let id = &handle.session().id;
        let launch = self.manager.prepare(&handle).await?;
        if let Err(e) = self.runtime.wake(&launch).await {
            self.manager.mark_container_stopped(id).await?;
            return Err(runtime_error(e));
        }
        self.observed()
            .insert(id.clone(), Observed::started_at(now));
        tracing::info!(session = %id, due, "woke a guest");
        Ok(true)
    }
}

/// A listed session and its outcome, once known.
type Planned = (SessionId, Option<JobOutcome<TickReport, Error>>);

/// A session's job in a tick: its place in the listing, its row, whether
/// its mailbox is quiet.
type Job = (usize, Session, bool);

/// Where a tick's registry row came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row {
    /// Read for this tick ([`Sweeper::tick_session`]).
    Fresh,
    /// From the tick's listing, which may be older than a change since: it
    /// decides only whether to look again. `quiet`: the mailbox said, just
    /// before, that its reads would find nothing
    /// (`MailboxFactory::quiet_for_sweep`), so they are skipped.
    Listed {
        /// The reads are skipped.
        quiet: bool,
    },
}

/// A message failed for good.
struct Failed {
    message_id: String,
    seq: i64,
    tries: i64,
}

/// Requeues or fails every message the stopped guest still held
/// `processing`; returns the requeued ids and the failed messages.
async fn requeue_leftovers(
    mailbox: &DynHostMailbox,
    retry: &ClaimRetry,
    now: Timestamp,
) -> Result<(Vec<String>, Vec<Failed>)> {
    let (mut requeued, mut failed) = (Vec::new(), Vec::new());
    for id in mailbox.processing_claims().await? {
        let Some(message) = mailbox.inbound_message(&id).await? else {
            // A guest may claim ids that do not exist; nothing to requeue.
            continue;
        };
        if !message.status.is_pending() {
            continue;
        }
        match decide_retry(retry, message.tries, now) {
            RetryDecision::Retry {
                tries,
                process_after,
            } => {
                if mailbox.requeue(&id, tries, process_after).await? {
                    requeued.push(id);
                }
            }
            RetryDecision::Fail { tries } => {
                if mailbox.fail_pending(&id, tries).await? {
                    failed.push(Failed {
                        message_id: id,
                        seq: message.seq,
                        tries,
                    });
                }
            }
        }
    }
    Ok((requeued, failed))
}

pub(crate) fn runtime_error(e: super::RuntimeError) -> Error {
    Error::backend("runtime", "calling the container runtime", e)
}
