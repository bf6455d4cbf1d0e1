//! The matrix of configurations run by `cargo xtask crossmount`, and its verdict.
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fs::{CacheConfig, CacheMode};
use crate::medium::VmShare;
use crate::pattern::Pattern;
use crate::report::RunReport;
use crate::run::{Direction, MountCheckPlan, RunConfig, run};

/// `cache=none`-like mount.
pub const NONE: CacheConfig = CacheConfig {
    mode: CacheMode::None,
    attr_timeout: Duration::ZERO,
    writeback: false,
};
/// `cache=auto`-like mount with VirtioFS's default 1 s timeout.
pub const AUTO: CacheConfig = CacheConfig {
    mode: CacheMode::Auto,
    attr_timeout: Duration::from_secs(1),
    writeback: false,
};
/// `cache=auto` plus the FUSE writeback cache.
pub const AUTO_WB: CacheConfig = CacheConfig {
    writeback: true,
    ..AUTO
};
/// `cache=always`-like mount: page cache kept, attributes trusted for an hour.
pub const ALWAYS: CacheConfig = CacheConfig {
    mode: CacheMode::Always,
    attr_timeout: Duration::from_secs(3600),
    writeback: false,
};

/// The four mounts, each with the name of its virtio-fs share in a VM (`cargo xtask virtiofs`).
pub const SHARES: [(CacheConfig, &str); 4] = [
    (NONE, "never"),
    (AUTO, "auto"),
    (ALWAYS, "always"),
    (AUTO_WB, "auto-wb"),
];

/// A running VM whose virtio-fs shares are `<host_root>/<share>` on the host
/// and `<guest_root>/<share>` inside, one per entry of [`SHARES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vm {
    /// The VM's agent, `host:port` ([`crate::vm`]).
    pub agent: String,
    /// Parent of the shared folders on the host.
    pub host_root: PathBuf,
    /// Parent of their mount points in the VM.
    pub guest_root: PathBuf,
}

impl Vm {
    /// The share that has the behaviour of `cache`.
    pub fn share(&self, cache: CacheConfig) -> Option<VmShare> {
        let (_, name) = SHARES.iter().find(|(c, _)| *c == cache)?;
        Some(VmShare {
            host_root: self.host_root.join(name),
            guest_root: self.guest_root.join(name),
            agent: self.agent.clone(),
        })
    }
}

/// A control run that shows no violation after its messages goes on writing
/// up to this many times as many before it counts as not caught.
pub const CONTROL_EXTENSION: usize = 5;

/// What a case must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// airlock's pattern: every invariant holds in every run.
    Pass,
    /// A negative control: a violation is detected in every run.
    Caught,
    /// A mount airlock does not support (the self-test flags it): shown, not judged.
    Unsupported,
}

/// One line of the matrix: what runs and what must come out.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Short name, e.g. `NC2`.
    pub name: &'static str,
    /// Mount behaviour.
    pub cache: CacheConfig,
    /// Access pattern.
    pub pattern: Pattern,
    /// Which way messages flow.
    pub direction: Direction,
    /// What must come out.
    pub expect: Expect,
}

impl Case {
    /// Whether this is a negative control.
    pub fn control(&self) -> bool {
        self.expect == Expect::Caught
    }
}

/// The full matrix: airlock's pattern on every mount it must work on, then the controls.
pub fn cases() -> Vec<Case> {
    use Direction::{Both, GuestToHost};
    use Expect::{Caught, Pass, Unsupported};
    let c = |name, cache, pattern, direction, expect| Case {
        name,
        cache,
        pattern,
        direction,
        expect,
    };
    vec![
        c("airlock", NONE, Pattern::Airlock, Both, Pass),
        c("airlock", AUTO, Pattern::Airlock, Both, Pass),
        c("airlock", AUTO_WB, Pattern::Airlock, GuestToHost, Pass),
        c("NC1", AUTO, Pattern::Nc1Wal, Both, Caught),
        c("NC2", ALWAYS, Pattern::Airlock, Both, Caught),
        c("NC3", AUTO, Pattern::Nc3GuestReadWrite, Both, Caught),
        c(
            "NC4",
            AUTO_WB,
            Pattern::Nc4LongLivedWriter,
            GuestToHost,
            Caught,
        ),
        c("wb-in", AUTO_WB, Pattern::Airlock, Both, Unsupported),
    ]
}

