//! `cargo xtask bench [--quick] [--runs N] [--only w1,w2,…] [--max-history N]`: issue 14's workloads W1–W6 and
//! the disk's floor, in one run and one folder, each workload a child
//! process of the bench binary (`crates/host/examples/bench/`), rounds
//! interleaved so that a change in machine load hits every figure alike.
//!
//! The folder is `AIRLOCK_BENCH_DIR`, default `/var/tmp`; tmpfs is refused
//! (fsync would cost nothing there). Prints a table and writes
//! `target/bench/summary.json`: per figure the median, min and max over the
//! repetitions, its ratio to the floor and issue 14's target. Nothing is
//! judged by time; the run fails only when a workload fails or a figure is
//! missing. `cargo xtask bench criterion [ARGS]` runs the criterion benches.

use std::path::{Path, PathBuf};

use crate::bench_child::{self, ChildRun};
use crate::bench_plan::{self, WORKLOADS, Workload};
use crate::bench_summary::{self, Samples};
use crate::util::{cargo, run_command, target_dir};

/// What the command line asked for.
struct Settings {
    quick: bool,
    runs: Option<usize>,
    dir: PathBuf,
    /// Workloads to run (`w2b` includes `w2b-input`); all when empty.
    only: Vec<String>,
    /// W3 measures only history sizes up to this (its set-up marks each
    /// reply delivered one call at a time, which a slow disk makes long).
    max_history: Option<usize>,
}

impl Settings {
    fn selects(&self, workload: &str) -> bool {
        let group = workload.split('-').next().unwrap_or(workload);
        self.only.is_empty() || self.only.iter().any(|w| w == group)
    }
}

fn parse(args: &[String]) -> Result<Settings, String> {
    let mut settings = Settings {
        quick: false,
        runs: None,
        dir: std::env::var_os("AIRLOCK_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/tmp")),
        only: Vec::new(),
        max_history: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => settings.quick = true,
            "--runs" => {
                let n = args.next().ok_or("--runs takes a number")?;
                let n = n
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--runs takes a positive number, got {n:?}"))?;
                settings.runs = Some(n);
            }
            "--only" => {
                let list = args.next().ok_or("--only takes a list like w1,w3")?;
                settings.only = list.split(',').map(str::to_owned).collect();
                if let Some(bad) = settings
                    .only
                    .iter()
                    .find(|w| !WORKLOADS.iter().any(|k| k.name == w.as_str()))
                {
                    return Err(format!("--only: no workload {bad:?}"));
                }
            }
            "--max-history" => {
                let n = args.next().ok_or("--max-history takes a number")?;
                let n = n
                    .parse()
                    .map_err(|_| format!("--max-history takes a whole number, got {n:?}"))?;
                settings.max_history = Some(n);
            }
            other => return Err(format!("bench: unknown argument {other:?}")),
        }
    }
    Ok(settings)
}

/// Entry point: `cargo xtask bench …`.
pub fn run(args: &[String]) -> Result<(), String> {
    if args.first().map(String::as_str) == Some("criterion") {
        return crate::bench_criterion::run(&args[1..]);
    }
    let settings = parse(args)?;
    if bench_child::is_memory_fs(&settings.dir)? {
        return Err(format!(
            "{} is on tmpfs, where fsync is free: set AIRLOCK_BENCH_DIR to a folder on disk",
            settings.dir.display()
        ));
    }
    run_command(cargo(&[
        "build",
        "--release",
        "--locked",
        "-p",
        "airlock-host",
        "--example",
        "bench",
    ]))?;
    let binary = target_dir().join("release").join("examples").join("bench");
    let load_before = load_average();
    let samples = measure(&binary, &settings)?;
    let figures: Vec<_> = bench_plan::figures(settings.quick, settings.max_history)
        .into_iter()
        .filter(|f| settings.selects(bench_plan::workload_of(&f.key)))
        .collect();
    let meta = [
        (
            "mode",
            if settings.quick { "quick" } else { "full" }.to_owned(),
        ),
        ("dir", settings.dir.display().to_string()),
        ("machine", machine()),
        ("load_before", load_before),
        ("load_after", load_average()),
    ];
    print!("{}", bench_summary::table(&figures, &samples));
    for (key, value) in &meta {
        println!("{key}: {value}");
    }
    let out_dir = target_dir().join("bench");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("creating {}: {e}", out_dir.display()))?;
    let path = out_dir.join("summary.json");
    std::fs::write(&path, bench_summary::json(&figures, &samples, &meta))
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    let missing: Vec<&str> = figures
        .iter()
        .filter(|f| samples.stat(&f.key).is_none())
        .map(|f| f.key.as_str())
        .collect();
    let unknown = samples.unknown(&figures);
    if !missing.is_empty() || !unknown.is_empty() {
        return Err(format!(
            "figures missing: {missing:?}; reported but not in the plan: {unknown:?}"
        ));
    }
    Ok(())
}

