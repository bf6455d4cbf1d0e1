//! Group commit: concurrent writers of one session share `host.db`
//! transactions; each caller still gets its own result, once durable.

use std::collections::HashSet;
use std::sync::{Arc, Barrier};

use airlock_core::mailbox::WriteOutcome;
use airlock_sqlite_fs::PlainContent;

use crate::mailbox_common::{Fixture, env_usize, integrity, msg};

/// The publishing generation in `host.db`: one per commit that changed rows.
fn generation(fx: &Fixture) -> i64 {
    rusqlite::Connection::open(fx.host.host_state().host_db())
        .unwrap()
        .query_row("SELECT generation FROM host_meta", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn concurrent_writers_share_commits_and_each_gets_its_own_seq() {
    let fx = Fixture::new();
    let threads = 16;
    let per_thread = env_usize("AIRLOCK_GROUP_WRITES", 40);
    let before = generation(&fx);
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (host, start) = (fx.host.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                (0..per_thread)
                    .map(|i| {
                        let id = format!("t{t}-{i}");
                        let w = host
                            .write_message(
                                &msg(&id, &format!("{{\"t\":{t},\"i\":{i}}}")),
                                &PlainContent,
                            )
                            .unwrap();
                        assert_eq!(w.id.as_str(), id);
                        assert_eq!(w.outcome, WriteOutcome::Inserted);
                        (id, w.seq)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let written: Vec<(String, i64)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let total = threads * per_thread;
    let seqs: HashSet<i64> = written.iter().map(|(_, s)| *s).collect();
    assert_eq!(seqs.len(), total, "every caller got its own seq");
    assert!(seqs.iter().all(|s| s % 2 == 0));
    let stored = fx.host.list_inbound(usize::MAX).unwrap();
    assert_eq!(stored.len(), total);
    for (id, seq) in &written {
        assert!(
            stored.iter().any(|m| &m.id == id && m.seq == *seq),
            "{id} missing"
        );
    }
    let commits = generation(&fx) - before;
    eprintln!("{total} messages in {commits} commits");
    assert!(
        commits < total as i64,
        "{commits} commits for {total} messages: nothing was batched"
    );
    // The published copy has every row too.
    fx.host.verify().unwrap();
    let conn = rusqlite::Connection::open_with_flags(
        fx.host.paths().inbound_db(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM messages_in", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, total as i64);
    assert_eq!(integrity(&fx.host.paths().inbound_db()), "ok");
    assert!(fx.host.tamper_events().unwrap().is_empty());
}

#[test]
fn write_messages_is_one_commit_deciding_retries_and_renames_in_order() {
    let fx = Fixture::new();
    let before = generation(&fx);
    let batch = [
        msg("a", "1"),
        msg("b", "2"),
        msg("a", "1"),
        msg("a", "other"),
        msg("c", "3"),
    ];
    let written = fx.host.write_messages(&batch, &PlainContent).unwrap();
    assert_eq!(generation(&fx), before + 1, "one commit for the batch");
    let outcomes: Vec<(&str, i64)> = written.iter().map(|w| (w.id.as_str(), w.seq)).collect();
    assert_eq!(
        outcomes,
        [("a", 2), ("b", 4), ("a", 2), ("a#2", 6), ("c", 8)]
    );
    assert_eq!(written[2].outcome, WriteOutcome::Duplicate);
    assert!(matches!(written[3].outcome, WriteOutcome::Renamed { .. }));
    assert_eq!(fx.host.list_inbound(10).unwrap().len(), 4);
    // A retry of the whole batch stores nothing new and commits no change.
    let again = fx.host.write_messages(&batch[..2], &PlainContent).unwrap();
    assert!(again.iter().all(|w| w.outcome == WriteOutcome::Duplicate));
    assert_eq!(generation(&fx), before + 1);
}
