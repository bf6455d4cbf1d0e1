//! Host and guest in separate OS processes: exchange, concurrent writers,
//! and processes killed with SIGKILL mid-write.
//!
//! Children are this test binary re-executed with `--exact <test>` and a
//! role in the environment (see `crate::mailbox_common::child_command`).

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use airlock_core::ContainerStatus;
use airlock_core::Timestamp;
use airlock_core::mailbox::Origin;
use airlock_sqlite_fs::{Error, GuestMailbox, MailboxRoots, PlainContent};

use crate::mailbox_common::*;

fn wait_with_deadline(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("child did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn host_for_child() -> airlock_sqlite_fs::HostMailbox {
    let data = std::env::var(DATA_ENV).unwrap();
    MailboxRoots::in_data_dir(std::path::Path::new(&data)).host(&fixture_session())
}

// ---------------------------------------------------------------- exchange

fn guest_replier(count: usize) {
    let guest = GuestMailbox::open(std::env::var(DIR_ENV).unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = 0usize;
    let mut last_seq = 0i64;
    while seen < count {
        assert!(
            Instant::now() < deadline,
            "guest saw only {seen} of {count}"
        );
        let batch = guest.pending(1000).unwrap();
        if batch.is_empty() {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        for m in batch {
            assert_eq!(
                m.id,
                format!("m-{seen}"),
                "messages must arrive exactly once, in order"
            );
            assert!(
                m.seq > last_seq && m.seq % 2 == 0,
                "seq {} after {last_seq}",
                m.seq
            );
            last_seq = m.seq;
            let mut r = reply(&format!("r-{seen}"), &format!("{{\"re\":{}}}", m.seq));
            r.in_reply_to = Some(m.id.clone());
            let seq = guest.write_message_out(&r).unwrap();
            assert_eq!(seq % 2, 1);
            guest.mark_completed(&[m.id.as_str()]).unwrap();
            seen += 1;
        }
    }
    println!("GUEST_DONE {seen} {:?}", guest.retry_stats());
}

#[test]
fn host_and_guest_processes_exchange_every_message_once_in_order() {
    let count = env_usize("AIRLOCK_MAILBOX_EXCHANGE", 500);
    if child_role().is_some() {
        return guest_replier(count);
    }
    let fx = Fixture::new();
    let mut child = child_command(
        &crate::libtest_name(
            module_path!(),
            "host_and_guest_processes_exchange_every_message_once_in_order",
        ),
        "guest",
        &[(DIR_ENV, fx.session_dir().display().to_string())],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    for i in 0..count {
        let w = fx
            .host
            .write_message(&msg(&format!("m-{i}"), "{}"), &PlainContent)
            .unwrap();
        assert_eq!(w.seq, 2 * (i as i64 + 1));
    }
    let status = wait_with_deadline(&mut child, Duration::from_secs(180));
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(status.success(), "guest failed: {out}");
    assert!(out.contains(&format!("GUEST_DONE {count}")), "{out}");
    eprintln!(
        "{}",
        out.lines()
            .find(|l| l.contains("GUEST_DONE"))
            .unwrap_or_default()
    );

    let due = fx.host.due_outbound(Timestamp::now()).unwrap();
    assert_eq!(due.len(), count);
    let inbound = fx.host.list_inbound(usize::MAX).unwrap();
    assert_eq!(inbound.len(), count);
    let mut seqs = HashSet::new();
    for (i, r) in due.iter().enumerate() {
        assert_eq!((r.origin, r.id.clone()), (Origin::Guest, format!("r-{i}")));
        assert_eq!(r.in_reply_to.as_deref(), Some(format!("m-{i}").as_str()));
        assert_eq!(r.seq % 2, 1);
        assert!(seqs.insert(r.seq));
    }
    for m in &inbound {
        assert_eq!(m.seq % 2, 0);
        assert!(seqs.insert(m.seq), "seq {} used twice", m.seq);
    }
    assert_eq!(fx.host.sync_acks().unwrap(), count);
    assert_eq!(fx.host.count_due(Timestamp::now()).unwrap(), 0);
    fx.assert_no_wal();
}

// ------------------------------------------------------------ concurrency

const TASKS: usize = 16;

fn writes_per_task() -> usize {
    env_usize("AIRLOCK_MAILBOX_WRITES", 500)
}

fn second_host_process() {
    let host = host_for_child();
    let n = writes_per_task();
    std::thread::scope(|s| {
        for t in 0..TASKS {
            let host = host.clone();
            s.spawn(move || {
                for i in 0..n {
                    host.write_message(&msg(&format!("p2-{t}-{i}"), "{}"), &PlainContent)
                        .unwrap();
                }
            });
        }
    });
    println!("WRITER_DONE");
}

#[test]
fn sixteen_tasks_and_a_second_process_write_one_session() {
    if child_role().is_some() {
        return second_host_process();
    }
    let fx = Fixture::new();
    let n = writes_per_task();
    let mut child = child_command(
        &crate::libtest_name(
            module_path!(),
            "sixteen_tasks_and_a_second_process_write_one_session",
        ),
        "writer",
        &[(DATA_ENV, fx.dir.path().display().to_string())],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let host = fx.host.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..n {
                    let host = host.clone();
                    tokio::task::spawn_blocking(move || {
                        host.write_message(&msg(&format!("p1-{t}-{i}"), "{}"), &PlainContent)
                    })
                    .await
                    .unwrap()
                    .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let status = wait_with_deadline(&mut child, Duration::from_secs(300));
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(
        status.success() && out.contains("WRITER_DONE"),
        "second host failed: {out}"
    );

    let rows = fx.host.list_inbound(usize::MAX).unwrap();
    let total = 2 * TASKS * n;
    assert_eq!(rows.len(), total);
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    let expected: Vec<i64> = (1..=total as i64).map(|k| 2 * k).collect();
    assert_eq!(
        seqs, expected,
        "seqs must be 2, 4, … with no gap or duplicate"
    );
    let ids: HashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), total);
    assert_eq!(integrity(&fx.host.paths().inbound_db()), "ok");
    fx.assert_no_wal();
}

// ------------------------------------------------------------ crash safety

fn crash_writer() {
    use std::io::Write;
    let host = host_for_child();
    let trial = std::env::var("AIRLOCK_TRIAL").unwrap();
    let mut stdout = std::io::stdout().lock();
    for i in 0.. {
        let w = host
            .write_message(&msg(&format!("c-{trial}-{i}"), &bulky(i)), &PlainContent)
            .unwrap();
        writeln!(stdout, "COMMITTED {} {}", w.id, w.seq).unwrap();
        stdout.flush().unwrap();
    }
}

/// A small xorshift generator: tests need variety, not quality.
struct Rng(u64);
impl Rng {
    fn seeded() -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Rng(nanos | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn host_writer_killed_at_random_moments_loses_no_committed_write() {
    if child_role().is_some() {
        return crash_writer();
    }
    let trials = env_usize("AIRLOCK_CRASH_TRIALS", 200);
    let fx = Fixture::new();
    let mut rng = Rng::seeded();
    let mut committed: BTreeMap<String, i64> = BTreeMap::new();
    let mut journals_left = 0;
    for trial in 0..trials {
        let mut child = child_command(
            &crate::libtest_name(
                module_path!(),
                "host_writer_killed_at_random_moments_loses_no_committed_write",
            ),
            "crash-writer",
            &[
                (DATA_ENV, fx.dir.path().display().to_string()),
                ("AIRLOCK_TRIAL", trial.to_string()),
            ],
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        // Wait for the first commit so the kill lands while writing, not while starting.
        while !first.contains("COMMITTED") {
            first.clear();
            assert!(
                reader.read_line(&mut first).unwrap() > 0,
                "writer died early"
            );
        }
        std::thread::sleep(Duration::from_micros(rng.below(8000)));
        child.kill().unwrap();
        child.wait().unwrap();
        let mut rest = String::new();
        reader.read_to_string(&mut rest).unwrap();
        for line in std::iter::once(first.as_str()).chain(rest.lines()) {
            // libtest prints `test <name> ... ` before the first line of output.
            let Some(at) = line.find("COMMITTED") else {
                continue;
            };
            let mut parts = line[at..].split_whitespace();
            if parts.next() == Some("COMMITTED") {
                let (id, seq) = (
                    parts.next().unwrap(),
                    parts.next().unwrap().parse().unwrap(),
                );
                assert!(committed.insert(id.to_owned(), seq).is_none());
            }
        }
        if fx.host.paths().inbound_journal().exists() {
            journals_left += 1;
        }
        // The next host operation rebuilds whatever publish the killed
        // writer left unfinished (listings only read host.db).
        fx.host.verify().unwrap();
        let rows = fx.host.list_inbound(usize::MAX).unwrap();
        let stored: BTreeMap<&str, i64> = rows.iter().map(|r| (r.id.as_str(), r.seq)).collect();
        for (id, seq) in &committed {
            assert_eq!(
                stored.get(id.as_str()),
                Some(seq),
                "trial {trial}: committed {id} lost"
            );
        }
        let seqs: HashSet<i64> = rows.iter().map(|r| r.seq).collect();
        assert_eq!(seqs.len(), rows.len(), "duplicate seq");
        assert!(
            rows.iter().all(|r| r.content.contains(&"x".repeat(1024))),
            "torn row content"
        );
        assert_eq!(
            integrity(&fx.host.paths().inbound_db()),
            "ok",
            "trial {trial}"
        );
    }
    eprintln!(
        "{trials} kills, {journals_left} left a journal, {} commits",
        committed.len()
    );
    assert!(
        fx.host.quarantined_journals().unwrap().is_empty(),
        "the host's own files were quarantined: {:?}",
        fx.host.tamper_events().unwrap()
    );
    assert!(
        journals_left > 0,
        "no kill landed inside a transaction in {trials} trials"
    );
    fx.assert_no_wal();
}

/// A plain SQLite writer killed mid-transaction on the folder's file (an
/// older host version, or a guest) leaves a hot journal: the host never
/// writes a journal there, so it is moved aside, never replayed, and the
/// torn file is rebuilt from host state.
#[test]
fn killed_foreign_transaction_with_spilled_pages_is_quarantined_and_rebuilt() {
    let fx = Fixture::new();
    let inbound = fx.host.paths().inbound_db();
    if child_role().is_some() {
        let dir = std::path::PathBuf::from(std::env::var(DIR_ENV).unwrap());
        stuck_transaction(
            &dir.join("inbound.db"),
            "UPDATE messages_in SET content = 'torn' || content; DELETE FROM messages_in WHERE seq > 100;",
        );
    }
    for i in 0..300 {
        fx.host
            .write_message(&msg(&format!("b-{i}"), &bulky(i)), &PlainContent)
            .unwrap();
    }
    kill_child_when_ready(
        &fx,
        &crate::libtest_name(
            module_path!(),
            "killed_foreign_transaction_with_spilled_pages_is_quarantined_and_rebuilt",
        ),
        "stuck",
    );
    assert!(fx.host.paths().inbound_journal().exists());
    let w = fx
        .host
        .write_message(&msg("after", "{}"), &PlainContent)
        .unwrap();
    assert_eq!(w.seq, 602);
    assert!(w.quarantined_journal.is_some());
    let rows = fx.host.list_inbound(usize::MAX).unwrap();
    assert_eq!(rows.len(), 301);
    assert!(rows.iter().all(|r| !r.content.starts_with("torn")));
    assert!(!fx.host.paths().inbound_journal().exists());
    assert_eq!(integrity(&inbound), "ok");
    fx.assert_no_wal();
}

// ------------------------------------------------- guest killed mid-commit

#[test]
fn guest_killed_mid_commit_is_recovered_once_stopped() {
    let fx = Fixture::new();
    if child_role().is_some() {
        let dir = std::path::PathBuf::from(std::env::var(DIR_ENV).unwrap());
        let guest = GuestMailbox::open(&dir).unwrap();
        for i in 0..50 {
            guest
                .write_message_out(&reply(&format!("r-{i}"), &bulky(i)))
                .unwrap();
        }
        stuck_transaction(
            &dir.join("outbound.db"),
            "UPDATE messages_out SET content = 'torn'; DELETE FROM messages_out WHERE seq > 11;",
        );
    }
    kill_child_when_ready(
        &fx,
        &crate::libtest_name(
            module_path!(),
            "guest_killed_mid_commit_is_recovered_once_stopped",
        ),
        "guest",
    );
    assert!(fx.host.paths().outbound_journal().exists());

    // Read-only, the host cannot use the file, and says why.
    let err = fx.host.due_outbound(Timestamp::now()).unwrap_err();
    assert!(matches!(err, Error::GuestMayBeRunning { .. }), "{err}");
    assert!(registry_proof(ContainerStatus::Running).is_none());
    let stopped = registry_proof(ContainerStatus::Stopped).unwrap();
    assert!(fx.host.recover_outbound(stopped).unwrap());
    assert!(!fx.host.paths().outbound_journal().exists());
    let due = fx.host.due_outbound(Timestamp::now()).unwrap();
    assert_eq!(due.len(), 50, "no committed reply lost");
    assert!(due.iter().all(|m| m.content.contains(&"x".repeat(1024))));
    assert_eq!(integrity(&fx.host.paths().outbound_db()), "ok");
    assert!(
        !fx.host.recover_outbound(stopped).unwrap(),
        "nothing left to recover"
    );
    fx.assert_no_wal();
}
