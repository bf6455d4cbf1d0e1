//! Race tests: a "guest" thread swaps an outbox folder, a file, or the
//! `outbox` folder itself between a real entry and a symlink to secrets
//! (atomically, with `RENAME_EXCHANGE`) while the host reads and clears.
//!
//! airlock must read 0 secret bytes and remove 0 files outside. A
//! deliberately path-based control (lstat + realpath checks, then a path
//! open / path-walking delete, as the reference does) runs in the same setup
//! and must leak at least once, which proves the setup can catch a leak.
//!
//! `AIRLOCK_RACE_SECS` sets the seconds per variant (default 2; `cargo xtask`
//! style soak runs use 10).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use airlock_sqlite_fs::attachments::{AttachmentLimits, clear_outbox, read_outbox_files};
use rustix::fs::{CWD, RenameFlags, renameat_with};

use crate::attachments_support::{Fixture, leaks};

const BENIGN: &[u8] = b"benign";
/// How long the control may take to leak before the test gives up on it.
const CONTROL_CAP: Duration = Duration::from_secs(60);

fn race_duration() -> Duration {
    let secs = std::env::var("AIRLOCK_RACE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    Duration::from_secs(secs)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    /// `outbox/m1` ⇄ symlink to `outside/dir`.
    Folder,
    /// `outbox/m1/a.png` ⇄ symlink to `outside/secret.txt`.
    File,
    /// `outbox` ⇄ symlink to `outside` (which has `m1/a.png`).
    Parent,
}

/// The guest's side: two sibling names swapped atomically, forever.
struct Flipper {
    /// The name the host uses.
    used: PathBuf,
    /// Its sibling.
    other: PathBuf,
    link_target: PathBuf,
    variant: Variant,
    session: PathBuf,
}

impl Flipper {
    fn new(fx: &Fixture, variant: Variant) -> Self {
        let outbox = fx.session.join("outbox");
        let (used, other, link_target) = match variant {
            Variant::Folder => (
                outbox.join("m1"),
                outbox.join("m1.swap"),
                fx.outside.join("dir"),
            ),
            Variant::File => (
                outbox.join("m1").join("a.png"),
                outbox.join("m1").join("a.swap"),
                fx.secret_file(),
            ),
            Variant::Parent => (
                outbox.clone(),
                fx.session.join("outbox.swap"),
                fx.outside.clone(),
            ),
        };
        Self {
            used,
            other,
            link_target,
            variant,
            session: fx.session.clone(),
        }
    }

    /// Recreates what the host's clear removed: the real entry at
    /// `real_at` and the symlink at the other name. Only this thread renames,
    /// so these paths are what it thinks they are.
    fn restore(&self, real_at_used: bool) {
        let (real, link) = if real_at_used {
            (&self.used, &self.other)
        } else {
            (&self.other, &self.used)
        };
        match self.variant {
            Variant::Folder => fill(real, "a.png"),
            Variant::File => {
                let _ = fs::create_dir_all(self.session.join("outbox").join("m1"));
                if fs::symlink_metadata(real).is_err() {
                    let _ = fs::write(real, BENIGN);
                }
            }
            Variant::Parent => fill(&real.join("m1"), "a.png"),
        }
        if fs::symlink_metadata(link).is_err() {
            let _ = std::os::unix::fs::symlink(&self.link_target, link);
        }
    }

    fn run(self, stop: Arc<AtomicBool>) -> u64 {
        let mut real_at_used = true;
        let mut swaps = 0;
        while !stop.load(Ordering::Relaxed) {
            self.restore(real_at_used);
            if renameat_with(CWD, &self.used, CWD, &self.other, RenameFlags::EXCHANGE).is_ok() {
                real_at_used = !real_at_used;
                swaps += 1;
            }
        }
        swaps
    }
}

fn fill(dir: &Path, name: &str) {
    let _ = fs::create_dir_all(dir);
    if fs::symlink_metadata(dir.join(name)).is_err() {
        let _ = fs::write(dir.join(name), BENIGN);
    }
}

/// What one host implementation does per iteration.
trait Host: Send + Sync + 'static {
    fn read(&self, session: &Path) -> Vec<Vec<u8>>;
    fn clear(&self, session: &Path);
}

struct Airlock;

impl Host for Airlock {
    fn read(&self, session: &Path) -> Vec<Vec<u8>> {
        read_outbox_files(
            session,
            "m1",
            &["a.png".to_string()],
            &AttachmentLimits::default(),
        )
        .unwrap()
        .into_iter()
        .map(|f| f.data)
        .collect()
    }

    fn clear(&self, session: &Path) {
        let _ = clear_outbox(session, "m1");
    }
}

/// The path-based checks airlock replaces: `lstat` says regular file /
/// folder, `realpath` says inside the session, then the path is used.
struct PathControl;

/// Time between the control's checks and its use of the path. The reference
/// host awaits each `fs` call, so an event-loop turn separates check and use;
/// modelling that gap keeps the control's leak from depending on how two
/// threads happen to be scheduled on a loaded 2-core CI machine.
const CHECK_TO_USE_GAP: Duration = Duration::from_micros(300);

