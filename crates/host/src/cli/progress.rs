//! Progress bars for what a person waits for (`doctor` over many sessions),
//! drawn on stderr only when stdout is a terminal and the output is text:
//! a pipe, a file or `--json` never gets a control sequence.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::settings::{OutputFormat, Settings};

/// A bar over `len` steps labelled `what`, hidden unless a person watches.
pub fn bar(settings: &Settings, len: usize, what: &'static str) -> ProgressBar {
    let shown = settings.output == OutputFormat::Human && std::io::stdout().is_terminal();
    let target = if shown {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len as u64), target);
    let style = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta} left)")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what);
    bar
}