/// Runs every round of every workload and collects their figures.
fn measure(binary: &Path, settings: &Settings) -> Result<Samples, String> {
    let runs_of = |w: &Workload| match (settings.quick, settings.runs, w.runs) {
        (_, _, 1) => 1,
        (_, Some(n), _) => n,
        (true, None, _) => 2,
        (false, None, n) => n,
    };
    let selected: Vec<&Workload> = WORKLOADS
        .iter()
        .filter(|w| settings.selects(w.name))
        .collect();
    let rounds = selected.iter().map(|w| runs_of(w)).max().unwrap_or(1);
    let mut samples = Samples::default();
    for round in 0..rounds {
        let mut peak_with_write = None;
        for workload in selected.iter().filter(|w| round < runs_of(w)) {
            let mut args = if settings.quick {
                workload.quick_args
            } else {
                workload.args
            }
            .to_vec();
            let max_history = settings.max_history.map(|n| n.to_string());
            if let (Some(n), "w3") = (&max_history, workload.name) {
                args.extend(["--max-history", n.as_str()]);
            }
            eprintln!("bench: round {} of {rounds}: {}", round + 1, workload.name);
            let run =
                bench_child::run(binary, workload.name, &args, &settings.dir, settings.quick)?;
            for (key, value) in &run.figures {
                samples.add(key, *value);
            }
            match workload.name {
                "w2b" => peak_with_write = Some(record_peak(&mut samples, &args, &run)?),
                "w2b-input" => {
                    let input = run.peak_rss_bytes as f64 / MIB;
                    samples.add("w2b.input_only_peak_rss_mib", input);
                    if let Some(peak) = peak_with_write.take() {
                        samples.add("w2b.rss_above_input_mib", peak - input);
                    }
                }
                _ => {}
            }
        }
    }
    let sizes = bench_plan::w3_sizes(settings.quick, settings.max_history);
    let w3 = |n: &usize| samples.stat(&format!("w3.poll_us.n{n}"));
    if let (Some(empty), Some(largest)) = (sizes.first().and_then(w3), sizes.last().and_then(w3)) {
        samples.add("w3.largest_over_empty", largest.median / empty.median);
    }
    Ok(samples)
}

const MIB: f64 = 1024.0 * 1024.0;

/// Records W2b's peak and its ratio to the attachment; returns the peak in MiB.
fn record_peak(samples: &mut Samples, args: &[&str], run: &ChildRun) -> Result<f64, String> {
    let mib: f64 = match args {
        ["--mib", n] => n.parse().map_err(|_| format!("bad --mib {n:?}"))?,
        _ => return Err("w2b needs --mib".into()),
    };
    let peak = run.peak_rss_bytes as f64 / MIB;
    samples.add("w2b.peak_rss_mib", peak);
    samples.add("w2b.peak_rss_over_input", peak / mib);
    Ok(peak)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

/// CPU model and count, and the kernel.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(str::trim)
        .unwrap_or("unknown CPU");
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpus} x {model}, Linux {}", kernel.trim())
}
