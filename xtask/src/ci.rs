//! `cargo xtask ci`: the checks CI runs, in the order that fails fastest.

use crate::util::{cargo, has_program, run_command};

/// Under CI every test must run: the PostgreSQL tests need their server
/// (they are compiled ignored without `AIRLOCK_TEST_PG_URL`, and
/// `AIRLOCK_REQUIRE_PG` turns a missing server into a failure, never a skip).
fn require_every_test() -> Result<bool, String> {
    if std::env::var_os("CI").is_none() {
        return Ok(false);
    }
    match std::env::var("AIRLOCK_TEST_PG_URL") {
        Ok(url) if !url.trim().is_empty() => Ok(true),
        _ => Err(
            "CI is set but AIRLOCK_TEST_PG_URL is not: the PostgreSQL tests would be \
                  skipped (.ci/run starts PostgreSQL and sets it)"
                .into(),
        ),
    }
}

/// Runs formatting, lints, the whole test suite, cargo-deny and the short
/// fault campaign.
pub fn run_all() -> Result<(), String> {
    let strict = require_every_test()?;
    run_command(cargo(&["fmt", "--all", "--check"]))?;
    run_command(cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;
    if !has_program("cargo-deny", &["--version"]) {
        run_command(cargo(&["install", "--locked", "cargo-deny"]))?;
    }
    // The advisory database cannot be downloaded on these machines.
    run_command(cargo(&[
        "deny", "--locked", "check", "licenses", "bans", "sources",
    ]))?;
    if has_program("cargo-nextest", &["--version"]) {
        // nextest does not run doctests; run them first so the suite's
        // summary is the last test report CI prints.
        run_command(cargo(&["test", "--workspace", "--locked", "--doc"]))?;
        let mut nextest = cargo(&[
            "nextest",
            "run",
            "--workspace",
            "--locked",
            "--no-fail-fast",
            // Under CI nothing may be skipped: an ignored test runs.
            if strict {
                "--run-ignored=all"
            } else {
                "--run-ignored=default"
            },
        ]);
        if strict {
            // A PostgreSQL test that cannot find its server fails, never skips.
            nextest.env("AIRLOCK_REQUIRE_PG", "1");
        }
        run_command(nextest)?;
    } else {
        let mut test = cargo(&["test", "--workspace", "--locked", "--no-fail-fast"]);
        if strict {
            test.env("AIRLOCK_REQUIRE_PG", "1");
            test.args(["--", "--include-ignored"]);
        }
        run_command(test)?;
    }
    // io-errors takes ~4.5 minutes at 40 trials on a 2-core machine (every
    // faulted run is a process under fiu-run): `cargo xtask faults` runs it.
    for scenario in crate::faults::CI_SCENARIOS {
        crate::faults::run_with(&crate::faults::Options {
            trials: crate::faults::CI_TRIALS,
            scenario: Some(scenario.to_owned()),
        })?;
    }
    Ok(())
}

/// Entry point: `cargo xtask ci`.
pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(extra) = args.first() {
        return Err(format!("`ci` takes no arguments, got {extra:?}"));
    }
    run_all()
}
