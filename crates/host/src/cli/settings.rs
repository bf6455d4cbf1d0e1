//! Validated settings: every id parsed and every flag checked before any
//! command runs, so handlers never see raw strings.

use std::path::PathBuf;

use airlock_core::{AgentGroupId, MessageId, SessionId, SessionMode, SessionStatus, ThreadId};

use super::args::{RawChat, RawCli, RawCommand, RawFailures, RawGuest};

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

/// Routing flags of `airlock send`; what is not given comes from the session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendRouting {
    /// `--channel` with `--platform-id`.
    pub chat: Option<ChatSettings>,
    /// `--thread`.
    pub thread: Option<String>,
}

/// What `airlock send` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendContent {
    /// Text plus files to encode into a JSON content, as a bridge does.
    Text {
        /// The text (none for a message of attachments only).
        text: Option<String>,
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

/// Which sessions `airlock reassign` moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReassignScope {
    /// These.
    Sessions(Vec<SessionId>),
    /// Every session that host owns.
    From(String),
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
        /// The routing columns to write (defaults from the session).
        routing: SendRouting,
    },
    /// `sessions`.
    Sessions {
        /// Status filter.
        status: Option<SessionStatus>,
    },
    /// `archive`.
    Archive {
        /// The session.
        session: SessionId,
    },
    /// `prune`.
    Prune {
        /// Idle for longer than this.
        older_than: std::time::Duration,
        /// Only list.
        dry_run: bool,
    },
    /// `usage`.
    Usage,
    /// `run`.
    Run {
        /// The guest command.
        guest_cmd: String,
        /// Between two turns.
        interval: std::time::Duration,
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
        /// Routed messages' dead letters, not deliveries'.
        routed: bool,
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
        /// A destination name, or the session's default routing.
        to: Option<String>,
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
        /// Acknowledge the tamper events reported.
        ack: bool,
    },
    /// `demo`.
    Demo,
    /// `import`.
    Import {
        /// The reference's data dir.
        from: PathBuf,
        /// Write nothing.
        dry_run: bool,
    },
    /// `migrate`.
    Migrate {
        /// Report only; fail when migrations are pending.
        check: bool,
    },
    /// `reassign`.
    Reassign {
        /// Which sessions.
        sessions: ReassignScope,
        /// Change nothing.
        dry_run: bool,
    },
    /// `routing`.
    Routing {
        /// The session.
        session: SessionId,
    },
    /// `completions`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// `man` (hidden; `cargo xtask man`).
    Man {
        /// Output folder.
        out: PathBuf,
    },
    /// `destinations`.
    Destinations {
        /// The session.
        session: SessionId,
        /// The JSON rows file.
        file: PathBuf,
    },
}

/// Everything a command needs, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Data dir (registry, sessions root, host state).
    pub data_dir: PathBuf,
    /// Registry location.
    pub registry: RegistryLocation,
    /// This host's id (`--host-id`), if several hosts share the registry.
    pub host_id: Option<String>,
    /// Output format.
    pub output: OutputFormat,
    /// The command.
    pub command: Command,
}

fn parse<T, E: std::fmt::Display>(flag: &str, result: Result<T, E>) -> Result<T, String> {
    result.map_err(|e| format!("{flag}: {e}"))
}

/// `--channel` and `--platform-id`, which clap makes come together.
fn chat(raw: RawChat) -> Result<Option<ChatSettings>, String> {
    match (raw.channel, raw.platform_id) {
        (Some(channel_type), Some(platform_id)) => {
            if channel_type.is_empty() || platform_id.is_empty() {
                return Err("--channel and --platform-id must not be empty".into());
            }
            Ok(Some(ChatSettings {
                channel_type,
                platform_id,
            }))
        }
        _ => Ok(None),
    }
}

/// The default data dir, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./airlock-data";

/// An environment variable's value when it is set and not empty.
fn env_value(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

fn registry_location(
    data_dir: &std::path::Path,
    raw: Option<String>,
) -> Result<RegistryLocation, String> {
    let Some(raw) = raw else {
        return Ok(RegistryLocation::Sqlite(
            data_dir.join(airlock_sqlite_fs::REGISTRY_FILE),
        ));
    };
    if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        return Ok(RegistryLocation::Postgres(raw));
    }
    if let Some(path) = raw.strip_prefix("sqlite://") {
        return Ok(RegistryLocation::Sqlite(PathBuf::from(path)));
    }
    // Anything else that looks like a URL is a mistake, not a file name.
    if let Some((scheme, _)) = raw.split_once("://")
        && !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return Err(format!(
            "--registry: unsupported scheme `{scheme}://` (expected a SQLite file path, \
             sqlite://PATH, or a postgres:// URL)"
        ));
    }
    Ok(RegistryLocation::Sqlite(PathBuf::from(raw)))
}

impl Command {
    /// Whether the command may create the data dir (and the registry):
    /// only those that create sessions. The others refuse a data dir or
    /// registry that does not exist, so a mistyped `--data-dir` is an error.
    pub fn creates_data_dir(&self) -> bool {
        matches!(
            self,
            Command::Resolve { .. }
                | Command::Import { dry_run: false, .. }
                | Command::Demo
                | Command::Run { .. }
        )
    }

    /// Whether the command reads the data dir at all (`guest` commands
    /// only see their session folder).
    pub fn uses_data_dir(&self) -> bool {
        !matches!(
            self,
            Command::GuestPoll { .. }
                | Command::GuestReply { .. }
                | Command::DemoAgent { .. }
                | Command::Completions { .. }
                | Command::Man { .. }
        )
    }
}

impl TryFrom<RawCli> for Settings {
    type Error = String;

