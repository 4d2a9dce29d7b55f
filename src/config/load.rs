//! Loading in two steps (as ripgrep does): collect raw layered values (TOML file, then
//! `CASEGATE__SECTION__KEY` environment overrides), then build the typed [`Config`] once,
//! collecting every problem by file and key path instead of stopping at the first.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Environment, File, FileFormat, Map, Value, ValueKind};

use super::settings::*;
use crate::domain::language::Language;
use crate::domain::routing::{MailboxDefaults, Routing};

pub use crate::problem::{Problem, Problems};

/// The environment prefix: `CASEGATE__IMAP__PASSWORD` overrides `imap.password`.
pub const ENV_PREFIX: &str = "CASEGATE";

/// How the config crate names values from the environment.
const ENV_ORIGIN: &str = "the environment";

/// Load and validate the configuration at `path` with environment overrides.
pub fn load(path: &Path) -> Result<Config, Problems> {
    load_with_env(path, None)
}

/// As [`load`], with an explicit environment (tests) instead of the process's.
pub fn load_with_env(path: &Path, env: Option<Map<String, String>>) -> Result<Config, Problems> {
    read_with(path, env, |r| {
        let config = build(r, path);
        r.report_unknown();
        config
    })
}

/// Only the `[database]` settings: read commands (cases, contracts, reports) keep working
/// while an admin's edit elsewhere is being fixed.
pub fn load_database(path: &Path) -> Result<DatabaseSettings, Problems> {
    read_with(path, None, database)
}

