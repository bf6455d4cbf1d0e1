//! W3: one delivery poll that finds nothing new, with N replies already
//! delivered in the session's history.
//!
//! The history is written the way a guest writes its own `outbound.db`
//! (one transaction for the whole batch, as the reference guest may), and
//! marked delivered through the host API, so only the poll is measured:
//! the delivery engine's own pass over the session (`Deliverer::poll`,
//! which reads the files' change stamps and its cursor before any SQL), and
//! beside it the mailbox's full `due_outbound` read (`w3.scan_us.n*`), which
//! looks at the whole history.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use airlock_core::{Session, SessionId, Timestamp};
use airlock_host::delivery::{Scope, StdoutAdapter};
use airlock_host::{Deliverer, SessionManager};
use airlock_sqlite_fs::GuestMailbox;

use crate::report::{Latencies, fail, figure};
use crate::setup::Host;

/// Concurrent `mark_delivered` callers while building the history.
const MARKERS: usize = 16;

/// The delivery engine's pass over `session`: how many it delivered.
async fn delivery_poll(deliverer: &Deliverer, session: &SessionId) -> Result<usize, String> {
    let report = deliverer
        .poll(Scope::Session(session.clone()))
        .await
        .map_err(fail("a delivery pass"))?;
    if let Some(failure) = report.errors.first() {
        return Err(format!("a delivery pass failed: {}", failure.error));
    }
    Ok(report.delivered)
}

/// The mailbox's full read of what is due (no cursor, no stamps).
async fn due_scan(manager: &SessionManager, session: &SessionId) -> Result<usize, String> {
    let due = manager
        .due_outbound(session, Timestamp::now())
        .await
        .map_err(fail("due_outbound"))?;
    Ok(due.len())
}

/// Grows one session's history through each N (up to `max_history`) and
/// measures polls at each.
pub async fn run(dir: &Path, quick: bool, max_history: Option<usize>) -> Result<(), String> {
    let (stages, repetitions, polls): (&[usize], usize, usize) = if quick {
        (&[0, 100], 3, 5)
    } else {
        (&[0, 1_000, 10_000, 100_000], 5, 20)
    };
    let host = Host::open(dir)?;
    let session = host.new_session("bench").await?;
    // Nothing is ever due, so the adapter is never called.
    let deliverer = Deliverer::builder((*host.manager).clone(), Arc::new(StdoutAdapter::new()))
        .build()
        .map_err(fail("building the deliverer"))?;
    let dir = host.manager.session_dir(&session);
    // Creates outbound.db the way a starting guest does.
    GuestMailbox::open(&dir).map_err(fail("opening the guest side"))?;
    let mut delivered = 0;
    for &n in stages
        .iter()
        .filter(|n| max_history.is_none_or(|m| **n <= m))
    {
        append_replies(&dir.join("outbound.db"), delivered, n)?;
        mark_delivered(&host.manager, &session, delivered, n).await?;
        delivered = n;
        // The first pass after the history grew catches its cursor up.
        if delivery_poll(&deliverer, &session.id).await? != 0 {
            return Err(format!(
                "a pass delivered replies marked delivered (n = {n})"
            ));
        }
        for _ in 0..repetitions {
            // Apart, not interleaved: a 100k-row scan between two passes
            // evicts the caches the pass would find warm in a real loop
            // (it made the pass look 3.7x slower at N = 100k).
            let (mut passes, mut scans) = (Vec::new(), Vec::new());
            for _ in 0..polls {
                let start = Instant::now();
                let delivered = delivery_poll(&deliverer, &session.id).await?;
                passes.push(start.elapsed());
                if delivered != 0 {
                    return Err(format!("a pass delivered {delivered} after all {n} were"));
                }
            }
            for _ in 0..polls {
                let start = Instant::now();
                let due = due_scan(&host.manager, &session.id).await?;
                scans.push(start.elapsed());
                if due != 0 {
                    return Err(format!("{due} replies due after delivering all {n}"));
                }
            }
            figure(
                &format!("w3.poll_us.n{n}"),
                Latencies::new(passes)?.p50_us(),
            );
            figure(&format!("w3.scan_us.n{n}"), Latencies::new(scans)?.p50_us());
        }
    }
    Ok(())
}

/// Appends replies `from..to` to the guest's `outbound.db` in one transaction.
fn append_replies(outbound: &Path, from: usize, to: usize) -> Result<(), String> {
    let mut conn = rusqlite::Connection::open(outbound).map_err(fail("opening outbound.db"))?;
    let tx = conn.transaction().map_err(fail("starting a transaction"))?;
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO messages_out (id, seq, timestamp, kind, content) \
                 VALUES (?1, ?2, datetime('now', '-1 minute'), 'chat', '{\"text\":\"reply\"}')",
            )
            .map_err(fail("preparing the insert"))?;
        for n in from..to {
            let seq = i64::try_from(2 * n + 1).map_err(fail("seq"))?;
            insert
                .execute(rusqlite::params![format!("r{n}"), seq])
                .map_err(fail("inserting a reply"))?;
        }
    }
    tx.commit().map_err(fail("committing the replies"))
}

/// Marks replies `from..to` delivered, [`MARKERS`] callers at a time.
async fn mark_delivered(
    manager: &Arc<SessionManager>,
    session: &Session,
    from: usize,
    to: usize,
) -> Result<(), String> {
    let mut tasks = Vec::new();
    for k in 0..MARKERS {
        let manager = manager.clone();
        let id = session.id.clone();
        tasks.push(tokio::spawn(async move {
            for n in (from + k..to).step_by(MARKERS) {
                manager
                    .mark_delivered(&id, format!("r{n}"), None)
                    .await
                    .map_err(fail("mark_delivered"))?;
            }
            Ok::<_, String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(fail("a marker task"))??;
    }
    Ok(())
}
