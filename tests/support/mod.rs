//! Shared helpers for casegate's integration tests: `mod support;` in a test file.
//!
//! The real servers (Dovecot for IMAP/LMTP, the SMTP sink for outbound mail) come from
//! `scripts/testenv`; [`TestEnv::get`] starts them when they are not running, so a
//! plain `cargo test` works. Every test should use its own IMAP user
//! ([`unique_user`]) and its own recipient addresses, so tests stay independent when
//! they run in parallel.
#![allow(dead_code)]

pub mod cli;
pub mod daemon;
pub mod imap;
pub mod mail;
pub mod oauth;
pub mod pg;
pub mod private_pg;
pub mod routing;
pub mod smtp;
pub mod staff;
pub mod web;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[allow(unused_imports)]
pub use imap::*;
#[allow(unused_imports)]
pub use smtp::*;

/// The private mail servers, as described by `<testenv dir>/env`.
#[derive(Debug, Clone)]
pub struct TestEnv {
    /// The testenv folder (`$CASEGATE_TESTENV`, else `<repo>/.testenv`).
    pub dir: PathBuf,
    /// Dovecot IMAP, plaintext with STARTTLS.
    pub imap_port: u16,
    /// Dovecot IMAP over implicit TLS.
    pub imaps_port: u16,
    /// Dovecot LMTP (delivers into the users' INBOX).
    pub lmtp_port: u16,
    /// SMTP sink, plaintext with STARTTLS (AUTH optional: any user, password "secret").
    pub smtp_port: u16,
    /// SMTP sink over implicit TLS.
    pub smtps_port: u16,
    /// Self-signed certificate of the servers (CN/SAN localhost, 127.0.0.1): trust it as the root.
    pub ca_file: PathBuf,
    /// Its private key.
    pub key_file: PathBuf,
    /// Where the SMTP sink stores mail: `<smtp_dir>/<rcpt lower-cased>/*.eml`.
    pub smtp_dir: PathBuf,
    /// Root of the users' homes: `<mail_dir>/<user lower-cased>/Maildir`.
    pub mail_dir: PathBuf,
    /// Dovecot's config file, for `doveadm -c`.
    pub dovecot_conf: PathBuf,
    /// The password of every IMAP user.
    pub password: String,
    /// The OAuth2 token server (`scripts/token_server.py`, see [`oauth`]): Dovecot's
    /// XOAUTH2/OAUTHBEARER and the SMTP sink's XOAUTH2 accept its access tokens.
    pub oauth_port: u16,
}

static ENV: OnceLock<TestEnv> = OnceLock::new();

/// The repository root (the crate's manifest dir).
pub fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The testenv folder used by these helpers and by `scripts/testenv`.
pub fn testenv_dir() -> PathBuf {
    match std::env::var_os("CASEGATE_TESTENV") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => repo_dir().join(".testenv"),
    }
}