/// Layer the file and the environment, then read typed values with `read`; every
/// problem found on the way is returned.
fn read_with<T>(
    path: &Path,
    env: Option<Map<String, String>>,
    read: impl FnOnce(&mut Reader<'_>) -> T,
) -> Result<T, Problems> {
    let file = path.display().to_string();
    let problem = |message: String| {
        Problems(vec![Problem {
            file: file.clone(),
            key: String::new(),
            message,
        }])
    };
    if !path.exists() {
        return Err(problem("config file not found".into()));
    }
    let raw = config::Config::builder()
        .add_source(File::from(path).format(FileFormat::Toml).required(true))
        .add_source(
            Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .source(env),
        )
        .build()
        .map_err(|e| problem(clean_config_error(&e.to_string(), &file)))?;
    let root = match raw.cache.kind {
        ValueKind::Table(t) => t,
        _ => Map::new(),
    };
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut r = Reader {
        root: &root,
        file,
        base_dir,
        used: BTreeSet::new(),
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    let value = read(&mut r);
    if r.problems.is_empty() {
        Ok(value)
    } else {
        Err(Problems(r.problems))
    }
}

fn database(r: &mut Reader<'_>) -> DatabaseSettings {
    DatabaseSettings {
        url: r.database_url("database.url"),
        max_connections: r.uint("database.max_connections", 5, 1, 1000) as u32,
    }
}

/// The config crate reports TOML syntax errors with its own prefix; keep the useful part.
fn clean_config_error(msg: &str, file: &str) -> String {
    let m = msg.replace(&format!(" in {file}"), "");
    format!("cannot parse: {}", m.trim())
}

fn build(r: &mut Reader<'_>, path: &Path) -> Config {
    let gateway = GatewaySettings {
        support_address: r.email("gateway.support_address", Some("support@example.com")),
        support_name: r.string("gateway.support_name", Some("Support")),
        case_tag_word: r.tag_word("gateway.case_tag_word"),
        reopen_window: Duration::from_secs(
            r.uint("gateway.reopen_window_days", 14, 0, 3650) * 86_400,
        ),
        max_message_bytes: r.uint(
            "gateway.max_message_bytes",
            25 * 1024 * 1024,
            1024,
            u64::MAX,
        ),
        max_attachment_bytes: r.uint(
            "gateway.max_attachment_bytes",
            10 * 1024 * 1024,
            0,
            u64::MAX,
        ),
        max_header_bytes: r.uint(
            "gateway.max_header_bytes",
            64 * 1024,
            1024,
            16 * 1024 * 1024,
        ),
        free_mail_domains: r.string_list("gateway.free_mail_domains", DEFAULT_FREE_MAIL),
        auto_reply_limit_per_hour: r.uint("gateway.auto_reply_limit_per_hour", 5, 0, 10_000) as u32,
        refusal_interval: Duration::from_secs(
            r.uint("gateway.refusal_interval_hours", 24, 0, 8760) * 3600,
        ),
    };
    let oauth2 = super::oauth2::read(r);
    let imap = r
        .has_section("imap")
        .then(|| imap(r, "imap", oauth2.as_ref()));
    let mailboxes = mailboxes(r, imap.as_ref(), &gateway.support_address, oauth2.as_ref());
    let cluster = ClusterSettings {
        takeover: Duration::from_millis(r.uint("cluster.takeover_ms", 15_000, 300, 3_600_000)),
    };
    let smtp = r.has_section("smtp").then(|| smtp(r, oauth2.as_ref()));
    if let Some((settings, _)) = &oauth2 {
        let imap_uses = mailboxes
            .iter()
            .any(|m| matches!(m.imap.auth, ImapAuth::OAuth2 { .. }));
        let smtp_uses = smtp.as_ref().is_some_and(|s| s.oauth2.is_some());
        super::oauth2::check_scopes(r, settings, imap_uses, smtp_uses);
    }
    let database = database(r);
    let log = LogSettings {
        level: r.string("log.level", Some("info")),
        format: match r.choice("log.format", "text", &["text", "json"]).as_str() {
            "json" => LogFormat::Json,
            _ => LogFormat::Text,
        },
    };
    let sla = super::sla::read(r);
    let outbox = OutboxSettings {
        retry_initial: Duration::from_secs(r.uint("outbox.retry_initial_secs", 60, 1, 86_400)),
        retry_cap: Duration::from_secs(r.uint("outbox.retry_max_secs", 3600, 1, 86_400)),
        max_age: Duration::from_secs(r.uint("outbox.max_age_hours", 48, 1, 8760) * 3600),
    };
    let admin = AdminSettings {
        listen: {
            let listen = r.string("admin.listen", Some("127.0.0.1:9464"));
            match listen.trim() {
                "" => None,
                l => match l.parse::<std::net::SocketAddr>() {
                    Ok(a) => Some(a),
                    Err(_) => {
                        r.problem(
                            None,
                            "admin.listen",
                            format!("{l:?} is not an address:port such as 127.0.0.1:9464 (empty turns the listener off)"),
                        );
                        None
                    }
                },
            }
        },
    };
    let web = super::web::read(r);
    let product_info = super::products::read(r);
    let mut watched = vec![path.to_path_buf()];
    let routing = linked_file(
        r,
        "gateway.routing_file",
        "routing.toml",
        &mut watched,
        super::routing::load_routing,
    );
    let templates = linked_file(
        r,
        "gateway.templates_dir",
        "../templates",
        &mut watched,
        crate::templates::load,
    );
    let known = super::contracts_csv::Known::from_parts(
        &sla.policies,
        routing.as_ref().unwrap_or(&Default::default()),
        &gateway.free_mail_domains,
    );
    let contracts = r.opt_string("gateway.contracts_file").and_then(|f| {
        let path = r.resolve(&f);
        let load = |p: &Path| -> Result<
            (PathBuf, Vec<crate::domain::entitlement::Contract>),
            Vec<Problem>,
        > {
            let file = p.display().to_string();
            let text = std::fs::read_to_string(p).map_err(|e| {
                vec![Problem {
                    file: file.clone(),
                    key: String::new(),
                    message: format!("cannot read: {e}"),
                }]
            })?;
            super::contracts_csv::check_contracts(&text, &known)
                .map(|c| (p.to_path_buf(), c))
                .map_err(|rows| {
                    rows.iter()
                        .map(|row| Problem {
                            file: file.clone(),
                            key: String::new(),
                            message: row.to_string(),
                        })
                        .collect()
                })
        };
        if !path.exists() {
            r.problem(
                None,
                "gateway.contracts_file",
                format!("not found: {}", path.display()),
            );
            return None;
        }
        watched.push(path.clone());
        load(&path).map_err(|p| r.problems.extend(p)).ok()
    });
    let known_issues = r.opt_string("gateway.known_issues_file").and_then(|f| {
        let path = r.resolve(&f);
        if !path.exists() {
            r.problem(
                None,
                "gateway.known_issues_file",
                format!("not found: {}", path.display()),
            );
            return None;
        }
        watched.push(path.clone());
        super::known_issues::load_known_issues(&path)
            .map_err(|p| r.problems.extend(p))
            .ok()
    });
    let queue_names: Vec<String> = routing
        .iter()
        .flat_map(|rt| rt.queues.iter().map(|q| q.name.clone()))
        .collect();
    let staff = super::staff::read(r, &queue_names);
    if let Some(rt) = &routing {
        check_mailbox_defaults(r, &mailboxes, rt);
        super::staff::check_watched(r, &staff, rt);
        super::sla::check_regions(r, &sla, rt);
    }
    Config {
        source: path.to_path_buf(),
        gateway,
        imap,
        mailboxes,
        cluster,
        smtp,
        database,
        log,
        sla,
        outbox,
        admin,
        web,
        product_info,
        staff,
        oauth2: oauth2.map(|(settings, _)| settings),
        contracts: contracts.map(std::sync::Arc::new),
        watched,
        routing: std::sync::Arc::new(routing.unwrap_or_default()),
        templates: std::sync::Arc::new(templates.unwrap_or_default()),
        known_issues: std::sync::Arc::new(known_issues.unwrap_or_default()),
        warnings: std::mem::take(&mut r.warnings),
    }
}

/// A file (or folder) the config points to, loaded and checked with its own problems.
fn linked_file<T>(
    r: &mut Reader<'_>,
    key: &str,
    default: &str,
    watched: &mut Vec<PathBuf>,
    load: impl FnOnce(&Path) -> Result<T, Vec<Problem>>,
) -> Option<T> {
    let value = r.string(key, Some(default));
    let path = r.resolve(&value);
    watched.push(path.clone());
    if !path.exists() {
        r.problem(None, key, format!("not found: {}", path.display()));
        return None;
    }
    match load(&path) {
        Ok(v) => Some(v),
        Err(problems) => {
            r.problems.extend(problems);
            None
        }
    }
}

/// Free-mail providers: a sender there is a person, never a company's domain.
const DEFAULT_FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.co.jp",
    "ymail.com",
    "outlook.com",
    "outlook.jp",
    "hotmail.com",
    "hotmail.co.jp",
    "live.com",
    "live.jp",
    "msn.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "gmx.com",
    "gmx.de",
    "web.de",
    "mail.com",
    "proton.me",
    "protonmail.com",
    "zoho.com",
    "yandex.com",
    "qq.com",
    "163.com",
    "126.com",
    "naver.com",
    "docomo.ne.jp",
    "ezweb.ne.jp",
    "softbank.ne.jp",
    "i.softbank.jp",
    "au.com",
    "nifty.com",
    "biglobe.ne.jp",
];

type OAuth2<'a> = Option<&'a (
    std::sync::Arc<crate::oauth2::settings::OAuth2Settings>,
    std::sync::Arc<crate::oauth2::TokenSource>,
)>;

/// An IMAP account: the `[imap]` section (`section` = "imap") or one `[[mailboxes]]`
/// entry (`section` = "mailboxes.N"), with the same keys.
fn imap(r: &mut Reader<'_>, section: &str, oauth2: OAuth2<'_>) -> ImapSettings {
    let k = |key: &str| format!("{section}.{key}");
    let preset = oauth2.and_then(|(s, _)| s.provider).map(|p| p.imap_host());
    let host = r.string(&k("host"), preset);
    let method = super::oauth2::auth_method(r, &k("auth"), oauth2.is_some());
    let mechanism = super::oauth2::sasl_choice(r, &k("sasl_mechanism"));
    let auth = match (method, oauth2) {
        (crate::oauth2::settings::AuthMethod::OAuth2, Some((_, source))) => ImapAuth::OAuth2 {
            source: source.clone(),
            mechanism,
        },
        _ => ImapAuth::Password,
    };
    let needs_password = method == crate::oauth2::settings::AuthMethod::Password;
    let tls = r.tls(&k("tls"), &host);
    let default_port = if tls == TlsMode::Tls { 993 } else { 143 };
    ImapSettings {
        port: r.uint(&k("port"), default_port, 1, 65535) as u16,
        tls,
        ca_file: r.path(&k("ca_file")),
        username: r.string(&k("username"), None),
        password: r
            .secret(section, needs_password)
            .unwrap_or_else(|| Secret::new("")),
        auth,
        mailbox: r.string(&k("mailbox"), Some("INBOX")),
        processed_mailbox: r.string(&k("processed_mailbox"), Some("Processed")),
        quarantine_mailbox: r.string(&k("quarantine_mailbox"), Some("Quarantine")),
        poll_interval: Duration::from_secs(r.uint(&k("poll_interval_secs"), 30, 1, 86_400)),
        idle: r.bool(&k("idle"), true),
        idle_recheck: match r.uint(&k("idle_recheck_ms"), 200, 0, 3_600_000) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        },
        batch_size: r.uint(&k("batch_size"), 200, 1, 10_000) as u32,
        batch_bytes: r.uint(&k("batch_bytes"), 16 * 1024 * 1024, 1024, u64::MAX),
        timeout: Duration::from_secs(r.uint(&k("timeout_secs"), 30, 1, 3600)),
        host,
    }
}

