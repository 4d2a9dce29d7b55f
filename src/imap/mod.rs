//! The IMAP source, client side: connect (TLS, STARTTLS, or plaintext on loopback only),
//! list and fetch by UID from a checkpoint, move settled mail away, wait with IDLE.
//!
//! Built on async-imap over tokio. Its FETCH/STORE streams end quietly on NO/BAD or a
//! dropped connection, so commands here are run through our own reader (`command`),
//! which turns both into errors. async-imap still provides framing, parsing, LOGIN
//! and IDLE.
//!
//! New mail is found by `UID FETCH` from a checkpoint, never from unsolicited EXISTS
//! notices alone (async-imap drops them once its channel of 100 is full).

mod backoff;
mod client;
mod command;
mod connect;
mod error;
mod idle;
mod protocol;

use chrono::{DateTime, Utc};

pub use backoff::Backoff;
pub use client::ImapClient;
pub use error::ImapError;

/// The state of a mailbox when selected. UIDs are only comparable within one `uid_validity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selected {
    pub uid_validity: u32,
    pub uid_next: Option<u32>,
    pub exists: u32,
}

/// What is known of a message before fetching it (to skip oversized ones unread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailMeta {
    pub uid: u32,
    /// RFC822.SIZE in bytes.
    pub size: u32,
    /// When the server received it: the case's receipt time.
    pub internal_date: DateTime<Utc>,
}

/// A whole message as stored on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedMail {
    pub uid: u32,
    pub internal_date: DateTime<Utc>,
    pub raw: Vec<u8>,
}

/// Why [`ImapClient::idle_wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleEnd {
    /// The server reported a change in the mailbox.
    NewMail,
    Timeout,
    Shutdown,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ImapSettings;
    use crate::runtime::Shutdown;
    use std::time::Duration;

    /// The daemon runs the source in a spawned task: every future must be `Send`.
    #[allow(dead_code)]
    fn client_futures_are_send(c: &mut ImapClient, s: &ImapSettings, stop: &mut Shutdown) {
        fn send<T: Send>(_: T) {}
        send(ImapClient::connect(s));
        send(c.list_after(0));
        send(c.fetch(&[]));
        send(c.move_to(&[], "x"));
        send(c.idle_wait(Duration::ZERO, stop));
    }
}
