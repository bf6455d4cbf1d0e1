//! `cargo xtask bench`: every benchmark and measurement, in release mode.
//!
//! - criterion: `resolve_session` on 100,000 sessions (SQLite, and
//!   PostgreSQL when `AIRLOCK_TEST_PG_URL` is set);
//! - peak memory of extracting a 64 MiB attachment (must stay under 2.5x
//!   the content string).
//!
//! Extra arguments are passed to criterion (e.g. `--quick`).

use crate::util::{cargo, run_command};

/// Runs the benchmarks.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut bench = cargo(&[
        "bench",
        "-p",
        "airlock-postgres",
        "--bench",
        "resolve",
        "--",
    ]);
    bench.args(args);
    run_command(bench)?;
    run_command(cargo(&[
        "run",
        "--release",
        "-p",
        "airlock-sqlite-fs",
        "--example",
        "attachment_peak_rss",
    ]))
}
