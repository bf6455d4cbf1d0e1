//! The delivery engine with the recording adapter: exactly once across a
//! restart, retries and dead letters, session isolation, two deliverer
//! processes, and backlogs; what each message costs the registry.

mod backlog;
mod composed;
mod counting;
mod exactly_once;
mod failures;
mod isolation;
mod last_active;
mod lookups;
mod processes;
mod settle;
mod support;
