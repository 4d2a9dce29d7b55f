//! The first sign-in, which yields the refresh token: the device authorization grant
//! (RFC 8628, for headless machines; Microsoft) and the authorization code grant with
//! PKCE (RFC 7636) on a loopback redirect (RFC 8252 §7.3; Google). The caller shows the
//! [`Prompt`] to the admin; the refresh token is saved atomically to
//! `oauth2.refresh_token_file`.

use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::settings::{OAuth2Settings, Provider};
use super::token::{TokenError, form, post_as_client, save_refresh_token, token_request};
use crate::domain::secret::Secret;

/// What the admin must do now.
#[derive(Debug, Clone)]
pub enum Prompt {
    /// Open `uri` (anywhere) and enter `user_code`.
    Device {
        uri: String,
        user_code: String,
        expires_in: Duration,
    },
    /// Open `url` in a browser on this machine (the redirect comes back to it).
    Browser { url: String },
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("oauth2.{key} is not set and provider has no preset for it")]
    NoEndpoint { key: &'static str },
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("the device authorization endpoint answered HTTP {status}: {detail}")]
    Device { status: u16, detail: String },
    #[error("the sign-in was not completed within {}s", after.as_secs())]
    Expired { after: Duration },
    #[error("the sign-in was refused: {0}")]
    Denied(String),
    #[error("the token endpoint answered without a refresh token: ask for offline access ({hint})")]
    NoRefreshToken { hint: &'static str },
    #[error("cannot listen for the redirect on 127.0.0.1:{port}: {detail}")]
    Listen { port: u16, detail: String },
    #[error("the redirect did not carry what was expected: {0}")]
    Redirect(String),
    #[error("no random numbers from the system: {0}")]
    Random(String),
}

#[derive(Deserialize)]
struct DeviceAuthorization {
    device_code: String,
    user_code: String,
    #[serde(alias = "verification_url")]
    verification_uri: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    interval: Option<u64>,
}

/// RFC 8628: ask for a device code, show it, poll until the user has approved.
pub async fn device_login(
    s: &OAuth2Settings,
    prompt: impl FnOnce(&Prompt),
) -> Result<Secret, LoginError> {
    let url = s
        .device_authorization_url
        .as_deref()
        .ok_or(LoginError::NoEndpoint {
            key: "device_authorization_url",
        })?;
    let fields = vec![("scope", s.scopes.join(" "))];
    let response = post_as_client(s, url, fields).await?;
    if response.status != 200 {
        return Err(LoginError::Device {
            status: response.status,
            detail: String::from_utf8_lossy(&response.body)
                .chars()
                .take(300)
                .collect(),
        });
    }
    let d: DeviceAuthorization =
        serde_json::from_slice(&response.body).map_err(|e| LoginError::Device {
            status: 200,
            detail: e.to_string(),
        })?;
    let expires_in = Duration::from_secs(d.expires_in.unwrap_or(900));
    prompt(&Prompt::Device {
        uri: d.verification_uri.clone(),
        user_code: d.user_code.clone(),
        expires_in,
    });
    let deadline = Instant::now() + expires_in;
    let mut interval = Duration::from_secs(d.interval.unwrap_or(5).max(1));
    loop {
        tokio::time::sleep(interval).await;
        if Instant::now() > deadline {
            return Err(LoginError::Expired { after: expires_in });
        }
        let fields = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:device_code".to_string(),
            ),
            ("device_code", d.device_code.clone()),
        ];
        match token_request(s, fields).await {
            Ok(t) => return save(s, t.refresh_token),
            Err(TokenError::Refused { code, description }) => match code.as_str() {
                "authorization_pending" => {}
                "slow_down" => interval += Duration::from_secs(5),
                "expired_token" => return Err(LoginError::Expired { after: expires_in }),
                _ => return Err(LoginError::Denied(format!("{code}: {description}"))),
            },
            Err(e) => return Err(e.into()),
        }
    }
}