/// Every mailbox the intake reads: `[imap]` (named by its folder, as its checkpoint
/// always was), then each `[[mailboxes]]` entry, which must have a `name` and a
/// `support_address` of its own. Names and accounts (user, host, folder) are unique: two
/// readers of one folder would race.
fn mailboxes(
    r: &mut Reader<'_>,
    imap_section: Option<&ImapSettings>,
    gateway_address: &str,
    oauth2: OAuth2<'_>,
) -> Vec<MailboxSettings> {
    let mut out: Vec<MailboxSettings> = Vec::new();
    if let Some(i) = imap_section {
        out.push(MailboxSettings {
            name: i.mailbox.clone(),
            support_address: gateway_address.to_string(),
            imap: i.clone(),
            defaults: Default::default(),
        });
    }
    // Not `lookup`: that would count every key of every entry as read, typos included.
    let count = match r.value_at("mailboxes").cloned() {
        None => 0,
        Some(v) => match &v.kind {
            ValueKind::Array(items) => items.len(),
            other => {
                r.problem(
                    v.origin(),
                    "mailboxes",
                    format!(
                        "expected [[mailboxes]] entries (an array of tables), found {}",
                        describe(other)
                    ),
                );
                0
            }
        },
    };
    for n in 0..count {
        let section = format!("mailboxes.{n}");
        let name = r.string(&format!("{section}.name"), None);
        let support_address = r.email(&format!("{section}.support_address"), None);
        let imap = imap(r, &section, oauth2);
        let defaults = mailbox_defaults(r, &section);
        if !name.is_empty() && out.iter().any(|m| m.name == name) {
            r.problem(
                None,
                &format!("{section}.name"),
                format!("\"{name}\" names two mailboxes: each needs its own name"),
            );
        }
        let same_folder = |m: &MailboxSettings| {
            m.imap.host == imap.host
                && m.imap.port == imap.port
                && m.imap.username == imap.username
                && m.imap.mailbox == imap.mailbox
        };
        if let Some(other) = out.iter().find(|m| same_folder(m)) {
            r.problem(
                None,
                &format!("{section}.mailbox"),
                format!(
                    "the folder {} of {}@{} is also read as mailbox \"{}\"",
                    imap.mailbox, imap.username, imap.host, other.name
                ),
            );
        }
        out.push(MailboxSettings {
            name,
            support_address,
            imap,
            defaults,
        });
    }
    out
}

