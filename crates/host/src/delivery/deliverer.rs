//! [`Deliverer`]: polls sessions, runs each one's pass in parallel through
//! the [runner](crate::runner), and keeps going whatever one session does.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use airlock_core::{Result, Session, SessionFilter, SessionId, SessionRef, Timestamp};
use serde::Serialize;

use super::adapter::DynChannelAdapter;
use super::engine::{DelivererConfig, Engine};
use super::metrics;
use super::session::{Hint, Mode, SessionTally, Stamps, decided_by_stamps, run_session};
use super::state::{DeliveryState, QueuedMessage};
use super::system::{SystemHandler, SystemHandlers};
use crate::SessionManager;
use crate::runner::{JobOutcome, RunnerConfig, run_each};

/// File name of the delivery store under `<data_dir>/host-state/`.
pub const STATE_FILE: &str = "delivery.db";

/// Which sessions a pass looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Sessions whose guest is running.
    Running,
    /// Every active session.
    Active,
    /// One session.
    Session(SessionId),
}

/// A session whose pass failed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionFailure {
    /// The session.
    pub session: SessionId,
    /// What went wrong, in one line.
    pub error: String,
}

/// What one pass did, over all its sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PassReport {
    /// Sessions looked at.
    pub sessions: usize,
    /// Sessions with nothing new (decided from file stamps alone).
    pub idle: usize,
    /// Sessions skipped because another deliverer had them.
    pub busy: usize,
    /// Sessions waiting for a message's backoff.
    pub held: usize,
    /// Messages delivered.
    pub delivered: usize,
    /// Messages that failed and will be retried.
    pub retrying: usize,
    /// Messages dead-lettered.
    pub dead_lettered: usize,
    /// Sessions whose pass stopped at its time budget with rows left.
    pub unfinished: usize,
    /// Sessions not read because their guest was writing its mailbox
    /// ([`Error::GuestBusy`](airlock_core::Error::GuestBusy)): not a
    /// failure, the next pass reads them.
    pub guest_busy: usize,
    /// Sessions whose pass failed; the others went on.
    pub errors: Vec<SessionFailure>,
}

impl PassReport {
    fn add(&mut self, t: &SessionTally) {
        self.idle += usize::from(t.idle);
        self.busy += usize::from(t.busy);
        self.held += usize::from(t.held);
        self.delivered += t.delivered;
        self.retrying += t.retrying;
        self.dead_lettered += t.dead_lettered;
        self.unfinished += usize::from(t.unfinished);
    }

    /// Whether every message looked at was delivered and no session failed.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
            && self.retrying == 0
            && self.dead_lettered == 0
            && self.guest_busy == 0
    }
}

/// Builds a [`Deliverer`].
#[derive(Debug)]
pub struct DelivererBuilder {
    manager: SessionManager,
    adapter: Arc<DynChannelAdapter>,
    config: DelivererConfig,
    handlers: SystemHandlers,
}

impl DelivererBuilder {
    /// Replaces the default settings.
    pub fn config(mut self, config: DelivererConfig) -> Self {
        self.config = config;
        self
    }

    /// Routes `system` requests whose `action` is `action` to `handler`.
    pub fn system_handler(
        mut self,
        action: impl Into<String>,
        handler: Arc<dyn SystemHandler>,
    ) -> Self {
        self.handlers.insert(action.into(), handler);
        self
    }

    /// Opens the delivery store (`<data_dir>/host-state/delivery.db`).
    pub fn build(self) -> Result<Deliverer> {
        let path = self.manager.state_dir().join(STATE_FILE);
        let state = Arc::new(DeliveryState::open(&path)?);
        Ok(Deliverer {
            engine: Arc::new(Engine {
                manager: self.manager,
                state,
                adapter: self.adapter,
                handlers: self.handlers,
                config: self.config,
            }),
        })
    }
}

