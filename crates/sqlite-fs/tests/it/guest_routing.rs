//! Replies carry routing: a reply naming none gets `session_routing`'s, a
//! named destination resolves from `destinations`, explicit routing wins.

use airlock_core::MessageId;
use airlock_core::mailbox::{Destination, NewOutboundMessage, Routing};
use airlock_sqlite_fs::GuestMailbox;
use rusqlite::Connection;

use crate::mailbox_common::Fixture;

fn stored_routing(fx: &Fixture, id: &str) -> (Option<String>, Option<String>, Option<String>) {
    Connection::open(fx.host.paths().outbound_db())
        .unwrap()
        .query_row(
            "SELECT channel_type, platform_id, thread_id FROM messages_out WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
}

fn some(a: &str, b: &str, c: Option<&str>) -> (Option<String>, Option<String>, Option<String>) {
    (Some(a.into()), Some(b.into()), c.map(Into::into))
}

fn reply(id: &str) -> NewOutboundMessage {
    NewOutboundMessage::new(MessageId::new(id).unwrap(), "chat", "{\"text\":\"hi\"}")
}

fn destination(
    name: &str,
    kind: &str,
    chat: Option<(&str, &str)>,
    agent: Option<&str>,
) -> Destination {
    Destination {
        name: name.into(),
        display_name: None,
        kind: kind.into(),
        channel_type: chat.map(|c| c.0.into()),
        platform_id: chat.map(|c| c.1.into()),
        agent_group_id: agent.map(Into::into),
    }
}

/// The host's default for the session: slack C1, thread t-9.
fn set_session_routing(fx: &Fixture) {
    fx.host
        .write_routing(&Routing {
            channel_type: Some("slack".into()),
            platform_id: Some("C1".into()),
            thread_id: Some("t-9".into()),
        })
        .unwrap();
}

#[test]
fn a_reply_naming_no_routing_gets_the_sessions() {
    let fx = Fixture::new();
    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    guest.write_message_out(&reply("before")).unwrap();
    assert_eq!(
        stored_routing(&fx, "before"),
        (None, None, None),
        "no session_routing yet"
    );

    set_session_routing(&fx);
    guest.write_message_out(&reply("plain")).unwrap();
    assert_eq!(
        stored_routing(&fx, "plain"),
        some("slack", "C1", Some("t-9"))
    );

    let mut explicit = reply("explicit");
    explicit.channel_type = Some("telegram".into());
    explicit.platform_id = Some("42".into());
    guest.write_message_out(&explicit).unwrap();
    assert_eq!(
        stored_routing(&fx, "explicit"),
        some("telegram", "42", None)
    );
}

#[test]
fn a_named_destination_gets_that_destinations_routing() {
    let fx = Fixture::new();
    set_session_routing(&fx);
    fx.host
        .replace_destinations(&[
            destination("ops", "channel", Some(("slack", "C2")), None),
            destination("home", "channel", Some(("slack", "C1")), None),
            destination("peer", "agent", None, Some("ag-2")),
        ])
        .unwrap();
    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    let routing = |name: &str| guest.destination_routing(name).unwrap();
    assert_eq!(
        routing("ops"),
        Routing {
            channel_type: Some("slack".into()),
            platform_id: Some("C2".into()),
            thread_id: None
        }
    );
    assert_eq!(
        routing("home").thread_id.as_deref(),
        Some("t-9"),
        "the session's own chat keeps its thread"
    );
    assert_eq!(
        routing("peer"),
        Routing {
            channel_type: Some("agent".into()),
            platform_id: Some("ag-2".into()),
            thread_id: None
        }
    );

    let mut to_ops = reply("to-ops");
    let ops = routing("ops");
    to_ops.channel_type = ops.channel_type;
    to_ops.platform_id = ops.platform_id;
    guest.write_message_out(&to_ops).unwrap();
    assert_eq!(stored_routing(&fx, "to-ops"), some("slack", "C2", None));

    let err = guest
        .destination_routing("nowhere")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no destination named") && err.contains("home, ops, peer"),
        "{err}"
    );
}

#[test]
fn a_session_created_with_routing_gives_it_to_the_first_reply() {
    let fx = Fixture::new();
    let session =
        airlock_core::SessionRef::new("ag-1".parse().unwrap(), airlock_core::SessionId::generate());
    let host = fx.roots.host(&session);
    host.create_routed(&Routing {
        channel_type: Some("slack".into()),
        platform_id: Some("C7".into()),
        thread_id: Some("t-1".into()),
    })
    .unwrap();
    let guest = GuestMailbox::open(host.paths().dir()).unwrap();
    guest.write_message_out(&reply("first")).unwrap();
    let stored: (Option<String>, Option<String>, Option<String>) =
        Connection::open(host.paths().outbound_db())
            .unwrap()
            .query_row(
                "SELECT channel_type, platform_id, thread_id FROM messages_out WHERE id = 'first'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
    assert_eq!(stored, some("slack", "C7", Some("t-1")));
}