/// A `[[mailboxes]]` entry's routing defaults, as written; the names are checked against
/// the routing file by [`check_mailbox_defaults`].
fn mailbox_defaults(r: &mut Reader<'_>, section: &str) -> MailboxDefaults {
    let key = format!("{section}.language");
    let language = r.opt_string(&key).and_then(|l| {
        let parsed = Language::parse(&l);
        if parsed.is_none() {
            let known: Vec<_> = Language::ALL.iter().map(|l| l.as_str()).collect();
            r.problem(
                None,
                &key,
                format!("unknown language \"{l}\" (known: {})", known.join(", ")),
            );
        }
        parsed
    });
    MailboxDefaults {
        product: r.opt_string(&format!("{section}.product")),
        queue: r.opt_string(&format!("{section}.queue")),
        language,
    }
}

/// Every mailbox default names a product and a queue of the routing file: a typo would
/// otherwise send that mailbox's mail somewhere else without a word.
fn check_mailbox_defaults(r: &mut Reader<'_>, mailboxes: &[MailboxSettings], routing: &Routing) {
    // `[imap]`, when present, is the first mailbox and has no defaults of its own.
    let first_entry = usize::from(r.has_section("imap"));
    for (n, m) in mailboxes.iter().skip(first_entry).enumerate() {
        if let Some(p) = &m.defaults.product {
            let known: Vec<&str> = routing.products.iter().map(|p| p.name.as_str()).collect();
            if !known.contains(&p.as_str()) && *p != routing.default_product {
                r.problem(
                    None,
                    &format!("mailboxes.{n}.product"),
                    format!("unknown product \"{p}\" (known: {})", known.join(", ")),
                );
            }
        }
        if let Some(q) = &m.defaults.queue
            && routing.queue(q).is_none()
        {
            let known: Vec<&str> = routing.queues.iter().map(|q| q.name.as_str()).collect();
            r.problem(
                None,
                &format!("mailboxes.{n}.queue"),
                format!("unknown queue \"{q}\" (known: {})", known.join(", ")),
            );
        }
    }
}

fn smtp(r: &mut Reader<'_>, oauth2: OAuth2<'_>) -> SmtpSettings {
    let preset = oauth2.and_then(|(s, _)| s.provider).map(|p| p.smtp_host());
    let host = r.string("smtp.host", preset);
    let method = super::oauth2::auth_method(r, "smtp.auth", oauth2.is_some());
    let oauth2 = match (method, oauth2) {
        (crate::oauth2::settings::AuthMethod::OAuth2, Some((_, source))) => Some(source.clone()),
        _ => None,
    };
    let tls = r.tls("smtp.tls", &host);
    let default_port = match tls {
        TlsMode::Tls => 465,
        TlsMode::StartTls => 587,
        TlsMode::None => 25,
    };
    let username = r.opt_string("smtp.username");
    if oauth2.is_some() && username.is_none() {
        r.problem(
            None,
            "smtp.username",
            "missing: smtp.auth = \"oauth2\" signs in as this mailbox",
        );
    }
    let password = match oauth2 {
        Some(_) => None,
        None => r.secret("smtp", username.is_some()),
    };
    SmtpSettings {
        port: r.uint("smtp.port", default_port, 1, 65535) as u16,
        tls,
        ca_file: r.path("smtp.ca_file"),
        username,
        password,
        oauth2,
        timeout: Duration::from_secs(r.uint("smtp.timeout_secs", 30, 1, 3600)),
        host,
    }
}

/// Typed access to the raw tree; records which keys were read and every problem.
pub(super) struct Reader<'a> {
    root: &'a Map<String, Value>,
    file: String,
    base_dir: PathBuf,
    used: BTreeSet<String>,
    pub(super) problems: Vec<Problem>,
    /// Not wrong, but likely to give worse service; `check-config --strict` refuses them.
    pub(super) warnings: Vec<Problem>,
}

