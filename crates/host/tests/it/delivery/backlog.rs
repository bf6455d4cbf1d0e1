//! Backlogs drain completely at the adapter's pace, page by page. The CI
//! sizes are small; `AIRLOCK_TEST_FULL_BACKLOG=1` runs the sizes
//! (1,000 × 1 MB and 100,000 × 10 KB).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use airlock_host::delivery::{ChannelAdapter, Delivery, DeliveryError, Scope};
use async_trait::async_trait;

use crate::delivery::support::{Host, quick};

/// Counts deliveries without keeping them (a recording adapter would hold
/// the whole backlog in memory).
#[derive(Debug, Default)]
struct Counting {
    count: AtomicUsize,
    bytes: AtomicUsize,
    last_seq: AtomicUsize,
}

#[async_trait]
impl ChannelAdapter for Counting {
    async fn deliver(&self, d: &Delivery) -> Result<String, DeliveryError> {
        let seq = d.message().seq as usize;
        assert!(seq > self.last_seq.swap(seq, Ordering::SeqCst), "seq order");
        self.count.fetch_add(1, Ordering::SeqCst);
        self.bytes
            .fetch_add(d.message().content.len(), Ordering::SeqCst);
        Ok(seq.to_string())
    }
}

fn full() -> bool {
    std::env::var_os("AIRLOCK_TEST_FULL_BACKLOG").is_some()
}

async fn drains(n: usize, size: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let host = Host::at(tmp.path());
    let session = host.session("backlog").await;
    host.bulk_replies(&session, "b", n, size);
    let adapter = Arc::new(Counting::default());
    let deliverer = host.deliverer(adapter.clone(), quick());
    let report = deliverer.deliver_now(Scope::Active).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.delivered, n);
    assert_eq!(adapter.count.load(Ordering::SeqCst), n);
    assert!(adapter.bytes.load(Ordering::SeqCst) >= n * (size - 40));
    assert_eq!(
        deliverer
            .deliver_now(Scope::Active)
            .await
            .unwrap()
            .delivered,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_large_replies_drains() {
    drains(if full() { 1000 } else { 16 }, 1024 * 1024).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_many_replies_drains() {
    drains(if full() { 100_000 } else { 300 }, 10 * 1024).await;
}
