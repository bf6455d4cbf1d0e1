//! `cargo xtask bench criterion [ARGS]`: the criterion benchmarks and the
//! in-process attachment peak-memory check, as before the workload suite.
//!
//! - `resolve_session` on 100,000 sessions (SQLite, and PostgreSQL when
//!   `AIRLOCK_TEST_PG_URL` is set);
//! - `due_outbound` and `write_message` on a session with a 2,000-message history;
//! - peak memory of extracting a 64 MiB attachment (must stay under 2.5x
//!   the content string).
//!
//! ARGS are passed to criterion (e.g. `--quick`).

use crate::util::{cargo, run_command};

/// Runs the criterion benches, then the peak-memory example.
pub fn run(args: &[String]) -> Result<(), String> {
    criterion("airlock-postgres", "resolve", args)?;
    criterion("airlock-sqlite-fs", "long_history", args)?;
    run_command(cargo(&[
        "run",
        "--release",
        "-p",
        "airlock-sqlite-fs",
        "--example",
        "attachment_peak_rss",
    ]))
}

/// Runs one criterion bench target, passing `args` to criterion.
fn criterion(package: &str, bench: &str, args: &[String]) -> Result<(), String> {
    let mut cmd = cargo(&["bench", "-p", package, "--bench", bench, "--"]);
    cmd.args(args);
    run_command(cmd)
}
