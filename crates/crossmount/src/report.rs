//! What one run measured, its verdict, and the table printed for people.
use std::collections::BTreeMap;
use std::time::Duration;

use crate::protocol::Event;
use crate::run::{RunConfig, merge_retries};

/// Bound on guest→host visibility of a committed reply.
pub const REPLY_BOUND: Duration = Duration::from_secs(1);

/// Measurements of one run.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Mount label, e.g. `auto(1s)`.
    pub mount: String,
    /// Journal mode of `inbound.db`.
    pub journal: String,
    /// Access pattern name.
    pub pattern: String,
    /// Host→guest visibility bound of this configuration.
    pub bound: Duration,
    /// Messages whose host write returned Ok.
    pub sent: usize,
    /// Distinct messages the guest saw during the run.
    pub seen: usize,
    /// Messages the guest saw only after the run was over (counted lost).
    pub seen_late: usize,
    /// Messages returned again after being handled.
    pub dups: usize,
    /// Errors returned by the host API.
    pub host_errors: Vec<String>,
    /// Errors returned by the guest API (or a misbehaving guest).
    pub guest_errors: Vec<String>,
    /// Host commit → first guest sighting, per seen message, in ms.
    pub delays_ms: Vec<u64>,
    /// (message id, delay in ms) in the order the guest saw them.
    pub delays_by_id: Vec<(String, u64)>,
    /// Replies whose guest write returned Ok.
    pub replies_committed: usize,
    /// Guest commit → host sighting, per reply the host saw, in ms.
    pub reply_delays_ms: Vec<u64>,
    /// Replies absent from the host's file right after the guest's commit returned.
    pub not_visible_at_commit: usize,
    /// Replies the host never saw.
    pub replies_unseen: usize,
    /// `messages_in` rows in the host's file at the end.
    pub host_rows: usize,
    /// Failed integrity checks (or unreadable files) at the end.
    pub integrity_errors: Vec<String>,
    /// Replies the guest writes on its own (guest→host-only runs).
    pub self_replies: Option<usize>,
    /// Raw SQLite conditions the guest library retried, by code.
    pub retries: BTreeMap<String, u64>,
    /// What the host side noticed ([`crate::pattern::HostSide::note`]).
    pub host_note: Option<String>,
}

fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(idx).copied()
}

impl RunReport {
    /// An empty report for `cfg`.
    pub fn new(cfg: &RunConfig) -> Self {
        RunReport {
            mount: cfg.cache.label(),
            journal: cfg.pattern.journal().to_owned(),
            pattern: cfg.pattern.name().to_owned(),
            bound: cfg.bound(),
            self_replies: (cfg.direction == crate::run::Direction::GuestToHost)
                .then_some(cfg.messages),
            ..RunReport::default()
        }
    }

    /// Records a guest event that is not about a specific message.
    pub fn absorb(&mut self, e: Event) {
        match e {
            Event::Dup(_, _) => self.dups += 1,
            Event::Error(e) => self.guest_errors.push(e),
            Event::Retry(code, n) => merge_retries(&mut self.retries, code, n),
            _ => {}
        }
    }

    /// Replies the guest should commit: one per message seen, or its own count.
    pub fn expected_replies(&self) -> usize {
        self.self_replies.unwrap_or(self.seen)
    }

    /// Messages sent but not seen in time.
    pub fn lost(&self) -> usize {
        self.sent.saturating_sub(self.seen)
    }

    /// All errors (host, guest, integrity).
    pub fn errors(&self) -> usize {
        self.host_errors.len() + self.guest_errors.len() + self.integrity_errors.len()
    }

    /// (p50, p99, max) of the host→guest delays in ms.
    pub fn delay_stats(&self) -> (Option<u64>, Option<u64>, Option<u64>) {
        let mut d = self.delays_ms.clone();
        d.sort_unstable();
        (percentile(&d, 0.5), percentile(&d, 0.99), d.last().copied())
    }

    /// Largest guest→host reply delay in ms.
    pub fn reply_max_ms(&self) -> Option<u64> {
        self.reply_delays_ms.iter().copied().max()
    }

    /// Why this run violates an invariant; empty when it held.
    ///
    /// `latency` adds the timing bounds (inbound delay, reply delay); tests
    /// leave them out and judge only by ordering and counts.
    pub fn failures(&self, latency: bool) -> Vec<String> {
        let mut f = Vec::new();
        if self.sent == 0 && self.self_replies.is_none() {
            f.push("no message was written".to_owned());
        }
        if self.lost() > 0 {
            f.push(format!(
                "{} of {} messages never seen by the guest",
                self.lost(),
                self.sent
            ));
        }
        if self.dups > 0 {
            f.push(format!("{} duplicated messages", self.dups));
        }
        if self.host_rows < self.sent {
            f.push(format!(
                "host's inbound.db holds {} rows, {} were committed",
                self.host_rows, self.sent
            ));
        }
        if self.not_visible_at_commit > 0 {
            f.push(format!(
                "{} replies not on the host's disk when the guest's commit returned",
                self.not_visible_at_commit
            ));
        }
        if self.replies_unseen > 0 || self.replies_committed < self.expected_replies() {
            f.push(format!(
                "replies: {} committed of {} expected, {} never visible to the host",
                self.replies_committed,
                self.expected_replies(),
                self.replies_unseen
            ));
        }
        for e in self
            .host_errors
            .iter()
            .chain(&self.guest_errors)
            .chain(&self.integrity_errors)
            .take(3)
        {
            f.push(format!("error: {e}"));
        }
        if self.errors() > 3 {
            f.push(format!("… {} errors in all", self.errors()));
        }
        if latency {
            if let (_, _, Some(max)) = self.delay_stats()
                && max > self.bound.as_millis() as u64
            {
                f.push(format!(
                    "max delay {max} ms over the bound {} ms",
                    self.bound.as_millis()
                ));
            }
            if let Some(max) = self.reply_max_ms()
                && max > REPLY_BOUND.as_millis() as u64
            {
                f.push(format!(
                    "reply delay {max} ms over {} ms",
                    REPLY_BOUND.as_millis()
                ));
            }
        }
        f
    }

    /// The header of [`RunReport::row`].
    pub fn header() -> String {
        format!(
            "{:<14} {:<8} {:<24} {:>5} {:>5} {:>5} {:>4} {:>4} {:>6} {:>6} {:>6} {:>7} {:>8} {:>6}  {}",
            "mount",
            "journal",
            "pattern",
            "sent",
            "seen",
            "lost",
            "dup",
            "err",
            "p50ms",
            "p99ms",
            "maxms",
            "bound",
            "replymax",
            "late",
            "retries"
        )
    }

    /// One table row.
    pub fn row(&self) -> String {
        let opt = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
        let (p50, p99, max) = self.delay_stats();
        let retries = if self.retries.is_empty() {
            "-".to_owned()
        } else {
            self.retries
                .iter()
                .map(|(c, n)| format!("{c}x{n}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "{:<14} {:<8} {:<24} {:>5} {:>5} {:>5} {:>4} {:>4} {:>6} {:>6} {:>6} {:>7} {:>8} {:>6}  {}",
            self.mount,
            self.journal,
            self.pattern,
            self.sent,
            self.seen,
            self.lost(),
            self.dups,
            self.errors(),
            opt(p50),
            opt(p99),
            opt(max),
            self.bound.as_millis(),
            opt(self.reply_max_ms()),
            self.not_visible_at_commit,
            retries
        )
    }
}
