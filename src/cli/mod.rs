//! The command line: one file per subcommand, each a clap struct with `execute`.

mod backup;
mod cases;
mod check_config;
mod contracts;
mod generate;
mod ingest;
mod kb;
mod log_fields;
mod oauth2;
mod outbox;
mod quarantine;
mod report;
mod run;
mod sla;
mod status;
mod web_password;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{self, Config, LogFormat};
use crate::pipeline::Pipeline;
use crate::store::{OpenMode, Store};

/// casegate: turns a support mailbox into threaded support cases.
#[derive(Debug, Parser)]
#[command(name = "casegate", version, about)]
pub struct Cli {
    /// Configuration file; every key can be overridden by CASEGATE__SECTION__KEY.
    #[arg(
        long,
        global = true,
        default_value = "config/casegate.toml",
        env = "CASEGATE_CONFIG"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Run(run::Run),
    Ingest(ingest::Ingest),
    CheckConfig(check_config::CheckConfig),
    #[command(subcommand)]
    Cases(cases::Cases),
    #[command(subcommand)]
    Quarantine(quarantine::Quarantine),
    #[command(subcommand)]
    Contracts(contracts::Contracts),
    #[command(subcommand)]
    Sla(sla::Sla),
    #[command(subcommand)]
    Outbox(outbox::Outbox),
    Report(report::Report),
    /// Knowledge-base articles: list, show, export (issue 18b).
    #[command(subcommand)]
    Kb(kb::Kb),
    Status(status::Status),
    Backup(backup::Backup),
    Restore(backup::Restore),
    WebPassword(web_password::WebPassword),
    /// OAuth2 sign-in for Microsoft 365 and Gmail mailboxes.
    #[command(subcommand, name = "oauth2")]
    OAuth2(oauth2::OAuth2),
    /// Manual pages and shell completions, for packaging.
    #[command(subcommand, hide = true)]
    Generate(generate::Generate),
}

impl Command {
    /// Commands that print a report or listing and exit (not the daemon, not `ingest`).
    pub fn is_report(&self) -> bool {
        !matches!(self, Command::Run(_) | Command::Ingest(_))
    }
}

impl Cli {
    /// Run the chosen subcommand; returns the process exit code.
    pub async fn execute(self) -> anyhow::Result<i32> {
        match self.command {
            Command::CheckConfig(c) => c.execute(&self.config).await,
            Command::Run(c) => c.execute(&self.config).await,
            Command::Ingest(c) => c.execute(&self.config).await,
            Command::Cases(c) => c.execute(&self.config).await,
            Command::Quarantine(c) => c.execute(&self.config).await,
            Command::Contracts(c) => c.execute(&self.config).await,
            Command::Sla(c) => c.execute(&self.config).await,
            Command::Outbox(c) => c.execute(&self.config).await,
            Command::Report(c) => c.execute(&self.config).await,
            Command::Kb(c) => c.execute(&self.config).await,
            Command::Status(c) => c.execute(&self.config).await,
            Command::Backup(c) => c.execute(&self.config).await,
            Command::Restore(c) => c.execute(&self.config).await,
            Command::WebPassword(c) => c.execute(&self.config).await,
            Command::OAuth2(c) => c.execute(&self.config).await,
            Command::Generate(c) => c.execute(),
        }
    }
}

/// Load the configuration or fail with every problem, one per line.
pub(crate) fn load_config(path: &std::path::Path) -> anyhow::Result<std::sync::Arc<Config>> {
    config::load(path)
        .map(std::sync::Arc::new)
        .map_err(|problems| anyhow::anyhow!("invalid configuration:\n{problems}"))
}

async fn open_database(
    db: &crate::config::DatabaseSettings,
    mode: OpenMode,
) -> anyhow::Result<Store> {
    Store::open_with(&db.url, db.max_connections, mode)
        .await
        .with_context(|| format!("cannot open the database ({})", redact_url(&db.url)))
}

/// For read commands: only the database settings need to be valid, and the database
/// must exist (a typo in database.url must not look like an empty database).
pub(crate) async fn open_store_only(path: &std::path::Path) -> anyhow::Result<Store> {
    open_store_only_with(path, OpenMode::Existing).await
}

pub(crate) async fn open_store_only_with(
    path: &std::path::Path,
    mode: OpenMode,
) -> anyhow::Result<Store> {
    let db = config::load_database(path)
        .map_err(|problems| anyhow::anyhow!("invalid configuration:\n{problems}"))?;
    open_database(&db, mode).await
}

/// `run` and `ingest`: the pipeline over a database they may create.
pub(crate) async fn pipeline(config: &std::sync::Arc<Config>) -> anyhow::Result<Pipeline> {
    pipeline_with(config, OpenMode::Create).await
}

pub(crate) async fn pipeline_with(
    config: &std::sync::Arc<Config>,
    mode: OpenMode,
) -> anyhow::Result<Pipeline> {
    let store = open_database(&config.database, mode).await?;
    Ok(Pipeline::new(store, config.clone()))
}

/// Logs go to stderr; stdout is kept for command output (tables, JSON).
pub(crate) fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CASEGATE_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file or the journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        // Field values are the senders' text: escaped, so that none can forge a line.
        LogFormat::Text => builder.fmt_fields(log_fields::EscapedFields).try_init(),
    };
}

/// A database URL without its password, for messages.
pub(crate) fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..s + 3], user, &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            super::redact_url("postgres://u:pw@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
