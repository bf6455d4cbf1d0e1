//! What a person meets first: `--help`, usage errors and flags that work
//! together, checked for the rough edges issue 17 listed.

use crate::util::{TestCommand, TestDir};

#[test]
fn help_says_what_the_tool_does_not_what_the_crate_holds() {
    let env = TestDir::new();
    let help = env.ok(&["--help"]);
    let first = help.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("Run the session layer of an AI-agent host"),
        "{first}"
    );
    assert!(!help.contains("SessionManager"), "{help}");
}

#[test]
fn guest_commands_do_not_list_the_hosts_options() {
    let env = TestDir::new();
    for args in [
        &["guest", "--help"][..],
        &["guest", "poll", "--help"],
        &["guest", "reply", "--help"],
    ] {
        let help = env.ok(args);
        for flag in ["--data-dir", "--registry"] {
            assert!(!help.contains(flag), "{args:?} lists {flag}:\n{help}");
        }
        assert!(help.contains("--json"), "{args:?}:\n{help}");
    }
    let help = env.ok(&["sessions", "--help"]);
    assert!(
        help.contains("--data-dir") && help.contains("--registry"),
        "{help}"
    );
}

#[test]
fn usage_errors_do_not_show_the_data_dir_as_required() {
    let env = TestDir::new();
    let run = TestCommand::without_data_dir()
        .env("AIRLOCK_DATA_DIR", &env.data_dir())
        .env("AIRLOCK_REGISTRY", &env.root().join("r.db"))
        .args(&["send", "--session", "s"])
        .run();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let usage = run
        .stderr
        .lines()
        .find(|l| l.starts_with("Usage:"))
        .unwrap_or_else(|| panic!("no usage line: {}", run.stderr));
    assert!(
        !usage.contains("--data-dir") && !usage.contains("--registry"),
        "{usage}"
    );
    // The variables still choose the data dir and registry.
    let out = TestCommand::without_data_dir()
        .env("AIRLOCK_DATA_DIR", &env.data_dir())
        .env("AIRLOCK_REGISTRY", &env.root().join("r.db"))
        .args(&["resolve", "--agent-group", "a", "--mode", "shared"])
        .run()
        .success();
    assert!(out.contains(&format!("{}", env.root().display())), "{out}");
    assert!(env.root().join("r.db").is_file());
    assert!(!env.data_dir().join("airlock.db").exists());
}

#[test]
fn send_takes_attachments_without_text() {
    let env = TestDir::new();
    let (id, dir) = env.session("attach-only");
    let photo = env.file("photo.png", b"\x89PNG only a picture");
    let sent = env.json(&[
        "send",
        "--session",
        &id,
        "--attach",
        photo.to_str().unwrap(),
    ]);
    let local = sent["attachments"][0]["localPath"]
        .as_str()
        .unwrap_or_else(|| panic!("no attachment stored: {sent}"));
    assert_eq!(
        std::fs::read(dir.join(local)).unwrap(),
        b"\x89PNG only a picture"
    );
    let listed = env.json(&["messages", &id, "--direction", "in"]);
    let content: serde_json::Value =
        serde_json::from_str(listed["in"][0]["content"].as_str().unwrap()).unwrap();
    assert!(
        content.get("text").is_none(),
        "no text was given: {content}"
    );
    // Still refused: nothing at all, and attachments beside --content-file.
    let file = env.file("content.json", b"{}");
    for args in [
        &["send", "--session", &id][..],
        &[
            "send",
            "--session",
            &id,
            "--content-file",
            file.to_str().unwrap(),
            "--attach",
            photo.to_str().unwrap(),
        ],
    ] {
        let run = env.cmd(args).run();
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
    }
}

#[test]
#[cfg_attr(
    not(airlock_pg),
    ignore = "needs AIRLOCK_TEST_PG_URL (set it and rebuild)"
)]
fn postgres_errors_do_not_end_with_the_servers_source_line() {
    let Ok(url) = std::env::var("AIRLOCK_TEST_PG_URL") else {
        assert!(
            std::env::var_os("AIRLOCK_REQUIRE_PG").is_none(),
            "this test must run here (AIRLOCK_REQUIRE_PG is set)"
        );
        return;
    };
    // The same server, a database that does not exist.
    let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
    let missing = format!("{base}/airlock_h17_no_such_database");
    let env = TestDir::new();
    let line = env
        .cmd(&["--registry", &missing])
        .args(&["resolve", "--agent-group", "a", "--mode", "shared"])
        .run()
        .failure();
    assert!(line.contains("does not exist"), "{line}");
    assert!(!line.contains(" at line "), "{line}");
}
