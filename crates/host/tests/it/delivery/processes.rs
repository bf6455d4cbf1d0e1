//! Two deliverers in two processes on one data dir: each message once.
//!
//! The parent test re-runs this test binary as the child; the child test
//! does nothing unless the parent's environment variable names its data dir.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use airlock_host::delivery::{ChannelAdapter, Delivery, DeliveryError, Scope};
use async_trait::async_trait;

use crate::delivery::support::{Host, quick};

const CHILD_DIR: &str = "AIRLOCK_TEST_DELIVERER_CHILD_DIR";

/// Appends `session message` per delivery to a log shared by both processes.
#[derive(Debug)]
struct LogAdapter(PathBuf);

#[async_trait]
impl ChannelAdapter for LogAdapter {
    async fn deliver(&self, d: &Delivery) -> Result<String, DeliveryError> {
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.0)
            .map_err(|e| DeliveryError::transient(e.to_string()))?;
        // One write per line: O_APPEND keeps lines of two processes whole.
        log.write_all(
            format!(
                "{} {} {}\n",
                d.session().id,
                d.message().id,
                std::process::id()
            )
            .as_bytes(),
        )
        .map_err(|e| DeliveryError::transient(e.to_string()))?;
        Ok(d.message().id.clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_deliverer() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        println!(
            "helper of two_deliverer_processes_deliver_each_message_once; nothing to do alone"
        );
        return;
    };
    let dir = PathBuf::from(dir);
    let host = Host::at(&dir);
    let adapter = Arc::new(LogAdapter(dir.join("delivered.log")));
    let mut config = quick();
    config.concurrency = 4;
    let deliverer = host.deliverer(adapter, config);
    let mut quiet = 0;
    while quiet < 20 {
        let report = deliverer.poll(Scope::Active).await.unwrap();
        // The parent writes as a guest in a tight loop, so on a loaded
        // machine its journal can outlast a read's retries: that session
        // counts as guest-busy, not failed, and is read again at the next
        // pass (nothing is lost, which the parent checks).
        assert!(report.errors.is_empty(), "{report:?}");
        quiet = if report.delivered == 0 && report.busy == 0 && report.guest_busy == 0 {
            quiet + 1
        } else {
            0
        };
        if !dir.join("written").exists() {
            quiet = 0;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deliverer_processes_deliver_each_message_once() {
    let tmp = tempfile::tempdir().unwrap();
    let host = Host::at(tmp.path());
    let mut sessions = Vec::new();
    for s in 0..10 {
        sessions.push(host.session(&format!("chat-{s}")).await);
    }
    let spawn = || {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "delivery::processes::child_deliverer",
                "--exact",
                "--nocapture",
            ])
            .env(CHILD_DIR, tmp.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let children = [spawn(), spawn()];
    // Messages arrive while both deliverers poll.
    for i in 0..50 {
        for (s, session) in sessions.iter().enumerate() {
            host.reply(session, &format!("s{s}-m{i}"), "x");
        }
    }
    std::fs::write(tmp.path().join("written"), b"").unwrap();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let log = std::fs::read_to_string(tmp.path().join("delivered.log")).unwrap();
    let mut seen = std::collections::HashMap::new();
    let mut pids = std::collections::HashSet::new();
    for line in log.lines() {
        let mut parts = line.split(' ');
        let (session, id, pid) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        *seen.entry((session.to_owned(), id.to_owned())).or_insert(0) += 1;
        pids.insert(pid.to_owned());
    }
    assert_eq!(seen.len(), 500, "every message delivered");
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    println!("deliveries by process: {} processes took part", pids.len());
}
