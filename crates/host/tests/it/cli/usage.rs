//! What a person meets first: `--help`, usage errors and flags that work
//! together, checked for the rough edges issue 17 listed.

use crate::cli::util::{TestCommand, TestDir, on_a_terminal};

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
        for flag in ["--data-dir", "--registry", "--host-id"] {
            assert!(!help.contains(flag), "{args:?} lists {flag}:\n{help}");
        }
        assert!(help.contains("--json"), "{args:?}:\n{help}");
    }
    let help = env.ok(&["sessions", "--help"]);
    assert!(
        help.contains("--data-dir") && help.contains("--registry") && help.contains("--host-id"),
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
fn send_without_a_body_names_every_way_to_give_one() {
    let env = TestDir::new();
    let run = env.cmd(&["send", "--session", "s"]).run();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    for flag in ["--text", "--attach", "--content-file"] {
        assert!(
            run.stderr.contains(flag),
            "{flag} not named: {}",
            run.stderr
        );
    }
    // The usage line must not call --text required: --attach alone is a message.
    let usage = run
        .stderr
        .lines()
        .find(|l| l.starts_with("Usage:"))
        .unwrap_or_else(|| panic!("no usage line: {}", run.stderr));
    assert!(
        !usage.contains("--session <SESSION> --text <TEXT>"),
        "{usage}"
    );
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

#[test]
fn completions_cover_every_command_and_load_in_bash() {
    let env = TestDir::new();
    let bash = env.ok(&["completions", "bash"]);
    for word in [
        "resolve",
        "deliver",
        "guest",
        "--agent-group",
        "--in-reply-to",
    ] {
        assert!(bash.contains(word), "bash completions lack {word}");
    }
    let script = env.file("airlock.bash", bash.as_bytes());
    let loaded = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source '{}' && complete -p airlock",
            script.display()
        ))
        .output()
        .expect("running bash");
    assert!(
        loaded.status.success() && String::from_utf8_lossy(&loaded.stdout).contains("airlock"),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = env.ok(&["completions", shell]);
        assert!(out.contains("resolve"), "{shell}: {out}");
    }
    let run = env.cmd(&["completions", "tcsh"]).run();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
}

#[test]
fn man_pages_are_generated_for_the_tool_and_each_command() {
    let env = TestDir::new();
    let out = env.root().join("man");
    env.cmd(&["man", "--out"]).path(&out).run().success();
    let page = |name: &str| {
        std::fs::read_to_string(out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let main = page("airlock.1");
    assert!(main.contains(".TH airlock 1"), "{main}");
    assert!(main.contains("resolve"), "{main}");
    let resolve = page("airlock-resolve.1");
    assert!(resolve.contains("agent\\-group"), "{resolve}");
    let poll = page("airlock-guest-poll.1");
    assert!(!poll.contains("data\\-dir"), "{poll}");
    assert!(
        !out.join("airlock-man.1").exists(),
        "the hidden command has no page"
    );
}

#[test]
fn doctor_shows_progress_on_a_terminal_only() {
    let env = TestDir::new();
    for n in 0..3 {
        env.session(&format!("progress-{n}"));
    }
    let shown = on_a_terminal(&env.data_dir(), &["doctor"], None);
    assert!(shown.contains("checking sessions ["), "{shown:?}");
    assert!(shown.contains("3 session(s) checked"), "{shown:?}");
    let json = on_a_terminal(&env.data_dir(), &["--json", "doctor"], None);
    assert!(!json.contains("checking sessions"), "{json:?}");
    // Not a terminal: nothing but the report (`ok` asserts an empty stderr).
    let piped = env.ok(&["doctor"]);
    assert!(
        !piped.contains("checking sessions") && !piped.contains('\u{1b}'),
        "{piped:?}"
    );
}
