//! The CLI against a hostile guest and an unusual data dir (issue 10 cases
//! 5, 6 and 7; issue 17 item 5): escapes in guest rows, FIFOs as input
//! files, a symlinked data dir, a session folder that cannot be made, and a
//! read-only data dir.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::cli::util::{TestCommand, TestDir};

/// Runs the binary with `args`, killing it (and failing the test) if it is
/// still running after a minute: a FIFO opened for reading blocks forever.
fn run_bounded(data_dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_airlock"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("AIRLOCK_MOUNT_NONCE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            return (status.code(), stderr);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("airlock {args:?} blocked for more than 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

fn guest_row(dir: &Path, id: &str, seq: i64, kind: &str, timestamp: &str) {
    let conn = rusqlite::Connection::open(dir.join("outbound.db")).unwrap();
    conn.execute(
        "INSERT INTO messages_out (id, seq, timestamp, kind, content) VALUES (?1, ?2, ?3, ?4, '{}')",
        rusqlite::params![id, seq, timestamp, kind],
    )
    .unwrap();
}

#[test]
fn guest_strings_reach_the_terminal_without_escapes() {
    let env = TestDir::new();
    let (id, dir) = env.session("escapes");
    guest_row(
        &dir,
        "evil",
        1,
        "\u{1b}]0;owned\u{7}chat",
        "\u{1b}[2J2026-01-01",
    );
    std::fs::create_dir_all(dir.join("outbox").join("x\u{1b}[31mred")).unwrap();
    let out = env.ok(&["messages", &id]);
    assert!(out.contains("evil") && out.contains("2026-01-01"), "{out}");
    let doctor = env.cmd(&["doctor"]).run();
    for text in [&out, &doctor.stdout, &doctor.stderr] {
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "a terminal control reached the output: {text:?}"
        );
    }
    assert!(doctor.stdout.contains("orphan_outbox"), "{}", doctor.stdout);
}

#[test]
fn fifo_input_files_are_refused_without_blocking() {
    let env = TestDir::new();
    let (id, dir) = env.session("fifo");
    let sent = env.json(&["send", "--session", &id, "--text", "hi"]);
    let fifo = env.root().join("pipe");
    mkfifo(&fifo);
    let fifo_arg = fifo.to_str().unwrap();
    let (code, stderr) = run_bounded(
        &env.data_dir(),
        &[
            "send",
            "--session",
            &id,
            "--text",
            "x",
            "--attach",
            fifo_arg,
        ],
    );
    assert_ne!(code, Some(0));
    assert!(stderr.contains("fifo"), "{stderr}");
    let in_reply_to = sent["id"].as_str().unwrap();
    let session_dir = dir.to_str().unwrap();
    let (code, stderr) = run_bounded(
        &env.data_dir(),
        &[
            "guest",
            "reply",
            "--session-dir",
            session_dir,
            "--in-reply-to",
            in_reply_to,
            "--text",
            "x",
            "--file",
            fifo_arg,
        ],
    );
    assert_ne!(code, Some(0));
    assert!(stderr.contains("fifo"), "{stderr}");
    let leftovers = std::fs::read_dir(dir.join("outbox"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(leftovers, 0, "a refused reply left an outbox folder");
}

#[test]
fn a_symlinked_data_dir_works_end_to_end() {
    let env = TestDir::new();
    let real = env.root().join("real-data");
    std::fs::create_dir_all(&real).unwrap();
    let link = env.root().join("linked-data");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let run = |args: &[&str]| TestCommand::new(link.clone()).args(args).run().success();
    let resolved: serde_json::Value = serde_json::from_str(&run(&[
        "--json",
        "resolve",
        "--agent-group",
        "ag",
        "--mode",
        "shared",
    ]))
    .unwrap();
    let id = resolved["id"].as_str().unwrap().to_owned();
    let dir = PathBuf::from(resolved["dir"].as_str().unwrap());
    assert!(dir.join("inbound.db").is_file(), "{resolved}");
    run(&["send", "--session", &id, "--text", "hello"]);
    let sessions: serde_json::Value = serde_json::from_str(&run(&["--json", "sessions"])).unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    guest_row(&dir, "r-1", 3, "chat", "2026-01-01 00:00:00");
    let delivered = run(&["deliver", "--once"]);
    assert!(delivered.contains("\"r-1\""), "{delivered}");
    let doctor = TestCommand::new(link.clone()).args(&["doctor"]).run();
    assert_eq!(doctor.code, Some(0), "{}{}", doctor.stdout, doctor.stderr);
}

#[test]
fn a_session_folder_that_cannot_be_made_leaves_no_registry_row() {
    let env = TestDir::new();
    env.session("fine");
    // The agent group's folder is a file: the session folder cannot be made.
    std::fs::write(env.data_dir().join("v2-sessions").join("broken"), b"x").unwrap();
    env.cmd(&["resolve", "--agent-group", "broken", "--mode", "shared"])
        .run()
        .failure();
    let sessions = env.json(&["sessions"]);
    let groups: Vec<&str> = sessions
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["agent_group_id"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["fine"], "a session without a folder stayed listed");
    assert_eq!(env.ok(&["deliver", "--once"]), "");
}

/// A tmpfs mounted at a fresh folder, unmounted on drop.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: PathBuf) -> Option<Mount> {
        std::fs::create_dir_all(&at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=32m", "tmpfs"])
            .arg(&at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Mount(at))
    }

    fn remount_read_only(&self) {
        let status = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount ro failed");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn read_commands_work_on_a_read_only_data_dir() {
    let env = TestDir::new();
    let Some(mount) = Mount::tmpfs(env.root().join("mnt")) else {
        eprintln!(
            "SKIPPED read_commands_work_on_a_read_only_data_dir: cannot mount a tmpfs here (needs root)"
        );
        return;
    };
    let data = mount.0.join("data");
    let cmd = |args: &[&str]| TestCommand::new(data.clone()).args(args).run();
    let resolved: serde_json::Value = serde_json::from_str(
        &cmd(&[
            "--json",
            "resolve",
            "--agent-group",
            "ro",
            "--mode",
            "shared",
        ])
        .success(),
    )
    .unwrap();
    let id = resolved["id"].as_str().unwrap().to_owned();
    let dir = PathBuf::from(resolved["dir"].as_str().unwrap());
    cmd(&["send", "--session", &id, "--text", "kept"]).success();
    guest_row(&dir, "r-1", 3, "chat", "2026-01-01 00:00:00");
    mount.remount_read_only();

    let sessions: serde_json::Value =
        serde_json::from_str(&cmd(&["--json", "sessions"]).success()).unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    let shown: serde_json::Value =
        serde_json::from_str(&cmd(&["--json", "show", &id]).success()).unwrap();
    assert_eq!(shown["messages"]["inbound"], json!(1), "{shown}");
    assert_eq!(shown["messages"]["outbound"], json!(1), "{shown}");
    let listed: serde_json::Value =
        serde_json::from_str(&cmd(&["--json", "messages", &id]).success()).unwrap();
    assert_eq!(listed["in"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["out"][0]["id"], json!("r-1"), "{listed}");
    cmd(&["doctor"]).success();
    let line = cmd(&["resolve", "--agent-group", "new", "--mode", "shared"]).failure();
    assert!(line.to_lowercase().contains("read-only"), "{line}");
    let line = cmd(&["send", "--session", &id, "--text", "x"]).failure();
    assert!(line.to_lowercase().contains("read-only"), "{line}");
}
