//! The `airlock` command-line tool: raw flags are parsed by clap
//! ([`args`]), validated into [`settings::Settings`], then run by one handler
//! per command ([`commands`]).

pub mod args;
pub mod commands;
mod context;
pub mod output;
mod progress;
pub mod settings;

use std::io::Write;
use std::process::ExitCode;

/// Runs the CLI with the process's arguments; errors print one line.
pub fn main() -> ExitCode {
    let raw = match args::parse_from(std::env::args_os()) {
        Ok(raw) => raw,
        Err(e) => {
            // Help and version are not errors; usage errors exit 2 as clap does.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let settings = match settings::Settings::try_from(raw) {
        Ok(settings) => settings,
        Err(message) => return fail(&message),
    };
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(commands::dispatch(&settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}

fn fail(message: &str) -> ExitCode {
    // One line, and no guest-written byte may drive the terminal.
    let line = output::clean(message);
    // eprintln! panics when stderr fails (a full disk, a closed pipe): the
    // exit code still tells the caller, so the line is best effort.
    let _ = writeln!(std::io::stderr(), "airlock: error: {line}");
    ExitCode::FAILURE
}

/// Logs go to stderr, quiet unless `RUST_LOG` asks for more.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A log line that cannot be written is dropped: by default
        // tracing-subscriber reports that with eprintln!, which panics when
        // stderr itself fails (a full disk, a closed descriptor).
        .log_internal_errors(false)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
