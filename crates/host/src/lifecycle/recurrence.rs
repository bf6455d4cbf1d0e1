//! When a recurring message fires next: its cron expression read in a
//! configured time zone (IANA name, default UTC), so `0 9 * * *` in
//! `Europe/Berlin` is 09:00 in Berlin in winter and in summer.
//!
//! The next occurrence's id is derived from the series and the seq of the
//! occurrence that completed, never from the clock: a sweep that inserts it,
//! is killed, and runs again derives the same id, and the mailbox's retry
//! rule (same id, same content: a no-op) keeps exactly one copy.

use std::str::FromStr;

use airlock_core::mailbox::InboundMessage;
use airlock_core::{MessageId, Timestamp};
use chrono_tz::Tz;
use croner::Cron;

/// Longest cron expression accepted (it may come from an agent).
const MAX_EXPRESSION_BYTES: usize = 256;

/// A recurrence that cannot go on; reported once, then the series stops.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecurrenceError {
    /// The expression is not a cron expression.
    #[error("invalid cron expression {expression:?}: {reason}")]
    InvalidExpression {
        /// The expression (escaped by `Debug`, shortened).
        expression: String,
        /// What the parser said.
        reason: String,
    },
    /// The time zone is not an IANA name the database knows.
    #[error("unknown time zone {0:?}: expected an IANA name such as Europe/Berlin or UTC")]
    UnknownZone(String),
    /// The expression never fires again (e.g. 30 February).
    #[error("cron expression {0:?} has no next fire time")]
    NoNextFire(String),
    /// No id for the next occurrence could be made from the series id.
    #[error("no id for the next occurrence: {0}")]
    NoId(String),
}

fn shortened(text: &str) -> String {
    text.chars().take(64).collect()
}

/// Parses an IANA time-zone name.
pub fn parse_zone(name: &str) -> Result<Tz, RecurrenceError> {
    Tz::from_str(name.trim()).map_err(|_| RecurrenceError::UnknownZone(shortened(name)))
}

/// A cron expression in a time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    expression: String,
    cron: Cron,
    zone: Tz,
}

impl Schedule {
    /// Parses `expression` (five fields, or six with seconds) to be read in `zone`.
    pub fn parse(expression: &str, zone: Tz) -> Result<Self, RecurrenceError> {
        let invalid = |reason: String| RecurrenceError::InvalidExpression {
            expression: shortened(expression),
            reason,
        };
        if expression.len() > MAX_EXPRESSION_BYTES {
            return Err(invalid(format!("longer than {MAX_EXPRESSION_BYTES} bytes")));
        }
        let cron = Cron::from_str(expression.trim()).map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            expression: expression.trim().to_owned(),
            cron,
            zone,
        })
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: Timestamp) -> Result<Timestamp, RecurrenceError> {
        let local = after.as_datetime().with_timezone(&self.zone);
        let next = self
            .cron
            .find_next_occurrence(&local, false)
            .map_err(|_| RecurrenceError::NoNextFire(shortened(&self.expression)))?;
        Timestamp::from_millis(next.timestamp_millis())
            .ok_or_else(|| RecurrenceError::NoNextFire(shortened(&self.expression)))
    }
}

/// The occurrence to insert after a recurring message completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextOccurrence {
    /// Its id, derived from the series and the completed occurrence's seq.
    pub id: MessageId,
    /// The series it continues (the completed message's `series_id`).
    pub series_id: String,
    /// When it fires.
    pub process_after: Timestamp,
    /// The expression, carried forward.
    pub recurrence: String,
}

/// What to do once a message completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recur {
    /// It has no recurrence.
    Once,
    /// Insert this occurrence, then clear the original's recurrence.
    Next(NextOccurrence),
    /// Report this once and clear the original's recurrence: the series stops.
    Stop(RecurrenceError),
}

/// The next occurrence of `done` (a completed message) after `now`, its
/// expression read in `zone`.
///
/// Fire times missed while the host was down are not replayed: the next
/// one is the first after both the completed occurrence's own time and now.
pub fn next_occurrence(done: &InboundMessage, zone: Tz, now: Timestamp) -> Recur {
    let Some(expression) = done.recurrence.as_deref().filter(|r| !r.trim().is_empty()) else {
        return Recur::Once;
    };
    let schedule = match Schedule::parse(expression, zone) {
        Ok(s) => s,
        Err(e) => return Recur::Stop(e),
    };
    let scheduled = done
        .process_after
        .as_deref()
        .or(Some(done.timestamp.as_str()))
        .and_then(|t| Timestamp::parse(t).ok())
        .unwrap_or(now);
    let process_after = match schedule.next_after(scheduled.max(now)) {
        Ok(t) => t,
        Err(e) => return Recur::Stop(e),
    };
    let series_id = done.series_id.clone().unwrap_or_else(|| done.id.clone());
    let id = match occurrence_id(&series_id, done.seq) {
        Ok(id) => id,
        Err(e) => return Recur::Stop(RecurrenceError::NoId(e.to_string())),
    };
    Recur::Next(NextOccurrence {
        id,
        series_id,
        process_after,
        recurrence: schedule.expression,
    })
}

/// `<series>@<seq of the completed occurrence>`; a series id too long for
/// that is replaced by a hash of it, so the id stays one path component.
fn occurrence_id(series_id: &str, seq: i64) -> Result<MessageId, airlock_core::IdError> {
    let suffix = format!("@{seq}");
    if let Ok(id) = MessageId::new(format!("{series_id}{suffix}")) {
        return Ok(id);
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in series_id.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    MessageId::new(format!("series-{hash:016x}{suffix}"))
}
