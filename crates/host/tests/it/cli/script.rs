//! The issue's "Checked by" walk-through using only the CLI, plus the demo
//! run twice, byte-exact `send --content-file`, and the PostgreSQL registry.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{Value, json};

use crate::cli::util::{TestDir, assert_keys, str_field};

/// Opens a mailbox file by hand, as an operator with `sqlite3` would.
fn open_db(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn script_walkthrough_with_doctor_catching_parity_and_wal() {
    let env = TestDir::new();
    let resolved = env.json(&["resolve", "--agent-group", "script", "--mode", "shared"]);
    let id = str_field(&resolved, "id");
    let dir = str_field(&resolved, "dir");

    // Host → guest with two attachments.
    let photo = env.file("photo.jpg", b"\xff\xd8\xff not really a jpeg");
    let doc = env.file("doc.pdf", b"%PDF-1.4 tiny");
    let sent = env.json(&[
        "send",
        "--session",
        &id,
        "--text",
        "two files for you",
        "--attach",
        photo.to_str().unwrap(),
        "--attach",
        doc.to_str().unwrap(),
    ]);
    let in_id = str_field(&sent, "id");
    assert_eq!(sent["attachments"].as_array().unwrap().len(), 2);

    // The guest sees the message with local paths it can open.
    let polled = env.json(&["guest", "poll", "--session-dir", &dir]);
    let polled = polled.as_array().expect("poll prints an array");
    assert_eq!(polled.len(), 1);
    assert_eq!(polled[0]["id"], in_id.as_str());
    let content: Value = serde_json::from_str(polled[0]["content"].as_str().unwrap()).unwrap();
    assert_eq!(content["text"], "two files for you");
    let local = |i: usize| {
        content["attachments"][i]["localPath"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        std::fs::read(Path::new(&dir).join(local(0))).unwrap(),
        b"\xff\xd8\xff not really a jpeg"
    );
    assert_eq!(
        std::fs::read(Path::new(&dir).join(local(1))).unwrap(),
        b"%PDF-1.4 tiny"
    );
    // Each `guest poll` is a fresh guest process, and a guest's start-up drops
    // leftover `processing` acks (SPEC: crash recovery), so an unanswered
    // message is handed out again until it is replied to.
    let again = env.json(&["guest", "poll", "--session-dir", &dir]);
    assert_eq!(again[0]["id"], in_id.as_str(), "{again}");

    // Guest → host with a file.
    let answer = env.file("answer.csv", b"a,b\n1,2\n");
    let replied = env.json(&[
        "guest",
        "reply",
        "--session-dir",
        &dir,
        "--in-reply-to",
        &in_id,
        "--text",
        "here is the table",
        "--file",
        answer.to_str().unwrap(),
    ]);
    let out_id = str_field(&replied, "id");
    // Answered (acked completed): no longer handed out.
    assert_eq!(
        env.json(&["guest", "poll", "--session-dir", &dir]),
        json!([])
    );

    let delivered = env.ok(&["deliver", "--once"]);
    let lines: Vec<Value> = delivered
        .lines()
        .map(|l| serde_json::from_str(l).expect("deliver prints JSON lines"))
        .collect();
    assert_eq!(lines.len(), 1, "{delivered}");
    assert_eq!(lines[0]["id"], out_id.as_str());
    assert_eq!(lines[0]["in_reply_to"], in_id.as_str());
    assert_eq!(lines[0]["content"]["text"], "here is the table");
    // The bytes travel in the line (base64), so a bridge has them before
    // the outbox is cleared.
    let data = base64::engine::general_purpose::STANDARD
        .decode(lines[0]["files"][0]["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(lines[0]["files"][0]["name"], "answer.csv");
    assert_eq!(lines[0]["files"][0]["size"], 8);
    assert_eq!(data, b"a,b\n1,2\n");
    assert_eq!(env.ok(&["deliver", "--once"]), "", "delivered only once");

    // The acks reached the host: the inbound message is completed.
    let messages = env.json(&["messages", &id, "--direction", "in"]);
    assert_eq!(messages["in"][0]["status"], "completed", "{messages}");

    env.ok(&["doctor"]);

    // Corrupt seq parity by hand: an even seq in messages_out.
    let outbound = Path::new(&dir).join("outbound.db");
    open_db(&outbound)
        .execute(
            "INSERT INTO messages_out (id, seq, timestamp, kind, content) \
             VALUES ('forged', 1000, '2026-01-01T00:00:00.000Z', 'chat', '{}')",
            [],
        )
        .unwrap();
    let run = env.cmd(&["doctor"]).run();
    assert!(run.stdout.contains("seq_parity"), "{}", run.stdout);
    assert!(run.stdout.contains("1000"), "{}", run.stdout);
    let line = run.failure();
    assert!(line.contains("problem"), "{line}");
    open_db(&outbound)
        .execute("DELETE FROM messages_out WHERE id = 'forged'", [])
        .unwrap();
    env.ok(&["doctor"]);

    // A mailbox switched to WAL freezes the guest's view: doctor must say so.
    let inbound = Path::new(&dir).join("inbound.db");
    let mode: String = open_db(&inbound)
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let run = env.cmd(&["--json", "doctor", "--session", &id]).run();
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let checks: Vec<&str> = report[0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    assert!(checks.contains(&"wal_mode"), "{checks:?}");
    // ...and that the host repaired it from host state (a tamper event).
    let events = report[0]["tamper_events"].as_array().unwrap();
    assert!(
        events.iter().any(|e| e["file"] == "inbound.db"),
        "{events:?}"
    );
    // (The repairs are also logged as warnings before the error line.)
    assert!(matches!(run.code, Some(c) if c != 0));
    let line = run.stderr.lines().last().unwrap_or_default();
    assert!(line.contains("problem"), "{line}");
    env.cmd(&["doctor", "--ack"]).run().success_with_warnings();
    env.ok(&["doctor"]);
}

/// `(created, inbound seq, reply seq)` from one `demo --json` run.
fn demo_json(env: &TestDir) -> (bool, i64, i64) {
    let out = env.cmd(&["demo"]).json().run().success();
    let v: Value = serde_json::from_str(&out).expect("demo --json prints one JSON document");
    assert_keys(&v, &["dir", "delivered", "timeline"]);
    let events: Vec<String> = v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| str_field(r, "event"))
        .collect();
    let first = &events[0];
    assert!(first.starts_with("host: session"), "{events:#?}");
    let inbound = events
        .iter()
        .find_map(|e| e.strip_prefix("host: wrote inbound "))
        .expect("inbound event");
    let seq = inbound
        .split("(seq ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no seq in {inbound:?}"));
    let delivered = &v["delivered"];
    assert_keys(delivered, &["id", "seq", "kind", "content", "files"]);
    assert_eq!(delivered["files"][0]["name"], "summary.txt");
    (
        first.ends_with("created"),
        seq,
        delivered["seq"].as_i64().unwrap(),
    )
}

#[test]
fn demo_runs_repeatedly_in_the_same_data_dir() {
    let env = TestDir::new();
    let first = env.ok(&["demo"]);
    assert!(first.contains(" created"), "{first}");
    assert!(first.contains("delivered: "), "{first}");
    let second = env.ok(&["demo"]);
    assert!(second.contains(" found"), "{second}");
    let (created, in_seq, out_seq) = demo_json(&env);
    assert!(!created, "the third run must find the session");
    assert_eq!(in_seq, 6, "third inbound message of the session");
    assert_eq!(out_seq % 2, 1);
    let (created, in_seq2, out_seq2) = demo_json(&env);
    assert!(!created);
    assert!(in_seq2 > in_seq && out_seq2 > out_seq, "seqs increase");
    let sessions = env.json(&["sessions"]);
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    env.ok(&["doctor"]);
}

#[test]
fn send_content_file_is_stored_byte_for_byte() {
    let env = TestDir::new();
    let (id, dir) = env.session("bytes");
    let raw = "not JSON {\n\ttabs, \"quotes\", ünïcødé, \u{1f980}\r\ntrailing spaces   \n\n";
    let file = env.file("raw.txt", raw.as_bytes());
    env.ok(&[
        "send",
        "--session",
        &id,
        "--content-file",
        file.to_str().unwrap(),
    ]);

    let extra = json!({
        "text": "with extras",
        "sender": {"id": "U1", "name": "Ana"},
        "platformSpecific": [1, 2.5, null, true],
        "attachments": [{
            "name": "a.txt",
            "mimeType": "text/plain",
            "data": "aGVsbG8=",
            "bridgeKey": "kept",
        }],
    });
    let file = env.file("extra.json", extra.to_string().as_bytes());
    let sent = env.json(&[
        "send",
        "--session",
        &id,
        "--content-file",
        file.to_str().unwrap(),
        "--kind",
        "system",
    ]);
    let local = str_field(&sent["attachments"][0], "localPath");
    assert_eq!(
        std::fs::read(Path::new(&dir).join(&local)).unwrap(),
        b"hello"
    );

    // An attachment that cannot be decoded is reported per entry, not fatal.
    let broken = env.file(
        "broken.json",
        br#"{"text":"b","attachments":[{"name":"x.bin","data":"%%% not base64"}]}"#,
    );
    let run = env
        .cmd(&["--json", "send", "--session", &id, "--content-file"])
        .path(&broken)
        .run();
    assert!(run.stderr.contains("invalid base64"), "{}", run.stderr);
    let sent: Value = serde_json::from_str(&run.success_with_warnings()).unwrap();
    assert_keys(&sent, &["id", "seq", "attachments"]);
    assert_keys(&sent["attachments"][0], &["error"]);
    assert!(sent["attachments"][0]["error"].is_string(), "{sent}");
    assert!(sent["attachments"][0]["localPath"].is_null(), "{sent}");

    let listed = env.json(&["messages", &id, "--direction", "in"]);
    let inbound = listed["in"].as_array().unwrap();
    assert_eq!(inbound.len(), 3);
    let by_seq = |seq: i64| {
        inbound
            .iter()
            .find(|m| m["seq"] == seq)
            .unwrap_or_else(|| panic!("no seq {seq} in {listed}"))
    };
    assert_eq!(by_seq(2)["content"].as_str().unwrap(), raw);
    assert_eq!(by_seq(4)["kind"], "system");
    let stored: Value = serde_json::from_str(by_seq(4)["content"].as_str().unwrap()).unwrap();
    assert_eq!(stored["sender"], extra["sender"]);
    assert_eq!(stored["platformSpecific"], extra["platformSpecific"]);
    assert_eq!(stored["attachments"][0]["bridgeKey"], "kept");
    assert_eq!(stored["attachments"][0]["localPath"], local.as_str());
    assert!(
        stored["attachments"][0].get("data").is_none(),
        "inline data is replaced by the file: {stored}"
    );
}

#[test]
#[cfg_attr(
    not(airlock_pg),
    ignore = "needs AIRLOCK_TEST_PG_URL (set it and rebuild)"
)]
fn postgres_registry_resolve_and_sessions() {
    let Ok(url) = std::env::var("AIRLOCK_TEST_PG_URL") else {
        assert!(
            std::env::var_os("AIRLOCK_REQUIRE_PG").is_none(),
            "postgres_registry_resolve_and_sessions must run here (AIRLOCK_REQUIRE_PG is set)"
        );
        println!("SKIPPED postgres_registry_resolve_and_sessions: AIRLOCK_TEST_PG_URL is not set");
        return;
    };
    let env = TestDir::new();
    // The registry is shared with other runs: a unique agent group keeps ours apart.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let group = format!("clitest-{}-{nanos}", std::process::id());
    // With a chat, `shared` finds the session again (without one, SPEC says
    // every resolve creates a new session).
    let resolve = [
        "--registry",
        &url,
        "resolve",
        "--agent-group",
        &group,
        "--channel",
        "clitest",
        "--platform-id",
        &group,
        "--mode",
        "shared",
    ];
    let first = env.json(&resolve);
    assert_eq!(first["created"], true);
    let second = env.json(&resolve);
    assert_eq!(second["created"], false);
    assert_eq!(second["id"], first["id"]);
    assert!(
        Path::new(&str_field(&first, "dir"))
            .join("inbound.db")
            .is_file()
    );

    let listed = env.json(&["--registry", &url, "sessions"]);
    let ours: Vec<&Value> = listed
        .as_array()
        .expect("sessions --json is an array")
        .iter()
        .filter(|s| s["agent_group_id"] == group.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "{listed}");
    assert_eq!(ours[0]["id"], first["id"]);
    let human = env.ok(&["--registry", &url, "sessions"]);
    assert!(human.contains(&str_field(&first, "id")), "{human}");
}

#[test]
fn data_dir_comes_from_the_flag_the_environment_or_the_default() {
    use crate::cli::util::TestCommand;

    let env = TestDir::new();
    let resolve = [
        "--json",
        "resolve",
        "--agent-group",
        "where",
        "--mode",
        "agent-shared",
    ];
    let via_env = env.root().join("from-env");
    let out = TestCommand::without_data_dir()
        .env("AIRLOCK_DATA_DIR", &via_env)
        .args(&resolve)
        .run()
        .success();
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(via_env.join("airlock.db").is_file());
    assert!(
        str_field(&v, "dir").starts_with(via_env.to_str().unwrap()),
        "{v}"
    );

    // Default: ./airlock-data, printed as an absolute path.
    let cwd = env.root().join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let out = TestCommand::without_data_dir()
        .current_dir(&cwd)
        .args(&resolve)
        .run()
        .success();
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(cwd.join("airlock-data").join("airlock.db").is_file());
    let dir = PathBuf::from(str_field(&v, "dir"));
    assert!(dir.is_absolute() && dir.join("inbound.db").is_file(), "{v}");

    // A separate registry file via --registry sqlite://PATH.
    let registry = env.root().join("elsewhere").join("reg.db");
    let url = format!("sqlite://{}", registry.display());
    env.ok(&[
        "--registry",
        &url,
        "resolve",
        "--agent-group",
        "r",
        "--mode",
        "agent-shared",
    ]);
    assert!(registry.is_file());
    assert!(!env.data_dir().join("airlock.db").exists());
}