impl Reader<'_> {
    pub(super) fn lookup(&mut self, key: &str) -> Option<Value> {
        self.used.insert(key.to_string());
        self.value_at(key).cloned()
    }

    /// The value at a dotted `key`, without counting the key as read.
    fn value_at(&self, key: &str) -> Option<&Value> {
        let mut parts = key.split('.');
        let mut cur = self.root.get(parts.next()?)?;
        for part in parts {
            match &cur.kind {
                ValueKind::Table(t) => cur = t.get(part)?,
                // `mailboxes.1.host`: an entry of an array of tables, by index.
                ValueKind::Array(a) => cur = a.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            }
        }
        Some(cur)
    }

    pub(super) fn has_section(&self, name: &str) -> bool {
        matches!(
            self.root.get(name).map(|v| &v.kind),
            Some(ValueKind::Table(_))
        )
    }

    /// `origin` is where the config crate says a value came from: the environment, or
    /// the file (which it names relative to the working directory: use our own name).
    /// Without an `origin`, the key's own value says where it came from (a list or a
    /// table item, `key[3]`, by its list's value).
    pub(super) fn problem(&mut self, origin: Option<&str>, key: &str, message: impl Into<String>) {
        let p = self.located(origin, key, message.into());
        self.problems.push(p);
    }

    /// A warning, named like a problem.
    pub(super) fn warning(&mut self, key: &str, message: impl Into<String>) {
        let p = self.located(None, key, message.into());
        self.warnings.push(p);
    }

    fn located(&self, origin: Option<&str>, key: &str, message: String) -> Problem {
        let found = match origin {
            Some(o) => Some(o.to_string()),
            None => self.origin_of(key),
        };
        let file = match found {
            Some(o) if o == ENV_ORIGIN => o,
            _ => self.file.clone(),
        };
        Problem {
            file,
            key: key.to_string(),
            message,
        }
    }

    /// Where the value at `key` came from, without counting the key as read.
    fn origin_of(&self, key: &str) -> Option<String> {
        let key = key.split('[').next().unwrap_or(key);
        self.value_at(key)?.origin().map(str::to_string)
    }

    pub(super) fn string(&mut self, key: &str, default: Option<&str>) -> String {
        match self.lookup(key) {
            Some(v) => match &v.kind {
                ValueKind::String(s) => s.clone(),
                other => {
                    self.problem(
                        v.origin(),
                        key,
                        format!("expected a string, found {}", describe(other)),
                    );
                    String::new()
                }
            },
            None => match default {
                Some(d) => d.to_string(),
                None => {
                    self.problem(None, key, "missing (required)");
                    String::new()
                }
            },
        }
    }

    /// An optional string; an empty string counts as absent.
    pub(super) fn opt_string(&mut self, key: &str) -> Option<String> {
        let v = self.lookup(key)?;
        match &v.kind {
            ValueKind::String(s) if s.trim().is_empty() => None,
            ValueKind::String(s) => Some(s.clone()),
            ValueKind::Nil => None,
            other => {
                self.problem(
                    v.origin(),
                    key,
                    format!("expected a string, found {}", describe(other)),
                );
                None
            }
        }
    }

    /// A list of strings, lower-cased; in the environment, a comma-separated value.
    pub(super) fn string_list(&mut self, key: &str, default: &[&str]) -> Vec<String> {
        match self.string_list_raw(key) {
            Some(items) => items.into_iter().map(|s| s.to_lowercase()).collect(),
            None => default.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// A list of strings as written, `None` when absent.
    pub(super) fn string_list_raw(&mut self, key: &str) -> Option<Vec<String>> {
        let v = self.lookup(key)?;
        Some(match &v.kind {
            ValueKind::Array(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match &item.kind {
                        ValueKind::String(s) if s.trim().is_empty() => self.problem(
                            v.origin(),
                            &format!("{key}[{i}]"),
                            "empty item in the list",
                        ),
                        ValueKind::String(s) => out.push(s.trim().to_string()),
                        ValueKind::I64(_) | ValueKind::U64(_) => out.push(item.kind.to_string()),
                        other => self.problem(
                            v.origin(),
                            &format!("{key}[{i}]"),
                            format!("expected a string, found {}", describe(other)),
                        ),
                    }
                }
                out
            }
            ValueKind::String(s) if s.trim().is_empty() => Vec::new(),
            ValueKind::String(s) => {
                let items: Vec<String> = s.split(',').map(|x| x.trim().to_string()).collect();
                for (i, _) in items.iter().enumerate().filter(|(_, x)| x.is_empty()) {
                    self.problem(
                        v.origin(),
                        &format!("{key}[{i}]"),
                        format!("empty item in the comma-separated list \"{s}\""),
                    );
                }
                items.into_iter().filter(|x| !x.is_empty()).collect()
            }
            other => {
                self.problem(
                    v.origin(),
                    key,
                    format!("expected a list of strings, found {}", describe(other)),
                );
                Vec::new()
            }
        })
    }

    pub(super) fn uint(&mut self, key: &str, default: u64, min: u64, max: u64) -> u64 {
        let Some(v) = self.lookup(key) else {
            return default;
        };
        let parsed = match &v.kind {
            ValueKind::I64(i) => u64::try_from(*i).ok(),
            ValueKind::U64(u) => Some(*u),
            ValueKind::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match parsed {
            Some(n) if (min..=max).contains(&n) => n,
            _ => {
                let range = if max == u64::MAX {
                    format!("at least {min}")
                } else {
                    format!("from {min} to {max}")
                };
                self.problem(
                    v.origin(),
                    key,
                    format!("expected an integer {range}, found {}", describe(&v.kind)),
                );
                default
            }
        }
    }

    pub(super) fn bool(&mut self, key: &str, default: bool) -> bool {
        let Some(v) = self.lookup(key) else {
            return default;
        };
        match &v.kind {
            ValueKind::Boolean(b) => *b,
            ValueKind::String(s) if s.eq_ignore_ascii_case("true") => true,
            ValueKind::String(s) if s.eq_ignore_ascii_case("false") => false,
            other => {
                self.problem(
                    v.origin(),
                    key,
                    format!("expected true or false, found {}", describe(other)),
                );
                default
            }
        }
    }

    pub(super) fn choice(&mut self, key: &str, default: &str, options: &[&str]) -> String {
        let origin = self
            .lookup(key)
            .and_then(|v| v.origin().map(str::to_string));
        let s = self.string(key, Some(default));
        if options.contains(&s.as_str()) {
            s
        } else {
            let list = options
                .iter()
                .map(|o| format!("\"{o}\""))
                .collect::<Vec<_>>()
                .join(", ");
            self.problem(
                origin.as_deref(),
                key,
                format!("expected one of {list}, found \"{s}\""),
            );
            default.to_string()
        }
    }

    pub(super) fn tls(&mut self, key: &str, host: &str) -> TlsMode {
        let mode = match self
            .choice(key, "tls", &["tls", "starttls", "none"])
            .as_str()
        {
            "starttls" => TlsMode::StartTls,
            "none" => TlsMode::None,
            _ => TlsMode::Tls,
        };
        if mode == TlsMode::None && !host.is_empty() && !is_loopback_host(host) {
            let origin = self
                .lookup(key)
                .and_then(|v| v.origin().map(str::to_string));
            self.problem(
                origin.as_deref(),
                key,
                format!("\"none\" (plaintext) is only allowed for a loopback host, not \"{host}\""),
            );
        }
        mode
    }

    pub(super) fn path(&mut self, key: &str) -> Option<PathBuf> {
        let p = self.opt_string(key).map(|s| self.resolve(&s))?;
        if !p.is_file() {
            self.problem(None, key, format!("file not found: {}", p.display()));
        }
        Some(p)
    }

    /// Relative paths are relative to the config file's folder.
    pub(super) fn resolve(&self, s: &str) -> PathBuf {
        let p = PathBuf::from(s);
        if p.is_absolute() {
            p
        } else {
            self.base_dir.join(p)
        }
    }

    /// `SECTION.password`, else the first line of `SECTION.password_file`.
    pub(super) fn secret(&mut self, section: &str, required: bool) -> Option<Secret> {
        let key = format!("{section}.password");
        let file_key = format!("{section}.password_file");
        let found = self.secret_opt(&key, &file_key);
        if found.is_none() && required {
            let env = format!("{ENV_PREFIX}__{}__PASSWORD", section.to_uppercase());
            self.problem(
                None,
                &key,
                format!("missing: set {key}, {file_key} or {env}"),
            );
        }
        found
    }

    /// A secret from `key`, else from the first line of the file named by `file_key`.
    pub(super) fn secret_opt(&mut self, key: &str, file_key: &str) -> Option<Secret> {
        if let Some(p) = self.opt_string(key) {
            if self.opt_string(file_key).is_some() {
                self.problem(
                    None,
                    file_key,
                    format!("both {key} and {file_key} are set: keep one of them"),
                );
            }
            return Some(Secret::new(p));
        }
        let f = self.opt_string(file_key)?;
        let path = self.resolve(&f);
        match std::fs::read_to_string(&path) {
            Ok(s) => Some(Secret::new(s.lines().next().unwrap_or("").to_string())),
            Err(e) => {
                self.problem(
                    None,
                    file_key,
                    format!("cannot read {}: {e}", path.display()),
                );
                None
            }
        }
    }

    pub(super) fn email(&mut self, key: &str, default: Option<&str>) -> String {
        let s = self.string(key, default);
        let valid = s.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !s.contains(char::is_whitespace)
        });
        if !valid {
            self.problem(None, key, format!("not an email address: \"{s}\""));
        }
        s.to_ascii_lowercase()
    }

    pub(super) fn tag_word(&mut self, key: &str) -> String {
        let s = self.string(key, Some("Case"));
        if s.is_empty() || !s.chars().all(|c| c.is_alphanumeric() || c == '-') {
            self.problem(
                None,
                key,
                format!("expected one word of letters, digits or '-', found \"{s}\""),
            );
            return "Case".into();
        }
        s
    }

    /// A relative SQLite path is relative to the config file's folder, like every path.
    pub(super) fn database_url(&mut self, key: &str) -> String {
        let url = self.string(key, Some("sqlite://casegate.db"));
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() || path.starts_with(':') || path.starts_with('/') {
                return url;
            }
            return format!("sqlite://{}", self.base_dir.join(path).display());
        }
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            self.problem(None, key, "expected a sqlite://FILE or postgres://... URL");
        }
        url
    }

    /// Every key present in the sources that nothing read is a typo or a stale setting.
    pub(super) fn report_unknown(&mut self) {
        let mut leaves = Vec::new();
        collect_leaves(self.root, "", &mut leaves);
        for (key, origin) in leaves {
            // An entry of an array of tables is known when its array was read whole
            // (`staff.engineers`); `[[mailboxes]]` is read key by key instead.
            let entry_of_read_array = key.match_indices('.').any(|(i, _)| {
                let index = key[i + 1..].split('.').next().unwrap_or("");
                !index.is_empty()
                    && index.bytes().all(|b| b.is_ascii_digit())
                    && self.used.contains(&key[..i])
            });
            let known = self.used.contains(&key)
                || entry_of_read_array
                || self.used.iter().any(|u| u.starts_with(&format!("{key}.")));
            if !known {
                self.problem(origin.as_deref(), &key, "unknown key");
            }
        }
    }
}