impl Host for PathControl {
    fn read(&self, session: &Path) -> Vec<Vec<u8>> {
        let path = session.join("outbox").join("m1").join("a.png");
        let Ok(meta) = fs::symlink_metadata(&path) else {
            return vec![];
        };
        let inside = fs::canonicalize(&path).is_ok_and(|p| p.starts_with(session));
        if !meta.file_type().is_file() || !inside {
            return vec![];
        }
        std::thread::sleep(CHECK_TO_USE_GAP);
        fs::read(&path).into_iter().collect()
    }

    fn clear(&self, session: &Path) {
        let path = session.join("outbox").join("m1");
        let inside = fs::canonicalize(&path).is_ok_and(|p| p.starts_with(session));
        if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) && inside {
            std::thread::sleep(CHECK_TO_USE_GAP);
            naive_remove_dir(&path);
        } else {
            let _ = fs::remove_file(&path);
        }
    }
}

fn naive_remove_dir(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            std::thread::sleep(CHECK_TO_USE_GAP);
            naive_remove_dir(&path);
        } else {
            let _ = fs::remove_file(&path);
        }
    }
    let _ = fs::remove_dir(dir);
}

#[derive(Debug, Default)]
struct Outcome {
    iterations: u64,
    benign_reads: u64,
    secret_reads: u64,
    swaps: u64,
    outside_changed: bool,
}

/// Runs `host` against a flipping guest until `deadline`, or (for the
/// control) until it leaked in every way `want_leak` asks for.
fn race(
    variant: Variant,
    host: impl Host,
    limit: Duration,
    until_leak: Option<(bool, bool)>,
) -> Outcome {
    let fx = Fixture::new();
    let flipper = Flipper::new(&fx, variant);
    flipper.restore(true);
    let before = fx.outside_snapshot();
    let stop = Arc::new(AtomicBool::new(false));
    let guest = {
        let stop = stop.clone();
        std::thread::spawn(move || flipper.run(stop))
    };
    let host = Arc::new(host);
    let start = Instant::now();
    let mut outcome = Outcome::default();
    while start.elapsed() < limit {
        for data in host.read(&fx.session) {
            if leaks(&data) {
                outcome.secret_reads += 1;
            } else if data == BENIGN {
                outcome.benign_reads += 1;
            }
        }
        // Clear less often than read, so reads meet the real file too.
        if outcome.iterations % 4 == 3 {
            host.clear(&fx.session);
        }
        outcome.iterations += 1;
        if let Some((want_read, want_remove)) = until_leak
            && outcome.iterations % 64 == 0
        {
            if fx.outside_snapshot() != before {
                // Proven; put the secrets back so reads can still leak.
                outcome.outside_changed = true;
                fx.restore_outside();
            }
            if (!want_read || outcome.secret_reads > 0) && (!want_remove || outcome.outside_changed)
            {
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    outcome.swaps = guest.join().unwrap();
    outcome.outside_changed |= fx.outside_snapshot() != before;
    outcome
}

fn airlock_never_leaks(variant: Variant) {
    let outcome = race(variant, Airlock, race_duration(), None);
    eprintln!("{variant:?} airlock: {outcome:?}");
    assert_eq!(
        outcome.secret_reads, 0,
        "{variant:?}: secret read: {outcome:?}"
    );
    assert!(
        !outcome.outside_changed,
        "{variant:?}: outside changed: {outcome:?}"
    );
    assert!(
        outcome.swaps > 0 && outcome.iterations > 0,
        "the race did not run: {outcome:?}"
    );
    assert!(
        outcome.benign_reads > 0,
        "airlock never read the real file: {outcome:?}"
    );
}

fn control_leaks(variant: Variant, want_remove: bool) {
    let outcome = race(variant, PathControl, CONTROL_CAP, Some((true, want_remove)));
    eprintln!("{variant:?} control: {outcome:?}");
    assert!(
        outcome.secret_reads > 0,
        "{variant:?}: the control never read the secret: {outcome:?}"
    );
    if want_remove {
        assert!(
            outcome.outside_changed,
            "{variant:?}: the control never removed outside: {outcome:?}"
        );
    }
}

#[test]
fn folder_swap_airlock_never_leaks() {
    airlock_never_leaks(Variant::Folder);
}

#[test]
fn file_swap_airlock_never_leaks() {
    airlock_never_leaks(Variant::File);
}

#[test]
fn parent_swap_airlock_never_leaks() {
    airlock_never_leaks(Variant::Parent);
}

#[test]
fn folder_swap_path_based_control_leaks() {
    control_leaks(Variant::Folder, true);
}

/// A path-based delete unlinks a swapped-in symlink itself, so only the read
/// can leak through a swapped file.
#[test]
fn file_swap_path_based_control_leaks() {
    control_leaks(Variant::File, false);
}

#[test]
fn parent_swap_path_based_control_leaks() {
    control_leaks(Variant::Parent, true);
}
