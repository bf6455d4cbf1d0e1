//! Routing everywhere: a session created for a chat gets `session_routing`,
//! `send` fills the routing columns from it (or from flags), `destinations`
//! replaces the table, `guest reply` routes by default or `--to` a name, and
//! `routing` rewrites `session_routing` from the registry.

use std::path::Path;

use rusqlite::Connection;

use crate::cli::util::{TestDir, str_field};

type Route = (Option<String>, Option<String>, Option<String>);

fn route(a: &str, b: &str, c: Option<&str>) -> Route {
    (Some(a.into()), Some(b.into()), c.map(Into::into))
}

fn query(db: &Path, sql: &str, arg: &str) -> Route {
    Connection::open(db)
        .unwrap()
        .query_row(sql, [arg], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
}

fn session_routing(dir: &Path) -> Route {
    query(
        &dir.join("inbound.db"),
        "SELECT channel_type, platform_id, thread_id FROM session_routing WHERE id = ?1",
        "1",
    )
}

fn inbound(dir: &Path, id: &str) -> Route {
    query(
        &dir.join("inbound.db"),
        "SELECT channel_type, platform_id, thread_id FROM messages_in WHERE id = ?1",
        id,
    )
}

fn outbound(dir: &Path, id: &str) -> Route {
    query(
        &dir.join("outbound.db"),
        "SELECT channel_type, platform_id, thread_id FROM messages_out WHERE id = ?1",
        id,
    )
}

#[test]
fn every_message_carries_routing() {
    let env = TestDir::new();
    let resolved = env.json(&[
        "resolve",
        "--agent-group",
        "ag",
        "--channel",
        "slack",
        "--platform-id",
        "C1",
        "--thread",
        "t1",
        "--mode",
        "per-thread",
    ]);
    let (session, dir) = (
        str_field(&resolved, "id"),
        std::path::PathBuf::from(str_field(&resolved, "dir")),
    );
    assert_eq!(
        session_routing(&dir),
        route("slack", "C1", Some("t1")),
        "written at creation"
    );

    env.ok(&[
        "send",
        "--session",
        &session,
        "--text",
        "hi",
        "--id",
        "in-1",
    ]);
    assert_eq!(inbound(&dir, "in-1"), route("slack", "C1", Some("t1")));
    env.ok(&[
        "send",
        "--session",
        &session,
        "--text",
        "x",
        "--id",
        "in-2",
        "--channel",
        "telegram",
        "--platform-id",
        "9",
        "--thread",
        "t2",
    ]);
    assert_eq!(inbound(&dir, "in-2"), route("telegram", "9", Some("t2")));

    let rows = env.file(
        "rows.json",
        br#"[{"name": "ops", "type": "channel", "channel_type": "slack", "platform_id": "C2"},
            {"name": "peer", "type": "agent", "agent_group_id": "ag-2"}]"#,
    );
    env.cmd(&["destinations", &session, "--file"])
        .path(&rows)
        .run()
        .success();
    let dir_arg = dir.to_str().unwrap();
    let reply = |extra: &[&str]| -> String {
        let mut args = vec![
            "--json",
            "guest",
            "reply",
            "--session-dir",
            dir_arg,
            "--in-reply-to",
            "in-1",
            "--text",
            "ok",
        ];
        args.extend_from_slice(extra);
        let out = env.cmd(&args).run().success();
        str_field(&serde_json::from_str(&out).unwrap(), "id")
    };
    let plain = reply(&[]);
    assert_eq!(outbound(&dir, &plain), route("slack", "C1", Some("t1")));
    let to_ops = reply(&["--to", "ops"]);
    assert_eq!(outbound(&dir, &to_ops), route("slack", "C2", None));
    let to_peer = reply(&["--to", "peer"]);
    assert_eq!(outbound(&dir, &to_peer), route("agent", "ag-2", None));
    let line = env
        .cmd(&[
            "guest",
            "reply",
            "--session-dir",
            dir_arg,
            "--in-reply-to",
            "in-1",
            "--text",
            "x",
            "--to",
            "nope",
        ])
        .run()
        .failure();
    assert!(
        line.contains("no destination named") && line.contains("ops, peer"),
        "{line}"
    );

    // An edit of the folder's copy is a guest's tampering now: the next host
    // operation rebuilds the file from host state (and says so on stderr),
    // and `routing` writes the row from the registry again.
    Connection::open(dir.join("inbound.db"))
        .unwrap()
        .execute("DELETE FROM session_routing", [])
        .unwrap();
    let run = env.cmd(&["routing", &session]).run();
    assert!(run.stderr.contains("tamper event"), "{}", run.stderr);
    run.success_with_warnings();
    assert_eq!(session_routing(&dir), route("slack", "C1", Some("t1")));
}

#[test]
fn a_bad_destinations_file_is_one_line() {
    let env = TestDir::new();
    let (session, _) = env.session("ag");
    for (name, bytes, expected) in [
        ("a.json", &b"{not json"[..], "not a JSON array"),
        ("b.json", br#"[{"name": "x", "type": "channel"}]"#, "needs channel_type"),
        ("c.json", br#"[{"name": "x", "type": "robot", "agent_group_id": "a"}]"#, "channel or agent"),
        ("d.json", br#"[{"name": "x", "type": "agent", "agent_group_id": "a"}, {"name": "x", "type": "agent", "agent_group_id": "b"}]"#, "repeated"),
    ] {
        let file = env.file(name, bytes);
        let line = env.cmd(&["destinations", &session, "--file"]).path(&file).run().failure();
        assert!(line.contains(expected), "{name}: {line}");
    }
}
