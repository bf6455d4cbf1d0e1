//! History checkers for fault campaigns, in the style of Jepsen's
//! total-queue checker: from what a run attempted, what the API
//! acknowledged and what a final read found, they compute what was lost,
//! duplicated or appeared from nowhere.
//!
//! Messages are named by a *key* the harness chooses (a token it also puts
//! in the content), so that two different messages sharing a platform id
//! stay two keys.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What a writer attempted and what the API acknowledged.
#[derive(Debug, Default, Clone)]
pub struct WriteHistory {
    attempted: BTreeSet<String>,
    acked: BTreeSet<String>,
}

impl WriteHistory {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the writer tried to store `key` (before the call).
    pub fn attempt(&mut self, key: impl Into<String>) {
        self.attempted.insert(key.into());
    }

    /// Records that the API acknowledged `key` (the call returned success).
    ///
    /// An acknowledgement of a key never attempted is kept: it shows up as
    /// `unexpected` if the final read finds it, so a confused harness is seen.
    pub fn ack(&mut self, key: impl Into<String>) {
        self.acked.insert(key.into());
    }

    /// Keys acknowledged so far.
    pub fn acked(&self) -> &BTreeSet<String> {
        &self.acked
    }

    /// Checks the history against every key a final read found, in the
    /// order found (a key listed twice is a duplicate).
    pub fn check<I, S>(&self, seen: I) -> WriteReport
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let counts = count(seen);
        let seen: BTreeSet<&String> = counts.keys().collect();
        let lost = self
            .acked
            .iter()
            .filter(|k| !seen.contains(k))
            .cloned()
            .collect();
        let unexpected = counts
            .keys()
            .filter(|k| !self.attempted.contains(*k))
            .cloned()
            .collect();
        let duplicated = counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, n)| (k.clone(), *n))
            .collect();
        let (unknown_present, unknown_absent) = self
            .attempted
            .iter()
            .filter(|k| !self.acked.contains(*k))
            .partition::<Vec<_>, _>(|k| seen.contains(k));
        WriteReport {
            attempted: self.attempted.len(),
            acked: self.acked.len(),
            seen: counts.len(),
            lost,
            unexpected,
            duplicated,
            unknown_present: unknown_present.len(),
            unknown_absent: unknown_absent.len(),
        }
    }
}

fn count<I, S>(items: I) -> BTreeMap<String, usize>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut counts = BTreeMap::new();
    for item in items {
        *counts.entry(item.into()).or_insert(0) += 1;
    }
    counts
}

/// The verdict on a [`WriteHistory`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteReport {
    /// Distinct keys attempted.
    pub attempted: usize,
    /// Distinct keys acknowledged.
    pub acked: usize,
    /// Distinct keys the final read found.
    pub seen: usize,
    /// Acknowledged but not found: `acked − seen`.
    pub lost: Vec<String>,
    /// Found but never attempted: `seen − attempted`.
    pub unexpected: Vec<String>,
    /// Keys found more than once, with how many times.
    pub duplicated: Vec<(String, usize)>,
    /// Attempted, not acknowledged, found (the write landed before the fault).
    pub unknown_present: usize,
    /// Attempted, not acknowledged, not found.
    pub unknown_absent: usize,
}

impl WriteReport {
    /// No loss, no duplicate, nothing unexpected (unknown outcomes are allowed).
    pub fn is_ok(&self) -> bool {
        self.lost.is_empty() && self.unexpected.is_empty() && self.duplicated.is_empty()
    }
}

impl fmt::Display for WriteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "attempted {} acked {} seen {} lost {} duplicated {} unexpected {} unknown {}+{} (present+absent)",
            self.attempted,
            self.acked,
            self.seen,
            self.lost.len(),
            self.duplicated.len(),
            self.unexpected.len(),
            self.unknown_present,
            self.unknown_absent
        )?;
        for (what, keys) in [("lost", &self.lost), ("unexpected", &self.unexpected)] {
            if let Some(first) = keys.first() {
                write!(f, "; first {what}: {first}")?;
            }
        }
        if let Some((key, n)) = self.duplicated.first() {
            write!(f, "; first duplicate: {key} x{n}")?;
        }
        Ok(())
    }
}

