//! Access tokens for IMAP and SMTP: fetched from the token endpoint (RFC 6749), cached,
//! refreshed shortly before they expire and once more when a server refuses one.
//!
//! A rotated refresh token is written to its file atomically (temporary file, fsync,
//! rename, fsync of the folder) before the access token that came with it is used, so a
//! crash at any point leaves the file holding a refresh token the provider still honours.
//! After a failed request the source waits (1 s, doubling up to 5 minutes) before asking
//! the token endpoint again; in between it answers with the last failure. No token or
//! secret is ever logged or put in an error message.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;
use tokio::sync::Mutex;
use tracing::{debug, info};

use super::http::{self, HttpError};
use super::settings::{Grant, OAuth2Settings};
use crate::domain::secret::Secret;

/// Why no access token could be had. [`TokenError::is_transient`]: trying later may work
/// without anyone changing anything.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error(
        "the refresh token was refused (invalid_grant: {description}): it was revoked, expired or already used; sign in again with `casegate oauth2 login`"
    )]
    Revoked { description: String },
    #[error(
        "the token endpoint does not accept client {client_id:?} (invalid_client: {description}): check oauth2.client_id and the client secret"
    )]
    InvalidClient {
        client_id: String,
        description: String,
    },
    #[error("the token endpoint refused the request ({code}: {description})")]
    Refused { code: String, description: String },
    #[error("cannot reach the token endpoint: {0}")]
    Network(HttpError),
    #[error("the token endpoint {url} answered HTTP {status} without a usable reason")]
    Server { url: String, status: u16 },
    #[error(
        "cannot read the refresh token file {path}: {detail}; sign in with `casegate oauth2 login`"
    )]
    TokenFile { path: String, detail: String },
    #[error("oauth2.service_account_key_file {path}: {detail}")]
    KeyFile { path: String, detail: String },
    #[error("oauth2: {0}")]
    Setup(String),
    #[error("cannot save the new refresh token to {path}: {detail}")]
    SaveToken { path: String, detail: String },
    /// The last request failed moments ago: not asking again yet.
    #[error("{last} (next try in {}s)", retry_in.as_secs().max(1))]
    BackingOff {
        last: Box<TokenError>,
        retry_in: Duration,
    },
}

impl From<HttpError> for TokenError {
    fn from(e: HttpError) -> Self {
        TokenError::Network(e)
    }
}

impl TokenError {
    pub fn is_transient(&self) -> bool {
        match self {
            TokenError::Network(_) | TokenError::SaveToken { .. } => true,
            TokenError::Server { status, .. } => *status >= 500 || *status == 429,
            TokenError::BackingOff { last, .. } => last.is_transient(),
            _ => false,
        }
    }
}

/// The answer of a successful token request (RFC 6749 §5.1).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// RFC 6749 §5.2.
#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

#[derive(Default)]
struct State {
    access: Option<(Secret, Instant)>,
    /// A rotated refresh token that could not be saved: the file's one is used up.
    unsaved: Option<Secret>,
    failures: u32,
    blocked: Option<(Instant, TokenError)>,
}

/// One account's access tokens, shared by the IMAP source and the SMTP sender.
pub struct TokenSource {
    settings: Arc<OAuth2Settings>,
    state: Mutex<State>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.settings.token_url)
            .field("client_id", &self.settings.client_id)
            .field("grant", &self.settings.grant)
            .finish_non_exhaustive()
    }
}

/// Two sources are the same when their settings are (a reload compares them; the
/// tokens in hand are state, not configuration).
impl PartialEq for TokenSource {
    fn eq(&self, other: &Self) -> bool {
        self.settings == other.settings
    }
}

impl TokenSource {
    pub fn new(settings: Arc<OAuth2Settings>) -> TokenSource {
        TokenSource {
            settings,
            state: Mutex::new(State::default()),
        }
    }

    pub fn settings(&self) -> &OAuth2Settings {
        &self.settings
    }

    /// A valid access token: the cached one unless it expires soon.
    pub async fn access_token(&self) -> Result<Secret, TokenError> {
        let mut state = self.state.lock().await;
        if let Some((token, expires)) = &state.access
            && Instant::now() < *expires
        {
            return Ok(token.clone());
        }
        self.fetch(&mut state).await
    }

    /// A server refused `rejected`: forget it and get a new one (unless another task did
    /// already).
    pub async fn renew_after_refusal(&self, rejected: &Secret) -> Result<Secret, TokenError> {
        let mut state = self.state.lock().await;
        if let Some((token, expires)) = &state.access
            && token != rejected
            && Instant::now() < *expires
        {
            return Ok(token.clone());
        }
        state.access = None;
        info!("the server refused the access token; asking the token endpoint for a new one");
        self.fetch(&mut state).await
    }

