//! Recurring messages: cron read in the configured zone across DST, the
//! next occurrence in the same series with a clock-free id, and invalid
//! expressions that stop the series.

use airlock_core::Timestamp;
use airlock_core::mailbox::{InboundMessage, InboundStatus};
use airlock_host::lifecycle::{Recur, RecurrenceError, Schedule, next_occurrence, parse_zone};
use chrono::{Datelike, NaiveDate, Timelike};

fn ts(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn message(
    id: &str,
    seq: i64,
    series: Option<&str>,
    recurrence: Option<&str>,
    process_after: Option<&str>,
) -> InboundMessage {
    InboundMessage {
        id: id.into(),
        seq,
        kind: "chat".into(),
        timestamp: "2026-03-01 08:00:00".into(),
        status: InboundStatus::Completed,
        process_after: process_after.map(str::to_owned),
        recurrence: recurrence.map(str::to_owned),
        series_id: series.map(str::to_owned),
        tries: 0,
        trigger: true,
        platform_id: None,
        channel_type: None,
        thread_id: None,
        content: "{}".into(),
        source_session_id: None,
        on_wake: false,
    }
}

#[test]
fn nine_in_berlin_is_nine_in_berlin_all_year_across_both_dst_changes() {
    let berlin = parse_zone("Europe/Berlin").unwrap();
    let schedule = Schedule::parse("0 9 * * *", berlin).unwrap();
    let mut at = ts("2026-01-01 00:00:00");
    let mut day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let (mut winter, mut summer) = (0, 0);
    for _ in 0..366 {
        at = schedule.next_after(at).unwrap();
        let local = at.as_datetime().with_timezone(&berlin);
        assert_eq!(
            (local.hour(), local.minute(), local.second()),
            (9, 0, 0),
            "{at}"
        );
        assert_eq!(local.date_naive(), day, "one fire per local day");
        match at.as_datetime().hour() {
            8 => winter += 1,
            7 => summer += 1,
            h => panic!("09:00 Berlin at {h}:00 UTC"),
        }
        day = day.succ_opt().unwrap();
    }
    assert!(
        winter > 100 && summer > 200,
        "winter {winter}, summer {summer}"
    );
    // The days of the changes themselves (29 March and 25 October 2026).
    let spring = schedule.next_after(ts("2026-03-29 00:00:00")).unwrap();
    assert_eq!(spring, ts("2026-03-29 07:00:00"));
    let autumn = schedule.next_after(ts("2026-10-25 00:00:00")).unwrap();
    assert_eq!(autumn, ts("2026-10-25 08:00:00"));
    assert_eq!(autumn.as_datetime().with_timezone(&berlin).day(), 25);
}

#[test]
fn the_default_zone_is_utc() {
    let utc = parse_zone("UTC").unwrap();
    let next = Schedule::parse("0 9 * * *", utc)
        .unwrap()
        .next_after(ts("2026-07-01 10:00:00"))
        .unwrap();
    assert_eq!(next, ts("2026-07-02 09:00:00"));
}

#[test]
fn the_next_occurrence_continues_the_series_with_an_id_free_of_the_clock() {
    let berlin = parse_zone("Europe/Berlin").unwrap();
    let done = message(
        "m1@4",
        6,
        Some("m1"),
        Some("0 9 * * *"),
        Some("2026-06-01 07:00:00"),
    );
    let first = next_occurrence(&done, berlin, ts("2026-06-01 07:00:05"));
    // The sweep killed and run again an hour later derives the same occurrence.
    let again = next_occurrence(&done, berlin, ts("2026-06-01 08:00:00"));
    let Recur::Next(next) = first.clone() else {
        panic!("{first:?}")
    };
    assert_eq!(first, again);
    assert_eq!(next.id.as_str(), "m1@6");
    assert_eq!(next.series_id, "m1");
    assert_eq!(next.recurrence, "0 9 * * *");
    assert_eq!(next.process_after, ts("2026-06-02 07:00:00"));
}

#[test]
fn a_message_without_series_starts_one_and_missed_fires_are_not_replayed() {
    let utc = parse_zone("UTC").unwrap();
    let done = message("m1", 2, None, Some("0 9 * * *"), None);
    // Completed ten days after it was written: the next fire is after now.
    let Recur::Next(next) = next_occurrence(&done, utc, ts("2026-03-11 12:00:00")) else {
        panic!()
    };
    assert_eq!(next.series_id, "m1");
    assert_eq!(next.process_after, ts("2026-03-12 09:00:00"));
}

#[test]
fn no_recurrence_means_once() {
    let utc = parse_zone("UTC").unwrap();
    for r in [None, Some(""), Some("  ")] {
        assert_eq!(
            next_occurrence(
                &message("m", 2, None, r, None),
                utc,
                ts("2026-03-01 00:00:00")
            ),
            Recur::Once
        );
    }
}

#[test]
fn invalid_expressions_and_zones_stop_the_series_with_a_clear_error() {
    let utc = parse_zone("UTC").unwrap();
    for bad in [
        "every day at nine",
        "61 * * * *",
        "* * * * * * * *",
        &"1 ".repeat(200),
    ] {
        let got = next_occurrence(
            &message("m", 2, None, Some(bad), None),
            utc,
            ts("2026-03-01 00:00:00"),
        );
        assert!(
            matches!(got, Recur::Stop(RecurrenceError::InvalidExpression { .. })),
            "{bad:?}: {got:?}"
        );
    }
    let never = next_occurrence(
        &message("m", 2, None, Some("0 0 30 2 *"), None),
        utc,
        ts("2026-03-01 00:00:00"),
    );
    assert!(matches!(never, Recur::Stop(_)), "{never:?}");
    let err = parse_zone("Mars/Olympus").unwrap_err();
    assert_eq!(err, RecurrenceError::UnknownZone("Mars/Olympus".into()));
    assert!(err.to_string().contains("IANA"));
}

#[test]
fn a_series_id_too_long_for_the_suffix_still_gives_a_valid_id() {
    let utc = parse_zone("UTC").unwrap();
    let long = "s".repeat(255);
    let done = message(&long, 8, Some(&long), Some("0 9 * * *"), None);
    let Recur::Next(next) = next_occurrence(&done, utc, ts("2026-03-01 00:00:00")) else {
        panic!()
    };
    assert!(next.id.as_str().starts_with("series-") && next.id.as_str().ends_with("@8"));
    assert_eq!(next.series_id, long);
}