/// Sizes of a suite run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Messages per run of airlock's pattern.
    pub messages: usize,
    /// Messages per run of a control.
    pub control_messages: usize,
    /// Runs per control.
    pub control_runs: usize,
    /// Host write interval.
    pub write_interval: Duration,
    /// Guest poll interval.
    pub poll_interval: Duration,
    /// Whether timing bounds count (the xtask: yes; tests: no).
    pub latency: bool,
    /// Run only these cases (by name, `self-test` for the mount self-test); empty: all.
    pub only: Vec<String>,
    /// Where to write every message's delay as CSV (`case,mount,pattern,run,id,delay_ms`).
    pub delays_csv: Option<PathBuf>,
    /// The binary that acts as guest.
    pub guest_exe: PathBuf,
    /// Run on a VM's virtio-fs shares instead of the FUSE mount.
    pub vm: Option<Vm>,
    /// Nonces of the mount self-test (below 2: the one-shot test a one-time refresh fools).
    pub mount_check_rounds: usize,
}

impl Settings {
    /// Full-size settings (500 messages, 3 runs per control).
    pub fn full(guest_exe: &Path) -> Self {
        Settings {
            messages: 500,
            control_messages: 100,
            control_runs: 3,
            write_interval: Duration::from_millis(20),
            poll_interval: Duration::from_millis(100),
            latency: true,
            only: Vec::new(),
            delays_csv: None,
            guest_exe: guest_exe.to_path_buf(),
            vm: None,
            mount_check_rounds: airlock_sqlite_fs::host::MOUNT_CHECK_ROUNDS,
        }
    }

    /// Whether the case (or `self-test`) named `name` is to run.
    pub fn selected(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }

    /// The VM share for `cache`, when running on a VM.
    pub fn vm_share(&self, cache: CacheConfig) -> Result<Option<VmShare>, String> {
        match &self.vm {
            None => Ok(None),
            Some(vm) => vm
                .share(cache)
                .map(Some)
                .ok_or_else(|| format!("the VM has no share for {}", cache.label())),
        }
    }

    /// The run configuration of one case.
    pub fn config(&self, case: &Case) -> Result<RunConfig, String> {
        let messages = if case.expect == Expect::Pass {
            self.messages
        } else {
            self.control_messages
        };
        let cfg = RunConfig {
            cache: case.cache,
            pattern: case.pattern,
            direction: case.direction,
            messages,
            max_messages: if case.control() {
                messages * CONTROL_EXTENSION
            } else {
                messages
            },
            write_interval: self.write_interval,
            poll_interval: self.poll_interval,
            settle: Duration::ZERO,
            guest_exe: self.guest_exe.clone(),
            vm: self.vm_share(case.cache)?,
        };
        // Four times the stated bound, at least 3 s, at most 15 s: later is "lost".
        let settle = (cfg.bound() * 4).clamp(Duration::from_secs(3), Duration::from_secs(15));
        Ok(RunConfig { settle, ..cfg })
    }
}

/// Outcome of one case over all its runs.
#[derive(Debug)]
pub struct CaseResult {
    /// The case.
    pub case: Case,
    /// One report per run.
    pub reports: Vec<RunReport>,
    /// Per run: the reasons it failed (empty = invariants held).
    pub failures: Vec<Vec<String>>,
}

impl CaseResult {
    /// airlock held in every run, or the control was caught in every run.
    pub fn ok(&self) -> bool {
        match self.case.expect {
            Expect::Caught => self.failures.iter().all(|f| !f.is_empty()),
            Expect::Pass => self.failures.iter().all(|f| f.is_empty()),
            Expect::Unsupported => true,
        }
    }
}

/// Runs one case `runs` times.
pub fn run_case(settings: &Settings, case: Case, runs: usize) -> Result<CaseResult, String> {
    let cfg = settings.config(&case)?;
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for _ in 0..runs {
        let r = run(&cfg)?;
        failures.push(r.failures(settings.latency));
        reports.push(r);
    }
    Ok(CaseResult {
        case,
        reports,
        failures,
    })
}

/// Result of the mount self-test on one mount.
#[derive(Debug)]
pub struct MountCheckResult {
    /// Mount label.
    pub mount: String,
    /// `None` when the guest saw the host's fresh nonce.
    pub error: Option<String>,
}

