//! Opening an authenticated session: TCP, TLS (implicit or STARTTLS), greeting, then
//! LOGIN or (OAuth2) AUTHENTICATE XOAUTH2 / OAUTHBEARER.

use std::fmt;

use async_imap::Client;
use async_imap::imap_proto::{Response, Status};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tracing::debug;

use super::command::timed;
use super::error::ImapError;
use super::protocol::outcome_detail;
use crate::config::{ImapAuth, ImapSettings, SaslChoice, Secret, TlsMode, is_loopback_host};
use crate::oauth2::TokenSource;
use crate::tls;

/// The byte stream under a session, so plain TCP (loopback only) and TLS share one type.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> Transport for T {}

pub(crate) type Stream = Box<dyn Transport>;
pub(crate) type Session = async_imap::Session<Stream>;

/// Connects, secures the connection as `settings.tls` says, reads the greeting, logs in.
pub(crate) async fn open_session(settings: &ImapSettings) -> Result<Session, ImapError> {
    // Check everything that needs no network first, so configuration errors are immediate.
    let tls = tls_connector(settings)?;
    let tcp = connect_tcp(settings).await?;
    let client = match (settings.tls, tls) {
        (TlsMode::StartTls, Some(tls)) => Client::new(starttls(tcp, tls, settings).await?),
        (_, Some(tls)) => greeted(handshake(tcp, tls, settings).await?, settings).await?,
        (_, None) => greeted(Box::new(tcp), settings).await?,
    };
    match &settings.auth {
        ImapAuth::Password => login(client, settings).await,
        ImapAuth::OAuth2 { source, mechanism } => {
            oauth2_login(client, settings, source, *mechanism).await
        }
    }
}

