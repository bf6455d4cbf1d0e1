//! `cargo xtask fuzz --seconds N`: runs every cargo-fuzz target in `fuzz/`
//! for N seconds each, or prints a SKIP line when nightly or cargo-fuzz is
//! missing.
//!
//! New corpus entries go to `target/fuzz-corpus/<target>/` (scratch); the
//! committed seeds in `fuzz/corpus/<target>/` are only read. Crashes land in
//! `fuzz/artifacts/<target>/`; minimise each into a regression test.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{has_program, project_root};

/// Seconds one input may run before libFuzzer reports it as a hang (a FIFO
/// opened without `O_NONBLOCK` would show up here).
const PER_INPUT_TIMEOUT_SECS: u64 = 10;

/// `cargo fuzz` has no `--locked`: without this check a stale
/// `fuzz/Cargo.lock` would be rewritten by the build and leave the clone dirty.
fn check_lock_file(root: &std::path::Path) -> Result<(), String> {
    let manifest = root.join("fuzz").join("Cargo.toml");
    let status = Command::new("cargo")
        .current_dir(root)
        // `fetch --locked` both downloads what a fresh machine lacks and
        // fails when the lock file would have to change (an offline
        // `metadata` took a missing download for a stale lock).
        .args(["+nightly", "fetch", "--locked"])
        .arg("--manifest-path")
        .arg(&manifest)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("running cargo fetch for {}: {e}", manifest.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err("fuzz/Cargo.lock is out of date with the workspace (or its packages \
             could not be downloaded; cargo's error is above): run \
             `cargo +nightly metadata --manifest-path fuzz/Cargo.toml --format-version 1 >/dev/null` \
             and commit fuzz/Cargo.lock"
            .into())
    }
}

/// Runs each fuzz target for `seconds`; fails if any target found a crash.
pub fn run(seconds: u64) -> Result<(), String> {
    let root = project_root();
    let fuzz_dir = root.join("fuzz");
    if !has_program("cargo", &["+nightly", "--version"]) {
        println!(
            "SKIP fuzz: the nightly toolchain is not installed (rustup toolchain install nightly)"
        );
        return Ok(());
    }
    if !has_program("cargo", &["+nightly", "fuzz", "--version"]) {
        println!("SKIP fuzz: cargo-fuzz is not installed (cargo install --locked cargo-fuzz)");
        return Ok(());
    }
    check_lock_file(&root)?;
    let targets = list_targets(&fuzz_dir)?;
    if targets.is_empty() {
        return Err(format!(
            "no fuzz targets in {}",
            fuzz_dir.join("fuzz_targets").display()
        ));
    }
    let dict = fuzz_dir.join("dict").join("traversal.dict");
    let mut failed = Vec::new();
    for target in &targets {
        let scratch = root.join("target").join("fuzz-corpus").join(target);
        std::fs::create_dir_all(&scratch)
            .map_err(|e| format!("creating {}: {e}", scratch.display()))?;
        let seeds = fuzz_dir.join("corpus").join(target);
        println!("fuzz {target}: {seconds} s");
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&root).args(["+nightly", "fuzz", "run"]);
        // A target dir outside the clone lets CI reuse the (slow, sanitizer-
        // instrumented) fuzz build across fresh clones on one machine.
        if let Some(dir) = std::env::var_os("AIRLOCK_FUZZ_TARGET_DIR") {
            cmd.arg("--target-dir").arg(PathBuf::from(dir));
        } else if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
            cmd.arg("--target-dir").arg(PathBuf::from(dir).join("fuzz"));
        }
        cmd.arg(target).arg(&scratch).arg(&seeds).arg("--");
        cmd.arg(format!("-max_total_time={seconds}"));
        cmd.arg(format!("-timeout={PER_INPUT_TIMEOUT_SECS}"));
        if dict.is_file() {
            cmd.arg(format!("-dict={}", dict.display()));
        }
        // libFuzzer prints thousands of progress lines: keep them in a file
        // and show its end, so the CI log stays readable.
        let log_path = root
            .join("target")
            .join("fuzz-logs")
            .join(format!("{target}.log"));
        let status = run_logged(&mut cmd, &log_path)
            .map_err(|e| format!("running cargo fuzz for {target}: {e}"))?;
        if status.success() {
            print_tail(&log_path, SUMMARY_LINES);
            println!("fuzz {target}: ok (full output: {})", log_path.display());
        } else {
            print_tail(&log_path, FAILURE_LINES);
            println!(
                "fuzz {target}: FAILED (artifacts in {}, full output: {})",
                fuzz_dir.join("artifacts").join(target).display(),
                log_path.display()
            );
            failed.push(target.clone());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("fuzz targets failed: {}", failed.join(", ")))
    }
}

/// Lines of a passing target's output shown: libFuzzer's "Done N runs" line.
const SUMMARY_LINES: usize = 1;
/// Lines of a failing target's output shown: the crash report and its input.
const FAILURE_LINES: usize = 80;

/// Runs `cmd` with stdout and stderr going to `log`.
fn run_logged(cmd: &mut Command, log: &Path) -> std::io::Result<std::process::ExitStatus> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let out = std::fs::File::create(log)?;
    let err = out.try_clone()?;
    cmd.stdout(out).stderr(err).status()
}

/// Prints the last `n` lines of `path`, indented.
fn print_tail(path: &Path, n: usize) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("({e})"));
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines[lines.len().saturating_sub(n)..] {
        println!("    {line}");
    }
}

/// Target names: the `.rs` files of `fuzz/fuzz_targets/`, sorted.
fn list_targets(fuzz_dir: &Path) -> Result<Vec<String>, String> {
    let dir = fuzz_dir.join("fuzz_targets");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    let mut targets: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let path = e.path();
            (path.extension()? == "rs").then(|| path.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    targets.sort();
    Ok(targets)
}