/// Runs `scripts/testenv ARGS --dir <testenv dir>` and panics with its output on failure.
pub fn run_testenv(args: &[&str]) -> String {
    let script = repo_dir().join("scripts/testenv");
    let out = Command::new(&script)
        .args(args)
        .arg("--dir")
        .arg(testenv_dir())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    if !out.status.success() {
        panic!(
            "{} {} failed ({}):\n{}{}",
            script.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl TestEnv {
    /// The running test servers; starts them (via `scripts/testenv start`) when the env
    /// file is missing or a server does not answer. Panics when they cannot be started.
    pub fn get() -> &'static TestEnv {
        ENV.get_or_init(|| {
            let env_file = testenv_dir().join("env");
            if let Some(env) = Self::read(&env_file)
                && env.healthy()
            {
                return env;
            }
            run_testenv(&["start"]);
            let env = Self::read(&env_file).unwrap_or_else(|| {
                panic!(
                    "scripts/testenv start wrote no usable {}",
                    env_file.display()
                )
            });
            assert!(
                env.healthy(),
                "test servers do not answer after scripts/testenv start: {env:?}"
            );
            env
        })
    }

    fn read(path: &Path) -> Option<TestEnv> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut map = std::collections::HashMap::new();
        for line in text.lines() {
            if let Some((k, v)) = line.split_once('=') {
                map.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
        let s = |k: &str| map.get(k).cloned();
        let port = |k: &str| s(k).and_then(|v| v.parse::<u16>().ok());
        Some(TestEnv {
            dir: s("CASEGATE_TEST_DIR")?.into(),
            imap_port: port("CASEGATE_TEST_IMAP_PORT")?,
            imaps_port: port("CASEGATE_TEST_IMAPS_PORT")?,
            lmtp_port: port("CASEGATE_TEST_LMTP_PORT")?,
            smtp_port: port("CASEGATE_TEST_SMTP_PORT")?,
            smtps_port: port("CASEGATE_TEST_SMTPS_PORT")?,
            ca_file: s("CASEGATE_TEST_CA_FILE")?.into(),
            key_file: s("CASEGATE_TEST_KEY_FILE")?.into(),
            smtp_dir: s("CASEGATE_TEST_SMTP_DIR")?.into(),
            mail_dir: s("CASEGATE_TEST_MAIL_DIR")?.into(),
            dovecot_conf: s("CASEGATE_TEST_DOVECOT_CONF")?.into(),
            password: s("CASEGATE_TEST_PASSWORD")?,
            oauth_port: port("CASEGATE_TEST_OAUTH_PORT")?,
        })
    }

    fn healthy(&self) -> bool {
        [
            self.imap_port,
            self.imaps_port,
            self.lmtp_port,
            self.smtp_port,
            self.smtps_port,
            self.oauth_port,
        ]
        .iter()
        .all(|&p| port_open(p))
    }

    /// The shared SMTP sink's mail folder (see [`smtp::Sink`]).
    pub fn sink(&self) -> Sink {
        Sink::new(self.smtp_dir.clone())
    }
}

/// True when something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// A name no other call, test process or earlier run produces, e.g.
/// `support-newcase-12345-3-18a7f3c2b1d4e5f6`: `<tag>-<pid>-<counter>-<nanos hex>`.
/// Lower-case (Dovecot lower-cases user names; the SMTP sink lower-cases recipients),
/// only `[a-z0-9-]`, so it is usable as an IMAP user and as an address local part.
pub fn unique_user(tag: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let tag: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("{tag}-{}-{n}-{nanos:x}", std::process::id())
}

/// A fresh temporary folder, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("casegate-test-")
        .tempdir()
        .expect("create temp dir")
}

/// The casegate config text (the product's TOML format) for `user` against the test
/// servers, with a SQLite database at `db_path`.
pub fn config_text(user: &str, db_path: &Path) -> String {
    let env = TestEnv::get();
    format!(
        r#"[gateway]
support_address = "support@example.com"
support_name = "Example Support"
case_tag_word = "Case"
reopen_window_days = 14
max_message_bytes = 26214400
max_attachment_bytes = 10485760
routing_file = "{repo}/config/routing.toml"
templates_dir = "{repo}/templates"

[imap]
host = "127.0.0.1"
port = {imap_port}
tls = "none"
username = "{user}"
password = "{password}"
mailbox = "INBOX"
processed_mailbox = "Processed"
quarantine_mailbox = "Quarantine"
poll_interval_secs = 30
idle = true
batch_size = 200

[smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"

[database]
url = "sqlite://{db}"

[log]
level = "info"
format = "text"

[admin]
listen = ""
"#,
        imap_port = env.imap_port,
        smtp_port = env.smtp_port,
        password = env.password,
        db = db_path.display(),
        repo = repo_dir().display(),
    )
}

/// Writes [`config_text`] to `<dir>/casegate.toml` and returns that path.
pub fn write_config(dir: &Path, user: &str, db_path: &Path) -> PathBuf {
    write_config_with(dir, user, db_path, "")
}

/// Like [`write_config`], with `extra` TOML merged over the base: keys in `extra`
/// override the base's (tables merge key by key), new keys and tables are added. E.g.
/// `"[imap]\nidle = false\n[smtp]\nport = 2525\n"`.
pub fn write_config_with(dir: &Path, user: &str, db_path: &Path, extra: &str) -> PathBuf {
    let text = merge_toml(&config_text(user, db_path), extra);
    let path = dir.join("casegate.toml");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// `overlay` merged over `base` (both TOML documents); tables merge recursively.
pub fn merge_toml(base: &str, overlay: &str) -> String {
    if overlay.trim().is_empty() {
        return base.to_string();
    }
    fn merge(dst: &mut toml::Table, src: toml::Table) {
        for (k, v) in src {
            match (dst.get_mut(&k), v) {
                (Some(toml::Value::Table(d)), toml::Value::Table(s)) => merge(d, s),
                (_, v) => {
                    dst.insert(k, v);
                }
            }
        }
    }
    let mut b: toml::Table = base.parse().expect("base config is valid TOML");
    let o: toml::Table = overlay
        .parse()
        .unwrap_or_else(|e| panic!("extra config is not valid TOML: {e}\n{overlay}"));
    merge(&mut b, o);
    toml::to_string(&b).expect("serialize merged config")
}

/// A `Command` for the casegate binary under test, with any `CASEGATE__*` variables
/// of the calling shell removed so they cannot change the test's config.
pub fn casegate() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_casegate"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CASEGATE__") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Everything one test usually needs: its own IMAP user, temp folder, SQLite path and
/// config file (written with [`write_config`]).
pub struct TestCtx {
    pub user: String,
    pub dir: tempfile::TempDir,
    pub db_path: PathBuf,
    pub config: PathBuf,
}

impl TestCtx {
    pub fn new(tag: &str) -> TestCtx {
        Self::with_config(tag, "")
    }

    /// With `extra` TOML merged over the base config (see [`write_config_with`]).
    pub fn with_config(tag: &str, extra: &str) -> TestCtx {
        let user = unique_user(tag);
        let dir = tempdir();
        let db_path = dir.path().join("casegate.db");
        let config = write_config_with(dir.path(), &user, &db_path, extra);
        TestCtx {
            user,
            dir,
            db_path,
            config,
        }
    }

    /// `casegate --config <this config>` followed by `args`.
    pub fn casegate(&self, args: &[&str]) -> Command {
        let mut cmd = casegate();
        cmd.arg("--config").arg(&self.config).args(args);
        cmd
    }
}

/// The whole configuration of an empty config file: the repository's routing file,
/// templates and SLA defaults (for tests that drive the store and the rules directly).
pub fn repo_config() -> casegate::config::Config {
    let dir = tempdir();
    let path = dir.path().join("casegate.toml");
    std::fs::write(&path, "").unwrap();
    let repo = env!("CARGO_MANIFEST_DIR");
    let mut env = config::Map::new();
    env.insert(
        "CASEGATE__GATEWAY__ROUTING_FILE".to_string(),
        format!("{repo}/config/routing.toml"),
    );
    env.insert(
        "CASEGATE__GATEWAY__TEMPLATES_DIR".to_string(),
        format!("{repo}/templates"),
    );
    casegate::config::load_with_env(&path, Some(env)).unwrap()
}

/// The inbound rules of the store tests: support@vendor.example, the `Case` tag, a
/// 14-day reopen window, gmail.com as free mail, five auto-replies an hour.
pub fn vendor_rules() -> casegate::domain::decide::Rules {
    casegate::domain::decide::Rules {
        support_address: "support@vendor.example".into(),
        case_tag_word: "Case".into(),
        reopen_window: std::time::Duration::from_secs(14 * 86_400),
        free_mail_domains: vec!["gmail.com".into()],
        auto_reply_limit_per_hour: 5,
    }
}
