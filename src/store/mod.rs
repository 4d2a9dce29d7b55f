//! The store: the only place with SQL. One interface over SQLite (embedded default) and
//! PostgreSQL (several instances sharing the load), through sqlx's `Any` driver.
//! Every statement is written once in SQL both engines accept (`$N` parameters,
//! `ON CONFLICT`, `RETURNING`); only the migrations differ per engine, and the two
//! locking statements that exist on one engine only (SQLite's `BEGIN IMMEDIATE`,
//! PostgreSQL's `FOR NO KEY UPDATE` in the SLA timer). On SQLite, large raw mails are
//! files beside the database (`raw_files`).

mod cases;
mod checkpoint;
mod contracts;
mod mailbox;
mod outbox;
mod quarantine;
mod raw_files;
mod reports;
mod sla;
mod views;
mod work;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, AssertSqlSafe, Executor};

pub use cases::{Committed, Composed, NewAttachment, NewMessage, Outbound};
pub use contracts::{ImportStats, SenderFacts};
pub use mailbox::Checkpoint;
pub use outbox::{NewOutbox, OutboxRow, OutboxStatus, SentCounts};
pub use quarantine::{QuarantineEntry, QuarantineStatus};
pub use reports::{Attainment, ClockState, EngineerStats, QueueStats, SlaReport, TeamReport};
pub use sla::{ClockAction, DueClock};
pub use views::{
    AttachmentSource, AttachmentView, CaseSummary, CaseView, EventView, MessageView, SlaView,
};
pub use work::Work;

use raw_files::RawFiles;

/// A store failure. Every one of them is about the database, never about the mail:
/// the caller keeps the mail where it is and retries later.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Another writer stored the same mail (dedup key) during a unit of work.
    #[error("the mail {0} was stored by another writer meanwhile; retrying")]
    Conflict(String),
    /// A raw mail kept as a file beside the SQLite database (see `raw_files`).
    #[error("raw mail file {path}: {source}")]
    RawFile {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read random bytes for the site key: {0}")]
    Random(std::io::Error),
    #[error("database holds an invalid value in {column}: {value}")]
    Corrupt { column: &'static str, value: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The connection URL (SQLite only: the background checkpointer connects with it).
    url: Option<String>,
    /// Where large raw mails go (a SQLite database in a file only).
    raw_files: Option<Arc<RawFiles>>,
    /// The key of our Message-IDs and signed return paths ([`Store::site_key`]).
    site_key: Arc<[u8]>,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Store {
    /// Connect and apply pending migrations.
    pub async fn open(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = match backend {
            Backend::Sqlite => sqlite_url(url),
            Backend::Postgres => url.to_string(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            // A database that is down should fail fast (the mail stays put and is
            // retried), not hold a mail for the default 30 s.
            .acquire_timeout(std::time::Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers (CLI) never block the daemon's writes; NORMAL is
                        // durable at each commit under WAL except on power loss.
                        // Takes effect only in a new database, before its first table:
                        // 16 KiB pages append mail bodies to the file four times faster
                        // than 4 KiB ones (the filesystem allocates per write).
                        conn.execute("PRAGMA page_size = 16384").await?;
                        // Savepoints and sorting need scratch space: memory, not files.
                        conn.execute("PRAGMA temp_store = MEMORY").await?;
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute(AssertSqlSafe(format!(
                            "PRAGMA wal_autocheckpoint = {}",
                            checkpoint::AUTOCHECKPOINT_PAGES
                        )))
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await?;
        let site_key = load_site_key(&pool).await?;
        let raw_files = match backend {
            Backend::Sqlite => raw_files::sqlite_file(&url).map(|f| Arc::new(RawFiles::beside(&f))),
            Backend::Postgres => None,
        };
        Ok(Store {
            pool,
            backend,
            url: (backend == Backend::Sqlite).then_some(url),
            raw_files,
            site_key,
        })
    }

    /// The database's own secret key (32 random bytes, made at first start and shared by
    /// every instance on the database): the HMAC key of our Message-IDs and of the
    /// signed return paths bounces come back to. Zero configuration, never logged.
    pub fn site_key(&self) -> &[u8] {
        &self.site_key
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The `message_id` site key: made once (the first instance to start wins the insert),
/// then read by everyone.
async fn load_site_key(pool: &AnyPool) -> Result<Arc<[u8]>, StoreError> {
    const READ: &str = "SELECT value FROM site_keys WHERE name = 'message_id'";
    // Read first: opening the store must not need a write (a busy database still lets
    // the daemon start and keep its mail in the inbox until it can commit).
    let value: String = match sqlx::query_scalar(READ).fetch_optional(pool).await? {
        Some(v) => v,
        None => {
            let fresh = hex::encode(random_bytes()?);
            sqlx::query("INSERT INTO site_keys (name, value) VALUES ('message_id', $1) ON CONFLICT (name) DO NOTHING")
                .bind(fresh)
                .execute(pool)
                .await?;
            sqlx::query_scalar(READ).fetch_one(pool).await?
        }
    };
    let key = hex::decode(value.trim()).map_err(|_| StoreError::Corrupt {
        column: "site_keys.value",
        value: "(not hex)".into(),
    })?;
    if key.len() < 16 {
        return Err(StoreError::Corrupt {
            column: "site_keys.value",
            value: format!("a key of {} bytes", key.len()),
        });
    }
    Ok(key.into())
}

/// 32 bytes from the operating system's random source.
fn random_bytes() -> Result<[u8; 32], StoreError> {
    use std::io::Read;
    let mut buf = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(StoreError::Random)?;
    Ok(buf)
}

/// Create the file (and its folder) when missing: zero setup for the embedded default.
fn sqlite_url(url: &str) -> String {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let file = path.split('?').next().unwrap_or("");
    if !file.is_empty()
        && file != ":memory:"
        && let Some(parent) = std::path::Path::new(file).parent()
    {
        let _ = std::fs::create_dir_all(parent);
    }
    if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// Times are stored as Unix epoch milliseconds: exact, sortable, the same on both engines.
pub(crate) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_create_missing_files() {
        assert_eq!(sqlite_url("sqlite://x.db"), "sqlite://x.db?mode=rwc");
        assert_eq!(
            sqlite_url("sqlite://x.db?cache=shared"),
            "sqlite://x.db?cache=shared&mode=rwc"
        );
        assert_eq!(sqlite_url("sqlite://x.db?mode=ro"), "sqlite://x.db?mode=ro");
    }

    #[test]
    fn millisecond_times_round_trip() {
        let t = Utc.with_ymd_and_hms(2026, 3, 8, 7, 0, 0).unwrap()
            + chrono::Duration::milliseconds(123);
        assert_eq!(from_ms(to_ms(t)), t);
    }
}
