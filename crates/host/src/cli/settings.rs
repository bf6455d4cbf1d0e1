//! Validated settings: every id parsed and every flag checked before any
//! command runs, so handlers never see raw strings.

use std::path::PathBuf;

use airlock_core::{AgentGroupId, MessageId, SessionId, SessionMode, SessionStatus, ThreadId};

use super::args::{RawCli, RawCommand, RawFailures, RawGuest};

/// Where the session registry lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryLocation {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL.
    Postgres(String),
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Text for people.
    Human,
    /// One JSON document (or one per line for streams).
    Json,
}

/// The chat a resolve is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSettings {
    /// Platform name.
    pub channel_type: String,
    /// Platform chat id.
    pub platform_id: String,
}

/// What `airlock send` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendContent {
    /// Text plus files to encode into a JSON content, as a bridge does.
    Text {
        /// The text.
        text: String,
        /// Files to attach.
        attach: Vec<PathBuf>,
    },
    /// A file whose bytes are the content.
    File(PathBuf),
}

/// Which mailbox table(s) `messages` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `messages_in` only.
    In,
    /// `messages_out` only.
    Out,
    /// Both.
    Both,
}

/// What `airlock failures` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureAction {
    /// List dead letters.
    List,
    /// Re-queue one.
    Retry(i64),
    /// Drop one and its outbox files.
    Purge(i64),
}

/// A validated command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `resolve`.
    Resolve {
        /// Agent group.
        agent_group: AgentGroupId,
        /// Chat, if any.
        chat: Option<ChatSettings>,
        /// Thread, if any.
        thread: Option<ThreadId>,
        /// Mode.
        mode: SessionMode,
    },
    /// `send`.
    Send {
        /// Target session.
        session: SessionId,
        /// Content.
        content: SendContent,
        /// Kind.
        kind: String,
        /// Message id.
        id: MessageId,
    },
    /// `sessions`.
    Sessions {
        /// Status filter.
        status: Option<SessionStatus>,
    },
    /// `show`.
    Show {
        /// The session.
        session: SessionId,
    },
    /// `messages`.
    Messages {
        /// The session.
        session: SessionId,
        /// Which table(s).
        direction: Direction,
        /// Newest N per table.
        limit: usize,
    },
    /// `deliver`.
    Deliver {
        /// One session or all active ones.
        session: Option<SessionId>,
        /// Exit after one pass.
        once: bool,
    },
    /// `failures`.
    Failures {
        /// One session's or all.
        session: Option<SessionId>,
        /// List, retry or purge.
        action: FailureAction,
    },
    /// `guest poll`.
    GuestPoll {
        /// Session folder.
        session_dir: PathBuf,
    },
    /// `guest reply`.
    GuestReply {
        /// Session folder.
        session_dir: PathBuf,
        /// The inbound id answered.
        in_reply_to: MessageId,
        /// Reply text.
        text: String,
        /// Files for the outbox.
        files: Vec<PathBuf>,
    },
    /// The demo's guest child.
    DemoAgent {
        /// Session folder.
        session_dir: PathBuf,
    },
    /// `doctor`.
    Doctor {
        /// One session or all.
        session: Option<SessionId>,
    },
    /// `demo`.
    Demo,
}

/// Everything a command needs, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Data dir (registry, sessions root, host state).
    pub data_dir: PathBuf,
    /// Registry location.
    pub registry: RegistryLocation,
    /// Output format.
    pub output: OutputFormat,
    /// The command.
    pub command: Command,
}

fn parse<T, E: std::fmt::Display>(flag: &str, result: Result<T, E>) -> Result<T, String> {
    result.map_err(|e| format!("{flag}: {e}"))
}

fn registry_location(data_dir: &std::path::Path, raw: Option<String>) -> RegistryLocation {
    match raw {
        None => RegistryLocation::Sqlite(data_dir.join(airlock_sqlite_fs::REGISTRY_FILE)),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            RegistryLocation::Postgres(url)
        }
        Some(path) => RegistryLocation::Sqlite(PathBuf::from(
            path.strip_prefix("sqlite://").unwrap_or(&path),
        )),
    }
}

impl TryFrom<RawCli> for Settings {
    type Error = String;

