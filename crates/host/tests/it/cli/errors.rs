//! Every command given a missing session, an unsafe id or an unreadable file
//! fails with exactly one stderr line naming the problem, and never panics.

use serde_json::{Value, json};
use std::path::PathBuf;

use crate::cli::util::{TestDir, str_field};

#[test]
fn bad_input_fails_with_one_line_naming_the_problem() {
    let env = TestDir::new();
    let (id, dir) = env.session("errors");
    let id = id.as_str();
    let dir = dir.to_str().unwrap().to_owned();
    let missing_file = env.root().join("no-such-file.bin");
    let missing = missing_file.to_str().unwrap();
    let a_dir = env.root().join("files");
    std::fs::create_dir_all(&a_dir).unwrap();
    let a_dir = a_dir.to_str().unwrap();
    let not_a_session = env.root().join("plain-folder");
    std::fs::create_dir_all(&not_a_session).unwrap();
    let not_a_session = not_a_session.to_str().unwrap();
    let ghost = "sess-1700000000000-0123456789abcdef";
    let sent = env.json(&["send", "--session", id, "--text", "to answer"]);
    let in_reply = sent["id"].as_str().unwrap();

    // (arguments, text the error line must contain)
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // resolve
        (
            vec!["resolve", "--agent-group", "../x", "--mode", "shared"],
            "--agent-group",
        ),
        (
            vec!["resolve", "--agent-group", "a/b", "--mode", "shared"],
            "--agent-group",
        ),
        (
            vec![
                "resolve",
                "--agent-group",
                "ok",
                "--thread",
                "../x",
                "--mode",
                "shared",
            ],
            "--thread",
        ),
        (
            vec!["resolve", "--agent-group", "ok", "--mode", "sideways"],
            "--mode",
        ),
        // The list of modes ends with the last one, not a comma.
        (
            vec!["resolve", "--agent-group", "ok", "--mode", "sideways"],
            "per-thread, agent-shared\n",
        ),
        (
            vec!["--registry", "mysql://x/y", "sessions"],
            "--registry: unsupported scheme `mysql://`",
        ),
        (
            vec![
                "--registry",
                "mysql://x/y",
                "resolve",
                "--agent-group",
                "a",
                "--mode",
                "shared",
            ],
            "--registry: unsupported scheme `mysql://`",
        ),
        // send
        (vec!["send", "--session", ghost, "--text", "hi"], ghost),
        (
            vec!["send", "--session", "../x", "--text", "hi"],
            "--session",
        ),
        (
            vec!["send", "--session", "a/b", "--text", "hi"],
            "--session",
        ),
        (
            vec!["send", "--session", id, "--text", "hi", "--id", "../x"],
            "--id",
        ),
        (
            vec!["send", "--session", id, "--text", "hi", "--attach", missing],
            missing,
        ),
        (
            vec!["send", "--session", id, "--text", "hi", "--attach", a_dir],
            a_dir,
        ),
        (
            vec!["send", "--session", id, "--content-file", missing],
            missing,
        ),
        (
            vec!["send", "--session", id, "--content-file", a_dir],
            a_dir,
        ),
        // show / messages
        (vec!["show", ghost], ghost),
        (vec!["show", "../x"], "session"),
        (vec!["show", "a/b"], "session"),
        (vec!["messages", ghost], ghost),
        (vec!["messages", "../x"], "session"),
        (vec!["messages", "a/b"], "session"),
        (
            vec!["messages", id, "--direction", "sideways"],
            "--direction",
        ),
        // deliver / doctor
        (vec!["deliver", "--once", "--session", ghost], ghost),
        (vec!["deliver", "--once", "--session", "../x"], "--session"),
        (vec!["deliver", "--once", "--session", "a/b"], "--session"),
        (vec!["doctor", "--session", ghost], ghost),
        (vec!["doctor", "--session", "../x"], "--session"),
        (vec!["doctor", "--session", "a/b"], "--session"),
        // guest poll
        (vec!["guest", "poll", "--session-dir", missing], missing),
        (
            vec!["guest", "poll", "--session-dir", not_a_session],
            not_a_session,
        ),
        // guest reply
        (
            vec![
                "guest",
                "reply",
                "--session-dir",
                not_a_session,
                "--in-reply-to",
                in_reply,
                "--text",
                "x",
            ],
            not_a_session,
        ),
        (
            vec![
                "guest",
                "reply",
                "--session-dir",
                &dir,
                "--in-reply-to",
                "../x",
                "--text",
                "x",
            ],
            "--in-reply-to",
        ),
        (
            vec![
                "guest",
                "reply",
                "--session-dir",
                &dir,
                "--in-reply-to",
                "a/b",
                "--text",
                "x",
            ],
            "--in-reply-to",
        ),
        // An id that is safe but names no inbound message.
        (
            vec![
                "guest",
                "reply",
                "--session-dir",
                &dir,
                "--in-reply-to",
                "msg-never-sent",
                "--text",
                "x",
            ],
            "--in-reply-to: no inbound message msg-never-sent",
        ),
        (
            vec![
                "guest",
                "reply",
                "--session-dir",
                &dir,
                "--in-reply-to",
                in_reply,
                "--text",
                "x",
                "--file",
                missing,
            ],
            missing,
        ),
        (
            vec![
                "guest",
                "reply",
                "--session-dir",
                &dir,
                "--in-reply-to",
                in_reply,
                "--text",
                "x",
                "--file",
                a_dir,
            ],
            a_dir,
        ),
    ];
    let mut problems = Vec::new();
    for (args, expected) in &cases {
        for json in [false, true] {
            // From the root, so a URL taken as a relative path would show there.
            let mut cmd = env.cmd(args).current_dir(env.root());
            if json {
                cmd = cmd.json();
            }
            // The newline marks the end of the line, for endings that matter.
            let line = cmd.run().failure() + "\n";
            if !line.starts_with("airlock: error: ") || !line.contains(expected) {
                problems.push(format!(
                    "{args:?} (json: {json}): {line:?} lacks {expected:?}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // None of the failures wrote anything: the mailbox holds only the message
    // sent above, still pending (no ack), and is sound.
    let listed = env.json(&["messages", id]);
    assert_eq!(listed["in"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["in"][0]["status"], "pending", "{listed}");
    assert_eq!(listed["out"], serde_json::json!([]), "{listed}");
    assert!(!env.root().join("mysql:").exists(), "a URL taken as a path");
    env.ok(&["doctor"]);
}

#[test]
fn an_unreadable_registry_fails_with_one_line() {
    let env = TestDir::new();
    // The data dir is a file: nothing can be created below it.
    std::fs::write(env.data_dir(), b"not a folder").unwrap();
    for args in [
        &["sessions"][..],
        &["resolve", "--agent-group", "x", "--mode", "shared"],
        &["doctor"],
        &["demo"],
    ] {
        let line = env.cmd(args).run().failure();
        assert!(line.starts_with("airlock: error: "), "{args:?}: {line}");
    }
}

#[test]
fn a_failed_guest_reply_leaves_no_files_and_no_row() {
    let env = TestDir::new();
    let (id, dir) = env.session("reply-fail");
    let sent = env.json(&["send", "--session", &id, "--text", "hi"]);
    let good = env.file("good.txt", b"fine");
    let missing = env.root().join("missing.txt");
    let line = env
        .cmd(&["guest", "reply", "--session-dir", dir.to_str().unwrap()])
        .args(&["--in-reply-to", sent["id"].as_str().unwrap(), "--text", "x"])
        .args(&["--file", good.to_str().unwrap(), "--file"])
        .path(&missing)
        .run()
        .failure();
    assert!(line.contains("missing.txt"), "{line}");
    let outbox = dir.join("outbox");
    let leftovers: Vec<_> = std::fs::read_dir(&outbox)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "orphaned outbox files: {leftovers:?}");
    let listed = env.json(&["messages", &id, "--direction", "out"]);
    assert_eq!(listed["out"], json!([]), "{listed}");
    assert_eq!(env.ok(&["deliver", "--once"]), "");
}

#[test]
fn deliver_survives_hostile_outbound_rows() {
    let env = TestDir::new();
    let (_, dir) = env.session("hostile");
    // Something outside the session folder a guest might try to exfiltrate.
    std::fs::write(env.data_dir().join("secret.txt"), b"host secret").unwrap();
    let conn = rusqlite::Connection::open(dir.join("outbound.db")).unwrap();
    let rows = [
        ("../evil", 101, r#"{"files":["../../../secret.txt"]}"#),
        (
            "trav",
            103,
            r#"{"files":["../../../../secret.txt","/etc/passwd"]}"#,
        ),
        ("raw", 105, "not json at all"),
        ("odd", 107, r#"{"files":"not an array","text":7}"#),
    ];
    for (id, seq, content) in rows {
        conn.execute(
            "INSERT INTO messages_out (id, seq, timestamp, kind, content) \
             VALUES (?1, ?2, '2026-01-01T00:00:00.000Z', 'chat', ?3)",
            rusqlite::params![id, seq, content],
        )
        .unwrap();
    }
    drop(conn);
    let run = env.cmd(&["deliver", "--once"]).run();
    // Warnings (logged, not errors) say what was refused.
    assert!(run.stderr.contains("unsafe message id"), "{}", run.stderr);
    let out = run.success_with_warnings();
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("deliver prints JSON lines"))
        .collect();
    let ids: Vec<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["../evil", "trav", "raw", "odd"]);
    for line in &lines {
        assert_eq!(
            line["files"],
            json!([]),
            "nothing outside the outbox: {line}"
        );
    }
    assert!(
        lines[0]["files_error"]
            .as_str()
            .unwrap()
            .contains("../evil"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[2]["content"], "not json at all");
    assert!(!out.contains("host secret"));
    assert_eq!(
        env.ok(&["deliver", "--once"]),
        "",
        "each row delivered once"
    );
}

#[test]
fn a_broken_or_missing_mailbox_fails_with_one_line_naming_the_file() {
    let env = TestDir::new();
    let (id, dir) = env.session("broken");
    let id = id.as_str();
    let dir_arg = dir.to_str().unwrap().to_owned();
    let commands: [&[&str]; 5] = [
        &["show", id],
        &["messages", id],
        &["send", "--session", id, "--text", "x"],
        &["deliver", "--once"],
        &["doctor"],
    ];
    let inbound = dir.join("inbound.db");
    // A broken inbound.db is a file the guest can write, not the host's
    // truth: reads come from host state, the next write repairs the file,
    // and doctor reports the tamper event until it is acknowledged.
    std::fs::write(&inbound, b"this is not a SQLite database, just bytes").unwrap();
    env.cmd(&["show", id]).run().success();
    env.cmd(&["messages", id]).run().success();
    env.cmd(&["send", "--session", id, "--text", "x"])
        .run()
        .success_with_warnings();
    env.cmd(&["guest", "poll", "--session-dir", &dir_arg])
        .run()
        .success();
    let line = env.cmd(&["doctor"]).run().failure();
    assert!(line.contains("tamper event"), "{line}");
    let doctor = env.cmd(&["doctor", "--json"]).run();
    assert!(
        doctor.stdout.contains("changed in place") || doctor.stdout.contains("replaced"),
        "{}",
        doctor.stdout
    );
    env.cmd(&["doctor", "--ack"]).run().success_with_warnings();
    env.cmd(&["doctor"]).run().success();
    let shown = env.ok(&["show", id]);
    assert!(shown.contains("tamper:       0"), "{shown}");

    std::fs::remove_dir_all(&dir).unwrap();
    for args in commands {
        let line = env.cmd(args).run().failure();
        assert!(
            line.contains("inbound.db") || line.contains("doctor found"),
            "{args:?}: {line}"
        );
    }
    let doctor = env.cmd(&["doctor"]).run();
    assert!(doctor.stdout.contains("missing_file"), "{}", doctor.stdout);
}

#[test]
fn usage_errors_exit_2_with_clap_help_and_no_panic() {
    let env = TestDir::new();
    for args in [
        &["resolve", "--agent-group", "a"][..],
        &[
            "resolve",
            "--agent-group",
            "a",
            "--mode",
            "shared",
            "--channel",
            "slack",
        ],
        &["send", "--session", "s"],
        &[
            "send",
            "--session",
            "s",
            "--text",
            "t",
            "--content-file",
            "f",
        ],
        &["guest", "reply", "--session-dir", "d", "--text", "t"],
        &["no-such-command"],
    ] {
        let run = env.cmd(args).run();
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.starts_with("error: "),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(run.stdout, "", "{args:?}");
    }
    let help = env.ok(&["--help"]);
    for command in [
        "resolve", "send", "sessions", "show", "messages", "deliver", "guest", "doctor", "demo",
    ] {
        assert!(help.contains(command), "--help lacks {command}: {help}");
    }
}

#[test]
fn a_guest_given_a_nonce_in_a_folder_the_host_never_prepared_says_so() {
    use airlock_sqlite_fs::host::MOUNT_NONCE_ENV;
    let env = TestDir::new();
    let (_, dir) = env.session("ag-no-nonce");
    let dir_arg = dir.display().to_string();
    for args in [
        &["guest", "poll", "--session-dir", &dir_arg][..],
        &[
            "guest",
            "reply",
            "--session-dir",
            &dir_arg,
            "--in-reply-to",
            "m",
            "--text",
            "x",
        ],
    ] {
        let line = env
            .cmd(args)
            .env(MOUNT_NONCE_ENV, std::path::Path::new("0123456789abcdef"))
            .run()
            .failure();
        assert!(
            line.contains("no nonce was written") && line.contains(".airlock-nonce"),
            "{args:?}: {line}"
        );
        assert!(!line.contains("stale mount"), "{line}");
    }
}

#[test]
fn read_commands_on_a_data_dir_that_does_not_exist_fail_and_create_nothing() {
    let env = TestDir::new();
    let ghost = "sess-1700000000000-0123456789abcdef";
    let typo = env.root().join("data-typo");
    let registry = env.root().join("no-such.db");
    let sqlite_url = format!("sqlite://{}", registry.display());
    let reads: [&[&str]; 9] = [
        &["sessions"],
        &["show", ghost],
        &["messages", ghost],
        &["send", "--session", ghost, "--text", "x"],
        &["deliver", "--once"],
        &["failures"],
        &["doctor"],
        &["routing", ghost],
        &["destinations", ghost, "--file", "x.json"],
    ];
    for args in reads {
        let line = crate::cli::util::TestCommand::new(typo.clone())
            .args(args)
            .run()
            .failure();
        assert!(
            line.contains("data dir") && line.contains("does not exist"),
            "{args:?}: {line}"
        );
        assert!(!typo.exists(), "{args:?} created {}", typo.display());
        // The data dir exists but holds no registry: refused the same way.
        std::fs::create_dir_all(env.data_dir()).unwrap();
        for registry_args in [&[][..], &["--registry", &sqlite_url]] {
            let line = env.cmd(registry_args).args(args).run().failure();
            assert!(line.contains("no registry at"), "{args:?}: {line}");
        }
        assert!(!env.data_dir().join("airlock.db").exists(), "{args:?}");
        assert!(!registry.exists(), "{args:?}");
    }
    // A command that creates sessions creates the data dir and says where.
    let out = crate::cli::util::TestCommand::new(typo.clone())
        .args(&["resolve", "--agent-group", "a", "--mode", "shared"])
        .run()
        .success();
    let canonical = std::fs::canonicalize(&typo).unwrap();
    assert!(
        out.starts_with(&format!("created data dir {}\n", canonical.display())),
        "{out}"
    );
    let again = crate::cli::util::TestCommand::new(typo.clone())
        .args(&[
            "--json",
            "resolve",
            "--agent-group",
            "a",
            "--mode",
            "shared",
        ])
        .run()
        .success();
    assert!(!again.contains("created_data_dir"), "{again}");
    crate::cli::util::TestCommand::new(typo)
        .args(&["sessions"])
        .run()
        .success();
}

#[test]
fn a_guest_whose_mount_hides_the_hosts_nonce_refuses_to_start() {
    use airlock_sqlite_fs::host::{MOUNT_NONCE_ENV, write_mount_nonce};
    let env = TestDir::new();
    let (_, dir) = env.session("ag-mount");
    let dir_arg = dir.display().to_string();
    let poll = ["guest", "poll", "--session-dir", &dir_arg];
    let nonce = write_mount_nonce(&dir).unwrap();
    let out = env
        .cmd(&poll)
        .env(MOUNT_NONCE_ENV, std::path::Path::new(&nonce))
        .run()
        .success();
    assert!(out.contains("no pending messages"), "{out}");
    // What a guest behind a stale mount sees: not the nonce the host just wrote.
    let line = env
        .cmd(&poll)
        .env(MOUNT_NONCE_ENV, std::path::Path::new("0123456789abcdef"))
        .run()
        .failure();
    assert!(
        line.contains("stale mount") && line.contains(".airlock-nonce"),
        "{line}"
    );
}

/// Fault campaign, I/O errors: an error whose line cannot be written (stderr
/// on a full disk) still exits non-zero, never with a panic (exit 101).
#[test]
fn io_errors_an_unwritable_stderr_is_no_panic() {
    let env = TestDir::new();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_airlock"))
        .arg("--data-dir")
        .arg(env.data_dir())
        .args(["show", "sess-1700000000000-0123456789abcdef"])
        .stderr(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn disk_full_half_made_session_is_completed_by_the_next_resolve() {
    // A resolve cut short by a full disk, whose undo failed too, leaves the
    // registry row and a folder with `inbound.db` only; the chat's next
    // resolve (the caller retries what failed) must finish the folder.
    let env = TestDir::new();
    let args = [
        "resolve",
        "--agent-group",
        "a",
        "--channel",
        "test",
        "--platform-id",
        "chat-1",
        "--mode",
        "shared",
    ];
    let first = env.json(&args);
    let dir = PathBuf::from(str_field(&first, "dir"));
    std::fs::remove_file(dir.join("outbound.db")).unwrap();
    std::fs::remove_dir(dir.join("outbox")).unwrap();
    let again = env.json(&args);
    assert_eq!(str_field(&again, "id"), str_field(&first, "id"));
    assert!(
        dir.join("outbound.db").is_file(),
        "outbound.db not made again"
    );
    assert!(dir.join("outbox").is_dir(), "outbox/ not made again");
    env.cmd(&["doctor"]).run().success();
}