type Tls = (TlsConnector, rustls_pki_types::ServerName<'static>);

/// The TLS connector for `settings`, or `None` for plaintext (refused unless loopback).
fn tls_connector(settings: &ImapSettings) -> Result<Option<Tls>, ImapError> {
    if settings.tls == TlsMode::None {
        if !is_loopback_host(&settings.host) {
            return Err(ImapError::PlaintextNotAllowed {
                host: settings.host.clone(),
            });
        }
        return Ok(None);
    }
    let config = tls::client_config(settings.ca_file.as_deref())?;
    Ok(Some((
        TlsConnector::from(config),
        tls::server_name(&settings.host)?,
    )))
}

async fn connect_tcp(settings: &ImapSettings) -> Result<TcpStream, ImapError> {
    let host = settings.host.trim_start_matches('[').trim_end_matches(']');
    let addr = format!("{}:{}", settings.host, settings.port);
    debug!(%addr, tls = ?settings.tls, "imap connect");
    let tcp = timed(
        settings.timeout,
        &format!("connect to {addr}"),
        TcpStream::connect((host, settings.port)),
    )
    .await?
    .map_err(|source| ImapError::Connect {
        addr,
        cause: source,
    })?;
    // IMAP is request/response in small writes (IDLE's DONE especially): do not let Nagle delay them.
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

async fn handshake(
    tcp: TcpStream,
    (connector, name): Tls,
    settings: &ImapSettings,
) -> Result<Stream, ImapError> {
    let tls: TlsStream<TcpStream> = timed(
        settings.timeout,
        "TLS handshake",
        connector.connect(name, tcp),
    )
    .await?
    .map_err(|source| ImapError::Handshake {
        host: settings.host.clone(),
        cause: source,
    })?;
    Ok(Box::new(tls))
}

/// Greeting in plaintext, STARTTLS, then the TLS handshake (RFC 3501 §6.2.1). Bytes the
/// server sent after its OK are dropped with the plaintext client, as RFC 2595 §3.1 asks.
async fn starttls(tcp: TcpStream, tls: Tls, settings: &ImapSettings) -> Result<Stream, ImapError> {
    let mut client = Client::new(tcp);
    read_greeting(&mut client, settings).await?;
    debug!("imap > STARTTLS");
    timed(
        settings.timeout,
        "STARTTLS",
        client.run_command_and_check_ok("STARTTLS", None),
    )
    .await?
    .map_err(|e| match ImapError::from_imap("STARTTLS", e) {
        ImapError::Command { detail, .. } => ImapError::StartTls {
            host: settings.host.clone(),
            detail,
        },
        other => other,
    })?;
    handshake(client.into_inner(), tls, settings).await
}

/// async-imap's `Client::new` does not read the greeting; the first command would then
/// take it for its own answer.
async fn greeted(stream: Stream, settings: &ImapSettings) -> Result<Client<Stream>, ImapError> {
    let mut client = Client::new(stream);
    read_greeting(&mut client, settings).await?;
    Ok(client)
}

async fn read_greeting<T: Transport>(
    client: &mut Client<T>,
    settings: &ImapSettings,
) -> Result<(), ImapError> {
    let step = "greeting";
    let greeting = timed(settings.timeout, step, client.read_response())
        .await?
        .map_err(|source| ImapError::Io {
            command: step.into(),
            cause: source,
        })?
        .ok_or_else(|| ImapError::ConnectionLost {
            command: step.into(),
        })?;
    match greeting.parsed() {
        Response::Data {
            status: Status::Ok | Status::PreAuth,
            ..
        } => Ok(()),
        Response::Data {
            status: Status::Bye,
            outcome,
        } => Err(ImapError::Unavailable {
            detail: outcome_detail(outcome),
        }),
        other => Err(ImapError::Protocol {
            command: step.into(),
            detail: format!("{other:?}"),
        }),
    }
}

async fn login(client: Client<Stream>, settings: &ImapSettings) -> Result<Session, ImapError> {
    let user = &settings.username;
    debug!(%user, "imap > LOGIN (password withheld)");
    let attempt = client.login(user, settings.password.expose());
    match timed(settings.timeout, "LOGIN", attempt).await? {
        Ok(session) => Ok(session),
        Err((err, _client)) => Err(login_error(user, err)),
    }
}

fn login_error(user: &str, err: async_imap::error::Error) -> ImapError {
    let user = user.to_owned();
    match ImapError::from_imap("LOGIN", err) {
        ImapError::Command {
            detail, temporary, ..
        } => ImapError::Login {
            user,
            detail,
            temporary,
        },
        ImapError::Invalid(_) => ImapError::Login {
            user,
            detail: "the username or password contains a line break".into(),
            temporary: false,
        },
        other => other,
    }
}

/// The SASL mechanisms for bearer tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BearerMech {
    XOAuth2,
    OAuthBearer,
}

impl BearerMech {
    fn name(self) -> &'static str {
        match self {
            BearerMech::XOAuth2 => "XOAUTH2",
            BearerMech::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// Answers the server: the initial response first; any later challenge (the JSON error
/// a server sends before refusing a token) with the empty response SASL asks for.
struct BearerAuth {
    first: Option<Secret>,
}

impl async_imap::Authenticator for BearerAuth {
    type Response = Vec<u8>;
    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        self.first
            .take()
            .map(|s| s.expose().as_bytes().to_vec())
            .unwrap_or_default()
    }
}

/// AUTHENTICATE with an access token; when the server refuses it, once more with a
/// freshly fetched one (it may have expired early, or been revoked and re-granted).
async fn oauth2_login(
    mut client: Client<Stream>,
    settings: &ImapSettings,
    source: &TokenSource,
    choice: SaslChoice,
) -> Result<Session, ImapError> {
    let offered = auth_capabilities(&mut client, settings).await?;
    let has = |m: &str| offered.iter().any(|o| o.eq_ignore_ascii_case(m));
    let mech = match choice {
        SaslChoice::XOAuth2 => BearerMech::XOAuth2,
        SaslChoice::OAuthBearer => BearerMech::OAuthBearer,
        SaslChoice::Auto if has("OAUTHBEARER") => BearerMech::OAuthBearer,
        SaslChoice::Auto => BearerMech::XOAuth2,
    };
    if !has(mech.name()) {
        return Err(ImapError::Login {
            user: settings.username.clone(),
            detail: format!(
                "the server does not offer AUTH={} (it offers: {})",
                mech.name(),
                if offered.is_empty() {
                    "none".to_string()
                } else {
                    offered.join(" ")
                }
            ),
            temporary: false,
        });
    }
    let mut token = source.access_token().await?;
    let mut retried = false;
    loop {
        let response = match mech {
            BearerMech::XOAuth2 => crate::oauth2::xoauth2_response(&settings.username, &token),
            BearerMech::OAuthBearer => crate::oauth2::oauthbearer_response(
                &settings.username,
                &settings.host,
                settings.port,
                &token,
            ),
        };
        debug!(user = %settings.username, mechanism = mech.name(), "imap > AUTHENTICATE (token withheld)");
        let attempt = client.authenticate(
            mech.name(),
            BearerAuth {
                first: Some(response),
            },
        );
        match timed(settings.timeout, "AUTHENTICATE", attempt).await? {
            Ok(session) => return Ok(session),
            Err((err, back)) => {
                let err = login_error(&settings.username, err);
                let refused = matches!(
                    err,
                    ImapError::Login {
                        temporary: false,
                        ..
                    }
                );
                if !refused || retried {
                    return Err(match err {
                        ImapError::Login {
                            user,
                            detail,
                            temporary,
                        } => ImapError::Login {
                            user,
                            detail: format!(
                                "{detail} ({} with a fresh access token: check that the token's user is {:?} and that the app may use IMAP)",
                                mech.name(),
                                settings.username
                            ),
                            temporary,
                        },
                        other => other,
                    });
                }
                retried = true;
                client = back;
                token = source.renew_after_refusal(&token).await?;
            }
        }
    }
}

/// The `AUTH=` mechanisms of a CAPABILITY answer, before signing in.
async fn auth_capabilities(
    client: &mut Client<Stream>,
    settings: &ImapSettings,
) -> Result<Vec<String>, ImapError> {
    use async_imap::imap_proto::Capability;
    use tokio::io::AsyncWriteExt;
    let step = "CAPABILITY";
    // async-imap runs tagged commands of its own only; nothing is buffered before the
    // first command, so this one goes straight to the stream under our own tag.
    const TAG: &str = "cgcap";
    let io = |cause| ImapError::Io {
        command: step.into(),
        cause,
    };
    let stream = client.get_mut();
    timed(
        settings.timeout,
        step,
        stream.write_all(format!("{TAG} {step}\r\n").as_bytes()),
    )
    .await?
    .map_err(io)?;
    timed(settings.timeout, step, stream.flush())
        .await?
        .map_err(io)?;
    let mut mechanisms = Vec::new();
    loop {
        let response = timed(settings.timeout, step, client.read_response())
            .await?
            .map_err(io)?
            .ok_or_else(|| ImapError::ConnectionLost {
                command: step.into(),
            })?;
        match response.parsed() {
            Response::Capabilities(caps) => {
                for cap in caps {
                    if let Capability::Auth(m) = cap {
                        mechanisms.push(m.to_string());
                    }
                }
            }
            Response::Done {
                tag: done,
                status,
                outcome,
                ..
            } if done.0 == TAG => {
                if *status != Status::Ok {
                    return Err(ImapError::Protocol {
                        command: step.into(),
                        detail: outcome_detail(outcome),
                    });
                }
                return Ok(mechanisms);
            }
            _ => {}
        }
    }
}
