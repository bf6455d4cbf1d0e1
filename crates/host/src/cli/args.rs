//! The raw command line as clap parses it; [`super::settings`] validates it.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

/// Run the session layer of an AI-agent host: resolve chats to sessions,
/// exchange messages with sandboxed agents, deliver their replies, check the
/// invariants on disk.
#[derive(Debug, Parser)]
#[command(name = "airlock", version, max_term_width = 100)]
pub struct RawCli {
    // The environment is read in `settings`, not by clap: clap counts a value
    // from the environment as given, and prints it in every usage error as
    // if it were required.
    /// Where the registry, sessions and host state live [env: AIRLOCK_DATA_DIR]
    /// [default: ./airlock-data]. Only resolve, import, demo and run create it.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Session registry: a SQLite file path or `sqlite://PATH` (default
    /// `<data-dir>/airlock.db`), or a `postgres://…` URL [env: AIRLOCK_REGISTRY].
    #[arg(long, global = true, value_name = "URL")]
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

/// The command-line definition: [`RawCli`], with the host's global options
/// (data dir, registry, host id) hidden under `guest`, which never reads
/// them (a sandbox has no registry).
/// Completions and the man page are generated from it too.
pub fn command() -> clap::Command {
    let cli = RawCli::command();
    let host_only: Vec<clap::Arg> = cli
        .get_arguments()
        .filter(|a| matches!(a.get_id().as_str(), "data_dir" | "registry" | "host_id"))
        .map(|a| a.clone().hide(true))
        .collect();
    // A subcommand that already has an argument keeps it when the globals
    // are propagated, so these hidden copies stand in for the shown ones.
    cli.mut_subcommand("guest", |guest| {
        host_only.iter().cloned().fold(guest, clap::Command::arg)
    })
}

/// Parses `args` (the program name first) with [`command`].
pub fn parse_from<I, T>(args: I) -> Result<RawCli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut cmd = command();
    let matches = cmd.try_get_matches_from_mut(args)?;
    RawCli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))
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
    /// Archive a session: never resolved again, prunable later.
    Archive {
        /// The session id.
        session: String,
    },
    /// Remove archived sessions idle for longer than an age (registry row,
    /// folder and host state together; an interrupted prune is finished).
    Prune {
        /// Idle for longer than this: 30d, 12h, 90m, 45s, 2w.
        #[arg(long)]
        older_than: String,
        /// List what would be removed, and its bytes, without removing it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Disk usage per agent group and per session.
    Usage,
    /// Run the host loop: deliveries to stdout and the lifecycle sweep, each
    /// guest a child process running --guest-cmd (no sandbox). Ctrl-C stops it.
    Run {
        /// The guest, run with `sh -c` and AIRLOCK_SESSION_DIR set.
        #[arg(long)]
        guest_cmd: String,
        /// Milliseconds between two turns of the loop.
        #[arg(long, default_value_t = 500)]
        interval_ms: u64,
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
        /// Routed messages the owner could not apply (PostgreSQL registry)
        /// instead of deliveries.
        #[arg(long)]
        routed: bool,
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
        /// Print what would be done; write nothing (not even the data dir or registry).
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
    /// Move sessions to this host (--host-id, PostgreSQL registry) from a
    /// host that stopped, only those whose folder this host can reach; their
    /// queued messages are then applied here. Exits non-zero if any is refused.
    Reassign {
        /// The sessions to move (or use --from).
        sessions: Vec<String>,
        /// Every session that HOST owns.
        #[arg(long, value_name = "HOST")]
        from: Option<String>,
        /// Check and report what would move; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write a session's `session_routing` (its default reply target) from
    /// the registry: its chat and thread.
    Routing {
        /// The session id.
        session: String,
    },
    /// Print a shell completion script (e.g. `airlock completions bash >
    /// /etc/bash_completion.d/airlock`).
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (airlock.1 and one per command) into a folder;
    /// `cargo xtask man` runs it.
    #[command(hide = true)]
    Man {
        /// The folder to write them into (created if missing).
        #[arg(long)]
        out: PathBuf,
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
// A message needs a body, whichever: as a group, the usage error names all
// three instead of calling --text required when --attach alone would do.
#[command(group(
    clap::ArgGroup::new("body")
        .required(true)
        .multiple(true)
        .args(["text", "attach", "content_file"])
))]
pub struct RawSend {
    /// The session id.
    #[arg(long)]
    pub session: String,
    /// The message text (optional when files are attached).
    #[arg(long, conflicts_with = "content_file")]
    pub text: Option<String>,
    /// A file to attach (base64-encoded into the content, as a chat bridge does).
    #[arg(long = "attach", conflicts_with = "content_file")]
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
