//! The workloads of `cargo xtask bench` (issue 14: W1–W7 and the floor),
//! one per process so that peak memory can be read from outside.
//!
//! `bench <workload> --dir <folder> [--quick] [--mib N] [--max-history N]` runs one workload
//! in a fresh folder below `<folder>` and prints one `figure <key> <value>`
//! line per measurement (a key may repeat: the caller takes the median).
//! Workloads go through the public API only (`SessionManager` on the host
//! side, `GuestMailbox` on the guest side), so they measure whatever write
//! path the library has when run. Not meant to be run by hand: `cargo xtask
//! bench` builds it, runs every workload several times and aggregates.

mod floor;
mod history;
mod registry;
mod report;
mod setup;
mod tick;
mod visibility;
mod w2;
mod writers;

use std::path::PathBuf;
use std::process::ExitCode;

/// What the command line asked for.
struct Settings {
    workload: String,
    dir: PathBuf,
    quick: bool,
    mib: usize,
    max_history: Option<usize>,
}

fn parse(args: &[String]) -> Result<Settings, String> {
    let (workload, rest) = args.split_first().ok_or("missing workload")?;
    let mut settings = Settings {
        workload: workload.clone(),
        dir: std::env::temp_dir(),
        quick: false,
        mib: 64,
        max_history: None,
    };
    let mut rest = rest.iter();
    while let Some(flag) = rest.next() {
        match flag.as_str() {
            "--quick" => settings.quick = true,
            "--dir" => settings.dir = rest.next().ok_or("--dir takes a folder")?.into(),
            "--mib" => {
                let n = rest.next().ok_or("--mib takes a number")?;
                settings.mib = n
                    .parse()
                    .map_err(|_| format!("--mib takes a whole number, got {n:?}"))?;
            }
            "--max-history" => {
                let n = rest.next().ok_or("--max-history takes a number")?;
                let n = n
                    .parse()
                    .map_err(|_| format!("--max-history takes a whole number, got {n:?}"))?;
                settings.max_history = Some(n);
            }
            other => return Err(format!("unknown flag {other:?}")),
        }
    }
    Ok(settings)
}

fn run(settings: &Settings) -> Result<(), String> {
    let scratch = tempfile::Builder::new()
        .prefix("airlock-bench-")
        .tempdir_in(&settings.dir)
        .map_err(|e| format!("creating a folder in {}: {e}", settings.dir.display()))?;
    let dir = scratch.path();
    let quick = settings.quick;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting tokio: {e}"))?;
    match settings.workload.as_str() {
        "floor" => floor::run(dir, quick),
        "w1" => rt.block_on(writers::w1(dir, quick)),
        "w2" => rt.block_on(w2::throughput(dir, quick)),
        "w2b" => rt.block_on(w2::peak(dir, settings.mib, true)),
        "w2b-input" => rt.block_on(w2::peak(dir, settings.mib, false)),
        "w3" => rt.block_on(history::run(dir, quick, settings.max_history)),
        "w4" => rt.block_on(registry::run(dir, quick)),
        "w5" => rt.block_on(visibility::run(dir, quick)),
        "w6" => rt.block_on(writers::w6(dir, quick)),
        "w7" => rt.block_on(tick::run(dir, quick)),
        other => Err(format!("unknown workload {other:?}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args).and_then(|s| run(&s)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench: {message}");
            ExitCode::FAILURE
        }
    }
}
