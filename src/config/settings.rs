//! The validated, typed settings. Everything downstream trusts these values.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::domain::secret::Secret;
pub use crate::tls::is_loopback_host;

/// How a connection is secured. `None` (plaintext) is only accepted for a loopback host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Implicit TLS from the first byte (IMAPS 993, SMTPS 465).
    Tls,
    /// Plaintext greeting, then STARTTLS before authenticating.
    StartTls,
    /// Plaintext, loopback only.
    None,
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsMode::Tls => "tls",
            TlsMode::StartTls => "starttls",
            TlsMode::None => "plaintext",
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// Extra PEM CA bundle trusted in addition to the system roots.
    pub ca_file: Option<PathBuf>,
    pub username: String,
    /// Empty with `auth` = OAuth2.
    pub password: Secret,
    /// How to sign in: the password, or an OAuth2 access token.
    pub auth: ImapAuth,
    pub mailbox: String,
    pub processed_mailbox: String,
    pub quarantine_mailbox: String,
    /// How often to look for new mail when IDLE is unavailable (and as a safety net).
    pub poll_interval: Duration,
    /// Use IDLE when the server advertises it.
    pub idle: bool,
    /// End IDLE and look at the mailbox at least this often. Servers may hold IDLE
    /// news back (Dovecot up to half a second, to batch changes); a short re-check
    /// answers new mail sooner at the cost of a few commands per second.
    pub idle_recheck: Option<Duration>,
    /// UIDs fetched per UID FETCH (and committed per transaction).
    pub batch_size: u32,
    /// At most this many bytes of mail per batch (one mail over it is a batch alone):
    /// bounds the memory a drain takes, whatever the attachments.
    pub batch_bytes: u64,
    /// Connect/command timeout.
    pub timeout: Duration,
}

/// One support mailbox the intake reads: the `[imap]` section, or a `[[mailboxes]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct MailboxSettings {
    /// Names the mailbox in its checkpoint, its lease, logs and metrics (`[imap]`: its
    /// folder, `imap.mailbox`).
    pub name: String,
    /// The address customers write to for this mailbox: casegate never answers it (loop
    /// protection), and routing treats it as a recipient (product rules by address).
    pub support_address: String,
    pub imap: ImapSettings,
    /// `product`, `queue` and `language` for mail read here, where the mail itself names
    /// nothing more specific (README "Several mailboxes").
    pub defaults: crate::domain::routing::MailboxDefaults,
}

/// `[cluster]`: several instances sharing one PostgreSQL database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterSettings {
    /// The lease time: a mailbox whose holder stopped renewing is taken over by another
    /// instance after this long. Holders renew at a third of it.
    pub takeover: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// `Some` with `smtp.auth = "oauth2"`: AUTH XOAUTH2 with this source's tokens.
    pub oauth2: Option<std::sync::Arc<crate::oauth2::TokenSource>>,
    pub timeout: Duration,
}

/// How the IMAP client signs in.
#[derive(Debug, Clone, PartialEq)]
pub enum ImapAuth {
    /// LOGIN with `imap.password`.
    Password,
    /// AUTHENTICATE XOAUTH2 or OAUTHBEARER with access tokens from `source`.
    OAuth2 {
        source: std::sync::Arc<crate::oauth2::TokenSource>,
        mechanism: crate::oauth2::settings::SaslChoice,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseSettings {
    /// `sqlite://...` or `postgres://...`; may hold a password, so never logged whole.
    pub url: String,
    pub max_connections: u32,
}

#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// The support address customers write to, e.g. `support@example.com`.
    pub support_address: String,
    pub support_name: String,
    /// The word in the subject tag: `[Case #00001234]`.
    pub case_tag_word: String,
    /// A reply to a closed case within this window reopens it; later ones open a new case.
    pub reopen_window: Duration,
    /// Mails larger than this are quarantined unread.
    pub max_message_bytes: u64,
    /// Attachments larger than this keep name, type and size but not their content.
    pub max_attachment_bytes: u64,
    /// One header field longer than this is cut here (marked `[truncated]`) before it is
    /// decoded: bounds what a giant header may cost.
    pub max_header_bytes: u64,
    /// Free-mail domains (lower-case): never matched or trusted as a company domain.
    pub free_mail_domains: Vec<String>,
    /// Automatic mails (acknowledgements, refusals, redirects) to one sender per hour
    /// (RFC 3834 §2: a responder must not flood a sender).
    pub auto_reply_limit_per_hour: u32,
    /// A refused sender is refused by mail at most once in this interval.
    pub refusal_interval: Duration,
}

/// Retry policy of the SMTP outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxSettings {
    pub retry_initial: Duration,
    pub retry_cap: Duration,
    /// A mail still undelivered this long after it was queued fails.
    pub max_age: Duration,
}

/// The admin HTTP listener of `casegate run` (`/metrics`, `/healthz`, `/readyz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminSettings {
    /// `admin.listen`; `None` (an empty value) turns it off.
    pub listen: Option<std::net::SocketAddr>,
}

/// What each product's team needs from a customer to pin a problem down, per language,
/// asked for in the acknowledgement.
#[derive(Debug, Clone, Default)]
pub struct ProductInfo {
    /// (product, language) -> items.
    pub items: std::collections::BTreeMap<(String, String), Vec<String>>,
}

impl ProductInfo {
    /// The product's list, else the `default` list, in the language.
    pub fn needed(&self, product: &str, lang: &str) -> Vec<String> {
        self.items
            .get(&(product.to_string(), lang.to_string()))
            .or_else(|| self.items.get(&("default".to_string(), lang.to_string())))
            .cloned()
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was loaded from (for messages).
    pub source: PathBuf,
    pub gateway: GatewaySettings,
    /// `None` when no `[imap]` section is configured (pipe-only deployments).
    pub imap: Option<ImapSettings>,
    /// Every mailbox to read: `[imap]` first (when present), then `[[mailboxes]]`.
    pub mailboxes: Vec<MailboxSettings>,
    pub cluster: ClusterSettings,
    pub smtp: Option<SmtpSettings>,
    pub database: DatabaseSettings,
    pub log: LogSettings,
    pub sla: crate::domain::sla::SlaSettings,
    pub outbox: OutboxSettings,
    pub admin: AdminSettings,
    /// `[web]`: the status pages on the admin listener.
    pub web: super::WebSettings,
    pub product_info: ProductInfo,
    pub staff: crate::domain::staff::StaffSettings,
    /// `[oauth2]`, when configured.
    pub oauth2: Option<std::sync::Arc<crate::oauth2::settings::OAuth2Settings>>,
    /// The files (and template folder) the configuration was read from: a change to any
    /// of them reloads a running daemon.
    pub watched: Vec<PathBuf>,
    /// `gateway.contracts_file`: contracts imported at start-up and on every reload.
    pub contracts: Option<std::sync::Arc<(PathBuf, Vec<crate::domain::entitlement::Contract>)>>,
    /// Products, regions, queues and routing rules (`gateway.routing_file`).
    pub routing: std::sync::Arc<crate::domain::routing::Routing>,
    /// Customer and staff mail templates (`gateway.templates_dir`).
    pub templates: std::sync::Arc<crate::templates::Templates>,
    /// Known issues engineers answer with `#known` (`gateway.known_issues_file`; empty
    /// when none is configured).
    pub known_issues: std::sync::Arc<crate::domain::known_issue::KnownIssues>,
    /// Settings that are valid but likely to give worse service (a queue nobody is told
    /// about); `check-config` prints them, `check-config --strict` refuses them.
    pub warnings: Vec<super::Problem>,
}
