//! The line protocol a guest process prints on stdout for the harness.
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (a VM guest's clock is corrected by [`crate::vm`]).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// One thing the guest reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// First poll done: the guest has read (and cached) `inbound.db`.
    Ready(u64),
    /// A message was returned by a poll for the first time.
    Seen(String, u64),
    /// A message was returned again after it was handled.
    Dup(String, u64),
    /// The reply to a message was committed (the write call returned).
    Replied(String, u64),
    /// An error reached the caller of the guest API.
    Error(String),
    /// A raw SQLite condition was retried `n` times inside the library.
    Retry(String, u64),
    /// The mount self-test result: `None` when it passed.
    MountCheck(Option<String>),
    /// The guest is exiting.
    Done,
}

impl Event {
    /// The line printed for this event.
    pub fn line(&self) -> String {
        match self {
            Event::Ready(t) => format!("ready {t}"),
            Event::Seen(id, t) => format!("seen {id} {t}"),
            Event::Dup(id, t) => format!("dup {id} {t}"),
            Event::Replied(id, t) => format!("replied {id} {t}"),
            Event::Error(e) => format!("error {}", e.replace('\n', " ")),
            Event::Retry(code, n) => format!("retry {code} {n}"),
            Event::MountCheck(None) => "mountcheck ok".to_owned(),
            Event::MountCheck(Some(e)) => format!("mountcheck {}", e.replace('\n', " ")),
            Event::Done => "done".to_owned(),
        }
    }

    /// The same event with its timestamp moved by `delta_ms` (a guest clock read on the host's).
    pub fn shifted(self, delta_ms: i64) -> Event {
        let at = |t: u64| t.saturating_add_signed(delta_ms);
        match self {
            Event::Ready(t) => Event::Ready(at(t)),
            Event::Seen(id, t) => Event::Seen(id, at(t)),
            Event::Dup(id, t) => Event::Dup(id, at(t)),
            Event::Replied(id, t) => Event::Replied(id, at(t)),
            other => other,
        }
    }

    /// Parses [`Event::line`]; `None` for anything else.
    pub fn parse(line: &str) -> Option<Event> {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let two = || {
            let (a, b) = rest.split_once(' ')?;
            Some((a.to_owned(), b.parse::<u64>().ok()?))
        };
        Some(match word {
            "ready" => Event::Ready(rest.parse().ok()?),
            "seen" => two().map(|(a, b)| Event::Seen(a, b))?,
            "dup" => two().map(|(a, b)| Event::Dup(a, b))?,
            "replied" => two().map(|(a, b)| Event::Replied(a, b))?,
            "retry" => two().map(|(a, b)| Event::Retry(a, b))?,
            "error" => Event::Error(rest.to_owned()),
            "mountcheck" if rest == "ok" => Event::MountCheck(None),
            "mountcheck" => Event::MountCheck(Some(rest.to_owned())),
            "done" => Event::Done,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        for e in [
            Event::Ready(5),
            Event::Seen("m00001".into(), 7),
            Event::Dup("m00001".into(), 8),
            Event::Replied("m00002".into(), 9),
            Event::Error("boom: bad".into()),
            Event::Retry("776".into(), 3),
            Event::MountCheck(None),
            Event::MountCheck(Some("stale mount".into())),
            Event::Done,
        ] {
            assert_eq!(Event::parse(&e.line()), Some(e));
        }
        assert_eq!(Event::parse("seen x notanumber"), None);
        assert_eq!(
            Event::Seen("a".into(), 1000).shifted(-250),
            Event::Seen("a".into(), 750)
        );
        assert_eq!(Event::Done.shifted(5), Event::Done);
        assert_eq!(Event::parse("whatever"), None);
    }
}
