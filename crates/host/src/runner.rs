//! Runs one async job per session over many sessions: at most `concurrency`
//! at once, each under its own timeout, and a job that fails, times out or
//! panics is reported beside the others instead of stopping them.
//!
//! The delivery engine runs its passes with it; any other per-session sweep
//! (lifecycle, cleanup) can reuse it as is.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;

/// Bounds of one [`run_each`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerConfig {
    /// Jobs running at the same time (at least 1).
    pub concurrency: usize,
    /// Longest time one job may take; it is cancelled (dropped) after that.
    pub timeout: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            timeout: Duration::from_secs(300),
        }
    }
}

/// How one job ended.
#[derive(Debug)]
pub enum JobOutcome<T, E> {
    /// It returned `Ok`.
    Done(T),
    /// It returned `Err`.
    Failed(E),
    /// It ran longer than the timeout and was cancelled.
    TimedOut(Duration),
    /// It panicked; the message, when it was a string.
    Panicked(String),
}

impl<T, E: std::fmt::Display> JobOutcome<T, E> {
    /// The value of a job that succeeded.
    pub fn ok(self) -> Option<T> {
        match self {
            JobOutcome::Done(v) => Some(v),
            _ => None,
        }
    }

    /// Why the job did not succeed, in one line; `None` when it did.
    pub fn problem(&self) -> Option<String> {
        match self {
            JobOutcome::Done(_) => None,
            JobOutcome::Failed(e) => Some(e.to_string()),
            JobOutcome::TimedOut(t) => Some(format!("did not finish within {t:?}")),
            JobOutcome::Panicked(m) => Some(format!("panicked: {m}")),
        }
    }
}

/// Runs `job(item)` for every item and returns each item with its outcome,
/// in the order the items were given.
///
/// Never more than `config.concurrency` jobs exist at once, so a sweep over
/// 10,000 sessions holds only that many futures in memory.
pub async fn run_each<I, T, E, F, Fut>(
    items: Vec<I>,
    config: RunnerConfig,
    job: F,
) -> Vec<(I, JobOutcome<T, E>)>
where
    I: Clone + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
    F: Fn(I) -> Fut,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
{
    let limit = config.concurrency.max(1);
    let timeout = config.timeout;
    let mut outcomes: Vec<Option<JobOutcome<T, E>>> = (0..items.len()).map(|_| None).collect();
    let mut running = JoinSet::new();
    let mut ids = std::collections::HashMap::new();
    let mut queue = items.iter().cloned().enumerate();
    loop {
        while running.len() < limit {
            let Some((index, item)) = queue.next() else {
                break;
            };
            let fut = job(item);
            let handle = running.spawn(async move {
                match tokio::time::timeout(timeout, fut).await {
                    Ok(Ok(v)) => JobOutcome::Done(v),
                    Ok(Err(e)) => JobOutcome::Failed(e),
                    Err(_) => JobOutcome::TimedOut(timeout),
                }
            });
            ids.insert(handle.id(), index);
        }
        let Some(joined) = running.join_next_with_id().await else {
            break;
        };
        let (index, outcome) = match joined {
            Ok((id, outcome)) => (ids.remove(&id), outcome),
            Err(e) => {
                let index = ids.remove(&e.id());
                let message = if e.is_panic() {
                    let payload = e.into_panic();
                    payload
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a non-string panic".into())
                } else {
                    "cancelled".into()
                };
                (index, JobOutcome::Panicked(message))
            }
        };
        if let Some(index) = index {
            outcomes[index] = Some(outcome);
        }
    }
    items
        .into_iter()
        .zip(outcomes)
        .map(|(item, outcome)| {
            (
                item,
                outcome.unwrap_or_else(|| JobOutcome::Panicked("lost".into())),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn failures_timeouts_and_panics_stay_with_their_item() {
        let config = RunnerConfig {
            concurrency: 2,
            timeout: Duration::from_millis(200),
        };
        let out = run_each(vec![0, 1, 2, 3, 4], config, |i| async move {
            match i {
                1 => Err(format!("bad {i}")),
                2 => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok(i)
                }
                3 => panic!("boom {i}"),
                _ => Ok(i * 10),
            }
        })
        .await;
        let items: Vec<i32> = out.iter().map(|(i, _)| *i).collect();
        assert_eq!(items, [0, 1, 2, 3, 4]);
        assert!(matches!(out[0].1, JobOutcome::Done(0)));
        assert!(matches!(&out[1].1, JobOutcome::Failed(e) if e == "bad 1"));
        assert!(matches!(out[2].1, JobOutcome::TimedOut(_)));
        assert!(matches!(&out[3].1, JobOutcome::Panicked(m) if m.contains("boom 3")));
        assert!(matches!(out[4].1, JobOutcome::Done(40)));
    }

    #[tokio::test]
    async fn never_more_than_the_bound_at_once() {
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let config = RunnerConfig {
            concurrency: 3,
            timeout: Duration::from_secs(60),
        };
        let out = run_each((0..20).collect(), config, |_| {
            let (now, peak) = (now.clone(), peak.clone());
            async move {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(2)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, String>(())
            }
        })
        .await;
        assert_eq!(out.len(), 20);
        assert!(out.iter().all(|(_, o)| matches!(o, JobOutcome::Done(()))));
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }
}
