//! `cargo xtask`: the one entry point for airlock's automation.
//!
//! Commands: `ci` (everything CI runs), `bench`, `crossmount`, `virtiofs`, `faults`, `fuzz`, `man`. Each command lives in its own module.

mod bench;
mod bench_child;
mod bench_criterion;
mod bench_plan;
mod bench_summary;
mod ci;
mod crossmount;
mod faults;
mod fuzz;
mod man;
mod util;
mod virtiofs;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  ci            format check, clippy, the whole test suite, cargo-deny
                (the same steps as .ci/run, minus machine set-up)
  bench [--quick] [--runs N]
                issue 14's workloads W1-W6 and the disk's floor, in
                AIRLOCK_BENCH_DIR (default /var/tmp, never tmpfs): prints a
                table and writes target/bench/summary.json; --quick takes
                seconds (CI), the full run takes minutes
  bench criterion [ARGS]
                criterion benchmarks (resolve_session on 100k sessions, SQLite
                and PostgreSQL with AIRLOCK_TEST_PG_URL; due_outbound on a
                long history, write_message too) and the attachment peak-memory
                check; ARGS go to criterion
  crossmount [ARGS]
                the cross-mount harness: airlock's access pattern and four
                negative controls through FUSE mounts that behave like
                VirtioFS (needs root and /dev/fuse); see crates/crossmount
  virtiofs [--short] [--accel auto|kvm|tcg] [ARGS]
                the same suite on real virtio-fs: a QEMU VM (Debian kernel,
                busybox, virtiofsd from crates.io; cached in
                ~/.cache/airlock/virtiofs) runs the guest; --short is CI's form
  man [--out DIR]
                the airlock CLI's man pages (airlock.1, one per command),
                generated from its clap definition; default target/man
  faults [--trials N] [--scenario NAME]
                issue 15's fault campaign: sends and delivery runs killed at
                random points, I/O errors (libfiu's fiu-run), each with a
                negative control; one line per scenario (default 200 trials)
  fuzz [--seconds N]
                every cargo-fuzz target for N seconds (default 60); prints
                SKIP when nightly or cargo-fuzz is missing";

/// `--seconds N` (default 60).
fn parse_seconds(args: &[String]) -> Result<u64, String> {
    match args {
        [] => Ok(60),
        [flag, n] if flag == "--seconds" => n
            .parse()
            .map_err(|_| format!("--seconds takes a whole number, got {n:?}")),
        other => Err(format!("fuzz takes `--seconds N`, got {other:?}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("crossmount") => crossmount::run(&args[1..]),
        Some("virtiofs") => virtiofs::run(&args[1..]),
        Some("faults") => faults::run(&args[1..]),
        Some("fuzz") => parse_seconds(&args[1..]).and_then(fuzz::run),
        Some("man") => man::run(&args[1..]),
        Some("-h" | "--help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
