//! Cross-mount invariants through real FUSE mounts (skipped where FUSE is unavailable).
use std::path::Path;
use std::time::Duration;

use airlock_crossmount::fs::CacheConfig;
use airlock_crossmount::mount::{Mount, fuse_unavailable};
use airlock_crossmount::pattern::Pattern;
use airlock_crossmount::run::Direction;
use airlock_crossmount::suite::{self, ALWAYS, AUTO, AUTO_WB, Case, Expect, NONE, Settings};

const GUEST: &str = env!("CARGO_BIN_EXE_airlock-crossmount");

fn fuse_or_skip(test: &str) -> bool {
    match fuse_unavailable() {
        None => true,
        Some(why) => {
            println!("SKIP {test}: FUSE is not available here ({why})");
            false
        }
    }
}

/// Small runs, judged by counts and ordering only (no timing bounds in tests).
fn settings(messages: usize) -> Settings {
    Settings {
        messages,
        control_messages: messages,
        control_runs: 3,
        // Denser writes than the xtask: more chances for NC3's collisions.
        write_interval: Duration::from_millis(10),
        latency: false,
        ..Settings::full(Path::new(GUEST))
    }
}

fn case(
    name: &'static str,
    cache: CacheConfig,
    pattern: Pattern,
    direction: Direction,
    expect: Expect,
) -> Case {
    Case {
        name,
        cache,
        pattern,
        direction,
        expect,
    }
}

fn assert_airlock_holds(cache: CacheConfig, direction: Direction) {
    let c = case("airlock", cache, Pattern::Airlock, direction, Expect::Pass);
    let r = suite::run_case(&settings(150), c, 1).unwrap();
    let report = &r.reports[0];
    println!(
        "{}\n{}",
        airlock_crossmount::report::RunReport::header(),
        report.row()
    );
    match direction {
        Direction::Both => assert_eq!((report.sent, report.seen), (150, 150)),
        Direction::GuestToHost => assert_eq!(report.replies_committed, 150),
    }
    assert!(
        r.ok(),
        "airlock's pattern broke on {}: {:?}",
        cache.label(),
        r.failures
    );
}

#[test]
fn airlock_pattern_holds_on_cache_none() {
    if fuse_or_skip("airlock_pattern_holds_on_cache_none") {
        assert_airlock_holds(NONE, Direction::Both);
    }
}

#[test]
fn airlock_pattern_holds_on_cache_auto() {
    if fuse_or_skip("airlock_pattern_holds_on_cache_auto") {
        assert_airlock_holds(AUTO, Direction::Both);
    }
}

#[test]
fn airlock_replies_reach_the_host_through_a_writeback_cache() {
    if fuse_or_skip("airlock_replies_reach_the_host_through_a_writeback_cache") {
        assert_airlock_holds(AUTO_WB, Direction::GuestToHost);
    }
}

fn assert_caught(
    name: &'static str,
    cache: CacheConfig,
    pattern: Pattern,
    direction: Direction,
) -> Vec<Vec<String>> {
    let r = suite::run_case(
        &settings(100),
        case(name, cache, pattern, direction, Expect::Caught),
        3,
    )
    .unwrap();
    for (report, f) in r.reports.iter().zip(&r.failures) {
        println!("{name}: {} -> {f:?}", report.row());
    }
    assert!(
        r.ok(),
        "{name} was not caught in every run: {:?}",
        r.failures
    );
    r.failures
}

#[test]
fn nc1_wal_with_long_lived_connections_is_caught() {
    if fuse_or_skip("nc1") {
        assert_caught("NC1", AUTO, Pattern::Nc1Wal, Direction::Both);
    }
}

#[test]
fn nc2_cache_always_mount_is_caught() {
    if fuse_or_skip("nc2") {
        let failures = assert_caught("NC2", ALWAYS, Pattern::Airlock, Direction::Both);
        for f in failures {
            assert!(f.iter().any(|m| m.contains("never seen")), "{f:?}");
        }
    }
}

