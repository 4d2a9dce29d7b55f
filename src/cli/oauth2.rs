//! `casegate oauth2 login`: the first sign-in, which stores the refresh token; and the
//! OAuth2 lines of `casegate check-config` (offline and `--online`).

use std::path::Path;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::config::{Config, Grant, ImapAuth, Provider};
use crate::oauth2::login::{self, Prompt};

#[derive(Debug, Subcommand)]
pub enum OAuth2 {
    /// Sign in once as the mailbox (device code, or browser with PKCE) and store the
    /// refresh token in oauth2.refresh_token_file.
    Login(Login),
}

#[derive(Debug, Args)]
pub struct Login {
    /// Device code flow (RFC 8628): open a page on any device and type a code. The
    /// default for provider = "microsoft".
    #[arg(long, conflicts_with = "browser")]
    device: bool,
    /// Browser on this machine, authorization code + PKCE, redirect to 127.0.0.1. The
    /// default otherwise (Google).
    #[arg(long)]
    browser: bool,
    /// Loopback port for the browser's redirect (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 900)]
    wait_secs: u64,
}

impl OAuth2 {
    pub async fn execute(self, path: &Path) -> anyhow::Result<i32> {
        match self {
            OAuth2::Login(l) => l.execute(path).await,
        }
    }
}

impl Login {
    async fn execute(self, path: &Path) -> anyhow::Result<i32> {
        let config = super::load_config(path)?;
        let Some(s) = config.oauth2.as_deref() else {
            anyhow::bail!("{}: no [oauth2] section", path.display());
        };
        if s.grant != Grant::RefreshToken {
            anyhow::bail!(
                "{}: oauth2.grant is {:?}: only the refresh_token grant needs a sign-in",
                path.display(),
                s.grant
            );
        }
        let user = mailbox_user(&config);
        let as_user = user
            .as_deref()
            .map(|u| format!(" as {u}"))
            .unwrap_or_default();
        let device = self.device || (!self.browser && s.provider == Some(Provider::Microsoft));
        let shown = |p: &Prompt| match p {
            Prompt::Device {
                uri,
                user_code,
                expires_in,
            } => {
                println!("Sign in for casegate:");
                println!("  1. open {uri}");
                println!("  2. enter the code {user_code}");
                println!("  3. sign in{as_user} and accept the permissions");
                println!(
                    "Waiting for the sign-in (up to {} minutes)...",
                    expires_in.as_secs().div_ceil(60)
                );
            }
            Prompt::Browser { url } => {
                println!("Open this address in a browser on this machine and sign in{as_user}:");
                println!("  {url}");
                println!(
                    "Waiting for the sign-in (up to {} minutes)...",
                    self.wait_secs.div_ceil(60)
                );
            }
        };
        let result = if device {
            login::device_login(s, shown).await
        } else {
            login::browser_login(
                s,
                self.port,
                user.as_deref(),
                Duration::from_secs(self.wait_secs),
                shown,
            )
            .await
        };
        result?;
        println!(
            "Signed in. The refresh token is saved in {} (readable by this user only).",
            s.refresh_token_file.display()
        );
        println!(
            "`casegate check-config` no longer reports oauth2.refresh_token_file, and `casegate check-config --online` now prints: \"oauth2: the refresh_token grant gives an access token\""
        );
        Ok(0)
    }
}

/// The mailbox the tokens are for: `imap.username`, else `smtp.username`.
fn mailbox_user(config: &Config) -> Option<String> {
    config
        .imap
        .as_ref()
        .map(|i| i.username.clone())
        .or_else(|| config.smtp.as_ref().and_then(|s| s.username.clone()))
}

/// Offline: the refresh token file must be readable when the refresh_token grant is
/// used. One line per problem, in check-config's format.
pub(crate) fn offline_problems(config: &Config) -> Vec<String> {
    let Some(s) = config.oauth2.as_deref() else {
        return Vec::new();
    };
    let used = config
        .imap
        .as_ref()
        .is_some_and(|i| matches!(i.auth, ImapAuth::OAuth2 { .. }))
        || config.smtp.as_ref().is_some_and(|s| s.oauth2.is_some());
    if !used {
        return Vec::new();
    }
    if s.grant == Grant::ServiceAccount {
        return match crate::oauth2::check_service_account_key(s) {
            Ok(()) => Vec::new(),
            Err(e) => vec![format!("{}: {e}", config.source.display())],
        };
    }
    if s.grant != Grant::RefreshToken {
        return Vec::new();
    }
    match crate::oauth2::read_refresh_token(&s.refresh_token_file) {
        Ok(_) => Vec::new(),
        Err(e) => vec![format!(
            "{}: oauth2.refresh_token_file: {e}",
            config.source.display()
        )],
    }
}

/// `--online`: the grant, then the IMAP and SMTP sign-ins. (line, ok) pairs.
pub(crate) async fn online_checks(config: &Config) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let source = config.imap.as_ref().and_then(|i| match &i.auth {
        ImapAuth::OAuth2 { source, .. } => Some(source.clone()),
        ImapAuth::Password => None,
    });
    let source = source.or_else(|| config.smtp.as_ref().and_then(|s| s.oauth2.clone()));
    if let Some(source) = source {
        let grant = match source.settings().grant {
            Grant::RefreshToken => "refresh_token",
            Grant::ClientCredentials => "client_credentials",
            Grant::ServiceAccount => "service_account",
        };
        out.push(match source.access_token().await {
            Ok(_) => (
                format!("oauth2: the {grant} grant gives an access token"),
                true,
            ),
            Err(e) => (format!("oauth2: the {grant} grant failed: {e}"), false),
        });
    }
    if let Some(imap) = &config.imap {
        let how = match imap.auth {
            ImapAuth::Password => "password",
            ImapAuth::OAuth2 { .. } => "OAuth2",
        };
        out.push(match crate::imap::ImapClient::connect(imap).await {
            Ok(client) => {
                client.logout().await;
                (
                    format!(
                        "imap: signed in to {}:{} as {} ({how})",
                        imap.host, imap.port, imap.username
                    ),
                    true,
                )
            }
            Err(e) => (format!("imap: sign-in failed: {e}"), false),
        });
    }
    if let Some(smtp) = &config.smtp {
        let result = match crate::outbox::SmtpClient::new(smtp.clone()) {
            Ok(mut client) => client.check().await,
            Err(e) => Err(e),
        };
        let who = smtp
            .username
            .as_deref()
            .map(|u| format!(" as {u}"))
            .unwrap_or_default();
        out.push(match result {
            Ok(()) => (
                format!("smtp: connected to {}:{}{who}", smtp.host, smtp.port),
                true,
            ),
            Err(e) => (format!("smtp: sign-in failed: {e}"), false),
        });
    }
    out
}