/// One run of a delivery loop: what its adapter delivered, in order, and
/// whether it ended in a crash with messages in flight.
#[derive(Debug, Default, Clone)]
struct Run {
    delivered: Vec<String>,
    in_flight_at_crash: BTreeSet<String>,
}

/// What the outbound history held and what the adapter delivered over a
/// sequence of runs, each ended by a crash or by finishing.
#[derive(Debug, Default, Clone)]
pub struct DeliveryHistory {
    outbound: BTreeSet<String>,
    runs: Vec<Run>,
}

impl DeliveryHistory {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a message the outbound history holds (one that must be delivered).
    pub fn outbound(&mut self, key: impl Into<String>) {
        self.outbound.insert(key.into());
    }

    /// Records one run: what its adapter delivered, in order, and the keys
    /// that were in flight when it crashed (empty for a run that finished).
    ///
    /// A message is in flight from the moment the loop hands it to the
    /// adapter until its delivery is durably recorded, so the last message a
    /// killed sequential loop delivered is in flight.
    pub fn run<D, F>(&mut self, delivered: D, in_flight_at_crash: F)
    where
        D: IntoIterator,
        D::Item: Into<String>,
        F: IntoIterator,
        F::Item: Into<String>,
    {
        self.runs.push(Run {
            delivered: delivered.into_iter().map(Into::into).collect(),
            in_flight_at_crash: in_flight_at_crash.into_iter().map(Into::into).collect(),
        });
    }

    /// Each outbound message delivered at least once; more than once only
    /// if it was in flight at a crash, and then at most once more per crash.
    pub fn check(&self) -> DeliveryReport {
        let counts = count(self.runs.iter().flat_map(|r| r.delivered.iter().cloned()));
        let lost = self
            .outbound
            .iter()
            .filter(|k| !counts.contains_key(*k))
            .cloned()
            .collect();
        let unexpected = counts
            .keys()
            .filter(|k| !self.outbound.contains(*k))
            .cloned()
            .collect();
        let mut allowed_duplicates = 0;
        let mut excess_duplicates = Vec::new();
        for (key, n) in &counts {
            let crashes = self
                .runs
                .iter()
                .filter(|r| r.in_flight_at_crash.contains(key))
                .count();
            let extra = n - 1;
            if extra > crashes {
                excess_duplicates.push((key.clone(), *n));
            }
            allowed_duplicates += extra.min(crashes);
        }
        DeliveryReport {
            outbound: self.outbound.len(),
            runs: self.runs.len(),
            crashes: self
                .runs
                .iter()
                .filter(|r| !r.in_flight_at_crash.is_empty())
                .count(),
            delivered: counts.values().sum(),
            lost,
            unexpected,
            allowed_duplicates,
            excess_duplicates,
        }
    }
}

/// The verdict on a [`DeliveryHistory`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Distinct messages that had to be delivered.
    pub outbound: usize,
    /// Runs of the loop.
    pub runs: usize,
    /// Runs that crashed with something in flight.
    pub crashes: usize,
    /// Deliveries the adapter made, counting repeats.
    pub delivered: usize,
    /// Outbound messages never delivered.
    pub lost: Vec<String>,
    /// Delivered messages the outbound history never held.
    pub unexpected: Vec<String>,
    /// Repeats explained by a crash while the message was in flight.
    pub allowed_duplicates: usize,
    /// Messages delivered more often than crashes in flight explain.
    pub excess_duplicates: Vec<(String, usize)>,
}

impl DeliveryReport {
    /// Nothing lost, nothing unexpected, no unexplained duplicate.
    pub fn is_ok(&self) -> bool {
        self.lost.is_empty() && self.unexpected.is_empty() && self.excess_duplicates.is_empty()
    }
}

