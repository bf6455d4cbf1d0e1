//! `cargo xtask faults [--trials N] [--scenario NAME]`: issue 15's fault
//! campaign. Builds the `airlock` binary and the campaign's driver
//! (`crates/host/examples/faults/`, which holds the scenarios and runs the
//! history checkers of `airlock_core::testing::history`), then runs it; the
//! driver prints one line per scenario and fails if any check failed.

use std::path::PathBuf;
use std::process::Command;

use crate::util::{cargo, run_command, target_dir};

/// Trials per scenario of the full campaign (≥ 200 killed sends, ≥ 100
/// killed delivery runs).
pub const FULL_TRIALS: usize = 200;

/// Trials per scenario of the short campaign CI runs (well under 5 minutes
/// on a 2-core machine).
pub const CI_TRIALS: usize = 40;

/// The scenarios CI runs: the quick ones (io-errors needs minutes;
/// power-loss at 40 cuts and its 20-cut control about a minute, io-sweep
/// about 80 s, deliver-kill, disk-full, read-only and guest-kill seconds).
pub const CI_SCENARIOS: [&str; 7] = [
    "send-kill",
    "guest-kill",
    "deliver-kill",
    "disk-full",
    "read-only",
    "io-sweep",
    "power-loss",
];

/// The campaign's arguments.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    /// Trials per scenario.
    pub trials: usize,
    /// Only this scenario.
    pub scenario: Option<String>,
}

/// `[--trials N] [--scenario NAME]`.
pub fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        trials: FULL_TRIALS,
        scenario: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("faults: {flag} takes a value"))?;
        match flag.as_str() {
            "--trials" => {
                options.trials = value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--trials takes a positive number, got {value:?}"))?
            }
            "--scenario" => options.scenario = Some(value.clone()),
            other => {
                return Err(format!(
                    "faults takes `--trials N` and `--scenario NAME`, got {other:?}"
                ));
            }
        }
    }
    Ok(options)
}

/// Where the scenarios make their data dirs: tmpfs when there is one (a
/// SIGKILL does not depend on fsync, and it keeps the run fast), removed
/// first by each scenario.
fn work_dir() -> PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        shm.join(format!("airlock-faults-{}", std::process::id()))
    } else {
        std::env::temp_dir().join(format!("airlock-faults-{}", std::process::id()))
    }
}

/// Builds and runs the campaign.
pub fn run_with(options: &Options) -> Result<(), String> {
    run_command(cargo(&[
        "build",
        "--locked",
        "-p",
        "airlock-host",
        "--bin",
        "airlock",
        "--example",
        "faults",
        "--example",
        "fiu_kth",
    ]))?;
    let debug = target_dir().join("debug");
    let dir = work_dir();
    let mut driver = Command::new(debug.join("examples").join("faults"));
    driver
        .arg("--airlock")
        .arg(debug.join("airlock"))
        .args(["--trials", &options.trials.to_string()])
        .arg("--dir")
        .arg(&dir);
    if let Some(name) = &options.scenario {
        driver.args(["--scenario", name]);
    }
    let result = run_command(driver);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Entry point: `cargo xtask faults …`.
pub fn run(args: &[String]) -> Result<(), String> {
    run_with(&parse(args)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse(&[]).unwrap(),
            Options {
                trials: FULL_TRIALS,
                scenario: None
            }
        );
        let o = parse(&args(&["--trials", "7", "--scenario", "send-kill"])).unwrap();
        assert_eq!((o.trials, o.scenario.as_deref()), (7, Some("send-kill")));
        assert!(parse(&args(&["--trials", "0"])).is_err());
        assert!(parse(&args(&["--trials"])).is_err());
        assert!(parse(&args(&["--bogus", "1"])).is_err());
    }
}
