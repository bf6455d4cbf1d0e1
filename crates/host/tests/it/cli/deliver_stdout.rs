//! `airlock deliver` counts a line as delivered only once it was written
//! and, on a pipe, read: a full disk or a reader that leaves loses nothing.

use std::collections::HashSet;
use std::process::{Command, Stdio};

use airlock_core::MessageId;
use airlock_core::mailbox::NewOutboundMessage;
use airlock_sqlite_fs::GuestMailbox;
use serde_json::Value;

use crate::cli::util::TestDir;

/// A session whose guest wrote `n` replies; returns their ids.
pub(crate) fn replies(env: &TestDir, n: usize) -> Vec<String> {
    let (_, dir) = env.session("pipe-agent");
    let guest = GuestMailbox::open(&dir).unwrap();
    (0..n)
        .map(|i| {
            let id = format!("reply-{i}");
            let msg =
                NewOutboundMessage::new(MessageId::new(&id).unwrap(), "chat", r#"{"text":"hi"}"#);
            guest.write_message_out(&msg).unwrap();
            id
        })
        .collect()
}

pub(crate) fn ids(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("deliver prints JSON lines");
            v["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// Which of the child's streams goes to /dev/full.
enum Full {
    Stdout,
    Stderr,
}

/// `airlock deliver --once` over `env` with `stream` on /dev/full, where
/// every write fails (ENOSPC; std's stdio ignores only EBADF).
fn deliver_once_with_full(env: &TestDir, stream: Full) -> std::process::Output {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_airlock"));
    cmd.arg("--data-dir")
        .arg(env.data_dir())
        .args(["deliver", "--once"])
        .env("RUST_LOG", "warn");
    match stream {
        Full::Stdout => cmd.stdout(full),
        Full::Stderr => cmd.stderr(full),
    };
    cmd.output().unwrap()
}

#[test]
fn a_failed_write_to_stdout_is_not_a_delivery() {
    let env = TestDir::new();
    let expected = replies(&env, 1);
    let out = deliver_once_with_full(&env, Full::Stdout);
    assert!(!out.status.success(), "exit code must say it failed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("still due"), "{stderr}");
    // Still due: the next pass prints it.
    assert_eq!(ids(&env.ok(&["deliver", "--once"])), expected);
    assert_eq!(env.ok(&["deliver", "--once"]), "");
}

#[test]
fn a_reader_that_stops_after_one_line_loses_nothing() {
    let env = TestDir::new();
    let expected = replies(&env, 5);
    let script = format!(
        "'{}' --data-dir '{}' deliver --once | head -n1",
        env!("CARGO_BIN_EXE_airlock"),
        env.data_dir().display()
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let first = ids(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(first, expected[..1]);
    let rest = ids(&env.ok(&["deliver", "--once"]));
    assert_eq!(
        rest,
        expected[1..],
        "every line head did not read is still due"
    );
    let all: HashSet<_> = first.iter().chain(&rest).collect();
    assert_eq!(all.len(), 5);
}

/// Regression of the io-errors scenario (deliver at p = 0.1 panicked with
/// "failed printing to stderr"): a warning logged while stderr fails is
/// dropped, and delivery goes on.
#[test]
fn io_errors_a_failing_stderr_never_panics_a_delivery() {
    let env = TestDir::new();
    let (_, dir) = env.session("stderr-agent");
    let guest = GuestMailbox::open(&dir).unwrap();
    // An unreadable deliver_after: the engine warns, then delivers it.
    let mut msg =
        NewOutboundMessage::new(MessageId::new("late").unwrap(), "chat", r#"{"text":"hi"}"#);
    msg.deliver_after = Some(airlock_core::Timestamp::now());
    guest.write_message_out(&msg).unwrap();
    let changed = rusqlite::Connection::open(dir.join("outbound.db"))
        .unwrap()
        .execute("UPDATE messages_out SET deliver_after = 'soon'", [])
        .unwrap();
    assert_eq!(changed, 1);
    let expected = vec!["late".to_owned()];
    let out = deliver_once_with_full(&env, Full::Stderr);
    assert!(out.status.success(), "{:?}", out.status);
    assert_eq!(ids(&String::from_utf8_lossy(&out.stdout)), expected);
}
