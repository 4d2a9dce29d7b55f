//! The store: the only place with SQL. One interface over SQLite (embedded default) and
//! PostgreSQL (several instances sharing the load), through sqlx's `Any` driver.
//! Every statement is written once in SQL both engines accept (`$N` parameters,
//! `ON CONFLICT`, `RETURNING`); only the migrations differ per engine, the two
//! locking statements that exist on one engine only (SQLite's `BEGIN IMMEDIATE`,
//! PostgreSQL's `FOR NO KEY UPDATE` in the SLA timer), how the intake's inserts read
//! their new row's id (`cases::returning_id`), and how a plan's writes travel (`batch`:
//! one multi-statement query on SQLite, one statement at a time on PostgreSQL). On
//! SQLite, large raw mails are files beside the database (`raw_files`).

pub mod backup;
mod batch;
mod cases;
mod checkpoint;
mod contracts;
mod kb;
mod leases;
mod mailbox;
mod outbox;
mod outbox_admin;
mod quarantine;
mod raw_files;
mod reports;
mod sla;
mod sole_user;
mod views;
mod web_views;
mod work;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, AssertSqlSafe, Executor};

pub use cases::{Committed, Composed, NewAttachment, NewMessage, Outbound};
pub use contracts::{ImportStats, SenderFacts};
pub use kb::KbArticle;
pub use leases::{InstanceRow, Lease, LeaseRow};
pub use mailbox::Checkpoint;
pub use outbox::{NewOutbox, OutboxRow, OutboxStatus, SentCounts};
pub use outbox_admin::{OutboxCounts, Retried};
pub use quarantine::{QuarantineEntry, QuarantineStatus};
pub use reports::{
    Attainment, ClockState, ClocksAtRisk, EngineerPeriod, Measures, PeriodReport, QueuePeriod,
    SlaReport,
};
pub use sla::{ClockAction, DueClock};
pub use sole_user::SoleUser;
pub use views::{
    AttachmentSource, AttachmentView, CaseSummary, CaseView, EventView, MessageView, SlaView,
};
pub use web_views::{
    ClockLine, DayBacklog, EngineerMeasures, Intake, OpenClock, QueueLoad, QueueMeasures,
    TeamMeasures, WeekAttainment,
};
pub use work::Work;

use raw_files::RawFiles;

/// A store failure. Every one of them is about the database, never about the mail:
/// the caller keeps the mail where it is and retries later.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    /// Another writer stored the same mail (dedup key) during a unit of work.
    #[error("the mail {0} was stored by another writer meanwhile; retrying")]
    Conflict(String),
    /// A raw mail kept as a file beside the SQLite database (see `raw_files`).
    #[error("raw mail file {path}: {cause}")]
    RawFile { path: String, cause: std::io::Error },
    #[error("cannot read random bytes for the site key: {0}")]
    Random(std::io::Error),
    #[error("database holds an invalid value in {column}: {value}")]
    Corrupt { column: &'static str, value: String },
    /// [`OpenMode::Existing`] on a SQLite file that is not there (a typo, or a command
    /// run before the daemon ever ran).
    #[error(
        "the database {0} does not exist (`casegate run`, `casegate ingest` or `casegate contracts import` creates it; check database.url)"
    )]
    NoDatabase(String),
    /// The PostgreSQL server gave no connection: `detail` says what refused (the TCP
    /// connection, or the server within the timeout).
    #[error("cannot reach PostgreSQL at {server}: {detail}")]
    Unreachable { server: String, detail: String },
    /// The folder a new SQLite database would go in is missing: never created, as it is
    /// more likely a typo than a wish.
    #[error("the folder {0} of the database does not exist (create it, or check database.url)")]
    NoFolder(String),
    /// Another casegate process holds the SQLite database (see `sole_user`).
    #[error(
        "the database {database} is in use by another casegate process; only one may run on a SQLite database"
    )]
    InUse { database: String },
    #[error("cannot take the lock file {path}: {cause}")]
    LockFile { path: String, cause: std::io::Error },
    /// Outbox rows claimed on a SQLite database without its lock (see `sole_user`).
    #[error(
        "the outbox of the SQLite database {database} is sent only by the process holding its lock (casegate run)"
    )]
    Unlocked { database: String },
    /// The fencing check failed: another instance took the mailbox's lease since this
    /// one took it (see `leases`); the unit of work is rolled back.
    #[error(
        "the lease of mailbox {mailbox} (token {token}) was taken over by another instance; nothing committed"
    )]
    LeaseLost { mailbox: String, token: i64 },
    /// `casegate backup` / `restore`: the folder or file, and what is wrong with it.
    #[error("backup: {path}: {problem}")]
    Backup { path: String, problem: String },
    #[error(
        "casegate backs up SQLite databases only; back a PostgreSQL database up with pg_dump (e.g. pg_dump --format=custom --file=casegate.dump DATABASE_URL) and restore it with pg_restore"
    )]
    UsePgDump,
}

