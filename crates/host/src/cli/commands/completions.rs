//! `airlock completions SHELL` and the man pages, both generated from the
//! same clap definition as the parser ([`crate::cli::args::command`]), so
//! they cannot drift from the flags the tool accepts.

use std::path::Path;

use airlock_core::{Error, Result};

use crate::cli::args::command;

/// Prints the completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut cli = command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut cli, "airlock", &mut out);
    Ok(())
}

/// Writes `airlock.1` and one `airlock-<command>.1` per command into `out`.
pub fn man_pages(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    clap_mangen::generate_to(command(), out).map_err(|e| Error::io(out, e))?;
    crate::cli::output::print_line(&format!("man pages written to {}", out.display()));
    Ok(())
}
