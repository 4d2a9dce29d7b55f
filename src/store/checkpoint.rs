//! Background WAL checkpoints for SQLite.
//!
//! By default the committing connection copies the write-ahead log back into the
//! database (a checkpoint) every 1,000 pages, stalling the writer for as long as the
//! copy takes: during a drain with attachments that was a fifth of the intake's time.
//! The daemon instead checkpoints on a connection of its own, so the copy runs on the
//! other core while the intake writes. The writer still checkpoints by itself when the
//! log passes `AUTOCHECKPOINT_PAGES` (the background task fell behind, or no daemon runs),
//! which bounds the log's size.

use std::time::Duration;

use sqlx::{AnyConnection, Connection, Executor, Row};
use tracing::{debug, warn};

use super::{Backend, Store};

/// Pages (16 KiB in a new database) of write-ahead log after which a committing
/// connection checkpoints.
pub(super) const AUTOCHECKPOINT_PAGES: u32 = 4_096;

/// How often an idle checkpointer looks at the log.
const IDLE: Duration = Duration::from_millis(200);

/// Between passes while the log is being written.
const BUSY: Duration = Duration::from_millis(20);

impl Store {
    /// Start checkpointing in the background (SQLite; nothing to do on PostgreSQL).
    /// The task ends when the store is closed.
    pub async fn spawn_checkpointer(&self) {
        let (Backend::Sqlite, Some(url)) = (self.backend, self.url.clone()) else {
            return;
        };
        let mut conn = match AnyConnection::connect(&url).await {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "background checkpoints unavailable; the writer checkpoints itself");
                return;
            }
        };
        let pool = self.pool.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.execute("PRAGMA busy_timeout = 1000").await {
                warn!(error = %e, "background checkpoints unavailable; the writer checkpoints itself");
                return;
            }
            while !pool.is_closed() {
                // PASSIVE never waits for the writer: it copies what is committed.
                let pause = match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .fetch_one(&mut conn)
                    .await
                {
                    Ok(row) => {
                        let (log, done): (i64, i64) = (row.get(1), row.get(2));
                        if done < log { BUSY } else { IDLE }
                    }
                    Err(e) => {
                        debug!(error = %e, "checkpoint skipped");
                        IDLE
                    }
                };
                tokio::time::sleep(pause).await;
            }
            let _ = conn.close().await;
        });
    }
}
