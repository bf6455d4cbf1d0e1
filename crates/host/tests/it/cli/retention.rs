//! `archive`, `prune --dry-run`, `prune` and `usage`: the dry run lists
//! exactly what prune removes, and the active session stays.

use crate::cli::util::{TestDir, str_field};

#[test]
fn archive_then_prune_removes_what_the_dry_run_listed_and_keeps_the_active_session() {
    let t = TestDir::new();
    let (old, old_dir) = t.session("ag-old");
    let (active, active_dir) = t.session("ag-live");
    t.ok(&["send", "--session", &old, "--text", "hello"]);
    let archived = t.json(&["archive", &old]);
    assert_eq!(str_field(&archived, "status"), "archived");

    let plan = t.json(&["prune", "--older-than", "0s", "--dry-run"]);
    assert_eq!(plan["dry_run"], true);
    let listed: Vec<String> = plan["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| str_field(s, "session"))
        .collect();
    assert_eq!(listed, [old.as_str()]);
    assert!(plan["bytes"].as_u64().unwrap() > 0);
    assert!(old_dir.exists(), "a dry run removes nothing");

    let pruned = t.json(&["prune", "--older-than", "0s"]);
    assert_eq!(pruned["sessions"], plan["sessions"]);
    assert_eq!(pruned["bytes"], plan["bytes"]);
    assert!(!old_dir.exists());
    assert!(active_dir.join("inbound.db").exists());
    let sessions = t.json(&["sessions"]);
    let ids: Vec<String> = sessions
        .as_array()
        .unwrap()
        .iter()
        .map(|s| str_field(s, "id"))
        .collect();
    assert_eq!(ids, [active.as_str()]);

    let usage = t.json(&["usage"]);
    assert_eq!(usage["sessions"].as_array().unwrap().len(), 1);
    assert!(usage["agent_groups"]["ag-live"].as_u64().unwrap() > 0);
    assert!(usage["agent_groups"].get("ag-old").is_none());
}

#[test]
fn a_recent_archive_is_kept_and_a_bad_age_is_refused() {
    let t = TestDir::new();
    let (s, dir) = t.session("ag");
    t.json(&["archive", &s]);
    let plan = t.json(&["prune", "--older-than", "30d", "--dry-run"]);
    assert_eq!(plan["sessions"].as_array().unwrap().len(), 0);
    t.json(&["prune", "--older-than", "30d"]);
    assert!(dir.exists());
    let err = t.cmd(&["prune", "--older-than", "a month"]).run().failure();
    assert!(err.contains("--older-than"), "{err}");
}
