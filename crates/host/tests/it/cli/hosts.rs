//! Two hosts on one PostgreSQL registry, through the CLI: `sessions` and
//! `doctor --json` show messages stranded for a stopped owner, `reassign`
//! moves only the sessions whose folder the new owner can reach and applies
//! their queued messages there, `failures --routed` lists dead letters.

use serde_json::Value;

use airlock_postgres::testing::{SchemaGuard, pg_url, random_schema};

use crate::cli::util::TestDir;

struct Hosts {
    registry: String,
    a: TestDir,
    b: TestDir,
    _guard: SchemaGuard,
}

impl Hosts {
    fn new(test: &str) -> Option<Self> {
        let url = pg_url(test)?;
        let schema = random_schema("airlock_cli");
        let guard = SchemaGuard::new(&url, &schema);
        let sep = if url.contains('?') { '&' } else { '?' };
        let hosts = Self {
            registry: format!("{url}{sep}schema={schema}"),
            a: TestDir::new(),
            b: TestDir::new(),
            _guard: guard,
        };
        std::fs::create_dir_all(hosts.b.data_dir()).unwrap();
        Some(hosts)
    }

    fn args<'a>(&'a self, host: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["--registry", &self.registry, "--host-id", host];
        all.extend_from_slice(args);
        all
    }

    fn resolve_on_a(&self, chat: &str) -> String {
        let v = self.a.json(&self.args(
            "host-a",
            &[
                "resolve",
                "--agent-group",
                "g",
                "--channel",
                "slack",
                "--platform-id",
                chat,
                "--mode",
                "shared",
            ],
        ));
        v["id"].as_str().unwrap().to_owned()
    }

    fn send_through_b(&self, session: &str, text: &str) {
        let sent = self
            .b
            .ok(&self.args("host-b", &["send", "--session", session, "--text", text]));
        assert!(sent.contains("queued for its owner, host host-a"), "{sent}");
    }
}

fn by_id<'v>(list: &'v Value, id: &str) -> &'v Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id || s["session"] == id)
        .unwrap_or_else(|| panic!("{id} not in {list}"))
}

#[test]
#[cfg_attr(
    not(airlock_pg),
    ignore = "needs AIRLOCK_TEST_PG_URL (set it and rebuild)"
)]
fn stranded_messages_are_shown_and_reassign_moves_only_reachable_sessions() {
    let Some(h) = Hosts::new("cli reassign") else {
        return;
    };
    let (s1, s2) = (h.resolve_on_a("C1"), h.resolve_on_a("C2"));
    h.send_through_b(&s1, "one");
    h.send_through_b(&s1, "two");
    h.send_through_b(&s2, "three");

    // Host A never heartbeat: its queue is stranded, per session.
    let listed = h.b.json(&h.args("host-b", &["sessions"]));
    let routed = &by_id(&listed, &s1)["routed"];
    assert_eq!(routed["queued"], 2, "{listed}");
    assert_eq!(routed["stranded"], true, "{listed}");
    assert_eq!(routed["owner_host"], "host-a", "{listed}");
    assert!(routed["oldest_age_secs"].is_u64(), "{listed}");
    let text = h.b.ok(&h.args("host-b", &["sessions"]));
    let row = text.lines().find(|l| l.starts_with(&s1)).unwrap();
    assert!(row.contains("2 stranded for host-a, oldest "), "{text}");
    assert!(text.lines().next().unwrap().ends_with("ROUTED"), "{text}");

    let doctor = h.b.cmd(&h.args("host-b", &["doctor"])).json().run();
    assert_ne!(doctor.code, Some(0), "{}", doctor.stderr);
    let reports: Value = serde_json::from_str(&doctor.stdout).unwrap();
    let report = by_id(&reports, &s1);
    assert_eq!(report["owner_elsewhere"], "host-a", "{reports}");
    assert_eq!(report["routed"]["stranded"], true, "{reports}");
    assert_eq!(report["routed"]["queued"], 2, "{reports}");
    assert!(
        doctor.stderr.contains("stranded routed messages"),
        "{}",
        doctor.stderr
    );

    // Host B gets S1's folder (a copy of A's disk); S2's stays out of reach.
    let rel = format!("v2-sessions/g/{s1}");
    let dst = h.b.data_dir().join(&rel);
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(h.a.data_dir().join(&rel))
        .arg(&dst)
        .status()
        .unwrap();
    assert!(copied.success());

    let dry =
        h.b.cmd(&h.args("host-b", &["reassign", "--from", "host-a", "--dry-run"]))
            .json()
            .run();
    assert_ne!(dry.code, Some(0), "S2 is refused: {}", dry.stdout);
    let report: Value = serde_json::from_str(&dry.stdout).unwrap();
    let sessions = &report["sessions"];
    assert_eq!(by_id(sessions, &s1)["outcome"], "would_move", "{report}");
    assert_eq!(by_id(sessions, &s1)["queued"], 2, "{report}");
    let refused = by_id(sessions, &s2);
    assert_eq!(refused["outcome"], "refused", "{report}");
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .contains("is not on this host"),
        "{report}"
    );
    let unchanged = h.b.json(&h.args("host-b", &["sessions"]));
    assert_eq!(by_id(&unchanged, &s1)["owner_host"], "host-a");

    let moved = h.b.cmd(&h.args("host-b", &["reassign", &s1])).run();
    assert_eq!(moved.code, Some(0), "{}\n{}", moved.stdout, moved.stderr);
    assert!(
        moved
            .stdout
            .contains(&format!("moved       {s1}  from host host-a")),
        "{}",
        moved.stdout
    );
    assert!(
        moved.stdout.contains("applied 2 routed message(s) here"),
        "{}",
        moved.stdout
    );
    let shown = h.b.json(&h.args("host-b", &["show", &s1]));
    assert_eq!(shown["owner_host"], "host-b");
    assert_eq!(shown["messages"]["inbound"], 2, "{shown}");
    let after = h.b.json(&h.args("host-b", &["sessions"]));
    assert!(by_id(&after, &s1).get("routed").is_none(), "{after}");
    assert_eq!(by_id(&after, &s2)["routed"]["queued"], 1, "{after}");

    // S2 is refused by name too, with a one-line error.
    let line =
        h.b.cmd(&h.args("host-b", &["reassign", &s2]))
            .run()
            .failure();
    assert!(line.contains("1 of 1 session(s) not reassigned"), "{line}");

    // Without --host-id there is no new owner.
    let line =
        h.b.cmd(&["--registry", &h.registry, "reassign", &s2])
            .run()
            .failure();
    assert!(line.contains("needs --host-id"), "{line}");
    let none = h.b.ok(&h.args("host-b", &["failures", "--routed"]));
    assert_eq!(none.trim(), "no routed dead letters");
}

#[test]
fn reassign_is_refused_on_a_sqlite_registry_and_needs_sessions_or_from() {
    let env = TestDir::new();
    env.session("g");
    let line = env
        .cmd(&["--host-id", "h", "reassign", "--from", "a"])
        .run()
        .failure();
    assert!(line.contains("needs a PostgreSQL registry"), "{line}");
    let line = env.cmd(&["reassign"]).run().failure();
    assert!(line.contains("name the sessions, or --from HOST"), "{line}");
    let line = env.cmd(&["failures", "--routed"]).run().failure();
    assert!(line.contains("needs a PostgreSQL registry"), "{line}");
}