#[test]
fn nc3_guest_opening_inbound_read_write_is_caught() {
    if fuse_or_skip("nc3") {
        let failures = assert_caught("NC3", AUTO, Pattern::Nc3GuestReadWrite, Direction::Both);
        // The held writes make the loss certain, not a race: committed rows
        // are missing from the host's own file in every run.
        for f in failures {
            assert!(
                f.iter().any(|m| m.contains("host's inbound.db holds")),
                "{f:?}"
            );
        }
    }
}

#[test]
fn nc4_long_lived_writer_on_writeback_cache_is_caught() {
    if fuse_or_skip("nc4") {
        let failures = assert_caught(
            "NC4",
            AUTO_WB,
            Pattern::Nc4LongLivedWriter,
            Direction::GuestToHost,
        );
        for f in failures {
            assert!(
                f.iter()
                    .any(|m| m.contains("when the guest's commit returned")),
                "{f:?}"
            );
        }
    }
}

#[test]
fn mount_self_test_flags_cache_always_and_writeback_and_passes_auto() {
    if !fuse_or_skip("mount_self_test") {
        return;
    }
    let s = settings(1);
    let auto = suite::mount_check(&s, AUTO).unwrap();
    assert_eq!(auto.error, None, "cache=auto mount must pass the self-test");
    let none = suite::mount_check(&s, NONE).unwrap();
    assert_eq!(none.error, None, "cache=none mount must pass the self-test");
    let always = suite::mount_check(&s, ALWAYS).unwrap();
    let err = always.error.expect("cache=always mount must be flagged");
    assert!(err.contains("stale mount"), "{err}");
    let wb = suite::mount_check(&s, AUTO_WB).unwrap();
    let err = wb
        .error
        .expect("a writeback-cache mount hides the host's size changes and must be flagged");
    assert!(err.contains("stale mount"), "{err}");
}

/// Without an earlier reader the first nonce is a fresh file that every
/// mount shows, as a one-time refresh showed it on real virtio-fs: only the
/// rewrite after the guest read it can catch `cache=always`.
#[test]
fn multi_round_self_test_flags_cache_always_without_an_earlier_reader() {
    if !fuse_or_skip("multi_round_self_test") {
        return;
    }
    let s = settings(1);
    for cache in [AUTO, NONE] {
        let r = suite::mount_check_with(&s, cache, false).unwrap();
        assert_eq!(r.error, None, "{} must pass the self-test", r.mount);
    }
    let always = suite::mount_check_with(&s, ALWAYS, false).unwrap();
    let err = always.error.expect("cache=always mount must be flagged");
    assert!(
        err.contains("stale mount") && err.contains("round 2 of"),
        "{err}"
    );
    // The one-shot test of before cannot tell: it passes on the same mount.
    let one_shot = Settings {
        mount_check_rounds: 1,
        ..settings(1)
    };
    let fooled = suite::mount_check_with(&one_shot, ALWAYS, false).unwrap();
    assert_eq!(
        fooled.error, None,
        "one round on a fresh file passes anywhere"
    );
}

#[test]
fn passthrough_supports_the_file_operations_sqlite_needs() {
    if !fuse_or_skip("passthrough") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (real, mnt) = (tmp.path().join("real"), tmp.path().join("mnt"));
    std::fs::create_dir_all(&real).unwrap();
    std::fs::create_dir_all(&mnt).unwrap();
    let mount = Mount::new(&real, &mnt, NONE).unwrap();
    let m = mount.path();
    std::fs::write(m.join("a"), b"hello").unwrap();
    assert_eq!(std::fs::read(real.join("a")).unwrap(), b"hello");
    std::fs::rename(m.join("a"), m.join("b")).unwrap();
    std::fs::create_dir(m.join("d")).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(m)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["b", "d"]);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(m.join("b"))
        .unwrap();
    f.set_len(2).unwrap();
    drop(f);
    assert_eq!(std::fs::read(real.join("b")).unwrap(), b"he");
    std::fs::remove_file(m.join("b")).unwrap();
    std::fs::remove_dir(m.join("d")).unwrap();
    assert!(!real.join("b").exists() && !real.join("d").exists());
    assert!(std::fs::metadata(m.join("../mnt/../real")).is_ok());
    drop(mount);
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(
        !mounts.contains(&*mnt.to_string_lossy()),
        "mount left behind"
    );
}
