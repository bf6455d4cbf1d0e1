//! Deliveries are recorded in `delivery.db` at once and settled (recorded in
//! `inbound.db`, outbox cleared) in batches: a deliverer killed with a batch
//! unsettled leaves nothing to send again, and the next pass settles it.
//!
//! The parent test re-runs this test binary as the child deliverer, which
//! aborts (as a crash would) in the middle of its second batch.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use airlock_host::delivery::{ChannelAdapter, Delivery, DeliveryError, Scope};
use async_trait::async_trait;

use crate::delivery::support::{Host, quick};

const CHILD_DIR: &str = "AIRLOCK_TEST_SETTLE_CHILD_DIR";
const MESSAGES: usize = 200;
const BATCH: usize = 64;
/// The child crashes when the platform takes this many-th message, with
/// `ABORT_AT - 1 - BATCH` deliveries recorded and not yet settled.
const ABORT_AT: usize = 71;

/// Appends each delivered id to a log; aborts the process at `abort_at`.
#[derive(Debug)]
struct LogAdapter {
    log: PathBuf,
    count: AtomicUsize,
    abort_at: Option<usize>,
}

#[async_trait]
impl ChannelAdapter for LogAdapter {
    async fn deliver(&self, d: &Delivery) -> Result<String, DeliveryError> {
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| DeliveryError::transient(e.to_string()))?;
        log.write_all(format!("{}\n", d.message().id).as_bytes())
            .map_err(|e| DeliveryError::transient(e.to_string()))?;
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        if self.abort_at == Some(n) {
            // The platform has it; the deliverer dies before recording it.
            std::process::abort();
        }
        Ok(format!("p-{}", d.message().id))
    }
}

fn deliverer(host: &Host, dir: &Path, abort_at: Option<usize>) -> airlock_host::Deliverer {
    let adapter = Arc::new(LogAdapter {
        log: dir.join("delivered.log"),
        count: AtomicUsize::new(0),
        abort_at,
    });
    let mut config = quick();
    config.concurrency = 1;
    config.settle_batch = BATCH;
    // Only a full batch settles, so the crash lands with one unsettled.
    config.settle_wait = Duration::from_secs(3600);
    host.deliverer(adapter, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_settle_deliverer() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        println!(
            "helper of a_crash_before_settling_is_settled_by_the_next_pass; nothing to do alone"
        );
        return;
    };
    let dir = PathBuf::from(dir);
    let host = Host::at(&dir);
    let report = deliverer(&host, &dir, Some(ABORT_AT))
        .deliver_now(Scope::Active)
        .await;
    panic!("the child should have aborted at delivery {ABORT_AT}: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_settling_is_settled_by_the_next_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let host = Host::at(tmp.path());
    let session = host.session("settle").await;
    host.bulk_replies(&session, "b", MESSAGES, 64);
    let ids: Vec<String> = (0..MESSAGES).map(|i| format!("b-{i}")).collect();
    let outbox = host.session_dir(&session).join("outbox");
    for id in &ids {
        std::fs::create_dir_all(outbox.join(id)).unwrap();
        std::fs::write(outbox.join(id).join("note.txt"), id).unwrap();
    }

    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "delivery::settle::child_settle_deliverer",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD_DIR, tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child deliverer was to crash");
    let log = std::fs::read_to_string(tmp.path().join("delivered.log")).unwrap();
    assert_eq!(
        log.lines().count(),
        ABORT_AT,
        "the child stopped where planned"
    );

    // The restarted host: what the child recorded is not sent again, the
    // message in flight at the crash is sent once more, the rest once.
    let report = deliverer(&host, tmp.path(), None)
        .deliver_now(Scope::Active)
        .await
        .unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.delivered, MESSAGES - ABORT_AT + 1);
    let log = std::fs::read_to_string(tmp.path().join("delivered.log")).unwrap();
    let mut seen = std::collections::HashMap::<&str, usize>::new();
    for id in log.lines() {
        *seen.entry(id).or_default() += 1;
    }
    assert_eq!(seen.len(), MESSAGES, "every message delivered");
    let again: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    let in_flight = format!("b-{}", ABORT_AT - 1);
    assert_eq!(
        again,
        vec![(&in_flight.as_str(), &2)],
        "only the message in flight twice"
    );

    // Every delivery is settled: recorded for the guest, outbox cleared.
    let mailbox = host.manager.mailbox(&session);
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let recorded = mailbox.delivered_among(&refs).unwrap();
    let missing: Vec<_> = ids.iter().filter(|id| !recorded.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "not recorded in inbound.db: {missing:?}"
    );
    let left: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "outboxes not cleared: {left:?}");
}
