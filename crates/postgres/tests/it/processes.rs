//! Resolution is atomic across OS processes: 4 processes x 8 tasks resolve
//! the same 100 new keys in one schema and agree on exactly 100 sessions.
//!
//! The test binary runs itself as the child processes (selected with
//! `--exact` and told its role through environment variables), so the
//! children are real separate processes with their own pools.

use crate::common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use airlock_core::testing::{agent, chat, request, thread};
use airlock_core::{ResolveRequest, SessionFilter, SessionMode, SessionStore};
use airlock_postgres::PgSessionStore;

const TEST_NAME: &str = "processes_resolve_the_same_keys_to_one_session_each";
const ROLE_VAR: &str = "AIRLOCK_PG_RACE_SCHEMA";
const OUT_VAR: &str = "AIRLOCK_PG_RACE_OUT";
const INDEX_VAR: &str = "AIRLOCK_PG_RACE_INDEX";
const PROCESSES: usize = 4;
const TASKS: usize = 8;
const KEYS: usize = 100;

/// The 100 requests, mixing every mode with a key: per-thread threads of
/// one chat, shared sessions of separate chats, agent-shared agent groups.
async fn requests(store: &dyn SessionStore) -> Vec<ResolveRequest> {
    let threads = chat(store, "race-threads").await;
    let mut out = Vec::with_capacity(KEYS);
    for i in 0..KEYS {
        let req = match i % 3 {
            0 => request(
                &agent("race"),
                Some(&threads),
                Some(&thread(&format!("t{i}"))),
                SessionMode::PerThread,
            ),
            1 => {
                let mg = chat(store, &format!("race-chat-{i}")).await;
                request(&agent("race"), Some(&mg), None, SessionMode::Shared)
            }
            _ => request(
                &agent(&format!("race-agent-{i}")),
                None,
                None,
                SessionMode::AgentShared,
            ),
        };
        out.push(req);
    }
    out
}

/// One child: 8 tasks each resolve all keys (in different orders) and the
/// outcomes go to the file named by `OUT_VAR`, one `key id created` a line.
async fn child(url: String, schema: String) {
    let out = PathBuf::from(std::env::var(OUT_VAR).expect("child needs an output path"));
    let index: usize = std::env::var(INDEX_VAR)
        .expect("child index")
        .parse()
        .unwrap();
    // Every child migrates and registers the chats concurrently, too.
    let store = Arc::new(
        PgSessionStore::connect_with(common::test_options(&url, &schema))
            .await
            .expect("child connects"),
    );
    let requests = Arc::new(requests(&*store).await);
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (store, requests) = (store.clone(), requests.clone());
            tokio::spawn(async move {
                let start = (task * 13 + index * 29) % KEYS;
                let mut lines = Vec::with_capacity(KEYS);
                for step in 0..KEYS {
                    let req = &requests[(start + step) % KEYS];
                    let resolved = store
                        .resolve_session(req.clone())
                        .await
                        .unwrap_or_else(|e| {
                            panic!("resolve failed in process {index} task {task}: {e}")
                        });
                    lines.push(format!(
                        "{} {} {}\n",
                        req.key().expect("every race request has a key"),
                        resolved.session.id,
                        resolved.created
                    ));
                }
                lines.concat()
            })
        })
        .collect();
    let mut text = String::new();
    for task in tasks {
        text.push_str(&task.await.expect("task panicked"));
    }
    std::fs::write(&out, text).expect("write child output");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(airlock_pg),
    ignore = "needs AIRLOCK_TEST_PG_URL (set it and rebuild)"
)]
async fn processes_resolve_the_same_keys_to_one_session_each() {
    let Some(url) = common::pg_url(TEST_NAME) else {
        return;
    };
    if let Ok(schema) = std::env::var(ROLE_VAR) {
        return child(url, schema).await;
    }

    let schema = common::random_schema("airlock_race");
    let guard = common::SchemaGuard::new(&url, &schema);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let name = airlock_core::testing::libtest_name(module_path!(), TEST_NAME);
    let children: Vec<_> = (0..PROCESSES)
        .map(|i| {
            let out = dir.path().join(format!("child-{i}.txt"));
            let child = Command::new(&exe)
                .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
                .env(ROLE_VAR, &schema)
                .env(OUT_VAR, &out)
                .env(INDEX_VAR, i.to_string())
                .env(common::URL_VAR, &url)
                // Piped: the children's libtest summaries must not read as ours.
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn child test process");
            (child, out)
        })
        .collect();

    let mut by_key: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    let mut created: HashMap<String, usize> = HashMap::new();
    let mut outcomes = 0;
    for (child, out) in children {
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        assert!(
            output.status.success(),
            "a child process failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let text = std::fs::read_to_string(&out)
            .unwrap_or_else(|e| panic!("child wrote no results to {}: {e}", out.display()));
        for line in text.lines() {
            let mut parts = line.split(' ');
            let (key, id, was_created) = (
                parts.next().unwrap().to_owned(),
                parts.next().unwrap().to_owned(),
                parts.next().unwrap() == "true",
            );
            if was_created {
                *created.entry(id.clone()).or_default() += 1;
            }
            by_key.entry(key).or_default().insert(id);
            outcomes += 1;
        }
    }

    assert_eq!(outcomes, PROCESSES * TASKS * KEYS, "every resolve reported");
    assert_eq!(by_key.len(), KEYS);
    for (key, ids) in &by_key {
        assert_eq!(
            ids.len(),
            1,
            "key {key} resolved to several sessions: {ids:?}"
        );
    }
    assert_eq!(created.len(), KEYS, "one creator per key");
    assert!(
        created.values().all(|&n| n == 1),
        "a session was created twice: {created:?}"
    );

    let store = PgSessionStore::connect_with(common::test_options(&url, &schema))
        .await
        .unwrap();
    let stored = store.list_sessions(SessionFilter::default()).await.unwrap();
    assert_eq!(
        stored.len(),
        KEYS,
        "exactly one session per key in the registry"
    );
    let stored_ids: HashSet<_> = stored.iter().map(|s| s.id.to_string()).collect();
    let resolved_ids: HashSet<_> = by_key.values().flatten().cloned().collect();
    assert_eq!(stored_ids, resolved_ids);
    store.close().await;
    drop(guard);
}