// The variants above print their cause in their own message, so they do not also
// return it as `source()`: `{:#}` (anyhow) would print it twice.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Db(e)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(e)
    }
}

/// Whether opening a SQLite database may create it. PostgreSQL databases are never
/// created by casegate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// The daemon and the commands that file mail: create a missing file (never its folder).
    Create,
    /// Everything else: a missing file is an error, not a new empty database.
    Existing,
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
    /// Set once this process holds the SQLite database alone (see `sole_user`).
    sole_user: Arc<std::sync::OnceLock<SoleUser>>,
    /// The key of our Message-IDs and signed return paths ([`Store::site_key`]).
    site_key: SiteKey,
}

/// The site key's bytes. Never printed: `Debug` shows `<redacted>`, so a `{store:?}`
/// in a log or an error cannot leak what signs our Message-IDs and return paths.
#[derive(Clone)]
struct SiteKey(Arc<[u8]>);

impl std::fmt::Debug for SiteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Store {
    /// Connect and apply pending migrations; a missing SQLite file is created.
    pub async fn open(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        Store::open_with(url, max_connections, OpenMode::Create).await
    }

    /// As [`Store::open`], creating a missing SQLite file only with [`OpenMode::Create`].
    pub async fn open_with(
        url: &str,
        max_connections: u32,
        mode: OpenMode,
    ) -> Result<Store, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = match backend {
            Backend::Sqlite => sqlite_url(url, mode)?,
            Backend::Postgres => url.to_string(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            // A database that is down should fail fast (the mail stays put and is
            // retried), not hold a mail for the default 30 s.
            .acquire_timeout(std::time::Duration::from_secs(10))
            // A SQLite connection cannot go away under us; a ping per acquire would cost
            // two thread switches (sqlx's worker thread) for nothing.
            .test_before_acquire(backend == Backend::Postgres)
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
            .await
            .map_err(|e| (backend, e));
        let pool = match pool {
            Ok(pool) => pool,
            // sqlx retries a refused connection until the timeout, then says only that
            // the pool timed out: find out what refuses, for the admin.
            Err((Backend::Postgres, sqlx::Error::PoolTimedOut)) => {
                return Err(unreachable(&url).await);
            }
            Err((_, e)) => return Err(e.into()),
        };
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
            sole_user: Arc::default(),
            site_key: SiteKey(site_key),
        })
    }

    /// The database's own secret key (32 random bytes, made at first start and shared by
    /// every instance on the database): the HMAC key of our Message-IDs and of the
    /// signed return paths bounces come back to. Zero configuration, never logged.
    pub fn site_key(&self) -> &[u8] {
        &self.site_key.0
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Why a PostgreSQL server gave no connection: its address from the URL, and what a
/// plain TCP connection to it says.
async fn unreachable(url: &str) -> StoreError {
    let server = pg_server(url);
    let probe = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        tokio::net::TcpStream::connect(&server),
    )
    .await;
    let detail = match probe {
        Ok(Err(e)) => format!("the connection was refused or failed: {e}"),
        Err(_) => "no answer to a TCP connection within 3 s".to_string(),
        Ok(Ok(_)) => {
            "the server accepts connections but gave no database session within 10 s".to_string()
        }
    };
    StoreError::Unreachable { server, detail }
}

