//! Snapshots of each command's human and `--json` output, with everything
//! that changes between runs redacted, plus explicit checks of the JSON keys
//! scripts rely on (so accepting a snapshot cannot silently drop them).

use serde_json::Value;

use crate::cli::util::{TestDir, assert_keys, str_field};

/// Snapshots `text` with the redactions of `env`.
fn snap(env: &TestDir, name: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    for (regex, replacement) in env.filters() {
        settings.add_filter(&regex, replacement);
    }
    settings.bind(|| insta::assert_snapshot!(name, text));
}

/// `$ airlock ARGS` followed by what it printed, for a readable snapshot.
fn transcript(env: &TestDir, runs: &[&[&str]]) -> String {
    let mut text = String::new();
    for args in runs {
        text.push_str(&format!("$ airlock {}\n", args.join(" ")));
        text.push_str(&env.ok(args));
    }
    text
}

/// One session holding a message with two attachments.
fn session_with_message(env: &TestDir) -> (String, std::path::PathBuf, Value) {
    let (id, dir) = env.session("snap-agent");
    let a = env.file("photo.png", b"\x89PNG fake image bytes");
    let b = env.file("notes.txt", b"hello notes\n");
    let sent = env.json(&[
        "send",
        "--session",
        &id,
        "--text",
        "look at these",
        "--attach",
        a.to_str().unwrap(),
        "--attach",
        b.to_str().unwrap(),
    ]);
    (id, dir, sent)
}

#[test]
fn resolve_human_and_json() {
    let env = TestDir::new();
    let text = transcript(
        &env,
        &[
            &[
                "resolve",
                "--agent-group",
                "ag1",
                "--channel",
                "slack",
                "--platform-id",
                "C123",
                "--thread",
                "t1",
                "--mode",
                "per-thread",
            ],
            &[
                "--json",
                "resolve",
                "--agent-group",
                "ag1",
                "--channel",
                "slack",
                "--platform-id",
                "C123",
                "--thread",
                "t1",
                "--mode",
                "per-thread",
            ],
            &[
                "--json",
                "resolve",
                "--agent-group",
                "ag2",
                "--mode",
                "shared",
            ],
        ],
    );
    snap(&env, "resolve", &text);

    let v = env.json(&["resolve", "--agent-group", "ag3", "--mode", "agent-shared"]);
    assert_keys(&v, &["id", "created", "dir"]);
    assert_eq!(v["created"], true);
    // `resolve --json` names every field of a session as `sessions --json` does.
    let listed = env.json(&["sessions"]);
    let listed = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == v["id"])
        .expect("the resolved session is listed");
    for (key, value) in listed.as_object().unwrap() {
        assert_eq!(&v[key], value, "resolve --json differs in {key:?}: {v}");
    }
    let dir = std::path::PathBuf::from(str_field(&v, "dir"));
    assert!(dir.is_absolute(), "dir must be absolute: {}", dir.display());
    assert!(
        dir.join("inbound.db").is_file(),
        "no inbound.db in {}",
        dir.display()
    );
    let again = env.json(&["resolve", "--agent-group", "ag3", "--mode", "agent-shared"]);
    assert_eq!(again["created"], false);
    assert_eq!(again["id"], v["id"]);
    // SPEC: without a chat, `shared` creates a new session on every call.
    let one = env.json(&["resolve", "--agent-group", "ag4", "--mode", "shared"]);
    let two = env.json(&["resolve", "--agent-group", "ag4", "--mode", "shared"]);
    assert_eq!(
        (&one["created"], &two["created"]),
        (&Value::Bool(true), &Value::Bool(true))
    );
    assert_ne!(one["id"], two["id"]);
}

#[test]
fn send_with_attachments_human_and_json() {
    let env = TestDir::new();
    let (id, dir) = env.session("snap-agent");
    let a = env.file("photo.png", b"\x89PNG fake image bytes");
    let b = env.file("notes.txt", b"hello notes\n");
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let human = transcript(
        &env,
        &[&[
            "send",
            "--session",
            &id,
            "--text",
            "first",
            "--attach",
            a,
            "--attach",
            b,
        ]],
    );
    let json = transcript(
        &env,
        &[&[
            "--json",
            "send",
            "--session",
            &id,
            "--text",
            "second",
            "--attach",
            a,
            "--attach",
            b,
            "--id",
            "msg-fixed",
        ]],
    );
    let retry = transcript(
        &env,
        &[&[
            "send",
            "--session",
            &id,
            "--text",
            "second",
            "--attach",
            a,
            "--attach",
            b,
            "--id",
            "msg-fixed",
        ]],
    );
    snap(&env, "send", &format!("{human}{json}{retry}"));

    let v: Value = serde_json::from_str(json.lines().skip(1).collect::<String>().as_str())
        .expect("send --json prints JSON");
    assert_keys(&v, &["id", "seq", "attachments"]);
    assert_eq!(v["id"], "msg-fixed");
    assert_eq!(v["seq"].as_i64().unwrap() % 2, 0, "inbound seqs are even");
    let attachments = v["attachments"].as_array().expect("attachments array");
    assert_eq!(attachments.len(), 2);
    for (entry, (name, bytes)) in attachments.iter().zip([
        ("photo.png", &b"\x89PNG fake image bytes"[..]),
        ("notes.txt", &b"hello notes\n"[..]),
    ]) {
        assert_keys(entry, &["name", "localPath"]);
        assert_eq!(entry["name"], name);
        let local = str_field(entry, "localPath");
        assert_eq!(std::fs::read(dir.join(&local)).unwrap(), bytes, "{local}");
    }
}

