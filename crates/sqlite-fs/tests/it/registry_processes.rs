//! Two OS processes resolving the same new keys against one registry file
//! agree on exactly one session per key.

use std::collections::HashMap;
use std::process::Command;

use airlock_core::testing::{agent, thread};
use airlock_core::{
    NewMessagingGroup, ResolveRequest, SessionFilter, SessionMode, SessionStore, SessionStoreExt,
};
use airlock_sqlite_fs::SqliteSessionStore;

const CHILD_ENV: &str = "AIRLOCK_TEST_REGISTRY_CHILD";
const KEYS: usize = 100;

/// Entry point of the child processes (a no-op when run as a normal test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_resolver() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = SqliteSessionStore::open_in(std::path::Path::new(&dir)).unwrap();
    let chat = store
        .ensure_messaging_group(NewMessagingGroup::new("proc", "chat"))
        .await
        .unwrap()
        .id;
    for i in 0..KEYS {
        let request = ResolveRequest::new(
            agent("procs"),
            Some(chat.clone()),
            Some(thread(&format!("t{i}"))),
            SessionMode::PerThread,
        );
        let resolved = store.resolve_session(request).await.unwrap();
        println!("KEY t{i} {}", resolved.session.id);
    }
}

/// Entry point of the children that only open a new registry.
#[test]
fn child_opener() {
    let Ok(dir) = std::env::var(OPENER_ENV) else {
        return;
    };
    // All children open at the same instant, not as they happen to start.
    let start: u128 = std::env::var(START_ENV).unwrap().parse().unwrap();
    while unix_ms() < start {
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    SqliteSessionStore::open_in(std::path::Path::new(&dir)).unwrap();
    println!("OPENED");
}

const OPENER_ENV: &str = "AIRLOCK_TEST_REGISTRY_OPENER";
const START_ENV: &str = "AIRLOCK_TEST_REGISTRY_START_MS";

fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

fn spawn_command(test: &str, env: &str, dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(env, dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

fn spawn_child(dir: &std::path::Path) -> std::process::Child {
    spawn_command(
        &crate::libtest_name(module_path!(), "child_resolver"),
        CHILD_ENV,
        dir,
    )
    .spawn()
    .unwrap()
}

#[test]
fn processes_opening_a_new_registry_at_once_all_succeed() {
    // Each of them switches the new file to WAL, which SQLite answers with
    // an immediate SQLITE_BUSY while another one is doing the same.
    for round in 0..15 {
        let dir = tempfile::tempdir().unwrap();
        let start = (unix_ms() + 300).to_string();
        let children: Vec<_> = (0..6)
            .map(|_| {
                let mut cmd = spawn_command(
                    &crate::libtest_name(module_path!(), "child_opener"),
                    OPENER_ENV,
                    dir.path(),
                );
                cmd.env(START_ENV, &start);
                cmd.spawn().unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success() && String::from_utf8_lossy(&out.stdout).contains("OPENED"),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

fn keys_of(output: std::process::Output) -> HashMap<String, String> {
    assert!(output.status.success(), "child failed: {output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        // libtest may print its own "test … " prefix on the first line.
        .filter_map(|l| l.split_once("KEY ").map(|(_, rest)| rest))
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

#[tokio::test]
async fn two_processes_resolve_one_session_per_key() {
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (spawn_child(dir.path()), spawn_child(dir.path()));
        let (a, b) = (
            keys_of(a.wait_with_output().unwrap()),
            keys_of(b.wait_with_output().unwrap()),
        );
        assert_eq!(a.len(), KEYS, "round {round}");
        assert_eq!(
            a, b,
            "round {round}: the processes disagree on a key's session"
        );
        let store = SqliteSessionStore::open_in(dir.path()).unwrap();
        let sessions = store.list_sessions(SessionFilter::default()).await.unwrap();
        assert_eq!(
            sessions.len(),
            KEYS,
            "round {round}: exactly one session per key"
        );
    }
}