fn collect_leaves(t: &Map<String, Value>, prefix: &str, out: &mut Vec<(String, Option<String>)>) {
    for (k, v) in t {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match &v.kind {
            ValueKind::Table(inner) if !inner.is_empty() => collect_leaves(inner, &key, out),
            // An array of tables (`[[mailboxes]]`): each entry's keys, as `key.N.name`.
            ValueKind::Array(items)
                if !items.is_empty()
                    && items.iter().all(|i| matches!(i.kind, ValueKind::Table(_))) =>
            {
                for (n, item) in items.iter().enumerate() {
                    if let ValueKind::Table(inner) = &item.kind {
                        collect_leaves(inner, &format!("{key}.{n}"), out);
                    }
                }
            }
            _ => out.push((key, v.origin().map(str::to_string))),
        }
    }
}

fn describe(kind: &ValueKind) -> String {
    match kind {
        ValueKind::String(s) => format!("\"{s}\""),
        ValueKind::Table(_) => "a table".into(),
        ValueKind::Array(_) => "a list".into(),
        ValueKind::Nil => "nothing".into(),
        other => other.to_string(),
    }
}

/// Environment overrides for unit tests whose config files live in a temporary folder:
/// the repository's routing file and templates.
#[cfg(test)]
pub(crate) fn test_env() -> Map<String, String> {
    let repo = env!("CARGO_MANIFEST_DIR");
    let mut env = Map::new();
    env.insert(
        "CASEGATE__GATEWAY__ROUTING_FILE".into(),
        format!("{repo}/config/routing.toml"),
    );
    env.insert(
        "CASEGATE__GATEWAY__TEMPLATES_DIR".into(),
        format!("{repo}/templates"),
    );
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, body: &str) -> PathBuf {
        let p = dir.join("casegate.toml");
        std::fs::write(&p, body).unwrap();
        p
    }

    const GOOD: &str = r#"
