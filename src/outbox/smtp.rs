//! SMTP delivery: lettre's [`AsyncSmtpConnection`] on a TCP stream opened here.
//!
//! Why not lettre's pooled transport: lettre 0.11.23 does not set TCP_NODELAY, so every
//! message waits for the server's delayed ACK (about 45 ms per message on loopback, see
//! STACK-NOTES). Opening the socket ourselves (`set_nodelay(true)`) and handing it to
//! `connect_with_transport` avoids the stall, and lets implicit TLS use the same rustls
//! configuration as IMAP ([`crate::tls::client_config`], ring only).
//!
//! - Implicit TLS (RFC 8314 §3.3): rustls handshake on our socket, then SMTP.
//! - STARTTLS (RFC 3207): lettre upgrades the session; its `TlsParameters` cannot take a
//!   `ClientConfig`, so it is built with lettre's rustls builder (ring provider, system
//!   roots) plus the configured CA file. A server without STARTTLS is an error: never a
//!   silent fall-back to plaintext.
//! - Plaintext only to a loopback host; AUTH (PLAIN or LOGIN) when a user is configured.
//! - One connection serves many messages: `RSET` (RFC 5321 §4.1.1.5) before reusing it,
//!   which also proves it is still alive; any error drops it and the next message
//!   reconnects.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::Error as LettreError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::commands::Rset;
use lettre::transport::smtp::extension::ClientId;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::config::{SmtpSettings, TlsMode, is_loopback_host};
use crate::tls::{self, TlsError};

/// Why a message was not delivered. [`SmtpError::is_permanent`]: the message can never be
/// delivered as is (5xx to MAIL/RCPT/DATA, invalid address). [`SmtpError::is_transient`]:
/// trying again later may work (4xx, refused connection, timeout). Neither: a setup
/// problem (TLS, authentication, configuration) that the admin must fix; the message
/// waits for it like for a transient error.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error(
        "refusing plaintext SMTP to {host}: smtp.tls = \"none\" is only allowed to a loopback host"
    )]
    PlaintextRefused { host: String },
    #[error("TLS configuration: {0}")]
    TlsConfig(TlsError),
    #[error("STARTTLS configuration: {0}")]
    StartTlsConfig(String),
    #[error("cannot connect to {addr}: {cause}")]
    Connect { addr: String, cause: io::Error },
    #[error("TLS handshake with {host}: {cause}")]
    Handshake { host: String, cause: io::Error },
    #[error("no answer within {limit:?} ({during})")]
    Timeout {
        limit: Duration,
        during: &'static str,
    },
    /// Greeting, EHLO, STARTTLS or AUTH failed.
    #[error("SMTP session: {0}")]
    Session(LettreError),
    /// MAIL, RCPT or DATA failed.
    #[error("{0}")]
    Transaction(LettreError),
    #[error("invalid envelope address {0:?}")]
    Address(String),
    /// AUTH XOAUTH2 refused the access token (also after fetching a new one).
    #[error("SMTP sign-in with an OAuth2 access token was refused: {0}")]
    Auth(LettreError),
    /// No access token to sign in with.
    /// (Not a `#[source]`: the message holds it already.)
    #[error("SMTP OAuth2 sign-in: {0}")]
    OAuth2(crate::oauth2::TokenError),
}

impl From<crate::oauth2::TokenError> for SmtpError {
    fn from(e: crate::oauth2::TokenError) -> Self {
        SmtpError::OAuth2(e)
    }
}

// The variants above print their cause in their own message, so they do not also
// return it as `source()`: `{:#}` (anyhow) would print it twice.
impl From<TlsError> for SmtpError {
    fn from(e: TlsError) -> Self {
        SmtpError::TlsConfig(e)
    }
}

impl SmtpError {
    /// 4xx, refused or reset connection, timeout: worth trying again later.
    pub fn is_transient(&self) -> bool {
        match self {
            SmtpError::Connect { .. } | SmtpError::Timeout { .. } => true,
            SmtpError::OAuth2(e) => e.is_transient(),
            SmtpError::Handshake { cause, .. } => cause.kind() != io::ErrorKind::InvalidData,
            SmtpError::Session(e) => lettre_transient(e) && !e.is_permanent(),
            SmtpError::Transaction(e) => lettre_transient(e),
            _ => false,
        }
    }

