//! The domain rules, PURE: no I/O, no clock reads (`now` is an argument).
//! Nothing in here imports the I/O modules (`store`, `imap`, `outbox`).

pub mod authres;
pub mod case;
pub mod classify;
pub mod commands;
pub mod decide;
pub mod engineer;
pub mod entitlement;
pub mod event;
pub mod feedback;
pub mod kb;
pub mod known_issue;
pub mod language;
pub mod outbound;
pub mod routing;
pub mod scope;
pub mod secret;
pub mod share;
pub mod signed;
pub mod sla;
pub mod staff;
pub mod thread;
pub mod token;
pub mod triage;

pub use case::{CaseNumber, Status};
