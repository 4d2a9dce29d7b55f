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

pub mod admin;
pub mod charts;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod domain;
pub mod failpoint;
pub mod imap;
pub mod intake;
pub mod mail;
pub mod metrics;
pub mod notices;
pub mod oauth2;
pub mod outbox;
pub mod pipeline;
pub mod problem;
pub mod replay;
pub mod runtime;
pub mod sla_timer;
pub mod store;
pub mod templates;
pub mod tls;
pub mod web;