/// The delivery engine: every outbound message delivered once, in seq order
/// per session, failures retried durably or dead-lettered, sessions isolated.
#[derive(Debug, Clone)]
pub struct Deliverer {
    engine: Arc<Engine>,
}

impl Deliverer {
    /// A builder over `manager`'s sessions, delivering through `adapter`.
    pub fn builder(manager: SessionManager, adapter: Arc<DynChannelAdapter>) -> DelivererBuilder {
        DelivererBuilder {
            manager,
            adapter,
            config: DelivererConfig::default(),
            handlers: SystemHandlers::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &DelivererConfig {
        &self.engine.config
    }

    /// The durable state (cursors, queue, dead letters).
    pub fn state(&self) -> &DeliveryState {
        &self.engine.state
    }

    /// One pass over `scope`, leaving messages that back off alone.
    pub async fn poll(&self, scope: Scope) -> Result<PassReport> {
        self.pass(
            scope,
            Mode {
                ignore_backoff: false,
                lease_wait: None,
            },
        )
        .await
    }

    /// One pass over `scope` that also tries messages still backing off:
    /// what an operator's `deliver --once` means.
    pub async fn deliver_now(&self, scope: Scope) -> Result<PassReport> {
        self.pass(
            scope,
            Mode {
                ignore_backoff: true,
                lease_wait: None,
            },
        )
        .await
    }

    /// Delivers what `session`'s guest wrote just before it exited; call it
    /// when a container stops. Waits for the session's lease (up to the
    /// per-call timeout) instead of skipping a busy session.
    pub async fn drain(&self, session: &SessionId) -> Result<PassReport> {
        let mode = Mode {
            ignore_backoff: true,
            lease_wait: Some(self.engine.config.call_timeout),
        };
        self.pass(Scope::Session(session.clone()), mode).await
    }

    /// Polls until `shutdown` completes: running sessions every
    /// `running_interval`, all active sessions every `active_interval`. A
    /// failing pass (even the registry's) is logged, never the end of the loop.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        self.run_on(None, shutdown).await;
    }

    /// [`Deliverer::run`], on one session only when `only` is given.
    pub async fn run_on(&self, only: Option<SessionId>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut last_full: Option<Instant> = None;
        loop {
            let full = last_full.is_none_or(|t| t.elapsed() >= self.engine.config.active_interval);
            let scope = match (&only, full) {
                (Some(id), _) => Scope::Session(id.clone()),
                (None, true) => Scope::Active,
                (None, false) => Scope::Running,
            };
            if full {
                last_full = Some(Instant::now());
            }
            match self.poll(scope).await {
                Ok(report) => {
                    for failure in &report.errors {
                        tracing::warn!(session = %failure.session, error = %failure.error, "delivery pass failed for a session");
                    }
                }
                Err(e) => tracing::error!(error = %e, "delivery pass failed"),
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(self.engine.config.running_interval) => {}
            }
        }
    }

    async fn sessions(&self, scope: &Scope) -> Result<Vec<Session>> {
        let manager = &self.engine.manager;
        let store = manager.store();
        let mut sessions = match scope {
            Scope::Session(id) => return Ok(vec![store.session(id).await?]),
            Scope::Active => store.list_sessions(SessionFilter::active()).await?,
            Scope::Running => {
                let mut filter = SessionFilter::running();
                filter.status = SessionFilter::active().status;
                store.list_sessions(filter).await?
            }
        };
        // Replies are delivered by the session's owner only: with several
        // hosts on one registry, no reply goes out twice.
        sessions.retain(|s| crate::routing::foreign_owner(s, manager.host_id()).is_none());
        Ok(sessions)
    }

    async fn pass(&self, scope: Scope, mode: Mode) -> Result<PassReport> {
        let started = Instant::now();
        let state = self.engine.state.clone();
        // One session's pass reads its own hints, not every session's.
        let only = match &scope {
            Scope::Session(id) => Some(id.to_string()),
            _ => None,
        };
        // The registry and the delivery state are read side by side: an
        // idle pass is little more than these two reads.
        let (sessions, hints) = tokio::join!(
            self.sessions(&scope),
            self.engine.blocking(move || {
                let only = only.as_deref();
                Ok((state.cursors(only)?, state.wake_times(only)?))
            })
        );
        let (listed, (mut cursors, mut wakes)) = (sessions?, hints?);
        let mut report = PassReport {
            sessions: listed.len(),
            ..PassReport::default()
        };
        // Another host's folder is not even stamped.
        let mut sessions = Vec::with_capacity(listed.len());
        for session in listed {
            match crate::routing::check_owner(&session, self.engine.manager.host_id()) {
                Ok(()) => sessions.push(session),
                Err(e) => {
                    metrics::session_error();
                    report.errors.push(SessionFailure {
                        session: session.id,
                        error: e.to_string(),
                    });
                }
            }
        }
        let refs: Vec<SessionRef> = sessions.iter().map(SessionRef::from).collect();
        let stamps = self
            .engine
            .manager
            .mailboxes()
            .change_stamps_of(&refs)
            .await;
        let now = Timestamp::now().as_millis();
        // An idle session is tallied here: no task, no lease, no database.
        let mut jobs = Vec::new();
        for (session, stamps) in sessions.into_iter().zip(stamps) {
            let hint = Hint {
                cursor: cursors.remove(session.id.as_str()),
                wake_at: wakes.remove(session.id.as_str()),
            };
            let stamps = match stamps {
                Ok(stamps) => Stamps::from(stamps),
                Err(e) => {
                    metrics::session_error();
                    report.errors.push(SessionFailure {
                        session: session.id,
                        error: e.to_string(),
                    });
                    continue;
                }
            };
            match decided_by_stamps(&hint, &stamps, now, mode) {
                Some(tally) => report.add(&tally),
                None => jobs.push((session, hint, stamps)),
            }
        }
        let config = RunnerConfig {
            concurrency: self.engine.config.concurrency,
            timeout: self.engine.config.session_timeout,
        };
        let engine = self.engine.clone();
        let outcomes = run_each(jobs, config, move |(session, hint, stamps)| {
            run_session(engine.clone(), session, hint, stamps, mode)
        })
        .await;
        for ((session, _, _), outcome) in outcomes {
            if matches!(
                outcome,
                JobOutcome::Failed(airlock_core::Error::GuestBusy { .. })
            ) {
                report.guest_busy += 1;
            } else if let Some(error) = outcome.problem() {
                metrics::session_error();
                report.errors.push(SessionFailure {
                    session: session.id,
                    error,
                });
            } else if let JobOutcome::Done(tally) = outcome {
                report.add(&tally);
            }
        }
        metrics::poll_time(started.elapsed());
        Ok(report)
    }

    /// Dead letters of one session, or of all.
    pub async fn failures(&self, session: Option<&SessionId>) -> Result<Vec<QueuedMessage>> {
        let state = self.engine.state.clone();
        let session = session.map(|s| s.to_string());
        self.engine
            .blocking(move || state.dead_letters(session.as_deref()))
            .await
    }

    /// Re-queues dead letter `id`: the next pass of its session delivers it.
    pub async fn retry_failure(&self, id: i64) -> Result<QueuedMessage> {
        let state = self.engine.state.clone();
        let now = Timestamp::now().as_millis();
        self.engine.blocking(move || state.requeue(id, now)).await
    }

    /// Drops dead letter `id` and removes its outbox files.
    pub async fn purge_failure(&self, id: i64) -> Result<QueuedMessage> {
        let state = self.engine.state.clone();
        let row = self.engine.blocking(move || state.purge(id)).await?;
        if let Ok(session) = SessionId::new(row.session_id.clone()) {
            self.engine
                .manager
                .clear_outbox(&session, row.message_id.clone())
                .await;
        }
        Ok(row)
    }
}