    fn try_from(raw: RawCli) -> Result<Self, String> {
        let data_dir = raw
            .data_dir
            .or_else(|| env_value("AIRLOCK_DATA_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        // Resolved once: symlinks in the data dir's own path are the user's
        // choice; below it nothing is followed.
        let data_dir = airlock_sqlite_fs::canonical_dir(&data_dir);
        let registry = registry_location(
            &data_dir,
            raw.registry.or_else(|| env_value("AIRLOCK_REGISTRY")),
        )?;
        if raw.host_id.as_deref().is_some_and(|h| h.trim().is_empty()) {
            return Err("--host-id must not be empty".into());
        }
        let output = if raw.json {
            OutputFormat::Json
        } else {
            OutputFormat::Human
        };
        let command = match raw.command {
            RawCommand::Resolve(r) => Command::Resolve {
                agent_group: parse("--agent-group", AgentGroupId::new(r.agent_group))?,
                chat: chat(r.chat)?,
                thread: r
                    .thread
                    .map(|t| parse("--thread", ThreadId::new(t)))
                    .transpose()?,
                mode: parse("--mode", r.mode.parse::<SessionMode>())?,
            },
            RawCommand::Send(s) => Command::Send {
                session: parse("--session", SessionId::new(s.session))?,
                content: match (s.text, s.content_file, s.attach.is_empty()) {
                    (None, Some(file), true) => SendContent::File(file),
                    (text, None, no_files) if text.is_some() || !no_files => SendContent::Text {
                        text,
                        attach: s.attach,
                    },
                    _ => return Err("give --text and/or --attach, or --content-file alone".into()),
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
                routing: SendRouting {
                    chat: chat(s.chat)?,
                    thread: s
                        .thread
                        .map(|t| parse("--thread", ThreadId::new(t)).map(ThreadId::into_string))
                        .transpose()?,
                },
            },
            RawCommand::Sessions { status } => Command::Sessions {
                status: status.map(|s| parse("--status", s.parse())).transpose()?,
            },
            RawCommand::Archive { session } => Command::Archive {
                session: parse("session", SessionId::new(session))?,
            },
            RawCommand::Prune {
                older_than,
                dry_run,
            } => Command::Prune {
                older_than: super::commands::retention::parse_age(&older_than)
                    .map_err(|e| format!("--older-than: {e}"))?,
                dry_run,
            },
            RawCommand::Usage => Command::Usage,
            RawCommand::Run {
                guest_cmd,
                interval_ms,
            } => Command::Run {
                guest_cmd: if guest_cmd.trim().is_empty() {
                    return Err("--guest-cmd must not be empty".into());
                } else {
                    guest_cmd
                },
                interval: std::time::Duration::from_millis(interval_ms.max(10)),
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
            RawCommand::Failures {
                session,
                routed,
                action,
            } => Command::Failures {
                routed,
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
                    to,
                } => Command::GuestReply {
                    session_dir,
                    in_reply_to: parse("--in-reply-to", MessageId::new(in_reply_to))?,
                    text,
                    files,
                    to: match to {
                        Some(name) if name.trim().is_empty() => {
                            return Err("--to must name a destination".into());
                        }
                        other => other,
                    },
                },
                RawGuest::DemoAgent { session_dir } => Command::DemoAgent { session_dir },
            },
            RawCommand::Doctor { session, ack } => Command::Doctor {
                session: session
                    .map(|s| parse("--session", SessionId::new(s)))
                    .transpose()?,
                ack,
            },
            RawCommand::Demo => Command::Demo,
            RawCommand::Import { from, dry_run } => Command::Import { from, dry_run },
            RawCommand::Migrate { check } => Command::Migrate { check },
            RawCommand::Reassign {
                sessions,
                from,
                dry_run,
            } => Command::Reassign {
                sessions: match (sessions.is_empty(), from) {
                    (true, None) => {
                        return Err("reassign: name the sessions, or --from HOST".into());
                    }
                    (false, Some(_)) => {
                        return Err("reassign: name the sessions or give --from, not both".into());
                    }
                    (true, Some(host)) if host.trim().is_empty() => {
                        return Err("--from must name a host".into());
                    }
                    (true, Some(host)) => ReassignScope::From(host),
                    (false, None) => ReassignScope::Sessions(
                        sessions
                            .into_iter()
                            .map(|s| parse("session", SessionId::new(s)))
                            .collect::<Result<_, _>>()?,
                    ),
                },
                dry_run,
            },
            RawCommand::Routing { session } => Command::Routing {
                session: parse("session", SessionId::new(session))?,
            },
            RawCommand::Completions { shell } => Command::Completions { shell },
            RawCommand::Man { out } => Command::Man { out },
            RawCommand::Destinations { session, file } => Command::Destinations {
                session: parse("session", SessionId::new(session))?,
                file,
            },
        };
        Ok(Settings {
            data_dir,
            registry,
            host_id: raw.host_id,
            output,
            command,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Result<Settings, String> {
        let raw =
            crate::cli::args::parse_from(std::iter::once("airlock").chain(args.iter().copied()))
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
        let err = settings(&["--registry", "mysql://x/y", "sessions"]).unwrap_err();
        assert!(err.contains("unsupported scheme `mysql://`"), "{err}");
        let s = settings(&["--registry", "./not:a/url", "sessions"]).unwrap();
        assert_eq!(
            s.registry,
            RegistryLocation::Sqlite(PathBuf::from("./not:a/url"))
        );
        let s = settings(&["--registry", "sqlite:///tmp/r.db", "sessions"]).unwrap();
        assert_eq!(
            s.registry,
            RegistryLocation::Sqlite(PathBuf::from("/tmp/r.db"))
        );
    }
}