/// `host:port` of a `postgres://user:password@host:port/db?...` URL (port 5432 when absent).
fn pg_server(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let hostport = if hostport.is_empty() {
        "localhost"
    } else {
        hostport
    };
    let has_port = match hostport.rfind(']') {
        Some(end) => hostport[end..].contains(':'),
        None => hostport.contains(':'),
    };
    if has_port {
        hostport.to_string()
    } else {
        format!("{hostport}:5432")
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

/// The URL sqlx opens: `mode=rwc` creates a missing file, `mode=rw` does not. A missing
/// file with [`OpenMode::Existing`], or a missing folder, is an error naming the path.
fn sqlite_url(url: &str, mode: OpenMode) -> Result<String, StoreError> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let file = path.split('?').next().unwrap_or("");
    if !file.is_empty() && !file.starts_with(':') {
        let file = std::path::Path::new(file);
        if mode == OpenMode::Existing && !file.exists() {
            return Err(StoreError::NoDatabase(file.display().to_string()));
        }
        if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.is_dir()
        {
            return Err(StoreError::NoFolder(parent.display().to_string()));
        }
    }
    let open = match mode {
        OpenMode::Create => "rwc",
        OpenMode::Existing => "rw",
    };
    Ok(if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode={open}")
    } else {
        format!("{url}?mode={open}")
    })
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
    fn sqlite_urls_create_missing_files_only_when_asked() {
        let url = |u: &str, m| sqlite_url(u, m).unwrap();
        assert_eq!(
            url("sqlite://x.db", OpenMode::Create),
            "sqlite://x.db?mode=rwc"
        );
        assert_eq!(
            url("sqlite://x.db?cache=shared", OpenMode::Create),
            "sqlite://x.db?cache=shared&mode=rwc"
        );
        assert_eq!(
            url("sqlite://x.db?mode=ro", OpenMode::Create),
            "sqlite://x.db?mode=ro"
        );
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("x.db");
        let u = format!("sqlite://{}", db.display());
        assert!(matches!(
            sqlite_url(&u, OpenMode::Existing),
            Err(StoreError::NoDatabase(p)) if p == db.display().to_string()
        ));
        std::fs::write(&db, b"").unwrap();
        assert_eq!(url(&u, OpenMode::Existing), format!("{u}?mode=rw"));
        let typo = format!("sqlite://{}/nonexistent-dir/x.db", d.path().display());
        assert!(matches!(
            sqlite_url(&typo, OpenMode::Create),
            Err(StoreError::NoFolder(_))
        ));
        assert!(!d.path().join("nonexistent-dir").exists());
    }

    #[tokio::test]
    async fn the_site_key_does_not_leak_through_debug() {
        let d = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", d.path().join("k.db").display());
        let store = Store::open(&url, 1).await.unwrap();
        let key = hex::encode(store.site_key());
        assert_eq!(key.len(), 64);
        let shown = format!("{store:?}");
        assert!(!shown.contains(&key), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        // Nor the key's bytes as a list of numbers, as a derived Debug of a slice shows.
        let bytes = format!("{:?}", store.site_key());
        assert!(!shown.contains(&bytes[1..bytes.len() - 1]), "{shown}");
    }

    #[test]
    fn postgres_servers_are_named_without_credentials() {
        assert_eq!(
            pg_server("postgres://u:pw@db.example:6543/x"),
            "db.example:6543"
        );
        assert_eq!(
            pg_server("postgres://u@127.0.0.1/test?sslmode=disable"),
            "127.0.0.1:5432"
        );
        assert_eq!(pg_server("postgresql://[::1]/x"), "[::1]:5432");
    }

    #[test]
    fn millisecond_times_round_trip() {
        let t = Utc.with_ymd_and_hms(2026, 3, 8, 7, 0, 0).unwrap()
            + chrono::Duration::milliseconds(123);
        assert_eq!(from_ms(to_ms(t)), t);
    }
}
