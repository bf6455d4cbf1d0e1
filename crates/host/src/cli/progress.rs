//! Progress for what a person waits for (`doctor` over many sessions,
//! `import`, `prune`, a `deliver --once` backlog), drawn on stderr only when
//! a person watches: stderr is a terminal, the output is text (never with
//! `--json`), and the command's own stdout is not a pipe or file a script
//! reads. A pipe, a file or `--json` never gets a control sequence.
//!
//! `deliver` is the one command whose stdout is a data stream (JSON lines
//! for a bridge): its counter is drawn when stdout goes elsewhere (a pipe,
//! a file), the case where a person sees nothing else move; on a terminal
//! the lines themselves are the progress, and a bar would cut into them.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::settings::{OutputFormat, Settings};

/// What the command's stdout carries, which decides when a bar may be drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdout {
    /// A report for the person at the terminal (doctor, import, prune).
    Report,
    /// A stream a program reads (deliver's JSON lines).
    Data,
}

/// Whether a person watches: see the module docs.
fn watched(settings: &Settings, stdout: Stdout) -> bool {
    let stdout_tty = std::io::stdout().is_terminal();
    settings.output == OutputFormat::Human
        && std::io::stderr().is_terminal()
        && match stdout {
            Stdout::Report => stdout_tty,
            Stdout::Data => !stdout_tty,
        }
}

fn draw_target(shown: bool) -> ProgressDrawTarget {
    if shown {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// A bar over `len` steps labelled `what`, hidden unless a person watches
/// (`set_length` corrects `len` once the real count is known).
pub fn bar(settings: &Settings, len: usize, what: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(len as u64),
        draw_target(watched(settings, Stdout::Report)),
    );
    let style = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta} left)")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what);
    bar
}

/// A counter of steps whose total is not known in advance (`what` names
/// them, e.g. "messages delivered"), hidden unless a person watches.
pub fn counter(settings: &Settings, stdout: Stdout, what: &'static str) -> ProgressBar {
    let counter = ProgressBar::with_draw_target(None, draw_target(watched(settings, stdout)));
    let style = ProgressStyle::with_template("{spinner} {pos} {msg} ({per_sec}, {elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    counter.set_style(style);
    counter.set_message(what);
    counter
}
