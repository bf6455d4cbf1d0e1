//! One handler per `airlock` command.

pub mod completions;
pub mod deliver;
pub mod demo;
pub mod destinations;
pub mod doctor;
pub mod failures;
pub mod guest;
pub mod import;
pub mod messages;
pub mod migrate;
pub mod queued;
pub mod reassign;
pub mod resolve;
pub mod retention;
pub mod routing;
pub mod run;
pub mod send;
pub mod sessions;

use airlock_core::Result;
use std::io::Write;

use super::settings::{Command, Settings};

/// Runs the command of `settings`.
pub async fn dispatch(settings: &Settings) -> Result<()> {
    let created = super::context::prepare_data_dir(settings)?;
    let created = created.as_deref();
    match &settings.command {
        Command::Resolve {
            agent_group,
            chat,
            thread,
            mode,
        } => {
            let (chat, thread) = (chat.as_ref(), thread.as_ref());
            resolve::run(settings, created, agent_group, chat, thread, *mode).await
        }
        Command::Send {
            session,
            content,
            kind,
            id,
            routing,
        } => send::run(settings, session, content, kind, id, routing).await,
        Command::Sessions { status } => sessions::list(settings, *status).await,
        Command::Archive { session } => retention::archive(settings, session).await,
        Command::Prune {
            older_than,
            dry_run,
        } => retention::prune(settings, *older_than, *dry_run).await,
        Command::Usage => retention::usage(settings).await,
        Command::Run {
            guest_cmd,
            interval,
        } => {
            // stdout carries the delivered messages; say it on stderr.
            // Best effort: eprintln! would panic on a failing stderr.
            if let Some(dir) = created {
                let _ = writeln!(std::io::stderr(), "created data dir {}", dir.display());
            }
            run::run(settings, guest_cmd, *interval).await
        }
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
        Command::Failures {
            session,
            action,
            routed: false,
        } => failures::run(settings, session.as_ref(), *action).await,
        Command::Failures {
            session,
            action,
            routed: true,
        } => failures::routed(settings, session.as_ref(), *action).await,
        Command::Demo => demo::run(settings, created).await,
        Command::DemoAgent { session_dir } => demo::agent(session_dir),
        Command::Import { from, dry_run } => import::run(settings, created, from, *dry_run).await,
        Command::Reassign { sessions, dry_run } => {
            reassign::run(settings, sessions, *dry_run).await
        }
        Command::Routing { session } => routing::run(settings, session).await,
        Command::Destinations { session, file } => destinations::run(settings, session, file).await,
        Command::Completions { shell } => completions::completions(*shell),
        Command::Man { out } => completions::man_pages(out),
        Command::Migrate { check } => migrate::run(settings, *check).await,
    }
}