    fn try_from(raw: RawCli) -> Result<Self, String> {
        let registry = registry_location(&raw.data_dir, raw.registry);
        let output = if raw.json {
            OutputFormat::Json
        } else {
            OutputFormat::Human
        };
        let command = match raw.command {
            RawCommand::Resolve(r) => Command::Resolve {
                agent_group: parse("--agent-group", AgentGroupId::new(r.agent_group))?,
                chat: match (r.channel, r.platform_id) {
                    (Some(channel_type), Some(platform_id)) => {
                        if channel_type.is_empty() || platform_id.is_empty() {
                            return Err("--channel and --platform-id must not be empty".into());
                        }
                        Some(ChatSettings {
                            channel_type,
                            platform_id,
                        })
                    }
                    _ => None,
                },
                thread: r
                    .thread
                    .map(|t| parse("--thread", ThreadId::new(t)))
                    .transpose()?,
                mode: parse("--mode", r.mode.parse::<SessionMode>())?,
            },
            RawCommand::Send(s) => Command::Send {
                session: parse("--session", SessionId::new(s.session))?,
                content: match (s.text, s.content_file) {
                    (Some(text), None) => SendContent::Text {
                        text,
                        attach: s.attach,
                    },
                    (None, Some(file)) => SendContent::File(file),
                    _ => return Err("give exactly one of --text or --content-file".into()),
                },
                kind: if s.kind.trim().is_empty() {
                    return Err("--kind must not be empty".into());
                } else {
                    s.kind
                },
                id: match s.id {
                    Some(id) => parse("--id", MessageId::new(id))?,
                    None => parse("--id", MessageId::generate("msg"))?,
                },
            },
            RawCommand::Sessions { status } => Command::Sessions {
                status: status.map(|s| parse("--status", s.parse())).transpose()?,
            },
            RawCommand::Show { session } => Command::Show {
                session: parse("session", SessionId::new(session))?,
            },
            RawCommand::Messages {
                session,
                direction,
                limit,
            } => Command::Messages {
                session: parse("session", SessionId::new(session))?,
                direction: match direction.as_deref() {
                    None => Direction::Both,
                    Some("in") => Direction::In,
                    Some("out") => Direction::Out,
                    Some(other) => {
                        return Err(format!(
                            "--direction: expected `in` or `out`, got {other:?}"
                        ));
                    }
                },
                limit,
            },
            RawCommand::Deliver { session, once } => Command::Deliver {
                session: session
                    .map(|s| parse("--session", SessionId::new(s)))
                    .transpose()?,
                once,
            },
            RawCommand::Failures { session, action } => Command::Failures {
                session: session
                    .map(|s| parse("--session", SessionId::new(s)))
                    .transpose()?,
                action: match action {
                    None => FailureAction::List,
                    Some(RawFailures::Retry { id }) => FailureAction::Retry(id),
                    Some(RawFailures::Purge { id }) => FailureAction::Purge(id),
                },
            },
            RawCommand::Guest { command } => match command {
                RawGuest::Poll { session_dir } => Command::GuestPoll { session_dir },
                RawGuest::Reply {
                    session_dir,
                    in_reply_to,
                    text,
                    files,
                } => Command::GuestReply {
                    session_dir,
                    in_reply_to: parse("--in-reply-to", MessageId::new(in_reply_to))?,
                    text,
                    files,
                },
                RawGuest::DemoAgent { session_dir } => Command::DemoAgent { session_dir },
            },
            RawCommand::Doctor { session } => Command::Doctor {
                session: session
                    .map(|s| parse("--session", SessionId::new(s)))
                    .transpose()?,
            },
            RawCommand::Demo => Command::Demo,
        };
        Ok(Settings {
            data_dir: raw.data_dir,
            registry,
            output,
            command,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn settings(args: &[&str]) -> Result<Settings, String> {
        let raw = RawCli::try_parse_from(std::iter::once("airlock").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        Settings::try_from(raw)
    }

    #[test]
    fn unsafe_ids_are_refused_with_the_flag_named() {
        let err = settings(&["resolve", "--agent-group", "../x", "--mode", "shared"]).unwrap_err();
        assert!(
            err.starts_with("--agent-group: invalid agent group id"),
            "{err}"
        );
        let err = settings(&["show", "a/b"]).unwrap_err();
        assert!(err.contains("session id") && err.contains("`/`"), "{err}");
        let err = settings(&["resolve", "--agent-group", "a", "--mode", "threaded"]).unwrap_err();
        assert!(err.starts_with("--mode: invalid session mode"), "{err}");
    }

    #[test]
    fn registry_defaults_to_the_data_dir_and_accepts_urls() {
        let s = settings(&["--data-dir", "/d", "sessions"]).unwrap();
        assert_eq!(
            s.registry,
            RegistryLocation::Sqlite(PathBuf::from("/d/airlock.db"))
        );
        let s = settings(&["--registry", "postgres://u@h/db", "sessions"]).unwrap();
        assert_eq!(
            s.registry,
            RegistryLocation::Postgres("postgres://u@h/db".into())
        );
        let s = settings(&["--registry", "sqlite:///tmp/r.db", "sessions"]).unwrap();
        assert_eq!(
            s.registry,
            RegistryLocation::Sqlite(PathBuf::from("/tmp/r.db"))
        );
    }
}
