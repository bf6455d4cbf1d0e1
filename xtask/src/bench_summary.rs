//! Aggregates the figures of every child run (median, min and max over the
//! repetitions), derives the figures that combine runs, and writes the
//! table and `target/bench/summary.json`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::bench_plan::{Figure, Target, Unit};

/// Every value reported for each key.
#[derive(Default)]
pub struct Samples(BTreeMap<String, Vec<f64>>);

/// Median, min and max of one key's values.
#[derive(Clone, Copy)]
pub struct Stat {
    /// The median (the mean of the middle two for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// How many values.
    pub runs: usize,
}

impl Samples {
    /// Records one value of `key`.
    pub fn add(&mut self, key: &str, value: f64) {
        self.0.entry(key.to_owned()).or_default().push(value);
    }

    /// The statistics of `key`, if it was reported.
    pub fn stat(&self, key: &str) -> Option<Stat> {
        let mut values = self.0.get(key)?.clone();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Some(Stat {
            median,
            min: values[0],
            max: values[n - 1],
            runs: n,
        })
    }

    /// Keys reported that no [`Figure`] describes (a plan out of date).
    pub fn unknown(&self, figures: &[Figure]) -> Vec<String> {
        self.0
            .keys()
            .filter(|k| !figures.iter().any(|f| &f.key == *k))
            .cloned()
            .collect()
    }
}

/// The figure's value expressed against its floor (see [`Unit`]).
fn floor_ratio(figure: &Figure, value: f64, samples: &Samples) -> Option<f64> {
    let floor_us = samples.stat(figure.floor?)?.median;
    match figure.unit {
        Unit::Micros => Some(value / floor_us),
        Unit::PerSecond | Unit::MibPerSecond => Some(value * floor_us / 1e6),
        Unit::Plain => None,
    }
}

/// Whether the median meets the target, and the target as text.
fn verdict(figure: &Figure, value: f64, ratio: Option<f64>) -> Option<(bool, String)> {
    match figure.target {
        Target::AtMost(t) => Some((value <= t, format!("<= {}", number(t)))),
        Target::AtLeast(t) => Some((value >= t, format!(">= {}", number(t)))),
        Target::AtMostFloor(x) => ratio.map(|r| (r <= x, format!("<= {x}x floor"))),
        Target::Free => None,
    }
}

/// A number with a sensible amount of precision for a table.
fn number(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// The table printed at the end of a run; missing figures are listed.
pub fn table(figures: &[Figure], samples: &Samples) -> String {
    let mut out = format!(
        "{:<42} {:>10} {:>10} {:>10} {:>8} {:>16}\n",
        "figure", "median", "min", "max", "÷floor", "target"
    );
    for figure in figures {
        let Some(s) = samples.stat(&figure.key) else {
            let _ = writeln!(out, "{:<42} {:>10}", figure.key, "MISSING");
            continue;
        };
        let ratio = floor_ratio(figure, s.median, samples);
        let ratio_text = ratio.map(|r| format!("{r:.2}x")).unwrap_or_default();
        let target = verdict(figure, s.median, ratio)
            .map(|(met, t)| format!("{t}{}", if met { "" } else { " MISS" }))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<42} {:>10} {:>10} {:>10} {:>8} {:>16}",
            figure.key,
            number(s.median),
            number(s.min),
            number(s.max),
            ratio_text,
            target
        );
    }
    out
}

/// `summary.json`: the run's context, then one line per figure.
pub fn json(figures: &[Figure], samples: &Samples, meta: &[(&str, String)]) -> String {
    let mut out = String::from("{\n  \"meta\": {");
    for (i, (key, value)) in meta.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(out, "{sep}{}: {}", string(key), string(value));
    }
    out.push_str("},\n  \"figures\": {\n");
    let present: Vec<(&Figure, Stat)> = figures
        .iter()
        .filter_map(|f| Some((f, samples.stat(&f.key)?)))
        .collect();
    for (i, (figure, s)) in present.iter().enumerate() {
        let ratio = floor_ratio(figure, s.median, samples);
        let mut line = format!(
            "\"median\": {}, \"min\": {}, \"max\": {}, \"runs\": {}",
            s.median, s.min, s.max, s.runs
        );
        if let Some(r) = ratio {
            let _ = write!(line, ", \"floor_ratio\": {r}");
        }
        if let Some((met, target)) = verdict(figure, s.median, ratio) {
            let _ = write!(line, ", \"target\": {}, \"met\": {met}", string(&target));
        }
        let comma = if i + 1 < present.len() { "," } else { "" };
        let _ = writeln!(out, "    {}: {{{line}}}{comma}", string(&figure.key));
    }
    out.push_str("  }\n}\n");
    out
}

/// A JSON string literal.
fn string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let mut s = Samples::default();
        for v in [3.0, 1.0, 2.0] {
            s.add("a", v);
        }
        for v in [4.0, 1.0, 2.0, 3.0] {
            s.add("b", v);
        }
        let a = s.stat("a").unwrap();
        assert_eq!((a.median, a.min, a.max, a.runs), (2.0, 1.0, 3.0, 3));
        assert_eq!(s.stat("b").unwrap().median, 2.5);
        assert!(s.stat("c").is_none());
    }

    #[test]
    fn throughput_ratio_is_against_the_floors_rate() {
        let mut s = Samples::default();
        s.add("floor", 1000.0); // 1 ms: 1,000 per second
        let f = Figure {
            key: "x".into(),
            unit: Unit::PerSecond,
            floor: Some("floor"),
            target: Target::AtMostFloor(2.0),
        };
        assert_eq!(floor_ratio(&f, 500.0, &s), Some(0.5));
    }

    #[test]
    fn json_escapes_meta_strings() {
        assert_eq!(string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
