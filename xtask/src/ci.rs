//! `cargo xtask ci`: the checks CI runs, in the order that fails fastest.

use crate::util::{cargo, has_program, run_command};

/// Crates a program that links only the guest half must not pull in.
const NOT_IN_A_GUEST_BUILD: &[&str] = &["tokio", "sqlx", "airlock-postgres", "airlock-host"];

/// The lines of a `cargo tree --prefix none` output that name a crate of
/// [`NOT_IN_A_GUEST_BUILD`].
fn forbidden_in_guest_tree(tree: &str) -> Vec<String> {
    tree.lines()
        .filter(|line| {
            let name = line.split_whitespace().next().unwrap_or_default();
            NOT_IN_A_GUEST_BUILD.contains(&name)
        })
        .map(str::to_owned)
        .collect()
}

/// The guest half of `airlock-sqlite-fs` (no default features) builds and
/// lints on its own, and its dependency tree has no tokio, sqlx or host crate.
fn check_guest_only_build() -> Result<(), String> {
    let guest = [
        "-p",
        "airlock-sqlite-fs",
        "--no-default-features",
        "--locked",
    ];
    let mut clippy = cargo(&["clippy"]);
    clippy.args(guest).args(["--", "-D", "warnings"]);
    run_command(clippy)?;
    let mut tree = cargo(&["tree", "-e", "normal", "--prefix", "none"]);
    tree.args(guest);
    let out = tree
        .output()
        .map_err(|e| format!("could not run cargo tree: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo tree of the guest-only build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let found = forbidden_in_guest_tree(&String::from_utf8_lossy(&out.stdout));
    if found.is_empty() {
        eprintln!(
            "guest-only build: no {}",
            NOT_IN_A_GUEST_BUILD.join(", no ")
        );
        Ok(())
    } else {
        Err(format!(
            "the guest-only build of airlock-sqlite-fs pulls in {}",
            found.join(", ")
        ))
    }
}

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
    check_guest_only_build()?;
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
    virtiofs_after_fuse(strict)
}

/// Under CI, after the FUSE suite: the same invariants on real virtio-fs in a VM (short form).
fn virtiofs_after_fuse(strict: bool) -> Result<(), String> {
    if strict {
        crate::virtiofs::run(&["--short".to_owned()])
    } else {
        eprintln!(
            "(not under CI: `cargo xtask virtiofs` runs the suite on real virtio-fs in a VM)"
        );
        Ok(())
    }
}

/// Entry point: `cargo xtask ci`.
pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(extra) = args.first() {
        return Err(format!("`ci` takes no arguments, got {extra:?}"));
    }
    run_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_tree_with_tokio_or_sqlx_is_caught() {
        let tree = "airlock-sqlite-fs v0.1.0 (/w)\nrusqlite v0.39.0\ntokio v1.47.0\nsqlx v0.9.0 (*)\ntokio-util v0.7.0\n";
        assert_eq!(
            forbidden_in_guest_tree(tree),
            ["tokio v1.47.0", "sqlx v0.9.0 (*)"]
        );
        assert!(forbidden_in_guest_tree("airlock-core v0.1.0\nrusqlite v0.39.0\n").is_empty());
    }
}
