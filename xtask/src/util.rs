//! Helpers shared by xtask commands: the project root and running commands.

use std::path::PathBuf;
use std::process::Command;

/// The workspace root (the parent of `xtask/`).
pub fn project_root() -> PathBuf {
    let manifest = env!("CARGO_MANIFEST_DIR");
    PathBuf::from(manifest)
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Where cargo puts build output.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => project_root().join(dir),
        None => project_root().join("target"),
    }
}

/// A `cargo` command run from the project root.
pub fn cargo(args: &[&str]) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.args(args).current_dir(project_root());
    command
}

/// Runs `command`, echoing it first, and fails with its exit status.
pub fn run_command(mut command: Command) -> Result<(), String> {
    eprintln!("$ {}", describe(&command));
    let status = command
        .status()
        .map_err(|e| format!("could not start {}: {e}", describe(&command)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed with {status}", describe(&command)))
    }
}

/// Whether `program` is on the PATH (runs `program --version`).
pub fn has_program(program: &str, version_args: &[&str]) -> bool {
    Command::new(program)
        .args(version_args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}
