//! `cargo xtask ci`: the checks CI runs, in the order that fails fastest.

use crate::util::{cargo, has_program, run_command};

/// Runs formatting, lints, the whole test suite and cargo-deny.
pub fn run_all() -> Result<(), String> {
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
        run_command(cargo(&[
            "nextest",
            "run",
            "--workspace",
            "--locked",
            "--no-fail-fast",
        ]))
    } else {
        run_command(cargo(&[
            "test",
            "--workspace",
            "--locked",
            "--no-fail-fast",
        ]))
    }
}

/// Entry point: `cargo xtask ci`.
pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(extra) = args.first() {
        return Err(format!("`ci` takes no arguments, got {extra:?}"));
    }
    run_all()
}