/// Authorization code + PKCE S256, redirect to `http://127.0.0.1:PORT/` (`port` 0: any
/// free port). `login_hint` pre-fills the account at the provider.
pub async fn browser_login(
    s: &OAuth2Settings,
    port: u16,
    login_hint: Option<&str>,
    wait: Duration,
    prompt: impl FnOnce(&Prompt),
) -> Result<Secret, LoginError> {
    let authorize = s
        .authorization_url
        .as_deref()
        .ok_or(LoginError::NoEndpoint {
            key: "authorization_url",
        })?;
    let listener =
        TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| LoginError::Listen {
                port,
                detail: e.to_string(),
            })?;
    let port = listener
        .local_addr()
        .map_err(|e| LoginError::Listen {
            port,
            detail: e.to_string(),
        })?
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}/");
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let verifier = b64.encode(random_bytes::<32>()?);
    let state = b64.encode(random_bytes::<16>()?);
    let challenge = b64.encode(Sha256::digest(verifier.as_bytes()));
    let mut query = vec![
        ("response_type", "code".to_string()),
        ("client_id", s.client_id.clone()),
        ("redirect_uri", redirect_uri.clone()),
        ("scope", s.scopes.join(" ")),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256".to_string()),
        ("state", state.clone()),
    ];
    if let Some(hint) = login_hint {
        query.push(("login_hint", hint.to_string()));
    }
    if s.provider == Some(Provider::Google) {
        // Google gives a refresh token only for offline access, and again only on consent.
        query.push(("access_type", "offline".to_string()));
        query.push(("prompt", "consent".to_string()));
    }
    let sep = if authorize.contains('?') { '&' } else { '?' };
    prompt(&Prompt::Browser {
        url: format!("{authorize}{sep}{}", form(&query)),
    });
    let code = tokio::time::timeout(wait, redirect(&listener, &state))
        .await
        .map_err(|_| LoginError::Expired { after: wait })??;
    let fields = vec![
        ("grant_type", "authorization_code".to_string()),
        ("code", code.expose().to_string()),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ];
    let t = token_request(s, fields).await?;
    save(s, t.refresh_token)
}

/// Waits for the browser's GET to the redirect URI; answers it with a short page.
async fn redirect(listener: &TcpListener, state: &str) -> Result<Secret, LoginError> {
    loop {
        let (stream, _) = listener
            .accept()
            .await
            .map_err(|e| LoginError::Redirect(e.to_string()))?;
        let (read, mut write) = stream.into_split();
        let mut line = String::new();
        let mut reader = BufReader::new(read);
        if reader.read_line(&mut line).await.is_err() {
            continue;
        }
        // Read the rest of the request head.
        let mut header = String::new();
        while reader.read_line(&mut header).await.is_ok_and(|n| n > 2) {
            header.clear();
        }
        let target = line.split_whitespace().nth(1).unwrap_or_default();
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let params: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
        if params.is_empty() {
            // Browsers ask for /favicon.ico and the like: not the redirect.
            let _ = write
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            continue;
        }
        let (result, page) = if let Some(err) = params.get("error") {
            let detail = params
                .get("error_description")
                .map(|d| format!("{err}: {d}"))
                .unwrap_or_else(|| err.clone());
            (Err(LoginError::Denied(detail)), "The sign-in was refused.")
        } else if params.get("state").map(String::as_str) != Some(state) {
            (
                Err(LoginError::Redirect("the state does not match".into())),
                "This redirect does not belong to this sign-in.",
            )
        } else if let Some(code) = params.get("code") {
            (
                Ok(Secret::new(code.clone())),
                "casegate is signed in. You can close this window.",
            )
        } else {
            (
                Err(LoginError::Redirect("no code".into())),
                "The redirect carried no code.",
            )
        };
        let body = format!("<!doctype html><title>casegate</title><p>{page}</p>\n");
        let _ = write
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await;
        return result;
    }
}

fn save(s: &OAuth2Settings, refresh: Option<String>) -> Result<Secret, LoginError> {
    let refresh = refresh
        .filter(|r| !r.is_empty())
        .ok_or(LoginError::NoRefreshToken {
            hint: match s.provider {
                Some(Provider::Microsoft) => "add the scope offline_access",
                Some(Provider::Google) => {
                    "access_type=offline is sent; revoke the app's access and sign in again"
                }
                None => "see the provider's documentation",
            },
        })?;
    let refresh = Secret::new(refresh);
    save_refresh_token(&s.refresh_token_file, &refresh)?;
    Ok(refresh)
}

fn random_bytes<const N: usize>() -> Result<[u8; N], LoginError> {
    use std::io::Read;
    let mut buf = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| LoginError::Random(e.to_string()))?;
    Ok(buf)
}