    async fn fetch(&self, state: &mut State) -> Result<Secret, TokenError> {
        if let Some((until, last)) = &state.blocked {
            let now = Instant::now();
            if now < *until {
                return Err(TokenError::BackingOff {
                    last: Box::new(last.clone()),
                    retry_in: *until - now,
                });
            }
        }
        match self.request(state).await {
            Ok(token) => {
                state.failures = 0;
                state.blocked = None;
                Ok(token)
            }
            Err(e) => {
                state.failures = state.failures.saturating_add(1);
                let wait = Duration::from_secs(1u64 << state.failures.min(9).saturating_sub(1))
                    .min(Duration::from_secs(300));
                // The caller reports the error (once); this only notes the pause.
                debug!(
                    retry_in_secs = wait.as_secs(),
                    "token request failed; pausing"
                );
                state.blocked = Some((Instant::now() + wait, e.clone()));
                Err(e)
            }
        }
    }

    async fn request(&self, state: &mut State) -> Result<Secret, TokenError> {
        let s = &self.settings;
        let scope = s.scopes.join(" ");
        let mut fields: Vec<(&str, String)> = Vec::new();
        let mut used = None;
        match s.grant {
            Grant::RefreshToken => {
                // The file is read each time: `oauth2 login`, `check-config --online` or
                // another instance may have rotated the token since. Only a rotated
                // token that could not be saved comes from memory.
                let refresh = match &state.unsaved {
                    Some(r) => r.clone(),
                    None => read_refresh_token(&s.refresh_token_file)?,
                };
                fields.push(("grant_type", "refresh_token".into()));
                fields.push(("refresh_token", refresh.expose().to_string()));
                used = Some(refresh);
            }
            Grant::ClientCredentials => {
                fields.push(("grant_type", "client_credentials".into()));
                fields.push(("scope", scope));
            }
            Grant::ServiceAccount => {
                let assertion = super::jwt::service_account_assertion(s)?;
                fields.push(("grant_type", super::jwt::GRANT_TYPE.into()));
                fields.push(("assertion", assertion.expose().to_string()));
                // No client authentication: the signed assertion is the credential.
                let response = http::post_form(
                    &s.token_url,
                    &form(&fields),
                    None,
                    s.ca_file.as_deref(),
                    s.timeout,
                )
                .await?;
                let answer = parse_token_response(s, response.status, &response.body)?;
                return Ok(self.keep(state, answer.access_token, answer.expires_in));
            }
        }
        let answer = token_request(s, fields).await?;
        if let Some(new) = answer.refresh_token.filter(|t| !t.is_empty()) {
            let new = Secret::new(new);
            if used.as_ref() != Some(&new) {
                // Kept in memory until saved: the next try refreshes with it (and saves
                // the token that brings) instead of the used-up one in the file.
                state.unsaved = Some(new.clone());
                save_refresh_token(&s.refresh_token_file, &new)?;
                state.unsaved = None;
                debug!(file = %s.refresh_token_file.display(), "saved the rotated refresh token");
            }
        }
        Ok(self.keep(state, answer.access_token, answer.expires_in))
    }

    /// Caches a new access token until shortly before it expires.
    fn keep(&self, state: &mut State, token: String, expires_in: Option<u64>) -> Secret {
        let lifetime = Duration::from_secs(expires_in.unwrap_or(3600));
        // Renew a little before the end: a sixth of the lifetime, at most a minute.
        let margin = (lifetime / 6).min(Duration::from_secs(60));
        let token = Secret::new(token);
        state.access = Some((token.clone(), Instant::now() + lifetime - margin));
        debug!(
            expires_in_secs = lifetime.as_secs(),
            "got an OAuth2 access token"
        );
        token
    }
}

/// POST a token request with the client's credentials; the parsed success answer.
pub(crate) async fn token_request(
    s: &OAuth2Settings,
    fields: Vec<(&str, String)>,
) -> Result<TokenResponseOut, TokenError> {
    let response = post_as_client(s, &s.token_url, fields).await?;
    parse_token_response(s, response.status, &response.body)
}

/// POST `fields` to `url` as the configured client.
pub(crate) async fn post_as_client(
    s: &OAuth2Settings,
    url: &str,
    mut fields: Vec<(&str, String)>,
) -> Result<http::Response, TokenError> {
    // A confidential client authenticates with HTTP Basic (RFC 6749 §2.3.1); a public
    // one (no secret: device code, PKCE) names itself in the body.
    let basic = s.client_secret.as_ref().map(|secret| {
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            form_component(&s.client_id),
            form_component(secret.expose())
        ))
    });
    if basic.is_none() {
        fields.push(("client_id", s.client_id.clone()));
    }
    let body = form(&fields);
    Ok(http::post_form(
        url,
        &body,
        basic.as_deref(),
        s.ca_file.as_deref(),
        s.timeout,
    )
    .await?)
}

/// A token endpoint's success answer, for callers outside this module (login).
pub(crate) struct TokenResponseOut {
    pub access_token: String,
    pub expires_in: Option<u64>,
    pub refresh_token: Option<String>,
}

