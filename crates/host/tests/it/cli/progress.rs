//! Progress for what a person waits for (`import`, `prune`, a `deliver
//! --once` backlog; `doctor`'s is in `usage.rs`): drawn on a terminal, never
//! into a pipe, a file or `--json`, whose output stays exactly the report.

use crate::cli::deliver_stdout::{ids, replies};
use crate::cli::import::reference_install;
use crate::cli::util::{TestDir, on_a_terminal};

/// Three archived sessions, ready to prune.
fn archived(env: &TestDir) {
    for n in 0..3 {
        let (id, _) = env.session(&format!("old-{n}"));
        env.json(&["archive", &id]);
    }
}

#[test]
fn prune_shows_progress_on_a_terminal_only() {
    let watched = TestDir::new();
    archived(&watched);
    let shown = on_a_terminal(&watched.data_dir(), &["prune", "--older-than", "0s"], None);
    assert!(shown.contains("pruning sessions ["), "{shown:?}");
    assert!(shown.contains("removed 3 sessions"), "{shown:?}");

    let json = TestDir::new();
    archived(&json);
    let shown = on_a_terminal(
        &json.data_dir(),
        &["--json", "prune", "--older-than", "0s"],
        None,
    );
    assert!(!shown.contains("pruning sessions"), "{shown:?}");
    assert!(shown.contains("\"dry_run\": false"), "{shown:?}");

    // Piped: the report alone (`ok` asserts an empty stderr).
    let piped = TestDir::new();
    archived(&piped);
    let out = piped.ok(&["prune", "--older-than", "0s"]);
    assert!(out.starts_with("removed 3 sessions, "), "{out:?}");
    assert!(
        !out.contains('\u{1b}') && !out.contains("pruning"),
        "{out:?}"
    );
}

#[test]
fn import_shows_progress_on_a_terminal_only() {
    let watched = TestDir::new();
    let data = reference_install(&watched);
    let from = data.display().to_string();
    let shown = on_a_terminal(&data, &["import", "--from", &from], None);
    assert!(shown.contains("importing ["), "{shown:?}");
    assert!(shown.contains("2 session(s): 4 change(s)"), "{shown:?}");

    let piped = TestDir::new();
    let data = reference_install(&piped);
    let out = piped.cmd(&["import", "--from"]).path(&data).run().success();
    assert!(out.starts_with("imported "), "{out:?}");
    assert!(
        !out.contains('\u{1b}') && !out.contains("importing"),
        "{out:?}"
    );
    let report = piped
        .cmd(&["--json", "import", "--from"])
        .path(&data)
        .run()
        .success();
    assert!(!report.contains("importing"), "{report:?}");
}

#[test]
fn a_deliver_backlog_counts_on_the_terminal_while_stdout_goes_to_a_file() {
    let env = TestDir::new();
    let expected = replies(&env, 4);
    let lines = env.root().join("lines.jsonl");
    let shown = on_a_terminal(&env.data_dir(), &["deliver", "--once"], Some(&lines));
    assert!(shown.contains("messages delivered"), "{shown:?}");
    let written = std::fs::read_to_string(&lines).unwrap();
    assert_eq!(ids(&written), expected, "the file holds the lines alone");

    // stdout on the terminal too: the lines are the progress, no counter
    // cuts into them.
    let more = TestDir::new();
    let expected = replies(&more, 2);
    let shown = on_a_terminal(&more.data_dir(), &["deliver", "--once"], None);
    assert!(!shown.contains("messages delivered"), "{shown:?}");
    for id in &expected {
        assert!(shown.contains(id.as_str()), "{id} not shown: {shown:?}");
    }

    // Piped: the lines alone (`ok` asserts an empty stderr).
    let piped = TestDir::new();
    let expected = replies(&piped, 3);
    let out = piped.ok(&["deliver", "--once"]);
    assert_eq!(ids(&out), expected);
    assert!(!out.contains('\u{1b}'), "{out:?}");
}