/// Runs the mount self-test on `cache`: an earlier guest reads a nonce (so the
/// mount caches it, as a VM's page cache outlives one container), the host
/// prepares the session again, and a new guest must see each of its
/// nonces, the later ones written after it read the one before.
pub fn mount_check(settings: &Settings, cache: CacheConfig) -> Result<MountCheckResult, String> {
    mount_check_with(settings, cache, true)
}

/// [`mount_check`], with or without the earlier guest.
pub fn mount_check_with(
    settings: &Settings,
    cache: CacheConfig,
    earlier_reader: bool,
) -> Result<MountCheckResult, String> {
    let plan = MountCheckPlan {
        earlier_reader,
        rounds: settings.mount_check_rounds,
        timeout: cache.ttl().min(Duration::from_secs(2)) + Duration::from_secs(2),
    };
    let vm = settings.vm_share(cache)?;
    let error = crate::run::mount_check(&settings.guest_exe, vm.as_ref(), cache, plan)?;
    Ok(MountCheckResult {
        mount: cache.label(),
        error,
    })
}

/// The name that selects the mount self-test in `--only`.
pub const SELF_TEST: &str = "self-test";

/// `--only`'s list: names of [`cases`] or [`SELF_TEST`], comma-separated.
fn parse_only(list: &str) -> Result<Vec<String>, String> {
    let mut known: Vec<&str> = cases().iter().map(|c| c.name).collect();
    known.dedup();
    known.push(SELF_TEST);
    list.split(',')
        .map(|name| {
            if known.contains(&name) {
                Ok(name.to_owned())
            } else {
                Err(format!(
                    "--only: unknown case {name:?} (known: {})",
                    known.join(", ")
                ))
            }
        })
        .collect()
}

