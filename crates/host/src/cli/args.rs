//! The raw command line as clap parses it; [`super::settings`] validates it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// airlock: the session layer of AI-agent hosts.
#[derive(Debug, Parser)]
#[command(name = "airlock", version, about, max_term_width = 100)]
pub struct RawCli {
    /// Where the registry, sessions and host state live.
    #[arg(
        long,
        global = true,
        env = "AIRLOCK_DATA_DIR",
        default_value = "./airlock-data"
    )]
    pub data_dir: PathBuf,
    /// Session registry: a SQLite file path or `sqlite://PATH` (default
    /// `<data-dir>/airlock.db`), or a `postgres://…` URL.
    #[arg(long, global = true, env = "AIRLOCK_REGISTRY")]
    pub registry: Option<String>,
    /// This host's id when several hosts share one registry: sessions it
    /// creates are owned by it; another host's sessions are refused
    /// (`NotOwner`) or, on PostgreSQL, their messages queued for the owner.
    #[arg(long, global = true, env = "AIRLOCK_HOST_ID")]
    pub host_id: Option<String>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// The command to run.
    #[command(subcommand)]
    pub command: RawCommand,
}

/// Every `airlock` command.
#[derive(Debug, Subcommand)]
pub enum RawCommand {
    /// Find or create the session for a chat.
    Resolve(RawResolve),
    /// Write an inbound message (host → guest) into a session.
    Send(RawSend),
    /// List sessions.
    Sessions {
        /// Only sessions with this status (active, archived).
        #[arg(long)]
        status: Option<String>,
    },
    /// Show one session with its message counts, container status and heartbeat.
    Show {
        /// The session id.
        session: String,
    },
    /// List a session's messages.
    Messages {
        /// The session id.
        session: String,
        /// `in` (host → guest), `out` (guest → host) or both when omitted.
        #[arg(long)]
        direction: Option<String>,
        /// At most this many of the newest messages per direction.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Deliver due outbound messages to stdout as JSON lines (files inline, base64).
    Deliver {
        /// Only this session (default: every active session).
        #[arg(long)]
        session: Option<String>,
        /// Deliver what is due now and exit instead of polling.
        #[arg(long)]
        once: bool,
    },
    /// List dead letters (deliveries that failed for good); retry or purge one.
    Failures {
        /// Only this session's.
        #[arg(long)]
        session: Option<String>,
        /// What to do with one dead letter (default: list them).
        #[command(subcommand)]
        action: Option<RawFailures>,
    },
    /// The guest side, for a shell-script agent inside a sandbox.
    Guest {
        /// The guest command.
        #[command(subcommand)]
        command: RawGuest,
    },
    /// Check every invariant readable from disk; exits non-zero on findings.
    Doctor {
        /// Only this session (default: every session in the registry).
        #[arg(long)]
        session: Option<String>,
        /// Acknowledge the tamper events reported, so later runs pass.
        #[arg(long)]
        ack: bool,
    },
    /// Run the whole loop end to end with a guest child process.
    Demo,
    /// Adopt an existing reference (nanoclaw v2) install: register its chats
    /// and sessions, keeping their ids, so their folders open in place.
    Import {
        /// The reference's data dir (holding `v2.db` and `v2-sessions/`);
        /// give the same dir as --data-dir so the folders open in place.
        #[arg(long)]
        from: PathBuf,
        /// Print what would be done; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Apply the registry's pending migrations (PostgreSQL), so a new build
    /// can roll out on a migrated schema.
    Migrate {
        /// Only report pending migrations; exit non-zero if there are any.
        #[arg(long)]
        check: bool,
    },
    /// Write a session's `session_routing` (its default reply target) from
    /// the registry: its chat and thread.
    Routing {
        /// The session id.
        session: String,
    },
    /// Replace a session's `destinations` with the rows of a JSON file.
    Destinations {
        /// The session id.
        session: String,
        /// A JSON array of `{"name", "display_name"?, "type": "channel"|"agent",
        /// "channel_type"?, "platform_id"?, "agent_group_id"?}`.
        #[arg(long)]
        file: PathBuf,
    },
}

/// `--channel` and `--platform-id`: one chat on one platform.
#[derive(Debug, Args)]
pub struct RawChat {
    /// The chat platform, e.g. `slack` (needs --platform-id).
    #[arg(long, requires = "platform_id")]
    pub channel: Option<String>,
    /// The platform's chat id (needs --channel).
    #[arg(long, requires = "channel")]
    pub platform_id: Option<String>,
}

/// Arguments of `airlock resolve`.
#[derive(Debug, Args)]
pub struct RawResolve {
    /// The agent group.
    #[arg(long)]
    pub agent_group: String,
    /// The chat.
    #[command(flatten)]
    pub chat: RawChat,
    /// The thread inside the chat.
    #[arg(long)]
    pub thread: Option<String>,
    /// shared, per-thread or agent-shared.
    #[arg(long)]
    pub mode: String,
}

/// Arguments of `airlock send`.
#[derive(Debug, Args)]
pub struct RawSend {
    /// The session id.
    #[arg(long)]
    pub session: String,
    /// The message text.
    #[arg(
        long,
        conflicts_with = "content_file",
        required_unless_present = "content_file"
    )]
    pub text: Option<String>,
    /// A file to attach (base64-encoded into the content, as a chat bridge does).
    #[arg(long = "attach", requires = "text")]
    pub attach: Vec<PathBuf>,
    /// A file whose bytes are the content exactly as a bridge delivered it.
    #[arg(long)]
    pub content_file: Option<PathBuf>,
    /// The message kind.
    #[arg(long, default_value = "chat")]
    pub kind: String,
    /// The message id (default: a generated one).
    #[arg(long)]
    pub id: Option<String>,
    /// The chat the message came from (default: the session's).
    #[command(flatten)]
    pub chat: RawChat,
    /// The thread inside the chat (default: the session's thread).
    #[arg(long)]
    pub thread: Option<String>,
}

/// `airlock failures …` actions.
#[derive(Debug, Subcommand)]
pub enum RawFailures {
    /// Re-queue a dead letter: the next deliver pass sends it again.
    Retry {
        /// The dead letter's id (from `airlock failures`).
        id: i64,
    },
    /// Drop a dead letter and its outbox files.
    Purge {
        /// The dead letter's id (from `airlock failures`).
        id: i64,
    },
}

/// `airlock guest …` commands.
#[derive(Debug, Subcommand)]
pub enum RawGuest {
    /// Print pending inbound messages and mark them processing.
    Poll {
        /// The session folder as the guest sees it.
        #[arg(long)]
        session_dir: PathBuf,
    },
    /// Write a reply into outbound.db, optionally with files.
    Reply {
        /// The session folder as the guest sees it.
        #[arg(long)]
        session_dir: PathBuf,
        /// The inbound message id this answers (marked completed).
        #[arg(long)]
        in_reply_to: String,
        /// The reply text.
        #[arg(long)]
        text: String,
        /// A file to put in the message's outbox folder.
        #[arg(long = "file")]
        files: Vec<PathBuf>,
        /// Send to this destination (a `destinations` name) instead of the
        /// session's default routing.
        #[arg(long)]
        to: Option<String>,
    },
    /// The demo's agent: waits for one message, replies with a file, exits.
    #[command(hide = true)]
    DemoAgent {
        /// The session folder as the guest sees it.
        #[arg(long)]
        session_dir: PathBuf,
    },
}
