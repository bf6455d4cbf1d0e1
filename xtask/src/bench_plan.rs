//! What `cargo xtask bench` runs and reports: the workloads (issue 14's
//! W1–W7 and the floor), the figures each yields, the floor each figure is
//! compared with, and issue 14's target for it.

/// One child run of the bench binary.
pub struct Workload {
    /// The bench binary's first argument.
    pub name: &'static str,
    /// Extra arguments of the full run and of `--quick`.
    pub args: &'static [&'static str],
    pub quick_args: &'static [&'static str],
    /// Child runs of a full run; workloads that repeat internally need one.
    pub runs: usize,
}

/// Every workload, in the order one round runs them.
pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "floor",
        args: &[],
        quick_args: &[],
        runs: 3,
    },
    Workload {
        name: "w1",
        args: &[],
        quick_args: &[],
        runs: 3,
    },
    Workload {
        name: "w2",
        args: &[],
        quick_args: &[],
        runs: 3,
    },
    Workload {
        name: "w2b",
        args: &["--mib", "64"],
        quick_args: &["--mib", "8"],
        runs: 3,
    },
    Workload {
        name: "w2b-input",
        args: &["--mib", "64"],
        quick_args: &["--mib", "8"],
        runs: 3,
    },
    Workload {
        name: "w3",
        args: &[],
        quick_args: &[],
        runs: 1,
    },
    Workload {
        name: "w4",
        args: &[],
        quick_args: &[],
        runs: 1,
    },
    Workload {
        name: "w5",
        args: &[],
        quick_args: &[],
        runs: 3,
    },
    Workload {
        name: "w6",
        args: &[],
        quick_args: &[],
        runs: 3,
    },
    Workload {
        name: "w7",
        args: &[],
        quick_args: &[],
        runs: 1,
    },
];

/// The workload that reports a figure (`w4b` comes from `w4`'s run).
pub fn workload_of(key: &str) -> &str {
    match key.split('.').next().unwrap_or_default() {
        "w4b" => "w4",
        prefix => prefix,
    }
}

/// The bare SQLite write every mailbox write contains.
pub const SQLITE_FLOOR: &str = "floor.sqlite_open_insert_close_p50_us";
/// Writing and syncing a new 1 MiB file.
pub const FILE_FLOOR: &str = "floor.write_1mib_fsync_p50_us";

/// How a figure relates to its floor.
#[derive(Clone, Copy)]
pub enum Unit {
    /// Microseconds; ratio = figure ÷ floor.
    Micros,
    /// Events per second; ratio = figure ÷ (1 s ÷ floor).
    PerSecond,
    /// Mebibytes per second; ratio = figure ÷ (1 MiB ÷ floor).
    MibPerSecond,
    /// A plain number or MiB of memory; no floor.
    Plain,
}

/// Issue 14's target for a figure (informational: nothing fails on it).
#[derive(Clone, Copy)]
pub enum Target {
    /// At most this value.
    AtMost(f64),
    /// At least this value.
    AtLeast(f64),
    /// At most this many times the floor's figure.
    AtMostFloor(f64),
    /// No target.
    Free,
}

/// One line of the table and of `summary.json`.
pub struct Figure {
    /// The key in `summary.json`.
    pub key: String,
    /// Its unit.
    pub unit: Unit,
    /// The floor figure it is compared with, if any.
    pub floor: Option<&'static str>,
    /// Issue 14's target.
    pub target: Target,
}

/// The reference's figures (issue 14's table) the targets derive from.
const REF_W1_MSGS: f64 = 730.0;
const REF_W6_ONE_MSGS: f64 = 661.0;
const REF_W6_MANY_MSGS: f64 = 688.0;
const REF_W2_MIB_S: f64 = 112.6;

/// History sizes W3 measures (must match the bench binary), up to `max`.
pub fn w3_sizes(quick: bool, max: Option<usize>) -> Vec<usize> {
    let all: &[usize] = if quick {
        &[0, 100]
    } else {
        &[0, 1_000, 10_000, 100_000]
    };
    all.iter()
        .copied()
        .filter(|n| max.is_none_or(|m| *n <= m))
        .collect()
}

