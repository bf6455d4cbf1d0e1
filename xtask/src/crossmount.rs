//! `cargo xtask crossmount`: runs the cross-mount harness (needs root or
//! fusermount3, and /dev/fuse).
//!
//! Builds and runs `airlock-crossmount` in release mode; arguments are passed
//! through (`--messages N`, `--control-messages N`, `--runs N`, `--poll-ms N`,
//! `--write-ms N`, `--no-latency`, `--delays-csv PATH`, `--mount-check-rounds
//! N`). Exits non-zero when airlock's pattern loses, duplicates or errors, or
//! a negative control goes undetected. `cargo xtask virtiofs` runs the same
//! harness against a VM.

use crate::util::{cargo, run_command};

/// Runs the harness with `args`.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut command = cargo(&["run", "--release", "-p", "airlock-crossmount", "--", "run"]);
    command.args(args);
    run_command(command).map_err(|e| format!("crossmount harness failed: {e}"))
}