fn parse(args: &[String], exe: &Path) -> Result<Settings, String> {
    let mut s = Settings::full(exe);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            let v = it.next().ok_or_else(|| format!("{name} needs a value"))?;
            v.parse().map_err(|_| format!("{name}: not a number: {v}"))
        };
        match flag.as_str() {
            "run" => {}
            "--messages" => s.messages = num("--messages")? as usize,
            "--control-messages" => s.control_messages = num("--control-messages")? as usize,
            "--runs" => s.control_runs = num("--runs")? as usize,
            "--poll-ms" => s.poll_interval = Duration::from_millis(num("--poll-ms")?),
            "--write-ms" => s.write_interval = Duration::from_millis(num("--write-ms")?),
            "--no-latency" => s.latency = false,
            "--only" => {
                let list = it.next().ok_or("--only needs CASE[,CASE...]")?;
                s.only = parse_only(list)?;
            }
            "--mount-check-rounds" => s.mount_check_rounds = num("--mount-check-rounds")? as usize,
            "--vm" => {
                let mut path = || it.next().ok_or("--vm needs AGENT HOST_ROOT GUEST_ROOT");
                let agent = path()?.clone();
                let host_root = PathBuf::from(path()?);
                let guest_root = PathBuf::from(path()?);
                s.vm = Some(Vm {
                    agent,
                    host_root,
                    guest_root,
                });
            }
            "--delays-csv" => {
                s.delays_csv = Some(PathBuf::from(it.next().ok_or("--delays-csv needs a path")?))
            }
            "-h" | "--help" => {
                return Err(
                    "usage: airlock-crossmount [run] [--messages N] [--control-messages N] \
                            [--runs N] [--poll-ms N] [--write-ms N] [--no-latency] [--delays-csv PATH] \
                            [--mount-check-rounds N] [--only CASE[,CASE...]] \
                            [--vm AGENT HOST_ROOT GUEST_ROOT]"
                        .into(),
                );
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(s)
}

/// Entry point of the binary: runs the matrix, prints the table, fails on a broken verdict.
pub fn main(args: &[String]) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let settings = parse(args, &exe)?;
    if settings.vm.is_none()
        && let Some(why) = crate::mount::fuse_unavailable()
    {
        return Err(format!("FUSE is not available here: {why}"));
    }
    crate::mount::sweep_dead_mounts();
    println!(
        "crossmount: {} messages per airlock run, {} per control run x{}, write every {} ms, poll every {} ms",
        settings.messages,
        settings.control_messages,
        settings.control_runs,
        settings.write_interval.as_millis(),
        settings.poll_interval.as_millis()
    );
    if let Some(vm) = &settings.vm {
        println!(
            "on real virtio-fs (agent {}): none = --cache=never, auto(1s) = --cache=auto, \
             always(3600s) = --cache=always, +wb = --writeback",
            vm.agent
        );
    }
    println!("{:<8} {}  verdict", "case", RunReport::header());
    let mut bad = Vec::new();
    let mut csv = String::from("case,mount,pattern,run,id,delay_ms\n");
    for case in cases().into_iter().filter(|c| settings.selected(c.name)) {
        let runs = if case.control() {
            settings.control_runs
        } else {
            1
        };
        let result = run_case(&settings, case, runs)?;
        for (run, r) in result.reports.iter().enumerate() {
            for (id, d) in &r.delays_by_id {
                csv.push_str(&format!(
                    "{},{},{},{run},{id},{d}\n",
                    case.name, r.mount, r.pattern
                ));
            }
        }
        for (r, f) in result.reports.iter().zip(&result.failures) {
            let verdict = match (case.expect, f.is_empty()) {
                (Expect::Pass, true) => "PASS".to_owned(),
                (Expect::Pass, false) => format!("FAIL: {}", f.join("; ")),
                (Expect::Caught, false) => format!("caught: {}", f.join("; ")),
                (Expect::Caught, true) => "NOT CAUGHT".to_owned(),
                (Expect::Unsupported, true) => "unsupported mount, held this time".to_owned(),
                (Expect::Unsupported, false) => {
                    format!("unsupported mount (not judged): {}", f.join("; "))
                }
            };
            let dir = match case.direction {
                Direction::Both => "",
                Direction::GuestToHost => " [guest->host only]",
            };
            let note = r
                .host_note
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            let verdict = format!("{verdict}{dir}{note}");
            println!("{:<8} {}  {verdict}", case.name, r.row());
        }
        if !result.ok() {
            bad.push(format!(
                "{} on {} ({})",
                case.name,
                case.cache.label(),
                case.pattern.name()
            ));
        }
    }
    if let Some(path) = &settings.delays_csv {
        std::fs::write(path, &csv).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("per-message delays written to {}", path.display());
    }
    if settings.selected(SELF_TEST) {
        bad.extend(self_tests(&settings)?);
    }
    if bad.is_empty() {
        let scope = if settings.only.is_empty() {
            String::new()
        } else {
            format!(" (only {})", settings.only.join(", "))
        };
        println!(
            "\ncrossmount: all invariants held for airlock's pattern; every control was caught{scope}"
        );
        Ok(())
    } else {
        Err(format!("verdict broken for: {}", bad.join(", ")))
    }
}

/// The mount self-test on every mount, printed; returns the mounts whose verdict broke.
fn self_tests(settings: &Settings) -> Result<Vec<String>, String> {
    println!();
    println!(
        "mount self-test ({} rounds; an earlier guest read a nonce first, the host rewrites after each ack):",
        settings.mount_check_rounds
    );
    let mut bad = Vec::new();
    for (cache, must_pass) in [
        (NONE, true),
        (AUTO, true),
        (ALWAYS, false),
        (AUTO_WB, false),
    ] {
        let r = mount_check(settings, cache)?;
        let ok = r.error.is_none() == must_pass;
        println!(
            "  {:<14} {}  {}",
            r.mount,
            r.error.as_deref().unwrap_or("ok: every round seen"),
            if ok { "as expected" } else { "UNEXPECTED" }
        );
        if !ok {
            bad.push(format!("mount self-test on {}", r.mount));
        }
    }
    Ok(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_takes_case_names_and_the_self_test_and_names_a_wrong_one() {
        assert_eq!(
            parse_only("NC3,self-test").unwrap(),
            ["NC3", SELF_TEST].map(str::to_owned)
        );
        let e = parse_only("NC3,nc9").unwrap_err();
        assert!(e.contains("\"nc9\"") && e.contains("NC1"), "{e}");
        let s = parse(&["--only".into(), "NC1".into()], Path::new("g")).unwrap();
        assert!(s.selected("NC1") && !s.selected("NC3") && !s.selected(SELF_TEST));
    }
}