/// Every figure a run reports, in table order.
pub fn figures(quick: bool, max_history: Option<usize>) -> Vec<Figure> {
    use Target::{AtLeast, AtMost, AtMostFloor, Free};
    use Unit::{MibPerSecond, Micros, PerSecond, Plain};
    let f = |key: &str, unit, floor, target| Figure {
        key: key.to_owned(),
        unit,
        floor,
        target,
    };
    let sq = Some(SQLITE_FLOOR);
    let file = Some(FILE_FLOOR);
    let mut out = vec![
        f("floor.pwrite_4k_fsync_p50_us", Micros, None, Free),
        f(FILE_FLOOR, Micros, None, Free),
        f(SQLITE_FLOOR, Micros, None, Free),
        f("w1.msgs_per_s", PerSecond, sq, AtLeast(1.2 * REF_W1_MSGS)),
        f("w1.p50_us", Micros, sq, AtMostFloor(1.15)),
        f("w1.p99_us", Micros, sq, Free),
        f(
            "w2.mib_per_s",
            MibPerSecond,
            file,
            AtLeast(2.0 * REF_W2_MIB_S),
        ),
        f("w2.p50_us", Micros, file, Free),
        f("w2.extract_p50_us", Micros, file, AtMostFloor(2.0)),
        f("w2b.peak_rss_mib", Plain, None, Free),
        f("w2b.input_only_peak_rss_mib", Plain, None, Free),
        f("w2b.rss_above_input_mib", Plain, None, Free),
        f("w2b.peak_rss_over_input", Plain, None, AtMost(1.5)),
    ];
    for n in w3_sizes(quick, max_history) {
        out.push(f(&format!("w3.poll_us.n{n}"), Micros, sq, AtMost(100.0)));
    }
    // The mailbox's full read beside the engine's pass: what the cursor
    // and the change stamps save.
    for n in w3_sizes(quick, max_history) {
        out.push(f(&format!("w3.scan_us.n{n}"), Micros, sq, Free));
    }
    out.push(f("w3.largest_over_empty", Plain, None, AtMost(1.5)));
    for suffix in ["", ".shared", ".agent_shared"] {
        let key = format!("w4.resolve_existing_p50_us{suffix}");
        out.push(f(&key, Micros, sq, AtMost(30.0)));
    }
    out.extend([
        f("w4b.resolve_new_p50_us", Micros, sq, AtMost(3_000.0)),
        f("w5.visible_p50_us", Micros, sq, AtMost(3_900.0)),
        f("w5.visible_p99_us", Micros, sq, AtMost(9_500.0)),
        f("w5.idle_poll_us", Micros, sq, AtMost(100.0)),
        f(
            "w6.one_session_16_writers.msgs_per_s",
            PerSecond,
            sq,
            AtLeast(5.0 * REF_W6_ONE_MSGS),
        ),
        f("w6.one_session_16_writers.p50_us", Micros, sq, Free),
        f(
            "w6.one_session_16_writers.p99_us",
            Micros,
            sq,
            AtMost(10_000.0),
        ),
        f(
            "w6.sessions_100.msgs_per_s",
            PerSecond,
            sq,
            AtLeast(5.0 * REF_W6_MANY_MSGS),
        ),
        f("w6.sessions_100.p50_us", Micros, sq, Free),
        f("w6.sessions_100.p99_us", Micros, sq, Free),
    ]);
    let n = if quick { 100 } else { 10_000 };
    out.extend([
        f(&format!("w7.delivery_pass_ms.n{n}"), Plain, None, Free),
        f(&format!("w7.sweep_tick_ms.n{n}"), Plain, None, Free),
        f(&format!("w7.idle_tick_ms.n{n}"), Plain, None, AtMost(100.0)),
    ]);
    out
}
