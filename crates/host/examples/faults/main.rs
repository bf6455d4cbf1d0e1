//! The fault campaign's driver (`cargo xtask faults` builds and runs it):
//! scenarios that kill, starve or break the `airlock` binary while it
//! works, then check the whole history with `airlock_core::testing::history`.
//!
//! `faults --airlock PATH [--trials N] [--scenario NAME] [--dir DIR]`
//! prints one line per scenario and exits non-zero if any check failed.
//! Every scenario has a negative control: the same harness against a
//! deliberately unsafe writer, which must be caught.

mod airlock;
mod deliver_kill;
mod disk_full;
mod guest_kill;
mod io_errors;
mod io_sweep;
mod power_loss;
mod read_only;
mod send_kill;
mod support;

use std::path::PathBuf;
use std::process::ExitCode;

/// What a scenario found: its line and whether every check held.
pub struct Outcome {
    /// The scenario's name.
    pub name: &'static str,
    /// Trials run.
    pub trials: usize,
    /// The checker's figures and the extra checks, one line.
    pub figures: String,
    /// Whether the run is what the scenario expects.
    pub ok: bool,
}

/// The campaign's settings.
pub struct Campaign {
    /// The `airlock` binary under test.
    pub airlock: PathBuf,
    /// This driver (re-run for the unsafe writers of the negative controls).
    pub driver: PathBuf,
    /// Trials per scenario.
    pub trials: usize,
    /// Where the scenarios make their data dirs.
    pub dir: PathBuf,
}

/// A small xorshift generator: random kill points need no crypto, only spread.
pub struct Rng(u64);

impl Rng {
    /// Seeded from the clock and the pid.
    pub fn from_time() -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Rng(nanos ^ (u64::from(std::process::id()) << 32) | 1)
    }

    /// The next number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

type Scenario = fn(&Campaign) -> Result<Vec<Outcome>, String>;

const SCENARIOS: [(&str, Scenario); 8] = [
    ("send-kill", send_kill::run),
    ("deliver-kill", deliver_kill::run),
    ("io-errors", io_errors::run),
    ("guest-kill", guest_kill::run),
    ("disk-full", disk_full::run),
    ("read-only", read_only::run),
    ("io-sweep", io_sweep::run),
    ("power-loss", power_loss::run),
];

fn parse(args: &[String]) -> Result<(Campaign, Option<String>), String> {
    let mut airlock = None;
    let mut trials = 200;
    let mut scenario = None;
    let mut dir = std::env::temp_dir().join("airlock-faults");
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{flag} takes a value"));
        match flag.as_str() {
            "--airlock" => airlock = Some(PathBuf::from(value()?)),
            "--trials" => {
                let v = value()?;
                trials = v
                    .parse()
                    .map_err(|_| format!("--trials takes a number, got {v:?}"))?;
            }
            "--scenario" => scenario = Some(value()?),
            "--dir" => dir = PathBuf::from(value()?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let airlock = airlock.ok_or("--airlock PATH is required")?;
    let driver = std::env::current_exe().map_err(|e| format!("finding this binary: {e}"))?;
    Ok((
        Campaign {
            airlock,
            driver,
            trials,
            dir,
        },
        scenario,
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The unsafe writers of the negative controls run as roles of this binary.
    if let Some(code) = send_kill::unsafe_role(&args)
        .or_else(|| deliver_kill::unsafe_role(&args))
        .or_else(|| io_errors::unsafe_role(&args))
        .or_else(|| guest_kill::writer_role(&args))
        .or_else(|| read_only::swallow_role(&args))
        .or_else(|| power_loss::one_reply_role(&args))
    {
        return code;
    }
    let (campaign, only) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("faults: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(name) = &only
        && !SCENARIOS.iter().any(|(n, _)| n == name)
    {
        let names: Vec<&str> = SCENARIOS.iter().map(|(n, _)| *n).collect();
        eprintln!(
            "faults: unknown scenario {name:?}; known: {}",
            names.join(", ")
        );
        return ExitCode::from(2);
    }
    let mut all_ok = true;
    for (name, scenario) in SCENARIOS {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        match scenario(&campaign) {
            Ok(outcomes) => {
                for o in outcomes {
                    all_ok &= o.ok;
                    let verdict = if o.ok { "ok  " } else { "FAIL" };
                    println!(
                        "{verdict} {:<28} trials {:>4}  {}",
                        o.name, o.trials, o.figures
                    );
                }
            }
            Err(e) => {
                all_ok = false;
                println!("FAIL {name:<28} could not run: {e}");
            }
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
