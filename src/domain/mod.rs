//! The domain rules, PURE: no I/O, no clock reads (`now` is an argument).
//! Nothing in here imports the I/O modules (`store`, `imap`, `outbox`).

pub mod case;
pub mod decide;
pub mod thread;

pub use case::{CaseNumber, Status};
