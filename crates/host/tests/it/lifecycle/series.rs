//! Recurring messages through the sweep: the next occurrence in the same
//! series at 09:00 Berlin time, exactly one however often the sweep runs,
//! and an unreadable expression reported once.

use std::sync::Arc;

use airlock_core::mailbox::NewInboundMessage;
use airlock_core::{MessageId, Session, Timestamp};
use airlock_host::lifecycle::{Runtime, RuntimeTimeouts, SweepConfig, Sweeper, parse_zone};
use airlock_sqlite_fs::host::SeriesNext;

use crate::lifecycle::support::{Guest, Rig};

fn berlin_sweeper(rig: &Rig) -> Sweeper {
    let runtime = Runtime::new(Arc::new(rig.fake.clone()), RuntimeTimeouts::default());
    let config = SweepConfig {
        zone: parse_zone("Europe/Berlin").unwrap(),
        ..SweepConfig::default()
    };
    Sweeper::new(rig.manager.clone(), runtime, config)
}

async fn send_recurring(rig: &Rig, s: &Session, id: &str, cron: &str) {
    let mut msg =
        NewInboundMessage::new(MessageId::new(id).unwrap(), "chat", r#"{"text":"standup"}"#);
    msg.timestamp = rig.at_secs(0);
    msg.recurrence = Some(cron.into());
    rig.manager.write_message(&s.id, msg).await.unwrap();
}

fn series(rig: &Rig, s: &Session, series: &str) -> Vec<airlock_core::mailbox::InboundMessage> {
    let all = rig.manager.mailbox(s).list_inbound(100).unwrap();
    all.into_iter()
        .filter(|m| m.series_id.as_deref() == Some(series))
        .collect()
}

#[tokio::test]
async fn a_completed_recurring_message_is_followed_by_exactly_one_next_occurrence() {
    let rig = Rig::new(&[Guest::Answer]);
    let sweeper = berlin_sweeper(&rig);
    let s = rig.session("c1").await;
    send_recurring(&rig, &s, "m1", "0 9 * * *").await;
    assert!(
        sweeper
            .tick_session(&s.id, rig.at_secs(0))
            .await
            .unwrap()
            .woke
    );
    let r = sweeper.tick_session(&s.id, rig.at_secs(1)).await.unwrap();
    assert_eq!(r.recurred, ["m1@2"]);
    // Running the sweep again, or the step itself again, adds nothing.
    for secs in [2, 3, 3600] {
        let again = sweeper
            .tick_session(&s.id, rig.at_secs(secs))
            .await
            .unwrap();
        assert!(again.recurred.is_empty(), "{again:?}");
    }
    let next = SeriesNext {
        id: airlock_core::MessageId::new("m1@2").unwrap(),
        process_after: Timestamp::parse("2026-06-02 07:00:00").unwrap(),
        recurrence: "0 9 * * *".into(),
    };
    assert!(
        !rig.manager
            .mailbox(&s)
            .continue_series("m1", &next)
            .unwrap()
    );

    let rows = series(&rig, &s, "m1");
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let (done, next) = (&rows[0], &rows[1]);
    assert_eq!(
        (
            done.id.as_str(),
            done.status.as_str(),
            done.recurrence.as_deref()
        ),
        ("m1", "completed", None)
    );
    assert_eq!(
        (next.id.as_str(), next.status.as_str()),
        ("m1@2", "pending")
    );
    assert_eq!(next.recurrence.as_deref(), Some("0 9 * * *"));
    assert_eq!(next.content, done.content);
    // 09:00 in Berlin in June is 07:00 UTC.
    assert_eq!(
        Timestamp::parse(next.process_after.as_deref().unwrap()).unwrap(),
        Timestamp::parse("2026-06-02 07:00:00").unwrap()
    );
    assert!(next.seq > done.seq && next.seq % 2 == 0);
    // Not due (so no guest) until then.
    assert_eq!(
        rig.manager
            .count_due(&s.id, rig.at_secs(3600))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        rig.manager
            .count_due(&s.id, Timestamp::parse("2026-06-02 07:00:00").unwrap())
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn an_unreadable_expression_stops_the_series_and_is_reported_once() {
    let rig = Rig::new(&[Guest::Answer]);
    let sweeper = berlin_sweeper(&rig);
    let s = rig.session("c1").await;
    send_recurring(&rig, &s, "m1", "every morning").await;
    sweeper.tick_session(&s.id, rig.at_secs(0)).await.unwrap();
    let r = sweeper.tick_session(&s.id, rig.at_secs(1)).await.unwrap();
    assert_eq!(r.series_stopped, ["m1"]);
    assert!(r.recurred.is_empty());
    let again = sweeper.tick_session(&s.id, rig.at_secs(2)).await.unwrap();
    assert!(again.series_stopped.is_empty());
    assert_eq!(rig.inbound(&s, "m1").recurrence, None);
    assert_eq!(series(&rig, &s, "m1").len(), 1);
}
