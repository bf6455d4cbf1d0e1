//! One handler per `airlock` command.

pub mod deliver;
pub mod demo;
pub mod destinations;
pub mod doctor;
pub mod failures;
pub mod guest;
pub mod import;
pub mod messages;
pub mod migrate;
pub mod resolve;
pub mod routing;
pub mod send;
pub mod sessions;

use airlock_core::Result;

use super::settings::{Command, Settings};

/// Runs the command of `settings`.
pub async fn dispatch(settings: &Settings) -> Result<()> {
    match &settings.command {
        Command::Resolve {
            agent_group,
            chat,
            thread,
            mode,
        } => resolve::run(settings, agent_group, chat.as_ref(), thread.as_ref(), *mode).await,
        Command::Send {
            session,
            content,
            kind,
            id,
            routing,
        } => send::run(settings, session, content, kind, id, routing).await,
        Command::Sessions { status } => sessions::list(settings, *status).await,
        Command::Show { session } => sessions::show(settings, session).await,
        Command::Messages {
            session,
            direction,
            limit,
        } => messages::run(settings, session, *direction, *limit).await,
        Command::GuestPoll { session_dir } => guest::poll(settings, session_dir),
        Command::GuestReply {
            session_dir,
            in_reply_to,
            text,
            files,
            to,
        } => guest::reply(
            settings,
            session_dir,
            in_reply_to,
            text,
            files,
            to.as_deref(),
        ),
        Command::Doctor { session, ack } => doctor::run(settings, session.as_ref(), *ack).await,
        Command::Deliver { session, once } => deliver::run(settings, session.as_ref(), *once).await,
        Command::Failures { session, action } => {
            failures::run(settings, session.as_ref(), *action).await
        }
        Command::Demo => demo::run(settings).await,
        Command::DemoAgent { session_dir } => demo::agent(session_dir),
        Command::Import { from, dry_run } => import::run(settings, from, *dry_run).await,
        Command::Routing { session } => routing::run(settings, session).await,
        Command::Destinations { session, file } => destinations::run(settings, session, file).await,
        Command::Migrate { check } => migrate::run(settings, *check).await,
    }
}