[gateway]
support_address = "support@example.com"
[imap]
host = "127.0.0.1"
tls = "none"
username = "support"
password = "pw"
[database]
url = "sqlite://x.db"
"#;

    #[test]
    fn imap_and_mailboxes_entries_are_each_one_mailbox() {
        let d = tempfile::tempdir().unwrap();
        let body = format!(
            "{GOOD}{}",
            r#"
[cluster]
takeover_ms = 2000
[[mailboxes]]
name = "jp"
support_address = "Support-JP@example.com"
host = "127.0.0.1"
tls = "none"
username = "support-jp"
password = "pw2"
processed_mailbox = "Done"
product = "satellite"
queue = "satellite-ja"
language = "ja"
[[mailboxes]]
name = "ansible"
support_address = "ansible-support@example.com"
host = "127.0.0.1"
tls = "none"
username = "ansible"
password_file = "ansible.pw"
"#
        );
        std::fs::write(d.path().join("ansible.pw"), "pw3\n").unwrap();
        let path = write(d.path(), &body);
        let c = load_with_env(&path, Some(test_env())).unwrap();
        let names: Vec<_> = c.mailboxes.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["INBOX", "jp", "ansible"]);
        assert_eq!(c.mailboxes[0].support_address, "support@example.com");
        assert_eq!(c.mailboxes[1].support_address, "support-jp@example.com");
        assert_eq!(c.mailboxes[1].imap.processed_mailbox, "Done");
        assert_eq!(c.mailboxes[1].imap.password.expose(), "pw2");
        assert_eq!(c.mailboxes[2].imap.password.expose(), "pw3");
        assert_eq!(c.mailboxes[2].imap.mailbox, "INBOX");
        assert_eq!(c.cluster.takeover, Duration::from_secs(2));
        let jp = &c.mailboxes[1].defaults;
        assert_eq!(jp.product.as_deref(), Some("satellite"));
        assert_eq!(jp.queue.as_deref(), Some("satellite-ja"));
        assert_eq!(jp.language, Some(Language::Ja));
        assert_eq!(c.mailboxes[2].defaults, MailboxDefaults::default());
    }

    #[test]
    fn a_mailbox_default_naming_no_product_queue_or_language_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let body = format!(
            "{GOOD}{}",
            r#"
[[mailboxes]]
name = "jp"
support_address = "jp@example.com"
host = "127.0.0.1"
tls = "none"
username = "jp"
password = "pw"
product = "satelite"
queue = "satellite-jp"
language = "jp"
"#
        );
        let path = write(d.path(), &body);
        let err = load_with_env(&path, Some(test_env())).unwrap_err();
        let text = err.to_string();
        let f = path.display().to_string();
        for expected in [
            format!(
                "{f}: mailboxes.0.product: unknown product \"satelite\" (known: ansible, satellite)"
            ),
            format!("{f}: mailboxes.0.queue: unknown queue \"satellite-jp\""),
            format!("{f}: mailboxes.0.language: unknown language \"jp\" (known: en, ja)"),
        ] {
            assert!(text.contains(&expected), "{expected}\nin:\n{text}");
        }
        assert_eq!(err.0.len(), 3, "{text}");
    }

    #[test]
    fn a_mailboxes_entry_typo_or_duplicate_is_named_by_its_index_and_key() {
        let d = tempfile::tempdir().unwrap();
        let body = format!(
            "{GOOD}{}",
            r#"
[[mailboxes]]
name = "INBOX"
support_address = "jp@example.com"
host = "127.0.0.1"
tls = "none"
username = "support"
password = "pw"
[[mailboxes]]
name = "b"
support_address = "b@example.com"
host = "127.0.0.1"
tls = "none"
username = "b"
pasword = "pw"
"#
        );
        let path = write(d.path(), &body);
        let err = load_with_env(&path, Some(test_env())).unwrap_err();
        let text = err.to_string();
        let f = path.display().to_string();
        for expected in [
            format!("{f}: mailboxes.0.name: \"INBOX\" names two mailboxes"),
            format!(
                "{f}: mailboxes.0.mailbox: the folder INBOX of support@127.0.0.1 is also read as mailbox \"INBOX\""
            ),
            format!("{f}: mailboxes.1.pasword: unknown key"),
            format!("{f}: mailboxes.1.password: missing"),
        ] {
            assert!(text.contains(&expected), "{expected}\nin:\n{text}");
        }
        assert_eq!(err.0.len(), 4, "{text}");
    }

    #[test]
    fn good_config_loads_with_defaults() {
        let d = tempfile::tempdir().unwrap();
        let c = load_with_env(&write(d.path(), GOOD), Some(test_env())).unwrap();
        assert_eq!(
            c.database.url,
            format!("sqlite://{}", d.path().join("x.db").display())
        );
        let imap = c.imap.unwrap();
        assert_eq!(imap.port, 143);
        assert_eq!(imap.mailbox, "INBOX");
        assert_eq!(imap.password.expose(), "pw");
        assert_eq!(format!("{:?}", imap.password), "<redacted>");
        assert_eq!(c.gateway.max_message_bytes, 25 * 1024 * 1024);
    }

    #[test]
    fn environment_overrides_file() {
        let d = tempfile::tempdir().unwrap();
        let mut env = test_env();
        env.insert("CASEGATE__IMAP__PORT".into(), "1143".into());
        env.insert("CASEGATE__IMAP__PROCESSED_MAILBOX".into(), "Done".into());
        let c = load_with_env(&write(d.path(), GOOD), Some(env)).unwrap();
        let imap = c.imap.unwrap();
        assert_eq!(imap.port, 1143);
        assert_eq!(imap.processed_mailbox, "Done");
    }

    #[test]
    fn every_problem_is_named_by_file_and_key() {
        let d = tempfile::tempdir().unwrap();
        let body = r#"
[imap]
host = "mail.example.com"
port = "abc"
tls = "none"
username = "support"
colour = "blue"
"#;
        let path = write(d.path(), body);
        let err = load_with_env(&path, Some(test_env())).unwrap_err();
        let text = err.to_string();
        let f = path.display().to_string();
        assert!(
            text.contains(&format!(
                "{f}: imap.port: expected an integer from 1 to 65535, found \"abc\""
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!("{f}: imap.colour: unknown key")),
            "{text}"
        );
        assert!(
            text.contains(&format!("{f}: imap.password: missing")),
            "{text}"
        );
        assert!(
            text.contains("imap.tls: \"none\" (plaintext) is only allowed for a loopback host"),
            "{text}"
        );
        assert_eq!(err.0.len(), 4, "{text}");
    }

    #[test]
    fn password_file_is_read_relative_to_config() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("pw.txt"), "s3cret\n").unwrap();
        let body = GOOD.replace("password = \"pw\"", "password_file = \"pw.txt\"");
        let c = load_with_env(&write(d.path(), &body), Some(test_env())).unwrap();
        assert_eq!(c.imap.unwrap().password.expose(), "s3cret");
    }

    #[test]
    fn environment_problem_names_the_environment() {
        let d = tempfile::tempdir().unwrap();
        let mut env = test_env();
        env.insert("CASEGATE__IMAP__BATCH_SIZE".into(), "lots".into());
        let err = load_with_env(&write(d.path(), GOOD), Some(env)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the environment: imap.batch_size: expected an integer from 1 to 10000, found \"lots\""
        );
    }

    #[test]
    fn syntax_error_is_one_clear_line() {
        let d = tempfile::tempdir().unwrap();
        let path = write(d.path(), "[imap\nhost=1");
        let err = load_with_env(&path, Some(test_env())).unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert!(
            err.to_string()
                .starts_with(&format!("{}: cannot parse", path.display())),
            "{err}"
        );
    }
}
