//! `airlock run` end to end with a shell-script guest: a message sent while
//! the loop runs wakes a guest, is answered, and the answer is delivered
//! on stdout; Ctrl-C (SIGINT) stops the loop cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::cli::util::{TestDir, str_field};

const GUEST: &str = r#"
while true; do
  "$AIRLOCK" guest poll --session-dir "$AIRLOCK_SESSION_DIR" | while read -r seq id rest; do
    [ "$seq" = "no" ] && continue
    "$AIRLOCK" guest reply --session-dir "$AIRLOCK_SESSION_DIR" --in-reply-to "$id" --text "echo: $id"
  done
  touch "$AIRLOCK_SESSION_DIR/.heartbeat"
  sleep 0.2
done
"#;

#[test]
fn a_message_sent_while_the_loop_runs_is_answered_and_delivered() {
    let t = TestDir::new();
    let script = t.file("guest.sh", GUEST.as_bytes());
    let v = t.json(&[
        "resolve",
        "--agent-group",
        "ag",
        "--channel",
        "slack",
        "--platform-id",
        "C1",
        "--mode",
        "shared",
    ]);
    let session = str_field(&v, "id");
    let bin = env!("CARGO_BIN_EXE_airlock");
    let guest_cmd = format!("AIRLOCK='{bin}' sh '{}'", script.display());
    let mut host = Command::new(bin)
        .arg("--data-dir")
        .arg(t.data_dir())
        .args(["run", "--interval-ms", "100", "--guest-cmd", &guest_cmd])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (lines, seen) = mpsc::channel();
    let stdout = host.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });

    t.ok(&[
        "send",
        "--session",
        &session,
        "--id",
        "m1",
        "--text",
        "hello",
    ]);
    // A bound on how long to wait for a failure, not a speed requirement.
    let delivered = loop {
        match seen.recv_timeout(Duration::from_secs(120)) {
            Ok(line) if line.contains("echo: m1") => break line,
            Ok(_) => continue,
            Err(e) => {
                let _ = host.kill();
                panic!("no delivery of the answer: {e}");
            }
        }
    };
    let line: serde_json::Value = serde_json::from_str(&delivered).unwrap();
    assert_eq!(line["session"], session.as_str(), "{line}");

    let pid = host.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = host.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let shown = t.json(&["show", &session]);
    assert_eq!(str_field(&shown, "container_status"), "stopped");
    let messages = t.json(&["messages", &session, "--direction", "in"]);
    let m1 = messages["in"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "m1")
        .unwrap();
    assert_eq!(m1["status"], "completed", "{m1}");
}