#[test]
fn sessions_and_show_human_and_json() {
    let env = TestDir::new();
    let (id, dir, _) = session_with_message(&env);
    let text = transcript(
        &env,
        &[
            &["sessions"],
            &["--json", "sessions"],
            &["sessions", "--status", "archived"],
            &["--json", "sessions", "--status", "archived"],
            &["show", &id],
            &["--json", "show", &id],
        ],
    );
    snap(&env, "sessions_show", &text);

    let listed = env.json(&["sessions"]);
    let listed = listed.as_array().expect("sessions --json is an array");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    let shown = env.json(&["show", &id]);
    assert_keys(&shown, &["id", "dir", "messages"]);
    assert_eq!(str_field(&shown, "dir"), dir.display().to_string());
}

#[test]
fn messages_human_and_json() {
    let env = TestDir::new();
    let (id, dir, sent) = session_with_message(&env);
    let dir = dir.to_str().unwrap();
    let in_id = str_field(&sent, "id");
    let reply = env.file("answer.txt", b"42\n");
    env.ok(&["guest", "poll", "--session-dir", dir]);
    env.ok(&[
        "guest",
        "reply",
        "--session-dir",
        dir,
        "--in-reply-to",
        &in_id,
        "--text",
        "done",
        "--file",
        reply.to_str().unwrap(),
    ]);
    let text = transcript(
        &env,
        &[
            &["messages", &id],
            &["messages", &id, "--direction", "in"],
            &["--json", "messages", &id],
            &[
                "--json",
                "messages",
                &id,
                "--direction",
                "out",
                "--limit",
                "1",
            ],
        ],
    );
    snap(&env, "messages", &text);
    let v = env.json(&["messages", &id]);
    assert_keys(&v, &["in", "out"]);
    assert_eq!(v["in"].as_array().unwrap().len(), 1);
    assert_eq!(v["out"].as_array().unwrap().len(), 1);
}

#[test]
fn guest_poll_reply_and_deliver() {
    let env = TestDir::new();
    let (_, dir, sent) = session_with_message(&env);
    let dir = dir.to_str().unwrap();
    let in_id = str_field(&sent, "id");
    let file = env.file("answer.txt", b"forty-two\n");
    let text = transcript(
        &env,
        &[
            &["--json", "guest", "poll", "--session-dir", dir],
            &["guest", "poll", "--session-dir", dir],
            &[
                "guest",
                "reply",
                "--session-dir",
                dir,
                "--in-reply-to",
                &in_id,
                "--text",
                "first",
            ],
            &[
                "--json",
                "guest",
                "reply",
                "--session-dir",
                dir,
                "--in-reply-to",
                &in_id,
                "--text",
                "second",
                "--file",
                file.to_str().unwrap(),
            ],
            &["deliver", "--once"],
            &["deliver", "--once"],
        ],
    );
    snap(&env, "guest_deliver", &text);

    // The deliver lines: one JSON object per line with the keys bridges read.
    let delivered = text
        .split("$ airlock deliver --once\n")
        .nth(1)
        .expect("first deliver output");
    let lines: Vec<Value> = delivered
        .lines()
        .map(|l| serde_json::from_str(l).expect("deliver prints JSON lines"))
        .collect();
    assert_eq!(lines.len(), 2);
    for line in &lines {
        assert_keys(line, &["id", "seq", "kind", "content", "files"]);
        assert_eq!(
            line["seq"].as_i64().unwrap() % 2,
            1,
            "outbound seqs are odd"
        );
    }
    assert_eq!(lines[1]["content"]["text"], "second");
    let files = lines[1]["files"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    assert_keys(&files[0], &["name", "size"]);
    assert_eq!(files[0]["name"], "answer.txt");
    assert_eq!(files[0]["size"], 10);
}

#[test]
fn doctor_ok_and_with_a_finding() {
    let env = TestDir::new();
    let (id, dir, _) = session_with_message(&env);
    let ok = transcript(
        &env,
        &[&["doctor"], &["--json", "doctor", "--session", &id]],
    );
    let v = env.json(&["doctor"]);
    assert_eq!(v[0]["session"], id.as_str());
    assert_eq!(v[0]["findings"].as_array().unwrap().len(), 0);

    // A stray WAL side file is a finding the doctor must name.
    std::fs::write(dir.join("outbound.db-wal"), b"").unwrap();
    let human = env.cmd(&["doctor"]).run();
    let json = env.cmd(&["doctor"]).json().run();
    let text = format!(
        "{ok}$ airlock doctor\n{}[stderr] {}$ airlock --json doctor\n{}[stderr] {}",
        human.stdout, human.stderr, json.stdout, json.stderr
    );
    snap(&env, "doctor", &text);
    assert!(human.stdout.contains("wal_mode"), "{}", human.stdout);
    let line = human.failure();
    assert!(line.contains("doctor found 1 problem"), "{line}");
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v[0]["findings"][0]["check"], "wal_mode");
}

