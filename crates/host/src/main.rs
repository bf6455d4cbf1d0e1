//! The `airlock` command-line tool.

fn main() -> std::process::ExitCode {
    airlock_host::cli::main()
}
