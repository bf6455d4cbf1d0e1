//! airlock-host: the host side of airlock.
//!
//! [`SessionManager`] composes a session registry
//! ([`airlock_core::SessionStore`]) with a mailbox factory
//! ([`airlock_core::MailboxFactory`]); [`SessionManager::new`] wires in the
//! SQLite-file mailboxes and attachments of `airlock-sqlite-fs`. The crate also builds the `airlock`
//! command-line tool ([`cli`]).

pub mod cli;
pub mod delivery;
mod last_active;
pub mod lifecycle;
mod manager;
pub mod routing;
pub mod runner;
mod wiring;

pub use delivery::{ChannelAdapter, Deliverer, DelivererConfig, Delivery, DeliveryError};
pub use manager::{GuestLaunch, ManagerConfig, SessionHandle, SessionManager};

/// The README's Rust examples, compiled and run as doctests.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