#[test]
fn demo_structure() {
    let env = TestDir::new();
    let human = env.ok(&["demo"]);
    let json = env.cmd(&["demo"]).json().run().success();

    // The guest is a separate process, so only causal order is fixed:
    // compare event order where it is, and snapshot the sorted event set.
    let v: Value = serde_json::from_str(&json).expect("demo --json prints one JSON document");
    assert_keys(&v, &["dir", "delivered", "timeline"]);
    let rows: Vec<(String, i64)> = v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            assert_keys(row, &["event", "at_ms", "hop_ms"]);
            (str_field(row, "event"), row["at_ms"].as_i64().unwrap())
        })
        .collect();
    let events: Vec<String> = rows.iter().map(|(e, _)| e.clone()).collect();
    let at = |prefix: &str| {
        rows.iter()
            .find(|(e, _)| e.starts_with(prefix))
            .map(|(_, at)| *at)
            .unwrap_or_else(|| panic!("no event {prefix:?} in {rows:#?}"))
    };
    // Each step happens after the previous one (equal milliseconds allowed).
    // The guest's "wrote reply" event is stamped after its row is written, so
    // the host may see the reply first: it is ordered only before the sync.
    let causal = [
        "host: session",
        "host: wrote inbound",
        "guest: polled inbound",
        "guest: read attachment",
        "host: saw reply",
        "host: delivered reply",
        "host: synced",
        "host: container marked stopped",
    ];
    for pair in causal.windows(2) {
        assert!(
            at(pair[0]) <= at(pair[1]),
            "{pair:?} out of order: {rows:#?}"
        );
    }
    assert!(at("guest: wrote reply") <= at("host: synced"), "{rows:#?}");
    assert!(events[0].starts_with("host: session"), "{rows:#?}");
    assert!(
        events.iter().any(|e| e.contains("found")),
        "second run finds the session"
    );
    let mut sorted = events.clone();
    sorted.sort();

    let human_lines: Vec<&str> = human.lines().collect();
    let timeline_start = human_lines
        .iter()
        .position(|l| l.starts_with("timeline"))
        .expect("human demo prints a timeline");
    let rows: Vec<&str> = human_lines[timeline_start + 1..]
        .iter()
        .copied()
        .take_while(|l| !l.is_empty())
        .collect();
    // Rows are `AT HOP  event`; the times vary, so keep the events only.
    let mut timeline: Vec<String> = rows
        .iter()
        .map(|l| l.split_whitespace().skip(2).collect::<Vec<_>>().join(" "))
        .collect();
    timeline.sort();
    let text = format!(
        "human, before the timeline:\n{}\n\nhuman timeline rows, sorted by event:\n{}\n\nhuman, after:\n{}\n\njson delivered:\n{}\n\njson events, sorted:\n{}\n",
        human_lines[..timeline_start].join("\n"),
        timeline.join("\n"),
        human_lines[timeline_start + 1 + rows.len()..].join("\n"),
        serde_json::to_string_pretty(&v["delivered"]).unwrap(),
        sorted.join("\n"),
    );
    snap(&env, "demo", &text);
}

/// Issue 17 item 4: the ids `messages` and `guest poll` print are whole, so
/// a person can paste them into `--in-reply-to`.
#[test]
fn listed_ids_are_whole_and_can_be_pasted_back() {
    let env = TestDir::new();
    let (id, dir) = env.session("whole-ids");
    let long_id = "platform-message-1700000000.000123-with-a-long-tail";
    env.ok(&["send", "--session", &id, "--text", "hi", "--id", long_id]);
    let dir = dir.to_str().unwrap();
    let poll = env.ok(&["guest", "poll", "--session-dir", dir]);
    assert!(poll.contains(long_id), "{poll}");
    let listing = env.ok(&["messages", &id]);
    assert!(listing.contains(long_id), "{listing}");
    // The id exactly as printed works where an id is asked for.
    let printed = listing
        .split_whitespace()
        .find(|w| w.starts_with("platform-message-"))
        .unwrap()
        .to_owned();
    env.ok(&[
        "guest",
        "reply",
        "--session-dir",
        dir,
        "--in-reply-to",
        &printed,
        "--text",
        "ok",
    ]);
    let listing = env.ok(&["messages", &id, "--direction", "out"]);
    assert!(
        listing.contains(&format!("reply-to {long_id}")),
        "{listing}"
    );
}
