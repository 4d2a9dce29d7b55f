//! casegate: an email-to-case gateway for technical support teams.
//!
//! One way through, pure logic in the middle, I/O at the edges:
//!
//! ```text
//! source (intake: IMAP poll + IDLE, or cli::ingest from stdin)
//!   -> parse     mail::parse      raw bytes -> Inbound
//!   -> thread    domain::thread   which case it belongs to (facts gathered by the store)
//!   -> decide    domain::decide   PURE: case changes and events, `now` passed in
//!   -> commit    store            one transaction: case, message, events
//!   -> settle    intake           only now MOVE the mail out of the inbox
//! ```
//!
//! `pipeline` runs one mail through these stages; `cli/` holds one file per subcommand.

// The library's public API is what the binary (`src/main.rs`) and the integration
// tests use; everything else is private, so that code nothing reaches is flagged dead.
pub use casegate_core::domain;
pub mod config;
/// The daemon as a library function (`run(config, store, shutdown, reloads)`).
pub mod daemon;
pub mod imap;
pub mod mail;
pub mod outbox;
pub mod runtime;
pub mod store;
pub mod templates;

/// The command line: what `src/main.rs` parses and executes.
pub use cli::Cli;

mod admin;
mod charts;
mod cli;
mod cluster;
mod failpoint;
mod intake;
mod metrics;
mod notices;
mod oauth2;
mod pipeline;
mod problem;
mod progress;
mod replay;
mod sla_timer;
mod tls;
mod web;