impl fmt::Display for DeliveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "outbound {} runs {} crashes {} delivered {} lost {} duplicated {} (in flight at a crash: {}) unexpected {}",
            self.outbound,
            self.runs,
            self.crashes,
            self.delivered,
            self.lost.len(),
            self.excess_duplicates.len(),
            self.allowed_duplicates,
            self.unexpected.len()
        )?;
        if let Some(first) = self.lost.first() {
            write!(f, "; first lost: {first}")?;
        }
        if let Some((key, n)) = self.excess_duplicates.first() {
            write!(f, "; first duplicate: {key} x{n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(attempted: &[&str], acked: &[&str]) -> WriteHistory {
        let mut h = WriteHistory::new();
        attempted.iter().for_each(|k| h.attempt(*k));
        acked.iter().for_each(|k| h.ack(*k));
        h
    }

    #[test]
    fn a_clean_history_passes_and_counts_unknown_outcomes() {
        let h = history(&["a", "b", "c", "d"], &["a", "b"]);
        let report = h.check(["a", "b", "c"]);
        assert!(report.is_ok(), "{report}");
        assert_eq!(report.unknown_present, 1);
        assert_eq!(report.unknown_absent, 1);
        assert_eq!((report.attempted, report.acked, report.seen), (4, 2, 3));
    }

    #[test]
    fn an_acknowledged_message_missing_is_lost() {
        let report = history(&["a", "b"], &["a", "b"]).check(["a"]);
        assert!(!report.is_ok());
        assert_eq!(report.lost, vec!["b".to_owned()]);
        assert!(report.to_string().contains("lost 1"), "{report}");
    }

    #[test]
    fn a_message_found_twice_is_duplicated() {
        let report = history(&["a"], &["a"]).check(["a", "a"]);
        assert!(!report.is_ok());
        assert_eq!(report.duplicated, vec![("a".to_owned(), 2)]);
    }

    #[test]
    fn a_message_never_attempted_is_unexpected() {
        let report = history(&["a"], &["a"]).check(["a", "z"]);
        assert!(!report.is_ok());
        assert_eq!(report.unexpected, vec!["z".to_owned()]);
    }

    #[test]
    fn deliveries_without_crashes_must_be_exactly_once() {
        let mut h = DeliveryHistory::new();
        ["a", "b"].iter().for_each(|k| h.outbound(*k));
        h.run(["a", "b"], Vec::<String>::new());
        assert!(h.check().is_ok(), "{}", h.check());
        h.run(["b"], Vec::<String>::new());
        let report = h.check();
        assert!(!report.is_ok());
        assert_eq!(report.excess_duplicates, vec![("b".to_owned(), 2)]);
    }

    #[test]
    fn a_repeat_is_allowed_only_for_the_message_in_flight_at_a_crash() {
        let mut h = DeliveryHistory::new();
        ["a", "b", "c"].iter().for_each(|k| h.outbound(*k));
        h.run(["a", "b"], ["b"]);
        h.run(["b", "c"], Vec::<String>::new());
        let report = h.check();
        assert!(report.is_ok(), "{report}");
        assert_eq!((report.allowed_duplicates, report.crashes), (1, 1));

        // `a` was not in flight at the crash: its repeat is a duplicate.
        let mut h = DeliveryHistory::new();
        ["a", "b"].iter().for_each(|k| h.outbound(*k));
        h.run(["a", "b"], ["b"]);
        h.run(["a", "b"], Vec::<String>::new());
        assert_eq!(h.check().excess_duplicates, vec![("a".to_owned(), 2)]);

        // In flight at one crash allows one repeat, not two.
        let mut h = DeliveryHistory::new();
        h.outbound("a");
        h.run(["a"], ["a"]);
        h.run(["a"], Vec::<String>::new());
        h.run(["a"], Vec::<String>::new());
        assert_eq!(h.check().excess_duplicates, vec![("a".to_owned(), 3)]);
    }

    #[test]
    fn an_undelivered_or_invented_message_fails_the_delivery_check() {
        let mut h = DeliveryHistory::new();
        ["a", "b"].iter().for_each(|k| h.outbound(*k));
        h.run(["a", "x"], ["x"]);
        let report = h.check();
        assert!(!report.is_ok());
        assert_eq!(report.lost, vec!["b".to_owned()]);
        assert_eq!(report.unexpected, vec!["x".to_owned()]);
    }
}
