//! What can go wrong talking to the IMAP server, sorted by what the daemon should do next.

use std::io;
use std::time::Duration;

use crate::tls::TlsError;

/// An IMAP failure. [`ImapError::is_transient`] tells the daemon whether to reconnect with
/// backoff (network trouble, server busy) or to stop and tell the admin (configuration).
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// Plaintext to a remote host would send the password in the clear.
    #[error("imap.tls = \"none\" is only allowed for a loopback host, not {host}")]
    PlaintextNotAllowed { host: String },
    #[error(transparent)]
    TlsConfig(#[from] TlsError),
    #[error("cannot connect to {addr}: {cause}")]
    Connect { addr: String, cause: io::Error },
    /// A certificate or protocol problem is permanent; a reset during the handshake is not.
    #[error("TLS handshake with {host} failed: {cause}")]
    Handshake { host: String, cause: io::Error },
    #[error("{host} refused STARTTLS: {detail}")]
    StartTls { host: String, detail: String },
    #[error("{step} timed out after {}s", after.as_secs_f32())]
    Timeout { step: String, after: Duration },
    /// The server said BYE instead of a greeting (overloaded, shutting down).
    #[error("server unavailable: {detail}")]
    Unavailable { detail: String },
    #[error("login as {user:?} failed: {detail}")]
    Login {
        user: String,
        detail: String,
        temporary: bool,
    },
    /// The mailbox does not exist or cannot be opened or created.
    #[error("mailbox {name:?}: {detail}")]
    Mailbox { name: String, detail: String },
    /// The message is no longer in the mailbox (expunged by someone else since listing).
    /// Transient: the next listing will not show it.
    #[error("message UID {uid} is no longer in the mailbox")]
    NoSuchMessage { uid: u32 },
    /// The server answered NO or BAD.
    #[error("{command} failed: {detail}")]
    Command {
        command: String,
        detail: String,
        temporary: bool,
    },
    #[error("connection lost during {command}: {cause}")]
    Io { command: String, cause: io::Error },
    #[error("connection lost during {command}")]
    ConnectionLost { command: String },
    #[error("unexpected server response to {command}: {detail}")]
    Protocol { command: String, detail: String },
    /// A value we were asked to send cannot be expressed in IMAP (e.g. a line break in a name).
    #[error("invalid IMAP argument: {0}")]
    Invalid(String),
    /// An earlier timeout or connection error left the session unusable: reconnect.
    #[error("the IMAP connection was closed after an earlier error")]
    Closed,
    /// No OAuth2 access token to sign in with.
    /// (Not a `#[source]`: the message holds it already.)
    #[error("OAuth2 sign-in: {0}")]
    OAuth2(crate::oauth2::TokenError),
}

impl From<crate::oauth2::TokenError> for ImapError {
    fn from(e: crate::oauth2::TokenError) -> Self {
        ImapError::OAuth2(e)
    }
}

impl ImapError {
    /// True when retrying later (after reconnecting) may succeed without anyone changing
    /// the configuration or the server.
    pub fn is_transient(&self) -> bool {
        match self {
            ImapError::Connect { .. }
            | ImapError::Timeout { .. }
            | ImapError::Unavailable { .. }
            | ImapError::Io { .. }
            | ImapError::ConnectionLost { .. }
            | ImapError::NoSuchMessage { .. }
            | ImapError::Closed => true,
            // Even a revoked refresh token is retried (with backoff, saying why each
            // time): the daemon keeps sending and timing while an admin signs in again,
            // instead of exiting into a restart loop.
            ImapError::OAuth2(_) => true,
            ImapError::Handshake { cause, .. } => !is_rustls_error(cause),
            ImapError::Login { temporary, .. } | ImapError::Command { temporary, .. } => *temporary,
            ImapError::PlaintextNotAllowed { .. }
            | ImapError::TlsConfig(_)
            | ImapError::StartTls { .. }
            | ImapError::Mailbox { .. }
            | ImapError::Protocol { .. }
            | ImapError::Invalid(_) => false,
        }
    }

    /// True for a NO or BAD that waiting will not change.
    pub(crate) fn is_refusal(&self) -> bool {
        matches!(
            self,
            ImapError::Command {
                temporary: false,
                ..
            }
        )
    }

    /// A NO [EXPUNGEISSUED] (RFC 5530): some of the messages named were expunged by
    /// another session (another client, another casegate) since this one last looked.
    pub(crate) fn is_expunge_issued(&self) -> bool {
        matches!(self, ImapError::Command { detail, .. } if detail.contains("[EXPUNGEISSUED]"))
    }

    /// True when the session can no longer be trusted to be in step with the server.
    pub(crate) fn breaks_connection(&self) -> bool {
        matches!(
            self,
            ImapError::Timeout { .. } | ImapError::Io { .. } | ImapError::ConnectionLost { .. }
        )
    }

    /// Maps an async-imap error of `command` to ours.
    pub(crate) fn from_imap(command: &str, err: async_imap::error::Error) -> Self {
        use async_imap::error::Error as E;
        let command = command.to_owned();
        match err {
            E::Io(source) => ImapError::Io {
                command,
                cause: source,
            },
            E::ConnectionLost => ImapError::ConnectionLost { command },
            E::No(detail) | E::Bad(detail) => ImapError::Command {
                temporary: is_temporary(&detail),
                command,
                detail,
            },
            E::Validate(e) => ImapError::Invalid(e.to_string()),
            other => ImapError::Protocol {
                command,
                detail: other.to_string(),
            },
        }
    }
}

/// RFC 5530 codes saying "try again later". imap-proto does not parse them, so they stay
/// at the start of the response text.
pub(crate) fn is_temporary(detail: &str) -> bool {
    detail.contains("[UNAVAILABLE]") || detail.contains("[INUSE]")
}

/// rustls reports certificate and protocol failures as an `io::Error` wrapping its own error.
fn is_rustls_error(err: &io::Error) -> bool {
    err.get_ref()
        .is_some_and(|inner| inner.is::<rustls::Error>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_trouble_is_transient_and_configuration_is_not() {
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(
            ImapError::Connect {
                addr: "h:1".into(),
                cause: reset
            }
            .is_transient()
        );
        assert!(
            ImapError::ConnectionLost {
                command: "NOOP".into()
            }
            .is_transient()
        );
        assert!(!ImapError::PlaintextNotAllowed { host: "h".into() }.is_transient());
        let login = |detail: &str| ImapError::Login {
            user: "u".into(),
            detail: detail.into(),
            temporary: is_temporary(detail),
        };
        assert!(!login("[AUTHENTICATIONFAILED] Authentication failed.").is_transient());
        assert!(login("[UNAVAILABLE] Temporary authentication failure.").is_transient());
    }

    #[test]
    fn invalid_certificate_is_permanent_but_reset_handshake_is_not() {
        let cert = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let bad_cert = io::Error::new(io::ErrorKind::InvalidData, cert);
        assert!(
            !ImapError::Handshake {
                host: "h".into(),
                cause: bad_cert
            }
            .is_transient()
        );
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(
            ImapError::Handshake {
                host: "h".into(),
                cause: reset
            }
            .is_transient()
        );
    }
}
