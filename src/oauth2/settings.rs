//! The `[oauth2]` settings the token client works with: the grant, the provider and its
//! scopes. `config` reads them (and re-exports them); this module only uses them.

use std::path::PathBuf;
use std::time::Duration;

use crate::domain::secret::Secret;

/// How a connection signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// LOGIN / AUTH PLAIN with `*.password`.
    Password,
    /// SASL XOAUTH2 or OAUTHBEARER with an access token of `[oauth2]`.
    OAuth2,
}

/// The OAuth2 grant that yields access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Delegated access: a refresh token from `casegate oauth2 login`, kept in a file.
    RefreshToken,
    /// App-only access (Microsoft 365 shared mailboxes): client id and secret alone.
    ClientCredentials,
    /// Google service account with domain-wide delegation: a JWT signed with the
    /// account's key, naming the mailbox as subject (RFC 7523).
    ServiceAccount,
}

/// Known identity providers: their endpoints, scopes and mail hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Microsoft,
    Google,
}

/// Which SASL mechanism the IMAP client uses with OAuth2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslChoice {
    /// OAUTHBEARER (RFC 7628) when the server offers it, else XOAUTH2.
    Auto,
    XOAuth2,
    OAuthBearer,
}

pub const MICROSOFT_IMAP_SCOPE: &str = "https://outlook.office.com/IMAP.AccessAsUser.All";
pub const MICROSOFT_SMTP_SCOPE: &str = "https://outlook.office.com/SMTP.Send";
pub const MICROSOFT_APP_SCOPE: &str = "https://outlook.office365.com/.default";
pub const GOOGLE_MAIL_SCOPE: &str = "https://mail.google.com/";

impl Provider {
    pub fn imap_host(self) -> &'static str {
        match self {
            Provider::Microsoft => "outlook.office365.com",
            Provider::Google => "imap.gmail.com",
        }
    }

    pub fn smtp_host(self) -> &'static str {
        match self {
            Provider::Microsoft => "smtp.office365.com",
            Provider::Google => "smtp.gmail.com",
        }
    }
}

/// Everything the token client needs. The client secret is a [`Secret`] (never printed).
#[derive(Debug, Clone, PartialEq)]
pub struct OAuth2Settings {
    pub provider: Option<Provider>,
    pub token_url: String,
    /// RFC 8628 device authorization endpoint (`casegate oauth2 login --device`).
    pub device_authorization_url: Option<String>,
    /// Authorization endpoint (`casegate oauth2 login`, code + PKCE, loopback redirect).
    pub authorization_url: Option<String>,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub scopes: Vec<String>,
    pub grant: Grant,
    /// Where the refresh token lives (grant `refresh_token`); rewritten atomically when
    /// the provider rotates it.
    pub refresh_token_file: PathBuf,
    /// Extra CA certificates for the token endpoint (tests, TLS-inspecting proxies).
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
    /// Grant `service_account`: the key file Google gives for the account (JSON).
    pub service_account_key_file: Option<PathBuf>,
    /// Grant `service_account`: the mailbox the token is for (`imap.username`, else
    /// `smtp.username`).
    pub subject: Option<String>,
}

impl OAuth2Settings {
    /// True when the scopes can reach IMAP (known providers only; others are trusted).
    pub fn scopes_reach_imap(&self) -> bool {
        let has = |s: &str| self.scopes.iter().any(|x| x == s);
        match self.provider {
            Some(Provider::Microsoft) => has(MICROSOFT_IMAP_SCOPE) || has(MICROSOFT_APP_SCOPE),
            Some(Provider::Google) => has(GOOGLE_MAIL_SCOPE),
            None => true,
        }
    }

    /// True when the scopes can reach SMTP (known providers only).
    pub fn scopes_reach_smtp(&self) -> bool {
        let has = |s: &str| self.scopes.iter().any(|x| x == s);
        match self.provider {
            Some(Provider::Microsoft) => has(MICROSOFT_SMTP_SCOPE) || has(MICROSOFT_APP_SCOPE),
            Some(Provider::Google) => has(GOOGLE_MAIL_SCOPE),
            None => true,
        }
    }
}