pub(crate) fn parse_token_response(
    s: &OAuth2Settings,
    status: u16,
    body: &[u8],
) -> Result<TokenResponseOut, TokenError> {
    if status == 200 {
        return match serde_json::from_slice::<TokenResponse>(body) {
            Ok(t) => Ok(TokenResponseOut {
                access_token: t.access_token,
                expires_in: t.expires_in,
                refresh_token: t.refresh_token,
            }),
            Err(_) => Err(TokenError::Server {
                url: s.token_url.clone(),
                status,
            }),
        };
    }
    let Ok(e) = serde_json::from_slice::<ErrorResponse>(body) else {
        return Err(TokenError::Server {
            url: s.token_url.clone(),
            status,
        });
    };
    let description = e
        .error_description
        .unwrap_or_else(|| "no description".into())
        .chars()
        .take(300)
        .collect::<String>();
    Err(match e.error.as_str() {
        "invalid_grant" if s.grant == Grant::RefreshToken => TokenError::Revoked { description },
        "invalid_client" | "unauthorized_client" => TokenError::InvalidClient {
            client_id: s.client_id.clone(),
            description,
        },
        _ => TokenError::Refused {
            code: e.error.chars().take(64).collect(),
            description,
        },
    })
}

/// `application/x-www-form-urlencoded`.
pub(crate) fn form(fields: &[(&str, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter().map(|(k, v)| (*k, v.as_str())))
        .finish()
}

/// Client id and secret are form-encoded before Basic (RFC 6749 §2.3.1).
fn form_component(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The first line of the refresh token file.
pub fn read_refresh_token(path: &Path) -> Result<Secret, TokenError> {
    let err = |detail: String| TokenError::TokenFile {
        path: path.display().to_string(),
        detail,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let line = text.lines().next().unwrap_or_default().trim();
    if line.is_empty() {
        return Err(err("the file is empty".into()));
    }
    Ok(Secret::new(line))
}

/// Replace the refresh token file atomically and durably; mode 0600.
pub fn save_refresh_token(path: &Path, token: &Secret) -> Result<(), TokenError> {
    let err = |detail: String| TokenError::SaveToken {
        path: path.display().to_string(),
        detail,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "refresh-token".into());
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(token.expose().as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> OAuth2Settings {
        OAuth2Settings {
            provider: None,
            token_url: "https://login.example/token".into(),
            device_authorization_url: None,
            authorization_url: None,
            client_id: "app".into(),
            client_secret: None,
            scopes: vec![],
            grant: Grant::RefreshToken,
            refresh_token_file: "/nonexistent".into(),
            ca_file: None,
            timeout: Duration::from_secs(1),
            service_account_key_file: None,
            subject: None,
        }
    }

    #[test]
    fn error_answers_say_why() {
        let s = settings();
        let e = parse_token_response(
            &s,
            400,
            br#"{"error":"invalid_grant","error_description":"AADSTS70000: revoked"}"#,
        )
        .err()
        .unwrap();
        assert!(matches!(e, TokenError::Revoked { .. }));
        assert!(e.to_string().contains("casegate oauth2 login"), "{e}");
        assert!(!e.is_transient());
        let e = parse_token_response(&s, 401, br#"{"error":"invalid_client"}"#)
            .err()
            .unwrap();
        assert!(e.to_string().contains("oauth2.client_id"), "{e}");
        let e = parse_token_response(&s, 503, b"<html>busy</html>")
            .err()
            .unwrap();
        assert!(e.is_transient(), "{e}");
        let e = parse_token_response(&s, 400, b"{}").err().unwrap();
        assert!(!e.is_transient(), "{e}");
    }

    #[tokio::test]
    async fn a_failed_request_is_not_repeated_at_once() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("rt");
        std::fs::write(&file, "rt-1\n").unwrap();
        let source = TokenSource::new(Arc::new(OAuth2Settings {
            token_url: format!("http://127.0.0.1:{port}/token"),
            refresh_token_file: file,
            ..settings()
        }));
        let first = source.access_token().await.err().unwrap();
        assert!(matches!(first, TokenError::Network(_)), "{first}");
        assert!(first.is_transient());
        let second = source.access_token().await.err().unwrap();
        assert!(matches!(second, TokenError::BackingOff { .. }), "{second}");
        assert!(second.to_string().contains("next try in 1s"), "{second}");
    }

    #[test]
    fn refresh_token_file_is_replaced_whole_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("rt");
        std::fs::write(&p, "old\n").unwrap();
        save_refresh_token(&p, &Secret::new("new-token")).unwrap();
        assert_eq!(read_refresh_token(&p).unwrap().expose(), "new-token");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left");
        let e = read_refresh_token(&d.path().join("missing")).err().unwrap();
        assert!(e.to_string().contains("casegate oauth2 login"), "{e}");
    }
}
