//! End-to-end tests of the `airlock` binary: snapshots of every command's
//! output, the shell-script walk-through, error reporting and the demo.

mod deliver_stdout;
mod errors;
mod guest_proof;
mod hosts;
mod import;
mod migrate;
mod output;
mod progress;
mod retention;
mod routing;
mod run;
mod script;
mod usage;
mod util;