    /// 5xx to the message itself, or an address that cannot be used: never retried.
    pub fn is_permanent(&self) -> bool {
        match self {
            SmtpError::Transaction(e) => e.is_permanent(),
            SmtpError::Address(_) => true,
            _ => false,
        }
    }

    /// True when the failure is about the server or our setup, not this message: the
    /// other queued messages would fail the same way, so the sender backs off.
    pub fn affects_server(&self) -> bool {
        !matches!(self, SmtpError::Transaction(_) | SmtpError::Address(_))
    }

    /// The SMTP reply code, when the server answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            SmtpError::Session(e) | SmtpError::Transaction(e) => e.status().map(u16::from),
            _ => None,
        }
    }
}

/// Network, connection and unparseable-reply errors count as transient; client-side
/// refusals (no common AUTH mechanism, no STARTTLS) and TLS errors do not.
fn lettre_transient(e: &LettreError) -> bool {
    e.is_transient() || e.is_timeout() || !(e.is_permanent() || e.is_client() || e.is_tls())
}

/// A rustls stream over our own socket, in the form lettre accepts.
#[derive(Debug)]
struct TlsTcp(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncRead for TlsTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsTcp {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

/// How to secure the session, prepared once.
enum Security {
    Implicit(Arc<ClientConfig>),
    StartTls(Box<TlsParameters>),
    Plaintext,
}

/// An SMTP client that keeps one connection open across messages.
pub struct SmtpClient {
    settings: SmtpSettings,
    security: Security,
    hello: ClientId,
    conn: Option<AsyncSmtpConnection>,
    /// The open connection has carried a message already (RSET before the next one).
    used: bool,
    /// When the last message went through: a connection used moments ago needs no RSET.
    last_ok: Option<std::time::Instant>,
}

impl std::fmt::Debug for SmtpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpClient")
            .field("host", &self.settings.host)
            .field("port", &self.settings.port)
            .field("tls", &self.settings.tls)
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

impl SmtpClient {
    /// Check the settings and prepare TLS; connects lazily on the first message.
    pub fn new(settings: SmtpSettings) -> Result<SmtpClient, SmtpError> {
        let host = bare_host(&settings.host).to_string();
        let security = match settings.tls {
            TlsMode::None if !is_loopback_host(&settings.host) => {
                return Err(SmtpError::PlaintextRefused {
                    host: settings.host.clone(),
                });
            }
            TlsMode::None => Security::Plaintext,
            TlsMode::Tls => Security::Implicit(tls::client_config(settings.ca_file.as_deref())?),
            TlsMode::StartTls => {
                Security::StartTls(Box::new(starttls_parameters(&host, &settings)?))
            }
        };
        Ok(SmtpClient {
            settings,
            security,
            hello: ClientId::default(),
            conn: None,
            used: false,
            last_ok: None,
        })
    }

    /// Deliver `raw` from `sender` ("" = null sender) to `recipients`. Ok means the
    /// server answered 250 to the end of DATA: it has taken responsibility for the mail.
    pub async fn send(
        &mut self,
        sender: &str,
        recipients: &[String],
        raw: &[u8],
    ) -> Result<(), SmtpError> {
        let envelope = envelope(sender, recipients)?;
        let limit = self.settings.timeout * 4;
        let conn = self.ready_connection().await?;
        let result = match timeout(limit, conn.send(&envelope, raw)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(SmtpError::Transaction(e)),
            Err(_) => Err(SmtpError::Timeout {
                limit,
                during: "sending the message",
            }),
        };
        match result {
            Ok(()) => {
                self.used = true;
                self.last_ok = Some(std::time::Instant::now());
            }
            Err(_) => self.drop_connection().await,
        }
        result
    }

    /// Connect, secure and sign in, then QUIT (`check-config --online`).
    pub async fn check(&mut self) -> Result<(), SmtpError> {
        self.ready_connection().await?;
        self.close().await;
        Ok(())
    }

    /// QUIT and close the connection, if one is open.
    pub async fn close(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = timeout(self.settings.timeout, conn.quit()).await;
        }
        self.used = false;
    }

    async fn drop_connection(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = timeout(Duration::from_secs(2), conn.abort()).await;
        }
        self.used = false;
    }

    /// The open connection when it still answers RSET, else a new one.
    async fn ready_connection(&mut self) -> Result<&mut AsyncSmtpConnection, SmtpError> {
        let alive = match self.conn.as_mut() {
            Some(conn) if conn.has_broken() => false,
            Some(_)
                if self.used
                    && self
                        .last_ok
                        .is_some_and(|t| t.elapsed() < Duration::from_secs(2)) =>
            {
                true
            }
            Some(conn) if self.used => matches!(
                timeout(self.settings.timeout, conn.command(Rset)).await,
                Ok(Ok(_))
            ),
            Some(_) => true,
            None => false,
        };
        if !alive {
            self.drop_connection().await;
            let conn = self.connect().await?;
            self.conn = Some(conn);
        }
        self.conn.as_mut().ok_or(SmtpError::Timeout {
            limit: Duration::ZERO,
            during: "connecting",
        })
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SmtpError> {
        let Some(source) = &self.settings.oauth2 else {
            return self.connect_with(None).await;
        };
        let token = source.access_token().await?;
        match self.connect_with(Some(&token)).await {
            // Refused: once more with a freshly fetched token, on a new connection
            // (lettre gives up on the server's error challenge mid-AUTH).
            Err(SmtpError::Auth(_)) => {
                let token = source.renew_after_refusal(&token).await?;
                self.connect_with(Some(&token)).await
            }
            other => other,
        }
    }

    /// Greeting, EHLO, STARTTLS, then AUTH: PLAIN/LOGIN with the password, or XOAUTH2
    /// with `token`.
    async fn connect_with(
        &self,
        token: Option<&crate::config::Secret>,
    ) -> Result<AsyncSmtpConnection, SmtpError> {
        let limit = self.settings.timeout;
        let stream = self.open_stream().await?;
        let mut conn = timeout(
            limit,
            AsyncSmtpConnection::connect_with_transport(stream, &self.hello),
        )
        .await
        .map_err(|_| SmtpError::Timeout {
            limit,
            during: "greeting and EHLO",
        })?
        .map_err(SmtpError::Session)?;
        if let Security::StartTls(params) = &self.security {
            timeout(limit, conn.starttls((**params).clone(), &self.hello))
                .await
                .map_err(|_| SmtpError::Timeout {
                    limit,
                    during: "STARTTLS",
                })?
                .map_err(SmtpError::Session)?;
        }
        if let Some(user) = &self.settings.username {
            let (secret, mechanisms, wrap): (_, &[Mechanism], fn(LettreError) -> SmtpError) =
                match token {
                    Some(t) => (
                        t.expose().to_string(),
                        &[Mechanism::Xoauth2],
                        SmtpError::Auth,
                    ),
                    None => (
                        self.settings
                            .password
                            .as_ref()
                            .map(|p| p.expose().to_string())
                            .unwrap_or_default(),
                        &[Mechanism::Plain, Mechanism::Login],
                        SmtpError::Session,
                    ),
                };
            let credentials = Credentials::new(user.clone(), secret);
            let result = timeout(limit, conn.auth(mechanisms, &credentials))
                .await
                .map_err(|_| SmtpError::Timeout {
                    limit,
                    during: "AUTH",
                })?;
            if let Err(e) = result {
                // A failed XOAUTH2 can leave the server waiting for our answer to its
                // challenge: this connection is done.
                let _ = timeout(Duration::from_secs(2), conn.abort()).await;
                return Err(wrap(e));
            }
        }
        tracing::debug!(host = %self.settings.host, port = self.settings.port, tls = ?self.settings.tls, "SMTP connected");
        Ok(conn)
    }

    /// TCP with TCP_NODELAY (no delayed-ACK stall per command), then TLS when implicit.
    async fn open_stream(&self) -> Result<Box<dyn AsyncTokioStream>, SmtpError> {
        let limit = self.settings.timeout;
        let host = bare_host(&self.settings.host);
        let addr = format!("{host}:{}", self.settings.port);
        let tcp = timeout(limit, TcpStream::connect((host, self.settings.port)))
            .await
            .map_err(|_| SmtpError::Timeout {
                limit,
                during: "connecting",
            })?
            .map_err(|source| SmtpError::Connect {
                addr: addr.clone(),
                cause: source,
            })?;
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let Security::Implicit(config) = &self.security else {
            return Ok(Box::new(tcp));
        };
        let name = tls::server_name(host)?;
        let tls = timeout(
            limit,
            tokio_rustls::TlsConnector::from(config.clone()).connect(name, tcp),
        )
        .await
        .map_err(|_| SmtpError::Timeout {
            limit,
            during: "TLS handshake",
        })?
        .map_err(|source| SmtpError::Handshake {
            host: host.to_string(),
            cause: source,
        })?;
        Ok(Box::new(TlsTcp(tls)))
    }
}

/// `[::1]` -> `::1`: sockets and certificate names take the bare form.
fn bare_host(host: &str) -> &str {
    host.trim().trim_start_matches('[').trim_end_matches(']')
}

fn starttls_parameters(host: &str, settings: &SmtpSettings) -> Result<TlsParameters, SmtpError> {
    let mut builder = TlsParameters::builder(host.to_string());
    if let Some(path) = &settings.ca_file {
        let pem = std::fs::read(path).map_err(|source| TlsError::ReadCaFile {
            path: path.clone(),
            cause: source,
        })?;
        let cert = Certificate::from_pem(&pem)
            .map_err(|e| SmtpError::StartTlsConfig(format!("CA file {}: {e}", path.display())))?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build_rustls()
        .map_err(|e| SmtpError::StartTlsConfig(e.to_string()))
}

fn envelope(sender: &str, recipients: &[String]) -> Result<Envelope, SmtpError> {
    let parse =
        |a: &str| crate::mail::compose::address(a).map_err(|_| SmtpError::Address(a.to_string()));
    let from = if sender.trim().is_empty() {
        None
    } else {
        Some(parse(sender)?)
    };
    let to = recipients
        .iter()
        .map(|r| parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    Envelope::new(from, to).map_err(|_| SmtpError::Address(recipients.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(host: &str, tls: TlsMode) -> SmtpSettings {
        SmtpSettings {
            host: host.into(),
            port: 25,
            tls,
            ca_file: None,
            username: None,
            password: None,
            oauth2: None,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn plaintext_only_to_loopback() {
        let err = SmtpClient::new(settings("smtp.example.com", TlsMode::None)).unwrap_err();
        assert!(matches!(err, SmtpError::PlaintextRefused { .. }));
        assert!(err.to_string().contains("loopback"), "{err}");
        assert!(!err.is_transient() && !err.is_permanent());
        assert!(SmtpClient::new(settings("127.0.0.1", TlsMode::None)).is_ok());
        assert!(SmtpClient::new(settings("[::1]", TlsMode::None)).is_ok());
        assert!(SmtpClient::new(settings("localhost", TlsMode::None)).is_ok());
    }

    #[test]
    fn envelope_addresses_are_checked() {
        assert!(envelope("", &["a@example.com".into()]).is_ok());
        let err = envelope("support@example.com", &["not an address".into()]).unwrap_err();
        assert!(err.is_permanent());
        assert!(envelope("support@example.com", &[]).is_err());
    }

    #[tokio::test]
    async fn refused_connection_is_transient() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut s = settings("127.0.0.1", TlsMode::None);
        s.port = port;
        let mut client = SmtpClient::new(s).unwrap();
        let err = client
            .send(
                "a@example.com",
                &["b@example.com".into()],
                b"Subject: x\r\n\r\nx\r\n",
            )
            .await
            .unwrap_err();
        assert!(matches!(err, SmtpError::Connect { .. }), "{err:?}");
        assert!(err.is_transient() && !err.is_permanent() && err.affects_server());
    }
}
